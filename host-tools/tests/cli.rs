//! The command line end to end on small models built here, good input and bad.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lstm_edge_runtime::builder::{FloatWeights, InputSpec, ModelSpec, ScaleScheme};
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::tokenize::words::encode_vocab;
use lstm_edge_runtime::Rng;

fn weights(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| (rng.next_f32() - 0.5) * 0.6).collect()
}

fn generator(symbols: &[u8], unk: bool) -> ModelSpec {
    let mut seed = Rng::new(7);
    let (h, v) = (16, symbols.len() + unk as usize);
    ModelSpec {
        cell: Cell::Lstm,
        hidden: h as u16,
        input: InputSpec::Chars {
            symbols: symbols.to_vec(),
            lowercase: true,
            unk,
            pad: false,
        },
        head: Head::Last,
        output: Output::Softmax { classes: v as u16 },
        weights: FloatWeights {
            embedding: vec![],
            w: weights(4 * h * v, &mut seed),
            r: weights(4 * h * h, &mut seed),
            wb: weights(4 * h, &mut seed),
            rb: weights(4 * h, &mut seed),
            head_w: weights(v * h, &mut seed),
            head_b: weights(v, &mut seed),
        },
    }
}

fn sentiment() -> ModelSpec {
    let mut seed = Rng::new(9);
    let (strings, offsets) =
        encode_vocab(["good", "bad", "movie", "the"].map(|w| w.as_bytes().to_vec()));
    let (h, e, rows, maxlen) = (8, 6, 6, 20);
    ModelSpec {
        cell: Cell::Gru,
        hidden: h as u16,
        input: InputSpec::Words {
            strings,
            offsets,
            embed_dim: e as u16,
        },
        head: Head::Flatten {
            maxlen: maxlen as u32,
        },
        output: Output::Sigmoid,
        weights: FloatWeights {
            embedding: weights(rows * e, &mut seed),
            w: weights(3 * h * e, &mut seed),
            r: weights(3 * h * h, &mut seed),
            wb: weights(3 * h, &mut seed),
            rb: weights(3 * h, &mut seed),
            head_w: weights(maxlen * h, &mut seed),
            head_b: weights(1, &mut seed),
        },
    }
}

struct Models {
    _dir: tempfile::TempDir,
    gen_int: PathBuf,
    gen_f32: PathBuf,
    gen_no_unk: PathBuf,
    sentiment: PathBuf,
    corrupt: PathBuf,
    empty: PathBuf,
    dir: PathBuf,
}

fn models() -> Models {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let gen = generator(b"abcdefghijklmnopqrstuvwxyz ", true);
    let int = gen.int_blob(ScaleScheme::PerRow).unwrap();
    let mut corrupt = int.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x10;
    Models {
        gen_int: write("gen.blob", &int),
        gen_f32: write("gen-f32.blob", &gen.f32_blob().unwrap()),
        gen_no_unk: write(
            "gen-strict.blob",
            &generator(b"abc ", false)
                .int_blob(ScaleScheme::PerGate)
                .unwrap(),
        ),
        sentiment: write(
            "sent.blob",
            &sentiment().int_blob(ScaleScheme::PerRow).unwrap(),
        ),
        corrupt: write("corrupt.blob", &corrupt),
        empty: write("empty.txt", b""),
        dir: dir.path().to_path_buf(),
        _dir: dir,
    }
}

fn lstm_edge() -> Command {
    Command::cargo_bin("lstm-edge").unwrap()
}

fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    cmd.assert().success().get_output().stdout.clone()
}

fn stderr_of(cmd: &mut Command) -> String {
    let out = cmd.assert().failure().get_output().clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn inspect_describes_a_blob_and_json_parses() {
    let m = models();
    let out = lstm_edge()
        .args(["inspect", arg(&m.gen_int)])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("cell        LSTM (hidden 16)"), "{text}");
    assert!(text.contains("per row"), "{text}");
    // 26 letters, space and UNK.
    assert!(
        text.contains("buffers     State<Int, 16>, Logits<Int, 28>\n"),
        "{text}"
    );
    let out = lstm_edge()
        .args(["inspect", "--json", "--model", arg(&m.sentiment)])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["hidden"], 8);
    assert_eq!(json["cell"], "GRU");
    assert_eq!(json["buffers"], "State<Int, 8>");
    // The card's and `crc32`'s checksum, beside the header's one of the body.
    let file = lstm_edge_trainer::pipeline::FileStamp::of(&std::fs::read(&m.sentiment).unwrap());
    assert_eq!(json["file_crc32"], file.crc32);
    assert_ne!(json["crc32"], json["file_crc32"]);
}

