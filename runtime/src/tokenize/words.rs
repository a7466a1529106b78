//! Word tokenizer: a Treebank-style splitter and a sorted vocabulary borrowed from the blob.
//!
//! # Splitting
//! [`for_each_word`] follows NLTK's `TreebankWordTokenizer` (the Penn Treebank rules):
//! - text is split on whitespace (Python's `str.split()` set, including NBSP and the
//!   other Unicode spaces when UTF-8 encoded, or a lone `0xA0`/`0x85` byte read as Latin-1);
//!   the HTML line break `<br />` (also `<br/>`, `<br>`, any case), which fills IMDB
//!   reviews, counts as whitespace too;
//! - `;` `@` `#` `$` `%` `&` `?` `!` and the brackets `( ) [ ] { } < >` are tokens of their own;
//! - `,` and `:` are split off unless a digit follows (`1,000` and `10:30` stay whole);
//! - `...` and `--` are tokens; a word-final `'` is split off (`dogs'` -> `dogs` `'`);
//! - double quotes become `` `` `` when they open (at the start of a word or after an
//!   opening bracket) and `''` otherwise; `''` and `` `` `` pairs are quote tokens too;
//! - word-final contractions are split: `'s` `'m` `'d` (either case), `'ll` `'re` `'ve`
//!   `n't` (all lower or all upper case): `don't` -> `do` `n't`, `can't` -> `ca` `n't`;
//! - `cannot` `gimme` `gonna` `gotta` `lemme` `wanna` `d'ye` `more'n` `'tis` `'twas` are
//!   split in two, as NLTK's MacIntyre contractions do.
//!
//! Case is kept; [`Vocab::lookup`] lowercases.
//!
//! # Where it differs from NLTK
//! - NLTK splits off only the period that ends the whole text (it expects one sentence
//!   per call; `nltk.word_tokenize` runs a sentence splitter first). Here a period that
//!   ends a word (before whitespace, possibly followed by closing quotes or brackets) is
//!   split off wherever it is, which is what sentence splitting plus Treebank gives on
//!   reviews, except after the titles `mr` `mrs` `ms` `dr` `prof` `st` `jr` `sr` `vs`
//!   and letter-dot abbreviations such as `u.s.`, `e.g.` and `a.m.`, which keep it
//!   (except at the very end of the text, where NLTK splits it off too).
//! - `<br />` is whitespace (NLTK would make `<` `br` `/` `>` tokens of it).
//! - The MacIntyre contractions apply to whole words only, not inside words joined by
//!   punctuation that NLTK leaves attached (`x/cannot` stays one token).
//! - Quotes: whether a quote opens is decided from the original neighbouring character,
//!   without NLTK's intermediate re-padding; runs of three or more quote characters may
//!   split differently.
//! - Only ASCII digits keep `,` and `:` attached.

use core::cmp::Ordering;

use super::chars::code_point_at;
use crate::Error;

const OPENING_QUOTE: &[u8] = b"``";
const CLOSING_QUOTE: &[u8] = b"''";

