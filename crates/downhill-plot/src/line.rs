//! Line charts: loss and accuracy curves, loss along a line through weight space.

use crate::axis::{self, Axis, Kind, Scale};
use crate::canvas::{Canvas, Fill, Pt, Stroke};
use crate::color::{palette_color, Rgb};
use crate::error::PlotError;
use crate::frame::{self, Entry, Frame, FrameSpec, Legend, Swatch};
use crate::{render_both, Format};
use std::path::{Path, PathBuf};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineStyle {
    /// A continuous line.
    #[default]
    Solid,
    /// A dashed line (e.g. training loss next to a solid test loss).
    Dashed,
    /// A dot per point and no line (e.g. sparse evaluations).
    Markers,
    /// A line with a dot per point.
    LineMarkers,
}

/// One named curve of a [`LineChart`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` pairs in drawing order. Points with a non-finite coordinate
    /// (and, on a log axis, a coordinate ≤ 0) are left out and break the line.
    pub points: Vec<(f64, f64)>,
    /// How the series is drawn.
    pub style: LineStyle,
    /// Palette slot for the colour ([`palette_color`]); `None` uses the
    /// series' position in the chart, so the same order gives the same colours
    /// in every chart.
    pub color_slot: Option<usize>,
}

impl Series {
    /// A solid series coloured by its position.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            style: LineStyle::Solid,
            color_slot: None,
        }
    }

    /// A series from y values at x = 0, 1, 2, …
    pub fn from_values(name: impl Into<String>, values: &[f64]) -> Series {
        Series::new(
            name,
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as f64, v))
                .collect(),
        )
    }

    /// Sets the drawing style.
    pub fn style(mut self, style: LineStyle) -> Series {
        self.style = style;
        self
    }

    /// Sets the palette slot (to match another series' colour).
    pub fn color_slot(mut self, slot: usize) -> Series {
        self.color_slot = Some(slot);
        self
    }
}

/// A chart of one or more curves, with title, axis labels and a legend.
///
/// ```
/// use downhill_plot::{LineChart, Series, LineStyle, Scale};
/// let chart = LineChart::new("Training loss")
///     .x_label("epoch")
///     .x_integer()
///     .y_label("loss")
///     .series(Series::from_values("adam", &[2.3, 0.9, 0.5, 0.31, 0.22]))
///     .series(Series::from_values("sgd", &[2.3, 1.7, 1.2, 0.95, 0.8]).style(LineStyle::Dashed));
/// let svg = chart.render(downhill_plot::Format::Svg)?;
/// assert!(String::from_utf8(svg).unwrap().contains("Training loss"));
/// # Ok::<(), downhill_plot::PlotError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the chart.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label left of the y axis.
    pub y_label: String,
    /// Scale of the x axis (default linear, as steps and epochs are).
    pub x_scale: Scale,
    /// The x axis counts whole things (epochs, steps): ticks at whole numbers
    /// only, never 2.5 or 7.5. Default `false`.
    pub x_integer: bool,
    /// Scale of the y axis (default [`Scale::Auto`]: log when values span decades).
    pub y_scale: Scale,
    /// The curves; legend order and colours follow this order.
    pub series: Vec<Series>,
    /// Visible x range; `None` fits the data.
    pub x_range: Option<(f64, f64)>,
    /// Visible y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

impl Default for LineChart {
    fn default() -> Self {
        LineChart {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_scale: Scale::Linear,
            x_integer: false,
            y_scale: Scale::Auto,
            series: Vec::new(),
            x_range: None,
            y_range: None,
            width: 800,
            height: 600,
        }
    }
}

/// A series after clipping to what the axes can show: runs of drawable points.
struct Prepared {
    runs: Vec<Vec<Pt>>,
    color: Rgb,
    style: LineStyle,
}

impl LineChart {
    /// An empty 800×600 chart with a title.
    pub fn new(title: impl Into<String>) -> LineChart {
        LineChart {
            title: title.into(),
            ..LineChart::default()
        }
    }

    /// Sets the x-axis label.
    pub fn x_label(mut self, label: impl Into<String>) -> LineChart {
        self.x_label = label.into();
        self
    }

    /// Sets the y-axis label.
    pub fn y_label(mut self, label: impl Into<String>) -> LineChart {
        self.y_label = label.into();
        self
    }

    /// Sets the x scale.
    pub fn x_scale(mut self, scale: Scale) -> LineChart {
        self.x_scale = scale;
        self
    }

    /// Declares the x axis a count of whole things (epochs, steps), so its
    /// ticks fall on whole numbers only.
    pub fn x_integer(mut self) -> LineChart {
        self.x_integer = true;
        self
    }

    /// Sets the y scale.
    pub fn y_scale(mut self, scale: Scale) -> LineChart {
        self.y_scale = scale;
        self
    }

    /// Fixes the visible x range.
    pub fn x_range(mut self, lo: f64, hi: f64) -> LineChart {
        self.x_range = Some((lo, hi));
        self
    }

    /// Fixes the visible y range.
    pub fn y_range(mut self, lo: f64, hi: f64) -> LineChart {
        self.y_range = Some((lo, hi));
        self
    }

