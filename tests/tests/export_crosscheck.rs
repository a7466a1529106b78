//! Exported ONNX models load in tract and in ONNX Runtime, and both agree with the
//! trainer's f64 reference forward pass (`Params::forward`) within 1e-5, for LSTM
//! and GRU, every head, sigmoid and softmax outputs, char and word input. A
//! last-state or mean head reads a row up to its first PAD, so a padded batch scores
//! as each text alone.

use anyhow::{Context, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_trainer::export::{self, INPUT_IDS};
use lstm_edge_trainer::model::{InputConfig, ModelConfig, Params};
use lstm_edge_trainer::ort_env::{session_from_bytes, Device};
use tract_onnx::prelude::*;

const TOLERANCE: f32 = 1e-5;
const BATCH: usize = 2;
const SEQ: usize = 6;

fn char_input() -> InputConfig {
    InputConfig::Chars {
        table: b"abcdefg".to_vec(),
        lowercase: true,
        unk: true,
        pad: true,
    }
}

fn word_input() -> InputConfig {
    let mut strings = Vec::new();
    let mut offsets = vec![0u32];
    for word in ["awful", "film", "good", "great", "movie"] {
        strings.extend_from_slice(word.as_bytes());
        offsets.push(strings.len() as u32);
    }
    InputConfig::Words {
        strings,
        offsets: offsets.iter().flat_map(|o| o.to_le_bytes()).collect(),
        embed_dim: 4,
    }
}

fn configs() -> Vec<ModelConfig> {
    let mut out = Vec::new();
    for cell in [Cell::Lstm, Cell::Gru] {
        for head in [Head::Flatten { maxlen: SEQ as u32 }, Head::Last, Head::Mean] {
            for output in [Output::Sigmoid, Output::Softmax { classes: 5 }] {
                for input in [char_input(), word_input()] {
                    out.push(ModelConfig {
                        cell,
                        input,
                        hidden: 3,
                        head,
                        output,
                        dropout: 0.2,
                    });
                }
            }
        }
    }
    out
}

/// Reproducible token ids covering every id (PAD and UNK included).
fn sequences(cfg: &ModelConfig, seed: usize) -> Vec<Vec<u16>> {
    let rows = cfg.vocab_rows();
    (0..BATCH)
        .map(|b| {
            (0..SEQ)
                .map(|t| ((seed * 7 + b * 5 + t * 3) % rows) as u16)
                .collect()
        })
        .collect()
}

/// Random parameters, with biases made non-zero so every term is exercised.
fn params(cfg: &ModelConfig, seed: u64) -> Params {
    let mut p = Params::init(cfg, seed);
    for (i, b) in p.wb.data.iter_mut().enumerate() {
        *b += 0.1 * ((i % 5) as f32 - 2.0);
    }
    for (i, b) in p.rb.data.iter_mut().enumerate() {
        *b -= 0.05 * ((i % 3) as f32 - 1.0);
    }
    for (i, b) in p.head_b.data.iter_mut().enumerate() {
        *b = 0.3 - 0.2 * i as f32;
    }
    p
}

/// The ids the exported model reads of a row: a last-state or mean head stops at the
/// row's first PAD; a flatten head reads them all.
fn read_part<'a>(cfg: &ModelConfig, row: &'a [u16]) -> &'a [u16] {
    match (cfg.head.flatten_maxlen(), cfg.input.pad_id()) {
        (None, Some(pad)) => &row[..row.iter().position(|&id| id == pad).unwrap_or(row.len())],
        _ => row,
    }
}

fn ids_flat(seqs: &[Vec<u16>]) -> Vec<i64> {
    seqs.iter().flatten().map(|&i| i64::from(i)).collect()
}

fn run_tract(bytes: &[u8], inputs: Vec<Tensor>) -> Result<Vec<Vec<f32>>> {
    let mut model = tract_onnx::onnx().model_for_read(&mut &bytes[..])?;
    for (i, t) in inputs.iter().enumerate() {
        model = model.with_input_fact(i, InferenceFact::dt_shape(t.datum_type(), t.shape()))?;
    }
    let runnable = model.into_optimized()?.into_runnable()?;
    let outputs = runnable.run(inputs.into_iter().map(|t| t.into_tvalue()).collect())?;
    outputs
        .iter()
        .map(|o| Ok(o.to_plain_array_view::<f32>()?.iter().copied().collect()))
        .collect()
}

