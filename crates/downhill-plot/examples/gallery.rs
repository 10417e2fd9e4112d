//! Renders one of every picture downhill-plot makes, plus a report tying them
//! together, for checking by eye:
//!
//! ```text
//! cargo run -p downhill-plot --release --example gallery -- OUT_DIR [WIDTH HEIGHT]
//! ```

use downhill_plot::{
    animate_paths, ContourPlot, Format, Grid, LineChart, LineStyle, Marker, MarkerKind, Report,
    Section, Series, SurfaceChart, Table, Trajectory,
};
use std::error::Error;
use std::path::{Path, PathBuf};

type Point = (f64, f64);

/// Plain gradient descent, momentum and Adam on a 2-D function, enough to
/// produce realistic-looking paths (the real optimisers live in `downhill`).
fn paths(
    grad: impl Fn(Point) -> Point,
    start: Point,
    steps: usize,
    lr: [f64; 3],
) -> Vec<Vec<Point>> {
    let mut gd = vec![start];
    let mut p = start;
    for _ in 0..steps {
        let g = grad(p);
        p = (p.0 - lr[0] * g.0, p.1 - lr[0] * g.1);
        gd.push(p);
    }
    let mut mom = vec![start];
    let (mut p, mut v) = (start, (0.0, 0.0));
    for _ in 0..steps {
        let g = grad(p);
        v = (0.9 * v.0 + g.0, 0.9 * v.1 + g.1);
        p = (p.0 - lr[1] * v.0, p.1 - lr[1] * v.1);
        mom.push(p);
    }
    let mut adam = vec![start];
    let (mut p, mut m, mut s) = (start, (0.0, 0.0), (0.0, 0.0));
    for t in 1..=steps {
        let g = grad(p);
        m = (0.9 * m.0 + 0.1 * g.0, 0.9 * m.1 + 0.1 * g.1);
        s = (
            0.999 * s.0 + 0.001 * g.0 * g.0,
            0.999 * s.1 + 0.001 * g.1 * g.1,
        );
        let (bc1, bc2) = (1.0 - 0.9f64.powi(t as i32), 1.0 - 0.999f64.powi(t as i32));
        p = (
            p.0 - lr[2] * (m.0 / bc1) / ((s.0 / bc2).sqrt() + 1e-8),
            p.1 - lr[2] * (m.1 / bc1) / ((s.1 / bc2).sqrt() + 1e-8),
        );
        adam.push(p);
    }
    vec![gd, mom, adam]
}

