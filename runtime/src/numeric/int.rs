//! The integer path: int8 weights, Q0.15 activations, Q4.11 cell state, Q3.12
//! gate pre-activations in i32, Q16 logits in i64. No float arithmetic: the same
//! blob gives bit-identical results on any core, FPU or not.

use super::tables::{EXP2_Q30, SIGMOID_Q15};
use super::{argmax, flat_index, span, Numeric, Token};
use crate::format::{scale_q32, Dims, IntParams, Params, Rescale, RowConsts, ONE_HOT};
use crate::sample::{Rng, Temperature};
use crate::Error;

/// The integer numeric path.
#[derive(Debug, Clone, Copy)]
pub enum Int {}

/// Fraction bits of gate pre-activations (Q3.12).
pub const PRE_FRAC: u32 = 12;
/// Fraction bits of activations and gates (Q0.15).
pub const ACT_FRAC: u32 = 15;
/// Fraction bits of the LSTM cell state (Q4.11).
pub const CELL_FRAC: u32 = 11;
/// Fraction bits of dense-layer logits (Q16).
pub const LOGIT_FRAC: u32 = 16;
/// Fraction bits of probabilities (Q0.30).
pub const PROB_FRAC: u32 = 30;

#[inline(always)]
const fn round_shift(x: i64, shift: u32) -> i64 {
    (x + (1 << (shift - 1))) >> shift
}

/// [`round_shift`] for values that stay within i32 (products of two i16).
#[inline(always)]
const fn round_shift32(x: i32, shift: u32) -> i32 {
    (x + (1 << (shift - 1))) >> shift
}

/// How a step's input dot products are aligned before their row multiplier:
/// `W·x · 2^left / 2^right`, rounded half up. One-hot chars and rows stored
/// finer than the embedding table's scale (see `IntParams::embedding_shifts`)
/// differ only here.
#[derive(Debug, Clone, Copy)]
struct InputShift {
    left: u32,
    right: u32,
}

impl InputShift {
    /// The shift of token `x` under the matrix's pre-shift.
    #[inline(always)]
    fn of(x: Token<'_>, w_pre_shift: u8) -> Self {
        let pre = w_pre_shift as u32;
        match x {
            Token::OneHot(_) => InputShift {
                left: ONE_HOT.trailing_zeros() + pre,
                right: 0,
            },
            Token::Vector { shift, .. } => InputShift {
                left: pre.saturating_sub(shift),
                right: shift.saturating_sub(pre),
            },
        }
    }

    /// `|wx|` is at most 65,535 int8 products (below 2^30), so the rounding
    /// term cannot overflow; the left shift wraps, as the unshifted path did.
    #[inline(always)]
    fn apply(self, wx: i32) -> i32 {
        let down = if self.right > 0 {
            round_shift32(wx, self.right)
        } else {
            wx
        };
        down.wrapping_shl(self.left)
    }

    /// [`InputShift::apply`] to every sum in place, deciding the rounding once
    /// rather than per value, so that each loop vectorises.
    #[cfg(all(target_arch = "x86_64", not(unit_steps)))]
    #[inline(always)]
    fn apply_all(self, sums: &mut [i32]) {
        if self.right > 0 {
            for v in sums.iter_mut() {
                *v = round_shift32(*v, self.right).wrapping_shl(self.left);
            }
        } else {
            for v in sums.iter_mut() {
                *v = v.wrapping_shl(self.left);
            }
        }
    }

    /// [`InputShift::apply`] to a one-hot token's byte of `W`, whose shift
    /// is left only: no rounding branch in the step's inner loop.
    #[inline(always)]
    fn one_hot(self, w: u8) -> i32 {
        (w as i8 as i32).wrapping_shl(self.left)
    }
}

#[inline(always)]
const fn sat16(x: i64) -> i16 {
    if x > i16::MAX as i64 {
        i16::MAX
    } else if x < i16::MIN as i64 {
        i16::MIN
    } else {
        x as i16
    }
}

/// Table lookup with linear interpolation; `u` is the index in 1/256 steps.
#[inline(always)]
fn interpolate<const N: usize>(table: &[u16; N], u: u32) -> i32 {
    let index = (u >> 8) as usize;
    let frac = (u & 0xFF) as i32;
    let lo = table.get(index).copied().unwrap_or(0) as i32;
    let hi = table.get(index + 1).copied().unwrap_or(lo as u16) as i32;
    lo + (((hi - lo) * frac + 128) >> 8)
}

/// sigmoid of a Q3.12 value, in Q0.15; saturates outside [-8, 8).
#[inline(always)]
pub fn sigmoid_q12(x: i32) -> i16 {
    let limit = 8 << PRE_FRAC;
    let u = (x.clamp(-limit, limit - 1) + limit) as u32;
    interpolate(&SIGMOID_Q15, u) as i16
}

/// tanh of a Q3.12 value, in Q0.15: `2 * sigmoid(2x) - 1`.
#[inline(always)]
pub fn tanh_q12(x: i32) -> i16 {
    let s = sigmoid_q12(x.saturating_mul(2)) as i32;
    (2 * s - (1 << ACT_FRAC)).clamp(-(i16::MAX as i32), i16::MAX as i32) as i16
}

/// log2 e in Q30.
pub(crate) const LOG2E_Q30: i64 = 1_549_082_005;

/// `exp(x)` for a Q16 value `x <= 0`, in Q0.30 (so `exp(0) = 1 << 30`).
/// One 32 x 32 -> 64 multiply; the rest stays in 32 bits (cheap on Cortex-M).
#[inline(always)]
pub fn exp_q16(x: i64) -> u32 {
    // exp(x) = 2^(x * log2 e).
    let x = x.clamp(-(64 << LOGIT_FRAC), 0) as i32;
    let y = ((x as i64 * LOG2E_Q30) >> 30) as i32; // >= -92.4 in Q16
    let whole = y >> LOGIT_FRAC; // <= 0
    let frac = (y & 0xFFFF) as u32; // [0, 1) in Q16
    let index = (frac >> 8) as usize;
    let lo = EXP2_Q30.get(index).copied().unwrap_or(0);
    let hi = EXP2_Q30.get(index + 1).copied().unwrap_or(0);
    // The table rises by less than 2^23 per entry, so this stays below 2^31.
    let mantissa = lo + ((hi.wrapping_sub(lo) * (frac & 0xFF) + 128) >> 8); // Q1.30 in [1, 2)
    match whole.unsigned_abs() {
        0 => mantissa,
        // mantissa < 2^31 and the rounding term <= 2^30: no overflow.
        shift @ 1..=31 => (mantissa + (1 << (shift - 1))) >> shift,
        _ => 0,
    }
}

