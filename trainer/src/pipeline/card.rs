//! `card.json`: the model card plus what the workflow knows about the run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::card::ModelCard;
use crate::data::LengthStats;
use crate::quantize::Calibration;
use crate::train::EpochStats;

use super::evaluate::Evaluation;
use super::{DataSource, CARD_FILE};
/// Sizes of the exported files, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSizes {
    pub int_blob: u64,
    pub f32_blob: u64,
    pub onnx: u64,
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
    pub files: FileSizes,
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
            format!(
                "cannot read {}: is {} a model directory written by `lstm-edge train`?",
                path.display(),
                dir.display()
            )
        })?;
        // Checks the card version and names the file in errors.
        ModelCard::from_json(&text, &path.display().to_string())?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a card written by `lstm-edge train`",
                path.display()
            )
        })
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CARD_FILE);
        let tmp = dir.join(format!("{CARD_FILE}.tmp"));
        let json = serde_json::to_string_pretty(self).context("encoding the model card")?;
        std::fs::write(&tmp, json + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
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
