//! The workstation workflow through the command line: tiny train -> eval -> verify runs
//! on the bundled data, export and quantize from a checkpoint, data-stats, and bad input
//! for each of these subcommands.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

mod common;
use common::{arg, cli, data, failure, json_of, repo, success_stderr};

/// `train` of a tiny generator into `out`, without `--epochs`.
fn tiny_generator(out: &Path) -> Command {
    let mut cmd = cli();
    cmd.args(["train", "--preset", "g", "--corpus"])
        .arg(data("shakespeare/shakespeare-macbeth.txt"))
        .args(["--maxlen", "12", "--window-step", "40"])
        .args(["--threads", "1", "--calibration", "32"])
        .args(["--out", arg(out)]);
    cmd
}

/// `train --preset w` on the bundled reviews, with the bundled test set.
fn word_model_with_a_test_set() -> Command {
    let mut cmd = cli();
    cmd.args(["train", "--preset", "w", "--train"])
        .arg(data("imdb-sample/train.jsonl.gz"))
        .arg("--test")
        .arg(data("imdb-sample/test.jsonl.gz"));
    cmd
}

/// `train` of a tiny char sentiment model on 100 bundled reviews into `out`.
fn tiny_char_sentiment(out: &Path) -> Command {
    let mut cmd = cli();
    cmd.args(["train", "--preset", "c", "--train"])
        .arg(data("imdb-sample/train.jsonl.gz"))
        .args([
            "--limit", "100", "--maxlen", "20", "--hidden", "4", "--epochs", "1",
        ])
        .args(["--threads", "1", "--calibration", "8"])
        .args(["--out", arg(out)]);
    cmd
}

fn train_tiny_generator(out: &Path) {
    tiny_generator(out)
        .args(["--hidden", "8", "--epochs", "2", "--quiet"])
        .assert()
        .success();
}

#[test]
fn clip_norm_reaches_the_update_and_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let train = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        tiny_generator(&out)
            .args(["--hidden", "8", "--epochs", "1", "--quiet"])
            .args(extra)
            .assert()
            .success();
        let card: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
        (std::fs::read(out.join("model-f32.blob")).unwrap(), card)
    };
    let (plain, plain_card) = train("plain", &[]);
    let (clipped, card) = train("clipped", &["--clip-norm", "0.001"]);
    assert_eq!(plain_card["hyperparameters"]["clip_norm"], Value::Null);
    assert_eq!(card["hyperparameters"]["clip_norm"], 0.001);
    assert_ne!(
        plain, clipped,
        "a tiny clip norm changes the trained weights"
    );
    for (flag, value) in [
        ("--clip-norm", "0"),
        ("--clip-norm", "1e-45"),
        ("--lr", "1e-45"),
    ] {
        let err = failure(tiny_generator(&dir.path().join("bad")).args([flag, value]));
        assert!(
            err.contains(&format!(
                "{flag} must be a finite number of at least 1.1754944e-38"
            )),
            "{err}"
        );
    }
}

/// The validation loss of each epoch in a card's history.
fn val_losses(card: &Value) -> Vec<f64> {
    card["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn keep_best_and_patience_pick_epochs_on_validation_apart_from_the_test_windows() {
    let dir = tempfile::tempdir().unwrap();
    let train = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let run = tiny_generator(&out)
            .args(["--hidden", "8"])
            .args(extra)
            .assert()
            .success();
        let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
        let card: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
        (out, card, stderr)
    };
    let (_, plain, _) = train("plain", &["--epochs", "3", "--lr", "0.05"]);
    let (out, card, stderr) = train("best", &["--epochs", "3", "--lr", "0.05", "--keep-best"]);
    assert_eq!(plain["job"].get("kept_epoch"), None);

    let losses = val_losses(&card);
    let lowest = (0..losses.len())
        .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
        .unwrap();
    assert_eq!(card["job"]["kept_epoch"], lowest + 1, "{losses:?}");
    assert_eq!(card["metrics"]["val_loss"], losses[lowest]);
    assert!(
        stderr.contains(&format!("keeping the weights of epoch {} of 3", lowest + 1)),
        "{stderr}"
    );
    assert!(out.join("checkpoint.best.ckpt").exists());
    // Validation comes out of the training windows; the held-out test windows stay.
    let count = |card: &Value, key: &str| card["data"][key].as_u64().unwrap();
    assert_eq!(count(&card, "test_samples"), count(&plain, "test_samples"));
    assert_eq!(
        count(&card, "train_samples") + count(&card, "validation_samples"),
        count(&plain, "train_samples")
    );
    assert!(count(&card, "validation_samples") > 0);

    // At this rate the validation loss turns up within 6 epochs.
    let (patient_dir, patient, stderr) = train(
        "patient",
        &[
            "--patience",
            "1",
            "--epochs",
            "6",
            "--lr",
            "0.2",
            "--keep-best",
        ],
    );
    assert_eq!(patient["job"]["patience"], 1);
    assert_eq!(
        patient["data"]["validation_samples"],
        card["data"]["validation_samples"]
    );
    let losses = val_losses(&patient);
    // Every epoch but the last improved on all before it, or training would have stopped.
    let (last, before) = losses.split_last().unwrap();
    for (i, loss) in before.iter().enumerate() {
        assert!(before[..i].iter().all(|b| loss < b), "{losses:?}");
    }
    assert!(
        losses.len() < 6 && last >= before.last().unwrap(),
        "{losses:?}"
    );
    let stop = format!("trained {} epochs of 6 (stopped early", losses.len());
    assert!(
        patient["description"].as_str().unwrap().contains(&stop),
        "{patient}"
    );
    assert!(
        stderr.contains("has not improved for 1 epoch since"),
        "{stderr}"
    );

    // Re-quantizing the model directory reads the kept epoch, not the last one.
    assert_eq!(patient["job"]["kept_epoch"], losses.len() - 1);
    let requantized = dir.path().join("requantized");
    cli()
        .args(["quantize", "--checkpoint", arg(&patient_dir), "--corpus"])
        .arg(data("shakespeare/shakespeare-macbeth.txt"))
        .args(["--calibration", "32", "--out", arg(&requantized)])
        .assert()
        .success();
    let f32_blob = |dir: &Path| std::fs::read(dir.join("model-f32.blob")).unwrap();
    assert_eq!(f32_blob(&requantized), f32_blob(&patient_dir));
    let err = failure(tiny_generator(&dir.path().join("bad")).args(["--patience", "0"]));
    assert!(err.contains("--patience must be at least 1"), "{err}");
}

#[test]
fn resume_says_where_it_starts_and_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("g");
    let stderr = |cmd: &mut Command| {
        let out = cmd.assert().success().get_output().stderr.clone();
        String::from_utf8_lossy(&out).into_owned()
    };
    let fresh = stderr(tiny_generator(&model).args(["--hidden", "8", "--epochs", "1", "--resume"]));
    assert!(
        fresh.contains("nothing to resume") && fresh.contains("epoch 1/1"),
        "{fresh}"
    );
    // No epoch is picked on validation: it is the held-out windows, the test set.
    assert!(
        fresh.contains("held-out samples (validation and test)"),
        "{fresh}"
    );
    let more = stderr(tiny_generator(&model).args(["--hidden", "8", "--epochs", "2", "--resume"]));
    assert!(
        more.contains("after epoch 1 of 2") && more.contains("epoch 2/2"),
        "{more}"
    );
    assert!(!more.contains("epoch 1/2"), "{more}");
    let done = stderr(tiny_generator(&model).args(["--hidden", "8", "--epochs", "2", "--resume"]));
    assert!(done.contains("nothing left to train"), "{done}");
    let other =
        failure(tiny_generator(&model).args(["--hidden", "9", "--epochs", "3", "--resume"]));
    assert!(other.contains("hidden 8 vs 9"), "{other}");
    let other_lr = failure(
        tiny_generator(&model).args(["--hidden", "8", "--epochs", "3", "--lr", "0.02", "--resume"]),
    );
    assert!(
        other_lr.contains("optimizer RMSprop lr 0.01, this run uses RMSprop lr 0.02"),
        "{other_lr}"
    );
}