/// Classes whose sampling weights [`Int::sample`] keeps on the stack rather
/// than computing twice.
const SAMPLE_CACHE: usize = 64;

#[inline(always)]
fn le_i32(bytes: &[u8], index: usize) -> i32 {
    bytes
        .as_chunks::<4>()
        .0
        .get(index)
        .map_or(0, |&b| i32::from_le_bytes(b))
}

/// What the integer path reads once per step (see [`Numeric::begin_step`]).
#[derive(Debug, Clone, Copy)]
pub struct IntStep<'a> {
    /// Bare metal works unit by unit, with no per-step buffers.
    #[cfg(unit_steps)]
    device: DeviceStep<'a>,
    #[cfg(not(unit_steps))]
    _weights: core::marker::PhantomData<&'a [u8]>,
}

/// What a bare-metal step reads for each unit.
#[cfg(unit_steps)]
#[derive(Debug, Clone, Copy)]
struct DeviceStep<'a> {
    x: Token<'a>,
    w: &'a [u8],
    /// A one-hot token's run of `W` (see `IntParams::w`); empty for words.
    w_token: &'a [u8],
    r: &'a [u8],
    #[cfg(cortex_m_dsp)]
    plan: super::dsp::UnitPlan,
    units: &'a [[u8; RowConsts::BYTES]],
    /// Alignment of `W·x` before its multiplier.
    shift: InputShift,
    #[cfg(not(cortex_m_dsp))]
    input: usize,
    hidden: usize,
}

/// The integer path's per-step buffers on hosts (see [`Numeric::Scratch`]):
/// every row's pre-activations are formed at once, which vectorises better
/// than unit by unit. Rows are unit-major (`unit * gates + gate`).
/// Sized for `H` units, so a small model's state stays small: each buffer holds `4 H`
/// rows, read flattened and unit-major (`unit * gates + gate`; a GRU's three rows a
/// unit do not line up with the inner arrays).
#[cfg(not(unit_steps))]
#[derive(Debug, Clone)]
pub struct HostScratch<const H: usize> {
    sums: [[i32; 4]; H],
    wx: [[i32; 4]; H],
    x: [[i32; 4]; H],
    h: [[i32; 4]; H],
    /// LSTM gate outputs of every row, when a vector kernel formed them.
    gates: [[i16; 4]; H],
    gates_ready: bool,
    /// `wx` holds the next step's input sums already (`Numeric::form_input`).
    input_formed: bool,
}

#[cfg(not(unit_steps))]
impl<const H: usize> Default for HostScratch<H> {
    fn default() -> Self {
        HostScratch {
            sums: [[0; 4]; H],
            wx: [[0; 4]; H],
            x: [[0; 4]; H],
            h: [[0; 4]; H],
            gates: [[0; 4]; H],
            gates_ready: false,
            input_formed: false,
        }
    }
}

/// The aligned input sums `W·x` of every row into `s.wx`, unit-major (a byte
/// of `W` for one-hot chars).
#[cfg(not(unit_steps))]
#[inline(always)]
fn host_input_sums<const H: usize>(
    w: &IntParams<'_>,
    dims: &Dims,
    x: Token<'_>,
    shift: InputShift,
    s: &mut HostScratch<H>,
) {
    match x {
        Token::OneHot(id) => {
            let wx = s.wx.as_flattened_mut();
            for (v, &b) in wx.iter_mut().zip(row_of(w.w, id, dims.rows())) {
                *v = shift.one_hot(b);
            }
        }
        #[cfg(target_arch = "x86_64")]
        Token::Vector { row: e, .. } if vector_sums_x86(w, dims, e, shift, s) => {}
        Token::Vector { row: e, .. } => {
            let wx = s.wx.as_flattened_mut();
            let units = wx.chunks_exact_mut(dims.gates.max(1)).take(dims.hidden);
            for (unit, out) in units.enumerate() {
                for (gate, v) in out.iter_mut().enumerate() {
                    let row = row_of(w.w, flat_index(gate, dims.hidden, unit), dims.input);
                    *v = shift.apply(dot_i8_i8(row, e));
                }
            }
        }
    }
}

