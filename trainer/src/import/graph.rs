//! The ONNX graph as the importer reads it: symbolic axes, producers and consumers
//! of each value, and attribute helpers.

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, ensure, Context, Result};
use tract_onnx::pb::{self, GraphProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;

/// A symbolic axis of a value on the data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Axis {
    Batch,
    Time,
    /// The recurrent layer's input width.
    Feature,
    /// The recurrent op's direction axis (size 1).
    Dir,
    Hidden,
    /// Time and hidden flattened together, time-major.
    Flat,
    /// The dense layer's outputs.
    Out,
    /// Any other axis of size 1.
    Unit,
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Axis::Batch => "batch",
            Axis::Time => "time",
            Axis::Feature => "feature",
            Axis::Dir => "direction",
            Axis::Hidden => "hidden",
            Axis::Flat => "time*hidden",
            Axis::Out => "output",
            Axis::Unit => "1",
        })
    }
}

/// A value's layout as messages show it: `[batch, time, hidden]`.
pub(super) struct Layout<'a>(pub(super) &'a [Axis]);

impl std::fmt::Display for Layout<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.iter().map(Axis::to_string).collect();
        write!(f, "[{}]", names.join(", "))
    }
}

/// An entry of a shape vector being computed in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dim {
    Known(i64),
    Of(Axis),
}

/// A computed shape as messages show it: `[batch, -1]`.
pub(super) fn shape_text(dims: &[Dim]) -> String {
    let entries: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Known(n) => n.to_string(),
            Dim::Of(axis) => axis.to_string(),
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

pub(super) struct Graph<'a> {
    pub(super) graph: &'a GraphProto,
    pub(super) producer: HashMap<&'a str, &'a NodeProto>,
    pub(super) consumers: HashMap<&'a str, Vec<&'a NodeProto>>,
    pub(super) initializers: HashMap<&'a str, &'a TensorProto>,
    pub(super) outputs: HashSet<&'a str>,
}

pub(super) fn describe(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} node", node.op_type)
    } else {
        format!("{} node '{}'", node.op_type, node.name)
    }
}

/// A node's required input `slot`, or an error naming the node.
pub(super) fn input(node: &NodeProto, slot: usize) -> Result<&str> {
    port(node, &node.input, "input", slot)
}

/// A node's output `slot`, or an error naming the node.
pub(super) fn output(node: &NodeProto, slot: usize) -> Result<&str> {
    port(node, &node.output, "output", slot)
}

fn port<'n>(node: &NodeProto, names: &'n [String], kind: &str, slot: usize) -> Result<&'n str> {
    names
        .get(slot)
        .map(String::as_str)
        .filter(|name| !name.is_empty())
        .with_context(|| {
            format!(
                "{}: {kind} {slot} is missing ({} given); the ONNX file is malformed",
                describe(node),
                names.len()
            )
        })
}

pub(super) fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub(super) fn attr_str(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// ONNX data types this reader loads (float, ints, bool, double).
const LOADABLE_TYPES: [i32; 10] = [1, 2, 3, 4, 5, 6, 7, 9, 11, 12];

/// The name of an ONNX `TensorProto.DataType`.
pub(super) fn elem_name(elem: i32) -> &'static str {
    match elem {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        12 => "uint32",
        13 => "uint64",
        14 | 15 => "complex",
        16 => "bfloat16",
        _ => "not a plain number type",
    }
}

/// ONNX's `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL_DATA: i32 = 1;

pub(super) fn load(t: &TensorProto) -> Result<Tensor> {
    ensure!(
        t.data_location != Some(EXTERNAL_DATA),
        "tensor '{}' keeps its values in an external file, which the importer does not read: \
         save the model with its weights inside (onnx.save(model, path, \
         save_as_external_data=False))",
        t.name
    );
    ensure!(
        LOADABLE_TYPES.contains(&t.data_type),
        "tensor '{}' has ONNX data type {} ({}), which the importer does not read: export the \
         model with float32 weights",
        t.name,
        t.data_type,
        elem_name(t.data_type)
    );
    tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, t, None).map_err(
        |e| {
            anyhow!(
                "cannot load tensor '{}' with dims {:?} ({e:#}): its values do not fill its \
                 dims; the ONNX file is malformed",
                t.name,
                t.dims
            )
        },
    )
}

