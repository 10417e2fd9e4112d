//! Optimiser paths on a 2-D test function: run each optimiser from a common
//! start, record every iterate, say where it ended, and draw it.
//!
//! # Stopping
//!
//! A run stops at the first of:
//!
//! * **the target**: for a function with a known minimum, `|f − f_min| ≤
//!   tolerance` (f_min is the lowest known minimum, so on Rastrigin a local
//!   minimum does not count); for a function unbounded below (the saddles),
//!   escaping: `f ≤ f(saddle) − `[`ESCAPE_DEPTH`];
//! * **divergence**: a non-finite point or value, or a point farther from the
//!   window's centre than [`DIVERGENCE_FACTOR`] half-widths along an axis;
//! * **the method's own stop** (L-BFGS and Newton: gradient below their
//!   `tolerance_grad`, no descent direction, …);
//! * **the step limit**.
//!
//! # Where a run ended
//!
//! Judged at its last point: within [`NEAR_FRACTION`] of the window's
//! diagonal of a known minimum, or stuck near a known saddle; escaped a saddle
//! (with the direction); in another local minimum or near another stationary
//! point (found by Newton's method on ∇f = 0 from the last point; counted
//! only when the last point and the last step are within a quarter of that
//! radius, so a run bouncing between wells is not "in" one); diverged; or
//! still moving.

use crate::error::{LandscapeError, Result};
use crate::functions::{self, eigenvalues_2x2, fmt_num, fmt_point};
use crate::methods::{default_methods, Method};
use downhill::lbfgs::Lbfgs;
use downhill::problems::{PointKind, Problem};
use downhill::report::Termination;
use downhill::Rng;
use downhill_plot::{
    animate_paths, ContourPlot, Format, Grid, LineChart, LineStyle, Marker, MarkerKind, Scale,
    Series, Trajectory,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Steps per optimiser when none are given.
pub const DEFAULT_STEPS: usize = 500;
/// Most steps accepted (the paths are kept in memory and drawn).
pub const MAX_STEPS: usize = 1_000_000;
/// The target tolerance `|f − f_min|` when none is given.
pub const DEFAULT_TOLERANCE: f64 = 1e-6;
/// On a function unbounded below, a run has escaped the saddle once
/// `f ≤ f(saddle) − ESCAPE_DEPTH`. On `x² − y²` that is `y² ≥ x² + 1`: past
/// `|y| = 1` once x has settled near 0.
pub const ESCAPE_DEPTH: f64 = 1.0;
/// A run has diverged when a point lies farther from the window's centre than
/// this many half-widths along an axis.
pub const DIVERGENCE_FACTOR: f64 = 10.0;
/// "Near" a point means within this fraction of the window's diagonal.
pub const NEAR_FRACTION: f64 = 0.02;
/// Grid points along each axis of the contour plot.
const GRID_POINTS: usize = 201;
/// Frames of the animation (fewer for shorter paths).
const GIF_FRAMES: usize = 100;

/// What to run. Build with `PathSettings { function: "rosenbrock".into(), ..Default::default() }`.
#[derive(Clone, Debug, PartialEq)]
pub struct PathSettings {
    /// A name from [`functions::FUNCTIONS`].
    pub function: String,
    /// The quadratic's condition number (default 10); only for `quadratic`.
    pub condition: Option<f64>,
    /// The optimisers; empty means [`crate::methods::default_specs`].
    pub methods: Vec<Method>,
    /// The common start; default the function's conventional one.
    pub start: Option<[f64; 2]>,
    /// Most steps (iterations for L-BFGS and Newton) per optimiser, ≥ 1.
    pub steps: usize,
    /// Target tolerance on `|f − f_min|`, > 0.
    pub tolerance: f64,
    /// Standard deviation σ of Gaussian noise added to each gradient
    /// component (0: exact gradients). Every optimiser sees the same noise
    /// sequence, drawn from `seed`.
    pub noise: f64,
    /// Seed of the gradient noise.
    pub seed: u64,
}

impl Default for PathSettings {
    fn default() -> Self {
        PathSettings {
            function: "quadratic".into(),
            condition: None,
            methods: Vec::new(),
            start: None,
            steps: DEFAULT_STEPS,
            tolerance: DEFAULT_TOLERANCE,
            noise: 0.0,
            seed: 0,
        }
    }
}

/// When a run counts as done.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    /// `|f − min_value| ≤ tolerance`.
    Tolerance {
        /// The lowest known value.
        min_value: f64,
        /// The tolerance.
        tolerance: f64,
    },
    /// `f ≤ level`, where `level = f(saddle) − ESCAPE_DEPTH`.
    Escape {
        /// The saddle point.
        saddle: [f64; 2],
        /// The value to go below.
        level: f64,
    },
}

