//! Test functions for optimisers: value, gradient, Hessian, known stationary
//! points and a conventional start, for the convex bowls, ravines, saddles
//! and many-minima landscapes that show how optimisers behave.

use crate::Rng;
use std::f64::consts::PI;

/// What kind of stationary point (∇f = 0) a point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointKind {
    /// A local (or global) minimum.
    Minimum,
    /// A saddle point.
    Saddle,
    /// A local maximum.
    Maximum,
}

/// A known stationary point.
#[derive(Clone, Debug, PartialEq)]
pub struct Stationary {
    /// Where.
    pub x: Vec<f64>,
    /// f(x).
    pub value: f64,
    /// Minimum, saddle or maximum.
    pub kind: PointKind,
}

/// An objective `f: ℝⁿ → ℝ` with derivatives.
pub trait Problem: Send + Sync {
    /// Short name, as the CLI spells it.
    fn name(&self) -> String;
    /// Dimension n.
    fn dim(&self) -> usize;
    /// f(x).
    fn value(&self, x: &[f64]) -> f64;
    /// Writes ∇f(x) into `g` and returns f(x).
    fn gradient(&self, x: &[f64], g: &mut [f64]) -> f64;
    /// Writes the Hessian ∇²f(x) into `h` (row-major n×n).
    fn hessian(&self, x: &[f64], h: &mut [f64]);
    /// The conventional starting point.
    fn start(&self) -> Vec<f64>;
    /// Known stationary points (minima first). Empty minima with a saddle
    /// means the function is unbounded below.
    fn stationary_points(&self) -> Vec<Stationary>;
    /// A window that shows the interesting part, for 2-D pictures.
    fn window(&self) -> [(f64, f64); 2] {
        [(-5.0, 5.0), (-5.0, 5.0)]
    }
    /// Whether the function is convex everywhere (a known fact, for tests and
    /// for checking the numerical convexity test).
    fn convex(&self) -> bool;
    /// The lowest known value, if the function is bounded below.
    fn min_value(&self) -> Option<f64> {
        self.stationary_points()
            .iter()
            .filter(|s| s.kind == PointKind::Minimum)
            .map(|s| s.value)
            .reduce(f64::min)
    }
}

/// The names [`by_name`] accepts.
pub const PROBLEMS: &[&str] = &[
    "quadratic",
    "rosenbrock",
    "beale",
    "booth",
    "himmelblau",
    "saddle",
    "monkey-saddle",
    "rastrigin",
    "logistic",
];

/// A 2-D (or `dim`-D where it applies) problem by name.
pub fn by_name(name: &str, dim: usize) -> Option<Box<dyn Problem>> {
    Some(match name {
        "quadratic" => Box::new(Quadratic::new(dim, 10.0)),
        "rosenbrock" => Box::new(Rosenbrock::new(dim)),
        "beale" => Box::new(Beale),
        "booth" => Box::new(Booth),
        "himmelblau" => Box::new(Himmelblau::new()),
        "saddle" => Box::new(Saddle),
        "monkey-saddle" => Box::new(MonkeySaddle),
        "rastrigin" => Box::new(Rastrigin::new(dim)),
        "logistic" => Box::new(LogisticRegression::new(200, dim, 0.01, 7)),
        _ => return None,
    })
}

fn minimum(x: Vec<f64>, value: f64) -> Stationary {
    Stationary {
        x,
        value,
        kind: PointKind::Minimum,
    }
}

/// Convex quadratic `f(x) = ½ Σ λᵢ xᵢ²` with eigenvalues spaced geometrically
/// from 1 to the condition number κ: a round bowl for κ = 1, a narrow ravine
/// for large κ, where gradient descent zig-zags and momentum helps.
#[derive(Clone, Debug)]
pub struct Quadratic {
    eigenvalues: Vec<f64>,
}

impl Quadratic {
    /// `dim` ≥ 1 dimensions, condition number `condition` ≥ 1.
    pub fn new(dim: usize, condition: f64) -> Self {
        let dim = dim.max(1);
        let eigenvalues = (0..dim)
            .map(|i| {
                if dim == 1 {
                    1.0
                } else {
                    condition.powf(i as f64 / (dim - 1) as f64)
                }
            })
            .collect();
        Quadratic { eigenvalues }
    }

