//! LSTM gate activations (sigmoid and tanh from the Q15 table): eight rows per
//! pass with AVX2 (a gather per lookup), sixteen with AVX-512 (the table held
//! in registers, looked up by permutes).

use core::arch::x86_64::{
    __m256i, __m512i, _mm256_add_epi32, _mm256_and_si256, _mm256_blendv_epi8,
    _mm256_i32gather_epi32, _mm256_loadu_si256, _mm256_max_epi32, _mm256_min_epi32,
    _mm256_mullo_epi32, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_slli_epi32, _mm256_srai_epi32,
    _mm256_srli_epi32, _mm256_storeu_si256, _mm256_sub_epi32, _mm512_add_epi32, _mm512_and_si512,
    _mm512_cmplt_epi32_mask, _mm512_cvtepi32_epi16, _mm512_loadu_si512, _mm512_mask_blend_epi32,
    _mm512_max_epi32, _mm512_min_epi32, _mm512_mullo_epi32, _mm512_permutex2var_epi32,
    _mm512_set1_epi32, _mm512_setzero_si512, _mm512_slli_epi32, _mm512_srai_epi32,
    _mm512_srli_epi32, _mm512_sub_epi32, _mm512_test_epi32_mask, _mm512_xor_si512,
};

use super::{has_avx2, has_avx512, prescale::saturating_add_x8};
use crate::numeric::tables::SIGMOID_Q15;

/// LSTM gate outputs of every row, unit-major (`unit * 4 + gate`, gates
/// i, o, f, c): `out[k] = sigmoid(x[k] +sat h[k])` for i, o, f and
/// `tanh(x[k] +sat h[k])` for c, exactly as `int::sigmoid_q12` and
/// `int::tanh_q12` compute them. Needs `x`, `h` and `out` at least `rows` long
/// with `rows` a multiple of 8; returns false (writing nothing) otherwise or
/// without AVX2.
pub fn lstm_activations(x: &[i32], h: &[i32], rows: usize, out: &mut [i16]) -> bool {
    let fits = rows.is_multiple_of(8) && x.len() >= rows && h.len() >= rows && out.len() >= rows;
    if !(fits && has_avx2()) {
        return false;
    }
    let wide = if has_avx512() { rows / 16 * 16 } else { 0 };
    let (Some((x_wide, x_rest)), Some((h_wide, h_rest))) =
        (x.split_at_checked(wide), h.split_at_checked(wide))
    else {
        return false;
    };
    let Some((out_wide, out_rest)) = out.split_at_mut_checked(wide) else {
        return false;
    };
    // SAFETY: AVX2 is present (checked just above), and AVX-512 BW where
    // `wide` is not zero; the lengths are checked too.
    unsafe {
        if wide > 0 {
            lstm_activations_wide(x_wide, h_wide, out_wide);
        }
        lstm_activations_avx2(x_rest, h_rest, rows - wide, out_rest);
    }
    true
}

/// `v` clamped to `[lo, hi]`, lane by lane.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn clamp_x8(v: __m256i, lo: i32, hi: i32) -> __m256i {
    _mm256_min_epi32(
        _mm256_max_epi32(v, _mm256_set1_epi32(lo)),
        _mm256_set1_epi32(hi),
    )
}

/// `int::sigmoid_q12` of eight Q3.12 lanes, one gather per lookup.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn sigmoid_x8(x: __m256i) -> __m256i {
    let u = _mm256_add_epi32(
        clamp_x8(x, -(1 << 15), (1 << 15) - 1),
        _mm256_set1_epi32(1 << 15),
    );
    let index = _mm256_srli_epi32(u, 8);
    let frac = _mm256_and_si256(u, _mm256_set1_epi32(0xFF));
    let table = SIGMOID_Q15.as_ptr().cast::<i32>();
    // SAFETY: index <= 255, so each 4-byte read at byte 2 * index covers
    // entries index and index + 1 <= 256 of the 257-entry table.
    let pair = unsafe { _mm256_i32gather_epi32::<2>(table, index) };
    let lo = _mm256_and_si256(pair, _mm256_set1_epi32(0xFFFF));
    let hi = _mm256_srli_epi32(pair, 16);
    let step = _mm256_mullo_epi32(_mm256_sub_epi32(hi, lo), frac);
    _mm256_add_epi32(
        lo,
        _mm256_srai_epi32(_mm256_add_epi32(step, _mm256_set1_epi32(128)), 8),
    )
}

