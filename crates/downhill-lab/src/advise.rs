//! `downhill advise`: which optimiser family fits a data set and why, from
//! numbers computed on it; and a race that settles it by successive halving.
//!
//! The rules follow the usual guidance and the Adam paper's evidence:
//! adaptive methods (Adagrad, Adam) for sparse features of very unequal
//! frequency, since each coordinate's step grows as its gradients are rare;
//! Adam as the robust default on dense data, with SGD + Nesterov momentum as
//! the strong alternative once its rate is tuned; full-batch L-BFGS when a
//! pass over the data is cheap and the model is convex (logistic regression).

use crate::error::{write_json, LabError};
use crate::figures::FORMATS;
use crate::tune::{round_rate, tuning_split, with_lr, TuneSettings};
use downhill::Rng;
use downhill_data::{stats, DataSplit, DataStats};
use downhill_nn::{Input, ModelSpec};
use downhill_plot::{LineChart, LineStyle, Series};
use downhill_train::{Silent, TrainConfig, TrainError, Trainer};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One suggestion with its reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// An optimiser spec to try.
    pub optimizer: String,
    /// Why, in a sentence that cites the numbers.
    pub why: String,
}

/// The advice and the evidence it rests on.
#[derive(Clone, Debug, Serialize)]
pub struct Advice {
    /// The data spec.
    pub data: String,
    /// The model the costs were measured for.
    pub model: String,
    /// Its trainable parameters.
    pub parameters: usize,
    /// Statistics of the training split.
    pub stats: DataStats,
    /// Measured seconds of one forward-backward pass over 256 examples.
    pub seconds_per_256: f64,
    /// Estimated seconds of one full-batch gradient.
    pub full_batch_seconds: f64,
    /// Memory of a 10-pair L-BFGS history, in bytes.
    pub lbfgs_memory_bytes: u64,
    /// Whether full-batch L-BFGS is affordable here.
    pub lbfgs_affordable: bool,
    /// Findings, each with its number.
    pub evidence: Vec<String>,
    /// Suggestions, best first.
    pub suggestions: Vec<Suggestion>,
}

impl std::fmt::Display for Advice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "data {} with model {} ({} parameters)",
            self.data, self.model, self.parameters
        )?;
        writeln!(f, "\nevidence:")?;
        for e in &self.evidence {
            writeln!(f, "  - {e}")?;
        }
        writeln!(f, "\nadvice (best first):")?;
        for (i, s) in self.suggestions.iter().enumerate() {
            writeln!(f, "  {}. {}\n     {}", i + 1, s.optimizer, s.why)?;
        }
        Ok(())
    }
}

/// Seconds for one forward-backward pass over (up to) 256 training examples
/// of `model`, measured (best of three).
fn time_step(
    data: &DataSplit,
    model: &str,
    seed: u64,
) -> Result<(usize, f64, Vec<downhill::optim::Param>), LabError> {
    let d = &data.train;
    let cfg = TrainConfig {
        model: model.to_string(),
        seed,
        ..TrainConfig::default()
    };
    let mut net = downhill_train::build_network(&cfg, d)
        .map_err(|e| LabError::Invalid(format!("--model: {e}")))?;
    let rows: Vec<usize> = (0..d.len().min(256)).collect();
    let mut x = vec![0.0f32; rows.len() * d.dim()];
    let mut y = vec![0u32; rows.len()];
    d.gather_dense(&rows, &mut x, &mut y)?;
    let mut rng = Rng::new(seed);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        net.loss_and_grad(
            Input::Dense {
                values: &x,
                rows: rows.len(),
                dim: d.dim(),
            },
            &y,
            &mut rng,
        )
        .map_err(|e| LabError::Invalid(e.to_string()))?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok((
        net.params().len(),
        best * 256.0 / rows.len() as f64,
        net.optimizer_params(),
    ))
}

