//! Training speed: samples per second of whole training steps (forward, loss,
//! gradients, optimizer update) for the notebook's workload shapes, on random
//! data. `cargo bench -p lstm-edge-trainer` prints them (`benches/training.rs`).

use std::time::Instant;

use anyhow::Result;
use lstm_edge_runtime::format::{Cell, Head, Output};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bptt::Recurrence;
use crate::model::{Params, Tensor};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::ort_env::Device;
use crate::step::{Batch, BatchTargets, InputKind, NetSpec, TrainSession};

/// One benchmarked shape.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub spec: NetSpec,
    pub batch: usize,
    pub dropout: f32,
    pub lr: f32,
}

/// The DESIGN.md workloads W, C and G (LSTM; `cell` swaps in a GRU for R).
pub fn workloads(cell: Cell) -> Vec<Workload> {
    let spec = |input, hidden, head, output, steps| NetSpec {
        cell,
        hidden,
        input,
        head,
        output,
        steps,
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
                InputKind::OneHot { vocab: 38 },
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
    let mut tensors = spec
        .param_shapes()
        .into_iter()
        .map(|(_, dims)| {
            let n = dims.iter().product();
            Tensor::new(&dims, (0..n).map(|_| rng.random_range(-0.1..0.1)).collect())
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let mut next = || tensors.next().expect("one tensor per parameter");
    let embedding = matches!(spec.input, InputKind::Embedding { .. }).then(&mut next);
    Ok(Params {
        embedding,
        w: next(),
        r: next(),
        wb: next(),
        rb: next(),
        head_w: next(),
        head_b: next(),
    })
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

/// Measures [`Throughput`] for `workload`.
pub fn samples_per_second(
    workload: &Workload,
    how: Recurrence,
    device: Device,
    threads: usize,
    steps: usize,
) -> Result<Throughput> {
    let spec = workload.spec;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let params = random_params(&spec, &mut rng)?;
    let optimizer = OptimizerConfig {
        rule: Optimizer::rmsprop(workload.lr),
        clip_norm: None,
    };
    let dropout = workload.dropout > 0.0;
    let mut session = TrainSession::new(
        spec, dropout, &optimizer, &params, None, device, threads, how,
    )?;
    let vocab = match spec.input {
        InputKind::Embedding { vocab, .. } | InputKind::OneHot { vocab } => vocab,
    };
    let rows = workload.batch;
    let ids: Vec<i64> = (0..rows * spec.steps)
        .map(|_| rng.random_range(0..vocab as i64))
        .collect();
    let binary: Vec<f32> = (0..rows).map(|r| (r % 2) as f32).collect();
    let class: Vec<i64> = (0..rows)
        .map(|_| rng.random_range(0..spec.output.width() as i64))
        .collect();
    let keep = 1.0 / (1.0 - workload.dropout);
    let mask: Vec<f32> = (0..spec.mask_shape(rows).iter().product())
        .map(|_| {
            if rng.random::<f32>() < workload.dropout {
                0.0
            } else {
                keep
            }
        })
        .collect();
    let batch = Batch {
        ids: &ids,
        targets: match spec.output {
            Output::Sigmoid => BatchTargets::Binary(&binary),
            Output::Softmax { .. } => BatchTargets::Class(&class),
        },
        mask: dropout.then_some(&mask[..]),
    };
    for _ in 0..2 {
        session.step(&batch)?;
    }
    let mut seconds = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        let started = Instant::now();
        session.step(&batch)?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    Ok(Throughput {
        best: rows as f64 / seconds[0],
        median: rows as f64 / seconds[seconds.len() / 2],
    })
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
}
