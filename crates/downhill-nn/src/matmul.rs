//! The one place where matrix products are computed, so the backend can be swapped.
//!
//! Every matrix here is row-major with an explicit leading dimension (the distance
//! between consecutive rows). An operand may be used transposed ([`Op::T`]), which
//! is how the backward passes read `Xᵀ` and `Wᵀ` without copying.
//!
//! The backend is the pure-Rust `gemm` crate, built with its `x86-v4` feature:
//! that compiles AVX-512 micro-kernels and selects them at run time only when the
//! CPU reports `avx512f` (AVX2+FMA or scalar kernels otherwise), so the build stays
//! portable to any x86-64. The example `gemm_shapes` measures the engine's shapes.
//!
//! Alternatives measured on the development machine (Sapphire-Rapids-class, one
//! thread, MLP shapes): gemm's default kernels about half the AVX-512 speed;
//! Debian's OpenBLAS 0.3.21 ~12 GFLOP/s as shipped (it does not recognise the CPU
//! and falls back to generic kernels) and on par with gemm when forced to its
//! SkylakeX kernels (`OPENBLAS_CORETYPE=SKYLAKEX`). So there is no system-library
//! backend; another one would slot in behind [`gemm()`] alone.
//!
//! gemm's own threading scaled poorly for these shapes; splitting the output into
//! one block per thread, each run single-threaded, measured 1.4–2× faster.

use downhill::Real;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Backend calls so far (each thread's block counts once).
static BACKEND_CALLS: AtomicUsize = AtomicUsize::new(0);

/// How many times the backend kernel has been called in this process.
///
/// Diagnostics: the backend allocates its packing buffers on each call (at most
/// two allocations), so the allocation test bounds a step's allocations by this.
pub fn backend_calls() -> usize {
    BACKEND_CALLS.load(Ordering::Relaxed)
}

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// How many threads one product may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Par {
    /// The calling thread only (used inside work that is already split across threads).
    Seq,
    /// All threads of the current rayon pool.
    Pool,
}

/// A row-major matrix operand: `data`, its leading dimension `ld`, and how it is used.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, T> {
    /// Backing storage (row-major).
    pub data: &'a [T],
    /// Distance between the starts of consecutive stored rows.
    pub ld: usize,
    /// Used as stored or transposed.
    pub op: Op,
}

impl<'a, T> Mat<'a, T> {
    /// A matrix used as stored.
    pub fn n(data: &'a [T], ld: usize) -> Self {
        Mat {
            data,
            ld,
            op: Op::N,
        }
    }
    /// A matrix used transposed.
    pub fn t(data: &'a [T], ld: usize) -> Self {
        Mat {
            data,
            ld,
            op: Op::T,
        }
    }
    /// (row stride, column stride) of the logical (possibly transposed) matrix.
    fn strides(&self) -> (isize, isize) {
        match self.op {
            Op::N => (self.ld as isize, 1),
            Op::T => (1, self.ld as isize),
        }
    }
    /// Panics unless the logical `rows × cols` matrix lies inside `data`; the
    /// backend reads through raw pointers, so this check is what keeps it sound.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let (sr, sc) = match self.op {
            Op::N => (rows, cols),
            Op::T => (cols, rows),
        };
        assert!(
            self.ld >= sc,
            "matmul: {what} leading dimension {} < {sc}",
            self.ld
        );
        assert!(
            (sr - 1) * self.ld + sc <= self.data.len(),
            "matmul: {what} has {} elements, needs {}",
            self.data.len(),
            (sr - 1) * self.ld + sc
        );
    }
}

