//! Dot products and dense rows: int8 weights times i16 (or int8) inputs, for
//! dense heads and the embedding input of word models.

use core::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_cvtepi8_epi16,
    _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16,
    _mm256_permute2x128_si256, _mm256_setzero_si256, _mm256_storeu_si256, _mm512_add_epi32,
    _mm512_broadcast_i32x4, _mm512_castsi512_si256, _mm512_cvtepi8_epi16, _mm512_dpbusd_epi32,
    _mm512_dpwssd_epi32, _mm512_extracti64x4_epi64, _mm512_loadu_epi16, _mm512_loadu_si512,
    _mm512_mask_blend_epi32, _mm512_mask_storeu_epi32, _mm512_maskz_loadu_epi8,
    _mm512_permutexvar_epi32, _mm512_reduce_add_epi32, _mm512_set1_epi32, _mm512_set1_epi8,
    _mm512_setr_epi32, _mm512_setzero_si512, _mm512_shuffle_i32x4, _mm512_storeu_si512,
    _mm512_sub_epi32, _mm512_unpackhi_epi32, _mm512_unpackhi_epi64, _mm512_unpacklo_epi32,
    _mm512_unpacklo_epi64, _mm512_xor_si512, _mm_add_epi32, _mm_cvtsi128_si32, _mm_loadu_si128,
    _mm_shuffle_epi32, _mm_storeu_si128,
};

use super::{has_avx2, has_avx512};

/// `Σ w[k] * x[k]` (wrapping i32) for int8 `w` and i16 `x` over their common
/// length (dense head rows); `None` without AVX2.
pub fn dot_i8_i16(w: &[u8], x: &[i16]) -> Option<i32> {
    if !has_avx2() {
        return None;
    }
    // SAFETY: the CPU has AVX2 (checked just above).
    Some(unsafe { dot_i16(w, x) })
}

/// `Σ w[k] * x[k]` (wrapping i32) for int8 `w` and int8 `x` over their common
/// length (embedding inputs of word models); `None` without AVX2.
pub fn dot_i8_i8(w: &[u8], x: &[u8]) -> Option<i32> {
    if !has_avx2() {
        return None;
    }
    // SAFETY: the CPU has AVX2 (checked just above).
    Some(unsafe { dot_i8(w, x) })
}

/// Dense rows: `out[r] = Σ_k w[r * width + k] * x[k]` (int8 `w`, i16 `x`,
/// wrapping i32) for every `r < out.len()`. Returns false, and writes nothing,
/// when AVX2 is missing, `w` is shorter than `out.len() * width` or `x` than
/// `width`.
pub fn rows_dot_i8_i16(w: &[u8], width: usize, x: &[i16], out: &mut [i32]) -> bool {
    let Some(w) = out.len().checked_mul(width).and_then(|n| w.get(..n)) else {
        return false;
    };
    let Some(x) = x.get(..width) else {
        return false;
    };
    if !has_avx2() {
        return false;
    }
    if width == 0 {
        out.fill(0);
        return true;
    }
    // SAFETY: the CPU has AVX2 (checked just above), and AVX-512 BW and VNNI
    // where `rows_wide` runs.
    unsafe {
        match width / 16 {
            4 => rows_fixed::<4>(w, x, out),
            8 => rows_fixed::<8>(w, x, out),
            _ if width <= WIDE_ROWS_MAX && has_avx512() => rows_wide(w, x, out),
            _ => rows_by_8(w, x, out),
        }
    }
    true
}

/// [`rows_dot_i8_i16`] for an int8 `x` (a word model's embedding row): byte
/// products with AVX-512 VNNI, else `x` sign-extended once for all rows.
/// Returns false, and writes nothing, where [`rows_dot_i8_i16`] would, or when
/// `x` is wider than `WIDE_ROWS_MAX`.
pub fn rows_dot_i8_i8(w: &[u8], width: usize, x: &[u8], out: &mut [i32]) -> bool {
    let Some(x) = x.get(..width).filter(|_| width <= WIDE_ROWS_MAX) else {
        return false;
    };
    let rows = out.len().checked_mul(width).and_then(|n| w.get(..n));
    if let Some(rows) = rows.filter(|_| width > 0 && has_avx512()) {
        // SAFETY: the CPU has AVX-512 BW and VNNI (checked just above).
        match x.as_array::<16>() {
            Some(x) => unsafe { rows_bytes_16(rows, x, out) },
            None => unsafe { rows_bytes(rows, x, out) },
        }
        return true;
    }
    let mut wide = [0i16; WIDE_ROWS_MAX];
    for (to, &b) in wide.iter_mut().zip(x) {
        *to = i16::from(b as i8);
    }
    rows_dot_i8_i16(w, width, &wide, out)
}

/// [`rows_dot_i8_i8`] of two int8 `xs` at once, `xs[0]`'s sums into
/// `outs[0]` and `xs[1]`'s into `outs[1]`, each the same as alone (wrapping
/// i32 sums do not depend on their order): each load of a row's weights
/// serves both. With AVX-512 VNNI only: false, and nothing written, without
/// it, where [`rows_dot_i8_i8`] would refuse either input, or where the
/// outputs' lengths differ.
pub fn rows_dot_i8_i8_pair(w: &[u8], width: usize, xs: [&[u8]; 2], outs: [&mut [i32]; 2]) -> bool {
    let [Some(a), Some(b)] = xs.map(|x| x.get(..width)) else {
        return false;
    };
    let [out_a, out_b] = outs;
    let rows = out_a.len().checked_mul(width).and_then(|n| w.get(..n));
    let usable = width > 0 && width <= WIDE_ROWS_MAX && out_a.len() == out_b.len();
    match rows.filter(|_| usable && has_avx512()) {
        // SAFETY: the CPU has AVX-512 BW and VNNI (checked just above).
        Some(rows) => unsafe { rows_bytes_pair(rows, [a, b], [out_a, out_b]) },
        None => return false,
    }
    true
}

