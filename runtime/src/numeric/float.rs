//! The f32 path, for hosts and FPU cores. Its exp and tanh ([`super::float_math`])
//! are within about 1 ulp, which keeps 400-step runs within 1e-5 of f64.

use super::float_math::{exp, sigmoid, tanh};
use super::{argmax, flat_index, span, Numeric, Token};
use crate::format::{Dims, FloatParams, Params};
use crate::sample::{Rng, Temperature};
use crate::Error;

/// The f32 numeric path.
#[derive(Debug, Clone, Copy)]
pub enum F32 {}

#[inline(always)]
fn le_f32(bytes: &[u8], index: usize) -> f32 {
    span(bytes, index.wrapping_mul(4), 4)
        .try_into()
        .map_or(0.0, f32::from_le_bytes)
}

#[inline(always)]
fn row_of(bytes: &[u8], row: usize, width: usize) -> &[u8] {
    let row_bytes = width.wrapping_mul(4);
    span(bytes, flat_index(row, row_bytes, 0), row_bytes)
}

/// Independent partial sums per row, so the compiler can keep them in vector
/// registers (a single float sum cannot be reordered, so it would stay scalar).
const LANES: usize = 8;

/// An input of a row sum: an f32, or one as little-endian bytes (an embedding
/// row, read in place).
trait RowInput: Copy {
    /// The input as an f32.
    fn value(self) -> f32;
    /// Where a vector kernel runs on this CPU: the sums of the first `columns`
    /// columns of rows `stride` bytes apart in `matrix` against `x`, as
    /// [`dot_rows_with`] forms them (lanes added as [`sum_lanes`] adds them,
    /// then the tail in order), into `out`, a row each, for its whole fours of
    /// rows; returns how many rows (0 where none runs).
    fn kernel_row_sums(
        matrix: &[u8],
        stride: usize,
        x: &[Self],
        columns: usize,
        out: &mut [f32],
    ) -> usize;
}

impl RowInput for f32 {
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }

    #[inline(always)]
    fn kernel_row_sums(
        _matrix: &[u8],
        _stride: usize,
        _x: &[f32],
        _columns: usize,
        _out: &mut [f32],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        return super::x86::f32_row_sums_of(_matrix, _stride, _x, _columns, _out);
        #[cfg(not(target_arch = "x86_64"))]
        0
    }
}

impl RowInput for [u8; 4] {
    #[inline(always)]
    fn value(self) -> f32 {
        f32::from_le_bytes(self)
    }

    #[inline(always)]
    fn kernel_row_sums(
        _matrix: &[u8],
        _stride: usize,
        _x: &[[u8; 4]],
        _columns: usize,
        _out: &mut [f32],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        return super::x86::f32_row_sums(_matrix, _stride, _x.as_flattened(), _columns, _out);
        #[cfg(not(target_arch = "x86_64"))]
        0
    }
}

#[cfg(target_arch = "x86_64")]
const _: () = assert!(LANES == super::x86::F32_LANES);

/// `Σ w[k] * x[k]` of each of the `R` rows of little-endian f32 weights: the
/// rows share each load of `x`, and each keeps [`LANES`] partial sums, added
/// as a tree at the end. A row's sum does not depend on `R` or on the other
/// rows, so hosts (four rows at a time) and bare metal (a unit's gate rows)
/// agree bit for bit. The sums run over the columns that `x` and every row
/// have. (Hosts' vector kernel gives the same values: see [`row_sums`].)
#[inline(always)]
fn dot_rows_with<const R: usize, X: RowInput>(rows: [&[u8]; R], x: &[X]) -> [f32; R] {
    let columns = rows
        .iter()
        .map(|row| row.len() / 4)
        .fold(x.len(), usize::min);
    let blocks = columns / LANES;
    let mut sums = portable_lanes(rows, x, blocks).map(sum_lanes);
    for (sum, row) in sums.iter_mut().zip(rows) {
        *sum += row_tail(row, x, blocks * LANES, columns);
    }
    sums
}

