//! `lstm-edge bench`: per-generated-char latency (G) and per-review latency
//! (W, C) of the runtime's integer and f32 paths, tract and ONNX Runtime, all
//! measured in one run on the same weights, with the ratios.
//!
//! tract and ORT get their best shape for each job: the step-wise ONNX model fed
//! its own `h`/`c` back for generation, the whole-sequence model for reviews.
//! Weights are random with the workload's exact shape: latency does not depend
//! on their values.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lstm_edge_runtime::builder::ScaleScheme;
use lstm_edge_runtime::format::{Cell, Head, Output, MAX_HIDDEN};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Logits, Model, Network, Rng, State, Temperature};
use lstm_edge_trainer::export::{export_onnx, export_step_onnx};
use lstm_edge_trainer::model::{InputConfig, ModelConfig, Params};
use lstm_edge_trainer::ort_env::{session_from_bytes, Device};
use lstm_edge_trainer::quantize::model_spec;
use serde::Serialize;
use tract_onnx::prelude::*;

/// One engine on one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub workload: String,
    pub engine: String,
    /// Microseconds per generated char (G) or per review (W, C).
    pub micros: f64,
    /// This engine's time over the runtime integer path's.
    pub vs_runtime_int: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Time spent measuring each engine on each workload.
    pub per_engine: Duration,
    /// ORT intra-op threads (tract is single-threaded).
    pub ort_threads: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            per_engine: Duration::from_millis(1500),
            ort_threads: 1,
        }
    }
}

/// The benchmark shapes, from DESIGN.md's workload table.
pub fn workloads() -> Vec<(&'static str, ModelConfig)> {
    let notebook_chars = b"abcdefghijklmnopqrstuvwxyz123456789\"'?!.,:; ".to_vec();
    let (strings, offsets) = lstm_edge_runtime::tokenize::words::encode_vocab(
        (0..5000).map(|i| format!("w{i:05}").into_bytes()),
    );
    let g = |cell| ModelConfig {
        cell,
        input: InputConfig::Chars {
            table: (0..50u8).map(|i| b'!' + i).collect(),
            lowercase: false,
            unk: false,
            pad: false,
        },
        hidden: 128,
        head: Head::Last,
        output: Output::Softmax { classes: 50 },
        dropout: 0.0,
    };
    vec![
        ("G (LSTM 128, 50 chars), per char", g(Cell::Lstm)),
        ("G-GRU (GRU 128, 50 chars), per char", g(Cell::Gru)),
        (
            "W (emb 300, LSTM 50, maxlen 200), per review",
            ModelConfig {
                cell: Cell::Lstm,
                input: InputConfig::Words {
                    strings,
                    offsets,
                    embed_dim: 300,
                },
                hidden: 50,
                head: Head::Flatten { maxlen: 200 },
                output: Output::Sigmoid,
                dropout: 0.0,
            },
        ),
        (
            "C (one-hot 46, LSTM 40, maxlen 1500), per review",
            ModelConfig {
                cell: Cell::Lstm,
                input: InputConfig::Chars {
                    table: notebook_chars,
                    lowercase: true,
                    unk: true,
                    pad: true,
                },
                hidden: 40,
                head: Head::Flatten { maxlen: 1500 },
                output: Output::Sigmoid,
                dropout: 0.0,
            },
        ),
    ]
}

/// Mean seconds per call of `f`, over at least `budget`.
fn time_per_call(budget: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget || calls < 3 {
        f()?;
        calls += 1;
    }
    Ok(start.elapsed().as_secs_f64() / calls as f64)
}

fn runtime_generate<N: Numeric>(blob: &[u8], budget: Duration) -> Result<f64> {
    let model = Model::from_bytes(blob)?;
    let net = Network::<N>::new(&model)?;
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    let mut logits = Box::new(Logits::<N, 64>::new());
    let mut rng = Rng::new(1);
    net.feed(&mut state, 0)?;
    time_per_call(budget, || {
        net.sample_next(
            &mut state,
            &mut logits,
            Temperature::from_milli(500),
            &mut rng,
        )?;
        Ok(())
    })
}

fn runtime_review<N: Numeric>(blob: &[u8], review: &[u16], budget: Duration) -> Result<f64> {
    let model = Model::from_bytes(blob)?;
    let net = Network::<N>::new(&model)?;
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    time_per_call(budget, || {
        state.reset();
        for &id in review {
            net.feed(&mut state, id)?;
        }
        std::hint::black_box(net.finish(&mut state)?);
        Ok(())
    })
}

fn pick(probs: &[f32], rng: &mut Rng) -> usize {
    let target = rng.next_f32() * probs.iter().sum::<f32>();
    let mut acc = 0.0;
    probs
        .iter()
        .position(|&p| {
            acc += p;
            acc > target
        })
        .unwrap_or(0)
}

fn tract_generate(onnx: &[u8], cfg: &ModelConfig, budget: Duration) -> Result<f64> {
    let h = cfg.hidden;
    let lstm = cfg.cell == Cell::Lstm;
    let mut model = tract_onnx::onnx().model_for_read(&mut &onnx[..])?;
    model.set_input_fact(0, i64::fact([1, 1]).into())?;
    model.set_input_fact(1, f32::fact([1, h]).into())?;
    if lstm {
        model.set_input_fact(2, f32::fact([1, h]).into())?;
    }
    let plan = model.into_optimized()?.into_runnable()?;
    let mut hs = Tensor::zero::<f32>(&[1, h])?;
    let mut cs = Tensor::zero::<f32>(&[1, h])?;
    let mut id = 0usize;
    let mut rng = Rng::new(1);
    time_per_call(budget, || {
        let ids = Tensor::from_shape(&[1, 1], &[id as i64])?;
        let mut inputs = tvec!(ids.into_tvalue(), hs.clone().into_tvalue());
        if lstm {
            inputs.push(cs.clone().into_tvalue());
        }
        let out = plan.run(inputs)?;
        id = pick(
            out[0]
                .to_plain_array_view::<f32>()?
                .as_slice()
                .context("probs")?,
            &mut rng,
        );
        hs = out[1].clone().into_tensor();
        if lstm {
            cs = out[2].clone().into_tensor();
        }
        Ok(())
    })
}

