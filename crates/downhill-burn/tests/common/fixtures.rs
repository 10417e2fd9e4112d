//! The reference fixtures (torch.optim, optax, schedulefree, prodigyopt;
//! `crates/downhill/tests/fixtures/optim`, or `$DOWNHILL_FIXTURES/optim`)
//! through the adapter: a burn module built from `params0`, each step's
//! gradients given as burn's `GradientsParams`, the parameters compared
//! after every step. On flex and on ndarray, in f64 within the core
//! runner's tolerance (1e-9 relative, 1e-12 absolute): in place (every
//! fixture), and on the device path forced on the CPU (every fixture of a
//! rule with a device form). In f32 within the fixtures README's f32
//! tolerances (1e-4 relative and 1e-6 absolute; 5e-2 and 1e-4 for SOAP and
//! Shampoo, as the core runner holds them): in place on flex, on the device
//! path forced on flex, and on wgpu (`tests/wgpu.rs`).

#[path = "../../../downhill/tests/conformance/fixture.rs"]
pub mod fixture;

use burn::tensor::{DType, Device};
use downhill_burn::{BurnOptimizer, Config, Path};
use fixture::{OptimFixture, Tally};
use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("DOWNHILL_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../downhill/tests/fixtures"),
    }
}

/// How the adapter should route a fixture's steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Route {
    /// In place (flex, ndarray): checked.
    InPlace,
    /// The device path, forced: checked; a rule without a device form is
    /// left out.
    Forced,
    /// As the adapter chooses (wgpu: the device path, or the host).
    Chosen,
}

/// Runs one fixture on `device` in `dtype`; the worst relative error, or
/// the first failure. `None` when a forced device path does not apply.
fn run(
    f: &OptimFixture,
    shapes: &[Vec<usize>],
    device: &Device,
    dtype: DType,
    route: Route,
) -> Result<Option<f64>, String> {
    let (rel, abs) = if dtype == DType::F64 {
        (1e-9, 1e-12)
    } else {
        fixture::f32_tolerance(&f.optimizer)
    };
    // On the autodiff device, as a training loop holds its module.
    let mut module = super::Params::new(&f.params0, shapes, dtype, &device.clone().autodiff());
    let mut opt =
        BurnOptimizer::new(Config::new(f.spec_for_every_tensor())).map_err(|e| e.to_string())?;
    if route == Route::Forced {
        opt = opt.force_device_path();
    }
    let mut tally = Tally::default();
    for (t, grads) in f.grads.iter().enumerate() {
        let g = module.grads(grads, dtype);
        module = match opt.step(module, g) {
            Ok(m) => m,
            Err(e)
                if route == Route::Forced && t == 0 && e.to_string().contains("no device form") =>
            {
                return Ok(None)
            }
            Err(e) => return Err(format!("step {t}: {e}")),
        };
        let want = match route {
            Route::InPlace => Some(Path::InPlace),
            Route::Forced => Some(Path::Device),
            Route::Chosen => None,
        };
        if want.is_some() && opt.path() != want {
            return Err(format!("took {:?}, expected {want:?}", opt.path()));
        }
        tally.compare("param", t, &module.values(), &f.params[t], rel, abs);
        if let Some(want) = &f.eval_params {
            let eval = opt
                .eval_module(&module)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "{} has no evaluation point, the fixture has one",
                        f.optimizer
                    )
                })?;
            tally.compare("eval_param", t, &eval.values(), &want[t], rel, abs);
        }
    }
    tally.finish().map(|(worst, ..)| Some(worst))
}

/// The optimiser fixtures, sorted.
pub fn optim_files() -> Vec<PathBuf> {
    let dir = fixtures_dir().join("optim");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Runs every fixture; panics with every failure.
pub fn check_all(device: &Device, dtype: DType, route: Route) {
    let dir = fixtures_dir().join("optim");
    let files = optim_files();
    let mut failures = Vec::new();
    let (mut ran, mut expected) = (0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = fixture::read::<OptimFixture>(path)
            .and_then(|f| f.validate().map(|shapes| (f, shapes)))
            .and_then(|(f, shapes)| {
                let entry = downhill::optim::registry::entry(&f.optimizer);
                let has_form = entry.is_ok_and(|e| e.elementwise && !e.shares_groups);
                expected += usize::from(route != Route::Forced || has_form);
                run(&f, &shapes, device, dtype, route)
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
        "checked {} optim fixtures on {device:?} in {dtype:?} ({:?}) from {}",
        files.len(),
        route,
        dir.display()
    );
    assert!(!files.is_empty(), "no optim fixtures in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert_eq!(ran, expected, "fixtures run");
}
