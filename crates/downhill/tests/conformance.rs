//! Conformance against reference fixtures generated from torch.optim in float64
//! (format: `../shared/fixtures/README.md`). A generic runner: each fixture is
//! driven by its `optimizer`/`scheduler` name and `hyper` map, so any new file
//! in the folder runs without code changes.
//!
//! Folder: `$DOWNHILL_FIXTURES`, default `../shared/fixtures` beside the
//! repository root.

use downhill::optim::{build, GroupSpec, OptimizerSpec};
use downhill::Real;
use serde_json::Value;
use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("DOWNHILL_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

fn files(kind: &str) -> Vec<PathBuf> {
    let dir = fixtures_dir().join(kind);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn load(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tensors(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    (got - want).abs() <= abs + rel * want.abs()
}

fn optimizer_spec(f: &Value) -> OptimizerSpec {
    let mut spec = OptimizerSpec::new(f["optimizer"].as_str().unwrap());
    spec.hyper = serde_json::from_value(f["hyper"].clone()).unwrap();
    if let Some(groups) = f.get("groups") {
        spec.groups = serde_json::from_value::<Vec<GroupSpec>>(groups.clone()).unwrap();
    }
    spec
}

/// Runs one optimiser fixture in element type `T`; returns the worst relative error.
fn run_optim<T: Real>(f: &Value, rel: f64, abs: f64) -> Result<f64, String> {
    let spec = optimizer_spec(f);
    let params0 = tensors(&f["params0"]);
    let sizes: Vec<usize> = params0.iter().map(Vec::len).collect();
    let mut opt = build::<T>(&spec, &sizes).map_err(|e| e.to_string())?;
    let mut params: Vec<Vec<T>> = params0
        .iter()
        .map(|p| p.iter().map(|&x| T::from_f64(x)).collect())
        .collect();
    let grads = f["grads"].as_array().unwrap();
    let expected = f["params"].as_array().unwrap();
    assert_eq!(grads.len(), expected.len());
    let mut worst = 0.0f64;
    for (t, (g, want)) in grads.iter().zip(expected).enumerate() {
        let g: Vec<Vec<T>> = tensors(g)
            .iter()
            .map(|x| x.iter().map(|&v| T::from_f64(v)).collect())
            .collect();
        let mut ps: Vec<&mut [T]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
        let gs: Vec<&[T]> = g.iter().map(|x| x.as_slice()).collect();
        opt.step(&mut ps, &gs)
            .map_err(|e| format!("step {t}: {e}"))?;
        for (i, (p, w)) in params.iter().zip(tensors(want)).enumerate() {
            for (j, (&got, &want)) in p.iter().zip(&w).enumerate() {
                let got = got.to_f64();
                if !close(got, want, rel, abs) {
                    return Err(format!(
                        "step {t}, param {i}[{j}]: got {got:e}, torch {want:e}"
                    ));
                }
                if want != 0.0 {
                    worst = worst.max((got - want).abs() / want.abs());
                }
            }
        }
    }
    Ok(worst)
}

#[test]
fn optimizer_fixtures() {
    check_all("optim", |f| {
        match (
            run_optim::<f64>(f, 1e-9, 1e-12),
            run_optim::<f32>(f, 1e-4, 1e-6),
        ) {
            (Ok(w64), Ok(w32)) => Ok(format!("worst relative error f64 {w64:.1e}, f32 {w32:.1e}")),
            (r64, r32) => Err(format!("f64 {r64:?}; f32 {r32:?}")),
        }
    });
}

/// Runs `run` on every fixture of `kind`, prints one line per file and the
/// count, and fails if any failed or none was found.
fn check_all(kind: &str, run: impl Fn(&Value) -> Result<String, String>) {
    let files = files(kind);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        match run(&load(path)) {
            Ok(s) => println!("ok   {name}: {s}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    println!(
        "checked {} {kind} fixtures from {}",
        files.len(),
        fixtures_dir().display()
    );
    assert!(
        !files.is_empty(),
        "no {kind} fixtures found in {}",
        fixtures_dir().display()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs one schedule fixture; returns the worst relative error.
fn run_schedule(f: &Value) -> Result<f64, String> {
    use downhill::schedule::{Schedule, Scheduler};
    let name = f["scheduler"].as_str().unwrap();
    let hyper = serde_json::from_value(f["hyper"].clone()).unwrap();
    let schedule = Schedule::from_name(name, &hyper).map_err(|e| e.to_string())?;
    let base = f["base_lr"].as_f64().unwrap();
    let mut opt = build::<f64>(
        &OptimizerSpec::new("sgd").with("lr", downhill::hyper::HyperValue::Number(base)),
        &[1],
    )
    .map_err(|e| e.to_string())?;
    let mut sched = Scheduler::new(schedule, &mut *opt).map_err(|e| e.to_string())?;
    let lrs: Vec<f64> = f["lrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let metrics: Option<Vec<f64>> = f.get("metrics").map(|m| {
        m.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    });
    let mut worst = 0.0f64;
    for (t, &want) in lrs.iter().enumerate() {
        // Epoch schedulers: lrs[t] is read before the t-th step. Plateau:
        // lrs[t] is the rate after step(metrics[t]).
        if let Some(m) = &metrics {
            sched
                .step(&mut *opt, Some(m[t]))
                .map_err(|e| e.to_string())?;
        }
        let got = opt.lr(0);
        if !close(got, want, 1e-9, 1e-12) {
            return Err(format!("step {t}: lr {got:e}, torch {want:e}"));
        }
        worst = worst.max((got - want).abs() / want.abs().max(1e-300));
        if metrics.is_none() {
            sched.step(&mut *opt, None).map_err(|e| e.to_string())?;
        }
    }
    Ok(worst)
}

#[test]
fn schedule_fixtures() {
    check_all("schedule", |f| {
        run_schedule(f).map(|w| format!("worst relative error {w:.1e}"))
    });
}

/// Runs one L-BFGS fixture: one `step` call from `x0` with the fixture's
/// hyper-parameters must reach f < 1e-10 within 110% of the fewer evaluations
/// of torch and SciPy.
fn run_lbfgs(f: &Value) -> Result<String, String> {
    use downhill::hyper::Hyper;
    use downhill::lbfgs::{Lbfgs, LbfgsConfig};
    use downhill::problems::{Problem, Rosenbrock};
    let x0: Vec<f64> = f["x0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let problem: Box<dyn Problem> = match f["function"].as_str().unwrap() {
        "rosenbrock" => Box::new(Rosenbrock::new(x0.len())),
        other => return Err(format!("unknown function `{other}`")),
    };
    let mut config = LbfgsConfig::default();
    config
        .apply(&serde_json::from_value(f["hyper"].clone()).unwrap())
        .map_err(|e| e.to_string())?;
    let mut opt = Lbfgs::<f64>::new(config, x0.len()).map_err(|e| e.to_string())?;
    let mut x = x0.clone();
    let report = opt
        .step(&mut x, |x, g| problem.gradient(x, g))
        .map_err(|e| e.to_string())?;
    let torch = f["torch"]["func_evals"].as_u64().unwrap() as f64;
    let scipy = f["scipy_lbfgsb"]["nfev"].as_u64().unwrap() as f64;
    let budget = (torch.min(scipy) * 1.1).floor() as usize;
    let fx = problem.value(&x);
    let summary = format!(
        "f = {fx:.2e} in {} evaluations, {} iterations ({}); torch {torch}, scipy {scipy}, budget {budget}",
        report.evaluations, report.iterations, report.reason
    );
    if fx < 1e-10 && report.evaluations <= budget {
        Ok(summary)
    } else {
        Err(summary)
    }
}

#[test]
fn lbfgs_fixtures() {
    check_all("lbfgs", run_lbfgs);
}
