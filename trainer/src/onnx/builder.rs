//! A small ONNX graph builder: values are tensor names, every op gets a fresh,
//! graph-unique output name, and the result serialises to a `ModelProto`.

use std::collections::HashSet;

use prost::Message;

use super::proto::{self, attribute_type, data_type};

/// Element type of a graph input or output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    I64,
    I32,
    Bool,
}

impl Elem {
    /// The `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            Elem::F32 => data_type::FLOAT,
            Elem::I64 => data_type::INT64,
            Elem::I32 => data_type::INT32,
            Elem::Bool => data_type::BOOL,
        }
    }
}

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    /// A symbolic dimension such as `"batch"`; equal names mean equal sizes.
    Sym(&'static str),
}

/// A tensor in the graph, by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Value(pub String);

/// A node attribute.
#[derive(Clone, Debug)]
pub enum Attr {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
    Floats(&'static str, Vec<f32>),
    Str(&'static str, String),
    Strs(&'static str, Vec<String>),
    /// A subgraph such as a `Scan`/`Loop` body or an `If` branch.
    Graph(&'static str, Graph),
    /// A constant tensor (e.g. `ConstantOfShape`'s `value`).
    Tensor(&'static str, proto::TensorProto),
}

impl Attr {
    fn to_proto(&self) -> proto::AttributeProto {
        let mut a = proto::AttributeProto::default();
        match self {
            Attr::Int(name, v) => {
                a.name = (*name).into();
                a.r#type = attribute_type::INT;
                a.i = *v;
            }
            Attr::Ints(name, v) => {
                a.name = (*name).into();
                a.r#type = attribute_type::INTS;
                a.ints = v.clone();
            }
            Attr::Float(name, v) => {
                a.name = (*name).into();
                a.r#type = attribute_type::FLOAT;
                a.f = *v;
            }
            Attr::Floats(name, v) => {
                a.name = (*name).into();
                a.r#type = attribute_type::FLOATS;
                a.floats = v.clone();
            }
            Attr::Str(name, v) => {
                a.name = (*name).into();
                a.r#type = attribute_type::STRING;
                a.s = v.as_bytes().to_vec();
            }
            Attr::Strs(name, v) => {
                a.name = (*name).into();
                a.r#type = attribute_type::STRINGS;
                a.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
            }
            Attr::Graph(name, g) => {
                a.name = (*name).into();
                a.r#type = attribute_type::GRAPH;
                a.g = Some(Box::new(g.to_proto()));
            }
            Attr::Tensor(name, t) => {
                a.name = (*name).into();
                a.r#type = attribute_type::TENSOR;
                a.t = Some(t.clone());
            }
        }
        a
    }
}

/// An f32 tensor as a `TensorProto` (raw little-endian data).
pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> proto::TensorProto {
    check_len(name, dims, data.len());
    proto::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An i64 tensor as a `TensorProto` (raw little-endian data).
pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> proto::TensorProto {
    check_len(name, dims, data.len());
    proto::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::INT64,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn check_len(name: &str, dims: &[i64], len: usize) {
    let expected: i64 = dims.iter().product();
    assert!(
        usize::try_from(expected).ok() == Some(len),
        "tensor {name:?}: dims {dims:?} hold {expected} elements but {len} were given"
    );
}

fn value_info(name: &str, elem: Option<Elem>, shape: &[Dim]) -> proto::ValueInfoProto {
    use proto::tensor_shape_proto::{dimension::Value as D, Dimension};
    let r#type = elem.map(|elem| proto::TypeProto {
        denotation: String::new(),
        value: Some(proto::type_proto::Value::TensorType(
            proto::type_proto::Tensor {
                elem_type: elem.onnx_code(),
                shape: Some(proto::TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|d| Dimension {
                            denotation: String::new(),
                            value: Some(match d {
                                Dim::Fixed(n) => D::DimValue(*n),
                                Dim::Sym(s) => D::DimParam((*s).into()),
                            }),
                        })
                        .collect(),
                }),
            },
        )),
    });
    proto::ValueInfoProto {
        name: name.into(),
        r#type,
        doc_string: String::new(),
    }
}

/// An ONNX graph under construction.
///
/// Generated names are `"{graph name}/{hint}_{n}"`, so a subgraph (a `Scan` body,
/// say) built with a different name never collides with its outer graph, and
/// may refer to outer values by name. Attaching a subgraph that defines a name the
/// outer graph also defines is a programming error and panics with both names.
#[derive(Clone, Debug)]
pub struct Graph {
    name: String,
    nodes: Vec<proto::NodeProto>,
    inputs: Vec<proto::ValueInfoProto>,
    outputs: Vec<proto::ValueInfoProto>,
    initializers: Vec<proto::TensorProto>,
    /// Every name this graph or its subgraphs define.
    defined: HashSet<String>,
    counter: usize,
}

impl Graph {
    pub fn new(name: &str) -> Self {
        Graph {
            name: name.into(),
            nodes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            initializers: Vec::new(),
            defined: HashSet::new(),
            counter: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of nodes so far (subgraph nodes not counted).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A name no other value in this graph has.
    pub fn fresh(&mut self, hint: &str) -> String {
        loop {
            let name = format!("{}/{}_{}", self.name, hint, self.counter);
            self.counter += 1;
            if !self.defined.contains(&name) {
                return name;
            }
        }
    }

    fn define(&mut self, name: &str) {
        assert!(
            self.defined.insert(name.to_string()),
            "graph {:?}: the name {name:?} is defined twice",
            self.name
        );
    }

    /// Declares a graph input with the exact name given.
    pub fn input(&mut self, name: &str, elem: Elem, shape: &[Dim]) -> Value {
        self.define(name);
        self.inputs.push(value_info(name, Some(elem), shape));
        Value(name.into())
    }

    /// Declares `value` as a graph output called `name`, adding an `Identity`
    /// when the value has another name (or is itself a graph input).
    pub fn output(&mut self, value: &Value, name: &str, elem: Elem, shape: &[Dim]) {
        let name = self.output_name(value, name);
        self.outputs.push(value_info(&name, Some(elem), shape));
    }

    /// Like [`Graph::output`] without a declared type, for subgraph bodies whose
    /// types the runtime infers.
    pub fn output_untyped(&mut self, value: &Value, name: &str) {
        let name = self.output_name(value, name);
        self.outputs.push(value_info(&name, None, &[]));
    }

    fn output_name(&mut self, value: &Value, name: &str) -> String {
        let is_input = self.inputs.iter().any(|i| i.name == value.0);
        if value.0 != name || is_input {
            self.define(name);
            self.nodes.push(proto::NodeProto {
                input: vec![value.0.clone()],
                output: vec![name.into()],
                name: format!("{}/out_{}", self.name, name),
                op_type: "Identity".into(),
                ..Default::default()
            });
        }
        name.into()
    }

    /// A named f32 initializer (a trainable weight, typically).
    pub fn initializer(&mut self, name: &str, dims: &[i64], data: &[f32]) -> Value {
        self.define(name);
        self.initializers.push(tensor_f32(name, dims, data));
        Value(name.into())
    }

    /// A named i64 initializer.
    pub fn initializer_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> Value {
        self.define(name);
        self.initializers.push(tensor_i64(name, dims, data));
        Value(name.into())
    }

    /// An f32 constant (a `Constant` node, so it also works inside subgraphs).
    pub fn const_f32(&mut self, dims: &[i64], data: &[f32]) -> Value {
        let t = tensor_f32("", dims, data);
        self.constant(t)
    }

    /// An i64 constant (shapes, axes, indices).
    pub fn const_i64(&mut self, dims: &[i64], data: &[i64]) -> Value {
        let t = tensor_i64("", dims, data);
        self.constant(t)
    }

    fn constant(&mut self, tensor: proto::TensorProto) -> Value {
        self.op("Constant", &[], vec![Attr::Tensor("value", tensor)])
    }

    /// `x` converted to element type `to`.
    pub fn cast(&mut self, x: &Value, to: Elem) -> Value {
        self.op(
            "Cast",
            &[x],
            vec![Attr::Int("to", i64::from(to.onnx_code()))],
        )
    }

    /// Adds a node with one output and returns it.
    pub fn op(&mut self, op_type: &str, inputs: &[&Value], attrs: Vec<Attr>) -> Value {
        self.op_in_domain("", op_type, inputs, attrs)
    }

    /// [`Graph::op`] for an operator of `domain` (`""`: the default domain). The
    /// model imports each domain its nodes use at version 1.
    pub fn op_in_domain(
        &mut self,
        domain: &str,
        op_type: &str,
        inputs: &[&Value],
        attrs: Vec<Attr>,
    ) -> Value {
        let inputs: Vec<Option<&Value>> = inputs.iter().map(|v| Some(*v)).collect();
        self.node(domain, op_type, &inputs, attrs, 1)
            .pop()
            .expect("node returns exactly one output")
    }

    /// Adds a node with `outputs` outputs; `None` inputs are ONNX's empty optional
    /// input `""`.
    pub fn op_multi(
        &mut self,
        op_type: &str,
        inputs: &[Option<&Value>],
        attrs: Vec<Attr>,
        outputs: usize,
    ) -> Vec<Value> {
        self.node("", op_type, inputs, attrs, outputs)
    }

    /// [`Graph::op_multi`] for an operator of `domain`.
    fn node(
        &mut self,
        domain: &str,
        op_type: &str,
        inputs: &[Option<&Value>],
        attrs: Vec<Attr>,
        outputs: usize,
    ) -> Vec<Value> {
        for attr in &attrs {
            if let Attr::Graph(_, body) = attr {
                self.adopt_subgraph_names(body);
            }
        }
        let hint = op_type.to_ascii_lowercase();
        let out: Vec<Value> = (0..outputs)
            .map(|_| {
                let name = self.fresh(&hint);
                self.define(&name);
                Value(name)
            })
            .collect();
        let node_name = self.fresh(&format!("{hint}_node"));
        self.nodes.push(proto::NodeProto {
            input: inputs
                .iter()
                .map(|v| v.map(|v| v.0.clone()).unwrap_or_default())
                .collect(),
            output: out.iter().map(|v| v.0.clone()).collect(),
            name: node_name,
            op_type: op_type.into(),
            domain: domain.into(),
            attribute: attrs.iter().map(Attr::to_proto).collect(),
            ..Default::default()
        });
        out
    }

    /// ONNX names are one scope across nesting: a subgraph may not redefine an
    /// outer name, and the outer graph may not later reuse one of the body's.
    fn adopt_subgraph_names(&mut self, body: &Graph) {
        for name in &body.defined {
            assert!(
                !self.defined.contains(name),
                "subgraph {:?} defines {name:?}, which graph {:?} already defines; \
                 give the subgraph another name or rename the value",
                body.name,
                self.name
            );
        }
        self.defined.extend(body.defined.iter().cloned());
    }

    pub fn to_proto(&self) -> proto::GraphProto {
        proto::GraphProto {
            node: self.nodes.clone(),
            name: self.name.clone(),
            initializer: self.initializers.clone(),
            input: self.inputs.clone(),
            output: self.outputs.clone(),
            ..Default::default()
        }
    }

    /// The graph as a serialised `ModelProto` importing the default domain at `opset`.
    pub fn to_model_bytes(&self, opset: i64) -> Vec<u8> {
        self.to_model_bytes_with_metadata(opset, &[])
    }

    pub fn to_model_bytes_with_metadata(
        &self,
        opset: i64,
        metadata: &[(String, String)],
    ) -> Vec<u8> {
        self.to_model(opset, metadata).encode_to_vec()
    }

    /// The graph wrapped in a `ModelProto`.
    pub fn to_model(&self, opset: i64, metadata: &[(String, String)]) -> proto::ModelProto {
        let mut opset_import = vec![proto::OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }];
        for node in &self.nodes {
            if !opset_import.iter().any(|o| o.domain == node.domain) {
                opset_import.push(proto::OperatorSetIdProto {
                    domain: node.domain.clone(),
                    version: 1,
                });
            }
        }
        proto::ModelProto {
            ir_version: ir_version_for(opset),
            opset_import,
            producer_name: "lstm-edge".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.to_proto()),
            metadata_props: metadata
                .iter()
                .map(|(key, value)| proto::StringStringEntryProto {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// The lowest IR version that carries `opset` (ONNX's versioning table), so that
/// older runtimes still accept the file.
pub fn ir_version_for(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::tensor_shape_proto::dimension::Value as D;

    fn decode(bytes: &[u8]) -> proto::ModelProto {
        proto::ModelProto::decode(bytes).expect("builder output decodes")
    }

    #[test]
    fn tiny_graph_round_trips_through_protobuf() {
        let mut g = Graph::new("tiny");
        let x = g.input("x", Elem::F32, &[Dim::Sym("batch"), Dim::Fixed(3)]);
        let w = g.initializer("w", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let y = g.op("MatMul", &[&x, &w], vec![]);
        let axes = g.const_i64(&[1], &[1]);
        let s = g.op("ReduceSum", &[&y, &axes], vec![Attr::Int("keepdims", 1)]);
        g.output(&s, "y", Elem::F32, &[Dim::Sym("batch"), Dim::Fixed(1)]);
        let meta = vec![("k".to_string(), "v".to_string())];
        let m = decode(&g.to_model_bytes_with_metadata(17, &meta));

        assert_eq!(m.ir_version, 8);
        assert_eq!(m.opset_import.len(), 1, "the default domain alone");
        assert_eq!(m.opset_import[0].domain, "");
        assert_eq!(m.opset_import[0].version, 17);
        assert_eq!(m.metadata_props[0].key, "k");
        assert_eq!(m.metadata_props[0].value, "v");
        let gp = m.graph.expect("graph present");
        assert_eq!(gp.name, "tiny");
        let ops: Vec<&str> = gp.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["MatMul", "Constant", "ReduceSum", "Identity"]);
        assert_eq!(gp.node[0].input, ["x", "w"]);
        assert_eq!(gp.node[2].attribute[0].name, "keepdims");
        assert_eq!(gp.node[2].attribute[0].r#type, attribute_type::INT);
        assert_eq!(gp.node[2].attribute[0].i, 1);
        assert_eq!(gp.node[3].output, ["y"]);

        let t = &gp.initializer[0];
        assert_eq!((t.name.as_str(), t.dims.as_slice()), ("w", &[3i64, 2][..]));
        assert_eq!(t.data_type, data_type::FLOAT);
        assert_eq!(&t.raw_data[4..8], &2.0f32.to_le_bytes());

        let c = gp.node[1].attribute[0].t.as_ref().expect("constant tensor");
        assert_eq!(c.data_type, data_type::INT64);
        assert_eq!(c.raw_data, 1i64.to_le_bytes());

        let Some(proto::type_proto::Value::TensorType(tt)) =
            gp.input[0].r#type.as_ref().and_then(|t| t.value.clone())
        else {
            panic!("input has no tensor type");
        };
        assert_eq!(tt.elem_type, data_type::FLOAT);
        let dims = tt.shape.expect("shape").dim;
        assert_eq!(dims[0].value, Some(D::DimParam("batch".into())));
        assert_eq!(dims[1].value, Some(D::DimValue(3)));
        assert_eq!(gp.output[0].name, "y");
    }

    #[test]
    fn an_operator_of_another_domain_imports_it_once() {
        let mut g = Graph::new("d");
        let x = g.input("x", Elem::F32, &[Dim::Fixed(2)]);
        let y = g.op_in_domain("my.ops", "Twice", &[&x], vec![]);
        let z = g.op_in_domain("my.ops", "Twice", &[&y], vec![]);
        let z = g.op("Neg", &[&z], vec![]);
        g.output(&z, "z", Elem::F32, &[Dim::Fixed(2)]);
        let m = decode(&g.to_model_bytes(17));
        let imports: Vec<(&str, i64)> = m
            .opset_import
            .iter()
            .map(|o| (o.domain.as_str(), o.version))
            .collect();
        assert_eq!(imports, [("", 17), ("my.ops", 1)]);
        let graph = m.graph.expect("graph");
        let domains: Vec<&str> = graph.node[..3].iter().map(|n| n.domain.as_str()).collect();
        assert_eq!(domains, ["my.ops", "my.ops", ""]);
    }

    #[test]
    fn multi_output_ops_and_empty_optional_inputs() {
        let mut g = Graph::new("m");
        let x = g.input("x", Elem::F32, &[Dim::Fixed(4)]);
        let outs = g.op_multi("Foo", &[Some(&x), None, Some(&x)], vec![], 3);
        assert_eq!(outs.len(), 3);
        let names: HashSet<_> = outs.iter().map(|v| v.0.clone()).collect();
        assert_eq!(names.len(), 3, "outputs must have distinct names");
        let gp = g.to_proto();
        assert_eq!(gp.node[0].input, ["x", "", "x"]);
        assert_eq!(gp.node[0].output.len(), 3);
    }

    #[test]
    fn subgraph_attribute_is_encoded_and_names_do_not_collide() {
        let mut outer = Graph::new("main");
        let x = outer.input("x", Elem::F32, &[Dim::Fixed(2)]);
        let outer_tmp = outer.op("Neg", &[&x], vec![]);

        let mut body = Graph::new("body");
        let s = body.input("s_in", Elem::F32, &[Dim::Fixed(2)]);
        let t = body.op("Add", &[&s, &outer_tmp], vec![]);
        body.output_untyped(&t, "s_out");
        assert_ne!(t, outer_tmp);

        let scan = outer.op(
            "Scan",
            &[&x],
            vec![Attr::Graph("body", body), Attr::Int("num_scan_inputs", 0)],
        );
        outer.output(&scan, "y", Elem::F32, &[Dim::Fixed(2)]);
        let gp = decode(&outer.to_model_bytes(17)).graph.expect("graph");
        let attr = &gp.node[1].attribute[0];
        assert_eq!(attr.r#type, attribute_type::GRAPH);
        let bp = attr.g.as_ref().expect("body graph");
        assert_eq!(bp.name, "body");
        assert_eq!(bp.node[0].input[1], outer_tmp.0);
        assert!(bp.output[0].r#type.is_none());
    }

    #[test]
    #[should_panic(expected = "already defines")]
    fn subgraph_redefining_an_outer_name_panics() {
        let mut outer = Graph::new("g");
        let x = outer.input("x", Elem::F32, &[Dim::Fixed(1)]);
        let mut body = Graph::new("g");
        let y = body.input("x", Elem::F32, &[Dim::Fixed(1)]);
        body.output_untyped(&y, "z");
        outer.op("Loop", &[&x], vec![Attr::Graph("body", body)]);
    }

    #[test]
    fn output_of_an_input_gets_an_identity() {
        let mut g = Graph::new("id");
        let x = g.input("x", Elem::I64, &[Dim::Fixed(1)]);
        g.output(&x, "x_out", Elem::I64, &[Dim::Fixed(1)]);
        let gp = g.to_proto();
        assert_eq!(gp.node.len(), 1);
        assert_eq!(gp.node[0].op_type, "Identity");
        assert_eq!(gp.output[0].name, "x_out");
    }

    #[test]
    fn string_and_float_list_attributes() {
        let a = Attr::Strs("directions", vec!["forward".into()]).to_proto();
        assert_eq!(a.r#type, attribute_type::STRINGS);
        assert_eq!(a.strings, [b"forward".to_vec()]);
        let f = Attr::Floats("alpha", vec![0.5, 1.5]).to_proto();
        assert_eq!(f.r#type, attribute_type::FLOATS);
        assert_eq!(f.floats, [0.5, 1.5]);
        let s = Attr::Str("direction", "reverse".into()).to_proto();
        assert_eq!(s.s, b"reverse");
    }
}
