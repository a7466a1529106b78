//! Times the x86 integer kernels (AVX2, and AVX-512 where the CPU has it)
//! against scalar code on this host:
//! `cargo run --release -p lstm-edge-runtime --features std --example x86_kernels`.
//! Prints ns per call and GMAC/s (best of several rounds) and checks that the
//! results agree.

#[cfg(target_arch = "x86_64")]
mod bench {
    use lstm_edge_runtime::format::{scale_q32, unit_major_index, RowConsts};
    use lstm_edge_runtime::numeric::int::{exp_q16, sigmoid_q12, tanh_q12};
    use lstm_edge_runtime::numeric::{x86, Int, Numeric};
    use std::hint::black_box;
    use std::time::Instant;

    /// Best ns per call over many short rounds (about 0.3 ms each), so that
    /// rounds which other processes interrupt do not count.
    fn time(mut f: impl FnMut()) -> f64 {
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed().as_micros() < 300 {
            f();
            calls += 1;
        }
        (0..200)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..calls {
                    f();
                }
                start.elapsed().as_nanos() as f64 / f64::from(calls)
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// One line: ns per call, GMAC/s (left blank for kernels without
    /// products, `macs == 0`) and the speed-ups over `baselines`.
    fn report(name: &str, macs: usize, ns: f64, baselines: &[(&str, f64)]) {
        let speedups: String = baselines
            .iter()
            .map(|(what, base)| format!("  {:>5.1}x {what}", base / ns))
            .collect();
        let rate = match macs {
            0 => std::string::String::from("            "),
            _ => format!("{:>6.2} GMAC/s", macs as f64 / ns),
        };
        println!("{name:<44} {ns:>9.1} ns/call {rate}{speedups}");
    }

    /// Deterministic pseudo-random bytes.
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut rng = lstm_edge_runtime::Rng::new(seed);
        (0..n).map(|_| (rng.next_u64() >> 40) as u8).collect()
    }

