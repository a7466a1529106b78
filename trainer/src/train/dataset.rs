//! Encoded samples and what an epoch draws from them: the shuffled order of
//! rows, the batch buffers, and the dropout masks, each seeded by run, epoch
//! and batch.

use std::ops::Range;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::Output;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::corpus::CharWindows;
use crate::data::encode::Encoded;
use crate::data::npy;
use crate::model::ModelConfig;
use crate::step::{Batch, BatchTargets};

/// Targets of a whole dataset.
#[derive(Clone, Debug, PartialEq)]
pub enum DatasetTargets {
    /// Sigmoid output: one label in `[0, 1]` per row.
    Binary(Vec<f32>),
    /// Softmax output: one class id per row.
    Class(Vec<u16>),
}

/// Encoded samples: a row-major `[rows, steps]` id matrix and its targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub(super) ids: Vec<u16>,
    pub(super) steps: usize,
    pub(super) targets: DatasetTargets,
}

impl Dataset {
    pub fn new(ids: Vec<u16>, steps: usize, targets: DatasetTargets) -> Result<Self> {
        let rows = match &targets {
            DatasetTargets::Binary(y) => y.len(),
            DatasetTargets::Class(y) => y.len(),
        };
        ensure!(steps > 0, "dataset: sequences must have at least one step");
        ensure!(
            ids.len() == rows * steps,
            "dataset: {} ids do not make {rows} rows of {steps} steps",
            ids.len()
        );
        Ok(Dataset {
            ids,
            steps,
            targets,
        })
    }

    /// Padded reviews with 0/1 labels (sentiment).
    pub fn from_encoded(encoded: &Encoded) -> Result<Self> {
        let labels = encoded.labels.iter().map(|&l| l as f32).collect();
        Dataset::new(
            encoded.ids.clone(),
            encoded.maxlen,
            DatasetTargets::Binary(labels),
        )
    }

    /// The char windows `range` (e.g. [`CharWindows::train`]) with their next-char targets.
    pub fn from_windows(windows: &CharWindows, range: Range<usize>) -> Result<Self> {
        let mut ids = Vec::with_capacity(range.len() * windows.window());
        let mut targets = Vec::with_capacity(range.len());
        for index in range {
            let (window, next) = windows
                .get(index)
                .with_context(|| format!("char window {index} is out of range"))?;
            ids.extend_from_slice(window);
            targets.push(next);
        }
        Dataset::new(ids, windows.window(), DatasetTargets::Class(targets))
    }

