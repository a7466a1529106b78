//! The encoded training and validation sets as NumPy `.npy` arrays (`--write-arrays`),
//! and removing those an earlier run left behind.

use std::path::Path;

use anyhow::{Context, Result};

use crate::train::Dataset;

use super::model_dir::{remove_if_present, write_file};
use super::prepare::Prepared;

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
