//! A suite's score: AlgoPerf's performance profiles over the workloads'
//! times to target, and `suite.json`, `suite.md`, `profile.png` and the
//! report.

use super::{Ruleset, SuiteSettings};
use crate::compare::Target;
use crate::error::{write_file, write_json, LabError};
use crate::figures::FORMATS;
use downhill_plot::{LineChart, LineStyle, Report, Scale, Section, Series, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The profile's upper end (AlgoPerf's `r_max`).
pub const TAU_MAX: f64 = 4.0;

/// One optimiser's standing across the suite.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Standing {
    /// The optimiser.
    pub optimizer: String,
    /// Per workload (in the suite's order): the configuration that counted
    /// (the fastest trial under the external ruleset).
    pub chosen: Vec<String>,
    /// Per workload: median seconds to the target (`null`: not reached).
    pub seconds: Vec<Option<f64>>,
    /// Per workload: median steps to the target (`null`: not reached).
    pub steps: Vec<Option<f64>>,
    /// Per workload: seconds divided by the best optimiser's (`null`: not
    /// reached).
    pub ratios: Vec<Option<f64>>,
    /// The normalised area under the profile by seconds: the score.
    pub score: f64,
    /// The same score with steps in place of seconds (hardware-free, and
    /// the same on every run).
    pub score_by_steps: f64,
}

/// A suite's outcome, as written to `suite.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteResult {
    /// The suite's name.
    pub suite: String,
    /// The ruleset.
    pub ruleset: Ruleset,
    /// Trials per optimiser (1 under the self-tuning ruleset).
    pub trials: usize,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Workload names, in order.
    pub workloads: Vec<String>,
    /// Targets, per workload.
    pub targets: Vec<Target>,
    /// Optimisers, best score first.
    pub standings: Vec<Standing>,
}

/// Reads each workload's `summary.json` and scores the optimisers.
pub(super) fn score(settings: &SuiteSettings) -> Result<SuiteResult, LabError> {
    let workloads = &settings.suite.workloads;
    // Per optimiser, per workload: (chosen trial, seconds, steps).
    let mut table: Vec<Vec<(String, f64, f64)>> = vec![Vec::new(); settings.optimizers.len()];
    for w in workloads {
        let path = settings.out.join(&w.name).join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|source| LabError::Io {
            path: path.clone(),
            source,
        })?;
        let summary: Value = serde_json::from_str(&text)
            .map_err(|e| LabError::Invalid(format!("{}: {e}", path.display())))?;
        let ranking = summary["ranking"].as_array().cloned().unwrap_or_default();
        let time = |label: &str, field: &str| -> f64 {
            ranking
                .iter()
                .find(|e| e["label"] == label)
                .and_then(|e| e[field].as_f64())
                .unwrap_or(f64::INFINITY)
        };
        for (o, spec) in settings.optimizers.iter().enumerate() {
            // The fastest trial; among trials that never reach the target,
            // the first (the search space's order).
            let best = settings
                .trials_of(spec)?
                .into_iter()
                .map(|t| {
                    let s = time(&t, "seconds_to_target_median");
                    let n = time(&t, "steps_to_target_median");
                    (t, s, n)
                })
                .reduce(|a, b| if b.1 < a.1 { b } else { a })
                .expect("at least one trial");
            table[o].push(best);
        }
    }
    let ratios = |pick: fn(&(String, f64, f64)) -> f64| -> Vec<Vec<f64>> {
        let best: Vec<f64> = (0..workloads.len())
            .map(|w| {
                table
                    .iter()
                    .map(|r| pick(&r[w]))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        table
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&best)
                    .map(|(x, b)| {
                        if b.is_finite() {
                            pick(x) / b
                        } else {
                            f64::INFINITY
                        }
                    })
                    .collect()
            })
            .collect()
    };
    let by_seconds = ratios(|x| x.1);
    let by_steps = ratios(|x| x.2);
    let finite = |x: f64| x.is_finite().then_some(x);
    let mut standings: Vec<Standing> = settings
        .optimizers
        .iter()
        .enumerate()
        .map(|(o, name)| Standing {
            optimizer: name.clone(),
            chosen: table[o].iter().map(|x| x.0.clone()).collect(),
            seconds: table[o].iter().map(|x| finite(x.1)).collect(),
            steps: table[o].iter().map(|x| finite(x.2)).collect(),
            ratios: by_seconds[o].iter().map(|&r| finite(r)).collect(),
            score: profile_area(&by_seconds[o]),
            score_by_steps: profile_area(&by_steps[o]),
        })
        .collect();
    standings.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(SuiteResult {
        suite: settings.suite.name.clone(),
        ruleset: settings.ruleset,
        trials: match settings.ruleset {
            Ruleset::External => settings.trials,
            Ruleset::SelfTuning => 1,
        },
        seeds: settings.seeds.clone(),
        workloads: workloads.iter().map(|w| w.name.clone()).collect(),
        targets: workloads.iter().map(|w| w.target).collect(),
        standings,
    })
}

/// `ρ(τ)`: the fraction of `ratios` at most `τ`.
pub fn profile(ratios: &[f64], tau: f64) -> f64 {
    if ratios.is_empty() {
        return 0.0;
    }
    ratios.iter().filter(|&&r| r <= tau).count() as f64 / ratios.len() as f64
}

/// `(1/(τ_max − 1)) ∫₁^τ_max ρ(τ) dτ`, exactly: a workload solved at ratio
/// `r ≤ τ_max` adds `(τ_max − r)/(τ_max − 1)` over the number of workloads.
pub fn profile_area(ratios: &[f64]) -> f64 {
    if ratios.is_empty() {
        return 0.0;
    }
    ratios
        .iter()
        .map(|&r| {
            if r.is_finite() && r <= TAU_MAX {
                (TAU_MAX - r.max(1.0)) / (TAU_MAX - 1.0)
            } else {
                0.0
            }
        })
        .sum::<f64>()
        / ratios.len() as f64
}

