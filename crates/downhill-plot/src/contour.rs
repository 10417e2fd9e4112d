//! Contour plots of 2-D functions with optimiser paths, and the machinery
//! they share with [`SurfaceChart`](crate::SurfaceChart) and the GIF animation.

use crate::axis::{self, Axis, Kind};
use crate::canvas::{self, Canvas, Pt, RgbImage, Stroke};
use crate::color::{self, palette_color, ColorMap, Rgb};
use crate::error::PlotError;
use crate::frame::{self, Entry, Frame, FrameSpec, Legend, Swatch, Symbol};
use crate::grid::Grid;
use crate::iso;
use crate::levels::{self, Levels};
use crate::{render_both, Format};
use std::path::{Path, PathBuf};

/// What a [`Marker`] points out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkerKind {
    /// A minimum of the function (drawn as a star).
    Minimum,
    /// A saddle point (drawn as a cross).
    Saddle,
    /// A starting point shared by the paths (drawn as a square).
    Start,
}

/// A labelled point on a contour plot or surface chart, listed in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Position in data coordinates.
    pub at: (f64, f64),
    /// Legend text; markers of the same kind and label share one legend row.
    pub label: String,
    /// Symbol to draw.
    pub kind: MarkerKind,
}

impl Marker {
    /// A marker at `at`.
    pub fn new(at: (f64, f64), label: impl Into<String>, kind: MarkerKind) -> Marker {
        Marker {
            at,
            label: label.into(),
            kind,
        }
    }
}

/// The path of one optimiser through the plane: a polyline with a dot per
/// step, a ring at the start and a filled dot at the end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectory {
    /// Legend text.
    pub name: String,
    /// Iterates in order; non-finite points break the line.
    pub points: Vec<(f64, f64)>,
    /// Palette slot ([`palette_color`]); `None` uses the path's position.
    pub color_slot: Option<usize>,
}

impl Trajectory {
    /// A path coloured by its position among the plot's paths.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Trajectory {
        Trajectory {
            name: name.into(),
            points,
            color_slot: None,
        }
    }

    /// Sets the palette slot (to match a series in another chart).
    pub fn color_slot(mut self, slot: usize) -> Trajectory {
        self.color_slot = Some(slot);
        self
    }
}

/// Filled contour bands of a function on a [`Grid`], iso-lines, optimiser
/// paths and markers, with a colour bar and a legend.
///
/// The plotted window is the grid's range; paths that leave it are cut at its
/// border. By default x and y share one scale, so that gradients cross the
/// contours at right angles as they do in the plane.
///
/// ```
/// use downhill_plot::{ContourPlot, Grid, Marker, MarkerKind, Format};
/// let grid = Grid::sample((-2.0, 2.0), (-2.0, 2.0), 101, 101, |x, y| x * x - y * y)?;
/// let plot = ContourPlot::new("Saddle x² − y²", grid)
///     .marker(Marker::new((0.0, 0.0), "saddle point", MarkerKind::Saddle));
/// let png = plot.render(Format::Png)?;
/// assert_eq!(&png[1..4], b"PNG");
/// # Ok::<(), downhill_plot::PlotError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ContourPlot {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label left of the y axis.
    pub y_label: String,
    /// Label of the colour bar (e.g. "f(x, y)"); empty for none.
    pub value_label: String,
    /// The function's values.
    pub grid: Grid,
    /// Where the bands change colour.
    pub levels: Levels,
    /// Colours of the bands.
    pub color_map: ColorMap,
    /// Draw iso-lines at the levels.
    pub lines: bool,
    /// Keep one data unit the same length on both axes.
    pub equal_aspect: bool,
    /// Optimiser paths, coloured by position (or their palette slot).
    pub paths: Vec<Trajectory>,
    /// Points to mark (minima, saddles, a common start).
    pub markers: Vec<Marker>,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

impl ContourPlot {
    /// An 800×600 plot of `grid` with automatic levels, axes labelled x and y.
    pub fn new(title: impl Into<String>, grid: Grid) -> ContourPlot {
        ContourPlot {
            title: title.into(),
            x_label: "x".into(),
            y_label: "y".into(),
            value_label: String::new(),
            grid,
            levels: Levels::Auto,
            color_map: ColorMap::Auto,
            lines: true,
            equal_aspect: true,
            paths: Vec::new(),
            markers: Vec::new(),
            width: 800,
            height: 600,
        }
    }

