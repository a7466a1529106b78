//! Telling text from what is not: a NUL byte (binary data) or UTF-16, each refused with
//! where it is or the command that converts it.

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::text::skipped_bom;
use crate::shell;

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

/// Refuses `text` from `source` (`file`, when it is one, read past its byte-order mark)
/// that holds a NUL byte: text never does, binary data does, and would otherwise be read
/// as tokens. UTF-16 text without a byte-order mark is named as such, with the command
/// that converts it.
pub(crate) fn refuse_binary(text: &[u8], source: &str, file: Option<&Path>) -> Result<()> {
    let mut guard = NulGuard::new(text);
    let Err(err) = std::io::copy(&mut guard, &mut std::io::sink()) else {
        return Ok(());
    };
    if let Some(encoding) = utf16_without_bom(text) {
        bail!(utf16_message(source, file, encoding, WITHOUT_BOM));
    }
    match nul_byte(&err) {
        Some(nul) => {
            let nul = nul.after(file.map_or(0, skipped_bom));
            bail!("{source} {nul}; give plain text (UTF-8 or Latin-1)")
        }
        None => Err(err.into()),
    }
}

/// Where a NUL byte is, as an editor counts lines (LF, CR LF or a lone CR ends one).
#[derive(Clone, Copy, Debug)]
pub(super) struct NulByte {
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

impl NulByte {
    /// The position in a file whose first `skipped` bytes (a byte-order mark) the
    /// reader never saw.
    fn after(self, skipped: u64) -> Self {
        Self {
            byte: self.byte + skipped,
            ..self
        }
    }
}

/// Passes text through and fails at its first NUL byte, which text never holds:
/// binary data named `.csv` or `.jsonl`, or an endless stream of zeros, is refused
/// at once instead of read as reviews.
pub(super) struct NulGuard<R> {
    inner: R,
    read: u64,
    line: u64,
    after_cr: bool,
}

impl<R> NulGuard<R> {
    pub(super) fn new(inner: R) -> Self {
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
pub(super) fn nul_byte(err: &std::io::Error) -> Option<NulByte> {
    err.get_ref()?.downcast_ref::<NulByte>().copied()
}

/// The file's NUL byte, when `err` is [`NulGuard`]'s; `encodings` are those the format
/// takes. `source` was read past its byte-order mark.
pub(super) fn nul_error(
    source: &Path,
    err: &std::io::Error,
    encodings: &str,
) -> Option<anyhow::Error> {
    let nul = nul_byte(err)?.after(skipped_bom(source));
    Some(anyhow!(
        "{} {nul}; give plain text ({encodings})",
        source.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::reviews::{read_csv, read_jsonl, read_review, LoadedReviews};

    #[test]
    fn a_nul_byte_is_named_by_its_line_as_an_editor_counts_lines() {
        for (text, line) in [(&b"a\nb\0"[..], 2), (b"a\rb\r\nc\0", 3), (b"\r\r\n\n\0", 4)] {
            let err = refuse_binary(text, "t.txt", None).unwrap_err().to_string();
            assert!(err.contains(&format!("(line {line}, byte")), "{err}");
        }
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

    /// The line and byte a NUL-byte message gives, `None` for another message.
    fn nul_position(err: &anyhow::Error) -> Option<(u64, u64)> {
        let text = format!("{err:#}");
        let at = text.split("holds a NUL byte (line ").nth(1)?;
        let (line, rest) = at.split_once(", byte ")?;
        let byte = rest.split_once(')')?.0;
        Some((line.parse().ok()?, byte.parse().ok()?))
    }

    #[test]
    fn a_nul_byte_after_a_byte_order_mark_is_placed_as_an_editor_counts_bytes() {
        use crate::data::corpus::read_corpus;
        use crate::data::reviews::load_reviews;
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let acl = dir.path().join("acl");
        std::fs::create_dir_all(acl.join("neg")).unwrap();
        std::fs::create_dir_all(acl.join("pos")).unwrap();
        let cases: [(&str, &[u8]); 4] = [
            ("r.csv", b"review,sentiment\ngood\0 film,1\n"),
            ("r.jsonl", b"{\"label\": 1, \"text\": \"a\0\"}\n"),
            ("acl/pos/1_9.txt", b"good\r\nfilm\0"),
            ("play.txt", b"To be\nor not\0"),
        ];
        for (name, body) in cases {
            for gzip in [false, true] {
                if gzip && name.ends_with(".txt") {
                    continue;
                }
                let mut bytes = b"\xef\xbb\xbf".to_vec();
                bytes.extend_from_slice(body);
                let nul = bytes.iter().position(|&b| b == 0).unwrap();
                let line = 1 + bytes[..nul].iter().filter(|&&b| b == b'\n').count() as u64;
                let nul = nul as u64 + 1;
                let file = dir.path().join(if gzip {
                    format!("{name}.gz")
                } else {
                    name.into()
                });
                if gzip {
                    let mut gz = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                    gz.write_all(&bytes).unwrap();
                    std::fs::write(&file, gz.finish().unwrap()).unwrap();
                } else {
                    std::fs::write(&file, &bytes).unwrap();
                }
                let err = if name.starts_with("acl/") {
                    load_reviews(&acl).unwrap_err()
                } else if name == "play.txt" {
                    read_corpus(&[&file]).unwrap_err()
                } else {
                    load_reviews(&file).unwrap_err()
                };
                assert_eq!(
                    nul_position(&err),
                    Some((line, nul)),
                    "{name} {gzip}: {err:#}"
                );
                if name == "play.txt" {
                    let err = read_review(None, Some(&file)).unwrap_err();
                    assert_eq!(nul_position(&err), Some((line, nul)), "{err:#}");
                }
            }
        }
    }

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
}
