//! The training workflow end to end: data -> tokenizer -> encoded sets -> training with
//! per-epoch checkpoints -> ONNX, f32 and integer blobs -> evaluation of both blobs ->
//! model card and plots, all in one output directory.
//!
//! A model directory holds `model.onnx` (and `model-step.onnx` for last-state heads),
//! `model-f32.blob`, `model.blob` (integer), `card.json`, `curves.png`,
//! `quant-error.png` and the training checkpoint `checkpoint.ckpt`.

mod card;
mod embedding_start;
mod eval_data;
mod evaluate;
mod from_checkpoint;
mod model_dir;
mod npy_arrays;
mod prepare;
mod prepare_corpus;
mod prepare_reviews;
mod repeated_files;
mod review_sets;
mod same_model;
mod verify;

pub use card::{FileStamp, JobRecord, LengthRecord, ModelFile, ModelFiles, TrainedCard};
pub use eval_data::{
    eval_set_for, prepare_eval, read_model_file, record_evaluation, verify_sequences, EvalData,
    PreparedEval,
};
pub use evaluate::{evaluate_blobs, tokenize_with_blob, BlobMetrics, EvalSet, Evaluation};
pub use from_checkpoint::{
    export_checkpoint, load_checkpoint, model_checkpoint, quantize_checkpoint,
};
pub use model_dir::{in_model_dir, write_blobs, write_onnx};
pub use prepare::length_stats;
pub use prepare_reviews::notebook_char_input;
pub use same_model::{check_blobs_match_card, check_same_model};
pub use verify::{
    check_onnx_matches_blob, step_gap, verify, verify_model_dir, TractModel, VerifyReport,
    STEP_SEQUENCES, TRACT_F32_TOLERANCE,
};

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use lstm_edge_runtime::format::MAX_HIDDEN;
use lstm_edge_runtime::tokenize::words::Vocab;
use serde::{Deserialize, Serialize};

use crate::bptt::Recurrence;
use crate::card::ModelCard;
use crate::checkpoint::{self, EmbeddingOrigin};
use crate::model::{Hyperparams, OptimizerKind, Preset};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::ort_env::Device;
use crate::plot;
use crate::quantize::Calibration;
use crate::train::{train, Dataset, TrainOptions, TrainRun};

use model_dir::{
    calibrated_blobs, make_and_lock_model_dir, prepare_out_dir, refuse_resume_without_checkpoint,
    remove_if_present, write_quantized, MODEL_FILES,
};
use npy_arrays::{remove_stale_arrays, write_arrays};
use prepare::Prepared;
use prepare_corpus::prepare_corpus;
use prepare_reviews::prepare_reviews;

pub const ONNX_FILE: &str = "model.onnx";
pub const STEP_ONNX_FILE: &str = "model-step.onnx";
pub const F32_BLOB_FILE: &str = "model-f32.blob";
pub const INT_BLOB_FILE: &str = "model.blob";
pub const CARD_FILE: &str = "card.json";
pub const CHECKPOINT_FILE: &str = "checkpoint.ckpt";

/// Follows each "rebuild it from the checkpoint" fix, for folders that have none.
pub const WITHOUT_CHECKPOINT: &str =
    " (a model folder without its checkpoint, as shipped ones are: rerun the `command` its \
     card.json records)";
pub const CURVES_FILE: &str = "curves.png";
pub const QUANT_ERROR_FILE: &str = "quant-error.png";
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
    /// Keep the weights of the epoch with the lowest validation loss. Validation then
    /// never overlaps the test set: for reviews it comes out of the training pool, for a
    /// corpus it is the last 10% of the training windows.
    pub keep_best: bool,
    /// Stop once the validation loss has not improved for this many epochs; validation
    /// then stays apart from the test set, as with `keep_best`.
    pub patience: Option<usize>,
    pub progress: bool,
    /// Also write the encoded training and validation sets as NumPy arrays
    /// (`out_dir/arrays`), to train the same sequences in another framework.
    pub write_arrays: bool,
    /// The command line that rebuilds this model, recorded in the card.
    pub command: String,
}

/// Words a word model keeps unless `--vocab-size` says otherwise.
pub const DEFAULT_VOCAB_SIZE: usize = 10_000;

