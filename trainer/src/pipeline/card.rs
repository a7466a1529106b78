//! `card.json`: the model card plus what the workflow knows about the run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::card::ModelCard;
use crate::data::LengthStats;
use crate::files;
use crate::quantize::Calibration;
use crate::train::EpochStats;

use super::evaluate::Evaluation;
use super::{DataSource, CARD_FILE, F32_BLOB_FILE, INT_BLOB_FILE, ONNX_FILE, STEP_ONNX_FILE};
/// The exported files as the card saw them written: size in bytes, and CRC-32 (as
/// zlib and the `crc32` tool compute it, in hex) so that a file swapped for another
/// model's of the same size is caught too. Cards of earlier builds have no CRCs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelFiles {
    pub int_blob: u64,
    pub f32_blob: u64,
    pub onnx: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int_blob_crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f32_blob_crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx_crc32: Option<String>,
    /// `model-step.onnx`, written for last-state models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_onnx: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_onnx_crc32: Option<String>,
}

/// One of the files that [`ModelFiles`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFile {
    IntBlob,
    F32Blob,
    Onnx,
    StepOnnx,
}

impl ModelFile {
    pub fn file_name(self) -> &'static str {
        match self {
            ModelFile::IntBlob => INT_BLOB_FILE,
            ModelFile::F32Blob => F32_BLOB_FILE,
            ModelFile::Onnx => ONNX_FILE,
            ModelFile::StepOnnx => STEP_ONNX_FILE,
        }
    }
}

/// Size and CRC-32 of a file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp {
    pub bytes: u64,
    pub crc32: String,
}

impl FileStamp {
    pub fn of(bytes: &[u8]) -> Self {
        FileStamp {
            bytes: bytes.len() as u64,
            crc32: format!("{:08x}", crate::checkpoint::CRC.checksum(bytes)),
        }
    }
}

impl ModelFiles {
    /// What the card records for `file`: size and CRC-32, each where it has one.
    pub fn recorded(&self, file: ModelFile) -> (Option<u64>, Option<&str>) {
        match file {
            ModelFile::IntBlob => (Some(self.int_blob), self.int_blob_crc32.as_deref()),
            ModelFile::F32Blob => (Some(self.f32_blob), self.f32_blob_crc32.as_deref()),
            ModelFile::Onnx => (Some(self.onnx), self.onnx_crc32.as_deref()),
            ModelFile::StepOnnx => (self.step_onnx, self.step_onnx_crc32.as_deref()),
        }
    }

    /// Records `file` as just written, or as absent (`None`, for the step ONNX of a
    /// model without one).
    pub fn record(&mut self, file: ModelFile, stamp: Option<FileStamp>) {
        let (bytes, crc32) = match stamp {
            Some(s) => (s.bytes, Some(s.crc32)),
            None => (0, None),
        };
        match file {
            ModelFile::IntBlob => (self.int_blob, self.int_blob_crc32) = (bytes, crc32),
            ModelFile::F32Blob => (self.f32_blob, self.f32_blob_crc32) = (bytes, crc32),
            ModelFile::Onnx => (self.onnx, self.onnx_crc32) = (bytes, crc32),
            ModelFile::StepOnnx => {
                (self.step_onnx, self.step_onnx_crc32) = (crc32.is_some().then_some(bytes), crc32)
            }
        }
    }

    /// `bytes`, read from `path`, must be the file the card records: the same size and,
    /// where the card has one, the same CRC-32. `fix` says how to mend a mismatch.
    pub fn check(&self, file: ModelFile, path: &Path, bytes: &[u8], fix: &str) -> Result<()> {
        let stamp = FileStamp::of(bytes);
        let (size, crc32) = self.recorded(file);
        let (what, found, recorded) = if let Some(size) = size.filter(|&s| s != stamp.bytes) {
            ("is", format!("{} bytes", stamp.bytes), format!("{size}"))
        } else {
            match crc32 {
                Some(crc32) if crc32 != stamp.crc32 => {
                    ("has", format!("CRC-32 {}", stamp.crc32), crc32.to_string())
                }
                _ => return Ok(()),
            }
        };
        anyhow::bail!(
            "{} {what} {found}, but card.json records {recorded} for it: it is not the file \
             the card describes (one copied from another model?): {fix}",
            path.display()
        )
    }
}

