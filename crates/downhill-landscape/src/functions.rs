//! The 2-D test functions by name, with their formulas for picture titles.

use crate::error::{LandscapeError, Result};
use downhill::problems::{self, PointKind, Problem, Quadratic, Stationary};

/// The functions [`function`] accepts: the eight of `downhill landscape`'s
/// contract and `logistic` (an L2-regularised logistic regression on 200
/// generated points, convex), all in two dimensions.
pub const FUNCTIONS: &[&str] = problems::PROBLEMS;

/// The quadratic's condition number when none is given.
pub const DEFAULT_CONDITION: f64 = 10.0;

/// The 2-D function `name`. `condition` sets the quadratic's condition number
/// κ ≥ 1 (default [`DEFAULT_CONDITION`]); it is an error for other functions,
/// so that a flag never silently does nothing.
pub fn function(name: &str, condition: Option<f64>) -> Result<Box<dyn Problem>> {
    if !FUNCTIONS.contains(&name) {
        return Err(LandscapeError::setting(
            "--function",
            format!(
                "unknown function `{name}`; expected one of {}",
                FUNCTIONS.join(", ")
            ),
        ));
    }
    if let Some(k) = condition {
        if name != "quadratic" {
            return Err(LandscapeError::setting(
                "--condition",
                format!("applies only to the quadratic, not to `{name}`"),
            ));
        }
        if !(k.is_finite() && k >= 1.0) {
            return Err(LandscapeError::setting(
                "--condition",
                format!("{k} is invalid: expected a finite condition number >= 1"),
            ));
        }
        return Ok(Box::new(Quadratic::new(2, k)));
    }
    problems::by_name(name, 2).ok_or_else(|| {
        LandscapeError::setting(
            "--function",
            format!("`{name}` is not available in two dimensions"),
        )
    })
}

/// A title for pictures: the function's name and formula.
pub fn title(problem: &dyn Problem) -> String {
    match problem.name().as_str() {
        "quadratic" => {
            let k = quadratic_condition(problem);
            format!(
                "Quadratic bowl ½(x² + {}·y²), κ = {}",
                fmt_num(k),
                fmt_num(k)
            )
        }
        "rosenbrock" => "Rosenbrock (1 − x)² + 100·(y − x²)²".into(),
        "beale" => "Beale (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²".into(),
        "booth" => "Booth (x + 2y − 7)² + (2x + y − 5)²".into(),
        "himmelblau" => "Himmelblau (x² + y − 11)² + (x + y² − 7)²".into(),
        "saddle" => "Saddle x² − y²".into(),
        "monkey-saddle" => "Monkey saddle x³ − 3xy²".into(),
        "rastrigin" => "Rastrigin 20 + x² + y² − 10·(cos 2πx + cos 2πy)".into(),
        "logistic" => "Logistic regression (200 points, λ = 0.01)".into(),
        other => other.to_string(),
    }
}

/// The quadratic's condition number, recovered from its Hessian.
fn quadratic_condition(problem: &dyn Problem) -> f64 {
    let mut h = [0.0; 4];
    problem.hessian(&[0.0, 0.0], &mut h);
    h[3] / h[0]
}

/// A short number for titles and reports: up to 4 significant digits,
/// without trailing zeros.
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if !(1e-3..1e5).contains(&a) {
        // 1.500e-7 → 1.5e-7: a mantissa without trailing zeros.
        let s = format!("{x:.3e}");
        return match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        };
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A point as `(x, y)` with [`fmt_num`] coordinates.
pub fn fmt_point(p: [f64; 2]) -> String {
    format!("({}, {})", fmt_num(p[0]), fmt_num(p[1]))
}

/// Whether the function is unbounded below (a saddle without minima).
pub fn unbounded(problem: &dyn Problem) -> bool {
    problem.min_value().is_none()
}

/// The problem's known stationary points of one kind.
pub fn points_of(problem: &dyn Problem, kind: PointKind) -> Vec<Stationary> {
    problem
        .stationary_points()
        .into_iter()
        .filter(|s| s.kind == kind)
        .collect()
}

/// Eigenvalues of the symmetric 2×2 matrix `[a b; b d]`, smaller first.
pub fn eigenvalues_2x2(a: f64, b: f64, d: f64) -> (f64, f64) {
    let mean = 0.5 * (a + d);
    let r = (0.25 * (a - d) * (a - d) + b * b).sqrt();
    (mean - r, mean + r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(10.0), "10");
        assert_eq!(fmt_num(-1.2), "-1.2");
        assert_eq!(fmt_num(0.001), "0.001");
        assert_eq!(fmt_num(1e-7), "1e-7");
        assert_eq!(fmt_num(1.25e-9), "1.25e-9");
        assert_eq!(fmt_num(2.5e14), "2.5e14");
        assert_eq!(fmt_num(1.23456789), "1.235");
        assert_eq!(fmt_num(-0.00001), "-1e-5");
        assert_eq!(fmt_point([1.0, -3.0]), "(1, -3)");
    }

    #[test]
    fn eigenvalues_of_known_matrices() {
        assert_eq!(eigenvalues_2x2(2.0, 0.0, -2.0), (-2.0, 2.0));
        let (lo, hi) = eigenvalues_2x2(10.0, 8.0, 10.0);
        assert!((lo - 2.0).abs() < 1e-12 && (hi - 18.0).abs() < 1e-12);
    }

    fn error_of(r: Result<Box<dyn Problem>>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(p) => panic!("expected an error, got `{}`", p.name()),
        }
    }

    #[test]
    fn names_and_condition() {
        for name in FUNCTIONS {
            let p = function(name, None).unwrap();
            assert_eq!(p.dim(), 2, "{name}");
            assert_eq!(p.name(), *name);
        }
        let q = function("quadratic", Some(100.0)).unwrap();
        assert!(title(&*q).contains("κ = 100"), "{}", title(&*q));
        let e = error_of(function("booth", Some(3.0)));
        assert!(
            e.starts_with("--condition") && e.contains("quadratic"),
            "{e}"
        );
        let e = error_of(function("quadratic", Some(0.5)));
        assert!(e.contains(">= 1"), "{e}");
        let e = error_of(function("parabola", None));
        assert!(
            e.contains("unknown function `parabola`") && e.contains("himmelblau"),
            "{e}"
        );
    }
}
