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

use crate::Real;
use std::any::TypeId;
use std::sync::atomic::{AtomicUsize, Ordering};
use thiserror::Error;

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

/// Why [`gemm()`] refused a product. Nothing was read or written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MatmulError {
    /// An operand's leading dimension is shorter than one of its stored rows.
    #[error("matmul: {operand} has leading dimension {ld}, less than its stored row length {min}")]
    LeadingDimension {
        /// `"A"`, `"B"` or `"C"`.
        operand: &'static str,
        /// The leading dimension given.
        ld: usize,
        /// The length of one stored row.
        min: usize,
    },
    /// A leading dimension whose stride in bytes does not fit in an `isize`:
    /// the backend walks rows with pointer offsets, which must.
    #[error("matmul: {operand} has leading dimension {ld}, more than the largest stride {max}")]
    StrideTooLarge {
        /// `"A"`, `"B"` or `"C"`.
        operand: &'static str,
        /// The leading dimension given.
        ld: usize,
        /// The largest leading dimension allowed for this element type.
        max: usize,
    },
    /// The number of elements an operand spans, `(rows − 1)·ld + row length`,
    /// does not fit in a `usize`.
    #[error(
        "matmul: {operand} spans {rows} stored rows of leading dimension {ld}: the size overflows"
    )]
    SizeOverflow {
        /// `"A"`, `"B"` or `"C"`.
        operand: &'static str,
        /// Stored rows.
        rows: usize,
        /// The leading dimension given.
        ld: usize,
    },
    /// An operand's slice is shorter than the elements it must hold.
    #[error("matmul: {operand} has {len} elements, needs {needed}")]
    TooShort {
        /// `"A"`, `"B"` or `"C"`.
        operand: &'static str,
        /// The slice's length.
        len: usize,
        /// The elements the operand spans.
        needed: usize,
    },
    /// The element type is not one the backend computes in (`f32`, `f64`).
    #[error("matmul: the backend computes in f32 and f64, not {0}")]
    UnsupportedType(&'static str),
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
    /// (row stride, column stride) of the logical (possibly transposed)
    /// matrix. `ld` must have passed [`Mat::check`], so it fits in an `isize`.
    fn strides(&self) -> (isize, isize) {
        let ld = self.ld as isize;
        match self.op {
            Op::N => (ld, 1),
            Op::T => (1, ld),
        }
    }
    /// Checks that the logical `rows × cols` matrix lies inside `data` and that
    /// its strides fit the backend's pointer arithmetic (see [`check_block`]).
    fn check(&self, rows: usize, cols: usize, operand: &'static str) -> Result<(), MatmulError> {
        let (sr, sc) = match self.op {
            Op::N => (rows, cols),
            Op::T => (cols, rows),
        };
        check_block::<T>(sr, sc, self.ld, self.data.len(), operand)
    }
}

/// Checks one operand stored as `rows` rows of `cols` elements, `ld` apart, in a
/// slice of `len` elements of `T`: `ld ≥ cols`, `ld · size_of::<T>() ≤
/// isize::MAX`, and `(rows − 1)·ld + cols ≤ len` computed without overflow. An
/// empty operand (`rows` or `cols` zero) is never read or written, so any slice
/// and leading dimension will do.
///
/// This is what makes the backend's raw pointer arithmetic sound: every element
/// `(i, j)` it touches lies at offset `i·ld + j < len` inside the slice, a slice
/// never spans more than `isize::MAX` bytes, so every element offset, and the
/// stride itself, fits in an `isize` when counted in bytes.
fn check_block<T>(
    rows: usize,
    cols: usize,
    ld: usize,
    len: usize,
    operand: &'static str,
) -> Result<(), MatmulError> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    if ld < cols {
        return Err(MatmulError::LeadingDimension {
            operand,
            ld,
            min: cols,
        });
    }
    let max = max_ld::<T>();
    if ld > max {
        return Err(MatmulError::StrideTooLarge { operand, ld, max });
    }
    let needed = (rows - 1)
        .checked_mul(ld)
        .and_then(|x| x.checked_add(cols))
        .ok_or(MatmulError::SizeOverflow { operand, rows, ld })?;
    if needed > len {
        return Err(MatmulError::TooShort {
            operand,
            len,
            needed,
        });
    }
    Ok(())
}

/// The largest leading dimension whose stride in bytes fits in an `isize`.
fn max_ld<T>() -> usize {
    isize::MAX as usize / std::mem::size_of::<T>().max(1)
}

/// Whether the backend computes in `T`: `gemm::gemm` panics for any other type.
fn backend_supports<T: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>()
}

