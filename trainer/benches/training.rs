//! Training samples/s for the W, C and G shapes.
//!
//! `cargo bench -p lstm-edge-trainer --bench training [-- FILTER]` prints LSTM
//! and GRU, Scan and unrolled recurrences, where FILTER picks workloads by name
//! (e.g. `G`); env `THREADS` (default 2), `STEPS` (timed steps, default 10),
//! `DEVICE` (`cpu` or `cuda`).
//!
//! `-- --serve [--gru]` answers requests `SHAPE STEPS` on stdin, one JSON line
//! `{"shape", "batch", "seconds": [...]}` each (Scan recurrence, LSTM unless
//! `--gru`), so `scripts/bench-training.sh` can alternate it with Keras.
//!
//! `-- --shapes [--gru]` prints the shapes as one JSON object, for Keras to build
//! the same models.
//!
//! `-- --dump DIR [FILTER]` writes each workload's training graph to
//! `DIR/{name}-{cell}-{recurrence}-train.onnx` instead, for ONNX Runtime's profiler.
//! With `THREADS` above 1 the graphs add repeated ids with the trainer's own
//! `lstm_edge.AddRowsInOrder` (`lstm_edge_trainer::ort_ops`), which other ONNX
//! Runtime sessions do not know; `THREADS=1` writes standard operators only.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use lstm_edge_runtime::format::Cell;
use lstm_edge_trainer::autodiff::Backend;
use lstm_edge_trainer::bench::{samples_per_second, train_graph, workloads, Prepared};
use lstm_edge_trainer::bptt::Recurrence;
use lstm_edge_trainer::ort_env::Device;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dump_dir = match args.iter().position(|a| a == "--dump") {
        Some(k) if k + 1 < args.len() => Some(args.drain(k..k + 2).nth(1).expect("two args")),
        Some(_) => anyhow::bail!("--dump needs a folder"),
        None => None,
    };
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| *f == name);
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let threads: usize = env("THREADS", "2").parse()?;
    let steps: usize = env("STEPS", "10").parse()?;
    let device: Device = env("DEVICE", "cpu").parse()?;
    let cell = if args.iter().any(|a| a == "--gru") {
        Cell::Gru
    } else {
        Cell::Lstm
    };
    if args.iter().any(|a| a == "--serve") {
        return serve(cell, device, threads);
    }
    if args.iter().any(|a| a == "--shapes") {
        let shapes: serde_json::Map<String, serde_json::Value> = workloads(cell)
            .iter()
            .map(|w| (w.name.to_string(), w.keras_shape()))
            .collect();
        println!("{}", serde_json::Value::Object(shapes));
        return Ok(());
    }
    if let Some(dir) = dump_dir {
        for cell in [Cell::Lstm, Cell::Gru] {
            for w in workloads(cell).iter().filter(|w| wanted(w.name)) {
                for how in [Recurrence::Scan, Recurrence::Unrolled] {
                    let name = format!("{}-{cell:?}-{how:?}-train.onnx", w.name);
                    let path = std::path::Path::new(&dir).join(name);
                    std::fs::write(&path, train_graph(w, how, Backend::of(device, threads)))?;
                    println!("wrote {}", path.display());
                }
            }
        }
        return Ok(());
    }
    println!("device {device}, {threads} threads, {steps} timed steps");
    for cell in [Cell::Lstm, Cell::Gru] {
        for w in workloads(cell) {
            if !wanted(w.name) {
                continue;
            }
            for how in [Recurrence::Scan, Recurrence::Unrolled] {
                // Unrolling 1500 steps makes a graph of ~50k nodes: skip C.
                if how == Recurrence::Unrolled && w.steps > 400 {
                    continue;
                }
                let rate = samples_per_second(&w, how, device, threads, steps)?;
                println!(
                    "{} ({}) {how:?}: best {:.0} samples/s, median {:.0}",
                    w.name,
                    w.describe(),
                    rate.best,
                    rate.median
                );
            }
        }
    }
    Ok(())
}

/// The request loop of `--serve`: sessions are built and warmed up on a
/// shape's first request, outside the timed steps.
fn serve(cell: Cell, device: Device, threads: usize) -> anyhow::Result<()> {
    let mut prepared: HashMap<&'static str, Prepared> = HashMap::new();
    let shapes = workloads(cell);
    // Ready means able to run: a device that cannot stops the bench before its rounds.
    lstm_edge_trainer::ort_env::check_device(device)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::json!({ "ready": true }))?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let request = match words[..] {
            [name, steps] => shapes
                .iter()
                .find(|w| w.name == name)
                .zip(steps.parse::<usize>().ok()),
            _ => None,
        };
        let Some((workload, steps)) = request else {
            let error = format!("bad request {line:?}: want 'G|W|C STEPS'");
            writeln!(out, "{}", serde_json::json!({ "error": error }))?;
            out.flush()?;
            continue;
        };
        let session = match prepared.entry(workload.name) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Prepared::new(workload, Recurrence::Scan, device, threads)?)
            }
        };
        let seconds = session.step_seconds(steps)?;
        let reply = serde_json::json!({
            "shape": workload.name,
            "batch": session.rows(),
            "seconds": seconds,
        });
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}
