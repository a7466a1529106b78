//! The network's training and evaluation graphs, and the sessions that run them.
//!
//! [`forward`] emits the network on a [`Tape`]: row lookup (embedding, or the
//! input weight's columns for one-hot chars), the recurrence
//! ([`crate::bptt`]), the head, dropout and the dense layer. [`build_train_graph`]
//! adds the loss, its gradients and the optimizer update, so one session run
//! is one whole training step.

mod session;

pub use session::{Batch, BatchStats, BatchTargets, TrainSession};

use anyhow::{ensure, Result};
use lstm_edge_runtime::format::{Cell, Head, Output};

use crate::autodiff::{Backend, SparseLookup, Tape};
use crate::bptt::Recurrence;
use crate::model::{pad_pooling_weights, InputConfig, ModelConfig, Params, Tensor};
use crate::onnx::{Attr, Dim, Elem, Graph, Value, OPSET};
use crate::optim::{Grad, OptimizerConfig};

/// How tokens enter the recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A trained `[vocab, dim]` embedding table.
    Embedding { vocab: usize, dim: usize },
    /// One-hot vectors of width `vocab`; the product with `W` is a column lookup.
    OneHot { vocab: usize },
}

/// The dimensions the graphs are built for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetSpec {
    pub cell: Cell,
    pub hidden: usize,
    pub input: InputKind,
    pub head: Head,
    pub output: Output,
    /// Sequence length `T` of every batch.
    pub steps: usize,
    /// The embedding table stays as loaded: no gradient, no update, no optimizer state.
    pub frozen_embedding: bool,
    /// The id that post-pads sequences to `steps`. Last and mean heads then pool
    /// only the tokens before the first PAD, as the runtime does on unpadded text;
    /// `None` pools every step (generator windows are never padded).
    pub pad: Option<u16>,
}

/// Training targets of one batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Sigmoid output: labels in `[0, 1]`.
    Binary(Vec<f32>),
    /// Softmax output: class ids.
    Class(Vec<i64>),
}

impl NetSpec {
    /// Width of one input vector (embedding dim or one-hot width).
    pub fn input_width(&self) -> usize {
        match self.input {
            InputKind::Embedding { dim, .. } => dim,
            InputKind::OneHot { vocab } => vocab,
        }
    }

    /// Width of the head's features: `T·H` for flatten, `H` otherwise.
    pub fn feature_width(&self) -> usize {
        match self.head {
            Head::Flatten { .. } | Head::FlattenTail { .. } => self.steps * self.hidden,
            Head::Last | Head::Mean => self.hidden,
        }
    }

    /// Names and shapes of the trainable tensors, in the order the graphs take
    /// them: `embedding` (embedding input only), `w [G·H, in]`, `r [G·H, H]`,
    /// `wb [G·H]`, `rb [G·H]`, `head_w [out, features]`, `head_b [out]`.
    pub fn param_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        let gh = self.cell.gates() * self.hidden;
        let mut shapes = Vec::new();
        if let InputKind::Embedding { vocab, dim } = self.input {
            shapes.push(("embedding", vec![vocab, dim]));
        }
        shapes.extend([
            ("w", vec![gh, self.input_width()]),
            ("r", vec![gh, self.hidden]),
            ("wb", vec![gh]),
            ("rb", vec![gh]),
            ("head_w", vec![self.output.width(), self.feature_width()]),
            ("head_b", vec![self.output.width()]),
        ]);
        shapes
    }

    /// Whether the `index`-th tensor of [`NetSpec::param_shapes`] is updated by training.
    /// An LSTM's `rb` is not: the cell only ever reads `wb + rb`, which is Keras' one
    /// LSTM bias, so training both would move that bias twice as fast (RMSprop and
    /// Adam step each tensor by about the learning rate). It stays as initialised (0).
    pub fn is_trained(&self, index: usize) -> bool {
        match self.param_shapes().get(index).map(|(name, _)| *name) {
            Some("embedding") => !self.frozen_embedding,
            Some("rb") => self.cell != Cell::Lstm,
            _ => true,
        }
    }

    /// The entries of `items` (one per [`NetSpec::param_shapes`] tensor) that training updates.
    pub fn trained<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .enumerate()
            .filter(|(index, _)| self.is_trained(*index))
            .map(|(_, item)| item.clone())
            .collect()
    }

    /// [`NetSpec::param_shapes`] without the frozen ones: what the optimizer updates.
    pub fn trained_shapes(&self) -> Vec<(&'static str, Vec<usize>)> {
        self.trained(&self.param_shapes())
    }

    /// Parameters from tensors in [`NetSpec::param_shapes`] order.
    pub fn params_from_ordered(&self, tensors: Vec<Tensor>) -> Result<Params> {
        let expected = self.param_shapes().len();
        ensure!(
            tensors.len() == expected,
            "{} parameter tensors given, the network has {expected}",
            tensors.len()
        );
        let mut tensors = tensors.into_iter();
        let mut next = || tensors.next().unwrap_or_else(|| Tensor::zeros(&[0]));
        let embedding = matches!(self.input, InputKind::Embedding { .. }).then(&mut next);
        Ok(Params {
            embedding,
            w: next(),
            r: next(),
            wb: next(),
            rb: next(),
            head_w: next(),
            head_b: next(),
        })
    }

    /// Shape of the dropout mask of a batch of `batch` rows.
    pub fn mask_shape(&self, batch: usize) -> Vec<usize> {
        match self.head {
            Head::Flatten { .. } | Head::FlattenTail { .. } => vec![batch, self.steps, self.hidden],
            Head::Last | Head::Mean => vec![batch, self.hidden],
        }
    }
}

