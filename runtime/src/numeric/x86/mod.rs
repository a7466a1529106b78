//! AVX2 and AVX-512 kernels for the integer path on x86-64 hosts: int8
//! weights times int16 (or int8) inputs summed in wrapping i32, the row
//! prescale, the LSTM activations, the LSTM and GRU cells, and the sampling
//! weights; and one AVX2 kernel for the f32 path, its gate rows' partial sums.
//!
//! Audit of the `unsafe` here, the runtime's second exception to
//! `deny(unsafe_code)`:
//! - Each public function calls its `#[target_feature]` kernels only after
//!   detection said the CPU has their features: [`has_avx2`] for AVX2,
//!   [`has_avx512`] for AVX-512 BW and VNNI, and [`has_avx512dq`] as well
//!   where DQ is used (run-time detection with the `std` feature, else the
//!   compile-time target features). [`limit_kernels`] can only turn these
//!   answers from true to false, never the other way.
//! - The kernels' only other `unsafe` operations are pointer offsets into
//!   slices, unaligned vector loads from them (`loadu`, no alignment needed;
//!   `maskz_loadu` reads only its unmasked bytes), and unaligned stores of
//!   exactly one fixed-size chunk (`as_chunks_mut`) of an output slice or of a
//!   local array. Every load range is checked against the slice length before
//!   the loop that reads it, or follows from `chunks_exact`; each block states
//!   the bound it relies on, and the masked row loads assert it in tests. Nothing
//!   reads or writes past a slice, not even in the leftover columns.
//! - One view of an f32 slice as its own bytes (`f32_row_sums_of`): the
//!   same memory and length in bytes, and any byte value is a valid `u8`.
//!
//! Results equal the portable definition exactly: every product fits i32 (and a
//! `vpmaddwd` pair sum as well, since one factor is a sign-extended byte), and
//! wrapping i32 addition is associative and commutative, so the lane order of
//! the vector sums does not change the result. The f32 kernel does each lane's
//! IEEE multiplies and adds in the portable code's order. Each kernel's tests
//! compare it with the scalar code, extremes included.
#![allow(unsafe_code)]

mod activations;
mod cell;
mod dot;
mod float_cells;
mod float_dot;
mod prescale;
mod recurrent;
mod sample;

pub use activations::lstm_activations;
pub use cell::{gru_cells, gru_cells_avx2, lstm_cells, lstm_cells_avx2};
pub use dot::{dot_i8_i16, dot_i8_i8, rows_dot_i8_i16, rows_dot_i8_i8, rows_dot_i8_i8_pair};
pub use float_cells::{f32_gru_cell_updates, f32_lstm_cell_updates, f32_lstm_gate_outputs};
pub use float_dot::{f32_row_sums, f32_row_sums_of, f32_rows_of_inputs, F32_LANES};
pub use prescale::prescale;
pub use recurrent::{unit_sums, unit_sums_avx2};
pub use sample::sample_weights;

use core::sync::atomic::{AtomicU8, Ordering};

/// Whether the CPU has all of the given target features: detected at run
/// time with the `std` feature (cached by std), else fixed by the
/// compile-time target.
macro_rules! detected {
    ($($feature:tt),+) => {{
        #[cfg(feature = "std")]
        {
            true $(&& std::is_x86_feature_detected!($feature))+
        }
        #[cfg(not(feature = "std"))]
        {
            true $(&& cfg!(target_feature = $feature))+
        }
    }};
}

/// The integer kernels of one x86-64 CPU class, from the least to the most capable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelLevel {
    /// No vector kernels: the portable code, as on CPUs without AVX2.
    Portable,
    /// The AVX2 kernels, as on CPUs without AVX-512.
    Avx2,
    /// The AVX-512 kernels (BW and VNNI) and the AVX2 ones.
    Avx512,
}

impl KernelLevel {
    /// Every level, from the least capable.
    pub const ALL: [KernelLevel; 3] = [Self::Portable, Self::Avx2, Self::Avx512];

    /// Lowercase name, as `LSTM_EDGE_X86_KERNELS` and `lstm-edge bench` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }
}

/// The most capable kernels the runtime may pick ([`limit_kernels`]).
static KERNEL_LIMIT: AtomicU8 = AtomicU8::new(KernelLevel::Avx512 as u8);

/// Keeps the runtime to kernels no more capable than `level`, in every thread,
/// until the next call: so that one host can time (or test) the code paths of
/// CPUs without AVX-512 or AVX2. Results do not change, as every kernel equals
/// the portable code exactly. `KernelLevel::Avx512` lifts the limit.
pub fn limit_kernels(level: KernelLevel) {
    KERNEL_LIMIT.store(level as u8, Ordering::Relaxed);
}

/// The kernels the runtime picks now: the best this CPU has, within [`limit_kernels`].
pub fn kernel_level() -> KernelLevel {
    if has_avx512() {
        KernelLevel::Avx512
    } else if has_avx2() {
        KernelLevel::Avx2
    } else {
        KernelLevel::Portable
    }
}

