//! Which data `eval` and `verify` run a model on (the card's own test set or the given
//! files), checked against the card, and recording the figures in the card.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::Output;

use crate::data::{CharWindows, Review};
use crate::files::FolderLock;
use crate::plot;

use super::evaluate::{corpus_ids, eval_set_from_windows};
use super::prepare::{describe_paths, held_out_name, load_nonempty_reviews};
use super::repeated_files::{same_file, warn_of_repeated_files};
use super::review_sets::one_sided_warning;
use super::same_model::parse_blob;
use super::{
    check_blobs_match_card, evaluate_blobs, tokenize_with_blob, DataSource, EvalSet, Evaluation,
    TrainedCard, CARD_FILE, CORPUS_HELD_OUT, F32_BLOB_FILE, INT_BLOB_FILE, QUANT_ERROR_FILE,
};

/// Evaluation data for `eval`/`verify`: reviews or a corpus.
#[derive(Clone, Debug, Default)]
pub struct EvalData {
    /// Labelled reviews; all of them are evaluated (up to `limit`).
    pub reviews: Option<PathBuf>,
    /// Corpus files; the last 10% of their windows are evaluated.
    pub corpus: Vec<PathBuf>,
    pub limit: Option<usize>,
}

impl EvalData {
    /// Whether this names neither data nor a limit: the card's own test set, whole.
    fn is_the_cards_set(&self) -> bool {
        self.reviews.is_none() && self.corpus.is_empty() && self.limit.is_none()
    }
}

/// Builds the evaluation set of the model in `dir` from `data`, or from the data recorded
/// in its card when `data` names none. Returns the set and a description of it.
pub fn eval_set_for(dir: &Path, card: &TrainedCard, data: &EvalData) -> Result<(EvalSet, String)> {
    eval_set(dir, card, data, Notes::Print, &mut ReadOnce::default())
}

/// The data files as read, kept by the check of the card's whole set so that the
/// sample taken after it reads them only once (and warns of them once).
#[derive(Default)]
struct ReadOnce {
    keep: bool,
    reviews: Option<(PathBuf, Vec<Review>)>,
    corpus: Option<(Vec<PathBuf>, Vec<u16>)>,
}

impl ReadOnce {
    /// A reader that keeps what it reads for the next call.
    fn keeping() -> Self {
        ReadOnce {
            keep: true,
            ..ReadOnce::default()
        }
    }

    fn reviews(&mut self, path: &Path) -> Result<Vec<Review>> {
        let keep = self.keep;
        kept_or_read(&mut self.reviews, path.to_path_buf(), keep, || {
            load_nonempty_reviews(path)
        })
    }

    fn corpus_ids(&mut self, blob: &[u8], files: &[PathBuf]) -> Result<Vec<u16>> {
        let keep = self.keep;
        kept_or_read(&mut self.corpus, files.to_vec(), keep, || {
            corpus_ids(blob, files)
        })
    }
}

/// What `slot` kept for `key` (handed on once), else `read()`, a copy of it kept in
/// `slot` when `keep`.
fn kept_or_read<K: PartialEq, T: Clone>(
    slot: &mut Option<(K, T)>,
    key: K,
    keep: bool,
    read: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if let Some((_, kept)) = slot.take().filter(|(kept_key, _)| *kept_key == key) {
        return Ok(kept);
    }
    let value = read()?;
    if keep {
        *slot = Some((key, value.clone()));
    }
    Ok(value)
}

/// Whether [`eval_set`] tells the user about the scores it sets up (a `--limit` past
/// the data, the model's own training file); `verify` compares engines, not scores.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Notes {
    Print,
    Quiet,
}

