//! `lstm-edge bench`: per-generated-char latency (G) and per-review latency
//! (W, C) of the runtime's integer and f32 paths, tract and ONNX Runtime, all
//! measured in one run on the same weights, with the ratios.
//!
//! tract and ORT get their best shape for each job: the step-wise ONNX model fed
//! its own `h`/`c` back for generation, the whole-sequence model for reviews.
//! Weights are random with the workload's exact shape: latency does not depend
//! on their values.
//!
//! The engines of a workload take turns, [`ROUNDS`] rounds of a share of the
//! time each, and each figure is the median of an engine's rounds: a slow
//! spell of a shared machine then slows every engine alike instead of the one
//! that happened to be running, so the ratios hold better than the times.
//!
//! On x86-64 the integer path runs the best kernels the CPU has; with
//! [`BenchOptions::kernel_levels`] it is also timed held to each lower level
//! (AVX2, portable), as it runs on CPUs without AVX-512 or AVX2.

use std::time::{Duration, Instant};

use crate::export::{export_onnx, export_step_onnx};
use crate::model::{ModelConfig, Params};
use crate::ort_env::{session_from_bytes, Device};
use crate::quantize::model_spec;
use anyhow::{ensure, Context, Result};
use lstm_edge_runtime::builder::ScaleScheme;
use lstm_edge_runtime::format::{Cell, Head, MAX_HIDDEN};
use lstm_edge_runtime::host::{MemoBuffers, MAX_CLASSES};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{InputMemo, Logits, Model, Network, Output, Rng, State, Temperature};
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
    /// The x86-64 kernels an integer engine ran: `avx512`, `avx2` or `portable`.
    pub kernels: Option<&'static str>,
    /// Calls timed, over all rounds: a few give a rough figure.
    pub calls: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Time spent measuring each engine on each workload, over all rounds.
    pub per_engine: Duration,
    /// ORT intra-op threads (tract is single-threaded).
    pub ort_threads: usize,
    /// Also time the integer path held to each lower x86-64 kernel level.
    pub kernel_levels: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            per_engine: Duration::from_millis(1500),
            ort_threads: 1,
            kernel_levels: false,
        }
    }
}

/// The training benchmark's shapes ([`super::workloads`]), G also as a GRU, each
/// with how its time is counted.
pub fn workloads() -> Vec<(String, ModelConfig)> {
    let named = |cell, name: &str| {
        super::workloads(cell)
            .into_iter()
            .find(|w| w.name == name)
            .expect("the training benchmark has W, C and G")
    };
    [
        ("G", "char", named(Cell::Lstm, "G")),
        ("G-GRU", "char", named(Cell::Gru, "G")),
        ("W", "review", named(Cell::Lstm, "W")),
        ("C", "review", named(Cell::Lstm, "C")),
    ]
    .into_iter()
    .map(|(name, per, w)| {
        let maxlen = w
            .model
            .head
            .flatten_maxlen()
            .map(|m| format!(", maxlen {m}"));
        let label = format!(
            "{name} ({}{}), per {per}",
            w.describe_model(),
            maxlen.unwrap_or_default()
        );
        (
            label,
            ModelConfig {
                dropout: 0.0,
                ..w.model
            },
        )
    })
    .collect()
}

/// The engines that score a word model's reviews through an [`InputMemo`],
/// integer and f32: every word seen before (the steady state of scoring many
/// texts), then every word new (a text scored alone).
pub const MEMO_ENGINES: [&str; 4] = [
    "runtime int, memo",
    "runtime f32, memo",
    "runtime int, new memo",
    "runtime f32, new memo",
];

/// Rounds in which the engines of a workload take turns.
pub const ROUNDS: usize = 5;

/// One engine, set up and warmed up: each call does one timed unit of work.
type Runner<'a> = Box<dyn FnMut() -> Result<()> + 'a>;

/// Warms `f` up (one call) and boxes it.
fn runner<'a>(mut f: impl FnMut() -> Result<()> + 'a) -> Result<Runner<'a>> {
    f()?;
    Ok(Box::new(f))
}

