//! CSV reviews: a header naming the review and sentiment columns, then one review per row,
//! with lines counted as an editor counts them.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use super::binary::{nul_byte, nul_error, NulGuard};
use super::text::{read_error, UTF8_BOM};
use super::{excerpt, is_blank, label_of, EmptyTexts, LoadedReviews, Review};

/// The index and name of the CSV column called `name` or `alias` (any case, spaces
/// around allowed). Both, or one twice, is ambiguous and refused.
fn csv_column(
    headers: &csv::ByteRecord,
    name: &str,
    alias: &str,
    source: &Path,
) -> Result<(usize, String)> {
    let found: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            let h = h.trim_ascii();
            h.eq_ignore_ascii_case(name.as_bytes()) || h.eq_ignore_ascii_case(alias.as_bytes())
        })
        .map(|(index, h)| (index, String::from_utf8_lossy(h.trim_ascii()).into_owned()))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            // One column holding `;` or a tab: another separator than the comma.
            let separator = match headers.iter().collect::<Vec<_>>().as_slice() {
                [only] => [(b';', "`;`"), (b'\t', "tabs")]
                    .into_iter()
                    .find(|(byte, _)| only.contains(byte))
                    .map(|(_, name)| {
                        format!(
                            "; its fields seem separated by {name}: save it with commas \
                             (CSV, `,` between fields)"
                        )
                    }),
                _ => None,
            };
            // A first line that ends in a label is a review: the header is missing.
            let data = headers
                .iter()
                .next_back()
                .is_some_and(|last| headers.len() > 1 && label_of(last).is_some());
            let missing = match (data, headers.len()) {
                (false, _) => "",
                (true, 2) => {
                    "; line 1 looks like a review, not a header: add the line \
                     `review,sentiment` above it"
                }
                (true, _) => {
                    "; line 1 looks like a review, not a header: add a line above it that \
                     names each column, `review` and `sentiment` among them"
                }
            };
            bail!(
                "{}:1: the CSV header has no `{name}` (or `{alias}`) column \
                 (expected `review,sentiment` or `text,label`){}{missing}",
                source.display(),
                separator.unwrap_or_default()
            )
        }
        [first, second, ..] => bail!(
            "{}:1: the CSV header has both `{}` (column {}) and `{}` (column {}): \
             keep one `{name}` (or `{alias}`) column",
            source.display(),
            first.1,
            first.0 + 1,
            second.1,
            second.0 + 1
        ),
    }
}

/// The lines of a record that spans several lines that end like a row of their own
/// (`...,negative`): the mark of a quote left open, which merges the rows after it. Each
/// comes with its offset in the record, an excerpt, and its label as spelled (lowercase),
/// so that only the spellings the file's own label column uses count.
fn row_like_lines(text: &[u8]) -> Vec<(usize, String, Vec<u8>)> {
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    lines[..lines.len() - 1]
        .iter()
        .enumerate()
        .filter_map(|(offset, line)| {
            let line = line.trim_ascii_end();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let comma = line.iter().rposition(|&b| b == b',')?;
            let last = line[comma + 1..].trim_ascii();
            let last = last.strip_suffix(b"\"").unwrap_or(last);
            let last = last.strip_prefix(b"\"").unwrap_or(last);
            label_of(last)?;
            Some((offset, excerpt(line, 60), last.to_ascii_lowercase()))
        })
        .collect()
}

