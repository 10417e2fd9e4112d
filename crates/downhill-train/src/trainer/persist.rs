//! What a run leaves on disk and picks up again: checkpoints, resumption,
//! `metrics.jsonl` and `steps.csv`, and the snapshot kept for a back-off.

use super::{append, io_err, Snapshot, TrainError, Trainer};
use crate::checkpoint::{self, TrainerState, CHECKPOINT_FORMAT};
use crate::config::OnDivergence;
use crate::metrics::{parse_steps_csv, steps_csv_rows, STEPS_CSV_HEADER};
use downhill::average::WeightAverage;
use downhill::state::{write_atomic, SavedState};
use downhill::Rng;
use std::path::PathBuf;

impl Trainer {
    /// Continues the run in `out` from its newest valid checkpoint, with its
    /// saved settings; `epochs` may raise the number of epochs of a run by
    /// epochs (a run by steps raises its steps with [`Trainer::set_steps`]
    /// after this, and refuses `epochs`). The result is
    /// bit-identical to a run that was never interrupted. Messages about
    /// skipped (corrupt) checkpoints are returned for the user.
    pub fn resume(out: PathBuf, epochs: Option<usize>) -> Result<(Self, Vec<String>), TrainError> {
        Self::resume_with(out, epochs, super::Par::default())
    }

    /// Like [`Trainer::resume`], as one replica of a data-parallel job: every
    /// rank reads the checkpoint (the folder must be visible to all), rank 0
    /// alone writes. A checkpoint of any number of ranks, sharded or not, or
    /// of one process, resumes on any number of ranks.
    #[cfg(feature = "mpi")]
    pub fn resume_parallel(
        out: PathBuf,
        epochs: Option<usize>,
        par: crate::distributed::Parallel,
    ) -> Result<(Self, Vec<String>), TrainError> {
        Self::resume_with(out, epochs, Some(par))
    }

    fn resume_with(
        out: PathBuf,
        epochs: Option<usize>,
        par: super::Par,
    ) -> Result<(Self, Vec<String>), TrainError> {
        let (_, state, _) = checkpoint::latest_trainer_state(&out)?;
        let mut cfg = state.config.clone();
        if let Some(e) = epochs {
            if cfg.steps.is_some() {
                return Err(TrainError::Invalid(format!(
                    "--epochs: the run in {} trains by steps; raise --steps instead",
                    out.display()
                )));
            }
            cfg.epochs = e;
        }
        cfg.validate()?;
        let data = downhill_data::load(&cfg.data, &cfg.load_options()?)?;
        #[cfg(feature = "mpi")]
        let writes = par.as_ref().is_none_or(|p| p.world.is_root());
        #[cfg(not(feature = "mpi"))]
        let writes = true;
        let mut t = Self::build(cfg, data, writes.then(|| out.clone()), par)?;
        let (dir, ckpt, warnings) = checkpoint::latest(&out, t.net.tensors())?;
        if ckpt.trainer.data != t.info {
            return Err(TrainError::Invalid(format!(
                "{}: the data differs from the run's (saved {:?}, now {:?})",
                dir.display(),
                ckpt.trainer.data,
                t.info
            )));
        }
        #[cfg(feature = "mpi")]
        let optimizer = t.local_optimizer_state(&ckpt.optimizer)?;
        #[cfg(not(feature = "mpi"))]
        let optimizer = ckpt.optimizer;
        t.restore(&ckpt.params, &optimizer, &ckpt.trainer)?;
        t.restore_averages(&ckpt.averages, &ckpt.trainer)?;
        let mut warnings = warnings;
        warnings.extend(t.rewrite_metrics()?);
        Ok((t, warnings))
    }

    /// The weight averages of a checkpoint, for the averages this run keeps.
    pub(super) fn restore_averages(
        &mut self,
        saved: &std::collections::BTreeMap<String, Vec<f32>>,
        s: &TrainerState,
    ) -> Result<(), TrainError> {
        for (name, avg) in [("ema", &mut self.ema), ("swa", &mut self.swa)] {
            let Some(avg) = avg else { continue };
            let count = s.average_updates.get(name).copied().unwrap_or(0);
            *avg = match saved.get(name) {
                Some(w) => WeightAverage::restore(avg.kind(), w.clone(), count)?,
                None if count == 0 => WeightAverage::new(avg.kind(), avg.weights().len())?,
                None => {
                    return Err(TrainError::Invalid(format!(
                        "checkpoint: {count} {name} updates but no {name}.safetensors"
                    )))
                }
            };
        }
        Ok(())
    }

