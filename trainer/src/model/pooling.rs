//! The PAD mask of a last-state or mean head, one graph piece for the training step
//! and the export, so that both read a post-padded row alike.

use lstm_edge_runtime::format::Head;

use crate::onnx::{Attr, Elem, Graph, Value};

/// Weights shaped as `ids` (steps along `step_axis`) that pool a post-padded batch's
/// hidden states by a sum over steps: a row's steps before its first `pad` id are its
/// tokens; the mean head weighs each by `1 / len` and the last-state head puts 1 on
/// the last one. A row without tokens pools to zeros, like the runtime's empty text.
pub(crate) fn pad_pooling_weights(
    g: &mut Graph,
    ids: &Value,
    step_axis: i64,
    pad: u16,
    head: Head,
) -> Value {
    let pad = g.const_i64(&[], &[i64::from(pad)]);
    let is_pad = g.op("Equal", &[ids, &pad], vec![]);
    let is_pad = g.cast(&is_pad, Elem::F32);
    let axis = g.const_i64(&[], &[step_axis]);
    let pads_so_far = g.op("CumSum", &[&is_pad, &axis], vec![]);
    let half = g.const_f32(&[], &[0.5]);
    let is_token = g.op("Less", &[&pads_so_far, &half], vec![]);
    let is_token = g.cast(&is_token, Elem::F32);
    let axes = g.const_i64(&[1], &[step_axis]);
    let tokens = g.op(
        "ReduceSum",
        &[&is_token, &axes],
        vec![Attr::Int("keepdims", 1)],
    );
    if head == Head::Last {
        // The token whose running count reaches the row's count.
        let running = g.op("CumSum", &[&is_token, &axis], vec![]);
        let at_end = g.op("Equal", &[&running, &tokens], vec![]);
        let at_end = g.cast(&at_end, Elem::F32);
        g.op("Mul", &[&at_end, &is_token], vec![])
    } else {
        let one = g.const_f32(&[], &[1.0]);
        let steps = g.op("Max", &[&tokens, &one], vec![]);
        g.op("Div", &[&is_token, &steps], vec![])
    }
}
