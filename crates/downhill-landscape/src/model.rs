//! The loss landscape of a trained model, from a `downhill train --out`
//! folder: the loss along the straight line from the initial to the trained
//! weights (Goodfellow et al., 2015), a 2-D slice around the trained weights
//! along two random filter-normalised directions (Li et al., 2018), and
//! midpoint-convexity verdicts along the line and along random lines through
//! the trained weights.
//!
//! # Filter normalisation
//!
//! A random direction `d` (standard normal entries) is rescaled filter by
//! filter so that each filter of `d` has the norm of the same filter of the
//! trained weights θ₁: `d_f ← d_f · ‖θ₁,f‖ / ‖d_f‖`. A filter is what
//! produces one output: in `downhill-nn` dense weights are `[in, out]` and
//! convolution weights `[kh, kw, in, out]`, so a filter is one index of the
//! last axis (a column of the weights seen as a `[·, out]` matrix). Biases get
//! a zero direction, as in the paper's plots (they are few and their scale is
//! not comparable). Distances along the axes are therefore in units of the
//! weights' own filter norms, which makes slices of different networks
//! comparable.
//!
//! # The loss
//!
//! The training objective in evaluation mode (no dropout): mean loss plus the
//! run's L2 penalty, on at most `examples` training examples (a subset drawn
//! with the run's seed when there are more).

use crate::convexity::{midpoint_violation, MidpointWitness};
use crate::error::{LandscapeError, Result};
use crate::functions::fmt_num;
use crate::paths::{cell, write_text};
use downhill::Rng;
use downhill_data::Dataset;
use downhill_nn::{Network, TensorInfo, TensorKind};
use downhill_plot::{Format, Grid, LineChart, LineStyle, Marker, MarkerKind, Series, SurfaceChart};
use downhill_train::batch::Batcher;
use downhill_train::checkpoint;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The interpolation line runs over α ∈ [INTERPOLATION.0, INTERPOLATION.1].
pub const INTERPOLATION: (f64, f64) = (-0.25, 1.25);
/// Most grid points along each axis of the 2-D slice.
pub const MAX_RESOLUTION: usize = 401;

/// What to compute. Build with `ModelSettings::new("runs/logreg")`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSettings {
    /// A `downhill train --out` folder: `init.safetensors` and `checkpoints/`.
    pub run: PathBuf,
    /// Training examples the loss is measured on, ≥ 1 (default 2000): all of
    /// them when the training set is no larger, else a random subset drawn
    /// with the run's seed (the same for every landscape of the run).
    pub examples: usize,
    /// Points on the interpolation line, ≥ 3. Default 61.
    pub line_points: usize,
    /// Grid points along each axis of the 2-D slice, 3 to [`MAX_RESOLUTION`].
    /// Default 21 (441 evaluations).
    pub resolution: usize,
    /// The slice and the random lines cover α, β ∈ [−span, span], > 0. Default 1.
    pub span: f64,
    /// Random lines through the trained weights tested for convexity. Default 4.
    pub lines: usize,
    /// Points on each random line, ≥ 3. Default 41.
    pub line_samples: usize,
    /// Seed of the random directions.
    pub seed: u64,
    /// Rounding allowance of the midpoint test, relative to the loss
    /// (the loss is computed in `f32`). Default 1e-5.
    pub rel_tolerance: f64,
}

