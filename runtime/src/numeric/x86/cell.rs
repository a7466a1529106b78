//! The LSTM cell update of sixteen units per pass with AVX-512, from the gate
//! outputs that [`super::lstm_activations`] formed for the whole step.

use core::arch::x86_64::{
    __m512i, _mm256_loadu_si256, _mm256_storeu_si256, _mm512_add_epi32, _mm512_castsi512_si256,
    _mm512_cvtepi16_epi32, _mm512_cvtepi32_epi16, _mm512_extracti64x4_epi64, _mm512_loadu_si512,
    _mm512_mullo_epi32, _mm512_permutex2var_epi16, _mm512_set1_epi32, _mm512_srai_epi32,
};

use super::activations::{clamp_x16, tanh_x16, SigmoidTable};
use super::has_avx512;

/// Units per pass.
const UNITS: usize = 16;

/// The LSTM cell of the first `16 * k` units, all that fit `c` and `h`:
/// with `[i, o, f, g]` at `gates[4 * unit..]` (unit-major, as
/// [`super::lstm_activations`] writes them),
/// `c = sat16(round(f * c, 15) + round(i * g, 19))` and
/// `h = sat16(round(o * tanh_q12(c << 1), 15))`, exactly as
/// `Int::lstm_cell` and `Int::lstm_hidden` compute them. Returns the number
/// of units done; 0 (writing nothing) without AVX-512 BW.
pub fn lstm_cells(gates: &[i16], c: &mut [i16], h: &mut [i16]) -> usize {
    let units = c.len().min(h.len()).min(gates.len() / 4) / UNITS * UNITS;
    if units == 0 || !has_avx512() {
        return 0;
    }
    let (Some(gates), Some(c), Some(h)) = (
        gates.get(..4 * units),
        c.get_mut(..units),
        h.get_mut(..units),
    ) else {
        return 0;
    };
    // SAFETY: AVX-512 BW is present (checked just above).
    unsafe { lstm_cells_wide(gates, c, h) };
    units
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::x86::test_gen::Gen;
    use crate::numeric::{Int, Numeric};
    use std::vec::Vec;

    #[test]
    fn lstm_cells_equal_the_scalar_cell() {
        let mut gen = Gen(5);
        for units in [0, 1, 15, 16, 17, 50, 128, 256] {
            let gates = gen.acts(4 * units);
            let c_prev = gen.acts(units);
            let (mut c, mut h) = (c_prev.clone(), std::vec![9i16; units]);
            let done = lstm_cells(&gates, &mut c, &mut h);
            let want = if has_avx512() { units / 16 * 16 } else { 0 };
            assert_eq!(done, want, "units={units}");
            for j in 0..units {
                let [i, o, f, g] = [0, 1, 2, 3].map(|k| gates[4 * j + k]);
                let (want_c, want_h) = if j < done {
                    let c = Int::lstm_cell(f, c_prev[j], i, g);
                    (c, Int::lstm_hidden(o, c))
                } else {
                    (c_prev[j], 9)
                };
                assert_eq!((c[j], h[j]), (want_c, want_h), "units={units} unit {j}");
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
        let (mut c, mut h) = (c_prev.clone(), std::vec![0i16; combos.len()]);
        let done = lstm_cells(&gates, &mut c, &mut h);
        for (j, &([i, o, f, g], c0)) in combos.iter().enumerate().take(done) {
            let want_c = Int::lstm_cell(f, c0, i, g);
            assert_eq!(
                (c[j], h[j]),
                (want_c, Int::lstm_hidden(o, want_c)),
                "{:?}",
                combos[j]
            );
        }
    }
}
