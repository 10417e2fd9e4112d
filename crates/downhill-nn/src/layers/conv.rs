//! Convolution + activation + max-pool blocks, chunk by chunk in parallel,
//! with per-thread scratch for the patch matrices.

use super::patches::{col2im_sample, im2col_sample, im2col_t_sample, ConvGeom};
use super::pool::{bias_grad, pool_sample, pool_tiled_act, unpool_scatter, unpool_tiled, PoolGeom};
use super::{activate, PAR_ELEMS};
use crate::simd::with_simd;
use crate::spec::Activation;
use downhill::linalg::{gemm, Mat, Par, SHAPES_CHECKED};
use downhill::Real;
use rayon::prelude::*;
use std::sync::Mutex;

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

/// Samples per convolution chunk: enough that the chunk's im2col matrix is about
/// `CHUNK_BYTES`, so it stays in a core's L2 cache between the products that use
/// it (1 MiB measured best among 0.5, 1, 2 and 4 MiB on the benchmark CNN).
pub(crate) fn conv_chunk<T>(g: &ConvGeom) -> usize {
    const CHUNK_BYTES: usize = 1 << 20;
    (CHUNK_BYTES / (g.positions() * g.k() * std::mem::size_of::<T>()).max(1)).max(1)
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
                        fill_patches(g, xc, pad, col);
                    },
                );
                let (m, nc) = (n * pos, g.c_out);
                gemm(
                    m,
                    nc,
                    k,
                    patches(g, col, m, false),
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
                        let outs = oc.chunks_exact_mut(p_len).zip(ac.chunks_exact_mut(p_len));
                        if pg.tiles() {
                            for (zb, (ob, ab)) in z.chunks_exact(z_len).zip(outs) {
                                pool_tiled_act(pg, act, b, zb, ob, ab);
                            }
                            return;
                        }
                        for row in z.chunks_exact_mut(nc) {
                            for (o, &bv) in row.iter_mut().zip(b) {
                                *o = *o + bv;
                            }
                            activate(act, row);
                        }
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
                    let tiled = pg.tiles();
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
                    fill_patches(g, xc, pad, col);
                },
            );
            let (m, nc) = (n * pos, g.c_out);
            let col_t = patches(g, col, m, true);
            gemm(k, nc, m, col_t, Mat::n(dz, nc), dwp, nc, false, Par::Seq).expect(SHAPES_CHECKED);
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
    // Every element's partials in chunk order; the elements are shared out
    // between threads, which changes no sum.
    let dw_part = &*dw_part;
    dw.par_chunks_mut(PAR_ELEMS).enumerate().for_each(|(i, d)| {
        with_simd(
            #[inline(always)]
            || sum_parts(d, dw_part, i * PAR_ELEMS, wl, chunks),
        )
    });
    sum_parts(db, db_part, 0, bl, chunks);
}

/// The patch matrix of the samples `xc` into `col`: `positions·n × k`
/// row-major, or its transpose where [`ConvGeom::patches_transposed`].
#[inline(always)]
fn fill_patches<T: Real>(g: &ConvGeom, xc: &[T], pad: &mut [T], col: &mut [T]) {
    let (in_len, len) = (g.c_in * g.h * g.w, g.positions() * g.k());
    if g.patches_transposed() {
        let ld = xc.len() / in_len * g.positions();
        for (s, xb) in xc.chunks_exact(in_len).enumerate() {
            im2col_t_sample(g, xb, pad, col, s, ld);
        }
    } else {
        for (xb, cb) in xc.chunks_exact(in_len).zip(col.chunks_exact_mut(len)) {
            im2col_sample(g, xb, pad, cb);
        }
    }
}

/// The `m × k` patch matrix that [`fill_patches`] wrote, as a product
/// operand: as it is, or (`transposed`) its transpose.
fn patches<'a, T>(g: &ConvGeom, col: &'a [T], m: usize, transposed: bool) -> Mat<'a, T> {
    match (g.patches_transposed(), transposed) {
        (false, false) => Mat::n(col, g.k()),
        (false, true) => Mat::t(col, g.k()),
        (true, false) => Mat::t(col, m),
        (true, true) => Mat::n(col, m),
    }
}

/// `d = Σ` over `count` partials, in order: partial `i` is the `d.len()`
/// values at `parts[i·stride + off..]`.
#[inline(always)]
fn sum_parts<T: Real>(d: &mut [T], parts: &[T], off: usize, stride: usize, count: usize) {
    d.copy_from_slice(&parts[off..off + d.len()]);
    for ci in 1..count {
        let p = &parts[ci * stride + off..][..d.len()];
        for (d, &p) in d.iter_mut().zip(p) {
            *d = *d + p;
        }
    }
}
