//! Test support: checks a tape op's gradients against central finite
//! differences of the same graph's forward pass on ONNX Runtime.
//!
//! The checked function `f` is reduced to a scalar as `Σ sin(f(x))`, so the
//! upstream gradient `cos(f(x))` differs per element and a gradient that is
//! right only for uniform upstream gradients still fails.

use anyhow::Result;
use ort::value::Tensor;

use super::Tape;
use crate::onnx::{Dim, Elem, Graph, Value, OPSET};
use crate::ort_env::{self, Device};

/// One graph input of the checked function.
#[derive(Clone)]
pub(crate) enum Input {
    /// A differentiable f32 input.
    F32 { dims: Vec<i64>, data: Vec<f32> },
    /// A constant int64 input (ids, class targets).
    I64 { dims: Vec<i64>, data: Vec<i64> },
    /// A constant f32 input (masks, binary targets).
    ConstF32 { dims: Vec<i64>, data: Vec<f32> },
}

impl Input {
    /// An f32 input filled with reproducible values in `[-1, 1)`.
    pub(crate) fn random(dims: &[i64], seed: u64) -> Self {
        let n = dims.iter().product::<i64>() as usize;
        let mut rng = lstm_edge_runtime::Rng::new(seed);
        let data = (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        Input::F32 {
            dims: dims.to_vec(),
            data,
        }
    }

    fn dims(&self) -> &[i64] {
        match self {
            Input::F32 { dims, .. } | Input::I64 { dims, .. } | Input::ConstF32 { dims, .. } => {
                dims
            }
        }
    }
}

/// Step of the central differences; the function is smooth at this scale.
const EPS: f32 = 1e-2;

/// Builds `f` over `inputs`, then asserts each differentiable input's graph
/// gradient is within `abs_tol + rel_tol * |fd|` of the finite difference.
pub(crate) fn check_op(
    inputs: &[Input],
    abs_tol: f32,
    rel_tol: f32,
    f: impl FnOnce(&mut Tape, &[Value]) -> Value,
) {
    run_check(inputs, abs_tol, rel_tol, f).expect("gradient check could not run");
}

fn run_check(
    inputs: &[Input],
    abs_tol: f32,
    rel_tol: f32,
    f: impl FnOnce(&mut Tape, &[Value]) -> Value,
) -> Result<()> {
    ort_env::init()?;
    let mut tape = Tape::new(Graph::new("check"));
    let values: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let elem = match input {
                Input::I64 { .. } => Elem::I64,
                _ => Elem::F32,
            };
            let dims: Vec<Dim> = input.dims().iter().map(|d| Dim::Fixed(*d)).collect();
            tape.graph().input(&format!("in{i}"), elem, &dims)
        })
        .collect();
    let y = f(&mut tape, &values);
    let loss = sum_of_sines(&mut tape, &y);
    let wrt: Vec<&Value> = values
        .iter()
        .zip(inputs)
        .filter(|(_, i)| matches!(i, Input::F32 { .. }))
        .map(|(v, _)| v)
        .collect();
    let (mut graph, grads) = tape.gradients(&loss, &wrt);
    graph.output(&loss, "loss", Elem::F32, &[]);
    for (k, g) in grads.iter().enumerate() {
        graph.output_untyped(g, &format!("grad{k}"));
    }
    let mut session = ort_env::session_from_bytes(&graph.to_model_bytes(OPSET), Device::Cpu, 1)?;

    let mut run = |inputs: &[Input]| -> Result<(f32, Vec<Vec<f32>>)> {
        let mut feed: Vec<(String, ort::session::SessionInputValue)> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let shape: Vec<usize> = input.dims().iter().map(|d| *d as usize).collect();
            let value = match input {
                Input::F32 { data, .. } | Input::ConstF32 { data, .. } => {
                    Tensor::from_array((shape, data.clone()))?.into_dyn()
                }
                Input::I64 { data, .. } => Tensor::from_array((shape, data.clone()))?.into_dyn(),
            };
            feed.push((format!("in{i}"), value.into()));
        }
        let out = session.run(feed)?;
        let loss = out["loss"].try_extract_tensor::<f32>()?.1[0];
        let grads = (0..wrt.len())
            .map(|k| {
                Ok(out[format!("grad{k}").as_str()]
                    .try_extract_tensor::<f32>()?
                    .1
                    .to_vec())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((loss, grads))
    };

    let mut perturbed: Vec<Input> = inputs.to_vec();
    let (_, grads) = run(&perturbed)?;
    let mut grad_index = 0;
    for i in 0..inputs.len() {
        if !matches!(inputs[i], Input::F32 { .. }) {
            continue;
        }
        let n = inputs[i].dims().iter().product::<i64>() as usize;
        assert_eq!(
            grads[grad_index].len(),
            n,
            "gradient {grad_index} has the wrong size"
        );
        for (j, &got) in grads[grad_index].iter().enumerate() {
            let original = f32_data(&perturbed[i])[j];
            f32_data_mut(&mut perturbed[i])[j] = original + EPS;
            let plus = run(&perturbed)?.0;
            f32_data_mut(&mut perturbed[i])[j] = original - EPS;
            let minus = run(&perturbed)?.0;
            f32_data_mut(&mut perturbed[i])[j] = original;
            let fd = (plus - minus) / (2.0 * EPS);
            assert!(
                (got - fd).abs() <= abs_tol + rel_tol * fd.abs(),
                "input {i} element {j}: graph gradient {got} vs finite difference {fd}"
            );
        }
        grad_index += 1;
    }
    Ok(())
}

/// `Σ sin(y)`, with its gradient `cos(y)` recorded on the tape.
fn sum_of_sines(tape: &mut Tape, y: &Value) -> Value {
    let s = tape.graph().op("Sin", &[y], vec![]);
    let yc = y.clone();
    tape.record(&[y], &[&s], move |g, dys, _| {
        vec![dys[0].as_ref().map(|dy| {
            let c = g.op("Cos", &[&yc], vec![]);
            g.op("Mul", &[dy, &c], vec![])
        })]
    });
    tape.reduce_sum_all(&s)
}

fn f32_data(input: &Input) -> &[f32] {
    match input {
        Input::F32 { data, .. } => data,
        _ => unreachable!("only f32 inputs are perturbed"),
    }
}

fn f32_data_mut(input: &mut Input) -> &mut [f32] {
    match input {
        Input::F32 { data, .. } => data,
        _ => unreachable!("only f32 inputs are perturbed"),
    }
}
