//! Two drawing surfaces behind one trait: an anti-aliased raster (tiny-skia,
//! for PNG and GIF) and an SVG writer. Charts draw once through `&mut dyn
//! Canvas`, so PNG and SVG always show the same picture.
//!
//! Coordinates are pixels, origin top-left, y down.

use crate::color::Rgb;
use crate::error::PlotError;
use crate::text::{self, Anchor, VAlign};
use std::fmt::Write as _;

/// A point in pixel coordinates.
pub(crate) type Pt = (f32, f32);

/// How a line is drawn.
#[derive(Debug, Clone)]
pub(crate) struct Stroke {
    pub color: Rgb,
    pub alpha: f32,
    pub width: f32,
    /// Dash pattern (on, off, …) in pixels; `None` for a solid line.
    pub dash: Option<Vec<f32>>,
    /// Round caps and joins (polylines of data); square ones otherwise.
    pub round: bool,
}

impl Stroke {
    pub(crate) fn solid(color: Rgb, width: f32) -> Stroke {
        Stroke {
            color,
            alpha: 1.0,
            width,
            dash: None,
            round: true,
        }
    }

    pub(crate) fn alpha(mut self, alpha: f32) -> Stroke {
        self.alpha = alpha;
        self
    }

    pub(crate) fn dashed(mut self, pattern: &[f32]) -> Stroke {
        self.dash = Some(pattern.to_vec());
        self
    }

    pub(crate) fn square(mut self) -> Stroke {
        self.round = false;
        self
    }
}

/// A solid fill.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fill {
    pub color: Rgb,
    pub alpha: f32,
}

impl Fill {
    pub(crate) fn solid(color: Rgb) -> Fill {
        Fill { color, alpha: 1.0 }
    }
}

/// How a string is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextStyle {
    pub size: f32,
    pub color: Rgb,
    pub anchor: Anchor,
    pub valign: VAlign,
    /// Rotated 90° counter-clockwise (reads bottom to top), for y-axis labels.
    pub vertical: bool,
}

impl TextStyle {
    pub(crate) fn new(size: f32, color: Rgb) -> TextStyle {
        TextStyle {
            size,
            color,
            anchor: Anchor::Start,
            valign: VAlign::Middle,
            vertical: false,
        }
    }

    pub(crate) fn anchor(mut self, anchor: Anchor) -> TextStyle {
        self.anchor = anchor;
        self
    }

    pub(crate) fn valign(mut self, valign: VAlign) -> TextStyle {
        self.valign = valign;
        self
    }

    pub(crate) fn vertical(mut self) -> TextStyle {
        self.vertical = true;
        self
    }
}

/// An opaque RGB raster image (the colour field behind contour plots).
#[derive(Debug, Clone)]
pub(crate) struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// Row-major RGB triples.
    pub data: Vec<u8>,
}

/// The drawing operations charts use.
pub(crate) trait Canvas {
    fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Fill);
    fn polyline(&mut self, pts: &[Pt], stroke: &Stroke);
    fn polygon(&mut self, pts: &[Pt], fill: Option<Fill>, stroke: Option<&Stroke>);
    fn circle(&mut self, c: Pt, r: f32, fill: Option<Fill>, stroke: Option<&Stroke>);
    fn text(&mut self, x: f32, y: f32, s: &str, style: &TextStyle);
    /// Draws `img` with its top-left corner at integer pixel `(x, y)`, one image
    /// pixel per canvas pixel.
    fn image(&mut self, x: i32, y: i32, img: &RgbImage) -> Result<(), PlotError>;
    /// Restricts drawing to a rectangle until the matching `pop_clip`.
    fn push_clip(&mut self, x: f32, y: f32, w: f32, h: f32);
    fn pop_clip(&mut self);

    /// A rectangle outline.
    fn stroke_rect(&mut self, x: f32, y: f32, w: f32, h: f32, stroke: &Stroke) {
        let pts = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)];
        self.polygon(&pts, None, Some(stroke));
    }
}

