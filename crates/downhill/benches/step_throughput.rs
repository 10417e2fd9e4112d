//! Optimiser step throughput next to a streaming-memory kernel that moves the
//! same bytes per parameter, measured in the same process.
//!
//! ```text
//! cargo bench -p downhill --bench step_throughput -- [--sizes 1000000,100000000]
//!     [--optimizers sgd,adam,...] [--seconds 1.0] [--unchecked]
//! ```
//!
//! A step of an element-wise optimiser with `k` state buffers reads the
//! parameter, the gradient and the buffers and writes the parameter and the
//! buffers: `12 + 8k` bytes per f32 parameter (SGD 12, momentum 20, Adam 28).
//! The reference kernel does trivial arithmetic over exactly those streams,
//! split across the same rayon pool, so the ratio shows how close a step runs
//! to the memory bandwidth of this machine. Each optimiser's steps alternate
//! with calls of its kernel, best of each kept, so both see the same load on
//! a shared machine. Tensor-level rules make more than
//! one pass by design (LAMB, LARS and Adafactor two; Prodigy two, its sums
//! over every tensor settling d before any update; see their docs), so
//! their bound against the one-pass kernel of the same buffers is below 1:
//! LAMB 28/40 = 0.70, LARS 20/28 = 0.71, Adafactor 12/20 = 0.60, Prodigy
//! 44/52 = 0.85 (unchecked; a checked step adds 4 bytes to both sides).
//!
//! With the non-finite gradient check on (the default of the library API),
//! a step reads the gradient once more before it changes anything: 4 more
//! bytes per parameter (Adam 32). The reference then makes the same extra
//! read pass, so the ratio compares like with like; without it the bound
//! would be 28/32 = 0.875. The trainer runs unchecked, because its gradient
//! norm pass already finds any NaN or infinity before the step.

use downhill::optim::{build, NonFinite, Optimizer, OptimizerSpec, REGISTRY};
use rayon::prelude::*;
use std::time::Instant;

/// What the bench runs by default: every registered optimiser's examples,
/// except Muon, whose step is matrix products (see `benches/muon_step.rs`).
fn default_configs() -> Vec<String> {
    REGISTRY
        .iter()
        .filter(|e| e.name != "muon")
        .flat_map(|e| e.examples.iter().map(|s| s.to_string()))
        .collect()
}

/// The shape a spec's tensor gets: element-wise rules see a vector;
/// tensor-level ones a matrix of 1000 columns (Adafactor factors it, LAMB
/// and LARS take its norms).
fn shape_for(spec: &OptimizerSpec, n: usize) -> Vec<usize> {
    let elementwise = REGISTRY
        .iter()
        .any(|e| e.name == spec.name && e.elementwise);
    if elementwise || !n.is_multiple_of(1000) {
        vec![n]
    } else {
        vec![n / 1000, 1000]
    }
}

/// The reference: trivial updates over `1 + buffers` read-write streams and one
/// read-only stream, chunked like the optimisers' own driver.
fn stream(p: &mut [f32], g: &[f32], bufs: &mut [Vec<f32>]) {
    const CHUNK: usize = 1 << 15;
    let a = 0.999f32;
    match bufs {
        [] => p
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(p, g)| {
                for (p, g) in p.iter_mut().zip(g) {
                    *p = *p * a + g;
                }
            }),
        [m] => p
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .for_each(|((p, g), m)| {
                for ((p, g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                    *m = *m * a + g;
                    *p = *p * a + *m;
                }
            }),
        [m, v] => p
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((p, g), (m, v))| {
                for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = *m * a + g;
                    *v = *v * a + g;
                    *p = *p * a + *m + *v;
                }
            }),
        [m, v, w] => p
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(
                m.par_chunks_mut(CHUNK)
                    .zip(v.par_chunks_mut(CHUNK))
                    .zip(w.par_chunks_mut(CHUNK)),
            )
            .for_each(|((p, g), ((m, v), w))| {
                for ((((p, g), m), v), w) in p
                    .iter_mut()
                    .zip(g)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                    .zip(w.iter_mut())
                {
                    *m = *m * a + g;
                    *v = *v * a + g;
                    *w = *w * a + g;
                    *p = *p * a + *m + *v + *w;
                }
            }),
        [m, v, w, x] => p
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(
                m.par_chunks_mut(CHUNK)
                    .zip(v.par_chunks_mut(CHUNK))
                    .zip(w.par_chunks_mut(CHUNK).zip(x.par_chunks_mut(CHUNK))),
            )
            .for_each(|((p, g), ((m, v), (w, x)))| {
                for (((((p, g), m), v), w), x) in p
                    .iter_mut()
                    .zip(g)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                    .zip(w.iter_mut())
                    .zip(x.iter_mut())
                {
                    *m = *m * a + g;
                    *v = *v * a + g;
                    *w = *w * a + g;
                    *x = *x * a + g;
                    *p = *p * a + *m + *v + *w + *x;
                }
            }),
        _ => unreachable!("at most four buffers"),
    }
}

