//! Layer kernels: forward and backward passes over batch-major buffers.
//!
//! Activations are stored batch-major. Images are NHWC inside the network (a
//! sample's pixels row by row, each pixel's channels contiguous): im2col then
//! copies whole channel vectors, the convolution's matrix product writes NHWC
//! directly, and pooling vectorises over channels. Only the network input is CHW
//! (as data files store it); the first convolution reads it through strides.

use crate::matmul::{gemm, Mat, Par};
use crate::spec::Activation;
use downhill::Real;
use rayon::prelude::*;

/// Rows per parallel task in element-wise passes: large enough that handing a
/// task to another thread (microseconds) is small next to the work.
const PAR_ELEMS: usize = 1 << 15;

/// Applies `act` in place.
pub(crate) fn activate<T: Real>(act: Activation, xs: &mut [T]) {
    match act {
        Activation::Identity => {}
        Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(T::zero())),
        Activation::Tanh => xs.iter_mut().for_each(|x| *x = x.tanh()),
        Activation::Sigmoid => xs
            .iter_mut()
            .for_each(|x| *x = T::one() / (T::one() + (-*x).exp())),
    }
}

/// `dz = dy ⊙ act'(·)` in place, with the derivative written through the output `y`.
pub(crate) fn activate_backward<T: Real>(act: Activation, y: &[T], dy: &mut [T]) {
    match act {
        Activation::Identity => {}
        Activation::Relu => dy.iter_mut().zip(y).for_each(|(d, &y)| {
            if y <= T::zero() {
                *d = T::zero()
            }
        }),
        Activation::Tanh => dy
            .iter_mut()
            .zip(y)
            .for_each(|(d, &y)| *d = *d * (T::one() - y * y)),
        Activation::Sigmoid => dy
            .iter_mut()
            .zip(y)
            .for_each(|(d, &y)| *d = *d * y * (T::one() - y)),
    }
}

/// `out[r, :] = act(out[r, :] + bias)` for every row, in parallel over row blocks.
pub(crate) fn bias_act<T: Real>(out: &mut [T], bias: &[T], act: Activation) {
    let n = bias.len();
    let rows_per = (PAR_ELEMS / n).max(1);
    out.par_chunks_mut(rows_per * n).for_each(|block| {
        for row in block.chunks_exact_mut(n) {
            for (o, &b) in row.iter_mut().zip(bias) {
                *o = *o + b;
            }
            activate(act, row);
        }
    });
}

/// `dz = dy ⊙ act'(y)` in place over rows of width `db.len()`, and `db = Σ_rows dz`.
///
/// Blocks of rows are reduced into `partial` (one row per block) in parallel and
/// then summed in block order, so the result does not depend on the thread count.
pub(crate) fn act_backward_bias<T: Real>(
    act: Activation,
    y: &[T],
    dy: &mut [T],
    db: &mut [T],
    partial: &mut [T],
) {
    let n = db.len();
    let rows = dy.len() / n;
    let rows_per = (PAR_ELEMS / n).max(1);
    let blocks = rows.div_ceil(rows_per);
    let partial = &mut partial[..blocks * n];
    dy.par_chunks_mut(rows_per * n)
        .zip(y.par_chunks(rows_per * n))
        .zip(partial.par_chunks_mut(n))
        .for_each(|((dblock, yblock), acc)| {
            acc.fill(T::zero());
            for (drow, yrow) in dblock.chunks_exact_mut(n).zip(yblock.chunks_exact(n)) {
                activate_backward(act, yrow, drow);
                for (a, &d) in acc.iter_mut().zip(drow.iter()) {
                    *a = *a + d;
                }
            }
        });
    db.fill(T::zero());
    for acc in partial.chunks_exact(n) {
        for (d, &a) in db.iter_mut().zip(acc) {
            *d = *d + a;
        }
    }
}