/// [`doubled_x16`] on eight lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn doubled_x8(x: __m256i) -> __m256i {
    _mm256_slli_epi32::<1>(clamp_x8(x, -(1 << 14), 1 << 14))
}

/// [`tanh_of_sigmoid_x16`] on eight lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn tanh_of_sigmoid_x8(s: __m256i) -> __m256i {
    let t = _mm256_sub_epi32(_mm256_slli_epi32::<1>(s), _mm256_set1_epi32(1 << 15));
    clamp_x8(t, -(i16::MAX as i32), i16::MAX as i32)
}

/// `int::tanh_q12` of eight Q3.12 lanes.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn tanh_x8(x: __m256i) -> __m256i {
    tanh_of_sigmoid_x8(sigmoid_x8(doubled_x8(x)))
}

#[target_feature(enable = "avx2")]
fn lstm_activations_avx2(x: &[i32], h: &[i32], rows: usize, out: &mut [i16]) {
    // Lanes 3 and 7 hold the cell candidates (gate c) of two units.
    let candidate = _mm256_setr_epi32(0, 0, 0, -1, 0, 0, 0, -1);
    let (xs, _) = x.as_chunks::<8>();
    let (hs, _) = h.as_chunks::<8>();
    let (outs, _) = out.as_chunks_mut::<8>();
    for ((xb, hb), ob) in xs.iter().zip(hs).zip(outs.iter_mut()).take(rows / 8) {
        // SAFETY: xb and hb are 8 i32, 32 bytes each.
        let (xv, hv) = unsafe {
            (
                _mm256_loadu_si256(xb.as_ptr().cast()),
                _mm256_loadu_si256(hb.as_ptr().cast()),
            )
        };
        let pre = saturating_add_x8(xv, hv);
        let s = sigmoid_x8(_mm256_blendv_epi8(pre, doubled_x8(pre), candidate));
        let act = _mm256_blendv_epi8(s, tanh_of_sigmoid_x8(s), candidate);
        let mut lanes = [0i32; 8];
        // SAFETY: lanes is 8 i32, 32 bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), act) };
        for (o, &v) in ob.iter_mut().zip(&lanes) {
            *o = v as i16;
        }
    }
}

/// Each sigmoid table entry with its successor, `T[k] | T[k + 1] << 16`: one
/// lookup gives both ends of the interpolation.
// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const SIGMOID_PAIRS: [u32; 256] = {
    let mut pairs = [0u32; 256];
    let mut k = 0;
    while k < 256 {
        pairs[k] = SIGMOID_Q15[k] as u32 | (SIGMOID_Q15[k + 1] as u32) << 16;
        k += 1;
    }
    pairs
};

/// [`SIGMOID_PAIRS`] in eight register pairs of 32 entries, loaded once per
/// call.
#[derive(Clone, Copy)]
pub(super) struct SigmoidTable([[__m512i; 2]; 8]);

impl SigmoidTable {
    #[target_feature(enable = "avx512bw")]
    #[inline]
    pub(super) fn load() -> Self {
        let (chunks, _) = SIGMOID_PAIRS.as_chunks::<16>();
        let mut regs = [[_mm512_setzero_si512(); 2]; 8];
        for (r, chunk) in regs.iter_mut().flatten().zip(chunks) {
            // SAFETY: 64 bytes from a 16-entry chunk.
            *r = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
        }
        SigmoidTable(regs)
    }