impl NetSpec {
    /// The spec of `cfg` for sequences of `steps` tokens (a flatten head's
    /// `maxlen`; any length for last/mean heads).
    pub fn new(cfg: &ModelConfig, steps: usize) -> Self {
        let input = match &cfg.input {
            InputConfig::Chars { .. } => InputKind::OneHot {
                vocab: cfg.vocab_rows(),
            },
            InputConfig::Words { embed_dim, .. } => InputKind::Embedding {
                vocab: cfg.vocab_rows(),
                dim: *embed_dim,
            },
        };
        NetSpec {
            cell: cfg.cell,
            hidden: cfg.hidden,
            input,
            head: cfg.head,
            output: cfg.output,
            steps,
            frozen_embedding: false,
            pad: match cfg.head.flatten_maxlen() {
                Some(_) => None,
                None => cfg.input.pad_id(),
            },
        }
    }
}

/// Emits the network and returns its logits `[B, out]`. `params` are in
/// [`NetSpec::param_shapes`] order; `ids` is int64 `[B, T]`; `mask` (inverted
/// dropout, see [`Tape::dropout`]) multiplies the head features.
pub fn forward(
    tape: &mut Tape,
    spec: &NetSpec,
    params: &[Value],
    ids: &Value,
    mask: Option<&Value>,
    how: Recurrence,
) -> Value {
    forward_with(tape, spec, params, ids, mask, how, false).0
}

