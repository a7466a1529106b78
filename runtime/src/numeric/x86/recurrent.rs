//! Recurrent sums `R·h` of all units at once, for the LSTM (four gates) and
//! the GRU (three), over the unit-major weight layout: AVX2 kernels and their
//! AVX-512 (BW, VNNI) variants, which share one driver per gate count.

use core::arch::x86_64::{
    __m128i, __m256i, __m512i, _mm256_add_epi32, _mm256_blend_epi32, _mm256_cvtepi8_epi16,
    _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_permute4x64_epi64,
    _mm256_permutevar8x32_epi32, _mm256_set1_epi64x, _mm256_setr_epi32, _mm256_setr_epi64x,
    _mm256_setzero_si256, _mm256_storeu_si256, _mm256_zextsi128_si256, _mm512_castsi256_si512,
    _mm512_castsi512_si256, _mm512_cvtepi8_epi16, _mm512_dpwssd_epi32, _mm512_extracti64x4_epi64,
    _mm512_inserti64x4, _mm512_setzero_si512, _mm_add_epi32, _mm_cvtepi8_epi16, _mm_cvtsi32_si128,
    _mm_cvtsi64_si128, _mm_loadu_si128, _mm_madd_epi16, _mm_set1_epi64x, _mm_set_epi64x,
    _mm_setzero_si128, _mm_shuffle_epi8,
};

use super::{has_avx2, has_avx512};
use crate::format::MAX_HIDDEN;

/// Recurrent sums of all units of a unit-major `R` (`r.len() == G * hidden *
/// hidden`, layout of `format::unit_major_index`):
/// `out[j][g] = Σ_k R[g * hidden + j][k] * h[k]` (wrapping i32), for `G` = 3 or 4.
/// `h` in natural order, `h.len() == hidden <= MAX_HIDDEN`, `out.len() >= hidden`.
/// Returns false, and writes nothing, when AVX2 is missing or the shapes do not
/// match, so the caller can fall back. Runs the AVX-512 kernels where
/// [`has_avx512`] and they are the faster at this size (`wide_pays`), else
/// the AVX2 ones.
pub fn unit_sums<const G: usize>(r: &[u8], hidden: usize, h: &[i16], out: &mut [[i32; G]]) -> bool {
    unit_sums_on(r, hidden, h, out, has_avx512() && wide_pays::<G>(hidden))
}

/// Whether the AVX-512 kernel beats the AVX2 one at this size. The LSTM's
/// does above 32 units (its time against the AVX2 kernel's, measured on
/// AVX-512 VNNI from 8 to 256 units: 0.75 to 0.99; 1.10 to 1.34 at 8 to 32,
/// where its pairs of column groups are too few to pay for their set-up). The
/// GRU's runs wherever it can (see [`accumulate_g3_wide`]).
fn wide_pays<const G: usize>(hidden: usize) -> bool {
    G != 4 || hidden > 32
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
            (true, true) if hidden <= SMALL_HIDDEN => {
                sums_g4_wide::<G, SMALL_SLOTS>(r, hidden, h, out)
            }
            (true, true) => sums_g4_wide::<G, ALL_SLOTS>(r, hidden, h, out),
            (true, false) if hidden <= SMALL_HIDDEN => sums_g4::<G, SMALL_SLOTS>(r, hidden, h, out),
            (true, false) => sums_g4::<G, ALL_SLOTS>(r, hidden, h, out),
            // Whole pairs of quads only (see `accumulate_g3_wide`).
            (false, true) if hidden.is_multiple_of(32) => sums_g3_wide(r, hidden, h, out),
            (false, _) => sums_g3(r, hidden, h, out),
        }
    }
    true
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
/// the `h` side of [`sums_g4`] and [`sums_g4_wide`], in `SLOTS` registers.
struct G4Operands<const SLOTS: usize> {
    broadcast: [__m256i; SLOTS],
    len: usize,
}

/// Column groups of the largest layer.
const ALL_SLOTS: usize = MAX_HIDDEN / 4;
/// Layers up to this size take operands of [`SMALL_SLOTS`] registers: zeroing
/// and moving all [`ALL_SLOTS`] every step cost them more than their products.
const SMALL_HIDDEN: usize = 64;
const SMALL_SLOTS: usize = SMALL_HIDDEN / 4;

