//! Passes over memory: the fused element-wise loop every element-wise rule
//! runs, the non-finite scan, and the deterministic parallel split that
//! tensor-level rules use for their reductions.
//!
//! Every loop here is compiled for the widest vector unit the CPU has and
//! chosen at run time, under [`crate::simd`]'s cap. The arithmetic is the
//! same IEEE operations in every version (no fused multiply-add is
//! introduced without fast-math), so an element-wise rule's results are the
//! same bits at every level and on every x86-64 machine (`tests/simd_levels.rs`);
//! only the speed differs. Tensor-level rules whose step runs matrix
//! products (Muon) depend on the `gemm` crate's kernels, which it picks from
//! the CPU: their bits may differ between CPU models.

use super::{Pointwise, TensorStep, MAX_BUFFERS};
use crate::Real;

/// Tensors shorter than this are updated on the calling thread; longer ones
/// are split in halves down to about this size and run on rayon's pool.
pub(crate) const PARALLEL_LEAF: usize = 1 << 15;

/// Runs `f` compiled for AVX-512 or AVX2 when the CPU has them and
/// [`crate::simd::cap`] allows them. `f` must be
/// inlined into the wrapper to benefit, which generic closures and
/// `#[inline(always)]` rule methods are.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::simd::{active, Level};
        match active() {
            // SAFETY: `active` reports AVX-512 only when the CPU supports
            // AVX-512F, the only feature `with_avx512` enables.
            Level::Avx512 => return unsafe { with_avx512(f) },
            // SAFETY: `active` reports AVX2 only when the CPU supports it,
            // the only feature `with_avx2` enables.
            Level::Avx2 => return unsafe { with_avx2(f) },
            Level::Baseline => {}
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Defines a function generic over `T: Real` whose body is compiled three
/// times, for AVX-512, AVX2 and the baseline, and picked at run time. Unlike
/// [`wide`], this reaches closures: a closure written in the body is
/// compiled with its copy's target features, so a tensor-level rule's
/// `par_reduce` leaves vectorise as wide as the element-wise loops. The body
/// must not name `Self`. Every copy runs the same IEEE operations (no fused
/// multiply-add is introduced), so results are bit-identical whichever runs.
#[macro_export]
#[doc(hidden)]
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident<T: Real>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name<T: $crate::Real>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512<T: $crate::Real>($($arg: $ty),*) $(-> $ret)? $body
                #[target_feature(enable = "avx2")]
                unsafe fn avx2<T: $crate::Real>($($arg: $ty),*) $(-> $ret)? $body
                use $crate::simd::{active, Level};
                match active() {
                    // SAFETY: `active` reports AVX-512 only when the CPU
                    // supports AVX-512F, the only feature `avx512` enables.
                    Level::Avx512 => return unsafe { avx512::<T>($($arg),*) },
                    // SAFETY: `active` reports AVX2 only when the CPU
                    // supports it, the only feature `avx2` enables.
                    Level::Avx2 => return unsafe { avx2::<T>($($arg),*) },
                    Level::Baseline => {}
                }
            }
            $body
        }
    };
}

/// Runs an element-wise rule over a whole tensor in one pass: what every
/// element-wise rule's [`super::Rule::step_tensor`] is.
#[inline]
pub fn pointwise<R: Pointwise, T: Real>(c: &R::Consts<T>, t: TensorStep<'_, T>) {
    let n = t.n_buffers;
    fused::<R, T>(c, t.param, t.grad, t.buffers, n);
}

/// A lazy row-sparse step of an element-wise rule: only the listed rows of
/// the parameter and its buffers change.
pub fn pointwise_rows<R: Pointwise, T: Real>(
    c: &R::Consts<T>,
    p: &mut [T],
    rows: &[u32],
    row_len: usize,
    values: &[T],
    bufs: [&mut [T]; MAX_BUFFERS],
    n: usize,
) {
    let mut bufs = bufs;
    for (&r, g) in rows.iter().zip(values.chunks_exact(row_len)) {
        let range = r as usize * row_len..(r as usize + 1) * row_len;
        let mut row_bufs: [&mut [T]; MAX_BUFFERS] = Default::default();
        for (k, b) in bufs.iter_mut().take(n).enumerate() {
            row_bufs[k] = &mut b[range.clone()];
        }
        leaf::<R, T>(c, &mut p[range], g, &mut row_bufs[..n]);
    }
}

