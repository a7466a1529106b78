//! Labelled reviews (IMDB and the like) from an aclImdb folder, JSON Lines (optionally
//! gzipped) or CSV.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use flate2::bufread::MultiGzDecoder;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::shell;

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

/// Opens a file for buffered reading, decompressing it when its name ends in `.gz`,
/// past a UTF-8 byte-order mark. Refuses a gzip file without that suffix, archives and
/// other compressions, and UTF-16 text, which would otherwise be read as garbage.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow!("{} does not exist: check the path", path.display())
        }
        _ => anyhow::Error::new(e).context(format!("cannot open {}", path.display())),
    })?;
    let gzipped = is_gz(path);
    let mut reader: Box<dyn BufRead> = if gzipped {
        let mut raw = BufReader::new(file);
        let head = raw
            .fill_buf()
            .map_err(|e| read_error(path, None, e.into()))?;
        if let Some(fix) = not_gzip_fix(path, head) {
            bail!(fix);
        }
        Box::new(BufReader::new(MultiGzDecoder::new(raw)))
    } else {
        Box::new(BufReader::new(file))
    };
    let head = reader
        .fill_buf()
        .map_err(|e| read_error(path, None, e.into()))?;
    if !gzipped && head.starts_with(&[0x1f, 0x8b]) {
        bail!(
            "{} is gzip-compressed but its name does not end in .gz: rename it to {}.gz",
            path.display(),
            path.display()
        );
    }
    if let Some(fix) = archive_fix(path, head) {
        bail!(fix);
    }
    if let Some(fix) = utf16_fix(head, Some(path)) {
        bail!(fix);
    }
    if head.starts_with(b"\xef\xbb\xbf") {
        // A UTF-8 byte-order mark, as some Windows editors write: not text.
        reader.consume(3);
    }
    Ok(reader)
}

fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// What to do with a file named `.gz` whose first bytes (`head`) are not gzip's magic
/// (1f 8b): read as gzip it would be called truncated or corrupt, which it is not.
fn not_gzip_fix(path: &Path, head: &[u8]) -> Option<String> {
    const MAGIC: [u8; 2] = [0x1f, 0x8b];
    // An empty or 1-byte file is a truncated gzip file, as read_error says.
    if head.is_empty() || head.starts_with(&MAGIC[..head.len().min(2)]) {
        return None;
    }
    if let Some(fix) = archive_fix(path, head).or_else(|| utf16_fix(head, Some(path))) {
        return Some(fix);
    }
    let file = path.display();
    let plain = path.with_extension("");
    let (shell_file, shell_plain) = (shell::quoted(path), shell::quoted(&plain));
    Some(format!(
        "{file} is not gzip-compressed although its name ends in .gz (it does not start with \
         gzip's bytes 1f 8b): rename it to {}, or compress it (`mv {shell_file} {shell_plain} \
         && gzip {shell_plain}`)",
        plain.display()
    ))
}

/// What to do with text that starts with a UTF-16 byte-order mark, which would
/// otherwise be read as bytes: `file`'s, or standard input's when `None`.
pub fn utf16_fix(head: &[u8], file: Option<&Path>) -> Option<String> {
    let name = file.map_or("standard input".into(), |path| path.display().to_string());
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return Some(utf16_message(&name, file, "UTF-16", ""));
    }
    utf16_without_bom(head).map(|encoding| utf16_message(&name, file, encoding, WITHOUT_BOM))
}

const WITHOUT_BOM: &str = " without a byte-order mark (a NUL byte at nearly every other byte)";

/// The message for UTF-16 text from `name` (`file`, when it is one), with the iconv
/// command that converts it.
fn utf16_message(name: &str, file: Option<&Path>, encoding: &str, note: &str) -> String {
    let example = file.map_or("FILE".into(), shell::quoted);
    format!(
        "{name} is {encoding} text{note}: save it as UTF-8 (e.g. `iconv -f {encoding} -t UTF-8 \
         {example} > OUT`)"
    )
}

