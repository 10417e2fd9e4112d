//! Line searches: given a descent direction `d` at `x`, choose a step `t`
//! along `φ(t) = f(x + t·d)`.
//!
//! A search never sees `x` or `d`; it calls back `φ(t, slot)`, which evaluates
//! the objective at `x + t·d`, stores that point's gradient in one of three
//! buffers (`slot` 0, 1 or 2) owned by the caller, and returns `φ(t)` and
//! `φ'(t) = ∇f·d`. The search reports which buffer holds the gradient of the
//! point it accepted, so no gradient is ever copied or recomputed.

use crate::error::Result;
use std::fmt::Debug;

/// Where the gradient of an evaluated point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The starting point (t = 0), whose gradient the caller already has.
    Start,
    /// One of the three evaluation buffers.
    Buffer(usize),
}

/// One evaluation of the line function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinePoint {
    /// Step length.
    pub t: f64,
    /// φ(t).
    pub f: f64,
    /// φ'(t).
    pub slope: f64,
    /// Where its gradient is.
    pub slot: Slot,
}

/// What a line search found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineResult {
    /// The accepted point.
    pub point: LinePoint,
    /// Evaluations of φ made.
    pub evals: usize,
    /// Whether the acceptance conditions hold at the point (otherwise it is
    /// the best point found within the budget).
    pub satisfied: bool,
}

/// The callback a line search evaluates: `φ(t, slot) → (φ(t), φ'(t))`.
pub type LineFunction<'a> = dyn FnMut(f64, usize) -> Result<(f64, f64)> + 'a;

/// A line search strategy.
pub trait LineSearch: Debug + Send + Sync {
    /// Searches from `start` (t = 0, with `start.slope < 0`), trying `t0`
    /// first. `d_max` is `max |dᵢ|`, used to stop when steps stop moving `x`.
    fn search(
        &self,
        start: LinePoint,
        t0: f64,
        d_max: f64,
        phi: &mut LineFunction<'_>,
    ) -> Result<LineResult>;
}

/// Evaluates φ at `t` into the first buffer not in `busy`.
fn eval(phi: &mut LineFunction<'_>, t: f64, busy: &[Slot]) -> Result<LinePoint> {
    let k = (0..3)
        .find(|k| !busy.contains(&Slot::Buffer(*k)))
        .expect("at most two slots are ever held");
    let (f, slope) = phi(t, k)?;
    // A non-finite value is treated as "far too high", which makes the search
    // back off instead of propagating NaN.
    let (f, slope) = if f.is_finite() && slope.is_finite() {
        (f, slope)
    } else {
        (f64::INFINITY, f64::NAN)
    };
    Ok(LinePoint {
        t,
        f,
        slope,
        slot: Slot::Buffer(k),
    })
}

/// Minimiser of the cubic through two points with their slopes, clamped to
/// `[lo, hi]` (Nocedal & Wright, eq. 3.59); the midpoint when the cubic has
/// no minimum or the data are not finite.
pub fn cubic_minimum(a: &LinePoint, b: &LinePoint, lo: f64, hi: f64) -> f64 {
    let d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.t - b.t);
    let d2_sq = d1 * d1 - a.slope * b.slope;
    if d2_sq.is_nan() || d2_sq < 0.0 || !d1.is_finite() {
        return (lo + hi) / 2.0;
    }
    let d2 = d2_sq.sqrt();
    let m = if a.t <= b.t {
        b.t - (b.t - a.t) * ((b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2))
    } else {
        a.t - (a.t - b.t) * ((a.slope + d2 - d1) / (a.slope - b.slope + 2.0 * d2))
    };
    if m.is_finite() {
        m.clamp(lo, hi)
    } else {
        (lo + hi) / 2.0
    }
}

