//! Values of a function of two variables on a regular grid.

use crate::error::PlotError;

/// Largest number of grid points accepted (about 4000 × 4000).
const MAX_POINTS: usize = 16_000_000;

/// Values `f(x, y)` on an `nx × ny` grid of evenly spaced points covering
/// `x_range × y_range`, ends included.
///
/// `values[j * nx + i]` is the value at `x_i = x0 + i·(x1 − x0)/(nx − 1)`,
/// `y_j = y0 + j·(y1 − y0)/(ny − 1)`: rows run along x, starting at the
/// bottom (smallest y). Non-finite values are allowed and drawn as gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    nx: usize,
    ny: usize,
    x_range: (f64, f64),
    y_range: (f64, f64),
    values: Vec<f64>,
}

fn check_axis(what: &'static str, r: (f64, f64)) -> Result<(), PlotError> {
    if r.0.is_finite() && r.1.is_finite() && r.0 < r.1 && (r.1 - r.0).is_finite() {
        Ok(())
    } else {
        Err(PlotError::InvalidRange {
            what,
            lo: r.0,
            hi: r.1,
            expected: "expected finite numbers with lo < hi",
        })
    }
}

fn check_shape(nx: usize, ny: usize) -> Result<(), PlotError> {
    if nx < 2 || ny < 2 {
        return Err(PlotError::InvalidGrid(format!(
            "{nx}x{ny} points; expected at least 2 points along each axis"
        )));
    }
    if nx.checked_mul(ny).is_none_or(|n| n > MAX_POINTS) {
        return Err(PlotError::InvalidGrid(format!(
            "{nx}x{ny} points; expected at most {MAX_POINTS} points in all"
        )));
    }
    Ok(())
}

impl Grid {
    /// A grid from precomputed values (layout described on [`Grid`]).
    pub fn new(
        x_range: (f64, f64),
        y_range: (f64, f64),
        nx: usize,
        ny: usize,
        values: Vec<f64>,
    ) -> Result<Grid, PlotError> {
        check_axis("x range of the grid", x_range)?;
        check_axis("y range of the grid", y_range)?;
        check_shape(nx, ny)?;
        if values.len() != nx * ny {
            return Err(PlotError::InvalidGrid(format!(
                "{} values for a {nx}x{ny} grid; expected {}",
                values.len(),
                nx * ny
            )));
        }
        Ok(Grid {
            nx,
            ny,
            x_range,
            y_range,
            values,
        })
    }

    /// Samples `f` at every grid point.
    pub fn sample(
        x_range: (f64, f64),
        y_range: (f64, f64),
        nx: usize,
        ny: usize,
        mut f: impl FnMut(f64, f64) -> f64,
    ) -> Result<Grid, PlotError> {
        check_axis("x range of the grid", x_range)?;
        check_axis("y range of the grid", y_range)?;
        check_shape(nx, ny)?;
        let mut values = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            let y = coord(y_range, ny, j);
            for i in 0..nx {
                values.push(f(coord(x_range, nx, i), y));
            }
        }
        Grid::new(x_range, y_range, nx, ny, values)
    }

    /// Points along x.
    pub fn nx(&self) -> usize {
        self.nx
    }

    /// Points along y.
    pub fn ny(&self) -> usize {
        self.ny
    }

    /// The x interval covered.
    pub fn x_range(&self) -> (f64, f64) {
        self.x_range
    }

    /// The y interval covered.
    pub fn y_range(&self) -> (f64, f64) {
        self.y_range
    }

    /// All values, row by row (see [`Grid`]).
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The value at grid point `(i, j)`, or `None` outside the grid.
    pub fn get(&self, i: usize, j: usize) -> Option<f64> {
        (i < self.nx && j < self.ny).then(|| self.values[j * self.nx + i])
    }

    /// Smallest and largest finite value, or `None` when there is none.
    pub fn finite_range(&self) -> Option<(f64, f64)> {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for &v in self.values.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        lo.is_finite().then_some((lo, hi))
    }

    /// Bilinear interpolation at fractional grid coordinates `(gx, gy)`
    /// (0..nx−1, 0..ny−1); corners that are not finite are ignored, and the
    /// result is NaN only when all four are.
    pub(crate) fn interpolate(&self, gx: f64, gy: f64) -> f64 {
        let gx = gx.clamp(0.0, (self.nx - 1) as f64);
        let gy = gy.clamp(0.0, (self.ny - 1) as f64);
        let i = (gx.floor() as usize).min(self.nx - 2);
        let j = (gy.floor() as usize).min(self.ny - 2);
        let (fx, fy) = (gx - i as f64, gy - j as f64);
        let corners = [
            (self.values[j * self.nx + i], (1.0 - fx) * (1.0 - fy)),
            (self.values[j * self.nx + i + 1], fx * (1.0 - fy)),
            (self.values[(j + 1) * self.nx + i], (1.0 - fx) * fy),
            (self.values[(j + 1) * self.nx + i + 1], fx * fy),
        ];
        let mut sum = 0.0;
        let mut weight = 0.0;
        for (v, w) in corners {
            if v.is_finite() {
                sum += v * w;
                weight += w;
            }
        }
        if weight > 1e-12 {
            sum / weight
        } else {
            // Only zero-weight corners are finite: take the nearest finite one.
            corners
                .iter()
                .filter(|c| c.0.is_finite())
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(f64::NAN, |c| c.0)
        }
    }

    /// Whether the smallest finite value lies away from the grid's border,
    /// which suggests a function with a minimum inside the plotted window.
    pub(crate) fn min_is_interior(&self) -> bool {
        let mut best = (f64::INFINITY, 0usize, 0usize);
        for j in 0..self.ny {
            for i in 0..self.nx {
                let v = self.values[j * self.nx + i];
                if v < best.0 {
                    best = (v, i, j);
                }
            }
        }
        let (_, i, j) = best;
        best.0.is_finite() && i > 0 && j > 0 && i + 1 < self.nx && j + 1 < self.ny
    }
}

