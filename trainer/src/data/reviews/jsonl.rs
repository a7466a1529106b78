//! JSON Lines reviews: one object per line with a label and a text, and errors that say
//! what a line gets wrong.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::binary::{nul_error, NulGuard};
use super::text::{read_error, UTF8_BOM};
use super::{escape_controls, excerpt, label_of, EmptyTexts, LoadedReviews, Review};
use crate::shell;

#[derive(Deserialize)]
struct JsonReview {
    #[serde(alias = "sentiment")]
    label: serde_json::Value,
    #[serde(alias = "review")]
    text: String,
}

const JSONL_SHAPE: &str = "each line must be a JSON object with `label` (0/1, true/false, \
                           \"positive\"/\"negative\" or \"pos\"/\"neg\") and `text` (string) fields";

/// Reads one JSON object per line with a `label` (0/1, true/false, positive/negative or pos/neg)
/// and a `text` field (`sentiment` and `review` are taken too); other fields are ignored,
/// blank lines skipped. `source` names the input in errors.
pub fn read_jsonl(reader: impl BufRead, source: &Path) -> Result<LoadedReviews> {
    let mut loaded = LoadedReviews::default();
    let mut empty = EmptyTexts::default();
    let mut number = 0;
    for chunk in BufReader::new(NulGuard::new(reader)).split(b'\n') {
        let chunk = chunk.map_err(|e| {
            nul_error(source, &e, "UTF-8")
                .unwrap_or_else(|| read_error(source, Some(number + 1), e.into()))
        })?;
        let chunk = chunk.strip_suffix(b"\r").unwrap_or(&chunk);
        // JSON strings hold no raw CR, so one inside a line ends it (old Mac files),
        // and lines are counted as an editor counts them.
        for line in chunk.split(|&b| b == b'\r') {
            number += 1;
            let at = format!("{}:{number}", source.display());
            if let Some(review) = jsonl_review(line, &at, source)? {
                empty.check(&review.text, || at.clone());
                loaded.reviews.push(review);
            }
        }
    }
    loaded.warnings.extend(empty.warning(loaded.reviews.len()));
    Ok(loaded)
}

/// The review on one JSONL line (`at` names it), or `None` for a blank line.
fn jsonl_review(line: &[u8], at: &str, source: &Path) -> Result<Option<Review>> {
    // A byte-order mark, as some Windows editors write (on a later line when files
    // were joined with `cat`).
    let line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Err(e) = std::str::from_utf8(line) {
        bail!(
            "{at}: not UTF-8 (byte {} of the line); JSON Lines must be UTF-8: convert the \
             file, e.g. `iconv -f latin1 -t utf-8 {} > OUT`",
            e.valid_up_to() + 1,
            shell::quoted(source)
        );
    }
    let start = line.trim_ascii_start();
    if !start.starts_with(b"{") {
        let array = if start.starts_with(b"[") {
            " (one object per line, not a JSON array)"
        } else {
            ""
        };
        bail!(
            "{at}: not a JSON object (it starts `{}`); {JSONL_SHAPE}{array}",
            escape_controls(&excerpt(start.trim_ascii_end(), 12))
        );
    }
    let record: JsonReview = serde_json::from_slice(line).map_err(|e| {
        // serde_json counts lines within this one line; give the file's line and the column.
        let message = e.to_string();
        let cause = message
            .rsplit_once(" at line ")
            .map_or(&*message, |(cause, _)| cause);
        // serde names a key and its alias alike, and a lone surrogate as a bad escape:
        // say what the line holds instead.
        if cause.starts_with("duplicate field") {
            if let Some(clash) = key_clash(line) {
                return anyhow!("{at}: {clash}");
            }
        }
        let missing = cause
            .strip_prefix("missing field `")
            .and_then(|f| f.strip_suffix('`'));
        if let Some(field) = missing {
            // The field and its alias, as JsonReview names them.
            let names = match field {
                "label" => ["label", "sentiment"],
                _ => ["text", "review"],
            };
            if let Some(key) = key_in_another_case(line, names) {
                return anyhow!(
                    "{at}:{}: missing field `{}` (or `{}`); keys are case-sensitive: write `{}` \
                     for `{key}`",
                    e.column(),
                    names[0],
                    names[1],
                    key.to_ascii_lowercase()
                );
            }
        }
        if cause.ends_with("hex escape") {
            if let Some(escape) = unpaired_surrogate(line, e.column()) {
                return anyhow!(
                    "{at}:{}: the line holds an unpaired UTF-16 surrogate escape (`{escape}`): \
                     a high one (\\ud800-\\udbff) must be followed by a low one \
                     (\\udc00-\\udfff), and neither stands alone; remove it, or give it its pair",
                    e.column()
                );
            }
        }
        anyhow!("{at}:{}: {cause}; {JSONL_SHAPE}", e.column())
    })?;
    let label = match &record.label {
        serde_json::Value::Bool(b) => Some(u8::from(*b)),
        // 1 and 0, and 1.0 and 0.0 as some tools write them; 0.5 is no label.
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(1),
            Some(0.0) => Some(0),
            _ => None,
        },
        serde_json::Value::String(text) => label_of(text.as_bytes()),
        _ => None,
    }
    .with_context(|| {
        // The key as the line spells it: `label` or its alias.
        let keys = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line);
        let name = match keys {
            Ok(keys) if !keys.contains_key("label") => "sentiment",
            _ => "label",
        };
        format!(
            "{at}: field `{name}` must be 0 or 1, true or false, or \"positive\"/\"negative\" (or \"pos\"/\"neg\"), found {}",
            record.label
        )
    })?;
    Ok(Some(Review {
        text: record.text.into_bytes(),
        label,
    }))
}

