//! The f32 path's gate-row sums with AVX2: four rows against each block of
//! eight inputs, one 256-bit accumulator a row. Lane `l` of a row's accumulator
//! adds the products of columns `l`, `l + 8`, ... in order, a multiply then an
//! add (no FMA), as the portable code's partial sums do: the lanes, and so the
//! sums, are equal bit for bit.

use core::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

use super::has_avx2;

/// Inputs per block: the lanes of a 256-bit f32 vector.
pub const F32_LANES: usize = 8;

/// The partial sums of four rows of little-endian f32 weights against `x`
/// (little-endian f32 too: an embedding row, or `h` as bytes) over their first
/// `blocks` blocks of [`F32_LANES`] columns: `lanes[r][l]` is
/// `Σ_b w_r[8 b + l] * x[8 b + l]`, summed in `b` order. `None` (nothing read)
/// without AVX2, or where a row or `x` is shorter than `blocks` blocks.
#[inline]
pub fn f32_rows4_lanes(rows: [&[u8]; 4], x: &[u8], blocks: usize) -> Option<[[f32; F32_LANES]; 4]> {
    let bytes = blocks.checked_mul(4 * F32_LANES)?;
    if !has_avx2() || x.len() < bytes || rows.iter().any(|row| row.len() < bytes) {
        return None;
    }
    // SAFETY: the CPU has AVX2, and `x` and every row hold `bytes` bytes (checked above).
    Some(unsafe { rows4_lanes_avx2(rows, x, blocks) })
}

/// [`f32_rows4_lanes`] with `x` as f32 values.
#[inline]
pub fn f32_rows4_lanes_of(
    rows: [&[u8]; 4],
    x: &[f32],
    blocks: usize,
) -> Option<[[f32; F32_LANES]; 4]> {
    // SAFETY: the bytes of `x`'s own f32 values (any bit pattern is a valid u8).
    let x_bytes = unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<u8>(), size_of_val(x)) };
    f32_rows4_lanes(rows, x_bytes, blocks)
}

/// Reads `blocks * 32` bytes of `x` and of each row, which the caller checked.
#[target_feature(enable = "avx2")]
unsafe fn rows4_lanes_avx2(rows: [&[u8]; 4], x: &[u8], blocks: usize) -> [[f32; F32_LANES]; 4] {
    let mut acc: [__m256; 4] = [_mm256_setzero_ps(); 4];
    for block in 0..blocks {
        let offset = block * 4 * F32_LANES;
        // SAFETY: `offset + 32 <= blocks * 32`, within `x` and every row (the
        // caller's bound); unaligned loads need no alignment.
        unsafe {
            let xv = _mm256_loadu_ps(x.as_ptr().add(offset).cast());
            for (sum, row) in acc.iter_mut().zip(rows) {
                let wv = _mm256_loadu_ps(row.as_ptr().add(offset).cast());
                *sum = _mm256_add_ps(*sum, _mm256_mul_ps(wv, xv));
            }
        }
    }
    let mut lanes = [[0f32; F32_LANES]; 4];
    for (out, sum) in lanes.iter_mut().zip(acc) {
        // SAFETY: `out` is eight f32s, one unaligned 256-bit store.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_lanes_equal_products_summed_in_block_order() {
        if !has_avx2() {
            assert_eq!(f32_rows4_lanes([&[0; 32]; 4], &[0; 32], 1), None);
            return;
        }
        let mut gen = super::super::test_gen::Gen::new(3);
        let mut value = || (gen.next() as i32 as f32) * 1e-9;
        for blocks in [0usize, 1, 2, 5, 16] {
            let n = blocks * F32_LANES + 3; // a tail the kernel leaves alone
            let weights: Vec<Vec<u8>> = (0..4)
                .map(|_| (0..n).flat_map(|_| value().to_le_bytes()).collect())
                .collect();
            let x: Vec<f32> = (0..n).map(|_| value()).collect();
            let rows = [
                &weights[0][..],
                &weights[1][..],
                &weights[2][..],
                &weights[3][..],
            ];
            let lanes = f32_rows4_lanes_of(rows, &x, blocks).unwrap();
            for (r, (row, got)) in rows.iter().zip(lanes).enumerate() {
                for (l, got) in got.into_iter().enumerate() {
                    let mut want = 0f32;
                    for b in 0..blocks {
                        let k = b * F32_LANES + l;
                        let w = f32::from_le_bytes(row[4 * k..4 * k + 4].try_into().unwrap());
                        want += w * x[k];
                    }
                    assert_eq!(got.to_bits(), want.to_bits(), "{blocks} {r} {l}");
                }
            }
        }
        // Too short a row or input: nothing is read.
        assert_eq!(f32_rows4_lanes([&[0; 64]; 4], &[0; 32], 2), None);
        assert_eq!(
            f32_rows4_lanes([&[0; 64], &[0; 32], &[0; 64], &[0; 64]], &[0; 64], 2),
            None
        );
    }
}
