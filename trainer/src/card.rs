//! The model card: a JSON file beside each exported model that records the data,
//! hyperparameters, dimensions, tokenizer, metrics and tool versions.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, ensure, Context, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use serde::{Deserialize, Serialize};

use crate::model::{Hyperparams, InputConfig, ModelConfig, Params};

/// Version of the card's JSON layout; readers refuse a newer one.
pub const CARD_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub card_version: u32,
    pub name: String,
    pub description: String,
    pub data: DataInfo,
    /// `None` for models not trained by this tool (imported weights, say).
    pub hyperparameters: Option<Hyperparams>,
    pub dims: CardDims,
    pub tokenizer: TokenizerInfo,
    /// Evaluation results by name (`"test_accuracy"`, `"val_loss"`, ...), filled by
    /// whoever measures them.
    pub metrics: BTreeMap<String, f64>,
    pub versions: Versions,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// Files or corpus names the model was trained on.
    pub sources: Vec<String>,
    pub train_samples: usize,
    pub validation_samples: usize,
    pub test_samples: usize,
    /// [`EvalSet::fingerprint`](crate::pipeline::EvalSet::fingerprint) of the test set,
    /// so that `eval` can tell a file that changed since training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fingerprint: Option<u64>,
    /// Preprocessing in words (lowercasing, windowing, padding).
    pub preprocessing: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardDims {
    pub cell: Cell,
    pub gates: usize,
    pub hidden: usize,
    pub input_dim: usize,
    pub vocab_rows: usize,
    pub head: Head,
    pub feature_dim: usize,
    pub output: Output,
    pub outputs: usize,
    /// Trainable scalars in all tensors.
    pub parameters: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenizerInfo {
    Chars {
        /// The symbols in id order, as Latin-1 chars.
        table: String,
        lowercase: bool,
        unk_id: Option<u16>,
        pad_id: Option<u16>,
    },
    Words {
        /// Words in the vocabulary, not counting PAD (id 0) and UNK (id 1).
        vocab_size: usize,
        embed_dim: usize,
        pad_id: u16,
        unk_id: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub lstm_edge: String,
    pub onnx_opset: i64,
    pub onnxruntime: String,
    pub model_format: u16,
}

impl ModelCard {
    /// A card for `cfg`/`params`, with empty metrics.
    pub fn new(
        name: &str,
        cfg: &ModelConfig,
        params: &Params,
        hyperparameters: Option<Hyperparams>,
        data: DataInfo,
    ) -> Self {
        let tokenizer = match &cfg.input {
            InputConfig::Chars {
                table,
                lowercase,
                unk,
                ..
            } => TokenizerInfo::Chars {
                table: table.iter().map(|&b| char::from(b)).collect(),
                lowercase: *lowercase,
                unk_id: unk.then_some(table.len() as u16),
                pad_id: cfg.input.pad_id(),
            },
            InputConfig::Words { embed_dim, .. } => TokenizerInfo::Words {
                vocab_size: cfg.input.words(),
                embed_dim: *embed_dim,
                pad_id: 0,
                unk_id: 1,
            },
        };
        ModelCard {
            card_version: CARD_VERSION,
            name: name.to_string(),
            description: String::new(),
            data,
            hyperparameters,
            dims: CardDims {
                cell: cfg.cell,
                gates: cfg.cell.gates(),
                hidden: cfg.hidden,
                input_dim: cfg.input_dim(),
                vocab_rows: cfg.vocab_rows(),
                head: cfg.head,
                feature_dim: cfg.feature_dim(),
                output: cfg.output,
                outputs: cfg.output.width(),
                parameters: params.named().iter().map(|(_, t)| t.len()).sum(),
            },
            tokenizer,
            metrics: BTreeMap::new(),
            versions: Versions {
                lstm_edge: env!("CARGO_PKG_VERSION").to_string(),
                onnx_opset: crate::export::EXPORT_OPSET,
                onnxruntime: crate::ort_env::loaded_version().to_string(),
                model_format: lstm_edge_runtime::format::VERSION,
            },
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model card always serialises")
    }

    /// The card-reading fix, shared by the readers of the whole card and of its parts.
    pub const RESTORE: &'static str = "restore the card.json that `lstm-edge train` wrote (a \
        copy, or a rerun of the `command` it records)";

    /// Parses a card; `origin` (a file name) is named in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let fix = Self::RESTORE;
        // serde would read a struct from an array too, and name the type in its message.
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| anyhow!("{origin}: not valid JSON ({e}): {fix}"))?;
        ensure!(
            value.is_object(),
            "{origin}: not a model card (a JSON object is expected): {fix}"
        );
        // Before the fields: a newer card may have ones this build does not know.
        if let Some(version) = value["card_version"].as_u64() {
            ensure!(
                version <= u64::from(CARD_VERSION),
                "{origin}: card_version {version} is newer than this tool reads ({CARD_VERSION}); \
                 update lstm-edge"
            );
        }
        let card: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            anyhow!(
                "{origin}: not a valid lstm-edge model card ({}): {fix}",
                field_error(&e)
            )
        })?;
        if let Some(conflict) = card.conflict() {
            anyhow::bail!("{origin}: the card contradicts itself ({conflict}): {fix}");
        }
        Ok(card)
    }

    /// The first pair of fields that cannot both hold for one model, as the card's
    /// writer derives each from the other: an edited card would otherwise describe
    /// a model that is not in its folder.
    fn conflict(&self) -> Option<String> {
        let d = &self.dims;
        let mut conflicts = Vec::new();
        if d.gates != d.cell.gates() {
            conflicts.push(format!(
                "dims.gates is {} but an {} cell has {}",
                d.gates,
                d.cell,
                d.cell.gates()
            ));
        }
        if let Some(h) = self.hyperparameters.as_ref().filter(|h| h.cell != d.cell) {
            conflicts.push(format!(
                "hyperparameters.cell is {:?} but dims.cell is {:?}",
                h.cell, d.cell
            ));
        }
        if d.outputs != d.output.width() {
            conflicts.push(format!(
                "dims.outputs is {} but a {:?} output has {}",
                d.outputs,
                d.output,
                d.output.width()
            ));
        }
        let rows = match &self.tokenizer {
            TokenizerInfo::Chars {
                table,
                unk_id,
                pad_id,
                ..
            } => {
                // Ids: the symbols, then UNK, then PAD, each when present.
                let symbols = table.chars().count();
                let unk = symbols as u16;
                let pad = unk + u16::from(unk_id.is_some());
                if unk_id.is_some_and(|id| id != unk) || pad_id.is_some_and(|id| id != pad) {
                    conflicts.push(format!(
                        "tokenizer.unk_id {unk_id:?} and pad_id {pad_id:?} do not follow its \
                         {symbols} symbols (UNK {unk}, then PAD)"
                    ));
                }
                symbols + usize::from(unk_id.is_some()) + usize::from(pad_id.is_some())
            }
            TokenizerInfo::Words {
                vocab_size,
                embed_dim,
                pad_id,
                unk_id,
            } => {
                if (*pad_id, *unk_id) != (0, 1) {
                    conflicts.push(format!(
                        "tokenizer.pad_id {pad_id} and unk_id {unk_id} are not 0 and 1"
                    ));
                }
                if *embed_dim != d.input_dim {
                    conflicts.push(format!(
                        "tokenizer.embed_dim is {embed_dim} but dims.input_dim is {}",
                        d.input_dim
                    ));
                }
                vocab_size + 2
            }
        };
        if rows != d.vocab_rows {
            conflicts.push(format!(
                "dims.vocab_rows is {} but the tokenizer gives {rows} ids",
                d.vocab_rows
            ));
        }
        (!conflicts.is_empty()).then(|| conflicts.join("; "))
    }

    /// Writes the card atomically (see [`crate::files::write_atomic`]).
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::files::write_atomic(path, (self.to_json() + "\n").as_bytes())
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading model card {}", path.display()))?;
        Self::from_json(&text, &path.display().to_string())
    }
}