/// Encodes an opaque RGB buffer as PNG.
pub(crate) fn encode_png_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let err = |e: png::EncodingError| PlotError::Encode {
        format: "PNG",
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(rgb).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Raster

/// An anti-aliased raster canvas on an opaque white background.
pub(crate) struct Raster {
    pub pixmap: tiny_skia::Pixmap,
    /// Clip rectangles (x0, y0, x1, y1) and their masks, innermost last.
    clips: Vec<([f32; 4], tiny_skia::Mask)>,
}

fn ts_paint(color: Rgb, alpha: f32) -> tiny_skia::Paint<'static> {
    let mut p = tiny_skia::Paint::default();
    p.set_color_rgba8(
        color.0,
        color.1,
        color.2,
        (alpha.clamp(0.0, 1.0) * 255.0).round() as u8,
    );
    p.anti_alias = true;
    p
}

fn ts_stroke(s: &Stroke) -> tiny_skia::Stroke {
    let (cap, join) = if s.round {
        (tiny_skia::LineCap::Round, tiny_skia::LineJoin::Round)
    } else {
        (tiny_skia::LineCap::Butt, tiny_skia::LineJoin::Miter)
    };
    tiny_skia::Stroke {
        width: s.width,
        line_cap: cap,
        line_join: join,
        dash: s
            .dash
            .as_ref()
            .and_then(|d| tiny_skia::StrokeDash::new(d.clone(), 0.0)),
        ..tiny_skia::Stroke::default()
    }
}

fn finite(p: Pt) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

fn ts_path(pts: &[Pt], close: bool) -> Option<tiny_skia::Path> {
    if pts.len() < 2 || !pts.iter().all(|&p| finite(p)) {
        return None;
    }
    let mut pb = tiny_skia::PathBuilder::new();
    pb.move_to(pts[0].0, pts[0].1);
    for p in &pts[1..] {
        pb.line_to(p.0, p.1);
    }
    if close {
        pb.close();
    }
    pb.finish()
}

impl Raster {
    /// A white canvas. Sizes are validated by the callers.
    pub(crate) fn new(width: u32, height: u32) -> Result<Raster, PlotError> {
        let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or(PlotError::InvalidSize {
            width,
            height,
            min: 1,
            max: crate::MAX_SIDE,
        })?;
        pixmap.fill(tiny_skia::Color::WHITE);
        Ok(Raster {
            pixmap,
            clips: Vec::new(),
        })
    }

    /// A canvas that starts as a copy of `background`.
    pub(crate) fn from_pixmap(background: tiny_skia::Pixmap) -> Raster {
        Raster {
            pixmap: background,
            clips: Vec::new(),
        }
    }

    /// The picture as opaque RGB bytes.
    pub(crate) fn rgb(&self) -> Vec<u8> {
        // The background is opaque white, so premultiplied equals straight colour.
        let data = self.pixmap.data();
        let mut out = Vec::with_capacity(data.len() / 4 * 3);
        for px in data.chunks_exact(4) {
            out.extend_from_slice(&px[..3]);
        }
        out
    }

    pub(crate) fn to_png(&self) -> Result<Vec<u8>, PlotError> {
        encode_png_rgb(self.pixmap.width(), self.pixmap.height(), &self.rgb())
    }

    /// Blends `color` with opacity `a` into pixel `(x, y)`, honouring the clip.
    fn blend(&mut self, x: i64, y: i64, color: Rgb, a: f32) {
        if a <= 0.0 || x < 0 || y < 0 {
            return;
        }
        let (w, h) = (
            i64::from(self.pixmap.width()),
            i64::from(self.pixmap.height()),
        );
        if x >= w || y >= h {
            return;
        }
        if let Some(([x0, y0, x1, y1], _)) = self.clips.last() {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            if fx < *x0 || fx > *x1 || fy < *y0 || fy > *y1 {
                return;
            }
        }
        let i = ((y * w + x) * 4) as usize;
        let data = self.pixmap.data_mut();
        let a = a.min(1.0);
        let src = [color.0, color.1, color.2, 255];
        for k in 0..4 {
            let d = f32::from(data[i + k]);
            data[i + k] = (f32::from(src[k]) * a + d * (1.0 - a)).round() as u8;
        }
    }
}

