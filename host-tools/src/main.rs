//! `lstm-edge`: train small recurrent text models and run them on microcontrollers.
//! Each subcommand is a thin layer over library calls.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand};
use lstm_edge::blob::{BlobFile, NumericPath};
use lstm_edge::{firmware, import, infer, inspect, interrupt, workflow};
use lstm_edge_runtime::tokenize::chars::code_points;
use lstm_edge_trainer::bench::inference;
use lstm_edge_trainer::data::reviews;
use lstm_edge_trainer::pipeline::{F32_BLOB_FILE, INT_BLOB_FILE, ONNX_FILE, STEP_ONNX_FILE};

/// Train small recurrent text models on a workstation; run them on microcontrollers.
#[derive(Parser)]
#[command(name = "lstm-edge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (preset w, c, g or r) into a model directory: ONNX, blobs, card, plots.
    Train(Box<workflow::TrainArgs>),
    /// Evaluate a model directory's f32 and integer blobs and update its card.
    Eval(workflow::EvalArgs),
    /// Export ONNX from a training checkpoint.
    Export(workflow::ExportArgs),
    /// Write the f32 and integer blobs of a training checkpoint, calibrated on data.
    Quantize(workflow::QuantizeArgs),
    /// Compare tract on the ONNX with the runtime's f32 and integer blobs; fails when tract and f32 differ by over 1e-4.
    Verify(workflow::VerifyArgs),
    /// The notebook's length analysis of reviews at a maxlen: padded, equal, truncated, average.
    DataStats(workflow::DataStatsArgs),
    /// Convert a PyTorch or Keras ONNX LSTM/GRU model into f32 and integer blobs.
    Import(import::ImportArgs),
    /// Show a model blob's dimensions, size, numeric scheme and CRC.
    Inspect {
        /// The model blob (.blob), or a model directory (its model.blob).
        #[arg(required_unless_present = "model_option")]
        model: Option<PathBuf>,
        /// The same, given as the other commands take it.
        #[arg(long = "model", short, value_name = "MODEL", conflicts_with = "model")]
        model_option: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Score the sentiment of a review (text argument, --file, or standard input), or
    /// of each line with --lines; an imported softmax classifier prints its most likely
    /// class (with --json, every class's probability).
    Score(ScoreArgs),
    /// Generate text with a char-level generator model.
    Generate(GenerateArgs),
    /// Time the runtime's integer and f32 paths against tract and ONNX Runtime
    /// (per generated char for G, per review for W and C), with ratios; --model
    /// times a model directory's own files.
    Bench(BenchArgs),
    /// Build the Cortex-M firmware for a model and run it under QEMU.
    Firmware {
        #[command(subcommand)]
        action: FirmwareAction,
    },
}

/// The boards QEMU emulates, which `firmware run` takes.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
enum EmulatedBoard {
    #[default]
    #[value(name = "mps2-an386")]
    Mps2An386,
    #[value(name = "mps2-an385")]
    Mps2An385,
}

impl From<EmulatedBoard> for firmware::Board {
    fn from(board: EmulatedBoard) -> Self {
        match board {
            EmulatedBoard::Mps2An386 => firmware::Board::Mps2An386,
            EmulatedBoard::Mps2An385 => firmware::Board::Mps2An385,
        }
    }
}

#[derive(Subcommand)]
enum FirmwareAction {
    /// Build the firmware ELF for a board (QEMU's mps2-an386 by default) and print its path.
    Build {
        #[command(flatten)]
        args: FirmwareArgs,
        /// The board whose memory map the image is linked for.
        #[arg(long, value_enum, default_value_t)]
        board: firmware::Board,
    },
    /// Build it for a board QEMU emulates, run it there and print its results, checked
    /// against the same blob on the host (a difference is an error).
    Run {
        #[command(flatten)]
        args: FirmwareArgs,
        /// QEMU's board: mps2-an386 (Cortex-M4F) or mps2-an385 (Cortex-M3, no FPU
        /// and no DSP extension).
        #[arg(long, value_enum, default_value_t)]
        board: EmulatedBoard,
        /// Print the run's output and counts as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds the emulated run may take before it is stopped.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
        timeout: u64,
    },
}

