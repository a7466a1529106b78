//! lstm-edge firmware for Cortex-M (M4F, or M3 without FPU): runs the embedded
//! model on the embedded inputs (see `build.rs`) and reports over semihosting,
//! one record per line:
//!
//! ```text
//! lstm-edge-firmware 3
//! clock <SysTick hz>
//! model <cell> hidden=<h> input=<chars|words>:<tokens> head=<head> output=<output> path=<int|f32> blob=<bytes>
//! score <review index> <score> <ticks> <steps>          (sentiment models)
//! gen <temperature milli> <seed> <text hex> <prompt ticks> <ticks>   (generator models)
//! open <check ticks> <network ticks>
//! stack <peak bytes> <region bytes>
//! end
//! ```
//!
//! The image runs the embedded blob's numeric path (`path=`), chosen when it is
//! built. `score` is the sigmoid output as the runtime returns it: the integer
//! path's fixed-point value, or the bits of the f32 path's `f32` as an unsigned
//! integer, so that the host compares either exactly.
//! Each `gen` run starts from a fresh state fed the prompt and a generator seeded
//! with the seed; the text holds `GEN_CHARS` samples, as Latin-1 bytes, less any
//! UNK or PAD samples, which have no char and are left out (as on the host).
//! `open` gives what opening the model cost at boot: `Model::from_bytes` (the
//! CRC-32 and the structure checks) and `Network::new` (the tokenizer's checks,
//! a vocabulary's order included). It is printed last: printed between opening
//! and running the model, it took `main`'s frame, and so `w`'s peak stack, up
//! by 72 bytes.
//! Any failure prints `error <what>: <message>` and exits non-zero.
#![no_std]
#![no_main]

mod clock;
mod protocol;
mod stack;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprint, hprintln};
use lstm_edge_runtime::format::{Cell, Head, Input, Output, Params};
use lstm_edge_runtime::{Error, Logits, Model, Network, Rng, State, Temperature, Tokenizer};
use panic_semihosting as _;
use protocol::PROTOCOL_VERSION;

mod inputs {
    include!(concat!(env!("OUT_DIR"), "/inputs.rs"));
}

type DeviceState = State<inputs::Numeric, { inputs::MAX_HIDDEN }>;
type DeviceLogits = Logits<inputs::Numeric, { inputs::MAX_CLASSES }>;
type DeviceNetwork<'a> = Network<'a, inputs::Numeric>;

#[entry]
fn main() -> ! {
    stack::paint();
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        fail("boot", "core peripherals already taken");
    };
    clock::start(peripherals.SYST);

    hprintln!("lstm-edge-firmware {}", PROTOCOL_VERSION);
    hprintln!("clock {}", clock::CORE_CLOCK_HZ);

    let start = clock::now();
    let model = match Model::from_bytes(inputs::MODEL) {
        Ok(model) => model,
        Err(error) => fail_with("model", error),
    };
    let check_ticks = clock::now() - start;
    print_model(&model);
    let start = clock::now();
    let net = match DeviceNetwork::new(&model) {
        Ok(net) => net,
        Err(error) => fail_with("model", error),
    };
    let network_ticks = clock::now() - start;
    let mut state = DeviceState::new();
    let result = match net.output() {
        Output::Sigmoid => score_reviews(&net, &mut state),
        Output::Softmax { .. } => generate(&net, &mut state),
    };
    if let Err(error) = result {
        fail_with("run", error);
    }

    hprintln!("open {} {}", check_ticks, network_ticks);
    hprintln!("stack {} {}", stack::peak_bytes(), stack::region_bytes());
    hprintln!("end");
    debug::exit(debug::EXIT_SUCCESS);
    halt()
}