/// How the run was set up, so `eval` can rebuild its evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub data: DataSource,
    pub vocab_size: Option<usize>,
    pub word_vectors: Option<PathBuf>,
    #[serde(default)]
    pub word2vec_epochs: Option<usize>,
    #[serde(default)]
    pub freeze_embedding: bool,
    /// The epoch whose weights were kept, when the best epoch was kept (`--keep-best`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_epoch: Option<usize>,
    /// Early-stopping patience in epochs (`--patience`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    pub test_limit: Option<usize>,
    pub device: String,
    pub threads: usize,
    /// Wall time of the command that wrote the card, in seconds (training, export,
    /// quantization, evaluation; a resumed run counts from its resume, and its epochs'
    /// own times are in the history).
    pub seconds: f64,
}

/// `card.json`: the model card plus what the workflow knows about the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainedCard {
    #[serde(flatten)]
    pub card: ModelCard,
    pub command: String,
    pub job: JobRecord,
    pub history: Vec<EpochStats>,
    pub evaluation: Option<Evaluation>,
    pub calibration: Option<Calibration>,
    pub files: ModelFiles,
    /// Notebook-style length figures of the training and test text at the run's maxlen.
    pub length_stats: Vec<LengthRecord>,
}

/// [`LengthStats`] of one set, as stored in the card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LengthRecord {
    pub set: String,
    pub maxlen: usize,
    pub sequences: usize,
    pub padded: usize,
    pub exact: usize,
    pub truncated: usize,
    pub average_len: f64,
}

impl LengthRecord {
    pub(super) fn new(set: &str, s: &LengthStats) -> Self {
        LengthRecord {
            set: set.to_string(),
            maxlen: s.maxlen,
            sequences: s.sequences,
            padded: s.padded,
            exact: s.exact,
            truncated: s.truncated,
            average_len: s.average_len(),
        }
    }
}

