//! A transformer language model's training, traced so that PyTorch can replay
//! it: the initial weights, the first step's gradient, every step's batch,
//! the losses, and the time of each phase.
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p downhill-train --example lm_trace -- \
//!     --model transformer:layers=4,d=128,heads=4,context=128 --data builtin:shakespeare \
//!     --batch 32 --steps 200 --optimizer 'adamw(lr=0.001)' --seed 1 --out /tmp/lm
//! ```
//!
//! Writes to `--out`: `init.safetensors` and `grad0.safetensors` (torch's
//! layout and names, f32), `train.bin` and `test.bin` (the windows' token
//! ids, u16), `rows.bin` (each step's window indices, u32, in the order of
//! `downhill train`'s batches; `batch_rows` in the trace says how many each), and `trace.json` (the losses, the held-out
//! loss after the last step, seconds per step and per phase, and the step's
//! FLOPs). `bench/transformer_vs_torch.py` replays it in PyTorch.

use downhill::linalg::{gemm, Mat, Par};
use downhill::optim::{registry, OptimizerSpec};
use downhill::Rng;
use downhill_data::{load, Dataset, LoadOptions};
use downhill_nn::{Input, InputShape, ModelKind, ModelSpec, Network};
use downhill_train::epoch_order;
use safetensors::tensor::{Dtype, TensorView};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    model: String,
    data: String,
    batch: usize,
    steps: usize,
    optimizer: String,
    seed: u64,
    out: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        model: "transformer:layers=4,d=128,heads=4,context=128".into(),
        data: "builtin:shakespeare".into(),
        batch: 32,
        steps: 200,
        optimizer: "adamw(lr=0.001)".into(),
        seed: 1,
        out: "lm-trace".into(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair
            .get(1)
            .cloned()
            .unwrap_or_else(|| panic!("{} needs a value", pair[0]));
        match pair[0].as_str() {
            "--model" => a.model = v,
            "--data" => a.data = v,
            "--batch" => a.batch = v.parse().expect("--batch N"),
            "--steps" => a.steps = v.parse().expect("--steps N"),
            "--optimizer" => a.optimizer = v,
            "--seed" => a.seed = v.parse().expect("--seed N"),
            "--out" => a.out = v.into(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn save(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

fn windows(d: &Dataset) -> Vec<u8> {
    let mut x = vec![0.0f32; d.len() * d.dim()];
    let mut y = vec![0u32; d.len()];
    let rows: Vec<usize> = (0..d.len()).collect();
    d.gather_dense(&rows, &mut x, &mut y).unwrap();
    x.iter().flat_map(|&t| (t as u16).to_le_bytes()).collect()
}

/// FLOPs of one training step (forward and backward, 3× the forward's
/// products) from the layer shapes: the linear layers, the head, and the
/// attention's two `t × t` products per head, computed in full.
fn step_flops(spec: &ModelSpec, vocab: usize, tokens: usize, rows: usize) -> f64 {
    let ModelKind::Transformer {
        layers, d, context, ..
    } = spec.kind
    else {
        panic!("a transformer spec")
    };
    let (l, d, t, v) = (layers as f64, d as f64, context as f64, vocab as f64);
    let linear = 2.0 * tokens as f64 * (l * 12.0 * d * d + d * v);
    let attention = 2.0 * 2.0 * rows as f64 * l * t * t * d;
    3.0 * (linear + attention)
}

/// GFLOP/s of downhill's product layer on the MLP's `[tokens, d] × [d, 4d]`.
fn product_rate(tokens: usize, d: usize) -> f64 {
    let mut r = Rng::new(3);
    let a: Vec<f32> = (0..tokens * d).map(|_| r.uniform_f32()).collect();
    let b: Vec<f32> = (0..d * 4 * d).map(|_| r.uniform_f32()).collect();
    let mut c = vec![0.0f32; tokens * 4 * d];
    let run = |c: &mut [f32]| {
        gemm(
            tokens,
            4 * d,
            d,
            Mat::n(&a, d),
            Mat::n(&b, 4 * d),
            c,
            4 * d,
            false,
            Par::Pool,
        )
        .unwrap()
    };
    run(&mut c);
    let reps = 20;
    let t0 = Instant::now();
    for _ in 0..reps {
        run(&mut c);
    }
    2.0 * (tokens * d * 4 * d * reps) as f64 / t0.elapsed().as_secs_f64() / 1e9
}

fn main() {
    let a = args();
    let spec: ModelSpec = a.model.parse().unwrap_or_else(|e| panic!("{e}"));
    let ModelKind::Transformer { context, d, .. } = spec.kind else {
        panic!("--model must be a transformer")
    };
    let opts = LoadOptions {
        sequence: Some(context + 1),
        ..LoadOptions::default()
    };
    let data = load(&a.data, &opts).unwrap_or_else(|e| panic!("{e}"));
    let (train, test) = (&data.train, data.test.as_ref().expect("held-out text"));
    let vocab = train.classes();
    let mut net = Network::<f32>::new(&spec, InputShape::Flat(context + 1), vocab, a.seed).unwrap();
    std::fs::create_dir_all(&a.out).unwrap();
    save(&a.out.join("init.safetensors"), &net.torch_layout());
    std::fs::write(a.out.join("train.bin"), windows(train)).unwrap();
    std::fs::write(a.out.join("test.bin"), windows(test)).unwrap();
    let ospec: OptimizerSpec = a.optimizer.parse().unwrap_or_else(|e| panic!("{e}"));
    let mut opt = registry::build::<f32>(&ospec, &net.optimizer_params()).unwrap();

    let dim = context + 1;
    let n = train.len();
    let per_epoch = n.div_ceil(a.batch);
    let (mut x, mut y) = (vec![0.0f32; a.batch * dim], vec![0u32; a.batch]);
    let mut rows_log: Vec<u8> = Vec::new();
    let mut batch_rows = Vec::with_capacity(a.steps);
    let mut losses = Vec::with_capacity(a.steps);
    let (mut grad_s, mut update_s, mut step_s) = (Vec::new(), Vec::new(), Vec::new());
    let mut order = Vec::new();
    let mut rng = Rng::new(0);
    for s in 0..a.steps {
        let (e, b) = (s / per_epoch, s % per_epoch);
        if b == 0 {
            order = epoch_order(a.seed, e, n);
        }
        let rows = &order[b * a.batch..((b + 1) * a.batch).min(n)];
        rows_log.extend(rows.iter().flat_map(|&r| (r as u32).to_le_bytes()));
        batch_rows.push(rows.len());
        let k = rows.len();
        train
            .gather_dense(rows, &mut x[..k * dim], &mut y[..k])
            .unwrap();
        let t0 = Instant::now();
        let st = net
            .loss_and_grad(
                Input::Dense {
                    values: &x[..k * dim],
                    rows: k,
                    dim,
                },
                &y[..k],
                &mut rng,
            )
            .unwrap();
        let t1 = Instant::now();
        if s == 0 {
            // The gradient in torch's layout: the layout of the parameters,
            // applied to the gradient swapped in for a moment.
            let mut g = net.grads().to_vec();
            net.swap_params(&mut g).unwrap();
            save(&a.out.join("grad0.safetensors"), &net.torch_layout());
            net.swap_params(&mut g).unwrap();
        }
        let (p, g) = net.params_and_grads();
        opt.step_flat(p, g).unwrap();
        let t2 = Instant::now();
        losses.push(st.mean_loss());
        grad_s.push((t1 - t0).as_secs_f64());
        update_s.push((t2 - t1).as_secs_f64());
        step_s.push((t2 - t0).as_secs_f64());
    }
    std::fs::write(a.out.join("rows.bin"), rows_log).unwrap();
    // The held-out loss after the last step, over every test window.
    let mut total = downhill_nn::BatchStats::default();
    let chunk = 64;
    let (mut tx, mut ty) = (vec![0.0f32; chunk * dim], vec![0u32; chunk]);
    for start in (0..test.len()).step_by(chunk) {
        let rows: Vec<usize> = (start..(start + chunk).min(test.len())).collect();
        let k = rows.len();
        test.gather_dense(&rows, &mut tx[..k * dim], &mut ty[..k])
            .unwrap();
        let st = net
            .evaluate(
                Input::Dense {
                    values: &tx[..k * dim],
                    rows: k,
                    dim,
                },
                &ty[..k],
            )
            .unwrap();
        total.merge(st);
    }
    // Steady state: the first steps size the buffers and warm the caches.
    let median = |v: &[f64]| {
        let mut v = v
            .iter()
            .skip(3.min(v.len().saturating_sub(1)))
            .copied()
            .collect::<Vec<_>>();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let tokens = a.batch * context;
    let flops = step_flops(&spec, vocab, tokens, a.batch);
    let step = median(&step_s);
    let trace = serde_json::json!({
        "model": a.model,
        "data": a.data,
        "optimizer": a.optimizer,
        "seed": a.seed,
        "batch": a.batch,
        "context": context,
        "vocab": vocab,
        "steps": a.steps,
        "threads": rayon::current_num_threads(),
        "parameters": net.params().len(),
        "losses": losses,
        "batch_rows": batch_rows,
        "test_loss": total.mean_loss(),
        "test_windows": test.len(),
        "seconds_per_step": step,
        "gradient_seconds": median(&grad_s),
        "update_seconds": median(&update_s),
        "tokens_per_sec": tokens as f64 / step,
        "step_gflop": flops / 1e9,
        "step_gflops_per_sec": flops / step / 1e9,
        "product_gflops_per_sec": product_rate(tokens, d),
    });
    std::fs::write(
        a.out.join("trace.json"),
        serde_json::to_string_pretty(&trace).unwrap(),
    )
    .unwrap();
    println!(
        "{}",
        serde_json::to_string(&trace["tokens_per_sec"]).unwrap()
    );
}