#[test]
fn generator_trains_evaluates_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("g");
    train_tiny_generator(&model);
    check_generator_outputs(&model);
    check_eval_updates_the_card(&model);
    check_verify_agrees(&model);
    let again = dir.path().join("again");
    check_export_and_quantize_rebuild(&model, &again);
    check_generator_refuses_review_data(&model, &again);
}

/// Every file `train` writes, and a card that records the run.
fn check_generator_outputs(model: &Path) {
    for file in [
        "model.onnx",
        "model-step.onnx",
        "model.blob",
        "model-f32.blob",
        "card.json",
        "curves.png",
        "quant-error.png",
    ] {
        assert!(model.join(file).is_file(), "{file} missing");
    }
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["history"].as_array().unwrap().len(), 2);
    assert!(card["command"].as_str().unwrap().contains("--preset g"));
    assert_eq!(card["dims"]["hidden"], 8);
}

/// `eval` beats a uniform guess, int stays close to f32, and the card takes the figures.
fn check_eval_updates_the_card(model: &Path) {
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    let eval = json_of(cli().args(["eval", "--json", "--model", arg(model)]));
    let samples = eval["samples"].as_u64().unwrap();
    assert_eq!(samples, card["data"]["test_samples"].as_u64().unwrap());
    // Train and eval name the held-out windows alike.
    assert_eq!(eval["data"], card["evaluation"]["data"]);
    assert!(
        eval["data"]
            .as_str()
            .unwrap()
            .ends_with("shakespeare-macbeth.txt"),
        "{eval}"
    );
    // Better than a uniform guess over the ~45 symbols of Macbeth (ln 45 = 3.8).
    let loss = eval["float"]["loss"].as_f64().unwrap();
    assert!(loss < 3.8, "{eval}");
    let quantized = eval["quantized"]["loss"].as_f64().unwrap();
    assert!((loss - quantized).abs() < 0.1, "{eval}");
    // The card now holds what eval printed.
    let card_text = std::fs::read_to_string(model.join("card.json")).unwrap();
    let card: Value = serde_json::from_str(&card_text).unwrap();
    assert_eq!(
        card["metrics"]["held_out_cross_entropy_f32"],
        eval["float"]["loss"]
    );
    // A look at a sample (--limit) leaves the card and the plot alone, as --no-record does.
    let plot = std::fs::read(model.join("quant-error.png")).unwrap();
    let sample = json_of(cli().args(["eval", "--json", "--limit", "7", "--model", arg(model)]));
    assert_eq!(sample["samples"], 7);
    let named = json_of(
        cli()
            .args([
                "eval",
                "--json",
                "--no-record",
                "--limit",
                "5",
                "--model",
                arg(model),
            ])
            .arg("--corpus")
            .arg(data("shakespeare/shakespeare-macbeth.txt")),
    );
    assert_eq!(named["samples"], 5);
    let twice = success_stderr(
        cli()
            .args(["eval", "--no-record", "--limit", "5", "--model", arg(model)])
            .arg("--corpus")
            .args(vec![data("shakespeare/shakespeare-macbeth.txt"); 2]),
    );
    assert!(
        twice.contains("(the same file, or a copy): the held-out windows"),
        "{twice}"
    );
    assert_ne!(sample["float"]["loss"], eval["float"]["loss"]);
    assert_eq!(
        std::fs::read_to_string(model.join("card.json")).unwrap(),
        card_text
    );
    assert_eq!(std::fs::read(model.join("quant-error.png")).unwrap(), plot);
}

fn check_verify_agrees(model: &Path) {
    let verify = json_of(cli().args([
        "verify",
        "--json",
        "--sequences",
        "20",
        "--model",
        arg(model),
    ]));
    assert_eq!(verify["sequences"], 20);
    assert!(
        verify["max_abs_tract_vs_f32"].as_f64().unwrap() < 1e-4,
        "{verify}"
    );
    assert!(
        verify["max_abs_f32_vs_int"].as_f64().unwrap() < 0.05,
        "{verify}"
    );
    // A damaged ONNX, or the model's ONNX where its step ONNX goes, is named by the
    // card's record before tract reads it.
    let copy = model.with_file_name("verify-copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(model).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
        }
    }
    let onnx = std::fs::read(model.join("model.onnx")).unwrap();
    for (file, bytes) in [
        ("model.onnx", &onnx[..0]),
        ("model.onnx", &onnx[..onnx.len() / 2]),
        ("model-step.onnx", &onnx[..]),
    ] {
        std::fs::write(copy.join(file), bytes).unwrap();
        let err = failure(cli().args(["verify", "--model", arg(&copy)]));
        assert!(
            err.contains(&format!("{file} is ")) && err.contains("card.json records"),
            "{file}, {} bytes: {err}",
            bytes.len()
        );
        std::fs::copy(model.join(file), copy.join(file)).unwrap();
    }
    std::fs::remove_dir_all(&copy).unwrap();
}

/// `export` and `quantize` from the checkpoint rebuild the same files.
fn check_export_and_quantize_rebuild(model: &Path, again: &Path) {
    cli()
        .args(["export", "--checkpoint", arg(model), "--out", arg(again)])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(again.join("model.onnx")).unwrap(),
        std::fs::read(model.join("model.onnx")).unwrap()
    );
    // The training corpus calibrates on the windows training took, as many as the
    // card records (32, not the usual 256).
    let calibration = json_of(
        cli()
            .args(["quantize", "--json"])
            .args(["--checkpoint", arg(model), "--out", arg(again)])
            .arg("--corpus")
            .arg(data("shakespeare/shakespeare-macbeth.txt")),
    );
    check_same_blobs_and_calibration(model, again, &calibration);

    // Quantizing into the model directory itself updates its card.
    cli()
        .args([
            "quantize",
            "--checkpoint",
            arg(model),
            "--calibration",
            "50",
        ])
        .arg("--corpus")
        .arg(data("shakespeare/shakespeare-macbeth.txt"))
        .assert()
        .success();
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["calibration"]["sequences"], 50);
}

/// `again` holds the blobs of `model`, quantized with the calibration its card records.
fn check_same_blobs_and_calibration(model: &Path, again: &Path, calibration: &Value) {
    for blob in ["model.blob", "model-f32.blob"] {
        assert!(
            std::fs::read(again.join(blob)).unwrap() == std::fs::read(model.join(blob)).unwrap(),
            "{blob} differs"
        );
    }
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    assert_eq!(&card["calibration"], calibration);
}

/// The generator refuses review data, and the sentiment-only options.
fn check_generator_refuses_review_data(model: &Path, again: &Path) {
    let err = failure(
        cli()
            .args(["eval", "--model", arg(model), "--test"])
            .arg(data("imdb-sample/test.jsonl.gz")),
    );
    assert!(
        err.contains("generator model") && err.contains("--corpus"),
        "{err}"
    );
    let quantize_refused = |out: &Path, data_option: &str, path: &str| {
        failure(
            cli()
                .args(["quantize", "--checkpoint", arg(model), "--out", arg(out)])
                .arg(data_option)
                .arg(data(path)),
        )
    };
    let err = quantize_refused(again, "--train", "imdb-sample/train.jsonl.gz");
    assert!(
        err.contains("generator model") && err.contains("--corpus") && err.contains("not --train"),
        "{err}"
    );
    // A folder where a blob goes is refused before either blob is written.
    let blocked = again.with_file_name("blocked");
    std::fs::create_dir_all(blocked.join("model.blob")).unwrap();
    let err = quantize_refused(&blocked, "--corpus", "shakespeare/shakespeare-macbeth.txt");
    assert!(
        err.contains("is a folder, where lstm-edge writes the model's model.blob: move it away"),
        "{err}"
    );
    assert!(!blocked.join("model-f32.blob").exists());
    // A folder at a file quantize does not write is no obstacle.
    std::fs::remove_dir(blocked.join("model.blob")).unwrap();
    std::fs::create_dir(blocked.join("curves.png")).unwrap();
    cli()
        .args([
            "quantize",
            "--checkpoint",
            arg(model),
            "--out",
            arg(&blocked),
        ])
        .arg("--corpus")
        .arg(data("shakespeare/shakespeare-macbeth.txt"))
        .assert()
        .success();
}