/// The fused loop, split across rayon's threads when the tensor is large.
/// Splitting is by halves at 64-element boundaries, so every leaf is a long
/// contiguous run for the vectorised loop; an element-wise rule gives the
/// same bits however it is split.
fn fused<R: Pointwise, T: Real>(
    c: &R::Consts<T>,
    p: &mut [T],
    g: &[T],
    bufs: [&mut [T]; MAX_BUFFERS],
    n: usize,
) {
    let mut bufs = bufs;
    if p.len() < 2 * PARALLEL_LEAF || rayon::current_num_threads() == 1 {
        leaf::<R, T>(c, p, g, &mut bufs[..n]);
        return;
    }
    let mid = (p.len() / 2) & !63;
    let (p1, p2) = p.split_at_mut(mid);
    let (g1, g2) = g.split_at(mid);
    let (b1, b2) = split_buffers(bufs, n, mid);
    rayon::join(
        || fused::<R, T>(c, p1, g1, b1, n),
        || fused::<R, T>(c, p2, g2, b2, n),
    );
}

/// Runs an element-wise rule's loop compiled for the widest vector unit this
/// CPU has. Not through [`wide`]: a closure hands the loop its constants and
/// slices through a captured environment, whose pointers carry no `noalias`,
/// so the compiler reloaded every constant per element and gave up
/// vectorising (Adam fell to a fifth of the stream kernel). Functions that
/// take the slices as arguments keep it; the step bench shows the difference.
/// The arithmetic is the same IEEE operations in every version, so results
/// are bit-identical at every level and on every x86-64 machine
/// (`tests/simd_levels.rs`); only the speed differs.
#[inline]
fn leaf<R: Pointwise, T: Real>(c: &R::Consts<T>, p: &mut [T], g: &[T], b: &mut [&mut [T]]) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::simd::{active, Level};
        match active() {
            // SAFETY: `active` reports AVX-512 only when the CPU supports
            // AVX-512F, the only feature `leaf_avx512` enables.
            Level::Avx512 => return unsafe { leaf_avx512::<R, T>(c, p, g, b) },
            // SAFETY: `active` reports AVX2 only when the CPU supports it,
            // the only feature `leaf_avx2` enables.
            Level::Avx2 => return unsafe { leaf_avx2::<R, T>(c, p, g, b) },
            Level::Baseline => {}
        }
    }
    elements::<R, T>(c, p, g, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn leaf_avx2<R: Pointwise, T: Real>(
    c: &R::Consts<T>,
    p: &mut [T],
    g: &[T],
    b: &mut [&mut [T]],
) {
    elements::<R, T>(c, p, g, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn leaf_avx512<R: Pointwise, T: Real>(
    c: &R::Consts<T>,
    p: &mut [T],
    g: &[T],
    b: &mut [&mut [T]],
) {
    elements::<R, T>(c, p, g, b)
}

/// The fused loop: [`Pointwise::update`] on each element, with the rule's
/// buffers loaded into lanes and stored back. One loop per buffer count,
/// each buffer its own argument: the compiler then knows that no two slices
/// overlap, vectorises, and drops the store of a buffer the rule left as it
/// was.
#[inline(always)]
fn elements<R: Pointwise, T: Real>(c: &R::Consts<T>, p: &mut [T], g: &[T], b: &mut [&mut [T]]) {
    match b {
        [] => each0::<R, T>(c, p, g),
        [b0] => each1::<R, T>(c, p, g, b0),
        [b0, b1] => each2::<R, T>(c, p, g, b0, b1),
        [b0, b1, b2] => each3::<R, T>(c, p, g, b0, b1, b2),
        [b0, b1, b2, b3] => each4::<R, T>(c, p, g, b0, b1, b2, b3),
        [b0, b1, b2, b3, b4] => each5::<R, T>(c, p, g, b0, b1, b2, b3, b4),
        _ => unreachable!("at most MAX_BUFFERS buffers"),
    }
}

/// Defines the fused loop for one buffer count.
macro_rules! each {
    ($name:ident; $($b:ident $k:literal),*) => {
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn $name<R: Pointwise, T: Real>(c: &R::Consts<T>, p: &mut [T], g: &[T], $($b: &mut [T]),*) {
            let n = p.len();
            let g = &g[..n];
            $(let $b = &mut $b[..n];)*
            for i in 0..n {
                let mut x = p[i];
                let mut lanes = [$($b[i]),*];
                R::update(c, &mut x, g[i], &mut lanes);
                p[i] = x;
                $($b[i] = lanes[$k];)*
            }
        }
    };
}
each!(each0;);
each!(each1; b0 0);
each!(each2; b0 0, b1 1);
each!(each3; b0 0, b1 1, b2 2);
each!(each4; b0 0, b1 1, b2 2, b3 3);
each!(each5; b0 0, b1 1, b2 2, b3 3, b4 4);

/// The first `n` of a step's buffers, each cut at `mid`.
type SplitBuffers<'a, T> = ([&'a mut [T]; MAX_BUFFERS], [&'a mut [T]; MAX_BUFFERS]);

/// Splits the first `n` buffers at `mid`.
pub(crate) fn split_buffers<T>(
    mut bufs: [&mut [T]; MAX_BUFFERS],
    n: usize,
    mid: usize,
) -> SplitBuffers<'_, T> {
    let mut b1: [&mut [T]; MAX_BUFFERS] = Default::default();
    let mut b2: [&mut [T]; MAX_BUFFERS] = Default::default();
    for (k, b) in bufs.iter_mut().take(n).enumerate() {
        let (x, y) = std::mem::take(b).split_at_mut(mid);
        b1[k] = x;
        b2[k] = y;
    }
    (b1, b2)
}

/// A parameter, its gradient and its buffers, split together: what one leaf
/// of a tensor-level rule's pass works on.
pub struct Chunk<'a, T> {
    /// The parameter's elements in this chunk.
    pub p: &'a mut [T],
    /// The gradient's.
    pub g: &'a [T],
    /// The buffers' (the first `n` are in use).
    pub bufs: [&'a mut [T]; MAX_BUFFERS],
    /// Buffers in use.
    pub n: usize,
    /// Index of the chunk's first element in the tensor.
    pub start: usize,
}

impl<'a, T> Chunk<'a, T> {
    /// A chunk over the whole tensor: `buffers` are the first `n` of a
    /// step's buffers that have the parameter's length.
    pub fn whole(p: &'a mut [T], g: &'a [T], bufs: [&'a mut [T]; MAX_BUFFERS], n: usize) -> Self {
        Chunk {
            p,
            g,
            bufs,
            n,
            start: 0,
        }
    }

    /// The same chunk, borrowed again, for a second pass.
    pub fn reborrow(&mut self) -> Chunk<'_, T> {
        let mut bufs: [&mut [T]; MAX_BUFFERS] = Default::default();
        for (k, b) in self.bufs.iter_mut().take(self.n).enumerate() {
            bufs[k] = &mut **b;
        }
        Chunk {
            p: &mut *self.p,
            g: self.g,
            bufs,
            n: self.n,
            start: self.start,
        }
    }

    fn split(self, mid: usize) -> (Chunk<'a, T>, Chunk<'a, T>) {
        let (p1, p2) = self.p.split_at_mut(mid);
        let (g1, g2) = self.g.split_at(mid);
        let (b1, b2) = split_buffers(self.bufs, self.n, mid);
        (
            Chunk {
                p: p1,
                g: g1,
                bufs: b1,
                n: self.n,
                start: self.start,
            },
            Chunk {
                p: p2,
                g: g2,
                bufs: b2,
                n: self.n,
                start: self.start + mid,
            },
        )
    }
}

/// Applies `leaf` to chunks of a tensor in parallel and sums what it returns.
/// The split depends only on the length (it happens even on one thread), so
/// the rounding of the sum, and everything computed from it, is the same
/// for any number of threads. Each leaf runs compiled for the widest vector
/// unit. Buffers that do not have the parameter's length (a rule's row or
/// column statistics) are not split: leave them out of `bufs`.
pub fn par_reduce<T: Real, A: Send + Copy>(
    chunk: Chunk<'_, T>,
    leaf: &(impl Fn(Chunk<'_, T>) -> A + Sync),
    combine: fn(A, A) -> A,
) -> A {
    if chunk.p.len() <= 2 * PARALLEL_LEAF {
        return wide(|| leaf(chunk));
    }
    let mid = (chunk.p.len() / 2) & !63;
    let (a, b) = chunk.split(mid);
    let (x, y) = rayon::join(
        || par_reduce(a, leaf, combine),
        || par_reduce(b, leaf, combine),
    );
    combine(x, y)
}

/// `Σ xᵢ²` accumulated in 16 lanes of `T` (so the loop vectorises), the
/// lanes summed in `f64`.
#[inline(always)]
pub fn sum_squares<T: Real>(x: &[T]) -> f64 {
    let mut acc = [T::zero(); 16];
    let mut lanes = x.chunks_exact(16);
    for c in &mut lanes {
        for k in 0..16 {
            acc[k] = acc[k] + c[k] * c[k];
        }
    }
    let tail: f64 = lanes
        .remainder()
        .iter()
        .map(|&v| v.to_f64() * v.to_f64())
        .sum();
    acc.iter().map(|&a| a.to_f64()).sum::<f64>() + tail
}

/// `Σ gᵢ²` of a whole slice: blocks of 4096 in [`sum_squares`], each
/// compiled for the widest vector unit, summed in `f64`. Long slices are
/// split in halves across rayon's threads; the split depends only on the
/// length (it happens even on one thread), so the result is the same for
/// any number of threads.
pub fn norm_squared<T: Real>(g: &[T]) -> f64 {
    const SPLIT: usize = 1 << 16;
    if g.len() > 2 * SPLIT {
        let mid = (g.len() / 2) & !4095;
        let (a, b) = rayon::join(|| norm_squared(&g[..mid]), || norm_squared(&g[mid..]));
        return a + b;
    }
    g.chunks(4096)
        .map(|block| wide(|| sum_squares(block)))
        .sum()
}

/// Runs `f(start, chunk)` on disjoint chunks of `a` in parallel, `start`
/// being the chunk's first index: for element-wise work, whose result
/// does not depend on the split.
pub fn par_chunks<T: Send>(a: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;
    a.par_chunks_mut(PARALLEL_LEAF)
        .enumerate()
        .for_each(|(i, c)| wide(|| f(i * PARALLEL_LEAF, c)));
}

/// `f(aᵢ, bᵢ)` for every pair, in parallel (element-wise).
pub fn par_zip<T: Send, U: Sync>(a: &mut [T], b: &[U], f: impl Fn(&mut T, &U) + Sync) {
    par_chunks(a, |start, chunk| {
        for (x, y) in chunk.iter_mut().zip(&b[start..]) {
            f(x, y);
        }
    });
}

/// `Σ f(aᵢ, bᵢ)²` over two slices of one length, accumulated exactly as
/// [`sum_squares_of`] does (16 lanes of `T` over whole blocks, the tail in
/// `f64`), but over zipped blocks, which vectorises where indexing through
/// a closure does not.
#[inline(always)]
pub fn sum_squares_zip<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [T::zero(); 16];
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for k in 0..16 {
            let u = f(x[k], y[k]);
            acc[k] = acc[k] + u * u;
        }
    }
    let full = len / 16 * 16;
    let tail: f64 = (full..len)
        .map(|i| {
            let u = f(a[i], b[i]).to_f64();
            u * u
        })
        .sum();
    acc.iter().map(|&a| a.to_f64()).sum::<f64>() + tail
}

/// `Σ f(i)²` for `i` in `0..n`, calling `f` once per index in order (it
/// may update state as it goes), accumulated like [`sum_squares`].
#[inline(always)]
pub fn sum_squares_of<T: Real>(n: usize, mut f: impl FnMut(usize) -> T) -> f64 {
    let mut acc = [T::zero(); 16];
    let full = n / 16 * 16;
    let mut i = 0;
    while i < full {
        for (k, a) in acc.iter_mut().enumerate() {
            let x = f(i + k);
            *a = *a + x * x;
        }
        i += 16;
    }
    let tail: f64 = (full..n)
        .map(|j| {
            let x = f(j).to_f64();
            x * x
        })
        .sum();
    acc.iter().map(|&a| a.to_f64()).sum::<f64>() + tail
}

/// Whether a block holds a NaN or an infinity. `x − x` is 0 for finite `x`
/// and NaN otherwise; summing it in 16 lanes lets the compiler vectorise the
/// scan, so it runs at memory speed.
#[inline(always)]
fn block_has_non_finite<T: Real>(block: &[T]) -> bool {
    let mut acc = [T::zero(); 16];
    let mut lanes = block.chunks_exact(16);
    for c in &mut lanes {
        for k in 0..16 {
            let x = c[k];
            #[allow(clippy::eq_op)]
            let zero_if_finite = x - x;
            acc[k] = acc[k] + zero_if_finite;
        }
    }
    lanes.remainder().iter().any(|x| !x.is_finite()) || acc.iter().any(|a| *a != T::zero())
}

/// Index of the first NaN or infinity. Large gradients are scanned on all of
/// rayon's threads (the check must keep up with the parallel update); only
/// when something is found is the first position looked for, serially.
pub fn first_non_finite<T: Real>(g: &[T]) -> Option<usize> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 14;
    let scan = |b: &[T]| wide(|| block_has_non_finite(b));
    let found = if g.len() >= 2 * PARALLEL_LEAF && rayon::current_num_threads() > 1 {
        g.par_chunks(BLOCK).any(scan)
    } else {
        g.chunks(BLOCK).any(scan)
    };
    if found {
        g.iter().position(|x| !x.is_finite())
    } else {
        None
    }
}
