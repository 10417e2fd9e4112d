//! Symmetric eigendecomposition and QR, on the `faer` crate (pure Rust, by
//! the author of the `gemm` crate the products run on).
//!
//! Both work on caller-owned memory: the inputs, the outputs and the
//! temporary memory are slices (its size from [`eigh_work`] and [`qr_work`],
//! as LAPACK's `lwork`), so a caller that keeps its scratch allocates nothing
//! (`faer`'s products inside may allocate their packing buffers, as the
//! `gemm` crate does).
//!
//! Bases come out **transposed**: row `k` of the output is the `k`-th vector
//! (an eigenvector, or a column of Q). Read row-major, that slice is
//! the matrix with the vectors as rows, Vᵀ; read column-major, it is V
//! itself, which is how `faer` writes it, so no copy is made. A product
//! `Vᵀ·X` is then `gemm` with the slice as stored, and `X·V` with it
//! transposed ([`super::Op::T`]).
//!
//! The work is split over a fixed number of parts ([`PARTS`]) whatever the
//! thread count, so the bits never depend on it
//! (`decompositions_do_not_depend_on_the_thread_count`).

use crate::Real;
use faer::dyn_stack::{MemStack, StackReq};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::linalg::householder;
use faer::linalg::qr::no_pivoting::factor as qr_factor;
use faer::{MatMut, MatRef};
use std::any::TypeId;
use std::mem::MaybeUninit;
use thiserror::Error;

/// How many parts `faer` may split a decomposition into, on the current
/// rayon pool: fixed, so the split, and with it every bit, is the same on
/// any number of threads.
pub const PARTS: usize = 2;

/// Why a decomposition failed. The outputs are then unspecified: a caller
/// keeps what it had (an optimiser its previous basis).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecompError {
    /// The input holds a NaN or an infinity (checked before anything runs).
    #[error("{what}: the matrix holds a NaN or an infinity")]
    NonFinite {
        /// `"eigh"` or `"qr"`.
        what: &'static str,
    },
    /// The iteration did not converge.
    #[error("{what}: the iteration did not converge")]
    NoConvergence {
        /// `"eigh"` or `"qr"`.
        what: &'static str,
    },
    /// A slice is shorter than the sizes given say.
    #[error("{what}: {why}")]
    Shape {
        /// `"eigh"` or `"qr"`.
        what: &'static str,
        /// Which slice, and how long it should be.
        why: String,
    },
    /// The element type is not one `faer` computes in here (`f32`, `f64`).
    #[error("{0}: decompositions compute in f32 and f64")]
    UnsupportedType(&'static str),
}

/// The real types `faer` decomposes in: `f32` and `f64`.
trait FaerReal: faer::traits::RealField + Copy + Default + 'static {
    const ZERO: Self;
    const ONE: Self;
}
impl FaerReal for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
}
impl FaerReal for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
}

/// `slice` as a slice of `F`, when `T` is `F`.
fn cast<T: 'static, F: 'static>(slice: &[T]) -> Option<&[F]> {
    // SAFETY: `T` and `F` are the same type (checked by `TypeId`), so the
    // pointer, length and lifetime describe the same valid slice.
    (TypeId::of::<T>() == TypeId::of::<F>())
        .then(|| unsafe { std::slice::from_raw_parts(slice.as_ptr().cast::<F>(), slice.len()) })
}

/// [`cast`] for a mutable slice.
fn cast_mut<T: 'static, F: 'static>(slice: &mut [T]) -> Option<&mut [F]> {
    // SAFETY: as in `cast`; the exclusive borrow moves into the result.
    (TypeId::of::<T>() == TypeId::of::<F>()).then(|| unsafe {
        std::slice::from_raw_parts_mut(slice.as_mut_ptr().cast::<F>(), slice.len())
    })
}

fn par() -> faer::Par {
    faer::Par::rayon(PARTS)
}

/// Elements of `F` that hold `req` bytes.
fn elems<F>(req: StackReq) -> usize {
    req.unaligned_bytes_required()
        .div_ceil(std::mem::size_of::<F>())
}

fn check_len(what: &'static str, name: &str, len: usize, need: usize) -> Result<(), DecompError> {
    if len < need {
        return Err(DecompError::Shape {
            what,
            why: format!("{name} has {len} elements, needs {need}"),
        });
    }
    Ok(())
}

