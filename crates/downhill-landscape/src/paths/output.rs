//! What a landscape run leaves on disk: the contour plot with the paths, the
//! loss chart, `paths.csv`, `summary.json` and `summary.md`, and the GIF.

use super::*;

/// Grid points along each axis of the contour plot.
const GRID_POINTS: usize = 201;
/// Frames of the animation (fewer for shorter paths).
const GIF_FRAMES: usize = 100;

/// The files [`write_outputs`] writes, relative to the output folder
/// (and `paths.gif` when animating).
pub const OUTPUT_FILES: &[&str] = &[
    "paths.png",
    "paths.svg",
    "loss.png",
    "loss.svg",
    "paths.csv",
    "summary.json",
    "summary.md",
];

/// Writes `paths.png`/`.svg` (contours, paths, start and stationary points),
/// `loss.png`/`.svg` (loss per step), `paths.csv` (every iterate:
/// `optimizer,step,x,y,f`), `summary.json` (everything but the iterates),
/// `summary.md` and, with `animate`, `paths.gif` into `out` (created if
/// missing). Returns the files.
///
/// The loss chart shows `f − f_min` on a logarithmic axis when the function
/// has a known minimum (values below 10⁻¹⁶ are drawn at 10⁻¹⁶, so an exact
/// hit stays visible); for a function unbounded below it shows f itself on a
/// linear axis, with the escape level dashed, since `f − f_min` does not
/// exist and f changes sign.
pub fn write_outputs(result: &Landscape, out: &Path, animate: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|source| LandscapeError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let problem = functions::function(&result.function, result.condition)?;
    let both = [Format::Png, Format::Svg];
    let mut files = Vec::new();

    let plot = contour_plot(result, &*problem)?;
    files.extend(plot.save(out.join("paths"), &both)?);
    if animate {
        let longest = result
            .runs
            .iter()
            .map(|r| r.points.len())
            .max()
            .unwrap_or(1);
        let frames = longest.clamp(1, GIF_FRAMES);
        files.push(animate_paths(&plot, frames, out.join("paths.gif"))?);
    }
    files.extend(loss_chart(result).save(out.join("loss"), &both)?);

    files.push(write_text(out, "paths.csv", &paths_csv(result))?);
    let json = serde_json::to_string_pretty(&SummaryJson::new(result))
        .expect("a summary always serialises");
    files.push(write_text(out, "summary.json", &json)?);
    files.push(write_text(
        out,
        "summary.md",
        &summary_markdown(result, animate),
    )?);
    Ok(files)
}

/// `summary.json`: the landscape without the iterates (those are in
/// `paths.csv`), with each run's final point and the endings in words.
#[derive(Serialize)]
struct SummaryJson<'a> {
    function: &'a str,
    title: &'a str,
    condition: Option<f64>,
    window: [[f64; 2]; 2],
    start: [f64; 2],
    step_limit: usize,
    target: &'a Target,
    target_text: String,
    noise: f64,
    seed: u64,
    stationary_points: &'a [KnownPoint],
    runs: Vec<RunJson<'a>>,
}

#[derive(Serialize)]
struct RunJson<'a> {
    optimizer: &'a str,
    steps: usize,
    evaluations: usize,
    target_step: Option<usize>,
    stop: &'a Stop,
    final_point: [f64; 2],
    final_value: f64,
    ending: &'a Ending,
    ending_text: String,
    closest: &'a Option<Closest>,
}

impl<'a> SummaryJson<'a> {
    fn new(l: &'a Landscape) -> Self {
        SummaryJson {
            function: &l.function,
            title: &l.title,
            condition: l.condition,
            window: l.window,
            start: l.start,
            step_limit: l.step_limit,
            target: &l.target,
            target_text: l.target.describe(),
            noise: l.noise,
            seed: l.seed,
            stationary_points: &l.stationary_points,
            runs: l
                .runs
                .iter()
                .map(|r| RunJson {
                    optimizer: &r.optimizer,
                    steps: r.steps(),
                    evaluations: r.evaluations,
                    target_step: r.target_step,
                    stop: &r.stop,
                    final_point: r.last(),
                    final_value: r.last_value(),
                    ending: &r.ending,
                    ending_text: r.ending.describe(),
                    closest: &r.closest,
                })
                .collect(),
        }
    }
}

