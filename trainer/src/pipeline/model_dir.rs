//! The model directory: finding, locking and tidying its files, and writing the
//! ONNX and blob files into it.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::Head;

use crate::checkpoint;
use crate::export::{export_onnx, export_step_onnx};
use crate::files::{self, FolderLock};
use crate::model::{ModelConfig, Params};
use crate::quantize::{self, Calibration};
use crate::train;

use super::{
    FileStamp, ModelFile, ModelFiles, CARD_FILE, CHECKPOINT_FILE, CURVES_FILE, F32_BLOB_FILE,
    INT_BLOB_FILE, ONNX_FILE, QUANT_ERROR_FILE, STEP_ONNX_FILE,
};

const UNFIT_WEIGHTS: &str = "the weights do not fit the integer blob's format, which usually \
                             means training diverged: lower --lr or add --clip-norm, and train afresh";

/// The files of a model folder that `train` writes besides its checkpoints.
pub(super) const MODEL_FILES: &[&str] = &[
    INT_BLOB_FILE,
    F32_BLOB_FILE,
    ONNX_FILE,
    STEP_ONNX_FILE,
    CARD_FILE,
    CURVES_FILE,
    QUANT_ERROR_FILE,
];

/// The file a command-line path names: the path itself, or `file` inside it when it
/// is a model directory (`--model models/w` stands for `models/w/model.blob`).
pub fn in_model_dir(path: &Path, file: &str) -> PathBuf {
    if path.is_dir() {
        path.join(file)
    } else {
        path.to_path_buf()
    }
}

pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<FileStamp> {
    files::write_atomic(path, bytes)?;
    Ok(FileStamp::of(bytes))
}

/// Writes `model.onnx` (and `model-step.onnx` for last-state heads, removing a stale
/// one otherwise); records both in `files`.
pub fn write_onnx(
    cfg: &ModelConfig,
    params: &Params,
    dir: &Path,
    files: &mut ModelFiles,
) -> Result<()> {
    let onnx = write_file(&dir.join(ONNX_FILE), &export_onnx(cfg, params, &[])?)?;
    let path = dir.join(STEP_ONNX_FILE);
    let step = if cfg.head == Head::Last {
        Some(write_file(&path, &export_step_onnx(cfg, params, &[])?)?)
    } else {
        remove_if_present(&path)?;
        None
    };
    files.record(ModelFile::Onnx, Some(onnx));
    files.record(ModelFile::StepOnnx, step);
    Ok(())
}

/// Before a run: says when an earlier model or run in `dir` will be replaced (unless
/// a resumed run continues it), and refuses `--resume` where a model has no
/// checkpoint to continue. The earlier model's files stay until this run writes
/// its own (its best-epoch checkpoint goes when `train` saves its first checkpoint),
/// so a run that fails early leaves it whole.
pub(super) fn prepare_out_dir(dir: &Path, resume: bool) -> Result<()> {
    refuse_resume_without_checkpoint(dir, resume)?;
    let resumable = checkpoint::is_checkpoint(&dir.join(CHECKPOINT_FILE));
    let has_model = dir.join(CARD_FILE).is_file();
    if !resume && (has_model || resumable) {
        eprintln!(
            "note: {} holds an earlier model or run; this run replaces it (--resume continues \
             the earlier run instead)",
            dir.display()
        );
    }
    Ok(())
}

/// `--resume` into a folder whose model has no checkpoint would silently train afresh
/// and replace it.
pub(super) fn refuse_resume_without_checkpoint(dir: &Path, resume: bool) -> Result<()> {
    let has_model = dir.join(CARD_FILE).is_file();
    if resume && has_model && !checkpoint::is_checkpoint(&dir.join(CHECKPOINT_FILE)) {
        bail!(
            "{} holds a model but no checkpoint to resume ({CHECKPOINT_FILE}): drop --resume \
             to train afresh and replace that model, or give another --out",
            dir.display()
        );
    }
    Ok(())
}

/// Makes `dir` if needed and takes its lock ([`lock_model_dir`]) for a command that
/// `writes` those files there. A command that fails, or is interrupted (the CLI's
/// handler releases the lock), before it writes anything leaves no folder it made.
pub(super) fn make_and_lock_model_dir(dir: &Path, writes: &[&str]) -> Result<FolderLock> {
    let made = files::create_folder(dir)?;
    let mut lock = lock_model_dir(dir, writes).inspect_err(|_| {
        if made {
            let _ = std::fs::remove_dir(dir);
        }
    })?;
    lock.remove_folder_if_made(made);
    Ok(lock)
}

/// Takes `dir`'s [`FolderLock`], then removes the temporaries that killed writes
/// left there (no other command can be writing them now), and refuses a folder where
/// the command `writes` a file: before any work, and before one file of a pair is
/// written.
fn lock_model_dir(dir: &Path, writes: &[&str]) -> Result<FolderLock> {
    let lock = FolderLock::take(dir)?;
    let best = train::best_checkpoint_path(Path::new(CHECKPOINT_FILE));
    let best = best.to_string_lossy();
    let names: Vec<&str> = [CHECKPOINT_FILE, &best]
        .into_iter()
        .chain(MODEL_FILES.iter().copied())
        .collect();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if files::is_leftover_temporary(&entry.file_name().to_string_lossy(), &names) {
            remove_if_present(&entry.path())?;
        }
    }
    for name in writes {
        let path = dir.join(name);
        ensure!(
            !path.is_dir(),
            "{} is a folder, where lstm-edge writes the model's {name}: move it away",
            path.display()
        );
    }
    Ok(lock)
}

pub(super) fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove the stale {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes both blobs, calibrated on `sequences`; returns the sizes and the calibration.
pub fn write_blobs(
    cfg: &ModelConfig,
    params: &Params,
    sequences: &[Vec<u16>],
    dir: &Path,
) -> Result<(FileStamp, FileStamp, Calibration)> {
    write_quantized(calibrated_blobs(cfg, params, sequences)?, dir)
}

/// Both blobs in memory, calibrated on `sequences`.
pub(super) fn calibrated_blobs(
    cfg: &ModelConfig,
    params: &Params,
    sequences: &[Vec<u16>],
) -> Result<quantize::Quantized> {
    ensure!(
        sequences.iter().any(|ids| !ids.is_empty()),
        "no calibration steps: the {} calibration text{} all empty; give data with text (or \
         a larger --calibration, if later texts have some)",
        sequences.len(),
        if sequences.len() == 1 { " is" } else { "s are" }
    );
    quantize::quantize(cfg, params, sequences).map_err(|e| e.context(UNFIT_WEIGHTS))
}

pub(super) fn write_quantized(
    q: quantize::Quantized,
    dir: &Path,
) -> Result<(FileStamp, FileStamp, Calibration)> {
    let f32_stamp = write_file(&dir.join(F32_BLOB_FILE), &q.f32_blob)?;
    let int_stamp = write_file(&dir.join(INT_BLOB_FILE), &q.int_blob)?;
    Ok((int_stamp, f32_stamp, q.calibration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_is_refused_where_a_model_has_no_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        prepare_out_dir(dir.path(), true).expect("an empty folder: nothing to resume, train");
        std::fs::write(dir.path().join(CARD_FILE), "{}").unwrap();
        let err = prepare_out_dir(dir.path(), true).unwrap_err().to_string();
        assert!(
            err.contains("holds a model but no checkpoint to resume")
                && err.contains("drop --resume"),
            "{err}"
        );
        prepare_out_dir(dir.path(), false).expect("without --resume the model is replaced");
    }
}
