//! Reviews -> fixed-length id sequences, with the notebook's padding semantics: post-pad
//! with the PAD id, post-truncate (keep the first `maxlen` tokens). Word ids come from
//! [`Vocab::lookup`] and char ids from [`CharTable`], the runtime's own tokenizers.

use std::collections::HashMap;
use std::fmt;

use anyhow::{ensure, Context, Result};
use lstm_edge_runtime::tokenize::{encode_vocab, for_each_word, vocabulary_form, CharTable, Vocab};
use serde::{Deserialize, Serialize};

use super::{HostTokenizer, Review, WordIndex};

/// How sequence lengths compare with `maxlen`, as the notebook's `test_len`/`avg_len` report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LengthStats {
    pub maxlen: usize,
    pub sequences: usize,
    /// Shorter than maxlen: PAD was appended.
    pub padded: usize,
    /// Exactly maxlen tokens.
    pub exact: usize,
    /// Longer than maxlen: the tail was cut.
    pub truncated: usize,
    /// Tokens before padding and truncation, over all sequences.
    pub tokens: u64,
}

impl LengthStats {
    /// Empty statistics for sequences cut to `maxlen`.
    pub fn new(maxlen: usize) -> Self {
        Self {
            maxlen,
            ..Self::default()
        }
    }

    /// Counts one sequence of `len` tokens (before padding).
    pub fn add(&mut self, len: usize) {
        self.sequences += 1;
        self.tokens += len as u64;
        match len.cmp(&self.maxlen) {
            std::cmp::Ordering::Less => self.padded += 1,
            std::cmp::Ordering::Equal => self.exact += 1,
            std::cmp::Ordering::Greater => self.truncated += 1,
        }
    }

    /// Average tokens per sequence before padding (0 with no sequences).
    pub fn average_len(&self) -> f64 {
        if self.sequences == 0 {
            0.0
        } else {
            self.tokens as f64 / self.sequences as f64
        }
    }
}

impl fmt::Display for LengthStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sequences at maxlen {}: {} padded, {} exactly maxlen, {} truncated; \
             average length {:.1} tokens",
            self.sequences,
            self.maxlen,
            self.padded,
            self.exact,
            self.truncated,
            self.average_len()
        )
    }
}

/// Reviews encoded as a row-major `[rows, maxlen]` id matrix with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u16>,
    pub labels: Vec<u8>,
    pub maxlen: usize,
    pub stats: LengthStats,
}

impl Encoded {
    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True with no sequences.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Sequence `index`, `maxlen` ids long.
    pub fn row(&self, index: usize) -> Option<&[u16]> {
        self.ids.get(index * self.maxlen..(index + 1) * self.maxlen)
    }

    /// The sequences at `indices` as one batch: ids `[indices.len(), maxlen]` row-major,
    /// and their labels. An index out of range is an error.
    pub fn gather(&self, indices: &[usize]) -> Result<(Vec<u16>, Vec<u8>)> {
        let mut ids = Vec::with_capacity(indices.len() * self.maxlen);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            let row = self.row(index).with_context(|| {
                format!(
                    "sequence {index} is out of range ({} sequences)",
                    self.len()
                )
            })?;
            ids.extend_from_slice(row);
            labels.push(self.labels[index]);
        }
        Ok((ids, labels))
    }
}

/// Which tokens of a sequence longer than `maxlen` are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Truncate {
    /// The first `maxlen` (the notebook's post-truncation).
    #[default]
    Post,
    /// The last `maxlen` (Keras' default, `truncating='pre'`): a review's ending stays.
    Pre,
}

/// Truncates `tokens` to `maxlen` on the `truncate` side and post-pads it with `pad`
/// up to `maxlen`.
pub fn pad_truncate(tokens: &mut Vec<u16>, maxlen: usize, pad: u16, truncate: Truncate) {
    truncate_to(tokens, maxlen, truncate);
    tokens.resize(maxlen, pad);
}

/// Truncates `tokens` to `maxlen` on the `truncate` side.
pub fn truncate_to(tokens: &mut Vec<u16>, maxlen: usize, truncate: Truncate) {
    match truncate {
        Truncate::Pre if tokens.len() > maxlen => {
            tokens.drain(..tokens.len() - maxlen);
        }
        _ => tokens.truncate(maxlen),
    }
}

/// A whole text's ids, as the runtime's tokenizer gives them.
pub fn text_ids(
    tokenizer: &HostTokenizer<'_>,
    text: &[u8],
) -> std::result::Result<Vec<u16>, lstm_edge_runtime::Error> {
    let mut ids = Vec::new();
    tokenizer.for_each_id(text, |id| {
        ids.push(id);
        Ok(())
    })?;
    Ok(ids)
}