/// Computes the statistics and the advice for `model` on `data`.
pub fn advise(spec: &str, data: &DataSplit, model: &str, seed: u64) -> Result<Advice, LabError> {
    let st = stats(&data.train);
    let mspec: ModelSpec = model
        .parse()
        .map_err(|e| LabError::Invalid(format!("--model: {e}")))?;
    let (parameters, seconds_per_256, params) = time_step(data, model, seed)?;
    let full_batch_seconds = seconds_per_256 * st.examples as f64 / 256.0;
    let lbfgs_memory_bytes = 2 * 10 * parameters as u64 * 4;
    let convex = matches!(mspec.kind, downhill_nn::ModelKind::Logreg);
    let lbfgs_affordable = full_batch_seconds < 2.0 && lbfgs_memory_bytes < 1 << 30;
    // Text is a stream of token ids: feature statistics say nothing there.
    let text = data.train.is_text();
    let sparse = st.density < 0.1 && !text;
    let skewed = (st.gini > 0.5 || st.top1pct_share > 0.2) && !text;
    let mut evidence = if text {
        vec![format!(
            "text: {} training windows of {} characters over a vocabulary of {}, a language model's data",
            st.examples, st.features, st.classes
        )]
    } else {
        vec![
        format!("{} training examples, {} features ({} ever non-zero), {} classes", st.examples, st.features, st.active_features, st.classes),
        format!(
            "density {:.4} ({:.1} non-zeros per example): {}",
            st.density,
            st.nonzeros_per_example,
            if sparse { "sparse" } else { "dense" }
        ),
        format!(
            "feature frequencies: Gini coefficient {:.3}, the top 1% of features hold {:.1}% of the non-zeros: {}",
            st.gini,
            100.0 * st.top1pct_share,
            if skewed { "very unequal (many rare features)" } else { "fairly even" }
        ),
        format!("class balance {:.3} (majority class {:.1}%)", st.class_balance, 100.0 * st.majority_fraction),
        ]
    };
    evidence.extend([
        format!(
            "model {model}: {parameters} parameters; a forward-backward pass over 256 examples took {:.2} ms here, so a full-batch gradient costs about {:.2} s",
            1e3 * seconds_per_256,
            full_batch_seconds
        ),
        format!(
            "an L-BFGS history of 10 pairs needs {:.1} MiB: full-batch L-BFGS is {}",
            lbfgs_memory_bytes as f64 / (1 << 20) as f64,
            if lbfgs_affordable { "affordable" } else { "too costly per iteration" }
        ),
    ]);
    let mut suggestions = Vec::new();
    if text {
        suggestions.push(Suggestion {
            optimizer: "adamw(lr=0.001,betas=0.9,0.99,weight_decay=0.1)".into(),
            why: "a language model: AdamW is the standard for transformers, here at nanoGPT's settings for character-level Shakespeare (Karpathy 2022); `downhill compare --preset modern-lm` runs the modern family on such a model".into(),
        });
    } else if sparse && skewed {
        suggestions.push(Suggestion {
            optimizer: "adagrad(lr=0.05)".into(),
            why: format!("sparse (density {:.4}) and skewed (Gini {:.2}) features: Adagrad's per-coordinate steps stay large for rare features, which carry much of the signal in such data (Duchi et al., 2011)", st.density, st.gini),
        });
        suggestions.push(Suggestion {
            optimizer: "adam(lr=0.001)".into(),
            why: "adaptive like Adagrad but with decaying averages, so steps do not shrink forever; the Adam paper's bag-of-words experiment shows it matching Adagrad on sparse data".into(),
        });
    } else {
        suggestions.push(Suggestion {
            optimizer: "adam(lr=0.001)".into(),
            why: format!("dense features (density {:.2}): Adam is the robust default, working across models with its standard rate", st.density),
        });
        suggestions.push(Suggestion {
            optimizer: "sgd(lr=0.05,momentum=0.9,nesterov=true)".into(),
            why: "SGD with Nesterov momentum often generalises as well or better on dense image data once its rate (and a decay schedule) are tuned; try `downhill compare --tune-lr`".into(),
        });
    }
    if lbfgs_affordable && convex {
        suggestions.insert(
            0,
            Suggestion {
                optimizer: "lbfgs(line_search_fn=strong_wolfe)".into(),
                why: format!("the model is convex (logistic regression) and a full-batch gradient costs only ~{full_batch_seconds:.2} s: L-BFGS converges in far fewer passes than first-order methods, with no learning rate to tune"),
            },
        );
    } else if lbfgs_affordable && !text {
        suggestions.push(Suggestion {
            optimizer: "lbfgs(line_search_fn=strong_wolfe)".into(),
            why: format!("a full-batch gradient costs only ~{full_batch_seconds:.2} s, so L-BFGS is affordable, but the model is not convex: it can stall in a poor region; use it to polish"),
        });
    }
    // Hidden matrices: what Muon is for (Jordan et al. 2024; Liu et al. 2025).
    let hidden: Vec<&downhill::optim::Param> = params
        .iter()
        .filter(|p| p.role == downhill::optim::Role::Hidden)
        .collect();
    let hidden_share =
        hidden.iter().map(|p| p.len()).sum::<usize>() as f64 / parameters.max(1) as f64;
    if !hidden.is_empty() && !sparse {
        // Newton–Schulz: 5 iterations of X·Xᵀ, A·A and P·X per matrix, next
        // to the model's forward-backward pass over a batch of 128 (3 × the
        // multiply-adds of the forward pass, 2 flops each).
        let ns_flops: f64 = hidden
            .iter()
            .filter_map(|p| p.as_matrix())
            .map(|(r, c)| {
                let (r, k) = (r.min(c) as f64, r.max(c) as f64);
                5.0 * (4.0 * r * r * k + 2.0 * r * r * r)
            })
            .sum();
        let model_flops = 6.0 * 128.0 * parameters as f64;
        let shapes: Vec<String> = hidden.iter().map(|p| format!("{:?}", p.shape)).collect();
        evidence.push(format!(
            "hidden matrices {} hold {:.0}% of the parameters; Muon's orthogonalisation of them costs about {:.1}x the model's own work per step at batch 128",
            shapes.join(", "),
            100.0 * hidden_share,
            ns_flops / model_flops
        ));
        suggestions.push(Suggestion {
            optimizer: "muon(lr=0.02)".into(),
            why: format!(
                "{:.0}% of the parameters are hidden weight matrices, what Muon orthogonalises (Jordan et al. 2024; it trained Kimi K2, Liu et al. 2025); the rest goes to AdamW. Its Newton–Schulz steps cost about {:.1}x a step's own work here, so it pays most with large batches",
                100.0 * hidden_share,
                ns_flops / model_flops
            ),
        });
    }
    if !sparse {
        suggestions.push(Suggestion {
        optimizer: "schedulefree_adamw(warmup_steps=100)".into(),
        why: "no schedule to choose and no stopping time to commit to: evaluated at its running average, it matched tuned schedules in AlgoPerf's self-tuning track (Defazio et al. 2024); `prodigy` goes further and estimates the rate itself".into(),
        });
    }
    let adam_state_mib = 8.0 * parameters as f64 / (1 << 20) as f64;
    if adam_state_mib > 512.0 {
        suggestions.push(Suggestion {
            optimizer: "adafactor".into(),
            why: format!("Adam's two moments would take {adam_state_mib:.0} MiB; Adafactor keeps row and column statistics instead (Shazeer & Stern 2018), and Lion one moment (Chen et al. 2023)"),
        });
    }
    if st.examples > 100_000 {
        evidence.push(format!("{} examples: mini-batches (e.g. 128) make many updates per pass; full batches waste that", st.examples));
    }
    Ok(Advice {
        data: spec.into(),
        model: model.into(),
        parameters,
        stats: st,
        seconds_per_256,
        full_batch_seconds,
        lbfgs_memory_bytes,
        lbfgs_affordable,
        evidence,
        suggestions,
    })
}

