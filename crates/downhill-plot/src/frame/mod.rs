//! What every chart shares: sizes of text, the layout of title, plot area,
//! ticks and labels measured from the actual strings (so nothing is clipped),
//! the axes, the legend and its placement, and the colour bar.

use crate::axis::{self, Axis, Tick};
use crate::canvas::{Canvas, Fill, Pt, RgbImage, Stroke, TextStyle};
use crate::color::{self, Rgb};
use crate::error::PlotError;
use crate::text::{self, Anchor, VAlign};

mod colorbar;
mod legend;
mod polygon;
mod polyline;

pub(crate) use colorbar::{colorbar_reserve, colorbar_ticks, draw_colorbar};
pub(crate) use legend::{draw_symbol, place_inside, Entry, Legend, Swatch, Symbol};
pub(crate) use polygon::{band_polygons, sample_polygon};
pub(crate) use polyline::{clip_runs, sample_polyline, staircase, thin};

/// Text sizes and spacings for one picture size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metrics {
    /// Scale relative to an 800×600 picture.
    pub s: f32,
    pub title: f32,
    pub label: f32,
    pub tick: f32,
    pub legend: f32,
    pub margin: f32,
    pub tick_len: f32,
}

impl Metrics {
    pub(crate) fn for_size(width: u32, height: u32) -> Metrics {
        let s = ((width as f32 * height as f32) / (800.0 * 600.0))
            .sqrt()
            .clamp(0.7, 2.5);
        Metrics {
            s,
            title: 19.0 * s,
            label: 15.0 * s,
            tick: 13.0 * s,
            legend: 13.0 * s,
            margin: 12.0 * s,
            tick_len: 5.0 * s,
        }
    }
}

/// The rectangle where data is drawn, in pixels (edges on whole pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Rect {
    pub(crate) fn w(&self) -> f32 {
        self.x1 - self.x0
    }
    pub(crate) fn h(&self) -> f32 {
        self.y1 - self.y0
    }
    pub(crate) fn contains(&self, p: Pt, slack: f32) -> bool {
        p.0 >= self.x0 - slack
            && p.0 <= self.x1 + slack
            && p.1 >= self.y0 - slack
            && p.1 <= self.y1 + slack
    }
}

/// A laid-out chart: plot area, axes and their ticks, and the fitted strings.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub m: Metrics,
    pub width: f32,
    pub height: f32,
    pub plot: Rect,
    pub x: Axis,
    pub y: Axis,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    /// Width of the widest y tick label.
    pub y_tick_w: f32,
    pub title: String,
    pub title_size: f32,
    pub x_label: String,
    pub y_label: String,
}

/// Inputs to [`layout`].
pub(crate) struct FrameSpec<'a> {
    pub width: u32,
    pub height: u32,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: Axis,
    pub y: Axis,
    /// Pixels kept free to the right of the plot (colour bar, outside legend).
    pub right_reserve: f32,
    /// Wanted plot height / width in pixels (equal data scales on both axes),
    /// honoured when it does not make the plot thinner than a third of the room.
    pub aspect: Option<f64>,
}

fn max_label_width(ticks: &[Tick], size: f32) -> f32 {
    ticks
        .iter()
        .filter_map(|t| t.label.as_deref())
        .map(|l| text::width(l, size))
        .fold(0.0f32, f32::max)
}

