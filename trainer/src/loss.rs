//! Losses on logits (numerically stable, softmax/sigmoid inside) and the
//! matching accuracy counts, each loss's forward and gradient side by side.

use crate::autodiff::Tape;
use crate::onnx::{Attr, Elem, Graph, Value};

impl Tape {
    /// Mean binary cross-entropy of `logits` against `targets` in `[0, 1]`
    /// (same shape): `max(z, 0) - z·y + log(1 + e^-|z|)`, which never
    /// overflows. Gradient: `dz = (σ(z) - y) / N`.
    pub fn bce_with_logits(&mut self, logits: &Value, targets: &Value) -> Value {
        let g = self.graph();
        let relu = g.op("Relu", &[logits], vec![]);
        let zy = g.op("Mul", &[logits, targets], vec![]);
        let linear = g.op("Sub", &[&relu, &zy], vec![]);
        let abs = g.op("Abs", &[logits], vec![]);
        let neg_abs = g.op("Neg", &[&abs], vec![]);
        let soft = g.op("Softplus", &[&neg_abs], vec![]);
        let per_item = g.op("Add", &[&linear, &soft], vec![]);
        let loss = g.op("ReduceMean", &[&per_item], vec![Attr::Int("keepdims", 0)]);
        let (z, y) = (logits.clone(), targets.clone());
        self.record(&[logits], &[&loss], move |g, dys, _| {
            vec![dys[0].as_ref().map(|dl| {
                let p = g.op("Sigmoid", &[&z], vec![]);
                let diff = g.op("Sub", &[&p, &y], vec![]);
                let per = per_element(g, dl, &z);
                g.op("Mul", &[&diff, &per], vec![])
            })]
        });
        loss
    }

    /// Mean categorical cross-entropy of `logits [B, C]` against class ids
    /// `targets [B]` (int64), through ONNX's fused `SoftmaxCrossEntropyLoss`
    /// (log-softmax inside). Gradient: `dz = (softmax(z) - onehot(y)) / B`.
    pub fn cce_with_logits(&mut self, logits: &Value, targets: &Value) -> Value {
        let outs = self.graph().op_multi(
            "SoftmaxCrossEntropyLoss",
            &[Some(logits), Some(targets)],
            vec![Attr::Str("reduction", "mean".into())],
            2,
        );
        let (loss, log_prob) = (outs[0].clone(), outs[1].clone());
        let (z, y) = (logits.clone(), targets.clone());
        self.record(&[logits], &[&loss], move |g, dys, _| {
            vec![dys[0].as_ref().map(|dl| {
                let prob = g.op("Exp", &[&log_prob], vec![]);
                let classes = g.op("Shape", &[&z], vec![Attr::Int("start", 1)]);
                let off_on = g.const_f32(&[2], &[0.0, 1.0]);
                let one_hot = g.op("OneHot", &[&y, &classes, &off_on], vec![]);
                let diff = g.op("Sub", &[&prob, &one_hot], vec![]);
                let rows = g.op("Shape", &[&z], vec![Attr::Int("end", 1)]);
                let per = per_row(g, dl, &rows);
                g.op("Mul", &[&diff, &per], vec![])
            })]
        });
        loss
    }
}

/// `dl / size(z)`: the mean's share of the upstream gradient per element.
fn per_element(g: &mut Graph, dl: &Value, z: &Value) -> Value {
    let n = g.op("Size", &[z], vec![]);
    let n = g.cast(&n, Elem::F32);
    g.op("Div", &[dl, &n], vec![])
}

/// `dl / rows` with `rows` a `[1]` int64 shape slice.
fn per_row(g: &mut Graph, dl: &Value, rows: &Value) -> Value {
    let n = g.cast(rows, Elem::F32);
    let n = g.op("Squeeze", &[&n], vec![]);
    g.op("Div", &[dl, &n], vec![])
}

/// Number of correct sigmoid predictions (`z > 0` agrees with `y > 0.5`), f32 scalar.
pub fn binary_correct(g: &mut Graph, logits: &Value, targets: &Value) -> Value {
    let zero = g.const_f32(&[], &[0.0]);
    let half = g.const_f32(&[], &[0.5]);
    let predicted = g.op("Greater", &[logits, &zero], vec![]);
    let actual = g.op("Greater", &[targets, &half], vec![]);
    let hit = g.op("Equal", &[&predicted, &actual], vec![]);
    count_true(g, &hit)
}

/// Number of rows whose arg-max logit is the target class, f32 scalar.
pub fn categorical_correct(g: &mut Graph, logits: &Value, targets: &Value) -> Value {
    let predicted = g.op(
        "ArgMax",
        &[logits],
        vec![Attr::Int("axis", 1), Attr::Int("keepdims", 0)],
    );
    let hit = g.op("Equal", &[&predicted, targets], vec![]);
    count_true(g, &hit)
}

fn count_true(g: &mut Graph, hit: &Value) -> Value {
    let as_float = g.cast(hit, Elem::F32);
    g.op("ReduceSum", &[&as_float], vec![Attr::Int("keepdims", 0)])
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn binary_cross_entropy_gradient_matches_finite_differences() {
        let targets = Input::ConstF32 {
            dims: vec![4],
            data: vec![1.0, 0.0, 0.0, 1.0],
        };
        check_op(&[Input::random(&[4], 1), targets], 2e-3, 1e-2, |t, v| {
            let z = t.scale(&v[0], 4.0);
            t.bce_with_logits(&z, &v[1])
        });
    }

    #[test]
    fn categorical_cross_entropy_gradient_matches_finite_differences() {
        let targets = Input::I64 {
            dims: vec![3],
            data: vec![0, 3, 3],
        };
        check_op(&[Input::random(&[3, 4], 1), targets], 2e-3, 1e-2, |t, v| {
            let z = t.scale(&v[0], 3.0);
            t.cce_with_logits(&z, &v[1])
        });
    }
}
