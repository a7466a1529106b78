//! The f32 path's row sums with AVX2, a whole matrix's in one call: four rows
//! against each block of eight inputs, one 256-bit accumulator a row and
//! input (several inputs share each load of the weights). Lane `l`
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

use super::{has_avx2, has_avx512, has_avx512vl};

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
    let Some(rows) = whole_quads(matrix, stride, [x], columns, out.len()) else {
        return 0;
    };
    let (quads, _) = out.as_chunks_mut::<4>();
    // SAFETY: the CPU has AVX2, and `x` and each row of the quads lie within
    // their slices (`whole_quads`).
    unsafe { row_sums_avx2(matrix, stride, x, columns, quads) };
    rows
}

/// [`f32_row_sums`] of `T` inputs at once, `xs[t]`'s sums into `outs[t]`
/// (each the same as alone): the inputs share each load of a row's weights,
/// which on a word model's input matrix is most of the time. 0 (nothing read
/// or written) without AVX2, where an input is shorter than `columns`, or
/// where the outputs' lengths differ.
#[inline]
pub fn f32_rows_of_inputs<const T: usize>(
    matrix: &[u8],
    stride: usize,
    xs: [&[u8]; T],
    columns: usize,
    outs: [&mut [f32]; T],
) -> usize {
    let len = outs.first().map_or(0, |out| out.len());
    let rows = match whole_quads(matrix, stride, xs, columns, len) {
        Some(rows) if outs.iter().all(|out| out.len() == len) => rows,
        _ => return 0,
    };
    let quads = outs.map(|out| out.as_chunks_mut::<4>().0);
    // SAFETY: the CPU has AVX2 (and AVX-512 VL where that kernel runs), each
    // input and each row of the quads lie within their slices
    // (`whole_quads`), and every output has the same quads.
    if has_avx512() && has_avx512vl() {
        unsafe { rows_of_inputs_avx512vl(matrix, stride, xs, columns, quads) };
        return rows;
    }
    // AVX2's 16 registers hold two inputs' accumulators of four rows: more spill.
    let (mut xs, mut quads) = (xs.into_iter(), quads.into_iter());
    while let (Some(x), Some(quad)) = (xs.next(), quads.next()) {
        match (xs.next(), quads.next()) {
            (Some(x2), Some(quad2)) => unsafe {
                rows_of_inputs_avx2(matrix, stride, [x, x2], columns, [quad, quad2]);
            },
            _ => unsafe { row_sums_avx2(matrix, stride, x, columns, quad) },
        }
    }
    rows
}

/// The rows of the whole quads of a `len`-row output, where a kernel runs
/// them: the CPU has AVX2, and each input and each of those rows holds
/// `columns` columns (the last row ends within `matrix`).
#[inline]
fn whole_quads<const T: usize>(
    matrix: &[u8],
    stride: usize,
    xs: [&[u8]; T],
    columns: usize,
    len: usize,
) -> Option<usize> {
    let rows = len - len % 4;
    let bytes = columns.checked_mul(4)?;
    let end = (rows.checked_sub(1)?)
        .checked_mul(stride)?
        .checked_add(bytes)?;
    let fit = xs.iter().all(|x| x.len() >= bytes) && matrix.len() >= end;
    (fit && has_avx2()).then_some(rows)
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
        // SAFETY: the columns lie within `x` and each of the quad's rows (the
        // caller's bound).
        let total = unsafe { with_tails(tree_sums(acc), matrix, first, stride, x, columns) };
        // SAFETY: `sums` is four f32s, one unaligned 128-bit store.
        unsafe { _mm_storeu_ps(sums.as_mut_ptr(), total) };
    }
}

/// [`rows_of_inputs_avx2`] with AVX-512 VL's 32 vector registers, which
/// hold four inputs' accumulators of four rows (16) without spilling.
#[target_feature(enable = "avx2,avx512f,avx512vl")]
unsafe fn rows_of_inputs_avx512vl<const T: usize>(
    matrix: &[u8],
    stride: usize,
    xs: [&[u8]; T],
    columns: usize,
    quads: [&mut [[f32; 4]]; T],
) {
    unsafe { rows_of_inputs_avx2(matrix, stride, xs, columns, quads) }
}

