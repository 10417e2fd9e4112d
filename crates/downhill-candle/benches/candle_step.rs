//! AdamW steps through `downhill-candle` (in place, and on the device path
//! forced on the CPU: candle tensor ops, as on a GPU) next to
//! `candle_nn::AdamW` and next to downhill's own step on plain slices of the
//! same sizes, in one process, interleaved so that all four see the same
//! load on a shared machine; and
//! a whole training step (forward, backward, optimiser) of the example's MLP
//! with each optimiser.
//!
//! ```text
//! cargo bench -p downhill-candle --bench candle_step -- [--params 10000000] [--vars 20]
//!     [--threads 2] [--rounds 5] [--batch 128]
//! ```
//!
//! The optimiser step: `--params` f32 parameters split evenly over `--vars`
//! vars (matrices of 1000 columns), fixed gradients, AdamW with candle's
//! defaults (`ParamsAdamW::default()`: lr 1e-3, betas 0.9/0.999, eps 1e-8,
//! weight decay 0.01) for all four. downhill's runs keep the default
//! non-finite check (one more read of the gradients per step), so they
//! compare like with like. Each round times one candle step and the median
//! of five steps of each downhill run; the report gives the median over
//! rounds, in ms per step and Mparam/s.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW, VarBuilder, VarMap};
use downhill::optim::{build, OptimizerSpec};
use downhill_candle::{CandleOptimizer, Config};
use std::time::Instant;

