//! `ReduceMean` and `ReduceSum` over given axes. The gradient broadcasts `dy`
//! back to the input's run-time shape (divided by the count, for the mean).

use super::Tape;
use crate::onnx::{Attr, Elem, Graph, Value};

impl Tape {
    pub fn reduce_mean(&mut self, x: &Value, axes: &[i64], keepdims: bool) -> Value {
        let y = self.graph().op(
            "ReduceMean",
            &[x],
            vec![
                Attr::Ints("axes", axes.to_vec()),
                Attr::Int("keepdims", keepdims as i64),
            ],
        );
        self.record_reduce_back(x, &y, axes, keepdims, true);
        y
    }

    pub fn reduce_sum(&mut self, x: &Value, axes: &[i64], keepdims: bool) -> Value {
        let axes_v = self.graph().const_i64(&[axes.len() as i64], axes);
        let y = self.graph().op(
            "ReduceSum",
            &[x, &axes_v],
            vec![Attr::Int("keepdims", keepdims as i64)],
        );
        self.record_reduce_back(x, &y, axes, keepdims, false);
        y
    }

    /// The sum of every element, as a scalar.
    pub fn reduce_sum_all(&mut self, x: &Value) -> Value {
        let y = self
            .graph()
            .op("ReduceSum", &[x], vec![Attr::Int("keepdims", 0)]);
        let xc = x.clone();
        self.record(&[x], &[&y], move |g, dys, _| {
            vec![dys[0].as_ref().map(|dy| {
                let shape = g.op("Shape", &[&xc], vec![]);
                g.op("Expand", &[dy, &shape], vec![])
            })]
        });
        y
    }

    fn record_reduce_back(
        &mut self,
        x: &Value,
        y: &Value,
        axes: &[i64],
        keepdims: bool,
        mean: bool,
    ) {
        let (xc, yc, axes) = (x.clone(), y.clone(), axes.to_vec());
        self.record(&[x], &[y], move |g, dys, _| {
            vec![dys[0].as_ref().map(|dy| {
                let kept = if keepdims {
                    dy.clone()
                } else {
                    let axes_v = g.const_i64(&[axes.len() as i64], &axes);
                    g.op("Unsqueeze", &[dy, &axes_v], vec![])
                };
                let shape = g.op("Shape", &[&xc], vec![]);
                let spread = g.op("Expand", &[&kept, &shape], vec![]);
                if mean {
                    let ratio = count_ratio(g, &yc, &xc);
                    g.op("Mul", &[&spread, &ratio], vec![])
                } else {
                    spread
                }
            })]
        });
    }
}

/// `size(y) / size(x)` as an f32 scalar, read at run time.
fn count_ratio(g: &mut Graph, y: &Value, x: &Value) -> Value {
    let ny = g.op("Size", &[y], vec![]);
    let nx = g.op("Size", &[x], vec![]);
    let ny = g.cast(&ny, Elem::F32);
    let nx = g.cast(&nx, Elem::F32);
    g.op("Div", &[&ny, &nx], vec![])
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn reduce_gradients_spread_back() {
        check_op(&[Input::random(&[3, 2, 4], 1)], 2e-3, 1e-2, |t, v| {
            let mean = t.reduce_mean(&v[0], &[0], false);
            let sum = t.reduce_sum(&v[0], &[0, 2], true);
            let sum = t.reshape(&sum, &[2, 1]);
            let total = t.reduce_sum_all(&v[0]);
            let s = t.scale(&total, 0.1);
            let s = t.reshape(&s, &[1, 1]);
            let pieces = t.concat(&[&sum, &s], 0);
            let pieces = t.reshape(&pieces, &[-1]);
            let m = t.reshape(&mean, &[-1]);
            t.concat(&[&m, &pieces], 0)
        });
    }
}
