//! The firmware under QEMU (Cortex-M4F, and a Cortex-M3 without FPU or DSP)
//! against the host: same blob, same inputs, byte-identical scores and generated
//! text, on the integer path and on the f32 path. Also the firmware's handling of
//! a corrupt blob, and its footprint and instruction counts.
//!
//! Needs the Debian device toolchain (`scripts/install-device-deps.sh`).
//! `LSTM_EDGE_BLESS=1` rewrites `firmware/models/default.bin` from its recipe.

use std::path::{Path, PathBuf};

use lstm_edge::blob::BlobFile;
use lstm_edge::firmware::{self, FirmwareFailed, FirmwareInputs, FirmwareOutput};
use lstm_edge_runtime::builder::{FloatWeights, InputSpec, ModelSpec, ScaleScheme};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::numeric::Int;
use lstm_edge_runtime::tokenize::words::encode_vocab;
use lstm_edge_runtime::{Error, Model, Network};

/// The 50 symbols of the notebook's Shakespeare generator (G).
const PLAY_CHARS: &[u8] = b"\n !&'(),-.01234569:;?[]abcdefghijklmnopqrstuvwxyz\xe6";
const REVIEW_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz123456789\"'?!.,:; ";

/// The runtime's generator for test weights, so every model is the same on every run.
struct WeightRng(lstm_edge_runtime::Rng);

