//! AdEMAMix: Adam plus a slow moving average of the gradient.

use super::lane::Lane;
use super::mechanics::{bias_correction, moment};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// AdEMAMix (Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer:
    /// Better, Faster, Older", 2024), as `optax.contrib.ademamix`: Adam's
    /// fast average `m₁` mixed with a slow one `m₂` (β₃ near 1 remembers
    /// tens of thousands of steps), which the paper finds keeps old
    /// gradients useful on language models.
    ///
    /// ```text
    /// m₁ ← (1 − β₁)·g + β₁·m₁
    /// m₂ ← (1 − β₃)·g + β₃·m₂                  (never bias-corrected)
    /// ν  ← (1 − β₂)·g² + β₂·ν
    /// u  ← (m₁/(1 − β₁ᵗ) + α·m₂) / (√(ν/(1 − β₂ᵗ) + ε_root) + ε) + λ·θ
    /// θ  ← θ − γ·u
    /// ```
    /// With `alpha_warmup = T_α` and `beta3_warmup = T₃` (0: none), α and β₃
    /// warm up over the first steps, evaluated at the number of steps
    /// already taken, s = t − 1, as optax evaluates a schedule:
    ///
    /// ```text
    /// α(s)  = α·s/T_α                                   for s < T_α
    /// β₃(s) = exp(ln β₁·ln β₃ / ((1 − s/T₃)·ln β₃ + (s/T₃)·ln β₁))   for s < T₃
    /// ```
    /// (the paper's schedulers: α grows linearly from 0; β₃'s half-life
    /// grows linearly from β₁'s to β₃'s). The paper warms both up over the
    /// whole run when training from scratch.
    pub struct AdEMAMix: "ademamix" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂, β₃): the fast average, the second moment, the slow average.
        betas: (f64, f64, f64) = (0.9, 0.999, 0.9999); check betas3,
        /// α: the weight of the slow average.
        alpha: f64 = 5.0; check check::non_negative,
        /// ε added to the denominator, > 0.
        eps: f64 = 1e-8; check check::positive,
        /// ε added inside the square root (optax's `eps_root`).
        eps_root: f64 = 0.0; check check::non_negative,
        /// Weight decay λ, added to the update (decoupled; multiplied by γ).
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Steps over which α grows linearly from 0 (0: no warm-up).
        alpha_warmup: u64 = 0,
        /// Steps over which β₃ grows from β₁ (0: no warm-up).
        beta3_warmup: u64 = 0,
    }
}

fn betas3(b: &(f64, f64, f64)) -> std::result::Result<(), &'static str> {
    if [b.0, b.1, b.2].iter().all(|x| (0.0..1.0).contains(x)) {
        Ok(())
    } else {
        Err("three numbers, each in [0, 1)")
    }
}

impl AdEMAMix {
    /// α after `s` completed steps.
    fn alpha_at(&self, s: u64) -> f64 {
        if s < self.alpha_warmup {
            self.alpha * s as f64 / self.alpha_warmup as f64
        } else {
            self.alpha
        }
    }

    /// β₃ after `s` completed steps.
    fn beta3_at(&self, s: u64) -> f64 {
        let (b1, _, b3) = self.betas;
        if s >= self.beta3_warmup || b1 <= 0.0 || b3 <= 0.0 {
            return b3;
        }
        let a = s as f64 / self.beta3_warmup as f64;
        let (l1, l3) = (b1.ln(), b3.ln());
        (l1 * l3 / ((1.0 - a) * l3 + a * l1)).exp().min(b3)
    }
}

/// Per-step constants of [`AdEMAMix`].
#[derive(Clone, Copy, Debug)]
pub struct AdEMAMixConsts<T> {
    b1: T,
    w1: T,
    b2: T,
    w2: T,
    b3: T,
    w3: T,
    bc1: T,
    bc2: T,
    alpha: T,
    eps: T,
    eps_root: T,
    wd: Option<T>,
    neg_lr: T,
}

impl Rule for AdEMAMix {
    type Consts<T: Real> = AdEMAMixConsts<T>;

    const PAPER: &'static str = "Pagliardini et al. 2024";
    const REFERENCE: &'static str = "optax.contrib.ademamix";
    const USE_WHEN: &'static str =
        "long runs, language models: a slow average lets old gradients keep helping; Adam-like tuning";
    const EXAMPLES: &'static [&'static str] = &[
        "ademamix(lr=0.01)",
        "ademamix(lr=0.02,betas=0.9,0.999,0.99,weight_decay=0.01,alpha_warmup=20,beta3_warmup=20,eps_root=1e-10)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_slow", "exp_avg_sq"]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdEMAMixConsts<T> {
        let (b1, b2, _) = self.betas;
        let b3 = self.beta3_at(step - 1);
        AdEMAMixConsts {
            b1: T::from_f64(b1),
            w1: T::from_f64(1.0 - b1),
            b2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            b3: T::from_f64(b3),
            w3: T::from_f64(1.0 - b3),
            bc1: T::from_f64(bias_correction(b1, step)),
            bc2: T::from_f64(bias_correction(b2, step)),
            alpha: T::from_f64(self.alpha_at(step - 1)),
            eps: T::from_f64(self.eps),
            eps_root: T::from_f64(self.eps_root),
            // optax skips the decay when it is the constant 0.
            wd: (self.weight_decay != 0.0).then(|| T::from_f64(self.weight_decay)),
            neg_lr: T::from_f64(-self.lr),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for AdEMAMix {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AdEMAMixConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [m1, m2, nu] = b else {
            unreachable!("ademamix has three buffers")
        };
        *m1 = moment(*m1, g, c.b1, c.w1);
        *m2 = moment(*m2, g, c.b3, c.w3);
        *nu = moment(*nu, g * g, c.b2, c.w2);
        let mut u = (*m1 / c.bc1 + *m2 * c.alpha) / ((*nu / c.bc2 + c.eps_root).sqrt() + c.eps);
        if let Some(wd) = c.wd {
            u = u + *p * wd;
        }
        *p = *p + u * c.neg_lr;
    }
}

#[cfg(test)]
mod tests {
    use super::AdEMAMix;

    /// The warm-ups start where the paper starts them and end at the set
    /// values; β₃'s half-life `ln ½/ln β₃` grows linearly in between.
    #[test]
    fn warm_ups_follow_the_papers_schedulers() {
        let r = AdEMAMix {
            alpha_warmup: 100,
            beta3_warmup: 100,
            ..AdEMAMix::default()
        };
        assert_eq!(r.alpha_at(0), 0.0);
        assert_eq!(r.alpha_at(50), 2.5);
        assert_eq!(r.alpha_at(100), 5.0);
        assert!((r.beta3_at(0) - 0.9).abs() < 1e-15);
        assert_eq!(r.beta3_at(100), 0.9999);
        let half_life = |b: f64| 0.5f64.ln() / b.ln();
        let mid = half_life(r.beta3_at(50));
        let want = 0.5 * half_life(0.9) + 0.5 * half_life(0.9999);
        assert!((mid - want).abs() < 1e-6 * want, "{mid} vs {want}");
        assert_eq!(AdEMAMix::default().beta3_at(0), 0.9999);
    }
}
