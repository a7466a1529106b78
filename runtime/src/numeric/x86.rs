//! AVX2 kernels for the integer path on x86-64 hosts: int8 weights times int16
//! (or int8) inputs, summed in wrapping i32, 16 products per `vpmaddwd`.
//!
//! Audit of the `unsafe` here, the runtime's second exception to
//! `deny(unsafe_code)`:
//! - Each public function calls its `#[target_feature(enable = "avx2")]` kernel
//!   only after [`has_avx2`] said the CPU has AVX2 (runtime detection with the
//!   `std` feature, else the compile-time target features).
//! - The kernels' only other `unsafe` operations are pointer offsets into
//!   slices and unaligned vector loads from them (`loadu`, no alignment
//!   needed; `maskz_loadu` reads only its unmasked bytes), and 32-byte stores
//!   into local arrays. Every load range is checked
//!   against the slice length before the loop that reads it; each block states
//!   the bound it relies on. Nothing reads past a slice, not even in the
//!   leftover columns.
//!
//! Results equal the portable definition exactly: every product fits i32 (and a
//! `vpmaddwd` pair sum as well, since one factor is a sign-extended byte), and
//! wrapping i32 addition is associative and commutative, so the lane order of
//! the vector sums does not change the result.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi32, _mm256_add_epi64, _mm256_and_si256, _mm256_blend_epi32,
    _mm256_blendv_epi8, _mm256_castsi128_si256, _mm256_castsi256_si128, _mm256_cvtepi8_epi16,
    _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_inserti128_si256, _mm256_loadu_si256,
    _mm256_madd_epi16, _mm256_mul_epi32, _mm256_permute4x64_epi64, _mm256_permutevar8x32_epi32,
    _mm256_set1_epi32, _mm256_set1_epi64x, _mm256_setr_epi32, _mm256_setr_epi64x,
    _mm256_setzero_si256, _mm256_srai_epi32, _mm256_srli_epi64, _mm256_storeu_si256,
    _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32, _mm256_unpacklo_epi64,
    _mm256_xor_si256, _mm256_zextsi128_si256, _mm_add_epi32, _mm_cvtepi8_epi16, _mm_cvtsi128_si32,
    _mm_cvtsi32_si128, _mm_cvtsi64_si128, _mm_loadu_si128, _mm_madd_epi16, _mm_set1_epi64x,
    _mm_set_epi64x, _mm_setzero_si128, _mm_shuffle_epi32, _mm_shuffle_epi8, _mm_storeu_si128,
};

use core::arch::x86_64::{
    __m512i, _mm512_castsi256_si512, _mm512_castsi512_si256, _mm512_cvtepi8_epi16,
    _mm512_dpwssd_epi32, _mm512_extracti64x4_epi64, _mm512_inserti64x4, _mm512_loadu_epi16,
    _mm512_maskz_loadu_epi8, _mm512_reduce_add_epi32, _mm512_setzero_si512,
};

use crate::format::{scale_q32, RowConsts, MAX_HIDDEN};

/// Whether the AVX2 kernels run on this CPU: detected at run time with the
/// `std` feature (cached by std), else fixed by the compile-time target.
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx2")
    }
}

/// Recurrent sums of all units of a unit-major `R` (`r.len() == G * hidden *
/// hidden`, layout of `format::unit_major_index`):
/// `out[j][g] = Σ_k R[g * hidden + j][k] * h[k]` (wrapping i32), for `G` = 3 or 4.
/// `h` in natural order, `h.len() == hidden <= MAX_HIDDEN`, `out.len() >= hidden`.
/// Returns false, and writes nothing, when AVX2 is missing or the shapes do not
/// match, so the caller can fall back. Runs the AVX-512 kernels where
/// [`has_avx512`], else the AVX2 ones.
pub fn unit_sums<const G: usize>(r: &[u8], hidden: usize, h: &[i16], out: &mut [[i32; G]]) -> bool {
    unit_sums_on(r, hidden, h, out, has_avx512())
}

/// [`unit_sums`] on the AVX2 kernels even where AVX-512 is present (to compare
/// the two).
pub fn unit_sums_avx2<const G: usize>(
    r: &[u8],
    hidden: usize,
    h: &[i16],
    out: &mut [[i32; G]],
) -> bool {
    unit_sums_on(r, hidden, h, out, false)
}

/// `wide` only where [`has_avx512`].
fn unit_sums_on<const G: usize>(
    r: &[u8],
    hidden: usize,
    h: &[i16],
    out: &mut [[i32; G]],
    wide: bool,
) -> bool {
    let fits = (G == 3 || G == 4)
        && hidden <= MAX_HIDDEN
        && h.len() == hidden
        && G.checked_mul(hidden)
            .and_then(|n| n.checked_mul(hidden))
            .is_some_and(|n| n == r.len());
    let Some(out) = out.get_mut(..hidden) else {
        return false;
    };
    if !fits || !has_avx2() {
        return false;
    }
    if hidden == 0 {
        return true;
    }
    // SAFETY: the CPU has AVX2 (checked just above), and AVX-512 BW and VNNI
    // where the wide kernels run.
    unsafe {
        match (G == 4, wide) {
            (true, true) => sums_g4_wide(r, hidden, h, out),
            (true, false) => sums_g4(r, hidden, h, out),
            (false, true) => sums_g3_wide(r, hidden, h, out),
            (false, false) => sums_g3(r, hidden, h, out),
        }
    }
    true
}

