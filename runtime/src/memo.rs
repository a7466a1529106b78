//! A memo of a word model's input pre-activations. Most of a word step's work
//! is `W·x`, which depends on the token alone, so a host that scores many
//! texts forms it once per word and copies it after. The caller owns the
//! buffers (nothing is allocated here), and the results are those of
//! [`Network`]'s own calls, bit for bit. The memo pays on hosts, whose steps
//! form every row at once; on bare metal, whose steps go unit by unit, it
//! asks for no buffers.
//!
//! ```
//! use lstm_edge_runtime::numeric::Int;
//! use lstm_edge_runtime::{InputMemo, Model, Network, State};
//!
//! # fn main() -> Result<(), lstm_edge_runtime::Error> {
//! let blob = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/w/model.blob"));
//! let model = Model::from_bytes(blob)?;
//! let net = Network::<Int>::new(&model)?;
//! // Kept across texts: a word's first step fills its entries.
//! let (pres_len, tokens) = InputMemo::sizes(&net);
//! let (mut pres, mut formed) = (vec![0; pres_len], vec![false; tokens]);
//! let mut memo = InputMemo::new(&net, &mut pres, &mut formed)?;
//! let mut state = State::<Int, 32>::new();
//! for review in [&b"A dull film. Dull, dull, dull."[..], b"A wonderful film."] {
//!     let mut ids = Vec::new();
//!     net.tokenizer().for_each_id(review, |id| {
//!         ids.push(id);
//!         Ok(())
//!     })?;
//!     state.reset();
//!     memo.feed_ids(&mut state, &ids)?;
//!     let score = memo.finish(&mut state)?;
//!     assert_eq!(score, net.score_text(&mut State::<Int, 32>::new(), review)?);
//! }
//! # Ok(())
//! # }
//! ```

use crate::net::{Fed, Network, State};
use crate::numeric::Numeric;
use crate::Error;

/// Where a network keeps the input pre-activations it formed: `rows` entries
/// per token id in `pres`, and `formed[id]` once they are there.
pub(crate) struct MemoSlots<'m, P> {
    pub rows: usize,
    pub pres: &'m mut [P],
    pub formed: &'m mut [bool],
}

/// A network that memoises its tokens' input pre-activations in the caller's
/// buffers. Char models have nothing to memoise (a one-hot token's input is a
/// column of `W`), nor has bare metal, whose steps go unit by unit: they need
/// no buffers and run as [`Network`] does.
pub struct InputMemo<'n, 'a, N: Numeric> {
    net: &'n Network<'a, N>,
    slots: MemoSlots<'n, N::Pre>,
}

impl<'n, 'a, N: Numeric> InputMemo<'n, 'a, N> {
    /// The entries `net` needs in the `pres` and `formed` buffers: for a word
    /// model its tokens times its gate rows, and its tokens; `(0, 0)` for a
    /// char model, and on bare metal.
    pub fn sizes(net: &Network<'_, N>) -> (usize, usize) {
        if !net.memoises_input() {
            return (0, 0);
        }
        let dims = net.dims();
        (dims.tokens.saturating_mul(dims.rows()), dims.tokens)
    }

    /// A memo in `pres` and `formed`, which must start all `false` (or hold
    /// what an earlier memo of the same `net` formed in them); see
    /// [`InputMemo::sizes`].
    ///
    /// # Errors
    ///
    /// [`Error::MemoTooSmall`]: a buffer is shorter than `net` needs.
    pub fn new(
        net: &'n Network<'a, N>,
        pres: &'n mut [N::Pre],
        formed: &'n mut [bool],
    ) -> Result<Self, Error> {
        let (pres_needed, tokens) = Self::sizes(net);
        for (needed, capacity) in [(pres_needed, pres.len()), (tokens, formed.len())] {
            if capacity < needed {
                return Err(Error::MemoTooSmall { needed, capacity });
            }
        }
        Ok(InputMemo {
            net,
            slots: MemoSlots {
                rows: net.dims().rows(),
                pres,
                formed,
            },
        })
    }

    /// The network this memo serves.
    pub fn network(&self) -> &'n Network<'a, N> {
        self.net
    }

    /// [`Network::feed`], memoised.
    pub fn feed<const H: usize>(&mut self, state: &mut State<N, H>, id: u16) -> Result<Fed, Error> {
        self.net.feed_with(state, id, Some(&mut self.slots))
    }

    /// [`Network::feed_ids`], memoised: the words the memo lacks are formed
    /// first, together where the path has a kernel for several at once (each
    /// load of `W` then serves them all), and the steps take them from it.
    pub fn feed_ids<const H: usize>(
        &mut self,
        state: &mut State<N, H>,
        ids: &[u16],
    ) -> Result<usize, Error> {
        self.net.feed_ids_with(state, ids, Some(&mut self.slots))
    }

    /// [`Network::finish`], memoised (a flatten head's padding steps).
    pub fn finish<const H: usize>(&mut self, state: &mut State<N, H>) -> Result<N::Prob, Error> {
        self.net.finish_with(state, Some(&mut self.slots))
    }
}
