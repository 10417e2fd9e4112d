//! Layer kernels: forward and backward passes over batch-major buffers.
//!
//! Activations are stored batch-major. Images are NHWC inside the network (a
//! sample's pixels row by row, each pixel's channels contiguous): im2col then
//! copies whole channel vectors, the convolution's matrix product writes NHWC
//! directly, and pooling vectorises over channels. Only the network input is CHW
//! (as data files store it); the first convolution reads it through strides.

use crate::simd::with_simd;
use crate::spec::Activation;
use downhill::linalg::{gemm, Mat, Par, SHAPES_CHECKED};
use downhill::Real;
use rayon::prelude::*;
use std::sync::Mutex;

/// Rows per parallel task in element-wise passes: large enough that handing a
/// task to another thread (microseconds) is small next to the work.
const PAR_ELEMS: usize = 1 << 15;

/// Applies `act` in place.
#[inline(always)]
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
#[inline(always)]
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

/// Feature-major epilogue: `out[j, :] = act(out[j, :] + bias[j])`, where row `j`
/// holds feature `j` for each of `cols` samples. Parallel over blocks of rows.
pub(crate) fn bias_act_fm<T: Real>(out: &mut [T], bias: &[T], cols: usize, act: Activation) {
    let rows_per = (PAR_ELEMS / cols).max(1);
    out.par_chunks_mut(rows_per * cols)
        .zip(bias.par_chunks(rows_per))
        .for_each(|(block, bs)| {
            with_simd(
                #[inline(always)]
                || {
                    for (row, &b) in block.chunks_exact_mut(cols).zip(bs) {
                        for o in row.iter_mut() {
                            *o = *o + b;
                        }
                        activate(act, row);
                    }
                },
            )
        });
}

/// Feature-major `dz = dy ⊙ act'(y)` in place, and `db[j] = Σ_r dz[j, r]`. Each
/// feature's sum is taken by one task in sample order, so the result does not
/// depend on the thread count.
pub(crate) fn act_backward_bias_fm<T: Real>(
    act: Activation,
    y: &[T],
    dy: &mut [T],
    db: &mut [T],
    cols: usize,
) {
    let rows_per = (PAR_ELEMS / cols).max(1);
    dy.par_chunks_mut(rows_per * cols)
        .zip(y.par_chunks(rows_per * cols))
        .zip(db.par_chunks_mut(rows_per))
        .for_each(|((dblock, yblock), dbs)| {
            with_simd(
                #[inline(always)]
                || {
                    let rows = dblock.chunks_exact_mut(cols).zip(yblock.chunks_exact(cols));
                    for ((drow, yrow), d) in rows.zip(dbs.iter_mut()) {
                        activate_backward(act, yrow, drow);
                        *d = drow.iter().fold(T::zero(), |a, &v| a + v);
                    }
                },
            )
        });
}

/// `dst = srcᵀ` for a row-major `rows × cols` matrix `src`.
pub(crate) fn transpose<T: Real>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    // Tiles keep both the reads and the writes within a few cache lines.
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
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

