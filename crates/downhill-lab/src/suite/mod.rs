//! Suites: several workloads, each with a fixed step budget and a
//! validation target, scored the way AlgoPerf (MLCommons) scores training
//! algorithms.
//!
//! Every optimiser runs every workload (one comparison per workload, with
//! its seeds). Its time on a workload is the median over seeds of the
//! seconds until the held-out metric first reaches the target (infinite if
//! it never does). Per workload the times are divided by the best; the
//! performance profile `ρ(τ)` is the fraction of workloads on which an
//! optimiser is within a factor `τ` of the best, and its score is the area
//! under `ρ` from 1 to [`TAU_MAX`], divided by `TAU_MAX − 1` (1 = fastest
//! everywhere, 0 = never within 4× of the best, or never reaching targets).
//!
//! Two tuning rulesets, as AlgoPerf's:
//! * [`Ruleset::External`]: each optimiser gets `K` trials from the suite's
//!   search space (its own learning rate times factors spread evenly in log
//!   space over [`SearchSpace::lr_factor`]); on each workload the fastest
//!   trial counts;
//! * [`Ruleset::SelfTuning`]: one configuration, no tuning.

mod score;

pub use score::{profile, profile_area, Standing, SuiteResult, TAU_MAX};

use crate::compare::{self, CompareSettings, Executor, PairedTest, Target, TargetMetric};
use crate::error::LabError;
use crate::saved;
use crate::tune::{round_rate, with_lr};
use downhill::hyper::HyperValue;
use downhill::optim::OptimizerSpec;
use downhill_train::{Observer, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file a suite's settings are kept in, so that `--resume` continues it.
pub const SUITE_FILE: &str = "suite-settings.json";

/// A suite's folder: its settings first, `suite.json` last.
pub(crate) const SUITE: saved::Kind = saved::Kind {
    name: "suite",
    settings: SUITE_FILE,
    done: "suite.json",
};

/// Names of the shipped suites.
pub const SUITES: &[&str] = &["small"];

/// One workload of a suite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Workload {
    /// A short name (its folder).
    pub name: String,
    /// Data, model, batch size, step budget and evaluation period.
    pub base: TrainConfig,
    /// The validation target.
    pub target: Target,
    /// How the target was set, with the command that measured it.
    pub target_note: String,
}

/// Where external tuning searches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Each optimiser's learning rate is multiplied by factors from this
    /// range, spread evenly in log space (the ends included).
    pub lr_factor: (f64, f64),
}

impl SearchSpace {
    /// The `k` factors: `lo·(hi/lo)^(i/(k−1))`, or 1 for a single trial.
    pub fn factors(&self, k: usize) -> Vec<f64> {
        let (lo, hi) = self.lr_factor;
        if k <= 1 {
            return vec![1.0];
        }
        (0..k)
            .map(|i| round_rate(lo * (hi / lo).powf(i as f64 / (k - 1) as f64)))
            .collect()
    }
}

/// A suite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Suite {
    /// Its name.
    pub name: String,
    /// One line about it.
    pub description: String,
    /// The workloads.
    pub workloads: Vec<Workload>,
    /// The optimisers it compares unless told otherwise.
    pub optimizers: Vec<String>,
    /// The external ruleset's search space.
    pub search_space: SearchSpace,
    /// Trials per optimiser under the external ruleset unless told otherwise.
    pub trials: usize,
}

/// How optimisers may be tuned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ruleset {
    /// `K` trials each from the suite's search space; the fastest counts.
    External,
    /// One configuration each, no tuning.
    SelfTuning,
}

impl Ruleset {
    /// Parses `external` or `self`.
    pub fn parse(s: &str) -> Option<Ruleset> {
        match s {
            "external" => Some(Ruleset::External),
            "self" => Some(Ruleset::SelfTuning),
            _ => None,
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Ruleset::External => "external",
            Ruleset::SelfTuning => "self",
        }
    }
}

/// The suite called `name`.
pub fn suite(name: &str) -> Result<Suite, LabError> {
    match name {
        "small" => Ok(small()),
        _ => Err(LabError::Invalid(format!(
            "--suite: unknown suite `{name}`; the suites are: {}",
            SUITES.join(", ")
        ))),
    }
}

