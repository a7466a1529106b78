//! Optimizer updates emitted into the training graph, so parameters and their
//! optimizer state go in and come out of the same session run.
//!
//! - RMSprop as Keras 2 and tf.keras up to TF 2.10 apply it: `ms = ρ·ms + (1-ρ)·g²`,
//!   `p -= lr · g / (sqrt(ms) + ε)` (ρ 0.9, ε 1e-7; `ms` starts at zero). Keras 3
//!   divides by `sqrt(ms + ε)` instead, at least 3.2e-4, which shrinks the steps of
//!   small gradients (a word embedding's rows) up to tenfold: on W that costs two
//!   to three points of validation accuracy, in Keras 3 as here.
//! - Adam with Keras semantics: `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²`,
//!   `p -= lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)`.
//! - Optional clipping of all gradients by their global L2 norm first.
//!
//! The graph also returns that norm, unclipped: where it is not finite (a gradient
//! overflowed f32, as back-propagation through thousands of steps can), the
//! session keeps the step's parameters and state as they were.

use serde::{Deserialize, Serialize};

use crate::autodiff::{scatter_add_rows, RowSum};
use crate::onnx::{Attr, Graph, Value};

/// Which update rule, with its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    RmsProp {
        lr: f32,
        rho: f32,
        eps: f32,
    },
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

impl Optimizer {
    /// Keras' RMSprop defaults with the given learning rate (Keras: 0.001).
    pub fn rmsprop(lr: f32) -> Self {
        Optimizer::RmsProp {
            lr,
            rho: 0.9,
            eps: 1e-7,
        }
    }

    /// The constant learning rate the rule starts from.
    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::RmsProp { lr, .. } | Optimizer::Adam { lr, .. } => lr,
        }
    }

    /// Keras' Adam defaults with the given learning rate (Keras: 0.001).
    pub fn adam(lr: f32) -> Self {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

/// A parameter's gradient as the training graph produced it.
#[derive(Clone, Debug)]
pub enum Grad {
    /// Same shape as the parameter.
    Dense(Value),
    /// Rows of a table: row `ids[k]` (int64 `[N]`, repeats allowed) gets
    /// `rows[k]` (`[N, D]`) added. An embedding's gradient, without the
    /// `[vocab, D]` matrix of mostly zeros.
    Rows { ids: Value, rows: Value },
}

/// A gradient after repeated rows were summed: `rows[k]` belongs to row
/// `index[k, 0]` and every index appears once.
enum SummedGrad {
    Dense(Value),
    Rows { index: Value, rows: Value },
}

impl SummedGrad {
    fn value(&self) -> &Value {
        match self {
            SummedGrad::Dense(v) | SummedGrad::Rows { rows: v, .. } => v,
        }
    }

    fn scaled(&self, g: &mut Graph, factor: &Value) -> SummedGrad {
        let v = g.op("Mul", &[self.value(), factor], vec![]);
        match self {
            SummedGrad::Dense(_) => SummedGrad::Dense(v),
            SummedGrad::Rows { index, .. } => SummedGrad::Rows {
                index: index.clone(),
                rows: v,
            },
        }
    }

    /// The dense gradient of `param` (scattering rows into zeros).
    fn dense(&self, g: &mut Graph, param: &Value) -> Value {
        match self {
            SummedGrad::Dense(v) => v.clone(),
            SummedGrad::Rows { index, rows } => {
                let zeros = crate::autodiff::zeros_like(g, param);
                g.op("ScatterND", &[&zeros, index, rows], vec![])
            }
        }
    }
}

/// Sums the rows of repeated ids (`Unique` + [`scatter_add_rows`]), in id order
/// within each unique row, as the dense scatter would.
fn coalesce(g: &mut Graph, grad: &Grad, sum: RowSum) -> SummedGrad {
    match grad {
        Grad::Dense(v) => SummedGrad::Dense(v.clone()),
        Grad::Rows { ids, rows } => {
            let outs = g.op_multi("Unique", &[Some(ids)], vec![Attr::Int("sorted", 1)], 4);
            let (unique, inverse) = (&outs[0], &outs[2]);
            let minus_one = g.const_i64(&[1], &[-1]);
            let index = g.op("Unsqueeze", &[unique, &minus_one], vec![]);
            let count = g.op("Shape", &[unique], vec![]);
            let width = g.op("Shape", &[rows], vec![Attr::Int("start", 1)]);
            let shape = g.op("Concat", &[&count, &width], vec![Attr::Int("axis", 0)]);
            let zeros = g.op(
                "ConstantOfShape",
                &[&shape],
                vec![Attr::Tensor(
                    "value",
                    crate::onnx::builder::tensor_f32("", &[1], &[0.0]),
                )],
            );
            let summed = scatter_add_rows(g, &zeros, inverse, rows, sum);
            SummedGrad::Rows {
                index,
                rows: summed,
            }
        }
    }
}

/// The update rule plus gradient clipping and the learning rate's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub rule: Optimizer,
    /// Scale all gradients down together when their global L2 norm exceeds this.
    pub clip_norm: Option<f32>,
    /// Multiply the learning rate by this after every epoch (`None`: constant).
    pub lr_decay: Option<f32>,
}

