//! lstm-edge runtime: a `no_std`, allocation-free LSTM/GRU engine for text models.
//!
//! One model blob (postcard, checked by magic, version and CRC-32) is borrowed in
//! place from flash. The same cell code runs on two numeric paths: [`numeric::Int`]
//! (int8 weights, int16 activations, no float arithmetic) and [`numeric::F32`].
#![no_std]
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
pub mod net;
pub mod numeric;
pub mod sample;
pub mod tokenize;

pub use error::Error;
pub use format::Model;
pub use net::{Fed, Logits, Network, State, Tokenizer};
pub use sample::{Rng, Temperature};