#[derive(clap::Args)]
struct ScoreArgs {
    /// The model blob (.blob), or a model directory (its model.blob).
    #[arg(long, short)]
    model: PathBuf,
    /// The review text (any bytes; UTF-8 or Latin-1).
    text: Option<OsString>,
    /// Read the review from this plain text file (UTF-8 or Latin-1; a .gz one is
    /// unpacked). A labelled dataset (.jsonl, .csv) is for `eval --test`.
    #[arg(long, conflicts_with = "text")]
    file: Option<PathBuf>,
    /// Score each line as a review of its own, one result per line (with --json, one
    /// JSON object per line), on every core.
    #[arg(long)]
    lines: bool,
    /// Print the score and label as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// The model blob (.blob), or a model directory (its model.blob).
    #[arg(long, short)]
    model: PathBuf,
    /// Text the model continues (any bytes; UTF-8 or Latin-1).
    #[arg(long, short)]
    prompt: OsString,
    /// Sampling temperature: p^(1/T) renormalised; 0 is greedy, at most 100 (in steps
    /// of 0.001).
    #[arg(long, short, default_value_t = 0.5, allow_hyphen_values = true)]
    temperature: f32,
    /// Chars to generate (a model whose corpus held chars beyond Latin-1 may sample
    /// UNK, which has no char: such samples are counted on stderr, not printed).
    #[arg(long, short, default_value_t = 400, allow_negative_numbers = true)]
    length: usize,
    /// Sampling seed: the same seed gives the same text.
    #[arg(long, default_value_t = 42, allow_negative_numbers = true)]
    seed: u64,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Seconds spent measuring each engine on each workload (0.001 to 3600).
    #[arg(long, default_value_t = 1.5, allow_hyphen_values = true)]
    seconds: f64,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default, one per core).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    ort_threads: usize,
    /// Print the timings and ratios as JSON.
    #[arg(long)]
    json: bool,
    /// Also time the integer path held to each lower x86-64 kernel level this CPU
    /// has (AVX2, then portable), as it runs on CPUs without AVX-512 or AVX2.
    #[arg(long)]
    kernel_levels: bool,
    /// Time a model directory's own files instead of the preset shapes: model.blob,
    /// and those of model-f32.blob, model.onnx and model-step.onnx it has.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Tokens per review with --model, for a sentiment model without a flatten
    /// head (a flatten head reads its maxlen).
    #[arg(
        long,
        default_value_t = 200,
        requires = "model",
        allow_negative_numbers = true
    )]
    tokens: usize,
}

#[derive(clap::Args)]
struct FirmwareArgs {
    /// The model blob, or a model directory (its model.blob). The image runs the
    /// blob's path: integer for model.blob, f32 for model-f32.blob.
    #[arg(long, short)]
    model: PathBuf,
    /// A review to score (repeatable; a sentiment model needs at least one).
    #[arg(long = "review")]
    reviews: Vec<OsString>,
    /// Reviews to score, one per line, from this file (as `score --lines` reads it),
    /// after any --review.
    #[arg(long)]
    review_file: Option<PathBuf>,
    /// Prompt for generator models [default: "the "].
    #[arg(long)]
    prompt: Option<OsString>,
    /// Chars to generate per temperature, for generator models [default: 100].
    #[arg(long)]
    length: Option<u32>,
    /// Temperatures to sample at, for generator models (0 is greedy, at most 100)
    /// [default: 0.2 0.5 1].
    #[arg(long = "temperature", allow_hyphen_values = true)]
    temperatures: Vec<f32>,
    /// Sampling seed for generator models: the same seed gives the same text
    /// [default: 42].
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
}

/// An argument's bytes as the shell passed them: text in another encoding (Latin-1,
/// say) reaches the tokenizer as it would from a file.
fn arg_bytes(arg: &OsStr) -> Vec<u8> {
    #[cfg(unix)]
    return std::os::unix::ffi::OsStrExt::as_bytes(arg).to_vec();
    #[cfg(not(unix))]
    return arg.to_string_lossy().into_owned().into_bytes();
}