/// [`forward`], optionally (`lookup_leaf`) with the embedding lookup outside
/// the tape, returned so the caller can take the gradient of the looked-up
/// rows and update only those rows of the table.
pub fn forward_with(
    tape: &mut Tape,
    spec: &NetSpec,
    params: &[Value],
    ids: &Value,
    mask: Option<&Value>,
    how: Recurrence,
    lookup_leaf: bool,
) -> (Value, Option<SparseLookup>) {
    let mut lookup = None;
    let hidden = spec.hidden as i64;
    let steps = spec.steps as i64;
    let gh = spec.cell.gates() as i64 * hidden;
    let (embedding, rest) = match spec.input {
        InputKind::Embedding { .. } => (Some(&params[0]), &params[1..]),
        InputKind::OneHot { .. } => (None, params),
    };
    let (w, r, wb, rb, head_w, head_b) =
        (&rest[0], &rest[1], &rest[2], &rest[3], &rest[4], &rest[5]);
    let g = tape.graph();
    let ids_t = g.op("Transpose", &[ids], vec![Attr::Ints("perm", vec![1, 0])]);

    // The LSTM's two biases always add; the GRU's recurrent bias sits inside r ⊙ (..).
    let bias = match spec.cell {
        Cell::Lstm => tape.add(wb, rb),
        Cell::Gru => wb.clone(),
    };
    let xproj = match (embedding, spec.input) {
        (Some(table), InputKind::Embedding { vocab, dim }) => {
            let x = if lookup_leaf {
                let sparse = tape.sparse_lookup(table, &ids_t);
                let x = sparse.rows.clone();
                lookup = Some(sparse);
                x
            } else {
                tape.gather_rows(table, &ids_t, tape.lookup_grad(vocab))
            };
            let flat = tape.reshape(&x, &[-1, dim as i64]);
            let xp = tape.linear(&flat, w, Some(&bias));
            tape.reshape(&xp, &[steps, -1, gh])
        }
        (_, InputKind::OneHot { vocab }) | (None, InputKind::Embedding { vocab, .. }) => {
            // The bias joins the `[vocab, G·H]` table before the lookup: a pass
            // over the small table instead of over all `[T, B, G·H]` rows, and
            // its gradient sums `vocab` rows instead of `T·B`.
            let columns = tape.transpose(w, &[1, 0]);
            let table = tape.add_bias(&columns, &bias);
            tape.gather_rows(&table, &ids_t, tape.lookup_grad(vocab))
        }
    };
    let h_seq = match spec.cell {
        Cell::Lstm => tape.lstm(&xproj, r, hidden, steps, how),
        Cell::Gru => tape.gru(&xproj, r, rb, hidden, steps, how),
    };
    // Training gets sequences already cut to `maxlen`: both flatten heads train alike.
    let features = match spec.head {
        Head::Flatten { .. } | Head::FlattenTail { .. } => {
            let batch_major = tape.transpose(&h_seq, &[1, 0, 2]);
            let dropped = match mask {
                Some(m) => tape.dropout(&batch_major, m),
                None => batch_major,
            };
            tape.reshape(&dropped, &[-1, steps * hidden])
        }
        Head::Last | Head::Mean => {
            let pooled = match spec.pad {
                Some(pad) => {
                    // Time-major [T, B] -> [T, B, 1], against the states [T, B, H].
                    let g = tape.graph();
                    let weights = pad_pooling_weights(g, &ids_t, 0, pad, spec.head);
                    let last_axis = g.const_i64(&[1], &[2]);
                    let weights = g.op("Unsqueeze", &[&weights, &last_axis], vec![]);
                    let weighted = tape.weigh(&h_seq, &weights);
                    tape.reduce_sum(&weighted, &[0], false)
                }
                None if spec.head == Head::Last => {
                    let last = tape.slice(&h_seq, 0, -1, i64::MAX);
                    tape.reshape(&last, &[-1, hidden])
                }
                None => tape.reduce_mean(&h_seq, &[0], false),
            };
            match mask {
                Some(m) => tape.dropout(&pooled, m),
                None => pooled,
            }
        }
    };
    (tape.linear(&features, head_w, Some(head_b)), lookup)
}

/// The mean loss of `logits` for the spec's output kind. `targets` is f32 `[B]`
/// for a sigmoid output and int64 `[B]` for a softmax output.
pub fn loss(tape: &mut Tape, spec: &NetSpec, logits: &Value, targets: &Value) -> Value {
    match spec.output {
        Output::Sigmoid => {
            let z = tape.reshape(logits, &[-1]);
            tape.bce_with_logits(&z, targets)
        }
        Output::Softmax { .. } => tape.cce_with_logits(logits, targets),
    }
}

/// The number of correct predictions in the batch (f32 scalar).
pub fn correct(tape: &mut Tape, spec: &NetSpec, logits: &Value, targets: &Value) -> Value {
    let g = tape.graph();
    match spec.output {
        Output::Sigmoid => {
            let shape = g.const_i64(&[1], &[-1]);
            let z = g.op("Reshape", &[logits, &shape], vec![]);
            crate::loss::binary_correct(g, &z, targets)
        }
        Output::Softmax { .. } => crate::loss::categorical_correct(g, logits, targets),
    }
}

/// Graph input and output names shared by the builders and [`TrainSession`].
mod names {
    pub const IDS: &str = "ids";
    pub const TARGETS: &str = "targets";
    pub const MASK: &str = "mask";
    pub const LR_SCALE: &str = "lr_scale";
    pub const LOSS: &str = "loss";
    pub const CORRECT: &str = "correct";
    pub const GRAD_NORM: &str = "grad_norm";

