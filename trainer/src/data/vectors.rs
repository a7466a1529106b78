//! Pretrained word vectors (word2vec binary or text, GloVe text; optionally gzipped) loaded
//! into an embedding matrix for a vocabulary: row `id` for token id `id`.

use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use lstm_edge_runtime::tokenize::Vocab;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::reviews::{escape_controls, excerpt, open_text, read_error};

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
        let ended = read_bounded(&mut *open_text(path)?, b'\n', MAX_HEADER, &mut first)
            .map_err(|e| read_error(path, Some(1), e.into()))?;
        Ok(if ended && parse_header(&first).is_some() {
            Self::Word2VecText
        } else {
            Self::GloveText
        })
    }
}

/// Longest binary word, header line and text line read before a file is refused, so a
/// malformed file or an endless stream (/dev/zero) is never buffered whole.
const MAX_WORD: usize = 4096;
const MAX_HEADER: usize = 256;
const MAX_LINE: usize = 1 << 20;

/// Widest vector the model format holds (a u16), as for `--embed-dim`.
const MAX_DIM: usize = u16::MAX as usize;

/// Reads through `delim` into `buf` (cleared first), at most `limit` bytes; false when
/// the limit came before `delim` and the end of the file.
fn read_bounded(
    reader: &mut dyn BufRead,
    delim: u8,
    limit: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    buf.clear();
    reader.take(limit as u64).read_until(delim, buf)?;
    Ok(buf.len() < limit || buf.last() == Some(&delim))
}

/// The field as a number, if it is one (`nan` and `inf` included).
fn number(field: &[u8]) -> Option<f32> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn finite(field: &[u8]) -> bool {
    number(field).is_some_and(f32::is_finite)
}

/// A line's whitespace-separated fields.
fn fields(line: &[u8]) -> Vec<&[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .collect()
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
    /// A text file's last line when it has no line end, as a file cut short in its
    /// last number would (`0.123` read as `0.1`).
    pub unended_last_line: Option<usize>,
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
        let percent = 100.0 * self.found as f64 / total.max(1) as f64;
        // Rounding never reads as none or all when it is neither.
        let share = match percent {
            p if self.found > 0 && p < 0.1 => "under 0.1".to_string(),
            p if self.missing > 0 && p > 99.9 => "over 99.9".to_string(),
            p => format!("{p:.1}"),
        };
        write!(
            f,
            "{} of {} vocabulary words have a vector ({share}%), dimension {}, {} entries read",
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
            unended_last_line: None,
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
        VectorFormat::Word2VecText | VectorFormat::GloveText => {
            read_vectors_text(reader, format, filler)?
        }
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

/// Where the file's vector width was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    Header,
    FirstLine,
}

impl fmt::Display for Width {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "as its header on line 1 says",
            Self::FirstLine => "as on its first line",
        })
    }
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
    /// The rows for vectors of width `dim`, refusing an impossible width or another
    /// than expected before allocating.
    fn rows(&mut self, dim: usize, width: Width) -> Result<&mut Rows<'v>> {
        if self.rows.is_none() {
            // Past the format's limit no --embed-dim fits: the width itself is wrong.
            ensure!(
                dim <= MAX_DIM,
                "{}:1: {}",
                self.path.display(),
                match width {
                    Width::Header => format!(
                        "the header's width {dim} is not possible (the model format allows at \
                         most {MAX_DIM}): the header is corrupt"
                    ),
                    Width::FirstLine => format!(
                        "{dim} values after the word, more than the model format allows \
                         ({MAX_DIM}): is this a word-vectors file?"
                    ),
                }
            );
            if let Some(expected) = self.expected_dim {
                ensure!(
                    dim == expected,
                    "{} has {dim}-dimensional vectors ({width}) but the model's embedding is \
                     {expected} wide: pass --embed-dim {dim}",
                    self.path.display()
                );
            }
            self.rows = Some(Rows::new(self.vocab, dim, self.missing));
        }
        Ok(self.rows.as_mut().expect("set above"))
    }
}

