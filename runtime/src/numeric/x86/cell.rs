//! The cell updates of sixteen units per pass with AVX-512, and of eight with
//! AVX2: the LSTM's from the gate outputs that [`super::lstm_activations`]
//! formed for the whole step, the GRU's from the gate pre-activations.

use core::arch::x86_64::{
    __m256i, __m512i, _mm256_add_epi32, _mm256_and_si256, _mm256_loadu_si256, _mm256_mullo_epi32,
    _mm256_set1_epi32, _mm256_setzero_si256, _mm256_slli_epi32, _mm256_srai_epi32,
    _mm256_storeu_si256, _mm256_sub_epi32, _mm512_add_epi32, _mm512_add_epi64,
    _mm512_castsi512_si256, _mm512_cvtepi16_epi32, _mm512_cvtepi32_epi16,
    _mm512_extracti64x4_epi64, _mm512_loadu_si512, _mm512_mask_blend_epi32, _mm512_mul_epi32,
    _mm512_mullo_epi32, _mm512_permutex2var_epi16, _mm512_permutex2var_epi32, _mm512_set1_epi32,
    _mm512_set1_epi64, _mm512_setzero_si512, _mm512_slli_epi64, _mm512_srai_epi32,
    _mm512_srai_epi64, _mm512_srli_epi64, _mm512_sub_epi32,
};

use super::activations::{
    clamp_x16, clamp_x8, saturating_add_x16, sigmoid_x8, tanh_x16, tanh_x8, SigmoidTable,
};
use super::prescale::saturating_add_x8;
use super::{has_avx2, has_avx512};

/// Units per pass of the AVX-512 kernels.
const UNITS: usize = 16;
/// Units per pass of the AVX2 kernels.
const UNITS_AVX2: usize = 8;

/// The LSTM cell of the first units, all that whole passes of the kernels
/// fit in `c` and `h` (16 units with AVX-512, then 8 with AVX2): with
/// `[i, o, f, g]` at `gates[4 * unit..]` (unit-major, as
/// [`super::lstm_activations`] writes them),
/// `c = sat16(round(f * c, 15) + round(i * g, 19))` and
/// `h = sat16(round(o * tanh_q12(c << 1), 15))`, exactly as
/// `Int::lstm_cell` and `Int::lstm_hidden` compute them. Returns the number
/// of units done; 0 (writing nothing) without AVX2.
pub fn lstm_cells(gates: &[i16], c: &mut [i16], h: &mut [i16]) -> usize {
    lstm_cells_on(gates, c, h, has_avx512())
}

/// [`lstm_cells`] on the AVX2 kernel even where AVX-512 is present (to
/// compare the two).
pub fn lstm_cells_avx2(gates: &[i16], c: &mut [i16], h: &mut [i16]) -> usize {
    lstm_cells_on(gates, c, h, false)
}

/// `wide` only where [`has_avx512`]: whole passes of 16 units, then one of
/// eight with AVX2 where eight or more remain.
fn lstm_cells_on(gates: &[i16], c: &mut [i16], h: &mut [i16], wide: bool) -> usize {
    let units = c.len().min(h.len()).min(gates.len() / 4);
    if !has_avx2() {
        return 0;
    }
    let (wide_units, done) = passes(units, wide);
    let (Some((gates_wide, gates_narrow)), Some((c_wide, c_narrow)), Some((h_wide, h_narrow))) = (
        gates
            .get(..4 * done)
            .and_then(|g| g.split_at_checked(4 * wide_units)),
        c.get_mut(..done)
            .and_then(|c| c.split_at_mut_checked(wide_units)),
        h.get_mut(..done)
            .and_then(|h| h.split_at_mut_checked(wide_units)),
    ) else {
        return 0;
    };
    // SAFETY: AVX2 is present (checked just above), and AVX-512 BW where
    // `wide`, the only case with wide units.
    unsafe {
        if !c_wide.is_empty() {
            lstm_cells_wide(gates_wide, c_wide, h_wide);
        }
        if !c_narrow.is_empty() {
            lstm_cells_narrow(gates_narrow, c_narrow, h_narrow);
        }
    }
    done
}

