//! Row prescale of the gate pre-activations: each row's accumulators scaled by
//! its Q32 multipliers and offset by its biases, eight rows per pass with
//! AVX2, sixteen with AVX-512.

use core::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm256_add_epi32, _mm256_add_epi64, _mm256_and_si256,
    _mm256_blend_epi32, _mm256_blendv_epi8, _mm256_castsi128_si256, _mm256_inserti128_si256,
    _mm256_loadu_si256, _mm256_mul_epi32, _mm256_set1_epi32, _mm256_set1_epi64x, _mm256_srai_epi32,
    _mm256_srli_epi64, _mm256_storeu_si256, _mm256_unpackhi_epi32, _mm256_unpackhi_epi64,
    _mm256_unpacklo_epi32, _mm256_unpacklo_epi64, _mm256_xor_si256, _mm512_add_epi64,
    _mm512_loadu_si512, _mm512_mask_blend_epi32, _mm512_mul_epi32, _mm512_permutex2var_epi32,
    _mm512_set1_epi64, _mm512_setzero_si512, _mm512_srli_epi64, _mm512_storeu_si512,
    _mm_loadu_si128,
};

use super::activations::saturating_add_x16;
use super::{has_avx2, has_avx512};
use crate::format::{scale_q32, RowConsts};

/// Row prescale of the gate pre-activations, for every row `k` (the caller's
/// order) with `records[k]` = `w_mult, r_mult, bias, r_bias` (little-endian
/// i32, `format::RowConsts`):
/// `x_pre[k] = scale_q32(wx[k], w_mult).saturating_add(bias)` and
/// `h_pre[k] = scale_q32(sums[k], r_mult).saturating_add(r_bias)`.
/// Returns false, and writes nothing, when AVX2 is missing or `wx`, `sums`,
/// `x_pre` or `h_pre` is shorter than `records`.
pub fn prescale(
    records: &[[u8; 16]],
    wx: &[i32],
    sums: &[i32],
    x_pre: &mut [i32],
    h_pre: &mut [i32],
) -> bool {
    let n = records.len();
    let (Some(wx), Some(sums)) = (wx.get(..n), sums.get(..n)) else {
        return false;
    };
    let (Some(x_pre), Some(h_pre)) = (x_pre.get_mut(..n), h_pre.get_mut(..n)) else {
        return false;
    };
    if !has_avx2() {
        return false;
    }
    let wide = if has_avx512() {
        n / WIDE_ROWS * WIDE_ROWS
    } else {
        0
    };
    let (records_wide, records_rest) = records.split_at(wide);
    let ((wx_wide, wx_rest), (sums_wide, sums_rest)) = (wx.split_at(wide), sums.split_at(wide));
    let (x_wide, x_rest) = x_pre.split_at_mut(wide);
    let (h_wide, h_rest) = h_pre.split_at_mut(wide);
    // SAFETY: the CPU has AVX2 (checked just above), and AVX-512 BW where
    // `wide` is not zero; all slices hold `n` entries, split at one place.
    unsafe {
        if wide > 0 {
            prescale_wide(records_wide, wx_wide, sums_wide, x_wide, h_wide);
        }
        prescale_avx2(records_rest, wx_rest, sums_rest, x_rest, h_rest);
    }
    true
}

/// Rows per pass of [`prescale`].
const PRESCALE_ROWS: usize = 8;

/// `scale_q32` on eight lanes: signed 32x32 -> 64-bit products of the even and
/// the odd lanes, plus 2^31, high halves back into their lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn scale_q32_x8(acc: __m256i, mult: __m256i) -> __m256i {
    let round = _mm256_set1_epi64x(1 << 31);
    let even = _mm256_add_epi64(_mm256_mul_epi32(acc, mult), round);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), _mm256_srli_epi64::<32>(mult));
    let odd = _mm256_add_epi64(odd, round);
    _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd)
}

