//! Training speed: samples per second of whole training steps (forward, loss,
//! gradients, optimizer update) for the notebook's workload shapes, on random
//! data. `cargo bench -p lstm-edge-trainer` prints them (`benches/training.rs`).
//! [`inference`] times the runtime against tract and ONNX Runtime (`lstm-edge bench`).

pub mod inference;

use std::time::Instant;

use anyhow::{ensure, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::tokenize::words::encode_vocab;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::autodiff::Backend;
use crate::bptt::Recurrence;
use crate::model::{InputConfig, ModelConfig, Params, Preset, Tensor};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::ort_env::Device;
use crate::pipeline::{notebook_char_input, DEFAULT_VOCAB_SIZE};
use crate::step::{build_train_graph, Batch, BatchTargets, InputKind, NetSpec, TrainSession};

/// One benchmarked shape: a preset's model and training settings, on a made-up
/// vocabulary of the size training gives it.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The preset's letter: `W`, `C` or `G`.
    pub name: &'static str,
    pub model: ModelConfig,
    /// Sequence length of every batch: the flatten head's `maxlen`, G's window.
    pub steps: usize,
    pub batch: usize,
    pub lr: f32,
}

/// Distinct chars of the three plays, lowercased, which G trains on.
const PLAYS_SYMBOLS: u8 = 50;

impl Workload {
    fn of_preset(name: &'static str, preset: Preset, cell: Cell, input: InputConfig) -> Self {
        let hyper = preset.defaults();
        let output = match preset {
            Preset::W | Preset::C => Output::Sigmoid,
            Preset::G | Preset::R => Output::Softmax {
                classes: PLAYS_SYMBOLS.into(),
            },
        };
        Workload {
            name,
            model: ModelConfig {
                cell,
                ..hyper.model_config(input, output)
            },
            steps: hyper.maxlen,
            batch: hyper.batch_size,
            lr: hyper.learning_rate,
        }
    }

    /// The graphs' dimensions.
    pub fn spec(&self) -> NetSpec {
        NetSpec::new(&self.model, self.steps)
    }

    /// The model in a few words, e.g. `emb 300, 10002 ids, LSTM 50`.
    pub fn describe_model(&self) -> String {
        let input = match self.spec().input {
            InputKind::Embedding { vocab, dim } => format!("emb {dim}, {vocab} ids"),
            InputKind::OneHot { vocab } => format!("one-hot {vocab}"),
        };
        format!("{input}, {} {}", self.model.cell, self.model.hidden)
    }

    /// The training shape in a few words, e.g. `T 200, B 32, emb 300, 10002 ids, LSTM 50`.
    pub fn describe(&self) -> String {
        format!(
            "T {}, B {}, {}",
            self.steps,
            self.batch,
            self.describe_model()
        )
    }

    /// What Keras needs to build the same model (`scripts/keras_bench.py`).
    pub fn keras_shape(&self) -> serde_json::Value {
        let spec = self.spec();
        // f32 settings as written (0.001), not as their f64 widening (0.0010000000474974513).
        let short = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::from(x));
        let (vocab, embed) = match spec.input {
            InputKind::Embedding { vocab, dim } => (vocab, Some(dim)),
            InputKind::OneHot { vocab } => (vocab, None),
        };
        serde_json::json!({
            "batch": self.batch,
            "maxlen": self.steps,
            "vocab": vocab,
            "embed": embed,
            "hidden": self.model.hidden,
            "cell": self.model.cell.to_string().to_lowercase(),
            "head": match spec.head {
                Head::Flatten { .. } => "flatten",
                Head::FlattenTail { .. } => "flatten_tail",
                Head::Last => "last",
                Head::Mean => "mean",
            },
            "classes": match spec.output {
                Output::Sigmoid => None,
                Output::Softmax { classes } => Some(classes),
            },
            "dropout": short(self.model.dropout),
            "lr": short(self.lr),
            "describe": self.describe(),
        })
    }
}

