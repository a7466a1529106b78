//! Reading model blobs from disk, with errors that name the file and the fix.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lstm_edge_runtime::format::Params;
use lstm_edge_runtime::Model;
use lstm_edge_trainer::pipeline::{in_model_dir, INT_BLOB_FILE};

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
    /// Reads and checks a blob (magic, version, CRC-32, dimensions). A model
    /// directory written by `lstm-edge train` stands for its integer blob.
    pub fn read(path: &Path) -> Result<Self> {
        let path = &resolve(path)?;
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

/// The blob a `--model` path names: the file itself, or a model directory's
/// integer blob.
fn resolve(path: &Path) -> Result<PathBuf> {
    let blob = in_model_dir(path, INT_BLOB_FILE);
    anyhow::ensure!(
        !path.is_dir() || blob.is_file(),
        "{} is a directory without {INT_BLOB_FILE}: pass a model directory written by `lstm-edge train` or `lstm-edge quantize`, or a .blob file",
        path.display()
    );
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_directory_stands_for_its_integer_blob() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join(INT_BLOB_FILE);
        std::fs::write(&blob, b"x").unwrap();
        assert_eq!(resolve(dir.path()).unwrap(), blob);
        assert_eq!(resolve(&blob).unwrap(), blob);
    }

    #[test]
    fn a_directory_without_a_blob_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("is a directory without model.blob") && err.contains("lstm-edge train"),
            "{err}"
        );
    }
}
