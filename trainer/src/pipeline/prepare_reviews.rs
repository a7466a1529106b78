//! Labelled reviews into a sentiment model's encoded training, validation and test
//! sets, with its char or word input.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use lstm_edge_runtime::format::{Head, Output};
use lstm_edge_runtime::tokenize::NOTEBOOK_CHARS;

use crate::card::DataInfo;
use crate::checkpoint::EmbeddingOrigin;
use crate::data::{
    build_word_vocab, encode_chars, encode_words, text_ids, Encoded, HostTokenizer, Review,
    Truncate, Word2VecConfig,
};
use crate::model::{Hyperparams, InputConfig, Params, Preset};
use crate::train::Dataset;

use super::card::LengthRecord;
use super::embedding_start::{file_embedding, word2vec_embedding, EmbeddingStart};
use super::evaluate::eval_set_from_encoded;
use super::prepare::{calibration_from, describe_paths, Prepared};
use super::review_sets::{split_three_ways, PoolUse, ReviewSets, Tokenless};
use super::{EvalSet, TrainJob};

/// Turns reviews into padded id rows with the run's tokenizer.
type ReviewEncoder = dyn Fn(&[Review]) -> Result<Encoded>;

pub(super) fn prepare_reviews(
    job: &TrainJob,
    train_path: &Path,
    test_path: Option<&Path>,
) -> Result<Prepared> {
    let hp = &job.hyper;
    let ReviewSets {
        train: train_reviews,
        validation: val_reviews,
        test: test_reviews,
        pool,
    } = split_three_ways(job, train_path, test_path)?;
    let (input, encode, start) = match hp.preset {
        Preset::W => word_input(job, &train_reviews, train_path)?,
        Preset::C => {
            let input = notebook_char_input();
            let encode = char_encoder(input.clone(), hp);
            (input, encode, None)
        }
        Preset::G | Preset::R => bail!(
            "preset {:?} trains a generator: give --corpus FILE..., not reviews",
            hp.preset
        ),
    };
    let cfg = hp.model_config(input, Output::Sigmoid);
    let pad = cfg.input.pad_id().context("sentiment input without PAD")?;
    let train_enc = encode(&train_reviews)?;
    if let (Some(note), true) = (unknown_chars_note(&cfg.input, &train_enc)?, job.progress) {
        eprintln!("note: {}: {note}", train_path.display());
    }
    let val_enc = encode(&val_reviews)?;
    let test_enc = encode(&test_reviews)?;
    let validation_is_test = test_path.is_none() && !job.selects_on_validation();
    let words = matches!(cfg.input, InputConfig::Words { .. });
    let tokenless = |reviews: &[Review], encoded: &Encoded| Tokenless::count(reviews, encoded, pad);
    let mut from_train = tokenless(&train_reviews, &train_enc);
    if from_train.empty_rows == train_reviews.len() {
        return Err(Tokenless::all_of(train_reviews.len(), train_path, words));
    }
    from_train.add(tokenless(&val_reviews, &val_enc));
    let from_test = tokenless(&test_reviews, &test_enc);
    let test_warning = match test_path {
        Some(path) => from_test.warning(path, words),
        // Held out of --train; counted already when it is the validation set.
        None if !validation_is_test => {
            from_train.add(from_test);
            None
        }
        None => None,
    };
    for warning in from_train
        .warning(train_path, words)
        .into_iter()
        .chain(test_warning)
    {
        eprintln!("warning: {warning}");
    }
    let mut params = Params::init(&cfg, hp.seed);
    if let Some(values) = start.as_ref().and_then(|s| s.values.clone()) {
        params
            .embedding
            .as_mut()
            .context("word model without embedding")?
            .data = values;
    }
    let train_set = eval_set_from_encoded(&train_enc, pad);
    let calibration = calibration_from(&train_set, job.calibration_sequences);
    // Checked before training, which would otherwise end without blobs.
    ensure!(
        calibration.iter().any(|ids| !ids.is_empty()),
        "the first {} training reviews, which calibrate the integer blob, are all empty: \
         raise --calibration, or give reviews with text",
        calibration.len()
    );
    let test_name = match test_path {
        Some(p) => p.display().to_string(),
        None => format!("the held-out share of {}", train_path.display()),
    };
    let mut sources = vec![train_path];
    sources.extend(test_path);
    Ok(Prepared {
        params,
        train: Dataset::from_encoded(&train_enc)?,
        validation: Some(Dataset::from_encoded(&val_enc)?),
        validation_is_test,
        calibration,
        test: match cfg.head {
            Head::Flatten { .. } | Head::FlattenTail { .. } => {
                eval_set_from_encoded(&test_enc, pad)
            }
            Head::Last | Head::Mean => whole_reviews(&cfg.input, &test_reviews)?,
        },
        test_name,
        info: DataInfo {
            sources: describe_paths(&sources),
            train_samples: train_enc.len(),
            validation_samples: val_enc.len(),
            test_samples: test_enc.len(),
            test_fingerprint: None,
            preprocessing: review_preprocessing(
                job,
                pool,
                cfg.input.words(),
                start.as_ref().map(|s| s.account.as_str()),
            ),
        },
        lengths: vec![
            LengthRecord::new("train", &train_enc.stats),
            LengthRecord::new("test", &test_enc.stats),
        ],
        cfg,
    })
}

