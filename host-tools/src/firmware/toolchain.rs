//! Finds the Debian device toolchain (rustc, cargo, the ARM binutils) and QEMU,
//! naming the packages to install when a piece is missing.

use std::fmt;
use std::path::{Path, PathBuf};

/// The Debian tools that build the firmware, found on this machine (running it under
/// QEMU needs [`find_qemu`] as well; flashing a board does not).
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub cargo: PathBuf,
    pub rustc: PathBuf,
    pub linker: PathBuf,
    pub size: PathBuf,
}

/// The device toolchain is incomplete; lists the Debian packages that are missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingToolchain {
    pub packages: Vec<&'static str>,
}

impl fmt::Display for MissingToolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = self.packages.join(" ");
        write!(
            f,
            "the device toolchain is missing Debian packages: {list}; install them with \
             `apt-get install -y {list}` (or `bash scripts/install-device-deps.sh`)"
        )
    }
}

impl std::error::Error for MissingToolchain {}

impl Toolchain {
    /// Finds Debian's rustc/cargo (with their core source), and the ARM binutils on
    /// `PATH`.
    pub fn detect() -> Result<Toolchain, MissingToolchain> {
        Self::detect_in(&std::env::var_os("PATH").unwrap_or_default())
    }

    /// [`Toolchain::detect`] with `search_path` (a `PATH`-style list) for the ARM
    /// binutils.
    pub fn detect_in(search_path: &std::ffi::OsStr) -> Result<Toolchain, MissingToolchain> {
        let mut packages = Vec::new();
        let rustc = PathBuf::from("/usr/bin/rustc");
        let cargo = PathBuf::from("/usr/bin/cargo");
        if !rustc.is_file() {
            packages.push("rustc-web");
        }
        if !cargo.is_file() {
            packages.push("cargo-web");
        }
        if !Path::new("/usr/lib/rustlib/src/rust/library/core/Cargo.toml").is_file() {
            packages.push("rust-web-src");
        }
        let linker = find_in_path(search_path, "arm-none-eabi-ld");
        let size = find_in_path(search_path, "arm-none-eabi-size");
        if linker.is_none() || size.is_none() {
            packages.push("binutils-arm-none-eabi");
        }
        match (linker, size) {
            (Some(linker), Some(size)) if packages.is_empty() => Ok(Toolchain {
                cargo,
                rustc,
                linker,
                size,
            }),
            _ => Err(MissingToolchain { packages }),
        }
    }
}

/// QEMU on `PATH`, which runs the firmware.
pub fn find_qemu() -> Result<PathBuf, MissingToolchain> {
    find_qemu_in(&std::env::var_os("PATH").unwrap_or_default())
}

fn find_qemu_in(search_path: &std::ffi::OsStr) -> Result<PathBuf, MissingToolchain> {
    find_in_path(search_path, "qemu-system-arm").ok_or(MissingToolchain {
        packages: vec!["qemu-system-arm"],
    })
}

fn find_in_path(search_path: &std::ffi::OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn missing_packages_are_named_with_the_install_command() {
        let message = MissingToolchain {
            packages: vec!["binutils-arm-none-eabi", "qemu-system-arm"],
        }
        .to_string();
        assert!(message.contains("apt-get install -y binutils-arm-none-eabi qemu-system-arm"));
    }

    #[test]
    fn tools_missing_from_the_path_name_their_packages() {
        let empty = empty_dir();
        let missing = Toolchain::detect_in(empty.as_os_str()).unwrap_err();
        assert!(missing.packages.contains(&"binutils-arm-none-eabi"));
        // Only running the firmware needs QEMU.
        assert!(!missing.packages.contains(&"qemu-system-arm"));
        let missing = find_qemu_in(empty.as_os_str()).unwrap_err();
        assert_eq!(missing.packages, ["qemu-system-arm"]);
    }

    fn empty_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lstm-edge-empty-path-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
