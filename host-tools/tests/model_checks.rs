//! `verify`, `eval`, `export` and `quantize` refuse a model directory whose files
//! belong to different models, name the file and the fix, and keep the card honest.
//! Shipped models are only read: every command runs on copies.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::Model;
use lstm_edge_trainer::export::{export_onnx, export_step_onnx};
use lstm_edge_trainer::model::{InputConfig, ModelConfig, Params};
use lstm_edge_trainer::pipeline::{check_same_model, FileStamp};
use lstm_edge_trainer::pipeline::{step_gap, verify, TractModel, VerifyReport};
use lstm_edge_trainer::quantize::quantize;
use serde_json::Value;

mod common;
use common::{arg, cli, data, failure, json_of, repo};

fn macbeth() -> String {
    data("shakespeare/shakespeare-macbeth.txt")
}

/// Runs `cmd`, expects failure without a panic, and returns stderr.
fn refused(cmd: &mut Command) -> String {
    let err = failure(cmd);
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Runs `cmd`, expects success, and returns stderr.
fn success(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stderr.clone();
    String::from_utf8_lossy(&out).into_owned()
}

/// A copy of the shipped model `name` in `dir`.
fn shipped_copy(name: &str, dir: &Path) -> PathBuf {
    let copy = dir.join(name);
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(repo().join("models").join(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    copy
}

/// Puts the shipped file `models/FROM` (`g-gru/model.blob`, say) into `model`.
fn put(from: &str, model: &Path) {
    let source = repo().join("models").join(from);
    std::fs::copy(&source, model.join(source.file_name().unwrap())).unwrap();
}

fn card(model: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap()
}

fn edit_card(model: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value = card(model);
    edit(&mut value);
    std::fs::write(model.join("card.json"), value.to_string()).unwrap();
}

/// `verify` on a generator copy, over a few windows of its card's corpus.
fn verify_generator(model: &Path) -> Command {
    let mut cmd = cli();
    cmd.args(["verify", "--sequences", "4", "--model", arg(model)]);
    cmd
}

fn train_tiny_generator(out: &Path, seed: u64) {
    cli()
        .args(["train", "--preset", "g", "--corpus", &macbeth()])
        .args(["--seed", &seed.to_string()])
        .args(["--maxlen", "12", "--window-step", "40", "--hidden", "8"])
        .args(["--epochs", "1", "--threads", "1", "--calibration", "32"])
        .args(["--quiet", "--out", arg(out)])
        .assert()
        .success();
}

fn quantize_tiny(model: &Path, out: Option<&Path>) -> Command {
    let mut cmd = cli();
    cmd.args(["quantize", "--checkpoint", arg(model), "--calibration", "8"])
        .args(["--corpus", &macbeth()]);
    if let Some(out) = out {
        cmd.args(["--out", arg(out)]);
    }
    cmd
}

#[test]
fn verify_refuses_blobs_that_are_not_the_cards_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = shipped_copy("g", dir.path());
    put("g-gru/model.blob", &model);
    let err = refused(&mut verify_generator(&model));
    assert!(
        err.contains("model.blob is not the model its card.json describes")
            && err.contains("cell GRU vs LSTM")
            && err.contains("lstm-edge quantize"),
        "{err}"
    );

    // A blob of the card's shape but not the size the card records (another model's).
    put("g/model.blob", &model);
    edit_card(&model, |card| card["files"]["int_blob"] = 1234.into());
    let card_before = std::fs::read(model.join("card.json")).unwrap();
    for sub in ["verify", "eval"] {
        let err = refused(cli().args([sub, "--model", arg(&model), "--corpus", &macbeth()]));
        assert!(
            err.contains("model.blob is 106425 bytes, but card.json records 1234"),
            "{sub}: {err}"
        );
    }
    assert_eq!(std::fs::read(model.join("card.json")).unwrap(), card_before);
}

/// Word models of one shape whose vocabularies differ.
fn word_model(words: [&str; 4], head: Head) -> ModelConfig {
    let (strings, offsets) =
        lstm_edge_runtime::tokenize::words::encode_vocab(words.map(|w| w.as_bytes().to_vec()));
    ModelConfig {
        cell: Cell::Lstm,
        input: InputConfig::Words {
            strings,
            offsets,
            embed_dim: 4,
        },
        hidden: 6,
        head,
        output: Output::Sigmoid,
        dropout: 0.0,
    }
}

#[test]
fn an_integer_blob_with_another_vocabulary_is_refused() {
    let sequences: Vec<Vec<u16>> = (0..4u16).map(|s| vec![2 + s, 3, 1, 5]).collect();
    let ours = word_model(["bad", "film", "good", "movie"], Head::Mean);
    let theirs = word_model(["awful", "dull", "great", "plot"], Head::Mean);
    let params = Params::init(&ours, 1);
    let q = quantize(&ours, &params, &sequences).unwrap();
    let foreign = quantize(&theirs, &params, &sequences).unwrap();
    let body = |blob| *Model::from_bytes(blob).unwrap().body();
    let (f32_body, int_body) = (body(&q.f32_blob), body(&foreign.int_blob));
    let err = check_same_model("a.blob", &f32_body, "b.blob", &int_body).unwrap_err();
    assert!(
        err.to_string()
            .contains("b.blob holds a different vocabulary than a.blob"),
        "{err}"
    );
    check_same_model("a.blob", &f32_body, "b.blob", &body(&q.int_blob)).unwrap();

    let onnx = export_onnx(&ours, &params, &[]).unwrap();
    let err = verify(onnx, &q.f32_blob, &foreign.int_blob, &sequences).unwrap_err();
    assert!(
        format!("{err:#}").contains("model.blob holds a different vocabulary"),
        "{err:#}"
    );
}

#[test]
fn verify_refuses_an_onnx_of_another_model_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let model = shipped_copy("w", dir.path());
    put("g/model.onnx", &model);
    let reviews = repo().join("data/imdb-sample/test.jsonl.gz");
    let verify = |model: &Path| {
        refused(
            cli()
                .args(["verify", "--sequences", "2", "--limit", "2"])
                .args(["--model", arg(model), "--test", arg(&reviews)]),
        )
    };
    let err = verify(&model);
    assert!(
        err.contains("model.onnx is not the blob's model")
            && err.contains("lstm_edge.hidden 128 vs the blob's 32")
            && err.contains("one_hot table is [50, 50], the blob's 8002 tokens")
            && err.contains("lstm-edge export"),
        "{err}"
    );
    let model = shipped_copy("c-mean", dir.path());
    put("c/model.onnx", &model);
    let err = verify(&model);
    assert!(
        err.contains("lstm_edge.head flatten vs the blob's mean")
            && err.contains("lstm_edge.maxlen 1500 vs the blob's absent"),
        "{err}"
    );

    // Had the check let it through, tract's panic on an id past the table is an error.
    let onnx = std::fs::read(repo().join("models/g/model.onnx")).unwrap();
    let err = TractModel::new(onnx).outputs(&[29_800, 3]).unwrap_err();
    assert!(format!("{err:#}").contains("tract failed"), "{err:#}");
}

#[test]
fn verify_streams_the_step_onnx_and_refuses_another_models() {
    let dir = tempfile::tempdir().unwrap();
    let model = shipped_copy("g", dir.path());
    let report = json_of(verify_generator(&model).arg("--json"));
    let gap = report["max_abs_step_vs_f32"].as_f64().unwrap();
    assert!(gap < 1e-4, "{report}");

    put("g-gru/model-step.onnx", &model);
    let err = refused(&mut verify_generator(&model));
    assert!(
        err.contains(
            "model-step.onnx is not the blob's model (lstm_edge.cell gru vs the blob's lstm"
        ) && err.contains("lstm-edge export"),
        "{err}"
    );

    // The same model's step ONNX with other weights passes the metadata check, not the
    // comparison.
    let cfg = word_model(["bad", "film", "good", "movie"], Head::Last);
    let sequences: Vec<Vec<u16>> = (0..3u16).map(|s| vec![2 + s, 4, 1, 3, 5]).collect();
    let (ours, other) = (Params::init(&cfg, 1), Params::init(&cfg, 2));
    let q = quantize(&cfg, &ours, &sequences).unwrap();
    let gap = |params| {
        let step = export_step_onnx(&cfg, params, &[]).unwrap();
        step_gap(step, &q.f32_blob, &sequences).unwrap()
    };
    assert!(gap(&ours) < 1e-5, "{}", gap(&ours));
    let report = VerifyReport {
        sequences: 3,
        max_abs_step_vs_f32: Some(gap(&other)),
        ..Default::default()
    };
    let err = report.check().unwrap_err().to_string();
    assert!(
        err.contains("model-step.onnx, fed one token at a time"),
        "{err}"
    );
}

#[test]
fn verify_names_a_damaged_or_missing_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let model = shipped_copy("g", dir.path());
    let f32_blob = std::fs::read(model.join("model-f32.blob")).unwrap();
    std::fs::write(model.join("model-f32.blob"), &f32_blob[..1000]).unwrap();
    let err = refused(&mut verify_generator(&model));
    assert!(
        err.contains("model-f32.blob: model blob is truncated")
            && err.contains("lstm-edge quantize"),
        "{err}"
    );
    std::fs::write(model.join("model-f32.blob"), b"").unwrap();
    let err = refused(&mut verify_generator(&model));
    assert!(
        err.contains("model-f32.blob: the file is empty: rebuild it"),
        "{err}"
    );
    std::fs::write(model.join("model-f32.blob"), &f32_blob).unwrap();
    std::fs::remove_file(model.join("model.onnx")).unwrap();
    let err = refused(&mut verify_generator(&model));
    assert!(
        err.contains("model.onnx") && err.contains("rebuild it with `lstm-edge train`"),
        "{err}"
    );
}