/// Mean seconds per call of `f`, over at least `budget` and three calls, and the calls.
fn time_per_call(budget: Duration, f: &mut Runner<'_>) -> Result<(f64, u64)> {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget || calls < 3 {
        f()?;
        calls += 1;
    }
    Ok((start.elapsed().as_secs_f64() / calls as f64, calls))
}

/// Median seconds per call of each runner over [`ROUNDS`] alternating rounds, and the
/// calls timed in all.
fn time_in_rounds(budget: Duration, runners: &mut [Runner<'_>]) -> Result<Vec<(f64, u64)>> {
    let share = budget / ROUNDS as u32;
    let mut samples = vec![(Vec::with_capacity(ROUNDS), 0u64); runners.len()];
    for _ in 0..ROUNDS {
        for (run, (times, calls)) in runners.iter_mut().zip(&mut samples) {
            let (seconds, made) = time_per_call(share, run)?;
            times.push(seconds);
            *calls += made;
        }
    }
    Ok(samples
        .into_iter()
        .map(|(mut times, calls)| {
            times.sort_by(f64::total_cmp);
            (times[times.len() / 2], calls)
        })
        .collect())
}

fn runtime_generate<N: Numeric>(blob: &[u8]) -> Result<Runner<'_>> {
    let model = Model::from_bytes(blob)?;
    let net = Network::<N>::new(&model)?;
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    let mut logits = Box::new(Logits::<N, MAX_CLASSES>::new());
    let mut rng = Rng::new(1);
    net.feed(&mut state, 0)?;
    runner(move || {
        net.sample_next(
            &mut state,
            &mut logits,
            Temperature::from_milli(500),
            &mut rng,
        )?;
        Ok(())
    })
}

/// [`runtime_review`] through an [`InputMemo`], as the host tools score: kept
/// across calls, so every word has been seen before (the warm-up call formed
/// them), the steady state of scoring many texts; or with `fresh`, cleared
/// before each review, whose words are then all new, as a text scored alone.
/// `None` for a char model, which memoises nothing.
fn runtime_review_memo<'a, N: Numeric>(
    blob: &'a [u8],
    review: &'a [u16],
    fresh: bool,
) -> Result<Option<Runner<'a>>> {
    let model = Model::from_bytes(blob)?;
    let net = Network::<N>::new(&model)?;
    if InputMemo::sizes(&net).0 == 0 {
        return Ok(None);
    }
    let mut buffers = MemoBuffers::new(&net);
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    let run = runner(move || {
        state.reset();
        if fresh {
            buffers.clear();
        }
        let mut memo = buffers.memo(&net)?;
        memo.feed_ids(&mut state, review)?;
        std::hint::black_box(memo.finish(&mut state)?);
        Ok(())
    })?;
    Ok(Some(run))
}

fn runtime_review<'a, N: Numeric>(blob: &'a [u8], review: &'a [u16]) -> Result<Runner<'a>> {
    let model = Model::from_bytes(blob)?;
    let net = Network::<N>::new(&model)?;
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    runner(move || {
        state.reset();
        for &id in review {
            net.feed(&mut state, id)?;
        }
        std::hint::black_box(net.finish(&mut state)?);
        Ok(())
    })
}

/// The kernel levels to time the integer path at, best first, with their engine
/// names: the best this CPU has, then (with `all`) each lower one.
#[cfg(target_arch = "x86_64")]
pub fn int_kernel_levels(all: bool) -> Vec<(String, Option<&'static str>)> {
    use lstm_edge_runtime::numeric::x86::{kernel_level, KernelLevel};
    let best = kernel_level();
    let lower = KernelLevel::ALL
        .into_iter()
        .rev()
        .filter(|&level| level < best && all);
    std::iter::once(("runtime int".to_string(), Some(best.name())))
        .chain(lower.map(|level| (format!("int {}", level.name()), Some(level.name()))))
        .collect()
}