fn encode_with(
    reviews: &[Review],
    maxlen: usize,
    truncate: Truncate,
    pad: u16,
    mut tokenize: impl FnMut(&[u8], &mut Vec<u16>) -> Result<()>,
) -> Result<Encoded> {
    ensure!(maxlen > 0, "maxlen must be positive");
    let mut ids = Vec::with_capacity(reviews.len() * maxlen);
    let mut labels = Vec::with_capacity(reviews.len());
    let mut stats = LengthStats::new(maxlen);
    let mut row = Vec::new();
    for (index, review) in reviews.iter().enumerate() {
        row.clear();
        tokenize(&review.text, &mut row).with_context(|| format!("review {index}"))?;
        stats.add(row.len());
        pad_truncate(&mut row, maxlen, pad, truncate);
        ids.extend_from_slice(&row);
        labels.push(review.label);
    }
    Ok(Encoded {
        ids,
        labels,
        maxlen,
        stats,
    })
}

/// Word ids (Treebank split, lowercased lookup; unknown words are UNK), padded with
/// [`Vocab::PAD`].
pub fn encode_words(
    reviews: &[Review],
    vocab: &Vocab<'_>,
    maxlen: usize,
    truncate: Truncate,
) -> Result<Encoded> {
    let index = WordIndex::new(*vocab);
    encode_with(reviews, maxlen, truncate, Vocab::PAD, |text, row| {
        Ok(index.for_each_id(text, |id| {
            row.push(id);
            Ok(())
        })?)
    })
}

/// Char ids, padded with the table's PAD id (the table must have one).
pub fn encode_chars(
    reviews: &[Review],
    table: &CharTable<'_>,
    maxlen: usize,
    truncate: Truncate,
) -> Result<Encoded> {
    let pad = table
        .pad_id()
        .context("the char table has no PAD entry, which padding needs")?;
    encode_with(reviews, maxlen, truncate, pad, |text, row| {
        Ok(table.for_each_id(text, |id| {
            row.push(id);
            Ok(())
        })?)
    })
}

/// A word vocabulary built from training text, owning the bytes a [`Vocab`] borrows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordVocab {
    strings: Vec<u8>,
    offsets: Vec<u8>,
    /// Distinct lowercased words in the text it was built from.
    pub distinct_words: usize,
    /// Tokens in that text, and how many of them are in the vocabulary.
    pub tokens: u64,
    pub covered_tokens: u64,
}

impl WordVocab {
    /// The vocabulary's words concatenated (as stored in a model blob).
    pub fn strings(&self) -> &[u8] {
        &self.strings
    }

    /// The little-endian u32 offsets into [`WordVocab::strings`].
    pub fn offsets(&self) -> &[u8] {
        &self.offsets
    }

    /// The runtime's view, which tokenizes and looks words up.
    pub fn vocab(&self) -> Result<Vocab<'_>> {
        Vocab::new(&self.strings, &self.offsets).context("invalid word vocabulary")
    }

    /// Share of the source tokens that the vocabulary covers.
    pub fn coverage(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.covered_tokens as f64 / self.tokens as f64
        }
    }
}

