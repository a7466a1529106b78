//! Host conveniences (`std` feature): run a blob of either numeric path on
//! token ids and get its outputs as f64, for evaluation, quantization and checks.

use core::cell::RefCell;
use std::boxed::Box;
use std::vec::Vec;

use crate::format::{Output, Params, MAX_HIDDEN};
use crate::numeric::{Int, Numeric, F32};
use crate::{Error, InputMemo, Logits, Model, Network, State};

/// An [`InputMemo`]'s buffers on the heap, kept across texts. Their pages are
/// zeroed lazily, so the rows of words never fed cost no memory.
#[derive(Debug, Clone)]
pub struct MemoBuffers<N: Numeric> {
    pres: Vec<N::Pre>,
    formed: Vec<bool>,
}

impl<N: Numeric> MemoBuffers<N> {
    /// Empty buffers sized for `net`'s memo.
    pub fn new(net: &Network<'_, N>) -> Self {
        let (pres, tokens) = InputMemo::sizes(net);
        MemoBuffers {
            pres: std::vec![N::Pre::default(); pres],
            formed: std::vec![false; tokens],
        }
    }

    /// Forgets every entry, as new buffers would (without allocating them
    /// again): a memo in them forms each token's entries anew.
    pub fn clear(&mut self) {
        self.formed.fill(false);
    }

    /// The memo of `net` in these buffers, which must have been made for
    /// `net` (another model of the same size would read this one's values).
    pub fn memo<'n, 'a>(
        &'n mut self,
        net: &'n Network<'a, N>,
    ) -> Result<InputMemo<'n, 'a, N>, Error> {
        InputMemo::new(net, &mut self.pres, &mut self.formed)
    }
}

/// Largest softmax the host helpers handle.
pub const MAX_CLASSES: usize = 1024;

/// A blob ready to run on the host, whatever its numeric path. A word
/// model memoises its input pre-activations across calls ([`InputMemo`]), so
/// a `HostModel` serves one thread.
pub struct HostModel<'a> {
    model: Model<'a>,
    // Built once: building a network checks its whole vocabulary.
    network: PathNetwork<'a>,
}

/// The network of a blob on the numeric path the blob holds.
enum PathNetwork<'a> {
    Int(MemoisedNetwork<'a, Int>),
    F32(MemoisedNetwork<'a, F32>),
}

/// A network and its memo, kept across calls.
struct MemoisedNetwork<'a, N: Numeric> {
    net: Network<'a, N>,
    memo: RefCell<MemoBuffers<N>>,
}

impl<'a, N: Numeric> MemoisedNetwork<'a, N> {
    fn new(model: &Model<'a>) -> Result<Self, Error> {
        let net = Network::new(model)?;
        let memo = RefCell::new(MemoBuffers::new(&net));
        Ok(MemoisedNetwork { net, memo })
    }

    /// See [`HostModel::outputs`].
    fn outputs(&self, ids: &[u16]) -> Result<Vec<f64>, Error> {
        let net = &self.net;
        let mut buffers = self.memo.borrow_mut();
        let mut memo = buffers.memo(net)?;
        let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
        memo.feed_ids(&mut state, ids)?;
        match net.output() {
            Output::Sigmoid => Ok(std::vec![N::prob_to_f64(memo.finish(&mut state)?)]),
            Output::Softmax { classes } => {
                let mut logits = Box::new(Logits::<N, MAX_CLASSES>::new());
                let mut probs = std::vec![N::Prob::default(); classes as usize];
                net.probabilities(&state, &mut logits, &mut probs)?;
                Ok(probs.into_iter().map(N::prob_to_f64).collect())
            }
        }
    }
}

impl<'a> HostModel<'a> {
    /// Checks `blob` as [`Model::from_bytes`] and [`Network::new`] do, on the
    /// blob's numeric path.
    pub fn new(blob: &'a [u8]) -> Result<Self, Error> {
        let model = Model::from_bytes(blob)?;
        let network = match model.body().params {
            Params::Int(_) => PathNetwork::Int(MemoisedNetwork::new(&model)?),
            Params::F32(_) => PathNetwork::F32(MemoisedNetwork::new(&model)?),
        };
        Ok(HostModel { model, network })
    }

    /// The checked model.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    /// Whether the blob holds the integer path.
    pub fn is_integer(&self) -> bool {
        matches!(self.network, PathNetwork::Int(_))
    }

    /// Feeds `ids` from a zero state, then returns the sigmoid score (flatten
    /// heads pad to maxlen; a flatten-tail head reads only the last maxlen ids) or
    /// the softmax probabilities for the next token.
    pub fn outputs(&self, ids: &[u16]) -> Result<Vec<f64>, Error> {
        match &self.network {
            PathNetwork::Int(net) => net.outputs(ids),
            PathNetwork::F32(net) => net.outputs(ids),
        }
    }
}
