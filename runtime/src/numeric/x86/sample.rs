//! The sampling weights of a softmax at a temperature, eight classes per pass
//! with AVX-512.

use core::arch::x86_64::{
    __m256i, _mm256_storeu_si256, _mm512_add_epi64, _mm512_and_si512, _mm512_cmplt_epi64_mask,
    _mm512_cvtepi64_epi32, _mm512_cvtepu32_epi64, _mm512_i64gather_epi32, _mm512_loadu_si512,
    _mm512_mask_blend_epi64, _mm512_max_epi64, _mm512_min_epi64, _mm512_mul_epi32,
    _mm512_mul_epu32, _mm512_mullo_epi64, _mm512_set1_epi64, _mm512_setzero_si512,
    _mm512_sllv_epi64, _mm512_srai_epi64, _mm512_srli_epi64, _mm512_srlv_epi64, _mm512_sub_epi64,
    _mm512_xor_si512,
};

use super::{has_avx512, has_avx512dq};
use crate::numeric::int::{LOG2E_Q30, LOGIT_FRAC};
use crate::numeric::tables::EXP2_Q30;

/// Classes per pass.
const CLASSES: usize = 8;

/// The weights `Int::sample` draws from, for the first `8 * k` logits (all
/// that fit `out`): `exp_q16(((l -sat max).max(-2^36) * inv_t) >> 16)`,
/// exactly as the scalar code computes them (`int::exp_q16`). `max` is the
/// largest logit and `0 <= inv_t <= 2^26`. Returns the number of weights
/// written; 0 (writing nothing) without AVX-512 (BW and DQ) or outside
/// those bounds.
pub fn sample_weights(logits: &[i64], max: i64, inv_t: i64, out: &mut [u32]) -> usize {
    let n = logits.len().min(out.len()) / CLASSES * CLASSES;
    if n == 0 || !(0..=1 << 26).contains(&inv_t) || !(has_avx512() && has_avx512dq()) {
        return 0;
    }
    let (Some(logits), Some(out)) = (logits.get(..n), out.get_mut(..n)) else {
        return 0;
    };
    // SAFETY: AVX-512 BW and DQ are present (checked just above).
    unsafe { sample_weights_wide(logits, max, inv_t, out) };
    n
}

