//! Labelled reviews (IMDB and the like) from an aclImdb folder, JSON Lines (optionally
//! gzipped) or CSV.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use flate2::read::MultiGzDecoder;
use serde::Deserialize;

/// One review: its text (bytes, as stored) and its label (1 positive, 0 negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub text: Vec<u8>,
    pub label: u8,
}

/// Loads reviews, picking the format from the path: a directory in the aclImdb layout
/// (`pos/*.txt`, `neg/*.txt`), `.jsonl`, `.jsonl.gz`, `.csv` or `.csv.gz`.
pub fn load_reviews(path: &Path) -> Result<Vec<Review>> {
    if path.is_dir() {
        return load_acl_dir(path);
    }
    let name = path.to_string_lossy();
    let plain = name.strip_suffix(".gz").unwrap_or(&name);
    if plain.ends_with(".jsonl") || plain.ends_with(".csv") {
        let reader = open_text(path)?;
        if plain.ends_with(".csv") {
            read_csv(reader, path)
        } else {
            read_jsonl(reader, path)
        }
    } else if !path.exists() {
        bail!("review data {} does not exist", path.display())
    } else {
        bail!(
            "cannot tell the format of review data {}: expected a directory in the aclImdb \
             layout (pos/*.txt, neg/*.txt), or a .jsonl, .jsonl.gz, .csv or .csv.gz file",
            path.display()
        )
    }
}

