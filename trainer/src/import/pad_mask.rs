//! lstm-edge's own export of a last-state or mean head reads each row up to its
//! first PAD: a side branch from the ids (`Equal` to PAD, `CumSum`, ...) meets the
//! data path at one `Mul`, and a `ReduceSum` over time pools the weighted states.
//! The runtime reads a text to its end, so the walk reads that branch as the plain
//! head the metadata names, and the probes leave PAD out.

use std::collections::HashSet;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::Head;
use tract_onnx::pb;

use super::graph::{describe, output, Graph};
use crate::export::pooling_head;

/// The PAD-mask branch of a graph.
pub(super) struct PadMask {
    /// Values the branch computes: the walk does not follow them.
    pub(super) branch: HashSet<String>,
    /// Output of the `Mul` where the mask meets the data path.
    pub(super) junction: String,
    /// The head the pooling stands for.
    pub(super) head: Head,
    /// The id from whose first occurrence on a row is not read.
    pub(super) pad_id: u16,
}

impl PadMask {
    /// Finds the branch in an lstm-edge export whose metadata names a last-state or
    /// mean head and a PAD id, and whose ids feed an `Equal` as well as the lookup;
    /// other graphs (an export from before the mask, a foreign model) have none.
    pub(super) fn find(proto: &pb::ModelProto, g: &Graph, ids: &str) -> Result<Option<Self>> {
        let meta = |key: &str| {
            proto
                .metadata_props
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.value.as_str())
        };
        let Some(head) = pooling_head(meta("lstm_edge.head")) else {
            return Ok(None);
        };
        let Some(pad) = meta("lstm_edge.pad_id") else {
            return Ok(None);
        };
        let pad_id: u16 = pad
            .parse()
            .with_context(|| format!("metadata lstm_edge.pad_id '{pad}' is not a token id"))?;
        let consumers = g.consumers.get(ids).cloned().unwrap_or_default();
        let (equals, lookups): (Vec<&pb::NodeProto>, Vec<&pb::NodeProto>) =
            consumers.iter().partition(|n| n.op_type == "Equal");
        let [equal] = equals[..] else {
            return Ok(None);
        };
        let data = reach(g, lookups.iter().flat_map(|n| n.output.iter()));
        let branch: HashSet<String> = reach(g, equal.output.iter())
            .difference(&data)
            .cloned()
            .collect();
        let junctions: Vec<&pb::NodeProto> = g
            .graph
            .node
            .iter()
            .filter(|n| {
                n.input.iter().any(|i| branch.contains(i))
                    && n.output.iter().any(|o| data.contains(o))
            })
            .collect();
        let [junction] = junctions[..] else {
            bail!(
                "the PAD mask of this lstm-edge export meets the data path at {} nodes ({}), \
                 expected one Mul: the file is not one that `lstm-edge export` writes",
                junctions.len(),
                junctions
                    .iter()
                    .map(|n| describe(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        ensure!(
            junction.op_type == "Mul",
            "the PAD mask of this lstm-edge export meets the data path at {}, expected a Mul: \
             the file is not one that `lstm-edge export` writes",
            describe(junction)
        );
        Ok(Some(PadMask {
            branch,
            junction: output(junction, 0)?.to_string(),
            head,
            pad_id,
        }))
    }
}

/// The values computed from `start` (the graph's nodes are in topological order).
fn reach<'s>(g: &Graph, start: impl Iterator<Item = &'s String>) -> HashSet<String> {
    let mut reached: HashSet<String> = start.cloned().collect();
    for node in &g.graph.node {
        if node.input.iter().any(|i| reached.contains(i)) {
            reached.extend(node.output.iter().cloned());
        }
    }
    reached
}
