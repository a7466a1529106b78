//! The network: one LSTM/GRU cell, a head and an output layer, generic over the
//! numeric path. State is the caller's value; tokens are fed one at a time.

use core::cell::Cell as Shared;

use crate::format::{Cell, Dims, Head, Input, Model, Output};
use crate::memo::MemoSlots;
use crate::numeric::{Numeric, Token};
use crate::sample::{Rng, Temperature};
use crate::tokenize::{CharTable, Vocab};
use crate::Error;

/// How many new tokens a host forms the input pre-activations of together
/// (each load of `W` then serves them all).
const FORMED_TOGETHER: usize = 4;

/// The narrowest embedding whose new tokens a host forms together. Narrower
/// rows gain nothing: on the f32 path `w`'s 16 and a 32-wide model's steps
/// took 8% and 1% longer with their new words formed together, 64- and
/// 128-wide ones 22% and 33% less time (`lstm-edge bench`, new memo).
const FORMED_TOGETHER_MIN_WIDTH: usize = 64;

/// The tokenizer a model was trained with.
// Built once per network; the char table's id map is the large variant.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Tokenizer<'a> {
    /// One-hot chars through a char table.
    Chars(CharTable<'a>),
    /// Treebank-style words through a sorted vocabulary.
    Words(Vocab<'a>),
}

impl<'a> Tokenizer<'a> {
    /// The tokenizer a blob's input table describes.
    pub fn of_input(input: &Input<'a>) -> Result<Self, Error> {
        Ok(match *input {
            Input::Chars {
                symbols,
                lowercase,
                unk,
                pad,
            } => Tokenizer::Chars(CharTable::new(symbols, lowercase, unk, pad)?),
            Input::Words {
                strings, offsets, ..
            } => Tokenizer::Words(Vocab::new(strings, offsets)?),
        })
    }

    /// Splits `text` and calls `f` with each token id.
    // Inlined so that firmware whose model kind is known drops the other tokenizer.
    #[inline(always)]
    pub fn for_each_id(
        &self,
        text: &[u8],
        f: impl FnMut(u16) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.for_each_id_of_piece(text, true, f)
    }

    /// [`Tokenizer::for_each_id`] on a piece of a text, which more of it follows
    /// unless `ends_text` (see [`crate::tokenize::for_each_word_of_piece`]).
    #[inline(always)]
    pub fn for_each_id_of_piece(
        &self,
        text: &[u8],
        ends_text: bool,
        f: impl FnMut(u16) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match self {
            Tokenizer::Chars(table) => table.for_each_id(text, f),
            Tokenizer::Words(vocab) => vocab.for_each_id_of_piece(text, ends_text, f),
        }
    }

    /// The UNK id (text outside the table or vocabulary), if the tokenizer has one.
    pub fn unk_id(&self) -> Option<u16> {
        match self {
            Tokenizer::Chars(table) => table.unk_id(),
            Tokenizer::Words(_) => Some(Vocab::UNK),
        }
    }

    /// The PAD id, if the tokenizer has one.
    pub fn pad_id(&self) -> Option<u16> {
        match self {
            Tokenizer::Chars(table) => table.pad_id(),
            Tokenizer::Words(_) => Some(Vocab::PAD),
        }
    }
}

/// Recurrent state for models of up to `H` hidden units: the hidden state
/// (double-buffered, since every unit reads the previous step's whole vector),
/// the LSTM cell state, the step count and the head's running sum.
#[derive(Debug, Clone)]
pub struct State<N: Numeric, const H: usize> {
    h: [[N::Act; H]; 2],
    c: [N::Act; H],
    current: usize,
    steps: u32,
    head_sum: N::HeadSum,
    scratch: N::Scratch<H>,
}

impl<N: Numeric, const H: usize> Default for State<N, H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N: Numeric, const H: usize> State<N, H> {
    /// A zeroed state.
    pub fn new() -> Self {
        State {
            h: [[N::Act::default(); H]; 2],
            c: [N::Act::default(); H],
            current: 0,
            steps: 0,
            head_sum: N::HeadSum::default(),
            scratch: N::Scratch::<H>::default(),
        }
    }

    /// Back to the zero state, for the next sequence.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Tokens that went through the cell since the last reset (padding included).
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The current hidden state, `hidden` entries long.
    pub fn hidden(&self, hidden: usize) -> &[N::Act] {
        self.h
            .get(self.current & 1)
            .and_then(|h| h.get(..hidden))
            .unwrap_or(&[])
    }
}

/// Kernel scratch on a word boundary, so Cortex-M kernels can load two words
/// per instruction.
#[repr(C, align(8))]
struct Aligned<T>(T);

/// Logit buffer for softmax models of up to `V` classes.
#[derive(Debug, Clone)]
pub struct Logits<N: Numeric, const V: usize> {
    values: [N::Logit; V],
}

impl<N: Numeric, const V: usize> Default for Logits<N, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N: Numeric, const V: usize> Logits<N, V> {
    /// A zeroed buffer.
    pub fn new() -> Self {
        Logits {
            values: [N::Logit::default(); V],
        }
    }
}

/// What happened to a fed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// It went through the cell.
    Stepped,
    /// The flatten head already saw `maxlen` tokens; the notebook truncates after them.
    Truncated,
}

