//! The layout ops on the data path: transposes, squeezes, reshapes and flattens,
//! which move or merge axes without computing anything.

use anyhow::{anyhow, bail, ensure, Context, Result};
use lstm_edge_runtime::format::Head;
use tract_onnx::pb::NodeProto;

use super::graph::{
    attr_int, attr_ints, describe, input, is_unit, normalize_axis, shape_text, Axis, Dim, Layout,
};
use super::walk::Walk;
use super::SUPPORTED;

/// Permutes the axes (reversed when the node gives no `perm`).
pub(super) fn transpose(
    node: &NodeProto,
    out: String,
    axes: Vec<Axis>,
) -> Result<(String, Vec<Axis>)> {
    let perm: Vec<usize> = attr_ints(node, "perm")
        .map(|p| p.iter().map(|&i| i as usize).collect())
        .unwrap_or_else(|| (0..axes.len()).rev().collect());
    ensure!(
        perm.len() == axes.len() && perm.iter().all(|&p| p < axes.len()),
        "{}: perm {perm:?} for a rank-{} value",
        describe(node),
        axes.len()
    );
    Ok((out, perm.iter().map(|&p| axes[p]).collect()))
}

impl Walk<'_> {
    /// Drops the listed size-1 axes (all of them when the node lists none).
    pub(super) fn squeeze(
        &self,
        node: &NodeProto,
        out: String,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let listed =
            match attr_ints(node, "axes") {
                Some(a) => Some(a),
                None => match node.input.get(1).filter(|n| !n.is_empty()) {
                    Some(name) => Some(self.g.const_i64(name)?.with_context(|| {
                        format!("{}: its axes are not a constant", describe(node))
                    })?),
                    None => None,
                },
            };
        let drop: Vec<usize> = match listed {
            Some(list) => list
                .iter()
                .map(|&a| normalize_axis(a, axes.len(), node))
                .collect::<Result<_>>()?,
            None => (0..axes.len())
                .filter(|&i| matches!(axes[i], Axis::Unit | Axis::Dir))
                .collect(),
        };
        for &i in &drop {
            ensure!(
                matches!(axes[i], Axis::Unit | Axis::Dir),
                "{}: squeezes the {} axis, which is not of size 1",
                describe(node),
                axes[i]
            );
        }
        let kept = (0..axes.len())
            .filter(|i| !drop.contains(i))
            .map(|i| axes[i])
            .collect();
        Ok((out, kept))
    }

    /// Inserts size-1 axes where the node says.
    pub(super) fn unsqueeze(
        &self,
        node: &NodeProto,
        out: String,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let list = match attr_ints(node, "axes") {
            Some(a) => a,
            None => self
                .g
                .const_i64(node.input.get(1).map_or("", String::as_str))?
                .with_context(|| format!("{}: its axes are not a constant", describe(node)))?,
        };
        let rank = axes.len() + list.len();
        let mut at: Vec<usize> = list
            .iter()
            .map(|&a| normalize_axis(a, rank, node))
            .collect::<Result<_>>()?;
        at.sort_unstable();
        if let Some(pair) = at.windows(2).find(|pair| pair[0] == pair[1]) {
            bail!(
                "{}: axis {} is listed twice in its axes {list:?}; the ONNX file is malformed",
                describe(node),
                pair[0]
            );
        }
        let mut result = axes;
        for i in at {
            result.insert(i, Axis::Unit);
        }
        Ok((out, result))
    }

    /// A Reshape node: its constant target shape, where 0 keeps the input's axis.
    pub(super) fn reshape_node(
        &mut self,
        node: &NodeProto,
        out: String,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let target = self.shape_vector(node.input.get(1).map_or("", String::as_str), node)?;
        let allow_zero = attr_int(node, "allowzero").unwrap_or(0) != 0;
        let target: Vec<Dim> = target
            .iter()
            .enumerate()
            .map(|(i, &d)| match d {
                Dim::Known(0) if !allow_zero => axes.get(i).map_or(d, |&a| Dim::Of(a)),
                _ => d,
            })
            .collect();
        self.reshape(node, out, axes, &target)
    }

    /// A Flatten node: keeps the batch axis and merges the rest.
    pub(super) fn flatten(
        &mut self,
        node: &NodeProto,
        out: String,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let split = normalize_axis(attr_int(node, "axis").unwrap_or(1), axes.len() + 1, node)?;
        let outer: Vec<Axis> = axes[..split]
            .iter()
            .copied()
            .filter(|a| !is_unit(*a))
            .collect();
        ensure!(
            outer == [Axis::Batch],
            "{}: flattens from axis {split} of a value laid out as {}: unsupported",
            describe(node),
            Layout(&axes)
        );
        let target = [Dim::Of(Axis::Batch), Dim::Known(-1)];
        self.reshape(node, out, axes, &target)
    }

    /// The entries of a shape vector computed in the graph (constants, Shape of
    /// path values, Gather/Slice/Concat/Unsqueeze/Cast on those).
    pub(super) fn shape_vector(&self, name: &str, user: &NodeProto) -> Result<Vec<Dim>> {
        if let Some(values) = self.g.const_i64(name)? {
            return Ok(values.into_iter().map(Dim::Known).collect());
        }
        let node = self.g.producer.get(name).with_context(|| {
            format!(
                "{}: its shape input '{name}' is a graph input: unsupported",
                describe(user)
            )
        })?;
        let from =
            |slot: usize| self.shape_vector(node.input.get(slot).map_or("", String::as_str), user);
        let ints = |slot: usize| -> Result<Vec<i64>> {
            self.g
                .const_i64(node.input.get(slot).map_or("", String::as_str))?
                .with_context(|| {
                    format!(
                        "{}: computed indices in a shape computation",
                        describe(node)
                    )
                })
        };
        let dims = match node.op_type.as_str() {
            "Shape" => {
                let axes = self.axes_of.get(input(node, 0)?).with_context(|| {
                    format!("{}: the shape of a value off the data path", describe(node))
                })?;
                let dims: Vec<Dim> = axes
                    .iter()
                    .map(|&a| self.size(a).map_or(Dim::Of(a), Dim::Known))
                    .collect();
                let rank = dims.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
                let start = clamp(attr_int(node, "start").unwrap_or(0));
                let end = clamp(attr_int(node, "end").unwrap_or(rank));
                dims[start..end.max(start)].to_vec()
            }
            "Cast" | "Identity" | "Squeeze" | "Unsqueeze" => from(0)?,
            "Concat" => {
                let mut all = Vec::new();
                for slot in 0..node.input.len() {
                    all.extend(from(slot)?);
                }
                all
            }
            "Gather" => {
                let data = from(0)?;
                ints(1)?
                    .iter()
                    .map(|&i| {
                        let at = if i < 0 { i + data.len() as i64 } else { i };
                        data.get(at as usize).copied().with_context(|| {
                            format!("{}: index {i} out of a shape of rank {}", describe(node), data.len())
                        })
                    })
                    .collect::<Result<_>>()?
            }
            "Slice" => {
                let data = from(0)?;
                let n = data.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + n } else { v }).clamp(0, n) as usize;
                let bound = |slot: usize| -> Result<usize> {
                    let values = ints(slot)?;
                    let first = values.first().with_context(|| {
                        format!("{}: input {slot} is empty", describe(node))
                    })?;
                    Ok(clamp(*first))
                };
                let (start, end) = (bound(1)?, bound(2)?);
                data[start..end.max(start)].to_vec()
            }
            other => bail!(
                "{}: its target shape is computed by {other} ({}), which the importer cannot follow",
                describe(user),
                describe(node)
            ),
        };
        Ok(dims)
    }

    pub(super) fn reshape(
        &mut self,
        node: &NodeProto,
        out: String,
        axes: Vec<Axis>,
        target: &[Dim],
    ) -> Result<(String, Vec<Axis>)> {
        let kept: Vec<Axis> = axes.iter().copied().filter(|&a| !is_unit(a)).collect();
        let refuse = || {
            anyhow!(
                "{}: reshapes a value laid out as {} to {}: unsupported; {SUPPORTED}",
                describe(node),
                Layout(&axes),
                shape_text(target)
            )
        };
        let [first, second] = target else {
            return Err(refuse());
        };
        ensure!(
            matches!(first, Dim::Of(Axis::Batch) | Dim::Known(-1) | Dim::Known(1)),
            refuse()
        );
        let hidden = self.recurrent.as_ref().map(|r| r.hidden as i64);
        match kept[..] {
            [Axis::Batch, Axis::Time, Axis::Hidden] => {
                self.time_axis(node, &axes)?;
                let hidden = hidden.context("hidden")?;
                let order: Vec<Axis> = axes.iter().copied().filter(|&a| !is_unit(a)).collect();
                ensure!(order == kept, refuse());
                // With a free length, a -1 first entry folds the steps into the batch:
                // a per-step output, not a flatten over a fixed number of steps.
                ensure!(
                    !(*first == Dim::Known(-1) && self.seq_len.is_none()),
                    "{}: reshapes a sequence of free length to {}, which puts its steps \
                     in the batch (one output per step): unsupported; export with a fixed \
                     sequence length for a flatten head, or take the last step or the mean",
                    describe(node),
                    shape_text(target)
                );
                let steps = match *second {
                    Dim::Known(-1) if *first != Dim::Known(-1) => self.seq_len.map(|t| t as i64),
                    Dim::Known(n) if n > 0 && n % hidden == 0 => Some(n / hidden),
                    _ => return Err(refuse()),
                };
                let steps = steps.with_context(|| {
                    format!(
                        "{}: flattens a sequence of unknown length: export with a fixed sequence length",
                        describe(node)
                    )
                })?;
                if let Some(t) = self.seq_len {
                    ensure!(
                        t as i64 == steps,
                        "{}: flattens {steps} steps of a {t}-step input",
                        describe(node)
                    );
                }
                self.seq_len = Some(steps as usize);
                self.head = Some(Head::Flatten {
                    maxlen: u32::try_from(steps).context("maxlen")?,
                });
                Ok((out, vec![Axis::Batch, Axis::Flat]))
            }
            [Axis::Batch, x] if matches!(x, Axis::Hidden | Axis::Flat | Axis::Out) => {
                let ok = match *second {
                    Dim::Known(-1) => *first != Dim::Known(-1),
                    Dim::Known(n) => Some(n) == self.size(x),
                    Dim::Of(a) => a == x,
                };
                ensure!(ok, refuse());
                Ok((out, vec![Axis::Batch, x]))
            }
            _ => Err(refuse()),
        }
    }
}
