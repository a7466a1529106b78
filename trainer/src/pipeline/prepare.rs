//! Data preparation: reviews or a corpus into encoded training, validation and test sets,
//! with the embedding's starting vectors.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Head, Output};
use lstm_edge_runtime::tokenize::NOTEBOOK_CHARS;

use crate::card::DataInfo;
use crate::checkpoint::EmbeddingOrigin;
use crate::data::encode::truncate_to;
use crate::data::reviews::{excerpt, is_blank, names_review_data};
use crate::data::{
    build_word_vocab, encode_chars, encode_words, load_reviews, load_vectors, read_corpus,
    split_reviews, text_ids, train_word2vec, CharSet, CharWindows, Encoded, LengthStats,
    MissingRows, Review, SplitOptions, Truncate, Word2VecConfig,
};
use crate::model::{Hyperparams, InputConfig, ModelConfig, Params, Preset};
use crate::train::Dataset;

use super::card::LengthRecord;
use super::evaluate::{
    corpus_ids, eval_set_from_encoded, eval_set_from_windows, tokenize_with_blob, EvalSet,
};
use super::model_dir::{remove_if_present, write_file};
use super::{is_sentiment, TrainJob, CORPUS_HELD_OUT};
/// The rows of a word2vec / GloVe file for the vocabulary's words; words it lacks
/// start random.
fn file_embedding(
    path: &Path,
    vocab: &lstm_edge_runtime::tokenize::Vocab<'_>,
    hp: &Hyperparams,
    progress: bool,
) -> Result<EmbeddingStart> {
    let embedding = load_vectors(
        path,
        vocab,
        MissingRows::Random {
            scale: 0.05,
            seed: hp.seed,
        },
        Some(hp.embed_dim),
    )?;
    // Rows without a vector stay random (and fixed, when frozen): worth a word even
    // in a quiet run when they are most of the vocabulary.
    if embedding.found < embedding.missing {
        eprintln!(
            "warning: {}: {embedding}; the other words' rows start random",
            path.display()
        );
    } else if progress {
        eprintln!("{embedding}");
    }
    // Writers end every line; a last line without an end may be a download cut
    // inside its last number, which still reads as a number.
    if let Some(line) = embedding.unended_last_line {
        eprintln!(
            "warning: {}:{line}: the last line has no line end, as in a download cut short: \
             if its last value looks cut, fetch the file again; if it is whole, end the line",
            path.display()
        );
    }
    Ok(EmbeddingStart {
        account: format!("embedding from {}: {embedding}", path.display()),
        values: Some(embedding.values),
    })
}

/// The embedding's starting rows (`None` when a resumed checkpoint holds them) and
/// the card's account of where they came from.
struct EmbeddingStart {
    values: Option<Vec<f32>>,
    account: String,
}