/// A candidate of the race.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entrant {
    /// The spec.
    pub spec: String,
    /// Held-out loss after each rung it ran (None where it diverged).
    pub scores: Vec<Option<f64>>,
    /// Epochs it trained in all.
    pub epochs: usize,
    /// Held-out loss after each of its epochs.
    pub curve: Vec<f64>,
}

/// `n` and the noun, plural unless `n` is 1: "1 epoch", "2 epochs".
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

impl Entrant {
    /// Its curve as (epoch, held-out loss) points, epochs counted from 1 as
    /// in every other chart and table.
    pub fn curve_points(&self) -> Vec<(f64, f64)> {
        // The race always has a held-out part, so every epoch has a loss and
        // position i is epoch i + 1.
        self.curve
            .iter()
            .enumerate()
            .map(|(i, &l)| ((i + 1) as f64, l))
            .collect()
    }

    /// "held-out loss 0.6931 after 1 epoch" (or "diverged after 2 epochs").
    pub fn outcome(&self) -> String {
        let last = self
            .scores
            .last()
            .copied()
            .flatten()
            .map_or("diverged".to_string(), |s| format!("held-out loss {s:.4}"));
        format!("{last} after {}", count(self.epochs, "epoch"))
    }
}

/// The outcome of a race.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Race {
    /// Every entrant, winner first.
    pub entrants: Vec<Entrant>,
    /// Rungs run.
    pub rungs: usize,
    /// Seconds spent.
    pub seconds: f64,
    /// Whether the budget ran out before one entrant was left.
    pub budget_exhausted: bool,
}

