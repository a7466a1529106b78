//! The commands that work from a training checkpoint: `export` (ONNX) and `quantize`
//! (blobs), each checked against the card of the folder it writes into.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use lstm_edge_runtime::format::{Head, Output};

use crate::checkpoint::{self, Checkpoint};
use crate::quantize::{self, Calibration};
use crate::train::best_checkpoint_path;

use super::model_dir::{in_model_dir, make_and_lock_model_dir, write_blobs, write_onnx};
use super::same_model::Shape;
use super::{
    prepare, EvalData, ModelFile, TrainJob, TrainedCard, CARD_FILE, CHECKPOINT_FILE, F32_BLOB_FILE,
    INT_BLOB_FILE, ONNX_FILE, STEP_ONNX_FILE,
};

/// The checkpoint a command-line path names: the path itself, or in a model directory
/// the checkpoint of the weights its blobs hold (`checkpoint.best.ckpt` when the run
/// kept its best epoch, else `checkpoint.ckpt`).
pub fn model_checkpoint(path: &Path) -> PathBuf {
    let last = in_model_dir(path, CHECKPOINT_FILE);
    let kept_best =
        path.is_dir() && TrainedCard::read(path).is_ok_and(|card| card.job.kept_epoch.is_some());
    if kept_best {
        best_checkpoint_path(&last)
    } else {
        last
    }
}

/// Reads a training checkpoint, naming the file in errors.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    checkpoint::load(path)
}

/// `export`: ONNX from a checkpoint into `out_dir`; returns the files written.
pub fn export_checkpoint(checkpoint: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let ck = load_model_checkpoint(checkpoint)?;
    let card = card_of_checkpoint_model(out_dir, &ck, checkpoint)?;
    let _lock = make_and_lock_model_dir(out_dir, &[ONNX_FILE, STEP_ONNX_FILE, CARD_FILE])?;
    let mut files = card.as_ref().map(|c| c.files.clone()).unwrap_or_default();
    let stale_step = out_dir.join(STEP_ONNX_FILE);
    if ck.model.head != Head::Last && stale_step.is_file() {
        eprintln!(
            "note: removing {}, an earlier export's: this model's head streams no steps",
            stale_step.display()
        );
    }
    write_onnx(&ck.model, &ck.params, out_dir, &mut files)?;
    if let Some(mut card) = card.filter(|card| card.files != files) {
        card.files = files;
        card.write(out_dir)?;
    }
    let mut written = vec![out_dir.join(ONNX_FILE)];
    if ck.model.head == Head::Last {
        written.push(out_dir.join(STEP_ONNX_FILE));
    }
    Ok(written)
}

/// The checkpoint `export` or `quantize` reads; a model folder without one (the shipped
/// ones carry none) says how to get one.
fn load_model_checkpoint(path: &Path) -> Result<Checkpoint> {
    let dir = path.parent().filter(|dir| dir.join(CARD_FILE).is_file());
    let checkpoint_beside = dir.is_some_and(|dir| dir.join(CHECKPOINT_FILE).is_file());
    if !path.exists() && checkpoint_beside {
        // The card names the best epoch's checkpoint, which a later run into the
        // folder replaces: the checkpoint there may be another run's.
        let kept = dir
            .and_then(|dir| TrainedCard::read(dir).ok())
            .and_then(|card| card.job.kept_epoch)
            .filter(|_| best_checkpoint_path(&path.with_file_name(CHECKPOINT_FILE)) == path);
        match kept {
            Some(epoch) => bail!(
                "{} does not exist: the card beside it says its run kept epoch {epoch}, the \
                 best one, whose checkpoint a later run into the folder removes; {CHECKPOINT_FILE} \
                 there holds another epoch's weights, maybe another run's: pass that file to \
                 read those, or train the model again",
                path.display()
            ),
            None => bail!(
                "{} does not exist; its folder holds {CHECKPOINT_FILE}: pass the folder, or that file",
                path.display()
            ),
        }
    }
    if let (false, Some(dir)) = (path.exists(), dir) {
        let command = TrainedCard::read(dir).map(|card| card.command);
        bail!(
            "{} has no {}: shipped model folders carry no checkpoint; retrain the model with \
             the `command` in its card.json{} to get one",
            dir.display(),
            path.file_name().unwrap_or_default().to_string_lossy(),
            command.map_or(String::new(), |c| format!(" ({c})"))
        );
    }
    ensure!(
        path.exists(),
        "{} does not exist: pass a checkpoint file, or the model folder a run trained into \
         (it holds {CHECKPOINT_FILE})",
        path.display()
    );
    load_checkpoint(path)
}

