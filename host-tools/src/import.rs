//! `lstm-edge import`: ONNX LSTM/GRU text models exported by PyTorch (`torch.onnx`)
//! or Keras (tf2onnx) into the runtime's f32 and integer blobs.
//!
//! The supported shape: token ids -> Gather (an embedding) or OneHot, or a float
//! one-hot graph input -> one forward LSTM or GRU -> flatten, last step or mean
//! over time -> Gemm (or MatMul + Add) -> Sigmoid or Softmax.
//!
//! The graph is read as tract-onnx's protobuf and walked from its input along the
//! data path. Every node on that path is interpreted against a symbolic layout
//! (batch, time, feature axes), so a transpose or reshape that would scramble the
//! features is refused rather than misread. Side computations that exporters add
//! (shape arithmetic, zero initial states, TensorFlow's negative-index wrap before
//! an embedding) are checked, and the converted model is run against tract on the
//! original graph before anything is returned.

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::host::HostModel;
use lstm_edge_runtime::tokenize::encode_vocab;
use lstm_edge_trainer::model::{InputConfig, ModelConfig, Params, Tensor as ParamTensor};
use lstm_edge_trainer::quantize::{quantize, Calibration};
use serde::Serialize;
use tract_onnx::pb::{self, GraphProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// What the importer accepts, for error messages.
const SUPPORTED: &str = "the importer takes token ids -> Gather or OneHot (or a one-hot float input) \
-> one forward LSTM or GRU -> flatten, last step or mean -> Gemm or MatMul+Add -> Sigmoid or Softmax";

/// Largest |converted - tract| the import accepts on its probe sequences.
pub const SELF_CHECK_TOLERANCE: f64 = 1e-4;

/// How the foreign graph turns token ids into the recurrent layer's input.
#[derive(Debug, Clone, PartialEq)]
pub enum ForeignInput {
    /// Rows of a `[ids, width]` table picked by Gather.
    Embedding(ParamTensor),
    /// A one-hot vector of `depth` ids: a OneHot op on ids (`float_input` false)
    /// or a float graph input that already holds one-hot rows (`float_input` true).
    OneHot { depth: usize, float_input: bool },
}

impl ForeignInput {
    /// Number of token ids the graph knows.
    pub fn ids(&self) -> usize {
        match self {
            ForeignInput::Embedding(table) => table.dims[0],
            ForeignInput::OneHot { depth, .. } => *depth,
        }
    }

    /// Width of the recurrent layer's input.
    pub fn width(&self) -> usize {
        match self {
            ForeignInput::Embedding(table) => table.dims[1],
            ForeignInput::OneHot { depth, .. } => *depth,
        }
    }
}

/// A foreign model as its graph holds it, in ONNX gate order and the foreign ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignModel {
    pub cell: Cell,
    pub hidden: usize,
    pub input: ForeignInput,
    /// The graph input's fixed sequence length, when it has one.
    pub seq_len: Option<usize>,
    pub head: Head,
    pub output: Output,
    /// `[G*H, width]`, `[G*H, H]`, `[G*H]`, `[G*H]` (ONNX `W`, `R`, `B` halves).
    pub w: ParamTensor,
    pub r: ParamTensor,
    pub wb: ParamTensor,
    pub rb: ParamTensor,
    /// `[outputs, features]` and `[outputs]`, with Gemm's alpha/beta folded in.
    pub head_w: ParamTensor,
    pub head_b: ParamTensor,
}

/// The token table the user supplies: the foreign model has no tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenTable {
    /// Id `i` is `table[i]`, then UNK, then PAD when present (the runtime's order).
    Chars {
        table: Vec<u8>,
        lowercase: bool,
        unk: bool,
        pad: bool,
    },
    /// One line per foreign id, in id order; `<pad>` and `<unk>` mark those ids.
    Words { lines: Vec<String> },
}

/// Marks the padding id's line in a vocab file.
pub const PAD_MARK: &str = "<pad>";
/// Marks the unknown-word id's line in a vocab file.
pub const UNK_MARK: &str = "<unk>";

impl TokenTable {
    /// Reads a vocab file: one token per line, line `k` (from 0) being id `k`.
    pub fn vocab_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read vocab file {}: give a UTF-8 file with one token per line, line k being the model's id k",
                path.display()
            )
        })?;
        let lines = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .collect();
        Ok(TokenTable::Words { lines })
    }
}

/// A converted model: our config and parameters, and the id each foreign id becomes.
#[derive(Debug, Clone)]
pub struct Converted {
    pub config: ModelConfig,
    pub params: Params,
    /// `runtime_id[foreign_id]`.
    pub runtime_id: Vec<u16>,
}

/// The result of an import: blobs plus what was checked.
#[derive(Debug, Clone)]
pub struct Imported {
    pub foreign: ForeignModel,
    pub converted: Converted,
    pub f32_blob: Vec<u8>,
    pub int_blob: Vec<u8>,
    pub calibration: Calibration,
    pub self_check: SelfCheck,
}

/// The converted f32 blob against tract on the original graph.
#[derive(Debug, Clone, Serialize)]
pub struct SelfCheck {
    pub sequences: usize,
    pub length: usize,
    pub max_abs_tract_vs_f32: f64,
    pub max_abs_tract_vs_int: f64,
}

