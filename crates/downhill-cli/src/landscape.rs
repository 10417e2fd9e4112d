//! `downhill landscape`: optimiser paths on 2-D test functions, numerical
//! convexity checks, and loss-landscape slices of a trained model. Parses and
//! validates the flags; the work is in `downhill-landscape`.

use crate::UserError;
use clap::{ArgGroup, Args};
use downhill_landscape::convexity::{check_function, ConvexitySettings};
use downhill_landscape::functions::fmt_num;
use downhill_landscape::methods::parse_methods;
use downhill_landscape::model::{model_landscape, write_model_outputs, ModelSettings};
use downhill_landscape::paths::{
    run_paths, write_outputs, PathSettings, DEFAULT_STEPS, DEFAULT_TOLERANCE,
};
use std::path::{Path, PathBuf};

/// What each mode does and writes, shown after the options by
/// `downhill landscape --help` (the about text comes from main.rs).
const MODES: &str = "Modes (choose one):

--function NAME runs each optimiser from a common start on a 2-D test \
function and writes, into --out: paths.png/.svg (the paths over the \
function's contours, with the start, minima and saddles marked), \
loss.png/.svg (loss per step: f − f_min on a log axis, or f itself on a \
linear axis for the saddles, which are unbounded below), summary.json and \
summary.md (per optimiser: steps to the target, final point and value, \
where it ended, closest approach to a minimum), and paths.gif with \
--animate. A run stops at the target (|f − f_min| ≤ --tolerance; for the \
saddles, escaping: f ≤ f(saddle) − 1), when it diverges (a non-finite \
value, or more than 10 half-widths of the window from its centre), when \
L-BFGS or Newton stop by their own test, or after --steps steps.

--convexity NAME tests a 2-D function for convexity: Jensen's inequality \
on random pairs of points of its window, and the Hessian's eigenvalues at \
random points. It prints \"convex on the window (...)\" or \"not convex:\" \
with a counterexample; with --out it also writes convexity.json.

--checkpoint DIR reads a `downhill train --out` folder (init.safetensors \
and checkpoints/), rebuilds its data and model, and writes, into --out: \
interpolation.png/.svg (the training loss along the straight line from the \
initial to the trained weights, α from −0.25 to 1.25), surface.png/.svg (a \
2-D slice around the trained weights along two random filter-normalised \
directions, Li et al. 2018), lines.png/.svg (random lines through the \
trained weights), summary.json and summary.md, with a midpoint-convexity \
verdict along every line.";

const EXAMPLES: &str = "Examples:
  downhill landscape --function rosenbrock --out out/rosenbrock
  downhill landscape --function quadratic --condition 50 \\
                     --optimizers \"sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),adam(lr=0.1)\" \\
                     --steps 1000 --out out/ravine
  downhill landscape --function saddle --optimizers \"sgd(lr=0.01),adam(lr=0.01)\" \\
                     --start=1.5,0.001 --animate --out out/saddle
  downhill landscape --function booth --noise 2 --seed 7 --out out/noisy
  downhill landscape --convexity himmelblau
  downhill train --model logreg --epochs 3 --out runs/logreg
  downhill landscape --checkpoint runs/logreg --out runs/logreg/landscape";

/// The flags of `downhill landscape`.
#[derive(Args, Debug, Default)]
#[command(
    group(ArgGroup::new("mode").required(true).args(["function", "convexity", "checkpoint"])),
    after_help = EXAMPLES,
    after_long_help = format!("{MODES}\n\n{EXAMPLES}"),
)]
pub struct LandscapeArgs {
    /// Run optimisers on this 2-D test function: quadratic (an ill-conditioned
    /// bowl), rosenbrock (a curved ravine), beale, booth (a convex bowl),
    /// himmelblau (four minima), saddle (x² − y²), monkey-saddle (x³ − 3xy²),
    /// rastrigin (many local minima), or logistic (a 2-D logistic regression).
    #[arg(long, value_name = "NAME")]
    function: Option<String>,
    /// Test this 2-D function (a --function name) for convexity.
    #[arg(long, value_name = "NAME")]
    convexity: Option<String>,
    /// Slice the loss of the trained run in DIR (a `downhill train --out` folder).
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,