/// A model ready to run on numeric path `N`.
#[derive(Debug, Clone)]
pub struct Network<'a, N: Numeric> {
    cell: Cell,
    head: Head,
    output: Output,
    dims: Dims,
    one_hot: bool,
    tokenizer: Tokenizer<'a>,
    weights: N::Weights<'a>,
}

impl<'a, N: Numeric> Network<'a, N> {
    /// The network of a checked model, on numeric path `N`.
    ///
    /// # Errors
    ///
    /// - [`Error::WrongPath`]: the blob holds the other numeric path.
    /// - [`Error::BadVocab`]: a char table that repeats a symbol, or a word
    ///   vocabulary that is unsorted or too long, or has a bad offset or an empty or
    ///   uppercase word.
    pub fn new(model: &Model<'a>) -> Result<Self, Error> {
        let body = model.body();
        let weights = N::weights(&body.params)?;
        let tokenizer = Tokenizer::of_input(&body.input)?;
        let one_hot = matches!(tokenizer, Tokenizer::Chars(_));
        Ok(Network {
            cell: body.cell,
            head: body.head,
            output: body.output,
            dims: model.dims(),
            one_hot,
            tokenizer,
            weights,
        })
    }

    /// The model's sizes.
    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    /// The tokenizer of the model's input table, for ids and symbols.
    pub fn tokenizer(&self) -> &Tokenizer<'a> {
        &self.tokenizer
    }

    /// The model's head.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The model's output layer: a sigmoid score or softmax classes.
    pub fn output(&self) -> Output {
        self.output
    }

    fn check<const H: usize>(&self, _: &State<N, H>) -> Result<(), Error> {
        if self.dims.hidden > H {
            return Err(Error::StateTooSmall {
                needed: self.dims.hidden,
                capacity: H,
            });
        }
        Ok(())
    }

    /// Feeds one token id. A flatten head takes the first `maxlen` tokens and answers
    /// [`Fed::Truncated`] after; for a [`Head::FlattenTail`] model the caller must
    /// start at the text's last `maxlen` tokens itself (or use
    /// [`Network::feed_text`], which does).
    pub fn feed<const H: usize>(&self, state: &mut State<N, H>, id: u16) -> Result<Fed, Error> {
        self.feed_with(state, id, None)
    }

    /// Whether a memo of the input pre-activations serves this model: word
    /// models only, whose `W·x` is most of a step, on targets whose steps form
    /// every row at once (not bare metal's unit-by-unit steps).
    pub(crate) fn memoises_input(&self) -> bool {
        !self.one_hot && !cfg!(unit_steps)
    }

    /// [`Network::feed`], taking the token's input pre-activations from
    /// `memo` where they are there, and leaving them there where they are not.
    pub(crate) fn feed_with<const H: usize>(
        &self,
        state: &mut State<N, H>,
        id: u16,
        memo: Option<&mut MemoSlots<'_, N::Pre>>,
    ) -> Result<Fed, Error> {
        self.check(state)?;
        let id = id as usize;
        if id >= self.dims.tokens {
            return Err(Error::BadToken(id as u32));
        }
        if let Some(maxlen) = self.head.flatten_maxlen() {
            if state.steps >= maxlen {
                return Ok(Fed::Truncated);
            }
        }
        let x = if self.one_hot {
            Token::OneHot(id)
        } else {
            N::embedding_row(&self.weights, &self.dims, id)
        };
        if let Some(memo) = memo.filter(|_| self.memoises_input()) {
            self.memo_input(state, x, id, memo);
        }
        self.step(state, x);
        self.accumulate_head(state);
        state.steps = state.steps.saturating_add(1);
        Ok(Fed::Stepped)
    }

    /// Tokenizes `text`, a whole text or a text's last piece, and feeds its tokens;
    /// returns how many went through the cell. A [`Head::FlattenTail`] model gets
    /// only the last `maxlen` tokens of `text` (the text is tokenized twice: once to
    /// count); feed it whole texts. Pieces before the last go through
    /// [`Network::feed_text_piece`]. On an error (an unknown char in a table without
    /// UNK) the tokens before it have been fed: reset the state.
    // Inlined for the same reason as `Tokenizer::for_each_id` (flash).
    #[inline(always)]
    pub fn feed_text<const H: usize>(
        &self,
        state: &mut State<N, H>,
        text: &[u8],
    ) -> Result<usize, Error> {
        self.feed_tokens_of(state, text, true)
    }

    /// Feeds a whole text's token ids, as [`Network::feed_text`] feeds its text's (a
    /// [`Head::FlattenTail`] model gets the last `maxlen`); returns how many went
    /// through the cell. For a caller that has the ids already, such as one that
    /// checked every text before scoring any: the text is not tokenized again.
    pub fn feed_ids<const H: usize>(
        &self,
        state: &mut State<N, H>,
        ids: &[u16],
    ) -> Result<usize, Error> {
        self.feed_ids_with(state, ids, None)
    }

    /// [`Network::feed_ids`] through [`Network::feed_with`].
    pub(crate) fn feed_ids_with<const H: usize>(
        &self,
        state: &mut State<N, H>,
        ids: &[u16],
        mut memo: Option<&mut MemoSlots<'_, N::Pre>>,
    ) -> Result<usize, Error> {
        let ids = self.head.kept(ids);
        if let Some(memo) = memo.as_deref_mut().filter(|_| self.memoises_input()) {
            self.form_ahead(state.steps, ids, memo);
        }
        let mut stepped = 0;
        for &id in ids {
            if self.feed_with(state, id, memo.as_deref_mut())? == Fed::Stepped {
                stepped += 1;
            }
        }
        Ok(stepped)
    }

    /// Feeds a piece of a text that more of it follows (a line from a UART, a
    /// buffer), as [`Network::feed_text`] feeds the last piece: the pieces then
    /// give the whole text's tokens. Word pieces must end at whitespace, and not
    /// inside an HTML line break (`<br />`); char pieces must not end inside a UTF-8
    /// char. The text's end must be known when its last piece comes: a piece fed
    /// here is never the end, so a text that ends on a title or abbreviation
    /// (`Dr.`, `U.S.`) keeps that period on its word, where [`Network::feed_text`]
    /// splits it off. A [`Head::FlattenTail`] model, which must count a whole
    /// text's tokens first, answers [`Error::WrongModelKind`].
    #[inline(always)]
    pub fn feed_text_piece<const H: usize>(
        &self,
        state: &mut State<N, H>,
        piece: &[u8],
    ) -> Result<usize, Error> {
        if matches!(self.head, Head::FlattenTail { .. }) {
            return Err(Error::WrongModelKind);
        }
        self.feed_tokens_of(state, piece, false)
    }

    #[inline(always)]
    fn feed_tokens_of<const H: usize>(
        &self,
        state: &mut State<N, H>,
        text: &[u8],
        ends_text: bool,
    ) -> Result<usize, Error> {
        // Both passes share one callback, so the tokenizer is compiled once (flash).
        let counting = Shared::new(matches!(self.head, Head::FlattenTail { .. }));
        let (counted, skip, stepped) = (Shared::new(0usize), Shared::new(0usize), Shared::new(0));
        let mut on_id = |id: u16| {
            if counting.get() {
                counted.set(counted.get() + 1);
            } else if skip.get() > 0 {
                skip.set(skip.get() - 1);
            } else if self.feed(state, id)? == Fed::Stepped {
                stepped.set(stepped.get() + 1);
            }
            Ok(())
        };
        if counting.get() {
            self.tokenizer
                .for_each_id_of_piece(text, ends_text, &mut on_id)?;
            counting.set(false);
            skip.set(self.head.skipped_tokens(counted.get()));
        }
        self.tokenizer
            .for_each_id_of_piece(text, ends_text, &mut on_id)?;
        Ok(stepped.get())
    }

    /// Forms the input pre-activations of the tokens among `ids` that `memo`
    /// lacks, [`FORMED_TOGETHER`] at a time ([`Numeric::form_inputs`]: each
    /// load of `W` then serves them all), into `memo`, ahead of their steps;
    /// `steps` is the state's count, so that tokens a flatten head truncates
    /// are left out. The last few, short of a group, are left for their steps
    /// to form, and so are all of an embedding narrower than
    /// [`FORMED_TOGETHER_MIN_WIDTH`].
    fn form_ahead(&self, steps: u32, ids: &[u16], memo: &mut MemoSlots<'_, N::Pre>) {
        if self.dims.input < FORMED_TOGETHER_MIN_WIDTH {
            return;
        }
        let stepping = match self.head.flatten_maxlen() {
            Some(maxlen) => maxlen.saturating_sub(steps) as usize,
            None => ids.len(),
        };
        let mut group = [0usize; FORMED_TOGETHER];
        let mut waiting = 0;
        for &id in ids.iter().take(stepping) {
            let id = id as usize;
            let new = id < self.dims.tokens && memo.formed.get(id).is_some_and(|formed| !*formed);
            let queued = group.iter().take(waiting).any(|&t| t == id);
            let Some(slot) = group.get_mut(waiting).filter(|_| new && !queued) else {
                continue;
            };
            *slot = id;
            waiting += 1;
            if waiting < FORMED_TOGETHER {
                continue;
            }
            waiting = 0;
            let rows = memo.rows;
            let ranges = group.map(|t| {
                let start = t.saturating_mul(rows);
                start..start.saturating_add(rows)
            });
            let Ok(outs) = memo.pres.get_disjoint_mut(ranges) else {
                return;
            };
            let tokens = group.map(|t| N::embedding_row(&self.weights, &self.dims, t));
            if !N::form_inputs(&self.weights, &self.dims, tokens, outs) {
                return;
            }
            for &t in &group {
                if let Some(formed) = memo.formed.get_mut(t) {
                    *formed = true;
                }
            }
        }
    }

    /// Puts token `id`'s input pre-activations in the state's scratch for the
    /// next step: from `memo` where it holds them, else formed and kept there.
    fn memo_input<const H: usize>(
        &self,
        state: &mut State<N, H>,
        x: Token<'a>,
        id: usize,
        memo: &mut MemoSlots<'_, N::Pre>,
    ) {
        let start = id.saturating_mul(memo.rows);
        let (Some(formed), Some(slot)) = (
            memo.formed.get_mut(id),
            memo.pres.get_mut(start..start.saturating_add(memo.rows)),
        ) else {
            return;
        };
        if *formed {
            N::take_input(&self.dims, slot, &mut state.scratch);
        } else if let Some(pres) = N::form_input(&self.weights, &self.dims, x, &mut state.scratch) {
            if pres.len() == slot.len() {
                slot.copy_from_slice(pres);
                *formed = true;
            }
        }
    }

    /// One cell step: unit by unit, reading the previous hidden buffer and
    /// writing the other, so no gate scratch is needed.
    fn step<const H: usize>(&self, state: &mut State<N, H>, x: Token<'a>) {
        let hidden = self.dims.hidden;
        let [h0, h1] = &mut state.h;
        let (prev, next) = if state.current & 1 == 0 {
            (&h0[..], &mut h1[..])
        } else {
            (&h1[..], &mut h0[..])
        };
        let prev = prev.get(..hidden).unwrap_or(&[]);
        let mut scratch = Aligned([N::Act::default(); H]);
        let kernel_h = N::kernel_layout(prev, scratch.0.get_mut(..hidden).unwrap_or(&mut []));
        let step = N::begin_step(&self.weights, &self.dims, x, kernel_h, &mut state.scratch);
        let scratch = &state.scratch;
        let done = match self.cell {
            Cell::Lstm => N::lstm_cells(
                scratch,
                state.c.get_mut(..hidden).unwrap_or(&mut []),
                next.get_mut(..hidden).unwrap_or(&mut []),
            ),
            Cell::Gru => N::gru_cells(scratch, prev, next.get_mut(..hidden).unwrap_or(&mut [])),
        };
        let units = next
            .iter_mut()
            .zip(state.c.iter_mut())
            .zip(prev)
            .take(hidden)
            .enumerate()
            .skip(done);
        for (j, ((h_out, c), &h_prev)) in units {
            match self.cell {
                Cell::Lstm => {
                    let [i, o, f, g] = N::lstm_gates(scratch, j).unwrap_or_else(|| {
                        let ([xi, xo, xf, xc], [hi, ho, hf, hc]) =
                            N::unit_pres::<4, H>(&step, scratch, j, kernel_h);
                        [
                            N::sigmoid(N::add(xi, hi)),
                            N::sigmoid(N::add(xo, ho)),
                            N::sigmoid(N::add(xf, hf)),
                            N::tanh(N::add(xc, hc)),
                        ]
                    });
                    *c = N::lstm_cell(f, *c, i, g);
                    *h_out = N::lstm_hidden(o, *c);
                }
                Cell::Gru => {
                    let ([xz, xr, xn], [zh, rh, nh]) =
                        N::unit_pres::<3, H>(&step, scratch, j, kernel_h);
                    let z = N::sigmoid(N::add(xz, zh));
                    let r = N::sigmoid(N::add(xr, rh));
                    let n = N::tanh(N::add(xn, N::gate_mul(r, nh)));
                    *h_out = N::gru_hidden(z, n, h_prev);
                }
            }
        }
        state.current ^= 1;
    }

    /// The current hidden state in the kernels' layout (see `Numeric::kernel_layout`).
    fn kernel_hidden<'s, const H: usize>(
        &self,
        state: &'s State<N, H>,
        scratch: &'s mut Aligned<[N::Act; H]>,
    ) -> &'s [N::Act] {
        let hidden = self.dims.hidden;
        N::kernel_layout(
            state.hidden(hidden),
            scratch.0.get_mut(..hidden).unwrap_or(&mut []),
        )
    }

    fn accumulate_head<const H: usize>(&self, state: &mut State<N, H>) {
        let offset = match self.head {
            Head::Flatten { .. } | Head::FlattenTail { .. } => {
                state.steps as usize * self.dims.hidden
            }
            Head::Mean => 0,
            Head::Last => return,
        };
        let mut scratch = Aligned([N::Act::default(); H]);
        let h = self.kernel_hidden(state, &mut scratch);
        let dot = N::head_dot(&self.weights, &self.dims, 0, offset, h);
        state.head_sum = N::head_sum_add(state.head_sum, dot);
    }

    /// Sentiment score of the fed sequence: the probability of "positive", a `u32`
    /// with 30 fraction bits on the integer path (see [`Numeric::prob_to_f64`]). The
    /// flatten head first runs the PAD steps up to `maxlen`, as the notebook's
    /// post-padding does, so a finished state takes no more tokens.
    pub fn finish<const H: usize>(&self, state: &mut State<N, H>) -> Result<N::Prob, Error> {
        self.finish_with(state, None)
    }

    /// [`Network::finish`], padding through [`Network::feed_with`].
    pub(crate) fn finish_with<const H: usize>(
        &self,
        state: &mut State<N, H>,
        mut memo: Option<&mut MemoSlots<'_, N::Pre>>,
    ) -> Result<N::Prob, Error> {
        self.check(state)?;
        if self.output != Output::Sigmoid {
            return Err(Error::WrongModelKind);
        }
        let features = match self.head {
            Head::Flatten { maxlen } | Head::FlattenTail { maxlen } => {
                let pad = self.tokenizer.pad_id().ok_or(Error::WrongModelKind)?;
                while state.steps < maxlen {
                    self.feed_with(state, pad, memo.as_deref_mut())?;
                }
                N::head_sum_value(state.head_sum)
            }
            Head::Mean => N::logit_div(N::head_sum_value(state.head_sum), state.steps.max(1)),
            Head::Last => {
                let mut scratch = Aligned([N::Act::default(); H]);
                let h = self.kernel_hidden(state, &mut scratch);
                N::head_dot(&self.weights, &self.dims, 0, 0, h)
            }
        };
        Ok(N::sigmoid_prob(N::logit_add(
            features,
            N::head_bias(&self.weights, 0),
        )))
    }

    /// Resets the state, feeds `text` and returns its score.
    pub fn score_text<const H: usize>(
        &self,
        state: &mut State<N, H>,
        text: &[u8],
    ) -> Result<N::Prob, Error> {
        state.reset();
        self.feed_text(state, text)?;
        self.finish(state)
    }

    /// Next-token logits of a softmax model from the current state.
    pub fn logits<'l, const H: usize, const V: usize>(
        &self,
        state: &State<N, H>,
        logits: &'l mut Logits<N, V>,
    ) -> Result<&'l [N::Logit], Error> {
        self.check(state)?;
        let Output::Softmax { classes } = self.output else {
            return Err(Error::WrongModelKind);
        };
        let classes = classes as usize;
        if classes > V {
            return Err(Error::BufferTooSmall {
                needed: classes,
                capacity: V,
            });
        }
        let mut scratch = Aligned([N::Act::default(); H]);
        let h = self.kernel_hidden(state, &mut scratch);
        let (w, d) = (&self.weights, &self.dims);
        let out = logits.values.get_mut(..classes).unwrap_or(&mut []);
        N::head_rows(w, d, h, out);
        for (k, logit) in out.iter_mut().enumerate() {
            *logit = N::logit_add(*logit, N::head_bias(w, k));
        }
        Ok(out)
    }

    /// Next-token probabilities into `out` (at least `classes` long).
    pub fn probabilities<const H: usize, const V: usize>(
        &self,
        state: &State<N, H>,
        logits: &mut Logits<N, V>,
        out: &mut [N::Prob],
    ) -> Result<(), Error> {
        let values = self.logits(state, logits)?;
        let capacity = out.len();
        let out = out.get_mut(..values.len()).ok_or(Error::BufferTooSmall {
            needed: values.len(),
            capacity,
        })?;
        N::softmax(values, out);
        Ok(())
    }

    /// Samples the next token at `temperature`, feeds it back, and returns its id.
    pub fn sample_next<const H: usize, const V: usize>(
        &self,
        state: &mut State<N, H>,
        logits: &mut Logits<N, V>,
        temperature: Temperature,
        rng: &mut Rng,
    ) -> Result<u16, Error> {
        let values = self.logits(state, logits)?;
        let id = N::sample(values, temperature, rng) as u16;
        self.feed(state, id)?;
        Ok(id)
    }
}
