//! Max-pooling over HWC maps, forward (with the winning position of each
//! output) and backward (the pooled gradient back where it won).

use super::{act_grad, act_value};
use crate::spec::Activation;
use downhill::Real;

/// Geometry of a max-pool over an HWC map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub win: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl PoolGeom {
    /// Output values per sample.
    pub fn out_len(&self) -> usize {
        self.oh * self.ow * self.c
    }
    /// Whether the windows tile the map (stride = window, no padding): each
    /// position then lies in at most one window, which [`pool_tiled_act`]
    /// and [`unpool_tiled`] rely on.
    pub fn tiles(&self) -> bool {
        self.pad == 0 && self.stride == self.win
    }
}

/// Input rows `iy` touched by output row `o` at kernel offset `k`, or `None` in padding.
#[inline]
fn src_coord(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    let i = (o * stride + k).checked_sub(pad)?;
    (i < size).then_some(i)
}

/// Max-pool of one sample. `arg` records, per output element, the input pixel
/// (y·w + x) that won; ties go to the first in row-major window order. Padding is
/// never a candidate (it acts as −∞), and every window holds at least one real
/// pixel because padding is at most half the window.
#[inline(always)]
pub(crate) fn pool_sample<T: Real>(g: &PoolGeom, xb: &[T], ob: &mut [T], ab: &mut [u32]) {
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let o = (oy * g.ow + ox) * g.c;
            let (orow, arow) = (&mut ob[o..o + g.c], &mut ab[o..o + g.c]);
            let mut first = true;
            for ky in 0..g.win {
                let Some(iy) = src_coord(oy, ky, g.stride, g.pad, g.h) else {
                    continue;
                };
                for kx in 0..g.win {
                    let Some(ix) = src_coord(ox, kx, g.stride, g.pad, g.w) else {
                        continue;
                    };
                    let p = iy * g.w + ix;
                    let src = &xb[p * g.c..(p + 1) * g.c];
                    if first {
                        orow.copy_from_slice(src);
                        arow.fill(p as u32);
                        first = false;
                    } else {
                        for ((o, a), &v) in orow.iter_mut().zip(arow.iter_mut()).zip(src) {
                            challenge(o, a, v, p as u32);
                        }
                    }
                }
            }
        }
    }
}

/// A window's running maximum `o`, won at pixel `a`, meets the value `v` of
/// pixel `p`: `v` takes over only when strictly larger, so ties stay with
/// the first pixel in window order. Masks rather than branches, so the
/// channel loops around it vectorise.
#[inline(always)]
fn challenge<T: Real>(o: &mut T, a: &mut u32, v: T, p: u32) {
    let m = 0u32.wrapping_sub((v > *o) as u32);
    *a = (p & m) | (*a & !m);
    *o = if v > *o { v } else { *o };
}

/// [`pool_sample`] of `act(z + b)` for windows that tile the map (stride =
/// window, no padding), computing each value as the window reads it: one
/// pass over the convolution's output instead of one for bias and activation
/// and one for pooling. Each value is computed once, with the operations the
/// separate passes use, and compared in the same order, so the output and the
/// winners are the same bits.
#[inline(always)]
pub(super) fn pool_tiled_act<T: Real>(
    g: &PoolGeom,
    act: Activation,
    bias: &[T],
    zb: &[T],
    ob: &mut [T],
    ab: &mut [u32],
) {
    // One copy per activation, so the channel loops vectorise.
    let (z, b) = (zb, bias);
    match act {
        Activation::Identity => {
            pool_tiled_with(g, z, b, ob, ab, |x| act_value(Activation::Identity, x))
        }
        Activation::Relu => pool_tiled_with(g, z, b, ob, ab, |x| act_value(Activation::Relu, x)),
        Activation::Tanh => pool_tiled_with(g, z, b, ob, ab, |x| act_value(Activation::Tanh, x)),
        Activation::Sigmoid => {
            pool_tiled_with(g, z, b, ob, ab, |x| act_value(Activation::Sigmoid, x))
        }
    }
}

/// [`pool_tiled_act`] for one activation `f`.
#[inline(always)]
fn pool_tiled_with<T: Real>(
    g: &PoolGeom,
    zb: &[T],
    bias: &[T],
    ob: &mut [T],
    ab: &mut [u32],
    f: impl Fn(T) -> T,
) {
    let c = g.c;
    let bias = &bias[..c];
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let o = (oy * g.ow + ox) * c;
            let (orow, arow) = (&mut ob[o..o + c], &mut ab[o..o + c]);
            for ky in 0..g.win {
                for kx in 0..g.win {
                    let p = (oy * g.win + ky) * g.w + ox * g.win + kx;
                    let src = &zb[p * c..(p + 1) * c];
                    if ky == 0 && kx == 0 {
                        for ((o, a), (&z, &bv)) in orow
                            .iter_mut()
                            .zip(arow.iter_mut())
                            .zip(src.iter().zip(bias))
                        {
                            *o = f(z + bv);
                            *a = p as u32;
                        }
                        continue;
                    }
                    for ((o, a), (&z, &bv)) in orow
                        .iter_mut()
                        .zip(arow.iter_mut())
                        .zip(src.iter().zip(bias))
                    {
                        challenge(o, a, f(z + bv), p as u32);
                    }
                }
            }
        }
    }
}

