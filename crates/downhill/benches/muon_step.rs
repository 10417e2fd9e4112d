//! Muon's step on an MLP's matrices next to the matrix-product layer's own
//! rate on the same product shapes, in the same process.
//!
//! ```text
//! cargo bench -p downhill --bench muon_step -- [--shapes 1000x1000,784x1000] [--seconds 2] [--f64]
//! ```
//!
//! A Muon step on an r×k matrix (r ≤ k; a tall one is transposed) runs
//! `ns_steps` Newton–Schulz iterations of three products: X·Xᵀ (r×r×k),
//! A·A (r×r×r) and P·X (r×k×r), `2r²k + 2r³ + 2r²k` flops each; the rest of
//! the step (momentum, the norm, the update) streams the matrix a few times.
//! The reference times the same three products through `downhill::linalg`
//! directly, so the ratio says how much of the products' rate a whole step
//! keeps. With `--json` it prints one JSON line per shape, for
//! `bench/muon_vs_torch.py`.

use downhill::linalg::{gemm, Mat, Par};
use downhill::optim::{Muon, Optimizer, Rule};
use downhill::Real;
use std::time::Instant;

/// Best time of one call of `f` over about `seconds` (at least 3 calls, one warm-up).
fn best_time(seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let (mut best, mut runs) = (f64::INFINITY, 0);
    while runs < 3 || start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

/// Seconds for the products of one Muon step (5 iterations) on an r×k matrix.
fn products<T: Real>(r: usize, k: usize, seconds: f64) -> f64 {
    let x: Vec<T> = (0..r * k)
        .map(|i| T::from_f64(((i % 17) as f64 - 8.0) * 1e-3))
        .collect();
    let mut y = vec![T::zero(); r * k];
    let mut a = vec![T::zero(); r * r];
    let mut p = vec![T::zero(); r * r];
    best_time(seconds, || {
        for _ in 0..5 {
            gemm(
                r,
                r,
                k,
                Mat::n(&x, k),
                Mat::t(&x, k),
                &mut a,
                r,
                false,
                Par::Pool,
            )
            .unwrap();
            gemm(
                r,
                r,
                r,
                Mat::n(&a, r),
                Mat::n(&a, r),
                &mut p,
                r,
                false,
                Par::Pool,
            )
            .unwrap();
            gemm(
                r,
                k,
                r,
                Mat::n(&p, r),
                Mat::n(&x, k),
                &mut y,
                k,
                false,
                Par::Pool,
            )
            .unwrap();
        }
    })
}

/// Seconds for one whole Muon step on a `rows`×`cols` parameter.
fn muon_step<T: Real>(rows: usize, cols: usize, seconds: f64) -> f64 {
    let mut opt = Muon {
        lr: 0.02,
        ..Muon::default()
    }
    .build::<T>(&[vec![rows, cols]])
    .unwrap();
    let mut p: Vec<T> = (0..rows * cols)
        .map(|i| T::from_f64(((i % 13) as f64 - 6.0) * 1e-2))
        .collect();
    let g: Vec<T> = (0..rows * cols)
        .map(|i| T::from_f64(((i % 7) as f64 - 3.0) * 1e-3))
        .collect();
    best_time(seconds, || {
        opt.step(&mut [&mut p], &[&g]).unwrap();
    })
}

fn run<T: Real>(shapes: &[(usize, usize)], seconds: f64, json: bool) {
    if !json {
        println!(
            "threads: {}, element type {}",
            rayon::current_num_threads(),
            T::NAME
        );
        println!("| matrix | products alone, GFLOP/s | Muon step, ms | step, GFLOP/s of products | ratio |");
        println!("|---|---:|---:|---:|---:|");
    }
    for &(rows, cols) in shapes {
        let (r, k) = (rows.min(cols), rows.max(cols));
        let flops = 5.0 * (4.0 * (r * r * k) as f64 + 2.0 * (r * r * r) as f64);
        let tp = products::<T>(r, k, seconds);
        let ts = muon_step::<T>(rows, cols, seconds);
        let (gp, gs) = (flops / tp / 1e9, flops / ts / 1e9);
        if json {
            println!(
                "{{\"rows\":{rows},\"cols\":{cols},\"dtype\":\"{}\",\"products_gflops\":{gp:.2},\"step_ms\":{:.3},\"step_gflops\":{gs:.2}}}",
                T::NAME,
                ts * 1e3
            );
        } else {
            println!(
                "| {rows}×{cols} | {gp:.1} | {:.2} | {gs:.1} | {:.2} |",
                ts * 1e3,
                gs / gp
            );
        }
    }
}

fn main() {
    let mut shapes = vec![(1000, 1000), (784, 1000)];
    let (mut seconds, mut f64_too, mut json) = (2.0, false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--shapes" => {
                shapes = args
                    .next()
                    .expect("--shapes RxC,RxC")
                    .split(',')
                    .map(|s| {
                        let (r, c) = s.split_once('x').expect("RxC");
                        (r.parse().expect("rows"), c.parse().expect("columns"))
                    })
                    .collect()
            }
            "--seconds" => seconds = args.next().expect("--seconds S").parse().expect("seconds"),
            "--f64" => f64_too = true,
            "--json" => json = true,
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header for usage"),
        }
    }
    run::<f32>(&shapes, seconds, json);
    if f64_too {
        run::<f64>(&shapes, seconds, json);
    }
}