impl Canvas for Raster {
    fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Fill) {
        if let Some(r) = tiny_skia::Rect::from_xywh(x, y, w, h) {
            let paint = ts_paint(fill.color, fill.alpha);
            let mask = self.clips.last().map(|(_, m)| m);
            self.pixmap
                .fill_rect(r, &paint, tiny_skia::Transform::identity(), mask);
        }
    }

    fn polyline(&mut self, pts: &[Pt], stroke: &Stroke) {
        if let Some(path) = ts_path(pts, false) {
            let paint = ts_paint(stroke.color, stroke.alpha);
            let mask = self.clips.last().map(|(_, m)| m);
            self.pixmap.stroke_path(
                &path,
                &paint,
                &ts_stroke(stroke),
                tiny_skia::Transform::identity(),
                mask,
            );
        }
    }

    fn polygon(&mut self, pts: &[Pt], fill: Option<Fill>, stroke: Option<&Stroke>) {
        let Some(path) = ts_path(pts, true) else {
            return;
        };
        let mask = self.clips.last().map(|(_, m)| m);
        if let Some(f) = fill {
            self.pixmap.fill_path(
                &path,
                &ts_paint(f.color, f.alpha),
                tiny_skia::FillRule::Winding,
                tiny_skia::Transform::identity(),
                mask,
            );
        }
        if let Some(s) = stroke {
            self.pixmap.stroke_path(
                &path,
                &ts_paint(s.color, s.alpha),
                &ts_stroke(s),
                tiny_skia::Transform::identity(),
                mask,
            );
        }
    }

    fn circle(&mut self, c: Pt, r: f32, fill: Option<Fill>, stroke: Option<&Stroke>) {
        if !finite(c) || r.is_nan() || r <= 0.0 {
            return;
        }
        let Some(path) = tiny_skia::PathBuilder::from_circle(c.0, c.1, r) else {
            return;
        };
        let mask = self.clips.last().map(|(_, m)| m);
        if let Some(f) = fill {
            self.pixmap.fill_path(
                &path,
                &ts_paint(f.color, f.alpha),
                tiny_skia::FillRule::Winding,
                tiny_skia::Transform::identity(),
                mask,
            );
        }
        if let Some(s) = stroke {
            self.pixmap.stroke_path(
                &path,
                &ts_paint(s.color, s.alpha),
                &ts_stroke(s),
                tiny_skia::Transform::identity(),
                mask,
            );
        }
    }

    fn text(&mut self, x: f32, y: f32, s: &str, style: &TextStyle) {
        if s.is_empty() || !x.is_finite() || !y.is_finite() {
            return;
        }
        let w = text::width(s, style.size);
        let along = style.anchor.start_offset(w);
        let down = style.valign.baseline_offset(style.size);
        if !style.vertical {
            let sx = x + along;
            let frac = sx - sx.floor();
            let cov = text::rasterize(s, style.size, frac);
            let x0 = sx.floor() as i64 - 1;
            let y0 = (y + down - cov.baseline).round() as i64;
            for cy in 0..cov.height {
                for cx in 0..cov.width {
                    let a = cov.data[cy * cov.width + cx];
                    if a > 0.0 {
                        self.blend(x0 + cx as i64, y0 + cy as i64, style.color, a);
                    }
                }
            }
        } else {
            // Local (u along the text, v down) maps to screen (x + v, y - u).
            let cov = text::rasterize(s, style.size, 0.0);
            let u0 = along.round() as i64 - 1;
            let ax = x.round() as i64;
            let ay = y.round() as i64;
            let v0 = (down - cov.baseline).round() as i64;
            for cy in 0..cov.height {
                for cx in 0..cov.width {
                    let a = cov.data[cy * cov.width + cx];
                    if a > 0.0 {
                        self.blend(
                            ax + v0 + cy as i64,
                            ay - (u0 + cx as i64) - 1,
                            style.color,
                            a,
                        );
                    }
                }
            }
        }
    }

    fn image(&mut self, x: i32, y: i32, img: &RgbImage) -> Result<(), PlotError> {
        let bad = || PlotError::Encode {
            format: "raster image",
            detail: format!(
                "image of {}x{} pixels has {} bytes",
                img.width,
                img.height,
                img.data.len()
            ),
        };
        if img.data.len() != img.width as usize * img.height as usize * 3 {
            return Err(bad());
        }
        let mut rgba = Vec::with_capacity(img.data.len() / 3 * 4);
        for px in img.data.chunks_exact(3) {
            rgba.extend_from_slice(&[px[0], px[1], px[2], 255]);
        }
        let size = tiny_skia::IntSize::from_wh(img.width, img.height).ok_or_else(bad)?;
        let pm = tiny_skia::Pixmap::from_vec(rgba, size).ok_or_else(bad)?;
        let mask = self.clips.last().map(|(_, m)| m);
        self.pixmap.draw_pixmap(
            x,
            y,
            pm.as_ref(),
            &tiny_skia::PixmapPaint::default(),
            tiny_skia::Transform::identity(),
            mask,
        );
        Ok(())
    }

    fn push_clip(&mut self, x: f32, y: f32, w: f32, h: f32) {
        // Nested clips intersect with the enclosing one.
        let (mut x0, mut y0, mut x1, mut y1) = (x, y, x + w, y + h);
        if let Some(([a, b, c, d], _)) = self.clips.last() {
            x0 = x0.max(*a);
            y0 = y0.max(*b);
            x1 = x1.min(*c);
            y1 = y1.min(*d);
        }
        let mut mask = match tiny_skia::Mask::new(self.pixmap.width(), self.pixmap.height()) {
            Some(m) => m,
            None => return,
        };
        if let Some(r) = tiny_skia::Rect::from_ltrb(x0, y0, x1.max(x0 + 0.001), y1.max(y0 + 0.001))
        {
            mask.fill_path(
                &tiny_skia::PathBuilder::from_rect(r),
                tiny_skia::FillRule::Winding,
                false,
                tiny_skia::Transform::identity(),
            );
        }
        self.clips.push(([x0, y0, x1, y1], mask));
    }

    fn pop_clip(&mut self) {
        self.clips.pop();
    }
}

