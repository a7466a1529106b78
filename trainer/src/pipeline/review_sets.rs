//! A run's training, validation and test reviews, split from the data and checked: test
//! reviews the model trained on, blank or tokenless reviews, one-sided labels.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{anyhow, ensure, Result};

use crate::data::reviews::{excerpt, is_blank};
use crate::data::{split_reviews, Encoded, Review, SplitOptions};

use super::prepare::load_nonempty_reviews;
use super::repeated_files::same_file;
use super::TrainJob;

/// How many of the reviews in the training source a run uses.
#[derive(Clone, Copy)]
pub(super) struct PoolUse {
    pub(super) loaded: usize,
    pub(super) used: usize,
}

/// A run's reviews: training, validation and test, and how much of the source they take.
pub(super) struct ReviewSets {
    pub(super) train: Vec<Review>,
    pub(super) validation: Vec<Review>,
    pub(super) test: Vec<Review>,
    pub(super) pool: PoolUse,
}

/// The training, validation and test reviews of a run.
pub(super) fn split_three_ways(
    job: &TrainJob,
    train_path: &Path,
    test_path: Option<&Path>,
) -> Result<ReviewSets> {
    let hp = &job.hyper;
    if let Some(test_path) = test_path {
        ensure!(
            !same_file(train_path, test_path),
            "--train and --test are the same data ({}): a test set must be reviews the model \
             never trained on; give another --test, or leave it out to hold out a share of --train",
            test_path.display()
        );
    }
    let pool = load_nonempty_reviews(train_path)?;
    let loaded = pool.len();
    let used = hp.train_samples.map_or(loaded, |limit| limit.min(loaded));
    if used < loaded && job.progress {
        eprintln!(
            "note: using {used} of the {loaded} reviews in {} (a seeded sample; --all-reviews \
             takes them all, --limit N sets the number)",
            train_path.display()
        );
    }
    // The preset's own 16,000 is the notebook's sample size, not a request.
    let given = hp.train_samples != hp.preset.defaults().train_samples;
    if let Some(limit) = hp.train_samples.filter(|&limit| given && limit > loaded) {
        eprintln!(
            "note: --limit {limit}, but {} holds {loaded} reviews: all of them are used",
            train_path.display()
        );
    }
    let explicit_test = test_path.map(load_nonempty_reviews).transpose()?;
    if let (Some(test), Some(test_path)) = (&explicit_test, test_path) {
        // Against the whole file, whatever share of it --limit then trains on.
        let (shared, note) = shared_texts(&pool, test, train_path, test_path);
        ensure!(
            shared * 2 <= test.len(),
            "{note}: a test set must be reviews the model never trained on; give another \
             --test, or leave it out to hold out a share of --train"
        );
        if shared > 0 {
            eprintln!("note: {note}; scores on those are not held out");
        }
    }
    let has_test = explicit_test.is_some();
    let split = split_reviews(
        pool,
        explicit_test,
        &SplitOptions {
            seed: hp.seed,
            limit: hp.train_samples,
            test_fraction: hp.validation_split as f64,
            test_limit: job.test_limit,
        },
    )?;
    // With an explicit test set, validation comes out of the training pool (the notebook's
    // 80/20 of its 16,000 reviews) and the test set is only evaluated at the end. Picking
    // an epoch by validation (best epoch, early stop) keeps the test set apart too.
    let (train, val, test) = if has_test || job.selects_on_validation() {
        let mut train = split.train;
        let held = (train.len() as f64 * hp.validation_split as f64).round() as usize;
        ensure!(
            held > 0 || !job.selects_on_validation(),
            "--keep-best and --patience compare epochs by validation loss, and \
             --validation-split {} of the {} training reviews of {} sets none apart: give more \
             reviews or a larger --validation-split",
            hp.validation_split,
            train.len(),
            train_path.display()
        );
        let val = train.split_off(train.len() - held);
        (train, val, split.test)
    } else {
        (split.train, split.test.clone(), split.test)
    };
    let fix = if train.is_empty() {
        "give more reviews or lower --validation-split"
    } else {
        "give --test PATH or raise --validation-split"
    };
    ensure!(
        !train.is_empty() && !test.is_empty(),
        "{} gives {} training and {} test reviews; both need at least one ({fix})",
        train_path.display(),
        train.len(),
        test.len()
    );
    refuse_all_blank(&train, train_path, "training", "there is nothing to learn")?;
    let test_source = test_path.unwrap_or(train_path);
    refuse_all_blank(&test, test_source, "test", "they cannot test the model")?;
    if let Some(warning) = one_sided_warning(train_path, &train, "training reviews") {
        eprintln!("warning: {warning}");
    }
    if let Some(warning) = test_path.and_then(|path| one_sided_warning(path, &test, "test reviews"))
    {
        eprintln!("warning: {warning}");
    }
    // Validation always comes out of the pool, so a file that repeats reviews
    // can put some of them on both sides.
    // Without --test and with an epoch picked on validation, both come from the pool.
    let (mut repeated, mut held_out) = (count_shared(&train, &val), val.len());
    if !has_test && job.selects_on_validation() {
        repeated += count_shared(&train, &test);
        held_out += test.len();
    }
    if repeated > 0 {
        // IMDB's own training set repeats a few reviews: a handful is a note.
        let level = if repeated * 100 < held_out {
            "note"
        } else {
            "warning"
        };
        eprintln!(
            "{level}: {repeated} of the {} {} reviews are word for word among the training \
             reviews ({} repeats reviews): their scores are not held out; remove the repeats{}",
            held_out,
            if has_test { "validation" } else { "held-out" },
            train_path.display(),
            if has_test {
                ""
            } else {
                ", or give --test PATH"
            }
        );
    }
    Ok(ReviewSets {
        train,
        validation: val,
        test,
        pool: PoolUse { loaded, used },
    })
}