/// In the command line's words: `RMSprop lr 0.001, clip-norm 1, lr-decay 0.9`.
impl std::fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule {
            Optimizer::RmsProp { lr, .. } => write!(f, "RMSprop lr {lr}")?,
            Optimizer::Adam { lr, .. } => write!(f, "Adam lr {lr}")?,
        }
        if let Some(norm) = self.clip_norm {
            write!(f, ", clip-norm {norm}")?;
        }
        if let Some(decay) = self.lr_decay {
            write!(f, ", lr-decay {decay}")?;
        }
        Ok(())
    }
}

impl OptimizerConfig {
    /// The factor on the rule's learning rate during epoch `epoch` (0-based),
    /// fed to the training graph as its `lr_scale` input.
    pub fn lr_scale(&self, epoch: usize) -> f32 {
        match self.lr_decay {
            Some(decay) => decay.powi(i32::try_from(epoch).unwrap_or(i32::MAX)),
            None => 1.0,
        }
    }

    /// Names and shapes of the state tensors for parameters of `param_shapes`,
    /// in the order the training graph takes and returns them. All start at zero.
    pub fn state_shapes(&self, param_shapes: &[(&str, Vec<usize>)]) -> Vec<(String, Vec<usize>)> {
        match self.rule {
            Optimizer::RmsProp { .. } => param_shapes
                .iter()
                .map(|(name, dims)| (format!("ms_{name}"), dims.clone()))
                .collect(),
            Optimizer::Adam { .. } => {
                let mut shapes: Vec<(String, Vec<usize>)> = param_shapes
                    .iter()
                    .flat_map(|(name, dims)| {
                        [
                            (format!("m_{name}"), dims.clone()),
                            (format!("v_{name}"), dims.clone()),
                        ]
                    })
                    .collect();
                shapes.push(("adam_step".into(), vec![]));
                shapes
            }
        }
    }

    /// Emits the update (see [`Update`]). `sum`
    /// adds up the rows of repeated ids (see [`crate::autodiff::Backend::row_sum`]).
    /// `lr_scale` (a scalar) multiplies the rule's learning rate, so a schedule
    /// needs no new graph.
    ///
    /// RMSprop updates a [`Grad::Rows`] parameter sparsely and exactly: rows
    /// without gradient only see `ms ← ρ·ms` (their step is zero), so only the
    /// touched rows are computed and scattered back. Adam moves every row
    /// (momentum), so it densifies the rows first.
    pub fn emit(
        &self,
        g: &mut Graph,
        params: &[Value],
        grads: &[Grad],
        state: &[Value],
        lr_scale: &Value,
        sum: RowSum,
    ) -> Update {
        let ready: Vec<SummedGrad> = grads.iter().map(|grad| coalesce(g, grad, sum)).collect();
        let grad_norm = global_norm(g, &ready);
        let ready = match self.clip_norm {
            Some(max_norm) => clip_to_norm(g, &ready, &grad_norm, max_norm),
            None => ready,
        };
        let base_lr = g.const_f32(&[], &[self.rule.lr()]);
        let lr = g.op("Mul", &[&base_lr, lr_scale], vec![]);
        let (params, state) = match self.rule {
            Optimizer::RmsProp { rho, eps, .. } => rmsprop(g, params, &ready, state, &lr, rho, eps),
            Optimizer::Adam {
                beta1, beta2, eps, ..
            } => adam(g, params, &ready, state, &lr, [beta1, beta2], eps),
        };
        Update {
            params,
            state,
            grad_norm,
        }
    }
}