    /// The condition number λ_max / λ_min.
    pub fn condition(&self) -> f64 {
        self.eigenvalues.last().copied().unwrap_or(1.0) / self.eigenvalues[0]
    }
}

impl Problem for Quadratic {
    fn name(&self) -> String {
        "quadratic".into()
    }
    fn dim(&self) -> usize {
        self.eigenvalues.len()
    }
    fn value(&self, x: &[f64]) -> f64 {
        0.5 * x
            .iter()
            .zip(&self.eigenvalues)
            .map(|(x, l)| l * x * x)
            .sum::<f64>()
    }
    fn gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
        for ((g, x), l) in g.iter_mut().zip(x).zip(&self.eigenvalues) {
            *g = l * x;
        }
        self.value(x)
    }
    fn hessian(&self, _: &[f64], h: &mut [f64]) {
        let n = self.dim();
        h.fill(0.0);
        for (i, l) in self.eigenvalues.iter().enumerate() {
            h[i * n + i] = *l;
        }
    }
    fn start(&self) -> Vec<f64> {
        (0..self.dim())
            .map(|i| if i % 2 == 0 { -4.0 } else { 2.0 })
            .collect()
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![minimum(vec![0.0; self.dim()], 0.0)]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-5.0, 5.0), (-3.0, 3.0)]
    }
    fn convex(&self) -> bool {
        true
    }
}

/// Rosenbrock's function `Σ (1 − xᵢ)² + 100 (xᵢ₊₁ − xᵢ²)²`: a curved, flat
/// valley; minimum 0 at (1, …, 1); start (−1.2, 1, −1.2, 1, …). For
/// 4 ≤ n ≤ 7 there is also a local minimum near (−1, 1, …, 1), which Newton's
/// method finds from the standard start.
#[derive(Clone, Debug)]
pub struct Rosenbrock {
    n: usize,
}

impl Rosenbrock {
    /// `n` ≥ 2 dimensions.
    pub fn new(n: usize) -> Self {
        Rosenbrock { n: n.max(2) }
    }
}

impl Problem for Rosenbrock {
    fn name(&self) -> String {
        "rosenbrock".into()
    }
    fn dim(&self) -> usize {
        self.n
    }
    fn value(&self, x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| (1.0 - w[0]).powi(2) + 100.0 * (w[1] - w[0] * w[0]).powi(2))
            .sum()
    }
    fn gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
        g.fill(0.0);
        for i in 0..self.n - 1 {
            let r = x[i + 1] - x[i] * x[i];
            g[i] += -2.0 * (1.0 - x[i]) - 400.0 * x[i] * r;
            g[i + 1] += 200.0 * r;
        }
        self.value(x)
    }
    fn hessian(&self, x: &[f64], h: &mut [f64]) {
        let n = self.n;
        h.fill(0.0);
        for i in 0..n - 1 {
            h[i * n + i] += 2.0 - 400.0 * x[i + 1] + 1200.0 * x[i] * x[i];
            h[i * n + i + 1] += -400.0 * x[i];
            h[(i + 1) * n + i] += -400.0 * x[i];
            h[(i + 1) * n + i + 1] += 200.0;
        }
    }
    fn start(&self) -> Vec<f64> {
        (0..self.n)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect()
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![minimum(vec![1.0; self.n], 0.0)]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-2.0, 2.0), (-1.0, 3.0)]
    }
    fn convex(&self) -> bool {
        false
    }
}

/// Beale's function: flat plateaus and steep ridges; minimum 0 at (3, ½).
#[derive(Clone, Copy, Debug)]
pub struct Beale;

impl Beale {
    const C: [f64; 3] = [1.5, 2.25, 2.625];
}

