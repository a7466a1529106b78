//! The training workflow end to end: data -> tokenizer -> encoded sets -> training with
//! per-epoch checkpoints -> ONNX, f32 and integer blobs -> evaluation of both blobs ->
//! model card and plots, all in one output directory.
//!
//! A model directory holds `model.onnx` (and `model-step.onnx` for last-state heads),
//! `model-f32.blob`, `model.blob` (integer), `card.json`, `curves.png`,
//! `quant-error.png` and the training checkpoint `checkpoint.ckpt`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lstm_edge_runtime::format::{Head, Output};
use lstm_edge_runtime::host::HostModel;
use lstm_edge_runtime::numeric::F32;
use lstm_edge_runtime::tokenize::{CharTable, NOTEBOOK_CHARS};
use lstm_edge_runtime::{Network, Tokenizer};
use serde::{Deserialize, Serialize};

use crate::bptt::Recurrence;
use crate::card::{DataInfo, ModelCard};
use crate::checkpoint::{self, Checkpoint};
use crate::data::{
    build_word_vocab, encode_chars, encode_words, load_reviews, load_vectors, read_corpus,
    split_reviews, train_word2vec, CharSet, CharWindows, Encoded, LengthStats, MissingRows, Review,
    SplitOptions, Word2VecConfig,
};
use crate::export::{export_onnx, export_step_onnx};
use crate::model::{Hyperparams, InputConfig, ModelConfig, OptimizerKind, Params, Preset};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::ort_env::Device;
use crate::plot;
use crate::quantize::{self, Calibration};
use crate::train::{train, Dataset, EpochStats, TrainOptions};

pub const ONNX_FILE: &str = "model.onnx";
pub const STEP_ONNX_FILE: &str = "model-step.onnx";
pub const F32_BLOB_FILE: &str = "model-f32.blob";
pub const INT_BLOB_FILE: &str = "model.blob";
pub const CARD_FILE: &str = "card.json";
pub const CHECKPOINT_FILE: &str = "checkpoint.ckpt";
pub const CURVES_FILE: &str = "curves.png";
pub const QUANT_ERROR_FILE: &str = "quant-error.png";

/// The file a command-line path names: the path itself, or `file` inside it when it
/// is a model directory (`--model models/w` stands for `models/w/model.blob`).
pub fn in_model_dir(path: &Path, file: &str) -> PathBuf {
    if path.is_dir() {
        path.join(file)
    } else {
        path.to_path_buf()
    }
}
/// Folder of the `.npy` arrays written with [`TrainJob::write_arrays`].
pub const ARRAYS_DIR: &str = "arrays";

/// Share of a corpus' windows held out for evaluation (the last ones, never trained on).
pub const CORPUS_HELD_OUT: f64 = 0.1;

/// Where the text comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// Labelled reviews (aclImdb dir, JSONL(.gz) or CSV). Without `test`, the held-out
    /// share of the training pool is the test set.
    Reviews {
        train: PathBuf,
        test: Option<PathBuf>,
    },
    /// Raw text files, concatenated in order (generators).
    Corpus { files: Vec<PathBuf> },
}

/// Everything one training run needs.
#[derive(Clone, Debug)]
pub struct TrainJob {
    /// Model name recorded in the card.
    pub name: String,
    /// Preset defaults with the user's overrides applied.
    pub hyper: Hyperparams,
    /// Word vocabulary size (word input only).
    pub vocab_size: usize,
    pub data: DataSource,
    /// word2vec / GloVe file whose vectors initialise the embedding.
    pub word_vectors: Option<PathBuf>,
    /// Passes of skip-gram word2vec over the training reviews that initialise the
    /// embedding instead (word input only; `None` keeps a random start).
    pub word2vec_epochs: Option<usize>,
    /// Keep the embedding as initialised (word input only).
    pub freeze_embedding: bool,
    /// Keep only this many test reviews (after a seeded shuffle).
    pub test_limit: Option<usize>,
    /// Training sequences used to calibrate the integer blob.
    pub calibration_sequences: usize,
    pub device: Device,
    pub threads: usize,
    pub out_dir: PathBuf,
    pub resume: bool,
    pub progress: bool,
    /// Also write the encoded training and validation sets as NumPy arrays
    /// (`out_dir/arrays`), to train the same sequences in another framework.
    pub write_arrays: bool,
    /// The command line that rebuilds this model, recorded in the card.
    pub command: String,
}

impl TrainJob {
    /// A job with the preset's notebook settings and the usual defaults.
    pub fn new(name: &str, preset: Preset, data: DataSource, out_dir: PathBuf) -> Self {
        TrainJob {
            name: name.to_string(),
            hyper: preset.defaults(),
            vocab_size: 10_000,
            data,
            word_vectors: None,
            word2vec_epochs: None,
            freeze_embedding: false,
            test_limit: None,
            calibration_sequences: 256,
            device: Device::Cpu,
            threads: 0,
            out_dir,
            resume: false,
            progress: false,
            write_arrays: false,
            command: String::new(),
        }
    }
}