fn small() -> Suite {
    let images = |model: &str| TrainConfig {
        data: "builtin:fashion-mnist-small".into(),
        model: model.into(),
        batch_size: 128,
        steps: Some(400),
        eval_every: Some(40),
        seed: 0,
        ..TrainConfig::default()
    };
    // AlgoPerf's rule: the target is what a well-tuned AdamW reaches in
    // the budget. Measured with 7 rates from 1e-4 to 1e-2 (the external
    // ruleset's spacing) on 3 seeds; the best rate's mean final value,
    // rounded to the looser side (docs/book/src/ranking.md has the commands).
    let measured = |what: &str| {
        format!("A tuned AdamW reaches {what} in this budget (best of 7 rates, mean of 3 seeds); the target rounds it to the looser side.")
    };
    Suite {
        name: "small".into(),
        description: "four workloads on the embedded data, minutes on 2 cores: logistic regression, an MLP and a CNN on the Fashion-MNIST subset, a character-level transformer on Shakespeare".into(),
        workloads: vec![
            Workload {
                name: "logreg".into(),
                base: images("logreg"),
                target: Target { metric: TargetMetric::Accuracy, value: 0.83 },
                target_note: measured("83.8% at lr 0.0046"),
            },
            Workload {
                name: "mlp".into(),
                base: images("mlp:256"),
                target: Target { metric: TargetMetric::Accuracy, value: 0.85 },
                target_note: measured("85.1% at lr 0.001"),
            },
            Workload {
                name: "cnn".into(),
                base: images("cnn:8,16:kernel=3:fc=64"),
                target: Target { metric: TargetMetric::Accuracy, value: 0.86 },
                target_note: measured("86.4% at lr 0.0046"),
            },
            Workload {
                name: "transformer".into(),
                base: TrainConfig {
                    data: "builtin:shakespeare".into(),
                    model: "transformer:layers=2,d=64,heads=4,context=64".into(),
                    batch_size: 32,
                    steps: Some(300),
                    eval_every: Some(30),
                    limit_test: Some(512),
                    seed: 0,
                    ..TrainConfig::default()
                },
                target: Target { metric: TargetMetric::Loss, value: 2.3 },
                target_note: measured("a held-out loss of 2.265 nats per character at lr 0.0022"),
            },
        ],
        optimizers: [
            "adamw(lr=0.001,weight_decay=0.01)",
            "sgd(lr=0.05,momentum=0.9,nesterov=true)",
            "lion(lr=0.0001,weight_decay=0.1)",
            "soap",
            "schedulefree_adamw(lr=0.0025,warmup_steps=40)",
        ]
        .map(String::from)
        .to_vec(),
        search_space: SearchSpace { lr_factor: (0.1, 10.0) },
        trials: 3,
    }
}

/// What to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteSettings {
    /// The suite.
    pub suite: Suite,
    /// The optimisers (the suite's unless given).
    pub optimizers: Vec<String>,
    /// The ruleset.
    pub ruleset: Ruleset,
    /// Trials per optimiser under the external ruleset.
    pub trials: usize,
    /// Seeds (every trial runs on every seed).
    pub seeds: Vec<u64>,
    /// The paired test of each workload's verdicts.
    pub test: PairedTest,
    /// Threads per run, if fixed.
    pub threads: Option<usize>,
    /// Output folder.
    pub out: PathBuf,
}

impl SuiteSettings {
    /// The configurations each optimiser runs: itself under the
    /// self-tuning ruleset, its trials under the external one.
    pub fn trials_of(&self, spec: &str) -> Result<Vec<String>, LabError> {
        match self.ruleset {
            Ruleset::SelfTuning => Ok(vec![spec.to_string()]),
            Ruleset::External => {
                let lr = spec_lr(spec)?;
                self.suite
                    .search_space
                    .factors(self.trials)
                    .into_iter()
                    .map(|f| with_lr(spec, round_rate(lr * f)))
                    .collect()
            }
        }
    }

    fn validate(&self) -> Result<(), LabError> {
        if self.optimizers.is_empty() {
            return Err(LabError::Invalid(
                "--optimizers: give at least one optimizer".into(),
            ));
        }
        if self.trials == 0 {
            return Err(LabError::Invalid(
                "--trials: 0 is invalid: expected at least 1".into(),
            ));
        }
        for o in &self.optimizers {
            self.trials_of(o)?;
        }
        Ok(())
    }