    /// The updated value of parameter or state tensor `name`.
    pub fn next(name: &str) -> String {
        format!("{name}.next")
    }
}

fn fixed(dims: &[usize]) -> Vec<Dim> {
    dims.iter().map(|d| Dim::Fixed(*d as i64)).collect()
}

/// Declares the parameter inputs and the batch inputs (`ids`, `targets`).
fn declare_inputs(tape: &mut Tape, spec: &NetSpec) -> (Vec<Value>, Value, Value) {
    let params = spec
        .param_shapes()
        .iter()
        .map(|(name, dims)| tape.graph().input(name, Elem::F32, &fixed(dims)))
        .collect();
    let g = tape.graph();
    let ids = g.input(
        names::IDS,
        Elem::I64,
        &[Dim::Sym("batch"), Dim::Fixed(spec.steps as i64)],
    );
    let target_elem = match spec.output {
        Output::Sigmoid => Elem::F32,
        Output::Softmax { .. } => Elem::I64,
    };
    let targets = g.input(names::TARGETS, target_elem, &[Dim::Sym("batch")]);
    (params, ids, targets)
}

fn mask_dims(spec: &NetSpec) -> Vec<Dim> {
    let mut dims = vec![Dim::Sym("batch")];
    dims.extend(fixed(&spec.mask_shape(1)[1..]));
    dims
}

/// One whole training step as an ONNX model: forward, loss, gradients and the
/// optimizer update. Inputs: the parameters (by name), the optimizer state
/// (by name), `ids [B, T]` int64, `targets [B]`, and with `dropout` a `mask`
/// (see [`NetSpec::mask_shape`]), and the scalar `lr_scale` that multiplies the
/// learning rate (see [`OptimizerConfig::lr_scale`]). Outputs: `{name}.next` for every parameter
/// and state tensor, the batch's mean `loss`, its `correct` count and the gradients'
/// global `grad_norm` (see [`crate::optim::Update`]).
pub fn build_train_graph(
    spec: &NetSpec,
    optimizer: &OptimizerConfig,
    dropout: bool,
    how: Recurrence,
    backend: Backend,
) -> Vec<u8> {
    let mut tape = Tape::new(Graph::new("train")).for_backend(backend);
    let (params, ids, targets) = declare_inputs(&mut tape, spec);
    let param_shapes = spec.trained_shapes();
    let state_shapes = optimizer.state_shapes(&param_shapes);
    let state: Vec<Value> = state_shapes
        .iter()
        .map(|(name, dims)| tape.graph().input(name, Elem::F32, &fixed(dims)))
        .collect();
    let mask = dropout.then(|| tape.graph().input(names::MASK, Elem::F32, &mask_dims(spec)));
    let lr_scale = tape.graph().input(names::LR_SCALE, Elem::F32, &[]);
    let (logits, lookup) = forward_with(&mut tape, spec, &params, &ids, mask.as_ref(), how, true);
    // A frozen table needs no gradient, not even of its looked-up rows.
    let lookup = lookup.filter(|_| spec.is_trained(0));
    let loss_v = loss(&mut tape, spec, &logits, &targets);
    let correct_v = correct(&mut tape, spec, &logits, &targets);
    // A word model's table gets its gradient as the looked-up rows' gradients.
    let mut wrt: Vec<&Value> = params.iter().collect();
    if let Some(lookup) = &lookup {
        wrt[0] = &lookup.rows;
    }
    let wrt = spec.trained(&wrt);
    let trained = spec.trained(&params);
    let (mut g, dense) = tape.gradients(&loss_v, &wrt);
    let mut grads: Vec<Grad> = dense.into_iter().map(Grad::Dense).collect();
    if let (Some(lookup), InputKind::Embedding { dim, .. }) = (&lookup, spec.input) {
        let Grad::Dense(d_rows) = &grads[0] else {
            unreachable!("tape gradients are dense")
        };
        let (ids, rows) = lookup.table_grad(&mut g, d_rows, dim);
        grads[0] = Grad::Rows { ids, rows };
    }
    let update = optimizer.emit(
        &mut g,
        &trained,
        &grads,
        &state,
        &lr_scale,
        backend.row_sum(),
    );
    for ((name, dims), v) in param_shapes.iter().zip(&update.params) {
        g.output(v, &names::next(name), Elem::F32, &fixed(dims));
    }
    for ((name, dims), v) in state_shapes.iter().zip(&update.state) {
        g.output(v, &names::next(name), Elem::F32, &fixed(dims));
    }
    g.output(&loss_v, names::LOSS, Elem::F32, &[]);
    g.output(&correct_v, names::CORRECT, Elem::F32, &[]);
    g.output(&update.grad_norm, names::GRAD_NORM, Elem::F32, &[]);
    g.to_model_bytes(OPSET)
}

