//! The model blob: header (magic, version, body length, CRC-32) and a postcard body
//! borrowed in place. Gate order everywhere is ONNX's: LSTM i,o,f,c; GRU z,r,h
//! (with `linear_before_reset = 1`).

use crate::Error;
use serde::{Deserialize, Serialize};

/// Recurrent cell type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    /// 4 gates in ONNX order i, o, f, c.
    Lstm,
    /// 3 gates in ONNX order z, r, h, `linear_before_reset = 1`.
    Gru,
}

impl Cell {
    /// Gates per hidden unit.
    pub const fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

impl core::fmt::Display for Cell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
        })
    }
}

/// How per-step hidden states become the output layer's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Head {
    /// The notebook's head: all `maxlen` hidden states flattened (post-padded,
    /// post-truncated), so the dense layer has `maxlen * hidden` inputs.
    Flatten {
        /// Tokens the head reads: the first `maxlen`, padded with PAD up to it.
        maxlen: u32,
    },
    /// The last hidden state.
    Last,
    /// The mean of the hidden states over the fed tokens.
    Mean,
    /// The flatten head over a text's last `maxlen` tokens: a longer text drops its
    /// start (Keras' `truncating='pre'`), a shorter one is post-padded.
    /// `Network::feed_text` and `score_text` cut whole texts so; a caller feeding
    /// tokens one by one must start at the last `maxlen` itself (`feed` stops after
    /// `maxlen`, as for [`Head::Flatten`]).
    FlattenTail {
        /// Tokens the head reads: the last `maxlen`, padded with PAD up to it.
        maxlen: u32,
    },
}

impl Head {
    /// The fixed length of a flatten head (either truncation side); `None` otherwise.
    pub fn flatten_maxlen(self) -> Option<u32> {
        match self {
            Head::Flatten { maxlen } | Head::FlattenTail { maxlen } => Some(maxlen),
            Head::Last | Head::Mean => None,
        }
    }

    /// How many leading tokens of a `tokens`-long text the head skips: those before the
    /// last `maxlen` for [`Head::FlattenTail`], none for the other heads.
    pub fn skipped_tokens(self, tokens: usize) -> usize {
        match self {
            Head::FlattenTail { maxlen } => tokens.saturating_sub(maxlen as usize),
            _ => 0,
        }
    }

    /// The part of a text's `ids` the head reads: a flatten head's `maxlen` (the last
    /// ones for [`Head::FlattenTail`]), every id for the other heads.
    pub fn kept<T>(self, ids: &[T]) -> &[T] {
        let from = ids
            .get(self.skipped_tokens(ids.len())..)
            .unwrap_or_default();
        match self.flatten_maxlen() {
            Some(maxlen) => from.get(..maxlen as usize).unwrap_or(from),
            None => from,
        }
    }
}

/// In words, as `inspect` and `import` print it.
impl core::fmt::Display for Head {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Head::Flatten { maxlen } => write!(f, "flatten (maxlen {maxlen})"),
            Head::FlattenTail { maxlen } => write!(f, "flatten over the last {maxlen} tokens"),
            Head::Last => f.write_str("last state"),
            Head::Mean => f.write_str("mean over steps"),
        }
    }
}

/// The output layer after the head's dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// One logit through a sigmoid (sentiment).
    Sigmoid,
    /// `classes` logits through a softmax (next-char generation).
    Softmax {
        /// Number of logits, one per token id below `classes` (2 up to the
        /// input's token count).
        classes: u16,
    },
}

impl Output {
    /// Number of logits.
    pub const fn width(self) -> usize {
        match self {
            Output::Sigmoid => 1,
            Output::Softmax { classes } => classes as usize,
        }
    }
}

/// In words, as `inspect` and `import` print it.
impl core::fmt::Display for Output {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Output::Sigmoid => f.write_str("sigmoid (1)"),
            Output::Softmax { classes } => write!(f, "softmax ({classes})"),
        }
    }
}

