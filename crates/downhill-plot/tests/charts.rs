//! Renders every chart type on small synthetic data and checks the files.

mod common;

use common::{assert_rich_png, decode_png, listing, scratch, svg_texts, Rng};
use downhill_plot::{
    animate_paths, palette_color, ContourPlot, Format, Grid, Levels, LineChart, LineStyle, Marker,
    MarkerKind, PlotError, Scale, Series, SurfaceChart, Trajectory,
};

fn loss_chart() -> LineChart {
    let adam: Vec<f64> = (0..60)
        .map(|t| 2.3 * (-0.15 * t as f64).exp() + 1e-3)
        .collect();
    let sgd: Vec<f64> = (0..60)
        .map(|t| 2.3 * (-0.05 * t as f64).exp() + 1e-2)
        .collect();
    LineChart::new("Loss of two optimisers")
        .x_label("epoch")
        .y_label("loss")
        .series(Series::from_values("adam", &adam))
        .series(Series::from_values("sgd", &sgd).style(LineStyle::Dashed))
}

fn rosenbrock(x: f64, y: f64) -> f64 {
    (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
}

fn rosenbrock_plot() -> ContourPlot {
    let grid = Grid::sample((-2.0, 2.0), (-1.0, 3.0), 120, 120, rosenbrock).unwrap();
    let path: Vec<(f64, f64)> = (0..=40)
        .map(|i| {
            let t = i as f64 / 40.0;
            (-1.5 + 2.5 * t, 2.0 - 1.0 * t * t)
        })
        .collect();
    ContourPlot::new("Rosenbrock valley", grid)
        .value_label("f(x, y)")
        .path(Trajectory::new("momentum", path.clone()))
        .path(Trajectory::new(
            "adam",
            path.iter().map(|p| (p.0, p.1 - 0.3)).collect(),
        ))
        .marker(Marker::new(
            (1.0, 1.0),
            "global minimum",
            MarkerKind::Minimum,
        ))
}

#[test]
fn line_chart_png_and_svg() {
    let chart = loss_chart();
    let png = chart.render(Format::Png).unwrap();
    let img = assert_rich_png(&png, 800, 600);
    // Both series' colours appear in the picture.
    for slot in 0..2 {
        let c = palette_color(slot);
        let found = img.rgb.chunks_exact(3).any(|p| p == [c.0, c.1, c.2]);
        assert!(found, "colour of series {slot} missing");
    }
    let texts = svg_texts(&chart.render(Format::Svg).unwrap());
    for want in ["Loss of two optimisers", "epoch", "loss", "adam", "sgd"] {
        assert!(texts.iter().any(|t| t == want), "{want:?} not in {texts:?}");
    }
    // Values span three decades: the y axis is logarithmic with decade labels.
    assert!(texts.iter().any(|t| t == "0.01"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "0.1"), "{texts:?}");
}

/// Epochs 1..=n, at any picture size, get whole-number ticks once the chart
/// declares its x axis an integer one. The y values (100 per epoch) have whole
/// ticks too, so any number with a decimal point is an x tick.
#[test]
fn integer_x_axis_labels_are_whole_numbers() {
    let chart = |n: u32, (w, h): (u32, u32), integer: bool| {
        let pts = (1..=n).map(|e| (f64::from(e), 100.0 * f64::from(e)));
        let c = LineChart::new("epochs")
            .x_label("epoch")
            .size(w, h)
            .series(Series::new("run", pts.collect()));
        let c = if integer { c.x_integer() } else { c };
        svg_texts(&c.render(Format::Svg).unwrap())
    };
    let numbers = |texts: &[String]| -> Vec<String> {
        texts
            .iter()
            .filter(|t| t.parse::<f64>().is_ok())
            .cloned()
            .collect()
    };
    let mut fractional_without = false;
    for n in [3, 10, 7, 1000] {
        for size in [(320, 240), (500, 300), (800, 600), (1600, 500)] {
            let texts = chart(n, size, true);
            let nums = numbers(&texts);
            assert!(
                nums.iter().all(|t| !t.contains('.')),
                "1..{n} at {size:?}: {nums:?}"
            );
            assert!(nums.len() >= 4, "1..{n} at {size:?}: {nums:?}");
            fractional_without |= numbers(&chart(n, size, false))
                .iter()
                .any(|t| t.contains('.'));
        }
    }
    assert!(fractional_without, "the check would catch 2.5-steps");
}

#[test]
fn colours_are_stable_across_charts_by_series_order() {
    let a = LineChart::new("a")
        .series(Series::from_values("x", &[1.0, 2.0]))
        .series(Series::from_values("y", &[2.0, 1.0]));
    let b = LineChart::new("b")
        .series(Series::from_values("x", &[5.0, 1.0, 3.0]))
        .series(Series::from_values("y", &[1.0, 4.0, 2.0]));
    let hex = |c: downhill_plot::Rgb| c.hex();
    for chart in [a, b] {
        let svg = String::from_utf8(chart.render(Format::Svg).unwrap()).unwrap();
        assert!(svg.contains(&format!("stroke=\"{}\"", hex(palette_color(0)))));
        assert!(svg.contains(&format!("stroke=\"{}\"", hex(palette_color(1)))));
    }
    // An explicit slot overrides the position.
    let c = LineChart::new("c").series(Series::from_values("only", &[1.0, 2.0]).color_slot(3));
    let svg = String::from_utf8(c.render(Format::Svg).unwrap()).unwrap();
    assert!(svg.contains(&format!("stroke=\"{}\"", hex(palette_color(3)))));
    assert!(!svg.contains(&format!("stroke=\"{}\"", hex(palette_color(0)))));
}

#[test]
fn save_writes_each_format_atomically() {
    let dir = scratch("save");
    let paths = loss_chart()
        .save(
            dir.join("loss.train"),
            &[Format::Png, Format::Svg, Format::Png],
        )
        .unwrap();
    assert_eq!(
        paths,
        vec![dir.join("loss.train.png"), dir.join("loss.train.svg")]
    );
    assert_eq!(
        listing(&dir),
        vec!["loss.train.png", "loss.train.svg"],
        "no temporary files left"
    );
    decode_png(&std::fs::read(&paths[0]).unwrap());
    svg_texts(&std::fs::read(&paths[1]).unwrap());
    assert!(matches!(
        loss_chart().save(dir.join("x"), &[]),
        Err(PlotError::NoFormats)
    ));
    let missing = dir.join("no/such/dir/loss");
    let e = loss_chart().save(&missing, &[Format::Png]).unwrap_err();
    assert!(matches!(e, PlotError::Write { .. }));
    assert!(e.to_string().contains("no/such/dir"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn line_chart_edge_cases_render() {
    let cases: Vec<(&str, LineChart)> = vec![
        ("no series", LineChart::new("empty")),
        ("empty series", LineChart::new("t").series(Series::new("e", vec![]))),
        ("single point", LineChart::new("t").series(Series::new("p", vec![(1.0, 2.0)]))),
        (
            "all equal",
            LineChart::new("t").series(Series::from_values("flat", &[3.0; 10])),
        ),
        (
            "all zero on log",
            LineChart::new("t")
                .y_scale(Scale::Log)
                .series(Series::from_values("z", &[0.0; 5])),
        ),
        (
            "non-positive on log",
            LineChart::new("t")
                .y_scale(Scale::Log)
                .series(Series::from_values("z", &[1.0, 0.0, -1.0, 0.1, 0.01])),
        ),
        (
            "nan and inf",
            LineChart::new("t").series(Series::new(
                "n",
                vec![(0.0, 1.0), (1.0, f64::NAN), (f64::INFINITY, 2.0), (3.0, f64::NEG_INFINITY), (4.0, 0.5)],
            )),
        ),
        (
            "huge values",
            LineChart::new("t").series(Series::new("h", vec![(0.0, -f64::MAX), (1.0, f64::MAX), (2.0, 0.0)])),
        ),
        (
            "points outside an explicit range",
            LineChart::new("t")
                .x_range(0.0, 1.0)
                .y_range(0.0, 1.0)
                .series(Series::new("o", vec![(-5.0, 0.5), (0.5, 0.5), (1e300, -1e300)])),
        ),
        (
            "long names",
            LineChart::new("a title far too long to fit on one line of an eight hundred pixel wide picture, which must be shortened rather than clipped")
                .x_label("an x label that is also much longer than the plot is wide, so that it has to be shortened with an ellipsis")
                .series(Series::new("a legend entry with a very very long name that cannot fit", vec![(0.0, 1.0), (1.0, 2.0)])),
        ),
    ];
    for (what, chart) in cases {
        let png = chart
            .render(Format::Png)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let img = decode_png(&png);
        assert_eq!((img.width, img.height), (800, 600), "{what}");
        svg_texts(
            &chart
                .render(Format::Svg)
                .unwrap_or_else(|e| panic!("{what}: {e}")),
        );
    }
}

#[test]
fn many_series_keep_the_legend_inside_the_picture() {
    let mut chart = LineChart::new("sixty runs");
    for k in 0..60 {
        let v: Vec<f64> = (0..20).map(|t| (k + t) as f64).collect();
        chart = chart.series(Series::from_values(format!("run {k}"), &v));
    }
    let svg = String::from_utf8(chart.render(Format::Svg).unwrap()).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let mut rows = 0;
    for n in doc.descendants().filter(|n| n.has_tag_name("text")) {
        let x: f64 = n.attribute("x").unwrap().parse().unwrap();
        let y: f64 = n.attribute("y").unwrap().parse().unwrap();
        assert!(
            (0.0..=800.0).contains(&x) && (0.0..=600.0).contains(&y),
            "{:?} at {x},{y}",
            n.text()
        );
        if n.text().is_some_and(|t| t.starts_with("run ")) {
            rows += 1;
        }
    }
    assert!(rows > 10 && rows < 60, "{rows} legend rows");
    assert!(svg.contains(&format!("… and {} more", 60 - rows)));
    decode_png(&chart.render(Format::Png).unwrap());
}

#[test]
fn bad_chart_settings_are_errors() {
    let bad_range = loss_chart().y_range(1.0, 1.0);
    assert!(matches!(
        bad_range.render(Format::Png),
        Err(PlotError::InvalidRange { .. })
    ));
    let log_from_zero = loss_chart().y_scale(Scale::Log).y_range(0.0, 1.0);
    let e = log_from_zero.render(Format::Svg).unwrap_err();
    assert!(e.to_string().contains("log"), "{e}");
    let tiny = loss_chart().size(10, 10);
    assert!(matches!(
        tiny.render(Format::Png),
        Err(PlotError::InvalidSize { .. })
    ));
    let nan_range = loss_chart().x_range(f64::NAN, 1.0);
    assert!(nan_range.render(Format::Png).is_err());
}

#[test]
fn random_awkward_series_never_panic() {
    let mut rng = Rng(7);
    for round in 0..60 {
        let mut chart = LineChart::new(format!("round {round}")).size(300, 200);
        chart.y_scale = [Scale::Auto, Scale::Linear, Scale::Log][rng.below(3) as usize];
        chart.x_scale = [Scale::Auto, Scale::Linear, Scale::Log][rng.below(3) as usize];
        for s in 0..rng.below(4) {
            let n = rng.below(30) as usize;
            let points = (0..n).map(|_| (rng.awkward(), rng.awkward())).collect();
            let style = [
                LineStyle::Solid,
                LineStyle::Dashed,
                LineStyle::Markers,
                LineStyle::LineMarkers,
                LineStyle::Steps,
            ][rng.below(5) as usize];
            let band = (0..rng.below(3) * rng.below(20))
                .map(|_| (rng.awkward(), rng.awkward(), rng.awkward()))
                .collect();
            chart
                .series
                .push(Series::new(format!("s{s}"), points).style(style).band(band));
        }
        for format in [Format::Png, Format::Svg] {
            match chart.render(format) {
                Ok(bytes) => {
                    if format == Format::Svg {
                        svg_texts(&bytes);
                    } else {
                        decode_png(&bytes);
                    }
                }
                Err(e) => panic!("round {round}: data-driven charts should always render, got {e}"),
            }
        }
    }
}

#[test]
fn contour_png_and_svg() {
    let plot = rosenbrock_plot();
    let png = plot.render(Format::Png).unwrap();
    let img = assert_rich_png(&png, 800, 600);
    // The valley floor (below the first level) and the walls have different colours.
    let valley = img.distinct_colors();
    assert!(valley > 100, "{valley}");
    let texts = svg_texts(&plot.render(Format::Svg).unwrap());
    for want in [
        "Rosenbrock valley",
        "momentum",
        "adam",
        "global minimum",
        "start",
        "end",
        "f(x, y)",
        "x",
        "y",
    ] {
        assert!(texts.iter().any(|t| t == want), "{want:?} not in {texts:?}");
    }
}

#[test]
fn contour_background_follows_the_function() {
    // On x² − y² the diverging map puts blue where f < 0 (top and bottom)
    // and red where f > 0 (left and right).
    let grid = Grid::sample((-2.0, 2.0), (-2.0, 2.0), 101, 101, |x, y| x * x - y * y).unwrap();
    let plot = ContourPlot::new("saddle", grid).size(600, 600);
    let img = decode_png(&plot.render(Format::Png).unwrap());
    // Find the plot area: the frame is centred; sample well inside it.
    let (w, h) = (img.width, img.height);
    let mid_x = w / 2 - 40; // the colour bar sits right of the plot
    let top = img.pixel(mid_x, h / 4);
    let left = img.pixel(mid_x - 150, h / 2 + 20);
    assert!(top[2] > top[0], "top is blue-ish: {top:?}");
    assert!(left[0] > left[2], "left is red-ish: {left:?}");
}

#[test]
fn contour_edge_cases() {
    // Holes in the grid, a flat grid, explicit levels, paths far outside.
    let holes = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 40, 40, |x, y| {
        if x * x + y * y < 0.1 {
            f64::NAN
        } else {
            x * x + y * y
        }
    })
    .unwrap();
    let flat = Grid::sample((0.0, 1.0), (0.0, 1.0), 5, 5, |_, _| 2.0).unwrap();
    let wild_path = vec![
        (0.0, 0.0),
        (1e300, -1e300),
        (f64::NAN, 0.0),
        (0.5, 0.5),
        (f64::INFINITY, 0.5),
        (-0.5, -0.5),
    ];
    let many_steps: Vec<(f64, f64)> = (0..5000)
        .map(|i| ((i as f64 * 0.01).cos(), (i as f64 * 0.013).sin()))
        .collect();
    let plots = vec![
        ContourPlot::new("holes", holes.clone()).path(Trajectory::new("wild", wild_path.clone())),
        ContourPlot::new("flat", flat.clone()).path(Trajectory::new("p", vec![(0.5, 0.5)])),
        ContourPlot::new("explicit", holes.clone()).levels(Levels::Explicit(vec![0.5, 0.2, 1.0])),
        ContourPlot::new("thousands of steps", holes.clone())
            .path(Trajectory::new("long", many_steps)),
        ContourPlot::new("empty path", holes).path(Trajectory::new("nothing", vec![])),
    ];
    for p in plots {
        decode_png(
            &p.render(Format::Png)
                .unwrap_or_else(|e| panic!("{}: {e}", p.title)),
        );
        svg_texts(
            &p.render(Format::Svg)
                .unwrap_or_else(|e| panic!("{}: {e}", p.title)),
        );
    }
    let nan = Grid::sample((0.0, 1.0), (0.0, 1.0), 3, 3, |_, _| f64::NAN).unwrap();
    let e = ContourPlot::new("nan", nan)
        .render(Format::Png)
        .unwrap_err();
    assert!(matches!(e, PlotError::NoFiniteValues), "{e}");
    let e = ContourPlot::new("bad levels", flat)
        .levels(Levels::Explicit(vec![]))
        .render(Format::Png)
        .unwrap_err();
    assert!(matches!(e, PlotError::InvalidLevels(_)), "{e}");
}

#[test]
fn paths_leaving_the_window_are_flagged_and_clipped() {
    let grid = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 30, 30, |x, y| x * x + y * y).unwrap();
    let plot = ContourPlot::new("diverging", grid).path(Trajectory::new(
        "sgd",
        vec![(0.5, 0.5), (0.9, 0.9), (5.0, 5.0), (1e10, 1e10)],
    ));
    let svg = plot.render(Format::Svg).unwrap();
    let texts = svg_texts(&svg);
    assert!(
        texts.iter().any(|t| t == "sgd (leaves the plot)"),
        "{texts:?}"
    );
    // Every coordinate in the file stays within a few pixels of the picture.
    let s = String::from_utf8(svg).unwrap();
    let doc = roxmltree::Document::parse(&s).unwrap();
    for n in doc.descendants().filter(|n| n.has_tag_name("polyline")) {
        for pair in n.attribute("points").unwrap().split(' ') {
            let (x, y) = pair.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!(
                (-10.0..=810.0).contains(&x) && (-10.0..=610.0).contains(&y),
                "{x},{y}"
            );
        }
    }
}

#[test]
fn surface_chart_png_and_svg() {
    let grid = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 61, 61, |a, b| {
        0.01 + 3.0 * a * a + b * b
    })
    .unwrap();
    let chart = SurfaceChart::new("Loss surface", grid).marker(Marker::new(
        (0.0, 0.0),
        "trained model",
        MarkerKind::Minimum,
    ));
    assert_rich_png(&chart.render(Format::Png).unwrap(), 800, 600);
    let texts = svg_texts(&chart.render(Format::Svg).unwrap());
    for want in ["Loss surface", "α", "β", "loss", "trained model"] {
        assert!(texts.iter().any(|t| t == want), "{want:?} not in {texts:?}");
    }
    // Values from 0.01 to 4: log colour scale, labelled in decades.
    assert!(
        texts.iter().any(|t| t == "0.1") && texts.iter().any(|t| t == "1"),
        "{texts:?}"
    );
    let linear = chart.clone().color_scale(Scale::Linear);
    let texts = svg_texts(&linear.render(Format::Svg).unwrap());
    assert!(!texts.iter().any(|t| t == "0.1"), "{texts:?}");
    let signed = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 11, 11, |a, b| a - b).unwrap();
    let e = SurfaceChart::new("s", signed)
        .color_scale(Scale::Log)
        .render(Format::Png);
    assert!(e.is_ok(), "some positive values: log scale shows them");
    let negative = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 11, 11, |_, _| -1.0).unwrap();
    let e = SurfaceChart::new("s", negative)
        .color_scale(Scale::Log)
        .render(Format::Png);
    assert!(matches!(e, Err(PlotError::InvalidRange { .. })));
}