fn eval_set(
    dir: &Path,
    card: &TrainedCard,
    data: &EvalData,
    notes: Notes,
    read: &mut ReadOnce,
) -> Result<(EvalSet, String)> {
    let hp = card.card.hyperparameters.as_ref().with_context(|| {
        format!(
            "{}'s card.json has no `hyperparameters` (their seed, maxlen and window \
                 step set up the evaluation data): restore the card `lstm-edge train` wrote",
            dir.display()
        )
    })?;
    let blob = read_model_file(dir, F32_BLOB_FILE)?;
    // Checked here, as tokenizing would report a damaged blob without naming it.
    parse_blob(&dir.join(F32_BLOB_FILE), &blob)?;
    let sentiment = card.card.dims.output == Output::Sigmoid;
    let from_card = data.reviews.is_none() && data.corpus.is_empty();
    // Part of the card's own data (`--limit`, or verify's sample) is taken from that
    // data only once it is checked whole against the card.
    if from_card && data.limit.is_some() {
        let whole = EvalData {
            limit: None,
            ..data.clone()
        };
        *read = ReadOnce::keeping();
        eval_set(dir, card, &whole, Notes::Quiet, read)?;
    }
    let (reviews, corpus, limit) = if from_card {
        match &card.job.data {
            DataSource::Reviews { train, test } => match test {
                // A sample of the card's set stays within it.
                Some(test) => (
                    Some(test.clone()),
                    Vec::new(),
                    match (data.limit, card.job.test_limit) {
                        (Some(asked), Some(sampled)) => {
                            if asked > sampled && notes == Notes::Print {
                                eprintln!(
                                    "note: --limit {asked}, but the card's test set is the \
                                     {sampled} reviews its training sampled: all of them are \
                                     scored"
                                );
                            }
                            Some(asked.min(sampled))
                        }
                        (asked, sampled) => asked.or(sampled),
                    },
                ),
                None => bail!(
                    "{} was trained without a separate test set ({}): give --test PATH",
                    dir.display(),
                    train.display()
                ),
            },
            DataSource::Corpus { files } => (None, files.clone(), data.limit),
        }
    } else {
        (data.reviews.clone(), data.corpus.clone(), data.limit)
    };
    // Paths on the card are as the training run saw them, often relative to
    // another folder or machine.
    let missing = from_card
        .then(|| reviews.iter().chain(&corpus).find(|p| !p.exists()))
        .flatten();
    if let Some(missing) = missing {
        let (kind, option) = if sentiment {
            ("test", "--test PATH")
        } else {
            ("corpus", "--corpus FILE...")
        };
        bail!(
            "{} names {} as its {kind} data, which is not there (paths on the card are as \
             training saw them): give {option}",
            dir.join(CARD_FILE).display(),
            missing.display()
        );
    }
    let (set, name) = match (sentiment, reviews, corpus.is_empty()) {
        (true, Some(path), true) => {
            let mut all = read.reviews(&path)?;
            if let Some(limit) = limit {
                if notes == Notes::Print && limit > all.len() && data.limit.is_some() {
                    eprintln!(
                        "note: --limit {limit}, but {} holds {} reviews: all of them are scored",
                        path.display(),
                        all.len()
                    );
                }
                crate::data::shuffle(&mut all, hp.seed ^ 0x5445_5354);
                all.truncate(limit);
            }
            if let DataSource::Reviews { train, .. } = &card.job.data {
                if notes == Notes::Print && !from_card && same_file(train, &path) {
                    eprintln!(
                        "note: {} is the file this model trained on ({} says so): its scores \
                         are not held out",
                        path.display(),
                        dir.join(CARD_FILE).display()
                    );
                }
            }
            // Accuracy is eval's figure; verify compares engines.
            if let Some(warning) = one_sided_warning(&path, &all, "reviews scored")
                .filter(|_| notes == Notes::Print)
            {
                eprintln!("warning: {warning}");
            }
            let texts: Vec<&[u8]> = all.iter().map(|r| r.text.as_slice()).collect();
            let sequences = tokenize_with_blob(&blob, &texts)?;
            // Each would score as the initial state: a figure that says nothing.
            ensure!(
                sequences.iter().any(|ids| !ids.is_empty()),
                "all {} reviews scored from {} give the model no tokens (empty, blank, or only \
                 what its tokenizer skips): there is nothing to score; give reviews with text",
                sequences.len(),
                path.display()
            );
            let set = EvalSet {
                sequences,
                targets: all.iter().map(|r| u16::from(r.label)).collect(),
            };
            (set, path.display().to_string())
        }
        (false, None, false) => {
            if notes == Notes::Print {
                warn_of_repeated_files(
                    &corpus,
                    "the held-out windows, the last 10% of the text, then take in text that a \
                     model trained on that file trained on",
                );
            }
            let windows = CharWindows::from_ids(
                read.corpus_ids(&blob, &corpus)?,
                hp.maxlen,
                hp.window_step,
                CORPUS_HELD_OUT,
            )
            .with_context(|| {
                format!(
                    "the corpus ({}) cannot test the model: give more text",
                    describe_paths(&corpus).join(", ")
                )
            })?;
            let held_out = windows.held_out();
            if let Some(n) = data.limit.filter(|&n| n > held_out.len()) {
                if notes == Notes::Print {
                    eprintln!(
                        "note: --limit {n}, but the corpus gives {} held-out windows: all of \
                         them are scored",
                        held_out.len()
                    );
                }
            }
            let (held_out, first) = match limit {
                Some(n) if n < held_out.len() => {
                    (held_out.start..held_out.start + n, format!("first {n} of the "))
                }
                _ => (held_out, String::new()),
            };
            let name = first + &held_out_name(hp.maxlen, &describe_paths(&corpus).join(", "));
            (eval_set_from_windows(&windows, held_out), name)
        }
        (true, _, _) => bail!(
            "{} is a sentiment model: evaluate it on labelled reviews with --test PATH, not --corpus",
            dir.display()
        ),
        (false, _, _) => bail!(
            "{} is a generator model: evaluate it on text with --corpus FILE..., not --test",
            dir.display()
        ),
    };
    // The card's own data must be what training tested on: as many samples (a card's
    // relative path may name another file here), and the same texts and labels.
    if data.is_the_cards_set() {
        let card_file = dir.join(CARD_FILE);
        let recorded = card.card.data.test_samples;
        let samples = set.len();
        ensure!(
            recorded == 0 || samples == recorded,
            "{}",
            match sentiment {
                true => format!(
                    "{name} holds {samples} reviews, but the test set {} records had \
                     {recorded}: it is another file of that name (paths on the card are as \
                     training saw them); give --test PATH",
                    card_file.display()
                ),
                false => format!(
                    "the corpus ({}) gives {samples} held-out windows, but {} records \
                     {recorded}: the text changed since training, or the paths name other \
                     files here (paths on the card are as training saw them); give --corpus \
                     FILE...",
                    describe_paths(&corpus).join(", "),
                    card_file.display()
                ),
            }
        );
        if let Some(recorded) = card.card.data.test_fingerprint {
            ensure!(
                set.fingerprint() == recorded,
                "{name} holds other {} than the test set {} records (its checksum of the test \
                 set as the model reads it differs): the data changed since training, or the \
                 paths name other files here (paths on the card are as training saw them); \
                 give {}",
                if sentiment { "texts or labels" } else { "text" },
                card_file.display(),
                if sentiment {
                    "--test PATH"
                } else {
                    "--corpus FILE..."
                }
            );
        }
    }
    Ok((set, name))
}