/// `suite.json`, `suite.md`, the profile picture and `report.html`.
pub(super) fn write_outputs(settings: &SuiteSettings, r: &SuiteResult) -> Result<(), LabError> {
    let out = &settings.out;
    let mut chart = LineChart::new(format!(
        "Performance profiles: suite {}, {} ruleset",
        r.suite,
        r.ruleset.name()
    ))
    .x_label("τ (time to target ÷ the best time on that workload)")
    .x_scale(Scale::Log)
    .x_range(1.0, TAU_MAX)
    .y_label("ρ(τ): fraction of workloads")
    .y_range(0.0, 1.05);
    for (i, s) in r.standings.iter().enumerate() {
        let ratios: Vec<f64> = s
            .ratios
            .iter()
            .map(|x| x.unwrap_or(f64::INFINITY))
            .collect();
        // Breakpoints of the step function, and its ends.
        let mut xs: Vec<f64> = ratios
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x <= TAU_MAX)
            .collect();
        xs.push(1.0);
        xs.push(TAU_MAX);
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let pts = xs.into_iter().map(|t| (t, profile(&ratios, t))).collect();
        chart = chart.series(
            Series::new(format!("{} (score {:.3})", s.optimizer, s.score), pts)
                .style(LineStyle::Steps)
                .color_slot(i),
        );
    }
    chart.save(out.join("profile"), FORMATS)?;
    let mut header = vec![
        "optimizer".to_string(),
        "score".into(),
        "score by steps".into(),
    ];
    header.extend(r.workloads.iter().map(|w| format!("{w}: s (× best)")));
    let mut rows = Vec::new();
    for s in &r.standings {
        let mut row = vec![
            s.optimizer.clone(),
            format!("{:.3}", s.score),
            format!("{:.3}", s.score_by_steps),
        ];
        for w in 0..r.workloads.len() {
            row.push(match (s.seconds[w], s.ratios[w]) {
                (Some(t), Some(x)) => format!("{t:.2} ({x:.2}×)"),
                _ => "not reached".into(),
            });
        }
        rows.push(row);
    }
    let mut md = format!(
        "# Suite {}, {} ruleset\n\n{} seed(s): {}; {}.\n\n| {} |\n|{}\n",
        r.suite,
        r.ruleset.name(),
        r.seeds.len(),
        r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        match r.ruleset {
            Ruleset::External => format!(
                "{} trials per optimizer, learning rate × [{}]; on each workload the fastest trial counts",
                r.trials,
                settings
                    .suite
                    .search_space
                    .factors(r.trials)
                    .iter()
                    .map(f64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ruleset::SelfTuning => "one configuration per optimizer, no tuning".into(),
        },
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in &rows {
        md += &format!("| {} |\n", row.join(" | "));
    }
    let explain = format!(
        "Time to target: median over seeds of the seconds until the held-out metric first reached the workload's target (infinite if never). Score: the area under the performance profile ρ(τ) for τ from 1 to {TAU_MAX}, divided by {}: 1 is the fastest on every workload.",
        TAU_MAX - 1.0
    );
    md += &format!("\n{explain}\n\nTargets: {}.\n\nPicture: profile.png (and .svg); each workload's comparison is in its folder.\n",
        settings
            .suite
            .workloads
            .iter()
            .map(|w| format!("{} {}", w.name, w.target.describe()))
            .collect::<Vec<_>>()
            .join("; "));
    write_file(&out.join("suite.md"), md.as_bytes())?;
    let table = rows
        .iter()
        .fold(Table::new(header.clone()), |t, row| t.row(row.clone()));
    let mut section = Section::new("Scores").table(table).paragraph(explain);
    section = section.image_file(
        out.join("profile.png"),
        "ρ(τ): the fraction of workloads on which each optimizer reached the target within τ times the best optimizer's time.",
    );
    for w in &settings.suite.workloads {
        section = section.paragraph(format!(
            "{}: {}, model {}, {} steps, target {}; report in {}/report.html.",
            w.name,
            w.base.data,
            w.base.model,
            w.base.steps.unwrap_or(0),
            w.target.describe(),
            w.name
        ));
    }
    Report::new(format!("downhill suite: {}", r.suite))
        .section(section)
        .write(out.join("report.html"))?;
    write_json(&out.join(super::SUITE.done), r)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_area_is_algoperfs() {
        // Fastest everywhere: 1. Never within 4×: 0.
        assert_eq!(profile_area(&[1.0, 1.0]), 1.0);
        assert_eq!(profile_area(&[5.0, f64::INFINITY]), 0.0);
        // Ratio 2.5 on one of two workloads, best on the other:
        // (1 + (4 − 2.5)/3) / 2 = 0.75.
        assert!((profile_area(&[1.0, 2.5]) - 0.75).abs() < 1e-15);
        // The area equals the integral of the step function, numerically.
        let r = [1.3, 2.0, 3.7, f64::INFINITY];
        let n = 300_000;
        let h = (TAU_MAX - 1.0) / n as f64;
        let riemann: f64 = (0..n)
            .map(|i| profile(&r, 1.0 + (i as f64 + 0.5) * h) * h)
            .sum::<f64>()
            / (TAU_MAX - 1.0);
        assert!((profile_area(&r) - riemann).abs() < 1e-5);
        assert_eq!(profile(&r, 2.0), 0.5);
    }
}