/// Which UTF-16 `text` is when it has no byte-order mark: NUL bytes at nearly every
/// odd byte (`UTF-16LE`) or even byte (`UTF-16BE`) of its start, as Latin text has in
/// UTF-16, and almost none at the others, where binary data has them at random.
fn utf16_without_bom(text: &[u8]) -> Option<&'static str> {
    // NumPy arrays of small 16-bit ids look the same, and are binary.
    if text.starts_with(b"\x93NUMPY") {
        return None;
    }
    let sample = &text[..text.len().min(4096)];
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even, mut odd) = (0, 0);
    for pair in sample.chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    // At least 90% of one side, at most 10% of the other.
    let most = |zeros: usize| zeros * 10 >= pairs * 9;
    let few = |zeros: usize| zeros * 10 <= pairs;
    if most(odd) && few(even) {
        Some("UTF-16LE")
    } else if most(even) && few(odd) {
        Some("UTF-16BE")
    } else {
        None
    }
}

/// The whole of a text file, read as review and corpus files are (a `.gz` one unpacked, past a
/// UTF-8 byte-order mark; UTF-16 and packed files refused by name).
pub fn read_text(path: &Path) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    open_text(path)?
        .read_to_end(&mut text)
        .map_err(|e| read_error(path, None, e.into()))?;
    Ok(text)
}

/// Refuses `text` from `source` (`file`, when it is one) that holds a NUL byte: text
/// never does, binary data does, and would otherwise be read as tokens. UTF-16 text
/// without a byte-order mark is named as such, with the command that converts it.
pub(crate) fn refuse_binary(text: &[u8], source: &str, file: Option<&Path>) -> Result<()> {
    let mut guard = NulGuard::new(text);
    let Err(err) = std::io::copy(&mut guard, &mut std::io::sink()) else {
        return Ok(());
    };
    if let Some(encoding) = utf16_without_bom(text) {
        bail!(utf16_message(source, file, encoding, WITHOUT_BOM));
    }
    match nul_byte(&err) {
        Some(nul) => bail!("{source} {nul}; give plain text (UTF-8 or Latin-1)"),
        None => Err(err.into()),
    }
}

/// Where a NUL byte is, as an editor counts lines (LF, CR LF or a lone CR ends one).
#[derive(Clone, Copy, Debug)]
struct NulByte {
    line: u64,
    byte: u64,
}

impl std::fmt::Display for NulByte {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "holds a NUL byte (line {}, byte {}): it is binary data, not text",
            self.line, self.byte
        )
    }
}

impl std::error::Error for NulByte {}

/// Passes text through and fails at its first NUL byte, which text never holds:
/// binary data named `.csv` or `.jsonl`, or an endless stream of zeros, is refused
/// at once instead of read as reviews.
struct NulGuard<R> {
    inner: R,
    read: u64,
    line: u64,
    after_cr: bool,
}

impl<R> NulGuard<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            line: 1,
            after_cr: false,
        }
    }
}

impl<R: Read> Read for NulGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            self.read += 1;
            // A CR ends a line unless an LF follows it: CR LF is one line end.
            if b == b'\n' || self.after_cr {
                self.line += 1;
            }
            self.after_cr = b == b'\r';
            if b == 0 {
                let nul = NulByte {
                    line: self.line,
                    byte: self.read,
                };
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, nul));
            }
        }
        Ok(n)
    }
}

/// The NUL byte [`NulGuard`] stopped at, when `err` is its.
fn nul_byte(err: &std::io::Error) -> Option<NulByte> {
    err.get_ref()?.downcast_ref::<NulByte>().copied()
}

/// The file's NUL byte, when `err` is [`NulGuard`]'s; `encodings` are those the format takes.
fn nul_error(source: &Path, err: &std::io::Error, encodings: &str) -> Option<anyhow::Error> {
    let nul = nul_byte(err)?;
    Some(anyhow!(
        "{} {nul}; give plain text ({encodings})",
        source.display()
    ))
}

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