/// Reads a file of the model directory `dir`; a missing one says how to rebuild it.
pub fn read_model_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}: the model directory is incomplete (rebuild it with `lstm-edge train`, `export` and `quantize`)",
            path.display()
        )
    })
}

/// An evaluation set up and checked, not yet scored: whether its figures may go into
/// the card is known before the work (so a recording `eval` locks the folder first).
pub struct PreparedEval {
    f32_blob: Vec<u8>,
    int_blob: Vec<u8>,
    set: EvalSet,
    name: String,
    cards_set_checksum: Option<u64>,
    /// The card's own test set, and how the card knows it, when the scored set is
    /// another: the card's figures and its data section describe that set, so figures
    /// of other data are not recorded.
    pub other_than: Option<String>,
}

/// Reads and checks the model in `dir` and builds the set `eval` scores on `data` (or
/// its recorded test data); nothing is written ([`record_evaluation`] keeps the
/// figures).
pub fn prepare_eval(dir: &Path, data: &EvalData) -> Result<PreparedEval> {
    let card = TrainedCard::read(dir)?;
    let f32_blob = read_model_file(dir, F32_BLOB_FILE)?;
    let int_blob = read_model_file(dir, INT_BLOB_FILE)?;
    check_blobs_match_card(dir, &card, &f32_blob, &int_blob)?;
    let (set, name) = eval_set_for(dir, &card, data)?;
    let fingerprint = set.fingerprint();
    let own_paths = match &card.job.data {
        DataSource::Reviews { test: None, .. } => &[][..],
        DataSource::Reviews {
            test: Some(test), ..
        } => std::slice::from_ref(test),
        DataSource::Corpus { files } => files.as_slice(),
    };
    let recorded_samples = card.card.data.test_samples;
    // The same set is the same count and checksum, wherever it was read from; a card
    // of an earlier build, without a checksum, knows its set by its paths and count.
    let (same_set, known_by) = match card.card.data.test_fingerprint {
        Some(recorded) => (
            recorded == fingerprint && set.len() == recorded_samples,
            "whose count and checksum it records",
        ),
        None => {
            let given: Vec<&PathBuf> = data.reviews.iter().chain(&data.corpus).collect();
            let at_own_paths = given.is_empty()
                || (given.len() == own_paths.len()
                    && given.iter().zip(own_paths).all(|(a, b)| same_file(a, b)));
            let whole = match recorded_samples {
                0 => data.limit.is_none(),
                samples => set.len() == samples,
            };
            (
                at_own_paths && whole,
                "which it knows by its paths and count (a card of an earlier build records no \
                 checksum)",
            )
        }
    };
    let own = (!own_paths.is_empty()).then(|| {
        format!(
            "its own test set ({}), {known_by}",
            describe_paths(own_paths).join(", ")
        )
    });
    Ok(PreparedEval {
        f32_blob,
        int_blob,
        cards_set_checksum: data.is_the_cards_set().then_some(fingerprint),
        other_than: own.filter(|_| !same_set),
        set,
        name,
    })
}

