//! What the host's runtime gives for the firmware's inputs, and the check that a
//! device run gave the same: the blob's path is bit-identical on host and device.

use anyhow::{anyhow, Result};
use lstm_edge_runtime::format::MAX_HIDDEN;
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Model, Network, Output, State, Temperature};

use super::{FirmwareInputs, FirmwareOutput};
use crate::blob::{BlobFile, NumericPath};
use crate::infer::{self, GenerateOptions};

/// Each review's probability and steps, and each generated text (UNK and PAD
/// left out, as the firmware and the CLI leave them out).
#[derive(Debug, Clone, PartialEq)]
pub struct HostRun {
    pub scores: Vec<(f64, u32)>,
    pub texts: Vec<Vec<u8>>,
}

/// Runs `file` on the host's path for it (integer or f32) with the firmware's
/// inputs: a sentiment model scores the reviews, a generator continues the prompt
/// at each temperature, as `lstm-edge generate` does.
pub fn host_run(file: &BlobFile, inputs: &FirmwareInputs) -> Result<HostRun> {
    let model = file.model()?;
    if model.body().output == Output::Sigmoid {
        let scores = match file.numeric_path()? {
            NumericPath::Int => scores_on::<Int>(&model, &inputs.reviews)?,
            NumericPath::F32 => scores_on::<F32>(&model, &inputs.reviews)?,
        };
        return Ok(HostRun {
            scores,
            texts: Vec::new(),
        });
    }
    let texts = inputs
        .temperatures_milli
        .iter()
        .map(|&milli| {
            let options = GenerateOptions {
                temperature: Temperature::from_milli(milli),
                length: inputs.gen_chars,
                seed: inputs.seed,
            };
            infer::generate(file, &inputs.prompt, options)
        })
        .collect::<Result<_>>()?;
    Ok(HostRun {
        scores: Vec::new(),
        texts,
    })
}

/// Each review's probability and steps. Unlike `lstm-edge score`, an empty review
/// is scored too, as the firmware scores it.
fn scores_on<N: Numeric>(model: &Model<'_>, reviews: &[Vec<u8>]) -> Result<Vec<(f64, u32)>> {
    let net = Network::<N>::new(model).map_err(|e| anyhow!("the model blob: {e}"))?;
    // The runtime's largest size: any blob that loads fits.
    let mut state = Box::new(State::<N, MAX_HIDDEN>::new());
    reviews
        .iter()
        .enumerate()
        .map(|(index, review)| {
            let score = net
                .score_text(&mut state, review)
                .map_err(|e| anyhow!("review {}: {e}", index + 1))?;
            Ok((N::prob_to_f64(score), state.steps()))
        })
        .collect()
}

