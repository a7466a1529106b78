//! Dropout with an explicit mask input.
//!
//! The mask already holds `0` or `1 / (1 - rate)` per element (inverted dropout),
//! and is made on the host from the training seed, so a run is reproducible
//! whatever the thread count. `dx = dy * mask`; the mask gets no gradient.

use super::Tape;
use crate::onnx::Value;

impl Tape {
    pub fn dropout(&mut self, x: &Value, mask: &Value) -> Value {
        let y = self.graph().op("Mul", &[x, mask], vec![]);
        let mask_c = mask.clone();
        self.record(&[x], &[&y], move |g, dys, _| {
            vec![dys[0]
                .as_ref()
                .map(|dy| g.op("Mul", &[dy, &mask_c], vec![]))]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn dropout_gradient_is_masked() {
        let mask = Input::ConstF32 {
            dims: vec![2, 3],
            data: vec![1.25, 0.0, 1.25, 0.0, 1.25, 1.25],
        };
        check_op(&[Input::random(&[2, 3], 1), mask], 2e-3, 1e-2, |t, v| {
            t.dropout(&v[0], &v[1])
        });
    }
}
