//! Evaluation of a model's f32 and integer blobs on held-out data.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use indicatif::ProgressBar;
use lstm_edge_runtime::format::{Body, Cell, Dims, Head, Input, Output, Params};
use lstm_edge_runtime::host::HostModel;
use lstm_edge_runtime::numeric::F32;
use lstm_edge_runtime::{Network, Tokenizer};
use serde::{Deserialize, Serialize};

use crate::card::{ModelCard, TokenizerInfo};
use crate::data::{read_corpus, text_ids, CharWindows, Encoded};
use crate::files::FolderLock;
use crate::model::{InputConfig, ModelConfig};
use crate::plot;
use crate::progress;

use super::prepare::{
    describe_paths, held_out_name, load_nonempty_reviews, one_sided_warning, same_file,
    warn_of_repeated_files,
};
use super::{
    DataSource, ModelFile, TrainedCard, CARD_FILE, CORPUS_HELD_OUT, F32_BLOB_FILE, INT_BLOB_FILE,
    QUANT_ERROR_FILE, WITHOUT_CHECKPOINT,
};
/// Token ids of one evaluation set with their targets.
#[derive(Clone, Debug, Default)]
pub struct EvalSet {
    /// Unpadded ids (truncated to a flatten head's maxlen; the runtime pads).
    pub sequences: Vec<Vec<u16>>,
    /// Sentiment: the 0/1 label; generator: the next char's id.
    pub targets: Vec<u16>,
}

impl EvalSet {
    /// An order-free checksum of the set as the model reads it: each (target, ids)
    /// pair's CRC-32, mixed to 64 bits, summed. Training and `eval` may order a test
    /// set differently; the mixing keeps two changes (two labels swapped) from
    /// cancelling out, as CRC-32's linear differences could in a plain sum.
    pub fn fingerprint(&self) -> u64 {
        let pairs = self.sequences.iter().zip(&self.targets);
        pairs.fold(0u64, |sum, (ids, target)| {
            let mut bytes = Vec::with_capacity(2 * ids.len() + 2);
            bytes.extend_from_slice(&target.to_le_bytes());
            bytes.extend(ids.iter().flat_map(|id| id.to_le_bytes()));
            let crc = crate::checkpoint::CRC.checksum(&bytes);
            sum.wrapping_add(splitmix64(u64::from(crc) | (bytes.len() as u64) << 32))
        })
    }

    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }
}

/// Loss and accuracy of one blob on an evaluation set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlobMetrics {
    /// Mean binary (sentiment) or categorical (generator) cross-entropy.
    pub loss: f64,
    pub accuracy: f64,
}

/// The f32 and integer blobs on the same evaluation set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub data: String,
    pub samples: usize,
    pub float: BlobMetrics,
    pub quantized: BlobMetrics,
    /// Share of samples where both blobs make the same decision.
    pub decision_agreement: f64,
    pub max_abs_output_diff: f64,
    pub mean_abs_output_diff: f64,
    pub seconds: f64,
    /// |int - f32| of every output, for the histogram.
    #[serde(skip)]
    pub abs_diffs: Vec<f64>,
    /// The checksum of the card's own test set, when that set is what was scored.
    #[serde(skip)]
    pub cards_set_checksum: Option<u64>,
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "data        {} ({} samples)", self.data, self.samples)?;
        writeln!(
            f,
            "f32 blob    loss {:.4}  accuracy {:.4}",
            self.float.loss, self.float.accuracy
        )?;
        writeln!(
            f,
            "int blob    loss {:.4}  accuracy {:.4}",
            self.quantized.loss, self.quantized.accuracy
        )?;
        writeln!(
            f,
            "int vs f32  decisions agree {:.2}%, |diff| mean {:.2e} max {:.2e}",
            100.0 * self.decision_agreement,
            self.mean_abs_output_diff,
            self.max_abs_output_diff
        )?;
        write!(f, "time        {:.1} s", self.seconds)
    }
}