// ---------------------------------------------------------------------------
// SVG

/// Pieces of the SVG body: literal text, or a reference to the n-th clip id,
/// whose final name is derived from a hash of the whole picture so that several
/// SVGs inlined into one HTML page never share ids.
enum Part {
    Lit(String),
    ClipId(usize),
}

/// An SVG canvas that accumulates markup.
pub(crate) struct Svg {
    width: u32,
    height: u32,
    parts: Vec<Part>,
    cur: String,
    clips: usize,
    open: usize,
}

/// Formats a coordinate with at most two decimals, without trailing zeros.
fn num(v: f32) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Escapes text for XML content and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 forbids are dropped rather than producing an invalid file.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            '\u{7f}'..='\u{9f}' => {}
            c => out.push(c),
        }
    }
    out
}

fn paint_attrs(out: &mut String, fill: Option<Fill>, stroke: Option<&Stroke>) {
    match fill {
        Some(f) => {
            let _ = write!(out, " fill=\"{}\"", f.color.hex());
            if f.alpha < 1.0 {
                let _ = write!(out, " fill-opacity=\"{}\"", num(f.alpha));
            }
        }
        None => out.push_str(" fill=\"none\""),
    }
    if let Some(s) = stroke {
        let _ = write!(
            out,
            " stroke=\"{}\" stroke-width=\"{}\"",
            s.color.hex(),
            num(s.width)
        );
        if s.alpha < 1.0 {
            let _ = write!(out, " stroke-opacity=\"{}\"", num(s.alpha));
        }
        if s.round {
            out.push_str(" stroke-linecap=\"round\" stroke-linejoin=\"round\"");
        }
        if let Some(d) = &s.dash {
            let pattern: Vec<String> = d.iter().map(|v| num(*v)).collect();
            let _ = write!(out, " stroke-dasharray=\"{}\"", pattern.join(" "));
        }
    }
}