/// Lays out title, labels and ticks around the largest plot area that leaves
/// every string fully visible.
pub(crate) fn layout(spec: &FrameSpec) -> Frame {
    let m = Metrics::for_size(spec.width, spec.height);
    let (wf, hf) = (spec.width as f32, spec.height as f32);
    // Title: shrink to fit, then cut with an ellipsis as a last resort.
    let avail = wf - 2.0 * m.margin;
    let mut title_size = m.title;
    while title_size > 0.7 * m.title && text::width(spec.title, title_size) > avail {
        title_size -= 0.5;
    }
    let title = text::ellipsize(spec.title.trim(), title_size, avail);
    let tick_h = text::line_height(m.tick);
    let mut top = if title.is_empty() {
        m.margin + 0.5 * tick_h
    } else {
        m.margin + text::line_height(title_size) + 10.0 * m.s
    };
    let label_h = text::line_height(m.label);
    let x_label_h = if spec.x_label.trim().is_empty() {
        0.0
    } else {
        label_h + 6.0 * m.s
    };
    let mut bottom = hf - m.margin - x_label_h - tick_h - m.tick_len - 3.0 * m.s;
    let y_ticks = spec
        .y
        .ticks((bottom - top).max(10.0), &axis::height_extent(m.tick));
    let y_tick_w = max_label_width(&y_ticks, m.tick);
    let y_label_w = if spec.y_label.trim().is_empty() {
        0.0
    } else {
        label_h + 8.0 * m.s
    };
    let mut left = m.margin + y_label_w + y_tick_w + 4.0 * m.s + m.tick_len;
    let limit = wf - m.margin - spec.right_reserve;
    let mut right = limit;
    let x_ticks = spec
        .x
        .ticks((right - left).max(10.0), &axis::width_extent(m.tick));
    // The last x label is centred on its tick and may stick out to the right.
    let overhang = x_ticks
        .iter()
        .filter_map(|t| {
            let l = t.label.as_deref()?;
            let pos = left + spec.x.frac(t.value) as f32 * (right - left);
            Some(pos + 0.5 * text::width(l, m.tick) - right)
        })
        .fold(0.0f32, f32::max);
    right = (right - overhang.min(40.0 * m.s)).max(left + 20.0);
    if let Some(aspect) = spec.aspect.filter(|a| a.is_finite() && *a > 0.0) {
        let (w, h) = (f64::from(right - left), f64::from(bottom - top));
        if w * aspect < h {
            // Too tall: shorten and centre vertically (the x labels follow the plot).
            let new_h = (w * aspect).max(h / 3.0) as f32;
            let slack = (bottom - top) - new_h;
            top += 0.5 * slack;
            bottom -= 0.5 * slack;
        } else {
            // Too wide: narrow and centre in the room left and right.
            let new_w = (h / aspect).max(w / 3.0) as f32;
            let slack = (right - left) - new_w;
            left += 0.5 * slack;
            right -= 0.5 * slack;
        }
    }
    let plot = Rect {
        x0: left.round(),
        y0: top.round(),
        x1: right.round().max(left.round() + 10.0),
        y1: bottom.round().max(top.round() + 10.0),
    };
    // Final ticks for the final lengths.
    let x_ticks = spec.x.ticks(plot.w(), &axis::width_extent(m.tick));
    let y_ticks = spec.y.ticks(plot.h(), &axis::height_extent(m.tick));
    let y_tick_w = max_label_width(&y_ticks, m.tick);
    Frame {
        m,
        width: wf,
        height: hf,
        plot,
        x: spec.x,
        y: spec.y,
        x_ticks,
        y_ticks,
        y_tick_w,
        title,
        title_size,
        x_label: text::ellipsize(spec.x_label.trim(), m.label, plot.w()),
        y_label: text::ellipsize(spec.y_label.trim(), m.label, plot.h()),
    }
}

impl Frame {
    /// Pixel position of a data point; NaN when it cannot be shown.
    pub(crate) fn map(&self, p: (f64, f64)) -> Pt {
        let tx = self.x.frac(p.0);
        let ty = self.y.frac(p.1);
        (
            (f64::from(self.plot.x0) + tx * f64::from(self.plot.w())) as f32,
            (f64::from(self.plot.y1) - ty * f64::from(self.plot.h())) as f32,
        )
    }

    /// Pixel position of a data point in `f64`; `None` when it cannot be shown.
    pub(crate) fn map64(&self, p: (f64, f64)) -> Option<(f64, f64)> {
        let tx = self.x.frac(p.0);
        let ty = self.y.frac(p.1);
        let q = (
            f64::from(self.plot.x0) + tx * f64::from(self.plot.w()),
            f64::from(self.plot.y1) - ty * f64::from(self.plot.h()),
        );
        (q.0.is_finite() && q.1.is_finite()).then_some(q)
    }

    /// Light grid lines at the ticks, drawn under the data.
    pub(crate) fn draw_grid(&self, c: &mut dyn Canvas) {
        let p = self.plot;
        for t in &self.x_ticks {
            let x = self.map((t.value, self.y.lo)).0.round() + 0.5;
            let col = if t.label.is_some() {
                color::GRID
            } else {
                color::GRID_MINOR
            };
            c.polyline(&[(x, p.y0), (x, p.y1)], &Stroke::solid(col, 1.0).square());
        }
        for t in &self.y_ticks {
            let y = self.map((self.x.lo, t.value)).1.round() + 0.5;
            let col = if t.label.is_some() {
                color::GRID
            } else {
                color::GRID_MINOR
            };
            c.polyline(&[(p.x0, y), (p.x1, y)], &Stroke::solid(col, 1.0).square());
        }
    }