/// The race's rates around a suggested one: ×0.3, ×1 and ×3, each rounded
/// to the decimal a person would type (0.05 × 3 is 0.15000000000000002 in
/// binary; the legend and the spec to copy say 0.15).
pub fn rates_around(lr: f64) -> [f64; 3] {
    [0.3, 1.0, 3.0].map(|f| round_rate(lr * f))
}

/// The default entrants: each suggested family at three rates.
pub fn default_entrants(advice: &Advice) -> Vec<String> {
    entrants_for(&advice.suggestions)
}

/// The entrants for some suggestions: L-BFGS as it is, every other one at
/// [`rates_around`] its rate.
fn entrants_for(suggestions: &[Suggestion]) -> Vec<String> {
    let mut out = Vec::new();
    for s in suggestions {
        if s.optimizer.starts_with("lbfgs") {
            out.push(s.optimizer.clone());
            continue;
        }
        let base = s.optimizer.parse::<downhill::optim::OptimizerSpec>().ok();
        let lr = base.as_ref().and_then(|b| match b.hyper.get("lr") {
            Some(downhill::hyper::HyperValue::Number(x)) => Some(*x),
            _ => None,
        });
        for rate in rates_around(lr.unwrap_or(1e-3)) {
            if let Ok(spec) = with_lr(&s.optimizer, rate) {
                out.push(spec);
            }
        }
    }
    out
}

/// Successive halving (Jamieson & Talwalkar, 2016): every entrant trains one
/// epoch on a sample of the training data and is scored on held-out
/// training data; the better half trains on for twice as many epochs; and so
/// on until one is left or `budget_seconds` is spent. Writes `race.png` /
/// `race.svg` (held-out loss per epoch of each entrant) and `race.json` into
/// `out`.
pub fn race(
    base: &TrainConfig,
    data: &DataSplit,
    entrants: &[String],
    budget_seconds: f64,
    out: &Path,
) -> Result<Race, LabError> {
    if entrants.is_empty() {
        return Err(LabError::Invalid(
            "the race needs at least one entrant".into(),
        ));
    }
    if !(budget_seconds.is_finite() && budget_seconds > 0.0) {
        return Err(LabError::Invalid(format!(
            "--budget: {budget_seconds} is invalid: expected seconds > 0"
        )));
    }
    let started = Instant::now();
    let split = tuning_split(
        data,
        &TuneSettings {
            limit_train: 20_000,
            ..TuneSettings::default()
        },
        base.seed,
    )?;
    let mut field: Vec<(Entrant, Option<Trainer>)> = Vec::new();
    for spec in entrants {
        let cfg = TrainConfig {
            optimizer: spec.clone(),
            epochs: 1,
            valid_fraction: None,
            checkpoint_every: None,
            ..base.clone()
        };
        cfg.validate()
            .map_err(|e| LabError::Invalid(e.to_string()))?;
        let t = Trainer::with_data(cfg, split.clone(), None)?;
        field.push((
            Entrant {
                spec: spec.clone(),
                scores: Vec::new(),
                epochs: 0,
                curve: Vec::new(),
            },
            Some(t),
        ));
    }
    let mut alive: Vec<usize> = (0..field.len()).collect();
    let mut rung = 0;
    let mut epochs = 1;
    let mut exhausted = false;
    while !alive.is_empty() {
        for &i in &alive {
            if started.elapsed().as_secs_f64() > budget_seconds {
                exhausted = true;
                break;
            }
            let (entrant, trainer) = &mut field[i];
            let Some(t) = trainer.as_mut() else { continue };
            t.set_epochs(entrant.epochs + epochs);
            let score = match t.run(&mut Silent) {
                Ok(s) => s.last.and_then(|r| r.valid_loss).filter(|l| l.is_finite()),
                Err(TrainError::Diverged(_)) => None,
                Err(e) => return Err(e.into()),
            };
            entrant.curve = t.history().iter().filter_map(|r| r.valid_loss).collect();
            entrant.epochs = t.history().len();
            entrant.scores.push(score);
            if score.is_none() {
                *trainer = None;
            }
        }
        rung += 1;
        if exhausted {
            break;
        }
        let mut ranked: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|&i| field[i].1.is_some())
            .collect();
        ranked.sort_by(|&a, &b| last_score(&field[a].0).total_cmp(&last_score(&field[b].0)));
        if ranked.len() <= 1 {
            break;
        }
        ranked.truncate(ranked.len().div_ceil(2));
        alive = ranked;
        epochs *= 2;
    }
    let mut entrants: Vec<Entrant> = field.into_iter().map(|(e, _)| e).collect();
    // Winner first: the most rungs survived, then the best last score.
    entrants.sort_by(|a, b| {
        b.scores
            .len()
            .cmp(&a.scores.len())
            .then(last_score(a).total_cmp(&last_score(b)))
    });
    let result = Race {
        entrants,
        rungs: rung,
        seconds: started.elapsed().as_secs_f64(),
        budget_exhausted: exhausted,
    };
    std::fs::create_dir_all(out).map_err(|source| LabError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut chart = LineChart::new("Race: held-out loss per epoch")
        .x_label("epoch")
        .x_integer()
        .y_label("held-out loss");
    for (i, e) in result.entrants.iter().enumerate() {
        let style = if i == 0 {
            LineStyle::LineMarkers
        } else {
            LineStyle::Dashed
        };
        chart = chart.series(
            Series::new(e.spec.clone(), e.curve_points())
                .style(style)
                .color_slot(i),
        );
    }
    chart.save(out.join("race"), FORMATS)?;
    write_json(&out.join("race.json"), &result)?;
    Ok(result)
}

