//! Host conveniences (`std` feature): run a blob of either numeric path on
//! token ids and get its outputs as f64, for evaluation, quantization and checks.

use std::boxed::Box;
use std::vec::Vec;

use crate::format::{Output, Params, MAX_HIDDEN};
use crate::numeric::{Int, Numeric, F32};
use crate::{Error, Logits, Model, Network, State};

/// Largest softmax the host helpers handle.
pub const MAX_CLASSES: usize = 1024;

/// A blob ready to run on the host, whatever its numeric path.
pub struct HostModel<'a> {
    model: Model<'a>,
    // Built once: building a network checks its whole vocabulary.
    network: PathNetwork<'a>,
}

/// The network of a blob on the numeric path the blob holds.
enum PathNetwork<'a> {
    Int(Network<'a, Int>),
    F32(Network<'a, F32>),
}

impl<'a> HostModel<'a> {
    /// Checks `blob` as [`Model::from_bytes`] and [`Network::new`] do, on the
    /// blob's numeric path.
    pub fn new(blob: &'a [u8]) -> Result<Self, Error> {
        let model = Model::from_bytes(blob)?;
        let network = match model.body().params {
            Params::Int(_) => PathNetwork::Int(Network::new(&model)?),
            Params::F32(_) => PathNetwork::F32(Network::new(&model)?),
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
            PathNetwork::Int(net) => run(net, ids),
            PathNetwork::F32(net) => run(net, ids),
        }
    }
}

fn run<N: Numeric>(net: &Network<'_, N>, ids: &[u16]) -> Result<Vec<f64>, Error> {
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    for &id in net.head().kept(ids) {
        net.feed(&mut state, id)?;
    }
    match net.output() {
        Output::Sigmoid => Ok(std::vec![N::prob_to_f64(net.finish(&mut state)?)]),
        Output::Softmax { classes } => {
            let mut logits = Box::new(Logits::<N, MAX_CLASSES>::new());
            let mut probs = std::vec![N::Prob::default(); classes as usize];
            net.probabilities(&state, &mut logits, &mut probs)?;
            Ok(probs.into_iter().map(N::prob_to_f64).collect())
        }
    }
}