    fn acts(n: usize, seed: u64) -> Vec<i16> {
        bytes(2 * n, seed)
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// Scalar reference: the unit-major block in memory order, one gate run at a time.
    fn scalar_units<const G: usize>(r: &[u8], hidden: usize, h: &[i16], out: &mut [[i32; G]]) {
        let grouped = hidden / 4 * 4;
        let tail = hidden - grouped;
        for (unit, o) in r.chunks_exact(G * hidden).zip(out.iter_mut()) {
            let mut sums = [0i32; G];
            for (k, group) in unit[..grouped * G].chunks_exact(4 * G).enumerate() {
                for (sum, run) in sums.iter_mut().zip(group.chunks_exact(4)) {
                    for (c, &w) in run.iter().enumerate() {
                        *sum = sum.wrapping_add(i32::from(w as i8) * i32::from(h[4 * k + c]));
                    }
                }
            }
            if tail > 0 {
                for (sum, run) in sums.iter_mut().zip(unit[grouped * G..].chunks_exact(tail)) {
                    for (&w, &x) in run.iter().zip(&h[grouped..]) {
                        *sum = sum.wrapping_add(i32::from(w as i8) * i32::from(x));
                    }
                }
            }
            *o = sums;
        }
    }

    /// The portable host kernel's scheme (`numeric::int`): `h` repeated to the
    /// block's shape once per call, then one contiguous lane-parallel dot
    /// product of `BLOCK = 4 * G` lanes per unit.
    fn portable_units<const G: usize, const BLOCK: usize>(
        r: &[u8],
        hidden: usize,
        h: &[i16],
        out: &mut [[i32; G]],
    ) {
        let mut repeated = [0i16; 4 * 256];
        let (groups, h_tail) = h.as_chunks::<4>();
        for (block, group) in repeated.chunks_exact_mut(BLOCK).zip(groups) {
            for slot in block.as_chunks_mut::<4>().0 {
                *slot = *group;
            }
        }
        let n = groups.len() * BLOCK;
        for (unit, o) in r.chunks_exact(G * hidden).zip(out.iter_mut()) {
            let mut lanes = [0i32; BLOCK];
            let (w_blocks, _) = unit[..n].as_chunks::<BLOCK>();
            let (x_blocks, _) = repeated[..n].as_chunks::<BLOCK>();
            for (wb, xb) in w_blocks.iter().zip(x_blocks) {
                for ((acc, &w), &x) in lanes.iter_mut().zip(wb).zip(xb) {
                    *acc = acc.wrapping_add(i32::from(w as i8) * i32::from(x));
                }
            }
            let t = h_tail.len();
            for ((g, sum), gate) in o.iter_mut().enumerate().zip(lanes.chunks_exact(4)) {
                *sum = gate.iter().fold(0i32, |a, &b| a.wrapping_add(b));
                for (&w, &x) in unit[n + g * t..][..t].iter().zip(h_tail) {
                    *sum = sum.wrapping_add(i32::from(w as i8) * i32::from(x));
                }
            }
        }
    }

    fn units<const G: usize, const BLOCK: usize>(hidden: usize) {
        let r = bytes(G * hidden * hidden, 1);
        let h = acts(hidden, 2);
        let macs = G * hidden * hidden;
        let (mut a, mut b, mut c) = (
            vec![[0i32; G]; hidden],
            vec![[0i32; G]; hidden],
            vec![[0i32; G]; hidden],
        );
        scalar_units(&r, hidden, &h, &mut a);
        portable_units::<G, BLOCK>(&r, hidden, &h, &mut b);
        assert!(x86::unit_sums(&r, hidden, &h, &mut c));
        assert_eq!(a, b);
        assert_eq!(a, c);
        // Sanity check of the layout the kernels assume.
        let row = G * hidden - 1;
        let want = (0..hidden).fold(0i32, |s, k| {
            let w = r[unit_major_index(G, hidden, row, k)] as i8;
            s.wrapping_add(i32::from(w) * i32::from(h[k]))
        });
        assert_eq!(c[hidden - 1][G - 1], want);
        let scalar = time(|| scalar_units(black_box(&r), hidden, black_box(&h), black_box(&mut a)));
        let portable = time(|| {
            portable_units::<G, BLOCK>(black_box(&r), hidden, black_box(&h), black_box(&mut b))
        });
        let avx2 = time(|| {
            black_box(x86::unit_sums(
                black_box(&r),
                hidden,
                black_box(&h),
                black_box(&mut c),
            ));
        });
        let mut d = vec![[0i32; G]; hidden];
        assert!(x86::unit_sums_avx2(&r, hidden, &h, &mut d));
        assert_eq!(a, d);
        let avx2_only = time(|| {
            black_box(x86::unit_sums_avx2(
                black_box(&r),
                hidden,
                black_box(&h),
                black_box(&mut d),
            ));
        });
        let tag = format!("G={G} hidden={hidden}");
        report(
            &format!("unit_sums {tag}, scalar reference"),
            macs,
            scalar,
            &[],
        );
        report(
            &format!("unit_sums {tag}, portable lanes"),
            macs,
            portable,
            &[("scalar", scalar)],
        );
        report(
            &format!("unit_sums {tag}, AVX2"),
            macs,
            avx2_only,
            &[("scalar", scalar), ("portable", portable)],
        );
        if x86::has_avx512() {
            report(
                &format!("unit_sums {tag}, AVX-512"),
                macs,
                avx2,
                &[("scalar", scalar), ("AVX2", avx2_only)],
            );
        }
    }

    fn scalar_dot_i16(w: &[u8], x: &[i16]) -> i32 {
        w.iter().zip(x).fold(0i32, |a, (&w, &x)| {
            a.wrapping_add(i32::from(w as i8) * i32::from(x))
        })
    }

    fn scalar_dot_i8(w: &[u8], x: &[u8]) -> i32 {
        w.iter().zip(x).fold(0i32, |a, (&w, &x)| {
            a.wrapping_add(i32::from(w as i8) * i32::from(x as i8))
        })
    }

    fn dots(n: usize) {
        let w = bytes(n, 3);
        let x = acts(n, 4);
        let e = bytes(n, 5);
        assert_eq!(x86::dot_i8_i16(&w, &x), Some(scalar_dot_i16(&w, &x)));
        assert_eq!(x86::dot_i8_i8(&w, &e), Some(scalar_dot_i8(&w, &e)));
        let s16 = time(|| {
            black_box(scalar_dot_i16(black_box(&w), black_box(&x)));
        });
        let v16 = time(|| {
            black_box(x86::dot_i8_i16(black_box(&w), black_box(&x)));
        });
        let s8 = time(|| {
            black_box(scalar_dot_i8(black_box(&w), black_box(&e)));
        });
        let v8 = time(|| {
            black_box(x86::dot_i8_i8(black_box(&w), black_box(&e)));
        });
        report(&format!("dot_i8_i16 n={n}, scalar reference"), n, s16, &[]);
        report(
            &format!("dot_i8_i16 n={n}, AVX2"),
            n,
            v16,
            &[("scalar", s16)],
        );
        report(&format!("dot_i8_i8 n={n}, scalar reference"), n, s8, &[]);
        report(&format!("dot_i8_i8 n={n}, AVX2"), n, v8, &[("scalar", s8)]);
    }

    fn dense_rows(rows: usize, width: usize) {
        let w = bytes(rows * width, 9);
        let x = acts(width, 10);
        let scalar_rows = |w: &[u8], x: &[i16], out: &mut [i32]| {
            for (o, row) in out.iter_mut().zip(w.chunks_exact(width)) {
                *o = scalar_dot_i16(row, x);
            }
        };
        let per_row = |w: &[u8], x: &[i16], out: &mut [i32]| {
            for (o, row) in out.iter_mut().zip(w.chunks_exact(width)) {
                *o = x86::dot_i8_i16(row, x).unwrap_or_default();
            }
        };
        let (mut a, mut b, mut c) = (vec![0; rows], vec![0; rows], vec![0; rows]);
        scalar_rows(&w, &x, &mut a);
        per_row(&w, &x, &mut b);
        assert!(x86::rows_dot_i8_i16(&w, width, &x, &mut c));
        assert_eq!((&a, &a), (&b, &c));
        let scalar = time(|| scalar_rows(black_box(&w), black_box(&x), black_box(&mut a)));
        let calls = time(|| per_row(black_box(&w), black_box(&x), black_box(&mut b)));
        let avx2 = time(|| {
            black_box(x86::rows_dot_i8_i16(
                black_box(&w),
                width,
                black_box(&x),
                black_box(&mut c),
            ));
        });
        let tag = format!("rows={rows} width={width}");
        let macs = rows * width;
        report(&format!("dense {tag}, scalar reference"), macs, scalar, &[]);
        report(
            &format!("dense {tag}, dot_i8_i16 per row"),
            macs,
            calls,
            &[("scalar", scalar)],
        );
        report(
            &format!("dense {tag}, rows_dot_i8_i16"),
            macs,
            avx2,
            &[("scalar", scalar), ("per row", calls)],
        );
    }

    /// Scalar reference of `x86::prescale`.
    fn scalar_prescale(
        records: &[[u8; 16]],
        wx: &[i32],
        sums: &[i32],
        x_pre: &mut [i32],
        h_pre: &mut [i32],
    ) {
        let rows = records.iter().zip(wx).zip(sums);
        for (((rec, &wx), &s), (x, h)) in rows.zip(x_pre.iter_mut().zip(h_pre)) {
            let c = RowConsts::from_bytes(rec);
            *x = scale_q32(wx, c.w_mult).saturating_add(c.bias);
            *h = scale_q32(s, c.r_mult).saturating_add(c.r_bias);
        }
    }

    fn prescales(n: usize) {
        let words = |seed| -> Vec<i32> {
            bytes(4 * n, seed)
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        let records: Vec<[u8; 16]> = bytes(16 * n, 6)
            .chunks_exact(16)
            .map(|b| b.try_into().unwrap())
            .collect();
        let (wx, sums) = (words(7), words(8));
        let (mut xa, mut ha, mut xb, mut hb) = (vec![0; n], vec![0; n], vec![0; n], vec![0; n]);
        scalar_prescale(&records, &wx, &sums, &mut xa, &mut ha);
        assert!(x86::prescale(&records, &wx, &sums, &mut xb, &mut hb));
        assert_eq!((&xa, &ha), (&xb, &hb));
        let scalar = time(|| {
            scalar_prescale(
                black_box(&records),
                black_box(&wx),
                black_box(&sums),
                black_box(&mut xa),
                black_box(&mut ha),
            )
        });
        let avx2 = time(|| {
            black_box(x86::prescale(
                black_box(&records),
                black_box(&wx),
                black_box(&sums),
                black_box(&mut xb),
                black_box(&mut hb),
            ));
        });
        // Two scaled rows per record.
        report(
            &format!("prescale n={n}, scalar reference"),
            2 * n,
            scalar,
            &[],
        );
        report(
            &format!("prescale n={n}, x86"),
            2 * n,
            avx2,
            &[("scalar", scalar)],
        );
    }

    /// Gate pre-activations over the whole table range and past it.
    fn pres(n: usize, seed: u64) -> Vec<i32> {
        bytes(4 * n, seed)
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) >> 14)
            .collect()
    }

