//! Mechanisms shared by several optimisers, defined once: the direction of the
//! gradient (`maximize`), weight decay (L2 or decoupled), exponential moving
//! averages of the gradient and its square, and bias correction.
//!
//! Everything here is `#[inline(always)]` scalar code: the optimisers call it
//! inside their single fused loop over memory, and the compiler vectorises it.

use crate::Real;

/// How weight decay enters a step, precomputed once per step.
///
/// * L2 (`decoupled = false`): the gradient becomes `g + λ·θ`, as if `λ/2·‖θ‖²`
///   were part of the loss (Adam, SGD, Adagrad, ... in torch).
/// * Decoupled (`decoupled = true`, Loshchilov & Hutter 2019): the parameter is
///   shrunk, `θ ← θ·(1 − lr·λ)`, before the update; the moments never see `λ`.
///
/// `sign` carries `maximize`: the optimisers ascend by descending on `−g`.
#[derive(Clone, Copy, Debug)]
pub struct Decay<T> {
    sign: T,
    l2: T,
    shrink: T,
}

impl<T: Real> Decay<T> {
    /// Builds the per-step constants.
    pub fn new(weight_decay: f64, decoupled: bool, lr: f64, maximize: bool) -> Self {
        let sign = T::from_f64(if maximize { -1.0 } else { 1.0 });
        if decoupled {
            Decay {
                sign,
                l2: T::zero(),
                shrink: T::from_f64(1.0 - lr * weight_decay),
            }
        } else {
            Decay {
                sign,
                l2: T::from_f64(weight_decay),
                shrink: T::one(),
            }
        }
    }

    /// The effective gradient: `±g + λ_L2·θ`.
    #[inline(always)]
    pub fn grad(&self, g: T, p: T) -> T {
        self.sign * g + self.l2 * p
    }

    /// The parameter after decoupled decay (unchanged under L2).
    #[inline(always)]
    pub fn param(&self, p: T) -> T {
        p * self.shrink
    }
}

/// First-moment update `m ← m + (1 − β)(g − m)`, i.e. `β·m + (1 − β)·g` written
/// as torch's `lerp_`, with `w = 1 − β`.
#[inline(always)]
pub fn ema<T: Real>(m: T, g: T, w: T) -> T {
    m + w * (g - m)
}

/// Second-moment update `v ← β·v + (1 − β)·g²`, with `w = 1 − β`.
#[inline(always)]
pub fn ema_sq<T: Real>(v: T, g: T, beta: T, w: T) -> T {
    v * beta + w * g * g
}

/// Bias correction `1 − βᵗ` of an exponential moving average started at zero
/// (Kingma & Ba 2015, §3), computed in `f64` as Python's `beta ** step`.
#[inline]
pub fn bias_correction(beta: f64, step: u64) -> f64 {
    1.0 - beta.powf(step as f64)
}