/// Whether [`unit_sums`] runs its AVX-512 kernels (BW and VNNI) on this CPU;
/// detected like [`has_avx2`].
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx512bw") && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(
            target_feature = "avx512bw",
            target_feature = "avx512vnni"
        ))
    }
}

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
    // SAFETY: the CPU has AVX2 (checked just above); all slices hold `n` entries.
    unsafe { prescale_avx2(records, wx, sums, x_pre, h_pre) };
    true
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
            _ => rows_each(w, x, out),
        }
    }
    true
}

/// [`rows_dot_i8_i16`] for an int8 `x` (a word model's embedding row): `x` is
/// sign-extended once for all rows. Returns false, and writes nothing, where
/// [`rows_dot_i8_i16`] would, or when `x` is wider than `WIDE_ROWS_MAX`.
pub fn rows_dot_i8_i8(w: &[u8], width: usize, x: &[u8], out: &mut [i32]) -> bool {
    let Some(x) = x.get(..width).filter(|_| width <= WIDE_ROWS_MAX) else {
        return false;
    };
    let mut wide = [0i16; WIDE_ROWS_MAX];
    for (to, &b) in wide.iter_mut().zip(x) {
        *to = i16::from(b as i8);
    }
    rows_dot_i8_i16(w, width, &wide, out)
}

/// Rows of any width (`w.len() == out.len() * x.len()`), one AVX2 dot each.
#[target_feature(enable = "avx2")]
fn rows_each(w: &[u8], x: &[i16], out: &mut [i32]) {
    for (o, row) in out.iter_mut().zip(w.chunks_exact(x.len().max(1))) {
        *o = dot_i16(row, x);
    }
}

/// Units per pass of the LSTM kernel (they share the loads of `h`).
const UNITS_G4: usize = 4;
/// Units per pass of the GRU kernel (three accumulators each).
const UNITS_G3: usize = 2;

/// Four `h` values as the 64 bits of one vector lane group.
#[inline(always)]
fn pack4(q: &[i16; 4]) -> i64 {
    q.iter()
        .rev()
        .fold(0u64, |acc, &v| (acc << 16) | u64::from(v as u16)) as i64
}

/// The last `hidden % 4` columns of a unit's block (one run per gate) in
/// scalar code, for the units of tiny layers whose [`Tail`] window would start
/// before `r`; the run length becomes a constant so that the loops unroll.
#[inline(always)]
fn tail_sums<const G: usize>(block: &[u8], hidden: usize, h: &[i16]) -> [i32; G] {
    let grouped = hidden / 4 * 4;
    let (Some(runs), Some(x)) = (block.get(grouped * G..), h.get(grouped..)) else {
        return [0; G];
    };
    match *x {
        [a] => tail_runs::<G, 1>(runs, [a]),
        [a, b] => tail_runs::<G, 2>(runs, [a, b]),
        [a, b, c] => tail_runs::<G, 3>(runs, [a, b, c]),
        _ => [0; G],
    }
}

#[inline(always)]
fn tail_runs<const G: usize, const T: usize>(runs: &[u8], x: [i16; T]) -> [i32; G] {
    let (runs, _) = runs.as_chunks::<T>();
    core::array::from_fn(|g| {
        runs.get(g).map_or(0, |run| {
            run.iter().zip(x).fold(0i32, |acc, (&w, v)| {
                acc.wrapping_add(i32::from(w as i8) * i32::from(v))
            })
        })
    })
}

/// Writes one unit's vector sums, plus its tail columns in scalar code when
/// the vector tail could not be read.
#[inline(always)]
fn write_unit<const G: usize>(out: &mut [i32; G], lanes: &[i32], scalar_tail: Option<[i32; G]>) {
    let tail = scalar_tail.unwrap_or([0; G]);
    for ((o, &v), t) in out.iter_mut().zip(lanes).zip(tail) {
        *o = v.wrapping_add(t);
    }
}

/// The last `hidden % 4` columns of every unit (`G` runs of `t` bytes at the
/// end of its block) as one more group of four columns: a 16-byte load that
/// ends at the block's end, `vpshufb` into the group layout with zeros for the
/// missing columns, and `h`'s tail zero-padded to four values.
#[derive(Clone, Copy)]
struct Tail {
    shuffle: __m128i,
    h: __m256i,
}

impl Tail {
    #[target_feature(enable = "avx2")]
    fn new<const G: usize>(hidden: usize, h: &[i16]) -> Option<Self> {
        let grouped = hidden / 4 * 4;
        let x = h.get(grouped..).filter(|x| !x.is_empty())?;
        let t = x.len();
        let mut padded = [0i16; 4];
        padded.iter_mut().zip(x).for_each(|(p, &v)| *p = v);
        // Byte 4g + c takes column c of gate g (window byte 16 - G*t + g*t + c);
        // 0x80 zeroes it.
        let mut index = [0x80u8; 16];
        for (p, slot) in index.iter_mut().enumerate().take(4 * G) {
            let (g, c) = (p / 4, p % 4);
            if c < t {
                *slot = (16 - G * t + g * t + c) as u8;
            }
        }
        let index = u128::from_le_bytes(index);
        Some(Tail {
            shuffle: _mm_set_epi64x((index >> 64) as i64, index as i64),
            h: _mm256_set1_epi64x(pack4(&padded)),
        })
    }

