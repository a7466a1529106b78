//! The workstation workflow's subcommands: `train`, `eval`, `export`, `quantize`,
//! `verify` and `data-stats`. Each parses its options into a library call of
//! [`lstm_edge_trainer::pipeline`] and prints the result.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, ValueEnum};
use lstm_edge_runtime::format::Cell;
use lstm_edge_trainer::data::Truncate;
use lstm_edge_trainer::files::FolderLock;
use lstm_edge_trainer::model::{HeadKind, Hyperparams, OptimizerKind, Preset};
use lstm_edge_trainer::ort_env::Device;
use lstm_edge_trainer::pipeline::{self, DataSource, EvalData, TrainJob};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PresetArg {
    /// Word-level sentiment (IMDB reviews).
    W,
    /// Char-level sentiment.
    C,
    /// Char-level generator (LSTM).
    G,
    /// The generator with a GRU.
    R,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::W => Preset::W,
            PresetArg::C => Preset::C,
            PresetArg::G => Preset::G,
            PresetArg::R => Preset::R,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CellArg {
    Lstm,
    Gru,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HeadArg {
    /// The notebook's flatten head (fixed maxlen).
    Flatten,
    /// The hidden state after the text's last token (any length; padding is skipped).
    Last,
    /// The mean hidden state over the text's tokens (any length; padding is skipped).
    Mean,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TruncateArg {
    /// Keep a long review's first maxlen tokens (the notebook's).
    Post,
    /// Keep its last maxlen tokens, where reviews tend to sum up (Keras' default).
    Pre,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    Rmsprop,
    Adam,
}

/// Data options shared by `eval` and `verify`.
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Labelled reviews (aclImdb folder, .jsonl[.gz] or .csv[.gz]) for sentiment models.
    #[arg(long = "test", alias = "reviews", value_name = "PATH")]
    pub reviews: Option<PathBuf>,
    /// Text files for generator models (the last 10% of their windows are scored).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub corpus: Vec<PathBuf>,
    /// Score only this many reviews (a seeded sample, within the card's test set when
    /// --test is left out), or a generator's first this many held-out windows.
    #[arg(long, allow_negative_numbers = true)]
    pub limit: Option<usize>,
}

impl DataArgs {
    fn eval_data(&self) -> Result<EvalData> {
        ensure!(
            self.limit != Some(0),
            "--limit must be at least 1 (leave it out to use every review or window)"
        );
        Ok(EvalData {
            reviews: self.reviews.clone(),
            corpus: self.corpus.clone(),
            limit: self.limit,
        })
    }
}

/// `lstm-edge train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Workload: w (word sentiment), c (char sentiment), g (generator), r (GRU generator).
    #[arg(long, value_enum)]
    pub preset: PresetArg,
    /// Output model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Training reviews (W, C): aclImdb folder, .jsonl[.gz] or .csv[.gz].
    #[arg(long, value_name = "PATH")]
    pub train: Option<PathBuf>,
    /// Test reviews (W, C); without it the validation share of --train is the test set.
    #[arg(long, value_name = "PATH")]
    pub test: Option<PathBuf>,
    /// Text files (G, R), concatenated in order.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub corpus: Vec<PathBuf>,
    /// Model name in the card (default: the output directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Recurrent cell (default: lstm; gru for r).
    #[arg(long, value_enum)]
    pub cell: Option<CellArg>,
    /// Head over the recurrent states (default: flatten for w and c, last for g and r).
    #[arg(long, value_enum)]
    pub head: Option<HeadArg>,
    /// Recurrent units, at most 256 (default: w 50, c 40, g and r 128).
    #[arg(long, allow_negative_numbers = true)]
    pub hidden: Option<usize>,
    /// Word embedding width (W; default 300).
    #[arg(long, allow_negative_numbers = true)]
    pub embed_dim: Option<usize>,
    /// Words in the vocabulary (W; default 10000), besides PAD and UNK.
    #[arg(long, allow_negative_numbers = true)]
    pub vocab_size: Option<usize>,
    /// Sequence length: reviews are post-padded to it and cut to it (--truncate says
    /// which end goes), generators read windows of it (default: w 200, c 1500, g and r 40).
    #[arg(long, allow_negative_numbers = true)]
    pub maxlen: Option<usize>,
    /// Which end of a review longer than --maxlen is kept (W, C; default: post, as in
    /// the notebook). A flatten head's blob records it, so the runtime cuts texts alike.
    #[arg(long, value_enum)]
    pub truncate: Option<TruncateArg>,
    /// Stride between generator windows (default 3).
    #[arg(long, allow_negative_numbers = true)]
    pub window_step: Option<usize>,
    /// Dropout rate on the recurrent outputs, in training only (default: w and c 0.2,
    /// g and r 0).
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f32>,
    /// Passes over the training data (default: w and c 2, g and r 12).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Sequences per update (default: w and c 32, g and r 128).
    #[arg(long, allow_negative_numbers = true)]
    pub batch: Option<usize>,
    /// Learning rate (default: w and c 0.001, g and r 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Clip the gradients to this global L2 norm before each update (default: none, as
    /// in the notebook).
    #[arg(long, value_name = "NORM", allow_negative_numbers = true)]
    pub clip_norm: Option<f32>,
    /// Multiply the learning rate by this after every epoch, e.g. 0.9 (default: none,
    /// a constant rate as in the notebook).
    #[arg(long, value_name = "FACTOR", allow_negative_numbers = true)]
    pub lr_decay: Option<f32>,
    /// Optimizer, updated inside the training graph (default: rmsprop, as in the notebook).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Seed of the data shuffle and split, the initial weights, the batch order and the
    /// dropout masks (default 42).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Training reviews used, train + validation (W and C default: the notebook's 16000).
    #[arg(long, conflicts_with = "all_reviews", allow_negative_numbers = true)]
    pub limit: Option<usize>,
    /// Use every training review instead of the notebook's 16000.
    #[arg(long)]
    pub all_reviews: bool,
    /// Share of the training reviews held out for validation (default 0.2).
    #[arg(long, allow_negative_numbers = true)]
    pub validation_split: Option<f32>,
    /// Evaluate only this many test reviews (a seeded sample).
    #[arg(long, allow_negative_numbers = true)]
    pub test_limit: Option<usize>,
    /// word2vec binary (.bin) or GloVe/word2vec text file initialising the embedding
    /// (W); .gz is read directly. Its width must equal --embed-dim (default 300). Words
    /// match lowercased, a lowercase entry beating its case variants; vocabulary words
    /// the file lacks (and UNK) start uniform in ±0.05 (--seed).
    #[arg(long, value_name = "FILE")]
    pub word_vectors: Option<PathBuf>,
    /// Initialise the embedding (W) with skip-gram word2vec trained for N passes over the
    /// training reviews' text (0: keep the random start).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub word2vec: Option<usize>,
    /// Keep the embedding's initial vectors fixed (W, with --word-vectors or --word2vec);
    /// the random rows of words a vectors file lacks stay random too.
    #[arg(long)]
    pub freeze_embedding: bool,
    /// Training sequences used to calibrate the integer blob.
    #[arg(long, default_value_t = 256, allow_negative_numbers = true)]
    pub calibration: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// ONNX Runtime intra-op threads (0: one per core). Workers spin during a step;
    /// LSTM_EDGE_ORT_SPINNING=0 makes them sleep. On a machine busy with other
    /// work, 1 thread is fastest. The weights do not depend on the number of threads.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub threads: usize,
    /// Continue from the output directory's checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Write the weights of the epoch with the lowest validation loss, not the last
    /// epoch's (also kept as OUT/checkpoint.best.ckpt). Validation then stays apart from
    /// the test set: reviews take it from the training pool (--validation-split), a
    /// corpus from the last 10% of its training windows.
    #[arg(long)]
    pub keep_best: bool,
    /// Stop once the validation loss has not improved for N epochs (validation is then
    /// kept apart from the test set, as with --keep-best).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub patience: Option<usize>,
    /// Also write the encoded training and validation sets as NumPy arrays
    /// (OUT/arrays/*.npy, meta.json), to train the same sequences elsewhere.
    #[arg(long)]
    pub write_arrays: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// The command line as typed, quoted for a shell, for the card. `--resume` is left out:
/// the same command without it rebuilds the model from scratch.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--resume")
        .map(lstm_edge_trainer::shell::quoted)
        .collect();
    format!("lstm-edge {}", args.join(" "))
}

/// The data `train` reads: reviews for the sentiment presets, a corpus for the
/// generators; refuses the other kind's flags rather than ignoring them.
fn data_source(args: &TrainArgs, preset: Preset) -> Result<DataSource> {
    let data = match preset {
        Preset::W | Preset::C => {
            ensure!(
                args.corpus.is_empty(),
                "preset {preset:?} trains a sentiment model on reviews: use --train PATH [--test PATH], not --corpus"
            );
            let train = args.train.clone().with_context(|| {
                format!("preset {preset:?} needs labelled reviews: give --train PATH (aclImdb folder, .jsonl[.gz] or .csv[.gz])")
            })?;
            DataSource::Reviews {
                train,
                test: args.test.clone(),
            }
        }
        Preset::G | Preset::R => {
            ensure!(
                args.train.is_none() && args.test.is_none(),
                "preset {preset:?} trains a generator on text: use --corpus FILE..., not --train/--test"
            );
            ensure!(
                !args.corpus.is_empty(),
                "preset {preset:?} needs text: give --corpus FILE... (e.g. data/shakespeare/*.txt)"
            );
            DataSource::Corpus {
                files: args.corpus.clone(),
            }
        }
    };
    Ok(data)
}

/// Refuses flags the run would ignore or cannot use: those of another preset's data
/// or model, a `--test-limit` without `--test`, `--limit 0`, and a head a generator
/// cannot have.
fn refuse_flags_the_run_cannot_use(args: &TrainArgs, preset: Preset) -> Result<()> {
    use Preset::{C, G, R, W};
    const REVIEWS: (&[Preset], &str) = (&[W, C], "review data (presets w and c)");
    const WORDS: (&[Preset], &str) = (&[W], "the word model (preset w)");
    const CORPUS: (&[Preset], &str) = (&[G, R], "a corpus (presets g and r)");
    let flags = [
        (args.limit.is_some(), "--limit", REVIEWS),
        (args.all_reviews, "--all-reviews", REVIEWS),
        (args.test_limit.is_some(), "--test-limit", REVIEWS),
        (
            args.validation_split.is_some(),
            "--validation-split",
            REVIEWS,
        ),
        (args.truncate.is_some(), "--truncate", REVIEWS),
        (args.vocab_size.is_some(), "--vocab-size", WORDS),
        (args.embed_dim.is_some(), "--embed-dim", WORDS),
        (args.word_vectors.is_some(), "--word-vectors", WORDS),
        (args.word2vec.is_some(), "--word2vec", WORDS),
        (args.freeze_embedding, "--freeze-embedding", WORDS),
        (args.window_step.is_some(), "--window-step", CORPUS),
    ];
    let reads = match preset {
        W => "reads words of reviews",
        C => "reads the chars of reviews",
        G | R => "reads a corpus, cut into windows whose last 10% are held out",
    };
    for (given, flag, (presets, what)) in flags {
        ensure!(
            !given || presets.contains(&preset),
            "{flag} applies to {what}; preset {preset:?} {reads}: drop {flag}"
        );
    }
    ensure!(
        args.test_limit.is_none() || args.test.is_some(),
        "--test-limit samples the --test set; without --test the test set is the held-out \
         share of --train (--validation-split sets it): give --test PATH or drop --test-limit"
    );
    ensure!(
        args.limit != Some(0),
        "--limit must be at least 1 (leave it out for the notebook's 16000, or give --all-reviews)"
    );
    ensure!(
        !(preset == R && matches!(args.cell, Some(CellArg::Lstm))),
        "preset r is the generator with a GRU; with --cell lstm it is preset g: give --preset g, \
         or drop --cell"
    );
    if let (Some(head @ (HeadArg::Flatten | HeadArg::Mean)), G | R) = (args.head, preset) {
        bail!(
            "--head {} scores a whole review; a generator predicts the next char from its \
             last state: use --head last (its default) or drop --head",
            if matches!(head, HeadArg::Flatten) {
                "flatten"
            } else {
                "mean"
            }
        );
    }
    Ok(())
}

/// The hyperparameters the arguments override on the preset's.
fn set_hyperparams(args: &TrainArgs, hp: &mut Hyperparams) {
    if let Some(cell) = args.cell {
        hp.cell = match cell {
            CellArg::Lstm => Cell::Lstm,
            CellArg::Gru => Cell::Gru,
        };
    }
    if let Some(head) = args.head {
        hp.head = match head {
            HeadArg::Flatten => HeadKind::Flatten,
            HeadArg::Last => HeadKind::Last,
            HeadArg::Mean => HeadKind::Mean,
        };
    }
    if let Some(truncate) = args.truncate {
        hp.truncate = match truncate {
            TruncateArg::Post => Truncate::Post,
            TruncateArg::Pre => Truncate::Pre,
        };
    }
    if let Some(optimizer) = args.optimizer {
        hp.optimizer = match optimizer {
            OptimizerArg::Rmsprop => OptimizerKind::RmsProp,
            OptimizerArg::Adam => OptimizerKind::Adam,
        };
    }
    macro_rules! set {
        ($($field:ident <- $arg:expr),*) => {$(if let Some(v) = $arg { hp.$field = v; })*};
    }
    set!(hidden <- args.hidden, embed_dim <- args.embed_dim, maxlen <- args.maxlen,
         window_step <- args.window_step, dropout <- args.dropout, epochs <- args.epochs,
         batch_size <- args.batch, learning_rate <- args.lr, seed <- args.seed,
         validation_split <- args.validation_split, clip_norm <- args.clip_norm.map(Some),
         lr_decay <- args.lr_decay.map(Some));
    if args.all_reviews {
        hp.train_samples = None;
    } else if let Some(limit) = args.limit {
        hp.train_samples = Some(limit);
    }
}

/// Where the word embedding starts: a vectors file, word2vec on the training text, or
/// random; and whether it stays fixed.
fn set_embedding_start(args: &TrainArgs, job: &mut TrainJob) -> Result<()> {
    job.word_vectors = args.word_vectors.clone();
    if let Some(epochs) = args.word2vec {
        ensure!(
            args.word_vectors.is_none(),
            "--word2vec trains the embedding's vectors and --word-vectors reads them from a file: give one of the two"
        );
        job.word2vec_epochs = (epochs > 0).then_some(epochs);
    }
    if args.freeze_embedding {
        ensure!(
            job.word_vectors.is_some() || job.word2vec_epochs.is_some(),
            "--freeze-embedding keeps the embedding's starting vectors: give them with --word-vectors FILE or --word2vec N (N at least 1)"
        );
        job.freeze_embedding = true;
    }
    Ok(())
}

/// Builds the job `train` runs.
pub fn train_job(args: &TrainArgs, command: String) -> Result<TrainJob> {
    let preset = Preset::from(args.preset);
    let data = data_source(args, preset)?;
    refuse_flags_the_run_cannot_use(args, preset)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        // `--out .` or `..` is named after the folder it stands for.
        None => args
            .out
            .file_name()
            .map(|n| n.to_owned())
            .or_else(|| {
                args.out
                    .canonicalize()
                    .ok()?
                    .file_name()
                    .map(|n| n.to_owned())
            })
            .map_or("model".to_string(), |n| n.to_string_lossy().into_owned()),
    };
    let mut job = TrainJob::new(&name, preset, data, args.out.clone());
    set_hyperparams(args, &mut job.hyper);
    if let Some(words) = args.vocab_size {
        job.vocab_size = words;
    }
    set_embedding_start(args, &mut job)?;
    job.test_limit = args.test_limit;
    job.calibration_sequences = args.calibration;
    job.device = args.device;
    job.threads = args.threads;
    job.resume = args.resume;
    job.keep_best = args.keep_best;
    ensure!(
        args.patience != Some(0),
        "--patience must be at least 1 epoch (leave it out to train every epoch)"
    );
    job.patience = args.patience;
    job.write_arrays = args.write_arrays;
    job.progress = !args.quiet;
    job.command = command;
    Ok(job)
}

