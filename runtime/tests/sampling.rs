//! Sampling: a seed fixes the text; temperature T draws from p^(1/T), renormalised.

mod common;

use common::random_model;
use lstm_edge_runtime::builder::ScaleScheme;
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Logits, Model, Network, Rng, State, Temperature};

fn generate<N: Numeric>(blob: &[u8], seed: u64, milli: u32, n: usize) -> Vec<u16> {
    let model = Model::from_bytes(blob).unwrap();
    let net = Network::<N>::new(&model).unwrap();
    let mut state = State::<N, 32>::new();
    net.feed_text(&mut state, b"to be or not").unwrap();
    let mut logits = Logits::<N, 40>::new();
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            net.sample_next(
                &mut state,
                &mut logits,
                Temperature::from_milli(milli),
                &mut rng,
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_text() {
    let spec = random_model(
        Cell::Lstm,
        16,
        false,
        Head::Last,
        Output::Softmax { classes: 33 },
        0.5,
        4,
    );
    for blob in [
        spec.f32_blob().unwrap(),
        spec.int_blob(ScaleScheme::PerRow).unwrap(),
    ] {
        let is_int = Network::<Int>::new(&Model::from_bytes(&blob).unwrap()).is_ok();
        let run = |seed| {
            if is_int {
                generate::<Int>(&blob, seed, 700, 200)
            } else {
                generate::<F32>(&blob, seed, 700, 200)
            }
        };
        assert_eq!(run(11), run(11));
        assert_ne!(
            run(11),
            run(12),
            "different seeds should differ over 200 draws"
        );
    }
}

/// Empirical frequencies of `draws` samples vs p^(1/T) renormalised.
fn check_temperature<N: Numeric>(logits: &[N::Logit], probs: &[f64], milli: u32) -> f64 {
    let t = milli as f64 / 1000.0;
    let weights: Vec<f64> = probs.iter().map(|p| p.powf(1.0 / t)).collect();
    let total: f64 = weights.iter().sum();
    let want: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let draws = 200_000;
    let mut counts = vec![0usize; probs.len()];
    let mut rng = Rng::new(milli as u64);
    for _ in 0..draws {
        counts[N::sample(logits, Temperature::from_milli(milli), &mut rng)] += 1;
    }
    // Pearson chi-square against the expected counts.
    let chi2: f64 = counts
        .iter()
        .zip(&want)
        .map(|(&c, &p)| {
            let e = p * draws as f64;
            (c as f64 - e).powi(2) / e.max(1e-9)
        })
        .sum();
    let worst = counts
        .iter()
        .zip(&want)
        .map(|(&c, &p)| (c as f64 / draws as f64 - p).abs())
        .fold(0.0, f64::max);
    println!("T = {t}: max |freq - p^(1/T)| = {worst:.4}, chi2 = {chi2:.1} (4 dof)");
    chi2
}

#[test]
fn temperature_reweights_a_known_distribution() {
    let probs = [0.5f64, 0.25, 0.15, 0.07, 0.03];
    let f32_logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
    let int_logits: Vec<i64> = probs
        .iter()
        .map(|p| (p.ln() * 65536.0).round() as i64)
        .collect();
    for milli in [200, 500, 1000, 1500] {
        // 4 degrees of freedom: chi2 > 18.5 has probability 0.001.
        assert!(check_temperature::<F32>(&f32_logits, &probs, milli) < 18.5);
        assert!(check_temperature::<Int>(&int_logits, &probs, milli) < 18.5);
    }
}

#[test]
fn zero_and_tiny_temperatures_are_greedy() {
    let logits = [3i64 << 16, 5 << 16, 4 << 16, -2 << 16];
    let mut rng = Rng::new(1);
    for milli in [0, 1, 5] {
        for _ in 0..1000 {
            assert_eq!(
                Int::sample(&logits, Temperature::from_milli(milli), &mut rng),
                1
            );
            let f: Vec<f32> = logits.iter().map(|&l| l as f32 / 65536.0).collect();
            assert_eq!(F32::sample(&f, Temperature::from_milli(milli), &mut rng), 1);
        }
    }
}

#[test]
fn a_float_temperature_is_taken_in_range_and_refused_outside() {
    let milli = |t: f32| Temperature::from_f32(t).map(Temperature::milli);
    assert_eq!(milli(0.0), Some(0));
    assert_eq!(milli(0.5), Some(500));
    assert_eq!(milli(0.0005), Some(1));
    assert_eq!(milli(1.2344), Some(1234));
    assert_eq!(milli(Temperature::MAX), Some(100_000));
    // Each of these would be greedy decoding through a cast.
    for refused in [
        -0.1,
        0.0004,
        4.999_999_7e-4,
        100.001,
        f32::NAN,
        f32::INFINITY,
    ] {
        assert_eq!(milli(refused), None, "{refused}");
    }
}
