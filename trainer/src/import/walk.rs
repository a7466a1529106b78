//! The walk from the graph input along the data path to the output: where it
//! starts, how it dispatches each node, and what it hands back.

use std::collections::{HashMap, HashSet};

use crate::model::Tensor as ParamTensor;
use anyhow::{anyhow, bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use tract_onnx::pb::{self, NodeProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::graph::{attr_int, describe, elem_name, input, output, Axis, Graph};
use super::pad_mask::PadMask;
use super::shape::transpose;
use super::{in_tract, ForeignInput, ForeignModel, SUPPORTED};

/// The recurrent layer as found.
pub(super) struct Recurrent {
    pub(super) cell: Cell,
    pub(super) hidden: usize,
    pub(super) w: ParamTensor,
    pub(super) r: ParamTensor,
    pub(super) wb: ParamTensor,
    pub(super) rb: ParamTensor,
}

/// The walk along the data path.
pub(super) struct Walk<'a> {
    pub(super) g: Graph<'a>,
    pub(super) seq_len: Option<usize>,
    pub(super) axes_of: HashMap<String, Vec<Axis>>,
    pub(super) input: Option<ForeignInput>,
    pub(super) recurrent: Option<Recurrent>,
    pub(super) head: Option<Head>,
    pub(super) dense: Option<(ParamTensor, ParamTensor)>,
    pub(super) output: Option<Output>,
    /// lstm-edge's PAD mask, when the graph has one, and whether the walk has met it.
    pub(super) mask: Option<PadMask>,
    pub(super) masked: bool,
    /// The axes of the graph input's first two dimensions.
    pub(super) ids_axes: [Axis; 2],
    /// Whether the input reaches the recurrent layer's input without a layout op the
    /// walk has not followed (the ops between ids and their lookup are not followed).
    pub(super) input_tracked: bool,
}

/// The first walk's finding that the graph reads its input as `[time, batch]`
/// (PyTorch's default `batch_first=False`): the walk is run again that way.
#[derive(Debug)]
pub(super) struct TimeFirstInput(pub(super) String);

impl std::fmt::Display for TimeFirstInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimeFirstInput {}

/// The longest fixed sequence a graph input may declare (C's 1,500 chars and the
/// 3,000 of `c-mean` are well inside).
const MAX_STEPS: usize = 20_000;

/// Why a recurrent layer arrives as a Loop or Scan, and which export avoids it.
const EXPORTED_AS_LOOP: &str = "the recurrent layer was exported as a loop, not as an ONNX \
     LSTM/GRU op (tf2onnx does this for Keras 3 GRU layers, and for Keras 2 / tf_keras GRU \
     layers with reset_after=False; a tf_keras GRU with reset_after=True, its default, \
     converts to GRU)";

/// Reads an ONNX model into a [`ForeignModel`], or says which op, attribute or
/// shape it cannot take.
pub fn read_onnx(onnx: &[u8]) -> Result<ForeignModel> {
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &onnx[..])
        .map_err(|e| anyhow!("not an ONNX model, or a truncated one: {e}"))?;
    let graph = proto
        .graph
        .as_ref()
        .context("the ONNX model has no graph")?;
    let g = Graph::new(graph)?;
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !g.initializers.contains_key(i.name.as_str()))
        .collect();
    let [input] = inputs[..] else {
        bail!(
            "the graph has {} inputs ({}): the importer takes one input of token ids or one-hot \
             rows; export the model with its initial state as zero constants, not inputs \
             (PyTorch: call the layer without (h0, c0))",
            inputs.len(),
            inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    ensure!(
        graph.output.len() == 1,
        "the graph has {} outputs: the importer takes one (the probabilities)",
        graph.output.len()
    );
    match read_graph(onnx, &proto, g, input, [Axis::Batch, Axis::Time]) {
        Err(first) if first.downcast_ref::<TimeFirstInput>().is_some() => {
            let g = Graph::new(graph)?;
            read_graph(onnx, &proto, g, input, [Axis::Time, Axis::Batch]).map_err(|retry| {
                anyhow!(
                    "{first}; read as [time, batch] (PyTorch's batch_first=False), the graph \
                     fails too: {retry:#}"
                )
            })
        }
        read => read,
    }
}

/// Walks the graph from `input`, whose first two axes are `ids_axes`.
fn read_graph(
    onnx: &[u8],
    proto: &pb::ModelProto,
    g: Graph<'_>,
    input: &pb::ValueInfoProto,
    ids_axes: [Axis; 2],
) -> Result<ForeignModel> {
    let (elem, dims) = input_type(input)?;
    let time = usize::from(ids_axes[1] == Axis::Time);
    if let Some(&Some(steps)) = dims.get(time) {
        // The self-check runs the graph on sequences of its fixed length.
        ensure!(
            steps <= MAX_STEPS,
            "graph input '{}' is {steps} steps long; the importer takes at most {MAX_STEPS}: \
             export the model with a shorter or a free sequence length",
            input.name
        );
    }
    let mut walk = Walk {
        g,
        seq_len: None,
        axes_of: HashMap::new(),
        input: None,
        recurrent: None,
        head: None,
        dense: None,
        output: None,
        mask: None,
        masked: false,
        ids_axes,
        input_tracked: true,
    };
    let (start, id_check) = match (elem, dims.len()) {
        // Ids [batch, time]: int64 or int32, or another number type (Keras' default
        // `Input` dtype is float32) cast to int on the way to the lookup.
        (1..=7 | 11..=13, 2) => {
            walk.seq_len = dims[time];
            walk.axes_of.insert(input.name.clone(), ids_axes.to_vec());
            // lstm-edge's exports, which the mask comes from, take ids [batch, time].
            if time == 1 {
                walk.mask = PadMask::find(proto, &walk.g, &input.name)?;
            }
            walk.embedding_start(&input.name)?
        }
        // float one-hot [batch, time, ids].
        (1, 3) => {
            walk.seq_len = dims[time];
            let depth = dims[2].with_context(|| {
                format!(
                    "graph input '{}' has no fixed one-hot width: export it with a fixed last dimension",
                    input.name
                )
            })?;
            walk.input = Some(ForeignInput::OneHot {
                depth,
                float_input: true,
            });
            walk.axes_of.insert(
                input.name.clone(),
                [ids_axes[0], ids_axes[1], Axis::Feature].to_vec(),
            );
            (input.name.clone(), None)
        }
        _ => bail!(
            "graph input '{}' is {} with {} axes: the importer takes ids [batch, time] \
             (int64, int32, or a number type cast to int before the lookup) or float one-hot rows \
             [batch, time, ids]; export the ids input as int64 [batch, time]",
            input.name,
            elem_name(elem),
            dims.len()
        ),
    };
    let foreign = walk.run(start)?;
    let capacity = match elem {
        2 => Some(1 << 8),
        3 => Some(1 << 7),
        4 => Some(1 << 16),
        5 => Some(1 << 15),
        _ => None,
    };
    if let Some(capacity) = capacity.filter(|_| dims.len() == 2) {
        ensure!(
            foreign.input.ids() <= capacity,
            "graph input '{}' is {}, which holds {capacity} ids, but the model has {} token \
             ids: export the ids input as int64",
            input.name,
            elem_name(elem),
            foreign.input.ids()
        );
    }
    if let Some(check) = id_check {
        check_ids_pass_through(onnx, &check, &foreign)?;
    }
    Ok(foreign)
}

/// Element type and dims (`None` for symbolic) of a graph input.
fn input_type(input: &pb::ValueInfoProto) -> Result<(i32, Vec<Option<usize>>)> {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(pb::type_proto::Value::TensorType(t)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        bail!("graph input '{}' is not a tensor", input.name);
    };
    let shape = t
        .shape
        .as_ref()
        .with_context(|| format!("graph input '{}' has no shape", input.name))?;
    let dims = shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(v)) if v > 0 => Some(v as usize),
            _ => None,
        })
        .collect();
    Ok((t.elem_type, dims))
}

