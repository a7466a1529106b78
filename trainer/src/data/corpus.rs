//! Raw text corpora for the char-level generator (workload G): bytes in, char ids out,
//! cut into fixed windows that predict the next char.

use std::ops::Range;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::tokenize::{code_points, lowercase, CharTable};

/// Reads the files in the given order and concatenates their bytes, with no separator
/// (NLTK's `gutenberg.raw(fileids)` does the same). The bytes are kept as they are: the
/// char table reads invalid UTF-8 (such as the Latin-1 plays) byte by byte. An empty
/// corpus is an error that names its files.
pub fn read_corpus<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<u8>> {
    ensure!(!paths.is_empty(), "no corpus files given");
    let mut text = Vec::new();
    for path in paths {
        let path = path.as_ref();
        ensure!(
            !path.is_dir(),
            "{} is a folder: give the text files in it (`{}/*.txt`)",
            path.display(),
            path.display()
        );
        let start = text.len();
        std::io::Read::read_to_end(&mut super::reviews::open_text(path)?, &mut text)
            .map_err(|e| super::reviews::read_error(path, None, e.into()))?;
        // Binary data would train as symbols.
        super::reviews::refuse_binary(&text[start..], &path.display().to_string(), Some(path))?;
    }
    if text.is_empty() {
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.as_ref().display().to_string())
            .collect();
        bail!(
            "the corpus ({}) is empty: give text files with content",
            names.join(", ")
        );
    }
    Ok(text)
}

const DOTTED_CAPITAL_I: u32 = 0x130;

/// The distinct chars of a text: what a generator's char table must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharSet {
    /// Latin-1 code points that occur, ascending.
    pub symbols: Vec<u8>,
    /// Chars above Latin-1 occur, so the table needs an UNK entry.
    pub needs_unk: bool,
    /// Number of chars (after lowercasing) in the text.
    pub chars: usize,
    /// How many chars map to UNK, the first few distinct ones, and whether there are
    /// other distinct ones.
    pub unk_chars: usize,
    pub unk_examples: Vec<char>,
    pub more_examples: bool,
}

impl CharSet {
    /// Collects the chars of `text`, lowercased as the runtime's table does when `lower`.
    pub fn of(text: &[u8], lower: bool) -> Self {
        let mut seen = [false; 256];
        let mut chars = 0;
        let mut unk_chars = 0;
        let mut unk_examples = Vec::new();
        let mut more_examples = false;
        let mut unknown = |original: u32| {
            unk_chars += 1;
            let shown = char::from_u32(original).unwrap_or(char::REPLACEMENT_CHARACTER);
            if !unk_examples.contains(&shown) {
                if unk_examples.len() < 5 {
                    unk_examples.push(shown);
                } else {
                    more_examples = true;
                }
            }
        };
        for original in code_points(text) {
            let code_point = if lower { lowercase(original) } else { original };
            match u8::try_from(code_point) {
                Ok(byte) => seen[usize::from(byte)] = true,
                Err(_) => unknown(original),
            }
            chars += 1;
            if lower && original == DOTTED_CAPITAL_I {
                // Lowercases to `i` and a combining dot, which the table maps to UNK.
                unknown(original);
                chars += 1;
            }
        }
        let symbols = (0..=255u8).filter(|&b| seen[usize::from(b)]).collect();
        Self {
            symbols,
            needs_unk: unk_chars > 0,
            chars,
            unk_chars,
            unk_examples,
            more_examples,
        }
    }

    /// What maps to UNK, in words (`None` when nothing does).
    pub fn unk_summary(&self) -> Option<String> {
        self.needs_unk.then(|| {
            let shown: String = self.unk_examples.iter().collect();
            format!(
                "{} of its {} chars are beyond Latin-1 and map to UNK ({shown:?}{})",
                self.unk_chars,
                self.chars,
                if self.more_examples { ", ..." } else { "" }
            )
        })
    }

    /// A char table over these symbols (no PAD: generators see no padding).
    pub fn table(&self, lower: bool) -> Result<CharTable<'_>> {
        Ok(CharTable::new(&self.symbols, lower, self.needs_unk, false)?)
    }
}

/// The notebook's generator samples: windows of `window` char ids taken every `step`
/// chars, each labelled with the char that follows it. The last `held_out` share of the
/// windows is never trained on.
#[derive(Debug, Clone)]
pub struct CharWindows {
    ids: Vec<u16>,
    window: usize,
    step: usize,
    count: usize,
    train_count: usize,
}

impl CharWindows {
    /// Maps `text` to ids with `table` and cuts windows as the notebook does:
    /// `for i in range(0, len(text) - window, step)`.
    pub fn new(
        text: &[u8],
        table: &CharTable<'_>,
        window: usize,
        step: usize,
        held_out: f64,
    ) -> Result<Self> {
        let mut ids = Vec::with_capacity(text.len());
        table.for_each_id(text, |id| {
            ids.push(id);
            Ok(())
        })?;
        Self::from_ids(ids, window, step, held_out)
    }

