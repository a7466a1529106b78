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
//! lstm-edge-firmware 1
//! clock <systick hz>
//! model <cell> hidden=<h> input=<chars|words>:<tokens> head=<head> output=<output> path=<int|f32> blob=<bytes>
//! score <index> <score> <ticks> <steps>
//! gen <temperature milli> <seed> <text as hex> <prompt ticks> <generation ticks>
//! stack <peak bytes> <region bytes>
//! end
//! error <message>      (then it exits non-zero)
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Output, Params};
use lstm_edge_runtime::numeric::{Int, Numeric};

/// The version of the firmware's line protocol, from the firmware's own source.
#[path = "../../firmware/src/protocol.rs"]
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

/// What the firmware does with its model, fixed at build time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FirmwareInputs {
    /// Reviews scored by a sentiment model, each on its own line (no `\n` inside).
    pub reviews: Vec<Vec<u8>>,
    /// The prompt a generator model is fed before sampling.
    pub prompt: Vec<u8>,
    /// Characters generated per temperature.
    pub gen_chars: usize,
    /// Sampling temperatures in thousandths (500 = 0.5); each run starts from a
    /// fresh state and a fresh generator seeded with `seed`.
    pub temperatures_milli: Vec<u32>,
    pub seed: u64,
    pub board: Board,
}

impl Default for FirmwareInputs {
    fn default() -> Self {
        FirmwareInputs {
            reviews: Vec::new(),
            prompt: b"the ".to_vec(),
            gen_chars: 100,
            temperatures_milli: vec![200, 500, 1000],
            seed: 42,
            board: Board::default(),
        }
    }
}

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

/// Inputs the firmware cannot take, caught before a build is started: a
/// sentiment model needs reviews; a generator takes none, and its
/// prompt must be in its table; the blob must be the integer one and fit the flash.
fn check_inputs(
    model: &Path,
    blob_len: usize,
    parsed: Option<&lstm_edge_runtime::Model<'_>>,
    inputs: &FirmwareInputs,
) -> Result<()> {
    let flash = inputs.board.flash_bytes();
    // The reviews and the prompt are built into the image beside the blob.
    let reviews: usize = inputs.reviews.iter().map(Vec::len).sum();
    let texts = reviews + inputs.prompt.len();
    let (what, fix) = if inputs.reviews.is_empty() {
        (format!("the prompt takes {texts} B"), "a shorter prompt")
    } else {
        (
            format!("the reviews take {reviews} B"),
            "fewer or shorter reviews",
        )
    };
    if blob_len + FIRMWARE_CODE_BYTES <= flash && blob_len + FIRMWARE_CODE_BYTES + texts > flash {
        bail!(
            "{what}, and with {} ({blob_len} B) and about {FIRMWARE_CODE_BYTES} B \
             of firmware they overflow the {} flash of {flash} B: give {fix}",
            model.display(),
            inputs.board.name()
        );
    }
    if blob_len + FIRMWARE_CODE_BYTES > flash {
        bail!(
            "{} is {blob_len} B; the {} flash holds {flash} B, about {FIRMWARE_CODE_BYTES} B of \
             them for the firmware itself: train a smaller model (--hidden, --vocab-size, --embed-dim)",
            model.display(),
            inputs.board.name()
        );
    }
    if let Some(parsed) = parsed {
        if matches!(parsed.body().params, Params::F32(_)) {
            bail!(
                "{} is an f32 blob; the firmware runs the integer one: give the model directory \
                 or its model.blob",
                model.display()
            );
        }
        if let Output::Softmax { classes } = parsed.body().output {
            let tokens = parsed.dims().tokens;
            ensure!(
                usize::from(classes) == tokens,
                "{} is a classifier of {classes} classes (an imported softmax model with fewer \
                 classes than its {tokens} token ids): the firmware scores sigmoid sentiment \
                 models and runs generators; score it on the host with `lstm-edge score`",
                model.display()
            );
        }
        let sentiment = parsed.body().output == Output::Sigmoid;
        if sentiment && inputs.reviews.is_empty() {
            bail!(
                "{} is a sentiment model: give at least one --review TEXT for the firmware to score",
                model.display()
            );
        }
        if !sentiment && !inputs.reviews.is_empty() {
            bail!(
                "{} is a generator model: it takes --prompt, not --review",
                model.display()
            );
        }
        if !sentiment {
            check_prompt(model, parsed, &inputs.prompt)?;
        }
    }
    if let Some(index) = inputs
        .reviews
        .iter()
        .position(|r| r.iter().any(|b| matches!(b, b'\n' | b'\r')))
    {
        bail!(
            "review {} contains a line break; the firmware takes one review per line: \
             join its lines with spaces",
            index + 1
        );
    }
    if inputs.temperatures_milli.is_empty() {
        bail!("no sampling temperature given; pass at least one (e.g. 500 for 0.5)");
    }
    Ok(())
}

