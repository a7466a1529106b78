//! `lstm-edge import`: ONNX LSTM/GRU text models exported by PyTorch (`torch.onnx`)
//! or Keras (tf2onnx) into the runtime's f32 and integer blobs.
//!
//! The supported shape: token ids -> Gather (an embedding) or OneHot, or a float
//! one-hot graph input -> one forward LSTM or GRU -> flatten, last step or mean
//! over time -> Gemm (or MatMul + Add) -> Sigmoid or Softmax.
//!
//! The graph is read as tract-onnx's protobuf and walked from its input along the
//! data path. Every node on that path is interpreted against a symbolic layout
//! (batch, time, feature axes), so a transpose or reshape that would scramble the
//! features is refused rather than misread. Side computations that exporters add
//! (shape arithmetic, zero initial states, TensorFlow's negative-index wrap before
//! an embedding) are checked, and the converted model is run against tract on the
//! original graph before anything is returned.

use std::path::Path;

use crate::files::{self, FolderLock};
use crate::model::{ModelConfig, Params, Tensor as ParamTensor};
use crate::quantize::{quantize, Calibration};
use anyhow::{anyhow, bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Cell, Head, Output, MAX_F32_WEIGHT};
use lstm_edge_runtime::host::HostModel;
use serde::Serialize;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

mod convert;
mod graph;
mod ops;
mod pad_mask;
mod shape;
mod walk;

pub use convert::convert;
pub use walk::read_onnx;

/// What the importer accepts, for error messages.
const SUPPORTED: &str = "the importer takes token ids -> Gather or OneHot (or a one-hot float input) \
-> one forward LSTM or GRU -> flatten, last step or mean -> Gemm or MatMul+Add -> Sigmoid or Softmax";

/// Largest |converted - tract| the import accepts on its probe sequences.
pub const SELF_CHECK_TOLERANCE: f64 = 1e-4;

/// Largest |int - tract| on the probe sequences before the import warns that the integer
/// blob departs from the model (the shipped models stay under 0.1: `g` gives 0.063).
pub const INT_WARNING_LEVEL: f64 = 0.2;

/// How the foreign graph turns token ids into the recurrent layer's input.
#[derive(Debug, Clone, PartialEq)]
pub enum ForeignInput {
    /// Rows of a `[ids, width]` table picked by Gather.
    Embedding(ParamTensor),
    /// A one-hot vector of `depth` ids: a OneHot op on ids (`float_input` false)
    /// or a float graph input that already holds one-hot rows (`float_input` true).
    OneHot { depth: usize, float_input: bool },
}

impl ForeignInput {
    /// Number of token ids the graph knows.
    pub fn ids(&self) -> usize {
        match self {
            ForeignInput::Embedding(table) => table.dims[0],
            ForeignInput::OneHot { depth, .. } => *depth,
        }
    }

    /// Width of the recurrent layer's input.
    pub fn width(&self) -> usize {
        match self {
            ForeignInput::Embedding(table) => table.dims[1],
            ForeignInput::OneHot { depth, .. } => *depth,
        }
    }
}

/// A foreign model as its graph holds it, in ONNX gate order and the foreign ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignModel {
    pub cell: Cell,
    pub hidden: usize,
    pub input: ForeignInput,
    /// The graph input's fixed sequence length, when it has one.
    pub seq_len: Option<usize>,
    /// The graph input is `[time, batch]` (PyTorch's default `batch_first=False`), not
    /// `[batch, time]`.
    pub time_first: bool,
    pub head: Head,
    pub output: Output,
    /// `[G*H, width]`, `[G*H, H]`, `[G*H]`, `[G*H]` (ONNX `W`, `R`, `B` halves).
    pub w: ParamTensor,
    pub r: ParamTensor,
    pub wb: ParamTensor,
    pub rb: ParamTensor,
    /// `[outputs, features]` and `[outputs]`, with Gemm's alpha/beta folded in.
    pub head_w: ParamTensor,
    pub head_b: ParamTensor,
    /// The id at whose first occurrence the graph stops reading a row (the PAD of
    /// lstm-edge's own last-state and mean exports); the self-check's probes leave
    /// it out, as the runtime reads a text to its end.
    pub rows_end_at: Option<u16>,
}

impl ForeignModel {
    /// The graph input's shape for one row of `len` steps: ids `[1, len]` or
    /// `[len, 1]`, then the one-hot width (the third entry, for a float one-hot input).
    pub fn input_shape(&self, len: usize) -> [usize; 3] {
        let [first, second] = if self.time_first { [len, 1] } else { [1, len] };
        [first, second, self.input.width()]
    }
}