    /// Sets the axis labels.
    pub fn labels(mut self, x: impl Into<String>, y: impl Into<String>) -> ContourPlot {
        self.x_label = x.into();
        self.y_label = y.into();
        self
    }

    /// Sets the colour bar label.
    pub fn value_label(mut self, label: impl Into<String>) -> ContourPlot {
        self.value_label = label.into();
        self
    }

    /// Sets how levels are chosen.
    pub fn levels(mut self, levels: Levels) -> ContourPlot {
        self.levels = levels;
        self
    }

    /// Sets the colour map.
    pub fn color_map(mut self, map: ColorMap) -> ContourPlot {
        self.color_map = map;
        self
    }

    /// Adds a path.
    pub fn path(mut self, path: Trajectory) -> ContourPlot {
        self.paths.push(path);
        self
    }

    /// Adds a marker.
    pub fn marker(mut self, marker: Marker) -> ContourPlot {
        self.markers.push(marker);
        self
    }

    /// Sets the picture size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> ContourPlot {
        self.width = width;
        self.height = height;
        self
    }

    /// Writes `path_stem.png` and/or `path_stem.svg` atomically and returns
    /// the paths written.
    pub fn save(
        &self,
        path_stem: impl AsRef<Path>,
        formats: &[Format],
    ) -> Result<Vec<PathBuf>, PlotError> {
        crate::save_formats(path_stem.as_ref(), formats, |f| self.render(f))
    }

    /// The plot encoded in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, PlotError> {
        let scene = self.scene()?;
        render_both(self.width, self.height, &self.title, format, |c| {
            scene.draw(c)
        })
    }

    /// Lays the plot out once; used by `render` and by the animation.
    pub(crate) fn scene(&self) -> Result<Scene<'_>, PlotError> {
        crate::check_size(self.width, self.height)?;
        let resolved = levels::resolve(&self.levels, &self.grid)?;
        let map = match self.color_map {
            ColorMap::Auto if resolved.symmetric => ColorMap::Diverging,
            ColorMap::Auto => ColorMap::Viridis,
            m => m,
        };
        let n = resolved.values.len();
        let colors: Vec<Rgb> = (0..=n).map(|k| map.at(k as f64 / n as f64)).collect();
        let bands = n + 1;
        let bar_cells = (0..bands)
            .map(|k| {
                (
                    k as f32 / bands as f32,
                    (k + 1) as f32 / bands as f32,
                    colors[k],
                )
            })
            .collect();
        let bar_ticks = resolved
            .values
            .iter()
            .enumerate()
            .map(|(k, v)| ((k + 1) as f32 / bands as f32, axis::format_value(*v)))
            .collect();
        let zero = (resolved.symmetric && resolved.values.contains(&0.0)).then_some(0.0);
        let field = Field {
            grid: &self.grid,
            fill: FieldFill::Bands {
                levels: resolved.values.clone(),
                colors,
            },
            iso: if self.lines {
                resolved.values
            } else {
                Vec::new()
            },
            emphasis: zero,
            bar_cells,
            bar_ticks,
            bar_title: self.value_label.clone(),
        };
        Scene::new(
            SceneSpec {
                width: self.width,
                height: self.height,
                title: &self.title,
                x_label: &self.x_label,
                y_label: &self.y_label,
                equal_aspect: self.equal_aspect,
            },
            field,
            &self.paths,
            &self.markers,
        )
    }
}

// ---------------------------------------------------------------------------
// Shared scene: a coloured field with overlays.

/// How the field is coloured.
pub(crate) enum FieldFill {
    /// Discrete bands between increasing `levels`; `colors` has one more entry.
    Bands { levels: Vec<f64>, colors: Vec<Rgb> },
    /// A continuous map over `axis`.
    Continuous { axis: Axis, map: ColorMap },
}

/// Colour for grid cells without a finite value.
const MISSING: Rgb = Rgb(0xd9, 0xd9, 0xd9);

impl FieldFill {
    fn color(&self, v: f64) -> Rgb {
        if !v.is_finite() {
            return MISSING;
        }
        match self {
            FieldFill::Bands { levels, colors } => colors[levels.partition_point(|l| *l <= v)],
            FieldFill::Continuous { axis, map } => {
                let t = axis.frac(v);
                map.at(if t.is_nan() { 0.0 } else { t })
            }
        }
    }
}

