//! Model configuration, parameters (in ONNX layout and gate order), their
//! Keras-like initialisation, the notebook presets, and a plain f64 reference
//! forward pass that exported models and the runtime are checked against.
//!
//! This file holds the configuration and parameter types; the initialisation,
//! the reference pass and the presets each have a submodule, re-exported here.

mod init;
mod pooling;
mod preset;
mod reference;

use anyhow::{bail, ensure, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::tokenize::{CharTable, Vocab};
use lstm_edge_runtime::Tokenizer;
use serde::{Deserialize, Serialize};

pub(crate) use pooling::pad_pooling_weights;
pub use preset::{HeadKind, Hyperparams, OptimizerKind, Preset};
#[cfg(test)] // the gradient checks' reference
pub(crate) use reference::cell_update;
pub use reference::ReferenceState;

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

    /// The runtime's tokenizer for a char input (`None` for words).
    pub fn char_table(&self) -> Option<Result<CharTable<'_>>> {
        match self {
            InputConfig::Chars {
                table,
                lowercase,
                unk,
                pad,
            } => Some(CharTable::new(table, *lowercase, *unk, *pad).map_err(Into::into)),
            InputConfig::Words { .. } => None,
        }
    }

    /// The runtime's tokenizer for this input, chars or words.
    pub fn tokenizer(&self) -> Result<Tokenizer<'_>> {
        Ok(match self {
            InputConfig::Chars {
                table,
                lowercase,
                unk,
                pad,
            } => Tokenizer::Chars(CharTable::new(table, *lowercase, *unk, *pad)?),
            InputConfig::Words {
                strings, offsets, ..
            } => Tokenizer::Words(Vocab::new(strings, offsets)?),
        })
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

/// "words" or "chars".
fn input_kind(input: &InputConfig) -> &'static str {
    match input {
        InputConfig::Words { .. } => "words",
        InputConfig::Chars { .. } => "chars",
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

/// The first byte that `table` lists twice (a char table holds each char once).
pub fn repeated_byte(table: &[u8]) -> Option<u8> {
    let mut seen = [false; 256];
    table
        .iter()
        .copied()
        .find(|&b| std::mem::replace(&mut seen[usize::from(b)], true))
}

impl ModelConfig {
    /// What differs from `other`, one `field: self's value vs other's` entry each.
    /// Whether `other` differs from this model only in the tokens its training text
    /// gave it (the vocabulary's words, the char table), as when the data differ.
    pub fn differs_only_in_tokens(&self, other: &ModelConfig) -> bool {
        let mut same_tokens = self.clone();
        match (&mut same_tokens.input, &other.input) {
            (
                InputConfig::Words {
                    strings, offsets, ..
                },
                InputConfig::Words {
                    strings: s,
                    offsets: o,
                    ..
                },
            ) => (*strings, *offsets) = (s.clone(), o.clone()),
            (
                InputConfig::Chars { table, unk, .. },
                InputConfig::Chars {
                    table: t, unk: u, ..
                },
            ) => {
                (*table, *unk) = (t.clone(), *u);
            }
            _ => return false,
        }
        same_tokens == *other
    }

    pub fn differences(&self, other: &ModelConfig) -> Vec<String> {
        let mut out = Vec::new();
        let mut compare = |field: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{field} {a} vs {b}"));
            }
        };
        compare("cell", self.cell.to_string(), other.cell.to_string());
        compare("hidden", self.hidden.to_string(), other.hidden.to_string());
        compare("head", self.head.to_string(), other.head.to_string());
        compare("output", self.output.to_string(), other.output.to_string());
        compare(
            "dropout",
            self.dropout.to_string(),
            other.dropout.to_string(),
        );
        match (&self.input, &other.input) {
            (InputConfig::Words { embed_dim: a, .. }, InputConfig::Words { embed_dim: b, .. }) => {
                compare("embedding width", a.to_string(), b.to_string());
                compare(
                    "vocabulary size",
                    self.input.words().to_string(),
                    other.input.words().to_string(),
                );
            }
            (InputConfig::Chars { .. }, InputConfig::Chars { .. }) => {}
            (a, b) => compare("input", input_kind(a).into(), input_kind(b).into()),
        }
        if out.is_empty() && self.input != other.input {
            out.push(match self.input {
                InputConfig::Words { .. } => {
                    "the vocabulary's words (built from other training text)".into()
                }
                InputConfig::Chars { .. } => "the char table".into(),
            });
        }
        out
    }

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
        match self.head.flatten_maxlen() {
            Some(maxlen) => maxlen as usize * self.hidden,
            None => self.hidden,
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
                if let Some(b) = repeated_byte(table) {
                    bail!("model config: char table lists byte {b:#04x} twice");
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
        if let Some(maxlen) = self.head.flatten_maxlen() {
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

impl Params {
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
}

/// Small model configs shared by the tests of this module and its submodules.
#[cfg(test)]
mod fixtures {
    use super::*;

    pub(super) fn chars_cfg(cell: Cell, head: Head, output: Output) -> ModelConfig {
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

    pub(super) fn words_cfg() -> ModelConfig {
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
}

#[cfg(test)]
mod tests {
    use super::fixtures::{chars_cfg, words_cfg};
    use super::*;

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
    fn differences_name_each_changed_field() {
        let w = words_cfg();
        assert!(w.differences(&w).is_empty());
        let wider = ModelConfig {
            hidden: 8,
            head: Head::Mean,
            ..w.clone()
        };
        assert_eq!(
            w.differences(&wider),
            [
                "hidden 3 vs 8",
                "head flatten (maxlen 5) vs mean over steps"
            ]
        );
        let mut other_words = w.clone();
        if let InputConfig::Words { strings, .. } = &mut other_words.input {
            strings[0] = b'c';
        }
        assert_eq!(
            w.differences(&other_words),
            ["the vocabulary's words (built from other training text)"]
        );
        let chars = chars_cfg(Cell::Gru, w.head, w.output);
        assert!(w
            .differences(&chars)
            .contains(&"input words vs chars".to_string()));
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
}