/// What a `train` interrupted before any checkpoint is in its folder says.
const NOTHING_SAVED_HINT: &str =
    "interrupted before the first epoch was saved: there is nothing to resume; run the command again";

/// What an interrupted `train` says. An epoch's line is printed once its checkpoint
/// is saved, so the lines tell what a fresh run kept; a resumed run's checkpoint
/// holds its earlier epochs as well.
fn interrupt_hint(job: &TrainJob) -> String {
    let checkpoint = job.out_dir.join(pipeline::CHECKPOINT_FILE);
    let checkpoint = checkpoint.display();
    if job.resumes_checkpoint() {
        format!("interrupted: {checkpoint} holds the epochs that finished; the same command continues from there")
    } else if job.progress {
        format!(
            "interrupted: the epochs whose lines were printed are saved in {checkpoint}, and \
             the same command with --resume continues from there; if none was, run the \
             command again without --resume"
        )
    } else {
        format!(
            "interrupted: the same command with --resume continues from the last epoch saved \
             in {checkpoint}; if it refuses that checkpoint (another run's), no epoch of this \
             run finished: run the command again without --resume"
        )
    }
}

/// `train`: prints where the model went and its figures.
pub fn train(args: &TrainArgs) -> Result<()> {
    let job = train_job(args, command_line())?;
    crate::interrupt::say_on_interrupt(
        &interrupt_hint(&job),
        &job.out_dir.join(pipeline::CHECKPOINT_FILE),
        NOTHING_SAVED_HINT,
    );
    let report = pipeline::run(&job)?;
    let card = &report.card;
    println!("model written to {}", report.out_dir.display());
    println!(
        "files: {} B integer blob, {} B f32 blob, {} B ONNX",
        card.files.int_blob, card.files.f32_blob, card.files.onnx
    );
    if let Some(eval) = &card.evaluation {
        println!("{eval}");
    }
    println!("time: {:.1} s", card.job.seconds);
    Ok(())
}

