//! Reduce the learning rate when a metric stops improving.

use crate::hyper::check;
use serde::{Deserialize, Serialize};

crate::hyper_enum! {
    /// Whether the watched metric should go down or up.
    pub enum Mode { /// Lower is better (a loss).
    Min = "min", /// Higher is better (an accuracy).
    Max = "max" }
}

crate::hyper_enum! {
    /// How [`ReduceLROnPlateau::threshold`] is measured.
    pub enum ThresholdMode { /// Relative to the best value.
    Rel = "rel", /// In the metric's own units.
    Abs = "abs" }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.ReduceLROnPlateau`, with torch's exact
    /// semantics: after more than `patience` steps without improvement by more
    /// than `threshold` (relative or absolute), multiply each group's rate by
    /// `factor` (not below `min_lr`; changes smaller than `eps` are ignored),
    /// then wait `cooldown` steps before counting again.
    ///
    /// With `patience = 0` and an absolute threshold this is the classic rule
    /// "reduce when the objective's change between epochs falls below a
    /// threshold".
    pub struct ReduceLROnPlateau: "reducelronplateau" {
        /// `min` for a loss, `max` for an accuracy.
        mode: Mode = Mode::Min,
        /// Multiplier applied on a plateau, in [0, 1).
        factor: f64 = 0.1; check check::unit_open,
        /// Steps without improvement tolerated before reducing.
        patience: u64 = 10,
        /// Improvement that counts.
        threshold: f64 = 1e-4; check check::non_negative,
        /// Whether `threshold` is relative (`rel`) or absolute (`abs`).
        threshold_mode: ThresholdMode = ThresholdMode::Rel,
        /// Steps to wait after a reduction.
        cooldown: u64 = 0,
        /// Lower bound of the learning rate.
        min_lr: f64 = 0.0; check check::non_negative,
        /// Smallest change of learning rate that is applied.
        eps: f64 = 1e-8; check check::non_negative,
    }
}

/// The counters of a [`ReduceLROnPlateau`] (serialisable with the schedule).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// Best metric so far (`None` before the first step).
    pub best: Option<f64>,
    /// Consecutive steps without improvement.
    pub num_bad_epochs: u64,
    /// Steps left in the cooldown.
    pub cooldown_counter: u64,
}

impl ReduceLROnPlateau {
    fn is_better(&self, a: f64, best: Option<f64>) -> bool {
        let Some(best) = best else { return !a.is_nan() };
        match (self.mode, self.threshold_mode) {
            (Mode::Min, ThresholdMode::Rel) => a < best * (1.0 - self.threshold),
            (Mode::Min, ThresholdMode::Abs) => a < best - self.threshold,
            (Mode::Max, ThresholdMode::Rel) => a > best * (self.threshold + 1.0),
            (Mode::Max, ThresholdMode::Abs) => a > best + self.threshold,
        }
    }

    /// Feeds one metric; returns whether the rates must be reduced now.
    pub fn observe(&self, state: &mut PlateauState, metric: f64) -> bool {
        if self.is_better(metric, state.best) {
            state.best = Some(metric);
            state.num_bad_epochs = 0;
        } else {
            state.num_bad_epochs += 1;
        }
        if state.cooldown_counter > 0 {
            state.cooldown_counter -= 1;
            state.num_bad_epochs = 0;
        }
        if state.num_bad_epochs > self.patience {
            state.cooldown_counter = self.cooldown;
            state.num_bad_epochs = 0;
            return true;
        }
        false
    }

    /// The reduced rate, or `None` when the change would be below `eps`.
    pub fn reduce(&self, lr: f64) -> Option<f64> {
        let new = (lr * self.factor).max(self.min_lr);
        (lr - new > self.eps).then_some(new)
    }
}