    /// As [`CharWindows::new`], from ids already mapped.
    pub fn from_ids(ids: Vec<u16>, window: usize, step: usize, held_out: f64) -> Result<Self> {
        ensure!(
            window > 0 && step > 0,
            "window ({window}) and step ({step}) must be positive"
        );
        ensure!(
            (0.0..1.0).contains(&held_out),
            "held-out share {held_out} must be at least 0 and below 1"
        );
        ensure!(
            ids.len() > window,
            "the text has {} chars, too short for one window of {window} plus its target",
            ids.len()
        );
        let count = (ids.len() - window).div_ceil(step);
        let held = (count as f64 * held_out).round() as usize;
        Ok(Self {
            ids,
            window,
            step,
            count,
            train_count: count - held,
        })
    }

    /// All char ids of the text.
    pub fn ids(&self) -> &[u16] {
        &self.ids
    }

    /// Chars per window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Number of windows, training and held out.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no windows.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Indices of the training windows (the first ones).
    pub fn train(&self) -> Range<usize> {
        0..self.train_count
    }

    /// Indices of the held-out windows (the last ones).
    pub fn held_out(&self) -> Range<usize> {
        self.train_count..self.count
    }

    /// The training windows cut in two: the first ones, and the last `share` of them,
    /// just before the held-out ones, to validate on. `None` if either would be empty.
    pub fn split_train(&self, share: f64) -> Option<(Range<usize>, Range<usize>)> {
        let cut = self.train_count - (self.train_count as f64 * share).round() as usize;
        (cut > 0 && cut < self.train_count).then_some((0..cut, cut..self.train_count))
    }

    /// Window `index`: its input ids and the id that follows them.
    pub fn get(&self, index: usize) -> Option<(&[u16], u16)> {
        if index >= self.count {
            return None;
        }
        let start = index * self.step;
        let input = self.ids.get(start..start + self.window)?;
        let target = *self.ids.get(start + self.window)?;
        Some((input, target))
    }

    /// The windows at `indices` as one batch: inputs `[indices.len(), window]` row-major,
    /// and their targets. An index out of range is an error.
    pub fn gather(&self, indices: &[usize]) -> Result<(Vec<u16>, Vec<u16>)> {
        let mut inputs = Vec::with_capacity(indices.len() * self.window);
        let mut targets = Vec::with_capacity(indices.len());
        for &index in indices {
            let (input, target) = self.get(index).with_context(|| {
                format!("window {index} is out of range ({} windows)", self.count)
            })?;
            inputs.extend_from_slice(input);
            targets.push(target);
        }
        Ok((inputs, targets))
    }