/// Reads CSV with a header naming a `review` and a `sentiment` column (the Kaggle "IMDB
/// Dataset.csv" layout), or `text` and `label` as in the JSONL files; sentiment is
/// `positive`/`negative`, `pos`/`neg` or `true`/`false` (any case), or `1`/`0`.
pub fn read_csv(reader: impl Read, source: &Path) -> Result<LoadedReviews> {
    // Flexible, so that a line of spaces is skipped as blank lines are.
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(LineEnds::new(NulGuard::new(reader)));
    let headers = match csv.byte_headers() {
        Ok(headers) => headers.clone(),
        Err(err) => {
            // The reader reads ahead: a NUL byte below the header stops it here.
            let binary = matches!(err.kind(), csv::ErrorKind::Io(io) if nul_byte(io).is_some());
            let err = csv_error(source, err, csv.get_mut());
            return Err(if binary {
                err
            } else {
                err.context("cannot read the CSV header")
            });
        }
    };
    ensure!(
        !headers.is_empty(),
        "{}: the file is empty: give a header line `review,sentiment` and one review per row",
        source.display()
    );
    ensure!(
        headers.iter().any(|h| !h.trim_ascii().is_empty()),
        "{}:1: the header line is blank: the first line must name the columns \
         (`review,sentiment`); remove the blank line",
        source.display()
    );
    let (text_col, _) = csv_column(&headers, "review", "text", source)?;
    let (label_col, label_name) = csv_column(&headers, "sentiment", "label", source)?;
    let mut loaded = LoadedReviews::default();
    let mut empty = EmptyTexts::default();
    // Label spellings the label column uses, and reviews with row-like lines in them
    // (where in the file, and those lines); they are matched once every label is read.
    let mut spellings = std::collections::HashSet::new();
    let mut row_like = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let more = csv.read_byte_record(&mut record);
        let lines = csv.get_mut();
        if !more.map_err(|e| csv_error(source, e, lines))? {
            break;
        }
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let at = format!("{}:{line}", source.display());
        if record.len() != headers.len() {
            if record.len() == 1 && is_blank(&record[0]) {
                continue;
            }
            bail!(
                "{at}: this row has {} field{} but the header has {}: a field that holds \
                 commas, quotes or line breaks must be in double quotes, with a quote inside \
                 it written twice (\"\"); a quote left open runs on to the end of the file",
                record.len(),
                if record.len() == 1 { "" } else { "s" },
                headers.len()
            );
        }
        let text = record.get(text_col).unwrap_or_default().to_vec();
        let sentiment = record.get(label_col).unwrap_or_default();
        let label = label_of(sentiment).with_context(|| {
            // A file joined on with `cat` repeats its header, maybe after a byte-order mark.
            let field = sentiment.strip_prefix(UTF8_BOM).unwrap_or(sentiment);
            let field = field.trim_ascii();
            if field.eq_ignore_ascii_case(b"sentiment") || field.eq_ignore_ascii_case(b"label") {
                return format!(
                    "{at}: this row repeats the header (files joined with `cat`?): remove it"
                );
            }
            format!(
                "{at}: field `{label_name}` must be positive/negative (or pos/neg), 1/0 or true/false, found {:?}",
                String::from_utf8_lossy(sentiment.trim_ascii())
            )
        })?;
        spellings.insert(sentiment.trim_ascii().to_ascii_lowercase());
        empty.check(&text, || at.clone());
        let candidates = row_like_lines(&text);
        if !candidates.is_empty() {
            // The review starts below the line breaks of the fields before it.
            let before: usize = record
                .iter()
                .take(text_col)
                .map(|f| f.iter().filter(|&&b| b == b'\n').count())
                .sum();
            row_like.push((at, line + before as u64, candidates));
        }
        loaded.reviews.push(Review { text, label });
    }
    loaded.warnings.extend(empty.warning(loaded.reviews.len()));
    let mut merged = row_like.iter().filter_map(|(at, start, candidates)| {
        let (offset, row, _) = candidates
            .iter()
            .find(|(_, _, spelling)| spellings.contains(spelling))?;
        Some(format!(
            "{at}: a review spans several lines, and line {} of the file, inside it, ends like a row \
             of its own ({row:?})",
            start + *offset as u64
        ))
    });
    if let Some(first) = merged.next() {
        let merged = 1 + merged.count();
        loaded.warnings.push(format!(
            "{first}; {merged} review(s) in all look like merged rows: a quote left open \
             joins the rows after it into one review; close it (a quote inside a quoted \
             field is written twice: \"\")"
        ));
    }
    Ok(loaded)
}

/// The line ends a CSV reader has pulled, so that a record's line comes from its byte
/// offset: the csv crate's own line count runs one short after a CR LF or a blank line
/// (rust-csv #395, #208). Keeps only the ends not yet passed.
struct LineEnds<R> {
    inner: R,
    read: u64,
    /// Offsets of the `\r` and `\n` bytes not yet passed, true for those that end a
    /// line: `\n`, and a `\r` that no `\n` follows (old Mac files).
    ends: VecDeque<(u64, bool)>,
    /// The last byte read was `\r`: whether it ends a line depends on the next.
    after_cr: bool,
    /// `\n` bytes passed.
    passed: u64,
}