/// Coordinate of point `k` of `n` evenly spaced over `r`, ends exact.
pub(crate) fn coord(r: (f64, f64), n: usize, k: usize) -> f64 {
    if k + 1 == n {
        r.1
    } else {
        r.0 + (r.1 - r.0) * k as f64 / (n - 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lays_out_rows_along_x_from_the_bottom() {
        let g = Grid::sample((0.0, 2.0), (10.0, 11.0), 3, 2, |x, y| x + 100.0 * y).unwrap();
        assert_eq!(
            g.values(),
            &[1000.0, 1001.0, 1002.0, 1100.0, 1101.0, 1102.0]
        );
        assert_eq!(g.get(2, 1), Some(1102.0));
        assert_eq!(g.get(3, 0), None);
    }

    #[test]
    fn bad_shapes_and_ranges_are_errors() {
        assert!(Grid::new((0.0, 1.0), (0.0, 1.0), 2, 2, vec![0.0; 3]).is_err());
        assert!(Grid::new((0.0, 1.0), (0.0, 1.0), 1, 2, vec![0.0; 2]).is_err());
        assert!(Grid::new((1.0, 1.0), (0.0, 1.0), 2, 2, vec![0.0; 4]).is_err());
        assert!(Grid::new((0.0, f64::NAN), (0.0, 1.0), 2, 2, vec![0.0; 4]).is_err());
        assert!(Grid::sample((0.0, 1.0), (0.0, 1.0), usize::MAX, 2, |_, _| 0.0).is_err());
        let e = Grid::new((0.0, 1.0), (0.0, 1.0), 2, 2, vec![0.0; 3]).unwrap_err();
        assert!(e.to_string().contains("expected 4"), "{e}");
    }

    #[test]
    fn interpolation_is_bilinear_and_skips_gaps() {
        let g = Grid::new((0.0, 1.0), (0.0, 1.0), 2, 2, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        assert!((g.interpolate(0.5, 0.5) - 1.5).abs() < 1e-12);
        assert_eq!(g.interpolate(1.0, 1.0), 3.0);
        let g = Grid::new((0.0, 1.0), (0.0, 1.0), 2, 2, vec![f64::NAN, 1.0, 1.0, 1.0]).unwrap();
        assert_eq!(g.interpolate(0.2, 0.2), 1.0);
        let g = Grid::new((0.0, 1.0), (0.0, 1.0), 2, 2, vec![f64::NAN; 4]).unwrap();
        assert!(g.interpolate(0.2, 0.2).is_nan());
        assert_eq!(g.finite_range(), None);
    }

    #[test]
    fn interior_minimum_detection() {
        let bowl = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 21, 21, |x, y| x * x + y * y).unwrap();
        assert!(bowl.min_is_interior());
        let saddle = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 21, 21, |x, y| x * x - y * y).unwrap();
        assert!(!saddle.min_is_interior());
    }
}
