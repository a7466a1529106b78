//! Host-side model building (`std` feature): owned f32 weights in ONNX layout,
//! encoded into an f32 blob, or quantized into an integer blob.

use std::vec::Vec;

use crate::format::{
    encode, unit_major_index, Body, Cell, Dims, FloatParams, Head, Input, IntParams, Output,
    Params, Rescale, RowConsts, MAX_EMBEDDING_SHIFT, MAX_PRE_SHIFT, ONE_HOT,
};
use crate::numeric::int::{ACT_FRAC, LOGIT_FRAC, PRE_FRAC};
use crate::Error;

/// Owned input layer description.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// One-hot chars, as [`Input::Chars`].
    Chars {
        /// The table's Latin-1 chars in id order, each at most once.
        symbols: Vec<u8>,
        /// Whether text is lowercased before lookup.
        lowercase: bool,
        /// Whether the table has an UNK id, after the symbols.
        unk: bool,
        /// Whether the table has a PAD id, after UNK.
        pad: bool,
    },
    /// Word embedding, as [`Input::Words`].
    Words {
        /// The sorted words, concatenated.
        strings: Vec<u8>,
        /// n+1 little-endian u32 offsets of the words in `strings`.
        offsets: Vec<u8>,
        /// Width of an embedding row.
        embed_dim: u16,
    },
}

/// f32 weights in ONNX layout and gate order (see [`FloatParams`] for shapes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FloatWeights {
    /// `[rows, embed_dim]` for word input; empty for chars.
    pub embedding: Vec<f32>,
    /// ONNX `W`: `[gates * hidden, input_dim]`.
    pub w: Vec<f32>,
    /// ONNX `R`: `[gates * hidden, hidden]`.
    pub r: Vec<f32>,
    /// First half of ONNX `B`: `[gates * hidden]`.
    pub wb: Vec<f32>,
    /// Second half of ONNX `B`: `[gates * hidden]`.
    pub rb: Vec<f32>,
    /// Dense layer `[outputs, features]`.
    pub head_w: Vec<f32>,
    /// Dense bias `[outputs]`.
    pub head_b: Vec<f32>,
}

/// How int8 weight scales are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleScheme {
    /// One scale per gate matrix (TFLM / CMSIS-NN).
    PerGate,
    /// One scale per output row.
    PerRow,
}