    /// Frame, ticks, tick labels, axis labels and title, drawn over the data.
    pub(crate) fn draw_axes(&self, c: &mut dyn Canvas) {
        let m = self.m;
        let p = self.plot;
        let axis_stroke = Stroke::solid(color::INK_SOFT, 1.0).square();
        c.stroke_rect(
            p.x0 + 0.5,
            p.y0 + 0.5,
            p.w() - 1.0,
            p.h() - 1.0,
            &axis_stroke,
        );
        let tick_style = TextStyle::new(m.tick, color::INK_SOFT);
        for t in &self.x_ticks {
            let x = self.map((t.value, self.y.lo)).0.round() + 0.5;
            let len = if t.label.is_some() {
                m.tick_len
            } else {
                0.6 * m.tick_len
            };
            c.polyline(&[(x, p.y1), (x, p.y1 + len)], &axis_stroke);
            if let Some(l) = &t.label {
                c.text(
                    x,
                    p.y1 + m.tick_len + 3.0 * m.s,
                    l,
                    &tick_style.anchor(Anchor::Middle).valign(VAlign::Top),
                );
            }
        }
        for t in &self.y_ticks {
            let y = self.map((self.x.lo, t.value)).1.round() + 0.5;
            let len = if t.label.is_some() {
                m.tick_len
            } else {
                0.6 * m.tick_len
            };
            c.polyline(&[(p.x0 - len, y), (p.x0, y)], &axis_stroke);
            if let Some(l) = &t.label {
                c.text(
                    p.x0 - m.tick_len - 4.0 * m.s,
                    y,
                    l,
                    &tick_style.anchor(Anchor::End).valign(VAlign::Middle),
                );
            }
        }
        let label_style = TextStyle::new(m.label, color::INK);
        if !self.x_label.is_empty() {
            c.text(
                0.5 * (p.x0 + p.x1),
                p.y1 + m.tick_len + 3.0 * m.s + text::line_height(m.tick) + 6.0 * m.s,
                &self.x_label,
                &label_style.anchor(Anchor::Middle).valign(VAlign::Top),
            );
        }
        if !self.y_label.is_empty() {
            let x = p.x0
                - m.tick_len
                - 4.0 * m.s
                - self.y_tick_w
                - 8.0 * m.s
                - text::line_height(m.label);
            c.text(
                x.max(m.margin),
                0.5 * (p.y0 + p.y1),
                &self.y_label,
                &label_style
                    .anchor(Anchor::Middle)
                    .valign(VAlign::Top)
                    .vertical(),
            );
        }
        if !self.title.is_empty() {
            c.text(
                0.5 * self.width,
                m.margin,
                &self.title,
                &TextStyle::new(self.title_size, color::INK)
                    .anchor(Anchor::Middle)
                    .valign(VAlign::Top),
            );
        }
    }

    /// A note centred in the plot area (e.g. "no data").
    pub(crate) fn draw_note(&self, c: &mut dyn Canvas, note: &str) {
        let p = self.plot;
        c.text(
            0.5 * (p.x0 + p.x1),
            0.5 * (p.y0 + p.y1),
            &text::ellipsize(note, self.m.label, p.w() - 10.0),
            &TextStyle::new(self.m.label, Rgb(0x88, 0x88, 0x88))
                .anchor(Anchor::Middle)
                .valign(VAlign::Middle),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_ends_and_spacing() {
        let pts: Vec<Pt> = (0..=100).map(|i| (i as f32 * 0.1, 0.0)).collect();
        let t = thin(&pts, 0.75);
        assert_eq!(t.first(), pts.first());
        assert_eq!(t.last(), pts.last());
        assert!(t.len() < 20 && t.len() > 10, "{}", t.len());
        assert!(t
            .windows(2)
            .take(t.len() - 2)
            .all(|w| w[1].0 - w[0].0 >= 0.75 - 1e-5));
    }

    const R: Rect = Rect {
        x0: 0.0,
        y0: 0.0,
        x1: 100.0,
        y1: 100.0,
    };

    #[test]
    fn clipping_cuts_at_the_border_and_breaks_at_gaps() {
        let runs = clip_runs(
            [
                Some((50.0, 50.0)),
                Some((150.0, 50.0)),
                Some((50.0, 60.0)),
                None,
                Some((10.0, 10.0)),
            ],
            R,
            0.0,
        );
        assert_eq!(runs.len(), 3, "{runs:?}");
        assert_eq!(runs[0], vec![(50.0, 50.0), (100.0, 50.0)]);
        assert_eq!(runs[1][0].0, 100.0);
        assert_eq!(runs[1][1], (50.0, 60.0));
        assert_eq!(runs[2], vec![(10.0, 10.0)]);
    }

    #[test]
    fn clipping_survives_huge_and_nan_coordinates() {
        let runs = clip_runs(
            [
                Some((50.0, 50.0)),
                Some((1e300, -1e300)),
                Some((f64::NAN, 1.0)),
                Some((-1e308, 50.0)),
                Some((1e308, 50.0)),
            ],
            R,
            0.0,
        );
        for run in &runs {
            for p in run {
                assert!(R.contains(*p, 0.01), "{p:?}");
            }
        }
        // The last segment crosses the whole box.
        assert_eq!(runs.last().unwrap().len(), 2);
    }

    #[test]
    fn legend_avoids_occupied_corners() {
        let occupied = [(95.0, 5.0)];
        let at = place_inside(R, 30.0, 20.0, 2.0, &occupied).unwrap();
        assert_eq!(at, (2.0, 2.0), "top-left after top-right is taken");
        let everywhere: Vec<Pt> = (0..=100)
            .flat_map(|i| [(i as f32, 5.0), (i as f32, 95.0)])
            .collect();
        assert_eq!(place_inside(R, 30.0, 20.0, 2.0, &everywhere), None);
    }
}
