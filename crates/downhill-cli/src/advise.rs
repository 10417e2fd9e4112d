//! `downhill advise`.

use crate::UserError;
use clap::Args;
use downhill_lab::advise::{advise, count, default_entrants, race};
use downhill_lab::compare::parse_specs;
use downhill_train::TrainConfig;
use std::path::PathBuf;

/// Explain which optimizer family fits a data set, and why.
///
/// Computes the data's sparsity, how unequal its feature frequencies are
/// (Gini coefficient, share of the top 1% of features), its size and class
/// balance, and the measured cost of a gradient for the model; then names the
/// optimizers that fit, each with the numbers behind it. With --race, settles
/// it on the data: successive halving over the suggested optimizers at three
/// learning rates each, within a time budget, scored on held-out training
/// data; the winner and every entrant's curve go to --out.
#[derive(Args, Debug)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:
  downhill advise --data builtin:fashion-mnist-small
  downhill advise --data libsvm:train.svm --model logreg --race --budget 60 --out runs/race"
)]
pub struct AdviseArgs {
    /// Data spec.
    #[arg(long, value_name = "SPEC")]
    data: String,
    /// Model the costs are measured for.
    #[arg(long, value_name = "MODEL", default_value = "logreg")]
    model: String,
    /// Race the candidates (successive halving) within --budget seconds.
    #[arg(long)]
    race: bool,
    /// Seconds the race may take.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60.0,
        requires = "race"
    )]
    budget: f64,
    /// Entrants of the race instead of the suggested ones (comma-separated specs).
    #[arg(long, value_name = "LIST", requires = "race")]
    optimizers: Option<String>,
    /// Examples per step in the race.
    #[arg(long, value_name = "N", default_value_t = 128)]
    batch_size: usize,
    /// Use only the first N training examples.
    #[arg(long, value_name = "N")]
    limit_train: Option<usize>,
    /// Seed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Folder for advice.json and the race's picture and results (required with --race).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(a: AdviseArgs) -> Result<(), UserError> {
    let base = TrainConfig {
        data: a.data.clone(),
        model: a.model.clone(),
        batch_size: a.batch_size,
        seed: a.seed,
        limit_train: a.limit_train,
        ..TrainConfig::default()
    };
    base.validate()?;
    if a.race && a.out.is_none() {
        return Err(UserError(
            "--race needs --out DIR for its picture and results".into(),
        ));
    }
    let data = downhill_data::load(&base.data, &base.load_options()?)?;
    let advice = advise(&a.data, &data, &a.model, a.seed)?;
    println!("{advice}");
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).map_err(|e| UserError(format!("{}: {e}", out.display())))?;
        let path = out.join("advice.json");
        downhill::state::write_atomic(&path, serde_json::to_string_pretty(&advice)?.as_bytes())
            .map_err(|e| UserError(format!("{}: {e}", path.display())))?;
    }
    if a.race {
        let out = a.out.as_ref().expect("checked above");
        let entrants = match &a.optimizers {
            Some(list) => parse_specs(list)?,
            None => default_entrants(&advice),
        };
        println!("race: {} entrants, budget {} s", entrants.len(), a.budget);
        let r = race(&base, &data, &entrants, a.budget, out)?;
        println!(
            "after {} and {:.1} s{}:",
            count(r.rungs, "rung"),
            r.seconds,
            if r.budget_exhausted {
                " (budget spent)"
            } else {
                ""
            }
        );
        for (i, e) in r.entrants.iter().enumerate() {
            println!(
                "  {}{} — {}",
                if i == 0 { "winner: " } else { "        " },
                e.spec,
                e.outcome()
            );
        }
        println!("picture: {}", out.join("race.png").display());
    }
    Ok(())
}