impl ModelSettings {
    /// The defaults for the run folder `run`.
    pub fn new(run: impl Into<PathBuf>) -> Self {
        ModelSettings {
            run: run.into(),
            examples: 2000,
            line_points: 61,
            resolution: 21,
            span: 1.0,
            lines: 4,
            line_samples: 41,
            seed: 0,
            rel_tolerance: 1e-5,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |name, value: &dyn std::fmt::Display, expected: &str| {
            Err(LandscapeError::setting(
                name,
                format!("{value} is invalid: expected {expected}"),
            ))
        };
        if self.examples == 0 {
            return bad("--examples", &0, "at least 1");
        }
        if self.line_points < 3 {
            return bad("--line-points", &self.line_points, "at least 3");
        }
        if !(3..=MAX_RESOLUTION).contains(&self.resolution) {
            return bad(
                "--resolution",
                &self.resolution,
                &format!("3 to {MAX_RESOLUTION} points per axis"),
            );
        }
        if !(self.span.is_finite() && self.span > 0.0) {
            return bad("--span", &self.span, "a finite number > 0");
        }
        if self.line_samples < 3 {
            return bad("--line-samples", &self.line_samples, "at least 3");
        }
        if !(self.rel_tolerance.is_finite() && self.rel_tolerance >= 0.0) {
            return bad(
                "--convexity-tolerance",
                &self.rel_tolerance,
                "a finite number >= 0",
            );
        }
        Ok(())
    }
}

/// The loss along one line, and its convexity verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineResult {
    /// What the line is.
    pub name: String,
    /// Positions along the line.
    pub alphas: Vec<f64>,
    /// The loss at each position.
    pub losses: Vec<f64>,
    /// No midpoint-convexity violation was found.
    pub convex: bool,
    /// The largest violation, if any.
    pub witness: Option<MidpointWitness>,
}

impl LineResult {
    fn new(name: String, alphas: Vec<f64>, losses: Vec<f64>, tol: f64) -> Self {
        let witness = midpoint_violation(&alphas, &losses, tol);
        LineResult {
            name,
            alphas,
            losses,
            convex: witness.is_none(),
            witness,
        }
    }

    /// "convex along …" or "not convex along …: f(0.3) = … > …".
    pub fn verdict(&self) -> String {
        match &self.witness {
            None => format!("convex along {} ({} points)", self.name, self.alphas.len()),
            Some(w) => format!(
                "not convex along {}: loss({}) = {} > ½(loss({}) + loss({})) = {} (by {})",
                self.name,
                fmt_num(w.mid),
                fmt_num(w.value_mid),
                fmt_num(w.lo),
                fmt_num(w.hi),
                fmt_num(w.chord),
                fmt_num(w.violation)
            ),
        }
    }
}

/// The 2-D slice `loss(θ₁ + α·δ + β·η)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Surface {
    /// α and β run over [−span, span].
    pub span: f64,
    /// Points per axis.
    pub resolution: usize,
    /// Row-major, rows along β from −span up, columns along α.
    pub values: Vec<f64>,
}

/// Everything measured about one trained model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelLandscape {
    /// The run folder.
    pub run: PathBuf,
    /// The checkpoint whose weights are θ₁.
    pub checkpoint: PathBuf,
    /// Its step.
    pub step: u64,
    /// The model spec.
    pub model: String,
    /// The data spec.
    pub data: String,
    /// Training examples the loss was measured on.
    pub examples: usize,
    /// Parameters of the model.
    pub parameters: usize,
    /// Loss at the initial weights θ₀.
    pub initial_loss: f64,
    /// Loss at the trained weights θ₁.
    pub final_loss: f64,
    /// Along θ(α) = (1 − α)·θ₀ + α·θ₁.
    pub interpolation: LineResult,
    /// Along θ₁ + α·d for random filter-normalised d.
    pub random_lines: Vec<LineResult>,
    /// The 2-D slice.
    pub surface: Surface,
    /// The interpolation line and every random line passed the midpoint test.
    pub convex_along_every_line: bool,
    /// Loss evaluations made.
    pub evaluations: usize,
    /// Things the user should know (skipped checkpoints, changed data).
    pub warnings: Vec<String>,
}

impl ModelLandscape {
    /// The overall verdict in one line.
    pub fn verdict(&self) -> String {
        let k = self.random_lines.len();
        let n = 1 + k;
        let plural = |k: usize, word: &str| format!("{k} {word}{}", if k == 1 { "" } else { "s" });
        if self.convex_along_every_line {
            if k == 0 {
                "convex along the interpolation line (no random lines tested)".into()
            } else {
                format!(
                    "convex along all {n} lines tested (the interpolation line and {} through θ₁)",
                    plural(k, "random line")
                )
            }
        } else {
            let bad = std::iter::once(&self.interpolation)
                .chain(&self.random_lines)
                .filter(|l| !l.convex)
                .count();
            let verb = if bad == 1 { "fails" } else { "fail" };
            format!(
                "not convex: {bad} of the {} tested {verb} the midpoint test",
                plural(n, "line")
            )
        }
    }
}

