//! ASGD: SGD whose iterates are averaged (Polyak–Ruppert).

use super::lane::Lane;
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Averaged SGD (Polyak & Juditsky, "Acceleration of Stochastic
    /// Approximation by Averaging", 1992), as `torch.optim.ASGD`. With `t`
    /// the step, the rate ηₜ and averaging weight μₜ are those computed at
    /// the end of the previous step (η₁ = γ, μ₁ = 1):
    ///
    /// ```text
    /// g ← ±g + λ_wd·θ
    /// θ ← θ·(1 − λ·ηₜ);  θ ← θ − ηₜ·g
    /// a ← a + μₜ·(θ − a)           (a ← θ when μₜ = 1)
    /// ηₜ₊₁ ← γ / (1 + λ·γ·t)^α,   μₜ₊₁ ← 1 / max(1, t − t₀)
    /// ```
    /// The model is evaluated at the average `a`, which the trainer uses
    /// for its held-out metrics and checkpoints (`Optimizer::eval_params`).
    pub struct Asgd: "asgd" {
        /// Learning rate γ.
        lr: f64 = 1e-2; check check::non_negative,
        /// Decay term λ of the rate.
        lambd: f64 = 1e-4; check check::non_negative,
        /// Power α of the rate's decay.
        alpha: f64 = 0.75; check check::non_negative,
        /// Step t₀ after which averaging starts.
        t0: f64 = 1e6; check check::non_negative,
        /// L2 penalty λ_wd.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`Asgd`].
#[derive(Clone, Copy, Debug)]
pub struct AsgdConsts<T> {
    sign: T,
    wd: T,
    shrink: T,
    neg_eta: T,
    mu: T,
    copy: bool,
}

impl Rule for Asgd {
    type Consts<T: Real> = AsgdConsts<T>;

    const PAPER: &'static str = "Polyak & Juditsky 1992";
    const REFERENCE: &'static str = "torch.optim.ASGD";
    const USE_WHEN: &'static str =
        "convex or nearly convex problems trained with SGD: the averaged iterate is far less noisy than the last one";
    const EXAMPLES: &'static [&'static str] = &[
        "asgd(lr=0.1,t0=5)",
        "asgd(lr=0.1,t0=0,lambd=0.01,alpha=0.5,weight_decay=0.001)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["ax"]
    }

    fn scalars(&self) -> &'static [(&'static str, f64)] {
        &[("eta", 0.0), ("mu", 1.0)]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, s: &mut [f64], _: &[f64]) -> AsgdConsts<T> {
        if step == 1 {
            // torch starts η at the group's rate when the state is created.
            s[0] = self.lr;
            s[1] = 1.0;
        }
        let (eta, mu) = (s[0], s[1]);
        // The next step's η and μ, from this step's rate and count.
        let t = step as f64;
        s[0] = self.lr / (1.0 + self.lambd * self.lr * t).powf(self.alpha);
        s[1] = 1.0 / (t - self.t0).max(1.0);
        AsgdConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            wd: T::from_f64(self.weight_decay),
            shrink: T::from_f64(1.0 - self.lambd * eta),
            neg_eta: T::from_f64(-eta),
            mu: T::from_f64(mu),
            copy: mu == 1.0,
        }
    }

    fn eval_point<T: Real>(&self, _: &[f64], _p: &[T], bufs: &[&[T]], out: &mut [T]) -> bool {
        out.copy_from_slice(bufs[0]);
        true
    }

    crate::pointwise_rule!();
}

impl Pointwise for Asgd {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &AsgdConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [a] = b else {
            unreachable!("asgd has one buffer")
        };
        let g = g * c.sign + *p * c.wd;
        *p = *p * c.shrink;
        *p = *p + g * c.neg_eta;
        *a = if c.copy { *p } else { *a + (*p - *a) * c.mu };
    }
}
