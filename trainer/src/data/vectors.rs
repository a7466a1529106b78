//! Pretrained word vectors (word2vec binary or text, GloVe text; optionally gzipped) loaded
//! into an embedding matrix for a vocabulary: row `id` for token id `id`.

use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::tokenize::Vocab;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::reviews::{open_text, read_error};

/// The layout of a vectors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorFormat {
    /// `count dim` header line, then per word: the word, a space, `dim` little-endian f32.
    Word2VecBinary,
    /// `count dim` header line, then `word v1 .. vdim` lines.
    Word2VecText,
    /// `word v1 .. vdim` lines, no header.
    GloveText,
}

impl VectorFormat {
    /// `.bin` (or `.bin.gz`) is word2vec binary; otherwise a first line of two integers
    /// marks word2vec text, and anything else is GloVe.
    pub fn detect(path: &Path) -> Result<Self> {
        let name = path.to_string_lossy();
        if name.strip_suffix(".gz").unwrap_or(&name).ends_with(".bin") {
            return Ok(Self::Word2VecBinary);
        }
        let mut first = Vec::new();
        open_text(path)?
            .read_until(b'\n', &mut first)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(if parse_header(&first).is_some() {
            Self::Word2VecText
        } else {
            Self::GloveText
        })
    }
}

/// `count dim` with both positive.
fn parse_header(line: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let count = fields.next()?.parse().ok()?;
    let dim = fields.next()?.parse().ok()?;
    (fields.next().is_none() && dim > 0).then_some((count, dim))
}

/// What goes in the rows of words the file does not have (and UNK's row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MissingRows {
    Zeros,
    /// Uniform in `[-scale, scale)`, from a ChaCha8 stream with this seed.
    Random {
        scale: f32,
        seed: u64,
    },
}

/// An embedding matrix `[vocab.len() + 2, dim]`, row-major; row 0 (PAD) is zeros.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub dim: usize,
    pub values: Vec<f32>,
    /// Vocabulary words that got a vector from the file, and those that did not.
    pub found: usize,
    pub missing: usize,
    /// Entries read from the file.
    pub file_words: usize,
    /// Entries for a vocabulary word that already had one as good (the first is kept).
    pub repeats: usize,
}

impl Embedding {
    /// Number of rows (vocabulary words + PAD + UNK).
    pub fn rows(&self) -> usize {
        self.values.len() / self.dim.max(1)
    }

    /// The row for token id `id`.
    pub fn row(&self, id: u16) -> Option<&[f32]> {
        let start = usize::from(id) * self.dim;
        self.values.get(start..start + self.dim)
    }
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.found + self.missing;
        let share = if total == 0 {
            0.0
        } else {
            100.0 * self.found as f64 / total as f64
        };
        write!(
            f,
            "{} of {} vocabulary words have a vector ({share:.1}%), dimension {}, {} entries read",
            self.found, total, self.dim, self.file_words
        )?;
        if self.repeats > 0 {
            write!(
                f,
                ", {} repeating an earlier entry's word (the first kept)",
                self.repeats
            )?;
        }
        Ok(())
    }
}

/// The embedding's rows, filled as entries arrive; an entry whose word is already
/// lowercase beats a case variant of it (`the` over `The`), otherwise the first entry
/// wins and later ones are counted as repeats.
struct Rows<'v> {
    vocab: &'v Vocab<'v>,
    dim: usize,
    values: Vec<f32>,
    /// Per vocabulary row: 0 unset, 1 set from a case variant, 2 set from the exact word.
    quality: Vec<u8>,
    entries: usize,
    repeats: usize,
}

impl<'v> Rows<'v> {
    fn new(vocab: &'v Vocab<'v>, dim: usize, missing: MissingRows) -> Self {
        let rows = vocab.len() + 2;
        let mut values = vec![0.0f32; rows * dim];
        if let MissingRows::Random { scale, seed } = missing {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let scale = scale.abs();
            for value in values.iter_mut().skip(dim) {
                *value = if scale > 0.0 {
                    rng.random_range(-scale..scale)
                } else {
                    0.0
                };
            }
        }
        Self {
            vocab,
            dim,
            values,
            quality: vec![0; rows],
            entries: 0,
            repeats: 0,
        }
    }

    fn add(&mut self, word: &[u8], vector: &[f32]) {
        self.entries += 1;
        let id = self.vocab.lookup(word);
        if id < 2 {
            return;
        }
        let row = usize::from(id);
        let quality = if word.iter().any(u8::is_ascii_uppercase) {
            1
        } else {
            2
        };
        if let Some(current) = self.quality.get_mut(row) {
            if *current < quality {
                *current = quality;
                if let Some(target) = self.values.get_mut(row * self.dim..(row + 1) * self.dim) {
                    target.copy_from_slice(vector);
                }
            } else if *current == quality {
                self.repeats += 1;
            }
        }
    }

