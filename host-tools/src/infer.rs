//! `lstm-edge score` and `lstm-edge generate` on the host, through the same
//! runtime code the device runs.

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Input, Output, MAX_HIDDEN};
use lstm_edge_runtime::host::{MemoBuffers, MAX_CLASSES};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Error, Logits, Network, Rng, State, Temperature, Tokenizer};
use lstm_edge_trainer::data::{reviews, text_ids, HostTokenizer};
use lstm_edge_trainer::ort_env::available_cores;
use serde::Serialize;

use crate::blob::{BlobFile, NumericPath};

/// A sentiment score, or a classifier's most likely class.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    /// Probability of the positive class (sentiment), or of the most likely class.
    pub score: f64,
    /// The runtime's own value, as text: on the integer path the Q0.30 probability,
    /// on the f32 path the float as Rust prints it.
    pub raw: String,
    /// `positive`/`negative`, or `class K` for a classifier.
    pub label: String,
    /// Tokens that went through the cell, padding included.
    pub steps: u32,
    /// Tokens of the text, and how many of them the model does not know (UNK).
    pub tokens: usize,
    pub unknown: usize,
    /// A classifier's probability of each class, in class order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<f64>>,
}

/// One line's report for `score --lines --json`: its line number first, then the
/// fields in `score --json`'s order.
#[derive(Debug, Serialize)]
pub struct LineReport<'a> {
    pub line: usize,
    #[serde(flatten)]
    pub report: &'a ScoreReport,
}

impl ScoreReport {
    /// A caution when most of the text is unknown to the model, so that its score
    /// rests on little (another language, binary data, a vocabulary too small).
    pub fn caution(&self) -> Option<String> {
        (self.unknown * 2 > self.tokens).then(|| {
            format!(
                "{} of the {} tokens are not in the model's vocabulary (UNK): the score says little",
                self.unknown, self.tokens
            )
        })
    }
}

fn runtime_error(file: &BlobFile, what: &str, err: Error) -> anyhow::Error {
    let hint = match err {
        Error::UnknownChar(c) => format!(
            " ({:?} is not among the model's chars {:?}; remove it from the text)",
            char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER),
            model_chars(file).unwrap_or_default()
        ),
        Error::WrongModelKind => {
            " (use `score` with sentiment models and classifiers, `generate` with generator models)"
                .into()
        }
        _ => String::new(),
    };
    anyhow::anyhow!("{what} with {}: {err}{hint}", file.path.display())
}

/// A char model's table as text (its symbols are Latin-1 bytes).
fn model_chars(file: &BlobFile) -> Option<String> {
    match file.model().ok()?.body().input {
        Input::Chars { symbols, .. } => Some(symbols.iter().map(|&b| char::from(b)).collect()),
        Input::Words { .. } => None,
    }
}

/// Texts each thread scores per round; a round's reports go out together, in order.
const TEXTS_PER_THREAD: usize = 256;