impl Problem for Beale {
    fn name(&self) -> String {
        "beale".into()
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, v: &[f64]) -> f64 {
        let (x, y) = (v[0], v[1]);
        (1..=3)
            .map(|k| (Self::C[k - 1] - x + x * y.powi(k as i32)).powi(2))
            .sum()
    }
    fn gradient(&self, v: &[f64], g: &mut [f64]) -> f64 {
        let (x, y) = (v[0], v[1]);
        g.fill(0.0);
        for k in 1..=3i32 {
            let r = Self::C[k as usize - 1] - x + x * y.powi(k);
            g[0] += 2.0 * r * (y.powi(k) - 1.0);
            g[1] += 2.0 * r * x * k as f64 * y.powi(k - 1);
        }
        self.value(v)
    }
    fn hessian(&self, v: &[f64], h: &mut [f64]) {
        let (x, y) = (v[0], v[1]);
        h.fill(0.0);
        for k in 1..=3i32 {
            let kf = k as f64;
            let r = Self::C[k as usize - 1] - x + x * y.powi(k);
            let rx = y.powi(k) - 1.0;
            let ry = x * kf * y.powi(k - 1);
            let rxy = kf * y.powi(k - 1);
            let ryy = if k >= 2 {
                x * kf * (kf - 1.0) * y.powi(k - 2)
            } else {
                0.0
            };
            h[0] += 2.0 * rx * rx;
            h[1] += 2.0 * (ry * rx + r * rxy);
            h[3] += 2.0 * (ry * ry + r * ryy);
        }
        h[2] = h[1];
    }
    fn start(&self) -> Vec<f64> {
        vec![1.0, 1.0]
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![minimum(vec![3.0, 0.5], 0.0)]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-4.5, 4.5), (-4.5, 4.5)]
    }
    fn convex(&self) -> bool {
        false
    }
}

/// Booth's function `(x + 2y − 7)² + (2x + y − 5)²`: a convex quadratic bowl
/// (condition number 9); minimum 0 at (1, 3).
#[derive(Clone, Copy, Debug)]
pub struct Booth;

impl Problem for Booth {
    fn name(&self) -> String {
        "booth".into()
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, v: &[f64]) -> f64 {
        (v[0] + 2.0 * v[1] - 7.0).powi(2) + (2.0 * v[0] + v[1] - 5.0).powi(2)
    }
    fn gradient(&self, v: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (v[0] + 2.0 * v[1] - 7.0, 2.0 * v[0] + v[1] - 5.0);
        g[0] = 2.0 * a + 4.0 * b;
        g[1] = 4.0 * a + 2.0 * b;
        self.value(v)
    }
    fn hessian(&self, _: &[f64], h: &mut [f64]) {
        h.copy_from_slice(&[10.0, 8.0, 8.0, 10.0]);
    }
    fn start(&self) -> Vec<f64> {
        vec![-6.0, -4.0]
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![minimum(vec![1.0, 3.0], 0.0)]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-10.0, 10.0), (-10.0, 10.0)]
    }
    fn convex(&self) -> bool {
        true
    }
}

/// Himmelblau's function `(x² + y − 11)² + (x + y² − 7)²`: four minima of
/// value 0, a maximum and four saddles; which minimum an optimiser reaches
/// depends on its path.
#[derive(Clone, Debug)]
pub struct Himmelblau {
    points: Vec<Stationary>,
}

impl Himmelblau {
    /// Locates the nine stationary points to full precision (Newton's method on
    /// the gradient from published approximations).
    pub fn new() -> Self {
        let approx = [
            ([3.0, 2.0], PointKind::Minimum),
            ([-2.805118, 3.131312], PointKind::Minimum),
            ([-3.779310, -3.283186], PointKind::Minimum),
            ([3.584428, -1.848126], PointKind::Minimum),
            ([-0.270845, -0.923039], PointKind::Maximum),
            ([0.086678, 2.884255], PointKind::Saddle),
            ([-3.073026, -0.081353], PointKind::Saddle),
            ([3.385154, 0.073852], PointKind::Saddle),
            ([-0.127961, -1.953715], PointKind::Saddle),
        ];
        let f = Himmelblau { points: Vec::new() };
        let points = approx
            .iter()
            .map(|(x0, kind)| {
                let x = refine_stationary(&f, x0);
                Stationary {
                    value: f.value(&x),
                    x,
                    kind: *kind,
                }
            })
            .collect();
        Himmelblau { points }
    }
}

impl Default for Himmelblau {
    fn default() -> Self {
        Self::new()
    }
}

/// Newton's method on ∇f = 0 in 2-D, for locating known stationary points.
fn refine_stationary(f: &dyn Problem, x0: &[f64; 2]) -> Vec<f64> {
    let mut x = x0.to_vec();
    let (mut g, mut h) = ([0.0; 2], [0.0; 4]);
    for _ in 0..50 {
        f.gradient(&x, &mut g);
        f.hessian(&x, &mut h);
        let det = h[0] * h[3] - h[1] * h[2];
        if det == 0.0 {
            break;
        }
        let dx = (h[3] * g[0] - h[1] * g[1]) / det;
        let dy = (h[0] * g[1] - h[2] * g[0]) / det;
        x[0] -= dx;
        x[1] -= dy;
        if dx.abs() + dy.abs() < 1e-15 {
            break;
        }
    }
    x
}

