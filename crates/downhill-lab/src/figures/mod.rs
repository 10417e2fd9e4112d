//! Pictures, `summary.md` and `report.html` of a comparison.
//!
//! Over several seeds every curve is the mean over seeds with a shaded band,
//! the 95% Student t interval of that mean at each point; tables give mean ±
//! the interval's half-width.

mod tables;

use crate::compare::{CompareResult, RunResult};
use crate::error::{write_file, LabError};
use crate::stats;
use downhill_plot::{Format, LineChart, LineStyle, Report, Scale, Section, Series};
use downhill_train::EpochRecord;
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

/// A curve's points, `(x, y)`.
pub type Curve = Vec<(f64, f64)>;

/// A shaded band's entries, `(x, lower, upper)`.
pub type Band = Vec<(f64, f64, f64)>;

/// Point-wise mean over seeds and, with two or more, the 95% t interval of
/// that mean as a band. `curves` hold `(x, y)` on a shared grid of x; a
/// point enters where every curve has it (a diverged run's curve stops
/// early, and the mean stops with it).
pub fn mean_band(curves: &[Curve]) -> (Curve, Band) {
    let Some(first) = curves.first() else {
        return (Vec::new(), Vec::new());
    };
    let (mut mean, mut band) = (Vec::new(), Vec::new());
    for &(x, _) in first {
        let ys: Option<Vec<f64>> = curves
            .iter()
            .map(|c| c.iter().find(|p| p.0 == x).map(|p| p.1))
            .collect();
        let Some(ys) = ys else { continue };
        let Some(m) = stats::mean(&ys) else { continue };
        mean.push((x, m));
        if let Some((lo, hi)) = stats::t_interval95(&ys) {
            band.push((x, lo, hi));
        }
    }
    (mean, band)
}

/// One optimiser's curve: the run's own with one seed, the mean with its
/// band over several.
fn series(name: &str, curves: Vec<Vec<(f64, f64)>>, slot: usize) -> Series {
    if curves.len() == 1 {
        let pts = curves.into_iter().next().unwrap_or_default();
        return Series::new(name, pts).color_slot(slot);
    }
    let (mean, band) = mean_band(&curves);
    Series::new(name, mean).band(band).color_slot(slot)
}

/// Draws a chart of one quantity per epoch for every optimiser: against
/// the epoch, or in a comparison by steps against the step of each
/// evaluation (the title's "per epoch" then reads "per evaluation").
fn per_epoch(
    result: &CompareResult,
    title: &str,
    y: &str,
    scale: Scale,
    f: impl Fn(&EpochRecord) -> Option<f64>,
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
    for (i, label) in result.labels().into_iter().enumerate() {
        let curves: Vec<Vec<(f64, f64)>> = result
            .runs_of(label)
            .map(|r| {
                r.history
                    .iter()
                    .filter_map(|h| {
                        let x = if by_steps {
                            h.step as f64
                        } else {
                            h.epoch as f64
                        };
                        f(h).map(|v| (x, v))
                    })
                    .collect()
            })
            .collect();
        chart =
            chart.series(series(&shown(result, label), curves, i).style(LineStyle::LineMarkers));
    }
    chart
}

