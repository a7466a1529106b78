//! A generator's corpus into its char windows: training, validation and held-out test
//! sets.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use lstm_edge_runtime::format::Output;

use crate::card::DataInfo;
use crate::data::reviews::names_review_data;
use crate::data::{read_corpus, CharSet, CharWindows};
use crate::model::{InputConfig, Params};
use crate::train::Dataset;

use super::evaluate::eval_set_from_windows;
use super::prepare::{calibration_from, describe_paths, held_out_name, Prepared};
use super::repeated_files::warn_of_repeated_files;
use super::{is_sentiment, TrainJob, CORPUS_HELD_OUT};

pub(super) fn prepare_corpus(job: &TrainJob, files: &[PathBuf]) -> Result<Prepared> {
    let hp = &job.hyper;
    ensure!(
        !is_sentiment(hp.preset),
        "preset {:?} trains a sentiment model: give --train PATH with labelled reviews, not a corpus",
        hp.preset
    );
    warn_of_repeated_files(
        files,
        "that text is trained on twice, and held-out windows may repeat it",
    );
    for file in files.iter().filter(|f| names_review_data(f)) {
        eprintln!(
            "warning: {} is named as labelled review data: a generator trains on every byte \
             of a corpus, its field names, labels and quotes too; give plain text",
            file.display()
        );
    }
    let text = read_corpus(files)?;
    // A window reads maxlen chars and predicts the next one.
    let span = hp.maxlen + 1;
    if hp.window_step > span {
        let skipped = 100 * (hp.window_step - span) / hp.window_step;
        eprintln!(
            "warning: --window-step {} is more than a window's {span} chars (--maxlen {} and \
             the char it predicts): {skipped}% of the text lies between windows and is never \
             trained on; give a step of at most {span}",
            hp.window_step, hp.maxlen
        );
    }
    let sources = describe_paths(files);
    let named = sources.join(", ");
    let charset = CharSet::of(&text, true);
    let unk_summary = charset.unk_summary();
    if let (Some(summary), true) = (&unk_summary, job.progress) {
        eprintln!("note: the corpus ({named}): {summary}");
    }
    let table = charset.table(true)?;
    ensure!(
        table.len() >= 2,
        "the corpus ({named}) holds a single symbol once lowercased ({}): a generator \
         predicts the next char among at least two; give more varied text",
        charset
            .symbols
            .first()
            .map_or("only chars beyond Latin-1, all UNK".into(), |&b| {
                format!("{:?}", char::from(b))
            })
    );
    let windows = CharWindows::new(&text, &table, hp.maxlen, hp.window_step, CORPUS_HELD_OUT)
        .with_context(|| format!("the corpus ({named}): give more text or a smaller --maxlen"))?;
    ensure!(
        !windows.train().is_empty() && !windows.held_out().is_empty(),
        "the corpus ({named}) gives {} window{} of {} chars taken every {}: too few to hold \
         some out; give more text, or a smaller --window-step or --maxlen",
        windows.len(),
        if windows.len() == 1 { "" } else { "s" },
        hp.maxlen,
        hp.window_step
    );
    let input = InputConfig::Chars {
        table: charset.symbols.clone(),
        lowercase: true,
        unk: charset.needs_unk,
        pad: false,
    };
    let classes = u16::try_from(table.len()).context("char table over 65535 entries")?;
    let cfg = hp.model_config(input, Output::Softmax { classes });
    // Validation is the held-out set, unless an epoch is picked by validation (best
    // epoch, early stop): then the windows just before the held-out ones validate.
    let (train, validation) = if job.selects_on_validation() {
        windows.split_train(CORPUS_HELD_OUT).with_context(|| {
            format!("the corpus ({named}) is too short to set validation windows apart from the held-out ones; give more text, or a smaller --window-step")
        })?
    } else {
        (windows.train(), windows.held_out())
    };
    let train_set = eval_set_from_windows(&windows, train.clone());
    Ok(Prepared {
        params: Params::init(&cfg, hp.seed),
        train: Dataset::from_windows(&windows, train.clone())?,
        validation: Some(Dataset::from_windows(&windows, validation.clone())?),
        validation_is_test: !job.selects_on_validation(),
        calibration: calibration_from(&train_set, job.calibration_sequences),
        test: eval_set_from_windows(&windows, windows.held_out()),
        test_name: held_out_name(hp.maxlen, &named),
        info: DataInfo {
            sources,
            train_samples: train.len(),
            validation_samples: validation.len(),
            test_samples: windows.held_out().len(),
            test_fingerprint: None,
            preprocessing: format!(
                "{} chars lowercased, {} symbols{}; windows of {} every {}; last {:.0}% held out{}",
                charset.chars,
                table.len(),
                unk_summary.map_or(String::new(), |s| format!(" ({s})")),
                hp.maxlen,
                hp.window_step,
                CORPUS_HELD_OUT * 100.0,
                if job.selects_on_validation() {
                    format!(
                        ", the {:.0}% of the rest before it validates",
                        CORPUS_HELD_OUT * 100.0
                    )
                } else {
                    String::new()
                }
            ),
        },
        lengths: Vec::new(),
        cfg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::Preset;

    #[test]
    fn a_corpus_of_one_symbol_is_refused_before_the_run_starts() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let corpus = dir.path().join("a.txt");
        std::fs::write(&corpus, "aAaA".repeat(500))?;
        let out = dir.path().join("out");
        let files = vec![corpus];
        let job = TrainJob::new(
            "g",
            Preset::G,
            super::super::DataSource::Corpus {
                files: files.clone(),
            },
            out.clone(),
        );
        let Err(err) = super::super::run(&job) else {
            panic!("a one-symbol corpus trained");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("a.txt") && err.contains("single symbol") && err.contains("'a'"),
            "{err}"
        );
        assert!(!out.exists(), "the out directory was made");
        Ok(())
    }
}
