//! LAMB: Adam's direction, scaled per tensor by a trust ratio.

use super::mechanics::bias_correction;
use super::passes::{par_reduce, sum_squares, Chunk};
use super::{Rule, TensorStep};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// LAMB (You et al., "Large Batch Optimization for Deep Learning: Training
    /// BERT in 76 minutes", ICLR 2020), as `optax.lamb`: Adam's update plus
    /// weight decay, rescaled per tensor so that its norm matches the
    /// parameter's.
    ///
    /// ```text
    /// m ← (1 − β₁)·g + β₁·m,   v ← (1 − β₂)·g² + β₂·v
    /// u ← (m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ) + ε_root) + ε) + λ·θ
    /// r ← ‖θ‖ / ‖u‖            (1 when either norm is 0)
    /// θ ← θ − γ·r·u
    /// ```
    /// Norms are over the whole tensor. Two passes over memory: the first
    /// updates the moments and measures both norms, the second applies the
    /// step (recomputing `u` rather than storing it).
    pub struct Lamb: "lamb" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of the first and second moments.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to the denominator, > 0.
        eps: f64 = 1e-6; check check::positive,
        /// ε added inside the square root (optax's `eps_root`).
        eps_root: f64 = 0.0; check check::non_negative,
        /// Weight decay λ, added to the update before the trust ratio.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`Lamb`].
#[derive(Clone, Copy, Debug)]
pub struct LambConsts<T> {
    sign: T,
    beta1: T,
    w1: T,
    beta2: T,
    w2: T,
    bc1: T,
    bc2: T,
    eps: T,
    eps_root: T,
    wd: T,
    neg_lr: T,
}

impl<T: Real> LambConsts<T> {
    /// The step's gradient (sign applied) and the moments after it.
    #[inline(always)]
    fn moments(&self, g: T, m: T, v: T) -> (T, T) {
        let g = self.sign * g;
        (
            self.w1 * g + self.beta1 * m,
            self.w2 * (g * g) + self.beta2 * v,
        )
    }

    /// Adam's direction plus weight decay, from the updated moments.
    #[inline(always)]
    fn direction(&self, m: T, v: T, p: T) -> T {
        (m / self.bc1) / ((v / self.bc2 + self.eps_root).sqrt() + self.eps) + self.wd * p
    }
}

impl Rule for Lamb {
    type Consts<T: Real> = LambConsts<T>;

    const PAPER: &'static str = "You et al. 2020";
    const REFERENCE: &'static str = "optax.lamb";
    const USE_WHEN: &'static str =
        "very large batches: per-layer trust ratios keep Adam's steps in proportion to each layer's weights";
    const EXAMPLES: &'static [&'static str] = &[
        "lamb(lr=0.05)",
        "lamb(lr=0.05,weight_decay=0.01,eps_root=1e-8)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> LambConsts<T> {
        let (b1, b2) = self.betas;
        LambConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            beta1: T::from_f64(b1),
            w1: T::from_f64(1.0 - b1),
            beta2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            bc1: T::from_f64(bias_correction(b1, step)),
            bc2: T::from_f64(bias_correction(b2, step)),
            eps: T::from_f64(self.eps),
            eps_root: T::from_f64(self.eps_root),
            wd: T::from_f64(self.weight_decay),
            neg_lr: T::from_f64(-self.lr),
        }
    }

    fn step_tensor<T: Real>(c: &LambConsts<T>, t: TensorStep<'_, T>) {
        lamb_step(c, t)
    }
}

/// `coefficient·‖θ‖/(‖u‖ + ε)`, or 1 when either norm is 0 (the tensor
/// would otherwise never move, or divide by zero), as optax's
/// `scale_by_trust_ratio`.
pub(crate) fn trust_ratio(param_norm: f64, update_norm: f64, coefficient: f64, eps: f64) -> f64 {
    if param_norm == 0.0 || update_norm == 0.0 {
        1.0
    } else {
        coefficient * param_norm / (update_norm + eps)
    }
}

crate::multiversion! {
    /// LAMB's two passes over one tensor, compiled per vector width.
    fn lamb_step<T: Real>(c: &LambConsts<T>, t: TensorStep<'_, T>) {
        let mut chunk = Chunk::whole(t.param, t.grad, t.buffers, 2);
        // Pass 1: the moments, and ‖θ‖², ‖u‖².
        let (pp, uu) = par_reduce(
            chunk.reborrow(),
            &|k: Chunk<'_, T>| {
                let c = *c;
                let [m, v, ..] = k.bufs;
                let (p, g) = (&*k.p, k.g);
                // ‖u‖² in 16 lanes over zipped blocks, as `sum_squares_of`
                // sums it, written out so the loop vectorises.
                let mut acc = [T::zero(); 16];
                let blocks = p
                    .chunks_exact(16)
                    .zip(g.chunks_exact(16))
                    .zip(m.chunks_exact_mut(16).zip(v.chunks_exact_mut(16)));
                for ((p, g), (m, v)) in blocks {
                    for k in 0..16 {
                        let (m1, v1) = c.moments(g[k], m[k], v[k]);
                        m[k] = m1;
                        v[k] = v1;
                        let u = c.direction(m1, v1, p[k]);
                        acc[k] = acc[k] + u * u;
                    }
                }
                let full = p.len() / 16 * 16;
                let mut tail = 0.0f64;
                for i in full..p.len() {
                    let (m1, v1) = c.moments(g[i], m[i], v[i]);
                    m[i] = m1;
                    v[i] = v1;
                    let u = c.direction(m1, v1, p[i]).to_f64();
                    tail += u * u;
                }
                let uu = acc.iter().map(|&a| a.to_f64()).sum::<f64>() + tail;
                (sum_squares(p), uu)
            },
            |a, b| (a.0 + b.0, a.1 + b.1),
        );
        let ratio = T::from_f64(trust_ratio(pp.sqrt(), uu.sqrt(), 1.0, 0.0));
        // Pass 2: the step, with u recomputed from the new moments.
        par_reduce(
            chunk.reborrow(),
            &|k: Chunk<'_, T>| {
                let [m, v, ..] = k.bufs;
                for ((p, &m), &v) in k.p.iter_mut().zip(m.iter()).zip(v.iter()) {
                    let u = c.direction(m, v, *p);
                    *p = *p + (u * ratio) * c.neg_lr;
                }
            },
            |(), ()| (),
        );
    }
}