fn read_vectors_text(
    mut reader: Box<dyn BufRead>,
    format: VectorFormat,
    mut filler: Filler,
) -> Result<Embedding> {
    let path = filler.path;
    let mut vector = Vec::new();
    let mut line = Vec::new();
    let mut declared = None;
    let mut width = Width::FirstLine;
    if format == VectorFormat::Word2VecText {
        let ended = read_bounded(&mut *reader, b'\n', MAX_HEADER, &mut line)
            .map_err(|e| read_error(path, Some(1), e.into()))?;
        let (count, dim) = ended
            .then(|| parse_header(&line))
            .flatten()
            .with_context(|| {
                format!(
                    "{}:1: expected a word2vec header `count dim`",
                    path.display()
                )
            })?;
        declared = Some(count);
        width = Width::Header;
        filler.rows(dim, width)?;
    }
    let first_entry = if declared.is_some() { 2 } else { 1 };
    let mut unended = None;
    for index in first_entry.. {
        let at = || format!("{}:{index}", path.display());
        // Binary data right after a `count dim` header is word2vec binary named as text.
        let (data, not_text) = if format == VectorFormat::Word2VecText && index == 2 {
            (
                "binary data after a `count dim` header",
                "a word2vec binary file must be named .bin",
            )
        } else {
            ("binary data", "not a GloVe or word2vec text file")
        };
        let ended = read_bounded(&mut *reader, b'\n', MAX_LINE, &mut line)
            .map_err(|e| read_error(path, Some(index), e.into()))?;
        if line.is_empty() {
            break;
        }
        ensure!(
            ended,
            "{}: no line end within {} MiB: {not_text}",
            at(),
            MAX_LINE >> 20
        );
        let fields = fields(&line);
        let Some((word, values)) = fields.split_first() else {
            continue;
        };
        unended = (line.last() != Some(&b'\n')).then_some(index);
        // A first line of a few whole numbers is a word2vec header gone wrong, not a
        // word with a vector of its own.
        let whole = |f: &&[u8]| std::str::from_utf8(f).is_ok_and(|t| t.parse::<u64>().is_ok());
        ensure!(
            !(index == 1 && fields.len() <= 3 && fields.iter().all(whole)),
            "{}: expected a word2vec header `count dim` (two numbers, dim above 0) or a \
             word and its vector, found {:?}: fix the header",
            at(),
            excerpt(&line, 40).trim_end()
        );
        // A word may hold spaces (GloVe 840B has `. . .`): the vector is the last fields,
        // and a word with spaces is never a vocabulary word. Once the width is known, extra
        // fields that are all finite numbers are a corrupt line instead, for the check
        // below; on the first line, the word's parts are the fields that are no number.
        let dim = filler.rows.as_ref().map(|r| r.dim);
        let word_parts = match dim {
            Some(dim) if values.len() > dim => {
                let extra = &values[..values.len() - dim];
                if extra.iter().all(|f| finite(f)) {
                    0
                } else {
                    extra.len()
                }
            }
            Some(_) => 0,
            None => {
                let lead = values.iter().take_while(|f| number(f).is_none()).count();
                if lead < values.len() && values[lead..].iter().all(|f| number(f).is_some()) {
                    lead
                } else {
                    0
                }
            }
        };
        vector.clear();
        for field in &values[word_parts..] {
            let value = number(field).filter(|v| v.is_finite()).with_context(|| {
                let binary = field.iter().any(|b| !b.is_ascii_graphic());
                format!(
                    "{}: {:?} is not a finite number{}",
                    at(),
                    excerpt(field, 40),
                    if binary {
                        format!(" ({data}: {not_text})")
                    } else if index == first_entry {
                        " (each line of a vectors file is a word and its numbers: is this a \
                         GloVe or word2vec text file?)"
                            .to_string()
                    } else {
                        String::new()
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
            excerpt(word, 40)
        );
        let rows = filler.rows(vector.len(), width)?;
        if vector.len() != rows.dim {
            // Numbers past the width may be part of the word (`route 66`): say so.
            let spaced = (vector.len() > rows.dim).then(|| {
                let parts = &fields[..=vector.len() - rows.dim];
                let parts: Vec<_> = parts
                    .iter()
                    .map(|p| escape_controls(&excerpt(p, 40)))
                    .collect();
                format!(
                    ": a corrupt line, or a word with a space before a number (`{}`), which \
                     cannot be told apart: fix the line or drop it",
                    parts.join(" ")
                )
            });
            bail!(
                "{}: expected {} values after the word ({width}), found {}{}",
                at(),
                rows.dim,
                vector.len(),
                spaced.unwrap_or_default()
            );
        }
        if word_parts > 0 {
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
    let mut embedding = rows.finish();
    embedding.unended_last_line = unended;
    Ok(embedding)
}

/// Why a `.bin` file's first line is no word2vec header, and what to pass instead
/// (`ended`: the line ended within the bytes read).
fn binary_header_error(path: &Path, first: &[u8], ended: bool) -> anyhow::Error {
    let file = path.display();
    // fastText's own .bin (magic 0x2F4F16BA, little-endian) sits beside its .vec text.
    if first.starts_with(&[0xba, 0x16, 0x4f, 0x2f]) {
        return anyhow!(
            "{file} is a fastText model, not word2vec binary: pass fastText's .vec text file \
             instead (e.g. cc.en.300.vec.gz beside cc.en.300.bin.gz)"
        );
    }
    // A line cut at the limit may end inside a number.
    let fields = fields(first);
    let values = fields.get(1..).unwrap_or_default();
    let values = if ended {
        values
    } else {
        &values[..values.len().saturating_sub(1)]
    };
    if !values.is_empty() && values.iter().all(|f| finite(f)) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let text_name = match name.strip_suffix(".bin.gz") {
            Some(stem) => format!("{stem}.txt.gz"),
            None => format!("{}.txt", name.strip_suffix(".bin").unwrap_or(&name)),
        };
        return anyhow!(
            "{file} looks like a GloVe text file (`word v1 .. vn` lines, no `count dim` \
             header), but a .bin name means word2vec binary: name it {text_name}"
        );
    }
    if !ended {
        return anyhow!(
            "{file}: expected a word2vec binary header `count dim`, but line 1 has no end \
             within {MAX_HEADER} bytes: this is not a word2vec binary file"
        );
    }
    anyhow!(
        "{file}:1: expected a word2vec binary header `count dim`, found {:?}",
        excerpt(first.trim_ascii(), 40)
    )
}

fn read_binary(reader: &mut Box<dyn BufRead>, mut filler: Filler) -> Result<Embedding> {
    let path = filler.path;
    let mut header = Vec::new();
    let ended = read_bounded(&mut **reader, b'\n', MAX_HEADER, &mut header)
        .map_err(|e| read_error(path, Some(1), e.into()))?;
    let Some((count, dim)) = ended.then(|| parse_header(&header)).flatten() else {
        return Err(binary_header_error(path, &header, ended));
    };
    let rows = filler.rows(dim, Width::Header)?;
    let mut word = Vec::new();
    let mut raw = vec![0u8; 4 * dim];
    let mut vector = vec![0f32; dim];
    for entry in 1..=count {
        let at = || format!("{}: entry {entry} of {count}", path.display());
        let ended = read_bounded(&mut **reader, b' ', MAX_WORD, &mut word)
            .map_err(|e| read_error(path, None, e.into()).context(at()))?;
        ensure!(
            ended,
            "{}: no space within {MAX_WORD} bytes, where the word should end: the header's \
             width ({dim}) is wrong, or this is not word2vec binary",
            at()
        );
        if word.pop() != Some(b' ') {
            bail!(
                "{}: the file ends after {} complete entries, but the header says {count}: a \
                 truncated download, or fix the header's count",
                at(),
                entry - 1
            );
        }
        // Writers end each vector with a newline (some with CR LF), which then leads the
        // next word.
        let start = word
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(word.len());
        reader
            .read_exact(&mut raw)
            .map_err(|e| read_error(path, None, e.into()))
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
                "{}: value {} of the vector is {}, not a word vector's (a word with a space in \
                 it before, a header dimension that is wrong, or a damaged file?)",
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
        assert_eq!(emb.unended_last_line, None);
        let few = Embedding {
            found: 3,
            missing: 9997,
            ..emb.clone()
        };
        assert!(few
            .to_string()
            .starts_with("3 of 10000 vocabulary words have a vector (under 0.1%)"));
        let most = Embedding {
            found: 9997,
            missing: 3,
            ..emb.clone()
        };
        assert!(most.to_string().contains("(over 99.9%)"));
        // A last line without its end is marked (a cut download reads `0.123` as `0.1`);
        // trailing blanks after an ended line are not.
        for (text, unended) in [
            ("the 1 2 3\ngood -1 0.5 0.1", Some(2)),
            ("the 1 2 3\r\ngood -1 0.5 0.1\r\n  ", None),
        ] {
            std::fs::write(&path, text).unwrap();
            let emb = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap();
            assert_eq!(emb.row(vocab.lookup(b"good")).unwrap(), &[-1.0, 0.5, 0.1]);
            assert_eq!(emb.unended_last_line, unended, "{text:?}");
        }
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
        // A header of three numbers, or a zero width, is named, not read as a word.
        for header in ["2 2 0", "2 0"] {
            std::fs::write(&path, format!("{header}\nwas 0.5 0.25\nmovie 1 -1\n")).unwrap();
            let err = format!(
                "{:#}",
                load_vectors(&path, &vocab, missing, Some(2)).unwrap_err()
            );
            assert!(
                err.ends_with(&format!(
                    "w2v.txt:1: expected a word2vec header `count dim` (two numbers, dim above 0) \
                     or a word and its vector, found {header:?}: fix the header"
                )),
                "{err}"
            );
        }
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
    fn a_gzipped_binary_cut_inside_a_vector_gets_the_gzip_check() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        let plain = dir.path().join("v.bin");
        write_binary(
            &plain,
            "2 2\n",
            &[("was", [0.5, 0.25]), ("movie", [1.0, -1.0])],
            b"\n",
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        let gz = gz.finish().unwrap();
        let cut = dir.path().join("v.bin.gz");
        std::fs::write(&cut, &gz[..gz.len() - 12]).unwrap();
        let err = format!(
            "{:#}",
            load_vectors(&cut, &vocab, MissingRows::Zeros, None).unwrap_err()
        );
        assert!(
            err.contains("the file ends inside the vector") && err.contains("gzip -t"),
            "{err}"
        );
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
        let txt = dir.path().join("v.txt");
        // A width past the format's limit is a corrupt header, not a --embed-dim to pass;
        // either way it is refused before any row is made.
        for (file, header) in [(&bin, "1 4000000000000000000\nthe "), (&txt, "1 65536\n")] {
            std::fs::write(file, header).unwrap();
            let err = load(file, Some(3)).unwrap_err();
            assert!(
                err.contains(":1: the header's width")
                    && err.contains("is not possible (the model format allows at most 65535)")
                    && !err.contains("--embed-dim"),
                "{err}"
            );
        }
        std::fs::write(&bin, "1 65535\nthe ").unwrap();
        let err = load(&bin, Some(3)).unwrap_err();
        assert!(err.ends_with("pass --embed-dim 65535"), "{err}");
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
        // One number too many is a corrupt line, or a word with a number in it.
        std::fs::write(&path, "the 1 2\nroute 66 9 9\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros, Some(2)).unwrap_err();
        assert!(
            err.to_string().ends_with(
                ":2: expected 2 values after the word (as on its first line), found 3: a \
                 corrupt line, or a word with a space before a number (`route 66`), which \
                 cannot be told apart: fix the line or drop it"
            ),
            "{err}"
        );
        // `inf` and `nan` are no vector values, so they are parts of a word.
        std::fs::write(&path, "the 1 2\nto inf 3 4\nat nan 5 6\ngood 9 9\n").unwrap();
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros, Some(2)).unwrap();
        assert_eq!((emb.found, emb.file_words), (2, 4));
        // A spaced word on the first line: the width is the numbers that end it.
        std::fs::write(&path, ". . . 1 2\nthe 3 4\n").unwrap();
        let emb = load_vectors(&path, &vocab, MissingRows::Zeros, Some(2)).unwrap();
        assert_eq!(emb.row(vocab.lookup(b"the")).unwrap(), &[3.0, 4.0]);
        assert_eq!((emb.found, emb.file_words), (1, 2));
        // A bad value on the first line is still named as one.
        std::fs::write(&path, "the 1 x 2\n").unwrap();
        let err = load_vectors(&path, &vocab, MissingRows::Zeros, None).unwrap_err();
        assert!(
            err.to_string().contains(
                ":1: \"x\" is not a finite number (each line of a vectors file is a word and \
                 its numbers: is this a GloVe or word2vec text file?)"
            ),
            "{err}"
        );
    }

    /// The error, with its causes, that loading `path` gives.
    fn load_error(path: &Path, vocab: &Vocab<'_>) -> String {
        let err = load_vectors(path, vocab, MissingRows::Zeros, None).unwrap_err();
        format!("{err:#}")
    }

    #[test]
    fn binary_header_errors_name_the_file_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        // GloVe text named .bin, with a short first line and with one past the header limit.
        let glove = dir.path().join("glove.bin");
        std::fs::write(&glove, "the 0.1 0.2\nmovie 0.3 0.4\n").unwrap();
        let err = load_error(&glove, &vocab);
        assert!(
            err.contains("glove.bin looks like a GloVe text file")
                && err.ends_with("name it glove.txt"),
            "{err}"
        );
        let long = format!("the{}\n", " -0.123456".repeat(100));
        let gz = dir.path().join("long.bin.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Default::default());
        std::io::Write::write_all(&mut encoder, long.as_bytes()).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        let err = load_error(&gz, &vocab);
        assert!(err.ends_with("name it long.txt.gz"), "{err}");
        // fastText's own binary model.
        let fasttext = dir.path().join("cc.en.300.bin");
        let mut bytes = 0x2F4F16BAu32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&12u32.to_le_bytes());
        std::fs::write(&fasttext, bytes).unwrap();
        let err = load_error(&fasttext, &vocab);
        assert!(
            err.contains("is a fastText model, not word2vec binary: pass fastText's .vec"),
            "{err}"
        );
        // Bytes with no line end (a stream like /dev/zero): refused after 256 bytes.
        let zeros = dir.path().join("zeros.bin");
        std::fs::write(&zeros, vec![0u8; 100_000]).unwrap();
        let err = load_error(&zeros, &vocab);
        assert!(err.contains("line 1 has no end within 256 bytes"), "{err}");
        std::fs::write(&zeros, "4 x\n").unwrap();
        let err = load_error(&zeros, &vocab);
        assert!(
            err.ends_with(
                "zeros.bin:1: expected a word2vec binary header `count dim`, found \"4 x\""
            ),
            "{err}"
        );
    }

    #[test]
    fn binary_entries_are_read_with_bounds_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        let bin = dir.path().join("v.bin");
        // Fewer entries than the header says: the count may be what to fix.
        let entries = [("the", [1.0, 2.0]), ("good", [3.0, 4.0])];
        write_binary(&bin, "9 2\n", &entries, b"\n");
        let err = load_error(&bin, &vocab);
        assert!(
            err.contains(
                "entry 3 of 9: the file ends after 2 complete entries, but the header says 9: a \
                 truncated download, or fix the header's count"
            ),
            "{err}"
        );
        // A word with no space after it is refused after 4096 bytes, not buffered whole.
        let mut bytes = b"1 4\n".to_vec();
        bytes.resize(1_000_000, b'a');
        std::fs::write(&bin, bytes).unwrap();
        let err = load_error(&bin, &vocab);
        assert!(
            err.contains(
                "entry 1 of 1: no space within 4096 bytes, where the word should end: the \
                 header's width (4) is wrong"
            ),
            "{err}"
        );
    }

    #[test]
    fn text_files_name_binary_data_and_overlong_lines() {
        let dir = tempfile::tempdir().unwrap();
        let built = vocab_words();
        let vocab = built.vocab().unwrap();
        let path = dir.path().join("v.txt");
        // word2vec binary named as text: the `.bin` fix, right after the header.
        write_binary(&path, "1 2\n", &[("the", [0.5, 0.25])], b"\n");
        let err = load_error(&path, &vocab);
        assert!(
            err.contains(
                "(binary data after a `count dim` header: a word2vec binary file must be named .bin)"
            ),
            "{err}"
        );
        // Binary data elsewhere is no word2vec binary: no .bin advice.
        std::fs::write(&path, b"the 1 2\nmovie \x01\x02 3\n").unwrap();
        let err = load_error(&path, &vocab);
        assert!(
            err.contains(":2: ")
                && err.ends_with("(binary data: not a GloVe or word2vec text file)"),
            "{err}"
        );
        // A line past 1 MiB is refused, and the message quotes none of it.
        let mut bytes = b"the 1 2\n".to_vec();
        bytes.resize(3 << 20, b'x');
        std::fs::write(&path, bytes).unwrap();
        let err = load_error(&path, &vocab);
        assert!(
            err.contains("v.txt:2: no line end within 1 MiB: not a GloVe or word2vec text file"),
            "{err}"
        );
        assert!(err.len() < 300, "{err}");
    }
}
