//! Cortex-M DSP kernels for the integer path: four int8 × int16 (or int8 ×
//! int8) products per two SMLAD instructions, as CMSIS-NN does it.
//!
//! Its `unsafe` code is audited here (the x86 kernels in `numeric/x86/` are the
//! runtime's other exception):
//! - three one-instruction `asm!` blocks (SXTB16, SXTB16 with ROR #8, SMLAD)
//!   that only read and write registers: no memory, no stack (`nomem`,
//!   `nostack`), no effect besides their result (`pure`);
//! - one loop ([`grouped_sums`]) that reads, never writes, a unit's weight
//!   block and `h` with two-word loads (LDRD). Its one caller checks the
//!   lengths and the word alignment LDRD needs, and falls back to the
//!   single-word loop otherwise;
//! - two loops ([`pair_sums`], and [`row_sum`] for one row) that read, never
//!   write, rows of a word model's `W` and the embedding row with
//!   single-word loads (LDR, which needs no alignment), and their column
//!   tails. Their one caller checks once that every gate row of the unit
//!   lies inside `W`.
//!
//! SMLAD may set the sticky Q flag, which nothing in this crate reads. Results equal the portable kernel's
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

/// One gate's two SMLADs on a weight word `w` and the `x` pair words; `t` is
/// scratch and `w` is overwritten.
macro_rules! gate_word {
    ($acc:literal, $w:literal) => {
        concat!(
            "sxtb16 {t}, {",
            $w,
            "}\n",
            "smlad {",
            $acc,
            "}, {t}, {xe}, {",
            $acc,
            "}\n",
            "sxtb16 {",
            $w,
            "}, {",
            $w,
            "}, ror #8\n",
            "smlad {",
            $acc,
            "}, {",
            $w,
            "}, {xo}, {",
            $acc,
            "}\n",
        )
    };
}

/// A loop over the words of an int8 `x` (from `{x}` to `{end}`): each word is
/// loaded and split into the `xe` and `xo` lanes of [`gate_word!`], then each
/// `(sum, row)` takes the next weight word of its row.
macro_rules! rows_loop {
    ($(($acc:literal, $row:literal)),+) => {
        concat!(
            "2:\n",
            "ldr {xo}, [{x}], #4\n",
            "sxtb16 {xe}, {xo}\n",
            "sxtb16 {xo}, {xo}, ror #8\n",
            $("ldr {p}, [{", $row, "}], #4\n", gate_word!($acc, "p"),)+
            "cmp {x}, {end}\n",
            "bne 2b\n",
        )
    };
}