/// First bytes of every blob.
pub const MAGIC: [u8; 4] = *b"LSTE";
/// The format version this runtime reads and writes.
pub const VERSION: u16 = 5;
/// Header: magic (4), version (u16), reserved (u16), body length (u32), CRC-32 of the body (u32).
pub const HEADER_LEN: usize = 16;
/// The integer value of a one-hot input on the integer path.
pub const ONE_HOT: i32 = 1 << 16;
/// Hidden sizes above this are refused: the integer path's i32 dot products are
/// proven free of overflow only up to here (|w| <= 128, |h| <= 2^15, 256 terms < 2^31).
pub const MAX_HIDDEN: usize = 256;
/// f32 weights larger than this are refused: under it no sum the f32 path forms can
/// reach infinity (65,535 inputs of 1e6 x 1e6, or 65,535 steps of 256 x 1e6), where
/// +inf and -inf would meet as NaN. Trained weights are many orders smaller.
pub const MAX_F32_WEIGHT: f32 = 1e6;

/// The body's CRC-32: one 1 KB table on bare metal, where flash is scarce; sixteen
/// (16 KB) on hosts, which check multi-megabyte blobs several times faster.
#[cfg(target_os = "none")]
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
#[cfg(not(target_os = "none"))]
const CRC32: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// The input layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input<'a> {
    /// One-hot chars. Ids: `symbols[i]` is `i`, then UNK, then PAD when present.
    Chars {
        /// The table's Latin-1 chars in id order, each at most once.
        symbols: &'a [u8],
        /// Whether text is lowercased before lookup (see [`crate::tokenize::chars`]).
        lowercase: bool,
        /// Whether the table has an UNK id (`symbols.len()`) for chars outside it.
        unk: bool,
        /// Whether the table has a PAD id, after UNK; flatten heads need one.
        pad: bool,
    },
    /// Word embedding. Ids: 0 = PAD, 1 = UNK, `2 + i` = the i-th word of the sorted
    /// vocabulary (`strings` concatenated, `offsets` n+1 little-endian u32).
    Words {
        /// The words in ascending byte order (no ASCII uppercase), concatenated.
        strings: &'a [u8],
        /// Where each word starts in `strings`, and the end of the last: n+1
        /// little-endian u32, from 0 to `strings.len()`.
        offsets: &'a [u8],
        /// Width of an embedding row: the cell's input size.
        embed_dim: u16,
    },
}

/// f32 weights, little-endian, row-major, ONNX gate order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatParams<'a> {
    /// `[rows, embed_dim]` for word input; empty for chars.
    pub embedding: &'a [u8],
    /// ONNX `W`: `[gates * hidden, input_dim]`.
    pub w: &'a [u8],
    /// ONNX `R`: `[gates * hidden, hidden]`.
    pub r: &'a [u8],
    /// First half of ONNX `B`: `[gates * hidden]`.
    pub wb: &'a [u8],
    /// Second half of ONNX `B`: `[gates * hidden]`.
    pub rb: &'a [u8],
    /// Dense layer `[outputs, features]`.
    pub head_w: &'a [u8],
    /// Dense bias `[outputs]`.
    pub head_b: &'a [u8],
}