/// `--write-arrays` output: `.npy` shapes, ids within the vocabulary, 0/1 labels.
fn check_written_arrays(dir: &Path, train: usize, validation: usize, steps: usize, rows: u16) {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["vocab_rows"], rows);
    assert_eq!(meta["steps"], steps);
    for (name, count) in [("train", train), ("validation", validation)] {
        let npy = |file: &str| {
            let bytes = std::fs::read(dir.join(format!("{name}_{file}.npy"))).unwrap();
            assert_eq!(&bytes[..6], b"\x93NUMPY");
            let start = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            let header = String::from_utf8_lossy(&bytes[10..start]).into_owned();
            (header, bytes[start..].to_vec())
        };
        let (header, ids) = npy("ids");
        assert!(
            header.contains("'<u2'") && header.contains(&format!("({count}, {steps})")),
            "{header}"
        );
        assert_eq!(ids.len(), count * steps * 2);
        assert!(ids
            .chunks(2)
            .all(|id| u16::from_le_bytes([id[0], id[1]]) < rows));
        let (header, labels) = npy("targets");
        assert!(
            header.contains("'<f4'") && header.contains(&format!("({count},)")),
            "{header}"
        );
        let labels: Vec<f32> = labels
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(labels.len(), count);
        assert!(labels.iter().all(|&l| l == 0.0 || l == 1.0));
        assert!(labels.contains(&0.0) && labels.contains(&1.0));
    }
}

#[test]
fn word_sentiment_trains_evaluates_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("w");
    let trained = word_model_with_a_test_set()
        .args([
            "--limit",
            "600",
            "--test-limit",
            "200",
            "--vocab-size",
            "800",
        ])
        .args([
            "--embed-dim",
            "8",
            "--hidden",
            "6",
            "--maxlen",
            "60",
            "--epochs",
            "2",
        ])
        .args([
            "--threads",
            "1",
            "--calibration",
            "32",
            "--write-arrays",
            "--out",
            arg(&model),
        ])
        .assert()
        .success();
    let printed = String::from_utf8_lossy(&trained.get_output().stdout).into_owned();
    assert!(
        printed.contains("int blob") && printed.contains("model written to"),
        "{printed}"
    );
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["data"]["train_samples"], 480);
    assert_eq!(card["data"]["validation_samples"], 120);
    assert_eq!(card["data"]["test_samples"], 200);
    assert_eq!(card["tokenizer"]["vocab_size"], 800);
    check_written_arrays(&model.join("arrays"), 480, 120, 60, 802);
    let int_size = std::fs::metadata(model.join("model.blob")).unwrap().len();
    assert_eq!(card["files"]["int_blob"].as_u64().unwrap(), int_size);

    let eval = json_of(cli().args(["eval", "--json", "--model", arg(&model)]));
    assert_eq!(eval["samples"], 200, "the card's test limit is reused");
    let accuracy = eval["quantized"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{eval}");
    assert!(eval["decision_agreement"].as_f64().unwrap() > 0.9, "{eval}");
    assert_eq!(
        card["evaluation"]["float"]["accuracy"], eval["float"]["accuracy"],
        "eval repeats the training run's evaluation"
    );

    let verify = json_of(cli().args([
        "verify",
        "--json",
        "--sequences",
        "16",
        "--model",
        arg(&model),
    ]));
    assert!(
        verify["max_abs_tract_vs_f32"].as_f64().unwrap() < 1e-4,
        "{verify}"
    );
    assert!(verify["decision_agreement_tract_vs_f32"].as_f64().unwrap() == 1.0);

    // A sentiment model refuses a corpus.
    let err = failure(
        cli()
            .args(["eval", "--model", arg(&model), "--corpus"])
            .arg(data("shakespeare/shakespeare-macbeth.txt")),
    );
    assert!(
        err.contains("sentiment model") && err.contains("--test"),
        "{err}"
    );

    // Its own training reviews, and a --limit past the file's end, are scored with a note.
    let own = cli()
        .args([
            "eval",
            "--no-record",
            "--model",
            arg(&model),
            "--limit",
            "5000",
            "--test",
        ])
        .arg(data("imdb-sample/train.jsonl.gz"))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&own.get_output().stderr).into_owned();
    assert!(
        stderr.contains("is the file this model trained on")
            && stderr.contains("--limit 5000, but")
            && stderr.contains("holds 4000 reviews: all of them are scored"),
        "{stderr}"
    );

    // An empty sample would check nothing.
    for command in ["eval", "verify"] {
        let err = failure(cli().args([command, "--model", arg(&model), "--limit", "0"]));
        assert!(err.contains("--limit must be at least 1"), "{err}");
    }

    // The card's test path naming another file (relative paths move with the
    // working folder) is told apart by its size.
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, "{\"label\": 1, \"text\": \"fine\"}\n").unwrap();
    let mut moved = card.clone();
    moved["job"]["data"]["test"] = other.display().to_string().into();
    std::fs::write(model.join("card.json"), moved.to_string()).unwrap();
    let err = failure(cli().args(["eval", "--model", arg(&model)]));
    assert!(
        err.contains("other.jsonl holds 1 reviews, but the test set") && err.contains("had 200"),
        "{err}"
    );
}

#[test]
fn word2vec_starts_a_frozen_embedding_that_training_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("w2v");
    cli()
        .args(["train", "--preset", "w", "--train"])
        .arg(data("imdb-sample/train.jsonl.gz"))
        .args([
            "--limit",
            "300",
            "--validation-split",
            "0.2",
            "--vocab-size",
            "400",
        ])
        .args(["--embed-dim", "8", "--hidden", "4", "--maxlen", "40"])
        .args(["--epochs", "1", "--word2vec", "2", "--freeze-embedding"])
        .args(["--threads", "1", "--calibration", "16", "--quiet", "--out"])
        .arg(&model)
        .assert()
        .success();
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["job"]["word2vec_epochs"], 2, "{}", card["job"]);
    assert_eq!(card["job"]["freeze_embedding"], true, "{}", card["job"]);
    assert!(card["command"].as_str().unwrap().contains("--word2vec 2"));
}

#[test]
fn data_stats_counts_every_review_once() {
    let stats = json_of(
        cli()
            .args(["data-stats", "--json", "--maxlen", "200"])
            .arg(data("imdb-sample/test.jsonl.gz")),
    );
    let n = stats["sequences"].as_u64().unwrap();
    assert!(n > 0);
    let parts = ["padded", "equal", "truncated"].map(|k| stats[k].as_u64().unwrap());
    assert_eq!(parts.iter().sum::<u64>(), n, "{stats}");
    assert!(parts[0] > 0 && parts[2] > 0, "{stats}");
    // The sample's test reviews are half positive.
    let classes = ["positive", "negative"].map(|k| stats[k].as_u64().unwrap());
    assert_eq!(classes, [n / 2, n / 2], "{stats}");
    let words = stats["average_len"].as_f64().unwrap();
    // Without --maxlen, chars are counted against preset c's 1500 and words against w's 200.
    let chars = json_of(
        cli()
            .args(["data-stats", "--json", "--chars"])
            .arg(data("imdb-sample/test.jsonl.gz")),
    );
    assert_eq!(chars["unit"], "chars");
    assert_eq!(chars["maxlen"], 1500);
    let default_words = json_of(
        cli()
            .args(["data-stats", "--json"])
            .arg(data("imdb-sample/test.jsonl.gz")),
    );
    assert_eq!(default_words, stats);
    assert!(
        chars["average_len"].as_f64().unwrap() > 3.0 * words,
        "{chars}"
    );
    let text = cli()
        .args(["data-stats"])
        .arg(data("imdb-sample/test.jsonl.gz"))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).into_owned();
    assert!(
        text.contains("truncated") && text.contains("average"),
        "{text}"
    );
}