    /// Optimizers to run, as specs separated by commas outside parentheses:
    /// "sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),adam(lr=0.1)". Any of
    /// `downhill optimizers`, plus lbfgs (e.g. lbfgs(line_search_fn=strong_wolfe))
    /// and newton (Newton's method with Hessian modification), whose every
    /// iteration is one step of the path. Default, per function:
    /// quadratic sgd(lr=0.03), sgd(lr=0.03,momentum=0.8), adam(lr=0.3), newton;
    /// rosenbrock sgd(lr=0.001), sgd(lr=0.001,momentum=0.9), adam(lr=0.05),
    /// lbfgs(line_search_fn=strong_wolfe);
    /// beale sgd(lr=0.01), sgd(lr=0.01,momentum=0.9), adam(lr=0.05), rmsprop(lr=0.01);
    /// booth sgd(lr=0.02), sgd(lr=0.02,momentum=0.9), adam(lr=0.5), newton;
    /// himmelblau sgd(lr=0.01), sgd(lr=0.01,momentum=0.9), adam(lr=0.1), rmsprop(lr=0.05);
    /// saddle sgd(lr=0.05), sgd(lr=0.05,momentum=0.9), adam(lr=0.05), newton;
    /// monkey-saddle sgd(lr=0.02), sgd(lr=0.02,momentum=0.9), adam(lr=0.05), rmsprop(lr=0.01);
    /// rastrigin sgd(lr=0.002), sgd(lr=0.002,momentum=0.9), adam(lr=0.8), adagrad(lr=2);
    /// logistic sgd(lr=1), sgd(lr=1,momentum=0.9), adam(lr=0.1), newton.
    #[arg(long, value_name = "SPECS")]
    optimizers: Option<String>,
    /// Common starting point, e.g. --start=-1.2,1 [default: the function's
    /// usual start, e.g. (-1.2, 1) for rosenbrock, (1.5, 0.001) for saddle]
    #[arg(
        long,
        value_name = "X,Y",
        requires = "function",
        allow_hyphen_values = true
    )]
    start: Option<String>,
    /// Most steps per optimizer (iterations for lbfgs and newton). [default: 500]
    #[arg(long, value_name = "N")]
    steps: Option<usize>,
    /// Target: stop once |f − f_min| ≤ F. [default: 1e-6]
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    tolerance: Option<f64>,
    /// Add Gaussian noise of standard deviation SIGMA to every gradient
    /// component (stochastic gradients); every optimizer sees the same noise.
    /// [default: 0]
    #[arg(long, value_name = "SIGMA", allow_hyphen_values = true)]
    noise: Option<f64>,
    /// Condition number κ ≥ 1 of the quadratic ½(x² + κ·y²). [default: 10]
    #[arg(long, value_name = "K", allow_hyphen_values = true)]
    condition: Option<f64>,
    /// Also write paths.gif, the paths growing step by step.
    #[arg(long)]
    animate: bool,
    /// Seed of the gradient noise, the convexity samples or the random
    /// directions. [default: 0]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Output folder (created if missing; files of the same names are
    /// replaced). Required with --function and --checkpoint.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Random pairs of points for Jensen's inequality. [default: 2000]
    #[arg(long, value_name = "N")]
    pairs: Option<usize>,
    /// Random points at which the Hessian's eigenvalues are checked. [default: 500]
    #[arg(long, value_name = "N")]
    hessians: Option<usize>,

    /// Training examples the loss is measured on (a subset drawn with the
    /// run's seed when there are more). Every loss evaluation is a pass over
    /// them, and there are line-points, plus resolution², plus lines times
    /// line-samples of them: lower this and --resolution for large models.
    /// [default: 2000]
    #[arg(long, value_name = "N")]
    examples: Option<usize>,
    /// Points per axis of the 2-D slice (N² loss evaluations). [default: 21]
    #[arg(long, value_name = "N")]
    resolution: Option<usize>,
    /// The slice and the random lines cover α, β ∈ [−F, F], in units of the
    /// trained weights' filter norms. [default: 1]
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    span: Option<f64>,
    /// Random lines through the trained weights tested for convexity (0 for
    /// none). [default: 4]
    #[arg(long, value_name = "N")]
    lines: Option<usize>,
    /// Points on the line from the initial to the trained weights. [default: 61]
    #[arg(long, value_name = "N")]
    line_points: Option<usize>,
    /// Points on each random line. [default: 41]
    #[arg(long, value_name = "N")]
    line_samples: Option<usize>,
}