/// Python's `str.isspace()` set.
fn is_whitespace(code_point: u32) -> bool {
    matches!(
        code_point,
        0x09..=0x0D
            | 0x1C..=0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// Length of an HTML line break (`<br />`, `<br/>`, `<br>`, any case) starting at `at`, or 0.
fn line_break_len(text: &[u8], at: usize) -> usize {
    let Some(rest) = text.get(at..) else {
        return 0;
    };
    let Some(after_tag) = rest.get(..3) else {
        return 0;
    };
    if !after_tag.eq_ignore_ascii_case(b"<br") {
        return 0;
    }
    let mut len = 3;
    while rest.get(len) == Some(&b' ') {
        len += 1;
    }
    if rest.get(len) == Some(&b'/') {
        len += 1;
    }
    if rest.get(len) == Some(&b'>') {
        len + 1
    } else {
        0
    }
}

/// At byte `at` (a char boundary): whether a separator starts there, and the length of
/// that separator or char.
fn classify(text: &[u8], at: usize) -> (bool, usize) {
    match text.get(at) {
        None => (true, 1),
        Some(b'<') => match line_break_len(text, at) {
            0 => (false, 1),
            len => (true, len),
        },
        Some(&byte) if byte.is_ascii() => (is_whitespace(u32::from(byte)), 1),
        Some(_) => match code_point_at(text, at) {
            Some((code_point, len)) => (is_whitespace(code_point), len),
            None => (false, 1),
        },
    }
}

/// Splits `text` into Treebank-style tokens (see the module docs) and calls `f` with each,
/// in order: slices of `text`, or `` `` `` / `''` for double quotes.
pub fn for_each_word<'t>(
    text: &'t [u8],
    f: impl FnMut(&'t [u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    for_each_word_of_piece(text, true, f)
}

/// [`for_each_word`] on a piece of a text that ends at whitespace: with
/// `ends_text` false, more of the text follows, so the piece's last word is
/// not the text's (whose final period is split off even after a title such as
/// `Dr.`). Pieces so split give the whole text's words, unless a piece ends
/// inside an HTML line break (`<br />`).
pub fn for_each_word_of_piece<'t>(
    text: &'t [u8],
    ends_text: bool,
    mut f: impl FnMut(&'t [u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    // A chunk is split once the next one starts (or the text ends), so that the
    // last chunk, whose final period NLTK always splits off, is known.
    let mut pending: Option<&'t [u8]> = None;
    let mut chunk_start = None;
    let mut at = 0;
    while at < text.len() {
        let (separator, len) = classify(text, at);
        if separator {
            if let Some(start) = chunk_start.take() {
                if let Some(previous) = pending.replace(text.get(start..at).unwrap_or_default()) {
                    split_chunk(previous, false, &mut f)?;
                }
            }
        } else if chunk_start.is_none() {
            chunk_start = Some(at);
        }
        at += len;
    }
    if let Some(start) = chunk_start {
        if let Some(previous) = pending.replace(text.get(start..).unwrap_or_default()) {
            split_chunk(previous, false, &mut f)?;
        }
    }
    if let Some(last) = pending {
        split_chunk(last, ends_text, &mut f)?;
    }
    Ok(())
}

/// `` `` `` for a double quote that opens (chunk start or after an opening bracket), else `''`.
fn quote_token(chunk: &[u8], at: usize) -> &'static [u8] {
    let opens = match at.checked_sub(1).and_then(|before| chunk.get(before)) {
        None => true,
        Some(b) => matches!(b, b'(' | b'[' | b'{' | b'<'),
    };
    if opens {
        OPENING_QUOTE
    } else {
        CLOSING_QUOTE
    }
}

const TITLES: [&[u8]; 9] = [
    b"mr", b"mrs", b"ms", b"dr", b"prof", b"st", b"jr", b"sr", b"vs",
];

/// `u.s`, `e.g`, `a.m`: single letters joined by periods (the final period not included).
fn is_letter_abbreviation(word: &[u8]) -> bool {
    word.len() >= 3
        && word.len() % 2 == 1
        && word.iter().enumerate().all(|(i, &b)| {
            if i % 2 == 0 {
                b.is_ascii_alphabetic()
            } else {
                b == b'.'
            }
        })
}

/// The index of the sentence-final period of a whitespace-delimited chunk, if it has one.
/// The text's last chunk always ends a sentence, even after an abbreviation (as in NLTK).
fn final_period_at(chunk: &[u8], last: bool) -> Option<usize> {
    let period = chunk
        .iter()
        .rposition(|b| !matches!(b, b']' | b')' | b'}' | b'>' | b'"' | b'\''))?;
    if chunk.get(period) != Some(&b'.') {
        return None;
    }
    let before = chunk.get(..period)?;
    if before.last() == Some(&b'.') {
        return None;
    }
    // The word the period ends, without leading punctuation such as `(`.
    let word_start = before
        .iter()
        .rposition(|&b| b.is_ascii() && !b.is_ascii_alphanumeric() && b != b'.')
        .map_or(0, |i| i + 1);
    let word = before.get(word_start..)?;
    let is_title = TITLES.iter().any(|title| title.eq_ignore_ascii_case(word));
    if !last && (is_title || is_letter_abbreviation(word)) {
        None
    } else {
        Some(period)
    }
}

/// Splits one whitespace-free chunk at punctuation; the words between go to [`emit_word`].
fn split_chunk<'t, F>(chunk: &'t [u8], last: bool, f: &mut F) -> Result<(), Error>
where
    F: FnMut(&'t [u8]) -> Result<(), Error>,
{
    let final_period = final_period_at(chunk, last);
    let mut word_start = 0;
    let mut at = 0;
    while let Some(&byte) = chunk.get(at) {
        let next = chunk.get(at + 1).copied();
        let own = |len: usize| (len, chunk.get(at..at + len).unwrap_or_default());
        // (bytes consumed, token)
        let split: Option<(usize, &'t [u8])> = match byte {
            b'.' if chunk.get(at..at + 3) == Some(b"...") => Some(own(3)),
            b'.' if final_period == Some(at) => Some(own(1)),
            b'-' if next == Some(b'-') => Some(own(2)),
            b'`' if next == Some(b'`') => Some(own(2)),
            b'\'' if next == Some(b'\'') => Some((2, quote_token(chunk, at))),
            b'"' => Some((1, quote_token(chunk, at))),
            b',' | b':' if !next.is_some_and(|b| b.is_ascii_digit()) => Some(own(1)),
            b';' | b'@' | b'#' | b'$' | b'%' | b'&' | b'?' | b'!' => Some(own(1)),
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>' => Some(own(1)),
            _ => None,
        };
        match split {
            Some((consumed, token)) => {
                emit_word(chunk.get(word_start..at).unwrap_or_default(), f)?;
                f(token)?;
                at += consumed;
                word_start = at;
            }
            None => at += 1,
        }
    }
    emit_word(chunk.get(word_start..).unwrap_or_default(), f)
}

const CLITICS: [&[u8]; 6] = [b"'s", b"'S", b"'m", b"'M", b"'d", b"'D"];
const CONTRACTIONS: [&[u8]; 8] = [
    b"'ll", b"'LL", b"'re", b"'RE", b"'ve", b"'VE", b"n't", b"N'T",
];
/// Whole words that NLTK splits in two, and where (MacIntyre's contractions).
const SPLIT_WORDS: [(&[u8], usize); 10] = [
    (b"cannot", 3),
    (b"d'ye", 1),
    (b"gimme", 3),
    (b"gonna", 3),
    (b"gotta", 3),
    (b"lemme", 3),
    (b"more'n", 4),
    (b"wanna", 3),
    (b"'tis", 2),
    (b"'twas", 2),
];

/// Splits one of `suffixes` off the end of `word` when a non-quote char precedes it.
fn split_suffix<'t>(word: &'t [u8], suffixes: &[&[u8]]) -> (&'t [u8], Option<&'t [u8]>) {
    for suffix in suffixes {
        if word.len() > suffix.len() && word.ends_with(suffix) {
            let stem_len = word.len() - suffix.len();
            let (stem, tail) = word.split_at(stem_len);
            if stem.last() != Some(&b'\'') {
                return (stem, Some(tail));
            }
        }
    }
    (word, None)
}