    /// Where the 16-byte window of unit `j` starts, when it lies inside `r`
    /// (every unit but the first few of a tiny layer).
    #[inline(always)]
    fn window(j: usize, block: usize) -> Option<usize> {
        ((j + 1) * block).checked_sub(16)
    }

    /// The tail products of unit `j`, laid out as one group of four columns.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn products(&self, r: &[u8], j: usize, block: usize) -> Option<__m256i> {
        let start = Self::window(j, block)?;
        let bytes = r.get(start..start + 16)?;
        // SAFETY: `bytes` holds exactly 16 bytes.
        let w = unsafe { _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) };
        let w = _mm_shuffle_epi8(w, self.shuffle);
        Some(_mm256_madd_epi16(_mm256_cvtepi8_epi16(w), self.h))
    }

    /// The scalar tail of unit `j` when [`Tail::products`] cannot serve it.
    #[inline(always)]
    fn scalar<const G: usize>(
        tail: Option<&Self>,
        r: &[u8],
        j: usize,
        hidden: usize,
        h: &[i16],
    ) -> Option<[i32; G]> {
        let block = G * hidden;
        if tail.is_none() || Self::window(j, block).is_some() {
            return None;
        }
        let unit = r.get(j * block..(j + 1) * block)?;
        Some(tail_sums::<G>(unit, hidden, h))
    }
}

/// `h[4k..4k + 4]` repeated over a 256-bit register, one per column group:
/// the `h` side of [`sums_g4`] and [`sums_g4_wide`].
struct G4Operands {
    broadcast: [__m256i; MAX_HIDDEN / 4],
    len: usize,
}

impl G4Operands {
    #[target_feature(enable = "avx2")]
    #[inline]
    fn new(h: &[i16]) -> Self {
        let (groups, _) = h.as_chunks::<4>();
        let mut broadcast = [_mm256_setzero_si256(); MAX_HIDDEN / 4];
        for (slot, q) in broadcast.iter_mut().zip(groups) {
            *slot = _mm256_set1_epi64x(pack4(q));
        }
        G4Operands {
            broadcast,
            len: groups.len(),
        }
    }

    fn groups(&self) -> &[__m256i] {
        self.broadcast.get(..self.len).unwrap_or(&[])
    }
}

/// The `h` side of [`sums_g3`] and [`sums_g3_wide`]: per quad of column groups,
/// three registers in the gate pattern of its 16-byte runs; per leftover group,
/// `h[4k..4k + 4]` repeated over 128 bits.
struct G3Operands {
    patterned: [[__m256i; 3]; MAX_HIDDEN / 16],
    quads: usize,
    leftover: [__m128i; 3],
    rest: usize,
}

impl G3Operands {
    #[target_feature(enable = "avx2")]
    #[inline]
    fn new(h: &[i16]) -> Self {
        let (groups, _) = h.as_chunks::<4>();
        let (quads, rest) = groups.as_chunks::<4>();
        let mut patterned = [[_mm256_setzero_si256(); 3]; MAX_HIDDEN / 16];
        for (slot, q) in patterned.iter_mut().zip(quads) {
            let [q0, q1, q2, q3] = q.each_ref().map(pack4);
            *slot = [
                _mm256_setr_epi64x(q0, q0, q0, q1),
                _mm256_setr_epi64x(q1, q1, q2, q2),
                _mm256_setr_epi64x(q2, q3, q3, q3),
            ];
        }
        let mut leftover = [_mm_setzero_si128(); 3];
        for (slot, q) in leftover.iter_mut().zip(rest) {
            *slot = _mm_set1_epi64x(pack4(q));
        }
        G3Operands {
            patterned,
            quads: quads.len(),
            leftover,
            rest: rest.len(),
        }
    }

    fn quads(&self) -> &[[__m256i; 3]] {
        self.patterned.get(..self.quads).unwrap_or(&[])
    }

    fn leftover(&self) -> &[__m128i] {
        self.leftover.get(..self.rest).unwrap_or(&[])
    }
}

/// Defines a kernel over all units for `G == 4`: runs of [`UNITS_G4`] units,
/// then single units, with accumulators from `$accumulate` (AVX2 or AVX-512).
macro_rules! sums_g4_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $accumulate:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        fn $name<const G: usize>(r: &[u8], hidden: usize, h: &[i16], out: &mut [[i32; G]]) {
            let operands = G4Operands::new(h);
            let hb = operands.groups();
            let tail = Tail::new::<G>(hidden, h);
            let block = G * hidden;
            let mut lanes = [0i32; 4 * UNITS_G4];
            let mut outs = out.chunks_exact_mut(UNITS_G4);
            let mut first = 0;
            for outs in &mut outs {
                let acc = $accumulate::<UNITS_G4>(r, first, block, hb, tail.as_ref());
                fold_g4(&acc, &mut lanes);
                for (u, (o, l)) in outs.iter_mut().zip(lanes.chunks_exact(4)).enumerate() {
                    let scalar = Tail::scalar::<G>(tail.as_ref(), r, first + u, hidden, h);
                    write_unit(o, l, scalar);
                }
                first += UNITS_G4;
            }
            for o in outs.into_remainder() {
                let acc = $accumulate::<1>(r, first, block, hb, tail.as_ref());
                fold_g4(&acc, &mut lanes);
                let scalar = Tail::scalar::<G>(tail.as_ref(), r, first, hidden, h);
                write_unit(o, &lanes, scalar);
                first += 1;
            }
        }
    };
}

