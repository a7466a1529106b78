//! LSTM gate activations (sigmoid and tanh from the Q15 table) on eight rows
//! per pass.

use core::arch::x86_64::{
    __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_blendv_epi8, _mm256_loadu_si256,
    _mm256_set1_epi32, _mm256_setr_epi32, _mm256_srai_epi32, _mm256_storeu_si256,
};

use super::{has_avx2, prescale::saturating_add_x8};

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
    // SAFETY: AVX2 is present (checked just above); the lengths are checked too.
    unsafe { lstm_activations_avx2(x, h, rows, out) };
    true
}

/// `int::sigmoid_q12` of eight Q3.12 lanes already clamped to [-2^15, 2^15).
#[target_feature(enable = "avx2")]
#[inline]
fn sigmoid_table(x: __m256i) -> __m256i {
    use core::arch::x86_64::{
        _mm256_i32gather_epi32, _mm256_mullo_epi32, _mm256_srli_epi32, _mm256_sub_epi32,
    };
    let u = _mm256_add_epi32(x, _mm256_set1_epi32(1 << 15));
    let index = _mm256_srli_epi32(u, 8);
    let frac = _mm256_and_si256(u, _mm256_set1_epi32(0xFF));
    let table = crate::numeric::tables::SIGMOID_Q15.as_ptr().cast::<i32>();
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

#[target_feature(enable = "avx2")]
fn lstm_activations_avx2(x: &[i32], h: &[i32], rows: usize, out: &mut [i16]) {
    use core::arch::x86_64::{
        _mm256_max_epi32, _mm256_min_epi32, _mm256_slli_epi32, _mm256_sub_epi32,
    };
    // Lanes 3 and 7 hold the cell candidates (gate c) of two units.
    let candidate = _mm256_setr_epi32(0, 0, 0, -1, 0, 0, 0, -1);
    let clamp = |v: __m256i, lo: i32, hi: i32| {
        _mm256_min_epi32(
            _mm256_max_epi32(v, _mm256_set1_epi32(lo)),
            _mm256_set1_epi32(hi),
        )
    };
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
        // tanh(x) = 2 sigmoid(2x) - 1, with 2x saturated as the table saturates.
        let doubled = _mm256_slli_epi32(clamp(pre, -(1 << 14), 1 << 14), 1);
        let arg = _mm256_blendv_epi8(pre, doubled, candidate);
        let s = sigmoid_table(clamp(arg, -(1 << 15), (1 << 15) - 1));
        let t = clamp(
            _mm256_sub_epi32(_mm256_slli_epi32(s, 1), _mm256_set1_epi32(1 << 15)),
            -(i16::MAX as i32),
            i16::MAX as i32,
        );
        let act = _mm256_blendv_epi8(s, t, candidate);
        let mut lanes = [0i32; 8];
        // SAFETY: lanes is 8 i32, 32 bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), act) };
        for (o, &v) in ob.iter_mut().zip(&lanes) {
            *o = v as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lstm_activations_equal_the_scalar_tables() {
        use crate::numeric::int::{sigmoid_q12, tanh_q12};
        if !has_avx2() {
            return;
        }
        let mut values: std::vec::Vec<i32> = (-70_000..70_000).step_by(37).collect();
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
        while !values.len().is_multiple_of(8) {
            values.push(12345);
        }
        for h_offset in [0, 1 << 30, -(1 << 30), i32::MAX, i32::MIN, 4096] {
            let h: std::vec::Vec<i32> = values.iter().map(|_| h_offset).collect();
            let mut out = std::vec![0i16; values.len()];
            assert!(lstm_activations(&values, &h, values.len(), &mut out));
            for (k, ((&x, &hv), &got)) in values.iter().zip(&h).zip(&out).enumerate() {
                let pre = x.saturating_add(hv);
                let want = if k % 4 == 3 {
                    tanh_q12(pre)
                } else {
                    sigmoid_q12(pre)
                };
                assert_eq!(got, want, "row {k}: x {x} h {hv}");
            }
        }
        let mut out = [0i16; 8];
        assert!(!lstm_activations(&[0; 7], &[0; 7], 7, &mut out));
    }
}
