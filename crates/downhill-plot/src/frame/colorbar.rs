//! The colour bar right of a field chart: its width, place, ticks and drawing.

use super::*;

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
fn colorbar_x(m: &Metrics, plot: Rect) -> (f32, f32) {
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