/// Reads the graph, converts it with `tokens`, checks it against tract and
/// quantizes it (calibrated on random sequences of the model's ids).
pub fn import(onnx: &[u8], tokens: &TokenTable) -> Result<Imported> {
    let foreign = read_onnx(onnx)?;
    let converted = convert(&foreign, tokens)?;
    let probes = probe_sequences(&foreign, 8, 0x5eed);
    let calibration: Vec<Vec<u16>> = probe_sequences(&foreign, 64, 0xca1b)
        .iter()
        .map(|s| converted.map_ids(s))
        .collect::<Result<_>>()?;
    let quantized = quantize(&converted.config, &converted.params, &calibration)?;
    let self_check = self_check(
        onnx,
        &foreign,
        &converted,
        &quantized.f32_blob,
        &quantized.int_blob,
        &probes,
    )?;
    ensure!(
        self_check.max_abs_tract_vs_f32 <= SELF_CHECK_TOLERANCE,
        "the converted model does not reproduce the ONNX graph: max |tract - converted| = {:.3e} on {} probe sequences \
         (tolerance {SELF_CHECK_TOLERANCE:e}); the graph holds something the importer misreads",
        self_check.max_abs_tract_vs_f32,
        self_check.sequences
    );
    Ok(Imported {
        foreign,
        converted,
        f32_blob: quantized.f32_blob,
        int_blob: quantized.int_blob,
        calibration: quantized.calibration,
        self_check,
    })
}

impl Converted {
    /// Foreign ids into runtime ids.
    pub fn map_ids(&self, foreign_ids: &[u16]) -> Result<Vec<u16>> {
        foreign_ids
            .iter()
            .map(|&id| {
                self.runtime_id.get(id as usize).copied().with_context(|| {
                    format!(
                        "token id {id} is out of range: the model has {} ids",
                        self.runtime_id.len()
                    )
                })
            })
            .collect()
    }
}

/// Seeded random sequences of foreign ids, as long as the graph input wants
/// (16 steps when its length is free).
fn probe_sequences(foreign: &ForeignModel, count: usize, seed: u64) -> Vec<Vec<u16>> {
    let len = foreign.seq_len.unwrap_or(16);
    let ids = foreign.input.ids() as u64;
    let mut state = seed;
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| {
                    // SplitMix64: enough spread for probes, no extra dependency.
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    ((z ^ (z >> 31)) % ids) as u16
                })
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Conversion to our parameters.

/// Turns a foreign model into our config and parameters for the given token table.
pub fn convert(foreign: &ForeignModel, tokens: &TokenTable) -> Result<Converted> {
    let ids = foreign.input.ids();
    let gate_rows = foreign.w.dims[0];
    let (input, embedding, w, runtime_id) = match tokens {
        TokenTable::Chars {
            table,
            lowercase,
            unk,
            pad,
        } => {
            let rows = table.len() + usize::from(*unk) + usize::from(*pad);
            ensure!(
                rows == ids,
                "the model has {ids} token ids but --chars gives {} chars{}{} = {rows}: \
                 list one char per id, in id order (UNK and PAD, when flagged, are the last ids)",
                table.len(),
                if *unk { " + UNK" } else { "" },
                if *pad { " + PAD" } else { "" },
            );
            // One-hot input: an embedding folds into W (W' = W E^T), exactly.
            let w = match &foreign.input {
                ForeignInput::Embedding(e) => matmul_transposed(&foreign.w, e)?,
                ForeignInput::OneHot { .. } => foreign.w.clone(),
            };
            let input = InputConfig::Chars {
                table: table.clone(),
                lowercase: *lowercase,
                unk: *unk,
                pad: *pad,
            };
            (input, None, w, (0..ids as u16).collect::<Vec<u16>>())
        }
        TokenTable::Words { lines } => {
            ensure!(
                lines.len() == ids,
                "the vocab file has {} lines but the model has {ids} token ids: give one line per id, in id order",
                lines.len()
            );
            let (order, pad_line, unk_line) = word_order(lines)?;
            if matches!(foreign.head, Head::Flatten { .. }) {
                ensure!(
                    pad_line.is_some(),
                    "the model's flatten head pads with a PAD id: mark that id's line in the vocab file with {PAD_MARK}"
                );
            }
            let words: Vec<Vec<u8>> = order
                .iter()
                .map(|&line| lines[line].as_bytes().to_vec())
                .collect();
            let (strings, offsets) = encode_vocab(words);
            // Runtime rows: 0 = PAD, 1 = UNK, 2 + i = the i-th sorted word; a
            // missing PAD or UNK gets a zero row.
            let table = match &foreign.input {
                ForeignInput::Embedding(e) => e.clone(),
                ForeignInput::OneHot { depth, .. } => identity(*depth),
            };
            let width = table.dims[1];
            let row = |line: Option<usize>| -> Vec<f32> {
                line.map_or(vec![0.0; width], |l| {
                    table.data[l * width..(l + 1) * width].to_vec()
                })
            };
            let mut data = row(pad_line);
            data.extend(row(unk_line));
            let mut runtime_id = vec![1u16; ids];
            if let Some(l) = pad_line {
                runtime_id[l] = 0;
            }
            for (i, &line) in order.iter().enumerate() {
                data.extend(row(Some(line)));
                runtime_id[line] = (2 + i) as u16;
            }
            let embedding = ParamTensor::new(&[order.len() + 2, width], data)?;
            let input = InputConfig::Words {
                strings,
                offsets,
                embed_dim: width,
            };
            (input, Some(embedding), foreign.w.clone(), runtime_id)
        }
    };
    if matches!(foreign.head, Head::Flatten { .. } | Head::Mean) {
        ensure!(
            foreign.output == Output::Sigmoid,
            "the model has a {:?} head with {:?}: the runtime's flatten and mean heads give a sigmoid score only \
             (softmax takes the last step)",
            foreign.head,
            foreign.output
        );
    }
    let config = ModelConfig {
        cell: foreign.cell,
        input,
        hidden: foreign.hidden,
        head: foreign.head,
        output: foreign.output,
        dropout: 0.0,
    };
    config
        .validate()
        .context("the imported model does not fit the runtime")?;
    debug_assert_eq!(w.dims[0], gate_rows);
    let params = Params {
        embedding,
        w,
        r: foreign.r.clone(),
        wb: foreign.wb.clone(),
        rb: foreign.rb.clone(),
        head_w: foreign.head_w.clone(),
        head_b: foreign.head_b.clone(),
    };
    params.check_shapes(&config)?;
    Ok(Converted {
        config,
        params,
        runtime_id,
    })
}

