//! Post-training quantization: trained f32 parameters into the runtime's blobs.
//!
//! The integer path's activation formats are fixed (Q0.15 gates and hidden
//! state, Q4.11 cell state, Q3.12 pre-activations), so calibration on training
//! data measures how often the cell state would saturate, and picks the weight
//! scale scheme (per gate or per row) by the measured output error against the
//! f32 path on the same sequences.

use anyhow::{Context, Result};
use lstm_edge_runtime::builder::{FloatWeights, InputSpec, ModelSpec, ScaleScheme};
use lstm_edge_runtime::host::HostModel;
use serde::{Deserialize, Serialize};

use crate::model::{InputConfig, ModelConfig, Params, ReferenceState};

/// The runtime's model description of trained parameters.
pub fn model_spec(cfg: &ModelConfig, params: &Params) -> Result<ModelSpec> {
    params.check_shapes(cfg)?;
    let input = match &cfg.input {
        InputConfig::Chars {
            table,
            lowercase,
            unk,
            pad,
        } => InputSpec::Chars {
            symbols: table.clone(),
            lowercase: *lowercase,
            unk: *unk,
            pad: *pad,
        },
        InputConfig::Words {
            strings,
            offsets,
            embed_dim,
        } => InputSpec::Words {
            strings: strings.clone(),
            offsets: offsets.clone(),
            embed_dim: u16::try_from(*embed_dim).context("embedding width over 65535")?,
        },
    };
    Ok(ModelSpec {
        cell: cfg.cell,
        hidden: u16::try_from(cfg.hidden).context("hidden size over 65535")?,
        input,
        head: cfg.head,
        output: cfg.output,
        weights: FloatWeights {
            embedding: params
                .embedding
                .as_ref()
                .map(|e| e.data.clone())
                .unwrap_or_default(),
            w: params.w.data.clone(),
            r: params.r.data.clone(),
            wb: params.wb.data.clone(),
            rb: params.rb.data.clone(),
            head_w: params.head_w.data.clone(),
            head_b: params.head_b.data.clone(),
        },
    })
}

/// What calibration measured (stored as is in the model card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub sequences: usize,
    pub steps: u64,
    /// Largest |cell state| seen (LSTM; 0 for GRU). Q4.11 holds up to 16.
    pub max_abs_cell: f64,
    /// Share of cell-state values at or past the Q4.11 limit.
    pub saturated_cell_share: f64,
    /// Mean |int - f32| of the outputs, per scheme tried.
    pub per_gate_error: f64,
    pub per_row_error: f64,
    pub chosen: String,
}

/// Both blobs of a trained model.
#[derive(Debug, Clone)]
pub struct Quantized {
    pub f32_blob: Vec<u8>,
    pub int_blob: Vec<u8>,
    pub scheme: ScaleScheme,
    pub calibration: Calibration,
}

fn mean_abs_diff(a: &HostModel<'_>, b: &HostModel<'_>, sequences: &[Vec<u16>]) -> Result<f64> {
    let mut total = 0.0;
    let mut count = 0usize;
    for ids in sequences {
        let (x, y) = (a.outputs(ids)?, b.outputs(ids)?);
        total += x.iter().zip(&y).map(|(p, q)| (p - q).abs()).sum::<f64>();
        count += x.len();
    }
    Ok(total / count.max(1) as f64)
}

/// Whether `params` fit the runtime's blobs, f32 and integer (both scale schemes):
/// the fixed-point formats bound the weights far below f32's range (`R` below 508,
/// `W` by its input: for a word model, with the embedding's largest value), so
/// training checks this after every epoch.
pub fn check_fits(cfg: &ModelConfig, params: &Params) -> Result<()> {
    let spec = model_spec(cfg, params)?;
    spec.f32_blob()?;
    spec.int_blob(ScaleScheme::PerGate)?;
    spec.int_blob(ScaleScheme::PerRow)?;
    Ok(())
}

