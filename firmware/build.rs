//! Chooses the board's memory map and embeds the model and its inputs.
//!
//! Environment (all optional):
//! - `LSTM_EDGE_MODEL`: model blob (default `models/default.bin`), integer or f32:
//!   the image holds the code of the blob's numeric path only
//! - `LSTM_EDGE_REVIEWS`: reviews to score, one per line (default `inputs/reviews.txt`)
//! - `LSTM_EDGE_PROMPT`: prompt file, used as is (default `inputs/prompt.txt`)
//! - `LSTM_EDGE_GEN_CHARS`: characters generated per temperature (default 100)
//! - `LSTM_EDGE_TEMPERATURES`: comma-separated, in thousandths (default `200,500,1000`)
//! - `LSTM_EDGE_SEED`: sampling seed, u64 (default 42)
//! - `LSTM_EDGE_MAX_HIDDEN`, `LSTM_EDGE_MAX_CLASSES`: state and logit capacity
//!   (default: the model's hidden size and classes; 256 and 128 for a blob that
//!   does not parse)
//! - `LSTM_EDGE_BOARD`: `mps2-an386` (QEMU, default), `mps2-an385` (QEMU, Cortex-M3;
//!   build with `--target thumbv7m-none-eabi`) or `stm32f407`
//!
//! Relative paths are relative to this `firmware/` folder.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("cargo did not set OUT_DIR")?);
    let manifest_dir = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR").ok_or("cargo did not set CARGO_MANIFEST_DIR")?,
    );

    let board = setting("LSTM_EDGE_BOARD", "mps2-an386");
    // An image for another core faults at its first instruction the core lacks.
    // (A host target is clippy's check of the code, not an image.)
    let target = env::var("TARGET").unwrap_or_default();
    let core_target = match board.as_str() {
        "mps2-an385" => "thumbv7m-none-eabi",
        _ => "thumbv7em-none-eabihf",
    };
    if target.starts_with("thumb") && target != core_target {
        return Err(format!(
            "LSTM_EDGE_BOARD={board} needs --target {core_target}, not {target}"
        ));
    }
    let memory = manifest_dir.join("memory").join(format!("{board}.x"));
    let layout = fs::read(&memory).map_err(|e| {
        format!(
            "LSTM_EDGE_BOARD={board}: no memory map {} ({e}); boards: mps2-an386, mps2-an385, stm32f407",
            memory.display()
        )
    })?;
    fs::write(out_dir.join("memory.x"), layout).map_err(|e| e.to_string())?;
    println!("cargo:rustc-link-search={}", out_dir.display());
    println!("cargo:rerun-if-changed={}", memory.display());

    let model = input_path(&manifest_dir, "LSTM_EDGE_MODEL", "models/default.bin");
    let blob = read(
        &model,
        "LSTM_EDGE_MODEL",
        "a model blob from `lstm-edge quantize`",
    )?;
    // A copy in OUT_DIR keeps the image reproducible even if the source file changes later.
    fs::write(out_dir.join("model.bin"), &blob).map_err(|e| e.to_string())?;
    // The state and logit buffers fit the model unless set: the RAM it needs, no
    // more. A blob that does not parse (it fails at boot) gets room for any.
    let parsed = lstm_edge_runtime::Model::from_bytes(&blob).ok();
    let dims = parsed.as_ref().map(|model| model.dims());
    // The image holds the blob's numeric path only, so an integer image has no
    // float arithmetic in it. A blob that does not parse gets the integer path.
    let numeric = match parsed.map(|model| model.body().params) {
        Some(lstm_edge_runtime::format::Params::F32(_)) => "F32",
        _ => "Int",
    };
    let model_hidden = dims.map_or(256, |d| d.hidden).to_string();
    let model_classes = dims.map_or(128, |d| d.outputs.max(1)).to_string();

    let reviews_path = input_path(&manifest_dir, "LSTM_EDGE_REVIEWS", "inputs/reviews.txt");
    let reviews = read(&reviews_path, "LSTM_EDGE_REVIEWS", "reviews, one per line")?;
    let prompt_path = input_path(&manifest_dir, "LSTM_EDGE_PROMPT", "inputs/prompt.txt");
    let prompt = read(&prompt_path, "LSTM_EDGE_PROMPT", "the prompt text")?;

    let gen_chars: usize = number("LSTM_EDGE_GEN_CHARS", "100")?;
    let seed: u64 = number("LSTM_EDGE_SEED", "42")?;
    let max_hidden: usize = number("LSTM_EDGE_MAX_HIDDEN", &model_hidden)?;
    let max_classes: usize = number("LSTM_EDGE_MAX_CLASSES", &model_classes)?;
    let temperatures = setting("LSTM_EDGE_TEMPERATURES", "200,500,1000")
        .split(',')
        .map(|t| {
            t.trim().parse::<u32>().map_err(|_| {
                format!(
                    "LSTM_EDGE_TEMPERATURES: `{t}` is not a temperature in thousandths \
                     (write 0.5 as 500; e.g. 200,500,1000)"
                )
            })
        })
        .collect::<Result<Vec<u32>, String>>()?;

    let reviews: String = split_lines(&reviews)
        .into_iter()
        .map(|review| format!("    {},\n", byte_string(review)))
        .collect();
    let prompt = byte_string(&prompt);
    // The model is word-aligned, so the runtime's kernels can use two-word loads on it.
    let code = format!(
        r#"#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);
static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/model.bin")));
/// The embedded model blob.
pub static MODEL: &[u8] = &ALIGNED.0;
/// Reviews to score with a sentiment model.
pub static REVIEWS: &[&[u8]] = &[
{reviews}];
/// What a generator model is fed before sampling.
pub static PROMPT: &[u8] = {prompt};
/// Characters generated per temperature.
pub const GEN_CHARS: usize = {gen_chars};
/// Sampling temperatures in thousandths.
pub static TEMPERATURES_MILLI: &[u32] = &{temperatures:?};
/// Seed of every generation run.
pub const SEED: u64 = {seed};
/// Hidden units the recurrent state can hold.
pub const MAX_HIDDEN: usize = {max_hidden};
/// Output classes the logit buffer can hold.
pub const MAX_CLASSES: usize = {max_classes};
/// The numeric path of the embedded blob.
pub type Numeric = lstm_edge_runtime::numeric::{numeric};
"#
    );
    fs::write(out_dir.join("inputs.rs"), code).map_err(|e| e.to_string())?;

    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "LSTM_EDGE_BOARD",
        "LSTM_EDGE_MODEL",
        "LSTM_EDGE_REVIEWS",
        "LSTM_EDGE_PROMPT",
        "LSTM_EDGE_GEN_CHARS",
        "LSTM_EDGE_SEED",
        "LSTM_EDGE_TEMPERATURES",
        "LSTM_EDGE_MAX_HIDDEN",
        "LSTM_EDGE_MAX_CLASSES",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    Ok(())
}

fn setting(var: &str, default: &str) -> String {
    env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn number<T: std::str::FromStr>(var: &str, default: &str) -> Result<T, String> {
    let value = setting(var, default);
    value
        .trim()
        .parse()
        .map_err(|_| format!("{var}=`{value}` is not a valid non-negative integer"))
}

fn input_path(manifest_dir: &Path, var: &str, default: &str) -> PathBuf {
    let path = env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    manifest_dir.join(path)
}

fn read(path: &Path, var: &str, what: &str) -> Result<Vec<u8>, String> {
    println!("cargo:rerun-if-changed={}", path.display());
    fs::read(path).map_err(|e| {
        format!(
            "cannot read {} ({e}); set {var} to the path of {what}",
            path.display()
        )
    })
}

/// One review per line; a final newline does not start another review.
fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    if text.is_empty() {
        return Vec::new();
    }
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    // A file saved with Windows line ends scores as `lstm-edge score --lines` reads it.
    text.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect()
}

fn byte_string(bytes: &[u8]) -> String {
    let mut literal = String::from("b\"");
    for &b in bytes {
        literal.extend(std::ascii::escape_default(b).map(char::from));
    }
    literal.push('"');
    literal
}
