//! The state is the caller's value: feeding text in pieces, or pausing and
//! resuming a copied state, gives exactly the same result as one pass; so do a
//! text's ids fed whole (`feed_ids`).

mod common;

use common::random_model;
use lstm_edge_runtime::builder::ScaleScheme;
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Fed, Model, Network, State};

// Line breaks without spaces (`<br/>`), so that no cut at a space falls inside one.
const TEXT: &[u8] = b"It was the best of times, it was the worst of times; \xe9t\xc3\xa9 ... \
    Dr. Smith, e.g. the U.S. one,<br/><br/>and 12 more!";

fn pieces_equal_one_pass<N: Numeric>(blob: &[u8]) {
    let model = Model::from_bytes(blob).unwrap();
    let net = Network::<N>::new(&model).unwrap();
    let mut whole = State::<N, 32>::new();
    net.feed_text(&mut whole, TEXT).unwrap();
    // Char models may split anywhere outside a UTF-8 sequence; split at spaces for
    // both, after titles and abbreviations too.
    let mut pieces = State::<N, 32>::new();
    let cuts: Vec<&[u8]> = TEXT.split_inclusive(|&b| b == b' ').collect();
    for (k, piece) in cuts.iter().enumerate() {
        let feed = |state: &mut State<N, 32>| match k + 1 == cuts.len() {
            true => net.feed_text(state, piece),
            false => net.feed_text_piece(state, piece),
        };
        let saved = pieces.clone();
        feed(&mut pieces).unwrap();
        // A copy taken mid-stream continues identically.
        let mut resumed = saved;
        feed(&mut resumed).unwrap();
        assert_eq!(resumed.hidden(16), pieces.hidden(16));
    }
    assert_eq!(pieces.steps(), whole.steps());
    assert_eq!(pieces.hidden(16), whole.hidden(16));
    assert_eq!(
        net.finish(&mut pieces).unwrap(),
        net.finish(&mut whole).unwrap()
    );
    // score_text resets first, so a used state gives the same score as a fresh one.
    let mut used = whole.clone();
    let mut fresh = State::<N, 32>::new();
    assert_eq!(
        net.score_text(&mut used, TEXT).unwrap(),
        net.score_text(&mut fresh, TEXT).unwrap()
    );
}

#[test]
fn streaming_matches_one_pass_for_every_cell_and_path() {
    for cell in [Cell::Lstm, Cell::Gru] {
        for words in [false, true] {
            for head in [Head::Last, Head::Mean, Head::Flatten { maxlen: 200 }] {
                let spec = random_model(cell, 16, words, head, Output::Sigmoid, 0.5, 3);
                pieces_equal_one_pass::<F32>(&spec.f32_blob().unwrap());
                pieces_equal_one_pass::<Int>(&spec.int_blob(ScaleScheme::PerRow).unwrap());
            }
        }
    }
}

#[test]
fn flatten_head_truncates_after_maxlen_and_pads_on_finish() {
    let spec = random_model(
        Cell::Lstm,
        8,
        false,
        Head::Flatten { maxlen: 5 },
        Output::Sigmoid,
        0.5,
        4,
    );
    let blob = spec.int_blob(ScaleScheme::PerGate).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let net = Network::<Int>::new(&model).unwrap();
    let mut state = State::<Int, 8>::new();
    let fed: Vec<Fed> = (0..7).map(|i| net.feed(&mut state, i).unwrap()).collect();
    assert_eq!(&fed[..5], &[Fed::Stepped; 5]);
    assert_eq!(&fed[5..], &[Fed::Truncated; 2]);
    // The first five tokens decide the score, as with post-truncation.
    let mut short = State::<Int, 8>::new();
    (0..5).for_each(|i| {
        net.feed(&mut short, i).unwrap();
    });
    assert_eq!(
        net.finish(&mut state).unwrap(),
        net.finish(&mut short).unwrap()
    );
    // Two tokens are post-padded to five steps.
    let mut padded = State::<Int, 8>::new();
    net.feed(&mut padded, 0).unwrap();
    net.feed(&mut padded, 1).unwrap();
    net.finish(&mut padded).unwrap();
    assert_eq!(padded.steps(), 5);
}

