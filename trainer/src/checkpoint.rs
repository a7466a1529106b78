//! Training checkpoints: everything needed to continue a run bit-identically.
//!
//! File layout: magic `LSTMEDCK`, format version (u32 LE), body length (u64 LE),
//! CRC-32 of the body (u32 LE, ISO-HDLC), then the postcard-encoded
//! [`Checkpoint`]. Files are written to a temporary sibling, synced, then
//! renamed over the target, so a crash leaves either the old or the new file.
//!
//! The random state is `seed` plus `epochs_done`: the training loop derives
//! each epoch's shuffle and each batch's dropout mask from `(seed, epoch,
//! batch)` alone, so nothing else needs saving.

use std::fs::{self, File};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::autodiff::Backend;
use crate::model::{ModelConfig, Params, Tensor};
use crate::optim::OptimizerConfig;
use crate::train::EpochStats;
#[cfg(doc)]
use crate::train::{Dataset, TrainOptions};

const MAGIC: &[u8; 8] = b"LSTMEDCK";
/// Bump when [`Checkpoint`]'s encoding or meaning changes. Format 5: an LSTM trains
/// one bias (`wb`), so its optimizer state has no `rb` entries; format 4 is read for
/// export and quantization, not resumed (see [`trains_lstm_biases_apart`]). Format 6:
/// each epoch's figures end with [`EpochStats::skipped_steps`], and the body with
/// [`Checkpoint::backend`].
pub const VERSION: u32 = 6;
/// The first format whose LSTM optimizer state leaves out `rb`.
const ONE_LSTM_BIAS: u32 = 5;
const HEADER_LEN: usize = 8 + 4 + 8 + 4;
/// zlib's CRC-32, for checkpoints, data fingerprints and the card's file stamps.
pub(crate) const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32s of the data a run trains and validates on (see [`Dataset::fingerprint`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    pub train: u32,
    pub validation: Option<u32>,
}

/// The state of a run after `epochs_done` whole epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub model: ModelConfig,
    /// The data it was trained on: a resumed run must train on the same.
    pub data: DataFingerprint,
    pub params: Params,
    pub optimizer: OptimizerConfig,
    /// In the order of [`OptimizerConfig::state_shapes`].
    pub optimizer_state: Vec<Tensor>,
    pub epochs_done: usize,
    pub seed: u64,
    pub batch_size: usize,
    pub history: Vec<EpochStats>,
    /// Where the embedding started (see [`TrainOptions::embedding_origin`]); `None` in a
    /// checkpoint of format 3, which did not record it (its body reads with `None`
    /// appended, see [`load_with_format`]).
    pub embedding_origin: Option<EmbeddingOrigin>,
    /// Where the run trained, which picks how its graph sums repeated ids (see
    /// [`Backend::row_sum`]); `None` before format 6.
    pub backend: Option<Backend>,
}

/// Where a model's embedding table started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmbeddingOrigin {
    Random,
    /// `--word-vectors PATH`, as the command line gave it.
    Vectors(String),
    /// `--word2vec N`.
    Word2Vec(usize),
}

impl std::fmt::Display for EmbeddingOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Random => write!(f, "random vectors"),
            Self::Vectors(path) => write!(f, "`--word-vectors {path}`"),
            Self::Word2Vec(epochs) => write!(f, "`--word2vec {epochs}`"),
        }
    }
}

/// Writes `checkpoint` to `path` atomically (see [`crate::files::write_atomic`]).
pub fn save(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let body = postcard::to_stdvec(checkpoint).context("encoding the checkpoint")?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&CRC.checksum(&body).to_le_bytes());
    bytes.extend_from_slice(&body);

    crate::files::write_atomic(path, &bytes).context("saving the checkpoint")
}

/// Whether a checkpoint of format `format` (see [`load_with_format`]) was written by a
/// build that trained an LSTM's input and recurrent biases as two tensors: its weights
/// export as they are, but its optimizer state does not fit this build's training
/// step, so it cannot be resumed.
pub fn trains_lstm_biases_apart(format: u32, checkpoint: &Checkpoint) -> bool {
    format < ONE_LSTM_BIAS && checkpoint.model.cell == lstm_edge_runtime::format::Cell::Lstm
}

/// Whether `path` is a file that starts like an lstm-edge checkpoint (its magic), so
/// that a file of the user's with the same name is never taken for one.
pub fn is_checkpoint(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| starts_like_checkpoint(&magic))
}

