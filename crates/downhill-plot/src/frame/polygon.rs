//! Filled polygons in pixel space: shaded bands, clipping to the plot area,
//! and sampling the area they cover for legend placement.

use super::*;

/// A band of `(x, lower, upper)` entries as polygons in pixel coordinates,
/// clipped to the plot area: the upper edge forward, then the lower edge back.
/// An entry the axes cannot show breaks the band, and a piece of a single
/// entry (no width) is left out.
pub(crate) fn band_polygons(band: &[(f64, f64, f64)], f: &Frame) -> Vec<Vec<Pt>> {
    let mut out = Vec::new();
    let mut upper: Vec<(f64, f64)> = Vec::new();
    let mut lower: Vec<(f64, f64)> = Vec::new();
    let mut flush = |upper: &mut Vec<(f64, f64)>, lower: &mut Vec<(f64, f64)>| {
        if upper.len() >= 2 {
            let ring: Vec<(f64, f64)> = upper.iter().chain(lower.iter().rev()).copied().collect();
            let clipped = clip_polygon(&ring, f.plot, 4.0);
            if !clipped.is_empty() {
                // Sub-pixel detail is invisible and only bloats SVG files.
                out.push(thin(&clipped, 0.5));
            }
        }
        upper.clear();
        lower.clear();
    };
    for &(x, lo, hi) in band {
        match (f.map64((x, lo)), f.map64((x, hi))) {
            (Some(l), Some(h)) => {
                lower.push(l);
                upper.push(h);
            }
            _ => flush(&mut upper, &mut lower),
        }
    }
    flush(&mut upper, &mut lower);
    out
}

/// Clips a closed polygon given in pixel coordinates to `r` grown by `slack`
/// pixels (Sutherland–Hodgman, one side of the box at a time). The result is
/// empty when less than a triangle is left. Crossings are computed as
/// `(1 - t)·a + t·b` from halves, so that coordinates near `f64::MAX` cannot
/// overflow, and the clipped ring is small enough for `f32`.
pub(crate) fn clip_polygon(pts: &[(f64, f64)], r: Rect, slack: f64) -> Vec<Pt> {
    let sides = [
        (0usize, f64::from(r.x0) - slack, true),
        (0, f64::from(r.x1) + slack, false),
        (1, f64::from(r.y0) - slack, true),
        (1, f64::from(r.y1) + slack, false),
    ];
    let coord = |p: (f64, f64), axis: usize| if axis == 0 { p.0 } else { p.1 };
    let mut ring: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    for (axis, bound, keep_above) in sides {
        if ring.len() < 3 {
            return Vec::new();
        }
        let inside = |p: (f64, f64)| {
            let v = coord(p, axis);
            if keep_above {
                v >= bound
            } else {
                v <= bound
            }
        };
        let cross = |a: (f64, f64), b: (f64, f64)| {
            let (ca, cb) = (coord(a, axis), coord(b, axis));
            let t = ((0.5 * (bound - ca)) / (0.5 * cb - 0.5 * ca)).clamp(0.0, 1.0);
            let t = if t.is_nan() { 0.0 } else { t };
            let lerp = |u: f64, v: f64| (1.0 - t) * u + t * v;
            if axis == 0 {
                (bound, lerp(a.1, b.1))
            } else {
                (lerp(a.0, b.0), bound)
            }
        };
        let mut out = Vec::with_capacity(ring.len() + 4);
        let mut s = ring[ring.len() - 1];
        for &e in &ring {
            if inside(e) {
                if !inside(s) {
                    out.push(cross(s, e));
                }
                out.push(e);
            } else if inside(s) {
                out.push(cross(s, e));
            }
            s = e;
        }
        ring = out;
    }
    if ring.len() < 3 {
        return Vec::new();
    }
    ring.into_iter().map(|p| (p.0 as f32, p.1 as f32)).collect()
}