/// Room the firmware's own code and tables take in flash besides the blob (tens of
/// KB; the rest is margin).
const FIRMWARE_CODE_BYTES: usize = 64 * 1024;

/// A generator's prompt must map to its table on the host as it will on the device.
fn check_prompt(model: &Path, parsed: &lstm_edge_runtime::Model<'_>, prompt: &[u8]) -> Result<()> {
    let net = lstm_edge_runtime::Network::<Int>::new(parsed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let unknown = net.tokenizer().for_each_id(prompt, |_| Ok(())).err();
    if let Some(lstm_edge_runtime::Error::UnknownChar(c)) = unknown {
        bail!(
            "the prompt holds {:?}, which is not among {}'s chars: remove it",
            char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER),
            model.display()
        );
    }
    if prompt.is_empty() {
        bail!("the prompt is empty: give the model some text to continue");
    }
    Ok(())
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

/// A review's score as the firmware printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub index: usize,
    /// The integer path's sigmoid output, as the runtime returns it.
    pub value: i64,
    /// SysTick ticks spent scoring it.
    pub ticks: u64,
    /// Cell steps it took (padding included).
    pub steps: u32,
}

impl Score {
    /// The score as a probability (the integer path's fixed-point sigmoid, decoded),
    /// or `None` if the printed value is not one.
    pub fn probability(&self) -> Option<f64> {
        let raw = u32::try_from(self.value).ok()?;
        Some(<Int as Numeric>::prob_to_f64(raw))
    }
}

/// One generation run as the firmware printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub temperature_milli: u32,
    pub seed: u64,
    /// SysTick ticks spent feeding the prompt.
    pub prompt_ticks: u64,
    /// SysTick ticks spent generating `text`.
    pub ticks: u64,
    pub text: Vec<u8>,
}

/// Everything a successful firmware run printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareOutput {
    /// SysTick frequency: with `-icount shift=0`, one tick is
    /// `INSTRUCTIONS_PER_SECOND / clock_hz` instructions.
    pub clock_hz: u64,
    /// The `model` line, after the keyword.
    pub model: String,
    pub scores: Vec<Score>,
    pub generations: Vec<Generation>,
    /// Peak stack use found by stack painting, and the painted region's size.
    pub stack_peak_bytes: u64,
    pub stack_region_bytes: u64,
    /// The whole console output.
    pub console: String,
}

impl FirmwareOutput {
    /// Instructions per SysTick tick under `-icount shift=0`.
    pub fn instructions_per_tick(&self) -> u64 {
        INSTRUCTIONS_PER_SECOND / self.clock_hz.max(1)
    }
}

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

