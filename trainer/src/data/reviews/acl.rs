//! The aclImdb folder layout: `neg/` and `pos/`, one review per `.txt` (or `.txt.gz`) file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::binary::refuse_binary;
use super::text::{is_gz, read_text};
use super::{EmptyTexts, LoadedReviews, Review};
use crate::shell;

/// Reads `<dir>/neg/*.txt` (label 0) then `<dir>/pos/*.txt` (label 1), gzipped
/// `*.txt.gz` as well, each folder in file-name order, so the result does not depend on the file system. Anything else in
/// those folders is skipped with a warning.
pub fn load_acl_dir(dir: &Path) -> Result<LoadedReviews> {
    let mut loaded = LoadedReviews::default();
    let mut skipped: Vec<PathBuf> = Vec::new();
    let mut apple_double: Vec<PathBuf> = Vec::new();
    let mut empty = EmptyTexts::default();
    for (folder, label) in [("neg", 0u8), ("pos", 1u8)] {
        let sub = dir.join(folder);
        if !sub.is_dir() {
            let hint = if dir.join("train").is_dir() || dir.join("test").is_dir() {
                format!(" (use {}/train or {}/test)", dir.display(), dir.display())
            } else {
                String::new()
            };
            bail!(
                "{} is not in the aclImdb layout: it has no {folder}/ folder{hint}; a review \
                 folder holds neg/ and pos/, with one review per .txt (or .txt.gz) file in each",
                dir.display()
            );
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&sub)
            .with_context(|| format!("cannot list {}", sub.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot list {}", sub.display()))?;
        files.sort();
        // macOS writes `._NAME` metadata (AppleDouble) beside each file it copies to a
        // disk not its own: not reviews, though often named `.txt`.
        let (apple, files): (Vec<PathBuf>, Vec<PathBuf>) =
            files.into_iter().partition(|p| is_apple_double(p));
        apple_double.extend(apple);
        let (reviews, others): (Vec<PathBuf>, Vec<PathBuf>) =
            files.into_iter().partition(|p| is_review_file(p));
        skipped.extend(others);
        // `gzip -k` leaves the review beside its gzipped copy: it would count twice.
        if let Some(plain) = reviews
            .iter()
            .find(|p| is_gz(p) && reviews.contains(&p.with_extension("")))
            .map(|p| p.with_extension(""))
        {
            bail!(
                "{} and {}.gz are one review's file twice (the second gzipped), or two \
                 reviews under one name: keep one of them",
                plain.display(),
                plain.display()
            );
        }
        for file in reviews {
            let text = read_text(&file)?;
            // As corpus files and `score` refuse it: binary data would train as tokens.
            refuse_binary(&text, &file.display().to_string(), Some(&file))?;
            empty.check(&text, || file.display().to_string());
            loaded.reviews.push(Review { text, label });
        }
    }
    if let Some(first) = skipped.first() {
        loaded.warnings.push(format!(
            "{}: skipped {} entr{} of its pos/ and neg/ folders that {} (e.g. {}); \
             a review must be a .txt (or .txt.gz) file directly in pos/ or neg/, its name not \
             starting with a dot",
            dir.display(),
            skipped.len(),
            if skipped.len() == 1 { "y" } else { "ies" },
            if skipped.len() == 1 {
                "is not a review file"
            } else {
                "are not review files"
            },
            first.display()
        ));
    }
    if let Some(first) = apple_double.first() {
        let many = apple_double.len() > 1;
        loaded.warnings.push(format!(
            "{}: skipped {} macOS metadata file{} in its pos/ and neg/ folders (e.g. {}): \
             a `._NAME` file is what macOS writes beside each file it copies to a disk not \
             its own, not a review; `find {} -name '._*' -delete` removes them",
            dir.display(),
            apple_double.len(),
            if many { "s" } else { "" },
            first.display(),
            shell::quoted(dir)
        ));
    }
    loaded.warnings.extend(empty.warning(loaded.reviews.len()));
    if loaded.reviews.is_empty() {
        bail!(
            "{}: its pos/ and neg/ folders hold no reviews: put one review per .txt (or \
             .txt.gz) file there, its name not starting with a dot",
            dir.display()
        );
    }
    Ok(loaded)
}

/// Whether `path` is a review in an aclImdb folder: a `.txt` file, or a gzipped one
/// (`.txt.gz`), not hidden (a name starting with a dot is an editor's or a system's).
fn is_review_file(path: &Path) -> bool {
    let name = path.file_name().map_or(&b""[..], |n| n.as_encoded_bytes());
    let name = name.to_ascii_lowercase();
    let plain = name.strip_suffix(b".gz").unwrap_or(&name);
    plain.ends_with(b".txt") && !name.starts_with(b".") && !path.is_dir()
}

/// Whether `path` is a macOS AppleDouble file (`._NAME`): metadata, not data.
fn is_apple_double(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"._"))
        && !path.is_dir()
}

