//! lstm-edge runtime: a `no_std`, allocation-free LSTM/GRU engine for text models.
//!
//! One model blob (postcard, checked by magic, version and CRC-32) is borrowed in
//! place from flash. The same cell code runs on two numeric paths: [`numeric::Int`]
//! (int8 weights, int16 activations, no float arithmetic) and [`numeric::F32`].
//!
//! All memory is the caller's: a [`State`] of `H` hidden units (at least the model's,
//! at most [`format::MAX_HIDDEN`]) and, for generators, [`Logits`] of `V` entries (at
//! least the model's softmax classes). Check the blob and build the [`Network`] once,
//! at boot: [`Model::from_bytes`] checksums the whole blob and [`Network::new`] checks
//! the vocabulary ([`Model::from_prefix`] reads a blob that padding follows, as in a
//! flash partition of its own). `lstm-edge inspect` prints a blob's hidden size and
//! classes, for `H` and `V`.
//!
//! A host that scores many texts with a word model can keep each word's input
//! pre-activations (`W·x`, most of a word step) after its first step, in an
//! [`InputMemo`] of caller buffers (`host::MemoBuffers` allocates them with
//! the `std` feature); the results do not change.
//!
//! A blob on a 4-byte boundary lets Cortex-M kernels load whole words (a
//! misaligned one runs, more slowly); `include_bytes!` alone gives no alignment:
//!
//! ```
//! #[repr(C, align(4))]
//! struct Aligned<T: ?Sized>(T);
//! static BLOB: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../models/g/model.blob"
//! )));
//! assert_eq!(BLOB.0.as_ptr() as usize % 4, 0);
//! # assert!(lstm_edge_runtime::Model::from_bytes(&BLOB.0).is_ok());
//! ```
//!
//! ```
//! use lstm_edge_runtime::numeric::{Int, Numeric};
//! use lstm_edge_runtime::{Logits, Model, Network, Rng, State, Temperature, Tokenizer};
//!
//! # fn main() -> Result<(), lstm_edge_runtime::Error> {
//! // A char-level sentiment model (mean head, LSTM 64).
//! let blob = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/c-mean/model.blob"));
//! let model = Model::from_bytes(blob)?;
//! let net = Network::<Int>::new(&model)?;
//! let mut state = State::<Int, 64>::new();
//! let score = net.score_text(&mut state, b"A wonderful, moving film.")?;
//! // The integer path's probability of "positive" has 30 fraction bits.
//! assert!(Int::prob_to_f64(score) > 0.5);
//!
//! // The same review streamed in pieces (split at whitespace), then finished:
//! // every piece but the last through `feed_text_piece`.
//! state.reset();
//! net.feed_text_piece(&mut state, b"A wonderful, ")?;
//! net.feed_text(&mut state, b"moving film.")?;
//! assert_eq!(net.finish(&mut state)?, score);
//!
//! // A generator (LSTM 128, 50 chars): 40 chars after a prompt, one at a time.
//! let blob = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/g/model.blob"));
//! let model = Model::from_bytes(blob)?;
//! let net = Network::<Int>::new(&model)?;
//! let Tokenizer::Chars(table) = net.tokenizer() else { unreachable!("a char model") };
//! let mut state = State::<Int, 128>::new();
//! let mut logits = Logits::<Int, 64>::new();
//! let mut rng = Rng::new(42);
//! net.feed_text(&mut state, b"the king ")?;
//! let mut text = Vec::new();
//! for _ in 0..40 {
//!     let id = net.sample_next(&mut state, &mut logits, Temperature::from_milli(500), &mut rng)?;
//!     // Chars are Latin-1 bytes; an UNK sample (a table with UNK) has none.
//!     text.extend(table.symbol(id));
//! }
//! assert_eq!(text.len(), 40);
//! # Ok(())
//! # }
//! ```
#![no_std]
#![deny(missing_docs)]
// The exceptions are the audited kernels: Cortex-M DSP (`numeric/dsp.rs`) and
// x86-64 AVX2 and AVX-512 (`numeric/x86/`).
#![deny(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(any(feature = "std", test))]
extern crate std;

#[cfg(feature = "std")]
pub mod builder;
pub mod error;
pub mod format;
#[cfg(feature = "std")]
pub mod host;
pub mod memo;
pub mod net;
pub mod numeric;
pub mod sample;
pub mod tokenize;

pub use error::Error;
pub use format::{Head, Model, Output};
pub use memo::InputMemo;
pub use net::{Fed, Logits, Network, State, Tokenizer};
pub use sample::{Rng, Temperature};
