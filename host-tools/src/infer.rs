//! `lstm-edge score` and `lstm-edge generate` on the host, through the same
//! runtime code the device runs.

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Input, Output, MAX_HIDDEN};
use lstm_edge_runtime::host::MAX_CLASSES;
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Error, Logits, Network, Rng, State, Temperature, Tokenizer};
use lstm_edge_trainer::data::{reviews, text_ids};
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

/// Scores each of `texts` with one loaded network and hands `each` its report as it
/// comes; `name` says which text an error is in.
fn score_with<N: Numeric>(
    file: &BlobFile,
    texts: &[&[u8]],
    name: &dyn Fn(usize) -> String,
    each: &mut dyn FnMut(usize, ScoreReport) -> Result<()>,
) -> Result<()> {
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
    // Tokenized before any text is scored, so that a text the model cannot read
    // stops the run before the first result goes out.
    let tokenized = tokenize_texts(file, texts, name)?;
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    let mut logits = Box::new(Logits::<N, MAX_CLASSES>::new());
    for (index, text) in tokenized.iter().enumerate() {
        let report = {
            let scoring = |e| runtime_error(file, &format!("scoring {}", name(index)), e);
            state.reset();
            net.feed_ids(&mut state, &text.ids).map_err(scoring)?;
            let (p, label, probabilities) = match classes {
                None => {
                    let p = net.finish(&mut state).map_err(scoring)?;
                    (p, sentiment_label(N::prob_to_f64(p)).to_string(), None)
                }
                Some(classes) => {
                    let mut probs = vec![N::Prob::default(); classes];
                    net.probabilities(&state, &mut logits, &mut probs)
                        .map_err(scoring)?;
                    let as_f64: Vec<f64> = probs.iter().map(|&p| N::prob_to_f64(p)).collect();
                    let top = (0..classes)
                        .max_by(|&a, &b| as_f64[a].total_cmp(&as_f64[b]).then(b.cmp(&a)))
                        .unwrap_or(0);
                    (probs[top], format!("class {top}"), Some(as_f64))
                }
            };
            let score = N::prob_to_f64(p);
            ScoreReport {
                score,
                raw: format!("{p:?}"),
                label,
                steps: state.steps(),
                tokens: text.ids.len(),
                unknown: text.unknown,
                classes: probabilities,
            }
        };
        each(index, report)?;
    }
    Ok(())
}

/// A text's token ids as the blob's tokenizer reads them, and how many are unknown (UNK).
struct TokenizedText {
    ids: Vec<u16>,
    unknown: usize,
}

/// Each text's tokens, as the blob's tokenizer reads them. A text it cannot read, or
/// one that gives it no tokens (its score would be the initial state's, whatever the
/// text), is an error named by `name`.
fn tokenize_texts(
    file: &BlobFile,
    texts: &[&[u8]],
    name: &dyn Fn(usize) -> String,
) -> Result<Vec<TokenizedText>> {
    let model = file.model()?;
    let tokenizer =
        Tokenizer::of_input(&model.body().input).map_err(|e| runtime_error(file, "loading", e))?;
    let unk = tokenizer.unk_id();
    let mut tokenized = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let ids = text_ids(&tokenizer, text)
            .map_err(|e| runtime_error(file, &format!("scoring {}", name(index)), e))?;
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
    tokenize_texts(file, texts, name).map(drop)
}

/// Scores `texts` on the blob's numeric path, handing `each` each report as it comes;
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
/// and report as it comes; a blank line, or one that gives the model no tokens, is an
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
    use super::editor_lines;

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