impl TrainedCard {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(CARD_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            if let Some(holder) = crate::files::FolderLock::holder(dir) {
                return format!(
                    "cannot read {}: {holder} is writing to {}: wait for it to end",
                    path.display(),
                    dir.display()
                );
            }
            // A run stopped while writing its model leaves its checkpoint, not its card.
            if crate::checkpoint::is_checkpoint(&dir.join(super::CHECKPOINT_FILE)) {
                return format!(
                    "cannot read {}: {} holds a checkpoint but no card: if a `train` into it \
                     was stopped, its command with --resume finishes the model",
                    path.display(),
                    dir.display()
                );
            }
            let import = dir.join(crate::import::IMPORT_FILE);
            if import.is_file() {
                return format!(
                    "{} is a model imported by `lstm-edge import`, which has no {CARD_FILE}: \
                     its blobs were checked against tract on import (the figures are in {}); \
                     `score`, `generate`, `inspect` and `firmware` take it",
                    dir.display(),
                    import.display()
                );
            }
            // `export` and `quantize` into another folder write no card.
            let written = [super::INT_BLOB_FILE, super::ONNX_FILE]
                .iter()
                .any(|name| dir.join(name).is_file());
            if written {
                let blob = match dir.join(super::INT_BLOB_FILE).is_file() {
                    true => ", or run its model.blob with `score`, `generate` and `inspect`",
                    false => "",
                };
                return format!(
                    "cannot read {}: {} holds a model's files but no card (`export` and \
                     `quantize` into a folder of their own write none): evaluate the folder \
                     `train` wrote{blob}",
                    path.display(),
                    dir.display()
                );
            }
            format!(
                "cannot read {}: is {} a model directory written by `lstm-edge train`?",
                path.display(),
                dir.display()
            )
        })?;
        // Checks the card version and names the file in errors.
        ModelCard::from_json(&text, &path.display().to_string())?;
        let mut json = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut json).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a valid lstm-edge model card ({}): {}",
                path.display(),
                crate::card::field_error(&e),
                ModelCard::RESTORE
            )
        })
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).context("encoding the model card")?;
        files::write_atomic(&dir.join(CARD_FILE), (json + "\n").as_bytes())
    }

    /// Puts the evaluation's figures into the card's metrics map.
    pub(super) fn set_metrics(&mut self, eval: &Evaluation, sentiment: bool) {
        let metrics = &mut self.card.metrics;
        let (loss, set) = if sentiment {
            ("bce", "test")
        } else {
            ("cross_entropy", "held_out")
        };
        metrics.insert(format!("{set}_samples"), eval.samples as f64);
        metrics.insert(format!("{set}_accuracy_f32"), eval.float.accuracy);
        metrics.insert(format!("{set}_accuracy_int"), eval.quantized.accuracy);
        metrics.insert(format!("{set}_{loss}_f32"), eval.float.loss);
        metrics.insert(format!("{set}_{loss}_int"), eval.quantized.loss);
        metrics.insert(
            "decision_agreement_int_vs_f32".into(),
            eval.decision_agreement,
        );
        self.evaluation = Some(eval.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_a_card_says_whether_a_stopped_run_can_finish_it() {
        let dir = tempfile::tempdir().unwrap();
        let plain = format!("{:#}", TrainedCard::read(dir.path()).unwrap_err());
        assert!(
            plain.contains("a model directory written by `lstm-edge train`?"),
            "{plain}"
        );
        assert!(!plain.contains("--resume"), "{plain}");
        let exported = tempfile::tempdir().unwrap();
        std::fs::write(exported.path().join(super::super::ONNX_FILE), b"").unwrap();
        let err = format!("{:#}", TrainedCard::read(exported.path()).unwrap_err());
        assert!(
            err.contains("holds a model's files but no card") && !err.contains("score"),
            "{err}"
        );
        // A blob there runs with the blob commands.
        std::fs::write(exported.path().join(super::super::INT_BLOB_FILE), b"").unwrap();
        let err = format!("{:#}", TrainedCard::read(exported.path()).unwrap_err());
        assert!(
            err.contains("or run its model.blob with `score`, `generate` and `inspect`"),
            "{err}"
        );
        // Only a checkpoint's magic matters to the hint.
        std::fs::write(
            dir.path().join(super::super::CHECKPOINT_FILE),
            b"LSTMEDCK....",
        )
        .unwrap();
        let stopped = format!("{:#}", TrainedCard::read(dir.path()).unwrap_err());
        assert!(
            stopped.contains("holds a checkpoint but no card: if a `train` into it was stopped, its command with --resume finishes the model"),
            "{stopped}"
        );
        // An imported folder is named as one; a checkpoint beside it says more.
        std::fs::write(dir.path().join(crate::import::IMPORT_FILE), b"{}").unwrap();
        let stopped_again = format!("{:#}", TrainedCard::read(dir.path()).unwrap_err());
        assert!(stopped_again.contains("--resume"), "{stopped_again}");
        std::fs::remove_file(dir.path().join(super::super::CHECKPOINT_FILE)).unwrap();
        let imported = format!("{:#}", TrainedCard::read(dir.path()).unwrap_err());
        assert!(
            imported.contains("is a model imported by `lstm-edge import`"),
            "{imported}"
        );
    }

    #[test]
    fn a_file_must_have_the_recorded_size_and_crc() {
        let path = Path::new("m/model.blob");
        let mut files = ModelFiles::default();
        files.record(ModelFile::IntBlob, Some(FileStamp::of(b"abc")));
        assert_eq!(files.int_blob_crc32.as_deref(), Some("352441c2"));
        assert!(files.check(ModelFile::IntBlob, path, b"abc", "fix").is_ok());
        let err = |bytes: &[u8], files: &ModelFiles| {
            let e = files.check(ModelFile::IntBlob, path, bytes, "fix");
            e.unwrap_err().to_string()
        };
        assert_eq!(
            err(b"abcd", &files),
            "m/model.blob is 4 bytes, but card.json records 3 for it: it is not the file the \
             card describes (one copied from another model?): fix"
        );
        assert!(err(b"abd", &files).starts_with(
            "m/model.blob has CRC-32 ab40d461, but card.json records 352441c2 for it"
        ));
        // A card of an earlier build records the size only.
        files.int_blob_crc32 = None;
        assert!(files.check(ModelFile::IntBlob, path, b"abd", "fix").is_ok());
        // No step ONNX recorded: nothing to check; one recorded must be there as written.
        assert!(files
            .check(ModelFile::StepOnnx, path, b"any", "fix")
            .is_ok());
        files.record(ModelFile::StepOnnx, Some(FileStamp::of(b"abc")));
        assert_eq!(files.step_onnx, Some(3));
        assert!(files
            .check(ModelFile::StepOnnx, path, b"abd", "fix")
            .is_err());
        files.record(ModelFile::StepOnnx, None);
        assert_eq!(
            (files.step_onnx, files.step_onnx_crc32.as_deref()),
            (None, None)
        );
    }

    #[test]
    fn a_rewritten_card_keeps_every_number_exactly() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/g");
        let tmp = tempfile::tempdir().unwrap();
        TrainedCard::read(&shipped)
            .unwrap()
            .write(tmp.path())
            .unwrap();
        let text = |dir: &Path| std::fs::read_to_string(dir.join(CARD_FILE)).unwrap();
        let (original, rewritten) = (text(&shipped), text(tmp.path()));
        let numbers: Vec<&str> = original
            .lines()
            .filter(|l| l.contains("_loss\":") || l.contains("_accuracy\":"))
            .collect();
        assert!(
            numbers.len() > 24,
            "{} loss and accuracy lines",
            numbers.len()
        );
        for line in numbers {
            assert!(rewritten.contains(line), "changed on rewrite: {line}");
        }
    }
}