/// Units in whole AVX-512 passes (none unless `wide`), and those plus the units
/// in whole AVX2 passes after them.
fn passes(units: usize, wide: bool) -> (usize, usize) {
    let wide_units = if wide { units / UNITS * UNITS } else { 0 };
    (
        wide_units,
        wide_units + (units - wide_units) / UNITS_AVX2 * UNITS_AVX2,
    )
}

/// `(v + 2^(shift - 1)) >> shift` on eight lanes (`round_shift32`).
#[target_feature(enable = "avx2")]
#[inline]
fn round_shift_x8<const SHIFT: i32>(v: __m256i) -> __m256i {
    _mm256_srai_epi32::<SHIFT>(_mm256_add_epi32(v, _mm256_set1_epi32(1 << (SHIFT - 1))))
}

/// [`lstm_cells_wide`] on eight units per pass with AVX2.
#[target_feature(enable = "avx2")]
fn lstm_cells_narrow(gates: &[i16], c: &mut [i16], h: &mut [i16]) {
    use core::arch::x86_64::{
        _mm256_castsi256_si128, _mm256_cvtepi16_epi32, _mm256_mullo_epi32, _mm256_packs_epi32,
        _mm256_permute2x128_si256, _mm256_permute4x64_epi64, _mm256_permutevar8x32_epi32,
        _mm256_setr_epi32, _mm256_setzero_si256, _mm256_unpackhi_epi64, _mm256_unpacklo_epi64,
        _mm_loadu_si128, _mm_storeu_si128,
    };
    // Two units' [i o f g], widened, as [i_a i_b o_a o_b | f_a f_b g_a g_b].
    let pairs = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let (gate_blocks, _) = gates.as_chunks::<{ 4 * UNITS_AVX2 }>();
    let (c_blocks, _) = c.as_chunks_mut::<UNITS_AVX2>();
    let (h_blocks, _) = h.as_chunks_mut::<UNITS_AVX2>();
    for ((g, cb), hb) in gate_blocks.iter().zip(c_blocks).zip(h_blocks) {
        let (two_units, _) = g.as_chunks::<8>();
        let mut w = [_mm256_setzero_si256(); 4];
        for (w, q) in w.iter_mut().zip(two_units) {
            // SAFETY: 16 bytes from an 8-value chunk.
            let v = unsafe { _mm_loadu_si128(q.as_ptr().cast()) };
            *w = _mm256_permutevar8x32_epi32(_mm256_cvtepi16_epi32(v), pairs);
        }
        let [w0, w1, w2, w3] = w;
        // [i0..i3 | f0..f3], [o0..o3 | g0..g3], and likewise units 4..7.
        let (if03, og03) = (_mm256_unpacklo_epi64(w0, w1), _mm256_unpackhi_epi64(w0, w1));
        let (if47, og47) = (_mm256_unpacklo_epi64(w2, w3), _mm256_unpackhi_epi64(w2, w3));
        let i = _mm256_permute2x128_si256::<0x20>(if03, if47);
        let f = _mm256_permute2x128_si256::<0x31>(if03, if47);
        let o = _mm256_permute2x128_si256::<0x20>(og03, og47);
        let g = _mm256_permute2x128_si256::<0x31>(og03, og47);
        // SAFETY: `cb` holds 8 i16 (16 bytes).
        let c_prev = _mm256_cvtepi16_epi32(unsafe { _mm_loadu_si128(cb.as_ptr().cast()) });
        // Q0.15 * Q4.11 -> Q4.11, and Q0.15 * Q0.15 -> Q4.11.
        let keep = round_shift_x8::<15>(_mm256_mullo_epi32(f, c_prev));
        let write = round_shift_x8::<19>(_mm256_mullo_epi32(i, g));
        let c_next = clamp_x8(
            _mm256_add_epi32(keep, write),
            i16::MIN.into(),
            i16::MAX.into(),
        );
        // Q4.11 -> Q3.12 is one bit left.
        let t = tanh_x8(_mm256_add_epi32(c_next, c_next));
        let h_next = clamp_x8(
            round_shift_x8::<15>(_mm256_mullo_epi32(o, t)),
            i16::MIN.into(),
            i16::MAX.into(),
        );
        // The values fit i16: the saturating pack is exact; qwords 0 and 2
        // hold units 0..3 and 4..7.
        let pack = |v: __m256i| {
            let packed = _mm256_packs_epi32(v, v);
            _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b00_00_10_00>(packed))
        };
        // SAFETY: `cb` and `hb` hold 8 i16 (16 bytes) each.
        unsafe {
            _mm_storeu_si128(cb.as_mut_ptr().cast(), pack(c_next));
            _mm_storeu_si128(hb.as_mut_ptr().cast(), pack(h_next));
        }
    }
}

