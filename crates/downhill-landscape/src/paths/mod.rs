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
use crate::functions::{self, fmt_num, fmt_point};
use crate::methods::{default_methods, Method};

mod judge;
mod output;

use downhill::lbfgs::Lbfgs;
use downhill::problems::{PointKind, Problem};
use downhill::report::Termination;
use downhill::Rng;
use downhill_plot::{
    animate_paths, ContourPlot, Format, Grid, LineChart, LineStyle, Marker, MarkerKind, Scale,
    Series, Trajectory,
};
use judge::Judge;
pub(crate) use output::{cell, write_text};
pub use output::{write_outputs, OUTPUT_FILES};
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

#[cfg(test)]
mod tests {
    use super::judge::direction;
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