/// `Σ row[k] * x[k]` over the columns `from..columns` in order: those past a
/// row's whole blocks.
#[inline(always)]
fn row_tail<X: RowInput>(row: &[u8], x: &[X], from: usize, columns: usize) -> f32 {
    (from..columns)
        .map(|k| le_f32(row, k) * x.get(k).map_or(0.0, |&v| v.value()))
        .sum()
}

/// `out[r]` for every row `r` of `matrix`, whose rows are `width` weights
/// long and `stride` weights apart: the sum [`dot_rows`] gives of that row and
/// `x`. On hosts with a vector kernel, one call of it sums the whole fours of
/// rows (the same lanes, added in the same tree, then the tail in order), and
/// the rest go four rows at a time.
#[inline(always)]
fn row_sums<X: RowInput>(matrix: &[u8], stride: usize, width: usize, x: &[X], out: &mut [f32]) {
    let row = |r: usize| {
        let start = flat_index(r, stride, 0).wrapping_mul(4);
        span(matrix, start, width.wrapping_mul(4))
    };
    // The kernel reads rows in place, so it runs where every row is whole, and
    // each row then has the columns `dot_rows` finds.
    let whole = out.len().checked_sub(1).is_none_or(|last| {
        last.checked_mul(stride)
            .and_then(|start| start.checked_add(width))
            .and_then(|end| end.checked_mul(4))
            .is_some_and(|end| end <= matrix.len())
    });
    let columns = width.min(x.len());
    let done = match whole {
        true => X::kernel_row_sums(matrix, stride.wrapping_mul(4), x, columns, out),
        false => 0,
    };
    let rest = out.get_mut(done..).unwrap_or_default();
    fill_rows_in_fours(
        rest,
        |rows| dot_rows(rows.map(|r| row(done + r)), x),
        |r| dot_rows([row(done + r)], x),
    );
}

/// The partial sums of the rows' first `blocks` blocks (see [`dot_rows_with`]).
#[inline(always)]
fn portable_lanes<const R: usize, X: RowInput>(
    rows: [&[u8]; R],
    x: &[X],
    blocks: usize,
) -> [[f32; LANES]; R] {
    let row_blocks = rows.map(|row| {
        let blocks_of_row = row.as_chunks::<4>().0.as_chunks::<LANES>().0;
        blocks_of_row.get(..blocks).unwrap_or(&[])
    });
    let (x_blocks, _) = x.as_chunks::<LANES>();
    let mut lanes = [[0f32; LANES]; R];
    for (block, xb) in x_blocks.iter().take(blocks).enumerate() {
        let xv = xb.map(X::value);
        for (acc, row) in lanes.iter_mut().zip(&row_blocks) {
            if let Some(wb) = row.get(block) {
                for ((a, &w), &v) in acc.iter_mut().zip(wb).zip(&xv) {
                    *a += f32::from_le_bytes(w) * v;
                }
            }
        }
    }
    lanes
}

/// The lanes summed as a tree, halves onto halves: vector adds, where a sum
/// in order is a chain of dependent scalar adds.
#[inline(always)]
fn sum_lanes(lanes: [f32; LANES]) -> f32 {
    let [a, b, c, d, e, f, g, h] = lanes;
    ((a + e) + (c + g)) + ((b + f) + (d + h))
}

#[inline(always)]
fn dot(w: &[u8], x: &[f32]) -> f32 {
    let [sum] = dot_rows_with([w], x);
    sum
}