/// Parses the firmware's line protocol (see the module docs).
pub fn parse_output(console: &str) -> Result<FirmwareOutput, String> {
    let mut version = None;
    let mut clock_hz = None;
    let mut model = None;
    let mut scores = Vec::new();
    let mut generations = Vec::new();
    let mut stack = None;
    let mut ended = false;
    for (number, line) in console.lines().enumerate() {
        let number = number + 1;
        // Fields are split on single spaces: a generation that drew no printable
        // char has an empty text field between two spaces.
        let mut fields = line.trim_end().split(' ');
        let Some(keyword) = fields.next().filter(|keyword| !keyword.is_empty()) else {
            continue;
        };
        let fields: Vec<&str> = fields.collect();
        let bad = |what: &str| format!("console line {number} `{line}`: {what}");
        let int = |index: usize, what: &str| -> Result<u64, String> {
            fields
                .get(index)
                .and_then(|field| field.parse().ok())
                .ok_or_else(|| bad(&format!("field {} ({what}) is not a number", index + 1)))
        };
        match keyword {
            "lstm-edge-firmware" => version = Some(int(0, "protocol version")?),
            "clock" => clock_hz = Some(int(0, "clock hz")?),
            "model" => model = Some(fields.join(" ")),
            "score" => {
                let value = fields
                    .get(1)
                    .and_then(|field| field.parse::<i64>().ok())
                    .ok_or_else(|| bad("field 2 (score) is not an integer"))?;
                scores.push(Score {
                    index: int(0, "review index")? as usize,
                    value,
                    ticks: int(2, "ticks")?,
                    steps: int(3, "steps")? as u32,
                });
            }
            "gen" => {
                let hex = fields.get(2).copied().unwrap_or("");
                let text = decode_hex(hex).ok_or_else(|| bad("field 3 (text) is not hex"))?;
                generations.push(Generation {
                    temperature_milli: int(0, "temperature")? as u32,
                    seed: int(1, "seed")?,
                    prompt_ticks: int(3, "prompt ticks")?,
                    ticks: int(4, "generation ticks")?,
                    text,
                });
            }
            "stack" => stack = Some((int(0, "peak bytes")?, int(1, "region bytes")?)),
            "end" => ended = true,
            "error" => return Err(bad("the firmware reported an error")),
            _ => {}
        }
    }
    match version {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "firmware speaks protocol {v}, this tool reads {PROTOCOL_VERSION}; rebuild it"
            ))
        }
        None => return Err("no `lstm-edge-firmware` banner in the output".to_owned()),
    }
    if !ended {
        return Err("the output stops before its `end` line".to_owned());
    }
    let (stack_peak_bytes, stack_region_bytes) =
        stack.ok_or_else(|| "no `stack` line in the output".to_owned())?;
    Ok(FirmwareOutput {
        clock_hz: clock_hz.ok_or_else(|| "no `clock` line in the output".to_owned())?,
        model: model.ok_or_else(|| "no `model` line in the output".to_owned())?,
        scores,
        generations,
        stack_peak_bytes,
        stack_region_bytes,
        console: console.to_owned(),
    })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

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

    const GOOD: &str = "lstm-edge-firmware 1\nclock 25000000\n\
        model lstm hidden=8 input=chars:30 head=last output=softmax:30 path=int blob=1234\n\
        score 0 536870912 120 12\n\
        gen 500 7 68690a 10 99\n\
        stack 612 4190000\nend\n";

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

    /// Runs [`check_inputs`] on a shipped model's blob.
    fn check_shipped(model: &str, blob: &str, inputs: &FirmwareInputs) -> Result<()> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(model)
            .join(blob);
        let bytes = fs::read(&path).unwrap();
        let parsed = lstm_edge_runtime::Model::from_bytes(&bytes).unwrap();
        check_inputs(&path, bytes.len(), Some(&parsed), inputs)
    }

    #[test]
    fn inputs_the_device_would_refuse_are_refused_before_a_build() {
        let reviews = |list: &[&str]| FirmwareInputs {
            reviews: list.iter().map(|r| r.as_bytes().to_vec()).collect(),
            ..FirmwareInputs::default()
        };
        check_shipped("c-mean", "model.blob", &reviews(&["good", ""])).unwrap();
        let err = check_shipped("c-mean", "model-f32.blob", &reviews(&["good"])).unwrap_err();
        assert!(err.to_string().contains("is an f32 blob"), "{err}");
        let prompt = |text: &str| FirmwareInputs {
            prompt: text.as_bytes().to_vec(),
            ..FirmwareInputs::default()
        };
        check_shipped("g", "model.blob", &prompt("the king")).unwrap();
        let err = check_shipped("g", "model.blob", &prompt("the \u{2014} king")).unwrap_err();
        assert!(
            err.to_string().contains("'\u{2014}', which is not among"),
            "{err}"
        );
        let stm32 = FirmwareInputs {
            board: Board::Stm32f407,
            ..reviews(&["good"])
        };
        check_shipped("c-mean", "model.blob", &stm32).unwrap();
        let err = check_shipped("c-mean", "model.blob", &reviews(&["good", "bad\r"])).unwrap_err();
        assert!(
            err.to_string().contains("review 2 contains a line break"),
            "{err}"
        );
        // An imported classifier: neither a sentiment model nor a generator.
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/foreign");
        let onnx = std::fs::read(fixtures.join("torch_gru_last_softmax.onnx")).unwrap();
        let chars = lstm_edge_trainer::import::TokenTable::Chars {
            table: b"abcdefghijklmnopqr".to_vec(),
            lowercase: false,
            unk: true,
            pad: true,
        };
        let blob = lstm_edge_trainer::import::import(&onnx, &chars)
            .unwrap()
            .int_blob;
        let parsed = lstm_edge_runtime::Model::from_bytes(&blob).unwrap();
        for inputs in [prompt("abc"), reviews(&["abc"])] {
            let err = check_inputs(Path::new("c.blob"), blob.len(), Some(&parsed), &inputs)
                .unwrap_err()
                .to_string();
            assert!(err.contains("c.blob is a classifier of 5 classes"), "{err}");
        }
        let long = "good ".repeat(200_000);
        let long_on_stm32 = FirmwareInputs {
            board: Board::Stm32f407,
            ..reviews(&[&long])
        };
        let err = check_shipped("c-mean", "model.blob", &long_on_stm32).unwrap_err();
        assert!(
            err.to_string().contains("the reviews take 1000000 B"),
            "{err}"
        );
        let err = check_inputs(Path::new("big.blob"), 1 << 20, None, &stm32).unwrap_err();
        assert!(
            err.to_string()
                .contains("the stm32f407 flash holds 1048576 B"),
            "{err}"
        );
    }

    #[test]
    fn a_stopped_run_says_how_far_it_got() {
        let console =
            "lstm-edge-firmware 1\nscore 0 5 10 3\ngen 500 42 6162 1 2\ngen 1000 42 616263";
        assert_eq!(
            progress_of(console),
            "it had scored 1 review(s) and finished 1 generation(s), and printed 3 chars of the next"
        );
        assert_eq!(
            progress_of(""),
            "it had scored 0 review(s) and finished 0 generation(s)"
        );
    }

    #[test]
    fn parses_every_record() {
        let out = parse_output(GOOD).unwrap();
        assert_eq!(out.clock_hz, 25_000_000);
        assert_eq!(out.instructions_per_tick(), 40);
        assert!(out.model.starts_with("lstm hidden=8"));
        assert_eq!(
            out.scores,
            vec![Score {
                index: 0,
                value: 536870912,
                ticks: 120,
                steps: 12
            }]
        );
        assert_eq!(out.scores[0].probability(), Some(0.5));
        let negative = Score {
            value: -1,
            ..out.scores[0].clone()
        };
        assert_eq!(negative.probability(), None);
        assert_eq!(out.generations.len(), 1);
        assert_eq!(out.generations[0].text, b"hi\n");
        assert_eq!(out.generations[0].temperature_milli, 500);
        assert_eq!(out.generations[0].seed, 7);
        assert_eq!(
            (out.stack_peak_bytes, out.stack_region_bytes),
            (612, 4190000)
        );
    }

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

    #[test]
    fn a_generation_that_printed_no_char_parses_as_empty_text() {
        // Every draw was UNK or PAD: the text field between the two spaces is empty.
        let out = parse_output(&GOOD.replace("gen 500 7 68690a ", "gen 500 7  ")).unwrap();
        assert_eq!(out.generations[0].text, b"");
        assert_eq!(out.generations[0].seed, 7);
    }

    #[test]
    fn rejects_truncated_or_garbled_output() {
        let cut = GOOD.replace("end\n", "");
        assert!(parse_output(&cut).unwrap_err().contains("`end`"));
        let odd_hex = GOOD.replace("68690a", "6869a");
        assert!(parse_output(&odd_hex).unwrap_err().contains("not hex"));
        let word = GOOD.replace("536870912", "high");
        assert!(parse_output(&word).unwrap_err().contains("not an integer"));
        let newer = GOOD.replace("lstm-edge-firmware 1", "lstm-edge-firmware 2");
        assert!(parse_output(&newer).unwrap_err().contains("protocol 2"));
    }

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

    #[test]
    fn decode_hex_reads_pairs_and_refuses_bad_digits() {
        assert_eq!(decode_hex("00ff7a").unwrap(), vec![0, 255, 0x7a]);
        assert!(decode_hex("0g").is_none());
        assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
    }
}
