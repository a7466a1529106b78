//! `Slice` of `[start, end)` along one axis; the gradient puts `dy` back between
//! zeros shaped like the parts that were cut off.

use super::{zeros_like, Tape};
use crate::onnx::{Attr, Value};

impl Tape {
    /// `x[start..end]` along `axis` (`end = i64::MAX` means to the end).
    pub fn slice(&mut self, x: &Value, axis: i64, start: i64, end: i64) -> Value {
        let y = slice_raw(self.graph(), x, axis, start, end);
        let xc = x.clone();
        self.record(&[x], &[&y], move |g, dys, _| {
            let Some(dy) = &dys[0] else {
                return vec![None];
            };
            let mut parts = Vec::new();
            if start != 0 {
                let before = slice_raw(g, &xc, axis, 0, start);
                parts.push(zeros_like(g, &before));
            }
            parts.push(dy.clone());
            if end != i64::MAX {
                let after = slice_raw(g, &xc, axis, end, i64::MAX);
                parts.push(zeros_like(g, &after));
            }
            if parts.len() == 1 {
                return vec![parts.pop()];
            }
            let refs: Vec<&Value> = parts.iter().collect();
            vec![Some(g.op("Concat", &refs, vec![Attr::Int("axis", axis)]))]
        });
        y
    }
}

fn slice_raw(g: &mut crate::onnx::Graph, x: &Value, axis: i64, start: i64, end: i64) -> Value {
    let starts = g.const_i64(&[1], &[start]);
    let ends = g.const_i64(&[1], &[end]);
    let axes = g.const_i64(&[1], &[axis]);
    g.op("Slice", &[x, &starts, &ends, &axes], vec![])
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn slice_gradient_pads_with_zeros() {
        check_op(&[Input::random(&[5, 2], 1)], 2e-3, 1e-2, |t, v| {
            let middle = t.slice(&v[0], 0, 1, 3);
            let last = t.slice(&v[0], 0, -1, i64::MAX);
            let scaled = t.scale(&last, 0.5);
            let reduced = t.reduce_sum(&middle, &[0], true);
            t.add(&reduced, &scaled)
        });
    }
}