/// Skip-gram vectors trained on the full text of the training reviews (never the
/// validation or test reviews), one row per vocabulary id.
fn word2vec_embedding(
    reviews: &[Review],
    vocab: &lstm_edge_runtime::tokenize::Vocab<'_>,
    cfg: &Word2VecConfig,
    progress: bool,
) -> Result<Vec<f32>> {
    let start = Instant::now();
    let mut sentences = Vec::with_capacity(reviews.len());
    for (index, review) in reviews.iter().enumerate() {
        let mut ids = Vec::new();
        vocab
            .for_each_id(&review.text, |id| {
                ids.push(id);
                Ok(())
            })
            .with_context(|| format!("training review {index}"))?;
        sentences.push(ids);
    }
    let rows = vocab.len() + 2;
    let bar = crate::progress::bar(0, format!("word2vec, {} passes", cfg.epochs), progress);
    let (values, report) = train_word2vec(&sentences, rows, 2, cfg, &bar)?;
    if progress {
        eprintln!(
            "word2vec: {} pass{} over {} tokens of {} training reviews, {} words, {}-d, {:.1} s",
            cfg.epochs,
            if cfg.epochs == 1 { "" } else { "es" },
            report.tokens,
            reviews.len(),
            report.trained_rows,
            cfg.dim,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(values)
}

/// The first `count` training sequences, for calibration.
fn calibration_from(set: &EvalSet, count: usize) -> Vec<Vec<u16>> {
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

/// The run's encoded training and validation sets as `.npy` files, with `meta.json`
/// giving the id range and the padding id.
pub(super) fn write_arrays(prepared: &Prepared, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let [train, validation] = ARRAY_SETS;
    let mut files = Vec::from(prepared.train.npy_files(train)?);
    if let Some(set) = &prepared.validation {
        files.extend(set.npy_files(validation)?);
    }
    for (file, bytes) in files {
        write_file(&dir.join(file), &bytes)?;
    }
    let meta = serde_json::json!({
        "vocab_rows": prepared.cfg.vocab_rows(),
        "pad": prepared.cfg.input.pad_id(),
        "steps": prepared.train.steps(),
    });
    write_file(&dir.join(ARRAYS_META_FILE), meta.to_string().as_bytes()).map(|_| ())
}

/// The sets [`write_arrays`] writes, and its metadata file.
const ARRAY_SETS: [&str; 2] = ["train", "validation"];
const ARRAYS_META_FILE: &str = "meta.json";

/// After a run has written its model: removes the arrays an earlier run wrote in
/// `dir` that this one did not (only the files [`write_arrays`] writes, then the
/// folder if that leaves it empty).
pub(super) fn remove_stale_arrays(dir: &Path, written: bool) -> Result<()> {
    if written || !dir.is_dir() {
        return Ok(());
    }
    let names = ARRAY_SETS.iter().flat_map(|set| Dataset::npy_names(set));
    for name in names.chain([ARRAYS_META_FILE.to_string()]) {
        remove_if_present(&dir.join(name))?;
    }
    // Left in place if the user keeps other files there.
    let _ = std::fs::remove_dir(dir);
    Ok(())
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

/// Turns reviews into padded id rows with the run's tokenizer.
type ReviewEncoder = dyn Fn(&[Review]) -> Result<Encoded>;

pub(super) fn prepare_reviews(
    job: &TrainJob,
    train_path: &Path,
    test_path: Option<&Path>,
) -> Result<Prepared> {
    let hp = &job.hyper;
    let ReviewSets {
        train: train_reviews,
        validation: val_reviews,
        test: test_reviews,
        pool,
    } = split_three_ways(job, train_path, test_path)?;
    let (input, encode, start) = match hp.preset {
        Preset::W => word_input(job, &train_reviews, train_path)?,
        Preset::C => {
            let input = notebook_char_input();
            let encode = char_encoder(input.clone(), hp);
            (input, encode, None)
        }
        Preset::G | Preset::R => bail!(
            "preset {:?} trains a generator: give --corpus FILE..., not reviews",
            hp.preset
        ),
    };
    let cfg = hp.model_config(input, Output::Sigmoid);
    let pad = cfg.input.pad_id().context("sentiment input without PAD")?;
    let train_enc = encode(&train_reviews)?;
    if let (Some(note), true) = (unknown_chars_note(&cfg.input, &train_enc)?, job.progress) {
        eprintln!("note: {}: {note}", train_path.display());
    }
    let val_enc = encode(&val_reviews)?;
    let test_enc = encode(&test_reviews)?;
    let validation_is_test = test_path.is_none() && !job.selects_on_validation();
    let words = matches!(cfg.input, InputConfig::Words { .. });
    let tokenless = |reviews: &[Review], encoded: &Encoded| Tokenless::count(reviews, encoded, pad);
    let mut from_train = tokenless(&train_reviews, &train_enc);
    if from_train.empty_rows == train_reviews.len() {
        return Err(Tokenless::all_of(train_reviews.len(), train_path, words));
    }
    from_train.add(tokenless(&val_reviews, &val_enc));
    let from_test = tokenless(&test_reviews, &test_enc);
    let test_warning = match test_path {
        Some(path) => from_test.warning(path, words),
        // Held out of --train; counted already when it is the validation set.
        None if !validation_is_test => {
            from_train.add(from_test);
            None
        }
        None => None,
    };
    for warning in from_train
        .warning(train_path, words)
        .into_iter()
        .chain(test_warning)
    {
        eprintln!("warning: {warning}");
    }
    let mut params = Params::init(&cfg, hp.seed);
    if let Some(values) = start.as_ref().and_then(|s| s.values.clone()) {
        params
            .embedding
            .as_mut()
            .context("word model without embedding")?
            .data = values;
    }
    let train_set = eval_set_from_encoded(&train_enc, pad);
    let calibration = calibration_from(&train_set, job.calibration_sequences);
    // Checked before training, which would otherwise end without blobs.
    ensure!(
        calibration.iter().any(|ids| !ids.is_empty()),
        "the first {} training reviews, which calibrate the integer blob, are all empty: \
         raise --calibration, or give reviews with text",
        calibration.len()
    );
    let test_name = match test_path {
        Some(p) => p.display().to_string(),
        None => format!("the held-out share of {}", train_path.display()),
    };
    let mut sources = vec![train_path];
    sources.extend(test_path);
    Ok(Prepared {
        params,
        train: Dataset::from_encoded(&train_enc)?,
        validation: Some(Dataset::from_encoded(&val_enc)?),
        validation_is_test,
        calibration,
        test: match cfg.head {
            Head::Flatten { .. } | Head::FlattenTail { .. } => {
                eval_set_from_encoded(&test_enc, pad)
            }
            Head::Last | Head::Mean => whole_reviews(&cfg.input, &test_reviews)?,
        },
        test_name,
        info: DataInfo {
            sources: describe_paths(&sources),
            train_samples: train_enc.len(),
            validation_samples: val_enc.len(),
            test_samples: test_enc.len(),
            test_fingerprint: None,
            preprocessing: review_preprocessing(
                job,
                pool,
                cfg.input.words(),
                start.as_ref().map(|s| s.account.as_str()),
            ),
        },
        lengths: vec![
            LengthRecord::new("train", &train_enc.stats),
            LengthRecord::new("test", &test_enc.stats),
        ],
        cfg,
    })
}

/// Reviews as the runtime scores them with a last-state or mean head: whole, not cut
/// to the `maxlen` that training batches are padded to, so the card's test figures are
/// what `eval`, `score` and the device give.
fn whole_reviews(input: &InputConfig, reviews: &[Review]) -> Result<EvalSet> {
    let tokenizer = input.tokenizer()?;
    let mut set = EvalSet::default();
    for (index, review) in reviews.iter().enumerate() {
        let ids =
            text_ids(&tokenizer, &review.text).with_context(|| format!("test review {index}"))?;
        set.sequences.push(ids);
        set.targets.push(u16::from(review.label));
    }
    Ok(set)
}

/// The card's account of how reviews become ids.
fn review_preprocessing(
    job: &TrainJob,
    pool: PoolUse,
    words: usize,
    embedding: Option<&str>,
) -> String {
    let hp = &job.hyper;
    let used = if pool.used < pool.loaded {
        format!(
            "{} of the {} reviews of the training data (seeded shuffle); ",
            pool.used, pool.loaded
        )
    } else {
        String::new()
    };
    let fit = match hp.truncate {
        Truncate::Post => "post-pad/truncate",
        Truncate::Pre => "post-pad, pre-truncate",
    };
    match hp.preset {
        Preset::W => format!(
            "{used}Treebank words, lowercased, {}; {fit} to {}{}",
            vocabulary_account(words, job.vocab_size),
            hp.maxlen,
            embedding.map_or(String::new(), |e| format!("; {e}"))
        ),
        _ => format!(
            "{used}lowercased chars of the notebook set (+UNK, PAD); {fit} to {}",
            hp.maxlen
        ),
    }
}

/// The vocabulary as kept: the `asked` most frequent words, or all of fewer.
fn vocabulary_account(words: usize, asked: usize) -> String {
    if words < asked {
        format!("all {words} training words (+PAD, UNK; --vocab-size {asked} allows more)")
    } else {
        format!("{words} most frequent training words (+PAD, UNK)")
    }
}

/// How many of the reviews in the training source a run uses.
#[derive(Clone, Copy)]
struct PoolUse {
    loaded: usize,
    used: usize,
}

/// A run's reviews: training, validation and test, and how much of the source they take.
struct ReviewSets {
    train: Vec<Review>,
    validation: Vec<Review>,
    test: Vec<Review>,
    pool: PoolUse,
}

/// The training, validation and test reviews of a run.
fn split_three_ways(
    job: &TrainJob,
    train_path: &Path,
    test_path: Option<&Path>,
) -> Result<ReviewSets> {
    let hp = &job.hyper;
    if let Some(test_path) = test_path {
        ensure!(
            !same_file(train_path, test_path),
            "--train and --test are the same data ({}): a test set must be reviews the model \
             never trained on; give another --test, or leave it out to hold out a share of --train",
            test_path.display()
        );
    }
    let pool = load_nonempty_reviews(train_path)?;
    let loaded = pool.len();
    let used = hp.train_samples.map_or(loaded, |limit| limit.min(loaded));
    if used < loaded && job.progress {
        eprintln!(
            "note: using {used} of the {loaded} reviews in {} (a seeded sample; --all-reviews \
             takes them all, --limit N sets the number)",
            train_path.display()
        );
    }
    // The preset's own 16,000 is the notebook's sample size, not a request.
    let given = hp.train_samples != hp.preset.defaults().train_samples;
    if let Some(limit) = hp.train_samples.filter(|&limit| given && limit > loaded) {
        eprintln!(
            "note: --limit {limit}, but {} holds {loaded} reviews: all of them are used",
            train_path.display()
        );
    }
    let explicit_test = test_path.map(load_nonempty_reviews).transpose()?;
    if let (Some(test), Some(test_path)) = (&explicit_test, test_path) {
        // Against the whole file, whatever share of it --limit then trains on.
        let (shared, note) = shared_texts(&pool, test, train_path, test_path);
        ensure!(
            shared * 2 <= test.len(),
            "{note}: a test set must be reviews the model never trained on; give another \
             --test, or leave it out to hold out a share of --train"
        );
        if shared > 0 {
            eprintln!("note: {note}; scores on those are not held out");
        }
    }
    let has_test = explicit_test.is_some();
    let split = split_reviews(
        pool,
        explicit_test,
        &SplitOptions {
            seed: hp.seed,
            limit: hp.train_samples,
            test_fraction: hp.validation_split as f64,
            test_limit: job.test_limit,
        },
    )?;
    // With an explicit test set, validation comes out of the training pool (the notebook's
    // 80/20 of its 16,000 reviews) and the test set is only evaluated at the end. Picking
    // an epoch by validation (best epoch, early stop) keeps the test set apart too.
    let (train, val, test) = if has_test || job.selects_on_validation() {
        let mut train = split.train;
        let held = (train.len() as f64 * hp.validation_split as f64).round() as usize;
        ensure!(
            held > 0 || !job.selects_on_validation(),
            "--keep-best and --patience compare epochs by validation loss, and \
             --validation-split {} of the {} training reviews of {} sets none apart: give more \
             reviews or a larger --validation-split",
            hp.validation_split,
            train.len(),
            train_path.display()
        );
        let val = train.split_off(train.len() - held);
        (train, val, split.test)
    } else {
        (split.train, split.test.clone(), split.test)
    };
    let fix = if train.is_empty() {
        "give more reviews or lower --validation-split"
    } else {
        "give --test PATH or raise --validation-split"
    };
    ensure!(
        !train.is_empty() && !test.is_empty(),
        "{} gives {} training and {} test reviews; both need at least one ({fix})",
        train_path.display(),
        train.len(),
        test.len()
    );
    refuse_all_blank(&train, train_path, "training", "there is nothing to learn")?;
    let test_source = test_path.unwrap_or(train_path);
    refuse_all_blank(&test, test_source, "test", "they cannot test the model")?;
    if let Some(warning) = one_sided_warning(train_path, &train, "training reviews") {
        eprintln!("warning: {warning}");
    }
    if let Some(warning) = test_path.and_then(|path| one_sided_warning(path, &test, "test reviews"))
    {
        eprintln!("warning: {warning}");
    }
    // Validation always comes out of the pool, so a file that repeats reviews
    // can put some of them on both sides.
    // Without --test and with an epoch picked on validation, both come from the pool.
    let (mut repeated, mut held_out) = (count_shared(&train, &val), val.len());
    if !has_test && job.selects_on_validation() {
        repeated += count_shared(&train, &test);
        held_out += test.len();
    }
    if repeated > 0 {
        // IMDB's own training set repeats a few reviews: a handful is a note.
        let level = if repeated * 100 < held_out {
            "note"
        } else {
            "warning"
        };
        eprintln!(
            "{level}: {repeated} of the {} {} reviews are word for word among the training \
             reviews ({} repeats reviews): their scores are not held out; remove the repeats{}",
            held_out,
            if has_test { "validation" } else { "held-out" },
            train_path.display(),
            if has_test {
                ""
            } else {
                ", or give --test PATH"
            }
        );
    }
    Ok(ReviewSets {
        train,
        validation: val,
        test,
        pool: PoolUse { loaded, used },
    })
}

/// Warns of each corpus file that repeats an earlier one, and says what that does
/// (`consequence`).
pub(super) fn warn_of_repeated_files(files: &[PathBuf], consequence: &str) {
    for (file, again) in repeated_files(files) {
        eprintln!(
            "warning: {} holds the text of {} (the same file, or a copy): {consequence}; give \
             each text once",
            file.display(),
            again.display()
        );
    }
}

/// Each corpus file that holds the same bytes as an earlier one (the same file, or
/// a copy), with that one. Only a file of another's size is read.
fn repeated_files(files: &[PathBuf]) -> Vec<(&PathBuf, &PathBuf)> {
    // Empty files repeat nothing; missing ones are named by the reader.
    let sizes: Vec<Option<u64>> = files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| m.len())
                .filter(|&n| n > 0)
        })
        .collect();
    let mut files_of_size: HashMap<u64, usize> = HashMap::new();
    for size in sizes.iter().flatten() {
        *files_of_size.entry(*size).or_default() += 1;
    }
    let mut first_of: HashMap<(u64, u32), &PathBuf> = HashMap::new();
    let mut repeated = Vec::new();
    for (file, size) in files.iter().zip(&sizes) {
        let Some(size) = size.filter(|size| files_of_size[size] > 1) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        match first_of.entry((size, crate::checkpoint::CRC.checksum(&bytes))) {
            Entry::Occupied(first) => repeated.push((file, *first.get())),
            Entry::Vacant(slot) => {
                slot.insert(file);
            }
        }
    }
    repeated
}

/// Whether two paths name the same file or folder (after links and `..`).
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// How many `test` reviews have the text of a review in `train`, and that count in
/// words. The same reviews under another name or format pass the path check.
fn shared_texts(
    train: &[Review],
    test: &[Review],
    train_path: &Path,
    test_path: &Path,
) -> (usize, String) {
    let shared = count_shared(train, test);
    let note = format!(
        "{shared} of the {} test reviews of {} are word for word among the {} reviews of {}",
        test.len(),
        test_path.display(),
        train.len(),
        train_path.display()
    );
    (shared, note)
}

/// Reviews whose text is not blank but gives the model no tokens (a word model skips
/// `<br />` tags and Unicode spaces): each reads as padding alone. The readers name
/// blank ones; these only the tokenizer finds.
#[derive(Default)]
struct Tokenless {
    count: usize,
    /// Rows without a token, blank ones included.
    empty_rows: usize,
    total: usize,
    first: Option<String>,
}

impl Tokenless {
    /// `reviews` encoded (post-padded) as `encoded`: a row that starts with PAD is empty.
    /// None found yet among `total` reviews.
    fn new(total: usize) -> Self {
        Tokenless {
            total,
            ..Self::default()
        }
    }

    fn count(reviews: &[Review], encoded: &Encoded, pad: u16) -> Self {
        let mut found = Tokenless::new(reviews.len());
        for (index, review) in reviews.iter().enumerate() {
            let empty = encoded
                .row(index)
                .is_some_and(|row| row.first() == Some(&pad));
            found.check(&review.text, empty);
        }
        found
    }

    fn check(&mut self, text: &[u8], empty: bool) {
        self.empty_rows += usize::from(empty);
        if empty && !is_blank(text) {
            self.count += 1;
            self.first
                .get_or_insert_with(|| format!("{:?}", excerpt(text, 40)));
        }
    }

    fn add(&mut self, other: Tokenless) {
        self.count += other.count;
        self.empty_rows += other.empty_rows;
        self.total += other.total;
        self.first = self.first.take().or(other.first);
    }

    /// What a word model skips, for the messages.
    fn why(words: bool) -> &'static str {
        if words {
            " (a word model skips whitespace, `<br />` tags and non-breaking spaces)"
        } else {
            ""
        }
    }

    /// Every one of the `reviews` training reviews of `path` gives no tokens.
    fn all_of(reviews: usize, path: &Path, words: bool) -> anyhow::Error {
        anyhow!(
            "all {reviews} training reviews of {} give the model no tokens{}: there is nothing \
             to learn; give reviews with text",
            path.display(),
            Self::why(words)
        )
    }

    fn warning(&self, path: &Path, words: bool) -> Option<String> {
        let first = self.first.as_ref()?;
        Some(format!(
            "{}: {} of the {} reviews used hold text that gives the model no tokens (e.g. \
             {first}){}; each reads as padding alone: drop them unless that is meant",
            path.display(),
            self.count,
            self.total,
            Self::why(words)
        ))
    }
}