/// The word lines in the runtime's order (ASCII-lowercased, sorted), and the PAD
/// and UNK lines, with errors naming the line.
fn word_order(lines: &[String]) -> Result<(Vec<usize>, Option<usize>, Option<usize>)> {
    let (mut pad, mut unk) = (None, None);
    let mut words: Vec<(Vec<u8>, usize)> = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let mark = match line.as_str() {
            PAD_MARK => Some(&mut pad),
            UNK_MARK => Some(&mut unk),
            _ => None,
        };
        if let Some(slot) = mark {
            if let Some(first) = slot.replace(k) {
                bail!(
                    "vocab line {}: {line} appears again (first on line {}): a model has one such id",
                    k + 1,
                    first + 1
                );
            }
            continue;
        }
        ensure!(
            !line.is_empty() && !line.chars().any(char::is_whitespace),
            "vocab line {}: {line:?} is not a word: give one token per line, without spaces",
            k + 1
        );
        words.push((line.to_ascii_lowercase().into_bytes(), k));
    }
    words.sort();
    for pair in words.windows(2) {
        ensure!(
            pair[0].0 != pair[1].0,
            "vocab lines {} and {} are the same word once lowercased ({:?}): the runtime matches words case-insensitively",
            pair[0].1 + 1,
            pair[1].1 + 1,
            String::from_utf8_lossy(&pair[0].0)
        );
    }
    Ok((words.into_iter().map(|(_, k)| k).collect(), pad, unk))
}

fn identity(n: usize) -> ParamTensor {
    let mut data = vec![0.0; n * n];
    for i in 0..n {
        data[i * n + i] = 1.0;
    }
    ParamTensor {
        dims: vec![n, n],
        data,
    }
}

/// `a [m, k] · b[n, k]^T`, accumulated in f64.
fn matmul_transposed(a: &ParamTensor, b: &ParamTensor) -> Result<ParamTensor> {
    let (m, k, n) = (a.dims[0], a.dims[1], b.dims[0]);
    ensure!(
        b.dims[1] == k,
        "embedding width {} vs W {:?}",
        b.dims[1],
        a.dims
    );
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        let row = &a.data[i * k..(i + 1) * k];
        for j in 0..n {
            let col = &b.data[j * k..(j + 1) * k];
            out.push(
                row.iter()
                    .zip(col)
                    .map(|(&x, &y)| x as f64 * y as f64)
                    .sum::<f64>() as f32,
            );
        }
    }
    ParamTensor::new(&[m, n], out)
}

// ---------------------------------------------------------------------------
// Reading the graph.

/// A symbolic axis of a value on the data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
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

/// An entry of a shape vector being computed in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    Known(i64),
    Of(Axis),
}

struct Graph<'a> {
    graph: &'a GraphProto,
    producer: HashMap<&'a str, &'a NodeProto>,
    consumers: HashMap<&'a str, Vec<&'a NodeProto>>,
    initializers: HashMap<&'a str, &'a TensorProto>,
    outputs: HashSet<&'a str>,
}

fn describe(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} node", node.op_type)
    } else {
        format!("{} node '{}'", node.op_type, node.name)
    }
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_str(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// ONNX data types this reader loads (float, ints, bool, double).
const LOADABLE_TYPES: [i32; 10] = [1, 2, 3, 4, 5, 6, 7, 9, 11, 12];

fn load(t: &TensorProto) -> Result<Tensor> {
    ensure!(
        LOADABLE_TYPES.contains(&t.data_type),
        "tensor '{}' has ONNX data type {}, which the importer does not read",
        t.name,
        t.data_type
    );
    tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, t, None)
        .map_err(|e| anyhow!("cannot load tensor '{}' ({e}): external data is unsupported, save the model with its weights inside", t.name))
}

impl<'a> Graph<'a> {
    fn new(graph: &'a GraphProto) -> Self {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
        for node in &graph.node {
            for out in &node.output {
                producer.insert(out.as_str(), node);
            }
            for inp in node.input.iter().filter(|i| !i.is_empty()) {
                consumers.entry(inp.as_str()).or_default().push(node);
            }
        }
        Graph {
            graph,
            producer,
            consumers,
            initializers: graph
                .initializer
                .iter()
                .map(|t| (t.name.as_str(), t))
                .collect(),
            outputs: graph.output.iter().map(|o| o.name.as_str()).collect(),
        }
    }

