//! A foreign model's weights in our parameters: gate order, the token table's ids,
//! and an embedding folded into `W` where the runtime takes one-hot input.

use crate::model::{InputConfig, ModelConfig, Params, Tensor as ParamTensor};
use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Head, Output, MAX_HIDDEN};
use lstm_edge_runtime::host::MAX_CLASSES;
use lstm_edge_runtime::tokenize::{encode_vocab, for_each_word};

use super::{Converted, ForeignInput, ForeignModel, TokenTable, PAD_MARK, UNK_MARK};

/// Turns a foreign model into our config and parameters for the given token table.
pub fn convert(foreign: &ForeignModel, tokens: &TokenTable) -> Result<Converted> {
    let mapped = match tokens {
        TokenTable::Chars {
            table,
            lowercase,
            unk,
            pad,
        } => char_input(foreign, table, *lowercase, *unk, *pad)?,
        TokenTable::Words { lines } => word_input(foreign, lines)?,
    };
    if matches!(foreign.head, Head::Flatten { .. } | Head::Mean) {
        ensure!(
            foreign.output == Output::Sigmoid,
            "the model has a {} head with a {}: the runtime's flatten and mean heads give a \
             sigmoid score only (a softmax reads the last step's state)",
            foreign.head,
            foreign.output
        );
    }
    ensure!(
        foreign.hidden <= MAX_HIDDEN,
        "the model's {} has {} units; the runtime takes at most {MAX_HIDDEN} (its integer \
         path's dot products are proven free of overflow up to there): export a model with at \
         most {MAX_HIDDEN} units",
        foreign.cell,
        foreign.hidden
    );
    let config = ModelConfig {
        cell: foreign.cell,
        input: mapped.input,
        hidden: foreign.hidden,
        head: foreign.head,
        output: foreign.output,
        dropout: 0.0,
    };
    if let Output::Softmax { classes } = foreign.output {
        let (classes, tokens) = (usize::from(classes), config.vocab_rows());
        ensure!(
            classes <= tokens,
            "the model's softmax has {classes} classes, more than its {tokens} token ids: a \
             runtime model has at most as many classes as token ids (a generator has exactly \
             as many, the next token)"
        );
        ensure!(
            classes <= MAX_CLASSES,
            "the model's softmax has {classes} classes; `score` and `generate` take at most \
             {MAX_CLASSES}"
        );
        ensure!(
            classes < tokens || matches!(config.input, InputConfig::Chars { .. }),
            "the model's softmax has as many classes as token ids ({tokens}), as a generator's \
             has, but the runtime generates from char models only: a word-level generator \
             cannot run here"
        );
    }
    config
        .validate()
        .context("the imported model does not fit the runtime")?;
    let params = Params {
        embedding: mapped.embedding,
        w: mapped.w,
        r: foreign.r.clone(),
        wb: foreign.wb.clone(),
        rb: foreign.rb.clone(),
        head_w: foreign.head_w.clone(),
        head_b: foreign.head_b.clone(),
    };
    params.check_shapes(&config)?;
    Ok(Converted {
        config,
        params,
        runtime_id: mapped.runtime_id,
    })
}

/// The input side of a converted model.
struct MappedInput {
    input: InputConfig,
    embedding: Option<ParamTensor>,
    w: ParamTensor,
    /// The runtime's id for each foreign id.
    runtime_id: Vec<u16>,
}

/// One-hot chars, one per foreign id: an embedding folds into W (W' = W E^T),
/// exactly.
fn char_input(
    foreign: &ForeignModel,
    table: &[u8],
    lowercase: bool,
    unk: bool,
    pad: bool,
) -> Result<MappedInput> {
    let ids = foreign.input.ids();
    let rows = table.len() + usize::from(unk) + usize::from(pad);
    let flagged = match (unk, pad) {
        (true, true) => " plus UNK and PAD",
        (true, false) => " plus UNK",
        (false, true) => " plus PAD",
        (false, false) => "",
    };
    ensure!(
        rows == ids,
        "the model has {ids} token ids but --chars gives {} chars{flagged}, {rows} ids: \
         list one char per id, in id order (UNK and PAD, when flagged, are the last ids)",
        table.len(),
    );
    ensure!(
        pad || foreign.head.flatten_maxlen().is_none(),
        "the model has a flatten head, which pads a text to its {} steps: give --pad (PAD \
         must be the model's last id)",
        foreign.head.flatten_maxlen().unwrap_or_default()
    );
    if let Some(twice) = crate::model::repeated_byte(table) {
        bail!(
            "--chars lists {:?} twice: each char is one token id, so list it once, at its id",
            char::from(twice)
        );
    }
    // The runtime's own lowercasing (Latin-1 capitals too) decides what is unreachable.
    let unreachable = table
        .iter()
        .find(|&&b| lstm_edge_runtime::tokenize::lowercase(u32::from(b)) != u32::from(b));
    if let (Some(&upper), true) = (unreachable, lowercase) {
        bail!(
            "--chars holds {:?}, which --lowercase makes unreachable (text is lowercased \
             before the lookup): drop --lowercase, or list the char in lowercase",
            char::from(upper)
        );
    }
    let w = match &foreign.input {
        ForeignInput::Embedding(e) => matmul_transposed(&foreign.w, e)?,
        ForeignInput::OneHot { .. } => foreign.w.clone(),
    };
    Ok(MappedInput {
        input: InputConfig::Chars {
            table: table.to_vec(),
            lowercase,
            unk,
            pad,
        },
        embedding: None,
        w,
        runtime_id: (0..ids as u16).collect(),
    })
}

