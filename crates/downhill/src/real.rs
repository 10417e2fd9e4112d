//! The floating-point element types the library works in.

use num_traits::Float;
use std::fmt::{Debug, Display};

/// An element type for parameters, gradients and optimiser state: `f32` or `f64`.
///
/// Hyper-parameters are always `f64`; they are converted to `T` once per step,
/// as `torch.optim` converts its Python floats for `float32` tensors, and the
/// element-wise arithmetic then runs in `T`. This is the same order of
/// operations as torch's single-tensor loop, not the same bits: torch's
/// vectorised CPU kernels fuse some multiply-adds and downhill's never do.
/// What holds is measured by `tests/conformance`: f64 runs within 1e-9
/// relative of torch's float64 results (worst seen 2.7e-13; most values
/// bit-identical), f32 runs within 1e-4 of them.
///
/// Note: `num_traits::ToPrimitive` (a supertrait of `Float`) also has a
/// `to_f64(&self) -> Option<f64>`. On a value `x: T`, `x.to_f64()` is this
/// trait's infallible method; on a reference, write `(*x).to_f64()` or
/// destructure with `|&x|`.
pub trait Real: Float + Debug + Display + Default + Send + Sync + std::iter::Sum + 'static {
    /// Name used in saved state ("f32" or "f64").
    const NAME: &'static str;
    /// Size in bytes.
    const BYTES: usize;
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// Appends the little-endian bytes of `xs` to `out`.
    fn extend_le_bytes(xs: &[Self], out: &mut Vec<u8>);
    /// Reads `out.len()` values from little-endian `bytes` (`bytes.len() == out.len() * BYTES`).
    fn read_le_bytes(bytes: &[u8], out: &mut [Self]);
}

macro_rules! impl_real {
    ($t:ty, $name:literal) => {
        impl Real for $t {
            const NAME: &'static str = $name;
            const BYTES: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn extend_le_bytes(xs: &[Self], out: &mut Vec<u8>) {
                out.reserve(xs.len() * Self::BYTES);
                for x in xs {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            fn read_le_bytes(bytes: &[u8], out: &mut [Self]) {
                assert_eq!(bytes.len(), out.len() * Self::BYTES, "byte length mismatch");
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(Self::BYTES)) {
                    *o = <$t>::from_le_bytes(b.try_into().expect("chunk size"));
                }
            }
        }
    };
}

impl_real!(f32, "f32");
impl_real!(f64, "f64");
