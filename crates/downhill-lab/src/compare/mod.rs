//! `downhill compare`: several optimisers on the same model, data and
//! initial weights, over one or more seeds, with curves, a ranking with
//! intervals, paired verdicts, tables and a report.
//!
//! Within a seed every optimiser starts from the same weights and sees the
//! same batches (a paired design); across seeds everything that the seed
//! decides changes. The runs are independent tasks, so they can run several
//! at a time ([`Local`]) or spread over the ranks of an MPI job (the CLI's
//! `mpi` feature); each run's bits do not depend on which process or how
//! many threads ran it. A killed comparison resumes ([`resume`]): finished
//! runs are kept and unfinished ones continue from their checkpoints.

mod ranking;
mod runs;

pub use ranking::{
    median, median_interval, rank, time_to_target, verdicts, PairedTest, RankEntry, RankMetric,
    Reached, Target, TargetMetric, TargetTimes, Verdict, ALPHA,
};
pub use runs::{run_indices, Executor, Local};

use crate::error::{write_json, LabError};
use crate::figures;
use crate::saved;
use crate::tune::{TuneResult, TuneSettings};
use downhill::optim::OptimizerSpec;
use downhill_train::{EpochRecord, Observer, Summary, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file a comparison's settings are kept in, so that `--resume` can
/// continue it.
pub const SETTINGS_FILE: &str = "comparison.json";

/// A comparison's folder: its settings first, `summary.json` last.
const COMPARISON: saved::Kind = saved::Kind {
    name: "comparison",
    settings: SETTINGS_FILE,
    done: "summary.json",
};

/// What to compare.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareSettings {
    /// A title for the report (the preset's name, or "compare").
    pub title: String,
    /// Data, model, batch size, epochs, ...: shared by every run (its
    /// `optimizer` field is ignored, and its `seed` is replaced by each of
    /// `seeds`).
    pub base: TrainConfig,
    /// Optimiser specs, in the order to show them.
    pub optimizers: Vec<String>,
    /// The seeds: every optimiser runs once per seed. Empty means
    /// `base.seed` alone.
    pub seeds: Vec<u64>,
    /// Learning-rate tuning before the comparison, if any (on the first
    /// seed; the tuned rate then runs on every seed).
    pub tune: Option<TuneSettings>,
    /// The level every run is timed to reach. `None`: the highest final
    /// training loss of the runs (the level every run reached).
    pub target: Option<Target>,
    /// The paired test of the verdicts.
    pub test: PairedTest,
    /// Output folder.
    pub out: PathBuf,
    /// Words for the report explaining the experiment (e.g. the preset's
    /// correspondence with the paper).
    pub notes: Vec<String>,
}

/// One optimiser's run on one seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// The spec as given.
    pub label: String,
    /// The spec that ran (with the tuned learning rate, if tuned).
    pub spec: String,
    /// The seed of its initial weights, batch order and dropout.
    pub seed: u64,
    /// Folder of its metrics and checkpoints.
    pub dir: PathBuf,
    /// Epoch records.
    pub history: Vec<EpochRecord>,
    /// Training loss after every step, as (step, loss).
    pub steps: Vec<(u64, f64)>,
    /// The trainer's summary.
    pub summary: Summary,
    /// The learning-rate grid, when tuned.
    pub tuning: Option<TuneResult>,
    /// When it first reached the comparison's target (`None`: never).
    pub reached: Option<Reached>,
    /// Mean seconds per epoch (per evaluation period in a comparison by
    /// steps).
    pub seconds_per_epoch: f64,
}

/// All runs of a comparison, as written to `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CompareResult {
    /// Report title.
    pub title: String,
    /// Shared settings (its `seed` is the first of `seeds`).
    pub settings: TrainConfig,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// What the ranking ranks by.
    pub metric: RankMetric,
    /// The level the runs were timed to; `null` if no run finished.
    pub target: Option<Target>,
    /// Whether `target` was given (`--target-*`) or is the default level.
    pub target_given: bool,
    /// The optimisers, best first, with per-seed values, mean and interval.
    pub ranking: Vec<RankEntry>,
    /// Each optimiser against the best.
    pub verdicts: Vec<Verdict>,
    /// Every run, optimiser by optimiser, seed by seed.
    pub runs: Vec<RunResult>,
}

impl CompareResult {
    /// The runs of one optimiser, in seed order.
    pub fn runs_of<'a>(&'a self, label: &'a str) -> impl Iterator<Item = &'a RunResult> + 'a {
        self.runs.iter().filter(move |r| r.label == label)
    }

    /// The optimisers in the order given.
    pub fn labels(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.runs {
            if !out.contains(&r.label.as_str()) {
                out.push(&r.label);
            }
        }
        out
    }
}

/// A folder name for a spec: its index and its characters made safe.
pub(crate) fn slug(i: usize, label: &str) -> String {
    let mut s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    format!("{}-{}", i + 1, s.trim_matches('-'))
}

