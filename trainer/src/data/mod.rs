//! Datasets: labelled reviews (W, C), raw text corpora (G), their encoding into padded id
//! sequences, and pretrained word vectors.
//!
//! Text stays bytes throughout and is split by the runtime's tokenizers
//! ([`lstm_edge_runtime::tokenize`]), so the host and the device see the same ids.
//! Everything random here is seeded and gives the same result on every platform.

pub mod corpus;
pub mod encode;
pub mod npy;
pub mod reviews;
pub mod vectors;
pub mod word2vec;
pub mod word_index;

#[cfg(test)]
mod bundled;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use corpus::{read_corpus, CharSet, CharWindows};
pub use encode::{
    build_word_vocab, encode_chars, encode_words, text_ids, Encoded, LengthStats, Truncate,
    WordVocab,
};
pub use reviews::{load_reviews, Review};
pub use vectors::{load_vectors, Embedding, MissingRows, VectorFormat};
pub use word2vec::{train_word2vec, Word2VecConfig, Word2VecReport};
pub use word_index::{HostTokenizer, WordIndex};

/// Shuffles `items` in place: the same seed gives the same order on every platform
/// (ChaCha8 with rand's portable index sampling).
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    items.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
}

/// Training and test reviews, ready to encode.
#[derive(Debug, Clone, Default)]
pub struct ReviewSplit {
    pub train: Vec<Review>,
    pub test: Vec<Review>,
}

/// How to turn loaded reviews into a [`ReviewSplit`].
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Seed of the shuffle.
    pub seed: u64,
    /// Keep only the first `limit` reviews of the shuffled pool (the notebook's 16,000).
    pub limit: Option<usize>,
    /// Share of the pool held out for testing when no explicit test set is given.
    pub test_fraction: f64,
    /// Keep only the first `test_limit` reviews of an explicit (shuffled) test set.
    pub test_limit: Option<usize>,
}

impl Default for SplitOptions {
    /// The notebook's: 16,000 reviews, 80/20.
    fn default() -> Self {
        Self {
            seed: 0,
            limit: Some(16_000),
            test_fraction: 0.2,
            test_limit: None,
        }
    }
}

/// Shuffles `pool` with the seed and keeps its first `limit` reviews. With an explicit
/// `test` set, the pool is all training data and the test set is shuffled with a seed of
/// its own and cut to `test_limit`; without one, the last `test_fraction` of the pool
/// (rounded to the nearest review) is the test set.
pub fn split_reviews(
    mut pool: Vec<Review>,
    test: Option<Vec<Review>>,
    options: &SplitOptions,
) -> anyhow::Result<ReviewSplit> {
    shuffle(&mut pool, options.seed);
    if let Some(limit) = options.limit {
        pool.truncate(limit);
    }
    match test {
        Some(mut test) => {
            // A different stream from the pool's, so the two orders are unrelated.
            shuffle(&mut test, options.seed ^ 0x5445_5354);
            if let Some(limit) = options.test_limit {
                test.truncate(limit);
            }
            Ok(ReviewSplit { train: pool, test })
        }
        None => {
            let fraction = options.test_fraction;
            anyhow::ensure!(
                (0.0..1.0).contains(&fraction),
                "test fraction {fraction} must be at least 0 and below 1"
            );
            let test_len = (pool.len() as f64 * fraction).round() as usize;
            let test = pool.split_off(pool.len() - test_len);
            Ok(ReviewSplit { train: pool, test })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviews(n: usize) -> Vec<Review> {
        (0..n)
            .map(|i| Review {
                text: format!("review {i}").into_bytes(),
                label: (i % 2) as u8,
            })
            .collect()
    }

    #[test]
    fn shuffle_is_seeded_and_a_permutation() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        let mut c = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        shuffle(&mut c, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_order_is_pinned() {
        // The order for seed 42 must never change: datasets and results depend on it.
        let mut items: Vec<u32> = (0..10).collect();
        shuffle(&mut items, 42);
        assert_eq!(items, vec![7, 1, 5, 4, 6, 9, 3, 8, 2, 0]);
    }

    #[test]
    fn split_takes_limit_then_holds_out_the_fraction() {
        let options = SplitOptions {
            seed: 3,
            limit: Some(50),
            test_fraction: 0.2,
            test_limit: None,
        };
        let split = split_reviews(reviews(200), None, &options).unwrap();
        assert_eq!(split.train.len(), 40);
        assert_eq!(split.test.len(), 10);
        let mut shuffled = reviews(200);
        shuffle(&mut shuffled, 3);
        assert_eq!(split.train[..], shuffled[..40]);
        assert_eq!(split.test[..], shuffled[40..50]);
    }

    #[test]
    fn explicit_test_set_is_shuffled_and_limited_separately() {
        let options = SplitOptions {
            seed: 1,
            limit: None,
            test_fraction: 0.2,
            test_limit: Some(5),
        };
        let split = split_reviews(reviews(30), Some(reviews(20)), &options).unwrap();
        assert_eq!(split.train.len(), 30);
        assert_eq!(split.test.len(), 5);
        assert_ne!(split.test[..], reviews(20)[..5]);
    }

    #[test]
    fn bad_fraction_is_an_error() {
        let options = SplitOptions {
            test_fraction: 1.5,
            ..SplitOptions::default()
        };
        let err = split_reviews(reviews(3), None, &options).unwrap_err();
        assert!(err.to_string().contains("test fraction 1.5"), "{err}");
    }
}
