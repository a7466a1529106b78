//! Whether a card, blobs and a checkpoint hold one model: their [`Shape`] and the
//! blob/card identity checks.

use std::path::Path;

use anyhow::{ensure, Result};
use lstm_edge_runtime::format::{Body, Cell, Dims, Head, Input, Output, Params};

use crate::card::{ModelCard, TokenizerInfo};
use crate::model::{InputConfig, ModelConfig};

use super::{ModelFile, TrainedCard, F32_BLOB_FILE, INT_BLOB_FILE, WITHOUT_CHECKPOINT};

/// What a card, a blob and a checkpoint must agree on to hold one model.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Shape {
    cell: Cell,
    hidden: usize,
    /// The char table's size or the embedding's width.
    input: usize,
    tokens: usize,
    head: Head,
    output: Output,
    /// A char model's symbols in id order; a word model's card records only the
    /// vocabulary's size (in `tokens`).
    chars: Option<Vec<u8>>,
    /// Whether a char model lowercases its text first; `None` for words.
    lowercase: Option<bool>,
}

impl Shape {
    pub(super) fn of_card(card: &ModelCard) -> Self {
        let d = &card.dims;
        let (chars, lowercase) = match &card.tokenizer {
            // The card writes each symbol byte as the Latin-1 char of that code.
            TokenizerInfo::Chars {
                table, lowercase, ..
            } => (
                Some(table.chars().filter_map(|c| u8::try_from(c).ok()).collect()),
                Some(*lowercase),
            ),
            TokenizerInfo::Words { .. } => (None, None),
        };
        Shape {
            cell: d.cell,
            hidden: d.hidden,
            input: d.input_dim,
            tokens: d.vocab_rows,
            head: d.head,
            output: d.output,
            chars,
            lowercase,
        }
    }

    fn of_blob(body: &Body<'_>) -> Result<Self, lstm_edge_runtime::Error> {
        let dims = Dims::of(body)?;
        Ok(Shape {
            cell: body.cell,
            hidden: dims.hidden,
            input: dims.input,
            tokens: dims.tokens,
            head: body.head,
            output: body.output,
            chars: match body.input {
                Input::Chars { symbols, .. } => Some(symbols.to_vec()),
                Input::Words { .. } => None,
            },
            lowercase: match body.input {
                Input::Chars { lowercase, .. } => Some(lowercase),
                Input::Words { .. } => None,
            },
        })
    }

    pub(super) fn of_config(cfg: &ModelConfig) -> Self {
        Shape {
            cell: cfg.cell,
            hidden: cfg.hidden,
            input: cfg.input_dim(),
            tokens: cfg.vocab_rows(),
            head: cfg.head,
            output: cfg.output,
            chars: match &cfg.input {
                InputConfig::Chars { table, .. } => Some(table.clone()),
                InputConfig::Words { .. } => None,
            },
            lowercase: match &cfg.input {
                InputConfig::Chars { lowercase, .. } => Some(*lowercase),
                InputConfig::Words { .. } => None,
            },
        }
    }

    fn fields(&self) -> [(&'static str, String); 8] {
        let chars = self.chars.as_ref().map_or("none (words)".into(), |c| {
            format!("{:?}", c.iter().map(|&b| char::from(b)).collect::<String>())
        });
        [
            ("cell", self.cell.to_string()),
            ("hidden", self.hidden.to_string()),
            ("input width", self.input.to_string()),
            ("tokens", self.tokens.to_string()),
            ("head", self.head.to_string()),
            ("output", self.output.to_string()),
            ("chars", chars),
            (
                "lowercase",
                self.lowercase
                    .map_or("none (words)".into(), |l| l.to_string()),
            ),
        ]
    }

    /// The fields that differ, as `name ours vs theirs`.
    pub(super) fn differences(&self, theirs: &Shape) -> String {
        self.fields()
            .into_iter()
            .zip(theirs.fields())
            .filter(|((_, a), (_, b))| a != b)
            .map(|((name, a), (_, b))| format!("{name} {a} vs {b}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Decodes a blob, naming its file and the fix in errors.
pub(super) fn parse_blob<'a>(path: &Path, blob: &'a [u8]) -> Result<lstm_edge_runtime::Model<'a>> {
    lstm_edge_runtime::Model::from_bytes(blob).map_err(|e| {
        // As `inspect` says it: an empty file is no cut-off blob.
        let what = match blob.is_empty() {
            true => "the file is empty".to_string(),
            false => e.to_string(),
        };
        anyhow::anyhow!(
            "{}: {what}: rebuild it from the model's checkpoint with `lstm-edge quantize`\
             {WITHOUT_CHECKPOINT}",
            path.display()
        )
    })
}

/// Both blobs of `dir` must be the model its card describes (cell, sizes, head,
/// output, char set), each on its own numeric path and of the size the card records
/// (`train` and `quantize` write it), and must share one tokenizer: figures of
/// another model must not land in the card, nor reach a device.
pub fn check_blobs_match_card(
    dir: &Path,
    card: &TrainedCard,
    f32_blob: &[u8],
    int_blob: &[u8],
) -> Result<()> {
    let card_says = Shape::of_card(&card.card);
    let rebuild = format!(
        "rebuild the blobs from the model's checkpoint with `lstm-edge quantize`{WITHOUT_CHECKPOINT}"
    );
    let mut bodies = Vec::new();
    for (file, blob, float) in [
        (ModelFile::F32Blob, f32_blob, true),
        (ModelFile::IntBlob, int_blob, false),
    ] {
        let path = dir.join(file.file_name());
        let body = *parse_blob(&path, blob)?.body();
        ensure!(
            matches!(body.params, Params::F32(_)) == float,
            "{} holds {} weights where the {} ones belong: {rebuild}",
            path.display(),
            if float { "integer" } else { "f32" },
            if float { "f32" } else { "integer" },
        );
        let blob_says =
            Shape::of_blob(&body).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        ensure!(
            blob_says == card_says,
            "{} is not the model its card.json describes (blob vs card: {}): {rebuild}",
            path.display(),
            blob_says.differences(&card_says)
        );
        card.files.check(file, &path, blob, &rebuild)?;
        bodies.push(body);
    }
    let (int_path, f32_path) = (dir.join(INT_BLOB_FILE), dir.join(F32_BLOB_FILE));
    check_same_model(
        &f32_path.display().to_string(),
        &bodies[0],
        &int_path.display().to_string(),
        &bodies[1],
    )
}

/// The integer blob must be the f32 blob's model: the same cell, sizes, head and
/// output, and the same tokenizer (a vocabulary of the same size but other words
/// would feed it ids it reads as other words).
pub fn check_same_model(
    f32_name: &str,
    f32: &Body<'_>,
    int_name: &str,
    int: &Body<'_>,
) -> Result<()> {
    let rebuild =
        format!("rebuild both from one checkpoint with `lstm-edge quantize`{WITHOUT_CHECKPOINT}");
    let shape = |name: &str, body: &Body<'_>| {
        Shape::of_blob(body).map_err(|e| anyhow::anyhow!("{name}: {e}: {rebuild}"))
    };
    let (f, i) = (shape(f32_name, f32)?, shape(int_name, int)?);
    ensure!(
        i == f,
        "{int_name} and {f32_name} hold different models ({}): {rebuild}",
        i.differences(&f)
    );
    ensure!(
        int.input == f32.input,
        "{int_name} holds a different {} than {f32_name}: {rebuild}",
        match int.input {
            Input::Chars { .. } => "char set (or case folding)",
            Input::Words { .. } => "vocabulary",
        }
    );
    Ok(())
}
