//! The plain f64 reference forward pass (ONNX equations) that exported models
//! and the runtime are checked against, and its recurrent state.

use lstm_edge_runtime::format::{Cell, Head, Output};

use super::{ModelConfig, Params};

impl Params {
    /// Inference-mode outputs (sigmoid score or softmax probabilities) for one
    /// sequence, in f32; see [`Params::forward_reference`].
    pub fn forward(&self, cfg: &ModelConfig, ids: &[u16]) -> Vec<f32> {
        self.forward_reference(cfg, ids)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    /// The reference forward pass in f64, written plainly. A flatten head
    /// post-pads with PAD to `maxlen` and truncates (the tail variant keeps the last
    /// `maxlen` ids), as training does; last and mean heads use the ids as given. Panics on ids out of range or shapes
    /// that do not match `cfg` (check them with [`Params::check_shapes`]).
    pub fn forward_reference(&self, cfg: &ModelConfig, ids: &[u16]) -> Vec<f64> {
        let ids: Vec<u16> = match cfg.head.flatten_maxlen() {
            Some(maxlen) => {
                let pad = cfg.input.pad_id().expect("flatten head needs a PAD id");
                cfg.head
                    .kept(ids)
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(pad))
                    .take(maxlen as usize)
                    .collect()
            }
            None => ids.to_vec(),
        };
        let h = cfg.hidden;
        let mut state = ReferenceState::new(cfg);
        let mut features = vec![0.0f64; cfg.feature_dim()];
        for (t, &id) in ids.iter().enumerate() {
            self.step(cfg, id, &mut state);
            match cfg.head {
                Head::Flatten { .. } | Head::FlattenTail { .. } => {
                    features[t * h..(t + 1) * h].copy_from_slice(&state.h)
                }
                Head::Mean => features.iter_mut().zip(&state.h).for_each(|(f, v)| *f += v),
                Head::Last => features.copy_from_slice(&state.h),
            }
        }
        if cfg.head == Head::Mean && !ids.is_empty() {
            features.iter_mut().for_each(|f| *f /= ids.len() as f64);
        }
        self.dense_output(cfg, &features)
    }

    /// The dense layer and output activation on head features.
    pub fn dense_output(&self, cfg: &ModelConfig, features: &[f64]) -> Vec<f64> {
        let logits: Vec<f64> = (0..cfg.output.width())
            .map(|o| {
                let row = self.head_w.row(o);
                let dot: f64 = row.iter().zip(features).map(|(&w, &x)| w as f64 * x).sum();
                dot + self.head_b.data[o] as f64
            })
            .collect();
        match cfg.output {
            Output::Sigmoid => logits.iter().map(|&z| sigmoid(z)).collect(),
            Output::Softmax { .. } => {
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exp: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
                let sum: f64 = exp.iter().sum();
                exp.iter().map(|e| e / sum).collect()
            }
        }
    }

    /// One recurrent step (ONNX equations; GRU with `linear_before_reset = 1`).
    pub fn step(&self, cfg: &ModelConfig, id: u16, state: &mut ReferenceState) {
        let id = id as usize;
        assert!(id < cfg.vocab_rows(), "token id {id} is out of range");
        // Input projection W x + Wb: a column of W for one-hot, W · embedding row for words.
        let wx: Vec<f64> = match &self.embedding {
            None => (0..cfg.gate_rows())
                .map(|row| self.w.row(row)[id] as f64 + self.wb.data[row] as f64)
                .collect(),
            Some(e) => {
                let x = e.row(id);
                (0..cfg.gate_rows())
                    .map(|row| {
                        let dot: f64 = self
                            .w
                            .row(row)
                            .iter()
                            .zip(x)
                            .map(|(&w, &x)| w as f64 * x as f64)
                            .sum();
                        dot + self.wb.data[row] as f64
                    })
                    .collect()
            }
        };
        let rh: Vec<f64> = (0..cfg.gate_rows())
            .map(|row| {
                let dot: f64 = self
                    .r
                    .row(row)
                    .iter()
                    .zip(&state.h)
                    .map(|(&r, &h)| r as f64 * h)
                    .sum();
                dot + self.rb.data[row] as f64
            })
            .collect();
        cell_update(cfg.cell, &wx, &rh, &mut state.h, &mut state.c);
    }
}

/// One cell update in f64 from the gate pre-activations of the input (`wx`, W x + Wb)
/// and of the state (`rh`, R h + Rb), in ONNX gate order: LSTM i, o, f, c; GRU z, r, h
/// with `linear_before_reset = 1`. A GRU leaves `c` as it is.
pub(crate) fn cell_update(cell: Cell, wx: &[f64], rh: &[f64], h: &mut [f64], c: &mut [f64]) {
    let width = h.len();
    match cell {
        Cell::Lstm => {
            for k in 0..width {
                let gate = |g: usize| wx[g * width + k] + rh[g * width + k];
                let (i, o, f, candidate) = (
                    sigmoid(gate(0)),
                    sigmoid(gate(1)),
                    sigmoid(gate(2)),
                    gate(3).tanh(),
                );
                c[k] = f * c[k] + i * candidate;
                h[k] = o * c[k].tanh();
            }
        }
        Cell::Gru => {
            for k in 0..width {
                let z = sigmoid(wx[k] + rh[k]);
                let r = sigmoid(wx[width + k] + rh[width + k]);
                let n = (wx[2 * width + k] + r * rh[2 * width + k]).tanh();
                h[k] = (1.0 - z) * n + z * h[k];
            }
        }
    }
}

