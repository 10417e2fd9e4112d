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
    /// A staircase drawn "post" style: from `(x_i, y_i)` across to
    /// `(x_{i+1}, y_i)`, then up or down to `(x_{i+1}, y_{i+1})`, for step
    /// functions such as performance profiles ρ(τ) (often with
    /// [`Scale::Log`] on x). The last point ends the staircase.
    Steps,
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
    /// A shaded band around the curve, as `(x, lower, upper)` entries in
    /// drawing order (e.g. the lowest and highest value over several random
    /// seeds). It is filled in the series' colour, faintly, behind every line
    /// of the chart, and counts when the axes fit the data. An entry with a
    /// non-finite value (and, on a log axis, a value ≤ 0) is left out and
    /// breaks the band; a single entry between two breaks has no width and is
    /// not drawn. Empty (no band) by default.
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    /// A solid series coloured by its position.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            style: LineStyle::Solid,
            color_slot: None,
            band: Vec::new(),
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

    /// Sets the shaded band drawn around the series: `(x, lower, upper)`
    /// entries, drawn as described for the `band` field.
    ///
    /// ```
    /// use downhill_plot::Series;
    /// // Mean loss over three seeds, shaded from the lowest to the highest seed.
    /// let seeds = [[2.3, 1.1, 0.6], [2.3, 0.9, 0.4], [2.3, 1.3, 0.7]];
    /// let mut mean = Vec::new();
    /// let mut band = Vec::new();
    /// for epoch in 0..3 {
    ///     let at: Vec<f64> = seeds.iter().map(|s| s[epoch]).collect();
    ///     let (lo, hi) = at.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
    ///         (lo.min(v), hi.max(v))
    ///     });
    ///     let x = epoch as f64;
    ///     mean.push((x, at.iter().sum::<f64>() / at.len() as f64));
    ///     band.push((x, lo, hi));
    /// }
    /// let series = Series::new("adam (3 seeds)", mean).band(band);
    /// assert_eq!(series.band.len(), 3);
    /// ```
    pub fn band(mut self, band: Vec<(f64, f64, f64)>) -> Series {
        self.band = band;
        self
    }
}

/// Opacity of a band's fill: faint enough for the lines on top to stand out,
/// and see-through, so overlapping bands of two series both stay visible.
const BAND_ALPHA: f32 = 0.2;

/// A chart of one or more curves, with title, axis labels and a legend.
///
/// ```
/// use downhill_plot::{LineChart, Series, LineStyle, Scale};
/// // Adam's mean over seeds, shaded between the best and the worst seed.
/// let adam_band = vec![
///     (0.0, 2.3, 2.3),
///     (1.0, 0.7, 1.1),
///     (2.0, 0.4, 0.6),
///     (3.0, 0.25, 0.4),
///     (4.0, 0.18, 0.27),
/// ];
/// let chart = LineChart::new("Training loss")
///     .x_label("epoch")
///     .x_integer()
///     .y_label("loss")
///     .series(Series::from_values("adam", &[2.3, 0.9, 0.5, 0.31, 0.22]).band(adam_band))
///     .series(Series::from_values("sgd", &[2.3, 1.7, 1.2, 0.95, 0.8]).style(LineStyle::Dashed));
/// let svg = chart.render(downhill_plot::Format::Svg)?;
/// assert!(String::from_utf8(svg).unwrap().contains("Training loss"));
///
/// // A performance profile: the share of problems solved within a factor τ
/// // of the best solver, a step function best read on a log τ axis.
/// let profile = LineChart::new("Performance profile")
///     .x_label("τ")
///     .x_scale(Scale::Log)
///     .y_label("ρ(τ)")
///     .y_range(0.0, 1.05)
///     .series(
///         Series::new("adam", vec![(1.0, 0.6), (1.5, 0.8), (4.0, 1.0), (10.0, 1.0)])
///             .style(LineStyle::Steps),
///     );
/// profile.render(downhill_plot::Format::Png)?;
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

/// A series after clipping to what the axes can show: runs of drawable points
/// and the polygons of its band.
struct Prepared {
    runs: Vec<Vec<Pt>>,
    bands: Vec<Vec<Pt>>,
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

    /// Every x and y the chart holds: the points, and each band entry as its
    /// lower and upper end (both at the entry's x). With `shown`, only the
    /// points and band entries it accepts; a band entry counts only when both
    /// its ends do, as only then is it drawn.
    fn coordinates(&self, shown: impl Fn(&(f64, f64)) -> bool) -> (Vec<f64>, Vec<f64>) {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for s in &self.series {
            for p in s.points.iter().filter(|p| shown(p)) {
                xs.push(p.0);
                ys.push(p.1);
            }
            for &(x, lo, hi) in &s.band {
                if shown(&(x, lo)) && shown(&(x, hi)) {
                    xs.push(x);
                    ys.extend([lo, hi]);
                }
            }
        }
        (xs, ys)
    }

