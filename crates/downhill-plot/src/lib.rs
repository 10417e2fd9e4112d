//! Pictures for downhill, in pure Rust: loss and accuracy curves, optimiser
//! paths over contour plots of 2-D functions, animated GIFs of those paths,
//! 2-D loss-surface slices, and a self-contained HTML report.
//!
//! Plain data in, files out: nothing here depends on the other downhill crates.
//!
//! * [`LineChart`] — curves of several [`Series`], PNG and SVG, log y axis
//!   chosen automatically when values span more than two decades; a series
//!   may carry a shaded band (e.g. the spread over random seeds) and be drawn
//!   as steps (performance profiles).
//! * [`ContourPlot`] — filled contour bands of a [`Grid`] with iso-lines,
//!   optimiser [`Trajectory`]s and [`Marker`]s; [`animate_paths`] makes a GIF.
//! * [`SurfaceChart`] — a heat map of loss over two direction coefficients
//!   (α, β) with contour lines and a colour bar.
//! * [`Report`] — one `report.html` with text, tables and the pictures inline;
//!   it needs no network and no other file.
//!
//! Every series and path `i` is drawn in [`palette_color`]`(i)`, so a caller
//! that passes optimisers in the same order gets the same colours in every
//! chart. Every file is written atomically (temporary file, then rename).
//! Text uses the embedded DejaVu Sans font; no system font library is needed.
//! Bad input never panics: non-finite points are left out, impossible
//! settings come back as a [`PlotError`] that says what was expected.
//!
//! To look at every picture type: `cargo run -p downhill-plot --release
//! --example gallery -- OUT_DIR [WIDTH HEIGHT]`. To check a report in a real
//! browser: `crates/downhill-plot/scripts/check-report-in-chromium.sh
//! REPORT.html OUT.png` (headless Chromium, no network).
//!
//! # Example
//!
//! ```
//! use downhill_plot::{ContourPlot, Format, Grid, LineChart, Marker, MarkerKind, Report, Section, Series, Trajectory};
//!
//! let dir = std::env::temp_dir().join(format!("downhill-plot-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//!
//! // Loss curves of two optimisers.
//! let adam: Vec<f64> = (0..50).map(|t| 2.0 * (-0.1 * t as f64).exp() + 0.01).collect();
//! let sgd: Vec<f64> = (0..50).map(|t| 2.0 * (-0.03 * t as f64).exp() + 0.05).collect();
//! let curves = LineChart::new("Training loss")
//!     .x_label("epoch")
//!     .y_label("loss")
//!     .series(Series::from_values("adam", &adam))
//!     .series(Series::from_values("sgd", &sgd));
//! let files = curves.save(dir.join("loss"), &[Format::Png, Format::Svg])?;
//! assert_eq!(files.len(), 2);
//!
//! // A path over the Rosenbrock function.
//! let rosenbrock = |x: f64, y: f64| (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2);
//! let grid = Grid::sample((-2.0, 2.0), (-1.0, 3.0), 120, 120, rosenbrock)?;
//! let path: Vec<(f64, f64)> = (0..=20).map(|i| {
//!     let t = i as f64 / 20.0;
//!     (-1.5 + 2.5 * t, 2.0 - t)
//! }).collect();
//! let contour = ContourPlot::new("Rosenbrock", grid)
//!     .path(Trajectory::new("adam", path))
//!     .marker(Marker::new((1.0, 1.0), "minimum", MarkerKind::Minimum));
//! let pictures = contour.save(dir.join("rosenbrock"), &[Format::Png])?;
//!
//! // A report that ties them together.
//! let report = downhill_plot::Report::new("Run summary").section(
//!     Section::new("Curves")
//!         .paragraph("Adam reaches a lower loss than SGD.")
//!         .image_file(&files[1], "Training loss")
//!         .image_file(&pictures[0], "Paths on Rosenbrock"),
//! );
//! report.write(dir.join("report.html"))?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod animate;
mod axis;
mod canvas;
mod color;
mod contour;
mod error;
mod frame;
mod fsio;
mod grid;
mod iso;
mod levels;
mod line;
mod report;
mod surface;
mod text;

pub use animate::{animate_paths, MAX_FRAMES};
pub use axis::Scale;
pub use color::{palette_color, ColorMap, Rgb};
pub use contour::{ContourPlot, Marker, MarkerKind, Trajectory};
pub use error::PlotError;
pub use grid::Grid;
pub use levels::Levels;
pub use line::{LineChart, LineStyle, Series};
pub use report::{Block, Image, ImageSource, Report, Section, Table};
pub use surface::SurfaceChart;

use canvas::Canvas;
use std::path::{Path, PathBuf};

/// An output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Raster image (8-bit RGB), for reports and quick viewing.
    Png,
    /// Vector image with real text, for papers and zooming.
    Svg,
}

impl Format {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// Smallest picture side accepted, in pixels (room for title, ticks and labels).
pub const MIN_SIDE: u32 = 200;
/// Largest picture side accepted, in pixels.
pub const MAX_SIDE: u32 = 8000;

pub(crate) fn check_size(width: u32, height: u32) -> Result<(), PlotError> {
    if (MIN_SIDE..=MAX_SIDE).contains(&width) && (MIN_SIDE..=MAX_SIDE).contains(&height) {
        Ok(())
    } else {
        Err(PlotError::InvalidSize {
            width,
            height,
            min: MIN_SIDE,
            max: MAX_SIDE,
        })
    }
}

/// Draws with `draw` onto the canvas for `format` and encodes the result.
pub(crate) fn render_both(
    width: u32,
    height: u32,
    title: &str,
    format: Format,
    draw: impl FnOnce(&mut dyn Canvas) -> Result<(), PlotError>,
) -> Result<Vec<u8>, PlotError> {
    match format {
        Format::Png => {
            let mut r = canvas::Raster::new(width, height)?;
            draw(&mut r)?;
            r.to_png()
        }
        Format::Svg => {
            let mut s = canvas::Svg::new(width, height);
            draw(&mut s)?;
            Ok(s.finish(title).into_bytes())
        }
    }
}

/// Renders each requested format (once each, in the order given) and writes
/// it atomically next to `stem`.
pub(crate) fn save_formats(
    stem: &Path,
    formats: &[Format],
    render: impl Fn(Format) -> Result<Vec<u8>, PlotError>,
) -> Result<Vec<PathBuf>, PlotError> {
    if formats.is_empty() {
        return Err(PlotError::NoFormats);
    }
    let mut done: Vec<Format> = Vec::new();
    let mut paths = Vec::new();
    for &f in formats {
        if done.contains(&f) {
            continue;
        }
        done.push(f);
        let bytes = render(f)?;
        let path = fsio::with_ext(stem, f.extension());
        fsio::write_atomic(&path, &bytes)?;
        paths.push(path);
    }
    Ok(paths)
}