/// Whether `bytes` begin with a checkpoint's magic, so that tools handed one in
/// place of a model blob can say what it is.
pub fn starts_like_checkpoint(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Removes `path` when it holds a checkpoint (a file of the user's with that name stays).
pub fn remove_stale(path: &Path) -> Result<()> {
    if !is_checkpoint(path) {
        return Ok(());
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove the stale {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Reads and verifies a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint> {
    load_with_format(path).map(|(checkpoint, _)| checkpoint)
}

/// [`load`], with the format version the checkpoint was written in.
pub fn load_with_format(path: &Path) -> Result<(Checkpoint, u32)> {
    ensure!(
        !path.is_dir(),
        "{} is a folder, not a checkpoint: pass the checkpoint file (or the model folder that \
         holds it)",
        path.display()
    );
    let bytes = fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let what = path.display();
    ensure!(
        bytes.len() >= HEADER_LEN && &bytes[..8] == MAGIC,
        "{what} is not an lstm-edge checkpoint (bad magic or shorter than its header)"
    );
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(3..=VERSION).contains(&version) {
        bail!("{what}: checkpoint format version {version}, this build reads version {VERSION}; resume, export or quantize it with the build that wrote it, or train afresh");
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let body = &bytes[HEADER_LEN..];
    // A length no disk holds is a damaged header, not a file cut short.
    let damage = if len > 1 << 48 {
        "the header is corrupt"
    } else if (body.len() as u64) < len {
        "the file is truncated (a copy cut short?)"
    } else {
        "the file runs on past its end (written over, or joined to another?)"
    };
    ensure!(
        body.len() as u64 == len,
        "{what}: header says the body is {len} bytes but {} follow: {damage}; restore it \
         from a copy, or train the model afresh",
        body.len()
    );
    let actual = CRC.checksum(body);
    ensure!(
        actual == crc,
        "{what}: CRC-32 mismatch (header {crc:#010x}, body {actual:#010x}): the file is \
         corrupt; restore it from a copy, or train the model afresh"
    );
    let decoded = match version {
        6.. => postcard::from_bytes(body),
        4 | 5 => postcard::from_bytes(body).map(before_6::Checkpoint::upgrade),
        // Format 3 lacks only the trailing `embedding_origin`: postcard writes `None` as 0.
        _ => postcard::from_bytes(&[body, &[0]].concat()).map(before_6::Checkpoint::upgrade),
    };
    let checkpoint = decoded.with_context(|| format!("{what}: decoding the checkpoint body"))?;
    Ok((checkpoint, version))
}

/// The body of formats 3 to 5, whose epoch figures had no `skipped_steps` (their
/// trainer never dropped an update), and which did not record the backend.
mod before_6 {
    use serde::{Deserialize, Serialize};

    use super::{DataFingerprint, EmbeddingOrigin};
    use crate::model::{ModelConfig, Params, Tensor};
    use crate::optim::OptimizerConfig;
    use crate::train::EpochStats as Current;

    #[derive(Serialize, Deserialize)]
    pub struct Checkpoint {
        model: ModelConfig,
        data: DataFingerprint,
        params: Params,
        optimizer: OptimizerConfig,
        optimizer_state: Vec<Tensor>,
        epochs_done: usize,
        seed: u64,
        batch_size: usize,
        history: Vec<EpochStats>,
        embedding_origin: Option<EmbeddingOrigin>,
    }

    #[derive(Serialize, Deserialize)]
    struct EpochStats {
        epoch: usize,
        train_loss: f64,
        train_accuracy: f64,
        val_loss: Option<f64>,
        val_accuracy: Option<f64>,
        seconds: f64,
        samples_per_second: f64,
    }

    impl Checkpoint {
        pub fn upgrade(self) -> super::Checkpoint {
            let history = self
                .history
                .into_iter()
                .map(|e| Current {
                    epoch: e.epoch,
                    train_loss: e.train_loss,
                    train_accuracy: e.train_accuracy,
                    val_loss: e.val_loss,
                    val_accuracy: e.val_accuracy,
                    seconds: e.seconds,
                    samples_per_second: e.samples_per_second,
                    skipped_steps: 0,
                })
                .collect();
            super::Checkpoint {
                model: self.model,
                data: self.data,
                params: self.params,
                optimizer: self.optimizer,
                optimizer_state: self.optimizer_state,
                epochs_done: self.epochs_done,
                seed: self.seed,
                batch_size: self.batch_size,
                history,
                embedding_origin: self.embedding_origin,
                backend: None,
            }
        }

        /// The body an older build wrote for `ck` (whose epochs skipped no step).
        #[cfg(test)]
        pub fn downgrade(ck: &super::Checkpoint) -> Vec<u8> {
            let ck = ck.clone();
            let old = Checkpoint {
                model: ck.model,
                data: ck.data,
                params: ck.params,
                optimizer: ck.optimizer,
                optimizer_state: ck.optimizer_state,
                epochs_done: ck.epochs_done,
                seed: ck.seed,
                batch_size: ck.batch_size,
                history: ck
                    .history
                    .into_iter()
                    .map(|e| EpochStats {
                        epoch: e.epoch,
                        train_loss: e.train_loss,
                        train_accuracy: e.train_accuracy,
                        val_loss: e.val_loss,
                        val_accuracy: e.val_accuracy,
                        seconds: e.seconds,
                        samples_per_second: e.samples_per_second,
                    })
                    .collect(),
                embedding_origin: ck.embedding_origin,
            };
            postcard::to_stdvec(&old).expect("encodable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;
    use lstm_edge_runtime::format::{Cell, Head, Output};

    fn sample() -> Checkpoint {
        let model = ModelConfig {
            cell: Cell::Gru,
            input: crate::model::InputConfig::Chars {
                table: b"ab".to_vec(),
                lowercase: true,
                unk: true,
                pad: false,
            },
            hidden: 2,
            head: Head::Last,
            output: Output::Softmax { classes: 3 },
            dropout: 0.0,
        };
        let params = Params::init(&model, 7);
        Checkpoint {
            model,
            data: DataFingerprint {
                train: 0x1234_5678,
                validation: Some(9),
            },
            params,
            optimizer: OptimizerConfig {
                rule: Optimizer::rmsprop(0.01),
                clip_norm: Some(5.0),
                lr_decay: Some(0.9),
            },
            optimizer_state: vec![Tensor::zeros(&[2, 3])],
            epochs_done: 3,
            embedding_origin: Some(EmbeddingOrigin::Word2Vec(2)),
            seed: 42,
            batch_size: 8,
            backend: Some(Backend::CpuThreads),
            history: vec![EpochStats {
                epoch: 1,
                train_loss: 1.5,
                train_accuracy: 0.25,
                val_loss: Some(1.25),
                val_accuracy: Some(0.5),
                seconds: 0.5,
                samples_per_second: 100.0,
                skipped_steps: 2,
            }],
        }
    }

    #[test]
    fn round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let ck = sample();
        save(&path, &ck).unwrap();
        save(&path, &ck).unwrap();
        assert_eq!(load(&path).unwrap(), ck);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("run.ckpt")]);
    }

    #[test]
    fn a_format_3_checkpoint_reads_with_its_embedding_origin_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let mut ck = Checkpoint {
            embedding_origin: None,
            backend: None,
            ..sample()
        };
        ck.history[0].skipped_steps = 0;
        let mut body = before_6::Checkpoint::downgrade(&ck);
        assert_eq!(body.pop(), Some(0), "None ends the body");
        write_body(&path, 3, &body);
        assert_eq!(load(&path).unwrap(), ck);
    }

    /// A checkpoint file of format `format` around `body`.
    fn write_body(path: &Path, format: u32, body: &[u8]) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&format.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&CRC.checksum(body).to_le_bytes());
        bytes.extend_from_slice(body);
        fs::write(path, &bytes).unwrap();
    }

    #[test]
    fn a_format_5_checkpoint_reads_with_no_skipped_steps_and_no_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let mut ck = sample();
        ck.history[0].skipped_steps = 0;
        ck.backend = None;
        write_body(&path, 5, &before_6::Checkpoint::downgrade(&ck));
        assert_eq!(load_with_format(&path).unwrap(), (ck, 5));
        // The current format keeps the count and the backend.
        save(&path, &sample()).unwrap();
        let current = load(&path).unwrap();
        assert_eq!(current.history[0].skipped_steps, 2);
        assert_eq!(current.backend, Some(Backend::CpuThreads));
    }

    #[test]
    fn a_format_4_lstm_checkpoint_reads_but_is_named_as_training_its_biases_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        let mut ck = sample();
        ck.model.cell = Cell::Lstm;
        ck.params = Params::init(&ck.model, 7);
        ck.history[0].skipped_steps = 0;
        ck.backend = None;
        save(&path, &ck).unwrap();
        let (_, format) = load_with_format(&path).unwrap();
        assert!(!trains_lstm_biases_apart(format, &ck));
        write_body(&path, 4, &before_6::Checkpoint::downgrade(&ck));
        let (old, format) = load_with_format(&path).unwrap();
        assert_eq!(old, ck);
        assert!(trains_lstm_biases_apart(format, &old));
        // A GRU has two biases in Keras too: its format-4 state still fits.
        assert!(!trains_lstm_biases_apart(format, &sample()));
    }

    #[test]
    fn corruption_truncation_and_foreign_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        save(&path, &sample()).unwrap();
        let good = fs::read(&path).unwrap();

        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        fs::write(&path, &flipped).unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("CRC-32 mismatch"));

        fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("truncated"));
        fs::write(&path, [&good[..], b"more"].concat()).unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("runs on past its end"));
        let mut huge = good.clone();
        huge[12..20].copy_from_slice(&(1u64 << 63).to_le_bytes());
        fs::write(&path, &huge).unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("the header is corrupt"));

        fs::write(&path, b"not a checkpoint at all").unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("bad magic"));

        let mut future = good.clone();
        future[8] = 99;
        fs::write(&path, &future).unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("version 99"));
    }
}