/// The notebook's workloads W, C and G, as the presets and the data give them
/// (LSTM; `cell` swaps in a GRU for R): W's vocabulary is the default
/// `--vocab-size`, C reads the notebook's chars with UNK and PAD, G the plays'.
pub fn workloads(cell: Cell) -> Vec<Workload> {
    let words = encode_vocab((0..DEFAULT_VOCAB_SIZE).map(|i| format!("w{i:05}").into_bytes()));
    let word_input = InputConfig::Words {
        strings: words.0,
        offsets: words.1,
        embed_dim: Preset::W.defaults().embed_dim,
    };
    // Stand-in symbols: the bench feeds ids, so only the table's size matters.
    let plays_input = InputConfig::Chars {
        table: (0..PLAYS_SYMBOLS).map(|i| b'!' + i).collect(),
        lowercase: false,
        unk: false,
        pad: false,
    };
    vec![
        Workload::of_preset("W", Preset::W, cell, word_input),
        Workload::of_preset("C", Preset::C, cell, notebook_char_input()),
        Workload::of_preset("G", Preset::G, cell, plays_input),
    ]
}

fn random_params(spec: &NetSpec, rng: &mut ChaCha8Rng) -> Result<Params> {
    let tensors = spec
        .param_shapes()
        .into_iter()
        .map(|(_, dims)| {
            let n = dims.iter().product();
            Tensor::new(&dims, (0..n).map(|_| rng.random_range(-0.1..0.1)).collect())
        })
        .collect::<Result<Vec<_>>>()?;
    spec.params_from_ordered(tensors)
}

/// Training throughput of `workload` over `steps` timed steps (after two
/// warm-up steps), on `threads` intra-op threads.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    /// From the fastest step: the least disturbed by other processes.
    pub best: f64,
    /// From the median step.
    pub median: f64,
}

impl Throughput {
    /// From the wall times of single steps of `rows` samples each.
    pub fn from_step_seconds(rows: usize, seconds: &[f64]) -> Result<Self> {
        ensure!(!seconds.is_empty(), "no timed steps");
        let mut sorted = seconds.to_vec();
        sorted.sort_by(f64::total_cmp);
        Ok(Throughput {
            best: rows as f64 / sorted[0],
            median: rows as f64 / sorted[sorted.len() / 2],
        })
    }
}

/// A workload's training session and one random batch, warmed up, ready to
/// time: data preparation stays outside the timed steps.
pub struct Prepared {
    session: TrainSession,
    ids: Vec<i64>,
    binary: Vec<f32>,
    class: Vec<i64>,
    mask: Option<Vec<f32>>,
    rows: usize,
}

