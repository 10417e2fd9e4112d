//! `downhill compare`.

use crate::UserError;
use clap::Args;
use downhill_lab::compare::{Executor, Local, PairedTest, Target, TargetMetric};
use downhill_lab::presets::preset;
use downhill_lab::suite::{Ruleset, SuiteSettings};
use downhill_lab::{compare, CompareSettings, TuneSettings};
use downhill_train::{Console, Observer, Silent};
use std::path::PathBuf;

/// The presets, listed from their own definitions, and examples.
fn presets_help() -> String {
    let mut out = String::from("Presets:\n");
    for name in downhill_lab::presets::PRESETS {
        let p = preset(name).expect("every listed preset exists");
        out += &format!("  {name:<19} {}\n", p.description);
    }
    out += "\nSuites (--suite NAME):\n";
    for name in downhill_lab::suite::SUITES {
        let s = downhill_lab::suite::suite(name).expect("every listed suite exists");
        out += &format!("  {name:<19} {}\n", s.description);
    }
    out += "\nImage presets default to Fashion-MNIST (apt-get install dataset-fashion-mnist).

Examples:
  downhill compare --out runs/quick
  downhill compare --preset adam-paper-mlp --epochs 5 --out runs/mlp
  downhill compare --preset quick --steps 1000 --eval-every 100 --out runs/steps
  downhill compare --preset quick --seeds 5 --jobs 2 --target-accuracy 0.8 --out runs/seeds
  downhill compare --resume runs/seeds      # continue a comparison that was stopped
  downhill compare --suite small --ruleset external --out runs/suite
  downhill compare --data builtin:fashion-mnist-small --model logreg \\
                   --optimizers \"sgd(lr=0.1),adam,adagrad(lr=0.1)\" --tune-lr --out runs/logreg";
    out
}

