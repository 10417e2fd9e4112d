//! AdaBelief: Adam whose second moment measures the gradient's surprise.

use super::lane::Lane;
use super::mechanics::{bias_correction, moment};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// AdaBelief (Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by
    /// the Belief in Observed Gradients", NeurIPS 2020), as `optax.adabelief`:
    /// Adam with the second moment of `g − m`, how far the gradient is from
    /// its prediction, instead of `g`.
    ///
    /// ```text
    /// m ← (1 − β₁)·g + β₁·m
    /// s ← (1 − β₂)·(g − m)² + β₂·s + ε_root
    /// m̂ ← m/(1 − β₁ᵗ)    (nesterov: β₁·m/(1 − β₁ᵗ⁺¹) + (1 − β₁)·g/(1 − β₁ᵗ))
    /// θ ← θ − γ·m̂ / (√(s/(1 − β₂ᵗ)) + ε)
    /// ```
    pub struct AdaBelief: "adabelief" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of the moments.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to the denominator, > 0 (optax's default).
        eps: f64 = 1e-16; check check::positive,
        /// ε_root added to the second moment at every step (it accumulates, as in optax).
        eps_root: f64 = 1e-16; check check::non_negative,
        /// Nesterov's form of the first moment.
        nesterov: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`AdaBelief`].
#[derive(Clone, Copy, Debug)]
pub struct AdaBeliefConsts<T> {
    sign: T,
    beta1: T,
    w1: T,
    beta2: T,
    w2: T,
    eps: T,
    eps_root: T,
    bc1: T,
    bc1_next: T,
    bc2: T,
    nesterov: bool,
    neg_lr: T,
}

impl Rule for AdaBelief {
    type Consts<T: Real> = AdaBeliefConsts<T>;

    const PAPER: &'static str = "Zhuang et al. 2020";
    const REFERENCE: &'static str = "optax.adabelief";
    const USE_WHEN: &'static str =
        "Adam's speed with steps that shrink where gradients are predictable and grow where they are not";
    const EXAMPLES: &'static [&'static str] = &[
        "adabelief(lr=0.05)",
        "adabelief(lr=0.05,nesterov=true,eps=1e-8)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_var"]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdaBeliefConsts<T> {
        let (b1, b2) = self.betas;
        AdaBeliefConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            beta1: T::from_f64(b1),
            w1: T::from_f64(1.0 - b1),
            beta2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            eps: T::from_f64(self.eps),
            eps_root: T::from_f64(self.eps_root),
            bc1: T::from_f64(bias_correction(b1, step)),
            bc1_next: T::from_f64(bias_correction(b1, step + 1)),
            bc2: T::from_f64(bias_correction(b2, step)),
            nesterov: self.nesterov,
            neg_lr: T::from_f64(-self.lr),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for AdaBelief {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdaBeliefConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m, s] = b else {
            unreachable!("adabelief has two buffers")
        };
        let g = g * c.sign;
        *m = moment(*m, g, c.beta1, c.w1);
        let e = g - *m;
        *s = moment(*s, e * e, c.beta2, c.w2) + c.eps_root;
        let m_hat = if c.nesterov {
            (*m / c.bc1_next) * c.beta1 + (g / c.bc1) * c.w1
        } else {
            *m / c.bc1
        };
        let u = m_hat / ((*s / c.bc2).sqrt() + c.eps);
        *p = *p + u * c.neg_lr;
    }
}