impl TrainJob {
    /// Whether training picks an epoch by validation loss, so that validation must not
    /// overlap the test set.
    pub fn selects_on_validation(&self) -> bool {
        self.keep_best || self.patience.is_some()
    }

    /// Where the embedding's starting vectors come from.
    pub fn embedding_origin(&self) -> EmbeddingOrigin {
        match (&self.word_vectors, self.word2vec_epochs) {
            (Some(path), _) => EmbeddingOrigin::Vectors(path.display().to_string()),
            (None, Some(epochs)) => EmbeddingOrigin::Word2Vec(epochs),
            (None, None) => EmbeddingOrigin::Random,
        }
    }

    /// Whether this run continues a checkpoint in its out directory.
    pub fn resumes_checkpoint(&self) -> bool {
        self.resume && checkpoint::is_checkpoint(&self.out_dir.join(CHECKPOINT_FILE))
    }

    /// Training sequences that calibrate the integer blob, by default.
    pub const DEFAULT_CALIBRATION_SEQUENCES: usize = 256;

    /// A job with the preset's notebook settings and the usual defaults.
    pub fn new(name: &str, preset: Preset, data: DataSource, out_dir: PathBuf) -> Self {
        TrainJob {
            name: name.to_string(),
            hyper: preset.defaults(),
            vocab_size: DEFAULT_VOCAB_SIZE,
            data,
            word_vectors: None,
            word2vec_epochs: None,
            freeze_embedding: false,
            test_limit: None,
            calibration_sequences: Self::DEFAULT_CALIBRATION_SEQUENCES,
            device: Device::Cpu,
            threads: 0,
            out_dir,
            resume: false,
            keep_best: false,
            patience: None,
            progress: false,
            write_arrays: false,
            command: String::new(),
        }
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
        clip_norm: hyper.clip_norm,
        lr_decay: hyper.lr_decay,
    }
}

fn is_sentiment(preset: Preset) -> bool {
    matches!(preset, Preset::W | Preset::C)
}

/// The model format stores lengths and widths as 16-bit numbers.
const MAX_LEN: usize = u16::MAX as usize;
/// More intra-op threads than any machine this runs on has cores (ONNX Runtime takes
/// the count as a C int).
pub const MAX_THREADS: usize = 1024;

fn check_hyper(hp: &Hyperparams) -> Result<()> {
    ensure!(hp.maxlen > 0, "--maxlen must be at least 1");
    ensure!(
        hp.maxlen <= MAX_LEN,
        "--maxlen must be at most {MAX_LEN} (the model format's limit), got {}",
        hp.maxlen
    );
    ensure!(hp.hidden > 0, "--hidden must be at least 1");
    ensure!(
        hp.hidden <= MAX_HIDDEN,
        "--hidden must be at most {MAX_HIDDEN} (the runtime's largest LSTM/GRU), got {}",
        hp.hidden
    );
    ensure!(hp.epochs > 0, "--epochs must be at least 1");
    ensure!(hp.batch_size > 0, "--batch must be at least 1");
    // A subnormal value is above 0 but moves no weight.
    ensure!(
        hp.learning_rate.is_normal() && hp.learning_rate > 0.0,
        "--lr must be a finite number of at least {:e}, got {:?}",
        f32::MIN_POSITIVE,
        hp.learning_rate
    );
    if let Some(norm) = hp.clip_norm {
        ensure!(
            norm.is_normal() && norm > 0.0,
            "--clip-norm must be a finite number of at least {:e}, got {norm:?}",
            f32::MIN_POSITIVE
        );
    }
    if let Some(decay) = hp.lr_decay {
        ensure!(
            decay.is_normal() && decay > 0.0 && decay <= 1.0,
            "--lr-decay must be in (0, 1] (the learning rate's factor per epoch), got {decay}"
        );
    }
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
        ensure!(
            hp.embed_dim <= MAX_LEN,
            "--embed-dim must be at most {MAX_LEN} (the model format's limit), got {}",
            hp.embed_dim
        );
    }
    if !is_sentiment(hp.preset) {
        ensure!(hp.window_step > 0, "--window-step must be at least 1");
    }
    Ok(())
}