fn check_model_dir(dir: &Path) -> Result<()> {
    ensure!(
        dir.exists(),
        "{} does not exist: give the --out directory of `lstm-edge train`",
        dir.display()
    );
    ensure!(
        dir.is_dir(),
        "{} is not a model directory: give the --out directory of `lstm-edge train`",
        dir.display()
    );
    Ok(())
}

/// `lstm-edge eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model directory written by `lstm-edge train`.
    #[arg(long, short)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the evaluation as JSON.
    #[arg(long)]
    pub json: bool,
    /// Leave card.json and quant-error.png as they are (by default they take these
    /// figures when the set scored is the card's own test set, whole).
    #[arg(long)]
    pub no_record: bool,
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    check_model_dir(&args.model)?;
    let data = args.data.eval_data()?;
    let prepared = pipeline::prepare_eval(&args.model, &data)?;
    let other_than = prepared.other_than.clone().filter(|_| !args.no_record);
    // Taken before the work: a folder another command is writing to is refused first.
    let lock = match args.no_record || other_than.is_some() {
        true => None,
        false => Some(FolderLock::take(&args.model).context(
            "eval records its figures in the model's card: pass --no-record to only print them",
        )?),
    };
    let evaluation = prepared.score(!args.json)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        println!("{evaluation}");
    }
    let Some(lock) = lock else {
        if let Some(own) = other_than {
            eprintln!(
                "note: not recorded: {}'s card keeps its figures of {own}, scored whole; these \
                 are of other data (not that set, whole)",
                args.model.display()
            );
        }
        return Ok(());
    };
    let adopted =
        pipeline::record_evaluation(&args.model, &evaluation, &lock).with_context(|| {
            format!(
                "the figures above are not recorded in {}",
                args.model.display()
            )
        })?;
    eprintln!(
        "note: {}'s card.json and quant-error.png now hold these figures ({}, {} samples; \
         --no-record leaves them as they were)",
        args.model.display(),
        evaluation.data,
        evaluation.samples
    );
    if adopted {
        eprintln!(
            "note: the card, from an earlier build, had no checksum of its test set; it now \
             records this set's, so a later eval refuses changed data (check that this is the \
             data the model was tested on)"
        );
    }
    Ok(())
}