/// The pooled gradient of one sample back on its (cleared) unpooled map:
/// each pooled value's gradient, times the activation's derivative, added
/// at the position that won. Any pooling geometry.
#[inline(always)]
pub(super) fn unpool_scatter<T: Real>(
    c: usize,
    act: Activation,
    yb: &[T],
    ab: &[u32],
    dyb: &[T],
    dzb: &mut [T],
) {
    let px = dyb
        .chunks_exact(c)
        .zip(ab.chunks_exact(c))
        .zip(yb.chunks_exact(c));
    for ((dp, ap), yp) in px {
        for (ch, ((&d, &a), &yv)) in dp.iter().zip(ap).zip(yp).enumerate() {
            let i = a as usize * c + ch;
            dzb[i] = dzb[i] + d * act_grad(act, yv);
        }
    }
}

/// `db += Σ` over the rows of `dz` (one per position), in row order.
#[inline(always)]
pub(super) fn bias_grad<T: Real>(dz: &[T], db: &mut [T]) {
    for row in dz.chunks_exact(db.len()) {
        for (a, &d) in db.iter_mut().zip(row) {
            *a = *a + d;
        }
    }
}

/// The pooled gradient of one sample back on the unpooled map, when the
/// windows tile it (stride = window, no padding), with the bias gradient
/// summed in the same pass. Each position lies in at most one window, so
/// its gradient is `0 + dy·act′` where it won and `0` elsewhere: the values
/// the general path gets by clearing the map and scattering into it, written
/// once in position order, which is also the order the bias sum adds them
/// in (adding a `+0` leaves a sum that is never `−0` unchanged). Same bits,
/// no clearing pass, and the channel loop vectorises where the scatter could
/// not.
#[inline(always)]
pub(super) fn unpool_tiled<T: Real>(
    pg: &PoolGeom,
    act: Activation,
    yb: &[T],
    ab: &[u32],
    dyb: &[T],
    dzb: &mut [T],
    dbp: &mut [T],
) {
    // One copy per activation, so the derivative inside the channel loop is
    // fixed and the loop vectorises.
    let (y, a, dy) = (yb, ab, dyb);
    match act {
        Activation::Identity => unpool_tiled_with(pg, y, a, dy, dzb, dbp, |v| {
            act_grad(Activation::Identity, v)
        }),
        Activation::Relu => {
            unpool_tiled_with(pg, y, a, dy, dzb, dbp, |v| act_grad(Activation::Relu, v))
        }
        Activation::Tanh => {
            unpool_tiled_with(pg, y, a, dy, dzb, dbp, |v| act_grad(Activation::Tanh, v))
        }
        Activation::Sigmoid => {
            unpool_tiled_with(pg, y, a, dy, dzb, dbp, |v| act_grad(Activation::Sigmoid, v))
        }
    }
}

