//! Recurrent layers on the tape: LSTM and GRU over a whole sequence, with
//! back-propagation through time.
//!
//! Both take the input projections for all steps at once (`xproj [T, B, G·H]`,
//! one `Gemm` or row lookup upstream) and return the hidden states
//! `[T, B, H]`, time-major. Two implementations:
//!
//! - [`Recurrence::Scan`]: a forward ONNX `Scan` that also emits the gate
//!   activations, and a reverse `Scan` for the gradient recurrence, then the
//!   weight gradients of all steps with one `Gemm` each. The graph size does
//!   not depend on `T`.
//! - [`Recurrence::Unrolled`]: one copy of the cell per step built from the
//!   tape's primitive ops; the graph grows with `T`.
//!
//! Gate orders are ONNX's: LSTM `i, o, f, c`; GRU `z, r, h` with
//! `linear_before_reset = 1`: `n = tanh(xn + r ⊙ (Rn·h + rbn))`. The initial
//! state is zero, and padded steps run through the cell like any token.

mod gru;
mod lstm;
mod unrolled;

#[cfg(test)]
pub(crate) mod reference;

use crate::autodiff::Tape;
use crate::onnx::{Attr, Dim, Elem, Graph, Value};

/// How the recurrence is laid out in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recurrence {
    Scan,
    Unrolled,
}

impl Tape {
    /// LSTM over `xproj [T, B, 4H]` (input projections plus both biases),
    /// recurrent weights `r [4H, H]`. Returns `h [T, B, H]`.
    pub fn lstm(
        &mut self,
        xproj: &Value,
        r: &Value,
        hidden: i64,
        steps: i64,
        how: Recurrence,
    ) -> Value {
        match how {
            Recurrence::Scan => lstm::scan(self, xproj, r, hidden),
            Recurrence::Unrolled => unrolled::lstm(self, xproj, r, hidden, steps),
        }
    }

    /// GRU over `xproj [T, B, 3H]` (input projections plus the input bias),
    /// recurrent weights `r [3H, H]` and recurrent bias `rb [3H]`.
    /// Returns `h [T, B, H]`.
    pub fn gru(
        &mut self,
        xproj: &Value,
        r: &Value,
        rb: &Value,
        hidden: i64,
        steps: i64,
        how: Recurrence,
    ) -> Value {
        match how {
            Recurrence::Scan => gru::scan(self, xproj, r, rb, hidden),
            Recurrence::Unrolled => unrolled::gru(self, xproj, r, rb, hidden, steps),
        }
    }
}

/// Zeros `[B, width]` with `B` read from axis `batch_axis` of `like`.
fn zeros_state(g: &mut Graph, like: &Value, batch_axis: i64, width: i64) -> Value {
    let batch = g.op(
        "Shape",
        &[like],
        vec![
            Attr::Int("start", batch_axis),
            Attr::Int("end", batch_axis + 1),
        ],
    );
    let width = g.const_i64(&[1], &[width]);
    let shape = g.op("Concat", &[&batch, &width], vec![Attr::Int("axis", 0)]);
    g.op(
        "ConstantOfShape",
        &[&shape],
        vec![Attr::Tensor(
            "value",
            crate::onnx::builder::tensor_f32("", &[1], &[0.0]),
        )],
    )
}

/// `[h0; h[0..T-1]]`: the state each step started from, `[T, B, H]`.
fn shifted_states(g: &mut Graph, initial: &Value, seq: &Value) -> Value {
    let axis0 = g.const_i64(&[1], &[0]);
    let first = g.op("Unsqueeze", &[initial, &axis0], vec![]);
    let starts = g.const_i64(&[1], &[0]);
    let ends = g.const_i64(&[1], &[-1]);
    let head = g.op("Slice", &[seq, &starts, &ends, &axis0], vec![]);
    g.op("Concat", &[&first, &head], vec![Attr::Int("axis", 0)])
}

