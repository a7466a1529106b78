//! tract on the exported ONNX, the runtime's f32 path and its integer path agree
//! on random models of every cell and head (trained models are checked by
//! `lstm-edge verify` in the main job).

use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_trainer::export::export_onnx;
use lstm_edge_trainer::model::{InputConfig, ModelConfig, Params};
use lstm_edge_trainer::pipeline::verify;
use lstm_edge_trainer::quantize::quantize;

fn config(cell: Cell, head: Head, output: Output, words: bool) -> ModelConfig {
    let input = if words {
        let (strings, offsets) = lstm_edge_runtime::tokenize::words::encode_vocab(
            ["bad", "film", "good", "great", "movie", "the"].map(|w| w.as_bytes().to_vec()),
        );
        InputConfig::Words {
            strings,
            offsets,
            embed_dim: 8,
        }
    } else {
        InputConfig::Chars {
            table: b"abcdefghij ".to_vec(),
            lowercase: true,
            unk: true,
            pad: true,
        }
    };
    ModelConfig {
        cell,
        input,
        hidden: 16,
        head,
        output,
        dropout: 0.0,
    }
}

#[test]
fn tract_f32_and_int_agree_on_every_cell_and_head() {
    let mut seed = 0;
    for cell in [Cell::Lstm, Cell::Gru] {
        for (head, output) in [
            (Head::Flatten { maxlen: 40 }, Output::Sigmoid),
            (Head::FlattenTail { maxlen: 40 }, Output::Sigmoid),
            (Head::Mean, Output::Sigmoid),
            (Head::Last, Output::Sigmoid),
            (Head::Last, Output::Softmax { classes: 12 }),
        ] {
            for words in [false, true] {
                if words && matches!(output, Output::Softmax { .. }) {
                    continue;
                }
                seed += 1;
                let cfg = config(cell, head, output, words);
                let params = Params::init(&cfg, seed);
                let rows = cfg.vocab_rows() as u16;
                // Lengths below, at and above maxlen; never PAD inside the text.
                let sequences: Vec<Vec<u16>> = (0..12u16)
                    .map(|s| {
                        (0..(5 + 4 * s))
                            .map(|t| 1 + (s * 5 + t * 7) % (rows - 2))
                            .collect()
                    })
                    .collect();
                let q = quantize(&cfg, &params, &sequences).unwrap();
                let onnx = export_onnx(&cfg, &params, &[]).unwrap();
                let report = verify(onnx, &q.f32_blob, &q.int_blob, &sequences).unwrap();
                println!("{cell:?} {head:?} {output:?} words={words}: {report:?}");
                report.check().unwrap();
                assert!(report.max_abs_f32_vs_int <= 0.03, "{report:?}");
                assert_eq!(report.decision_agreement_tract_vs_f32, 1.0);
            }
        }
    }
}

#[test]
fn an_onnx_of_another_model_fails_the_check() {
    let cfg = config(Cell::Lstm, Head::Last, Output::Sigmoid, false);
    let sequences: Vec<Vec<u16>> = (0..8u16)
        .map(|s| (0..10).map(|t| (s + t) % 11).collect())
        .collect();
    let (ours, other) = (Params::init(&cfg, 1), Params::init(&cfg, 2));
    let q = quantize(&cfg, &ours, &sequences).unwrap();
    let onnx = export_onnx(&cfg, &other, &[]).unwrap();
    let report = verify(onnx, &q.f32_blob, &q.int_blob, &sequences).unwrap();
    let err = report.check().unwrap_err().to_string();
    assert!(err.contains("not hold the same model"), "{err}");
}

#[test]
fn comparing_no_sequences_fails_the_check() {
    let cfg = config(Cell::Gru, Head::Last, Output::Sigmoid, false);
    let params = Params::init(&cfg, 3);
    let calibration: Vec<Vec<u16>> = vec![(0..10).collect()];
    let q = quantize(&cfg, &params, &calibration).unwrap();
    let onnx = export_onnx(&cfg, &params, &[]).unwrap();
    let report = verify(onnx, &q.f32_blob, &q.int_blob, &[]).unwrap();
    let err = report.check().unwrap_err().to_string();
    assert!(err.contains("no sequences"), "{err}");
}
