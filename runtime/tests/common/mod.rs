//! Random models and a plain f64 reference LSTM/GRU for the runtime's tests.
#![allow(dead_code)]

use lstm_edge_runtime::builder::{FloatWeights, InputSpec, ModelSpec};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::tokenize::words::encode_vocab;

/// Deterministic uniform numbers for test weights, from the runtime's own generator.
pub struct TestRng(lstm_edge_runtime::Rng);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(lstm_edge_runtime::Rng::new(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn vec(&mut self, n: usize, amp: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-amp, amp)).collect()
    }
}

pub const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz .,!?";

/// A random model: one-hot chars (with UNK and PAD) or a small word vocabulary.
pub fn random_model(
    cell: Cell,
    hidden: usize,
    words: bool,
    head: Head,
    output: Output,
    amp: f32,
    seed: u64,
) -> ModelSpec {
    let mut rng = TestRng::new(seed);
    let (input, input_dim, tokens, embedding) = if words {
        let list: Vec<Vec<u8>> = [
            "the", "movie", "was", "good", "bad", "not", "a", "plot", "acting", ".",
        ]
        .iter()
        .map(|w| w.as_bytes().to_vec())
        .collect();
        let (strings, offsets) = encode_vocab(list);
        let embed_dim = 16usize;
        let tokens = 10 + 2;
        let embedding = rng.vec(tokens * embed_dim, amp);
        (
            InputSpec::Words {
                strings,
                offsets,
                embed_dim: embed_dim as u16,
            },
            embed_dim,
            tokens,
            embedding,
        )
    } else {
        let n = CHARS.len() + 2;
        (
            InputSpec::Chars {
                symbols: CHARS.to_vec(),
                lowercase: true,
                unk: true,
                pad: true,
            },
            n,
            n,
            Vec::new(),
        )
    };
    let _ = tokens;
    let g = cell.gates();
    let features = head
        .flatten_maxlen()
        .map_or(hidden, |maxlen| maxlen as usize * hidden);
    let outputs = output.width();
    let weights = FloatWeights {
        embedding,
        w: rng.vec(g * hidden * input_dim, amp),
        r: rng.vec(g * hidden * hidden, amp),
        wb: rng.vec(g * hidden, amp),
        rb: rng.vec(g * hidden, amp),
        head_w: rng.vec(
            outputs * features,
            amp / (features as f32 / hidden as f32).sqrt(),
        ),
        head_b: rng.vec(outputs, amp),
    };
    ModelSpec {
        cell,
        hidden: hidden as u16,
        input,
        head,
        output,
        weights,
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `spec` with an embedding `width` values wide, and input weights to match.
pub fn widened(mut spec: ModelSpec, width: u16, seed: u64) -> ModelSpec {
    let mut rng = TestRng::new(seed);
    let InputSpec::Words { embed_dim, .. } = &mut spec.input else {
        panic!("widened: a word model");
    };
    let tokens = spec.weights.embedding.len() / usize::from((*embed_dim).max(1));
    *embed_dim = width;
    let rows = spec.weights.wb.len();
    spec.weights.embedding = rng.vec(tokens * width as usize, 0.5);
    spec.weights.w = rng.vec(rows * width as usize, 0.5);
    spec
}

/// The plain f64 reference: runs `ids` (already padded/truncated by the caller)
/// and returns the output layer's values (sigmoid score or softmax probabilities).
pub fn reference(spec: &ModelSpec, ids: &[u16]) -> Vec<f64> {
    let w = &spec.weights;
    let h_n = spec.hidden as usize;
    let (one_hot, in_dim) = match &spec.input {
        InputSpec::Chars {
            symbols, unk, pad, ..
        } => (true, symbols.len() + *unk as usize + *pad as usize),
        InputSpec::Words { embed_dim, .. } => (false, *embed_dim as usize),
    };
    let x_of = |id: usize| -> Vec<f64> {
        if one_hot {
            (0..in_dim)
                .map(|k| if k == id { 1.0 } else { 0.0 })
                .collect()
        } else {
            w.embedding[id * in_dim..(id + 1) * in_dim]
                .iter()
                .map(|&v| v as f64)
                .collect()
        }
    };
    let mat = |m: &[f32], row: usize, v: &[f64]| -> f64 {
        let width = v.len();
        m[row * width..(row + 1) * width]
            .iter()
            .zip(v)
            .map(|(&a, &b)| a as f64 * b)
            .sum()
    };
    let mut h = vec![0f64; h_n];
    let mut c = vec![0f64; h_n];
    let mut states = Vec::new();
    for &id in ids {
        let x = x_of(id as usize);
        let xp = |row: usize| mat(&w.w, row, &x) + w.wb[row] as f64;
        let hp = |row: usize| mat(&w.r, row, &h) + w.rb[row] as f64;
        let mut h_new = vec![0f64; h_n];
        for j in 0..h_n {
            match spec.cell {
                Cell::Lstm => {
                    let gate = |g: usize| xp(g * h_n + j) + hp(g * h_n + j);
                    let (i, o, f, gg) = (
                        sigmoid(gate(0)),
                        sigmoid(gate(1)),
                        sigmoid(gate(2)),
                        gate(3).tanh(),
                    );
                    c[j] = f * c[j] + i * gg;
                    h_new[j] = o * c[j].tanh();
                }
                Cell::Gru => {
                    let z = sigmoid(xp(j) + hp(j));
                    let r = sigmoid(xp(h_n + j) + hp(h_n + j));
                    let n = (xp(2 * h_n + j) + r * hp(2 * h_n + j)).tanh();
                    h_new[j] = (1.0 - z) * n + z * h[j];
                }
            }
        }
        h = h_new;
        states.push(h.clone());
    }
    let features: Vec<f64> = match spec.head {
        Head::Flatten { .. } | Head::FlattenTail { .. } => states.concat(),
        Head::Last => h.clone(),
        Head::Mean => (0..h_n)
            .map(|j| states.iter().map(|s| s[j]).sum::<f64>() / states.len().max(1) as f64)
            .collect(),
    };
    let logits: Vec<f64> = (0..spec.output.width())
        .map(|k| mat(&w.head_w, k, &features) + w.head_b[k] as f64)
        .collect();
    match spec.output {
        Output::Sigmoid => vec![sigmoid(logits[0])],
        Output::Softmax { .. } => {
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        }
    }
}

/// `n` random token ids valid for `spec` (never PAD, so padding stays the model's job).
pub fn random_ids(spec: &ModelSpec, n: usize, seed: u64) -> Vec<u16> {
    let mut rng = TestRng::new(seed);
    let (lo, count) = match &spec.input {
        InputSpec::Chars { symbols, .. } => (0, symbols.len() + 1), // symbols + UNK
        InputSpec::Words { .. } => (1, 11),                         // UNK + words
    };
    (0..n).map(|_| (lo + rng.below(count)) as u16).collect()
}