    fn axes(&self) -> Result<(Axis, Axis), PlotError> {
        let (xs, ys) = self.coordinates(|_| true);
        let xk = axis::decide_kind(self.x_scale, &xs);
        let yk = axis::decide_kind(self.y_scale, &ys);
        // Fit each axis to the points the other axis can show, so that a point
        // dropped from a log axis does not stretch the other range.
        let (xs, ys) = self.coordinates(|p| {
            p.0.is_finite()
                && p.1.is_finite()
                && (xk == Kind::Linear || p.0 > 0.0)
                && (yk == Kind::Linear || p.1 > 0.0)
        });
        let x = Axis::fit("x range", xk, &xs, self.x_range)?.integer(self.x_integer);
        let y = Axis::fit("y range", yk, &ys, self.y_range)?;
        Ok((x, y))
    }

    fn prepare(&self, f: &Frame) -> Vec<Prepared> {
        self.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mapped = s.points.iter().map(|&p| f.map64(p));
                let runs = if s.style == LineStyle::Steps {
                    frame::clip_runs(frame::staircase(mapped), f.plot, 4.0)
                } else {
                    frame::clip_runs(mapped, f.plot, 4.0)
                };
                Prepared {
                    runs,
                    bands: frame::band_polygons(&s.band, f),
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
                label: if p.runs.is_empty() && p.bands.is_empty() {
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
            // Fine enough that a legend lying wholly inside a band sees it.
            let step = (0.5 * legend.w.min(legend.h)).max(4.0);
            for p in &prepared {
                for run in &p.runs {
                    frame::sample_polyline(run, 4.0, &mut occupied);
                }
                for band in &p.bands {
                    let origin = (f.plot.x0, f.plot.y0);
                    frame::sample_polygon(band, step, origin, &mut occupied);
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
        // Every band first, so that no band hides another series' line.
        for s in &prepared {
            let fill = Fill {
                color: s.color,
                alpha: BAND_ALPHA,
            };
            for band in &s.bands {
                drawn += 1;
                c.polygon(band, Some(fill), None);
            }
        }
        for s in &prepared {
            let line = Stroke::solid(s.color, 2.0 * f.m.s);
            for run in &s.runs {
                drawn += run.len();
                match s.style {
                    LineStyle::Solid
                    | LineStyle::Dashed
                    | LineStyle::LineMarkers
                    | LineStyle::Steps => {
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
            let note = if self
                .series
                .iter()
                .all(|s| s.points.is_empty() && s.band.is_empty())
            {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `polygon`, `polyline` or `rect` of an SVG, in document order.
    #[derive(Debug)]
    struct Shape {
        tag: String,
        fill: String,
        fill_opacity: String,
        stroke: String,
        dashed: bool,
        points: Vec<(f32, f32)>,
        rect: Option<[f32; 4]>,
    }

    fn shapes(chart: &LineChart) -> Vec<Shape> {
        let svg = String::from_utf8(chart.render(Format::Svg).unwrap()).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let attr = |n: &roxmltree::Node, a: &str| n.attribute(a).unwrap_or("").to_string();
        // The background rect is 100% wide: not a number, so no `rect`.
        let num = |n: &roxmltree::Node, a: &str| n.attribute(a).and_then(|v| v.parse().ok());
        doc.descendants()
            .filter(|n| matches!(n.tag_name().name(), "polygon" | "polyline" | "rect"))
            .map(|n| Shape {
                tag: n.tag_name().name().to_string(),
                fill: attr(&n, "fill"),
                fill_opacity: attr(&n, "fill-opacity"),
                stroke: attr(&n, "stroke"),
                dashed: n.attribute("stroke-dasharray").is_some(),
                points: attr(&n, "points")
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect(),
                rect: num(&n, "width").map(|w| {
                    let (x, y) = (num(&n, "x").unwrap_or(0.0), num(&n, "y").unwrap_or(0.0));
                    [x, y, w, num(&n, "height").unwrap()]
                }),
            })
            .collect()
    }

    fn is_band(s: &Shape, slot: usize) -> bool {
        s.tag == "polygon" && s.fill == palette_color(slot).hex() && s.fill_opacity == "0.2"
    }

    fn is_line(s: &Shape, slot: usize) -> bool {
        s.tag == "polyline" && s.stroke == palette_color(slot).hex()
    }

    /// Smallest and largest (x, y) of some points.
    fn bbox(pts: &[(f32, f32)]) -> ((f32, f32), (f32, f32)) {
        pts.iter().fold(
            (
                (f32::INFINITY, f32::INFINITY),
                (f32::NEG_INFINITY, f32::NEG_INFINITY),
            ),
            |(lo, hi), p| {
                (
                    (lo.0.min(p.0), lo.1.min(p.1)),
                    (hi.0.max(p.0), hi.1.max(p.1)),
                )
            },
        )
    }

    #[test]
    fn bands_are_filled_faintly_behind_every_line() {
        let flat = |y: f64| (0..5).map(|i| (i as f64, y)).collect::<Vec<_>>();
        let chart = LineChart::new("bands")
            .y_range(-1.0, 8.0)
            .series(Series::new("a", flat(1.0)).band(vec![(0.0, 0.0, 3.0), (4.0, 0.0, 3.0)]))
            .series(Series::new("b", flat(5.0)).band(vec![(0.0, 4.5, 5.5), (4.0, 4.5, 5.5)]));
        let shapes = shapes(&chart);
        for slot in 0..2 {
            assert_eq!(shapes.iter().filter(|s| is_band(s, slot)).count(), 1);
        }
        let last_band = shapes.iter().rposition(|s| is_band(s, 0) || is_band(s, 1));
        let first_line = shapes.iter().position(|s| is_line(s, 0) || is_line(s, 1));
        assert!(
            last_band.unwrap() < first_line.unwrap(),
            "bands behind lines"
        );

        // The band of "a" spans from its lower to its upper edge around the line.
        let band = shapes.iter().find(|s| is_band(s, 0)).unwrap();
        let line = shapes.iter().find(|s| is_line(s, 0)).unwrap();
        let ((bx0, by0), (bx1, by1)) = bbox(&band.points);
        let ((lx0, ly), (lx1, _)) = bbox(&line.points);
        assert_eq!((bx0, bx1), (lx0, lx1));
        assert!(by0 < ly - 50.0 && by1 > ly + 20.0, "{by0} {ly} {by1}");

        // The PNG shows the same faint tint between the line and the upper
        // edge: the picture without bands, mixed a fifth of the way towards
        // the series' colour (whatever grid line runs there).
        let pixel = |chart: &LineChart, x: f32, y: f32| {
            let png = chart.render(Format::Png).unwrap();
            let mut reader = png::Decoder::new(std::io::Cursor::new(png))
                .read_info()
                .unwrap();
            let mut buf = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut buf).unwrap();
            let i = (y as usize * info.width as usize + x as usize) * 3;
            Rgb(buf[i], buf[i + 1], buf[i + 2])
        };
        let mut bare = chart.clone();
        for s in &mut bare.series {
            s.band.clear();
        }
        let (x, y) = (0.5 * (bx0 + bx1), 0.5 * (by0 + ly));
        let want = pixel(&bare, x, y).mix(palette_color(0), f64::from(BAND_ALPHA));
        let got = pixel(&chart, x, y);
        let near = |a: u8, b: u8| a.abs_diff(b) <= 2;
        assert!(
            near(got.0, want.0) && near(got.1, want.1) && near(got.2, want.2),
            "{got:?} vs {want:?}"
        );
        assert_ne!(got, pixel(&bare, x, y));
    }

    #[test]
    fn bands_break_at_entries_the_axes_cannot_show() {
        let count = |chart: &LineChart| shapes(chart).iter().filter(|s| is_band(s, 0)).count();
        let line = || Series::new("m", vec![(0.0, 1.5), (6.0, 1.5)]);
        let gap = vec![
            (0.0, 1.0, 2.0),
            (1.0, 1.0, 2.0),
            (2.0, f64::NAN, 2.0),
            (3.0, 1.0, 2.0),
            (4.0, 1.0, f64::INFINITY),
            (5.0, 1.0, 2.0),
            (6.0, 1.0, 2.0),
        ];
        assert_eq!(count(&LineChart::new("t").series(line().band(gap))), 2);
        // On a log axis a value ≤ 0 breaks the band too; a lone entry is not drawn.
        let log = vec![
            (0.0, 1.0, 2.0),
            (1.0, 1.0, 2.0),
            (2.0, 0.0, 2.0),
            (3.0, 1.0, 2.0),
            (4.0, 1.0, 2.0),
            (5.0, -1.0, 2.0),
            (6.0, 1.0, 2.0),
        ];
        let chart = LineChart::new("t")
            .y_scale(Scale::Log)
            .series(line().band(log.clone()));
        assert_eq!(count(&chart), 2);
        let chart = LineChart::new("t")
            .y_scale(Scale::Linear)
            .series(line().band(log));
        assert_eq!(count(&chart), 1, "linear axis: one unbroken band");
    }

    #[test]
    fn bands_widen_the_automatic_ranges() {
        let pts = vec![(0.0, 1.0), (10.0, 2.0)];
        let (x, y) = LineChart::new("t")
            .series(Series::new("m", pts.clone()))
            .axes()
            .unwrap();
        assert!(x.lo > -1.0 && x.hi < 11.0 && y.lo > 0.5 && y.hi < 2.5);
        let wide = vec![(-5.0, 0.5, 8.0), (15.0, -3.0, 2.5)];
        let chart = LineChart::new("t").series(Series::new("m", pts.clone()).band(wide));
        let (x, y) = chart.axes().unwrap();
        assert!(x.lo <= -5.0 && x.hi >= 15.0, "{x:?}");
        assert!(y.lo <= -3.0 && y.hi >= 8.0, "{y:?}");
        // A band spanning decades turns an automatic y axis logarithmic.
        let decades = vec![(0.0, 0.01, 10.0), (10.0, 0.1, 20.0)];
        let chart = LineChart::new("t").series(Series::new("m", pts.clone()).band(decades));
        let (_, y) = chart.axes().unwrap();
        assert_eq!(y.kind, Kind::Log);
        assert!(y.lo <= 0.01 && y.hi >= 20.0, "{y:?}");
        // An entry a log axis cannot show counts for neither axis.
        let bad = vec![(50.0, -1.0, 1000.0), (3.0, 0.5, 4.0)];
        let chart = LineChart::new("t")
            .y_scale(Scale::Log)
            .series(Series::new("m", pts).band(bad));
        let (x, y) = chart.axes().unwrap();
        assert!(x.hi < 50.0 && y.hi < 1000.0, "{x:?} {y:?}");
        assert!(y.lo <= 0.5 && y.hi >= 4.0, "{y:?}");
    }

    #[test]
    fn a_band_only_series_is_data() {
        let chart = LineChart::new("t")
            .series(Series::new("m", vec![]).band(vec![(0.0, 1.0, 2.0), (1.0, 1.0, 3.0)]));
        let svg = String::from_utf8(chart.render(Format::Svg).unwrap()).unwrap();
        assert!(!svg.contains("no data"), "{svg}");
        assert_eq!(shapes(&chart).iter().filter(|s| is_band(s, 0)).count(), 1);
    }

    #[test]
    fn the_legend_keeps_off_the_inside_of_a_band() {
        // The band fills the top right of the plot with its edges outside the
        // picture, so only its inside can tell the legend to go elsewhere.
        let chart = LineChart::new("t")
            .x_range(0.0, 4.0)
            .y_range(-1.0, 4.0)
            .series(
                Series::new("mean", vec![(0.0, 0.0), (4.0, 0.0)])
                    .band(vec![(1.0, 0.5, 10.0), (10.0, 0.5, 10.0)]),
            );
        let shapes = shapes(&chart);
        let band = shapes.iter().find(|s| is_band(s, 0)).unwrap();
        let legend = shapes
            .iter()
            .find(|s| s.tag == "rect" && s.fill == "#ffffff" && s.fill_opacity == "0.92")
            .and_then(|s| s.rect)
            .unwrap();
        let ((bx0, _), _) = bbox(&band.points);
        assert!(
            legend[0] + legend[2] <= bx0,
            "legend {legend:?} on band from x = {bx0}"
        );
    }

    #[test]
    fn steps_draw_a_staircase_on_a_log_x_axis() {
        let chart = LineChart::new("profile")
            .x_scale(Scale::Log)
            .y_range(0.0, 1.1)
            .series(
                Series::new(
                    "adam",
                    vec![(1.0, 0.2), (2.0, 0.5), (10.0, 0.7), (100.0, 1.0)],
                )
                .style(LineStyle::Steps),
            );
        let shapes = shapes(&chart);
        let v = &shapes.iter().find(|s| is_line(s, 0)).unwrap().points;
        assert_eq!(v.len(), 7, "{v:?}");
        for i in 0..3 {
            let (a, corner, b) = (v[2 * i], v[2 * i + 1], v[2 * i + 2]);
            assert_eq!(corner.1, a.1, "across first: {v:?}");
            assert_eq!(corner.0, b.0, "then up: {v:?}");
            assert!(b.1 < a.1, "rising values go up the picture: {v:?}");
        }
        // Decades take equal widths: x = 1, 10 and 100 sit at v[0], v[4], v[6].
        let (d1, d2) = (v[4].0 - v[0].0, v[6].0 - v[4].0);
        assert!((d1 - d2).abs() < 0.05, "{d1} {d2}");
        // The legend swatch is a solid line.
        let swatches: Vec<&Shape> = shapes.iter().filter(|s| is_line(s, 0)).skip(1).collect();
        assert_eq!(swatches.len(), 1);
        assert!(!swatches[0].dashed);
    }
}
