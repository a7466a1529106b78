//! Labelled reviews (IMDB and the like) from an aclImdb folder, JSON Lines (optionally
//! gzipped) or CSV.

mod acl;
mod binary;
mod csv;
mod jsonl;
mod score;
mod text;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{bail, ensure, Result};
use flate2::bufread::MultiGzDecoder;

pub use self::csv::read_csv;
pub use acl::load_acl_dir;
pub(crate) use binary::refuse_binary;
pub use binary::utf16_fix;
pub use jsonl::read_jsonl;
pub use score::{read_review, review_source};
pub use text::read_text;
use text::{archive_fix, TAR_HEADER};
pub(crate) use text::{open_text, read_error};

/// One review: its text (bytes, as stored) and its label (1 positive, 0 negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub text: Vec<u8>,
    pub label: u8,
}

/// The reviews of one source, and what its reader let through but the user should
/// hear about (empty texts, skipped files, rows that look merged).
#[derive(Debug, Clone, Default)]
pub struct LoadedReviews {
    pub reviews: Vec<Review>,
    pub warnings: Vec<String>,
}

/// Loads reviews, picking the format from the path: a directory in the aclImdb layout
/// (`pos/*.txt`, `neg/*.txt`), `.jsonl`, `.jsonl.gz`, `.csv` or `.csv.gz`.
pub fn load_reviews(path: &Path) -> Result<LoadedReviews> {
    if path.is_dir() {
        return load_acl_dir(path);
    }
    match dataset_kind(path) {
        Some(DatasetKind::Csv) => read_csv(open_text(path)?, path),
        Some(DatasetKind::Jsonl) => read_jsonl(open_text(path)?, path),
        None if !path.exists() => bail!("review data {} does not exist", path.display()),
        None => {
            // A download still packed (`.csv.xz`, `.zip`) gets the command that unpacks
            // it; gzip is read directly, once the name says which format it holds.
            let mut magic = [0u8; 2];
            let gzip = File::open(path)
                .and_then(|mut f| f.read_exact(&mut magic))
                .is_ok_and(|()| magic == [0x1f, 0x8b]);
            if gzip {
                // A gzipped tarball, as the IMDB download is, gets the command that unpacks it.
                let mut head = Vec::new();
                let _ = MultiGzDecoder::new(BufReader::new(File::open(path)?))
                    .take(TAR_HEADER)
                    .read_to_end(&mut head);
                if let Some(fix) = archive_fix(path, &head) {
                    bail!(fix);
                }
            }
            ensure!(
                !gzip,
                "{} is gzip-compressed review data: name it NAME.jsonl.gz or NAME.csv.gz, \
                 after the format of its lines",
                path.display()
            );
            open_text(path)?;
            bail!(
                "cannot tell the format of review data {}: expected a directory in the \
                 aclImdb layout (pos/*.txt, neg/*.txt), or a .jsonl, .jsonl.gz, .csv or \
                 .csv.gz file",
                path.display()
            )
        }
    }
}

/// The labelled-review file formats, told by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DatasetKind {
    Csv,
    Jsonl,
}

/// Whether `path`'s name says labelled review data (`.csv`, `.jsonl`, gzipped or not).
pub(crate) fn names_review_data(path: &Path) -> bool {
    dataset_kind(path).is_some()
}

/// Which review format `path`'s name says (`.csv`, `.jsonl`, either gzipped), if any.
fn dataset_kind(path: &Path) -> Option<DatasetKind> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let plain = name.strip_suffix(".gz").unwrap_or(&name);
    if plain.ends_with(".csv") {
        Some(DatasetKind::Csv)
    } else if plain.ends_with(".jsonl") {
        Some(DatasetKind::Jsonl)
    } else {
        None
    }
}

/// Whether a review holds nothing but whitespace (its score would be noise).
pub fn is_blank(review: &[u8]) -> bool {
    review.iter().all(u8::is_ascii_whitespace)
}

/// `bytes` as text for a message, cut to `max` chars.
pub(crate) fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

/// `text` with its control chars escaped (`\u{1a}`, `\t`), for a message that quotes
/// it in backticks, where they would print raw or not at all (`{:?}` escapes them itself).
pub(crate) fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Reviews whose text is empty or blank: kept, since their label is data too, but a
/// model reads each as padding alone (in training, testing or calibration alike),
/// which the user should hear about.
#[derive(Default)]
struct EmptyTexts {
    count: usize,
    first: Option<String>,
}

impl EmptyTexts {
    fn check(&mut self, text: &[u8], at: impl FnOnce() -> String) {
        if is_blank(text) {
            self.count += 1;
            self.first.get_or_insert_with(at);
        }
    }

    fn warning(self, total: usize) -> Option<String> {
        let first = self.first?;
        Some(format!(
            "{first}: empty review text ({} of the {total} reviews there are empty); a \
             model reads each as padding alone: drop them unless that is meant",
            self.count
        ))
    }
}