/// Sparse-input dense forward, feature-major: `out[j, r] = Σ_k v_k · W[i_k, j]`
/// over sample `r`'s non-zeros (bias added later). Tasks split the output
/// features, so no two threads write the same cache line.
pub(crate) fn sparse_matmul_fm<T: Real>(
    x: Csr<'_, T>,
    w: &[T],
    n: usize,
    rows: usize,
    out: &mut [T],
) {
    // Features per task: a few cache lines of every sample's row of W.
    const FEATURES: usize = 64;
    out[..n * rows]
        .par_chunks_mut(FEATURES * rows)
        .enumerate()
        .for_each(|(t, block)| {
            let j0 = t * FEATURES;
            let nj = block.len() / rows;
            // One sample's outputs add up in a contiguous row (the inner loop
            // vectorises), then go to their feature-major places once. The
            // sums are the same as adding in place, in the same order.
            let mut acc = [T::zero(); FEATURES];
            let acc = &mut acc[..nj];
            for r in 0..rows {
                acc.fill(T::zero());
                for k in x.indptr[r]..x.indptr[r + 1] {
                    let i = x.indices[k] as usize;
                    let v = x.values[k - x.voff];
                    for (a, &wv) in acc.iter_mut().zip(&w[i * n + j0..i * n + j0 + nj]) {
                        *a = *a + v * wv;
                    }
                }
                for (dj, &a) in acc.iter().enumerate() {
                    block[dj * rows + r] = a;
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
    /// Height and width of the input with its zero padding.
    fn padded_hw(&self) -> (usize, usize) {
        (self.h + 2 * self.ph, self.w + 2 * self.pw)
    }
    /// Elements of one zero-padded input sample, HWC.
    pub fn padded_len(&self) -> usize {
        let (hp, wp) = self.padded_hw();
        hp * wp * self.c_in
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

/// Input rows `iy` touched by output row `o` at kernel offset `k`, or `None` in padding.
#[inline]
fn src_coord(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    let i = (o * stride + k).checked_sub(pad)?;
    (i < size).then_some(i)
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
fn im2col_sample<T: Real>(g: &ConvGeom, xb: &[T], pb: &mut [T], cb: &mut [T]) {
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

/// col2im for one sample: adds every patch row of `cb` back where im2col read
/// it (HWC input only: the network input never needs a gradient). With
/// padding, the sums run on the padded map in `pb` and its interior is
/// copied out; each pixel gets the same additions in the same order either
/// way.
#[inline(always)]
fn col2im_sample<T: Real>(g: &ConvGeom, cb: &[T], pb: &mut [T], xb: &mut [T]) {
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

/// Buffers for one chunk of a convolution block: the im2col matrix, its
/// gradient, and the convolution output (or its gradient) before pooling.
#[derive(Debug, Default)]
pub(crate) struct ChunkBufs<T> {
    col: Vec<T>,
    dcol: Vec<T>,
    z: Vec<T>,
    /// One zero-padded input sample (im2col) or its gradient (col2im).
    pad: Vec<T>,
}

/// Per-thread scratch for convolution blocks. A chunk takes whichever slot is
/// free; there are as many slots as threads and chunk work never nests parallel
/// work, so one always is.
#[derive(Debug, Default)]
pub(crate) struct ConvScratch<T> {
    slots: Vec<Mutex<ChunkBufs<T>>>,
}

impl<T: Real> ConvScratch<T> {
    /// Whether there is a slot for every thread of the current pool.
    pub fn fits_pool(&self) -> bool {
        self.slots.len() >= rayon::current_num_threads()
    }

    /// Makes sure there is a slot per pool thread, with `col` elements for the
    /// im2col matrices, `z` for convolution outputs and `pad` for a padded
    /// input sample.
    pub fn reserve(&mut self, col: usize, z: usize, pad: usize) {
        let threads = rayon::current_num_threads();
        while self.slots.len() < threads {
            self.slots.push(Mutex::new(ChunkBufs::default()));
        }
        for slot in &mut self.slots {
            let b = slot.get_mut().unwrap_or_else(|e| e.into_inner());
            if b.col.len() < col {
                b.col.resize(col, T::zero());
                b.dcol.resize(col, T::zero());
            }
            if b.z.len() < z {
                b.z.resize(z, T::zero());
            }
            if b.pad.len() < pad {
                b.pad.resize(pad, T::zero());
            }
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut ChunkBufs<T>) -> R) -> R {
        let start = rayon::current_thread_index().unwrap_or(0);
        for i in 0..self.slots.len() {
            if let Ok(mut guard) = self.slots[(start + i) % self.slots.len()].try_lock() {
                return f(&mut guard);
            }
        }
        // Unreachable while slots >= threads; blocking is still correct.
        let mut guard = self.slots[start % self.slots.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
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

impl PoolGeom {
    /// Output values per sample.
    pub fn out_len(&self) -> usize {
        self.oh * self.ow * self.c
    }
}

/// Samples per convolution chunk: enough that the chunk's im2col matrix is about
/// `CHUNK_BYTES`, so it stays in a core's L2 cache between the products that use
/// it (1 MiB measured best among 0.5, 1, 2 and 4 MiB on the benchmark CNN).
pub(crate) fn conv_chunk<T>(g: &ConvGeom) -> usize {
    const CHUNK_BYTES: usize = 1 << 20;
    (CHUNK_BYTES / (g.positions() * g.k() * std::mem::size_of::<T>()).max(1)).max(1)
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
                        // Masks rather than branches, so it vectorises.
                        for ((o, a), &v) in orow.iter_mut().zip(arow.iter_mut()).zip(src) {
                            let m = 0u32.wrapping_sub((v > *o) as u32);
                            *a = (p as u32 & m) | (*a & !m);
                            *o = if v > *o { v } else { *o };
                        }
                    }
                }
            }
        }
    }
}

/// The derivative of `act` at the point where it output `y`.
#[inline(always)]
fn act_grad<T: Real>(act: Activation, y: T) -> T {
    match act {
        Activation::Identity => T::one(),
        Activation::Relu => {
            if y > T::zero() {
                T::one()
            } else {
                T::zero()
            }
        }
        Activation::Tanh => T::one() - y * y,
        Activation::Sigmoid => y * (T::one() - y),
    }
}

/// The pooled gradient of one sample back on its (cleared) unpooled map:
/// each pooled value's gradient, times the activation's derivative, added
/// at the position that won. Any pooling geometry.
#[inline(always)]
fn unpool_scatter<T: Real>(
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
fn bias_grad<T: Real>(dz: &[T], db: &mut [T]) {
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
fn unpool_tiled<T: Real>(
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
        for (px, dz) in covered.chunks_exact_mut(c).enumerate() {
            let o = (oy * pg.ow + px / win) * c;
            let won = (py * w + px) as u32;
            let (a, d, y) = (&ab[o..o + c], &dyb[o..o + c], &yb[o..o + c]);
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

/// Convolution + activation + max-pool forward, chunk by chunk in parallel:
/// `out = pool(act(im2col(x)·W + b))`. The unpooled map lives only in scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_pool_forward<T: Real>(
    g: &ConvGeom,
    pg: &PoolGeom,
    chunk: usize,
    x: &[T],
    rows: usize,
    w: &[T],
    b: &[T],
    act: Activation,
    scratch: &ConvScratch<T>,
    out: &mut [T],
    arg: &mut [u32],
) {
    let (in_len, k, pos) = (g.c_in * g.h * g.w, g.k(), g.positions());
    let (z_len, p_len) = (pos * g.c_out, pg.out_len());
    out[..rows * p_len]
        .par_chunks_mut(chunk * p_len)
        .zip(arg[..rows * p_len].par_chunks_mut(chunk * p_len))
        .enumerate()
        .for_each(|(ci, (oc, ac))| {
            let n = oc.len() / p_len;
            let xc = &x[ci * chunk * in_len..(ci * chunk + n) * in_len];
            scratch.with(|s| {
                let col = &mut s.col[..n * pos * k];
                let z = &mut s.z[..n * z_len];
                let pad = &mut s.pad[..];
                with_simd(
                    #[inline(always)]
                    || {
                        for (xb, cb) in xc.chunks_exact(in_len).zip(col.chunks_exact_mut(pos * k)) {
                            im2col_sample(g, xb, pad, cb);
                        }
                    },
                );
                let (m, nc) = (n * pos, g.c_out);
                gemm(
                    m,
                    nc,
                    k,
                    Mat::n(col, k),
                    Mat::n(w, nc),
                    z,
                    nc,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
                with_simd(
                    #[inline(always)]
                    || {
                        for row in z.chunks_exact_mut(nc) {
                            for (o, &bv) in row.iter_mut().zip(b) {
                                *o = *o + bv;
                            }
                            activate(act, row);
                        }
                        let outs = oc.chunks_exact_mut(p_len).zip(ac.chunks_exact_mut(p_len));
                        for (zb, (ob, ab)) in z.chunks_exact(z_len).zip(outs) {
                            pool_sample(pg, zb, ob, ab);
                        }
                    },
                );
            });
        });
}

/// Backward of [`conv_pool_forward`], chunk by chunk in parallel. Each pooled
/// output's gradient goes to the position that won, times the activation's
/// derivative there (taken from the pooled value, which is that position's
/// output). Each chunk writes its own weight and bias gradient into
/// `dw_part`/`db_part`, summed afterwards in chunk order into `dw`/`db`, so the
/// thread count never changes the result. With `dx`, also the input gradient.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_pool_backward<T: Real>(
    g: &ConvGeom,
    pg: &PoolGeom,
    chunk: usize,
    act: Activation,
    x: &[T],
    y: &[T],
    arg: &[u32],
    dy: &[T],
    rows: usize,
    w: &[T],
    scratch: &ConvScratch<T>,
    dw_part: &mut [T],
    db_part: &mut [T],
    dx: Option<&mut [T]>,
    dw: &mut [T],
    db: &mut [T],
) {
    let (in_len, k, pos) = (g.c_in * g.h * g.w, g.k(), g.positions());
    let (z_len, p_len) = (pos * g.c_out, pg.out_len());
    let chunks = rows.div_ceil(chunk);
    let (wl, bl) = (k * g.c_out, g.c_out);
    let dw_part = &mut dw_part[..chunks * wl];
    let db_part = &mut db_part[..chunks * bl];
    let body = |ci: usize, dwp: &mut [T], dbp: &mut [T], dxc: Option<&mut [T]>| {
        let first = ci * chunk;
        let n = chunk.min(rows - first);
        let xc = &x[first * in_len..(first + n) * in_len];
        scratch.with(|s| {
            let dz = &mut s.z[..n * z_len];
            let col = &mut s.col[..n * pos * k];
            let pad = &mut s.pad[..];
            with_simd(
                #[inline(always)]
                || {
                    dbp.fill(T::zero());
                    let tiled = pg.pad == 0 && pg.stride == pg.win;
                    if !tiled {
                        dz.fill(T::zero());
                    }
                    for (b, dzb) in dz.chunks_exact_mut(z_len).enumerate() {
                        let o0 = (first + b) * p_len;
                        let r = o0..o0 + p_len;
                        let (yb, ab, db) = (&y[r.clone()], &arg[r.clone()], &dy[r]);
                        if tiled {
                            unpool_tiled(pg, act, yb, ab, db, dzb, dbp);
                        } else {
                            unpool_scatter(pg.c, act, yb, ab, db, dzb);
                        }
                    }
                    if !tiled {
                        bias_grad(dz, dbp);
                    }
                    // Recomputing the patches costs one copy; storing them for the
                    // whole batch would cost far more memory traffic.
                    for (xb, cb) in xc.chunks_exact(in_len).zip(col.chunks_exact_mut(pos * k)) {
                        im2col_sample(g, xb, pad, cb);
                    }
                },
            );
            let (m, nc) = (n * pos, g.c_out);
            gemm(
                k,
                nc,
                m,
                Mat::t(col, k),
                Mat::n(dz, nc),
                dwp,
                nc,
                false,
                Par::Seq,
            )
            .expect(SHAPES_CHECKED);
            if let Some(dxc) = dxc {
                let dcol = &mut s.dcol[..m * k];
                gemm(
                    m,
                    k,
                    nc,
                    Mat::n(dz, nc),
                    Mat::t(w, nc),
                    dcol,
                    k,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
                with_simd(
                    #[inline(always)]
                    || {
                        for (cb, xb) in dcol.chunks_exact(pos * k).zip(dxc.chunks_exact_mut(in_len))
                        {
                            col2im_sample(g, cb, pad, xb);
                        }
                    },
                );
            }
        });
    };
    let work = dw_part
        .par_chunks_mut(wl)
        .zip(db_part.par_chunks_mut(bl))
        .enumerate();
    match dx {
        Some(dx) => work
            .zip(dx[..rows * in_len].par_chunks_mut(chunk * in_len))
            .for_each(|((ci, (dwp, dbp)), dxc)| body(ci, dwp, dbp, Some(dxc))),
        None => work.for_each(|(ci, (dwp, dbp))| body(ci, dwp, dbp, None)),
    }
    dw.copy_from_slice(&dw_part[..wl]);
    db.copy_from_slice(&db_part[..bl]);
    for ci in 1..chunks {
        for (d, &p) in dw.iter_mut().zip(&dw_part[ci * wl..(ci + 1) * wl]) {
            *d = *d + p;
        }
        for (d, &p) in db.iter_mut().zip(&db_part[ci * bl..(ci + 1) * bl]) {
            *d = *d + p;
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
            c_out: 1,
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
            for (oy, ox, ky, kx) in patches(&g) {
                let iy = (oy * g.sh + ky).checked_sub(g.ph).filter(|&i| i < g.h);
                let ix = (ox * g.sw + kx).checked_sub(g.pw).filter(|&i| i < g.w);
                if let (Some(iy), Some(ix)) = (iy, ix) {
                    for ch in 0..c {
                        want[(oy * g.ow + ox) * k + (ky * g.kw + kx) * c + ch] = at(iy, ix, ch);
                    }
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
            for (oy, ox, ky, kx) in patches(&g) {
                let iy = (oy * g.sh + ky).checked_sub(g.ph).filter(|&i| i < g.h);
                let ix = (ox * g.sw + kx).checked_sub(g.pw).filter(|&i| i < g.w);
                if let (Some(iy), Some(ix)) = (iy, ix) {
                    for ch in 0..c {
                        let v = dcol[(oy * g.ow + ox) * k + (ky * g.kw + kx) * c + ch];
                        want_dx[(iy * g.w + ix) * c + ch] += v;
                    }
                }
            }
            let mut dx = vec![f64::NAN; x.len()];
            col2im_sample(&g, &dcol, &mut pad, &mut dx);
            assert_eq!(bits(&dx), bits(&want_dx), "col2im {g:?}");
        }
    }

    /// Every (oy, ox, ky, kx) of a convolution, in im2col's order.
    fn patches(g: &ConvGeom) -> Vec<(usize, usize, usize, usize)> {
        let mut out = Vec::new();
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        out.push((oy, ox, ky, kx));
                    }
                }
            }
        }
        out
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
    fn pool_channels_are_independent() {
        // 2 channels (HWC), 2×2 map, one 2×2 window: channel 0 peaks at pixel 2, channel 1 at 1.
        let g = geom(2, 2, 2, 2, 2, 0);
        let x = [0.0, 0.0, 1.0, 9.0, 7.0, 2.0, 3.0, 4.0];
        let (mut o, mut a) = ([0.0; 2], [0u32; 2]);
        pool_sample(&g, &x, &mut o, &mut a);
        assert_eq!((o, a), ([7.0, 9.0], [2, 1]));
    }
}
