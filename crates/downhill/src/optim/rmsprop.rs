//! RMSprop: steps divided by a running RMS of the gradient.

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

/// `σ` for one element, with `avg` the centered first moment when present.
#[inline(always)]
fn denominator<T: Real>(c: &RmspropConsts<T>, v: T, avg: Option<T>) -> T {
    match avg {
        Some(a) => (v - a * a).sqrt() + c.eps,
        None => v.sqrt() + c.eps,
    }
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
    fn update<T: Real>(c: &RmspropConsts<T>, p: &mut [T], g: &[T], b: &mut [&mut [T]]) {
        // One loop per variant keeps each loop branch-free and vectorisable.
        match (c.centered, c.with_momentum, b) {
            (false, false, [v]) => {
                for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                    let d = c.decay.grad(g, *p);
                    *v = ema_sq(*v, d, c.alpha, c.one_minus_alpha);
                    *p = *p + c.neg_lr * (d / denominator(c, *v, None));
                }
            }
            (false, true, [v, m]) => {
                for (((p, &g), v), m) in p.iter_mut().zip(g).zip(v.iter_mut()).zip(m.iter_mut()) {
                    let d = c.decay.grad(g, *p);
                    *v = ema_sq(*v, d, c.alpha, c.one_minus_alpha);
                    *m = *m * c.momentum + d / denominator(c, *v, None);
                    *p = *p + c.neg_lr * *m;
                }
            }
            (true, false, [v, a]) => {
                for (((p, &g), v), a) in p.iter_mut().zip(g).zip(v.iter_mut()).zip(a.iter_mut()) {
                    let d = c.decay.grad(g, *p);
                    *v = ema_sq(*v, d, c.alpha, c.one_minus_alpha);
                    *a = ema(*a, d, &c.grad_avg);
                    *p = *p + c.neg_lr * (d / denominator(c, *v, Some(*a)));
                }
            }
            (true, true, [v, a, m]) => {
                for ((((p, &g), v), a), m) in p
                    .iter_mut()
                    .zip(g)
                    .zip(v.iter_mut())
                    .zip(a.iter_mut())
                    .zip(m.iter_mut())
                {
                    let d = c.decay.grad(g, *p);
                    *v = ema_sq(*v, d, c.alpha, c.one_minus_alpha);
                    *a = ema(*a, d, &c.grad_avg);
                    *m = *m * c.momentum + d / denominator(c, *v, Some(*a));
                    *p = *p + c.neg_lr * *m;
                }
            }
            _ => unreachable!("buffers() and update() agree on the buffer count"),
        }
    }
}