impl Problem for Himmelblau {
    fn name(&self) -> String {
        "himmelblau".into()
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, v: &[f64]) -> f64 {
        let (x, y) = (v[0], v[1]);
        (x * x + y - 11.0).powi(2) + (x + y * y - 7.0).powi(2)
    }
    fn gradient(&self, v: &[f64], g: &mut [f64]) -> f64 {
        let (x, y) = (v[0], v[1]);
        let (a, b) = (x * x + y - 11.0, x + y * y - 7.0);
        g[0] = 4.0 * x * a + 2.0 * b;
        g[1] = 2.0 * a + 4.0 * y * b;
        self.value(v)
    }
    fn hessian(&self, v: &[f64], h: &mut [f64]) {
        let (x, y) = (v[0], v[1]);
        h[0] = 12.0 * x * x + 4.0 * y - 42.0;
        h[1] = 4.0 * (x + y);
        h[2] = h[1];
        h[3] = 4.0 * x + 12.0 * y * y - 26.0;
    }
    fn start(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        self.points.clone()
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-5.0, 5.0), (-5.0, 5.0)]
    }
    fn convex(&self) -> bool {
        false
    }
}

/// The saddle `x² − y²`: a minimum along x, a maximum along y, unbounded
/// below. Started near the ridge y = 0, plain gradient descent lingers
/// because the escaping gradient −2y is tiny.
#[derive(Clone, Copy, Debug)]
pub struct Saddle;

impl Problem for Saddle {
    fn name(&self) -> String {
        "saddle".into()
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, v: &[f64]) -> f64 {
        v[0] * v[0] - v[1] * v[1]
    }
    fn gradient(&self, v: &[f64], g: &mut [f64]) -> f64 {
        g[0] = 2.0 * v[0];
        g[1] = -2.0 * v[1];
        self.value(v)
    }
    fn hessian(&self, _: &[f64], h: &mut [f64]) {
        h.copy_from_slice(&[2.0, 0.0, 0.0, -2.0]);
    }
    fn start(&self) -> Vec<f64> {
        vec![1.5, 1e-3]
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![Stationary {
            x: vec![0.0, 0.0],
            value: 0.0,
            kind: PointKind::Saddle,
        }]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-2.0, 2.0), (-2.0, 2.0)]
    }
    fn convex(&self) -> bool {
        false
    }
}

/// The monkey saddle `x³ − 3xy²`: a degenerate saddle (zero Hessian) at the
/// origin with three descending valleys; unbounded below.
#[derive(Clone, Copy, Debug)]
pub struct MonkeySaddle;

impl Problem for MonkeySaddle {
    fn name(&self) -> String {
        "monkey-saddle".into()
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, v: &[f64]) -> f64 {
        v[0].powi(3) - 3.0 * v[0] * v[1] * v[1]
    }
    fn gradient(&self, v: &[f64], g: &mut [f64]) -> f64 {
        g[0] = 3.0 * v[0] * v[0] - 3.0 * v[1] * v[1];
        g[1] = -6.0 * v[0] * v[1];
        self.value(v)
    }
    fn hessian(&self, v: &[f64], h: &mut [f64]) {
        h[0] = 6.0 * v[0];
        h[1] = -6.0 * v[1];
        h[2] = h[1];
        h[3] = -6.0 * v[0];
    }
    fn start(&self) -> Vec<f64> {
        vec![1.0, 0.05]
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![Stationary {
            x: vec![0.0, 0.0],
            value: 0.0,
            kind: PointKind::Saddle,
        }]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-1.5, 1.5), (-1.5, 1.5)]
    }
    fn convex(&self) -> bool {
        false
    }
}

/// Rastrigin's function `10n + Σ (xᵢ² − 10 cos 2πxᵢ)`: a bowl covered in local
/// minima near every integer point; global minimum 0 at the origin.
#[derive(Clone, Debug)]
pub struct Rastrigin {
    n: usize,
}

impl Rastrigin {
    /// `n` ≥ 1 dimensions.
    pub fn new(n: usize) -> Self {
        Rastrigin { n: n.max(1) }
    }
}