/// Refuses `reviews` (the `what` reviews of `path`) when every text is blank.
fn refuse_all_blank(reviews: &[Review], path: &Path, what: &str, why: &str) -> Result<()> {
    ensure!(
        reviews.iter().any(|r| !is_blank(&r.text)),
        "all {} {what} reviews of {} are empty or blank: {why}; give reviews with text",
        reviews.len(),
        path.display()
    );
    Ok(())
}

/// How many of `held_out` have a text, not blank, that is word for word in `train`.
fn count_shared(train: &[Review], held_out: &[Review]) -> usize {
    let has_text = |r: &&Review| !is_blank(&r.text);
    let seen: HashSet<&[u8]> = train.iter().filter(has_text).map(|r| &r.text[..]).collect();
    held_out
        .iter()
        .filter(has_text)
        .filter(|r| seen.contains(&r.text[..]))
        .count()
}

/// A warning when under a tenth of `reviews` carry one of the labels: always
/// answering the other one then scores over 90%.
pub(super) fn one_sided_warning(path: &Path, reviews: &[Review], what: &str) -> Option<String> {
    let positive = reviews.iter().filter(|r| r.label == 1).count();
    let share = positive as f64 / reviews.len().max(1) as f64;
    (!(0.1..=0.9).contains(&share)).then(|| {
        format!(
            "{}: {positive} of the {} {what} are positive ({:.1}%); \
             accuracy on such one-sided data says little: give both labels in fair numbers",
            path.display(),
            reviews.len(),
            100.0 * share
        )
    })
}