/// Unpadded ids of an encoded row: trailing PADs are dropped (PAD never occurs inside
/// a tokenized text), so the runtime pads exactly as the trainer did.
pub(super) fn unpadded(row: &[u16], pad: u16) -> Vec<u16> {
    let len = row.iter().rposition(|&id| id != pad).map_or(0, |i| i + 1);
    row[..len].to_vec()
}

pub(super) fn eval_set_from_encoded(encoded: &Encoded, pad: u16) -> EvalSet {
    EvalSet {
        sequences: (0..encoded.len())
            .filter_map(|i| encoded.row(i))
            .map(|row| unpadded(row, pad))
            .collect(),
        targets: encoded.labels.iter().map(|&l| l as u16).collect(),
    }
}

pub(super) fn eval_set_from_windows(
    windows: &CharWindows,
    range: std::ops::Range<usize>,
) -> EvalSet {
    let mut set = EvalSet::default();
    for index in range {
        if let Some((window, next)) = windows.get(index) {
            set.sequences.push(window.to_vec());
            set.targets.push(next);
        }
    }
    set
}

/// SplitMix64's finalizer: a bijection that spreads every input bit over the output.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The class `outputs` pick: a sigmoid's side of 0.5, else the largest (first on ties).
pub(super) fn decision(outputs: &[f64]) -> u16 {
    match outputs {
        [p] => u16::from(*p >= 0.5),
        _ => {
            outputs
                .iter()
                .enumerate()
                .fold((0usize, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0 as u16
        }
    }
}

/// Cross-entropy of one prediction: binary for one output, categorical otherwise. The
/// blobs give probabilities, which the integer path can round to 0: clipped as Keras
/// clips them.
fn sample_loss(outputs: &[f64], target: u16) -> f64 {
    const EPS: f64 = 1e-7;
    match outputs {
        [p] => {
            let p = p.clamp(EPS, 1.0 - EPS);
            if target == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        }
        _ => -outputs
            .get(usize::from(target))
            .copied()
            .unwrap_or(0.0)
            .max(EPS)
            .ln(),
    }
}

#[derive(Default)]
struct Tally {
    loss_f32: f64,
    loss_int: f64,
    correct_f32: usize,
    correct_int: usize,
    agree: usize,
    diffs: Vec<f64>,
}

fn tally_chunk(
    f32_blob: &[u8],
    int_blob: &[u8],
    sequences: &[Vec<u16>],
    targets: &[u16],
    bar: &ProgressBar,
) -> Result<Tally> {
    let f32_model = HostModel::new(f32_blob).context("loading the f32 blob")?;
    let int_model = HostModel::new(int_blob).context("loading the integer blob")?;
    let mut t = Tally::default();
    for (ids, &target) in sequences.iter().zip(targets) {
        let f = f32_model.outputs(ids)?;
        let i = int_model.outputs(ids)?;
        t.loss_f32 += sample_loss(&f, target);
        t.loss_int += sample_loss(&i, target);
        let (df, di) = (decision(&f), decision(&i));
        t.correct_f32 += usize::from(df == target);
        t.correct_int += usize::from(di == target);
        t.agree += usize::from(df == di);
        t.diffs.extend(f.iter().zip(&i).map(|(a, b)| (a - b).abs()));
        bar.inc(1);
    }
    Ok(t)
}

/// Runs both blobs over `set` (on all cores) and compares them with the targets.
pub fn evaluate_blobs(
    f32_blob: &[u8],
    int_blob: &[u8],
    set: &EvalSet,
    data_name: &str,
    progress: bool,
) -> Result<Evaluation> {
    ensure!(!set.is_empty(), "the evaluation set ({data_name}) is empty");
    let f32_model = HostModel::new(f32_blob).context("loading the f32 blob")?;
    let int_model = HostModel::new(int_blob).context("loading the integer blob")?;
    ensure!(
        !f32_model.is_integer() && int_model.is_integer(),
        "evaluation needs the f32 blob ({F32_BLOB_FILE}) and the integer blob ({INT_BLOB_FILE})"
    );
    let started = Instant::now();
    let bar = progress::bar(set.len(), "evaluating".into(), progress);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = set.len().div_ceil(threads);
    let tallies: Vec<Result<Tally>> = std::thread::scope(|scope| {
        let handles: Vec<_> = set
            .sequences
            .chunks(chunk)
            .zip(set.targets.chunks(chunk))
            .map(|(seqs, targets)| {
                let bar = bar.clone();
                scope.spawn(move || tally_chunk(f32_blob, int_blob, seqs, targets, &bar))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("an evaluation thread panicked"))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut total = Tally::default();
    for t in tallies {
        let t = t?;
        total.loss_f32 += t.loss_f32;
        total.loss_int += t.loss_int;
        total.correct_f32 += t.correct_f32;
        total.correct_int += t.correct_int;
        total.agree += t.agree;
        total.diffs.extend(t.diffs);
    }
    let n = set.len() as f64;
    let max_diff = total.diffs.iter().copied().fold(0.0, f64::max);
    let mean_diff = total.diffs.iter().sum::<f64>() / total.diffs.len().max(1) as f64;
    Ok(Evaluation {
        data: data_name.to_string(),
        samples: set.len(),
        float: BlobMetrics {
            loss: total.loss_f32 / n,
            accuracy: total.correct_f32 as f64 / n,
        },
        quantized: BlobMetrics {
            loss: total.loss_int / n,
            accuracy: total.correct_int as f64 / n,
        },
        decision_agreement: total.agree as f64 / n,
        max_abs_output_diff: max_diff,
        mean_abs_output_diff: mean_diff,
        seconds: started.elapsed().as_secs_f64(),
        abs_diffs: total.diffs,
        cards_set_checksum: None,
    })
}

/// Sequences of `texts` as a model's own tokenizer splits them (from its blob), cut to
/// `maxlen` on the head's side for a flatten head.
pub fn tokenize_with_blob(blob: &[u8], texts: &[&[u8]]) -> Result<Vec<Vec<u16>>> {
    let model = lstm_edge_runtime::Model::from_bytes(blob)?;
    let net = Network::<F32>::new(&model)?;
    let tokenizer: &Tokenizer<'_> = net.tokenizer();
    let head = net.head();
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let ids = text_ids(tokenizer, text).map_err(|e| {
                let fix = match e {
                    lstm_edge_runtime::Error::UnknownChar(_) => {
                        ": remove it, or retrain on text that holds it"
                    }
                    _ => "",
                };
                match texts.len() {
                    1 => anyhow::anyhow!("{e}{fix}"),
                    _ => anyhow::anyhow!("text {index}: {e}{fix}"),
                }
            })?;
            Ok(head.kept(&ids).to_vec())
        })
        .collect()
}

/// The ids of a corpus' files as a model's own tokenizer (from its blob) gives them.
pub(super) fn corpus_ids(blob: &[u8], files: &[PathBuf]) -> Result<Vec<u16>> {
    let text = read_corpus(files)?;
    match tokenize_with_blob(blob, &[&text]) {
        Ok(mut ids) => Ok(ids.pop().unwrap_or_default()),
        Err(err) => Err(match unreadable_char_at(blob, files) {
            Some(place) => anyhow::anyhow!("{place}"),
            None => err.context(format!("the corpus ({})", describe_paths(files).join(", "))),
        }),
    }
}

/// Where the first char a generator cannot read stands in its corpus: the file, the
/// line, and the char, to find it by.
fn unreadable_char_at(blob: &[u8], files: &[PathBuf]) -> Option<String> {
    let model = lstm_edge_runtime::Model::from_bytes(blob).ok()?;
    let net = Network::<F32>::new(&model).ok()?;
    let tokenizer = net.tokenizer();
    for file in files {
        let text = read_corpus(std::slice::from_ref(file)).ok()?;
        // A line end never falls inside a char, so lines tokenize alone.
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            if let Err(lstm_edge_runtime::Error::UnknownChar(c)) =
                tokenizer.for_each_id(line, |_| Ok(()))
            {
                let shown = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
                return Some(format!(
                    "{}:{}: {shown:?} (U+{c:04X}) is not among the model's chars, and the \
                     model has no UNK: give text without it (the model reads only the chars \
                     it trained on)",
                    file.display(),
                    index + 1
                ));
            }
        }
    }
    None
}

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
    eval_set(dir, card, data, Notes::Print)
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
        eval_set(dir, card, &whole, Notes::Quiet)?;
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
            let mut all = load_nonempty_reviews(&path)?;
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
                corpus_ids(&blob, &corpus)?,
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
fn parse_blob<'a>(path: &Path, blob: &'a [u8]) -> Result<lstm_edge_runtime::Model<'a>> {
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

/// The verification inputs of the model in `dir`: `count` evaluation sequences (a
/// seeded sample of the reviews, or the first windows of a corpus).
pub fn verify_sequences(dir: &Path, data: &EvalData, count: usize) -> Result<Vec<Vec<u16>>> {
    let card = TrainedCard::read(dir)?;
    // Only `count` reviews are needed: sample them before tokenizing.
    let data = EvalData {
        limit: Some(data.limit.map_or(count, |l| l.min(count))),
        ..data.clone()
    };
    let (mut set, name) = eval_set(dir, &card, &data, Notes::Quiet)?;
    ensure!(!set.is_empty(), "the evaluation set ({name}) is empty");
    set.sequences.truncate(count);
    Ok(set.sequences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_set_checksum_ignores_order_and_sees_swapped_labels() {
        let set = |pairs: &[(&[u16], u16)]| EvalSet {
            sequences: pairs.iter().map(|(ids, _)| ids.to_vec()).collect(),
            targets: pairs.iter().map(|&(_, target)| target).collect(),
        };
        let (a, b, c): (&[u16], &[u16], &[u16]) = (&[3, 1, 4], &[1, 5], &[9, 2, 6, 5]);
        let base = set(&[(a, 1), (b, 0), (c, 1)]);
        // Pinned: cards record it, so a change would refuse their data.
        assert_eq!(
            base.fingerprint(),
            0xee56_6c64_0cc3_2d89,
            "{:#x}",
            base.fingerprint()
        );
        assert_eq!(
            set(&[(c, 1), (a, 1), (b, 0)]).fingerprint(),
            base.fingerprint()
        );
        for other in [
            set(&[(a, 0), (b, 1), (c, 1)]),
            set(&[(a, 1), (b, 0), (c, 0)]),
            set(&[(a, 1), (&[1, 6], 0), (c, 1)]),
            set(&[(a, 1), (b, 0)]),
        ] {
            assert_ne!(other.fingerprint(), base.fingerprint());
        }
    }

    #[test]
    fn trailing_pads_are_dropped_and_nothing_else() {
        assert_eq!(unpadded(&[3, 0, 4, 9, 9], 9), vec![3, 0, 4]);
        assert_eq!(unpadded(&[9, 9], 9), Vec::<u16>::new());
        assert_eq!(unpadded(&[1, 2], 9), vec![1, 2]);
    }

    #[test]
    fn losses_and_decisions_follow_the_output_kind() {
        assert_eq!(decision(&[0.7]), 1);
        assert_eq!(decision(&[0.2]), 0);
        assert_eq!(decision(&[0.1, 0.6, 0.3]), 1);
        assert!((sample_loss(&[0.8], 1) + 0.8f64.ln()).abs() < 1e-12);
        assert!((sample_loss(&[0.8], 0) + 0.2f64.ln()).abs() < 1e-12);
        assert!((sample_loss(&[0.25, 0.75], 0) + 0.25f64.ln()).abs() < 1e-12);
        // A zero probability is clamped, not infinite.
        assert!(sample_loss(&[0.0, 1.0], 0).is_finite());
    }
}
