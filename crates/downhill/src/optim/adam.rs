//! Adam, with AMSGrad and optional decoupled weight decay.

use super::lane::Lane;
use super::mechanics::{bias_correction, ema, ema_sq, Decay, Lerp};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Adam (Kingma & Ba, 2015), with the AMSGrad variant (Reddi, Kale & Kumar,
    /// 2018) and decoupled weight decay (Loshchilov & Hutter, 2019), as
    /// `torch.optim.Adam`.
    ///
    /// ```text
    /// g ← ±g + λ·θ                  (or θ ← θ·(1 − γλ) if decoupled)
    /// m ← β₁·m + (1 − β₁)·g
    /// v ← β₂·v + (1 − β₂)·g²
    /// v̂ ← max(v̂, v) if amsgrad, else v
    /// θ ← θ − γ/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
    /// ```
    pub struct Adam: "adam" {
        /// Step size γ (α in the paper).
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of the first and second moments.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to the denominator, > 0 (torch also accepts 0, which divides 0 by 0 where a coordinate has never had a gradient).
        eps: f64 = 1e-8; check check::positive,
        /// Weight decay λ (L2, or decoupled when `decoupled_weight_decay`).
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Use the running maximum of `v` (AMSGrad).
        amsgrad: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
        /// Shrink θ directly instead of adding λθ to the gradient (AdamW).
        decoupled_weight_decay: bool = false,
    }
}

/// Per-step constants of [`Adam`] and [`super::AdamW`].
#[derive(Clone, Copy, Debug)]
pub struct AdamConsts<T> {
    neg_step_size: T,
    bc2_sqrt: T,
    eps: T,
    w1: Lerp<T>,
    beta2: T,
    w2: T,
    decay: Decay<T>,
}

impl Rule for Adam {
    type Consts<T: Real> = AdamConsts<T>;

    const PAPER: &'static str = "Kingma & Ba 2015";
    const REFERENCE: &'static str = "torch.optim.Adam";
    const USE_WHEN: &'static str =
        "the default for most networks; little tuning beyond the learning rate";
    const EXAMPLES: &'static [&'static str] = &["adam(lr=0.05)", "adam(lr=0.05,amsgrad=true)"];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        if self.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdamConsts<T> {
        let (beta1, beta2) = self.betas;
        AdamConsts {
            neg_step_size: T::from_f64(-self.lr / bias_correction(beta1, step)),
            bc2_sqrt: T::from_f64(bias_correction(beta2, step).sqrt()),
            eps: T::from_f64(self.eps),
            w1: Lerp::new(1.0 - beta1),
            beta2: T::from_f64(beta2),
            w2: T::from_f64(1.0 - beta2),
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

impl Pointwise for Adam {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdamConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let (m, v, vmax) = match b {
            [m, v] => (m, v, None),
            [m, v, vmax] => (m, v, Some(vmax)),
            _ => unreachable!("buffers() and update() agree on the buffer count"),
        };
        let d = c.decay.grad(g, *p);
        *m = ema(*m, d, &c.w1);
        *v = ema_sq(*v, d, c.beta2, c.w2);
        // AMSGrad divides by the running maximum of v.
        let second = match vmax {
            Some(vmax) => {
                *vmax = vmax.maximum(*v);
                *vmax
            }
            None => *v,
        };
        let denom = second.sqrt() / c.bc2_sqrt + c.eps;
        *p = c.decay.param(*p) + (*m / denom) * c.neg_step_size;
    }
}