/// `C = A·B` (or `C += A·B` when `accumulate`), with `A` logically `m × k`, `B`
/// logically `k × n` and `C` an `m × n` row-major block with leading dimension `ldc`.
///
/// Panics if an operand does not fit its slice: callers size every buffer from
/// shapes validated when the network was built, so a panic here is a bug.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    c: &mut [T],
    ldc: usize,
    accumulate: bool,
    par: Par,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && (m - 1) * ldc + n <= c.len(),
        "matmul: C too small"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                c[r * ldc..r * ldc + n].fill(T::zero());
            }
        }
        return;
    }
    a.check(m, k, "A");
    b.check(k, n, "B");
    let (ars, acs) = a.strides();
    let (brs, bcs) = b.strides();
    let threads = match par {
        Par::Seq => 1,
        Par::Pool => rayon::current_num_threads(),
    };
    let raw = Raw {
        a: a.data.as_ptr(),
        ars,
        acs,
        b: b.data.as_ptr(),
        brs,
        bcs,
        c: c.as_mut_ptr(),
        ldc: ldc as isize,
        accumulate,
    };
    // Splitting the output into one block per thread, each computed by the
    // single-threaded kernel, measured faster than the backend's own threading
    // for these shapes, and it never changes the summation order (results do not
    // depend on the thread count).
    if threads <= 1 || m * n * k < PAR_MIN_WORK {
        // SAFETY: the asserts above prove every element touched lies inside the
        // slices; `c` is borrowed mutably, so nothing aliases it.
        unsafe { raw.run(0, m, 0, n, k) };
        return;
    }
    let parts = threads;
    if n >= m {
        let step = n.div_ceil(parts).next_multiple_of(16).min(n);
        let blocks = n.div_ceil(step);
        rayon::scope(|s| {
            for p in 0..blocks {
                let raw = &raw;
                s.spawn(move |_| unsafe { raw.run(0, m, p * step, ((p + 1) * step).min(n), k) });
            }
        });
    } else {
        let step = m.div_ceil(parts).next_multiple_of(8).min(m);
        let blocks = m.div_ceil(step);
        rayon::scope(|s| {
            for p in 0..blocks {
                let raw = &raw;
                s.spawn(move |_| unsafe { raw.run(p * step, ((p + 1) * step).min(m), 0, n, k) });
            }
        });
    }
}

/// Below this many multiply-adds a product runs on one thread: handing work to
/// another thread costs a few microseconds.
const PAR_MIN_WORK: usize = 1 << 20;

/// Raw operands of one product, shared by the threads that compute disjoint blocks.
struct Raw<T> {
    a: *const T,
    ars: isize,
    acs: isize,
    b: *const T,
    brs: isize,
    bcs: isize,
    c: *mut T,
    ldc: isize,
    accumulate: bool,
}

// SAFETY: threads only read `a`/`b` and write disjoint blocks of `c`.
unsafe impl<T: Sync> Sync for Raw<T> {}
unsafe impl<T: Send> Send for Raw<T> {}

impl<T: Real> Raw<T> {
    /// Computes rows `r0..r1`, columns `c0..c1` of `C` on the calling thread.
    ///
    /// # Safety
    /// The block must lie inside the operands checked by [`gemm`], and no other
    /// thread may touch the same block of `C` at the same time.
    unsafe fn run(&self, r0: usize, r1: usize, c0: usize, c1: usize, k: usize) {
        if r1 <= r0 || c1 <= c0 {
            return;
        }
        BACKEND_CALLS.fetch_add(1, Ordering::Relaxed);
        let (r0i, c0i) = (r0 as isize, c0 as isize);
        gemm::gemm(
            r1 - r0,
            c1 - c0,
            k,
            self.c.offset(r0i * self.ldc + c0i),
            1,
            self.ldc,
            self.accumulate,
            self.a.offset(r0i * self.ars),
            self.acs,
            self.ars,
            self.b.offset(c0i * self.bcs),
            self.bcs,
            self.brs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &dyn Fn(usize, usize) -> f64,
        b: &dyn Fn(usize, usize) -> f64,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_naive_product() {
        let (m, n, k) = (7, 5, 9);
        let av: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let bv: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        for (ta, tb) in [
            (Op::N, Op::N),
            (Op::T, Op::N),
            (Op::N, Op::T),
            (Op::T, Op::T),
        ] {
            let (a, lda) = match ta {
                Op::N => (av.clone(), k),
                Op::T => (
                    (0..k * m)
                        .map(|i| av[(i % m) * k + i / m])
                        .collect::<Vec<_>>(),
                    m,
                ),
            };
            let (b, ldb) = match tb {
                Op::N => (bv.clone(), n),
                Op::T => (
                    (0..n * k)
                        .map(|i| bv[(i % k) * n + i / k])
                        .collect::<Vec<_>>(),
                    k,
                ),
            };
            let want = naive(m, n, k, &|i, p| av[i * k + p], &|p, j| bv[p * n + j]);
            let mut c = vec![1.0; m * n];
            gemm(
                m,
                n,
                k,
                Mat {
                    data: &a,
                    ld: lda,
                    op: ta,
                },
                Mat {
                    data: &b,
                    ld: ldb,
                    op: tb,
                },
                &mut c,
                n,
                false,
                Par::Seq,
            );
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-12, "{ta:?}{tb:?}: {x} vs {y}");
            }
            gemm(
                m,
                n,
                k,
                Mat {
                    data: &a,
                    ld: lda,
                    op: ta,
                },
                Mat {
                    data: &b,
                    ld: ldb,
                    op: tb,
                },
                &mut c,
                n,
                true,
                Par::Pool,
            );
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 1e-12, "accumulate {ta:?}{tb:?}");
            }
        }
    }
}