/// What [`OptimizerConfig::emit`] adds to the graph.
pub struct Update {
    /// The new parameters, in the order of the `params` given.
    pub params: Vec<Value>,
    /// The new state, in the order of [`OptimizerConfig::state_shapes`].
    pub state: Vec<Value>,
    /// The global L2 norm of the gradients before any clipping (f32 scalar). NaN or
    /// inf when a gradient overflowed, or its sum of squares did (an element past
    /// 1.8e19): the new values are then not to be used. Clipping such a gradient
    /// would scale it by 0 (or NaN), and the optimizer's squares would overflow.
    pub grad_norm: Value,
}

/// `old·keep + fresh·(1-keep)`, Adam's running averages; the two weights are
/// scalar constants. (RMSprop decays its mean square before picking the rows it
/// updates, so it writes the two halves apart.)
fn moving_average(
    g: &mut Graph,
    old: &Value,
    keep: &Value,
    fresh: &Value,
    fresh_weight: &Value,
) -> Value {
    let kept = g.op("Mul", &[old, keep], vec![]);
    let added = g.op("Mul", &[fresh, fresh_weight], vec![]);
    g.op("Add", &[&kept, &added], vec![])
}

/// `param - lr · direction / (sqrt(mean_square) + ε)`.
fn scaled_step(
    g: &mut Graph,
    param: &Value,
    direction: &Value,
    mean_square: &Value,
    eps: &Value,
    lr: &Value,
) -> Value {
    let root = g.op("Sqrt", &[mean_square], vec![]);
    let denom = g.op("Add", &[&root, eps], vec![]);
    let ratio = g.op("Div", &[direction, &denom], vec![]);
    let step = g.op("Mul", &[&ratio, lr], vec![]);
    g.op("Sub", &[param, &step], vec![])
}

/// RMSprop: one mean square per parameter. A row gradient updates only its
/// rows; the others' mean squares just decay.
fn rmsprop(
    g: &mut Graph,
    params: &[Value],
    ready: &[SummedGrad],
    state: &[Value],
    lr: &Value,
    rho: f32,
    eps: f32,
) -> (Vec<Value>, Vec<Value>) {
    let rho_v = g.const_f32(&[], &[rho]);
    let one_minus_rho = g.const_f32(&[], &[1.0 - rho]);
    let eps_v = g.const_f32(&[], &[eps]);
    let mut new_params = Vec::new();
    let mut new_state = Vec::new();
    for ((p, grad), ms) in params.iter().zip(ready).zip(state) {
        let decayed = g.op("Mul", &[ms, &rho_v], vec![]);
        let (grad, rows_index, ms_old, p_old) = match grad {
            SummedGrad::Dense(v) => (v.clone(), None, decayed.clone(), p.clone()),
            SummedGrad::Rows { index, rows } => {
                let ms_rows = g.op("GatherND", &[&decayed, index], vec![]);
                let p_rows = g.op("GatherND", &[p, index], vec![]);
                (rows.clone(), Some(index), ms_rows, p_rows)
            }
        };
        let sq = g.op("Mul", &[&grad, &grad], vec![]);
        let fresh = g.op("Mul", &[&sq, &one_minus_rho], vec![]);
        let ms_new = g.op("Add", &[&ms_old, &fresh], vec![]);
        let p_new = scaled_step(g, &p_old, &grad, &ms_new, &eps_v, lr);
        match rows_index {
            None => {
                new_params.push(p_new);
                new_state.push(ms_new);
            }
            Some(index) => {
                new_params.push(g.op("ScatterND", &[p, index, &p_new], vec![]));
                new_state.push(g.op("ScatterND", &[&decayed, index, &ms_new], vec![]));
            }
        }
    }
    (new_params, new_state)
}

