//! lstm-edge trainer: datasets, training graphs run on ONNX Runtime, ONNX export,
//! and the import of foreign ONNX models.
//!
//! Each module below owns one job; add new modules here with one `pub mod` line.

pub mod autodiff;
pub mod bench;
pub mod bptt;
pub mod card;
pub mod checkpoint;
pub mod data;
pub mod export;
pub mod files;
pub mod import;
pub mod loss;
pub mod model;
pub mod onnx;
pub mod optim;
pub mod ort_env;
pub mod ort_ops;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod quantize;
pub mod shell;
pub mod step;
pub mod train;