/// How many `test` reviews have the text of a review in `train`, and that count in
/// words. The same reviews under another name or format pass the path check.
fn shared_texts(
    train: &[Review],
    test: &[Review],
    train_path: &Path,
    test_path: &Path,
) -> (usize, String) {
    let shared = count_shared(train, test);
    let note = format!(
        "{shared} of the {} test reviews of {} are word for word among the {} reviews of {}",
        test.len(),
        test_path.display(),
        train.len(),
        train_path.display()
    );
    (shared, note)
}

/// Reviews whose text is not blank but gives the model no tokens (a word model skips
/// `<br />` tags and Unicode spaces): each reads as padding alone. The readers name
/// blank ones; these only the tokenizer finds.
#[derive(Default)]
pub(super) struct Tokenless {
    count: usize,
    /// Rows without a token, blank ones included.
    pub(super) empty_rows: usize,
    total: usize,
    first: Option<String>,
}

impl Tokenless {
    /// `reviews` encoded (post-padded) as `encoded`: a row that starts with PAD is empty.
    /// None found yet among `total` reviews.
    pub(super) fn new(total: usize) -> Self {
        Tokenless {
            total,
            ..Self::default()
        }
    }

    pub(super) fn count(reviews: &[Review], encoded: &Encoded, pad: u16) -> Self {
        let mut found = Tokenless::new(reviews.len());
        for (index, review) in reviews.iter().enumerate() {
            let empty = encoded
                .row(index)
                .is_some_and(|row| row.first() == Some(&pad));
            found.check(&review.text, empty);
        }
        found
    }

    pub(super) fn check(&mut self, text: &[u8], empty: bool) {
        self.empty_rows += usize::from(empty);
        if empty && !is_blank(text) {
            self.count += 1;
            self.first
                .get_or_insert_with(|| format!("{:?}", excerpt(text, 40)));
        }
    }

    pub(super) fn add(&mut self, other: Tokenless) {
        self.count += other.count;
        self.empty_rows += other.empty_rows;
        self.total += other.total;
        self.first = self.first.take().or(other.first);
    }