/// Text as the tokenizers read it, in UTF-8: UTF-8 as it is, and each byte that is not
/// part of UTF-8 as its Latin-1 char, as sampled symbols are printed.
fn decoded_text(bytes: &[u8]) -> String {
    code_points(bytes).filter_map(char::from_u32).collect()
}

fn score(args: ScoreArgs) -> Result<()> {
    let blob = BlobFile::read(&args.model)?;
    let source = reviews::review_source(args.text.is_some(), args.file.as_deref());
    let text = reviews::read_review(args.text.as_deref().map(arg_bytes), args.file.as_deref())?;
    if !args.lines {
        let report = infer::score(&blob, &text, &source)?;
        if let Some(caution) = report.caution() {
            eprintln!("note: {source}: {caution}");
        }
        return if args.json {
            print_json(&report)
        } else {
            println!("{:.4} {}", report.score, report.label);
            Ok(())
        };
    }
    // Results go out a round of lines at a time, in line order.
    let mut out = std::io::stdout().lock();
    infer::score_lines(&blob, &text, &source, &mut |index, report| {
        if let Some(caution) = report.caution() {
            eprintln!("note: {source}, line {}: {caution}", index + 1);
        }
        if args.json {
            let line = infer::LineReport {
                line: index + 1,
                report: &report,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?).map_err(stdout_failed)?;
        } else {
            writeln!(out, "{:.4} {}", report.score, report.label).map_err(stdout_failed)?;
        }
        Ok(())
    })
}

fn generate(args: &GenerateArgs) -> Result<()> {
    ensure!(
        args.length > 0,
        "--length 0 generates nothing: give at least 1 char"
    );
    let blob = BlobFile::read(&args.model)?;
    let options = infer::GenerateOptions {
        temperature: infer::temperature(args.temperature)?,
        length: args.length,
        seed: args.seed,
    };
    // Stdout is line-buffered: the text appears as it is generated. The prompt goes out
    // with the first char, once the model has loaded as a generator.
    let mut out = std::io::stdout().lock();
    let prompt = arg_bytes(&args.prompt);
    let mut unprinted_prompt = Some(decoded_text(&prompt));
    let charless = infer::generate_each(&blob, &prompt, options, |byte| {
        if let Some(prompt) = unprinted_prompt.take() {
            write!(out, "{prompt}").map_err(stdout_failed)?;
        }
        write!(out, "{}", byte as char).map_err(stdout_failed)
    })?;
    writeln!(out, "{}", unprinted_prompt.unwrap_or_default()).map_err(stdout_failed)?;
    if charless > 0 {
        eprintln!(
            "note: {charless} of the {} samples were UNK (a char beyond Latin-1 in the \
             training corpus), which has no char: the text is that much shorter",
            args.length
        );
    }
    Ok(())
}

/// An hour per engine and workload is more than any measurement needs.
const MAX_BENCH_SECONDS: f64 = 3600.0;

/// Longest review `bench --tokens` takes: a million tokens time in seconds per call.
const MAX_BENCH_TOKENS: usize = 1_000_000;

