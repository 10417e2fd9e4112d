//! Newton's method for small problems that provide a Hessian.

use crate::error::{Error, Result};
use crate::hyper::{check, Hyper};
use crate::lbfgs::LineSearchFn;
use crate::line_search::{LinePoint, Slot};
use crate::problems::Problem;
use crate::report::{Report, Termination};

crate::hyper_struct! {
    /// Newton's method with a Hessian modification and a line search
    /// (Nocedal & Wright, 2006, §3.4).
    ///
    /// Each iteration solves `(H + μI)·d = −∇f` by Cholesky, with `μ = 0` when
    /// the Hessian `H` is positive definite and otherwise the smallest
    /// `μ = 10ᵏ·τ` that makes it so, then searches along `d` from `t = 1`.
    /// On a strictly convex quadratic it converges in one step; near a
    /// minimum, quadratically. Costs O(n³) per iteration: for small problems.
    pub struct Newton: "newton" {
        /// Most iterations.
        max_iter: usize = 100; check check::at_least_one_usize,
        /// Stop when `max |∇f| ≤ tolerance_grad`.
        tolerance_grad: f64 = 1e-10; check check::non_negative,
        /// Stop when the loss or the step changes by less than this.
        tolerance_change: f64 = 1e-14; check check::non_negative,
        /// `strong_wolfe`, `backtracking`, or none (full steps).
        line_search_fn: Option<LineSearchFn> = Some(LineSearchFn::StrongWolfe),
    }
}

/// Solves `A·x = b` for a symmetric positive definite `A` (row-major n×n) by
/// Cholesky factorisation, overwriting `A` with its factor; `None` when `A` is
/// not (numerically) positive definite.
pub fn solve_spd(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut diag = a[j * n + j];
        for k in 0..j {
            diag -= a[j * n + k] * a[j * n + k];
        }
        if diag.is_nan() || diag <= 0.0 {
            return None;
        }
        let l_jj = diag.sqrt();
        a[j * n + j] = l_jj;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / l_jj;
        }
    }
    let mut x = b.to_vec();
    for i in 0..n {
        for k in 0..i {
            x[i] -= a[i * n + k] * x[k];
        }
        x[i] /= a[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            x[i] -= a[k * n + i] * x[k];
        }
        x[i] /= a[i * n + i];
    }
    Some(x)
}

/// `d` solving `(H + μI)·d = −g` for the smallest workable μ.
fn modified_newton_direction(h: &[f64], g: &[f64], n: usize) -> Vec<f64> {
    let neg_g: Vec<f64> = g.iter().map(|x| -x).collect();
    let scale = (0..n)
        .map(|i| h[i * n + i].abs())
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let mut mu = 0.0;
    let mut work = vec![0.0; n * n];
    loop {
        work.copy_from_slice(h);
        for i in 0..n {
            work[i * n + i] += mu;
        }
        if let Some(d) = solve_spd(&mut work, &neg_g, n) {
            if d.iter().all(|x| x.is_finite()) {
                return d;
            }
        }
        // Start tiny: a positive semi-definite but singular Hessian (softmax
        // regression is invariant to shifting all biases) needs only a touch.
        mu = if mu == 0.0 { 1e-10 * scale } else { mu * 10.0 };
        if !mu.is_finite() {
            return neg_g;
        }
    }
}

impl Newton {
    /// Minimises `problem` from `x` (updated in place).
    pub fn minimize(&self, problem: &dyn Problem, x: &mut [f64]) -> Result<Report> {
        self.minimize_with(
            x,
            |x, g| problem.gradient(x, g),
            |x, h| problem.hessian(x, h),
        )
    }

    /// Minimises from `x` given `f(x, g)` (returns the loss, writes the
    /// gradient) and `hess(x, h)` (writes the row-major Hessian).
    pub fn minimize_with<F, H>(&self, x: &mut [f64], mut f: F, mut hess: H) -> Result<Report>
    where
        F: FnMut(&[f64], &mut [f64]) -> f64,
        H: FnMut(&[f64], &mut [f64]),
    {
        self.validate()?;
        let n = x.len();
        let mut g = vec![0.0; n];
        let mut h = vec![0.0; n * n];
        let mut trial = vec![0.0; n];
        let mut buffers = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        let mut loss = f(x, &mut g);
        let mut evals = 1;
        if !loss.is_finite() || g.iter().any(|v| !v.is_finite()) {
            return Err(Error::Objective(format!("newton: the objective is {loss} (or its gradient is not finite) at the starting point")));
        }
        let search = self.line_search_fn.map(|s| s.search(self.tolerance_change));
        let report = |loss, iterations, evaluations, reason| Report {
            loss,
            iterations,
            evaluations,
            reason,
        };
        for it in 1..=self.max_iter {
            if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= self.tolerance_grad {
                return Ok(report(loss, it - 1, evals, Termination::GradientTolerance));
            }
            hess(x, &mut h);
            let d = modified_newton_direction(&h, &g, n);
            let slope: f64 = d.iter().zip(&g).map(|(a, b)| a * b).sum();
            if slope > -self.tolerance_change {
                let reason = if slope > self.tolerance_change {
                    Termination::NotDescent
                } else {
                    Termination::SlopeTolerance
                };
                return Ok(report(loss, it, evals, reason));
            }
            let prev = loss;
            let t = match &search {
                Some(search) => {
                    let x0: &[f64] = x;
                    let mut phi = |t: f64, slot: usize| {
                        for ((xt, x), d) in trial.iter_mut().zip(x0).zip(&d) {
                            *xt = x + t * d;
                        }
                        let fv = f(&trial, &mut buffers[slot]);
                        Ok((fv, buffers[slot].iter().zip(&d).map(|(a, b)| a * b).sum()))
                    };
                    let r = search.search(
                        LinePoint {
                            t: 0.0,
                            f: loss,
                            slope,
                            slot: Slot::Start,
                        },
                        1.0,
                        1.0,
                        &mut phi,
                    )?;
                    evals += r.evals;
                    loss = r.point.f;
                    if let Slot::Buffer(k) = r.point.slot {
                        std::mem::swap(&mut g, &mut buffers[k]);
                    }
                    r.point.t
                }
                None => 1.0,
            };
            for (x, d) in x.iter_mut().zip(&d) {
                *x += t * d;
            }
            if search.is_none() {
                loss = f(x, &mut g);
                evals += 1;
            }
            if !loss.is_finite() {
                return Ok(report(loss, it, evals, Termination::NonFinite));
            }
            let step = d.iter().fold(0.0f64, |m, v| m.max((t * v).abs()));
            if step <= self.tolerance_change {
                return Ok(report(loss, it, evals, Termination::StepTolerance));
            }
            if (loss - prev).abs() < self.tolerance_change * prev.abs().max(1.0) {
                let gmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let reason = if gmax <= self.tolerance_grad {
                    Termination::GradientTolerance
                } else {
                    Termination::ChangeTolerance
                };
                return Ok(report(loss, it, evals, reason));
            }
        }
        Ok(report(
            loss,
            self.max_iter,
            evals,
            Termination::MaxIterations,
        ))
    }
}