/// `saturating_add` on eight i32 lanes: a lane overflowed when both operands
/// have the sign that the wrapped sum lacks; it then takes `i32::MAX` or
/// `i32::MIN` by the sign of `a`.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn saturating_add_x8(a: __m256i, b: __m256i) -> __m256i {
    let sum = _mm256_add_epi32(a, b);
    let overflow = _mm256_and_si256(_mm256_xor_si256(sum, a), _mm256_xor_si256(sum, b));
    let limit = _mm256_xor_si256(_mm256_srai_epi32::<31>(a), _mm256_set1_epi32(i32::MAX));
    _mm256_blendv_epi8(sum, limit, _mm256_srai_epi32::<31>(overflow))
}

/// Two 16-byte records as the two lanes of one vector.
#[target_feature(enable = "avx2")]
#[inline]
fn pair_records(lo: &[u8; 16], hi: &[u8; 16]) -> __m256i {
    // SAFETY: 16 bytes from each record.
    let (lo, hi) = unsafe {
        (
            _mm_loadu_si128(lo.as_ptr().cast::<__m128i>()),
            _mm_loadu_si128(hi.as_ptr().cast::<__m128i>()),
        )
    };
    _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi)
}

#[target_feature(enable = "avx2")]
fn prescale_avx2(
    records: &[[u8; 16]],
    wx: &[i32],
    sums: &[i32],
    x_pre: &mut [i32],
    h_pre: &mut [i32],
) {
    let (rec8, rec_rest) = records.as_chunks::<PRESCALE_ROWS>();
    let (wx8, wx_rest) = wx.as_chunks::<PRESCALE_ROWS>();
    let (sums8, sums_rest) = sums.as_chunks::<PRESCALE_ROWS>();
    let (x8, x_rest) = x_pre.as_chunks_mut::<PRESCALE_ROWS>();
    let (h8, h_rest) = h_pre.as_chunks_mut::<PRESCALE_ROWS>();
    let rows = rec8.iter().zip(wx8).zip(sums8).zip(x8.iter_mut().zip(h8));
    for (((rec, wx), sums), (xo, ho)) in rows {
        // Records k and k + 4 share a vector, so that the in-lane 4x4
        // transpose leaves each field in row order.
        let [r0, r1, r2, r3, r4, r5, r6, r7] = rec;
        let [v0, v1, v2, v3] =
            [(r0, r4), (r1, r5), (r2, r6), (r3, r7)].map(|(lo, hi)| pair_records(lo, hi));
        let t0 = _mm256_unpacklo_epi32(v0, v1);
        let t1 = _mm256_unpackhi_epi32(v0, v1);
        let t2 = _mm256_unpacklo_epi32(v2, v3);
        let t3 = _mm256_unpackhi_epi32(v2, v3);
        let w_mult = _mm256_unpacklo_epi64(t0, t2);
        let r_mult = _mm256_unpackhi_epi64(t0, t2);
        let bias = _mm256_unpacklo_epi64(t1, t3);
        let r_bias = _mm256_unpackhi_epi64(t1, t3);
        // SAFETY: each of `wx`, `sums`, `xo`, `ho` holds 8 i32 (32 bytes).
        unsafe {
            let wv = _mm256_loadu_si256(wx.as_ptr().cast::<__m256i>());
            let sv = _mm256_loadu_si256(sums.as_ptr().cast::<__m256i>());
            let x = saturating_add_x8(scale_q32_x8(wv, w_mult), bias);
            let h = saturating_add_x8(scale_q32_x8(sv, r_mult), r_bias);
            _mm256_storeu_si256(xo.as_mut_ptr().cast::<__m256i>(), x);
            _mm256_storeu_si256(ho.as_mut_ptr().cast::<__m256i>(), h);
        }
    }
    let rest = rec_rest.iter().zip(wx_rest).zip(sums_rest);
    for (((rec, &wx), &sums), (xo, ho)) in rest.zip(x_rest.iter_mut().zip(h_rest)) {
        let c = RowConsts::from_bytes(rec);
        *xo = scale_q32(wx, c.w_mult).saturating_add(c.bias);
        *ho = scale_q32(sums, c.r_mult).saturating_add(c.r_bias);
    }
}

/// Rows per pass of [`prescale_wide`].
const WIDE_ROWS: usize = 16;

