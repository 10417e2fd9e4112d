//! Numerical convexity tests: Jensen's inequality on random pairs of points,
//! Hessian eigenvalues at random points, and midpoint convexity of sampled
//! values along a line.
//!
//! A sampled test can prove non-convexity (a witness is a counterexample) but
//! never convexity: "convex" means "no counterexample among the samples".

use crate::error::{LandscapeError, Result};
use crate::functions::{self, eigenvalues_2x2, fmt_num, fmt_point};
use downhill::problems::Problem;
use downhill::Rng;
use serde::Serialize;

/// How hard to look.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvexitySettings {
    /// Random pairs (x, y) with a random θ for Jensen's inequality, ≥ 1.
    pub pairs: usize,
    /// Random points at which the Hessian's eigenvalues are checked, ≥ 1.
    pub hessians: usize,
    /// Seed of the samples.
    pub seed: u64,
    /// Rounding allowance, relative to the size of the values compared:
    /// `f(θx + (1−θ)y) − (θf(x) + (1−θ)f(y)) ≤ rel_tolerance · max(1, |f(x)|, |f(y)|)`,
    /// and an eigenvalue counts as negative below
    /// `−rel_tolerance · max(1, largest |eigenvalue|)`.
    pub rel_tolerance: f64,
}

impl Default for ConvexitySettings {
    fn default() -> Self {
        ConvexitySettings {
            pairs: 2000,
            hessians: 500,
            seed: 0,
            rel_tolerance: 1e-9,
        }
    }
}

/// A pair of points for which Jensen's inequality fails.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JensenWitness {
    /// First point.
    pub x: [f64; 2],
    /// Second point.
    pub y: [f64; 2],
    /// Weight of `x`.
    pub theta: f64,
    /// `f(θx + (1−θ)y)`.
    pub value_between: f64,
    /// `θf(x) + (1−θ)f(y)`.
    pub chord: f64,
    /// `value_between − chord` (> 0).
    pub violation: f64,
}

/// A point where the Hessian has a negative eigenvalue.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HessianWitness {
    /// Where.
    pub at: [f64; 2],
    /// The smaller eigenvalue (< 0).
    pub eigenvalue: f64,
}

/// The outcome of [`check_convexity`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConvexityReport {
    /// The function's name.
    pub function: String,
    /// The window sampled, `[[x0, x1], [y0, y1]]`.
    pub window: [[f64; 2]; 2],
    /// Pairs tested.
    pub pairs: usize,
    /// Hessians tested.
    pub hessians: usize,
    /// No counterexample was found.
    pub convex: bool,
    /// The smallest Hessian eigenvalue seen.
    pub smallest_eigenvalue: f64,
    /// Where it was seen.
    pub smallest_eigenvalue_at: [f64; 2],
    /// The largest relative violation of Jensen's inequality, if any pair violated it.
    pub jensen_witness: Option<JensenWitness>,
    /// The most negative eigenvalue, if any was negative.
    pub hessian_witness: Option<HessianWitness>,
}

impl ConvexityReport {
    /// The verdict in one line: "convex on the window (2000 pairs, 500
    /// Hessians, smallest eigenvalue 2)" or "not convex: …" with a witness.
    pub fn verdict(&self) -> String {
        if self.convex {
            return format!(
                "convex on the window ({} pairs, {} Hessians, smallest eigenvalue {} at {})",
                self.pairs,
                self.hessians,
                fmt_num(self.smallest_eigenvalue),
                fmt_point(self.smallest_eigenvalue_at)
            );
        }
        let mut parts = Vec::new();
        if let Some(w) = &self.jensen_witness {
            parts.push(format!(
                "Jensen's inequality fails for x = {}, y = {}, θ = {}: f(θx + (1−θ)y) = {} > θf(x) + (1−θ)f(y) = {} (by {})",
                fmt_point(w.x),
                fmt_point(w.y),
                fmt_num(w.theta),
                fmt_num(w.value_between),
                fmt_num(w.chord),
                fmt_num(w.violation)
            ));
        }
        if let Some(w) = &self.hessian_witness {
            parts.push(format!(
                "the Hessian at {} has the negative eigenvalue {}",
                fmt_point(w.at),
                fmt_num(w.eigenvalue)
            ));
        }
        format!("not convex: {}", parts.join("; "))
    }
}

