//! `downhill::linalg`'s eigendecomposition and QR (on `faer`) at the sizes
//! Shampoo's and SOAP's factors take, for `bench/linalg_vs_torch.py`.
//!
//! ```text
//! cargo bench -p downhill --bench decompositions -- [--sizes 256,1024,2048] [--seconds 2] [--json]
//! ```
//!
//! Best time of one call, f32 and f64, on a symmetric positive-definite
//! matrix (B·Bᵀ/n + I) for `eigh` and a random square matrix for `qr`.

use downhill::linalg::{eigh, eigh_work, qr, qr_work};
use downhill::{Real, Rng};
use std::time::Instant;

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

fn times<T: Real>(n: usize, seconds: f64) -> (f64, f64) {
    let mut rng = Rng::new(1);
    let b: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
    // A = B·Bᵀ/n + I, through the product layer.
    let mut a = vec![0.0f64; n * n];
    downhill::linalg::gemm(
        n,
        n,
        n,
        downhill::linalg::Mat::n(&b, n),
        downhill::linalg::Mat::t(&b, n),
        &mut a,
        n,
        false,
        downhill::linalg::Par::Pool,
    )
    .unwrap();
    let a: Vec<T> = a
        .iter()
        .enumerate()
        .map(|(i, &x)| T::from_f64(x / n as f64 + if i % (n + 1) == 0 { 1.0 } else { 0.0 }))
        .collect();
    let bt: Vec<T> = b.iter().map(|&x| T::from_f64(x)).collect();
    let mut work = vec![T::zero(); eigh_work::<T>(n).max(qr_work::<T>(n, n))];
    let (mut s, mut v) = (vec![T::zero(); n], vec![T::zero(); n * n]);
    let te = best_time(seconds, || eigh(n, &a, &mut s, &mut v, &mut work).unwrap());
    let mut q = bt.clone();
    let tq = best_time(seconds, || {
        q.copy_from_slice(&bt);
        qr(n, n, &mut q, &mut work).unwrap();
    });
    (te, tq)
}

fn main() {
    let mut sizes = vec![256, 1024, 2048];
    let (mut seconds, mut json) = (2.0, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes N,N")
                    .split(',')
                    .map(|s| s.parse().expect("a size"))
                    .collect()
            }
            "--seconds" => seconds = args.next().expect("--seconds S").parse().expect("seconds"),
            "--json" => json = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if !json {
        println!("threads: {}", rayon::current_num_threads());
        println!("| n | dtype | eigh ms | qr ms |");
        println!("|---:|---|---:|---:|");
    }
    for &n in &sizes {
        for (dtype, (te, tq)) in [
            ("float32", times::<f32>(n, seconds)),
            ("float64", times::<f64>(n, seconds)),
        ] {
            if json {
                println!(
                    "{{\"n\":{n},\"dtype\":\"{dtype}\",\"eigh_ms\":{:.3},\"qr_ms\":{:.3}}}",
                    te * 1e3,
                    tq * 1e3
                );
            } else {
                println!("| {n} | {dtype} | {:.1} | {:.1} |", te * 1e3, tq * 1e3);
            }
        }
    }
}
