//! Loading ONNX Runtime (dynamically, once per process) and creating sessions.
//!
//! The library is looked up in this order:
//! 1. `ORT_DYLIB_PATH`, the file itself;
//! 2. the project-local install made by `scripts/install-ort.sh`:
//!    `.ort/gpu` then `.ort/cpu` under the repository root (`LSTM_EDGE_HOME`, or the
//!    first ancestor of the current directory or executable holding `Cargo.toml`
//!    and `runtime/`);
//! 3. a pip-installed `onnxruntime` / `onnxruntime-gpu` package of `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::{anyhow, bail, Context, Result};
use ort::environment::Environment;
use ort::session::Session;

use crate::onnx::{Dim, Elem, Graph};

/// The ONNX Runtime release the project pins (it matches `ort` 2.0.0-rc.15).
pub const ORT_VERSION: &str = "1.31.1";

/// The command that installs the CPU build where [`library_path`] finds it.
pub const INSTALL_COMMAND: &str = "bash scripts/install-ort.sh";

/// Where a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// The CUDA execution provider on one GPU (needs the `onnxruntime-gpu` build).
    Cuda {
        device_id: i32,
    },
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda { device_id } => write!(f, "cuda:{device_id}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = anyhow::Error;

    /// Parses `cpu`, `cuda` (device 0) or `cuda:N`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda { device_id: 0 }),
            _ => match s.strip_prefix("cuda:").map(str::parse::<u16>) {
                Some(Ok(device_id)) => Ok(Device::Cuda {
                    device_id: i32::from(device_id),
                }),
                _ => bail!(
                    "unknown device {s:?}: expected `cpu`, `cuda` or `cuda:N` with N a GPU's \
                     index from 0 (`nvidia-smi -L` lists them)"
                ),
            },
        }
    }
}

struct Loaded {
    path: PathBuf,
    /// The release the library reports, such as `1.31.1`.
    version: String,
    environment: Environment,
}

/// The process-wide environment; an error is kept as text so every caller sees it.
static LOADED: OnceLock<std::result::Result<Loaded, String>> = OnceLock::new();

/// Loads the ONNX Runtime library once; later calls return the first outcome.
pub fn init() -> Result<()> {
    loaded().map(|_| ())
}

fn loaded() -> Result<&'static Loaded> {
    LOADED
        .get_or_init(|| load().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

fn load() -> Result<Loaded> {
    let path = library_path()?;
    let builder = ort::init_from(&path).map_err(|e| {
        anyhow!(
            "loading ONNX Runtime from {}: {e}. lstm-edge needs ONNX Runtime {ORT_VERSION}: {}",
            path.display(),
            install_hint()
        )
    })?;
    // Another release may differ in the operators and numerics the training graphs
    // rely on, and the model card records the release that trained the model.
    let version = release_of(ort::info()).unwrap_or_default();
    if !version.is_empty() && !same_minor_release(&version, ORT_VERSION) {
        bail!(
            "{} is ONNX Runtime {version}; lstm-edge is built and tested against \
             {ORT_VERSION}: {}, or point ORT_DYLIB_PATH at a {ORT_VERSION} library",
            path.display(),
            install_hint()
        );
    }
    let environment = builder
        .with_name("lstm-edge")
        .build()
        .map_err(|e| anyhow!("creating the ONNX Runtime environment: {e}"))?;
    Ok(Loaded {
        path,
        version,
        environment,
    })
}

/// The release in ONNX Runtime's build info (`... git-branch=rel-1.31.1, ...`).
fn release_of(build_info: &str) -> Option<String> {
    let start = build_info.find("git-branch=rel-")? + "git-branch=rel-".len();
    let release: String = build_info[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (release.split('.').count() >= 2).then_some(release)
}

/// `1.31.0` and `1.31.1` are one release line; `1.30.2` and `1.32.0` are not.
fn same_minor_release(a: &str, b: &str) -> bool {
    a.split('.').take(2).eq(b.split('.').take(2))
}

/// How to install the pinned release: the project script in a checkout, pip outside one.
fn install_hint() -> String {
    match repo_root() {
        Some(root) => format!(
            "run `{INSTALL_COMMAND}` in {} (`{INSTALL_COMMAND} --gpu` for CUDA)",
            root.display()
        ),
        None => format!(
            "install it with `python3 -m pip install onnxruntime=={ORT_VERSION}` \
             (`onnxruntime-gpu=={ORT_VERSION}` for CUDA)"
        ),
    }
}

/// The path of the ONNX Runtime library that was loaded (after [`init`]).
pub fn loaded_library_path() -> Result<&'static Path> {
    loaded().map(|l| l.path.as_path())
}

/// The ONNX Runtime release this process loaded, or the pinned one if it loaded
/// none (or its build info names no release).
pub fn loaded_version() -> &'static str {
    match LOADED.get() {
        Some(Ok(loaded)) if !loaded.version.is_empty() => &loaded.version,
        _ => ORT_VERSION,
    }
}

