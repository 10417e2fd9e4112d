//! Training by steps (`TrainConfig::steps`): which batch a step takes, where
//! an evaluation period ends, and what the loop and the observer are told.
//!
//! A run by steps takes exactly `steps` optimiser steps. Global step `s`
//! (0-based) takes batch `s mod B` of data epoch `s div B`, `B` being the
//! batches per epoch, in the order [`super::epoch_order`] gives that epoch —
//! the batches a run by epochs takes, so `steps = E·B` with `eval_every = B`
//! is the run of `E` epochs, bit for bit. Every `eval_every` steps (and
//! after the last) an evaluation period ends; it plays the part of an epoch
//! for the loop: a record in `metrics.jsonl` (its `epoch` counts periods,
//! its `step` is the global step), a checkpoint, the state a back-off
//! returns to, and one step of a schedule advanced per epoch. The trainer's
//! `epoch` counts periods and its `batch` counts the steps taken in the
//! current period.
//!
//! A full-batch method (lbfgs, newton) makes one iteration per step; a
//! period makes `eval_every` iterations. When it converges before its steps
//! are taken, the run ends there.

use super::build::fill_epoch_order;
use super::Trainer;
use crate::progress::RunInfo;
use crate::TrainError;
use downhill::hyper::HyperValue;
use downhill::lbfgs::Lbfgs;

impl Trainer {
    /// Raises the number of steps [`Trainer::run`] goes to, for a run by
    /// steps resumed with a larger budget (as [`Trainer::set_epochs`] does
    /// for a run by epochs). The evaluation period stays the run's.
    pub fn set_steps(&mut self, steps: u64) -> Result<(), TrainError> {
        if self.cfg.steps.is_none() {
            return Err(TrainError::Invalid(
                "--steps: this run trains by epochs; continue it with --epochs".into(),
            ));
        }
        if steps == 0 || steps > i64::MAX as u64 {
            return Err(TrainError::Invalid(format!(
                "--steps: {steps} is invalid: expected at least 1 and at most {}",
                i64::MAX
            )));
        }
        if steps < self.step {
            return Err(TrainError::Invalid(format!(
                "--steps: {steps} is invalid: the run has taken {} steps already",
                self.step
            )));
        }
        self.cfg.steps = Some(steps);
        Ok(())
    }

    /// Whether the run is complete: its epochs done, or its steps taken (or
    /// its full-batch method converged before them).
    pub(super) fn finished(&self) -> bool {
        match self.cfg.steps {
            None => self.epoch >= self.cfg.epochs,
            Some(n) => self.step >= n || self.stalled,
        }
    }

    /// The step at which the current evaluation period ends: the next
    /// multiple of `eval_every` after the period's start, or the last step.
    fn period_end(&self) -> Option<u64> {
        let n = self.cfg.steps?;
        let k = self.cfg.eval_period()?;
        let start = self.step - self.batch as u64;
        Some((start / k + 1).saturating_mul(k).min(n))
    }

    /// Whether the current epoch (or evaluation period) has taken all its
    /// steps.
    pub(super) fn period_done(&self, batches: usize) -> bool {
        match self.period_end() {
            None => self.batch >= batches,
            Some(end) => self.step >= end,
        }
    }

    /// The next step's batch as (data epoch, batch within it), or `None`
    /// when the current epoch (or period) is complete. `batches` is the
    /// number of batches per data epoch.
    pub(super) fn next_batch(&self, batches: usize) -> Option<(usize, usize)> {
        match self.period_end() {
            None => (self.batch < batches).then_some((self.epoch, self.batch)),
            Some(end) => (self.step < end).then(|| {
                let b = batches as u64;
                ((self.step / b) as usize, (self.step % b) as usize)
            }),
        }
    }

    /// Makes `self.order` the order of data epoch `epoch` (the permutation
    /// [`super::epoch_order`] gives), refilling the buffer in place when the epoch
    /// changes: no allocation once it has grown.
    pub(super) fn load_order(&mut self, epoch: usize) {
        if self.order_epoch == Some(epoch) {
            return;
        }
        fill_epoch_order(self.cfg.seed, epoch, self.info.train, &mut self.order);
        self.order_epoch = Some(epoch);
    }

    /// The passes over the data so far, in a run by steps.
    pub(super) fn data_epochs(&self) -> Option<f64> {
        self.cfg
            .steps
            .map(|_| self.step as f64 / self.batches_per_epoch().max(1) as f64)
    }

    /// The epochs a run goes to, or in a run by steps the evaluation
    /// periods: those done and those to come (for the observer).
    pub(super) fn total_periods(&self) -> usize {
        let (Some(n), Some(k)) = (self.cfg.steps, self.cfg.eval_period()) else {
            return self.cfg.epochs;
        };
        let start = self.step - self.batch as u64;
        if start >= n {
            return self.epoch;
        }
        // Period ends after `start`: the multiples of k before n, and n.
        let rest = (n - 1) / k - start / k + 1;
        self.epoch + rest as usize
    }

    /// What the observer is told before the first step.
    pub(super) fn run_info(&mut self) -> RunInfo {
        RunInfo {
            optimizer: self.cfg.optimizer.clone(),
            model: self.cfg.model.clone(),
            parameters: self.net.params().len(),
            data: self.info.clone(),
            epochs: self.total_periods(),
            batches: self.batches_per_epoch(),
            start_epoch: self.epoch,
            steps: self.cfg.steps,
            eval_every: self.cfg.eval_period(),
            start_step: self.history.last().map_or(0, |r| r.step),
            updates: self.updates.clone(),
            assignment: self.assignment(),
        }
    }

    /// In a run by steps, the iterations a full-batch method makes in this
    /// period: up to the period's end. `None` in a run by epochs.
    pub(super) fn full_batch_budget(&self) -> Option<usize> {
        let end = self.period_end()?;
        Some(usize::try_from(end - self.step).unwrap_or(usize::MAX))
    }

    /// Counts a full-batch period's iterations as its steps; fewer than
    /// `asked` means the method converged (or could go no further), and the
    /// run ends after this period.
    pub(super) fn count_full_batch_steps(&mut self, iterations: usize, asked: usize) {
        self.batch += iterations;
        if iterations < asked {
            self.stalled = true;
        }
    }
}

/// Sets the iterations per call of an L-BFGS (its `max_iter`), keeping the
/// rest of its state; returns the previous value.
pub(super) fn set_lbfgs_max_iter(l: &mut Lbfgs<f32>, max_iter: usize) -> Result<usize, TrainError> {
    let before = l.config().max_iter;
    if before != max_iter {
        let mut state = l.save_state();
        state.manifest.groups[0]
            .hyper
            .insert("max_iter".into(), HyperValue::Number(max_iter as f64));
        l.load_state(&state)?;
    }
    Ok(before)
}