/// Points covered by the polygon `ring`: its edge sampled every 4 pixels, and
/// the inside (even–odd rule) on a grid of `step` pixels anchored at
/// `origin`. A legend box no smaller than `step` each way that lies inside the
/// polygon therefore covers at least one of the points.
pub(crate) fn sample_polygon(ring: &[Pt], step: f32, origin: Pt, out: &mut Vec<Pt>) {
    let Some(&first) = ring.first() else {
        return;
    };
    let mut closed = ring.to_vec();
    closed.push(first);
    sample_polyline(&closed, 4.0, out);
    if !(step.is_finite() && step > 0.0) {
        return;
    }
    let (mut lo, mut hi) = (
        (f32::INFINITY, f32::INFINITY),
        (f32::NEG_INFINITY, f32::NEG_INFINITY),
    );
    for p in ring {
        lo = (lo.0.min(p.0), lo.1.min(p.1));
        hi = (hi.0.max(p.0), hi.1.max(p.1));
    }
    let grid = |v: f32, o: f32| o + ((v - o) / step).ceil() * step;
    let mut y = grid(lo.1, origin.1);
    let mut xs: Vec<f32> = Vec::new();
    while y <= hi.1 {
        // Where the row crosses the edges; inside lies between pairs.
        xs.clear();
        for (i, &a) in ring.iter().enumerate() {
            let b = ring[(i + 1) % ring.len()];
            if (a.1 <= y) != (b.1 <= y) {
                xs.push(a.0 + (y - a.1) / (b.1 - a.1) * (b.0 - a.0));
            }
        }
        xs.sort_by(f32::total_cmp);
        for pair in xs.chunks_exact(2) {
            let mut x = grid(pair[0], origin.0);
            while x <= pair[1] {
                out.push((x, y));
                x += step;
            }
        }
        y += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: Rect = Rect {
        x0: 0.0,
        y0: 0.0,
        x1: 100.0,
        y1: 100.0,
    };

    #[test]
    fn clipping_cuts_at_the_border_and_keeps_inside_vertices() {
        // A triangle poking out of the right side.
        let tri = [(50.0, 20.0), (150.0, 50.0), (50.0, 80.0)];
        let got = clip_polygon(&tri, BOX, 0.0);
        assert_eq!(
            got,
            vec![(50.0, 20.0), (100.0, 35.0), (100.0, 65.0), (50.0, 80.0)]
        );
        // Wholly inside: unchanged; wholly outside: nothing.
        let inner = [(10.0, 10.0), (20.0, 10.0), (20.0, 20.0)];
        assert_eq!(clip_polygon(&inner, BOX, 0.0).len(), 3);
        let outer = [(200.0, 10.0), (300.0, 10.0), (300.0, 20.0)];
        assert!(clip_polygon(&outer, BOX, 0.0).is_empty());
    }

    #[test]
    fn clipping_huge_coordinates_stays_finite_and_covers_the_box() {
        let big = f64::MAX;
        let quad = [(-big, -big), (big, -big), (big, big), (-big, big)];
        let got = clip_polygon(&quad, BOX, 4.0);
        assert_eq!(got.len(), 4);
        for p in &got {
            assert!(p.0.is_finite() && p.1.is_finite());
            assert!((-4.0..=104.0).contains(&p.0) && (-4.0..=104.0).contains(&p.1));
        }
    }

    #[test]
    fn sampling_reaches_the_inside_of_a_polygon() {
        let square = [(10.0, 10.0), (90.0, 10.0), (90.0, 90.0), (10.0, 90.0)];
        let mut pts = Vec::new();
        sample_polygon(&square, 20.0, (0.0, 0.0), &mut pts);
        assert!(pts.contains(&(40.0, 40.0)), "grid point inside");
        assert!(pts.contains(&(60.0, 60.0)), "grid point inside");
        assert!(
            !pts.iter()
                .any(|p| p.0 < 10.0 || p.0 > 90.0 || p.1 < 10.0 || p.1 > 90.0),
            "nothing outside"
        );
        // A box lying in the middle of the square, away from its edge, still
        // sees samples.
        let mid = Rect {
            x0: 30.0,
            y0: 30.0,
            x1: 70.0,
            y1: 70.0,
        };
        assert!(pts.iter().any(|&p| mid.contains(p, 0.0)));
    }
}
