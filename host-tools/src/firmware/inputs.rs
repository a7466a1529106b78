//! What the firmware is built to do with its model ([`FirmwareInputs`]), and the
//! checks that refuse inputs the device cannot take before a build starts.

use std::path::Path;

use anyhow::{bail, ensure, Result};
use lstm_edge_runtime::format::Output;

use super::Board;

/// What the firmware does with its model, fixed at build time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FirmwareInputs {
    /// Reviews scored by a sentiment model, each on its own line (no `\n` inside).
    pub reviews: Vec<Vec<u8>>,
    /// The prompt a generator model is fed before sampling.
    pub prompt: Vec<u8>,
    /// Characters generated per temperature.
    pub gen_chars: usize,
    /// Sampling temperatures in thousandths (500 = 0.5); each run starts from a
    /// fresh state and a fresh generator seeded with `seed`.
    pub temperatures_milli: Vec<u32>,
    pub seed: u64,
    pub board: Board,
}

impl Default for FirmwareInputs {
    fn default() -> Self {
        FirmwareInputs {
            reviews: Vec::new(),
            prompt: b"the ".to_vec(),
            gen_chars: 100,
            temperatures_milli: vec![200, 500, 1000],
            seed: 42,
            board: Board::default(),
        }
    }
}

/// Inputs the firmware cannot take, caught before a build is started: a
/// sentiment model needs reviews; a generator takes none, and its
/// prompt must be in its table; the blob must fit the flash.
pub(super) fn check_inputs(
    model: &Path,
    blob_len: usize,
    parsed: Option<&lstm_edge_runtime::Model<'_>>,
    inputs: &FirmwareInputs,
) -> Result<()> {
    let flash = inputs.board.flash_bytes();
    // The reviews and the prompt are built into the image beside the blob.
    let reviews: usize = inputs.reviews.iter().map(Vec::len).sum();
    let texts = reviews + inputs.prompt.len();
    let (what, fix) = if inputs.reviews.is_empty() {
        (format!("the prompt takes {texts} B"), "a shorter prompt")
    } else {
        (
            format!("the reviews take {reviews} B"),
            "fewer or shorter reviews",
        )
    };
    if blob_len + FIRMWARE_CODE_BYTES <= flash && blob_len + FIRMWARE_CODE_BYTES + texts > flash {
        bail!(
            "{what}, and with {} ({blob_len} B) and about {FIRMWARE_CODE_BYTES} B \
             of firmware they overflow the {} flash of {flash} B: give {fix}",
            model.display(),
            inputs.board.name()
        );
    }
    if blob_len + FIRMWARE_CODE_BYTES > flash {
        bail!(
            "{} is {blob_len} B; the {} flash holds {flash} B, about {FIRMWARE_CODE_BYTES} B of \
             them for the firmware itself: train a smaller model (--hidden, --vocab-size, --embed-dim)",
            model.display(),
            inputs.board.name()
        );
    }
    if let Some(parsed) = parsed {
        if let Output::Softmax { classes } = parsed.body().output {
            let tokens = parsed.dims().tokens;
            ensure!(
                usize::from(classes) == tokens,
                "{} is a classifier of {classes} classes (an imported softmax model with fewer \
                 classes than its {tokens} token ids): the firmware scores sigmoid sentiment \
                 models and runs generators; score it on the host with `lstm-edge score`",
                model.display()
            );
        }
        let sentiment = parsed.body().output == Output::Sigmoid;
        if sentiment && inputs.reviews.is_empty() {
            bail!(
                "{} is a sentiment model: give at least one --review TEXT for the firmware to score",
                model.display()
            );
        }
        if !sentiment && !inputs.reviews.is_empty() {
            bail!(
                "{} is a generator model: it takes --prompt, not --review",
                model.display()
            );
        }
        if !sentiment {
            check_prompt(model, parsed, &inputs.prompt)?;
        }
    }
    if let Some(index) = inputs
        .reviews
        .iter()
        .position(|r| r.iter().any(|b| matches!(b, b'\n' | b'\r')))
    {
        bail!(
            "review {} contains a line break; the firmware takes one review per line: \
             join its lines with spaces",
            index + 1
        );
    }
    if inputs.temperatures_milli.is_empty() {
        bail!("no sampling temperature given; pass at least one (e.g. 500 for 0.5)");
    }
    Ok(())
}

