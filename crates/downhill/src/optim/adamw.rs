//! AdamW: Adam with decoupled weight decay on by default.

use super::adam::AdamConsts;
use super::lane::Lane;
use super::{Adam, Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// AdamW (Loshchilov & Hutter, 2019), as `torch.optim.AdamW`: [`Adam`] with
    /// decoupled weight decay, default λ = 0.01.
    ///
    /// ```text
    /// θ ← θ·(1 − γλ)
    /// m ← β₁·m + (1 − β₁)·g,   v ← β₂·v + (1 − β₂)·g²,   v̂ ← max(v̂, v) if amsgrad
    /// θ ← θ − γ/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
    /// ```
    pub struct AdamW: "adamw" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of the first and second moments.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to the denominator, > 0 (torch also accepts 0, which divides 0 by 0 where a coordinate has never had a gradient).
        eps: f64 = 1e-8; check check::positive,
        /// Decoupled weight decay λ.
        weight_decay: f64 = 1e-2; check check::non_negative,
        /// Use the running maximum of `v` (AMSGrad).
        amsgrad: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

impl AdamW {
    /// The equivalent [`Adam`] configuration; AdamW's arithmetic lives there.
    pub fn as_adam(&self) -> Adam {
        Adam {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
            decoupled_weight_decay: true,
        }
    }
}

impl Rule for AdamW {
    type Consts<T: Real> = AdamConsts<T>;

    const PAPER: &'static str = "Loshchilov & Hutter 2019";
    const REFERENCE: &'static str = "torch.optim.AdamW";
    const USE_WHEN: &'static str =
        "Adam with weight decay that regularises (decoupled); the default for transformers";
    const EXAMPLES: &'static [&'static str] = &["adamw(lr=0.05)"];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        self.as_adam().buffers(_shape)
    }

    fn prepare<T: Real>(
        &self,
        step: u64,
        fresh: bool,
        scalars: &mut [f64],
        group: &[f64],
    ) -> AdamConsts<T> {
        self.as_adam().prepare(step, fresh, scalars, group)
    }

    crate::pointwise_rule!();
}

impl Pointwise for AdamW {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdamConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        Adam::update(c, p, g, b)
    }
}
