//! Standard ONNX export of a trained model: `ids` int64 `[batch, seq]` -> one-hot
//! (a `Gather` on an identity table) or embedding `Gather` -> the standard `LSTM` /
//! `GRU` operator -> head -> `Gemm` -> `Sigmoid` (`score`, `[batch, 1]`) or `Softmax`
//! (`probs`, `[batch, V]`). Loads in ONNX Runtime and tract.
//!
//! The step-wise variant (last-state models, e.g. the generator) takes one token
//! and the state (`h0`, and `c0` for LSTM, each `[batch, H]`) and returns the
//! output with the new state (`h`, `c`), so a caller can stream tokens.

use anyhow::{bail, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};

use crate::model::{pad_pooling_weights, ModelConfig, Params};
use crate::onnx::{Attr, Dim, Elem, Graph, Value};

mod metadata;
pub use metadata::{pooling_head, ModelMetadata};

/// Opset of exported models: 18 takes `ReduceMean` axes as an input; ORT 1.31 and
/// tract 0.23 both run it.
pub const EXPORT_OPSET: i64 = 18;

/// Name of the token input.
pub const INPUT_IDS: &str = "ids";
/// Output name of a sigmoid model.
pub const OUTPUT_SCORE: &str = "score";
/// Output name of a softmax model.
pub const OUTPUT_PROBS: &str = "probs";

/// The whole-sequence inference model as ONNX bytes.
pub fn export_onnx(
    cfg: &ModelConfig,
    params: &Params,
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    let graph = inference_graph(cfg, params)?;
    Ok(graph.to_model_bytes_with_metadata(EXPORT_OPSET, &with_model_metadata(cfg, metadata)))
}

/// The one-token-at-a-time model as ONNX bytes (last-state head only).
pub fn export_step_onnx(
    cfg: &ModelConfig,
    params: &Params,
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    let graph = step_graph(cfg, params)?;
    Ok(graph.to_model_bytes_with_metadata(EXPORT_OPSET, &with_model_metadata(cfg, metadata)))
}

/// Name of the output a model's [`Output`] produces.
pub fn output_name(output: Output) -> &'static str {
    match output {
        Output::Sigmoid => OUTPUT_SCORE,
        Output::Softmax { .. } => OUTPUT_PROBS,
    }
}

fn with_model_metadata(cfg: &ModelConfig, extra: &[(String, String)]) -> Vec<(String, String)> {
    let model = ModelMetadata {
        cell: cfg.cell,
        hidden: cfg.hidden,
        head: cfg.head,
        output: cfg.output,
        pad_id: cfg.input.pad_id(),
    };
    model
        .entries()
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .chain(extra.iter().cloned())
        .collect()
}

/// The whole-sequence inference graph. A flatten head fixes `seq` to `maxlen`
/// (callers pad with PAD and truncate, as in training); other heads take any length,
/// and where the model has a PAD id a row ends at its first PAD, so a batch of texts
/// post-padded to one length scores as each text alone: as training skips the
/// padding steps, and as the runtime reads a text, whose tokens are never PAD. (The
/// step model and `Params::forward` read any id given them, PAD included.)
pub fn inference_graph(cfg: &ModelConfig, params: &Params) -> Result<Graph> {
    cfg.validate()?;
    params.check_shapes(cfg)?;
    let mut g = Graph::new("lstm_edge");
    let seq = match cfg.head.flatten_maxlen() {
        Some(maxlen) => Dim::Fixed(maxlen.into()),
        None => Dim::Sym("seq"),
    };
    let ids = g.input(INPUT_IDS, Elem::I64, &[Dim::Sym("batch"), seq]);
    let x = input_vectors(&mut g, cfg, params, &ids);
    let x = g.op("Transpose", &[&x], vec![Attr::Ints("perm", vec![1, 0, 2])]);
    let rec = recurrent(&mut g, cfg, params, &x, None, None);
    let features = match cfg.head {
        Head::Flatten { .. } | Head::FlattenTail { .. } => {
            // Y [seq, 1, batch, H] -> [batch, seq, 1, H] -> [batch, seq * H].
            let y = g.op(
                "Transpose",
                &[&rec.y],
                vec![Attr::Ints("perm", vec![2, 0, 1, 3])],
            );
            g.op("Flatten", &[&y], vec![Attr::Int("axis", 1)])
        }
        Head::Last | Head::Mean => match cfg.input.pad_id() {
            Some(pad) => masked_pool(&mut g, cfg.head, &ids, pad, &rec.y),
            None if cfg.head == Head::Last => squeeze(&mut g, &rec.y_h, 0),
            None => {
                let axes = g.const_i64(&[2], &[0, 1]);
                g.op(
                    "ReduceMean",
                    &[&rec.y, &axes],
                    vec![Attr::Int("keepdims", 0)],
                )
            }
        },
    };
    let out = dense_output(&mut g, cfg, params, &features);
    let width = cfg.output.width() as i64;
    g.output(
        &out,
        output_name(cfg.output),
        Elem::F32,
        &[Dim::Sym("batch"), Dim::Fixed(width)],
    );
    Ok(g)
}