/// Id computations between the graph input and the embedding lookup.
pub(super) struct IdCheck {
    indices: String,
    lookup: String,
}

/// Runs the graph up to the lookup's indices in tract for every id and checks it
/// hands each id through unchanged.
fn check_ids_pass_through(onnx: &[u8], check: &IdCheck, foreign: &ForeignModel) -> Result<()> {
    in_tract("running the id computations", || {
        run_id_computations(onnx, check, foreign)
    })
}

fn run_id_computations(onnx: &[u8], check: &IdCheck, foreign: &ForeignModel) -> Result<()> {
    let ids = foreign.input.ids();
    let len = foreign.seq_len.unwrap_or(ids);
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .map_err(|e| anyhow!("tract cannot read the ONNX model: {e:#}"))?;
    let dt = model
        .input_fact(0)?
        .datum_type
        .concretize()
        .unwrap_or(i64::datum_type());
    model.select_outputs_by_name([check.indices.as_str()])?;
    let shape = foreign.input_shape(len);
    let model = model.with_input_fact(0, InferenceFact::dt_shape(dt, &shape[..2]))?;
    let plan = model.into_optimized()?.into_runnable()?;
    for chunk in (0..ids as i64).collect::<Vec<_>>().chunks(len) {
        let mut row = chunk.to_vec();
        row.resize(len, 0);
        let input = tract_ndarray::Array2::from_shape_vec((shape[0], shape[1]), row.clone())?;
        let input: Tensor = Tensor::from(input).cast_to_dt(dt)?.into_owned();
        let out = plan.run(tvec!(input.into_tvalue()))?;
        let out = out[0].cast_to::<i64>()?;
        let got: Vec<i64> = out.to_plain_array_view::<i64>()?.iter().copied().collect();
        ensure!(
            got == row,
            "the ids pass through computations before {} that change them ({row:?} became {got:?}): unsupported",
            check.lookup
        );
    }
    Ok(())
}