/// A char sentiment model's input: the notebook's chars, lowercased, with UNK and PAD.
pub fn notebook_char_input() -> InputConfig {
    InputConfig::Chars {
        table: NOTEBOOK_CHARS.to_vec(),
        lowercase: true,
        unk: true,
        pad: true,
    }
}

/// Encodes reviews with the tokenizer of a char `input`.
fn char_encoder(input: InputConfig, hp: &Hyperparams) -> Box<ReviewEncoder> {
    let (maxlen, truncate) = (hp.maxlen, hp.truncate);
    Box::new(move |r: &[Review]| {
        let table = input
            .char_table()
            .context("a char encoder needs a char input")??;
        encode_chars(r, &table, maxlen, truncate)
    })
}

/// How many of the chars a char model reads in `encoded` are outside its table (UNK),
/// as the generator's corpus note says; `None` when all are known or for words.
fn unknown_chars_note(input: &InputConfig, encoded: &Encoded) -> Result<Option<String>> {
    let (InputConfig::Chars { table: symbols, .. }, Some(table)) =
        (input, input.char_table().transpose()?)
    else {
        return Ok(None);
    };
    let (Some(unk), pad) = (table.unk_id(), table.pad_id()) else {
        return Ok(None);
    };
    let read = encoded.ids.iter().filter(|&&id| Some(id) != pad);
    let (chars, unknown) = read.fold((0usize, 0usize), |(n, u), &id| {
        (n + 1, u + usize::from(id == unk))
    });
    Ok((unknown > 0).then(|| {
        format!(
            "{unknown} of the {chars} chars the model reads ({:.1}%) are outside its char set \
             {:?} and read as UNK",
            100.0 * unknown as f64 / chars as f64,
            String::from_utf8_lossy(symbols)
        )
    }))
}