/// A model directory's name and the files `bench --model` times.
fn bench_model_dir(dir: &Path) -> Result<(String, inference::ModelDir)> {
    ensure!(
        dir.is_dir(),
        "--model {} is not a model directory: give the folder `lstm-edge train --out` \
         (or `import`) wrote",
        dir.display()
    );
    let read = |file: &str| -> Result<Option<Vec<u8>>> {
        let path = dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    // BlobFile names what is wrong with a blob that is there.
    ensure!(
        dir.join(INT_BLOB_FILE).exists(),
        "{} has no {INT_BLOB_FILE}, the integer blob that bench times first: give a model \
         directory written by `lstm-edge train --out`, or run `lstm-edge quantize` in it",
        dir.display()
    );
    let files = inference::ModelDir {
        int_blob: BlobFile::read(dir)?.bytes,
        f32_blob: read(F32_BLOB_FILE)?,
        onnx: read(ONNX_FILE)?,
        step_onnx: read(STEP_ONNX_FILE)?,
    };
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok((name, files))
}

fn bench(args: &BenchArgs) -> Result<()> {
    // A millisecond times at least one run; an hour per engine and workload is more
    // than any measurement needs.
    ensure!(
        (0.001..=MAX_BENCH_SECONDS).contains(&args.seconds),
        "--seconds must be from 0.001 to {MAX_BENCH_SECONDS} (per engine and workload), \
         got {:?}",
        args.seconds
    );
    let per_engine = Duration::from_secs_f64(args.seconds);
    let max_threads = lstm_edge_trainer::pipeline::MAX_THREADS;
    ensure!(
        args.ort_threads <= max_threads,
        "--ort-threads must be at most {max_threads}, got {}",
        args.ort_threads
    );
    // As `train --threads` says it.
    let cores = lstm_edge_trainer::ort_env::available_cores();
    if args.ort_threads > cores {
        eprintln!(
            "warning: --ort-threads {} is more than the {cores} cores this process may use, \
             which only slows ONNX Runtime down (its workers spin): give at most {cores} (0 \
             takes its default, one per core)",
            args.ort_threads
        );
    }
    let options = inference::BenchOptions {
        per_engine,
        ort_threads: args.ort_threads,
        kernel_levels: args.kernel_levels,
    };
    let int_engines = inference::int_kernel_levels(args.kernel_levels);
    if !args.json {
        if let Some(kernels) = int_engines.first().and_then(|(_, kernels)| *kernels) {
            println!("runtime int runs the {kernels} kernels, the best this CPU has");
        }
    }
    let engine_width = int_engines
        .iter()
        .map(|(engine, _)| engine.len())
        .chain(inference::MEMO_ENGINES.map(str::len))
        .chain(["onnxruntime".len()])
        .max()
        .unwrap_or(0);
    let width = match args.model {
        Some(_) => 0,
        None => inference::workloads()
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0),
    };
    let print = |t: &inference::Timing| {
        if !args.json {
            println!(
                "{:<width$} {:<engine_width$} {:>12.2} us  {:>6.2}x runtime int",
                t.workload, t.engine, t.micros, t.vs_runtime_int
            );
        }
    };
    let timings = match &args.model {
        None => inference::run(options, print)?,
        Some(dir) => {
            ensure!(
                (1..=MAX_BENCH_TOKENS).contains(&args.tokens),
                "--tokens must be from 1 to {MAX_BENCH_TOKENS}, got {}",
                args.tokens
            );
            let (name, files) = bench_model_dir(dir)?;
            inference::run_model(&name, files, args.tokens, options, print)?
        }
    };
    if args.json {
        print_json(&timings)?;
    }
    // Under a few calls a round, a cold cache or one interruption decides the figure.
    let rough = timings.iter().filter(|t| t.calls < FEW_BENCH_CALLS).count();
    if let Some(fewest) = timings.iter().min_by_key(|t| t.calls).filter(|_| rough > 0) {
        eprintln!(
            "note: {rough} of the {} timings ran under {FEW_BENCH_CALLS} times in all (fewest: \
             {} on {}, {} times): figures from so few runs are rough; raise --seconds",
            timings.len(),
            fewest.engine,
            fewest.workload,
            fewest.calls
        );
    }
    Ok(())
}

/// Calls per engine and workload, over all rounds, below which a timing is rough.
const FEW_BENCH_CALLS: u64 = 50;

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Checks the blob (a model directory stands for its model.blob) and builds the ELF for
/// it; returns the ELF, the inputs it was built with, and the blob.
fn build_firmware(
    args: &FirmwareArgs,
    board: firmware::Board,
) -> Result<(PathBuf, firmware::FirmwareInputs, BlobFile)> {
    let blob = BlobFile::read(&args.model)?;
    let sentiment = blob.model()?.body().output == lstm_edge_runtime::Output::Sigmoid;
    let generation_flags = args.prompt.is_some()
        || args.length.is_some()
        || !args.temperatures.is_empty()
        || args.seed.is_some();
    if sentiment && generation_flags {
        bail!(
            "{} is a sentiment model: --prompt, --length, --temperature and --seed are for \
             generators; give it --review TEXT or --review-file FILE only",
            blob.path.display()
        );
    }
    let inputs = firmware_inputs(args, board)?;
    if blob.numeric_path()? == NumericPath::F32 && !board.has_fpu() {
        eprintln!(
            "note: {} is an f32 blob and the {} core has no FPU: it runs in software \
             float, tens of times slower than the integer blob",
            blob.path.display(),
            board.name()
        );
    }
    if sentiment {
        // A review the host cannot read, or that gives no tokens, the device would
        // refuse, or score as noise.
        let reviews: Vec<&[u8]> = inputs.reviews.iter().map(Vec::as_slice).collect();
        infer::check_texts_tokenize(&blob, &reviews, &|index| review_name(args, index))?;
    }
    Ok((firmware::build(&blob.path, &inputs)?, inputs, blob))
}