    /// `int::sigmoid_q12` of sixteen Q3.12 lanes: each register pair serves
    /// 32 table indices, and the index's bits 5 to 7 pick among the eight
    /// results.
    #[target_feature(enable = "avx512bw")]
    #[inline]
    pub(super) fn sigmoid(&self, x: __m512i) -> __m512i {
        let x = clamp_x16(x, -(1 << 15), (1 << 15) - 1);
        let u = _mm512_add_epi32(x, _mm512_set1_epi32(1 << 15));
        let index = _mm512_srli_epi32::<8>(u);
        let frac = _mm512_and_si512(u, _mm512_set1_epi32(0xFF));
        let [p0, p1, p2, p3, p4, p5, p6, p7] = self
            .0
            .map(|[lo, hi]| _mm512_permutex2var_epi32(lo, index, hi));
        let bit = |b: u32| _mm512_test_epi32_mask(index, _mm512_set1_epi32(1 << b));
        let pick = |mask, lo, hi| _mm512_mask_blend_epi32(mask, lo, hi);
        let (b5, b6, b7) = (bit(5), bit(6), bit(7));
        let low = pick(b6, pick(b5, p0, p1), pick(b5, p2, p3));
        let high = pick(b6, pick(b5, p4, p5), pick(b5, p6, p7));
        let pair = pick(b7, low, high);
        let lo = _mm512_and_si512(pair, _mm512_set1_epi32(0xFFFF));
        let hi = _mm512_srli_epi32::<16>(pair);
        let step = _mm512_mullo_epi32(_mm512_sub_epi32(hi, lo), frac);
        _mm512_add_epi32(
            lo,
            _mm512_srai_epi32::<8>(_mm512_add_epi32(step, _mm512_set1_epi32(128))),
        )
    }
}

/// `v` clamped to `[lo, hi]`, lane by lane.
#[target_feature(enable = "avx512bw")]
#[inline]
pub(super) fn clamp_x16(v: __m512i, lo: i32, hi: i32) -> __m512i {
    _mm512_min_epi32(
        _mm512_max_epi32(v, _mm512_set1_epi32(lo)),
        _mm512_set1_epi32(hi),
    )
}

/// `2x`, saturated as the sigmoid table saturates: the argument of
/// [`tanh_of_sigmoid_x16`].
#[target_feature(enable = "avx512bw")]
#[inline]
fn doubled_x16(x: __m512i) -> __m512i {
    _mm512_slli_epi32::<1>(clamp_x16(x, -(1 << 14), 1 << 14))
}

/// `tanh(x) = 2 sigmoid(2x) - 1` from `sigmoid(2x)`, as `int::tanh_q12` has it.
#[target_feature(enable = "avx512bw")]
#[inline]
fn tanh_of_sigmoid_x16(s: __m512i) -> __m512i {
    let t = _mm512_sub_epi32(_mm512_slli_epi32::<1>(s), _mm512_set1_epi32(1 << 15));
    clamp_x16(t, -(i16::MAX as i32), i16::MAX as i32)
}

/// `int::tanh_q12` of sixteen Q3.12 lanes.
#[target_feature(enable = "avx512bw")]
#[inline]
pub(super) fn tanh_x16(table: &SigmoidTable, x: __m512i) -> __m512i {
    tanh_of_sigmoid_x16(table.sigmoid(doubled_x16(x)))
}

/// [`lstm_activations_avx2`] on sixteen rows per pass; `x`, `h` and `out` are
/// cut to whole passes.
#[target_feature(enable = "avx512bw")]
fn lstm_activations_wide(x: &[i32], h: &[i32], out: &mut [i16]) {
    // Lanes 3, 7, 11 and 15 hold the cell candidates (gate c) of four units.
    const CANDIDATE: u16 = 0x8888;
    let table = SigmoidTable::load();
    let (xs, _) = x.as_chunks::<16>();
    let (hs, _) = h.as_chunks::<16>();
    let (outs, _) = out.as_chunks_mut::<16>();
    for ((xb, hb), ob) in xs.iter().zip(hs).zip(outs.iter_mut()) {
        // SAFETY: xb and hb are 16 i32, 64 bytes each.
        let (xv, hv) = unsafe {
            (
                _mm512_loadu_si512(xb.as_ptr().cast()),
                _mm512_loadu_si512(hb.as_ptr().cast()),
            )
        };
        let pre = saturating_add_x16(xv, hv);
        let s = table.sigmoid(_mm512_mask_blend_epi32(CANDIDATE, pre, doubled_x16(pre)));
        let act = _mm512_mask_blend_epi32(CANDIDATE, s, tanh_of_sigmoid_x16(s));
        // SAFETY: ob is 16 i16, 32 bytes.
        unsafe { _mm256_storeu_si256(ob.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(act)) };
    }
}