/// `C = A·B` (or `C += A·B` when `accumulate`), with `A` logically `m × k`, `B`
/// logically `k × n` and `C` an `m × n` row-major block with leading dimension `ldc`.
///
/// Every operand is checked before anything is read or written (a few integer
/// operations per call, none per element).
///
/// # Errors
///
/// [`MatmulError`] if an operand does not fit its slice, a leading dimension is
/// shorter than a stored row or too large for pointer arithmetic (its stride in
/// bytes over `isize::MAX`), a size computed from the arguments overflows, or
/// `T` is neither `f32` nor `f64`. `C` is then untouched.
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
) -> Result<(), MatmulError> {
    if !backend_supports::<T>() {
        return Err(MatmulError::UnsupportedType(std::any::type_name::<T>()));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    check_block::<T>(m, n, ldc, c.len(), "C")?;
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(T::zero());
            }
        }
        return Ok(());
    }
    a.check(m, k, "A")?;
    b.check(k, n, "B")?;
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
        // `check_block` bounded `ldc` by `isize::MAX / size_of::<T>()`.
        ldc: ldc as isize,
        accumulate,
    };
    // Splitting the output into one block per thread, each computed by the
    // single-threaded kernel, measured faster than the backend's own threading
    // for these shapes, and it never changes the summation order (results do not
    // depend on the thread count).
    if threads <= 1 || m.saturating_mul(n).saturating_mul(k) < PAR_MIN_WORK {
        // SAFETY: the whole product, rows 0..m and columns 0..n, is the block the
        // checks above proved to lie inside `a`, `b` and `c` with strides that
        // fit in an isize; no other thread runs (`run` returns before `c`'s
        // exclusive borrow ends).
        unsafe { raw.run(0, m, 0, n, k) };
        return Ok(());
    }
    let parts = threads;
    if n >= m {
        let step = n.div_ceil(parts).next_multiple_of(16).min(n);
        // SAFETY: `blocks` covers columns 0..n of rows 0..m in disjoint ranges
        // of `step` columns, inside the checked m × n block.
        unsafe {
            raw.blocks(
                0..n.div_ceil(step),
                &|p| (0, m, p * step, ((p + 1) * step).min(n)),
                k,
            )
        };
    } else {
        let step = m.div_ceil(parts).next_multiple_of(8).min(m);
        // SAFETY: as above, by rows.
        unsafe {
            raw.blocks(
                0..m.div_ceil(step),
                &|p| (p * step, ((p + 1) * step).min(m), 0, n),
                k,
            )
        };
    }
    Ok(())
}

/// The message of an `expect` on a product whose buffers the caller sized
/// itself from shapes it validated (the training engine's layers, Muon's
/// workspace): an error there is a bug in the caller (a panic, never an
/// out-of-bounds access).
pub const SHAPES_CHECKED: &str = "matmul: a buffer does not match the shapes its caller validated";

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

// SAFETY: a `Raw` lives only inside one `gemm` call and is shared only with the
// threads of a `rayon::scope` that ends before that call returns, so the borrows
// its pointers came from outlive every use. Through it, threads read `a` and `b`
// (shared data: needs `T: Sync`) and each writes its own disjoint block of `c`
// (values handed to another thread: needs `T: Send`); `run`'s contract forbids
// two threads the same block.
unsafe impl<T: Send + Sync> Sync for Raw<T> {}

impl<T: Real> Raw<T> {
    /// Computes the blocks `range` (block `p` is rows `r0..r1`, columns
    /// `c0..c1` of `C`, from `block(p)`) on the pool, split in halves by
    /// `rayon::join`, which allocates nothing (a scope's spawns box each job).
    ///
    /// # Safety
    /// Every block must satisfy [`Raw::run`]'s contract, and different blocks
    /// must be disjoint.
    unsafe fn blocks(
        &self,
        range: std::ops::Range<usize>,
        block: &(impl Fn(usize) -> (usize, usize, usize, usize) + Sync),
        k: usize,
    ) {
        if range.len() == 1 {
            let (r0, r1, c0, c1) = block(range.start);
            // SAFETY: forwarded from this function's contract.
            unsafe { self.run(r0, r1, c0, c1, k) };
            return;
        }
        let mid = range.start + range.len() / 2;
        rayon::join(
            // SAFETY: the two halves hold disjoint blocks; forwarded contract.
            || unsafe { self.blocks(range.start..mid, block, k) },
            // SAFETY: as above.
            || unsafe { self.blocks(mid..range.end, block, k) },
        );
    }