fn print_model(model: &Model<'_>) {
    let body = model.body();
    let dims = model.dims();
    let cell = match body.cell {
        Cell::Lstm => "lstm",
        Cell::Gru => "gru",
    };
    let input = match body.input {
        Input::Chars { .. } => "chars",
        Input::Words { .. } => "words",
    };
    let path = match body.params {
        Params::Int(_) => "int",
        Params::F32(_) => "f32",
    };
    hprint!(
        "model {} hidden={} input={}:{} head=",
        cell,
        dims.hidden,
        input,
        dims.tokens
    );
    match body.head {
        Head::Flatten { maxlen } => hprint!("flatten:{}", maxlen),
        Head::FlattenTail { maxlen } => hprint!("flatten-tail:{}", maxlen),
        Head::Last => hprint!("last"),
        Head::Mean => hprint!("mean"),
    }
    match body.output {
        Output::Sigmoid => hprint!(" output=sigmoid"),
        Output::Softmax { classes } => hprint!(" output=softmax:{}", classes),
    }
    hprintln!(" path={} blob={}", path, inputs::MODEL.len());
}

fn score_reviews(net: &DeviceNetwork<'_>, state: &mut DeviceState) -> Result<(), Error> {
    for (index, review) in inputs::REVIEWS.iter().enumerate() {
        let start = clock::now();
        let score = net.score_text(state, review)?;
        let ticks = clock::now() - start;
        hprintln!(
            "score {} {} {} {}",
            index,
            score.raw(),
            ticks,
            state.steps()
        );
    }
    Ok(())
}

/// A score as the protocol prints it (see the module docs).
trait RawScore {
    fn raw(self) -> u32;
}

impl RawScore for u32 {
    fn raw(self) -> u32 {
        self
    }
}

impl RawScore for f32 {
    fn raw(self) -> u32 {
        self.to_bits()
    }
}

fn generate(net: &DeviceNetwork<'_>, state: &mut DeviceState) -> Result<(), Error> {
    let symbols = match net.tokenizer() {
        Tokenizer::Chars(table) => table.symbols(),
        Tokenizer::Words(_) => return Err(Error::WrongModelKind),
    };
    let mut logits = DeviceLogits::new();
    for &temperature in inputs::TEMPERATURES_MILLI {
        state.reset();
        let start = clock::now();
        net.feed_text(state, inputs::PROMPT)?;
        let prompt_ticks = clock::now() - start;

        hprint!("gen {} {} ", temperature, inputs::SEED);
        let mut rng = Rng::new(inputs::SEED);
        let mut hex = HexLine::new();
        let mut ticks = 0;
        for _ in 0..inputs::GEN_CHARS {
            let start = clock::now();
            let id = net.sample_next(
                state,
                &mut logits,
                Temperature::from_milli(temperature),
                &mut rng,
            )?;
            ticks += clock::now() - start;
            if let Some(&symbol) = symbols.get(usize::from(id)) {
                hex.push(symbol);
            }
        }
        hex.flush();
        hprintln!(" {} {}", prompt_ticks, ticks);
    }
    Ok(())
}

/// Hex digits buffered into chunks, so output costs one semihosting call per chunk.
struct HexLine {
    buffer: [u8; 128],
    len: usize,
}

impl HexLine {
    fn new() -> Self {
        HexLine {
            buffer: [0; 128],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        if self.len + 2 > self.buffer.len() {
            self.flush();
        }
        if let Some(pair) = self.buffer.get_mut(self.len..self.len + 2) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xF)];
            self.len += 2;
        }
    }

    fn flush(&mut self) {
        if let Some(Ok(text)) = self.buffer.get(..self.len).map(core::str::from_utf8) {
            hprint!("{}", text);
        }
        self.len = 0;
    }
}

fn fail_with(what: &str, error: Error) -> ! {
    hprintln!("error {}: {}", what, error);
    exit_failure()
}

fn fail(what: &str, message: &str) -> ! {
    hprintln!("error {}: {}", what, message);
    exit_failure()
}

fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

/// Where execution stays if the debugger or emulator ignores the exit request.
fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!(
        "error hardfault: pc={:#010x} lr={:#010x}",
        frame.pc(),
        frame.lr()
    );
    exit_failure()
}
