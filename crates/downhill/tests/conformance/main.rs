//! Conformance against reference fixtures generated in float64 from
//! torch.optim, optax, schedulefree and prodigyopt (formats:
//! `tests/fixtures/README.md`; generator: `tools/fixtures/generate.py`).
//!
//! A generic runner: each fixture is driven by its `optimizer`/`scheduler`
//! name and `hyper` map, so a new file in the folder runs without code
//! changes. Every file is checked, strictly (see [`fixture`]); a malformed or
//! failing file is reported by name with the worst error it showed, and the
//! test fails after all files ran. One line per kind, `checked N optim
//! fixtures`, says how many ran.
//!
//! Folder: `$DOWNHILL_FIXTURES`, default the repository's own copy in
//! `crates/downhill/tests/fixtures`.

mod device;
mod fixture;
mod runner_tests;

use downhill::hyper::HyperValue;
use downhill::optim::{build, build_rule, Optimizer, OptimizerSpec, OPTIMIZERS};
use downhill::schedule::{Schedule, Scheduler, SCHEDULES};
use downhill::Real;
use fixture::{LbfgsFixture, OptimFixture, ScheduleFixture, Tally};
use std::path::{Path, PathBuf};

/// Optimisers that have shipped fixtures but are not in downhill yet, with
/// the issue that adds them. Their fixtures are listed as pending, visibly;
/// [`pending_entries_are_really_missing`] makes this list shrink as each lands.
const PENDING_OPTIMIZERS: &[(&str, &str)] = &[];

/// Schedules likewise.
const PENDING_SCHEDULES: &[(&str, &str)] = &[];

/// Names downhill offers that no reference library has, and why they are
/// verified another way.
const NO_REFERENCE: &[(&str, &str)] = &[
    (
        "constant",
        "no schedule at all: the rate stays the optimiser's own (tests/properties.rs)",
    ),
    (
        "newton",
        "no reference library has Newton's method with Hessian modification; tests/second_order.rs checks it \
         on quadratics (one step), Rosenbrock and saddles against known minima",
    ),
];

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("DOWNHILL_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    }
}

