//! Builds the Cortex-M firmware (`firmware/`) for a model blob and a board, and
//! runs it under QEMU (`mps2-an386`, Cortex-M4F; `mps2-an385`, Cortex-M3),
//! parsing its line protocol.
//!
//! The device toolchain is Debian's: `rustc-web` and `cargo-web` (with
//! `rust-web-src` for `-Zbuild-std=core`), `binutils-arm-none-eabi` for the
//! linker and `qemu-system-arm`. A missing piece is an error that names the
//! package to install.
//!
//! The firmware prints one record per line (see `firmware/src/main.rs`):
//!
//! ```text
//! lstm-edge-firmware 3
//! clock <systick hz>
//! model <cell> hidden=<h> input=<chars|words>:<tokens> head=<head> output=<output> path=<int|f32> blob=<bytes>
//! score <index> <score> <ticks> <steps>
//! gen <temperature milli> <seed> <text as hex> <prompt ticks> <generation ticks>
//! open <check ticks> <network ticks>
//! stack <peak bytes> <region bytes>
//! end
//! error <message>      (then it exits non-zero)
//! ```

mod host;
mod inputs;
mod output;
mod project;
mod run;
mod size;
mod toolchain;

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Result};

pub use host::{host_run, HostRun};
pub use inputs::FirmwareInputs;
pub use output::{parse_output, FirmwareOutput, Generation, OpenTicks, Score};
pub use project::{build, FirmwareProject};
pub use run::{qemu_args, run, run_with_timeout, FirmwareFailed, DEFAULT_RUN_TIMEOUT};
pub use size::{section_sizes, SectionSizes};
pub use toolchain::{find_qemu, MissingToolchain, Toolchain};

/// The version of the firmware's line protocol, from the firmware's own source.
#[path = "../../../firmware/src/protocol.rs"]
mod protocol;
pub use protocol::PROTOCOL_VERSION;
/// Under QEMU's `-icount shift=0` one instruction takes 1 ns of virtual time.
pub const INSTRUCTIONS_PER_SECOND: u64 = 1_000_000_000;

/// probe-rs's name for the STM32F407 of the `stm32f407` board.
pub const STM32F407_CHIP: &str = "STM32F407VGTx";

/// The board the firmware image is linked for (its memory map).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Board {
    /// QEMU's `mps2-an386` (Cortex-M4F, flash at 0x0, RAM at 0x2000_0000).
    #[default]
    #[value(name = "mps2-an386")]
    Mps2An386,
    /// QEMU's `mps2-an385` (Cortex-M3: no FPU, no DSP extension; the same memory
    /// map): the runtime's portable integer kernels, without float arithmetic.
    #[value(name = "mps2-an385")]
    Mps2An385,
    /// STM32F407 boards (1 MiB flash at 0x0800_0000, 128 KiB RAM), for probe-rs.
    #[value(name = "stm32f407")]
    Stm32f407,
}

impl Board {
    /// Flash size, as the board's `firmware/memory/*.x` gives it.
    pub fn flash_bytes(self) -> usize {
        match self {
            Board::Mps2An386 | Board::Mps2An385 => 4 << 20,
            Board::Stm32f407 => 1 << 20,
        }
    }

    /// The name `firmware/build.rs` reads from `LSTM_EDGE_BOARD`.
    pub fn name(self) -> &'static str {
        match self {
            Board::Mps2An386 => "mps2-an386",
            Board::Mps2An385 => "mps2-an385",
            Board::Stm32f407 => "stm32f407",
        }
    }

    /// Whether the board's core has an FPU (an f32 blob runs in software float
    /// on one without).
    pub fn has_fpu(self) -> bool {
        self != Board::Mps2An385
    }

    /// The Rust target of the board's core (`firmware/.cargo/config.toml` sets its
    /// CPU and linker).
    pub fn target(self) -> &'static str {
        match self {
            Board::Mps2An386 | Board::Stm32f407 => "thumbv7em-none-eabihf",
            Board::Mps2An385 => "thumbv7m-none-eabi",
        }
    }

    /// The shell command that runs an image built for the board: QEMU for the
    /// emulated boards, probe-rs (which flashes it and prints its semihosting
    /// output) for a real one.
    pub fn run_command(self, elf: &Path) -> String {
        let words: Vec<OsString> = match self {
            Board::Mps2An386 | Board::Mps2An385 => {
                let emulated = self.emulated().expect("an emulated board");
                std::iter::once(OsString::from("qemu-system-arm"))
                    .chain(qemu_args(elf, emulated))
                    .collect()
            }
            Board::Stm32f407 => ["probe-rs", "run", "--chip", STM32F407_CHIP]
                .iter()
                .map(OsString::from)
                .chain([elf.as_os_str().to_owned()])
                .collect(),
        };
        let quoted: Vec<String> = words.iter().map(lstm_edge_trainer::shell::quoted).collect();
        quoted.join(" ")
    }

    /// QEMU's `-cpu` and `-machine` for the board; an error for a board QEMU
    /// does not emulate.
    pub fn emulated(self) -> Result<(&'static str, &'static str)> {
        match self {
            Board::Mps2An386 => Ok(("cortex-m4", "mps2-an386")),
            Board::Mps2An385 => Ok(("cortex-m3", "mps2-an385")),
            Board::Stm32f407 => bail!(
                "QEMU does not emulate {0}: `firmware run` takes --board mps2-an386 or \
                 mps2-an385 (build a {0} image with `firmware build` and flash it with probe-rs)",
                self.name()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_board_says_how_its_image_runs() {
        let elf = Path::new("/out/lstm-edge-firmware.elf");
        assert_eq!(
            Board::Stm32f407.run_command(elf),
            format!("probe-rs run --chip {STM32F407_CHIP} /out/lstm-edge-firmware.elf")
        );
        // A path a shell would split or expand is quoted.
        let spaced = Board::Stm32f407.run_command(Path::new("/my models/it's.elf"));
        assert!(spaced.ends_with(r"'/my models/it'\''s.elf'"), "{spaced}");
        let m3 = Board::Mps2An385.run_command(elf);
        assert!(
            m3.starts_with("qemu-system-arm -cpu cortex-m3 -machine mps2-an385 ")
                && m3.ends_with("-kernel /out/lstm-edge-firmware.elf"),
            "{m3}"
        );
    }
}