struct Args {
    params: usize,
    vars: usize,
    threads: usize,
    rounds: usize,
    batch: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        params: 10_000_000,
        vars: 20,
        threads: 2,
        rounds: 5,
        batch: 128,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        let v: usize = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse()
            .map_err(|_| format!("{flag}: not a whole number"))?;
        match flag.as_str() {
            "--params" => a.params = v,
            "--vars" => a.vars = v,
            "--threads" => a.threads = v,
            "--rounds" => a.rounds = v,
            "--batch" => a.batch = v,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if a.vars == 0 || a.params < a.vars * 1000 || a.rounds == 0 || a.threads == 0 || a.batch == 0 {
        return Err(
            "--vars, --rounds, --threads, --batch must be >= 1 and --params >= 1000 per var".into(),
        );
    }
    Ok(a)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Seconds per call of `f`: the median of `n` calls.
fn time(n: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..n)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Vars of `rows` × 1000, filled with small values, and fixed gradients.
fn vars_and_grads(n_vars: usize, rows: usize) -> candle_core::Result<(Vec<Var>, GradStore)> {
    let mut grads = GradStore::default();
    let mut vars = Vec::new();
    for i in 0..n_vars {
        let v = Var::from_tensor(&Tensor::full(
            0.01f32 * (i + 1) as f32,
            (rows, 1000),
            &Device::Cpu,
        )?)?;
        let g: Vec<f32> = (0..rows * 1000)
            .map(|j| ((j % 13) as f32 - 6.0) * 1e-3)
            .collect();
        grads.insert(&v, Tensor::from_vec(g, (rows, 1000), &Device::Cpu)?);
        vars.push(v);
    }
    Ok((vars, grads))
}

fn optimiser_steps(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let rows = a.params / a.vars / 1000;
    let n = rows * 1000 * a.vars;
    let spec = "adamw(lr=0.001,betas=(0.9,0.999),eps=1e-8,weight_decay=0.01)";
    let (cv, cg) = vars_and_grads(a.vars, rows)?;
    let mut theirs = AdamW::new(cv, ParamsAdamW::default())?;
    let (dv, dg) = vars_and_grads(a.vars, rows)?;
    let mut ours = CandleOptimizer::new(dv, spec.parse::<Config>()?)?;
    let (ev, eg) = vars_and_grads(a.vars, rows)?;
    let mut device = CandleOptimizer::new(ev, spec.parse::<Config>()?)?.force_device_path()?;
    // candle_nn::AdamW does not look for NaN: the device path without the
    // check (one pass over the gradients) is the like-for-like comparison.
    let (uv, ug) = vars_and_grads(a.vars, rows)?;
    let unchecked = spec
        .parse::<Config>()?
        .non_finite(downhill::optim::NonFinite::Unchecked);
    let mut device_unchecked = CandleOptimizer::new(uv, unchecked)?.force_device_path()?;
    let mut plain_p: Vec<Vec<f32>> = (0..a.vars).map(|_| vec![0.01f32; rows * 1000]).collect();
    let plain_g: Vec<Vec<f32>> = (0..a.vars)
        .map(|_| {
            (0..rows * 1000)
                .map(|j| ((j % 13) as f32 - 6.0) * 1e-3)
                .collect()
        })
        .collect();
    let shapes: Vec<Vec<usize>> = (0..a.vars).map(|_| vec![rows, 1000]).collect();
    let mut plain = build::<f32>(&spec.parse::<OptimizerSpec>()?, &shapes)?;
    let mut plain_step = || {
        let mut ps: Vec<&mut [f32]> = plain_p.iter_mut().map(Vec::as_mut_slice).collect();
        let gs: Vec<&[f32]> = plain_g.iter().map(Vec::as_slice).collect();
        plain.step(&mut ps, &gs).expect("plain step");
    };
    // First steps create the state.
    theirs.step(&cg)?;
    ours.step(&dg)?;
    device.step(&eg)?;
    device_unchecked.step(&ug)?;
    plain_step();
    let (mut t_candle, mut t_ours, mut t_device, mut t_unchecked, mut t_plain) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        t_candle.push(time(1, || theirs.step(&cg).expect("candle step")));
        t_ours.push(time(5, || ours.step(&dg).expect("adapter step")));
        t_device.push(time(1, || device.step(&eg).expect("device path step")));
        t_unchecked.push(time(1, || {
            device_unchecked.step(&ug).expect("device path step")
        }));
        t_plain.push(time(5, &mut plain_step));
    }
    let (c, o, d, u, p) = (
        median(t_candle),
        median(t_ours),
        median(t_device),
        median(t_unchecked),
        median(t_plain),
    );
    let rate = |s: f64| n as f64 / s / 1e6;
    println!(
        "AdamW step, {n} f32 parameters in {} vars of [{rows}, 1000], {} threads, median of {} rounds:",
        a.vars, a.threads, a.rounds
    );
    println!(
        "  candle_nn::AdamW                 {:>9.2} ms  {:>7.0} Mparam/s",
        c * 1e3,
        rate(c)
    );
    println!(
        "  downhill-candle adamw            {:>9.2} ms  {:>7.0} Mparam/s",
        o * 1e3,
        rate(o)
    );
    println!(
        "  downhill-candle, device path     {:>9.2} ms  {:>7.0} Mparam/s  ({:.2}x candle_nn::AdamW)",
        d * 1e3,
        rate(d),
        c / d
    );
    println!(
        "    without the NaN check          {:>9.2} ms  {:>7.0} Mparam/s  ({:.2}x candle_nn::AdamW)",
        u * 1e3,
        rate(u),
        c / u
    );
    println!(
        "  downhill adamw on plain slices   {:>9.2} ms  {:>7.0} Mparam/s",
        p * 1e3,
        rate(p)
    );
    println!(
        "  downhill-candle is {:.1}x candle_nn::AdamW, and runs at {:.0}% of downhill's own step",
        c / o,
        p / o * 100.0
    );
    Ok(())
}

/// The example's MLP, 784-512-256-10 with ReLU.
fn mlp(varmap: &VarMap) -> candle_core::Result<impl Module> {
    let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
    Ok(candle_nn::seq()
        .add(candle_nn::linear(784, 512, vb.pp("fc1"))?)
        .add(Tensor::relu)
        .add(candle_nn::linear(512, 256, vb.pp("fc2"))?)
        .add(Tensor::relu)
        .add(candle_nn::linear(256, 10, vb.pp("fc3"))?))
}

fn training_steps(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = downhill::Rng::new(3);
    let x: Vec<f32> = (0..a.batch * 784).map(|_| rng.uniform_f32()).collect();
    let y: Vec<u32> = (0..a.batch).map(|_| rng.below(10) as u32).collect();
    let x = Tensor::from_vec(x, (a.batch, 784), &Device::Cpu)?;
    let y = Tensor::from_vec(y, a.batch, &Device::Cpu)?;
    let (vm_c, vm_d) = (VarMap::new(), VarMap::new());
    let (model_c, model_d) = (mlp(&vm_c)?, mlp(&vm_d)?);
    let mut theirs = AdamW::new(vm_c.all_vars(), ParamsAdamW::default())?;
    let mut ours = CandleOptimizer::from_varmap(&vm_d, "adamw(weight_decay=0.01)".parse()?)?;
    let loss = |m: &dyn Module| candle_nn::loss::cross_entropy(&m.forward(&x)?, &y);
    let mut step_c = || {
        theirs
            .backward_step(&loss(&model_c).expect("loss"))
            .expect("candle step")
    };
    let mut step_d = || {
        ours.backward_step(&loss(&model_d).expect("loss"))
            .expect("adapter step")
    };
    step_c();
    step_d();
    let (mut tc, mut td) = (Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        tc.push(time(10, &mut step_c));
        td.push(time(10, &mut step_d));
    }
    let (c, d) = (median(tc), median(td));
    println!(
        "Training step of the example's MLP (784-512-256-10, batch {}): forward, backward, AdamW:",
        a.batch
    );
    println!("  with candle_nn::AdamW            {:>9.2} ms", c * 1e3);
    println!(
        "  with downhill-candle adamw       {:>9.2} ms  ({:.2}x faster)",
        d * 1e3,
        c / d
    );
    Ok(())
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("candle_step: {e}");
            std::process::exit(2);
        }
    };
    // One pool of `--threads` for candle's kernels and downhill's alike.
    std::env::set_var("RAYON_NUM_THREADS", a.threads.to_string());
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build_global()
    {
        eprintln!("candle_step: cannot start {} threads: {e}", a.threads);
        std::process::exit(2);
    }
    if let Err(e) = optimiser_steps(&a).and_then(|()| training_steps(&a)) {
        eprintln!("candle_step: {e}");
        std::process::exit(1);
    }
}
