//! Polylines in pixel space: clipping to the plot area (breaking at gaps and
//! at non-finite points), staircases, thinning, and sampling for legend
//! placement.

use super::*;

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

/// Inserts the corner `(x_{i+1}, y_i)` between each pair of consecutive
/// points, turning a polyline into a "post" staircase; `None` (a break) is kept
/// and starts a new staircase. Works on pixel or data coordinates alike, as
/// both axes map independently.
pub(crate) fn staircase(
    pts: impl IntoIterator<Item = Option<(f64, f64)>>,
) -> Vec<Option<(f64, f64)>> {
    let mut out = Vec::new();
    let mut prev: Option<(f64, f64)> = None;
    for p in pts {
        if let (Some(a), Some(b)) = (prev, p) {
            out.push(Some((b.0, a.1)));
        }
        out.push(p);
        prev = p;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staircase_inserts_post_corners_and_keeps_breaks() {
        let p = |x: f64, y: f64| Some((x, y));
        let got = staircase([
            p(0.0, 0.0),
            p(1.0, 2.0),
            p(3.0, 1.0),
            None,
            p(4.0, 4.0),
            p(5.0, 5.0),
        ]);
        let want = vec![
            p(0.0, 0.0),
            p(1.0, 0.0),
            p(1.0, 2.0),
            p(3.0, 2.0),
            p(3.0, 1.0),
            None,
            p(4.0, 4.0),
            p(5.0, 4.0),
            p(5.0, 5.0),
        ];
        assert_eq!(got, want);
        assert_eq!(staircase([p(1.0, 1.0)]), vec![p(1.0, 1.0)]);
    }
}