fn decode_gif(path: &std::path::Path) -> (u16, u16, Vec<Vec<u8>>) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts
        .read_info(std::fs::File::open(path).unwrap())
        .expect("GIF header decodes");
    let (w, h) = (d.width(), d.height());
    let mut frames = Vec::new();
    while let Some(f) = d.read_next_frame().expect("GIF frame decodes") {
        frames.push(f.buffer.to_vec());
    }
    (w, h, frames)
}

#[test]
fn gif_has_the_requested_frames() {
    let dir = scratch("gif");
    let plot = rosenbrock_plot().size(400, 300);
    let path = animate_paths(&plot, 12, dir.join("paths.gif")).unwrap();
    assert_eq!(listing(&dir), vec!["paths.gif"]);
    let (w, h, frames) = decode_gif(&path);
    assert_eq!((w, h), (400, 300));
    assert_eq!(frames.len(), 12);
    assert_eq!(
        frames[0].len(),
        400 * 300 * 4,
        "first frame is the full picture"
    );
    assert!(
        frames[1..].iter().any(|f| f.len() > 4),
        "later frames draw the growing paths"
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size < 400 * 300,
        "palette frames with deltas stay small: {size} bytes"
    );

    let one = animate_paths(&plot, 1, dir.join("one.gif")).unwrap();
    assert_eq!(decode_gif(&one).2.len(), 1);
    let no_paths = ContourPlot::new("still", plot.grid.clone()).size(300, 300);
    assert_eq!(
        decode_gif(&animate_paths(&no_paths, 3, dir.join("still.gif")).unwrap())
            .2
            .len(),
        3
    );
    for bad in [0, 100_000] {
        let e = animate_paths(&plot, bad, dir.join("bad.gif")).unwrap_err();
        assert!(matches!(e, PlotError::InvalidFrames { .. }), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn contour_rendering_is_fast() {
    let grid = Grid::sample((-2.0, 2.0), (-1.0, 3.0), 200, 200, rosenbrock).unwrap();
    let plot = ContourPlot::new("timing", grid);
    let _ = plot.render(Format::Png).unwrap();
    let t = std::time::Instant::now();
    let png = plot.render(Format::Png).unwrap();
    let took = t.elapsed();
    assert_rich_png(&png, 800, 600);
    eprintln!("800x600 contour from a 200x200 grid: {took:.2?}");
    if !cfg!(debug_assertions) {
        assert!(took.as_secs_f64() < 1.0, "took {took:.2?}");
    }
}
