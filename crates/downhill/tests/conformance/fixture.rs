//! The fixture formats (`tests/fixtures/README.md`), read strictly: every
//! key is known (at every level, parameter groups included), every `format`
//! is one this runner understands, and every tensor has the length its
//! shape says, at every step. A fixture that fails any of this is reported
//! as malformed, never half-run.

// Every key of a format is declared so that an unknown one is an error; the
// descriptive ones (`name`, `source`, `note`, the reference results) are
// not read by the runner.
#![allow(dead_code)]

use downhill::hyper::HyperMap;
use downhill::optim::{GroupSpec, OptimizerSpec, PartSpec};
use downhill::Real;
use serde::Deserialize;
use std::path::Path;

/// `optim/*.json`: `downhill-optim-fixture/1` (torch.optim, flat tensors) and
/// `/2` (adds `shapes`, `reference` and the optional `eval_params`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimFixture {
    pub format: String,
    pub name: String,
    /// Format /1: where the outputs came from.
    pub source: Option<String>,
    /// Format /2: the same, with anything the generator changed.
    pub reference: Option<String>,
    pub optimizer: String,
    pub hyper: HyperMap,
    pub groups: Option<Vec<GroupFixture>>,
    pub shapes: Option<Vec<Vec<usize>>>,
    pub params0: Vec<Vec<f64>>,
    pub grads: Vec<Vec<Vec<f64>>>,
    pub params: Vec<Vec<Vec<f64>>>,
    pub eval_params: Option<Vec<Vec<Vec<f64>>>>,
}

/// A parameter group: tensor indices and hyper-parameter overrides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFixture {
    pub params: Vec<usize>,
    #[serde(default)]
    pub hyper: HyperMap,
}

/// `schedule/*.json`: `downhill-schedule-fixture/1`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFixture {
    pub format: String,
    pub name: String,
    pub source: String,
    pub scheduler: String,
    pub base_lr: f64,
    pub hyper: HyperMap,
    pub lrs: Vec<f64>,
    pub metrics: Option<Vec<f64>>,
    pub note: Option<String>,
}

/// `lbfgs/*.json`: `downhill-lbfgs-fixture/1`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbfgsFixture {
    pub format: String,
    pub name: String,
    pub source: String,
    pub function: String,
    pub x0: Vec<f64>,
    pub hyper: HyperMap,
    pub torch: TorchResult,
    pub scipy_lbfgsb: ScipyResult,
    pub minimum: Minimum,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorchResult {
    pub x: Vec<f64>,
    pub f: f64,
    pub func_evals: u64,
    pub n_iter: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScipyResult {
    pub x: Vec<f64>,
    pub f: f64,
    pub nfev: u64,
    pub nit: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
}

pub const OPTIM_V1: &str = "downhill-optim-fixture/1";
pub const OPTIM_V2: &str = "downhill-optim-fixture/2";
pub const SCHEDULE_V1: &str = "downhill-schedule-fixture/1";
pub const LBFGS_V1: &str = "downhill-lbfgs-fixture/1";

/// Reads and parses a file; any failure names the file's problem in words.
pub fn read<F: for<'de> Deserialize<'de>>(path: &Path) -> Result<F, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    parse(&text)
}

/// Parses fixture text (also used by the runner's own tests).
pub fn parse<F: for<'de> Deserialize<'de>>(text: &str) -> Result<F, String> {
    serde_json::from_str(text).map_err(|e| format!("malformed: {e}"))
}

fn expect_format(got: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&got) {
        Ok(())
    } else {
        Err(format!(
            "malformed: unknown format `{got}` (this runner reads {})",
            allowed.join(", ")
        ))
    }
}

/// Checks one list of tensors against the expected lengths.
fn check_tensors(what: &str, tensors: &[Vec<f64>], lens: &[usize]) -> Result<(), String> {
    if tensors.len() != lens.len() {
        return Err(format!(
            "malformed: {what} has {} tensors, expected {}",
            tensors.len(),
            lens.len()
        ));
    }
    for (i, (t, &n)) in tensors.iter().zip(lens).enumerate() {
        if t.len() != n {
            return Err(format!(
                "malformed: {what}[{i}] has {} elements, expected {n}",
                t.len()
            ));
        }
    }
    Ok(())
}