/// A word model's input: the vocabulary of the training reviews, their encoder, and
/// the embedding's starting vectors when the job asks for word2vec or a vectors file.
fn word_input(
    job: &TrainJob,
    train_reviews: &[Review],
    train_path: &Path,
) -> Result<(InputConfig, Box<ReviewEncoder>, Option<EmbeddingStart>)> {
    let hp = &job.hyper;
    let vocab = build_word_vocab(
        train_reviews.iter().map(|r| r.text.as_slice()),
        job.vocab_size,
    )?;
    let words = vocab.vocab()?.len();
    // No word at all: refused before word vectors are sought for an empty vocabulary.
    if words == 0 {
        return Err(Tokenless::all_of(train_reviews.len(), train_path, true));
    }
    if words < job.vocab_size && job.progress {
        eprintln!(
            "note: the vocabulary holds {}",
            vocabulary_account(words, job.vocab_size)
        );
    }
    let pretrained = match (&job.word_vectors, job.word2vec_epochs) {
        (Some(_), Some(_)) => {
            bail!("the embedding can start from word2vec training or from a vectors file, not both")
        }
        // The checkpoint holds the embedding; `train` checks that it started the same way.
        _ if job.resumes_checkpoint() => match job.embedding_origin() {
            EmbeddingOrigin::Random => None,
            origin => Some(EmbeddingStart {
                values: None,
                account: format!("embedding from {origin} (as the resumed checkpoint's run)"),
            }),
        },
        (Some(path), None) => Some(file_embedding(path, &vocab.vocab()?, hp, job.progress)?),
        (None, Some(epochs)) => Some(EmbeddingStart {
            values: Some(word2vec_embedding(
                train_reviews,
                &vocab.vocab()?,
                &Word2VecConfig {
                    dim: hp.embed_dim,
                    epochs,
                    seed: hp.seed,
                    ..Word2VecConfig::default()
                },
                job.progress,
            )?),
            account: format!(
                "embedding from {epochs} passes of skip-gram word2vec over the training reviews"
            ),
        }),
        (None, None) => None,
    };
    let input = InputConfig::Words {
        strings: vocab.strings().to_vec(),
        offsets: vocab.offsets().to_vec(),
        embed_dim: hp.embed_dim,
    };
    let (maxlen, truncate) = (hp.maxlen, hp.truncate);
    let encode = Box::new(move |r: &[Review]| encode_words(r, &vocab.vocab()?, maxlen, truncate));
    Ok((input, encode, pretrained))
}