    fn activations(rows: usize) {
        let (x, h) = (pres(rows, 9), pres(rows, 10));
        let (mut a, mut b) = (vec![0i16; rows], vec![0i16; rows]);
        let scalar_gates = |out: &mut [i16]| {
            for (k, ((o, &x), &h)) in out.iter_mut().zip(&x).zip(&h).enumerate() {
                let pre = x.saturating_add(h);
                *o = if k % 4 == 3 {
                    tanh_q12(pre)
                } else {
                    sigmoid_q12(pre)
                };
            }
        };
        scalar_gates(&mut a);
        assert!(x86::lstm_activations(&x, &h, rows, &mut b));
        assert_eq!(a, b);
        let scalar = time(|| scalar_gates(black_box(&mut a)));
        let kernel = time(|| {
            black_box(x86::lstm_activations(
                black_box(&x),
                black_box(&h),
                rows,
                black_box(&mut b),
            ));
        });
        let tag = format!("LSTM activations rows={rows}");
        report(&format!("{tag}, scalar reference"), 0, scalar, &[]);
        report(&format!("{tag}, x86"), 0, kernel, &[("scalar", scalar)]);
    }

    fn lstm_cells(units: usize) {
        let gates = acts(4 * units, 11);
        let c0 = acts(units, 12);
        let scalar_cells = |c: &mut [i16], h: &mut [i16]| {
            for ((g, c), h) in gates.chunks_exact(4).zip(c).zip(h) {
                *c = Int::lstm_cell(g[2], *c, g[0], g[3]);
                *h = Int::lstm_hidden(g[1], *c);
            }
        };
        let (mut ca, mut ha) = (c0.clone(), vec![0; units]);
        scalar_cells(&mut ca, &mut ha);
        let scalar = time(|| scalar_cells(black_box(&mut ca), black_box(&mut ha)));
        let tag = format!("LSTM cells units={units}");
        report(&format!("{tag}, scalar reference"), 0, scalar, &[]);
        type Cells = fn(&[i16], &mut [i16], &mut [i16]) -> usize;
        let mut kernels: Vec<(&str, Cells)> = vec![("AVX2", x86::lstm_cells_avx2)];
        if x86::has_avx512() {
            kernels.push(("AVX-512", x86::lstm_cells));
        }
        for (name, cells) in kernels {
            let (mut cb, mut hb) = (c0.clone(), vec![0; units]);
            let (mut cs, mut hs) = (c0.clone(), vec![0; units]);
            scalar_cells(&mut cs, &mut hs);
            let done = cells(&gates, &mut cb, &mut hb);
            assert_eq!((&cs[..done], &hs[..done]), (&cb[..done], &hb[..done]));
            let kernel = time(|| {
                black_box(cells(
                    black_box(&gates),
                    black_box(&mut cb),
                    black_box(&mut hb),
                ));
            });
            let units_note = format!("{done} of {units} units");
            report(
                &format!("{tag}, {name} ({units_note})"),
                0,
                kernel,
                &[("scalar", scalar)],
            );
        }
    }