/// The widest one-hot input read as words: its identity embedding is 64 MB of f32.
const MAX_ONE_HOT_WORDS: usize = 4096;

/// Words from the vocab file's lines, one per foreign id. Runtime rows: 0 =
/// PAD, 1 = UNK, 2 + i = the i-th sorted word; a missing PAD or UNK gets a zero
/// row.
fn word_input(foreign: &ForeignModel, lines: &[String]) -> Result<MappedInput> {
    let ids = foreign.input.ids();
    if lines.len() != ids {
        // Blank lines explain a file that is too long by as many lines.
        let blanks: Vec<usize> = (0..lines.len())
            .filter(|&k| lines[k].trim().is_empty())
            .collect();
        let blank = match blanks.first() {
            Some(&k) if lines.len() > ids && blanks.len() == lines.len() - ids => {
                format!(" (line {} is blank: remove it)", k + 1)
            }
            _ => String::new(),
        };
        bail!(
            "the vocab file has {} lines but the model has {ids} token ids{blank}: give one \
             line per id, in id order",
            lines.len()
        );
    }
    let (order, pad_line, unk_line) = word_order(lines)?;
    if matches!(foreign.head, Head::Flatten { .. }) {
        ensure!(
            pad_line.is_some(),
            "the model's flatten head pads with a PAD id: mark that id's line in the vocab file with {PAD_MARK}"
        );
    }
    if unk_line.is_none() {
        eprintln!(
            "warning: no vocab line is {UNK_MARK}: words outside the vocabulary will read a \
             zero vector, not one the model trained; mark the unknown-word id's line with \
             {UNK_MARK} if the model has one"
        );
    }
    let unreachable = unreachable_words(lines);
    if !unreachable.is_empty() {
        let shown: Vec<&str> = unreachable
            .iter()
            .take(8)
            .map(|&k| lines[k].as_str())
            .collect();
        eprintln!(
            "warning: {} vocab lines are not single tokens of the runtime's Treebank tokenizer \
             (it splits them), so text never reaches their ids: {}{}",
            unreachable.len(),
            shown.join(" "),
            if unreachable.len() > shown.len() {
                " ..."
            } else {
                ""
            }
        );
    }
    let words: Vec<Vec<u8>> = order
        .iter()
        .map(|&line| lines[line].as_bytes().to_vec())
        .collect();
    let (strings, offsets) = encode_vocab(words);
    let table = match &foreign.input {
        ForeignInput::Embedding(e) => e.clone(),
        ForeignInput::OneHot { depth, .. } => {
            // Read as words, a one-hot input becomes an ids x ids identity embedding.
            ensure!(
                *depth <= MAX_ONE_HOT_WORDS,
                "the model reads {depth} ids one-hot; as a word model that is a {depth} x \
                 {depth} embedding ({} MB of f32): give --chars for a char model, or export \
                 the model with an embedding (Gather) layer",
                (depth * depth * 4) >> 20
            );
            identity(*depth)
        }
    };
    let width = table.dims[1];
    let row = |line: Option<usize>| -> Vec<f32> {
        line.map_or(vec![0.0; width], |l| {
            table.data[l * width..(l + 1) * width].to_vec()
        })
    };
    let mut data = row(pad_line);
    data.extend(row(unk_line));
    let mut runtime_id = vec![1u16; ids];
    if let Some(l) = pad_line {
        runtime_id[l] = 0;
    }
    for (i, &line) in order.iter().enumerate() {
        data.extend(row(Some(line)));
        runtime_id[line] = (2 + i) as u16;
    }
    Ok(MappedInput {
        input: InputConfig::Words {
            strings,
            offsets,
            embed_dim: width,
        },
        embedding: Some(ParamTensor::new(&[order.len() + 2, width], data)?),
        w: foreign.w.clone(),
        runtime_id,
    })
}

/// The ids a vocab file marks rather than names a word for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Pad,
    Unk,
}

/// The mark a vocab line is, if any: `<pad>` or `<unk>` in any case (`<PAD>` as
/// many exports write it). Never a word: the tokenizer splits `<` and `>` off.
fn vocab_mark(line: &str) -> Option<Mark> {
    [(PAD_MARK, Mark::Pad), (UNK_MARK, Mark::Unk)]
        .into_iter()
        .find(|(text, _)| line.eq_ignore_ascii_case(text))
        .map(|(_, mark)| mark)
}