impl WeightRng {
    fn next(&mut self) -> f32 {
        (self.0.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn weights(&mut self, count: usize, amplitude: f32) -> Vec<f32> {
        (0..count)
            .map(|_| (self.next() * 2.0 - 1.0) * amplitude)
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// Words with embedding rows of this many dims (a width that is not a
    /// multiple of 4 takes the DSP kernels' column tail).
    Words(usize),
    Chars,
    Generator,
    /// A generator over the review chars, whose UNK and PAD ids have no char.
    GeneratorWithUnk,
}

fn model(kind: Kind, cell: Cell, hidden: usize, head: Head, seed: u64) -> ModelSpec {
    let mut rng = WeightRng(lstm_edge_runtime::Rng::new(seed));
    let (input, input_dim, tokens) = match kind {
        Kind::Words(embed_dim) => {
            let words = [
                "the", "movie", "film", "was", "good", "great", "bad", "boring", "not", "plot",
                "acting", "loved", "hated", "it", "i", ".", ",", "!",
            ];
            let (strings, offsets) = encode_vocab(words.iter().map(|w| w.as_bytes().to_vec()));
            (
                InputSpec::Words {
                    strings,
                    offsets,
                    embed_dim: embed_dim as u16,
                },
                embed_dim,
                words.len() + 2,
            )
        }
        Kind::Chars | Kind::GeneratorWithUnk => (
            InputSpec::Chars {
                symbols: REVIEW_CHARS.to_vec(),
                lowercase: true,
                unk: true,
                pad: true,
            },
            REVIEW_CHARS.len() + 2,
            REVIEW_CHARS.len() + 2,
        ),
        Kind::Generator => (
            InputSpec::Chars {
                symbols: PLAY_CHARS.to_vec(),
                lowercase: true,
                unk: false,
                pad: false,
            },
            PLAY_CHARS.len(),
            PLAY_CHARS.len(),
        ),
    };
    let output = match kind {
        Kind::Generator | Kind::GeneratorWithUnk => Output::Softmax {
            classes: tokens as u16,
        },
        _ => Output::Sigmoid,
    };
    let gates = cell.gates();
    let features = match head.flatten_maxlen() {
        Some(maxlen) => maxlen as usize * hidden,
        None => hidden,
    };
    let embedding = match kind {
        // Rows from 0.5 down to 0.5 / 2^8, as trained embeddings spread, so
        // the device meets every row shift the integer format has.
        Kind::Words(_) => rng
            .weights(tokens * input_dim, 0.5)
            .chunks(input_dim)
            .enumerate()
            .flat_map(|(id, row)| row.iter().map(move |v| v / (1u32 << (id % 9)) as f32))
            .collect(),
        _ => Vec::new(),
    };
    let weights = FloatWeights {
        embedding,
        w: rng.weights(gates * hidden * input_dim, 0.5),
        r: rng.weights(gates * hidden * hidden, 0.5 / (hidden as f32 / 16.0).sqrt()),
        wb: rng.weights(gates * hidden, 0.5),
        rb: rng.weights(gates * hidden, 0.5),
        head_w: rng.weights(output.width() * features, 2.0 / (features as f32).sqrt()),
        head_b: rng.weights(output.width(), 0.5),
    };
    ModelSpec {
        cell,
        hidden: hidden as u16,
        input,
        head,
        output,
        weights,
    }
}

fn int_blob(spec: &ModelSpec) -> Vec<u8> {
    spec.int_blob(ScaleScheme::PerRow)
        .expect("encode the test model")
}

fn write_blob(name: &str, blob: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("firmware-{name}.bin"));
    std::fs::write(&path, blob).expect("write the test blob");
    path
}

fn reviews() -> Vec<Vec<u8>> {
    vec![
        b"I loved this movie. The acting was great, the plot was not boring!".to_vec(),
        b"The worst film: boring, bad acting, and I hated it.".to_vec(),
        // Non-ASCII UTF-8, an invalid byte and chars outside the tables.
        "Caf\u{e9} \u{2014} \u{201c}not good\u{201d} \u{1f600}"
            .as_bytes()
            .iter()
            .copied()
            .chain([0xFF, b' ', b'#', b'~'])
            .collect(),
        Vec::new(),
        // Longer than the flatten heads' maxlen, so it is truncated.
        b"it was good. ".repeat(12),
        // An empty last review is a review too, not the end of the list.
        Vec::new(),
    ]
}

fn device_run(name: &str, blob: &[u8], inputs: &FirmwareInputs) -> (FirmwareOutput, PathBuf) {
    device_run_file(name, &write_blob(name, blob), inputs)
}

fn device_run_file(name: &str, path: &Path, inputs: &FirmwareInputs) -> (FirmwareOutput, PathBuf) {
    let elf = firmware::build(path, inputs).expect("build the firmware");
    let output =
        firmware::run(&elf, inputs.board).unwrap_or_else(|error| panic!("{name}: {error:#}"));
    (output, elf)
}

/// Builds, runs and compares one model's integer blob with the host, prints and
/// checks its footprint; returns the device output and the image.
fn assert_bit_exact(
    name: &str,
    spec: &ModelSpec,
    inputs: &FirmwareInputs,
) -> (FirmwareOutput, PathBuf) {
    assert_bit_exact_on(name, spec, &int_blob(spec), inputs)
}

/// [`assert_bit_exact`] for `spec`'s f32 blob, on the host's and the device's f32 path.
fn assert_f32_bit_exact(
    name: &str,
    spec: &ModelSpec,
    inputs: &FirmwareInputs,
) -> (FirmwareOutput, PathBuf) {
    let blob = spec.f32_blob().expect("encode the f32 test model");
    let (device, elf) = assert_bit_exact_on(name, spec, &blob, inputs);
    assert!(device.model.contains("path=f32"), "{}", device.model);
    (device, elf)
}

/// The blob on the device and on the host's path for it: the same scores, steps
/// and texts.
fn assert_bit_exact_on(
    name: &str,
    spec: &ModelSpec,
    blob: &[u8],
    inputs: &FirmwareInputs,
) -> (FirmwareOutput, PathBuf) {
    let file = BlobFile {
        path: write_blob(name, blob),
        bytes: blob.to_vec(),
    };
    let host = firmware::host_run(&file, inputs).expect("the host runs the test blob");
    assert!(
        !host.scores.is_empty() || !host.texts.is_empty(),
        "{name}: the host ran the inputs"
    );
    let (device, elf) = device_run_file(name, &file.path, inputs);
    if let Err(difference) = device.compare_with_host(&host) {
        panic!("{name}: {difference}");
    }
    for (generation, &temperature) in device.generations.iter().zip(&inputs.temperatures_milli) {
        assert_eq!(generation.temperature_milli, temperature);
        assert_eq!(generation.seed, inputs.seed);
        assert!(generation.text.len() <= inputs.gen_chars);
    }
    println!("{name}: {}", device.model);
    let (check, network) = device.open_instructions();
    println!("{name}: opened in {check} instructions (blob check), {network} (network)");
    assert!(
        check >= blob.len() as u64,
        "{name}: {check} instructions cannot have checked the CRC of {} bytes",
        blob.len()
    );
    assert_footprint(name, &elf, blob.len() as u64, &device);
    let steps: u64 = device.scores.iter().map(|s| u64::from(s.steps)).sum();
    let ticks: u64 = device.scores.iter().map(|s| s.ticks).sum();
    if let Some(per_step) = (ticks * device.instructions_per_tick()).checked_div(steps) {
        let reviews = device.scores.len() as u64;
        println!(
            "{name}: {} instructions/review ({} reviews), {per_step} instructions/step, \
             {} MACs/step, {:.2} instructions/MAC",
            ticks * device.instructions_per_tick() / reviews,
            reviews,
            macs_per_step(spec),
            per_step as f64 / macs_per_step(spec) as f64
        );
    }
    (device, elf)
}

/// Multiply-accumulates of one cell step and its share of the head: the
/// recurrent products, the input products (none for one-hot chars, a column
/// add) and one dense row per output.
fn macs_per_step(spec: &ModelSpec) -> u64 {
    let hidden = u64::from(spec.hidden);
    let gates = spec.cell.gates() as u64;
    let input = match &spec.input {
        InputSpec::Words { embed_dim, .. } => u64::from(*embed_dim),
        InputSpec::Chars { .. } => 0,
    };
    gates * hidden * (hidden + input) + hidden * spec.output.width() as u64
}

/// The model's own multiply-accumulates per step, as a layer-by-layer count
/// gives them: [`macs_per_step`] plus the input projection of one-hot chars
/// (`W` times a one-hot vector), which the runtime does as a column add.
fn model_macs_per_step(spec: &ModelSpec) -> u64 {
    let one_hot = match &spec.input {
        InputSpec::Chars { .. } => spec.weights.w.len() as u64,
        InputSpec::Words { .. } => 0,
    };
    macs_per_step(spec) + one_hot
}

fn sentiment_inputs() -> FirmwareInputs {
    FirmwareInputs {
        reviews: reviews(),
        ..FirmwareInputs::default()
    }
}

fn generator_inputs() -> FirmwareInputs {
    FirmwareInputs {
        prompt: b"First Citizen: Before we proceed any further, hear me speak.\n".to_vec(),
        gen_chars: 120,
        temperatures_milli: vec![0, 200, 500, 1000],
        seed: 7,
        ..FirmwareInputs::default()
    }
}

#[test]
fn firmware_word_sentiment_lstm_matches_host() {
    let spec = model(
        Kind::Words(22),
        Cell::Lstm,
        24,
        Head::Flatten { maxlen: 32 },
        1,
    );
    let (out, _) = assert_bit_exact("words-lstm", &spec, &sentiment_inputs());
    assert_eq!(out.scores.len(), reviews().len());
    assert!(
        out.scores.iter().all(|s| s.steps == 32),
        "flatten pads/truncates to maxlen"
    );
}

#[test]
fn firmware_word_sentiment_gru_matches_host() {
    let spec = model(Kind::Words(18), Cell::Gru, 24, Head::Mean, 2);
    assert_bit_exact("words-gru", &spec, &sentiment_inputs());
}

#[test]
fn firmware_char_sentiment_lstm_matches_host() {
    let spec = model(
        Kind::Chars,
        Cell::Lstm,
        40,
        Head::FlattenTail { maxlen: 96 },
        3,
    );
    assert_bit_exact("chars-lstm", &spec, &sentiment_inputs());
}

#[test]
fn firmware_char_sentiment_gru_matches_host() {
    let spec = model(Kind::Chars, Cell::Gru, 40, Head::Last, 4);
    assert_bit_exact("chars-gru", &spec, &sentiment_inputs());
}

#[test]
fn firmware_generator_gru_matches_host() {
    let spec = model(Kind::GeneratorWithUnk, Cell::Gru, 64, Head::Last, 6);
    assert_bit_exact("generator-gru", &spec, &generator_inputs());
}

/// The notebook's G shape (LSTM 128, 50 symbols): bit-exact, and its footprint
/// and instructions per generated char, printed for the record.
#[test]
fn firmware_generator_lstm_matches_host_with_footprint() {
    let spec = model(Kind::Generator, Cell::Lstm, 128, Head::Last, 5);
    let inputs = generator_inputs();
    let (out, _) = assert_bit_exact("generator-lstm", &spec, &inputs);
    assert!(out
        .generations
        .iter()
        .all(|g| g.text.len() == inputs.gen_chars));

    let instructions_per_char = instructions_per_char(&out, &inputs);
    let macs_per_char = macs_per_step(&spec);
    let model_macs = model_macs_per_step(&spec);
    println!(
        "G shape on Cortex-M4 (QEMU icount): {instructions_per_char} instructions/char, \
         {macs_per_char} MACs/char executed, {:.2} instructions/MAC; \
         {model_macs} model MACs/char (one-hot input projection counted), {:.2} instructions/model MAC",
        instructions_per_char as f64 / macs_per_char as f64,
        instructions_per_char as f64 / model_macs as f64
    );
    assert!(
        instructions_per_char >= macs_per_char / 4,
        "the clock must count work"
    );
}

/// Instructions per generated char, over every temperature's run.
fn instructions_per_char(out: &FirmwareOutput, inputs: &FirmwareInputs) -> u64 {
    let chars = (inputs.gen_chars * inputs.temperatures_milli.len()) as u64;
    let ticks: u64 = out.generations.iter().map(|g| g.ticks).sum();
    ticks * out.instructions_per_tick() / chars
}

/// The f32 path on the Cortex-M4F's FPU gives the host f32 path's bits: the same
/// operations in the same order (bare metal steps unit by unit, which
/// `runtime/tests/f32_unit_steps.rs` checks against the host's whole steps).
#[test]
fn firmware_f32_path_matches_host_f32_path() {
    let words = model(
        Kind::Words(22),
        Cell::Lstm,
        24,
        Head::Flatten { maxlen: 32 },
        1,
    );
    assert_f32_bit_exact("f32-words-lstm", &words, &sentiment_inputs());
    let chars = model(Kind::Chars, Cell::Gru, 40, Head::Mean, 4);
    assert_f32_bit_exact("f32-chars-gru", &chars, &sentiment_inputs());
    let generator = model(Kind::GeneratorWithUnk, Cell::Gru, 64, Head::Last, 6);
    assert_f32_bit_exact("f32-generator-gru", &generator, &generator_inputs());

    let g_shape = model(Kind::Generator, Cell::Lstm, 128, Head::Last, 5);
    let inputs = generator_inputs();
    let (f32_out, _) = assert_f32_bit_exact("f32-generator-lstm", &g_shape, &inputs);
    let (int_out, _) = device_run("int-generator-lstm", &int_blob(&g_shape), &inputs);
    let (f32_cost, int_cost) = (
        instructions_per_char(&f32_out, &inputs),
        instructions_per_char(&int_out, &inputs),
    );
    println!(
        "G shape on Cortex-M4F: f32 path {f32_cost} instructions/char, integer path \
         {int_cost} ({:.2}x)",
        f32_cost as f64 / int_cost as f64
    );
    assert!(f32_cost > 0 && int_cost > 0, "the clock must count work");
}

/// Prints the image's sections and peak stack; the blob must sit in flash and
/// RAM besides the weights must stay within 8 KiB.
fn assert_footprint(name: &str, elf: &Path, blob_bytes: u64, device: &FirmwareOutput) {
    let sizes = firmware::section_sizes(elf).expect("arm-none-eabi-size");
    println!(
        "{name}: text {} data {} bss {} bytes (blob {blob_bytes} bytes), peak stack {} bytes",
        sizes.text, sizes.data, sizes.bss, device.stack_peak_bytes
    );
    assert!(sizes.text > blob_bytes, "{name}: the blob lives in flash");
    let ram = sizes.data + sizes.bss + device.stack_peak_bytes;
    assert!(
        ram <= 8 * 1024,
        "{name}: RAM besides weights is {ram} bytes, over 8 KiB"
    );
}

fn expect_failure(name: &str, blob: &[u8], error: Error) {
    let path = write_blob(name, blob);
    let elf = firmware::build(&path, &sentiment_inputs()).expect("a bad blob still builds");
    let failure =
        firmware::run(&elf, firmware::Board::default()).expect_err("a bad blob must fail at boot");
    let failure = failure
        .downcast_ref::<FirmwareFailed>()
        .unwrap_or_else(|| panic!("{name}: not a firmware failure: {failure:#}"));
    assert_eq!(failure.status, Some(1), "{name}: {}", failure.console);
    assert_eq!(failure.message, format!("model: {error}"), "{name}");
}

#[test]
fn firmware_corrupt_blob_prints_runtime_error_and_fails() {
    let spec = model(Kind::Chars, Cell::Lstm, 16, Head::Last, 8);
    let mut blob = int_blob(&spec);
    let last = blob.len() - 1;
    blob[last] ^= 0x40;
    expect_failure("corrupt", &blob, Error::BadChecksum);

    let mut wrong_magic = int_blob(&spec);
    wrong_magic[0] ^= 0xFF;
    expect_failure("bad-magic", &wrong_magic, Error::BadMagic);

    let mut f32_blob = spec.f32_blob().expect("encode f32");
    let last = f32_blob.len() - 1;
    f32_blob[last] ^= 0x01;
    expect_failure("corrupt-f32", &f32_blob, Error::BadChecksum);
}

/// The default model embedded when `LSTM_EDGE_MODEL` is not set: a small G-shaped
/// generator (LSTM 32 over the plays' 50 symbols), which the current runtime must
/// load on its integer path. `LSTM_EDGE_BLESS=1` rewrites it from this recipe.
#[test]
fn firmware_default_model_loads_with_this_runtime() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/models/default.bin");
    if std::env::var_os("LSTM_EDGE_BLESS").is_some() {
        let blob = int_blob(&model(Kind::Generator, Cell::Lstm, 32, Head::Last, 42));
        std::fs::create_dir_all(path.parent().expect("models folder")).expect("mkdir");
        std::fs::write(&path, &blob).expect("write the default model");
    }
    let committed = std::fs::read(&path).expect("firmware/models/default.bin");
    let stale = "firmware/models/default.bin does not load with this runtime; \
                 rerun this test with LSTM_EDGE_BLESS=1 and commit the file";
    let model = Model::from_bytes(&committed).expect(stale);
    let net = Network::<Int>::new(&model).expect(stale);
    assert_eq!(net.dims().hidden, 32);
    assert_eq!(
        net.output(),
        Output::Softmax {
            classes: PLAY_CHARS.len() as u16
        }
    );
}

/// Whether a symbol is a soft-float routine (`__aeabi_fadd`, `__aeabi_i2d`,
/// `__addsf3`, `__fixdfsi`, `__gnu_h2f_ieee`, ...) or a float function of the C
/// library (`fmodf`, `expf`, ...), which a core without an FPU would run.
fn is_soft_float(symbol: &str) -> bool {
    const LIBM: [&str; 11] = [
        "fmod", "sqrt", "exp", "log", "pow", "floor", "ceil", "round", "trunc", "fabs", "tanh",
    ];
    if let Some(rest) = symbol.strip_prefix("__aeabi_") {
        return rest.starts_with(['f', 'd', 'h']) || rest.ends_with("2f") || rest.ends_with("2d");
    }
    let libm = LIBM.iter().any(|name| {
        symbol
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest == "f")
    });
    libm || symbol
        .strip_prefix("__")
        .is_some_and(|rest| rest.contains("sf") || rest.contains("df") || rest.starts_with("gnu_"))
}