impl<'a> Walk<'a> {
    pub(super) fn size(&self, axis: Axis) -> Option<i64> {
        match axis {
            Axis::Batch => None,
            Axis::Time => self.seq_len.map(|t| t as i64),
            Axis::Feature => self.input.as_ref().map(|i| i.width() as i64),
            Axis::Dir | Axis::Unit => Some(1),
            Axis::Hidden => self.recurrent.as_ref().map(|r| r.hidden as i64),
            Axis::Flat => self
                .recurrent
                .as_ref()
                .zip(self.seq_len)
                .map(|(r, t)| (r.hidden * t) as i64),
            Axis::Out => self.dense.as_ref().map(|(w, _)| w.dims[0] as i64),
        }
    }

    /// Finds the embedding Gather or OneHot fed by the ids and returns its output,
    /// with the id computations before it that [`check_ids_pass_through`] must check.
    pub(super) fn embedding_start(&mut self, ids: &str) -> Result<(String, Option<IdCheck>)> {
        let node = self.lookup_of(ids)?;
        let indices = input(node, usize::from(node.op_type == "Gather"))?;
        let mut direct = indices;
        while direct != ids {
            match self.g.producer.get(direct) {
                Some(p) if matches!(p.op_type.as_str(), "Cast" | "Identity") => {
                    direct = input(p, 0)?
                }
                _ => break,
            }
        }
        // A Transpose there would keep the ids' values but not their axes.
        self.input_tracked = direct == ids;
        // E.g. TensorFlow's wrap of negative ids: it must leave valid ids as they are.
        let check = (direct != ids).then(|| IdCheck {
            indices: indices.to_string(),
            lookup: describe(node),
        });
        self.axes_of
            .insert(indices.to_string(), self.ids_axes.to_vec());
        self.input = Some(match node.op_type.as_str() {
            "Gather" => self.embedding_table(node)?,
            _ => self.one_hot(node)?,
        });
        let out = output(node, 0)?.to_string();
        let [first, second] = self.ids_axes;
        self.axes_of
            .insert(out.clone(), vec![first, second, Axis::Feature]);
        Ok((out, check))
    }