#[cfg(test)]
mod tests {
    use crate::data::reviews::load_reviews;
    use crate::data::reviews::tests::texts;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[test]
    fn acl_folder_is_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for (folder, name, text) in [
            ("pos", "10_9.txt", "p10"),
            ("pos", "2_8.txt", "p2"),
            ("neg", "5_1.txt", "n5"),
            ("neg", "6_2.TXT", "n6"),
        ] {
            std::fs::create_dir_all(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join(name), text).unwrap();
        }
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(
            texts(&loaded.reviews),
            vec![("n5", 0), ("n6", 0), ("p10", 1), ("p2", 1)]
        );
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // A review file is read as other text files are: past a byte-order mark, and
        // UTF-16 refused by name rather than trained on as bytes.
        std::fs::write(dir.path().join("pos/3_7.txt"), b"\xef\xbb\xbfp3").unwrap();
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(loaded.reviews[4].text, b"p3");
        let utf16 = dir.path().join("neg/7_1.txt");
        std::fs::write(&utf16, b"\xff\xfeb\0a\0d\0").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{} is UTF-16 text", utf16.display())),
            "{err}"
        );
    }

    #[test]
    fn acl_folder_names_what_it_skips_and_empty_reviews() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("pos/1_9.txt", "good"),
            ("pos/notes.md", "not a review"),
            ("pos/more/2_9.txt", "nested"),
            ("neg/3_1.txt", " \n"),
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        // A gzipped review is read; a hidden one (an editor's, a system's) is skipped.
        let gzipped = dir.path().join("neg/4_2.txt.gz");
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"dull").unwrap();
        std::fs::write(&gzipped, gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("pos/.5_9.txt"), "hidden").unwrap();
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(
            texts(&loaded.reviews),
            vec![(" \n", 0), ("dull", 0), ("good", 1)]
        );
        let warnings = loaded.warnings.join("\n");
        assert!(warnings.contains("skipped 3 entries"), "{warnings}");
        assert!(
            warnings.contains("its name not starting with a dot"),
            "{warnings}"
        );
        assert!(warnings.contains("pos/.5_9.txt"), "{warnings}");
        assert!(
            warnings.contains("3_1.txt: empty review text (1 of the 3 reviews"),
            "{warnings}"
        );
        // `gzip -k` leaves both: one review, which must not count twice.
        std::fs::write(dir.path().join("neg/4_2.txt"), "dull").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with("4_2.txt.gz are one review's file twice (the second gzipped), or two reviews under one name: keep one of them"),
            "{err}"
        );
        for name in [
            "pos/1_9.txt",
            "neg/3_1.txt",
            "neg/4_2.txt.gz",
            "neg/4_2.txt",
        ] {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(err.contains("hold no reviews"), "{err}");
    }

    #[test]
    fn acl_folder_without_pos_neg_points_at_train_and_test() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("train/pos")).unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(err.contains("has no neg/ folder"), "{err}");
        assert!(err.contains("/train or"), "{err}");
    }

    #[test]
    fn acl_folder_skips_apple_double_files_and_refuses_binary_reviews() {
        let dir = tempfile::tempdir().unwrap();
        let meta = b"\0\x05\x16\x07\0\x02\0\0Mac OS X        ";
        for (name, text) in [
            ("pos/1_9.txt", &b"good"[..]),
            ("pos/._1_9.txt", meta),
            ("neg/2_1.txt", b"bad"),
            ("neg/._2_1.txt", meta),
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(texts(&loaded.reviews), [("bad", 0), ("good", 1)]);
        let warnings = loaded.warnings.join("\n");
        assert!(
            warnings.contains(&format!(
                "skipped 2 macOS metadata files in its pos/ and neg/ folders (e.g. {})",
                dir.path().join("neg/._2_1.txt").display()
            )),
            "{warnings}"
        );
        assert!(!warnings.contains("not a review file"), "{warnings}");
        let binary = dir.path().join("pos/3_9.txt");
        std::fs::write(&binary, b"GIF89a\x01\0\x01\0\x80").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{} holds a NUL byte (line 1, byte 8): it is binary data",
                binary.display()
            )),
            "{err}"
        );
    }
}
