//! Addition and subtraction: equal shapes, or a bias broadcast over trailing axes.

use super::{unbroadcast_suffix, Tape};
use crate::onnx::Value;

impl Tape {
    /// `a + b` for equal shapes. Both gradients are `dy`.
    pub fn add(&mut self, a: &Value, b: &Value) -> Value {
        let y = self.graph().op("Add", &[a, b], vec![]);
        self.record(&[a, b], &[&y], |_, dys, needed| {
            needed
                .iter()
                .map(|n| dys[0].clone().filter(|_| *n))
                .collect()
        });
        y
    }

    /// `a - b` for equal shapes: `da = dy`, `db = -dy`.
    pub fn sub(&mut self, a: &Value, b: &Value) -> Value {
        let y = self.graph().op("Sub", &[a, b], vec![]);
        self.record(&[a, b], &[&y], |g, dys, needed| {
            let Some(dy) = &dys[0] else {
                return vec![None, None];
            };
            let da = needed[0].then(|| dy.clone());
            let db = needed[1].then(|| g.op("Neg", &[dy], vec![]));
            vec![da, db]
        });
        y
    }

    /// `x + bias` where `bias`'s shape is a suffix of `x`'s (a bias over the
    /// last axes). `dx = dy`; `dbias` sums `dy` over the broadcast leading axes.
    pub fn add_bias(&mut self, x: &Value, bias: &Value) -> Value {
        let y = self.graph().op("Add", &[x, bias], vec![]);
        let bias_c = bias.clone();
        self.record(&[x, bias], &[&y], move |g, dys, needed| {
            let Some(dy) = &dys[0] else {
                return vec![None, None];
            };
            let dx = needed[0].then(|| dy.clone());
            let db = needed[1].then(|| unbroadcast_suffix(g, dy, &bias_c));
            vec![dx, db]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn add_and_sub_gradients_match_finite_differences() {
        let inputs = [Input::random(&[2, 3], 1), Input::random(&[2, 3], 2)];
        check_op(&inputs, 2e-3, 1e-2, |t, v| {
            let s = t.add(&v[0], &v[1]);
            let d = t.sub(&s, &v[1]);
            t.sub(&d, &v[1])
        });
    }

    #[test]
    fn bias_gradient_sums_over_broadcast_axes() {
        let inputs = [Input::random(&[2, 3, 4], 3), Input::random(&[4], 4)];
        check_op(&inputs, 2e-3, 1e-2, |t, v| t.add_bias(&v[0], &v[1]));
    }
}