#[test]
fn train_names_missing_or_unusable_data_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let blank = dir.path().join("blank.jsonl");
    let lines: String = (0..10)
        .map(|i| format!("{{\"label\": {}, \"text\": \" \"}}\n", i % 2))
        .collect();
    std::fs::write(&blank, lines).unwrap();
    let err = failure(cli().args([
        "train",
        "--preset",
        "w",
        "--train",
        arg(&blank),
        "--out",
        arg(&out),
    ]));
    assert!(
        err.contains("all 8 training reviews of") && err.contains("nothing to learn"),
        "{err}"
    );
    let err = failure(
        cli()
            .args(["train", "--preset", "w", "--train"])
            .arg(data("imdb-sample/train.jsonl.gz"))
            .args(["--test", arg(&blank), "--out", arg(&out)]),
    );
    assert!(
        err.contains("all 10 test reviews of") && err.contains("cannot test the model"),
        "{err}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"bad\xffname.jsonl"));
        std::fs::copy(data("imdb-sample/test.jsonl.gz"), &odd).unwrap();
        let err = failure(
            cli()
                .args(["train", "--preset", "w", "--train"])
                .arg(&odd)
                .args(["--out", arg(&out)]),
        );
        assert!(
            err.contains("bad\\xFFname.jsonl\" is not valid UTF-8") && err.contains("rename it"),
            "{err}"
        );
    }
    let err = failure(
        cli()
            .args([
                "train",
                "--preset",
                "w",
                "--train",
                "no/such/reviews.jsonl",
                "--out",
            ])
            .arg(&out),
    );
    assert!(err.contains("no/such/reviews.jsonl"), "{err}");
    let err = failure(cli().args(["train", "--preset", "w", "--out"]).arg(&out));
    assert!(err.contains("--train PATH"), "{err}");
    let err = failure(
        cli()
            .args(["train", "--preset", "g", "--train"])
            .arg(data("imdb-sample/train.jsonl.gz"))
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("--corpus"), "{err}");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let err = failure(
        cli()
            .args(["train", "--preset", "g", "--corpus", arg(&empty), "--out"])
            .arg(&out),
    );
    assert!(err.contains("empty") && err.contains("empty.txt"), "{err}");
    let short = dir.path().join("short.txt");
    std::fs::write(&short, b"to be").unwrap();
    let err = failure(
        cli()
            .args(["train", "--preset", "g", "--corpus", arg(&short), "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("short.txt") && err.contains("--maxlen") && err.contains("5 chars"),
        "{err}"
    );
    let empty_reviews = dir.path().join("none.jsonl");
    std::fs::write(&empty_reviews, b"").unwrap();
    let err = failure(
        cli()
            .args([
                "train",
                "--preset",
                "c",
                "--train",
                arg(&empty_reviews),
                "--out",
            ])
            .arg(&out),
    );
    assert!(err.contains("none.jsonl"), "{err}");
    let err = failure(
        cli()
            .args(["train", "--preset", "g", "--epochs", "0", "--corpus"])
            .arg(data("shakespeare/shakespeare-macbeth.txt"))
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("--epochs"), "{err}");
}

#[test]
fn train_rejects_conflicting_options_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let reviews = data("imdb-sample/train.jsonl.gz");
    let misuse: [(&[&str], &str); 7] = [
        (
            &["--preset", "w", "--freeze-embedding"],
            "--word-vectors FILE or --word2vec N",
        ),
        (
            &[
                "--preset",
                "w",
                "--word2vec",
                "2",
                "--word-vectors",
                "v.txt",
            ],
            "give one of the two",
        ),
        (&["--preset", "c", "--word2vec", "2"], "preset w"),
        (
            &["--preset", "w", "--vocab-size", "0"],
            "--vocab-size must be",
        ),
        (
            &["--preset", "w", "--calibration", "0"],
            "--calibration must be",
        ),
        (
            &["--preset", "w", "--lr-decay", "1.5"],
            "--lr-decay must be",
        ),
        (
            &["--preset", "w", "--validation-split", "0"],
            "give --test PATH or raise --validation-split",
        ),
    ];
    for (flags, expected) in misuse {
        let err = failure(
            cli()
                .arg("train")
                .args(flags)
                .arg("--train")
                .arg(&reviews)
                .arg("--out")
                .arg(&out),
        );
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
}

#[test]
fn train_rejects_options_of_another_preset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let corpus = [
        "--corpus".to_string(),
        data("shakespeare/shakespeare-macbeth.txt"),
    ];
    let reviews = ["--train".to_string(), data("imdb-sample/train.jsonl.gz")];
    let cases: [(&str, &[&str], &[String], &str); 10] = [
        ("g", &["--limit", "500"], &corpus, "review data"),
        ("g", &["--all-reviews"], &corpus, "review data"),
        ("g", &["--test-limit", "9"], &corpus, "review data"),
        ("r", &["--validation-split", "0.1"], &corpus, "review data"),
        ("g", &["--truncate", "pre"], &corpus, "review data"),
        ("g", &["--vocab-size", "100"], &corpus, "preset w"),
        ("c", &["--vocab-size", "100"], &reviews, "preset w"),
        ("c", &["--embed-dim", "16"], &reviews, "preset w"),
        ("g", &["--embed-dim", "16"], &corpus, "preset w"),
        ("w", &["--window-step", "2"], &reviews, "presets g and r"),
    ];
    for (preset, flags, data_args, what) in cases {
        let err = failure(
            cli()
                .args(["train", "--preset", preset])
                .args(flags)
                .args(data_args)
                .arg("--out")
                .arg(&out),
        );
        assert!(
            err.contains(&format!("{} applies to", flags[0]))
                && err.contains(what)
                && err.contains(&format!("drop {}", flags[0])),
            "{preset} {flags:?}: {err}"
        );
    }
    let err = failure(
        cli()
            .args(["train", "--preset", "w", "--test-limit", "9"])
            .args(&reviews)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("--test-limit samples the --test set"), "{err}");
    // Settings that cannot mean what they say.
    let nonsense: [(&str, &[&str], &str); 2] = [
        ("r", &["--cell", "lstm"], "with --cell lstm it is preset g"),
        (
            "g",
            &["--threads", "4294967297"],
            "--threads must be at most 1024",
        ),
    ];
    for (preset, flags, expected) in nonsense {
        let err = failure(
            cli()
                .args(["train", "--preset", preset])
                .args(flags)
                .args(&corpus)
                .arg("--out")
                .arg(&out),
        );
        assert!(err.contains(expected), "{preset} {flags:?}: {err}");
    }
    for head in ["flatten", "mean"] {
        let err = failure(
            cli()
                .args(["train", "--preset", "g", "--head", head])
                .args(&corpus)
                .arg("--out")
                .arg(&out),
        );
        assert!(
            err.contains(&format!("--head {head} scores a whole review")),
            "{err}"
        );
        assert!(err.contains("use --head last"), "{err}");
    }
    let err = failure(
        cli()
            .args(["train", "--preset", "w", "--validation-split", "-0.1"])
            .args(&reviews)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("validation"), "{err}");
    assert!(!err.contains("unexpected argument"), "{err}");
    let err = failure(cli().args(["train", "--preset", "x", "--out"]).arg(&out));
    assert!(err.contains("invalid value 'x'"), "{err}");
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}

#[test]
fn eval_verify_export_quantize_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    for sub in ["eval", "verify"] {
        let err = failure(cli().args([sub, "--model", arg(&missing)]));
        assert!(err.contains("missing does not exist"), "{sub}: {err}");
    }
    // A directory without a card.
    let err = failure(cli().args(["eval", "--model", arg(dir.path())]));
    assert!(err.contains("card.json"), "{err}");
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("card.json"), b"{not json").unwrap();
    let err = failure(cli().args(["verify", "--model", arg(&broken)]));
    assert!(
        err.contains("card.json: not valid JSON") && err.contains("restore the card.json"),
        "{err}"
    );

    let corrupt = dir.path().join("corrupt.ckpt");
    std::fs::write(&corrupt, b"LSTMEDCK but not really a checkpoint").unwrap();
    let err = failure(cli().args(["export", "--checkpoint", arg(&corrupt)]));
    assert!(err.contains("corrupt.ckpt"), "{err}");
    let err = failure(cli().args(["export", "--checkpoint", arg(&missing)]));
    assert!(err.contains("missing"), "{err}");
    let err = failure(cli().args([
        "quantize",
        "--checkpoint",
        arg(&corrupt),
        "--corpus",
        "x.txt",
    ]));
    assert!(err.contains("corrupt.ckpt"), "{err}");
}

