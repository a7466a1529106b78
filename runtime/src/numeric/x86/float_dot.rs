//! The f32 path's row sums with AVX2, a whole matrix's in one call: four rows
//! against each block of eight inputs, one 256-bit accumulator a row. Lane `l`
//! of a row's accumulator adds the products of columns `l`, `l + 8`, ... in
//! order, a multiply then an add (no FMA), as the portable code's partial sums
//! do, and the eight lanes are then added as the portable code's tree adds
//! them, four rows at once. The columns past the whole blocks (a row's tail:
//! W's 300 embedding columns leave 4, hidden 50 leaves 2) are summed in order,
//! four rows at once, and added last, as the portable code adds them: the sums
//! are equal bit for bit.

use core::arch::x86_64::{
    __m128, __m256, _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_loadu_ps,
    _mm256_mul_ps, _mm256_setzero_ps, _mm_add_ps, _mm_movehl_ps, _mm_movelh_ps, _mm_mul_ps,
    _mm_set1_ps, _mm_set_ps, _mm_storeu_ps, _mm_unpackhi_ps, _mm_unpacklo_ps,
};

use super::has_avx2;

/// Inputs per block: the lanes of a 256-bit f32 vector.
pub const F32_LANES: usize = 8;

/// The sums of rows of little-endian f32 weights, `stride` bytes apart in
/// `matrix` (row `r` from byte `r * stride`), against `x` (little-endian f32
/// too: an embedding row, or `h` as bytes) over their first `columns` columns,
/// into `out` for its whole fours of rows; returns how many rows. Over the
/// whole blocks of [`F32_LANES`] columns, row `r`'s lane `l` is `Σ_b w_r[8 b +
/// l] * x[8 b + l]`, summed in `b` order, and the lanes `[a, b, c, d, e, f, g,
/// h]` are added as `((a + e) + (c + g)) + ((b + f) + (d + h))`; the products of
/// the columns past them are summed in order from -0.0 (as `Iterator::sum`
/// does) and added to that. 0 (nothing read or written) without AVX2, or where
/// `x` or the last of those rows is shorter than `columns`.
#[inline]
pub fn f32_row_sums(
    matrix: &[u8],
    stride: usize,
    x: &[u8],
    columns: usize,
    out: &mut [f32],
) -> usize {
    let rows = out.len() - out.len() % 4;
    let end = rows
        .checked_sub(1)
        .and_then(|last| last.checked_mul(stride))
        .zip(columns.checked_mul(4))
        .and_then(|(start, bytes)| Some((start.checked_add(bytes)?, bytes)));
    let Some((end, bytes)) = end else {
        return 0;
    };
    if !has_avx2() || x.len() < bytes || matrix.len() < end {
        return 0;
    }
    let (quads, _) = out.as_chunks_mut::<4>();
    // SAFETY: the CPU has AVX2; `x` holds `bytes` bytes, and each row of the
    // quads, the last ending at `end`, lies within `matrix` (checked above).
    unsafe { row_sums_avx2(matrix, stride, x, columns, quads) };
    rows
}

/// [`f32_row_sums`] with `x` as f32 values.
#[inline]
pub fn f32_row_sums_of(
    matrix: &[u8],
    stride: usize,
    x: &[f32],
    columns: usize,
    out: &mut [f32],
) -> usize {
    // SAFETY: the bytes of `x`'s own f32 values (any bit pattern is a valid u8).
    let x_bytes = unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<u8>(), size_of_val(x)) };
    f32_row_sums(matrix, stride, x_bytes, columns, out)
}

/// Reads `columns * 4` bytes of `x`, and as many from byte `r * stride` of
/// `matrix` for each row `r` of `quads`, which the caller checked.
#[target_feature(enable = "avx2")]
unsafe fn row_sums_avx2(
    matrix: &[u8],
    stride: usize,
    x: &[u8],
    columns: usize,
    quads: &mut [[f32; 4]],
) {
    let blocks = columns / F32_LANES;
    for (quad, sums) in quads.iter_mut().enumerate() {
        let first = quad * 4 * stride;
        let mut acc: [__m256; 4] = [_mm256_setzero_ps(); 4];
        for block in 0..blocks {
            let offset = block * 4 * F32_LANES;
            // SAFETY: `offset + 32 <= blocks * 32`, within `x` and each of
            // the quad's rows (the caller's bound); unaligned loads need no
            // alignment.
            unsafe {
                let xv = _mm256_loadu_ps(x.as_ptr().add(offset).cast());
                for (row, sum) in acc.iter_mut().enumerate() {
                    let at = first + row * stride + offset;
                    let wv = _mm256_loadu_ps(matrix.as_ptr().add(at).cast());
                    *sum = _mm256_add_ps(*sum, _mm256_mul_ps(wv, xv));
                }
            }
        }
        let mut total = tree_sums(acc);
        if columns > blocks * F32_LANES {
            // The four rows' tails, one column at a time: lane `r` is row `r`'s.
            let mut tail = _mm_set1_ps(-0.0);
            for k in blocks * F32_LANES..columns {
                let at = |row: usize| first + row * stride + 4 * k;
                // SAFETY: column `k < columns` lies within `x` and each of the
                // quad's rows (the caller's bound); unaligned reads.
                unsafe {
                    let read = |offset: usize| {
                        core::ptr::read_unaligned(matrix.as_ptr().add(offset).cast::<f32>())
                    };
                    let wv = _mm_set_ps(read(at(3)), read(at(2)), read(at(1)), read(at(0)));
                    let xk = core::ptr::read_unaligned(x.as_ptr().add(4 * k).cast::<f32>());
                    tail = _mm_add_ps(tail, _mm_mul_ps(wv, _mm_set1_ps(xk)));
                }
            }
            total = _mm_add_ps(total, tail);
        }
        // SAFETY: `sums` is four f32s, one unaligned 128-bit store.
        unsafe { _mm_storeu_ps(sums.as_mut_ptr(), total) };
    }
}