/// Number of partial-sum rows [`act_backward_bias`] needs for `rows × n`.
pub(crate) fn bias_partials(rows: usize, n: usize) -> usize {
    rows.div_ceil((PAR_ELEMS / n).max(1)) * n
}

/// A CSR batch: row `r`'s entries are `indices/values[indptr[r]..indptr[r + 1]]`.
#[derive(Clone, Copy)]
pub(crate) struct Csr<'a, T> {
    pub indptr: &'a [usize],
    pub indices: &'a [u32],
    /// Non-zero values, `values[k - voff]` for entry `k`.
    pub values: &'a [T],
    /// `indptr[0]`: where `values` starts in entry numbering.
    pub voff: usize,
}

/// Sparse-input dense forward: `out[r, :] = Σ_k v_k · W[j_k, :]` (bias added later).
pub(crate) fn sparse_matmul<T: Real>(x: Csr<'_, T>, w: &[T], n: usize, out: &mut [T]) {
    out.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
        row.fill(T::zero());
        for k in x.indptr[r]..x.indptr[r + 1] {
            let j = x.indices[k] as usize;
            let v = x.values[k - x.voff];
            for (o, &wv) in row.iter_mut().zip(&w[j * n..(j + 1) * n]) {
                *o = *o + v * wv;
            }
        }
    });
}

/// Sparse-input weight gradient: `dW[j_k, :] += v_k · dz[r, :]` (rows must be zeroed
/// by the caller). Serial: rows of different samples collide on shared features.
pub(crate) fn sparse_weight_grad<T: Real>(x: Csr<'_, T>, dz: &[T], n: usize, dw: &mut [T]) {
    for r in 0..x.indptr.len() - 1 {
        let drow = &dz[r * n..(r + 1) * n];
        for k in x.indptr[r]..x.indptr[r + 1] {
            let j = x.indices[k] as usize;
            let v = x.values[k - x.voff];
            for (g, &d) in dw[j * n..(j + 1) * n].iter_mut().zip(drow) {
                *g = *g + v * d;
            }
        }
    }
}

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
    /// (channel, row, column) strides of the input.
    fn in_strides(&self) -> (usize, usize, usize) {
        if self.in_chw {
            (self.h * self.w, self.w, 1)
        } else {
            (1, self.w * self.c_in, self.c_in)
        }
    }
}

/// Input rows `iy` touched by output row `o` at kernel offset `k`, or `None` in padding.
#[inline]
fn src_coord(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    let i = (o * stride + k).checked_sub(pad)?;
    (i < size).then_some(i)
}

/// im2col: row (b, oy, ox) of `col` holds the input patch under output (oy, ox) of
/// sample b, ordered (ky, kx, channel); padding reads as zero.
pub(crate) fn im2col<T: Real>(g: &ConvGeom, x: &[T], rows: usize, col: &mut [T]) {
    let k = g.k();
    let per = g.positions() * k;
    let in_len = g.c_in * g.h * g.w;
    let (cs, ys, xs) = g.in_strides();
    col[..rows * per]
        .par_chunks_mut(per)
        .enumerate()
        .for_each(|(b, cb)| {
            let xb = &x[b * in_len..(b + 1) * in_len];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let row = &mut cb[(oy * g.ow + ox) * k..(oy * g.ow + ox + 1) * k];
                    for ky in 0..g.kh {
                        let iy = src_coord(oy, ky, g.sh, g.ph, g.h);
                        for kx in 0..g.kw {
                            let dst =
                                &mut row[(ky * g.kw + kx) * g.c_in..(ky * g.kw + kx + 1) * g.c_in];
                            match (iy, src_coord(ox, kx, g.sw, g.pw, g.w)) {
                                (Some(iy), Some(ix)) => {
                                    let base = iy * ys + ix * xs;
                                    if cs == 1 {
                                        dst.copy_from_slice(&xb[base..base + g.c_in]);
                                    } else {
                                        for (c, d) in dst.iter_mut().enumerate() {
                                            *d = xb[base + c * cs];
                                        }
                                    }
                                }
                                _ => dst.fill(T::zero()),
                            }
                        }
                    }
                }
            }
        });
}

