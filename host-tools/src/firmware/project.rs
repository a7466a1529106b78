//! Stages a model blob and its inputs into the `firmware/` cargo project and
//! builds the device image with the Debian toolchain.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::inputs::check_inputs;
use super::{FirmwareInputs, Toolchain};

/// Where the firmware project lives and where its builds go.
#[derive(Debug, Clone)]
pub struct FirmwareProject {
    /// The `firmware/` cargo project.
    pub dir: PathBuf,
    /// Its cargo target dir (kept apart from the host workspace's artifacts).
    pub target_dir: PathBuf,
}

impl FirmwareProject {
    /// `LSTM_EDGE_FIRMWARE_DIR`, else the `firmware/` folder of this source tree;
    /// builds go to `target/firmware` beside it.
    pub fn locate() -> Result<FirmwareProject> {
        match std::env::var_os("LSTM_EDGE_FIRMWARE_DIR") {
            Some(dir) => Self::at(PathBuf::from(dir)),
            None => Self::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")),
        }
    }

    /// The firmware project in `dir`, checked to build there.
    fn at(dir: PathBuf) -> Result<FirmwareProject> {
        let dir = dir.canonicalize().with_context(|| {
            format!(
                "firmware project not found at {}; set LSTM_EDGE_FIRMWARE_DIR to the \
                 lstm-edge `firmware/` folder",
                dir.display()
            )
        })?;
        if !dir.join("Cargo.toml").is_file() {
            bail!(
                "{} has no Cargo.toml; LSTM_EDGE_FIRMWARE_DIR must name the lstm-edge \
                 `firmware/` folder",
                dir.display()
            );
        }
        // The firmware builds the runtime from `../runtime`, whose manifest inherits
        // from the workspace's: a copy of `firmware/` alone does not build.
        let root = dir.parent().unwrap_or(&dir);
        if !root.join("runtime/Cargo.toml").is_file() || !root.join("Cargo.toml").is_file() {
            bail!(
                "{} builds the runtime from {}, which needs the lstm-edge workspace around it \
                 (its Cargo.toml and runtime/): set LSTM_EDGE_FIRMWARE_DIR to the `firmware/` \
                 folder of a copy of the whole lstm-edge repository",
                dir.display(),
                root.join("runtime").display()
            );
        }
        let target_dir = dir
            .parent()
            .map(|root| root.join("target/firmware"))
            .unwrap_or_else(|| dir.join("target"));
        Ok(FirmwareProject { dir, target_dir })
    }