/// Token ids of one evaluation set with their targets.
#[derive(Clone, Debug, Default)]
pub struct EvalSet {
    /// Unpadded ids (truncated to a flatten head's maxlen; the runtime pads).
    pub sequences: Vec<Vec<u16>>,
    /// Sentiment: the 0/1 label; generator: the next char's id.
    pub targets: Vec<u16>,
}

impl EvalSet {
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
    pub test_limit: Option<usize>,
    pub device: String,
    pub threads: usize,
    /// Wall time of the whole run, in seconds (training, export, quantization, evaluation).
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
    fn new(set: &str, s: &LengthStats) -> Self {
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
    fn set_metrics(&mut self, eval: &Evaluation, sentiment: bool) {
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

/// What [`run`] produced.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub card: TrainedCard,
    pub out_dir: PathBuf,
}

fn optimizer_config(hyper: &Hyperparams) -> OptimizerConfig {
    OptimizerConfig {
        rule: match hyper.optimizer {
            OptimizerKind::RmsProp => Optimizer::rmsprop(hyper.learning_rate),
            OptimizerKind::Adam => Optimizer::adam(hyper.learning_rate),
        },
        clip_norm: None,
    }
}

/// The rows of a word2vec / GloVe file for the vocabulary's words; words it lacks
/// start random.
fn file_embedding(
    path: &Path,
    vocab: &lstm_edge_runtime::tokenize::Vocab<'_>,
    hp: &Hyperparams,
    progress: bool,
) -> Result<Vec<f32>> {
    let embedding = load_vectors(
        path,
        vocab,
        MissingRows::Random {
            scale: 0.05,
            seed: hp.seed,
        },
    )?;
    ensure!(
        embedding.dim == hp.embed_dim,
        "{} has {}-dimensional vectors but the model's embedding is {} wide: pass --embed-dim {}",
        path.display(),
        embedding.dim,
        hp.embed_dim,
        embedding.dim
    );
    if progress {
        eprintln!("{embedding}");
    }
    Ok(embedding.values)
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
    let (values, report) = train_word2vec(&sentences, rows, 2, cfg)?;
    if progress {
        eprintln!(
            "word2vec: {} epochs over {} tokens of {} training reviews, {} words, {}-d, {:.1} s",
            cfg.epochs,
            report.tokens,
            reviews.len(),
            report.trained_rows,
            cfg.dim,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(values)
}

fn is_sentiment(preset: Preset) -> bool {
    matches!(preset, Preset::W | Preset::C)
}

/// Unpadded ids of an encoded row: trailing PADs are dropped (PAD never occurs inside
/// a tokenized text), so the runtime pads exactly as the trainer did.
fn unpadded(row: &[u16], pad: u16) -> Vec<u16> {
    let len = row.iter().rposition(|&id| id != pad).map_or(0, |i| i + 1);
    row[..len].to_vec()
}

fn eval_set_from_encoded(encoded: &Encoded, pad: u16) -> EvalSet {
    EvalSet {
        sequences: (0..encoded.len())
            .filter_map(|i| encoded.row(i))
            .map(|row| unpadded(row, pad))
            .collect(),
        targets: encoded.labels.iter().map(|&l| l as u16).collect(),
    }
}

fn eval_set_from_windows(windows: &CharWindows, range: std::ops::Range<usize>) -> EvalSet {
    let mut set = EvalSet::default();
    for index in range {
        if let Some((window, next)) = windows.get(index) {
            set.sequences.push(window.to_vec());
            set.targets.push(next);
        }
    }
    set
}

/// The first `count` training sequences, for calibration.
fn calibration_from(set: &EvalSet, count: usize) -> Vec<Vec<u16>> {
    set.sequences.iter().take(count).cloned().collect()
}

/// Data ready for training.
struct Prepared {
    cfg: ModelConfig,
    params: Params,
    train: Dataset,
    validation: Option<Dataset>,
    test: EvalSet,
    test_name: String,
    calibration: Vec<Vec<u16>>,
    info: DataInfo,
    lengths: Vec<LengthRecord>,
}

/// The run's encoded training and validation sets as `.npy` files, with `meta.json`
/// giving the id range and the padding id.
fn write_arrays(prepared: &Prepared, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = Vec::from(prepared.train.npy_files("train")?);
    if let Some(validation) = &prepared.validation {
        files.extend(validation.npy_files("validation")?);
    }
    for (file, bytes) in files {
        write_file(&dir.join(file), &bytes)?;
    }
    let meta = serde_json::json!({
        "vocab_rows": prepared.cfg.vocab_rows(),
        "pad": prepared.cfg.input.pad_id(),
        "steps": prepared.train.steps(),
    });
    write_file(&dir.join("meta.json"), meta.to_string().as_bytes()).map(|_| ())
}

fn describe_paths(paths: &[&Path]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

fn load_nonempty_reviews(path: &Path) -> Result<Vec<Review>> {
    let reviews = load_reviews(path)?;
    ensure!(
        !reviews.is_empty(),
        "{} holds no reviews: give a file with labelled reviews",
        path.display()
    );
    Ok(reviews)
}

/// Turns reviews into padded id rows with the run's tokenizer.
type ReviewEncoder = dyn Fn(&[Review]) -> Result<Encoded>;

fn prepare_reviews(
    job: &TrainJob,
    train_path: &Path,
    test_path: Option<&Path>,
) -> Result<Prepared> {
    let hp = &job.hyper;
    let pool = load_nonempty_reviews(train_path)?;
    let explicit_test = test_path.map(load_nonempty_reviews).transpose()?;
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
    // 80/20 of its 16,000 reviews) and the test set is only evaluated at the end.
    let (train_reviews, val_reviews, test_reviews) = if has_test {
        let mut train = split.train;
        let held = (train.len() as f64 * hp.validation_split as f64).round() as usize;
        let val = train.split_off(train.len() - held);
        (train, val, split.test)
    } else {
        (split.train, split.test.clone(), split.test)
    };
    ensure!(
        !train_reviews.is_empty() && !test_reviews.is_empty(),
        "{} gives {} training and {} test reviews; both need at least one (lower --validation-split or give more reviews)",
        train_path.display(),
        train_reviews.len(),
        test_reviews.len()
    );

    let mut pretrained = None;
    let (input, encode): (InputConfig, Box<ReviewEncoder>) = match hp.preset {
        Preset::W => {
            let vocab = build_word_vocab(
                train_reviews.iter().map(|r| r.text.as_slice()),
                job.vocab_size,
            )?;
            pretrained = match (&job.word_vectors, job.word2vec_epochs) {
                (Some(_), Some(_)) => bail!(
                    "the embedding can start from word2vec training or from a vectors file, not both"
                ),
                (Some(path), None) => Some(file_embedding(path, &vocab.vocab()?, hp, job.progress)?),
                (None, Some(epochs)) => Some(word2vec_embedding(
                    &train_reviews,
                    &vocab.vocab()?,
                    &Word2VecConfig {
                        dim: hp.embed_dim,
                        epochs,
                        seed: hp.seed,
                        ..Word2VecConfig::default()
                    },
                    job.progress,
                )?),
                (None, None) => None,
            };
            let input = InputConfig::Words {
                strings: vocab.strings().to_vec(),
                offsets: vocab.offsets().to_vec(),
                embed_dim: hp.embed_dim,
            };
            let maxlen = hp.maxlen;
            (
                input,
                Box::new(move |r: &[Review]| encode_words(r, &vocab.vocab()?, maxlen)),
            )
        }
        Preset::C => {
            let maxlen = hp.maxlen;
            (
                InputConfig::Chars {
                    table: NOTEBOOK_CHARS.to_vec(),
                    lowercase: true,
                    unk: true,
                    pad: true,
                },
                Box::new(move |r: &[Review]| {
                    encode_chars(
                        r,
                        &CharTable::new(NOTEBOOK_CHARS, true, true, true)?,
                        maxlen,
                    )
                }),
            )
        }
        Preset::G | Preset::R => bail!(
            "preset {:?} trains a generator: give --corpus FILE..., not reviews",
            hp.preset
        ),
    };
    let cfg = hp.model_config(input, Output::Sigmoid);
    let pad = cfg.input.pad_id().context("sentiment input without PAD")?;
    let train_enc = encode(&train_reviews)?;
    let val_enc = encode(&val_reviews)?;
    let test_enc = encode(&test_reviews)?;
    let mut params = Params::init(&cfg, hp.seed);
    if let Some(values) = pretrained {
        params
            .embedding
            .as_mut()
            .context("word model without embedding")?
            .data = values;
    }
    let train_set = eval_set_from_encoded(&train_enc, pad);
    let test_name = match test_path {
        Some(p) => p.display().to_string(),
        None => format!("{} (held-out share)", train_path.display()),
    };
    let mut sources = vec![train_path];
    sources.extend(test_path);
    Ok(Prepared {
        params,
        train: Dataset::from_encoded(&train_enc)?,
        validation: Some(Dataset::from_encoded(&val_enc)?),
        calibration: calibration_from(&train_set, job.calibration_sequences),
        test: eval_set_from_encoded(&test_enc, pad),
        test_name,
        info: DataInfo {
            sources: describe_paths(&sources),
            train_samples: train_enc.len(),
            validation_samples: val_enc.len(),
            test_samples: test_enc.len(),
            preprocessing: match hp.preset {
                Preset::W => format!(
                    "Treebank words, lowercased, {} most frequent training words (+PAD, UNK); post-pad/truncate to {}",
                    job.vocab_size, hp.maxlen
                ),
                _ => format!(
                    "lowercased chars of the notebook set (+UNK, PAD); post-pad/truncate to {}",
                    hp.maxlen
                ),
            },
        },
        lengths: vec![
            LengthRecord::new("train", &train_enc.stats),
            LengthRecord::new("test", &test_enc.stats),
        ],
        cfg,
    })
}

fn prepare_corpus(job: &TrainJob, files: &[PathBuf]) -> Result<Prepared> {
    let hp = &job.hyper;
    ensure!(
        !is_sentiment(hp.preset),
        "preset {:?} trains a sentiment model: give --train PATH with labelled reviews, not a corpus",
        hp.preset
    );
    let text = read_corpus(files)?;
    let sources = describe_paths(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let named = sources.join(", ");
    ensure!(
        !text.is_empty(),
        "the corpus ({named}) is empty: give text files with content"
    );
    let charset = CharSet::of(&text, true);
    let table = charset.table(true)?;
    let windows = CharWindows::new(&text, &table, hp.maxlen, hp.window_step, CORPUS_HELD_OUT)
        .with_context(|| format!("the corpus ({named}): give more text or a smaller --maxlen"))?;
    ensure!(
        !windows.train().is_empty() && !windows.held_out().is_empty(),
        "the corpus ({named}) gives {} windows of {} chars: too short to hold some out; give more text",
        windows.len(),
        hp.maxlen
    );
    let input = InputConfig::Chars {
        table: charset.symbols.clone(),
        lowercase: true,
        unk: charset.needs_unk,
        pad: false,
    };
    let classes = u16::try_from(table.len()).context("char table over 65535 entries")?;
    let cfg = hp.model_config(input, Output::Softmax { classes });
    let train_set = eval_set_from_windows(&windows, windows.train());
    Ok(Prepared {
        params: Params::init(&cfg, hp.seed),
        train: Dataset::from_windows(&windows, windows.train())?,
        validation: Some(Dataset::from_windows(&windows, windows.held_out())?),
        calibration: calibration_from(&train_set, job.calibration_sequences),
        test: eval_set_from_windows(&windows, windows.held_out()),
        test_name: format!(
            "last {:.0}% of the {}-char windows",
            CORPUS_HELD_OUT * 100.0,
            hp.maxlen
        ),
        info: DataInfo {
            sources,
            train_samples: windows.train().len(),
            validation_samples: windows.held_out().len(),
            test_samples: windows.held_out().len(),
            preprocessing: format!(
                "{} chars lowercased, {} symbols; windows of {} every {}; last {:.0}% held out",
                charset.chars,
                table.len(),
                hp.maxlen,
                hp.window_step,
                CORPUS_HELD_OUT * 100.0
            ),
        },
        lengths: Vec::new(),
        cfg,
    })
}

fn check_hyper(hp: &Hyperparams) -> Result<()> {
    ensure!(hp.maxlen > 0, "--maxlen must be at least 1");
    ensure!(hp.hidden > 0, "--hidden must be at least 1");
    ensure!(hp.epochs > 0, "--epochs must be at least 1");
    ensure!(hp.batch_size > 0, "--batch must be at least 1");
    ensure!(
        hp.learning_rate.is_finite() && hp.learning_rate > 0.0,
        "--lr must be positive, got {}",
        hp.learning_rate
    );
    ensure!(
        (0.0..1.0).contains(&hp.dropout),
        "--dropout must be in [0, 1), got {}",
        hp.dropout
    );
    ensure!(
        (0.0..1.0).contains(&hp.validation_split),
        "--validation-split must be in [0, 1), got {}",
        hp.validation_split
    );
    if hp.preset == Preset::W {
        ensure!(hp.embed_dim > 0, "--embed-dim must be at least 1");
    }
    if !is_sentiment(hp.preset) {
        ensure!(hp.window_step > 0, "--window-step must be at least 1");
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<u64> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes.len() as u64)
}

/// Writes `model.onnx` (and `model-step.onnx` for last-state heads); returns the main file's size.
pub fn write_onnx(cfg: &ModelConfig, params: &Params, dir: &Path) -> Result<u64> {
    let size = write_file(&dir.join(ONNX_FILE), &export_onnx(cfg, params, &[])?)?;
    if cfg.head == Head::Last {
        write_file(
            &dir.join(STEP_ONNX_FILE),
            &export_step_onnx(cfg, params, &[])?,
        )?;
    }
    Ok(size)
}

/// Writes both blobs, calibrated on `sequences`; returns the sizes and the calibration.
pub fn write_blobs(
    cfg: &ModelConfig,
    params: &Params,
    sequences: &[Vec<u16>],
    dir: &Path,
) -> Result<(u64, u64, Calibration)> {
    ensure!(
        !sequences.is_empty(),
        "no calibration sequences: give data with at least one text"
    );
    let q = quantize::quantize(cfg, params, sequences)?;
    let f32_size = write_file(&dir.join(F32_BLOB_FILE), &q.f32_blob)?;
    let int_size = write_file(&dir.join(INT_BLOB_FILE), &q.int_blob)?;
    Ok((int_size, f32_size, q.calibration))
}

fn progress_bar(len: usize, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// Trains, exports, quantizes and evaluates: everything in the module docs.
pub fn run(job: &TrainJob) -> Result<TrainReport> {
    let started = Instant::now();
    check_hyper(&job.hyper)?;
    match (&job.data, is_sentiment(job.hyper.preset)) {
        (DataSource::Reviews { .. }, true) | (DataSource::Corpus { .. }, false) => {}
        (DataSource::Reviews { .. }, false) => bail!(
            "preset {:?} trains a generator: give --corpus FILE..., not reviews",
            job.hyper.preset
        ),
        (DataSource::Corpus { .. }, true) => bail!(
            "preset {:?} trains a sentiment model: give --train PATH with labelled reviews, not a corpus",
            job.hyper.preset
        ),
    }
    let prepared = match &job.data {
        DataSource::Reviews { train, test } => prepare_reviews(job, train, test.as_deref())?,
        DataSource::Corpus { files } => prepare_corpus(job, files)?,
    };
    std::fs::create_dir_all(&job.out_dir)
        .with_context(|| format!("cannot create output directory {}", job.out_dir.display()))?;
    if job.write_arrays {
        write_arrays(&prepared, &job.out_dir.join(ARRAYS_DIR))?;
    }
    if job.progress {
        eprintln!(
            "{}: {} training, {} validation, {} test samples; {} parameters",
            job.name,
            prepared.train.len(),
            prepared.validation.as_ref().map_or(0, Dataset::len),
            prepared.test.len(),
            prepared
                .params
                .named()
                .iter()
                .map(|(_, t)| t.len())
                .sum::<usize>()
        );
    }
    let options = TrainOptions {
        epochs: job.hyper.epochs,
        batch_size: job.hyper.batch_size,
        seed: job.hyper.seed,
        optimizer: optimizer_config(&job.hyper),
        device: job.device,
        threads: job.threads,
        recurrence: Recurrence::Scan,
        freeze_embedding: job.freeze_embedding,
        checkpoint: Some(job.out_dir.join(CHECKPOINT_FILE)),
        resume: job.resume,
        progress: job.progress,
    };
    let run = train(
        &prepared.cfg,
        prepared.params.clone(),
        &prepared.train,
        prepared.validation.as_ref(),
        &options,
    )?;

    let dir = &job.out_dir;
    let onnx = write_onnx(&prepared.cfg, &run.params, dir)?;
    let (int_blob, f32_blob, calibration) =
        write_blobs(&prepared.cfg, &run.params, &prepared.calibration, dir)?;
    plot::training_curves(&run.history, &dir.join(CURVES_FILE))?;

    let mut card = TrainedCard {
        card: ModelCard::new(
            &job.name,
            &prepared.cfg,
            &run.params,
            Some(job.hyper.clone()),
            prepared.info,
        ),
        command: job.command.clone(),
        job: JobRecord {
            data: job.data.clone(),
            vocab_size: (job.hyper.preset == Preset::W).then_some(job.vocab_size),
            word_vectors: job.word_vectors.clone(),
            word2vec_epochs: job.word2vec_epochs,
            freeze_embedding: job.freeze_embedding,
            test_limit: job.test_limit,
            device: job.device.to_string(),
            threads: job.threads,
            seconds: 0.0,
        },
        history: run.history.clone(),
        evaluation: None,
        calibration: Some(calibration.clone()),
        files: FileSizes {
            int_blob,
            f32_blob,
            onnx,
        },
        length_stats: prepared.lengths,
    };
    card.card.description = describe_model(&job.hyper);
    if let Some(last) = run.history.last() {
        let metrics = &mut card.card.metrics;
        metrics.insert("train_loss".into(), last.train_loss);
        metrics.insert("train_accuracy".into(), last.train_accuracy);
        if let (Some(l), Some(a)) = (last.val_loss, last.val_accuracy) {
            metrics.insert("val_loss".into(), l);
            metrics.insert("val_accuracy".into(), a);
        }
    }
    let evaluation = evaluate_blobs(
        &std::fs::read(dir.join(F32_BLOB_FILE))?,
        &std::fs::read(dir.join(INT_BLOB_FILE))?,
        &prepared.test,
        &prepared.test_name,
        job.progress,
    )?;
    plot::quantization_error(&evaluation.abs_diffs, &dir.join(QUANT_ERROR_FILE))?;
    card.set_metrics(&evaluation, is_sentiment(job.hyper.preset));
    card.job.seconds = started.elapsed().as_secs_f64();
    card.write(dir)?;
    Ok(TrainReport {
        card,
        out_dir: dir.clone(),
    })
}

fn describe_model(hp: &Hyperparams) -> String {
    let what = match hp.preset {
        Preset::W => "word-level sentiment",
        Preset::C => "char-level sentiment",
        Preset::G | Preset::R => "char-level generator",
    };
    format!(
        "{what}: {:?}({}) with a {:?} head, trained {} epochs",
        hp.cell, hp.hidden, hp.head, hp.epochs
    )
}

fn decision(outputs: &[f64]) -> u16 {
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

/// Cross-entropy of one prediction: binary for one output, categorical otherwise.
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
    let bar = progress_bar(set.len(), "evaluating", progress);
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
    })
}

/// Sequences of `texts` as a model's own tokenizer splits them (from its blob), cut to
/// `maxlen` for a flatten head.
pub fn tokenize_with_blob(
    blob: &[u8],
    texts: &[&[u8]],
    maxlen: Option<usize>,
) -> Result<Vec<Vec<u16>>> {
    let model = lstm_edge_runtime::Model::from_bytes(blob)?;
    let net = Network::<F32>::new(&model)?;
    let tokenizer: &Tokenizer<'_> = net.tokenizer();
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let mut ids = Vec::new();
            tokenizer
                .for_each_id(text, |id| {
                    ids.push(id);
                    Ok(())
                })
                .map_err(|e| anyhow::anyhow!("text {index}: {e}"))?;
            if let Some(maxlen) = maxlen {
                ids.truncate(maxlen);
            }
            Ok(ids)
        })
        .collect()
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

/// Builds the evaluation set of the model in `dir` from `data`, or from the data recorded
/// in its card when `data` names none. Returns the set and a description of it.
pub fn eval_set_for(dir: &Path, card: &TrainedCard, data: &EvalData) -> Result<(EvalSet, String)> {
    let hp = card
        .card
        .hyperparameters
        .as_ref()
        .context("the card records no hyperparameters")?;
    let blob = read_model_file(dir, F32_BLOB_FILE)?;
    let sentiment = card.card.dims.output == Output::Sigmoid;
    let (reviews, corpus, limit) = if data.reviews.is_some() || !data.corpus.is_empty() {
        (data.reviews.clone(), data.corpus.clone(), data.limit)
    } else {
        match &card.job.data {
            DataSource::Reviews { train, test } => match test {
                Some(test) => (
                    Some(test.clone()),
                    Vec::new(),
                    data.limit.or(card.job.test_limit),
                ),
                None => bail!(
                    "{} was trained without a separate test set ({}): give --test PATH",
                    dir.display(),
                    train.display()
                ),
            },
            DataSource::Corpus { files } => (None, files.clone(), data.limit),
        }
    };
    match (sentiment, reviews, corpus.is_empty()) {
        (true, Some(path), true) => {
            let mut all = load_nonempty_reviews(&path)?;
            if let Some(limit) = limit {
                crate::data::shuffle(&mut all, hp.seed ^ 0x5445_5354);
                all.truncate(limit);
            }
            let maxlen = matches!(card.card.dims.head, Head::Flatten { .. }).then_some(hp.maxlen);
            let texts: Vec<&[u8]> = all.iter().map(|r| r.text.as_slice()).collect();
            let sequences = tokenize_with_blob(&blob, &texts, maxlen)?;
            let set = EvalSet {
                sequences,
                targets: all.iter().map(|r| u16::from(r.label)).collect(),
            };
            Ok((set, path.display().to_string()))
        }
        (false, None, false) => {
            let text = read_corpus(&corpus)?;
            ensure!(!text.is_empty(), "the corpus is empty: give text files with content");
            let mut ids = tokenize_with_blob(&blob, &[&text], None)?;
            let windows = CharWindows::from_ids(
                ids.pop().unwrap_or_default(),
                hp.maxlen,
                hp.window_step,
                CORPUS_HELD_OUT,
            )?;
            let name = format!(
                "last {:.0}% of the {}-char windows of {}",
                CORPUS_HELD_OUT * 100.0,
                hp.maxlen,
                describe_paths(&corpus.iter().map(PathBuf::as_path).collect::<Vec<_>>()).join(", ")
            );
            Ok((eval_set_from_windows(&windows, windows.held_out()), name))
        }
        (true, _, _) => bail!(
            "{} is a sentiment model: evaluate it on labelled reviews with --test PATH, not --corpus",
            dir.display()
        ),
        (false, _, _) => bail!(
            "{} is a generator model: evaluate it on text with --corpus FILE..., not --test",
            dir.display()
        ),
    }
}

fn read_model_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}: the model directory is incomplete (rebuild it with `lstm-edge train`, `export` and `quantize`)",
            path.display()
        )
    })
}

