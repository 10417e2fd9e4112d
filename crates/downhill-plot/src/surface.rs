//! Heat maps of a loss surface over two direction coefficients.

use crate::axis::{self, Axis, Kind, Scale};
use crate::color::ColorMap;
use crate::contour::{Field, FieldFill, Marker, Scene, SceneSpec, Trajectory};
use crate::error::PlotError;
use crate::frame;
use crate::grid::Grid;
use crate::{render_both, Format};
use std::path::{Path, PathBuf};

/// A 2-D slice of a loss surface: colour shows the value on a grid over two
/// direction coefficients (α along x, β along y), with contour lines at the
/// colour bar's labelled values.
///
/// For a trained model at the origin of two (filter-normalised) directions,
/// the caller samples `loss(θ + α·d₁ + β·d₂)` into a [`Grid`] and usually marks
/// the origin:
///
/// ```
/// use downhill_plot::{Grid, Marker, MarkerKind, SurfaceChart, Format};
/// let grid = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 41, 41, |a, b| 0.1 + a * a + 3.0 * b * b)?;
/// let chart = SurfaceChart::new("Loss around the trained weights", grid)
///     .marker(Marker::new((0.0, 0.0), "trained model", MarkerKind::Minimum));
/// let svg = String::from_utf8(chart.render(Format::Svg)?).unwrap();
/// assert!(svg.contains("trained model"));
/// # Ok::<(), downhill_plot::PlotError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceChart {
    /// Title above the chart.
    pub title: String,
    /// Label under the x axis (default "α").
    pub x_label: String,
    /// Label left of the y axis (default "β").
    pub y_label: String,
    /// Label of the colour bar (default "loss").
    pub value_label: String,
    /// The values.
    pub grid: Grid,
    /// How values map to colours: [`Scale::Auto`] uses a log scale when all
    /// values are positive and span more than two decades.
    pub color_scale: Scale,
    /// Colour map ([`ColorMap::Auto`] is viridis here).
    pub color_map: ColorMap,
    /// Draw contour lines at the colour bar's labelled values.
    pub lines: bool,
    /// Keep one unit the same length on both axes.
    pub equal_aspect: bool,
    /// Points to mark (e.g. the trained model at the origin).
    pub markers: Vec<Marker>,
    /// Paths projected onto the plane (e.g. a training trajectory).
    pub paths: Vec<Trajectory>,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

impl SurfaceChart {
    /// An 800×600 chart of `grid`, axes labelled α and β, colour bar "loss".
    pub fn new(title: impl Into<String>, grid: Grid) -> SurfaceChart {
        SurfaceChart {
            title: title.into(),
            x_label: "α".into(),
            y_label: "β".into(),
            value_label: "loss".into(),
            grid,
            color_scale: Scale::Auto,
            color_map: ColorMap::Auto,
            lines: true,
            equal_aspect: true,
            markers: Vec::new(),
            paths: Vec::new(),
            width: 800,
            height: 600,
        }
    }

    /// Sets the axis labels.
    pub fn labels(mut self, x: impl Into<String>, y: impl Into<String>) -> SurfaceChart {
        self.x_label = x.into();
        self.y_label = y.into();
        self
    }

    /// Sets the colour bar label.
    pub fn value_label(mut self, label: impl Into<String>) -> SurfaceChart {
        self.value_label = label.into();
        self
    }

    /// Sets the colour scale.
    pub fn color_scale(mut self, scale: Scale) -> SurfaceChart {
        self.color_scale = scale;
        self
    }

    /// Adds a marker.
    pub fn marker(mut self, marker: Marker) -> SurfaceChart {
        self.markers.push(marker);
        self
    }

    /// Adds a path.
    pub fn path(mut self, path: Trajectory) -> SurfaceChart {
        self.paths.push(path);
        self
    }

    /// Sets the picture size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> SurfaceChart {
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

    /// The chart encoded in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, PlotError> {
        crate::check_size(self.width, self.height)?;
        let scene = self.scene()?;
        render_both(self.width, self.height, &self.title, format, |c| {
            scene.draw(c)
        })
    }

    /// The value axis: exactly the finite data range (positive part on a log scale).
    fn value_axis(&self) -> Result<Axis, PlotError> {
        let values = self.grid.values();
        let kind = axis::decide_kind(self.color_scale, values);
        let usable = |v: &&f64| v.is_finite() && (kind == Kind::Linear || **v > 0.0);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.iter().filter(usable) {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        if !lo.is_finite() {
            return Err(if self.grid.finite_range().is_none() {
                PlotError::NoFiniteValues
            } else {
                PlotError::InvalidRange {
                    what: "colour scale",
                    lo: self.grid.finite_range().map_or(f64::NAN, |r| r.0),
                    hi: self.grid.finite_range().map_or(f64::NAN, |r| r.1),
                    expected: "a log colour scale needs some values > 0",
                }
            });
        }
        // A flat surface still gets a usable (padded) scale.
        Axis::fit("colour scale", kind, &[lo, hi], None).map(|a| {
            if hi > lo {
                Axis { lo, hi, ..a }
            } else {
                a
            }
        })
    }

    fn scene(&self) -> Result<Scene<'_>, PlotError> {
        let axis = self.value_axis()?;
        let map = match self.color_map {
            ColorMap::Auto => ColorMap::Viridis,
            m => m,
        };
        let m = frame::Metrics::for_size(self.width, self.height);
        // The bar is about as tall as the plot; tick density only needs to be close.
        let bar_len = 0.7 * self.height as f32;
        let bar_ticks = frame::colorbar_ticks(&axis, bar_len, &m);
        let iso: Vec<f64> = axis
            .ticks(bar_len, &axis::height_extent(m.tick))
            .into_iter()
            .filter(|t| t.label.is_some() && t.value > axis.lo && t.value < axis.hi)
            .map(|t| t.value)
            .collect();
        const CELLS: usize = 128;
        let bar_cells = (0..CELLS)
            .map(|k| {
                let (a, b) = (k as f32 / CELLS as f32, (k + 1) as f32 / CELLS as f32);
                (a, b, map.at(f64::from(0.5 * (a + b))))
            })
            .collect();
        let field = Field {
            grid: &self.grid,
            fill: FieldFill::Continuous { axis, map },
            iso: if self.lines { iso } else { Vec::new() },
            emphasis: None,
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
