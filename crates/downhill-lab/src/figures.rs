//! Pictures, `summary.md` and `report.html` of a comparison.

use crate::compare::CompareResult;
use crate::error::{write_file, LabError};
use downhill_plot::{Format, LineChart, LineStyle, Report, Scale, Section, Series, Table};
use std::path::{Path, PathBuf};

/// The formats every picture is written in.
pub const FORMATS: &[Format] = &[Format::Png, Format::Svg];

/// Exponential moving average with bias correction (as TensorBoard's
/// smoothing), thinned to at most `max_points`.
pub fn smooth(points: &[(u64, f64)], beta: f64, max_points: usize) -> Vec<(f64, f64)> {
    let mut avg = 0.0;
    let mut weight = 0.0;
    let every = points.len().div_ceil(max_points.max(1)).max(1);
    let mut out = Vec::with_capacity(points.len() / every + 1);
    for (i, &(step, x)) in points.iter().enumerate() {
        if !x.is_finite() {
            continue;
        }
        avg = beta * avg + (1.0 - beta) * x;
        weight = beta * weight + (1.0 - beta);
        if i % every == 0 || i + 1 == points.len() {
            out.push((step as f64, avg / weight));
        }
    }
    out
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("—".to_string(), |v| format!("{v:.digits$}"))
}

/// Draws a chart of one quantity per epoch for every run: against the
/// epoch, or in a comparison by steps against the step of each evaluation
/// (the title's "per epoch" then reads "per evaluation").
fn per_epoch(
    result: &CompareResult,
    title: &str,
    y: &str,
    scale: Scale,
    f: impl Fn(&downhill_train::EpochRecord) -> Option<f64>,
) -> LineChart {
    let by_steps = result.settings.steps.is_some();
    let title = if by_steps {
        title.replace("per epoch", "per evaluation")
    } else {
        title.to_string()
    };
    let mut chart = LineChart::new(title)
        .x_label(if by_steps { "step" } else { "epoch" })
        .x_integer()
        .y_label(y)
        .y_scale(scale);
    for (i, r) in result.runs.iter().enumerate() {
        let pts: Vec<(f64, f64)> = r
            .history
            .iter()
            .filter_map(|h| {
                let x = if by_steps {
                    h.step as f64
                } else {
                    h.epoch as f64
                };
                f(h).map(|v| (x, v))
            })
            .collect();
        chart = chart.series(
            Series::new(r.spec.clone(), pts)
                .style(LineStyle::LineMarkers)
                .color_slot(i),
        );
    }
    chart
}