impl Target {
    /// Whether a value meets the target.
    pub fn reached(&self, f: f64) -> bool {
        match *self {
            Target::Tolerance {
                min_value,
                tolerance,
            } => (f - min_value).abs() <= tolerance,
            Target::Escape { level, .. } => f <= level,
        }
    }

    /// The target in words.
    pub fn describe(&self) -> String {
        match self {
            Target::Tolerance {
                min_value,
                tolerance,
            } => format!(
                "|f − f_min| ≤ {} (f_min = {})",
                fmt_num(*tolerance),
                fmt_num(*min_value)
            ),
            Target::Escape { saddle, level } => format!(
                "escape the saddle at {}: f ≤ {}",
                fmt_point(*saddle),
                fmt_num(*level)
            ),
        }
    }
}

/// A known stationary point of the function.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KnownPoint {
    /// Where.
    pub at: [f64; 2],
    /// f there.
    pub value: f64,
    /// `minimum`, `saddle` or `maximum`.
    pub kind: &'static str,
}

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Stop {
    /// It met the target.
    Target,
    /// It used every step.
    StepLimit,
    /// It diverged.
    Diverged,
    /// L-BFGS or Newton stopped by its own test.
    Converged {
        /// The method's reason, e.g. "gradient below tolerance".
        why: String,
    },
}

/// Where a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ending {
    /// Near a known minimum.
    Minimum {
        /// The minimum.
        at: [f64; 2],
        /// Distance of the last point from it.
        distance: f64,
        /// Whether the last point met the target tolerance: only then is the
        /// run "at" the minimum rather than "near" it.
        reached: bool,
    },
    /// In a local minimum that is not among the known ones (e.g. Rastrigin's).
    LocalMinimum {
        /// The minimum, located by Newton's method from the last point.
        at: [f64; 2],
        /// f there.
        value: f64,
    },
    /// Past the escape level of a function unbounded below.
    Escaped {
        /// The saddle escaped from.
        saddle: [f64; 2],
        /// The direction of the last point as seen from the saddle:
        /// `+x`, `−y`, … within 15° of an axis, else a unit vector.
        direction: String,
    },
    /// Near a saddle (known, or found from the last point).
    NearSaddle {
        /// The saddle.
        at: [f64; 2],
        /// Distance of the last point from it.
        distance: f64,
    },
    /// Near a local maximum.
    NearMaximum {
        /// The maximum.
        at: [f64; 2],
    },
    /// Non-finite, or far outside the window.
    Diverged {
        /// The step at which it was detected.
        step: usize,
    },
    /// None of the above: still on its way when the steps ran out.
    Moving {
        /// The last point.
        at: [f64; 2],
    },
}

impl Ending {
    /// A phrase for reports: "at the minimum (1, 1)" (only once the target
    /// was met; "near the minimum (1, 1)" before), "escaped the saddle along +y".
    pub fn describe(&self) -> String {
        match self {
            Ending::Minimum {
                at, reached: true, ..
            } => format!("at the minimum {}", fmt_point(*at)),
            Ending::Minimum { at, .. } => format!("near the minimum {}", fmt_point(*at)),
            Ending::LocalMinimum { at, value } => {
                format!(
                    "in a local minimum at {} (f = {})",
                    fmt_point(*at),
                    fmt_num(*value)
                )
            }
            Ending::Escaped { saddle, direction } => {
                let dir = if direction.starts_with('(') {
                    format!("towards {direction}")
                } else {
                    format!("along {direction}")
                };
                format!("escaped the saddle at {} {dir}", fmt_point(*saddle))
            }
            Ending::NearSaddle { at, .. } => format!("stuck near the saddle at {}", fmt_point(*at)),
            Ending::NearMaximum { at } => format!("stuck near the maximum at {}", fmt_point(*at)),
            Ending::Diverged { step } => format!("diverged at step {step}"),
            Ending::Moving { at } => format!("still moving at {}", fmt_point(*at)),
        }
    }
}