    /// Sets the picture size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> LineChart {
        self.width = width;
        self.height = height;
        self
    }

    /// Adds a series.
    pub fn series(mut self, series: Series) -> LineChart {
        self.series.push(series);
        self
    }

    /// Writes the chart as `path_stem.png` and/or `path_stem.svg` (the
    /// extension is appended, so `out/loss` gives `out/loss.png`) and returns
    /// the paths written. Each file is written atomically.
    pub fn save(
        &self,
        path_stem: impl AsRef<Path>,
        formats: &[Format],
    ) -> Result<Vec<PathBuf>, PlotError> {
        crate::save_formats(path_stem.as_ref(), formats, |f| self.render(f))
    }

    /// The chart encoded in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, PlotError> {
        crate::check_size(self.width, self.height)?;
        render_both(self.width, self.height, &self.title, format, |c| {
            self.draw(c)
        })
    }

    fn axes(&self) -> Result<(Axis, Axis), PlotError> {
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .collect();
        let xk = axis::decide_kind(self.x_scale, &xs);
        let yk = axis::decide_kind(self.y_scale, &ys);
        // Fit each axis to the points the other axis can show, so that a point
        // dropped from a log axis does not stretch the other range.
        let shown = |p: &(f64, f64)| {
            p.0.is_finite()
                && p.1.is_finite()
                && (xk == Kind::Linear || p.0 > 0.0)
                && (yk == Kind::Linear || p.1 > 0.0)
        };
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| shown(p)).map(|p| p.0))
            .collect();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| shown(p)).map(|p| p.1))
            .collect();
        let x = Axis::fit("x range", xk, &xs, self.x_range)?.integer(self.x_integer);
        let y = Axis::fit("y range", yk, &ys, self.y_range)?;
        Ok((x, y))
    }

    fn prepare(&self, f: &Frame) -> Vec<Prepared> {
        self.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let runs = frame::clip_runs(s.points.iter().map(|&p| f.map64(p)), f.plot, 4.0);
                Prepared {
                    runs,
                    color: palette_color(s.color_slot.unwrap_or(i)),
                    style: s.style,
                }
            })
            .collect()
    }

    fn legend(&self, f: &Frame, prepared: &[Prepared]) -> Legend {
        let entries = self
            .series
            .iter()
            .zip(prepared)
            .enumerate()
            .filter(|(_, (s, _))| !s.name.trim().is_empty())
            .map(|(i, (s, p))| Entry {
                // Say so rather than leave the reader searching for the curve.
                label: if p.runs.is_empty() {
                    format!("{} (no data)", s.name.trim())
                } else {
                    s.name.trim().to_string()
                },
                swatch: Swatch::Line {
                    color: palette_color(s.color_slot.unwrap_or(i)),
                    dashed: s.style == LineStyle::Dashed,
                    dot: matches!(s.style, LineStyle::Markers | LineStyle::LineMarkers),
                    line: s.style != LineStyle::Markers,
                },
            })
            .collect();
        Legend::new(entries, &f.m, 0.35 * f.width, f.plot.h())
    }

    fn draw(&self, c: &mut dyn Canvas) -> Result<(), PlotError> {
        let (x, y) = self.axes()?;
        let spec = |right_reserve| FrameSpec {
            width: self.width,
            height: self.height,
            title: &self.title,
            x_label: &self.x_label,
            y_label: &self.y_label,
            x,
            y,
            right_reserve,
            aspect: None,
        };
        let mut f = frame::layout(&spec(0.0));
        let mut prepared = self.prepare(&f);
        let mut legend = self.legend(&f, &prepared);
        let mut legend_at = None;
        if !legend.is_empty() {
            let mut occupied = Vec::new();
            for p in &prepared {
                for run in &p.runs {
                    frame::sample_polyline(run, 4.0, &mut occupied);
                }
            }
            legend_at = frame::place_inside(f.plot, legend.w, legend.h, 8.0 * f.m.s, &occupied);
            if legend_at.is_none() {
                // No free corner: move the legend beside the plot.
                f = frame::layout(&spec(legend.w + 12.0 * f.m.s));
                prepared = self.prepare(&f);
                legend = self.legend(&f, &prepared);
                legend_at = Some((f.plot.x1 + 12.0 * f.m.s, f.plot.y0));
            }
        }
        f.draw_grid(c);
        let p = f.plot;
        c.push_clip(p.x0, p.y0, p.w(), p.h());
        let mut drawn = 0usize;
        for s in &prepared {
            let line = Stroke::solid(s.color, 2.0 * f.m.s);
            for run in &s.runs {
                drawn += run.len();
                match s.style {
                    LineStyle::Solid | LineStyle::Dashed | LineStyle::LineMarkers => {
                        let st = if s.style == LineStyle::Dashed {
                            line.clone().dashed(&[7.0 * f.m.s, 4.0 * f.m.s])
                        } else {
                            line.clone()
                        };
                        if run.len() >= 2 {
                            // Sub-pixel detail is invisible and only bloats SVG files.
                            c.polyline(&frame::thin(run, 0.5), &st);
                        }
                        // A lone point has no line to show it: give it a dot.
                        if run.len() == 1 || s.style == LineStyle::LineMarkers {
                            for &q in run {
                                c.circle(q, 3.0 * f.m.s, Some(Fill::solid(s.color)), None);
                            }
                        }
                    }
                    LineStyle::Markers => {
                        for &q in run {
                            c.circle(q, 3.0 * f.m.s, Some(Fill::solid(s.color)), None);
                        }
                    }
                }
            }
        }
        c.pop_clip();
        f.draw_axes(c);
        if drawn == 0 {
            let note = if self.series.iter().all(|s| s.points.is_empty()) {
                "no data"
            } else if x.kind == Kind::Log || y.kind == Kind::Log {
                "no finite positive values to show on a log axis"
            } else {
                "no finite values to show"
            };
            f.draw_note(c, note);
        }
        if let Some((lx, ly)) = legend_at {
            legend.draw(c, lx, ly);
        }
        Ok(())
    }
}
