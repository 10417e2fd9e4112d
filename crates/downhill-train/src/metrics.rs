//! What a run records: one line per epoch in `metrics.jsonl`, the training
//! loss of every step in `steps.csv`, and `summary.json` at the end.

use serde::{Deserialize, Serialize};

/// One epoch's numbers: a line of `metrics.jsonl`.
///
/// In a run by steps (`--steps`), a record closes an evaluation period
/// (`--eval-every` steps, or fewer for the last) instead of an epoch: `epoch`
/// counts the periods, `step` is the global step, `data_epochs` says how many
/// passes over the data the steps made, and the training figures cover the
/// period's steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epochs completed (1 for the first); in a run by steps, evaluation
    /// periods completed.
    pub epoch: usize,
    /// Optimiser steps taken so far.
    pub step: u64,
    /// In a run by steps: passes over the training data so far, `step / B`
    /// with `B` batches per epoch (fractional mid-epoch). Absent in a run
    /// by epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_epochs: Option<f64>,
    /// Mean training loss over the epoch's batches, measured as they were
    /// trained (with dropout), plus the L2 penalty.
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches.
    pub train_accuracy: f64,
    /// Validation loss after the epoch (when a validation split exists).
    pub valid_loss: Option<f64>,
    /// Validation accuracy after the epoch.
    pub valid_accuracy: Option<f64>,
    /// Test loss after the epoch (when the data has a test split).
    pub test_loss: Option<f64>,
    /// Test accuracy after the epoch.
    pub test_accuracy: Option<f64>,
    /// Text data: the training loss in bits per character
    /// (`train_loss / ln 2`; the loss itself is in nats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_bits_per_char: Option<f64>,
    /// Text data: the validation loss in bits per character.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_bits_per_char: Option<f64>,
    /// Text data: the held-out text's loss in bits per character.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_bits_per_char: Option<f64>,
    /// Learning rate used in the epoch's last step (first group).
    pub lr: f64,
    /// Wall-clock seconds of the epoch, training and evaluation.
    pub seconds: f64,
    /// Training examples per second of training time (evaluation excluded).
    pub samples_per_sec: f64,
    /// Mean global gradient 2-norm over the epoch's steps (before clipping).
    pub grad_norm: f64,
    /// Prodigy's estimate d at the epoch's end (its adapted step is d·lr);
    /// absent for other optimisers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<f64>,
    /// The exponential moving average's held-out figures (`--ema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<AverageFigures>,
    /// The stochastic weight average's held-out figures (`--swa-start`),
    /// from its first epoch on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa: Option<AverageFigures>,
    /// Data-parallel runs: rank 0's communication over the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<CommFigures>,
    /// SOAP and Shampoo: the preconditioner decompositions that failed so
    /// far (each kept the previous basis or root; see their docs); absent
    /// for other optimisers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decomposition_failures: Option<u64>,
}

/// What a data-parallel epoch spent on communication (as seen by rank 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommFigures {
    /// Ranks in the job.
    pub ranks: usize,
    /// Whether the optimiser state was sharded (ZeRO-1).
    pub sharded: bool,
    /// Seconds in the gradient and parameter collectives (sums included).
    pub seconds: f64,
    /// Bytes rank 0 received in them.
    pub bytes_received: u64,
    /// Collective calls (one per bucket and phase).
    pub calls: u64,
}

/// How a weight average does on the held-out data after an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AverageFigures {
    /// Updates folded into the average so far.
    pub updates: u64,
    /// Validation loss at the average.
    pub valid_loss: Option<f64>,
    /// Validation accuracy at the average.
    pub valid_accuracy: Option<f64>,
    /// Test loss at the average.
    pub test_loss: Option<f64>,
    /// Test accuracy at the average.
    pub test_accuracy: Option<f64>,
}

