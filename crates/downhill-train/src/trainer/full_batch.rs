//! Full-batch methods: L-BFGS with its closure, and Newton's method.

use super::Trainer;
use crate::method::Method;
use crate::progress::Observer;
use crate::TrainError;
use downhill::clip::{grad_norm, Norm};
use downhill_nn::Network;
use std::time::Instant;

impl Trainer {
    pub(super) fn train_lbfgs(&mut self, obs: &mut dyn Observer) -> Result<(), TrainError> {
        let t0 = Instant::now();
        let Some(asked) = self.full_batch_budget() else {
            let report = self.lbfgs_call()?;
            return self.finish_full_batch(t0, &report, None, obs);
        };
        // A run by steps: calls of up to the period's remaining iterations,
        // until they are made or a call stops for another reason than its
        // evaluation limit; the run's own max_iter is put back afterwards.
        let Method::Lbfgs(l) = &mut self.method else {
            unreachable!("train_lbfgs runs lbfgs")
        };
        let max_iter = l.config().max_iter;
        let mut total: Option<downhill::Report> = None;
        let outcome = loop {
            let done = total.map_or(0, |r| r.iterations);
            let call = match &mut self.method {
                Method::Lbfgs(l) => super::steps::set_lbfgs_max_iter(l, asked - done),
                _ => unreachable!("train_lbfgs runs lbfgs"),
            }
            .and_then(|_| self.lbfgs_call());
            let r = match call {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            let sum = downhill::Report {
                iterations: done + r.iterations,
                evaluations: total.map_or(0, |t| t.evaluations) + r.evaluations,
                ..r
            };
            total = Some(sum);
            if sum.iterations >= asked
                || r.iterations == 0
                || r.reason != downhill::Termination::MaxEvaluations
            {
                break Ok(sum);
            }
        };
        if let Method::Lbfgs(l) = &mut self.method {
            super::steps::set_lbfgs_max_iter(l, max_iter)?;
        }
        let report = outcome?;
        self.finish_full_batch(t0, &report, Some(asked), obs)
    }

    /// One call of L-BFGS on the full-batch loss, from the parameters; they
    /// become the point it accepted.
    fn lbfgs_call(&mut self) -> Result<downhill::Report, TrainError> {
        let n = self.info.train;
        let rows: Vec<usize> = (0..n).collect();
        let chunk = self.cfg.eval_batch;
        let Method::Lbfgs(lbfgs) = &mut self.method else {
            unreachable!("train_lbfgs runs lbfgs")
        };
        let (net, batcher, data, rng, acc) = (
            &mut self.net,
            &mut self.batcher,
            &self.data.train,
            &mut self.rng,
            &mut self.acc,
        );
        let mut x = net.params().to_vec();
        let mut failure = None;
        let report = lbfgs.step(&mut x, |xt, g| {
            net.params_mut().copy_from_slice(xt);
            match batcher.gradient(net, data, &rows, chunk, rng, acc) {
                Ok(st) => {
                    g.copy_from_slice(net.grads());
                    st.mean_loss()
                }
                Err(e) => {
                    failure = Some(e);
                    f64::NAN
                }
            }
        });
        let report = self.full_batch_outcome(report, failure)?;
        self.net.params_mut().copy_from_slice(&x);
        Ok(report)
    }

    /// Newton's method on the full-batch loss with the exact Hessian.
    pub(super) fn train_newton(&mut self, obs: &mut dyn Observer) -> Result<(), TrainError> {
        let t0 = Instant::now();
        let rows: Vec<usize> = (0..self.info.train).collect();
        let chunk = self.cfg.eval_batch;
        let asked = self.full_batch_budget();
        let Method::Newton { config, iterations } = &mut self.method else {
            unreachable!("train_newton runs newton")
        };
        // A run by steps: the period's iterations, whatever max_iter says.
        let mut config = config.clone();
        if let Some(m) = asked {
            config.max_iter = m;
        }
        let (net, batcher, data, rng, acc) = (
            &mut self.net,
            &mut self.batcher,
            &self.data.train,
            &mut self.rng,
            &mut self.acc,
        );
        let mut x: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
        // Both closures need the network; the cell lends it to one at a time.
        let shared = std::cell::RefCell::new((net, batcher, rng, acc));
        let failure = std::cell::RefCell::new(None);
        let set = |net: &mut Network<f32>, x: &[f64]| {
            for (p, &v) in net.params_mut().iter_mut().zip(x) {
                *p = v as f32;
            }
        };
        let report = config.minimize_with(
            &mut x,
            |x, g| {
                let (net, batcher, rng, acc) = &mut *shared.borrow_mut();
                set(net, x);
                match batcher.gradient(net, data, &rows, chunk, rng, acc) {
                    Ok(st) => {
                        for (g, &v) in g.iter_mut().zip(net.grads()) {
                            *g = v as f64;
                        }
                        st.mean_loss()
                    }
                    Err(e) => {
                        *failure.borrow_mut() = Some(e);
                        f64::NAN
                    }
                }
            },
            |x, h| {
                let (net, batcher, _, _) = &mut *shared.borrow_mut();
                set(net, x);
                match crate::newton::logreg_hessian(net, data, chunk, batcher, h) {
                    Ok(()) => crate::newton::fix_softmax_null_space(
                        h,
                        data.dim(),
                        net.outputs(),
                        net.l2(),
                    ),
                    Err(e) => {
                        *failure.borrow_mut() = Some(e);
                        h.fill(f64::NAN);
                    }
                }
            },
        );
        let failure = failure.into_inner();
        if let (Ok(r), None) = (&report, &failure) {
            *iterations += r.iterations as u64;
        }
        let report = self.full_batch_outcome(report, failure)?;
        for (p, &v) in self.net.params_mut().iter_mut().zip(&x) {
            *p = v as f32;
        }
        self.finish_full_batch(t0, &report, asked, obs)
    }

    /// The report of a full-batch method, or why it failed: an error while
    /// computing the loss, or a non-finite objective (a divergence).
    pub(super) fn full_batch_outcome(
        &self,
        report: downhill::Result<downhill::Report>,
        failure: Option<downhill_nn::NnError>,
    ) -> Result<downhill::Report, TrainError> {
        if let Some(e) = failure {
            return Err(e.into());
        }
        match report {
            Ok(r) => Ok(r),
            Err(downhill::Error::Objective(what)) => Err(self.diverge(what)),
            Err(e) => Err(e.into()),
        }
    }

    /// Records an epoch of a full-batch method: the loss at the accepted
    /// point (recomputed, so the record matches the parameters), its
    /// iterations as steps, and what the method reported. In a run by
    /// steps, `asked` is the iterations the period asked for.
    pub(super) fn finish_full_batch(
        &mut self,
        t0: Instant,
        report: &downhill::Report,
        asked: Option<usize>,
        obs: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        if report.reason == downhill::Termination::NonFinite {
            return Err(self.diverge(format!("the full-batch loss is {}", report.loss)));
        }
        let rows: Vec<usize> = (0..self.info.train).collect();
        let st = self.batcher.gradient(
            &mut self.net,
            &self.data.train,
            &rows,
            self.cfg.eval_batch,
            &mut self.rng,
            &mut self.acc,
        )?;
        let norm = grad_norm(&[self.net.grads()], Norm::P(2.0));
        // An epoch that took no step (converged already) adds no step loss:
        // `steps.csv` has one row per step number.
        if report.iterations > 0 {
            self.step += report.iterations as u64;
            self.epoch_steps.push((self.step, st.mean_loss()));
        }
        let t = &mut self.totals;
        t.loss_sum = st.loss_sum;
        t.penalty_sum = st.penalty * st.count as f64;
        t.correct = st.correct as u64;
        t.count = st.count as u64;
        t.grad_norm_sum = norm;
        t.steps = 1;
        t.train_seconds = t0.elapsed().as_secs_f64();
        obs.message(&format!(
            "{}: {} iterations, {} evaluations, {}",
            self.method.name(),
            report.iterations,
            report.evaluations,
            report.reason
        ));
        if let Some(asked) = asked {
            self.count_full_batch_steps(report.iterations, asked);
            if report.iterations < asked {
                obs.message(&format!(
                    "{} stopped after {} of {} steps ({}): the run ends here",
                    self.method.name(),
                    self.step,
                    self.cfg.steps.unwrap_or(self.step),
                    report.reason
                ));
            }
        }
        Ok(())
    }
}
