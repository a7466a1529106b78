//! Optimizer updates emitted into the training graph, so parameters and their
//! optimizer state go in and come out of the same session run.
//!
//! - RMSprop with Keras semantics: `ms = ρ·ms + (1-ρ)·g²`,
//!   `p -= lr · g / sqrt(ms + ε)` (ρ 0.9, ε 1e-7; `ms` starts at zero).
//! - Adam with Keras semantics: `m = β1·m + (1-β1)·g`, `v = β2·v + (1-β2)·g²`,
//!   `p -= lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)`.
//! - Optional clipping of all gradients by their global L2 norm first.

use serde::{Deserialize, Serialize};

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

/// The update rule plus gradient clipping.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub rule: Optimizer,
    /// Scale all gradients down together when their global L2 norm exceeds this.
    pub clip_norm: Option<f32>,
}

impl OptimizerConfig {
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

    /// Emits the update: returns the new parameters (same order as `params`)
    /// and the new state (order of [`OptimizerConfig::state_shapes`]).
    pub fn emit(
        &self,
        g: &mut Graph,
        params: &[Value],
        grads: &[Value],
        state: &[Value],
    ) -> (Vec<Value>, Vec<Value>) {
        let grads = match self.clip_norm {
            Some(max_norm) => clip_by_global_norm(g, grads, max_norm),
            None => grads.to_vec(),
        };
        match self.rule {
            Optimizer::RmsProp { lr, rho, eps } => {
                let rho_v = g.const_f32(&[], &[rho]);
                let one_minus_rho = g.const_f32(&[], &[1.0 - rho]);
                let eps_v = g.const_f32(&[], &[eps]);
                let lr_v = g.const_f32(&[], &[lr]);
                let mut new_params = Vec::new();
                let mut new_state = Vec::new();
                for ((p, grad), ms) in params.iter().zip(&grads).zip(state) {
                    let decayed = g.op("Mul", &[ms, &rho_v], vec![]);
                    let sq = g.op("Mul", &[grad, grad], vec![]);
                    let fresh = g.op("Mul", &[&sq, &one_minus_rho], vec![]);
                    let ms_new = g.op("Add", &[&decayed, &fresh], vec![]);
                    let shifted = g.op("Add", &[&ms_new, &eps_v], vec![]);
                    let denom = g.op("Sqrt", &[&shifted], vec![]);
                    let ratio = g.op("Div", &[grad, &denom], vec![]);
                    let step = g.op("Mul", &[&ratio, &lr_v], vec![]);
                    new_params.push(g.op("Sub", &[p, &step], vec![]));
                    new_state.push(ms_new);
                }
                (new_params, new_state)
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
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
                let lr_v = g.const_f32(&[], &[lr]);
                let lr_scaled = g.op("Mul", &[&lr_v, &c2], vec![]);
                let lr_t = g.op("Div", &[&lr_scaled, &c1], vec![]);
                let one_minus_b1 = g.const_f32(&[], &[1.0 - beta1]);
                let one_minus_b2 = g.const_f32(&[], &[1.0 - beta2]);
                let eps_v = g.const_f32(&[], &[eps]);
                let mut new_params = Vec::new();
                let mut new_state = Vec::new();
                for (k, (p, grad)) in params.iter().zip(&grads).enumerate() {
                    let (m, v) = (&state[2 * k], &state[2 * k + 1]);
                    let m_keep = g.op("Mul", &[m, &b1], vec![]);
                    let m_fresh = g.op("Mul", &[grad, &one_minus_b1], vec![]);
                    let m_new = g.op("Add", &[&m_keep, &m_fresh], vec![]);
                    let v_keep = g.op("Mul", &[v, &b2], vec![]);
                    let sq = g.op("Mul", &[grad, grad], vec![]);
                    let v_fresh = g.op("Mul", &[&sq, &one_minus_b2], vec![]);
                    let v_new = g.op("Add", &[&v_keep, &v_fresh], vec![]);
                    let root = g.op("Sqrt", &[&v_new], vec![]);
                    let denom = g.op("Add", &[&root, &eps_v], vec![]);
                    let ratio = g.op("Div", &[&m_new, &denom], vec![]);
                    let step = g.op("Mul", &[&ratio, &lr_t], vec![]);
                    new_params.push(g.op("Sub", &[p, &step], vec![]));
                    new_state.push(m_new);
                    new_state.push(v_new);
                }
                new_state.push(t);
                (new_params, new_state)
            }
        }
    }
}

/// `g_k · max_norm / max(‖g‖, max_norm)` with `‖g‖` over all gradients.
fn clip_by_global_norm(g: &mut Graph, grads: &[Value], max_norm: f32) -> Vec<Value> {
    let squares: Vec<Value> = grads
        .iter()
        .map(|grad| {
            let sq = g.op("Mul", &[grad, grad], vec![]);
            g.op("ReduceSum", &[&sq], vec![Attr::Int("keepdims", 0)])
        })
        .collect();
    let refs: Vec<&Value> = squares.iter().collect();
    let total = g.op("Sum", &refs, vec![]);
    let norm = g.op("Sqrt", &[&total], vec![]);
    let limit = g.const_f32(&[], &[max_norm]);
    let bigger = g.op("Max", &[&norm, &limit], vec![]);
    let scale = g.op("Div", &[&limit, &bigger], vec![]);
    grads
        .iter()
        .map(|grad| g.op("Mul", &[grad, &scale], vec![]))
        .collect()
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
        let (np, ns) = cfg.emit(&mut g, &[pv], &[gv], &sv);
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
        };
        let (p, g, ms) = ([0.5f32, -1.0], [0.2f32, -3.0], [0.1f32, 0.0]);
        let (np, ns) = run_update(cfg, &p, &g, &[ms.to_vec()]);
        for i in 0..2 {
            let ms_new = 0.9 * ms[i] as f64 + 0.1 * (g[i] as f64).powi(2);
            let expected = p[i] as f64 - 0.01 * g[i] as f64 / (ms_new + 1e-7).sqrt();
            assert!(close(ns[0][i], ms_new), "ms[{i}] {} vs {ms_new}", ns[0][i]);
            assert!(close(np[i], expected), "p[{i}] {} vs {expected}", np[i]);
        }
    }

    #[test]
    fn adam_matches_keras_formula_with_bias_correction() {
        let cfg = OptimizerConfig {
            rule: Optimizer::adam(0.001),
            clip_norm: None,
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

    #[test]
    fn clipping_scales_by_the_global_norm() {
        // One parameter, ‖g‖ = 5 > 1: the clipped gradient is g / 5, so the
        // RMSprop step equals that of g / 5.
        let clipped = OptimizerConfig {
            rule: Optimizer::rmsprop(0.1),
            clip_norm: Some(1.0),
        };
        let plain = OptimizerConfig {
            rule: Optimizer::rmsprop(0.1),
            clip_norm: None,
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
}
