//! Model configuration, parameters (in ONNX layout and gate order), their
//! Keras-like initialisation, the notebook presets, and a plain f64 reference
//! forward pass that exported models and the runtime are checked against.

use anyhow::{bail, ensure, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A dense f32 tensor, row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(dims: &[usize]) -> Self {
        Tensor {
            dims: dims.to_vec(),
            data: vec![0.0; dims.iter().product()],
        }
    }

    /// A tensor from data whose length must match `dims`.
    pub fn new(dims: &[usize], data: Vec<f32>) -> Result<Self> {
        let expected: usize = dims.iter().product();
        ensure!(
            data.len() == expected,
            "tensor of dims {dims:?} needs {expected} values, got {}",
            data.len()
        );
        Ok(Tensor {
            dims: dims.to_vec(),
            data,
        })
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dims as ONNX wants them.
    pub fn dims_i64(&self) -> Vec<i64> {
        self.dims.iter().map(|&d| d as i64).collect()
    }

    /// Row `i` of a 2-D tensor.
    fn row(&self, i: usize) -> &[f32] {
        let cols = self.dims[1];
        &self.data[i * cols..(i + 1) * cols]
    }
}

/// How text becomes input vectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputConfig {
    /// One-hot chars. Ids: `table[i]` is `i`, then UNK, then PAD when present
    /// (the runtime's `CharTable`).
    Chars {
        table: Vec<u8>,
        lowercase: bool,
        unk: bool,
        pad: bool,
    },
    /// A word embedding. Ids: 0 = PAD, 1 = UNK, `2 + i` = the i-th sorted word;
    /// `strings`/`offsets` as in the runtime's `Vocab` (n + 1 little-endian u32 offsets).
    Words {
        strings: Vec<u8>,
        offsets: Vec<u8>,
        embed_dim: usize,
    },
}

impl InputConfig {
    /// Number of words of a word vocabulary (0 for chars).
    pub fn words(&self) -> usize {
        match self {
            InputConfig::Chars { .. } => 0,
            InputConfig::Words { offsets, .. } => (offsets.len() / 4).saturating_sub(1),
        }
    }

    /// The id that pads a sequence up to a flatten head's `maxlen`.
    pub fn pad_id(&self) -> Option<u16> {
        match self {
            InputConfig::Chars {
                table, unk, pad, ..
            } => pad.then_some((table.len() + usize::from(*unk)) as u16),
            InputConfig::Words { .. } => Some(0),
        }
    }
}

/// Everything that fixes a model's shapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub cell: Cell,
    pub input: InputConfig,
    pub hidden: usize,
    pub head: Head,
    pub output: Output,
    /// Dropout rate after the recurrent layer during training (inference ignores it).
    pub dropout: f32,
}

impl ModelConfig {
    /// Width of the recurrent layer's input: the char table or the embedding width.
    pub fn input_dim(&self) -> usize {
        match &self.input {
            InputConfig::Chars { .. } => self.vocab_rows(),
            InputConfig::Words { embed_dim, .. } => *embed_dim,
        }
    }

    /// Distinct token ids: chars incl. UNK/PAD, or words + 2 (PAD, UNK).
    pub fn vocab_rows(&self) -> usize {
        match &self.input {
            InputConfig::Chars {
                table, unk, pad, ..
            } => table.len() + usize::from(*unk) + usize::from(*pad),
            InputConfig::Words { .. } => self.input.words() + 2,
        }
    }

