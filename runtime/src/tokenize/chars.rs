//! Character tokenizer: bytes -> chars -> ids through a table of up to 256 Latin-1 symbols.
//!
//! # Splitting bytes into chars
//! Text is bytes. Every valid UTF-8 sequence is one char (its code point). Every byte
//! that is not part of a valid UTF-8 sequence is the Latin-1 char with the same value, so
//! Latin-1 files (the NLTK plays, where byte `0xE6` is `æ`) and UTF-8 files both split
//! deterministically, without a decoding step that could fail.
//!
//! # Lowercasing
//! When the table lowercases, it does what Python's `str.lower()` (the notebook's) does
//! for every char whose lowercase form is below 256: ASCII `A-Z`, Latin-1 `0xC0..=0xDE`
//! except `×` (`0xD7`), and the five chars above 255 whose lowercase is Latin-1:
//! `Ÿ` (U+0178) -> `ÿ`, `ẞ` (U+1E9E) -> `ß`, Kelvin sign (U+212A) -> `k`, Angstrom sign
//! (U+212B) -> `å`, and `İ` (U+0130) -> `i` followed by U+0307 (combining dot above,
//! which is not Latin-1, so it becomes UNK). Other chars above 255 are never in the table.
//!
//! # Ids
//! `symbols[i]` has id `i`; then UNK (if the table has one) is `n`, then PAD (if any)
//! is `n + unk`. Chars that are not in the table map to UNK, or are an
//! [`Error::UnknownChar`] when the table has no UNK.

use crate::Error;

/// The notebook's valid set for the char-level sentiment model (workload C).
/// It has no `0`, exactly as in the notebook.
pub const NOTEBOOK_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz123456789\"'?!.,:; ";

/// Code point of the combining dot above that `İ` (U+0130) leaves behind when lowercased.
const COMBINING_DOT_ABOVE: u32 = 0x0307;
const CAPITAL_I_WITH_DOT: u32 = 0x0130;

/// Splits bytes into chars (code points): valid UTF-8 sequences decode, every other byte
/// is the Latin-1 char of the same value. Never fails.
pub fn code_points(text: &[u8]) -> impl Iterator<Item = u32> + '_ {
    text.utf8_chunks().flat_map(|chunk| {
        let valid = chunk.valid();
        let invalid = chunk.invalid();
        valid
            .chars()
            .map(u32::from)
            .chain(invalid.iter().map(|&byte| u32::from(byte)))
    })
}

/// The char starting at byte `at` of `text` and its length in bytes, split as
/// [`code_points`] does; `None` at or past the end.
pub(crate) fn code_point_at(text: &[u8], at: usize) -> Option<(u32, usize)> {
    let rest = text.get(at..)?;
    let head = rest.get(..4).unwrap_or(rest);
    let chunk = head.utf8_chunks().next()?;
    match chunk.valid().chars().next() {
        Some(c) => Some((u32::from(c), c.len_utf8())),
        None => chunk.invalid().first().map(|&b| (u32::from(b), 1)),
    }
}

/// Python's `str.lower()` for one code point, where the result is below 256 (see the
/// module docs); other code points are returned unchanged. `İ` gives `i` here; the
/// combining dot that follows it is added by [`CharTable::for_each_id`].
pub fn lowercase(code_point: u32) -> u32 {
    match code_point {
        0x41..=0x5A | 0xC0..=0xD6 | 0xD8..=0xDE => code_point + 0x20,
        CAPITAL_I_WITH_DOT => u32::from(b'i'),
        0x0178 => 0xFF,
        0x1E9E => 0xDF,
        0x212A => u32::from(b'k'),
        0x212B => 0xE5,
        _ => code_point,
    }
}

/// A char vocabulary borrowed from a model blob (or a constant such as [`NOTEBOOK_CHARS`]).
#[derive(Debug, Clone)]
pub struct CharTable<'a> {
    symbols: &'a [u8],
    lowercase: bool,
    unk: bool,
    pad: bool,
    /// `index[b]` is the id of byte `b` when bit `b` of `present` is set.
    index: [u8; 256],
    present: [u32; 8],
}

impl<'a> CharTable<'a> {
    /// Builds the table. `symbols` are Latin-1 code points, each at most once; a
    /// duplicate is [`Error::BadVocab`].
    pub fn new(symbols: &'a [u8], lowercase: bool, unk: bool, pad: bool) -> Result<Self, Error> {
        let mut index = [0u8; 256];
        let mut present = [0u32; 8];
        for (id, &symbol) in symbols.iter().enumerate() {
            let word = present
                .get_mut(usize::from(symbol / 32))
                .ok_or(Error::BadVocab)?;
            let bit = 1u32 << (symbol % 32);
            if *word & bit != 0 {
                return Err(Error::BadVocab);
            }
            *word |= bit;
            // At most 256 distinct bytes, so every id fits in a u8.
            let slot = index.get_mut(usize::from(symbol)).ok_or(Error::BadVocab)?;
            *slot = u8::try_from(id).map_err(|_| Error::BadVocab)?;
        }
        Ok(Self {
            symbols,
            lowercase,
            unk,
            pad,
            index,
            present,
        })
    }