/// The f32 path's per-step buffers on hosts (see [`Numeric::Scratch`]): every
/// row's pre-activations, formed four rows at a time, then the cells of all
/// units in loops the compiler vectorises (activations included). Rows are in
/// ONNX order (`gate * hidden + unit`), in `4 H` entries, read flattened.
#[cfg(not(unit_steps))]
#[derive(Debug, Clone)]
pub struct FloatScratch<const H: usize> {
    /// `W·x + wb` of every row; an LSTM's gate outputs once the step formed them.
    x: [[f32; 4]; H],
    /// `R·h + rb` of every row.
    h: [[f32; 4]; H],
    /// How many units the buffers hold (0 where the model's rows do not fit).
    units: usize,
    /// `x` holds the next step's input pre-activations already
    /// (`Numeric::form_input`).
    input_formed: bool,
}

#[cfg(not(unit_steps))]
impl<const H: usize> Default for FloatScratch<H> {
    fn default() -> Self {
        FloatScratch {
            x: [[0.0; 4]; H],
            h: [[0.0; 4]; H],
            units: 0,
            input_formed: false,
        }
    }
}

/// `W·x + wb` of every row into `xs` (`dims.rows()` long), four rows at a time.
#[cfg(not(unit_steps))]
#[inline(always)]
fn host_input_pres(w: &FloatParams<'_>, dims: &Dims, x: Token<'_>, xs: &mut [f32]) {
    match x {
        Token::OneHot(_) => fill_rows_in_fours(
            xs,
            |rows| input_pres(w, dims, rows, x),
            |row| input_pres(w, dims, [row], x),
        ),
        Token::Vector { row: e, .. } => {
            row_sums(w.w, dims.input, dims.input, e.as_chunks::<4>().0, xs);
            add_biases(xs, w.wb);
        }
    }
}