/// Adam: two moments per parameter, then the step count, which scales the
/// learning rate by `sqrt(1-β2^t)/(1-β1^t)`.
fn adam(
    g: &mut Graph,
    params: &[Value],
    ready: &[SummedGrad],
    state: &[Value],
    lr: &Value,
    [beta1, beta2]: [f32; 2],
    eps: f32,
) -> (Vec<Value>, Vec<Value>) {
    let t_old = &state[state.len() - 1];
    let one = g.const_f32(&[], &[1.0]);
    let t = g.op("Add", &[t_old, &one], vec![]);
    let b1 = g.const_f32(&[], &[beta1]);
    let b2 = g.const_f32(&[], &[beta2]);
    let b1t = g.op("Pow", &[&b1, &t], vec![]);
    let b2t = g.op("Pow", &[&b2, &t], vec![]);
    let c1 = g.op("Sub", &[&one, &b1t], vec![]);
    let c2 = g.op("Sub", &[&one, &b2t], vec![]);
    let c2 = g.op("Sqrt", &[&c2], vec![]);
    let lr_scaled = g.op("Mul", &[lr, &c2], vec![]);
    let lr_t = g.op("Div", &[&lr_scaled, &c1], vec![]);
    let one_minus_b1 = g.const_f32(&[], &[1.0 - beta1]);
    let one_minus_b2 = g.const_f32(&[], &[1.0 - beta2]);
    let eps_v = g.const_f32(&[], &[eps]);
    let mut new_params = Vec::new();
    let mut new_state = Vec::new();
    for (k, (p, grad)) in params.iter().zip(ready).enumerate() {
        let grad = &grad.dense(g, p);
        let (m, v) = (&state[2 * k], &state[2 * k + 1]);
        let m_new = moving_average(g, m, &b1, grad, &one_minus_b1);
        let sq = g.op("Mul", &[grad, grad], vec![]);
        let v_new = moving_average(g, v, &b2, &sq, &one_minus_b2);
        new_params.push(scaled_step(g, p, &m_new, &v_new, &eps_v, &lr_t));
        new_state.push(m_new);
        new_state.push(v_new);
    }
    new_state.push(t);
    (new_params, new_state)
}

/// `‖g‖`, the L2 norm over all gradients together (f32 scalar).
fn global_norm(g: &mut Graph, grads: &[SummedGrad]) -> Value {
    let squares: Vec<Value> = grads
        .iter()
        .map(|grad| {
            let v = grad.value();
            let sq = g.op("Mul", &[v, v], vec![]);
            g.op("ReduceSum", &[&sq], vec![Attr::Int("keepdims", 0)])
        })
        .collect();
    let refs: Vec<&Value> = squares.iter().collect();
    let total = g.op("Sum", &refs, vec![]);
    g.op("Sqrt", &[&total], vec![])
}

