//! Matrix products on the `gemm` crate, cut into blocks by shape.

use super::{backend_supports, check_block, Mat, MatmulError, Par, BACKEND_CALLS};
use crate::Real;
use std::sync::atomic::Ordering;

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
    match par {
        // SAFETY: the whole product, rows 0..m and columns 0..n, is the block
        // the checks above proved to lie inside `a`, `b` and `c` with strides
        // that fit in an isize; no other thread runs (`run` returns before
        // `c`'s exclusive borrow ends).
        Par::Seq => unsafe { raw.run(0, m, 0, n, k) },
        Par::Pool => {
            let plan = Blocks::of(m, n, k);
            // SAFETY: `plan`'s blocks are disjoint and cover the checked
            // m × n product; `blocks` hands each block to one thread.
            unsafe { raw.blocks(&plan, 0..plan.count, k) }
        }
    }
    Ok(())
}

/// How a [`Par::Pool`] product's output is cut into blocks, each computed
/// by one call of the backend's single-threaded kernel: a function of the
/// shape alone.
///
/// The backend chooses its kernels and its blocking of `k` from the shape
/// of the block it is given, so the bits of an output element depend on the
/// block it falls in. Cutting by the thread count made results depend on
/// it (`--threads 1` and `--threads 2` trained different models); a cut
/// that depends only on `(m, n, k)` gives every thread count the same bits,
/// and the threads share the blocks. ([`Par::Seq`] products, used inside
/// work already split over threads, are one block: their bits depend on the
/// shape too, and a call site always uses the same `Par`.)
///
/// Splitting the output, each block single-threaded, also measured
/// 1.4–2× faster than the backend's own threading for the engine's shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blocks {
    /// Cut along columns (else along rows).
    by_columns: bool,
    /// Columns (or rows) per block; the last block may be shorter.
    step: usize,
    /// How many blocks.
    count: usize,
    m: usize,
    n: usize,
}

impl Blocks {
    /// The longer side of the output is cut into blocks of about
    /// [`BLOCK_WORK`] multiply-adds, at least [`MIN_SIDE`] wide (so packing
    /// an operand again for each block stays cheap) and at most
    /// [`MAX_BLOCKS`] of them, rounded to the kernels' tile (16 columns, 8
    /// rows). Products under [`PAR_MIN_WORK`] are one block.
    fn of(m: usize, n: usize, k: usize) -> Self {
        let one = Blocks {
            by_columns: true,
            step: n,
            count: 1,
            m,
            n,
        };
        if m.saturating_mul(n).saturating_mul(k) < PAR_MIN_WORK {
            return one;
        }
        let by_columns = n >= m;
        let (long, short, tile) = if by_columns { (n, m, 16) } else { (m, n, 8) };
        let per_line = short.saturating_mul(k).max(1);
        let step = (BLOCK_WORK / per_line)
            .max(MIN_SIDE)
            .max(long.div_ceil(MAX_BLOCKS))
            .next_multiple_of(tile)
            .min(long);
        Blocks {
            by_columns,
            step,
            count: long.div_ceil(step),
            m,
            n,
        }
    }

    /// Block `p`: rows `r0..r1`, columns `c0..c1` of the output.
    fn block(&self, p: usize) -> (usize, usize, usize, usize) {
        let (s, e) = (p * self.step, ((p + 1) * self.step));
        if self.by_columns {
            (0, self.m, s, e.min(self.n))
        } else {
            (s, e.min(self.m), 0, self.n)
        }
    }
}

/// Multiply-adds per block, about: enough that handing a block to another
/// thread (a few microseconds) costs little, small enough that two or three
/// threads get several blocks each on the engine's shapes.
const BLOCK_WORK: usize = 1 << 21;

/// The narrowest block side: each block packs the other operand again.
const MIN_SIDE: usize = 64;

/// The most blocks a product is cut into, so at most this many threads
/// share one product. Each block packs the other operand again: on the
/// MLP's shapes with 2 threads, up to 8 blocks measured within run-to-run
/// spread of one block per thread, up to 16 a few percent slower
/// (docs/book/src/performance.md).
const MAX_BLOCKS: usize = 8;