    pub(super) fn restore(
        &mut self,
        params: &[f32],
        optimizer: &SavedState,
        s: &TrainerState,
    ) -> Result<(), TrainError> {
        self.net.params_mut().copy_from_slice(params);
        let total = self.net.params().len();
        self.method.load_state(optimizer, total)?;
        self.sched = s.scheduler.clone();
        self.rng = Rng::from_state(s.rng)
            .ok_or_else(|| TrainError::Invalid("checkpoint: invalid RNG state".into()))?;
        self.epoch = s.epoch;
        self.batch = s.batch;
        self.step = s.step;
        self.totals = s.totals.clone();
        self.history = s.history.clone();
        // (Checkpoints of older builds hold every step; the file has those
        // up to the last epoch's end.)
        let done = s.history.last().map_or(0, |r| r.step);
        self.epoch_steps = s
            .step_losses
            .iter()
            .filter(|(step, _)| *step > done)
            .copied()
            .collect();
        self.backoffs = s.backoffs;
        self.elapsed = s.elapsed_seconds;
        Ok(())
    }

    pub(super) fn state(&self) -> TrainerState {
        TrainerState {
            format: CHECKPOINT_FORMAT.into(),
            config: self.cfg.clone(),
            data: self.info.clone(),
            epoch: self.epoch,
            batch: self.batch,
            step: self.step,
            rng: self.rng.state(),
            scheduler: self.sched.clone(),
            totals: self.totals.clone(),
            history: self.history.clone(),
            step_losses: self.epoch_steps.clone(),
            backoffs: self.backoffs,
            elapsed_seconds: self.elapsed,
            average_updates: [("ema", &self.ema), ("swa", &self.swa)]
                .into_iter()
                .filter_map(|(n, a)| a.as_ref().map(|a| (n.to_string(), a.count())))
                .collect(),
        }
    }

    pub(super) fn optimizer_state(&self) -> Result<SavedState, TrainError> {
        Ok(self.method.save_state(self.net.params().len())?)
    }

    pub(super) fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        if let Some(out) = &self.out {
            let path = out.join(name);
            write_atomic(&path, bytes).map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Makes `metrics.jsonl` and `steps.csv` say what the restored state
    /// says: the completed epochs, and the steps up to the last one's end
    /// (the files may hold rows of an epoch that a kill or a back-off undid).
    /// Returns a warning when `steps.csv` lacks steps it should have.
    pub(super) fn rewrite_metrics(&mut self) -> Result<Option<String>, TrainError> {
        let Some(out) = &self.out else {
            return Ok(None);
        };
        let mut text = String::new();
        for r in &self.history {
            text += &serde_json::to_string(r).expect("records serialise");
            text.push('\n');
        }
        self.write_file("metrics.jsonl", text.as_bytes())?;
        let path = out.join("steps.csv");
        let done = self.history.last().map_or(0, |r| r.step);
        let rows = match std::fs::read_to_string(&path) {
            Ok(s) => parse_steps_csv(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let kept: Vec<(u64, f64)> = rows.into_iter().filter(|(s, _)| *s <= done).collect();
        let warning = (done > 0 && kept.last().map(|r| r.0) != Some(done)).then(|| {
            format!(
                "{}: the losses of the steps up to {done} are missing or incomplete; the file continues from here",
                path.display()
            )
        });
        let csv = String::from(STEPS_CSV_HEADER) + &steps_csv_rows(&kept);
        self.write_file("steps.csv", csv.as_bytes())?;
        Ok(warning)
    }

    /// Appends the current epoch's step losses to `steps.csv`.
    pub(super) fn flush_epoch_steps(&mut self) -> Result<(), TrainError> {
        if let Some(out) = &self.out {
            let csv = out.join("steps.csv");
            let fresh = std::fs::metadata(&csv).map_or(true, |m| m.len() == 0);
            let header = if fresh { STEPS_CSV_HEADER } else { "" };
            let text = String::from(header) + &steps_csv_rows(&self.epoch_steps);
            append(&csv, text.as_bytes()).map_err(io_err(&csv))?;
        }
        self.epoch_steps.clear();
        Ok(())
    }

    pub(super) fn checkpoint(&self) -> Result<(), TrainError> {
        // Sharded, every rank takes part in gathering the state.
        #[cfg(feature = "mpi")]
        let optimizer = self.gathered_optimizer_state()?;
        #[cfg(not(feature = "mpi"))]
        let optimizer = match self.out {
            Some(_) => Some(self.optimizer_state()?),
            None => None,
        };
        if let (Some(out), Some(optimizer)) = (&self.out, optimizer) {
            let averages: Vec<(&str, &[f32])> = [("ema", &self.ema), ("swa", &self.swa)]
                .into_iter()
                .filter_map(|(n, a)| a.as_ref().map(|a| (n, a.weights())))
                .collect();
            checkpoint::write(
                out,
                self.net.params(),
                self.at_eval_point.then_some(self.eval_buf.as_slice()),
                &averages,
                self.net.tensors(),
                &optimizer,
                &self.state(),
                self.cfg.keep_checkpoints,
            )?;
        }
        Ok(())
    }

    pub(super) fn snapshot(&mut self) -> Result<(), TrainError> {
        if self.cfg.on_divergence == OnDivergence::Backoff {
            self.last_good = Some(Snapshot {
                params: self.net.params().to_vec(),
                optimizer: self.optimizer_state()?,
                state: self.state(),
                ema: self.ema.clone(),
                swa: self.swa.clone(),
            });
        }
        Ok(())
    }
}