impl PreparedEval {
    /// Both blobs on the set.
    pub fn score(self, progress: bool) -> Result<Evaluation> {
        let mut evaluation = evaluate_blobs(
            &self.f32_blob,
            &self.int_blob,
            &self.set,
            &self.name,
            progress,
        )?;
        evaluation.cards_set_checksum = self.cards_set_checksum;
        Ok(evaluation)
    }
}

/// Puts `evaluation`'s figures into the card of `dir` and redraws its error histogram.
/// Returns whether the card took its test set's checksum (a card of an earlier build).
/// `_lock` is `dir`'s, taken before the evaluation, as the commands that write the
/// model do, so that a folder busy with another writer is refused before the work.
pub fn record_evaluation(dir: &Path, evaluation: &Evaluation, _lock: &FolderLock) -> Result<bool> {
    let mut card = TrainedCard::read(dir)?;
    let sentiment = card.card.dims.output == Output::Sigmoid;
    card.set_metrics(evaluation, sentiment);
    // A card written before test sets were checksummed takes the checksum of its own
    // set once it is scored (its count matched), so later changes are caught.
    let adopted =
        card.card.data.test_fingerprint.is_none() && evaluation.cards_set_checksum.is_some();
    if adopted {
        card.card.data.test_fingerprint = evaluation.cards_set_checksum;
    }
    // The plot first: a card holds figures only when everything was recorded.
    plot::quantization_error(&evaluation.abs_diffs, &dir.join(QUANT_ERROR_FILE))?;
    card.write(dir)?;
    Ok(adopted)
}

/// The verification inputs of the model in `dir`: `count` evaluation sequences (a
/// seeded sample of the reviews, or the first windows of a corpus).
pub fn verify_sequences(dir: &Path, data: &EvalData, count: usize) -> Result<Vec<Vec<u16>>> {
    let card = TrainedCard::read(dir)?;
    // Only `count` reviews are needed: sample them before tokenizing.
    let data = EvalData {
        limit: Some(data.limit.map_or(count, |l| l.min(count))),
        ..data.clone()
    };
    let (mut set, name) = eval_set(dir, &card, &data, Notes::Quiet, &mut ReadOnce::default())?;
    ensure!(!set.is_empty(), "the evaluation set ({name}) is empty");
    set.sequences.truncate(count);
    Ok(set.sequences)
}

#[cfg(test)]
mod tests {
    use super::ReadOnce;

    #[test]
    fn a_kept_read_is_handed_on_without_reading_the_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.jsonl");
        std::fs::write(
            &path,
            "{\"label\": 1, \"text\": \"fine\"}\n{\"label\": 0, \"text\": \"dull\"}\n",
        )
        .unwrap();
        let mut read = ReadOnce::keeping();
        let first = read.reviews(&path).unwrap();
        assert_eq!(first.len(), 2);
        // The next call gets the same reviews from memory: the file is gone.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read.reviews(&path).unwrap(), first);
        // Handed on once, then read again; a reader that does not keep always reads.
        assert!(read.reviews(&path).is_err());
        assert!(ReadOnce::default().reviews(&path).is_err());
        // Another file is read, not answered from what was kept.
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, "{\"label\": 0, \"text\": \"bad\"}\n").unwrap();
        let mut read = ReadOnce::keeping();
        read.reviews(&other).unwrap();
        assert!(read.reviews(&path).is_err());
    }
}
