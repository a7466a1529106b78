//! Data preparation: what training takes from reviews or a corpus ([`Prepared`]), the
//! calibration sequences, and what reading reviews shares.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use crate::card::DataInfo;
use crate::data::encode::truncate_to;
use crate::data::{encode_chars, load_reviews, CharWindows, LengthStats, Review, Truncate};
use crate::model::{Hyperparams, ModelConfig, Params, Preset};
use crate::train::Dataset;

use super::card::LengthRecord;
use super::evaluate::{corpus_ids, eval_set_from_windows};
use super::prepare_reviews::notebook_char_input;
use super::review_sets::{one_sided_warning, Tokenless};
use super::{tokenize_with_blob, EvalSet, CORPUS_HELD_OUT};

/// The first `count` training sequences, for calibration.
pub(super) fn calibration_from(set: &EvalSet, count: usize) -> Vec<Vec<u16>> {
    set.sequences.iter().take(count).cloned().collect()
}

/// `quantize`'s calibration reviews, taken and cut as `train` takes them, so that the
/// model's own training file rebuilds its blobs: the first `count` of the seeded
/// shuffle that its training reviews lead, cut to `hp`'s maxlen on its side (the
/// hyperparameters from the model's card; without them, as the runtime keeps them).
pub(super) fn calibration_reviews(
    path: &Path,
    blob: &[u8],
    seed: u64,
    count: usize,
    hp: Option<&Hyperparams>,
) -> Result<Vec<Vec<u16>>> {
    let mut reviews = load_nonempty_reviews(path)?;
    // Review files are often sorted by label: calibrate on a seeded sample.
    crate::data::shuffle(&mut reviews, seed);
    let texts: Vec<&[u8]> = reviews
        .iter()
        .take(count)
        .map(|r| r.text.as_slice())
        .collect();
    let mut sequences = tokenize_with_blob(blob, &texts)?;
    if let Some(hp) = hp {
        for ids in &mut sequences {
            truncate_to(ids, hp.maxlen, hp.truncate);
        }
    }
    Ok(sequences)
}

/// `quantize`'s calibration windows, as `train` takes them: the first `count` training
/// windows, of `hp`'s length and stride (from the model's card; the G preset's
/// without one).
pub(super) fn calibration_windows(
    files: &[PathBuf],
    blob: &[u8],
    count: usize,
    hp: Option<&Hyperparams>,
) -> Result<Vec<Vec<u16>>> {
    let preset = Preset::G.defaults();
    let hp = hp.unwrap_or(&preset);
    let windows = CharWindows::from_ids(
        corpus_ids(blob, files)?,
        hp.maxlen,
        hp.window_step,
        CORPUS_HELD_OUT,
    )
    .with_context(|| {
        format!(
            "the corpus ({}) cannot calibrate the model: give more text",
            describe_paths(files).join(", ")
        )
    })?;
    let set = eval_set_from_windows(&windows, windows.train());
    Ok(calibration_from(&set, count))
}

/// Data ready for training.
pub(super) struct Prepared {
    pub(super) cfg: ModelConfig,
    pub(super) params: Params,
    pub(super) train: Dataset,
    pub(super) validation: Option<Dataset>,
    /// Whether validation is the test set itself (no epoch is picked on it, and no
    /// separate test data was given).
    pub(super) validation_is_test: bool,
    pub(super) test: EvalSet,
    pub(super) test_name: String,
    pub(super) calibration: Vec<Vec<u16>>,
    pub(super) info: DataInfo,
    pub(super) lengths: Vec<LengthRecord>,
}

pub(super) fn describe_paths<P: AsRef<Path>>(paths: &[P]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.as_ref().display().to_string())
        .collect()
}

/// How cards and `eval` name a corpus's held-out windows.
pub(super) fn held_out_name(window: usize, corpus: &str) -> String {
    format!(
        "last {:.0}% of the {window}-char windows of {corpus}",
        CORPUS_HELD_OUT * 100.0
    )
}

/// Loads reviews, prints what the reader noticed, and refuses a source without any.
pub(super) fn load_nonempty_reviews(path: &Path) -> Result<Vec<Review>> {
    let loaded = load_reviews(path)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let reviews = loaded.reviews;
    ensure!(
        !reviews.is_empty(),
        "{} holds no reviews: give a file with labelled reviews",
        path.display()
    );
    Ok(reviews)
}

/// The notebook's length analysis of a review file at `maxlen`, in words or chars, and
/// how many of its reviews are positive.
pub fn length_stats(path: &Path, maxlen: usize, chars: bool) -> Result<(LengthStats, usize)> {
    ensure!(maxlen > 0, "--maxlen must be at least 1");
    ensure!(
        maxlen <= super::MAX_LEN,
        "--maxlen must be at most {} (the longest that train takes), got {maxlen}",
        super::MAX_LEN
    );
    let reviews = load_nonempty_reviews(path)?;
    if let Some(warning) = one_sided_warning(path, &reviews, "reviews") {
        eprintln!("warning: {warning}");
    }
    let positive = reviews.iter().filter(|r| r.label == 1).count();
    let encoded = if chars {
        let input = notebook_char_input();
        let table = input.char_table().context("char input")??;
        encode_chars(&reviews, &table, maxlen, Truncate::Post)?
    } else {
        let mut stats = LengthStats::new(maxlen);
        let mut tokenless = Tokenless::new(reviews.len());
        for (index, review) in reviews.iter().enumerate() {
            let mut words = 0usize;
            lstm_edge_runtime::tokenize::for_each_word(&review.text, |_| {
                words += 1;
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("{} review {index}: {e}", path.display()))?;
            stats.add(words);
            tokenless.check(&review.text, words == 0);
        }
        if let Some(warning) = tokenless.warning(path, true) {
            eprintln!("warning: {warning}");
        }
        return Ok((stats, positive));
    };
    Ok((encoded.stats, positive))
}