/// Re-evaluates the model in `dir` on `data` (or its recorded test data), updates its card
/// and its error histogram, and returns the figures.
pub fn eval(dir: &Path, data: &EvalData, progress: bool) -> Result<Evaluation> {
    let mut card = TrainedCard::read(dir)?;
    let (set, name) = eval_set_for(dir, &card, data)?;
    let evaluation = evaluate_blobs(
        &read_model_file(dir, F32_BLOB_FILE)?,
        &read_model_file(dir, INT_BLOB_FILE)?,
        &set,
        &name,
        progress,
    )?;
    plot::quantization_error(&evaluation.abs_diffs, &dir.join(QUANT_ERROR_FILE))?;
    let sentiment = card.card.dims.output == Output::Sigmoid;
    card.set_metrics(&evaluation, sentiment);
    card.write(dir)?;
    Ok(evaluation)
}

/// The verification inputs of the model in `dir`: the first `count` evaluation sequences.
pub fn verify_sequences(dir: &Path, data: &EvalData, count: usize) -> Result<Vec<Vec<u16>>> {
    let card = TrainedCard::read(dir)?;
    // Only `count` reviews are needed: sample them before tokenizing.
    let data = EvalData {
        limit: Some(data.limit.map_or(count, |l| l.min(count))),
        ..data.clone()
    };
    let (mut set, _) = eval_set_for(dir, &card, &data)?;
    set.sequences.truncate(count);
    Ok(set.sequences)
}

