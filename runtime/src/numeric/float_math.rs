//! `exp`, `sigmoid` and `tanh` for the f32 path: the Cephes single-precision
//! polynomials (within about 1 ulp), written without branches on the value but
//! the range selects, so they inline into the cell loop. `libm`'s calls (musl's
//! `expf`, and `tanhf` through `expm1f`) took over 40% of a generated char.
//! Only IEEE adds, multiplies and divides: every target computes the same bits.

use core::f32::consts::LOG2_E;

/// `ln 2` in two parts, so `x - n ln 2` is exact for the `n` used here.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Past this, `e^x` flushes to zero (the smallest normal f32 is `e^-87.34`).
const EXP_MIN: f32 = -87.0;
/// Past this, `e^x` is infinite (`2^n` must stay a normal f32; `e^88.72` overflows).
const EXP_MAX: f32 = 88.0;
/// Adding and subtracting `1.5 * 2^23` rounds an f32 below `2^22` to an integer.
const ROUND: f32 = 12_582_912.0;
/// Below this `|x|`, `tanh` takes its odd polynomial; above, `1 - 2 / (e^2x + 1)`.
const TANH_POLY_BELOW: f32 = 0.625;

/// `e^x`: 0 below -87, +inf above 88, NaN for NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_6e-1)
        * r
        + 0.5;
    let e_r = p * (r * r) + r + 1.0;
    // n lies in [-126, 127] wherever the result is used; `as` saturates elsewhere.
    let two_n = f32::from_bits(((n as i32).wrapping_add(127) as u32 & 0xff) << 23);
    let value = e_r * two_n;
    if x < EXP_MIN {
        0.0
    } else if x > EXP_MAX {
        f32::INFINITY
    } else {
        value
    }
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x)`; `±1` past `|x|` = 44, NaN for NaN.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let z = x * x;
    let near_zero =
        ((((-5.704_988_7e-3 * z + 2.063_908_8e-2) * z - 5.373_971_5e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let magnitude = x.abs();
    let far = (1.0 - 2.0 / (exp(magnitude + magnitude) + 1.0)).copysign(x);
    // NaN takes `far`, which is NaN too.
    if magnitude < TANH_POLY_BELOW {
        near_zero
    } else {
        far
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `step`-th f32 in `[lo, hi]` (all of them where `step` is 1).
    fn floats(lo: f32, hi: f32, step: usize) -> impl Iterator<Item = f32> {
        let ordered = |x: f32| {
            let b = x.to_bits() as i32;
            if b < 0 {
                i32::MIN - b
            } else {
                b
            }
        };
        let unordered = |o: i32| {
            f32::from_bits(if o < 0 {
                (i32::MIN - o) as u32
            } else {
                o as u32
            })
        };
        (ordered(lo)..=ordered(hi)).step_by(step).map(unordered)
    }

    fn ulps(got: f32, want: f64) -> f64 {
        let want32 = want as f32;
        let ulp = (f32::from_bits(want32.abs().to_bits() + 1) - want32.abs()) as f64;
        (got as f64 - want).abs() / ulp
    }

    #[test]
    fn exp_is_within_one_and_a_half_ulps_where_it_is_finite() {
        let mut worst = 0f64;
        for x in floats(EXP_MIN, EXP_MAX, 997) {
            worst = worst.max(ulps(exp(x), (x as f64).exp()));
        }
        assert!(worst <= 1.5, "worst {worst} ulps");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-87.5), 0.0);
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(88.5), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_one_and_a_half_ulps() {
        let mut worst = 0f64;
        for x in floats(-20.0, 20.0, 499) {
            let want = (x as f64).tanh();
            // Near 0 the result is tiny: compare there in the ulps of x's size.
            worst = worst.max(ulps(tanh(x), want));
        }
        assert!(worst <= 1.5, "worst {worst} ulps");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_is_within_1e7_of_f64() {
        let mut worst = 0f64;
        for x in floats(-100.0, 100.0, 499) {
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            worst = worst.max((sigmoid(x) as f64 - want).abs());
        }
        assert!(worst < 1e-7, "worst {worst}");
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid(f32::NAN).is_nan());
    }
}