/// Integer weights. The gate rows' constants sit together per hidden unit
/// (`units`), so a step reads one record per row instead of five lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntParams<'a> {
    /// int8 `[rows, embed_dim]`; empty for chars. Row `v` counts in units of
    /// the table's scale divided by `2^embedding_shifts[v]`.
    pub embedding: &'a [u8],
    /// One byte per embedding row, at most [`MAX_EMBEDDING_SHIFT`]: how many
    /// times finer than the table's scale the row is stored. A table scale
    /// set by its largest row leaves the typical word a few of the 255 levels;
    /// the shift gives each row most of them back, and `W·x` is shifted back
    /// by the same amount. Empty for chars.
    pub embedding_shifts: &'a [u8],
    /// int8 ONNX `W`, row-major for word input. For one-hot chars it is stored
    /// by token instead (`[tokens][hidden][gates]`: token `t`, row
    /// `gate * hidden + unit` at `t * rows + unit * gates + gate`), so a step's
    /// whole input contribution is one contiguous run.
    pub w: &'a [u8],
    /// Zero bytes that put `r` on a 4-byte boundary of the blob: the Cortex-M
    /// kernel then loads two words per instruction (it falls back to single
    /// loads when a blob is not aligned).
    pub r_align: &'a [u8],
    /// int8 ONNX `R`, unit-major (see [`unit_major_index`]): all gate rows of
    /// a hidden unit together, interleaved in groups of four columns, so one
    /// pass over `h` serves every gate of the unit.
    pub r: &'a [u8],
    /// One [`RowConsts`] per gate row, unit-major: row `gate * hidden + unit`
    /// is entry `unit * gates + gate`.
    pub units: &'a [u8],
    /// Left shift of `W·x` before its multiplier (see [`scale_q32`]), at most
    /// [`MAX_PRE_SHIFT`]; 0 unless a multiplier would pass 1/2. `R·h` needs
    /// none: its multipliers stay below 1/2 for any `|R| < 508`.
    pub w_pre_shift: u8,
    /// int8 dense layer `[outputs, features]`.
    pub head_w: &'a [u8],
    /// Dense dot product (h in Q0.15) to a Q16 logit; one [`Rescale`] entry per output.
    pub head_scale: &'a [u8],
    /// i32 Q16 dense bias `[outputs]`.
    pub head_b: &'a [u8],
}

/// Largest per-row shift of the integer embedding (see [`IntParams::embedding_shifts`]).
pub const MAX_EMBEDDING_SHIFT: u8 = 7;

/// Largest pre-shift of a dot product: products of int8 weights with one-hot inputs,
/// or sums of up to 1,023 int8 x int8 products, stay below 2^24, so seven more bits
/// cannot overflow (a load check refuses wider embeddings with such a shift).
pub const MAX_PRE_SHIFT: u8 = 7;

/// `acc * mult / 2^32`, rounded half up: the integer path's map from a
/// (pre-shifted) dot product to Q3.12, one SMMULR on Cortex-M.
#[inline(always)]
pub fn scale_q32(acc: i32, mult: i32) -> i32 {
    ((acc as i64 * mult as i64 + (1 << 31)) >> 32) as i32
}

/// The constants of one gate row on the integer path, four little-endian i32:
/// `w_mult` maps `W·x` (`x` the int8 embedding row, or [`ONE_HOT`] for chars)
/// and `r_mult` maps `R·h` (h in Q0.15) to Q3.12 (see [`scale_q32`]);
/// `bias` is `wb + rb` in Q3.12, except for the GRU candidate gate, where it is
/// `wb` and `r_bias` holds `rb` (it is scaled by the reset gate there). `r_bias`
/// is 0 everywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowConsts {
    /// Multiplier of `W·x` (after [`IntParams::w_pre_shift`]) to Q3.12.
    pub w_mult: i32,
    /// Multiplier of `R·h` to Q3.12.
    pub r_mult: i32,
    /// The row's bias in Q3.12: `wb + rb`, or `wb` alone for a GRU candidate row.
    pub bias: i32,
    /// A GRU candidate row's `rb` in Q3.12, added to `R·h` before the reset gate
    /// scales it; 0 on every other row.
    pub r_bias: i32,
}

impl RowConsts {
    /// Bytes per entry in [`IntParams::units`].
    pub const BYTES: usize = 16;