/// Compare optimizers on the same model, data, seed and initial weights.
///
/// Each optimizer trains the same model from the same initial weights on the
/// same batches; with --seeds, once per seed (a paired design), and the
/// report ranks them with 95% intervals and says which differences hold up.
/// The output folder gets loss.png (training loss per epoch),
/// loss_steps.png (smoothed per step), accuracy.png and test_loss.png (with
/// .svg of each), summary.json, summary.md (final and best loss and accuracy,
/// epochs and seconds to reach a target loss, time per epoch), report.html
/// (self-contained, pictures inline) and runs/ with each run's metrics.
/// Without --preset or --optimizers, runs the `quick` preset (about a minute).
#[derive(Args, Debug)]
#[command(
    allow_negative_numbers = true,
    after_help = presets_help()
)]
pub struct CompareArgs {
    /// A named experiment (see below).
    #[arg(long, value_name = "NAME", conflicts_with = "suite")]
    preset: Option<String>,
    /// Run a suite of workloads, each with a step budget and a validation
    /// target, and score the optimizers by AlgoPerf's performance profiles
    /// (see below). Takes --optimizers, --seeds, --jobs, --ruleset.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["data", "model", "epochs", "steps", "eval_every", "batch_size", "tune_lr", "target_accuracy", "target_loss"])]
    suite: Option<String>,
    /// With --suite: `self` (each optimizer as given, no tuning) or
    /// `external` (K trials per optimizer from the suite's search space;
    /// on each workload the fastest counts).
    #[arg(long, value_name = "RULES", default_value = "self", requires = "suite")]
    ruleset: String,
    /// With --ruleset external: trials per optimizer. [default: the suite's]
    #[arg(long, value_name = "K", requires = "suite")]
    trials: Option<usize>,
    /// Data spec (overrides the preset's).
    #[arg(long, value_name = "SPEC")]
    data: Option<String>,
    /// Model spec (overrides the preset's).
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Optimizer specs separated by commas, e.g. "sgd(lr=0.05,momentum=0.9),adam,adagrad(lr=0.1)".
    #[arg(long, value_name = "LIST")]
    optimizers: Option<String>,
    /// Epochs (scales a preset down for a quick look).
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Train every optimizer by steps instead of epochs: exactly N optimizer
    /// steps each, on the same batches (as `downhill train --steps`); the
    /// curves are then drawn against steps. Not with --epochs.
    #[arg(long, value_name = "N")]
    steps: Option<u64>,
    /// With --steps: evaluate every K steps (and after the last).
    /// [default: ceil(N / 10)]
    #[arg(long, value_name = "K")]
    eval_every: Option<u64>,
    /// Examples per step (0 = full batch).
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Seed of the initial weights, shuffling and dropout, shared by every run.
    #[arg(long, value_name = "N", conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run every optimizer once per seed: a count N (seeds 0..N-1) or a
    /// list "1,2,3". Within a seed every optimizer gets the same initial
    /// weights and batches; the ranking gives each optimizer's mean and 95%
    /// interval over seeds, and a paired test against the best.
    #[arg(long, value_name = "N|LIST")]
    seeds: Option<String>,
    /// The paired test of the verdicts: `t` (paired t test) or `wilcoxon`
    /// (signed-rank; it cannot reach p < 0.05 below six seeds).
    #[arg(long, value_name = "TEST", default_value = "t")]
    test: String,
    /// Runs at a time, each on its own share of the cores (results do not
    /// depend on it: a run's bits do not depend on its thread count).
    #[arg(long, value_name = "J", default_value_t = 1)]
    pub(crate) jobs: usize,
    /// L2 penalty on weights.
    #[arg(long, value_name = "F")]
    l2: Option<f64>,
    /// Learning-rate schedule applied to every optimizer.
    #[arg(long, value_name = "SPEC")]
    schedule: Option<String>,
    /// Use only the first N training examples.
    #[arg(long, value_name = "N")]
    limit_train: Option<usize>,
    /// Use only the first N test examples.
    #[arg(long, value_name = "N")]
    limit_test: Option<usize>,
    /// Tune each optimizer's learning rate on a log grid first (scored on
    /// held-out training data). The Adam-paper presets tune by default, as
    /// the paper searched its step sizes.
    #[arg(long)]
    tune_lr: bool,
    /// Run the rates as given, even for a preset that tunes by default.
    #[arg(long, conflicts_with = "tune_lr")]
    no_tune_lr: bool,
    /// Learning rates to try. [default: 1e-4,3e-4,...,0.3,1]
    #[arg(long, value_name = "LIST")]
    tune_grid: Option<String>,
    /// Epochs per tuning trial. [default: 2; with --steps, trials run by steps]
    #[arg(long, value_name = "N")]
    tune_epochs: Option<usize>,
    /// Steps per tuning trial (trials by steps). [default: with --steps, the
    /// same N; otherwise trials run --tune-epochs epochs]
    #[arg(long, value_name = "N", conflicts_with = "tune_epochs")]
    tune_steps: Option<u64>,
    /// Training examples used for tuning. [default: 10000]
    #[arg(long, value_name = "N")]
    tune_limit: Option<usize>,
    /// Time every run to the first evaluation whose held-out accuracy
    /// (validation split, else test split) is at least F, a fraction.
    #[arg(long, value_name = "F", conflicts_with = "target_loss")]
    target_accuracy: Option<f64>,
    /// Time every run to the first evaluation whose held-out loss is at
    /// most F. [default: without either target, the highest final training
    /// loss, the level every run reached]
    #[arg(long, value_name = "F")]
    target_loss: Option<f64>,
    /// Continue the comparison in DIR (its --out folder) that was stopped:
    /// finished runs are kept, unfinished ones continue from their
    /// checkpoints; the settings are the comparison's own.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "suite", "data", "model", "optimizers", "out"])]
    resume: Option<PathBuf>,
    /// Worker threads. [default: all cores]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Output folder (must not hold a comparison already).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_list(flag: &str, text: &str) -> Result<Vec<f64>, UserError> {
    text.split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| UserError(format!("{flag}: `{x}` is not a number")))
        })
        .collect()
}

