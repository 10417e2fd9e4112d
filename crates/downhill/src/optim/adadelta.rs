//! Adadelta: step sizes from running averages of squared gradients and updates.

use super::lane::Lane;
use super::mechanics::{ema_sq, Decay};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Adadelta (Zeiler, 2012), as `torch.optim.Adadelta`.
    ///
    /// The ratio of two running RMS values sets each coordinate's step, so the
    /// units of the update match those of the parameter:
    ///
    /// ```text
    /// g ← ±g + λ·θ
    /// v ← ρ·v + (1 − ρ)·g²
    /// Δ ← √(u + ε) / √(v + ε) · g
    /// u ← ρ·u + (1 − ρ)·Δ²
    /// θ ← θ − γ·Δ
    /// ```
    pub struct Adadelta: "adadelta" {
        /// Scale γ applied to the update (torch's `lr`; 1 in the paper).
        lr: f64 = 1.0; check check::non_negative,
        /// Decay ρ of both running averages.
        rho: f64 = 0.9; check check::unit_closed,
        /// ε inside both square roots, > 0 (torch also accepts 0, with which the update √u/√v·g stays 0 forever, and is 0/0 where g = 0).
        eps: f64 = 1e-6; check check::positive,
        /// L2 penalty λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`Adadelta`].
#[derive(Clone, Copy, Debug)]
pub struct AdadeltaConsts<T> {
    neg_lr: T,
    rho: T,
    one_minus_rho: T,
    eps: T,
    decay: Decay<T>,
}

impl Rule for Adadelta {
    type Consts<T: Real> = AdadeltaConsts<T>;

    const PAPER: &'static str = "Zeiler 2012";
    const REFERENCE: &'static str = "torch.optim.Adadelta";
    const USE_WHEN: &'static str = "you want per-coordinate steps without choosing a learning rate";
    const EXAMPLES: &'static [&'static str] = &["adadelta(lr=5)"];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["square_avg", "acc_delta"]
    }

    fn prepare<T: Real>(&self, _: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdadeltaConsts<T> {
        AdadeltaConsts {
            neg_lr: T::from_f64(-self.lr),
            rho: T::from_f64(self.rho),
            one_minus_rho: T::from_f64(1.0 - self.rho),
            eps: T::from_f64(self.eps),
            decay: Decay::new(self.weight_decay, false, self.lr, self.maximize),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Adadelta {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdadeltaConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [v, u] = b else {
            unreachable!("adadelta has two buffers")
        };
        let d = c.decay.grad(g, *p);
        *v = ema_sq(*v, d, c.rho, c.one_minus_rho);
        let delta = (*u + c.eps).sqrt() / (*v + c.eps).sqrt() * d;
        *u = ema_sq(*u, delta, c.rho, c.one_minus_rho);
        *p = *p + delta * c.neg_lr;
    }
}
