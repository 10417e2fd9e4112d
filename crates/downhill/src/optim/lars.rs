//! LARS: SGD with momentum, each tensor's step scaled by a trust ratio.

use super::lamb::trust_ratio;
use super::passes::{par_reduce, sum_squares, sum_squares_zip, Chunk};
use super::{Rule, TensorStep};
use crate::hyper::check;
use crate::{Real, Result};

crate::hyper_struct! {
    /// LARS (You, Gitman & Ginsburg, "Large Batch Training of Convolutional
    /// Networks", 2017), as `optax.lars`: the gradient plus weight decay,
    /// rescaled per tensor by a trust ratio, then heavy-ball momentum.
    ///
    /// ```text
    /// u ← ±g + λ·θ
    /// r ← η·‖θ‖ / (‖u‖ + ε)       (1 when either norm is 0; η the trust coefficient)
    /// b ← −γ·r·u + μ·b
    /// θ ← θ + b                   (Nesterov: θ ← θ − γ·r·u + μ·b)
    /// ```
    /// As in optax, the rate γ is applied before the momentum. Two passes
    /// over memory: the norms, then the step.
    pub struct Lars: "lars" {
        /// Step size γ.
        lr: f64 = 1.0; check check::non_negative,
        /// Weight decay λ, added to the gradient before the trust ratio.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Trust coefficient η.
        trust_coefficient: f64 = 1e-3; check check::positive,
        /// ε added to the update's norm.
        eps: f64 = 0.0; check check::non_negative,
        /// Momentum μ, in [0, 1).
        momentum: f64 = 0.9; check check::unit_open,
        /// Use Nesterov momentum.
        nesterov: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`Lars`].
#[derive(Clone, Copy, Debug)]
pub struct LarsConsts<T> {
    sign: T,
    wd: T,
    neg_lr: T,
    momentum: T,
    nesterov: bool,
    trust_coefficient: f64,
    eps: f64,
}

impl<T: Real> LarsConsts<T> {
    #[inline(always)]
    fn direction(&self, g: T, p: T) -> T {
        self.sign * g + self.wd * p
    }
}

impl Rule for Lars {
    type Consts<T: Real> = LarsConsts<T>;

    const PAPER: &'static str = "You et al. 2017";
    const REFERENCE: &'static str = "optax.lars";
    const USE_WHEN: &'static str =
        "very large batches with SGD (e.g. ResNets at batch 8k+): per-layer trust ratios";
    const EXAMPLES: &'static [&'static str] = &[
        "lars(lr=5,trust_coefficient=0.01)",
        "lars(lr=5,trust_coefficient=0.01,nesterov=true,weight_decay=0.001,eps=1e-9)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["trace"]
    }

    fn check(&self) -> Result<()> {
        if self.nesterov && self.momentum == 0.0 {
            return Err(crate::hyper::invalid_value(
                "lars",
                "nesterov",
                true,
                "nesterov only with momentum > 0",
            ));
        }
        Ok(())
    }

    fn prepare<T: Real>(&self, _: u64, _: bool, _: &mut [f64], _: &[f64]) -> LarsConsts<T> {
        LarsConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            wd: T::from_f64(self.weight_decay),
            neg_lr: T::from_f64(-self.lr),
            momentum: T::from_f64(self.momentum),
            nesterov: self.nesterov,
            trust_coefficient: self.trust_coefficient,
            eps: self.eps,
        }
    }

    fn step_tensor<T: Real>(c: &LarsConsts<T>, t: TensorStep<'_, T>) {
        lars_step(c, t)
    }
}

crate::multiversion! {
    /// LARS's two passes over one tensor, compiled per vector width; each
    /// leaf copies the constants into registers.
    fn lars_step<T: Real>(c: &LarsConsts<T>, t: TensorStep<'_, T>) {
        let mut chunk = Chunk::whole(t.param, t.grad, t.buffers, 1);
        // Pass 1: ‖θ‖² and ‖u‖².
        let (pp, uu) = par_reduce(
            chunk.reborrow(),
            &|k: Chunk<'_, T>| {
                let c = *c;
                let (p, g) = (&*k.p, k.g);
                let uu = sum_squares_zip(g, p, |g, p| c.direction(g, p));
                (sum_squares(p), uu)
            },
            |a, b| (a.0 + b.0, a.1 + b.1),
        );
        let ratio = T::from_f64(trust_ratio(
            pp.sqrt(),
            uu.sqrt(),
            c.trust_coefficient,
            c.eps,
        ));
        // Pass 2: the momentum trace and the step.
        par_reduce(
            chunk.reborrow(),
            &|k: Chunk<'_, T>| {
                let (c, ratio) = (*c, ratio);
                let [b, ..] = k.bufs;
                for ((p, &g), b) in k.p.iter_mut().zip(k.g).zip(b.iter_mut()) {
                    let u = (c.direction(g, *p) * ratio) * c.neg_lr;
                    *b = u + c.momentum * *b;
                    let step = if c.nesterov { u + c.momentum * *b } else { *b };
                    *p = *p + step;
                }
            },
            |(), ()| (),
        );
    }
}
