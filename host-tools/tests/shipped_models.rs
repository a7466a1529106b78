//! The shipped models in `models/` load with this runtime (a format change must
//! re-quantize them), and the sentiment models score plain reviews sensibly.

use std::path::{Path, PathBuf};

use lstm_edge::blob::BlobFile;
use lstm_edge::infer;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

#[test]
fn every_shipped_blob_loads_with_this_runtime() {
    let mut seen = 0;
    for entry in std::fs::read_dir(models_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for name in ["model.blob", "model-f32.blob"] {
            let path = dir.join(name);
            BlobFile::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{e:#}\nre-quantize it: lstm-edge quantize --model {}",
                    dir.display()
                )
            });
            seen += 1;
        }
    }
    assert!(
        seen >= 10,
        "expected w, c, c-mean, g and g-gru with two blobs each, found {seen} blobs"
    );
}

/// Scores a plain review of praise and one of panning with a shipped sentiment model.
fn praise_and_panning(model: &str) -> (f64, f64) {
    let blob = BlobFile::read(&models_dir().join(model).join("model.blob")).unwrap();
    let good = infer::score(
        &blob,
        b"A wonderful, moving film. The acting is brilliant and the story is beautiful; \
          one of the best movies I have seen this year. Highly recommended.",
        "the praise",
    )
    .unwrap();
    let bad = infer::score(
        &blob,
        b"Terrible. A boring, stupid waste of time with awful acting and a plot that makes \
          no sense. The worst movie I have seen in years; avoid it.",
        "the panning",
    )
    .unwrap();
    println!(
        "{model}: praise {:.4}, panning {:.4}",
        good.score, bad.score
    );
    (good.score, bad.score)
}

#[test]
fn shipped_word_model_tells_praise_from_panning() {
    let (good, bad) = praise_and_panning("w");
    assert!(good > 0.5 && bad < 0.5, "praise {good}, panning {bad}");
}

#[test]
fn shipped_char_model_tells_praise_from_panning() {
    let (good, bad) = praise_and_panning("c-mean");
    assert!(good > 0.5 && bad < 0.5, "praise {good}, panning {bad}");
}

#[test]
fn shipped_generator_continues_a_prompt() {
    let blob = BlobFile::read(&models_dir().join("g/model.blob")).unwrap();
    let options = infer::GenerateOptions {
        temperature: lstm_edge_runtime::Temperature::from_milli(200),
        length: 200,
        seed: 1,
    };
    let text =
        infer::generate(&blob, b"to be, or not to be, that is the question", options).unwrap();
    let words = text
        .split(|&b| b == b' ' || b == b'\n')
        .filter(|w| !w.is_empty())
        .count();
    println!("{}", infer::latin1_to_string(&text));
    assert_eq!(text.len(), 200);
    assert!(
        words >= 20,
        "a trained generator writes words: {}",
        infer::latin1_to_string(&text)
    );
}