    /// The value's constant tensor: an initializer or a Constant node, through Identity/Cast.
    fn constant(&self, name: &str) -> Result<Option<Tensor>> {
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
            "Identity" | "Cast" => self.constant(&node.input[0]),
            _ => Ok(None),
        }
    }

    /// A constant input as f32 values with its dims, or an error naming what is missing.
    fn const_f32(
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

    fn const_i64(&self, name: &str) -> Result<Option<Vec<i64>>> {
        let Some(t) = self.constant(name)? else {
            return Ok(None);
        };
        let values = t.cast_to::<i64>()?;
        let view = values.to_plain_array_view::<i64>()?;
        Ok(Some(view.iter().copied().collect()))
    }

    /// Whether `name` is all zeros: a zero constant, ConstantOfShape of zero, or a
    /// zero reshaped, expanded or cast.
    fn is_zero(&self, name: &str) -> Result<bool> {
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
            | "Transpose" | "Slice" | "Gather" => self.is_zero(&node.input[0]),
            _ => Ok(false),
        }
    }

    /// Whether `name` is consumed by a node other than Shape, or is a graph output.
    fn is_used(&self, name: &str) -> bool {
        self.outputs.contains(name)
            || self
                .consumers
                .get(name)
                .is_some_and(|c| c.iter().any(|n| n.op_type != "Shape"))
    }
}

fn tensor0<T: Datum + Copy>(v: T) -> Tensor {
    tract_ndarray::arr0(v).into()
}

fn tensor1<T: Datum + Copy>(v: &[T]) -> Tensor {
    tract_ndarray::Array1::from(v.to_vec()).into()
}

/// The recurrent layer as found.
struct Recurrent {
    cell: Cell,
    hidden: usize,
    w: ParamTensor,
    r: ParamTensor,
    wb: ParamTensor,
    rb: ParamTensor,
}

/// The walk along the data path.
struct Walk<'a> {
    g: Graph<'a>,
    seq_len: Option<usize>,
    axes_of: HashMap<String, Vec<Axis>>,
    input: Option<ForeignInput>,
    recurrent: Option<Recurrent>,
    head: Option<Head>,
    dense: Option<(ParamTensor, ParamTensor)>,
    output: Option<Output>,
}

/// Reads an ONNX model into a [`ForeignModel`], or says which op, attribute or
/// shape it cannot take.
pub fn read_onnx(onnx: &[u8]) -> Result<ForeignModel> {
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &onnx[..])
        .map_err(|e| anyhow!("not an ONNX model: {e}"))?;
    let graph = proto
        .graph
        .as_ref()
        .context("the ONNX model has no graph")?;
    let g = Graph::new(graph);
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !g.initializers.contains_key(i.name.as_str()))
        .collect();
    let [input] = inputs[..] else {
        bail!(
            "the graph has {} inputs ({}): the importer takes one input of token ids or one-hot rows",
            inputs.len(),
            inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
        );
    };
    ensure!(
        graph.output.len() == 1,
        "the graph has {} outputs: the importer takes one (the probabilities)",
        graph.output.len()
    );
    let (elem, dims) = input_type(input)?;
    let mut walk = Walk {
        g,
        seq_len: None,
        axes_of: HashMap::new(),
        input: None,
        recurrent: None,
        head: None,
        dense: None,
        output: None,
    };
    let (start, id_check) = match (elem, dims.len()) {
        // int32 / int64 ids [batch, time].
        (6 | 7, 2) => {
            walk.seq_len = dims[1];
            walk.axes_of
                .insert(input.name.clone(), vec![Axis::Batch, Axis::Time]);
            walk.embedding_start(&input.name)?
        }
        // float one-hot [batch, time, ids].
        (1, 3) => {
            walk.seq_len = dims[1];
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
                vec![Axis::Batch, Axis::Time, Axis::Feature],
            );
            (input.name.clone(), None)
        }
        _ => bail!(
            "graph input '{}' has ONNX type {elem} and rank {}: the importer takes int ids [batch, time] \
             or float one-hot rows [batch, time, ids]",
            input.name,
            dims.len()
        ),
    };
    let foreign = walk.run(start)?;
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
struct IdCheck {
    indices: String,
    lookup: String,
}

