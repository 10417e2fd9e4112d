//! Colours: the series palette and the colour maps for filled contours.

/// An opaque sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// The colour as `#rrggbb`, for SVG, HTML and CSS.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// Mixes `self` towards `other`; `t = 0` gives `self`, `t = 1` gives `other`.
    pub fn mix(self, other: Rgb, t: f64) -> Rgb {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let f = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(f(self.0, other.0), f(self.1, other.1), f(self.2, other.2))
    }

    /// Relative luminance in 0..=1 (sRGB weights, no gamma), used to pick
    /// readable text colours on top of a fill.
    pub(crate) fn luma(self) -> f64 {
        (0.299 * f64::from(self.0) + 0.587 * f64::from(self.1) + 0.114 * f64::from(self.2)) / 255.0
    }
}

/// White.
pub(crate) const WHITE: Rgb = Rgb(255, 255, 255);
/// Near-black used for text and axes (pure black looks harsh next to anti-aliased lines).
pub(crate) const INK: Rgb = Rgb(0x22, 0x22, 0x22);
/// Secondary text (tick labels).
pub(crate) const INK_SOFT: Rgb = Rgb(0x44, 0x44, 0x44);
/// Grid lines.
pub(crate) const GRID: Rgb = Rgb(0xdd, 0xdd, 0xdd);
/// Minor grid lines on log axes.
pub(crate) const GRID_MINOR: Rgb = Rgb(0xee, 0xee, 0xee);

/// The series palette: matplotlib's "tab10" order, familiar to most readers
/// and distinguishable on white and (with a white halo) on the colour maps.
const PALETTE: [Rgb; 10] = [
    Rgb(0x1f, 0x77, 0xb4),
    Rgb(0xff, 0x7f, 0x0e),
    Rgb(0x2c, 0xa0, 0x2c),
    Rgb(0xd6, 0x27, 0x28),
    Rgb(0x94, 0x67, 0xbd),
    Rgb(0x8c, 0x56, 0x4b),
    Rgb(0xe3, 0x77, 0xc2),
    Rgb(0x7f, 0x7f, 0x7f),
    Rgb(0xbc, 0xbd, 0x22),
    Rgb(0x17, 0xbe, 0xcf),
];

/// The colour of palette slot `slot`.
///
/// Every chart colours its `i`-th series (or path) with `palette_color(i)`
/// unless the series names another slot, so the same optimiser keeps its colour
/// across the loss chart, the accuracy chart and the contour plot as long as the
/// caller passes series in the same order. After ten slots the colours repeat,
/// darkened so that slot 10 is still told apart from slot 0.
pub fn palette_color(slot: usize) -> Rgb {
    let base = PALETTE[slot % PALETTE.len()];
    let round = slot / PALETTE.len();
    if round == 0 {
        base
    } else {
        // Alternate darker/lighter variants for later rounds.
        let t = 0.35 * (1.0 - 0.5f64.powi(round.div_ceil(2) as i32)) * 2.0;
        if round % 2 == 1 {
            base.mix(Rgb(0, 0, 0), t)
        } else {
            base.mix(WHITE, t)
        }
    }
}

/// A colour map for filled contours and heat maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMap {
    /// Pick from the data: [`ColorMap::Diverging`] for values of both signs
    /// drawn with symmetric levels, [`ColorMap::Viridis`] otherwise.
    #[default]
    Auto,
    /// Perceptually uniform, dark purple (low) to yellow (high); readable in
    /// greyscale and by colour-blind readers.
    Viridis,
    /// Blue (negative) through near-white (zero) to red (positive), for saddles
    /// and other sign-changing values.
    Diverging,
}

/// viridis sampled at nine evenly spaced points (the published map's values).
const VIRIDIS: [Rgb; 9] = [
    Rgb(0x44, 0x01, 0x54),
    Rgb(0x47, 0x2d, 0x7b),
    Rgb(0x3b, 0x52, 0x8b),
    Rgb(0x2c, 0x72, 0x8e),
    Rgb(0x21, 0x90, 0x8c),
    Rgb(0x27, 0xad, 0x81),
    Rgb(0x5d, 0xc8, 0x63),
    Rgb(0xaa, 0xdc, 0x32),
    Rgb(0xfd, 0xe7, 0x25),
];

/// ColorBrewer's 7-class RdBu, reversed so that low is blue.
const DIVERGING: [Rgb; 7] = [
    Rgb(0x21, 0x66, 0xac),
    Rgb(0x67, 0xa9, 0xcf),
    Rgb(0xd1, 0xe5, 0xf0),
    Rgb(0xf7, 0xf7, 0xf7),
    Rgb(0xfd, 0xdb, 0xc7),
    Rgb(0xef, 0x8a, 0x62),
    Rgb(0xb2, 0x18, 0x2b),
];

/// Piecewise-linear interpolation through evenly spaced anchors.
fn ramp(anchors: &[Rgb], t: f64) -> Rgb {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (anchors.len() - 1) as f64;
    let i = (x.floor() as usize).min(anchors.len() - 2);
    anchors[i].mix(anchors[i + 1], x - i as f64)
}

impl ColorMap {
    /// The colour at `t` in `0..=1` (clamped). `Auto` samples viridis.
    pub fn at(self, t: f64) -> Rgb {
        match self {
            ColorMap::Auto | ColorMap::Viridis => ramp(&VIRIDIS, t),
            ColorMap::Diverging => ramp(&DIVERGING, t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_slots_are_distinct_for_many_series() {
        let colours: Vec<Rgb> = (0..30).map(palette_color).collect();
        for (i, a) in colours.iter().enumerate() {
            for b in &colours[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(palette_color(0), Rgb(0x1f, 0x77, 0xb4));
    }

    #[test]
    fn colour_maps_hit_their_ends_and_clamp() {
        assert_eq!(ColorMap::Viridis.at(0.0), VIRIDIS[0]);
        assert_eq!(ColorMap::Viridis.at(1.0), VIRIDIS[8]);
        assert_eq!(ColorMap::Viridis.at(7.0), VIRIDIS[8]);
        assert_eq!(ColorMap::Viridis.at(f64::NAN), VIRIDIS[0]);
        assert_eq!(ColorMap::Diverging.at(0.5), DIVERGING[3]);
        // Halfway between two anchors is their mix.
        assert_eq!(
            ColorMap::Viridis.at(1.0 / 16.0),
            VIRIDIS[0].mix(VIRIDIS[1], 0.5)
        );
    }

    #[test]
    fn hex_formats_lowercase() {
        assert_eq!(Rgb(255, 0, 16).hex(), "#ff0010");
    }
}