    /// Decodes one entry of [`IntParams::units`].
    #[inline(always)]
    pub fn from_bytes(b: &[u8; Self::BYTES]) -> Self {
        let [w0, w1, w2, w3, r0, r1, r2, r3, b0, b1, b2, b3, q0, q1, q2, q3] = *b;
        RowConsts {
            w_mult: i32::from_le_bytes([w0, w1, w2, w3]),
            r_mult: i32::from_le_bytes([r0, r1, r2, r3]),
            bias: i32::from_le_bytes([b0, b1, b2, b3]),
            r_bias: i32::from_le_bytes([q0, q1, q2, q3]),
        }
    }

    /// The entry's bytes, for encoders: the inverse of [`RowConsts::from_bytes`].
    pub fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        for (chunk, v) in
            out.chunks_exact_mut(4)
                .zip([self.w_mult, self.r_mult, self.bias, self.r_bias])
        {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// The numeric path and its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Params<'a> {
    /// The f32 path ([`crate::numeric::F32`]).
    F32(#[serde(borrow)] FloatParams<'a>),
    /// The integer path ([`crate::numeric::Int`]).
    Int(#[serde(borrow)] IntParams<'a>),
}

/// The decoded body of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body<'a> {
    /// The recurrent cell.
    pub cell: Cell,
    /// Hidden units, 1 to [`MAX_HIDDEN`].
    pub hidden: u16,
    /// The input layer, which also gives the tokenizer.
    #[serde(borrow)]
    pub input: Input<'a>,
    /// How the hidden states become the dense layer's features.
    pub head: Head,
    /// The output layer.
    pub output: Output,
    /// The numeric path and its weights.
    #[serde(borrow)]
    pub params: Params<'a>,
}

/// A fixed-point multiplier: `x * mult / 2^shift`, rounded half up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescale {
    mult: i32,
    shift: u8,
}

impl Rescale {
    /// A multiplier with `shift` in 1..=62; `None` otherwise.
    pub const fn new(mult: i32, shift: u8) -> Option<Self> {
        if shift >= 1 && shift <= 62 {
            Some(Rescale { mult, shift })
        } else {
            None
        }
    }

    /// The multiplier and shift.
    pub const fn parts(self) -> (i32, u8) {
        (self.mult, self.shift)
    }

    /// Multiplies by one.
    pub const ONE: Rescale = Rescale {
        mult: 1 << 30,
        shift: 30,
    };

    /// Bytes per entry in a scale list.
    pub const BYTES: usize = 8;

    /// Applies the multiplier, saturating to i32.
    #[inline(always)]
    pub fn apply(self, x: i32) -> i32 {
        Self::apply_parts(x, self.mult, self.shift)
    }

    /// [`Rescale::apply`] of `Rescale { mult, shift }`; `shift` must be in 1..=62
    /// (which [`Rescale::new`] and the blob checks hold to).
    #[inline(always)]
    pub(crate) fn apply_parts(x: i32, mult: i32, shift: u8) -> i32 {
        let product = x as i64 * mult as i64;
        if shift > 32 {
            // The common case (multipliers below 1/4). The rounding term
            // 2^(shift-1) is a multiple of 2^32, so it can be added after taking
            // the high word: equal to the general form below (floor of a floor),
            // and |result| < 2^30, so no saturation is needed. On Cortex-M4 this
            // is one SMULL, an ADD and an ASR instead of 64-bit variable shifts.
            (((product >> 32) as i32) + (1 << (shift - 33))) >> (shift - 32)
        } else {
            let rounded = (product + (1i64 << (shift - 1))) >> shift;
            rounded.clamp(i32::MIN as i64, i32::MAX as i64) as i32
        }
    }

