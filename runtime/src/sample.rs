//! Seeded randomness and temperature for generation.
//!
//! Temperature T reweights p to p^(1/T), renormalised: softmax(logits / T).
//! It is held in thousandths so the integer path needs no float; T = 0 is greedy.

/// A sampling temperature in thousandths (500 = 0.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temperature(u32);

impl Temperature {
    /// Greedy decoding (arg max).
    pub const GREEDY: Temperature = Temperature(0);

    /// `milli / 1000`; 0 is greedy.
    pub const fn from_milli(milli: u32) -> Self {
        Temperature(milli)
    }

    /// The temperature in thousandths.
    pub const fn milli(self) -> u32 {
        self.0
    }

    /// The highest temperature [`Temperature::from_f32`] takes: sampling there is
    /// all but uniform already.
    pub const MAX: f32 = 100.0;

    /// `t` to the nearest thousandth, for `t` from 0 (greedy) to
    /// [`Temperature::MAX`]; `None` for NaN, a `t` outside that range, or a positive
    /// `t` under 0.0005, which would round to greedy (a cast from a float would
    /// turn each of these into greedy decoding without a word).
    pub fn from_f32(t: f32) -> Option<Self> {
        if !(0.0..=Self::MAX).contains(&t) {
            return None;
        }
        // In range, so the product fits a u32; halves round up, as `f32::round`
        // rounds them (`core` has no `round` without std).
        let thousandths = t * 1000.0;
        let whole = thousandths as u32;
        let milli = whole + u32::from(thousandths - whole as f32 >= 0.5);
        (milli > 0 || t == 0.0).then_some(Temperature(milli))
    }
}

/// SplitMix64: small, fast, and the same sequence on every target for a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence the seed fixes.
    pub const fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits (the high half of [`Rng::next_u64`]).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }
}