/// The step graph: `ids` `[batch, 1]`, `h0` (and `c0`) `[batch, H]` in; the output,
/// `h` (and `c`) `[batch, H]` out.
pub fn step_graph(cfg: &ModelConfig, params: &Params) -> Result<Graph> {
    cfg.validate()?;
    params.check_shapes(cfg)?;
    if cfg.head != Head::Last {
        bail!(
            "step-wise export needs the last-state head (the model has {:?}); export the \
             whole-sequence model instead",
            cfg.head
        );
    }
    let hidden = cfg.hidden as i64;
    let state_shape = [Dim::Sym("batch"), Dim::Fixed(hidden)];
    let mut g = Graph::new("lstm_edge_step");
    let ids = g.input(INPUT_IDS, Elem::I64, &[Dim::Sym("batch"), Dim::Fixed(1)]);
    let h0 = g.input("h0", Elem::F32, &state_shape);
    let c0 = (cfg.cell == Cell::Lstm).then(|| g.input("c0", Elem::F32, &state_shape));
    let x = input_vectors(&mut g, cfg, params, &ids);
    let x = g.op("Transpose", &[&x], vec![Attr::Ints("perm", vec![1, 0, 2])]);
    let h0 = unsqueeze(&mut g, &h0, 0);
    let c0 = c0.map(|c0| unsqueeze(&mut g, &c0, 0));
    let rec = recurrent(&mut g, cfg, params, &x, Some(&h0), c0.as_ref());
    let h = squeeze(&mut g, &rec.y_h, 0);
    let out = dense_output(&mut g, cfg, params, &h);
    let width = cfg.output.width() as i64;
    g.output(
        &out,
        output_name(cfg.output),
        Elem::F32,
        &[Dim::Sym("batch"), Dim::Fixed(width)],
    );
    g.output(&h, "h", Elem::F32, &state_shape);
    if let Some(y_c) = &rec.y_c {
        let c = squeeze(&mut g, y_c, 0);
        g.output(&c, "c", Elem::F32, &state_shape);
    }
    Ok(g)
}

/// `[batch, seq]` ids -> `[batch, seq, input_dim]` vectors.
fn input_vectors(g: &mut Graph, cfg: &ModelConfig, params: &Params, ids: &Value) -> Value {
    let table = match &params.embedding {
        Some(e) => g.initializer("embedding", &e.dims_i64(), &e.data),
        None => {
            // One-hot as rows of an identity matrix: `Gather` runs everywhere `OneHot` may not.
            let n = cfg.vocab_rows();
            let mut eye = vec![0.0f32; n * n];
            (0..n).for_each(|i| eye[i * n + i] = 1.0);
            g.initializer("one_hot", &[n as i64, n as i64], &eye)
        }
    };
    g.op("Gather", &[&table, ids], vec![Attr::Int("axis", 0)])
}

struct Recurrent {
    y: Value,
    y_h: Value,
    y_c: Option<Value>,
}

