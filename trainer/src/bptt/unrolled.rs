//! LSTM and GRU unrolled over `T` steps from the tape's primitive ops, so their
//! gradients come from the ops' own backward rules. A reference layout for the
//! Scan version, and the faster one for short sequences (see `bench.rs`).

use crate::autodiff::Tape;
use crate::onnx::Value;

/// The per-step input projections `[B, width]` of `xproj [T, B, width]`.
fn steps_of(tape: &mut Tape, xproj: &Value, steps: i64, width: i64) -> Vec<Value> {
    let pieces = tape.split(xproj, 0, &vec![1; steps as usize]);
    pieces
        .iter()
        .map(|p| tape.reshape(p, &[-1, width]))
        .collect()
}

/// Stacks per-step states `[B, H]` into `[T, B, H]`.
fn stack(tape: &mut Tape, states: &[Value], hidden: i64) -> Value {
    let lifted: Vec<Value> = states
        .iter()
        .map(|h| tape.reshape(h, &[1, -1, hidden]))
        .collect();
    let refs: Vec<&Value> = lifted.iter().collect();
    tape.concat(&refs, 0)
}

pub(super) fn lstm(tape: &mut Tape, xproj: &Value, r: &Value, hidden: i64, steps: i64) -> Value {
    let xs = steps_of(tape, xproj, steps, 4 * hidden);
    let mut h = super::zeros_state(tape.graph(), xproj, 1, hidden);
    let mut c = h.clone();
    let mut hs = Vec::new();
    for x in &xs {
        let rec = tape.linear(&h, r, None);
        let gates = tape.add(x, &rec);
        let parts = tape.split(&gates, 1, &[3 * hidden, hidden]);
        let sig = tape.sigmoid(&parts[0]);
        let cand = tape.tanh(&parts[1]);
        let iof = tape.split(&sig, 1, &[hidden, hidden, hidden]);
        let keep = tape.mul(&iof[2], &c);
        let write = tape.mul(&iof[0], &cand);
        c = tape.add(&keep, &write);
        let tc = tape.tanh(&c);
        h = tape.mul(&iof[1], &tc);
        hs.push(h.clone());
    }
    stack(tape, &hs, hidden)
}

pub(super) fn gru(
    tape: &mut Tape,
    xproj: &Value,
    r: &Value,
    rb: &Value,
    hidden: i64,
    steps: i64,
) -> Value {
    let xs = steps_of(tape, xproj, steps, 3 * hidden);
    let mut h = super::zeros_state(tape.graph(), xproj, 1, hidden);
    let mut hs = Vec::new();
    for x in &xs {
        let hr = tape.linear(&h, r, Some(rb));
        let x_parts = tape.split(x, 1, &[2 * hidden, hidden]);
        let h_parts = tape.split(&hr, 1, &[2 * hidden, hidden]);
        let zr_pre = tape.add(&x_parts[0], &h_parts[0]);
        let zr = tape.sigmoid(&zr_pre);
        let z_r = tape.split(&zr, 1, &[hidden, hidden]);
        let gated = tape.mul(&z_r[1], &h_parts[1]);
        let n_pre = tape.add(&x_parts[1], &gated);
        let n = tape.tanh(&n_pre);
        let diff = tape.sub(&h, &n);
        let kept = tape.mul(&z_r[0], &diff);
        h = tape.add(&n, &kept);
        hs.push(h.clone());
    }
    stack(tape, &hs, hidden)
}