fn firmware_inputs(
    args: &FirmwareArgs,
    board: firmware::Board,
) -> Result<firmware::FirmwareInputs> {
    let defaults = firmware::FirmwareInputs::default();
    let temperatures = if args.temperatures.is_empty() {
        defaults.temperatures_milli
    } else {
        args.temperatures
            .iter()
            .map(|&t| infer::temperature(t).map(|t| t.milli()))
            .collect::<Result<Vec<_>>>()?
    };
    if args.length == Some(0) {
        bail!("--length 0 generates nothing: give at least 1 char per temperature");
    }
    // As `score` does: a blank review's score would be noise (so would one of no
    // tokens, which `build_firmware` counts on the host first).
    let mut reviews: Vec<Vec<u8>> = args.reviews.iter().map(|r| arg_bytes(r)).collect();
    if let Some(index) = reviews.iter().position(|r| reviews::is_blank(r)) {
        bail!(
            "--review {} is blank: give each review some text to score",
            index + 1
        );
    }
    if let Some(path) = &args.review_file {
        let text = reviews::read_review(None, Some(path))?;
        let source = path.display().to_string();
        reviews.extend(
            infer::review_lines(&text, &source)?
                .into_iter()
                .map(<[u8]>::to_vec),
        );
    }
    Ok(firmware::FirmwareInputs {
        reviews,
        prompt: args.prompt.as_deref().map_or(defaults.prompt, arg_bytes),
        gen_chars: args.length.map_or(defaults.gen_chars, |n| n as usize),
        temperatures_milli: temperatures,
        seed: args.seed.unwrap_or(defaults.seed),
        board,
    })
}

/// How a review is named in messages: its `--review`, or its line of `--review-file`.
fn review_name(args: &FirmwareArgs, index: usize) -> String {
    match (index.checked_sub(args.reviews.len()), &args.review_file) {
        (Some(line), Some(path)) => format!("{}, line {}", path.display(), line + 1),
        _ => format!("--review {}", index + 1),
    }
}

/// A generation's instructions per sampled char: the ticks count every draw,
/// UNK and PAD included, which the printed text leaves out.
fn instructions_per_char(g: &firmware::Generation, per_tick: u64, chars: usize) -> u64 {
    g.ticks * per_tick / (chars.max(1) as u64)
}

/// Reviews are numbered from 1, as their `--review`s are given.
fn firmware_summary(out: &firmware::FirmwareOutput, chars: usize) -> serde_json::Value {
    let per_tick = out.instructions_per_tick();
    let (check, network) = out.open_instructions();
    serde_json::json!({
        "model": out.model,
        "open_instructions": { "check": check, "network": network },
        "scores": out.scores.iter().map(|s| serde_json::json!({
            "review": s.index + 1, "score": out.probability(s), "raw": out.raw_text(s), "steps": s.steps,
            "instructions": s.ticks * per_tick,
        })).collect::<Vec<_>>(),
        "generations": out.generations.iter().map(|g| serde_json::json!({
            "temperature": g.temperature_milli as f64 / 1000.0, "seed": g.seed,
            "text": infer::latin1_to_string(&g.text),
            "instructions_per_char": instructions_per_char(g, per_tick, chars),
        })).collect::<Vec<_>>(),
        "stack_peak_bytes": out.stack_peak_bytes,
    })
}