    /// Gate rows of `W` and `R`.
    pub fn gate_rows(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    /// Inputs of the dense layer: `H`, or `maxlen * H` for the flatten head.
    pub fn feature_dim(&self) -> usize {
        match self.head {
            Head::Flatten { maxlen } => maxlen as usize * self.hidden,
            Head::Last | Head::Mean => self.hidden,
        }
    }

    /// Checks the combination is one the runtime accepts, naming the bad field.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.hidden > 0, "model config: hidden must be at least 1");
        ensure!(
            (0.0..1.0).contains(&self.dropout),
            "model config: dropout {} must be in [0, 1)",
            self.dropout
        );
        match &self.input {
            InputConfig::Chars { table, .. } => {
                let mut seen = [false; 256];
                for &b in table {
                    ensure!(
                        !std::mem::replace(&mut seen[b as usize], true),
                        "model config: char table lists byte {b:#04x} twice"
                    );
                }
            }
            InputConfig::Words {
                offsets, embed_dim, ..
            } => {
                ensure!(*embed_dim > 0, "model config: embed_dim must be at least 1");
                ensure!(
                    offsets.len() >= 4 && offsets.len() % 4 == 0,
                    "model config: word offsets must be n + 1 little-endian u32 values, got {} bytes",
                    offsets.len()
                );
            }
        }
        ensure!(
            self.vocab_rows() <= u16::MAX as usize,
            "model config: {} token ids do not fit in u16",
            self.vocab_rows()
        );
        if let Head::Flatten { maxlen } = self.head {
            ensure!(
                maxlen > 0,
                "model config: flatten maxlen must be at least 1"
            );
            ensure!(
                self.input.pad_id().is_some(),
                "model config: the flatten head pads to maxlen, so the char table needs pad: true"
            );
        }
        if let Output::Softmax { classes } = self.output {
            ensure!(
                classes >= 2,
                "model config: softmax needs at least 2 classes"
            );
        }
        Ok(())
    }
}

