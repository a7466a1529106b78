//! Rough per-step timing of the G shape on this host (see the `bench` command for
//! the comparison with tract and ONNX Runtime).
use lstm_edge_runtime::builder::{FloatWeights, InputSpec, ModelSpec, ScaleScheme};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Logits, Model, Network, Rng, State, Temperature};
use std::time::Instant;

fn spec(cell: Cell) -> ModelSpec {
    let mut rng = Rng::new(1);
    let mut vec = |n: usize, amp: f32| -> Vec<f32> {
        (0..n).map(|_| (rng.next_f32() - 0.5) * 2.0 * amp).collect()
    };
    let (h, v, g) = (128, 50, cell.gates());
    ModelSpec {
        cell,
        hidden: h as u16,
        input: InputSpec::Chars {
            symbols: (0..v as u8).map(|i| b'!' + i).collect(),
            lowercase: false,
            unk: false,
            pad: false,
        },
        head: Head::Last,
        output: Output::Softmax { classes: v as u16 },
        weights: FloatWeights {
            embedding: vec![],
            w: vec(g * h * v, 0.3),
            r: vec(g * h * h, 0.1),
            wb: vec(g * h, 0.1),
            rb: vec(g * h, 0.1),
            head_w: vec(v * h, 0.3),
            head_b: vec(v, 0.1),
        },
    }
}

fn time<N: Numeric>(blob: &[u8], label: &str) {
    let model = Model::from_bytes(blob).unwrap();
    let net = Network::<N>::new(&model).unwrap();
    let mut state = State::<N, 128>::new();
    let mut logits = Logits::<N, 50>::new();
    let mut rng = Rng::new(1);
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        net.sample_next(
            &mut state,
            &mut logits,
            Temperature::from_milli(500),
            &mut rng,
        )
        .unwrap();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    // The cell step alone, and the output layer alone, for the breakdown.
    let start = Instant::now();
    for i in 0..n {
        net.feed(&mut state, (i % 50) as u16).unwrap();
    }
    let step_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(net.logits(&state, &mut logits).unwrap());
    }
    let logits_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "{label}: {us:.2} us per generated char (cell step {step_us:.2}, output layer {logits_us:.2})"
    );
}

fn main() {
    // `step_timing write PATH`: save the G-shaped integer blob (for firmware profiling).
    if let (Some("write"), Some(path)) =
        (std::env::args().nth(1).as_deref(), std::env::args().nth(2))
    {
        std::fs::write(
            &path,
            spec(Cell::Lstm).int_blob(ScaleScheme::PerRow).unwrap(),
        )
        .unwrap();
        return;
    }
    for cell in [Cell::Lstm, Cell::Gru] {
        let s = spec(cell);
        time::<Int>(
            &s.int_blob(ScaleScheme::PerRow).unwrap(),
            &format!("{cell:?} int"),
        );
        if std::env::args().nth(1).as_deref() != Some("int") {
            time::<F32>(&s.f32_blob().unwrap(), &format!("{cell:?} f32"));
        }
    }
}
