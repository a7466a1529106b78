//! Skip-gram word2vec with negative sampling (Mikolov et al., 2013), trained on the
//! training reviews' own text. The notebook initialised W's embedding from word2vec
//! vectors; these stand in for them when the user has no vectors file.
//!
//! One thread and a seeded ChaCha8 stream, so a seed gives the same vectors everywhere.

use anyhow::{ensure, Context, Result};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Training settings; the defaults are the reference implementation's skip-gram ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Word2VecConfig {
    pub dim: usize,
    /// Largest distance between a word and a context word; each position draws its own
    /// window in `1..=window`, which weights near words more.
    pub window: usize,
    /// Noise words per (word, context) pair, drawn from the unigram counts to the 3/4.
    pub negatives: usize,
    /// Passes over the text.
    pub epochs: usize,
    /// Starting learning rate, decayed linearly to 1e-4 of itself.
    pub learning_rate: f32,
    /// Frequent-word subsampling threshold (0 keeps every occurrence).
    pub subsample: f64,
    pub seed: u64,
}

impl Default for Word2VecConfig {
    fn default() -> Self {
        Self {
            dim: 300,
            window: 5,
            negatives: 5,
            epochs: 5,
            learning_rate: 0.025,
            subsample: 1e-3,
            seed: 42,
        }
    }
}

/// What training saw, for the progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct Word2VecReport {
    /// Known words in the sentences (before subsampling).
    pub tokens: u64,
    /// Rows that got a trained vector (words that occur at least once).
    pub trained_rows: usize,
}

