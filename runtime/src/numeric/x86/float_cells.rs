//! The f32 path's activations and cells on hosts, compiled for AVX2: the
//! portable loops of `numeric::float`, inlined here, vectorise eight lanes wide
//! instead of four. Each lane does the same IEEE operations in the same order,
//! so the results are the same bits.

use super::has_avx2;
use crate::numeric::float::{gru_cell_updates, lstm_cell_updates, lstm_gate_outputs};

/// `numeric::float::lstm_gate_outputs` with AVX2; `false` (nothing written) without it.
#[inline]
pub fn f32_lstm_gate_outputs(
    sigmoids: &mut [f32],
    h_sigmoids: &[f32],
    candidates: &mut [f32],
    h_candidates: &[f32],
) -> bool {
    if !has_avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { lstm_gate_outputs_avx2(sigmoids, h_sigmoids, candidates, h_candidates) };
    true
}

/// `numeric::float::lstm_cell_updates` with AVX2; `None` (nothing written) without it.
#[inline]
pub fn f32_lstm_cell_updates(gates: [&[f32]; 4], c: &mut [f32], h: &mut [f32]) -> Option<usize> {
    // SAFETY: the CPU has AVX2 (checked first).
    has_avx2().then(|| unsafe { lstm_cell_updates_avx2(gates, c, h) })
}

/// `numeric::float::gru_cell_updates` with AVX2; `None` (nothing written) without it.
#[inline]
pub fn f32_gru_cell_updates(
    x: [&[f32]; 3],
    r: [&[f32]; 3],
    h_prev: &[f32],
    h: &mut [f32],
) -> Option<usize> {
    // SAFETY: the CPU has AVX2 (checked first).
    has_avx2().then(|| unsafe { gru_cell_updates_avx2(x, r, h_prev, h) })
}

#[target_feature(enable = "avx2")]
fn lstm_gate_outputs_avx2(
    sigmoids: &mut [f32],
    h_sigmoids: &[f32],
    candidates: &mut [f32],
    h_candidates: &[f32],
) {
    lstm_gate_outputs(sigmoids, h_sigmoids, candidates, h_candidates);
}

#[target_feature(enable = "avx2")]
fn lstm_cell_updates_avx2(gates: [&[f32]; 4], c: &mut [f32], h: &mut [f32]) -> usize {
    lstm_cell_updates(gates, c, h)
}

#[target_feature(enable = "avx2")]
fn gru_cell_updates_avx2(x: [&[f32]; 3], r: [&[f32]; 3], h_prev: &[f32], h: &mut [f32]) -> usize {
    gru_cell_updates(x, r, h_prev, h)
}