/// Trains, exports, quantizes and evaluates: everything in the module docs.
pub fn run(job: &TrainJob) -> Result<TrainReport> {
    let started = Instant::now();
    check_job(job)?;
    ensure!(
        !job.out_dir.is_file(),
        "--out {} is a file: give a directory for the model",
        job.out_dir.display()
    );
    // Before the data is read (word2vec may train): checked again under the lock.
    refuse_resume_without_checkpoint(&job.out_dir, job.resume)?;
    crate::ort_env::check_device(job.device)?;
    let mut prepared = match &job.data {
        DataSource::Reviews { train, test } => prepare_reviews(job, train, test.as_deref())?,
        DataSource::Corpus { files } => prepare_corpus(job, files)?,
    };
    prepared.info.test_fingerprint = Some(prepared.test.fingerprint());
    // Before the folder is tidied: the stale files there are no other run's.
    let _lock = make_and_lock_model_dir(&job.out_dir, MODEL_FILES)?;
    prepare_out_dir(&job.out_dir, job.resume)?;
    if job.write_arrays {
        write_arrays(&prepared, &job.out_dir.join(ARRAYS_DIR))?;
    }
    if job.progress {
        let held_out = if prepared.validation_is_test {
            format!(
                "{} held-out samples (validation and test)",
                prepared.test.len()
            )
        } else {
            format!(
                "{} validation, {} test samples",
                prepared.validation.as_ref().map_or(0, Dataset::len),
                prepared.test.len()
            )
        };
        eprintln!(
            "{}: {} training, {held_out}; {} parameters",
            job.name,
            prepared.train.len(),
            prepared
                .params
                .named()
                .iter()
                .map(|(_, t)| t.len())
                .sum::<usize>()
        );
    }
    let run = train(
        &prepared.cfg,
        prepared.params.clone(),
        &prepared.train,
        prepared.validation.as_ref(),
        &train_options(job),
    )?;

    let dir = &job.out_dir;
    // The blobs first: weights that do not quantize leave the earlier model whole.
    let blobs = calibrated_blobs(&prepared.cfg, &run.params, &prepared.calibration)?;
    // The earlier model's card goes before its files are replaced: a run stopped while
    // writing them leaves no card that names other files.
    remove_if_present(&dir.join(CARD_FILE))?;
    remove_if_present(&dir.join(QUANT_ERROR_FILE))?;
    // An earlier import's record would describe blobs that are about to go.
    remove_if_present(&dir.join(crate::import::IMPORT_FILE))?;
    let (int_blob, f32_blob, calibration) = write_quantized(blobs, dir)?;
    let mut files = ModelFiles::default();
    files.record(ModelFile::IntBlob, Some(int_blob));
    files.record(ModelFile::F32Blob, Some(f32_blob));
    write_onnx(&prepared.cfg, &run.params, dir, &mut files)?;
    plot::training_curves(&run.history, &dir.join(CURVES_FILE))?;
    let evaluation = evaluate_blobs(
        &std::fs::read(dir.join(F32_BLOB_FILE))?,
        &std::fs::read(dir.join(INT_BLOB_FILE))?,
        &prepared.test,
        &prepared.test_name,
        job.progress,
    )?;
    let mut card = trained_card(job, prepared, run, files, calibration);
    plot::quantization_error(&evaluation.abs_diffs, &dir.join(QUANT_ERROR_FILE))?;
    card.set_metrics(&evaluation, is_sentiment(job.hyper.preset));
    card.job.seconds = started.elapsed().as_secs_f64();
    card.write(dir)?;
    remove_stale_arrays(&dir.join(ARRAYS_DIR), job.write_arrays)?;
    Ok(TrainReport {
        card,
        out_dir: dir.clone(),
    })
}