    /// The symbols in id order (without UNK and PAD).
    pub fn symbols(&self) -> &'a [u8] {
        self.symbols
    }

    /// Whether text is lowercased before lookup.
    pub fn lowercases(&self) -> bool {
        self.lowercase
    }

    /// Input dimension: symbols, plus one for UNK and one for PAD when present.
    pub fn len(&self) -> usize {
        self.symbols.len() + usize::from(self.unk) + usize::from(self.pad)
    }

    /// True when the table has no ids at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The UNK id, if the table has one.
    pub fn unk_id(&self) -> Option<u16> {
        // `new` admits at most 256 symbols, so these ids fit in a u16.
        self.unk.then_some(self.symbols.len() as u16)
    }

    /// The PAD id, if the table has one.
    pub fn pad_id(&self) -> Option<u16> {
        self.pad
            .then_some((self.symbols.len() + usize::from(self.unk)) as u16)
    }

    fn symbol_id(&self, code_point: u32) -> Option<u16> {
        let byte = u8::try_from(code_point).ok()?;
        let word = self.present.get(usize::from(byte / 32))?;
        if word & (1u32 << (byte % 32)) == 0 {
            return None;
        }
        self.index.get(usize::from(byte)).map(|&id| u16::from(id))
    }

    /// The id of one char (lowercased first when the table lowercases). A char not in
    /// the table is UNK, or [`Error::UnknownChar`] (with the char as given) without UNK.
    pub fn id_of(&self, code_point: u32) -> Result<u16, Error> {
        let lookup = if self.lowercase {
            lowercase(code_point)
        } else {
            code_point
        };
        self.symbol_id(lookup)
            .or_else(|| self.unk_id())
            .ok_or(Error::UnknownChar(code_point))
    }

    /// The symbol with this id; `None` for UNK, PAD and ids out of range.
    pub fn symbol(&self, id: u16) -> Option<u8> {
        self.symbols.get(usize::from(id)).copied()
    }

    /// Splits `text` into chars (see the module docs) and calls `f` with each char's id,
    /// in order. Stops at the first error, from the table or from `f`.
    pub fn for_each_id(
        &self,
        text: &[u8],
        mut f: impl FnMut(u16) -> Result<(), Error>,
    ) -> Result<(), Error> {
        for code_point in code_points(text) {
            f(self.id_of(code_point)?)?;
            if self.lowercase && code_point == CAPITAL_I_WITH_DOT {
                f(self.id_of(COMBINING_DOT_ABOVE)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn ids(table: &CharTable<'_>, text: &[u8]) -> Result<Vec<u16>, Error> {
        let mut out = Vec::new();
        table.for_each_id(text, |id| {
            out.push(id);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn notebook_table_has_unk_and_pad_after_the_symbols() {
        let table = CharTable::new(NOTEBOOK_CHARS, true, true, true).unwrap();
        assert_eq!(NOTEBOOK_CHARS.len(), 44);
        assert_eq!(table.len(), 46);
        assert!(!table.is_empty());
        assert_eq!(table.unk_id(), Some(44));
        assert_eq!(table.pad_id(), Some(45));
        assert_eq!(table.id_of(u32::from(b'a')), Ok(0));
        assert_eq!(table.id_of(u32::from(b'Z')), Ok(25));
        assert_eq!(table.id_of(u32::from(b' ')), Ok(43));
        // The notebook's set has no '0'.
        assert_eq!(table.id_of(u32::from(b'0')), Ok(44));
        assert_eq!(table.symbol(0), Some(b'a'));
        assert_eq!(table.symbol(44), None);
        assert_eq!(table.symbol(45), None);
        assert_eq!(table.symbol(999), None);
    }

    #[test]
    fn pad_without_unk_takes_id_n() {
        let table = CharTable::new(b"ab", false, false, true).unwrap();
        assert_eq!(table.unk_id(), None);
        assert_eq!(table.pad_id(), Some(2));
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn duplicate_symbol_is_bad_vocab() {
        assert_eq!(
            CharTable::new(b"abca", true, true, true).unwrap_err(),
            Error::BadVocab
        );
    }

    #[test]
    fn full_latin1_table_is_accepted() {
        let all: Vec<u8> = (0..=255u8).collect();
        let table = CharTable::new(&all, false, true, true).unwrap();
        assert_eq!(table.len(), 258);
        for b in 0..=255u8 {
            assert_eq!(table.id_of(u32::from(b)), Ok(u16::from(b)));
        }
        assert_eq!(table.id_of(0x100), Ok(256));
        assert_eq!(table.pad_id(), Some(257));
    }

    #[test]
    fn empty_table() {
        let table = CharTable::new(b"", true, false, false).unwrap();
        assert!(table.is_empty());
        assert_eq!(table.id_of(u32::from(b'a')), Err(Error::UnknownChar(97)));
        assert_eq!(ids(&table, b""), Ok(Vec::new()));
    }

    #[test]
    fn without_unk_an_unknown_char_is_an_error() {
        let table = CharTable::new(b"ab", true, false, true).unwrap();
        assert_eq!(ids(&table, b"AbA"), Ok(std::vec![0, 1, 0]));
        assert_eq!(
            ids(&table, b"abc"),
            Err(Error::UnknownChar(u32::from(b'c')))
        );
        assert_eq!(
            ids(&table, "a€".as_bytes()),
            Err(Error::UnknownChar(0x20AC))
        );
    }

    #[test]
    fn utf8_and_latin1_bytes_give_the_same_ids() {
        let table = CharTable::new(&[0xE6, 0xE9, b' ', b'x'], true, true, false).unwrap();
        // Latin-1 bytes (invalid UTF-8) and UTF-8 for the same text.
        let latin1 = [0xC6u8, 0xC9, b' ', b'X'];
        let utf8 = "ÆÉ X".as_bytes();
        assert_eq!(ids(&table, &latin1), Ok(std::vec![0, 1, 2, 3]));
        assert_eq!(ids(&table, utf8), Ok(std::vec![0, 1, 2, 3]));
    }

    #[test]
    fn symbols_are_code_points_not_utf8_bytes() {
        // The symbol table holds Latin-1 code points: 0xE6 is 'æ'.
        let table = CharTable::new(&[0xE6, b'a'], true, true, false).unwrap();
        assert_eq!(ids(&table, "æa".as_bytes()), Ok(std::vec![0, 1]));
        assert_eq!(ids(&table, &[0xE6, b'a']), Ok(std::vec![0, 1]));
        // Above Latin-1 is UNK.
        assert_eq!(ids(&table, "ā😀".as_bytes()), Ok(std::vec![2, 2]));
    }

    #[test]
    fn code_points_split_invalid_sequences_byte_by_byte() {
        let text = [
            b'a', 0xE2, 0x82, b'b', 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xC3, 0xA9,
        ];
        let got: Vec<u32> = code_points(&text).collect();
        assert_eq!(got, std::vec![0x61, 0xE2, 0x82, 0x62, 0x1F600, 0xFF, 0xE9]);
        let mut at = 0;
        let mut by_position = Vec::new();
        while let Some((cp, len)) = code_point_at(&text, at) {
            by_position.push(cp);
            at += len;
        }
        assert_eq!(by_position, got);
        assert_eq!(code_point_at(&text, text.len()), None);
    }

    #[test]
    fn lowercasing_matches_python_below_256() {
        for cp in 0..256u32 {
            let expected = match cp {
                0x41..=0x5A => cp + 32,
                0xC0..=0xDE if cp != 0xD7 => cp + 32,
                _ => cp,
            };
            assert_eq!(lowercase(cp), expected, "U+{cp:04X}");
        }
        assert_eq!(lowercase(0x178), 0xFF);
        assert_eq!(lowercase(0x1E9E), 0xDF);
        assert_eq!(lowercase(0x212A), u32::from(b'k'));
        assert_eq!(lowercase(0x212B), 0xE5);
        assert_eq!(lowercase(0x100), 0x100);
    }

    #[test]
    fn dotted_capital_i_lowercases_to_i_and_a_combining_dot() {
        let table = CharTable::new(b"i", true, true, false).unwrap();
        assert_eq!(ids(&table, "İ".as_bytes()), Ok(std::vec![0, 1]));
        let case_kept = CharTable::new(b"i", false, true, false).unwrap();
        assert_eq!(ids(&case_kept, "İ".as_bytes()), Ok(std::vec![1]));
    }

    #[test]
    fn case_is_kept_when_the_table_does_not_lowercase() {
        let table = CharTable::new(b"aA", false, true, false).unwrap();
        assert_eq!(ids(&table, b"aAb"), Ok(std::vec![0, 1, 2]));
    }

    #[test]
    fn errors_from_the_callback_stop_the_walk() {
        let table = CharTable::new(NOTEBOOK_CHARS, true, true, true).unwrap();
        let mut seen = 0;
        let result = table.for_each_id(b"abc", |_| {
            seen += 1;
            if seen == 2 {
                Err(Error::BadToken(7))
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err(Error::BadToken(7)));
        assert_eq!(seen, 2);
    }

    #[test]
    fn no_input_panics_and_each_char_gives_one_id() {
        let table = CharTable::new(NOTEBOOK_CHARS, true, true, true).unwrap();
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let text = [a, b];
                let n = ids(&table, &text).unwrap().len();
                let dotted_capitals = code_points(&text)
                    .filter(|&cp| cp == CAPITAL_I_WITH_DOT)
                    .count();
                assert_eq!(n, code_points(&text).count() + dotted_capitals, "{text:?}");
            }
        }
        let mut rng = crate::Rng::new(1);
        for _ in 0..2000 {
            let mut text = [0u8; 24];
            for byte in text.iter_mut() {
                *byte = (rng.next_u64() >> 24) as u8;
            }
            let n = ids(&table, &text).unwrap().len();
            assert!(n <= 2 * text.len());
        }
    }
}