/// The card of `dir` when there is one, refused when it describes another model than
/// the checkpoint's: `export` and `quantize` must not leave two models in one folder.
fn card_of_checkpoint_model(
    dir: &Path,
    ck: &Checkpoint,
    checkpoint: &Path,
) -> Result<Option<TrainedCard>> {
    if !dir.join(CARD_FILE).is_file() {
        return Ok(None);
    }
    let card = TrainedCard::read(dir)?;
    let (ours, theirs) = (Shape::of_config(&ck.model), Shape::of_card(&card.card));
    ensure!(
        ours == theirs,
        "{} describes model `{}`, not the one in {} (checkpoint vs card: {}): give another \
         --out, or remove that card.json to replace its model",
        dir.join(CARD_FILE).display(),
        card.card.name,
        checkpoint.display(),
        ours.differences(&theirs)
    );
    // The card describes the weights after one epoch of one run: its kept epoch, or
    // its last. A checkpoint of another epoch or run would leave the card wrong.
    let model_epoch = card.job.kept_epoch.unwrap_or(card.history.len());
    let same_figures = |a: &crate::train::EpochStats, b: &crate::train::EpochStats| {
        (
            a.epoch,
            a.train_loss,
            a.train_accuracy,
            a.val_loss,
            a.val_accuracy,
        ) == (
            b.epoch,
            b.train_loss,
            b.train_accuracy,
            b.val_loss,
            b.val_accuracy,
        )
    };
    let shared_epochs_agree = card
        .history
        .iter()
        .zip(&ck.history)
        .all(|(a, b)| same_figures(a, b));
    let same_run = shared_epochs_agree && card.history.len() >= ck.history.len();
    ensure!(
        same_run && ck.epochs_done == model_epoch,
        "{} holds the weights after epoch {} of {}, but {} describes {}: give another --out, or \
         remove that card.json to replace its model",
        checkpoint.display(),
        ck.epochs_done,
        match (same_run, shared_epochs_agree) {
            (true, _) => "the card's run",
            (false, true) => {
                "a run that agrees with the card's epochs and goes past them (resumed with \
                 more --epochs, or a longer run with the same seed and data)"
            }
            (false, false) => "another run (its per-epoch losses differ)",
        },
        dir.join(CARD_FILE).display(),
        match card.job.kept_epoch {
            Some(kept) => format!("epoch {kept}'s, the one its run kept (lowest validation loss)"),
            None => format!("those after epoch {model_epoch}"),
        }
    );
    Ok(Some(card))
}

/// The card of a checkpoint's model, beside the checkpoint or in `out_dir`: how its
/// run cut and counted its calibration texts. Says so when there is none.
pub(super) fn calibration_card(checkpoint: &Path, out_dir: &Path) -> Option<TrainedCard> {
    let beside = checkpoint.parent().unwrap_or(Path::new("."));
    for dir in [beside, out_dir] {
        if !dir.join(CARD_FILE).is_file() {
            continue;
        }
        match TrainedCard::read(dir) {
            Ok(card) if card.card.hyperparameters.is_some() => return Some(card),
            Ok(_) => {}
            Err(e) => eprintln!("warning: {e:#}"),
        }
    }
    eprintln!(
        "note: no training card beside {} or in {}: calibrating on texts as the model's head \
         reads them (reviews cut to a flatten head's length; for a generator, the G preset's \
         40-char windows every 3), not necessarily as training did",
        checkpoint.display(),
        out_dir.display()
    );
    None
}