/// Recurrent state of the reference pass (`c` stays zero for GRU).
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceState {
    pub h: Vec<f64>,
    pub c: Vec<f64>,
}

impl ReferenceState {
    pub fn new(cfg: &ModelConfig) -> Self {
        ReferenceState {
            h: vec![0.0; cfg.hidden],
            c: vec![0.0; cfg.hidden],
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{chars_cfg, words_cfg};

    #[test]
    fn lstm_step_matches_hand_computation() {
        // One unit, one-hot input of width 7, weights chosen by hand (exact in f32).
        let mut cfg = chars_cfg(Cell::Lstm, Head::Last, Output::Sigmoid);
        cfg.hidden = 1;
        let mut p = Params::init(&cfg, 0);
        p.w.data.fill(0.0);
        // Column 2 (id 2) of each gate row i,o,f,c.
        for (gate, v) in [0.5, -0.25, 1.0, 2.0].into_iter().enumerate() {
            p.w.data[gate * 7 + 2] = v;
        }
        p.r.data.copy_from_slice(&[0.125, 0.25, 0.375, 0.5]);
        p.wb.data.fill(0.0);
        p.head_w.data[0] = 1.5;
        p.head_b.data[0] = -0.5;
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let (mut h, mut c) = (0.0f64, 0.0f64);
        for _ in 0..2 {
            let (i, o, f, g) = (
                s(0.5 + 0.125 * h),
                s(-0.25 + 0.25 * h),
                s(1.0 + 0.375 * h),
                (2.0 + 0.5 * h).tanh(),
            );
            c = f * c + i * g;
            h = o * c.tanh();
        }
        let expected = s(1.5 * h - 0.5);
        let got = p.forward_reference(&cfg, &[2, 2]);
        assert!((got[0] - expected).abs() < 1e-12, "{got:?} vs {expected}");
    }

    #[test]
    fn gru_step_uses_linear_before_reset() {
        let mut cfg = chars_cfg(Cell::Gru, Head::Last, Output::Sigmoid);
        cfg.hidden = 1;
        let mut p = Params::init(&cfg, 0);
        p.w.data.fill(0.0);
        for (gate, v) in [0.375, -0.625, 0.875].into_iter().enumerate() {
            p.w.data[gate * 7 + 1] = v;
        }
        p.r.data.copy_from_slice(&[0.5, 0.75, -1.125]);
        p.rb.data.copy_from_slice(&[0.0, 0.0, 0.25]);
        p.head_w.data[0] = 2.0;
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut h = 0.0f64;
        for _ in 0..3 {
            let z = s(0.375 + 0.5 * h);
            let r = s(-0.625 + 0.75 * h);
            let n = (0.875 + r * (-1.125 * h + 0.25)).tanh();
            h = (1.0 - z) * n + z * h;
        }
        let got = p.forward_reference(&cfg, &[1, 1, 1]);
        assert!((got[0] - s(2.0 * h)).abs() < 1e-12);
    }

    #[test]
    fn flatten_pads_and_truncates_mean_averages() {
        let cfg = words_cfg();
        let p = Params::init(&cfg, 5);
        let short = p.forward_reference(&cfg, &[2, 3]);
        let padded = p.forward_reference(&cfg, &[2, 3, 0, 0, 0]);
        assert_eq!(short, padded);
        let long = p.forward_reference(&cfg, &[2, 3, 4, 4, 1, 2, 2]);
        assert_eq!(long, p.forward_reference(&cfg, &[2, 3, 4, 4, 1]));

        let mut mean_cfg = chars_cfg(Cell::Lstm, Head::Mean, Output::Sigmoid);
        mean_cfg.hidden = 2;
        let m = Params::init(&mean_cfg, 9);
        let (mut s1, mut s2) = (ReferenceState::new(&mean_cfg), vec![0.0; 2]);
        for id in [0u16, 4, 1] {
            m.step(&mean_cfg, id, &mut s1);
            s2.iter_mut().zip(&s1.h).for_each(|(a, b)| *a += b / 3.0);
        }
        let want = m.dense_output(&mean_cfg, &s2);
        let got = m.forward_reference(&mean_cfg, &[0, 4, 1]);
        assert!((want[0] - got[0]).abs() < 1e-12);
    }

    #[test]
    fn softmax_outputs_sum_to_one() {
        let cfg = chars_cfg(Cell::Lstm, Head::Last, Output::Softmax { classes: 7 });
        let p = Params::init(&cfg, 2);
        let probs = p.forward(&cfg, &[0, 1, 2, 3]);
        assert_eq!(probs.len(), 7);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