/// `saturating_add` on sixteen i32 lanes (see `prescale::saturating_add_x8`).
#[target_feature(enable = "avx512bw")]
#[inline]
pub(super) fn saturating_add_x16(a: __m512i, b: __m512i) -> __m512i {
    let sum = _mm512_add_epi32(a, b);
    let overflow = _mm512_and_si512(_mm512_xor_si512(sum, a), _mm512_xor_si512(sum, b));
    let limit = _mm512_xor_si512(_mm512_srai_epi32::<31>(a), _mm512_set1_epi32(i32::MAX));
    let wrapped = _mm512_cmplt_epi32_mask(overflow, _mm512_setzero_si512());
    _mm512_mask_blend_epi32(wrapped, sum, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::int::{sigmoid_q12, tanh_q12};
    use std::vec;
    use std::vec::Vec;

    type Kernel = fn(&[i32], &[i32], usize, &mut [i16]);

    /// Every kernel this CPU can run, each on whole passes of its own width.
    fn kernels() -> Vec<(&'static str, Kernel, usize)> {
        let mut kernels: Vec<(&'static str, Kernel, usize)> = vec![(
            "dispatch",
            |x, h, rows, out| assert!(lstm_activations(x, h, rows, out)),
            8,
        )];
        if has_avx2() {
            // SAFETY: AVX2 checked just above.
            let avx2: Kernel = |x, h, rows, out| unsafe { lstm_activations_avx2(x, h, rows, out) };
            kernels.push(("AVX2", avx2, 8));
        }
        if has_avx512() {
            // SAFETY: AVX-512 BW checked just above.
            let wide: Kernel = |x, h, _, out| unsafe { lstm_activations_wide(x, h, out) };
            kernels.push(("AVX-512", wide, 16));
        }
        kernels
    }

    #[test]
    fn lstm_activations_equal_the_scalar_tables() {
        if !has_avx2() {
            return;
        }
        let mut values: Vec<i32> = (-70_000..70_000).step_by(37).collect();
        values.extend([
            i32::MIN,
            i32::MAX,
            -1,
            0,
            1,
            16384,
            -16384,
            32767,
            -32768,
            1 << 30,
        ]);
        // A length of whole AVX2 passes but not of AVX-512 ones, so the
        // dispatch runs both kernels.
        while !values.len().is_multiple_of(8) || values.len().is_multiple_of(16) {
            values.push(12345);
        }
        for (name, kernel, pass) in kernels() {
            let rows = values.len() / pass * pass;
            for h_offset in [0, 1 << 30, -(1 << 30), i32::MAX, i32::MIN, 4096] {
                let h: Vec<i32> = values.iter().map(|_| h_offset).collect();
                let mut out = vec![7i16; values.len()];
                kernel(&values[..rows], &h[..rows], rows, &mut out[..rows]);
                for (k, ((&x, &hv), &got)) in values.iter().zip(&h).zip(&out).enumerate() {
                    let pre = x.saturating_add(hv);
                    let want = match k {
                        _ if k >= rows => 7,
                        _ if k % 4 == 3 => tanh_q12(pre),
                        _ => sigmoid_q12(pre),
                    };
                    assert_eq!(got, want, "{name}, row {k}: x {x} h {hv}");
                }
            }
        }
        let mut out = [0i16; 8];
        assert!(!lstm_activations(&[0; 7], &[0; 7], 7, &mut out));
    }
}