#[test]
fn data_stats_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let err = failure(cli().args(["data-stats", "no/such/file.jsonl"]));
    assert!(err.contains("no/such/file.jsonl"), "{err}");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, b"").unwrap();
    let err = failure(cli().args(["data-stats", arg(&empty)]));
    assert!(
        err.contains("empty.jsonl") && err.contains("no reviews"),
        "{err}"
    );
    let latin1 = dir.path().join("latin1.jsonl");
    std::fs::write(&latin1, b"{\"label\": 1, \"text\": \"caf\xe9\"}\n").unwrap();
    let err = failure(cli().args(["data-stats", arg(&latin1)]));
    assert!(err.contains("latin1.jsonl"), "{err}");
    let err = failure(
        cli()
            .args(["data-stats", "--maxlen", "0"])
            .arg(data("imdb-sample/test.jsonl.gz")),
    );
    assert!(err.contains("--maxlen"), "{err}");
}

/// A mean head runs over a whole review in the runtime, so the test figures that
/// training writes are taken on whole reviews too, not on the `--maxlen` it trains on.
#[test]
fn a_mean_heads_card_figures_are_on_whole_reviews_as_eval_scores_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("c-mean");
    tiny_char_sentiment(&model)
        .args(["--head", "mean", "--test"])
        .arg(data("imdb-sample/test.jsonl.gz"))
        .args(["--test-limit", "40", "--quiet"])
        .assert()
        .success();
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    let eval = json_of(cli().args(["eval", "--json", "--model", arg(&model)]));
    assert_eq!(eval["samples"], 40, "{eval}");
    // A --limit past the 40 the card's run sampled stays within them.
    let limited = json_of(cli().args([
        "eval",
        "--json",
        "--no-record",
        "--limit",
        "100",
        "--model",
        arg(&model),
    ]));
    assert_eq!(limited["samples"], 40, "{limited}");
    for path in ["float", "quantized"] {
        for metric in ["loss", "accuracy"] {
            assert_eq!(
                card["evaluation"][path][metric], eval[path][metric],
                "{path} {metric}: card {card}, eval {eval}"
            );
        }
    }

    // Calibration, though, takes reviews cut as training cut them (20 chars), so
    // `quantize` on the training file rebuilds the blobs `train` wrote.
    let again = dir.path().join("again");
    let calibration = json_of(
        cli()
            .args(["quantize", "--json", "--calibration", "8"])
            .args(["--checkpoint", arg(&model), "--out", arg(&again), "--train"])
            .arg(data("imdb-sample/train.jsonl.gz")),
    );
    assert_eq!(calibration["steps"], 8 * 20, "{calibration}");
    check_same_blobs_and_calibration(&model, &again, &calibration);
    // An empty review (scored as the initial state) is verified as the runtime reads it.
    let with_empty = dir.path().join("with-empty.jsonl");
    std::fs::write(
        &with_empty,
        "{\"label\": 1, \"text\": \"a fine film\"}\n{\"label\": 0, \"text\": \"\"}\n",
    )
    .unwrap();
    let report = json_of(cli().args([
        "verify",
        "--json",
        "--model",
        arg(&model),
        "--test",
        arg(&with_empty),
    ]));
    assert_eq!(report["sequences"], 2, "{report}");
    assert!(
        report["max_abs_tract_vs_f32"].as_f64().unwrap() < 1e-4,
        "{report}"
    );
    let blank = dir.path().join("blank.jsonl");
    std::fs::write(&blank, "{\"label\": 1, \"text\": \"\"}\n".repeat(3)).unwrap();
    let nowhere = dir.path().join("nowhere");
    let err = failure(
        cli()
            .args([
                "quantize",
                "--checkpoint",
                arg(&model),
                "--out",
                arg(&nowhere),
            ])
            .args(["--train", arg(&blank)]),
    );
    assert!(
        err.contains("the 3 calibration texts are all empty"),
        "{err}"
    );
    assert!(
        !nowhere.exists(),
        "the failed quantize left the folder it made"
    );
    for command in ["eval", "verify"] {
        let err = failure(cli().args([command, "--model", arg(&model), "--test", arg(&blank)]));
        assert!(
            err.contains("all 3 reviews scored from") && err.contains("nothing to score"),
            "{command}: {err}"
        );
    }

    // A recording eval takes the folder's lock before it scores anything.
    std::fs::create_dir(model.join(".lstm-edge.lock")).unwrap();
    let err = failure(cli().args(["eval", "--model", arg(&model)]));
    assert!(
        err.contains("pass --no-record to only print them")
            && err.contains("is a folder, where lstm-edge keeps its lock file: remove it")
            && !err.contains("accuracy"),
        "{err}"
    );
    cli()
        .args(["eval", "--no-record", "--model", arg(&model)])
        .assert()
        .success();
}

#[test]
fn pre_truncation_keeps_a_reviews_ending_from_training_to_scoring() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("w-pre");
    cli()
        .args(["train", "--preset", "w", "--train"])
        .arg(data("imdb-sample/train.jsonl.gz"))
        .args(["--limit", "200", "--vocab-size", "300", "--embed-dim", "4"])
        .args(["--hidden", "4", "--maxlen", "30", "--epochs", "1"])
        .args(["--truncate", "pre", "--threads", "1", "--calibration", "16"])
        .args(["--quiet", "--out", arg(&model)])
        .assert()
        .success();
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["hyperparameters"]["truncate"], "Pre", "{card}");
    let preprocessing = card["data"]["preprocessing"].as_str().unwrap();
    assert!(preprocessing.contains("pre-truncate"), "{preprocessing}");
    let inspect = json_of(cli().args(["inspect", "--json", arg(&model)]));
    assert_eq!(
        inspect["head"], "flatten over the last 30 tokens",
        "{inspect}"
    );

    // Only the last 30 words count: other openings score the same, other endings not.
    let ending = "the plot was dull and the acting was bad , but the music was good . ".repeat(3);
    let score = |text: &str| -> f64 {
        json_of(cli().args(["score", "--json", "-m", arg(&model), text]))["score"]
            .as_f64()
            .unwrap()
    };
    let with_ending = score(&format!("a wonderful film . {ending}"));
    assert_eq!(
        with_ending,
        score(&format!("an awful , awful film . {ending}"))
    );
    assert_ne!(with_ending, score(&format!("{ending} a wonderful film .")));

    // tract on the ONNX sees the same last 30 ids as the blobs.
    let verify = json_of(
        cli()
            .args([
                "verify",
                "--json",
                "--sequences",
                "24",
                "--model",
                arg(&model),
            ])
            .arg("--test")
            .arg(data("imdb-sample/test.jsonl.gz")),
    );
    assert!(
        verify["max_abs_tract_vs_f32"].as_f64().unwrap() < 1e-4,
        "{verify}"
    );

    let err = failure(
        cli()
            .args(["train", "--preset", "g", "--truncate", "pre", "--corpus"])
            .arg(data("shakespeare/shakespeare-macbeth.txt"))
            .args(["--out", arg(&dir.path().join("g"))]),
    );
    assert!(err.contains("--truncate applies to review data"), "{err}");
}