/// A top-level key of `line` that is one of `names` in another case (`Label`,
/// `TEXT`): JSON keys are case-sensitive, CSV column names are not.
fn key_in_another_case(line: &[u8], names: [&str; 2]) -> Option<String> {
    let keys = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line).ok()?;
    keys.keys()
        .find(|key| {
            names
                .iter()
                .any(|name| key.eq_ignore_ascii_case(name) && key.as_str() != *name)
        })
        .cloned()
}

/// What makes a JSONL object `line` that serde calls a duplicate field ambiguous: a
/// key and its alias (`label` and `sentiment`, `text` and `review`), or a key twice.
fn key_clash(line: &[u8]) -> Option<String> {
    let mut keys = Vec::new();
    // The keys before any error are kept: the clash comes first.
    let _ = serde::Deserializer::deserialize_map(
        &mut serde_json::Deserializer::from_slice(line),
        KeyCollector(&mut keys),
    );
    [
        ("label", "sentiment", "the label"),
        ("text", "review", "the review text"),
    ]
    .into_iter()
    .find_map(|(name, alias, what)| {
        let found: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| *k == name || *k == alias)
            .collect();
        match found.as_slice() {
            [first, second, ..] if first == second => Some(format!(
                "has `{first}` twice, which names {what} twice: keep one"
            )),
            [first, second, ..] => Some(format!(
                "has both `{first}` and `{second}`, which both name {what}: keep one"
            )),
            _ => None,
        }
    })
}

/// Collects the top-level keys of a JSON object in order, repeats included (a map
/// would keep one of each), ignoring the values.
struct KeyCollector<'a>(&'a mut Vec<String>);

