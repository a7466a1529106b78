//! A model's tokenizer on the host, with word ids found by hash: the ids of
//! [`Vocab::lookup`], in one probe instead of a binary search's dozen or so
//! (the search took a fifth of `w`'s scoring time). The runtime keeps the
//! search, which needs no memory beyond the blob.

use std::collections::HashMap;

use lstm_edge_runtime::tokenize::{for_each_word, CharTable, Vocab};
use lstm_edge_runtime::{Error, Tokenizer};

/// Words up to this long are lowercased on the stack and hashed; longer ones,
/// rare in text, take the vocabulary's own search.
const HASHED_LEN: usize = 32;

/// A word vocabulary's ids by stored word.
#[derive(Debug, Clone)]
pub struct WordIndex<'v> {
    vocab: Vocab<'v>,
    ids: HashMap<&'v [u8], u16>,
}

impl<'v> WordIndex<'v> {
    /// Indexes every word of `vocab`.
    pub fn new(vocab: Vocab<'v>) -> Self {
        let ids = (0..vocab.len())
            .filter_map(|index| {
                let id = u16::try_from(index + 2).ok()?;
                Some((vocab.word(id)?, id))
            })
            .collect();
        WordIndex { vocab, ids }
    }

    /// [`Vocab::lookup`]: the stored word equal to `word` ASCII-lowercased, else
    /// (for a word beyond ASCII) the vocabulary's char-by-char search, else UNK.
    pub fn lookup(&self, word: &[u8]) -> u16 {
        let mut lowered = [0u8; HASHED_LEN];
        let Some(key) = lowered.get_mut(..word.len()) else {
            return self.vocab.lookup(word);
        };
        for (to, &from) in key.iter_mut().zip(word) {
            *to = from.to_ascii_lowercase();
        }
        match self.ids.get(&*key) {
            Some(&id) => id,
            None if word.is_ascii() => Vocab::UNK,
            None => self.vocab.lookup(word),
        }
    }

    /// [`Vocab::for_each_id`]: splits a whole `text` and calls `f` with each
    /// word's id.
    pub fn for_each_id(
        &self,
        text: &[u8],
        mut f: impl FnMut(u16) -> Result<(), Error>,
    ) -> Result<(), Error> {
        for_each_word(text, |word| f(self.lookup(word)))
    }
}

/// A model's tokenizer as the host runs it: chars through the runtime's table,
/// words through a [`WordIndex`]. The ids are the runtime tokenizer's.
// Built once per run; the char table's id map is the large variant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum HostTokenizer<'a> {
    /// One-hot chars through a char table.
    Chars(CharTable<'a>),
    /// Treebank-style words through an indexed vocabulary.
    Words(WordIndex<'a>),
}

impl<'a> HostTokenizer<'a> {
    /// The host form of `tokenizer`.
    pub fn new(tokenizer: &Tokenizer<'a>) -> Self {
        match tokenizer {
            Tokenizer::Chars(table) => HostTokenizer::Chars(table.clone()),
            Tokenizer::Words(vocab) => HostTokenizer::Words(WordIndex::new(*vocab)),
        }
    }

    /// [`Tokenizer::for_each_id`]: splits a whole `text` and calls `f` with each
    /// token id.
    pub fn for_each_id(
        &self,
        text: &[u8],
        f: impl FnMut(u16) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match self {
            HostTokenizer::Chars(table) => table.for_each_id(text, f),
            HostTokenizer::Words(index) => index.for_each_id(text, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::text_ids;
    use lstm_edge_runtime::tokenize::encode_vocab;

    fn ids_of(tokenizer: &Tokenizer<'_>, text: &[u8]) -> Vec<u16> {
        let mut ids = Vec::new();
        tokenizer
            .for_each_id(text, |id| {
                ids.push(id);
                Ok(())
            })
            .unwrap();
        ids
    }

    #[test]
    fn the_index_finds_the_vocabularys_ids() {
        let long = "a".repeat(HASHED_LEN + 5);
        let words = [
            "the", "movie", "n't", "``", "''", ".", "café", "naïve", &long, "zz",
        ];
        let (strings, offsets) = encode_vocab(words.iter().map(|w| w.as_bytes().to_vec()));
        let vocab = Vocab::new(&strings, &offsets).unwrap();
        let index = WordIndex::new(vocab);
        let long_upper = long.to_uppercase();
        let probes: [&[u8]; 14] = [
            b"the",
            b"THE",
            b"Movie",
            b"n't",
            b"absent",
            b"",
            "café".as_bytes(),
            "CAFÉ".as_bytes(),
            b"caf\xe9",   // Latin-1 spelling of a UTF-8 entry
            b"na\xefve",  // the same
            b"na\xefvex", // beyond ASCII and absent
            long.as_bytes(),
            long_upper.as_bytes(),
            &long.as_bytes()[1..],
        ];
        for word in probes {
            assert_eq!(
                index.lookup(word),
                vocab.lookup(word),
                "{}",
                String::from_utf8_lossy(word)
            );
        }
        for id in 2..vocab.len() as u16 + 2 {
            assert_eq!(index.lookup(vocab.word(id).unwrap()), id);
        }
        assert_eq!(index.lookup(b"absent"), Vocab::UNK);
        assert_eq!(index.lookup(long.as_bytes()), vocab.lookup(long.as_bytes()));
        assert_ne!(index.lookup(long.as_bytes()), Vocab::UNK);
    }

    #[test]
    fn host_tokenizers_give_the_runtimes_ids() {
        let text = "It wasn't \"the\" movie, Dr. Smith. CAF\u{c9}! naïve caf\u{e9}s <br />The END."
            .as_bytes();
        let (strings, offsets) = encode_vocab(
            [
                "the", "movie", "n't", "``", "''", ".", "café", "end", "dr.", "!", ",",
            ]
            .iter()
            .map(|w| w.as_bytes().to_vec()),
        );
        let words = Tokenizer::Words(Vocab::new(&strings, &offsets).unwrap());
        let chars = Tokenizer::Chars(
            CharTable::new(b"abcdefghijklmnopqrstuvwxyz .", true, true, true).unwrap(),
        );
        for tokenizer in [words, chars] {
            let host = HostTokenizer::new(&tokenizer);
            let ids = ids_of(&tokenizer, text);
            assert!(ids.len() > 10);
            assert_eq!(text_ids(&host, text).unwrap(), ids);
        }
    }
}