/// Rows of any width (`w.len() == out.len() * x.len()`) with AVX2. Blocks of
/// eight rows share each 16-column chunk of `x`, and their sums come out of one
/// `hadd` tree: a horizontal sum per row, and a scalar loop over a row's last
/// `width % 16` columns, cost W's 300-wide rows more than their products. Those
/// columns come from the 16 bytes that end the row instead, against the last 16
/// values of `x` with the ones the chunk before already counted zeroed.
#[target_feature(enable = "avx2")]
fn rows_by_8(w: &[u8], x: &[i16], out: &mut [i32]) {
    let width = x.len();
    let Some(&x_last) = x.last_chunk::<16>() else {
        return rows_each(w, x, out);
    };
    let (full, rest) = (width / 16, width % 16);
    let mut x_tail = x_last;
    x_tail.iter_mut().take(16 - rest).for_each(|v| *v = 0);
    let (x_chunks, _) = x.as_chunks::<16>();
    // SAFETY: 32 bytes from a 16-value array.
    let load_x = |c: &[i16; 16]| unsafe { _mm256_loadu_si256(c.as_ptr().cast::<__m256i>()) };
    let x_tail = load_x(&x_tail);
    // One row's products, chunk by chunk; a row holds `width >= 16` bytes.
    let row_sums = |acc: &mut __m256i, row: &[u8], c: usize, xv: __m256i| {
        debug_assert!(16 * c + 16 <= row.len());
        // SAFETY: c < full = width / 16, so bytes 16c..16c + 16 lie in the row.
        let wb = unsafe { &*row.as_ptr().add(16 * c).cast::<[u8; 16]>() };
        *acc = _mm256_add_epi32(*acc, widen_madd(wb, xv));
    };
    let row_tail = |acc: &mut __m256i, row: &[u8]| {
        if let Some(last) = row.last_chunk::<16>().filter(|_| rest > 0) {
            *acc = _mm256_add_epi32(*acc, widen_madd(last, x_tail));
        }
    };
    let mut outs = out.chunks_exact_mut(8);
    let mut blocks = w.chunks_exact(8 * width);
    for (o, block) in (&mut outs).zip(&mut blocks) {
        let mut acc = [_mm256_setzero_si256(); 8];
        for (c, xc) in x_chunks.iter().enumerate().take(full) {
            let xv = load_x(xc);
            for (a, row) in acc.iter_mut().zip(block.chunks_exact(width)) {
                row_sums(a, row, c, xv);
            }
        }
        for (a, row) in acc.iter_mut().zip(block.chunks_exact(width)) {
            row_tail(a, row);
        }
        let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
        // [r0 r1 r2 r3 | r0' r1' r2' r3'] and the same of rows 4 to 7.
        let q0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
        let q1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
        let sums = _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(q0, q1),
            _mm256_permute2x128_si256::<0x31>(q0, q1),
        );
        // SAFETY: `o` holds 8 i32s (32 bytes).
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast::<__m256i>(), sums) };
    }
    let rest_rows = blocks.remainder().chunks_exact(width);
    for (o, row) in outs.into_remainder().iter_mut().zip(rest_rows) {
        let mut acc = _mm256_setzero_si256();
        for (c, xc) in x_chunks.iter().enumerate().take(full) {
            row_sums(&mut acc, row, c, load_x(xc));
        }
        row_tail(&mut acc, row);
        *o = hsum(acc);
    }
}

/// Rows of any width (`w.len() == out.len() * x.len()`), one AVX2 dot each.
#[target_feature(enable = "avx2")]
fn rows_each(w: &[u8], x: &[i16], out: &mut [i32]) {
    for (o, row) in out.iter_mut().zip(w.chunks_exact(x.len().max(1))) {
        *o = dot_i16(row, x);
    }
}

/// Wrapping sum of the eight i32 lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// One block of 16 int8 weights times 16 int16 inputs, as eight pair sums.
#[target_feature(enable = "avx2")]
#[inline]
fn product_i16(w: &[u8; 16], x: &[i16; 16]) -> __m256i {
    // SAFETY: 16 bytes from `w`, 32 bytes from `x`.
    let (wv, xv) = unsafe {
        (
            _mm_loadu_si128(w.as_ptr().cast::<__m128i>()),
            _mm256_loadu_si256(x.as_ptr().cast::<__m256i>()),
        )
    };
    _mm256_madd_epi16(_mm256_cvtepi8_epi16(wv), xv)
}

