//! A convolution's geometry, and the patch matrices its products read:
//! im2col (each output position's input patch as a row) and col2im (those
//! rows' gradients summed back onto the input map).

use downhill::Real;

/// Geometry of one convolution (or its input/output maps), all per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub oh: usize,
    pub ow: usize,
    /// Input stored CHW (the network input) rather than HWC.
    pub in_chw: bool,
}

impl ConvGeom {
    /// Columns of the im2col matrix: `kh·kw·c_in`, ordered (ky, kx, channel).
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.c_in
    }
    /// Output positions per sample.
    pub fn positions(&self) -> usize {
        self.oh * self.ow
    }
    /// Height and width of the input with its zero padding.
    fn padded_hw(&self) -> (usize, usize) {
        (self.h + 2 * self.ph, self.w + 2 * self.pw)
    }
    /// Elements of one zero-padded input sample, HWC.
    pub fn padded_len(&self) -> usize {
        let (hp, wp) = self.padded_hw();
        hp * wp * self.c_in
    }
    /// Whether the patch matrix is built transposed (`k` rows of one value
    /// per position, [`im2col_t_sample`]): one input channel and column
    /// stride 1, where each of its rows is copied in runs as long as an
    /// output row, against runs of `kw` values the other way round. Not
    /// with one output channel: the `gemm` crate computes a product with one
    /// column as a matrix-vector product whose summation order follows the
    /// operand's layout, so the bits would change (with two or more, both
    /// layouts take its packed kernel and sum in the same order; the test
    /// `transposed_patches_give_the_same_products` holds it to that).
    pub fn patches_transposed(&self) -> bool {
        self.c_in == 1 && self.sw == 1 && self.c_out > 1
    }
    /// Whether im2col can read the input as it is: HWC with no padding.
    fn reads_input_directly(&self) -> bool {
        self.ph == 0 && self.pw == 0 && !self.in_chw
    }
    /// (channel, row, column) strides of the input.
    fn in_strides(&self) -> (usize, usize, usize) {
        if self.in_chw {
            (self.h * self.w, self.w, 1)
        } else {
            (1, self.w * self.c_in, self.c_in)
        }
    }
}

/// One sample zero-padded into `pb`, HWC: every patch is then a whole
/// rectangle, and im2col copies runs without checking for borders.
#[inline(always)]
fn pad_sample<T: Real>(g: &ConvGeom, xb: &[T], pb: &mut [T]) {
    let ((_, wp), c) = (g.padded_hw(), g.c_in);
    let pb = &mut pb[..g.padded_len()];
    let (cs, ys, xs) = g.in_strides();
    let (top, rest) = pb.split_at_mut(g.ph * wp * c);
    top.fill(T::zero());
    let (inner, bottom) = rest.split_at_mut(g.h * wp * c);
    bottom.fill(T::zero());
    for (iy, row) in inner.chunks_exact_mut(wp * c).enumerate() {
        let (left, rest) = row.split_at_mut(g.pw * c);
        left.fill(T::zero());
        let (mid, right) = rest.split_at_mut(g.w * c);
        right.fill(T::zero());
        if cs == 1 {
            mid.copy_from_slice(&xb[iy * ys..iy * ys + g.w * c]);
        } else {
            for (ix, px) in mid.chunks_exact_mut(c).enumerate() {
                for (ch, d) in px.iter_mut().enumerate() {
                    *d = xb[iy * ys + ix * xs + ch * cs];
                }
            }
        }
    }
}

/// Offset in the (padded) input of the run that row `ky` of the patch under
/// output (oy, ox) copies: `kw·c_in` values from there on.
#[inline(always)]
fn run_start(g: &ConvGeom, wp: usize, oy: usize, ox: usize, ky: usize) -> usize {
    ((oy * g.sh + ky) * wp + ox * g.sw) * g.c_in
}

/// im2col for one sample: row (oy, ox) of `col` holds the input patch under
/// output (oy, ox), ordered (ky, kx, channel); padding reads as zero. The
/// input is first copied zero-padded into `pb` (unless it is HWC without
/// padding), so each patch row is one run.
#[inline(always)]
pub(super) fn im2col_sample<T: Real>(g: &ConvGeom, xb: &[T], pb: &mut [T], cb: &mut [T]) {
    let src: &[T] = if g.reads_input_directly() {
        xb
    } else {
        pad_sample(g, xb, pb);
        pb
    };
    let (wp, k, run) = (g.padded_hw().1, g.k(), g.kw * g.c_in);
    for (pos, row) in cb[..g.positions() * k].chunks_exact_mut(k).enumerate() {
        let (oy, ox) = (pos / g.ow, pos % g.ow);
        for (ky, dst) in row.chunks_exact_mut(run).enumerate() {
            let s = &src[run_start(g, wp, oy, ox, ky)..][..run];
            if run <= 16 {
                // A call to memmove costs more than a handful of moves.
                for (d, &v) in dst.iter_mut().zip(s) {
                    *d = v;
                }
            } else {
                dst.copy_from_slice(s);
            }
        }
    }
}