impl<R> LineEnds<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            ends: VecDeque::new(),
            after_cr: false,
            passed: 0,
        }
    }

    /// The line of the first byte at or after `byte` that is no line end: where a record
    /// the csv crate places at `byte` (on the end of the line before, or a blank line)
    /// starts. Offsets must come in increasing order.
    fn line_at(&mut self, byte: u64) -> u64 {
        while let Some(&(at, newline)) = self.ends.front() {
            if at >= byte {
                break;
            }
            self.passed += u64::from(newline);
            self.ends.pop_front();
        }
        let run = self
            .ends
            .iter()
            .zip(byte..)
            .take_while(|((at, _), expected)| at == expected)
            .filter(|((_, newline), _)| *newline)
            .count();
        self.passed + run as u64 + 1
    }
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (at, &b) in (self.read..).zip(&buf[..n]) {
            if self.after_cr && b != b'\n' {
                if let Some(cr) = self.ends.back_mut() {
                    cr.1 = true;
                }
            }
            self.after_cr = b == b'\r';
            if b == b'\n' || b == b'\r' {
                self.ends.push_back((at, b == b'\n'));
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// A CSV record that cannot be read, with its line and what to do.
fn csv_error<R>(source: &Path, err: csv::Error, lines: &mut LineEnds<R>) -> anyhow::Error {
    if let Some(nul) = match err.kind() {
        csv::ErrorKind::Io(io) => nul_error(source, io, "UTF-8 or Latin-1"),
        _ => None,
    } {
        return nul;
    }
    let line = err.position().map(|p| lines.line_at(p.byte()) as usize);
    read_error(source, line, err.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::reviews::tests::texts;

    #[test]
    fn csv_with_words_or_digits() {
        let data = "review,sentiment\n\"Loved it, really.\",positive\nMeh,NEGATIVE\n\"two\nlines\",1\nx,0\ny,True\nz, false\n";
        let reviews = read_csv(data.as_bytes(), Path::new("r.csv"))
            .unwrap()
            .reviews;
        assert_eq!(
            texts(&reviews),
            vec![
                ("Loved it, really.", 1),
                ("Meh", 0),
                ("two\nlines", 1),
                ("x", 0),
                ("y", 1),
                ("z", 0)
            ]
        );
        // Columns may come in any order.
        let swapped = read_csv("sentiment,review\n0,bad\n".as_bytes(), Path::new("s.csv"))
            .unwrap()
            .reviews;
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
                "r.csv:5: field `sentiment` must be positive/negative (or pos/neg), 1/0 or true/false, found \"maybe\""
            ),
            "{err}"
        );
        // CR LF line ends and blank lines: the csv crate's own count is one short after each.
        for (data, line) in [
            ("review,sentiment\r\ngood,positive\r\nbad,maybe\r\n", 3),
            ("review,sentiment\ngood,positive\n\nbad,maybe\n", 4),
            (
                "review,sentiment\r\n\r\n\"a\r\nb\",1\r\n\r\nbad,maybe\r\n",
                6,
            ),
            ("review,sentiment\r\nok,1\r\nbad,1,extra\r\n", 3),
            ("review,sentiment\rgood,positive\r\rbad,maybe\r", 4),
        ] {
            let err = read_csv(data.as_bytes(), Path::new("r.csv")).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("r.csv:{line}: ")),
                "{data:?}: {err}"
            );
        }
        let err = read_csv("body,label\na,1\n".as_bytes(), Path::new("h.csv")).unwrap_err();
        assert!(
            err.to_string()
                .contains("h.csv:1: the CSV header has no `review` (or `text`) column"),
            "{err}"
        );
        assert!(!err.to_string().contains("separated by"), "{err}");
        for (data, separator) in [
            (
                "review;sentiment
",
                "`;`",
            ),
            (
                "review\tsentiment
",
                "tabs",
            ),
        ] {
            let err = read_csv(data.as_bytes(), Path::new("h.csv")).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("its fields seem separated by {separator}")),
                "{err}"
            );
        }
    }

    #[test]
    fn csv_takes_the_jsonl_column_names_in_any_order() {
        let reviews = read_csv(
            "id,label,text\n7,1,\"fine, really\"\n8,0,dull\n".as_bytes(),
            Path::new("t.csv"),
        )
        .unwrap()
        .reviews;
        assert_eq!(texts(&reviews), [("fine, really", 1), ("dull", 0)]);
    }

    #[test]
    fn csv_refuses_ambiguous_headers_and_ragged_rows_with_the_fix() {
        let read = |text: &str| {
            format!(
                "{:#}",
                read_csv(text.as_bytes(), Path::new("r.csv")).unwrap_err()
            )
        };
        let err = read("review,sentiment,text\na,1,b\n");
        assert!(
            err.contains(
                "r.csv:1: the CSV header has both `review` (column 1) and `text` (column 3)"
            ),
            "{err}"
        );
        let err = read("text,label\na,1\nb\n");
        assert!(
            err.starts_with("r.csv:3: this row has 1 field but the header has 2"),
            "{err}"
        );
        assert!(err.contains("double quotes"), "{err}");
        let err = read("text,label\na,maybe\n");
        assert!(err.contains("r.csv:2: field `label` must be"), "{err}");
    }

    #[test]
    fn csv_warns_of_rows_merged_by_an_open_quote() {
        let data = "review,sentiment\n\"He said \"\"hi,positive\nbad movie,negative\n\"ok\",positive\nfine,negative\n";
        let loaded = read_csv(data.as_bytes(), Path::new("q.csv")).unwrap();
        assert_eq!(loaded.reviews.len(), 2);
        let warnings = loaded.warnings.join("\n");
        assert!(
            warnings.starts_with("q.csv:2: a review spans several lines"),
            "{warnings}"
        );
        assert!(warnings.contains("close it"), "{warnings}");
        // With CR LF ends, and the review after another column holding a line break.
        for (data, line) in [
            ("review,sentiment\r\n\"a\r\nb, 1\r\nc\",1\r\nok,1\r\n", 3),
            ("id,text,label\n\"x\ny\",\"a\nb,1\nc\",1\n", 4),
        ] {
            let warnings = read_csv(data.as_bytes(), Path::new("q.csv"))
                .unwrap()
                .warnings;
            let expected = format!("q.csv:2: a review spans several lines, and line {line} ");
            assert!(warnings[0].starts_with(&expected), "{warnings:?}");
        }
        // A quoted review with a line break of its own is fine, and so is a line that
        // ends like a label the file's label column never spells that way.
        for fine in [
            "review,sentiment\n\"two\nlines\",1\n",
            "review,sentiment\n\"rated, 1.0\nor, neg\nthen\",positive\nok,negative\n",
        ] {
            let loaded = read_csv(fine.as_bytes(), Path::new("f.csv")).unwrap();
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        }
        // The spelling is compared without case or spaces.
        let odd = "review,sentiment\n\"a\nb, NEGATIVE\nc\",positive\nd, negative \n";
        let warnings = read_csv(odd.as_bytes(), Path::new("o.csv"))
            .unwrap()
            .warnings;
        assert!(warnings[0].contains("1 review(s) in all"), "{warnings:?}");
        // A file that quotes every field quotes the label of a merged row too.
        let lines = row_like_lines(b"x\n\"b\",\"Positive\"\ny");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].2, b"positive");
    }

    #[test]
    fn csv_skips_lines_of_spaces_and_names_a_missing_or_repeated_header() {
        let read = |text: &str| read_csv(text.as_bytes(), Path::new("r.csv"));
        let loaded = read("review,sentiment\ngood,1\n   \nbad,0\n").unwrap();
        assert_eq!(loaded.reviews.len(), 2);
        let err = |text: &str| format!("{:#}", read(text).unwrap_err());
        assert_eq!(
            err(""),
            "r.csv: the file is empty: give a header line `review,sentiment` and one review per row"
        );
        assert_eq!(
            err("   \nreview,sentiment\ngood,1\n"),
            "r.csv:1: the header line is blank: the first line must name the columns \
             (`review,sentiment`); remove the blank line"
        );
        // Joined on with `cat`: the header again, maybe after a byte-order mark, or
        // another file's column names.
        for joined in ["Review,Sentiment", "\u{feff}review,sentiment", "text,label"] {
            assert_eq!(
                err(&format!("review,sentiment\ngood,1\n{joined}\nbad,0\n")),
                "r.csv:3: this row repeats the header (files joined with `cat`?): remove it"
            );
        }
        assert!(err("id,good film,1\n").ends_with(
            "add a line above it that names each column, `review` and `sentiment` among them"
        ));
        assert!(
            err("good film,1\nbad,0\n").ends_with(
                "line 1 looks like a review, not a header: add the line `review,sentiment` above it"
            ),
            "{}",
            err("good film,1\nbad,0\n")
        );
        assert!(!err("body,label\na,1\n").contains("looks like a review"));
        assert!(err("review,sentiment\ngood,1,3\n").starts_with("r.csv:2: this row has 3 fields"));
    }
}
