//! Adamax: Adam with the infinity norm in place of the second moment.

use super::lane::Lane;
use super::mechanics::{bias_correction, ema, Decay, Lerp};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Adamax (Kingma & Ba, 2015, §7.1), as `torch.optim.Adamax`.
    ///
    /// ```text
    /// g ← ±g + λ·θ
    /// m ← β₁·m + (1 − β₁)·g
    /// u ← max(β₂·u, |g| + ε)
    /// θ ← θ − γ/(1 − β₁ᵗ) · m / u
    /// ```
    pub struct Adamax: "adamax" {
        /// Step size γ.
        lr: f64 = 2e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of the first moment and the infinity norm.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to |g|, > 0 (torch also accepts 0, which divides 0 by 0 for a coordinate whose gradients were all 0).
        eps: f64 = 1e-8; check check::positive,
        /// L2 penalty λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`Adamax`].
#[derive(Clone, Copy, Debug)]
pub struct AdamaxConsts<T> {
    neg_clr: T,
    w1: Lerp<T>,
    beta2: T,
    eps: T,
    decay: Decay<T>,
}

impl Rule for Adamax {
    type Consts<T: Real> = AdamaxConsts<T>;

    const PAPER: &'static str = "Kingma & Ba 2015";
    const REFERENCE: &'static str = "torch.optim.Adamax";
    const USE_WHEN: &'static str =
        "Adam with an infinity-norm second moment: robust to rare huge gradients";
    const EXAMPLES: &'static [&'static str] = &["adamax(lr=0.1)"];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_inf"]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdamaxConsts<T> {
        AdamaxConsts {
            neg_clr: T::from_f64(-self.lr / bias_correction(self.betas.0, step)),
            w1: Lerp::new(1.0 - self.betas.0),
            beta2: T::from_f64(self.betas.1),
            eps: T::from_f64(self.eps),
            decay: Decay::new(self.weight_decay, false, self.lr, self.maximize),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Adamax {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdamaxConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m, u] = b else {
            unreachable!("adamax has two buffers")
        };
        let d = c.decay.grad(g, *p);
        *m = ema(*m, d, &c.w1);
        *u = (*u * c.beta2).maximum(d.abs() + c.eps);
        *p = *p + (*m / *u) * c.neg_clr;
    }
}
