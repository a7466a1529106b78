//! GRU (`linear_before_reset = 1`) as a forward `Scan` plus a reverse `Scan`
//! for its gradient.
//!
//! Per step (ONNX order `z, r, h`): `hr = h·Rᵀ + rb`,
//! `[z, r] = σ(xp[..2H] + hr[..2H])`, `n = tanh(xp[2H..] + r ⊙ hr[2H..])`,
//! `h_t = n + z ⊙ (h_{t-1} - n)`.
//!
//! Backward, per step from the last: `dh = dh_out_t + dh_rec`,
//! `dz' = dh ⊙ (h_{t-1} - n) ⊙ σ'(z)`, `dn' = dh ⊙ (1 - z) ⊙ tanh'(n)`,
//! `dr' = dn' ⊙ hr_n ⊙ σ'(r)`; the input side gets `[dz', dr', dn']`, the
//! recurrent side `[dz', dr', dn' ⊙ r]`, and `dh_{t-1} = dh ⊙ z + dhr · R`.

use super::{
    one_minus, scan_node, shifted_states, sigmoid_slope, split, sum_outer, tanh_slope, zeros_state,
    BlockedWeights, Body,
};
use crate::autodiff::Tape;
use crate::onnx::{Attr, Value};

pub(super) fn scan(tape: &mut Tape, xproj: &Value, r: &Value, rb: &Value, hidden: i64) -> Value {
    let in_blocks = tape.backend().sums_products_in_blocks();
    let g = tape.graph();
    let h0 = zeros_state(g, xproj, 1, hidden);
    // `h · Rᵀ` with `Rᵀ` formed once (see lstm.rs).
    let r_t = g.op("Transpose", &[r], vec![Attr::Ints("perm", vec![1, 0])]);
    let r_t = BlockedWeights::new(g, &r_t, hidden, 3 * hidden, in_blocks);
    let mut body = Body::new(g, "gru_fwd");
    let h_prev = body.input("h", hidden);
    let xp = body.input("xp", 3 * hidden);
    let b = &mut body.graph;
    let hr = r_t.product(b, &h_prev, Some(rb));
    let xs = split(b, &xp, 1, &[2 * hidden, hidden]);
    let hs = split(b, &hr, 1, &[2 * hidden, hidden]);
    let zr_pre = b.op("Add", &[&xs[0], &hs[0]], vec![]);
    let zr = b.op("Sigmoid", &[&zr_pre], vec![]);
    let z_r = split(b, &zr, 1, &[hidden, hidden]);
    let gated = b.op("Mul", &[&z_r[1], &hs[1]], vec![]);
    let n_pre = b.op("Add", &[&xs[1], &gated], vec![]);
    let n = b.op("Tanh", &[&n_pre], vec![]);
    let diff = b.op("Sub", &[&h_prev, &n], vec![]);
    let kept = b.op("Mul", &[&z_r[0], &diff], vec![]);
    let h = b.op("Add", &[&n, &kept], vec![]);
    body.outputs(&[&h, &h, &zr, &n, &hs[1]]);
    let outs = scan_node(tape.graph(), body, &[&h0], &[xproj], 4, false);
    let h_seq = outs[1].clone();
    let (zr_seq, n_seq, hn_seq) = (outs[2].clone(), outs[3].clone(), outs[4].clone());

    let (h_seq_c, r_c) = (h_seq.clone(), r.clone());
    tape.record(&[xproj, r, rb], &[&h_seq], move |g, dys, needed| {
        let Some(dh_seq) = &dys[0] else {
            return vec![None, None, None];
        };
        let h_prev = shifted_states(g, &h0, &h_seq_c);
        let z_r = split(g, &zr_seq, 2, &[hidden, hidden]);
        let (z, r_gate) = (&z_r[0], &z_r[1]);
        let diff = g.op("Sub", &[&h_prev, &n_seq], vec![]);
        let z_slope = sigmoid_slope(g, z);
        let to_dz = g.op("Mul", &[&diff, &z_slope], vec![]);
        let keep_n = one_minus(g, z);
        let n_slope = tanh_slope(g, &n_seq);
        let to_dn = g.op("Mul", &[&keep_n, &n_slope], vec![]);
        let r_slope = sigmoid_slope(g, r_gate);
        let to_dr = g.op("Mul", &[&hn_seq, &r_slope], vec![]);

        let r_blocks = BlockedWeights::new(g, &r_c, 3 * hidden, hidden, in_blocks);
        let mut body = Body::new(g, "gru_bwd");
        let dh_rec = body.input("dh", hidden);
        let dh_out = body.input("dh_out", hidden);
        let to_dz_t = body.input("to_dz", hidden);
        let to_dn_t = body.input("to_dn", hidden);
        let to_dr_t = body.input("to_dr", hidden);
        let r_t = body.input("r", hidden);
        let z_t = body.input("z", hidden);
        let b = &mut body.graph;
        let dh = b.op("Add", &[&dh_out, &dh_rec], vec![]);
        let dz = b.op("Mul", &[&dh, &to_dz_t], vec![]);
        let dn = b.op("Mul", &[&dh, &to_dn_t], vec![]);
        let dr = b.op("Mul", &[&dn, &to_dr_t], vec![]);
        let dhn = b.op("Mul", &[&dn, &r_t], vec![]);
        let dxp = b.op("Concat", &[&dz, &dr, &dn], vec![Attr::Int("axis", 1)]);
        let dhr = b.op("Concat", &[&dz, &dr, &dhn], vec![Attr::Int("axis", 1)]);
        let direct = b.op("Mul", &[&dh, &z_t], vec![]);
        // `direct` as the product's bias: ONNX Runtime fuses `MatMul` + `Add` into
        // a `Gemm` that starts from it, and so does this.
        let dh_prev = r_blocks.product(b, &dhr, Some(&direct));
        body.outputs(&[&dh_prev, &dxp, &dhr]);
        let zeros = zeros_state(g, &h0, 0, hidden);
        let outs = scan_node(
            g,
            body,
            &[&zeros],
            &[dh_seq, &to_dz, &to_dn, &to_dr, r_gate, z],
            2,
            true,
        );
        let (dxp, dhr) = (&outs[1], &outs[2]);
        let dr = needed[1].then(|| sum_outer(g, dhr, &h_prev, 3 * hidden, hidden));
        let drb = needed[2].then(|| {
            let axes = g.const_i64(&[2], &[0, 1]);
            g.op("ReduceSum", &[dhr, &axes], vec![Attr::Int("keepdims", 0)])
        });
        vec![Some(dxp.clone()), dr, drb]
    });
    h_seq
}
