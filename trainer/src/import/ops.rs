//! The data-path ops the walk interprets that compute: the recurrent op, index and
//! slice ops, reductions, the dense layer with its bias, and the output activation
//! (the layout ops are in `shape`).

use crate::model::Tensor as ParamTensor;
use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use tract_onnx::pb::NodeProto;

use super::graph::{
    attr, attr_int, attr_ints, attr_str, describe, is_unit, normalize_axis, output, Axis, Layout,
};
use super::walk::{Recurrent, TimeFirstInput, Walk};
use super::{ForeignInput, SUPPORTED};

/// Refuses the recurrent attributes the runtime's cells do not have: other directions
/// or activations, clipping, coupled gates, and a GRU reset applied before the product.
fn check_recurrent_attributes(node: &NodeProto, cell: Cell, name: &str) -> Result<()> {
    let direction = attr_str(node, "direction").unwrap_or_else(|| "forward".into());
    ensure!(
        direction == "forward",
        "{name} has direction {direction:?}: only forward layers are supported (no bidirectional \
         or reverse)"
    );
    let defaults: &[&str] = match cell {
        Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        Cell::Gru => &["Sigmoid", "Tanh"],
    };
    if let Some(a) = attr(node, "activations") {
        let got: Vec<String> = a
            .strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        ensure!(
            got.iter().map(String::as_str).eq(defaults.iter().copied()),
            "{name} has activations {got:?}: only the defaults {defaults:?} are supported"
        );
    }
    for unsupported in ["activation_alpha", "activation_beta", "clip"] {
        ensure!(
            attr(node, unsupported).is_none(),
            "{name} sets {unsupported}: unsupported (the runtime's cell has no {unsupported}); \
             export the layer without it"
        );
    }
    if cell == Cell::Lstm {
        ensure!(
            attr_int(node, "input_forget").unwrap_or(0) == 0,
            "{name} sets input_forget = 1 (coupled input and forget gates): unsupported"
        );
    } else {
        ensure!(
            attr_int(node, "linear_before_reset").unwrap_or(0) == 1,
            "{name} has linear_before_reset = {}: the runtime's GRU applies the reset gate after the recurrent \
             product (linear_before_reset = 1, as PyTorch and Keras' reset_after=True do)",
            attr_int(node, "linear_before_reset").unwrap_or(0)
        );
    }
    Ok(())
}

