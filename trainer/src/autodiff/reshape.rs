//! Layout ops: `Reshape`, `Flatten` and `Transpose`. Their gradients restore the
//! input layout (`Reshape` to the input's run-time shape, inverse permutation).

use super::Tape;
use crate::onnx::{Attr, Value};

impl Tape {
    /// `Reshape` to `dims` (ONNX rules: `-1` inferred, `0` copies the input dim).
    pub fn reshape(&mut self, x: &Value, dims: &[i64]) -> Value {
        let shape = self.graph().const_i64(&[dims.len() as i64], dims);
        let y = self.graph().op("Reshape", &[x, &shape], vec![]);
        self.record_reshape_back(x, &y);
        y
    }

    /// `Flatten` at `axis`: `[d0..d(axis-1)] x [d(axis)..]` as a 2-D matrix.
    pub fn flatten(&mut self, x: &Value, axis: i64) -> Value {
        let y = self
            .graph()
            .op("Flatten", &[x], vec![Attr::Int("axis", axis)]);
        self.record_reshape_back(x, &y);
        y
    }

    fn record_reshape_back(&mut self, x: &Value, y: &Value) {
        let xc = x.clone();
        self.record(&[x], &[y], move |g, dys, _| {
            vec![dys[0].as_ref().map(|dy| {
                let shape = g.op("Shape", &[&xc], vec![]);
                g.op("Reshape", &[dy, &shape], vec![])
            })]
        });
    }

    /// `Transpose` with `perm`; the gradient applies the inverse permutation.
    pub fn transpose(&mut self, x: &Value, perm: &[i64]) -> Value {
        let y = self
            .graph()
            .op("Transpose", &[x], vec![Attr::Ints("perm", perm.to_vec())]);
        let mut inverse = vec![0i64; perm.len()];
        for (i, p) in perm.iter().enumerate() {
            inverse[*p as usize] = i as i64;
        }
        self.record(&[x], &[&y], move |g, dys, _| {
            vec![dys[0]
                .as_ref()
                .map(|dy| g.op("Transpose", &[dy], vec![Attr::Ints("perm", inverse)]))]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn layout_gradients_restore_the_input_layout() {
        let inputs = [Input::random(&[2, 3, 4], 1), Input::random(&[3, 8], 2)];
        check_op(&inputs, 2e-3, 1e-2, |t, v| {
            let moved = t.transpose(&v[0], &[1, 0, 2]);
            let flat = t.flatten(&moved, 1);
            let reshaped = t.reshape(&v[1], &[3, -1]);
            let s = t.mul(&flat, &reshaped);
            t.reshape(&s, &[-1])
        });
    }
}