#[target_feature(enable = "avx2")]
fn dot_i16(w: &[u8], x: &[i16]) -> i32 {
    let n = w.len().min(x.len());
    let (w, x) = (w.get(..n).unwrap_or(&[]), x.get(..n).unwrap_or(&[]));
    let (w32, w_rest) = w.as_chunks::<32>();
    let (x32, x_rest) = x.as_chunks::<32>();
    // Two accumulators: two independent add chains per pass.
    let (mut even, mut odd) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    for (wb, xb) in w32.iter().zip(x32) {
        let (w0, w1) = wb.as_chunks::<16>().0.split_at(1);
        let (x0, x1) = xb.as_chunks::<16>().0.split_at(1);
        for (w, x) in w0.iter().zip(x0) {
            even = _mm256_add_epi32(even, product_i16(w, x));
        }
        for (w, x) in w1.iter().zip(x1) {
            odd = _mm256_add_epi32(odd, product_i16(w, x));
        }
    }
    let (w16, w_rest) = w_rest.as_chunks::<16>();
    let (x16, x_rest) = x_rest.as_chunks::<16>();
    for (w, x) in w16.iter().zip(x16) {
        even = _mm256_add_epi32(even, product_i16(w, x));
    }
    let tail = w_rest.iter().zip(x_rest).fold(0i32, |acc, (&a, &b)| {
        acc.wrapping_add(i32::from(a as i8) * i32::from(b))
    });
    hsum(_mm256_add_epi32(even, odd)).wrapping_add(tail)
}

#[target_feature(enable = "avx2")]
fn dot_i8(w: &[u8], x: &[u8]) -> i32 {
    let n = w.len().min(x.len());
    let (w, x) = (w.get(..n).unwrap_or(&[]), x.get(..n).unwrap_or(&[]));
    let (wc, w_rest) = w.as_chunks::<16>();
    let (xc, x_rest) = x.as_chunks::<16>();
    let mut acc = _mm256_setzero_si256();
    for (wb, xb) in wc.iter().zip(xc) {
        // SAFETY: 16 bytes from each of `wb` and `xb`.
        let (wv, xv) = unsafe {
            (
                _mm_loadu_si128(wb.as_ptr().cast::<__m128i>()),
                _mm_loadu_si128(xb.as_ptr().cast::<__m128i>()),
            )
        };
        let p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(wv), _mm256_cvtepi8_epi16(xv));
        acc = _mm256_add_epi32(acc, p);
    }
    let tail = w_rest.iter().zip(x_rest).fold(0i32, |acc, (&a, &b)| {
        acc.wrapping_add(i32::from(a as i8) * i32::from(b as i8))
    });
    hsum(acc).wrapping_add(tail)
}

/// Widest `x` that [`rows_wide`] takes (it copies `x`, zero-padded, to the stack).
const WIDE_ROWS_MAX: usize = 1024;

/// Rows of any width up to [`WIDE_ROWS_MAX`] (`w.len() == out.len() *
/// x.len()`) with AVX-512 VNNI: `vpdpwssd` sums pairs of products, 32 weights
/// per instruction. The last `width % 32` weights of a row come from a masked
/// load against `x` zero-padded to whole chunks.
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
fn rows_wide(w: &[u8], x: &[i16], out: &mut [i32]) {
    let width = x.len();
    if width > WIDE_ROWS_MAX {
        return;
    }
    let mut padded = [0i16; WIDE_ROWS_MAX];
    padded.iter_mut().zip(x).for_each(|(p, &v)| *p = v);
    let (full, rest) = (width / 32, width % 32);
    // A chunk is 32 weight bytes: the low half of a 64-byte masked load.
    let mask = |c: usize| {
        if c < full {
            u64::from(u32::MAX)
        } else {
            (1u64 << rest) - 1
        }
    };
    let x_chunk = |c: usize| {
        // SAFETY: `padded` holds every chunk (32 * c + 32 <= WIDE_ROWS_MAX, as
        // c <= width / 32 and WIDE_ROWS_MAX is a multiple of 32).
        unsafe { _mm512_loadu_epi16(padded.as_ptr().add(32 * c)) }
    };
    let madd = |acc: __m512i, row: &[u8], c: usize, xc: __m512i| {
        // The last byte the mask reads is within the row.
        debug_assert!(32 * c + (64 - mask(c).leading_zeros() as usize) <= row.len());
        // SAFETY: the mask reads bytes 32c.. of the row only up to its
        // `width`th (rows hold `width` bytes, see `rows_by_16`).
        let wv = unsafe { _mm512_maskz_loadu_epi8(mask(c), row.as_ptr().add(32 * c).cast::<i8>()) };
        _mm512_dpwssd_epi32(acc, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(wv)), xc)
    };
    rows_by_16(
        w,
        width,
        out,
        full + usize::from(rest > 0),
        0,
        x_chunk,
        madd,
    );
}