/// Parses `X,Y` into two finite numbers.
fn parse_point(text: &str) -> Result<[f64; 2], UserError> {
    let bad = || {
        UserError(format!(
            "--start: `{text}` is invalid: expected two finite numbers X,Y, e.g. --start=-1.2,1"
        ))
    };
    let (x, y) = text.split_once(',').ok_or_else(bad)?;
    let x: f64 = x.trim().parse().map_err(|_| bad())?;
    let y: f64 = y.trim().parse().map_err(|_| bad())?;
    if x.is_finite() && y.is_finite() {
        Ok([x, y])
    } else {
        Err(bad())
    }
}

fn require_out<'a>(
    out: &'a Option<PathBuf>,
    mode: &str,
    files: &str,
) -> Result<&'a Path, UserError> {
    out.as_deref().ok_or_else(|| {
        UserError(format!(
            "--out DIR is required with {mode}: the folder for {files}"
        ))
    })
}

fn list_files(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses flags that belong to another mode, so that none is silently ignored.
fn check_mode_flags(args: &LandscapeArgs, mode: &str) -> Result<(), UserError> {
    const FUNCTION: &[&str] = &["--function"];
    const CONVEXITY: &[&str] = &["--convexity"];
    const CHECKPOINT: &[&str] = &["--checkpoint"];
    let flags: [(&str, bool, &[&str]); 15] = [
        ("--optimizers", args.optimizers.is_some(), FUNCTION),
        ("--start", args.start.is_some(), FUNCTION),
        ("--steps", args.steps.is_some(), FUNCTION),
        ("--tolerance", args.tolerance.is_some(), FUNCTION),
        ("--noise", args.noise.is_some(), FUNCTION),
        ("--animate", args.animate, FUNCTION),
        (
            "--condition",
            args.condition.is_some(),
            &["--function", "--convexity"],
        ),
        ("--pairs", args.pairs.is_some(), CONVEXITY),
        ("--hessians", args.hessians.is_some(), CONVEXITY),
        ("--examples", args.examples.is_some(), CHECKPOINT),
        ("--resolution", args.resolution.is_some(), CHECKPOINT),
        ("--span", args.span.is_some(), CHECKPOINT),
        ("--lines", args.lines.is_some(), CHECKPOINT),
        ("--line-points", args.line_points.is_some(), CHECKPOINT),
        ("--line-samples", args.line_samples.is_some(), CHECKPOINT),
    ];
    for (flag, given, modes) in flags {
        if given && !modes.contains(&mode) {
            return Err(UserError(format!(
                "{flag} applies to {}, not to {mode}",
                modes.join(" and ")
            )));
        }
    }
    Ok(())
}

pub fn run(args: LandscapeArgs) -> Result<(), UserError> {
    let mode = if args.function.is_some() {
        "--function"
    } else if args.convexity.is_some() {
        "--convexity"
    } else {
        "--checkpoint"
    };
    check_mode_flags(&args, mode)?;
    if let Some(name) = &args.function {
        run_function(name, &args)
    } else if let Some(name) = &args.convexity {
        run_convexity(name, &args)
    } else if let Some(dir) = &args.checkpoint {
        run_checkpoint(dir, &args)
    } else {
        Err(UserError(
            "choose one of --function NAME, --convexity NAME or --checkpoint DIR".into(),
        ))
    }
}

fn run_function(name: &str, args: &LandscapeArgs) -> Result<(), UserError> {
    let settings = PathSettings {
        function: name.to_string(),
        condition: args.condition,
        methods: match &args.optimizers {
            Some(specs) => parse_methods(specs)?,
            None => Vec::new(),
        },
        start: args.start.as_deref().map(parse_point).transpose()?,
        steps: args.steps.unwrap_or(DEFAULT_STEPS),
        tolerance: args.tolerance.unwrap_or(DEFAULT_TOLERANCE),
        noise: args.noise.unwrap_or(0.0),
        seed: args.seed.unwrap_or(0),
    };
    // Validate everything before asking for a folder, so the first error a
    // user sees is the first thing wrong with the flags.
    let landscape = run_paths(&settings)?;
    let out = require_out(
        &args.out,
        "--function",
        "paths.png, loss.png, summary.json and summary.md",
    )?;
    println!(
        "{} from {}, at most {} steps; target: {}",
        landscape.title,
        downhill_landscape::functions::fmt_point(landscape.start),
        landscape.step_limit,
        landscape.target.describe()
    );
    let width = landscape
        .runs
        .iter()
        .map(|r| r.optimizer.chars().count())
        .max()
        .unwrap_or(0);
    for r in &landscape.runs {
        let reached = match r.target_step {
            Some(k) => format!("target at step {k}"),
            None if r.steps() == 1 => "target not reached in 1 step".to_string(),
            None => format!("target not reached in {} steps", r.steps()),
        };
        println!(
            "  {:<width$}  {:<32}  f = {:<10}  {}",
            r.optimizer,
            reached,
            fmt_num(r.last_value()),
            r.ending.describe()
        );
    }
    let files = write_outputs(&landscape, out, args.animate)?;
    println!("wrote {}", list_files(&files));
    Ok(())
}

fn run_convexity(name: &str, args: &LandscapeArgs) -> Result<(), UserError> {
    let defaults = ConvexitySettings::default();
    let settings = ConvexitySettings {
        pairs: args.pairs.unwrap_or(defaults.pairs),
        hessians: args.hessians.unwrap_or(defaults.hessians),
        seed: args.seed.unwrap_or(0),
        ..defaults
    };
    if settings.pairs == 0 {
        return Err(UserError(
            "--pairs: 0 is invalid: expected at least 1".into(),
        ));
    }
    if settings.hessians == 0 {
        return Err(UserError(
            "--hessians: 0 is invalid: expected at least 1".into(),
        ));
    }
    let report = check_function(name, args.condition, &settings)?;
    println!("{name}: {}", report.verdict());
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).map_err(|e| UserError(format!("{}: {e}", out.display())))?;
        let path = out.join("convexity.json");
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| UserError(format!("{}: {e}", path.display())))?;
        std::fs::write(&path, json).map_err(|e| UserError(format!("{}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn run_checkpoint(dir: &Path, args: &LandscapeArgs) -> Result<(), UserError> {
    let defaults = ModelSettings::new(dir);
    let settings = ModelSettings {
        examples: args.examples.unwrap_or(defaults.examples),
        line_points: args.line_points.unwrap_or(defaults.line_points),
        resolution: args.resolution.unwrap_or(defaults.resolution),
        span: args.span.unwrap_or(defaults.span),
        lines: args.lines.unwrap_or(defaults.lines),
        line_samples: args.line_samples.unwrap_or(defaults.line_samples),
        seed: args.seed.unwrap_or(0),
        ..defaults
    };
    let out = require_out(
        &args.out,
        "--checkpoint",
        "interpolation.png, surface.png, lines.png, summary.json and summary.md",
    )?;
    let m = model_landscape(&settings, &mut |message| eprintln!("{message}"))?;
    for w in &m.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{} on {}: loss {} at the initial weights, {} at the trained weights ({} examples)",
        m.model,
        m.data,
        fmt_num(m.initial_loss),
        fmt_num(m.final_loss),
        m.examples
    );
    for line in std::iter::once(&m.interpolation).chain(&m.random_lines) {
        println!("  {}", line.verdict());
    }
    println!("{}", m.verdict());
    let files = write_model_outputs(&m, out)?;
    println!("wrote {}", list_files(&files));
    Ok(())
}