/// `(Σ a[k] * x[k], Σ b[k] * x[k])` for int8 rows `a` and `b` and an int8 `x`
/// (a word model's embedding row): each `x` word is loaded and split once for
/// both rows, and the loop costs 15 instructions per four columns of the pair.
///
/// # Safety
/// `a` and `b` are valid for reads of `x.len()` bytes.
#[inline(always)]
unsafe fn pair_sums(a: *const u8, b: *const u8, x: &[u8]) -> (i32, i32) {
    let grouped = x.len() & !3;
    let (mut sa, mut sb) = (0i32, 0i32);
    if grouped > 0 {
        let end = x.as_ptr().wrapping_add(grouped);
        // SAFETY: the caller's bounds; the loop reads the first `grouped`
        // bytes of `x`, `a` and `b`, a word at a time (LDR, which takes any
        // alignment on these cores), and writes only registers.
        unsafe {
            asm!(
                rows_loop!(("sa", "a"), ("sb", "b")),
                x = inout(reg) x.as_ptr() => _,
                a = inout(reg) a => _,
                b = inout(reg) b => _,
                end = in(reg) end,
                sa = inout(reg) sa, sb = inout(reg) sb,
                xe = out(reg) _, xo = out(reg) _, p = out(reg) _, t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
    for (k, &x) in x.iter().enumerate().skip(grouped) {
        // SAFETY: `k < x.len()`, inside both rows (the caller's bounds).
        let (wa, wb) = unsafe { (*a.add(k), *b.add(k)) };
        let x = x as i8 as i32;
        sa = sa.wrapping_add((wa as i8 as i32) * x);
        sb = sb.wrapping_add((wb as i8 as i32) * x);
    }
    (sa, sb)
}

/// `Σ a[k] * x[k]`: [`pair_sums`] for one row (a GRU's third gate), 10
/// instructions per four columns.
///
/// # Safety
/// `a` is valid for reads of `x.len()` bytes.
#[inline(always)]
unsafe fn row_sum(a: *const u8, x: &[u8]) -> i32 {
    let grouped = x.len() & !3;
    let mut sum = 0i32;
    if grouped > 0 {
        let end = x.as_ptr().wrapping_add(grouped);
        // SAFETY: as in `pair_sums`, for one row.
        unsafe {
            asm!(
                rows_loop!(("sum", "a")),
                x = inout(reg) x.as_ptr() => _,
                a = inout(reg) a => _,
                end = in(reg) end,
                sum = inout(reg) sum,
                xe = out(reg) _, xo = out(reg) _, p = out(reg) _, t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
    for (k, &x) in x.iter().enumerate().skip(grouped) {
        // SAFETY: `k < x.len()`, inside the row (the caller's bounds).
        let w = unsafe { *a.add(k) };
        sum = sum.wrapping_add((w as i8 as i32) * (x as i8 as i32));
    }
    sum
}

/// The input sums of the `G` gates of `unit` for a word model: rows `gate *
/// hidden + unit` of `W` (ONNX row order, `e.len()` bytes a row) times the
/// embedding row `e`, two gates at a time. One bounds check covers all the
/// rows; all sums are 0 when one would lie outside `w` (the format's checks
/// rule that out for a loaded blob).
///
/// Not inlined: inside the step loop, which every model's image holds, its
/// ten registers at once cost every model, char models included, 64 to 72
/// bytes of stack; the call costs word models at most 4% of their
/// instructions (see the README's device figures).
#[inline(never)]
pub fn dot_gate_rows<const G: usize>(w: &[u8], hidden: usize, unit: usize, e: &[u8]) -> [i32; G] {
    dot_gate_rows_checked(w, hidden, unit, e).unwrap_or([0; G])
}

#[inline(always)]
fn dot_gate_rows_checked<const G: usize>(
    w: &[u8],
    hidden: usize,
    unit: usize,
    e: &[u8],
) -> Option<[i32; G]> {
    let input = e.len();
    let stride = hidden.checked_mul(input)?;
    let first = unit.checked_mul(input)?;
    let last = G.checked_sub(1)?.checked_mul(stride)?.checked_add(first)?;
    if last.checked_add(input)? > w.len() {
        return None;
    }
    // Gate `g`'s row starts at `g * stride + first <= last`: no overflow.
    let row = |gate: usize| {
        w.as_ptr()
            .wrapping_add(gate.wrapping_mul(stride).wrapping_add(first))
    };
    let mut sums = [0i32; G];
    for (pair, out) in sums.chunks_mut(2).enumerate() {
        let gate = 2 * pair;
        // SAFETY: every gate's row holds `input` bytes of `w` (checked above).
        match out {
            [sa, sb] => (*sa, *sb) = unsafe { pair_sums(row(gate), row(gate + 1), e) },
            // A GRU's last gate alone.
            [s] => *s = unsafe { row_sum(row(gate), e) },
            _ => {}
        }
    }
    Some(sums)
}

/// One group of four columns of a 4-gate unit block: the `x` pair words and
/// the gates' weight words, two words per load.
macro_rules! group4 {
    () => {
        concat!(
            "ldrd {xe}, {xo}, [{x}], #8\n",
            "ldrd {p}, {q}, [{w}], #8\n",
            gate_word!("a0", "p"),
            gate_word!("a1", "q"),
            "ldrd {p}, {q}, [{w}], #8\n",
            gate_word!("a2", "p"),
            gate_word!("a3", "q"),
        )
    };
}

/// The same for a 3-gate unit block.
macro_rules! group3 {
    () => {
        concat!(
            "ldrd {xe}, {xo}, [{x}], #8\n",
            "ldrd {p}, {q}, [{w}], #8\n",
            gate_word!("a0", "p"),
            gate_word!("a1", "q"),
            "ldr {p}, [{w}], #4\n",
            gate_word!("a2", "p"),
        )
    };
}

/// Adds the products of the first `2 * pairs` column groups to `sums`. With
/// word-aligned data, a group of 16 products (4 gates) costs 19 instructions
/// plus one loop test per two groups.
///
/// # Safety
/// `pairs > 0`; `w` and `x` are word-aligned, and `w` holds at least
/// `2 * pairs * 4 * G` bytes and `x` at least `2 * pairs * 4` values.
#[inline(always)]
unsafe fn grouped_sums<const G: usize>(w: &[u8], x: &[i16], pairs: usize, sums: &mut [i32; G]) {
    let end = x.as_ptr().wrapping_add(8 * pairs);
    if let Some([a0, a1, a2, a3]) = sums.first_chunk_mut::<4>() {
        // SAFETY: the caller's bounds and alignment; the loop reads
        // `[x, end)` and the matching `8 * pairs * 4` bytes of `w`, and writes
        // only registers.
        unsafe {
            asm!(
                "2:",
                group4!(),
                group4!(),
                "cmp {x}, {end}",
                "bne 2b",
                x = inout(reg) x.as_ptr() => _,
                w = inout(reg) w.as_ptr() => _,
                end = in(reg) end,
                a0 = inout(reg) *a0, a1 = inout(reg) *a1,
                a2 = inout(reg) *a2, a3 = inout(reg) *a3,
                xe = out(reg) _, xo = out(reg) _, p = out(reg) _, q = out(reg) _, t = out(reg) _,
                options(nostack, readonly),
            );
        }
    } else if let Some([a0, a1, a2]) = sums.first_chunk_mut::<3>() {
        // SAFETY: as above, with 3 words of `w` per group.
        unsafe {
            asm!(
                "2:",
                group3!(),
                group3!(),
                "cmp {x}, {end}",
                "bne 2b",
                x = inout(reg) x.as_ptr() => _,
                w = inout(reg) w.as_ptr() => _,
                end = in(reg) end,
                a0 = inout(reg) *a0, a1 = inout(reg) *a1, a2 = inout(reg) *a2,
                xe = out(reg) _, xo = out(reg) _, p = out(reg) _, q = out(reg) _, t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
}

/// How [`dot_unit`] splits a step's unit blocks, worked out once per step.
#[derive(Debug, Clone, Copy)]
pub struct UnitPlan {
    /// Bytes per unit block (`gates * hidden`).
    block: usize,
    /// Column-group pairs for the two-word loop: 0 when `R` or `h` is not
    /// word-aligned.
    pairs: usize,
    /// The loop covers every column, so no single-word code runs.
    whole: bool,
}

impl UnitPlan {
    /// For a unit-major `r` and `h` in [`pair_layout`] order.
    #[inline(always)]
    pub fn new(r: &[u8], h: &[i16], gates: usize, hidden: usize) -> Self {
        let block = gates.wrapping_mul(hidden);
        let groups = hidden / 4;
        let aligned = (r.as_ptr() as usize | h.as_ptr() as usize | block).is_multiple_of(4);
        let pairs = if aligned && (gates == 3 || gates == 4) {
            groups / 2
        } else {
            0
        };
        UnitPlan {
            block,
            pairs,
            whole: pairs > 0 && 8 * pairs == hidden,
        }
    }
}

/// The recurrent sums of the `G` gates of `unit`: its block of a unit-major
/// `r` (see `format::unit_major_index`) times `x` in [`pair_layout`] order.
/// Each `x` word is loaded once for all `G` gates.
#[inline(always)]
pub fn dot_unit<const G: usize>(plan: &UnitPlan, r: &[u8], unit: usize, x: &[i16]) -> [i32; G] {
    let Some(w) = r
        .get(unit.wrapping_mul(plan.block)..)
        .and_then(|b| b.get(..plan.block))
    else {
        return [0; G];
    };
    let mut sums = [0i32; G];
    let pairs = plan.pairs;
    // Divided rather than multiplied, so no `pairs` overflows.
    let fits = pairs <= w.len() / (8 * G) && pairs <= x.len() / 8;
    let aligned = (w.as_ptr() as usize | x.as_ptr() as usize).is_multiple_of(4);
    if pairs > 0 && fits && aligned {
        // SAFETY: `w` holds at least `2 * pairs * 4 * G` bytes and `x` at least
        // `2 * pairs * 4` values, both word-aligned (checked just above).
        unsafe { grouped_sums::<G>(w, x, pairs, &mut sums) };
        if plan.whole {
            return sums;
        }
    }
    let done = if fits && aligned { 2 * pairs } else { 0 };
    let (x_blocks, x_tail) = x.as_chunks::<4>();
    let (grouped, w_tail) = w
        .split_at_checked(x_blocks.len() * 4 * G)
        .unwrap_or((&[], w));
    let (words, _) = grouped.as_chunks::<4>();
    let rest = words.chunks_exact(G).zip(x_blocks).skip(done);
    for (group, &[x0, x2, x1, x3]) in rest {
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
