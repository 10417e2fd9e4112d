//! RMSprop: steps divided by a running RMS of the gradient.

use super::lane::Lane;
use super::mechanics::{ema, ema_sq, Decay, Lerp};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// RMSprop (Tieleman & Hinton, 2012, lecture 6.5), with the centered variant
    /// of Graves (2013), as `torch.optim.RMSprop`.
    ///
    /// ```text
    /// g ← ±g + λ·θ
    /// v ← α·v + (1 − α)·g²
    /// if centered:  ḡ ← α·ḡ + (1 − α)·g,   σ ← √(v − ḡ²) + ε
    /// else:         σ ← √v + ε
    /// if μ > 0:     b ← μ·b + g/σ,   θ ← θ − γ·b
    /// else:         θ ← θ − γ·g/σ
    /// ```
    pub struct RMSprop: "rmsprop" {
        /// Learning rate γ.
        lr: f64 = 1e-2; check check::non_negative,
        /// Smoothing constant α, in [0, 1). Stricter than torch (any α ≥ 0): with α = 1 the
        /// average never moves from 0 and every step divides by ε; α > 1 makes it negative.
        alpha: f64 = 0.99; check check::unit_open,
        /// ε added to the denominator, > 0 (torch also accepts 0, which divides 0 by 0 where a coordinate has never had a gradient).
        eps: f64 = 1e-8; check check::positive,
        /// L2 penalty λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Momentum μ, in [0, 1). Stricter than torch (any μ ≥ 0): μ ≥ 1 grows without bound.
        momentum: f64 = 0.0; check check::unit_open,
        /// Normalise by the estimated variance instead of the raw second moment.
        centered: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`RMSprop`].
#[derive(Clone, Copy, Debug)]
pub struct RmspropConsts<T> {
    neg_lr: T,
    alpha: T,
    one_minus_alpha: T,
    grad_avg: Lerp<T>,
    eps: T,
    momentum: T,
    centered: bool,
    with_momentum: bool,
    decay: Decay<T>,
}

impl Rule for RMSprop {
    type Consts<T: Real> = RmspropConsts<T>;

    const PAPER: &'static str = "Tieleman & Hinton 2012";
    const REFERENCE: &'static str = "torch.optim.RMSprop";
    const USE_WHEN: &'static str =
        "recurrent nets and non-stationary objectives; Adam without the first moment";
    const EXAMPLES: &'static [&'static str] = &[
        "rmsprop(lr=0.02)",
        "rmsprop(lr=0.01,momentum=0.5,centered=true)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        match (self.centered, self.momentum > 0.0) {
            (false, false) => &["square_avg"],
            (false, true) => &["square_avg", "momentum_buffer"],
            (true, false) => &["square_avg", "grad_avg"],
            (true, true) => &["square_avg", "grad_avg", "momentum_buffer"],
        }
    }

    fn prepare<T: Real>(&self, _: u64, _: bool, _: &mut [f64], _: &[f64]) -> RmspropConsts<T> {
        RmspropConsts {
            neg_lr: T::from_f64(-self.lr),
            alpha: T::from_f64(self.alpha),
            one_minus_alpha: T::from_f64(1.0 - self.alpha),
            grad_avg: Lerp::new(1.0 - self.alpha),
            eps: T::from_f64(self.eps),
            momentum: T::from_f64(self.momentum),
            centered: self.centered,
            with_momentum: self.momentum > 0.0,
            decay: Decay::new(self.weight_decay, false, self.lr, self.maximize),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for RMSprop {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &RmspropConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let (v, avg, m) = match (c.centered, c.with_momentum, b) {
            (false, false, [v]) => (v, None, None),
            (false, true, [v, m]) => (v, None, Some(m)),
            (true, false, [v, a]) => (v, Some(a), None),
            (true, true, [v, a, m]) => (v, Some(a), Some(m)),
            _ => unreachable!("buffers() and update() agree on the buffer count"),
        };
        let d = c.decay.grad(g, *p);
        *v = ema_sq(*v, d, c.alpha, c.one_minus_alpha);
        // Centred: divide by the variance estimate v − E[g]², not by v.
        let denom = match avg {
            Some(a) => {
                *a = ema(*a, d, &c.grad_avg);
                (*v - *a * *a).sqrt() + c.eps
            }
            None => v.sqrt() + c.eps,
        };
        match m {
            Some(m) => {
                *m = *m * c.momentum + d / denom;
                *p = *p + *m * c.neg_lr;
            }
            None => *p = *p + (d / denom) * c.neg_lr,
        }
    }
}
