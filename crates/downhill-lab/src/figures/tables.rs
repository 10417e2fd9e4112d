//! The tables and sentences of a comparison's report, each as an HTML
//! table for `report.html` and Markdown for `summary.md`.

use crate::compare::{CompareResult, RankEntry, RankMetric, TargetMetric};
use downhill_plot::Table;

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite())
        .map_or("—".to_string(), |v| format!("{v:.digits$}"))
}

/// A Markdown table from a header and rows.
fn markdown(header: &[String], rows: &[Vec<String>], right_from: usize) -> String {
    let mut md = format!("| {} |\n|", header.join(" | "));
    for i in 0..header.len() {
        md += if i >= right_from { "---:|" } else { "---|" };
    }
    md += "\n";
    for r in rows {
        md += &format!("| {} |\n", r.join(" | "));
    }
    md
}

fn table(header: &[String], rows: &[Vec<String>]) -> Table {
    rows.iter()
        .fold(Table::new(header.to_vec()), |t, r| t.row(r.clone()))
}

/// The settings table and the Markdown's opening line.
pub(super) fn settings(result: &CompareResult) -> (Table, String) {
    let s = &result.settings;
    let seeds = result
        .seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let batch = if s.batch_size == 0 {
        "full batch".to_string()
    } else {
        s.batch_size.to_string()
    };
    let budget = match (s.steps, s.eval_period()) {
        (Some(n), Some(k)) => format!("{n} steps (evaluated every {k})"),
        _ => format!("{} epochs", s.epochs),
    };
    let parameters = result
        .runs
        .first()
        .map_or(0, |r| r.summary.parameters)
        .to_string();
    let rows = vec![
        vec!["data".to_string(), s.data.clone()],
        vec!["model".into(), s.model.clone()],
        vec!["parameters".into(), parameters],
        vec!["batch size".into(), batch.clone()],
        vec!["budget".into(), budget.clone()],
        vec![
            if result.seeds.len() > 1 {
                "seeds (within a seed, the same initial weights for every run)".into()
            } else {
                "seed (same initial weights for every run)".into()
            },
            seeds.clone(),
        ],
        vec![
            "schedule".into(),
            s.schedule.clone().unwrap_or_else(|| "none".into()),
        ],
        vec!["L2".into(), s.l2.to_string()],
    ];
    let head = format!(
        "Data `{}`, model `{}`, batch {batch}, {budget}, seed{} {seeds}.\n\n",
        s.data,
        s.model,
        if result.seeds.len() > 1 { "s" } else { "" }
    );
    (table(&["setting".into(), "value".into()], &rows), head)
}

/// `mean ± half-width` (or the value alone with one seed), in percent for
/// accuracies.
pub fn mean_pm(e: &RankEntry) -> String {
    let scale = if e.metric.higher_is_better() {
        100.0
    } else {
        1.0
    };
    let digits = if e.metric.higher_is_better() { 2 } else { 4 };
    match (e.mean, e.half_width()) {
        (Some(m), Some(h)) => format!("{:.digits$} ± {:.digits$}", scale * m, scale * h),
        (Some(m), None) => format!("{:.digits$}", scale * m),
        (None, _) => {
            let diverged = e.per_seed.iter().filter(|v| v.is_none()).count();
            format!("diverged ({diverged} of {})", e.per_seed.len())
        }
    }
}

/// Column title of the ranking metric.
fn metric_title(m: RankMetric) -> &'static str {
    match m {
        RankMetric::TestAccuracy => "final test acc. (%)",
        RankMetric::ValidAccuracy => "final valid. acc. (%)",
        RankMetric::ValidLoss => "final valid. loss",
        RankMetric::TrainLoss => "final train loss",
    }
}