/// Reads a training checkpoint, naming the file in errors.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    checkpoint::load(path)
}

/// `export`: ONNX from a checkpoint into `out_dir`.
pub fn export_checkpoint(checkpoint: &Path, out_dir: &Path) -> Result<PathBuf> {
    let ck = load_checkpoint(checkpoint)?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    write_onnx(&ck.model, &ck.params, out_dir)?;
    Ok(out_dir.join(ONNX_FILE))
}

/// `quantize`: blobs from a checkpoint, calibrated on the first `count` texts of `texts`
/// (reviews or corpus windows, tokenized with the model's own tokenizer).
pub fn quantize_checkpoint(
    checkpoint: &Path,
    data: &EvalData,
    count: usize,
    out_dir: &Path,
) -> Result<Calibration> {
    let ck = load_checkpoint(checkpoint)?;
    let spec = quantize::model_spec(&ck.model, &ck.params)?;
    let f32_blob = spec.f32_blob()?;
    let sentiment = ck.model.output == Output::Sigmoid;
    let sequences = match (&data.reviews, data.corpus.is_empty(), sentiment) {
        (Some(path), true, true) => {
            let mut reviews = load_nonempty_reviews(path)?;
            // Review files are often sorted by label: calibrate on a seeded sample.
            crate::data::shuffle(&mut reviews, ck.seed);
            let texts: Vec<&[u8]> = reviews
                .iter()
                .take(count)
                .map(|r| r.text.as_slice())
                .collect();
            let maxlen = match ck.model.head {
                Head::Flatten { maxlen } => Some(maxlen as usize),
                _ => None,
            };
            tokenize_with_blob(&f32_blob, &texts, maxlen)?
        }
        (None, false, false) => {
            let text = read_corpus(&data.corpus)?;
            ensure!(
                !text.is_empty(),
                "the corpus is empty: give text files with content"
            );
            let window = 40;
            let mut ids = tokenize_with_blob(&f32_blob, &[&text], None)?;
            let ids = ids.pop().unwrap_or_default();
            ids.chunks(window)
                .filter(|c| c.len() == window)
                .take(count)
                .map(<[u16]>::to_vec)
                .collect()
        }
        (_, _, true) => bail!(
            "{} holds a sentiment model: calibrate it with --train PATH (labelled reviews)",
            checkpoint.display()
        ),
        (_, _, false) => bail!(
            "{} holds a generator model: calibrate it with --corpus FILE...",
            checkpoint.display()
        ),
    };
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let (int_blob, f32_blob, calibration) =
        write_blobs(&ck.model, &ck.params, &sequences, out_dir)?;
    // In a model directory, the card follows the new blobs.
    if out_dir.join(CARD_FILE).is_file() {
        let mut card = TrainedCard::read(out_dir)?;
        card.files.int_blob = int_blob;
        card.files.f32_blob = f32_blob;
        card.calibration = Some(calibration.clone());
        card.write(out_dir)?;
    }
    Ok(calibration)
}

