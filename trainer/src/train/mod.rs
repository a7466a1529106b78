//! The training loop: epochs of shuffled batches through a [`TrainSession`],
//! validation after each epoch, an atomic checkpoint after each epoch, resume.
//!
//! Determinism: epoch `e`'s order is a shuffle seeded by `(seed, e)`, and batch
//! `b`'s dropout mask is drawn from a generator seeded by `(seed, e, b)`, so a
//! run resumed after any epoch replays exactly what an uninterrupted run does
//! (on the same device and thread count).

mod dataset;
mod resume;

use dataset::{check_data, derive_seed, dropout_mask, epoch_order, BatchBuffers};
pub use dataset::{Dataset, DatasetTargets};
use resume::{
    backend_change, describe_resume, lowest_val_loss, resume_best, resume_from, RunIdentity,
};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::MAX_F32_WEIGHT;
use serde::{Deserialize, Serialize};

use crate::autodiff::Backend;
use crate::bptt::Recurrence;
use crate::checkpoint::{self, Checkpoint, DataFingerprint, EmbeddingOrigin};
use crate::model::{ModelConfig, Params, Tensor};
use crate::optim::OptimizerConfig;
use crate::ort_env::Device;
use crate::progress;
use crate::step::{NetSpec, TrainSession};

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Wall time of the training batches (validation excluded).
    pub seconds: f64,
    pub samples_per_second: f64,
    /// Batches whose update was dropped because their gradient was not finite (see
    /// [`crate::step::BatchStats::skipped`]); their loss and accuracy still count.
    #[serde(default)]
    pub skipped_steps: usize,
}

/// Training stops when this many batches in a row of one epoch have a non-finite
/// gradient (or all of a shorter epoch's do): the weights are then where most batches
/// overflow, and dropping updates cannot help. Counted per epoch, so a resumed run
/// stops where an uninterrupted one does.
pub const MAX_SKIPPED_IN_A_ROW: usize = 10;

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub optimizer: OptimizerConfig,
    pub device: Device,
    /// Intra-op threads (0: ONNX Runtime decides).
    pub threads: usize,
    pub recurrence: Recurrence,
    /// Keep a word model's embedding table as loaded (see [`NetSpec::frozen_embedding`]).
    pub freeze_embedding: bool,
    /// Where the embedding's starting vectors came from. Saved in checkpoints, so that
    /// a resumed run that names another kind of start is refused.
    pub embedding_origin: EmbeddingOrigin,
    /// Written after every epoch; with `resume`, read first if it exists.
    pub checkpoint: Option<PathBuf>,
    pub resume: bool,
    /// Return the weights of the epoch with the lowest validation loss, not the last
    /// epoch's; with `checkpoint`, they are also saved to [`best_checkpoint_path`].
    pub keep_best: bool,
    /// Stop once the validation loss has not improved for this many epochs.
    pub patience: Option<usize>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl TrainOptions {
    /// Where the steps run, as the training graph and checkpoints see it.
    fn backend(&self) -> Backend {
        Backend::of(self.device, self.threads)
    }
}

/// The result of [`train`].
#[derive(Clone, Debug)]
pub struct TrainRun {
    /// The last epoch's weights, or with [`TrainOptions::keep_best`] the best epoch's.
    pub params: Params,
    /// The last epoch's optimizer state.
    pub optimizer_state: Vec<Tensor>,
    /// Every epoch of the run, including those before a resume.
    pub history: Vec<EpochStats>,
    /// The epoch (1-based) whose weights `params` holds.
    pub kept_epoch: usize,
}

/// The checkpoint of the best epoch, beside the run's checkpoint `path`
/// (`checkpoint.ckpt` -> `checkpoint.best.ckpt`).
pub fn best_checkpoint_path(path: &Path) -> PathBuf {
    path.with_extension("best.ckpt")
}

/// The epoch with the lowest validation loss so far.
struct BestEpoch {
    epoch: usize,
    val_loss: f64,
    params: Params,
}

/// Loss and accuracy of `params` on `data`, in batches of `batch_size`.
fn evaluate(session: &mut TrainSession, data: &Dataset, batch_size: usize) -> Result<(f64, f64)> {
    let mut buffers = BatchBuffers::default();
    let (mut loss, mut correct) = (0.0f64, 0.0f64);
    let rows: Vec<usize> = (0..data.len()).collect();
    for chunk in rows.chunks(batch_size) {
        buffers.fill(data, chunk);
        let stats = session.evaluate(&buffers.batch(data, false))?;
        loss += stats.loss as f64 * stats.rows as f64;
        correct += stats.correct as f64;
    }
    let n = data.len().max(1) as f64;
    Ok((loss / n, correct / n))
}

