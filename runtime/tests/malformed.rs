//! Every truncation and every single-bit flip of a valid blob is an `Err`, and
//! a body that passes the CRC but holds nonsense never panics.

mod common;

use common::random_model;
use lstm_edge_runtime::builder::ScaleScheme;
use lstm_edge_runtime::format::{Cell, Head, Output, HEADER_LEN};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Error, Logits, Model, Network, Rng, State, Temperature};

fn small_blobs() -> Vec<(&'static str, Vec<u8>)> {
    let sentiment = random_model(
        Cell::Lstm,
        3,
        true,
        Head::Flatten { maxlen: 4 },
        Output::Sigmoid,
        0.5,
        1,
    );
    let generator = random_model(
        Cell::Gru,
        3,
        false,
        Head::Last,
        Output::Softmax { classes: 5 },
        0.5,
        2,
    );
    vec![
        ("words lstm f32", sentiment.f32_blob().unwrap()),
        (
            "words lstm int",
            sentiment.int_blob(ScaleScheme::PerRow).unwrap(),
        ),
        ("chars gru f32", generator.f32_blob().unwrap()),
        (
            "chars gru int",
            generator.int_blob(ScaleScheme::PerGate).unwrap(),
        ),
    ]
}

/// Uses whatever a blob decodes to, on both paths, with odd inputs.
fn exercise(blob: &[u8]) {
    let Ok(model) = Model::from_bytes(blob) else {
        return;
    };
    exercise_path::<Int>(&model);
    exercise_path::<F32>(&model);
}

fn exercise_path<N: Numeric>(model: &Model<'_>) {
    let Ok(net) = Network::<N>::new(model) else {
        return;
    };
    let mut state = State::<N, 8>::new();
    let _ = net.score_text(&mut state, b"The movie was good \xff\xfe!");
    for id in [0u16, 1, 2, 7, 400, u16::MAX] {
        let _ = net.feed(&mut state, id);
    }
    let _ = net.finish(&mut state);
    let mut logits = Logits::<N, 8>::new();
    let mut rng = Rng::new(3);
    for milli in [0, 1, 500, 1000, u32::MAX] {
        let _ = net.sample_next(
            &mut state,
            &mut logits,
            Temperature::from_milli(milli),
            &mut rng,
        );
    }
}

#[test]
fn every_truncation_is_an_error() {
    for (name, blob) in small_blobs() {
        assert!(Model::from_bytes(&blob).is_ok(), "{name} is valid");
        for len in 0..blob.len() {
            let err = Model::from_bytes(&blob[..len]).err();
            assert!(
                err.is_some(),
                "{name}: truncation to {len} bytes was accepted"
            );
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(Model::from_bytes(&longer).err(), Some(Error::TrailingBytes));
        println!(
            "{name}: {} bytes, all {} truncations rejected",
            blob.len(),
            blob.len()
        );
    }
}

#[test]
fn every_single_bit_flip_is_an_error() {
    for (name, blob) in small_blobs() {
        let mut flipped = blob.clone();
        for bit in 0..blob.len() * 8 {
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Model::from_bytes(&flipped).is_err(),
                "{name}: flip of bit {bit} was accepted"
            );
            flipped[bit / 8] ^= 1 << (bit % 8);
        }
        println!("{name}: all {} bit flips rejected", blob.len() * 8);
    }
}

/// Rewrites the CRC after corrupting the body, so decoding and validation (not
/// the checksum) must catch the damage, and whatever still loads must run safely.
fn with_fixed_crc(blob: &mut [u8]) {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&blob[HEADER_LEN..]);
    blob[12..16].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn corrupt_bodies_with_a_valid_crc_never_panic() {
    for (_, blob) in small_blobs() {
        for bit in 0..(blob.len() - HEADER_LEN) * 8 {
            let mut bad = blob.clone();
            bad[HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
            with_fixed_crc(&mut bad);
            exercise(&bad);
        }
        let mut rng = common::TestRng::new(9);
        for _ in 0..2000 {
            let mut bad = blob.clone();
            for _ in 0..1 + rng.below(4) {
                let at = HEADER_LEN + rng.below(blob.len() - HEADER_LEN);
                bad[at] = rng.next_u64() as u8;
            }
            with_fixed_crc(&mut bad);
            exercise(&bad);
        }
    }
}

#[test]
fn header_errors_are_specific() {
    let (_, blob) = small_blobs().remove(0);
    let mut bad = blob.clone();
    bad[0] = b'X';
    assert_eq!(Model::from_bytes(&bad).err(), Some(Error::BadMagic));
    let mut bad = blob.clone();
    bad[4] = 9;
    assert_eq!(
        Model::from_bytes(&bad).err(),
        Some(Error::UnsupportedVersion(9))
    );
    let mut bad = blob.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert_eq!(Model::from_bytes(&bad).err(), Some(Error::BadChecksum));
    assert_eq!(Model::from_bytes(&[]).err(), Some(Error::Truncated));
    let model = Model::from_bytes(&blob).unwrap();
    assert_eq!(Network::<Int>::new(&model).err(), Some(Error::WrongPath));
}
