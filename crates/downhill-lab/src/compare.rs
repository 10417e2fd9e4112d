//! `downhill compare`: several optimisers on the same model, data, seed and
//! initial weights, with curves, tables and a report.

use crate::error::{write_file, LabError};
use crate::figures;
use crate::tune::{tune_lr, TuneResult, TuneSettings};
use downhill::optim::OptimizerSpec;
use downhill_data::DataSplit;
use downhill_train::{EpochRecord, Observer, Summary, TrainConfig, TrainError, Trainer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to compare.
#[derive(Clone, Debug)]
pub struct CompareSettings {
    /// A title for the report (the preset's name, or "compare").
    pub title: String,
    /// Data, model, batch size, epochs, seed, ...: shared by every run (its
    /// `optimizer` field is ignored).
    pub base: TrainConfig,
    /// Optimiser specs, in the order to show them.
    pub optimizers: Vec<String>,
    /// Learning-rate tuning before the comparison, if any.
    pub tune: Option<TuneSettings>,
    /// The training loss to measure "epochs and seconds to reach" against;
    /// by default the highest final loss of the runs (the level all reached).
    pub target_loss: Option<f64>,
    /// Output folder.
    pub out: PathBuf,
    /// Words for the report explaining the experiment (e.g. the preset's
    /// correspondence with the paper).
    pub notes: Vec<String>,
}

/// One optimiser's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// The spec as given.
    pub label: String,
    /// The spec that ran (with the tuned learning rate, if tuned).
    pub spec: String,
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
    /// Epochs to reach the target loss (the record's `epoch`: in a
    /// comparison by steps, the evaluation's number; its `step` says when).
    pub epochs_to_target: Option<usize>,
    /// Seconds (training and evaluation) to reach the target loss.
    pub seconds_to_target: Option<f64>,
    /// Mean seconds per epoch (per evaluation period in a comparison by
    /// steps).
    pub seconds_per_epoch: f64,
}

/// All runs of a comparison, as written to `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompareResult {
    /// Report title.
    pub title: String,
    /// Shared settings.
    pub settings: TrainConfig,
    /// The target training loss used for "to target" columns.
    pub target_loss: Option<f64>,
    /// One entry per optimiser, in order.
    pub runs: Vec<RunResult>,
}

/// A folder name for a spec: its index and its characters made safe.
fn slug(i: usize, label: &str) -> String {
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
    /// Checks every setting and every optimiser spec before anything runs.
    pub fn validate(&self) -> Result<(), LabError> {
        if self.optimizers.is_empty() {
            return Err(LabError::Invalid(
                "--optimizers: give at least one optimizer".into(),
            ));
        }
        for spec in &self.optimizers {
            let cfg = TrainConfig {
                optimizer: spec.clone(),
                ..self.base.clone()
            };
            cfg.validate()
                .map_err(|e| LabError::Invalid(e.to_string()))?;
        }
        if let Some(t) = self.target_loss {
            if !t.is_finite() {
                return Err(LabError::Invalid(format!(
                    "--target-loss: {t} is invalid: expected a finite number"
                )));
            }
        }
        if let Some(t) = &self.tune {
            t.validate()?;
        }
        if self.out.join("summary.json").exists() {
            return Err(LabError::Invalid(format!(
                "{} already holds a comparison; choose another --out folder",
                self.out.display()
            )));
        }
        Ok(())
    }
}