fn evenly(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect()
}

/// A random direction, filter-normalised against `theta` (see the module
/// docs): weight tensors with at least two axes get standard normal entries
/// rescaled per filter (index of the last axis); everything else is zero.
pub fn filter_normalised_direction(
    tensors: &[TensorInfo],
    theta: &[f32],
    rng: &mut Rng,
) -> Vec<f32> {
    let mut d = vec![0f32; theta.len()];
    for t in tensors {
        if t.kind == TensorKind::Bias || t.shape.len() < 2 {
            continue;
        }
        let filters = *t.shape.last().expect("two axes or more");
        if filters == 0 {
            continue;
        }
        let (dt, th) = (&mut d[t.range()], &theta[t.range()]);
        for v in dt.iter_mut() {
            *v = rng.normal() as f32;
        }
        for f in 0..filters {
            let (mut nd, mut nt) = (0f64, 0f64);
            for i in (f..t.len).step_by(filters) {
                nd += f64::from(dt[i]).powi(2);
                nt += f64::from(th[i]).powi(2);
            }
            let scale = if nd > 0.0 { (nt / nd).sqrt() } else { 0.0 };
            for i in (f..t.len).step_by(filters) {
                dt[i] = (f64::from(dt[i]) * scale) as f32;
            }
        }
    }
    d
}

/// The network of a run and the subset its loss is measured on.
struct Evaluator {
    net: Network<f32>,
    data: Dataset,
    batcher: Batcher,
    chunk: usize,
    scratch: Vec<f32>,
    evaluations: usize,
}

impl Evaluator {
    /// The loss at the parameters `fill` writes into the buffer it is given.
    fn loss(&mut self, fill: impl FnOnce(&mut [f32])) -> Result<f64> {
        fill(&mut self.scratch);
        self.net.params_mut().copy_from_slice(&self.scratch);
        let stats = self
            .batcher
            .evaluate(&mut self.net, &self.data, self.chunk)
            .map_err(|e| LandscapeError::Model(e.to_string()))?;
        self.evaluations += 1;
        Ok(stats.mean_loss())
    }
}