/// Writes every picture, `summary.md` and `report.html`; returns the picture stems.
pub fn write_comparison(
    result: &CompareResult,
    notes: &[String],
    out: &Path,
) -> Result<Vec<PathBuf>, LabError> {
    let any_test = result
        .runs
        .iter()
        .any(|r| r.history.iter().any(|h| h.test_accuracy.is_some()));
    // A comparison by steps: curves and columns by step, not epoch.
    let by_steps = result.settings.steps.is_some();
    let unit = if by_steps { "step" } else { "epoch" };
    let mut charts: Vec<(&str, LineChart, &str)> = vec![(
        "loss",
        per_epoch(
            result,
            "Training loss per epoch",
            "training loss",
            Scale::Log,
            |h| Some(h.train_loss),
        ),
        if by_steps {
            "Mean training loss of the steps since the previous evaluation (as trained, with dropout), at the step of each evaluation."
        } else {
            "Mean training loss of each epoch (as trained, with dropout)."
        },
    )];
    let mut steps = LineChart::new("Training loss per step (smoothed)")
        .x_label("step")
        .x_integer()
        .y_label("training loss")
        .y_scale(Scale::Log);
    for (i, r) in result.runs.iter().enumerate() {
        steps =
            steps.series(Series::new(r.spec.clone(), smooth(&r.steps, 0.95, 4000)).color_slot(i));
    }
    charts.push(("loss_steps", steps, "Each step's mini-batch loss, smoothed by an exponential moving average (β = 0.95, bias-corrected)."));
    if any_test {
        charts.push((
            "accuracy",
            per_epoch(
                result,
                "Test accuracy per epoch",
                "test accuracy (%)",
                Scale::Linear,
                |h| h.test_accuracy.map(|a| 100.0 * a),
            ),
            if by_steps {
                "Accuracy on the test split at each evaluation."
            } else {
                "Accuracy on the test split after each epoch."
            },
        ));
        charts.push((
            "test_loss",
            per_epoch(
                result,
                "Test loss per epoch",
                "test loss",
                Scale::Log,
                |h| h.test_loss,
            ),
            if by_steps {
                "Loss on the test split at each evaluation (evaluation mode)."
            } else {
                "Loss on the test split after each epoch (evaluation mode)."
            },
        ));
    }
    let mut stems = Vec::new();
    let mut report_images = Vec::new();
    for (name, chart, caption) in &charts {
        let files = chart.save(out.join(name), FORMATS)?;
        report_images.push((files[0].clone(), *caption));
        stems.push(out.join(name));
    }

    let s = &result.settings;
    let settings = Table::new(["setting", "value"])
        .row(["data".to_string(), s.data.clone()])
        .row(["model".to_string(), s.model.clone()])
        .row([
            "parameters".to_string(),
            result
                .runs
                .first()
                .map_or(0, |r| r.summary.parameters)
                .to_string(),
        ])
        .row([
            "batch size".to_string(),
            if s.batch_size == 0 {
                "full batch".into()
            } else {
                s.batch_size.to_string()
            },
        ])
        .row(match (s.steps, s.eval_period()) {
            (Some(n), Some(k)) => ["steps".to_string(), format!("{n} (evaluated every {k})")],
            _ => ["epochs".to_string(), s.epochs.to_string()],
        })
        .row([
            "seed (same initial weights for every run)".to_string(),
            s.seed.to_string(),
        ])
        .row([
            "schedule".to_string(),
            s.schedule.clone().unwrap_or_else(|| "none".into()),
        ])
        .row(["L2".to_string(), s.l2.to_string()]);
    let target = result
        .target_loss
        .map_or("—".to_string(), |t| format!("{t:.4}"));
    let mut results = Table::new([
        "optimizer".to_string(),
        "final train loss".into(),
        "best train loss".into(),
        "final test acc. (%)".into(),
        format!("best test acc. (%) @ {unit}"),
        format!("{unit}s to loss {target}"),
        format!("seconds to loss {target}"),
        if by_steps {
            "s / evaluation".into()
        } else {
            "s / epoch".into()
        },
    ]);
    let mut md = format!("# {}\n\n", result.title);
    let budget = match (s.steps, s.eval_period()) {
        (Some(n), Some(k)) => format!("{n} steps (evaluated every {k})"),
        _ => format!("{} epochs", s.epochs),
    };
    md += &format!(
        "Data `{}`, model `{}`, batch {}, {budget}, seed {}.\n\n",
        s.data,
        s.model,
        if s.batch_size == 0 {
            "full".to_string()
        } else {
            s.batch_size.to_string()
        },
        s.seed
    );
    let per = if by_steps { "evaluation" } else { "epoch" };
    md += &format!("| optimizer | final train loss | best train loss | final test acc. | best test acc. ({unit}) | {unit}s to {target} | seconds to {target} | s/{per} |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &result.runs {
        let last = r.history.last();
        // By steps, a record's `epoch` counts evaluations: show its step.
        let at = |e: usize| -> String {
            if by_steps {
                r.history
                    .iter()
                    .find(|h| h.epoch == e)
                    .map_or(e.to_string(), |h| h.step.to_string())
            } else {
                e.to_string()
            }
        };
        let best = r
            .summary
            .best_test_accuracy
            .map_or("—".to_string(), |(a, e)| {
                format!("{:.2} @ {}", 100.0 * a, at(e))
            });
        let diverged = r
            .summary
            .diverged
            .as_ref()
            .map(|d| format!(" (diverged at step {})", d.step))
            .unwrap_or_default();
        let name = if r.spec != r.label {
            format!("{} → {}{diverged}", r.label, r.spec)
        } else {
            format!("{}{diverged}", r.label)
        };
        let cells = [
            name,
            fmt_opt(last.map(|h| h.train_loss), 4),
            fmt_opt(r.summary.best_train_loss, 4),
            fmt_opt(last.and_then(|h| h.test_accuracy).map(|a| 100.0 * a), 2),
            best,
            r.epochs_to_target.map_or("not reached".into(), at),
            fmt_opt(r.seconds_to_target, 2),
            format!("{:.2}", r.seconds_per_epoch),
        ];
        md += &format!("| {} |\n", cells.join(" | "));
        results = results.row(cells);
    }
    let mut report = Report::new(format!("downhill compare: {}", result.title))
        .paragraph("Every optimizer trained the same model from the same initial weights, on the same data in the same order.")
        .section(Section::new("Settings").table(settings));
    for n in notes {
        report = report.paragraph(n.clone());
        md += &format!("\n{n}\n");
    }
    let mut res = Section::new("Results").table(results.caption(format!(
        "The target loss is {}.",
        if result.target_loss.is_some() {
            format!("{target} (the highest final training loss, unless given)")
        } else {
            "not set".into()
        }
    )));
    for (file, caption) in &report_images {
        res = res.image_file(file, *caption);
    }
    report = report.section(res);
    let tuned: Vec<_> = result
        .runs
        .iter()
        .filter_map(|r| r.tuning.as_ref().map(|t| (r, t)))
        .collect();
    if !tuned.is_empty() {
        let mut t = Table::new(["optimizer", "learning rate", "held-out loss", "chosen"]);
        md += "\n## Learning-rate tuning\n\n| optimizer | learning rate | held-out loss | chosen |\n|---|---:|---:|---|\n";
        for (r, tune) in tuned {
            for p in &tune.grid {
                let cells = [
                    r.label.clone(),
                    p.lr.to_string(),
                    p.holdout_loss
                        .map_or("diverged".into(), |l| format!("{l:.4}")),
                    if p.lr == tune.best_lr {
                        "✓".into()
                    } else {
                        String::new()
                    },
                ];
                md += &format!("| {} |\n", cells.join(" | "));
                t = t.row(cells);
            }
        }
        report = report.section(Section::new("Learning-rate tuning").paragraph("Each rate trained briefly on part of the training data and was scored on a held-out part of it (never on the test set).").table(t));
    }
    md += "\nPictures: loss.png, loss_steps.png";
    md += if any_test {
        ", accuracy.png, test_loss.png (and .svg of each); report.html ties them together.\n"
    } else {
        " (and .svg of each); report.html ties them together.\n"
    };
    write_file(&out.join("summary.md"), md.as_bytes())?;
    report.write(out.join("report.html"))?;
    Ok(stems)
}