/// Emits a word with its trailing quote and contractions split off.
fn emit_word<'t, F>(word: &'t [u8], f: &mut F) -> Result<(), Error>
where
    F: FnMut(&'t [u8]) -> Result<(), Error>,
{
    if word.is_empty() {
        return Ok(());
    }
    // Every suffix split off here holds an apostrophe, and most words have none.
    // (`contains` would bring core's memchr into the device image: 224 bytes more.)
    #[allow(clippy::manual_contains)]
    let has_apostrophe = word.iter().any(|&byte| byte == b'\'');
    let (stem, tails) = if has_apostrophe {
        let (rest, quote) = split_suffix(word, &[b"'"]);
        let (rest, clitic) = split_suffix(rest, &CLITICS);
        let (stem, contraction) = split_suffix(rest, &CONTRACTIONS);
        (stem, [contraction, clitic, quote])
    } else {
        (word, [None; 3])
    };
    let split = SPLIT_WORDS
        .iter()
        .find(|(whole, _)| whole.eq_ignore_ascii_case(stem));
    match split {
        Some(&(_, at)) => {
            let (first, second) = stem.split_at(at.min(stem.len()));
            f(first)?;
            f(second)?;
        }
        None => f(stem)?,
    }
    for tail in tails.into_iter().flatten() {
        f(tail)?;
    }
    Ok(())
}

/// A sorted word vocabulary borrowed from a model blob.
///
/// `strings` is every word concatenated; `offsets` holds n + 1 little-endian u32 start
/// offsets into `strings` (the first 0, the last `strings.len()`). Words are stored
/// ASCII-lowercased, non-empty and strictly ascending (bytewise). Token ids are
/// `2 + index`; 0 is PAD and 1 is UNK, so the embedding has `len() + 2` rows.
#[derive(Debug, Clone, Copy)]
pub struct Vocab<'a> {
    strings: &'a [u8],
    offsets: &'a [u8],
    len: usize,
}

impl<'a> Vocab<'a> {
    /// Id of the padding token.
    pub const PAD: u16 = 0;
    /// Id of words not in the vocabulary.
    pub const UNK: u16 = 1;
    /// Most words a vocabulary can hold: with PAD and UNK, a model's token count
    /// (ids `0..=MAX_WORDS + 1`) must itself fit a `u16`, as the blob format checks.
    pub const MAX_WORDS: usize = u16::MAX as usize - 2;