/// The token table the user supplies: the foreign model has no tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenTable {
    /// Id `i` is `table[i]`, then UNK, then PAD when present (the runtime's order).
    Chars {
        table: Vec<u8>,
        lowercase: bool,
        unk: bool,
        pad: bool,
    },
    /// One line per foreign id, in id order; `<pad>` and `<unk>` mark those ids.
    Words { lines: Vec<String> },
}

/// What `import` read and checked, beside the blobs it writes.
pub const IMPORT_FILE: &str = "import.json";

/// Marks the padding id's line in a vocab file.
pub const PAD_MARK: &str = "<pad>";
/// Marks the unknown-word id's line in a vocab file.
pub const UNK_MARK: &str = "<unk>";

impl TokenTable {
    /// Reads a vocab file: one token per line, line `k` (from 0) being id `k`.
    pub fn vocab_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read vocab file {}: give a UTF-8 file with one token per line, line k being the model's id k",
                path.display()
            )
        })?;
        let lines = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .collect();
        Ok(TokenTable::Words { lines })
    }
}

/// A converted model: our config and parameters, and the id each foreign id becomes.
#[derive(Debug, Clone)]
pub struct Converted {
    pub config: ModelConfig,
    pub params: Params,
    /// `runtime_id[foreign_id]`.
    pub runtime_id: Vec<u16>,
}

/// The result of an import: blobs plus what was checked.
#[derive(Debug, Clone)]
pub struct Imported {
    pub foreign: ForeignModel,
    pub converted: Converted,
    pub f32_blob: Vec<u8>,
    pub int_blob: Vec<u8>,
    pub calibration: Calibration,
    pub self_check: SelfCheck,
}

/// The converted f32 blob against tract on the original graph.
#[derive(Debug, Clone, Serialize)]
pub struct SelfCheck {
    pub sequences: usize,
    pub length: usize,
    pub max_abs_tract_vs_f32: f64,
    pub max_abs_tract_vs_int: f64,
}

/// Reads the graph, converts it with `tokens`, checks it against tract and
/// quantizes it (calibrated on random sequences of the model's ids).
pub fn import(onnx: &[u8], tokens: &TokenTable) -> Result<Imported> {
    let foreign = read_onnx(onnx)?;
    check_finite(&foreign)?;
    let converted = convert(&foreign, tokens)?;
    let probes = probe_sequences(&foreign, 8, 0x5eed);
    let calibration: Vec<Vec<u16>> = probe_sequences(&foreign, 64, 0xca1b)
        .iter()
        .map(|s| converted.map_ids(s))
        .collect::<Result<_>>()?;
    let quantized =
        quantize(&converted.config, &converted.params, &calibration).with_context(|| {
            let mut sizes = vec![
                format!("W {}", largest(&foreign.w)),
                format!("R {}", largest(&foreign.r)),
            ];
            if let ForeignInput::Embedding(table) = &foreign.input {
                sizes.push(format!("embedding {}", largest(table)));
            }
            format!(
                "the integer blob's fixed-point scales cannot hold these weights (largest \
                 magnitudes: {}): the product of the input and its weights must stay within \
                 int32; export the model from a training run with ordinary weight ranges",
                sizes.join(", ")
            )
        })?;
    let self_check = self_check(
        onnx,
        &foreign,
        &converted,
        &quantized.f32_blob,
        &quantized.int_blob,
        &probes,
    )?;
    ensure!(
        self_check.max_abs_tract_vs_f32 <= SELF_CHECK_TOLERANCE,
        "the converted model does not reproduce the ONNX graph: max |tract - converted| = {:.3e} on {} probe sequences \
         (tolerance {SELF_CHECK_TOLERANCE:e}); the graph holds something the importer misreads",
        self_check.max_abs_tract_vs_f32,
        self_check.sequences
    );
    Ok(Imported {
        foreign,
        converted,
        f32_blob: quantized.f32_blob,
        int_blob: quantized.int_blob,
        calibration: quantized.calibration,
        self_check,
    })
}

impl Converted {
    /// Foreign ids into runtime ids.
    pub fn map_ids(&self, foreign_ids: &[u16]) -> Result<Vec<u16>> {
        foreign_ids
            .iter()
            .map(|&id| {
                self.runtime_id.get(id as usize).copied().with_context(|| {
                    format!(
                        "token id {id} is out of range: the model has {} ids",
                        self.runtime_id.len()
                    )
                })
            })
            .collect()
    }
}

