//! The reference fixtures (torch.optim, optax, schedulefree, prodigyopt;
//! `crates/downhill/tests/fixtures/optim`, or `$DOWNHILL_FIXTURES/optim`)
//! through the adapter: candle f64 vars built from `params0`, each step's
//! gradients injected through a `GradStore`, the vars compared after every
//! step with the core runner's tolerance (1e-9 relative, 1e-12 absolute).
//! The same fixtures run once more on each path that CUDA and Metal vars
//! take, forced on the CPU: through the host (every fixture), and on the
//! device path (every fixture of a rule with a device form, in f64 within
//! that tolerance and in f32 within the fixtures README's 1e-4 and 1e-6).

// The fixture formats, read as strictly as the core runner reads them.
#[path = "../../downhill/tests/conformance/fixture.rs"]
mod fixture;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use downhill_candle::{CandleOptimizer, Config};
use fixture::{OptimFixture, Tally};
use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("DOWNHILL_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../downhill/tests/fixtures"),
    }
}

/// How a fixture's steps reach the vars.
#[derive(Clone, Copy, PartialEq)]
enum Route {
    /// The fused kernels, in place (f64 vars on the CPU).
    InPlace,
    /// To the host and back through tensor ops (forced).
    Tensor,
    /// Tensor ops on the vars' device, state there (forced), in this dtype.
    Device(DType),
}

/// Runs one fixture; the worst relative error, or the first failure.
/// `None` when the route does not apply (no device form).
fn run(f: &OptimFixture, shapes: &[Vec<usize>], route: Route) -> Result<Option<f64>, String> {
    let dev = Device::Cpu;
    let dtype = match route {
        Route::Device(d) => d,
        _ => DType::F64,
    };
    // f64 within the core runner's tolerance, f32 within the fixtures
    // README's (which the core runner also holds the fused path to).
    let (rel, abs) = if dtype == DType::F64 {
        (1e-9, 1e-12)
    } else {
        (1e-4, 1e-6)
    };
    let vars: Vec<Var> = f
        .params0
        .iter()
        .zip(shapes)
        .map(|(p, s)| {
            Var::from_tensor(&Tensor::from_slice(p, s.as_slice(), &dev)?.to_dtype(dtype)?)
        })
        .collect::<candle_core::Result<_>>()
        .map_err(|e| e.to_string())?;
    let mut opt = CandleOptimizer::new(vars.clone(), Config::new(f.spec_for_every_tensor()))
        .map_err(|e| e.to_string())?;
    match route {
        Route::InPlace => {}
        Route::Tensor => opt = opt.force_tensor_path(),
        Route::Device(_) => match opt.force_device_path() {
            Ok(o) => opt = o,
            Err(_) => return Ok(None),
        },
    }
    let mut tally = Tally::default();
    for (t, grads) in f.grads.iter().enumerate() {
        let mut store = GradStore::default();
        for ((v, g), s) in vars.iter().zip(grads).zip(shapes) {
            let g = Tensor::from_slice(g, s.as_slice(), &dev)
                .and_then(|g| g.to_dtype(dtype))
                .map_err(|e| e.to_string())?;
            store.insert(v, g);
        }
        opt.step_outcome(&store)
            .map_err(|e| format!("step {t}: {e}"))?;
        let got: Vec<Vec<f64>> = vars
            .iter()
            .map(|v| v.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>())
            .collect::<candle_core::Result<_>>()
            .map_err(|e| e.to_string())?;
        tally.compare("param", t, &got, &f.params[t], rel, abs);
        if let Some(want) = &f.eval_params {
            let eval = opt
                .eval_params()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "{} has no evaluation point, the fixture has one",
                        f.optimizer
                    )
                })?;
            let got: Vec<Vec<f64>> = eval
                .iter()
                .map(|v| v.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>())
                .collect::<candle_core::Result<_>>()
                .map_err(|e| e.to_string())?;
            tally.compare("eval_param", t, &got, &want[t], rel, abs);
        }
    }
    tally.finish().map(|(worst, ..)| Some(worst))
}

fn check_all(route: Route) {
    let dir = fixtures_dir().join("optim");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let (mut ran, mut expected) = (0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = fixture::read::<OptimFixture>(path)
            .and_then(|f| f.validate().map(|shapes| (f, shapes)))
            .and_then(|(f, shapes)| {
                // Every element-wise rule that does not sum over tensors has
                // a device form.
                let entry = downhill::optim::registry::entry(&f.optimizer);
                expected += usize::from(entry.is_ok_and(|e| e.elementwise && !e.shares_groups));
                run(&f, &shapes, route)
            });
        match outcome {
            Ok(None) => {}
            Ok(Some(worst)) => {
                ran += 1;
                println!("ok      {name}: worst relative error {worst:.1e}")
            }
            Err(e) => {
                println!("FAIL    {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    println!(
        "checked {} optim fixtures through the adapter from {}",
        files.len(),
        dir.display()
    );
    assert!(!files.is_empty(), "no optim fixtures in {}", dir.display());
    if matches!(route, Route::Device(_)) {
        assert_eq!(
            ran + failures.len(),
            expected,
            "fixtures of rules with a device form"
        );
    } else {
        assert_eq!(ran + failures.len(), files.len());
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fixture_passes_through_the_adapter_in_place() {
    check_all(Route::InPlace);
}

#[test]
fn every_fixture_passes_through_the_tensor_op_path() {
    check_all(Route::Tensor);
}

/// The device path (what f32 and f64 vars on CUDA or Metal take), forced on
/// the CPU: every fixture of a rule with a device form, in f64 and in f32.
#[test]
fn every_fixture_passes_through_the_device_path() {
    check_all(Route::Device(DType::F64));
    check_all(Route::Device(DType::F32));
}