    /// The training window indices in a seeded shuffled order (one epoch).
    pub fn shuffled_train(&self, seed: u64) -> Vec<usize> {
        let mut order: Vec<usize> = self.train().collect();
        super::shuffle(&mut order, seed);
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_files_are_concatenated_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        std::fs::write(&a, b"Caesar \xE6\n").unwrap();
        std::fs::write(&b, b"Hamlet").unwrap();
        assert_eq!(read_corpus(&[&a, &b]).unwrap(), b"Caesar \xE6\nHamlet");
        assert_eq!(read_corpus(&[&b, &a]).unwrap(), b"HamletCaesar \xE6\n");
        let err = read_corpus(&[dir.path().join("missing.txt")]).unwrap_err();
        assert!(err.to_string().contains("missing.txt"), "{err}");
        assert!(read_corpus::<&Path>(&[]).is_err());
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, b"").unwrap();
        let err = read_corpus(&[&empty]).unwrap_err().to_string();
        assert!(
            err.contains("empty.txt") && err.contains("is empty"),
            "{err}"
        );
        let err = read_corpus(&[dir.path()]).unwrap_err().to_string();
        let folder = dir.path().display();
        assert_eq!(
            err,
            format!("{folder} is a folder: give the text files in it (`{folder}/*.txt`)")
        );
    }

    #[test]
    fn char_set_lowercases_and_reads_latin1_bytes() {
        let set = CharSet::of(b"Ab a\xC6", true);
        assert_eq!(set.symbols, vec![b' ', b'a', b'b', 0xE6]);
        assert!(!set.needs_unk);
        assert_eq!(set.chars, 5);
        // UTF-8 'Æ' is the same char as the Latin-1 byte.
        assert_eq!(CharSet::of("Æ".as_bytes(), true).symbols, vec![0xE6]);
        let cased = CharSet::of(b"Ab", false);
        assert_eq!(cased.symbols, vec![b'A', b'b']);
        let dotted = CharSet::of("İ".as_bytes(), true);
        assert_eq!(
            (dotted.symbols, dotted.needs_unk, dotted.chars),
            (vec![b'i'], true, 2)
        );
        let wide = CharSet::of("a\u{2014}b\u{2014}".as_bytes(), true);
        assert!(wide.needs_unk);
        assert_eq!(
            wide.unk_summary().as_deref(),
            Some("2 of its 4 chars are beyond Latin-1 and map to UNK (\"\u{2014}\")")
        );
        assert_eq!(CharSet::of(b"ab", true).unk_summary(), None);
        let table = wide.table(true).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table.unk_id(), Some(2));
    }

    #[test]
    fn windows_follow_the_notebook() {
        // 10 ids, window 4, step 3: starts 0, 3 (range(0, 6, 3)).
        let ids: Vec<u16> = (0..10).collect();
        let windows = CharWindows::from_ids(ids, 4, 3, 0.0).unwrap();
        assert_eq!(windows.len(), 2);
        assert_eq!(windows.get(0), Some((&[0u16, 1, 2, 3][..], 4)));
        assert_eq!(windows.get(1), Some((&[3u16, 4, 5, 6][..], 7)));
        assert_eq!(windows.get(2), None);
        // 11 ids: starts 0, 3, 6 (range(0, 7, 3)); the last target is id 10.
        let windows = CharWindows::from_ids((0..11).collect(), 4, 3, 0.0).unwrap();
        assert_eq!(windows.len(), 3);
        assert_eq!(windows.get(2), Some((&[6u16, 7, 8, 9][..], 10)));
    }

    #[test]
    fn held_out_windows_are_the_last_ones() {
        let windows = CharWindows::from_ids((0..200).collect(), 10, 1, 0.1).unwrap();
        assert_eq!(windows.len(), 190);
        assert_eq!(windows.train(), 0..171);
        assert_eq!(windows.held_out(), 171..190);
        assert_eq!(windows.split_train(0.1), Some((0..154, 154..171)));
        assert_eq!(windows.split_train(0.0), None);
        let order = windows.shuffled_train(5);
        assert_eq!(order.len(), 171);
        assert!(order.iter().all(|&i| i < 171));
        assert_eq!(order, windows.shuffled_train(5));
        let (inputs, targets) = windows.gather(&[3, 0]).unwrap();
        assert_eq!(
            inputs,
            [(3..13).collect::<Vec<u16>>(), (0..10).collect()].concat()
        );
        assert_eq!(targets, vec![13, 10]);
        let err = windows.gather(&[190]).unwrap_err();
        assert!(
            err.to_string().contains("window 190 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn windows_reject_short_text_and_bad_parameters() {
        assert!(CharWindows::from_ids(vec![1; 4], 4, 1, 0.1).is_err());
        assert!(CharWindows::from_ids(vec![1; 9], 0, 1, 0.1).is_err());
        assert!(CharWindows::from_ids(vec![1; 9], 2, 0, 0.1).is_err());
        assert!(CharWindows::from_ids(vec![1; 9], 2, 1, 1.0).is_err());
    }

    #[test]
    fn windows_from_text_use_the_table() {
        let set = CharSet::of(b"abcabcabcA", true);
        let table = set.table(true).unwrap();
        let windows = CharWindows::new(b"abcabcabcA", &table, 3, 3, 0.0).unwrap();
        assert_eq!(windows.ids(), &[0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(windows.len(), 3);
        assert_eq!(windows.get(2), Some((&[0u16, 1, 2][..], 0)));
    }

    #[test]
    fn a_corpus_file_with_a_nul_byte_is_refused_as_binary() {
        let dir = tempfile::tempdir().unwrap();
        let (text, binary) = (dir.path().join("a.txt"), dir.path().join("b.bin"));
        std::fs::write(&text, b"to be, or not to be").unwrap();
        std::fs::write(&binary, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        assert_eq!(read_corpus(&[&text]).unwrap(), b"to be, or not to be");
        let err = read_corpus(&[&text, &binary]).unwrap_err().to_string();
        assert!(
            err.contains("b.bin holds a NUL byte (line 3, byte 9): it is binary data"),
            "{err}"
        );
    }

    #[test]
    fn a_utf16_corpus_file_without_a_byte_order_mark_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("play.txt");
        let wide: Vec<u8> = "To be, or not to be\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        std::fs::write(&file, wide).unwrap();
        let err = read_corpus(&[&file]).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{} is UTF-16LE text without a byte-order mark",
                file.display()
            )),
            "{err}"
        );
        assert!(err.contains("iconv -f UTF-16LE -t UTF-8"), "{err}");
        assert!(!err.contains("binary"), "{err}");
    }
}
