//! `lstm-edge verify`: the same inputs through (a) tract on the exported ONNX,
//! (b) the runtime's f32 path and (c) its integer path. The runtime streams
//! token by token; tract sees each whole (padded) sequence at once, and streams
//! the step ONNX token by token when there is one.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Body, Cell, Dims, Head, Input};
use lstm_edge_runtime::host::HostModel;
use lstm_edge_runtime::Tokenizer;
use serde::Serialize;
use tract_onnx::prelude::*;

use super::evaluate::decision;
use super::{
    check_blobs_match_card, check_same_model, read_model_file, verify_sequences, EvalData,
    ModelFile, TrainedCard, F32_BLOB_FILE, INT_BLOB_FILE, ONNX_FILE, STEP_ONNX_FILE,
    WITHOUT_CHECKPOINT,
};
use crate::export::ModelMetadata;
use crate::import::in_tract;

type Plan = std::sync::Arc<TypedSimplePlan>;

/// Tract on an exported ONNX model, one compiled plan per sequence length.
pub struct TractModel {
    onnx: Vec<u8>,
    /// Widths of the f32 `[1, width]` inputs after `ids` (a step model's `h0`, `c0`).
    states: Vec<usize>,
    plans: HashMap<usize, Plan>,
}

impl TractModel {
    pub fn new(onnx: Vec<u8>) -> Self {
        Self::with_states(onnx, Vec::new())
    }

    /// A model that takes f32 state inputs of these widths after `ids`.
    pub fn with_states(onnx: Vec<u8>, states: Vec<usize>) -> Self {
        TractModel {
            onnx,
            states,
            plans: HashMap::new(),
        }
    }

    fn plan(&mut self, len: usize) -> Result<&Plan> {
        if !self.plans.contains_key(&len) {
            let (onnx, states) = (&self.onnx, &self.states);
            let plan = in_tract("compiling the ONNX graph", || {
                let mut model = tract_onnx::onnx()
                    .model_for_read(&mut onnx.as_slice())
                    .context("tract cannot read the ONNX model")?
                    .with_input_fact(0, i64::fact([1, len]).into())?;
                for (i, &width) in states.iter().enumerate() {
                    model = model.with_input_fact(i + 1, f32::fact([1, width]).into())?;
                }
                model.into_optimized()?.into_runnable()
            })?;
            self.plans.insert(len, plan);
        }
        self.plans.get(&len).context("plan cache")
    }

    /// Every output for one sequence of ids and the state inputs.
    fn run(&mut self, ids: &[u16], states: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let len = ids.len();
        let ids: Tensor = tract_ndarray::Array2::from_shape_vec(
            (1, ids.len()),
            ids.iter().map(|&i| i as i64).collect(),
        )?
        .into();
        let mut inputs = tvec!(ids.into_tvalue());
        for state in states {
            let state: Tensor =
                tract_ndarray::Array2::from_shape_vec((1, state.len()), state.clone())?.into();
            inputs.push(state.into_tvalue());
        }
        let plan = self.plan(len)?.clone();
        let outputs = in_tract("running the ONNX graph", || plan.run(inputs))?;
        outputs
            .iter()
            .map(|t| Ok(t.to_plain_array_view::<f32>()?.iter().copied().collect()))
            .collect()
    }

    /// Outputs for one sequence of ids (already padded where the model needs it).
    pub fn outputs(&mut self, ids: &[u16]) -> Result<Vec<f64>> {
        let outputs = self.run(ids, &[])?;
        let first = outputs.first().context("the ONNX model has no output")?;
        Ok(first.iter().map(|&v| v as f64).collect())
    }
}

/// The id a blob's tokenizer pads with, as `lstm-edge export` records it.
fn pad_id(input: &Input<'_>) -> Option<u16> {
    Tokenizer::of_input(input).ok()?.pad_id()
}