pub(super) fn prepare_corpus(job: &TrainJob, files: &[PathBuf]) -> Result<Prepared> {
    let hp = &job.hyper;
    ensure!(
        !is_sentiment(hp.preset),
        "preset {:?} trains a sentiment model: give --train PATH with labelled reviews, not a corpus",
        hp.preset
    );
    warn_of_repeated_files(
        files,
        "that text is trained on twice, and held-out windows may repeat it",
    );
    for file in files.iter().filter(|f| names_review_data(f)) {
        eprintln!(
            "warning: {} is named as labelled review data: a generator trains on every byte \
             of a corpus, its field names, labels and quotes too; give plain text",
            file.display()
        );
    }
    let text = read_corpus(files)?;
    // A window reads maxlen chars and predicts the next one.
    let span = hp.maxlen + 1;
    if hp.window_step > span {
        let skipped = 100 * (hp.window_step - span) / hp.window_step;
        eprintln!(
            "warning: --window-step {} is more than a window's {span} chars (--maxlen {} and \
             the char it predicts): {skipped}% of the text lies between windows and is never \
             trained on; give a step of at most {span}",
            hp.window_step, hp.maxlen
        );
    }
    let sources = describe_paths(files);
    let named = sources.join(", ");
    let charset = CharSet::of(&text, true);
    let unk_summary = charset.unk_summary();
    if let (Some(summary), true) = (&unk_summary, job.progress) {
        eprintln!("note: the corpus ({named}): {summary}");
    }
    let table = charset.table(true)?;
    ensure!(
        table.len() >= 2,
        "the corpus ({named}) holds a single symbol once lowercased ({}): a generator \
         predicts the next char among at least two; give more varied text",
        charset
            .symbols
            .first()
            .map_or("only chars beyond Latin-1, all UNK".into(), |&b| {
                format!("{:?}", char::from(b))
            })
    );
    let windows = CharWindows::new(&text, &table, hp.maxlen, hp.window_step, CORPUS_HELD_OUT)
        .with_context(|| format!("the corpus ({named}): give more text or a smaller --maxlen"))?;
    ensure!(
        !windows.train().is_empty() && !windows.held_out().is_empty(),
        "the corpus ({named}) gives {} window{} of {} chars taken every {}: too few to hold \
         some out; give more text, or a smaller --window-step or --maxlen",
        windows.len(),
        if windows.len() == 1 { "" } else { "s" },
        hp.maxlen,
        hp.window_step
    );
    let input = InputConfig::Chars {
        table: charset.symbols.clone(),
        lowercase: true,
        unk: charset.needs_unk,
        pad: false,
    };
    let classes = u16::try_from(table.len()).context("char table over 65535 entries")?;
    let cfg = hp.model_config(input, Output::Softmax { classes });
    // Validation is the held-out set, unless an epoch is picked by validation (best
    // epoch, early stop): then the windows just before the held-out ones validate.
    let (train, validation) = if job.selects_on_validation() {
        windows.split_train(CORPUS_HELD_OUT).with_context(|| {
            format!("the corpus ({named}) is too short to set validation windows apart from the held-out ones; give more text, or a smaller --window-step")
        })?
    } else {
        (windows.train(), windows.held_out())
    };
    let train_set = eval_set_from_windows(&windows, train.clone());
    Ok(Prepared {
        params: Params::init(&cfg, hp.seed),
        train: Dataset::from_windows(&windows, train.clone())?,
        validation: Some(Dataset::from_windows(&windows, validation.clone())?),
        validation_is_test: !job.selects_on_validation(),
        calibration: calibration_from(&train_set, job.calibration_sequences),
        test: eval_set_from_windows(&windows, windows.held_out()),
        test_name: held_out_name(hp.maxlen, &named),
        info: DataInfo {
            sources,
            train_samples: train.len(),
            validation_samples: validation.len(),
            test_samples: windows.held_out().len(),
            test_fingerprint: None,
            preprocessing: format!(
                "{} chars lowercased, {} symbols{}; windows of {} every {}; last {:.0}% held out{}",
                charset.chars,
                table.len(),
                unk_summary.map_or(String::new(), |s| format!(" ({s})")),
                hp.maxlen,
                hp.window_step,
                CORPUS_HELD_OUT * 100.0,
                if job.selects_on_validation() {
                    format!(
                        ", the {:.0}% of the rest before it validates",
                        CORPUS_HELD_OUT * 100.0
                    )
                } else {
                    String::new()
                }
            ),
        },
        lengths: Vec::new(),
        cfg,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reviews(positive: usize, negative: usize) -> Vec<Review> {
        let review = |label| Review {
            text: b"fine".to_vec(),
            label,
        };
        (0..positive)
            .map(|_| review(1))
            .chain((0..negative).map(|_| review(0)))
            .collect()
    }

    #[test]
    fn one_sided_training_reviews_are_warned_about() {
        let path = Path::new("reviews.jsonl");
        let warning = one_sided_warning(path, &reviews(1, 99), "training reviews")
            .expect("1% positive warns");
        assert!(
            warning.contains("reviews.jsonl") && warning.contains("1 of the 100"),
            "{warning}"
        );
        assert!(one_sided_warning(path, &reviews(95, 5), "training reviews").is_some());
        assert!(one_sided_warning(path, &reviews(10, 90), "training reviews").is_none());
        assert!(one_sided_warning(path, &reviews(50, 50), "training reviews").is_none());
    }

    #[test]
    fn keeping_the_best_with_too_few_reviews_to_validate_names_the_split() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let write = |name: &str, count: usize| -> Result<PathBuf> {
            let path = dir.path().join(name);
            let lines: String = (0..count)
                .map(|i| format!("{{\"label\": {}, \"text\": \"a fine film {i}\"}}\n", i % 2))
                .collect();
            std::fs::write(&path, lines)?;
            Ok(path)
        };
        let (train, test) = (write("train.jsonl", 2)?, write("test.jsonl", 4)?);
        let mut job = TrainJob::new(
            "w",
            Preset::W,
            super::super::DataSource::Reviews {
                train: train.clone(),
                test: Some(test.clone()),
            },
            dir.path().join("out"),
        );
        job.keep_best = true;
        let Err(err) = split_three_ways(&job, &train, Some(&test)) else {
            panic!("a run keeping the best epoch had no validation reviews");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("--validation-split 0.2 of the 2 training reviews of")
                && err.contains("train.jsonl"),
            "{err}"
        );
        job.keep_best = false;
        assert!(split_three_ways(&job, &train, Some(&test)).is_ok());
        Ok(())
    }

    #[test]
    fn reviews_that_give_a_word_model_no_tokens_are_counted_and_all_of_them_refused() -> Result<()>
    {
        let dir = tempfile::tempdir()?;
        let train = dir.path().join("train.jsonl");
        let lines: String = (0..10)
            .map(|i| {
                format!(
                    "{{\"label\": {}, \"text\": \"<br /><br />\\u00a0\"}}\n",
                    i % 2
                )
            })
            .collect();
        std::fs::write(&train, lines)?;
        let data = super::super::DataSource::Reviews {
            train: train.clone(),
            test: None,
        };
        let mut job = TrainJob::new("w", Preset::W, data, dir.path().join("out"));
        // Refused as such before word vectors are sought for the empty vocabulary.
        for vectors in [None, Some(dir.path().join("vectors.txt"))] {
            job.word_vectors = vectors;
            let err = format!(
                "{:#}",
                prepare_reviews(&job, &train, None)
                    .err()
                    .context("trained")?
            );
            assert!(
                err.starts_with("all 8 training reviews of")
                    && err.contains("there is nothing to learn"),
                "{err}"
            );
        }
        // Counted among other reviews, blank ones aside (the reader names those).
        let reviews: Vec<Review> = ["<br />", "a film", " ", "\u{a0}"]
            .iter()
            .map(|t| Review {
                text: t.as_bytes().to_vec(),
                label: 1,
            })
            .collect();
        let (pad, maxlen) = (0u16, 3);
        let encoded = Encoded {
            ids: vec![pad, pad, pad, 5, 6, pad, pad, pad, pad, pad, pad, pad],
            labels: vec![1; 4],
            maxlen,
            stats: LengthStats::new(maxlen),
        };
        let found = Tokenless::count(&reviews, &encoded, pad);
        assert_eq!((found.count, found.empty_rows, found.total), (2, 3, 4));
        let warning = found.warning(&train, true).context("no warning")?;
        assert!(warning.contains("2 of the 4 reviews used hold text that gives the model no tokens (e.g. \"<br />\")"), "{warning}");
        Ok(())
    }

    #[test]
    fn a_test_set_of_the_training_reviews_under_another_name_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let jsonl: String = (0..20)
            .map(|i| format!("{{\"label\": {}, \"text\": \"film number {i}\"}}\n", i % 2))
            .collect();
        let csv: String = std::iter::once("review,sentiment\n".to_string())
            .chain((0..20).map(|i| format!("film number {i},{}\n", i % 2)))
            .collect();
        let (train, copy) = (dir.path().join("train.jsonl"), dir.path().join("copy.csv"));
        std::fs::write(&train, jsonl)?;
        std::fs::write(&copy, csv)?;
        let job = TrainJob::new(
            "w",
            Preset::W,
            super::super::DataSource::Reviews {
                train: train.clone(),
                test: Some(copy.clone()),
            },
            dir.path().join("out"),
        );
        let Err(err) = split_three_ways(&job, &train, Some(&copy)) else {
            panic!("the training reviews were accepted as the test set");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("20 of the 20 test reviews of") && err.contains("copy.csv"),
            "{err}"
        );
        // Training on a sample of the file still tests on the file's own reviews.
        let mut sampled = job;
        sampled.hyper.train_samples = Some(5);
        assert!(split_three_ways(&sampled, &train, Some(&copy)).is_err());
        Ok(())
    }

    #[test]
    fn the_card_says_when_the_vocabulary_holds_fewer_words_than_asked() {
        assert_eq!(
            vocabulary_account(2433, 10_000),
            "all 2433 training words (+PAD, UNK; --vocab-size 10000 allows more)"
        );
        assert_eq!(
            vocabulary_account(8000, 8000),
            "8000 most frequent training words (+PAD, UNK)"
        );
    }

    #[test]
    fn char_reviews_outside_the_char_set_are_counted_as_unk() -> Result<()> {
        let review = |text: &str| Review {
            text: text.as_bytes().to_vec(),
            label: 1,
        };
        let input = notebook_char_input();
        let table = input.char_table().context("chars")??;
        let known = encode_chars(&[review("a fine film")], &table, 20, Truncate::Post)?;
        assert_eq!(unknown_chars_note(&input, &known)?, None);
        let mixed = encode_chars(&[review("fine <br /> 10/10")], &table, 40, Truncate::Post)?;
        let note = unknown_chars_note(&input, &mixed)?.context("no note")?;
        // `<`, `/`, `>`, `0` and the other `/` and `0` are outside the notebook's set.
        assert!(
            note.starts_with("6 of the 17 chars the model reads (35.3%)"),
            "{note}"
        );
        Ok(())
    }

    #[test]
    fn a_resumed_run_keeps_its_first_embedding_start_and_does_not_reread_it() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let vectors = dir.path().join("vectors.txt");
        let words = ["the", "a", "and", "of", "film", "movie", "good", "bad"];
        let lines: String = words
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{w} {} 0.5 -0.25 0.125\n", i as f32 / 8.0))
            .collect();
        std::fs::write(&vectors, lines)?;
        let reviews =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/imdb-sample/train.jsonl.gz");
        let job = |epochs: usize, resume: bool, vectors: Option<&Path>| {
            let source = super::super::DataSource::Reviews {
                train: reviews.clone(),
                test: None,
            };
            let mut job = TrainJob::new("w", Preset::W, source, dir.path().join("out"));
            (job.hyper.maxlen, job.hyper.hidden, job.hyper.embed_dim) = (12, 4, 4);
            (job.hyper.epochs, job.resume, job.threads) = (epochs, resume, 1);
            (job.vocab_size, job.calibration_sequences) = (50, 8);
            job.word_vectors = vectors.map(Path::to_path_buf);
            job
        };
        let first = super::super::run(&job(1, false, Some(&vectors)))?;
        let account = &first.card.card.data.preprocessing;
        assert!(
            account.contains("embedding from")
                && account.contains("vocabulary words have a vector"),
            "{account}"
        );
        let Err(err) = super::super::run(&job(2, true, None)) else {
            panic!("a run resumed from random vectors a checkpoint that started from a file");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("started its embedding from `--word-vectors")
                && err.contains("this run from random vectors"),
            "{err}"
        );
        // The checkpoint holds the embedding: the file is not read again.
        std::fs::remove_file(&vectors)?;
        let report = super::super::run(&job(2, true, Some(&vectors)))?;
        assert_eq!(report.card.history.len(), 2);
        let account = &report.card.card.data.preprocessing;
        assert!(
            account.contains("embedding from `--word-vectors") && account.contains("resumed"),
            "{account}"
        );
        // The same file by another path (it is not read either way) resumes too.
        let elsewhere = dir.path().join(".").join("vectors.txt");
        let report = super::super::run(&job(3, true, Some(&elsewhere)))?;
        assert_eq!(report.card.history.len(), 3);
        Ok(())
    }

    #[test]
    fn a_corpus_of_one_symbol_is_refused_before_the_run_starts() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let corpus = dir.path().join("a.txt");
        std::fs::write(&corpus, "aAaA".repeat(500))?;
        let out = dir.path().join("out");
        let files = vec![corpus];
        let job = TrainJob::new(
            "g",
            Preset::G,
            super::super::DataSource::Corpus {
                files: files.clone(),
            },
            out.clone(),
        );
        let Err(err) = super::super::run(&job) else {
            panic!("a one-symbol corpus trained");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("a.txt") && err.contains("single symbol") && err.contains("'a'"),
            "{err}"
        );
        assert!(!out.exists(), "the out directory was made");
        Ok(())
    }
}