    type GruCells = fn(&[i32], &[i32], &[i16], &mut [i16]) -> usize;

    fn gru_cells(units: usize) {
        let (x, h_pre, h_prev) = (pres(3 * units, 13), pres(3 * units, 14), acts(units, 15));
        let (mut a, mut b) = (vec![0i16; units], vec![0i16; units]);
        let scalar_cells = |out: &mut [i16]| {
            let rows = x.chunks_exact(3).zip(h_pre.chunks_exact(3));
            for ((o, (x, h)), &prev) in out.iter_mut().zip(rows).zip(&h_prev) {
                let z = Int::sigmoid(Int::add(x[0], h[0]));
                let r = Int::sigmoid(Int::add(x[1], h[1]));
                let n = Int::tanh(Int::add(x[2], Int::gate_mul(r, h[2])));
                *o = Int::gru_hidden(z, n, prev);
            }
        };
        scalar_cells(&mut a);
        let scalar = time(|| scalar_cells(black_box(&mut a)));
        let tag = format!("GRU cells units={units}");
        report(&format!("{tag}, scalar reference"), 0, scalar, &[]);
        let kernels: [(&str, GruCells); 2] =
            [("x86", x86::gru_cells), ("AVX2", x86::gru_cells_avx2)];
        for (name, cells) in kernels {
            b.fill(0);
            let done = cells(&x, &h_pre, &h_prev, &mut b);
            assert_eq!(
                done,
                units / 8 * 8,
                "{name}: this host runs no vector GRU cell"
            );
            assert_eq!(a[..done], b[..done]);
            let kernel = time(|| {
                black_box(cells(
                    black_box(&x),
                    black_box(&h_pre),
                    black_box(&h_prev),
                    black_box(&mut b),
                ));
            });
            report(&format!("{tag}, {name}"), 0, kernel, &[("scalar", scalar)]);
        }
    }