/// [`host_input_pres`] of `T` embedding rows at once, `embeddings[t]`'s into
/// `outs[t]` (`dims.rows()` long each): the vector kernel shares each load of
/// `W` between them, and each token's sums are its own, bit for bit.
#[cfg(not(unit_steps))]
#[inline(always)]
fn host_input_pres_of<const T: usize>(
    w: &FloatParams<'_>,
    dims: &Dims,
    embeddings: [&[u8]; T],
    outs: [&mut [f32]; T],
) {
    #[cfg(target_arch = "x86_64")]
    let (done, outs) = {
        let mut outs = outs;
        let whole = embeddings.iter().all(|e| e.len() / 4 >= dims.input);
        let done = match whole {
            true => super::x86::f32_rows_of_inputs(
                w.w,
                dims.input.wrapping_mul(4),
                embeddings,
                dims.input,
                outs.each_mut().map(|out| &mut **out),
            ),
            false => 0,
        };
        (done, outs)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (e, out) in embeddings.into_iter().zip(outs) {
        if done == out.len() && done > 0 {
            add_biases(out, w.wb);
        } else {
            host_input_pres(w, dims, Token::Vector { row: e, shift: 0 }, out);
        }
    }
}

/// Fills [`FloatScratch`] for one step: both pre-activations of every row
/// (the input ones unless [`Numeric::form_input`] or [`Numeric::take_input`]
/// put them there), four rows at a time (the rows' sums are those of [`Numeric::unit_pres`], bit for
/// bit), then an LSTM's gate outputs in place of its input pre-activations.
#[cfg(not(unit_steps))]
#[inline(always)]
fn host_pres<const H: usize>(
    w: &FloatParams<'_>,
    dims: &Dims,
    x: Token<'_>,
    h: &[f32],
    s: &mut FloatScratch<H>,
) {
    let rows = dims.rows();
    let (Some(xs), Some(hs)) = (
        s.x.as_flattened_mut().get_mut(..rows),
        s.h.as_flattened_mut().get_mut(..rows),
    ) else {
        s.units = 0;
        return;
    };
    s.units = dims.hidden;
    if !core::mem::take(&mut s.input_formed) {
        host_input_pres(w, dims, x, xs);
    }
    row_sums(w.r, dims.hidden, dims.hidden, h, hs);
    add_biases(hs, w.rb);
    let lstm_split = (dims.gates == 4)
        .then(|| xs.split_at_mut_checked(3 * dims.hidden))
        .flatten()
        .zip(hs.split_at_checked(3 * dims.hidden));
    if let Some(((sigmoids, candidates), (h_sigmoids, h_candidates))) = lstm_split {
        #[cfg(target_arch = "x86_64")]
        if super::x86::f32_lstm_gate_outputs(sigmoids, h_sigmoids, candidates, h_candidates) {
            return;
        }
        lstm_gate_outputs(sigmoids, h_sigmoids, candidates, h_candidates);
    }
}

/// An LSTM's gate outputs in place of its input pre-activations, given the
/// recurrent ones: i, o and f are sigmoids; the candidate g (the last gate) a
/// tanh. Loops the compiler vectorises, at whatever width the caller is
/// compiled for (each lane does the same IEEE operations).
#[cfg(not(unit_steps))]
#[inline(always)]
pub(crate) fn lstm_gate_outputs(
    sigmoids: &mut [f32],
    h_sigmoids: &[f32],
    candidates: &mut [f32],
    h_candidates: &[f32],
) {
    for (v, &r) in sigmoids.iter_mut().zip(h_sigmoids) {
        *v = sigmoid(*v + r);
    }
    for (v, &r) in candidates.iter_mut().zip(h_candidates) {
        *v = tanh(*v + r);
    }
}

/// The LSTM cells of every unit from its gate outputs; returns how many.
#[cfg(not(unit_steps))]
#[inline(always)]
pub(crate) fn lstm_cell_updates(gates: [&[f32]; 4], c: &mut [f32], h: &mut [f32]) -> usize {
    let [i, o, f, g] = gates;
    let units = c
        .iter_mut()
        .zip(h.iter_mut())
        .zip(i.iter().zip(o))
        .zip(f.iter().zip(g));
    let mut done = 0;
    for (((c, h), (&i, &o)), (&f, &g)) in units {
        *c = F32::lstm_cell(f, *c, i, g);
        *h = F32::lstm_hidden(o, *c);
        done += 1;
    }
    done
}

/// The GRU cells of every unit from its input and recurrent pre-activations;
/// returns how many.
#[cfg(not(unit_steps))]
#[inline(always)]
pub(crate) fn gru_cell_updates(
    x: [&[f32]; 3],
    r: [&[f32]; 3],
    h_prev: &[f32],
    h: &mut [f32],
) -> usize {
    let ([xz, xr, xn], [hz, hr, hn]) = (x, r);
    let units = h
        .iter_mut()
        .zip(h_prev)
        .zip(xz.iter().zip(hz))
        .zip(xr.iter().zip(hr))
        .zip(xn.iter().zip(hn));
    let mut done = 0;
    for ((((h, &h_prev), (&xz, &hz)), (&xr, &hr)), (&xn, &hn)) in units {
        let z = sigmoid(xz + hz);
        let r = sigmoid(xr + hr);
        let n = tanh(xn + r * hn);
        *h = F32::gru_hidden(z, n, h_prev);
        done += 1;
    }
    done
}

/// `out[row]` for every row: four rows at a time through `four`, the rows
/// left over one at a time through `one` (the same values: see
/// [`dot_rows_with`]).
#[inline(always)]
fn fill_rows_in_fours(
    out: &mut [f32],
    mut four: impl FnMut([usize; 4]) -> [f32; 4],
    mut one: impl FnMut(usize) -> [f32; 1],
) {
    let done = out.len() - out.len() % 4;
    for (quad, values) in out.chunks_exact_mut(4).enumerate() {
        let rows = core::array::from_fn(|k| quad * 4 + k);
        for (value, sum) in values.iter_mut().zip(four(rows)) {
            *value = sum;
        }
    }
    for (row, value) in out.iter_mut().enumerate().skip(done) {
        [*value] = one(row);
    }
}

/// The first `G` gates' blocks of `hidden` rows each, of rows in ONNX order
/// (empty where `rows` runs out).
#[cfg(not(unit_steps))]
#[inline(always)]
fn gate_blocks<const G: usize>(rows: &[f32], hidden: usize) -> [&[f32]; G] {
    core::array::from_fn(|gate| {
        let start = flat_index(gate, hidden, 0);
        rows.get(start..start.wrapping_add(hidden)).unwrap_or(&[])
    })
}

/// The weights, sizes and input of one step.
#[derive(Debug, Clone, Copy)]
pub struct FloatStep<'a> {
    w: FloatParams<'a>,
    dims: Dims,
    x: Token<'a>,
}

