//! Iso-lines by marching squares, joined into polylines.

use crate::grid::Grid;
use std::collections::HashMap;

/// Iso-lines of `grid` at `level` as polylines in grid coordinates
/// (x in `0..nx-1`, y in `0..ny-1`). Cells with a non-finite corner are
/// skipped; closed lines repeat their first point at the end.
pub(crate) fn isolines(grid: &Grid, level: f64) -> Vec<Vec<(f64, f64)>> {
    let (nx, ny) = (grid.nx(), grid.ny());
    let v = grid.values();
    let at = |i: usize, j: usize| v[j * nx + i];
    // Edge ids: horizontal edge (i, j) joins (i, j)-(i+1, j); vertical edge
    // (i, j) joins (i, j)-(i, j+1).
    let n_h = (nx - 1) * ny;
    let h_edge = |i: usize, j: usize| j * (nx - 1) + i;
    let v_edge = |i: usize, j: usize| n_h + j * nx + i;
    // Where the level crosses an edge, interpolated the same way from both
    // cells that share it so that segments meet exactly.
    let point = |e: usize| -> (f64, f64) {
        let ((i0, j0), (i1, j1)) = if e < n_h {
            let (i, j) = (e % (nx - 1), e / (nx - 1));
            ((i, j), (i + 1, j))
        } else {
            let k = e - n_h;
            let (i, j) = (k % nx, k / nx);
            ((i, j), (i, j + 1))
        };
        let (a, b) = (at(i0, j0), at(i1, j1));
        let t = ((level - a) / (b - a)).clamp(0.0, 1.0);
        (
            i0 as f64 + t * (i1 as f64 - i0 as f64),
            j0 as f64 + t * (j1 as f64 - j0 as f64),
        )
    };

    let mut segs: Vec<(usize, usize)> = Vec::new();
    for j in 0..ny - 1 {
        for i in 0..nx - 1 {
            let (a, b, c, d) = (at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1));
            if !(a.is_finite() && b.is_finite() && c.is_finite() && d.is_finite()) {
                continue;
            }
            let case = usize::from(a >= level)
                | usize::from(b >= level) << 1
                | usize::from(c >= level) << 2
                | usize::from(d >= level) << 3;
            let (bottom, top) = (h_edge(i, j), h_edge(i, j + 1));
            let (left, right) = (v_edge(i, j), v_edge(i + 1, j));
            let centre_high = 0.25 * (a + b + c + d) >= level;
            match case {
                0 | 15 => {}
                1 | 14 => segs.push((left, bottom)),
                2 | 13 => segs.push((bottom, right)),
                3 | 12 => segs.push((left, right)),
                4 | 11 => segs.push((right, top)),
                6 | 9 => segs.push((bottom, top)),
                7 | 8 => segs.push((left, top)),
                // Saddle cells: the centre value decides which corners connect.
                5 => {
                    if centre_high {
                        segs.push((bottom, right));
                        segs.push((left, top));
                    } else {
                        segs.push((left, bottom));
                        segs.push((right, top));
                    }
                }
                10 => {
                    if centre_high {
                        segs.push((left, bottom));
                        segs.push((right, top));
                    } else {
                        segs.push((bottom, right));
                        segs.push((left, top));
                    }
                }
                _ => unreachable!("four corners give sixteen cases"),
            }
        }
    }

    // Join segments that share an edge crossing.
    let mut by_edge: HashMap<usize, [usize; 2]> = HashMap::with_capacity(segs.len() * 2);
    for (k, &(e0, e1)) in segs.iter().enumerate() {
        for e in [e0, e1] {
            let slot = by_edge.entry(e).or_insert([usize::MAX; 2]);
            if slot[0] == usize::MAX {
                slot[0] = k;
            } else {
                slot[1] = k;
            }
        }
    }
    let degree = |e: usize| {
        by_edge
            .get(&e)
            .map_or(0, |s| s.iter().filter(|&&x| x != usize::MAX).count())
    };
    let mut used = vec![false; segs.len()];
    let mut lines = Vec::new();
    let walk = |start: usize, from: usize, used: &mut Vec<bool>| {
        let mut line = vec![point(from)];
        let (mut seg, mut entry) = (start, from);
        loop {
            used[seg] = true;
            let (e0, e1) = segs[seg];
            let exit = if e0 == entry { e1 } else { e0 };
            line.push(point(exit));
            let next = by_edge
                .get(&exit)
                .and_then(|s| s.iter().copied().find(|&x| x != usize::MAX && !used[x]));
            match next {
                Some(n) => {
                    seg = n;
                    entry = exit;
                }
                None => break,
            }
        }
        line
    };
    // Open lines start at a crossing used by one segment (the grid border or a gap).
    for k in 0..segs.len() {
        if used[k] {
            continue;
        }
        let (e0, e1) = segs[k];
        if degree(e0) == 1 {
            lines.push(walk(k, e0, &mut used));
        } else if degree(e1) == 1 {
            lines.push(walk(k, e1, &mut used));
        }
    }
    // What is left are closed loops.
    for k in 0..segs.len() {
        if !used[k] {
            lines.push(walk(k, segs[k].0, &mut used));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circle_level_is_one_closed_loop_at_the_right_radius() {
        let n = 81;
        let g = Grid::sample((-2.0, 2.0), (-2.0, 2.0), n, n, |x, y| x * x + y * y).unwrap();
        let lines = isolines(&g, 1.0);
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l.first(), l.last(), "closed");
        assert!(l.len() > 40);
        let scale = 4.0 / (n - 1) as f64;
        for &(gx, gy) in l {
            let (x, y) = (-2.0 + gx * scale, -2.0 + gy * scale);
            let r = (x * x + y * y).sqrt();
            assert!((r - 1.0).abs() < 0.01, "r = {r}");
        }
    }

    #[test]
    fn saddle_zero_level_gives_the_two_diagonals() {
        let g = Grid::sample((-1.0, 1.0), (-1.0, 1.0), 20, 20, |x, y| x * x - y * y).unwrap();
        let lines = isolines(&g, 0.0);
        // Two lines (|x| = |y|) reaching the border at their ends.
        let total: usize = lines.iter().map(Vec::len).sum();
        assert!(total > 30);
        for l in &lines {
            for &(gx, gy) in l {
                let (x, y) = (-1.0 + gx * 2.0 / 19.0, -1.0 + gy * 2.0 / 19.0);
                assert!((x.abs() - y.abs()).abs() < 0.06, "({x}, {y})");
            }
            let end = l.last().unwrap();
            assert!(end.0 <= 0.0 || end.0 >= 19.0 || end.1 <= 0.0 || end.1 >= 19.0);
        }
    }

    #[test]
    fn gaps_and_out_of_range_levels() {
        let mut values = vec![0.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 0.0];
        values[4] = f64::NAN;
        let g = Grid::new((0.0, 1.0), (0.0, 1.0), 3, 3, values).unwrap();
        assert!(isolines(&g, 0.5).is_empty(), "every cell touches the NaN");
        let g = Grid::sample((0.0, 1.0), (0.0, 1.0), 5, 5, |x, _| x).unwrap();
        assert!(isolines(&g, 5.0).is_empty());
        let l = isolines(&g, 0.5);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].len(), 5);
    }
}