/// Whether a review holds nothing but whitespace (its score would be noise).
pub fn is_blank(review: &[u8]) -> bool {
    review.iter().all(u8::is_ascii_whitespace)
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
    let bytes = match (text, file) {
        (Some(text), _) => text,
        (None, from) => {
            let bytes = match from {
                // As training reads text files: a .gz unpacked, UTF-16 and archives refused.
                Some(path) => {
                    if let Some(fix) = dataset_fix(path) {
                        bail!(fix);
                    }
                    read_text(path)
                        .with_context(|| format!("cannot read review file {}", path.display()))?
                }
                None => {
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
            let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
            let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            bytes.strip_suffix(b"\r").unwrap_or(bytes).to_vec()
        }
    };
    let source = review_source(given, file);
    refuse_binary(&bytes, &source, file.filter(|_| !given))?;
    if is_blank(&bytes) {
        bail!("{source} is empty: give some text to score");
    }
    Ok(bytes)
}

/// The bytes of a tar member's header, which [`archive_fix`] reads a tarball by.
const TAR_HEADER: u64 = 512;

/// What to do with an archive or a compressed file other than gzip (as datasets are
/// downloaded: GloVe comes as a .zip, IMDB as a .tar.gz), told by its first bytes.
fn archive_fix(path: &Path, head: &[u8]) -> Option<String> {
    let file = path.display();
    // A tar member's header holds `ustar\0` (POSIX) or `ustar  \0` (GNU) at byte 257.
    let magic = head.get(257..).unwrap_or_default();
    if magic.starts_with(b"ustar\0") || magic.starts_with(b"ustar  \0") {
        return Some(format!(
            "{file} is a tar archive: unpack it (`tar xf {}`) and pass the folder or file \
             inside (the IMDB download unpacks to aclImdb/train and aclImdb/test)",
            shell::quoted(path)
        ));
    }
    if head.starts_with(b"PK\x03\x04") {
        // A zip entry's header: name length at byte 26, the name from byte 30.
        let first = head
            .get(26..28)
            .map(|len| 30 + usize::from(u16::from_le_bytes([len[0], len[1]])))
            .and_then(|end| head.get(30..end))
            .and_then(|name| std::str::from_utf8(name).ok())
            .filter(|name| !name.is_empty() && !name.ends_with('/'))
            .map_or(String::new(), |name| format!(" (its first is {name})"));
        return Some(format!(
            "{file} is a zip archive: unzip it and pass the file inside{first}"
        ));
    }
    if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        return Some(format!(
            "{file} is a 7z archive: extract it (`7z x {}`) and pass the file inside",
            shell::quoted(path)
        ));
    }
    // bzip2: `BZh`, the block size digit, then a block's or the end's magic.
    let bzip2 = head.starts_with(b"BZh")
        && head.get(3).is_some_and(u8::is_ascii_digit)
        && head
            .get(4..)
            .is_some_and(|rest| rest.starts_with(b"1AY&SY") || rest.starts_with(b"\x17rE8P\x90"));
    let (what, tool, suffix) = if bzip2 {
        ("bzip2", "bzip2", ".bz2")
    } else if head.starts_with(b"\xfd7zXZ\0") {
        ("xz", "xz", ".xz")
    } else if head.starts_with(b"\x28\xb5\x2f\xfd") {
        ("zstd", "zstd", ".zst")
    } else {
        return None;
    };
    // `-dc` writes to a name of the user's choosing, where `unxz -k` refuses a
    // file whose name lacks the suffix.
    let name = path.to_string_lossy();
    let out = name
        .strip_suffix(suffix)
        .filter(|plain| !plain.is_empty())
        .map_or("OUT".into(), shell::quoted);
    Some(format!(
        "{file} is {what}-compressed: decompress it (`{tool} -dc {} > {out}`) or recompress \
         it with gzip (a .gz file is read directly)",
        shell::quoted(path)
    ))
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

/// A read failure at `path` (and `line`), with a hint when the file is gzipped: a
/// truncated or corrupt download is the usual cause.
pub(crate) fn read_error(path: &Path, line: Option<usize>, err: anyhow::Error) -> anyhow::Error {
    let at = match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    let hint = if is_gz(path) {
        format!(
            " (a truncated or corrupt gzip file: `gzip -t {}` checks it; download or compress it again)",
            path.display()
        )
    } else {
        String::new()
    };
    err.context(format!("{at}: cannot read{hint}"))
}

/// Reads `<dir>/neg/*.txt` (label 0) then `<dir>/pos/*.txt` (label 1), gzipped
/// `*.txt.gz` as well, each folder in file-name order, so the result does not depend on the file system. Anything else in
/// those folders is skipped with a warning.
pub fn load_acl_dir(dir: &Path) -> Result<LoadedReviews> {
    let mut loaded = LoadedReviews::default();
    let mut skipped: Vec<PathBuf> = Vec::new();
    let mut apple_double: Vec<PathBuf> = Vec::new();
    let mut empty = EmptyTexts::default();
    for (folder, label) in [("neg", 0u8), ("pos", 1u8)] {
        let sub = dir.join(folder);
        if !sub.is_dir() {
            let hint = if dir.join("train").is_dir() || dir.join("test").is_dir() {
                format!(" (use {}/train or {}/test)", dir.display(), dir.display())
            } else {
                String::new()
            };
            bail!(
                "{} is not in the aclImdb layout: it has no {folder}/ folder{hint}; a review \
                 folder holds neg/ and pos/, with one review per .txt (or .txt.gz) file in each",
                dir.display()
            );
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&sub)
            .with_context(|| format!("cannot list {}", sub.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot list {}", sub.display()))?;
        files.sort();
        // macOS writes `._NAME` metadata (AppleDouble) beside each file it copies to a
        // disk not its own: not reviews, though often named `.txt`.
        let (apple, files): (Vec<PathBuf>, Vec<PathBuf>) =
            files.into_iter().partition(|p| is_apple_double(p));
        apple_double.extend(apple);
        let (reviews, others): (Vec<PathBuf>, Vec<PathBuf>) =
            files.into_iter().partition(|p| is_review_file(p));
        skipped.extend(others);
        // `gzip -k` leaves the review beside its gzipped copy: it would count twice.
        if let Some(plain) = reviews
            .iter()
            .find(|p| is_gz(p) && reviews.contains(&p.with_extension("")))
            .map(|p| p.with_extension(""))
        {
            bail!(
                "{} and {}.gz are one review's file twice (the second gzipped), or two \
                 reviews under one name: keep one of them",
                plain.display(),
                plain.display()
            );
        }
        for file in reviews {
            let text = read_text(&file)?;
            // As corpus files and `score` refuse it: binary data would train as tokens.
            refuse_binary(&text, &file.display().to_string(), Some(&file))?;
            empty.check(&text, || file.display().to_string());
            loaded.reviews.push(Review { text, label });
        }
    }
    if let Some(first) = skipped.first() {
        loaded.warnings.push(format!(
            "{}: skipped {} entr{} of its pos/ and neg/ folders that {} (e.g. {}); \
             a review must be a .txt (or .txt.gz) file directly in pos/ or neg/, its name not \
             starting with a dot",
            dir.display(),
            skipped.len(),
            if skipped.len() == 1 { "y" } else { "ies" },
            if skipped.len() == 1 {
                "is not a review file"
            } else {
                "are not review files"
            },
            first.display()
        ));
    }
    if let Some(first) = apple_double.first() {
        let many = apple_double.len() > 1;
        loaded.warnings.push(format!(
            "{}: skipped {} macOS metadata file{} in its pos/ and neg/ folders (e.g. {}): \
             a `._NAME` file is what macOS writes beside each file it copies to a disk not \
             its own, not a review; `find {} -name '._*' -delete` removes them",
            dir.display(),
            apple_double.len(),
            if many { "s" } else { "" },
            first.display(),
            shell::quoted(dir)
        ));
    }
    loaded.warnings.extend(empty.warning(loaded.reviews.len()));
    if loaded.reviews.is_empty() {
        bail!(
            "{}: its pos/ and neg/ folders hold no reviews: put one review per .txt (or \
             .txt.gz) file there, its name not starting with a dot",
            dir.display()
        );
    }
    Ok(loaded)
}

/// Whether `path` is a review in an aclImdb folder: a `.txt` file, or a gzipped one
/// (`.txt.gz`), not hidden (a name starting with a dot is an editor's or a system's).
fn is_review_file(path: &Path) -> bool {
    let name = path.file_name().map_or(&b""[..], |n| n.as_encoded_bytes());
    let name = name.to_ascii_lowercase();
    let plain = name.strip_suffix(b".gz").unwrap_or(&name);
    plain.ends_with(b".txt") && !name.starts_with(b".") && !path.is_dir()
}

/// Whether `path` is a macOS AppleDouble file (`._NAME`): metadata, not data.
fn is_apple_double(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"._"))
        && !path.is_dir()
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
    let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
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
            let field = sentiment.strip_prefix(b"\xef\xbb\xbf").unwrap_or(sentiment);
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
    use flate2::write::GzEncoder;
    use std::io::Write;

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
    fn a_nul_byte_is_named_by_its_line_as_an_editor_counts_lines() {
        for (text, line) in [(&b"a\nb\0"[..], 2), (b"a\rb\r\nc\0", 3), (b"\r\r\n\n\0", 4)] {
            let err = refuse_binary(text, "t.txt", None).unwrap_err().to_string();
            assert!(err.contains(&format!("(line {line}, byte")), "{err}");
        }
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
    fn acl_folder_is_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for (folder, name, text) in [
            ("pos", "10_9.txt", "p10"),
            ("pos", "2_8.txt", "p2"),
            ("neg", "5_1.txt", "n5"),
            ("neg", "6_2.TXT", "n6"),
        ] {
            std::fs::create_dir_all(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join(name), text).unwrap();
        }
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(
            texts(&loaded.reviews),
            vec![("n5", 0), ("n6", 0), ("p10", 1), ("p2", 1)]
        );
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // A review file is read as other text files are: past a byte-order mark, and
        // UTF-16 refused by name rather than trained on as bytes.
        std::fs::write(dir.path().join("pos/3_7.txt"), b"\xef\xbb\xbfp3").unwrap();
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(loaded.reviews[4].text, b"p3");
        let utf16 = dir.path().join("neg/7_1.txt");
        std::fs::write(&utf16, b"\xff\xfeb\0a\0d\0").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{} is UTF-16 text", utf16.display())),
            "{err}"
        );
    }

    #[test]
    fn acl_folder_names_what_it_skips_and_empty_reviews() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("pos/1_9.txt", "good"),
            ("pos/notes.md", "not a review"),
            ("pos/more/2_9.txt", "nested"),
            ("neg/3_1.txt", " \n"),
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        // A gzipped review is read; a hidden one (an editor's, a system's) is skipped.
        let gzipped = dir.path().join("neg/4_2.txt.gz");
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"dull").unwrap();
        std::fs::write(&gzipped, gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("pos/.5_9.txt"), "hidden").unwrap();
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(
            texts(&loaded.reviews),
            vec![(" \n", 0), ("dull", 0), ("good", 1)]
        );
        let warnings = loaded.warnings.join("\n");
        assert!(warnings.contains("skipped 3 entries"), "{warnings}");
        assert!(
            warnings.contains("its name not starting with a dot"),
            "{warnings}"
        );
        assert!(warnings.contains("pos/.5_9.txt"), "{warnings}");
        assert!(
            warnings.contains("3_1.txt: empty review text (1 of the 3 reviews"),
            "{warnings}"
        );
        // `gzip -k` leaves both: one review, which must not count twice.
        std::fs::write(dir.path().join("neg/4_2.txt"), "dull").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with("4_2.txt.gz are one review's file twice (the second gzipped), or two reviews under one name: keep one of them"),
            "{err}"
        );
        for name in [
            "pos/1_9.txt",
            "neg/3_1.txt",
            "neg/4_2.txt.gz",
            "neg/4_2.txt",
        ] {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(err.contains("hold no reviews"), "{err}");
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
    fn hint_commands_quote_paths_with_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let spaced = dir.path().join("my reviews.txt.bz2");
        std::fs::write(&spaced, b"BZh91AY&SY\x01").unwrap();
        let err = open_text(&spaced).err().unwrap().to_string();
        let quoted = |p: &Path| format!("'{}'", p.display());
        assert!(
            err.contains(&format!(
                "`bzip2 -dc {} > {}`",
                quoted(&spaced),
                quoted(&dir.path().join("my reviews.txt"))
            )),
            "{err}"
        );
        let plain = dir.path().join("my reviews.jsonl.gz");
        std::fs::write(&plain, b"{}\n").unwrap();
        let err = open_text(&plain).err().unwrap().to_string();
        assert!(
            err.contains(&format!(
                "`mv {} {}",
                quoted(&plain),
                quoted(&plain.with_extension(""))
            )),
            "{err}"
        );
    }

    #[test]
    fn open_text_refuses_hidden_gzip_archives_and_utf16_and_explains_bad_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Default::default());
        gz.write_all(JSONL.as_bytes()).unwrap();
        let zipped = gz.finish().unwrap();
        let hidden = dir.path().join("r.jsonl");
        std::fs::write(&hidden, &zipped).unwrap();
        let err = load_reviews(&hidden).unwrap_err().to_string();
        assert!(
            err.contains("is gzip-compressed") && err.contains("r.jsonl.gz"),
            "{err}"
        );
        let utf16 = dir.path().join("u.csv");
        std::fs::write(&utf16, b"\xff\xfer\0e\0").unwrap();
        let err = load_reviews(&utf16).unwrap_err().to_string();
        assert!(err.contains("is UTF-16 text: save it as UTF-8"), "{err}");
        // Without the mark, a labelled file is named by its NUL bytes too.
        let utf16: Vec<u8> = "{\"label\": 1, \"text\": \"good\"}\n"
            .bytes()
            .flat_map(|b| [b, 0])
            .collect();
        let bare = dir.path().join("bare.jsonl");
        std::fs::write(&bare, utf16).unwrap();
        let err = load_reviews(&bare).unwrap_err().to_string();
        assert!(
            err.contains("bare.jsonl is UTF-16LE text without a byte-order mark"),
            "{err}"
        );
        // Archives and other compressions, as downloaded, get the tool that unpacks them.
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0; 22]);
        zip.extend_from_slice(&16u16.to_le_bytes());
        zip.extend_from_slice(&[0, 0]);
        zip.extend_from_slice(b"glove.6B.50d.txt\x01\x02");
        for (name, bytes, fix) in [
            (
                "glove.6B.zip",
                &zip[..],
                "is a zip archive: unzip it and pass the file inside (its first is glove.6B.50d.txt)",
            ),
            ("v.txt.bz2", b"BZh91AY&SY\x01", "is bzip2-compressed: decompress it (`bzip2 -dc "),
            ("v.txt.xz", b"\xfd7zXZ\0\0\x04", "is xz-compressed: decompress it (`xz -dc "),
            ("v.7z", b"7z\xbc\xaf\x27\x1c\0\x04", "is a 7z archive: extract it (`7z x "),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = open_text(&path).err().unwrap().to_string();
            assert!(err.contains(&format!("{name} {fix}")), "{err}");
        }
        // The command writes the file under its name less the suffix, or OUT when the
        // name has none to drop.
        let xz = dir.path().join("v.txt.xz");
        let err = open_text(&xz).err().unwrap().to_string();
        let plain = dir.path().join("v.txt");
        assert!(err.contains(&format!("> {}`", plain.display())), "{err}");
        let dat = dir.path().join("reviews.dat");
        std::fs::write(&dat, &zipped).unwrap();
        let err = load_reviews(&dat).unwrap_err().to_string();
        assert!(
            err.contains("name it NAME.jsonl.gz or NAME.csv.gz"),
            "{err}"
        );
        let hidden_xz = dir.path().join("h.csv");
        std::fs::write(&hidden_xz, b"\xfd7zXZ\0\0\x04").unwrap();
        let err = load_reviews(&hidden_xz).unwrap_err().to_string();
        assert!(err.contains("h.csv > OUT`"), "{err}");
        // Text that only starts like bzip2 is text.
        let text = dir.path().join("bzh.txt");
        std::fs::write(&text, "BZh9 is a word\n").unwrap();
        assert!(open_text(&text).is_ok());
        let cut = dir.path().join("cut.jsonl.gz");
        std::fs::write(&cut, &zipped[..zipped.len() - 12]).unwrap();
        let err = format!("{:#}", load_reviews(&cut).unwrap_err());
        assert!(
            err.contains("cut.jsonl.gz") && err.contains("gzip -t"),
            "{err}"
        );
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
        assert!(
            format!("{err:#}").ends_with("gone.jsonl does not exist: check the path"),
            "{err:#}"
        );
        let err = load_reviews(&dir.path().join("gone.parquet")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
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
    fn a_gz_file_that_is_not_gzip_is_told_apart_from_a_corrupt_one() {
        let dir = tempfile::tempdir().unwrap();
        for (name, data, plain) in [
            ("r.jsonl.gz", JSONL, "r.jsonl"),
            ("r.csv.gz", "review,sentiment\nok,1\n", "r.csv"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, data).unwrap();
            let err = format!("{:#}", load_reviews(&path).unwrap_err());
            assert!(
                err.contains(&format!(
                    "{} is not gzip-compressed although its name ends in .gz",
                    path.display()
                )),
                "{err}"
            );
            assert!(
                err.contains(&format!(
                    "rename it to {}",
                    dir.path().join(plain).display()
                )),
                "{err}"
            );
            assert!(!err.contains("truncated"), "{err}");
        }
        // Real gzip data cut short is still called truncated or corrupt.
        let mut gz = GzEncoder::new(Vec::new(), Default::default());
        gz.write_all(JSONL.as_bytes()).unwrap();
        let zipped = gz.finish().unwrap();
        let cut = dir.path().join("cut.jsonl.gz");
        std::fs::write(&cut, &zipped[..zipped.len() - 12]).unwrap();
        let err = format!("{:#}", load_reviews(&cut).unwrap_err());
        assert!(err.contains("a truncated or corrupt gzip file"), "{err}");
    }

    #[test]
    fn utf16_without_a_byte_order_mark_is_named_not_called_binary() {
        let dir = tempfile::tempdir().unwrap();
        let wide = |text: &str, big: bool| -> Vec<u8> {
            text.encode_utf16()
                .flat_map(|u| {
                    if big {
                        u.to_be_bytes()
                    } else {
                        u.to_le_bytes()
                    }
                })
                .collect()
        };
        for (big, encoding) in [(false, "UTF-16LE"), (true, "UTF-16BE")] {
            let file = dir.path().join(format!("{encoding}.txt"));
            std::fs::write(&file, wide("A fine film, café.\n", big)).unwrap();
            let err = format!("{:#}", read_review(None, Some(&file)).unwrap_err());
            assert!(
                err.contains(&format!(
                    "{} is {encoding} text without a byte-order mark",
                    file.display()
                )),
                "{err}"
            );
            assert!(
                err.contains(&format!(
                    "iconv -f {encoding} -t UTF-8 {} > OUT",
                    file.display()
                )),
                "{err}"
            );
        }
        // Zeros on both sides, or on one side only now and then, are binary data.
        for bytes in [&b"\0\0\0\0\0\0\0\0"[..], b"a\0b\0cdefgh\0ij\0kl"] {
            let err = refuse_binary(bytes, "x.bin", None).unwrap_err().to_string();
            assert!(err.contains("x.bin holds a NUL byte"), "{err}");
        }
        // From standard input the command names a FILE to convert.
        let err = refuse_binary(&wide("ok", false), "standard input", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("standard input is UTF-16LE text")
                && err.contains("iconv -f UTF-16LE -t UTF-8 FILE > OUT"),
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

    #[test]
    fn acl_folder_skips_apple_double_files_and_refuses_binary_reviews() {
        let dir = tempfile::tempdir().unwrap();
        let meta = b"\0\x05\x16\x07\0\x02\0\0Mac OS X        ";
        for (name, text) in [
            ("pos/1_9.txt", &b"good"[..]),
            ("pos/._1_9.txt", meta),
            ("neg/2_1.txt", b"bad"),
            ("neg/._2_1.txt", meta),
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let loaded = load_reviews(dir.path()).unwrap();
        assert_eq!(texts(&loaded.reviews), [("bad", 0), ("good", 1)]);
        let warnings = loaded.warnings.join("\n");
        assert!(
            warnings.contains(&format!(
                "skipped 2 macOS metadata files in its pos/ and neg/ folders (e.g. {})",
                dir.path().join("neg/._2_1.txt").display()
            )),
            "{warnings}"
        );
        assert!(!warnings.contains("not a review file"), "{warnings}");
        let binary = dir.path().join("pos/3_9.txt");
        std::fs::write(&binary, b"GIF89a\x01\0\x01\0\x80").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{} holds a NUL byte (line 1, byte 8): it is binary data",
                binary.display()
            )),
            "{err}"
        );
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

#[cfg(test)]
mod binary_and_layout_tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[test]
    fn a_nul_byte_in_csv_or_jsonl_is_named_by_its_line() {
        let err = |result: Result<LoadedReviews>| format!("{:#}", result.unwrap_err());
        let csv = err(read_csv(
            &b"review,sentiment\r\ngood\0 film,1\nbad,0\n"[..],
            Path::new("r.csv"),
        ));
        assert_eq!(
            csv,
            "r.csv holds a NUL byte (line 2, byte 23): it is binary data, not text; give \
             plain text (UTF-8 or Latin-1)"
        );
        let jsonl = err(read_jsonl(
            &b"{\"label\": 1, \"text\": \"a\"}\r{\"label\": 0, \"text\": \"b\0\"}\n"[..],
            Path::new("r.jsonl"),
        ));
        assert!(
            jsonl.starts_with("r.jsonl holds a NUL byte (line 2, byte 50)")
                && jsonl.ends_with("give plain text (UTF-8)"),
            "{jsonl}"
        );
        // An escaped NUL is JSON text, not binary data.
        let escaped = read_jsonl(
            &b"{\"label\": 1, \"text\": \"a\\u0000b\"}\n"[..],
            Path::new("e.jsonl"),
        );
        assert_eq!(escaped.unwrap().reviews[0].text, b"a\0b");
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

    #[test]
    fn a_tarball_gets_the_command_that_unpacks_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = vec![0u8; 1024];
        tar[..21].copy_from_slice(b"aclImdb/train/pos/1_9");
        tar[257..263].copy_from_slice(b"ustar\0");
        let plain = dir.path().join("imdb.tar");
        std::fs::write(&plain, &tar).unwrap();
        let gzipped = dir.path().join("aclImdb_v1.tar.gz");
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        std::fs::write(&gzipped, gz.finish().unwrap()).unwrap();
        let named_jsonl = dir.path().join("reviews.jsonl.gz");
        std::fs::copy(&gzipped, &named_jsonl).unwrap();
        // Text that spells `ustar` there is no archive.
        let text = dir.path().join("custard.txt");
        let mut review = vec![b'a'; 256];
        review.extend_from_slice(b"custard pie");
        std::fs::write(&text, &review).unwrap();
        assert_eq!(read_text(&text).unwrap(), review);
        for path in [plain, gzipped, named_jsonl] {
            let err = format!("{:#}", load_reviews(&path).unwrap_err());
            assert!(
                err.starts_with(&format!(
                    "{} is a tar archive: unpack it (`tar xf {}`)",
                    path.display(),
                    path.display()
                )),
                "{err}"
            );
        }
    }
}