/// The symmetric eigendecomposition `A = V·diag(λ)·Vᵀ` of the `n × n`
/// matrix `a` (row-major; only its lower triangle is read, so a matrix
/// symmetric up to rounding is fine): the eigenvalues, ascending, into
/// `values[..n]`, and the eigenvectors, one per **row**, into
/// `vectors[..n·n]` (see the module doc). `work` is temporary memory of at
/// least [`eigh_work`]`(n)` elements.
///
/// # Errors
/// [`DecompError`] when `a` is not finite (checked first), the iteration
/// does not converge, a slice is too short, or `T` is neither `f32` nor
/// `f64`.
pub fn eigh<T: Real>(
    n: usize,
    a: &[T],
    values: &mut [T],
    vectors: &mut [T],
    work: &mut [T],
) -> Result<(), DecompError> {
    const WHAT: &str = "eigh";
    check_len(WHAT, "the matrix", a.len(), n * n)?;
    check_len(WHAT, "the eigenvalues", values.len(), n)?;
    check_len(WHAT, "the eigenvectors", vectors.len(), n * n)?;
    check_len(WHAT, "the workspace", work.len(), eigh_work::<T>(n))?;
    if a[..n * n].iter().any(|x| !x.is_finite()) {
        return Err(DecompError::NonFinite { what: WHAT });
    }
    macro_rules! run {
        ($f:ty) => {
            if let (Some(a), Some(s), Some(u), Some(w)) = (
                cast::<T, $f>(a),
                cast_mut::<T, $f>(values),
                cast_mut::<T, $f>(vectors),
                cast_mut::<T, $f>(work),
            ) {
                return eigh_in::<$f>(n, a, s, u, w);
            }
        };
    }
    run!(f64);
    run!(f32);
    Err(DecompError::UnsupportedType(std::any::type_name::<T>()))
}

/// The elements of `T` [`eigh`] needs as `work` for an `n × n` matrix.
pub fn eigh_work<T: 'static>(n: usize) -> usize {
    // faer sizes its scratch with `n − 1`, which underflows (a panic in a
    // debug build) for the empty matrix of a dimension left unpreconditioned.
    if n == 0 {
        return 0;
    }
    fn of<F: FaerReal>(n: usize) -> usize {
        elems::<F>(evd::self_adjoint_evd_scratch::<F>(
            n,
            ComputeEigenvectors::Yes,
            par(),
            Default::default(),
        ))
    }
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        of::<f32>(n)
    } else {
        of::<f64>(n)
    }
}

/// The elements of `T` [`qr`] needs as `work` for an `m × k` matrix.
pub fn qr_work<T: 'static>(m: usize, k: usize) -> usize {
    fn of<F: FaerReal>(m: usize, k: usize) -> usize {
        let bs = qr_factor::recommended_block_size::<F>(m, k);
        m * k + bs * k + elems::<F>(qr_req::<F>(m, k, bs))
    }
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        of::<f32>(m, k)
    } else {
        of::<f64>(m, k)
    }
}

/// faer's stack for a QR of `m × k` with blocks of `bs`, and forming Q.
fn qr_req<F: FaerReal>(m: usize, k: usize, bs: usize) -> StackReq {
    StackReq::any_of(&[
        qr_factor::qr_in_place_scratch::<F>(m, k, bs, par(), Default::default()),
        householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<F>(m, bs, k),
    ])
}

fn eigh_in<F: FaerReal>(
    n: usize,
    a: &[F],
    values: &mut [F],
    vectors: &mut [F],
    work: &mut [F],
) -> Result<(), DecompError> {
    if n == 0 {
        return Ok(());
    }
    let stack = stack_from(work);
    // Row-major and symmetric: the same matrix read column-major.
    let a = MatRef::from_column_major_slice(&a[..n * n], n, n);
    let u = MatMut::from_column_major_slice_mut(&mut vectors[..n * n], n, n);
    let s = faer::ColMut::from_slice_mut(&mut values[..n]).as_diagonal_mut();
    evd::self_adjoint_evd(a, s, Some(u), par(), stack, Default::default())
        .map_err(|_| DecompError::NoConvergence { what: "eigh" })
}

