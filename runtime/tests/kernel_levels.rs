//! The integer path on x86-64 gives the same results, bit for bit, whichever
//! kernels it runs: AVX-512, AVX2 or the portable code, each picked on this CPU
//! with `limit_kernels`. Scores, per-step probabilities and sampled text are
//! compared for LSTM and GRU, chars and words, every head, both scale schemes, and
//! hidden sizes that fill whole vector passes (128) or leave a tail (40, 19).
//!
//! One test only: the limit is global to the process, and tests in one file run
//! side by side in threads.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{random_ids, random_model};
use lstm_edge_runtime::builder::{ModelSpec, ScaleScheme};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::numeric::x86::{kernel_level, limit_kernels, KernelLevel};
use lstm_edge_runtime::numeric::{Int, Numeric};
use lstm_edge_runtime::{Logits, Model, Network, Rng, State, Temperature};

const STEPS: usize = 120;

/// Everything one run of a blob gives, as exact bits.
fn outputs(blob: &[u8], ids: &[u16]) -> Vec<u64> {
    let model = Model::from_bytes(blob).unwrap();
    let net = Network::<Int>::new(&model).unwrap();
    let mut state = State::<Int, 128>::new();
    let mut out = Vec::new();
    match net.output() {
        Output::Sigmoid => {
            // The score of several prefixes, so that early steps count too.
            for len in [1, 7, 50, ids.len()] {
                state.reset();
                for &id in &ids[..len] {
                    net.feed(&mut state, id).unwrap();
                }
                out.push(Int::prob_to_f64(net.finish(&mut state).unwrap()).to_bits());
            }
        }
        Output::Softmax { classes } => {
            let mut logits = Logits::<Int, 64>::new();
            let mut probs = [<Int as Numeric>::Prob::default(); 64];
            for &id in ids {
                net.feed(&mut state, id).unwrap();
                net.probabilities(&state, &mut logits, &mut probs).unwrap();
                out.extend(
                    probs[..classes as usize]
                        .iter()
                        .map(|&p| Int::prob_to_f64(p).to_bits()),
                );
            }
            let mut rng = Rng::new(5);
            for milli in [200, 500, 1000, 1500] {
                for _ in 0..100 {
                    let id = net
                        .sample_next(
                            &mut state,
                            &mut logits,
                            Temperature::from_milli(milli),
                            &mut rng,
                        )
                        .unwrap();
                    out.push(u64::from(id));
                }
            }
        }
    }
    out
}

fn specs() -> Vec<(String, ModelSpec)> {
    let mut out = Vec::new();
    let mut seed = 1;
    for cell in [Cell::Lstm, Cell::Gru] {
        for hidden in [128, 40, 19] {
            for words in [false, true] {
                // A generator predicts one of its tokens.
                let classes = if words { 12 } else { 33 };
                let heads = [
                    (Head::Last, Output::Softmax { classes }),
                    (Head::Last, Output::Sigmoid),
                    (Head::Mean, Output::Sigmoid),
                    (
                        Head::Flatten {
                            maxlen: STEPS as u32,
                        },
                        Output::Sigmoid,
                    ),
                ];
                for (head, output) in heads {
                    seed += 1;
                    let label = format!("{cell:?} {hidden} words={words} {head:?} {output:?}");
                    let spec = random_model(cell, hidden, words, head, output, 0.5, seed);
                    out.push((label, spec));
                }
            }
        }
    }
    out
}

#[test]
fn every_kernel_level_gives_the_same_bits() {
    let best = kernel_level();
    let levels: Vec<KernelLevel> = KernelLevel::ALL
        .into_iter()
        .filter(|&level| level <= best)
        .collect();
    // Each level this CPU has is the one picked under its limit.
    for &level in &levels {
        limit_kernels(level);
        assert_eq!(kernel_level(), level);
    }
    limit_kernels(KernelLevel::Avx512);
    assert_eq!(kernel_level(), best, "lifting the limit restores the best");
    println!("kernel levels compared: {levels:?}");

    let mut compared = 0;
    for (label, spec) in specs() {
        let ids = random_ids(&spec, STEPS, compared as u64);
        for scheme in [ScaleScheme::PerRow, ScaleScheme::PerGate] {
            let blob = spec.int_blob(scheme).unwrap();
            let runs: Vec<(KernelLevel, Vec<u64>)> = levels
                .iter()
                .map(|&level| {
                    limit_kernels(level);
                    let got = outputs(&blob, &ids);
                    limit_kernels(KernelLevel::Avx512);
                    (level, got)
                })
                .collect();
            let (best_level, want) = runs.last().unwrap();
            for (level, got) in &runs {
                assert_eq!(
                    got, want,
                    "{label} {scheme:?}: {level:?} differs from {best_level:?}"
                );
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 2 * 3 * 2 * 4 * 2);
}