/// The standard `LSTM`/`GRU` op on `[seq, batch, input]`, forward, layout 0.
fn recurrent(
    g: &mut Graph,
    cfg: &ModelConfig,
    params: &Params,
    x: &Value,
    h0: Option<&Value>,
    c0: Option<&Value>,
) -> Recurrent {
    let gh = cfg.gate_rows() as i64;
    let w = g.initializer("W", &[1, gh, params.w.dims[1] as i64], &params.w.data);
    let r = g.initializer("R", &[1, gh, cfg.hidden as i64], &params.r.data);
    let bias: Vec<f32> = params
        .wb
        .data
        .iter()
        .chain(&params.rb.data)
        .copied()
        .collect();
    let b = g.initializer("B", &[1, 2 * gh], &bias);
    let hidden = Attr::Int("hidden_size", cfg.hidden as i64);
    match cfg.cell {
        Cell::Lstm => {
            let mut outs = g.op_multi(
                "LSTM",
                &[Some(x), Some(&w), Some(&r), Some(&b), None, h0, c0],
                vec![hidden],
                3,
            );
            let y_c = outs.pop();
            let y_h = outs.pop().expect("LSTM has 3 outputs");
            let y = outs.pop().expect("LSTM has 3 outputs");
            Recurrent { y, y_h, y_c }
        }
        Cell::Gru => {
            let mut outs = g.op_multi(
                "GRU",
                &[Some(x), Some(&w), Some(&r), Some(&b), None, h0],
                vec![hidden, Attr::Int("linear_before_reset", 1)],
                2,
            );
            let y_h = outs.pop().expect("GRU has 2 outputs");
            let y = outs.pop().expect("GRU has 2 outputs");
            Recurrent { y, y_h, y_c: None }
        }
    }
}

/// The last-state or mean head over each row's steps before its first PAD, from `Y`
/// `[seq, 1, batch, H]` to `[batch, H]`, with the training step's weights. Built from
/// ops that tract and ONNX Runtime both run (`sequence_lens` is not one).
fn masked_pool(g: &mut Graph, head: Head, ids: &Value, pad: u16, y: &Value) -> Value {
    let weights = pad_pooling_weights(g, ids, 1, pad, head);
    // [batch, seq] -> [seq, batch, 1], against Y as [seq, batch, H].
    let weights = g.op(
        "Transpose",
        &[&weights],
        vec![Attr::Ints("perm", vec![1, 0])],
    );
    let weights = unsqueeze(g, &weights, 2);
    let y = squeeze(g, y, 1);
    let weighted = g.op("Mul", &[&y, &weights], vec![]);
    let step_axis = g.const_i64(&[1], &[0]);
    g.op(
        "ReduceSum",
        &[&weighted, &step_axis],
        vec![Attr::Int("keepdims", 0)],
    )
}

fn squeeze(g: &mut Graph, x: &Value, axis: i64) -> Value {
    let axes = g.const_i64(&[1], &[axis]);
    g.op("Squeeze", &[x, &axes], vec![])
}

fn unsqueeze(g: &mut Graph, x: &Value, axis: i64) -> Value {
    let axes = g.const_i64(&[1], &[axis]);
    g.op("Unsqueeze", &[x, &axes], vec![])
}