/// `positive`/`negative`, `pos`/`neg` or `true`/`false` (any case, spaces around
/// allowed), or `1`/`0` (also as `1.0`/`0.0`): what a JSONL label may be, in a CSV field
/// too.
fn label_of(text: &[u8]) -> Option<u8> {
    let text = text.trim_ascii();
    let is = |word: &[u8]| text.eq_ignore_ascii_case(word);
    // `1`, `1.0`, `1.00`: the number exactly, as a float column writes it.
    let number = |digit: u8| {
        text.split_first().is_some_and(|(&first, rest)| {
            first == digit
                && (rest.is_empty()
                    || rest
                        .strip_prefix(b".")
                        .is_some_and(|zeros| !zeros.is_empty() && zeros.iter().all(|&b| b == b'0')))
        })
    };
    if is(b"positive") || is(b"pos") || is(b"true") || number(b'1') {
        Some(1)
    } else if is(b"negative") || is(b"neg") || is(b"false") || number(b'0') {
        Some(0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shared with the tests in the other files of this module.
    pub(super) fn texts(reviews: &[Review]) -> Vec<(&str, u8)> {
        reviews
            .iter()
            .map(|r| (std::str::from_utf8(&r.text).unwrap(), r.label))
            .collect()
    }

    pub(super) const JSONL: &str = "{\"label\": 1, \"text\": \"Great<br />film\", \"id\": 3}\n\
                                    \n\
                                    {\"text\": \"Dull \\u00e9\", \"label\": 0}\n";

    #[test]
    fn unknown_format_and_missing_file_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("reviews.txt");
        std::fs::write(&txt, "x").unwrap();
        let err = load_reviews(&txt).unwrap_err().to_string();
        assert!(err.contains("cannot tell the format"), "{err}");
        assert!(err.contains(".jsonl.gz"), "{err}");
        let err = load_reviews(&dir.path().join("gone.jsonl")).unwrap_err();
        assert!(
            format!("{err:#}").ends_with("gone.jsonl does not exist: check the path"),
            "{err:#}"
        );
        let err = load_reviews(&dir.path().join("gone.parquet")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn the_empty_review_warning_holds_outside_training_too() {
        let loaded = read_jsonl(
            "{\"label\":1,\"text\":\"a\"}\n{\"label\":0,\"text\":\" \"}\n".as_bytes(),
            Path::new("t.jsonl"),
        )
        .unwrap();
        let warning = loaded.warnings.join("\n");
        assert!(
            warning.contains("t.jsonl:2: empty review text (1 of the 2 reviews there are empty); a model reads each as padding alone"),
            "{warning}"
        );
        assert!(!warning.contains("trains"), "{warning}");
    }

    #[test]
    fn pos_neg_and_whole_floats_are_labels_in_jsonl_and_csv() {
        let text =
            "{\"label\": \"pos\", \"text\": \"a\"}\n{\"label\": \" NEG \", \"text\": \"b\"}\n\
                    {\"label\": 1.0, \"text\": \"c\"}\n{\"label\": 0.0, \"text\": \"d\"}\n\
                    {\"label\": \"1.0\", \"text\": \"e\"}\n";
        let reviews = read_jsonl(text.as_bytes(), Path::new("r.jsonl"))
            .unwrap()
            .reviews;
        assert_eq!(
            texts(&reviews),
            [("a", 1), ("b", 0), ("c", 1), ("d", 0), ("e", 1)]
        );
        let err = read_jsonl(
            "{\"label\": 0.5, \"text\": \"x\"}\n".as_bytes(),
            Path::new("r.jsonl"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("r.jsonl:1: field `label` must be 0 or 1"),
            "{err}"
        );
        assert!(err.ends_with("found 0.5"), "{err}");
        let data = "review,sentiment\na,Pos\nb,neg\nc,1.0\nd,0.0\n";
        let reviews = read_csv(data.as_bytes(), Path::new("r.csv"))
            .unwrap()
            .reviews;
        assert_eq!(texts(&reviews), [("a", 1), ("b", 0), ("c", 1), ("d", 0)]);
        for bad in ["0.5", "1.", "10", "1.01", "posi"] {
            let data = format!("review,sentiment\na,{bad}\n");
            let err = read_csv(data.as_bytes(), Path::new("r.csv"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("r.csv:2: field `sentiment` must be positive/negative (or pos/neg), 1/0 or true/false, found \"{bad}\"")),
                "{err}"
            );
        }
    }

    #[test]
    fn control_chars_in_a_quoted_line_start_are_escaped() {
        let err = read_jsonl(
            &b"{\"label\":1,\"text\":\"a\"}\n\x1a\n"[..],
            Path::new("d.jsonl"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("d.jsonl:2: not a JSON object (it starts `\\u{1a}`)"),
            "{err}"
        );
        assert!(!err.contains('\x1a'), "{err}");
    }
}