    /// What a word model skips, for the messages.
    fn why(words: bool) -> &'static str {
        if words {
            " (a word model skips whitespace, `<br />` tags and non-breaking spaces)"
        } else {
            ""
        }
    }

    /// Every one of the `reviews` training reviews of `path` gives no tokens.
    pub(super) fn all_of(reviews: usize, path: &Path, words: bool) -> anyhow::Error {
        anyhow!(
            "all {reviews} training reviews of {} give the model no tokens{}: there is nothing \
             to learn; give reviews with text",
            path.display(),
            Self::why(words)
        )
    }

    pub(super) fn warning(&self, path: &Path, words: bool) -> Option<String> {
        let first = self.first.as_ref()?;
        Some(format!(
            "{}: {} of the {} reviews used hold text that gives the model no tokens (e.g. \
             {first}){}; each reads as padding alone: drop them unless that is meant",
            path.display(),
            self.count,
            self.total,
            Self::why(words)
        ))
    }
}

/// Refuses `reviews` (the `what` reviews of `path`) when every text is blank.
fn refuse_all_blank(reviews: &[Review], path: &Path, what: &str, why: &str) -> Result<()> {
    ensure!(
        reviews.iter().any(|r| !is_blank(&r.text)),
        "all {} {what} reviews of {} are empty or blank: {why}; give reviews with text",
        reviews.len(),
        path.display()
    );
    Ok(())
}

/// How many of `held_out` have a text, not blank, that is word for word in `train`.
fn count_shared(train: &[Review], held_out: &[Review]) -> usize {
    let has_text = |r: &&Review| !is_blank(&r.text);
    let seen: HashSet<&[u8]> = train.iter().filter(has_text).map(|r| &r.text[..]).collect();
    held_out
        .iter()
        .filter(has_text)
        .filter(|r| seen.contains(&r.text[..]))
        .count()
}

