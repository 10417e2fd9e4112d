//! Where a path ended: near which known or found stationary point, or
//! escaped, diverged or still moving.

use super::{Closest, Ending, KnownPoint, Stop, Target, NEAR_FRACTION};
use crate::functions::eigenvalues_2x2;
use downhill::problems::Problem;

/// Decides where a path ended and how close it came to the known points.
pub(super) struct Judge<'a> {
    problem: &'a dyn Problem,
    minima: Vec<[f64; 2]>,
    saddles: Vec<[f64; 2]>,
    maxima: Vec<[f64; 2]>,
    /// Radius around known points.
    near: f64,
    /// Radius around stationary points found from the last point, which
    /// may lie much closer together than the known ones (Rastrigin's wells).
    tight: f64,
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

impl<'a> Judge<'a> {
    pub(super) fn new(problem: &'a dyn Problem, known: &[KnownPoint]) -> Self {
        let of = |k: &str| known.iter().filter(|p| p.kind == k).map(|p| p.at).collect();
        let w = problem.window();
        let diagonal = (w[0].1 - w[0].0).hypot(w[1].1 - w[1].0);
        Judge {
            problem,
            minima: of("minimum"),
            saddles: of("saddle"),
            maxima: of("maximum"),
            near: NEAR_FRACTION * diagonal,
            tight: 0.25 * NEAR_FRACTION * diagonal,
        }
    }

    /// The nearest of `points` to `x`, with the distance.
    pub(super) fn nearest(points: &[[f64; 2]], x: [f64; 2]) -> Option<([f64; 2], f64)> {
        points
            .iter()
            .map(|&p| (p, dist(p, x)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    pub(super) fn ending(&self, points: &[[f64; 2]], stop: &Stop, target: &Target) -> Ending {
        let last = *points.last().expect("a path has its start");
        if *stop == Stop::Diverged {
            return Ending::Diverged {
                step: points.len() - 1,
            };
        }
        // Within the "near" radius is not converged: a run can stop there at
        // f = 2e-3 with the tolerance 1e-6 unmet.
        let reached = target.reached(self.problem.value(&last));
        if let Some((at, d)) = Self::nearest(&self.minima, last) {
            if d <= self.near {
                return Ending::Minimum {
                    at,
                    distance: d,
                    reached,
                };
            }
        }
        if let Target::Escape { saddle, level } = *target {
            if self.problem.value(&last) <= level {
                return Ending::Escaped {
                    saddle,
                    direction: direction([last[0] - saddle[0], last[1] - saddle[1]]),
                };
            }
        }
        if let Some((at, d)) = Self::nearest(&self.saddles, last) {
            if d <= self.near {
                return Ending::NearSaddle { at, distance: d };
            }
        }
        if let Some((at, _)) = Self::nearest(&self.maxima, last).filter(|(_, d)| *d <= self.near) {
            return Ending::NearMaximum { at };
        }
        // Unlisted stationary points only count for a run that has settled:
        // close to the point and barely moving (not bouncing between wells).
        let settled = points.len() < 2 || dist(last, points[points.len() - 2]) <= self.tight;
        if let Some(p) = self.stationary_near(last).filter(|_| settled) {
            let mut h = [0.0; 4];
            self.problem.hessian(&p, &mut h);
            let (lo, hi) = eigenvalues_2x2(h[0], 0.5 * (h[1] + h[2]), h[3]);
            if lo > 0.0 {
                if let Some((at, d)) = Self::nearest(&self.minima, p) {
                    if d <= 1e-9 * (1.0 + at[0].abs() + at[1].abs()) {
                        return Ending::Minimum {
                            at,
                            distance: dist(at, last),
                            reached,
                        };
                    }
                }
                return Ending::LocalMinimum {
                    at: p,
                    value: self.problem.value(&p),
                };
            }
            if hi < 0.0 {
                return Ending::NearMaximum { at: p };
            }
            return Ending::NearSaddle {
                at: p,
                distance: dist(p, last),
            };
        }
        Ending::Moving { at: last }
    }

    /// A stationary point within `near` of `x`, by Newton's method on ∇f = 0.
    pub(super) fn stationary_near(&self, x0: [f64; 2]) -> Option<[f64; 2]> {
        let (mut g, mut h) = ([0.0; 2], [0.0; 4]);
        let mut x = x0;
        for _ in 0..60 {
            self.problem.gradient(&x, &mut g);
            self.problem.hessian(&x, &mut h);
            let det = h[0] * h[3] - h[1] * h[2];
            if det == 0.0 || !det.is_finite() {
                return None;
            }
            let dx = (h[3] * g[0] - h[1] * g[1]) / det;
            let dy = (h[0] * g[1] - h[2] * g[0]) / det;
            x = [x[0] - dx, x[1] - dy];
            if !(x[0].is_finite() && x[1].is_finite()) || dist(x, x0) > 2.0 * self.near {
                return None;
            }
            if dx.abs() + dy.abs() <= 1e-13 * (1.0 + x[0].abs() + x[1].abs()) {
                break;
            }
        }
        let f = self.problem.gradient(&x, &mut g);
        let scale = 1.0 + f.abs();
        (g[0].hypot(g[1]) <= 1e-8 * scale && dist(x, x0) <= self.tight).then_some(x)
    }

    pub(super) fn closest(&self, points: &[[f64; 2]]) -> Option<Closest> {
        let (kind, targets) = if !self.minima.is_empty() {
            ("minimum", &self.minima)
        } else {
            ("saddle", &self.saddles)
        };
        let mut best: Option<Closest> = None;
        for (step, &p) in points.iter().enumerate() {
            if let Some((at, d)) = Self::nearest(targets, p) {
                if d.is_finite() && best.as_ref().is_none_or(|b| d < b.distance) {
                    best = Some(Closest {
                        kind,
                        at,
                        distance: d,
                        step,
                    });
                }
            }
        }
        best
    }
}

/// `+x`, `−y`, … when `v` lies within 15° of an axis, else the unit vector.
pub(super) fn direction(v: [f64; 2]) -> String {
    let n = v[0].hypot(v[1]);
    if n == 0.0 || !n.is_finite() {
        return "(nowhere)".into();
    }
    let (ux, uy) = (v[0] / n, v[1] / n);
    let cos15 = 15f64.to_radians().cos();
    for (c, name) in [(ux, "+x"), (-ux, "−x"), (uy, "+y"), (-uy, "−y")] {
        if c >= cos15 {
            return name.into();
        }
    }
    format!("({ux:.2}, {uy:.2})")
}
