//! RAdam: Adam with a rectified adaptive learning rate.

use super::lane::Lane;
use super::mechanics::{bias_correction, ema, ema_sq, Decay, Lerp};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// RAdam (Liu et al., 2020), with optional decoupled weight decay, as
    /// `torch.optim.RAdam`.
    ///
    /// While the variance of the adaptive step is intractable (ρₜ ≤ 5) the
    /// update is plain momentum SGD; afterwards Adam's step times a
    /// rectification `r`:
    ///
    /// ```text
    /// g ← ±g + λ·θ                  (or θ ← θ·(1 − γλ) if decoupled)
    /// m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²,   m̂ ← m/(1 − β₁ᵗ)
    /// ρ∞ = 2/(1 − β₂) − 1,   ρₜ = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)
    /// if ρₜ > 5:  r = √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ)),
    ///             θ ← θ − γ·m̂·√(1 − β₂ᵗ)/(√v + ε)·r
    /// else:       θ ← θ − γ·m̂
    /// ```
    pub struct RAdam: "radam" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of the first and second moments.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to the denominator, > 0 (torch also accepts 0, which divides 0 by 0 where a coordinate has never had a gradient).
        eps: f64 = 1e-8; check check::positive,
        /// Weight decay λ (L2, or decoupled when `decoupled_weight_decay`).
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Shrink θ directly instead of adding λθ to the gradient.
        decoupled_weight_decay: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`RAdam`].
#[derive(Clone, Copy, Debug)]
pub struct RadamConsts<T> {
    w1: Lerp<T>,
    beta2: T,
    w2: T,
    bc1: T,
    lr: T,
    bc2_sqrt: T,
    eps: T,
    rect: Option<T>,
    decay: Decay<T>,
}

impl Rule for RAdam {
    type Consts<T: Real> = RadamConsts<T>;

    const PAPER: &'static str = "Liu et al. 2020";
    const REFERENCE: &'static str = "torch.optim.RAdam";
    const USE_WHEN: &'static str =
        "Adam without a warm-up schedule: the variance rectification damps early steps";
    const EXAMPLES: &'static [&'static str] = &["radam(lr=0.05)"];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> RadamConsts<T> {
        let (beta1, beta2) = self.betas;
        let bc2 = bias_correction(beta2, step);
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * step as f64 * beta2.powf(step as f64) / bc2;
        let rect = (rho_t > 5.0).then(|| {
            (((rho_t - 4.0) * (rho_t - 2.0) * rho_inf)
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt()
        });
        RadamConsts {
            w1: Lerp::new(1.0 - beta1),
            beta2: T::from_f64(beta2),
            w2: T::from_f64(1.0 - beta2),
            bc1: T::from_f64(bias_correction(beta1, step)),
            lr: T::from_f64(self.lr),
            bc2_sqrt: T::from_f64(bc2.sqrt()),
            eps: T::from_f64(self.eps),
            rect: rect.map(T::from_f64),
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

impl Pointwise for RAdam {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &RadamConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m, v] = b else {
            unreachable!("radam has two buffers")
        };
        let d = c.decay.grad(g, *p);
        *m = ema(*m, d, &c.w1);
        *v = ema_sq(*v, d, c.beta2, c.w2);
        let step = *m / c.bc1 * c.lr;
        // Rectified once the variance of the adaptive rate is tractable.
        let step = match c.rect {
            Some(rect) => step * (v.sqrt() + c.eps).divides(c.bc2_sqrt) * rect,
            None => step,
        };
        *p = c.decay.param(*p) - step;
    }
}
