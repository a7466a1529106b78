//! ONNX models: a hand-written protobuf subset ([`proto`]) and a graph builder
//! ([`builder`]) used for both training graphs and exported inference models.

pub mod builder;
pub mod proto;

pub use builder::{Attr, Dim, Elem, Graph, Value};

/// Default opset of the graphs the trainer builds. At 17, `ReduceSum` takes its
/// axes as an input while `ReduceMean`/`ReduceMax` still take an `axes` attribute.
pub const OPSET: i64 = 17;