/// The strong Wolfe conditions by bracketing and cubic-interpolation zoom
/// (Nocedal & Wright, 2006, algorithms 3.5 and 3.6; the variant of
/// `torch.optim.LBFGS`'s `strong_wolfe`). Accepts `t` when
///
/// ```text
/// φ(t) ≤ φ(0) + c₁·t·φ'(0)      (sufficient decrease)
/// |φ'(t)| ≤ c₂·|φ'(0)|           (curvature)
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StrongWolfe {
    /// Sufficient-decrease constant c₁.
    pub c1: f64,
    /// Curvature constant c₂.
    pub c2: f64,
    /// Stop when the bracket moves `x` by less than this.
    pub tolerance_change: f64,
    /// Most evaluations.
    pub max_evals: usize,
}

impl Default for StrongWolfe {
    fn default() -> Self {
        StrongWolfe {
            c1: 1e-4,
            c2: 0.9,
            tolerance_change: 1e-9,
            max_evals: 25,
        }
    }
}

impl LineSearch for StrongWolfe {
    fn search(
        &self,
        start: LinePoint,
        t0: f64,
        d_max: f64,
        phi: &mut LineFunction<'_>,
    ) -> Result<LineResult> {
        let armijo = |p: &LinePoint| p.f <= start.f + self.c1 * p.t * start.slope;
        let curvature = |p: &LinePoint| p.slope.abs() <= -self.c2 * start.slope;

        // Bracketing: grow t until the interval [prev, new] must hold a point
        // satisfying the conditions.
        let mut prev = start;
        let mut new = eval(phi, t0, &[])?;
        let mut evals = 1;
        let mut iters = 0;
        let mut bracket = loop {
            if iters == self.max_evals {
                break [start, new];
            }
            if !armijo(&new) || (iters > 1 && new.f >= prev.f) {
                break [prev, new];
            }
            if curvature(&new) {
                return Ok(LineResult {
                    point: new,
                    evals,
                    satisfied: true,
                });
            }
            if new.slope >= 0.0 {
                break [prev, new];
            }
            // Extrapolate: between 1.01·t and 10·t.
            let lo = new.t + 0.01 * (new.t - prev.t);
            let hi = new.t * 10.0;
            let t = cubic_minimum(&prev, &new, lo, hi);
            prev = new;
            new = eval(phi, t, &[prev.slot])?;
            evals += 1;
            iters += 1;
        };

        // Zoom: shrink the bracket by safeguarded cubic interpolation.
        let mut insufficient = false;
        let mut done = false;
        let (mut low, mut high) = if bracket[0].f <= bracket[1].f {
            (0, 1)
        } else {
            (1, 0)
        };
        while !done && iters < self.max_evals {
            let (a, b) = (bracket[0], bracket[1]);
            if (b.t - a.t).abs() * d_max < self.tolerance_change {
                break;
            }
            let (lo, hi) = (a.t.min(b.t), a.t.max(b.t));
            let mut t = cubic_minimum(&a, &b, lo, hi);
            // Keep away from the ends, where interpolation makes little progress.
            let margin = 0.1 * (hi - lo);
            if (hi - t).min(t - lo) < margin {
                if insufficient || t >= hi || t <= lo {
                    t = if (t - hi).abs() < (t - lo).abs() {
                        hi - margin
                    } else {
                        lo + margin
                    };
                    insufficient = false;
                } else {
                    insufficient = true;
                }
            } else {
                insufficient = false;
            }
            let p = eval(phi, t, &[a.slot, b.slot])?;
            evals += 1;
            iters += 1;
            if !armijo(&p) || p.f >= bracket[low].f {
                bracket[high] = p;
                (low, high) = if bracket[0].f <= bracket[1].f {
                    (0, 1)
                } else {
                    (1, 0)
                };
            } else {
                if curvature(&p) {
                    done = true;
                } else if p.slope * (bracket[high].t - bracket[low].t) >= 0.0 {
                    bracket[high] = bracket[low];
                }
                bracket[low] = p;
            }
        }
        let point = bracket[low];
        let satisfied = done || (armijo(&point) && curvature(&point) && point.t > 0.0);
        Ok(LineResult {
            point,
            evals,
            satisfied,
        })
    }
}