/// Running totals within an epoch; part of a checkpoint, so that an epoch
/// interrupted and resumed reports the same numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochTotals {
    /// Sum of per-example losses.
    pub loss_sum: f64,
    /// Sum of batch penalties weighted by batch size.
    pub penalty_sum: f64,
    /// Correct predictions.
    pub correct: u64,
    /// Examples seen.
    pub count: u64,
    /// Sum of gradient norms.
    pub grad_norm_sum: f64,
    /// Steps taken.
    pub steps: u64,
    /// Training seconds so far in this epoch (over resumptions).
    pub train_seconds: f64,
}

impl EpochTotals {
    /// Mean loss including the penalty.
    pub fn loss(&self) -> f64 {
        (self.loss_sum + self.penalty_sum) / self.count.max(1) as f64
    }

    /// Accuracy.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count.max(1) as f64
    }
}

/// Facts about the data a run used, recorded in the summary and checked on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The spec.
    pub spec: String,
    /// Training examples.
    pub train: usize,
    /// Validation examples.
    pub valid: usize,
    /// Test examples.
    pub test: usize,
    /// Features per example.
    pub dim: usize,
    /// Classes.
    pub classes: usize,
    /// Whether features are sparse.
    pub sparse: bool,
}

/// How a run ended badly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Epoch (1-based) in which it happened.
    pub epoch: usize,
    /// Step at which it happened (1-based).
    pub step: u64,
    /// What was non-finite.
    pub what: String,
    /// Optimiser name.
    pub optimizer: String,
    /// Learning rate at the time.
    pub lr: f64,
}

/// A number as a person writes it: plain when moderate (`0.05`), with an
/// exponent when very large or small (`1e30`, `2.5e-7`).
pub fn short_number(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-4) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training diverged at step {} (epoch {}): {} with {} at lr {}",
            self.step,
            self.epoch,
            self.what,
            self.optimizer,
            short_number(self.lr)
        )
    }
}

/// `summary.json`: the run at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The optimiser spec.
    pub optimizer: String,
    /// The model spec.
    pub model: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// The data.
    pub data: DataInfo,
    /// Epochs completed.
    pub epochs: usize,
    /// Steps taken.
    pub steps: u64,
    /// Total wall-clock seconds (over resumptions).
    pub seconds: f64,
    /// The last epoch's record.
    pub last: Option<EpochRecord>,
    /// Lowest mean training loss of any epoch.
    pub best_train_loss: Option<f64>,
    /// Highest test accuracy of any epoch, and that epoch.
    pub best_test_accuracy: Option<(f64, usize)>,
    /// Times the learning rate was halved after a divergence.
    pub backoffs: u32,
    /// Set when the run stopped on a divergence.
    pub diverged: Option<Divergence>,
    /// Dense or lazy row-sparse steps, and why (absent from summaries of
    /// older builds, which took dense steps).
    #[serde(default)]
    pub updates: Option<crate::sparse::UpdateChoice>,
}

/// The best values over a run's epochs: (lowest training loss, (highest test
/// accuracy, its epoch)).
pub fn best_of(history: &[EpochRecord]) -> (Option<f64>, Option<(f64, usize)>) {
    let best_train_loss = history
        .iter()
        .map(|r| r.train_loss)
        .filter(|x| x.is_finite())
        .reduce(f64::min);
    let best_test_accuracy = history
        .iter()
        .filter_map(|r| r.test_accuracy.map(|a| (a, r.epoch)))
        .reduce(|a, b| if b.0 > a.0 { b } else { a });
    (best_train_loss, best_test_accuracy)
}

/// The first line of `steps.csv`.
pub const STEPS_CSV_HEADER: &str = "step,loss\n";

/// Rows of `steps.csv`, one per step.
pub fn steps_csv_rows(steps: &[(u64, f64)]) -> String {
    steps
        .iter()
        .map(|(step, loss)| format!("{step},{loss}\n"))
        .collect()
}

/// The rows of a `steps.csv` as (step, loss); the header and lines that are
/// not rows (a line cut short by a crash) are skipped.
pub fn parse_steps_csv(text: &str) -> Vec<(u64, f64)> {
    text.lines()
        .filter_map(|l| {
            let (s, v) = l.split_once(',')?;
            Some((s.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}
