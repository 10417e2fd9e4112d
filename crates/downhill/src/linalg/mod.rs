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
//! A product's bits depend on its shape (and on [`Par`], which a call site
//! fixes), never on the thread count: the output is cut into blocks by shape,
//! and the threads share them (`the_bits_do_not_depend_on_the_thread_count`;
//! `downhill-train`'s `the_thread_count_changes_no_bit_of_a_trained_model`).

use std::any::TypeId;
use std::sync::atomic::{AtomicUsize, Ordering};
use thiserror::Error;

mod decompose;
mod product;

pub use decompose::{eigh, eigh_work, qr, qr_work, DecompError, PARTS};
pub use product::gemm;

/// Backend calls so far (each thread's block counts once).
pub(crate) static BACKEND_CALLS: AtomicUsize = AtomicUsize::new(0);

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

/// How many threads one product may use. The bits depend on this choice,
/// never on how many threads the pool has.
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
    pub(crate) fn strides(&self) -> (isize, isize) {
        let ld = self.ld as isize;
        match self.op {
            Op::N => (ld, 1),
            Op::T => (1, ld),
        }
    }
    /// Checks that the logical `rows × cols` matrix lies inside `data` and that
    /// its strides fit the backend's pointer arithmetic (see [`check_block`]).
    pub(crate) fn check(
        &self,
        rows: usize,
        cols: usize,
        operand: &'static str,
    ) -> Result<(), MatmulError> {
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
pub(crate) fn check_block<T>(
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
pub(crate) fn max_ld<T>() -> usize {
    isize::MAX as usize / std::mem::size_of::<T>().max(1)
}

/// Whether the backend computes in `T`: `gemm::gemm` panics for any other type.
pub(crate) fn backend_supports<T: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>()
}

/// The message of an `expect` on a product whose buffers the caller sized
/// itself from shapes it validated (the training engine's layers, Muon's
/// workspace): an error there is a bug in the caller (a panic, never an
/// out-of-bounds access).
pub const SHAPES_CHECKED: &str = "matmul: a buffer does not match the shapes its caller validated";
