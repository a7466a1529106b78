//! One review to score, as given: an argument, a text file or standard input.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::binary::{refuse_binary, utf16_fix};
use super::text::{read_text, UTF8_BOM};
use super::{dataset_kind, is_blank, DatasetKind};

/// What to do instead when a review file is a labelled dataset (`.jsonl`, `.csv`,
/// gzipped or not), whose lines are records rather than reviews.
fn dataset_fix(path: &Path) -> Option<String> {
    let kind = match dataset_kind(path).filter(|_| path.is_file())? {
        DatasetKind::Csv => ".csv",
        DatasetKind::Jsonl => ".jsonl",
    };
    let file = path.display();
    Some(format!(
        "{file} is review data ({kind} records with labels), not review text: score its \
         labelled reviews with `lstm-edge eval --model MODEL --test {file}`, or put the text \
         of the reviews in a plain text file (one per line with --lines)"
    ))
}

/// How messages name a review: `the review` given as an argument, else its file, else
/// standard input.
pub fn review_source(given: bool, file: Option<&Path>) -> String {
    match (given, file) {
        (true, _) => "the review".to_string(),
        (false, Some(path)) => path.display().to_string(),
        (false, None) => "standard input".to_string(),
    }
}

/// A review to score, as given: `text` as it is; else the file at `file`, or
/// standard input, without a leading UTF-8 byte-order mark or the line end that
/// closes its last line, which editors and `echo` add and a review does not mean.
/// A blank review is an error that names its source.
pub fn read_review(text: Option<Vec<u8>>, file: Option<&Path>) -> Result<Vec<u8>> {
    let given = text.is_some();
    let source = review_source(given, file);
    let read = match (text, file) {
        (Some(text), _) => text,
        // As training reads text files: a .gz unpacked, UTF-16 and archives refused.
        (None, Some(path)) => {
            if let Some(fix) = dataset_fix(path) {
                bail!(fix);
            }
            read_text(path)
                .with_context(|| format!("cannot read review file {}", path.display()))?
        }
        (None, None) => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the review from standard input")?;
            if let Some(fix) = utf16_fix(&buf, None) {
                bail!(fix);
            }
            buf
        }
    };
    // Before the byte-order mark goes, so that a NUL byte's position counts it.
    refuse_binary(&read, &source, file.filter(|_| !given))?;
    let bytes = if given {
        read
    } else {
        let bytes = read.strip_prefix(UTF8_BOM).unwrap_or(&read);
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes.strip_suffix(b"\r").unwrap_or(bytes).to_vec()
    };
    if is_blank(&bytes) {
        bail!("{source} is empty: give some text to score");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_to_score_loses_what_editors_add_and_blank_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("review.txt");
        std::fs::write(&file, b"\xef\xbb\xbfGreat film.\r\n").unwrap();
        assert_eq!(read_review(None, Some(&file)).unwrap(), b"Great film.");
        // An argument is the text as given.
        let given = b"Great film.\n".to_vec();
        assert_eq!(read_review(Some(given.clone()), None).unwrap(), given);
        std::fs::write(&file, b" \n\t\n").unwrap();
        let err = read_review(None, Some(&file)).unwrap_err().to_string();
        assert!(err.contains("review.txt is empty"), "{err}");
        let err = read_review(Some(b"  ".to_vec()), None).unwrap_err();
        assert!(err.to_string().contains("the review is empty"), "{err}");
    }

    #[test]
    fn a_review_file_that_is_binary_or_a_dataset_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("model.bin");
        std::fs::write(&binary, b"LSTE\x05\x00\x01").unwrap();
        let err = read_review(None, Some(&binary)).unwrap_err().to_string();
        assert!(
            err.contains("model.bin holds a NUL byte (line 1, byte 6): it is binary data"),
            "{err}"
        );
        for name in [
            "test.jsonl",
            "test.JSONL.gz",
            "reviews.csv",
            "reviews.csv.gz",
        ] {
            let data = dir.path().join(name);
            std::fs::write(&data, b"{\"label\": 1, \"text\": \"Great.\"}\n").unwrap();
            let err = read_review(None, Some(&data)).unwrap_err().to_string();
            assert!(
                err.contains("is review data") && err.contains("lstm-edge eval --model MODEL"),
                "{name}: {err}"
            );
        }
        // A dataset name that names no file is a missing file, not a dataset.
        let err = read_review(None, Some(&dir.path().join("gone.csv")))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("is review data"), "{err}");
        assert!(err.contains("gone.csv"), "{err}");
        // A review is text of any name otherwise.
        let txt = dir.path().join("review.jsonl.txt");
        std::fs::write(&txt, b"Great.").unwrap();
        assert_eq!(read_review(None, Some(&txt)).unwrap(), b"Great.");
    }
}