/// Refuses a job whose settings or data do not fit its preset, before loading data.
fn check_job(job: &TrainJob) -> Result<()> {
    check_hyper(&job.hyper)?;
    let data: Vec<&PathBuf> = match &job.data {
        DataSource::Reviews { train, test } => std::iter::once(train).chain(test).collect(),
        DataSource::Corpus { files } => files.iter().collect(),
    };
    if let Some(path) = data
        .into_iter()
        .chain(&job.word_vectors)
        .find(|p| p.to_str().is_none())
    {
        bail!(
            "{path:?} is not valid UTF-8, and card.json records the data's paths as text: \
             rename it, or link to it under a UTF-8 name"
        );
    }
    ensure!(
        !job.name.trim().is_empty() && !job.name.chars().any(char::is_control),
        "the model name {:?} (from --name, or else --out's folder name) is blank or holds \
         a control char such as a line end or tab: give --name with one line of text",
        job.name
    );
    ensure!(
        job.threads <= MAX_THREADS,
        "--threads must be at most {MAX_THREADS}, got {}",
        job.threads
    );
    let cores = crate::ort_env::available_cores();
    if job.threads > cores && job.device == Device::Cpu {
        eprintln!(
            "warning: --threads {} is more than the {cores} cores this process may use, which \
             only slows ONNX Runtime down (its workers spin): give at most {cores}",
            job.threads
        );
    }
    // A stall is checked before each epoch after the best one: stopping before the
    // last epoch takes `patience + 1` epochs first.
    if let Some(patience) = job.patience.filter(|&p| p + 1 >= job.hyper.epochs) {
        eprintln!(
            "note: --patience {patience} cannot stop a run of {} epochs early (that takes at \
             least {} epochs)",
            job.hyper.epochs,
            patience + 2
        );
    }
    ensure!(
        job.calibration_sequences > 0,
        "--calibration must be at least 1 (the integer blob is calibrated on training sequences)"
    );
    ensure!(
        job.test_limit != Some(0),
        "--test-limit must be at least 1 (leave it out to evaluate every test review)"
    );
    if job.hyper.preset == Preset::W {
        ensure!(job.vocab_size > 0, "--vocab-size must be at least 1");
        ensure!(
            job.vocab_size <= Vocab::MAX_WORDS,
            "--vocab-size must be at most {} (the model format's limit), got {}",
            Vocab::MAX_WORDS,
            job.vocab_size
        );
    }
    match (&job.data, is_sentiment(job.hyper.preset)) {
        (DataSource::Reviews { .. }, true) | (DataSource::Corpus { .. }, false) => Ok(()),
        (DataSource::Reviews { .. }, false) => bail!(
            "preset {:?} trains a generator: give --corpus FILE..., not reviews",
            job.hyper.preset
        ),
        (DataSource::Corpus { .. }, true) => bail!(
            "preset {:?} trains a sentiment model: give --train PATH with labelled reviews, not a corpus",
            job.hyper.preset
        ),
    }
}

fn train_options(job: &TrainJob) -> TrainOptions {
    TrainOptions {
        epochs: job.hyper.epochs,
        batch_size: job.hyper.batch_size,
        seed: job.hyper.seed,
        optimizer: optimizer_config(&job.hyper),
        device: job.device,
        threads: job.threads,
        recurrence: Recurrence::Scan,
        freeze_embedding: job.freeze_embedding,
        embedding_origin: job.embedding_origin(),
        checkpoint: Some(job.out_dir.join(CHECKPOINT_FILE)),
        resume: job.resume,
        keep_best: job.keep_best,
        patience: job.patience,
        progress: job.progress,
    }
}

/// The card of a finished run, before the test-set evaluation: the train and
/// validation metrics are those of the epoch whose weights were kept.
fn trained_card(
    job: &TrainJob,
    prepared: Prepared,
    run: TrainRun,
    files: ModelFiles,
    calibration: Calibration,
) -> TrainedCard {
    let mut card = ModelCard::new(
        &job.name,
        &prepared.cfg,
        &run.params,
        Some(job.hyper.clone()),
        prepared.info,
    );
    card.description = describe_model(&job.hyper, run.history.len());
    if run.history.len() < job.hyper.epochs {
        card.description += &format!(
            " of {} (stopped early by --patience {}: the validation loss stopped improving)",
            job.hyper.epochs,
            job.patience.unwrap_or_default()
        );
    }
    if job.keep_best {
        card.description += &format!(
            ", keeping epoch {}'s weights (lowest validation loss)",
            run.kept_epoch
        );
    }
    if let Some(kept) = run.history.iter().find(|e| e.epoch == run.kept_epoch) {
        let metrics = &mut card.metrics;
        metrics.insert("train_loss".into(), kept.train_loss);
        metrics.insert("train_accuracy".into(), kept.train_accuracy);
        if let (Some(l), Some(a)) = (kept.val_loss, kept.val_accuracy) {
            metrics.insert("val_loss".into(), l);
            metrics.insert("val_accuracy".into(), a);
        }
    }
    TrainedCard {
        card,
        command: job.command.clone(),
        job: JobRecord {
            data: job.data.clone(),
            vocab_size: (job.hyper.preset == Preset::W).then_some(job.vocab_size),
            word_vectors: job.word_vectors.clone(),
            word2vec_epochs: job.word2vec_epochs,
            freeze_embedding: job.freeze_embedding,
            kept_epoch: job.keep_best.then_some(run.kept_epoch),
            patience: job.patience,
            test_limit: job.test_limit,
            device: job.device.to_string(),
            threads: job.threads,
            seconds: 0.0,
        },
        history: run.history,
        evaluation: None,
        calibration: Some(calibration),
        files,
        length_stats: prepared.lengths,
    }
}