    fn workload_settings(&self, w: &Workload) -> Result<CompareSettings, LabError> {
        let mut optimizers = Vec::new();
        for o in &self.optimizers {
            for t in self.trials_of(o)? {
                if !optimizers.contains(&t) {
                    optimizers.push(t);
                }
            }
        }
        Ok(CompareSettings {
            title: format!(
                "{} / {} ({} ruleset)",
                self.suite.name,
                w.name,
                self.ruleset.name()
            ),
            base: TrainConfig {
                threads: self.threads,
                ..w.base.clone()
            },
            optimizers,
            seeds: self.seeds.clone(),
            tune: None,
            target: Some(w.target),
            test: self.test,
            out: self.out.join(&w.name),
            notes: vec![format!(
                "Target: {}. {}",
                w.target.describe(),
                w.target_note
            )],
        })
    }
}

/// The learning rate a spec runs with: its own, or its optimiser's default.
fn spec_lr(spec: &str) -> Result<f64, LabError> {
    let s: OptimizerSpec = spec
        .parse()
        .map_err(|e: downhill::Error| LabError::Invalid(format!("--optimizers: {e}")))?;
    let value = match s.hyper.get("lr") {
        Some(v) => v.clone(),
        None => downhill::optim::registry::describe(&s.name)
            .map_err(|e| LabError::Invalid(format!("--optimizers: {e}")))?
            .into_iter()
            .find(|h| h.name == "lr")
            .map(|h| h.default)
            .ok_or_else(|| {
                LabError::Invalid(format!(
                    "--ruleset external: {spec} has no learning rate to search over"
                ))
            })?,
    };
    match value {
        HyperValue::Number(x) if x > 0.0 => Ok(x),
        _ => Err(LabError::Invalid(format!(
            "--ruleset external: {spec}'s learning rate is not a positive number"
        ))),
    }
}

/// Runs every workload (continuing those already started when `resuming`)
/// and scores the suite. `None` on processes that do not write.
pub fn run_suite(
    settings: &SuiteSettings,
    observer: &(dyn Fn(&str) -> Box<dyn Observer> + Sync),
    exec: &dyn Executor,
    resuming: bool,
) -> Result<Option<SuiteResult>, LabError> {
    settings.validate()?;
    let out = &settings.out;
    if !resuming {
        saved::claim(out, &SUITE, settings, exec)?;
    }
    for w in &settings.suite.workloads {
        let cs = settings.workload_settings(w)?;
        // Every process decides alike, before any of them writes.
        let (done, started) = (
            cs.out.join("summary.json").exists(),
            cs.out.join(compare::SETTINGS_FILE).exists(),
        );
        exec.barrier();
        if done {
            continue;
        }
        if started {
            compare::resume(&cs.out, observer, exec)?;
        } else {
            compare::compare(&cs, observer, exec)?;
        }
    }
    if !exec.writes() {
        return Ok(None);
    }
    let result = score::score(settings)?;
    score::write_outputs(settings, &result)?;
    Ok(Some(result))
}

/// Continues the suite in `out` that was stopped.
pub fn resume_suite(
    out: &Path,
    observer: &(dyn Fn(&str) -> Box<dyn Observer> + Sync),
    exec: &dyn Executor,
) -> Result<Option<SuiteResult>, LabError> {
    let mut s: SuiteSettings = saved::reopen(out, &SUITE)?;
    s.out = out.to_path_buf();
    run_suite(&s, observer, exec, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_trials_spread_the_rate_evenly_in_log_space() {
        let s = SearchSpace {
            lr_factor: (0.1, 10.0),
        };
        assert_eq!(s.factors(3), vec![0.1, 1.0, 10.0]);
        assert_eq!(s.factors(1), vec![1.0]);
        assert_eq!(s.factors(5), vec![0.1, 0.3162, 1.0, 3.162, 10.0]);
        // A spec's own rate, or its optimiser's default.
        assert_eq!(spec_lr("adamw(lr=0.002)").unwrap(), 0.002);
        assert_eq!(spec_lr("adam").unwrap(), 0.001);
    }
}