fn points_attr(pts: &[Pt]) -> String {
    let mut s = String::with_capacity(pts.len() * 12);
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&num(p.0));
        s.push(',');
        s.push_str(&num(p.1));
    }
    s
}

/// The font stack for SVG text: the embedded font's family first, then close
/// metric matches.
pub(crate) const SVG_FONTS: &str = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, sans-serif";

impl Svg {
    pub(crate) fn new(width: u32, height: u32) -> Svg {
        Svg {
            width,
            height,
            parts: Vec::new(),
            cur: String::new(),
            clips: 0,
            open: 0,
        }
    }

    /// The finished document. `title` becomes the SVG `<title>` (tooltips,
    /// screen readers).
    pub(crate) fn finish(mut self, title: &str) -> String {
        while self.open > 0 {
            self.pop_clip();
        }
        let lit = std::mem::take(&mut self.cur);
        self.parts.push(Part::Lit(lit));
        // FNV-1a over the body with placeholder ids: deterministic, and
        // different pictures get different id prefixes.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        feed(title.as_bytes());
        for p in &self.parts {
            match p {
                Part::Lit(s) => feed(s.as_bytes()),
                Part::ClipId(n) => feed(&n.to_le_bytes()),
            }
        }
        let prefix = format!("dh{hash:016x}");
        let mut out = String::new();
        let _ = write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{f}\">\n<title>{t}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
            w = self.width,
            h = self.height,
            f = SVG_FONTS,
            t = xml_escape(title)
        );
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::ClipId(n) => {
                    let _ = write!(out, "{prefix}c{n}");
                }
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

impl Canvas for Svg {
    fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Fill) {
        if !(w > 0.0 && h > 0.0 && x.is_finite() && y.is_finite()) {
            return;
        }
        let _ = write!(
            self.cur,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"",
            num(x),
            num(y),
            num(w),
            num(h)
        );
        paint_attrs(&mut self.cur, Some(fill), None);
        self.cur.push_str("/>\n");
    }

    fn polyline(&mut self, pts: &[Pt], stroke: &Stroke) {
        if pts.len() < 2 || !pts.iter().all(|&p| finite(p)) {
            return;
        }
        let _ = write!(self.cur, "<polyline points=\"{}\"", points_attr(pts));
        paint_attrs(&mut self.cur, None, Some(stroke));
        self.cur.push_str("/>\n");
    }

    fn polygon(&mut self, pts: &[Pt], fill: Option<Fill>, stroke: Option<&Stroke>) {
        if pts.len() < 2 || !pts.iter().all(|&p| finite(p)) {
            return;
        }
        let _ = write!(self.cur, "<polygon points=\"{}\"", points_attr(pts));
        paint_attrs(&mut self.cur, fill, stroke);
        self.cur.push_str("/>\n");
    }

    fn circle(&mut self, c: Pt, r: f32, fill: Option<Fill>, stroke: Option<&Stroke>) {
        if !finite(c) || r.is_nan() || r <= 0.0 {
            return;
        }
        let _ = write!(
            self.cur,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\"",
            num(c.0),
            num(c.1),
            num(r)
        );
        paint_attrs(&mut self.cur, fill, stroke);
        self.cur.push_str("/>\n");
    }