/// Fills [`HostScratch`] for one step: the recurrent sums, the input sums
/// (unless [`Numeric::form_input`] or [`Numeric::take_input`] put them there),
/// then both through the rows' multipliers and biases.
#[cfg(not(unit_steps))]
#[inline(always)]
fn host_pres<const H: usize>(
    w: &IntParams<'_>,
    dims: &Dims,
    x: Token<'_>,
    h: &[i16],
    shift: InputShift,
    s: &mut HostScratch<H>,
) {
    recurrent_sums::<H>(w.r, dims, h, s.sums.as_flattened_mut());
    if !core::mem::take(&mut s.input_formed) {
        host_input_sums(w, dims, x, shift, s);
    }
    let (records, _) = w.units.as_chunks::<{ RowConsts::BYTES }>();
    let (wx, sums) = (s.wx.as_flattened(), s.sums.as_flattened());
    let (x_pres, h_pres) = (s.x.as_flattened_mut(), s.h.as_flattened_mut());
    #[cfg(target_arch = "x86_64")]
    let done = super::x86::prescale(records, wx, sums, x_pres, h_pres);
    #[cfg(not(target_arch = "x86_64"))]
    let done = false;
    if !done {
        let rows = x_pres.iter_mut().zip(h_pres.iter_mut()).zip(records);
        for (((x_pre, h_pre), record), (&wx, &sum)) in rows.zip(wx.iter().zip(sums)) {
            let c = RowConsts::from_bytes(record);
            *x_pre = scale_q32(wx, c.w_mult).saturating_add(c.bias);
            *h_pre = scale_q32(sum, c.r_mult).saturating_add(c.r_bias);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        s.gates_ready = dims.gates == 4
            && super::x86::lstm_activations(
                s.x.as_flattened(),
                s.h.as_flattened(),
                dims.rows(),
                s.gates.as_flattened_mut(),
            );
    }
}

/// [`Numeric::form_inputs`] on x86-64 hosts with AVX-512 VNNI: each pair of
/// tokens' `W·x` from one pass over `W` ([`super::x86::rows_dot_i8_i8_pair`];
/// an odd last token alone), each then shifted and laid out unit by unit, as
/// [`vector_sums_x86`] leaves one token's in `s.wx`. False where a token is
/// not an embedding row of `dims.input` values, an output is not
/// `dims.rows()` long, or the kernel does not run.
#[cfg(all(target_arch = "x86_64", not(unit_steps)))]
fn input_sums_together_x86<'x, const T: usize>(
    w: &IntParams<'_>,
    dims: &Dims,
    xs: [Token<'x>; T],
    outs: [&mut [i32]; T],
) -> bool {
    const MAX_ROWS: usize = 4 * crate::format::MAX_HIDDEN;
    let rows = dims.rows();
    let embedding = |x: &Token<'x>| -> Option<&'x [u8]> {
        match *x {
            Token::Vector { row, .. } if row.len() == dims.input => Some(row),
            _ => None,
        }
    };
    let fits = xs.iter().all(|x| embedding(x).is_some())
        && outs.iter().all(|out| out.len() == rows)
        && super::x86::has_avx512();
    if !fits {
        return false;
    }
    let mut sums = [[0i32; MAX_ROWS]; 2];
    let [sums_a, sums_b] = &mut sums;
    let (Some(sums_a), Some(sums_b)) = (sums_a.get_mut(..rows), sums_b.get_mut(..rows)) else {
        return false;
    };
    let lay_out = |x: Token<'_>, sums: &mut [i32], out: &mut [i32]| {
        InputShift::of(x, w.w_pre_shift).apply_all(sums);
        unit_major(dims, sums, out);
    };
    let mut tokens = xs.into_iter().zip(outs);
    while let Some((a, out_a)) = tokens.next() {
        let e_a = embedding(&a).unwrap_or_default();
        match tokens.next() {
            Some((b, out_b)) => {
                let e_b = embedding(&b).unwrap_or_default();
                let pair = [&mut *sums_a, &mut *sums_b];
                if !super::x86::rows_dot_i8_i8_pair(w.w, dims.input, [e_a, e_b], pair) {
                    return false;
                }
                lay_out(a, sums_a, out_a);
                lay_out(b, sums_b, out_b);
            }
            None => {
                if !super::x86::rows_dot_i8_i8(w.w, dims.input, e_a, sums_a) {
                    return false;
                }
                lay_out(a, sums_a, out_a);
            }
        }
    }
    true
}

/// `sums`, one per row in ONNX row order (`gate * hidden + unit`), into `wx`
/// unit by unit, each unit's gates together: the input sums' layout in
/// [`HostScratch::wx`].
#[cfg(all(target_arch = "x86_64", not(unit_steps)))]
#[inline(always)]
fn unit_major(dims: &Dims, sums: &[i32], wx: &mut [i32]) {
    let gates = dims.gates.max(1);
    let gate_sums = |g: usize| {
        sums.get(flat_index(g, dims.hidden, 0)..flat_index(g.wrapping_add(1), dims.hidden, 0))
            .unwrap_or(&[])
    };
    if gates == 4 {
        // The LSTM's four gates at once.
        let lanes = gate_sums(0)
            .iter()
            .zip(gate_sums(1))
            .zip(gate_sums(2))
            .zip(gate_sums(3));
        for (out, (((&i, &f), &c), &o)) in wx.as_chunks_mut::<4>().0.iter_mut().zip(lanes) {
            *out = [i, f, c, o];
        }
        return;
    }
    // Unit by unit, gate by gate: no division per row.
    for (unit, out) in wx.chunks_exact_mut(gates).take(dims.hidden).enumerate() {
        for (gate, v) in out.iter_mut().enumerate() {
            *v = sums
                .get(flat_index(gate, dims.hidden, unit))
                .copied()
                .unwrap_or(0);
        }
    }
}

/// `W·x` of every row for an embedding row `e`, through the x86 dense-rows
/// kernel: the sums formed in ONNX row order in `s.x` (free until the prescale
/// writes it), then aligned into `s.wx` in unit-major order. False, with
/// `s.wx` untouched, when the kernel does not run.
#[cfg(all(target_arch = "x86_64", not(unit_steps)))]
#[inline(always)]
fn vector_sums_x86<const H: usize>(
    w: &IntParams<'_>,
    dims: &Dims,
    e: &[u8],
    shift: InputShift,
    s: &mut HostScratch<H>,
) -> bool {
    let rows = dims.rows();
    let Some(sums) = s.x.as_flattened_mut().get_mut(..rows) else {
        return false;
    };
    if e.len() != dims.input || !super::x86::rows_dot_i8_i8(w.w, dims.input, e, sums) {
        return false;
    }
    shift.apply_all(sums);
    unit_major(dims, sums, s.wx.as_flattened_mut());
    true
}

/// Lanes of the dot-product kernels: 16 independent i32 sums let the
/// compiler use full-width multiply-add instructions (pmaddwd and friends).
#[cfg(not(target_arch = "arm"))]
const LANES: usize = 16;
/// Cortex-M has 13 usable registers: more sums than this would spill (cores
/// with the DSP extension use its kernels instead).
#[cfg(all(target_arch = "arm", not(cortex_m_dsp)))]
const LANES: usize = 4;

#[cfg(cortex_m_dsp)]
use super::dsp::{dot_i8_i16, dot_unit};