    fn finish(self) -> Embedding {
        let found = self.quality.iter().skip(2).filter(|&&q| q > 0).count();
        Embedding {
            dim: self.dim,
            values: self.values,
            found,
            missing: self.vocab.len() - found,
            file_words: self.entries,
            repeats: self.repeats,
        }
    }
}

/// Largest magnitude a vector value may have: word vectors stay within a few units,
/// and anything far beyond is a misread file (text read as binary, a word with a space).
const MAX_VALUE: f32 = 1e4;

/// Loads the vectors of `vocab`'s words from `path` (format detected by
/// [`VectorFormat::detect`]); words are matched ASCII-lowercased as [`Vocab::lookup`] does.
/// With `expected_dim`, a file of another width is refused before anything is allocated.
/// A file that gives none of the vocabulary's words a vector is refused too.
pub fn load_vectors(
    path: &Path,
    vocab: &Vocab<'_>,
    missing: MissingRows,
    expected_dim: Option<usize>,
) -> Result<Embedding> {
    let format = VectorFormat::detect(path)?;
    let mut reader = open_text(path)?;
    let filler = Filler {
        vocab,
        missing,
        expected_dim,
        path,
        rows: None,
    };
    let embedding = match format {
        VectorFormat::Word2VecBinary => read_binary(&mut reader, filler)?,
        VectorFormat::Word2VecText | VectorFormat::GloveText => read_text(reader, format, filler)?,
    };
    ensure!(
        embedding.file_words > 0,
        "{}: the file holds no vectors: give a word2vec or GloVe file with entries",
        path.display()
    );
    ensure!(
        embedding.found > 0,
        "{}: none of the vocabulary's {} words has a vector among its {} entries (is it a \
         file for this language, with words as the reviews write them?)",
        path.display(),
        embedding.missing,
        embedding.file_words
    );
    Ok(embedding)
}

/// Where entries go: the vocabulary, the file they come from, and the rows, made once
/// the file's width is known and checked.
struct Filler<'v, 'p> {
    vocab: &'v Vocab<'v>,
    missing: MissingRows,
    expected_dim: Option<usize>,
    path: &'p Path,
    rows: Option<Rows<'v>>,
}

impl<'v> Filler<'v, '_> {
    /// The rows for vectors of width `dim`, refusing another width than expected
    /// before allocating (`source` says where the width was read).
    fn rows(&mut self, dim: usize, source: &str) -> Result<&mut Rows<'v>> {
        if self.rows.is_none() {
            if let Some(expected) = self.expected_dim {
                ensure!(
                    dim == expected,
                    "{} has {dim}-dimensional vectors ({source}) but the model's embedding is \
                     {expected} wide: pass --embed-dim {dim}",
                    self.path.display()
                );
            }
            self.rows = Some(Rows::new(self.vocab, dim, self.missing));
        }
        Ok(self.rows.as_mut().expect("set above"))
    }
}