/// `Gemm` with the `[outputs, features]` kernel, then the output activation.
fn dense_output(g: &mut Graph, cfg: &ModelConfig, params: &Params, features: &Value) -> Value {
    let w = g.initializer("head_w", &params.head_w.dims_i64(), &params.head_w.data);
    let b = g.initializer("head_b", &params.head_b.dims_i64(), &params.head_b.data);
    let logits = g.op("Gemm", &[features, &w, &b], vec![Attr::Int("transB", 1)]);
    match cfg.output {
        Output::Sigmoid => g.op("Sigmoid", &[&logits], vec![]),
        Output::Softmax { .. } => g.op("Softmax", &[&logits], vec![Attr::Int("axis", -1)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InputConfig;
    use crate::onnx::proto;
    use crate::ort_env::{session_from_bytes, Device};
    use ort::value::Tensor;
    use prost::Message;

    fn cfg(cell: Cell, head: Head, output: Output) -> ModelConfig {
        ModelConfig {
            cell,
            input: InputConfig::Chars {
                table: b"abcdef".to_vec(),
                lowercase: true,
                unk: true,
                pad: true,
            },
            hidden: 5,
            head,
            output,
            dropout: 0.0,
        }
    }

    fn run(
        bytes: &[u8],
        inputs: Vec<(&str, Vec<usize>, Vec<f32>)>,
        ids: &[i64],
        batch: usize,
        output: &str,
    ) -> Result<Vec<Vec<f32>>> {
        let mut session = session_from_bytes(bytes, Device::Cpu, 1)?;
        let mut feed: Vec<(String, ort::value::DynValue)> = vec![(
            INPUT_IDS.to_string(),
            Tensor::from_array(([batch, ids.len() / batch], ids.to_vec()))?.into_dyn(),
        )];
        for (name, shape, data) in inputs {
            feed.push((
                name.to_string(),
                Tensor::from_array((shape, data))?.into_dyn(),
            ));
        }
        let outputs = session.run(feed)?;
        let mut all = Vec::new();
        for name in [output, "h", "c"] {
            if let Some(v) = outputs.get(name) {
                all.push(v.try_extract_tensor::<f32>()?.1.to_vec());
            }
        }
        Ok(all)
    }

    #[test]
    fn exported_model_declares_ids_and_score() -> Result<()> {
        let c = cfg(Cell::Lstm, Head::Flatten { maxlen: 4 }, Output::Sigmoid);
        let bytes = export_onnx(&c, &Params::init(&c, 1), &[("k".into(), "v".into())])?;
        let m = proto::ModelProto::decode(bytes.as_slice())?;
        assert_eq!(m.opset_import[0].version, EXPORT_OPSET);
        let gp = m.graph.expect("graph");
        assert_eq!(gp.input[0].name, INPUT_IDS);
        assert_eq!(gp.output[0].name, OUTPUT_SCORE);
        assert!(gp.node.iter().any(|n| n.op_type == "LSTM"));
        assert!(m
            .metadata_props
            .iter()
            .any(|p| p.key == "k" && p.value == "v"));
        assert!(m
            .metadata_props
            .iter()
            .any(|p| p.key == "lstm_edge.pad_id" && p.value == "7"));
        Ok(())
    }

    #[test]
    fn ort_matches_the_reference_for_a_batch() -> Result<()> {
        for cell in [Cell::Lstm, Cell::Gru] {
            let c = cfg(cell, Head::Mean, Output::Sigmoid);
            let p = Params::init(&c, 11);
            let bytes = export_onnx(&c, &p, &[])?;
            let seqs: [[u16; 3]; 2] = [[0, 6, 2], [5, 5, 1]];
            let ids: Vec<i64> = seqs.iter().flatten().map(|&i| i as i64).collect();
            let got = run(&bytes, vec![], &ids, 2, OUTPUT_SCORE)?;
            for (b, s) in seqs.iter().enumerate() {
                let want = p.forward(&c, s)[0];
                assert!(
                    (got[0][b] - want).abs() < 1e-5,
                    "{cell:?} row {b}: {} vs {want}",
                    got[0][b]
                );
            }
        }
        Ok(())
    }

    #[test]
    fn step_model_streams_like_the_whole_sequence() -> Result<()> {
        for cell in [Cell::Lstm, Cell::Gru] {
            let c = cfg(cell, Head::Last, Output::Softmax { classes: 8 });
            let p = Params::init(&c, 4);
            let bytes = export_step_onnx(&c, &p, &[])?;
            let seq = [3u16, 0, 7, 2];
            let (mut h, mut cs) = (vec![0.0f32; 5], vec![0.0f32; 5]);
            let mut probs = Vec::new();
            for &id in &seq {
                let mut state = vec![("h0", vec![1, 5], h.clone())];
                if cell == Cell::Lstm {
                    state.push(("c0", vec![1, 5], cs.clone()));
                }
                let mut outs = run(&bytes, state, &[id as i64], 1, OUTPUT_PROBS)?;
                if cell == Cell::Lstm {
                    cs = outs.pop().expect("c output");
                }
                h = outs.pop().expect("h output");
                probs = outs.pop().expect("probs output");
            }
            let want = p.forward(&c, &seq);
            for (a, b) in probs.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{cell:?}: {a} vs {b}");
            }
        }
        Ok(())
    }

    #[test]
    fn step_export_refuses_other_heads() {
        let c = cfg(Cell::Lstm, Head::Mean, Output::Sigmoid);
        let err = export_step_onnx(&c, &Params::init(&c, 1), &[]).unwrap_err();
        assert!(err.to_string().contains("last-state head"), "{err}");
    }
}
