//! Training speed: samples per second of whole training steps (forward, loss,
//! gradients, optimizer update) for the notebook's workload shapes, on random
//! data. `cargo bench -p lstm-edge-trainer` prints them (`benches/training.rs`).
//! [`inference`] times the runtime against tract and ONNX Runtime (`lstm-edge bench`).

pub mod inference;

use std::time::Instant;

use anyhow::{ensure, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::autodiff::Backend;
use crate::bptt::Recurrence;
use crate::model::{Params, Tensor};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::ort_env::Device;
use crate::step::{build_train_graph, Batch, BatchTargets, InputKind, NetSpec, TrainSession};

/// One benchmarked shape.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub spec: NetSpec,
    pub batch: usize,
    pub dropout: f32,
    pub lr: f32,
}

/// The notebook's workloads W, C and G (the presets) (LSTM; `cell` swaps in a GRU for R).
pub fn workloads(cell: Cell) -> Vec<Workload> {
    let spec = |input, hidden, head, output, steps| NetSpec {
        cell,
        hidden,
        input,
        head,
        output,
        steps,
        frozen_embedding: false,
        pad: None,
    };
    vec![
        Workload {
            name: "W",
            spec: spec(
                InputKind::Embedding {
                    vocab: 20_000,
                    dim: 300,
                },
                50,
                Head::Flatten { maxlen: 200 },
                Output::Sigmoid,
                200,
            ),
            batch: 32,
            dropout: 0.2,
            lr: 0.001,
        },
        Workload {
            name: "C",
            spec: spec(
                InputKind::OneHot { vocab: 46 },
                40,
                Head::Flatten { maxlen: 1500 },
                Output::Sigmoid,
                1500,
            ),
            batch: 32,
            dropout: 0.2,
            lr: 0.001,
        },
        Workload {
            name: "G",
            spec: spec(
                InputKind::OneHot { vocab: 50 },
                128,
                Head::Last,
                Output::Softmax { classes: 50 },
                40,
            ),
            batch: 128,
            dropout: 0.0,
            lr: 0.01,
        },
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
        let spec = workload.spec;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let params = random_params(&spec, &mut rng)?;
        let dropout = workload.dropout > 0.0;
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
        let keep = 1.0 / (1.0 - workload.dropout);
        let mask = dropout.then(|| {
            (0..spec.mask_shape(rows).iter().product())
                .map(|_| {
                    if rng.random::<f32>() < workload.dropout {
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
        &workload.spec,
        &optimizer(workload),
        workload.dropout > 0.0,
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
        let mut w = workloads(Cell::Gru)[2];
        w.spec.hidden = 4;
        w.spec.steps = 5;
        w.batch = 3;
        let rate = samples_per_second(&w, Recurrence::Scan, Device::Cpu, 1, 3).unwrap();
        assert!(rate.best.is_finite() && rate.best >= rate.median && rate.median > 0.0);
    }

    #[test]
    fn throughput_comes_from_the_fastest_and_the_median_step() {
        let rate = Throughput::from_step_seconds(10, &[0.5, 0.1, 0.2]).unwrap();
        assert_eq!((rate.best, rate.median), (100.0, 50.0));
        assert!(Throughput::from_step_seconds(10, &[]).is_err());
    }
}