    /// Builds the firmware with `model` embedded and returns its ELF, copied to a
    /// name derived from the model and inputs, so concurrent builds do not clash.
    pub fn build(&self, model: &Path, inputs: &FirmwareInputs) -> Result<PathBuf> {
        let blob = fs::read(model)
            .with_context(|| format!("cannot read model blob {}", model.display()))?;
        // A blob that does not parse still builds, and fails at boot, as it should.
        let parsed = lstm_edge_runtime::Model::from_bytes(&blob).ok();
        check_inputs(model, blob.len(), parsed.as_ref(), inputs)?;
        let toolchain = Toolchain::detect()?;

        // Builds share one target dir and, for the same inputs, one staging folder,
        // so they take turns: staging, building and copying the ELF out.
        fs::create_dir_all(&self.target_dir).with_context(|| {
            format!(
                "cannot create {}, where firmware builds go: set LSTM_EDGE_FIRMWARE_DIR to the \
                 `firmware/` folder of a writable copy of the lstm-edge repository (builds \
                 then go to target/firmware beside it)",
                self.target_dir.display()
            )
        })?;
        let lock_path = self.target_dir.join("lstm-edge-build.lock");
        let lock = fs::File::create(&lock_path)
            .with_context(|| format!("cannot create {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let staged = self.stage(&blob, inputs)?;

        let output = self
            .cargo_build(&toolchain, &staged, inputs)
            .output()
            .with_context(|| format!("cannot start {}", toolchain.cargo.display()))?;
        if !output.status.success() {
            bail!(
                "firmware build for {} failed ({}):\n{}",
                model.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let built = self
            .target_dir
            .join(inputs.board.target())
            .join("release/lstm-edge-firmware");
        let elf = staged.dir.join("lstm-edge-firmware.elf");
        // Through a temporary and a rename: a QEMU still reading the last ELF of
        // these inputs keeps reading whole the file it opened.
        let temporary = staged.dir.join("lstm-edge-firmware.elf.tmp");
        fs::copy(&built, &temporary)
            .and_then(|_| fs::rename(&temporary, &elf))
            .with_context(|| format!("cannot copy {} to {}", built.display(), elf.display()))?;
        drop(lock);
        Ok(elf)
    }

    /// Writes the blob, reviews and prompt into a folder named after a hash of
    /// them and the other inputs, where the firmware's build script reads them.
    fn stage(&self, blob: &[u8], inputs: &FirmwareInputs) -> Result<Staged> {
        let mut hasher = DefaultHasher::new();
        blob.hash(&mut hasher);
        inputs.hash(&mut hasher);
        let dir = self
            .target_dir
            .join("inputs")
            .join(format!("{:016x}", hasher.finish()));
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let staged = Staged {
            model: dir.join("model.bin"),
            reviews: dir.join("reviews.txt"),
            prompt: dir.join("prompt.txt"),
            dir,
        };
        // Each review ends with a newline, so an empty last review is still a line.
        let reviews: Vec<u8> = inputs
            .reviews
            .iter()
            .flat_map(|r| r.iter().chain(b"\n"))
            .copied()
            .collect();
        for (path, bytes) in [
            (&staged.model, blob),
            (&staged.reviews, &reviews[..]),
            (&staged.prompt, &inputs.prompt[..]),
        ] {
            // Unchanged inputs keep their modification time, so cargo does not
            // rerun the build script and relink for them.
            if fs::read(path).ok().as_deref() != Some(bytes) {
                fs::write(path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(staged)
    }

    /// The device build's cargo command, with the staged inputs and settings in
    /// its environment.
    fn cargo_build(
        &self,
        toolchain: &Toolchain,
        staged: &Staged,
        inputs: &FirmwareInputs,
    ) -> Command {
        let temperatures = inputs
            .temperatures_milli
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut command = Command::new(&toolchain.cargo);
        command
            .current_dir(&self.dir)
            .args(["build", "--release", "--quiet", "-Zbuild-std=core"])
            .arg("--target")
            .arg(inputs.board.target())
            .arg("--target-dir")
            .arg(&self.target_dir)
            .env("RUSTC", &toolchain.rustc)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("LSTM_EDGE_MODEL", &staged.model)
            .env("LSTM_EDGE_REVIEWS", &staged.reviews)
            .env("LSTM_EDGE_PROMPT", &staged.prompt)
            .env("LSTM_EDGE_GEN_CHARS", inputs.gen_chars.to_string())
            .env("LSTM_EDGE_TEMPERATURES", temperatures)
            .env("LSTM_EDGE_SEED", inputs.seed.to_string())
            .env("LSTM_EDGE_BOARD", inputs.board.name())
            .stdin(Stdio::null());
        // Settings meant for the host build (or the calling cargo) must not
        // leak into the device build; the build script fits the state and logit
        // buffers to the model.
        for var in [
            "LSTM_EDGE_MAX_HIDDEN",
            "LSTM_EDGE_MAX_CLASSES",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTDOCFLAGS",
            "CARGO",
            "CARGO_MANIFEST_DIR",
        ] {
            command.env_remove(var);
        }
        command
    }
}

/// Where [`FirmwareProject::stage`] put one build's inputs.
struct Staged {
    dir: PathBuf,
    model: PathBuf,
    reviews: PathBuf,
    prompt: PathBuf,
}

/// Builds the firmware of this source tree for `model` (see [`FirmwareProject::build`]).
pub fn build(model: &Path, inputs: &FirmwareInputs) -> Result<PathBuf> {
    FirmwareProject::locate()?.build(model, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_firmware_folder_outside_its_workspace_is_refused() {
        let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = FirmwareProject::at(tree.join("firmware")).unwrap();
        assert!(project.target_dir.ends_with("target/firmware"));
        let copy = tempfile::tempdir().unwrap();
        let firmware = copy.path().join("firmware");
        fs::create_dir(&firmware).unwrap();
        fs::copy(
            tree.join("firmware/Cargo.toml"),
            firmware.join("Cargo.toml"),
        )
        .unwrap();
        let err = format!("{:#}", FirmwareProject::at(firmware).unwrap_err());
        assert!(
            err.contains("needs the lstm-edge workspace around it")
                && err.contains("a copy of the whole lstm-edge repository"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            FirmwareProject::at(copy.path().to_path_buf()).unwrap_err()
        );
        assert!(err.contains("has no Cargo.toml"), "{err}");
    }
}