/// The thin QR decomposition `A = Q·R` of the `m × k` matrix (`k ≤ m`)
/// held **transposed** in `a[..k·m]` (row `j` of the slice is column `j` of
/// A, i.e. A column-major): on return the slice holds Q the same way, its
/// `k` orthonormal columns as rows. R is not kept (the signs of Q's columns
/// follow `faer`'s Householder convention). `work` is temporary memory of
/// at least [`qr_work`]`(m, k)` elements.
///
/// # Errors
/// As [`eigh`]; also when `k > m`.
pub fn qr<T: Real>(m: usize, k: usize, a: &mut [T], work: &mut [T]) -> Result<(), DecompError> {
    const WHAT: &str = "qr";
    if k > m {
        return Err(DecompError::Shape {
            what: WHAT,
            why: format!("{k} columns of {m} rows: thin QR needs at most as many columns as rows"),
        });
    }
    check_len(WHAT, "the matrix", a.len(), m * k)?;
    check_len(WHAT, "the workspace", work.len(), qr_work::<T>(m, k))?;
    if a[..m * k].iter().any(|x| !x.is_finite()) {
        return Err(DecompError::NonFinite { what: WHAT });
    }
    macro_rules! run {
        ($f:ty) => {
            if let (Some(a), Some(w)) = (cast_mut::<T, $f>(a), cast_mut::<T, $f>(work)) {
                return qr_in::<$f>(m, k, a, w);
            }
        };
    }
    run!(f64);
    run!(f32);
    Err(DecompError::UnsupportedType(std::any::type_name::<T>()))
}

fn qr_in<F: FaerReal>(m: usize, k: usize, a: &mut [F], work: &mut [F]) -> Result<(), DecompError> {
    if k == 0 {
        return Ok(());
    }
    let bs = qr_factor::recommended_block_size::<F>(m, k);
    // work: the factored matrix (m × k), the Householder factors (bs × k),
    // then faer's stack.
    let (mk, coeff) = (m * k, bs * k);
    let (basis, rest) = work.split_at_mut(mk);
    let (coeff_buf, rest) = rest.split_at_mut(coeff);
    basis.copy_from_slice(&a[..mk]);
    let mut basis_m = MatMut::from_column_major_slice_mut(basis, m, k);
    let mut coeff_m = MatMut::from_column_major_slice_mut(coeff_buf, bs, k);
    {
        let stack = stack_from(rest);
        qr_factor::qr_in_place(
            basis_m.as_mut(),
            coeff_m.as_mut(),
            par(),
            stack,
            Default::default(),
        );
    }
    // The basis is the unit lower-trapezoidal part.
    for j in 0..k {
        for i in 0..j.min(m) {
            basis_m[(i, j)] = F::ZERO;
        }
        basis_m[(j, j)] = F::ONE;
    }
    // Q = H₁⋯H_k·I (the first k columns of the identity).
    let mut q = MatMut::from_column_major_slice_mut(&mut a[..mk], m, k);
    for j in 0..k {
        for i in 0..m {
            q[(i, j)] = if i == j { F::ONE } else { F::ZERO };
        }
    }
    let stack = stack_from(rest);
    householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
        basis_m.as_ref(),
        coeff_m.as_ref(),
        faer::Conj::No,
        q.as_mut(),
        par(),
        stack,
    );
    Ok(())
}

