//! `Split` along one axis into pieces of given sizes; the gradient concatenates
//! the pieces' gradients (zeros for pieces nothing depended on).

use super::{zeros_like, Tape};
use crate::onnx::{Attr, Value};

impl Tape {
    pub fn split(&mut self, x: &Value, axis: i64, sizes: &[i64]) -> Vec<Value> {
        let g = self.graph();
        let sizes_v = g.const_i64(&[sizes.len() as i64], sizes);
        let ys = g.op_multi(
            "Split",
            &[Some(x), Some(&sizes_v)],
            vec![Attr::Int("axis", axis)],
            sizes.len(),
        );
        let ys_c = ys.clone();
        let outputs: Vec<&Value> = ys.iter().collect();
        self.record(&[x], &outputs, move |g, dys, _| {
            let parts: Vec<Value> = dys
                .iter()
                .zip(&ys_c)
                .map(|(dy, y)| match dy {
                    Some(dy) => dy.clone(),
                    None => zeros_like(g, y),
                })
                .collect();
            let refs: Vec<&Value> = parts.iter().collect();
            vec![Some(g.op("Concat", &refs, vec![Attr::Int("axis", axis)]))]
        });
        ys
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn split_gradient_concatenates_and_fills_unused_pieces() {
        check_op(&[Input::random(&[2, 6], 1)], 2e-3, 1e-2, |t, v| {
            let parts = t.split(&v[0], 1, &[1, 2, 3]);
            // The middle piece is unused: its gradient must be zero.
            let a = t.scale(&parts[0], 2.0);
            let b = t.reduce_sum(&parts[2], &[1], true);
            t.mul(&a, &b)
        });
    }
}
