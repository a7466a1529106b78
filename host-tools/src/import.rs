//! `lstm-edge import`: the arguments and the printing; the importer itself is
//! [`lstm_edge_trainer::import`].

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use lstm_edge_trainer::import::{import, read_onnx_to_import, TokenTable};

/// `lstm-edge import`: a foreign ONNX model into `model.blob` (integer) and
/// `model-f32.blob`, with `import.json` describing what was read and checked.
#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("tokens").required(true).args(["chars", "vocab"]))]
pub struct ImportArgs {
    /// The ONNX model (PyTorch torch.onnx or Keras tf2onnx export).
    pub model: PathBuf,
    /// Char-level model: the char of each token id, in id order (UNK and PAD follow).
    #[arg(long)]
    pub chars: Option<String>,
    /// The id after the chars is UNK (chars outside the table).
    #[arg(long, requires = "chars", conflicts_with = "vocab")]
    pub unk: bool,
    /// The last id is PAD (flatten heads pad with it).
    #[arg(long, requires = "chars", conflicts_with = "vocab")]
    pub pad: bool,
    /// Lowercase text before looking chars up.
    #[arg(long, requires = "chars", conflicts_with = "vocab")]
    pub lowercase: bool,
    /// Word-level model: a file with one word per line, line k being id k;
    /// `<pad>` and `<unk>` lines mark those ids.
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
    /// Directory for model.blob, model-f32.blob and import.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Print what was imported as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `lstm-edge import`.
pub fn run(args: &ImportArgs) -> Result<()> {
    let onnx = read_onnx_to_import(&args.model, &args.out)?;
    let tokens = match (&args.chars, &args.vocab) {
        (Some(chars), None) => TokenTable::Chars {
            table: chars_to_latin1(chars)?,
            lowercase: args.lowercase,
            unk: args.unk,
            pad: args.pad,
        },
        (None, Some(path)) => TokenTable::vocab_file(path)?,
        _ => bail!("give either --chars or --vocab: the ONNX model has no tokenizer"),
    };
    let vocab = args.vocab.as_ref().map_or(String::new(), |path| {
        format!(" with the vocab {}", path.display())
    });
    let imported = import(&onnx, &tokens)
        .with_context(|| format!("cannot import {}{vocab}", args.model.display()))?;
    let summary = imported.write_folder(&args.out)?;
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
        println!("written to {}", args.out.display());
    }
    Ok(())
}

/// The char table as the runtime's bytes (Latin-1: one byte per char).
fn chars_to_latin1(chars: &str) -> Result<Vec<u8>> {
    chars
        .chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                anyhow!("--chars: {c:?} is outside Latin-1; the runtime's char tables hold one byte per char")
            })
        })
        .collect()
}