/// The name a curve is shown under: the spec that ran, when it is one
/// (tuned, with one seed) and differs from the label.
fn shown(result: &CompareResult, label: &str) -> String {
    let specs: Vec<&RunResult> = result.runs_of(label).collect();
    match specs.first() {
        Some(r) if specs.iter().all(|s| s.spec == r.spec) => r.spec.clone(),
        _ => label.to_string(),
    }
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
    let any_test_loss = result
        .runs
        .iter()
        .any(|r| r.history.iter().any(|h| h.test_loss.is_some()));
    let by_steps = result.settings.steps.is_some();
    let several = result.seeds.len() > 1;
    let band_note = if several {
        " Over several seeds: the mean, with the 95% interval of the mean shaded."
    } else {
        ""
    };
    let mut charts: Vec<(&str, LineChart, String)> = vec![(
        "loss",
        per_epoch(
            result,
            "Training loss per epoch",
            "training loss",
            Scale::Log,
            |h| Some(h.train_loss),
        ),
        format!(
            "{}{band_note}",
            if by_steps {
                "Mean training loss of the steps since the previous evaluation (as trained, with dropout), at the step of each evaluation."
            } else {
                "Mean training loss of each epoch (as trained, with dropout)."
            }
        ),
    )];
    let mut steps = LineChart::new("Training loss per step (smoothed)")
        .x_label("step")
        .x_integer()
        .y_label("training loss")
        .y_scale(Scale::Log);
    for (i, label) in result.labels().into_iter().enumerate() {
        let curves: Vec<Vec<(f64, f64)>> = result
            .runs_of(label)
            .map(|r| smooth(&r.steps, 0.95, 4000))
            .collect();
        steps = steps.series(series(&shown(result, label), curves, i));
    }
    charts.push((
        "loss_steps",
        steps,
        format!("Each step's mini-batch loss, smoothed by an exponential moving average (β = 0.95, bias-corrected).{band_note}"),
    ));
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
            format!(
                "Accuracy on the test split {}.{band_note}",
                if by_steps {
                    "at each evaluation"
                } else {
                    "after each epoch"
                }
            ),
        ));
    }
    if any_test_loss {
        charts.push((
            "test_loss",
            per_epoch(
                result,
                "Test loss per epoch",
                "test loss",
                Scale::Log,
                |h| h.test_loss,
            ),
            format!(
                "Loss on the held-out split {} (evaluation mode).{band_note}",
                if by_steps {
                    "at each evaluation"
                } else {
                    "after each epoch"
                }
            ),
        ));
    }
    let mut stems = Vec::new();
    let mut report_images = Vec::new();
    for (name, chart, caption) in &charts {
        let files = chart.save(out.join(name), FORMATS)?;
        report_images.push((files[0].clone(), caption.clone()));
        stems.push(out.join(name));
    }

    let (settings, md_head) = tables::settings(result);
    let (results, md_results) = tables::results(result);
    let mut md = format!("# {}\n\n{md_head}", result.title);
    md += &md_results;
    let mut report = Report::new(format!("downhill compare: {}", result.title))
        .paragraph(if several {
            "Within each seed, every optimizer trained the same model from the same initial weights, on the same data in the same order; the seeds change all of these."
        } else {
            "Every optimizer trained the same model from the same initial weights, on the same data in the same order."
        })
        .section(Section::new("Settings").table(settings));
    for n in notes {
        report = report.paragraph(n.clone());
        md += &format!("\n{n}\n");
    }
    let mut res = Section::new("Results").table(results);
    if let Some((text, md_verdicts)) = tables::verdicts(result) {
        for line in text {
            res = res.paragraph(line);
        }
        md += &md_verdicts;
    }
    for (file, caption) in &report_images {
        res = res.image_file(file, caption.clone());
    }
    report = report.section(res);
    if let Some((t, md_tuning)) = tables::tuning(result) {
        md += &md_tuning;
        report = report.section(Section::new("Learning-rate tuning").paragraph("Each rate trained briefly on part of the training data and was scored on a held-out part of it (never on the test set).").table(t));
    }
    md += "\nPictures: ";
    md += &charts
        .iter()
        .map(|c| format!("{}.png", c.0))
        .collect::<Vec<_>>()
        .join(", ");
    md += " (and .svg of each); report.html ties them together.\n";
    write_file(&out.join("summary.md"), md.as_bytes())?;
    report.write(out.join("report.html"))?;
    Ok(stems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_the_t_interval_of_the_mean_where_every_seed_has_a_point() {
        let curves = vec![
            vec![(1.0, 1.0), (2.0, 0.5), (3.0, 0.25)],
            vec![(1.0, 3.0), (2.0, 0.7)],
            vec![(1.0, 2.0), (2.0, 0.6), (3.0, 0.2)],
        ];
        let (mean, band) = mean_band(&curves);
        // x = 3 is missing from one seed (a run that stopped early).
        assert_eq!(mean, vec![(1.0, 2.0), (2.0, 0.6)]);
        // scipy.stats.t.interval(0.95, 2, loc=2, scale=sem([1,2,3])):
        // (-0.48413771175033027, 4.48413771175033).
        assert!((band[0].1 - -0.48413771175033027).abs() < 1e-12);
        assert!((band[0].2 - 4.48413771175033).abs() < 1e-12);
        assert_eq!(band.len(), 2);
        // One seed: its own curve, no band.
        let (m1, b1) = mean_band(&curves[..1]);
        assert_eq!(m1, curves[0]);
        assert!(b1.is_empty());
    }
}