/// The coloured field and what goes with it.
pub(crate) struct Field<'a> {
    pub grid: &'a Grid,
    pub fill: FieldFill,
    /// Iso-line values.
    pub iso: Vec<f64>,
    /// A level drawn heavier (zero on sign-changing fields).
    pub emphasis: Option<f64>,
    /// Colour bar cells `(from, to, colour)` as fractions of its height.
    pub bar_cells: Vec<(f32, f32, Rgb)>,
    /// Colour bar ticks `(fraction, label)`.
    pub bar_ticks: Vec<(f32, String)>,
    pub bar_title: String,
}

pub(crate) struct SceneSpec<'a> {
    pub width: u32,
    pub height: u32,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub equal_aspect: bool,
}

/// One path ready to draw.
struct PathArt {
    color: Rgb,
    points: Vec<(f64, f64)>,
}

/// A laid-out field chart.
pub(crate) struct Scene<'a> {
    frame: Frame,
    field: Field<'a>,
    legend: Legend,
    legend_at: Option<(f32, f32)>,
    paths: Vec<PathArt>,
    markers: &'a [Marker],
}

/// At most this many step dots per path; longer paths show every k-th step.
const MAX_DOTS: usize = 150;

fn marker_symbol(kind: MarkerKind) -> Symbol {
    match kind {
        MarkerKind::Minimum => Symbol::Star,
        MarkerKind::Saddle => Symbol::Cross,
        MarkerKind::Start => Symbol::Square,
    }
}