/// Whether [`limit_kernels`] allows `level`.
#[inline]
fn allowed(level: KernelLevel) -> bool {
    KERNEL_LIMIT.load(Ordering::Relaxed) >= level as u8
}

/// Whether the AVX2 kernels run on this CPU (and are allowed).
#[inline]
pub fn has_avx2() -> bool {
    allowed(KernelLevel::Avx2) && detected!("avx2")
}

/// Whether the AVX-512 kernels (BW and VNNI) run on this CPU (and are allowed).
#[inline]
pub fn has_avx512() -> bool {
    allowed(KernelLevel::Avx512) && detected!("avx512bw", "avx512vnni")
}

/// Whether the CPU has AVX-512 VL (its 32 registers at 256 bits), which the
/// f32 row sums of several inputs use besides [`has_avx512`].
#[inline]
pub fn has_avx512vl() -> bool {
    detected!("avx512f", "avx512vl")
}

/// Whether the CPU has AVX-512 DQ (64-bit lane products), which the sampling
/// weights need besides [`has_avx512`].
#[inline]
pub fn has_avx512dq() -> bool {
    detected!("avx512dq")
}

/// Deterministic test inputs for the kernels' comparisons with the scalar code.
#[cfg(test)]
mod test_gen {
    use std::vec::Vec;

    /// Deterministic bytes and activations with the extremes mixed in.
    pub(super) struct Gen(crate::Rng);

    impl Gen {
        pub(super) fn new(seed: u64) -> Self {
            Gen(crate::Rng::new(seed))
        }
        pub(super) fn next(&mut self) -> u64 {
            self.0.next_u64()
        }
        pub(super) fn byte(&mut self) -> u8 {
            match self.next() % 8 {
                0 => 0x80,
                1 => 0x7f,
                _ => self.next() as u8,
            }
        }
        pub(super) fn act(&mut self) -> i16 {
            match self.next() % 8 {
                0 => i16::MIN,
                1 => i16::MAX,
                _ => self.next() as i16,
            }
        }
        pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.byte()).collect()
        }
        pub(super) fn acts(&mut self, n: usize) -> Vec<i16> {
            (0..n).map(|_| self.act()).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without AVX2 each kernel refuses and writes nothing, so its caller runs
    /// the portable code. (`scripts/test-x86-levels.sh` runs these tests on
    /// emulated CPUs without AVX2 and without AVX-512.)
    #[test]
    fn without_avx2_every_kernel_refuses() {
        if has_avx2() {
            return; // the kernels' own tests compare them with the scalar code
        }
        let (w, x, b) = ([1u8; 64], [1i16; 32], [1u8; 32]);
        let mut sums = [7i32; 2];
        assert_eq!(dot_i8_i16(&w, &x), None);
        assert_eq!(dot_i8_i8(&w, &b), None);
        assert!(!rows_dot_i8_i16(&w, 32, &x, &mut sums));
        assert!(!rows_dot_i8_i8(&w, 32, &b, &mut sums));
        let (wx, mut pre) = ([1i32; 16], [7i32; 16]);
        let mut h_pre = [7i32; 16];
        assert!(!prescale(&[[0; 16]; 16], &wx, &wx, &mut pre, &mut h_pre));
        let mut acts = [7i16; 16];
        assert!(!lstm_activations(&wx, &wx, 16, &mut acts));
        let (gates, mut c, mut h) = ([1i16; 64], [7i16; 16], [7i16; 16]);
        assert_eq!(lstm_cells(&gates, &mut c, &mut h), 0);
        assert_eq!(lstm_cells_avx2(&gates, &mut c, &mut h), 0);
        let gru_in = [1i32; 48];
        assert_eq!(gru_cells(&gru_in, &gru_in, &[1; 16], &mut h), 0);
        assert_eq!(gru_cells_avx2(&gru_in, &gru_in, &[1; 16], &mut h), 0);
        let r = [1u8; 4 * 8 * 8];
        let mut units = [[7i32; 4]; 8];
        assert!(!unit_sums::<4>(&r, 8, &x[..8], &mut units));
        assert!(!unit_sums_avx2::<4>(&r, 8, &x[..8], &mut units));
        let mut weights = [7u32; 8];
        assert_eq!(sample_weights(&[0; 8], 0, 1 << 16, &mut weights), 0);
        assert_eq!(sums, [7; 2]);
        assert!(pre.iter().chain(&h_pre).all(|&v| v == 7));
        assert!(acts.iter().chain(&c).chain(&h).all(|&v| v == 7));
        assert!(units.iter().all(|u| *u == [7; 4]));
        assert_eq!(weights, [7; 8]);
    }

    /// On an emulated CPU, the kernels this CPU picks are the ones the
    /// emulation is meant to leave: `LSTM_EDGE_X86_KERNELS` (set by
    /// `scripts/test-x86-levels.sh`) names the best of them.
    #[test]
    fn detection_finds_the_expected_kernels() {
        let Ok(expected) = std::env::var("LSTM_EDGE_X86_KERNELS") else {
            return;
        };
        assert_eq!(kernel_level().name(), expected, "LSTM_EDGE_X86_KERNELS");
    }
}