/// The trainable parameters, in ONNX `LSTM`/`GRU` layout without the direction axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// `[vocab_rows, embed_dim]`, word input only.
    pub embedding: Option<Tensor>,
    /// `[G*H, input_dim]`.
    pub w: Tensor,
    /// `[G*H, H]`.
    pub r: Tensor,
    /// `[G*H]`, the first half of ONNX `B`.
    pub wb: Tensor,
    /// `[G*H]`, the second half of ONNX `B`.
    pub rb: Tensor,
    /// `[outputs, feature_dim]`.
    pub head_w: Tensor,
    /// `[outputs]`.
    pub head_b: Tensor,
}

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

    /// Every parameter tensor by a stable name (checkpoints, ONNX initializers).
    pub fn named(&self) -> Vec<(&'static str, &Tensor)> {
        let mut out = Vec::with_capacity(7);
        if let Some(e) = &self.embedding {
            out.push(("embedding", e));
        }
        out.extend([
            ("w", &self.w),
            ("r", &self.r),
            ("wb", &self.wb),
            ("rb", &self.rb),
            ("head_w", &self.head_w),
            ("head_b", &self.head_b),
        ]);
        out
    }

    /// Mutable access in the order and with the names of [`Params::named`].
    pub fn named_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        let mut out = Vec::with_capacity(7);
        if let Some(e) = &mut self.embedding {
            out.push(("embedding", e));
        }
        out.extend([
            ("w", &mut self.w),
            ("r", &mut self.r),
            ("wb", &mut self.wb),
            ("rb", &mut self.rb),
            ("head_w", &mut self.head_w),
            ("head_b", &mut self.head_b),
        ]);
        out
    }

    /// Checks every tensor has the shape `cfg` implies, naming the first that does not.
    pub fn check_shapes(&self, cfg: &ModelConfig) -> Result<()> {
        let (gh, h) = (cfg.gate_rows(), cfg.hidden);
        let expect_embedding = match &cfg.input {
            InputConfig::Chars { .. } => None,
            InputConfig::Words { embed_dim, .. } => Some(vec![cfg.vocab_rows(), *embed_dim]),
        };
        match (&self.embedding, expect_embedding) {
            (None, None) => {}
            (Some(e), Some(dims)) if e.dims == dims => {}
            (e, dims) => bail!(
                "parameter embedding: expected dims {dims:?}, found {:?}",
                e.as_ref().map(|e| &e.dims)
            ),
        }
        let expected = [
            ("w", vec![gh, cfg.input_dim()]),
            ("r", vec![gh, h]),
            ("wb", vec![gh]),
            ("rb", vec![gh]),
            ("head_w", vec![cfg.output.width(), cfg.feature_dim()]),
            ("head_b", vec![cfg.output.width()]),
        ];
        for ((name, t), (_, dims)) in self
            .named()
            .into_iter()
            .filter(|(n, _)| *n != "embedding")
            .zip(expected)
        {
            ensure!(
                t.dims == dims && t.data.len() == dims.iter().product::<usize>(),
                "parameter {name}: expected dims {dims:?}, found {:?} with {} values",
                t.dims,
                t.data.len()
            );
        }
        Ok(())
    }

    /// Inference-mode outputs (sigmoid score or softmax probabilities) for one
    /// sequence, in f32; see [`Params::forward_reference`].
    pub fn forward(&self, cfg: &ModelConfig, ids: &[u16]) -> Vec<f32> {
        self.forward_reference(cfg, ids)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    /// The reference forward pass in f64, written plainly. A flatten head
    /// post-pads with PAD (and post-truncates) to `maxlen`, as training does; last
    /// and mean heads use the ids as given. Panics on ids out of range or shapes
    /// that do not match `cfg` (check them with [`Params::check_shapes`]).
    pub fn forward_reference(&self, cfg: &ModelConfig, ids: &[u16]) -> Vec<f64> {
        let ids: Vec<u16> = match cfg.head {
            Head::Flatten { maxlen } => {
                let pad = cfg.input.pad_id().expect("flatten head needs a PAD id");
                let maxlen = maxlen as usize;
                ids.iter()
                    .copied()
                    .chain(std::iter::repeat(pad))
                    .take(maxlen)
                    .collect()
            }
            Head::Last | Head::Mean => ids.to_vec(),
        };
        let h = cfg.hidden;
        let mut state = ReferenceState::new(cfg);
        let mut features = vec![0.0f64; cfg.feature_dim()];
        for (t, &id) in ids.iter().enumerate() {
            self.step(cfg, id, &mut state);
            match cfg.head {
                Head::Flatten { .. } => features[t * h..(t + 1) * h].copy_from_slice(&state.h),
                Head::Mean => features.iter_mut().zip(&state.h).for_each(|(f, v)| *f += v),
                Head::Last => features.copy_from_slice(&state.h),
            }
        }
        if cfg.head == Head::Mean && !ids.is_empty() {
            features.iter_mut().for_each(|f| *f /= ids.len() as f64);
        }
        self.dense_output(cfg, &features)
    }

    /// The dense layer and output activation on head features.
    pub fn dense_output(&self, cfg: &ModelConfig, features: &[f64]) -> Vec<f64> {
        let logits: Vec<f64> = (0..cfg.output.width())
            .map(|o| {
                let row = self.head_w.row(o);
                let dot: f64 = row.iter().zip(features).map(|(&w, &x)| w as f64 * x).sum();
                dot + self.head_b.data[o] as f64
            })
            .collect();
        match cfg.output {
            Output::Sigmoid => logits.iter().map(|&z| sigmoid(z)).collect(),
            Output::Softmax { .. } => {
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exp: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
                let sum: f64 = exp.iter().sum();
                exp.iter().map(|e| e / sum).collect()
            }
        }
    }

    /// One recurrent step (ONNX equations; GRU with `linear_before_reset = 1`).
    pub fn step(&self, cfg: &ModelConfig, id: u16, state: &mut ReferenceState) {
        let h = cfg.hidden;
        let id = id as usize;
        assert!(id < cfg.vocab_rows(), "token id {id} is out of range");
        // Input projection W x + Wb: a column of W for one-hot, W · embedding row for words.
        let wx: Vec<f64> = match &self.embedding {
            None => (0..cfg.gate_rows())
                .map(|row| self.w.row(row)[id] as f64 + self.wb.data[row] as f64)
                .collect(),
            Some(e) => {
                let x = e.row(id);
                (0..cfg.gate_rows())
                    .map(|row| {
                        let dot: f64 = self
                            .w
                            .row(row)
                            .iter()
                            .zip(x)
                            .map(|(&w, &x)| w as f64 * x as f64)
                            .sum();
                        dot + self.wb.data[row] as f64
                    })
                    .collect()
            }
        };
        let rh: Vec<f64> = (0..cfg.gate_rows())
            .map(|row| {
                let dot: f64 = self
                    .r
                    .row(row)
                    .iter()
                    .zip(&state.h)
                    .map(|(&r, &h)| r as f64 * h)
                    .sum();
                dot + self.rb.data[row] as f64
            })
            .collect();
        match cfg.cell {
            Cell::Lstm => {
                for k in 0..h {
                    let gate = |g: usize| wx[g * h + k] + rh[g * h + k];
                    let (i, o, f, c) = (
                        sigmoid(gate(0)),
                        sigmoid(gate(1)),
                        sigmoid(gate(2)),
                        gate(3).tanh(),
                    );
                    state.c[k] = f * state.c[k] + i * c;
                    state.h[k] = o * state.c[k].tanh();
                }
            }
            Cell::Gru => {
                for k in 0..h {
                    let z = sigmoid(wx[k] + rh[k]);
                    let r = sigmoid(wx[h + k] + rh[h + k]);
                    let n = (wx[2 * h + k] + r * rh[2 * h + k]).tanh();
                    state.h[k] = (1.0 - z) * n + z * state.h[k];
                }
            }
        }
    }
}