impl Problem for Rastrigin {
    fn name(&self) -> String {
        "rastrigin".into()
    }
    fn dim(&self) -> usize {
        self.n
    }
    fn value(&self, x: &[f64]) -> f64 {
        10.0 * self.n as f64
            + x.iter()
                .map(|x| x * x - 10.0 * (2.0 * PI * x).cos())
                .sum::<f64>()
    }
    fn gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
        for (g, x) in g.iter_mut().zip(x) {
            *g = 2.0 * x + 20.0 * PI * (2.0 * PI * x).sin();
        }
        self.value(x)
    }
    fn hessian(&self, x: &[f64], h: &mut [f64]) {
        let n = self.n;
        h.fill(0.0);
        for (i, x) in x.iter().enumerate() {
            h[i * n + i] = 2.0 + 40.0 * PI * PI * (2.0 * PI * x).cos();
        }
    }
    fn start(&self) -> Vec<f64> {
        (0..self.n)
            .map(|i| if i % 2 == 0 { 2.3 } else { -3.1 })
            .collect()
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![minimum(vec![0.0; self.n], 0.0)]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-5.12, 5.12), (-5.12, 5.12)]
    }
    fn convex(&self) -> bool {
        false
    }
}

/// L2-regularised logistic regression on a small generated data set:
/// `f(w) = mean log(1 + exp(−yᵢ wᵀxᵢ)) + λ/2 ‖w‖²`, strictly convex. Its
/// minimiser has no closed form; it is computed at construction by Newton's
/// method to machine precision.
#[derive(Clone, Debug)]
pub struct LogisticRegression {
    xs: Vec<f64>,
    ys: Vec<f64>,
    d: usize,
    lambda: f64,
    minimizer: Vec<f64>,
}

impl LogisticRegression {
    /// `n` examples in `d` dimensions drawn from two overlapping Gaussian
    /// clouds (seeded), with penalty `lambda` > 0.
    pub fn new(n: usize, d: usize, lambda: f64, seed: u64) -> Self {
        let (n, d) = (n.max(2), d.max(1));
        let mut rng = Rng::new(seed);
        let mut xs = Vec::with_capacity(n * d);
        let mut ys = Vec::with_capacity(n);
        for i in 0..n {
            let y = if i % 2 == 0 { 1.0 } else { -1.0 };
            for j in 0..d {
                let centre = if j == 0 { 0.8 * y } else { 0.3 * y };
                xs.push(centre + rng.normal());
            }
            ys.push(y);
        }
        let mut p = LogisticRegression {
            xs,
            ys,
            d,
            lambda: lambda.max(1e-12),
            minimizer: Vec::new(),
        };
        p.minimizer = p.solve();
        p
    }

    fn solve(&self) -> Vec<f64> {
        let d = self.d;
        let mut w = vec![0.0; d];
        let (mut g, mut h) = (vec![0.0; d], vec![0.0; d * d]);
        for _ in 0..100 {
            self.gradient(&w, &mut g);
            self.hessian(&w, &mut h);
            let step = crate::newton::solve_spd(&mut h, &g, d)
                .expect("a logistic Hessian with λ > 0 is positive definite");
            let mut change = 0.0f64;
            for (w, s) in w.iter_mut().zip(&step) {
                *w -= s;
                change = change.max(s.abs());
            }
            if change < 1e-15 {
                break;
            }
        }
        w
    }

    fn margins(&self, w: &[f64]) -> impl Iterator<Item = (&[f64], f64, f64)> + '_ {
        let w = w.to_vec();
        self.xs
            .chunks_exact(self.d)
            .zip(&self.ys)
            .map(move |(x, &y)| {
                let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
                (x, y, y * z)
            })
    }
}

/// log(1 + e^(−m)), stable for large |m|.
fn softplus_neg(m: f64) -> f64 {
    if m > 0.0 {
        (-m).exp().ln_1p()
    } else {
        -m + m.exp().ln_1p()
    }
}

/// 1 / (1 + e^m), stable.
fn sigmoid_neg(m: f64) -> f64 {
    if m > 0.0 {
        let e = (-m).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + m.exp())
    }
}