/// Seeded random sequences of foreign ids, as long as the graph input wants
/// (16 steps when its length is free).
fn probe_sequences(foreign: &ForeignModel, count: usize, seed: u64) -> Vec<Vec<u16>> {
    let len = foreign.seq_len.unwrap_or(16);
    let ids = foreign.input.ids() as u64;
    let skipped = foreign.rows_end_at.map(u64::from).filter(|&id| id < ids);
    let choices = (ids - u64::from(skipped.is_some())).max(1);
    let mut rng = lstm_edge_runtime::Rng::new(seed);
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| {
                    let id = rng.next_u64() % choices;
                    match skipped {
                        Some(skip) if id >= skip => (id + 1) as u16,
                        _ => id as u16,
                    }
                })
                .collect()
        })
        .collect()
}

/// Runs `probes` (foreign ids) through tract on the original graph and through
/// the converted blobs.
fn self_check(
    onnx: &[u8],
    foreign: &ForeignModel,
    converted: &Converted,
    f32_blob: &[u8],
    int_blob: &[u8],
    probes: &[Vec<u16>],
) -> Result<SelfCheck> {
    let mut tract = ForeignRunner::new(onnx, foreign)?;
    let f32_model = HostModel::new(f32_blob)?;
    let int_model = HostModel::new(int_blob)?;
    let (mut f32_diff, mut int_diff) = (0f64, 0f64);
    for ids in probes {
        let want = tract.outputs(ids)?;
        let runtime_ids = converted.map_ids(ids)?;
        let f = f32_model.outputs(&runtime_ids)?;
        let i = int_model.outputs(&runtime_ids)?;
        ensure!(
            want.len() == f.len(),
            "tract gives {} outputs, the converted model {}",
            want.len(),
            f.len()
        );
        for ((w, f), i) in want.iter().zip(&f).zip(&i) {
            f32_diff = f32_diff.max((w - f).abs());
            int_diff = int_diff.max((w - i).abs());
        }
    }
    Ok(SelfCheck {
        sequences: probes.len(),
        length: probes.first().map_or(0, Vec::len),
        max_abs_tract_vs_f32: f32_diff,
        max_abs_tract_vs_int: int_diff,
    })
}

/// The largest magnitude in `tensor`.
fn largest(tensor: &ParamTensor) -> f32 {
    tensor.data.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// Refuses NaN, infinite or huge weights, which would quantize to nonsense (and slip
/// through the self-check, as NaN never compares larger); the blob format refuses
/// them too, past [`MAX_F32_WEIGHT`].
fn check_finite(foreign: &ForeignModel) -> Result<()> {
    let mut tensors = vec![
        ("W", &foreign.w),
        ("R", &foreign.r),
        ("input bias", &foreign.wb),
        ("recurrent bias", &foreign.rb),
        ("dense weight", &foreign.head_w),
        ("dense bias", &foreign.head_b),
    ];
    if let ForeignInput::Embedding(table) = &foreign.input {
        tensors.push(("embedding table", table));
    }
    for (name, tensor) in tensors {
        if let Some(k) = tensor
            .data
            .iter()
            .position(|v| v.is_nan() || v.abs() > MAX_F32_WEIGHT)
        {
            bail!(
                "the model's {name} holds {} at index {k}, past the ±{MAX_F32_WEIGHT:e} that \
                 lstm-edge models take: export the model from finite, trained weights (a \
                 training run that diverged leaves NaN or huge values)",
                tensor.data[k]
            );
        }
    }
    Ok(())
}

/// Runs `work` that calls into tract, turning a panic there (tract indexes by
/// the graph's constants, e.g. a Gather index out of range, while it folds
/// them) into an error.
pub(crate) fn in_tract<T>(what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    // The panic becomes this error, so its default report on stderr would only confuse.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    std::panic::set_hook(report);
    outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        bail!(
            "tract failed while {what} ({message}): the graph holds a node tract cannot run (a \
             constant out of range for its op, or a node missing an input); check that the model \
             runs in its own framework or in ONNX Runtime"
        )
    })
}

type Plan = std::sync::Arc<TypedSimplePlan>;

/// Tract on a foreign graph, fed foreign ids (or their one-hot rows).
pub struct ForeignRunner {
    plan: Plan,
    len: usize,
    input: ForeignInput,
    /// The input's shape for one row ([`ForeignModel::input_shape`]).
    shape: [usize; 3],
    dt: DatumType,
}

impl ForeignRunner {
    /// Compiles the graph for one sequence of the model's length (16 steps when free).
    pub fn new(onnx: &[u8], foreign: &ForeignModel) -> Result<Self> {
        Self::with_len(onnx, foreign, foreign.seq_len.unwrap_or(16))
    }