/// A serde error with the card field it is about (`dims.hidden: invalid value ...`);
/// one about the whole card (a missing top-level field) is given as it is.
pub fn field_error<E: std::fmt::Display>(err: &serde_path_to_error::Error<E>) -> String {
    match err.path().to_string().as_str() {
        "." => err.inner().to_string(),
        path => format!("field `{path}`: {}", err.inner()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Preset;

    fn card() -> ModelCard {
        let hp = Preset::G.defaults();
        let cfg = hp.model_config(
            InputConfig::Chars {
                table: b"ab\n\xe6".to_vec(),
                lowercase: true,
                unk: false,
                pad: false,
            },
            Output::Softmax { classes: 4 },
        );
        let params = Params::init(&cfg, 0);
        let mut card = ModelCard::new("g", &cfg, &params, Some(hp), DataInfo::default());
        card.metrics.insert("val_loss".into(), 1.25);
        card
    }

    #[test]
    fn card_round_trips_through_json() -> Result<()> {
        let card = card();
        assert_eq!(
            card.dims.parameters,
            4 * 128 * 4 + 4 * 128 * 128 + 2 * 4 * 128 + 4 * 128 + 4
        );
        let json = card.to_json();
        assert!(json.contains("\"kind\": \"chars\""), "{json}");
        assert!(json.contains("ab\\næ"), "{json}");
        assert_eq!(ModelCard::from_json(&json, "card.json")?, card);
        Ok(())
    }

    #[test]
    fn a_card_whose_fields_contradict_each_other_is_refused_by_field() {
        type Edit = fn(&mut ModelCard);
        let edits: [(&str, Edit); 5] = [
            ("dims.gates is 3 but an LSTM cell has 4", |c| {
                c.dims.gates = 3
            }),
            ("hyperparameters.cell is Gru but dims.cell is Lstm", |c| {
                c.hyperparameters.as_mut().unwrap().cell = Cell::Gru
            }),
            (
                "dims.outputs is 2 but a Softmax { classes: 4 } output has 4",
                |c| c.dims.outputs = 2,
            ),
            (
                "tokenizer.unk_id Some(9) and pad_id None do not follow its 4 symbols",
                |c| {
                    if let TokenizerInfo::Chars { unk_id, .. } = &mut c.tokenizer {
                        *unk_id = Some(9);
                    }
                },
            ),
            ("dims.vocab_rows is 9 but the tokenizer gives", |c| {
                c.dims.vocab_rows = 9
            }),
        ];
        assert!(ModelCard::from_json(&card().to_json(), "card.json").is_ok());
        for (expected, edit) in edits {
            let mut edited = card();
            edit(&mut edited);
            let err = ModelCard::from_json(&edited.to_json(), "m/card.json")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("m/card.json: the card contradicts itself (")
                    && err.contains(expected),
                "{err}"
            );
        }
    }

    #[test]
    fn newer_or_broken_cards_are_refused_with_the_file_name() {
        let mut card = card();
        card.card_version = CARD_VERSION + 1;
        let err = ModelCard::from_json(&card.to_json(), "m.json").unwrap_err();
        assert!(err.to_string().contains("m.json"), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
        let err = ModelCard::from_json("{}", "x.json").unwrap_err();
        assert!(format!("{err:#}").contains("x.json"), "{err:#}");
        for (text, what) in [
            ("{\"name\": ", "x.json: not valid JSON (EOF while parsing"),
            ("[]", "x.json: not a model card (a JSON object is expected)"),
            (
                "{}",
                "x.json: not a valid lstm-edge model card (missing field",
            ),
        ] {
            let err = format!("{:#}", ModelCard::from_json(text, "x.json").unwrap_err());
            assert!(
                err.starts_with(what) && err.contains("restore the card.json"),
                "{err}"
            );
        }
        // A bad value is named by its field.
        let mut value: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
        value["card_version"] = CARD_VERSION.into();
        value["dims"]["hidden"] = (-3).into();
        let err = format!(
            "{:#}",
            ModelCard::from_json(&value.to_string(), "x.json").unwrap_err()
        );
        assert!(
            err.starts_with(
                "x.json: not a valid lstm-edge model card (field `dims.hidden`: invalid value: \
                 integer `-3`, expected usize)"
            ),
            "{err}"
        );
    }

    #[test]
    fn write_then_read() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("lstm-edge-card-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("model.json");
        card().write(&path)?;
        assert_eq!(ModelCard::read(&path)?, card());
        assert_eq!(std::fs::read_dir(&dir)?.count(), 1, "a temporary stayed");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