/// Word indices that sort the gates of sixteen units (64 words in two
/// registers) into `[i of all | o of all]` and `[f of all | g of all]`.
// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn gather_gates(first: usize, second: usize) -> [i16; 32] {
    let mut index = [0i16; 32];
    let mut u = 0;
    while u < UNITS {
        index[u] = (4 * u + first) as i16;
        index[UNITS + u] = (4 * u + second) as i16;
        u += 1;
    }
    index
}
const GATES_IO: [i16; 32] = gather_gates(0, 1);
const GATES_FG: [i16; 32] = gather_gates(2, 3);

/// `(v + 2^(shift - 1)) >> shift`, lane by lane (`round_shift32`).
#[target_feature(enable = "avx512bw")]
#[inline]
fn round_shift_x16<const SHIFT: u32>(v: __m512i) -> __m512i {
    _mm512_srai_epi32::<SHIFT>(_mm512_add_epi32(v, _mm512_set1_epi32(1 << (SHIFT - 1))))
}

#[target_feature(enable = "avx512bw")]
fn lstm_cells_wide(gates: &[i16], c: &mut [i16], h: &mut [i16]) {
    let table = SigmoidTable::load();
    // SAFETY: 64 bytes from each 32-entry index array.
    let (io_index, fg_index) = unsafe {
        (
            _mm512_loadu_si512(GATES_IO.as_ptr().cast()),
            _mm512_loadu_si512(GATES_FG.as_ptr().cast()),
        )
    };
    let (gate_blocks, _) = gates.as_chunks::<{ 4 * UNITS }>();
    let (c_blocks, _) = c.as_chunks_mut::<UNITS>();
    let (h_blocks, _) = h.as_chunks_mut::<UNITS>();
    for ((g, cb), hb) in gate_blocks.iter().zip(c_blocks).zip(h_blocks) {
        let (lo, hi) = g.split_at(2 * UNITS);
        // SAFETY: `lo` and `hi` hold 32 i16 (64 bytes) each; `cb` 16 i16.
        let (lo, hi, c_prev) = unsafe {
            (
                _mm512_loadu_si512(lo.as_ptr().cast()),
                _mm512_loadu_si512(hi.as_ptr().cast()),
                _mm256_loadu_si256(cb.as_ptr().cast()),
            )
        };
        let io = _mm512_permutex2var_epi16(lo, io_index, hi);
        let fg = _mm512_permutex2var_epi16(lo, fg_index, hi);
        let widen_lo = |v: __m512i| _mm512_cvtepi16_epi32(_mm512_castsi512_si256(v));
        let widen_hi = |v: __m512i| _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64::<1>(v));
        let (i, o, f, g) = (widen_lo(io), widen_hi(io), widen_lo(fg), widen_hi(fg));
        // Q0.15 * Q4.11 -> Q4.11, and Q0.15 * Q0.15 -> Q4.11.
        let keep = round_shift_x16::<15>(_mm512_mullo_epi32(f, _mm512_cvtepi16_epi32(c_prev)));
        let write = round_shift_x16::<19>(_mm512_mullo_epi32(i, g));
        let c_next = clamp_x16(
            _mm512_add_epi32(keep, write),
            i16::MIN.into(),
            i16::MAX.into(),
        );
        // Q4.11 -> Q3.12 is one bit left.
        let t = tanh_x16(&table, _mm512_add_epi32(c_next, c_next));
        let h_next = clamp_x16(
            round_shift_x16::<15>(_mm512_mullo_epi32(o, t)),
            i16::MIN.into(),
            i16::MAX.into(),
        );
        // SAFETY: `cb` and `hb` hold 16 i16 (32 bytes) each.
        unsafe {
            _mm256_storeu_si256(cb.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(c_next));
            _mm256_storeu_si256(hb.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(h_next));
        }
    }
}

