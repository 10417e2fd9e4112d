//! ADOPT: Adam whose second moment never sees the gradient it normalises.

use super::lane::Lane;
use super::mechanics::moment;
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// ADOPT (Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any
    /// β₂ with the Optimal Rate", NeurIPS 2024), as `optax.contrib.adopt`:
    /// the gradient is normalised by the second moment of the *previous*
    /// steps, clipped, and only then averaged, which removes Adam's
    /// dependence of convergence on β₂.
    ///
    /// ```text
    /// step 1:   ν ← g²,  m ← 0                       (θ does not move)
    /// step t:   r ← g / max(√ν, ε)
    ///           r ← clip(r, ±(t − 1)^¼)              (if use_clipping)
    ///           m ← (1 − β₁)·r + β₁·m
    ///           ν ← (1 − β₂)·g² + β₂·ν
    ///           θ ← θ − γ·m                           (θ − γ·((1 − β₁)·r + β₁·m) if nesterov)
    /// ```
    /// No bias correction and no weight decay (optax has none).
    pub struct Adopt: "adopt" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂).
        betas: (f64, f64) = (0.9, 0.9999); check check::betas,
        /// ε: the least value √ν is divided by, > 0.
        eps: f64 = 1e-6; check check::positive,
        /// Apply the momentum formula once more to the new momentum.
        nesterov: bool = false,
        /// Clip the normalised gradient at ±(t − 1)^¼.
        use_clipping: bool = true,
    }
}

/// Per-step constants of [`Adopt`].
#[derive(Clone, Copy, Debug)]
pub struct AdoptConsts<T> {
    b1: T,
    w1: T,
    b2: T,
    w2: T,
    eps: T,
    clip: Option<T>,
    nesterov: bool,
    neg_lr: T,
}

impl Rule for Adopt {
    type Consts<T: Real> = AdoptConsts<T>;

    const PAPER: &'static str = "Taniguchi et al. 2024";
    const REFERENCE: &'static str = "optax.contrib.adopt";
    const USE_WHEN: &'static str =
        "Adam that converges whatever beta2 (e.g. small batches or heavy-tailed noise); Adam-like tuning";
    const EXAMPLES: &'static [&'static str] = &[
        "adopt(lr=0.05)",
        "adopt(lr=0.05,betas=0.9,0.99,nesterov=true,use_clipping=false)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdoptConsts<T> {
        // The first step only sets ν = g² (β₂ counts as 0, β₁ as 1).
        let (b1, b2) = if step == 1 { (1.0, 0.0) } else { self.betas };
        AdoptConsts {
            b1: T::from_f64(b1),
            w1: T::from_f64(1.0 - b1),
            b2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            eps: T::from_f64(self.eps),
            clip: self
                .use_clipping
                .then(|| T::from_f64(((step - 1) as f64).powf(0.25))),
            nesterov: self.nesterov,
            neg_lr: T::from_f64(-self.lr),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Adopt {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdoptConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m, nu] = b else {
            unreachable!("adopt has two buffers")
        };
        let mut r = g / nu.sqrt().max(c.eps);
        if let Some(clip) = c.clip {
            r = r.max(-clip).min(clip);
        }
        *nu = moment(*nu, g * g, c.b2, c.w2);
        *m = moment(*m, r, c.b1, c.w1);
        let d = if c.nesterov {
            moment(*m, r, c.b1, c.w1)
        } else {
            *m
        };
        *p = *p + d * c.neg_lr;
    }
}