/// The closest a path came to a known minimum (or, for a function without
/// minima, to its saddle).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Closest {
    /// `minimum` or `saddle`.
    pub kind: &'static str,
    /// The point approached.
    pub at: [f64; 2],
    /// The smallest distance.
    pub distance: f64,
    /// The step (index into the path) where it was reached; the first such.
    pub step: usize,
}

/// One optimiser's run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// The spec, e.g. `sgd(lr=0.01,momentum=0.9)`.
    pub optimizer: String,
    /// The iterates; `points[0]` is the start, `points[k]` the point after step `k`.
    pub points: Vec<[f64; 2]>,
    /// f at each point (exact, without noise).
    pub values: Vec<f64>,
    /// Gradient evaluations made.
    pub evaluations: usize,
    /// The first step at which the target was met.
    pub target_step: Option<usize>,
    /// Why the run stopped.
    pub stop: Stop,
    /// Where it ended.
    pub ending: Ending,
    /// Closest approach to a known minimum (or saddle).
    pub closest: Option<Closest>,
}

impl Run {
    /// Steps taken: `points.len() − 1`.
    pub fn steps(&self) -> usize {
        self.points.len().saturating_sub(1)
    }

    /// The last point.
    pub fn last(&self) -> [f64; 2] {
        *self.points.last().expect("a run has its start")
    }

    /// The value at the last point.
    pub fn last_value(&self) -> f64 {
        *self.values.last().expect("a run has its start")
    }
}

/// Every run on one function, with what is needed to draw and report them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Landscape {
    /// The function's name.
    pub function: String,
    /// Name and formula.
    pub title: String,
    /// The quadratic's condition number, when one was given.
    pub condition: Option<f64>,
    /// The plotted window `[[x0, x1], [y0, y1]]`: the function's own,
    /// widened to include the start.
    pub window: [[f64; 2]; 2],
    /// The common start.
    pub start: [f64; 2],
    /// The step limit.
    pub step_limit: usize,
    /// The target.
    pub target: Target,
    /// Gradient noise σ.
    pub noise: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Known minima, saddles and maxima.
    pub stationary_points: Vec<KnownPoint>,
    /// One run per optimiser, in the order given.
    pub runs: Vec<Run>,
}

fn kind_name(k: PointKind) -> &'static str {
    match k {
        PointKind::Minimum => "minimum",
        PointKind::Saddle => "saddle",
        PointKind::Maximum => "maximum",
    }
}

/// Checks the settings that do not depend on the function.
fn validate(s: &PathSettings) -> Result<()> {
    if s.steps == 0 || s.steps > MAX_STEPS {
        return Err(LandscapeError::setting(
            "--steps",
            format!("{} is invalid: expected 1 to {MAX_STEPS}", s.steps),
        ));
    }
    if !(s.tolerance.is_finite() && s.tolerance > 0.0) {
        return Err(LandscapeError::setting(
            "--tolerance",
            format!("{} is invalid: expected a finite number > 0", s.tolerance),
        ));
    }
    if !(s.noise.is_finite() && s.noise >= 0.0) {
        return Err(LandscapeError::setting(
            "--noise",
            format!("{} is invalid: expected a finite number >= 0", s.noise),
        ));
    }
    if let Some(p) = s.start {
        if !p.iter().all(|v| v.is_finite()) {
            return Err(LandscapeError::setting(
                "--start",
                format!("{p:?} is invalid: expected two finite numbers X,Y"),
            ));
        }
    }
    Ok(())
}

/// The function's window widened, where needed, to show `start` with a
/// margin of a tenth of the new range.
fn window_with(problem: &dyn Problem, start: [f64; 2]) -> [[f64; 2]; 2] {
    let w = problem.window();
    let mut out = [[w[0].0, w[0].1], [w[1].0, w[1].1]];
    for (axis, &s) in out.iter_mut().zip(&start) {
        if s < axis[0] || s > axis[1] {
            let (lo, hi) = (axis[0].min(s), axis[1].max(s));
            let m = 0.1 * (hi - lo);
            *axis = [
                lo - if s < axis[0] { m } else { 0.0 },
                hi + if s > axis[1] { m } else { 0.0 },
            ];
        }
    }
    out
}