/// Refuses an ONNX file that is not the blob's model before tract runs it (another
/// model's graph can make tract panic, or fail on shapes): its `lstm_edge.*`
/// metadata (written by `lstm-edge export`) and its input table's shape must be the
/// blob's. `name` is the file's name in messages.
pub fn check_onnx_matches_blob(name: &str, onnx: &[u8], body: &Body<'_>) -> Result<()> {
    let rebuild = format!(
        "rebuild it from the model's checkpoint with `lstm-edge export`{WITHOUT_CHECKPOINT}"
    );
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &onnx[..])
        .map_err(|e| anyhow!("{name} is not an ONNX model ({e}): {rebuild}"))?;
    let dims = Dims::of(body)?;
    let meta: HashMap<&str, &str> = proto
        .metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    let mut differences = Vec::new();
    // Exports that predate the metadata still get their table checked below.
    if meta.keys().any(|key| key.starts_with("lstm_edge.")) {
        let model = ModelMetadata {
            cell: body.cell,
            hidden: body.hidden.into(),
            head: body.head,
            output: body.output,
            pad_id: pad_id(&body.input),
        };
        differences.extend(model.differences(&meta));
    }
    let table = proto
        .graph
        .iter()
        .flat_map(|g| &g.initializer)
        .find(|t| t.name == "embedding" || t.name == "one_hot");
    match table {
        Some(t) if t.dims == [dims.tokens as i64, dims.input as i64] => {}
        Some(t) => differences.push(format!(
            "its {} table is {:?}, the blob's {} tokens × {}",
            t.name, t.dims, dims.tokens, dims.input
        )),
        None => differences.push("it has no `embedding` or `one_hot` table".into()),
    }
    ensure!(
        differences.is_empty(),
        "{name} is not the blob's model ({}): {rebuild}",
        differences.join("; ")
    );
    Ok(())
}

/// Sequences streamed through the step ONNX: each step is one tract run.
pub const STEP_SEQUENCES: usize = 8;