/// Builds a vocabulary of the `max_words` most frequent lowercased Treebank tokens of
/// `texts` (ties broken bytewise, so the result is deterministic), stored sorted.
pub fn build_word_vocab<'a>(
    texts: impl IntoIterator<Item = &'a [u8]>,
    max_words: usize,
) -> Result<WordVocab> {
    ensure!(
        max_words <= Vocab::MAX_WORDS,
        "a vocabulary holds at most {} words, {max_words} asked",
        Vocab::MAX_WORDS
    );
    let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut tokens = 0u64;
    for text in texts {
        for_each_word(text, |word| {
            // Latin-1 and UTF-8 spellings of a word count as one.
            *counts.entry(vocabulary_form(word)).or_insert(0) += 1;
            tokens += 1;
            Ok(())
        })?;
    }
    let distinct_words = counts.len();
    let mut ranked: Vec<(Vec<u8>, u64)> = counts.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(max_words);
    let covered_tokens = ranked.iter().map(|(_, count)| count).sum();
    let (strings, offsets) = encode_vocab(ranked.into_iter().map(|(word, _)| word));
    let built = WordVocab {
        strings,
        offsets,
        distinct_words,
        tokens,
        covered_tokens,
    };
    built.vocab()?;
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lstm_edge_runtime::tokenize::NOTEBOOK_CHARS;

    fn review(text: &str, label: u8) -> Review {
        Review {
            text: text.as_bytes().to_vec(),
            label,
        }
    }

    #[test]
    fn stats_count_padded_exact_and_truncated() {
        let mut stats = LengthStats::new(3);
        for len in [1, 3, 5, 2, 7] {
            stats.add(len);
        }
        assert_eq!(
            (stats.sequences, stats.padded, stats.exact, stats.truncated),
            (5, 2, 1, 2)
        );
        assert!((stats.average_len() - 3.6).abs() < 1e-12);
        assert_eq!(
            stats.to_string(),
            "5 sequences at maxlen 3: 2 padded, 1 exactly maxlen, 2 truncated; average length 3.6 tokens"
        );
        assert_eq!(LengthStats::new(3).average_len(), 0.0);
    }

    #[test]
    fn pad_is_appended_and_the_chosen_end_is_cut() {
        for truncate in [Truncate::Post, Truncate::Pre] {
            let mut short = vec![5, 6];
            pad_truncate(&mut short, 4, 0, truncate);
            assert_eq!(short, vec![5, 6, 0, 0]);
        }
        let mut long = vec![1, 2, 3, 4, 5];
        pad_truncate(&mut long, 3, 0, Truncate::Post);
        assert_eq!(long, vec![1, 2, 3]);
        let mut long = vec![1, 2, 3, 4, 5];
        pad_truncate(&mut long, 3, 0, Truncate::Pre);
        assert_eq!(long, vec![3, 4, 5]);
    }

    #[test]
    fn vocab_keeps_the_most_frequent_words_with_bytewise_ties() {
        let texts = ["The film. the FILM, the end", "An end; a film"];
        let built = build_word_vocab(texts.iter().map(|t| t.as_bytes()), 4).unwrap();
        // Counts: film 3, the 3, end 2, "." 1, "," 1, an 1, ";" 1, a 1.
        let vocab = built.vocab().unwrap();
        let words: Vec<&[u8]> = (2..2 + vocab.len() as u16)
            .map(|id| vocab.word(id).unwrap())
            .collect();
        assert_eq!(words, vec![&b","[..], b"end", b"film", b"the"]);
        assert_eq!(built.distinct_words, 8);
        assert_eq!(built.tokens, 13);
        assert_eq!(built.covered_tokens, 9);
        assert!((built.coverage() - 9.0 / 13.0).abs() < 1e-12);
        assert!(build_word_vocab([], Vocab::MAX_WORDS + 1).is_err());
    }

    #[test]
    fn latin1_and_utf8_reviews_count_a_word_once() {
        let texts: [&[u8]; 2] = [b"caf\xe9 tr\xe8s", "Café".as_bytes()];
        let built = build_word_vocab(texts, 1).unwrap();
        assert_eq!((built.distinct_words, built.tokens), (2, 3));
        let vocab = built.vocab().unwrap();
        assert_eq!(vocab.word(2), Some("café".as_bytes()));
    }

    #[test]
    fn words_encode_with_lookup_ids_and_pad() {
        let built = build_word_vocab([&b"good bad movie"[..]], 10).unwrap();
        let vocab = built.vocab().unwrap();
        let reviews = [review("Good movie!", 1), review("bad bad bad bad movie", 0)];
        let encoded = encode_words(&reviews, &vocab, 4, Truncate::Post).unwrap();
        let id = |w: &[u8]| vocab.lookup(w);
        assert_eq!(encoded.len(), 2);
        assert_eq!(
            encoded.row(0).unwrap(),
            &[id(b"good"), id(b"movie"), Vocab::UNK, Vocab::PAD]
        );
        assert_eq!(encoded.row(1).unwrap(), &[id(b"bad"); 4]);
        assert_eq!(encoded.row(2), None);
        let (batch, labels) = encoded.gather(&[1, 0]).unwrap();
        assert_eq!(batch[..4], *encoded.row(1).unwrap());
        assert_eq!(batch[4..], *encoded.row(0).unwrap());
        assert_eq!(labels, vec![0, 1]);
        assert!(encoded.gather(&[2]).is_err());
        assert_eq!(encoded.labels, vec![1, 0]);
        assert_eq!(
            (
                encoded.stats.padded,
                encoded.stats.truncated,
                encoded.stats.tokens
            ),
            (1, 1, 8)
        );
    }

    #[test]
    fn chars_encode_with_the_tables_pad_and_unk() {
        let table = CharTable::new(NOTEBOOK_CHARS, true, true, true).unwrap();
        let reviews = [review("Ab0", 1), review("", 0)];
        let encoded = encode_chars(&reviews, &table, 5, Truncate::Post).unwrap();
        assert_eq!(encoded.row(0).unwrap(), &[0, 1, 44, 45, 45]);
        assert_eq!(encoded.row(1).unwrap(), &[45; 5]);
        assert_eq!(encoded.stats.exact, 0);
        let no_pad = CharTable::new(NOTEBOOK_CHARS, true, true, false).unwrap();
        let err = encode_chars(&reviews, &no_pad, 5, Truncate::Post).unwrap_err();
        assert!(err.to_string().contains("no PAD"), "{err}");
    }

    #[test]
    fn unknown_char_without_unk_names_the_review() {
        let table = CharTable::new(b"ab", true, false, true).unwrap();
        let reviews = [review("ab", 1), review("abc", 0)];
        let err = encode_chars(&reviews, &table, 3, Truncate::Post).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("review 1"), "{message}");
        assert!(message.contains("U+0063"), "{message}");
        assert!(encode_chars(&reviews, &table, 0, Truncate::Post).is_err());
    }
}
