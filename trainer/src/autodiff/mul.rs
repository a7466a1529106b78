//! Elementwise products: two tensors of equal shape, or a tensor and weights
//! that take no gradient.

use super::Tape;
use crate::onnx::Value;

impl Tape {
    /// `a * b` for equal shapes: `da = dy * b`, `db = dy * a`.
    pub fn mul(&mut self, a: &Value, b: &Value) -> Value {
        let y = self.graph().op("Mul", &[a, b], vec![]);
        let (ac, bc) = (a.clone(), b.clone());
        self.record(&[a, b], &[&y], move |g, dys, needed| {
            let Some(dy) = &dys[0] else {
                return vec![None, None];
            };
            let da = needed[0].then(|| g.op("Mul", &[dy, &bc], vec![]));
            let db = needed[1].then(|| g.op("Mul", &[dy, &ac], vec![]));
            vec![da, db]
        });
        y
    }

    /// `x * factor` for a constant factor: `dx = dy * factor`.
    pub fn scale(&mut self, x: &Value, factor: f32) -> Value {
        let c = self.graph().const_f32(&[], &[factor]);
        self.weigh(x, &c)
    }

    /// `x * weights` for weights that take no gradient (a constant, or computed
    /// from inputs) and may broadcast over `x`: `dx = dy * weights`.
    pub fn weigh(&mut self, x: &Value, weights: &Value) -> Value {
        let y = self.graph().op("Mul", &[x, weights], vec![]);
        let w = weights.clone();
        self.record(&[x], &[&y], move |g, dys, _| {
            vec![dys[0].as_ref().map(|dy| g.op("Mul", &[dy, &w], vec![]))]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn mul_and_scale_gradients_match_finite_differences() {
        let inputs = [Input::random(&[2, 3], 1), Input::random(&[2, 3], 2)];
        check_op(&inputs, 2e-3, 1e-2, |t, v| {
            let p = t.mul(&v[0], &v[1]);
            let q = t.mul(&p, &v[0]);
            t.scale(&q, 1.5)
        });
    }
}