    /// Computes rows `r0..r1`, columns `c0..c1` of `C` on the calling thread.
    ///
    /// # Safety
    /// The block must lie inside the `m × n` product whose operands [`gemm`]
    /// checked (`r1 ≤ m`, `c1 ≤ n`, with that `k`), those borrows must still be
    /// live, and no other thread may touch the same block of `C` at the same time.
    unsafe fn run(&self, r0: usize, r1: usize, c0: usize, c1: usize, k: usize) {
        if r1 <= r0 || c1 <= c0 {
            return;
        }
        BACKEND_CALLS.fetch_add(1, Ordering::Relaxed);
        let (r0i, c0i) = (r0 as isize, c0 as isize);
        // SAFETY: by this function's contract the block lies inside operands that
        // `check_block` validated: element (i, j) of the block is at element
        // offset (r0+i)·ldc + c0+j < c.len() of `C`, and the rows of `A` and
        // columns of `B` it reads lie inside their slices likewise, so every
        // offset below, and every one the backend forms from these strides, stays
        // inside one live allocation and fits in an isize in bytes. `C` is an
        // exclusive borrow, so it overlaps neither `A` nor `B`; only this thread
        // writes this block. `T` is f32 or f64 (checked by `gemm`), the types the
        // backend dispatches on.
        unsafe {
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
            )
            .unwrap();
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
            )
            .unwrap();
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 1e-12, "accumulate {ta:?}{tb:?}");
            }
        }
    }

    /// A 1 × 1 × 1 product of f64 operands.
    fn one(a: Mat<'_, f64>, b: Mat<'_, f64>, c: &mut [f64], ldc: usize) -> Result<(), MatmulError> {
        gemm(1, 1, 1, a, b, c, ldc, false, Par::Seq)
    }

    /// Leading dimensions that do not fit the backend's pointer offsets.
    const HUGE_LDS: [usize; 4] = [
        usize::MAX,
        isize::MAX as usize + 1,
        // These fit in an isize, but not once counted in bytes (8 per f64).
        isize::MAX as usize,
        isize::MAX as usize / 8 + 1,
    ];

    #[test]
    fn a_leading_dimension_too_large_for_pointer_offsets_is_an_error() {
        // One stored row: the old check, (rows − 1)·ld + cols ≤ len, passed for
        // any ld, which then reached the backend as a negative or overflowing
        // isize stride.
        let (x, y) = ([2.0], [3.0]);
        for ld in HUGE_LDS {
            let mut c = [7.0];
            for op in [Op::N, Op::T] {
                let a = Mat {
                    data: &x[..],
                    ld,
                    op,
                };
                let err = one(a, Mat::n(&y, 1), &mut c, 1).unwrap_err();
                assert!(
                    matches!(err, MatmulError::StrideTooLarge { operand: "A", .. }),
                    "{err}"
                );
                let b = Mat {
                    data: &y[..],
                    ld,
                    op,
                };
                let err = one(Mat::n(&x, 1), b, &mut c, 1).unwrap_err();
                assert!(
                    matches!(err, MatmulError::StrideTooLarge { operand: "B", .. }),
                    "{err}"
                );
            }
            let err = one(Mat::n(&x, 1), Mat::n(&y, 1), &mut c, ld).unwrap_err();
            assert!(
                matches!(err, MatmulError::StrideTooLarge { operand: "C", .. }),
                "{err}"
            );
            assert_eq!(c, [7.0], "C was written");
        }
        // The largest stride allowed still works.
        let big = max_ld::<f64>();
        let mut c = [7.0];
        one(Mat::n(&x, big), Mat::t(&y, big), &mut c, big).unwrap();
        assert_eq!(c, [6.0]);
    }

    #[test]
    fn a_span_that_overflows_usize_is_an_error() {
        // 33 stored rows 2^59 elements apart span 32·2^59 + 1 > 2^64 elements:
        // the old unchecked (rows − 1)·ld + cols wrapped to 1 and passed.
        let ld = 1usize << 59;
        let x = [1.0; 33];
        let mut c = [5.0; 33];
        let span = |operand| MatmulError::SizeOverflow {
            operand,
            rows: 33,
            ld,
        };
        let r = gemm(
            33,
            1,
            1,
            Mat::n(&x, 1),
            Mat::n(&x, 1),
            &mut c,
            ld,
            false,
            Par::Seq,
        );
        assert_eq!(r, Err(span("C")));
        let r = gemm(
            33,
            1,
            1,
            Mat::n(&x, ld),
            Mat::n(&x, 1),
            &mut c,
            1,
            false,
            Par::Seq,
        );
        assert_eq!(r, Err(span("A")));
        let r = gemm(
            1,
            1,
            33,
            Mat::t(&x, ld),
            Mat::n(&x, 1),
            &mut c,
            1,
            false,
            Par::Seq,
        );
        assert_eq!(r, Err(span("A")));
        let r = gemm(
            1,
            1,
            33,
            Mat::n(&x, 33),
            Mat::n(&x, ld),
            &mut c,
            1,
            false,
            Par::Seq,
        );
        assert_eq!(r, Err(span("B")));
        let r = gemm(
            1,
            33,
            1,
            Mat::n(&x, 1),
            Mat::t(&x, ld),
            &mut c,
            33,
            false,
            Par::Pool,
        );
        assert_eq!(r, Err(span("B")));
        assert_eq!(c, [5.0; 33], "C was written");
    }

    #[test]
    fn huge_sizes_are_errors_not_panics() {
        let x = [1.0f32; 4];
        let mut c = [3.0f32; 4];
        let a = Mat::n(&x, 1);
        // m·ldc overflows: 2^40 rows of 2^40 (the old check wrapped to 0 ≤ len).
        let e = 1usize << 40;
        let r = gemm(e, e, 1, a, a, &mut c, e, false, Par::Pool);
        assert!(
            matches!(r, Err(MatmulError::SizeOverflow { operand: "C", .. })),
            "{r:?}"
        );
        // Every size at its largest.
        let max = usize::MAX;
        let r = gemm(max, max, max, a, a, &mut c, max, true, Par::Pool);
        assert!(
            matches!(r, Err(MatmulError::StrideTooLarge { operand: "C", .. })),
            "{r:?}"
        );
        let r = gemm(max, 1, 1, a, a, &mut c, 1, false, Par::Pool);
        assert_eq!(
            r,
            Err(MatmulError::TooShort {
                operand: "C",
                len: 4,
                needed: max
            })
        );
        let r = gemm(1, 1, max, a, a, &mut c, 1, false, Par::Seq);
        assert_eq!(
            r,
            Err(MatmulError::LeadingDimension {
                operand: "A",
                ld: 1,
                min: max
            })
        );
        let r = gemm(
            1,
            1,
            max,
            Mat::t(&x, 1),
            Mat::t(&x, max),
            &mut c,
            1,
            false,
            Par::Seq,
        );
        assert!(
            matches!(r, Err(MatmulError::TooShort { operand: "A", .. })),
            "{r:?}"
        );
        let r = gemm(1, max, 1, a, a, &mut c, max, false, Par::Seq);
        assert!(
            matches!(r, Err(MatmulError::StrideTooLarge { operand: "C", .. })),
            "{r:?}"
        );
        let r = gemm(2, 2, 2, a, a, &mut c, 2, false, Par::Seq);
        assert!(
            matches!(r, Err(MatmulError::LeadingDimension { operand: "A", .. })),
            "{r:?}"
        );
        assert_eq!(c, [3.0; 4], "C was written");
        // Errors are one line, as the command line prints them.
        for e in [
            MatmulError::SizeOverflow {
                operand: "C",
                rows: 2,
                ld: 3,
            },
            MatmulError::StrideTooLarge {
                operand: "A",
                ld: max,
                max: 1,
            },
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn an_empty_product_touches_nothing_and_k_zero_clears_only_the_block() {
        let x = [1.0; 4];
        let mut c = [9.0; 8];
        // m or n zero: nothing to check or write, whatever the leading dimensions.
        let huge = Mat::n(&x, usize::MAX);
        gemm(0, 3, 2, huge, huge, &mut c, usize::MAX, false, Par::Seq).unwrap();
        gemm(3, 0, 2, huge, huge, &mut c, usize::MAX, false, Par::Seq).unwrap();
        assert_eq!(c, [9.0; 8]);
        // k zero: C = 0 on the 3 × 2 block of leading dimension 3; the gaps stay.
        gemm(3, 2, 0, huge, huge, &mut c, 3, true, Par::Seq).unwrap();
        assert_eq!(c, [9.0; 8]);
        gemm(3, 2, 0, huge, huge, &mut c, 3, false, Par::Seq).unwrap();
        assert_eq!(c, [0.0, 0.0, 9.0, 0.0, 0.0, 9.0, 0.0, 0.0]);
        // k zero still checks C.
        let r = gemm(3, 2, 0, huge, huge, &mut c, usize::MAX, false, Par::Seq);
        assert!(matches!(
            r,
            Err(MatmulError::StrideTooLarge { operand: "C", .. })
        ));
    }

    #[test]
    fn only_the_backend_types_are_accepted() {
        // `gemm::gemm` panics for any other type; `gemm` refuses it first.
        assert!(backend_supports::<f32>() && backend_supports::<f64>());
        assert!(!backend_supports::<u32>() && !backend_supports::<i64>());
    }
}
