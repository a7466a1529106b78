//! The `lstm_edge.*` metadata of an exported ONNX: which model the file holds, in
//! the command line's words (`--cell lstm`, `--head flatten`, `--truncate pre`), one
//! fact a key, so that a consumer reads each value as it is.
//!
//! Exports before 2026-12-07 spelt the cell, head and output as Rust's debug forms
//! (`Lstm`, `Flatten { maxlen: 200 }`, `Softmax { classes: 50 }`); files in that
//! spelling are still read and checked.

use std::collections::HashMap;

use lstm_edge_runtime::format::{Cell, Head, Output};

/// What an exported model's metadata says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelMetadata {
    pub cell: Cell,
    pub hidden: usize,
    pub head: Head,
    pub output: Output,
    /// The id whose first occurrence ends a row, for models with one.
    pub pad_id: Option<u16>,
}

/// Every key this module writes or reads.
const KEYS: [&str; 8] = [
    "lstm_edge.cell",
    "lstm_edge.hidden",
    "lstm_edge.head",
    "lstm_edge.maxlen",
    "lstm_edge.truncate",
    "lstm_edge.output",
    "lstm_edge.classes",
    "lstm_edge.pad_id",
];

impl ModelMetadata {
    /// The entries an export writes: `cell` (`lstm`, `gru`), `hidden`, `head`
    /// (`flatten`, `last`, `mean`) with `maxlen` and `truncate` (`post`, `pre`) for a
    /// flatten head, `output` (`sigmoid`, `softmax`) with `classes` for a softmax, and
    /// `pad_id` where the model has one.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let cell = match self.cell {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        };
        let mut out = vec![
            ("lstm_edge.cell", cell.to_string()),
            ("lstm_edge.hidden", self.hidden.to_string()),
        ];
        let (head, flatten) = match self.head {
            Head::Flatten { maxlen } => ("flatten", Some((maxlen, "post"))),
            Head::FlattenTail { maxlen } => ("flatten", Some((maxlen, "pre"))),
            Head::Last => ("last", None),
            Head::Mean => ("mean", None),
        };
        out.push(("lstm_edge.head", head.to_string()));
        if let Some((maxlen, truncate)) = flatten {
            out.push(("lstm_edge.maxlen", maxlen.to_string()));
            out.push(("lstm_edge.truncate", truncate.to_string()));
        }
        match self.output {
            Output::Sigmoid => out.push(("lstm_edge.output", "sigmoid".to_string())),
            Output::Softmax { classes } => {
                out.push(("lstm_edge.output", "softmax".to_string()));
                out.push(("lstm_edge.classes", classes.to_string()));
            }
        }
        out.extend(self.pad_id_entry());
        out
    }

    /// The entries in the spelling of exports before 2026-12-07.
    fn legacy_entries(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("lstm_edge.cell", format!("{:?}", self.cell)),
            ("lstm_edge.hidden", self.hidden.to_string()),
            ("lstm_edge.head", format!("{:?}", self.head)),
            ("lstm_edge.output", format!("{:?}", self.output)),
        ];
        out.extend(self.pad_id_entry());
        out
    }

    fn pad_id_entry(&self) -> Option<(&'static str, String)> {
        self.pad_id.map(|pad| ("lstm_edge.pad_id", pad.to_string()))
    }

    /// How a file's `lstm_edge.*` metadata (`file`) differs from this model's, one
    /// `key file-value vs the blob's value` a key, in the spelling the file uses (the
    /// old one when its cell is spelt `Lstm` or `Gru`). Empty when they agree; keys
    /// this module does not know are left alone.
    pub fn differences(&self, file: &HashMap<&str, &str>) -> Vec<String> {
        let legacy = matches!(file.get("lstm_edge.cell"), Some(&("Lstm" | "Gru")));
        let want: HashMap<&str, String> = if legacy {
            self.legacy_entries()
        } else {
            self.entries()
        }
        .into_iter()
        .collect();
        KEYS.iter()
            .filter_map(|&key| {
                let (got, want) = (file.get(key).copied(), want.get(key).map(String::as_str));
                (got != want).then(|| {
                    format!(
                        "{key} {} vs the blob's {}",
                        got.unwrap_or("absent"),
                        want.unwrap_or("absent")
                    )
                })
            })
            .collect()
    }
}

