//! Reads the section sizes of a built image with `arm-none-eabi-size`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::Toolchain;

/// Section sizes of an ELF, as `arm-none-eabi-size` (Berkeley format) reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionSizes {
    /// Flash: code, read-only data (the model blob among them) and the vector table.
    pub text: u64,
    /// Initialised RAM (its initial values also take flash).
    pub data: u64,
    /// Zeroed RAM.
    pub bss: u64,
}

/// Runs `arm-none-eabi-size` on `elf`.
pub fn section_sizes(elf: &Path) -> Result<SectionSizes> {
    let toolchain = Toolchain::detect()?;
    let output = Command::new(&toolchain.size)
        .arg(elf)
        .output()
        .with_context(|| format!("cannot start {}", toolchain.size.display()))?;
    if !output.status.success() {
        bail!(
            "{} {} failed: {}",
            toolchain.size.display(),
            elf.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_size_output(&String::from_utf8_lossy(&output.stdout))
}

fn parse_size_output(text: &str) -> Result<SectionSizes> {
    let row = text
        .lines()
        .nth(1)
        .context("arm-none-eabi-size printed no size row")?;
    let numbers: Vec<u64> = row
        .split_ascii_whitespace()
        .take(3)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read arm-none-eabi-size row `{row}`"))?;
    match numbers[..] {
        [text, data, bss] => Ok(SectionSizes { text, data, bss }),
        _ => bail!("arm-none-eabi-size row `{row}` has fewer than 3 numbers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_berkeley_size_output() {
        let text = "   text\t   data\t    bss\t    dec\t    hex\tfilename\n  \
                    1320\t      4\t      8\t   1332\t    534\tfirmware\n";
        assert_eq!(
            parse_size_output(text).unwrap(),
            SectionSizes {
                text: 1320,
                data: 4,
                bss: 8
            }
        );
        assert!(parse_size_output("nothing").is_err());
    }
}