/// Measures the landscape of the run in `settings.run`. `progress` receives
/// a line before each phase (loading, the line, the slice, the random lines).
pub fn model_landscape(
    settings: &ModelSettings,
    progress: &mut dyn FnMut(&str),
) -> Result<ModelLandscape> {
    settings.validate()?;
    let run = &settings.run;
    let run_err = |path: &Path, message: String| LandscapeError::Run {
        path: path.to_path_buf(),
        message,
    };
    if !run.is_dir() {
        return Err(LandscapeError::setting(
            "--checkpoint",
            format!(
                "{} is not a folder; expected a `downhill train --out` folder",
                run.display()
            ),
        ));
    }
    let init_path = run.join("init.safetensors");
    let init_bytes = std::fs::read(&init_path).map_err(|e| {
        run_err(
            &init_path,
            format!("{e}; expected the initial weights that `downhill train --out` writes"),
        )
    })?;
    let (_, state, mut warnings) = checkpoint::latest_trainer_state(run)
        .map_err(|e| LandscapeError::Model(format!("reading the run's checkpoint: {e}")))?;
    let cfg = state.config;
    progress(&format!("loading {} for {}", cfg.data, cfg.model));
    let options = cfg
        .load_options()
        .map_err(|e| LandscapeError::Model(format!("the run's settings: {e}")))?;
    let split = downhill_data::load(&cfg.data, &options).map_err(|e| {
        LandscapeError::Model(format!("loading the run's data `{}`: {e}", cfg.data))
    })?;
    let train = split.train;
    if train.len() != state.data.train || train.dim() != state.data.dim {
        warnings.push(format!(
            "the data `{}` now has {} training examples of {} features; the run had {} of {}",
            cfg.data,
            train.len(),
            train.dim(),
            state.data.train,
            state.data.dim
        ));
    }
    let net = downhill_train::build_network(&cfg, &train)
        .map_err(|e| LandscapeError::Model(format!("`{}`: {e}", cfg.model)))?;
    let tensors = net.tensors().to_vec();
    let (ckpt_dir, ckpt, more) = checkpoint::latest(run, &tensors)
        .map_err(|e| LandscapeError::Model(format!("reading the trained weights: {e}")))?;
    warnings.extend(more);
    let theta1 = ckpt.params;
    let theta0 = checkpoint::read_model(&init_bytes, &tensors, &init_path)
        .map_err(|e| run_err(&init_path, e.to_string()))?;

    let mut rows: Vec<usize> = (0..train.len()).collect();
    if rows.len() > settings.examples {
        // The run's seed, not the landscape's: slices along different random
        // directions of one run then share their examples and compare.
        Rng::new(cfg.seed ^ 0x5355_4253_4554_2121).shuffle(&mut rows);
        rows.truncate(settings.examples);
        // Sorted rows gather in memory order.
        rows.sort_unstable();
    }
    let data = train
        .subset(&rows)
        .map_err(|e| LandscapeError::Model(format!("taking the subset: {e}")))?;
    let n = theta1.len();
    let mut ev = Evaluator {
        net,
        data,
        batcher: Batcher::default(),
        chunk: cfg.eval_batch.max(1),
        scratch: vec![0.0; n],
        evaluations: 0,
    };
    let tol = settings.rel_tolerance;

    progress(&format!(
        "loss along the line from the initial to the trained weights ({} points, {} examples)",
        settings.line_points,
        rows.len()
    ));
    let alphas = evenly(INTERPOLATION.0, INTERPOLATION.1, settings.line_points);
    let mut losses = Vec::with_capacity(alphas.len());
    for &a in &alphas {
        let a32 = a as f32;
        losses.push(ev.loss(|p| {
            for ((p, t0), t1) in p.iter_mut().zip(&theta0).zip(&theta1) {
                *p = (1.0 - a32) * t0 + a32 * t1;
            }
        })?);
    }
    let interpolation = LineResult::new("θ(α) = (1 − α)·θ₀ + α·θ₁".into(), alphas, losses, tol);
    let initial_loss = ev.loss(|p| p.copy_from_slice(&theta0))?;
    let final_loss = ev.loss(|p| p.copy_from_slice(&theta1))?;

    let rng = Rng::new(settings.seed);
    let delta = filter_normalised_direction(&tensors, &theta1, &mut rng.fork(1));
    let eta = filter_normalised_direction(&tensors, &theta1, &mut rng.fork(2));
    let r = settings.resolution;
    progress(&format!(
        "2-D slice along two random filter-normalised directions ({r}×{r} points)"
    ));
    let coords = evenly(-settings.span, settings.span, r);
    let mut values = Vec::with_capacity(r * r);
    for &b in &coords {
        for &a in &coords {
            let (a, b) = (a as f32, b as f32);
            values.push(ev.loss(|p| {
                for (((p, t), d), e) in p.iter_mut().zip(&theta1).zip(&delta).zip(&eta) {
                    *p = t + a * d + b * e;
                }
            })?);
        }
    }

    progress(&format!(
        "convexity along {} random lines through the trained weights ({} points each)",
        settings.lines, settings.line_samples
    ));
    let mut random_lines = Vec::with_capacity(settings.lines);
    for k in 0..settings.lines {
        let d = filter_normalised_direction(&tensors, &theta1, &mut rng.fork(100 + k as u64));
        let alphas = evenly(-settings.span, settings.span, settings.line_samples);
        let mut losses = Vec::with_capacity(alphas.len());
        for &a in &alphas {
            let a = a as f32;
            losses.push(ev.loss(|p| {
                for ((p, t), d) in p.iter_mut().zip(&theta1).zip(&d) {
                    *p = t + a * d;
                }
            })?);
        }
        random_lines.push(LineResult::new(
            format!("random direction {}", k + 1),
            alphas,
            losses,
            tol,
        ));
    }
    let convex_along_every_line = interpolation.convex && random_lines.iter().all(|l| l.convex);
    Ok(ModelLandscape {
        run: run.clone(),
        checkpoint: ckpt_dir,
        step: ckpt.trainer.step,
        model: cfg.model.clone(),
        data: cfg.data.clone(),
        examples: rows.len(),
        parameters: n,
        initial_loss,
        final_loss,
        interpolation,
        random_lines,
        surface: Surface {
            span: settings.span,
            resolution: r,
            values,
        },
        convex_along_every_line,
        evaluations: ev.evaluations,
        warnings,
    })
}