/// `Σ_t aᵀ_t · b_t` for `a [T, B, M]`, `b [T, B, N]`: one `Gemm` on the
/// flattened steps, `[M, N]`.
fn sum_outer(g: &mut Graph, a: &Value, b: &Value, m: i64, n: i64) -> Value {
    let a2 = reshape(g, a, &[-1, m]);
    let b2 = reshape(g, b, &[-1, n]);
    g.op("Gemm", &[&a2, &b2], vec![Attr::Int("transA", 1)])
}

fn reshape(g: &mut Graph, x: &Value, dims: &[i64]) -> Value {
    let shape = g.const_i64(&[dims.len() as i64], dims);
    g.op("Reshape", &[x, &shape], vec![])
}

fn one_minus(g: &mut Graph, x: &Value) -> Value {
    let one = g.const_f32(&[], &[1.0]);
    g.op("Sub", &[&one, x], vec![])
}

/// `x ⊙ (1 - x)`: the sigmoid's slope from its output.
fn sigmoid_slope(g: &mut Graph, y: &Value) -> Value {
    let rest = one_minus(g, y);
    g.op("Mul", &[y, &rest], vec![])
}

/// `1 - y²`: the tanh's slope from its output.
fn tanh_slope(g: &mut Graph, y: &Value) -> Value {
    let sq = g.op("Mul", &[y, y], vec![]);
    one_minus(g, &sq)
}

fn split(g: &mut Graph, x: &Value, axis: i64, sizes: &[i64]) -> Vec<Value> {
    let s = g.const_i64(&[sizes.len() as i64], sizes);
    g.op_multi(
        "Split",
        &[Some(x), Some(&s)],
        vec![Attr::Int("axis", axis)],
        sizes.len(),
    )
}

/// The blocks of the contraction length `k` in which ONNX Runtime's CPU matrix
/// product (MLAS) sums `[M, k] · [k, n]` on one thread: its `StrideK` for `n`
/// output columns (`MLAS_SGEMM_STRIDEN` and `MLAS_SGEMM_STRIDEK` are both 128).
///
/// On several threads MLAS may hand each thread a slice of the `n` columns, and
/// a narrower slice gets longer blocks, which round otherwise. Products whose
/// blocks are separate ops, added in order, sum alike on any number of threads,
/// and as one thread summed the whole product.
fn product_blocks(n: i64, k: i64) -> Vec<i64> {
    let (mut stride_n, mut stride_k) = (128, 128);
    if n >= k {
        // A wide product halves the block (doubling the column slice) down to `k`.
        while stride_k / 2 >= k {
            stride_k /= 2;
        }
    } else {
        // A narrow one doubles it for each halving of the column slice.
        while stride_n > 16 && stride_n / 2 >= n {
            stride_k *= 2;
            stride_n /= 2;
        }
    }
    let mut blocks = vec![stride_k; (k / stride_k) as usize];
    if k % stride_k != 0 {
        blocks.push(k % stride_k);
    }
    blocks
}

/// A recurrent weight matrix `[k, n]` split once, in the outer graph, into the
/// row blocks of [`product_blocks`], for products inside a `Scan` body.
struct BlockedWeights {
    blocks: Vec<i64>,
    parts: Vec<Value>,
}

impl BlockedWeights {
    /// `weights [k, n]` in blocks when `in_blocks`, else whole.
    fn new(g: &mut Graph, weights: &Value, k: i64, n: i64, in_blocks: bool) -> Self {
        let blocks = if in_blocks {
            product_blocks(n, k)
        } else {
            vec![k]
        };
        let parts = match blocks.len() {
            1 => vec![weights.clone()],
            _ => split(g, weights, 0, &blocks),
        };
        BlockedWeights { blocks, parts }
    }