/// Checks a per-step series (`grads`, `params`, `eval_params`).
fn check_series(
    what: &str,
    series: &[Vec<Vec<f64>>],
    steps: usize,
    lens: &[usize],
) -> Result<(), String> {
    if series.len() != steps {
        return Err(format!(
            "malformed: {what} has {} steps, grads has {steps}",
            series.len()
        ));
    }
    series
        .iter()
        .enumerate()
        .try_for_each(|(t, ts)| check_tensors(&format!("{what}[{t}]"), ts, lens))
}

impl OptimFixture {
    /// The optimiser as the reference ran it: name, hyper-parameters and
    /// groups.
    pub fn spec(&self) -> OptimizerSpec {
        let mut spec = OptimizerSpec::new(&self.optimizer);
        spec.hyper = self.hyper.clone();
        if let Some(groups) = &self.groups {
            spec.groups = groups
                .iter()
                .map(|g| GroupSpec {
                    params: g.params.clone(),
                    hyper: g.hyper.clone(),
                })
                .collect();
        }
        spec
    }

    /// [`OptimFixture::spec`] over every tensor, for an adapter that routes
    /// by role: a fixture's `muon` is torch's `Muon(params)`, which updates
    /// every tensor it is given, while `muon` alone in a spec puts Muon on
    /// the hidden matrices only, so the adapter gets what a user writes for
    /// "Muon on everything": `partition(all=muon)`.
    pub fn spec_for_every_tensor(&self) -> OptimizerSpec {
        let spec = self.spec();
        if self.optimizer != "muon" {
            return spec;
        }
        OptimizerSpec {
            name: "partition".into(),
            parts: vec![PartSpec {
                roles: Vec::new(),
                rest: true,
                spec,
            }],
            ..OptimizerSpec::default()
        }
    }

    /// The format's rules and every tensor's length; returns the shapes
    /// (format /1: each tensor flat).
    pub fn validate(&self) -> Result<Vec<Vec<usize>>, String> {
        expect_format(&self.format, &[OPTIM_V1, OPTIM_V2])?;
        let v2 = self.format == OPTIM_V2;
        let misplaced = |key: &str, present: bool, wanted: bool| {
            if present == wanted {
                Ok(())
            } else if present {
                Err(format!(
                    "malformed: `{key}` is not a key of {}",
                    self.format
                ))
            } else {
                Err(format!("malformed: {} needs `{key}`", self.format))
            }
        };
        misplaced("source", self.source.is_some(), !v2)?;
        misplaced("reference", self.reference.is_some(), v2)?;
        misplaced("shapes", self.shapes.is_some(), v2)?;
        if !v2 && self.eval_params.is_some() {
            return Err(format!(
                "malformed: `eval_params` is not a key of {OPTIM_V1}"
            ));
        }
        if self.params0.is_empty() {
            return Err("malformed: params0 holds no tensor".into());
        }
        let lens: Vec<usize> = self.params0.iter().map(Vec::len).collect();
        if let Some(i) = lens.iter().position(|&n| n == 0) {
            return Err(format!("malformed: params0[{i}] is empty"));
        }
        let shapes = match &self.shapes {
            Some(shapes) => {
                if shapes.len() != lens.len() {
                    return Err(format!(
                        "malformed: {} shapes for {} tensors",
                        shapes.len(),
                        lens.len()
                    ));
                }
                for (i, (s, &n)) in shapes.iter().zip(&lens).enumerate() {
                    let product = s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                    if product != Some(n) {
                        return Err(format!(
                            "malformed: shapes[{i}] = {s:?} does not hold the {n} elements of params0[{i}]"
                        ));
                    }
                }
                shapes.clone()
            }
            None => lens.iter().map(|&n| vec![n]).collect(),
        };
        if self.grads.is_empty() {
            return Err("malformed: no steps (grads is empty)".into());
        }
        let steps = self.grads.len();
        check_series("grads", &self.grads, steps, &lens)?;
        check_series("params", &self.params, steps, &lens)?;
        if let Some(e) = &self.eval_params {
            check_series("eval_params", e, steps, &lens)?;
        }
        if let Some(groups) = &self.groups {
            if groups.is_empty() {
                return Err("malformed: `groups` is empty".into());
            }
            for (gi, g) in groups.iter().enumerate() {
                if let Some(&p) = g.params.iter().find(|&&p| p >= lens.len()) {
                    return Err(format!(
                        "malformed: groups[{gi}] names parameter {p}, but there are {}",
                        lens.len()
                    ));
                }
            }
        }
        Ok(shapes)
    }
}