#[test]
fn retraining_into_a_model_directory_leaves_nothing_of_the_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    tiny_generator(&out)
        .args(["--hidden", "8", "--epochs", "2", "--quiet"])
        .args(["--keep-best", "--write-arrays"])
        .assert()
        .success();
    for extra in [
        "model-step.onnx",
        "checkpoint.best.ckpt",
        "arrays/meta.json",
    ] {
        assert!(out.join(extra).exists(), "{extra}");
    }
    // Files of the user's own in the same folder are not the earlier run's.
    std::fs::write(out.join("arrays/mine.csv"), "a,b\n").unwrap();
    std::fs::write(out.join("notes.tmp"), "notes").unwrap();
    tiny_char_sentiment(&out).arg("--quiet").assert().success();
    for kept in ["arrays/mine.csv", "notes.tmp"] {
        assert!(out.join(kept).exists(), "{kept} was removed");
    }
    for stale in [
        "model-step.onnx",
        "checkpoint.best.ckpt",
        "arrays/meta.json",
        "arrays/train_ids.npy",
    ] {
        assert!(
            !out.join(stale).exists(),
            "{stale} of the earlier run is still there"
        );
    }
    assert!(out.join("model.onnx").exists() && out.join("card.json").exists());
}

#[test]
fn a_run_that_fails_before_its_first_checkpoint_leaves_the_earlier_model_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    tiny_generator(&out)
        .args(["--hidden", "8", "--epochs", "2", "--quiet", "--keep-best"])
        .assert()
        .success();
    let best = std::fs::read(out.join("checkpoint.best.ckpt")).unwrap();
    // Resumed without --keep-best, which also set validation apart: named as such.
    let err = failure(tiny_generator(&out).args(["--hidden", "8", "--epochs", "3", "--resume"]));
    assert!(
        err.contains(
            "which kept its best epoch and set validation reviews apart for it: give \
             --keep-best"
        ),
        "{err}"
    );
    // No machine has GPU 999, so this run fails before it trains.
    let err = failure(tiny_generator(&out).args(["--hidden", "8", "--device", "cuda:999"]));
    assert!(err.contains("CUDA"), "{err}");
    // The device is checked before the data is read (word2vec may train for minutes).
    let err = failure(
        cli()
            .args(["train", "--preset", "g", "--corpus"])
            .arg(dir.path().join("no-such-corpus.txt"))
            .args([
                "--device",
                "cuda:999",
                "--out",
                arg(&dir.path().join("never")),
            ]),
    );
    assert!(
        err.contains("CUDA") && !err.contains("no-such-corpus"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint.best.ckpt")).unwrap(),
        best,
        "the earlier run's best checkpoint is gone"
    );
    cli()
        .args(["export", "--checkpoint", arg(&out), "--out"])
        .arg(dir.path().join("exported"))
        .assert()
        .success();
    // Another run's checkpoint in its place, the best one gone: the folder names what
    // is missing (export elsewhere must not read the other weights), the file the mismatch.
    let other = dir.path().join("other");
    tiny_generator(&other)
        .args(["--hidden", "8", "--epochs", "1", "--quiet", "--lr", "0.002"])
        .assert()
        .success();
    std::fs::copy(other.join("checkpoint.ckpt"), out.join("checkpoint.ckpt")).unwrap();
    std::fs::remove_file(out.join("checkpoint.best.ckpt")).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let err = failure(cli().args([
        "export",
        "--checkpoint",
        arg(&out),
        "--out",
        arg(&elsewhere),
    ]));
    assert!(
        err.contains(
            "checkpoint.best.ckpt does not exist: the card beside it says its run kept epoch"
        ) && err.contains("checkpoint.ckpt there holds another epoch's weights"),
        "{err}"
    );
    assert!(!elsewhere.exists());
    let err = failure(cli().args(["export", "--checkpoint", arg(&out.join("checkpoint.ckpt"))]));
    assert!(
        err.contains("checkpoint.ckpt holds the weights after epoch 1 of another run"),
        "{err}"
    );
}

#[test]
fn train_refuses_its_training_reviews_as_the_test_set_and_says_what_it_samples() {
    let dir = tempfile::tempdir().unwrap();
    let reviews = data("imdb-sample/train.jsonl.gz");
    let err = failure(
        cli()
            .args(["train", "--preset", "w", "--train", &reviews, "--test"])
            .arg(repo().join("data/imdb-sample/../imdb-sample/train.jsonl.gz"))
            .args(["--out", arg(&dir.path().join("w"))]),
    );
    assert!(
        err.contains("--train and --test are the same data"),
        "{err}"
    );
    // 4,000 bundled reviews, of which --limit takes 100: the run says so.
    let stderr = success_stderr(&mut tiny_char_sentiment(&dir.path().join("c")));
    assert!(
        stderr.contains("note: using 100 of the 4000 reviews"),
        "{stderr}"
    );
    let card = std::fs::read_to_string(dir.path().join("c/card.json")).unwrap();
    assert!(
        card.contains("100 of the 4000 reviews of the training data"),
        "{card}"
    );
    assert!(!stderr.contains("word for word"), "{stderr}");

    // A file that repeats its reviews puts some on both sides of the split.
    let twice = dir.path().join("twice.jsonl");
    let lines: String = (0..50)
        .map(|i| {
            format!(
                "{{\"label\": {}, \"text\": \"review {i} of a film\"}}\n",
                i % 2
            )
        })
        .collect();
    std::fs::write(&twice, lines.repeat(2)).unwrap();
    let stderr = success_stderr(
        cli()
            .args(["train", "--preset", "c", "--train", arg(&twice)])
            .args(["--maxlen", "20", "--hidden", "4", "--epochs", "1"])
            .args(["--threads", "1", "--calibration", "8"])
            .args(["--out", arg(&dir.path().join("twice"))]),
    );
    assert!(
        stderr.contains("reviews are word for word among the training reviews")
            && stderr.contains("twice.jsonl repeats reviews"),
        "{stderr}"
    );

    // So does a corpus file given twice.
    let macbeth = data("shakespeare/shakespeare-macbeth.txt");
    let stderr = success_stderr(
        tiny_generator(&dir.path().join("g"))
            .args(["--hidden", "4", "--epochs", "1", "--corpus", &macbeth]),
    );
    assert!(
        stderr.contains("shakespeare-macbeth.txt holds the text of")
            && stderr.contains("trained on twice"),
        "{stderr}"
    );
    let copy = dir.path().join("copy.txt");
    std::fs::copy(&macbeth, &copy).unwrap();
    let stderr = success_stderr(tiny_generator(&dir.path().join("g2")).args([
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--corpus",
        arg(&copy),
    ]));
    assert!(
        stderr.contains("copy.txt holds the text of") && stderr.contains("shakespeare-macbeth.txt"),
        "{stderr}"
    );
}

#[test]
fn eval_refuses_blobs_that_are_not_the_cards_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("g");
    std::fs::create_dir(&model).unwrap();
    for file in ["card.json", "model.blob", "model-f32.blob"] {
        std::fs::copy(repo().join("models/g").join(file), model.join(file)).unwrap();
    }
    let eval = || {
        failure(
            cli()
                .args(["eval", "--model", arg(&model), "--corpus"])
                .arg(data("shakespeare/shakespeare-macbeth.txt")),
        )
    };
    std::fs::copy(
        repo().join("models/g-gru/model.blob"),
        model.join("model.blob"),
    )
    .unwrap();
    let err = eval();
    assert!(
        err.contains("model.blob is not the model its card.json describes") && err.contains("GRU"),
        "{err}"
    );
    std::fs::copy(model.join("model-f32.blob"), model.join("model.blob")).unwrap();
    let err = eval();
    assert!(
        err.contains("model.blob holds f32 weights where the integer ones belong"),
        "{err}"
    );
    let card = std::fs::read(model.join("card.json")).unwrap();
    assert_eq!(
        card,
        std::fs::read(repo().join("models/g/card.json")).unwrap()
    );
    // A card edited to say the model keeps upper case describes another tokenizer.
    std::fs::copy(repo().join("models/g/model.blob"), model.join("model.blob")).unwrap();
    let edited = String::from_utf8(card)
        .unwrap()
        .replace("\"lowercase\": true", "\"lowercase\": false");
    std::fs::write(model.join("card.json"), edited).unwrap();
    let err = eval();
    assert!(
        err.contains(
            "is not the model its card.json describes (blob vs card: lowercase true vs false)"
        ),
        "{err}"
    );
}

