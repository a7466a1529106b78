//! Reading model blobs from disk, with errors that name the file and the fix.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lstm_edge_runtime::format::{Params, MAGIC};
use lstm_edge_runtime::Model;
use lstm_edge_trainer::checkpoint;
use lstm_edge_trainer::pipeline::{
    in_model_dir, CHECKPOINT_FILE, F32_BLOB_FILE, INT_BLOB_FILE, WITHOUT_CHECKPOINT,
};

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
        let cannot_read = || {
            format!(
                "cannot read model file {}: check the path (`lstm-edge train` writes a model directory and its model.blob; models/ holds the shipped ones)",
                path.display()
            )
        };
        let mut opened = std::fs::File::open(path).with_context(cannot_read)?;
        anyhow::ensure!(
            opened.metadata().with_context(cannot_read)?.is_file(),
            "{} is not a regular file: pass a model.blob or model-f32.blob, or a model directory",
            path.display()
        );
        // The head first (as long as a checkpoint's magic, the longer one): a large file
        // of another kind is named without reading it all.
        let mut bytes = Vec::new();
        (&mut opened)
            .take(8)
            .read_to_end(&mut bytes)
            .with_context(cannot_read)?;
        if bytes.starts_with(&MAGIC) {
            opened.read_to_end(&mut bytes).with_context(cannot_read)?;
        }
        let file = BlobFile {
            path: path.to_path_buf(),
            bytes,
        };
        file.model()?;
        Ok(file)
    }

    /// The decoded model, borrowing from the bytes.
    pub fn model(&self) -> Result<Model<'_>> {
        let path = self.path.display();
        anyhow::ensure!(
            !checkpoint::starts_like_checkpoint(&self.bytes),
            "{path} is a training checkpoint, not a model blob: {}",
            quantize_hint(&self.path)
        );
        anyhow::ensure!(
            !self.bytes.is_empty(),
            "{path} is empty: pass a model.blob or model-f32.blob, or a model directory"
        );
        anyhow::ensure!(
            self.bytes.starts_with(&MAGIC),
            "{path} is not an lstm-edge model blob (those start with {:?}): pass a model.blob or \
             model-f32.blob, or a model directory; an ONNX model goes through `lstm-edge import` first",
            String::from_utf8_lossy(&MAGIC)
        );
        Model::from_bytes(&self.bytes).map_err(|err| match err {
            lstm_edge_runtime::Error::UnsupportedVersion(_) => anyhow::anyhow!(
                "{path} was written by another lstm-edge: {err}; use the lstm-edge that wrote it, \
                 or rebuild the blob with this one (`lstm-edge quantize` from its checkpoint, or \
                 `lstm-edge import` from its ONNX)"
            ),
            _ => anyhow::anyhow!(
                "{path} is a damaged lstm-edge model blob: {err}; copy it again from where it came \
                 from, or rebuild it from its checkpoint with `lstm-edge quantize`\
                 {WITHOUT_CHECKPOINT}"
            ),
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
        !blob.is_dir(),
        "{} is a directory, not a blob file: pass a model directory or a .blob file",
        blob.display()
    );
    if path.is_dir() && !blob.is_file() {
        anyhow::ensure!(
            !checkpoint::is_checkpoint(&path.join(CHECKPOINT_FILE)),
            "{} holds a training checkpoint but no {INT_BLOB_FILE}: {}",
            path.display(),
            quantize_hint(path)
        );
        let f32_blob = path.join(F32_BLOB_FILE);
        anyhow::ensure!(
            !f32_blob.is_file(),
            "{} holds {F32_BLOB_FILE} but no {INT_BLOB_FILE}: `score`, `generate` and `firmware` \
             take {} itself, and `lstm-edge quantize` writes the integer blob",
            path.display(),
            f32_blob.display()
        );
        anyhow::bail!(
            "{} is a directory without {INT_BLOB_FILE}: pass a model directory written by `lstm-edge train` or `lstm-edge quantize`, or a .blob file",
            path.display()
        );
    }
    Ok(blob)
}

/// How to turn the checkpoint at `path` (a file or a model directory) into blobs.
fn quantize_hint(path: &Path) -> String {
    format!(
        "write its blobs with `lstm-edge quantize --checkpoint {}` with `--train REVIEWS` \
         (sentiment) or `--corpus FILE...` (generator) to calibrate on",
        path.display()
    )
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

    /// A device that never ends is refused before it is read.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_is_not_regular_is_refused_unread() {
        let err = BlobFile::read(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/zero is not a regular file"), "{err}");
    }

    #[test]
    fn a_checkpoint_in_place_of_a_blob_is_named_with_the_quantize_command() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join(CHECKPOINT_FILE);
        std::fs::write(&ckpt, b"LSTMEDCK\x02\0\0\0").unwrap();
        for given in [ckpt.clone(), dir.path().to_path_buf()] {
            let err = BlobFile::read(&given).unwrap_err().to_string();
            assert!(
                err.contains("training checkpoint")
                    && err.contains(&format!(
                        "lstm-edge quantize --checkpoint {}",
                        given.display()
                    )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_non_blob_a_damaged_blob_and_a_blob_directory_are_each_named() {
        let dir = tempfile::tempdir().unwrap();
        let (onnx, cut) = (dir.path().join("m.onnx"), dir.path().join("cut.blob"));
        std::fs::write(&onnx, b"\x08\x07\x12\x04onnx").unwrap();
        std::fs::write(&cut, b"LSTE\x01").unwrap();
        let err = BlobFile::read(&onnx).unwrap_err().to_string();
        assert!(
            err.contains("m.onnx is not an lstm-edge model blob (those start with \"LSTE\")")
                && err.contains("lstm-edge import"),
            "{err}"
        );
        let err = BlobFile::read(&cut).unwrap_err().to_string();
        assert!(
            err.contains("cut.blob is a damaged lstm-edge model blob: "),
            "{err}"
        );
        let newer = dir.path().join("newer.blob");
        let mut header = b"LSTE".to_vec();
        header.extend_from_slice(&(lstm_edge_runtime::format::VERSION + 1).to_le_bytes());
        header.resize(lstm_edge_runtime::format::HEADER_LEN, 0);
        std::fs::write(&newer, header).unwrap();
        let err = BlobFile::read(&newer).unwrap_err().to_string();
        assert!(
            err.contains("newer.blob was written by another lstm-edge: unsupported model format"),
            "{err}"
        );
        let nested = dir.path().join("nested");
        std::fs::create_dir_all(nested.join(INT_BLOB_FILE)).unwrap();
        let err = resolve(&nested).unwrap_err().to_string();
        assert!(
            err.contains("model.blob is a directory, not a blob file"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_without_a_blob_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("is a directory without model.blob") && err.contains("lstm-edge train"),
            "{err}"
        );
        std::fs::write(dir.path().join(F32_BLOB_FILE), b"").unwrap();
        let err = resolve(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(
                "holds model-f32.blob but no model.blob: `score`, `generate` and `firmware` take"
            ),
            "{err}"
        );
        let err = BlobFile::read(&dir.path().join(F32_BLOB_FILE))
            .unwrap_err()
            .to_string();
        assert!(err.contains("model-f32.blob is empty: pass"), "{err}");
    }
}