/// `lstm-edge export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Training checkpoint, or the model directory holding it (its best epoch's when
    /// trained with --keep-best).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Directory for model.onnx (and model-step.onnx); default: the checkpoint's.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The folder `--out` names, else the checkpoint's; a file given as `--out` is refused.
fn out_dir(out: &Option<PathBuf>, checkpoint: &Path) -> Result<PathBuf> {
    if let Some(out) = out.as_ref().filter(|out| out.is_file()) {
        bail!(
            "--out {} is a file: give a folder for the model",
            out.display()
        );
    }
    Ok(out.clone().unwrap_or_else(|| {
        checkpoint
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }))
}

pub fn export(args: &ExportArgs) -> Result<()> {
    let checkpoint = pipeline::model_checkpoint(&args.checkpoint);
    for file in pipeline::export_checkpoint(&checkpoint, &out_dir(&args.out, &checkpoint)?)? {
        println!("{}", file.display());
    }
    Ok(())
}

/// `lstm-edge quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// Training checkpoint, or the model directory holding it (its best epoch's when
    /// trained with --keep-best).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Calibration reviews (sentiment models): a seeded sample, cut to the maxlen the
    /// model trained on; its own training file gives the blobs `train` wrote.
    #[arg(long = "train", value_name = "PATH")]
    pub reviews: Option<PathBuf>,
    /// Calibration text (generator models), cut into windows of the length and stride
    /// the model trained on (its card's maxlen and window step; 40 and 3 when no card
    /// sits beside the checkpoint).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub corpus: Vec<PathBuf>,
    /// Calibration sequences [default: as many as training took, from the model's
    /// card; 256 without one].
    #[arg(long, allow_negative_numbers = true)]
    pub calibration: Option<usize>,
    /// Directory for model.blob and model-f32.blob; default: the checkpoint's.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the calibration as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn quantize(args: &QuantizeArgs) -> Result<()> {
    ensure!(
        args.calibration != Some(0),
        "--calibration must be at least 1"
    );
    let checkpoint = pipeline::model_checkpoint(&args.checkpoint);
    let dir = out_dir(&args.out, &checkpoint)?;
    let data = EvalData {
        reviews: args.reviews.clone(),
        corpus: args.corpus.clone(),
        limit: None,
    };
    let calibration = pipeline::quantize_checkpoint(&checkpoint, &data, args.calibration, &dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&calibration)?);
    } else {
        println!(
            "{} and {} written to {}",
            pipeline::INT_BLOB_FILE,
            pipeline::F32_BLOB_FILE,
            dir.display()
        );
        println!(
            "calibration: {} sequences, {} steps; mean |int - f32| per gate {:.3e}, per row {:.3e}: {} chosen",
            calibration.sequences,
            calibration.steps,
            calibration.per_gate_error,
            calibration.per_row_error,
            calibration.chosen
        );
    }
    Ok(())
}