/// Reviews as the runtime scores them with a last-state or mean head: whole, not cut
/// to the `maxlen` that training batches are padded to, so the card's test figures are
/// what `eval`, `score` and the device give.
fn whole_reviews(input: &InputConfig, reviews: &[Review]) -> Result<EvalSet> {
    let tokenizer = input.tokenizer()?;
    let tokenizer = HostTokenizer::new(&tokenizer);
    let mut set = EvalSet::default();
    for (index, review) in reviews.iter().enumerate() {
        let ids =
            text_ids(&tokenizer, &review.text).with_context(|| format!("test review {index}"))?;
        set.sequences.push(ids);
        set.targets.push(u16::from(review.label));
    }
    Ok(set)
}

/// The card's account of how reviews become ids.
fn review_preprocessing(
    job: &TrainJob,
    pool: PoolUse,
    words: usize,
    embedding: Option<&str>,
) -> String {
    let hp = &job.hyper;
    let used = if pool.used < pool.loaded {
        format!(
            "{} of the {} reviews of the training data (seeded shuffle); ",
            pool.used, pool.loaded
        )
    } else {
        String::new()
    };
    let fit = match hp.truncate {
        Truncate::Post => "post-pad/truncate",
        Truncate::Pre => "post-pad, pre-truncate",
    };
    match hp.preset {
        Preset::W => format!(
            "{used}Treebank words, lowercased, {}; {fit} to {}{}",
            vocabulary_account(words, job.vocab_size),
            hp.maxlen,
            embedding.map_or(String::new(), |e| format!("; {e}"))
        ),
        _ => format!(
            "{used}lowercased chars of the notebook set (+UNK, PAD); {fit} to {}",
            hp.maxlen
        ),
    }
}

/// The vocabulary as kept: the `asked` most frequent words, or all of fewer.
fn vocabulary_account(words: usize, asked: usize) -> String {
    if words < asked {
        format!("all {words} training words (+PAD, UNK; --vocab-size {asked} allows more)")
    } else {
        format!("{words} most frequent training words (+PAD, UNK)")
    }
}

/// A char sentiment model's input: the notebook's chars, lowercased, with UNK and PAD.
pub fn notebook_char_input() -> InputConfig {
    InputConfig::Chars {
        table: NOTEBOOK_CHARS.to_vec(),
        lowercase: true,
        unk: true,
        pad: true,
    }
}

/// Encodes reviews with the tokenizer of a char `input`.
fn char_encoder(input: InputConfig, hp: &Hyperparams) -> Box<ReviewEncoder> {
    let (maxlen, truncate) = (hp.maxlen, hp.truncate);
    Box::new(move |r: &[Review]| {
        let table = input
            .char_table()
            .context("a char encoder needs a char input")??;
        encode_chars(r, &table, maxlen, truncate)
    })
}

/// How many of the chars a char model reads in `encoded` are outside its table (UNK),
/// as the generator's corpus note says; `None` when all are known or for words.
fn unknown_chars_note(input: &InputConfig, encoded: &Encoded) -> Result<Option<String>> {
    let (InputConfig::Chars { table: symbols, .. }, Some(table)) =
        (input, input.char_table().transpose()?)
    else {
        return Ok(None);
    };
    let (Some(unk), pad) = (table.unk_id(), table.pad_id()) else {
        return Ok(None);
    };
    let read = encoded.ids.iter().filter(|&&id| Some(id) != pad);
    let (chars, unknown) = read.fold((0usize, 0usize), |(n, u), &id| {
        (n + 1, u + usize::from(id == unk))
    });
    Ok((unknown > 0).then(|| {
        format!(
            "{unknown} of the {chars} chars the model reads ({:.1}%) are outside its char set \
             {:?} and read as UNK",
            100.0 * unknown as f64 / chars as f64,
            String::from_utf8_lossy(symbols)
        )
    }))
}