    /// Same for a wide value; the product is formed in i128 so it cannot overflow.
    pub fn apply_wide(self, x: i64) -> i64 {
        let rounded = (x as i128 * self.mult as i128 + (1i128 << (self.shift - 1))) >> self.shift;
        rounded.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// Reads entry `index` of a scale list; `None` when out of bounds or invalid.
    pub fn read(list: &[u8], index: usize) -> Option<Rescale> {
        let at = index.checked_mul(Self::BYTES)?;
        let entry = list.get(at..at.checked_add(Self::BYTES)?)?;
        let mult = i32::from_le_bytes(entry.get(0..4)?.try_into().ok()?);
        let shift = i32::from_le_bytes(entry.get(4..8)?.try_into().ok()?);
        Rescale::new(mult, u8::try_from(shift).ok()?)
    }

    /// Reads entry `index` of a list already checked by [`Model::from_bytes`]:
    /// no validation, so it is cheap enough for the inner loops.
    #[inline(always)]
    pub fn read_checked_list(list: &[u8], index: usize) -> Rescale {
        Self::from_checked_entry(list.as_chunks::<{ Self::BYTES }>().0.get(index))
    }

    /// Decodes one entry of a list already checked by [`Model::from_bytes`]
    /// (`None`, for a missing entry, reads as [`Rescale::ONE`]).
    #[inline(always)]
    pub fn from_checked_entry(entry: Option<&[u8; Self::BYTES]>) -> Rescale {
        let [m0, m1, m2, m3, s0, ..] = entry.copied().unwrap_or([0, 0, 0, 64, 30, 0, 0, 0]);
        Rescale {
            mult: i32::from_le_bytes([m0, m1, m2, m3]),
            shift: s0.clamp(1, 62),
        }
    }

    /// The entry's bytes, for encoders.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&self.mult.to_le_bytes());
        out[4..].copy_from_slice(&(self.shift as i32).to_le_bytes());
        out
    }
}

/// Where `R[row][col]` lies in the integer path's unit-major `r`.
///
/// Unit `j` owns `gates * hidden` bytes starting at `j * gates * hidden`. Its
/// columns come in groups of four; each group holds four bytes of every gate in
/// turn (`[g0 c0..3][g1 c0..3]...[g0 c4..7]...`). The last `hidden % 4` columns
/// follow, one run per gate. `row` is `gate * hidden + j`, ONNX's order.
pub const fn unit_major_index(gates: usize, hidden: usize, row: usize, col: usize) -> usize {
    if hidden == 0 {
        return 0;
    }
    // Wrapping, so that no arguments panic; a layout the format allows never wraps.
    let (gate, unit) = (row / hidden, row % hidden);
    let grouped = hidden / 4 * 4;
    let base = unit.wrapping_mul(gates).wrapping_mul(hidden);
    if col < grouped {
        base.wrapping_add((col / 4).wrapping_mul(4).wrapping_mul(gates))
            .wrapping_add(gate.wrapping_mul(4))
            .wrapping_add(col % 4)
    } else {
        let tail = hidden - grouped;
        base.wrapping_add(grouped.wrapping_mul(gates))
            .wrapping_add(gate.wrapping_mul(tail))
            .wrapping_add(col - grouped)
    }
}

/// A blob's header: what [`Model::from_bytes`] checks before the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format version ([`VERSION`] for every blob this runtime reads).
    pub version: u16,
    /// Length of the body after the [`HEADER_LEN`] header bytes.
    pub body_len: u32,
    /// CRC-32 (ISO-HDLC) of the body.
    pub crc: u32,
}

impl Header {
    /// Reads the header at the start of `bytes`: [`Error::BadMagic`] for another
    /// file, [`Error::UnsupportedVersion`] for another format version.
    pub fn read(bytes: &[u8]) -> Result<Self, Error> {
        let header = bytes.first_chunk::<HEADER_LEN>().ok_or(Error::Truncated)?;
        let [m0, m1, m2, m3, v0, v1, r0, r1, l0, l1, l2, l3, c0, c1, c2, c3] = *header;
        if [m0, m1, m2, m3] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16::from_le_bytes([v0, v1]);
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        if [r0, r1] != [0, 0] {
            return Err(Error::Malformed);
        }
        Ok(Header {
            version,
            body_len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        })
    }