fn trajectories(paths: Vec<Vec<Point>>) -> Vec<Trajectory> {
    ["gd", "momentum", "adam"]
        .iter()
        .zip(paths)
        .map(|(n, p)| Trajectory::new(*n, p))
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "gallery".into()));
    let size = |k: usize, default: u32| -> Result<u32, Box<dyn Error>> {
        Ok(match args.get(k) {
            Some(v) => v.parse()?,
            None => default,
        })
    };
    let (w, h) = (size(2, 800)?, size(3, 600)?);
    std::fs::create_dir_all(&out)?;
    let both = [Format::Png, Format::Svg];
    let mut files: Vec<(PathBuf, &str)> = Vec::new();

    // Loss curves spanning decades: log y chosen automatically; train dashed,
    // test solid, one colour per optimiser.
    let mut loss = LineChart::new("Fashion-MNIST logistic regression: loss")
        .size(w, h)
        .x_label("epoch")
        .x_integer()
        .y_label("cross-entropy loss");
    for (i, (name, rate)) in [
        ("sgd", 0.15f64),
        ("adagrad", 0.35),
        ("rmsprop", 0.6),
        ("adam", 0.8),
    ]
    .iter()
    .enumerate()
    {
        let train: Vec<f64> = (0..=40)
            .map(|e| 2.3 * (-rate * e as f64).exp() + 0.01 / (i + 1) as f64)
            .collect();
        let test: Vec<f64> = train.iter().map(|v| v * 1.15 + 0.02).collect();
        loss = loss
            .series(Series::from_values(format!("{name} (test)"), &test).color_slot(i))
            .series(
                Series::from_values(format!("{name} (train)"), &train)
                    .style(LineStyle::Dashed)
                    .color_slot(i),
            );
    }
    files.push((
        loss.save(out.join("loss"), &both)?[0].clone(),
        "Loss per epoch",
    ));

    // Accuracy: linear scale, rising curves.
    let mut acc = LineChart::new("Test accuracy")
        .size(w, h)
        .x_label("epoch")
        .x_integer()
        .y_label("accuracy");
    for (name, rate) in [
        ("sgd", 0.15),
        ("adagrad", 0.35),
        ("rmsprop", 0.6),
        ("adam", 0.8),
    ] {
        let v: Vec<f64> = (0..=40)
            .map(|e| 0.85 - 0.75 * (-rate * e as f64).exp())
            .collect();
        acc = acc.series(Series::from_values(name, &v));
    }
    files.push((
        acc.save(out.join("accuracy"), &both)?[0].clone(),
        "Accuracy per epoch",
    ));

    // Several seeds: the mean loss, shaded from the best to the worst seed
    // (bands overlap where the optimisers do).
    let mut seeds = LineChart::new("Loss over 5 seeds: mean, best to worst")
        .size(w, h)
        .x_label("epoch")
        .x_integer()
        .y_label("loss");
    for (i, (name, rate)) in [("sgd", 0.15f64), ("adam", 0.5)].iter().enumerate() {
        let runs: Vec<Vec<f64>> = (0..5)
            .map(|seed| {
                let r = rate * (1.0 + 0.12 * (seed as f64 - 2.0));
                (0..=40)
                    .map(|e| 2.3 * (-r * e as f64).exp() + 0.05)
                    .collect()
            })
            .collect();
        let mut mean = Vec::new();
        let mut band = Vec::new();
        for e in 0..=40 {
            let at: Vec<f64> = runs.iter().map(|run| run[e]).collect();
            let lo = at.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = at.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            mean.push((e as f64, at.iter().sum::<f64>() / at.len() as f64));
            band.push((e as f64, lo, hi));
        }
        seeds = seeds.series(Series::new(*name, mean).band(band).color_slot(i));
    }
    files.push((
        seeds.save(out.join("seeds"), &both)?[0].clone(),
        "Loss over seeds with a band",
    ));

    // A performance profile: share of problems solved within a factor τ of
    // the best, a step function on a log τ axis.
    let mut profile = LineChart::new("Performance profile")
        .size(w, h)
        .x_label("τ (factor of the best time)")
        .x_scale(downhill_plot::Scale::Log)
        .y_label("ρ(τ): share of problems")
        .y_range(0.0, 1.05);
    for (name, ratios) in [
        ("adam", vec![1.0, 1.0, 1.0, 1.2, 1.5, 2.0, 3.0, 1.0]),
        ("sgd", vec![1.0, 2.5, 4.0, 1.0, 8.0, 1.1, 30.0, 1.6]),
    ] {
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mut pts: Vec<(f64, f64)> = sorted
            .iter()
            .enumerate()
            .map(|(k, &t)| (t, (k + 1) as f64 / n))
            .collect();
        // Ties at one τ make one step up.
        pts.dedup_by(|later, kept| {
            let tie = later.0 == kept.0;
            if tie {
                kept.1 = later.1;
            }
            tie
        });
        pts.push((100.0, 1.0));
        profile = profile.series(Series::new(name, pts).style(LineStyle::Steps));
    }
    files.push((
        profile.save(out.join("profile"), &both)?[0].clone(),
        "Performance profile (steps, log x)",
    ));

    // Awkward data: NaN gap, a lone point, an empty series, a diverging run.
    let mut odd: Vec<(f64, f64)> = (0..30)
        .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
        .collect();
    odd[10].1 = f64::NAN;
    let diverging: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 0.5 * 1.6f64.powi(i))).collect();
    let edge = LineChart::new("Edge cases: gap, lone point, empty series, divergence")
        .size(w, h)
        .x_label("step")
        .x_integer()
        .y_label("loss")
        .series(Series::new("with a NaN gap", odd))
        .series(Series::new("lone point", vec![(15.0, 0.3)]))
        .series(Series::new("empty", vec![]))
        .series(Series::new("diverging", diverging).style(LineStyle::LineMarkers));
    files.push((edge.save(out.join("edge"), &both)?[0].clone(), "Edge cases"));

    // Strings too long for the picture: shortened with an ellipsis, never clipped.
    let long = LineChart::new(
        "A title far too long for one line of this picture, which is shrunk and then shortened rather than clipped at the edges",
    )
    .size(w, h)
    .x_label("an x label much longer than the plot is wide, so that it has to be shortened with an ellipsis at the end")
    .y_label("a y label that is also longer than the plot is tall and gets shortened")
    .series(Series::new(
        "a legend entry with a very, very long name that cannot possibly fit",
        vec![(0.0, 1e6), (1.0, 2.5e6), (2.0, 1.2e6)],
    ))
    .series(Series::new("short", vec![(0.0, -2e6), (2.0, 3e6)]));
    files.push((
        long.save(out.join("labels"), &both)?[0].clone(),
        "Long labels",
    ));

    // Loss along the line between two weight vectors (a 1-D slice).
    let line: Vec<(f64, f64)> = (0..=100)
        .map(|i| {
            let a = -0.5 + 2.0 * i as f64 / 100.0;
            (
                a,
                0.3 + 0.8 * (a * (a - 1.0)).powi(2) + 0.05 * (12.0 * a).sin().abs(),
            )
        })
        .collect();
    let slice = LineChart::new("Loss along θ(α) = (1 − α)·θ₀ + α·θ₁")
        .size(w, h)
        .x_label("α")
        .y_label("loss")
        .series(Series::new("train", line));
    files.push((
        slice.save(out.join("line-slice"), &both)?[0].clone(),
        "1-D slice",
    ));

    // Rosenbrock with three optimisers.
    let rosen = |x: f64, y: f64| (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
    let rosen_grad = |p: Point| {
        let (x, y) = p;
        (
            -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
            200.0 * (y - x * x),
        )
    };
    let grid = Grid::sample((-2.0, 2.0), (-1.0, 3.0), 200, 200, rosen)?;
    let mut plot = ContourPlot::new("Rosenbrock: (1 − x)² + 100 (y − x²)²", grid)
        .size(w, h)
        .value_label("f(x, y)")
        .marker(Marker::new((1.0, 1.0), "minimum", MarkerKind::Minimum));
    plot.paths = trajectories(paths(rosen_grad, (-1.5, 2.0), 300, [1e-3, 2e-4, 0.05]));
    files.push((
        plot.save(out.join("rosenbrock"), &both)?[0].clone(),
        "Rosenbrock",
    ));
    let t = std::time::Instant::now();
    let gif = animate_paths(&plot, 60, out.join("rosenbrock.gif"))?;
    eprintln!(
        "gif: {:?} in {:.2?}",
        std::fs::metadata(&gif)?.len(),
        t.elapsed()
    );

    // Saddle x² − y².
    let grid = Grid::sample((-2.0, 2.0), (-2.0, 2.0), 200, 200, |x, y| x * x - y * y)?;
    let mut saddle = ContourPlot::new("Saddle: x² − y²", grid)
        .size(w, h)
        .value_label("f(x, y)")
        .marker(Marker::new((0.0, 0.0), "saddle point", MarkerKind::Saddle));
    saddle.paths = trajectories(paths(
        |(x, y)| (2.0 * x, -2.0 * y),
        (-1.8, 1e-3),
        60,
        [0.05, 0.01, 0.05],
    ));
    files.push((saddle.save(out.join("saddle"), &both)?[0].clone(), "Saddle"));

    // Himmelblau with its four minima.
    let himmel = |x: f64, y: f64| (x * x + y - 11.0).powi(2) + (x + y * y - 7.0).powi(2);
    let grid = Grid::sample((-5.0, 5.0), (-5.0, 5.0), 200, 200, himmel)?;
    let mut hb = ContourPlot::new("Himmelblau", grid)
        .size(w, h)
        .value_label("f(x, y)");
    for m in [
        (3.0, 2.0),
        (-2.805118, 3.131312),
        (-3.779310, -3.283186),
        (3.584428, -1.848126),
    ] {
        hb = hb.marker(Marker::new(m, "minimum", MarkerKind::Minimum));
    }
    hb = hb.marker(Marker::new(
        (0.0, 0.0),
        "common start (0, 0)",
        MarkerKind::Start,
    ));
    let himmel_grad = |(x, y): Point| {
        (
            4.0 * x * (x * x + y - 11.0) + 2.0 * (x + y * y - 7.0),
            2.0 * (x * x + y - 11.0) + 4.0 * y * (x + y * y - 7.0),
        )
    };
    hb.paths = trajectories(paths(himmel_grad, (0.0, 0.0), 200, [0.01, 0.002, 0.1]));
    files.push((
        hb.save(out.join("himmelblau"), &both)?[0].clone(),
        "Himmelblau",
    ));

    // Monkey saddle and Rastrigin with automatic levels.
    let grid = Grid::sample((-1.5, 1.5), (-1.5, 1.5), 150, 150, |x, y| {
        x.powi(3) - 3.0 * x * y * y
    })?;
    let monkey = ContourPlot::new("Monkey saddle: x³ − 3xy²", grid).size(w, h);
    files.push((
        monkey.save(out.join("monkey"), &both)?[0].clone(),
        "Monkey saddle",
    ));
    let rastrigin = |x: f64, y: f64| {
        20.0 + x * x - 10.0 * (2.0 * std::f64::consts::PI * x).cos() + y * y
            - 10.0 * (2.0 * std::f64::consts::PI * y).cos()
    };
    let grid = Grid::sample((-5.12, 5.12), (-5.12, 5.12), 300, 300, rastrigin)?;
    let r = ContourPlot::new("Rastrigin", grid).size(w, h);
    files.push((
        r.save(out.join("rastrigin"), &both)?[0].clone(),
        "Rastrigin",
    ));

    // A loss surface slice around a trained model.
    let grid = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 101, 101, |a, b| {
        0.05 + 2.0 * (a * a + 0.5 * b * b)
            + 1.5 * (a * b).powi(2)
            + 0.3 * (3.0 * a).sin().powi(2) * b * b
    })?;
    let surface = SurfaceChart::new("Loss surface around the trained weights", grid)
        .size(w, h)
        .marker(Marker::new(
            (0.0, 0.0),
            "trained model",
            MarkerKind::Minimum,
        ));
    files.push((
        surface.save(out.join("surface"), &both)?[0].clone(),
        "2-D slice",
    ));

    // Timing: an 800×600 contour from a 200×200 grid.
    let grid = Grid::sample((-2.0, 2.0), (-1.0, 3.0), 200, 200, rosen)?;
    let p = ContourPlot::new("timing", grid);
    let t = std::time::Instant::now();
    let bytes = p.render(Format::Png)?;
    eprintln!(
        "contour 200x200 -> 800x600 png: {:.2?} ({} bytes)",
        t.elapsed(),
        bytes.len()
    );

    let mut section =
        Section::new("Pictures").paragraph("Every chart type, rendered by the gallery example.");
    for (path, caption) in &files {
        section = section.image_file(path, *caption);
    }
    let svg_section = Section::new("Inline SVG")
        .paragraph("The same loss chart as SVG, inlined.")
        .image_file(out.join("loss.svg"), "Loss per epoch (SVG)")
        .image_file(out.join("saddle.svg"), "Saddle (SVG)");
    let report = Report::new("downhill-plot gallery")
        .paragraph(
            "A check of every picture type. <b>Markup</b> in text is shown, not interpreted.",
        )
        .section(
            Section::new("Summary").table(
                Table::new(["optimiser", "final loss", "test accuracy", "time"])
                    .row(["sgd", "0.312", "84.1%", "12.3 s"])
                    .row(["adam", "0.268", "85.2%", "13.0 s"])
                    .caption("Made-up numbers for layout."),
            ),
        )
        .section(section)
        .section(svg_section);
    report.write(out.join("report.html"))?;
    eprintln!("wrote {}", Path::new(&out).join("report.html").display());
    Ok(())
}