    fn byte_rows(rows: usize, width: usize) {
        let (w, x) = (bytes(rows * width, 16), bytes(width, 17));
        let macs = rows * width;
        let scalar_rows = |out: &mut [i32]| {
            for (o, row) in out.iter_mut().zip(w.chunks_exact(width)) {
                *o = row.iter().zip(&x).fold(0i32, |a, (&w, &x)| {
                    a.wrapping_add(i32::from(w as i8) * i32::from(x as i8))
                });
            }
        };
        let (mut a, mut b) = (vec![0i32; rows], vec![0i32; rows]);
        scalar_rows(&mut a);
        assert!(x86::rows_dot_i8_i8(&w, width, &x, &mut b));
        assert_eq!(a, b);
        let scalar = time(|| scalar_rows(black_box(&mut a)));
        let kernel = time(|| {
            black_box(x86::rows_dot_i8_i8(
                black_box(&w),
                width,
                black_box(&x),
                black_box(&mut b),
            ));
        });
        // The same rows held to the AVX2 kernels, as on a CPU without AVX-512.
        x86::limit_kernels(x86::KernelLevel::Avx2);
        assert!(x86::rows_dot_i8_i8(&w, width, &x, &mut b));
        assert_eq!(a, b);
        let avx2 = time(|| {
            black_box(x86::rows_dot_i8_i8(
                black_box(&w),
                width,
                black_box(&x),
                black_box(&mut b),
            ));
        });
        x86::limit_kernels(x86::KernelLevel::Avx512);
        let tag = format!("embedding rows {rows}x{width}, rows_dot_i8_i8");
        report(&format!("{tag} scalar"), macs, scalar, &[]);
        report(&format!("{tag} x86"), macs, kernel, &[("scalar", scalar)]);
        report(&format!("{tag} AVX2"), macs, avx2, &[("scalar", scalar)]);
    }

    fn sample_weights(classes: usize) {
        let logits: Vec<i64> = pres(classes, 18)
            .iter()
            .map(|&v| i64::from(v) << 4)
            .collect();
        let max = logits.iter().copied().max().unwrap_or(0);
        let inv_t = (1000i64 << 16) / 500;
        let scalar_weights = |out: &mut [u32]| {
            for (o, &l) in out.iter_mut().zip(&logits) {
                *o = exp_q16((l.saturating_sub(max).max(-(1 << 36)) * inv_t) >> 16);
            }
        };
        let (mut a, mut b) = (vec![0u32; classes], vec![0u32; classes]);
        scalar_weights(&mut a);
        let done = x86::sample_weights(&logits, max, inv_t, &mut b);
        assert_eq!(a[..done], b[..done]);
        let scalar = time(|| scalar_weights(black_box(&mut a)));
        let kernel = time(|| {
            black_box(x86::sample_weights(
                black_box(&logits),
                max,
                inv_t,
                black_box(&mut b),
            ));
        });
        let tag = format!("sampling weights classes={classes}");
        report(&format!("{tag}, scalar reference"), 0, scalar, &[]);
        report(&format!("{tag}, AVX-512"), 0, kernel, &[("scalar", scalar)]);
    }

    pub fn main() {
        if !x86::has_avx2() {
            println!("no AVX2 detected (build with --features std for run-time detection)");
            return;
        }
        units::<4, 16>(64);
        units::<4, 16>(128);
        units::<3, 12>(128);
        units::<4, 16>(32);
        units::<4, 16>(40);
        units::<3, 12>(50);
        units::<3, 12>(48);
        units::<4, 16>(50);
        units::<3, 12>(52);
        dots(128);
        dots(16);
        dense_rows(50, 128);
        dense_rows(50, 64);
        dense_rows(10, 200);
        prescales(512);
        prescales(13);
        byte_rows(200, 300);
        byte_rows(128, 16);
        activations(512);
        activations(200);
        lstm_cells(128);
        lstm_cells(48);
        if x86::has_avx512() {
            gru_cells(128);
            sample_weights(48);
        }
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    bench::main();
    #[cfg(not(target_arch = "x86_64"))]
    println!("the AVX2 kernels exist on x86-64 only");
}