/// Recurrent state of the reference pass (`c` stays zero for GRU).
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceState {
    pub h: Vec<f64>,
    pub c: Vec<f64>,
}

impl ReferenceState {
    pub fn new(cfg: &ModelConfig) -> Self {
        ReferenceState {
            h: vec![0.0; cfg.hidden],
            c: vec![0.0; cfg.hidden],
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The notebook's workloads (DESIGN.md): word sentiment, char sentiment, char
/// generator, and the generator with a GRU (R; any preset takes `cell: Gru`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    W,
    C,
    G,
    R,
}

impl std::str::FromStr for Preset {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "W" => Ok(Preset::W),
            "C" => Ok(Preset::C),
            "G" => Ok(Preset::G),
            "R" => Ok(Preset::R),
            _ => bail!("unknown preset {s:?}: expected W, C, G or R"),
        }
    }
}

/// Head kind without its length (the length is [`Hyperparams::maxlen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeadKind {
    Flatten,
    Last,
    Mean,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptimizerKind {
    RmsProp,
    Adam,
}

/// Training hyperparameters; every field may be overridden after [`Preset::defaults`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyperparams {
    pub preset: Preset,
    pub cell: Cell,
    pub head: HeadKind,
    /// Sequence length: reviews are post-padded/truncated to it; the generator's window.
    pub maxlen: usize,
    pub hidden: usize,
    /// Word embedding width (word input only).
    pub embed_dim: usize,
    pub dropout: f32,
    pub batch_size: usize,
    pub epochs: usize,
    pub optimizer: OptimizerKind,
    pub learning_rate: f32,
    /// Generator: stride between training windows.
    pub window_step: usize,
    /// Sentiment: reviews used (train + validation); `None` = all.
    pub train_samples: Option<usize>,
    /// Fraction of `train_samples` held out for validation.
    pub validation_split: f32,
    pub seed: u64,
}

impl Preset {
    /// The notebook's hyperparameters for this workload.
    pub fn defaults(self) -> Hyperparams {
        let sentiment = Hyperparams {
            preset: self,
            cell: Cell::Lstm,
            head: HeadKind::Flatten,
            maxlen: 200,
            hidden: 50,
            embed_dim: 300,
            dropout: 0.2,
            batch_size: 32,
            epochs: 2,
            optimizer: OptimizerKind::RmsProp,
            // Keras' RMSprop default.
            learning_rate: 0.001,
            window_step: 0,
            train_samples: Some(16_000),
            validation_split: 0.2,
            seed: 42,
        };
        let generator = Hyperparams {
            head: HeadKind::Last,
            maxlen: 40,
            hidden: 128,
            embed_dim: 0,
            dropout: 0.0,
            batch_size: 128,
            epochs: 12,
            learning_rate: 0.01,
            window_step: 3,
            train_samples: None,
            validation_split: 0.0,
            ..sentiment.clone()
        };
        match self {
            Preset::W => sentiment,
            Preset::C => Hyperparams {
                maxlen: 1500,
                hidden: 40,
                embed_dim: 0,
                ..sentiment
            },
            Preset::G => generator,
            Preset::R => Hyperparams {
                cell: Cell::Gru,
                ..generator
            },
        }
    }
}

impl Hyperparams {
    /// The runtime head these hyperparameters describe.
    pub fn head(&self) -> Head {
        match self.head {
            HeadKind::Flatten => Head::Flatten {
                maxlen: self.maxlen as u32,
            },
            HeadKind::Last => Head::Last,
            HeadKind::Mean => Head::Mean,
        }
    }