/// im2col transposed, for [`ConvGeom::patches_transposed`] geometries:
/// sample `s` of a chunk fills columns `s·positions..(s+1)·positions` of
/// `ct`, a `k × ld` row-major matrix, so that `ct[j][s·positions + p]` is
/// entry `j` of the patch under position `p` (what [`im2col_sample`] puts
/// at `col[p·k + j]`).
#[inline(always)]
pub(super) fn im2col_t_sample<T: Real>(
    g: &ConvGeom,
    xb: &[T],
    pb: &mut [T],
    ct: &mut [T],
    s: usize,
    ld: usize,
) {
    debug_assert!(g.patches_transposed());
    let src: &[T] = if g.reads_input_directly() {
        xb
    } else {
        pad_sample(g, xb, pb);
        pb
    };
    let (wp, pos) = (g.padded_hw().1, g.positions());
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let row = &mut ct[(ky * g.kw + kx) * ld + s * pos..][..pos];
            for (oy, dst) in row.chunks_exact_mut(g.ow).enumerate() {
                let from = (oy * g.sh + ky) * wp + kx;
                dst.copy_from_slice(&src[from..from + g.ow]);
            }
        }
    }
}

/// col2im for one sample: adds every patch row of `cb` back where im2col read
/// it (HWC input only: the network input never needs a gradient). With
/// padding, the sums run on the padded map in `pb` and its interior is
/// copied out; each pixel gets the same additions in the same order either
/// way.
#[inline(always)]
pub(super) fn col2im_sample<T: Real>(g: &ConvGeom, cb: &[T], pb: &mut [T], xb: &mut [T]) {
    debug_assert!(!g.in_chw);
    let direct = g.reads_input_directly();
    let acc: &mut [T] = if direct {
        xb
    } else {
        &mut pb[..g.padded_len()]
    };
    acc.fill(T::zero());
    let (wp, k, run) = (g.padded_hw().1, g.k(), g.kw * g.c_in);
    for (pos, row) in cb[..g.positions() * k].chunks_exact(k).enumerate() {
        let (oy, ox) = (pos / g.ow, pos % g.ow);
        for (ky, s) in row.chunks_exact(run).enumerate() {
            let d = &mut acc[run_start(g, wp, oy, ox, ky)..][..run];
            for (d, &v) in d.iter_mut().zip(s) {
                *d = *d + v;
            }
        }
    }
    if !direct {
        let c = g.c_in;
        for (iy, out) in xb.chunks_exact_mut(g.w * c).enumerate() {
            let start = ((iy + g.ph) * wp + g.pw) * c;
            out.copy_from_slice(&pb[start..start + g.w * c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A convolution's geometry from its input, kernel, stride and padding.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        c_in: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        s: usize,
        ph: usize,
        pw: usize,
        chw: bool,
    ) -> ConvGeom {
        ConvGeom {
            c_in,
            h,
            w,
            c_out: 2,
            kh,
            kw,
            sh: s,
            sw: s,
            ph,
            pw,
            oh: (h + 2 * ph - kh) / s + 1,
            ow: (w + 2 * pw - kw) / s + 1,
            in_chw: chw,
        }
    }

    #[test]
    fn im2col_and_col2im_match_their_definitions_bit_for_bit() {
        let mut rng = downhill::Rng::new(4);
        let geometries = [
            conv(3, 7, 6, 3, 3, 1, 1, 1, true),  // CHW input, padded
            conv(1, 8, 8, 5, 5, 1, 2, 2, false), // one channel, "same" padding
            conv(4, 9, 8, 3, 2, 2, 1, 1, false), // stride 2, 3×2 kernel
            conv(2, 6, 7, 2, 2, 3, 3, 3, false), // padding wider than the kernel
            conv(5, 6, 6, 3, 3, 1, 0, 0, false), // no padding: read directly
        ];
        for g in geometries {
            let (c, k) = (g.c_in, g.k());
            let x: Vec<f64> = (0..c * g.h * g.w).map(|_| rng.normal()).collect();
            let at = |iy: usize, ix: usize, ch: usize| {
                if g.in_chw {
                    x[(ch * g.h + iy) * g.w + ix]
                } else {
                    x[(iy * g.w + ix) * c + ch]
                }
            };
            // The definition: patch entry (ky, kx, ch) under output (oy, ox).
            let mut want = vec![0.0; g.positions() * k];
            for (entry, iy, ix) in taps(&g) {
                for ch in 0..c {
                    want[entry + ch] = at(iy, ix, ch);
                }
            }
            let mut pad = vec![f64::NAN; g.padded_len()];
            let mut col = vec![f64::NAN; want.len()];
            im2col_sample(&g, &x, &mut pad, &mut col);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&col), bits(&want), "im2col {g:?}");
            if g.in_chw {
                continue; // col2im serves HWC maps only
            }
            // col2im by definition: each pixel's contributions in patch order.
            let dcol: Vec<f64> = (0..want.len()).map(|_| rng.normal()).collect();
            let mut want_dx = vec![0.0; x.len()];
            for (entry, iy, ix) in taps(&g) {
                for ch in 0..c {
                    want_dx[(iy * g.w + ix) * c + ch] += dcol[entry + ch];
                }
            }
            let mut dx = vec![f64::NAN; x.len()];
            col2im_sample(&g, &dcol, &mut pad, &mut dx);
            assert_eq!(bits(&dx), bits(&want_dx), "col2im {g:?}");
        }
    }

    #[test]
    fn transposed_im2col_is_the_transpose() {
        let mut rng = downhill::Rng::new(6);
        for g in [
            conv(1, 8, 8, 5, 5, 1, 2, 2, false),
            conv(1, 9, 7, 3, 2, 1, 0, 0, false),
            conv(1, 6, 6, 3, 3, 1, 4, 4, false),
        ] {
            assert!(g.patches_transposed());
            let (k, pos, samples) = (g.k(), g.positions(), 3);
            let mut pad = vec![f64::NAN; g.padded_len()];
            let mut ct = vec![f64::NAN; k * pos * samples];
            for s in 0..samples {
                let x: Vec<f64> = (0..g.h * g.w).map(|_| rng.normal()).collect();
                let mut col = vec![f64::NAN; pos * k];
                im2col_sample(&g, &x, &mut pad, &mut col);
                im2col_t_sample(&g, &x, &mut pad, &mut ct, s, pos * samples);
                for p in 0..pos {
                    for j in 0..k {
                        let t = ct[j * pos * samples + s * pos + p];
                        assert_eq!(t.to_bits(), col[p * k + j].to_bits(), "{g:?} sample {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn transposed_patches_give_the_same_products() {
        use downhill::linalg::{gemm, Mat, Par};
        let mut rng = downhill::Rng::new(8);
        // (positions × samples, k, output channels): first-layer shapes, a
        // few rows, and one and many blocks of the backend's kernel.
        for (m, k, nc) in [
            (784 * 3, 25, 32),
            (50, 9, 2),
            (7, 6, 3),
            (300, 4, 17),
            (4, 25, 64),
            (2, 25, 8),
        ] {
            let col: Vec<f32> = (0..m * k).map(|_| rng.normal() as f32).collect();
            let mut col_t = vec![0.0f32; m * k];
            for i in 0..m {
                for j in 0..k {
                    col_t[j * m + i] = col[i * k + j];
                }
            }
            let w: Vec<f32> = (0..k * nc).map(|_| rng.normal() as f32).collect();
            let dz: Vec<f32> = (0..m * nc).map(|_| rng.normal() as f32).collect();
            let product =
                |rows: usize, cols: usize, depth: usize, a: Mat<'_, f32>, b: Mat<'_, f32>| {
                    let mut c = vec![0.0f32; rows * cols];
                    gemm(rows, cols, depth, a, b, &mut c, cols, false, Par::Seq).unwrap();
                    c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                };
            assert_eq!(
                product(m, nc, k, Mat::n(&col, k), Mat::n(&w, nc)),
                product(m, nc, k, Mat::t(&col_t, m), Mat::n(&w, nc)),
                "forward {m}×{k}×{nc}"
            );
            assert_eq!(
                product(k, nc, m, Mat::t(&col, k), Mat::n(&dz, nc)),
                product(k, nc, m, Mat::n(&col_t, m), Mat::n(&dz, nc)),
                "weight gradient {m}×{k}×{nc}"
            );
        }
    }

    /// Every kernel tap over a real input pixel, in im2col's order (output
    /// position, then ky, kx): the patch-matrix entry of its channel 0, and
    /// the pixel (iy, ix). Taps over the padding are left out.
    fn taps(g: &ConvGeom) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let iy = (oy * g.sh + ky).checked_sub(g.ph).filter(|&i| i < g.h);
                        let ix = (ox * g.sw + kx).checked_sub(g.pw).filter(|&i| i < g.w);
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            let entry = (oy * g.ow + ox) * g.k() + (ky * g.kw + kx) * g.c_in;
                            out.push((entry, iy, ix));
                        }
                    }
                }
            }
        }
        out
    }
}