/// A complete model on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The recurrent cell.
    pub cell: Cell,
    /// Hidden units.
    pub hidden: u16,
    /// The input layer.
    pub input: InputSpec,
    /// How the hidden states become the dense layer's features.
    pub head: Head,
    /// The output layer.
    pub output: Output,
    /// The trained weights, which both blobs are made from.
    pub weights: FloatWeights,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn i32_bytes(values: impl IntoIterator<Item = i32>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The fixed-point multiplier closest to `real` (`real >= 0`).
pub fn rescale_for(real: f64) -> Rescale {
    if !(real.is_finite() && real > 0.0) {
        return Rescale::new(0, 1).unwrap_or(Rescale::ONE);
    }
    // mult in [2^30, 2^31) where the shift range allows it.
    let mut shift: i32 = 30 - real.log2().floor() as i32;
    shift = shift.clamp(1, 62);
    let mut mult = (real * 2f64.powi(shift)).round();
    while mult >= 2f64.powi(31) && shift > 1 {
        shift -= 1;
        mult = (real * 2f64.powi(shift)).round();
    }
    let mult = mult.min(i32::MAX as f64) as i32;
    Rescale::new(mult, shift as u8).unwrap_or(Rescale::ONE)
}

/// The largest |v| of `values`.
fn largest_magnitude(values: &[f32]) -> f64 {
    values.iter().fold(0f64, |m, &v| m.max((v as f64).abs()))
}

/// The step that maps `largest` to 127; 0 for all-zero values, whose multiplier is
/// then 0 and so never sets the shift that the other rows' multipliers share.
fn int8_scale(largest: f64) -> f64 {
    if largest > 0.0 {
        largest / 127.0
    } else {
        0.0
    }
}

/// `v` in steps of `unit`, rounded and clamped to ±127, as a weight byte (0 when
/// `unit` is 0: the group is all zeros).
fn to_int8(v: f32, unit: f64) -> u8 {
    if unit <= 0.0 {
        return 0;
    }
    ((v as f64 / unit).round().clamp(-127.0, 127.0) as i8) as u8
}

/// Symmetric int8 quantization of `values` with one scale per `group` values.
/// Returns the int8 bytes and the scales.
fn quantize_groups(values: &[f32], group: usize) -> (Vec<u8>, Vec<f64>) {
    let mut bytes = Vec::with_capacity(values.len());
    let mut scales = Vec::new();
    for chunk in values.chunks(group.max(1)) {
        let scale = int8_scale(largest_magnitude(chunk));
        scales.push(scale);
        bytes.extend(chunk.iter().map(|&v| to_int8(v, scale)));
    }
    (bytes, scales)
}

/// The int8 embedding: one scale for the table (its largest entry maps to 127)
/// and, per row, the largest shift that keeps the row within ±127 once it is
/// stored `2^shift` times finer (see [`IntParams::embedding_shifts`]).
/// Returns the rows, their shifts and the table's scale.
fn quantize_embedding(values: &[f32], width: usize) -> (Vec<u8>, Vec<u8>, f64) {
    let rows = values.chunks(width.max(1));
    let max = largest_magnitude(values);
    let scale = int8_scale(max);
    let mut bytes = Vec::with_capacity(values.len());
    let mut shifts = Vec::with_capacity(values.len() / width.max(1));
    for row in rows {
        let largest = largest_magnitude(row);
        let mut shift = 0u8;
        while shift < MAX_EMBEDDING_SHIFT && largest * f64::from(2u32 << shift) <= max {
            shift += 1;
        }
        let unit = scale / f64::from(1u32 << shift);
        shifts.push(shift);
        bytes.extend(row.iter().map(|&v| to_int8(v, unit)));
    }
    (bytes, shifts, scale)
}

/// Row-major `R` (`rows` rows of `hidden` bytes) in the unit-major order the
/// integer kernels read (see [`unit_major_index`]).
fn unit_major(r: &[u8], gates: usize, hidden: usize) -> Vec<u8> {
    let mut out = std::vec![0u8; r.len()];
    for (row, values) in r.chunks(hidden.max(1)).enumerate() {
        for (col, &v) in values.iter().enumerate() {
            if let Some(slot) = out.get_mut(unit_major_index(gates, hidden, row, col)) {
                *slot = v;
            }
        }
    }
    out
}

/// Row-major `[gates * hidden][tokens]` to `[tokens][hidden][gates]` (see
/// [`IntParams::w`]).
fn by_token(w: &[u8], gates: usize, hidden: usize, tokens: usize) -> Vec<u8> {
    let rows = gates * hidden;
    let mut out = std::vec![0u8; w.len()];
    for (row, values) in w.chunks(tokens.max(1)).enumerate() {
        let (gate, unit) = (row / hidden.max(1), row % hidden.max(1));
        for (token, &v) in values.iter().enumerate() {
            if let Some(slot) = out.get_mut(token * rows + unit * gates + gate) {
                *slot = v;
            }
        }
    }
    out
}

fn scale_list(scales: &[f64], factor: f64) -> Vec<u8> {
    scales
        .iter()
        .flat_map(|s| rescale_for(s * factor).to_bytes())
        .collect()
}

fn fixed(values: &[f32], frac: u32) -> Vec<u8> {
    let one = (1u64 << frac) as f64;
    i32_bytes(values.iter().map(|&v| {
        (v as f64 * one)
            .round()
            .clamp(i32::MIN as f64, i32::MAX as f64) as i32
    }))
}

impl ModelSpec {
    fn body<'a>(&'a self, params: Params<'a>) -> Body<'a> {
        let input = match &self.input {
            InputSpec::Chars {
                symbols,
                lowercase,
                unk,
                pad,
            } => Input::Chars {
                symbols,
                lowercase: *lowercase,
                unk: *unk,
                pad: *pad,
            },
            InputSpec::Words {
                strings,
                offsets,
                embed_dim,
            } => Input::Words {
                strings,
                offsets,
                embed_dim: *embed_dim,
            },
        };
        Body {
            cell: self.cell,
            hidden: self.hidden,
            input,
            head: self.head,
            output: self.output,
            params,
        }
    }

    /// Sizes, checked as the runtime checks them.
    pub fn dims(&self) -> Result<Dims, Error> {
        let empty = FloatParams {
            embedding: &[],
            w: &[],
            r: &[],
            wb: &[],
            rb: &[],
            head_w: &[],
            head_b: &[],
        };
        Dims::of(&self.body(Params::F32(empty)))
    }

    /// The f32 blob.
    pub fn f32_blob(&self) -> Result<Vec<u8>, Error> {
        let w = &self.weights;
        let (embedding, wm, r, wb, rb, head_w, head_b) = (
            f32_bytes(&w.embedding),
            f32_bytes(&w.w),
            f32_bytes(&w.r),
            f32_bytes(&w.wb),
            f32_bytes(&w.rb),
            f32_bytes(&w.head_w),
            f32_bytes(&w.head_b),
        );
        let params = Params::F32(FloatParams {
            embedding: &embedding,
            w: &wm,
            r: &r,
            wb: &wb,
            rb: &rb,
            head_w: &head_w,
            head_b: &head_b,
        });
        encode(&self.body(params))
    }

    /// The integer blob: int8 weights with scales per gate or per row, Q3.12
    /// biases, Q16 dense bias.
    pub fn int_blob(&self, scheme: ScaleScheme) -> Result<Vec<u8>, Error> {
        let dims = self.dims()?;
        let w = &self.weights;
        let group = |width: usize| match scheme {
            ScaleScheme::PerGate => dims.hidden * width,
            ScaleScheme::PerRow => width,
        };
        let pre_one = (1u64 << PRE_FRAC) as f64;
        let act_one = (1u64 << ACT_FRAC) as f64;
        let logit_one = (1u64 << LOGIT_FRAC) as f64;

        // The real value of one unit of x: the embedding table's scale (a row's
        // shift is undone on its dot products), or 1 / ONE_HOT.
        let (embedding, embedding_shifts, embed_scale) = if dims.embedding_rows > 0 {
            quantize_embedding(&w.embedding, dims.input)
        } else {
            (Vec::new(), Vec::new(), 1.0 / ONE_HOT as f64)
        };
        let (wq, w_scales) = quantize_groups(&w.w, group(dims.input));
        let wq = if dims.embedding_rows > 0 {
            wq
        } else {
            by_token(&wq, dims.gates, dims.hidden, dims.input)
        };
        let (rq, r_scales) = quantize_groups(&w.r, group(dims.hidden));
        let rq = unit_major(&rq, dims.gates, dims.hidden);
        let (head_w, head_scales) = quantize_groups(&w.head_w, dims.features);
        let head_scale = scale_list(&head_scales, logit_one / act_one);
        let head_b = fixed(&w.head_b, LOGIT_FRAC);

        // Per-row multipliers sharing one shift per matrix.
        let per_row = |scales: &[f64], rows_per_scale: usize, factor: f64| -> Vec<f64> {
            (0..dims.rows())
                .map(|row| scales.get(row / rows_per_scale.max(1)).unwrap_or(&0.0) * factor)
                .collect()
        };
        let rows_per_scale = |scales: &[f64]| dims.rows() / scales.len().max(1);
        let w_real = per_row(&w_scales, rows_per_scale(&w_scales), embed_scale * pre_one);
        let r_real = per_row(&r_scales, rows_per_scale(&r_scales), pre_one / act_one);
        // Capped as the loader checks it.
        let w_shift_cap = dims
            .max_w_pre_shift()
            .ok_or(Error::OutOfRange("W scale (embedding too wide)"))?;
        let (w_mults, w_pre_shift) = q32_multipliers(&w_real, "W scale", w_shift_cap)?;
        // `R·h` can reach 2^30, so it gets no pre-shift.
        let (r_mults, r_pre_shift) = q32_multipliers(&r_real, "R scale", MAX_PRE_SHIFT)?;
        if r_pre_shift > 0 {
            return Err(Error::OutOfRange("R weights (|R| must stay below 508)"));
        }
        let units = row_consts(&dims, w, &w_mults, &r_mults);
        self.aligned_blob(IntParams {
            embedding: &embedding,
            embedding_shifts: &embedding_shifts,
            w: &wq,
            r_align: &[],
            r: &rq,
            units: &units,
            w_pre_shift,
            head_w: &head_w,
            head_scale: &head_scale,
            head_b: &head_b,
        })
    }

    /// Encodes `params` with the first padding that puts `r` on a 4-byte
    /// boundary of the blob.
    fn aligned_blob(&self, params: IntParams<'_>) -> Result<Vec<u8>, Error> {
        const PADDINGS: [&[u8]; 4] = [&[], &[0], &[0, 0], &[0, 0, 0]];
        let mut unaligned = Err(Error::Malformed);
        for r_align in PADDINGS {
            let params = IntParams { r_align, ..params };
            let blob = encode(&self.body(Params::Int(params)))?;
            let model = crate::Model::from_bytes(&blob)?;
            let Params::Int(p) = model.body().params else {
                return Err(Error::WrongPath);
            };
            let aligned = (p.r.as_ptr() as usize - blob.as_ptr() as usize).is_multiple_of(4);
            if aligned {
                return Ok(blob);
            }
            unaligned = Ok(blob);
        }
        unaligned
    }
}

/// Each gate row's constants ([`RowConsts`]), unit by unit: the W and R
/// multipliers and the Q3.12 biases.
fn row_consts(dims: &Dims, w: &FloatWeights, w_mults: &[i32], r_mults: &[i32]) -> Vec<u8> {
    let q12 = |v: f64| {
        (v * (1u64 << PRE_FRAC) as f64)
            .round()
            .clamp(i32::MIN as f64, i32::MAX as f64) as i32
    };
    let candidate = dims.gates == 3;
    let mut units = Vec::with_capacity(dims.rows() * RowConsts::BYTES);
    for unit in 0..dims.hidden {
        for gate in 0..dims.gates {
            let row = gate * dims.hidden + unit;
            let (wb, rb) = (
                *w.wb.get(row).unwrap_or(&0.0) as f64,
                *w.rb.get(row).unwrap_or(&0.0) as f64,
            );
            // GRU's candidate gate scales `R·h + rb` by the reset gate.
            let separate = candidate && gate == 2;
            let mult = |mults: &[i32]| mults.get(row).copied().unwrap_or(0);
            let consts = RowConsts {
                w_mult: mult(w_mults),
                r_mult: mult(r_mults),
                bias: if separate { q12(wb) } else { q12(wb + rb) },
                r_bias: if separate { q12(rb) } else { 0 },
            };
            units.extend_from_slice(&consts.to_bytes());
        }
    }
    units
}

/// Q32 multipliers for `reals` (all `>= 0`, see [`crate::format::scale_q32`]) and the
/// smallest pre-shift, at most `max_shift`, that keeps every one below 2^31.
fn q32_multipliers(
    reals: &[f64],
    what: &'static str,
    max_shift: u8,
) -> Result<(Vec<i32>, u8), Error> {
    let max = reals
        .iter()
        .copied()
        .filter(|r| r.is_finite())
        .fold(0f64, f64::max);
    let limit = 2f64.powi(31) - 1.0;
    let mut pre_shift = 0u8;
    while (max * 2f64.powi(32 - pre_shift as i32)).round() > limit {
        if pre_shift >= max_shift {
            return Err(Error::OutOfRange(what));
        }
        pre_shift += 1;
    }
    let mults = reals
        .iter()
        .map(|&r| {
            let m = (r * 2f64.powi(32 - pre_shift as i32)).round();
            if m.is_finite() {
                m.clamp(0.0, limit) as i32
            } else {
                0
            }
        })
        .collect();
    Ok((mults, pre_shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_rows_take_the_largest_shift_that_fits() {
        // Rows whose largest entries are 1, 1/2, 1/3, 1/100, 0 and 0.9.
        let rows = [1.0f32, 0.5, 1.0 / 3.0, 0.01, 0.0, 0.9];
        let values: Vec<f32> = rows.iter().flat_map(|&m| [m, -m / 2.0, m / 7.0]).collect();
        let (bytes, shifts, scale) = quantize_embedding(&values, 3);
        assert_eq!(shifts, [0, 1, 1, 6, MAX_EMBEDDING_SHIFT, 0]);
        assert!((scale - 1.0 / 127.0).abs() < 1e-12);
        for ((row, q), &shift) in values.chunks(3).zip(bytes.chunks(3)).zip(&shifts) {
            let unit = scale / f64::from(1u32 << shift);
            for (&v, &b) in row.iter().zip(q) {
                let back = (b as i8) as f64 * unit;
                assert!(
                    (back - v as f64).abs() <= unit / 2.0 + 1e-12,
                    "{v} -> {back}"
                );
            }
        }
        // Each row but the empty one uses at least half of the int8 range.
        for (q, &m) in bytes.chunks(3).zip(&rows) {
            let largest = q.iter().map(|&b| (b as i8).unsigned_abs()).max().unwrap();
            assert!(
                m == 0.0 || largest >= 64,
                "row of {m}: largest level {largest}"
            );
        }
    }

    #[test]
    fn unit_major_order_is_a_permutation() {
        for (gates, hidden) in [(4, 1), (3, 5), (4, 8), (3, 130), (4, 128)] {
            let rows = gates * hidden;
            let r: Vec<u8> = (0..rows * hidden).map(|i| (i % 251) as u8).collect();
            let mut seen = std::vec![false; r.len()];
            for row in 0..rows {
                for col in 0..hidden {
                    let at = unit_major_index(gates, hidden, row, col);
                    assert!(
                        !seen[at],
                        "gates {gates} hidden {hidden}: {row},{col} collides"
                    );
                    seen[at] = true;
                }
            }
            let out = unit_major(&r, gates, hidden);
            assert_eq!(
                out[unit_major_index(gates, hidden, rows - 1, hidden - 1)],
                *r.last().unwrap()
            );
        }
        // Unit 0 of an LSTM with 8 units: four columns of each gate, then the next four.
        assert_eq!(unit_major_index(4, 8, 8, 0), 4);
        assert_eq!(unit_major_index(4, 8, 0, 4), 16);
        assert_eq!(unit_major_index(4, 8, 1, 0), 32);
    }

    #[test]
    fn rescale_is_accurate_over_a_wide_range() {
        for exp in -30..20 {
            let real = 1.2345 * 2f64.powi(exp);
            let (mult, shift) = rescale_for(real).parts();
            let got = mult as f64 / 2f64.powi(shift as i32);
            assert!(
                (got / real - 1.0).abs() < 1e-8 || exp < -25,
                "{real}: {got}"
            );
        }
        let r = rescale_for(3.0);
        assert_eq!(r.apply(1000), 3000);
        assert_eq!(r.apply(-1000), -3000);
    }

    #[test]
    fn fast_rescale_equals_the_exact_rounded_product() {
        let mut rng = crate::Rng::new(1);
        let mut next = || rng.next_u32();
        for _ in 0..200_000 {
            let x = next() as i32;
            let mult = (next() >> 1) as i32;
            let shift = 1 + (next() % 62) as u8;
            let r = Rescale::new(mult, shift).unwrap();
            let exact = ((x as i128 * mult as i128) + (1i128 << (shift - 1))) >> shift;
            let want = exact.clamp(i32::MIN as i128, i32::MAX as i128) as i32;
            assert_eq!(r.apply(x), want, "x {x} mult {mult} shift {shift}");
        }
    }
}