/// Runs the graph up to the lookup's indices in tract for every id and checks it
/// hands each id through unchanged.
fn check_ids_pass_through(onnx: &[u8], check: &IdCheck, foreign: &ForeignModel) -> Result<()> {
    let ids = foreign.input.ids();
    let len = foreign.seq_len.unwrap_or(ids);
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .map_err(|e| anyhow!("tract cannot read the ONNX model: {e}"))?;
    let dt = model
        .input_fact(0)?
        .datum_type
        .concretize()
        .unwrap_or(i64::datum_type());
    model.select_outputs_by_name([check.indices.as_str()])?;
    let model = model.with_input_fact(0, InferenceFact::dt_shape(dt, [1, len]))?;
    let plan = model.into_optimized()?.into_runnable()?;
    for chunk in (0..ids as i64).collect::<Vec<_>>().chunks(len) {
        let mut row = chunk.to_vec();
        row.resize(len, 0);
        let input = tract_ndarray::Array2::from_shape_vec((1, len), row.clone())?;
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
    fn size(&self, axis: Axis) -> Option<i64> {
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
    fn embedding_start(&mut self, ids: &str) -> Result<(String, Option<IdCheck>)> {
        let mut reached: HashSet<&str> = HashSet::from([ids]);
        for node in &self.g.graph.node {
            if node.input.iter().any(|i| reached.contains(i.as_str())) && node.op_type != "Shape" {
                reached.extend(node.output.iter().map(String::as_str));
            }
        }
        let mut found = Vec::new();
        for node in &self.g.graph.node {
            let candidate = match node.op_type.as_str() {
                "Gather" => {
                    node.input.len() == 2
                        && reached.contains(node.input[1].as_str())
                        && self.g.constant(&node.input[0])?.is_some()
                }
                "OneHot" => reached.contains(node.input[0].as_str()),
                _ => false,
            };
            if candidate {
                found.push(node);
            }
        }
        let node = match found[..] {
            [node] => node,
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
        };
        let slot = usize::from(node.op_type == "Gather");
        let indices = &node.input[slot];
        let mut direct = indices.as_str();
        while direct != ids {
            match self.g.producer.get(direct) {
                Some(p) if matches!(p.op_type.as_str(), "Cast" | "Identity") => {
                    direct = &p.input[0]
                }
                _ => break,
            }
        }
        // E.g. TensorFlow's wrap of negative ids: it must leave valid ids as they are.
        let check = (direct != ids).then(|| IdCheck {
            indices: indices.clone(),
            lookup: describe(node),
        });
        self.axes_of
            .insert(indices.clone(), vec![Axis::Batch, Axis::Time]);
        match node.op_type.as_str() {
            "Gather" => {
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
                self.input = Some(ForeignInput::Embedding(ParamTensor::new(&dims, data)?));
            }
            _ => {
                let depth = self
                    .g
                    .const_i64(&node.input[1])?
                    .and_then(|d| d.first().copied())
                    .with_context(|| format!("{}: its depth is not a constant", describe(node)))?;
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
                self.input = Some(ForeignInput::OneHot {
                    depth: depth as usize,
                    float_input: false,
                });
            }
        }
        let out = node.output[0].clone();
        self.axes_of
            .insert(out.clone(), vec![Axis::Batch, Axis::Time, Axis::Feature]);
        Ok((out, check))
    }

    fn run(mut self, start: String) -> Result<ForeignModel> {
        let mut value = start;
        let graph_output = self.g.graph.output[0].name.clone();
        while value != graph_output {
            let consumers: Vec<&NodeProto> = self
                .g
                .consumers
                .get(value.as_str())
                .map(|c| c.iter().copied().filter(|n| n.op_type != "Shape").collect())
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
                            "unsupported ONNX op {} ({}): the recurrent layer was exported as a loop, not as an ONNX \
                             LSTM/GRU op (tf2onnx does this for Keras 3 GRU layers; Keras 2 / tf_keras models convert to GRU); {SUPPORTED}",
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

    fn finish(self, last: &str) -> Result<ForeignModel> {
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
                "the graph's output '{last}' comes from {}: the runtime's models end in Sigmoid or Softmax",
                self.g
                    .producer
                    .get(last)
                    .map_or("the input".to_string(), |n| describe(n))
            )
        })?;
        let input = self.input.context("the graph has no input layer")?;
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
            head,
            output,
            w: recurrent.w,
            r: recurrent.r,
            wb: recurrent.wb,
            rb: recurrent.rb,
            head_w,
            head_b,
        })
    }

    /// Interprets one node on the data path, returning its output and layout.
    fn step(
        &mut self,
        node: &NodeProto,
        slot: usize,
        axes: Vec<Axis>,
    ) -> Result<(String, Vec<Axis>)> {
        let out = node.output.first().cloned().unwrap_or_default();
        let op = node.op_type.as_str();
        ensure!(
            self.output.is_none(),
            "{} follows the output activation: {SUPPORTED}",
            describe(node)
        );
        ensure!(
            slot == 0 || matches!(op, "Add" | "Mul" | "Concat"),
            "{} takes the data path on input {slot}: unsupported; {SUPPORTED}",
            describe(node)
        );
        match op {
            "Identity" | "Dropout" | "Cast" => Ok((out, axes)),
            "Transpose" => {
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
            "Squeeze" => {
                let listed = match attr_ints(node, "axes") {
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
                        "{}: squeezes the {:?} axis, which is not of size 1",
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
            "Unsqueeze" => {
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
                let mut result = axes;
                for i in at {
                    result.insert(i, Axis::Unit);
                }
                Ok((out, result))
            }
            "LSTM" | "GRU" => self.recurrent_node(node, &axes),
            "Gather" => self.gather(node, axes),
            "Slice" => self.slice(node, axes),
            "ReduceMean" => self.reduce_mean(node, axes),
            "Reshape" => {
                let target = self.shape_vector(node.input.get(1).map_or("", String::as_str), node)?;
                let allow_zero = attr_int(node, "allowzero").unwrap_or(0) != 0;
                let target: Vec<Dim> = target
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| match d {
                        Dim::Known(0) if !allow_zero => {
                            axes.get(i).map_or(d, |&a| Dim::Of(a))
                        }
                        _ => d,
                    })
                    .collect();
                self.reshape(node, out, axes, &target)
            }
            "Flatten" => {
                let split = normalize_axis(attr_int(node, "axis").unwrap_or(1), axes.len() + 1, node)?;
                let outer: Vec<Axis> = axes[..split].iter().copied().filter(|a| !is_unit(*a)).collect();
                ensure!(
                    outer == [Axis::Batch],
                    "{}: flattens from axis {split} of a value laid out as {axes:?}: unsupported",
                    describe(node)
                );
                let target = [Dim::Of(Axis::Batch), Dim::Known(-1)];
                self.reshape(node, out, axes, &target)
            }
            "Gemm" | "MatMul" => self.dense_node(node, axes),
            "Add" => {
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
            "Sigmoid" | "Softmax" => self.activation(node, out, axes),
            "Loop" | "Scan" => bail!(
                "unsupported ONNX op {op} ({}): the recurrent layer was exported as a loop, not as an ONNX LSTM/GRU op \
                 (tf2onnx does this for Keras GRU layers and some LSTM ones); {SUPPORTED}",
                describe(node)
            ),
            _ => bail!("unsupported ONNX op {op} ({}) on the data path: {SUPPORTED}", describe(node)),
        }
    }

    fn recurrent_node(&mut self, node: &NodeProto, axes: &[Axis]) -> Result<(String, Vec<Axis>)> {
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
        let direction = attr_str(node, "direction").unwrap_or_else(|| "forward".into());
        ensure!(
            direction == "forward",
            "{name} is {direction}: only forward layers are supported (no bidirectional or reverse)"
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
                "{name} sets {unsupported}: unsupported (the runtime's cell has no {unsupported})"
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
                "{name} has linear_before_reset = 0: the runtime's GRU applies the reset gate after the recurrent \
                 product (linear_before_reset = 1, as PyTorch and Keras' reset_after=True do)"
            );
        }
        let layout = attr_int(node, "layout").unwrap_or(0);
        let expected: &[Axis] = match layout {
            0 => &[Axis::Time, Axis::Batch, Axis::Feature],
            1 => &[Axis::Batch, Axis::Time, Axis::Feature],
            _ => bail!("{name} has layout {layout}: expected 0 or 1"),
        };
        ensure!(
            axes == expected,
            "{name} gets its input laid out as {axes:?} but its layout {layout} reads it as {expected:?}: unsupported"
        );
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
            "{name}: W dims {wd:?} and R dims {rd:?} do not fit a {:?} cell",
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
                "{name} has peephole weights P ('{p}'): unsupported"
            );
        }
        self.recurrent = Some(Recurrent {
            cell,
            hidden,
            w: ParamTensor::new(&[gh, wd[2]], w)?,
            r: ParamTensor::new(&[gh, hidden], r)?,
            wb: ParamTensor::new(&[gh], wb)?,
            rb: ParamTensor::new(&[gh], rb)?,
        });
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
                Ok((node.output[0].clone(), axes))
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

    /// Requires the recurrent layer to be in place, with the time axis still there.
    fn time_axis(&self, node: &NodeProto, axes: &[Axis]) -> Result<()> {
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

    fn is_last_index(&self, index: i64) -> bool {
        index == -1 || self.seq_len.is_some_and(|t| index == t as i64 - 1)
    }

    fn gather(&mut self, node: &NodeProto, mut axes: Vec<Axis>) -> Result<(String, Vec<Axis>)> {
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
        Ok((node.output[0].clone(), axes))
    }

    fn slice(&mut self, node: &NodeProto, mut axes: Vec<Axis>) -> Result<(String, Vec<Axis>)> {
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
            let (start, end) = (starts[k], ends[k]);
            let step = steps.as_ref().map_or(1, |s| s[k]);
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
        Ok((node.output[0].clone(), axes))
    }

    fn reduce_mean(&mut self, node: &NodeProto, axes: Vec<Axis>) -> Result<(String, Vec<Axis>)> {
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
        let reduced: Vec<usize> = listed
            .iter()
            .map(|&a| normalize_axis(a, axes.len(), node))
            .collect::<Result<_>>()?;
        ensure!(
            reduced.len() == 1 && axes[reduced[0]] == Axis::Time,
            "{}: averages over {:?}: only the mean over time is supported",
            describe(node),
            reduced.iter().map(|&i| axes[i]).collect::<Vec<_>>()
        );
        self.head = Some(Head::Mean);
        let mut result = axes;
        if attr_int(node, "keepdims").unwrap_or(1) != 0 {
            result[reduced[0]] = Axis::Unit;
        } else {
            result.remove(reduced[0]);
        }
        Ok((node.output[0].clone(), result))
    }

    /// The entries of a shape vector computed in the graph (constants, Shape of
    /// path values, Gather/Slice/Concat/Unsqueeze/Cast on those).
    fn shape_vector(&self, name: &str, user: &NodeProto) -> Result<Vec<Dim>> {
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
                let axes = self.axes_of.get(&node.input[0]).with_context(|| {
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
                let (start, end) = (clamp(ints(1)?[0]), clamp(ints(2)?[0]));
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

    fn reshape(
        &mut self,
        node: &NodeProto,
        out: String,
        axes: Vec<Axis>,
        target: &[Dim],
    ) -> Result<(String, Vec<Axis>)> {
        let kept: Vec<Axis> = axes.iter().copied().filter(|&a| !is_unit(a)).collect();
        let refuse = || {
            anyhow!(
                "{}: reshapes a value laid out as {axes:?} to {target:?}: unsupported; {SUPPORTED}",
                describe(node)
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

    fn dense_node(&mut self, node: &NodeProto, axes: Vec<Axis>) -> Result<(String, Vec<Axis>)> {
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
            "{name} takes a value laid out as {axes:?}: the dense layer must follow the recurrent layer's head"
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
        Ok((node.output[0].clone(), vec![Axis::Batch, Axis::Out]))
    }

    fn activation(
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
            "{name} on a value laid out as {axes:?}"
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

fn is_unit(axis: Axis) -> bool {
    matches!(axis, Axis::Unit | Axis::Dir)
}

fn normalize_axis(axis: i64, rank: usize, node: &NodeProto) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    ensure!(
        (0..rank as i64).contains(&a),
        "{}: axis {axis} is out of range for rank {rank}",
        describe(node)
    );
    Ok(a as usize)
}

// ---------------------------------------------------------------------------
// Checking against tract.

/// Runs `probes` (foreign ids) through tract on the original graph and through
/// the converted blobs.
fn self_check(
    onnx: &[u8],
    foreign: &ForeignModel,
    converted: &Converted,
    f32_blob: &[u8],
    int_blob: &[u8],
    probes: &[Vec<u16>],
) -> Result<SelfCheck> {
    let mut tract = ForeignRunner::new(onnx, foreign)?;
    let f32_model = HostModel::new(f32_blob)?;
    let int_model = HostModel::new(int_blob)?;
    let (mut f32_diff, mut int_diff) = (0f64, 0f64);
    for ids in probes {
        let want = tract.outputs(ids)?;
        let runtime_ids = converted.map_ids(ids)?;
        let f = f32_model.outputs(&runtime_ids)?;
        let i = int_model.outputs(&runtime_ids)?;
        ensure!(
            want.len() == f.len(),
            "tract gives {} outputs, the converted model {}",
            want.len(),
            f.len()
        );
        for ((w, f), i) in want.iter().zip(&f).zip(&i) {
            f32_diff = f32_diff.max((w - f).abs());
            int_diff = int_diff.max((w - i).abs());
        }
    }
    Ok(SelfCheck {
        sequences: probes.len(),
        length: probes.first().map_or(0, Vec::len),
        max_abs_tract_vs_f32: f32_diff,
        max_abs_tract_vs_int: int_diff,
    })
}

type Plan = std::sync::Arc<TypedSimplePlan>;

/// Tract on a foreign graph, fed foreign ids (or their one-hot rows).
pub struct ForeignRunner {
    plan: Plan,
    len: usize,
    input: ForeignInput,
    dt: DatumType,
}

impl ForeignRunner {
    /// Compiles the graph for one sequence of the model's length (16 steps when free).
    pub fn new(onnx: &[u8], foreign: &ForeignModel) -> Result<Self> {
        Self::with_len(onnx, foreign, foreign.seq_len.unwrap_or(16))
    }

    /// Compiles the graph for one sequence of `len` steps.
    pub fn with_len(onnx: &[u8], foreign: &ForeignModel, len: usize) -> Result<Self> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut &onnx[..])
            .map_err(|e| anyhow!("tract cannot read the ONNX model: {e}"))?;
        let declared = model.input_fact(0)?.datum_type.concretize();
        let (dt, fact) = match foreign.input {
            ForeignInput::OneHot {
                depth,
                float_input: true,
            } => (
                f32::datum_type(),
                InferenceFact::dt_shape(f32::datum_type(), [1, len, depth]),
            ),
            _ => {
                let dt = declared.unwrap_or(i64::datum_type());
                (dt, InferenceFact::dt_shape(dt, [1, len]))
            }
        };
        let plan = model
            .with_input_fact(0, fact)?
            .into_optimized()
            .map_err(|e| anyhow!("tract cannot optimize the ONNX model: {e}"))?
            .into_runnable()?;
        Ok(ForeignRunner {
            plan,
            len,
            input: foreign.input.clone(),
            dt,
        })
    }

    /// The graph's outputs for one sequence of foreign ids.
    pub fn outputs(&mut self, ids: &[u16]) -> Result<Vec<f64>> {
        ensure!(
            ids.len() == self.len,
            "tract was compiled for {} steps, got {}",
            self.len,
            ids.len()
        );
        let input: Tensor = match self.input {
            ForeignInput::OneHot {
                depth,
                float_input: true,
            } => {
                let mut rows = vec![0f32; ids.len() * depth];
                for (t, &id) in ids.iter().enumerate() {
                    rows[t * depth + id as usize] = 1.0;
                }
                tract_ndarray::Array3::from_shape_vec((1, ids.len(), depth), rows)?.into()
            }
            _ => {
                let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
                let t: Tensor = tract_ndarray::Array2::from_shape_vec((1, ids.len()), ids)?.into();
                t.cast_to_dt(self.dt)?.into_owned()
            }
        };
        let out = self.plan.run(tvec!(input.into_tvalue()))?;
        let out = out
            .first()
            .context("the ONNX model has no output")?
            .cast_to::<f32>()?;
        let values = out
            .to_plain_array_view::<f32>()?
            .iter()
            .map(|&v| v as f64)
            .collect();
        Ok(values)
    }
}

/// A short description of an import, for the command line and the report file.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub cell: String,
    pub hidden: usize,
    pub input: String,
    pub head: String,
    pub output: String,
    pub token_ids: usize,
    pub f32_blob_bytes: usize,
    pub int_blob_bytes: usize,
    pub scale_scheme: String,
    pub self_check: SelfCheck,
}

impl Imported {
    pub fn summary(&self) -> ImportSummary {
        let f = &self.foreign;
        ImportSummary {
            cell: format!("{:?}", f.cell),
            hidden: f.hidden,
            input: match &f.input {
                ForeignInput::Embedding(e) => format!("embedding {}x{}", e.dims[0], e.dims[1]),
                ForeignInput::OneHot { depth, .. } => format!("one-hot {depth}"),
            },
            head: format!("{:?}", f.head),
            output: format!("{:?}", f.output),
            token_ids: f.input.ids(),
            f32_blob_bytes: self.f32_blob.len(),
            int_blob_bytes: self.int_blob.len(),
            scale_scheme: self.calibration.chosen.clone(),
            self_check: self.self_check.clone(),
        }
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "cell                     {} ({} units)",
            self.cell, self.hidden
        )?;
        writeln!(
            f,
            "input                    {} ({} token ids)",
            self.input, self.token_ids
        )?;
        writeln!(f, "head                     {}", self.head)?;
        writeln!(f, "output                   {}", self.output)?;
        writeln!(f, "f32 blob                 {} bytes", self.f32_blob_bytes)?;
        writeln!(
            f,
            "int blob                 {} bytes ({} scales)",
            self.int_blob_bytes, self.scale_scheme
        )?;
        writeln!(
            f,
            "max |tract - f32|        {:.3e} ({} probe sequences of {} ids)",
            self.self_check.max_abs_tract_vs_f32, self.self_check.sequences, self.self_check.length
        )?;
        writeln!(
            f,
            "max |tract - int|        {:.3e}",
            self.self_check.max_abs_tract_vs_int
        )
    }
}

/// `lstm-edge import`: a foreign ONNX model into `model.blob` (integer) and
/// `model-f32.blob`, with `import.json` describing what was read and checked.
#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("tokens").required(true).args(["chars", "vocab"]))]
pub struct ImportArgs {
    /// The ONNX model (PyTorch torch.onnx or Keras tf2onnx export).
    pub model: std::path::PathBuf,
    /// Char-level model: the char of each token id, in id order (UNK and PAD follow).
    #[arg(long)]
    pub chars: Option<String>,
    /// The id after the chars is UNK (chars outside the table).
    #[arg(long, requires = "chars")]
    pub unk: bool,
    /// The last id is PAD (flatten heads pad with it).
    #[arg(long, requires = "chars")]
    pub pad: bool,
    /// Lowercase text before looking chars up.
    #[arg(long, requires = "chars")]
    pub lowercase: bool,
    /// Word-level model: a file with one word per line, line k being id k;
    /// `<pad>` and `<unk>` lines mark those ids.
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<std::path::PathBuf>,
    /// Directory for model.blob, model-f32.blob and import.json.
    #[arg(long)]
    pub out: std::path::PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// Runs `lstm-edge import`.
pub fn run(args: &ImportArgs) -> Result<()> {
    let onnx = std::fs::read(&args.model).with_context(|| {
        format!(
            "cannot read ONNX model {}: check the path",
            args.model.display()
        )
    })?;
    let tokens = match (&args.chars, &args.vocab) {
        (Some(chars), None) => TokenTable::Chars {
            table: chars_to_latin1(chars)?,
            lowercase: args.lowercase,
            unk: args.unk,
            pad: args.pad,
        },
        (None, Some(path)) => TokenTable::vocab_file(path)?,
        _ => bail!("give either --chars or --vocab: the ONNX model has no tokenizer"),
    };
    let imported = import(&onnx, &tokens)
        .with_context(|| format!("cannot import {}", args.model.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let summary = imported.summary();
    for (name, bytes) in [
        ("model.blob", imported.int_blob.clone()),
        ("model-f32.blob", imported.f32_blob.clone()),
        ("import.json", serde_json::to_vec_pretty(&summary)?),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
        println!("written to {}", args.out.display());
    }
    Ok(())
}

/// The char table as the runtime's bytes (Latin-1: one byte per char).
fn chars_to_latin1(chars: &str) -> Result<Vec<u8>> {
    chars
        .chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                anyhow!("--chars: {c:?} is outside Latin-1; the runtime's char tables hold one byte per char")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn word_order_sorts_words_and_finds_the_marks() {
        let (order, pad, unk) =
            word_order(&lines(&["<pad>", "zebra", "<unk>", "Apple", "mango"])).unwrap();
        assert_eq!(order, vec![3, 4, 1]);
        assert_eq!((pad, unk), (Some(0), Some(2)));
    }

    #[test]
    fn word_order_names_the_lines_of_a_duplicate() {
        let err = word_order(&lines(&["the", "cat", "The"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lines 1 and 3"), "{err}");
        let err = word_order(&lines(&["<pad>", "a", "<pad>"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("first on line 1"),
            "{err}"
        );
        let err = word_order(&lines(&["a", "two words"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn folding_an_embedding_into_w_gives_the_same_projection() {
        let w = ParamTensor::new(&[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]).unwrap();
        let e = ParamTensor::new(&[2, 3], vec![0.0, 1.0, 0.0, 2.0, 0.0, -1.0]).unwrap();
        let folded = matmul_transposed(&w, &e).unwrap();
        // Column k of the folded matrix is W times embedding row k.
        assert_eq!(folded.dims, vec![2, 2]);
        assert_eq!(folded.data, vec![2.0, -1.0, 0.5, -2.0]);
    }

    #[test]
    fn garbage_is_not_an_onnx_model() {
        let err = read_onnx(b"\xff\xfe not a protobuf")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ONNX"), "{err}");
    }
}