/// Room the firmware's own code and tables take in flash besides the blob (tens of
/// KB; the rest is margin).
const FIRMWARE_CODE_BYTES: usize = 64 * 1024;

/// A generator's prompt must map to its table on the host as it will on the device.
fn check_prompt(model: &Path, parsed: &lstm_edge_runtime::Model<'_>, prompt: &[u8]) -> Result<()> {
    let tokenizer = lstm_edge_runtime::Tokenizer::of_input(&parsed.body().input)
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let unknown = tokenizer.for_each_id(prompt, |_| Ok(())).err();
    if let Some(lstm_edge_runtime::Error::UnknownChar(c)) = unknown {
        bail!(
            "the prompt holds {:?}, which is not among {}'s chars: remove it",
            char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER),
            model.display()
        );
    }
    if prompt.is_empty() {
        bail!("the prompt is empty: give the model some text to continue");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Runs [`check_inputs`] on a shipped model's blob.
    fn check_shipped(model: &str, blob: &str, inputs: &FirmwareInputs) -> Result<()> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(model)
            .join(blob);
        let bytes = fs::read(&path).unwrap();
        let parsed = lstm_edge_runtime::Model::from_bytes(&bytes).unwrap();
        check_inputs(&path, bytes.len(), Some(&parsed), inputs)
    }

    #[test]
    fn inputs_the_device_would_refuse_are_refused_before_a_build() {
        let reviews = |list: &[&str]| FirmwareInputs {
            reviews: list.iter().map(|r| r.as_bytes().to_vec()).collect(),
            ..FirmwareInputs::default()
        };
        check_shipped("c-mean", "model.blob", &reviews(&["good", ""])).unwrap();
        check_shipped("c-mean", "model-f32.blob", &reviews(&["good"])).unwrap();
        let prompt = |text: &str| FirmwareInputs {
            prompt: text.as_bytes().to_vec(),
            ..FirmwareInputs::default()
        };
        for blob in ["model.blob", "model-f32.blob"] {
            check_shipped("g", blob, &prompt("the king")).unwrap();
            let err = check_shipped("g", blob, &prompt("the \u{2014} king")).unwrap_err();
            assert!(
                err.to_string().contains("'\u{2014}', which is not among"),
                "{err}"
            );
        }
        let stm32 = FirmwareInputs {
            board: Board::Stm32f407,
            ..reviews(&["good"])
        };
        check_shipped("c-mean", "model.blob", &stm32).unwrap();
        let err = check_shipped("c-mean", "model.blob", &reviews(&["good", "bad\r"])).unwrap_err();
        assert!(
            err.to_string().contains("review 2 contains a line break"),
            "{err}"
        );
        // An imported classifier: neither a sentiment model nor a generator.
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/foreign");
        let onnx = std::fs::read(fixtures.join("torch_gru_last_softmax.onnx")).unwrap();
        let chars = lstm_edge_trainer::import::TokenTable::Chars {
            table: b"abcdefghijklmnopqr".to_vec(),
            lowercase: false,
            unk: true,
            pad: true,
        };
        let blob = lstm_edge_trainer::import::import(&onnx, &chars)
            .unwrap()
            .int_blob;
        let parsed = lstm_edge_runtime::Model::from_bytes(&blob).unwrap();
        for inputs in [prompt("abc"), reviews(&["abc"])] {
            let err = check_inputs(Path::new("c.blob"), blob.len(), Some(&parsed), &inputs)
                .unwrap_err()
                .to_string();
            assert!(err.contains("c.blob is a classifier of 5 classes"), "{err}");
        }
        let long = "good ".repeat(200_000);
        let long_on_stm32 = FirmwareInputs {
            board: Board::Stm32f407,
            ..reviews(&[&long])
        };
        let err = check_shipped("c-mean", "model.blob", &long_on_stm32).unwrap_err();
        assert!(
            err.to_string().contains("the reviews take 1000000 B"),
            "{err}"
        );
        let err = check_inputs(Path::new("big.blob"), 1 << 20, None, &stm32).unwrap_err();
        assert!(
            err.to_string()
                .contains("the stm32f407 flash holds 1048576 B"),
            "{err}"
        );
    }
}
