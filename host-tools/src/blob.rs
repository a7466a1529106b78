//! Reading model blobs from disk, with errors that name the file and the fix.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lstm_edge_runtime::format::Params;
use lstm_edge_runtime::Model;

/// A model blob read into memory.
#[derive(Debug, Clone)]
pub struct BlobFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// The numeric path a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericPath {
    Int,
    F32,
}

impl NumericPath {
    pub fn name(self) -> &'static str {
        match self {
            NumericPath::Int => "int8/int16 fixed-point",
            NumericPath::F32 => "f32",
        }
    }
}

impl BlobFile {
    /// Reads and checks a blob (magic, version, CRC-32, dimensions).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read model file {}: check the path (models are written by `lstm-edge quantize` or shipped in models/)",
                path.display()
            )
        })?;
        let file = BlobFile {
            path: path.to_path_buf(),
            bytes,
        };
        file.model()?;
        Ok(file)
    }

    /// The decoded model, borrowing from the bytes.
    pub fn model(&self) -> Result<Model<'_>> {
        Model::from_bytes(&self.bytes).map_err(|err| {
            anyhow::anyhow!(
                "{} is not a valid lstm-edge model blob: {err} (rebuild it with `lstm-edge quantize`, or pass a .blob file, not the .onnx)",
                self.path.display()
            )
        })
    }

    /// Which numeric path the blob holds.
    pub fn numeric_path(&self) -> Result<NumericPath> {
        Ok(match self.model()?.body().params {
            Params::Int(_) => NumericPath::Int,
            Params::F32(_) => NumericPath::F32,
        })
    }
}
