//! `lstm-edge inspect`: what a blob holds.

use serde::Serialize;

use crate::blob::{BlobFile, NumericPath};
use anyhow::Result;
use lstm_edge_runtime::format::{Header, Input, Output, Params, RowConsts};
use lstm_edge_trainer::pipeline::FileStamp;

/// A blob's description.
#[derive(Debug, Clone, Serialize)]
pub struct BlobInfo {
    pub file: String,
    pub bytes: usize,
    pub format_version: u16,
    /// The header's CRC-32 of the body, which the runtime checks at load.
    pub crc32: String,
    /// The whole file's CRC-32, as card.json records it and `crc32 FILE` prints it.
    pub file_crc32: String,
    pub cell: String,
    pub hidden: usize,
    pub input: String,
    pub tokens: usize,
    pub input_width: usize,
    pub head: String,
    pub output: String,
    pub numeric: String,
    /// The runtime buffers a program needs for this model, at their smallest.
    pub buffers: String,
    pub weight_scales: Option<String>,
    pub tensors: Vec<(String, usize)>,
}

/// Describes a blob.
pub fn inspect_blob(file: &BlobFile) -> Result<BlobInfo> {
    let model = file.model()?;
    let body = model.body();
    let dims = model.dims();
    // Checked already, with the body, by `file.model()`.
    let header = Header::read(&file.bytes)?;
    let (tensors, scales) = tensor_sizes(body.params, dims.gates);
    let path = file.numeric_path()?;
    Ok(BlobInfo {
        file: file.path.display().to_string(),
        bytes: file.bytes.len(),
        format_version: header.version,
        crc32: format!("{:08x}", header.crc),
        file_crc32: FileStamp::of(&file.bytes).crc32,
        cell: body.cell.to_string(),
        hidden: dims.hidden,
        input: describe_input(body.input, dims.tokens),
        tokens: dims.tokens,
        input_width: dims.input,
        head: body.head.to_string(),
        output: body.output.to_string(),
        numeric: path.name().into(),
        buffers: buffers(path, dims.hidden, body.output),
        weight_scales: scales,
        tensors: tensors
            .into_iter()
            .map(|(n, b)| (n.to_string(), b))
            .collect(),
    })
}

/// The `State` (and for generators `Logits`) a program declares for the model.
fn buffers(path: NumericPath, hidden: usize, output: Output) -> String {
    let n = match path {
        NumericPath::Int => "Int",
        NumericPath::F32 => "F32",
    };
    match output {
        Output::Sigmoid => format!("State<{n}, {hidden}>"),
        Output::Softmax { classes } => format!("State<{n}, {hidden}>, Logits<{n}, {classes}>"),
    }
}

fn describe_input(input: Input<'_>, tokens: usize) -> String {
    match input {
        Input::Chars {
            symbols,
            lowercase,
            unk,
            pad,
        } => format!(
            "one-hot chars {:?}{}{}{}",
            symbols.iter().map(|&b| b as char).collect::<String>(),
            if lowercase { ", lowercased" } else { "" },
            if unk { " + UNK" } else { "" },
            if pad { " + PAD" } else { "" }
        ),
        Input::Words { embed_dim, .. } => format!(
            "words: {} vocabulary entries + PAD + UNK, embedding width {embed_dim}",
            tokens - 2
        ),
    }
}

/// Each tensor's size in bytes, and for integer weights whether they are scaled
/// per row or per gate.
fn tensor_sizes(params: Params<'_>, gates: usize) -> (Vec<(&'static str, usize)>, Option<String>) {
    match params {
        Params::F32(p) => (
            vec![
                ("embedding", p.embedding.len()),
                ("w", p.w.len()),
                ("r", p.r.len()),
                ("wb", p.wb.len()),
                ("rb", p.rb.len()),
                ("head_w", p.head_w.len()),
                ("head_b", p.head_b.len()),
            ],
            None,
        ),
        Params::Int(p) => {
            // Per-gate scaling leaves one R multiplier per gate across all units.
            let consts: Vec<RowConsts> = p
                .units
                .as_chunks::<{ RowConsts::BYTES }>()
                .0
                .iter()
                .map(RowConsts::from_bytes)
                .collect();
            let per_row = consts
                .chunks(gates.max(1))
                .any(|unit| unit.iter().zip(&consts).any(|(a, b)| a.r_mult != b.r_mult));
            (
                vec![
                    ("embedding", p.embedding.len()),
                    ("embedding_shifts", p.embedding_shifts.len()),
                    ("w", p.w.len()),
                    ("r", p.r.len()),
                    ("units", p.units.len()),
                    ("head_w", p.head_w.len()),
                    ("head_scale", p.head_scale.len()),
                    ("head_b", p.head_b.len()),
                ],
                Some(if per_row { "per row" } else { "per gate" }.into()),
            )
        }
    }
}

impl std::fmt::Display for BlobInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "file        {}", self.file)?;
        writeln!(f, "bytes       {}", self.bytes)?;
        writeln!(
            f,
            "format      v{}, body CRC-32 {}, whole-file CRC-32 {}",
            self.format_version, self.crc32, self.file_crc32
        )?;
        writeln!(f, "cell        {} (hidden {})", self.cell, self.hidden)?;
        writeln!(f, "input       {}", self.input)?;
        writeln!(f, "head        {}", self.head)?;
        writeln!(f, "output      {}", self.output)?;
        write!(f, "numeric     {}", self.numeric)?;
        if let Some(s) = &self.weight_scales {
            write!(f, ", weight scales {s}")?;
        }
        writeln!(f)?;
        writeln!(f, "buffers     {}", self.buffers)?;
        writeln!(f, "tensors (bytes):")?;
        for (name, bytes) in &self.tensors {
            writeln!(f, "  {name:<16} {bytes}")?;
        }
        Ok(())
    }
}