/// Finds the ONNX Runtime shared library (see the module docs for the order).
pub fn library_path() -> Result<PathBuf> {
    library_path_from(std::env::var_os("ORT_DYLIB_PATH"))
}

fn library_path_from(ort_dylib_path: Option<std::ffi::OsString>) -> Result<PathBuf> {
    if let Some(path) = ort_dylib_path.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_dir() {
            bail!(
                "ORT_DYLIB_PATH is {}, a folder; point it at the libonnxruntime.so file in it \
                 (onnxruntime/capi/ in a pip install)",
                path.display()
            );
        }
        // A bare file name is left to the dynamic loader's search, as `ort` does.
        let bare_name = path.components().count() == 1;
        if !bare_name && !path.is_file() {
            bail!(
                "ORT_DYLIB_PATH is {} but no such file exists; point it at libonnxruntime.so, \
                 or unset it and {}",
                path.display(),
                install_hint()
            );
        }
        return Ok(path);
    }
    let mut searched = Vec::new();
    if let Some(root) = repo_root() {
        for flavour in ["gpu", "cpu"] {
            let dir = root.join(".ort").join(flavour).join("onnxruntime/capi");
            if let Some(lib) = find_library_in(&dir) {
                return Ok(lib);
            }
            searched.push(dir);
        }
    }
    if let Some(dir) = pip_package_dir() {
        let capi = dir.join("capi");
        if let Some(lib) = find_library_in(&capi) {
            return Ok(lib);
        }
        searched.push(capi);
    }
    let searched: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "ONNX Runtime {ORT_VERSION} was not found (ORT_DYLIB_PATH is not set; searched {}and \
         python3's onnxruntime package): {}, or set ORT_DYLIB_PATH to libonnxruntime.so",
        if searched.is_empty() {
            String::new()
        } else {
            format!("{}, ", searched.join(", "))
        },
        install_hint()
    )
}

/// `libonnxruntime.so.X.Y.Z` (preferred) or `libonnxruntime.so` in `dir`.
fn find_library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    // The longest name is the fully versioned file, not a symlink to it.
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.into_iter().next()
}

/// The repository root: `LSTM_EDGE_HOME`, else the first ancestor of the current
/// directory, then of the executable, that holds `Cargo.toml` and `runtime/`.
pub fn repo_root() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("LSTM_EDGE_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(home));
    }
    let is_root = |d: &Path| d.join("Cargo.toml").is_file() && d.join("runtime").is_dir();
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe().ok(),
        // Tests and `cargo run` builds: the workspace this crate was built in.
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    starts.into_iter().flatten().find_map(|start| {
        start
            .ancestors()
            .find(|d| is_root(d))
            .map(Path::to_path_buf)
    })
}

fn pip_package_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(dir.trim()))
}

