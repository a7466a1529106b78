//! Scoring a model's f32 and integer blobs on an evaluation set: loss, accuracy and how
//! far the two blobs' outputs drift apart.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use indicatif::ProgressBar;
use lstm_edge_runtime::host::HostModel;
use lstm_edge_runtime::numeric::F32;
use lstm_edge_runtime::Network;
use serde::{Deserialize, Serialize};

use crate::data::{read_corpus, text_ids, CharWindows, Encoded, HostTokenizer};
use crate::progress;

use super::prepare::describe_paths;
use super::{F32_BLOB_FILE, INT_BLOB_FILE};

/// Token ids of one evaluation set with their targets.
#[derive(Clone, Debug, Default)]
pub struct EvalSet {
    /// Unpadded ids (truncated to a flatten head's maxlen; the runtime pads).
    pub sequences: Vec<Vec<u16>>,
    /// Sentiment: the 0/1 label; generator: the next char's id.
    pub targets: Vec<u16>,
}

impl EvalSet {
    /// An order-free checksum of the set as the model reads it: each (target, ids)
    /// pair's CRC-32, mixed to 64 bits, summed. Training and `eval` may order a test
    /// set differently; the mixing keeps two changes (two labels swapped) from
    /// cancelling out, as CRC-32's linear differences could in a plain sum.
    pub fn fingerprint(&self) -> u64 {
        let pairs = self.sequences.iter().zip(&self.targets);
        pairs.fold(0u64, |sum, (ids, target)| {
            let mut bytes = Vec::with_capacity(2 * ids.len() + 2);
            bytes.extend_from_slice(&target.to_le_bytes());
            bytes.extend(ids.iter().flat_map(|id| id.to_le_bytes()));
            let crc = crate::checkpoint::CRC.checksum(&bytes);
            sum.wrapping_add(splitmix64(u64::from(crc) | (bytes.len() as u64) << 32))
        })
    }

    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }
}

/// Loss and accuracy of one blob on an evaluation set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlobMetrics {
    /// Mean binary (sentiment) or categorical (generator) cross-entropy.
    pub loss: f64,
    pub accuracy: f64,
}

/// The f32 and integer blobs on the same evaluation set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub data: String,
    pub samples: usize,
    pub float: BlobMetrics,
    pub quantized: BlobMetrics,
    /// Share of samples where both blobs make the same decision.
    pub decision_agreement: f64,
    pub max_abs_output_diff: f64,
    pub mean_abs_output_diff: f64,
    pub seconds: f64,
    /// |int - f32| of every output, for the histogram.
    #[serde(skip)]
    pub abs_diffs: Vec<f64>,
    /// The checksum of the card's own test set, when that set is what was scored.
    #[serde(skip)]
    pub cards_set_checksum: Option<u64>,
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "data        {} ({} samples)", self.data, self.samples)?;
        writeln!(
            f,
            "f32 blob    loss {:.4}  accuracy {:.4}",
            self.float.loss, self.float.accuracy
        )?;
        writeln!(
            f,
            "int blob    loss {:.4}  accuracy {:.4}",
            self.quantized.loss, self.quantized.accuracy
        )?;
        writeln!(
            f,
            "int vs f32  decisions agree {:.2}%, |diff| mean {:.2e} max {:.2e}",
            100.0 * self.decision_agreement,
            self.mean_abs_output_diff,
            self.max_abs_output_diff
        )?;
        write!(f, "time        {:.1} s", self.seconds)
    }
}

/// Unpadded ids of an encoded row: trailing PADs are dropped (PAD never occurs inside
/// a tokenized text), so the runtime pads exactly as the trainer did.
pub(super) fn unpadded(row: &[u16], pad: u16) -> Vec<u16> {
    let len = row.iter().rposition(|&id| id != pad).map_or(0, |i| i + 1);
    row[..len].to_vec()
}

pub(super) fn eval_set_from_encoded(encoded: &Encoded, pad: u16) -> EvalSet {
    EvalSet {
        sequences: (0..encoded.len())
            .filter_map(|i| encoded.row(i))
            .map(|row| unpadded(row, pad))
            .collect(),
        targets: encoded.labels.iter().map(|&l| l as u16).collect(),
    }
}

pub(super) fn eval_set_from_windows(
    windows: &CharWindows,
    range: std::ops::Range<usize>,
) -> EvalSet {
    let mut set = EvalSet::default();
    for index in range {
        if let Some((window, next)) = windows.get(index) {
            set.sequences.push(window.to_vec());
            set.targets.push(next);
        }
    }
    set
}

