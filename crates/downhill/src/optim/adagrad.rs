//! Adagrad: per-coordinate step sizes from the sum of squared gradients.

use super::lane::Lane;
use super::mechanics::Decay;
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Adagrad (Duchi, Hazan & Singer, 2011), as `torch.optim.Adagrad`.
    ///
    /// Coordinates that rarely see a gradient keep large steps, which suits
    /// sparse, unequally frequent features. With `t` the step count:
    ///
    /// ```text
    /// g ← ±g + λ·θ
    /// γₜ ← γ / (1 + (t − 1)·η)          (lr_decay η)
    /// s ← s + g²                         (s starts at initial_accumulator_value)
    /// θ ← θ − γₜ · g / (√s + ε)
    /// ```
    pub struct Adagrad: "adagrad" {
        /// Learning rate γ.
        lr: f64 = 1e-2; check check::non_negative,
        /// Learning-rate decay η.
        lr_decay: f64 = 0.0; check check::non_negative,
        /// L2 penalty λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Starting value of the accumulator `s`.
        initial_accumulator_value: f64 = 0.0; check check::non_negative,
        /// ε added to the denominator, > 0 (torch also accepts 0, which divides 0 by 0 where a coordinate has never had a gradient).
        eps: f64 = 1e-10; check check::positive,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`Adagrad`].
#[derive(Clone, Copy, Debug)]
pub struct AdagradConsts<T> {
    neg_clr: T,
    eps: T,
    decay: Decay<T>,
}

impl Rule for Adagrad {
    type Consts<T: Real> = AdagradConsts<T>;

    const PAPER: &'static str = "Duchi et al. 2011";
    const REFERENCE: &'static str = "torch.optim.Adagrad";
    const USE_WHEN: &'static str =
        "sparse features (text, click logs): rare coordinates keep large steps";
    const EXAMPLES: &'static [&'static str] =
        &["adagrad(lr=0.5,lr_decay=0.01,initial_accumulator_value=0.1)"];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["sum"]
    }

    fn buffer_init(&self, _: &str) -> f64 {
        self.initial_accumulator_value
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdagradConsts<T> {
        let clr = self.lr / (1.0 + (step - 1) as f64 * self.lr_decay);
        AdagradConsts {
            neg_clr: T::from_f64(-clr),
            eps: T::from_f64(self.eps),
            decay: Decay::new(self.weight_decay, false, self.lr, self.maximize),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Adagrad {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdagradConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [s] = b else {
            unreachable!("adagrad has one buffer")
        };
        let d = c.decay.grad(g, *p);
        *s = *s + d * d;
        *p = *p + (d / (s.sqrt() + c.eps)) * c.neg_clr;
    }
}
