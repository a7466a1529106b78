//! Pretrained word vectors (word2vec binary or text, GloVe text; optionally gzipped) loaded
//! into an embedding matrix for a vocabulary: row `id` for token id `id`.

use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::tokenize::Vocab;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::reviews::open_text;

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
        )
    }
}

/// Fills rows as entries arrive; an entry whose word is already lowercase beats a
/// case variant of it (`the` over `The`), otherwise the first entry wins.
struct Filler<'v> {
    vocab: &'v Vocab<'v>,
    dim: usize,
    values: Vec<f32>,
    /// Per vocabulary row: 0 unset, 1 set from a case variant, 2 set from the exact word.
    quality: Vec<u8>,
    entries: usize,
}

impl<'v> Filler<'v> {
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
        }
    }
}

/// Loads the vectors of `vocab`'s words from `path` (format detected by
/// [`VectorFormat::detect`]); words are matched ASCII-lowercased as [`Vocab::lookup`] does.
pub fn load_vectors(path: &Path, vocab: &Vocab<'_>, missing: MissingRows) -> Result<Embedding> {
    let format = VectorFormat::detect(path)?;
    load_vectors_as(path, format, vocab, missing)
}

/// As [`load_vectors`], with the format given.
pub fn load_vectors_as(
    path: &Path,
    format: VectorFormat,
    vocab: &Vocab<'_>,
    missing: MissingRows,
) -> Result<Embedding> {
    let mut reader = open_text(path)?;
    match format {
        VectorFormat::Word2VecBinary => read_binary(&mut reader, path, vocab, missing),
        VectorFormat::Word2VecText | VectorFormat::GloveText => {
            read_text(reader, path, format, vocab, missing)
        }
    }
}

fn read_text(
    reader: Box<dyn BufRead>,
    path: &Path,
    format: VectorFormat,
    vocab: &Vocab<'_>,
    missing: MissingRows,
) -> Result<Embedding> {
    let mut filler: Option<Filler<'_>> = None;
    let mut vector = Vec::new();
    let mut lines = reader.split(b'\n').enumerate();
    if format == VectorFormat::Word2VecText {
        let (_, header) = lines
            .next()
            .with_context(|| format!("{}: empty vectors file", path.display()))?;
        let header = header.with_context(|| format!("cannot read {}", path.display()))?;
        let (_, dim) = parse_header(&header).with_context(|| {
            format!(
                "{}:1: expected a word2vec header `count dim`",
                path.display()
            )
        })?;
        filler = Some(Filler::new(vocab, dim, missing));
    }
    for (index, line) in lines {
        let at = || format!("{}:{}", path.display(), index + 1);
        let line = line.with_context(|| format!("{}: cannot read", at()))?;
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let Some(word) = fields.next() else {
            continue;
        };
        vector.clear();
        for field in fields {
            let value = std::str::from_utf8(field)
                .ok()
                .and_then(|s| s.parse::<f32>().ok())
                .filter(|v| v.is_finite())
                .with_context(|| {
                    format!(
                        "{}: {:?} is not a finite number",
                        at(),
                        String::from_utf8_lossy(field)
                    )
                })?;
            vector.push(value);
        }
        ensure!(
            !vector.is_empty(),
            "{}: {:?} has no values after it; each line is a word and its vector (GloVe text, or word2vec text with a `count dim` header)",
            at(),
            String::from_utf8_lossy(word)
        );
        let filler = filler.get_or_insert_with(|| Filler::new(vocab, vector.len(), missing));
        ensure!(
            vector.len() == filler.dim,
            "{}: expected {} values after the word, found {}",
            at(),
            filler.dim,
            vector.len()
        );
        filler.add(word, &vector);
    }
    let filler = filler.with_context(|| format!("{}: no vectors in the file", path.display()))?;
    Ok(filler.finish())
}

fn read_binary(
    reader: &mut Box<dyn BufRead>,
    path: &Path,
    vocab: &Vocab<'_>,
    missing: MissingRows,
) -> Result<Embedding> {
    let mut header = Vec::new();
    reader
        .read_until(b'\n', &mut header)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (count, dim) = parse_header(&header).with_context(|| {
        format!(
            "{}: expected a word2vec binary header `count dim`",
            path.display()
        )
    })?;
    let mut filler = Filler::new(vocab, dim, missing);
    let mut word = Vec::new();
    let mut raw = vec![0u8; 4 * dim];
    let mut vector = vec![0f32; dim];
    for entry in 1..=count {
        let at = || format!("{}: entry {entry} of {count}", path.display());
        word.clear();
        reader
            .read_until(b' ', &mut word)
            .with_context(|| format!("{}: cannot read", at()))?;
        if word.pop() != Some(b' ') {
            bail!("{}: the file ends early (truncated?)", at());
        }
        // Writers end each vector with a newline, which then leads the next word.
        let start = word.iter().position(|b| *b != b'\n').unwrap_or(word.len());
        reader
            .read_exact(&mut raw)
            .with_context(|| format!("{}: the file ends inside the vector", at()))?;
        for (value, bytes) in vector.iter_mut().zip(raw.chunks_exact(4)) {
            *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        if let Some(k) = vector.iter().position(|v| !v.is_finite()) {
            bail!("{}: value {} of the vector is {}", at(), k + 1, vector[k]);
        }
        filler.add(&word[start..], &vector);
    }
    Ok(filler.finish())
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
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap();
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
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap();
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
        let emb = load_vectors(&path, &vocab, missing).unwrap();
        assert_eq!(emb.row(vocab.lookup(b"was")).unwrap(), &[0.5, 0.25]);
        assert_eq!(emb.row(Vocab::PAD).unwrap(), &[0.0, 0.0]);
        let unk = emb.row(Vocab::UNK).unwrap();
        assert!(unk.iter().all(|v| v.abs() <= 0.05 && *v != 0.0), "{unk:?}");
        // Seeded: the same rows again.
        assert_eq!(emb, load_vectors(&path, &vocab, missing).unwrap());
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
            let emb = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap();
            assert_eq!(emb.row(vocab.lookup(b"the")).unwrap(), &[1.5, -2.0]);
            assert_eq!(emb.row(vocab.lookup(b"good")).unwrap(), &[3.0, 4.0]);
            assert_eq!((emb.found, emb.file_words), (2, 3));
            // Cut inside the last vector.
            std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
            let err = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap_err();
            assert!(format!("{err:#}").contains("entry 3 of 3"), "{err:#}");
            // A NaN in the second vector.
            let mut broken = bytes.clone();
            let at = 4 + 4 + 8 + usize::from(newline) + 6 + 4;
            broken[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
            std::fs::write(&path, &broken).unwrap();
            let err = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap_err();
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
        let err = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("g.txt:3: expected 3 values after the word, found 2"),
            "{err}"
        );
        std::fs::write(&path, "2 3\nthe 1 2 3\nmovie 1 x 3\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("g.txt:3: \"x\" is not a finite number"),
            "{err}"
        );
        std::fs::write(&path, "the 1 2 3\nmovie 1 nan 3\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("g.txt:2: \"nan\" is not a finite number"),
            "{err}"
        );
        std::fs::write(&path, "the\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros).unwrap_err();
        assert!(
            err.to_string()
                .contains("g.txt:1: \"the\" has no values after it"),
            "{err}"
        );
        std::fs::write(&path, "").unwrap();
        assert!(load_vectors(&path, &vocab, MissingRows::Zeros).is_err());
    }
}
