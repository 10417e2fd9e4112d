//! Layer kernels: forward and backward passes over batch-major buffers.
//!
//! Activations are stored batch-major. Images are NHWC inside the network (a
//! sample's pixels row by row, each pixel's channels contiguous): im2col then
//! copies whole channel vectors, the convolution's matrix product writes NHWC
//! directly, and pooling vectorises over channels. Only the network input is CHW
//! (as data files store it); the first convolution's im2col copies it into its
//! zero-padded HWC scratch.

mod conv;
mod patches;
mod pool;

pub(crate) use conv::{conv_chunk, conv_pool_backward, conv_pool_forward, ConvScratch};
pub(crate) use patches::ConvGeom;
pub(crate) use pool::PoolGeom;

use crate::simd::with_simd;
use crate::spec::Activation;
use downhill::Real;
use rayon::prelude::*;

/// Rows per parallel task in element-wise passes: large enough that handing a
/// task to another thread (microseconds) is small next to the work.
pub(crate) const PAR_ELEMS: usize = 1 << 15;

/// `act(x)`: the one definition every forward pass uses.
#[inline(always)]
pub(crate) fn act_value<T: Real>(act: Activation, x: T) -> T {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(T::zero()),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => T::one() / (T::one() + (-x).exp()),
    }
}

/// Applies `act` in place.
#[inline(always)]
pub(crate) fn activate<T: Real>(act: Activation, xs: &mut [T]) {
    // One loop per activation, so each vectorises with its function fixed.
    match act {
        Activation::Identity => {}
        Activation::Relu => xs
            .iter_mut()
            .for_each(|x| *x = act_value(Activation::Relu, *x)),
        Activation::Tanh => xs
            .iter_mut()
            .for_each(|x| *x = act_value(Activation::Tanh, *x)),
        Activation::Sigmoid => xs
            .iter_mut()
            .for_each(|x| *x = act_value(Activation::Sigmoid, *x)),
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

/// The derivative of `act` at the point where it output `y`.
#[inline(always)]
pub(crate) fn act_grad<T: Real>(act: Activation, y: T) -> T {
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
