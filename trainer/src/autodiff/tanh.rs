//! Hyperbolic tangent. The gradient reuses the output: `dx = dy * (1 - y²)`.

use super::Tape;
use crate::onnx::Value;

impl Tape {
    pub fn tanh(&mut self, x: &Value) -> Value {
        let y = self.graph().op("Tanh", &[x], vec![]);
        let yc = y.clone();
        self.record(&[x], &[&y], move |g, dys, _| {
            let dx = dys[0].as_ref().map(|dy| {
                let one = g.const_f32(&[], &[1.0]);
                let y2 = g.op("Mul", &[&yc, &yc], vec![]);
                let slope = g.op("Sub", &[&one, &y2], vec![]);
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
    fn tanh_gradient_matches_finite_differences() {
        check_op(&[Input::random(&[2, 5], 1)], 2e-3, 1e-2, |t, v| {
            let scaled = t.scale(&v[0], 2.0);
            t.tanh(&scaled)
        });
    }
}