/// The forward pass only (no dropout): inputs as [`build_train_graph`] without
/// state and mask; outputs `loss` (batch mean), `correct` and `logits`.
pub fn build_eval_graph(spec: &NetSpec, how: Recurrence, backend: Backend) -> Vec<u8> {
    let mut tape = Tape::new(Graph::new("eval")).for_backend(backend);
    let (params, ids, targets) = declare_inputs(&mut tape, spec);
    let logits = forward(&mut tape, spec, &params, &ids, None, how);
    let loss_v = loss(&mut tape, spec, &logits, &targets);
    let correct_v = correct(&mut tape, spec, &logits, &targets);
    let g = tape.graph();
    g.output(&loss_v, names::LOSS, Elem::F32, &[]);
    g.output(&correct_v, names::CORRECT, Elem::F32, &[]);
    let width = spec.output.width() as i64;
    g.output(
        &logits,
        "logits",
        Elem::F32,
        &[Dim::Sym("batch"), Dim::Fixed(width)],
    );
    g.to_model_bytes(OPSET)
}

#[cfg(test)]
mod gradient_checks {
    //! Acceptance check 1: for LSTM and GRU with each head, every parameter's
    //! graph gradient (f32, on ONNX Runtime) agrees with central differences of
    //! the independent f64 reference loss (`bptt::reference`):
    //! `|graph - fd| <= 1e-6 + 1e-4 * |fd|`, and the graph's loss matches the
    //! reference loss to 1e-5 relative. Each backend's graph is checked (see
    //! [`Backend`]): the CUDA one too, run here on the CPU, as it holds
    //! standard operators only.

    use super::*;
    use crate::bptt::reference;
    use crate::onnx::{Dim, Elem, Graph, OPSET};
    use crate::ort_env::{self, Device};
    use ort::value::Tensor;

    const ABS_TOL: f64 = 1e-6;
    const REL_TOL: f64 = 1e-4;
    const FD_STEP: f64 = 1e-5;
    const BATCH: usize = 3;

