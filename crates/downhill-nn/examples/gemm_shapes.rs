//! Measures GFLOP/s of the matrix products the MLP and CNN benchmarks perform.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p downhill-nn --example gemm_shapes`
//!
//! With `square N` it measures only an N×N×N product (the yardstick of
//! `bench/limit.py` when numpy is not installed).
//! Products are given as `m×k×n` plus which operand is read transposed, exactly as
//! the engine calls them (row-major storage).

use downhill::linalg::{gemm, Mat, Op, Par};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let square: Option<usize> = match args.as_slice() {
        [] => None,
        [w, n] if w == "square" => Some(n.parse().expect("square N: N is a size")),
        _ => panic!("usage: gemm_shapes [square N]"),
    };
    let all: &[(&str, usize, usize, usize, Op, Op)] = &[
        ("lm qkv fwd    X·W", 4096, 128, 384, Op::N, Op::N),
        ("lm fc fwd     X·W", 4096, 128, 512, Op::N, Op::N),
        ("lm proj2 fwd  X·W", 4096, 512, 128, Op::N, Op::N),
        ("lm head fwd   X·W", 4096, 128, 76, Op::N, Op::N),
        ("lm fc dW    Xᵀ·dY", 128, 4096, 512, Op::T, Op::N),
        ("lm proj2 dW Xᵀ·dY", 512, 4096, 128, Op::T, Op::N),
        ("lm fc dX    dY·Wᵀ", 4096, 512, 128, Op::N, Op::T),
        ("lm proj2 dX dY·Wᵀ", 4096, 128, 512, Op::N, Op::T),
        ("mlp fc1 fwd   X·W", 128, 784, 1000, Op::N, Op::N),
        ("mlp fc2 fwd   X·W", 128, 1000, 1000, Op::N, Op::N),
        ("mlp fc1 dW  Xᵀ·dY", 784, 128, 1000, Op::T, Op::N),
        ("mlp fc2 dW  Xᵀ·dY", 1000, 128, 1000, Op::T, Op::N),
        ("mlp fc2 dX dY·Wᵀ", 128, 1000, 1000, Op::N, Op::T),
        ("mlp out fwd   X·W", 128, 1000, 10, Op::N, Op::N),
        ("logreg fwd    X·W", 128, 784, 10, Op::N, Op::N),
        ("logreg dW Xᵀ·dY", 784, 128, 10, Op::T, Op::N),
        ("cnn c1 fwd col·W", 128 * 784, 25, 32, Op::N, Op::N),
        ("cnn c2 fwd col·W", 128 * 196, 800, 32, Op::N, Op::N),
        ("cnn c3 fwd col·W", 128 * 49, 800, 64, Op::N, Op::N),
        ("cnn c2 dW colᵀ·dY", 800, 128 * 196, 32, Op::T, Op::N),
        ("cnn c3 dW colᵀ·dY", 800, 128 * 49, 64, Op::T, Op::N),
        ("cnn c2 dcol dY·Wᵀ", 128 * 196, 32, 800, Op::N, Op::T),
        ("cnn c3 dcol dY·Wᵀ", 128 * 49, 64, 800, Op::N, Op::T),
        ("cnn c2 fwd 8 smp", 8 * 196, 800, 32, Op::N, Op::N),
        ("cnn c2 dW 8 smp", 800, 8 * 196, 32, Op::T, Op::N),
        ("cnn c2 dcol 8 smp", 8 * 196, 32, 800, Op::N, Op::T),
        ("cnn fc1 fwd", 128, 576, 1000, Op::N, Op::N),
        // Chunks of 1, 2 and 4 samples of conv2, both orientations: "[M,C]" writes
        // the output position-major (NHWC), "[C,M]" channel-major.
        ("c2 fwd 1smp [M,C]", 196, 800, 32, Op::N, Op::N),
        ("c2 fwd 1smp [C,M]", 32, 800, 196, Op::N, Op::T),
        ("c2 fwd 2smp [M,C]", 392, 800, 32, Op::N, Op::N),
        ("c2 fwd 2smp [C,M]", 32, 800, 392, Op::N, Op::T),
        ("c2 fwd 4smp [C,M]", 32, 800, 784, Op::N, Op::T),
        ("c2 dW 2smp [K,C]", 800, 392, 32, Op::T, Op::N),
        ("c2 dW 2smp [C,K]", 32, 392, 800, Op::T, Op::N),
        ("c2 dW 4smp [C,K]", 32, 784, 800, Op::T, Op::N),
        ("c2 dcol 2smp", 392, 32, 800, Op::N, Op::T),
        ("c2 dcol 2smp Wck", 392, 32, 800, Op::N, Op::N),
        ("c1 fwd 16smp [C,M]", 32, 25, 16 * 784, Op::N, Op::T),
        ("c1 dW 16smp [C,K]", 32, 16 * 784, 25, Op::T, Op::N),
        ("c1 dW 16smp [K,C]", 25, 16 * 784, 32, Op::T, Op::N),
        // The MLP with activations stored feature-major ([features, batch]).
        ("mlp fc2 fwd Wᵀ·Xᵀ", 1000, 1000, 128, Op::T, Op::N),
        ("mlp fc2 dW dYᵀ·X", 1000, 128, 1000, Op::N, Op::T),
        ("mlp fc2 dX W·dYᵀ", 1000, 1000, 128, Op::N, Op::N),
        ("mlp fc1 fwd Wᵀ·(X)ᵀ", 1000, 784, 128, Op::T, Op::T),
        ("mlp fc1 dW (X)ᵀ·dY", 784, 128, 1000, Op::T, Op::T),
        ("mlp out fwd Wᵀ·Xᵀ", 10, 1000, 128, Op::T, Op::N),
        ("mlp out dX W·dYᵀ", 1000, 10, 128, Op::N, Op::N),
        ("mlp out dW Xᵀ·dY", 1000, 128, 10, Op::N, Op::T),
    ];
    let one;
    let shapes = match square {
        Some(n) => {
            one = [("square", n, n, n, Op::N, Op::N)];
            &one[..]
        }
        None => all,
    };
    println!("threads {}", rayon::current_num_threads());
    for &(name, m, k, n, ta, tb) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let lda = if ta == Op::N { k } else { m };
        let ldb = if tb == Op::N { n } else { k };
        let am = Mat {
            data: &a,
            ld: lda,
            op: ta,
        };
        let bm = Mat {
            data: &b,
            ld: ldb,
            op: tb,
        };
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((2e9 / flops) as usize).clamp(3, 2000);
        for par in [Par::Seq, Par::Pool] {
            gemm(m, n, k, am, bm, &mut c, n, false, par).expect("operands fit");
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..reps {
                    gemm(m, n, k, am, bm, &mut c, n, false, par).expect("operands fit");
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            print!(
                "{name:20} {m:6}x{k:5}x{n:5} {:?} {:7.1} GFLOP/s  ",
                par,
                flops / best / 1e9
            );
        }
        println!();
    }
}