/// Runs the comparison: loads the data once, optionally tunes each
/// optimiser's learning rate, trains each from the same initial weights, and
/// writes `summary.json`, `summary.md`, the pictures and `report.html` into
/// `out`. A run that diverges is reported as such; the others continue.
/// `observer(label)` gives each run its progress display.
pub fn compare(
    settings: &CompareSettings,
    observer: &mut dyn FnMut(&str) -> Box<dyn Observer>,
) -> Result<CompareResult, LabError> {
    settings.validate()?;
    let out = &settings.out;
    std::fs::create_dir_all(out).map_err(|source| LabError::Io {
        path: out.clone(),
        source,
    })?;
    let data = downhill_data::load(
        &settings.base.data,
        &settings
            .base
            .load_options()
            .map_err(|e| LabError::Invalid(e.to_string()))?,
    )?;
    let mut runs = Vec::new();
    for (i, label) in settings.optimizers.iter().enumerate() {
        let (spec, tuning) = match &settings.tune {
            Some(t) => {
                let mut obs = observer(&format!("tune {label}"));
                let r = tune_lr(&settings.base, label, &data, t, &mut *obs)?;
                (r.best_spec.clone(), Some(r))
            }
            None => (label.clone(), None),
        };
        let dir = out.join("runs").join(slug(i, label));
        let mut obs = observer(label);
        let run = train_one(&settings.base, &spec, data.clone(), &dir, &mut *obs)?;
        runs.push(RunResult {
            label: label.clone(),
            spec,
            dir,
            seconds_per_epoch: run.summary.seconds / run.summary.epochs.max(1) as f64,
            history: run.history,
            steps: run.steps,
            summary: run.summary,
            tuning,
            epochs_to_target: None,
            seconds_to_target: None,
        });
    }
    let target = settings.target_loss.or_else(|| default_target(&runs));
    for r in &mut runs {
        if let Some(t) = target {
            let (epochs, seconds) = time_to_target(&r.history, t);
            r.epochs_to_target = epochs;
            r.seconds_to_target = seconds;
        }
    }
    let result = CompareResult {
        title: settings.title.clone(),
        settings: settings.base.clone(),
        target_loss: target,
        runs,
    };
    figures::write_comparison(&result, &settings.notes, out)?;
    write_file(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&result)
            .expect("serialises")
            .as_bytes(),
    )?;
    Ok(result)
}

/// What one finished run left.
struct Finished {
    history: Vec<EpochRecord>,
    steps: Vec<(u64, f64)>,
    summary: Summary,
}

/// Trains one optimiser; a divergence is a result, not an error.
fn train_one(
    base: &TrainConfig,
    spec: &str,
    data: DataSplit,
    dir: &Path,
    obs: &mut dyn Observer,
) -> Result<Finished, LabError> {
    let cfg = TrainConfig {
        optimizer: spec.to_string(),
        ..base.clone()
    };
    let mut t = Trainer::with_data(cfg, data, Some(dir.to_path_buf()))?;
    let summary = match t.run(obs) {
        Ok(s) => s,
        Err(TrainError::Diverged(d)) => {
            obs.message(&format!("{d}"));
            t.summary()
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Finished {
        history: t.history().to_vec(),
        steps: read_steps(dir)?,
        summary,
    })
}

/// The per-step losses a run in `dir` wrote.
fn read_steps(dir: &Path) -> Result<Vec<(u64, f64)>, LabError> {
    let path = dir.join("steps.csv");
    let text = std::fs::read_to_string(&path).map_err(|source| LabError::Io { path, source })?;
    Ok(downhill_train::metrics::parse_steps_csv(&text))
}

/// The highest final training loss among runs that did not diverge.
fn default_target(runs: &[RunResult]) -> Option<f64> {
    runs.iter()
        .filter(|r| r.summary.diverged.is_none())
        .filter_map(|r| r.history.last().map(|h| h.train_loss))
        .filter(|l| l.is_finite())
        .reduce(f64::max)
}

/// The first epoch whose training loss is at most `target`, and the seconds
/// spent up to its end.
pub fn time_to_target(history: &[EpochRecord], target: f64) -> (Option<usize>, Option<f64>) {
    let mut seconds = 0.0;
    for r in history {
        seconds += r.seconds;
        if r.train_loss <= target {
            return (Some(r.epoch), Some(seconds));
        }
    }
    (None, None)
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
