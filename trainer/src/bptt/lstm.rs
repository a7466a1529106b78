//! LSTM as a forward `Scan` plus a reverse `Scan` for its gradient.
//!
//! Per step (ONNX order `i, o, f, c`):
//! `[i, o, f] = σ(xp_t + h·Rᵀ)[..3H]`, `g = tanh(..)[3H..]`,
//! `c_t = f ⊙ c_{t-1} + i ⊙ g`, `h_t = o ⊙ tanh(c_t)`.
//!
//! Backward, per step from the last: `dh = dh_out_t + dh_rec`,
//! `dc = dc_next + dh ⊙ o ⊙ (1 - tanh²c_t)`, pre-activation gradients
//! `[dc⊙g, dh⊙tanh c_t, dc⊙c_{t-1}, dc⊙i] ⊙ [σ', σ', σ', tanh']`,
//! `dc_{t-1} = dc ⊙ f`, `dh_{t-1} = dgates · R`. Every factor that does not
//! depend on the carried gradients is formed by the forward body, so the
//! reverse body is seven small ops (more on several CPU threads past hidden 32,
//! where `dgates · R` is summed in blocks; see `product_blocks`).

use super::{
    one_minus, scan_node, shifted_states, split, sum_outer, zeros_state, BlockedWeights, Body,
};
use crate::autodiff::Tape;
use crate::onnx::{Attr, Value};

/// What the forward `Scan` saves for the backward one, per step `[T, B, ·]`.
struct Saved {
    /// `[g, tanh c_t, c_{t-1}, i] ⊙ [σ'(i), σ'(o), σ'(f), tanh'(g)]`: the
    /// pre-activation gradients are `[dc, dh, dc, dc] ⊙ factors`.
    factors: Value,
    /// `o ⊙ (1 - tanh² c_t)`: how `dh` reaches `dc`.
    to_dc: Value,
    /// The forget gate: how `dc` reaches `c_{t-1}`.
    forget: Value,
}

/// The forward recurrence. Its body also forms the backward factors while
/// the step's values are in cache: done afterwards, over whole `[T, B, 4H]`
/// tensors, the same arithmetic took about twice as long (memory bound).
fn scan_forward(
    tape: &mut Tape,
    xproj: &Value,
    r: &Value,
    hidden: i64,
    in_blocks: bool,
) -> (Value, Saved, Value) {
    let g = tape.graph();
    let h0 = zeros_state(g, xproj, 1, hidden);
    // `h · Rᵀ` with `Rᵀ` formed once: a transposed operand would be repacked
    // on every step.
    let r_t = g.op("Transpose", &[r], vec![Attr::Ints("perm", vec![1, 0])]);
    let r_t = BlockedWeights::new(g, &r_t, hidden, 4 * hidden, in_blocks);
    let mut body = Body::new(g, "lstm_fwd");
    let h_prev = body.input("h", hidden);
    let c_prev = body.input("c", hidden);
    let xp = body.input("xp", 4 * hidden);
    let b = &mut body.graph;
    let gates = r_t.product(b, &h_prev, Some(&xp));
    let parts = split(b, &gates, 1, &[3 * hidden, hidden]);
    let sig = b.op("Sigmoid", &[&parts[0]], vec![]);
    let cand = b.op("Tanh", &[&parts[1]], vec![]);
    let iof = split(b, &sig, 1, &[hidden, hidden, hidden]);
    let (i, o, f) = (&iof[0], &iof[1], &iof[2]);
    let keep = b.op("Mul", &[f, &c_prev], vec![]);
    let write = b.op("Mul", &[i, &cand], vec![]);
    let c = b.op("Add", &[&keep, &write], vec![]);
    let tc = b.op("Tanh", &[&c], vec![]);
    let h = b.op("Mul", &[o, &tc], vec![]);
    // Backward factors. `σ' = s - s²`, `tanh' = 1 - t²`; `o ⊙ (1 - tanh² c)`
    // is `o - h ⊙ tanh c`.
    let sig_sq = b.op("Mul", &[&sig, &sig], vec![]);
    let sig_slope = b.op("Sub", &[&sig, &sig_sq], vec![]);
    let cand_sq = b.op("Mul", &[&cand, &cand], vec![]);
    let cand_slope = one_minus(b, &cand_sq);
    let slopes = b.op(
        "Concat",
        &[&sig_slope, &cand_slope],
        vec![Attr::Int("axis", 1)],
    );
    let picks = b.op(
        "Concat",
        &[&cand, &tc, &c_prev, i],
        vec![Attr::Int("axis", 1)],
    );
    let factors = b.op("Mul", &[&picks, &slopes], vec![]);
    let h_tc = b.op("Mul", &[&h, &tc], vec![]);
    let to_dc = b.op("Sub", &[o, &h_tc], vec![]);
    body.outputs(&[&h, &c, &h, &factors, &to_dc, f]);
    let outs = scan_node(tape.graph(), body, &[&h0, &h0], &[xproj], 4, false);
    // outs: h_T, c_T, h_seq, factors, to_dc, forget
    let saved = Saved {
        factors: outs[3].clone(),
        to_dc: outs[4].clone(),
        forget: outs[5].clone(),
    };
    (outs[2].clone(), saved, h0)
}

pub(super) fn scan(tape: &mut Tape, xproj: &Value, r: &Value, hidden: i64) -> Value {
    let in_blocks = tape.backend().sums_products_in_blocks();
    let (h_seq, saved, h0) = scan_forward(tape, xproj, r, hidden, in_blocks);
    let (h_seq_c, r_c) = (h_seq.clone(), r.clone());
    tape.record(&[xproj, r], &[&h_seq], move |g, dys, needed| {
        let Some(dh_seq) = &dys[0] else {
            return vec![None, None];
        };
        let r_blocks = BlockedWeights::new(g, &r_c, 4 * hidden, hidden, in_blocks);
        let mut body = Body::new(g, "lstm_bwd");
        let dh_rec = body.input("dh", hidden);
        let dc_next = body.input("dc", hidden);
        let dh_out = body.input("dh_out", hidden);
        let to_dc_t = body.input("to_dc", hidden);
        let factors_t = body.input("factors", 4 * hidden);
        let f_t = body.input("f", hidden);
        let b = &mut body.graph;
        let dh = b.op("Add", &[&dh_out, &dh_rec], vec![]);
        let via_h = b.op("Mul", &[&dh, &to_dc_t], vec![]);
        let dc = b.op("Add", &[&dc_next, &via_h], vec![]);
        let spread = b.op("Concat", &[&dc, &dh, &dc, &dc], vec![Attr::Int("axis", 1)]);
        let dgates = b.op("Mul", &[&spread, &factors_t], vec![]);
        let dc_prev = b.op("Mul", &[&dc, &f_t], vec![]);
        let dh_prev = r_blocks.product(b, &dgates, None);
        body.outputs(&[&dh_prev, &dc_prev, &dgates]);
        let zeros = zeros_state(g, &h0, 0, hidden);
        let outs = scan_node(
            g,
            body,
            &[&zeros, &zeros],
            &[dh_seq, &saved.to_dc, &saved.factors, &saved.forget],
            1,
            true,
        );
        let dgates = &outs[2];
        let dr = needed[1].then(|| {
            let h_prev = shifted_states(g, &h0, &h_seq_c);
            sum_outer(g, dgates, &h_prev, 4 * hidden, hidden)
        });
        vec![Some(dgates.clone()), dr]
    });
    h_seq
}
