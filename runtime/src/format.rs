//! The model blob: header (magic, version, body length, CRC-32) and a postcard body
//! borrowed in place. Gate order everywhere is ONNX's: LSTM i,o,f,c; GRU z,r,h
//! (with `linear_before_reset = 1`).

use serde::{Deserialize, Serialize};

/// Recurrent cell type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    /// 4 gates in ONNX order i, o, f, c.
    Lstm,
    /// 3 gates in ONNX order z, r, h, `linear_before_reset = 1`.
    Gru,
}

impl Cell {
    /// Gates per hidden unit.
    pub const fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// How per-step hidden states become the output layer's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Head {
    /// The notebook's head: all `maxlen` hidden states flattened (post-padded,
    /// post-truncated), so the dense layer has `maxlen * hidden` inputs.
    Flatten { maxlen: u32 },
    /// The last hidden state.
    Last,
    /// The mean of the hidden states over the fed tokens.
    Mean,
}

/// The output layer after the head's dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// One logit through a sigmoid (sentiment).
    Sigmoid,
    /// `classes` logits through a softmax (next-char generation).
    Softmax { classes: u16 },
}

impl Output {
    /// Number of logits.
    pub const fn width(self) -> usize {
        match self {
            Output::Sigmoid => 1,
            Output::Softmax { classes } => classes as usize,
        }
    }
}