/// The notebook's length analysis of a review file at `maxlen`, in words or chars.
pub fn length_stats(path: &Path, maxlen: usize, chars: bool) -> Result<LengthStats> {
    ensure!(maxlen > 0, "--maxlen must be at least 1");
    let reviews = load_nonempty_reviews(path)?;
    let encoded = if chars {
        encode_chars(
            &reviews,
            &CharTable::new(NOTEBOOK_CHARS, true, true, true)?,
            maxlen,
        )?
    } else {
        let mut stats = LengthStats::new(maxlen);
        for (index, review) in reviews.iter().enumerate() {
            let mut words = 0usize;
            lstm_edge_runtime::tokenize::for_each_word(&review.text, |_| {
                words += 1;
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("{} review {index}: {e}", path.display()))?;
            stats.add(words);
        }
        return Ok(stats);
    };
    Ok(encoded.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn generator_job(dir: &Path, epochs: usize) -> TrainJob {
        let corpus = ["caesar", "hamlet", "macbeth"]
            .iter()
            .map(|play| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("../data/shakespeare/shakespeare-{play}.txt"))
            })
            .collect();
        let mut job = TrainJob::new(
            "tiny-g",
            Preset::G,
            DataSource::Corpus { files: corpus },
            dir.to_path_buf(),
        );
        job.hyper.hidden = 8;
        job.hyper.maxlen = 10;
        job.hyper.window_step = 97;
        job.hyper.epochs = epochs;
        job.calibration_sequences = 16;
        job.threads = 1;
        job
    }

    #[test]
    fn a_tiny_generator_run_writes_a_complete_model_directory() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let report = run(&generator_job(dir.path(), 2))?;
        for file in [
            ONNX_FILE,
            STEP_ONNX_FILE,
            F32_BLOB_FILE,
            INT_BLOB_FILE,
            CARD_FILE,
            CURVES_FILE,
            QUANT_ERROR_FILE,
            CHECKPOINT_FILE,
        ] {
            assert!(dir.path().join(file).exists(), "{file} missing");
        }
        let card = TrainedCard::read(dir.path())?;
        let written = &report.card;
        assert_eq!(card.files, written.files);
        assert_eq!(card.card.dims, written.card.dims);
        assert_eq!(card.job.data, written.job.data);
        // JSON keeps floats to within a rounding step.
        assert_eq!(card.card.metrics.len(), written.card.metrics.len());
        for ((k1, v1), (k2, v2)) in card.card.metrics.iter().zip(&written.card.metrics) {
            assert_eq!(k1, k2);
            assert!(
                (v1 - v2).abs() <= 1e-12 * v2.abs().max(1.0),
                "{k1}: {v1} vs {v2}"
            );
        }
        assert_eq!(card.history.len(), 2);
        let eval = card.evaluation.as_ref().context("no evaluation")?;
        assert_eq!(eval.samples, card.card.data.test_samples);
        // A 50-symbol uniform guess has loss ln 50 = 3.9; two epochs must beat it.
        assert!(eval.float.loss < 3.9, "{eval:?}");
        assert!(
            (eval.float.loss - eval.quantized.loss).abs() < 0.1,
            "{eval:?}"
        );

        // Re-evaluating from the directory gives the same figures.
        let again = super::eval(dir.path(), &EvalData::default(), false)?;
        assert_eq!(again.samples, eval.samples);
        assert!((again.float.loss - eval.float.loss).abs() < 1e-9);
        assert!((again.quantized.accuracy - eval.quantized.accuracy).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn wrong_data_for_the_preset_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut job = generator_job(dir.path(), 1);
        job.hyper = Preset::W.defaults();
        let err = run(&job).unwrap_err();
        assert!(format!("{err:#}").contains("--train PATH"), "{err:#}");
        let mut job = generator_job(dir.path(), 1);
        job.data = DataSource::Reviews {
            train: "x.jsonl".into(),
            test: None,
        };
        let err = run(&job).unwrap_err();
        assert!(format!("{err:#}").contains("--corpus"), "{err:#}");
        let mut job = generator_job(dir.path(), 1);
        job.hyper.epochs = 0;
        assert!(format!("{:#}", run(&job).unwrap_err()).contains("--epochs"));
    }
}