/// Tests the named 2-D function for convexity on its window (see
/// [`functions::function`] for `condition`).
pub fn check_function(
    name: &str,
    condition: Option<f64>,
    settings: &ConvexitySettings,
) -> Result<ConvexityReport> {
    // The function is named by --convexity here, not --function.
    let problem = functions::function(name, condition).map_err(|e| match e {
        LandscapeError::Setting {
            name: "--function",
            message,
        } => LandscapeError::setting("--convexity", message),
        other => other,
    })?;
    check_convexity(&*problem, settings)
}

/// Tests a 2-D problem for convexity on its window: Jensen's inequality on
/// `pairs` uniformly random pairs and weights, and the Hessian's eigenvalues
/// (closed form for 2×2) at `hessians` uniformly random points.
pub fn check_convexity(problem: &dyn Problem, s: &ConvexitySettings) -> Result<ConvexityReport> {
    if problem.dim() != 2 {
        return Err(LandscapeError::setting(
            "--convexity",
            format!(
                "`{}` has {} dimensions; expected 2",
                problem.name(),
                problem.dim()
            ),
        ));
    }
    if s.pairs == 0 || s.hessians == 0 {
        return Err(LandscapeError::setting(
            "--convexity",
            "expected at least one pair and one Hessian to test",
        ));
    }
    if !(s.rel_tolerance.is_finite() && s.rel_tolerance >= 0.0) {
        return Err(LandscapeError::setting(
            "--convexity",
            format!(
                "tolerance {} is invalid: expected a finite number >= 0",
                s.rel_tolerance
            ),
        ));
    }
    let w = problem.window();
    let window = [[w[0].0, w[0].1], [w[1].0, w[1].1]];
    let mut rng = Rng::new(s.seed);
    let point = |rng: &mut Rng| {
        [
            w[0].0 + (w[0].1 - w[0].0) * rng.uniform(),
            w[1].0 + (w[1].1 - w[1].0) * rng.uniform(),
        ]
    };

    let mut jensen: Option<(f64, JensenWitness)> = None;
    for _ in 0..s.pairs {
        let (x, y) = (point(&mut rng), point(&mut rng));
        let theta = rng.uniform();
        let z = [
            theta * x[0] + (1.0 - theta) * y[0],
            theta * x[1] + (1.0 - theta) * y[1],
        ];
        let (fx, fy, fz) = (problem.value(&x), problem.value(&y), problem.value(&z));
        let chord = theta * fx + (1.0 - theta) * fy;
        let scale = 1f64.max(fx.abs()).max(fy.abs());
        let violation = fz - chord;
        if violation > s.rel_tolerance * scale {
            let relative = violation / scale;
            if jensen.as_ref().is_none_or(|(r, _)| relative > *r) {
                jensen = Some((
                    relative,
                    JensenWitness {
                        x,
                        y,
                        theta,
                        value_between: fz,
                        chord,
                        violation,
                    },
                ));
            }
        }
    }

    let mut smallest = (f64::INFINITY, [0.0; 2]);
    let mut hessian: Option<HessianWitness> = None;
    let mut h = [0.0; 4];
    for _ in 0..s.hessians {
        let at = point(&mut rng);
        problem.hessian(&at, &mut h);
        let (lo, hi) = eigenvalues_2x2(h[0], 0.5 * (h[1] + h[2]), h[3]);
        if lo < smallest.0 {
            smallest = (lo, at);
        }
        if lo < -s.rel_tolerance * 1f64.max(lo.abs()).max(hi.abs())
            && hessian.as_ref().is_none_or(|w| lo < w.eigenvalue)
        {
            hessian = Some(HessianWitness { at, eigenvalue: lo });
        }
    }
    Ok(ConvexityReport {
        function: problem.name(),
        window,
        pairs: s.pairs,
        hessians: s.hessians,
        convex: jensen.is_none() && hessian.is_none(),
        smallest_eigenvalue: smallest.0,
        smallest_eigenvalue_at: smallest.1,
        jensen_witness: jensen.map(|(_, w)| w),
        hessian_witness: hessian,
    })
}