/// A word model's input: the vocabulary of the training reviews, their encoder, and
/// the embedding's starting vectors when the job asks for word2vec or a vectors file.
fn word_input(
    job: &TrainJob,
    train_reviews: &[Review],
    train_path: &Path,
) -> Result<(InputConfig, Box<ReviewEncoder>, Option<EmbeddingStart>)> {
    let hp = &job.hyper;
    let vocab = build_word_vocab(
        train_reviews.iter().map(|r| r.text.as_slice()),
        job.vocab_size,
    )?;
    let words = vocab.vocab()?.len();
    // No word at all: refused before word vectors are sought for an empty vocabulary.
    if words == 0 {
        return Err(Tokenless::all_of(train_reviews.len(), train_path, true));
    }
    if words < job.vocab_size && job.progress {
        eprintln!(
            "note: the vocabulary holds {}",
            vocabulary_account(words, job.vocab_size)
        );
    }
    let pretrained = match (&job.word_vectors, job.word2vec_epochs) {
        (Some(_), Some(_)) => {
            bail!("the embedding can start from word2vec training or from a vectors file, not both")
        }
        // The checkpoint holds the embedding; `train` checks that it started the same way.
        _ if job.resumes_checkpoint() => match job.embedding_origin() {
            EmbeddingOrigin::Random => None,
            origin => Some(EmbeddingStart {
                values: None,
                account: format!("embedding from {origin} (as the resumed checkpoint's run)"),
            }),
        },
        (Some(path), None) => Some(file_embedding(path, &vocab.vocab()?, hp, job.progress)?),
        (None, Some(epochs)) => Some(EmbeddingStart {
            values: Some(word2vec_embedding(
                train_reviews,
                &vocab.vocab()?,
                &Word2VecConfig {
                    dim: hp.embed_dim,
                    epochs,
                    seed: hp.seed,
                    ..Word2VecConfig::default()
                },
                job.progress,
            )?),
            account: format!(
                "embedding from {epochs} passes of skip-gram word2vec over the training reviews"
            ),
        }),
        (None, None) => None,
    };
    let input = InputConfig::Words {
        strings: vocab.strings().to_vec(),
        offsets: vocab.offsets().to_vec(),
        embed_dim: hp.embed_dim,
    };
    let (maxlen, truncate) = (hp.maxlen, hp.truncate);
    let encode = Box::new(move |r: &[Review]| encode_words(r, &vocab.vocab()?, maxlen, truncate));
    Ok((input, encode, pretrained))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_says_when_the_vocabulary_holds_fewer_words_than_asked() {
        assert_eq!(
            vocabulary_account(2433, 10_000),
            "all 2433 training words (+PAD, UNK; --vocab-size 10000 allows more)"
        );
        assert_eq!(
            vocabulary_account(8000, 8000),
            "8000 most frequent training words (+PAD, UNK)"
        );
    }

    #[test]
    fn char_reviews_outside_the_char_set_are_counted_as_unk() -> Result<()> {
        let review = |text: &str| Review {
            text: text.as_bytes().to_vec(),
            label: 1,
        };
        let input = notebook_char_input();
        let table = input.char_table().context("chars")??;
        let known = encode_chars(&[review("a fine film")], &table, 20, Truncate::Post)?;
        assert_eq!(unknown_chars_note(&input, &known)?, None);
        let mixed = encode_chars(&[review("fine <br /> 10/10")], &table, 40, Truncate::Post)?;
        let note = unknown_chars_note(&input, &mixed)?.context("no note")?;
        // `<`, `/`, `>`, `0` and the other `/` and `0` are outside the notebook's set.
        assert!(
            note.starts_with("6 of the 17 chars the model reads (35.3%)"),
            "{note}"
        );
        Ok(())
    }

    #[test]
    fn a_resumed_run_keeps_its_first_embedding_start_and_does_not_reread_it() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let vectors = dir.path().join("vectors.txt");
        let words = ["the", "a", "and", "of", "film", "movie", "good", "bad"];
        let lines: String = words
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{w} {} 0.5 -0.25 0.125\n", i as f32 / 8.0))
            .collect();
        std::fs::write(&vectors, lines)?;
        let reviews =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/imdb-sample/train.jsonl.gz");
        let job = |epochs: usize, resume: bool, vectors: Option<&Path>| {
            let source = super::super::DataSource::Reviews {
                train: reviews.clone(),
                test: None,
            };
            let mut job = TrainJob::new("w", Preset::W, source, dir.path().join("out"));
            (job.hyper.maxlen, job.hyper.hidden, job.hyper.embed_dim) = (12, 4, 4);
            (job.hyper.epochs, job.resume, job.threads) = (epochs, resume, 1);
            (job.vocab_size, job.calibration_sequences) = (50, 8);
            job.word_vectors = vectors.map(Path::to_path_buf);
            job
        };
        let first = super::super::run(&job(1, false, Some(&vectors)))?;
        let account = &first.card.card.data.preprocessing;
        assert!(
            account.contains("embedding from")
                && account.contains("vocabulary words have a vector"),
            "{account}"
        );
        let Err(err) = super::super::run(&job(2, true, None)) else {
            panic!("a run resumed from random vectors a checkpoint that started from a file");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("started its embedding from `--word-vectors")
                && err.contains("this run from random vectors"),
            "{err}"
        );
        // The checkpoint holds the embedding: the file is not read again.
        std::fs::remove_file(&vectors)?;
        let report = super::super::run(&job(2, true, Some(&vectors)))?;
        assert_eq!(report.card.history.len(), 2);
        let account = &report.card.card.data.preprocessing;
        assert!(
            account.contains("embedding from `--word-vectors") && account.contains("resumed"),
            "{account}"
        );
        // The same file by another path (it is not read either way) resumes too.
        let elsewhere = dir.path().join(".").join("vectors.txt");
        let report = super::super::run(&job(3, true, Some(&elsewhere)))?;
        assert_eq!(report.card.history.len(), 3);
        Ok(())
    }
}
