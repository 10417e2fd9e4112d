//! `downhill compare`.

use crate::UserError;
use clap::Args;
use downhill_lab::presets::preset;
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
    out += "Image presets default to Fashion-MNIST (apt-get install dataset-fashion-mnist).

Examples:
  downhill compare --out runs/quick
  downhill compare --preset adam-paper-mlp --epochs 5 --out runs/mlp
  downhill compare --preset quick --steps 1000 --eval-every 100 --out runs/steps
  downhill compare --data builtin:fashion-mnist-small --model logreg \\
                   --optimizers \"sgd(lr=0.1),adam,adagrad(lr=0.1)\" --tune-lr --out runs/logreg";
    out
}

/// Compare optimizers on the same model, data, seed and initial weights.
///
/// Each optimizer trains the same model from the same initial weights on the
/// same batches. The output folder gets loss.png (training loss per epoch),
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
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
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
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
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
    /// Training loss for the "epochs/seconds to reach" columns. [default: the highest final loss]
    #[arg(long, value_name = "F")]
    target_loss: Option<f64>,
    /// Worker threads. [default: all cores]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Output folder (must not hold a comparison already).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
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

pub fn run(a: CompareArgs) -> Result<(), UserError> {
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
    let settings = CompareSettings {
        title: if name.is_empty() {
            "compare".into()
        } else {
            name.to_string()
        },
        base,
        optimizers,
        tune,
        target_loss: a.target_loss,
        out: a.out.clone(),
        notes: p.take().map(|p| p.notes).unwrap_or_default(),
    };
    let quiet = a.quiet;
    let mut observer = |label: &str| -> Box<dyn Observer> {
        if quiet {
            Box::new(Silent)
        } else {
            Box::new(Console::new(label))
        }
    };
    compare(&settings, &mut observer)?;
    if !quiet {
        eprintln!(
            "\n{}",
            std::fs::read_to_string(a.out.join("summary.md")).unwrap_or_default()
        );
        eprintln!("report: {}", a.out.join("report.html").display());
    }
    Ok(())
}
