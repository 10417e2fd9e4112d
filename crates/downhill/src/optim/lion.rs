//! Lion: the sign of an interpolated momentum.

use super::lane::Lane;
use super::mechanics::moment;
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms",
    /// NeurIPS 2023), as `optax.lion`: every coordinate moves by exactly γ
    /// (plus decay), in the direction of an interpolation of the gradient and
    /// the momentum.
    ///
    /// ```text
    /// u ← sign((1 − β₁)·g + β₁·m) + λ·θ       (sign(0) = 0)
    /// θ ← θ − γ·u
    /// m ← (1 − β₂)·g + β₂·m
    /// ```
    /// Its steps are larger than Adam's at the same rate: the paper uses a
    /// rate 3–10× smaller and a weight decay 3–10× larger than AdamW's.
    pub struct Lion: "lion" {
        /// Step size γ.
        lr: f64 = 1e-4; check check::non_negative,
        /// (β₁, β₂): the interpolation of the update and the momentum's decay.
        betas: (f64, f64) = (0.9, 0.99); check check::betas,
        /// Decoupled weight decay λ (optax's default).
        weight_decay: f64 = 1e-3; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`Lion`].
#[derive(Clone, Copy, Debug)]
pub struct LionConsts<T> {
    sign: T,
    beta1: T,
    w1: T,
    beta2: T,
    w2: T,
    wd: T,
    neg_lr: T,
}

impl Rule for Lion {
    type Consts<T: Real> = LionConsts<T>;

    const PAPER: &'static str = "Chen et al. 2023";
    const REFERENCE: &'static str = "optax.lion";
    const USE_WHEN: &'static str =
        "memory matters (one buffer, not Adam's two) and you can afford a rate search: often matches AdamW with a 3-10x smaller rate";
    const EXAMPLES: &'static [&'static str] = &[
        "lion(lr=0.03,weight_decay=0)",
        "lion(lr=0.03,betas=0.95,0.98,weight_decay=0.01)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg"]
    }

    fn prepare<T: Real>(&self, _: u64, _: bool, _: &mut [f64], _: &[f64]) -> LionConsts<T> {
        let (b1, b2) = self.betas;
        LionConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            beta1: T::from_f64(b1),
            w1: T::from_f64(1.0 - b1),
            beta2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            wd: T::from_f64(self.weight_decay),
            neg_lr: T::from_f64(-self.lr),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Lion {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &LionConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m] = b else {
            unreachable!("lion has one buffer")
        };
        let g = g * c.sign;
        let u = moment(*m, g, c.beta1, c.w1).sign() + *p * c.wd;
        *p = *p + u * c.neg_lr;
        *m = moment(*m, g, c.beta2, c.w2);
    }
}