/// On a Cortex-M3 (QEMU mps2-an385: no FPU, no DSP extension) the integer path
/// runs the runtime's portable kernels: the same scores and text as the host,
/// bit for bit, from an image with no float arithmetic in it.
#[test]
fn firmware_on_a_cortex_m3_matches_host_without_float() {
    let words = model(
        Kind::Words(16),
        Cell::Lstm,
        24,
        Head::Flatten { maxlen: 32 },
        1,
    );
    let generator = model(Kind::GeneratorWithUnk, Cell::Gru, 64, Head::Last, 6);
    for (name, spec, inputs) in [
        ("m3-words-lstm", &words, on_m3(sentiment_inputs())),
        ("m3-generator-gru", &generator, on_m3(generator_inputs())),
    ] {
        let (device, elf) = assert_bit_exact(name, spec, &inputs);
        assert!(device.model.contains("path=int"), "{}", device.model);
        if !device.generations.is_empty() {
            let per_char = instructions_per_char(&device, &inputs);
            println!("{name}: {per_char} instructions/char");
        }
        let symbols = symbols(&elf);
        let float: Vec<&String> = symbols.iter().filter(|s| is_soft_float(s)).collect();
        assert!(float.is_empty(), "{name}: soft-float routines {float:?}");
        assert!(
            symbols.iter().any(|s| s == "__aeabi_uldivmod"),
            "the symbols were read"
        );
    }
    assert!(is_soft_float("__aeabi_fmul") && is_soft_float("__aeabi_ui2d"));
    assert!(is_soft_float("__addsf3") && !is_soft_float("__udivmoddi4"));
    assert!(is_soft_float("fmodf") && is_soft_float("__gnu_h2f_ieee"));
    assert!(!is_soft_float("__aeabi_uldivmod") && !is_soft_float("expected_sum"));
}