/// [`dot_rows_with`] as each target runs it faster: hosts take the rows
/// together, bare metal two at a time (an FPU core has 32 single registers and
/// no vectors: four rows' partial sums spill). The sums are the same.
#[inline(always)]
fn dot_rows<const R: usize, X: RowInput>(rows: [&[u8]; R], x: &[X]) -> [f32; R] {
    #[cfg(unit_steps)]
    {
        let mut sums = [0f32; R];
        let mut outs = sums.chunks_exact_mut(2);
        let mut pairs = rows.chunks_exact(2);
        for (out, pair) in (&mut outs).zip(&mut pairs) {
            if let ([a, b], &[ra, rb]) = (out, pair) {
                [*a, *b] = dot_rows_with([ra, rb], x);
            }
        }
        for (out, &row) in outs.into_remainder().iter_mut().zip(pairs.remainder()) {
            [*out] = dot_rows_with([row], x);
        }
        sums
    }
    #[cfg(not(unit_steps))]
    dot_rows_with(rows, x)
}

/// `len` weights of dense row `row` from column `offset`, as bytes.
#[inline(always)]
fn head_row<'a>(
    w: &FloatParams<'a>,
    dims: &Dims,
    row: usize,
    offset: usize,
    len: usize,
) -> &'a [u8] {
    let start = flat_index(row, dims.features, offset).wrapping_mul(4);
    span(w.head_w, start, len.wrapping_mul(4))
}

/// `sums[r] + bias[r]` for each row `r`, as [`plus_bias`] adds them.
#[cfg(not(unit_steps))]
#[inline(always)]
fn add_biases(sums: &mut [f32], bias: &[u8]) {
    // A loaded blob holds a bias for every row (`from_bytes` checks it).
    for (sum, &b) in sums.iter_mut().zip(bias.as_chunks::<4>().0) {
        *sum += f32::from_le_bytes(b);
    }
}

/// `sums[g] + bias[rows[g]]` for each `g`.
#[inline(always)]
fn plus_bias<const G: usize>(mut sums: [f32; G], bias: &[u8], rows: [usize; G]) -> [f32; G] {
    for (sum, row) in sums.iter_mut().zip(rows) {
        *sum += le_f32(bias, row);
    }
    sums
}

/// `W[r]·x + wb[r]` of each row `r` of `rows`.
#[inline(always)]
fn input_pres<const G: usize>(
    w: &FloatParams<'_>,
    dims: &Dims,
    rows: [usize; G],
    x: Token<'_>,
) -> [f32; G] {
    let wx = match x {
        Token::OneHot(id) => rows.map(|row| le_f32(w.w, flat_index(row, dims.input, id))),
        Token::Vector { row: e, .. } => dot_rows(
            rows.map(|row| row_of(w.w, row, dims.input)),
            e.as_chunks::<4>().0,
        ),
    };
    plus_bias(wx, w.wb, rows)
}

/// `R[r]·h + rb[r]` of each row `r` of `rows`.
#[inline(always)]
fn hidden_pres<const G: usize>(
    w: &FloatParams<'_>,
    dims: &Dims,
    rows: [usize; G],
    h: &[f32],
) -> [f32; G] {
    let rh = dot_rows(rows.map(|row| row_of(w.r, row, dims.hidden)), h);
    plus_bias(rh, w.rb, rows)
}