#[test]
fn export_and_quantize_of_a_folder_without_checkpoint_say_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("g");
    std::fs::create_dir(&model).unwrap();
    put("g/card.json", &model);
    let err = refused(cli().args(["export", "--checkpoint", arg(&model)]));
    assert!(
        err.contains("has no checkpoint.ckpt: shipped model folders carry no checkpoint")
            && err.contains("--preset g"),
        "{err}"
    );
    let err = refused(&mut quantize_tiny(&model, None));
    assert!(err.contains("shipped model folders"), "{err}");
    // A folder with a checkpoint, asked for another file in it (a run without --keep-best).
    std::fs::write(model.join("checkpoint.ckpt"), b"").unwrap();
    let best = model.join("checkpoint.best.ckpt");
    let err = refused(cli().args(["export", "--checkpoint", arg(&best)]));
    assert!(
        err.contains("checkpoint.best.ckpt does not exist; its folder holds checkpoint.ckpt"),
        "{err}"
    );
}

#[test]
fn export_and_quantize_refuse_another_models_folder_and_keep_the_card_current() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny");
    train_tiny_generator(&tiny, 42);
    let g = shipped_copy("g", dir.path());
    let files = ["card.json", "model.blob", "model-f32.blob", "model.onnx"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(g.join(f)).unwrap())
        .collect();
    let err = refused(&mut quantize_tiny(&tiny, Some(&g)));
    assert!(
        err.contains("card.json describes model `g`, not the one in")
            && err.contains("hidden 8 vs 128")
            && err.contains("give another --out"),
        "{err}"
    );
    let err = refused(cli().args(["export", "--checkpoint", arg(&tiny), "--out", arg(&g)]));
    assert!(err.contains("describes model `g`"), "{err}");
    for (file, bytes) in files.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(g.join(file)).unwrap(),
            bytes,
            "{file} changed"
        );
    }

    // Into its own folder, `export` records the ONNX's size and CRC-32.
    edit_card(&tiny, |card| card["files"]["onnx_crc32"] = "0".into());
    success(cli().args(["export", "--checkpoint", arg(&tiny)]));
    let onnx = FileStamp::of(&std::fs::read(tiny.join("model.onnx")).unwrap());
    let files = &card(&tiny)["files"];
    assert_eq!(files["onnx"].as_u64(), Some(onnx.bytes));
    assert_eq!(files["onnx_crc32"].as_str(), Some(onnx.crc32.as_str()));

    // A blob written again as the card records it keeps the card's figures, whatever
    // the folder held before.
    std::fs::copy(tiny.join("model-f32.blob"), tiny.join("model.blob")).unwrap();
    let note = success(&mut quantize_tiny(&tiny, None));
    assert!(!note.contains("note:"), "{note}");
    assert!(card(&tiny)["evaluation"].is_object());

    // An integer blob other than the one the card's figures measured drops those
    // figures; `eval` measures them again.
    edit_card(&tiny, |card| card["files"]["int_blob_crc32"] = "0".into());
    let note = success(&mut quantize_tiny(&tiny, None));
    assert!(
        note.contains("model.blob changed") && note.contains("lstm-edge eval --model"),
        "{note}"
    );
    let cleared = card(&tiny);
    let metrics = &cleared["metrics"];
    assert!(cleared["evaluation"].is_null(), "{cleared}");
    for gone in [
        "held_out_cross_entropy_int",
        "held_out_accuracy_int",
        "decision_agreement_int_vs_f32",
    ] {
        assert!(metrics.get(gone).is_none(), "{gone}: {metrics}");
    }
    assert!(metrics["held_out_cross_entropy_f32"].is_f64(), "{metrics}");
    success(cli().args(["eval", "--model", arg(&tiny)]));
    assert!(card(&tiny)["metrics"]["held_out_cross_entropy_int"].is_f64());
    success(&mut verify_generator(&tiny));

    // Re-quantizing to the same bytes keeps them, and says nothing.
    let note = success(&mut quantize_tiny(&tiny, None));
    assert!(!note.contains("note:"), "{note}");
    assert!(card(&tiny)["evaluation"].is_object());
}

