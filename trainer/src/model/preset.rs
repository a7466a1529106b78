//! The notebook's presets and the training hyperparameters they fill in.

use anyhow::{bail, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use serde::{Deserialize, Serialize};

use super::{InputConfig, ModelConfig};
use crate::data::Truncate;

/// The notebook's workloads: word sentiment, char sentiment, char
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
    /// Sequence length: reviews are post-padded and truncated to it; the generator's window.
    pub maxlen: usize,
    /// Which end of a review longer than `maxlen` is kept.
    #[serde(default)]
    pub truncate: Truncate,
    pub hidden: usize,
    /// Word embedding width (word input only).
    pub embed_dim: usize,
    pub dropout: f32,
    pub batch_size: usize,
    pub epochs: usize,
    pub optimizer: OptimizerKind,
    pub learning_rate: f32,
    /// Clip all gradients together to this global L2 norm before each update
    /// (`None`: no clipping, as in the notebook).
    #[serde(default)]
    pub clip_norm: Option<f32>,
    /// Multiply the learning rate by this after every epoch (`None`: constant, as
    /// in the notebook).
    #[serde(default)]
    pub lr_decay: Option<f32>,
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
            truncate: Truncate::Post,
            hidden: 50,
            embed_dim: 300,
            dropout: 0.2,
            batch_size: 32,
            epochs: 2,
            optimizer: OptimizerKind::RmsProp,
            // Keras' RMSprop default.
            learning_rate: 0.001,
            clip_norm: None,
            lr_decay: None,
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
            HeadKind::Flatten => {
                let maxlen = self.maxlen as u32;
                match self.truncate {
                    Truncate::Post => Head::Flatten { maxlen },
                    Truncate::Pre => Head::FlattenTail { maxlen },
                }
            }
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