/// SplitMix64's finalizer: a bijection that spreads every input bit over the output.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The class `outputs` pick: a sigmoid's side of 0.5, else the largest (first on ties).
pub(super) fn decision(outputs: &[f64]) -> u16 {
    match outputs {
        [p] => u16::from(*p >= 0.5),
        _ => {
            outputs
                .iter()
                .enumerate()
                .fold((0usize, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0 as u16
        }
    }
}

/// Cross-entropy of one prediction: binary for one output, categorical otherwise. The
/// blobs give probabilities, which the integer path can round to 0: clipped as Keras
/// clips them.
fn sample_loss(outputs: &[f64], target: u16) -> f64 {
    const EPS: f64 = 1e-7;
    match outputs {
        [p] => {
            let p = p.clamp(EPS, 1.0 - EPS);
            if target == 1 {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        }
        _ => -outputs
            .get(usize::from(target))
            .copied()
            .unwrap_or(0.0)
            .max(EPS)
            .ln(),
    }
}

#[derive(Default)]
struct Tally {
    loss_f32: f64,
    loss_int: f64,
    correct_f32: usize,
    correct_int: usize,
    agree: usize,
    diffs: Vec<f64>,
}

fn tally_chunk(
    f32_blob: &[u8],
    int_blob: &[u8],
    sequences: &[Vec<u16>],
    targets: &[u16],
    bar: &ProgressBar,
) -> Result<Tally> {
    let f32_model = HostModel::new(f32_blob).context("loading the f32 blob")?;
    let int_model = HostModel::new(int_blob).context("loading the integer blob")?;
    let mut t = Tally::default();
    for (ids, &target) in sequences.iter().zip(targets) {
        let f = f32_model.outputs(ids)?;
        let i = int_model.outputs(ids)?;
        t.loss_f32 += sample_loss(&f, target);
        t.loss_int += sample_loss(&i, target);
        let (df, di) = (decision(&f), decision(&i));
        t.correct_f32 += usize::from(df == target);
        t.correct_int += usize::from(di == target);
        t.agree += usize::from(df == di);
        t.diffs.extend(f.iter().zip(&i).map(|(a, b)| (a - b).abs()));
        bar.inc(1);
    }
    Ok(t)
}

/// Runs both blobs over `set` (on all cores) and compares them with the targets.
pub fn evaluate_blobs(
    f32_blob: &[u8],
    int_blob: &[u8],
    set: &EvalSet,
    data_name: &str,
    progress: bool,
) -> Result<Evaluation> {
    ensure!(!set.is_empty(), "the evaluation set ({data_name}) is empty");
    let f32_model = HostModel::new(f32_blob).context("loading the f32 blob")?;
    let int_model = HostModel::new(int_blob).context("loading the integer blob")?;
    ensure!(
        !f32_model.is_integer() && int_model.is_integer(),
        "evaluation needs the f32 blob ({F32_BLOB_FILE}) and the integer blob ({INT_BLOB_FILE})"
    );
    let started = Instant::now();
    let bar = progress::bar(set.len(), "evaluating".into(), progress);
    let threads = crate::ort_env::available_cores();
    let chunk = set.len().div_ceil(threads);
    let tallies: Vec<Result<Tally>> = std::thread::scope(|scope| {
        let handles: Vec<_> = set
            .sequences
            .chunks(chunk)
            .zip(set.targets.chunks(chunk))
            .map(|(seqs, targets)| {
                let bar = bar.clone();
                scope.spawn(move || tally_chunk(f32_blob, int_blob, seqs, targets, &bar))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("an evaluation thread panicked"))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut total = Tally::default();
    for t in tallies {
        let t = t?;
        total.loss_f32 += t.loss_f32;
        total.loss_int += t.loss_int;
        total.correct_f32 += t.correct_f32;
        total.correct_int += t.correct_int;
        total.agree += t.agree;
        total.diffs.extend(t.diffs);
    }
    let n = set.len() as f64;
    let max_diff = total.diffs.iter().copied().fold(0.0, f64::max);
    let mean_diff = total.diffs.iter().sum::<f64>() / total.diffs.len().max(1) as f64;
    Ok(Evaluation {
        data: data_name.to_string(),
        samples: set.len(),
        float: BlobMetrics {
            loss: total.loss_f32 / n,
            accuracy: total.correct_f32 as f64 / n,
        },
        quantized: BlobMetrics {
            loss: total.loss_int / n,
            accuracy: total.correct_int as f64 / n,
        },
        decision_agreement: total.agree as f64 / n,
        max_abs_output_diff: max_diff,
        mean_abs_output_diff: mean_diff,
        seconds: started.elapsed().as_secs_f64(),
        abs_diffs: total.diffs,
        cards_set_checksum: None,
    })
}

/// Sequences of `texts` as a model's own tokenizer splits them (from its blob), cut to
/// `maxlen` on the head's side for a flatten head.
pub fn tokenize_with_blob(blob: &[u8], texts: &[&[u8]]) -> Result<Vec<Vec<u16>>> {
    let model = lstm_edge_runtime::Model::from_bytes(blob)?;
    let net = Network::<F32>::new(&model)?;
    let tokenizer = HostTokenizer::new(net.tokenizer());
    let head = net.head();
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let ids = text_ids(&tokenizer, text).map_err(|e| {
                let fix = match e {
                    lstm_edge_runtime::Error::UnknownChar(_) => {
                        ": remove it, or retrain on text that holds it"
                    }
                    _ => "",
                };
                match texts.len() {
                    1 => anyhow::anyhow!("{e}{fix}"),
                    _ => anyhow::anyhow!("text {index}: {e}{fix}"),
                }
            })?;
            Ok(head.kept(&ids).to_vec())
        })
        .collect()
}

/// The ids of a corpus' files as a model's own tokenizer (from its blob) gives them.
pub(super) fn corpus_ids(blob: &[u8], files: &[PathBuf]) -> Result<Vec<u16>> {
    let text = read_corpus(files)?;
    match tokenize_with_blob(blob, &[&text]) {
        Ok(mut ids) => Ok(ids.pop().unwrap_or_default()),
        Err(err) => Err(match unreadable_char_at(blob, files) {
            Some(place) => anyhow::anyhow!("{place}"),
            None => err.context(format!("the corpus ({})", describe_paths(files).join(", "))),
        }),
    }
}

/// Where the first char a generator cannot read stands in its corpus: the file, the
/// line, and the char, to find it by.
fn unreadable_char_at(blob: &[u8], files: &[PathBuf]) -> Option<String> {
    let model = lstm_edge_runtime::Model::from_bytes(blob).ok()?;
    let net = Network::<F32>::new(&model).ok()?;
    let tokenizer = net.tokenizer();
    for file in files {
        let text = read_corpus(std::slice::from_ref(file)).ok()?;
        // A line end never falls inside a char, so lines tokenize alone.
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            if let Err(lstm_edge_runtime::Error::UnknownChar(c)) =
                tokenizer.for_each_id(line, |_| Ok(()))
            {
                let shown = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
                return Some(format!(
                    "{}:{}: {shown:?} (U+{c:04X}) is not among the model's chars, and the \
                     model has no UNK: give text without it (the model reads only the chars \
                     it trained on)",
                    file.display(),
                    index + 1
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_set_checksum_ignores_order_and_sees_swapped_labels() {
        let set = |pairs: &[(&[u16], u16)]| EvalSet {
            sequences: pairs.iter().map(|(ids, _)| ids.to_vec()).collect(),
            targets: pairs.iter().map(|&(_, target)| target).collect(),
        };
        let (a, b, c): (&[u16], &[u16], &[u16]) = (&[3, 1, 4], &[1, 5], &[9, 2, 6, 5]);
        let base = set(&[(a, 1), (b, 0), (c, 1)]);
        // Pinned: cards record it, so a change would refuse their data.
        assert_eq!(
            base.fingerprint(),
            0xee56_6c64_0cc3_2d89,
            "{:#x}",
            base.fingerprint()
        );
        assert_eq!(
            set(&[(c, 1), (a, 1), (b, 0)]).fingerprint(),
            base.fingerprint()
        );
        for other in [
            set(&[(a, 0), (b, 1), (c, 1)]),
            set(&[(a, 1), (b, 0), (c, 0)]),
            set(&[(a, 1), (&[1, 6], 0), (c, 1)]),
            set(&[(a, 1), (b, 0)]),
        ] {
            assert_ne!(other.fingerprint(), base.fingerprint());
        }
    }

    #[test]
    fn trailing_pads_are_dropped_and_nothing_else() {
        assert_eq!(unpadded(&[3, 0, 4, 9, 9], 9), vec![3, 0, 4]);
        assert_eq!(unpadded(&[9, 9], 9), Vec::<u16>::new());
        assert_eq!(unpadded(&[1, 2], 9), vec![1, 2]);
    }

    #[test]
    fn losses_and_decisions_follow_the_output_kind() {
        assert_eq!(decision(&[0.7]), 1);
        assert_eq!(decision(&[0.2]), 0);
        assert_eq!(decision(&[0.1, 0.6, 0.3]), 1);
        assert!((sample_loss(&[0.8], 1) + 0.8f64.ln()).abs() < 1e-12);
        assert!((sample_loss(&[0.8], 0) + 0.2f64.ln()).abs() < 1e-12);
        assert!((sample_loss(&[0.25, 0.75], 0) + 0.25f64.ln()).abs() < 1e-12);
        // A zero probability is clamped, not infinite.
        assert!(sample_loss(&[0.0, 1.0], 0).is_finite());
    }
}
