//! The HTML report: self-contained, images inline, and readable in a real browser.

mod common;

use common::{decode_png, listing, scratch};
use downhill_plot::{ContourPlot, Format, Grid, LineChart, Report, Section, Series, Table};
use std::path::Path;

fn build_report(dir: &Path) -> Report {
    let chart = LineChart::new("Accuracy")
        .x_label("epoch")
        .y_label("accuracy")
        .series(Series::from_values("adam", &[0.5, 0.7, 0.8, 0.84]))
        .series(Series::from_values("sgd", &[0.4, 0.6, 0.7, 0.75]));
    let files = chart
        .save(dir.join("accuracy"), &[Format::Png, Format::Svg])
        .unwrap();
    let grid = Grid::sample((-2.0, 2.0), (-2.0, 2.0), 60, 60, |x, y| x * x - y * y).unwrap();
    let saddle_svg = String::from_utf8(
        ContourPlot::new("Saddle", grid)
            .render(Format::Svg)
            .unwrap(),
    )
    .unwrap();
    Report::new("Run report <adam vs sgd>")
        .paragraph("Two optimisers on the same data & seed.")
        .section(
            Section::new("Results")
                .table(
                    Table::new(["optimiser", "accuracy"])
                        .row(["adam", "0.84"])
                        .row(["sgd", "0.75"]),
                )
                .image_file(&files[0], "Accuracy (PNG)"),
        )
        .section(
            Section::new("Vector pictures")
                .image_file(&files[1], "Accuracy (SVG)")
                .svg(saddle_svg, "Saddle (SVG from memory)")
                .code("downhill compare --optimizers adam,sgd"),
        )
}

#[test]
fn report_is_self_contained() {
    let dir = scratch("report");
    let report = build_report(&dir);
    let path = dir.join("report.html");
    report.write(&path).unwrap();
    assert_eq!(
        listing(&dir),
        vec!["accuracy.png", "accuracy.svg", "report.html"]
    );
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>Run report &lt;adam vs sgd&gt;</title>"));
    assert!(html.contains("data &amp; seed"));
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 1);
    assert_eq!(html.matches("<svg").count(), 2, "both SVGs inline");
    assert!(html.contains(">Saddle</text>") || html.contains(">Saddle</title>"));
    assert!(
        !html.contains("<?xml"),
        "XML declarations are stripped from inline SVG"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external references"
    );
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "no scripts or linked resources"
    );
    // Every src attribute is a data URI.
    for part in html.split("src=\"").skip(1) {
        assert!(
            part.starts_with("data:"),
            "external src: {}",
            &part[..40.min(part.len())]
        );
    }
    // The embedded PNG is the file, byte for byte.
    use base64::Engine as _;
    let start = html.find("base64,").unwrap() + 7;
    let end = start + html[start..].find('"').unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(&html[start..end])
        .unwrap();
    assert_eq!(png, std::fs::read(dir.join("accuracy.png")).unwrap());
    // Two inline SVGs keep distinct clip-path ids.
    let ids: Vec<&str> = html
        .match_indices("<clipPath id=\"")
        .map(|(i, _)| {
            let rest = &html[i + 14..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "clip ids collide: {ids:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_in_headless_chromium_is_not_blank() {
    if !downhill_testenv::require_path(
        "report_in_headless_chromium_is_not_blank",
        "/usr/bin/chromium",
        "apt-get install chromium",
    ) {
        return;
    }
    // Kept under the target directory so that a person can look at it.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("downhill-plot-chromium");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let report = build_report(&dir);
    let html = dir.join("report.html");
    report.write(&html).unwrap();
    let shot = dir.join("shot.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-report-in-chromium.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&html)
        .arg(&shot)
        .output()
        .expect("run the screenshot script");
    assert!(
        out.status.success(),
        "script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let img = decode_png(&std::fs::read(&shot).unwrap());
    assert_eq!((img.width, img.height), (1200, 1600));
    // Text, table rules and the chart make many colours and a fair amount of ink.
    assert!(
        img.distinct_colors() >= 20,
        "{} colours",
        img.distinct_colors()
    );
    let ink = img.ink_fraction(0, 0, img.width, img.height);
    assert!(ink > 0.01, "screenshot looks blank ({ink})");
    // The embedded chart's blue series is on screen.
    let blue = downhill_plot::palette_color(0);
    let near = |p: [u8; 3]| {
        (i32::from(p[0]) - i32::from(blue.0)).abs() < 30
            && (i32::from(p[1]) - i32::from(blue.1)).abs() < 30
            && (i32::from(p[2]) - i32::from(blue.2)).abs() < 30
    };
    let blue_pixels = img
        .rgb
        .chunks_exact(3)
        .filter(|p| near([p[0], p[1], p[2]]))
        .count();
    assert!(
        blue_pixels > 200,
        "chart not visible: {blue_pixels} blue pixels"
    );
    eprintln!("screenshot: {}", shot.display());
}