impl Problem for LogisticRegression {
    fn name(&self) -> String {
        "logistic".into()
    }
    fn dim(&self) -> usize {
        self.d
    }
    fn value(&self, w: &[f64]) -> f64 {
        let n = self.ys.len() as f64;
        let data: f64 = self
            .margins(w)
            .map(|(_, _, m)| softplus_neg(m))
            .sum::<f64>()
            / n;
        data + 0.5 * self.lambda * w.iter().map(|x| x * x).sum::<f64>()
    }
    fn gradient(&self, w: &[f64], g: &mut [f64]) -> f64 {
        let n = self.ys.len() as f64;
        for (g, w) in g.iter_mut().zip(w) {
            *g = self.lambda * w;
        }
        for (x, y, m) in self.margins(w) {
            let c = -y * sigmoid_neg(m) / n;
            for (g, x) in g.iter_mut().zip(x) {
                *g += c * x;
            }
        }
        self.value(w)
    }
    fn hessian(&self, w: &[f64], h: &mut [f64]) {
        let (n, d) = (self.ys.len() as f64, self.d);
        h.fill(0.0);
        for i in 0..d {
            h[i * d + i] = self.lambda;
        }
        for (x, _, m) in self.margins(w) {
            let s = sigmoid_neg(m);
            let c = s * (1.0 - s) / n;
            for i in 0..d {
                for j in 0..d {
                    h[i * d + j] += c * x[i] * x[j];
                }
            }
        }
    }
    fn start(&self) -> Vec<f64> {
        (0..self.d)
            .map(|i| if i % 2 == 0 { -3.0 } else { 3.0 })
            .collect()
    }
    fn stationary_points(&self) -> Vec<Stationary> {
        vec![minimum(self.minimizer.clone(), self.value(&self.minimizer))]
    }
    fn window(&self) -> [(f64, f64); 2] {
        [(-4.0, 4.0), (-4.0, 4.0)]
    }
    fn convex(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of the gradient and Hessian at a few points.
    fn check_derivatives(p: &dyn Problem) {
        let n = p.dim();
        let mut rng = Rng::new(11);
        let [(x0, x1), (y0, y1)] = p.window();
        for _ in 0..5 {
            let x: Vec<f64> = (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        x0 + (x1 - x0) * rng.uniform()
                    } else {
                        y0 + (y1 - y0) * rng.uniform()
                    }
                })
                .map(|v| v * 0.7)
                .collect();
            let mut g = vec![0.0; n];
            let f = p.gradient(&x, &mut g);
            assert!(
                (f - p.value(&x)).abs() <= 1e-12 * f.abs().max(1.0),
                "{}",
                p.name()
            );
            let mut h = vec![0.0; n * n];
            p.hessian(&x, &mut h);
            let eps = 1e-5;
            for i in 0..n {
                let mut xp = x.clone();
                let mut xm = x.clone();
                xp[i] += eps;
                xm[i] -= eps;
                let fd = (p.value(&xp) - p.value(&xm)) / (2.0 * eps);
                assert!(
                    (fd - g[i]).abs() <= 1e-6 * g[i].abs().max(1.0),
                    "{} grad[{i}]: {fd} vs {}",
                    p.name(),
                    g[i]
                );
                let (mut gp, mut gm) = (vec![0.0; n], vec![0.0; n]);
                p.gradient(&xp, &mut gp);
                p.gradient(&xm, &mut gm);
                for j in 0..n {
                    let fd = (gp[j] - gm[j]) / (2.0 * eps);
                    let an = h[j * n + i];
                    assert!(
                        (fd - an).abs() <= 1e-5 * an.abs().max(1.0),
                        "{} hess[{j},{i}]: {fd} vs {an}",
                        p.name()
                    );
                }
            }
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for name in PROBLEMS {
            for dim in [2, 5] {
                if let Some(p) = by_name(name, dim) {
                    check_derivatives(&*p);
                }
            }
        }
    }

    #[test]
    fn stationary_points_have_zero_gradient() {
        for name in PROBLEMS {
            let p = by_name(name, 2).unwrap();
            let pts = p.stationary_points();
            assert!(!pts.is_empty(), "{name}");
            for s in pts {
                let mut g = vec![0.0; p.dim()];
                let f = p.gradient(&s.x, &mut g);
                let gmax = g.iter().fold(0.0f64, |a, b| a.max(b.abs()));
                assert!(gmax < 1e-9, "{name} at {:?}: |g| = {gmax}", s.x);
                assert!((f - s.value).abs() < 1e-12, "{name}");
            }
        }
        assert_eq!(Himmelblau::new().stationary_points().len(), 9);
    }
}
