//! Choosing contour levels.

use crate::axis;
use crate::error::PlotError;
use crate::grid::Grid;

/// How the values of a [`ContourPlot`](crate::ContourPlot) are cut into bands.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Levels {
    /// Chosen from the data: [`Levels::AboveMinimum`] when the smallest value
    /// lies inside the window (a function with a minimum) or the values are
    /// strongly skewed towards it; [`Levels::Symmetric`] when values change
    /// sign (saddles); [`Levels::Linear`] otherwise.
    #[default]
    Auto,
    /// Log-spaced distances above the minimum (1, 2, 5 × 10ᵏ and similar), so
    /// that a narrow valley such as Rosenbrock's stays visible next to walls
    /// thousands of times higher.
    AboveMinimum,
    /// Evenly spaced and symmetric about zero, zero included; paired with the
    /// diverging colour map.
    Symmetric,
    /// Evenly spaced round values between the minimum and the maximum.
    Linear,
    /// These values (sorted; non-finite values and duplicates dropped).
    Explicit(Vec<f64>),
}

/// Levels ready for drawing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    /// Strictly increasing.
    pub values: Vec<f64>,
    /// Levels are symmetric about zero (diverging colours suit them).
    pub symmetric: bool,
}

/// Largest number of levels drawn by the automatic choices.
const MAX_LEVELS: usize = 20;

pub(crate) fn resolve(levels: &Levels, grid: &Grid) -> Result<Resolved, PlotError> {
    let (lo, hi) = grid.finite_range().ok_or(PlotError::NoFiniteValues)?;
    let kind = match levels {
        Levels::Explicit(v) => {
            let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            if v.is_empty() {
                return Err(PlotError::InvalidLevels(
                    "no finite level given; expected at least one finite value".into(),
                ));
            }
            let symmetric = v.len() > 1
                && v.iter()
                    .zip(v.iter().rev())
                    .all(|(a, b)| (a + b).abs() <= 1e-9 * a.abs().max(1e-300));
            return Ok(Resolved {
                values: v,
                symmetric,
            });
        }
        Levels::Auto => {
            if grid.min_is_interior() {
                Levels::AboveMinimum
            } else if lo < 0.0 && hi > 0.0 {
                Levels::Symmetric
            } else if skewed(grid, lo, hi) {
                Levels::AboveMinimum
            } else {
                Levels::Linear
            }
        }
        other => other.clone(),
    };
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE) {
        // A flat field: one level at its value.
        return Ok(Resolved {
            values: vec![lo],
            symmetric: false,
        });
    }
    Ok(match kind {
        Levels::AboveMinimum => above_minimum(grid, lo, hi).unwrap_or_else(|| linear(lo, hi)),
        Levels::Symmetric => symmetric(lo, hi),
        _ => linear(lo, hi),
    })
}