impl FirmwareOutput {
    /// Where the device's scores or texts differ from the host's, or `Ok` when they
    /// are the same, bit for bit (each path's probability is exact in f64).
    pub fn compare_with_host(&self, host: &HostRun) -> Result<(), String> {
        if self.scores.len() != host.scores.len() {
            return Err(format!(
                "the device scored {} reviews, the host {}",
                self.scores.len(),
                host.scores.len()
            ));
        }
        for (device, &(probability, steps)) in self.scores.iter().zip(&host.scores) {
            let review = device.index + 1;
            if self.probability(device) != Some(probability) {
                return Err(format!(
                    "review {review}: the device scored {} (raw {}), the host {probability}",
                    self.probability(device)
                        .map_or("out of range".to_owned(), |p| p.to_string()),
                    self.raw_text(device)
                ));
            }
            if device.steps != steps {
                return Err(format!(
                    "review {review}: the device took {} steps, the host {steps}",
                    device.steps
                ));
            }
        }
        if self.generations.len() != host.texts.len() {
            return Err(format!(
                "the device generated {} texts, the host {}",
                self.generations.len(),
                host.texts.len()
            ));
        }
        for (device, text) in self.generations.iter().zip(&host.texts) {
            if &device.text != text {
                return Err(format!(
                    "at temperature {}: the device generated {:?}, the host {:?}",
                    device.temperature_milli as f64 / 1000.0,
                    String::from_utf8_lossy(&device.text),
                    String::from_utf8_lossy(text)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::parse_output;

    fn shipped(model: &str, blob: &str) -> BlobFile {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(model)
            .join(blob);
        BlobFile::read(&path).unwrap()
    }

    /// A console as the firmware would print `host`'s results.
    fn console(path: &str, scores: &[(u32, u32)], texts: &[Vec<u8>]) -> String {
        let mut out = format!(
            "lstm-edge-firmware {}\nclock 25000000\nmodel lstm path={path}\nopen 1 1\n",
            super::super::PROTOCOL_VERSION
        );
        for (index, (raw, steps)) in scores.iter().enumerate() {
            out += &format!("score {index} {raw} 10 {steps}\n");
        }
        for text in texts {
            let hex: String = text.iter().map(|b| format!("{b:02x}")).collect();
            out += &format!("gen 500 42 {hex} 1 2\n");
        }
        out + "stack 100 200\nend\n"
    }

    #[test]
    fn the_host_runs_each_path_and_a_device_must_match_it_bit_for_bit() {
        let reviews = FirmwareInputs {
            reviews: vec![b"A fine film.".to_vec(), b"Dull.".to_vec()],
            ..FirmwareInputs::default()
        };
        let int = host_run(&shipped("c-mean", "model.blob"), &reviews).unwrap();
        let float = host_run(&shipped("c-mean", "model-f32.blob"), &reviews).unwrap();
        assert_eq!(int.scores.len(), 2);
        assert_eq!(
            (int.scores[0].1, int.scores[1].1),
            (12, 5),
            "a step per char"
        );
        assert_ne!(
            int.scores[0].0, float.scores[0].0,
            "each blob on its own path"
        );
        assert!(int.texts.is_empty());

        let raw = |p: f64| (p * f64::from(1u32 << 30)) as u32;
        let int_scores: Vec<(u32, u32)> = int.scores.iter().map(|&(p, s)| (raw(p), s)).collect();
        let device = parse_output(&console("int", &int_scores, &[])).unwrap();
        device.compare_with_host(&int).unwrap();
        let err = device.compare_with_host(&float).unwrap_err();
        assert!(err.starts_with("review 1: the device scored"), "{err}");
        let bits: Vec<(u32, u32)> = float
            .scores
            .iter()
            .map(|&(p, s)| ((p as f32).to_bits(), s))
            .collect();
        parse_output(&console("f32", &bits, &[]))
            .unwrap()
            .compare_with_host(&float)
            .unwrap();
        let longer = parse_output(&console(
            "int",
            &[(int_scores[0].0, 13), int_scores[1]],
            &[],
        ));
        let err = longer.unwrap().compare_with_host(&int).unwrap_err();
        assert_eq!(err, "review 1: the device took 13 steps, the host 12");

        let generation = FirmwareInputs {
            temperatures_milli: vec![500],
            gen_chars: 20,
            ..FirmwareInputs::default()
        };
        let host = host_run(&shipped("g", "model.blob"), &generation).unwrap();
        assert_eq!(host.texts.len(), 1);
        assert_eq!(host.texts[0].len(), 20);
        let device = parse_output(&console("int", &[], &host.texts)).unwrap();
        device.compare_with_host(&host).unwrap();
        let mut other = host.texts[0].clone();
        other[19] ^= 1;
        let device = parse_output(&console("int", &[], &[other])).unwrap();
        let err = device.compare_with_host(&host).unwrap_err();
        assert!(
            err.starts_with("at temperature 0.5: the device generated"),
            "{err}"
        );
        let none = parse_output(&console("int", &[], &[])).unwrap();
        let err = none.compare_with_host(&host).unwrap_err();
        assert_eq!(err, "the device generated 0 texts, the host 1");
    }
}