/// The GRU cell of the first units, all that whole passes of the kernels fit
/// in `h_prev` and `h` (16 units with AVX-512, then 8 with AVX2): with the
/// pre-activations of `[z, r, n]` at `x[3 * unit..]` (input side) and
/// `h_pre[3 * unit..]` (recurrent side),
/// `z = σ(xz +sat hz)`, `r = σ(xr +sat hr)`, `n = tanh(xn +sat round(r hn, 15))`
/// and `h = sat16(n + round(z (h_prev - n), 15))`, exactly as `Int`'s
/// `sigmoid`, `gate_mul`, `tanh` and `gru_hidden` compute them. Returns the
/// number of units done; 0 (writing nothing) without AVX2.
pub fn gru_cells(x: &[i32], h_pre: &[i32], h_prev: &[i16], h: &mut [i16]) -> usize {
    gru_cells_on(x, h_pre, h_prev, h, has_avx512())
}

/// [`gru_cells`] on the AVX2 kernel even where AVX-512 is present (to
/// compare the two).
pub fn gru_cells_avx2(x: &[i32], h_pre: &[i32], h_prev: &[i16], h: &mut [i16]) -> usize {
    gru_cells_on(x, h_pre, h_prev, h, false)
}

/// `wide` only where [`has_avx512`]: whole passes of 16 units, then one of
/// eight with AVX2 where eight or more remain.
fn gru_cells_on(x: &[i32], h_pre: &[i32], h_prev: &[i16], h: &mut [i16], wide: bool) -> usize {
    let fit = x.len().min(h_pre.len()) / 3;
    let units = h_prev.len().min(h.len()).min(fit);
    if !has_avx2() {
        return 0;
    }
    let (wide_units, done) = passes(units, wide);
    let (Some((x_wide, x_narrow)), Some((pre_wide, pre_narrow)), Some((prev_wide, prev_narrow))) = (
        x.get(..3 * done)
            .and_then(|x| x.split_at_checked(3 * wide_units)),
        h_pre
            .get(..3 * done)
            .and_then(|p| p.split_at_checked(3 * wide_units)),
        h_prev
            .get(..done)
            .and_then(|p| p.split_at_checked(wide_units)),
    ) else {
        return 0;
    };
    let Some((h_wide, h_narrow)) = h
        .get_mut(..done)
        .and_then(|h| h.split_at_mut_checked(wide_units))
    else {
        return 0;
    };
    // SAFETY: AVX2 is present (checked just above), and AVX-512 BW where
    // `wide`, the only case with wide units.
    unsafe {
        if !h_wide.is_empty() {
            gru_cells_wide(x_wide, pre_wide, prev_wide, h_wide);
        }
        if !h_narrow.is_empty() {
            gru_cells_narrow(x_narrow, pre_narrow, prev_narrow, h_narrow);
        }
    }
    done
}

/// Per register, the dword indices of a permute and the lanes it supplies.
type GatePlan = ([[i32; 8]; 3], [[i32; 8]; 3]);

