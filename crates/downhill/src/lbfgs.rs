//! L-BFGS: limited-memory quasi-Newton minimisation with an optional
//! strong-Wolfe line search, as `torch.optim.LBFGS`.

use crate::error::{Error, Result};
use crate::hyper::check;
use crate::line_search::{Backtracking, LinePoint, LineSearch, Slot, StrongWolfe};
use crate::optim::Param;
use crate::report::{Report, Termination};
use crate::state::{BufferRecord, GroupRecord, SavedState, StateManifest, TensorRecord};
use crate::Real;
use std::collections::{BTreeMap, VecDeque};

crate::hyper_enum! {
    /// The line search an L-BFGS or Newton iteration uses.
    pub enum LineSearchFn {
        /// [`StrongWolfe`]: bracketing and cubic zoom (torch's `strong_wolfe`).
        StrongWolfe = "strong_wolfe",
        /// [`Backtracking`] on sufficient decrease alone.
        Backtracking = "backtracking",
    }
}

impl LineSearchFn {
    /// The search with default constants.
    pub fn search(self, tolerance_change: f64) -> Box<dyn LineSearch> {
        match self {
            LineSearchFn::StrongWolfe => Box::new(StrongWolfe {
                tolerance_change,
                ..StrongWolfe::default()
            }),
            LineSearchFn::Backtracking => Box::new(Backtracking::default()),
        }
    }

    /// The most evaluations one search with default constants makes.
    pub fn max_evals(self) -> usize {
        match self {
            // Every trial counts towards `max_evals`, after the first.
            LineSearchFn::StrongWolfe => StrongWolfe::default().max_evals + 1,
            LineSearchFn::Backtracking => Backtracking::default().max_evals,
        }
    }
}

crate::hyper_struct! {
    /// L-BFGS (Liu & Nocedal, 1989) with torch's names and defaults.
    ///
    /// Each iteration builds a direction `d = −H·∇f` from the last
    /// `history_size` pairs `s = Δx`, `y = Δ∇f` by the two-loop recursion
    /// (Nocedal & Wright, algorithm 7.4), with the initial inverse Hessian
    /// `H₀ = (sᵀy / yᵀy)·I` from the newest pair. A pair enters the history
    /// only when `yᵀs > 10⁻¹⁰` (the curvature condition that keeps `H`
    /// positive definite). The first step is scaled to `min(1, 1/‖∇f‖₁)·lr`.
    /// With `line_search_fn = strong_wolfe` the step satisfies the strong Wolfe
    /// conditions; without, it is `lr` times the direction.
    pub struct LbfgsConfig: "lbfgs" {
        /// Step length (initial trial step of the line search).
        lr: f64 = 1.0; check check::positive,
        /// Iterations per call of [`Lbfgs::step`].
        max_iter: usize = 20; check check::at_least_one_usize,
        /// Evaluations per call (default `max_iter · 5/4`).
        max_eval: Option<usize> = None,
        /// Stop when `max |∇f| ≤ tolerance_grad`.
        tolerance_grad: f64 = 1e-7; check check::non_negative,
        /// Stop when the loss or the step changes by less than this.
        tolerance_change: f64 = 1e-9; check check::non_negative,
        /// Pairs (s, y) kept.
        history_size: usize = 100; check check::at_least_one_usize,
        /// `strong_wolfe`, `backtracking`, or none (fixed steps).
        line_search_fn: Option<LineSearchFn> = None,
    }
}

/// L-BFGS over a parameter vector of element type `T`; its state (history,
/// last direction) persists across [`Lbfgs::step`] calls, as torch's does, so
/// a training loop can call it once per epoch.
#[derive(Debug)]
pub struct Lbfgs<T: Real> {
    config: LbfgsConfig,
    search: Option<Box<dyn LineSearch>>,
    n: usize,
    /// Iterations over all calls.
    n_iter: u64,
    /// Evaluations over all calls.
    func_evals: u64,
    d: Vec<T>,
    t: f64,
    grad: Vec<T>,
    prev_grad: Vec<T>,
    history: VecDeque<(Vec<T>, Vec<T>, f64)>,
    /// Storage for the next (s, y) pair, recycled from evicted pairs.
    spare: (Vec<T>, Vec<T>),
    h_diag: f64,
    alpha: Vec<f64>,
    trial: Vec<T>,
    buffers: [Vec<T>; 3],
}

fn dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| Real::to_f64(x) * Real::to_f64(y))
        .sum()
}

fn max_abs<T: Real>(a: &[T]) -> f64 {
    a.iter().fold(0.0f64, |m, &x| m.max(Real::to_f64(x).abs()))
}

fn all_finite<T: Real>(a: &[T]) -> bool {
    a.iter().all(|x| x.is_finite())
}