    /// Checks the offsets (count, first, last, increasing) and that the words are
    /// lowercase and strictly ascending; anything else is [`Error::BadVocab`].
    ///
    /// A device runs this at every boot, so it reads each offset once, compares
    /// neighbours in place (no `memcmp` call per word) and checks the case of all
    /// the words' bytes together, four at a time. Not inlined: it runs once, and
    /// out of line its speed does not depend on the code around the call.
    #[inline(never)]
    pub fn new(strings: &'a [u8], offsets: &'a [u8]) -> Result<Self, Error> {
        let (ends, rest) = offsets.as_chunks::<4>();
        let Some((&first, ends)) = ends.split_first().filter(|_| rest.is_empty()) else {
            return Err(Error::BadVocab);
        };
        let len = ends.len();
        if len > Self::MAX_WORDS || u32::from_le_bytes(first) != 0 || has_ascii_uppercase(strings) {
            return Err(Error::BadVocab);
        }
        let (mut start, mut previous): (usize, &[u8]) = (0, &[]);
        for &end in ends {
            let end = usize::try_from(u32::from_le_bytes(end)).map_err(|_| Error::BadVocab)?;
            let word = strings
                .get(start..end)
                .filter(|word| ascends(previous, word))
                .ok_or(Error::BadVocab)?;
            (start, previous) = (end, word);
        }
        if start != strings.len() {
            return Err(Error::BadVocab);
        }
        Ok(Self {
            strings,
            offsets,
            len,
        })
    }

    /// Number of words (without PAD and UNK).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the vocabulary has no words (every token is UNK).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn offset(&self, index: usize) -> Option<usize> {
        let bytes = self.offsets.get(index * 4..index * 4 + 4)?;
        let value = u32::from_le_bytes(bytes.try_into().ok()?);
        usize::try_from(value).ok()
    }

    fn word_at(&self, index: usize) -> Option<&'a [u8]> {
        let start = self.offset(index)?;
        let end = self.offset(index + 1)?;
        self.strings.get(start..end)
    }

    /// The word with this id; `None` for PAD, UNK and ids out of range.
    pub fn word(&self, id: u16) -> Option<&'a [u8]> {
        self.word_at(usize::from(id).checked_sub(2)?)
    }

    /// The id of `word`, compared ASCII-lowercased (no buffer); [`Vocab::UNK`] when absent.
    /// A word with bytes beyond ASCII that is not stored as it is written is looked up
    /// again char by char (UTF-8 where valid, Latin-1 otherwise), so that its Latin-1
    /// spelling finds a UTF-8 entry; the first search alone keeps the byte order that
    /// every valid vocabulary has, older ones with raw Latin-1 words included.
    pub fn lookup(&self, word: &[u8]) -> u16 {
        let bytes = |stored: &[u8]| {
            stored
                .iter()
                .copied()
                .cmp(word.iter().map(u8::to_ascii_lowercase))
        };
        match self.search(bytes) {
            Self::UNK if !word.is_ascii() => self.search(|stored| compare_chars(stored, word)),
            id => id,
        }
    }

    /// Binary search with `order` (stored word against the sought one).
    fn search(&self, order: impl Fn(&[u8]) -> Ordering) -> u16 {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let mid = low + (high - low) / 2;
            let Some(stored) = self.word_at(mid) else {
                return Self::UNK;
            };
            match order(stored) {
                Ordering::Less => low = mid + 1,
                Ordering::Greater => high = mid,
                // `new` caps len at MAX_WORDS, so 2 + mid fits in a u16.
                Ordering::Equal => return u16::try_from(mid + 2).unwrap_or(Self::UNK),
            }
        }
        Self::UNK
    }

    /// Splits `text` with [`for_each_word`] and calls `f` with each word's id, in order.
    pub fn for_each_id(
        &self,
        text: &[u8],
        f: impl FnMut(u16) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.for_each_id_of_piece(text, true, f)
    }

    /// [`Vocab::for_each_id`] on a piece of a text (see [`for_each_word_of_piece`]).
    pub fn for_each_id_of_piece(
        &self,
        text: &[u8],
        ends_text: bool,
        mut f: impl FnMut(u16) -> Result<(), Error>,
    ) -> Result<(), Error> {
        for_each_word_of_piece(text, ends_text, |word| f(self.lookup(word)))
    }
}

/// Whether `word` comes strictly after `previous` bytewise (so it is not empty).
#[inline(always)]
fn ascends(previous: &[u8], word: &[u8]) -> bool {
    match previous.iter().zip(word).find(|(p, w)| p != w) {
        Some((p, w)) => p < w,
        None => previous.len() < word.len(),
    }
}

/// Whether any byte is an ASCII capital, tested four bytes at a time: with the
/// top bit of each byte set, subtracting `A` (or `Z + 1`) from every byte borrows
/// nowhere, and leaves a byte's top bit set exactly when it was at least `A` (or
/// past `Z`); bytes from 0x80 up are masked out.
fn has_ascii_uppercase(bytes: &[u8]) -> bool {
    const LANES: u32 = 0x0101_0101;
    let (words, tail) = bytes.as_chunks::<4>();
    words.iter().any(|&word| {
        let x = u32::from_ne_bytes(word);
        let high = x | (0x80 * LANES);
        let at_least_a = high.wrapping_sub(u32::from(b'A') * LANES);
        let past_z = high.wrapping_sub(u32::from(b'Z' + 1) * LANES);
        at_least_a & !past_z & !x & (0x80 * LANES) != 0
    }) || tail.iter().any(u8::is_ascii_uppercase)
}