    /// `x [B, k] · weights (+ bias)` in `body`, one product per block, added in
    /// order after the first (which takes the bias).
    fn product(&self, body: &mut Graph, x: &Value, bias: Option<&Value>) -> Value {
        let x_parts = match self.blocks.len() {
            1 => vec![x.clone()],
            _ => split(body, x, 1, &self.blocks),
        };
        let mut sum = match bias {
            Some(bias) => body.op("Gemm", &[&x_parts[0], &self.parts[0], bias], vec![]),
            None => body.op("MatMul", &[&x_parts[0], &self.parts[0]], vec![]),
        };
        for (x_part, w_part) in x_parts.iter().zip(&self.parts).skip(1) {
            let term = body.op("MatMul", &[x_part, w_part], vec![]);
            sum = body.op("Add", &[&sum, &term], vec![]);
        }
        sum
    }
}

/// A Scan body under construction: its graph and its declared state/scan inputs.
struct Body {
    graph: Graph,
    inputs: Vec<String>,
}

impl Body {
    fn new(outer: &mut Graph, hint: &str) -> Self {
        let name = outer.fresh(hint);
        Body {
            graph: Graph::new(&name),
            inputs: Vec::new(),
        }
    }

    /// A body input `[B, width]`.
    fn input(&mut self, hint: &str, width: i64) -> Value {
        let name = format!("{}/{hint}", self.graph.name());
        self.inputs.push(name.clone());
        self.graph
            .input(&name, Elem::F32, &[Dim::Sym("batch"), Dim::Fixed(width)])
    }

    /// Declares the body outputs. A value is output under its own name, so no
    /// copy is made; only a value listed twice (a state that is also a scan
    /// output) or a body input gets an `Identity` under a new name.
    fn outputs(&mut self, values: &[&Value]) {
        let mut used = std::collections::HashSet::new();
        for (k, v) in values.iter().enumerate() {
            if !self.inputs.contains(&v.0) && used.insert(v.0.clone()) {
                self.graph.output_untyped(v, &v.0);
            } else {
                let name = format!("{}/out{k}", self.graph.name());
                self.graph.output_untyped(v, &name);
            }
        }
    }
}

/// A `Scan` node over `states` then `scans` (all along axis 0), `reverse`
/// running from the last step to the first (outputs still in time order).
fn scan_node(
    g: &mut Graph,
    body: Body,
    states: &[&Value],
    scans: &[&Value],
    n_scan_outputs: usize,
    reverse: bool,
) -> Vec<Value> {
    let inputs: Vec<Option<&Value>> = states.iter().chain(scans).map(|v| Some(*v)).collect();
    let dir = reverse as i64;
    g.op_multi(
        "Scan",
        &inputs,
        vec![
            Attr::Graph("body", body.graph),
            Attr::Int("num_scan_inputs", scans.len() as i64),
            Attr::Ints("scan_input_directions", vec![dir; scans.len()]),
            Attr::Ints("scan_output_directions", vec![dir; n_scan_outputs]),
        ],
        states.len() + n_scan_outputs,
    )
}

#[cfg(test)]
mod tests {
    use super::product_blocks;

    #[test]
    fn products_split_where_one_thread_of_onnx_runtime_splits_them() {
        // G's LSTM: `dgates [B, 512] · R [512, 128]` in MLAS's 128-wide blocks.
        assert_eq!(product_blocks(128, 512), [128; 4]);
        // The notebook's W (hidden 50): 50 columns take blocks of 256, so 200 is one.
        assert_eq!(product_blocks(50, 200), [200]);
        assert_eq!(product_blocks(64, 256), [256]);
        assert_eq!(product_blocks(32, 128), [128]);
        // Hidden 200: the backward's 800 and the forward's `h · Rᵀ` (200 into 800 columns).
        assert_eq!(product_blocks(200, 800), [128, 128, 128, 128, 128, 128, 32]);
        assert_eq!(product_blocks(800, 200), [128, 72]);
        // A wide product of a short contraction is one block.
        assert_eq!(product_blocks(512, 128), [128]);
        assert_eq!(product_blocks(512, 40), [40]);
    }
}