/// The word lines in the runtime's order (ASCII-lowercased, sorted), and the PAD
/// and UNK lines, with errors naming the line.
fn word_order(lines: &[String]) -> Result<(Vec<usize>, Option<usize>, Option<usize>)> {
    let (mut pad, mut unk) = (None, None);
    let mut words: Vec<(Vec<u8>, usize)> = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let mark = match vocab_mark(line) {
            Some(Mark::Pad) => Some(&mut pad),
            Some(Mark::Unk) => Some(&mut unk),
            None => None,
        };
        if let Some(slot) = mark {
            if let Some(first) = slot.replace(k) {
                bail!(
                    "vocab line {}: {line} appears again (first on line {}; marks are read in any \
                     case): a model has one such id",
                    k + 1,
                    first + 1
                );
            }
            continue;
        }
        ensure!(
            !line.is_empty() && !line.chars().any(char::is_whitespace),
            "vocab line {}: {line:?} is not a word: give one token per line, without spaces",
            k + 1
        );
        words.push((line.to_ascii_lowercase().into_bytes(), k));
    }
    words.sort();
    for pair in words.windows(2) {
        ensure!(
            pair[0].0 != pair[1].0,
            "vocab lines {} and {} are the same word once lowercased ({:?}): the runtime matches words case-insensitively",
            pair[0].1 + 1,
            pair[1].1 + 1,
            String::from_utf8_lossy(&pair[0].0)
        );
    }
    Ok((words.into_iter().map(|(_, k)| k).collect(), pad, unk))
}

/// The vocab lines (indices) that the runtime's word splitter never gives as one
/// token inside a text, such as `don't` (`do` `n't`) or `hello!`.
fn unreachable_words(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| vocab_mark(line).is_none())
        .filter(|(_, line)| {
            // Mid-text, as words are met: a text's last period is always split off.
            let text = format!("{line} x");
            let mut first = None;
            let _ = for_each_word(text.as_bytes(), |word| {
                first.get_or_insert(word);
                Ok(())
            });
            first != Some(line.as_bytes())
        })
        .map(|(k, _)| k)
        .collect()
}

fn identity(n: usize) -> ParamTensor {
    let mut data = vec![0.0; n * n];
    for i in 0..n {
        data[i * n + i] = 1.0;
    }
    ParamTensor {
        dims: vec![n, n],
        data,
    }
}

/// `a [m, k] · b[n, k]^T`, accumulated in f64.
fn matmul_transposed(a: &ParamTensor, b: &ParamTensor) -> Result<ParamTensor> {
    let (m, k, n) = (a.dims[0], a.dims[1], b.dims[0]);
    ensure!(
        b.dims[1] == k,
        "embedding width {} vs W {:?}",
        b.dims[1],
        a.dims
    );
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        let row = &a.data[i * k..(i + 1) * k];
        for j in 0..n {
            let col = &b.data[j * k..(j + 1) * k];
            out.push(
                row.iter()
                    .zip(col)
                    .map(|(&x, &y)| x as f64 * y as f64)
                    .sum::<f64>() as f32,
            );
        }
    }
    ParamTensor::new(&[m, n], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn words_the_splitter_breaks_up_are_found() {
        let vocab = lines(&["<pad>", "don't", "hello!", "U.S.", "e-mail", "film", "'s"]);
        assert_eq!(unreachable_words(&vocab), vec![1, 2]);
    }

    #[test]
    fn word_order_sorts_words_and_finds_the_marks() {
        let (order, pad, unk) =
            word_order(&lines(&["<pad>", "zebra", "<unk>", "Apple", "mango"])).unwrap();
        assert_eq!(order, vec![3, 4, 1]);
        assert_eq!((pad, unk), (Some(0), Some(2)));
        // Marks in any case, as exports write them, are marks, not words.
        let upper = lines(&["<PAD>", "zebra", "<Unk>", "Apple", "mango"]);
        assert_eq!(
            word_order(&upper).unwrap(),
            (vec![3, 4, 1], Some(0), Some(2))
        );
        assert!(unreachable_words(&upper).is_empty());
    }

    #[test]
    fn word_order_names_the_lines_of_a_duplicate() {
        let err = word_order(&lines(&["the", "cat", "The"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lines 1 and 3"), "{err}");
        let err = word_order(&lines(&["<pad>", "a", "<pad>"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("first on line 1"),
            "{err}"
        );
        let err = word_order(&lines(&["a", "two words"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn folding_an_embedding_into_w_gives_the_same_projection() {
        let w = ParamTensor::new(&[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]).unwrap();
        let e = ParamTensor::new(&[2, 3], vec![0.0, 1.0, 0.0, 2.0, 0.0, -1.0]).unwrap();
        let folded = matmul_transposed(&w, &e).unwrap();
        // Column k of the folded matrix is W times embedding row k.
        assert_eq!(folded.dims, vec![2, 2]);
        assert_eq!(folded.data, vec![2.0, -1.0, 0.5, -2.0]);
    }
}