/// [`sums_g4_kernel`] for `G == 3` with [`G3Operands`], runs of [`UNITS_G3`].
macro_rules! sums_g3_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $accumulate:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        fn $name<const G: usize>(r: &[u8], hidden: usize, h: &[i16], out: &mut [[i32; G]]) {
            let operands = G3Operands::new(h);
            let (hc, hl) = (operands.quads(), operands.leftover());
            let tail = Tail::new::<G>(hidden, h);
            let block = G * hidden;
            let mut lanes = [0i32; 8];
            let mut outs = out.chunks_exact_mut(UNITS_G3);
            let mut first = 0;
            for outs in &mut outs {
                let acc = $accumulate::<UNITS_G3>(r, first, block, hc, hl, tail.as_ref());
                for (u, (o, a)) in outs.iter_mut().zip(&acc).enumerate() {
                    fold_g3(a, &mut lanes);
                    let scalar = Tail::scalar::<G>(tail.as_ref(), r, first + u, hidden, h);
                    write_unit(o, &lanes, scalar);
                }
                first += UNITS_G3;
            }
            for o in outs.into_remainder() {
                let [acc] = $accumulate::<1>(r, first, block, hc, hl, tail.as_ref());
                fold_g3(&acc, &mut lanes);
                let scalar = Tail::scalar::<G>(tail.as_ref(), r, first, hidden, h);
                write_unit(o, &lanes, scalar);
                first += 1;
            }
        }
    };
}

sums_g4_kernel!(
    /// LSTM (`G == 4`): one 16-byte run of a unit's block holds four columns of
    /// each gate, so `vpmovsxbw` of it times `h[4k..4k + 4]` repeated four times
    /// gives, after `vpmaddwd`, two i32 lanes per gate.
    sums_g4,
    "avx2",
    accumulate_g4_fresh
);

/// [`accumulate_g4`] from zero.
#[target_feature(enable = "avx2")]
#[inline]
fn accumulate_g4_fresh<const U: usize>(
    r: &[u8],
    first: usize,
    block: usize,
    hb: &[__m256i],
    tail: Option<&Tail>,
) -> [__m256i; U] {
    accumulate_g4(r, first, block, hb, tail, 0, [_mm256_setzero_si256(); U])
}

/// Accumulators of units `first..first + U` of `r` (blocks of `block` bytes),
/// lanes `2g` and `2g + 1` holding gate `g`: `acc` plus column groups `from..`
/// and the tail.
#[target_feature(enable = "avx2")]
#[inline]
fn accumulate_g4<const U: usize>(
    r: &[u8],
    first: usize,
    block: usize,
    hb: &[__m256i],
    tail: Option<&Tail>,
    from: usize,
    mut acc: [__m256i; U],
) -> [__m256i; U] {
    if r.len() < (first + U) * block || hb.len() * 16 > block {
        return acc;
    }
    // SAFETY: first * block <= r.len() (checked above).
    let base = unsafe { r.as_ptr().add(first * block) };
    for (k, &hv) in hb.iter().enumerate().skip(from) {
        for (u, a) in acc.iter_mut().enumerate() {
            // SAFETY: u * block + 16 * k + 16 <= u * block + 16 * hb.len()
            // <= (u + 1) * block, and (first + U) * block <= r.len() (checked above).
            let w = unsafe { _mm_loadu_si128(base.add(u * block + 16 * k).cast::<__m128i>()) };
            *a = _mm256_add_epi32(*a, _mm256_madd_epi16(_mm256_cvtepi8_epi16(w), hv));
        }
    }
    if let Some(tail) = tail {
        for (u, a) in acc.iter_mut().enumerate() {
            if let Some(p) = tail.products(r, first + u, block) {
                *a = _mm256_add_epi32(*a, p);
            }
        }
    }
    acc
}

/// Folds the lane pairs of LSTM accumulators: `out[4u + g]` is unit `u`'s gate `g`.
#[target_feature(enable = "avx2")]
#[inline]
fn fold_g4<const U: usize>(acc: &[__m256i; U], out: &mut [i32; 4 * UNITS_G4]) {
    for (pair, dst) in acc.chunks(2).zip(out.chunks_exact_mut(8)) {
        let (a, b) = match *pair {
            [a, b] => (a, b),
            [a] => (a, a),
            _ => continue,
        };
        // [a0 a1 b0 b1 | a2 a3 b2 b3] -> [a0 a1 a2 a3 | b0 b1 b2 b3]
        let sums = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(a, b));
        // SAFETY: `dst` holds 8 i32, one 32-byte store.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast::<__m256i>(), sums) };
    }
}

sums_g3_kernel!(
    /// GRU (`G == 3`): four column groups are 48 bytes of a unit's block, read as
    /// three 16-byte runs whose 4-byte pieces belong to gates `[0, 1, 2, 0]`,
    /// `[1, 2, 0, 1]` and `[2, 0, 1, 2]`; each run has its own accumulator and `h`
    /// vector, and the gates are sorted out once per unit. Leftover groups (fewer
    /// than four) use exact 8- and 4-byte loads.
    sums_g3,
    "avx2",
    accumulate_g3_fresh
);

