//! Prints training samples/s for the W, C and G shapes (LSTM and GRU), Scan and
//! unrolled recurrences. `cargo bench -p lstm-edge-trainer --bench training [-- FILTER]`
//! where FILTER picks workloads by name (e.g. `G`); env `THREADS` (default 2),
//! `STEPS` (timed steps, default 10), `DEVICE` (`cpu` or `cuda`).

use lstm_edge_runtime::format::Cell;
use lstm_edge_trainer::bench::{samples_per_second, workloads};
use lstm_edge_trainer::bptt::Recurrence;
use lstm_edge_trainer::ort_env::Device;

fn main() -> anyhow::Result<()> {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let threads: usize = env("THREADS", "2").parse()?;
    let steps: usize = env("STEPS", "10").parse()?;
    let device: Device = env("DEVICE", "cpu").parse()?;
    println!("device {device}, {threads} threads, {steps} timed steps");
    for cell in [Cell::Lstm, Cell::Gru] {
        for w in workloads(cell) {
            if !filter.is_empty() && !filter.iter().any(|f| f == w.name) {
                continue;
            }
            for how in [Recurrence::Scan, Recurrence::Unrolled] {
                // Unrolling 1500 steps makes a graph of ~50k nodes: skip C.
                if how == Recurrence::Unrolled && w.spec.steps > 400 {
                    continue;
                }
                let rate = samples_per_second(&w, how, device, threads, steps)?;
                println!(
                    "{} {cell:?} T={} B={} H={} {how:?}: best {:.0} samples/s, median {:.0}",
                    w.name, w.spec.steps, w.batch, w.spec.hidden, rate.best, rate.median
                );
            }
        }
    }
    Ok(())
}