impl<'a> Scene<'a> {
    pub(crate) fn new(
        spec: SceneSpec<'_>,
        field: Field<'a>,
        paths: &'a [Trajectory],
        markers: &'a [Marker],
    ) -> Result<Scene<'a>, PlotError> {
        let g = field.grid;
        let x = Axis {
            kind: Kind::Linear,
            lo: g.x_range().0,
            hi: g.x_range().1,
            integer: false,
        };
        let y = Axis {
            kind: Kind::Linear,
            lo: g.y_range().0,
            hi: g.y_range().1,
            integer: false,
        };
        let aspect = spec.equal_aspect.then(|| (y.hi - y.lo) / (x.hi - x.lo));
        let m = frame::Metrics::for_size(spec.width, spec.height);
        let bar_reserve = frame::colorbar_reserve(
            &m,
            &field
                .bar_ticks
                .iter()
                .map(|t| t.1.clone())
                .collect::<Vec<_>>(),
            &field.bar_title,
        );
        let layout = |extra: f32| {
            frame::layout(&FrameSpec {
                width: spec.width,
                height: spec.height,
                title: spec.title,
                x_label: spec.x_label,
                y_label: spec.y_label,
                x,
                y,
                right_reserve: bar_reserve + extra,
                aspect,
            })
        };
        let mut f = layout(0.0);
        let art: Vec<PathArt> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| PathArt {
                color: palette_color(p.color_slot.unwrap_or(i)),
                points: p.points.clone(),
            })
            .collect();
        let inside = |p: &(f64, f64)| {
            p.0.is_finite()
                && p.1.is_finite()
                && p.0 >= x.lo
                && p.0 <= x.hi
                && p.1 >= y.lo
                && p.1 <= y.hi
        };
        let mut entries: Vec<Entry> = paths
            .iter()
            .zip(&art)
            .filter(|(p, _)| !p.name.trim().is_empty())
            .map(|(p, a)| {
                let leaves = p.points.last().is_some_and(|q| !inside(q));
                Entry {
                    label: if leaves {
                        format!("{} (leaves the plot)", p.name.trim())
                    } else {
                        p.name.trim().to_string()
                    },
                    swatch: Swatch::Line {
                        color: a.color,
                        dashed: false,
                        dot: true,
                        line: true,
                    },
                }
            })
            .collect();
        if !paths.is_empty() {
            entries.push(Entry {
                label: "start".into(),
                swatch: Swatch::Symbol(Symbol::Ring, color::INK_SOFT),
            });
            entries.push(Entry {
                label: "end".into(),
                swatch: Swatch::Symbol(Symbol::Dot, color::INK_SOFT),
            });
        }
        let mut seen: Vec<(MarkerKind, &str)> = Vec::new();
        for mk in markers {
            let key = (mk.kind, mk.label.trim());
            if key.1.is_empty() || seen.contains(&key) {
                continue;
            }
            seen.push(key);
            entries.push(Entry {
                label: key.1.to_string(),
                swatch: Swatch::Symbol(marker_symbol(mk.kind), color::WHITE),
            });
        }
        let max_label = 0.3 * spec.width as f32;
        let mut legend = Legend::new(entries.clone(), &f.m, max_label, f.plot.h());
        let mut legend_at = None;
        if !legend.is_empty() {
            // Beside the plot when that costs (almost) no plot area, as it
            // often does with equal axis scales; else in a corner free of
            // paths and markers; else beside the plot anyway.
            let outside = layout(legend.w + 14.0 * m.s);
            let cheap =
                outside.plot.w() >= 0.95 * f.plot.w() && outside.plot.h() >= 0.95 * f.plot.h();
            if !cheap {
                let mut occupied: Vec<Pt> = Vec::new();
                for a in &art {
                    for run in frame::clip_runs(a.points.iter().map(|&p| f.map64(p)), f.plot, 0.0) {
                        frame::sample_polyline(&run, 4.0, &mut occupied);
                    }
                }
                for mk in markers {
                    let q = f.map(mk.at);
                    // Markers are a few pixels wide: block the area around them.
                    for dx in [-8.0, 0.0, 8.0] {
                        for dy in [-8.0, 0.0, 8.0] {
                            occupied.push((q.0 + dx, q.1 + dy));
                        }
                    }
                }
                legend_at = frame::place_inside(f.plot, legend.w, legend.h, 8.0 * f.m.s, &occupied);
            }
            if legend_at.is_none() {
                f = outside;
                legend = Legend::new(entries, &f.m, max_label, f.plot.h());
                // Right of the colour bar and its labels, inside the picture.
                let x0 = (f.plot.x1 + bar_reserve + 14.0 * m.s)
                    .min(spec.width as f32 - m.margin - legend.w);
                legend_at = Some((x0, f.plot.y0));
            }
        }
        Ok(Scene {
            frame: f,
            field,
            legend,
            legend_at,
            paths: art,
            markers,
        })
    }

    /// The longest path, in points.
    pub(crate) fn max_path_len(&self) -> usize {
        self.paths.iter().map(|p| p.points.len()).max().unwrap_or(0)
    }

    /// The whole picture.
    pub(crate) fn draw(&self, c: &mut dyn Canvas) -> Result<(), PlotError> {
        self.draw_background(c)?;
        self.draw_paths(c, usize::MAX);
        self.draw_overlay(c);
        Ok(())
    }

    /// Field, iso-lines, axes and colour bar: everything under the paths.
    pub(crate) fn draw_background(&self, c: &mut dyn Canvas) -> Result<(), PlotError> {
        let f = &self.frame;
        let p = f.plot;
        c.image(p.x0 as i32, p.y0 as i32, &self.field_image())?;
        let g = self.field.grid;
        let (sx, sy) = (
            p.w() as f64 / (g.nx() - 1) as f64,
            p.h() as f64 / (g.ny() - 1) as f64,
        );
        c.push_clip(p.x0, p.y0, p.w(), p.h());
        let thin = Stroke::solid(color::INK, 0.8).alpha(0.35);
        let heavy = Stroke::solid(color::INK, 1.6).alpha(0.7);
        for &level in &self.field.iso {
            let st = if self.field.emphasis == Some(level) {
                &heavy
            } else {
                &thin
            };
            for line in iso::isolines(g, level) {
                let pts: Vec<Pt> = line
                    .iter()
                    .map(|&(gx, gy)| {
                        (
                            (p.x0 as f64 + gx * sx) as f32,
                            (p.y1 as f64 - gy * sy) as f32,
                        )
                    })
                    .collect();
                c.polyline(&frame::thin(&pts, 0.75), st);
            }
        }
        c.pop_clip();
        f.draw_axes(c);
        frame::draw_colorbar(
            c,
            f,
            &self.field.bar_cells,
            &self.field.bar_ticks,
            &self.field.bar_title,
        )?;
        Ok(())
    }

    /// The colour of every pixel of the plot area, from the bilinearly
    /// interpolated grid (smooth band edges at any grid resolution).
    fn field_image(&self) -> RgbImage {
        let p = self.frame.plot;
        let (w, h) = (p.w().max(1.0) as usize, p.h().max(1.0) as usize);
        let g = self.field.grid;
        let gxs: Vec<f64> = (0..w)
            .map(|px| (px as f64 + 0.5) / w as f64 * (g.nx() - 1) as f64)
            .collect();
        let mut data = Vec::with_capacity(w * h * 3);
        for py in 0..h {
            let gy = (h as f64 - py as f64 - 0.5) / h as f64 * (g.ny() - 1) as f64;
            for &gx in &gxs {
                let c = self.field.fill.color(g.interpolate(gx, gy));
                data.extend_from_slice(&[c.0, c.1, c.2]);
            }
        }
        RgbImage {
            width: w as u32,
            height: h as u32,
            data,
        }
    }

    /// Paths up to (not including) point `upto` of each. Drawn in layers
    /// (all halos, all lines, all dots, then start and end symbols) so that a
    /// later path never hides an earlier path's start or end.
    pub(crate) fn draw_paths(&self, c: &mut dyn Canvas, upto: usize) {
        let f = &self.frame;
        let p = f.plot;
        let s = f.m.s;
        let shown: Vec<&[(f64, f64)]> = self
            .paths
            .iter()
            .map(|a| &a.points[..upto.min(a.points.len())])
            .collect();
        let runs: Vec<Vec<Vec<Pt>>> = shown
            .iter()
            .map(|pts| frame::clip_runs(pts.iter().map(|&q| f.map64(q)), p, 6.0))
            .collect();
        c.push_clip(p.x0, p.y0, p.w(), p.h());
        let halo = Stroke::solid(color::WHITE, 4.5 * s).alpha(0.75);
        for run in runs.iter().flatten() {
            c.polyline(&frame::thin(run, 0.5), &halo);
        }
        for (art, path_runs) in self.paths.iter().zip(&runs) {
            let line = Stroke::solid(art.color, 1.8 * s);
            for run in path_runs {
                c.polyline(&frame::thin(run, 0.5), &line);
            }
        }
        for (art, pts) in self.paths.iter().zip(&shown) {
            let stride = art.points.len().div_ceil(MAX_DOTS).max(1);
            for q in pts.iter().step_by(stride) {
                let q = f.map(*q);
                if p.contains(q, 0.0) {
                    c.circle(q, 2.2 * s, Some(canvas::Fill::solid(art.color)), None);
                }
            }
        }
        for (art, pts) in self.paths.iter().zip(&shown) {
            if let Some(first) = pts.first() {
                let q = f.map(*first);
                if p.contains(q, 0.0) {
                    frame::draw_symbol(c, Symbol::Ring, q, 5.5 * s, art.color);
                }
            }
        }
        for (art, pts) in self.paths.iter().zip(&shown) {
            if pts.len() > 1 {
                if let Some(last) = pts
                    .iter()
                    .rev()
                    .find(|q| q.0.is_finite() && q.1.is_finite())
                {
                    let q = f.map(*last);
                    if p.contains(q, 0.0) {
                        frame::draw_symbol(c, Symbol::Dot, q, 5.5 * s, art.color);
                    }
                }
            }
        }
        c.pop_clip();
    }

    /// Colours that must survive palette reduction exactly (GIF): path
    /// colours, text and band colours.
    pub(crate) fn key_colors(&self) -> Vec<Rgb> {
        let mut out = vec![color::WHITE, color::INK, color::INK_SOFT];
        out.extend(self.paths.iter().map(|a| a.color));
        if let FieldFill::Bands { colors, .. } = &self.field.fill {
            out.extend(colors.iter().copied());
        }
        out.sort_by_key(|c| (c.0, c.1, c.2));
        out.dedup();
        out
    }

    /// Markers and legend: everything over the paths.
    pub(crate) fn draw_overlay(&self, c: &mut dyn Canvas) {
        let f = &self.frame;
        let p = f.plot;
        c.push_clip(p.x0, p.y0, p.w(), p.h());
        for mk in self.markers {
            let q = f.map(mk.at);
            if p.contains(q, 0.0) {
                frame::draw_symbol(c, marker_symbol(mk.kind), q, 6.5 * f.m.s, color::WHITE);
            }
        }
        c.pop_clip();
        if let Some((x, y)) = self.legend_at {
            self.legend.draw(c, x, y);
        }
    }

    /// Picture size.
    pub(crate) fn size(&self) -> (u32, u32) {
        (self.frame.width as u32, self.frame.height as u32)
    }
}