/// Opens a file for buffered reading, decompressing it when its name ends in `.gz`.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Reads `<dir>/neg/*.txt` (label 0) then `<dir>/pos/*.txt` (label 1), each folder in
/// file-name order, so the result does not depend on the file system.
pub fn load_acl_dir(dir: &Path) -> Result<Vec<Review>> {
    let mut reviews = Vec::new();
    for (folder, label) in [("neg", 0u8), ("pos", 1u8)] {
        let sub = dir.join(folder);
        if !sub.is_dir() {
            let hint = if dir.join("train").is_dir() || dir.join("test").is_dir() {
                format!(" (use {}/train or {}/test)", dir.display(), dir.display())
            } else {
                String::new()
            };
            bail!(
                "{} is not in the aclImdb layout: it has no {folder}/ folder{hint}",
                dir.display()
            );
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&sub)
            .with_context(|| format!("cannot list {}", sub.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot list {}", sub.display()))?;
        files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
        files.sort();
        for file in files {
            let text =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            reviews.push(Review { text, label });
        }
    }
    Ok(reviews)
}

#[derive(Deserialize)]
struct JsonReview {
    label: serde_json::Value,
    text: String,
}

/// Reads one JSON object per line with a `label` (0/1, or true/false) and a `text` field;
/// other fields are ignored, blank lines skipped. `source` names the input in errors.
pub fn read_jsonl(reader: impl BufRead, source: &Path) -> Result<Vec<Review>> {
    let mut reviews = Vec::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let at = format!("{}:{}", source.display(), index + 1);
        let line = line.with_context(|| format!("{at}: cannot read"))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: JsonReview = serde_json::from_slice(&line).map_err(|e| {
            // serde_json counts lines within this one line; give the file's line and the column.
            let message = e.to_string();
            let cause = message
                .rsplit_once(" at line ")
                .map_or(&*message, |(cause, _)| cause);
            anyhow!(
                "{at}:{}: {cause}; each line must be a JSON object with `label` (0 or 1) \
                 and `text` (string) fields",
                e.column()
            )
        })?;
        let label = match &record.label {
            serde_json::Value::Bool(b) => Some(u8::from(*b)),
            serde_json::Value::Number(n) => n.as_u64().filter(|&v| v <= 1).map(|v| v as u8),
            serde_json::Value::String(text) => label_of(text.as_bytes()),
            _ => None,
        }
        .with_context(|| {
            format!(
                "{at}: field `label` must be 0 or 1 (or \"positive\"/\"negative\"), found {}",
                record.label
            )
        })?;
        reviews.push(Review {
            text: record.text.into_bytes(),
            label,
        });
    }
    Ok(reviews)
}

/// `positive`/`negative` (any case, spaces around allowed) or `1`/`0`.
fn label_of(text: &[u8]) -> Option<u8> {
    let text = text.trim_ascii();
    if text.eq_ignore_ascii_case(b"positive") || text == b"1" {
        Some(1)
    } else if text.eq_ignore_ascii_case(b"negative") || text == b"0" {
        Some(0)
    } else {
        None
    }
}

/// Reads CSV with a header naming a `review` and a `sentiment` column (the Kaggle "IMDB
/// Dataset.csv" layout), or `text` and `label` as in the JSONL files; sentiment is
/// `positive`/`negative` (any case) or `1`/`0`.
pub fn read_csv(reader: impl Read, source: &Path) -> Result<Vec<Review>> {
    let mut csv = csv::ReaderBuilder::new().from_reader(reader);
    let headers = csv
        .byte_headers()
        .with_context(|| format!("{}:1: cannot read the CSV header", source.display()))?
        .clone();
    let column = |name: &str, alias: &str| {
        headers
            .iter()
            .position(|h| {
                let h = h.trim_ascii();
                h.eq_ignore_ascii_case(name.as_bytes()) || h.eq_ignore_ascii_case(alias.as_bytes())
            })
            .with_context(|| {
                format!(
                    "{}:1: the CSV header has no `{name}` (or `{alias}`) column \
                     (expected `review,sentiment` or `text,label`)",
                    source.display()
                )
            })
    };
    let (text_col, label_col) = (column("review", "text")?, column("sentiment", "label")?);
    let mut reviews = Vec::new();
    for record in csv.byte_records() {
        let record = record.with_context(|| format!("{}: bad CSV record", source.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        let at = format!("{}:{line}", source.display());
        let field = |col: usize, name: &str| {
            record
                .get(col)
                .with_context(|| format!("{at}: the record has no `{name}` field"))
        };
        let text = field(text_col, "review")?.to_vec();
        let sentiment = field(label_col, "sentiment")?;
        let label = label_of(sentiment).with_context(|| {
            format!(
                "{at}: field `sentiment` must be positive/negative or 1/0, found {:?}",
                String::from_utf8_lossy(sentiment.trim_ascii())
            )
        })?;
        reviews.push(Review { text, label });
    }
    Ok(reviews)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn texts(reviews: &[Review]) -> Vec<(&str, u8)> {
        reviews
            .iter()
            .map(|r| (std::str::from_utf8(&r.text).unwrap(), r.label))
            .collect()
    }

    const JSONL: &str = "{\"label\": 1, \"text\": \"Great<br />film\", \"id\": 3}\n\
                         \n\
                         {\"text\": \"Dull \\u00e9\", \"label\": 0}\n";

    #[test]
    fn jsonl_and_gzipped_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("r.jsonl");
        std::fs::write(&plain, JSONL).unwrap();
        let zipped = dir.path().join("r.jsonl.gz");
        let mut gz = GzEncoder::new(File::create(&zipped).unwrap(), Default::default());
        gz.write_all(JSONL.as_bytes()).unwrap();
        gz.finish().unwrap();
        for path in [plain, zipped] {
            let reviews = load_reviews(&path).unwrap();
            assert_eq!(texts(&reviews), vec![("Great<br />film", 1), ("Dull é", 0)]);
        }
    }

    #[test]
    fn jsonl_labels_may_be_numbers_booleans_or_words() {
        let text = "{\"label\": true, \"text\": \"a\"}\n{\"label\": \"negative\", \"text\": \"b\"}\n\
                    {\"label\": \"1\", \"text\": \"c\"}\n{\"label\": \" Positive \", \"text\": \"d\"}\n";
        let reviews = read_jsonl(text.as_bytes(), Path::new("r.jsonl")).unwrap();
        assert_eq!(texts(&reviews), [("a", 1), ("b", 0), ("c", 1), ("d", 1)]);
    }

    #[test]
    fn jsonl_errors_name_file_line_and_field() {
        let source = Path::new("bad.jsonl");
        let read = |text: &str| read_jsonl(text.as_bytes(), source).unwrap_err();
        let err = read("{\"label\": 1, \"text\": \"a\"}\n{\"label\": 2, \"text\": \"b\"}\n");
        assert!(
            format!("{err:#}").contains(
                "bad.jsonl:2: field `label` must be 0 or 1 (or \"positive\"/\"negative\"), found 2"
            ),
            "{err:#}"
        );
        let err = read("{\"label\": 1}\n");
        let message = format!("{err:#}");
        assert!(
            message.starts_with("bad.jsonl:1:12: missing field `text`; each line must be"),
            "{message}"
        );
        assert!(!message.contains("at line"), "{message}");
        let err = read("\n\n{not json\n");
        assert!(
            format!("{err:#}").starts_with("bad.jsonl:3:2: key must be a string"),
            "{err:#}"
        );
    }

    #[test]
    fn csv_with_words_or_digits() {
        let data = "review,sentiment\n\"Loved it, really.\",positive\nMeh,NEGATIVE\n\"two\nlines\",1\nx,0\n";
        let reviews = read_csv(data.as_bytes(), Path::new("r.csv")).unwrap();
        assert_eq!(
            texts(&reviews),
            vec![
                ("Loved it, really.", 1),
                ("Meh", 0),
                ("two\nlines", 1),
                ("x", 0)
            ]
        );
        // Columns may come in any order.
        let swapped = read_csv("sentiment,review\n0,bad\n".as_bytes(), Path::new("s.csv")).unwrap();
        assert_eq!(texts(&swapped), vec![("bad", 0)]);
    }

    #[test]
    fn csv_errors_name_file_line_and_field() {
        let err = read_csv(
            "review,sentiment\nok,positive\n\"multi\nline\",1\nbad,maybe\n".as_bytes(),
            Path::new("r.csv"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "r.csv:5: field `sentiment` must be positive/negative or 1/0, found \"maybe\""
            ),
            "{err}"
        );
        let err = read_csv("body,label\na,1\n".as_bytes(), Path::new("h.csv")).unwrap_err();
        assert!(
            err.to_string()
                .contains("h.csv:1: the CSV header has no `review` (or `text`) column"),
            "{err}"
        );
    }

    #[test]
    fn csv_takes_the_jsonl_column_names_in_any_order() {
        let reviews = read_csv(
            "id,label,text\n7,1,\"fine, really\"\n8,0,dull\n".as_bytes(),
            Path::new("t.csv"),
        )
        .unwrap();
        assert_eq!(texts(&reviews), [("fine, really", 1), ("dull", 0)]);
    }

    #[test]
    fn acl_folder_is_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for (folder, name, text) in [
            ("pos", "10_9.txt", "p10"),
            ("pos", "2_8.txt", "p2"),
            ("neg", "5_1.txt", "n5"),
            ("neg", "notes.md", "ignored"),
        ] {
            std::fs::create_dir_all(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join(name), text).unwrap();
        }
        let reviews = load_reviews(dir.path()).unwrap();
        assert_eq!(texts(&reviews), vec![("n5", 0), ("p10", 1), ("p2", 1)]);
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
    fn unknown_format_and_missing_file_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("reviews.txt");
        std::fs::write(&txt, "x").unwrap();
        let err = load_reviews(&txt).unwrap_err().to_string();
        assert!(err.contains("cannot tell the format"), "{err}");
        assert!(err.contains(".jsonl.gz"), "{err}");
        let err = load_reviews(&dir.path().join("gone.jsonl")).unwrap_err();
        assert!(format!("{err:#}").contains("cannot open"), "{err:#}");
        let err = load_reviews(&dir.path().join("gone.parquet")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