/// The pooling head that `lstm_edge.head` names when it is a last-state or mean
/// head, in either spelling; `None` for other heads and for files without it.
pub fn pooling_head(head: Option<&str>) -> Option<Head> {
    match head? {
        "last" | "Last" => Some(Head::Last),
        "mean" | "Mean" => Some(Head::Mean),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(head: Head, output: Output, pad_id: Option<u16>) -> ModelMetadata {
        ModelMetadata {
            cell: Cell::Gru,
            hidden: 40,
            head,
            output,
            pad_id,
        }
    }

    fn as_map<'a>(entries: &'a [(&'static str, String)]) -> HashMap<&'a str, &'a str> {
        entries.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn entries_use_the_command_lines_words() {
        let tail = model(Head::FlattenTail { maxlen: 200 }, Output::Sigmoid, Some(0));
        let entries = tail.entries();
        assert_eq!(
            as_map(&entries),
            HashMap::from([
                ("lstm_edge.cell", "gru"),
                ("lstm_edge.hidden", "40"),
                ("lstm_edge.head", "flatten"),
                ("lstm_edge.maxlen", "200"),
                ("lstm_edge.truncate", "pre"),
                ("lstm_edge.output", "sigmoid"),
                ("lstm_edge.pad_id", "0"),
            ])
        );
        let generator = model(Head::Last, Output::Softmax { classes: 50 }, None);
        let entries = generator.entries();
        assert_eq!(
            as_map(&entries),
            HashMap::from([
                ("lstm_edge.cell", "gru"),
                ("lstm_edge.hidden", "40"),
                ("lstm_edge.head", "last"),
                ("lstm_edge.output", "softmax"),
                ("lstm_edge.classes", "50"),
            ])
        );
        let post = model(Head::Flatten { maxlen: 9 }, Output::Sigmoid, None).entries();
        assert!(post.contains(&("lstm_edge.truncate", "post".to_string())));
    }

    #[test]
    fn a_file_agrees_in_either_spelling_and_differences_are_named() {
        let flatten = model(Head::Flatten { maxlen: 1500 }, Output::Sigmoid, Some(45));
        for entries in [flatten.entries(), flatten.legacy_entries()] {
            let mut file = as_map(&entries);
            assert_eq!(flatten.differences(&file), Vec::<String>::new());
            file.insert("lstm_edge.something_else", "kept");
            assert_eq!(flatten.differences(&file), Vec::<String>::new());
        }
        let legacy = flatten.legacy_entries();
        assert_eq!(
            legacy[2],
            ("lstm_edge.head", "Flatten { maxlen: 1500 }".to_string())
        );

        let mean = model(Head::Mean, Output::Sigmoid, Some(45));
        assert_eq!(
            mean.differences(&as_map(&flatten.entries())),
            [
                "lstm_edge.head flatten vs the blob's mean",
                "lstm_edge.maxlen 1500 vs the blob's absent",
                "lstm_edge.truncate post vs the blob's absent",
            ]
        );
        assert_eq!(
            mean.differences(&as_map(&flatten.legacy_entries())),
            ["lstm_edge.head Flatten { maxlen: 1500 } vs the blob's Mean"]
        );
        let generator = model(Head::Last, Output::Softmax { classes: 50 }, None);
        let fewer = model(Head::Last, Output::Softmax { classes: 40 }, None).entries();
        assert_eq!(
            generator.differences(&as_map(&fewer)),
            ["lstm_edge.classes 40 vs the blob's 50"]
        );
    }

    #[test]
    fn pooling_heads_read_in_either_spelling() {
        assert_eq!(pooling_head(Some("last")), Some(Head::Last));
        assert_eq!(pooling_head(Some("Mean")), Some(Head::Mean));
        assert_eq!(pooling_head(Some("flatten")), None);
        assert_eq!(pooling_head(None), None);
    }
}