/// Runs every optimiser of `settings` on its function.
pub fn run_paths(settings: &PathSettings) -> Result<Landscape> {
    validate(settings)?;
    let problem = functions::function(&settings.function, settings.condition)?;
    let problem = &*problem;
    let start = settings.start.unwrap_or_else(|| {
        let s = problem.start();
        [s[0], s[1]]
    });
    let methods = if settings.methods.is_empty() {
        default_methods(&settings.function)
    } else {
        settings.methods.clone()
    };
    let stationary: Vec<KnownPoint> = problem
        .stationary_points()
        .into_iter()
        .map(|s| KnownPoint {
            at: [s.x[0], s.x[1]],
            value: s.value,
            kind: kind_name(s.kind),
        })
        .collect();
    let target = match problem.min_value() {
        Some(min_value) => Target::Tolerance {
            min_value,
            tolerance: settings.tolerance,
        },
        None => {
            let saddle = stationary
                .iter()
                .find(|p| p.kind == "saddle")
                .ok_or_else(|| {
                    LandscapeError::setting(
                        "--function",
                        format!(
                            "`{}` has neither a minimum nor a saddle to aim at",
                            settings.function
                        ),
                    )
                })?;
            Target::Escape {
                saddle: saddle.at,
                level: saddle.value - ESCAPE_DEPTH,
            }
        }
    };
    let judge = Judge::new(problem, &stationary);
    let window = window_with(problem, start);
    let mut runs = Vec::with_capacity(methods.len());
    for m in &methods {
        runs.push(run_one(
            problem, m, start, settings, &target, &window, &judge,
        )?);
    }
    Ok(Landscape {
        function: settings.function.clone(),
        title: functions::title(problem),
        condition: settings.condition,
        window,
        start,
        step_limit: settings.steps,
        target,
        noise: settings.noise,
        seed: settings.seed,
        stationary_points: stationary,
        runs,
    })
}

/// Records a run's path and decides when it stops.
struct Recorder<'a> {
    problem: &'a dyn Problem,
    target: &'a Target,
    centre: [f64; 2],
    half: [f64; 2],
    points: Vec<[f64; 2]>,
    values: Vec<f64>,
    target_step: Option<usize>,
}

impl<'a> Recorder<'a> {
    /// Adds a point; returns why to stop, if it is time to.
    fn push(&mut self, x: [f64; 2]) -> Option<Stop> {
        let v = self.problem.value(&x);
        self.points.push(x);
        self.values.push(v);
        if !x.iter().all(|c| c.is_finite()) || !v.is_finite() {
            return Some(Stop::Diverged);
        }
        // The target before the distance: on a function unbounded below, one
        // long step that escapes the saddle is an escape, not a divergence.
        if self.target.reached(v) {
            self.target_step = Some(self.points.len() - 1);
            return Some(Stop::Target);
        }
        let far = (0..2).any(|i| (x[i] - self.centre[i]).abs() > DIVERGENCE_FACTOR * self.half[i]);
        far.then_some(Stop::Diverged)
    }
}

/// Adds the run's noise to a gradient.
fn add_noise(g: &mut [f64], sigma: f64, rng: &mut Rng) {
    if sigma > 0.0 {
        for v in g {
            *v += sigma * rng.normal();
        }
    }
}