    /// The one Gather of a constant table, or OneHot, that the ids reach (not
    /// through a Shape).
    fn lookup_of(&self, ids: &str) -> Result<&'a NodeProto> {
        let mut reached: HashSet<&str> = HashSet::from([ids]);
        for node in &self.g.graph.node {
            if node.input.iter().any(|i| reached.contains(i.as_str()))
                && node.op_type != "Shape"
                && !self.in_mask(node)
            {
                reached.extend(node.output.iter().map(String::as_str));
            }
        }
        let mut found = Vec::new();
        for node in &self.g.graph.node {
            let takes_ids = |slot| {
                node.input
                    .get(slot)
                    .is_some_and(|i: &String| reached.contains(i.as_str()))
            };
            let candidate = match node.op_type.as_str() {
                "Gather" => takes_ids(1) && self.g.constant(input(node, 0)?)?.is_some(),
                "OneHot" => takes_ids(0),
                _ => false,
            };
            if candidate {
                found.push(node);
            }
        }
        match found[..] {
            [node] => Ok(node),
            [] => bail!("no embedding Gather or OneHot takes the token ids: {SUPPORTED}"),
            _ => bail!(
                "{} nodes ({}) look up the token ids: the importer takes one embedding",
                found.len(),
                found
                    .iter()
                    .map(|n| describe(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A Gather's table as the embedding.
    fn embedding_table(&self, node: &NodeProto) -> Result<ForeignInput> {
        ensure!(
            attr_int(node, "axis").unwrap_or(0) == 0,
            "{}: an embedding lookup gathers rows (axis 0)",
            describe(node)
        );
        let (dims, data) = self.g.const_f32(node, 0, "embedding table")?;
        ensure!(
            dims.len() == 2,
            "{}: embedding table of dims {dims:?}, expected [ids, width]",
            describe(node)
        );
        Ok(ForeignInput::Embedding(ParamTensor::new(&dims, data)?))
    }

    /// A plain one-hot of constant depth along the last axis.
    fn one_hot(&self, node: &NodeProto) -> Result<ForeignInput> {
        let depth = self
            .g
            .const_i64(input(node, 1)?)?
            .and_then(|d| d.first().copied())
            .with_context(|| format!("{}: its depth is not a constant", describe(node)))?;
        ensure!(
            depth > 0,
            "{}: depth {depth}, expected at least 1",
            describe(node)
        );
        let values = self.g.const_f32(node, 2, "values")?.1;
        ensure!(
            values == [0.0, 1.0],
            "{}: values {values:?}, expected [0, 1] (a plain one-hot)",
            describe(node)
        );
        ensure!(
            matches!(attr_int(node, "axis").unwrap_or(-1), -1 | 2),
            "{}: one-hot along axis {:?}, expected the last axis",
            describe(node),
            attr_int(node, "axis")
        );
        Ok(ForeignInput::OneHot {
            depth: depth as usize,
            float_input: false,
        })
    }

    pub(super) fn run(mut self, start: String) -> Result<ForeignModel> {
        let mut value = start;
        let graph_output = self.g.graph.output[0].name.clone();
        while value != graph_output {
            let consumers: Vec<&NodeProto> = self
                .g
                .consumers
                .get(value.as_str())
                .map(|c| {
                    c.iter()
                        .copied()
                        .filter(|n| n.op_type != "Shape" && !self.in_mask(n))
                        .collect()
                })
                .unwrap_or_default();
            let node = match consumers[..] {
                [node] => node,
                [] => {
                    // A loop body reads outer values without listing them as inputs.
                    if let Some(r#loop) = self
                        .g
                        .graph
                        .node
                        .iter()
                        .find(|n| matches!(n.op_type.as_str(), "Loop" | "Scan"))
                    {
                        bail!(
                            "unsupported ONNX op {} ({}): {EXPORTED_AS_LOOP}; {SUPPORTED}",
                            r#loop.op_type,
                            describe(r#loop)
                        );
                    }
                    bail!("value '{value}' leads nowhere: it never reaches the graph output '{graph_output}'")
                }
                _ => bail!(
                    "value '{value}' feeds {} nodes ({}): branching graphs are unsupported; {SUPPORTED}",
                    consumers.len(),
                    consumers.iter().map(|n| describe(n)).collect::<Vec<_>>().join(", ")
                ),
            };
            let slot = node.input.iter().position(|i| *i == value).unwrap_or(0);
            ensure!(
                node.input.iter().filter(|i| **i == value).count() == 1,
                "{} uses '{value}' twice: unsupported",
                describe(node)
            );
            let axes = self.axes_of[&value].clone();
            let (next, axes) = self.step(node, slot, axes)?;
            self.axes_of.insert(next.clone(), axes);
            value = next;
        }
        self.finish(&value)
    }

    /// Whether `node` computes lstm-edge's PAD mask rather than the data.
    fn in_mask(&self, node: &NodeProto) -> bool {
        self.mask
            .as_ref()
            .is_some_and(|m| node.output.iter().any(|o| m.branch.contains(o)))
    }

    pub(super) fn finish(self, last: &str) -> Result<ForeignModel> {
        let recurrent = self
            .recurrent
            .with_context(|| format!("the graph has no LSTM or GRU node: {SUPPORTED}"))?;
        let head = self.head.with_context(|| {
            format!("the graph never reduces the time axis: it needs a flatten, last-step or mean head; {SUPPORTED}")
        })?;
        let (head_w, head_b) = self.dense.with_context(|| {
            format!("the graph has no dense layer (Gemm or MatMul): {SUPPORTED}")
        })?;
        let output = self.output.with_context(|| {
            format!(
                "the graph's output '{last}' comes from {}: the runtime's models end in Sigmoid \
                 or Softmax; export the model with its probabilities as the output (not logits \
                 or log-probabilities)",
                self.g
                    .producer
                    .get(last)
                    .map_or("the input".to_string(), |n| describe(n))
            )
        })?;
        let input = self.input.context("the graph has no input layer")?;
        ensure!(
            self.mask.is_none() || self.masked,
            "the graph computes lstm-edge's PAD mask but never applies it: the file is not one \
             that `lstm-edge export` writes"
        );
        ensure!(
            input.width() == recurrent.w.dims[1],
            "the recurrent layer takes {} inputs but the input layer gives {}",
            recurrent.w.dims[1],
            input.width()
        );
        Ok(ForeignModel {
            cell: recurrent.cell,
            hidden: recurrent.hidden,
            input,
            seq_len: self.seq_len,
            time_first: self.ids_axes[0] == Axis::Time,
            head,
            output,
            w: recurrent.w,
            r: recurrent.r,
            wb: recurrent.wb,
            rb: recurrent.rb,
            head_w,
            head_b,
            rows_end_at: self.mask.as_ref().map(|m| m.pad_id),
        })
    }

    /// The head that lstm-edge's PAD mask stands for, once the walk has applied it.
    fn met_mask_head(&self) -> Option<Head> {
        self.mask.as_ref().filter(|_| self.masked).map(|m| m.head)
    }

    /// Interprets one node on the data path, returning its output and layout.
    pub(super) fn step(
        &mut self,
        node: &NodeProto,
        slot: usize,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let out = node.output.first().cloned().unwrap_or_default();
        let op = node.op_type.as_str();
        // Only nodes that pass values through may follow the output activation
        // (lstm-edge's own export names its output with an Identity); a cast must keep
        // them floats (ONNX FLOAT16 10, FLOAT 1, DOUBLE 11, BFLOAT16 16).
        let passes_values = match op {
            "Identity" | "Dropout" => true,
            "Cast" => matches!(attr_int(node, "to"), Some(1 | 10 | 11 | 16)),
            _ => false,
        };
        ensure!(
            self.output.is_none() || passes_values,
            "{} follows the output activation: {SUPPORTED}",
            describe(node)
        );
        ensure!(
            slot == 0 || matches!(op, "Add" | "Mul" | "Concat"),
            "{} takes the data path on input {slot}: unsupported; {SUPPORTED}",
            describe(node)
        );
        if self.mask.as_ref().is_some_and(|m| m.junction == out) {
            // The mask weighs each step; the ReduceSum after it is the head's pooling.
            self.masked = true;
            return Ok((out, axes));
        }
        match op {
            "Identity" | "Dropout" | "Cast" => Ok((out, axes)),
            "Transpose" => transpose(node, out, axes),
            "Squeeze" => self.squeeze(node, out, axes),
            "Unsqueeze" => self.unsqueeze(node, out, axes),
            "LSTM" | "GRU" => self.recurrent_node(node, &axes),
            "Gather" => self.gather(node, axes),
            "Slice" => self.slice(node, axes),
            "ReduceMean" => self.reduce_over_time(node, axes, Head::Mean),
            "ReduceSum" if self.head.is_none() => match self.met_mask_head() {
                Some(head) => self.reduce_over_time(node, axes, head),
                None => bail!(
                    "{} sums over the data path without lstm-edge's PAD mask before it: {SUPPORTED}",
                    describe(node)
                ),
            },
            "Reshape" => self.reshape_node(node, out, axes),
            "Flatten" => self.flatten(node, out, axes),
            "Gemm" | "MatMul" => self.dense_node(node, axes),
            "Add" => self.add_bias(node, slot, out, axes),
            "Sigmoid" | "Softmax" => self.activation(node, out, axes),
            "Loop" | "Scan" => bail!(
                "unsupported ONNX op {op} ({}): {EXPORTED_AS_LOOP}; {SUPPORTED}",
                describe(node)
            ),
            _ => bail!("unsupported ONNX op {op} ({}) on the data path: {SUPPORTED}", describe(node)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn garbage_is_not_an_onnx_model() {
        let err = read_onnx(b"\xff\xfe not a protobuf")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ONNX"), "{err}");
    }
}