/// The CUDA and cuDNN libraries of pip's `nvidia-*` packages, which sit beside the
/// `onnxruntime` package (in `.ort/gpu` from `scripts/install-ort.sh --gpu`, or in
/// python3's site-packages), are preloaded so the CUDA provider finds them without
/// `LD_LIBRARY_PATH`; a system CUDA install needs none of this.
fn preload_cuda_libraries(library: &Path) {
    // library: <packages>/onnxruntime/capi/libonnxruntime.so.X
    let beside_library = library.ancestors().nth(3).map(|dir| dir.join("nvidia"));
    let in_repository = repo_root().map(|root| root.join(".ort/gpu/nvidia"));
    let mut lib_dirs = Vec::new();
    if let Some(nvidia) = [beside_library, in_repository]
        .into_iter()
        .flatten()
        .find(|dir| dir.is_dir())
    {
        collect_lib_dirs(&nvidia, 4, &mut lib_dirs);
    }
    for name in ort::ep::cuda::CUDA_DYLIBS
        .iter()
        .chain(ort::ep::cuda::CUDNN_DYLIBS)
    {
        if let Some(path) = lib_dirs.iter().map(|d| d.join(name)).find(|p| p.exists()) {
            // A failure here resurfaces as a clear provider registration error.
            let _ = ort::util::preload_dylib(&path);
        }
    }
}

fn collect_lib_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "lib") {
                out.push(path.clone());
            }
            if depth > 0 {
                collect_lib_dirs(&path, depth - 1, out);
            }
        }
    }
}

/// What to do when the CUDA provider fails to register, from what it said.
fn cuda_fix(library: &Path, error: &str) -> String {
    let gpu_build = library
        .with_file_name("libonnxruntime_providers_cuda.so")
        .exists();
    if !gpu_build {
        format!(
            "This is ONNX Runtime's CPU build: run `{INSTALL_COMMAND} --gpu` (onnxruntime-gpu \
             {ORT_VERSION}, CUDA 13, cuDNN 9), or use --device cpu"
        )
    } else if error.contains("invalid device ordinal") {
        "That GPU does not exist here: `nvidia-smi -L` lists the GPUs; pick one with \
         --device cuda:N"
            .to_string()
    } else if error.contains("driver version is insufficient") {
        "The NVIDIA driver is too old for CUDA 13: update it to 580 or newer, or use \
         --device cpu"
            .to_string()
    } else if error.contains("libcuda.so") {
        "No NVIDIA driver was found (libcuda.so.1): --device cuda needs an NVIDIA GPU and its \
         driver (580 or newer, for CUDA 13); on this machine use --device cpu"
            .to_string()
    } else if error.contains("cannot open shared object file") {
        format!(
            "A CUDA 13 or cuDNN 9 library is missing: run `{INSTALL_COMMAND} --gpu`, which \
             puts them in .ort/gpu/nvidia, or add the folders that hold them to LD_LIBRARY_PATH"
        )
    } else {
        format!(
            "It needs an NVIDIA GPU with its driver and the GPU build of ONNX Runtime \
             (`{INSTALL_COMMAND} --gpu`), or use --device cpu"
        )
    }
}

/// The environment variable that chooses whether ONNX Runtime's intra-op workers
/// spin between the ops of a run (`1`, the default) or sleep (`0`).
pub const SPINNING_VAR: &str = "LSTM_EDGE_ORT_SPINNING";

/// Whether [`SPINNING_VAR`] asks for spinning workers.
fn spinning_requested() -> Result<bool> {
    parse_spinning(std::env::var(SPINNING_VAR))
}

fn parse_spinning(value: Result<String, std::env::VarError>) -> Result<bool> {
    match value {
        Err(std::env::VarError::NotPresent) => Ok(true),
        Ok(v) if v == "1" || v.is_empty() => Ok(true),
        Ok(v) if v == "0" => Ok(false),
        _ => bail!(
            "{SPINNING_VAR} must be 1 (ONNX Runtime's workers spin during a step, the default) \
             or 0 (they sleep between ops: for a machine whose cores are busy with other work); \
             unset it or set one of those"
        ),
    }
}