    /// Compiles the graph for one sequence of `len` steps.
    pub fn with_len(onnx: &[u8], foreign: &ForeignModel, len: usize) -> Result<Self> {
        in_tract("compiling the graph", || Self::compile(onnx, foreign, len))
    }

    fn compile(onnx: &[u8], foreign: &ForeignModel, len: usize) -> Result<Self> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut &onnx[..])
            .map_err(|e| anyhow!("tract cannot read the ONNX model: {e:#}"))?;
        let declared = model.input_fact(0)?.datum_type.concretize();
        let shape = foreign.input_shape(len);
        let (dt, fact) = match foreign.input {
            ForeignInput::OneHot {
                float_input: true, ..
            } => (
                f32::datum_type(),
                InferenceFact::dt_shape(f32::datum_type(), shape),
            ),
            _ => {
                let dt = declared.unwrap_or(i64::datum_type());
                (dt, InferenceFact::dt_shape(dt, &shape[..2]))
            }
        };
        let plan = model
            .with_input_fact(0, fact)?
            .into_optimized()
            .map_err(|e| anyhow!("tract cannot optimize the ONNX model: {e:#}"))?
            .into_runnable()?;
        Ok(ForeignRunner {
            plan,
            len,
            input: foreign.input.clone(),
            shape,
            dt,
        })
    }

    /// The graph's outputs for one sequence of foreign ids.
    pub fn outputs(&mut self, ids: &[u16]) -> Result<Vec<f64>> {
        ensure!(
            ids.len() == self.len,
            "tract was compiled for {} steps, got {}",
            self.len,
            ids.len()
        );
        let [first, second, _] = self.shape;
        let input: Tensor = match self.input {
            ForeignInput::OneHot {
                depth,
                float_input: true,
            } => {
                let mut rows = vec![0f32; ids.len() * depth];
                for (t, &id) in ids.iter().enumerate() {
                    rows[t * depth + id as usize] = 1.0;
                }
                tract_ndarray::Array3::from_shape_vec((first, second, depth), rows)?.into()
            }
            _ => {
                let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
                let t: Tensor = tract_ndarray::Array2::from_shape_vec((first, second), ids)?.into();
                t.cast_to_dt(self.dt)?.into_owned()
            }
        };
        let out = in_tract("running the graph", || {
            self.plan.run(tvec!(input.into_tvalue()))
        })?;
        let out = out
            .first()
            .context("the ONNX model has no output")?
            .cast_to::<f32>()?;
        let values = out
            .to_plain_array_view::<f32>()?
            .iter()
            .map(|&v| v as f64)
            .collect();
        Ok(values)
    }
}

/// A short description of an import, for the command line and the report file.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub cell: String,
    pub hidden: usize,
    pub input: String,
    pub head: String,
    pub output: String,
    pub token_ids: usize,
    pub f32_blob_bytes: usize,
    pub int_blob_bytes: usize,
    pub scale_scheme: String,
    pub self_check: SelfCheck,
    /// The command that runs the blobs.
    pub runs_with: String,
    /// What the user should know before relying on the blobs.
    pub warnings: Vec<String>,
}

impl Imported {
    pub fn summary(&self) -> ImportSummary {
        let f = &self.foreign;
        ImportSummary {
            cell: f.cell.to_string(),
            hidden: f.hidden,
            input: match &f.input {
                ForeignInput::Embedding(e) => format!("embedding {}x{}", e.dims[0], e.dims[1]),
                ForeignInput::OneHot { depth, .. } => format!("one-hot {depth}"),
            },
            head: f.head.to_string(),
            output: f.output.to_string(),
            token_ids: f.input.ids(),
            f32_blob_bytes: self.f32_blob.len(),
            int_blob_bytes: self.int_blob.len(),
            scale_scheme: self.calibration.chosen.clone(),
            self_check: self.self_check.clone(),
            runs_with: match f.output {
                Output::Sigmoid => "lstm-edge score (a sentiment score)".into(),
                Output::Softmax { classes }
                    if usize::from(classes) < self.converted.config.vocab_rows() =>
                {
                    format!("lstm-edge score (a classifier of {classes} classes)")
                }
                Output::Softmax { .. } => "lstm-edge generate (a generator: its softmax has as \
                     many classes as token ids, the next token)"
                    .into(),
            },
            warnings: self.warnings(),
        }
    }