/// `g_k · max_norm / max(‖g‖, max_norm)`, given `‖g‖` from [`global_norm`].
fn clip_to_norm(
    g: &mut Graph,
    grads: &[SummedGrad],
    norm: &Value,
    max_norm: f32,
) -> Vec<SummedGrad> {
    let limit = g.const_f32(&[], &[max_norm]);
    let bigger = g.op("Max", &[norm, &limit], vec![]);
    let scale = g.op("Div", &[&limit, &bigger], vec![]);
    grads.iter().map(|grad| grad.scaled(g, &scale)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{Dim, Elem, OPSET};
    use crate::ort_env::{self, Device};
    use ort::value::Tensor;

    /// Runs one update on ORT for a single parameter vector and returns the
    /// new parameter and state values.
    fn run_update(
        cfg: OptimizerConfig,
        p: &[f32],
        grad: &[f32],
        state: &[Vec<f32>],
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        run_update_in_epoch(cfg, 0, p, grad, state)
    }

    /// [`run_update`] with the learning rate's factor for `epoch`.
    fn run_update_in_epoch(
        cfg: OptimizerConfig,
        epoch: usize,
        p: &[f32],
        grad: &[f32],
        state: &[Vec<f32>],
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        ort_env::init().unwrap();
        let n = p.len() as i64;
        let shapes = cfg.state_shapes(&[("p", vec![p.len()])]);
        let mut g = Graph::new("opt");
        let pv = g.input("p", Elem::F32, &[Dim::Fixed(n)]);
        let gv = g.input("g", Elem::F32, &[Dim::Fixed(n)]);
        let sv: Vec<Value> = shapes
            .iter()
            .map(|(name, dims)| {
                let dims: Vec<Dim> = dims.iter().map(|d| Dim::Fixed(*d as i64)).collect();
                g.input(name, Elem::F32, &dims)
            })
            .collect();
        let scale = g.const_f32(&[], &[cfg.lr_scale(epoch)]);
        let Update {
            params: np,
            state: ns,
            ..
        } = cfg.emit(
            &mut g,
            &[pv],
            &[Grad::Dense(gv)],
            &sv,
            &scale,
            RowSum::ScatterNd,
        );
        g.output_untyped(&np[0], "p_new");
        for (k, s) in ns.iter().enumerate() {
            g.output_untyped(s, &format!("s_new{k}"));
        }
        let mut session =
            ort_env::session_from_bytes(&g.to_model_bytes(OPSET), Device::Cpu, 1).unwrap();
        let mut feed: Vec<(String, ort::session::SessionInputValue)> = vec![
            (
                "p".into(),
                Tensor::from_array(([p.len()], p.to_vec()))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
            (
                "g".into(),
                Tensor::from_array(([p.len()], grad.to_vec()))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
        ];
        for ((name, dims), data) in shapes.iter().zip(state) {
            feed.push((
                name.clone(),
                Tensor::from_array((dims.clone(), data.clone()))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ));
        }
        let out = session.run(feed).unwrap();
        let get = |name: &str| out[name].try_extract_tensor::<f32>().unwrap().1.to_vec();
        let new_state = (0..shapes.len())
            .map(|k| get(&format!("s_new{k}")))
            .collect();
        (get("p_new"), new_state)
    }

    fn close(a: f32, b: f64) -> bool {
        (a as f64 - b).abs() <= 1e-6 + 1e-5 * b.abs()
    }

    #[test]
    fn rmsprop_matches_keras_formula() {
        let cfg = OptimizerConfig {
            rule: Optimizer::rmsprop(0.01),
            clip_norm: None,
            lr_decay: None,
        };
        let (p, g, ms) = ([0.5f32, -1.0], [0.2f32, -3.0], [0.1f32, 0.0]);
        let (np, ns) = run_update(cfg, &p, &g, &[ms.to_vec()]);
        for i in 0..2 {
            let ms_new = 0.9 * ms[i] as f64 + 0.1 * (g[i] as f64).powi(2);
            let expected = p[i] as f64 - 0.01 * g[i] as f64 / (ms_new.sqrt() + 1e-7);
            assert!(close(ns[0][i], ms_new), "ms[{i}] {} vs {ms_new}", ns[0][i]);
            assert!(close(np[i], expected), "p[{i}] {} vs {expected}", np[i]);
        }
    }

    #[test]
    fn rmsprop_small_gradients_take_full_steps() {
        // A first gradient of 1e-4 moves the parameter about lr / sqrt(1 - rho) =
        // 3.16 lr, as a large one does. With eps under the root, sqrt(ms + eps) >=
        // 3.2e-4 would cut this step to 0.3 lr.
        let cfg = OptimizerConfig {
            rule: Optimizer::rmsprop(0.001),
            clip_norm: None,
            lr_decay: None,
        };
        for grad in [1e-4f32, 1.0] {
            let (np, _) = run_update(cfg, &[0.0], &[grad], &[vec![0.0]]);
            let step = -np[0] as f64;
            assert!((step / 0.001 - 10f64.sqrt()).abs() < 0.02, "{grad}: {step}");
        }
    }

    #[test]
    fn adam_matches_keras_formula_with_bias_correction() {
        let cfg = OptimizerConfig {
            rule: Optimizer::adam(0.001),
            clip_norm: None,
            lr_decay: None,
        };
        let (p, g) = ([0.5f32, -1.0], [0.2f32, -3.0]);
        let (m, v, t) = ([0.01f32, 0.1], [0.001f32, 0.5], 3.0f32);
        let (np, ns) = run_update(cfg, &p, &g, &[m.to_vec(), v.to_vec(), vec![t]]);
        assert_eq!(ns[2], [4.0]);
        let lr_t = 0.001 * (1.0 - 0.999f64.powi(4)).sqrt() / (1.0 - 0.9f64.powi(4));
        for i in 0..2 {
            let m_new = 0.9 * m[i] as f64 + 0.1 * g[i] as f64;
            let v_new = 0.999 * v[i] as f64 + 0.001 * (g[i] as f64).powi(2);
            let expected = p[i] as f64 - lr_t * m_new / (v_new.sqrt() + 1e-7);
            assert!(close(ns[0][i], m_new) && close(ns[1][i], v_new));
            assert!(close(np[i], expected), "p[{i}] {} vs {expected}", np[i]);
        }
    }

    /// Runs `cfg`'s update of a `[4, 2]` table whose gradient is given as rows
    /// (`sparse`) or as the equivalent dense matrix, plus a dense bias.
    fn table_update(cfg: OptimizerConfig, sparse: bool) -> Vec<Vec<f32>> {
        ort_env::init().unwrap();
        let table: Vec<f32> = (0..8).map(|i| i as f32 * 0.25 - 1.0).collect();
        let ids = [2i64, 0, 2, 2];
        let rows: Vec<f32> = (0..8).map(|i| (i as f32 - 3.5) * 0.3).collect();
        let bias_grad = [0.5f32, -2.0];
        let shapes = cfg.state_shapes(&[("t", vec![4, 2]), ("b", vec![2])]);
        let mut g = Graph::new("rows");
        let t = g.input("t", Elem::F32, &[Dim::Fixed(4), Dim::Fixed(2)]);
        let b = g.input("b", Elem::F32, &[Dim::Fixed(2)]);
        let ids_v = g.const_i64(&[4], &ids);
        let rows_v = g.const_f32(&[4, 2], &rows);
        let grad_t = if sparse {
            Grad::Rows {
                ids: ids_v,
                rows: rows_v,
            }
        } else {
            let zeros = g.const_f32(&[4, 2], &[0.0; 8]);
            Grad::Dense(scatter_add_rows(
                &mut g,
                &zeros,
                &ids_v,
                &rows_v,
                RowSum::ScatterNd,
            ))
        };
        let grad_b = Grad::Dense(g.const_f32(&[2], &bias_grad));
        let sv: Vec<Value> = shapes
            .iter()
            .map(|(name, dims)| {
                let dims: Vec<Dim> = dims.iter().map(|d| Dim::Fixed(*d as i64)).collect();
                g.input(name, Elem::F32, &dims)
            })
            .collect();
        let one = g.const_f32(&[], &[1.0]);
        let Update {
            params: np,
            state: ns,
            ..
        } = cfg.emit(
            &mut g,
            &[t, b],
            &[grad_t, grad_b],
            &sv,
            &one,
            RowSum::ScatterNd,
        );
        let outs: Vec<Value> = np.into_iter().chain(ns).collect();
        for (k, v) in outs.iter().enumerate() {
            g.output_untyped(v, &format!("out{k}"));
        }
        let mut session =
            ort_env::session_from_bytes(&g.to_model_bytes(OPSET), Device::Cpu, 1).unwrap();
        let mut feed: Vec<(String, ort::session::SessionInputValue)> = vec![
            (
                "t".into(),
                Tensor::from_array(([4usize, 2], table))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
            (
                "b".into(),
                Tensor::from_array(([2usize], vec![0.1f32, 0.2]))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ),
        ];
        for (name, dims) in &shapes {
            // Non-zero state, so the decay of untouched rows is visible.
            let n: usize = dims.iter().product();
            let data: Vec<f32> = (0..n).map(|i| 0.01 * (i + 1) as f32).collect();
            feed.push((
                name.clone(),
                Tensor::from_array((dims.clone(), data))
                    .unwrap()
                    .into_dyn()
                    .into(),
            ));
        }
        let out = session.run(feed).unwrap();
        (0..outs.len())
            .map(|k| {
                out[format!("out{k}").as_str()]
                    .try_extract_tensor::<f32>()
                    .unwrap()
                    .1
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn row_gradients_update_exactly_like_dense_ones() {
        for rule in [Optimizer::rmsprop(0.01), Optimizer::adam(0.01)] {
            for clip_norm in [None, Some(0.5)] {
                let cfg = OptimizerConfig {
                    rule,
                    clip_norm,
                    lr_decay: None,
                };
                let (sparse, dense) = (table_update(cfg, true), table_update(cfg, false));
                for (k, (a, b)) in sparse.iter().zip(&dense).enumerate() {
                    for (x, y) in a.iter().zip(b) {
                        assert!(
                            (x - y).abs() <= 1e-7 * y.abs().max(1.0),
                            "{cfg:?} output {k}: {a:?} vs {b:?}"
                        );
                    }
                }
                // Row 1 and 3 had no gradient: RMSprop leaves them, their state decays.
                if let Optimizer::RmsProp { .. } = rule {
                    assert_eq!(sparse[0][2..4], [-0.5, -0.25]);
                    assert_eq!(sparse[2][2], 0.03 * 0.9);
                }
            }
        }
    }

    #[test]
    fn clipping_scales_by_the_global_norm() {
        // One parameter, ‖g‖ = 5 > 1: the clipped gradient is g / 5, so the
        // RMSprop step equals that of g / 5.
        let clipped = OptimizerConfig {
            rule: Optimizer::rmsprop(0.1),
            clip_norm: Some(1.0),
            lr_decay: None,
        };
        let plain = OptimizerConfig {
            rule: Optimizer::rmsprop(0.1),
            clip_norm: None,
            lr_decay: None,
        };
        let (a, sa) = run_update(clipped, &[1.0, 1.0], &[3.0, 4.0], &[vec![0.0, 0.0]]);
        let (b, sb) = run_update(plain, &[1.0, 1.0], &[0.6, 0.8], &[vec![0.0, 0.0]]);
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        // Under the limit nothing changes.
        let (c, _) = run_update(clipped, &[1.0, 1.0], &[0.3, 0.4], &[vec![0.0, 0.0]]);
        let (d, _) = run_update(plain, &[1.0, 1.0], &[0.3, 0.4], &[vec![0.0, 0.0]]);
        assert_eq!(c, d);
    }

    #[test]
    fn lr_decay_scales_each_epochs_steps() {
        // lr 0.01 decayed by 0.5 twice steps like lr 0.0025, for both rules.
        for (decayed, plain) in [
            (Optimizer::rmsprop(0.01), Optimizer::rmsprop(0.0025)),
            (Optimizer::adam(0.01), Optimizer::adam(0.0025)),
        ] {
            let decayed = OptimizerConfig {
                rule: decayed,
                clip_norm: None,
                lr_decay: Some(0.5),
            };
            let plain = OptimizerConfig {
                rule: plain,
                clip_norm: None,
                lr_decay: None,
            };
            assert_eq!(decayed.lr_scale(0), 1.0);
            assert_eq!(decayed.lr_scale(2), 0.25);
            assert_eq!(plain.lr_scale(7), 1.0);
            let state: Vec<Vec<f32>> = plain
                .state_shapes(&[("p", vec![2])])
                .iter()
                .map(|(_, dims)| vec![0.0; dims.iter().product()])
                .collect();
            let (p, g) = ([0.5f32, -1.0], [0.2f32, -3.0]);
            let (a, sa) = run_update_in_epoch(decayed, 2, &p, &g, &state);
            let (b, sb) = run_update(plain, &p, &g, &state);
            assert_eq!(a, b, "{decayed:?}");
            assert_eq!(sa, sb);
            let (first, _) = run_update(decayed, &p, &g, &state);
            assert_ne!(first, b, "epoch 0 takes the full rate");
        }
    }
}
