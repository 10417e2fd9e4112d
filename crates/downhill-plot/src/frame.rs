//! What every chart shares: sizes of text, the layout of title, plot area,
//! ticks and labels measured from the actual strings (so nothing is clipped),
//! the axes, the legend and its placement, and the colour bar.

use crate::axis::{self, Axis, Tick};
use crate::canvas::{Canvas, Fill, Pt, RgbImage, Stroke, TextStyle};
use crate::color::{self, Rgb};
use crate::error::PlotError;
use crate::text::{self, Anchor, VAlign};

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

// ---------------------------------------------------------------------------
// Legend

/// What a legend row shows left of its label.
#[derive(Debug, Clone)]
pub(crate) enum Swatch {
    /// A line sample, optionally dashed and with a marker dot.
    Line {
        color: Rgb,
        dashed: bool,
        dot: bool,
        line: bool,
    },
    /// A point symbol (see [`draw_symbol`]).
    Symbol(Symbol, Rgb),
    /// Nothing (a summary row).
    Blank,
}

/// Point symbols used on contour plots and in legends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symbol {
    /// Hollow ring: where a path starts.
    Ring,
    /// Filled dot with a white edge: where a path ends.
    Dot,
    /// Five-pointed star: a minimum.
    Star,
    /// Diagonal cross: a saddle point.
    Cross,
    /// Square: a marked start point.
    Square,
}

/// Draws `sym` centred on `at` with radius `r`. Light symbols get a dark
/// edge and dark ones a white edge, so they show on any background.
pub(crate) fn draw_symbol(c: &mut dyn Canvas, sym: Symbol, at: Pt, r: f32, color: Rgb) {
    let edge_color = if color.luma() > 0.6 {
        color::INK
    } else {
        color::WHITE
    };
    let edge = Stroke::solid(edge_color, 0.3 * r + 0.8);
    match sym {
        Symbol::Ring => {
            c.circle(
                at,
                r,
                Some(Fill::solid(color::WHITE)),
                Some(&Stroke::solid(color, 0.45 * r)),
            );
        }
        Symbol::Dot => {
            c.circle(at, r, Some(Fill::solid(color)), Some(&edge));
        }
        Symbol::Star => {
            let pts: Vec<Pt> = (0..10)
                .map(|i| {
                    let ang = std::f32::consts::PI * (i as f32) / 5.0 - std::f32::consts::FRAC_PI_2;
                    let rr = if i % 2 == 0 { 1.35 * r } else { 0.55 * r };
                    (at.0 + rr * ang.cos(), at.1 + rr * ang.sin())
                })
                .collect();
            c.polygon(&pts, Some(Fill::solid(color)), Some(&edge));
        }
        Symbol::Cross => {
            let d = r;
            let a = [(at.0 - d, at.1 - d), (at.0 + d, at.1 + d)];
            let b = [(at.0 - d, at.1 + d), (at.0 + d, at.1 - d)];
            let under = Stroke::solid(edge_color, 0.45 * r + 2.5);
            c.polyline(&a, &under);
            c.polyline(&b, &under);
            let ink = Stroke::solid(color, 0.45 * r);
            c.polyline(&a, &ink);
            c.polyline(&b, &ink);
        }
        Symbol::Square => {
            let d = 0.85 * r;
            let pts = [
                (at.0 - d, at.1 - d),
                (at.0 + d, at.1 - d),
                (at.0 + d, at.1 + d),
                (at.0 - d, at.1 + d),
            ];
            c.polygon(&pts, Some(Fill::solid(color)), Some(&edge));
        }
    }
}

/// One legend row.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub label: String,
    pub swatch: Swatch,
}

/// A measured legend.
#[derive(Debug, Clone)]
pub(crate) struct Legend {
    pub entries: Vec<Entry>,
    pub size: f32,
    pub w: f32,
    pub h: f32,
    row: f32,
    pad: f32,
    swatch_w: f32,
    /// Scale relative to an 800×600 picture, for line widths and gaps.
    scale: f32,
}

