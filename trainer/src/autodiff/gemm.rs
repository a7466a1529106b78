//! Dense products: `linear` (x·wᵀ + b, one `Gemm`) and a plain 2-D `matmul`.

use super::Tape;
use crate::onnx::{Attr, Value};

impl Tape {
    /// `x [N, K] · wᵀ + bias`, with `w [M, K]` (ONNX's weight layout) and an
    /// optional `bias [M]`; one `Gemm` with `transB = 1`.
    ///
    /// Where the backend sums rows alike ([`Backend::sums_rows_alike`]) the
    /// `Gemm` takes the doubled bias at `beta = 0.5` (both exact). ONNX
    /// Runtime's CPU sums a product of a single row (a batch of one, or a
    /// thread's share of a batch split between threads) with a one-row kernel,
    /// in another order than several rows, and MLAS takes that kernel only at
    /// `beta` 0 or 1: so several rows get the sums they had, and one row gets them too.
    ///
    /// Gradients: `dx = dy · w`, `dw = dyᵀ · x`, `dbias = Σ_rows dy`.
    ///
    /// [`Backend::sums_rows_alike`]: crate::autodiff::Backend::sums_rows_alike
    pub fn linear(&mut self, x: &Value, w: &Value, bias: Option<&Value>) -> Value {
        let rows_alike = self.backend().sums_rows_alike();
        let g = self.graph();
        let trans_b = Attr::Int("transB", 1);
        let y = match bias {
            Some(b) if rows_alike => {
                let two = g.const_f32(&[], &[2.0]);
                let doubled = g.op("Mul", &[b, &two], vec![]);
                let attrs = vec![trans_b, Attr::Float("beta", 0.5)];
                g.op("Gemm", &[x, w, &doubled], attrs)
            }
            Some(b) => g.op("Gemm", &[x, w, b], vec![trans_b]),
            None => g.op("Gemm", &[x, w], vec![trans_b]),
        };
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
        // On the CPU the bias comes in doubled at `beta = 0.5`: a wrong scale
        // would show, as the finite differences follow it.
        check_op(&inputs, 2e-3, 1e-2, |t, v| {
            t.linear(&v[0], &v[1], Some(&v[2]))
        });
    }

    #[test]
    fn matmul_gradients_match_finite_differences() {
        let inputs = [Input::random(&[3, 4], 4), Input::random(&[4, 2], 5)];
        check_op(&inputs, 2e-3, 1e-2, |t, v| t.matmul(&v[0], &v[1]));
    }
}