fn last_score(e: &Entrant) -> f64 {
    e.scores.last().copied().flatten().unwrap_or(f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::significant_digits;

    #[test]
    fn race_rates_are_the_decimals_a_person_would_type() {
        assert_eq!(rates_around(0.05), [0.015, 0.05, 0.15]);
        assert_eq!(rates_around(0.001), [0.0003, 0.001, 0.003]);
        assert_eq!(rates_around(0.1), [0.03, 0.1, 0.3]);
        for lr in [
            1e-4, 3e-4, 7e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 1.0, 0.123, 2.5,
        ] {
            for r in rates_around(lr) {
                assert!(significant_digits(r) <= 4, "{lr}: {r}");
            }
        }
        let suggestions = [
            Suggestion {
                optimizer: "adagrad(lr=0.05)".into(),
                why: String::new(),
            },
            Suggestion {
                optimizer: "lbfgs(line_search_fn=strong_wolfe)".into(),
                why: String::new(),
            },
        ];
        assert_eq!(
            entrants_for(&suggestions),
            [
                "adagrad(lr=0.015)",
                "adagrad(lr=0.05)",
                "adagrad(lr=0.15)",
                "lbfgs(line_search_fn=strong_wolfe)"
            ]
        );
    }

    #[test]
    fn race_curves_count_epochs_from_one_and_outcomes_pluralise() {
        let e = Entrant {
            spec: "adam".into(),
            scores: vec![Some(0.5)],
            epochs: 1,
            curve: vec![0.5],
        };
        assert_eq!(e.curve_points(), [(1.0, 0.5)]);
        assert_eq!(e.outcome(), "held-out loss 0.5000 after 1 epoch");
        let e = Entrant {
            spec: "adam".into(),
            scores: vec![Some(0.5), None],
            epochs: 3,
            curve: vec![0.5, 0.4, 0.3],
        };
        assert_eq!(e.curve_points(), [(1.0, 0.5), (2.0, 0.4), (3.0, 0.3)]);
        assert_eq!(e.outcome(), "diverged after 3 epochs");
        assert_eq!(count(0, "rung"), "0 rungs");
        assert_eq!(count(1, "rung"), "1 rung");
    }
}