fn on_m3(inputs: FirmwareInputs) -> FirmwareInputs {
    FirmwareInputs {
        board: firmware::Board::Mps2An385,
        ..inputs
    }
}

/// The image's symbol names.
fn symbols(elf: &Path) -> Vec<String> {
    let listing = std::process::Command::new("arm-none-eabi-nm")
        .arg(elf)
        .output()
        .expect("arm-none-eabi-nm (binutils-arm-none-eabi)");
    assert!(listing.status.success());
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().last().map(str::to_owned))
        .collect()
}

/// An f32 blob on a Cortex-M3 runs in software float, the compiler's IEEE
/// routines, and still gives the host's bits.
#[test]
fn firmware_f32_on_a_cortex_m3_matches_host_in_software_float() {
    let generator = model(Kind::GeneratorWithUnk, Cell::Gru, 32, Head::Last, 6);
    let inputs = on_m3(FirmwareInputs {
        gen_chars: 40,
        ..generator_inputs()
    });
    let (device, elf) = assert_f32_bit_exact("m3-f32-generator-gru", &generator, &inputs);
    assert!(
        symbols(&elf).iter().any(|s| s.starts_with("__aeabi_f")),
        "an f32 image for the Cortex-M3 runs software float"
    );
    let (int_device, _) = device_run("m3-int-generator-gru", &int_blob(&generator), &inputs);
    let (f32_cost, int_cost) = (
        instructions_per_char(&device, &inputs),
        instructions_per_char(&int_device, &inputs),
    );
    println!(
        "GRU 32 generator on Cortex-M3: f32 path in software float {f32_cost} \
         instructions/char, integer path {int_cost} ({:.1}x)",
        f32_cost as f64 / int_cost as f64
    );
}
