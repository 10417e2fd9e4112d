//! Learning-rate tuning on a short budget: a log grid of rates, each trained
//! briefly on part of the training data and scored on a held-out part (never
//! on the test set), as the Adam paper tuned every method on a dense grid.

use crate::error::LabError;
use downhill::hyper::HyperValue;
use downhill::optim::OptimizerSpec;
use downhill::Rng;
use downhill_data::DataSplit;
use downhill_train::{Observer, TrainConfig, TrainError, Trainer};
use serde::{Deserialize, Serialize};

/// How to tune.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneSettings {
    /// Learning rates to try.
    pub grid: Vec<f64>,
    /// Epochs per trial (when trials run by epochs; see `steps`).
    pub epochs: usize,
    /// Steps per trial: trials run by steps. `None`: trials of a comparison
    /// by steps run its `steps`, and of one by epochs, `epochs` epochs.
    #[serde(default)]
    pub steps: Option<u64>,
    /// Training examples used for tuning (at most; the rest is not used).
    pub limit_train: usize,
    /// Fraction of those held out to score each trial.
    pub holdout: f64,
}

impl Default for TuneSettings {
    fn default() -> Self {
        TuneSettings {
            grid: default_grid(),
            epochs: 2,
            steps: None,
            limit_train: 10_000,
            holdout: 0.2,
        }
    }
}

/// Half-decades from 10⁻⁴ to 1.
pub fn default_grid() -> Vec<f64> {
    vec![1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
}

impl TuneSettings {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), LabError> {
        if self.grid.is_empty() || self.grid.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
            return Err(LabError::Invalid(format!(
                "--tune-grid: {:?} is invalid: expected learning rates > 0",
                self.grid
            )));
        }
        if self.steps == Some(0) {
            return Err(LabError::Invalid(
                "--tune-steps: 0 is invalid: expected at least 1".into(),
            ));
        }
        if self.epochs == 0 {
            return Err(LabError::Invalid(
                "--tune-epochs: 0 is invalid: expected at least 1".into(),
            ));
        }
        if self.limit_train < 10 {
            return Err(LabError::Invalid(format!(
                "--tune-limit: {} is invalid: expected at least 10 examples",
                self.limit_train
            )));
        }
        if !(self.holdout > 0.0 && self.holdout < 1.0) {
            return Err(LabError::Invalid(format!(
                "tune holdout {} is invalid: expected (0, 1)",
                self.holdout
            )));
        }
        Ok(())
    }
}

/// One point of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunePoint {
    /// The learning rate.
    pub lr: f64,
    /// Held-out loss after the trial (None if it diverged).
    pub holdout_loss: Option<f64>,
}

/// The grid and its winner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneResult {
    /// Every rate tried, with its score.
    pub grid: Vec<TunePoint>,
    /// The rate with the lowest held-out loss.
    pub best_lr: f64,
    /// The spec with that rate.
    pub best_spec: String,
}

/// `x` rounded to four significant digits: the decimal a person would type.
/// Rates computed in binary pick up noise (0.05 × 3 = 0.15000000000000002);
/// going through decimal text gives the f64 nearest to 0.15, which prints as
/// 0.15.
pub fn round_rate(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// Significant digits in `x`'s shortest decimal form (`to_string`):
/// 2 for 0.15, 1 for 0.0003, 17 for 0.15000000000000002.
#[cfg(test)]
pub(crate) fn significant_digits(x: f64) -> usize {
    let s = x.abs().to_string();
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1)
}

/// The spec with its `lr` replaced.
pub fn with_lr(spec: &str, lr: f64) -> Result<String, LabError> {
    let mut s: OptimizerSpec = spec
        .parse()
        .map_err(|e: downhill::Error| LabError::Invalid(format!("--optimizers: {e}")))?;
    s.hyper.insert("lr".into(), HyperValue::Number(lr));
    Ok(s.to_string())
}