/// The files [`write_model_outputs`] writes.
pub const MODEL_OUTPUT_FILES: &[&str] = &[
    "interpolation.png",
    "interpolation.svg",
    "surface.png",
    "surface.svg",
    "lines.png",
    "lines.svg",
    "summary.json",
    "summary.md",
];

/// Writes `interpolation.png`/`.svg` (the loss from θ₀ to θ₁ and beyond),
/// `surface.png`/`.svg` (the 2-D slice with contour lines), `lines.png`/`.svg`
/// (the random lines; not when there are none), `summary.json` and
/// `summary.md` into `out`.
pub fn write_model_outputs(m: &ModelLandscape, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|source| LandscapeError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let both = [Format::Png, Format::Svg];
    let mut files = Vec::new();
    let what = format!("{} on {}", m.model, m.data);

    let line: Vec<(f64, f64)> = m
        .interpolation
        .alphas
        .iter()
        .copied()
        .zip(m.interpolation.losses.iter().copied())
        .collect();
    let chart = LineChart::new(format!(
        "Loss from the initial to the trained weights: {what}"
    ))
    .x_label("α in θ(α) = (1 − α)·θ₀ + α·θ₁")
    .y_label(format!("training loss ({} examples)", m.examples))
    .series(Series::new("loss along the line", line))
    .series(
        Series::new(
            "θ₀ (initial, α = 0) and θ₁ (trained, α = 1)",
            vec![(0.0, m.initial_loss), (1.0, m.final_loss)],
        )
        .style(LineStyle::Markers),
    );
    files.extend(chart.save(out.join("interpolation"), &both)?);

    let s = &m.surface;
    let grid = Grid::new(
        (-s.span, s.span),
        (-s.span, s.span),
        s.resolution,
        s.resolution,
        s.values.clone(),
    )?;
    let surface = SurfaceChart::new(
        format!("Loss around the trained weights θ₁ + α·δ + β·η: {what}"),
        grid,
    )
    .labels(
        "α (along δ, filter-normalised)",
        "β (along η, filter-normalised)",
    )
    .value_label(format!("training loss ({} examples)", m.examples))
    .marker(Marker::new(
        (0.0, 0.0),
        "trained weights θ₁",
        MarkerKind::Start,
    ));
    files.extend(surface.save(out.join("surface"), &both)?);

    // No chart for no random lines (--lines 0): it would be empty.
    if m.random_lines.is_empty() {
        return finish(m, out, files);
    }
    let mut lines = LineChart::new(format!("Loss along random lines through θ₁: {what}"))
        .x_label("α in θ₁ + α·d (d filter-normalised)")
        .y_label(format!("training loss ({} examples)", m.examples));
    for l in &m.random_lines {
        let pts = l
            .alphas
            .iter()
            .copied()
            .zip(l.losses.iter().copied())
            .collect();
        let tag = if l.convex { "convex" } else { "not convex" };
        lines = lines.series(Series::new(format!("{} ({tag})", l.name), pts));
    }
    files.extend(lines.save(out.join("lines"), &both)?);
    finish(m, out, files)
}

/// Writes the summaries after the pictures.
fn finish(m: &ModelLandscape, out: &Path, mut files: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let json = serde_json::to_string_pretty(m).expect("a model landscape always serialises");
    files.push(write_text(out, "summary.json", &json)?);
    files.push(write_text(out, "summary.md", &model_markdown(m))?);
    Ok(files)
}