/// Dword indices, and lane masks of the register each lane comes from, that
/// take gate `gate` of eight units from 24 unit-major rows in three registers:
/// lane `u` is row `3u + gate`, lane `(3u + gate) % 8` of register
/// `(3u + gate) / 8`.
// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn gate_rows_x8(gate: usize) -> GatePlan {
    let (mut index, mut from) = ([[0i32; 8]; 3], [[0i32; 8]; 3]);
    let mut u = 0;
    while u < UNITS_AVX2 {
        let p = 3 * u + gate;
        index[p / 8][u] = (p % 8) as i32;
        from[p / 8][u] = -1;
        u += 1;
    }
    (index, from)
}
const GRU_ROWS_X8: [GatePlan; 3] = [gate_rows_x8(0), gate_rows_x8(1), gate_rows_x8(2)];

/// `round(a * b, 15)` on eight i32 lanes ([`gate_mul_x16`]) for an i16 `a`,
/// in 32-bit lanes: with `b = 2^16 hi + lo` (`lo` unsigned), the result is
/// `2 a hi + round(a lo, 15)`, as `a hi 2^16` is a multiple of `2^15`. Each
/// product fits i32 (`|a lo| < 2^31`), and the wrapping sum is the exact
/// result modulo `2^32`, as the scalar code's cast to i32 is. (AVX2 has no
/// 64-bit arithmetic shift for the way [`gate_mul_x16`] goes.)
#[target_feature(enable = "avx2")]
#[inline]
fn gate_mul_x8(a: __m256i, b: __m256i) -> __m256i {
    let high = _mm256_mullo_epi32(a, _mm256_srai_epi32::<16>(b));
    let low = _mm256_mullo_epi32(a, _mm256_and_si256(b, _mm256_set1_epi32(0xFFFF)));
    let low = _mm256_srai_epi32::<15>(_mm256_add_epi32(low, _mm256_set1_epi32(1 << 14)));
    _mm256_add_epi32(_mm256_slli_epi32::<1>(high), low)
}

/// The three gates' rows of eight units, from 24 unit-major rows.
#[target_feature(enable = "avx2")]
#[inline]
fn split_gates_x8(
    rows: &[i32; 3 * UNITS_AVX2],
    plans: &[([__m256i; 3], [__m256i; 3]); 3],
) -> [__m256i; 3] {
    use core::arch::x86_64::{_mm256_blendv_epi8, _mm256_permutevar8x32_epi32};
    let (parts, _) = rows.as_chunks::<8>();
    let mut regs = [_mm256_setzero_si256(); 3];
    for (r, part) in regs.iter_mut().zip(parts) {
        // SAFETY: 32 bytes from an 8-entry part.
        *r = unsafe { _mm256_loadu_si256(part.as_ptr().cast()) };
    }
    let [a, b, c] = regs;
    let mut gates = [_mm256_setzero_si256(); 3];
    for (gate, ([ia, ib, ic], [_, from_b, from_c])) in gates.iter_mut().zip(plans) {
        let ab = _mm256_blendv_epi8(
            _mm256_permutevar8x32_epi32(a, *ia),
            _mm256_permutevar8x32_epi32(b, *ib),
            *from_b,
        );
        *gate = _mm256_blendv_epi8(ab, _mm256_permutevar8x32_epi32(c, *ic), *from_c);
    }
    gates
}

