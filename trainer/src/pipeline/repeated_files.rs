//! Whether paths name the same file, and warnings of corpus files that repeat an earlier
//! one (the same file, or a copy).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
