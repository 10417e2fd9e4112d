//! SOAP's and Shampoo's steps: the mean step time with the preconditioner
//! refreshes included, the worst step, and how much of the matrix-product
//! layer's rate a plain step keeps, for `bench/soap_shampoo_vs_torch.py`.
//!
//! ```text
//! cargo bench -p downhill --bench kronecker_step -- [--shapes 1024x1024] [--steps 40]
//!     [--frequency 10] [--json]
//! ```
//!
//! Each shape set is one model (`784x1000,1000x1000,1000x10` is the MLP's
//! weights); every optimiser runs `--steps` steps after `--frequency` + 2 warm-up steps (past SOAP's setup and Shampoo's first roots),
//! refreshing every `--frequency`, once on the references' schedule and
//! once with `stagger=true` (a tensor's factors refresh on different
//! steps). A plain step's products, from the shapes
//! (each matrix m × n with both factors): SOAP projects the gradient into
//! the eigenbasis and the direction back (four products) and updates its
//! two factors (two): 6·m·n·(m + n) flops; Shampoo updates its factors and
//! preconditions (four products): 4·m·n·(m + n). The layer's own rate is a
//! 1024³ product in the same process.

use downhill::linalg::{gemm, Mat, Par};
use downhill::optim::{build, OptimizerSpec};
use std::time::Instant;

fn layer_gflops(seconds: f64) -> f64 {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 17) as f32 - 8.0) * 1e-3).collect();
    let mut c = vec![0.0f32; n * n];
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        gemm(
            n,
            n,
            n,
            Mat::n(&a, n),
            Mat::n(&a, n),
            &mut c,
            n,
            false,
            Par::Pool,
        )
        .unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

struct Run {
    mean_ms: f64,
    worst_ms: f64,
    median_ms: f64,
}

fn run(spec: &OptimizerSpec, shapes: &[Vec<usize>], steps: usize, warmup: usize) -> Run {
    let mut opt = build::<f32>(spec, shapes).unwrap();
    let n: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    let mut p: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 1e-2).collect();
    let grads: Vec<Vec<f32>> = (0..4)
        .map(|k| {
            (0..n)
                .map(|i| (((i * 7 + k * 3) % 11) as f32 - 5.0) * 1e-3)
                .collect()
        })
        .collect();
    // Past the setup steps: SOAP's first (eigh of every factor) and
    // Shampoo's first roots (every factor at once, at step `frequency`).
    for k in 0..warmup {
        opt.step_flat(&mut p, &grads[k % grads.len()]).unwrap();
    }
    let mut times: Vec<f64> = (0..steps)
        .map(|s| {
            let t = Instant::now();
            opt.step_flat(&mut p, &grads[s % grads.len()]).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let mean_ms = times.iter().sum::<f64>() / steps as f64;
    times.sort_by(f64::total_cmp);
    Run {
        mean_ms,
        worst_ms: times[steps - 1],
        median_ms: times[steps / 2],
    }
}

fn main() {
    let mut sets = vec![
        "1024x1024".to_string(),
        "784x1000,1000x1000,1000x10".to_string(),
    ];
    let (mut steps, mut frequency, mut json) = (40usize, 10u64, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--shapes" => {
                sets = args
                    .next()
                    .expect("--shapes AxB,...;...")
                    .split(';')
                    .map(String::from)
                    .collect()
            }
            "--steps" => steps = args.next().expect("--steps N").parse().expect("a count"),
            "--frequency" => {
                frequency = args
                    .next()
                    .expect("--frequency N")
                    .parse()
                    .expect("a count")
            }
            "--json" => json = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let layer = layer_gflops(2.0);
    if !json {
        println!(
            "threads: {}, f32, refresh every {frequency} steps, {steps} steps; layer 1024³: {layer:.0} GFLOP/s",
            rayon::current_num_threads()
        );
        println!("| optimizer | matrices | mean step ms | worst ms | worst/mean | plain step GFLOP/s | of the layer |");
        println!("|---|---|---:|---:|---:|---:|---:|");
    }
    for set in &sets {
        let shapes: Vec<Vec<usize>> = set
            .split(',')
            .map(|s| {
                s.split('x')
                    .map(|d| d.parse().expect("a dimension"))
                    .collect()
            })
            .collect();
        for (name, per_matrix, stagger) in [
            ("soap", 6.0, false),
            ("soap", 6.0, true),
            ("shampoo", 4.0, false),
            ("shampoo", 4.0, true),
        ] {
            let spec: OptimizerSpec = match name {
                "soap" => format!("soap(precondition_frequency={frequency},stagger={stagger})"),
                _ => format!(
                    "shampoo(betas=0.9,0.999,epsilon=1e-8,precondition_frequency={frequency},grafting=adam,grafting_epsilon=1e-8,stagger={stagger})"
                ),
            }
            .parse()
            .unwrap();
            let r = run(&spec, &shapes, steps, frequency as usize + 2);
            let flops: f64 = shapes
                .iter()
                .filter(|s| s.len() == 2)
                .map(|s| per_matrix * (s[0] * s[1]) as f64 * (s[0] + s[1]) as f64)
                .sum();
            let gflops = flops / (r.median_ms * 1e-3) / 1e9;
            let label = if stagger {
                format!("{name}, staggered")
            } else {
                name.to_string()
            };
            if json {
                println!(
                    "{{\"optimizer\":\"{name}\",\"stagger\":{stagger},\"shapes\":\"{set}\",\"mean_ms\":{:.3},\"worst_ms\":{:.3},\"median_ms\":{:.3},\"gflops\":{gflops:.1},\"layer_gflops\":{layer:.1}}}",
                    r.mean_ms, r.worst_ms, r.median_ms
                );
            } else {
                println!(
                    "| {label} | {set} | {:.1} | {:.1} | {:.2} | {gflops:.0} | {:.2} |",
                    r.mean_ms,
                    r.worst_ms,
                    r.worst_ms / r.mean_ms,
                    gflops / layer
                );
            }
        }
    }
}