/// The `.json` files of one kind, sorted; an unreadable folder is an error.
fn files(kind: &str) -> Result<Vec<PathBuf>, String> {
    let dir = fixtures_dir().join(kind);
    let rd = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in rd {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// What running one fixture file gave.
enum Outcome {
    /// It passed; a one-line summary (worst errors), and its figures.
    Passed(String, Figures),
    /// Its method is not in downhill yet (see [`PENDING_OPTIMIZERS`]).
    Pending(String),
    /// It is malformed or failed; why, with the worst error.
    Failed(String),
}

/// The worst f64 relative error of passing files, and how many of their
/// values were compared and how many of those were bit-identical.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    worst: f64,
    /// The worst of the rules that do not decompose (all but SOAP and Shampoo).
    worst_first_order: f64,
    identical: usize,
    compared: usize,
}

impl Figures {
    fn add(self, o: Figures) -> Figures {
        Figures {
            worst: self.worst.max(o.worst),
            worst_first_order: self.worst_first_order.max(o.worst_first_order),
            identical: self.identical + o.identical,
            compared: self.compared + o.compared,
        }
    }
}

/// Whether the fixtures are the repository's own copy, whose figures the
/// README quotes (other folders, e.g. held-back fixtures, are only held to
/// the runner's tolerances).
fn own_fixtures() -> bool {
    std::env::var_os("DOWNHILL_FIXTURES").is_none()
}

/// Runs `run` on every fixture of `kind`, prints one line per file and
/// `checked N {kind} fixtures`, and fails if any failed or none ran.
/// Returns the passing files' figures together.
fn check_all(kind: &str, run: impl Fn(&Path) -> Outcome) -> Figures {
    let files = files(kind).unwrap_or_else(|e| panic!("{e}"));
    let (mut checked, mut pending, mut failures) = (0, 0, Vec::new());
    let mut all = Figures::default();
    for path in &files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match run(path) {
            Outcome::Passed(s, figures) => {
                checked += 1;
                all = all.add(figures);
                println!("ok      {name}: {s}");
            }
            Outcome::Pending(why) => {
                pending += 1;
                println!("PENDING {name}: {why}");
            }
            Outcome::Failed(e) => {
                checked += 1;
                println!("FAIL    {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    println!(
        "checked {checked} {kind} fixtures from {}",
        fixtures_dir().display()
    );
    if pending > 0 {
        println!("pending {pending} {kind} fixtures (methods not in downhill yet)");
    }
    assert!(
        checked > 0,
        "no {kind} fixtures found in {}",
        fixtures_dir().display()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} {kind} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let identical = if all.compared > 0 {
        format!(
            ", {} of {} values bit-identical",
            all.identical, all.compared
        )
    } else {
        String::new()
    };
    println!(
        "all {kind} fixtures: worst f64 relative error {:.1e}{identical}",
        all.worst
    );
    all
}

fn to_t<T: Real>(tensors: &[Vec<f64>]) -> Vec<Vec<T>> {
    tensors
        .iter()
        .map(|t| t.iter().map(|&x| T::from_f64(x)).collect())
        .collect()
}

/// Runs a validated optimiser fixture in element type `T`; returns the worst
/// relative error over `params` (and `eval_params` where given).
/// Returns the worst relative error, the values that were bit-identical and
/// the values compared.
fn run_optim<T: Real>(
    f: &OptimFixture,
    shapes: &[Vec<usize>],
    rel: f64,
    abs: f64,
) -> Result<(f64, usize, usize), String> {
    // The fixture's optimiser over every tensor, as the reference ran it.
    let mut opt = build_rule::<T>(&f.spec(), shapes).map_err(|e| e.to_string())?;
    let mut params = to_t::<T>(&f.params0);
    let mut eval: Vec<Vec<T>> = params.iter().map(|p| vec![T::zero(); p.len()]).collect();
    let mut tally = Tally::default();
    for (t, g) in f.grads.iter().enumerate() {
        let g = to_t::<T>(g);
        let mut ps: Vec<&mut [T]> = params.iter_mut().map(Vec::as_mut_slice).collect();
        let gs: Vec<&[T]> = g.iter().map(Vec::as_slice).collect();
        opt.step(&mut ps, &gs)
            .map_err(|e| format!("step {t}: {e}"))?;
        tally.compare("param", t, &params, &f.params[t], rel, abs);
        if let Some(want) = &f.eval_params {
            eval_point(&*opt, &params, &mut eval).map_err(|e| format!("step {t}: {e}"))?;
            tally.compare("eval_param", t, &eval, &want[t], rel, abs);
        }
    }
    tally.finish()
}

/// The optimiser's evaluation point; an error when it has none, since the
/// fixture says the evaluation point differs from the training point.
fn eval_point<T: Real>(
    opt: &dyn Optimizer<T>,
    params: &[Vec<T>],
    out: &mut [Vec<T>],
) -> Result<(), String> {
    let ps: Vec<&[T]> = params.iter().map(Vec::as_slice).collect();
    let mut os: Vec<&mut [T]> = out.iter_mut().map(Vec::as_mut_slice).collect();
    match opt.eval_params(&ps, &mut os) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the fixture has eval_params, but {} evaluates at the training point",
            opt.name()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn pending(list: &[(&str, &str)], name: &str) -> Option<String> {
    list.iter()
        .find(|(n, _)| *n == name)
        .map(|(n, issue)| format!("`{n}` is not in downhill yet ({issue})"))
}

fn check_optim_file(path: &Path) -> Outcome {
    let f: OptimFixture = match fixture::read(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(e),
    };
    let shapes = match f.validate() {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    if !OPTIMIZERS.contains(&f.optimizer.as_str()) {
        if let Some(why) = pending(PENDING_OPTIMIZERS, &f.optimizer) {
            return Outcome::Pending(why);
        }
    }
    let (rel32, abs32) = fixture::f32_tolerance(&f.optimizer);
    let decomposes = downhill::optim::registry::entry(&f.optimizer).is_ok_and(|e| e.decomposes);
    match (
        run_optim::<f64>(&f, &shapes, 1e-9, 1e-12),
        run_optim::<f32>(&f, &shapes, rel32, abs32),
    ) {
        (Ok((w64, same, n)), Ok((w32, _, _))) => Outcome::Passed(
            format!(
                "worst relative error f64 {w64:.1e} ({same} of {n} values bit-identical), f32 {w32:.1e}"
            ),
            Figures {
                worst: w64,
                worst_first_order: if decomposes { 0.0 } else { w64 },
                identical: same,
                compared: n,
            },
        ),
        (r64, r32) => Outcome::Failed(format!(
            "f64: {}; f32: {}",
            r64.map_or_else(|e| e, |(w, _, _)| format!("ok ({w:.1e})")),
            r32.map_or_else(|e| e, |(w, _, _)| format!("ok ({w:.1e})"))
        )),
    }
}

/// The README's figures for the repository's fixtures are bounds this
/// test holds: every f64 value of a first-order rule within 1e-11 relative
/// of the reference (the runner's tolerance is 1e-9), and at least half of
/// all values bit-identical. The rules that decompose (SOAP, Shampoo) are
/// held to the runner's 1e-9 alone: their eigenbases amplify the last bits
/// of any two correct eigensolvers (the fixtures README).
#[test]
fn optimizer_fixtures() {
    let all = check_all("optim", check_optim_file);
    println!(
        "first-order optim fixtures: worst f64 relative error {:.1e}",
        all.worst_first_order
    );
    if own_fixtures() {
        assert!(
            all.worst_first_order < 1e-11,
            "worst f64 error of a first-order rule {:.1e}: the README says < 1e-11",
            all.worst_first_order
        );
        assert!(
            2 * all.identical >= all.compared,
            "{} of {} values bit-identical: the README says at least half",
            all.identical,
            all.compared
        );
    }
}

/// Runs a validated schedule fixture; returns the worst relative error.
fn run_schedule(f: &ScheduleFixture) -> Result<f64, String> {
    let schedule = Schedule::from_name(&f.scheduler, &f.hyper).map_err(|e| e.to_string())?;
    // With momentum, so that schedules that cycle it (one-cycle, cyclic)
    // have something to cycle; the rates do not depend on it.
    let mut opt = build::<f64>(
        &OptimizerSpec::new("sgd")
            .with("lr", HyperValue::Number(f.base_lr))
            .with("momentum", HyperValue::Number(0.9)),
        &[1],
    )
    .map_err(|e| e.to_string())?;
    let mut sched = Scheduler::new(schedule, &mut *opt).map_err(|e| e.to_string())?;
    let mut tally = Tally::default();
    for (t, &want) in f.lrs.iter().enumerate() {
        // Epoch schedulers: lrs[t] is read before the t-th step. Plateau:
        // lrs[t] is the rate after step(metrics[t]).
        if let Some(m) = &f.metrics {
            sched
                .step(&mut *opt, Some(m[t]))
                .map_err(|e| format!("step {t}: {e}"))?;
        }
        tally.compare("lr", t, &[vec![opt.lr(0)]], &[vec![want]], 1e-9, 1e-12);
        if f.metrics.is_none() {
            sched
                .step(&mut *opt, None)
                .map_err(|e| format!("step {t}: {e}"))?;
        }
    }
    tally.finish().map(|(worst, _, _)| worst)
}

fn check_schedule_file(path: &Path) -> Outcome {
    let f: ScheduleFixture = match fixture::read(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(e),
    };
    if let Err(e) = f.validate() {
        return Outcome::Failed(e);
    }
    if !SCHEDULES.contains(&f.scheduler.as_str()) {
        if let Some(why) = pending(PENDING_SCHEDULES, &f.scheduler) {
            return Outcome::Pending(why);
        }
    }
    match run_schedule(&f) {
        Ok(w) => Outcome::Passed(
            format!("worst relative error {w:.1e}"),
            Figures {
                worst: w,
                ..Figures::default()
            },
        ),
        Err(e) => Outcome::Failed(e),
    }
}

#[test]
fn schedule_fixtures() {
    let all = check_all("schedule", check_schedule_file);
    if own_fixtures() {
        assert!(
            all.worst < 1e-13,
            "worst error {:.1e}: the README says < 1e-13",
            all.worst
        );
    }
}

/// Runs one L-BFGS fixture: one `step` call from `x0` with the fixture's
/// hyper-parameters must reach f < 1e-10 within 110% of the fewer evaluations
/// of torch and SciPy.
fn run_lbfgs(f: &LbfgsFixture) -> Result<String, String> {
    use downhill::hyper::Hyper;
    use downhill::lbfgs::{Lbfgs, LbfgsConfig};
    use downhill::problems::{Problem, Rosenbrock};
    let problem: Box<dyn Problem> = match f.function.as_str() {
        "rosenbrock" => Box::new(Rosenbrock::new(f.x0.len())),
        other => return Err(format!("unknown function `{other}`")),
    };
    let mut config = LbfgsConfig::default();
    config.apply(&f.hyper).map_err(|e| e.to_string())?;
    let mut opt = Lbfgs::<f64>::new(config, f.x0.len()).map_err(|e| e.to_string())?;
    let mut x = f.x0.clone();
    let report = opt
        .step(&mut x, |x, g| problem.gradient(x, g))
        .map_err(|e| e.to_string())?;
    let torch = f.torch.func_evals as f64;
    let scipy = f.scipy_lbfgsb.nfev as f64;
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

fn check_lbfgs_file(path: &Path) -> Outcome {
    let f: LbfgsFixture = match fixture::read(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(e),
    };
    match f.validate().and_then(|()| run_lbfgs(&f)) {
        Ok(s) => Outcome::Passed(s, Figures::default()),
        Err(e) => Outcome::Failed(e),
    }
}

#[test]
fn lbfgs_fixtures() {
    check_all("lbfgs", check_lbfgs_file);
}

/// The method names in every fixture of `kind`, read leniently (a malformed
/// file fails in its own test above).
fn fixture_methods(kind: &str, key: &str) -> Vec<String> {
    files(kind)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .filter_map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            v.get(key)?.as_str().map(str::to_string)
        })
        .collect()
}

/// Every optimiser and schedule downhill offers has a fixture, or a written
/// reason in [`NO_REFERENCE`] why no reference exists.
#[test]
fn every_method_has_a_fixture_or_a_reason() {
    let optims = fixture_methods("optim", "optimizer");
    let schedules = fixture_methods("schedule", "scheduler");
    let has_lbfgs = !files("lbfgs").unwrap_or_default().is_empty();
    let mut missing = Vec::new();
    let offered = OPTIMIZERS
        .iter()
        .map(|n| (*n, optims.iter().any(|o| o == n)))
        .chain([("lbfgs", has_lbfgs), ("newton", false)])
        .chain(
            SCHEDULES
                .iter()
                .map(|n| (*n, schedules.iter().any(|s| s == n))),
        );
    for (name, covered) in offered {
        if !covered && !NO_REFERENCE.iter().any(|(n, _)| *n == name) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "no fixture and no written reason for: {} (add fixtures with tools/fixtures/generate.py)",
        missing.join(", ")
    );
    for (name, _) in NO_REFERENCE {
        assert!(
            !optims.iter().chain(&schedules).any(|m| m == name),
            "`{name}` has a fixture now: drop its entry from NO_REFERENCE"
        );
    }
}

/// A pending entry whose method has landed must go, so its fixtures run.
#[test]
fn pending_entries_are_really_missing() {
    for (name, _) in PENDING_OPTIMIZERS {
        assert!(
            !OPTIMIZERS.contains(name),
            "{name} is in downhill now: remove it from PENDING_OPTIMIZERS"
        );
    }
    for (name, _) in PENDING_SCHEDULES {
        assert!(
            !SCHEDULES.contains(name),
            "{name} is in downhill now: remove it from PENDING_SCHEDULES"
        );
    }
}