/// [`accumulate_g3`] from zero.
#[target_feature(enable = "avx2")]
#[inline]
fn accumulate_g3_fresh<const U: usize>(
    r: &[u8],
    first: usize,
    block: usize,
    hc: &[[__m256i; 3]],
    hl: &[__m128i],
    tail: Option<&Tail>,
) -> [[__m256i; 3]; U] {
    let zeros = [[_mm256_setzero_si256(); 3]; U];
    accumulate_g3(r, first, block, hc, hl, tail, (0, zeros))
}

/// GRU accumulators of units `first..first + U` of `r` (blocks of `block`
/// bytes), one per 16-byte run position of a 48-byte quad of groups; leftover
/// groups and the tail are added where their lanes' gates match. Starts from
/// `acc` at quad `from`.
#[target_feature(enable = "avx2")]
#[inline]
fn accumulate_g3<const U: usize>(
    r: &[u8],
    first: usize,
    block: usize,
    hc: &[[__m256i; 3]],
    hl: &[__m128i],
    tail: Option<&Tail>,
    (from, mut acc): (usize, [[__m256i; 3]; U]),
) -> [[__m256i; 3]; U] {
    let quad_bytes = hc.len() * 48;
    if r.len() < (first + U) * block || quad_bytes + hl.len() * 12 > block {
        return acc;
    }
    // SAFETY: first * block <= r.len() (checked above).
    let base = unsafe { r.as_ptr().add(first * block) };
    for (c, hv) in hc.iter().enumerate().skip(from) {
        for (u, a) in acc.iter_mut().enumerate() {
            let at = u * block + 48 * c;
            for (i, (a, &hv)) in a.iter_mut().zip(hv).enumerate() {
                // SAFETY: at + 16 * i + 16 <= u * block + 48 * hc.len()
                // <= (u + 1) * block, and (first + U) * block <= r.len()
                // (checked above).
                let w = unsafe { _mm_loadu_si128(base.add(at + 16 * i).cast::<__m128i>()) };
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(_mm256_cvtepi8_epi16(w), hv));
            }
        }
    }
    for (u, a) in acc.iter_mut().enumerate() {
        let j = first + u;
        let unit = r.get(j * block..(j + 1) * block).unwrap_or(&[]);
        let groups = unit.get(quad_bytes..).unwrap_or(&[]).chunks_exact(12);
        // Lanes [g0 g0 g1 g1] and [g2 g2 0 0].
        let (mut lo, mut hi) = (_mm_setzero_si128(), _mm_setzero_si128());
        for (bytes, &hv) in groups.zip(hl) {
            let (w01, w2) = bytes.split_at(8);
            let w01 = i64::from_le_bytes(w01.try_into().unwrap_or_default());
            let w2 = i32::from_le_bytes(w2.try_into().unwrap_or_default());
            let w01 = _mm_cvtepi8_epi16(_mm_cvtsi64_si128(w01));
            let w2 = _mm_cvtepi8_epi16(_mm_cvtsi32_si128(w2));
            lo = _mm_add_epi32(lo, _mm_madd_epi16(w01, hv));
            hi = _mm_add_epi32(hi, _mm_madd_epi16(w2, hv));
        }
        // Run 0's lane pairs are gates [0 1 2 0] (the tail group's are
        // [0 1 2 -]), run 2's start with gate 2.
        let [a0, _, a2] = a;
        *a0 = _mm256_add_epi32(*a0, _mm256_zextsi128_si256(lo));
        *a2 = _mm256_add_epi32(*a2, _mm256_zextsi128_si256(hi));
        if let Some(p) = tail.and_then(|t| t.products(r, j, block)) {
            *a0 = _mm256_add_epi32(*a0, p);
        }
    }
    acc
}

/// Sums one unit's GRU accumulators per gate into `out[0..3]`.
#[target_feature(enable = "avx2")]
#[inline]
fn fold_g3(acc: &[__m256i; 3], out: &mut [i32; 8]) {
    let [a, b, c] = *acc;
    // Pair sums: h01 = [a0 a1 b0 b1 | a2 a3 b2 b3] with gates [0 1 1 2 | 2 0 0 1],
    // h22 = [c0 c1 c0 c1 | c2 c3 c2 c3] with gates [2 0 2 0 | 1 2 1 2].
    let h01 = _mm256_hadd_epi32(a, b);
    let h22 = _mm256_hadd_epi32(c, c);
    // [c0 c1 b0 b1 | c2 c3 b2 b3]
    let mixed = _mm256_blend_epi32::<0b0011_0011>(h01, h22);
    let x = pick3(h01, 0, 1, 3); // a0 a1 b1
    let y = pick3(h01, 5, 2, 4); // a3 b0 a2
    let z = pick3(mixed, 6, 7, 0); // b2 b3 c0
    let w = pick3(mixed, 1, 4, 5); // c1 c2 c3
    let sums = _mm256_add_epi32(_mm256_add_epi32(x, y), _mm256_add_epi32(z, w));
    // SAFETY: `out` holds 8 i32, one 32-byte store.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), sums) };
}