fn run_ort(
    bytes: &[u8],
    inputs: Vec<(&str, Vec<usize>, TensorData)>,
    outputs: &[&str],
) -> Result<Vec<Vec<f32>>> {
    let mut session = session_from_bytes(bytes, Device::Cpu, 1)?;
    let mut feed: Vec<(String, ort::value::DynValue)> = Vec::new();
    for (name, shape, data) in inputs {
        let value = match data {
            TensorData::I64(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
            TensorData::F32(v) => ort::value::Tensor::from_array((shape, v))?.into_dyn(),
        };
        feed.push((name.to_string(), value));
    }
    let results = session.run(feed)?;
    outputs
        .iter()
        .map(|name| {
            let (_, data) = results[*name].try_extract_tensor::<f32>()?;
            Ok(data.to_vec())
        })
        .collect()
}

enum TensorData {
    I64(Vec<i64>),
    F32(Vec<f32>),
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= TOLERANCE,
        "{what}: max abs error {worst:e}\n got {got:?}\nwant {want:?}"
    );
    worst
}

fn describe(cfg: &ModelConfig) -> String {
    let input = match cfg.input {
        InputConfig::Chars { .. } => "chars",
        InputConfig::Words { .. } => "words",
    };
    format!("{:?}/{:?}/{:?}/{input}", cfg.cell, cfg.head, cfg.output)
}

#[test]
fn whole_sequence_export_matches_reference_in_tract_and_ort() -> Result<()> {
    let mut worst = (0.0f32, 0.0f32);
    for (n, cfg) in configs().iter().enumerate() {
        let what = describe(cfg);
        let p = params(cfg, n as u64);
        let bytes = export::export_onnx(cfg, &p, &[]).with_context(|| what.clone())?;
        let seqs = sequences(cfg, n);
        let want: Vec<f32> = seqs
            .iter()
            .flat_map(|s| p.forward(cfg, read_part(cfg, s)))
            .collect();
        let ids = ids_flat(&seqs);

        let tract_in =
            tract_ndarray::Array2::from_shape_vec((BATCH, SEQ), ids.clone())?.into_tensor();
        let tract_out =
            run_tract(&bytes, vec![tract_in]).with_context(|| format!("tract: {what}"))?;
        worst.0 = worst
            .0
            .max(assert_close(&format!("tract {what}"), &tract_out[0], &want));

        let name = export::output_name(cfg.output);
        let ort_out = run_ort(
            &bytes,
            vec![(INPUT_IDS, vec![BATCH, SEQ], TensorData::I64(ids))],
            &[name],
        )
        .with_context(|| format!("ort: {what}"))?;
        worst.1 = worst
            .1
            .max(assert_close(&format!("ort {what}"), &ort_out[0], &want));
    }
    println!(
        "{} configurations: max abs error vs f64 reference: tract {:e}, ort {:e}",
        configs().len(),
        worst.0,
        worst.1
    );
    Ok(())
}

/// Texts of 6, 4, 1 and 0 tokens post-padded to one length give, in one batch, what
/// each text gives alone, for last-state and mean heads; without the PAD mask the
/// padded rows would read the PAD steps too.
#[test]
fn a_padded_batch_scores_each_row_as_its_unpadded_text() -> Result<()> {
    let mut checked = 0;
    for cfg in configs()
        .iter()
        .filter(|c| c.head.flatten_maxlen().is_none())
    {
        let what = describe(cfg);
        let p = params(cfg, 11);
        let bytes = export::export_onnx(cfg, &p, &[])?;
        let pad = cfg.input.pad_id().expect("test inputs have PAD");
        let tokens: Vec<u16> = (0..cfg.vocab_rows() as u16)
            .filter(|&id| id != pad)
            .collect();
        let texts: Vec<Vec<u16>> = [6usize, 4, 1, 0]
            .iter()
            .map(|&len| {
                (0..len)
                    .map(|t| tokens[(3 * t + len) % tokens.len()])
                    .collect()
            })
            .collect();
        let rows: Vec<Vec<u16>> = texts
            .iter()
            .map(|t| {
                t.iter()
                    .copied()
                    .chain(std::iter::repeat(pad))
                    .take(SEQ)
                    .collect()
            })
            .collect();
        let want: Vec<f32> = texts.iter().flat_map(|t| p.forward(cfg, t)).collect();
        let unmasked: Vec<f32> = rows.iter().flat_map(|r| p.forward(cfg, r)).collect();
        let ids = ids_flat(&rows);
        let tract_in =
            tract_ndarray::Array2::from_shape_vec((rows.len(), SEQ), ids.clone())?.into_tensor();
        let tract_out = run_tract(&bytes, vec![tract_in])?;
        assert_close(&format!("tract padded {what}"), &tract_out[0], &want);
        let ort_out = run_ort(
            &bytes,
            vec![(INPUT_IDS, vec![rows.len(), SEQ], TensorData::I64(ids))],
            &[export::output_name(cfg.output)],
        )?;
        assert_close(&format!("ort padded {what}"), &ort_out[0], &want);
        // The check can fail: reading the PAD steps scores the padded rows otherwise.
        let gap = unmasked
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            gap > 100.0 * TOLERANCE,
            "{what}: PAD steps change nothing ({gap:e})"
        );
        checked += 1;
    }
    assert_eq!(checked, 16);
    Ok(())
}