/// Orders a vocabulary word against a text word char by char, both read as the
/// tokenizers read text (UTF-8 where valid, Latin-1 byte by byte otherwise) and the text
/// word ASCII-lowercased, so that `café` matches in either encoding. A vocabulary
/// in UTF-8 (as [`encode_vocab`] writes it) is sorted in this order too: UTF-8's byte
/// order is code point order.
fn compare_chars(stored: &[u8], word: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    loop {
        let (a, b) = (code_point_at(stored, i), code_point_at(word, j));
        let (Some((a, a_len)), Some((b, b_len))) = (a, b) else {
            return a.is_some().cmp(&b.is_some());
        };
        let b = if (0x41..=0x5A).contains(&b) {
            b + 0x20
        } else {
            b
        };
        match a.cmp(&b) {
            Ordering::Equal => (i, j) = (i + a_len, j + b_len),
            order => return order,
        }
    }
}

/// A word as a vocabulary stores it: ASCII-lowercased, in UTF-8 (a byte that is not
/// part of valid UTF-8 is the Latin-1 char of that value, as the tokenizers read it).
#[cfg(any(feature = "std", test))]
pub fn vocabulary_form(word: &[u8]) -> std::vec::Vec<u8> {
    let mut out = std::vec::Vec::with_capacity(word.len());
    for code_point in super::chars::code_points(word) {
        let c = char::from_u32(code_point).unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.to_ascii_lowercase().encode_utf8(&mut buf).as_bytes());
    }
    out
}