/// Elsewhere the integer path has no kernel levels to choose from.
#[cfg(not(target_arch = "x86_64"))]
pub fn int_kernel_levels(_all: bool) -> Vec<(String, Option<&'static str>)> {
    vec![("runtime int".to_string(), None)]
}

/// `run` held to the kernels named `kernels` (an [`int_kernel_levels`] name) while it
/// runs; other engines are not affected.
fn at_kernel_level<'a>(kernels: Option<&'static str>, mut run: Runner<'a>) -> Runner<'a> {
    #[cfg(target_arch = "x86_64")]
    {
        use lstm_edge_runtime::numeric::x86::{limit_kernels, KernelLevel};
        let level = KernelLevel::ALL
            .into_iter()
            .find(|level| Some(level.name()) == kernels);
        if let Some(level) = level.filter(|&level| level != KernelLevel::Avx512) {
            return Box::new(move || {
                limit_kernels(level);
                let result = run();
                limit_kernels(KernelLevel::Avx512);
                result
            });
        }
    }
    let _ = kernels;
    run
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

fn tract_generate(onnx: &[u8], h: usize, lstm: bool) -> Result<Runner<'static>> {
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
    runner(move || {
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

fn tract_review(onnx: &[u8], review: &[u16]) -> Result<Runner<'static>> {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])?
        .with_input_fact(0, i64::fact([1, review.len()]).into())?
        .into_optimized()?
        .into_runnable()?;
    let ids: Vec<i64> = review.iter().map(|&i| i as i64).collect();
    let input = Tensor::from_shape(&[1, review.len()], &ids)?;
    runner(move || {
        std::hint::black_box(plan.run(tvec!(input.clone().into_tvalue()))?);
        Ok(())
    })
}

fn ort_generate(onnx: &[u8], h: usize, lstm: bool, threads: usize) -> Result<Runner<'static>> {
    let mut session = session_from_bytes(onnx, Device::Cpu, threads)?;
    let mut hs = vec![0f32; h];
    let mut cs = vec![0f32; h];
    let mut id = 0i64;
    let mut rng = Rng::new(1);
    runner(move || {
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

fn ort_review(onnx: &[u8], review: &[u16], threads: usize) -> Result<Runner<'static>> {
    let mut session = session_from_bytes(onnx, Device::Cpu, threads)?;
    let ids: Vec<i64> = review.iter().map(|&i| i as i64).collect();
    runner(move || {
        let input = ort::value::Tensor::from_array(([1usize, ids.len()], ids.clone()))?;
        std::hint::black_box(session.run(ort::inputs!["ids" => input])?);
        Ok(())
    })
}

/// One model's files as the engines read them: the integer blob, and where there
/// are, the f32 blob and the ONNX model the other engines run (the step-wise one
/// for a generator, the whole-sequence one for reviews).
pub struct ModelFiles {
    pub int_blob: Vec<u8>,
    pub f32_blob: Option<Vec<u8>>,
    pub onnx: Option<Vec<u8>>,
}

/// What one model's timing does: generate chars, or score a review of these ids.
enum Job {
    Generate { hidden: usize, lstm: bool },
    Review(Vec<u16>),
}

/// The runtime on path `N` doing `job` with `blob`.
fn runtime_job<'a, N: Numeric>(blob: &'a [u8], job: &'a Job) -> Result<Runner<'a>> {
    match job {
        Job::Generate { .. } => runtime_generate::<N>(blob),
        Job::Review(review) => runtime_review::<N>(blob, review),
    }
}

/// Times every engine that `files` has on `job`, in alternating rounds, as
/// workload `name`.
fn time_model(
    name: &str,
    files: &ModelFiles,
    job: &Job,
    opts: BenchOptions,
    progress: &mut impl FnMut(&Timing),
) -> Result<Vec<Timing>> {
    let mut engines: Vec<(String, Option<&'static str>, Runner<'_>)> = Vec::new();
    for (engine, kernels) in int_kernel_levels(opts.kernel_levels) {
        let run = runtime_job::<Int>(&files.int_blob, job)?;
        engines.push((engine, kernels, at_kernel_level(kernels, run)));
    }
    if let Some(blob) = &files.f32_blob {
        engines.push((
            "runtime f32".to_string(),
            None,
            runtime_job::<F32>(blob, job)?,
        ));
    }
    if let Job::Review(review) = job {
        let [int_memo, f32_memo, int_new, f32_new] = MEMO_ENGINES;
        for (fresh, int_engine, f32_engine) in
            [(false, int_memo, f32_memo), (true, int_new, f32_new)]
        {
            if let Some(run) = runtime_review_memo::<Int>(&files.int_blob, review, fresh)? {
                engines.push((int_engine.to_string(), None, run));
            }
            if let Some(blob) = &files.f32_blob {
                if let Some(run) = runtime_review_memo::<F32>(blob, review, fresh)? {
                    engines.push((f32_engine.to_string(), None, run));
                }
            }
        }
    }
    if let Some(onnx) = &files.onnx {
        let (tract, ort) = match job {
            &Job::Generate { hidden, lstm } => (
                tract_generate(onnx, hidden, lstm)?,
                ort_generate(onnx, hidden, lstm, opts.ort_threads)?,
            ),
            Job::Review(review) => (
                tract_review(onnx, review)?,
                ort_review(onnx, review, opts.ort_threads)?,
            ),
        };
        engines.push(("tract".to_string(), None, tract));
        engines.push(("onnxruntime".to_string(), None, ort));
    }
    let (names, mut runners): (Vec<_>, Vec<_>) = engines
        .into_iter()
        .map(|(engine, kernels, run)| ((engine, kernels), run))
        .unzip();
    let timed = time_in_rounds(opts.per_engine, &mut runners)?;
    let int = timed.first().map_or(1.0, |&(s, _)| s);
    let mut out = Vec::new();
    for ((engine, kernels), (s, calls)) in names.into_iter().zip(timed) {
        let t = Timing {
            workload: name.to_string(),
            engine,
            micros: s * 1e6,
            vs_runtime_int: s / int,
            kernels,
            calls,
        };
        progress(&t);
        out.push(t);
    }
    Ok(out)
}

/// Runs every engine on every workload, in alternating rounds.
pub fn run(opts: BenchOptions, mut progress: impl FnMut(&Timing)) -> Result<Vec<Timing>> {
    let mut out = Vec::new();
    for (k, (name, cfg)) in workloads().into_iter().enumerate() {
        let params = Params::init(&cfg, 7 + k as u64);
        let spec = model_spec(&cfg, &params)?;
        let job = match cfg.head {
            Head::Last => Job::Generate {
                hidden: cfg.hidden,
                lstm: cfg.cell == Cell::Lstm,
            },
            Head::Flatten { maxlen } | Head::FlattenTail { maxlen } => {
                // A review exactly maxlen tokens long (no padding work skipped).
                let rows = cfg.vocab_rows() as u16;
                Job::Review(
                    (0..maxlen as u16)
                        .map(|t| 1 + (t * 7) % (rows - 2))
                        .collect(),
                )
            }
            Head::Mean => unreachable!("no benchmark workload has a mean head"),
        };
        let onnx = match job {
            Job::Generate { .. } => export_step_onnx(&cfg, &params, &[])?,
            Job::Review(_) => export_onnx(&cfg, &params, &[])?,
        };
        let files = ModelFiles {
            int_blob: spec.int_blob(ScaleScheme::PerRow)?,
            f32_blob: Some(spec.f32_blob()?),
            onnx: Some(onnx),
        };
        out.extend(time_model(&name, &files, &job, opts, &mut progress)?);
    }
    Ok(out)
}

/// A model directory's files (`lstm-edge bench --model`), those it has.
pub struct ModelDir {
    /// `model.blob`.
    pub int_blob: Vec<u8>,
    /// `model-f32.blob`.
    pub f32_blob: Option<Vec<u8>>,
    /// `model.onnx`: whole sequences, which a sentiment model's timing runs.
    pub onnx: Option<Vec<u8>>,
    /// `model-step.onnx`: one token with its state, which a generator's runs.
    pub step_onnx: Option<Vec<u8>>,
}

/// Times one model's own files: per generated char for a generator, else per
/// review of `tokens` ids (a flatten head's maxlen), none of them PAD. Engines
/// whose file the directory lacks are left out.
pub fn run_model(
    name: &str,
    dir: ModelDir,
    tokens: usize,
    opts: BenchOptions,
    mut progress: impl FnMut(&Timing),
) -> Result<Vec<Timing>> {
    let (label, job) = model_job(name, &dir.int_blob, tokens)?;
    let onnx = match job {
        Job::Generate { .. } => dir.step_onnx,
        Job::Review(_) => dir.onnx,
    };
    let files = ModelFiles {
        int_blob: dir.int_blob,
        f32_blob: dir.f32_blob,
        onnx,
    };
    time_model(&label, &files, &job, opts, &mut progress)
}

/// The job a model's integer blob does, and its workload label.
fn model_job(name: &str, int_blob: &[u8], tokens: usize) -> Result<(String, Job)> {
    let model = Model::from_bytes(int_blob).context("reading the integer blob")?;
    let body = model.body();
    Ok(if matches!(body.output, Output::Softmax { .. }) {
        let job = Job::Generate {
            hidden: body.hidden as usize,
            lstm: body.cell == Cell::Lstm,
        };
        (format!("{name}, per char"), job)
    } else {
        let ids = model.dims().tokens;
        let pad = Network::<Int>::new(&model)?.tokenizer().pad_id();
        let len = body.head.flatten_maxlen().map_or(tokens, |m| m as usize);
        ensure!(len > 0, "a review needs at least one token");
        let review: Vec<u16> = (0..len)
            .map(|t| (1 + t * 7) % ids.max(1))
            .map(|id| match Some(id as u16) == pad {
                true => ((id + 1) % ids) as u16,
                false => id as u16,
            })
            .collect();
        (
            format!("{name}, per review of {len} tokens"),
            Job::Review(review),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn workloads_are_g_as_lstm_and_gru_then_w_and_c() {
        let labels: Vec<String> = workloads().into_iter().map(|(label, _)| label).collect();
        assert_eq!(
            labels,
            [
                "G (one-hot 50, LSTM 128), per char",
                "G-GRU (one-hot 50, GRU 128), per char",
                "W (emb 300, 10002 ids, LSTM 50, maxlen 200), per review",
                "C (one-hot 46, LSTM 40, maxlen 1500), per review",
            ]
        );
        assert!(workloads().iter().all(|(_, model)| model.dropout == 0.0));
    }

    #[test]
    fn rounds_alternate_between_engines_and_keep_one_figure_each() {
        // Each call logs its engine; a round must visit every engine in turn.
        let log = RefCell::new(Vec::new());
        let engine = |name: &'static str| -> Runner<'_> {
            let log = &log;
            Box::new(move || {
                log.borrow_mut().push(name);
                Ok(())
            })
        };
        let mut runners = vec![engine("a"), engine("b")];
        let timed = time_in_rounds(Duration::ZERO, &mut runners).unwrap();
        assert_eq!(timed.len(), 2);
        assert!(timed.iter().all(|&(s, _)| s >= 0.0 && s.is_finite()));
        assert!(timed.iter().all(|&(_, calls)| calls == 3 * ROUNDS as u64));
        // Three calls per engine per round (the minimum), a's before b's.
        let calls = log.borrow();
        let expected: Vec<&str> = (0..ROUNDS)
            .flat_map(|_| ["a"; 3].into_iter().chain(["b"; 3]))
            .collect();
        assert_eq!(*calls, expected);
    }

    #[test]
    fn an_engine_error_stops_the_rounds() {
        let mut runners: Vec<Runner<'_>> = vec![Box::new(|| Err(anyhow::anyhow!("no session")))];
        let err = time_in_rounds(Duration::ZERO, &mut runners).unwrap_err();
        assert!(err.to_string().contains("no session"));
    }
}