/// `quantize`: blobs from a checkpoint, calibrated on the first `count` texts of `texts`
/// (reviews or corpus windows, tokenized with the model's own tokenizer); by default as
/// many as its training run took (256 without its card).
pub fn quantize_checkpoint(
    checkpoint: &Path,
    data: &EvalData,
    count: Option<usize>,
    out_dir: &Path,
) -> Result<Calibration> {
    let ck = load_model_checkpoint(checkpoint)?;
    let card = card_of_checkpoint_model(out_dir, &ck, checkpoint)?;
    let spec = quantize::model_spec(&ck.model, &ck.params)?;
    let f32_blob = spec.f32_blob()?;
    let sentiment = ck.model.output == Output::Sigmoid;
    let trained = calibration_card(checkpoint, out_dir);
    let hp = trained
        .as_ref()
        .and_then(|t| t.card.hyperparameters.clone());
    let asked = count;
    let count = count
        .or_else(|| Some(trained?.calibration?.sequences))
        .unwrap_or(TrainJob::DEFAULT_CALIBRATION_SEQUENCES);
    let sequences = match (&data.reviews, data.corpus.is_empty(), sentiment) {
        (Some(path), true, true) => {
            prepare::calibration_reviews(path, &f32_blob, ck.seed, count, hp.as_ref())?
        }
        (None, false, false) => {
            prepare::calibration_windows(&data.corpus, &f32_blob, count, hp.as_ref())?
        }
        (_, _, true) => bail!(
            "{} holds a sentiment model: calibrate it with --train PATH (labelled \
             reviews){}",
            checkpoint.display(),
            if data.corpus.is_empty() {
                ""
            } else {
                ", not --corpus"
            }
        ),
        (_, _, false) => bail!(
            "{} holds a generator model: calibrate it with --corpus FILE...{}",
            checkpoint.display(),
            if data.reviews.is_none() {
                ""
            } else {
                ", not --train"
            }
        ),
    };
    if let Some(asked) = asked.filter(|&n| n > sequences.len()) {
        eprintln!(
            "note: --calibration {asked}, but the data gives {} {}: all of them calibrate",
            sequences.len(),
            if sentiment { "reviews" } else { "windows" }
        );
    }
    let _lock = make_and_lock_model_dir(out_dir, &[INT_BLOB_FILE, F32_BLOB_FILE, CARD_FILE])?;
    let read = |name: &str| std::fs::read(out_dir.join(name)).ok();
    let before = (read(INT_BLOB_FILE), read(F32_BLOB_FILE));
    let (int_blob, f32_blob, calibration) =
        write_blobs(&ck.model, &ck.params, &sequences, out_dir)?;
    // In a model directory, the card follows the new blobs.
    if let Some(mut card) = card {
        // Its figures hold for a blob that is the one it records (a card of an earlier
        // build records no CRC: then the file the folder held decides).
        let changed: Vec<&str> = [
            (ModelFile::IntBlob, &int_blob, before.0),
            (ModelFile::F32Blob, &f32_blob, before.1),
        ]
        .into_iter()
        .filter(|(file, stamp, old)| match card.files.recorded(*file) {
            (size, Some(crc32)) => size != Some(stamp.bytes) || crc32 != stamp.crc32,
            (_, None) => *old != read(file.file_name()),
        })
        .map(|(file, _, _)| file.file_name())
        .collect();
        card.files.record(ModelFile::IntBlob, Some(int_blob));
        card.files.record(ModelFile::F32Blob, Some(f32_blob));
        card.calibration = Some(calibration.clone());
        if !changed.is_empty() {
            clear_blob_figures(&mut card, &changed);
            eprintln!(
                "note: {} changed, so {}'s card.json no longer holds its test figures (and \
                 quant-error.png shows the old error): run `lstm-edge eval --model {}` to \
                 measure them",
                changed.join(" and "),
                out_dir.display(),
                out_dir.display()
            );
        }
        card.write(out_dir)?;
    }
    Ok(calibration)
}

/// Drops the card's evaluation and the metrics of the `changed` blobs (`*_int` or
/// `*_f32`, and the agreement between the two), which no longer describe them.
fn clear_blob_figures(card: &mut TrainedCard, changed: &[&str]) {
    let int = changed.contains(&INT_BLOB_FILE);
    let f32 = changed.contains(&F32_BLOB_FILE);
    card.card.metrics.retain(|key, _| {
        let of_int = key.ends_with("_int") || key.ends_with("_int_vs_f32");
        !(of_int && int || key.ends_with("_f32") && f32)
    });
    card.evaluation = None;
}

#[cfg(test)]
mod tests {
    use super::super::{run, tests::generator_job};
    use super::*;

    #[test]
    fn export_refuses_a_checkpoint_of_another_epoch_into_a_model_folder() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let (two, one) = (dir.path().join("two"), dir.path().join("one"));
        run(&generator_job(&two, 2))?;
        run(&generator_job(&one, 1))?;
        // The folder's own checkpoint is the card's model.
        export_checkpoint(&two.join(CHECKPOINT_FILE), &two)?;
        let err = format!(
            "{:#}",
            export_checkpoint(&one.join(CHECKPOINT_FILE), &two).unwrap_err()
        );
        assert!(
            err.contains("holds the weights after epoch 1 of the card's run")
                && err.contains("describes those after epoch 2"),
            "{err}"
        );
        let three = dir.path().join("three");
        run(&generator_job(&three, 3))?;
        let err = format!(
            "{:#}",
            export_checkpoint(&three.join(CHECKPOINT_FILE), &two).unwrap_err()
        );
        assert!(
            err.contains("after epoch 3 of a run that agrees with the card's epochs and goes past"),
            "{err}"
        );
        let mut other_seed = generator_job(&one, 2);
        other_seed.hyper.seed = 7;
        run(&other_seed)?;
        let err = format!(
            "{:#}",
            export_checkpoint(&one.join(CHECKPOINT_FILE), &two).unwrap_err()
        );
        assert!(
            err.contains("of another run (its per-epoch losses differ)"),
            "{err}"
        );
        Ok(())
    }
}