/// Below this many multiply-adds a product is one block, on one thread:
/// handing work to another thread costs a few microseconds.
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
    /// Computes the blocks `range` of `plan` on the pool, split in halves
    /// by `rayon::join`, which allocates nothing (a scope's spawns box each
    /// job). Which thread computes a block does not change its bits.
    ///
    /// # Safety
    /// `plan` must cut the product whose operands [`gemm`] checked (see
    /// [`Raw::run`]).
    unsafe fn blocks(&self, plan: &Blocks, range: std::ops::Range<usize>, k: usize) {
        if range.len() <= 1 {
            if range.len() == 1 {
                // SAFETY: forwarded from this function's contract.
                unsafe { self.run_block(plan, range.start, k) };
            }
            return;
        }
        let mid = range.start + range.len() / 2;
        rayon::join(
            // SAFETY: the two halves hold disjoint blocks; forwarded contract.
            || unsafe { self.blocks(plan, range.start..mid, k) },
            // SAFETY: as above.
            || unsafe { self.blocks(plan, mid..range.end, k) },
        );
    }

    /// Computes block `p` of `plan` on the calling thread.
    ///
    /// # Safety
    /// As [`Raw::blocks`]; no other thread may compute block `p` at the same time.
    unsafe fn run_block(&self, plan: &Blocks, p: usize, k: usize) {
        let (r0, r1, c0, c1) = plan.block(p);
        // SAFETY: the block lies inside the checked product; forwarded contract.
        unsafe { self.run(r0, r1, c0, c1, k) };
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
    use super::super::{max_ld, Op};
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
        // A small product (one block), and two that are cut into several
        // blocks, by columns and by rows.
        for (m, n, k) in [(7, 5, 9), (33, 1000, 520), (1000, 33, 520)] {
            transposes_match_naive(m, n, k);
        }
        assert_eq!(Blocks::of(7, 5, 9).count, 1);
        assert!(Blocks::of(33, 1000, 520).count > 1 && Blocks::of(33, 1000, 520).by_columns);
        assert!(Blocks::of(1000, 33, 520).count > 1 && !Blocks::of(1000, 33, 520).by_columns);
    }

    fn transposes_match_naive(m: usize, n: usize, k: usize) {
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

    #[test]
    fn blocks_cover_the_output_once() {
        for (m, n, k) in [
            (1, 1, 1),
            (128, 1000, 784),
            (784, 1000, 128),
            (1000, 128, 1000),
            (1024, 1024, 1024),
            (5000, 3, 4000),
            (3, 5000, 4000),
            (1, 1 << 22, 1),
        ] {
            let plan = Blocks::of(m, n, k);
            let mut hit = vec![0u8; m * n];
            for p in 0..plan.count {
                let (r0, r1, c0, c1) = plan.block(p);
                assert!(r0 < r1 && c0 < c1, "{m}x{n}x{k}: empty block {p}");
                for i in r0..r1 {
                    for j in c0..c1 {
                        hit[i * n + j] += 1;
                    }
                }
            }
            assert!(hit.iter().all(|&h| h == 1), "{m}x{n}x{k}: {plan:?}");
        }
    }

    /// The bits of a [`Par::Pool`] product depend on its shape alone, not on
    /// the thread count; a [`Par::Seq`] product (one block) is the same
    /// product, to rounding. Shapes large enough to be cut into several
    /// blocks, wide and tall, with every transpose.
    #[test]
    fn the_bits_do_not_depend_on_the_thread_count() {
        let shapes = [
            // `mlp:64` on batches of 128 (out = n_out × rows in the forward pass).
            (64, 128, 784),
            (784, 64, 128),
            (128, 784, 64),
            // `mlp:1000,1000`.
            (1000, 128, 784),
            (784, 1000, 128),
            (128, 1000, 784),
            (784, 1000, 128),
            (128, 784, 1000),
            (1000, 96, 700),
            (300, 300, 300),
        ];
        for (m, n, k) in shapes {
            assert!(Blocks::of(m, n, k).count > 1, "{m}x{n}x{k} is one block");
            let av: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5)
                .collect();
            let bv: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729) % 997) as f32 / 997.0 - 0.5)
                .collect();
            for (ta, tb) in [
                (Op::N, Op::N),
                (Op::T, Op::N),
                (Op::N, Op::T),
                (Op::T, Op::T),
            ] {
                let lda = if ta == Op::N { k } else { m };
                let ldb = if tb == Op::N { n } else { k };
                let product = |par: Par| {
                    let mut c = vec![0.0f32; m * n];
                    gemm(
                        m,
                        n,
                        k,
                        Mat {
                            data: &av,
                            ld: lda,
                            op: ta,
                        },
                        Mat {
                            data: &bv,
                            ld: ldb,
                            op: tb,
                        },
                        &mut c,
                        n,
                        false,
                        par,
                    )
                    .unwrap();
                    c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
                };
                let on = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    pool.install(|| product(Par::Pool))
                };
                let one = on(1);
                for threads in [2, 3] {
                    assert!(
                        on(threads) == one,
                        "{m}x{n}x{k} {ta:?}{tb:?}: {threads} threads changed bits"
                    );
                }
                // One block: the same values to f32 rounding over k terms.
                for (s, p) in product(Par::Seq).iter().zip(&one) {
                    let (s, p) = (f32::from_bits(*s), f32::from_bits(*p));
                    assert!((s - p).abs() <= 1e-5 * (1.0 + p.abs()), "{s} vs {p}");
                }
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
