//! Adan: adaptive Nesterov momentum from gradient differences.

use super::lane::Lane;
use super::mechanics::{bias_correction, moment};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Adan (Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for
    /// Faster Optimizing Deep Models", 2022), as `optax.adan`. With
    /// `Δ = g − g_prev` (0 on the first step):
    ///
    /// ```text
    /// m ← (1 − β₁)·g + β₁·m
    /// v ← (1 − β₂)·Δ + β₂·v
    /// n ← (1 − β₃)·(g + (1 − β₂)·Δ)² + β₃·n
    /// u ← (m̂ + (1 − β₂)·v̂) / (√(n̂ + ε_root) + ε) + λ·θ     (hats: bias-corrected)
    /// θ ← θ − γ·u
    /// ```
    /// `betas` are the three decay rates in optax's form (0.98, 0.92, 0.99),
    /// not the 1 − β form some ports use.
    pub struct Adan: "adan" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂, β₃) of the gradient, the difference and the
        /// squared term.
        betas: (f64, f64, f64) = (0.98, 0.92, 0.99); check unit3,
        /// ε added to the denominator, > 0.
        eps: f64 = 1e-8; check check::positive,
        /// ε_root added under the square root.
        eps_root: f64 = 1e-8; check check::non_negative,
        /// Decoupled weight decay λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

fn unit3(b: &(f64, f64, f64)) -> std::result::Result<(), &'static str> {
    let unit = |x: f64| (0.0..1.0).contains(&x);
    if unit(b.0) && unit(b.1) && unit(b.2) {
        Ok(())
    } else {
        Err("three numbers, each in [0, 1)")
    }
}

/// Per-step constants of [`Adan`].
#[derive(Clone, Copy, Debug)]
pub struct AdanConsts<T> {
    sign: T,
    beta1: T,
    w1: T,
    beta2: T,
    w2: T,
    beta3: T,
    w3: T,
    bc1: T,
    bc2: T,
    bc3: T,
    eps: T,
    eps_root: T,
    wd: T,
    neg_lr: T,
    first: bool,
}

impl Rule for Adan {
    type Consts<T: Real> = AdanConsts<T>;

    const PAPER: &'static str = "Xie et al. 2022";
    const REFERENCE: &'static str = "optax.adan";
    const USE_WHEN: &'static str =
        "vision and language models where Nesterov-style lookahead pays; tolerates large rates and batches";
    const EXAMPLES: &'static [&'static str] = &[
        "adan(lr=0.05)",
        "adan(lr=0.05,weight_decay=0.02,eps_root=0)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad"]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdanConsts<T> {
        let (b1, b2, b3) = self.betas;
        AdanConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            beta1: T::from_f64(b1),
            w1: T::from_f64(1.0 - b1),
            beta2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            beta3: T::from_f64(b3),
            w3: T::from_f64(1.0 - b3),
            bc1: T::from_f64(bias_correction(b1, step)),
            bc2: T::from_f64(bias_correction(b2, step)),
            bc3: T::from_f64(bias_correction(b3, step)),
            eps: T::from_f64(self.eps),
            eps_root: T::from_f64(self.eps_root),
            wd: T::from_f64(self.weight_decay),
            neg_lr: T::from_f64(-self.lr),
            first: step == 1,
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Adan {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdanConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m, v, n, prev] = b else {
            unreachable!("adan has four buffers")
        };
        let g = g * c.sign;
        let diff = if c.first {
            V::splat(T::zero())
        } else {
            g - *prev
        };
        *m = moment(*m, g, c.beta1, c.w1);
        *v = moment(*v, diff, c.beta2, c.w2);
        let sq = g + diff * c.w2;
        *n = moment(*n, sq * sq, c.beta3, c.w3);
        let u = (*m / c.bc1 + (*v / c.bc2) * c.w2) / ((*n / c.bc3 + c.eps_root).sqrt() + c.eps);
        let u = u + *p * c.wd;
        *p = *p + u * c.neg_lr;
        *prev = g;
    }
}
