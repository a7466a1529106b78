//! The two numeric paths. The cell, head and sampling code in [`crate::net`] is
//! written once against [`Numeric`]; each path supplies its arithmetic.

#[cfg(cortex_m_dsp)]
mod dsp;
mod float;
mod float_math;
pub mod int;
mod tables;
#[cfg(target_arch = "x86_64")]
pub mod x86;

pub use float::F32;
pub use int::Int;

use crate::format::{Dims, Params};
use crate::sample::{Rng, Temperature};
use crate::Error;

/// The model input of one step.
#[derive(Debug, Clone, Copy)]
pub enum Token<'a> {
    /// A one-hot char: its weight is one column of `W` (a column add, no product).
    OneHot(usize),
    /// An embedding row, in the path's weight encoding. `shift` is the
    /// integer row's [`crate::format::IntParams::embedding_shifts`] entry
    /// (0 on the f32 path): `W·row` is `2^shift` times too large.
    Vector {
        /// The row's `embed_dim` values: int8, or little-endian f32.
        row: &'a [u8],
        /// How many times to halve `W·row` (always 0 on the f32 path).
        shift: u32,
    },
}

/// Arithmetic of one numeric path.
pub trait Numeric: Copy + core::fmt::Debug + 'static {
    /// Hidden state, cell state and gate outputs.
    type Act: Copy + Default + PartialEq + core::fmt::Debug;
    /// Gate pre-activations.
    type Pre: Copy + Default;
    /// Dense-layer logits and their accumulators.
    type Logit: Copy + Default + PartialEq + core::fmt::Debug;
    /// The flatten and mean heads' running sum over steps: f64 on the f32 path,
    /// so a text of millions of tokens sums as closely as a short one.
    type HeadSum: Copy + Default + core::fmt::Debug;
    /// Probabilities (sigmoid score or softmax entries).
    type Prob: Copy + Default + PartialEq + core::fmt::Debug;
    /// A validated view of this path's weights.
    type Weights<'a>: Copy;
    /// Per-step values, from [`Numeric::begin_step`].
    type Step<'a>: Copy;
    /// Buffers a path fills once per step for up to `H` hidden units, kept in
    /// the caller's [`crate::State`] so a step neither clears nor copies them
    /// (`()` where a path works unit by unit).
    type Scratch<const H: usize>: Clone + core::fmt::Debug + Default;

    /// Selects this path's weights; `Err(WrongPath)` for a blob of the other path.
    fn weights<'a>(params: &Params<'a>) -> Result<Self::Weights<'a>, Error>;
    /// The embedding row of token `id` (word models).
    fn embedding_row<'a>(w: &Self::Weights<'a>, dims: &Dims, id: usize) -> Token<'a>;
    /// What one step reads for every unit: the input token, the hidden state
    /// `h` (in kernel layout) and whatever the path decodes once per step
    /// rather than once per unit.
    fn begin_step<'a, const H: usize>(
        w: &Self::Weights<'a>,
        dims: &Dims,
        x: Token<'a>,
        h: &[Self::Act],
        scratch: &mut Self::Scratch<H>,
    ) -> Self::Step<'a>;
    /// Host steps: forms token `x`'s input pre-activations in `scratch` ahead
    /// of [`Numeric::begin_step`], which then takes them as they are, and
    /// returns them (`dims.rows()` long) for a caller that keeps them for the
    /// token's later steps ([`crate::InputMemo`]). `None` where the path forms
    /// them unit by unit (the device's steps); `begin_step` then forms them.
    #[inline(always)]
    fn form_input<'s, const H: usize>(
        _w: &Self::Weights<'_>,
        _dims: &Dims,
        _x: Token<'_>,
        _scratch: &'s mut Self::Scratch<H>,
    ) -> Option<&'s [Self::Pre]> {
        None
    }
    /// Host steps: the input pre-activations of the `T` tokens `xs`, each into
    /// its entry of `outs` (`dims.rows()` long), as [`Numeric::form_input`]
    /// forms them one by one: formed together, so that a kernel shares its
    /// loads of `W` between them. False where the path does not (a one-hot
    /// token, bare metal, no kernel for it) or an entry of `outs` has another
    /// length: `outs` then holds nothing to use, and each token's step forms
    /// its own.
    #[inline(always)]
    fn form_inputs<const T: usize>(
        _w: &Self::Weights<'_>,
        _dims: &Dims,
        _xs: [Token<'_>; T],
        _outs: [&mut [Self::Pre]; T],
    ) -> bool {
        false
    }
    /// Host steps: puts `pres`, a token's input pre-activations as
    /// [`Numeric::form_input`] returned them, in `scratch` for the next
    /// [`Numeric::begin_step`]. False, with nothing taken, where the path has no
    /// such buffer or `pres` is not `dims.rows()` long.
    #[inline(always)]
    fn take_input<const H: usize>(
        _dims: &Dims,
        _pres: &[Self::Pre],
        _scratch: &mut Self::Scratch<H>,
    ) -> bool {
        false
    }
    /// The hidden state in the layout [`Numeric::unit_pres`] and
    /// [`Numeric::head_dot`] read: `h` itself, unless a kernel needs another
    /// order, which it then writes into `scratch` (same length as `h`).
    #[inline(always)]
    fn kernel_layout<'h>(h: &'h [Self::Act], _scratch: &'h mut [Self::Act]) -> &'h [Self::Act] {
        h
    }
    /// The input and recurrent pre-activations of every gate `g` of `unit`:
    /// `W[r]·x + wb[r]` and `R[r]·h + rb[r]` with `r = g * hidden + unit`,
    /// `h` in kernel layout; `G` is the cell's gate count.
    fn unit_pres<const G: usize, const H: usize>(
        step: &Self::Step<'_>,
        scratch: &Self::Scratch<H>,
        unit: usize,
        h: &[Self::Act],
    ) -> ([Self::Pre; G], [Self::Pre; G]);
    /// The LSTM gate outputs `[i, o, f, g]` of `unit`, when the path formed
    /// them for the whole step in [`Numeric::begin_step`] (a vector kernel);
    /// `None` lets the cell compute them from [`Numeric::unit_pres`].
    #[inline(always)]
    fn lstm_gates<const H: usize>(
        _scratch: &Self::Scratch<H>,
        _unit: usize,
    ) -> Option<[Self::Act; 4]> {
        None
    }
    /// Runs the LSTM cell ([`Numeric::lstm_cell`], then
    /// [`Numeric::lstm_hidden`]) of the layer's first units at once, when the
    /// path formed the gate outputs for the whole step and has a vector kernel
    /// for the cell: updates `c`, writes `h` and returns how many units it
    /// did; the cell runs the rest unit by unit.
    #[inline(always)]
    fn lstm_cells<const H: usize>(
        _scratch: &Self::Scratch<H>,
        _c: &mut [Self::Act],
        _h: &mut [Self::Act],
    ) -> usize {
        0
    }
    /// Runs the GRU cell of the layer's first units at once from the gate
    /// pre-activations of the whole step, when the path has a vector kernel
    /// for it: writes `h` from `h_prev` and returns how many units it did;
    /// the cell runs the rest unit by unit.
    #[inline(always)]
    fn gru_cells<const H: usize>(
        _scratch: &Self::Scratch<H>,
        _h_prev: &[Self::Act],
        _h: &mut [Self::Act],
    ) -> usize {
        0
    }
    /// `a + b` (saturating on the integer path).
    fn add(a: Self::Pre, b: Self::Pre) -> Self::Pre;
    /// `gate * pre` (GRU reset gate times the recurrent part).
    fn gate_mul(gate: Self::Act, pre: Self::Pre) -> Self::Pre;
    /// The gate activation `1 / (1 + e^-x)`.
    fn sigmoid(x: Self::Pre) -> Self::Act;
    /// The candidate activation `tanh(x)`.
    fn tanh(x: Self::Pre) -> Self::Act;
    /// LSTM: `f * c + i * g`.
    fn lstm_cell(f: Self::Act, c: Self::Act, i: Self::Act, g: Self::Act) -> Self::Act;
    /// LSTM: `o * tanh(c)`.
    fn lstm_hidden(o: Self::Act, c: Self::Act) -> Self::Act;
    /// GRU: `(1 - z) * n + z * h`.
    fn gru_hidden(z: Self::Act, n: Self::Act, h: Self::Act) -> Self::Act;

    /// `head_w[row][offset .. offset + h.len()] · h`, in logit units, without
    /// bias; `h` in kernel layout.
    fn head_dot(
        w: &Self::Weights<'_>,
        dims: &Dims,
        row: usize,
        offset: usize,
        h: &[Self::Act],
    ) -> Self::Logit;
    /// [`Numeric::head_dot`] of rows `row` and `row + 1` over the whole of `h`
    /// (kernels may share loads of `h`).
    #[inline(always)]
    fn head_dot2(
        w: &Self::Weights<'_>,
        dims: &Dims,
        row: usize,
        h: &[Self::Act],
    ) -> (Self::Logit, Self::Logit) {
        (
            Self::head_dot(w, dims, row, 0, h),
            Self::head_dot(w, dims, row.wrapping_add(1), 0, h),
        )
    }
    /// [`Numeric::head_dot`] of every row `0..out.len()` over the whole of
    /// `h`, into `out`.
    #[inline(always)]
    fn head_rows(w: &Self::Weights<'_>, dims: &Dims, h: &[Self::Act], out: &mut [Self::Logit]) {
        head_rows_in_pairs::<Self>(w, dims, h, out);
    }
    /// The dense bias of output `row`, in logit units.
    fn head_bias(w: &Self::Weights<'_>, row: usize) -> Self::Logit;
    /// `a + b` (saturating on the integer path).
    fn logit_add(a: Self::Logit, b: Self::Logit) -> Self::Logit;
    /// `sum + dot`, one step into the head's running sum.
    fn head_sum_add(sum: Self::HeadSum, dot: Self::Logit) -> Self::HeadSum;
    /// The head's running sum as a logit.
    fn head_sum_value(sum: Self::HeadSum) -> Self::Logit;
    /// `sum / count` (mean head); `count` is never 0.
    fn logit_div(sum: Self::Logit, count: u32) -> Self::Logit;
    /// Sigmoid of a logit.
    fn sigmoid_prob(logit: Self::Logit) -> Self::Prob;
    /// Softmax of `logits` into `out` (same length).
    fn softmax(logits: &[Self::Logit], out: &mut [Self::Prob]);
    /// Draws an index from softmax(logits / T); T = 0 picks the arg max.
    fn sample(logits: &[Self::Logit], temperature: Temperature, rng: &mut Rng) -> usize;
    /// A probability as f64, for reports and tests on the host.
    fn prob_to_f64(p: Self::Prob) -> f64;
}

/// [`Numeric::take_input`] into a path's buffer of input pre-activations
/// (`None` where the model's rows do not fit it): copies `pres` there and
/// marks them `formed`, when `pres` has the buffer's length.
#[cfg(not(unit_steps))]
#[inline(always)]
pub(crate) fn take_rows<T: Copy>(rows: Option<&mut [T]>, pres: &[T], formed: &mut bool) -> bool {
    match rows {
        Some(rows) if rows.len() == pres.len() => {
            rows.copy_from_slice(pres);
            *formed = true;
            true
        }
        _ => false,
    }
}

/// [`Numeric::head_rows`] two rows at a time, so kernels can share loads of `h`.
#[inline(always)]
pub(crate) fn head_rows_in_pairs<N: Numeric>(
    w: &N::Weights<'_>,
    dims: &Dims,
    h: &[N::Act],
    out: &mut [N::Logit],
) {
    let rows = out.len();
    let mut pairs = out.chunks_exact_mut(2);
    for (pair, slots) in (&mut pairs).enumerate() {
        let (a, b) = N::head_dot2(w, dims, 2 * pair, h);
        if let [sa, sb] = slots {
            *sa = a;
            *sb = b;
        }
    }
    if let [last] = pairs.into_remainder() {
        *last = N::head_dot(w, dims, rows - 1, 0, h);
    }
}

/// `row * width + col`, wrapping: the kernels take whatever `Dims` and rows a
/// caller passes without an overflow panic, and compile to the plain product
/// (checked or saturating forms cost up to 5% of a step on Cortex-M4).
#[inline(always)]
pub(crate) fn flat_index(row: usize, width: usize, col: usize) -> usize {
    row.wrapping_mul(width).wrapping_add(col)
}

/// `len` bytes of `bytes` from `start`, empty where that runs out of range
/// (an end that wraps comes before its start, which `get` refuses).
#[inline(always)]
pub(crate) fn span(bytes: &[u8], start: usize, len: usize) -> &[u8] {
    bytes.get(start..start.wrapping_add(len)).unwrap_or(&[])
}

/// Index of the largest value, the first one on ties; NaN never wins (0 for an empty
/// slice or one of NaNs only).
pub(crate) fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    let mut best_value = None;
    for (i, &v) in values.iter().enumerate() {
        let comparable = v.partial_cmp(&v).is_some();
        if comparable && best_value.is_none_or(|b| v > b) {
            best = i;
            best_value = Some(v);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rng, Temperature};

    #[test]
    fn argmax_never_picks_nan() {
        assert_eq!(argmax(&[f32::NAN, 0.5, 2.0, 1.0]), 2);
        assert_eq!(argmax(&[1.0, f32::NAN, 1.0]), 0);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax::<f32>(&[]), 0);
    }

    #[test]
    fn sampling_skips_nan_logits() {
        // Logits overflowed to inf give inf - inf = NaN; such entries must not decide.
        let mut rng = Rng::new(1);
        for milli in [0, 500, 1000, 5000] {
            for _ in 0..50 {
                let logits = [f32::NAN, 1.0, f32::NAN, 2.0];
                let id = F32::sample(&logits, Temperature::from_milli(milli), &mut rng);
                assert!(id == 1 || id == 3, "{milli}: {id}");
            }
        }
        let id = F32::sample(
            &[f32::NAN, f32::INFINITY, 0.0],
            Temperature::from_milli(1000),
            &mut rng,
        );
        assert_eq!(id, 1);
    }
}