#[target_feature(enable = "avx512bw,avx512dq")]
fn sample_weights_wide(logits: &[i64], max: i64, inv_t: i64, out: &mut [u32]) {
    let splat = _mm512_set1_epi64;
    let (max_v, inv_t) = (splat(max), splat(inv_t));
    let zero = _mm512_setzero_si512();
    let (logit_chunks, _) = logits.as_chunks::<CLASSES>();
    let (out_chunks, _) = out.as_chunks_mut::<CLASSES>();
    for (l, o) in logit_chunks.iter().zip(out_chunks) {
        // SAFETY: 64 bytes from an 8-entry chunk.
        let l = unsafe { _mm512_loadu_si512(l.as_ptr().cast()) };
        // l -sat max: the wrapped difference overflowed where l and max
        // differ in sign and the difference lost l's sign.
        let d = _mm512_sub_epi64(l, max_v);
        let overflow = _mm512_and_si512(_mm512_xor_si512(l, max_v), _mm512_xor_si512(l, d));
        let limit = _mm512_mask_blend_epi64(
            _mm512_cmplt_epi64_mask(l, zero),
            splat(i64::MAX),
            splat(i64::MIN),
        );
        let d = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(overflow, zero), d, limit);
        let x = _mm512_max_epi64(d, splat(-(1 << 36)));
        let x = _mm512_srai_epi64::<16>(_mm512_mullo_epi64(x, inv_t));
        // exp_q16: the clamped argument fits i32, as do the products' results.
        let x = _mm512_min_epi64(_mm512_max_epi64(x, splat(-(64 << LOGIT_FRAC))), zero);
        let y = _mm512_srai_epi64::<30>(_mm512_mul_epi32(x, splat(LOG2E_Q30)));
        let frac = _mm512_and_si512(y, splat(0xFFFF));
        let index = _mm512_srli_epi64::<8>(frac);
        let table = EXP2_Q30.as_ptr().cast::<i32>();
        // SAFETY: index <= 255, so entries index and index + 1 <= 256 lie in
        // the 257-entry table.
        let (lo, hi) = unsafe {
            (
                _mm512_i64gather_epi32::<4>(index, table),
                _mm512_i64gather_epi32::<4>(_mm512_add_epi64(index, splat(1)), table),
            )
        };
        let (lo, hi) = (_mm512_cvtepu32_epi64(lo), _mm512_cvtepu32_epi64(hi));
        // Below 2^23 times below 2^8: the low 32 bits' product is exact.
        let step = _mm512_mul_epu32(
            _mm512_sub_epi64(hi, lo),
            _mm512_and_si512(frac, splat(0xFF)),
        );
        let mantissa = _mm512_add_epi64(
            lo,
            _mm512_srli_epi64::<8>(_mm512_add_epi64(step, splat(128))),
        );
        // 2^whole for whole = y >> 16 <= 0: a rounded right shift by -whole;
        // shifts past 31 give 0, as the scalar code's, and a shift of 0 adds
        // nothing (1 << -1 is out of range, so 0).
        let shift = _mm512_sub_epi64(zero, _mm512_srai_epi64::<16>(y));
        let round = _mm512_sllv_epi64(splat(1), _mm512_sub_epi64(shift, splat(1)));
        let weight = _mm512_srlv_epi64(_mm512_add_epi64(mantissa, round), shift);
        let weight: __m256i = _mm512_cvtepi64_epi32(weight);
        // SAFETY: `o` holds 8 u32, 32 bytes.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), weight) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::int::exp_q16;
    use crate::numeric::x86::test_gen::Gen;
    use std::vec::Vec;

    fn scalar(logits: &[i64], max: i64, inv_t: i64) -> Vec<u32> {
        logits
            .iter()
            .map(|&l| exp_q16((l.saturating_sub(max).max(-(1 << 36)) * inv_t) >> 16))
            .collect()
    }

    #[test]
    fn sample_weights_equal_the_scalar_weights() {
        let mut gen = Gen::new(3);
        let extremes = [
            i64::MIN,
            i64::MIN + 1,
            -(1 << 40),
            -(1 << 36) - 1,
            -1,
            0,
            1,
            i64::MAX,
        ];
        for n in [0, 1, 7, 8, 9, 50, 64, 300] {
            for milli in [1, 100, 200, 500, 1000, 1500, 100_000] {
                let logits: Vec<i64> = (0..n)
                    .map(|_| match gen.next() % 4 {
                        0 => extremes[(gen.next() % 8) as usize],
                        1 => (gen.next() as i64) << 20 >> 30,
                        _ => (gen.next() as i64) << 32 >> 40,
                    })
                    .collect();
                let max = logits.iter().copied().max().unwrap_or(0);
                let inv_t = (1000i64 << 16) / milli;
                let mut out = std::vec![7u32; n + 1];
                let done = sample_weights(&logits, max, inv_t, &mut out[..n]);
                let want_done = if has_avx512() && has_avx512dq() {
                    n / 8 * 8
                } else {
                    0
                };
                assert_eq!(done, want_done, "n={n}");
                assert_eq!(
                    out[..done],
                    scalar(&logits, max, inv_t)[..done],
                    "n={n} T={milli}"
                );
                assert!(out[done..].iter().all(|&w| w == 7), "n={n}");
            }
        }
    }

    #[test]
    fn sample_weights_cover_every_table_step() {
        // At T = 1, logit -k (max 0) is x = -k: every fraction of the table
        // steps, and the rounded shifts, over 2^17 arguments.
        let logits: Vec<i64> = (0..1i64 << 17).map(|k| -k).collect();
        let inv_t = 1 << 16;
        let mut out = std::vec![0u32; logits.len()];
        let done = sample_weights(&logits, 0, inv_t, &mut out);
        assert_eq!(out[..done], scalar(&logits[..done], 0, inv_t)[..]);
    }
}