/// All of `rest` as memory for `faer`'s stack.
fn stack_from<F>(rest: &mut [F]) -> &mut MemStack {
    // SAFETY: the bytes of initialised `f32`/`f64` values are initialised
    // bytes; `MaybeUninit<u8>` has alignment 1, and the byte length is the
    // slice's own. What faer writes through it are floats (every bit
    // pattern is a value) or its own temporaries.
    let raw = unsafe {
        std::slice::from_raw_parts_mut(
            rest.as_mut_ptr().cast::<MaybeUninit<u8>>(),
            std::mem::size_of_val(rest),
        )
    };
    MemStack::new(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    /// A random symmetric matrix with a spread of eigenvalues (`B·Bᵀ + shift`).
    fn spd(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        let b: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|p| b[i * n + p] * b[j * n + p]).sum::<f64>() / n as f64;
            }
            a[i * n + i] += 0.1;
        }
        a
    }

    #[test]
    fn eigh_reconstructs_the_matrix_with_orthonormal_vectors() {
        for n in [1, 2, 7, 64, 150] {
            let a = spd(n, n as u64);
            let (mut s, mut v, mut w) = (
                vec![0.0; n],
                vec![0.0; n * n],
                vec![0.0; eigh_work::<f64>(n)],
            );
            eigh(n, &a, &mut s, &mut v, &mut w).unwrap();
            assert!(s.windows(2).all(|p| p[0] <= p[1]), "ascending");
            for i in 0..n {
                for j in 0..n {
                    // A = Σ_k λ_k v_k v_kᵀ, with v_k row k of `v`.
                    let rec: f64 = (0..n).map(|k| s[k] * v[k * n + i] * v[k * n + j]).sum();
                    assert!((rec - a[i * n + j]).abs() < 1e-10, "n={n} ({i},{j})");
                    let dot: f64 = (0..n).map(|p| v[i * n + p] * v[j * n + p]).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-10, "n={n}: vᵢ·vⱼ");
                }
            }
        }
    }

    #[test]
    fn qr_gives_orthonormal_columns_spanning_the_input() {
        for (m, k) in [(1, 1), (5, 3), (64, 64), (130, 40)] {
            let mut rng = Rng::new(3);
            let a: Vec<f64> = (0..m * k).map(|_| rng.normal()).collect();
            let mut q = a.clone();
            qr(m, k, &mut q, &mut vec![0.0; qr_work::<f64>(m, k)]).unwrap();
            for i in 0..k {
                for j in 0..k {
                    let dot: f64 = (0..m).map(|p| q[i * m + p] * q[j * m + p]).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-12, "{m}x{k}: qᵢ·qⱼ");
                }
            }
            // Column j of A lies in the span of Q's first j + 1 columns.
            for j in 0..k {
                let col = &a[j * m..(j + 1) * m];
                let mut rest = col.to_vec();
                for i in 0..=j {
                    let c: f64 = (0..m).map(|p| q[i * m + p] * col[p]).sum();
                    for p in 0..m {
                        rest[p] -= c * q[i * m + p];
                    }
                }
                let norm: f64 = rest.iter().map(|x| x * x).sum::<f64>().sqrt();
                assert!(norm < 1e-10, "{m}x{k}: column {j} leaves {norm}");
            }
        }
    }

    #[test]
    fn f32_works_too_and_bad_input_is_an_error() {
        let n = 20;
        let a: Vec<f32> = spd(n, 9).iter().map(|&x| x as f32).collect();
        let (mut s, mut v) = (vec![0.0f32; n], vec![0.0f32; n * n]);
        let mut w = vec![0.0f32; eigh_work::<f32>(n)];
        eigh(n, &a, &mut s, &mut v, &mut w).unwrap();
        assert!(s[0] > 0.0);
        assert!(matches!(
            eigh(n, &a, &mut s, &mut v, &mut w[..1]),
            Err(DecompError::Shape { .. })
        ));
        let mut bad = a.clone();
        bad[3] = f32::NAN;
        assert_eq!(
            eigh(n, &bad, &mut s, &mut v, &mut w),
            Err(DecompError::NonFinite { what: "eigh" })
        );
        let mut q = bad.clone();
        assert_eq!(
            qr(n, n, &mut q, &mut vec![0.0; qr_work::<f32>(n, n)]),
            Err(DecompError::NonFinite { what: "qr" })
        );
        assert!(matches!(
            qr(3, 4, &mut [0.0f32; 12], &mut []),
            Err(DecompError::Shape { .. })
        ));
        assert!(matches!(
            eigh(4, &a[..3], &mut s, &mut v, &mut w),
            Err(DecompError::Shape { .. })
        ));
    }

    /// The same bits on 1, 2 and 3 threads, at sizes `faer` splits.
    #[test]
    fn decompositions_do_not_depend_on_the_thread_count() {
        let n = 300;
        let a = spd(n, 4);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (mut s, mut v) = (vec![0.0; n], vec![0.0; n * n]);
                let mut w = vec![0.0; eigh_work::<f64>(n).max(qr_work::<f64>(n, n))];
                eigh(n, &a, &mut s, &mut v, &mut w).unwrap();
                let mut q = a.clone();
                qr(n, n, &mut q, &mut w).unwrap();
                let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
                (bits(&s), bits(&v), bits(&q))
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == one, "{threads} threads changed bits");
        }
    }
}