    /// The whole blob's length, header included: where whatever follows it in
    /// flash (a partition's padding) starts.
    pub fn blob_len(&self) -> usize {
        usize::try_from(self.body_len).map_or(usize::MAX, |len| len.saturating_add(HEADER_LEN))
    }
}

/// Splits a blob into its checked body bytes.
fn checked_body(blob: &[u8]) -> Result<&[u8], Error> {
    let header = Header::read(blob)?;
    let rest = blob.get(HEADER_LEN..).ok_or(Error::Truncated)?;
    let len = usize::try_from(header.body_len).map_err(|_| Error::Truncated)?;
    let body = match rest.len().cmp(&len) {
        core::cmp::Ordering::Less => return Err(Error::Truncated),
        core::cmp::Ordering::Greater => return Err(Error::TrailingBytes),
        core::cmp::Ordering::Equal => rest,
    };
    if CRC32.checksum(body) != header.crc {
        return Err(Error::BadChecksum);
    }
    Ok(body)
}

/// A checked model, borrowing its tensors from the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model<'a> {
    body: Body<'a>,
}

impl<'a> Model<'a> {
    /// The model at the start of `bytes`, and the bytes after it: for a blob
    /// kept in a flash region larger than itself (padded with `0xFF`, say), where
    /// [`Model::from_bytes`] would refuse the padding as [`Error::TrailingBytes`].
    pub fn from_prefix(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), Error> {
        let len = Header::read(bytes)?.blob_len();
        let (blob, rest) = bytes.split_at_checked(len).ok_or(Error::Truncated)?;
        Ok((Self::from_bytes(blob)?, rest))
    }

    /// Checks magic, version, length, CRC-32 and every dimension.
    ///
    /// # Errors
    ///
    /// - [`Error::Truncated`]: shorter than the header or the body it declares.
    /// - [`Error::BadMagic`], [`Error::UnsupportedVersion`]: not a blob of this format.
    /// - [`Error::Malformed`]: nonzero reserved header bytes, or a body that does not decode.
    /// - [`Error::TrailingBytes`]: bytes after the declared body, or after the decoded
    ///   body within it.
    /// - [`Error::BadChecksum`]: the body's CRC-32 does not match the header.
    /// - [`Error::BadDimension`]: a tensor of the wrong length.
    /// - [`Error::OutOfRange`]: a size or value over the runtime's limits.
    /// - [`Error::BadVocab`]: a word input without offsets.
    pub fn from_bytes(blob: &'a [u8]) -> Result<Self, Error> {
        let bytes = checked_body(blob)?;
        let (body, rest) =
            postcard::take_from_bytes::<Body<'a>>(bytes).map_err(|_| Error::Malformed)?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes);
        }
        Dims::of(&body)?.check_params(&body.params)?;
        Ok(Model { body })
    }

    /// The decoded body.
    pub fn body(&self) -> &Body<'a> {
        &self.body
    }

    /// Sizes derived from the body (already validated).
    pub fn dims(&self) -> Dims {
        // Validated in `from_bytes`, so this cannot fail; fall back to zeros defensively.
        Dims::of(&self.body).unwrap_or(Dims::ZERO)
    }
}

/// Sizes every tensor is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Gates per hidden unit: 4 for LSTM, 3 for GRU.
    pub gates: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Input width: the char table size or the embedding width.
    pub input: usize,
    /// Distinct token ids (rows of the embedding or of the one-hot).
    pub tokens: usize,
    /// Input features of the dense layer.
    pub features: usize,
    /// Logits of the output layer (see [`Output::width`]).
    pub outputs: usize,
    /// Rows of the embedding table: `tokens` for word input, 0 for one-hot chars.
    pub embedding_rows: usize,
}

impl Dims {
    const ZERO: Dims = Dims {
        gates: 0,
        hidden: 0,
        input: 0,
        tokens: 0,
        features: 0,
        outputs: 0,
        embedding_rows: 0,
    };