/// Trains vectors for ids `first_word..rows` on `sentences` (sequences of ids; ids
/// below `first_word`, such as PAD and UNK, are dropped and windows close over them).
/// Returns the `[rows, dim]` input vectors; rows below `first_word` are zeros except that
/// the last of them (UNK) holds the mean of the trained vectors.
///
/// `bar` counts the sentences of all passes.
pub fn train_word2vec(
    sentences: &[Vec<u16>],
    rows: usize,
    first_word: u16,
    cfg: &Word2VecConfig,
    bar: &ProgressBar,
) -> Result<(Vec<f32>, Word2VecReport)> {
    ensure!(
        cfg.dim > 0 && cfg.window > 0 && cfg.epochs > 0,
        "word2vec needs a positive dimension, window and epoch count"
    );
    let sentences: Vec<Vec<u16>> = sentences
        .iter()
        .map(|s| s.iter().copied().filter(|&id| id >= first_word).collect())
        .collect();
    let counts = word_counts(&sentences, rows)?;
    let tokens: u64 = counts.iter().sum();
    ensure!(
        tokens > 1,
        "word2vec needs text: the sentences hold {tokens} known words"
    );

    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut model = SkipGram::new(rows, usize::from(first_word), &counts, cfg, &mut rng);
    let keep = keep_probabilities(&counts, tokens, cfg.subsample);
    let total = tokens * cfg.epochs as u64;
    let mut seen = 0u64;
    let mut kept = Vec::new();
    bar.set_length((sentences.len() * cfg.epochs) as u64);
    for _ in 0..cfg.epochs {
        for sentence in &sentences {
            seen += sentence.len() as u64;
            let progress = seen as f32 / total as f32;
            let rate = cfg.learning_rate * (1.0 - progress).max(1e-4);
            kept.clear();
            kept.extend(
                sentence
                    .iter()
                    .copied()
                    .filter(|&id| rng.random::<f64>() < keep[usize::from(id)]),
            );
            model.train_sentence(&kept, cfg.window, rate, &mut rng);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut input = model.input;
    let trained_rows = unk_as_mean(&mut input, &counts, usize::from(first_word), cfg.dim);
    Ok((
        input,
        Word2VecReport {
            tokens,
            trained_rows,
        },
    ))
}

/// Occurrences of each id, or an error for an id outside the table.
fn word_counts(sentences: &[Vec<u16>], rows: usize) -> Result<Vec<u64>> {
    let mut counts = vec![0u64; rows];
    for &id in sentences.iter().flatten() {
        let count = counts
            .get_mut(usize::from(id))
            .with_context(|| format!("word id {id} is outside the {rows}-row embedding"))?;
        *count += 1;
    }
    Ok(counts)
}

/// Sets the row before `first` (UNK) to the mean of the trained rows (ids from
/// `first` on that occur); returns how many there are.
fn unk_as_mean(input: &mut [f32], counts: &[u64], first: usize, dim: usize) -> usize {
    let trained: Vec<usize> = (first..counts.len()).filter(|&r| counts[r] > 0).collect();
    if first > 0 && !trained.is_empty() {
        let unk = (first - 1) * dim;
        for &row in &trained {
            for d in 0..dim {
                input[unk + d] += input[row * dim + d] / trained.len() as f32;
            }
        }
    }
    trained.len()
}

/// Skip-gram with negative sampling: input (word) and output (context) vectors.
struct SkipGram {
    input: Vec<f32>,
    output: Vec<f32>,
    noise: NoiseTable,
    negatives: usize,
    /// The context row's accumulated update, applied after all targets (one vector's width).
    grad: Vec<f32>,
}

impl SkipGram {
    /// Input vectors uniform in `±0.5/dim` (zeros below `first`), output vectors
    /// zero, as the reference implementation starts.
    fn new(
        rows: usize,
        first: usize,
        counts: &[u64],
        cfg: &Word2VecConfig,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let dim = cfg.dim;
        let input = (0..rows * dim)
            .map(|i| {
                if i / dim < first {
                    0.0
                } else {
                    (rng.random::<f32>() - 0.5) / dim as f32
                }
            })
            .collect();
        SkipGram {
            input,
            output: vec![0.0f32; rows * dim],
            noise: NoiseTable::new(counts),
            negatives: cfg.negatives,
            grad: vec![0.0f32; dim],
        }
    }

    /// Trains every (context, center) pair of `words`, each position with its own
    /// window drawn from `1..=window`.
    fn train_sentence(&mut self, words: &[u16], window: usize, rate: f32, rng: &mut ChaCha8Rng) {
        for (pos, &center) in words.iter().enumerate() {
            let reach = rng.random_range(1..=window);
            let lo = pos.saturating_sub(reach);
            let hi = (pos + reach).min(words.len() - 1);
            for (ctx_pos, &context) in words.iter().enumerate().take(hi + 1).skip(lo) {
                if ctx_pos != pos {
                    self.train_pair(context, center, rate, rng);
                }
            }
        }
    }

    /// One step on the pair: pulls `center`'s output vector and `context`'s input
    /// vector together, and pushes `negatives` noise words' output vectors away.
    fn train_pair(&mut self, context: u16, center: u16, rate: f32, rng: &mut ChaCha8Rng) {
        let dim = self.grad.len();
        let ctx = usize::from(context) * dim;
        self.grad.fill(0.0);
        for k in 0..=self.negatives {
            let (target, label) = if k == 0 {
                (center, 1.0)
            } else {
                let sampled = self.noise.sample(rng);
                if sampled == center {
                    continue;
                }
                (sampled, 0.0)
            };
            let out = usize::from(target) * dim;
            let (in_row, out_row) = (
                &self.input[ctx..ctx + dim],
                &mut self.output[out..out + dim],
            );
            let score = dot(in_row, out_row);
            let step = (label - sigmoid(score)) * rate;
            for ((g, o), i) in self.grad.iter_mut().zip(out_row.iter_mut()).zip(in_row) {
                *g += step * *o;
                *o += step * i;
            }
        }
        for (i, g) in self.input[ctx..ctx + dim].iter_mut().zip(&self.grad) {
            *i += g;
        }
    }
}

/// Eight partial sums, so the compiler keeps them in one vector register.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn sigmoid(x: f32) -> f32 {
    // Clamped as the reference implementation's table is: beyond ±6 the step is ~0 or ~1.
    1.0 / (1.0 + (-x.clamp(-6.0, 6.0)).exp())
}

/// Probability of keeping each occurrence of a word with relative frequency f:
/// `(sqrt(f / t) + 1) * t / f`, capped at 1.
fn keep_probabilities(counts: &[u64], tokens: u64, threshold: f64) -> Vec<f64> {
    counts
        .iter()
        .map(|&count| {
            if threshold <= 0.0 || count == 0 {
                return 1.0;
            }
            let ratio = count as f64 / (threshold * tokens as f64);
            ((ratio.sqrt() + 1.0) / ratio).min(1.0)
        })
        .collect()
}

/// Cumulative unigram^0.75 weights, sampled by binary search.
struct NoiseTable {
    cumulative: Vec<f64>,
}

impl NoiseTable {
    fn new(counts: &[u64]) -> Self {
        let mut sum = 0.0;
        let cumulative = counts
            .iter()
            .map(|&c| {
                sum += (c as f64).powf(0.75);
                sum
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> u16 {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let draw = rng.random::<f64>() * total;
        let index = self.cumulative.partition_point(|&c| c <= draw);
        // Ids fit u16: rows come from a vocabulary of at most u16::MAX entries.
        index.min(self.cumulative.len() - 1) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(v: &[f32], dim: usize, a: usize, b: usize) -> f32 {
        let (x, y) = (&v[a * dim..(a + 1) * dim], &v[b * dim..(b + 1) * dim]);
        let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        let norm = |z: &[f32]| z.iter().map(|p| p * p).sum::<f32>().sqrt();
        dot / (norm(x) * norm(y))
    }

    /// Two topics: words 2..6 only ever appear among themselves, 6..10 likewise.
    fn two_topic_text(seed: u64) -> Vec<Vec<u16>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..400)
            .map(|i| {
                let base = if i % 2 == 0 { 2 } else { 6 };
                (0..12).map(|_| base + rng.random_range(0..4u16)).collect()
            })
            .collect()
    }

    fn hidden() -> ProgressBar {
        ProgressBar::hidden()
    }

    fn small() -> Word2VecConfig {
        Word2VecConfig {
            dim: 16,
            window: 3,
            epochs: 5,
            subsample: 0.0,
            seed: 7,
            ..Word2VecConfig::default()
        }
    }

    #[test]
    fn words_sharing_contexts_end_up_closer_than_words_that_never_meet() {
        let (v, report) = train_word2vec(&two_topic_text(1), 10, 2, &small(), &hidden()).unwrap();
        assert_eq!(report.trained_rows, 8);
        let same = cosine(&v, 16, 2, 3);
        let apart = cosine(&v, 16, 2, 7);
        assert!(
            same > apart + 0.5,
            "same topic {same:.3}, other topic {apart:.3}"
        );
    }

    #[test]
    fn pad_is_zero_unk_is_the_mean_and_a_seed_repeats_exactly() {
        let text = two_topic_text(2);
        let (a, _) = train_word2vec(&text, 10, 2, &small(), &hidden()).unwrap();
        let (b, _) = train_word2vec(&text, 10, 2, &small(), &hidden()).unwrap();
        assert_eq!(a, b);
        assert!(a[..16].iter().all(|&x| x == 0.0));
        let mean0: f32 = (2..10).map(|r| a[r * 16]).sum::<f32>() / 8.0;
        assert!((a[16] - mean0).abs() < 1e-5);
        let other = Word2VecConfig { seed: 8, ..small() };
        assert_ne!(
            a,
            train_word2vec(&text, 10, 2, &other, &hidden()).unwrap().0
        );
    }

    #[test]
    fn ids_below_first_word_are_skipped_and_empty_text_is_an_error() {
        let only_specials = vec![vec![0u16, 1, 1, 0]];
        let err = train_word2vec(&only_specials, 4, 2, &small(), &hidden()).unwrap_err();
        assert!(err.to_string().contains("needs text"), "{err}");
        let out_of_range = vec![vec![2u16, 9]];
        let err = train_word2vec(&out_of_range, 4, 2, &small(), &hidden()).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }
}
