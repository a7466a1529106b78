//! A memoised network (`InputMemo`) scores as the network does, bit for bit,
//! with the memo kept across texts, and a state fed through it goes on
//! without it.

mod common;

use common::{random_ids, random_model, widened};
use lstm_edge_runtime::builder::ScaleScheme;
use lstm_edge_runtime::format::{Cell, Head, Output};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Error, InputMemo, Model, Network, State};

/// Scores `texts` with and without one memo kept across them: the hidden
/// states and scores must agree, and every fed token must end up formed.
fn memo_agrees<N: Numeric>(blob: &[u8], texts: &[Vec<u16>]) {
    let model = Model::from_bytes(blob).unwrap();
    let net = Network::<N>::new(&model).unwrap();
    let (pres_len, tokens) = InputMemo::sizes(&net);
    assert_eq!(tokens, net.dims().tokens);
    assert_eq!(pres_len, tokens * net.dims().rows());
    let mut pres = vec![N::Pre::default(); pres_len];
    let mut formed = vec![false; tokens];
    let mut memo = InputMemo::new(&net, &mut pres, &mut formed).unwrap();
    let (mut plain, mut memoised) = (State::<N, 32>::new(), State::<N, 32>::new());
    for ids in texts {
        plain.reset();
        memoised.reset();
        net.feed_ids(&mut plain, ids).unwrap();
        memo.feed_ids(&mut memoised, ids).unwrap();
        assert_eq!(plain.hidden(16), memoised.hidden(16));
        // A state fed through the memo goes on without it.
        for &id in ids.iter().rev().take(3) {
            net.feed(&mut plain, id).unwrap();
            net.feed(&mut memoised, id).unwrap();
        }
        assert_eq!(plain.hidden(16), memoised.hidden(16));
        assert_eq!(
            net.finish(&mut plain).unwrap(),
            memo.finish(&mut memoised).unwrap()
        );
    }
    for &id in texts.iter().flatten() {
        assert!(formed[id as usize], "token {id} was fed but not memoised");
    }
}

#[test]
fn a_memoised_word_model_scores_as_the_network_does() {
    for cell in [Cell::Lstm, Cell::Gru] {
        for head in [Head::Last, Head::Mean, Head::Flatten { maxlen: 40 }] {
            let spec = random_model(cell, 16, true, head, Output::Sigmoid, 0.5, 7);
            // Repeats within a text and across texts, and the flatten head's padding.
            let texts: Vec<Vec<u16>> = (0..6)
                .map(|k| random_ids(&spec, 5 + 7 * k, k as u64))
                .collect();
            memo_agrees::<F32>(&spec.f32_blob().unwrap(), &texts);
            for scheme in [ScaleScheme::PerRow, ScaleScheme::PerGate] {
                memo_agrees::<Int>(&spec.int_blob(scheme).unwrap(), &texts);
            }
        }
    }
}

/// A text's new words have their input sums formed together, ahead of their
/// steps (on hosts with a vector kernel, several embedding rows of 64 or more
/// values against each load of `W`): the same bits as each step's own,
/// whether a row's columns end on a whole block of 8 or leave a tail, and
/// whether the gate rows come in whole fours or not (a GRU of 5 units has 15).
#[test]
fn words_formed_ahead_give_the_sums_each_step_forms() {
    for (cell, hidden) in [(Cell::Lstm, 16), (Cell::Gru, 5), (Cell::Lstm, 3)] {
        for width in [16, 64, 67, 300] {
            let spec = random_model(cell, hidden, true, Head::Mean, Output::Sigmoid, 0.5, 3);
            let spec = widened(spec, width, u64::from(width));
            let texts: Vec<Vec<u16>> = (0..4)
                .map(|k| random_ids(&spec, 9 + 5 * k, k as u64))
                .collect();
            memo_agrees::<F32>(&spec.f32_blob().unwrap(), &texts);
            memo_agrees::<Int>(&spec.int_blob(ScaleScheme::PerRow).unwrap(), &texts);
        }
    }
}

/// Words a flatten head truncates are not formed ahead: fed in two calls,
/// the second counts the steps of the first.
#[test]
fn a_flatten_head_forms_no_word_past_its_maxlen() {
    let spec = random_model(
        Cell::Lstm,
        16,
        true,
        Head::Flatten { maxlen: 6 },
        Output::Sigmoid,
        0.5,
        7,
    );
    let spec = widened(spec, 64, 1);
    let blob = spec.f32_blob().unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let net = Network::<F32>::new(&model).unwrap();
    let (pres_len, tokens) = InputMemo::sizes(&net);
    let mut pres = vec![0.0; pres_len];
    let mut formed = vec![false; tokens];
    let mut memo = InputMemo::new(&net, &mut pres, &mut formed).unwrap();
    // Every word once: the 6th (id 6) is the last a step reads.
    let ids: Vec<u16> = (1..=11).collect();
    let mut state = State::<F32, 16>::new();
    assert_eq!(memo.feed_ids(&mut state, &ids[..3]).unwrap(), 3);
    assert_eq!(memo.feed_ids(&mut state, &ids[3..]).unwrap(), 3);
    let score = memo.finish(&mut state).unwrap();
    let mut plain = State::<F32, 16>::new();
    net.feed_ids(&mut plain, &ids).unwrap();
    assert_eq!(score, net.finish(&mut plain).unwrap());
    let formed_ids: Vec<usize> = (0..tokens).filter(|&id| formed[id]).collect();
    assert_eq!(formed_ids, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_char_model_needs_no_memo_and_runs_as_the_network_does() {
    let spec = random_model(Cell::Lstm, 16, false, Head::Mean, Output::Sigmoid, 0.5, 7);
    let blob = spec.int_blob(ScaleScheme::PerRow).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let net = Network::<Int>::new(&model).unwrap();
    assert_eq!(InputMemo::sizes(&net), (0, 0));
    let mut memo = InputMemo::new(&net, &mut [], &mut []).unwrap();
    let ids = random_ids(&spec, 50, 1);
    let (mut plain, mut memoised) = (State::<Int, 16>::new(), State::<Int, 16>::new());
    net.feed_ids(&mut plain, &ids).unwrap();
    memo.feed_ids(&mut memoised, &ids).unwrap();
    assert_eq!(net.finish(&mut plain), memo.finish(&mut memoised));
}

#[test]
fn short_memo_buffers_are_refused() {
    let spec = random_model(Cell::Gru, 16, true, Head::Last, Output::Sigmoid, 0.5, 7);
    let blob = spec.int_blob(ScaleScheme::PerRow).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let net = Network::<Int>::new(&model).unwrap();
    let (pres_len, tokens) = InputMemo::sizes(&net);
    let mut pres = vec![0; pres_len];
    let mut short = vec![false; tokens - 1];
    assert_eq!(
        InputMemo::new(&net, &mut pres, &mut short).err(),
        Some(Error::MemoTooSmall {
            needed: tokens,
            capacity: tokens - 1
        })
    );
    let mut pres = vec![0; pres_len - 1];
    let mut formed = vec![false; tokens];
    assert_eq!(
        InputMemo::new(&net, &mut pres, &mut formed).err(),
        Some(Error::MemoTooSmall {
            needed: pres_len,
            capacity: pres_len - 1
        })
    );
}