/// Adds the last `x_tail.len()` columns of a unit-major block (one run per
/// gate, see `format::unit_major_index`) to the gate sums.
#[inline(always)]
pub(super) fn tail_sums<const G: usize>(sums: &mut [i32; G], w_tail: &[u8], x_tail: &[i16]) {
    if x_tail.is_empty() {
        return;
    }
    for (sum, run) in sums.iter_mut().zip(w_tail.chunks(x_tail.len())) {
        *sum = run.iter().zip(x_tail).fold(*sum, |acc, (&w, &x)| {
            acc.wrapping_add((w as i8 as i32) * (x as i32))
        });
    }
}

/// The recurrent sums of every gate row (unit-major, see [`IntStep`]) for
/// hosts.
#[cfg(not(unit_steps))]
#[inline(always)]
fn recurrent_sums<const H: usize>(r: &[u8], dims: &Dims, h: &[i16], sums: &mut [i32]) {
    fn fill<const G: usize, const H: usize>(
        r: &[u8],
        hidden: usize,
        h: &[i16],
        out: &mut [[i32; G]],
    ) {
        #[cfg(target_arch = "x86_64")]
        if super::x86::unit_sums::<G>(r, hidden, h, out) {
            return;
        }
        portable_unit_sums::<G, H>(r, hidden, h, out);
    }
    match dims.gates {
        3 => fill::<3, H>(r, dims.hidden, h, sums.as_chunks_mut().0),
        _ => fill::<4, H>(r, dims.hidden, h, sums.as_chunks_mut().0),
    }
}

/// Portable [`recurrent_sums`]: `x` repeated to the shape of a unit's block
/// (see [`repeat_groups`]) turns each unit into one contiguous dot product
/// whose lane `l` belongs to gate `l / 4`.
#[cfg(not(unit_steps))]
#[inline(always)]
fn portable_unit_sums<const G: usize, const H: usize>(
    r: &[u8],
    hidden: usize,
    h: &[i16],
    out: &mut [[i32; G]],
) {
    // Sized by the state's H (G <= 4 runs of each group of four), not the format's limit.
    let mut repeated = [[0i16; 4]; H];
    let repeated = repeated.as_flattened_mut();
    repeat_groups(h, G, repeated);
    let (x_groups, x_tail) = h.as_chunks::<4>();
    for (unit, sums) in out.iter_mut().enumerate().take(hidden) {
        let block = row_of(r, unit, G.wrapping_mul(hidden));
        let whole = match G {
            4 => dot_repeated::<16>(block, repeated),
            _ => dot_repeated::<12>(block, repeated),
        };
        *sums = core::array::from_fn(|g| whole.get(g).copied().unwrap_or(0));
        let w_tail = block.get(x_groups.len() * 4 * G..).unwrap_or(&[]);
        tail_sums(sums, w_tail, x_tail);
    }
}

/// Lane sums of `w · repeated` over whole blocks of `BLOCK = 4 * G` values,
/// folded per gate (entries past `G` are 0).
#[cfg(not(unit_steps))]
#[inline(always)]
fn dot_repeated<const BLOCK: usize>(w: &[u8], repeated: &[i16]) -> [i32; 4] {
    let (w_blocks, _) = w.as_chunks::<BLOCK>();
    let (x_blocks, _) = repeated.as_chunks::<BLOCK>();
    let mut lanes = [0i32; BLOCK];
    for (wb, xb) in w_blocks.iter().zip(x_blocks) {
        for ((acc, &w), &x) in lanes.iter_mut().zip(wb).zip(xb) {
            *acc = acc.wrapping_add((w as i8 as i32) * (x as i32));
        }
    }
    let (gates, _) = lanes.as_chunks::<4>();
    core::array::from_fn(|g| {
        gates
            .get(g)
            .map_or(0, |lane| lane.iter().fold(0i32, |a, &b| a.wrapping_add(b)))
    })
}

/// Each whole group of four `x` values written `gates` times in a row, the
/// shape of a unit's block of a unit-major `R`.
#[cfg(not(unit_steps))]
#[inline(always)]
fn repeat_groups(x: &[i16], gates: usize, out: &mut [i16]) {
    let (groups, _) = x.as_chunks::<4>();
    for (block, group) in out.chunks_exact_mut(4 * gates.max(1)).zip(groups) {
        for slot in block.as_chunks_mut::<4>().0 {
            *slot = *group;
        }
    }
}

/// `Σ w[k] * widen(x[k])` for int8 weights, over independent lanes.
#[cfg(not(cortex_m_dsp))]
#[inline(always)]
fn dot_i8<X: Copy>(w: &[u8], x: &[X], widen: impl Fn(X) -> i32) -> i32 {
    let (w_blocks, w_tail) = w.as_chunks::<LANES>();
    let (x_blocks, x_tail) = x.as_chunks::<LANES>();
    let mut lanes = [0i32; LANES];
    for (wb, xb) in w_blocks.iter().zip(x_blocks) {
        for ((acc, &w), &x) in lanes.iter_mut().zip(wb).zip(xb) {
            *acc = acc.wrapping_add((w as i8 as i32) * widen(x));
        }
    }
    let tail = w_tail
        .iter()
        .zip(x_tail)
        .map(|(&w, &x)| (w as i8 as i32) * widen(x));
    lanes
        .iter()
        .copied()
        .chain(tail)
        .fold(0i32, i32::wrapping_add)
}

/// `Σ w[k] * x[k]` for int8 weights and 16-bit inputs.
#[cfg(not(cortex_m_dsp))]
#[inline(always)]
fn dot_i8_i16(w: &[u8], x: &[i16]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(sum) = super::x86::dot_i8_i16(w, x) {
        return sum;
    }
    dot_i8(w, x, i32::from)
}

