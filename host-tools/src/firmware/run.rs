//! Runs a built image under QEMU with the instruction-counting clock, and turns
//! its exit and console into a [`FirmwareOutput`] or a [`FirmwareFailed`].

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{find_qemu, parse_output, Board, FirmwareOutput};

/// The firmware ran but failed: it exited non-zero (after printing `error ...`),
/// or printed something this module cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareFailed {
    /// QEMU's exit status, if it exited on its own.
    pub status: Option<i32>,
    /// The message of the firmware's `error` line, or what went wrong.
    pub message: String,
    /// The whole console output.
    pub console: String,
}

impl fmt::Display for FirmwareFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(code) => write!(f, "firmware failed (exit status {code}): {}", self.message),
            None => write!(f, "firmware failed: {}", self.message),
        }
    }
}

impl std::error::Error for FirmwareFailed {}

/// How long a firmware run may take before it is stopped.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `elf`, built for `board`, under QEMU (instruction-counting clock) and
/// parses its output.
pub fn run(elf: &Path, board: Board) -> Result<FirmwareOutput> {
    run_with_timeout(elf, board, DEFAULT_RUN_TIMEOUT)
}

/// [`run`] with a time limit; a run past it is stopped and reported as failed.
pub fn run_with_timeout(elf: &Path, board: Board, timeout: Duration) -> Result<FirmwareOutput> {
    let machine = board.emulated()?;
    let qemu = find_qemu()?;
    if !elf.is_file() {
        bail!("firmware image {} does not exist", elf.display());
    }
    let mut child = Command::new(&qemu)
        .args(qemu_args(elf, machine))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", qemu.display()))?;
    let stdout = child.stdout.take().context("QEMU stdout")?;
    let stderr = child.stderr.take().context("QEMU stderr")?;
    let stdout_reader = thread::spawn(move || read_all(stdout));
    let stderr_reader = thread::spawn(move || read_all(stderr));

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > timeout {
            child.kill()?;
            child.wait()?;
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );

    let Some(status) = status else {
        return Err(FirmwareFailed {
            status: None,
            message: format!(
                "no exit within {} s; stopped (a long generation needs more time: \
                 `lstm-edge firmware run --timeout SECONDS`); {}",
                timeout.as_secs(),
                progress_of(&String::from_utf8_lossy(&stdout))
            ),
            console,
        }
        .into());
    };
    if !status.success() {
        let message = console
            .lines()
            .find_map(|line| line.strip_prefix("error "))
            .map(str::to_owned)
            .unwrap_or_else(|| last_lines(&console, 5));
        return Err(FirmwareFailed {
            status: status.code(),
            message,
            console,
        }
        .into());
    }
    parse_output(&console).map_err(|message| {
        FirmwareFailed {
            status: status.code(),
            message,
            console: console.clone(),
        }
        .into()
    })
}

/// QEMU's arguments for a `(cpu, machine)` of [`Board::emulated`], with the
/// instruction-counting clock.
pub fn qemu_args(elf: &Path, (cpu, machine): (&str, &str)) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-cpu",
        cpu,
        "-machine",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        "-kernel",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(elf.as_os_str().to_owned());
    args
}

fn read_all(mut reader: impl Read) -> Vec<u8> {
    let mut buffer = Vec::new();
    // A read error only shortens the captured console; the exit status still decides.
    let _ = reader.read_to_end(&mut buffer);
    buffer
}

/// How far a stopped run got, from its standard output (QEMU's stderr would end
/// the last line): its complete records, and the chars of a generation it was
/// printing (a `gen` record's text streams as hex).
fn progress_of(console: &str) -> String {
    let lines: Vec<&str> = console.split_inclusive('\n').collect();
    let complete = |keyword: &str| {
        lines
            .iter()
            .filter(|line| line.ends_with('\n') && line.starts_with(keyword))
            .count()
    };
    let partial = lines
        .last()
        .filter(|line| !line.ends_with('\n') && line.starts_with("gen "))
        .and_then(|line| line.split(' ').nth(3))
        .map_or(0, |hex| hex.len() / 2);
    let mut progress = format!(
        "it had scored {} review(s) and finished {} generation(s)",
        complete("score "),
        complete("gen ")
    );
    if partial > 0 {
        progress += &format!(", and printed {partial} chars of the next");
    }
    progress
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(count);
    match lines.get(start..) {
        Some(tail) if !tail.is_empty() => tail.join(" | "),
        _ => "no output".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_run_says_how_far_it_got() {
        let console =
            "lstm-edge-firmware 3\nscore 0 5 10 3\ngen 500 42 6162 1 2\ngen 1000 42 616263";
        assert_eq!(
            progress_of(console),
            "it had scored 1 review(s) and finished 1 generation(s), and printed 3 chars of the next"
        );
        assert_eq!(
            progress_of(""),
            "it had scored 0 review(s) and finished 0 generation(s)"
        );
    }
}
