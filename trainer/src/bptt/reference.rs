//! An f64 forward pass of the whole network (embedding or one-hot input, LSTM/GRU
//! with the reference pass's cell update, head, dense layer, loss) in the training
//! layout, written as plain loops, independent of the graph builders. The
//! gradient checks differentiate it by central differences: in f64 those are
//! accurate to ~1e-9, so the comparison measures the graph's f32 gradients.

use crate::model::cell_update;
use crate::step::{InputKind, NetSpec, Targets};
use lstm_edge_runtime::format::{Head, Output};

/// `m [rows, cols] · v` (row-major) added to `out`.
fn mat_vec_add(m: &[f64], cols: usize, v: &[f64], out: &mut [f64]) {
    for (row, o) in out.iter_mut().enumerate() {
        *o += m[row * cols..(row + 1) * cols]
            .iter()
            .zip(v)
            .map(|(a, b)| a * b)
            .sum::<f64>();
    }
}

/// The mean loss over the batch. `params` are in [`NetSpec::param_shapes`]
/// order; `ids` is `[B, T]`; `mask`, when given, multiplies the head features
/// (`[B, T, H]` for flatten, `[B, H]` otherwise).
pub(crate) fn loss(
    spec: &NetSpec,
    params: &[Vec<f64>],
    ids: &[i64],
    targets: &Targets,
    mask: Option<&[f64]>,
) -> f64 {
    let (h_size, t_len) = (spec.hidden, spec.steps);
    let batch = ids.len() / t_len;
    let (embedding, rest) = match spec.input {
        InputKind::Embedding { .. } => (Some(&params[0]), &params[1..]),
        InputKind::OneHot { .. } => (None, params),
    };
    let (w, r, wb, rb, head_w, head_b) =
        (&rest[0], &rest[1], &rest[2], &rest[3], &rest[4], &rest[5]);
    let in_width = spec.input_width();
    let out_width = spec.output.width();
    let mut total = 0.0;
    for b in 0..batch {
        let mut h = vec![0.0; h_size];
        let mut c = vec![0.0; h_size];
        let mut hs = Vec::new();
        for t in 0..t_len {
            let id = ids[b * t_len + t] as usize;
            let mut x = vec![0.0; in_width];
            match embedding {
                Some(e) => x.copy_from_slice(&e[id * in_width..(id + 1) * in_width]),
                None => x[id] = 1.0,
            }
            let mut xp = wb.clone();
            mat_vec_add(w, in_width, &x, &mut xp);
            let mut hr = rb.clone();
            mat_vec_add(r, h_size, &h, &mut hr);
            cell_update(spec.cell, &xp, &hr, &mut h, &mut c);
            hs.push(h.clone());
        }
        // Last and mean heads pool the steps before the first PAD (all without one).
        let row = &ids[b * t_len..(b + 1) * t_len];
        let tokens = match spec.pad {
            Some(pad) => row.iter().take_while(|&&id| id != i64::from(pad)).count(),
            None => t_len,
        };
        let mut features: Vec<f64> = match (spec.head, tokens) {
            (Head::Flatten { .. } | Head::FlattenTail { .. }, _) => hs.concat(),
            (_, 0) => vec![0.0; h_size],
            (Head::Last, _) => hs[tokens - 1].clone(),
            (Head::Mean, _) => (0..h_size)
                .map(|j| hs[..tokens].iter().map(|s| s[j]).sum::<f64>() / tokens as f64)
                .collect(),
        };
        if let Some(mask) = mask {
            let n = features.len();
            for (f, m) in features.iter_mut().zip(&mask[b * n..(b + 1) * n]) {
                *f *= m;
            }
        }
        let mut logits = head_b.clone();
        mat_vec_add(head_w, features.len(), &features, &mut logits);
        debug_assert_eq!(logits.len(), out_width);
        total += match (spec.output, targets) {
            (Output::Sigmoid, Targets::Binary(y)) => {
                let (z, y) = (logits[0], y[b] as f64);
                z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
            }
            (Output::Softmax { .. }, Targets::Class(y)) => {
                let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                let log_sum = logits.iter().map(|z| (z - max).exp()).sum::<f64>().ln() + max;
                log_sum - logits[y[b] as usize]
            }
            _ => panic!("targets do not match the output kind"),
        };
    }
    total / batch as f64
}
