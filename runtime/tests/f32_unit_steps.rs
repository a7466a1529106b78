//! The f32 path forms a host's step for all rows at once (`Numeric::Scratch`);
//! bare metal steps unit by unit through `Numeric::unit_pres`. Both must give
//! the same hidden state, bit for bit, so an FPU core computes what the host
//! does. Checked for LSTM and GRU, chars and words, at hidden sizes whose rows
//! fill whole groups of four (128, 40) or leave some over (19, 3), and on
//! x86-64 at each kernel level; and a softmax head's rows taken four at a
//! time equal them taken one at a time.

mod common;

use common::{random_ids, random_model};
use lstm_edge_runtime::format::{Cell, Head, Output};
#[cfg(target_arch = "x86_64")]
use lstm_edge_runtime::numeric::x86::{limit_kernels, KernelLevel};
use lstm_edge_runtime::numeric::{Numeric, Token, F32};
use lstm_edge_runtime::{Model, Network, State};

const H: usize = 128;

/// One step unit by unit, as bare metal runs it: the new `h`, and `c` updated.
fn unit_step(model: &Model<'_>, x: Token<'_>, h: &[f32], c: &mut [f32]) -> Vec<f32> {
    let dims = model.dims();
    let w = F32::weights(&model.body().params).unwrap();
    let mut scratch = <F32 as Numeric>::Scratch::<H>::default();
    let step = F32::begin_step::<H>(&w, &dims, x, h, &mut scratch);
    (0..dims.hidden)
        .map(|j| {
            if dims.gates == 4 {
                let ([xi, xo, xf, xc], [hi, ho, hf, hc]) =
                    F32::unit_pres::<4, H>(&step, &scratch, j, h);
                let i = F32::sigmoid(F32::add(xi, hi));
                let o = F32::sigmoid(F32::add(xo, ho));
                let f = F32::sigmoid(F32::add(xf, hf));
                let g = F32::tanh(F32::add(xc, hc));
                c[j] = F32::lstm_cell(f, c[j], i, g);
                F32::lstm_hidden(o, c[j])
            } else {
                let ([xz, xr, xn], [hz, hr, hn]) = F32::unit_pres::<3, H>(&step, &scratch, j, h);
                let z = F32::sigmoid(F32::add(xz, hz));
                let r = F32::sigmoid(F32::add(xr, hr));
                let n = F32::tanh(F32::add(xn, F32::gate_mul(r, hn)));
                F32::gru_hidden(z, n, h[j])
            }
        })
        .collect()
}

/// The hidden state after each of `ids`, stepping the network (the host's way).
fn host_states(model: &Model<'_>, ids: &[u16]) -> Vec<Vec<u32>> {
    let net = Network::<F32>::new(model).unwrap();
    let hidden = model.dims().hidden;
    let mut state = State::<F32, H>::new();
    ids.iter()
        .map(|&id| {
            net.feed(&mut state, id).unwrap();
            state.hidden(hidden).iter().map(|v| v.to_bits()).collect()
        })
        .collect()
}

/// The hidden state after each of `ids`, unit by unit (bare metal's way).
fn unit_states(model: &Model<'_>, ids: &[u16], words: bool) -> Vec<Vec<u32>> {
    let w = F32::weights(&model.body().params).unwrap();
    let hidden = model.dims().hidden;
    let (mut h, mut c) = (vec![0f32; hidden], vec![0f32; hidden]);
    ids.iter()
        .map(|&id| {
            let x = if words {
                F32::embedding_row(&w, &model.dims(), id as usize)
            } else {
                Token::OneHot(id as usize)
            };
            h = unit_step(model, x, &h, &mut c);
            h.iter().map(|v| v.to_bits()).collect()
        })
        .collect()
}

/// Holds the runtime to its portable code (where it has other kernels).
fn hold_to_portable() {
    #[cfg(target_arch = "x86_64")]
    limit_kernels(KernelLevel::Portable);
}

/// The kernel levels to run at, each set in turn as the iterator reaches it:
/// on x86-64 every level, elsewhere the one there is.
fn each_level() -> impl Iterator<Item = &'static str> {
    #[cfg(target_arch = "x86_64")]
    return KernelLevel::ALL.into_iter().map(|level| {
        limit_kernels(level);
        level.name()
    });
    #[cfg(not(target_arch = "x86_64"))]
    ["portable"].into_iter()
}

/// On x86-64 the host also runs at each lower kernel level (the f32 path's
/// AVX2 row sums, then the portable code), against unit steps taken with the
/// portable code. One test only: the kernel limit is global to the process.
#[test]
fn the_hosts_whole_step_equals_unit_by_unit_steps_bit_for_bit() {
    for cell in [Cell::Lstm, Cell::Gru] {
        for words in [false, true] {
            for hidden in [128, 40, 19, 3] {
                let spec = random_model(
                    cell,
                    hidden,
                    words,
                    Head::Last,
                    Output::Sigmoid,
                    0.6,
                    hidden as u64,
                );
                let blob = spec.f32_blob().unwrap();
                let model = Model::from_bytes(&blob).unwrap();
                let ids = random_ids(&spec, 60, 7);
                hold_to_portable();
                let units = unit_states(&model, &ids, words);
                // The states moved: a test of zeros would prove nothing.
                let last = units.last().unwrap();
                assert!(
                    last.iter().any(|&v| f32::from_bits(v).abs() > 0.01),
                    "{cell:?} {hidden}"
                );
                for level in each_level() {
                    let host = host_states(&model, &ids);
                    for (t, (host, units)) in host.iter().zip(&units).enumerate() {
                        assert_eq!(
                            host, units,
                            "{cell:?} words={words} hidden {hidden}, {level}, step {t}"
                        );
                    }
                }
            }
        }
    }
    // The dense rows of a softmax head, four at a time, equal them one at a time.
    for (hidden, classes) in [(128, 33), (19, 7), (40, 3)] {
        let spec = random_model(
            Cell::Lstm,
            hidden,
            false,
            Head::Last,
            Output::Softmax { classes },
            0.6,
            5,
        );
        let blob = spec.f32_blob().unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let w = F32::weights(&model.body().params).unwrap();
        let h: Vec<f32> = (0..hidden)
            .map(|j| ((j * 37 % 11) as f32 - 5.0) * 0.13)
            .collect();
        hold_to_portable();
        let one_by_one: Vec<u32> = (0..classes as usize)
            .map(|row| F32::head_dot(&w, &model.dims(), row, 0, &h).to_bits())
            .collect();
        assert!(one_by_one.iter().any(|&v| f32::from_bits(v).abs() > 0.01));
        for level in each_level() {
            let mut rows = vec![0f32; classes as usize];
            F32::head_rows(&w, &model.dims(), &h, &mut rows);
            let rows: Vec<u32> = rows.iter().map(|v| v.to_bits()).collect();
            assert_eq!(
                rows, one_by_one,
                "hidden {hidden}, {classes} classes, {level}"
            );
        }
    }
}