/// [`unpool_tiled`] for one activation's derivative `deriv`.
#[inline(always)]
fn unpool_tiled_with<T: Real>(
    pg: &PoolGeom,
    yb: &[T],
    ab: &[u32],
    dyb: &[T],
    dzb: &mut [T],
    dbp: &mut [T],
    deriv: impl Fn(T) -> T,
) {
    let (c, w, win) = (pg.c, pg.w, pg.win);
    let dbp = &mut dbp[..c];
    for (py, row) in dzb.chunks_exact_mut(w * c).enumerate() {
        let oy = py / win;
        if oy >= pg.oh {
            // Rows past the last whole window: no gradient.
            row.fill(T::zero());
            continue;
        }
        let (covered, rest) = row.split_at_mut(pg.ow * win * c);
        rest.fill(T::zero());
        // Window by window, so no position needs a division to find its own.
        for (ox, window) in covered.chunks_exact_mut(win * c).enumerate() {
            let o = (oy * pg.ow + ox) * c;
            let (a, d, y) = (&ab[o..o + c], &dyb[o..o + c], &yb[o..o + c]);
            for (kx, dz) in window.chunks_exact_mut(c).enumerate() {
                let won = (py * w + ox * win + kx) as u32;
                for ch in 0..c {
                    let v = d[ch] * deriv(y[ch]);
                    let v = if a[ch] == won {
                        T::zero() + v
                    } else {
                        T::zero()
                    };
                    dz[ch] = v;
                    dbp[ch] = dbp[ch] + v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(c: usize, h: usize, w: usize, win: usize, stride: usize, pad: usize) -> PoolGeom {
        PoolGeom {
            c,
            h,
            w,
            win,
            stride,
            pad,
            oh: (h + 2 * pad - win) / stride + 1,
            ow: (w + 2 * pad - win) / stride + 1,
        }
    }

    #[test]
    fn pool_ties_go_to_the_first_pixel_and_padding_never_wins() {
        // 1 channel, 3×3 of equal values except one larger; 2×2 windows, stride 1.
        let g = geom(1, 3, 3, 2, 1, 0);
        let x = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0];
        let (mut o, mut a) = ([0.0; 4], [0u32; 4]);
        pool_sample(&g, &x, &mut o, &mut a);
        assert_eq!(o, [1.0, 1.0, 1.0, 5.0]);
        // Ties: the first pixel of each window in row-major order.
        assert_eq!(a, [0, 1, 3, 8]);
        // Negative values with padding 1: the −∞ border never wins.
        let g = geom(1, 2, 2, 3, 2, 1);
        let x = [-3.0, -2.0, -4.0, -1.0];
        let (mut o, mut a) = ([0.0; 1], [0u32; 1]);
        pool_sample(&g, &x, &mut o, &mut a);
        assert_eq!((o, a), ([-1.0], [3]));
    }

    #[test]
    fn tiled_unpooling_gives_the_bits_of_clearing_and_scattering() {
        // Tilings with and without leftover rows and columns, every
        // activation, ties (equal values) and signed zeros in the gradient.
        let mut rng = downhill::Rng::new(9);
        for (h, w, win) in [(4, 6, 2), (7, 5, 2), (9, 9, 3), (5, 8, 3)] {
            let c = 3;
            let g = geom(c, h, w, win, win, 0);
            let x: Vec<f64> = (0..h * w * c)
                .map(|i| if i % 5 == 0 { 1.0 } else { rng.normal() })
                .collect();
            let (mut y, mut a) = (vec![0.0; g.out_len()], vec![0u32; g.out_len()]);
            pool_sample(&g, &x, &mut y, &mut a);
            let dy: Vec<f64> = (0..g.out_len())
                .map(|i| match i % 7 {
                    0 => -0.0,
                    1 => 0.0,
                    _ => rng.normal(),
                })
                .collect();
            for act in [
                Activation::Identity,
                Activation::Relu,
                Activation::Tanh,
                Activation::Sigmoid,
            ] {
                let (mut dz, mut db) = (vec![0.0; h * w * c], vec![0.0; c]);
                unpool_scatter(c, act, &y, &a, &dy, &mut dz);
                bias_grad(&dz, &mut db);
                // The tiled path writes every position, so start from junk.
                let (mut dz2, mut db2) = (vec![f64::NAN; h * w * c], vec![0.0; c]);
                unpool_tiled(&g, act, &y, &a, &dy, &mut dz2, &mut db2);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&dz2), bits(&dz), "{h}×{w}, window {win}, {act:?}: map");
                assert_eq!(
                    bits(&db2),
                    bits(&db),
                    "{h}×{w}, window {win}, {act:?}: bias"
                );
            }
        }
    }

    #[test]
    fn fused_activation_pooling_gives_the_bits_of_separate_passes() {
        let mut rng = downhill::Rng::new(12);
        for (h, w, win) in [(4, 6, 2), (7, 5, 2), (9, 9, 3)] {
            let c = 5;
            let g = geom(c, h, w, win, win, 0);
            // Ties after the bias and activation: repeated values, and
            // negatives that ReLU sends to zero.
            let z: Vec<f64> = (0..h * w * c)
                .map(|i| {
                    if i % 4 == 0 {
                        -1.0
                    } else {
                        rng.normal() * 30.0
                    }
                })
                .collect();
            let bias: Vec<f64> = (0..c).map(|_| rng.normal()).collect();
            for act in [
                Activation::Identity,
                Activation::Relu,
                Activation::Tanh,
                Activation::Sigmoid,
            ] {
                let mut y = z.clone();
                for row in y.chunks_exact_mut(c) {
                    for (v, &b) in row.iter_mut().zip(&bias) {
                        *v += b;
                    }
                    crate::layers::activate(act, row);
                }
                let (mut o, mut a) = (vec![0.0; g.out_len()], vec![0u32; g.out_len()]);
                pool_sample(&g, &y, &mut o, &mut a);
                let (mut o2, mut a2) = (vec![f64::NAN; g.out_len()], vec![u32::MAX; g.out_len()]);
                pool_tiled_act(&g, act, &bias, &z, &mut o2, &mut a2);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&o2),
                    bits(&o),
                    "{h}×{w}, window {win}, {act:?}: values"
                );
                assert_eq!(a2, a, "{h}×{w}, window {win}, {act:?}: winners");
            }
        }
    }

    #[test]
    fn pool_channels_are_independent() {
        // 2 channels (HWC), 2×2 map, one 2×2 window: channel 0 peaks at pixel 2, channel 1 at 1.
        let g = geom(2, 2, 2, 2, 2, 0);
        let x = [0.0, 0.0, 1.0, 9.0, 7.0, 2.0, 3.0, 4.0];
        let (mut o, mut a) = ([0.0; 2], [0u32; 2]);
        pool_sample(&g, &x, &mut o, &mut a);
        assert_eq!((o, a), ([7.0, 9.0], [2, 1]));
    }
}