/// `f` of each item, in order, on one thread per entry of `scratches` (at
/// least one), each over its own run of items with its own scratch, which it
/// keeps for the next call.
fn map_on_threads<T: Sync, S: Send, R: Send>(
    items: &[T],
    scratches: &mut [S],
    f: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R> {
    let run = |s: &mut S, part: &[T]| part.iter().map(|item| f(s, item)).collect::<Vec<R>>();
    let threads = scratches.len();
    match scratches {
        [] => return Vec::new(),
        [s, ..] if threads == 1 || items.len() <= 1 => return run(s, items),
        _ => {}
    }
    let part_len = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(part_len)
            .zip(scratches.iter_mut())
            .map(|(part, s)| scope.spawn(move || run(s, part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// A scoring thread's state, logits and memo buffers.
type Scratch<N> = (
    Box<State<N, MAX_HIDDEN>>,
    Box<Logits<N, MAX_CLASSES>>,
    MemoBuffers<N>,
);

/// One text's report: its sentiment, or with `classes` its most likely class.
fn score_one<N: Numeric>(
    net: &Network<'_, N>,
    (state, logits, memo): &mut Scratch<N>,
    classes: Option<usize>,
    text: &TokenizedText,
) -> Result<ScoreReport, Error> {
    state.reset();
    let mut memo = memo.memo(net)?;
    memo.feed_ids(state, &text.ids)?;
    let (p, label, probabilities) = match classes {
        None => {
            let p = memo.finish(state)?;
            (p, sentiment_label(N::prob_to_f64(p)).to_string(), None)
        }
        Some(classes) => {
            let mut probs = vec![N::Prob::default(); classes];
            net.probabilities(state, logits, &mut probs)?;
            let as_f64: Vec<f64> = probs.iter().map(|&p| N::prob_to_f64(p)).collect();
            let top = (0..classes)
                .max_by(|&a, &b| as_f64[a].total_cmp(&as_f64[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            (probs[top], format!("class {top}"), Some(as_f64))
        }
    };
    Ok(ScoreReport {
        score: N::prob_to_f64(p),
        raw: format!("{p:?}"),
        label,
        steps: state.steps(),
        tokens: text.ids.len(),
        unknown: text.unknown,
        classes: probabilities,
    })
}

/// Scores each of `texts` with one loaded network, on every core, and hands `each`
/// the reports in order, a round of texts at a time; `name` says which text an
/// error is in (the first in order, after the reports before it).
fn score_with<N: Numeric>(
    file: &BlobFile,
    texts: &[&[u8]],
    name: &dyn Fn(usize) -> String,
    each: &mut dyn FnMut(usize, ScoreReport) -> Result<()>,
) -> Result<()>
where
    for<'w> N::Weights<'w>: Sync,
    Scratch<N>: Send,
{
    let model = file.model()?;
    let net = Network::<N>::new(&model).map_err(|e| runtime_error(file, "loading", e))?;
    let classes = match net.output() {
        Output::Sigmoid => None,
        Output::Softmax { classes } if is_classifier(&net) => Some(classes as usize),
        Output::Softmax { .. } => bail!(
            "{} is a generator (softmax over its own tokens), not a sentiment model or \
             classifier: use `lstm-edge generate`",
            file.path.display()
        ),
    };
    // One thread per core this process may use.
    let threads = available_cores();
    // Tokenized before any text is scored, so that a text the model cannot read
    // stops the run before the first result goes out.
    let tokenized = tokenize_texts(file, texts, name, threads)?;
    let round = threads * TEXTS_PER_THREAD;
    // Kept across rounds, so that each thread's memo of word inputs grows.
    let mut scratches: Vec<Scratch<N>> = (0..threads)
        .map(|_| {
            (
                Box::new(State::new()),
                Box::new(Logits::new()),
                MemoBuffers::new(&net),
            )
        })
        .collect();
    for (first, texts) in (0..).step_by(round).zip(tokenized.chunks(round)) {
        let reports = map_on_threads(texts, &mut scratches, |scratch, text| {
            score_one(&net, scratch, classes, text)
        });
        for (index, report) in (first..).zip(reports) {
            let report =
                report.map_err(|e| runtime_error(file, &format!("scoring {}", name(index)), e))?;
            each(index, report)?;
        }
    }
    Ok(())
}

/// A text's token ids as the blob's tokenizer reads them, and how many are unknown (UNK).
struct TokenizedText {
    ids: Vec<u16>,
    unknown: usize,
}

/// Each text's tokens, as the blob's tokenizer reads them, on up to `threads`
/// threads. A text it cannot read, or one that gives it no tokens (its score would
/// be the initial state's, whatever the text), is an error named by `name`: the
/// first such text in order.
fn tokenize_texts(
    file: &BlobFile,
    texts: &[&[u8]],
    name: &dyn Fn(usize) -> String,
    threads: usize,
) -> Result<Vec<TokenizedText>> {
    let model = file.model()?;
    let runtime_tokenizer =
        Tokenizer::of_input(&model.body().input).map_err(|e| runtime_error(file, "loading", e))?;
    let unk = runtime_tokenizer.unk_id();
    let tokenizer = HostTokenizer::new(&runtime_tokenizer);
    let all_ids = map_on_threads(texts, &mut vec![(); threads], |_, text| {
        text_ids(&tokenizer, text)
    });
    let mut tokenized = Vec::with_capacity(texts.len());
    for (index, ids) in all_ids.into_iter().enumerate() {
        let ids = ids.map_err(|e| runtime_error(file, &format!("scoring {}", name(index)), e))?;
        ensure!(
            !ids.is_empty(),
            "{} gives the model no tokens (its tokenizer skips every char there, such as \
             whitespace, vertical tabs or non-breaking spaces): give some text to score",
            name(index)
        );
        let unknown = ids.iter().filter(|&&id| Some(id) == unk).count();
        tokenized.push(TokenizedText { ids, unknown });
    }
    Ok(tokenized)
}

/// Checks that the blob's tokenizer reads each text and finds tokens in it: a text
/// it cannot read, or one that gives it no tokens, is an error named by `name`.
pub fn check_texts_tokenize(
    file: &BlobFile,
    texts: &[&[u8]],
    name: &dyn Fn(usize) -> String,
) -> Result<()> {
    tokenize_texts(file, texts, name, available_cores()).map(drop)
}

/// Scores `texts` on the blob's numeric path, handing `each` the reports in order;
/// `name` says which text an error is in.
fn score_texts(
    file: &BlobFile,
    texts: &[&[u8]],
    name: &dyn Fn(usize) -> String,
    each: &mut dyn FnMut(usize, ScoreReport) -> Result<()>,
) -> Result<()> {
    match file.numeric_path()? {
        NumericPath::Int => score_with::<Int>(file, texts, name, each),
        NumericPath::F32 => score_with::<F32>(file, texts, name, each),
    }
}

/// A softmax model is a classifier when it has fewer classes than token ids; a
/// generator's classes are its own tokens, the next one to emit.
fn is_classifier<N: Numeric>(net: &Network<'_, N>) -> bool {
    matches!(net.output(), Output::Softmax { classes } if (classes as usize) < net.dims().tokens)
}

/// "positive" from a score of 0.5 up, else "negative".
pub fn sentiment_label(score: f64) -> &'static str {
    if score >= 0.5 {
        "positive"
    } else {
        "negative"
    }
}

/// Scores `text` with a sentiment model; `source` names the text in errors.
pub fn score(file: &BlobFile, text: &[u8], source: &str) -> Result<ScoreReport> {
    let mut scored = None;
    score_texts(file, &[text], &|_| source.to_string(), &mut |_, report| {
        scored = Some(report);
        Ok(())
    })?;
    scored.context("no score")
}

/// The lines of `text` as an editor shows them: each ends at `\n`, `\r\n` or a lone
/// `\r` (old Mac files), and an end at the very end starts no further line.
fn editor_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
        lines.push(&rest[..end]);
        let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
        rest = &rest[end + if crlf { 2 } else { 1 }..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// Scores each line of `text` as a review of its own, handing `each` the line's index
/// and report in order; a blank line, or one that gives the model no tokens, is an
/// error naming it (before any line is scored), since its score would be noise.
pub fn score_lines(
    file: &BlobFile,
    text: &[u8],
    source: &str,
    each: &mut dyn FnMut(usize, ScoreReport) -> Result<()>,
) -> Result<()> {
    let lines = review_lines(text, source)?;
    score_texts(
        file,
        &lines,
        &|index| format!("{source}, line {}", index + 1),
        each,
    )
}

/// The reviews of `text`, one a line; no lines, or a blank one, is an error naming
/// `source` (and the line).
pub fn review_lines<'t>(text: &'t [u8], source: &str) -> Result<Vec<&'t [u8]>> {
    let lines = editor_lines(text);
    ensure!(
        !lines.is_empty(),
        "{source} holds no lines: give one review per line"
    );
    if let Some(blank) = lines.iter().position(|line| reviews::is_blank(line)) {
        bail!(
            "{source}, line {}: the line is blank; give one review per line and remove blank lines",
            blank + 1
        );
    }
    Ok(lines)
}

/// Settings for `generate`.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    pub temperature: Temperature,
    pub length: usize,
    pub seed: u64,
}

/// Converts a user temperature to the runtime's thousandths.
pub fn temperature(t: f32) -> Result<Temperature> {
    Temperature::from_f32(t).with_context(|| {
        if (0.0..=Temperature::MAX).contains(&t) {
            format!(
                "--temperature {t} is below the smallest step, 0.001: give 0 for greedy sampling \
                 or at least 0.001"
            )
        } else {
            format!(
                "--temperature must be between 0 (greedy) and {}, got {t}",
                Temperature::MAX
            )
        }
    })
}

fn generate_with<N: Numeric>(
    file: &BlobFile,
    prompt: &[u8],
    opts: GenerateOptions,
    emit: &mut dyn FnMut(u8) -> Result<()>,
) -> Result<usize> {
    let model = file.model()?;
    let net = Network::<N>::new(&model).map_err(|e| runtime_error(file, "loading", e))?;
    let Output::Softmax { classes } = net.output() else {
        bail!(
            "{} is a sentiment (sigmoid) model, not a generator: use `lstm-edge score`",
            file.path.display()
        );
    };
    // A generator's classes are its tokens; a classifier's class ids are no text.
    ensure!(
        !is_classifier(&net),
        "{} is a classifier of {classes} classes over {} token ids, not a generator: \
         `lstm-edge score` prints its class probabilities",
        file.path.display(),
        net.dims().tokens
    );
    if classes as usize > MAX_CLASSES {
        bail!(
            "{} has {classes} output classes; at most {MAX_CLASSES} are supported",
            file.path.display()
        );
    }
    let Tokenizer::Chars(table) = net.tokenizer() else {
        bail!(
            "{} is a word model: generation needs a char model",
            file.path.display()
        );
    };
    let table = table.clone();
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    net.feed_text(&mut state, prompt)
        .map_err(|e| runtime_error(file, "reading the prompt", e))?;
    let mut logits = Box::new(Logits::<N, MAX_CLASSES>::new());
    let mut rng = Rng::new(opts.seed);
    let mut charless = 0;
    for _ in 0..opts.length {
        let id = net
            .sample_next(&mut state, &mut logits, opts.temperature, &mut rng)
            .map_err(|e| runtime_error(file, "generating", e))?;
        // UNK and PAD have no char; they are counted, not emitted.
        match table.symbol(id) {
            Some(byte) => emit(byte)?,
            None => charless += 1,
        }
    }
    Ok(charless)
}

/// Samples `opts.length` symbols after `prompt` and hands the char of each to `emit` as
/// it is sampled (a Latin-1 code point), so output can stream and memory does not grow
/// with the length. Returns how many samples were UNK, which has no char to emit (only
/// a model whose corpus held chars beyond Latin-1 has one).
pub fn generate_each(
    file: &BlobFile,
    prompt: &[u8],
    opts: GenerateOptions,
    mut emit: impl FnMut(u8) -> Result<()>,
) -> Result<usize> {
    if prompt.is_empty() {
        bail!("the prompt is empty: give the model some text to continue (e.g. --prompt \"to be or not to be\")");
    }
    match file.numeric_path().context("reading the model")? {
        NumericPath::Int => generate_with::<Int>(file, prompt, opts, &mut emit),
        NumericPath::F32 => generate_with::<F32>(file, prompt, opts, &mut emit),
    }
}

/// Generates `opts.length` samples after `prompt` (fewer chars where UNK was sampled).
/// Chars are Latin-1 code points.
pub fn generate(file: &BlobFile, prompt: &[u8], opts: GenerateOptions) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    generate_each(file, prompt, opts, |byte| {
        text.push(byte);
        Ok(())
    })?;
    Ok(text)
}

/// Latin-1 bytes as a UTF-8 string.
pub fn latin1_to_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::{editor_lines, map_on_threads};

    #[test]
    fn threads_hand_back_results_in_order_each_with_its_own_scratch() {
        let items: Vec<u32> = (0..10).collect();
        for threads in [1, 3, 4, 16] {
            // The scratch counts the items its thread has seen: each thread's run
            // starts from what it saw in the calls before.
            let mut scratches = vec![0u32; threads];
            let part = items.len().div_ceil(threads);
            for call in 0..2 {
                let out = map_on_threads(&items, &mut scratches, |seen, &item| {
                    *seen += 1;
                    (item, *seen)
                });
                let order: Vec<u32> = out.iter().map(|&(item, _)| item).collect();
                assert_eq!(order, items, "{threads} threads");
                for (index, &(_, seen)) in out.iter().enumerate() {
                    let before = part.min(items.len() - index / part * part) * call;
                    assert_eq!(
                        seen as usize,
                        before + index % part + 1,
                        "{threads} threads, call {call}, item {index}"
                    );
                }
            }
        }
        assert!(map_on_threads(&[] as &[u32], &mut [(); 4], |_, &x| x).is_empty());
    }

    #[test]
    fn lines_end_at_lf_crlf_or_a_lone_cr() {
        let lines = editor_lines(b"good film\rbad film\r\nok\nfine\r");
        assert_eq!(lines, [&b"good film"[..], b"bad film", b"ok", b"fine"]);
        assert_eq!(editor_lines(b"a\n\nb"), [&b"a"[..], b"", b"b"]);
        assert_eq!(
            editor_lines(b"last line without an end"),
            [&b"last line without an end"[..]]
        );
        assert!(editor_lines(b"").is_empty());
    }
}