fn tract_review(onnx: &[u8], review: &[u16], budget: Duration) -> Result<f64> {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])?
        .with_input_fact(0, i64::fact([1, review.len()]).into())?
        .into_optimized()?
        .into_runnable()?;
    let ids: Vec<i64> = review.iter().map(|&i| i as i64).collect();
    let input = Tensor::from_shape(&[1, review.len()], &ids)?;
    time_per_call(budget, || {
        std::hint::black_box(plan.run(tvec!(input.clone().into_tvalue()))?);
        Ok(())
    })
}

fn ort_generate(onnx: &[u8], cfg: &ModelConfig, threads: usize, budget: Duration) -> Result<f64> {
    let h = cfg.hidden;
    let lstm = cfg.cell == Cell::Lstm;
    let mut session = session_from_bytes(onnx, Device::Cpu, threads)?;
    let mut hs = vec![0f32; h];
    let mut cs = vec![0f32; h];
    let mut id = 0i64;
    let mut rng = Rng::new(1);
    time_per_call(budget, || {
        let mut feed: Vec<(String, ort::value::DynValue)> = vec![
            (
                "ids".into(),
                ort::value::Tensor::from_array(([1usize, 1], vec![id]))?.into_dyn(),
            ),
            (
                "h0".into(),
                ort::value::Tensor::from_array(([1usize, h], hs.clone()))?.into_dyn(),
            ),
        ];
        if lstm {
            feed.push((
                "c0".into(),
                ort::value::Tensor::from_array(([1usize, h], cs.clone()))?.into_dyn(),
            ));
        }
        let out = session.run(feed)?;
        let (_, probs) = out["probs"].try_extract_tensor::<f32>()?;
        id = pick(probs, &mut rng) as i64;
        hs.copy_from_slice(out["h"].try_extract_tensor::<f32>()?.1);
        if lstm {
            cs.copy_from_slice(out["c"].try_extract_tensor::<f32>()?.1);
        }
        Ok(())
    })
}

fn ort_review(onnx: &[u8], review: &[u16], threads: usize, budget: Duration) -> Result<f64> {
    let mut session = session_from_bytes(onnx, Device::Cpu, threads)?;
    let ids: Vec<i64> = review.iter().map(|&i| i as i64).collect();
    time_per_call(budget, || {
        let input = ort::value::Tensor::from_array(([1usize, ids.len()], ids.clone()))?;
        std::hint::black_box(session.run(ort::inputs!["ids" => input])?);
        Ok(())
    })
}

/// Runs every engine on every workload.
pub fn run(opts: BenchOptions, mut progress: impl FnMut(&Timing)) -> Result<Vec<Timing>> {
    let mut out = Vec::new();
    for (k, (name, cfg)) in workloads().into_iter().enumerate() {
        let params = Params::init(&cfg, 7 + k as u64);
        let spec = model_spec(&cfg, &params)?;
        let int_blob = spec.int_blob(ScaleScheme::PerRow)?;
        let f32_blob = spec.f32_blob()?;
        let budget = opts.per_engine;
        let seconds: Vec<(&str, f64)> = match cfg.head {
            Head::Last => {
                let step = export_step_onnx(&cfg, &params, &[])?;
                vec![
                    ("runtime int", runtime_generate::<Int>(&int_blob, budget)?),
                    ("runtime f32", runtime_generate::<F32>(&f32_blob, budget)?),
                    ("tract", tract_generate(&step, &cfg, budget)?),
                    (
                        "onnxruntime",
                        ort_generate(&step, &cfg, opts.ort_threads, budget)?,
                    ),
                ]
            }
            _ => {
                let Head::Flatten { maxlen } = cfg.head else {
                    unreachable!()
                };
                let rows = cfg.vocab_rows() as u16;
                // A review exactly maxlen tokens long (no padding work skipped).
                let review: Vec<u16> = (0..maxlen as u16)
                    .map(|t| 1 + (t * 7) % (rows - 2))
                    .collect();
                let onnx = export_onnx(&cfg, &params, &[])?;
                vec![
                    (
                        "runtime int",
                        runtime_review::<Int>(&int_blob, &review, budget)?,
                    ),
                    (
                        "runtime f32",
                        runtime_review::<F32>(&f32_blob, &review, budget)?,
                    ),
                    ("tract", tract_review(&onnx, &review, budget)?),
                    (
                        "onnxruntime",
                        ort_review(&onnx, &review, opts.ort_threads, budget)?,
                    ),
                ]
            }
        };
        let int = seconds.first().map_or(1.0, |s| s.1);
        for (engine, s) in seconds {
            let t = Timing {
                workload: name.to_string(),
                engine: engine.to_string(),
                micros: s * 1e6,
                vs_runtime_int: s / int,
            };
            progress(&t);
            out.push(t);
        }
    }
    Ok(out)
}