/// [`gru_cells_wide`] on eight units per pass with AVX2.
#[target_feature(enable = "avx2")]
fn gru_cells_narrow(x: &[i32], h_pre: &[i32], h_prev: &[i16], h: &mut [i16]) {
    use core::arch::x86_64::{
        _mm256_castsi256_si128, _mm256_cvtepi16_epi32, _mm256_packs_epi32,
        _mm256_permute4x64_epi64, _mm_loadu_si128, _mm_storeu_si128,
    };
    // SAFETY: 32 bytes from an 8-entry array.
    let load = |v: &[i32; 8]| unsafe { _mm256_loadu_si256(v.as_ptr().cast()) };
    let mut plans = [([_mm256_setzero_si256(); 3], [_mm256_setzero_si256(); 3]); 3];
    for ((index, from), (index_regs, from_regs)) in GRU_ROWS_X8.iter().zip(plans.iter_mut()) {
        for (reg, i) in index_regs.iter_mut().zip(index) {
            *reg = load(i);
        }
        for (reg, m) in from_regs.iter_mut().zip(from) {
            *reg = load(m);
        }
    }
    let (x_blocks, _) = x.as_chunks::<{ 3 * UNITS_AVX2 }>();
    let (h_pre_blocks, _) = h_pre.as_chunks::<{ 3 * UNITS_AVX2 }>();
    let (prev_blocks, _) = h_prev.as_chunks::<UNITS_AVX2>();
    let (out_blocks, _) = h.as_chunks_mut::<UNITS_AVX2>();
    let blocks = x_blocks.iter().zip(h_pre_blocks).zip(prev_blocks);
    for (((xb, hb), pb), ob) in blocks.zip(out_blocks.iter_mut()) {
        let [xz, xr, xn] = split_gates_x8(xb, &plans);
        let [hz, hr, hn] = split_gates_x8(hb, &plans);
        let z = sigmoid_x8(saturating_add_x8(xz, hz));
        let r = sigmoid_x8(saturating_add_x8(xr, hr));
        let n = tanh_x8(saturating_add_x8(xn, gate_mul_x8(r, hn)));
        // SAFETY: `pb` holds 8 i16 (16 bytes).
        let prev = _mm256_cvtepi16_epi32(unsafe { _mm_loadu_si128(pb.as_ptr().cast()) });
        let mix = gate_mul_x8(z, _mm256_sub_epi32(prev, n));
        let next = clamp_x8(_mm256_add_epi32(n, mix), i16::MIN.into(), i16::MAX.into());
        // The values fit i16: the saturating pack is exact; qwords 0 and 2
        // hold units 0..3 and 4..7.
        let packed = _mm256_packs_epi32(next, next);
        let packed = _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b00_00_10_00>(packed));
        // SAFETY: `ob` holds 8 i16 (16 bytes).
        unsafe { _mm_storeu_si128(ob.as_mut_ptr().cast(), packed) };
    }
}

/// Dword indices that take gate `gate` of sixteen units from 48 unit-major
/// rows (three registers) in two permutes: the first picks the rows among the
/// first 32, the second keeps those (`u`) or takes a row of the third
/// register (`16 + p - 32`).
// Evaluated at compile time: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn gate_rows(gate: usize) -> ([i32; 16], [i32; 16]) {
    let (mut first, mut second) = ([0i32; 16], [0i32; 16]);
    let mut u = 0;
    while u < UNITS {
        let p = 3 * u + gate;
        if p < 32 {
            first[u] = p as i32;
            second[u] = u as i32;
        } else {
            second[u] = (16 + p - 32) as i32;
        }
        u += 1;
    }
    (first, second)
}
const GRU_ROWS: [([i32; 16], [i32; 16]); 3] = [gate_rows(0), gate_rows(1), gate_rows(2)];

/// The three gates' rows of sixteen units, from 48 unit-major rows.
#[target_feature(enable = "avx512bw")]
#[inline]
fn split_gates(rows: &[i32; 48], index: &[(__m512i, __m512i); 3]) -> [__m512i; 3] {
    let (parts, _) = rows.as_chunks::<16>();
    let mut regs = [_mm512_setzero_si512(); 3];
    for (r, part) in regs.iter_mut().zip(parts) {
        // SAFETY: 64 bytes from a 16-entry part.
        *r = unsafe { _mm512_loadu_si512(part.as_ptr().cast()) };
    }
    let [a, b, c] = regs;
    index.map(|(first, second)| {
        _mm512_permutex2var_epi32(_mm512_permutex2var_epi32(a, first, b), second, c)
    })
}

