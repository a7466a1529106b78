//! Resuming a run: the checkpoint must be of the same model and data, and
//! the best epoch so far comes back with it.

use super::*;

/// What a checkpoint must match to be resumed: the model, and the data it trained on.
pub(super) struct RunIdentity<'a> {
    pub(super) model: &'a ModelConfig,
    pub(super) data: DataFingerprint,
}

/// Where a `resume` run starts, for the progress output.
pub(super) fn describe_resume(options: &TrainOptions, resumed: Option<&Checkpoint>) -> String {
    let checkpoint = options.checkpoint.as_deref();
    let path = checkpoint.map_or_else(
        || "no checkpoint path given".into(),
        |p| p.display().to_string(),
    );
    match resumed {
        None => {
            let missing = if checkpoint.is_some_and(Path::is_symlink) {
                "is a link to a file that does not exist"
            } else {
                "does not exist"
            };
            // A best checkpoint alone is an earlier run's, which this run replaces.
            let best = checkpoint
                .map(best_checkpoint_path)
                .filter(|best| best.exists())
                .map_or(String::new(), |best| {
                    format!("; {} there, an earlier run's, is replaced", best.display())
                });
            format!("note: nothing to resume ({path} {missing}): training from epoch 1{best}")
        }
        Some(ck) if ck.epochs_done >= options.epochs => format!(
            "{path} already holds {} of {} epochs: nothing left to train; writing and \
             evaluating the model again from it",
            ck.epochs_done, options.epochs
        ),
        Some(ck) => format!(
            "resuming from {path} after epoch {} of {}",
            ck.epochs_done, options.epochs
        ),
    }
}

/// The best epoch of a resumed run, from the best checkpoint beside `path`.
pub(super) fn resume_best(
    path: &Path,
    resumed: &Checkpoint,
    run: &RunIdentity<'_>,
    options: &TrainOptions,
) -> Result<BestEpoch> {
    let best_path = best_checkpoint_path(path);
    ensure!(
        best_path.exists(),
        "{} holds {} epochs trained without keeping the best ({} is missing), so the weights of its earlier epochs are gone; resume without keeping the best, or train afresh",
        path.display(),
        resumed.epochs_done,
        best_path.display()
    );
    let best = resume_from(&best_path, run, options)?;
    // Either history may be the longer one: the best is saved before the checkpoint.
    let longer = if best.history.len() > resumed.history.len() {
        &best.history
    } else {
        &resumed.history
    };
    let same_run = longer.starts_with(&best.history) && longer.starts_with(&resumed.history);
    let val_loss = best.history.last().and_then(|e| e.val_loss);
    let (Some(val_loss), true) = (val_loss, same_run) else {
        bail!(
            "{} does not belong to the run in {} (their epoch histories differ); delete both to train afresh",
            best_path.display(),
            path.display()
        )
    };
    // Epochs trained without keeping the best may have beaten it unseen.
    if let Some((epoch, loss)) = lowest_val_loss(longer).filter(|&(e, _)| e != best.epochs_done) {
        bail!(
            "{} holds epoch {}, but epoch {epoch} of the run in {} has a lower validation loss \
             ({loss:.4}): it was trained without --keep-best, so its weights are gone; delete \
             {} and resume without --keep-best, or train afresh",
            best_path.display(),
            best.epochs_done,
            path.display(),
            best_path.display()
        );
    }
    Ok(BestEpoch {
        epoch: best.epochs_done,
        val_loss,
        params: best.params,
    })
}

/// Refuses to resume without `--keep-best` a run that kept its best epoch beside
/// `path`: its epochs would go on without the best, which cannot be taken up again.
/// Where `--keep-best` also set validation apart (`same_data` false: no --test), the
/// data differ without it, so giving the best up is no way out.
fn refuse_dropping_the_best(path: &Path, same_data: bool, fresh: &str) -> Result<()> {
    let best = best_checkpoint_path(path);
    if !best.exists() {
        return Ok(());
    }
    let (best, path) = (best.display(), path.display());
    if same_data {
        bail!(
            "{best} holds the best epoch of the run in {path}, which kept its best epoch: give \
             --keep-best to resume it; to go on without it (the model is then the last \
             epoch's, and --keep-best cannot be taken up again), delete {best} first"
        )
    }
    bail!(
        "{best} holds the best epoch of the run in {path}, which kept its best epoch and set \
         validation reviews apart for it: give --keep-best (and the first run's other \
         options) to resume it, {fresh}"
    )
}