/// `lstm-edge verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Model directory written by `lstm-edge train`.
    #[arg(long, short)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Sequences compared [default: 64].
    #[arg(long, allow_negative_numbers = true)]
    pub sequences: Option<usize>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn verify(args: &VerifyArgs) -> Result<()> {
    check_model_dir(&args.model)?;
    let data = args.data.eval_data()?;
    let report = pipeline::verify_model_dir(&args.model, &data, args.sequences.unwrap_or(64))?;
    if let Some(asked) = args.sequences.filter(|&n| n > report.sequences) {
        eprintln!(
            "note: --sequences {asked}, but the data gives {}: all of them are compared",
            report.sequences
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    report
        .check()
        .with_context(|| format!("verifying {}", args.model.display()))
}

/// `lstm-edge data-stats`.
#[derive(Args, Debug)]
pub struct DataStatsArgs {
    /// Reviews: aclImdb folder, .jsonl[.gz] or .csv[.gz].
    pub reviews: PathBuf,
    /// Length that reviews are padded or truncated to [default: 200 words, or with
    /// --chars 1500 chars, as presets w and c train].
    #[arg(long, allow_negative_numbers = true)]
    pub maxlen: Option<usize>,
    /// Count chars of the notebook's set (workload C) instead of words.
    #[arg(long)]
    pub chars: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn data_stats(args: &DataStatsArgs) -> Result<()> {
    let preset = if args.chars { Preset::C } else { Preset::W };
    let maxlen = args.maxlen.unwrap_or(preset.defaults().maxlen);
    let (stats, positive) = pipeline::length_stats(&args.reviews, maxlen, args.chars)?;
    let negative = stats.sequences - positive;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "file": args.reviews.display().to_string(),
                "unit": if args.chars { "chars" } else { "words" },
                "maxlen": stats.maxlen,
                "sequences": stats.sequences,
                "positive": positive,
                "negative": negative,
                "padded": stats.padded,
                "equal": stats.exact,
                "truncated": stats.truncated,
                "average_len": stats.average_len(),
            }))?
        );
    } else {
        println!(
            "{}: {} review{} ({positive} positive, {negative} negative), {} at maxlen {}",
            args.reviews.display(),
            stats.sequences,
            if stats.sequences == 1 { "" } else { "s" },
            if args.chars { "chars" } else { "words" },
            stats.maxlen
        );
        println!("padded     {}", stats.padded);
        println!("equal      {}", stats.exact);
        println!("truncated  {}", stats.truncated);
        println!("average    {:.1}", stats.average_len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interrupt_hint_fits_a_fresh_a_quiet_and_a_resumed_run() {
        let dir = tempfile::tempdir().unwrap();
        let data = pipeline::DataSource::Corpus { files: vec![] };
        let mut job = TrainJob::new("m", Preset::G, data, dir.path().to_path_buf());
        job.progress = true;
        assert!(interrupt_hint(&job).contains("the epochs whose lines were printed are saved"));
        job.progress = false;
        assert!(interrupt_hint(&job).contains("if it refuses that checkpoint (another run's)"));
        // --resume with a checkpoint there: its earlier epochs stay, whatever was printed.
        job.resume = true;
        assert!(interrupt_hint(&job).contains("run the command again without --resume"));
        std::fs::write(dir.path().join(pipeline::CHECKPOINT_FILE), b"LSTMEDCK....").unwrap();
        let resumed = interrupt_hint(&job);
        assert!(
            resumed
                .ends_with("holds the epochs that finished; the same command continues from there"),
            "{resumed}"
        );
    }
}