/// The results table: one row per optimiser, best first.
pub(super) fn results(result: &CompareResult) -> (Table, String) {
    let by_steps = result.settings.steps.is_some();
    let unit = if by_steps { "step" } else { "epoch" };
    let several = result.seeds.len() > 1;
    let target = result.target.map_or("—".into(), |t| t.describe());
    let mut header = vec![
        "rank".to_string(),
        "optimizer".into(),
        metric_title(result.metric).to_string(),
        "final train loss".into(),
        format!("{unit}s to target"),
        "seconds to target".into(),
        if by_steps {
            "s / evaluation".into()
        } else {
            "s / epoch".into()
        },
    ];
    if several {
        header.push("against the best".into());
    }
    let mut rows = Vec::new();
    for (k, e) in result.ranking.iter().enumerate() {
        let runs: Vec<_> = result.runs_of(&e.label).collect();
        let mean_of = |f: &dyn Fn(&crate::compare::RunResult) -> Option<f64>| {
            let v: Option<Vec<f64>> = runs.iter().map(|r| f(r)).collect();
            v.and_then(|v| crate::stats::mean(&v))
        };
        let train = mean_of(&|r| {
            r.history
                .last()
                .map(|h| h.train_loss)
                .filter(|_| r.summary.diverged.is_none())
        });
        let spe = mean_of(&|r| Some(r.seconds_per_epoch));
        // Medians over seeds; by epochs, the epoch numbers are whole.
        let (steps, secs) = match &e.to_target {
            Some(t) => {
                let per_unit: Vec<f64> = runs
                    .iter()
                    .map(|r| {
                        r.reached.map_or(f64::INFINITY, |x| {
                            if by_steps {
                                x.step as f64
                            } else {
                                x.epoch as f64
                            }
                        })
                    })
                    .collect();
                let m = crate::compare::median(&per_unit);
                let reached = t.reached();
                let of = if several {
                    format!(" ({reached}/{})", runs.len())
                } else {
                    String::new()
                };
                (
                    if m.is_finite() {
                        format!("{m}{of}")
                    } else {
                        format!("not reached{of}")
                    },
                    fmt_opt(Some(t.median_seconds()), 2),
                )
            }
            None => ("—".into(), "—".into()),
        };
        let diverged = runs
            .iter()
            .find_map(|r| r.summary.diverged.as_ref())
            .map(|d| format!(" (diverged at step {})", d.step))
            .unwrap_or_default();
        let name = match runs.first() {
            Some(r) if !several && r.spec != r.label => {
                format!("{} → {}{diverged}", r.label, r.spec)
            }
            _ => format!("{}{diverged}", e.label),
        };
        let mut row = vec![
            (k + 1).to_string(),
            name,
            mean_pm(e),
            fmt_opt(train, 4),
            steps,
            secs,
            fmt_opt(spe, 2),
        ];
        if several {
            row.push(if k == 0 {
                "best".into()
            } else {
                result
                    .verdicts
                    .iter()
                    .find(|v| v.label == e.label)
                    .map_or("—".into(), |v| v.verdict.clone())
            });
        }
        rows.push(row);
    }
    let caption = format!(
        "Ranked by the {}. {} Target: {target}{}; times are medians over seeds, a run that never reached it counting as infinite.",
        metric_title(result.metric).replace("final", "final (mean over seeds)"),
        if several {
            "Mean ± the half-width of the 95% Student t interval of the mean."
        } else {
            "One seed: no interval (give --seeds for one)."
        },
        match result.target.map(|t| t.metric) {
            Some(TargetMetric::TrainLoss) => " (the highest final training loss, the level every run reached)",
            _ => "",
        },
    );
    let md = format!("{}\n{caption}\n", markdown(&header, &rows, 2));
    (table(&header, &rows).caption(caption), md)
}

/// A p-value: three decimals, or two significant digits below 0.001.
fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// The verdicts in words, with several seeds.
pub(super) fn verdicts(result: &CompareResult) -> Option<(Vec<String>, String)> {
    if result.seeds.len() < 2 || result.verdicts.is_empty() {
        return None;
    }
    let test = result.verdicts[0].test.describe();
    let mut lines = vec![format!(
        "Each optimizer against the best ({}), by a {test} over the {} seeds, Holm-corrected across the {} comparisons at a family-wise level of 5%:",
        result.verdicts[0].against,
        result.seeds.len(),
        result.verdicts.len()
    )];
    for v in &result.verdicts {
        let p = match (v.p_value, v.p_holm) {
            (Some(p), Some(h)) => format!("p = {}, Holm-adjusted {}", fmt_p(p), fmt_p(h)),
            _ => format!(
                "no test possible ({} finished pairs, or no spread)",
                v.pairs
            ),
        };
        let need = match (v.verdict.as_str(), v.seeds_needed) {
            ("not distinguishable at these seeds", Some(n)) => format!(
                "; about {n} seeds would tell them apart at this difference and spread (80% power)"
            ),
            _ => String::new(),
        };
        let diff = v.mean_difference.map_or(String::new(), |d| {
            if result.metric.higher_is_better() {
                format!(", mean difference {:+.2} points", 100.0 * d)
            } else {
                format!(", mean difference {d:+.4}")
            }
        });
        lines.push(format!("{}: {} ({p}{diff}){need}.", v.label, v.verdict));
    }
    let md = format!(
        "\n## Verdicts\n\n{}\n\n{}\n",
        lines[0],
        lines[1..]
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Some((lines, md))
}

/// The learning-rate grids, when tuned.
pub(super) fn tuning(result: &CompareResult) -> Option<(Table, String)> {
    let mut rows = Vec::new();
    for label in result.labels() {
        let Some(tune) = result.runs_of(label).find_map(|r| r.tuning.as_ref()) else {
            continue;
        };
        for p in &tune.grid {
            rows.push(vec![
                label.to_string(),
                p.lr.to_string(),
                p.holdout_loss
                    .map_or("diverged".into(), |l| format!("{l:.4}")),
                if p.lr == tune.best_lr {
                    "✓".into()
                } else {
                    String::new()
                },
            ]);
        }
    }
    if rows.is_empty() {
        return None;
    }
    let header: Vec<String> = ["optimizer", "learning rate", "held-out loss", "chosen"]
        .map(String::from)
        .to_vec();
    let md = format!(
        "\n## Learning-rate tuning\n\n{}",
        markdown(&header, &rows, 1)
    );
    Some((table(&header, &rows), md))
}