/// Rows of int8 weights times an int8 `x` (`x.len()` up to
/// [`WIDE_ROWS_MAX`], `w.len() == out.len() * x.len()`) with AVX-512
/// VNNI: `vpdpbusd` sums four byte products per lane, 64 per instruction with
/// no widening. It takes one unsigned operand, so the weights go in as
/// `w + 128` (`w ^ 0x80`) and `Σ w x = Σ (w + 128) x - 128 Σ x`, exact in
/// wrapping i32. The last `width % 64` weights of a row come from a masked
/// load against `x` zero-padded to whole chunks.
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
fn rows_bytes(w: &[u8], x: &[u8], out: &mut [i32]) {
    let width = x.len();
    if width > WIDE_ROWS_MAX {
        return;
    }
    let mut padded = [0u8; WIDE_ROWS_MAX];
    padded.iter_mut().zip(x).for_each(|(p, &v)| *p = v);
    let offset = flip_offset(x);
    let (full, rest) = (width / 64, width % 64);
    let mask = |c: usize| chunk_mask(width, c);
    let flip = _mm512_set1_epi8(i8::MIN);
    let x_chunk = |c: usize| {
        // SAFETY: `padded` holds every chunk (64 * c + 64 <= WIDE_ROWS_MAX, as
        // c <= width / 64 and WIDE_ROWS_MAX is a multiple of 64).
        unsafe { _mm512_loadu_si512(padded.as_ptr().add(64 * c).cast()) }
    };
    let madd = |acc: __m512i, row: &[u8], c: usize, xc: __m512i| {
        // The last byte the mask reads is within the row.
        debug_assert!(64 * c + (64 - mask(c).leading_zeros() as usize) <= row.len());
        // SAFETY: the mask reads bytes 64c.. of the row only up to its
        // `width`th (rows hold `width` bytes, see `rows_by_16`).
        let wv = unsafe { _mm512_maskz_loadu_epi8(mask(c), row.as_ptr().add(64 * c).cast::<i8>()) };
        // Masked-out weights become 128 here, against zeros of `padded`.
        _mm512_dpbusd_epi32(acc, _mm512_xor_si512(wv, flip), xc)
    };
    rows_by_16(
        w,
        width,
        out,
        full + usize::from(rest > 0),
        offset,
        x_chunk,
        madd,
    );
}

/// [`rows_bytes`] of two inputs of the same width (`0 < width <=
/// WIDE_ROWS_MAX`, `w.len() == out.len() * width` for both outputs): blocks
/// of 8 rows, each masked load of a row's chunk taken into both inputs'
/// accumulators, whose 16 sums (8 rows of each) come out of one transpose
/// tree.
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
fn rows_bytes_pair(w: &[u8], xs: [&[u8]; 2], outs: [&mut [i32]; 2]) {
    let width = xs[0].len();
    if width == 0 || width > WIDE_ROWS_MAX {
        return;
    }
    let mut padded = [[0u8; WIDE_ROWS_MAX]; 2];
    for (p, x) in padded.iter_mut().zip(xs) {
        p.iter_mut().zip(x).for_each(|(p, &v)| *p = v);
    }
    let [offset_a, offset_b] = xs.map(flip_offset);
    let chunks = width.div_ceil(64);
    let mask = |c: usize| chunk_mask(width, c);
    let flip = _mm512_set1_epi8(i8::MIN);
    let x_chunks = |c: usize| {
        // SAFETY: `padded` holds every chunk (64 * c + 64 <= WIDE_ROWS_MAX, as
        // c <= width / 64 and WIDE_ROWS_MAX is a multiple of 64).
        padded
            .each_ref()
            .map(|p| unsafe { _mm512_loadu_si512(p.as_ptr().add(64 * c).cast()) })
    };
    let weights = |row: &[u8], c: usize| {
        debug_assert!(64 * c + (64 - mask(c).leading_zeros() as usize) <= row.len());
        // SAFETY: the mask reads bytes 64c.. of the row only up to its
        // `width`th (rows hold `width` bytes).
        let wv = unsafe { _mm512_maskz_loadu_epi8(mask(c), row.as_ptr().add(64 * c).cast::<i8>()) };
        // Masked-out weights become 128 here, against zeros of `padded`.
        _mm512_xor_si512(wv, flip)
    };
    // Lanes 0..8 of a block's sums are input a's rows, 8..16 input b's.
    let offsets = _mm512_mask_blend_epi32(
        0xFF00,
        _mm512_set1_epi32(offset_a),
        _mm512_set1_epi32(offset_b),
    );
    let [out_a, out_b] = outs;
    let blocks = out_a
        .chunks_exact_mut(8)
        .zip(out_b.chunks_exact_mut(8))
        .zip(w.chunks_exact(8 * width));
    let blocked = 8 * blocks.len();
    for ((block_a, block_b), rows) in blocks {
        let mut acc = [_mm512_setzero_si512(); 16];
        for c in 0..chunks {
            let [xa, xb] = x_chunks(c);
            let (acc_a, acc_b) = acc.split_at_mut(8);
            for ((a, b), row) in acc_a.iter_mut().zip(acc_b).zip(rows.chunks_exact(width)) {
                let wv = weights(row, c);
                *a = _mm512_dpbusd_epi32(*a, wv, xa);
                *b = _mm512_dpbusd_epi32(*b, wv, xb);
            }
        }
        let sums = _mm512_sub_epi32(lane_sums_x16(&acc), offsets);
        // SAFETY: each block holds 8 i32s (32 bytes).
        unsafe {
            _mm256_storeu_si256(block_a.as_mut_ptr().cast(), _mm512_castsi512_si256(sums));
            let high = _mm512_extracti64x4_epi64::<1>(sums);
            _mm256_storeu_si256(block_b.as_mut_ptr().cast(), high);
        }
    }
    let rest_rows = out_a
        .iter_mut()
        .zip(out_b.iter_mut())
        .zip(w.chunks_exact(width));
    for ((a, b), row) in rest_rows.skip(blocked) {
        let (mut acc_a, mut acc_b) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        for c in 0..chunks {
            let [xa, xb] = x_chunks(c);
            let wv = weights(row, c);
            acc_a = _mm512_dpbusd_epi32(acc_a, wv, xa);
            acc_b = _mm512_dpbusd_epi32(acc_b, wv, xb);
        }
        *a = _mm512_reduce_add_epi32(acc_a).wrapping_sub(offset_a);
        *b = _mm512_reduce_add_epi32(acc_b).wrapping_sub(offset_b);
    }
}