    /// Derives and range-checks the sizes of a body.
    pub fn of(body: &Body<'_>) -> Result<Self, Error> {
        let hidden = body.hidden as usize;
        if hidden == 0 || hidden > MAX_HIDDEN {
            return Err(Error::OutOfRange("hidden"));
        }
        let (input, tokens, embedding_rows) = match body.input {
            Input::Chars {
                symbols, unk, pad, ..
            } => {
                let n = symbols.len() + unk as usize + pad as usize;
                (n, n, 0)
            }
            Input::Words {
                offsets, embed_dim, ..
            } => {
                let words = (offsets.len() / 4).checked_sub(1).ok_or(Error::BadVocab)?;
                (embed_dim as usize, words + 2, words + 2)
            }
        };
        if input == 0 || tokens > u16::MAX as usize {
            return Err(Error::OutOfRange("input"));
        }
        let features = match body.head.flatten_maxlen() {
            Some(maxlen) if maxlen == 0 || maxlen > u16::MAX as u32 => {
                return Err(Error::OutOfRange("maxlen"))
            }
            Some(maxlen) => maxlen as usize * hidden,
            None => hidden,
        };
        let outputs = body.output.width();
        match (body.head, body.output) {
            (
                Head::Flatten { .. } | Head::FlattenTail { .. } | Head::Mean,
                Output::Softmax { .. },
            ) => {
                return Err(Error::OutOfRange(
                    "head: flatten and mean need a sigmoid output",
                ))
            }
            (_, Output::Softmax { classes }) if classes < 2 || classes as usize > tokens => {
                return Err(Error::OutOfRange("classes"))
            }
            _ => {}
        }
        if let (Some(_), Input::Chars { pad: false, .. }) = (body.head.flatten_maxlen(), body.input)
        {
            return Err(Error::OutOfRange("flatten head needs a PAD char"));
        }
        Ok(Dims {
            gates: body.cell.gates(),
            hidden,
            input,
            tokens,
            features,
            outputs,
            embedding_rows,
        })
    }

    /// Rows of `W` and `R`.
    pub fn rows(&self) -> usize {
        self.gates.wrapping_mul(self.hidden)
    }

    /// The largest pre-shift of `W·x` this input allows: a word's `x·W` sums `input`
    /// int8 products (each at most 2^14), which the shift must not carry past i32; a
    /// one-hot char adds a single weight. `None` when no shift fits.
    pub fn max_w_pre_shift(&self) -> Option<u8> {
        if self.embedding_rows == 0 {
            return Some(MAX_PRE_SHIFT);
        }
        let widest_sum = (self.input as u64) << 14;
        (0..=MAX_PRE_SHIFT)
            .rev()
            .find(|&shift| widest_sum << shift <= i32::MAX as u64)
    }