/// Reads `columns * 4` bytes of each of `xs`, and as many from byte `r *
/// stride` of `matrix` for each row `r` of the quads, which the caller checked
/// (every `quads[t]` has the same length).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn rows_of_inputs_avx2<const T: usize>(
    matrix: &[u8],
    stride: usize,
    xs: [&[u8]; T],
    columns: usize,
    quads: [&mut [[f32; 4]]; T],
) {
    let blocks = columns / F32_LANES;
    let count = quads.first().map_or(0, |q| q.len());
    let outs = quads.map(|q| q.as_mut_ptr());
    for quad in 0..count {
        let first = quad * 4 * stride;
        // Row `r`'s accumulators of each input.
        let mut acc: [[__m256; T]; 4] = [[_mm256_setzero_ps(); T]; 4];
        for block in 0..blocks {
            let offset = block * 4 * F32_LANES;
            // SAFETY: `offset + 32 <= blocks * 32`, within each input and
            // each of the quad's rows (the caller's bound); unaligned loads
            // need no alignment.
            unsafe {
                let mut xv = [_mm256_setzero_ps(); T];
                for (v, x) in xv.iter_mut().zip(xs) {
                    *v = _mm256_loadu_ps(x.as_ptr().add(offset).cast());
                }
                for (row, sums) in acc.iter_mut().enumerate() {
                    let at = first + row * stride + offset;
                    let wv = _mm256_loadu_ps(matrix.as_ptr().add(at).cast());
                    for (sum, x) in sums.iter_mut().zip(xv) {
                        *sum = _mm256_add_ps(*sum, _mm256_mul_ps(wv, x));
                    }
                }
            }
        }
        let of_input = |t: usize| acc.map(|row| row.get(t).copied().unwrap_or(_mm256_setzero_ps()));
        for (t, (x, out)) in xs.into_iter().zip(outs).enumerate() {
            let sums = of_input(t);
            // SAFETY: the columns lie within `x` and each of the quad's rows
            // (the caller's bound).
            let total = unsafe { with_tails(tree_sums(sums), matrix, first, stride, x, columns) };
            // SAFETY: `quad < count`, the length of every output; one
            // unaligned 128-bit store of its four f32s.
            unsafe { _mm_storeu_ps(out.add(quad).cast(), total) };
        }
    }
}

/// `sums` plus the tails of the four rows from byte `first` of `matrix`,
/// `stride` apart: their products with `x` over the columns past the whole
/// blocks, up to `columns`, summed one column at a time from -0.0 (lane `r`
/// is row `r`'s). Reads those columns of `x` and of each row, which the
/// caller checked.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn with_tails(
    sums: __m128,
    matrix: &[u8],
    first: usize,
    stride: usize,
    x: &[u8],
    columns: usize,
) -> __m128 {
    let whole = columns - columns % F32_LANES;
    if whole == columns {
        return sums;
    }
    let mut tail = _mm_set1_ps(-0.0);
    for k in whole..columns {
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
    _mm_add_ps(sums, tail)
}

/// Each accumulator's eight lanes `[a, b, c, d, e, f, g, h]` added as
/// `((a + e) + (c + g)) + ((b + f) + (d + h))`, the four rows' sums in one
/// vector: the portable tree's adds, with the same operands in the same order.
#[inline]
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
    use std::vec;
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

    /// Each input's sums from [`f32_rows_of_inputs`] are those it gets alone
    /// (whose order the test above checks), at 2, 3 and 4 inputs: on CPUs
    /// with and without AVX-512 VL, which take them all at once or in pairs.
    #[test]
    fn several_inputs_give_the_sums_each_gets_alone() {
        let mut gen = super::super::test_gen::Gen::new(5);
        let mut value = || (gen.next() as i32 as f32) * 1e-9;
        // W's 300 columns (a tail of 4), a tail of 7, none; 3 rows past the quads.
        for (width, rows) in [(300usize, 8usize), (23, 12), (16, 7)] {
            let stride = width + 3;
            let matrix: Vec<u8> = (0..rows * stride)
                .flat_map(|_| value().to_le_bytes())
                .collect();
            let inputs: Vec<Vec<u8>> = (0..4)
                .map(|_| (0..width).flat_map(|_| value().to_le_bytes()).collect())
                .collect();
            let alone: Vec<Vec<f32>> = inputs
                .iter()
                .map(|x| {
                    let mut out = vec![f32::NAN; rows];
                    f32_row_sums(&matrix, 4 * stride, x, width, &mut out);
                    out
                })
                .collect();
            let mut outs = vec![vec![f32::NAN; rows]; 4];
            let done = match &mut outs[..] {
                [a, b, c, d] => [
                    f32_rows_of_inputs(
                        &matrix,
                        4 * stride,
                        [&inputs[0], &inputs[1]],
                        width,
                        [&mut a[..], &mut b[..]],
                    ),
                    f32_rows_of_inputs(
                        &matrix,
                        4 * stride,
                        [&inputs[0], &inputs[1], &inputs[2]],
                        width,
                        [&mut a[..], &mut b[..], &mut c[..]],
                    ),
                    f32_rows_of_inputs(
                        &matrix,
                        4 * stride,
                        [&inputs[0], &inputs[1], &inputs[2], &inputs[3]],
                        width,
                        [&mut a[..], &mut b[..], &mut c[..], &mut d[..]],
                    ),
                ],
                _ => unreachable!(),
            };
            let whole = if has_avx2() { rows / 4 * 4 } else { 0 };
            assert_eq!(done, [whole; 3], "{width}");
            for (got, want) in outs.iter().zip(&alone) {
                let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got[..whole]), bits(&want[..whole]), "{width}");
                assert!(
                    got[whole..].iter().all(|s| s.is_nan()),
                    "written past the quads"
                );
            }
        }
        // Outputs of different lengths: nothing is read or written.
        let (mut a, mut b) = ([7f32; 4], [7f32; 8]);
        let x = [0u8; 64];
        assert_eq!(
            f32_rows_of_inputs(&[0; 512], 64, [&x, &x], 16, [&mut a, &mut b]),
            0
        );
        assert_eq!((a, b), ([7.0; 4], [7.0; 8]));
    }
}