#[test]
fn generate_is_deterministic_per_seed_on_both_paths() {
    let m = models();
    for blob in [&m.gen_int, &m.gen_f32] {
        let run = |seed: &str| {
            lstm_edge()
                .args([
                    "generate",
                    "-m",
                    arg(blob),
                    "-p",
                    "the ",
                    "-l",
                    "60",
                    "--seed",
                    seed,
                ])
                .assert()
                .success()
                .get_output()
                .stdout
                .clone()
        };
        assert_eq!(run("1"), run("1"));
        let text = String::from_utf8(run("1")).unwrap();
        assert!(text.starts_with("the "));
        assert!(text.trim_end().len() >= 60);
    }
}

#[test]
fn score_reads_text_file_and_stdin_identically() {
    let m = models();
    let review = m.dir.join("review.txt");
    std::fs::write(&review, "The movie was good, not bad \u{e9}\u{e9}.").unwrap();
    let score_json = |model: &Path| {
        stdout_of(lstm_edge().args(["score", "-m", arg(model), "--file", arg(&review), "--json"]))
    };
    let from_file = score_json(&m.sentiment);
    let from_stdin = stdout_of(
        lstm_edge()
            .args(["score", "-m", arg(&m.sentiment), "--json"])
            .write_stdin(std::fs::read(&review).unwrap()),
    );
    assert_eq!(from_file, from_stdin);
    // An editor's byte-order mark and closing line end are not part of the review.
    let from_arg = stdout_of(lstm_edge().args([
        "score",
        "-m",
        arg(&m.sentiment),
        "--json",
        "The movie was good, not bad \u{e9}\u{e9}.",
    ]));
    std::fs::write(
        &review,
        "\u{feff}The movie was good, not bad \u{e9}\u{e9}.\r\n",
    )
    .unwrap();
    assert_eq!(score_json(&m.sentiment), from_arg);
    std::fs::write(&review, "The movie was good, not bad \u{e9}\u{e9}.").unwrap();
    // A model directory stands for its model.blob.
    let model_dir = m.dir.join("sent-model");
    std::fs::create_dir(&model_dir).unwrap();
    std::fs::copy(&m.sentiment, model_dir.join("model.blob")).unwrap();
    assert_eq!(from_file, score_json(&model_dir));
    let json: serde_json::Value = serde_json::from_slice(&from_file).unwrap();
    let score = json["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    assert_eq!(json["steps"], 20, "flatten head pads to maxlen");
    // A gzipped file is read as training reads one; UTF-16 is refused with the fix.
    let gz = m.dir.join("review.txt.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Default::default());
    std::io::Write::write_all(
        &mut encoder,
        "The movie was good, not bad \u{e9}\u{e9}.".as_bytes(),
    )
    .unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    assert_eq!(
        from_file,
        stdout_of(lstm_edge().args([
            "score",
            "-m",
            arg(&m.sentiment),
            "--file",
            arg(&gz),
            "--json"
        ]))
    );
    std::fs::write(&review, b"\xff\xfeg\0o\0o\0d\0").unwrap();
    let err =
        stderr_of(lstm_edge().args(["score", "-m", arg(&m.sentiment), "--file", arg(&review)]));
    assert!(
        err.contains("review.txt is UTF-16 text: save it as UTF-8"),
        "{err}"
    );
    let err = stderr_of(
        lstm_edge()
            .args(["score", "-m", arg(&m.sentiment)])
            .write_stdin(&b"\xff\xfeg\0o\0o\0d\0"[..]),
    );
    assert!(err.contains("standard input is UTF-16 text"), "{err}");
    // Non-UTF-8 bytes are scored, not rejected.
    std::fs::write(&review, b"good \xff\xfe movie").unwrap();
    lstm_edge()
        .args(["score", "-m", arg(&m.sentiment), "--file", arg(&review)])
        .assert()
        .success();
}

#[test]
fn bad_input_gives_a_clear_error_and_non_zero_exit() {
    let m = models();
    let missing = m.dir.join("nope.blob");
    let err = stderr_of(lstm_edge().args(["inspect", arg(&missing)]));
    assert!(
        err.contains("cannot read model file") && err.contains("nope.blob"),
        "{err}"
    );

    let err = stderr_of(lstm_edge().args(["score", "-m", arg(&m.dir), "hello"]));
    assert!(err.contains("is a directory without model.blob"), "{err}");

    let err = stderr_of(lstm_edge().args(["score", "-m", arg(&m.corrupt), "hello"]));
    assert!(
        err.contains("corrupt.blob") && err.contains("CRC-32"),
        "{err}"
    );

    let err = stderr_of(lstm_edge().args(["score", "-m", arg(&m.gen_int), "hello"]));
    assert!(
        err.contains("generator") && err.contains("lstm-edge generate"),
        "{err}"
    );

    let err = stderr_of(lstm_edge().args([
        "generate",
        "-m",
        arg(&m.gen_int),
        "-p",
        "a",
        "--length",
        "0",
    ]));
    assert!(err.contains("--length 0 generates nothing"), "{err}");

    let err = stderr_of(lstm_edge().args(["generate", "-m", arg(&m.sentiment), "-p", "x"]));
    assert!(
        err.contains("sentiment") && err.contains("lstm-edge score"),
        "{err}"
    );

    let err =
        stderr_of(lstm_edge().args(["score", "-m", arg(&m.sentiment), "--file", arg(&m.empty)]));
    assert!(err.contains("empty"), "{err}");

    // Text the word tokenizer skips whole (a non-breaking space, a vertical tab) would
    // score as the initial state, on the host and on the device.
    let w = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/w");
    let err = stderr_of(lstm_edge().args(["score", "-m", w, "\u{a0}"]));
    assert!(
        err.contains("the review gives the model no tokens"),
        "{err}"
    );
    let lines = m.dir.join("lines.txt");
    std::fs::write(&lines, "good film\n\x0b\n").unwrap();
    let out = lstm_edge()
        .args(["score", "-m", w, "--lines", "--file", arg(&lines)])
        .assert()
        .failure()
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lines.txt, line 2 gives the model no tokens"),
        "{err}"
    );
    // Refused before the first line's score goes out.
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    let firmware = ["firmware", "build", "-m", w, "--review", "good", "--review"];
    let err = stderr_of(lstm_edge().args(firmware).arg("\u{a0}"));
    assert!(
        err.contains("--review 2 gives the model no tokens"),
        "{err}"
    );
    // A file's reviews, one a line, come after the --reviews and are named by line.
    let err = stderr_of(
        lstm_edge()
            .args(["firmware", "build", "-m", w, "--review", "good"])
            .args(["--review-file", arg(&lines)]),
    );
    assert!(
        err.contains("lines.txt, line 2 gives the model no tokens"),
        "{err}"
    );
    std::fs::write(&lines, "good film\n\nbad\n").unwrap();
    let err =
        stderr_of(lstm_edge().args(["firmware", "build", "-m", w, "--review-file", arg(&lines)]));
    assert!(
        err.contains("lines.txt, line 2: the line is blank"),
        "{err}"
    );
    std::fs::write(&lines, "good film\n").unwrap();
    let generator_file = ["firmware", "build", "-m", arg(&m.gen_int), "--review-file"];
    let err = stderr_of(lstm_edge().args(generator_file).arg(arg(&lines)));
    assert!(err.contains("generator model: it takes --prompt"), "{err}");
    let err =
        stderr_of(lstm_edge().args(["generate", "-m", arg(&m.gen_int), "-p", "a", "-t", "-inf"]));
    assert!(
        err.contains("temperature must be between 0 (greedy) and 100, got -inf"),
        "{err}"
    );
    let build_generator = ["firmware", "build", "-m", arg(&m.gen_int)];
    let err = stderr_of(
        lstm_edge()
            .args(build_generator)
            .args(["--length", "5000000000"]),
    );
    assert!(err.contains("5000000000 is not in 0..=4294967295"), "{err}");

    let err = stderr_of(lstm_edge().args(["firmware", "build", "-m", arg(&m.sentiment)]));
    assert!(err.contains("--review"), "{err}");
    let err =
        stderr_of(lstm_edge().args(["firmware", "build", "-m", arg(&m.gen_int), "--review", "x"]));
    assert!(
        err.contains("generator") && err.contains("--prompt"),
        "{err}"
    );
    // The seed, too, is a generation setting that a sentiment model would ignore.
    for flag in [["--temperature", "0.5"], ["--seed", "5"]] {
        let err = stderr_of(
            lstm_edge()
                .args([
                    "firmware",
                    "build",
                    "-m",
                    arg(&m.sentiment),
                    "--review",
                    "x",
                ])
                .args(flag),
        );
        assert!(
            err.contains("sentiment model")
                && err.contains("--temperature and --seed are for generators")
                && err.contains("--review TEXT or --review-file FILE only"),
            "{err}"
        );
    }
    let err =
        stderr_of(lstm_edge().args(["firmware", "run", "-m", arg(&m.gen_int), "--length", "0"]));
    assert!(err.contains("--length 0 generates nothing"), "{err}");
    let err = stderr_of(lstm_edge().args([
        "firmware",
        "run",
        "-m",
        arg(&m.gen_int),
        "--board",
        "stm32f407",
    ]));
    // Refused before the build, which takes minutes: `run` takes the boards QEMU emulates.
    assert!(
        err.contains("invalid value 'stm32f407'")
            && err.contains("[possible values: mps2-an386, mps2-an385]"),
        "{err}"
    );

    let err = stderr_of(lstm_edge().args(["generate", "-m", arg(&m.gen_no_unk), "-p", "abz"]));
    assert!(
        err.contains("U+007A") && err.contains("no UNK") && err.contains("'z' is not among"),
        "{err}"
    );

    let err =
        stderr_of(lstm_edge().args(["generate", "-m", arg(&m.gen_int), "-p", "a", "-t", "-1"]));
    assert!(err.contains("temperature"), "{err}");

    for seconds in ["0", "nan", "1e30", "-1", "1e-10"] {
        let err = stderr_of(lstm_edge().args(["bench", "--seconds", seconds]));
        assert!(
            err.contains("--seconds must be from 0.001 to 3600"),
            "{err}"
        );
    }
    // A negative count is named as a bad value of its option, not taken for a flag.
    for (command, option) in [
        ("eval", "--limit"),
        ("verify", "--sequences"),
        ("bench", "--ort-threads"),
    ] {
        let err = stderr_of(lstm_edge().args([command, option, "-5"]));
        assert!(
            err.contains(&format!("invalid value '-5' for '{option} ")),
            "{err}"
        );
    }
    let err = stderr_of(lstm_edge().args(["bench", "--ort-threads", "100000"]));
    assert!(err.contains("--ort-threads must be at most 1024"), "{err}");
    // A millisecond per engine times a few calls, which the timings count and a note names.
    let run = lstm_edge()
        .args(["bench", "--seconds", "0.001", "--json"])
        .assert()
        .success();
    let out = run.get_output();
    let timings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls: Vec<u64> = timings
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["calls"].as_u64().unwrap())
        .collect();
    // Four engines a workload, and W's word model also through the memo, kept
    // and new, on both paths.
    assert_eq!(calls.len(), 20, "{timings}");
    assert!(calls.iter().all(|&c| c >= 15), "{calls:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("of the 20 timings ran under 50 times in all (fewest: ")
            && err.contains("figures from so few runs are rough"),
        "{err}"
    );
    assert_bench_int_engines(&timings, false);
    let run = lstm_edge()
        .args(["bench", "--seconds", "0.001", "--json", "--kernel-levels"])
        .assert()
        .success();
    let timings: serde_json::Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    assert_bench_int_engines(&timings, true);
}

/// Each workload's integer engines in a bench's JSON: the best kernels as
/// `runtime int`, then (with `--kernel-levels`) each lower level down to portable.
fn assert_bench_int_engines(timings: &serde_json::Value, kernel_levels: bool) {
    let levels = ["avx512", "avx2", "portable"];
    let timings = timings.as_array().unwrap();
    let mut workloads: Vec<&str> = timings
        .iter()
        .map(|t| t["workload"].as_str().unwrap())
        .collect();
    workloads.dedup();
    assert_eq!(workloads.len(), 4, "{timings:?}");
    for workload in workloads {
        let ints: Vec<(&str, Option<&str>)> = timings
            .iter()
            .filter(|t| t["workload"] == workload && t["engine"].as_str().unwrap().contains("int"))
            .map(|t| (t["engine"].as_str().unwrap(), t["kernels"].as_str()))
            .filter(|(engine, _)| !engine.ends_with(" memo"))
            .collect();
        if !cfg!(target_arch = "x86_64") {
            assert_eq!(ints, [("runtime int", None)]);
            continue;
        }
        let best = ints[0].1.unwrap();
        let from = levels.iter().position(|&l| l == best).unwrap();
        let expected: Vec<(String, Option<&str>)> = match kernel_levels {
            false => vec![("runtime int".to_string(), Some(best))],
            true => levels[from..]
                .iter()
                .enumerate()
                .map(|(i, &level)| match i {
                    0 => ("runtime int".to_string(), Some(level)),
                    _ => (format!("int {level}"), Some(level)),
                })
                .collect(),
        };
        let ints: Vec<(String, Option<&str>)> =
            ints.into_iter().map(|(e, k)| (e.to_string(), k)).collect();
        assert_eq!(ints, expected, "{workload}");
        let others: Vec<&str> = timings
            .iter()
            .filter(|t| t["workload"] == workload)
            .map(|t| t["engine"].as_str().unwrap())
            .skip(ints.len())
            .collect();
        let mut expected = vec!["runtime f32"];
        if workload.starts_with("W ") {
            expected.extend([
                "runtime int, memo",
                "runtime f32, memo",
                "runtime int, new memo",
                "runtime f32, new memo",
            ]);
        }
        expected.extend(["tract", "onnxruntime"]);
        assert_eq!(others, expected, "{workload}");
    }
}

/// `lstm-edge generate ... | head -1`: the reader goes away mid-output. The command must
/// end quietly, not panic on the failed print.
#[cfg(unix)]
#[test]
fn a_closed_output_pipe_ends_the_command_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let m = models();
    // Far more text than a pipe buffers, so the writer is still printing when the
    // reader closes, however the two are scheduled.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lstm-edge"))
        .args(["generate", "-m", arg(&m.gen_int), "-p", "a", "-l", "400000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

/// A full disk behind standard output is an error line and exit code 1, not a panic.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_print_is_an_error_not_a_panic() {
    let m = models();
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("lstm-edge"))
        .args(["inspect", arg(&m.gen_int)])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("Error: cannot write to standard output: No space left on device")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// A prompt in Latin-1 (not UTF-8) reads as the same chars as its UTF-8 spelling,
/// as a corpus file's bytes do, and the text comes out in UTF-8.
#[cfg(unix)]
#[test]
fn a_latin1_prompt_reads_as_its_utf8_spelling() {
    use std::os::unix::ffi::OsStrExt;
    let m = models();
    let blob = m.dir.join("latin1.blob");
    let gen = generator(b"ab \xe6", false);
    std::fs::write(&blob, gen.int_blob(ScaleScheme::PerRow).unwrap()).unwrap();
    let run = |prompt: &[u8]| {
        stdout_of(
            lstm_edge()
                .args(["generate", "-m", arg(&blob), "-l", "30", "-p"])
                .arg(std::ffi::OsStr::from_bytes(prompt)),
        )
    };
    let text = run(b"a\xe6 b");
    assert_eq!(text, run("a\u{e6} b".as_bytes()));
    assert!(text.starts_with("a\u{e6} b".as_bytes()), "{text:?}");
    assert!(std::str::from_utf8(&text).is_ok(), "{text:?}");
}

#[test]
fn score_lines_scores_each_line_as_its_own_review() {
    let m = models();
    let reviews = ["the movie was good", "bad bad movie", "the the good bad"];
    let file = m.dir.join("reviews.txt");
    // CRLF line ends and a final newline, as editors write them.
    std::fs::write(&file, format!("{}\r\n", reviews.join("\r\n"))).unwrap();
    let single: Vec<String> = reviews
        .iter()
        .map(|r| {
            String::from_utf8(stdout_of(lstm_edge().args([
                "score",
                "-m",
                arg(&m.sentiment),
                r,
            ])))
            .unwrap()
        })
        .collect();
    let score_file_lines = || {
        let mut cmd = lstm_edge();
        cmd.args([
            "score",
            "--lines",
            "-m",
            arg(&m.sentiment),
            "--file",
            arg(&file),
        ]);
        cmd
    };
    let out = stdout_of(&mut score_file_lines());
    assert_eq!(String::from_utf8(out).unwrap(), single.concat());
    // Old Mac files end lines with CR alone.
    std::fs::write(&file, format!("{}\r", reviews.join("\r"))).unwrap();
    let out = stdout_of(&mut score_file_lines());
    assert_eq!(String::from_utf8(out).unwrap(), single.concat());

    let out = stdout_of(
        lstm_edge()
            .args(["score", "--lines", "--json", "-m", arg(&m.sentiment)])
            .write_stdin(reviews.join("\n")),
    );
    let text = String::from_utf8(out).unwrap();
    // The line number first, then score --json's fields in its order.
    assert!(
        text.starts_with("{\"line\":1,\"score\":") && text.contains(",\"raw\":"),
        "{text}"
    );
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for (i, (row, text)) in rows.iter().zip(&single).enumerate() {
        assert_eq!(row["line"], i + 1);
        assert!(text.starts_with(&format!("{:.4}", row["score"].as_f64().unwrap())));
    }

    std::fs::write(&file, "good movie\n\nbad movie\n").unwrap();
    let err = stderr_of(&mut score_file_lines());
    assert!(
        err.contains("reviews.txt, line 2") && err.contains("blank"),
        "{err}"
    );
}

#[test]
fn score_cautions_when_most_of_the_text_is_unknown_to_the_model() {
    let m = models();
    let run = |text: &str| {
        let out = lstm_edge()
            .args(["score", "-m", arg(&m.sentiment), "--json", text])
            .assert()
            .success()
            .get_output()
            .clone();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (json, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (json, stderr) = run("le film était magnifique");
    assert_eq!(
        (json["tokens"].as_u64(), json["unknown"].as_u64()),
        (Some(4), Some(4))
    );
    assert!(
        stderr.contains("note: the review: 4 of the 4 tokens are not in the model's vocabulary"),
        "{stderr}"
    );
    let (json, stderr) = run("the movie was good");
    assert_eq!(
        (json["tokens"].as_u64(), json["unknown"].as_u64()),
        (Some(4), Some(1))
    );
    assert!(stderr.is_empty(), "{stderr}");
}

/// `lstm-edge bench --model DIR` times the directory's own files: each engine it
/// has a file for, per char for a generator, per review for a sentiment model.
#[test]
fn bench_times_a_model_directory_with_the_engines_its_files_allow() {
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
    let engines_of = |dir: &str, extra: &[&str]| {
        let out = lstm_edge()
            .args(["bench", "--seconds", "0.001", "--json", "--model", dir])
            .args(extra)
            .assert()
            .success();
        let timings: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        timings
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let workload = t["workload"].as_str().unwrap().to_string();
                (workload, t["engine"].as_str().unwrap().to_string())
            })
            .collect::<Vec<_>>()
    };
    let all = ["runtime int", "runtime f32", "tract", "onnxruntime"];
    let g = engines_of(&format!("{models}/g"), &[]);
    assert_eq!(g.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(), all);
    // A word model is timed through the memo as well.
    let w = engines_of(&format!("{models}/w"), &[]);
    assert_eq!(
        w.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
        [
            "runtime int",
            "runtime f32",
            "runtime int, memo",
            "runtime f32, memo",
            "runtime int, new memo",
            "runtime f32, new memo",
            "tract",
            "onnxruntime"
        ]
    );
    assert!(g.iter().all(|(w, _)| w == "g, per char"), "{g:?}");
    let c = engines_of(&format!("{models}/c-mean"), &["--tokens", "37"]);
    assert!(
        c.iter()
            .all(|(w, _)| w == "c-mean, per review of 37 tokens"),
        "{c:?}"
    );
    assert_eq!(c.len(), 4, "{c:?}");
    // A flatten head reads its maxlen, whatever --tokens says.
    let flatten = engines_of(&format!("{models}/c"), &["--tokens", "37"]);
    assert!(
        flatten
            .iter()
            .all(|(w, _)| w == "c, per review of 1500 tokens"),
        "{flatten:?}"
    );

    // Only the integer blob: the other engines are left out.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{models}/w/model.blob"),
        dir.path().join("model.blob"),
    )
    .unwrap();
    let only = engines_of(dir.path().to_str().unwrap(), &[]);
    let only: Vec<&str> = only.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(
        only,
        ["runtime int", "runtime int, memo", "runtime int, new memo"]
    );

    // What is not a model directory, or lacks its integer blob, is named.
    std::fs::remove_file(dir.path().join("model.blob")).unwrap();
    let err = stderr_of(lstm_edge().args(["bench", "--model", arg(dir.path())]));
    assert!(
        err.contains("has no model.blob") && err.contains("lstm-edge quantize"),
        "{err}"
    );
    let file = format!("{models}/w/model.blob");
    let err = stderr_of(lstm_edge().args(["bench", "--model", &file]));
    assert!(err.contains("is not a model directory"), "{err}");
    let err =
        stderr_of(lstm_edge().args(["bench", "--model", &format!("{models}/w"), "--tokens", "0"]));
    assert!(err.contains("--tokens must be from 1 to 1000000"), "{err}");
    let err = stderr_of(lstm_edge().args(["bench", "--tokens", "5"]));
    assert!(err.contains("--model"), "{err}");
}
