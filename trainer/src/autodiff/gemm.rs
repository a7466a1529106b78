//! Dense products: `linear` (x·wᵀ + b, one `Gemm`) and a plain 2-D `matmul`.

use super::Tape;
use crate::onnx::{Attr, Value};

impl Tape {
    /// `x [N, K] · wᵀ + bias`, with `w [M, K]` (ONNX's weight layout) and an
    /// optional `bias [M]`; one `Gemm` with `transB = 1`.
    ///
    /// Gradients: `dx = dy · w`, `dw = dyᵀ · x`, `dbias = Σ_rows dy`.
    pub fn linear(&mut self, x: &Value, w: &Value, bias: Option<&Value>) -> Value {
        let g = self.graph();
        let y = match bias {
            Some(b) => g.op("Gemm", &[x, w, b], vec![Attr::Int("transB", 1)]),
            None => g.op("Gemm", &[x, w], vec![Attr::Int("transB", 1)]),
        };
        self.record_linear(x, w, bias, y)
    }

    /// [`Tape::linear`] with a `bias`, each row summed alike however many rows
    /// there are. ONNX Runtime's CPU sums a product of a single row (a batch of
    /// one, or a thread's share of a batch split between threads) with a
    /// one-row kernel, in another order than several rows. MLAS takes that
    /// kernel only at `beta` 0 or 1, so this `Gemm` takes the doubled bias at
    /// `beta = 0.5` (both exact): the same sums as [`Tape::linear`] for several
    /// rows, and for one.
    pub fn linear_rows_alike(&mut self, x: &Value, w: &Value, bias: &Value) -> Value {
        let g = self.graph();
        let two = g.const_f32(&[], &[2.0]);
        let doubled = g.op("Mul", &[bias, &two], vec![]);
        let attrs = vec![Attr::Int("transB", 1), Attr::Float("beta", 0.5)];
        let y = g.op("Gemm", &[x, w, &doubled], attrs);
        self.record_linear(x, w, Some(bias), y)
    }

    /// Records `y = x · wᵀ + bias`'s gradients.
    fn record_linear(&mut self, x: &Value, w: &Value, bias: Option<&Value>, y: Value) -> Value {
        let (xc, wc) = (x.clone(), w.clone());
        let mut inputs = vec![x, w];
        if let Some(b) = bias {
            inputs.push(b);
        }
        self.record(&inputs, &[&y], move |g, dys, needed| {
            let Some(dy) = &dys[0] else {
                return vec![None; needed.len()];
            };
            let dx = needed[0].then(|| g.op("MatMul", &[dy, &wc], vec![]));
            let dw = needed[1].then(|| g.op("Gemm", &[dy, &xc], vec![Attr::Int("transA", 1)]));
            let mut grads = vec![dx, dw];
            if needed.len() == 3 {
                grads.push(needed[2].then(|| {
                    let axis0 = g.const_i64(&[1], &[0]);
                    g.op("ReduceSum", &[dy, &axis0], vec![Attr::Int("keepdims", 0)])
                }));
            }
            grads
        });
        y
    }

    /// `a [N, K] · b [K, M]`. Gradients: `da = dy · bᵀ`, `db = aᵀ · dy`.
    pub fn matmul(&mut self, a: &Value, b: &Value) -> Value {
        let y = self.graph().op("MatMul", &[a, b], vec![]);
        let (ac, bc) = (a.clone(), b.clone());
        self.record(&[a, b], &[&y], move |g, dys, needed| {
            let Some(dy) = &dys[0] else {
                return vec![None, None];
            };
            let da = needed[0].then(|| g.op("Gemm", &[dy, &bc], vec![Attr::Int("transB", 1)]));
            let db = needed[1].then(|| g.op("Gemm", &[&ac, dy], vec![Attr::Int("transA", 1)]));
            vec![da, db]
        });
        y
    }
}

#[cfg(test)]
mod tests {
    use crate::autodiff::check::{check_op, Input};

    #[test]
    fn linear_gradients_match_finite_differences() {
        let inputs = [
            Input::random(&[3, 4], 1),
            Input::random(&[2, 4], 2),
            Input::random(&[2], 3),
        ];
        check_op(&inputs, 2e-3, 1e-2, |t, v| {
            t.linear(&v[0], &v[1], Some(&v[2]))
        });
        // A wrong scale of the doubled bias would show: the finite differences follow it.
        check_op(&inputs, 2e-3, 1e-2, |t, v| {
            t.linear_rows_alike(&v[0], &v[1], &v[2])
        });
    }

    #[test]
    fn matmul_gradients_match_finite_differences() {
        let inputs = [Input::random(&[3, 4], 4), Input::random(&[4, 2], 5)];
        check_op(&inputs, 2e-3, 1e-2, |t, v| t.matmul(&v[0], &v[1]));
    }
}