fn run_one(
    problem: &dyn Problem,
    method: &Method,
    start: [f64; 2],
    s: &PathSettings,
    target: &Target,
    window: &[[f64; 2]; 2],
    judge: &Judge,
) -> Result<Run> {
    let label = method.label();
    let optim_err = |source: downhill::Error| LandscapeError::Optimizer {
        label: label.clone(),
        source,
    };
    let mut rec = Recorder {
        problem,
        target,
        centre: [
            0.5 * (window[0][0] + window[0][1]),
            0.5 * (window[1][0] + window[1][1]),
        ],
        half: [
            0.5 * (window[0][1] - window[0][0]),
            0.5 * (window[1][1] - window[1][0]),
        ],
        points: Vec::with_capacity(s.steps.min(10_000) + 1),
        values: Vec::with_capacity(s.steps.min(10_000) + 1),
        target_step: None,
    };
    // Every optimiser gets the same noise sequence, so differences between
    // paths come from the methods, not from the draws.
    let mut rng = Rng::new(s.seed);
    let mut evaluations = 0usize;
    let mut stop = rec.push(start);
    let mut x = start;
    if stop.is_none() {
        stop = Some(match method {
            Method::Step(spec) => {
                let mut opt = downhill::optim::build_rule::<f64>(spec, &[2]).map_err(optim_err)?;
                let mut g = [0.0; 2];
                let mut why = Stop::StepLimit;
                for _ in 0..s.steps {
                    problem.gradient(&x, &mut g);
                    evaluations += 1;
                    add_noise(&mut g, s.noise, &mut rng);
                    if !g.iter().all(|v| v.is_finite()) {
                        why = Stop::Diverged;
                        break;
                    }
                    opt.step_flat(&mut x, &g).map_err(optim_err)?;
                    if let Some(w) = rec.push(x) {
                        why = w;
                        break;
                    }
                }
                why
            }
            Method::Lbfgs(_, config) => {
                let mut config = config.clone();
                // One iteration per call: the state (history, direction) persists
                // between calls, so the iterates are those of one long run.
                config.max_iter = 1;
                config.max_eval = None;
                let mut lbfgs = Lbfgs::<f64>::new(config, 2).map_err(optim_err)?;
                let mut why = Stop::StepLimit;
                for _ in 0..s.steps {
                    let before = x;
                    let report = lbfgs
                        .step(&mut x, |p, g| {
                            evaluations += 1;
                            let f = problem.gradient(p, g);
                            add_noise(g, s.noise, &mut rng);
                            f
                        })
                        .map_err(optim_err)?;
                    if x != before {
                        if let Some(w) = rec.push(x) {
                            why = w;
                            break;
                        }
                    }
                    if let Some(w) = method_stop(report.reason, x != before) {
                        why = w;
                        break;
                    }
                }
                why
            }
            Method::Newton(_, config) => {
                let mut config = config.clone();
                // Newton keeps no state between iterations: one call per step
                // gives the same iterates as one call for all of them.
                config.max_iter = 1;
                let mut why = Stop::StepLimit;
                for _ in 0..s.steps {
                    let before = x;
                    let report = config
                        .minimize_with(
                            &mut x,
                            |p, g| {
                                evaluations += 1;
                                let f = problem.gradient(p, g);
                                add_noise(g, s.noise, &mut rng);
                                f
                            },
                            |p, h| problem.hessian(p, h),
                        )
                        .map_err(optim_err)?;
                    if x != before {
                        if let Some(w) = rec.push(x) {
                            why = w;
                            break;
                        }
                    }
                    if let Some(w) = method_stop(report.reason, x != before) {
                        why = w;
                        break;
                    }
                }
                why
            }
        });
    }
    let stop = stop.unwrap_or(Stop::StepLimit);
    let ending = judge.ending(&rec.points, &stop, target);
    let closest = judge.closest(&rec.points);
    Ok(Run {
        optimizer: label,
        points: rec.points,
        values: rec.values,
        evaluations,
        target_step: rec.target_step,
        stop,
        ending,
        closest,
    })
}

/// Whether a closure-based method's reason ends the run. Each call makes at
/// most one iteration, so "iteration limit" just means "continue".
fn method_stop(reason: Termination, moved: bool) -> Option<Stop> {
    match reason {
        Termination::MaxIterations | Termination::MaxEvaluations if moved => None,
        Termination::NonFinite => Some(Stop::Diverged),
        other => Some(Stop::Converged {
            why: other.to_string(),
        }),
    }
}

