//! Foreign ONNX models (PyTorch, Keras) imported into blobs and compared with the
//! outputs their own framework computed (tests/fixtures/foreign, made by
//! scripts/make-foreign-fixtures.sh), and unsupported graphs refused by name.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::host::HostModel;
use lstm_edge_trainer::import::{import, read_onnx, TokenTable};
use serde_json::Value;

/// Issue 4's bound for the f32 path against the source framework.
const F32_TOLERANCE: f64 = 1e-4;
/// The integer path against the source framework on these small random models.
const INT_TOLERANCE: f64 = 0.05;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/foreign")
}

struct Fixture {
    name: String,
    onnx: Vec<u8>,
    record: Value,
}

fn load_all() -> Vec<Fixture> {
    let mut out: Vec<Fixture> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/foreign exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|json| {
            let record: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
            let onnx = std::fs::read(fixtures().join(record["model"].as_str().unwrap())).unwrap();
            Fixture {
                name: json.file_stem().unwrap().to_string_lossy().into_owned(),
                onnx,
                record,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Runs `command`, which must fail, and returns its standard error.
fn failure(command: &mut Command) -> String {
    let output = command.env("RUST_BACKTRACE", "0").output().unwrap();
    assert!(!output.status.success(), "{command:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The fixture of that name.
fn fixture(name: &str) -> Fixture {
    load_all()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

fn tokens(record: &Value) -> TokenTable {
    let t = &record["tokens"];
    if let Some(vocab) = t["vocab"].as_array() {
        TokenTable::Words {
            lines: vocab
                .iter()
                .map(|w| w.as_str().unwrap().to_string())
                .collect(),
        }
    } else {
        TokenTable::Chars {
            table: t["chars"].as_str().unwrap().as_bytes().to_vec(),
            lowercase: false,
            unk: t["unk"].as_bool().unwrap(),
            pad: t["pad"].as_bool().unwrap(),
        }
    }
}

fn rows(value: &Value) -> Vec<Vec<f64>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn fixtures_cover_both_frameworks_and_both_cells() {
    let all = load_all();
    let supported: Vec<&Fixture> = all
        .iter()
        .filter(|f| f.record.get("error_contains").is_none())
        .collect();
    for prefix in ["torch_lstm", "torch_gru", "keras_lstm"] {
        assert!(
            supported.iter().any(|f| f.name.starts_with(prefix)),
            "no supported {prefix} fixture"
        );
    }
    assert!(all.len() > supported.len(), "no unsupported fixture");
}

#[test]
fn foreign_models_match_their_source_framework() {
    for fixture in load_all()
        .iter()
        .filter(|f| f.record.get("error_contains").is_none())
    {
        let name = &fixture.name;
        let imported = import(&fixture.onnx, &tokens(&fixture.record))
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let expect = &fixture.record["expect"];
        let f = &imported.foreign;
        let cell = match expect["cell"].as_str().unwrap() {
            "lstm" => Cell::Lstm,
            _ => Cell::Gru,
        };
        assert_eq!(f.cell, cell, "{name}");
        assert_eq!(
            f.hidden as u64,
            expect["hidden"].as_u64().unwrap(),
            "{name}"
        );
        let head = match expect["head"].as_str().unwrap() {
            "flatten" => Head::Flatten {
                maxlen: expect["maxlen"].as_u64().unwrap() as u32,
            },
            "last" => Head::Last,
            _ => Head::Mean,
        };
        assert_eq!(f.head, head, "{name}");
        let output = match expect["classes"].as_u64().unwrap() {
            1 => Output::Sigmoid,
            n => Output::Softmax { classes: n as u16 },
        };
        assert_eq!(f.output, output, "{name}");

        let f32_model = HostModel::new(&imported.f32_blob).unwrap();
        let int_model = HostModel::new(&imported.int_blob).unwrap();
        assert!(!f32_model.is_integer() && int_model.is_integer());
        let ids = rows(&fixture.record["ids"]);
        let want = rows(&fixture.record["outputs"]);
        assert_eq!(ids.len(), want.len());
        let (mut f32_diff, mut int_diff) = (0f64, 0f64);
        for (ids, want) in ids.iter().zip(&want) {
            let foreign: Vec<u16> = ids.iter().map(|&i| i as u16).collect();
            let runtime = imported.converted.map_ids(&foreign).unwrap();
            let got_f32 = f32_model.outputs(&runtime).unwrap();
            let got_int = int_model.outputs(&runtime).unwrap();
            assert_eq!(got_f32.len(), want.len(), "{name}: output width");
            for ((w, f), i) in want.iter().zip(&got_f32).zip(&got_int) {
                f32_diff = f32_diff.max((w - f).abs());
                int_diff = int_diff.max((w - i).abs());
            }
        }
        println!(
            "{name}: max |source - f32| {f32_diff:.2e}, max |source - int| {int_diff:.2e}, \
             tract self-check {:.2e}",
            imported.self_check.max_abs_tract_vs_f32
        );
        assert!(f32_diff <= F32_TOLERANCE, "{name}: f32 off by {f32_diff}");
        assert!(int_diff <= INT_TOLERANCE, "{name}: int off by {int_diff}");
    }
}

#[test]
fn unsupported_graphs_are_refused_by_name() {
    let mut seen = 0;
    for fixture in load_all() {
        let Some(needles) = fixture.record.get("error_contains") else {
            continue;
        };
        seen += 1;
        let err = import(&fixture.onnx, &tokens(&fixture.record))
            .map(|_| ())
            .expect_err(&fixture.name);
        let text = format!("{err:#}");
        for needle in needles.as_array().unwrap() {
            let needle = needle.as_str().unwrap();
            assert!(
                text.contains(needle),
                "{}: error does not name {needle:?}: {text}",
                fixture.name
            );
        }
    }
    assert!(seen >= 2);
}

#[test]
fn a_wrong_token_table_size_names_both_counts() {
    let onnx = std::fs::read(fixtures().join("torch_lstm_flatten_sigmoid.onnx")).unwrap();
    let err = import(
        &onnx,
        &TokenTable::Chars {
            table: b"abc".to_vec(),
            lowercase: false,
            unk: true,
            pad: true,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("20 token ids but --chars gives 3 chars plus UNK and PAD, 5 ids"),
        "{err}"
    );

    // A flatten head pads, so the char table needs PAD.
    let err = import(
        &onnx,
        &TokenTable::Chars {
            table: b"abcdefghijklmnopqrs".to_vec(),
            lowercase: false,
            unk: true,
            pad: false,
        },
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains(
            "the model has a flatten head, which pads a text to its 12 steps: give --pad"
        ),
        "{err:#}"
    );

    // Text is lowercased before the lookup, so an uppercase char could never match.
    let err = import(
        &onnx,
        &TokenTable::Chars {
            table: b"abcdefghijklmnopQr".to_vec(),
            lowercase: true,
            unk: true,
            pad: true,
        },
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("--chars holds 'Q', which --lowercase makes unreachable"),
        "{err:#}"
    );

    // A vocab file one line too long names its blank line.
    let words = std::fs::read(fixtures().join("torch_lstm_state_words.onnx")).unwrap();
    let mut lines: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    lines.insert(7, String::new());
    let err = import(&words, &TokenTable::Words { lines }).unwrap_err();
    assert!(
        format!("{err:#}").contains("21 lines but the model has 20 token ids (line 8 is blank"),
        "{err:#}"
    );
}

#[test]
fn word_models_map_ids_through_the_sorted_vocabulary() {
    let fixture = load_all()
        .into_iter()
        .find(|f| f.record["tokens"].get("vocab").is_some())
        .expect("a word-vocab fixture");
    let imported = import(&fixture.onnx, &tokens(&fixture.record)).unwrap();
    let vocab: Vec<&str> = fixture.record["tokens"]["vocab"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ids = &imported.converted.runtime_id;
    let pad = vocab.iter().position(|w| *w == "<pad>").unwrap();
    let unk = vocab.iter().position(|w| *w == "<unk>").unwrap();
    assert_eq!((ids[pad], ids[unk]), (0, 1));
    // Runtime ids follow the words' sorted order.
    let mut words: Vec<(&str, u16)> = vocab
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != pad && *k != unk)
        .map(|(k, w)| (*w, ids[k]))
        .collect();
    words.sort();
    let runtime: Vec<u16> = words.iter().map(|w| w.1).collect();
    assert_eq!(runtime, (2..2 + words.len() as u16).collect::<Vec<_>>());
}

#[test]
fn reading_alone_reports_the_graph_layout() {
    let onnx = std::fs::read(fixtures().join("torch_gru_onehot_mean_sigmoid.onnx")).unwrap();
    let foreign = read_onnx(&onnx).unwrap();
    assert_eq!(foreign.head, Head::Mean);
    assert_eq!(foreign.input.ids(), 20);
    assert_eq!(foreign.seq_len, None, "exported with a free time axis");
}

#[test]
fn cli_import_writes_both_blobs_that_score_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    Command::cargo_bin("lstm-edge")
        .unwrap()
        .args(["import"])
        .arg(fixtures().join("torch_lstm_flatten_sigmoid.onnx"))
        .args(["--chars", "abcdefghijklmnopqr", "--unk", "--pad", "--out"])
        .arg(&out)
        .assert()
        .success();
    for file in ["model.blob", "model-f32.blob", "import.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    Command::cargo_bin("lstm-edge")
        .unwrap()
        .args(["score", "--model"])
        .arg(out.join("model.blob"))
        .arg("a bad idea")
        .assert()
        .success();
    // An imported folder has no card for eval or verify: they say what it is.
    let err = failure(
        Command::cargo_bin("lstm-edge")
            .unwrap()
            .args(["verify", "--model"])
            .arg(&out),
    );
    assert!(
        err.contains("is a model imported by `lstm-edge import`"),
        "{err}"
    );
    let refusal = |onnx: &Path, out: &Path| -> String {
        let output = Command::cargo_bin("lstm-edge")
            .unwrap()
            .env("RUST_BACKTRACE", "0")
            .arg("import")
            .arg(onnx)
            .args(["--chars", "abcdefghijklmnopqr", "--unk", "--pad", "--out"])
            .arg(out)
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };
    // A blob is already the runtime's; an empty file is named as such.
    let err = refusal(&out.join("model.blob"), &dir.path().join("again"));
    assert!(
        err.contains("model.blob is an lstm-edge model blob, not ONNX"),
        "{err}"
    );
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let err = refusal(&empty, &dir.path().join("again"));
    assert!(err.contains("empty.onnx is empty"), "{err}");
    // A trained model's folder keeps its model: its card would describe another.
    std::fs::write(out.join("card.json"), b"{}").unwrap();
    let err = refusal(&fixtures().join("torch_lstm_flatten_sigmoid.onnx"), &out);
    assert!(
        err.contains("holds a trained model") && err.contains("give another --out"),
        "{err}"
    );
}

#[test]
fn cli_import_warns_of_a_vocab_without_unk_and_notes_a_replaced_import() {
    let fixture = load_all()
        .into_iter()
        .find(|f| f.record["tokens"].get("vocab").is_some())
        .expect("a word-vocab fixture");
    let TokenTable::Words { lines } = tokens(&fixture.record) else {
        unreachable!("a word fixture")
    };
    let dir = tempfile::tempdir().unwrap();
    let onnx = fixtures().join(fixture.record["model"].as_str().unwrap());
    let import = |lines: &[String], out: &Path| -> String {
        let vocab = dir.path().join("vocab.txt");
        std::fs::write(&vocab, lines.join("\n")).unwrap();
        let output = Command::cargo_bin("lstm-edge")
            .unwrap()
            .arg("import")
            .arg(&onnx)
            .arg("--vocab")
            .arg(&vocab)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let out = dir.path().join("imported");
    let first = import(&lines, &out);
    assert!(!first.contains("no vocab line is <unk>"), "{first}");
    assert!(!first.contains("earlier import"), "{first}");
    let without_unk: Vec<String> = lines
        .iter()
        .map(|l| match l.as_str() {
            "<unk>" => "zzzunknown".to_string(),
            _ => l.clone(),
        })
        .collect();
    assert_ne!(without_unk, lines, "the fixture vocab marks <unk>");
    let again = import(&without_unk, &out);
    assert!(again.contains("no vocab line is <unk>"), "{again}");
    assert!(again.contains("holds an earlier import"), "{again}");
}

#[test]
fn an_imported_softmax_classifier_scores_its_classes() {
    let fixture = fixture("torch_gru_last_softmax");
    let chars = fixture.record["tokens"]["chars"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("classifier");
    Command::cargo_bin("lstm-edge")
        .unwrap()
        .arg("import")
        .arg(fixtures().join("torch_gru_last_softmax.onnx"))
        .args(["--chars", chars, "--unk", "--pad", "--out"])
        .arg(&out)
        .assert()
        .success();
    // Each probe as text: its chars, `~` (outside the table) for UNK; PAD has no text.
    let unk = chars.len() as u64;
    let mut scored = 0;
    for (ids, expected) in fixture.record["ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(rows(&fixture.record["outputs"]))
    {
        let ids: Vec<u64> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        if ids.iter().any(|&id| id > unk) {
            continue;
        }
        let text: String = ids
            .iter()
            .map(|&id| chars.chars().nth(id as usize).unwrap_or('~'))
            .collect();
        for (blob, tolerance) in [("model-f32.blob", 1e-5), ("model.blob", 0.02)] {
            let output = Command::cargo_bin("lstm-edge")
                .unwrap()
                .args(["score", "--json", "--model"])
                .arg(out.join(blob))
                .arg(&text)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let report: Value = serde_json::from_slice(&output.stdout).unwrap();
            let classes: Vec<f64> = report["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            assert_eq!(classes.len(), expected.len());
            for (got, want) in classes.iter().zip(&expected) {
                assert!(
                    (got - want).abs() <= tolerance,
                    "{blob} {text}: {classes:?} vs {expected:?}"
                );
            }
            let top = (0..classes.len())
                .max_by(|&a, &b| classes[a].total_cmp(&classes[b]))
                .unwrap();
            assert_eq!(report["label"], format!("class {top}"), "{report}");
        }
        scored += 1;
    }
    assert!(scored >= 2, "only {scored} probes could be written as text");
    // Its class ids are no text to feed back.
    let err = failure(
        Command::cargo_bin("lstm-edge")
            .unwrap()
            .args(["generate", "--prompt", "abc", "--model"])
            .arg(out.join("model.blob")),
    );
    assert!(err.contains("is a classifier of 5 classes"), "{err}");
}

#[test]
fn lstm_edge_exports_import_back_to_the_same_f32_blob() {
    // One model per head and output kind that the shipped models cover.
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    for name in ["c", "c-mean", "g", "g-gru"] {
        let dir = tempfile::tempdir().unwrap();
        let card: Value =
            serde_json::from_slice(&std::fs::read(models.join(name).join("card.json")).unwrap())
                .unwrap();
        let tokenizer = &card["tokenizer"];
        let mut import = Command::cargo_bin("lstm-edge").unwrap();
        import
            .arg("import")
            .arg(models.join(name).join("model.onnx"))
            .args([
                "--chars",
                tokenizer["table"].as_str().unwrap(),
                "--lowercase",
            ])
            .arg("--out")
            .arg(dir.path());
        for (flag, id) in [("--unk", "unk_id"), ("--pad", "pad_id")] {
            if !tokenizer[id].is_null() {
                import.arg(flag);
            }
        }
        import.assert().success();
        assert!(
            std::fs::read(dir.path().join("model-f32.blob")).unwrap()
                == std::fs::read(models.join(name).join("model-f32.blob")).unwrap(),
            "{name}: the imported f32 blob differs from the shipped one"
        );
    }
}

#[test]
fn cli_import_needs_a_token_table() {
    Command::cargo_bin("lstm-edge")
        .unwrap()
        .args(["import"])
        .arg(fixtures().join("torch_lstm_flatten_sigmoid.onnx"))
        .args(["--out", "/tmp/never-written"])
        .assert()
        .failure();
    // The char table's flags mean nothing to a vocab file.
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    std::fs::write(&vocab, "<pad>\n<unk>\n").unwrap();
    for flag in ["--unk", "--pad", "--lowercase"] {
        let output = Command::cargo_bin("lstm-edge")
            .unwrap()
            .args(["import"])
            .arg(fixtures().join("torch_lstm_state_words.onnx"))
            .arg("--vocab")
            .arg(&vocab)
            .args([flag, "--out"])
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && err.contains("cannot be used with"),
            "{flag}: {err}"
        );
    }
}

type ModelProto = tract_onnx::pb::ModelProto;

/// Imports every variant that `change` makes of each fixture's graph (with a
/// label for the failure message) and asserts that none panics: the importer
/// answers malformed graphs with an error. Returns how many ran.
fn no_variant_panics(change: impl Fn(&ModelProto) -> Vec<(String, ModelProto)>) -> usize {
    use prost::Message;
    let mut cases = 0;
    for fixture in load_all() {
        let model: ModelProto = Message::decode(&fixture.onnx[..]).unwrap();
        let table = tokens(&fixture.record);
        for (label, variant) in change(&model) {
            let bytes = variant.encode_to_vec();
            let outcome = std::panic::catch_unwind(|| import(&bytes, &table).map(|_| ()));
            assert!(outcome.is_ok(), "{}: {label} panicked", fixture.name);
            cases += 1;
        }
    }
    cases
}

fn graph_mut(model: &mut ModelProto) -> &mut tract_onnx::pb::GraphProto {
    model.graph.as_mut().unwrap()
}

/// Values no exporter writes, for integer fields.
const ODD_INTEGERS: [i64; 5] = [-7, 0, 1 << 40, i64::MIN, i64::MAX];

#[test]
fn nodes_missing_inputs_or_outputs_are_errors_not_panics() {
    let cases = no_variant_panics(|model| {
        let mut variants = Vec::new();
        for (index, node) in model.graph.as_ref().unwrap().node.iter().enumerate() {
            let cuts = (0..node.input.len())
                .map(|keep| (keep, node.output.len()))
                .chain((0..node.output.len()).map(|keep| (node.input.len(), keep)));
            for (inputs, outputs) in cuts {
                let mut cut = model.clone();
                let cut_node = &mut graph_mut(&mut cut).node[index];
                cut_node.input.truncate(inputs);
                cut_node.output.truncate(outputs);
                let label = format!(
                    "node {index} ({}) with {inputs} inputs and {outputs} outputs",
                    node.op_type
                );
                variants.push((label, cut));
            }
        }
        variants
    });
    assert!(cases > 100, "{cases} cases");
}

#[test]
fn weights_of_the_wrong_rank_are_errors_not_panics() {
    let cases = no_variant_panics(|model| {
        let weights = &model.graph.as_ref().unwrap().initializer;
        (0..weights.len())
            .filter(|&index| weights[index].dims.len() >= 2)
            .map(|index| {
                let mut flat = model.clone();
                let weight = &mut graph_mut(&mut flat).initializer[index];
                weight.dims = vec![weight.dims.iter().product()];
                (format!("initializer '{}' flattened", weight.name), flat)
            })
            .collect()
    });
    assert!(cases > 20, "{cases} cases");
}

#[test]
fn odd_integer_attributes_are_errors_not_panics() {
    let cases = no_variant_panics(|model| {
        let mut variants = Vec::new();
        for (index, node) in model.graph.as_ref().unwrap().node.iter().enumerate() {
            for (slot, attribute) in node.attribute.iter().enumerate() {
                // Type 2 is INT; INTS lists count too.
                if attribute.r#type != 2 && attribute.ints.is_empty() {
                    continue;
                }
                for odd in ODD_INTEGERS {
                    let mut changed = model.clone();
                    let target = &mut graph_mut(&mut changed).node[index].attribute[slot];
                    target.i = odd;
                    target.ints.iter_mut().for_each(|v| *v = odd);
                    let label = format!(
                        "node {index} ({}) attribute {} = {odd}",
                        node.op_type, attribute.name
                    );
                    variants.push((label, changed));
                }
            }
        }
        variants
    });
    assert!(cases > 50, "{cases} cases");
}

/// Shapes, axes, indices and depths, in initializers and Constant nodes.
#[test]
fn odd_integer_constants_are_errors_not_panics() {
    let cases = no_variant_panics(|model| {
        let graph = model.graph.as_ref().unwrap();
        let int64 = |t: &tract_onnx::pb::TensorProto| t.data_type == 7;
        let places = graph
            .initializer
            .iter()
            .enumerate()
            .filter(|(_, t)| int64(t))
            .map(|(k, _)| (k, None))
            .chain(graph.node.iter().enumerate().flat_map(|(n, node)| {
                node.attribute
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.t.as_ref().is_some_and(int64))
                    .map(move |(a, _)| (n, Some(a)))
            }));
        let mut variants = Vec::new();
        for (at, attribute) in places {
            for odd in ODD_INTEGERS {
                let mut changed = model.clone();
                let graph = graph_mut(&mut changed);
                let tensor = match attribute {
                    None => &mut graph.initializer[at],
                    Some(a) => graph.node[at].attribute[a].t.as_mut().unwrap(),
                };
                tensor.int64_data.iter_mut().for_each(|v| *v = odd);
                for chunk in tensor.raw_data.chunks_exact_mut(8) {
                    chunk.copy_from_slice(&odd.to_le_bytes());
                }
                variants.push((
                    format!("int64 constant {at} ({attribute:?}) = {odd}"),
                    changed,
                ));
            }
        }
        variants
    });
    assert!(cases > 50, "{cases} cases");
}

/// Every float weight of every fixture filled with NaN, infinity or 1e30; NaN
/// in the recurrent weights is refused by name.
#[test]
fn non_finite_or_huge_weights_are_errors_not_panics() {
    let cases = no_variant_panics(|model| {
        let weights = &model.graph.as_ref().unwrap().initializer;
        let mut variants = Vec::new();
        for index in (0..weights.len()).filter(|&k| weights[k].data_type == 1) {
            for odd in [f32::NAN, f32::INFINITY, 1e30] {
                let mut changed = model.clone();
                let weight = &mut graph_mut(&mut changed).initializer[index];
                weight.float_data.iter_mut().for_each(|v| *v = odd);
                for chunk in weight.raw_data.chunks_exact_mut(4) {
                    chunk.copy_from_slice(&odd.to_le_bytes());
                }
                variants.push((format!("initializer '{}' = {odd}", weight.name), changed));
            }
        }
        variants
    });
    assert!(cases > 50, "{cases} cases");

    let fixture = fixture("torch_lstm_flatten_sigmoid");
    let mut model: ModelProto = prost::Message::decode(&fixture.onnx[..]).unwrap();
    let r = graph_mut(&mut model)
        .node
        .iter()
        .find(|n| n.op_type == "LSTM")
        .map(|n| n.input[2].clone())
        .unwrap();
    // NaN, and a finite weight too large for the f32 path to sum without overflow.
    for (bad, named) in [
        (f32::NAN, "R holds NaN at index 0"),
        (3e7, "R holds 30000000 at index 0, past the ±1e6"),
    ] {
        let mut model = model.clone();
        let graph = graph_mut(&mut model);
        let weight = graph.initializer.iter_mut().find(|t| t.name == r).unwrap();
        weight.float_data.iter_mut().for_each(|v| *v = bad);
        for chunk in weight.raw_data.chunks_exact_mut(4) {
            chunk.copy_from_slice(&bad.to_le_bytes());
        }
        let bytes = prost::Message::encode_to_vec(&model);
        let err = import(&bytes, &tokens(&fixture.record))
            .map(|_| ())
            .unwrap_err();
        assert!(format!("{err:#}").contains(named), "{err:#}");
    }
}

/// What ONNX forbids and readers disagree on, or loop on, is refused up front:
/// two values under one name, and nodes that read a value before it is made
/// (which is also how a cycle shows).
#[test]
fn malformed_graph_structure_is_refused_by_name() {
    use prost::Message;
    let fixture = fixture("torch_lstm_flatten_sigmoid");
    let model: ModelProto = Message::decode(&fixture.onnx[..]).unwrap();
    let table = tokens(&fixture.record);
    let refusal = |variant: &ModelProto| -> String {
        match import(&variant.encode_to_vec(), &table) {
            Ok(_) => panic!("a malformed graph was imported"),
            Err(e) => format!("{e:#}"),
        }
    };

    let mut twice = model.clone();
    let first = graph_mut(&mut twice).initializer[0].clone();
    graph_mut(&mut twice).initializer.push(first.clone());
    let err = refusal(&twice);
    assert!(
        err.contains(&format!("two initializers are named '{}'", first.name)),
        "{err}"
    );

    let mut reversed = model.clone();
    graph_mut(&mut reversed).node.reverse();
    let err = refusal(&reversed);
    assert!(
        err.contains("no graph input, initializer or earlier node"),
        "{err}"
    );

    let mut cycle = model.clone();
    let node = graph_mut(&mut cycle)
        .node
        .iter_mut()
        .find(|n| !n.input.is_empty())
        .unwrap();
    node.input[0] = node.output[0].clone();
    let err = refusal(&cycle);
    assert!(err.contains("has a cycle"), "{err}");
}

/// tests/fixtures/malformed/reshape_steps_into_batch.onnx: ids of free length, an
/// LSTM (6 units, 12 char ids) whose outputs are reshaped to [-1, 6] and go through
/// a dense sigmoid: one output per step, which used to import as a 1-step flatten head.
#[test]
fn a_reshape_of_free_length_steps_into_the_batch_is_refused() {
    let onnx =
        std::fs::read(fixtures().join("../malformed/reshape_steps_into_batch.onnx")).unwrap();
    let err = match import(&onnx, &twelve_chars()) {
        Ok(_) => panic!("a per-step output was imported"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("to [-1, 6], which puts its steps in the batch (one output per step)"),
        "{err}"
    );
}

fn twelve_chars() -> TokenTable {
    TokenTable::Chars {
        table: b"abcdefghijkl".to_vec(),
        lowercase: false,
        unk: false,
        pad: false,
    }
}

/// tests/fixtures/malformed/unsqueeze_repeated_axes.onnx: an LSTM (6 units, 12 char
/// ids) whose last state goes through Squeeze, then Unsqueeze with axes [-1, -1],
/// then a dense sigmoid; the repeated axis used to panic the importer.
#[test]
fn repeated_unsqueeze_axes_are_refused_by_name() {
    let onnx = std::fs::read(fixtures().join("../malformed/unsqueeze_repeated_axes.onnx")).unwrap();
    let err = match import(&onnx, &twelve_chars()) {
        Ok(_) => panic!("repeated Unsqueeze axes were imported"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("axis 3 is listed twice in its axes [-1, -1]"),
        "{err}"
    );
}

type Export = (
    lstm_edge_trainer::model::ModelConfig,
    lstm_edge_trainer::model::Params,
    Vec<u8>,
    TokenTable,
);

/// An lstm-edge char model over "abcdefg" + UNK (+ PAD), hidden 5, exported to ONNX
/// with its weights, and the token table that imports it.
fn seven_char_export(cell: Cell, head: Head, output: Output, pad: bool) -> Export {
    char_export(b"abcdefg", cell, head, output, pad, 5, 1.0)
}

/// The same over `chars`, with `hidden` units and the weights (not the biases) scaled
/// by `scale`.
fn char_export(
    chars: &[u8],
    cell: Cell,
    head: Head,
    output: Output,
    pad: bool,
    hidden: usize,
    scale: f32,
) -> Export {
    use lstm_edge_trainer::model::{InputConfig, ModelConfig, Params};
    let cfg = ModelConfig {
        cell,
        input: InputConfig::Chars {
            table: chars.to_vec(),
            lowercase: false,
            unk: true,
            pad,
        },
        hidden,
        head,
        output,
        dropout: 0.0,
    };
    let mut params = Params::init(&cfg, 3);
    let weights = [&mut params.w, &mut params.r, &mut params.head_w];
    for weight in weights.into_iter().flat_map(|t| &mut t.data) {
        *weight *= scale;
    }
    let onnx = lstm_edge_trainer::export::export_onnx(&cfg, &params, &[]).unwrap();
    let table = TokenTable::Chars {
        table: chars.to_vec(),
        lowercase: false,
        unk: true,
        pad,
    };
    (cfg, params, onnx, table)
}

/// lstm-edge's last-state and mean exports read each row up to its first PAD (a
/// side branch from the ids to a `Mul` on the data path): the importer reads that
/// branch as the plain head, and gives back the blob the model itself makes.
#[test]
fn masked_lstm_edge_exports_import_back_to_the_model() {
    use lstm_edge_trainer::quantize::quantize;
    let mut checked = 0;
    for cell in [Cell::Lstm, Cell::Gru] {
        for (head, output) in [
            (Head::Last, Output::Softmax { classes: 4 }),
            (Head::Last, Output::Sigmoid),
            (Head::Mean, Output::Sigmoid),
        ] {
            let (cfg, params, onnx, table) = seven_char_export(cell, head, output, true);
            let what = format!("{cell:?} {head:?} {output:?}");
            let imported = import(&onnx, &table).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert_eq!(imported.foreign.head, head, "{what}");
            assert_eq!(imported.foreign.rows_end_at, Some(8), "{what}: PAD is id 8");
            let sequences = vec![vec![0u16, 3, 5, 7]];
            let own = quantize(&cfg, &params, &sequences).unwrap();
            assert!(
                imported.f32_blob == own.f32_blob,
                "{what}: another f32 blob"
            );
            assert!(imported.self_check.max_abs_tract_vs_f32 < 1e-5, "{what}");
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

/// A sum over the steps is a head only where lstm-edge's PAD mask weighs them
/// first: a mean export whose `ReduceMean` is made a `ReduceSum` is refused by name.
#[test]
fn a_sum_over_steps_without_the_pad_mask_is_refused() {
    use prost::Message;
    let (_, _, onnx, table) = seven_char_export(Cell::Lstm, Head::Mean, Output::Sigmoid, false);
    let mut model: ModelProto = Message::decode(&onnx[..]).unwrap();
    let pooling = graph_mut(&mut model)
        .node
        .iter_mut()
        .find(|n| n.op_type == "ReduceMean")
        .expect("an unmasked mean export pools with ReduceMean");
    pooling.op_type = "ReduceSum".into();
    let err = match import(&model.encode_to_vec(), &table) {
        Ok(_) => panic!("an unmasked sum over the steps was imported"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("ReduceSum") && err.contains("without lstm-edge's PAD mask before it"),
        "{err}"
    );
}

/// What the runtime cannot hold is refused by name before quantizing, and what the
/// blobs do differently from the ONNX model is said: an integer blob far from it, a
/// fixed length that a last-state head does not keep, a softmax that is a generator.
#[test]
fn import_names_runtime_limits_and_warns_where_the_blobs_depart() {
    use prost::Message;
    let sigmoid = Output::Sigmoid;
    let (_, _, onnx, table) =
        char_export(b"abcdefg", Cell::Lstm, Head::Last, sigmoid, true, 257, 1.0);
    let err = format!("{:#}", import(&onnx, &table).expect_err("257 units"));
    assert!(
        err.contains("LSTM has 257 units; the runtime takes at most 256"),
        "{err}"
    );
    let many = Output::Softmax { classes: 12 };
    let (_, _, onnx, table) = char_export(b"abcdefg", Cell::Gru, Head::Last, many, true, 5, 1.0);
    let err = format!("{:#}", import(&onnx, &table).expect_err("12 classes"));
    assert!(
        err.contains("softmax has 12 classes, more than its 9 token ids"),
        "{err}"
    );

    // As many classes as token ids: a generator; fewer: a classifier.
    for (classes, runs_with) in [(9, "lstm-edge generate"), (4, "classifier of 4 classes")] {
        let output = Output::Softmax { classes };
        let (_, _, onnx, table) = seven_char_export(Cell::Lstm, Head::Last, output, true);
        let summary = import(&onnx, &table).unwrap().summary();
        assert!(summary.runs_with.contains(runs_with), "{summary:?}");
        assert!(summary.warnings.is_empty(), "{summary:?}");
    }

    // Weights far past trained ranges: int8 holds them poorly.
    let (_, _, onnx, table) =
        char_export(b"abcdefg", Cell::Lstm, Head::Last, sigmoid, true, 256, 12.0);
    let summary = import(&onnx, &table).unwrap().summary();
    assert!(summary.self_check.max_abs_tract_vs_int > 0.2, "{summary:?}");
    assert!(
        summary.self_check.max_abs_tract_vs_f32 < 1e-4,
        "{summary:?}"
    );
    assert!(
        summary.warnings[0].contains("the integer blob departs from the ONNX model by up to"),
        "{:?}",
        summary.warnings
    );

    // The graph input fixed at 10 steps, as torch.onnx writes it without dynamic axes.
    let fixed_length = |pad: bool| {
        let (_, _, onnx, table) = seven_char_export(Cell::Gru, Head::Mean, sigmoid, pad);
        let mut model: ModelProto = Message::decode(&onnx[..]).unwrap();
        set_ids_steps(&mut model, 10);
        let summary = import(&model.encode_to_vec(), &table).unwrap().summary();
        assert_eq!(summary.self_check.length, 10);
        summary.warnings
    };
    let warnings = fixed_length(false);
    assert!(
        warnings.iter().any(
            |w| w.contains("takes exactly 10 ids per row, but the blobs' mean over steps head")
        ),
        "{warnings:?}"
    );
    // lstm-edge's own mean export stops at PAD, so padded texts agree: no warning.
    let warnings = fixed_length(true);
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// Fixes the ids input's step axis at `steps`.
fn set_ids_steps(model: &mut ModelProto, steps: i64) {
    let input = &mut graph_mut(model).input[0];
    let dims = input.r#type.as_mut().and_then(|t| match &mut t.value {
        Some(tract_onnx::pb::type_proto::Value::TensorType(t)) => t.shape.as_mut(),
        _ => None,
    });
    dims.expect("the ids input has a shape").dim[1].value =
        Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(steps));
}

/// Keras' default `Input` is float32: ids of any number type that a Cast turns into
/// int64 before the lookup import as the int64 ids they stand for.
#[test]
fn ids_of_another_number_type_cast_to_int_import_as_ids() {
    use prost::Message;
    let fixture = fixture("torch_lstm_flatten_sigmoid");
    let table = tokens(&fixture.record);
    let plain = import(&fixture.onnx, &table).unwrap();
    let model: ModelProto = Message::decode(&fixture.onnx[..]).unwrap();
    // float32, uint8, int32, float64, uint32, uint64.
    for elem in [1, 2, 6, 11, 12, 13] {
        let imported = import(&ids_cast_from(&model, elem).encode_to_vec(), &table)
            .unwrap_or_else(|e| panic!("ids of ONNX type {elem}: {e:#}"));
        assert!(
            imported.f32_blob == plain.f32_blob,
            "ids of ONNX type {elem}: another f32 blob"
        );
        assert!(imported.self_check.max_abs_tract_vs_f32 < 1e-5);
    }
    // int8 holds 128 ids; a model of 201 is refused, not misread (no PAD: the mask of
    // lstm-edge's PAD-padded exports reads the ids input itself).
    let chars: Vec<u8> = (32..232).collect();
    let sigmoid = Output::Sigmoid;
    let (_, _, onnx, table) = char_export(&chars, Cell::Lstm, Head::Last, sigmoid, false, 4, 1.0);
    let model: ModelProto = Message::decode(&onnx[..]).unwrap();
    let err = format!(
        "{:#}",
        import(&ids_cast_from(&model, 3).encode_to_vec(), &table).expect_err("int8 ids")
    );
    assert!(
        err.contains("is int8, which holds 128 ids, but the model has 201 token ids"),
        "{err}"
    );
}

/// `model` with its ids input of ONNX type `elem`, cast to int64 before anything
/// reads it.
fn ids_cast_from(model: &ModelProto, elem: i32) -> ModelProto {
    use tract_onnx::pb::type_proto::Value as TypeValue;
    let mut variant = model.clone();
    let graph = graph_mut(&mut variant);
    let ids = graph.input[0].name.clone();
    match graph.input[0]
        .r#type
        .as_mut()
        .and_then(|t| t.value.as_mut())
    {
        Some(TypeValue::TensorType(t)) => t.elem_type = elem,
        _ => panic!("the ids input is a tensor"),
    }
    let cast = format!("{ids}_as_int64");
    for node in &mut graph.node {
        for input in node.input.iter_mut().filter(|i| **i == ids) {
            *input = cast.clone();
        }
    }
    graph.node.insert(
        0,
        tract_onnx::pb::NodeProto {
            op_type: "Cast".into(),
            input: vec![ids],
            output: vec![cast],
            attribute: vec![tract_onnx::pb::AttributeProto {
                name: "to".into(),
                r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
                i: 7,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    variant
}

/// PyTorch's default `batch_first=False` feeds the ids `[time, batch]` straight to
/// the recurrent layer: a batch-first export rewritten that way (no Transpose before
/// the layer, the zero state sized from axis 1) imports to the same blob.
#[test]
fn time_first_ids_import_as_their_batch_first_export() {
    use prost::Message;
    use tract_onnx::pb::tensor_shape_proto::Dimension;
    use tract_onnx::pb::type_proto::Value as TypeValue;
    let fixture = fixture("torch_lstm_state_words");
    let table = tokens(&fixture.record);
    let plain = import(&fixture.onnx, &table).unwrap();
    assert!(!plain.foreign.time_first);
    let mut model: ModelProto = Message::decode(&fixture.onnx[..]).unwrap();
    let graph = graph_mut(&mut model);
    match graph.input[0]
        .r#type
        .as_mut()
        .and_then(|t| t.value.as_mut())
    {
        Some(TypeValue::TensorType(t)) => {
            let dims: &mut Vec<Dimension> = &mut t.shape.as_mut().unwrap().dim;
            dims.swap(0, 1);
        }
        _ => panic!("the ids input is a tensor"),
    }
    let transposed = remove_embedding_transpose(graph);
    let imported = import(&model.encode_to_vec(), &table).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(imported.foreign.time_first);
    assert_eq!(imported.foreign.seq_len, plain.foreign.seq_len);
    assert!(imported.f32_blob == plain.f32_blob, "another f32 blob");
    assert!(imported.self_check.max_abs_tract_vs_f32 < 1e-5);

    // Batch-first ids transposed before their lookup reach the layer as [time, batch]
    // too, but the walk does not follow ops before the lookup: refused, not read as
    // time-first ids.
    let mut model: ModelProto = Message::decode(&fixture.onnx[..]).unwrap();
    let graph = graph_mut(&mut model);
    remove_embedding_transpose(graph);
    let ids = graph.input[0].name.clone();
    let ids_transposed = format!("{ids}_transposed");
    for node in &mut graph.node {
        for input in node.input.iter_mut().filter(|i| **i == ids) {
            *input = ids_transposed.clone();
        }
    }
    let mut perm = transposed.attribute[0].clone();
    perm.ints = vec![1, 0];
    graph.node.insert(
        0,
        tract_onnx::pb::NodeProto {
            op_type: "Transpose".into(),
            input: vec![ids],
            output: vec![ids_transposed],
            attribute: vec![perm],
            ..Default::default()
        },
    );
    let err = format!(
        "{:#}",
        import(&model.encode_to_vec(), &table).expect_err("refused")
    );
    assert!(
        err.contains("gets its input laid out as [batch, time, feature] but its layout 0"),
        "{err}"
    );
}

/// Feeds the embedding straight to the recurrent layer of a batch-first PyTorch export
/// (which transposes it to [time, batch]), sizing the zero state from axis 1 of the
/// embedding; returns the Transpose it removed.
fn remove_embedding_transpose(graph: &mut tract_onnx::pb::GraphProto) -> tract_onnx::pb::NodeProto {
    let transpose = graph
        .node
        .iter()
        .position(|n| n.op_type == "Transpose")
        .expect("the batch-first export transposes the embedding");
    let transposed = graph.node.remove(transpose);
    for node in &mut graph.node {
        for input in node
            .input
            .iter_mut()
            .filter(|i| **i == transposed.output[0])
        {
            *input = transposed.input[0].clone();
        }
    }
    let index = graph
        .node
        .iter_mut()
        .find(|n| n.output[0] == "/rnn/Constant_output_0")
        .expect("the Shape index constant");
    let value = index.attribute[0].t.as_mut().unwrap();
    assert_eq!(value.raw_data, 0i64.to_le_bytes());
    value.raw_data = 1i64.to_le_bytes().to_vec();
    transposed
}