#[test]
fn step_export_streams_like_the_reference_in_tract_and_ort() -> Result<()> {
    for cell in [Cell::Lstm, Cell::Gru] {
        for input in [char_input(), word_input()] {
            let cfg = ModelConfig {
                cell,
                input,
                hidden: 4,
                head: Head::Last,
                output: Output::Softmax { classes: 6 },
                dropout: 0.0,
            };
            let what = describe(&cfg);
            let p = params(&cfg, 99);
            let bytes = export::export_step_onnx(&cfg, &p, &[])?;
            let seq = &sequences(&cfg, 3)[0];
            let h = cfg.hidden;
            let lstm = cell == Cell::Lstm;
            let names: Vec<&str> = if lstm {
                vec!["probs", "h", "c"]
            } else {
                vec!["probs", "h"]
            };
            let (mut tract_state, mut ort_state) = (
                vec![vec![0.0f32; h]; names.len() - 1],
                vec![vec![0.0f32; h]; names.len() - 1],
            );
            for (t, &id) in seq.iter().enumerate() {
                let want = p.forward(&cfg, &seq[..=t]);

                let mut tract_in = vec![tract_ndarray::arr2(&[[i64::from(id)]]).into_tensor()];
                for s in &tract_state {
                    tract_in.push(
                        tract_ndarray::Array2::from_shape_vec((1, h), s.clone())?.into_tensor(),
                    );
                }
                let mut out =
                    run_tract(&bytes, tract_in).with_context(|| format!("tract step: {what}"))?;
                assert_close(&format!("tract step {t} {what}"), &out[0], &want);
                tract_state = out.split_off(1);

                let mut ort_in =
                    vec![(INPUT_IDS, vec![1, 1], TensorData::I64(vec![i64::from(id)]))];
                ort_in.push(("h0", vec![1, h], TensorData::F32(ort_state[0].clone())));
                if lstm {
                    ort_in.push(("c0", vec![1, h], TensorData::F32(ort_state[1].clone())));
                }
                let mut out =
                    run_ort(&bytes, ort_in, &names).with_context(|| format!("ort step: {what}"))?;
                assert_close(&format!("ort step {t} {what}"), &out[0], &want);
                ort_state = out.split_off(1);
            }
        }
    }
    Ok(())
}

/// The cross-check would catch a gate-order mistake: exporting `W` with the
/// LSTM's input and forget blocks swapped (Keras' i,f,c,o read as ONNX's i,o,f,c,
/// say) moves the output far beyond the tolerance.
#[test]
fn a_gate_order_mistake_is_detected() -> Result<()> {
    let cfg = ModelConfig {
        cell: Cell::Lstm,
        input: char_input(),
        hidden: 3,
        head: Head::Last,
        output: Output::Softmax { classes: 5 },
        dropout: 0.0,
    };
    let p = params(&cfg, 5);
    let mut swapped = p.clone();
    let (h, cols) = (cfg.hidden, cfg.input_dim());
    let block = h * cols;
    let (input_gate, rest) = swapped.w.data.split_at_mut(block);
    input_gate.swap_with_slice(&mut rest[block..2 * block]);
    let bytes = export::export_onnx(&cfg, &swapped, &[])?;
    let seqs = sequences(&cfg, 1);
    let want: Vec<f32> = seqs.iter().flat_map(|s| p.forward(&cfg, s)).collect();
    let ids = tract_ndarray::Array2::from_shape_vec((BATCH, SEQ), ids_flat(&seqs))?.into_tensor();
    let got = run_tract(&bytes, vec![ids])?;
    let worst = got[0]
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst > 100.0 * TOLERANCE,
        "swapped gates went unnoticed: {worst:e}"
    );
    Ok(())
}