/// A warning when under a tenth of `reviews` carry one of the labels: always
/// answering the other one then scores over 90%.
pub(super) fn one_sided_warning(path: &Path, reviews: &[Review], what: &str) -> Option<String> {
    let positive = reviews.iter().filter(|r| r.label == 1).count();
    let share = positive as f64 / reviews.len().max(1) as f64;
    (!(0.1..=0.9).contains(&share)).then(|| {
        format!(
            "{}: {positive} of the {} {what} are positive ({:.1}%); \
             accuracy on such one-sided data says little: give both labels in fair numbers",
            path.display(),
            reviews.len(),
            100.0 * share
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use anyhow::Context;

    use crate::data::LengthStats;
    use crate::model::Preset;

    use super::super::prepare_reviews::prepare_reviews;
    use super::*;

    fn reviews(positive: usize, negative: usize) -> Vec<Review> {
        let review = |label| Review {
            text: b"fine".to_vec(),
            label,
        };
        (0..positive)
            .map(|_| review(1))
            .chain((0..negative).map(|_| review(0)))
            .collect()
    }

    #[test]
    fn one_sided_training_reviews_are_warned_about() {
        let path = Path::new("reviews.jsonl");
        let warning = one_sided_warning(path, &reviews(1, 99), "training reviews")
            .expect("1% positive warns");
        assert!(
            warning.contains("reviews.jsonl") && warning.contains("1 of the 100"),
            "{warning}"
        );
        assert!(one_sided_warning(path, &reviews(95, 5), "training reviews").is_some());
        assert!(one_sided_warning(path, &reviews(10, 90), "training reviews").is_none());
        assert!(one_sided_warning(path, &reviews(50, 50), "training reviews").is_none());
    }

    #[test]
    fn keeping_the_best_with_too_few_reviews_to_validate_names_the_split() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let write = |name: &str, count: usize| -> Result<PathBuf> {
            let path = dir.path().join(name);
            let lines: String = (0..count)
                .map(|i| format!("{{\"label\": {}, \"text\": \"a fine film {i}\"}}\n", i % 2))
                .collect();
            std::fs::write(&path, lines)?;
            Ok(path)
        };
        let (train, test) = (write("train.jsonl", 2)?, write("test.jsonl", 4)?);
        let mut job = TrainJob::new(
            "w",
            Preset::W,
            super::super::DataSource::Reviews {
                train: train.clone(),
                test: Some(test.clone()),
            },
            dir.path().join("out"),
        );
        job.keep_best = true;
        let Err(err) = split_three_ways(&job, &train, Some(&test)) else {
            panic!("a run keeping the best epoch had no validation reviews");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("--validation-split 0.2 of the 2 training reviews of")
                && err.contains("train.jsonl"),
            "{err}"
        );
        job.keep_best = false;
        assert!(split_three_ways(&job, &train, Some(&test)).is_ok());
        Ok(())
    }

    #[test]
    fn reviews_that_give_a_word_model_no_tokens_are_counted_and_all_of_them_refused() -> Result<()>
    {
        let dir = tempfile::tempdir()?;
        let train = dir.path().join("train.jsonl");
        let lines: String = (0..10)
            .map(|i| {
                format!(
                    "{{\"label\": {}, \"text\": \"<br /><br />\\u00a0\"}}\n",
                    i % 2
                )
            })
            .collect();
        std::fs::write(&train, lines)?;
        let data = super::super::DataSource::Reviews {
            train: train.clone(),
            test: None,
        };
        let mut job = TrainJob::new("w", Preset::W, data, dir.path().join("out"));
        // Refused as such before word vectors are sought for the empty vocabulary.
        for vectors in [None, Some(dir.path().join("vectors.txt"))] {
            job.word_vectors = vectors;
            let err = format!(
                "{:#}",
                prepare_reviews(&job, &train, None)
                    .err()
                    .context("trained")?
            );
            assert!(
                err.starts_with("all 8 training reviews of")
                    && err.contains("there is nothing to learn"),
                "{err}"
            );
        }
        // Counted among other reviews, blank ones aside (the reader names those).
        let reviews: Vec<Review> = ["<br />", "a film", " ", "\u{a0}"]
            .iter()
            .map(|t| Review {
                text: t.as_bytes().to_vec(),
                label: 1,
            })
            .collect();
        let (pad, maxlen) = (0u16, 3);
        let encoded = Encoded {
            ids: vec![pad, pad, pad, 5, 6, pad, pad, pad, pad, pad, pad, pad],
            labels: vec![1; 4],
            maxlen,
            stats: LengthStats::new(maxlen),
        };
        let found = Tokenless::count(&reviews, &encoded, pad);
        assert_eq!((found.count, found.empty_rows, found.total), (2, 3, 4));
        let warning = found.warning(&train, true).context("no warning")?;
        assert!(warning.contains("2 of the 4 reviews used hold text that gives the model no tokens (e.g. \"<br />\")"), "{warning}");
        Ok(())
    }

    #[test]
    fn a_test_set_of_the_training_reviews_under_another_name_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let jsonl: String = (0..20)
            .map(|i| format!("{{\"label\": {}, \"text\": \"film number {i}\"}}\n", i % 2))
            .collect();
        let csv: String = std::iter::once("review,sentiment\n".to_string())
            .chain((0..20).map(|i| format!("film number {i},{}\n", i % 2)))
            .collect();
        let (train, copy) = (dir.path().join("train.jsonl"), dir.path().join("copy.csv"));
        std::fs::write(&train, jsonl)?;
        std::fs::write(&copy, csv)?;
        let job = TrainJob::new(
            "w",
            Preset::W,
            super::super::DataSource::Reviews {
                train: train.clone(),
                test: Some(copy.clone()),
            },
            dir.path().join("out"),
        );
        let Err(err) = split_three_ways(&job, &train, Some(&copy)) else {
            panic!("the training reviews were accepted as the test set");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("20 of the 20 test reviews of") && err.contains("copy.csv"),
            "{err}"
        );
        // Training on a sample of the file still tests on the file's own reviews.
        let mut sampled = job;
        sampled.hyper.train_samples = Some(5);
        assert!(split_three_ways(&sampled, &train, Some(&copy)).is_err());
        Ok(())
    }
}