fn read_text(
    reader: Box<dyn BufRead>,
    format: VectorFormat,
    mut filler: Filler,
) -> Result<Embedding> {
    let path = filler.path;
    let mut vector = Vec::new();
    let mut lines = reader.split(b'\n').enumerate();
    let mut declared = None;
    let mut width_source = "as on its first line";
    if format == VectorFormat::Word2VecText {
        let (_, header) = lines
            .next()
            .with_context(|| format!("{}: empty vectors file", path.display()))?;
        let header = header.map_err(|e| read_error(path, Some(1), e.into()))?;
        let (count, dim) = parse_header(&header).with_context(|| {
            format!(
                "{}:1: expected a word2vec header `count dim`",
                path.display()
            )
        })?;
        declared = Some(count);
        width_source = "as its header on line 1 says";
        filler.rows(dim, width_source)?;
    }
    for (index, line) in lines {
        let at = || format!("{}:{}", path.display(), index + 1);
        let line = line.map_err(|e| read_error(path, Some(index + 1), e.into()))?;
        let fields: Vec<&[u8]> = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let Some((word, values)) = fields.split_first() else {
            continue;
        };
        // A word may hold spaces (GloVe 840B has `. . .`): the vector is the last
        // fields, and a word with spaces is never a vocabulary word. Extra fields that
        // are numbers are a corrupt line instead, for the check below.
        let dim = filler.rows.as_ref().map(|r| r.dim);
        let spaced_word = match dim {
            Some(dim) if values.len() > dim => values[..values.len() - dim]
                .iter()
                .any(|f| std::str::from_utf8(f).map_or(true, |t| t.parse::<f32>().is_err())),
            _ => false,
        };
        let values = match dim {
            Some(dim) if spaced_word => &values[values.len() - dim..],
            _ => values,
        };
        vector.clear();
        for field in values {
            let value = std::str::from_utf8(field)
                .ok()
                .and_then(|s| s.parse::<f32>().ok())
                .filter(|v| v.is_finite())
                .with_context(|| {
                    let binary = field.iter().any(|b| !b.is_ascii_graphic());
                    format!(
                        "{}: {:?} is not a finite number{}",
                        at(),
                        String::from_utf8_lossy(field),
                        if binary {
                            " (binary data: a word2vec binary file must be named .bin)"
                        } else {
                            ""
                        }
                    )
                })?;
            ensure!(
                value.abs() <= MAX_VALUE,
                "{}: {value} is too large for a word vector (over {MAX_VALUE}): is this the right file?",
                at()
            );
            vector.push(value);
        }
        ensure!(
            !vector.is_empty(),
            "{}: {:?} has no values after it; each line is a word and its vector (GloVe text, or word2vec text with a `count dim` header)",
            at(),
            String::from_utf8_lossy(word)
        );
        let rows = filler.rows(vector.len(), width_source)?;
        ensure!(
            vector.len() == rows.dim,
            "{}: expected {} values after the word ({width_source}), found {}",
            at(),
            rows.dim,
            vector.len()
        );
        if spaced_word {
            rows.entries += 1;
        } else {
            rows.add(word, &vector);
        }
    }
    let rows = filler
        .rows
        .with_context(|| format!("{}: no vectors in the file", path.display()))?;
    if let Some(count) = declared {
        ensure!(
            rows.entries == count,
            "{}: the header on line 1 says {count} entries but the file holds {}: a truncated \
             download, or a header to fix",
            path.display(),
            rows.entries
        );
    }
    Ok(rows.finish())
}