/// Decides where a path ended and how close it came to the known points.
struct Judge<'a> {
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
    fn new(problem: &'a dyn Problem, known: &[KnownPoint]) -> Self {
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
    fn nearest(points: &[[f64; 2]], x: [f64; 2]) -> Option<([f64; 2], f64)> {
        points
            .iter()
            .map(|&p| (p, dist(p, x)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn ending(&self, points: &[[f64; 2]], stop: &Stop, target: &Target) -> Ending {
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
    fn stationary_near(&self, x0: [f64; 2]) -> Option<[f64; 2]> {
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

    fn closest(&self, points: &[[f64; 2]]) -> Option<Closest> {
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
fn direction(v: [f64; 2]) -> String {
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

/// The files [`write_outputs`] writes, relative to the output folder
/// (and `paths.gif` when animating).
pub const OUTPUT_FILES: &[&str] = &[
    "paths.png",
    "paths.svg",
    "loss.png",
    "loss.svg",
    "paths.csv",
    "summary.json",
    "summary.md",
];

/// Writes `paths.png`/`.svg` (contours, paths, start and stationary points),
/// `loss.png`/`.svg` (loss per step), `paths.csv` (every iterate:
/// `optimizer,step,x,y,f`), `summary.json` (everything but the iterates),
/// `summary.md` and, with `animate`, `paths.gif` into `out` (created if
/// missing). Returns the files.
///
/// The loss chart shows `f − f_min` on a logarithmic axis when the function
/// has a known minimum (values below 10⁻¹⁶ are drawn at 10⁻¹⁶, so an exact
/// hit stays visible); for a function unbounded below it shows f itself on a
/// linear axis, with the escape level dashed, since `f − f_min` does not
/// exist and f changes sign.
pub fn write_outputs(result: &Landscape, out: &Path, animate: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|source| LandscapeError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let problem = functions::function(&result.function, result.condition)?;
    let both = [Format::Png, Format::Svg];
    let mut files = Vec::new();

    let plot = contour_plot(result, &*problem)?;
    files.extend(plot.save(out.join("paths"), &both)?);
    if animate {
        let longest = result
            .runs
            .iter()
            .map(|r| r.points.len())
            .max()
            .unwrap_or(1);
        let frames = longest.clamp(1, GIF_FRAMES);
        files.push(animate_paths(&plot, frames, out.join("paths.gif"))?);
    }
    files.extend(loss_chart(result).save(out.join("loss"), &both)?);

    files.push(write_text(out, "paths.csv", &paths_csv(result))?);
    let json = serde_json::to_string_pretty(&SummaryJson::new(result))
        .expect("a summary always serialises");
    files.push(write_text(out, "summary.json", &json)?);
    files.push(write_text(
        out,
        "summary.md",
        &summary_markdown(result, animate),
    )?);
    Ok(files)
}

/// `summary.json`: the landscape without the iterates (those are in
/// `paths.csv`), with each run's final point and the endings in words.
#[derive(Serialize)]
struct SummaryJson<'a> {
    function: &'a str,
    title: &'a str,
    condition: Option<f64>,
    window: [[f64; 2]; 2],
    start: [f64; 2],
    step_limit: usize,
    target: &'a Target,
    target_text: String,
    noise: f64,
    seed: u64,
    stationary_points: &'a [KnownPoint],
    runs: Vec<RunJson<'a>>,
}

#[derive(Serialize)]
struct RunJson<'a> {
    optimizer: &'a str,
    steps: usize,
    evaluations: usize,
    target_step: Option<usize>,
    stop: &'a Stop,
    final_point: [f64; 2],
    final_value: f64,
    ending: &'a Ending,
    ending_text: String,
    closest: &'a Option<Closest>,
}

impl<'a> SummaryJson<'a> {
    fn new(l: &'a Landscape) -> Self {
        SummaryJson {
            function: &l.function,
            title: &l.title,
            condition: l.condition,
            window: l.window,
            start: l.start,
            step_limit: l.step_limit,
            target: &l.target,
            target_text: l.target.describe(),
            noise: l.noise,
            seed: l.seed,
            stationary_points: &l.stationary_points,
            runs: l
                .runs
                .iter()
                .map(|r| RunJson {
                    optimizer: &r.optimizer,
                    steps: r.steps(),
                    evaluations: r.evaluations,
                    target_step: r.target_step,
                    stop: &r.stop,
                    final_point: r.last(),
                    final_value: r.last_value(),
                    ending: &r.ending,
                    ending_text: r.ending.describe(),
                    closest: &r.closest,
                })
                .collect(),
        }
    }
}

/// Every iterate as CSV; numbers in Rust's shortest round-trip form, so the
/// file holds exactly the recorded values.
fn paths_csv(l: &Landscape) -> String {
    use std::fmt::Write;
    let mut csv = String::from("optimizer,step,x,y,f\n");
    for r in &l.runs {
        // Specs hold commas: quote them (doubling any quote, as CSV does).
        let name = format!("\"{}\"", r.optimizer.replace('"', "\"\""));
        for (k, (p, v)) in r.points.iter().zip(&r.values).enumerate() {
            let _ = writeln!(csv, "{name},{k},{:?},{:?},{:?}", p[0], p[1], v);
        }
    }
    csv
}

pub(crate) fn write_text(out: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = out.join(name);
    // Write beside, then rename: a reader never sees half a file.
    let tmp = out.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| LandscapeError::Io {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

fn contour_plot(result: &Landscape, problem: &dyn Problem) -> Result<ContourPlot> {
    let [wx, wy] = result.window;
    let grid = Grid::sample(
        (wx[0], wx[1]),
        (wy[0], wy[1]),
        GRID_POINTS,
        GRID_POINTS,
        |x, y| problem.value(&[x, y]),
    )?;
    let mut plot = ContourPlot::new(result.title.clone(), grid).value_label("f(x, y)");
    for (i, r) in result.runs.iter().enumerate() {
        let pts = r.points.iter().map(|p| (p[0], p[1])).collect();
        plot = plot.path(Trajectory::new(r.optimizer.clone(), pts).color_slot(i));
    }
    for p in &result.stationary_points {
        let kind = match p.kind {
            "minimum" => MarkerKind::Minimum,
            "saddle" => MarkerKind::Saddle,
            // The plot has no symbol for maxima; they are listed in the summary.
            _ => continue,
        };
        let label = if p.kind == "minimum" {
            "minimum"
        } else {
            "saddle point"
        };
        plot = plot.marker(Marker::new((p.at[0], p.at[1]), label, kind));
    }
    plot = plot.marker(Marker::new(
        (result.start[0], result.start[1]),
        format!("common start {}", fmt_point(result.start)),
        MarkerKind::Start,
    ));
    Ok(plot)
}

/// Smallest `f − f_min` drawn on the log axis.
const LOG_FLOOR: f64 = 1e-16;

fn loss_chart(result: &Landscape) -> LineChart {
    let title = format!("Loss per step: {}", result.title);
    let x_label = if result
        .runs
        .iter()
        .any(|r| r.optimizer.starts_with("lbfgs") || r.optimizer.starts_with("newton"))
    {
        "step (one iteration for lbfgs and newton)"
    } else {
        "step"
    };
    let mut chart = LineChart::new(title).x_label(x_label).x_integer();
    match result.target {
        Target::Tolerance {
            min_value,
            tolerance,
        } => {
            chart = chart.y_label("f − f_min").y_scale(Scale::Log);
            for (i, r) in result.runs.iter().enumerate() {
                let pts = r
                    .values
                    .iter()
                    .enumerate()
                    .map(|(k, v)| (k as f64, (v - min_value).max(LOG_FLOOR)))
                    .collect();
                chart = chart.series(Series::new(r.optimizer.clone(), pts).color_slot(i));
            }
            let longest = result.runs.iter().map(Run::steps).max().unwrap_or(1).max(1);
            chart = chart.series(
                Series::new(
                    format!("tolerance {}", fmt_num(tolerance)),
                    vec![(0.0, tolerance), (longest as f64, tolerance)],
                )
                .style(LineStyle::Dashed)
                .color_slot(result.runs.len()),
            );
        }
        Target::Escape { level, .. } => {
            // Show as far below the escape level as the start lies above it
            // (at least 1): a run that escapes with one huge step would
            // otherwise flatten every other curve.
            let finite = || {
                result
                    .runs
                    .iter()
                    .flat_map(|r| &r.values)
                    .filter(|v| v.is_finite())
            };
            let hi = finite().fold(level + 1.0, |m, &v| m.max(v));
            let lo = finite()
                .fold(hi, |m, &v| m.min(v))
                .max(level - (hi - level));
            let pad = 0.05 * (hi - lo);
            chart = chart
                .y_label("f(x, y)")
                .y_scale(Scale::Linear)
                .y_range(lo - pad, hi + pad);
            for (i, r) in result.runs.iter().enumerate() {
                chart =
                    chart.series(Series::from_values(r.optimizer.clone(), &r.values).color_slot(i));
            }
            let longest = result.runs.iter().map(Run::steps).max().unwrap_or(1).max(1);
            chart = chart.series(
                Series::new(
                    format!("escape level f = {}", fmt_num(level)),
                    vec![(0.0, level), (longest as f64, level)],
                )
                .style(LineStyle::Dashed)
                .color_slot(result.runs.len()),
            );
        }
    }
    chart
}

/// Escapes `|` for a Markdown table cell.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn summary_markdown(r: &Landscape, animate: bool) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let [wx, wy] = r.window;
    let _ = writeln!(md, "# Optimiser paths: {}\n", r.function);
    let _ = writeln!(md, "{}.\n", r.title);
    let _ = writeln!(
        md,
        "- window: x ∈ [{}, {}], y ∈ [{}, {}]",
        fmt_num(wx[0]),
        fmt_num(wx[1]),
        fmt_num(wy[0]),
        fmt_num(wy[1])
    );
    let _ = writeln!(md, "- start: {}", fmt_point(r.start));
    let _ = writeln!(md, "- step limit: {}", r.step_limit);
    let _ = writeln!(md, "- target: {}", r.target.describe());
    let noise = if r.noise > 0.0 {
        format!(
            "Gaussian, σ = {} per component, seed {}",
            fmt_num(r.noise),
            r.seed
        )
    } else {
        "none (exact gradients)".into()
    };
    let _ = writeln!(md, "- gradient noise: {noise}");
    let known: Vec<String> = r
        .stationary_points
        .iter()
        .map(|p| format!("{} {} (f = {})", p.kind, fmt_point(p.at), fmt_num(p.value)))
        .collect();
    let _ = writeln!(md, "- known stationary points: {}\n", known.join("; "));
    let _ = writeln!(
        md,
        "| optimiser | steps to target | final point | final f | where it ended | closest approach |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for run in &r.runs {
        let reached = match run.target_step {
            Some(k) => k.to_string(),
            None => {
                let plural = if run.steps() == 1 { "" } else { "s" };
                format!(
                    "not reached ({} step{plural}{})",
                    run.steps(),
                    stop_note(&run.stop)
                )
            }
        };
        let closest = match &run.closest {
            Some(c) => format!(
                "{} from the {} {} at step {}",
                fmt_num(c.distance),
                c.kind,
                fmt_point(c.at),
                c.step
            ),
            None => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&run.optimizer),
            reached,
            fmt_point(run.last()),
            fmt_num(run.last_value()),
            cell(&run.ending.describe()),
            closest
        );
    }
    let _ = writeln!(md, "\n![paths](paths.png)\n\n![loss](loss.png)");
    if animate {
        let _ = writeln!(md, "\n![animation](paths.gif)");
    }
    md
}

fn stop_note(stop: &Stop) -> String {
    match stop {
        Stop::Converged { why } => format!("; stopped: {why}"),
        Stop::Diverged => "; diverged".into(),
        Stop::Target | Stop::StepLimit => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_name_axes() {
        assert_eq!(direction([0.0, 2.0]), "+y");
        assert_eq!(direction([0.1, -2.0]), "−y");
        assert_eq!(direction([-3.0, 0.2]), "−x");
        assert_eq!(direction([1.0, 1.0]), "(0.71, 0.71)");
    }

    #[test]
    fn window_grows_to_show_the_start() {
        let p = functions::function("rosenbrock", None).unwrap();
        assert_eq!(window_with(&*p, [0.0, 0.0]), [[-2.0, 2.0], [-1.0, 3.0]]);
        let w = window_with(&*p, [-4.0, 0.0]);
        assert!(
            w[0][0] < -4.0 && w[0][1] == 2.0 && w[1] == [-1.0, 3.0],
            "{w:?}"
        );
    }

    #[test]
    fn settings_are_checked_with_the_flag_named() {
        for (s, want) in [
            (
                PathSettings {
                    steps: 0,
                    ..Default::default()
                },
                "--steps",
            ),
            (
                PathSettings {
                    tolerance: 0.0,
                    ..Default::default()
                },
                "--tolerance",
            ),
            (
                PathSettings {
                    noise: f64::NAN,
                    ..Default::default()
                },
                "--noise",
            ),
            (
                PathSettings {
                    start: Some([f64::INFINITY, 0.0]),
                    ..Default::default()
                },
                "--start",
            ),
            (
                PathSettings {
                    function: "nope".into(),
                    ..Default::default()
                },
                "--function",
            ),
        ] {
            let e = run_paths(&s).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