impl Walk<'_> {
    pub(super) fn recurrent_node(
        &mut self,
        node: &NodeProto,
        axes: &[Axis],
    ) -> Result<(String, Vec<Axis>)> {
        let name = describe(node);
        let cell = if node.op_type == "LSTM" {
            Cell::Lstm
        } else {
            Cell::Gru
        };
        ensure!(
            self.recurrent.is_none(),
            "{name} is a second recurrent layer: stacked layers are unsupported, the runtime runs one"
        );
        check_recurrent_attributes(node, cell, &name)?;
        let layout = attr_int(node, "layout").unwrap_or(0);
        let expected: &[Axis] = match layout {
            0 => &[Axis::Time, Axis::Batch, Axis::Feature],
            1 => &[Axis::Batch, Axis::Time, Axis::Feature],
            _ => bail!("{name} has layout {layout}: expected 0 or 1"),
        };
        let mismatch = format!(
            "{name} gets its input laid out as {} but its layout {layout} reads it as {}: \
             unsupported",
            Layout(axes),
            Layout(expected)
        );
        // PyTorch's default (batch_first=False) takes the input as [time, batch]: the
        // walk starts again from an input read that way.
        if layout == 0
            && axes == [Axis::Batch, Axis::Time, Axis::Feature]
            && self.ids_axes == [Axis::Batch, Axis::Time]
            && self.input_tracked
        {
            return Err(TimeFirstInput(mismatch).into());
        }
        ensure!(axes == expected, "{mismatch}");
        self.recurrent = Some(self.recurrent_weights(node, cell, &name)?);
        let used: Vec<usize> = (0..node.output.len())
            .filter(|&i| !node.output[i].is_empty() && self.g.is_used(&node.output[i]))
            .collect();
        match used[..] {
            [0] => {
                let axes = if layout == 0 {
                    vec![Axis::Time, Axis::Dir, Axis::Batch, Axis::Hidden]
                } else {
                    vec![Axis::Batch, Axis::Time, Axis::Dir, Axis::Hidden]
                };
                Ok((output(node, 0)?.to_string(), axes))
            }
            [1] => {
                self.head = Some(Head::Last);
                let axes = if layout == 0 {
                    vec![Axis::Dir, Axis::Batch, Axis::Hidden]
                } else {
                    vec![Axis::Batch, Axis::Dir, Axis::Hidden]
                };
                Ok((node.output[1].clone(), axes))
            }
            [2] => bail!("{name}: the graph uses the cell state Y_c: unsupported, the head must read Y or Y_h"),
            _ => bail!("{name}: the graph uses outputs {used:?} of the layer: the importer takes one of Y or Y_h"),
        }
    }

    /// The recurrent layer's weights and biases, checked against its cell and input;
    /// refuses per-sequence lengths, a non-zero initial state and peepholes.
    fn recurrent_weights(&self, node: &NodeProto, cell: Cell, name: &str) -> Result<Recurrent> {
        let gates = cell.gates();
        let (wd, w) = self.g.const_f32(node, 1, "W")?;
        let (rd, r) = self.g.const_f32(node, 2, "R")?;
        ensure!(
            wd.len() == 3 && wd[0] == 1,
            "{name}: W has dims {wd:?}, expected [1, {gates}*hidden, input] (one direction)"
        );
        let hidden = wd[1] / gates;
        ensure!(
            wd[1] == gates * hidden && rd == [1, gates * hidden, hidden],
            "{name}: W dims {wd:?} and R dims {rd:?} do not fit an {} cell",
            cell
        );
        if let Some(h) = attr_int(node, "hidden_size") {
            ensure!(
                h as usize == hidden,
                "{name}: hidden_size {h} but W has {hidden} units per gate"
            );
        }
        let input_width = self.input.as_ref().map_or(0, ForeignInput::width);
        ensure!(
            wd[2] == input_width,
            "{name}: W takes {} inputs but the input layer gives {input_width}",
            wd[2]
        );
        let gh = gates * hidden;
        let (wb, rb) = match node.input.get(3).filter(|n| !n.is_empty()) {
            Some(_) => {
                let (bd, b) = self.g.const_f32(node, 3, "B")?;
                ensure!(
                    bd == [1, 2 * gh],
                    "{name}: B has dims {bd:?}, expected [1, {}]",
                    2 * gh
                );
                (b[..gh].to_vec(), b[gh..].to_vec())
            }
            None => (vec![0.0; gh], vec![0.0; gh]),
        };
        let optional = |slot: usize| node.input.get(slot).filter(|n| !n.is_empty());
        if let Some(lens) = optional(4) {
            bail!(
                "{name} takes sequence_lens ('{lens}'): per-sequence lengths (masking) are unsupported; \
                 export without a mask"
            );
        }
        for (slot, what) in [(5, "initial_h"), (6, "initial_c")] {
            if let Some(state) = optional(slot) {
                ensure!(
                    self.g.is_zero(state)?,
                    "{name}: its {what} '{state}' is not a zero tensor: a given initial state is unsupported"
                );
            }
        }
        if let Some(p) = optional(7) {
            ensure!(
                self.g.is_zero(p)?,
                "{name} has peephole weights P ('{p}'): unsupported, as the runtime's cells have \
             none; train the model without peepholes"
            );
        }
        Ok(Recurrent {
            cell,
            hidden,
            w: ParamTensor::new(&[gh, wd[2]], w)?,
            r: ParamTensor::new(&[gh, hidden], r)?,
            wb: ParamTensor::new(&[gh], wb)?,
            rb: ParamTensor::new(&[gh], rb)?,
        })
    }

    /// Requires the recurrent layer to be in place, with the time axis still there.
    pub(super) fn time_axis(&self, node: &NodeProto, axes: &[Axis]) -> Result<()> {
        ensure!(
            self.recurrent.is_some() && self.head.is_none(),
            "{}: this op picks or reduces steps, which only the head after the recurrent layer may do",
            describe(node)
        );
        ensure!(
            axes.contains(&Axis::Time),
            "{}: no time axis left",
            describe(node)
        );
        Ok(())
    }

    pub(super) fn is_last_index(&self, index: i64) -> bool {
        index == -1 || self.seq_len.is_some_and(|t| index == t as i64 - 1)
    }

    pub(super) fn gather(
        &mut self,
        node: &NodeProto,
        mut axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let axis = normalize_axis(attr_int(node, "axis").unwrap_or(0), axes.len(), node)?;
        let index_name = node.input.get(1).map_or("", String::as_str);
        let index = self.g.constant(index_name)?.with_context(|| {
            format!(
                "{}: its indices are computed in the graph: unsupported",
                describe(node)
            )
        })?;
        let values = self.g.const_i64(index_name)?.unwrap_or_default();
        ensure!(
            values.len() == 1 && index.rank() <= 1,
            "{}: gathers {} entries along {:?}: only one step can be picked",
            describe(node),
            values.len(),
            axes[axis]
        );
        match axes[axis] {
            Axis::Time => {
                self.time_axis(node, &axes)?;
                ensure!(
                    self.is_last_index(values[0]),
                    "{}: picks step {} of the sequence: only the last step (-1) is supported",
                    describe(node),
                    values[0]
                );
                self.head = Some(Head::Last);
            }
            Axis::Dir | Axis::Unit => ensure!(
                matches!(values[0], 0 | -1),
                "{}: picks entry {} of a size-1 axis",
                describe(node),
                values[0]
            ),
            other => bail!(
                "{}: gathers along the {other:?} axis: unsupported",
                describe(node)
            ),
        }
        if index.rank() == 0 {
            axes.remove(axis);
        } else {
            axes[axis] = Axis::Unit;
        }
        Ok((output(node, 0)?.to_string(), axes))
    }

    pub(super) fn slice(
        &mut self,
        node: &NodeProto,
        mut axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let input = |slot: usize| -> Result<Option<Vec<i64>>> {
            match node.input.get(slot).filter(|n| !n.is_empty()) {
                Some(name) => self.g.const_i64(name)?.map(Some).with_context(|| {
                    format!(
                        "{}: its input {slot} is computed in the graph: unsupported",
                        describe(node)
                    )
                }),
                None => Ok(None),
            }
        };
        let (starts, ends, which, steps) = if node.input.len() > 1 {
            (
                input(1)?.unwrap_or_default(),
                input(2)?.unwrap_or_default(),
                input(3)?,
                input(4)?,
            )
        } else {
            (
                attr_ints(node, "starts").unwrap_or_default(),
                attr_ints(node, "ends").unwrap_or_default(),
                attr_ints(node, "axes"),
                None,
            )
        };
        let which = which.unwrap_or_else(|| (0..starts.len() as i64).collect());
        for (k, &a) in which.iter().enumerate() {
            let axis = normalize_axis(a, axes.len(), node)?;
            let entry = |list: &[i64], what: &str| {
                list.get(k).copied().with_context(|| {
                    format!(
                        "{}: {} axes but {} {what}",
                        describe(node),
                        which.len(),
                        list.len()
                    )
                })
            };
            let (start, end) = (entry(&starts, "starts")?, entry(&ends, "ends")?);
            let step = match &steps {
                Some(steps) => entry(steps, "steps")?,
                None => 1,
            };
            ensure!(
                step == 1,
                "{}: slices with step {step}: unsupported",
                describe(node)
            );
            match axes[axis] {
                Axis::Time => {
                    self.time_axis(node, &axes)?;
                    let to_end =
                        end >= i32::MAX as i64 || self.seq_len.is_some_and(|t| end >= t as i64);
                    ensure!(
                        self.is_last_index(start) && to_end,
                        "{}: slices steps {start}..{end}: only the last step ([-1:]) is supported",
                        describe(node)
                    );
                    self.head = Some(Head::Last);
                    axes[axis] = Axis::Unit;
                }
                Axis::Dir | Axis::Unit if start == 0 && end >= 1 => {}
                other => bail!(
                    "{}: slices the {other:?} axis ({start}..{end}): unsupported",
                    describe(node)
                ),
            }
        }
        Ok((output(node, 0)?.to_string(), axes))
    }

    /// A mean over time (`ReduceMean`), or the pooling of lstm-edge's PAD mask
    /// (`ReduceSum` of the weighted steps) standing for `head`.
    pub(super) fn reduce_over_time(
        &mut self,
        node: &NodeProto,
        axes: Vec<Axis>,
        head: Head,
    ) -> Result<(String, Vec<Axis>)> {
        self.time_axis(node, &axes)?;
        let listed = match attr_ints(node, "axes") {
            Some(a) => a,
            None => self
                .g
                .const_i64(node.input.get(1).map_or("", String::as_str))?
                .with_context(|| {
                    format!(
                        "{}: reduces every axis: only the time axis may be reduced",
                        describe(node)
                    )
                })?,
        };
        let mut reduced: Vec<usize> = listed
            .iter()
            .map(|&a| normalize_axis(a, axes.len(), node))
            .collect::<Result<_>>()?;
        reduced.sort_unstable();
        reduced.dedup();
        // Averaging over the size-1 direction axis too changes nothing.
        let over_time = reduced.iter().filter(|&&i| axes[i] == Axis::Time).count() == 1
            && reduced
                .iter()
                .all(|&i| matches!(axes[i], Axis::Time | Axis::Dir | Axis::Unit));
        ensure!(
            over_time,
            "{}: reduces over {:?}: only the mean over time is supported",
            describe(node),
            reduced.iter().map(|&i| axes[i]).collect::<Vec<_>>()
        );
        self.head = Some(head);
        let mut result = axes;
        if attr_int(node, "keepdims").unwrap_or(1) != 0 {
            for &i in &reduced {
                result[i] = Axis::Unit;
            }
        } else {
            for &i in reduced.iter().rev() {
                result.remove(i);
            }
        }
        Ok((output(node, 0)?.to_string(), result))
    }

    pub(super) fn dense_node(
        &mut self,
        node: &NodeProto,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let name = describe(node);
        ensure!(
            self.dense.is_none(),
            "{name} is a second dense layer: the runtime has one after the recurrent layer"
        );
        let kept: Vec<Axis> = axes.iter().copied().filter(|&a| !is_unit(a)).collect();
        if kept.contains(&Axis::Time) {
            bail!(
                "{name} is applied at every step: the graph needs a flatten, last-step or mean head before it; {SUPPORTED}"
            );
        }
        ensure!(
            self.recurrent.is_some() && matches!(kept[..], [Axis::Batch, Axis::Hidden | Axis::Flat]),
            "{name} takes a value laid out as {}: the dense layer must follow the recurrent layer's head",
            Layout(&axes)
        );
        ensure!(
            axes.len() == 2,
            "{name} takes a rank-{} value: expected [batch, features]",
            axes.len()
        );
        let features = self.size(kept[1]).context("feature count")? as usize;
        let (bd, b) = self.g.const_f32(node, 1, "weight")?;
        ensure!(
            bd.len() == 2,
            "{name}: weight of dims {bd:?}, expected a matrix"
        );
        let (mut alpha, mut beta, mut trans_b) = (1.0f32, 1.0f32, false);
        if node.op_type == "Gemm" {
            ensure!(
                attr_int(node, "transA").unwrap_or(0) == 0,
                "{name}: transA = 1 is unsupported"
            );
            alpha = attr(node, "alpha").map_or(1.0, |a| a.f);
            beta = attr(node, "beta").map_or(1.0, |a| a.f);
            trans_b = attr_int(node, "transB").unwrap_or(0) != 0;
        }
        // head_w is [outputs, features]: B itself when transB, else B transposed.
        let (rows, cols) = (bd[0], bd[1]);
        let (outputs, inner) = if trans_b { (rows, cols) } else { (cols, rows) };
        ensure!(
            inner == features,
            "{name}: weight of dims {bd:?} takes {inner} features but the head gives {features}"
        );
        let mut w = vec![0.0f32; outputs * features];
        for o in 0..outputs {
            for f in 0..features {
                let v = if trans_b {
                    b[o * cols + f]
                } else {
                    b[f * cols + o]
                };
                w[o * features + f] = alpha * v;
            }
        }
        let mut bias = vec![0.0f32; outputs];
        if node.op_type == "Gemm" && node.input.get(2).is_some_and(|n| !n.is_empty()) {
            let (_, c) = self.g.const_f32(node, 2, "bias C")?;
            ensure!(
                c.len() == outputs || c.len() == 1,
                "{name}: bias of {} values for {outputs} outputs",
                c.len()
            );
            for (k, v) in bias.iter_mut().enumerate() {
                *v = beta * c[if c.len() == outputs { k } else { 0 }];
            }
        }
        self.dense = Some((
            ParamTensor::new(&[outputs, features], w)?,
            ParamTensor::new(&[outputs], bias)?,
        ));
        Ok((output(node, 0)?.to_string(), vec![Axis::Batch, Axis::Out]))
    }

    /// Folds a constant bias added after the dense layer into its bias.
    pub(super) fn add_bias(
        &mut self,
        node: &NodeProto,
        slot: usize,
        out: String,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        ensure!(
            self.dense.is_some() && axes.last() == Some(&Axis::Out),
            "{}: an Add on the data path before the dense layer is unsupported; {SUPPORTED}",
            describe(node)
        );
        let (_, bias) = self.g.const_f32(node, 1 - slot, "bias")?;
        let (_, b) = self.dense.as_mut().context("dense")?;
        ensure!(
            bias.len() == b.len() || bias.len() == 1,
            "{}: adds {} values to {} outputs",
            describe(node),
            bias.len(),
            b.len()
        );
        let n = b.len();
        for (k, v) in b.data.iter_mut().enumerate() {
            *v += bias[if bias.len() == n { k } else { 0 }];
        }
        Ok((out, axes))
    }

    pub(super) fn activation(
        &mut self,
        node: &NodeProto,
        out: String,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let name = describe(node);
        let outputs = self
            .dense
            .as_ref()
            .map(|(w, _)| w.dims[0])
            .with_context(|| format!("{name} before the dense layer: {SUPPORTED}"))?;
        ensure!(
            axes.last() == Some(&Axis::Out),
            "{name} on a value laid out as {}",
            Layout(&axes)
        );
        if node.op_type == "Sigmoid" {
            ensure!(
                outputs == 1,
                "{name} over {outputs} outputs: the runtime's sigmoid output has one (use Softmax for classes)"
            );
            self.output = Some(Output::Sigmoid);
        } else {
            let axis = attr_int(node, "axis").unwrap_or(-1);
            ensure!(
                normalize_axis(axis, axes.len(), node)? == axes.len() - 1,
                "{name}: softmax along axis {axis}, expected the last"
            );
            ensure!(
                outputs >= 2,
                "{name} over one output: softmax needs at least 2 classes"
            );
            self.output = Some(Output::Softmax {
                classes: u16::try_from(outputs).context("classes")?,
            });
        }
        Ok((out, axes))
    }
}