/// The bytes of chunk `c` (64 bytes from `64 c`) that a row of `width` bytes
/// holds, as a load mask: all of a whole chunk, the first `width % 64` of the
/// last one.
#[inline(always)]
fn chunk_mask(width: usize, c: usize) -> u64 {
    if c < width / 64 {
        u64::MAX
    } else {
        (1u64 << (width % 64)) - 1
    }
}

/// [`rows_bytes`] for rows exactly 16 bytes wide (a 16-wide embedding, as
/// `w`'s): a masked 64-byte load per row would leave three quarters of it
/// unused, so each load takes four whole rows against `x` repeated four
/// times, and the four lanes of each row are summed across four loads at
/// once. Rows past the end of `w` load as zeros and are not stored.
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
fn rows_bytes_16(w: &[u8], x: &[u8; 16], out: &mut [i32]) {
    let offset = flip_offset(x);
    let offsets = _mm512_set1_epi32(offset);
    // SAFETY: 16 bytes from `x`.
    let xs = _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(x.as_ptr().cast()) });
    let flip = _mm512_set1_epi8(i8::MIN);
    // Lane `4k + i` of the summed loads is row `4i + k` of the block.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let block_sums = |loads: [__m512i; 4]| {
        let [a0, a1, a2, a3] = loads
            .map(|wv| _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(wv, flip), xs));
        let sums = block_sums_x4(a0, a1, a2, a3);
        _mm512_sub_epi32(_mm512_permutexvar_epi32(order, sums), offsets)
    };
    let w = w.get(..16 * out.len()).unwrap_or(&[]);
    let (blocks, last_rows) = w.as_chunks::<256>();
    let (outs, last_outs) = out.as_chunks_mut::<16>();
    for (block, o) in blocks.iter().zip(outs) {
        let mut loads = [_mm512_setzero_si512(); 4];
        for (l, rows) in loads.iter_mut().zip(block.as_chunks::<64>().0) {
            // SAFETY: 64 bytes from a 64-byte chunk.
            *l = unsafe { _mm512_loadu_si512(rows.as_ptr().cast()) };
        }
        // SAFETY: `o` holds 16 i32s (64 bytes).
        unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), block_sums(loads)) };
    }
    if last_outs.is_empty() {
        return;
    }
    // The last rows (fewer than 16): masked loads and store; the missing
    // rows load as zeros and are not stored.
    let mut loads = [_mm512_setzero_si512(); 4];
    for (l, rows) in loads.iter_mut().zip(last_rows.chunks(64)) {
        let mask = u64::MAX >> (64 - rows.len());
        // SAFETY: the mask reads `rows`' bytes only (1 to 64 of them).
        *l = unsafe { _mm512_maskz_loadu_epi8(mask, rows.as_ptr().cast::<i8>()) };
    }
    let store = u16::MAX >> (16 - last_outs.len());
    // SAFETY: the mask writes `last_outs`' lanes only (1 to 15 of them).
    unsafe { _mm512_mask_storeu_epi32(last_outs.as_mut_ptr().cast(), store, block_sums(loads)) };
}

/// The row driver of [`rows_wide`] and [`rows_bytes`]: `out[r]` is the lane
/// sum of row `r`'s accumulator over `chunks` chunks, minus `offset`.
/// `x_chunk(c)` loads chunk `c` of `x`; `madd(acc, row, c, x_chunk(c))` adds
/// the row's chunk `c` and may read the row's `width` bytes, no more. Blocks
/// of 16 rows share each chunk of `x`, and their sums come out of one
/// transpose tree ([`lane_sums_x16`]); a horizontal sum per row would cost
/// more than the row's products.
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
#[inline]
fn rows_by_16(
    w: &[u8],
    width: usize,
    out: &mut [i32],
    chunks: usize,
    offset: i32,
    x_chunk: impl Fn(usize) -> __m512i,
    madd: impl Fn(__m512i, &[u8], usize, __m512i) -> __m512i,
) {
    let width = width.max(1);
    let blocks = out.chunks_exact_mut(16).zip(w.chunks_exact(16 * width));
    let blocked = 16 * blocks.len();
    let offsets = _mm512_set1_epi32(offset);
    for (o, block) in blocks {
        let mut acc = [_mm512_setzero_si512(); 16];
        for c in 0..chunks {
            let xc = x_chunk(c);
            for (a, row) in acc.iter_mut().zip(block.chunks_exact(width)) {
                *a = madd(*a, row, c, xc);
            }
        }
        let sums = _mm512_sub_epi32(lane_sums_x16(&acc), offsets);
        // SAFETY: `o` holds 16 i32s (64 bytes).
        unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), sums) };
    }
    let rest = out.iter_mut().zip(w.chunks_exact(width)).skip(blocked);
    for (o, row) in rest {
        let mut acc = _mm512_setzero_si512();
        for c in 0..chunks {
            acc = madd(acc, row, c, x_chunk(c));
        }
        *o = _mm512_reduce_add_epi32(acc).wrapping_sub(offset);
    }
}