/// [`scale_q32_x8`] on sixteen lanes.
#[target_feature(enable = "avx512bw")]
#[inline]
fn scale_q32_x16(acc: __m512i, mult: __m512i) -> __m512i {
    let round = _mm512_set1_epi64(1 << 31);
    let even = _mm512_add_epi64(_mm512_mul_epi32(acc, mult), round);
    let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(acc), _mm512_srli_epi64::<32>(mult));
    let odd = _mm512_add_epi64(odd, round);
    _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64::<32>(even), odd)
}

/// Dword indices of field `field` of records `u` and `u + 8` within a pair
/// of registers of four records each.
// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn field_index(field: i32) -> [i32; 16] {
    let mut index = [0i32; 16];
    let mut u = 0;
    while u < 16 {
        index[u] = 4 * (u as i32 % 8) + field;
        u += 1;
    }
    index
}
const FIELDS: [[i32; 16]; 4] = [
    field_index(0),
    field_index(1),
    field_index(2),
    field_index(3),
];

#[target_feature(enable = "avx512bw")]
fn prescale_wide(
    records: &[[u8; 16]],
    wx: &[i32],
    sums: &[i32],
    x_pre: &mut [i32],
    h_pre: &mut [i32],
) {
    // SAFETY: 64 bytes from each 16-entry index array.
    let fields = FIELDS.map(|index| unsafe { _mm512_loadu_si512(index.as_ptr().cast()) });
    let (rec16, _) = records.as_chunks::<WIDE_ROWS>();
    let (wx16, _) = wx.as_chunks::<WIDE_ROWS>();
    let (sums16, _) = sums.as_chunks::<WIDE_ROWS>();
    let (x16, _) = x_pre.as_chunks_mut::<WIDE_ROWS>();
    let (h16, _) = h_pre.as_chunks_mut::<WIDE_ROWS>();
    let rows = rec16
        .iter()
        .zip(wx16)
        .zip(sums16)
        .zip(x16.iter_mut().zip(h16));
    for (((rec, wx), sums), (xo, ho)) in rows {
        let (quads, _) = rec.as_chunks::<4>();
        let mut regs = [_mm512_setzero_si512(); 4];
        for (r, quad) in regs.iter_mut().zip(quads) {
            // SAFETY: four 16-byte records, 64 bytes.
            *r = unsafe { _mm512_loadu_si512(quad.as_ptr().cast()) };
        }
        let [a, b, c, d] = regs;
        // Records 0..8 from the first pair, 8..16 from the second.
        let [w_mult, r_mult, bias, r_bias] = fields.map(|index| {
            let low = _mm512_permutex2var_epi32(a, index, b);
            let high = _mm512_permutex2var_epi32(c, index, d);
            _mm512_mask_blend_epi32(0xFF00, low, high)
        });
        // SAFETY: each of `wx`, `sums`, `xo`, `ho` holds 16 i32 (64 bytes).
        unsafe {
            let wv = _mm512_loadu_si512(wx.as_ptr().cast());
            let sv = _mm512_loadu_si512(sums.as_ptr().cast());
            let x = saturating_add_x16(scale_q32_x16(wv, w_mult), bias);
            let h = saturating_add_x16(scale_q32_x16(sv, r_mult), r_bias);
            _mm512_storeu_si512(xo.as_mut_ptr().cast(), x);
            _mm512_storeu_si512(ho.as_mut_ptr().cast(), h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::x86::test_gen::Gen;
    use std::vec;
    use std::vec::Vec;

    fn prescale_reference(records: &[[u8; 16]], wx: &[i32], sums: &[i32]) -> (Vec<i32>, Vec<i32>) {
        records
            .iter()
            .zip(wx.iter().zip(sums))
            .map(|(rec, (&wx, &s))| {
                let c = RowConsts::from_bytes(rec);
                (
                    scale_q32(wx, c.w_mult).saturating_add(c.bias),
                    scale_q32(s, c.r_mult).saturating_add(c.r_bias),
                )
            })
            .unzip()
    }

    #[test]
    fn prescale_equals_the_scalar_definition() {
        if !has_avx2() {
            return; // the refusal: `without_avx2_every_kernel_refuses`
        }
        let mut gen = Gen::new(11);
        let extremes = [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
        let word = |gen: &mut Gen| match gen.next() % 4 {
            0 => extremes[(gen.next() % 7) as usize],
            1 => (gen.next() as i32) >> 8,
            _ => gen.next() as i32,
        };
        for n in (0..=40).chain([512, 515]) {
            let records: Vec<[u8; 16]> = (0..n)
                .map(|_| {
                    let [a, b, c, d] = [0; 4].map(|_: i32| word(&mut gen));
                    RowConsts {
                        w_mult: a,
                        r_mult: b,
                        bias: c,
                        r_bias: d,
                    }
                    .to_bytes()
                })
                .collect();
            let wx: Vec<i32> = (0..n).map(|_| word(&mut gen)).collect();
            let sums: Vec<i32> = (0..n).map(|_| word(&mut gen)).collect();
            // One spare entry checks that nothing past `n` is written.
            let (mut x, mut h) = (vec![3i32; n + 1], vec![3i32; n + 1]);
            assert!(prescale(&records, &wx, &sums, &mut x, &mut h), "n={n}");
            let (want_x, want_h) = prescale_reference(&records, &wx, &sums);
            assert_eq!(x[..n], want_x[..], "n={n}");
            assert_eq!(h[..n], want_h[..], "n={n}");
            assert_eq!((x[n], h[n]), (3, 3));
        }
    }

    #[test]
    fn prescale_saturates_and_rounds_half_up() {
        if !has_avx2() {
            return; // the refusal: `without_avx2_every_kernel_refuses`
        }
        // scale_q32(MIN, MIN) = 2^30, plus MAX saturates; scale_q32(MAX, MIN)
        // = 1 - 2^30, plus MIN saturates; MIN * 1 / 2^32 = -0.5 rounds up to 0.
        let rec = |w_mult, r_mult, bias, r_bias| {
            RowConsts {
                w_mult,
                r_mult,
                bias,
                r_bias,
            }
            .to_bytes()
        };
        let records = [
            rec(i32::MIN, i32::MIN, i32::MAX, i32::MAX),
            rec(i32::MAX, i32::MIN, i32::MIN, i32::MIN),
            rec(1, i32::MAX, 0, -5),
            rec(i32::MIN, 1, -1, 7),
        ];
        // 25 rows: a pass of each width (where the CPU has it) and one row of
        // scalar code.
        let records: Vec<[u8; 16]> = records.iter().cycle().take(25).copied().collect();
        let wx = [i32::MIN, i32::MIN, i32::MIN, -1].repeat(7);
        let sums = [i32::MIN, i32::MAX, i32::MIN, i32::MIN].repeat(7);
        let (mut x, mut h) = (vec![0; 25], vec![0; 25]);
        assert!(prescale(&records, &wx, &sums, &mut x, &mut h));
        for at in [0, 16] {
            assert_eq!(x[at..at + 4], [i32::MAX, i32::MIN, 0, 0]);
            assert_eq!(h[at..at + 4], [i32::MAX, i32::MIN, -(1 << 30) - 4, 7]);
        }
        assert_eq!((x[24], h[24]), (x[0], h[0]));
        let (want_x, want_h) = prescale_reference(&records, &wx[..25], &sums[..25]);
        assert_eq!((x, h), (want_x, want_h));
    }

    #[test]
    fn prescale_refuses_short_slices() {
        let records = vec![[1u8; 16]; 8];
        let v = vec![1i32; 8];
        let (mut x, mut h) = (vec![9i32; 8], vec![9i32; 8]);
        assert!(!prescale(&records, &v[1..], &v, &mut x, &mut h));
        assert!(!prescale(&records, &v, &v[1..], &mut x, &mut h));
        assert!(!prescale(&records, &v, &v, &mut x[1..], &mut h));
        assert!(!prescale(&records, &v, &v, &mut x, &mut h[1..]));
        assert!(x.iter().chain(&h).all(|&v| v == 9));
    }
}
