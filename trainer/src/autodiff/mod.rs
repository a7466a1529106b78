//! Reverse-mode differentiation over the ONNX graph builder.
//!
//! A [`Tape`] wraps a [`Graph`]. Every differentiable op is a method defined in
//! its own module (`gemm.rs`, `sigmoid.rs`, ...) that emits the forward nodes and
//! records, side by side, a closure that emits the gradient nodes. Calling
//! [`Tape::gradients`] walks the records backwards from a scalar loss and emits
//! the whole backward pass into the same graph, so one ORT session computes the
//! loss, the gradients and (see `crate::step`) the optimizer update.
//!
//! Shapes are not tracked statically: gradients that must undo a broadcast or a
//! reshape read the forward value's shape at run time (`Shape`), so the batch
//! size may stay symbolic.

mod add;
mod concat;
mod dropout;
mod gather;
mod gemm;
mod mul;
mod reduce;
mod reshape;
mod sigmoid;
mod slice;
mod split;
mod tanh;

pub use gather::{scatter_add_rows, Backend, GatherGrad, RowSum, SparseLookup};

use std::collections::{HashMap, HashSet};

use crate::onnx::{Attr, Graph, Value};

/// Emits the gradients of a node's inputs given the gradients of its outputs.
///
/// `output_grads[k]` is `None` when nothing downstream depends on output `k`;
/// `needed[j]` says whether input `j` needs a gradient (emit nothing otherwise).
/// The result has one entry per input.
pub type Backward = Box<dyn FnOnce(&mut Graph, &[Option<Value>], &[bool]) -> Vec<Option<Value>>>;

struct Record {
    inputs: Vec<Value>,
    outputs: Vec<Value>,
    backward: Backward,
}

/// A graph under construction plus the backward rules of its differentiable ops.
pub struct Tape {
    graph: Graph,
    records: Vec<Record>,
    /// Where the graph will run, which decides how repeated ids are summed.
    backend: Backend,
}

impl Tape {
    pub fn new(graph: Graph) -> Self {
        Tape {
            graph,
            records: Vec::new(),
            backend: Backend::CpuOneThread,
        }
    }

    /// Builds the gradients for `backend` (one CPU thread by default).
    pub fn for_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The backend the gradients are built for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How this tape differentiates a lookup into a table of `rows` rows.
    pub fn lookup_grad(&self, rows: usize) -> GatherGrad {
        GatherGrad::for_rows(rows, self.backend)
    }

    /// The underlying graph, for inputs, constants and ops that need no gradient.
    pub fn graph(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Number of differentiable ops recorded so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records a forward node group: `inputs` are the values it may pass
    /// gradients to, `outputs` the values it produced.
    pub fn record(
        &mut self,
        inputs: &[&Value],
        outputs: &[&Value],
        backward: impl FnOnce(&mut Graph, &[Option<Value>], &[bool]) -> Vec<Option<Value>> + 'static,
    ) {
        self.records.push(Record {
            inputs: inputs.iter().map(|v| (*v).clone()).collect(),
            outputs: outputs.iter().map(|v| (*v).clone()).collect(),
            backward: Box::new(backward),
        });
    }

    /// Emits the gradient of the scalar `loss` with respect to each of `wrt` and
    /// returns the graph with them. A value `loss` does not depend on gets zeros.
    pub fn gradients(self, loss: &Value, wrt: &[&Value]) -> (Graph, Vec<Value>) {
        let Tape {
            mut graph, records, ..
        } = self;

        // Values on a path from some `wrt` value: only those need gradients.
        let mut live: HashSet<String> = wrt.iter().map(|v| v.0.clone()).collect();
        for record in &records {
            if record.inputs.iter().any(|v| live.contains(&v.0)) {
                live.extend(record.outputs.iter().map(|v| v.0.clone()));
            }
        }

        let mut pending: HashMap<String, Vec<Value>> = HashMap::new();
        let one = graph.const_f32(&[], &[1.0]);
        pending.insert(loss.0.clone(), vec![one]);

        for record in records.into_iter().rev() {
            let needed: Vec<bool> = record.inputs.iter().map(|v| live.contains(&v.0)).collect();
            if !needed.iter().any(|n| *n) {
                continue;
            }
            let output_grads: Vec<Option<Value>> = record
                .outputs
                .iter()
                .map(|v| pending.remove(&v.0).map(|parts| sum(&mut graph, parts)))
                .collect();
            if output_grads.iter().all(Option::is_none) {
                continue;
            }
            let input_grads = (record.backward)(&mut graph, &output_grads, &needed);
            debug_assert_eq!(input_grads.len(), record.inputs.len());
            for ((input, grad), need) in record.inputs.iter().zip(input_grads).zip(&needed) {
                if let (Some(grad), true) = (grad, need) {
                    pending.entry(input.0.clone()).or_default().push(grad);
                }
            }
        }

        let grads = wrt
            .iter()
            .map(|v| match pending.remove(&v.0) {
                Some(parts) => sum(&mut graph, parts),
                None => zeros_like(&mut graph, v),
            })
            .collect();
        (graph, grads)
    }
}

/// The sum of gradient contributions (one `Sum` node when there are several).
fn sum(graph: &mut Graph, mut parts: Vec<Value>) -> Value {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    let refs: Vec<&Value> = parts.iter().collect();
    graph.op("Sum", &refs, vec![])
}

/// Zeros with the run-time shape of `x` (f32).
pub fn zeros_like(graph: &mut Graph, x: &Value) -> Value {
    let shape = graph.op("Shape", &[x], vec![]);
    graph.op(
        "ConstantOfShape",
        &[&shape],
        vec![Attr::Tensor(
            "value",
            crate::onnx::builder::tensor_f32("", &[1], &[0.0]),
        )],
    )
}

/// Sums `grad` (the gradient of a broadcast result) down to the shape of `x`,
/// where `x`'s shape is a suffix of `grad`'s (numpy trailing-axes broadcasting,
/// as a bias over the last axis). Equal shapes pass through a cheap reshape.
pub fn unbroadcast_suffix(graph: &mut Graph, grad: &Value, x: &Value) -> Value {
    let x_shape = graph.op("Shape", &[x], vec![]);
    let minus_one = graph.const_i64(&[1], &[-1]);
    let flat_shape = graph.op(
        "Concat",
        &[&minus_one, &x_shape],
        vec![Attr::Int("axis", 0)],
    );
    let flat = graph.op("Reshape", &[grad, &flat_shape], vec![]);
    let axis0 = graph.const_i64(&[1], &[0]);
    graph.op(
        "ReduceSum",
        &[&flat, &axis0],
        vec![Attr::Int("keepdims", 0)],
    )
}

#[cfg(test)]
pub(crate) mod check;