/// Builds a vocabulary's `(strings, offsets)` pair from words: puts them in
/// [`vocabulary_form`], drops empty words, sorts and dedups. [`Vocab::new`] accepts the result when there are
/// at most [`Vocab::MAX_WORDS`] distinct words (and under 4 GiB of text).
#[cfg(any(feature = "std", test))]
pub fn encode_vocab<I: IntoIterator<Item = std::vec::Vec<u8>>>(
    words: I,
) -> (std::vec::Vec<u8>, std::vec::Vec<u8>) {
    use std::vec::Vec;
    let mut words: Vec<Vec<u8>> = words
        .into_iter()
        .filter(|word| !word.is_empty())
        .map(|word| vocabulary_form(&word))
        .collect();
    words.sort_unstable();
    words.dedup();
    let mut strings = Vec::with_capacity(words.iter().map(Vec::len).sum());
    let mut offsets = Vec::with_capacity(4 * (words.len() + 1));
    offsets.extend_from_slice(&0u32.to_le_bytes());
    for word in &words {
        strings.extend_from_slice(word);
        let end = u32::try_from(strings.len()).unwrap_or(u32::MAX);
        offsets.extend_from_slice(&end.to_le_bytes());
    }
    (strings, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn words(text: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        for_each_word(text, |word| {
            out.push(word);
            Ok(())
        })
        .unwrap();
        out
    }

    fn check(text: &str, expected: &[&str]) {
        let got = words(text.as_bytes());
        let expected: Vec<&[u8]> = expected.iter().map(|w| w.as_bytes()).collect();
        assert_eq!(
            got,
            expected,
            "{text:?} gave {:?}",
            got.iter()
                .map(|w| std::string::String::from_utf8_lossy(w))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_split_suffix_holds_an_apostrophe() {
        // `emit_word` skips the suffix splits for words without one.
        for suffix in CLITICS.iter().chain(&CONTRACTIONS) {
            assert!(suffix.contains(&b'\''), "{suffix:?}");
        }
    }

    // Expected tokens below are NLTK 3.10.4's TreebankWordTokenizer output, except where
    // a comment names a documented difference.
    #[test]
    fn treebank_sentences() {
        check(
            "I don't like it, but they're fine.",
            &[
                "I", "do", "n't", "like", "it", ",", "but", "they", "'re", "fine", ".",
            ],
        );
        check(
            "She said \"hello\" (twice) and left...",
            &[
                "She", "said", "``", "hello", "''", "(", "twice", ")", "and", "left", "...",
            ],
        );
        check(
            "The dogs' bones cost $3.50 & 1,000 yen; 10:30 is late!?",
            &[
                "The", "dogs", "'", "bones", "cost", "$", "3.50", "&", "1,000", "yen", ";",
                "10:30", "is", "late", "!", "?",
            ],
        );
        check(
            "He'll say \"No\" [again] {x} <y>",
            &[
                "He", "'ll", "say", "``", "No", "''", "[", "again", "]", "{", "x", "}", "<", "y",
                ">",
            ],
        );
        check("U.S. army", &["U.S.", "army"]);
        check("Wait... what?", &["Wait", "...", "what", "?"]);
        check(
            "I'M HERE AND DON'T CARE",
            &["I", "'M", "HERE", "AND", "DO", "N'T", "CARE"],
        );
        check("'Quoted' words", &["'Quoted", "'", "words"]);
        check("a,b c:d e.", &["a", ",", "b", "c", ":", "d", "e", "."]);
        check("x@y#z%w", &["x", "@", "y", "#", "z", "%", "w"]);
        check("More'n enough", &["More", "'n", "enough"]);
        check("I'd've", &["I'd", "'ve"]);
        check("test''", &["test", "''"]);
        check("``test", &["``", "test"]);
        check("end.\")", &["end", ".", "''", ")"]);
    }

    #[test]
    fn macintyre_contractions() {
        // NLTK leaves "fail." whole (not the last period of the text); see the docs.
        check(
            "I can't believe it's gonna work -- cannot fail. 'Tis true.",
            &[
                "I", "ca", "n't", "believe", "it", "'s", "gon", "na", "work", "--", "can", "not",
                "fail", ".", "'T", "is", "true", ".",
            ],
        );
        check(
            "Gimme lemme gotta wanna d'ye 'twas",
            &[
                "Gim", "me", "lem", "me", "got", "ta", "wan", "na", "d", "'ye", "'t", "was",
            ],
        );
    }

    #[test]
    fn every_sentence_final_period_is_split_but_abbreviations_keep_theirs() {
        check(
            "Great film. Mr. Smith and Dr. Who, e.g. in the U.S. lab. (Really.)",
            &[
                "Great", "film", ".", "Mr.", "Smith", "and", "Dr.", "Who", ",", "e.g.", "in",
                "the", "U.S.", "lab", ".", "(", "Really", ".", ")",
            ],
        );
        check("3.5 stars.", &["3.5", "stars", "."]);
        // At the end of the text the period goes even after an abbreviation.
        check(
            "Martin Luther King Jr.  <br />",
            &["Martin", "Luther", "King", "Jr", "."],
        );
        check("in the U.S.)", &["in", "the", "U.S", ".", ")"]);
        check(".", &["."]);
        check("..", &[".."]);
        check("....", &["...", "."]);
    }

    #[test]
    fn html_line_breaks_are_whitespace() {
        check(
            "Bad movie.<br /><br />Really bad<br/>and<BR>long",
            &["Bad", "movie", ".", "Really", "bad", "and", "long"],
        );
        // Not a complete tag: brackets are tokens.
        check("<br", &["<", "br"]);
        check("<b>x</b>", &["<", "b", ">", "x", "<", "/b", ">"]);
    }

    #[test]
    fn unicode_whitespace_and_invalid_bytes() {
        check("a\u{a0}b\u{3000}c\td\r\ne", &["a", "b", "c", "d", "e"]);
        // Latin-1 NBSP as a lone byte is whitespace; inside UTF-8 "à" (C3 A0) it is not.
        assert_eq!(words(b"a\xA0b"), std::vec![&b"a"[..], b"b"]);
        assert_eq!(words("là-bas".as_bytes()), std::vec!["là-bas".as_bytes()]);
        assert_eq!(
            words(b"caf\xE9, ok"),
            std::vec![&b"caf\xE9"[..], b",", b"ok"]
        );
        assert_eq!(words(b"\xFF\xFE"), std::vec![&b"\xFF\xFE"[..]]);
    }

    #[test]
    fn empty_and_blank_text_give_no_tokens() {
        assert!(words(b"").is_empty());
        assert!(words(b" \n\t<br /> ").is_empty());
    }

    #[test]
    fn tokens_are_never_empty_and_cover_the_text() {
        let text = b"It's \"great\" -- isn't it?! (Yes.) 1,000:2 ; 'tis.<br />";
        for word in words(text) {
            assert!(!word.is_empty());
        }
        let joined: Vec<u8> = words(b"a,b;c(d)e!f?g").concat();
        assert_eq!(joined, b"a,b;c(d)e!f?g");
    }

    fn vocab_of(words: &[&str]) -> (Vec<u8>, Vec<u8>) {
        encode_vocab(words.iter().map(|w| w.as_bytes().to_vec()))
    }

    #[test]
    fn encode_vocab_lowercases_sorts_and_dedups() {
        let (strings, offsets) = vocab_of(&["the", "The", "a", "", "movie", "a"]);
        assert_eq!(strings, b"amoviethe");
        let offsets: Vec<u32> = offsets
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(offsets, std::vec![0, 1, 6, 9]);
    }

    #[test]
    fn latin1_and_utf8_spellings_of_a_word_are_one_vocabulary_word() {
        // `café` and `très` from a Latin-1 file, `été` and `naïve` in UTF-8.
        let (strings, offsets) = encode_vocab(
            [
                &b"caf\xe9"[..],
                b"Tr\xe8s",
                "été".as_bytes(),
                "naïve".as_bytes(),
                b"cafe",
            ]
            .map(<[u8]>::to_vec),
        );
        assert_eq!(strings, "cafecafénaïvetrèsété".as_bytes());
        let vocab = Vocab::new(&strings, &offsets).unwrap();
        let id = |word: &[u8]| vocab.lookup(word);
        assert_eq!(id("café".as_bytes()), id(b"CAF\xe9"));
        assert_eq!(id(b"caf\xe9"), 3);
        assert_eq!(id(b"cafe"), 2);
        assert_eq!(id(b"tr\xe8s"), id("très".as_bytes()));
        assert_eq!(id(b"\xe9t\xe9"), id("Été".to_lowercase().as_bytes()));
        assert_eq!(id(b"na\xefve"), 4);
        // Only ASCII is lowercased, as before: `É` (0xC9) is another char than `é`.
        assert_eq!(id(b"caf\xc9"), Vocab::UNK);
        assert_eq!(id(b"caff"), Vocab::UNK);
    }

    #[test]
    fn raw_latin1_words_of_older_vocabularies_are_still_found() {
        // Sorted byte by byte, as builds before UTF-8 vocabularies stored Latin-1
        // words: `cafés` in Latin-1, `é` in Latin-1, `–` (en dash) and `éa` in UTF-8.
        let list: [&[u8]; 5] = [b"caf\xe9s", b"the", b"\xc3\xa9a", b"\xe2\x80\x93", b"\xe9"];
        let mut strings = Vec::new();
        let mut offsets = 0u32.to_le_bytes().to_vec();
        for word in list {
            strings.extend_from_slice(word);
            offsets.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        }
        let vocab = Vocab::new(&strings, &offsets).unwrap();
        for (index, word) in list.iter().enumerate() {
            assert_eq!(vocab.lookup(word), index as u16 + 2, "{word:?}");
        }
        assert_eq!(vocab.lookup(b"CAF\xe9S"), 2);
        assert_eq!(vocab.lookup(b"caf\xe9x"), Vocab::UNK);
    }

    #[test]
    fn lookup_finds_every_word_of_a_built_vocab() {
        let list: Vec<std::string::String> = (0..500)
            .map(|i| std::format!("w{}x{}", i * 7919 % 1000, i))
            .collect();
        let (strings, offsets) = encode_vocab(list.iter().map(|w| w.as_bytes().to_vec()));
        let vocab = Vocab::new(&strings, &offsets).unwrap();
        assert_eq!(vocab.len(), 500);
        for id in 2..502u16 {
            let word = vocab.word(id).unwrap();
            assert_eq!(vocab.lookup(word), id);
            assert_eq!(vocab.lookup(&word.to_ascii_uppercase()), id);
        }
        assert_eq!(vocab.word(Vocab::PAD), None);
        assert_eq!(vocab.word(Vocab::UNK), None);
        assert_eq!(vocab.word(502), None);
        assert_eq!(vocab.lookup(b"absent"), Vocab::UNK);
        assert_eq!(vocab.lookup(b""), Vocab::UNK);
        assert_eq!(vocab.lookup(b"w0x"), Vocab::UNK);
    }

    #[test]
    fn vocab_ids_follow_the_splitter() {
        let (strings, offsets) = vocab_of(&["do", "n't", "like", "it", ".", "``", "''"]);
        let vocab = Vocab::new(&strings, &offsets).unwrap();
        let mut ids = Vec::new();
        vocab
            .for_each_id(b"I DON'T like \"it\".", |id| {
                ids.push(id);
                Ok(())
            })
            .unwrap();
        let names: Vec<Option<&[u8]>> = ids.iter().map(|&id| vocab.word(id)).collect();
        assert_eq!(
            names,
            std::vec![
                None,
                Some(&b"do"[..]),
                Some(b"n't"),
                Some(b"like"),
                Some(b"``"),
                Some(b"it"),
                Some(b"''"),
                Some(b"."),
            ]
        );
        assert_eq!(ids.first(), Some(&Vocab::UNK));
    }

    #[test]
    fn empty_vocab_maps_everything_to_unk() {
        let (strings, offsets) = vocab_of(&[]);
        let vocab = Vocab::new(&strings, &offsets).unwrap();
        assert!(vocab.is_empty());
        assert_eq!(vocab.lookup(b"x"), Vocab::UNK);
    }

    fn offsets(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn bad_vocab_tables_are_rejected() {
        let bad = |strings: &[u8], offs: &[u8]| Vocab::new(strings, offs).map(|_| ());
        assert_eq!(bad(b"ab", &offsets(&[0, 1, 2])), Ok(()));
        // Length not a multiple of 4, or no offsets at all.
        assert_eq!(bad(b"ab", &[0, 0, 0]), Err(Error::BadVocab));
        assert_eq!(bad(b"", &[]), Err(Error::BadVocab));
        // First offset not 0, last not strings.len().
        assert_eq!(bad(b"ab", &offsets(&[1, 2])), Err(Error::BadVocab));
        assert_eq!(bad(b"ab", &offsets(&[0, 1])), Err(Error::BadVocab));
        assert_eq!(bad(b"ab", &offsets(&[0, 3])), Err(Error::BadVocab));
        // Decreasing offset, empty word.
        assert_eq!(bad(b"ab", &offsets(&[0, 2, 1, 2])), Err(Error::BadVocab));
        assert_eq!(bad(b"ab", &offsets(&[0, 0, 2])), Err(Error::BadVocab));
        // Unsorted, duplicate, uppercase.
        assert_eq!(bad(b"ba", &offsets(&[0, 1, 2])), Err(Error::BadVocab));
        assert_eq!(bad(b"aa", &offsets(&[0, 1, 2])), Err(Error::BadVocab));
        assert_eq!(bad(b"aB", &offsets(&[0, 1, 2])), Err(Error::BadVocab));
        // Prefix order is bytewise: "a" < "ab".
        assert_eq!(bad(b"aab", &offsets(&[0, 1, 3])), Ok(()));
        assert_eq!(bad(b"aba", &offsets(&[0, 2, 3])), Err(Error::BadVocab));
    }

    #[test]
    fn the_four_byte_case_test_finds_each_capital_in_each_lane() {
        for byte in 0..=u8::MAX {
            for lane in 0..6 {
                // Lanes 0 to 3 sit in the first word, 4 and 5 in the tail.
                let mut bytes = *b"abc.\xe9z";
                bytes[lane] = byte;
                assert_eq!(
                    has_ascii_uppercase(&bytes),
                    byte.is_ascii_uppercase(),
                    "byte {byte:#04x} in lane {lane}"
                );
            }
        }
    }

    #[test]
    fn ascends_is_the_strict_bytewise_order() {
        let words: [&[u8]; 12] = [
            b"",
            b"a",
            b"aa",
            b"ab",
            b"abcd",
            b"abcde",
            b"abce",
            b"abcdefghij",
            b"abcdefghik",
            b"b",
            b"\xe9",
            b"\xe9a",
        ];
        for previous in words {
            for word in words {
                assert_eq!(
                    ascends(previous, word),
                    previous < word,
                    "{previous:?} {word:?}"
                );
            }
        }
    }

    #[test]
    fn too_many_words_is_bad_vocab() {
        let count = Vocab::MAX_WORDS + 1;
        let strings: Vec<u8> = (0..count)
            .flat_map(|i| {
                [
                    b'a' + (i / 676 % 26) as u8,
                    b'a' + (i / 26 % 26) as u8,
                    b'a' + (i % 26) as u8,
                ]
            })
            .collect();
        let offs: Vec<u32> = (0..=count as u32).map(|i| i * 3).collect();
        // The words are not all distinct either, but the count is checked first.
        assert_eq!(
            Vocab::new(&strings, &offsets(&offs)).map(|_| ()),
            Err(Error::BadVocab)
        );
    }

    #[test]
    fn no_input_panics() {
        let mut sink = |_: &[u8]| Ok(());
        let alphabet = b" .'\",:;-`<br/>!?()aZ0\xC3\xA0\xE2\x80\xA8\xFF";
        for a in 0..=255u8 {
            for_each_word(&[a], &mut sink).unwrap();
            for b in 0..=255u8 {
                let mut count = 0usize;
                for_each_word(&[a, b], |w| {
                    assert!(!w.is_empty());
                    count += 1;
                    Ok(())
                })
                .unwrap();
                assert!(count <= 3);
            }
        }
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (strings, offs) = vocab_of(&["a", "'s", "n't", "."]);
        let vocab = Vocab::new(&strings, &offs).unwrap();
        for round in 0..20_000 {
            let len = (next() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if round % 2 == 0 {
                        alphabet[(r % alphabet.len() as u64) as usize]
                    } else {
                        (r >> 32) as u8
                    }
                })
                .collect();
            let mut total = 0;
            for_each_word(&text, |w| {
                assert!(!w.is_empty());
                total += w.len();
                Ok(())
            })
            .unwrap();
            // Static quote tokens are two bytes for a one-byte `"`.
            assert!(total <= 2 * text.len());
            vocab
                .for_each_id(&text, |id| {
                    assert!(usize::from(id) < vocab.len() + 2);
                    Ok(())
                })
                .unwrap();
        }
    }
}
