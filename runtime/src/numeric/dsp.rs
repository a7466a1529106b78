//! Cortex-M DSP kernel for the integer path: four int8 × int16 products per two
//! SMLAD instructions, as CMSIS-NN does it.
//!
//! This is the runtime's only `unsafe` code, audited here: three one-instruction
//! `asm!` blocks (SXTB16, SXTB16 with ROR #8, SMLAD) that only read and write
//! registers. They touch no memory and no stack (`nomem`, `nostack`), and have
//! no effect besides their result (`pure`). SMLAD may set the sticky Q flag,
//! which nothing in this crate reads. Results equal the portable kernel's
//! exactly (the sums cannot overflow: see `format::MAX_HIDDEN`), so host and
//! device stay bit-identical.
#![allow(unsafe_code)]

use core::arch::asm;

/// Sign-extends bytes 0 and 2 of `x` into two 16-bit lanes.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let out: u32;
    // SAFETY: register-only instruction (see the module docs).
    unsafe {
        asm!("sxtb16 {o}, {x}", o = lateout(reg) out, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// Sign-extends bytes 1 and 3 of `x` into two 16-bit lanes.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let out: u32;
    // SAFETY: register-only instruction (see the module docs).
    unsafe {
        asm!("sxtb16 {o}, {x}, ror #8", o = lateout(reg) out, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// `acc + a.lo * b.lo + a.hi * b.hi` on signed 16-bit lanes.
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let out: i32;
    // SAFETY: register-only instruction (see the module docs).
    unsafe {
        asm!("smlad {o}, {a}, {b}, {c}", o = lateout(reg) out, a = in(reg) a, b = in(reg) b,
             c = in(reg) acc, options(pure, nomem, nostack));
    }
    out
}

#[inline(always)]
fn pair(lo: i16, hi: i16) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// Reorders each group of four as `[x0, x2, x1, x3]`, the order SXTB16 splits
/// a weight word into; the last `len % 4` values stay in place.
#[inline(always)]
pub fn pair_layout(x: &[i16], out: &mut [i16]) {
    let (blocks, tail) = x.as_chunks::<4>();
    let (out_blocks, out_tail) = out.as_chunks_mut::<4>();
    for (&[a, b, c, d], o) in blocks.iter().zip(out_blocks) {
        *o = [a, c, b, d];
    }
    for (&v, o) in tail.iter().zip(out_tail) {
        *o = v;
    }
}

/// `Σ w[k] * x[k]`, with `x` in [`pair_layout`] order.
#[inline(always)]
pub fn dot_i8_i16(w: &[u8], x: &[i16]) -> i32 {
    let (w_blocks, w_tail) = w.as_chunks::<4>();
    let (x_blocks, x_tail) = x.as_chunks::<4>();
    let mut acc = 0i32;
    for (&w4, &[x0, x2, x1, x3]) in w_blocks.iter().zip(x_blocks) {
        let word = u32::from_le_bytes(w4);
        acc = smlad(sxtb16(word), pair(x0, x2), acc);
        acc = smlad(sxtb16_ror8(word), pair(x1, x3), acc);
    }
    w_tail.iter().zip(x_tail).fold(acc, |acc, (&w, &x)| {
        acc.wrapping_add((w as i8 as i32) * (x as i32))
    })
}

/// Two rows against the same `x` (in [`pair_layout`] order): each `x` word is
/// loaded once for both.
#[inline(always)]
pub fn dot2_i8_i16(wa: &[u8], wb: &[u8], x: &[i16]) -> (i32, i32) {
    let (a_blocks, a_tail) = wa.as_chunks::<4>();
    let (b_blocks, b_tail) = wb.as_chunks::<4>();
    let (x_blocks, x_tail) = x.as_chunks::<4>();
    let (mut sa, mut sb) = (0i32, 0i32);
    for ((&a4, &b4), &[x0, x2, x1, x3]) in a_blocks.iter().zip(b_blocks).zip(x_blocks) {
        let (a, b) = (u32::from_le_bytes(a4), u32::from_le_bytes(b4));
        let (even, odd) = (pair(x0, x2), pair(x1, x3));
        sa = smlad(sxtb16(a), even, sa);
        sb = smlad(sxtb16(b), even, sb);
        sa = smlad(sxtb16_ror8(a), odd, sa);
        sb = smlad(sxtb16_ror8(b), odd, sb);
    }
    for ((&a, &b), &x) in a_tail.iter().zip(b_tail).zip(x_tail) {
        sa = sa.wrapping_add((a as i8 as i32) * (x as i32));
        sb = sb.wrapping_add((b as i8 as i32) * (x as i32));
    }
    (sa, sb)
}

/// The recurrent sums of the `G` gates of one unit: `w` is the unit's block of
/// a unit-major `R` (see `format::unit_major_index`) and `x` is in
/// [`pair_layout`] order. Each `x` word is loaded once for all `G` gates.
#[inline(always)]
pub fn dot_unit<const G: usize>(w: &[u8], x: &[i16]) -> [i32; G] {
    let (x_blocks, x_tail) = x.as_chunks::<4>();
    let (grouped, w_tail) = w
        .split_at_checked(x_blocks.len() * 4 * G)
        .unwrap_or((&[], w));
    let (words, _) = grouped.as_chunks::<4>();
    let mut sums = [0i32; G];
    for (group, &[x0, x2, x1, x3]) in words.chunks_exact(G).zip(x_blocks) {
        let (even, odd) = (pair(x0, x2), pair(x1, x3));
        for (sum, &w4) in sums.iter_mut().zip(group) {
            let word = u32::from_le_bytes(w4);
            *sum = smlad(sxtb16(word), even, *sum);
            *sum = smlad(sxtb16_ror8(word), odd, *sum);
        }
    }
    super::int::tail_sums(&mut sums, w_tail, x_tail);
    sums
}
