//! Every truncation and every single-bit flip of a valid blob is an `Err`, and
//! a body that passes the CRC but holds nonsense never panics.

mod common;

use common::{random_model, widened};
use lstm_edge_runtime::builder::ScaleScheme;
use lstm_edge_runtime::format::{Cell, Head, Header, Output, HEADER_LEN, VERSION};
use lstm_edge_runtime::numeric::{Int, Numeric, F32};
use lstm_edge_runtime::{Error, InputMemo, Logits, Model, Network, Rng, State, Temperature};

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
    // Through a memo, whose words may be formed together ahead of their steps.
    let (pres_len, tokens) = InputMemo::sizes(&net);
    if pres_len <= 1 << 20 {
        let mut pres = vec![N::Pre::default(); pres_len];
        let mut formed = vec![false; tokens];
        if let Ok(mut memo) = InputMemo::new(&net, &mut pres, &mut formed) {
            state.reset();
            let ids = [1u16, 2, 3, 4, 5, 1, 400, 6, 7, 8, 9, u16::MAX, 10, 11];
            let _ = memo.feed_ids(&mut state, &ids);
            let _ = memo.feed(&mut state, 2);
            let _ = memo.finish(&mut state);
        }
    }
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

/// A blob padded to fill a flash region: `from_prefix` reads the model and
/// hands back the padding; the header tells the blob's own length.
#[test]
fn a_padded_blob_is_read_from_its_prefix() {
    for (name, blob) in small_blobs() {
        let header = Header::read(&blob).unwrap();
        assert_eq!(header.blob_len(), blob.len(), "{name}");
        assert_eq!(header.version, VERSION, "{name}");
        let mut padded = blob.clone();
        padded.resize(blob.len() + 100, 0xff);
        let (model, rest) = Model::from_prefix(&padded).unwrap();
        assert_eq!(model, Model::from_bytes(&blob).unwrap(), "{name}");
        assert_eq!(rest, &[0xff; 100][..], "{name}");
        // The prefix is checked as a whole blob is.
        for len in [0, HEADER_LEN - 1, HEADER_LEN, blob.len() - 1] {
            assert!(Model::from_prefix(&blob[..len]).is_err(), "{name}: {len}");
        }
        let mut flipped = padded.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(
            Model::from_prefix(&flipped).err(),
            Some(Error::BadChecksum),
            "{name}"
        );
        assert_eq!(
            Header::read(b"NOPE0000000000000000").err(),
            Some(Error::BadMagic)
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

/// `count` copies of `blob` with one to four random body bytes replaced, and
/// the CRC fixed, through [`exercise`].
fn exercise_corruptions(blob: &[u8], count: usize, seed: u64) {
    let mut rng = common::TestRng::new(seed);
    for _ in 0..count {
        let mut bad = blob.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = HEADER_LEN + rng.below(blob.len() - HEADER_LEN);
            bad[at] = rng.next_u64() as u8;
        }
        with_fixed_crc(&mut bad);
        exercise(&bad);
    }
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
        exercise_corruptions(&blob, 2000, 9);
    }
    // A word model wide enough for a host to form its words together.
    let wide = random_model(Cell::Gru, 3, true, Head::Last, Output::Sigmoid, 0.5, 4);
    exercise_corruptions(&widened(wide, 64, 5).f32_blob().unwrap(), 1000, 11);
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

/// A one-word LSTM word model (hidden 1, last-state head, sigmoid) in integer form, as
/// a body whose fields a test may push past what the quantizer writes.
fn int_word_blob(embed_dim: u16, w_pre_shift: u8) -> Vec<u8> {
    use lstm_edge_runtime::format::{self, Body, Input, IntParams, Params, RowConsts};
    let (rows, tokens, dim) = (4usize, 3usize, usize::from(embed_dim));
    let units: Vec<u8> = (0..rows)
        .flat_map(|_| {
            RowConsts {
                w_mult: 1 << 20,
                r_mult: 1 << 20,
                bias: 0,
                r_bias: 0,
            }
            .to_bytes()
        })
        .collect();
    let (embedding, w) = (vec![127u8; tokens * dim], vec![127u8; rows * dim]);
    let mut head_scale = (1i32 << 30).to_le_bytes().to_vec();
    head_scale.extend_from_slice(&1i32.to_le_bytes());
    let body = Body {
        cell: Cell::Lstm,
        hidden: 1,
        input: Input::Words {
            strings: b"a",
            offsets: &[0, 0, 0, 0, 1, 0, 0, 0],
            embed_dim,
        },
        head: Head::Last,
        output: Output::Sigmoid,
        params: Params::Int(IntParams {
            embedding: &embedding,
            embedding_shifts: &[0; 3],
            w: &w,
            r_align: &[],
            r: &[1; 4],
            units: &units,
            w_pre_shift,
            head_w: &[1],
            head_scale: &head_scale,
            head_b: &[0; 4],
        }),
    };
    format::encode(&body).unwrap()
}

#[test]
fn a_pre_shift_that_could_carry_a_wide_embeddings_sum_past_i32_is_refused() {
    // 1,023 products of at most 2^14, shifted by 7, stay below 2^31; 1,024 may not.
    assert!(Model::from_bytes(&int_word_blob(1023, 7)).is_ok());
    assert!(Model::from_bytes(&int_word_blob(1024, 6)).is_ok());
    assert!(Model::from_bytes(&int_word_blob(4096, 0)).is_ok());
    assert_eq!(
        Model::from_bytes(&int_word_blob(1024, 7)).err(),
        Some(Error::OutOfRange("w_pre_shift"))
    );
}

#[test]
fn f32_weights_that_are_nan_or_infinite_are_refused() {
    use lstm_edge_runtime::format::{Body, Params};
    let blob = generator_f32_blob(Cell::Lstm, 4);
    let model = Model::from_bytes(&blob).unwrap();
    let body: Body<'_> = *model.body();
    let Params::F32(params) = body.params else {
        panic!("an f32 blob holds f32 params")
    };
    // Past MAX_F32_WEIGHT, sums could overflow to +inf and -inf and meet as NaN.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e38, -1.5e6] {
        let mut head_b = params.head_b.to_vec();
        head_b[..4].copy_from_slice(&bad.to_le_bytes());
        let mut poisoned = params;
        poisoned.head_b = &head_b;
        let blob = lstm_edge_runtime::format::encode(&Body {
            params: Params::F32(poisoned),
            ..body
        })
        .unwrap();
        assert_eq!(
            Model::from_bytes(&blob).err(),
            Some(Error::OutOfRange(
                "f32 weights (NaN, infinite, or over 1e6 in size)"
            )),
            "{bad}"
        );
    }
}

#[test]
fn a_logits_or_probabilities_buffer_too_small_is_named_as_such() {
    let blob = generator_f32_blob(Cell::Gru, 2);
    let model = Model::from_bytes(&blob).unwrap();
    let net = Network::<F32>::new(&model).unwrap();
    let mut state = State::<F32, 8>::new();
    net.feed_text(&mut state, b"ab").unwrap();
    let too_small = Error::BufferTooSmall {
        needed: 5,
        capacity: 4,
    };
    let mut short = Logits::<F32, 4>::new();
    assert_eq!(net.logits(&state, &mut short).err(), Some(too_small));
    let mut logits = Logits::<F32, 8>::new();
    let mut probabilities = [0.0f32; 4];
    assert_eq!(
        net.probabilities(&state, &mut logits, &mut probabilities)
            .err(),
        Some(too_small)
    );
    assert_eq!(
        too_small.to_string(),
        "buffer holds 4 entries but the model has 5 output classes"
    );
}

/// The f32 blob of a small random char generator (hidden 3, five classes).
fn generator_f32_blob(cell: Cell, seed: u64) -> Vec<u8> {
    random_model(
        cell,
        3,
        false,
        Head::Last,
        Output::Softmax { classes: 5 },
        0.5,
        seed,
    )
    .f32_blob()
    .unwrap()
}

/// The kernels' methods are public through [`Numeric`]: rows, units and sizes far
/// out of range never panic on overflow (tests build with overflow checks on); a
/// wrapped offset reads an empty or another row, as in a release build.
#[test]
fn kernel_methods_take_out_of_range_rows_without_a_panic() {
    fn probe<N: Numeric>(blob: &[u8]) {
        let model = Model::from_bytes(blob).unwrap();
        let weights = N::weights(&model.body().params).unwrap();
        let h = [N::Act::default(); 8];
        let huge = [usize::MAX, usize::MAX / 2, usize::MAX / 8, 1 << 40, 1 << 62];
        let mut scratch = N::Scratch::<8>::default();
        let mut logits = [N::Logit::default(); 5];
        let mut dims = model.dims();
        let steps = |dims: &lstm_edge_runtime::format::Dims, scratch: &mut N::Scratch<8>| {
            for id in [0, 3] {
                let x = N::embedding_row(&weights, dims, id);
                let step = N::begin_step(&weights, dims, x, &h, scratch);
                for unit in [0, 2].into_iter().chain(huge) {
                    let _ = N::unit_pres::<4, 8>(&step, scratch, unit, &h);
                    let _ = N::unit_pres::<3, 8>(&step, scratch, unit, &h);
                }
            }
        };
        for row in huge {
            let _ = N::embedding_row(&weights, &dims, row);
            let _ = N::head_dot(&weights, &dims, row, 0, &h);
            let _ = N::head_dot(&weights, &dims, 0, row, &h);
            let _ = N::head_dot2(&weights, &dims, row, &h);
        }
        steps(&dims, &mut scratch);
        for size in huge {
            dims.features = size;
            dims.input = size;
            dims.hidden = size;
            let _ = dims.rows();
            let _ = N::embedding_row(&weights, &dims, 3);
            let _ = N::head_dot(&weights, &dims, 2, 1, &h);
            N::head_rows(&weights, &dims, &h, &mut logits);
            steps(&dims, &mut scratch);
        }
    }
    for (name, blob) in small_blobs() {
        if name.ends_with("int") {
            probe::<Int>(&blob);
        } else {
            probe::<F32>(&blob);
        }
    }
    for (gates, hidden, row, col) in [(4, 0, 5, 1), (4, 8, 0, usize::MAX), (usize::MAX, 9, 3, 2)] {
        let _ = lstm_edge_runtime::format::unit_major_index(gates, hidden, row, col);
    }
}