/// `--seeds N` (0..N-1) or `--seeds 1,2,3`.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, UserError> {
    let bad = |x: &str| {
        UserError(format!(
            "--seeds: `{x}` is not a count or a list of seeds (expected e.g. 5 or 1,2,3)"
        ))
    };
    if !text.contains(',') {
        let n: u64 = text.trim().parse().map_err(|_| bad(text))?;
        if n == 0 {
            return Err(UserError("--seeds: 0 seeds; give at least 1".into()));
        }
        return Ok((0..n).collect());
    }
    text.split(',')
        .map(|x| x.trim().parse::<u64>().map_err(|_| bad(x)))
        .collect()
}

/// The console or silence, for each run.
pub fn observer(quiet: bool) -> impl Fn(&str) -> Box<dyn Observer> + Sync {
    move |label: &str| -> Box<dyn Observer> {
        if quiet {
            Box::new(Silent)
        } else {
            Box::new(Console::new(label))
        }
    }
}

/// Prints the table (`summary.md` of a comparison, `suite.md` of a suite)
/// and the report's path.
fn print_outcome(out: &std::path::Path, table: &str) {
    eprintln!(
        "\n{}",
        std::fs::read_to_string(out.join(table)).unwrap_or_default()
    );
    eprintln!("report: {}", out.join("report.html").display());
}

pub fn run(a: CompareArgs) -> Result<(), UserError> {
    if a.jobs == 0 {
        return Err(UserError(
            "--jobs: 0 is invalid: expected at least 1".into(),
        ));
    }
    #[cfg(feature = "mpi")]
    {
        if let Some(session) = downhill_train::distributed::init().map_err(UserError)? {
            if session.world().size() > 1 {
                return crate::parallel::compare(a, session);
            }
        }
    }
    let exec = Local { jobs: a.jobs };
    run_with(a, &exec)
}

/// Runs `downhill compare` with the given executor (several processes
/// under MPI, or this one).
pub fn run_with(a: CompareArgs, exec: &dyn Executor) -> Result<(), UserError> {
    let quiet = a.quiet || !exec.writes();
    if let Some(dir) = &a.resume {
        if dir.join(downhill_lab::suite::SUITE_FILE).exists() {
            let r = downhill_lab::suite::resume_suite(dir, &observer(quiet), exec)?;
            if r.is_some() && !quiet {
                print_outcome(dir, "suite.md");
            }
            return Ok(());
        }
        let r = downhill_lab::compare::resume(dir, &observer(quiet), exec)?;
        if r.is_some() && !quiet {
            print_outcome(dir, "summary.md");
        }
        return Ok(());
    }
    if let Some(name) = &a.suite {
        let s = suite_settings(&a, name)?;
        let out = s.out.clone();
        let r = downhill_lab::suite::run_suite(&s, &observer(quiet), exec, false)?;
        if r.is_some() && !quiet {
            print_outcome(&out, "suite.md");
        }
        return Ok(());
    }
    let settings = settings(&a)?;
    let out = settings.out.clone();
    let r = compare(&settings, &observer(quiet), exec)?;
    if r.is_some() && !quiet {
        print_outcome(&out, "summary.md");
    }
    Ok(())
}

/// The suite the flags ask for.
fn suite_settings(a: &CompareArgs, name: &str) -> Result<SuiteSettings, UserError> {
    let suite = downhill_lab::suite::suite(name)?;
    let ruleset = Ruleset::parse(&a.ruleset).ok_or_else(|| {
        UserError(format!(
            "--ruleset: `{}` is not a ruleset: expected self or external",
            a.ruleset
        ))
    })?;
    if a.trials.is_some() && ruleset != Ruleset::External {
        return Err(UserError(
            "--trials: trials are the external ruleset's; add --ruleset external".into(),
        ));
    }
    Ok(SuiteSettings {
        optimizers: match &a.optimizers {
            Some(list) => downhill_lab::compare::parse_specs(list)?,
            None => suite.optimizers.clone(),
        },
        trials: a.trials.unwrap_or(suite.trials),
        suite,
        ruleset,
        seeds: match a.seeds.as_deref() {
            Some(s) => parse_seeds(s)?,
            None => vec![a.seed.unwrap_or(0)],
        },
        test: paired_test(&a.test)?,
        threads: a.threads,
        out: a.out.clone().expect("clap requires --out without --resume"),
    })
}