/// The extra read of the gradient that a checked step makes: a parallel
/// reduction over `g` (its result is kept so the pass is not optimised away).
fn scan(g: &[f32]) -> f32 {
    const CHUNK: usize = 1 << 15;
    g.par_chunks(CHUNK)
        .map(|c| {
            let mut acc = [0.0f32; 16];
            for block in c.chunks_exact(16) {
                for k in 0..16 {
                    acc[k] += block[k];
                }
            }
            acc.iter().sum::<f32>()
        })
        .sum()
}

/// Runs `a` and `b` alternately for about `seconds` (at least 3 times each,
/// after one warm-up call of each) and returns the best time of one call of
/// each. Alternating keeps the pair under the same conditions: on a shared
/// machine the load changes within seconds, and a reference measured once
/// for a whole table would compare an optimiser against another moment.
fn best_pair(seconds: f64, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    a();
    b();
    let start = Instant::now();
    let (mut best_a, mut best_b) = (f64::INFINITY, f64::INFINITY);
    let mut runs = 0;
    while runs < 3 || start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        a();
        best_a = best_a.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        b();
        best_b = best_b.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    (best_a, best_b)
}

fn main() {
    let mut sizes = vec![1_000_000usize, 100_000_000];
    let mut configs = default_configs();
    let mut seconds = 1.0;
    let mut unchecked = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes N,N")
                    .split(',')
                    .map(|s| s.parse().expect("size"))
                    .collect()
            }
            "--optimizers" => {
                configs = downhill_split(&args.next().expect("--optimizers a,b"));
            }
            "--seconds" => seconds = args.next().expect("--seconds S").parse().expect("seconds"),
            "--unchecked" => unchecked = true,
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header for usage"),
        }
    }
    println!(
        "threads: {}, non-finite gradient check: {}",
        rayon::current_num_threads(),
        if unchecked {
            "off (NonFinite::Unchecked)"
        } else {
            "on (the default)"
        }
    );
    for &n in &sizes {
        println!("\n{n} f32 parameters");
        println!("| optimizer | bytes/param | Mparam/s | stream kernel Mparam/s | ratio |");
        println!("|---|---:|---:|---:|---:|");
        let mut p = vec![0.5f32; n];
        let mut q = vec![0.5f32; n];
        let g: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect();
        let mut sink = 0.0f32;
        let extra = if unchecked { 0 } else { 4 };
        for c in &configs {
            let spec: OptimizerSpec = c.parse().expect("optimizer spec");
            let mut opt = build::<f32>(&spec, &[shape_for(&spec, n)]).expect("valid spec");
            if unchecked {
                opt.set_non_finite(NonFinite::Unchecked);
            }
            p.fill(0.5);
            // The first step allocates the optimiser's state; the kernel's
            // buffers must match it.
            opt.step_flat(&mut p, &g).expect("finite gradients");
            let k = buffers(&*opt);
            let mut bufs = vec![vec![0.0f32; n]; k];
            let (t, t_kernel) = best_pair(
                seconds,
                || {
                    opt.step_flat(&mut p, &g).expect("finite gradients");
                },
                || {
                    if !unchecked {
                        sink += scan(&g);
                    }
                    stream(&mut q, &g, &mut bufs)
                },
            );
            let rate = n as f64 / t / 1e6;
            let kernel = n as f64 / t_kernel / 1e6;
            println!(
                "| {c} | {} | {rate:.0} | {kernel:.0} | {:.2} |",
                12 + 8 * k + extra,
                rate / kernel
            );
        }
        std::hint::black_box(sink);
    }
}

/// State buffers as large as the parameter (Adafactor's row and column
/// statistics are not): the streams a one-pass step must move.
fn buffers(opt: &dyn Optimizer<f32>) -> usize {
    let state = opt.save_state().expect("state");
    let n = opt.sizes()[0];
    state.manifest.tensors[0]
        .buffers
        .iter()
        .filter(|b| b.shape.iter().product::<usize>() == n)
        .count()
}

/// Splits a list of specs on commas outside parentheses.
fn downhill_split(s: &str) -> Vec<String> {
    let (mut out, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