    /// What the blobs do differently from the ONNX model, or not well.
    fn warnings(&self) -> Vec<String> {
        let (f, check) = (&self.foreign, &self.self_check);
        let mut warnings = Vec::new();
        if check.max_abs_tract_vs_int > INT_WARNING_LEVEL {
            warnings.push(format!(
                "the integer blob departs from the ONNX model by up to {:.3} on the probe \
                 sequences (the f32 blob by {:.1e}): int8 weights hold this model's weight \
                 ranges poorly (largest |W| {:.3}, |R| {:.3}); compare model.blob with model-f32.blob \
                 on your own texts (`lstm-edge score --model FILE`) before relying on it",
                check.max_abs_tract_vs_int,
                check.max_abs_tract_vs_f32,
                largest(&f.w),
                largest(&f.r)
            ));
        }
        // lstm-edge's own exports stop at PAD, so padded texts agree too.
        if let (Some(len), Head::Last | Head::Mean, None) = (f.seq_len, f.head, f.rows_end_at) {
            warnings.push(format!(
                "the ONNX model takes exactly {len} ids per row, but the blobs' {} head reads a \
                 text whole, at any length and unpadded: they agree with the ONNX model on texts \
                 of {len} tokens, and read others as the model exported with a free length would \
                 (torch.onnx: `dynamic_axes` on the sequence axis)",
                f.head
            ));
        }
        warnings
    }

    /// Writes `model.blob` (integer), `model-f32.blob` and `import.json` (the
    /// returned summary) into the folder `out`, made if needed; refuses a folder
    /// that holds a trained model.
    pub fn write_folder(&self, out: &Path) -> Result<ImportSummary> {
        crate::files::create_folder(out)?;
        let summary = self.summary();
        let _lock = FolderLock::take(out)?;
        // Under the lock: no `train` can have written its card since.
        refuse_trained_folder(out)?;
        if out.join(IMPORT_FILE).is_file() {
            eprintln!(
                "note: {} holds an earlier import; this one replaces it",
                out.display()
            );
        }
        for (name, bytes) in [
            ("model.blob", &self.int_blob),
            ("model-f32.blob", &self.f32_blob),
            (IMPORT_FILE, &serde_json::to_vec_pretty(&summary)?),
        ] {
            files::write_atomic(&out.join(name), bytes)?;
        }
        Ok(summary)
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "cell                     {} ({} units)",
            self.cell, self.hidden
        )?;
        writeln!(
            f,
            "input                    {} ({} token ids)",
            self.input, self.token_ids
        )?;
        writeln!(f, "head                     {}", self.head)?;
        writeln!(f, "output                   {}", self.output)?;
        writeln!(f, "f32 blob                 {} bytes", self.f32_blob_bytes)?;
        writeln!(
            f,
            "int blob                 {} bytes ({} scales)",
            self.int_blob_bytes, self.scale_scheme
        )?;
        writeln!(
            f,
            "max |tract - f32|        {:.3e} ({} probe sequences of {} ids)",
            self.self_check.max_abs_tract_vs_f32, self.self_check.sequences, self.self_check.length
        )?;
        writeln!(
            f,
            "max |tract - int|        {:.3e}",
            self.self_check.max_abs_tract_vs_int
        )?;
        writeln!(f, "runs with                {}", self.runs_with)
    }
}

/// Reads the ONNX model at `model` for an import into the folder `out`, refusing
/// an empty file, an lstm-edge blob, and an `out` that holds a trained model.
pub fn read_onnx_to_import(model: &Path, out: &Path) -> Result<Vec<u8>> {
    refuse_trained_folder(out)?;
    let onnx = std::fs::read(model)
        .with_context(|| format!("cannot read ONNX model {}: check the path", model.display()))?;
    ensure!(
        !onnx.is_empty(),
        "{} is empty: give an ONNX model file",
        model.display()
    );
    ensure!(
        !onnx.starts_with(&lstm_edge_runtime::format::MAGIC),
        "{} is an lstm-edge model blob, not ONNX: it needs no import (`lstm-edge score` or \
         `generate` read it as it is)",
        model.display()
    );
    Ok(onnx)
}

/// An import would replace a trained model's blobs and leave its card and ONNX
/// describing a model that is gone.
fn refuse_trained_folder(out: &Path) -> Result<()> {
    let card = out.join(crate::pipeline::CARD_FILE);
    ensure!(
        !card.is_file(),
        "{} holds a trained model ({} is there): import would replace its blobs and leave its \
         card and ONNX describing a model that is gone; give another --out",
        out.display(),
        card.display()
    );
    Ok(())
}