/// Lanes `i0`, `i1`, `i2` of `v` into lanes 0, 1, 2.
#[target_feature(enable = "avx2")]
#[inline]
fn pick3(v: __m256i, i0: i32, i1: i32, i2: i32) -> __m256i {
    _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(i0, i1, i2, 0, 0, 0, 0, 0))
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

sums_g4_kernel!(
    /// [`sums_g4`] with AVX-512: two column groups (32 bytes) per `vpmovsxbw`,
    /// multiplied and added by one `vpdpwssd`.
    sums_g4_wide,
    "avx2,avx512bw,avx512vnni",
    accumulate_g4_wide
);

/// [`accumulate_g4`] over pairs of column groups in 512-bit registers; the
/// last odd group and the tail go through [`accumulate_g4`].
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
#[inline]
fn accumulate_g4_wide<const U: usize>(
    r: &[u8],
    first: usize,
    block: usize,
    hb: &[__m256i],
    tail: Option<&Tail>,
) -> [__m256i; U] {
    let mut acc = [_mm512_setzero_si512(); U];
    let (pairs, _) = hb.as_chunks::<2>();
    if r.len() >= (first + U) * block && hb.len() * 16 <= block {
        // SAFETY: first * block <= r.len() (checked above).
        let base = unsafe { r.as_ptr().add(first * block) };
        for (p, &[h0, h1]) in pairs.iter().enumerate() {
            let hv = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(h0), h1);
            for (u, a) in acc.iter_mut().enumerate() {
                // SAFETY: u * block + 32 * p + 32 <= u * block + 16 * hb.len()
                // <= (u + 1) * block, and (first + U) * block <= r.len()
                // (checked above).
                let w =
                    unsafe { _mm256_loadu_si256(base.add(u * block + 32 * p).cast::<__m256i>()) };
                *a = _mm512_dpwssd_epi32(*a, _mm512_cvtepi8_epi16(w), hv);
            }
        }
    }
    let halves = acc.map(|v| fold_halves(v));
    accumulate_g4::<U>(r, first, block, hb, tail, 2 * pairs.len(), halves)
}

sums_g3_kernel!(
    /// [`sums_g3`] with AVX-512: two 48-byte quads of column groups as three
    /// 32-byte runs per `vpmovsxbw`, multiplied and added by `vpdpwssd`.
    sums_g3_wide,
    "avx2,avx512bw,avx512vnni",
    accumulate_g3_wide
);

/// [`accumulate_g3`] over pairs of quads in 512-bit registers: the runs of
/// quads `2p` and `2p + 1` are `[0 1 | 2 0' | 1' 2']`, so run 0 sums the low
/// half of the first accumulator and the high half of the second, and so on.
/// The last odd quad, leftover groups and the tail go through
/// [`accumulate_g3`].
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
#[inline]
fn accumulate_g3_wide<const U: usize>(
    r: &[u8],
    first: usize,
    block: usize,
    hc: &[[__m256i; 3]],
    hl: &[__m128i],
    tail: Option<&Tail>,
) -> [[__m256i; 3]; U] {
    let mut acc = [[_mm512_setzero_si512(); 3]; U];
    let (pairs, _) = hc.as_chunks::<2>();
    if r.len() >= (first + U) * block && hc.len() * 48 + hl.len() * 12 <= block {
        // SAFETY: first * block <= r.len() (checked above).
        let base = unsafe { r.as_ptr().add(first * block) };
        for (p, &[[a0, a1, a2], [b0, b1, b2]]) in pairs.iter().enumerate() {
            let join = |lo, hi| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
            let hv = [join(a0, a1), join(a2, b0), join(b1, b2)];
            for (u, a) in acc.iter_mut().enumerate() {
                let at = u * block + 96 * p;
                for (i, (a, &hv)) in a.iter_mut().zip(&hv).enumerate() {
                    // SAFETY: at + 32 * i + 32 <= u * block + 48 * hc.len()
                    // <= (u + 1) * block, and (first + U) * block <= r.len()
                    // (checked above).
                    let w = unsafe { _mm256_loadu_si256(base.add(at + 32 * i).cast::<__m256i>()) };
                    *a = _mm512_dpwssd_epi32(*a, _mm512_cvtepi8_epi16(w), hv);
                }
            }
        }
    }
    let runs = acc.map(|[x, y, z]| {
        let lo = |v| _mm512_castsi512_si256(v);
        let hi = |v| _mm512_extracti64x4_epi64::<1>(v);
        [
            _mm256_add_epi32(lo(x), hi(y)),
            _mm256_add_epi32(hi(x), lo(z)),
            _mm256_add_epi32(lo(y), hi(z)),
        ]
    });
    accumulate_g3::<U>(r, first, block, hc, hl, tail, (2 * pairs.len(), runs))
}