/// Whether a CPU session has registered `crate::ort_ops::DOMAIN` with ONNX Runtime.
static DOMAIN_KNOWN: Mutex<bool> = Mutex::new(false);

/// The cores this process may use (its CPU quota and affinity included).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Creates a session for an in-memory ONNX model on `device`. `threads` sets the
/// intra-op thread count (0 lets ONNX Runtime choose). CUDA is registered with
/// `error_on_failure`, so a missing GPU build or driver is an error, never a
/// silent fallback to the CPU.
pub fn session_from_bytes(model: &[u8], device: Device, threads: usize) -> Result<Session> {
    let loaded = loaded()?;
    let mut builder = Session::builder(&loaded.environment)
        .context("creating an ONNX Runtime session builder")?;
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| anyhow!("setting {threads} intra-op threads: {e}"))?;
    }
    // Sleeping workers wake for every op, and a recurrent step is hundreds of
    // small ops: on 2 idle cores G trains at 5,700 samples/s spinning against
    // 4,900 sleeping (C: 364 against 275). Spinning is ONNX Runtime's own default
    // too. With the cores busy elsewhere, one thread beats both (README).
    let spinning = spinning_requested()?;
    builder = builder
        .with_intra_op_spinning(spinning)
        .map_err(|e| anyhow!("setting intra-op spinning to {spinning}: {e}"))?;
    if spinning {
        // Spin only inside a run: between training steps the workers sleep and
        // leave the cores to data preparation and other processes.
        builder = builder
            .with_config_entry("session.force_spinning_stop", "1")
            .map_err(|e| anyhow!("stopping spinning between runs: {e}"))?;
    }
    if device == Device::Cpu {
        let domain = crate::ort_ops::domain()
            .map_err(|e| anyhow!("registering lstm-edge's training operators: {e}"))?;
        builder = builder
            .with_operators(domain)
            .map_err(|e| anyhow!("registering lstm-edge's training operators: {e}"))?;
    }
    if let Device::Cuda { device_id } = device {
        preload_cuda_libraries(&loaded.path);
        // CUDA kernels may otherwise sum in a varying order (atomics), which makes
        // a seeded run, and a resumed one, drift from the last.
        builder = builder
            .with_deterministic_compute(true)
            .map_err(|e| anyhow!("asking for deterministic compute: {e}"))?;
        let cuda = ort::ep::CUDA::default()
            .with_device_id(device_id)
            .build()
            .error_on_failure();
        builder = builder.with_execution_providers([cuda]).map_err(|e| {
            let error = e.to_string();
            anyhow!(
                "the CUDA execution provider (device {device_id}) could not be registered with \
                 ONNX Runtime from {}: {}. {}",
                loaded.path.display(),
                error.trim().trim_end_matches('.'),
                cuda_fix(&loaded.path, &error)
            )
        })?;
    }
    let committed = if device == Device::Cpu {
        // ONNX Runtime adds a session's custom domain to a process-wide table, without
        // a lock, when the table lacks it: two sessions created at once could both add
        // it ("the domain is already exist"). So the first CPU session is created
        // alone; later ones find the domain there and only read the table.
        let mut domain_known = DOMAIN_KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
        if *domain_known {
            drop(domain_known);
            builder.commit_from_memory(model)
        } else {
            let session = builder.commit_from_memory(model);
            *domain_known = session.is_ok();
            session
        }
    } else {
        builder.commit_from_memory(model)
    };
    committed.map_err(|e| {
        let error = e.to_string();
        match device {
            // ONNX Runtime starts the CUDA provider (device, streams, libraries) only
            // when it creates the session, so GPU trouble surfaces here.
            Device::Cuda { device_id } if mentions_cuda(&error) => anyhow!(
                "the CUDA execution provider could not start on device {device_id} \
                 (ONNX Runtime from {}): {}. {}",
                loaded.path.display(),
                error.trim().trim_end_matches('.'),
                cuda_fix(&loaded.path, &error)
            ),
            _ => anyhow!(
                "ONNX Runtime rejected the model ({} bytes): {error}",
                model.len()
            ),
        }
    })
}