fn model_markdown(m: &ModelLandscape) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(md, "# Loss landscape: {} on {}\n", m.model, m.data);
    let _ = writeln!(md, "- run: {}", m.run.display());
    let _ = writeln!(
        md,
        "- trained weights θ₁: {} (step {})",
        m.checkpoint.display(),
        m.step
    );
    let _ = writeln!(md, "- parameters: {}", m.parameters);
    let _ = writeln!(
        md,
        "- loss: training objective in evaluation mode on {} training examples",
        m.examples
    );
    let _ = writeln!(
        md,
        "- loss at θ₀ (initial): {}; at θ₁ (trained): {}",
        fmt_num(m.initial_loss),
        fmt_num(m.final_loss)
    );
    let _ = writeln!(md, "- verdict: {}\n", m.verdict());
    let _ = writeln!(
        md,
        "| line | points | lowest loss | convex (midpoint test) |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for l in std::iter::once(&m.interpolation).chain(&m.random_lines) {
        let lowest = l
            .alphas
            .iter()
            .zip(&l.losses)
            .filter(|(_, v)| v.is_finite())
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(a, v)| format!("{} at α = {}", fmt_num(*v), fmt_num(*a)))
            .unwrap_or_else(|| "—".into());
        let verdict = if l.convex {
            "yes".to_string()
        } else {
            l.verdict()
                .split_once(": ")
                .map(|(_, w)| format!("no: {w}"))
                .unwrap_or_else(|| "no".into())
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&l.name),
            l.alphas.len(),
            lowest,
            cell(&verdict)
        );
    }
    for w in &m.warnings {
        let _ = writeln!(md, "\nWarning: {w}");
    }
    let _ = writeln!(
        md,
        "\n![interpolation](interpolation.png)\n\n![surface](surface.png)"
    );
    if !m.random_lines.is_empty() {
        let _ = writeln!(md, "\n![lines](lines.png)");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, shape: Vec<usize>, offset: usize, kind: TensorKind) -> TensorInfo {
        let len = shape.iter().product();
        TensorInfo {
            name: name.into(),
            shape,
            offset,
            len,
            kind,
        }
    }

    #[test]
    fn directions_match_filter_norms_and_skip_biases() {
        // A dense [3, 2] weight, its bias, and a conv [2, 2, 1, 3] weight.
        let tensors = vec![
            info("fc.weight", vec![3, 2], 0, TensorKind::Weight),
            info("fc.bias", vec![2], 6, TensorKind::Bias),
            info("conv.weight", vec![2, 2, 1, 3], 8, TensorKind::Weight),
        ];
        let theta: Vec<f32> = (0..20).map(|i| 0.1 * i as f32 - 0.7).collect();
        let d = filter_normalised_direction(&tensors, &theta, &mut Rng::new(3));
        let column_norm = |v: &[f32], t: &TensorInfo, f: usize| {
            let out = *t.shape.last().unwrap();
            (f..t.len)
                .step_by(out)
                .map(|i| f64::from(v[t.offset + i]).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        for t in [&tensors[0], &tensors[2]] {
            for f in 0..*t.shape.last().unwrap() {
                let (a, b) = (column_norm(&d, t, f), column_norm(&theta, t, f));
                assert!(
                    (a - b).abs() <= 1e-5 * b.max(1e-6),
                    "{} filter {f}: {a} vs {b}",
                    t.name
                );
            }
        }
        assert_eq!(&d[6..8], &[0.0, 0.0], "biases get no direction");
        // Not just a copy of θ: the direction is random.
        assert!(d[..6]
            .iter()
            .zip(&theta[..6])
            .any(|(a, b)| (a - b).abs() > 1e-3));
        // Same seed, same direction.
        assert_eq!(
            d,
            filter_normalised_direction(&tensors, &theta, &mut Rng::new(3))
        );
    }

    #[test]
    fn settings_are_checked_with_the_flag_named() {
        let base = ModelSettings::new("nowhere");
        for (s, want) in [
            (
                ModelSettings {
                    examples: 0,
                    ..base.clone()
                },
                "--examples",
            ),
            (
                ModelSettings {
                    resolution: 2,
                    ..base.clone()
                },
                "--resolution",
            ),
            (
                ModelSettings {
                    span: -1.0,
                    ..base.clone()
                },
                "--span",
            ),
            (
                ModelSettings {
                    line_points: 1,
                    ..base.clone()
                },
                "--line-points",
            ),
            (base.clone(), "--checkpoint"),
        ] {
            let e = model_landscape(&s, &mut |_| {}).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