/// The sum of the two 256-bit halves.
#[target_feature(enable = "avx2,avx512bw")]
#[inline]
fn fold_halves(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

/// Widest `x` that [`rows_wide`] takes (it copies `x`, zero-padded, to the stack).
const WIDE_ROWS_MAX: usize = 1024;

/// Rows of any width up to [`WIDE_ROWS_MAX`] (`w.len() == out.len() *
/// x.len()`) with AVX-512: 32 columns per `vpmovsxbw` and `vpdpwssd`, four
/// rows per pass so that four sums are in flight. The last `width % 32`
/// weights of a row come from a masked load (masked-out bytes are not read)
/// against `x` zero-padded to whole chunks.
#[target_feature(enable = "avx2,avx512bw,avx512vnni")]
fn rows_wide(w: &[u8], x: &[i16], out: &mut [i32]) {
    let width = x.len();
    let mut padded = [0i16; WIDE_ROWS_MAX];
    padded.iter_mut().zip(x).for_each(|(p, &v)| *p = v);
    let (full, rest) = (width / 32, width % 32);
    let tail_mask: u64 = (1u64 << rest) - 1;
    // One row's sum over `x`; `row` holds `width` bytes.
    let row_sum = |acc: __m512i, row: &[u8]| -> __m512i {
        let mut acc = acc;
        if row.len() < width || width > WIDE_ROWS_MAX {
            return acc;
        }
        for c in 0..full {
            // SAFETY: columns 32c..32c + 32 lie within the row (c < width / 32)
            // and within `padded` (width <= WIDE_ROWS_MAX).
            let (wv, xv) = unsafe {
                (
                    _mm256_loadu_si256(row.as_ptr().add(32 * c).cast::<__m256i>()),
                    _mm512_loadu_epi16(padded.as_ptr().add(32 * c)),
                )
            };
            acc = _mm512_dpwssd_epi32(acc, _mm512_cvtepi8_epi16(wv), xv);
        }
        if rest > 0 {
            // SAFETY: the mask reads the row's last `rest` bytes only; `padded`
            // holds the whole chunk (32 * full + 32 <= WIDE_ROWS_MAX, as
            // `width` < 32 * full + 32 and WIDE_ROWS_MAX is a multiple of 32).
            let (wv, xv) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(tail_mask, row.as_ptr().add(32 * full).cast::<i8>()),
                    _mm512_loadu_epi16(padded.as_ptr().add(32 * full)),
                )
            };
            let wv = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(wv));
            acc = _mm512_dpwssd_epi32(acc, wv, xv);
        }
        acc
    };
    let mut outs = out.chunks_exact_mut(DENSE_ROWS);
    let mut rows = w.chunks_exact(DENSE_ROWS * width);
    for (o, block) in (&mut outs).zip(&mut rows) {
        let mut acc = [_mm512_setzero_si512(); DENSE_ROWS];
        for (a, row) in acc.iter_mut().zip(block.chunks_exact(width)) {
            *a = row_sum(*a, row);
        }
        for (o, a) in o.iter_mut().zip(acc) {
            *o = _mm512_reduce_add_epi32(a);
        }
    }
    for (o, row) in outs
        .into_remainder()
        .iter_mut()
        .zip(rows.remainder().chunks_exact(width))
    {
        *o = _mm512_reduce_add_epi32(row_sum(_mm512_setzero_si512(), row));
    }
}