/// Quantizes with calibration on `sequences` (token ids from training data).
pub fn quantize(cfg: &ModelConfig, params: &Params, sequences: &[Vec<u16>]) -> Result<Quantized> {
    let spec = model_spec(cfg, params)?;
    let f32_blob = spec.f32_blob()?;
    let per_gate = spec.int_blob(ScaleScheme::PerGate)?;
    let per_row = spec.int_blob(ScaleScheme::PerRow)?;
    let reference = HostModel::new(&f32_blob)?;
    let per_gate_error = mean_abs_diff(&HostModel::new(&per_gate)?, &reference, sequences)?;
    let per_row_error = mean_abs_diff(&HostModel::new(&per_row)?, &reference, sequences)?;

    let (mut max_abs_cell, mut saturated, mut values, mut steps) = (0f64, 0u64, 0u64, 0u64);
    for ids in sequences {
        let mut state = ReferenceState::new(cfg);
        for &id in ids {
            params.step(cfg, id, &mut state);
            steps += 1;
            if cfg.cell == lstm_edge_runtime::format::Cell::Lstm {
                for &c in &state.c {
                    max_abs_cell = max_abs_cell.max(c.abs());
                    saturated += u64::from(c.abs() >= 16.0);
                    values += 1;
                }
            }
        }
    }
    let (scheme, int_blob) = if per_row_error <= per_gate_error {
        (ScaleScheme::PerRow, per_row)
    } else {
        (ScaleScheme::PerGate, per_gate)
    };
    Ok(Quantized {
        f32_blob,
        int_blob,
        scheme,
        calibration: Calibration {
            sequences: sequences.len(),
            steps,
            max_abs_cell,
            saturated_cell_share: saturated as f64 / values.max(1) as f64,
            per_gate_error,
            per_row_error,
            chosen: format!("{scheme:?}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lstm_edge_runtime::format::{Cell, Head, Output};

    fn config(cell: Cell, head: Head, output: Output) -> ModelConfig {
        ModelConfig {
            cell,
            input: InputConfig::Chars {
                table: b"abcdefgh ".to_vec(),
                lowercase: true,
                unk: true,
                pad: true,
            },
            hidden: 12,
            head,
            output,
            dropout: 0.0,
        }
    }

    #[test]
    fn quantized_blobs_track_the_trainer_forward_pass() {
        let cases = [
            (Cell::Lstm, Head::Flatten { maxlen: 30 }, Output::Sigmoid),
            (Cell::Gru, Head::Mean, Output::Sigmoid),
            (Cell::Lstm, Head::Last, Output::Softmax { classes: 10 }),
        ];
        for (k, (cell, head, output)) in cases.into_iter().enumerate() {
            let cfg = config(cell, head, output);
            let params = Params::init(&cfg, k as u64 + 1);
            let seqs: Vec<Vec<u16>> = (0..20u16)
                .map(|s| (0..25u16).map(|t| (s * 7 + t * 3) % 10).collect())
                .collect();
            let q = quantize(&cfg, &params, &seqs).unwrap();
            let f32_model = HostModel::new(&q.f32_blob).unwrap();
            let int_model = HostModel::new(&q.int_blob).unwrap();
            assert!(int_model.is_integer() && !f32_model.is_integer());
            for ids in &seqs {
                let want = params.forward_reference(&cfg, ids);
                let f = f32_model.outputs(ids).unwrap();
                let i = int_model.outputs(ids).unwrap();
                for ((w, f), i) in want.iter().zip(&f).zip(&i) {
                    assert!((w - f).abs() < 1e-5, "{cell:?} {head:?}: f32 {f} vs {w}");
                    assert!((w - i).abs() < 0.02, "{cell:?} {head:?}: int {i} vs {w}");
                }
            }
            let c = &q.calibration;
            assert_eq!(c.steps, 20 * 25);
            assert!(c.per_gate_error.min(c.per_row_error) < 0.01, "{c:?}");
        }
    }
}