/// Lane sums of 16 vectors: lane `r` of the result is the wrapping sum of
/// `v[r]`'s 16 lanes, by interleaving pairs, then quads, then 128-bit blocks
/// (15 vector adds in all).
#[target_feature(enable = "avx512f")]
#[inline]
fn lane_sums_x16(v: &[__m512i; 16]) -> __m512i {
    // Blocks 0, 1 hold `a`'s rows (its even and odd blocks), 2, 3 `b`'s.
    let halves = |a, b| {
        _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b),
        )
    };
    let [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15] = *v;
    let q0 = block_sums_x4(a0, a1, a2, a3);
    let q1 = block_sums_x4(a4, a5, a6, a7);
    let q2 = block_sums_x4(a8, a9, a10, a11);
    let q3 = block_sums_x4(a12, a13, a14, a15);
    halves(halves(q0, q1), halves(q2, q3))
}

/// Sums within the 128-bit blocks of four vectors: lane `i` of block `k` of
/// the result is the wrapping sum of block `k` of the `i`th vector.
#[target_feature(enable = "avx512f")]
#[inline]
fn block_sums_x4(a: __m512i, b: __m512i, c: __m512i, d: __m512i) -> __m512i {
    // Lanes 0, 2 of each block hold the first vector's part, lanes 1, 3 the second's.
    let pairs = |a, b| _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    let (ab, cd) = (pairs(a, b), pairs(c, d));
    _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd))
}

/// `128 Σ x` (wrapping), which [`rows_bytes`] and [`rows_bytes_16`] take off
/// their `vpdpbusd` sums for feeding the weights in as `w + 128`.
#[inline]
fn flip_offset(x: &[u8]) -> i32 {
    x.iter()
        .fold(0i32, |acc, &v| acc.wrapping_add(i32::from(v as i8)))
        .wrapping_mul(128)
}

/// Rows per pass of [`rows_fixed`] (they share the vectors of `x`).
const DENSE_ROWS: usize = 4;

/// Rows of `16 * C` columns plus a short tail (`w.len() == out.len() *
/// x.len()`, `x.len() / 16 == C`): `x` stays in `C` registers across rows.
#[target_feature(enable = "avx2")]
fn rows_fixed<const C: usize>(w: &[u8], x: &[i16], out: &mut [i32]) {
    let width = x.len();
    let (xc, x_tail) = x.as_chunks::<16>();
    let mut xs = [_mm256_setzero_si256(); C];
    for (v, c) in xs.iter_mut().zip(xc) {
        // SAFETY: 32 bytes from a 16-value chunk.
        *v = unsafe { _mm256_loadu_si256(c.as_ptr().cast::<__m256i>()) };
    }
    let tail = |row: &[u8]| -> i32 {
        let t = row.get(16 * C..).unwrap_or(&[]);
        t.iter().zip(x_tail).fold(0i32, |acc, (&a, &b)| {
            acc.wrapping_add(i32::from(a as i8) * i32::from(b))
        })
    };
    let mut outs = out.chunks_exact_mut(DENSE_ROWS);
    let mut rows = w.chunks_exact(DENSE_ROWS * width);
    for (o, block) in (&mut outs).zip(&mut rows) {
        let mut acc = [_mm256_setzero_si256(); DENSE_ROWS];
        for (a, row) in acc.iter_mut().zip(block.chunks_exact(width)) {
            let (wc, _) = row.as_chunks::<16>();
            for (wb, &xv) in wc.iter().zip(&xs) {
                *a = _mm256_add_epi32(*a, widen_madd(wb, xv));
            }
        }
        let [a0, a1, a2, a3] = acc;
        // [s0 s1 s2 s3 | s0' s1' s2' s3'] of the four rows, halves summed.
        let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
        let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
        let mut lanes = [0i32; DENSE_ROWS];
        // SAFETY: `lanes` holds 4 i32, one 16-byte store.
        unsafe { _mm_storeu_si128(lanes.as_mut_ptr().cast::<__m128i>(), sums) };
        for ((o, l), row) in o.iter_mut().zip(lanes).zip(block.chunks_exact(width)) {
            *o = l.wrapping_add(tail(row));
        }
    }
    let rest = rows.remainder().chunks_exact(width);
    for (o, row) in outs.into_remainder().iter_mut().zip(rest) {
        let (wc, _) = row.as_chunks::<16>();
        let mut acc = _mm256_setzero_si256();
        for (wb, &xv) in wc.iter().zip(&xs) {
            acc = _mm256_add_epi32(acc, widen_madd(wb, xv));
        }
        *o = hsum(acc).wrapping_add(tail(row));
    }
}