fn read_binary(reader: &mut Box<dyn BufRead>, mut filler: Filler) -> Result<Embedding> {
    let path = filler.path;
    let mut header = Vec::new();
    reader
        .read_until(b'\n', &mut header)
        .map_err(|e| read_error(path, Some(1), e.into()))?;
    let (count, dim) = parse_header(&header).with_context(|| {
        format!(
            "{}: expected a word2vec binary header `count dim`",
            path.display()
        )
    })?;
    let rows = filler.rows(dim, "as its header says")?;
    let mut word = Vec::new();
    let mut raw = vec![0u8; 4 * dim];
    let mut vector = vec![0f32; dim];
    for entry in 1..=count {
        let at = || format!("{}: entry {entry} of {count}", path.display());
        word.clear();
        reader
            .read_until(b' ', &mut word)
            .map_err(|e| read_error(path, None, e.into()).context(at()))?;
        if word.pop() != Some(b' ') {
            bail!("{}: the file ends early (truncated?)", at());
        }
        // Writers end each vector with a newline (some with CR LF), which then leads the
        // next word.
        let start = word
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(word.len());
        reader
            .read_exact(&mut raw)
            .with_context(|| format!("{}: the file ends inside the vector", at()))?;
        if entry == 1
            && raw
                .iter()
                .all(|b| b.is_ascii_digit() || b" .-+eE\n\r\t".contains(b))
        {
            bail!(
                "{}: the first vector is text, not binary floats: name a word2vec text file \
                 .txt, not .bin",
                at()
            );
        }
        for (value, bytes) in vector.iter_mut().zip(raw.chunks_exact(4)) {
            *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        if let Some(k) = vector
            .iter()
            .position(|v| !v.is_finite() || v.abs() > MAX_VALUE)
        {
            bail!(
                "{}: value {} of the vector is {}, not a word vector's (is a word with a space \
                 in it, or is the header's dimension wrong?)",
                at(),
                k + 1,
                vector[k]
            );
        }
        rows.add(&word[start..], &vector);
    }
    // Only whitespace may follow the last entry; read it in the reader's own chunks.
    loop {
        let chunk = reader
            .fill_buf()
            .map_err(|e| read_error(path, None, e.into()))?;
        if chunk.is_empty() {
            break;
        }
        ensure!(
            chunk.iter().all(u8::is_ascii_whitespace),
            "{}: data follows entry {count}, the last the header announces: fix the header's count",
            path.display()
        );
        let len = chunk.len();
        reader.consume(len);
    }
    Ok(filler
        .rows
        .take()
        .expect("made before the entries")
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::encode::build_word_vocab;

    fn vocab_words() -> crate::data::WordVocab {
        build_word_vocab([&b"the movie was good"[..]], 10).unwrap()
    }

    #[test]
    fn glove_text_fills_rows_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glove.6B.3d.txt");
        std::fs::write(
            &path,
            "the 1 2 3\nThe 9 9 9\nfilm 4 5 6\ngood -1 0.5 2e-1 \n",
        )
        .unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        assert_eq!(
            VectorFormat::detect(&path).unwrap(),
            VectorFormat::GloveText
        );
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap();
        assert_eq!((emb.dim, emb.rows()), (3, 6));
        assert_eq!(emb.row(vocab.lookup(b"the")).unwrap(), &[1.0, 2.0, 3.0]);
        assert_eq!(emb.row(vocab.lookup(b"good")).unwrap(), &[-1.0, 0.5, 0.2]);
        assert_eq!(emb.row(vocab.lookup(b"movie")).unwrap(), &[0.0; 3]);
        assert_eq!(emb.row(Vocab::PAD).unwrap(), &[0.0; 3]);
        assert_eq!((emb.found, emb.missing, emb.file_words), (2, 2, 4));
        assert_eq!(
            emb.to_string(),
            "2 of 4 vocabulary words have a vector (50.0%), dimension 3, 4 entries read"
        );
    }

    #[test]
    fn exact_lowercase_entry_beats_a_case_variant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        std::fs::write(&path, "Movie 1 1\nmovie 2 2\nMOVIE 3 3\n").unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap();
        assert_eq!(emb.row(vocab.lookup(b"movie")).unwrap(), &[2.0, 2.0]);
    }

    #[test]
    fn word2vec_text_with_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w2v.txt");
        std::fs::write(&path, "2 2\nwas 0.5 0.25\nmovie 1 -1\n").unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        assert_eq!(
            VectorFormat::detect(&path).unwrap(),
            VectorFormat::Word2VecText
        );
        let missing = MissingRows::Random {
            scale: 0.05,
            seed: 3,
        };
        let emb = load_vectors(&path, &vocab, missing, None).unwrap();
        assert_eq!(emb.row(vocab.lookup(b"was")).unwrap(), &[0.5, 0.25]);
        assert_eq!(emb.row(Vocab::PAD).unwrap(), &[0.0, 0.0]);
        let unk = emb.row(Vocab::UNK).unwrap();
        assert!(unk.iter().all(|v| v.abs() <= 0.05 && *v != 0.0), "{unk:?}");
        // Seeded: the same rows again.
        assert_eq!(emb, load_vectors(&path, &vocab, missing, None).unwrap());
    }

    #[test]
    fn word2vec_binary_with_and_without_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        for newline in [true, false] {
            let mut bytes = b"3 2\n".to_vec();
            for (word, v) in [
                ("the", [1.5f32, -2.0]),
                ("zebra", [0.0, 0.0]),
                ("good", [3.0, 4.0]),
            ] {
                bytes.extend_from_slice(word.as_bytes());
                bytes.push(b' ');
                for x in v {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
                if newline {
                    bytes.push(b'\n');
                }
            }
            let path = dir.path().join("vectors.bin");
            std::fs::write(&path, &bytes).unwrap();
            let emb = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap();
            assert_eq!(emb.row(vocab.lookup(b"the")).unwrap(), &[1.5, -2.0]);
            assert_eq!(emb.row(vocab.lookup(b"good")).unwrap(), &[3.0, 4.0]);
            assert_eq!((emb.found, emb.file_words), (2, 3));
            // Cut inside the last vector.
            std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
            let err = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap_err();
            assert!(format!("{err:#}").contains("entry 3 of 3"), "{err:#}");
            // A NaN in the second vector.
            let mut broken = bytes.clone();
            let at = 4 + 4 + 8 + usize::from(newline) + 6 + 4;
            broken[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
            std::fs::write(&path, &broken).unwrap();
            let err = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap_err();
            assert!(
                format!("{err:#}").contains("entry 2 of 3: value 2 of the vector is NaN"),
                "{err:#}"
            );
        }
    }

    #[test]
    fn dimension_mismatch_and_bad_numbers_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        let path = dir.path().join("g.txt");
        std::fs::write(&path, "the 1 2 3\n\nmovie 1 2\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "g.txt:3: expected 3 values after the word (as on its first line), found 2"
            ),
            "{err}"
        );
        std::fs::write(&path, "2 3\nthe 1 2 3\nmovie 1 x 3\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("g.txt:3: \"x\" is not a finite number"),
            "{err}"
        );
        std::fs::write(&path, "the 1 2 3\nmovie 1 nan 3\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("g.txt:2: \"nan\" is not a finite number"),
            "{err}"
        );
        std::fs::write(&path, "the\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("g.txt:1: \"the\" has no values after it"),
            "{err}"
        );
        std::fs::write(&path, "").unwrap();
        assert!(load_vectors(&path, &vocab, MissingRows::Zeros, None).is_err());
    }

    fn write_binary(path: &Path, header: &str, entries: &[(&str, [f32; 2])], end: &[u8]) {
        let mut bytes = header.as_bytes().to_vec();
        for (word, v) in entries {
            bytes.extend_from_slice(word.as_bytes());
            bytes.push(b' ');
            for x in v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            bytes.extend_from_slice(end);
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn counts_and_widths_are_checked_against_the_header_and_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        let load = |path: &Path, dim| {
            load_vectors(path, &vocab, MissingRows::Zeros, dim).map_err(|e| format!("{e:#}"))
        };
        let bin = dir.path().join("v.bin");
        // A width far past the model's is refused before any row is made.
        std::fs::write(&bin, "1 4000000000000000000\nthe ").unwrap();
        let err = load(&bin, Some(3)).unwrap_err();
        assert!(
            err.contains("4000000000000000000-dimensional") && err.contains("--embed-dim"),
            "{err}"
        );
        // Entries past the header's count, and CR LF between entries.
        let entries = [
            ("the", [1.0, 2.0]),
            ("movie", [3.0, 4.0]),
            ("good", [5.0, 6.0]),
        ];
        write_binary(&bin, "2 2\n", &entries, b"\r\n");
        let err = load(&bin, None).unwrap_err();
        assert!(
            err.contains("data follows entry 2") && err.contains("fix the header's count"),
            "{err}"
        );
        write_binary(&bin, "3 2\n", &entries, b"\r\n");
        let emb = load(&bin, Some(2)).unwrap();
        assert_eq!((emb.found, emb.file_words), (3, 3));
        // A text file named .bin.
        std::fs::write(&bin, "2 1\nthe 1234\nmovie 5678\n").unwrap();
        let err = load(&bin, None).unwrap_err();
        assert!(err.contains("the first vector is text"), "{err}");

        let txt = dir.path().join("v.txt");
        std::fs::write(&txt, "9 2\nthe 1 2\nmovie 3 4\n").unwrap();
        let err = load(&txt, None).unwrap_err();
        assert!(err.contains("says 9 entries but the file holds 2"), "{err}");
        std::fs::write(&txt, "zebra 1 2\nyak 3 4\n").unwrap();
        let err = load(&txt, None).unwrap_err();
        assert!(
            err.contains("none of the vocabulary's 4 words has a vector"),
            "{err}"
        );
        std::fs::write(&txt, "the 1e30 2\n").unwrap();
        let err = load(&txt, None).unwrap_err();
        assert!(err.contains("too large for a word vector"), "{err}");
    }

    #[test]
    fn glove_lines_with_spaced_words_repeats_and_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        let path = dir.path().join("glove.840B.txt");
        std::fs::write(
            &path,
            "\u{feff}the 1 2\n. . . 3 4\nat name@domain.com 5 6\nthe 7 8\ngood 9 9\n",
        )
        .unwrap();
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros, Some(2)).unwrap();
        assert_eq!(emb.row(vocab.lookup(b"the")).unwrap(), &[1.0, 2.0]);
        assert_eq!((emb.found, emb.file_words, emb.repeats), (2, 5, 1));
        assert!(
            emb.to_string()
                .ends_with(", 1 repeating an earlier entry's word (the first kept)"),
            "{emb}"
        );
        // A spaced word does not lend its vector to its first part.
        std::fs::write(&path, "the 1 2\nwas movie 3 4\ngood 9 9\n").unwrap();
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros, Some(2)).unwrap();
        assert_eq!(emb.row(vocab.lookup(b"was")).unwrap(), &[0.0, 0.0]);
        assert_eq!((emb.found, emb.file_words), (2, 3));
        // One number too many is a corrupt line, not a spaced word.
        std::fs::write(&path, "the 1 2\ngood 5 9 9\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros, Some(2)).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("expected 2 values after the word (as on its first line), found 3"),
            "{err}"
        );
    }
}