/// `y ← y + a·x`.
fn axpy<T: Real>(a: f64, x: &[T], y: &mut [T]) {
    let a = T::from_f64(a);
    for (y, &x) in y.iter_mut().zip(x) {
        *y = *y + a * x;
    }
}

impl<T: Real> Lbfgs<T> {
    /// An L-BFGS minimiser for vectors of `n` elements.
    pub fn new(config: LbfgsConfig, n: usize) -> Result<Self> {
        use crate::hyper::Hyper;
        config.validate()?;
        // The history grows to history_size pairs of n-vectors: refuse one
        // this machine could never hold, rather than abort later.
        let history_bytes = config
            .history_size
            .checked_mul(2 * n.max(1))
            .and_then(|e| e.checked_mul(T::BYTES));
        if !history_bytes.is_some_and(crate::can_allocate) {
            return Err(crate::hyper::invalid_value(
                "lbfgs",
                "history_size",
                config.history_size,
                format!(
                    "a history that fits in memory ({} pairs of {n} values cannot be allocated)",
                    config.history_size
                ),
            ));
        }
        let search = config
            .line_search_fn
            .map(|f| f.search(config.tolerance_change));
        Ok(Lbfgs {
            search,
            n,
            n_iter: 0,
            func_evals: 0,
            d: vec![T::zero(); n],
            t: 0.0,
            grad: vec![T::zero(); n],
            prev_grad: vec![T::zero(); n],
            history: VecDeque::new(),
            spare: (Vec::new(), Vec::new()),
            h_diag: 1.0,
            alpha: Vec::new(),
            trial: vec![T::zero(); n],
            buffers: [vec![T::zero(); n], vec![T::zero(); n], vec![T::zero(); n]],
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LbfgsConfig {
        &self.config
    }

    /// Evaluations over all calls.
    pub fn total_evaluations(&self) -> u64 {
        self.func_evals
    }

    /// Iterations over all calls.
    pub fn total_iterations(&self) -> u64 {
        self.n_iter
    }

    /// The whole state (configuration, counters, last direction and step, the
    /// history) in the format of [`crate::state`]: buffers `d`, `prev_grad`,
    /// `s{i}` and `y{i}` (oldest pair first); scalars `t`, `h_diag`,
    /// `func_evals` and `rho{i}`. Restoring it continues bit-identically.
    pub fn save_state(&self) -> SavedState {
        use crate::hyper::Hyper;
        let mut buffers = Vec::new();
        let mut names = Vec::new();
        let mut push = |name: String, v: &[T]| {
            let mut bytes = Vec::new();
            T::extend_le_bytes(v, &mut bytes);
            buffers.push((format!("0.{name}"), bytes));
            names.push(BufferRecord {
                name,
                shape: vec![v.len()],
            });
        };
        push("d".into(), &self.d);
        push("prev_grad".into(), &self.prev_grad);
        let mut scalars = BTreeMap::new();
        for (i, (s, y, rho)) in self.history.iter().enumerate() {
            push(format!("s{i}"), s);
            push(format!("y{i}"), y);
            scalars.insert(format!("rho{i}"), *rho);
        }
        scalars.insert("t".into(), self.t);
        scalars.insert("h_diag".into(), self.h_diag);
        scalars.insert("func_evals".into(), self.func_evals as f64);
        SavedState {
            manifest: StateManifest::new(
                "lbfgs",
                T::NAME,
                &[Param::from(self.n)],
                vec![GroupRecord {
                    params: vec![0],
                    hyper: self.config.to_map(),
                    scalars: BTreeMap::new(),
                }],
                vec![TensorRecord {
                    step: self.n_iter,
                    scalars,
                    buffers: names,
                }],
            ),
            buffers,
        }
    }

    /// Restores a state from [`Lbfgs::save_state`] of a minimiser of the same
    /// size; unchanged on error.
    pub fn load_state(&mut self, saved: &SavedState) -> Result<()> {
        use crate::hyper::Hyper;
        let m = saved
            .manifest
            .expect("lbfgs", T::NAME, &[Param::from(self.n)])?;
        let (Some(group), Some(rec)) = (m.groups.first(), m.tensors.first()) else {
            return Err(Error::State(
                "lbfgs state without a group or tensor record".into(),
            ));
        };
        let mut config = LbfgsConfig::default();
        config.apply(&group.hyper)?;
        let scalar = |k: &str| {
            rec.scalars
                .get(k)
                .copied()
                .ok_or_else(|| Error::State(format!("lbfgs state lacks scalar `{k}`")))
        };
        let vector = |k: &str| -> Result<Vec<T>> {
            let bytes = saved.buffer(&format!("0.{k}"))?;
            if bytes.len() != self.n * T::BYTES {
                return Err(Error::State(format!(
                    "lbfgs buffer `{k}` has {} bytes, expected {}",
                    bytes.len(),
                    self.n * T::BYTES
                )));
            }
            let mut v = vec![T::zero(); self.n];
            T::read_le_bytes(bytes, &mut v);
            Ok(v)
        };
        let pairs = rec
            .buffers
            .iter()
            .filter(|b| b.name.starts_with('s'))
            .count();
        if pairs > config.history_size {
            return Err(Error::State(format!(
                "{pairs} history pairs for history_size {}",
                config.history_size
            )));
        }
        let mut history = VecDeque::with_capacity(pairs);
        for i in 0..pairs {
            history.push_back((
                vector(&format!("s{i}"))?,
                vector(&format!("y{i}"))?,
                scalar(&format!("rho{i}"))?,
            ));
        }
        let (d, prev_grad) = (vector("d")?, vector("prev_grad")?);
        let (t, h_diag, func_evals) = (scalar("t")?, scalar("h_diag")?, scalar("func_evals")?);
        // Counters near u64::MAX would overflow at the next step; beyond 2^53
        // they are not exact in the f64 the state stores them in.
        let limit = crate::optim::MAX_STEP;
        if rec.step > limit
            || !(func_evals >= 0.0 && func_evals <= limit as f64 && func_evals.fract() == 0.0)
        {
            return Err(Error::State(format!(
                "lbfgs state claims {} iterations and {func_evals} evaluations; the most a state may hold is 2^53",
                rec.step
            )));
        }
        if !(t.is_finite() && h_diag.is_finite()) {
            return Err(Error::State(format!(
                "lbfgs state has a non-finite step length ({t}) or scale ({h_diag})"
            )));
        }
        self.search = config
            .line_search_fn
            .map(|f| f.search(config.tolerance_change));
        self.config = config;
        self.history = history;
        self.d = d;
        self.prev_grad = prev_grad;
        self.t = t;
        self.h_diag = h_diag;
        self.func_evals = func_evals as u64;
        self.n_iter = rec.step;
        Ok(())
    }

    /// Minimises from `x` (updated in place) for up to `max_iter` iterations.
    /// `f(x, g)` returns the loss at `x` and writes its gradient into `g`.
    pub fn step<F>(&mut self, x: &mut [T], mut f: F) -> Result<Report>
    where
        F: FnMut(&[T], &mut [T]) -> f64,
    {
        if x.len() != self.n {
            return Err(Error::Shape(format!(
                "lbfgs: x has {} elements, expected {}",
                x.len(),
                self.n
            )));
        }
        let cfg = self.config.clone();
        // A state holds at most 2^53 iterations and evaluations (`load_state`
        // refuses more: beyond it `func_evals` is not exact in its f64). A
        // call evaluates once, then takes at most `max_iter` iterations of
        // at most the line search's evaluations each (one without a search):
        // refuse, before anything changes, a call that could pass the limit.
        let limit = crate::optim::MAX_STEP;
        let max_iter = u64::try_from(cfg.max_iter).unwrap_or(u64::MAX);
        let per_iteration = cfg.line_search_fn.map_or(1, LineSearchFn::max_evals) as u64;
        let most_evals = max_iter.saturating_mul(per_iteration).saturating_add(1);
        if self.n_iter.saturating_add(max_iter) > limit
            || self.func_evals.saturating_add(most_evals) > limit
        {
            return Err(Error::State(format!(
                "lbfgs has taken {} iterations and {} evaluations; a call with max_iter = {} may add {max_iter} iterations and {most_evals} evaluations, past 2^53, the most a state may hold",
                self.n_iter, self.func_evals, cfg.max_iter
            )));
        }
        let max_eval = cfg.max_eval.unwrap_or(cfg.max_iter * 5 / 4);
        let mut loss = f(x, &mut self.grad);
        let mut evals = 1;
        self.func_evals += 1;
        if !loss.is_finite() || !all_finite(&self.grad) {
            return Err(Error::Objective(format!("lbfgs: the objective is {loss} (or its gradient is not finite) at the starting point")));
        }
        let report = |loss, iterations, evaluations, reason| Report {
            loss,
            iterations,
            evaluations,
            reason,
        };
        if max_abs(&self.grad) <= cfg.tolerance_grad {
            return Ok(report(loss, 0, evals, Termination::GradientTolerance));
        }
        let mut iters = 0;
        loop {
            iters += 1;
            self.n_iter += 1;
            self.direction();
            self.prev_grad.copy_from_slice(&self.grad);
            let prev_loss = loss;
            self.t = if self.n_iter == 1 {
                let l1: f64 = self.grad.iter().map(|&g| Real::to_f64(g).abs()).sum();
                (1.0f64).min(1.0 / l1) * cfg.lr
            } else {
                cfg.lr
            };
            let gtd = dot(&self.grad, &self.d);
            if gtd > -cfg.tolerance_change {
                let reason = if gtd > cfg.tolerance_change {
                    Termination::NotDescent
                } else {
                    Termination::SlopeTolerance
                };
                return Ok(report(loss, iters, evals, reason));
            }
            let ls_evals = match &self.search {
                Some(search) => {
                    let (d, trial, buffers) = (&self.d, &mut self.trial, &mut self.buffers);
                    let x0: &[T] = x;
                    let mut phi = |t: f64, slot: usize| {
                        for ((xt, &x), &d) in trial.iter_mut().zip(x0).zip(d) {
                            *xt = x + T::from_f64(t) * d;
                        }
                        let fv = f(trial, &mut buffers[slot]);
                        Ok((fv, dot(&buffers[slot], d)))
                    };
                    let start = LinePoint {
                        t: 0.0,
                        f: loss,
                        slope: gtd,
                        slot: Slot::Start,
                    };
                    let r = search.search(start, self.t, max_abs(d), &mut phi)?;
                    self.t = r.point.t;
                    loss = r.point.f;
                    if let Slot::Buffer(k) = r.point.slot {
                        std::mem::swap(&mut self.grad, &mut self.buffers[k]);
                    }
                    axpy(self.t, &self.d, x);
                    r.evals
                }
                None => {
                    axpy(self.t, &self.d, x);
                    if iters != cfg.max_iter {
                        loss = f(x, &mut self.grad);
                        1
                    } else {
                        0
                    }
                }
            };
            evals += ls_evals;
            self.func_evals += ls_evals as u64;
            if !loss.is_finite() || !all_finite(&self.grad) {
                return Ok(report(loss, iters, evals, Termination::NonFinite));
            }
            if iters == cfg.max_iter {
                return Ok(report(loss, iters, evals, Termination::MaxIterations));
            }
            if evals >= max_eval {
                return Ok(report(loss, iters, evals, Termination::MaxEvaluations));
            }
            if max_abs(&self.grad) <= cfg.tolerance_grad {
                return Ok(report(loss, iters, evals, Termination::GradientTolerance));
            }
            if max_abs(&self.d) * self.t.abs() <= cfg.tolerance_change {
                return Ok(report(loss, iters, evals, Termination::StepTolerance));
            }
            if (loss - prev_loss).abs() < cfg.tolerance_change {
                return Ok(report(loss, iters, evals, Termination::ChangeTolerance));
            }
        }
    }

    /// Updates the history with the last step and computes `d = −H·∇f`.
    fn direction(&mut self) {
        if self.n_iter == 1 {
            for (d, &g) in self.d.iter_mut().zip(&self.grad) {
                *d = -g;
            }
            self.history.clear();
            self.h_diag = 1.0;
            return;
        }
        // y = ∇f − ∇f_prev, s = t·d, computed into the spare pair; kept only
        // if yᵀs is safely positive, evicting the oldest pair when full.
        let (mut s, mut y) = std::mem::take(&mut self.spare);
        s.resize(self.n, T::zero());
        y.resize(self.n, T::zero());
        for (((s, y), &g), (&gp, &d)) in s
            .iter_mut()
            .zip(y.iter_mut())
            .zip(&self.grad)
            .zip(self.prev_grad.iter().zip(&self.d))
        {
            *y = g - gp;
            *s = d * T::from_f64(self.t);
        }
        let ys = dot(&y, &s);
        if ys > 1e-10 {
            if self.history.len() == self.config.history_size {
                let (old_s, old_y, _) = self.history.pop_front().expect("full history");
                self.spare = (old_s, old_y);
            }
            self.h_diag = ys / dot(&y, &y);
            self.history.push_back((s, y, 1.0 / ys));
        } else {
            self.spare = (s, y);
        }
        // Two-loop recursion.
        for (d, &g) in self.d.iter_mut().zip(&self.grad) {
            *d = -g;
        }
        self.alpha.clear();
        for (s, y, rho) in self.history.iter().rev() {
            let a = dot(s, &self.d) * rho;
            axpy(-a, y, &mut self.d);
            self.alpha.push(a);
        }
        let h = T::from_f64(self.h_diag);
        for d in self.d.iter_mut() {
            *d = *d * h;
        }
        for ((s, y, rho), &a) in self.history.iter().zip(self.alpha.iter().rev()) {
            let b = dot(y, &self.d) * rho;
            axpy(a - b, s, &mut self.d);
        }
    }
}