/// Whether most values crowd near the minimum (median below 5% of the range).
fn skewed(grid: &Grid, lo: f64, hi: f64) -> bool {
    let mut v: Vec<f64> = grid
        .values()
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let mid = v.len() / 2;
    let (_, median, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    (*median - lo) < 0.05 * (hi - lo)
}

fn linear(lo: f64, hi: f64) -> Resolved {
    let values: Vec<f64> = axis::linear_ticks(lo, hi, 12)
        .into_iter()
        .map(|t| t.value)
        .filter(|v| *v > lo && *v < hi)
        .collect();
    Resolved {
        values: if values.is_empty() {
            vec![0.5 * (lo + hi)]
        } else {
            values
        },
        symmetric: false,
    }
}

fn symmetric(lo: f64, hi: f64) -> Resolved {
    let m = lo.abs().max(hi.abs());
    let step = axis::nice_step(2.0 * m / 16.0);
    let k = (m / step).floor().max(1.0) as i64;
    Resolved {
        values: (-k..=k).map(|i| i as f64 * step).collect(),
        symmetric: true,
    }
}

/// Log-spaced offsets above a round base at or below the minimum.
fn above_minimum(grid: &Grid, lo: f64, hi: f64) -> Option<Resolved> {
    let mut d: Vec<f64> = grid
        .values()
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v - lo)
        .filter(|v| *v > 0.0)
        .collect();
    if d.is_empty() {
        return None;
    }
    // The 1% quantile: a level that outlines the bottom of the valley.
    let q = ((d.len() as f64 * 0.01) as usize).min(d.len() - 1);
    let (_, d_q, _) = d.select_nth_unstable_by(q, f64::total_cmp);
    let d_lo = d_q.max((hi - lo) * 1e-6);
    // Round the base to the first level's precision so labels stay short
    // (a grid minimum of 1.3e-4 with levels from 0.2 uses base 0).
    let precision = 10f64.powf(d_lo.log10().floor());
    let base = (lo / precision).floor() * precision;
    let d_hi = hi - base;
    if d_hi / d_lo < 10.0 {
        return None;
    }
    let (e0, e1) = (d_lo.log10().floor() as i32, d_hi.log10().ceil() as i32);
    let candidates = |mantissas: &[f64], every: i32| -> Vec<f64> {
        let mut out = Vec::new();
        for e in e0..=e1 {
            if (e - e0) % every != 0 {
                continue;
            }
            for m in mantissas {
                let v = m * 10f64.powi(e);
                if v >= d_lo * (1.0 - 1e-9) && v < d_hi {
                    out.push(base + v);
                }
            }
        }
        out
    };
    let fine = [1.0, 1.5, 2.0, 3.0, 5.0, 7.0];
    let mut pick = candidates(&fine, 1);
    for (m, every) in [
        (&[1.0, 2.0, 5.0][..], 1),
        (&[1.0][..], 1),
        (&[1.0][..], 2),
        (&[1.0][..], 3),
        (&[1.0][..], 5),
    ] {
        if pick.len() <= MAX_LEVELS {
            break;
        }
        pick = candidates(m, every);
    }
    pick.dedup();
    (pick.len() >= 2).then_some(Resolved {
        values: pick,
        symmetric: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: f64, y: f64) -> f64 {
        (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
    }

    #[test]
    fn rosenbrock_gets_log_levels_from_the_valley_up() {
        let g = Grid::sample((-2.0, 2.0), (-1.0, 3.0), 200, 200, rosenbrock).unwrap();
        let r = resolve(&Levels::Auto, &g).unwrap();
        assert!(!r.symmetric);
        let v = &r.values;
        assert!(v.len() >= 8 && v.len() <= MAX_LEVELS, "{v:?}");
        assert!(
            v[0] > 0.0 && v[0] < 2.0,
            "first level outlines the valley: {v:?}"
        );
        assert!(*v.last().unwrap() > 500.0, "{v:?}");
        // Log-spaced: successive ratios, not differences, stay bounded.
        assert!(v.windows(2).all(|w| w[1] > w[0] && w[1] / w[0] <= 3.0));
    }

    #[test]
    fn saddle_gets_symmetric_levels_with_zero() {
        let g = Grid::sample((-2.0, 2.0), (-2.0, 2.0), 101, 101, |x, y| x * x - y * y).unwrap();
        let r = resolve(&Levels::Auto, &g).unwrap();
        assert!(r.symmetric);
        assert!(r.values.contains(&0.0));
        let n = r.values.len();
        for i in 0..n {
            assert!((r.values[i] + r.values[n - 1 - i]).abs() < 1e-12);
        }
    }

    #[test]
    fn plane_gets_linear_levels() {
        let g = Grid::sample((0.0, 1.0), (0.0, 1.0), 11, 11, |x, y| 1.0 + x + y).unwrap();
        let r = resolve(&Levels::Auto, &g).unwrap();
        let steps: Vec<f64> = r.values.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            steps.iter().all(|s| (s - steps[0]).abs() < 1e-9),
            "{:?}",
            r.values
        );
        assert!(r.values.iter().all(|v| *v > 1.0 && *v < 3.0));
    }

    #[test]
    fn flat_field_and_explicit_levels() {
        let g = Grid::sample((0.0, 1.0), (0.0, 1.0), 5, 5, |_, _| 7.0).unwrap();
        assert_eq!(resolve(&Levels::Auto, &g).unwrap().values, vec![7.0]);
        let r = resolve(&Levels::Explicit(vec![3.0, f64::NAN, 1.0, 3.0]), &g).unwrap();
        assert_eq!(r.values, vec![1.0, 3.0]);
        assert!(matches!(
            resolve(&Levels::Explicit(vec![f64::NAN]), &g),
            Err(PlotError::InvalidLevels(_))
        ));
        let nan = Grid::sample((0.0, 1.0), (0.0, 1.0), 5, 5, |_, _| f64::NAN).unwrap();
        assert!(matches!(
            resolve(&Levels::Auto, &nan),
            Err(PlotError::NoFiniteValues)
        ));
    }
}