    fn text(&mut self, x: f32, y: f32, s: &str, style: &TextStyle) {
        if s.is_empty() || !x.is_finite() || !y.is_finite() {
            return;
        }
        let anchor = match style.anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let down = style.valign.baseline_offset(style.size);
        let (bx, by) = if style.vertical {
            (x + down, y)
        } else {
            (x, y + down)
        };
        let _ = write!(
            self.cur,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"{}\" text-anchor=\"{}\"",
            num(bx),
            num(by),
            num(style.size),
            style.color.hex(),
            anchor
        );
        if style.vertical {
            let _ = write!(
                self.cur,
                " transform=\"rotate(-90 {} {})\"",
                num(bx),
                num(by)
            );
        }
        let _ = writeln!(self.cur, ">{}</text>", xml_escape(s));
    }

    fn image(&mut self, x: i32, y: i32, img: &RgbImage) -> Result<(), PlotError> {
        use base64::Engine as _;
        let png = encode_png_rgb(img.width, img.height, &img.data)?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let _ = writeln!(
            self.cur,
            "<image x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" href=\"data:image/png;base64,{b64}\"/>",
            img.width, img.height
        );
        Ok(())
    }

    fn push_clip(&mut self, x: f32, y: f32, w: f32, h: f32) {
        let n = self.clips;
        self.clips += 1;
        self.cur.push_str("<clipPath id=\"");
        let lit = std::mem::take(&mut self.cur);
        self.parts.push(Part::Lit(lit));
        self.parts.push(Part::ClipId(n));
        let _ = write!(
            self.cur,
            "\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>\n<g clip-path=\"url(#",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
        let lit = std::mem::take(&mut self.cur);
        self.parts.push(Part::Lit(lit));
        self.parts.push(Part::ClipId(n));
        self.cur.push_str(")\">\n");
        self.open += 1;
    }

    fn pop_clip(&mut self) {
        if self.open > 0 {
            self.cur.push_str("</g>\n");
            self.open -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_never_nan() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.256), "1.26");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(f32::NAN), "0");
    }

    #[test]
    fn escaping_covers_markup_and_drops_control_characters() {
        assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn svg_clip_ids_are_unique_per_picture() {
        let draw = |label: &str| {
            let mut s = Svg::new(100, 100);
            s.push_clip(0.0, 0.0, 50.0, 50.0);
            s.text(1.0, 1.0, label, &TextStyle::new(10.0, Rgb(0, 0, 0)));
            s.pop_clip();
            s.finish("t")
        };
        let (a, b) = (draw("one"), draw("two"));
        let id = |s: &str| {
            let i = s.find("clipPath id=\"").unwrap() + 13;
            let n = s[i..].find('"').unwrap();
            s[i..i + n].to_string()
        };
        assert_ne!(id(&a), id(&b));
        assert_eq!(a, draw("one"), "output is deterministic");
        assert!(a.contains(&format!("url(#{})", id(&a))));
    }

    #[test]
    fn raster_text_and_lines_leave_ink_and_respect_clip() {
        let mut r = Raster::new(120, 60).unwrap();
        r.push_clip(0.0, 0.0, 60.0, 60.0);
        r.polyline(
            &[(0.0, 30.0), (120.0, 30.0)],
            &Stroke::solid(Rgb(255, 0, 0), 3.0),
        );
        r.pop_clip();
        let px = |r: &Raster, x: u32, y: u32| r.pixmap.pixel(x, y).unwrap();
        assert_eq!(px(&r, 30, 30).red(), 255);
        assert!(px(&r, 30, 30).green() < 10);
        assert_eq!(px(&r, 90, 30).green(), 255, "clipped half stays white");
        r.text(
            5.0,
            10.0,
            "Hi",
            &TextStyle::new(14.0, Rgb(0, 0, 0)).vertical(),
        );
        let dark = r.pixmap.pixels().iter().filter(|p| p.green() < 128).count();
        assert!(dark > 10);
    }
}
