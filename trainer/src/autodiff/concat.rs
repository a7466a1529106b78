//! `Concat` along one axis; the gradient splits `dy` at the inputs' run-time sizes.

use super::Tape;
use crate::onnx::{Attr, Value};

impl Tape {
    pub fn concat(&mut self, xs: &[&Value], axis: i64) -> Value {
        let y = self.graph().op("Concat", xs, vec![Attr::Int("axis", axis)]);
        let xs_c: Vec<Value> = xs.iter().map(|v| (*v).clone()).collect();
        self.record(xs, &[&y], move |g, dys, needed| {
            let Some(dy) = &dys[0] else {
                return vec![None; needed.len()];
            };
            let sizes: Vec<Value> = xs_c
                .iter()
                .map(|x| {
                    let end = if axis == -1 { i64::MAX } else { axis + 1 };
                    g.op(
                        "Shape",
                        &[x],
                        vec![Attr::Int("start", axis), Attr::Int("end", end)],
                    )
                })
                .collect();
            let size_refs: Vec<&Value> = sizes.iter().collect();
            let split = g.op("Concat", &size_refs, vec![Attr::Int("axis", 0)]);
            let parts = g.op_multi(
                "Split",
                &[Some(dy), Some(&split)],
                vec![Attr::Int("axis", axis)],
                xs_c.len(),
            );
            parts
                .into_iter()
                .zip(needed)
                .map(|(p, n)| n.then_some(p))
                .collect()
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn concat_gradient_splits_at_input_sizes() {
        let inputs = [Input::random(&[2, 1], 1), Input::random(&[2, 3], 2)];
        check_op(&inputs, 2e-3, 1e-2, |t, v| {
            let c = t.concat(&[&v[0], &v[1], &v[0]], -1);
            t.mul(&c, &c)
        });
    }
}