fn paired_test(name: &str) -> Result<PairedTest, UserError> {
    PairedTest::parse(name).ok_or_else(|| {
        UserError(format!(
            "--test: `{name}` is not a test: expected t or wilcoxon"
        ))
    })
}

/// The comparison the flags ask for.
fn settings(a: &CompareArgs) -> Result<CompareSettings, UserError> {
    let name = a
        .preset
        .as_deref()
        .unwrap_or(if a.optimizers.is_some() { "" } else { "quick" });
    let mut p = if name.is_empty() {
        None
    } else {
        Some(preset(name)?)
    };
    let mut base = p.as_ref().map(|p| p.base.clone()).unwrap_or_default();
    if let Some(d) = &a.data {
        base.data = d.clone();
    } else if let Some(need) = p.as_ref().and_then(|p| p.needs_data) {
        return Err(UserError(format!("--preset {name} needs --data {need}")));
    }
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = &a.$f { base.$f = v.clone(); } )* };
    }
    if a.steps.is_some() && a.epochs.is_some() {
        return Err(UserError(downhill_train::config::STEPS_AND_EPOCHS.into()));
    }
    set!(model, epochs, batch_size, seed, l2);
    if a.steps.is_some() {
        base.steps = a.steps;
    }
    if a.eval_every.is_some() {
        base.eval_every = a.eval_every;
    }
    if a.schedule.is_some() {
        base.schedule = a.schedule.clone();
    }
    base.limit_train = a.limit_train.or(base.limit_train);
    base.limit_test = a.limit_test.or(base.limit_test);
    base.threads = a.threads.or(base.threads);
    let optimizers = match &a.optimizers {
        Some(list) => downhill_lab::compare::parse_specs(list)?,
        None => p.as_ref().map(|p| p.optimizers.clone()).unwrap_or_default(),
    };
    let preset_tunes = p.as_ref().is_some_and(|p| p.tune) && a.optimizers.is_none();
    let tune = if a.tune_lr || (preset_tunes && !a.no_tune_lr) {
        let mut t = TuneSettings::default();
        if let Some(g) = &a.tune_grid {
            t.grid = parse_list("--tune-grid", g)?;
        }
        if a.tune_epochs.is_some() && base.steps.is_some() {
            return Err(UserError(
                "--tune-epochs: the comparison trains by --steps; give the trials' budget with --tune-steps".into(),
            ));
        }
        t.epochs = a.tune_epochs.unwrap_or(t.epochs);
        t.steps = a.tune_steps;
        t.limit_train = a.tune_limit.unwrap_or(t.limit_train);
        Some(t)
    } else {
        None
    };
    let target = match (a.target_accuracy, a.target_loss) {
        (Some(value), _) => Some(Target {
            metric: TargetMetric::Accuracy,
            value,
        }),
        (None, Some(value)) => Some(Target {
            metric: TargetMetric::Loss,
            value,
        }),
        (None, None) => None,
    };
    let test = paired_test(&a.test)?;
    Ok(CompareSettings {
        title: if name.is_empty() {
            "compare".into()
        } else {
            name.to_string()
        },
        base,
        optimizers,
        seeds: a
            .seeds
            .as_deref()
            .map(parse_seeds)
            .transpose()?
            .unwrap_or_default(),
        tune,
        target,
        test,
        out: a.out.clone().expect("clap requires --out without --resume"),
        notes: p.take().map(|p| p.notes).unwrap_or_default(),
    })
}
