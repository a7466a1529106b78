//! Tokenizers shared by the trainer and the device, so both split text identically.
//!
//! Text is bytes (`&[u8]`), never `&str`: invalid UTF-8 is read as Latin-1, byte by byte.
//! - [`chars`]: char ids through a [`CharTable`] (workloads C and G).
//! - [`words`]: Treebank-style words and their ids through a [`Vocab`] (workload W).

pub mod chars;
pub mod words;

pub use chars::{code_points, lowercase, CharTable, NOTEBOOK_CHARS};
#[cfg(any(feature = "std", test))]
pub use words::{encode_vocab, vocabulary_form};
pub use words::{for_each_word, for_each_word_of_piece, Vocab};