/// Max |step ONNX - f32 blob| over the first [`STEP_SEQUENCES`] of `sequences`, the
/// step model fed one token at a time with its state fed back.
pub fn step_gap(step_onnx: Vec<u8>, f32_blob: &[u8], sequences: &[Vec<u16>]) -> Result<f64> {
    let f32_model = HostModel::new(f32_blob).context(F32_BLOB_FILE)?;
    let body = f32_model.model().body();
    check_onnx_matches_blob(STEP_ONNX_FILE, &step_onnx, body)?;
    ensure!(
        body.head == Head::Last,
        "{STEP_ONNX_FILE} streams last-state models, but the blob's head is {:?}: remove it \
         (`lstm-edge export` writes none for this head)",
        body.head
    );
    let hidden = usize::from(body.hidden);
    let states = match body.cell {
        Cell::Lstm => 2,
        Cell::Gru => 1,
    };
    let mut tract = TractModel::with_states(step_onnx, vec![hidden; states]);
    let mut gap = 0.0f64;
    for ids in sequences
        .iter()
        .filter(|ids| !ids.is_empty())
        .take(STEP_SEQUENCES)
    {
        let mut state = vec![vec![0.0f32; hidden]; states];
        let mut last = Vec::new();
        for &id in ids {
            let mut outputs = tract.run(&[id], &state)?.into_iter();
            last = outputs.next().context("the step ONNX has no output")?;
            state = outputs.collect();
            ensure!(
                state.len() == states && state.iter().all(|s| s.len() == hidden),
                "{STEP_ONNX_FILE} does not return the {states} state(s) of {hidden} values it takes"
            );
        }
        let last: Vec<f64> = last.iter().map(|&v| f64::from(v)).collect();
        let f = f32_model.outputs(ids)?;
        ensure!(
            last.len() == f.len(),
            "{STEP_ONNX_FILE} gives {} outputs, the f32 blob {}",
            last.len(),
            f.len()
        );
        gap = gap.max(max_abs(&last, &f));
    }
    Ok(gap)
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
    /// Max |step ONNX - runtime f32|, when the model has a step ONNX.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs_step_vs_f32: Option<f64>,
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
        if let Some(gap) = self
            .max_abs_step_vs_f32
            .filter(|&g| g > TRACT_F32_TOLERANCE)
        {
            bail!(
                "{STEP_ONNX_FILE}, fed one token at a time, and the f32 blob differ by up to \
                 {gap:.3e} (over {TRACT_F32_TOLERANCE:e}): rebuild it from the model's checkpoint \
                 with `lstm-edge export`{WITHOUT_CHECKPOINT}"
            );
        }
        Ok(())
    }
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `lstm-edge verify` of the model directory `dir` on `count` sequences of `data`
/// (the card's held-out data when `data` names none): the report, whose
/// [`VerifyReport::check`] then says whether the gaps are within bounds.
pub fn verify_model_dir(dir: &Path, data: &EvalData, count: usize) -> Result<VerifyReport> {
    ensure!(count > 0, "--sequences must be at least 1");
    // Reads the card first, so a directory that is not a model says so.
    let card = TrainedCard::read(dir)?;
    let read = |name: &str| read_model_file(dir, name);
    let (f32_blob, int_blob) = (read(F32_BLOB_FILE)?, read(INT_BLOB_FILE)?);
    // As in `eval`: agreement between blobs of another model would prove nothing.
    check_blobs_match_card(dir, &card, &f32_blob, &int_blob)?;
    let onnx = read(ONNX_FILE)?;
    let step = (card.files.step_onnx.is_some() || dir.join(STEP_ONNX_FILE).is_file())
        .then(|| read(STEP_ONNX_FILE))
        .transpose()?;
    // The card's size and CRC catch a damaged file and another run of this model, before
    // tract reads it; another model's file is named by its difference instead. Cards of
    // earlier builds record no ONNX CRC (and an earlier `export` left the size stale):
    // their ONNX files get the metadata and tract checks alone.
    let f32_model = HostModel::new(&f32_blob).context(F32_BLOB_FILE)?;
    let body = f32_model.model().body();
    let on_card = |file: ModelFile, bytes: &[u8]| -> Result<()> {
        if card.files.recorded(file).1.is_none() {
            return Ok(());
        }
        let recorded = card.files.check(
            file,
            &dir.join(file.file_name()),
            bytes,
            &format!(
                "export it again from the model's checkpoint with `lstm-edge export`\
                 {WITHOUT_CHECKPOINT}"
            ),
        );
        let Err(recorded) = recorded else {
            return Ok(());
        };
        let parses = tract_onnx::onnx()
            .proto_model_for_read(&mut &bytes[..])
            .is_ok();
        Err(
            match check_onnx_matches_blob(file.file_name(), bytes, body) {
                Err(other_model) if parses => other_model,
                _ => recorded,
            },
        )
    };
    on_card(ModelFile::Onnx, &onnx)?;
    if let Some(step) = &step {
        on_card(ModelFile::StepOnnx, step)?;
    }
    let sequences = verify_sequences(dir, data, count)?;
    let context = || format!("verifying {}", dir.display());
    let mut report = verify(onnx, &f32_blob, &int_blob, &sequences).with_context(context)?;
    if let Some(step) = step {
        report.max_abs_step_vs_f32 =
            Some(step_gap(step, &f32_blob, &sequences).with_context(context)?);
    }
    Ok(report)
}

/// Runs `sequences` (unpadded ids) through the three implementations.
pub fn verify(
    onnx: Vec<u8>,
    f32_blob: &[u8],
    int_blob: &[u8],
    sequences: &[Vec<u16>],
) -> Result<VerifyReport> {
    let f32_model = HostModel::new(f32_blob).context(F32_BLOB_FILE)?;
    let int_model = HostModel::new(int_blob).context(INT_BLOB_FILE)?;
    if f32_model.is_integer() || !int_model.is_integer() {
        bail!("verify needs an f32 blob and an integer blob, in that order");
    }
    let body = f32_model.model().body();
    check_same_model(F32_BLOB_FILE, body, INT_BLOB_FILE, int_model.model().body())?;
    check_onnx_matches_blob(ONNX_FILE, &onnx, body)?;
    let (head, output) = (body.head, body.output);
    let pad = pad_id(&body.input);
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
                .chain(std::iter::repeat(pad.unwrap_or_default()))
                .take(maxlen as usize)
                .collect(),
            // The ONNX takes no empty sequence; a PAD alone reads as none, since its
            // mask stops the row there (the runtime scores an empty text the same way).
            None => match pad {
                Some(pad) if ids.is_empty() => vec![pad],
                _ => ids.clone(),
            },
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
        )?;
        if let Some(gap) = self.max_abs_step_vs_f32 {
            writeln!(f, "max |step ONNX - runtime f32| {gap:.3e}")?;
        }
        Ok(())
    }
}