/// Trains `model` from `initial` (or from the checkpoint, when resuming) for
/// `options.epochs` epochs in all.
pub fn train(
    model: &ModelConfig,
    initial: Params,
    train_data: &Dataset,
    validation: Option<&Dataset>,
    options: &TrainOptions,
) -> Result<TrainRun> {
    let validation = check_inputs(model, train_data, validation, options)?;
    let run = RunIdentity {
        model,
        data: DataFingerprint {
            train: train_data.fingerprint(),
            validation: validation.map(Dataset::fingerprint),
        },
    };
    if let Some(path) = &options.checkpoint {
        // Found before an epoch is spent, not when its checkpoint cannot be saved.
        for file in [path.clone(), best_checkpoint_path(path)] {
            ensure!(
                !file.is_dir(),
                "{} is a folder, where this run saves a checkpoint: move it away",
                file.display()
            );
        }
    }
    let resumed = match (&options.checkpoint, options.resume) {
        (Some(path), true) if path.exists() => Some(resume_from(path, &run, options)?),
        _ => None,
    };
    let mut best = match (&options.checkpoint, &resumed) {
        (Some(path), Some(ck)) if options.keep_best => Some(resume_best(path, ck, &run, options)?),
        _ => None,
    };
    // Where the run starts is progress; that there was nothing to resume is a note
    // that `--quiet` keeps, as it keeps the backend note below.
    if options.resume && (options.progress || resumed.is_none()) {
        eprintln!("{}", describe_resume(options, resumed.as_ref()));
    }
    // A best checkpoint beside a run that is not resumed is an earlier run's: it goes
    // once this run has saved its own, so a run that fails early loses nothing.
    let mut stale_best = resumed.is_none();
    // Once both checkpoints are accepted, and once for the two.
    let note = resumed
        .as_ref()
        .and_then(|ck| backend_change(ck.backend, options.backend()));
    if let (Some(note), Some(path)) = (note, &options.checkpoint) {
        eprintln!("note: {} {note}", path.display());
    }
    let (params, state, mut history, first_epoch) = match resumed {
        Some(ck) => (
            ck.params,
            Some(ck.optimizer_state),
            ck.history,
            ck.epochs_done,
        ),
        None => (initial, None, Vec::new(), 0),
    };
    let mut epochs = Epochs::new(model, options, train_data, validation, &params, state)?;
    for epoch in first_epoch..options.epochs {
        if let Some(stall) = stalled(&history, options.patience) {
            if options.progress {
                eprintln!("{stall}");
            }
            break;
        }
        let stats = epochs.run(epoch, &history)?;
        // The epoch's line comes once its checkpoint is saved: a Ctrl-C on seeing it
        // keeps the epoch.
        let line = describe(&stats, options.epochs);
        let say_epoch = || {
            if options.progress {
                eprintln!("{line}");
            }
        };
        let val_loss = stats.val_loss;
        history.push(stats);
        let improved =
            val_loss.filter(|&l| options.keep_best && best.as_ref().is_none_or(|b| l < b.val_loss));
        if options.checkpoint.is_none() && improved.is_none() {
            say_epoch();
            continue;
        }
        let ck = epochs.checkpoint(epoch + 1, &history, run.data)?;
        // With --keep-best, only an improving epoch's weights can be exported.
        let may_export = !options.keep_best || improved.is_some();
        if let Err(refused) = ensure_exportable(
            may_export.then_some(model),
            &ck.params,
            &ck.optimizer_state,
            epoch,
            options,
            &history,
        ) {
            say_epoch();
            return Err(refused);
        }
        if let Some(path) = &options.checkpoint {
            // The best first: a crash between the two saves leaves a best checkpoint one
            // epoch ahead, which the resumed run reproduces (see `resume_best`).
            if improved.is_some() {
                checkpoint::save(&best_checkpoint_path(path), &ck)?;
            }
            checkpoint::save(path, &ck)?;
            if stale_best && improved.is_none() {
                checkpoint::remove_stale(&best_checkpoint_path(path))?;
            }
            stale_best = false;
        }
        say_epoch();
        if let Some(val_loss) = improved {
            best = Some(BestEpoch {
                epoch: epoch + 1,
                val_loss,
                params: ck.params,
            });
        }
    }
    let (params, kept_epoch) = match best {
        Some(b) => {
            if options.progress {
                eprintln!(
                    "keeping the weights of epoch {} of {}, the lowest validation loss ({:.4})",
                    b.epoch,
                    history.len(),
                    b.val_loss
                );
            }
            (b.params, b.epoch)
        }
        None => (epochs.session.params()?, history.len()),
    };
    let optimizer_state = epochs.session.optimizer_state()?;
    let last = history.len().saturating_sub(1);
    ensure_exportable(
        Some(model),
        &params,
        &optimizer_state,
        last,
        options,
        &history,
    )?;
    Ok(TrainRun {
        params,
        optimizer_state,
        history,
        kept_epoch,
    })
}

/// Refuses weights or optimizer state that hold NaN or inf, and weights past the
/// model blob's [`MAX_F32_WEIGHT`] or, given the `model` of weights that may be
/// exported, the integer blob's formats: an update diverged even though the loss
/// before it was finite, and the run could not be written out as a model at its end.
/// Nothing is saved, so the last checkpoint on disk stays the last good one.
fn ensure_exportable(
    model: Option<&ModelConfig>,
    params: &Params,
    state: &[Tensor],
    epoch: usize,
    options: &TrainOptions,
    history: &[EpochStats],
) -> Result<()> {
    let weights = || params.named().into_iter().flat_map(|(_, t)| &t.data);
    let finite = weights()
        .chain(state.iter().flat_map(|t| &t.data))
        .all(|v| v.is_finite());
    let what = if !finite {
        "the weights or the optimizer's state hold NaN or infinite values".to_string()
    } else if weights().any(|v| v.abs() > MAX_F32_WEIGHT) {
        "the weights grew past ±1e6, more than a model blob holds,".to_string()
    } else if let Some(Err(e)) = model.map(|model| crate::quantize::check_fits(model, params)) {
        format!("the weights no longer fit the integer blob's format ({e:#})")
    } else {
        return Ok(());
    };
    // `history` already holds the epoch that diverged; the good one is before it.
    let good = &history[..history.len().min(epoch)];
    bail!(
        "{what} after epoch {}: {}",
        epoch + 1,
        diverged(epoch, None, options, good)
    );
}

/// Checks the data against the model and the options; returns the validation set,
/// or `None` when it is absent or empty (it then has no loss or accuracy to report).
fn check_inputs<'a>(
    model: &ModelConfig,
    train_data: &Dataset,
    validation: Option<&'a Dataset>,
    options: &TrainOptions,
) -> Result<Option<&'a Dataset>> {
    model.validate()?;
    ensure!(options.batch_size > 0, "batch size must be at least 1");
    ensure!(!train_data.is_empty(), "the training data is empty");
    check_data(model, train_data, "training")?;
    let validation = validation.filter(|v| !v.is_empty());
    if let Some(v) = validation {
        check_data(model, v, "validation")?;
        ensure!(
            v.steps() == train_data.steps(),
            "validation rows have {} steps, training rows {}",
            v.steps(),
            train_data.steps()
        );
    }
    ensure!(
        !(options.keep_best || options.patience.is_some()) || validation.is_some(),
        "keeping the best epoch or stopping early compares epochs by validation loss, and this run has no validation data (raise --validation-split above 0)"
    );
    ensure!(
        options.patience != Some(0),
        "patience must be at least 1 epoch"
    );
    Ok(validation)
}

/// The session and data that every epoch of a run goes through.
struct Epochs<'a> {
    model: &'a ModelConfig,
    options: &'a TrainOptions,
    train_data: &'a Dataset,
    validation: Option<&'a Dataset>,
    spec: NetSpec,
    session: TrainSession,
    buffers: BatchBuffers,
}

