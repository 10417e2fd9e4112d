//! Gradient clipping, with `torch.nn.utils`' semantics.

use crate::error::{Error, Result};
use crate::Real;

/// Which norm [`clip_grad_norm`] measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    /// The p-norm `(Σ|gᵢ|ᵖ)^(1/p)`, p ≥ 1 (2 is the usual).
    P(f64),
    /// The largest `|gᵢ|`.
    Inf,
}

impl Default for Norm {
    fn default() -> Self {
        Norm::P(2.0)
    }
}

/// One tensor's part of a norm over several: `Σ|gᵢ|ᵖ` (or `max|gᵢ|`) over one
/// slice, accumulated in 16 lanes so the loop vectorises, and in `f64`
/// across blocks for accuracy. [`norm_of_parts`] combines the parts; for
/// callers that reach the tensors one at a time.
pub fn norm_part<T: Real>(g: &[T], norm: Norm) -> f64 {
    match norm {
        Norm::Inf => g.iter().fold(0.0f64, |m, x| {
            let a = Real::to_f64(*x).abs();
            if a > m || a.is_nan() {
                a
            } else {
                m
            }
        }),
        Norm::P(2.0) => crate::optim::passes::norm_squared(g),
        Norm::P(p) => g.iter().map(|&x| Real::to_f64(x).abs().powf(p)).sum(),
    }
}

/// The norm of several tensors from their [`norm_part`]s, as [`grad_norm`]
/// computes it.
pub fn norm_of_parts(parts: impl Iterator<Item = f64>, norm: Norm) -> f64 {
    match norm {
        Norm::Inf => parts.fold(0.0, |m: f64, a| if a > m || a.is_nan() { a } else { m }),
        Norm::P(p) => parts.sum::<f64>().powf(1.0 / p),
    }
}

/// The norm of all gradients together, as if concatenated. NaN or infinity
/// when any element is.
pub fn grad_norm<T: Real>(grads: &[&[T]], norm: Norm) -> f64 {
    norm_of_parts(grads.iter().map(|g| norm_part(g, norm)), norm)
}

fn check_norm(norm: Norm) -> Result<()> {
    match norm {
        Norm::P(p) if !(p >= 1.0 && p.is_finite()) => Err(crate::hyper::invalid_value(
            "clip_grad_norm",
            "norm_type",
            p,
            "a finite number >= 1, or inf",
        )),
        _ => Ok(()),
    }
}

/// Scales the gradients in place so their total norm is at most `max_norm`,
/// as `torch.nn.utils.clip_grad_norm_`: the factor is
/// `min(1, max_norm / (total + 10⁻⁶))`. Returns the total norm before
/// clipping. A non-finite total is an error when `error_if_nonfinite`
/// (nothing is changed); otherwise the gradients are scaled anyway, as torch
/// does: an infinite total scales by 0 (an infinite element becomes NaN), a
/// NaN total makes every gradient NaN.
pub fn clip_grad_norm<T: Real>(
    grads: &mut [&mut [T]],
    max_norm: f64,
    norm: Norm,
    error_if_nonfinite: bool,
) -> Result<f64> {
    check_clip_norm(max_norm, norm)?;
    let total = norm_of_parts(grads.iter().map(|g| norm_part(g, norm)), norm);
    if !total.is_finite() && error_if_nonfinite {
        return Err(Error::NonFiniteNorm(total));
    }
    if let Some(coef) = clip_coefficient(total, max_norm) {
        for g in grads.iter_mut() {
            scale_grad(g, coef);
        }
    }
    Ok(total)
}

/// Checks [`clip_grad_norm`]'s settings: `max_norm` a finite number `>= 0`,
/// a p-norm's `p` finite and `>= 1`.
pub fn check_clip_norm(max_norm: f64, norm: Norm) -> Result<()> {
    check_norm(norm)?;
    if !(max_norm >= 0.0 && max_norm.is_finite()) {
        return Err(crate::hyper::invalid_value(
            "clip_grad_norm",
            "max_norm",
            max_norm,
            "a finite number >= 0",
        ));
    }
    Ok(())
}

/// The factor [`clip_grad_norm`] scales every gradient by, given their total
/// norm: `min(1, max_norm / (total + 10⁻⁶))`, or `None` when that is 1 (a
/// pass over memory that would change nothing). NaN when `total` is NaN.
pub fn clip_coefficient(total: f64, max_norm: f64) -> Option<f64> {
    let coef = max_norm / (total + 1e-6);
    // torch clamps with `torch.clamp(coef, max=1.0)`, which keeps a NaN, so a
    // NaN total norm makes every gradient NaN (`f64::min` would return 1.0
    // and leave them alone).
    (coef.is_nan() || coef < 1.0).then_some(coef)
}

/// Multiplies a gradient by [`clip_coefficient`]'s factor, rounded once to
/// the element type.
pub fn scale_grad<T: Real>(g: &mut [T], coef: f64) {
    let c = T::from_f64(coef);
    for x in g.iter_mut() {
        *x = *x * c;
    }
}

