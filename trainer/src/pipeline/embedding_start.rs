//! Where a word model's embedding starts: a word2vec / GloVe file's rows, or skip-gram
//! word2vec trained on the training reviews.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::data::{load_vectors, train_word2vec, MissingRows, Review, Word2VecConfig, WordIndex};
use crate::model::Hyperparams;

/// The rows of a word2vec / GloVe file for the vocabulary's words; words it lacks
/// start random.
pub(super) fn file_embedding(
    path: &Path,
    vocab: &lstm_edge_runtime::tokenize::Vocab<'_>,
    hp: &Hyperparams,
    progress: bool,
) -> Result<EmbeddingStart> {
    let embedding = load_vectors(
        path,
        vocab,
        MissingRows::Random {
            scale: 0.05,
            seed: hp.seed,
        },
        Some(hp.embed_dim),
    )?;
    // Rows without a vector stay random (and fixed, when frozen): worth a word even
    // in a quiet run when they are most of the vocabulary.
    if embedding.found < embedding.missing {
        eprintln!(
            "warning: {}: {embedding}; the other words' rows start random",
            path.display()
        );
    } else if progress {
        eprintln!("{embedding}");
    }
    // Writers end every line; a last line without an end may be a download cut
    // inside its last number, which still reads as a number.
    if let Some(line) = embedding.unended_last_line {
        eprintln!(
            "warning: {}:{line}: the last line has no line end, as in a download cut short: \
             if its last value looks cut, fetch the file again; if it is whole, end the line",
            path.display()
        );
    }
    Ok(EmbeddingStart {
        account: format!("embedding from {}: {embedding}", path.display()),
        values: Some(embedding.values),
    })
}

/// The embedding's starting rows (`None` when a resumed checkpoint holds them) and
/// the card's account of where they came from.
pub(super) struct EmbeddingStart {
    pub(super) values: Option<Vec<f32>>,
    pub(super) account: String,
}

/// Skip-gram vectors trained on the full text of the training reviews (never the
/// validation or test reviews), one row per vocabulary id.
pub(super) fn word2vec_embedding(
    reviews: &[Review],
    vocab: &lstm_edge_runtime::tokenize::Vocab<'_>,
    cfg: &Word2VecConfig,
    progress: bool,
) -> Result<Vec<f32>> {
    let start = Instant::now();
    let mut sentences = Vec::with_capacity(reviews.len());
    let words = WordIndex::new(*vocab);
    for (index, review) in reviews.iter().enumerate() {
        let mut ids = Vec::new();
        words
            .for_each_id(&review.text, |id| {
                ids.push(id);
                Ok(())
            })
            .with_context(|| format!("training review {index}"))?;
        sentences.push(ids);
    }
    let rows = vocab.len() + 2;
    let bar = crate::progress::bar(0, format!("word2vec, {} passes", cfg.epochs), progress);
    let (values, report) = train_word2vec(&sentences, rows, 2, cfg, &bar)?;
    if progress {
        eprintln!(
            "word2vec: {} pass{} over {} tokens of {} training reviews, {} words, {}-d, {:.1} s",
            cfg.epochs,
            if cfg.epochs == 1 { "" } else { "es" },
            report.tokens,
            reviews.len(),
            report.trained_rows,
            cfg.dim,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(values)
}
