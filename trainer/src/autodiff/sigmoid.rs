//! Logistic sigmoid. The gradient reuses the output: `dx = dy * y * (1 - y)`.

use super::Tape;
use crate::onnx::Value;

impl Tape {
    pub fn sigmoid(&mut self, x: &Value) -> Value {
        let y = self.graph().op("Sigmoid", &[x], vec![]);
        let yc = y.clone();
        self.record(&[x], &[&y], move |g, dys, _| {
            let dx = dys[0].as_ref().map(|dy| {
                let one = g.const_f32(&[], &[1.0]);
                let one_minus_y = g.op("Sub", &[&one, &yc], vec![]);
                let slope = g.op("Mul", &[&yc, &one_minus_y], vec![]);
                g.op("Mul", &[dy, &slope], vec![])
            });
            vec![dx]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn sigmoid_gradient_matches_finite_differences() {
        check_op(&[Input::random(&[2, 5], 1)], 2e-3, 1e-2, |t, v| {
            let scaled = t.scale(&v[0], 3.0);
            t.sigmoid(&scaled)
        });
    }
}