/// Backtracking on the sufficient-decrease (Armijo) condition alone: try `t0`,
/// then shrink by `shrink` until `φ(t) ≤ φ(0) + c₁·t·φ'(0)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Backtracking {
    /// Sufficient-decrease constant c₁.
    pub c1: f64,
    /// Factor applied to t on each failure, in (0, 1).
    pub shrink: f64,
    /// Most evaluations.
    pub max_evals: usize,
}

impl Default for Backtracking {
    fn default() -> Self {
        Backtracking {
            c1: 1e-4,
            shrink: 0.5,
            max_evals: 40,
        }
    }
}

impl LineSearch for Backtracking {
    fn search(
        &self,
        start: LinePoint,
        t0: f64,
        _d_max: f64,
        phi: &mut LineFunction<'_>,
    ) -> Result<LineResult> {
        let mut t = t0;
        let mut best = start;
        for evals in 1..=self.max_evals {
            let p = eval(phi, t, &[best.slot])?;
            if p.f <= start.f + self.c1 * t * start.slope {
                return Ok(LineResult {
                    point: p,
                    evals,
                    satisfied: true,
                });
            }
            if p.f < best.f {
                best = p;
            }
            t *= self.shrink;
        }
        Ok(LineResult {
            point: best,
            evals: self.max_evals,
            satisfied: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// φ(t) = (t − 2)², slope −4 at 0: both searches land near t = 2.
    fn quadratic(t: f64, _slot: usize) -> Result<(f64, f64)> {
        Ok(((t - 2.0).powi(2), 2.0 * (t - 2.0)))
    }

    fn start() -> LinePoint {
        LinePoint {
            t: 0.0,
            f: 4.0,
            slope: -4.0,
            slot: Slot::Start,
        }
    }

    #[test]
    fn strong_wolfe_accepts_a_point_satisfying_both_conditions() {
        for t0 in [0.01, 1.0, 3.9, 50.0] {
            let r = StrongWolfe::default()
                .search(start(), t0, 1.0, &mut quadratic)
                .unwrap();
            let p = r.point;
            assert!(r.satisfied, "t0 = {t0}: {r:?}");
            assert!(p.f <= 4.0 + 1e-4 * p.t * -4.0);
            assert!(p.slope.abs() <= 0.9 * 4.0);
            assert!(r.evals <= 6, "t0 = {t0}: {} evals", r.evals);
        }
    }

    #[test]
    fn backtracking_decreases() {
        let r = Backtracking::default()
            .search(start(), 100.0, 1.0, &mut quadratic)
            .unwrap();
        assert!(r.satisfied && r.point.f < 4.0, "{r:?}");
    }

    #[test]
    fn non_finite_values_make_the_search_back_off() {
        let mut phi = |t: f64, _| {
            Ok(if t > 3.0 {
                (f64::NAN, f64::NAN)
            } else {
                ((t - 2.0).powi(2), 2.0 * (t - 2.0))
            })
        };
        let r = StrongWolfe::default()
            .search(start(), 10.0, 1.0, &mut phi)
            .unwrap();
        assert!(r.point.f.is_finite() && r.point.f < 4.0, "{r:?}");
    }

    #[test]
    fn cubic_interpolation_is_exact_on_a_cubic() {
        // φ(t) = t³ − 3t, minimum at t = 1.
        let p = |t: f64| LinePoint {
            t,
            f: t.powi(3) - 3.0 * t,
            slope: 3.0 * t * t - 3.0,
            slot: Slot::Start,
        };
        let m = cubic_minimum(&p(0.0), &p(2.0), 0.0, 2.0);
        assert!((m - 1.0).abs() < 1e-12, "{m}");
    }
}
