//! The f32 path, for hosts and FPU cores. `libm` gives correctly rounded-ish
//! exp/tanh (musl's), which keeps 400-step runs within 1e-5 of f64.

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

/// Independent partial sums, so the compiler can keep them in vector registers
/// (a single float sum cannot be reordered, so it would stay scalar).
const LANES: usize = 16;

/// `Σ w[k] * value(x[k])` over little-endian f32 weights, in [`LANES`] partial sums.
#[inline(always)]
fn dot_with<X: Copy>(w: &[u8], x: &[X], value: impl Fn(X) -> f32) -> f32 {
    let (w_blocks, w_tail) = w.as_chunks::<4>().0.as_chunks::<LANES>();
    let (x_blocks, x_tail) = x.as_chunks::<LANES>();
    let mut lanes = [0f32; LANES];
    for (wb, xb) in w_blocks.iter().zip(x_blocks) {
        for ((acc, &w), &x) in lanes.iter_mut().zip(wb).zip(xb) {
            *acc += f32::from_le_bytes(w) * value(x);
        }
    }
    let tail: f32 = w_tail
        .iter()
        .zip(x_tail)
        .map(|(&w, &x)| f32::from_le_bytes(w) * value(x))
        .sum();
    lanes.iter().sum::<f32>() + tail
}

#[inline(always)]
fn dot(w: &[u8], x: &[f32]) -> f32 {
    dot_with(w, x, |v| v)
}

/// [`dot`] with `x` as little-endian f32 bytes too (an embedding row), read in
/// place: no decoded copy per gate row.
#[inline(always)]
fn dot_bytes(w: &[u8], x: &[u8]) -> f32 {
    dot_with(w, x.as_chunks::<4>().0, f32::from_le_bytes)
}

/// The weights, sizes and input of one step.
#[derive(Debug, Clone, Copy)]
pub struct FloatStep<'a> {
    w: FloatParams<'a>,
    dims: Dims,
    x: Token<'a>,
}

/// `W[row]·x + wb[row]`.
#[inline(always)]
fn input_pre(w: &FloatParams<'_>, dims: &Dims, row: usize, x: Token<'_>) -> f32 {
    let wx = match x {
        Token::OneHot(id) => le_f32(w.w, flat_index(row, dims.input, id)),
        Token::Vector { row: e, .. } => dot_bytes(row_of(w.w, row, dims.input), e),
    };
    wx + le_f32(w.wb, row)
}

/// `R[row]·h + rb[row]`.
#[inline(always)]
fn hidden_pre(w: &FloatParams<'_>, dims: &Dims, row: usize, h: &[f32]) -> f32 {
    dot(row_of(w.r, row, dims.hidden), h) + le_f32(w.rb, row)
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
        _scratch: &mut (),
    ) -> FloatStep<'a> {
        FloatStep {
            w: *w,
            dims: *dims,
            x,
        }
    }

    #[inline(always)]
    fn unit_pres<const G: usize, const H: usize>(
        step: &FloatStep<'_>,
        _scratch: &(),
        unit: usize,
        h: &[f32],
    ) -> ([f32; G], [f32; G]) {
        let row = |gate: usize| flat_index(gate, step.dims.hidden, unit);
        (
            core::array::from_fn(|gate| input_pre(&step.w, &step.dims, row(gate), step.x)),
            core::array::from_fn(|gate| hidden_pre(&step.w, &step.dims, row(gate), h)),
        )
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
        1.0 / (1.0 + libm::expf(-x))
    }

    #[inline(always)]
    fn tanh(x: f32) -> f32 {
        libm::tanhf(x)
    }

    #[inline(always)]
    fn lstm_cell(f: f32, c: f32, i: f32, g: f32) -> f32 {
        f * c + i * g
    }

    #[inline(always)]
    fn lstm_hidden(o: f32, c: f32) -> f32 {
        o * libm::tanhf(c)
    }

    #[inline(always)]
    fn gru_hidden(z: f32, n: f32, h: f32) -> f32 {
        (1.0 - z) * n + z * h
    }

    #[inline(always)]
    fn head_dot(w: &FloatParams<'_>, dims: &Dims, row: usize, offset: usize, h: &[f32]) -> f32 {
        let start = flat_index(row, dims.features, offset).wrapping_mul(4);
        let weights = span(w.head_w, start, h.len().wrapping_mul(4));
        dot(weights, h)
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
        let total: f32 = logits.iter().map(|&l| libm::expf(l - max)).sum();
        for (p, &l) in out.iter_mut().zip(logits) {
            *p = libm::expf(l - max) / total;
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
            let w = libm::expf((l - max) / t);
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