impl<const SLOTS: usize> G4Operands<SLOTS> {
    #[target_feature(enable = "avx2")]
    #[inline]
    fn new(h: &[i16]) -> Self {
        let (groups, _) = h.as_chunks::<4>();
        debug_assert!(groups.len() <= SLOTS, "the caller picks SLOTS for hidden");
        let mut broadcast = [_mm256_setzero_si256(); SLOTS];
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
        fn $name<const G: usize, const SLOTS: usize>(
            r: &[u8],
            hidden: usize,
            h: &[i16],
            out: &mut [[i32; G]],
        ) {
            let operands = G4Operands::<SLOTS>::new(h);
            let hb = operands.groups();
            let tail = Tail::new::<G>(hidden, h);
            let block = G * hidden;
            let mut lanes = [0i32; 4 * UNITS_G4];
            let mut outs = out.chunks_exact_mut(UNITS_G4);
            let mut first = 0;
            for outs in &mut outs {
                let acc = $accumulate::<UNITS_G4>(r, first, block, hb, tail.as_ref());
                // Every unit's tail in the vector sums (all but tiny layers):
                // the folded sums go straight to `out`.
                let direct = tail.is_none() || Tail::window(first, block).is_some();
                if let (true, Ok(dst)) = (direct, outs.as_flattened_mut().try_into()) {
                    fold_g4(&acc, dst);
                    first += UNITS_G4;
                    continue;
                }
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
    // Apart, so that the quads' loop stays small enough to inline: returned
    // through memory, the accumulators cost more than their products.
    if !hl.is_empty() || tail.is_some() {
        add_g3_rest(r, first, block, quad_bytes, hl, tail, &mut acc);
    }
    acc
}

/// Adds the leftover groups (from byte `quad_bytes` of each unit's block) and
/// the tail to the accumulators of [`accumulate_g3`].
#[target_feature(enable = "avx2")]
fn add_g3_rest<const U: usize>(
    r: &[u8],
    first: usize,
    block: usize,
    quad_bytes: usize,
    hl: &[__m128i],
    tail: Option<&Tail>,
    acc: &mut [[__m256i; 3]; U],
) {
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
/// Whole pairs only: the dispatch runs it where the hidden size is a multiple
/// of 32 (no odd quad, leftover group or tail), and the AVX2 kernel elsewhere.
/// Handing the rest to [`accumulate_g3`] for each run of units cost about what
/// the pairs saved (0.95 to 1.29 times the AVX2 kernel's time), and as its
/// second caller kept it from being inlined into the AVX2 kernel, which was
/// then 25 to 30% slower (hidden 32 to 200).
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
    debug_assert!(hc.len().is_multiple_of(2) && hl.is_empty() && tail.is_none());
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
    acc.map(|[x, y, z]| {
        let lo = |v| _mm512_castsi512_si256(v);
        let hi = |v| _mm512_extracti64x4_epi64::<1>(v);
        [
            _mm256_add_epi32(lo(x), hi(y)),
            _mm256_add_epi32(hi(x), lo(z)),
            _mm256_add_epi32(lo(y), hi(z)),
        ]
    })
}

/// The sum of the two 256-bit halves.
#[target_feature(enable = "avx2,avx512bw")]
#[inline]
fn fold_halves(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::unit_major_index;
    use crate::numeric::x86::test_gen::Gen;
    use std::vec;
    use std::vec::Vec;

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
        // The dispatch, AVX2, and AVX-512 (where the CPU has it) wherever it
        // can run, whether the dispatch would pick it or not.
        let wide: UnitSums<G> = |r, hidden, h, out| unit_sums_on(r, hidden, h, out, has_avx512());
        let paths: [UnitSums<G>; 3] = [unit_sums::<G>, unit_sums_avx2::<G>, wide];
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
        if !has_avx2() {
            return; // the refusal: `without_avx2_every_kernel_refuses`
        }
        let mut gen = Gen::new(42);
        for hidden in [1, 3, 4, 5, 16, 50, 64, 65, 127, 128, 200, 250, 256] {
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
        assert_eq!(unit_sums::<4>(&[], 0, &[], &mut []), has_avx2());
    }
}
