//! Helpers of the command-line tests: the repository, the built `lstm-edge` run from
//! it, and what a run printed.
// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn data(rel: &str) -> String {
    repo().join("data").join(rel).display().to_string()
}

pub fn cli() -> Command {
    let mut cmd = Command::cargo_bin("lstm-edge").unwrap();
    cmd.current_dir(repo());
    cmd
}

pub fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out));
    })
}

/// Runs `cmd`, expects failure, and returns stderr.
pub fn failure(cmd: &mut Command) -> String {
    let out = cmd.assert().failure().get_output().stderr.clone();
    String::from_utf8_lossy(&out).into_owned()
}

/// The standard error of a command that succeeds.
pub fn success_stderr(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stderr.clone();
    String::from_utf8_lossy(&out).into_owned()
}