/// The epoch with the lowest validation loss (the first of equal ones) and that loss.
pub(super) fn lowest_val_loss(history: &[EpochStats]) -> Option<(usize, f64)> {
    history
        .iter()
        .filter_map(|e| e.val_loss.map(|l| (e.epoch, l)))
        .reduce(|best, e| if e.1 < best.1 { e } else { best })
}

/// Loads a checkpoint and checks it belongs to this run: its model, data and settings.
pub(super) fn resume_from(
    path: &Path,
    run: &RunIdentity<'_>,
    options: &TrainOptions,
) -> Result<Checkpoint> {
    let (ck, format) = checkpoint::load_with_format(path)?;
    let what = path.display();
    let fresh = "or train afresh (without --resume)";
    ensure!(
        !checkpoint::trains_lstm_biases_apart(format, &ck),
        "{what} was written by an earlier lstm-edge, which trained the LSTM's input and \
         recurrent biases apart (this one trains their sum, Keras' one bias): its optimizer \
         state does not fit this build's training. Resume it with the build that wrote it, \
         {fresh}; `lstm-edge export` and `quantize` still read it"
    );
    // Other data also gives a word model another vocabulary: say the data differ then.
    ensure!(
        &ck.model == run.model || (ck.data != run.data && ck.model.differs_only_in_tokens(run.model)),
        "{what} was written for another model (checkpoint vs this run: {}); resume with the checkpoint's settings, {fresh}",
        ck.model.differences(run.model).join(", ")
    );
    if !options.keep_best {
        refuse_dropping_the_best(path, ck.data == run.data, fresh)?;
    }
    ensure!(
        ck.data == run.data,
        "{what} was trained on other data: this run's {} differ from the checkpoint's. Resume \
         with the first run's data and data options (--train/--corpus, --limit, --seed, \
         --vocab-size, --maxlen, --truncate, --window-step, --validation-split, \
         --keep-best/--patience, which set validation apart), {fresh}",
        if ck.data.train == run.data.train {
            "validation samples"
        } else {
            "training samples"
        }
    );
    ensure!(
        ck.optimizer == options.optimizer,
        "{what} was written with optimizer {}, this run uses {}; resume with the first run's \
         --optimizer, --lr, --clip-norm and --lr-decay, {fresh}",
        ck.optimizer,
        options.optimizer
    );
    // A checkpoint of format 3 did not record the start. Its vectors are in the
    // checkpoint, so a file named by another path is only noted: it is not read.
    match (&ck.embedding_origin, &options.embedding_origin) {
        (None, _) => {}
        (Some(EmbeddingOrigin::Vectors(first)), EmbeddingOrigin::Vectors(now)) => {
            if first != now && options.progress {
                eprintln!(
                    "note: {what} started its embedding from {first}; {now} is not read (the \
                     checkpoint holds the embedding)"
                );
            }
        }
        (Some(first), now) => ensure!(
            first == now,
            "{what} started its embedding from {first}, this run from {now}; resume with the \
             first run's --word-vectors or --word2vec, {fresh}"
        ),
    }
    ensure!(
        ck.seed == options.seed && ck.batch_size == options.batch_size,
        "{what} was written with seed {} and batch size {}, this run uses seed {} and batch \
         size {}; resume with the first run's --seed and --batch, {fresh}",
        ck.seed,
        ck.batch_size,
        options.seed,
        options.batch_size
    );
    ensure!(
        ck.epochs_done <= options.epochs,
        "{what} already holds {} epochs, more than this run's --epochs {}: give --epochs {} or \
         more to resume it, {fresh}",
        ck.epochs_done,
        options.epochs,
        ck.epochs_done
    );
    Ok(ck)
}

/// Why a resumed run on `now` may not end bit for bit as an uninterrupted one on
/// `first`: ONNX Runtime's kernels can round otherwise there. CUDA sums repeated ids
/// in another order (see [`Backend::row_sum`]). One CPU thread and several add them
/// in the same order, sum the recurrence's products alike
/// ([`Backend::sums_products_in_blocks`]) and each row of a dense layer alike
/// ([`Backend::sums_rows_alike`]), so a change of threads needs no note.
pub(super) fn backend_change(first: Option<Backend>, now: Backend) -> Option<String> {
    let on_cuda = |backend| backend == Backend::Cuda;
    let first = first.filter(|&first| on_cuda(first) != on_cuda(now))?;
    Some(format!(
        "was trained on {}, this run trains on {}: ONNX Runtime's kernels can round \
         otherwise there, so the weights can differ in their last bits from a run never \
         interrupted. Resume on {} to continue it bit for bit",
        first.describe(),
        now.describe(),
        first.describe()
    ))
}