#[test]
fn verify_and_eval_refuse_a_file_of_the_same_size_from_another_run() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, other) = (dir.path().join("ours"), dir.path().join("other"));
    train_tiny_generator(&ours, 42);
    train_tiny_generator(&other, 7);
    // The card records each file as `train` wrote it.
    let files = card(&ours)["files"].clone();
    for (file, key) in [
        ("model.blob", "int_blob"),
        ("model-f32.blob", "f32_blob"),
        ("model.onnx", "onnx"),
        ("model-step.onnx", "step_onnx"),
    ] {
        let stamp = FileStamp::of(&std::fs::read(ours.join(file)).unwrap());
        assert_eq!(files[key].as_u64(), Some(stamp.bytes), "{file}");
        assert_eq!(
            files[format!("{key}_crc32")].as_str(),
            Some(stamp.crc32.as_str()),
            "{file}"
        );
    }
    success(&mut verify_generator(&ours));

    // Another seed's files: the same shape and size, other weights.
    let card_before = std::fs::read(ours.join("card.json")).unwrap();
    for file in [
        "model.blob",
        "model-f32.blob",
        "model.onnx",
        "model-step.onnx",
    ] {
        let keep = std::fs::read(ours.join(file)).unwrap();
        let swapped = std::fs::read(other.join(file)).unwrap();
        assert_eq!(keep.len(), swapped.len(), "{file}");
        std::fs::write(ours.join(file), &swapped).unwrap();
        let crc = FileStamp::of(&swapped).crc32;
        let mut subs = vec!["verify"];
        if file.ends_with(".blob") {
            subs.push("eval");
        }
        for sub in subs {
            let err = refused(cli().args([sub, "--model", arg(&ours), "--corpus", &macbeth()]));
            assert!(
                err.contains(&format!("{file} has CRC-32 {crc}, but card.json records"))
                    && err.contains("one copied from another model?"),
                "{sub} {file}: {err}"
            );
        }
        std::fs::write(ours.join(file), &keep).unwrap();
    }
    assert_eq!(std::fs::read(ours.join("card.json")).unwrap(), card_before);

    // A step ONNX the card records must be there.
    let step = std::fs::read(ours.join("model-step.onnx")).unwrap();
    std::fs::remove_file(ours.join("model-step.onnx")).unwrap();
    let err = refused(&mut verify_generator(&ours));
    assert!(err.contains("model-step.onnx"), "{err}");
    std::fs::write(ours.join("model-step.onnx"), step).unwrap();

    // Cards of earlier builds record sizes only, and still pass.
    edit_card(&ours, |card| {
        let files = card["files"].as_object_mut().unwrap();
        files.retain(|key, _| !key.ends_with("_crc32") && key != "step_onnx");
    });
    success(&mut verify_generator(&ours));
}
