//! Text: the embedded font, measuring and rasterising strings.
//!
//! The font is DejaVu Sans, embedded so that pictures look the same on every
//! machine and no system font library is needed (see `fonts/LICENSE-DejaVu.txt`).
//! Layout measures text with this font for both PNG and SVG; SVG names the
//! same family first, so browsers that have it match the PNG exactly.

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont};
use std::sync::OnceLock;

static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Fraction of the font size from the baseline up to the top of capitals and
/// ascenders (DejaVu: cap height 0.73 em, ascenders 0.76 em, plus a margin).
pub(crate) const ASCENT: f32 = 0.80;
/// Fraction of the font size from the baseline down to the bottom of descenders.
pub(crate) const DESCENT: f32 = 0.24;
/// Fraction of the font size from the baseline to the middle of capitals and digits.
const CAP_MIDDLE: f32 = 0.365;

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    // The bytes are a constant compiled into the crate; a unit test parses them,
    // so this cannot fail on any input.
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("embedded DejaVu Sans parses"))
}

/// Horizontal placement of a string relative to its anchor point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// Vertical placement of a string relative to its anchor point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VAlign {
    /// The anchor is at the top of capitals.
    Top,
    /// The anchor is at the middle of capitals and digits.
    Middle,
}

impl VAlign {
    /// Offset from the anchor to the baseline, along the text's "down" direction.
    pub(crate) fn baseline_offset(self, size: f32) -> f32 {
        match self {
            VAlign::Top => ASCENT * size,
            VAlign::Middle => CAP_MIDDLE * size,
        }
    }
}

impl Anchor {
    /// Offset from the anchor to the start of the string, along the text direction.
    pub(crate) fn start_offset(self, width: f32) -> f32 {
        match self {
            Anchor::Start => 0.0,
            Anchor::Middle => -width / 2.0,
            Anchor::End => -width,
        }
    }
}

/// Control characters (newlines, tabs) in labels become spaces: every label
/// is one line, and the font has no glyph for them.
fn visible(c: char) -> char {
    if c.is_control() {
        ' '
    } else {
        c
    }
}

/// Width in pixels of `s` at `size` pixels per em, including kerning.
pub(crate) fn width(s: &str, size: f32) -> f32 {
    let f = font().as_scaled(PxScale::from(size));
    let mut w = 0.0;
    let mut prev: Option<GlyphId> = None;
    for c in s.chars().map(visible) {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            w += f.kern(p, id);
        }
        w += f.h_advance(id);
        prev = Some(id);
    }
    w
}

/// Height of one line of text (the box that layout reserves).
pub(crate) fn line_height(size: f32) -> f32 {
    (ASCENT + DESCENT) * size
}

/// Shortens `s` with a trailing ellipsis so that it is at most `max_width` wide.
pub(crate) fn ellipsize(s: &str, size: f32, max_width: f32) -> String {
    if width(s, size) <= max_width {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    // Binary search on the number of characters kept.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if width(&candidate, size) <= max_width {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let kept: String = chars[..lo].iter().collect();
    format!("{}…", kept.trim_end())
}

/// Coverage of a rasterised line of text, one `f32` in 0..=1 per pixel.
pub(crate) struct Coverage {
    pub width: usize,
    pub height: usize,
    /// Row-major, `width * height` values.
    pub data: Vec<f32>,
    /// Distance from the top of the buffer to the baseline, in pixels.
    pub baseline: f32,
}

/// Rasterises `s` horizontally at `size`, starting at pen position
/// `x_frac` (the sub-pixel part of the start, in `0..1`).
pub(crate) fn rasterize(s: &str, size: f32, x_frac: f32) -> Coverage {
    let f = font().as_scaled(PxScale::from(size));
    // Room for accents above and descenders below, one pixel of slack each side.
    let top = (f.ascent().ceil() + 1.0).max(1.0);
    let bottom = (-f.descent()).ceil() + 1.0;
    let w = (x_frac + width(s, size)).ceil() as usize + 2;
    let h = (top + bottom) as usize;
    let mut data = vec![0.0f32; w * h];
    let mut pen = x_frac + 1.0;
    let mut prev: Option<GlyphId> = None;
    for c in s.chars().map(visible) {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            pen += f.kern(p, id);
        }
        let glyph = id.with_scale_and_position(PxScale::from(size), ab_glyph::point(pen, top));
        pen += f.h_advance(id);
        prev = Some(id);
        if let Some(outlined) = font().outline_glyph(glyph) {
            let b = outlined.px_bounds();
            outlined.draw(|gx, gy, cov| {
                let x = b.min.x as i64 + i64::from(gx);
                let y = b.min.y as i64 + i64::from(gy);
                if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                    let cell = &mut data[y as usize * w + x as usize];
                    *cell = (*cell + cov).min(1.0);
                }
            });
        }
    }
    Coverage {
        width: w,
        height: h,
        data,
        baseline: top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_parses_and_has_the_glyphs_we_use() {
        let f = font();
        for c in "Loss αβ 10⁻³ × … −".chars() {
            assert_ne!(f.glyph_id(c).0, 0, "missing glyph for {c:?}");
        }
    }

    #[test]
    fn control_characters_measure_as_spaces() {
        assert_eq!(width("a\nb", 12.0), width("a b", 12.0));
        let with_newline = rasterize("a\nb", 12.0, 0.0);
        let with_space = rasterize("a b", 12.0, 0.0);
        assert_eq!(with_newline.data, with_space.data);
    }

    #[test]
    fn width_grows_with_text_and_size() {
        assert_eq!(width("", 12.0), 0.0);
        let a = width("loss", 12.0);
        assert!(a > 10.0 && a < 40.0, "{a}");
        assert!(width("loss", 24.0) > 1.9 * a);
        assert!(width("loss curve", 12.0) > a);
    }

    #[test]
    fn ellipsize_fits_and_keeps_short_strings() {
        assert_eq!(ellipsize("short", 12.0, 200.0), "short");
        let long = "a very long series name that will not fit in the legend box";
        let cut = ellipsize(long, 12.0, 80.0);
        assert!(cut.ends_with('…'));
        assert!(width(&cut, 12.0) <= 80.0);
        assert!(cut.len() > 3);
        // Even an impossible width gives a string, not a panic.
        assert_eq!(ellipsize(long, 12.0, 1.0), "…");
    }

    #[test]
    fn rasterized_text_has_ink_within_the_box() {
        let c = rasterize("Ag", 20.0, 0.3);
        assert_eq!(c.data.len(), c.width * c.height);
        let ink: f32 = c.data.iter().sum();
        assert!(ink > 20.0, "{ink}");
        assert!(c.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