/// Rows per pass of [`rows_dot_i8_i16`] (they share the vectors of `x`).
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
fn saturating_add_x8(a: __m256i, b: __m256i) -> __m256i {
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

#[cfg(test)]
mod tests {
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

    use super::*;
    use crate::format::unit_major_index;
    use std::vec;
    use std::vec::Vec;

    /// Deterministic bytes and activations with the extremes mixed in.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 16
        }
        fn byte(&mut self) -> u8 {
            match self.next() % 8 {
                0 => 0x80,
                1 => 0x7f,
                _ => self.next() as u8,
            }
        }
        fn act(&mut self) -> i16 {
            match self.next() % 8 {
                0 => i16::MIN,
                1 => i16::MAX,
                _ => self.next() as i16,
            }
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.byte()).collect()
        }
        fn acts(&mut self, n: usize) -> Vec<i16> {
            (0..n).map(|_| self.act()).collect()
        }
    }

    fn reference<const G: usize>(r: &[u8], hidden: usize, h: &[i16]) -> Vec<[i32; G]> {
        (0..hidden)
            .map(|j| {
                core::array::from_fn(|g| {
                    (0..hidden).fold(0i32, |acc, k| {
                        let w = r[unit_major_index(G, hidden, g * hidden + j, k)] as i8;
                        acc.wrapping_add(i32::from(w) * i32::from(h[k]))
                    })
                })
            })
            .collect()
    }

    type UnitSums<const G: usize> = fn(&[u8], usize, &[i16], &mut [[i32; G]]) -> bool;

    fn check_units<const G: usize>(gen: &mut Gen, hidden: usize) {
        let cases = [
            (gen.bytes(G * hidden * hidden), gen.acts(hidden)),
            // All-extreme products: the largest magnitudes the sums see.
            (vec![0x80; G * hidden * hidden], vec![i16::MIN; hidden]),
            (vec![0x80; G * hidden * hidden], vec![i16::MAX; hidden]),
        ];
        // Both paths: AVX-512 (where the CPU has it) and AVX2.
        let paths: [UnitSums<G>; 2] = [unit_sums::<G>, unit_sums_avx2::<G>];
        for ((r, h), sums) in cases.iter().flat_map(|c| paths.map(|p| (c, p))) {
            // One spare entry checks that nothing past `hidden` is written.
            let mut out = vec![[7i32; G]; hidden + 1];
            assert!(sums(r, hidden, h, &mut out), "G={G} hidden={hidden}");
            assert_eq!(
                out[..hidden],
                reference::<G>(r, hidden, h)[..],
                "G={G} hidden={hidden}"
            );
            assert_eq!(out[hidden], [7; G]);
        }
    }

    #[test]
    fn unit_sums_equal_the_scalar_definition() {
        assert!(has_avx2(), "these tests need an AVX2 host");
        let mut gen = Gen(42);
        for hidden in [1, 3, 4, 5, 16, 50, 127, 128, 256] {
            check_units::<3>(&mut gen, hidden);
            check_units::<4>(&mut gen, hidden);
        }
        // Every leftover-group and tail count of the GRU kernel, odd unit counts.
        for hidden in 6..=40 {
            check_units::<3>(&mut gen, hidden);
            check_units::<4>(&mut gen, hidden);
        }
    }

    #[test]
    fn unit_sums_refuse_wrong_shapes() {
        let (r, h) = (vec![1u8; 4 * 8 * 8], vec![1i16; 8]);
        let mut out = vec![[5i32; 4]; 8];
        assert!(!unit_sums::<4>(&r[1..], 8, &h, &mut out));
        assert!(!unit_sums::<4>(&r, 8, &h[1..], &mut out));
        assert!(!unit_sums::<4>(&r, 8, &h, &mut out[1..]));
        assert!(!unit_sums::<4>(&r[..4 * 7 * 7], 7, &h[..7], &mut out[..6]));
        let mut out2 = vec![[5i32; 2]; 8];
        assert!(!unit_sums::<2>(&r[..2 * 64], 8, &h, &mut out2));
        let big = MAX_HIDDEN + 4;
        let (rb, hb) = (vec![0u8; 4 * big * big], vec![0i16; big]);
        let mut outb = vec![[5i32; 4]; big];
        assert!(!unit_sums::<4>(&rb, big, &hb, &mut outb));
        assert!(out.iter().chain(&outb).all(|o| *o == [5; 4]));
        assert!(out2.iter().all(|o| *o == [5; 2]));
        assert!(unit_sums::<4>(&[], 0, &[], &mut []));
    }

    #[test]
    fn dot_products_equal_the_scalar_definition() {
        let mut gen = Gen(7);
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
        let mut gen = Gen(11);
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
        let records: Vec<[u8; 16]> = records.iter().cycle().take(9).copied().collect();
        let wx = [i32::MIN, i32::MIN, i32::MIN, -1].repeat(3);
        let sums = [i32::MIN, i32::MAX, i32::MIN, i32::MIN].repeat(3);
        let (mut x, mut h) = (vec![0; 9], vec![0; 9]);
        assert!(prescale(&records, &wx, &sums, &mut x, &mut h));
        assert_eq!(x[..4], [i32::MAX, i32::MIN, 0, 0]);
        assert_eq!(h[..4], [i32::MAX, i32::MIN, -(1 << 30) - 4, 7]);
        assert_eq!((x[8], h[8]), (x[0], h[0]));
        let (want_x, want_h) = prescale_reference(&records, &wx[..9], &sums[..9]);
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

    #[test]
    fn dense_rows_equal_the_scalar_definition() {
        let mut gen = Gen(23);
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
        let mut gen = Gen(31);
        for width in [1, 17, 31, 32, 33, 100, 300, 1000, 1024] {
            for rows in [1, 4, 7, 200] {
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
    fn dense_rows_refuse_short_slices() {
        let (w, x) = (vec![1u8; 4 * 128], vec![1i16; 128]);
        let mut out = vec![9i32; 4];
        assert!(!rows_dot_i8_i16(&w[1..], 128, &x, &mut out));
        assert!(!rows_dot_i8_i16(&w, 128, &x[1..], &mut out));
        assert!(!rows_dot_i8_i16(&w, usize::MAX, &x, &mut out));
        assert!(out.iter().all(|&v| v == 9));
        assert!(rows_dot_i8_i16(&w, 128, &x, &mut out));
        assert_eq!(out, [128; 4]);
    }

    #[test]
    fn wrapping_sums_wrap_like_the_scalar_code() {
        // 600 products of 128 * 32768 exceed i32::MAX: the sum must wrap.
        let n = 600usize;
        let (w, x) = (vec![0x80u8; n], vec![i16::MIN; n]);
        let want = (0..n).fold(0i32, |a, _| a.wrapping_add(128 * 32768));
        assert!(want < 0);
        assert_eq!(dot_i8_i16(&w, &x), Some(want));
    }
}

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

/// `i32` saturating addition, lane by lane.
#[target_feature(enable = "avx2")]
#[inline]
fn add_saturating(a: __m256i, b: __m256i) -> __m256i {
    let sum = _mm256_add_epi32(a, b);
    // Overflow when both inputs differ in sign from the sum.
    let overflow = _mm256_and_si256(_mm256_xor_si256(a, sum), _mm256_xor_si256(b, sum));
    let saturated = _mm256_xor_si256(_mm256_srai_epi32(a, 31), _mm256_set1_epi32(i32::MAX));
    _mm256_blendv_epi8(sum, saturated, _mm256_srai_epi32(overflow, 31))
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
    let table = super::tables::SIGMOID_Q15.as_ptr().cast::<i32>();
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
        let pre = add_saturating(xv, hv);
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
