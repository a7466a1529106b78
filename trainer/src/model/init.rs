//! Keras-like initialisation of `Params`: Glorot-uniform kernels, one orthogonal
//! recurrent kernel over all gates, the LSTM forget-gate bias, small embeddings.

use lstm_edge_runtime::format::Cell;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{InputConfig, ModelConfig, Params, Tensor};

/// ONNX LSTM gate order is i, o, f, c: the forget gate is block 2.
const LSTM_FORGET_GATE: usize = 2;

/// Word embeddings start in `U(-0.01, 0.01)`, a fifth of Keras' 0.05: RMSprop moves
/// every touched row by about the learning rate per step, so frequent words soon
/// outgrow the start, while rare words keep it; smaller random rows are less noise
/// to fit. On W it gave 0.3 to 1.0 points more validation accuracy on each of five
/// seeds.
const EMBEDDING_INIT: f32 = 0.01;

fn glorot_uniform(rng: &mut ChaCha8Rng, dims: &[usize], fan_in: usize, fan_out: usize) -> Tensor {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let n = dims.iter().product();
    Tensor {
        dims: dims.to_vec(),
        data: (0..n)
            .map(|_| rng.random_range(-limit..limit) as f32)
            .collect(),
    }
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; `1 - u` keeps the logarithm finite.
    let u: f64 = rng.random();
    let v: f64 = rng.random();
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A `rows x cols` matrix (`rows <= cols`) with orthonormal rows: Gram-Schmidt on a
/// Gaussian matrix, which is QR with a positive diagonal, as Keras' `Orthogonal` draws it.
fn orthonormal_rows(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<f64> {
    loop {
        let mut m: Vec<f64> = (0..rows * cols).map(|_| standard_normal(rng)).collect();
        let mut ok = true;
        for i in 0..rows {
            for j in 0..i {
                let dot: f64 = (0..cols).map(|k| m[i * cols + k] * m[j * cols + k]).sum();
                for k in 0..cols {
                    m[i * cols + k] -= dot * m[j * cols + k];
                }
            }
            let norm = (0..cols)
                .map(|k| m[i * cols + k].powi(2))
                .sum::<f64>()
                .sqrt();
            if norm < 1e-6 {
                ok = false;
                break;
            }
            for k in 0..cols {
                m[i * cols + k] /= norm;
            }
        }
        if ok {
            return m;
        }
    }
}

/// ONNX `R` (`[G*H, H]`) initialised as Keras initialises its recurrent kernel: the
/// whole `[H, G*H]` kernel is one orthogonal matrix (orthonormal rows), so `R` has
/// orthonormal columns and each gate's block is about `1/sqrt(G)` of an orthogonal one.
fn recurrent_orthogonal(rng: &mut ChaCha8Rng, gate_rows: usize, hidden: usize) -> Tensor {
    let kernel = orthonormal_rows(rng, hidden, gate_rows);
    let mut r = Tensor::zeros(&[gate_rows, hidden]);
    for (row, values) in r.data.chunks_mut(hidden).enumerate() {
        for (col, v) in values.iter_mut().enumerate() {
            *v = kernel[col * gate_rows + row] as f32;
        }
    }
    r
}

impl Params {
    /// Keras' defaults: Glorot-uniform `W` and dense kernel (over Keras' fused
    /// `[input, G*H]` kernel), one orthogonal recurrent kernel over all gates
    /// (`recurrent_orthogonal`), zero biases except the LSTM forget gate's 1.0
    /// (`unit_forget_bias`); the embedding is `U(-0.01, 0.01)` (`EMBEDDING_INIT`).
    /// Deterministic for a seed.
    pub fn init(cfg: &ModelConfig, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (h, i, g) = (cfg.hidden, cfg.input_dim(), cfg.cell.gates());
        let embedding = match &cfg.input {
            InputConfig::Chars { .. } => None,
            InputConfig::Words { embed_dim, .. } => {
                let n = cfg.vocab_rows() * embed_dim;
                Some(Tensor {
                    dims: vec![cfg.vocab_rows(), *embed_dim],
                    data: (0..n)
                        .map(|_| rng.random_range(-EMBEDDING_INIT..EMBEDDING_INIT))
                        .collect(),
                })
            }
        };
        let w = glorot_uniform(&mut rng, &[g * h, i], i, g * h);
        let r = recurrent_orthogonal(&mut rng, g * h, h);
        let mut wb = Tensor::zeros(&[g * h]);
        if cfg.cell == Cell::Lstm {
            wb.data[LSTM_FORGET_GATE * h..(LSTM_FORGET_GATE + 1) * h].fill(1.0);
        }
        let outputs = cfg.output.width();
        let features = cfg.feature_dim();
        Params {
            embedding,
            w,
            r,
            wb,
            rb: Tensor::zeros(&[g * h]),
            head_w: glorot_uniform(&mut rng, &[outputs, features], features, outputs),
            head_b: Tensor::zeros(&[outputs]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{chars_cfg, words_cfg};
    use lstm_edge_runtime::format::{Head, Output};

    #[test]
    fn init_is_deterministic_and_keras_like() {
        let cfg = chars_cfg(Cell::Lstm, Head::Last, Output::Softmax { classes: 7 });
        let a = Params::init(&cfg, 7);
        assert_eq!(a, Params::init(&cfg, 7));
        assert_ne!(a, Params::init(&cfg, 8));
        // Forget gate (block 2 of i,o,f,c) starts at 1, the rest at 0.
        assert_eq!(&a.wb.data[8..12], &[1.0; 4]);
        assert!(a.wb.data[..8]
            .iter()
            .chain(&a.wb.data[12..])
            .all(|&b| b == 0.0));
        assert!(a.rb.data.iter().all(|&b| b == 0.0));
        // As Keras' recurrent kernel, R [16, 4] is one orthogonal matrix over all
        // gates, R^T R = I, not one orthogonal block per gate (that is twice as large).
        let (h, rows) = (4, 16);
        for i in 0..h {
            for j in 0..h {
                let dot: f32 = (0..rows)
                    .map(|k| a.r.data[k * h + i] * a.r.data[k * h + j])
                    .sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "columns ({i},{j}): {dot}");
            }
        }
        for g in 0..4 {
            let block: f32 = a.r.data[g * h * h..(g + 1) * h * h]
                .iter()
                .map(|v| v * v)
                .sum();
            assert!(block < h as f32 - 0.5, "gate {g} block has norm^2 {block}");
        }
        let limit = (6.0f32 / (7 + 16) as f32).sqrt();
        assert!(a.w.data.iter().all(|w| w.abs() <= limit));
        let words = Params::init(&words_cfg(), 7);
        let table = &words.embedding.as_ref().unwrap().data;
        assert!(table.iter().all(|v| v.abs() <= EMBEDDING_INIT));
        assert!(table.iter().any(|v| v.abs() > EMBEDDING_INIT / 2.0));
    }

    #[test]
    fn gru_biases_start_at_zero() {
        let cfg = chars_cfg(Cell::Gru, Head::Mean, Output::Sigmoid);
        let p = Params::init(&cfg, 3);
        assert!(p.wb.data.iter().chain(&p.rb.data).all(|&b| b == 0.0));
    }
}