/// Splits a list of optimiser specs on commas outside parentheses.
pub fn split_specs(list: &str) -> Vec<String> {
    let (mut out, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for ch in list.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

impl CompareSettings {
    /// The seeds the runs use: `seeds`, or the base seed alone.
    pub fn seed_list(&self) -> Vec<u64> {
        if self.seeds.is_empty() {
            vec![self.base.seed]
        } else {
            self.seeds.clone()
        }
    }

    /// Checks every setting and every optimiser spec before anything runs.
    pub fn validate(&self) -> Result<(), LabError> {
        if self.optimizers.is_empty() {
            return Err(LabError::Invalid(
                "--optimizers: give at least one optimizer".into(),
            ));
        }
        for (i, spec) in self.optimizers.iter().enumerate() {
            if self.optimizers[..i].contains(spec) {
                return Err(LabError::Invalid(format!(
                    "--optimizers: {spec} is listed twice"
                )));
            }
            let cfg = TrainConfig {
                optimizer: spec.clone(),
                ..self.base.clone()
            };
            cfg.validate()
                .map_err(|e| LabError::Invalid(e.to_string()))?;
        }
        let seeds = self.seed_list();
        for (i, s) in seeds.iter().enumerate() {
            if seeds[..i].contains(s) {
                return Err(LabError::Invalid(format!(
                    "--seeds: seed {s} is listed twice"
                )));
            }
        }
        if let Some(t) = &self.target {
            let ok = t.value.is_finite()
                && match t.metric {
                    TargetMetric::Accuracy => (0.0..=1.0).contains(&t.value),
                    _ => t.value >= 0.0,
                };
            if !ok {
                let (flag, want) = match t.metric {
                    TargetMetric::Accuracy => ("--target-accuracy", "a fraction in [0, 1]"),
                    _ => ("--target-loss", "a finite loss ≥ 0"),
                };
                return Err(LabError::Invalid(format!(
                    "{flag}: {} is invalid: expected {want}",
                    t.value
                )));
            }
        }
        if let Some(t) = &self.tune {
            t.validate()?;
        }
        Ok(())
    }

    /// The folder of one optimiser's run on one seed: `runs/<n>-<spec>`,
    /// with `/seed-<s>` below it when there are several seeds.
    pub fn run_dir(&self, optimizer: usize, seed: u64) -> PathBuf {
        let dir = self
            .out
            .join("runs")
            .join(slug(optimizer, &self.optimizers[optimizer]));
        if self.seed_list().len() > 1 {
            dir.join(format!("seed-{seed}"))
        } else {
            dir
        }
    }
}

/// Runs the comparison: loads the data once, optionally tunes each
/// optimiser's learning rate, trains each on every seed (several at a time
/// or on several ranks, as `exec` decides), ranks them and writes
/// `summary.json`, `summary.md`, the pictures and `report.html` into `out`.
/// A run that diverges is reported as such; the others continue.
/// `observer(label)` gives each run its progress display.
pub fn compare(
    settings: &CompareSettings,
    observer: &(dyn Fn(&str) -> Box<dyn Observer> + Sync),
    exec: &dyn Executor,
) -> Result<Option<CompareResult>, LabError> {
    settings.validate()?;
    saved::claim(&settings.out, &COMPARISON, settings, exec)?;
    runs::run_comparison(settings, observer, exec)
}

/// Continues the comparison in `out` that was stopped (killed, or a
/// machine that went down): its settings come from `comparison.json`;
/// finished runs are kept, unfinished ones continue from their latest
/// checkpoint, runs not started start. The result equals the uninterrupted
/// comparison's, bit for bit, up to the clock readings.
pub fn resume(
    out: &Path,
    observer: &(dyn Fn(&str) -> Box<dyn Observer> + Sync),
    exec: &dyn Executor,
) -> Result<Option<CompareResult>, LabError> {
    let mut settings: CompareSettings = saved::reopen(out, &COMPARISON)?;
    // The folder may have moved since.
    settings.out = out.to_path_buf();
    settings.validate()?;
    runs::run_comparison(&settings, observer, exec)
}

/// Ranks finished runs and writes the outputs (on the writing process).
pub(crate) fn finish(
    settings: &CompareSettings,
    mut runs: Vec<RunResult>,
    text: bool,
) -> Result<CompareResult, LabError> {
    let target = settings.target.or_else(|| {
        default_target(&runs).map(|value| Target {
            metric: TargetMetric::TrainLoss,
            value,
        })
    });
    for r in &mut runs {
        r.reached = target.and_then(|t| time_to_target(&r.history, &t));
    }
    let seeds = settings.seed_list();
    let metric = RankMetric::for_runs(&runs, text);
    let ranking = rank(
        &runs,
        &settings.optimizers,
        &seeds,
        metric,
        target.is_some(),
    );
    // One seed has nothing to pair.
    let verdicts = if seeds.len() > 1 {
        verdicts(&ranking, settings.test)
    } else {
        Vec::new()
    };
    let result = CompareResult {
        title: settings.title.clone(),
        settings: TrainConfig {
            seed: seeds[0],
            ..settings.base.clone()
        },
        seeds,
        metric,
        target,
        target_given: settings.target.is_some(),
        ranking,
        verdicts,
        runs,
    };
    let out = &settings.out;
    figures::write_comparison(&result, &settings.notes, out)?;
    write_json(&out.join(COMPARISON.done), &result)?;
    Ok(result)
}

/// The highest final training loss among runs that did not diverge.
fn default_target(runs: &[RunResult]) -> Option<f64> {
    runs.iter()
        .filter(|r| r.summary.diverged.is_none())
        .filter_map(|r| r.history.last().map(|h| h.train_loss))
        .filter(|l| l.is_finite())
        .reduce(f64::max)
}

/// Checks a spec list parses, naming the bad one.
pub fn parse_specs(list: &str) -> Result<Vec<String>, LabError> {
    let specs = split_specs(list);
    for s in &specs {
        s.parse::<OptimizerSpec>()
            .map_err(|e| LabError::Invalid(format!("--optimizers: {e}")))?;
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_slugs() {
        assert_eq!(
            split_specs("sgd(lr=0.1,momentum=0.9), adam ,adagrad(lr=0.1)"),
            vec!["sgd(lr=0.1,momentum=0.9)", "adam", "adagrad(lr=0.1)"]
        );
        assert_eq!(
            slug(0, "sgd(lr=0.1,momentum=0.9)"),
            "1-sgd-lr-0.1-momentum-0.9"
        );
        assert!(parse_specs("adam,sgd(lr=").is_err());
    }
}