    /// The model for an input (built from the data) and an output layer.
    pub fn model_config(&self, input: InputConfig, output: Output) -> ModelConfig {
        ModelConfig {
            cell: self.cell,
            input,
            hidden: self.hidden,
            head: self.head(),
            output,
            dropout: self.dropout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars_cfg(cell: Cell, head: Head, output: Output) -> ModelConfig {
        ModelConfig {
            cell,
            input: InputConfig::Chars {
                table: b"abcde".to_vec(),
                lowercase: true,
                unk: true,
                pad: true,
            },
            hidden: 4,
            head,
            output,
            dropout: 0.0,
        }
    }

    fn words_cfg() -> ModelConfig {
        let words: [&[u8]; 3] = [b"bad", b"good", b"movie"];
        let mut offsets = vec![0u32];
        let mut strings = Vec::new();
        for w in words {
            strings.extend_from_slice(w);
            offsets.push(strings.len() as u32);
        }
        ModelConfig {
            cell: Cell::Gru,
            input: InputConfig::Words {
                strings,
                offsets: offsets.iter().flat_map(|o| o.to_le_bytes()).collect(),
                embed_dim: 6,
            },
            hidden: 3,
            head: Head::Flatten { maxlen: 5 },
            output: Output::Sigmoid,
            dropout: 0.2,
        }
    }

    #[test]
    fn dims_follow_the_config() {
        let c = chars_cfg(Cell::Lstm, Head::Flatten { maxlen: 7 }, Output::Sigmoid);
        assert_eq!((c.input_dim(), c.vocab_rows(), c.feature_dim()), (7, 7, 28));
        assert_eq!(c.input.pad_id(), Some(6));
        let w = words_cfg();
        assert_eq!((w.input_dim(), w.vocab_rows(), w.feature_dim()), (6, 5, 15));
        let p = Params::init(&w, 1);
        p.check_shapes(&w).unwrap();
        assert_eq!(p.embedding.as_ref().unwrap().dims, [5, 6]);
        assert_eq!(p.w.dims, [9, 6]);
        assert_eq!(p.named().len(), 7);
        assert_eq!(Params::init(&c, 1).named().len(), 6);
    }

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

    #[test]
    fn lstm_step_matches_hand_computation() {
        // One unit, one-hot input of width 7, weights chosen by hand (exact in f32).
        let mut cfg = chars_cfg(Cell::Lstm, Head::Last, Output::Sigmoid);
        cfg.hidden = 1;
        let mut p = Params::init(&cfg, 0);
        p.w.data.fill(0.0);
        // Column 2 (id 2) of each gate row i,o,f,c.
        for (gate, v) in [0.5, -0.25, 1.0, 2.0].into_iter().enumerate() {
            p.w.data[gate * 7 + 2] = v;
        }
        p.r.data.copy_from_slice(&[0.125, 0.25, 0.375, 0.5]);
        p.wb.data.fill(0.0);
        p.head_w.data[0] = 1.5;
        p.head_b.data[0] = -0.5;
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let (mut h, mut c) = (0.0f64, 0.0f64);
        for _ in 0..2 {
            let (i, o, f, g) = (
                s(0.5 + 0.125 * h),
                s(-0.25 + 0.25 * h),
                s(1.0 + 0.375 * h),
                (2.0 + 0.5 * h).tanh(),
            );
            c = f * c + i * g;
            h = o * c.tanh();
        }
        let expected = s(1.5 * h - 0.5);
        let got = p.forward_reference(&cfg, &[2, 2]);
        assert!((got[0] - expected).abs() < 1e-12, "{got:?} vs {expected}");
    }

    #[test]
    fn gru_step_uses_linear_before_reset() {
        let mut cfg = chars_cfg(Cell::Gru, Head::Last, Output::Sigmoid);
        cfg.hidden = 1;
        let mut p = Params::init(&cfg, 0);
        p.w.data.fill(0.0);
        for (gate, v) in [0.375, -0.625, 0.875].into_iter().enumerate() {
            p.w.data[gate * 7 + 1] = v;
        }
        p.r.data.copy_from_slice(&[0.5, 0.75, -1.125]);
        p.rb.data.copy_from_slice(&[0.0, 0.0, 0.25]);
        p.head_w.data[0] = 2.0;
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut h = 0.0f64;
        for _ in 0..3 {
            let z = s(0.375 + 0.5 * h);
            let r = s(-0.625 + 0.75 * h);
            let n = (0.875 + r * (-1.125 * h + 0.25)).tanh();
            h = (1.0 - z) * n + z * h;
        }
        let got = p.forward_reference(&cfg, &[1, 1, 1]);
        assert!((got[0] - s(2.0 * h)).abs() < 1e-12);
    }

    #[test]
    fn flatten_pads_and_truncates_mean_averages() {
        let cfg = words_cfg();
        let p = Params::init(&cfg, 5);
        let short = p.forward_reference(&cfg, &[2, 3]);
        let padded = p.forward_reference(&cfg, &[2, 3, 0, 0, 0]);
        assert_eq!(short, padded);
        let long = p.forward_reference(&cfg, &[2, 3, 4, 4, 1, 2, 2]);
        assert_eq!(long, p.forward_reference(&cfg, &[2, 3, 4, 4, 1]));

        let mut mean_cfg = chars_cfg(Cell::Lstm, Head::Mean, Output::Sigmoid);
        mean_cfg.hidden = 2;
        let m = Params::init(&mean_cfg, 9);
        let (mut s1, mut s2) = (ReferenceState::new(&mean_cfg), vec![0.0; 2]);
        for id in [0u16, 4, 1] {
            m.step(&mean_cfg, id, &mut s1);
            s2.iter_mut().zip(&s1.h).for_each(|(a, b)| *a += b / 3.0);
        }
        let want = m.dense_output(&mean_cfg, &s2);
        let got = m.forward_reference(&mean_cfg, &[0, 4, 1]);
        assert!((want[0] - got[0]).abs() < 1e-12);
    }

    #[test]
    fn softmax_outputs_sum_to_one() {
        let cfg = chars_cfg(Cell::Lstm, Head::Last, Output::Softmax { classes: 7 });
        let p = Params::init(&cfg, 2);
        let probs = p.forward(&cfg, &[0, 1, 2, 3]);
        assert_eq!(probs.len(), 7);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bad_configs_and_shapes_are_named() {
        let mut cfg = chars_cfg(Cell::Lstm, Head::Flatten { maxlen: 3 }, Output::Sigmoid);
        cfg.input = InputConfig::Chars {
            table: b"aba".to_vec(),
            lowercase: false,
            unk: true,
            pad: true,
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("twice"));
        let mut cfg = chars_cfg(Cell::Lstm, Head::Flatten { maxlen: 3 }, Output::Sigmoid);
        if let InputConfig::Chars { pad, .. } = &mut cfg.input {
            *pad = false;
        }
        assert!(cfg.validate().unwrap_err().to_string().contains("pad"));
        let cfg = chars_cfg(Cell::Lstm, Head::Last, Output::Sigmoid);
        let mut p = Params::init(&cfg, 0);
        p.r = Tensor::zeros(&[16, 5]);
        assert!(p
            .check_shapes(&cfg)
            .unwrap_err()
            .to_string()
            .contains("parameter r"));
    }

    #[test]
    fn presets_carry_the_notebook_hyperparameters() {
        let w = Preset::W.defaults();
        assert_eq!(
            (w.maxlen, w.hidden, w.embed_dim, w.batch_size, w.epochs),
            (200, 50, 300, 32, 2)
        );
        assert_eq!(w.head(), Head::Flatten { maxlen: 200 });
        let c = Preset::C.defaults();
        assert_eq!((c.maxlen, c.hidden), (1500, 40));
        let g = Preset::G.defaults();
        assert_eq!(
            (g.maxlen, g.hidden, g.batch_size, g.epochs, g.window_step),
            (40, 128, 128, 12, 3)
        );
        assert_eq!(g.learning_rate, 0.01);
        assert_eq!(g.head(), Head::Last);
        let r = Preset::R.defaults();
        assert_eq!(r.cell, Cell::Gru);
        assert_eq!("g".parse::<Preset>().unwrap(), Preset::G);
        assert!("x".parse::<Preset>().is_err());
    }
}
