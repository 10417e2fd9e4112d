//! What an element-wise rule's arithmetic is written in: a [`Lane`], one
//! element at a time or a whole tensor at once.
//!
//! Each element-wise rule writes its update once, as [`super::Pointwise::update`]
//! over a `V: Lane<T>`. The same definition runs two ways:
//! * with `V = T` (a scalar), inside the fused CPU loop of
//!   [`super::passes`], where the compiler vectorises it;
//! * with `V = `[`super::program::Expr`], which records the update as a short
//!   program of whole-tensor operations ([`super::program::Program`]) that a
//!   device backend (candle's tensors on any device) runs where the tensors
//!   live.
//!
//! A lane is always the left operand of an operation with a constant
//! (`v * c`, never `c * v`): IEEE addition and multiplication commute
//! exactly, so the order changes no bit, and it lets a recorded lane take
//! plain scalars. Branches on an element's value are lane methods
//! ([`Lane::by_sign`], [`Lane::clamp`], ...), so that a tensor can take them
//! too; branches on constants are ordinary `if`s.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::Real;

/// One element (`V = T`) or a whole tensor (a recorded
/// [`super::program::Expr`]) of an element-wise rule's arithmetic.
pub trait Lane<T: Real>:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<T, Output = Self>
    + Sub<T, Output = Self>
    + Mul<T, Output = Self>
    + Div<T, Output = Self>
{
    /// The constant `x` in every element.
    fn splat(x: T) -> Self;
    /// `x / self`: a constant divided by each element.
    fn divides(self, x: T) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `torch.sign`: −1, 0 or 1, and NaN for NaN.
    fn sign(self) -> Self;
    /// `torch.maximum`: the larger, or NaN when either is NaN.
    fn maximum(self, other: Self) -> Self;
    /// `Float::max` with a constant: the larger, and `x` when `self` is NaN.
    fn max(self, x: T) -> Self;
    /// `Float::min` with a constant: the smaller, and `x` when `self` is NaN.
    fn min(self, x: T) -> Self;
    /// `lo` below `lo`, `hi` above `hi`, else `self` (NaN stays NaN).
    fn clamp(self, lo: T, hi: T) -> Self;
    /// Picks by the sign of `self`: `pos` where it is positive, `zero` where
    /// it is zero, `neg` where negative and `nan` where it is NaN.
    fn by_sign(self, pos: Self, zero: Self, neg: Self, nan: Self) -> Self;
}

impl<T: Real> Lane<T> for T {
    #[inline(always)]
    fn splat(x: T) -> T {
        x
    }

    #[inline(always)]
    fn divides(self, x: T) -> T {
        x / self
    }

    #[inline(always)]
    fn sqrt(self) -> T {
        num_traits::Float::sqrt(self)
    }

    #[inline(always)]
    fn abs(self) -> T {
        num_traits::Float::abs(self)
    }

    #[inline(always)]
    fn sign(self) -> T {
        if self > T::zero() {
            T::one()
        } else if self < T::zero() {
            -T::one()
        } else {
            self
        }
    }

    #[inline(always)]
    fn maximum(self, other: T) -> T {
        #[allow(clippy::eq_op)]
        let self_is_nan = self != self;
        if self > other || self_is_nan {
            self
        } else {
            other
        }
    }

    #[inline(always)]
    fn max(self, x: T) -> T {
        num_traits::Float::max(self, x)
    }

    #[inline(always)]
    fn min(self, x: T) -> T {
        num_traits::Float::min(self, x)
    }

    #[inline(always)]
    fn clamp(self, lo: T, hi: T) -> T {
        if self < lo {
            lo
        } else if self > hi {
            hi
        } else {
            self
        }
    }

    #[inline(always)]
    fn by_sign(self, pos: T, zero: T, neg: T, nan: T) -> T {
        if self > T::zero() {
            pos
        } else if self < T::zero() {
            neg
        } else if self == T::zero() {
            zero
        } else {
            nan
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lane;

    #[test]
    fn scalar_lanes_keep_rust_and_torch_semantics() {
        // sign and maximum: mechanics.rs's tests.
        assert_eq!(Lane::<f64>::max(f64::NAN, 2.0), 2.0);
        assert_eq!(Lane::<f64>::clamp(5.0f64, 1.0, 2.0), 2.0);
        assert!(Lane::<f64>::clamp(f64::NAN, 1.0, 2.0).is_nan());
        let pick = |x: f64| x.by_sign(1.0, 2.0, 3.0, 4.0);
        assert_eq!(
            [pick(0.5), pick(0.0), pick(-0.0), pick(-1.0), pick(f64::NAN)],
            [1.0, 2.0, 2.0, 3.0, 4.0]
        );
    }
}