/// `Σ w[k] * x[k]` for int8 weights and int8 inputs.
#[cfg(not(cortex_m_dsp))]
#[inline(always)]
fn dot_i8_i8(w: &[u8], x: &[u8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(sum) = super::x86::dot_i8_i8(w, x) {
        return sum;
    }
    dot_i8(w, x, |b: u8| b as i8 as i32)
}

#[inline(always)]
fn row_of(bytes: &[u8], row: usize, width: usize) -> &[u8] {
    span(bytes, flat_index(row, width, 0), width)
}

/// The recurrent sums of the `G` gates of `unit` without the DSP extension: its
/// block of a unit-major `r` (see `format::unit_major_index`) times `x`, one
/// group of four columns at a time, then the tail (as [`tail_sums`]).
// Compiled in tests too: hosts never run it, so its tests check it there.
#[cfg(any(all(unit_steps, not(cortex_m_dsp)), test))]
#[inline(always)]
fn portable_dot_unit<const G: usize>(r: &[u8], hidden: usize, unit: usize, x: &[i16]) -> [i32; G] {
    let block = G.wrapping_mul(hidden);
    let Some(w) = r
        .get(unit.wrapping_mul(block)..)
        .and_then(|b| b.get(..block))
    else {
        return [0; G];
    };
    let (x_groups, x_tail) = x.as_chunks::<4>();
    let (grouped, w_tail) = w
        .split_at_checked(x_groups.len().wrapping_mul(4 * G))
        .unwrap_or((&[], w));
    let (words, _) = grouped.as_chunks::<4>();
    let mut sums = [0i32; G];
    for (group, x4) in words.chunks_exact(G).zip(x_groups) {
        for (sum, w4) in sums.iter_mut().zip(group) {
            *sum = w4.iter().zip(x4).fold(*sum, |acc, (&w, &x)| {
                acc.wrapping_add((w as i8 as i32) * (x as i32))
            });
        }
    }
    tail_sums(&mut sums, w_tail, x_tail);
    sums
}

/// [`Numeric::unit_pres`] on microcontrollers: the unit's recurrent sums,
/// input sums and row constants, straight from flash.
#[cfg(unit_steps)]
#[inline(always)]
fn device_unit_pres<const G: usize>(
    step: &DeviceStep<'_>,
    unit: usize,
    h: &[i16],
) -> ([i32; G], [i32; G]) {
    #[cfg(cortex_m_dsp)]
    let sums = dot_unit::<G>(&step.plan, step.r, unit, h);
    #[cfg(not(cortex_m_dsp))]
    let sums = portable_dot_unit::<G>(step.r, step.hidden, unit, h);
    let Some(consts) = step
        .units
        .get(unit.wrapping_mul(G)..)
        .and_then(|c| c.first_chunk::<G>())
    else {
        return ([0; G], [0; G]);
    };
    let wx: [i32; G] = match step.x {
        Token::OneHot(_) => step
            .w_token
            .get(unit.wrapping_mul(G)..)
            .and_then(|w| w.first_chunk::<G>())
            .map_or([0; G], |w| w.map(|b| step.shift.one_hot(b))),
        Token::Vector { row: e, .. } => {
            #[cfg(cortex_m_dsp)]
            let sums = super::dsp::dot_gate_rows::<G>(step.w, step.hidden, unit, e);
            #[cfg(not(cortex_m_dsp))]
            let sums: [i32; G] = core::array::from_fn(|gate| {
                let row = row_of(step.w, flat_index(gate, step.hidden, unit), step.input);
                dot_i8_i8(row, e)
            });
            sums.map(|sum| step.shift.apply(sum))
        }
    };
    let mut input_pres = [0i32; G];
    let mut hidden_pres = [0i32; G];
    for (((x_pre, h_pre), consts), (&wx, &sum)) in input_pres
        .iter_mut()
        .zip(hidden_pres.iter_mut())
        .zip(consts)
        .zip(wx.iter().zip(&sums))
    {
        let c = RowConsts::from_bytes(consts);
        *x_pre = scale_q32(wx, c.w_mult).saturating_add(c.bias);
        // Only GRU's candidate rows may have an `r_bias` (checked at load).
        let r_bias = if G == 3 { c.r_bias } else { 0 };
        *h_pre = scale_q32(sum, c.r_mult).saturating_add(r_bias);
    }
    (input_pres, hidden_pres)
}

impl Numeric for Int {
    type Act = i16;
    type Pre = i32;
    type Logit = i64;
    type HeadSum = i64;
    type Prob = u32;
    type Weights<'a> = IntParams<'a>;
    type Step<'a> = IntStep<'a>;
    #[cfg(not(unit_steps))]
    type Scratch<const H: usize> = HostScratch<H>;
    #[cfg(unit_steps)]
    type Scratch<const H: usize> = ();

    #[inline(always)]
    fn weights<'a>(params: &Params<'a>) -> Result<IntParams<'a>, Error> {
        match params {
            Params::Int(p) => Ok(*p),
            Params::F32(_) => Err(Error::WrongPath),
        }
    }

    #[inline(always)]
    fn embedding_row<'a>(w: &Self::Weights<'a>, dims: &Dims, id: usize) -> Token<'a> {
        Token::Vector {
            row: row_of(w.embedding, id, dims.input),
            // Validated at load: every entry is at most MAX_EMBEDDING_SHIFT.
            shift: w.embedding_shifts.get(id).copied().unwrap_or(0) as u32,
        }
    }

    #[inline(always)]
    fn begin_step<'a, const H: usize>(
        w: &IntParams<'a>,
        dims: &Dims,
        x: Token<'a>,
        _h: &[i16],
        _scratch: &mut Self::Scratch<H>,
    ) -> IntStep<'a> {
        let shift = InputShift::of(x, w.w_pre_shift);
        #[cfg(not(unit_steps))]
        host_pres(w, dims, x, _h, shift, _scratch);
        IntStep {
            #[cfg(not(unit_steps))]
            _weights: core::marker::PhantomData,
            #[cfg(unit_steps)]
            device: DeviceStep {
                x,
                w: w.w,
                w_token: match x {
                    Token::OneHot(id) => row_of(w.w, id, dims.rows()),
                    Token::Vector { .. } => &[],
                },
                r: w.r,
                #[cfg(cortex_m_dsp)]
                plan: super::dsp::UnitPlan::new(w.r, _h, dims.gates, dims.hidden),
                units: w.units.as_chunks().0,
                shift,
                #[cfg(not(cortex_m_dsp))]
                input: dims.input,
                hidden: dims.hidden,
            },
        }
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn form_input<'s, const H: usize>(
        w: &IntParams<'_>,
        dims: &Dims,
        x: Token<'_>,
        s: &'s mut HostScratch<H>,
    ) -> Option<&'s [i32]> {
        host_input_sums(w, dims, x, InputShift::of(x, w.w_pre_shift), s);
        s.input_formed = true;
        s.wx.as_flattened().get(..dims.rows())
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn form_inputs<const T: usize>(
        w: &IntParams<'_>,
        dims: &Dims,
        xs: [Token<'_>; T],
        outs: [&mut [i32]; T],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        return input_sums_together_x86(w, dims, xs, outs);
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (w, dims, xs, outs);
            false
        }
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn take_input<const H: usize>(dims: &Dims, pres: &[i32], s: &mut HostScratch<H>) -> bool {
        let rows = s.wx.as_flattened_mut().get_mut(..dims.rows());
        super::take_rows(rows, pres, &mut s.input_formed)
    }

    #[cfg(cortex_m_dsp)]
    #[inline(always)]
    fn kernel_layout<'h>(h: &'h [i16], scratch: &'h mut [i16]) -> &'h [i16] {
        super::dsp::pair_layout(h, scratch);
        scratch
    }

    #[inline(always)]
    fn unit_pres<const G: usize, const H: usize>(
        _step: &IntStep<'_>,
        _scratch: &Self::Scratch<H>,
        unit: usize,
        _h: &[i16],
    ) -> ([i32; G], [i32; G]) {
        #[cfg(not(unit_steps))]
        {
            let at = |rows: &[i32]| {
                rows.get(unit.wrapping_mul(G)..)
                    .and_then(|r| r.first_chunk::<G>())
                    .copied()
                    .unwrap_or([0; G])
            };
            (at(_scratch.x.as_flattened()), at(_scratch.h.as_flattened()))
        }
        #[cfg(unit_steps)]
        device_unit_pres::<G>(&_step.device, unit, _h)
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn lstm_gates<const H: usize>(scratch: &HostScratch<H>, unit: usize) -> Option<[i16; 4]> {
        if !scratch.gates_ready {
            return None;
        }
        scratch.gates.get(unit).copied()
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn lstm_cells<const H: usize>(scratch: &HostScratch<H>, c: &mut [i16], h: &mut [i16]) -> usize {
        #[cfg(target_arch = "x86_64")]
        if scratch.gates_ready {
            return super::x86::lstm_cells(scratch.gates.as_flattened(), c, h);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (scratch, c, h);
        0
    }

    #[cfg(not(unit_steps))]
    #[inline(always)]
    fn gru_cells<const H: usize>(scratch: &HostScratch<H>, h_prev: &[i16], h: &mut [i16]) -> usize {
        #[cfg(target_arch = "x86_64")]
        return super::x86::gru_cells(
            scratch.x.as_flattened(),
            scratch.h.as_flattened(),
            h_prev,
            h,
        );
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (scratch, h_prev, h);
            0
        }
    }

    #[inline(always)]
    fn add(a: i32, b: i32) -> i32 {
        a.saturating_add(b)
    }

    #[inline(always)]
    fn gate_mul(gate: i16, pre: i32) -> i32 {
        round_shift(gate as i64 * pre as i64, ACT_FRAC) as i32
    }

    #[inline(always)]
    fn sigmoid(x: i32) -> i16 {
        sigmoid_q12(x)
    }

    #[inline(always)]
    fn tanh(x: i32) -> i16 {
        tanh_q12(x)
    }

    #[inline(always)]
    fn lstm_cell(f: i16, c: i16, i: i16, g: i16) -> i16 {
        // Q0.15 * Q4.11 -> Q4.11, and Q0.15 * Q0.15 -> Q4.11. Products of two
        // i16 and their rounded sum stay within i32.
        let keep = round_shift32(f as i32 * c as i32, ACT_FRAC);
        let write = round_shift32(i as i32 * g as i32, 2 * ACT_FRAC - CELL_FRAC);
        sat16((keep + write) as i64)
    }

    #[inline(always)]
    fn lstm_hidden(o: i16, c: i16) -> i16 {
        // Q4.11 -> Q3.12 is one bit left.
        let t = tanh_q12((c as i32) << (PRE_FRAC - CELL_FRAC));
        sat16(round_shift32(o as i32 * t as i32, ACT_FRAC) as i64)
    }

    #[inline(always)]
    fn gru_hidden(z: i16, n: i16, h: i16) -> i16 {
        let mix = round_shift(z as i64 * (h as i64 - n as i64), ACT_FRAC);
        sat16(n as i64 + mix)
    }

    #[inline(always)]
    fn head_dot(w: &IntParams<'_>, dims: &Dims, row: usize, offset: usize, h: &[i16]) -> i64 {
        let weights = span(w.head_w, flat_index(row, dims.features, offset), h.len());
        let scale = Rescale::read_checked_list(w.head_scale, row);
        scale.apply(dot_i8_i16(weights, h)) as i64
    }

    #[cfg(cortex_m_dsp)]
    #[inline(always)]
    fn head_dot2(w: &IntParams<'_>, dims: &Dims, row: usize, h: &[i16]) -> (i64, i64) {
        let weights = |row: usize| span(w.head_w, flat_index(row, dims.features, 0), h.len());
        let next = row.wrapping_add(1);
        let (a, b) = super::dsp::dot2_i8_i16(weights(row), weights(next), h);
        let scale = |row: usize| Rescale::read_checked_list(w.head_scale, row);
        (scale(row).apply(a) as i64, scale(next).apply(b) as i64)
    }

    /// All rows in one kernel call per 64 rows on x86-64 hosts.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn head_rows(w: &IntParams<'_>, dims: &Dims, h: &[i16], out: &mut [i64]) {
        const CHUNK: usize = 64;
        let width = dims.features;
        let mut sums = [0i32; CHUNK];
        for (index, chunk) in out.chunks_mut(CHUNK).enumerate() {
            let first = index * CHUNK;
            let rows = w.head_w.get(flat_index(first, width, 0)..).unwrap_or(&[]);
            let sums = sums.get_mut(..chunk.len()).unwrap_or(&mut []);
            if h.len() == width && super::x86::rows_dot_i8_i16(rows, width, h, sums) {
                for (k, (logit, &sum)) in chunk.iter_mut().zip(sums.iter()).enumerate() {
                    let scale = Rescale::read_checked_list(w.head_scale, first + k);
                    *logit = scale.apply(sum) as i64;
                }
            } else {
                for (k, logit) in chunk.iter_mut().enumerate() {
                    *logit = Self::head_dot(w, dims, first + k, 0, h);
                }
            }
        }
    }

    #[inline(always)]
    fn head_bias(w: &IntParams<'_>, row: usize) -> i64 {
        le_i32(w.head_b, row) as i64
    }

    #[inline(always)]
    fn logit_add(a: i64, b: i64) -> i64 {
        a.saturating_add(b)
    }

    #[inline(always)]
    fn head_sum_add(sum: i64, dot: i64) -> i64 {
        sum.saturating_add(dot)
    }

    #[inline(always)]
    fn head_sum_value(sum: i64) -> i64 {
        sum
    }

    #[inline(always)]
    fn logit_div(sum: i64, count: u32) -> i64 {
        sum / (count.max(1) as i64)
    }

    #[inline(always)]
    fn sigmoid_prob(logit: i64) -> u32 {
        // A flatten head sums up to 65,535 saturated dots: clamp before narrowing, so a
        // huge logit saturates instead of wrapping to the other sign.
        let q12 = round_shift(logit.clamp(-(1 << 40), 1 << 40), LOGIT_FRAC - PRE_FRAC);
        let q12 = q12.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        (sigmoid_q12(q12) as u32) << (PROB_FRAC - ACT_FRAC)
    }

    #[inline(always)]
    fn softmax(logits: &[i64], out: &mut [u32]) {
        let max = logits.iter().copied().max().unwrap_or(0);
        let total: u64 = logits
            .iter()
            .map(|&l| exp_q16(l.saturating_sub(max)) as u64)
            .sum();
        for (p, &l) in out.iter_mut().zip(logits) {
            let e = exp_q16(l.saturating_sub(max)) as u64;
            *p = ((e << PROB_FRAC) / total.max(1)) as u32;
        }
    }

    #[inline(always)]
    fn sample(logits: &[i64], temperature: Temperature, rng: &mut Rng) -> usize {
        let milli = temperature.milli() as i64;
        if milli == 0 {
            return argmax(logits);
        }
        let max = logits.iter().copied().max().unwrap_or(0);
        // 1/T in Q16: one division per draw, none per class (the M4 has no
        // 64-bit divide). |x| <= 2^36 and 1/T <= 2^26 keep the product in i64.
        let inv_t = (1000i64 << 16) / milli;
        let weight = |l: i64| {
            let x = l.saturating_sub(max).max(-(1 << 36));
            exp_q16((x * inv_t) >> 16)
        };
        let mut cache = [0u32; SAMPLE_CACHE];
        let cached = logits.len() <= SAMPLE_CACHE;
        #[cfg(target_arch = "x86_64")]
        let vector = match cached {
            true => super::x86::sample_weights(logits, max, inv_t, &mut cache),
            false => 0,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let vector = 0;
        let mut total = cache.iter().take(vector).map(|&w| w as u64).sum::<u64>();
        for (i, &l) in logits.iter().enumerate().skip(vector) {
            let w = weight(l);
            if let Some(slot) = cache.get_mut(i) {
                *slot = w;
            }
            total += w as u64;
        }
        // Uniform in [0, total): total < 2^47 for 65536 classes, so this stays in u128.
        let mut target = ((rng.next_u32() as u128 * total as u128) >> 32) as u64;
        for (i, &l) in logits.iter().enumerate() {
            let w = match cache.get(i) {
                Some(&w) if cached => w,
                _ => weight(l),
            } as u64;
            if target < w {
                return i;
            }
            target -= w;
        }
        argmax(logits)
    }

    #[inline(always)]
    fn prob_to_f64(p: u32) -> f64 {
        p as f64 / (1u64 << PROB_FRAC) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_and_tanh_track_f64() {
        let mut worst = (0.0f64, 0.0f64);
        for x in (-40_000..40_000).step_by(7) {
            let xf = x as f64 / 4096.0;
            let s = sigmoid_q12(x) as f64 / 32768.0;
            let t = tanh_q12(x) as f64 / 32768.0;
            worst.0 = worst.0.max((s - 1.0 / (1.0 + (-xf).exp())).abs());
            worst.1 = worst.1.max((t - xf.tanh()).abs());
        }
        assert!(worst.0 < 4e-4, "sigmoid error {}", worst.0);
        assert!(worst.1 < 1e-3, "tanh error {}", worst.1);
    }

    #[test]
    fn huge_logits_saturate_with_their_sign() {
        // A flatten head's sum of saturated dots can pass 2^35 (17 steps of 2^31).
        for logit in [1i64 << 31, 1 << 35, 3 << 34, 1 << 36, 1 << 40, i64::MAX] {
            let up = Int::prob_to_f64(Int::sigmoid_prob(logit));
            let down = Int::prob_to_f64(Int::sigmoid_prob(-logit));
            assert!(up > 0.999 && down < 0.001, "{logit}: {up} / {down}");
        }
    }

    #[test]
    fn unit_kernel_equals_row_by_row_sums() {
        use crate::format::unit_major_index;
        fn check<const G: usize>(hidden: usize) {
            let rows = G * hidden;
            let row_major: std::vec::Vec<u8> =
                (0..rows * hidden).map(|i| (i * 37 % 256) as u8).collect();
            let mut unit_major = std::vec![0u8; row_major.len()];
            for row in 0..rows {
                for col in 0..hidden {
                    unit_major[unit_major_index(G, hidden, row, col)] =
                        row_major[row * hidden + col];
                }
            }
            let h: std::vec::Vec<i16> = (0..hidden)
                .map(|k| (k as i16).wrapping_mul(997) ^ -32768)
                .collect();
            let mut all = std::vec![[0i32; G]; hidden];
            portable_unit_sums::<G, { crate::format::MAX_HIDDEN }>(
                &unit_major,
                hidden,
                &h,
                &mut all,
            );
            for (unit, got) in all.iter().enumerate() {
                // The bare-metal kernel, one unit at a time, gives the same sums.
                assert_eq!(
                    portable_dot_unit::<G>(&unit_major, hidden, unit, &h),
                    *got,
                    "G {G} hidden {hidden} unit {unit}"
                );
                for (gate, &sum) in got.iter().enumerate() {
                    let row = &row_major[(gate * hidden + unit) * hidden..][..hidden];
                    let want = row
                        .iter()
                        .zip(&h)
                        .map(|(&w, &x)| w as i8 as i32 * x as i32)
                        .sum::<i32>();
                    assert_eq!(sum, want, "G {G} hidden {hidden} unit {unit} gate {gate}");
                }
            }
        }
        for hidden in [1, 3, 4, 7, 16, 130] {
            check::<3>(hidden);
            check::<4>(hidden);
        }
    }

    /// The x86 word-input sums against their definition: unit-major rows
    /// `unit * gates + gate` of `W·e` (ONNX row `gate * hidden + unit`),
    /// through the input shift, for LSTM and GRU and both shift directions.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn word_input_sums_are_unit_major_and_shifted() {
        let mut seed = 0x2545_f491u32;
        let mut byte = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 24) as u8
        };
        for gates in [3, 4] {
            for (hidden, input) in [(1, 7), (5, 64), (16, 33), (50, 300)] {
                let rows = gates * hidden;
                let w: std::vec::Vec<u8> = (0..rows * input).map(|_| byte()).collect();
                let e: std::vec::Vec<u8> = (0..input).map(|_| byte()).collect();
                let params = IntParams {
                    embedding: &[],
                    embedding_shifts: &[],
                    w: &w,
                    r_align: &[],
                    r: &[],
                    units: &[],
                    w_pre_shift: 0,
                    head_w: &[],
                    head_scale: &[],
                    head_b: &[],
                };
                let dims = Dims {
                    gates,
                    hidden,
                    input,
                    tokens: 2,
                    features: hidden,
                    outputs: 1,
                    embedding_rows: 2,
                };
                for shift in [
                    InputShift { left: 2, right: 0 },
                    InputShift { left: 0, right: 3 },
                ] {
                    let mut scratch = HostScratch::<{ crate::format::MAX_HIDDEN }>::default();
                    if !vector_sums_x86(&params, &dims, &e, shift, &mut scratch) {
                        continue; // no AVX-512 VNNI here: the portable loop serves
                    }
                    for unit in 0..hidden {
                        for gate in 0..gates {
                            let row = &w[(gate * hidden + unit) * input..][..input];
                            let dot = row
                                .iter()
                                .zip(&e)
                                .map(|(&a, &b)| i32::from(a as i8) * i32::from(b as i8))
                                .sum::<i32>();
                            assert_eq!(
                                scratch.wx.as_flattened()[unit * gates + gate],
                                shift.apply(dot),
                                "gates {gates} hidden {hidden} unit {unit} gate {gate}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn exp_tracks_f64() {
        for x in (-20 << 16..=0).step_by(997) {
            let got = exp_q16(x) as f64 / (1u64 << 30) as f64;
            let want = (x as f64 / 65536.0).exp();
            assert!(
                (got - want).abs() < 2e-6 + want * 1e-4,
                "exp({x}): {got} vs {want}"
            );
        }
        assert_eq!(exp_q16(0), 1 << 30);
        assert_eq!(exp_q16(i64::MIN), 0);
    }

    #[test]
    fn exp_in_32_bits_equals_the_64_bit_form() {
        fn wide(x: i64) -> u32 {
            let y = (x.clamp(-(64 << 16), 0) * 1_549_082_005) >> 30;
            let (whole, frac) = (y >> 16, (y & 0xFFFF) as u64);
            let lo = EXP2_Q30[(frac >> 8) as usize] as u64;
            let hi = EXP2_Q30[(frac >> 8) as usize + 1] as u64;
            let mantissa = lo + (((hi - lo) * (frac & 0xFF) + 128) >> 8);
            match (-whole) as u32 {
                0 => mantissa as u32,
                s @ 1..=40 => ((mantissa + (1 << (s - 1))) >> s) as u32,
                _ => 0,
            }
        }
        for x in (-(70i64 << 16)..=0).step_by(13).chain([i64::MIN, -1, 0]) {
            assert_eq!(exp_q16(x), wide(x), "x = {x}");
        }
    }

    #[test]
    fn cell_arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(
            Int::lstm_cell(i16::MAX, i16::MAX, i16::MAX, i16::MAX),
            i16::MAX
        );
        assert_eq!(
            Int::lstm_cell(i16::MAX, i16::MIN, i16::MAX, -i16::MAX),
            i16::MIN
        );
        assert_eq!(
            // n + z (h - n) = 32767 + 65535 saturates.
            Int::gru_hidden(i16::MIN, i16::MAX, i16::MIN),
            i16::MAX
        );
        assert_eq!(Int::add(i32::MAX, 1), i32::MAX);
    }

    #[test]
    fn extreme_logits_never_overflow() {
        let mut rng = Rng::new(1);
        let cases: [&[i64]; 4] = [
            &[0; 64],
            &[i64::MAX; 64],
            &[i64::MIN, i64::MAX, 0, i64::MIN],
            &[i64::MIN; 3],
        ];
        for logits in cases {
            for milli in [0, 1, 1000, u32::MAX] {
                let k = Int::sample(logits, Temperature::from_milli(milli), &mut rng);
                assert!(k < logits.len());
            }
            let mut out = [0u32; 64];
            Int::softmax(logits, &mut out[..logits.len()]);
            let total: u64 = out.iter().map(|&p| p as u64).sum();
            assert!(total <= 1 << PROB_FRAC, "probabilities sum past 1: {total}");
        }
    }
}