/// `round(a * b, 15)` on sixteen i32 lanes, the product in 64 bits (`a` a
/// Q0.15 gate, `b` any i32); the result fits i32 since `|a| <= 2^15`.
#[target_feature(enable = "avx512bw")]
#[inline]
fn gate_mul_x16(a: __m512i, b: __m512i) -> __m512i {
    let round = _mm512_set1_epi64(1 << 14);
    let even = _mm512_srai_epi64::<15>(_mm512_add_epi64(_mm512_mul_epi32(a, b), round));
    let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(a), _mm512_srli_epi64::<32>(b));
    let odd = _mm512_srai_epi64::<15>(_mm512_add_epi64(odd, round));
    _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd))
}

#[target_feature(enable = "avx512bw")]
fn gru_cells_wide(x: &[i32], h_pre: &[i32], h_prev: &[i16], h: &mut [i16]) {
    let table = SigmoidTable::load();
    // SAFETY: 64 bytes from each 16-entry index array.
    let index = GRU_ROWS.map(|(first, second)| unsafe {
        (
            _mm512_loadu_si512(first.as_ptr().cast()),
            _mm512_loadu_si512(second.as_ptr().cast()),
        )
    });
    let (x_blocks, _) = x.as_chunks::<{ 3 * UNITS }>();
    let (h_pre_blocks, _) = h_pre.as_chunks::<{ 3 * UNITS }>();
    let (prev_blocks, _) = h_prev.as_chunks::<UNITS>();
    let (out_blocks, _) = h.as_chunks_mut::<UNITS>();
    let blocks = x_blocks.iter().zip(h_pre_blocks).zip(prev_blocks);
    for (((xb, hb), pb), ob) in blocks.zip(out_blocks.iter_mut()) {
        let [xz, xr, xn] = split_gates(xb, &index);
        let [hz, hr, hn] = split_gates(hb, &index);
        let z = table.sigmoid(saturating_add_x16(xz, hz));
        let r = table.sigmoid(saturating_add_x16(xr, hr));
        let n = tanh_x16(&table, saturating_add_x16(xn, gate_mul_x16(r, hn)));
        // SAFETY: `pb` holds 16 i16 (32 bytes).
        let prev = _mm512_cvtepi16_epi32(unsafe { _mm256_loadu_si256(pb.as_ptr().cast()) });
        let mix = gate_mul_x16(z, _mm512_sub_epi32(prev, n));
        let next = clamp_x16(_mm512_add_epi32(n, mix), i16::MIN.into(), i16::MAX.into());
        // SAFETY: `ob` holds 16 i16 (32 bytes).
        unsafe { _mm256_storeu_si256(ob.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(next)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::x86::test_gen::Gen;
    use crate::numeric::{Int, Numeric};
    use std::vec::Vec;

    type Cells = fn(&[i16], &mut [i16], &mut [i16]) -> usize;
    type GruCells = fn(&[i32], &[i32], &[i16], &mut [i16]) -> usize;

    /// Both entry points, with the units per pass each covers on this CPU (0
    /// where it runs none): eight, as the dispatch ends on an AVX2 pass.
    fn lstm_kernels() -> [(&'static str, Cells, usize); 2] {
        let pass = if has_avx2() { UNITS_AVX2 } else { 0 };
        [
            ("dispatch", lstm_cells, pass),
            ("AVX2", lstm_cells_avx2, pass),
        ]
    }

    #[test]
    fn lstm_cells_equal_the_scalar_cell() {
        let mut gen = Gen::new(5);
        for (name, cells, pass) in lstm_kernels() {
            for units in [0, 1, 7, 8, 9, 15, 16, 17, 24, 40, 50, 128, 256] {
                let gates = gen.acts(4 * units);
                let c_prev = gen.acts(units);
                let (mut c, mut h) = (c_prev.clone(), std::vec![9i16; units]);
                let done = cells(&gates, &mut c, &mut h);
                let want = units.checked_div(pass).map_or(0, |k| k * pass);
                assert_eq!(done, want, "{name}, units={units}");
                for j in 0..units {
                    let [i, o, f, g] = [0, 1, 2, 3].map(|k| gates[4 * j + k]);
                    let (want_c, want_h) = if j < done {
                        let c = Int::lstm_cell(f, c_prev[j], i, g);
                        (c, Int::lstm_hidden(o, c))
                    } else {
                        (c_prev[j], 9)
                    };
                    let got = (c[j], h[j]);
                    assert_eq!(got, (want_c, want_h), "{name}, units={units} unit {j}");
                }
            }
        }
    }

    #[test]
    fn lstm_cells_saturate_like_the_scalar_cell() {
        // Every combination of extreme gates and cell states.
        let extremes = [i16::MIN, -1, 0, 1, i16::MAX];
        let mut combos = Vec::new();
        for i in extremes {
            for o in extremes {
                for f in extremes {
                    for g in extremes {
                        for c in extremes {
                            combos.push(([i, o, f, g], c));
                        }
                    }
                }
            }
        }
        let gates: Vec<i16> = combos.iter().flat_map(|(g, _)| *g).collect();
        let c_prev: Vec<i16> = combos.iter().map(|&(_, c)| c).collect();
        for (name, cells, _) in lstm_kernels() {
            let (mut c, mut h) = (c_prev.clone(), std::vec![0i16; combos.len()]);
            let done = cells(&gates, &mut c, &mut h);
            for (j, &([i, o, f, g], c0)) in combos.iter().enumerate().take(done) {
                let want_c = Int::lstm_cell(f, c0, i, g);
                let want = (want_c, Int::lstm_hidden(o, want_c));
                assert_eq!((c[j], h[j]), want, "{name}, {:?}", combos[j]);
            }
        }
    }

    #[test]
    fn gru_cells_equal_the_scalar_cell() {
        let mut gen = Gen::new(9);
        let extremes = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 20),
            -1,
            0,
            1,
            1 << 20,
            i32::MAX,
        ];
        let word = |gen: &mut Gen| match gen.next() % 4 {
            0 => extremes[(gen.next() % 8) as usize],
            1 => (gen.next() as i32) >> 12,
            _ => gen.next() as i32,
        };
        let kernels: [(&str, GruCells); 2] = [("dispatch", gru_cells), ("AVX2", gru_cells_avx2)];
        for (name, cells) in kernels {
            for units in [0, 1, 7, 8, 9, 15, 16, 17, 24, 40, 48, 50, 128, 256] {
                let x: Vec<i32> = (0..3 * units).map(|_| word(&mut gen)).collect();
                let h_pre: Vec<i32> = (0..3 * units).map(|_| word(&mut gen)).collect();
                let h_prev = gen.acts(units);
                let mut h = std::vec![9i16; units];
                let done = cells(&x, &h_pre, &h_prev, &mut h);
                let want = if has_avx2() { units / 8 * 8 } else { 0 };
                assert_eq!(done, want, "{name}, units={units}");
                for j in 0..units {
                    let want_h = if j < done {
                        let [xz, xr, xn] = [0, 1, 2].map(|g| x[3 * j + g]);
                        let [hz, hr, hn] = [0, 1, 2].map(|g| h_pre[3 * j + g]);
                        let z = Int::sigmoid(Int::add(xz, hz));
                        let r = Int::sigmoid(Int::add(xr, hr));
                        let n = Int::tanh(Int::add(xn, Int::gate_mul(r, hn)));
                        Int::gru_hidden(z, n, h_prev[j])
                    } else {
                        9
                    };
                    assert_eq!(h[j], want_h, "{name}, units={units} unit {j}");
                }
            }
        }
    }
}
