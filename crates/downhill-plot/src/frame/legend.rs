//! Legends: what a row shows (a line, a marker or a filled box), its layout,
//! and where a legend goes inside the plot without covering the data.

use super::*;

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