/// Loads ONNX Runtime and, for CUDA, starts a one-op session on the device, so that
/// a missing library or a device that cannot run (a CPU-only ONNX Runtime, missing
/// CUDA libraries, no GPU) is an error before any data work.
pub fn check_device(device: Device) -> Result<()> {
    loaded()?;
    if device == Device::Cpu {
        return Ok(());
    }
    let mut g = Graph::new("probe");
    let x = g.input("x", Elem::F32, &[Dim::Fixed(1)]);
    let y = g.op("Neg", &[&x], vec![]);
    g.output(&y, "y", Elem::F32, &[Dim::Fixed(1)]);
    session_from_bytes(&g.to_model_bytes(crate::onnx::OPSET), device, 1).map(drop)
}

/// Whether an ONNX Runtime error comes from CUDA or its libraries rather than the graph.
fn mentions_cuda(error: &str) -> bool {
    ["CUDA", "cuda", "cuDNN", "cudnn", "cublas", "CUBLAS"]
        .iter()
        .any(|word| error.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ort::value::Tensor;

    #[test]
    fn spinning_is_the_default_and_other_values_are_refused_with_the_fix() {
        use std::env::VarError;
        assert!(parse_spinning(Err(VarError::NotPresent)).unwrap());
        assert!(parse_spinning(Ok(String::new())).unwrap());
        assert!(parse_spinning(Ok("1".into())).unwrap());
        assert!(!parse_spinning(Ok("0".into())).unwrap());
        for bad in [
            Ok("yes".to_string()),
            Err(VarError::NotUnicode("\u{fffd}".into())),
        ] {
            let err = parse_spinning(bad).unwrap_err().to_string();
            assert!(
                err.contains(SPINNING_VAR) && err.contains("must be 1"),
                "{err}"
            );
        }
    }

    #[test]
    fn device_parses_and_prints() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!(
            "cuda".parse::<Device>().unwrap(),
            Device::Cuda { device_id: 0 }
        );
        assert_eq!(
            "cuda:3".parse::<Device>().unwrap(),
            Device::Cuda { device_id: 3 }
        );
        assert!("gpu".parse::<Device>().is_err());
        let negative = "cuda:-1".parse::<Device>().unwrap_err().to_string();
        assert!(negative.contains("nvidia-smi -L"), "{negative}");
        assert_eq!(Device::Cuda { device_id: 1 }.to_string(), "cuda:1");
    }

    #[test]
    fn repo_root_holds_the_workspace() {
        let root = repo_root().expect("tests run inside the repository");
        assert!(root.join("runtime").is_dir());
        assert!(root.join("trainer/src/ort_env.rs").is_file());
    }

    #[test]
    fn a_missing_ort_dylib_path_is_named_in_the_error() {
        let err = library_path_from(Some("/nonexistent/libonnxruntime.so".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
        assert!(err.contains(INSTALL_COMMAND), "{err}");
    }

    #[test]
    fn cuda_on_a_cpu_build_is_an_error_not_a_fallback() -> Result<()> {
        init()?;
        let capi = loaded_library_path()?
            .parent()
            .expect("library has a folder");
        if capi.join("libonnxruntime_providers_cuda.so").exists() {
            return Ok(()); // the GPU build is installed: nothing to check here
        }
        let Err(err) = check_device(Device::Cuda { device_id: 0 }) else {
            panic!("a CPU-only ONNX Runtime must refuse the CUDA device");
        };
        let msg = format!("{err:#}");
        assert!(msg.contains("install-ort.sh --gpu"), "{msg}");
        Ok(())
    }

    #[test]
    fn cuda_errors_name_the_missing_piece() {
        let dir = std::env::temp_dir().join(format!("lstm-edge-cuda-fix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let library = dir.join("libonnxruntime.so.1.31.1");
        let missing =
            |lib: &str| format!("Failed to load library: {lib}: cannot open shared object file");
        let cpu_build = cuda_fix(&library, &missing("libcublasLt.so.13"));
        assert!(
            cpu_build.contains("CPU build") && cpu_build.contains("--gpu"),
            "{cpu_build}"
        );
        std::fs::write(dir.join("libonnxruntime_providers_cuda.so"), b"").unwrap();
        let no_driver = cuda_fix(&library, &missing("libcuda.so.1"));
        assert!(no_driver.contains("NVIDIA driver"), "{no_driver}");
        let no_cublas = cuda_fix(&library, &missing("libcublasLt.so.13"));
        assert!(no_cublas.contains("LD_LIBRARY_PATH"), "{no_cublas}");
        let other = cuda_fix(&library, "no CUDA-capable device is detected");
        assert!(other.contains("NVIDIA GPU"), "{other}");
        let absent = cuda_fix(&library, "CUDA failure 101: invalid device ordinal");
        assert!(absent.contains("nvidia-smi -L"), "{absent}");
        let old_driver = cuda_fix(
            &library,
            "CUDA driver version is insufficient for CUDA runtime version",
        );
        assert!(old_driver.contains("580"), "{old_driver}");
        assert!(mentions_cuda("CUDA failure 101: invalid device ordinal"));
        assert!(!mentions_cuda("Type Error: Type (tensor(int64)) of input"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_loaded_release_is_read_and_other_release_lines_are_told_apart() -> Result<()> {
        assert_eq!(
            release_of(
                "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc, build type=Release"
            ),
            Some("1.31.1".to_string())
        );
        assert_eq!(release_of("ORT Build Info: git-branch=main, ..."), None);
        assert!(same_minor_release("1.31.0", "1.31.1"));
        assert!(!same_minor_release("1.30.1", "1.31.1"));
        assert!(!same_minor_release("1.3.1", "1.31.1"));
        init()?;
        assert_eq!(loaded_version(), ORT_VERSION, "{}", ort::info());
        Ok(())
    }

    #[test]
    fn an_ort_dylib_path_folder_is_refused_with_the_fix() {
        let err = library_path_from(Some(std::env::temp_dir().into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a folder") && err.contains("libonnxruntime.so"),
            "{err}"
        );
        let bare = library_path_from(Some("libonnxruntime.so.1.31.1".into())).unwrap();
        assert_eq!(bare, Path::new("libonnxruntime.so.1.31.1"));
    }

    #[test]
    fn library_is_found_and_a_built_graph_runs() -> Result<()> {
        init()?;
        assert!(loaded_library_path()?.is_file());
        let mut g = Graph::new("affine");
        let x = g.input("x", Elem::F32, &[Dim::Sym("batch"), Dim::Fixed(2)]);
        let w = g.initializer("w", &[2, 1], &[2.0, -1.0]);
        let b = g.const_f32(&[1], &[0.5]);
        let xw = g.op("MatMul", &[&x, &w], vec![]);
        let y = g.op("Add", &[&xw, &b], vec![]);
        g.output(&y, "y", Elem::F32, &[Dim::Sym("batch"), Dim::Fixed(1)]);
        let mut session =
            session_from_bytes(&g.to_model_bytes(crate::onnx::OPSET), Device::Cpu, 1)?;
        let input = Tensor::from_array(([2usize, 2], vec![1.0f32, 1.0, 3.0, 2.0]))?;
        let outputs = session.run(ort::inputs!["x" => input])?;
        let (shape, y) = outputs["y"].try_extract_tensor::<f32>()?;
        assert_eq!(shape.to_vec(), [2, 1]);
        assert_eq!(y, [1.5, 4.5]);
        Ok(())
    }
}