#[test]
fn a_state_smaller_than_the_model_is_an_error() {
    let spec = random_model(Cell::Gru, 16, false, Head::Last, Output::Sigmoid, 0.5, 5);
    let blob = spec.f32_blob().unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let net = Network::<F32>::new(&model).unwrap();
    let mut small = State::<F32, 8>::new();
    assert!(net.feed(&mut small, 0).is_err());
    assert!(net.score_text(&mut small, b"abc").is_err());
}

#[test]
fn flatten_tail_head_keeps_a_texts_last_maxlen_tokens() {
    let text = b"the movie was not good. the plot was bad, the acting was good";
    for words in [false, true] {
        let spec = |head| random_model(Cell::Lstm, 8, words, head, Output::Sigmoid, 0.5, 6);
        let tail_blob = spec(Head::FlattenTail { maxlen: 6 })
            .int_blob(ScaleScheme::PerRow)
            .unwrap();
        // The same weights (the head does not change the draw), cutting the other end.
        let head_blob = spec(Head::Flatten { maxlen: 6 })
            .int_blob(ScaleScheme::PerRow)
            .unwrap();
        let (tail_model, head_model) = (
            Model::from_bytes(&tail_blob).unwrap(),
            Model::from_bytes(&head_blob).unwrap(),
        );
        let tail = Network::<Int>::new(&tail_model).unwrap();
        let head = Network::<Int>::new(&head_model).unwrap();
        let ids = ids_of(&tail, text);
        assert!(ids.len() > 6, "{ids:?}");

        let mut state = State::<Int, 8>::new();
        // A tail must count the whole text's tokens first: no pieces.
        assert_eq!(
            tail.feed_text_piece(&mut state, b"the movie "),
            Err(lstm_edge_runtime::Error::WrongModelKind)
        );
        assert_eq!(state.steps(), 0);
        assert_eq!(tail.feed_text(&mut state, text).unwrap(), 6);
        let tail_score = tail.score_text(&mut state, text).unwrap();
        // The last six ids, fed to the post-truncating head, score the same.
        let mut last_six = State::<Int, 8>::new();
        for &id in &ids[ids.len() - 6..] {
            head.feed(&mut last_six, id).unwrap();
        }
        assert_eq!(tail_score, head.finish(&mut last_six).unwrap());
        assert_ne!(tail_score, head.score_text(&mut state, text).unwrap());
        // The host helper cuts token ids the same way.
        let host = lstm_edge_runtime::host::HostModel::new(&tail_blob).unwrap();
        assert_eq!(
            host.outputs(&ids).unwrap(),
            vec![Int::prob_to_f64(tail_score)]
        );
    }
}

/// The ids the network's tokenizer reads in `text`.
fn ids_of<N: Numeric>(net: &Network<'_, N>, text: &[u8]) -> Vec<u16> {
    let mut ids = Vec::new();
    net.tokenizer()
        .for_each_id(text, |id| {
            ids.push(id);
            Ok(())
        })
        .unwrap();
    ids
}

/// `feed_ids` with the tokenizer's ids of a text steps and scores as `feed_text` on
/// the text: for a flatten tail, only the last `maxlen` ids.
fn ids_score_as_their_text<N: Numeric>(blob: &[u8]) {
    let model = Model::from_bytes(blob).unwrap();
    let net = Network::<N>::new(&model).unwrap();
    let ids = ids_of(&net, TEXT);
    assert!(ids.len() > 5, "{ids:?}");
    let (mut by_text, mut by_ids) = (State::<N, 32>::new(), State::<N, 32>::new());
    let stepped = net.feed_text(&mut by_text, TEXT).unwrap();
    assert_eq!(net.feed_ids(&mut by_ids, &ids).unwrap(), stepped);
    assert_eq!(by_ids.steps(), by_text.steps());
    assert_eq!(
        net.finish(&mut by_ids).unwrap(),
        net.finish(&mut by_text).unwrap()
    );
}

#[test]
fn ids_fed_whole_score_as_their_text_for_every_head() {
    for words in [false, true] {
        for head in [
            Head::Last,
            Head::Mean,
            Head::Flatten { maxlen: 5 },
            Head::FlattenTail { maxlen: 5 },
        ] {
            let spec = random_model(Cell::Lstm, 16, words, head, Output::Sigmoid, 0.5, 7);
            ids_score_as_their_text::<F32>(&spec.f32_blob().unwrap());
            ids_score_as_their_text::<Int>(&spec.int_blob(ScaleScheme::PerRow).unwrap());
        }
    }
}