impl<'a> Graph<'a> {
    /// Indexes the graph, refusing what ONNX forbids and the walks below rely on:
    /// a name given two values, and a node that reads a value no earlier node,
    /// initializer or graph input gives (so no cycles either).
    pub(super) fn new(graph: &'a GraphProto) -> Result<Self> {
        let mut initializers = HashMap::new();
        for t in &graph.initializer {
            ensure!(
                initializers.insert(t.name.as_str(), t).is_none(),
                "two initializers are named '{}'; the ONNX file is malformed (ONNX Runtime \
                 would use the first, other readers the last)",
                t.name
            );
        }
        let mut defined: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
        defined.extend(initializers.keys().copied());
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
        for node in &graph.node {
            for inp in node.input.iter().filter(|i| !i.is_empty()) {
                ensure!(
                    defined.contains(inp.as_str()),
                    "{} reads '{inp}', which no graph input, initializer or earlier node \
                     gives: ONNX nodes must come in an order where every value is made before \
                     it is read (the file is malformed, or its graph has a cycle)",
                    describe(node)
                );
                consumers.entry(inp.as_str()).or_default().push(node);
            }
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                ensure!(
                    producer.insert(out.as_str(), node).is_none() && defined.insert(out.as_str()),
                    "{} gives '{out}', a name that already has a value; the ONNX file is malformed",
                    describe(node)
                );
            }
        }
        Ok(Graph {
            graph,
            producer,
            consumers,
            initializers,
            outputs: graph.output.iter().map(|o| o.name.as_str()).collect(),
        })
    }

    /// The value's constant tensor: an initializer or a Constant node, through Identity/Cast.
    pub(super) fn constant(&self, name: &str) -> Result<Option<Tensor>> {
        if let Some(t) = self.initializers.get(name) {
            return load(t).map(Some);
        }
        let Some(node) = self.producer.get(name) else {
            return Ok(None);
        };
        match node.op_type.as_str() {
            "Constant" => {
                if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
                    return load(t).map(Some);
                }
                if let Some(a) = attr(node, "value_float") {
                    return Ok(Some(tensor0(a.f)));
                }
                if let Some(a) = attr(node, "value_floats") {
                    return Ok(Some(tensor1(&a.floats)));
                }
                if let Some(a) = attr(node, "value_int") {
                    return Ok(Some(tensor0(a.i)));
                }
                if let Some(a) = attr(node, "value_ints") {
                    return Ok(Some(tensor1(&a.ints)));
                }
                bail!("{}: unsupported constant kind", describe(node))
            }
            "Identity" | "Cast" => self.constant(input(node, 0)?),
            _ => Ok(None),
        }
    }

    /// A constant input as f32 values with its dims, or an error naming what is missing.
    pub(super) fn const_f32(
        &self,
        node: &NodeProto,
        slot: usize,
        what: &str,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let name = node
            .input
            .get(slot)
            .filter(|n| !n.is_empty())
            .with_context(|| format!("{}: its {what} input is missing", describe(node)))?;
        let t = self.constant(name)?.with_context(|| {
            format!(
                "{}: its {what} input '{name}' is computed in the graph, not an initializer: \
                 export with constant folding so that the weights are initializers",
                describe(node)
            )
        })?;
        let values = t.cast_to::<f32>()?;
        let view = values.to_plain_array_view::<f32>()?;
        Ok((t.shape().to_vec(), view.iter().copied().collect()))
    }

    pub(super) fn const_i64(&self, name: &str) -> Result<Option<Vec<i64>>> {
        let Some(t) = self.constant(name)? else {
            return Ok(None);
        };
        let values = t.cast_to::<i64>()?;
        let view = values.to_plain_array_view::<i64>()?;
        Ok(Some(view.iter().copied().collect()))
    }

    /// Whether `name` is all zeros: a zero constant, ConstantOfShape of zero, or a
    /// zero reshaped, expanded or cast.
    pub(super) fn is_zero(&self, name: &str) -> Result<bool> {
        if let Some(t) = self.constant(name)? {
            let values = t.cast_to::<f32>()?;
            return Ok(values
                .to_plain_array_view::<f32>()?
                .iter()
                .all(|&v| v == 0.0));
        }
        let Some(node) = self.producer.get(name) else {
            return Ok(false);
        };
        match node.op_type.as_str() {
            "ConstantOfShape" => match attr(node, "value").and_then(|a| a.t.as_ref()) {
                None => Ok(true),
                Some(t) => {
                    let t = load(t)?;
                    let values = t.cast_to::<f32>()?;
                    Ok(values
                        .to_plain_array_view::<f32>()?
                        .iter()
                        .all(|&v| v == 0.0))
                }
            },
            "Expand" | "Tile" | "Reshape" | "Unsqueeze" | "Squeeze" | "Cast" | "Identity"
            | "Transpose" | "Slice" | "Gather" => self.is_zero(input(node, 0)?),
            _ => Ok(false),
        }
    }

    /// Whether `name` is consumed by a node other than Shape, or is a graph output.
    pub(super) fn is_used(&self, name: &str) -> bool {
        self.outputs.contains(name)
            || self
                .consumers
                .get(name)
                .is_some_and(|c| c.iter().any(|n| n.op_type != "Shape"))
    }
}

pub(super) fn tensor0<T: Datum + Copy>(v: T) -> Tensor {
    tract_ndarray::arr0(v).into()
}

pub(super) fn tensor1<T: Datum + Copy>(v: &[T]) -> Tensor {
    tract_ndarray::Array1::from(v.to_vec()).into()
}

pub(super) fn is_unit(axis: Axis) -> bool {
    matches!(axis, Axis::Unit | Axis::Dir)
}

pub(super) fn normalize_axis(axis: i64, rank: usize, node: &NodeProto) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    ensure!(
        (0..rank as i64).contains(&a),
        "{}: axis {axis} is out of range for rank {rank}",
        describe(node)
    );
    Ok(a as usize)
}