impl<'de> Visitor<'de> for KeyCollector<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.0.push(key);
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// The last `\uXXXX` escape of a UTF-16 surrogate without its pair that starts before
/// byte `column` (1-based, where serde stopped) of a JSON `line`, as written.
fn unpaired_surrogate(line: &[u8], column: usize) -> Option<String> {
    // The code unit of a `\uXXXX` escape at `at`, if it is one.
    let unit = |at: usize| {
        let hex = line.get(at..at + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let is_high = |u: u16| (0xd800..0xdc00).contains(&u);
    let is_low = |u: u16| (0xdc00..0xe000).contains(&u);
    let mut found = None;
    let mut at = 0;
    while at < line.len() && at < column {
        if line[at] != b'\\' {
            at += 1;
            continue;
        }
        let Some(u) = unit(at) else {
            // Any other escape is two bytes (`\\` among them, which must not start one).
            at += 2;
            continue;
        };
        if is_high(u) && unit(at + 6).is_some_and(is_low) {
            at += 12;
            continue;
        }
        if is_high(u) || is_low(u) {
            found = Some(String::from_utf8_lossy(&line[at..at + 6]).into_owned());
        }
        at += 6;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::reviews::load_reviews;
    use crate::data::reviews::tests::{texts, JSONL};
    use flate2::write::GzEncoder;
    use std::fs::File;
    use std::io::Write;

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
            let reviews = load_reviews(&path).unwrap().reviews;
            assert_eq!(texts(&reviews), vec![("Great<br />film", 1), ("Dull é", 0)]);
        }
    }

    #[test]
    fn jsonl_labels_may_be_numbers_booleans_or_words() {
        let text = "{\"label\": true, \"text\": \"a\"}\n{\"label\": \"negative\", \"text\": \"b\"}\n\
                    {\"label\": \"1\", \"text\": \"c\"}\n{\"label\": \" Positive \", \"text\": \"d\"}\n";
        let reviews = read_jsonl(text.as_bytes(), Path::new("r.jsonl"))
            .unwrap()
            .reviews;
        assert_eq!(texts(&reviews), [("a", 1), ("b", 0), ("c", 1), ("d", 1)]);
    }

    #[test]
    fn jsonl_errors_name_file_line_and_field() {
        let source = Path::new("bad.jsonl");
        let read = |text: &str| read_jsonl(text.as_bytes(), source).unwrap_err();
        let err = read("{\"label\": 1, \"text\": \"a\"}\n{\"label\": 2, \"text\": \"b\"}\n");
        assert!(
            format!("{err:#}").contains(
                "bad.jsonl:2: field `label` must be 0 or 1, true or false, or \"positive\"/\"negative\" (or \"pos\"/\"neg\"), found 2"
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
        // Keys in another case, and a bad label under the alias, are named as written.
        let err = format!("{:#}", read("{\"Label\": 1, \"Text\": \"a\"}\n"));
        assert!(
            err.ends_with("keys are case-sensitive: write `label` for `Label`"),
            "{err}"
        );
        // The hint names the key of the missing field, not another one.
        let err = format!("{:#}", read("{\"Review\": \"a\", \"Sentiment\": 1}\n"));
        assert!(
            err.contains("missing field `label` (or `sentiment`); keys are case-sensitive: write `sentiment` for `Sentiment`"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            read("{\"sentiment\": \"meh\", \"review\": \"a\"}\n")
        );
        assert!(
            err.starts_with("bad.jsonl:1: field `sentiment` must be"),
            "{err}"
        );
        let err = read("\n\n{not json\n");
        assert!(
            format!("{err:#}").starts_with("bad.jsonl:3:2: key must be a string"),
            "{err:#}"
        );
    }

    #[test]
    fn jsonl_takes_a_byte_order_mark_and_the_csv_column_names() {
        let text = "\u{feff}{\"sentiment\": \"positive\", \"review\": \"a\"}\n{\"label\": 0, \"text\": \"\"}\n";
        let loaded = read_jsonl(text.as_bytes(), Path::new("r.jsonl")).unwrap();
        assert_eq!(texts(&loaded.reviews), [("a", 1), ("", 0)]);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].starts_with("r.jsonl:2: empty review text (1 of the 2"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn jsonl_refuses_latin1_and_arrays_with_the_fix() {
        let source = Path::new("bad.jsonl");
        let err = read_jsonl(&b"{\"label\": 1, \"text\": \"caf\xe9\"}\n"[..], source).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.starts_with("bad.jsonl:1: not UTF-8 (byte 26 of the line)"),
            "{message}"
        );
        assert!(message.contains("iconv -f latin1 -t utf-8"), "{message}");
        let err = read_jsonl("[{\"label\": 1, \"text\": \"a\"}]\n".as_bytes(), source).unwrap_err();
        assert!(format!("{err:#}").contains("not a JSON array"), "{err:#}");
        // serde reads a struct from an array too; a line must be an object all the same.
        for (line, starts) in [
            ("[1, \"a fine film\"]", "[1, \"a fine ..."),
            ("\"just text\"", "\"just text\""),
        ] {
            let err = read_jsonl(format!("{line}\n").as_bytes(), source).unwrap_err();
            assert!(
                format!("{err:#}").starts_with(&format!(
                    "bad.jsonl:1: not a JSON object (it starts `{starts}`)"
                )),
                "{err:#}"
            );
        }
        let err =
            read_jsonl(&b"{\"label\": 1, \"text\": \"a\"}\r\nnull\r\n"[..], source).unwrap_err();
        assert!(format!("{err:#}").contains("(it starts `null`)"), "{err:#}");
        // Files joined with `cat` carry a byte-order mark on a later line too.
        let joined = "{\"label\": 1, \"text\": \"a\"}\n\u{feff}{\"label\": 0, \"text\": \"b\"}\n";
        assert_eq!(
            read_jsonl(joined.as_bytes(), source).unwrap().reviews.len(),
            2
        );
        // Old Mac files end lines with CR alone; lines count as an editor counts them.
        let old_mac = "{\"label\": 1, \"text\": \"a\"}\r{\"label\": 0, \"text\": \"b\"}\r\r";
        let loaded = read_jsonl(old_mac.as_bytes(), source).unwrap();
        assert_eq!(texts(&loaded.reviews), [("a", 1), ("b", 0)]);
        let bad_fourth = format!("{old_mac}{{\"label\": 2}}\r");
        let err = read_jsonl(bad_fourth.as_bytes(), source).unwrap_err();
        assert!(format!("{err:#}").starts_with("bad.jsonl:4:"), "{err:#}");
    }

    #[test]
    fn jsonl_names_both_keys_when_a_key_and_its_alias_clash() {
        let read = |text: &str| {
            format!(
                "{:#}",
                read_jsonl(text.as_bytes(), Path::new("r.jsonl")).unwrap_err()
            )
        };
        let good = "{\"label\": 1, \"text\": \"fine\"}\n";
        let err = read(&format!(
            "{good}{{\"label\":1,\"text\":\"good\",\"sentiment\":0.93}}\n"
        ));
        assert_eq!(
            err,
            "r.jsonl:2: has both `label` and `sentiment`, which both name the label: keep one"
        );
        let err = read("{\"label\":1,\"text\":\"x\",\"review\":\"y\"}\n");
        assert!(
            err.starts_with(
                "r.jsonl:1: has both `text` and `review`, which both name the review text"
            ),
            "{err}"
        );
        let err = read("{\"label\":1,\"label\":0,\"text\":\"x\"}\n");
        assert!(err.starts_with("r.jsonl:1: has `label` twice"), "{err}");
        // The keys are named in the line's order, even when the line breaks off after them.
        let err = read("{\"sentiment\":1,\"review\":\"a\",\"label\":0,\n");
        assert!(
            err.starts_with("r.jsonl:1: has both `sentiment` and `label`"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_names_an_unpaired_surrogate_escape() {
        let read = |text: &str| read_jsonl(text.as_bytes(), Path::new("s.jsonl"));
        for (line, escape) in [
            (r#"{"label":1,"text":"\ud800"}"#, r"\ud800"),
            (r#"{"label":1,"text":"a\uDC00b"}"#, r"\uDC00"),
            (r#"{"label":1,"text":"\ud83d\u0041"}"#, r"\ud83d"),
        ] {
            let err = format!("{:#}", read(&format!("{line}\n")).unwrap_err());
            assert!(
                err.starts_with("s.jsonl:1:")
                    && err.contains(&format!(
                        "the line holds an unpaired UTF-16 surrogate escape (`{escape}`)"
                    )),
                "{line}: {err}"
            );
            assert!(err.contains("remove it, or give it its pair"), "{err}");
            assert!(!err.contains("hex escape"), "{err}");
        }
        // A pair is one char, and an escaped backslash before `ud800` is text.
        let loaded = read("{\"label\":1,\"text\":\"\\ud83d\\ude00 \\\\ud800\"}\n").unwrap();
        assert_eq!(texts(&loaded.reviews), [("\u{1f600} \\ud800", 1)]);
    }
}