/// Every iterate as CSV; numbers in Rust's shortest round-trip form, so the
/// file holds exactly the recorded values.
fn paths_csv(l: &Landscape) -> String {
    use std::fmt::Write;
    let mut csv = String::from("optimizer,step,x,y,f\n");
    for r in &l.runs {
        // Specs hold commas: quote them (doubling any quote, as CSV does).
        let name = format!("\"{}\"", r.optimizer.replace('"', "\"\""));
        for (k, (p, v)) in r.points.iter().zip(&r.values).enumerate() {
            let _ = writeln!(csv, "{name},{k},{:?},{:?},{:?}", p[0], p[1], v);
        }
    }
    csv
}

pub(crate) fn write_text(out: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = out.join(name);
    // Write beside, then rename: a reader never sees half a file.
    let tmp = out.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| LandscapeError::Io {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

fn contour_plot(result: &Landscape, problem: &dyn Problem) -> Result<ContourPlot> {
    let [wx, wy] = result.window;
    let grid = Grid::sample(
        (wx[0], wx[1]),
        (wy[0], wy[1]),
        GRID_POINTS,
        GRID_POINTS,
        |x, y| problem.value(&[x, y]),
    )?;
    let mut plot = ContourPlot::new(result.title.clone(), grid).value_label("f(x, y)");
    for (i, r) in result.runs.iter().enumerate() {
        let pts = r.points.iter().map(|p| (p[0], p[1])).collect();
        plot = plot.path(Trajectory::new(r.optimizer.clone(), pts).color_slot(i));
    }
    for p in &result.stationary_points {
        let kind = match p.kind {
            "minimum" => MarkerKind::Minimum,
            "saddle" => MarkerKind::Saddle,
            // The plot has no symbol for maxima; they are listed in the summary.
            _ => continue,
        };
        let label = if p.kind == "minimum" {
            "minimum"
        } else {
            "saddle point"
        };
        plot = plot.marker(Marker::new((p.at[0], p.at[1]), label, kind));
    }
    plot = plot.marker(Marker::new(
        (result.start[0], result.start[1]),
        format!("common start {}", fmt_point(result.start)),
        MarkerKind::Start,
    ));
    Ok(plot)
}

/// Smallest `f − f_min` drawn on the log axis.
const LOG_FLOOR: f64 = 1e-16;

fn loss_chart(result: &Landscape) -> LineChart {
    let title = format!("Loss per step: {}", result.title);
    let x_label = if result
        .runs
        .iter()
        .any(|r| r.optimizer.starts_with("lbfgs") || r.optimizer.starts_with("newton"))
    {
        "step (one iteration for lbfgs and newton)"
    } else {
        "step"
    };
    let mut chart = LineChart::new(title).x_label(x_label).x_integer();
    match result.target {
        Target::Tolerance {
            min_value,
            tolerance,
        } => {
            chart = chart.y_label("f − f_min").y_scale(Scale::Log);
            for (i, r) in result.runs.iter().enumerate() {
                let pts = r
                    .values
                    .iter()
                    .enumerate()
                    .map(|(k, v)| (k as f64, (v - min_value).max(LOG_FLOOR)))
                    .collect();
                chart = chart.series(Series::new(r.optimizer.clone(), pts).color_slot(i));
            }
            let longest = result.runs.iter().map(Run::steps).max().unwrap_or(1).max(1);
            chart = chart.series(
                Series::new(
                    format!("tolerance {}", fmt_num(tolerance)),
                    vec![(0.0, tolerance), (longest as f64, tolerance)],
                )
                .style(LineStyle::Dashed)
                .color_slot(result.runs.len()),
            );
        }
        Target::Escape { level, .. } => {
            // Show as far below the escape level as the start lies above it
            // (at least 1): a run that escapes with one huge step would
            // otherwise flatten every other curve.
            let finite = || {
                result
                    .runs
                    .iter()
                    .flat_map(|r| &r.values)
                    .filter(|v| v.is_finite())
            };
            let hi = finite().fold(level + 1.0, |m, &v| m.max(v));
            let lo = finite()
                .fold(hi, |m, &v| m.min(v))
                .max(level - (hi - level));
            let pad = 0.05 * (hi - lo);
            chart = chart
                .y_label("f(x, y)")
                .y_scale(Scale::Linear)
                .y_range(lo - pad, hi + pad);
            for (i, r) in result.runs.iter().enumerate() {
                chart =
                    chart.series(Series::from_values(r.optimizer.clone(), &r.values).color_slot(i));
            }
            let longest = result.runs.iter().map(Run::steps).max().unwrap_or(1).max(1);
            chart = chart.series(
                Series::new(
                    format!("escape level f = {}", fmt_num(level)),
                    vec![(0.0, level), (longest as f64, level)],
                )
                .style(LineStyle::Dashed)
                .color_slot(result.runs.len()),
            );
        }
    }
    chart
}

/// Escapes `|` for a Markdown table cell.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn summary_markdown(r: &Landscape, animate: bool) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let [wx, wy] = r.window;
    let _ = writeln!(md, "# Optimiser paths: {}\n", r.function);
    let _ = writeln!(md, "{}.\n", r.title);
    let _ = writeln!(
        md,
        "- window: x ∈ [{}, {}], y ∈ [{}, {}]",
        fmt_num(wx[0]),
        fmt_num(wx[1]),
        fmt_num(wy[0]),
        fmt_num(wy[1])
    );
    let _ = writeln!(md, "- start: {}", fmt_point(r.start));
    let _ = writeln!(md, "- step limit: {}", r.step_limit);
    let _ = writeln!(md, "- target: {}", r.target.describe());
    let noise = if r.noise > 0.0 {
        format!(
            "Gaussian, σ = {} per component, seed {}",
            fmt_num(r.noise),
            r.seed
        )
    } else {
        "none (exact gradients)".into()
    };
    let _ = writeln!(md, "- gradient noise: {noise}");
    let known: Vec<String> = r
        .stationary_points
        .iter()
        .map(|p| format!("{} {} (f = {})", p.kind, fmt_point(p.at), fmt_num(p.value)))
        .collect();
    let _ = writeln!(md, "- known stationary points: {}\n", known.join("; "));
    let _ = writeln!(
        md,
        "| optimiser | steps to target | final point | final f | where it ended | closest approach |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for run in &r.runs {
        let reached = match run.target_step {
            Some(k) => k.to_string(),
            None => {
                let plural = if run.steps() == 1 { "" } else { "s" };
                format!(
                    "not reached ({} step{plural}{})",
                    run.steps(),
                    stop_note(&run.stop)
                )
            }
        };
        let closest = match &run.closest {
            Some(c) => format!(
                "{} from the {} {} at step {}",
                fmt_num(c.distance),
                c.kind,
                fmt_point(c.at),
                c.step
            ),
            None => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&run.optimizer),
            reached,
            fmt_point(run.last()),
            fmt_num(run.last_value()),
            cell(&run.ending.describe()),
            closest
        );
    }
    let _ = writeln!(md, "\n![paths](paths.png)\n\n![loss](loss.png)");
    if animate {
        let _ = writeln!(md, "\n![animation](paths.gif)");
    }
    md
}

fn stop_note(stop: &Stop) -> String {
    match stop {
        Stop::Converged { why } => format!("; stopped: {why}"),
        Stop::Diverged => "; diverged".into(),
        Stop::Target | Stop::StepLimit => String::new(),
    }
}