/// 16 int8 weights widened to i16 times `x`, as eight pair sums.
#[target_feature(enable = "avx2")]
#[inline]
fn widen_madd(w: &[u8; 16], x: __m256i) -> __m256i {
    // SAFETY: 16 bytes from `w`.
    let wv = unsafe { _mm_loadu_si128(w.as_ptr().cast::<__m128i>()) };
    _mm256_madd_epi16(_mm256_cvtepi8_epi16(wv), x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::x86::test_gen::Gen;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn dot_products_equal_the_scalar_definition() {
        if !has_avx2() {
            return; // the refusal: `without_avx2_every_kernel_refuses`
        }
        let mut gen = Gen::new(7);
        let lengths = (0..=70).chain([300]);
        for n in lengths {
            let w = gen.bytes(n);
            let x = gen.acts(n);
            let e = gen.bytes(n);
            let want_i16 = w.iter().zip(&x).fold(0i32, |a, (&w, &x)| {
                a.wrapping_add(i32::from(w as i8) * i32::from(x))
            });
            let want_i8 = w.iter().zip(&e).fold(0i32, |a, (&w, &e)| {
                a.wrapping_add(i32::from(w as i8) * i32::from(e as i8))
            });
            assert_eq!(dot_i8_i16(&w, &x), Some(want_i16), "n={n}");
            assert_eq!(dot_i8_i8(&w, &e), Some(want_i8), "n={n}");
            // Extremes: -128 * i16::MIN and -128 * -128 in every position.
            let (wm, xm, em) = (vec![0x80u8; n], vec![i16::MIN; n], vec![0x80u8; n]);
            let n32 = i32::try_from(n).unwrap();
            assert_eq!(dot_i8_i16(&wm, &xm), Some(n32 * 128 * 32768), "n={n}");
            assert_eq!(dot_i8_i8(&wm, &em), Some(n32 * 128 * 128), "n={n}");
        }
        // Uneven lengths: the common prefix.
        assert_eq!(dot_i8_i16(&[2, 3, 4], &[5, 6]), Some(28));
        assert_eq!(dot_i8_i8(&[0xff; 40], &[2; 33]), Some(-66));
    }

    #[test]
    fn dense_rows_equal_the_scalar_definition() {
        if !has_avx2() {
            return; // the refusal: `without_avx2_every_kernel_refuses`
        }
        let mut gen = Gen::new(23);
        let widths = (0..=40).chain([63, 64, 65, 79, 127, 128, 129, 143, 256, 300]);
        for width in widths {
            for rows in [0, 1, 3, 4, 5, 8, 50] {
                let w = gen.bytes(rows * width + 3);
                let x = gen.acts(width + 2);
                // Extremes: -128 * i16::MIN in every position, wrapping past i32::MAX.
                let (wm, xm) = (vec![0x80u8; rows * width], vec![i16::MIN; width]);
                for (w, x) in [(&w, &x), (&wm, &xm)] {
                    let mut out = vec![5i32; rows + 1];
                    assert!(
                        rows_dot_i8_i16(w, width, x, &mut out[..rows]),
                        "rows={rows} width={width}"
                    );
                    let want: Vec<i32> = (0..rows)
                        .map(|r| {
                            (0..width).fold(0i32, |a, k| {
                                let v = i32::from(w[r * width + k] as i8);
                                a.wrapping_add(v * i32::from(x[k]))
                            })
                        })
                        .collect();
                    assert_eq!(out[..rows], want[..], "rows={rows} width={width}");
                    assert_eq!(out[rows], 5);
                }
            }
        }
        // 600 products of 2^22 wrap.
        let mut out = [0i32; 5];
        assert!(rows_dot_i8_i16(
            &[0x80; 3000],
            600,
            &[i16::MIN; 600],
            &mut out
        ));
        let want = (0..600).fold(0i32, |a, _| a.wrapping_add(1 << 22));
        assert_eq!(out, [want; 5]);
    }

    /// The general-width kernels [`rows_dot_i8_i16`] picks between, each
    /// against the scalar definition, whatever this CPU would pick.
    #[test]
    fn both_general_width_kernels_equal_the_scalar_definition() {
        if !has_avx2() {
            return;
        }
        let mut gen = Gen::new(31);
        for width in [1, 15, 16, 17, 31, 32, 33, 100, 300, 1000, 1024] {
            for rows in [1, 4, 7, 8, 9, 16, 23, 200] {
                let (w, x) = (gen.bytes(rows * width), gen.acts(width));
                let want: Vec<i32> = w
                    .chunks_exact(width)
                    .map(|row| {
                        row.iter().zip(&x).fold(0i32, |a, (&v, &h)| {
                            a.wrapping_add(i32::from(v as i8) * i32::from(h))
                        })
                    })
                    .collect();
                let mut out = vec![0i32; rows];
                // SAFETY: AVX2 checked above.
                unsafe { rows_each(&w, &x, &mut out) };
                assert_eq!(out, want, "AVX2, rows={rows} width={width}");
                out.fill(0);
                // SAFETY: AVX2 checked above.
                unsafe { rows_by_8(&w, &x, &mut out) };
                assert_eq!(out, want, "AVX2 by 8, rows={rows} width={width}");
                if has_avx512() {
                    out.fill(0);
                    // SAFETY: AVX-512 BW and VNNI checked just above.
                    unsafe { rows_wide(&w, &x, &mut out) };
                    assert_eq!(out, want, "AVX-512, rows={rows} width={width}");
                }
            }
        }
    }

    #[test]
    fn byte_rows_equal_the_scalar_definition() {
        if !has_avx2() {
            return; // the refusal: `without_avx2_every_kernel_refuses`
        }
        let mut gen = Gen::new(41);
        let widths = (0..=130).chain([191, 192, 193, 300, 1000, 1024]);
        for width in widths {
            for rows in [0, 1, 3, 4, 5, 9, 16, 17, 33, 200] {
                let (w, x) = (gen.bytes(rows * width + 5), gen.bytes(width + 3));
                // Extremes: -128 * -128 and 127 * -128 in every position.
                let (wm, xm) = (vec![0x80u8; rows * width], vec![0x80u8; width]);
                let (wp, xp) = (vec![0x7fu8; rows * width], vec![0x80u8; width]);
                for (w, x) in [(&w, &x), (&wm, &xm), (&wp, &xp)] {
                    let mut out = vec![5i32; rows + 1];
                    assert!(
                        rows_dot_i8_i8(w, width, x, &mut out[..rows]),
                        "rows={rows} width={width}"
                    );
                    let want: Vec<i32> = (0..rows)
                        .map(|r| {
                            (0..width).fold(0i32, |a, k| {
                                let v = i32::from(w[r * width + k] as i8);
                                a.wrapping_add(v * i32::from(x[k] as i8))
                            })
                        })
                        .collect();
                    assert_eq!(out[..rows], want[..], "rows={rows} width={width}");
                    assert_eq!(out[rows], 5);
                }
            }
        }
        let mut out = [9i32; 4];
        assert!(!rows_dot_i8_i8(&[1; 4 * 64 - 1], 64, &[1; 64], &mut out));
        assert!(!rows_dot_i8_i8(&[1; 4 * 2000], 2000, &[1; 2000], &mut out));
        assert_eq!(out, [9; 4]);
    }

    /// Two inputs' byte rows at once are each input's alone (which the test
    /// above compares with the scalar definition), in whole blocks of 8 rows
    /// and past them, extremes included.
    #[test]
    fn byte_rows_of_two_inputs_are_each_alone() {
        let mut out = [[9i32; 4]; 2];
        let [a, b] = &mut out;
        if !has_avx512() {
            assert!(!rows_dot_i8_i8_pair(
                &[1; 4 * 64],
                64,
                [&[1; 64], &[1; 64]],
                [a, b]
            ));
            assert_eq!(out, [[9; 4]; 2]);
            return;
        }
        let mut gen = Gen::new(43);
        for width in [1, 63, 64, 65, 100, 128, 300, 1024] {
            for rows in [1, 7, 8, 9, 16, 21, 200] {
                let w = gen.bytes(rows * width);
                let xs = [gen.bytes(width), gen.bytes(width)];
                let (wm, xm) = (vec![0x80u8; rows * width], vec![0x80u8; width]);
                let (wp, xp) = (vec![0x7fu8; rows * width], vec![0x80u8; width]);
                let cases = [
                    (&w, [&xs[0], &xs[1]]),
                    (&wm, [&xm, &xs[0]]),
                    (&wp, [&xs[1], &xp]),
                ];
                for (w, [x0, x1]) in cases {
                    let alone = [x0, x1].map(|x| {
                        let mut out = vec![0i32; rows];
                        assert!(rows_dot_i8_i8(w, width, x, &mut out));
                        out
                    });
                    let (mut out0, mut out1) = (vec![5i32; rows + 1], vec![5i32; rows + 1]);
                    let outs = [&mut out0[..rows], &mut out1[..rows]];
                    assert!(rows_dot_i8_i8_pair(w, width, [x0, x1], outs));
                    assert_eq!(out0[..rows], alone[0][..], "rows={rows} width={width}");
                    assert_eq!(out1[..rows], alone[1][..], "rows={rows} width={width}");
                    assert_eq!((out0[rows], out1[rows]), (5, 5));
                }
            }
        }
        // Refused: outputs of different lengths, a short input or matrix, too wide.
        let (x, mut c, mut d) = ([1u8; 64], [9i32; 3], [9i32; 4]);
        assert!(!rows_dot_i8_i8_pair(
            &[1; 4 * 64],
            64,
            [&x, &x],
            [&mut c, &mut d]
        ));
        assert!(!rows_dot_i8_i8_pair(
            &[1; 4 * 64],
            64,
            [&x, &x[1..]],
            [a, b]
        ));
        assert!(!rows_dot_i8_i8_pair(&[1; 4 * 64 - 1], 64, [&x, &x], [a, b]));
        let wide = [1u8; 2000];
        assert!(!rows_dot_i8_i8_pair(
            &[1; 4 * 2000],
            2000,
            [&wide, &wide],
            [a, b]
        ));
        assert_eq!((c, d, out), ([9; 3], [9; 4], [[9; 4]; 2]));
    }

    #[test]
    fn dense_rows_refuse_short_slices() {
        let (w, x) = (vec![1u8; 4 * 128], vec![1i16; 128]);
        let mut out = vec![9i32; 4];
        assert!(!rows_dot_i8_i16(&w[1..], 128, &x, &mut out));
        assert!(!rows_dot_i8_i16(&w, 128, &x[1..], &mut out));
        assert!(!rows_dot_i8_i16(&w, usize::MAX, &x, &mut out));
        assert!(out.iter().all(|&v| v == 9));
        if has_avx2() {
            assert!(rows_dot_i8_i16(&w, 128, &x, &mut out));
            assert_eq!(out, [128; 4]);
        }
    }

    #[test]
    fn wrapping_sums_wrap_like_the_scalar_code() {
        if !has_avx2() {
            return; // the refusal: `without_avx2_every_kernel_refuses`
        }
        // 600 products of 128 * 32768 exceed i32::MAX: the sum must wrap.
        let n = 600usize;
        let (w, x) = (vec![0x80u8; n], vec![i16::MIN; n]);
        let want = (0..n).fold(0i32, |a, _| a.wrapping_add(128 * 32768));
        assert!(want < 0);
        assert_eq!(dot_i8_i16(&w, &x), Some(want));
    }
}