/// A midpoint-convexity failure along a line: `f(a_mid) > (f(a_lo) + f(a_hi))/2`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MidpointWitness {
    /// Left end.
    pub lo: f64,
    /// Midpoint.
    pub mid: f64,
    /// Right end.
    pub hi: f64,
    /// `f(mid)`.
    pub value_mid: f64,
    /// `(f(lo) + f(hi)) / 2`.
    pub chord: f64,
    /// `value_mid − chord` (> 0).
    pub violation: f64,
}

/// Midpoint convexity of values sampled at evenly spaced positions along a
/// line: every triple `(i − k, i, i + k)` must satisfy
/// `f(i) ≤ (f(i−k) + f(i+k))/2 + rel_tolerance · max(1, |f(i−k)|, |f(i+k)|)`.
/// Returns the largest relative violation, or `None` when there is none.
/// Non-finite values count as violations of nothing (they are skipped).
pub fn midpoint_violation(
    positions: &[f64],
    values: &[f64],
    rel_tolerance: f64,
) -> Option<MidpointWitness> {
    let n = values.len().min(positions.len());
    let mut worst: Option<(f64, MidpointWitness)> = None;
    for i in 1..n.saturating_sub(1) {
        for k in 1..=i.min(n - 1 - i) {
            let (a, m, b) = (values[i - k], values[i], values[i + k]);
            if !(a.is_finite() && m.is_finite() && b.is_finite()) {
                continue;
            }
            let chord = 0.5 * (a + b);
            let scale = 1f64.max(a.abs()).max(b.abs());
            let violation = m - chord;
            if violation > rel_tolerance * scale {
                let relative = violation / scale;
                if worst.as_ref().is_none_or(|(r, _)| relative > *r) {
                    worst = Some((
                        relative,
                        MidpointWitness {
                            lo: positions[i - k],
                            mid: positions[i],
                            hi: positions[i + k],
                            value_mid: m,
                            chord,
                            violation,
                        },
                    ));
                }
            }
        }
    }
    worst.map(|(_, w)| w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midpoint_test_on_known_curves() {
        let xs: Vec<f64> = (0..21).map(|i| -1.0 + 0.1 * i as f64).collect();
        let convex: Vec<f64> = xs.iter().map(|x| x * x + (2.0 * x).exp()).collect();
        assert!(midpoint_violation(&xs, &convex, 1e-12).is_none());
        let wavy: Vec<f64> = xs.iter().map(|x| (3.0 * x).cos()).collect();
        let w = midpoint_violation(&xs, &wavy, 1e-12).unwrap();
        assert!(w.violation > 0.0);
        assert!((w.mid - 0.5 * (w.lo + w.hi)).abs() < 1e-12);
        assert!(((3.0 * w.mid).cos() - w.value_mid).abs() < 1e-12);
        // A straight line is convex: rounding stays inside the allowance.
        let line: Vec<f64> = xs.iter().map(|x| 0.3 * x + 0.1).collect();
        assert!(midpoint_violation(&xs, &line, 1e-12).is_none());
    }

    #[test]
    fn settings_are_checked() {
        let s = ConvexitySettings {
            pairs: 0,
            ..Default::default()
        };
        let e = check_function("booth", None, &s).unwrap_err().to_string();
        assert!(e.contains("at least one pair"), "{e}");
        let e = check_function("nope", None, &ConvexitySettings::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--convexity: unknown function `nope`"), "{e}");
    }
}