/// The tuning data: a seeded sample of the training set, split into a part to
/// train on and a part to score on.
pub fn tuning_split(data: &DataSplit, t: &TuneSettings, seed: u64) -> Result<DataSplit, LabError> {
    let n = data.train.len();
    let mut rows: Vec<usize> = (0..n).collect();
    Rng::new(seed ^ 0x5455_4e45).shuffle(&mut rows);
    rows.truncate(t.limit_train.min(n));
    let held = ((rows.len() as f64 * t.holdout).round() as usize)
        .clamp(1, rows.len().saturating_sub(1).max(1));
    if rows.len() < 2 {
        return Err(LabError::Invalid(
            "tuning needs at least 2 training examples".into(),
        ));
    }
    let (fit, score) = rows.split_at(rows.len() - held);
    Ok(DataSplit {
        train: data.train.subset(fit)?,
        valid: Some(data.train.subset(score)?),
        test: None,
    })
}

/// The settings of one trial: `base` with the rate, the trial's budget
/// (steps when the trials or the comparison run by steps, evaluated once at
/// the end; epochs otherwise), no validation split and no checkpoints.
pub fn trial_config(
    base: &TrainConfig,
    spec: &str,
    lr: f64,
    t: &TuneSettings,
) -> Result<TrainConfig, LabError> {
    let steps = t.steps.or(base.steps);
    Ok(TrainConfig {
        optimizer: with_lr(spec, lr)?,
        epochs: t.epochs,
        steps,
        eval_every: steps,
        valid_fraction: None,
        checkpoint_every: None,
        ..base.clone()
    })
}

/// Tries every rate of the grid for `spec` and returns the best.
pub fn tune_lr(
    base: &TrainConfig,
    spec: &str,
    data: &DataSplit,
    t: &TuneSettings,
    obs: &mut dyn Observer,
) -> Result<TuneResult, LabError> {
    t.validate()?;
    let split = tuning_split(data, t, base.seed)?;
    let mut grid = Vec::with_capacity(t.grid.len());
    for &lr in &t.grid {
        let cfg = trial_config(base, spec, lr, t)?;
        let mut trainer = Trainer::with_data(cfg, split.clone(), None)?;
        let score = match trainer.run(&mut downhill_train::Silent) {
            Ok(s) => s.last.and_then(|r| r.valid_loss).filter(|l| l.is_finite()),
            Err(TrainError::Diverged(_)) => None,
            Err(e) => return Err(e.into()),
        };
        obs.message(&format!(
            "lr {lr}: held-out loss {}",
            score.map_or("diverged".to_string(), |s| format!("{s:.4}"))
        ));
        grid.push(TunePoint {
            lr,
            holdout_loss: score,
        });
    }
    let best = grid
        .iter()
        .filter_map(|p| p.holdout_loss.map(|l| (p.lr, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| {
            LabError::Invalid(format!("{spec}: every learning rate of the grid diverged"))
        })?;
    Ok(TuneResult {
        grid,
        best_lr: best.0,
        best_spec: with_lr(spec, best.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits_of_shortest_decimals() {
        assert_eq!(significant_digits(0.15), 2);
        assert_eq!(significant_digits(0.0003), 1);
        assert_eq!(significant_digits(1.0), 1);
        assert_eq!(significant_digits(0.15000000000000002), 17);
        assert_eq!(significant_digits(0.30000000000000004), 17);
    }

    #[test]
    fn rounded_rates_print_as_typed() {
        assert_eq!(round_rate(0.05 * 3.0).to_string(), "0.15");
        assert_eq!(round_rate(0.1 * 3.0).to_string(), "0.3");
        assert_eq!(round_rate(0.001 * 0.3).to_string(), "0.0003");
        assert_eq!(round_rate(0.123456), 0.1235);
        assert_eq!(round_rate(0.0), 0.0);
        assert!(round_rate(f64::NAN).is_nan());
        // Every grid value, and a spec built from it, reads as typed.
        for lr in default_grid() {
            assert!(significant_digits(lr) <= 4, "{lr}");
            let spec = with_lr("adam", lr).unwrap();
            assert_eq!(spec, format!("adam(lr={lr})"));
        }
        assert_eq!(
            default_grid()
                .iter()
                .map(f64::to_string)
                .collect::<Vec<_>>(),
            ["0.0001", "0.0003", "0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1"]
        );
    }
}
