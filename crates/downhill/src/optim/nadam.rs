//! NAdam: Adam with Nesterov momentum.

use super::lane::Lane;
use super::mechanics::{bias_correction, ema, ema_sq, Decay, Lerp};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// NAdam (Dozat, 2016), with the momentum schedule of the paper and
    /// optional decoupled weight decay, as `torch.optim.NAdam`.
    ///
    /// With `ψ` the momentum decay, `μₜ = β₁(1 − ½·0.96^(tψ))` and `Πₜ = μ₁⋯μₜ`:
    ///
    /// ```text
    /// g ← ±g + λ·θ                  (or θ ← θ·(1 − γλ) if decoupled)
    /// m ← β₁·m + (1 − β₁)·g
    /// v ← β₂·v + (1 − β₂)·g²
    /// σ ← √(v / (1 − β₂ᵗ)) + ε
    /// θ ← θ − γ(1 − μₜ)/(1 − Πₜ) · g/σ − γμₜ₊₁/(1 − Πₜμₜ₊₁) · m/σ
    /// ```
    pub struct NAdam: "nadam" {
        /// Step size γ.
        lr: f64 = 2e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of the first and second moments.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to the denominator, > 0 (torch also accepts 0, which divides 0 by 0 where a coordinate has never had a gradient).
        eps: f64 = 1e-8; check check::positive,
        /// Weight decay λ (L2, or decoupled when `decoupled_weight_decay`).
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Momentum decay ψ.
        momentum_decay: f64 = 4e-3; check check::non_negative,
        /// Shrink θ directly instead of adding λθ to the gradient.
        decoupled_weight_decay: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`NAdam`].
#[derive(Clone, Copy, Debug)]
pub struct NadamConsts<T> {
    w1: Lerp<T>,
    beta2: T,
    w2: T,
    bc2: T,
    eps: T,
    coef_grad: T,
    coef_avg: T,
    decay: Decay<T>,
}

impl NAdam {
    fn mu(&self, step: u64) -> f64 {
        self.betas.0 * (1.0 - 0.5 * 0.96f64.powf(step as f64 * self.momentum_decay))
    }
}

impl Rule for NAdam {
    type Consts<T: Real> = NadamConsts<T>;

    const PAPER: &'static str = "Dozat 2016";
    const REFERENCE: &'static str = "torch.optim.NAdam";
    const USE_WHEN: &'static str =
        "Adam with Nesterov momentum: often a little faster early in training";
    const EXAMPLES: &'static [&'static str] = &["nadam(lr=0.05)"];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn scalars(&self) -> &'static [(&'static str, f64)] {
        &[("mu_product", 1.0)]
    }

    fn prepare<T: Real>(
        &self,
        step: u64,
        _: bool,
        scalars: &mut [f64],
        _: &[f64],
    ) -> NadamConsts<T> {
        let (mu, mu_next) = (self.mu(step), self.mu(step + 1));
        scalars[0] *= mu;
        let mu_product = scalars[0];
        NadamConsts {
            w1: Lerp::new(1.0 - self.betas.0),
            beta2: T::from_f64(self.betas.1),
            w2: T::from_f64(1.0 - self.betas.1),
            bc2: T::from_f64(bias_correction(self.betas.1, step)),
            eps: T::from_f64(self.eps),
            coef_grad: T::from_f64(-self.lr * (1.0 - mu) / (1.0 - mu_product)),
            coef_avg: T::from_f64(-self.lr * mu_next / (1.0 - mu_product * mu_next)),
            decay: Decay::new(
                self.weight_decay,
                self.decoupled_weight_decay,
                self.lr,
                self.maximize,
            ),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for NAdam {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &NadamConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m, v] = b else {
            unreachable!("nadam has two buffers")
        };
        let d = c.decay.grad(g, *p);
        *m = ema(*m, d, &c.w1);
        *v = ema_sq(*v, d, c.beta2, c.w2);
        let denom = (*v / c.bc2).sqrt() + c.eps;
        let q = c.decay.param(*p) + (d / denom) * c.coef_grad;
        *p = q + (*m / denom) * c.coef_avg;
    }
}