    fn check_params(&self, params: &Params<'_>) -> Result<(), Error> {
        let rows = self.rows();
        let embedding = |width: usize, len: usize| -> Result<(), Error> {
            // Up to 65,535 x 65,535 entries: past usize on a 32-bit target.
            let entries = self
                .embedding_rows
                .checked_mul(self.input)
                .and_then(|n| n.checked_mul(width))
                .ok_or(Error::OutOfRange("embedding size"))?;
            expect_len("embedding", len, entries)
        };
        match params {
            Params::F32(p) => {
                embedding(4, p.embedding.len())?;
                let tensors = [p.embedding, p.w, p.r, p.wb, p.rb, p.head_w, p.head_b];
                if !tensors.iter().all(|t| all_within_max(t)) {
                    return Err(Error::OutOfRange(
                        "f32 weights (NaN, infinite, or over 1e6 in size)",
                    ));
                }
                expect_len("w", p.w.len(), rows * self.input * 4)?;
                expect_len("r", p.r.len(), rows * self.hidden * 4)?;
                expect_len("wb", p.wb.len(), rows * 4)?;
                expect_len("rb", p.rb.len(), rows * 4)?;
                expect_len("head_w", p.head_w.len(), self.outputs * self.features * 4)?;
                expect_len("head_b", p.head_b.len(), self.outputs * 4)
            }
            Params::Int(p) => {
                embedding(1, p.embedding.len())?;
                expect_len(
                    "embedding_shifts",
                    p.embedding_shifts.len(),
                    self.embedding_rows,
                )?;
                if p.embedding_shifts.iter().any(|&k| k > MAX_EMBEDDING_SHIFT) {
                    return Err(Error::OutOfRange("embedding_shifts"));
                }
                expect_len("w", p.w.len(), rows * self.input)?;
                if p.r_align.len() > 3 {
                    return Err(Error::BadDimension("r_align"));
                }
                expect_len("r", p.r.len(), rows * self.hidden)?;
                expect_len("units", p.units.len(), rows * RowConsts::BYTES)?;
                if self.max_w_pre_shift().is_none_or(|max| p.w_pre_shift > max) {
                    return Err(Error::OutOfRange("w_pre_shift"));
                }
                // Only GRU's candidate rows scale `R·h + r_bias` by a gate; every
                // other row's bias lives in `bias`, so kernels may add `r_bias`
                // to all rows alike.
                let (records, _) = p.units.as_chunks::<{ RowConsts::BYTES }>();
                let candidate = |k: usize| self.gates == 3 && k % 3 == 2;
                if records
                    .iter()
                    .enumerate()
                    .any(|(k, r)| RowConsts::from_bytes(r).r_bias != 0 && !candidate(k))
                {
                    return Err(Error::OutOfRange("units r_bias"));
                }

                expect_len("head_w", p.head_w.len(), self.outputs * self.features)?;
                expect_len(
                    "head_scale",
                    p.head_scale.len(),
                    self.outputs * Rescale::BYTES,
                )?;
                all_scales_valid("head_scale", p.head_scale)?;
                expect_len("head_b", p.head_b.len(), self.outputs * 4)
            }
        }
    }
}

fn expect_len(what: &'static str, got: usize, want: usize) -> Result<(), Error> {
    if got == want {
        Ok(())
    } else {
        Err(Error::BadDimension(what))
    }
}

/// Whether every little-endian f32 of a tensor is finite (the length is checked apart).
/// Whether every value is a number of size at most [`MAX_F32_WEIGHT`] (not NaN).
fn all_within_max(tensor: &[u8]) -> bool {
    let (values, _) = tensor.as_chunks::<4>();
    values
        .iter()
        .all(|v| f32::from_le_bytes(*v).abs() <= MAX_F32_WEIGHT)
}

fn all_scales_valid(what: &'static str, list: &[u8]) -> Result<(), Error> {
    let entries = list.len() / Rescale::BYTES;
    if (0..entries).all(|i| Rescale::read(list, i).is_some()) {
        Ok(())
    } else {
        Err(Error::OutOfRange(what))
    }
}

/// Encodes a body into a complete blob (header + postcard body).
#[cfg(feature = "std")]
pub fn encode(body: &Body<'_>) -> Result<std::vec::Vec<u8>, Error> {
    let payload = postcard::to_allocvec(body).map_err(|_| Error::Malformed)?;
    let len = u32::try_from(payload.len()).map_err(|_| Error::OutOfRange("body length"))?;
    let mut blob = std::vec::Vec::with_capacity(HEADER_LEN + payload.len());
    blob.extend_from_slice(&MAGIC);
    blob.extend_from_slice(&VERSION.to_le_bytes());
    blob.extend_from_slice(&[0, 0]);
    blob.extend_from_slice(&len.to_le_bytes());
    blob.extend_from_slice(&CRC32.checksum(&payload).to_le_bytes());
    blob.extend_from_slice(&payload);
    Ok(blob)
}