/// A child process killed if the test fails before it ends.
#[cfg(unix)]
struct KilledOnDrop(std::process::Child);

#[cfg(unix)]
impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `child` the signal `kill` calls `name` ("-INT").
#[cfg(unix)]
fn send_signal(child: &std::process::Child, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Starts `train --preset g` on hamlet with `args`, sends it SIGINT `times` in a
/// row once a stderr line starts with `at`, and returns the signal that ended it and
/// the stderr after that line.
#[cfg(unix)]
fn interrupt_training(args: &[&str], at: &str, times: usize) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = KilledOnDrop(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("lstm-edge"))
            .env("RUST_BACKTRACE", "0")
            .args(["train", "--preset", "g", "--corpus"])
            .arg(data("shakespeare/shakespeare-hamlet.txt"))
            .args(["--window-step", "1", "--threads", "1"])
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with(at) {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "training ended before a line starting {at:?}"
        );
    }
    // Back to back, so that a second signal comes while the first is handled.
    let pid = child.0.id() as libc::pid_t;
    for _ in 0..times {
        // SAFETY: kill(2) on the child's pid, which is not reaped before `wait`.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    }
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    use std::os::unix::process::ExitStatusExt;
    (child.0.wait().unwrap().signal(), rest)
}

/// Ctrl-C before the first epoch is saved says there is nothing to resume, and
/// removes the folder if the run made it, not one that was there before; pressed
/// twice, too (`timeout -s INT` signals the process, then its group).
#[cfg(unix)]
#[test]
fn a_run_interrupted_before_its_first_epoch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("g");
    let twice = dir.path().join("twice");
    let earlier = dir.path().join("earlier");
    std::fs::create_dir(&earlier).unwrap();
    for (out, name, times) in [
        (&made, "g: ", 1),
        (&twice, "twice: ", 2),
        (&earlier, "earlier: ", 1),
    ] {
        // "NAME: N training, ..." comes once the folder is made and locked; an epoch
        // of LSTM(128) over every window of the play takes seconds more.
        let (signal, rest) = interrupt_training(&["--epochs", "1", "--out", arg(out)], name, times);
        assert_eq!(signal, Some(libc::SIGINT), "{rest}");
        assert!(
            rest.contains(
                "interrupted before the first epoch was saved: there is nothing to resume"
            ),
            "{rest}"
        );
    }
    for made in [made, twice] {
        assert!(
            !made.exists(),
            "the interrupted run left the folder it made: {}",
            made.display()
        );
    }
    let left: Vec<_> = std::fs::read_dir(&earlier).unwrap().collect();
    assert!(left.is_empty(), "the interrupted run left {left:?}");
}

/// Ctrl-C during training ends the run by that signal and says how to go on.
#[cfg(unix)]
#[test]
fn an_interrupted_run_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g");
    // Interrupted as soon as epoch 1's line comes: it comes once the epoch is saved.
    let (signal, rest) = interrupt_training(
        &["--hidden", "16", "--epochs", "50", "--out", arg(&out)],
        "epoch 1/50",
        1,
    );
    assert_eq!(signal, Some(libc::SIGINT), "{rest}");
    assert!(
        rest.contains("interrupted: the epochs whose lines were printed are saved in ")
            && rest.contains("--resume continues from there"),
        "{rest}"
    );
    assert!(out.join("checkpoint.ckpt").is_file());
    assert!(
        !out.join(".lstm-edge.lock").exists(),
        "the interrupted run left its lock file"
    );
    let resumed = cli()
        .args(["train", "--preset", "g", "--corpus"])
        .arg(data("shakespeare/shakespeare-hamlet.txt"))
        .args(["--hidden", "16", "--window-step", "1", "--threads", "1"])
        .args(["--epochs", "1", "--resume", "--out", arg(&out)])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        resumed.status.success() && said.contains("checkpoint.ckpt already holds 1 of 1 epochs"),
        "{}: {said}",
        resumed.status
    );
}