    /// The runtime's generator, as `f64`s in [0, 1) and uniform `f32`s.
    struct Rng(lstm_edge_runtime::Rng);
    impl Rng {
        fn next(&mut self) -> f64 {
            (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn uniform(&mut self, scale: f64) -> f32 {
            ((self.next() * 2.0 - 1.0) * scale) as f32
        }
    }

    /// Random parameters and a batch for `spec`, post-padded when it has a PAD id.
    struct Case {
        params: Vec<Vec<f32>>,
        ids: Vec<i64>,
        targets: Targets,
        mask: Option<Vec<f32>>,
    }

    fn random_case(spec: &NetSpec, dropout: bool) -> Case {
        let mut rng = Rng(lstm_edge_runtime::Rng::new(
            0x5EED_0000 + spec.hidden as u64 * 7 + spec.steps as u64,
        ));
        let params: Vec<Vec<f32>> = spec
            .param_shapes()
            .iter()
            .map(|(_, dims)| {
                let n = dims.iter().product();
                (0..n).map(|_| rng.uniform(0.6)).collect()
            })
            .collect();
        let vocab = match spec.input {
            InputKind::Embedding { vocab, .. } | InputKind::OneHot { vocab } => vocab,
        };
        let mut ids: Vec<i64> = (0..BATCH * spec.steps)
            .map(|_| (rng.next() * vocab as f64) as i64 % vocab as i64)
            .collect();
        if let Some(pad) = spec.pad.map(i64::from) {
            // Post-padded rows of every kind: full, short and empty.
            for (b, row) in ids.chunks_mut(spec.steps).enumerate() {
                let tokens = [spec.steps, 2, 0][b % 3];
                for (t, id) in row.iter_mut().enumerate() {
                    *id = if t >= tokens {
                        pad
                    } else if *id == pad {
                        (pad + 1) % vocab as i64
                    } else {
                        *id
                    };
                }
            }
        }
        let targets = match spec.output {
            Output::Sigmoid => Targets::Binary((0..BATCH).map(|b| (b % 2) as f32).collect()),
            Output::Softmax { classes } => Targets::Class(
                (0..BATCH)
                    .map(|b| (b * 2 % classes as usize) as i64)
                    .collect(),
            ),
        };
        let mask = dropout.then(|| {
            let n = spec.mask_shape(BATCH).iter().product();
            (0..n)
                .map(|_| if rng.next() < 0.3 { 0.0 } else { 1.0 / 0.7 })
                .collect()
        });
        Case {
            params,
            ids,
            targets,
            mask,
        }
    }

    /// The loss and every parameter's gradient, as `backend`'s graph computes
    /// them on ONNX Runtime's CPU (on two threads for [`Backend::CpuThreads`]).
    fn graph_loss_and_gradients(
        spec: &NetSpec,
        how: Recurrence,
        case: &Case,
        backend: Backend,
    ) -> (f64, Vec<Vec<f32>>) {
        ort_env::init().expect("ONNX Runtime is installed (scripts/install-ort.sh)");
        let shapes = spec.param_shapes();
        let mask_shape = spec.mask_shape(BATCH);
        let mut tape = Tape::new(Graph::new("check")).for_backend(backend);
        let param_values: Vec<Value> = shapes
            .iter()
            .map(|(name, dims)| {
                let dims: Vec<Dim> = dims.iter().map(|d| Dim::Fixed(*d as i64)).collect();
                tape.graph().input(name, Elem::F32, &dims)
            })
            .collect();
        let g = tape.graph();
        let ids_v = g.input(
            "ids",
            Elem::I64,
            &[Dim::Sym("batch"), Dim::Fixed(spec.steps as i64)],
        );
        let target_elem = match case.targets {
            Targets::Binary(_) => Elem::F32,
            Targets::Class(_) => Elem::I64,
        };
        let targets_v = g.input("targets", target_elem, &[Dim::Sym("batch")]);
        let mask_v = case.mask.as_ref().map(|_| {
            let dims: Vec<Dim> = mask_shape.iter().map(|d| Dim::Fixed(*d as i64)).collect();
            g.input("mask", Elem::F32, &dims)
        });
        let logits = forward(&mut tape, spec, &param_values, &ids_v, mask_v.as_ref(), how);
        let loss_v = loss(&mut tape, spec, &logits, &targets_v);
        let wrt: Vec<&Value> = param_values.iter().collect();
        let (mut graph, grads) = tape.gradients(&loss_v, &wrt);
        graph.output(&loss_v, "loss", Elem::F32, &[]);
        for ((name, _), grad) in shapes.iter().zip(&grads) {
            graph.output_untyped(grad, &format!("grad_{name}"));
        }
        let threads = match backend {
            Backend::CpuThreads => 2,
            Backend::CpuOneThread | Backend::Cuda => 1,
        };
        let bytes = graph.to_model_bytes(OPSET);
        let mut session = ort_env::session_from_bytes(&bytes, Device::Cpu, threads).unwrap();

        let mut feed: Vec<(String, ort::session::SessionInputValue)> = Vec::new();
        for ((name, dims), data) in shapes.iter().zip(&case.params) {
            let t = Tensor::from_array((dims.clone(), data.clone())).unwrap();
            feed.push((name.to_string(), t.into_dyn().into()));
        }
        let ids_t = Tensor::from_array(([BATCH, spec.steps], case.ids.clone())).unwrap();
        feed.push(("ids".into(), ids_t.into_dyn().into()));
        let targets_t = match &case.targets {
            Targets::Binary(y) => Tensor::from_array(([BATCH], y.clone())).unwrap().into_dyn(),
            Targets::Class(y) => Tensor::from_array(([BATCH], y.clone())).unwrap().into_dyn(),
        };
        feed.push(("targets".into(), targets_t.into()));
        if let Some(m) = &case.mask {
            let t = Tensor::from_array((mask_shape.clone(), m.clone())).unwrap();
            feed.push(("mask".into(), t.into_dyn().into()));
        }
        let out = session.run(feed).unwrap();
        let loss = out["loss"].try_extract_tensor::<f32>().unwrap().1[0] as f64;
        let grads = shapes
            .iter()
            .map(|(name, _)| {
                out[format!("grad_{name}").as_str()]
                    .try_extract_tensor::<f32>()
                    .unwrap()
                    .1
                    .to_vec()
            })
            .collect();
        (loss, grads)
    }

    fn check(spec: NetSpec, dropout: bool, how: Recurrence) {
        let case = random_case(&spec, dropout);
        let mut p64: Vec<Vec<f64>> = case
            .params
            .iter()
            .map(|p| p.iter().map(|v| *v as f64).collect())
            .collect();
        let mask64: Option<Vec<f64>> = case
            .mask
            .as_ref()
            .map(|m| m.iter().map(|v| *v as f64).collect());
        let ref_loss =
            |p: &[Vec<f64>]| reference::loss(&spec, p, &case.ids, &case.targets, mask64.as_deref());
        let expected = ref_loss(&p64);
        // Central differences of the reference loss, per parameter.
        let fds: Vec<Vec<f64>> = (0..p64.len())
            .map(|k| {
                (0..p64[k].len())
                    .map(|j| {
                        let original = p64[k][j];
                        p64[k][j] = original + FD_STEP;
                        let plus = ref_loss(&p64);
                        p64[k][j] = original - FD_STEP;
                        let minus = ref_loss(&p64);
                        p64[k][j] = original;
                        (plus - minus) / (2.0 * FD_STEP)
                    })
                    .collect()
            })
            .collect();
        for backend in [Backend::CpuOneThread, Backend::CpuThreads, Backend::Cuda] {
            let (graph_loss, grads) = graph_loss_and_gradients(&spec, how, &case, backend);
            let what = format!("{:?} {:?} {how:?}, {backend:?} graph", spec.cell, spec.head);
            assert!(
                (graph_loss - expected).abs() <= 1e-5 * expected.abs().max(1.0),
                "{what}: loss: graph {graph_loss} vs reference {expected}"
            );
            let mut worst = 0.0f64;
            for (((name, _), grad), fd) in spec.param_shapes().iter().zip(&grads).zip(&fds) {
                assert_eq!(
                    grad.len(),
                    fd.len(),
                    "{what}: gradient of {name} has the wrong size"
                );
                for (j, (&graph, &fd)) in grad.iter().zip(fd).enumerate() {
                    let (err, tolerance) =
                        ((graph as f64 - fd).abs(), ABS_TOL + REL_TOL * fd.abs());
                    worst = worst.max(err / tolerance);
                    assert!(
                        err <= tolerance,
                        "{what}: d loss / d {name}[{j}]: graph {graph} vs finite difference {fd}"
                    );
                }
            }
            eprintln!("{what}: worst error / tolerance = {worst:.1e}");
        }
    }

    fn spec(cell: Cell, head: Head, input: InputKind, output: Output) -> NetSpec {
        NetSpec {
            cell,
            hidden: 4,
            input,
            head,
            output,
            steps: 5,
            frozen_embedding: false,
            pad: None,
        }
    }

    const WORDS: InputKind = InputKind::Embedding { vocab: 7, dim: 3 };
    const CHARS: InputKind = InputKind::OneHot { vocab: 6 };
    const FLATTEN: Head = Head::Flatten { maxlen: 5 };
    const SOFTMAX: Output = Output::Softmax { classes: 5 };

    #[test]
    fn lstm_flatten_words_sigmoid_with_dropout() {
        check(
            spec(Cell::Lstm, FLATTEN, WORDS, Output::Sigmoid),
            true,
            Recurrence::Scan,
        );
    }

    #[test]
    fn lstm_last_chars_softmax() {
        check(
            spec(Cell::Lstm, Head::Last, CHARS, SOFTMAX),
            false,
            Recurrence::Scan,
        );
    }

    #[test]
    fn lstm_mean_chars_sigmoid_with_dropout() {
        check(
            spec(Cell::Lstm, Head::Mean, CHARS, Output::Sigmoid),
            true,
            Recurrence::Scan,
        );
    }

    #[test]
    fn last_and_mean_heads_of_padded_rows() {
        // (cell, input, PAD id): LSTM on words, GRU on chars.
        for (cell, input, pad) in [(Cell::Lstm, WORDS, 0), (Cell::Gru, CHARS, 5)] {
            for head in [Head::Last, Head::Mean] {
                let padded = NetSpec {
                    pad: Some(pad),
                    ..spec(cell, head, input, Output::Sigmoid)
                };
                check(
                    padded,
                    (cell == Cell::Lstm) == (head == Head::Mean),
                    Recurrence::Scan,
                );
            }
        }
    }

    #[test]
    fn gru_flatten_chars_sigmoid_with_dropout() {
        check(
            spec(Cell::Gru, FLATTEN, CHARS, Output::Sigmoid),
            true,
            Recurrence::Scan,
        );
    }

    #[test]
    fn gru_last_words_softmax() {
        check(
            spec(Cell::Gru, Head::Last, WORDS, SOFTMAX),
            false,
            Recurrence::Scan,
        );
    }

    #[test]
    fn gru_mean_words_softmax() {
        check(
            spec(Cell::Gru, Head::Mean, WORDS, SOFTMAX),
            false,
            Recurrence::Scan,
        );
    }

    #[test]
    fn unrolled_lstm_and_gru() {
        check(
            spec(Cell::Lstm, FLATTEN, WORDS, Output::Sigmoid),
            true,
            Recurrence::Unrolled,
        );
        check(
            spec(Cell::Gru, Head::Last, CHARS, SOFTMAX),
            false,
            Recurrence::Unrolled,
        );
        check(
            spec(Cell::Lstm, Head::Mean, CHARS, SOFTMAX),
            false,
            Recurrence::Unrolled,
        );
    }

    #[test]
    fn each_backend_sums_repeated_ids_its_own_way() {
        use prost::Message;
        let optimizer = OptimizerConfig {
            rule: crate::optim::Optimizer::rmsprop(0.01),
            clip_norm: None,
            lr_decay: None,
        };
        // (ScatterND adds, lstm_edge.AddRowsInOrder nodes) in the training graph.
        let adds = |input, backend| {
            let spec = spec(Cell::Lstm, Head::Last, input, SOFTMAX);
            let bytes = build_train_graph(&spec, &optimizer, false, Recurrence::Scan, backend);
            let model = crate::onnx::proto::ModelProto::decode(&bytes[..]).expect("decodes");
            let graph = model.graph.expect("graph");
            let count = |op: &str| graph.node.iter().filter(|n| n.op_type == op).count();
            let scatter_adds = graph
                .node
                .iter()
                .filter(|n| n.op_type == "ScatterND")
                .filter(|n| n.attribute.iter().any(|a| a.s == b"add"))
                .count();
            let in_order = graph
                .node
                .iter()
                .filter(|n| n.domain == crate::ort_ops::DOMAIN)
                .count();
            assert_eq!(in_order, count(crate::ort_ops::ADD_ROWS_IN_ORDER));
            (scatter_adds, in_order)
        };
        let chars = InputKind::OneHot { vocab: 50 };
        let words = InputKind::Embedding { vocab: 300, dim: 2 };
        let one = Backend::CpuOneThread;
        let threads = Backend::CpuThreads;
        let cuda = Backend::Cuda;
        // One CPU thread: ScatterND is exact there, and fastest.
        assert_eq!(adds(chars, one), (1, 0));
        assert_eq!(adds(words, one), (1, 0));
        // Several threads: ScatterND would lose updates; both add in the ids' order.
        assert_eq!(adds(chars, threads), (0, 1));
        assert_eq!(adds(words, threads), (0, 1));
        // CUDA: chars take the product, whose sums come in a fixed order.
        assert_eq!(adds(chars, cuda), (0, 0));
        assert_eq!(adds(words, cuda), (1, 0));
    }

    #[test]
    fn large_vocabulary_embedding_uses_scatter_add() {
        let words = InputKind::Embedding { vocab: 300, dim: 2 };
        assert_eq!(
            crate::autodiff::GatherGrad::for_rows(300, Backend::CpuOneThread),
            crate::autodiff::GatherGrad::ScatterAdd(crate::autodiff::RowSum::ScatterNd)
        );
        check(
            spec(Cell::Lstm, Head::Last, words, Output::Sigmoid),
            false,
            Recurrence::Scan,
        );
    }
}
