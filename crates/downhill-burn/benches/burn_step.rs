//! AdamW steps through `downhill-burn` next to burn's own
//! `burn::optim::AdamWConfig`, on each backend built in (flex and ndarray,
//! and wgpu with the `wgpu` feature), and next to downhill's own step on
//! plain slices of the same sizes (the memory-bound reference), in one
//! process, interleaved so that all see the same load on a shared machine.
//! On the CPU backends the adapter also runs its device path forced (burn
//! tensor ops, as on a GPU).
//!
//! ```text
//! cargo bench --manifest-path crates/downhill-burn/Cargo.toml --bench burn_step [--features wgpu] -- \
//!     [--params 10000000] [--tensors 20] [--rounds 5]
//! ```
//!
//! `--params` f32 parameters split evenly over `--tensors` matrices of 1000
//! columns, fixed gradients, AdamW with torch's defaults (lr 1e-3, betas
//! 0.9/0.999, ε 1e-8, weight decay 0.01) for both. downhill's runs keep the
//! default non-finite check (one more read of the gradients per step, or on
//! the device path one more pass and one small read-back), as downhill's own
//! step does; burn's makes none, so a fourth run steps without it.
//! Each round times three steps of each, the device synchronised after
//! each; the report gives the median over rounds, in ms per step and the
//! ratios: burn / downhill-burn, and downhill-burn against downhill's own step.

use burn::module::{Module, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};
use downhill_burn::{BurnOptimizer, Config};
use std::time::Instant;

struct Args {
    params: usize,
    tensors: usize,
    rounds: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        params: 10_000_000,
        tensors: 20,
        rounds: 5,
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
            "--tensors" => a.tensors = v,
            "--rounds" => a.rounds = v,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

#[derive(Module, Debug)]
struct Weights {
    w: Vec<Param<Tensor<2>>>,
}

/// The weights and their fixed gradients on `device`.
fn setup(a: &Args, device: &Device) -> (Weights, Vec<Tensor<2>>) {
    let rows = a.params / a.tensors / 1000;
    let dist = Distribution::Normal(0.0, 0.1);
    let w = (0..a.tensors)
        .map(|_| Param::from_tensor(Tensor::random([rows, 1000], dist, device).require_grad()))
        .collect();
    let g = (0..a.tensors)
        .map(|_| Tensor::random([rows, 1000], dist, device))
        .collect();
    (Weights { w }, g)
}

fn grads(m: &Weights, g: &[Tensor<2>]) -> GradientsParams {
    let mut out = GradientsParams::new();
    for (p, g) in m.w.iter().zip(g) {
        out.register(p.id, g.clone());
    }
    out
}

enum Opt {
    Burn(ModuleOptimizer),
    Downhill(Box<BurnOptimizer>),
    /// downhill's own optimiser on host slices of the same sizes.
    Slices(
        Box<dyn downhill::optim::Optimizer<f32>>,
        Vec<Vec<f32>>,
        Vec<Vec<f32>>,
    ),
}

fn step(opt: &mut Opt, m: Weights, g: &[Tensor<2>]) -> Weights {
    match opt {
        Opt::Burn(o) => {
            let gp = grads(&m, g);
            o.step(1e-3, m, gp)
        }
        Opt::Downhill(o) => {
            let gp = grads(&m, g);
            o.step(m, gp).expect("downhill-burn step")
        }
        Opt::Slices(o, p, g) => {
            let mut ps: Vec<&mut [f32]> = p.iter_mut().map(Vec::as_mut_slice).collect();
            let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
            o.step(&mut ps, &gs).expect("downhill step");
            m
        }
    }
}

/// downhill's AdamW over host copies of `m`'s weights and `g`.
fn slices(m: &Weights, g: &[Tensor<2>]) -> Opt {
    let host = |t: Tensor<2>| {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32")
    };
    let p: Vec<Vec<f32>> = m.w.iter().map(|w| host(w.val())).collect();
    let gs: Vec<Vec<f32>> = g.iter().map(|t| host(t.clone())).collect();
    let params: Vec<downhill::optim::Param> =
        m.w.iter()
            .map(|w| {
                downhill::optim::Param::new(w.val().dims().to_vec(), downhill::optim::Role::Hidden)
            })
            .collect();
    let spec: downhill::optim::OptimizerSpec =
        "adamw(lr=1e-3,weight_decay=0.01)".parse().expect("spec");
    let opt = downhill::optim::build::<f32>(&spec, &params).expect("build");
    Opt::Slices(opt, p, gs)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn bench(name: &str, device: Device, a: &Args, forced: bool) {
    let device = device.autodiff();
    let cfg: Config = "adamw(lr=1e-3,weight_decay=0.01)".parse().expect("spec");
    let make = |cfg: Config| {
        let o = BurnOptimizer::new(cfg).expect("optimiser");
        if forced {
            o.force_device_path()
        } else {
            o
        }
    };
    let ours = make(cfg.clone());
    let unchecked = make(cfg.non_finite(downhill_burn::NonFinite::Unchecked));
    let burn = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(0.01)
        .init();
    let reference = setup(a, &device);
    let own = slices(&reference.0, &reference.1);
    let mut runs = [
        ("burn AdamWConfig", Opt::Burn(burn), setup(a, &device)),
        (
            "downhill-burn",
            Opt::Downhill(Box::new(ours)),
            setup(a, &device),
        ),
        ("downhill, slices", own, reference),
        (
            "  ... unchecked",
            Opt::Downhill(Box::new(unchecked)),
            setup(a, &device),
        ),
    ];
    let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..=a.rounds {
        for (k, (_, opt, (m, g))) in runs.iter_mut().enumerate() {
            let mut w = std::mem::replace(m, Weights { w: Vec::new() });
            let mut best = Vec::new();
            for _ in 0..3 {
                let start = Instant::now();
                w = step(opt, w, g);
                device.sync().expect("sync");
                best.push(start.elapsed().as_secs_f64());
            }
            *m = w;
            // Round 0 warms up (state allocated, kernels compiled).
            if round > 0 {
                times[k].push(median(best));
            }
        }
    }
    let path = match &runs[1].1 {
        Opt::Downhill(o) => format!("{:?}", o.path().expect("stepped")),
        _ => unreachable!(),
    };
    let t: Vec<f64> = times.into_iter().map(median).collect();
    for ((label, _, _), s) in runs.iter().zip(&t) {
        println!(
            "{name:<8} {label:<18} {:>9.2} ms/step  {:>8.1} Mparam/s",
            s * 1e3,
            a.params as f64 / s / 1e6
        );
    }
    println!(
        "{name:<8} downhill-burn ({path}): {:.2}x burn's step ({:.2}x without the NaN check, which burn does not make), {:.0}% of downhill's own speed\n",
        t[0] / t[1],
        t[0] / t[3],
        t[2] / t[1] * 100.0
    );
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("burn_step: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "AdamW on {} f32 parameters in {} tensors, median of {} rounds\n",
        a.params, a.tensors, a.rounds
    );
    bench("flex", Device::flex(), &a, false);
    bench("flex", Device::flex(), &a, true);
    #[allow(deprecated)] // burn 0.22 deprecates ndarray; it is still used
    bench("ndarray", Device::ndarray(), &a, false);
    #[cfg(feature = "wgpu")]
    bench(
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        &a,
        false,
    );
}