impl Prepared {
    /// Builds the session for `workload` and runs two warm-up steps.
    pub fn new(
        workload: &Workload,
        how: Recurrence,
        device: Device,
        threads: usize,
    ) -> Result<Self> {
        let spec = workload.spec();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let params = random_params(&spec, &mut rng)?;
        let dropout_rate = workload.model.dropout;
        let dropout = dropout_rate > 0.0;
        let session = TrainSession::new(
            spec,
            dropout,
            &optimizer(workload),
            &params,
            None,
            device,
            threads,
            how,
        )?;
        let vocab = match spec.input {
            InputKind::Embedding { vocab, .. } | InputKind::OneHot { vocab } => vocab,
        };
        let rows = workload.batch;
        let ids = (0..rows * spec.steps)
            .map(|_| rng.random_range(0..vocab as i64))
            .collect();
        let binary = (0..rows).map(|r| (r % 2) as f32).collect();
        let class = (0..rows)
            .map(|_| rng.random_range(0..spec.output.width() as i64))
            .collect();
        let keep = 1.0 / (1.0 - dropout_rate);
        let mask = dropout.then(|| {
            (0..spec.mask_shape(rows).iter().product())
                .map(|_| {
                    if rng.random::<f32>() < dropout_rate {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect()
        });
        let mut prepared = Prepared {
            session,
            ids,
            binary,
            class,
            mask,
            rows,
        };
        prepared.step_seconds(2)?;
        Ok(prepared)
    }

    /// Samples per step.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Runs `steps` whole training steps and returns the wall time of each.
    pub fn step_seconds(&mut self, steps: usize) -> Result<Vec<f64>> {
        let batch = Batch {
            ids: &self.ids,
            targets: match self.session.spec().output {
                Output::Sigmoid => BatchTargets::Binary(&self.binary),
                Output::Softmax { .. } => BatchTargets::Class(&self.class),
            },
            mask: self.mask.as_deref(),
        };
        let mut seconds = Vec::with_capacity(steps);
        for _ in 0..steps {
            let started = Instant::now();
            self.session.step(&batch)?;
            seconds.push(started.elapsed().as_secs_f64());
        }
        Ok(seconds)
    }
}

/// The optimizer every workload trains with: RMSprop, as the notebook.
fn optimizer(workload: &Workload) -> OptimizerConfig {
    OptimizerConfig {
        rule: Optimizer::rmsprop(workload.lr),
        clip_norm: None,
        lr_decay: None,
    }
}

/// The ONNX model of one training step of `workload`, as [`Prepared`] runs it.
pub fn train_graph(workload: &Workload, how: Recurrence, backend: Backend) -> Vec<u8> {
    build_train_graph(
        &workload.spec(),
        &optimizer(workload),
        workload.model.dropout > 0.0,
        how,
        backend,
    )
}

/// Measures [`Throughput`] for `workload`.
pub fn samples_per_second(
    workload: &Workload,
    how: Recurrence,
    device: Device,
    threads: usize,
    steps: usize,
) -> Result<Throughput> {
    let mut prepared = Prepared::new(workload, how, device, threads)?;
    let seconds = prepared.step_seconds(steps.max(1))?;
    Throughput::from_step_seconds(prepared.rows(), &seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_workload_trains_at_a_positive_rate() {
        let mut w = workloads(Cell::Gru).remove(2);
        w.model.hidden = 4;
        w.steps = 5;
        w.batch = 3;
        let rate = samples_per_second(&w, Recurrence::Scan, Device::Cpu, 1, 3).unwrap();
        assert!(rate.best.is_finite() && rate.best >= rate.median && rate.median > 0.0);
    }

    #[test]
    fn workloads_carry_the_presets_and_the_inputs_training_builds() {
        let [w, c, g] = <[_; 3]>::try_from(workloads(Cell::Lstm)).unwrap();
        for (workload, preset) in [(&w, Preset::W), (&c, Preset::C), (&g, Preset::G)] {
            let hyper = preset.defaults();
            assert_eq!(workload.model.hidden, hyper.hidden, "{}", workload.name);
            assert_eq!(workload.model.head, hyper.head(), "{}", workload.name);
            assert_eq!(workload.model.dropout, hyper.dropout, "{}", workload.name);
            assert_eq!(
                (workload.steps, workload.batch, workload.lr),
                (hyper.maxlen, hyper.batch_size, hyper.learning_rate),
                "{}",
                workload.name
            );
        }
        assert_eq!(c.model.input, notebook_char_input());
        assert_eq!(w.model.input.words(), DEFAULT_VOCAB_SIZE);
        assert_eq!(
            w.describe(),
            "T 200, B 32, emb 300, 10002 ids, LSTM 50",
            "the default vocabulary with PAD and UNK"
        );
        assert_eq!(w.spec().head, Head::Flatten { maxlen: 200 });
        assert_eq!((w.model.dropout, w.lr), (0.2, 0.001));
        assert_eq!(c.describe(), "T 1500, B 32, one-hot 46, LSTM 40");
        assert_eq!(g.describe(), "T 40, B 128, one-hot 50, LSTM 128");
        assert_eq!(g.spec().output, Output::Softmax { classes: 50 });
        assert_eq!((g.model.dropout, g.lr), (0.0, 0.01));
        let keras = w.keras_shape();
        assert_eq!(keras["vocab"], 10_002);
        assert_eq!(keras["embed"], 300);
        assert_eq!(keras["head"], "flatten");
        assert_eq!(
            (keras["cell"].as_str(), keras["lr"].as_f64()),
            (Some("lstm"), Some(0.001))
        );
        assert!(keras["classes"].is_null());
        let keras = g.keras_shape();
        assert_eq!(keras["classes"], 50);
        assert!(keras["embed"].is_null());
        assert_eq!(keras["head"], "last");
        let gru = workloads(Cell::Gru).remove(2);
        assert_eq!(gru.describe(), "T 40, B 128, one-hot 50, GRU 128");
    }

    #[test]
    fn throughput_comes_from_the_fastest_and_the_median_step() {
        let rate = Throughput::from_step_seconds(10, &[0.5, 0.1, 0.2]).unwrap();
        assert_eq!((rate.best, rate.median), (100.0, 50.0));
        assert!(Throughput::from_step_seconds(10, &[]).is_err());
    }
}
