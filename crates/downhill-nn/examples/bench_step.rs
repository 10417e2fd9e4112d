//! Training-step throughput: forward + backward + a fused in-place Adam-like update.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p downhill-nn --example bench_step -- MODEL [SECONDS] [BATCH]
//! ```
//! MODEL is `logreg` (784→10), `mlp` (784-1000-1000-10 ReLU), `cnn` (c32-c32-c64,
//! 5×5 "same" convs, 2×2/2 max-pools, fc1000, 10 outputs) or any model spec. Inputs
//! are random 1×28×28 images with 10 classes, batch 128 unless given. Prints
//! samples/s, the split between gradient and update, and the peak resident set
//! (VmHWM): run each model in its own process for a meaningful peak.

use downhill::Rng;
use downhill_nn::{Input, InputShape, ModelSpec, Network};
use rayon::prelude::*;
use std::time::Instant;

/// One Adam step in place, fused: reads p, g, m, v and writes p, m, v
/// (28 bytes per f32 parameter), like a fused optimiser kernel. Compiled for
/// AVX-512 when the CPU has it: at baseline SSE2 the square roots and divisions,
/// not memory, would set the pace.
fn adam_step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], t: i32) {
    let (lr, b1, b2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-8f32);
    let c1 = 1.0 / (1.0 - b1.powi(t));
    let c2 = 1.0 / (1.0 - b2.powi(t));
    const CHUNK: usize = 1 << 16;
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            #[inline(always)]
            fn kernel(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 6]) {
                let [lr, b1, b2, eps, c1, c2] = k;
                for i in 0..p.len() {
                    let gi = g[i];
                    let mi = b1 * m[i] + (1.0 - b1) * gi;
                    let vi = b2 * v[i] + (1.0 - b2) * gi * gi;
                    m[i] = mi;
                    v[i] = vi;
                    p[i] -= lr * (mi * c1) / ((vi * c2).sqrt() + eps);
                }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn kernel_v4(
                p: &mut [f32],
                g: &[f32],
                m: &mut [f32],
                v: &mut [f32],
                k: [f32; 6],
            ) {
                kernel(p, g, m, v, k)
            }
            let k = [lr, b1, b2, eps, c1, c2];
            // Every feature `kernel_v4` is compiled with: the three it enables
            // and what the compiler implies from them (`rustc --print cfg -C
            // target-feature=+avx512f,+avx2,+fma`: f16c, avx, SSE3 to SSE4.2).
            #[cfg(target_arch = "x86_64")]
            let v4 = {
                use std::arch::is_x86_feature_detected as has;
                has!("avx512f")
                    && has!("avx2")
                    && has!("fma")
                    && has!("f16c")
                    && has!("avx")
                    && has!("sse4.2")
                    && has!("sse4.1")
                    && has!("ssse3")
                    && has!("sse3")
            };
            #[cfg(target_arch = "x86_64")]
            if v4 {
                // SAFETY: `v4` is true only when the CPU has every feature
                // `kernel_v4` is compiled with, listed above; its body is safe.
                return unsafe { kernel_v4(p, g, m, v, k) };
            }
            kernel(p, g, m, v, k)
        });
}

/// User + system CPU time of this process, in seconds (from /proc, 10 ms ticks):
/// unlike wall time it barely moves when other processes share the cores.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map(String::as_str).unwrap_or("mlp");
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let spec_str = match model {
        "logreg" => "logreg",
        "mlp" => "mlp:1000,1000",
        "cnn" => "cnn:32,32,64:pool=2",
        other => other,
    };
    let spec: ModelSpec = spec_str.parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let shape = InputShape::Image {
        channels: 1,
        height: 28,
        width: 28,
    };
    let mut net = Network::<f32>::new(&spec, shape, 10, 1).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let n = net.params().len();
    // A pool of distinct batches so caches do not see the same input every step.
    let pool = 8;
    let mut rng = Rng::new(2);
    let xs: Vec<f32> = (0..pool * batch * shape.len())
        .map(|_| rng.uniform_f32())
        .collect();
    let ys: Vec<u32> = (0..pool * batch).map(|_| rng.below(10) as u32).collect();
    let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
    let dim = shape.len();
    let mut step = |i: usize, net: &mut Network<f32>, t_grad: &mut f64, t_upd: &mut f64| {
        let b = i % pool;
        let x = Input::Dense {
            values: &xs[b * batch * dim..(b + 1) * batch * dim],
            rows: batch,
            dim,
        };
        let t0 = Instant::now();
        let stats = net
            .loss_and_grad(x, &ys[b * batch..(b + 1) * batch], &mut rng)
            .unwrap();
        let t1 = Instant::now();
        let (p, g) = net.params_and_grads();
        adam_step(p, g, &mut m, &mut v, i as i32 + 1);
        *t_grad += (t1 - t0).as_secs_f64();
        *t_upd += t1.elapsed().as_secs_f64();
        stats
    };
    let (mut tg, mut tu) = (0.0, 0.0);
    for i in 0..5 {
        step(i, &mut net, &mut tg, &mut tu);
    }
    let (mut tg, mut tu) = (0.0, 0.0);
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut steps = 0;
    let mut last = None;
    while start.elapsed().as_secs_f64() < seconds || steps < 3 {
        last = Some(step(steps + 5, &mut net, &mut tg, &mut tu));
        steps += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let hwm = vm_hwm_kib().unwrap_or(0);
    println!(
        "{model} ({spec}) threads={} batch={batch} params={n}: {:.0} samples/s, {:.3} ms/step \
         (grad {:.3} ms, update {:.3} ms), cpu {:.2} ms/step, steps={steps}, last loss {:.4}, peak RSS {:.1} MiB",
        rayon::current_num_threads(),
        (steps * batch) as f64 / secs,
        1e3 * secs / steps as f64,
        1e3 * tg / steps as f64,
        1e3 * tu / steps as f64,
        1e3 * cpu / steps as f64,
        last.map(|s| s.loss_sum / s.count as f64).unwrap_or(f64::NAN),
        hwm as f64 / 1024.0
    );
}