fn print_firmware(out: &firmware::FirmwareOutput, chars: usize) {
    let per_tick = out.instructions_per_tick();
    println!("model: {}", out.model);
    let (check, network) = out.open_instructions();
    println!(
        "opened in ~{} instructions (blob check ~{check}, network ~{network})",
        check + network
    );
    for s in &out.scores {
        let score = match out.probability(s) {
            Some(p) => format!("{p:.4} {}", infer::sentiment_label(p)),
            None => "out of range".into(),
        };
        println!(
            "review {}: {score} (raw {}, {} steps, ~{} instructions)",
            s.index + 1,
            out.raw_text(s),
            s.steps,
            s.ticks * per_tick
        );
    }
    for g in &out.generations {
        println!(
            "T={} seed {} (~{} instructions/char): {}",
            g.temperature_milli as f64 / 1000.0,
            g.seed,
            instructions_per_char(g, per_tick, chars),
            infer::latin1_to_string(&g.text)
        );
    }
    println!("peak stack: {} bytes", out.stack_peak_bytes);
}

/// Lets a closed pipe end the process quietly (`lstm-edge generate ... | head -1`), as
/// Unix tools do. Rust ignores SIGPIPE, so each print would panic on the closed pipe.
#[cfg(unix)]
fn die_on_closed_pipe() {
    // SAFETY: runs first in main, before any other thread starts, and only restores the
    // default disposition of SIGPIPE; nothing here writes to a child's pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A failed write to standard output, worded as [`report_failed_prints`] words a
/// failed `println!`.
fn stdout_failed(reason: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot write to standard output: {reason}")
}

/// `println!` panics when standard output cannot take the text (a full disk, a
/// device error): that becomes an error line and exit code 1, not a panic report.
fn report_failed_prints() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if let Some(reason) = message.strip_prefix("failed printing to stdout: ") {
            eprintln!("Error: cannot write to standard output: {reason}");
            std::process::exit(1);
        }
        default(info);
    }));
}

fn main() -> Result<()> {
    #[cfg(unix)]
    die_on_closed_pipe();
    report_failed_prints();
    interrupt::release_lock_on_interrupt();
    match Cli::parse().command {
        Command::Train(args) => workflow::train(&args)?,
        Command::Eval(args) => workflow::eval(&args)?,
        Command::Export(args) => workflow::export(&args)?,
        Command::Quantize(args) => workflow::quantize(&args)?,
        Command::Verify(args) => workflow::verify(&args)?,
        Command::DataStats(args) => workflow::data_stats(&args)?,
        Command::Import(args) => import::run(&args)?,
        Command::Inspect {
            model,
            model_option,
            json,
        } => {
            let Some(model) = model.or(model_option) else {
                bail!("inspect needs a model: `lstm-edge inspect MODEL`")
            };
            let info = inspect::inspect_blob(&BlobFile::read(&model)?)?;
            if json {
                print_json(&info)?;
            } else {
                print!("{info}");
            }
        }
        Command::Score(args) => score(args)?,
        Command::Generate(args) => generate(&args)?,
        Command::Bench(args) => bench(&args)?,
        Command::Firmware { action } => match action {
            FirmwareAction::Build { args, board } => {
                let elf = build_firmware(&args, board)?.0;
                // stdout is the path alone, for scripts; the hint goes to stderr.
                println!("{}", elf.display());
                eprintln!("run it with: {}", board.run_command(&elf));
            }
            FirmwareAction::Run {
                args,
                board,
                json,
                timeout,
            } => {
                let board = firmware::Board::from(board);
                // Before the build, which takes minutes.
                firmware::find_qemu()?;
                let (elf, inputs, blob) = build_firmware(&args, board)?;
                let out = firmware::run_with_timeout(&elf, board, Duration::from_secs(timeout))?;
                // The same blob on the host: the device must give the same bits.
                let host = firmware::host_run(&blob, &inputs)?;
                let same = out.compare_with_host(&host);
                if json {
                    let mut summary = firmware_summary(&out, inputs.gen_chars);
                    summary["matches_host"] = same.is_ok().into();
                    print_json(&summary)?;
                } else {
                    print_firmware(&out, inputs.gen_chars);
                    if same.is_ok() {
                        println!(
                            "host: the same {}, bit for bit ({} path)",
                            if out.scores.is_empty() {
                                "text"
                            } else {
                                "scores"
                            },
                            out.path.name()
                        );
                    }
                }
                if let Err(difference) = same {
                    bail!("the device's output differs from the host's: {difference}");
                }
            }
        },
    }
    Ok(())
}
