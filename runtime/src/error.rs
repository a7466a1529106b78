//! Typed errors: every fallible runtime call returns one of these, never panics.

/// Everything that can go wrong in the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The blob is shorter than its header or than the body length it declares.
    Truncated,
    /// The blob does not start with the lstm-edge magic.
    BadMagic,
    /// The blob was written by an unsupported format version.
    UnsupportedVersion(u16),
    /// The body's CRC-32 does not match the header.
    BadChecksum,
    /// Bytes follow the declared body (`Model::from_prefix` reads a blob that
    /// padding follows).
    TrailingBytes,
    /// The body could not be decoded.
    Malformed,
    /// A tensor's byte length does not match the dimensions it must have.
    BadDimension(&'static str),
    /// A dimension is zero or over the runtime's limits.
    OutOfRange(&'static str),
    /// The model uses the other numeric path (integer vs f32).
    WrongPath,
    /// The caller's state is too small for the model's hidden size.
    StateTooSmall {
        /// The model's hidden size.
        needed: usize,
        /// The state's `H`.
        capacity: usize,
    },
    /// A caller's buffer (the [`crate::Logits`] or a probabilities slice) holds fewer
    /// entries than the model's softmax classes.
    BufferTooSmall {
        /// The model's softmax classes.
        needed: usize,
        /// The buffer's entries.
        capacity: usize,
    },
    /// An [`crate::InputMemo`]'s buffers hold fewer entries than the model's
    /// tokens (and their tokens times gate rows) need.
    MemoTooSmall {
        /// Entries the buffer needs.
        needed: usize,
        /// Entries the buffer holds.
        capacity: usize,
    },
    /// A token id is outside the model's input table.
    BadToken(u32),
    /// The model kind does not support this call (e.g. sampling from a sentiment model).
    WrongModelKind,
    /// A character is not in the model's table and the table has no UNK entry.
    UnknownChar(u32),
    /// The word vocabulary table is not sorted, or has a bad offset.
    BadVocab,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated => f.write_str("model blob is truncated"),
            Error::BadMagic => f.write_str("not an lstm-edge model blob (bad magic)"),
            Error::UnsupportedVersion(v) => write!(
                f,
                "unsupported model format version {v} (this runtime reads version {})",
                crate::format::VERSION
            ),
            Error::BadChecksum => f.write_str("model blob is corrupt (CRC-32 mismatch)"),
            Error::TrailingBytes => f.write_str("model blob has bytes after its body"),
            Error::Malformed => f.write_str("model blob body cannot be decoded"),
            Error::BadDimension(what) => write!(f, "model tensor `{what}` has the wrong size"),
            Error::OutOfRange(what) => write!(f, "model field `{what}` is out of range"),
            Error::WrongPath => f.write_str("model uses the other numeric path (int vs f32)"),
            Error::StateTooSmall { needed, capacity } => write!(
                f,
                "state holds {capacity} hidden units but the model needs {needed}"
            ),
            Error::BufferTooSmall { needed, capacity } => write!(
                f,
                "buffer holds {capacity} entries but the model has {needed} output classes"
            ),
            Error::MemoTooSmall { needed, capacity } => write!(
                f,
                "input memo buffer holds {capacity} entries but the model needs {needed}"
            ),
            Error::BadToken(t) => write!(f, "token id {t} is outside the model's input table"),
            Error::WrongModelKind => f.write_str("this model kind does not support that call"),
            Error::UnknownChar(c) => write!(
                f,
                "character U+{c:04X} is not in the model's table (and it has no UNK)"
            ),
            Error::BadVocab => f.write_str("word vocabulary is unsorted or has a bad offset"),
        }
    }
}

impl core::error::Error for Error {}
