//! `lstm-edge verify`: the same inputs through (a) tract on the exported ONNX,
//! (b) the runtime's f32 path and (c) its integer path. The runtime streams
//! token by token; tract sees each whole (padded) sequence at once.

use std::collections::HashMap;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::Input;
use lstm_edge_runtime::host::HostModel;
use serde::Serialize;
use tract_onnx::prelude::*;

type Plan = std::sync::Arc<TypedSimplePlan>;

/// Tract on an exported ONNX model, one compiled plan per sequence length.
pub struct TractModel {
    onnx: Vec<u8>,
    plans: HashMap<usize, Plan>,
}

impl TractModel {
    pub fn new(onnx: Vec<u8>) -> Self {
        TractModel {
            onnx,
            plans: HashMap::new(),
        }
    }

    fn plan(&mut self, len: usize) -> Result<&Plan> {
        if !self.plans.contains_key(&len) {
            let plan = tract_onnx::onnx()
                .model_for_read(&mut self.onnx.as_slice())
                .context("tract cannot read the ONNX model")?
                .with_input_fact(0, i64::fact([1, len]).into())?
                .into_optimized()?
                .into_runnable()?;
            self.plans.insert(len, plan);
        }
        self.plans.get(&len).context("plan cache")
    }

    /// Outputs for one sequence of ids (already padded where the model needs it).
    pub fn outputs(&mut self, ids: &[u16]) -> Result<Vec<f64>> {
        let input: Tensor = tract_ndarray::Array2::from_shape_vec(
            (1, ids.len()),
            ids.iter().map(|&i| i as i64).collect(),
        )?
        .into();
        let out = self.plan(ids.len())?.run(tvec!(input.into_tvalue()))?;
        let view = out
            .first()
            .context("the ONNX model has no output")?
            .to_plain_array_view::<f32>()?;
        Ok(view.iter().map(|&v| v as f64).collect())
    }
}

/// Agreement between the three implementations.
#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub sequences: usize,
    /// Max |tract - runtime f32| over all outputs.
    pub max_abs_tract_vs_f32: f64,
    /// Max |runtime f32 - runtime int|.
    pub max_abs_f32_vs_int: f64,
    /// Max |tract - runtime int|.
    pub max_abs_tract_vs_int: f64,
    /// Share of sequences where f32 and int make the same decision (sign of
    /// score - 0.5, or arg max).
    pub decision_agreement_f32_vs_int: f64,
    pub decision_agreement_tract_vs_f32: f64,
}

/// How far the runtime's f32 path may stray from tract on the same ONNX: float
/// rounding in a different order stays near 1e-6 on the shipped models.
pub const TRACT_F32_TOLERANCE: f64 = 1e-4;

impl VerifyReport {
    /// An error when tract and the f32 blob disagree beyond
    /// [`TRACT_F32_TOLERANCE`]: the ONNX and the blobs are not the same model.
    /// The integer path is quantized, so its gap is reported, not judged.
    pub fn check(&self) -> Result<()> {
        ensure!(self.sequences > 0, "no sequences were compared");
        if self.max_abs_tract_vs_f32 > TRACT_F32_TOLERANCE {
            bail!(
                "tract on the ONNX and the f32 blob differ by up to {:.3e} (over {TRACT_F32_TOLERANCE:e}): \
                 they do not hold the same model; write both from one checkpoint \
                 (`lstm-edge export` and `lstm-edge quantize`)",
                self.max_abs_tract_vs_f32
            );
        }
        Ok(())
    }
}

fn decision(outputs: &[f64]) -> usize {
    match outputs {
        [p] => usize::from(*p >= 0.5),
        _ => {
            outputs
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        }
    }
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Runs `sequences` (unpadded ids) through the three implementations.
pub fn verify(
    onnx: Vec<u8>,
    f32_blob: &[u8],
    int_blob: &[u8],
    sequences: &[Vec<u16>],
) -> Result<VerifyReport> {
    let f32_model = HostModel::new(f32_blob).context("the f32 blob")?;
    let int_model = HostModel::new(int_blob).context("the integer blob")?;
    if f32_model.is_integer() || !int_model.is_integer() {
        bail!("verify needs an f32 blob and an integer blob, in that order");
    }
    let body = f32_model.model().body();
    let (head, output) = (body.head, body.output);
    let pad = match body.input {
        Input::Chars { symbols, unk, .. } => (symbols.len() + usize::from(unk)) as u16,
        Input::Words { .. } => 0,
    };
    let mut tract = TractModel::new(onnx);
    let mut report = VerifyReport {
        sequences: sequences.len(),
        ..Default::default()
    };
    let (mut agree_int, mut agree_tract) = (0usize, 0usize);
    for ids in sequences {
        let tract_ids: Vec<u16> = match head.flatten_maxlen() {
            Some(maxlen) => head
                .kept(ids)
                .iter()
                .copied()
                .chain(std::iter::repeat(pad))
                .take(maxlen as usize)
                .collect(),
            None => ids.clone(),
        };
        let t = tract.outputs(&tract_ids)?;
        let f = f32_model.outputs(ids)?;
        let i = int_model.outputs(ids)?;
        if t.len() != f.len() || f.len() != i.len() || f.len() != output.width() {
            bail!(
                "output widths differ: tract {}, f32 {}, int {}",
                t.len(),
                f.len(),
                i.len()
            );
        }
        report.max_abs_tract_vs_f32 = report.max_abs_tract_vs_f32.max(max_abs(&t, &f));
        report.max_abs_f32_vs_int = report.max_abs_f32_vs_int.max(max_abs(&f, &i));
        report.max_abs_tract_vs_int = report.max_abs_tract_vs_int.max(max_abs(&t, &i));
        agree_int += usize::from(decision(&f) == decision(&i));
        agree_tract += usize::from(decision(&t) == decision(&f));
    }
    let n = sequences.len().max(1) as f64;
    report.decision_agreement_f32_vs_int = agree_int as f64 / n;
    report.decision_agreement_tract_vs_f32 = agree_tract as f64 / n;
    Ok(report)
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "sequences                     {}", self.sequences)?;
        writeln!(
            f,
            "max |tract - runtime f32|     {:.3e}",
            self.max_abs_tract_vs_f32
        )?;
        writeln!(
            f,
            "max |runtime f32 - int|       {:.3e}",
            self.max_abs_f32_vs_int
        )?;
        writeln!(
            f,
            "max |tract - runtime int|     {:.3e}",
            self.max_abs_tract_vs_int
        )?;
        writeln!(
            f,
            "decisions f32 = int           {:.2}%",
            100.0 * self.decision_agreement_f32_vs_int
        )?;
        writeln!(
            f,
            "decisions tract = f32         {:.2}%",
            100.0 * self.decision_agreement_tract_vs_f32
        )
    }
}
