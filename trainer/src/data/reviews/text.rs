//! Opening and reading text files: a `.gz` one unpacked, archives and other compressions
//! refused with the command that unpacks them, and read errors that say where.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use flate2::bufread::MultiGzDecoder;

use super::binary::utf16_fix;
use crate::shell;

/// A UTF-8 byte-order mark, as some Windows editors write: not text.
pub(super) const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Opens a file for buffered reading, decompressing it when its name ends in `.gz`,
/// past a UTF-8 byte-order mark. Refuses a gzip file without that suffix, archives and
/// other compressions, and UTF-16 text, which would otherwise be read as garbage.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let mut reader = open_checked(path)?;
    if starts_with_bom(&mut reader) {
        reader.consume(UTF8_BOM.len());
    }
    Ok(reader)
}

/// The bytes of the UTF-8 byte-order mark that [`open_text`] skips at the start of
/// `path`'s text (3, or 0 without one, or when the file cannot be read): a position
/// in a message counts them, as an editor does.
pub(super) fn skipped_bom(path: &Path) -> u64 {
    let bom = open_checked(path).is_ok_and(|mut reader| starts_with_bom(&mut reader));
    if bom {
        UTF8_BOM.len() as u64
    } else {
        0
    }
}

fn starts_with_bom(reader: &mut dyn BufRead) -> bool {
    reader
        .fill_buf()
        .is_ok_and(|head| head.starts_with(UTF8_BOM))
}

/// [`open_text`] before it skips a byte-order mark.
fn open_checked(path: &Path) -> Result<Box<dyn BufRead>> {
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
    Ok(reader)
}

pub(super) fn is_gz(path: &Path) -> bool {
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

/// The whole of a text file, read as review and corpus files are (a `.gz` one unpacked, past a
/// UTF-8 byte-order mark; UTF-16 and packed files refused by name).
pub fn read_text(path: &Path) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    open_text(path)?
        .read_to_end(&mut text)
        .map_err(|e| read_error(path, None, e.into()))?;
    Ok(text)
}

/// The bytes of a tar member's header, which [`archive_fix`] reads a tarball by.
pub(super) const TAR_HEADER: u64 = 512;

/// What to do with an archive or a compressed file other than gzip (as datasets are
/// downloaded: GloVe comes as a .zip, IMDB as a .tar.gz), told by its first bytes.
pub(super) fn archive_fix(path: &Path, head: &[u8]) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::reviews::load_reviews;
    use crate::data::reviews::tests::JSONL;
    use flate2::write::GzEncoder;
    use std::io::Write;

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