/// Each accumulator's eight lanes `[a, b, c, d, e, f, g, h]` added as
/// `((a + e) + (c + g)) + ((b + f) + (d + h))`, the four rows' sums in one
/// vector: the portable tree's adds, with the same operands in the same order.
#[target_feature(enable = "avx2")]
fn tree_sums(acc: [__m256; 4]) -> __m128 {
    // [a + e, b + f, c + g, d + h] of each row.
    let [p0, p1, p2, p3] =
        acc.map(|v| _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v)));
    // [q0 of rows 0 and 1, q1 of rows 0 and 1], where q0 = (a + e) + (c + g)
    // and q1 = (b + f) + (d + h); the same of rows 2 and 3.
    let low = _mm_add_ps(_mm_unpacklo_ps(p0, p1), _mm_unpackhi_ps(p0, p1));
    let high = _mm_add_ps(_mm_unpacklo_ps(p2, p3), _mm_unpackhi_ps(p2, p3));
    _mm_add_ps(_mm_movelh_ps(low, high), _mm_movehl_ps(high, low))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_sums_equal_products_summed_in_block_order_then_as_a_tree_then_the_tail() {
        let mut out = [0f32; 4];
        if !has_avx2() {
            assert_eq!(f32_row_sums(&[0; 128], 32, &[0; 32], 8, &mut out), 0);
            return;
        }
        let mut gen = super::super::test_gen::Gen::new(3);
        let mut value = || (gen.next() as i32 as f32) * 1e-9;
        let (mut trees_differ, mut tails_differ) = (false, false);
        for (blocks, tail, rows) in [
            (0usize, 3usize, 4usize),
            (1, 0, 5),
            (2, 7, 8),
            (5, 3, 7),
            (16, 4, 12),
            (37, 4, 8),
        ] {
            // Rows 5 weights apart past their columns.
            let width = blocks * F32_LANES + tail;
            let stride = width + 5;
            let matrix: Vec<u8> = (0..rows * stride)
                .flat_map(|_| value().to_le_bytes())
                .collect();
            let x: Vec<f32> = (0..width).map(|_| value()).collect();
            let mut sums = [f32::NAN; 12];
            let done = f32_row_sums_of(&matrix, 4 * stride, &x, width, &mut sums[..rows]);
            assert_eq!(done, rows / 4 * 4);
            assert!(
                sums[done..].iter().all(|s| s.is_nan()),
                "written past the quads"
            );
            for (r, got) in sums[..done].iter().enumerate() {
                let weight = |k: usize| {
                    let at = 4 * (r * stride + k);
                    f32::from_le_bytes(matrix[at..at + 4].try_into().unwrap())
                };
                let mut lanes = [0f32; F32_LANES];
                for (l, lane) in lanes.iter_mut().enumerate() {
                    for b in 0..blocks {
                        let k = b * F32_LANES + l;
                        *lane += weight(k) * x[k];
                    }
                }
                let [a, b, c, d, e, f, g, h] = lanes;
                let tree = ((a + e) + (c + g)) + ((b + f) + (d + h));
                let products = (blocks * F32_LANES..width).map(|k| weight(k) * x[k]);
                let tail_sum: f32 = products.clone().sum();
                let want = if tail > 0 { tree + tail_sum } else { tree };
                assert_eq!(got.to_bits(), want.to_bits(), "{blocks} {tail} {r}");
                let in_order: f32 = lanes.iter().sum();
                trees_differ |= in_order.to_bits() != tree.to_bits();
                // The tail's products added to the tree one by one instead.
                let folded = products.fold(tree, |sum, p| sum + p);
                tails_differ |= folded.to_bits() != want.to_bits();
            }
        }
        // The data tells the orders apart, so a kernel adding its lanes, or its
        // tail, in another order would fail above.
        assert!(trees_differ && tails_differ);
        // Too short a matrix or input: nothing is read or written.
        assert_eq!(
            f32_row_sums(&[0; 64 * 4 - 1], 64, &[0; 64], 16, &mut out),
            0
        );
        assert_eq!(f32_row_sums(&[0; 64 * 4], 64, &[0; 63], 16, &mut out), 0);
        assert_eq!(
            f32_row_sums(&[0; 64 * 4 - 1], 64, &[0; 64], 15, &mut out),
            4
        );
        assert_eq!(f32_row_sums(&[0; 64 * 4], 64, &[0; 64], 16, &mut out), 4);
        assert_eq!(f32_row_sums(&[0; 64], 64, &[0; 64], 16, &mut out[..3]), 0);
    }
}