/// [`clip_grad_norm`] on one flat buffer holding every gradient.
pub fn clip_grad_norm_flat<T: Real>(
    grads: &mut [T],
    max_norm: f64,
    norm: Norm,
    error_if_nonfinite: bool,
) -> Result<f64> {
    clip_grad_norm(&mut [grads], max_norm, norm, error_if_nonfinite)
}

/// Clamps every gradient element to `[−clip_value, clip_value]`, as
/// `torch.nn.utils.clip_grad_value_` (NaN stays NaN).
pub fn clip_grad_value<T: Real>(grads: &mut [&mut [T]], clip_value: f64) -> Result<()> {
    if !(clip_value >= 0.0 && clip_value.is_finite()) {
        return Err(crate::hyper::invalid_value(
            "clip_grad_value",
            "clip_value",
            clip_value,
            "a finite number >= 0",
        ));
    }
    let (lo, hi) = (T::from_f64(-clip_value), T::from_f64(clip_value));
    for g in grads.iter_mut() {
        for x in g.iter_mut() {
            // Comparisons are false for NaN, which therefore passes through.
            if *x < lo {
                *x = lo;
            } else if *x > hi {
                *x = hi;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_to_max_norm_like_torch() {
        let mut a = vec![3.0f64, 0.0];
        let mut b = vec![0.0f64, 4.0];
        let total = clip_grad_norm(&mut [&mut a, &mut b], 1.0, Norm::P(2.0), false).unwrap();
        assert_eq!(total, 5.0);
        let coef = 1.0 / (5.0 + 1e-6);
        assert_eq!(a, vec![3.0 * coef, 0.0]);
        assert_eq!(b, vec![0.0, 4.0 * coef]);
        // Below the threshold: unchanged, bit for bit.
        let mut c = vec![0.1f32, 0.2];
        clip_grad_norm(&mut [&mut c], 10.0, Norm::P(2.0), false).unwrap();
        assert_eq!(c, vec![0.1, 0.2]);
    }

    #[test]
    fn the_norm_does_not_depend_on_the_thread_count() {
        let g: Vec<f32> = (0..1_000_003)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let norm = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| grad_norm(&[&g], Norm::P(2.0)))
        };
        let one = norm(1);
        assert_eq!(one.to_bits(), norm(2).to_bits());
        assert_eq!(one.to_bits(), norm(3).to_bits());
        let exact: f64 = g.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        assert!((one - exact).abs() < 1e-6 * exact, "{one} vs {exact}");
    }

    #[test]
    fn norms() {
        let g = vec![1.0f32; 1000];
        assert!((grad_norm(&[&g], Norm::P(2.0)) - 1000f64.sqrt()).abs() < 1e-9);
        assert!((grad_norm(&[&g], Norm::P(1.0)) - 1000.0).abs() < 1e-9);
        assert_eq!(grad_norm(&[&g, &[-7.0]], Norm::Inf), 7.0);
    }

    #[test]
    fn non_finite_norm_is_reported() {
        let mut g = vec![1.0f32, f32::NAN];
        let before = g.clone();
        let e = clip_grad_norm(&mut [&mut g], 1.0, Norm::P(2.0), true).unwrap_err();
        assert!(matches!(e, Error::NonFiniteNorm(_)));
        assert_eq!(g[0], before[0]);
        assert!(clip_grad_norm(&mut [&mut g], -1.0, Norm::P(2.0), false).is_err());
        assert!(clip_grad_norm(&mut [&mut g], 1.0, Norm::P(0.5), false).is_err());
    }

    #[test]
    fn non_finite_norms_scale_as_torch() {
        // NaN total: torch.clamp keeps the NaN, so every gradient becomes NaN.
        let mut a = vec![1.0f32, f32::NAN];
        let mut b = vec![2.0f32];
        let total = clip_grad_norm(&mut [&mut a, &mut b], 1.0, Norm::P(2.0), false).unwrap();
        assert!(total.is_nan());
        assert!(a.iter().chain(&b).all(|x| x.is_nan()), "{a:?} {b:?}");
        // Infinite total: coefficient 0, so finite elements become 0 and the
        // infinite one NaN (inf · 0).
        let mut c = vec![3.0f64, f64::INFINITY];
        let total = clip_grad_norm(&mut [&mut c], 1.0, Norm::P(2.0), false).unwrap();
        assert_eq!(total, f64::INFINITY);
        assert_eq!(c[0], 0.0);
        assert!(c[1].is_nan());
        // error_if_nonfinite: an error, nothing changed.
        let mut d = vec![1.0f32, f32::INFINITY];
        assert!(clip_grad_norm(&mut [&mut d], 1.0, Norm::P(2.0), true).is_err());
        assert_eq!(d, vec![1.0, f32::INFINITY]);
    }

    #[test]
    fn clip_by_value() {
        let mut g = vec![-3.0f64, 0.5, 9.0, f64::NAN];
        clip_grad_value(&mut [&mut g], 1.0).unwrap();
        assert_eq!(&g[..3], &[-1.0, 0.5, 1.0]);
        assert!(g[3].is_nan());
    }
}
