//! Where a model is evaluated: at the optimiser's evaluation point, at a
//! weight average, or at the parameters.

use super::{Trainer, Which};
use crate::method::Method;
use crate::metrics::AverageFigures;
use crate::TrainError;
use downhill_data::Dataset;

impl Trainer {
    /// Held-out figures of a weight average (EMA or SWA), evaluated by
    /// swapping it in and the weights back; `None` without the average or
    /// before its first update.
    pub(super) fn evaluate_average(
        &mut self,
        which: Which,
    ) -> Result<Option<AverageFigures>, TrainError> {
        let avg = match which {
            Which::Ema => &mut self.ema,
            Which::Swa => &mut self.swa,
        };
        let Some(avg) = avg.as_mut().filter(|a| a.count() > 0) else {
            return Ok(None);
        };
        self.net.swap_params(avg.weights_mut())?;
        let chunk = self.cfg.eval_batch;
        let (net, batcher) = (&mut self.net, &mut self.batcher);
        let mut eval = |d: &Option<Dataset>| -> Result<(Option<f64>, Option<f64>), TrainError> {
            match d {
                Some(d) if !d.is_empty() => {
                    let st = batcher.evaluate(net, d, chunk)?;
                    Ok((Some(st.mean_loss()), Some(st.accuracy())))
                }
                _ => Ok((None, None)),
            }
        };
        let figures = eval(&self.data.valid).and_then(|v| Ok((v, eval(&self.data.test)?)));
        self.net.swap_params(avg.weights_mut())?;
        let ((valid_loss, valid_accuracy), (test_loss, test_accuracy)) = figures?;
        Ok(Some(AverageFigures {
            updates: avg.count(),
            valid_loss,
            valid_accuracy,
            test_loss,
            test_accuracy,
        }))
    }

    /// The optimiser's failed decompositions so far (SOAP, Shampoo), over
    /// every rank's tensors in a sharded run (a collective then: every rank
    /// calls it at the epoch's end); `None` for optimisers that count none.
    pub(super) fn decomposition_failures(&mut self) -> Option<u64> {
        let opt = self.method.optimizer()?;
        let mine = opt
            .counters()
            .into_iter()
            .find(|(name, _)| *name == "decomposition_failures");
        #[cfg(feature = "mpi")]
        if let Some(rep) = self.replica.as_ref().filter(|r| r.shards()) {
            // Every rank takes part, whether or not its tensors count.
            let here = mine.map_or(0.0, |(_, n)| n as f64);
            let total = rep.world().sum_f64(&[here])[0];
            let counts = rep.world().all_gather_u64(u64::from(mine.is_some()));
            return counts.contains(&1).then_some(total as u64);
        }
        mine.map(|(_, n)| n)
    }

    /// Prodigy's estimate `d` (of the first group that has one), which users
    /// watch: the rate it adapted to is `d·lr`.
    pub(super) fn adapted_d(&mut self) -> Option<f64> {
        let opt = self.method.optimizer()?;
        (0..opt.num_groups()).find_map(|g| {
            opt.group_state(g)
                .into_iter()
                .find(|(name, _)| *name == "d")
                .map(|(_, d)| d)
        })
    }

    /// Fills `eval_buf` with the optimiser's evaluation point when it has
    /// one other than the parameters; returns whether it did.
    pub(super) fn eval_point(&mut self) -> Result<bool, TrainError> {
        #[cfg(feature = "mpi")]
        if let Some(sharded) = self.sharded_eval_point() {
            return sharded;
        }
        let Method::Step(opt) = &self.method else {
            return Ok(false);
        };
        let params = self.net.params();
        self.eval_buf.resize(params.len(), 0.0);
        let mut ps: Vec<&[f32]> = Vec::with_capacity(self.net.tensors().len());
        let mut outs: Vec<&mut [f32]> = Vec::with_capacity(ps.capacity());
        let mut rest = self.eval_buf.as_mut_slice();
        for t in self.net.tensors() {
            ps.push(&params[t.range()]);
            let (head, tail) = rest.split_at_mut(t.len);
            outs.push(head);
            rest = tail;
        }
        Ok(opt.eval_params(&ps, &mut outs)?)
    }

    /// Evaluation-mode loss and accuracy of the current model on a data set.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<downhill_nn::BatchStats, TrainError> {
        let chunk = self.cfg.eval_batch;
        let (net, batcher) = (&mut self.net, &mut self.batcher);
        Ok(self.pool.install(|| batcher.evaluate(net, data, chunk))?)
    }
}
