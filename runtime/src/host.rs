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
    Int(Network<'a, Int>, RefCell<MemoBuffers<Int>>),
    F32(Network<'a, F32>, RefCell<MemoBuffers<F32>>),
}

impl<'a> PathNetwork<'a> {
    fn with_memo<N: Numeric>(net: Network<'a, N>) -> (Network<'a, N>, RefCell<MemoBuffers<N>>) {
        let memo = RefCell::new(MemoBuffers::new(&net));
        (net, memo)
    }
}

impl<'a> HostModel<'a> {
    /// Checks `blob` as [`Model::from_bytes`] and [`Network::new`] do, on the
    /// blob's numeric path.
    pub fn new(blob: &'a [u8]) -> Result<Self, Error> {
        let model = Model::from_bytes(blob)?;
        let network = match model.body().params {
            Params::Int(_) => {
                let (net, memo) = PathNetwork::with_memo(Network::new(&model)?);
                PathNetwork::Int(net, memo)
            }
            Params::F32(_) => {
                let (net, memo) = PathNetwork::with_memo(Network::new(&model)?);
                PathNetwork::F32(net, memo)
            }
        };
        Ok(HostModel { model, network })
    }

    /// The checked model.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    /// Whether the blob holds the integer path.
    pub fn is_integer(&self) -> bool {
        matches!(self.network, PathNetwork::Int(..))
    }

    /// Feeds `ids` from a zero state, then returns the sigmoid score (flatten
    /// heads pad to maxlen; a flatten-tail head reads only the last maxlen ids) or
    /// the softmax probabilities for the next token.
    pub fn outputs(&self, ids: &[u16]) -> Result<Vec<f64>, Error> {
        match &self.network {
            PathNetwork::Int(net, memo) => run(net, &mut memo.borrow_mut(), ids),
            PathNetwork::F32(net, memo) => run(net, &mut memo.borrow_mut(), ids),
        }
    }
}

fn run<N: Numeric>(
    net: &Network<'_, N>,
    buffers: &mut MemoBuffers<N>,
    ids: &[u16],
) -> Result<Vec<f64>, Error> {
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    let mut memo = buffers.memo(net)?;
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
