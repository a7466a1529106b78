//! Quoting for the shell commands that messages and model cards print.

use std::ffi::OsStr;

/// `word` (an argument or a path) as bash reads it back: as it is when nothing in it
/// needs quotes, else in single quotes; bytes that are not UTF-8 (a path is any
/// bytes on Unix) as `$'\xHH'`, so the command still names the same file.
pub fn quoted(word: impl AsRef<OsStr>) -> String {
    let word = word.as_ref();
    if let Some(text) = word.to_str() {
        return shell_words::quote(text).into_owned();
    }
    let mut quoted = String::from("$'");
    for chunk in word.as_encoded_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' | '\'' => quoted.extend(['\\', c]),
                c if c.is_control() => {
                    for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                        quoted.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => quoted.push(c),
            }
        }
        for byte in chunk.invalid() {
            quoted.push_str(&format!("\\x{byte:02x}"));
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn arguments_that_are_not_utf8_are_recorded_in_bash_quoting() {
        use std::os::unix::ffi::OsStrExt;
        let arg = |bytes: &[u8]| quoted(OsStr::from_bytes(bytes));
        assert_eq!(arg(b"plain"), "plain");
        assert_eq!(arg(b"with space"), "'with space'");
        assert_eq!(
            arg(b"caf\xe9 it's\\\n.txt"),
            "$'caf\\xe9 it\\'s\\\\\\x0a.txt'"
        );
        let typed = std::process::Command::new("bash")
            .args(["-c", &format!("printf %s {}", arg(b"a\xff\x01'\\b"))])
            .output()
            .unwrap();
        assert_eq!(typed.stdout, b"a\xff\x01'\\b");
    }
}