impl<'a> Epochs<'a> {
    fn new(
        model: &'a ModelConfig,
        options: &'a TrainOptions,
        train_data: &'a Dataset,
        validation: Option<&'a Dataset>,
        params: &Params,
        optimizer_state: Option<Vec<Tensor>>,
    ) -> Result<Self> {
        let spec = NetSpec {
            frozen_embedding: options.freeze_embedding,
            ..NetSpec::new(model, train_data.steps())
        };
        let session = TrainSession::new(
            spec,
            model.dropout > 0.0,
            &options.optimizer,
            params,
            optimizer_state.as_deref(),
            options.device,
            options.threads,
            options.recurrence,
        )?;
        Ok(Self {
            model,
            options,
            train_data,
            validation,
            spec,
            session,
            buffers: BatchBuffers::default(),
        })
    }

    /// Trains epoch `epoch` (0-based) over shuffled batches, then validates;
    /// `history` holds the epochs before it, for the message if the loss diverges.
    fn run(&mut self, epoch: usize, history: &[EpochStats]) -> Result<EpochStats> {
        let (options, data) = (self.options, self.train_data);
        let with_dropout = self.model.dropout > 0.0;
        let batches = data.len().div_ceil(options.batch_size);
        let prefix = format!("epoch {}/{}", epoch + 1, options.epochs);
        let bar = progress::bar(batches, prefix, options.progress);
        bar.set_message("batches");
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0.0f64, 0usize);
        let (mut skipped, mut skipped_in_a_row) = (0usize, 0usize);
        let order = epoch_order(data.len(), options.seed, epoch);
        self.session
            .set_lr_scale(options.optimizer.lr_scale(epoch))?;
        for (b, rows) in order.chunks(options.batch_size).enumerate() {
            self.buffers.fill(data, rows);
            if with_dropout {
                let len = self.spec.mask_shape(rows.len()).iter().product();
                let seed = derive_seed(&[options.seed, epoch as u64, b as u64, 1]);
                dropout_mask(&mut self.buffers.mask, len, self.model.dropout, seed);
            }
            let stats = self
                .session
                .step(&self.buffers.batch(data, with_dropout))
                .with_context(|| diverged(epoch, Some(b), options, history))?;
            loss_sum += stats.loss as f64 * stats.rows as f64;
            correct += stats.correct as f64;
            seen += stats.rows;
            if stats.skipped {
                skipped += 1;
                skipped_in_a_row += 1;
                ensure!(
                    skipped_in_a_row < MAX_SKIPPED_IN_A_ROW,
                    "the gradient was not finite (NaN, or past f32's range) in {skipped_in_a_row} \
                     batches in a row, whose updates were dropped: {}",
                    diverged(epoch, Some(b), options, history)
                );
            } else {
                skipped_in_a_row = 0;
            }
            bar.inc(1);
            if b % 16 == 0 || b + 1 == batches {
                let dropped = match skipped {
                    0 => String::new(),
                    n => format!(", {n} skipped"),
                };
                bar.set_message(format!(
                    "batches, loss {:.4} acc {:.4}{dropped}",
                    loss_sum / seen as f64,
                    correct / seen as f64
                ));
            }
        }
        // An epoch shorter than the limit stops too when it dropped every update.
        ensure!(
            skipped < batches,
            "the gradient was not finite (NaN, or past f32's range) in all {batches} batches \
             of the epoch, whose updates were dropped: {}",
            diverged(epoch, None, options, history)
        );
        let seconds = started.elapsed().as_secs_f64();
        let (val_loss, val_accuracy) = match self.validation {
            Some(v) => {
                let (l, a) = evaluate(&mut self.session, v, options.batch_size)?;
                ensure!(
                    l.is_finite(),
                    "the validation loss is not finite: {}",
                    diverged(epoch, None, options, history)
                );
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        bar.finish_and_clear();
        Ok(EpochStats {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct / seen as f64,
            val_loss,
            val_accuracy,
            seconds,
            samples_per_second: seen as f64 / seconds,
            skipped_steps: skipped,
        })
    }

    /// The run as it stands after `epochs_done` epochs, whose figures are `history`.
    fn checkpoint(
        &mut self,
        epochs_done: usize,
        history: &[EpochStats],
        data: DataFingerprint,
    ) -> Result<Checkpoint> {
        Ok(Checkpoint {
            data,
            model: self.model.clone(),
            params: self.session.params()?,
            optimizer: self.options.optimizer,
            optimizer_state: self.session.optimizer_state()?,
            epochs_done,
            embedding_origin: Some(self.options.embedding_origin.clone()),
            seed: self.options.seed,
            batch_size: self.options.batch_size,
            history: history.to_vec(),
            backend: Some(self.options.backend()),
        })
    }
}

/// One line per epoch, as the progress output prints it.
pub fn describe(s: &EpochStats, epochs: usize) -> String {
    let mut line = format!(
        "epoch {}/{epochs}: loss {:.4} acc {:.4}",
        s.epoch, s.train_loss, s.train_accuracy
    );
    if let (Some(l), Some(a)) = (s.val_loss, s.val_accuracy) {
        line.push_str(&format!(" | val loss {l:.4} acc {a:.4}"));
    }
    line.push_str(&format!(
        " | {:.1} s, {:.0} samples/s",
        s.seconds, s.samples_per_second
    ));
    match s.skipped_steps {
        0 => {}
        1 => line.push_str(" | 1 update dropped (gradient not finite)"),
        n => line.push_str(&format!(" | {n} updates dropped (gradient not finite)")),
    }
    line
}

/// Why training stopped on a non-finite loss or weights, where the last good state is,
/// and what to do. `batch` is 0-based; `None` means after the epoch's last batch.
fn diverged(
    epoch: usize,
    batch: Option<usize>,
    options: &TrainOptions,
    history: &[EpochStats],
) -> String {
    let kept = match (&options.checkpoint, history.last()) {
        (Some(path), Some(last)) => format!(
            "; the last good checkpoint, after epoch {}, is kept at {}",
            last.epoch,
            path.display()
        ),
        _ => "; no checkpoint was written yet".to_string(),
    };
    let at = match batch {
        Some(b) => format!("in epoch {}, batch {}", epoch + 1, b + 1),
        None => format!("after epoch {}", epoch + 1),
    };
    // Clipping bounds a step, but not a gradient that back-propagation through many
    // steps has already taken past f32's range.
    let fix = match options.optimizer.clip_norm {
        None => "Lower the learning rate (--lr) or clip the gradients (--clip-norm)",
        Some(_) => "Lower the learning rate (--lr), or train on shorter sequences (--maxlen)",
    };
    format!("training stopped {at}{kept}. {fix}, and train afresh (a resumed run keeps its first settings)")
}

/// Why training stops early, when the validation loss of `history` has not improved
/// for `patience` epochs.
fn stalled(history: &[EpochStats], patience: Option<usize>) -> Option<String> {
    let patience = patience?;
    // The first of equal losses counts: a tie is no improvement.
    let (best, loss) = lowest_val_loss(history)?;
    let last = history.last()?.epoch;
    let stalled = last - best;
    (stalled >= patience).then(|| {
        let epochs = if stalled == 1 { "epoch" } else { "epochs" };
        format!(
            "stopping after epoch {last}: the validation loss has not improved for {stalled} {epochs} since epoch {best} ({loss:.4})"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InputConfig;
    use crate::optim::Optimizer;
    use lstm_edge_runtime::format::Output;
    use lstm_edge_runtime::format::{Cell, Head};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const STEPS: usize = 6;

    fn model(cell: Cell) -> ModelConfig {
        ModelConfig {
            cell,
            input: InputConfig::Chars {
                table: b"abcd".to_vec(),
                lowercase: true,
                unk: true,
                pad: true,
            },
            hidden: 4,
            head: Head::Flatten {
                maxlen: STEPS as u32,
            },
            output: Output::Sigmoid,
            dropout: 0.25,
        }
    }

    /// Label 1 when the first char is `a` (id 0): learnable, not trivial.
    fn data(rows: usize, seed: u64) -> Dataset {
        data_of(rows, STEPS, seed)
    }

    fn data_of(rows: usize, steps: usize, seed: u64) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ids: Vec<u16> = (0..rows * steps).map(|_| rng.random_range(0..6)).collect();
        let labels = (0..rows)
            .map(|r| (ids[r * steps] == 0) as u8 as f32)
            .collect();
        Dataset::new(ids, steps, DatasetTargets::Binary(labels)).unwrap()
    }

    fn options(epochs: usize, checkpoint: Option<PathBuf>, resume: bool) -> TrainOptions {
        TrainOptions {
            epochs,
            batch_size: 8,
            seed: 11,
            optimizer: OptimizerConfig {
                rule: Optimizer::rmsprop(0.01),
                clip_norm: None,
                lr_decay: None,
            },
            device: Device::Cpu,
            threads: 1,
            recurrence: Recurrence::Scan,
            freeze_embedding: false,
            embedding_origin: EmbeddingOrigin::Random,
            checkpoint,
            resume,
            keep_best: false,
            patience: None,
            progress: false,
        }
    }

    fn bits(p: &Params) -> Vec<u32> {
        p.named()
            .iter()
            .flat_map(|(_, t)| t.data.iter().map(|v| v.to_bits()))
            .collect()
    }

    #[test]
    fn resumed_run_ends_with_bit_identical_weights() {
        // With a decaying learning rate too: the resumed epoch must take epoch 2's rate.
        for lr_decay in [None, Some(0.5)] {
            let cfg = model(Cell::Lstm);
            let (train_set, val) = (data(44, 1), data(16, 2));
            let dir = tempfile::tempdir().unwrap();
            let (straight, split) = (dir.path().join("a.ckpt"), dir.path().join("b.ckpt"));
            // Starts from the weights of `init_seed`, with `epochs` in all.
            let run = |init_seed, epochs, path: &PathBuf, resume| {
                let mut o = options(epochs, Some(path.clone()), resume);
                o.optimizer.lr_decay = lr_decay;
                let params = Params::init(&cfg, init_seed);
                train(&cfg, params, &train_set, Some(&val), &o).unwrap()
            };

            let full = run(3, 2, &straight, false);
            let first = run(3, 1, &split, true);
            assert_eq!(first.history.len(), 1);
            assert_ne!(bits(&first.params), bits(&full.params));
            // Different initial weights: resuming must take them from the checkpoint.
            let resumed = run(999, 2, &split, true);

            assert_eq!(bits(&resumed.params), bits(&full.params), "{lr_decay:?}");
            assert_eq!(resumed.optimizer_state, full.optimizer_state);
            assert_eq!(resumed.history.len(), 2);
            for (a, b) in resumed.history.iter().zip(&full.history) {
                assert_eq!((a.train_loss, a.val_loss), (b.train_loss, b.val_loss));
            }
        }
    }

    #[test]
    fn lr_decay_keeps_the_first_epoch_and_changes_the_next() {
        let cfg = model(Cell::Lstm);
        let train_set = data(44, 1);
        let run = |epochs, lr_decay| {
            let mut o = options(epochs, None, false);
            o.optimizer.lr_decay = lr_decay;
            bits(
                &train(&cfg, Params::init(&cfg, 3), &train_set, None, &o)
                    .unwrap()
                    .params,
            )
        };
        assert_eq!(run(1, Some(0.5)), run(1, None));
        assert_ne!(run(2, Some(0.5)), run(2, None));
        // A factor of 1 is a constant rate.
        assert_eq!(run(2, Some(1.0)), run(2, None));
    }

    /// Options of a run that overfits: a high learning rate on few, noisy rows.
    fn overfitting(epochs: usize, checkpoint: Option<PathBuf>, resume: bool) -> TrainOptions {
        let mut options = options(epochs, checkpoint, resume);
        options.optimizer.rule = Optimizer::rmsprop(OVERFIT_LR);
        options
    }

    const OVERFIT_LR: f32 = 0.05;

    /// 32 training rows, a third of their labels flipped, against clean validation rows.
    fn overfit(cfg: &ModelConfig, options: &TrainOptions) -> Result<TrainRun> {
        let mut noisy = data(32, 1);
        if let DatasetTargets::Binary(labels) = &mut noisy.targets {
            for label in labels.iter_mut().step_by(3) {
                *label = 1.0 - *label;
            }
        }
        train(
            cfg,
            Params::init(cfg, 3),
            &noisy,
            Some(&data(64, 2)),
            options,
        )
    }

    #[test]
    fn keep_best_returns_the_weights_of_the_lowest_validation_loss() {
        let cfg = model(Cell::Lstm);
        let dir = tempfile::tempdir().unwrap();
        let last = overfit(&cfg, &overfitting(10, None, false)).unwrap();
        let losses: Vec<f64> = last.history.iter().map(|e| e.val_loss.unwrap()).collect();
        let lowest = first_lowest(&losses);
        assert!(lowest + 1 < losses.len(), "no overfitting: {losses:?}");
        assert_eq!(last.kept_epoch, 10);

        let path = dir.path().join("run.ckpt");
        let kept = overfit(
            &cfg,
            &TrainOptions {
                keep_best: true,
                ..overfitting(10, Some(path.clone()), false)
            },
        )
        .unwrap();
        assert_eq!(kept.kept_epoch, lowest + 1, "{losses:?}");
        // The same epochs were trained; only the weights returned differ.
        let kept_losses: Vec<f64> = kept.history.iter().map(|e| e.val_loss.unwrap()).collect();
        assert_eq!(kept_losses, losses);
        let stopped_there = overfit(&cfg, &overfitting(lowest + 1, None, false)).unwrap();
        assert_eq!(bits(&kept.params), bits(&stopped_there.params));
        let saved = checkpoint::load(&best_checkpoint_path(&path)).unwrap();
        assert_eq!(saved.epochs_done, lowest + 1);
        assert_eq!(bits(&saved.params), bits(&stopped_there.params));
        // The run's own checkpoint still holds the last epoch, to resume from.
        assert_eq!(checkpoint::load(&path).unwrap().epochs_done, 10);
    }

    /// 0-based index of the first lowest value.
    fn first_lowest(losses: &[f64]) -> usize {
        (0..losses.len())
            .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
            .unwrap()
    }

    #[test]
    fn patience_stops_once_the_validation_loss_stalls() {
        let cfg = model(Cell::Lstm);
        let full = overfit(&cfg, &overfitting(10, None, false)).unwrap();
        let losses: Vec<f64> = full.history.iter().map(|e| e.val_loss.unwrap()).collect();
        // The first epoch that trails the best epoch before it by `patience`.
        let stop_after = |patience: usize| {
            (1..=losses.len())
                .find(|&e| e - (first_lowest(&losses[..e]) + 1) >= patience)
                .unwrap_or(losses.len())
        };
        for patience in [2, 3] {
            let stop = stop_after(patience);
            assert!(stop < 10, "patience {patience} never stops: {losses:?}");
            let run = overfit(
                &cfg,
                &TrainOptions {
                    patience: Some(patience),
                    keep_best: true,
                    ..overfitting(10, None, false)
                },
            )
            .unwrap();
            assert_eq!(run.history.len(), stop, "patience {patience}: {losses:?}");
            assert_eq!(run.kept_epoch, first_lowest(&losses[..stop]) + 1);
        }

        // Resuming a run that already stopped trains nothing more.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let patient = |resume| TrainOptions {
            patience: Some(2),
            ..overfitting(10, Some(path.clone()), resume)
        };
        let stopped = overfit(&cfg, &patient(false)).unwrap();
        let resumed = overfit(&cfg, &patient(true)).unwrap();
        assert_eq!(resumed.history, stopped.history);
        assert_eq!(bits(&resumed.params), bits(&stopped.params));

        let err = overfit(
            &cfg,
            &TrainOptions {
                patience: Some(0),
                ..overfitting(1, None, false)
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("at least 1 epoch"), "{err:#}");
    }

    #[test]
    fn a_folder_where_a_checkpoint_goes_is_refused_before_an_epoch_is_spent() {
        let cfg = model(Cell::Lstm);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        for folder in [path.clone(), dir.path().join("run.best.ckpt")] {
            std::fs::create_dir(&folder).unwrap();
            let err = overfit(&cfg, &overfitting(1, Some(path.clone()), false)).unwrap_err();
            assert_eq!(
                format!("{err:#}"),
                format!(
                    "{} is a folder, where this run saves a checkpoint: move it away",
                    folder.display()
                )
            );
            std::fs::remove_dir(&folder).unwrap();
        }
        std::fs::create_dir(&path).unwrap();
        let err = crate::checkpoint::load(&path).unwrap_err();
        assert!(
            format!("{err:#}").contains("is a folder, not a checkpoint"),
            "{err:#}"
        );
    }

    #[test]
    fn a_resumed_run_keeps_the_best_epoch_from_before_the_interruption() {
        let cfg = model(Cell::Lstm);
        let dir = tempfile::tempdir().unwrap();
        let keep = |epochs, path: &PathBuf, resume| TrainOptions {
            keep_best: true,
            ..overfitting(epochs, Some(path.clone()), resume)
        };
        let straight = overfit(&cfg, &keep(10, &dir.path().join("a.ckpt"), false)).unwrap();
        // Interrupted after the best epoch, so the later epochs alone would pick another.
        let split = dir.path().join("b.ckpt");
        overfit(&cfg, &keep(straight.kept_epoch, &split, true)).unwrap();
        let resumed = overfit(&cfg, &keep(10, &split, true)).unwrap();
        assert_eq!(resumed.kept_epoch, straight.kept_epoch);
        assert_eq!(bits(&resumed.params), bits(&straight.params));

        // A checkpoint trained without keeping the best cannot say which epoch was best.
        let plain = dir.path().join("c.ckpt");
        overfit(&cfg, &overfitting(2, Some(plain.clone()), false)).unwrap();
        let err = overfit(&cfg, &keep(10, &plain, true)).unwrap_err();
        assert!(
            format!("{err:#}").contains("c.best.ckpt is missing"),
            "{err:#}"
        );
        // Nor one whose later epochs were trained without it and beat the kept one.
        assert!(straight.kept_epoch > 1, "the best epoch is not a later one");
        let gap = dir.path().join("d.ckpt");
        overfit(&cfg, &keep(1, &gap, false)).unwrap();
        let without = overfitting(straight.kept_epoch, Some(gap.clone()), true);
        // Resuming without --keep-best is refused while the best is there ...
        let err = overfit(&cfg, &without).unwrap_err();
        assert!(
            format!("{err:#}").contains("give --keep-best to resume it"),
            "{err:#}"
        );
        // ... so that a run gets there only with its best moved away and back.
        let best = dir.path().join("d.best.ckpt");
        let aside = dir.path().join("aside");
        std::fs::rename(&best, &aside).unwrap();
        overfit(&cfg, &without).unwrap();
        std::fs::rename(&aside, &best).unwrap();
        let err = overfit(&cfg, &keep(10, &gap, true)).unwrap_err();
        assert!(
            format!("{err:#}").contains(&format!(
                "d.best.ckpt holds epoch 1, but epoch {} of the run",
                straight.kept_epoch
            )) && format!("{err:#}").contains("trained without --keep-best"),
            "{err:#}"
        );
        // Nor can a run without validation data.
        let err = train(
            &cfg,
            Params::init(&cfg, 3),
            &data(16, 1),
            None,
            &TrainOptions {
                keep_best: true,
                ..options(1, None, false)
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("no validation data"), "{err:#}");
    }

    #[test]
    fn loss_falls_and_accuracy_rises_on_a_learnable_task() {
        for cell in [Cell::Lstm, Cell::Gru] {
            let cfg = model(cell);
            let run = train(
                &cfg,
                Params::init(&cfg, 5),
                &data(256, 3),
                Some(&data(64, 4)),
                &options(8, None, false),
            )
            .unwrap();
            let (first, last) = (&run.history[0], run.history.last().unwrap());
            assert!(
                last.train_loss < 0.6 * first.train_loss,
                "{cell:?}: {first:?} -> {last:?}"
            );
            assert!(last.val_accuracy.unwrap() > 0.9, "{cell:?}: {last:?}");
        }
    }

    #[test]
    fn an_empty_validation_set_reports_no_validation_figures() {
        let cfg = model(Cell::Lstm);
        let run = train(
            &cfg,
            Params::init(&cfg, 5),
            &data(64, 3),
            Some(&data(0, 4)),
            &options(1, None, false),
        )
        .unwrap();
        let epoch = &run.history[0];
        assert_eq!((epoch.val_loss, epoch.val_accuracy), (None, None));
    }

    /// A word model over 10 words (ids 0..12 with PAD and UNK) and data whose label is 1
    /// when the first word is id 2 or 3.
    fn word_task() -> (ModelConfig, Dataset) {
        let words = 10u32;
        let offsets: Vec<u8> = (0..=words).flat_map(|i| i.to_le_bytes()).collect();
        let cfg = ModelConfig {
            input: InputConfig::Words {
                strings: b"abcdefghij".to_vec(),
                offsets,
                embed_dim: 3,
            },
            ..model(Cell::Lstm)
        };
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let ids: Vec<u16> = (0..256 * STEPS).map(|_| rng.random_range(0..12)).collect();
        let labels = (0..256)
            .map(|r| ((2..4).contains(&ids[r * STEPS])) as u8 as f32)
            .collect();
        let set = Dataset::new(ids, STEPS, DatasetTargets::Binary(labels)).unwrap();
        (cfg, set)
    }

    #[test]
    fn word_model_learns_through_the_row_sparse_embedding_update() {
        let (cfg, set) = word_task();
        let initial = Params::init(&cfg, 5);
        let run = train(&cfg, initial.clone(), &set, None, &options(8, None, false)).unwrap();
        let (first, last) = (&run.history[0], run.history.last().unwrap());
        assert!(
            last.train_loss < 0.6 * first.train_loss,
            "{first:?} -> {last:?}"
        );
        // Ids 0..12 all occur, so every embedding row was trained.
        let before = initial.embedding.as_ref().unwrap();
        let after = run.params.embedding.as_ref().unwrap();
        for row in 0..12 {
            let span = row * 3..row * 3 + 3;
            assert_ne!(
                before.data[span.clone()],
                after.data[span],
                "embedding row {row} never moved"
            );
        }
    }

    /// Keras' LSTM has one bias, which the cell reads here as `wb + rb`: training
    /// both would step that bias twice per update. A GRU reads its two apart.
    #[test]
    fn an_lstm_trains_one_bias_and_a_gru_two() {
        let set = data(16, 1);
        for cell in [Cell::Lstm, Cell::Gru] {
            let cfg = model(cell);
            let initial = Params::init(&cfg, 3);
            let run = train(&cfg, initial.clone(), &set, None, &options(1, None, false)).unwrap();
            assert_ne!(run.params.wb, initial.wb, "{cell:?}");
            assert_eq!(run.params.rb == initial.rb, cell == Cell::Lstm, "{cell:?}");
            // RMSprop keeps one mean square per trained tensor.
            let trained = initial.named().len() - usize::from(cell == Cell::Lstm);
            assert_eq!(run.optimizer_state.len(), trained, "{cell:?}");
        }
    }

    /// ONNX Runtime may hand each of several threads a slice of a product's
    /// columns, and sums a narrower slice in longer blocks; the recurrence's
    /// products with over 128 terms (hidden 128: `dgates · R` sums 512) are
    /// therefore summed block by block, as one thread sums them. 18 rows against
    /// 128 columns are split by columns. Hidden 200 also sums `h · Rᵀ` in blocks.
    #[test]
    fn weights_are_the_same_on_one_thread_and_several() {
        for (cell, hidden) in [(Cell::Lstm, 128), (Cell::Gru, 128), (Cell::Lstm, 200)] {
            let cfg = ModelConfig {
                hidden,
                head: Head::Last,
                ..model(cell)
            };
            let (set, val) = (data(18, 4), data(8, 5));
            let run = |threads| {
                let mut o = options(2, None, false);
                (o.batch_size, o.threads) = (18, threads);
                train(&cfg, Params::init(&cfg, 3), &set, Some(&val), &o).unwrap()
            };
            same_on_one_thread_and_several(&format!("{cell:?}({hidden})"), run);
        }
    }

    /// Requires `run` on 2 and 3 threads to end with one thread's weights and losses.
    fn same_on_one_thread_and_several(case: &str, run: impl Fn(usize) -> TrainRun) {
        let one = run(1);
        for threads in [2, 3] {
            let several = run(threads);
            let (a, b) = (bits(&several.params), bits(&one.params));
            let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
            let case = format!("{case}, {threads} threads");
            assert_eq!(differ, 0, "{case}: {differ} of {} weights differ", a.len());
            let losses = |r: &TrainRun| {
                let h = r.history.iter();
                h.map(|e| (e.train_loss, e.val_loss)).collect::<Vec<_>>()
            };
            assert_eq!(losses(&several), losses(&one), "{case}");
        }
    }

    #[test]
    fn a_long_flatten_head_is_the_same_on_one_thread_and_several() {
        // 600 steps x 40 units, in batches of 8: ONNX Runtime splits the head's
        // product between threads, and a last batch of 3 leaves one of two
        // threads a single row; a last batch of 1 is a single row on any number.
        // The 6-char table checks the lookup's gradient as well.
        let steps = 600;
        let cfg = ModelConfig {
            hidden: 40,
            head: Head::Flatten {
                maxlen: steps as u32,
            },
            ..model(Cell::Lstm)
        };
        let val = data_of(5, steps, 5);
        for rows in [19, 17] {
            let set = data_of(rows, steps, 4);
            let run = |threads| {
                let mut o = options(1, None, false);
                o.threads = threads;
                train(&cfg, Params::init(&cfg, 3), &set, Some(&val), &o).unwrap()
            };
            same_on_one_thread_and_several(&format!("{rows} rows"), run);
        }
    }

    #[test]
    fn a_frozen_embedding_keeps_its_values_while_the_rest_learns() {
        let (cfg, set) = word_task();
        let mut initial = Params::init(&cfg, 5);
        // Vectors far enough apart to tell words by, as pretrained ones would be.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for v in &mut initial.embedding.as_mut().unwrap().data {
            *v = rng.random_range(-1.0..1.0);
        }
        let frozen = TrainOptions {
            freeze_embedding: true,
            ..options(8, None, false)
        };
        let run = train(&cfg, initial.clone(), &set, None, &frozen).unwrap();
        assert_eq!(
            run.params.embedding, initial.embedding,
            "the frozen table changed"
        );
        assert_ne!(run.params.w, initial.w);
        assert_ne!(run.params.head_w, initial.head_w);
        let (first, last) = (&run.history[0], run.history.last().unwrap());
        assert!(
            last.train_loss < 0.8 * first.train_loss,
            "{first:?} -> {last:?}"
        );
        // RMSprop keeps one mean square per trained tensor: the table has none.
        let unfrozen = train(&cfg, initial, &set, None, &options(1, None, false)).unwrap();
        assert_eq!(
            run.optimizer_state.len() + 1,
            unfrozen.optimizer_state.len()
        );
    }

    #[test]
    fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
        let cfg = model(Cell::Gru);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let good = data(16, 1);
        train(
            &cfg,
            Params::init(&cfg, 3),
            &good,
            None,
            &options(1, Some(path.clone()), true),
        )
        .unwrap();

        // A NaN label (which `Dataset::new` would accept only through a bug
        // elsewhere) makes the loss NaN in epoch 2.
        let mut labels = vec![0.0f32; 16];
        labels[5] = f32::NAN;
        let poisoned = Dataset {
            ids: good.ids.clone(),
            steps: STEPS,
            targets: DatasetTargets::Binary(labels),
        };
        // Resuming needs the checkpoint's data: record the poisoned set as its own.
        let mut ck = checkpoint::load(&path).unwrap();
        ck.data.train = poisoned.fingerprint();
        checkpoint::save(&path, &ck).unwrap();
        let saved = std::fs::read(&path).unwrap();
        let err = train(
            &cfg,
            Params::init(&cfg, 3),
            &poisoned,
            None,
            &options(2, Some(path.clone()), true),
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("not finite"), "{message}");
        assert!(message.contains("after epoch 1, is kept"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), saved);
    }

    /// `set` with the labels of `rows` blown up to 1e30: the loss stays finite, but
    /// the gradient's squared norm passes f32's range.
    fn with_huge_labels(mut set: Dataset, rows: &[usize]) -> Dataset {
        if let DatasetTargets::Binary(labels) = &mut set.targets {
            for &row in rows {
                labels[row] = 1e30;
            }
        }
        set
    }

    #[test]
    fn a_resume_on_another_backend_is_noted_and_the_checkpoint_records_it() {
        assert_eq!(backend_change(None, Backend::CpuThreads), None);
        assert_eq!(backend_change(Some(Backend::Cuda), Backend::Cuda), None);
        let (one, threads) = (Backend::CpuOneThread, Backend::CpuThreads);
        assert_eq!(backend_change(Some(one), threads), None);
        assert_eq!(backend_change(Some(threads), one), None);
        let note = backend_change(Some(Backend::Cuda), threads).unwrap();
        assert!(
            note.starts_with("was trained on CUDA, this run trains on several CPU threads"),
            "{note}"
        );
        let cfg = model(Cell::Lstm);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let set = data(16, 1);
        train(
            &cfg,
            Params::init(&cfg, 3),
            &set,
            None,
            &options(1, Some(path.clone()), false),
        )
        .unwrap();
        assert_eq!(
            checkpoint::load(&path).unwrap().backend,
            Some(Backend::CpuOneThread)
        );
    }

    #[test]
    fn a_batch_whose_gradient_overflows_is_dropped_and_counted() {
        let cfg = model(Cell::Lstm);
        let set = with_huge_labels(data(32, 1), &[5]);
        let initial = Params::init(&cfg, 3);
        let run = train(&cfg, initial.clone(), &set, None, &options(2, None, false)).unwrap();
        // Row 5 lands in one batch of each epoch.
        let skipped: Vec<usize> = run.history.iter().map(|e| e.skipped_steps).collect();
        assert_eq!(skipped, [1, 1]);
        assert!(run.history.iter().all(|e| e.train_loss.is_finite()));
        assert!(run
            .params
            .named()
            .iter()
            .all(|(_, t)| t.data.iter().all(|v| v.is_finite())));
        assert_ne!(run.params, initial, "the other batches trained");
        assert!(
            describe(&run.history[0], 2).ends_with("| 1 update dropped (gradient not finite)"),
            "{}",
            describe(&run.history[0], 2)
        );
        let clean = train(&cfg, initial, &data(32, 1), None, &options(1, None, false)).unwrap();
        assert_eq!(clean.history[0].skipped_steps, 0);
        assert!(!describe(&clean.history[0], 1).contains("dropped"));
    }

    #[test]
    fn training_stops_when_every_gradient_overflows() {
        let cfg = model(Cell::Gru);
        let rows: Vec<usize> = (0..96).collect();
        let set = with_huge_labels(data(96, 1), &rows);
        let err = train(
            &cfg,
            Params::init(&cfg, 3),
            &set,
            None,
            &options(1, None, false),
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!(
                "not finite (NaN, or past f32's range) in {MAX_SKIPPED_IN_A_ROW} batches in a row"
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("in epoch 1, batch {MAX_SKIPPED_IN_A_ROW}")),
            "{message}"
        );
        assert!(message.contains("--clip-norm"), "{message}");
        // With clipping on, the advice is what clipping cannot do.
        let mut clipped = options(1, None, false);
        clipped.optimizer.clip_norm = Some(1.0);
        let advice = diverged(0, Some(9), &clipped, &[]);
        assert!(
            advice.contains(
                "Lower the learning rate (--lr), or train on shorter sequences (--maxlen)"
            ),
            "{advice}"
        );
    }

    #[test]
    fn an_epoch_shorter_than_the_limit_stops_when_it_drops_every_update() {
        let cfg = model(Cell::Lstm);
        let rows: Vec<usize> = (0..32).collect();
        let set = with_huge_labels(data(32, 1), &rows);
        let message = format!(
            "{:#}",
            train(
                &cfg,
                Params::init(&cfg, 3),
                &set,
                None,
                &options(2, None, false)
            )
            .unwrap_err()
        );
        assert!(
            message.contains("in all 4 batches of the epoch, whose updates were dropped")
                && message.contains("training stopped after epoch 1"),
            "{message}"
        );
    }

    #[test]
    fn diverged_weights_are_refused_with_the_last_good_epoch() {
        let cfg = model(Cell::Lstm);
        let mut params = Params::init(&cfg, 3);
        let path = PathBuf::from("run.ckpt");
        let history: Vec<EpochStats> = [1, 2]
            .map(|epoch| EpochStats {
                epoch,
                train_loss: 0.5,
                train_accuracy: 0.5,
                val_loss: None,
                val_accuracy: None,
                seconds: 1.0,
                samples_per_second: 1.0,
                skipped_steps: 0,
            })
            .to_vec();
        let run = options(2, Some(path), false);
        ensure_exportable(Some(&cfg), &params, &[], 1, &run, &history).unwrap();
        let state = [Tensor {
            dims: vec![1],
            data: vec![f32::INFINITY],
        }];
        let err = ensure_exportable(Some(&cfg), &params, &state, 1, &run, &history).unwrap_err();
        // Far inside f32 and the f32 blob, but past what `R`'s fixed-point scale holds.
        params.r.data[3] = 600.0;
        let too_wide = ensure_exportable(Some(&cfg), &params, &[], 1, &run, &history)
            .unwrap_err()
            .to_string();
        assert!(
            too_wide.starts_with(
                "the weights no longer fit the integer blob's format (model field `R weights (|R| must stay below 508)` is out of range) after epoch 2"
            ) && too_wide.contains("the last good checkpoint, after epoch 1, is kept at run.ckpt"),
            "{too_wide}"
        );
        // A --keep-best epoch that did not improve is never exported: it may not fit.
        ensure_exportable(None, &params, &[], 1, &run, &history).unwrap();
        params.r.data[3] = -2e6;
        let huge = ensure_exportable(Some(&cfg), &params, &[], 1, &run, &history)
            .unwrap_err()
            .to_string();
        assert!(
            huge.starts_with(
                "the weights grew past ±1e6, more than a model blob holds, after epoch 2"
            ) && huge.contains("the last good checkpoint, after epoch 1, is kept at run.ckpt"),
            "{huge}"
        );
        params.r.data[3] = f32::NAN;
        let nan = ensure_exportable(Some(&cfg), &params, &[], 1, &run, &history).unwrap_err();
        for message in [err.to_string(), nan.to_string()] {
            assert!(
                message.starts_with(
                    "the weights or the optimizer's state hold NaN or infinite values after epoch 2"
                )
                    && message
                        .contains("the last good checkpoint, after epoch 1, is kept at run.ckpt")
                    && message.contains("train afresh"),
                "{message}"
            );
        }
    }

    #[test]
    fn resume_refuses_other_data_and_fewer_epochs_with_the_fix() {
        let cfg = model(Cell::Gru);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let run = |epochs, train_data: &Dataset, validation: Option<&Dataset>| {
            train(
                &cfg,
                Params::init(&cfg, 3),
                train_data,
                validation,
                &options(epochs, Some(path.clone()), true),
            )
        };
        run(2, &data(16, 1), Some(&data(8, 2))).unwrap();
        let err = run(3, &data(16, 3), Some(&data(8, 2))).unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("was trained on other data: this run's training samples differ"),
            "{err:#}"
        );
        let err = run(3, &data(16, 1), Some(&data(8, 4))).unwrap_err();
        assert!(
            format!("{err:#}").contains("validation samples differ"),
            "{err:#}"
        );
        // Other text gives another char table (or vocabulary): the data are named then.
        let mut other_table = cfg.clone();
        other_table.input = InputConfig::Chars {
            table: b"abce".to_vec(),
            lowercase: true,
            unk: true,
            pad: true,
        };
        let resume_as = |cfg: &ModelConfig, train_data: &Dataset| {
            let options = options(3, Some(path.clone()), true);
            let params = Params::init(cfg, 3);
            train(cfg, params, train_data, Some(&data(8, 2)), &options).unwrap_err()
        };
        let err = format!("{:#}", resume_as(&other_table, &data(16, 3)));
        assert!(err.contains("training samples differ"), "{err}");
        let err = format!("{:#}", resume_as(&other_table, &data(16, 1)));
        assert!(
            err.contains("written for another model") && err.contains("the char table"),
            "{err}"
        );
        let mut wider = other_table.clone();
        wider.hidden = 5;
        let err = format!("{:#}", resume_as(&wider, &data(16, 3)));
        assert!(err.contains("hidden 4 vs 5"), "{err}");
        let err = run(1, &data(16, 1), Some(&data(8, 2))).unwrap_err();
        assert!(
            format!("{err:#}").contains("already holds 2 epochs, more than this run's --epochs 1"),
            "{err:#}"
        );
        assert_eq!(
            run(3, &data(16, 1), Some(&data(8, 2)))
                .unwrap()
                .history
                .len(),
            3
        );
    }

    #[test]
    fn mismatched_data_is_rejected_with_the_fix() {
        let cfg = model(Cell::Lstm);
        let short = Dataset::new(vec![0; 8], 4, DatasetTargets::Binary(vec![0.0, 1.0])).unwrap();
        let err = train(
            &cfg,
            Params::init(&cfg, 1),
            &short,
            None,
            &options(1, None, false),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("encode with maxlen 6"));
        let classes = Dataset::new(vec![0; 6], 6, DatasetTargets::Class(vec![1])).unwrap();
        assert!(train(
            &cfg,
            Params::init(&cfg, 1),
            &classes,
            None,
            &options(1, None, false)
        )
        .is_err());
    }

    #[test]
    fn shuffles_and_masks_depend_only_on_seed_epoch_and_batch() {
        assert_eq!(epoch_order(50, 7, 3), epoch_order(50, 7, 3));
        assert_ne!(epoch_order(50, 7, 3), epoch_order(50, 7, 4));
        let mut order = epoch_order(50, 7, 3);
        order.sort();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        dropout_mask(&mut a, 10_000, 0.2, 5);
        dropout_mask(&mut b, 10_000, 0.2, 5);
        assert_eq!(a, b);
        let dropped = a.iter().filter(|&&m| m == 0.0).count();
        assert!(
            (1800..2200).contains(&dropped),
            "{dropped} of 10000 dropped at rate 0.2"
        );
        assert!(a.iter().all(|&m| m == 0.0 || m == 1.25));
    }
}