fn describe_model(hp: &Hyperparams, epochs: usize) -> String {
    let what = match hp.preset {
        Preset::W => "word-level sentiment",
        Preset::C => "char-level sentiment",
        Preset::G | Preset::R => "char-level generator",
    };
    format!(
        "{what}: {}({}) with a {:?} head, trained {epochs} epoch{}",
        hp.cell,
        hp.hidden,
        hp.head,
        if epochs == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use anyhow::Context;

    use super::from_checkpoint::calibration_card;
    use super::*;

    pub(super) fn generator_job(dir: &Path, epochs: usize) -> TrainJob {
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

        // Re-quantizing from the checkpoint calibrates on the run's 10-char windows,
        // found from the card beside the checkpoint or in the output folder.
        let checkpoint = dir.path().join(CHECKPOINT_FILE);
        let elsewhere = tempfile::tempdir()?;
        let window = |checkpoint: &Path, out: &Path| {
            calibration_card(checkpoint, out).and_then(|t| Some(t.card.hyperparameters?.maxlen))
        };
        assert_eq!(window(&checkpoint, elsewhere.path()), Some(10));
        let moved = elsewhere.path().join(CHECKPOINT_FILE);
        std::fs::copy(&checkpoint, &moved)?;
        assert_eq!(window(&moved, elsewhere.path()), None);
        assert_eq!(window(&moved, dir.path()), Some(10));

        // Re-evaluating from the directory gives the same figures.
        let again = super::prepare_eval(dir.path(), &EvalData::default())?.score(false)?;
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

    /// Sizes the model format or the runtime cannot hold, and an empty test sample, are
    /// refused before training, not after it.
    #[test]
    fn sizes_past_the_formats_limits_are_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |edit: &dyn Fn(&mut TrainJob), flag: &str| {
            let mut job = generator_job(dir.path(), 1);
            job.hyper = Preset::W.defaults();
            job.data = DataSource::Reviews {
                train: "never-read.jsonl".into(),
                test: None,
            };
            edit(&mut job);
            let err = format!("{:#}", run(&job).unwrap_err());
            assert!(err.contains(flag), "{err}");
        };
        refused(&|job| job.hyper.hidden = MAX_HIDDEN + 1, "--hidden");
        refused(&|job| job.hyper.maxlen = MAX_LEN + 1, "--maxlen");
        refused(&|job| job.hyper.embed_dim = MAX_LEN + 1, "--embed-dim");
        refused(&|job| job.vocab_size = Vocab::MAX_WORDS + 1, "--vocab-size");
        refused(&|job| job.test_limit = Some(0), "--test-limit");
        refused(
            &|job| job.name = " ".into(),
            "the model name \" \" (from --name",
        );
        refused(
            &|job| job.name = "a\nb".into(),
            "the model name \"a\\nb\" (from --name",
        );
        assert!(!dir.path().join(CHECKPOINT_FILE).exists());
    }

    #[test]
    fn a_run_that_fails_early_leaves_no_empty_folder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("never");
        let mut job = generator_job(&out, 1);
        job.hyper.learning_rate = 1e37;
        let err = format!("{:#}", run(&job).unwrap_err());
        assert!(err.contains("not finite"), "{err}");
        assert!(!out.exists());
    }
}