impl ScheduleFixture {
    pub fn validate(&self) -> Result<(), String> {
        expect_format(&self.format, &[SCHEDULE_V1])?;
        if self.lrs.is_empty() {
            return Err("malformed: lrs is empty".into());
        }
        match (&self.metrics, self.scheduler == "reducelronplateau") {
            (Some(m), true) if m.len() != self.lrs.len() => Err(format!(
                "malformed: {} metrics for {} learning rates",
                m.len(),
                self.lrs.len()
            )),
            (None, true) => Err("malformed: reducelronplateau needs `metrics`".into()),
            (Some(_), false) => Err(format!(
                "malformed: `metrics` belongs to reducelronplateau, not {}",
                self.scheduler
            )),
            _ => Ok(()),
        }
    }
}

impl LbfgsFixture {
    pub fn validate(&self) -> Result<(), String> {
        expect_format(&self.format, &[LBFGS_V1])?;
        if self.x0.is_empty() {
            return Err("malformed: x0 is empty".into());
        }
        for (what, x) in [
            ("torch.x", &self.torch.x),
            ("scipy_lbfgsb.x", &self.scipy_lbfgsb.x),
            ("minimum.x", &self.minimum.x),
        ] {
            if x.len() != self.x0.len() {
                return Err(format!(
                    "malformed: {what} has {} elements, x0 has {}",
                    x.len(),
                    self.x0.len()
                ));
            }
        }
        Ok(())
    }
}

/// The f32 tolerance (relative, absolute) for an optimiser's fixtures: the
/// fixtures README's 1e-4 and 1e-6, except for SOAP and Shampoo, whose
/// eigenbases are ill-conditioned in float32 (the references themselves,
/// run in float32, move up to 4.4e-3 from their float64 fixtures): 5e-2 and
/// 1e-4, as the README gives for them.
pub fn f32_tolerance(optimizer: &str) -> (f64, f64) {
    match optimizer {
        "soap" | "shampoo" => (5e-2, 1e-4),
        _ => (1e-4, 1e-6),
    }
}

pub fn close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    (got - want).abs() <= abs + rel * want.abs()
}

/// The worst relative error seen, and the first place the tolerance failed.
#[derive(Default)]
pub struct Tally {
    pub worst: f64,
    pub first_failure: Option<String>,
    /// Values equal to the reference bit for bit, and values compared.
    pub identical: usize,
    pub compared: usize,
}

impl Tally {
    pub fn compare<T: Real>(
        &mut self,
        what: &str,
        t: usize,
        got: &[Vec<T>],
        want: &[Vec<f64>],
        rel: f64,
        abs: f64,
    ) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            for (j, (&g, &w)) in g.iter().zip(w).enumerate() {
                let g = g.to_f64();
                self.compared += 1;
                self.identical += usize::from(g.to_bits() == w.to_bits());
                let err = if w != 0.0 {
                    (g - w).abs() / w.abs()
                } else {
                    (g - w).abs()
                };
                // NaN compares false: count it as the worst possible error.
                self.worst = if err.is_nan() {
                    f64::INFINITY
                } else {
                    self.worst.max(err)
                };
                if self.first_failure.is_none() && !close(g, w, rel, abs) {
                    self.first_failure = Some(format!(
                        "step {t}, {what} {i}[{j}]: got {g:e}, reference {w:e}"
                    ));
                }
            }
        }
    }

    pub fn finish(self) -> Result<(f64, usize, usize), String> {
        match self.first_failure {
            None => Ok((self.worst, self.identical, self.compared)),
            Some(f) => Err(format!("{f} (worst relative error {:.1e})", self.worst)),
        }
    }
}