/// SIGTERM to a command that writes a model folder, other than `train`, removes
/// its lock file too (rather than leaving it for the next command to take over);
/// a SIGINT the command inherited as ignored (`trap '' INT`) stays ignored.
#[cfg(unix)]
#[test]
fn an_interrupted_quantize_leaves_no_lock() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("g");
    let out = dir.path().join("again");
    // LSTM(64) over 40-char windows: calibrating on every window of the play
    // holds the lock for about 2 s.
    cli()
        .args(["train", "--preset", "g", "--corpus"])
        .arg(data("shakespeare/shakespeare-macbeth.txt"))
        .args(["--window-step", "40", "--hidden", "64", "--epochs", "1"])
        .args(["--threads", "1", "--calibration", "8", "--quiet"])
        .args(["--out", arg(&model)])
        .assert()
        .success();
    let lock = out.join(".lstm-edge.lock");
    // Sends `signal` to a quantize into `out` once it holds the lock; its status.
    let quantize_until = |trap: &str, signal: &str| {
        let mut child = KilledOnDrop(
            std::process::Command::new("sh")
                .args(["-c", &format!("{trap} exec \"$0\" \"$@\"")])
                .arg(assert_cmd::cargo::cargo_bin("lstm-edge"))
                .args(["quantize", "--checkpoint", arg(&model), "--out", arg(&out)])
                .arg("--corpus")
                .arg(data("shakespeare/shakespeare-macbeth.txt"))
                .args(["--calibration", "100000"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        // The file names the process once the lock is taken and registered.
        let pid = child.0.id().to_string();
        while std::fs::read_to_string(&lock).ok().as_deref() != Some(pid.as_str()) {
            assert!(
                child.0.try_wait().unwrap().is_none(),
                "quantize ended before it took the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        send_signal(&child.0, signal);
        child.0.wait().unwrap()
    };
    let status = quantize_until("", "-TERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(
        !lock.exists(),
        "the interrupted quantize left its lock file"
    );
    let status = quantize_until("trap '' INT;", "-INT");
    assert!(
        status.success(),
        "an ignored SIGINT stopped quantize: {status:?}"
    );
    assert!(!lock.exists(), "quantize left its lock file");
}

/// The test set `eval` rebuilds from the card is the one training recorded, for word
/// models that keep a review's end or read it whole (its checksum matches).
#[test]
fn eval_rebuilds_the_recorded_test_set_of_word_models() {
    let dir = tempfile::tempdir().unwrap();
    for (name, options) in [
        ("pre", &["--truncate", "pre"][..]),
        ("last", &["--head", "last"]),
        ("mean-gru", &["--head", "mean", "--cell", "gru"]),
    ] {
        let model = dir.path().join(name);
        word_model_with_a_test_set()
            .args([
                "--limit",
                "200",
                "--test-limit",
                "60",
                "--vocab-size",
                "300",
            ])
            .args(["--embed-dim", "4", "--hidden", "4", "--maxlen", "30"])
            .args([
                "--epochs",
                "1",
                "--threads",
                "1",
                "--calibration",
                "8",
                "--quiet",
            ])
            .args(options)
            .args(["--out", arg(&model)])
            .assert()
            .success();
        let card: Value =
            serde_json::from_str(&std::fs::read_to_string(model.join("card.json")).unwrap())
                .unwrap();
        assert!(card["data"]["test_fingerprint"].is_u64(), "{card}");
        let eval = json_of(cli().args(["eval", "--json", "--model", arg(&model)]));
        assert_eq!(eval["samples"], 60, "{name}: {eval}");
        assert_eq!(
            eval["float"]["accuracy"], card["evaluation"]["float"]["accuracy"],
            "{name}"
        );
    }
}

/// `eval` from the card's recorded data refuses a file that changed since training
/// (or another file of that name here) rather than recording other figures.
#[test]
fn eval_refuses_recorded_data_that_changed_since_training() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("play.txt");
    std::fs::copy(data("shakespeare/shakespeare-macbeth.txt"), &corpus).unwrap();
    let generator = dir.path().join("g");
    cli()
        .args(["train", "--preset", "g", "--corpus", arg(&corpus)])
        .args(["--maxlen", "12", "--window-step", "40", "--hidden", "8"])
        .args(["--epochs", "1", "--threads", "1", "--calibration", "8"])
        .args(["--quiet", "--out", arg(&generator)])
        .assert()
        .success();
    // As long, other letters: as many windows, other text.
    let play = std::fs::read_to_string(&corpus).unwrap();
    std::fs::write(&corpus, play.replace('a', "e")).unwrap();
    // Scoring part of it (--limit, or verify's sample) checks it whole first.
    for part in [
        &["eval", "--limit", "5"][..],
        &["verify", "--sequences", "5"],
    ] {
        let err = failure(cli().args(part).args(["--model", arg(&generator)]));
        assert!(
            err.contains("holds other text than the test set") && err.contains("give --corpus"),
            "{part:?}: {err}"
        );
    }
    std::fs::write(
        &corpus,
        "other text, and much shorter than the play. ".repeat(40),
    )
    .unwrap();
    let err = failure(cli().args(["eval", "--model", arg(&generator)]));
    assert!(
        err.contains("the text changed since training") && err.contains("give --corpus"),
        "{err}"
    );
    // A char the generator never saw is named with its file and line.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, "the king is dead\nlong live act 5\n".repeat(40)).unwrap();
    let err = failure(cli().args(["eval", "--model", arg(&generator), "--corpus", arg(&other)]));
    assert!(
        err.contains("other.txt:2: '5' (U+0035) is not among the model's chars"),
        "{err}"
    );

    let test = dir.path().join("test.jsonl");
    let reviews = |labels: &dyn Fn(usize) -> usize, count: usize| -> String {
        (0..count)
            .map(|i| {
                format!(
                    "{{\"label\": {}, \"text\": \"film {i} was fine\"}}\n",
                    labels(i)
                )
            })
            .collect()
    };
    std::fs::write(&test, reviews(&|i| i % 2, 30)).unwrap();
    let sentiment = dir.path().join("c");
    tiny_char_sentiment(&sentiment)
        .args(["--quiet", "--test", arg(&test)])
        .assert()
        .success();
    cli()
        .args(["eval", "--model", arg(&sentiment)])
        .assert()
        .success();
    // Every label flipped: as many reviews, the same texts.
    std::fs::write(&test, reviews(&|i| 1 - i % 2, 30)).unwrap();
    for limit in [None, Some("3")] {
        let err = failure(
            cli()
                .args(["eval", "--model", arg(&sentiment)])
                .args(limit.map(|l| ["--limit", l]).into_iter().flatten()),
        );
        assert!(
            err.contains("holds other texts or labels than the test set")
                && err.contains("give --test PATH"),
            "{limit:?}: {err}"
        );
    }
    std::fs::write(&test, reviews(&|i| i % 2, 31)).unwrap();
    let err = failure(cli().args(["eval", "--model", arg(&sentiment), "--limit", "3"]));
    assert!(
        err.contains("it is another file of that name") && err.contains("give --test PATH"),
        "{err}"
    );
    // Named with --test, other data is scored but not recorded; the card's own reviews
    // under another name are recorded, as their count and checksum say.
    let card_text = || std::fs::read_to_string(sentiment.join("card.json")).unwrap();
    let before = card_text();
    let note =
        success_stderr(cli().args(["eval", "--model", arg(&sentiment), "--test", arg(&test)]));
    assert!(note.contains("note: not recorded"), "{note}");
    assert_eq!(card_text(), before);
    let copy = dir.path().join("copy.jsonl");
    std::fs::write(&copy, reviews(&|i| i % 2, 30)).unwrap();
    let note =
        success_stderr(cli().args(["eval", "--model", arg(&sentiment), "--test", arg(&copy)]));
    assert!(
        !note.contains("not recorded") && note.contains("now hold these figures"),
        "{note}"
    );

    // A card written before test sets were checksummed takes its own set's checksum
    // when eval scores that set, and not when it scores other data.
    std::fs::write(&test, reviews(&|i| i % 2, 30)).unwrap();
    let card_path = sentiment.join("card.json");
    let card = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&card_path).unwrap()).unwrap()
    };
    let checksum = card()["data"]["test_fingerprint"].clone();
    assert!(checksum.is_u64(), "{checksum}");
    let mut old = card();
    old["data"]
        .as_object_mut()
        .unwrap()
        .remove("test_fingerprint");
    std::fs::write(&card_path, old.to_string()).unwrap();
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, reviews(&|i| i % 2, 31)).unwrap();
    let note =
        success_stderr(cli().args(["eval", "--model", arg(&sentiment), "--test", arg(&other)]));
    assert!(
        note.contains("which it knows by its paths and count (a card of an earlier build"),
        "{note}"
    );
    assert!(card()["data"]["test_fingerprint"].is_null(), "{}", card());
    // Such a card knows its set by its paths and count: a --limit that takes it all
    // records (without adopting a checksum, which only the plain run takes).
    let note = success_stderr(cli().args(["eval", "--model", arg(&sentiment), "--limit", "30"]));
    assert!(
        note.contains("now hold these figures") && !note.contains("not recorded"),
        "{note}"
    );
    assert!(card()["data"]["test_fingerprint"].is_null(), "{}", card());
    let note = success_stderr(cli().args(["eval", "--model", arg(&sentiment)]));
    assert!(note.contains("had no checksum of its test set"), "{note}");
    assert_eq!(card()["data"]["test_fingerprint"], checksum);
    std::fs::write(&test, reviews(&|i| 1 - i % 2, 30)).unwrap();
    let err = failure(cli().args(["eval", "--model", arg(&sentiment)]));
    assert!(err.contains("holds other texts or labels"), "{err}");
}

/// Settings that cannot act as given are named, even with --quiet: windows that skip
/// text, a patience the run never reaches, a limit past the data, a resume of nothing.
#[test]
fn settings_that_cannot_act_as_given_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = success_stderr(tiny_generator(&dir.path().join("g")).args([
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--patience",
        "1",
        "--resume",
        "--quiet",
    ]));
    for expected in [
        "warning: --window-step 40 is more than a window's 13 chars (--maxlen 12 and the char it predicts): 67% of the text",
        "note: --patience 1 cannot stop a run of 2 epochs early (that takes at least 3 epochs)",
        "note: nothing to resume (",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    // A checkpoint that is a broken link, beside an earlier run's best checkpoint.
    let linked = dir.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::fs::write(linked.join("checkpoint.best.ckpt"), b"an earlier run's").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("gone.ckpt"), linked.join("checkpoint.ckpt"))
        .unwrap();
    let stderr = success_stderr(
        tiny_generator(&linked).args(["--hidden", "4", "--epochs", "1", "--resume", "--quiet"]),
    );
    #[cfg(unix)]
    assert!(
        stderr.contains(
            "checkpoint.ckpt is a link to a file that does not exist): training from epoch 1;"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("checkpoint.best.ckpt there, an earlier run's, is replaced"),
        "{stderr}"
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let stderr = success_stderr(
        cli()
            .args(["train", "--preset", "c", "--train"])
            .arg(data("imdb-sample/train.jsonl.gz"))
            .args([
                "--limit", "1000000", "--maxlen", "20", "--hidden", "4", "--quiet",
            ])
            .args(["--epochs=1", "--calibration=8", "--threads"])
            .arg((cores + 1).to_string())
            .args(["--out", arg(&dir.path().join("c"))]),
    );
    assert!(
        stderr.contains("note: --limit 1000000, but ") && stderr.contains("all of them are used"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: --threads {} is more than the {cores} cores",
            cores + 1
        )),
        "{stderr}"
    );
    // export and quantize name --out when it is a file.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    for command in ["export", "quantize"] {
        let err = failure(
            cli()
                .args([command, "--checkpoint", arg(&dir.path().join("g"))])
                .args(["--out", arg(&file)]),
        );
        assert!(
            err.contains("is a file: give a folder for the model"),
            "{command}: {err}"
        );
    }
}