    pub fn len(&self) -> usize {
        self.ids.len() / self.steps
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    /// `{name}_ids.npy` (`[rows, steps]` u16) and `{name}_targets.npy` (f32 labels or
    /// u16 classes): file names and bytes.
    pub fn npy_files(&self, name: &str) -> Result<[(String, Vec<u8>); 2]> {
        let ids = npy::encode(&[self.len(), self.steps], &self.ids)?;
        let targets = match &self.targets {
            DatasetTargets::Binary(y) => npy::encode(&[y.len()], y)?,
            DatasetTargets::Class(y) => npy::encode(&[y.len()], y)?,
        };
        let [ids_name, targets_name] = Self::npy_names(name);
        Ok([(ids_name, ids), (targets_name, targets)])
    }

    /// The file names [`Dataset::npy_files`] gives the set `name`.
    pub fn npy_names(name: &str) -> [String; 2] {
        [format!("{name}_ids.npy"), format!("{name}_targets.npy")]
    }

    /// CRC-32 of the rows and targets, in order: a checkpoint records it so that a
    /// resumed run is refused other data.
    pub fn fingerprint(&self) -> u32 {
        let mut digest = crate::checkpoint::CRC.digest();
        digest.update(&(self.steps as u64).to_le_bytes());
        // Through a buffer: one `update` per 4 KiB, not per value.
        let mut buffer = Vec::with_capacity(4096);
        let mut feed = |bytes: &[u8]| {
            buffer.extend_from_slice(bytes);
            if buffer.len() >= 4096 {
                digest.update(&buffer);
                buffer.clear();
            }
        };
        self.ids.iter().for_each(|id| feed(&id.to_le_bytes()));
        match &self.targets {
            DatasetTargets::Binary(y) => y.iter().for_each(|v| feed(&v.to_le_bytes())),
            DatasetTargets::Class(y) => y.iter().for_each(|v| feed(&v.to_le_bytes())),
        }
        digest.update(&buffer);
        digest.finalize()
    }

    /// The largest id, for range checks against the vocabulary.
    fn max_id(&self) -> Option<u16> {
        self.ids.iter().copied().max()
    }
}

/// Reusable host buffers for one batch.
#[derive(Default)]
pub(super) struct BatchBuffers {
    ids: Vec<i64>,
    binary: Vec<f32>,
    class: Vec<i64>,
    pub(super) mask: Vec<f32>,
}

impl BatchBuffers {
    pub(super) fn fill(&mut self, data: &Dataset, rows: &[usize]) {
        let t = data.steps;
        self.ids.clear();
        self.binary.clear();
        self.class.clear();
        for &row in rows {
            self.ids
                .extend(data.ids[row * t..(row + 1) * t].iter().map(|&id| id as i64));
            match &data.targets {
                DatasetTargets::Binary(y) => self.binary.push(y[row]),
                DatasetTargets::Class(y) => self.class.push(y[row] as i64),
            }
        }
    }

    pub(super) fn batch(&self, data: &Dataset, with_mask: bool) -> Batch<'_> {
        Batch {
            ids: &self.ids,
            targets: match data.targets {
                DatasetTargets::Binary(_) => BatchTargets::Binary(&self.binary),
                DatasetTargets::Class(_) => BatchTargets::Class(&self.class),
            },
            mask: with_mask.then_some(&self.mask[..]),
        }
    }
}

/// Mixes run seed, epoch and batch into one generator seed (SplitMix64 finaliser).
pub(super) fn derive_seed(parts: &[u64]) -> u64 {
    parts.iter().fold(0x243F_6A88_85A3_08D3, |acc, &p| {
        let mut z = acc ^ p.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// Epoch `epoch`'s sample order.
pub(super) fn epoch_order(rows: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(&[
        seed,
        epoch as u64,
    ])));
    order
}

/// Fills `mask` with inverted-dropout factors: 0 with probability `rate`,
/// `1 / (1 - rate)` otherwise.
pub(super) fn dropout_mask(mask: &mut Vec<f32>, len: usize, rate: f32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keep = 1.0 / (1.0 - rate);
    mask.clear();
    mask.extend((0..len).map(|_| {
        if rng.random::<f32>() < rate {
            0.0
        } else {
            keep
        }
    }));
}

pub(super) fn check_data(model: &ModelConfig, data: &Dataset, what: &str) -> Result<()> {
    if let Some(maxlen) = model.head.flatten_maxlen() {
        ensure!(
            data.steps == maxlen as usize,
            "{what} data has {} steps per row but the flatten head's maxlen is {maxlen}; encode with maxlen {maxlen}",
            data.steps
        );
    }
    match (&data.targets, model.output) {
        (DatasetTargets::Binary(_), Output::Sigmoid) => {}
        (DatasetTargets::Class(y), Output::Softmax { classes }) => {
            if let Some(bad) = y.iter().find(|&&c| c >= classes) {
                bail!("{what} data has target class {bad}, but the softmax has {classes} classes");
            }
        }
        (_, output) => bail!("{what} data targets do not fit the model's output {output:?}"),
    }
    if let Some(max) = data.max_id() {
        ensure!(
            (max as usize) < model.vocab_rows(),
            "{what} data has token id {max}, but the model has {} token ids",
            model.vocab_rows()
        );
    }
    Ok(())
}