/// col2im: `dx = Σ` of every patch row of `dcol` added back where im2col read it
/// (HWC input only: the network input never needs a gradient).
pub(crate) fn col2im<T: Real>(g: &ConvGeom, dcol: &[T], rows: usize, dx: &mut [T]) {
    debug_assert!(!g.in_chw);
    let k = g.k();
    let per = g.positions() * k;
    let in_len = g.c_in * g.h * g.w;
    dx[..rows * in_len]
        .par_chunks_mut(in_len)
        .enumerate()
        .for_each(|(b, xb)| {
            xb.fill(T::zero());
            let cb = &dcol[b * per..(b + 1) * per];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let row = &cb[(oy * g.ow + ox) * k..(oy * g.ow + ox + 1) * k];
                    for ky in 0..g.kh {
                        let Some(iy) = src_coord(oy, ky, g.sh, g.ph, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = src_coord(ox, kx, g.sw, g.pw, g.w) else {
                                continue;
                            };
                            let base = (iy * g.w + ix) * g.c_in;
                            let src =
                                &row[(ky * g.kw + kx) * g.c_in..(ky * g.kw + kx + 1) * g.c_in];
                            for (d, &s) in xb[base..base + g.c_in].iter_mut().zip(src) {
                                *d = *d + s;
                            }
                        }
                    }
                }
            }
        });
}

/// Convolution forward: `out = act(col · W + b)`, out NHWC `[rows·oh·ow, c_out]`.
pub(crate) fn conv_forward<T: Real>(
    g: &ConvGeom,
    x: &[T],
    rows: usize,
    w: &[T],
    b: &[T],
    act: Activation,
    col: &mut [T],
    out: &mut [T],
) {
    let m = rows * g.positions();
    im2col(g, x, rows, col);
    gemm(
        m,
        g.c_out,
        g.k(),
        Mat::n(col, g.k()),
        Mat::n(w, g.c_out),
        out,
        g.c_out,
        false,
        Par::Pool,
    );
    bias_act(&mut out[..m * g.c_out], b, act);
}

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

/// Max-pool forward. `arg` records, per output element, the input pixel (y·w + x)
/// that won; ties go to the first in row-major window order. Padding is never a
/// candidate (it acts as −∞), and every window holds at least one real pixel.
pub(crate) fn pool_forward<T: Real>(
    g: &PoolGeom,
    x: &[T],
    rows: usize,
    out: &mut [T],
    arg: &mut [u32],
) {
    let in_len = g.h * g.w * g.c;
    let out_len = g.oh * g.ow * g.c;
    out[..rows * out_len]
        .par_chunks_mut(out_len)
        .zip(arg[..rows * out_len].par_chunks_mut(out_len))
        .enumerate()
        .for_each(|(b, (ob, ab))| {
            let xb = &x[b * in_len..(b + 1) * in_len];
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
                                    if v > *o {
                                        *o = v;
                                        *a = p as u32;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
}

/// Max-pool backward: each output gradient goes to the pixel that won.
pub(crate) fn pool_backward<T: Real>(
    g: &PoolGeom,
    dy: &[T],
    arg: &[u32],
    rows: usize,
    dx: &mut [T],
) {
    let in_len = g.h * g.w * g.c;
    let out_len = g.oh * g.ow * g.c;
    dx[..rows * in_len]
        .par_chunks_mut(in_len)
        .enumerate()
        .for_each(|(b, xb)| {
            xb.fill(T::zero());
            let (db, ab) = (
                &dy[b * out_len..(b + 1) * out_len],
                &arg[b * out_len..(b + 1) * out_len],
            );
            for (o, (&d, &a)) in db.iter().zip(ab).enumerate() {
                let c = o % g.c;
                let i = a as usize * g.c + c;
                xb[i] = xb[i] + d;
            }
        });
}