impl Numeric for F32 {
    type Act = f32;
    type Pre = f32;
    type Logit = f32;
    // A plain f32 sum of a million steps' head dots drifts by a few thousandths.
    type HeadSum = f64;
    type Prob = f32;
    type Weights<'a> = FloatParams<'a>;
    type Step<'a> = FloatStep<'a>;
    #[cfg(not(unit_steps))]
    type Scratch<const H: usize> = FloatScratch<H>;
    #[cfg(unit_steps)]
    type Scratch<const H: usize> = ();

    #[inline(always)]
    fn weights<'a>(params: &Params<'a>) -> Result<FloatParams<'a>, Error> {
        match params {
            Params::F32(p) => Ok(*p),
            Params::Int(_) => Err(Error::WrongPath),
        }
    }

    #[inline(always)]
    fn embedding_row<'a>(w: &Self::Weights<'a>, dims: &Dims, id: usize) -> Token<'a> {
        Token::Vector {
            row: row_of(w.embedding, id, dims.input),
            shift: 0,
        }
    }

    #[inline(always)]
    fn begin_step<'a, const H: usize>(
        w: &FloatParams<'a>,
        dims: &Dims,
        x: Token<'a>,
        _h: &[f32],
        _scratch: &mut Self::Scratch<H>,
    ) -> FloatStep<'a> {
        #[cfg(not(unit_steps))]
        host_pres(w, dims, x, _h, _scratch);
        FloatStep {
            w: *w,
            dims: *dims,
            x,
        }
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn form_input<'s, const H: usize>(
        w: &FloatParams<'_>,
        dims: &Dims,
        x: Token<'_>,
        s: &'s mut FloatScratch<H>,
    ) -> Option<&'s [f32]> {
        let xs = s.x.as_flattened_mut().get_mut(..dims.rows())?;
        host_input_pres(w, dims, x, xs);
        s.input_formed = true;
        Some(&*xs)
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn form_inputs<const T: usize>(
        w: &FloatParams<'_>,
        dims: &Dims,
        xs: [Token<'_>; T],
        outs: [&mut [f32]; T],
    ) -> bool {
        let rows = dims.rows();
        let embeddings = xs.map(|x| match x {
            Token::Vector { row, .. } => Some(row),
            Token::OneHot(_) => None,
        });
        if embeddings.iter().any(Option::is_none) || outs.iter().any(|out| out.len() != rows) {
            return false;
        }
        host_input_pres_of(w, dims, embeddings.map(|e| e.unwrap_or_default()), outs);
        true
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn take_input<const H: usize>(dims: &Dims, pres: &[f32], s: &mut FloatScratch<H>) -> bool {
        let rows = s.x.as_flattened_mut().get_mut(..dims.rows());
        super::take_rows(rows, pres, &mut s.input_formed)
    }

    #[inline(always)]
    fn unit_pres<const G: usize, const H: usize>(
        step: &FloatStep<'_>,
        _scratch: &Self::Scratch<H>,
        unit: usize,
        h: &[f32],
    ) -> ([f32; G], [f32; G]) {
        let rows = core::array::from_fn(|gate| flat_index(gate, step.dims.hidden, unit));
        (
            input_pres(&step.w, &step.dims, rows, step.x),
            hidden_pres(&step.w, &step.dims, rows, h),
        )
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn lstm_cells<const H: usize>(s: &FloatScratch<H>, c: &mut [f32], h: &mut [f32]) -> usize {
        let gates = gate_blocks(s.x.as_flattened(), s.units);
        #[cfg(target_arch = "x86_64")]
        if let Some(done) = super::x86::f32_lstm_cell_updates(gates, c, h) {
            return done;
        }
        lstm_cell_updates(gates, c, h)
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn gru_cells<const H: usize>(s: &FloatScratch<H>, h_prev: &[f32], h: &mut [f32]) -> usize {
        let x = gate_blocks(s.x.as_flattened(), s.units);
        let r = gate_blocks(s.h.as_flattened(), s.units);
        #[cfg(target_arch = "x86_64")]
        if let Some(done) = super::x86::f32_gru_cell_updates(x, r, h_prev, h) {
            return done;
        }
        gru_cell_updates(x, r, h_prev, h)
    }

    #[inline(always)]
    fn add(a: f32, b: f32) -> f32 {
        a + b
    }

    #[inline(always)]
    fn gate_mul(gate: f32, pre: f32) -> f32 {
        gate * pre
    }

    #[inline(always)]
    fn sigmoid(x: f32) -> f32 {
        sigmoid(x)
    }

    #[inline(always)]
    fn tanh(x: f32) -> f32 {
        tanh(x)
    }

    #[inline(always)]
    fn lstm_cell(f: f32, c: f32, i: f32, g: f32) -> f32 {
        f * c + i * g
    }

    #[inline(always)]
    fn lstm_hidden(o: f32, c: f32) -> f32 {
        o * tanh(c)
    }

    #[inline(always)]
    fn gru_hidden(z: f32, n: f32, h: f32) -> f32 {
        (1.0 - z) * n + z * h
    }

    #[inline(always)]
    fn head_dot(w: &FloatParams<'_>, dims: &Dims, row: usize, offset: usize, h: &[f32]) -> f32 {
        dot(head_row(w, dims, row, offset, h.len()), h)
    }

    /// All rows together, as the cell's rows (the same sums as one at a time).
    #[inline(always)]
    fn head_rows(w: &FloatParams<'_>, dims: &Dims, h: &[f32], out: &mut [f32]) {
        row_sums(w.head_w, dims.features, h.len(), h, out);
    }

    #[inline(always)]
    fn head_bias(w: &FloatParams<'_>, row: usize) -> f32 {
        le_f32(w.head_b, row)
    }

    #[inline(always)]
    fn logit_add(a: f32, b: f32) -> f32 {
        a + b
    }

    #[inline(always)]
    fn head_sum_add(sum: f64, dot: f32) -> f64 {
        sum + dot as f64
    }

    #[inline(always)]
    fn head_sum_value(sum: f64) -> f32 {
        sum as f32
    }

    #[inline(always)]
    fn logit_div(sum: f32, count: u32) -> f32 {
        sum / count.max(1) as f32
    }

    #[inline(always)]
    fn sigmoid_prob(logit: f32) -> f32 {
        Self::sigmoid(logit)
    }

    #[inline(always)]
    fn softmax(logits: &[f32], out: &mut [f32]) {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = logits.iter().map(|&l| exp(l - max)).sum();
        for (p, &l) in out.iter_mut().zip(logits) {
            *p = exp(l - max) / total;
        }
    }

    #[inline(always)]
    fn sample(logits: &[f32], temperature: Temperature, rng: &mut Rng) -> usize {
        if temperature.milli() == 0 {
            return argmax(logits);
        }
        let t = temperature.milli() as f32 / 1000.0;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // A NaN logit, or an infinite one (inf - inf against the max), weighs nothing
        // rather than poisoning the total; if nothing is drawn, argmax below decides.
        let weight = |l: f32| {
            let w = exp((l - max) / t);
            if w.is_nan() {
                0.0
            } else {
                w
            }
        };
        let total: f32 = logits.iter().map(|&l| weight(l)).sum();
        let mut target = rng.next_f32() * total;
        for (i, &l) in logits.iter().enumerate() {
            let w = weight(l);
            if target < w {
                return i;
            }
            target -= w;
        }
        argmax(logits)
    }

    #[inline(always)]
    fn prob_to_f64(p: f32) -> f64 {
        p as f64
    }
}