impl Legend {
    /// Measures `entries`, cutting labels longer than `max_label_w`; rows
    /// beyond `max_h` pixels are summed up as "… and N more".
    pub(crate) fn new(entries: Vec<Entry>, m: &Metrics, max_label_w: f32, max_h: f32) -> Legend {
        let size = m.legend;
        let pad = 8.0 * m.s;
        let swatch_w = 28.0 * m.s;
        let row = 1.45 * size;
        let mut entries = entries;
        let max_rows =
            (((max_h - 2.0 * pad + row - text::line_height(size)) / row).floor() as usize).max(1);
        if entries.len() > max_rows {
            let hidden = entries.len() - (max_rows - 1);
            entries.truncate(max_rows - 1);
            entries.push(Entry {
                label: format!("… and {hidden} more"),
                swatch: Swatch::Blank,
            });
        }
        let entries: Vec<Entry> = entries
            .into_iter()
            .map(|e| Entry {
                label: text::ellipsize(&e.label, size, max_label_w.max(20.0)),
                swatch: e.swatch,
            })
            .collect();
        let label_w = entries
            .iter()
            .map(|e| text::width(&e.label, size))
            .fold(0.0f32, f32::max);
        let w = 2.0 * pad + swatch_w + 6.0 * m.s + label_w;
        let h = 2.0 * pad + row * entries.len() as f32 - (row - text::line_height(size));
        Legend {
            entries,
            size,
            w,
            h,
            row,
            pad,
            swatch_w,
            scale: m.s,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Draws the legend box with its top-left corner at `(x, y)`.
    pub(crate) fn draw(&self, c: &mut dyn Canvas, x: f32, y: f32) {
        c.fill_rect(
            x,
            y,
            self.w,
            self.h,
            Fill {
                color: color::WHITE,
                alpha: 0.92,
            },
        );
        c.stroke_rect(
            x + 0.5,
            y + 0.5,
            self.w - 1.0,
            self.h - 1.0,
            &Stroke::solid(Rgb(0xbb, 0xbb, 0xbb), 1.0).square(),
        );
        let style = TextStyle::new(self.size, color::INK).valign(VAlign::Middle);
        for (i, e) in self.entries.iter().enumerate() {
            let cy = y + self.pad + 0.5 * text::line_height(self.size) + i as f32 * self.row;
            let sx = x + self.pad;
            let mid = (sx + 0.5 * self.swatch_w, cy);
            match &e.swatch {
                Swatch::Line {
                    color,
                    dashed,
                    dot,
                    line,
                } => {
                    if *line {
                        let mut st = Stroke::solid(*color, 2.2 * self.scale).square();
                        if *dashed {
                            st = st.dashed(&[6.0 * self.scale, 3.5 * self.scale]);
                        }
                        c.polyline(&[(sx, cy), (sx + self.swatch_w, cy)], &st);
                    }
                    if *dot {
                        c.circle(mid, 3.2 * self.scale, Some(Fill::solid(*color)), None);
                    }
                }
                Swatch::Symbol(sym, color) => draw_symbol(c, *sym, mid, 0.42 * self.size, *color),
                Swatch::Blank => {}
            }
            c.text(sx + self.swatch_w + 6.0 * self.scale, cy, &e.label, &style);
        }
    }
}

/// Top-left corner for a legend of size `w`×`h` inside `plot` that covers none
/// of `occupied`, trying top-right, top-left, bottom-right, bottom-left; `None`
/// when every corner would hide data.
pub(crate) fn place_inside(
    plot: Rect,
    w: f32,
    h: f32,
    inset: f32,
    occupied: &[Pt],
) -> Option<(f32, f32)> {
    if w + 2.0 * inset > plot.w() || h + 2.0 * inset > plot.h() {
        return None;
    }
    let corners = [
        (plot.x1 - inset - w, plot.y0 + inset),
        (plot.x0 + inset, plot.y0 + inset),
        (plot.x1 - inset - w, plot.y1 - inset - h),
        (plot.x0 + inset, plot.y1 - inset - h),
    ];
    corners.into_iter().find(|&(x, y)| {
        let r = Rect {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        };
        !occupied.iter().any(|&p| r.contains(p, 4.0))
    })
}

/// Points along a polyline no further apart than `step` pixels, so that a
/// legend box cannot sit between two far-apart vertices of a steep segment.
pub(crate) fn sample_polyline(pts: &[Pt], step: f32, out: &mut Vec<Pt>) {
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let n = ((d / step).ceil() as usize).clamp(1, 2000);
        for k in 0..n {
            let t = k as f32 / n as f32;
            out.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
        }
    }
    if let Some(&last) = pts.last() {
        out.push(last);
    }
}

// ---------------------------------------------------------------------------
// Colour bar

/// Width kept to the right of the plot for a colour bar whose tick labels are
/// `labels`, plus an optional rotated title.
pub(crate) fn colorbar_reserve(m: &Metrics, labels: &[String], title: &str) -> f32 {
    let lw = labels
        .iter()
        .map(|l| text::width(l, m.tick))
        .fold(0.0f32, f32::max);
    let title_w = if title.trim().is_empty() {
        0.0
    } else {
        text::line_height(m.label) + 8.0 * m.s
    };
    16.0 * m.s + 18.0 * m.s + m.tick_len + 4.0 * m.s + lw + title_w
}

/// Left edge and width of the colour bar.
pub(crate) fn colorbar_x(m: &Metrics, plot: Rect) -> (f32, f32) {
    ((plot.x1 + 16.0 * m.s).round(), (18.0 * m.s).round())
}

/// Draws a colour bar beside the plot: `cells` are stacked bottom-up as equal
/// bands (`(fraction_from, fraction_to, colour)`), `ticks` are `(fraction,
/// label)` positions along the bar.
pub(crate) fn draw_colorbar(
    c: &mut dyn Canvas,
    frame: &Frame,
    cells: &[(f32, f32, Rgb)],
    ticks: &[(f32, String)],
    title: &str,
) -> Result<(), PlotError> {
    let m = frame.m;
    let p = frame.plot;
    let (x, w) = colorbar_x(&m, p);
    let (y0, y1) = (p.y0, p.y1);
    let h = y1 - y0;
    // One image row per pixel: seamless in PNG and a single element in SVG.
    let (iw, ih) = (w.max(1.0) as usize, h.max(1.0) as usize);
    let mut data = Vec::with_capacity(iw * ih * 3);
    for row in 0..ih {
        let t = 1.0 - (row as f32 + 0.5) / ih as f32;
        let col = cells
            .iter()
            .find(|(a, b, _)| t >= *a && t < *b)
            .or(cells.last())
            .map_or(color::WHITE, |c| c.2);
        for _ in 0..iw {
            data.extend_from_slice(&[col.0, col.1, col.2]);
        }
    }
    c.image(
        x as i32,
        y0 as i32,
        &RgbImage {
            width: iw as u32,
            height: ih as u32,
            data,
        },
    )?;
    let st = Stroke::solid(color::INK_SOFT, 1.0).square();
    c.stroke_rect(x + 0.5, y0 + 0.5, w - 1.0, h - 1.0, &st);
    let style = TextStyle::new(m.tick, color::INK_SOFT).valign(VAlign::Middle);
    let mut last: Option<f32> = None;
    let mut max_w = 0.0f32;
    for (t, label) in ticks {
        let y = (y1 - t * h).round() + 0.5;
        c.polyline(&[(x + w, y), (x + w + m.tick_len, y)], &st);
        // Skip labels that would overlap the previous one.
        if let Some(prev) = last {
            if (prev - y).abs() < text::line_height(m.tick) + 2.0 {
                continue;
            }
        }
        c.text(x + w + m.tick_len + 4.0 * m.s, y, label, &style);
        max_w = max_w.max(text::width(label, m.tick));
        last = Some(y);
    }
    if !title.trim().is_empty() {
        let tx = x + w + m.tick_len + 4.0 * m.s + max_w + 8.0 * m.s;
        c.text(
            tx,
            0.5 * (y0 + y1),
            &text::ellipsize(title.trim(), m.label, h),
            &TextStyle::new(m.label, color::INK)
                .anchor(Anchor::Middle)
                .valign(VAlign::Top)
                .vertical(),
        );
    }
    Ok(())
}

/// Tick labels and fractions for a continuous colour bar over `axis`.
pub(crate) fn colorbar_ticks(axis: &Axis, len: f32, m: &Metrics) -> Vec<(f32, String)> {
    axis.ticks(len, &axis::height_extent(m.tick))
        .into_iter()
        .filter_map(|t| Some((axis.frac(t.value) as f32, t.label?)))
        .collect()
}

// ---------------------------------------------------------------------------
// Clipping

/// Cuts a polyline given in pixel coordinates (`None` breaks the line) into
/// runs that lie inside `r` grown by `slack` pixels. Segments that cross the
/// border are cut at the border, so a path that leaves the plot is drawn up to
/// the edge and coordinates stay small enough for `f32`. A lone visible point
/// becomes a run of one point.
pub(crate) fn clip_runs(
    pts: impl IntoIterator<Item = Option<(f64, f64)>>,
    r: Rect,
    slack: f64,
) -> Vec<Vec<Pt>> {
    let (x0, y0) = (f64::from(r.x0) - slack, f64::from(r.y0) - slack);
    let (x1, y1) = (f64::from(r.x1) + slack, f64::from(r.y1) + slack);
    let inside = |p: (f64, f64)| p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1;
    let to_pt = |p: (f64, f64)| (p.0 as f32, p.1 as f32);
    let mut runs: Vec<Vec<Pt>> = Vec::new();
    let mut cur: Vec<Pt> = Vec::new();
    let mut prev: Option<(f64, f64)> = None;
    for p in pts {
        let p = p.filter(|q| q.0.is_finite() && q.1.is_finite());
        match (prev, p) {
            (Some(a), Some(b)) => {
                if let Some((pa, pb, start_cut, end_cut)) = clip_segment(a, b, x0, y0, x1, y1) {
                    if start_cut || cur.is_empty() {
                        if !cur.is_empty() {
                            runs.push(std::mem::take(&mut cur));
                        }
                        cur.push(to_pt(pa));
                    }
                    cur.push(to_pt(pb));
                    if end_cut {
                        runs.push(std::mem::take(&mut cur));
                    }
                } else if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
            (None, Some(b)) => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
                if inside(b) {
                    cur.push(to_pt(b));
                }
            }
            (_, None) => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
        prev = p;
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// The part of segment `a→b` inside the box (Liang–Barsky), with flags for
/// whether its start and end were cut. The segment is written as `m + s·d`,
/// `s ∈ [-1, 1]`, with `m` and `d` computed from halves, so that coordinates
/// near `f64::MAX` cannot overflow.
#[allow(clippy::type_complexity)]
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
) -> Option<((f64, f64), (f64, f64), bool, bool)> {
    let m = (0.5 * a.0 + 0.5 * b.0, 0.5 * a.1 + 0.5 * b.1);
    let d = (0.5 * b.0 - 0.5 * a.0, 0.5 * b.1 - 0.5 * a.1);
    let mut s0 = -1.0f64;
    let mut s1 = 1.0f64;
    for (p, q) in [
        (-d.0, m.0 - x0),
        (d.0, x1 - m.0),
        (-d.1, m.1 - y0),
        (d.1, y1 - m.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                s0 = s0.max(t);
            } else {
                s1 = s1.min(t);
            }
        }
    }
    if s0.is_nan() || s1.is_nan() || s0 > s1 {
        return None;
    }
    let at = |s: f64| {
        if s == -1.0 {
            a
        } else if s == 1.0 {
            b
        } else {
            (m.0 + s * d.0, m.1 + s * d.1)
        }
    };
    Some((at(s0), at(s1), s0 > -1.0, s1 < 1.0))
}

/// Drops points closer than `min_dist` pixels to the last kept one (the
/// last point is always kept), so that fine grids do not bloat SVG files
/// with sub-pixel detail.
pub(crate) fn thin(pts: &[Pt], min_dist: f32) -> Vec<Pt> {
    let mut out: Vec<Pt> = Vec::with_capacity(pts.len());
    for (i, &p) in pts.iter().enumerate() {
        let keep = match out.last() {
            None => true,
            Some(q) => {
                i + 1 == pts.len()
                    || (p.0 - q.0).powi(2) + (p.1 - q.1).powi(2) >= min_dist * min_dist
            }
        };
        if keep {
            out.push(p);
        }
    }
    out
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
