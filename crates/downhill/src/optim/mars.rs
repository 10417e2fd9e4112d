//! MARS: variance-reduced gradients in an AdamW or Lion step.

use super::lane::Lane;
use super::mechanics::{bias_correction, ema, ema_sq, Lerp};
use super::passes::{par_reduce, Chunk};
use super::{Rule, TensorStep};
use crate::hyper::check;
use crate::Real;

crate::hyper_enum! {
    /// The step MARS feeds its corrected gradient to.
    pub enum MarsType {
        /// AdamW's (MARS-AdamW).
        AdamW = "adamw",
        /// Lion's sign of the momentum (MARS-Lion).
        Lion = "lion",
    }
}

crate::hyper_struct! {
    /// MARS (Yuan et al., "MARS: Unleashing the Power of Variance Reduction
    /// for Training Large Models", 2024), as pytorch-optimizer 4.1.0's
    /// `MARS`, with the cautious mask of Liang et al. ("Cautious Optimizers",
    /// 2024). Tensors of 2 or more dimensions (and all of them with
    /// `optimize_1d`) take the variance-reduced step; vectors take plain
    /// AdamW with their own rate, betas and decay.
    ///
    /// ```text
    /// c ← g + γ_c·β₁/(1 − β₁)·(g − g_prev)           (g_prev = 0 at first)
    /// c ← c/‖c‖ if ‖c‖ > 1                            (‖·‖ over the whole tensor)
    /// m ← β₁·m + (1 − β₁)·c
    /// u ← m ⊙ mask·n/(Σmask + 1)                      (cautious: mask = [m·g > 0])
    /// adamw: v ← β₂·v + (1 − β₂)·c²   (v̂ ← max(v̂, v) with ams_bound)
    ///        u ← u·√(1 − β₂ᵗ) / ((1 − β₁ᵗ)·(√(v + 10⁻¹⁵) + ε))
    /// lion:  u ← sign(u)
    /// θ ← θ·(1 − γλ);   θ ← θ − γ·u;   g_prev ← g
    /// ```
    /// The vector branch is the same with c = g, `betas_1d`,
    /// `weight_decay_1d` and the rate γ·(`lr_1d`/γ). With `weight_decouple =
    /// false` the decay is, as in the reference, added to the stored
    /// gradient after the step, so it reaches only the next correction.
    pub struct Mars: "mars" {
        /// Step size γ of the variance-reduced branch.
        lr: f64 = 3e-3; check check::non_negative,
        /// (β₁, β₂) of the variance-reduced branch.
        betas: (f64, f64) = (0.95, 0.99); check check::betas,
        /// γ_c: the strength of the correction.
        gamma: f64 = 0.025; check check::non_negative,
        /// The step the corrected gradient feeds: `adamw` or `lion`.
        mars_type: MarsType = MarsType::AdamW,
        /// Give vectors the variance-reduced step too.
        optimize_1d: bool = false,
        /// Step size of the vector branch.
        lr_1d: f64 = 3e-3; check check::non_negative,
        /// (β₁, β₂) of the vector branch.
        betas_1d: (f64, f64) = (0.9, 0.95); check check::betas,
        /// Weight decay λ of the variance-reduced branch.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Weight decay of the vector branch.
        weight_decay_1d: f64 = 0.1; check check::non_negative,
        /// Decoupled decay (AdamW's); false adds λ·θ to the stored gradient.
        weight_decouple: bool = true,
        /// Decoupled decay not multiplied by the rate.
        fixed_decay: bool = false,
        /// Divide by the running maximum of the second moment (AMSGrad).
        ams_bound: bool = false,
        /// Only move coordinates where the momentum agrees with the gradient.
        cautious: bool = false,
        /// ε added to the denominator.
        eps: f64 = 1e-8; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Constants of one branch of [`Mars`].
#[derive(Clone, Copy, Debug)]
pub struct Branch<T> {
    w1: Lerp<T>,
    beta2: T,
    w2: T,
    /// `√(1 − β₂ᵗ)` and `1 − β₁ᵗ`.
    bc2_sqrt: T,
    bc1: T,
    /// The correction's factor γ_c·β₁/(1 − β₁); `None` in the vector branch.
    correction: Option<T>,
    /// `1 − γλ` (or `1 − λ` with `fixed_decay`): decoupled decay.
    shrink: Option<T>,
    /// λ added to the stored gradient (coupled decay).
    l2: Option<T>,
    neg_lr: T,
    lion: bool,
}

/// Per-step constants of [`Mars`].
#[derive(Clone, Copy, Debug)]
pub struct MarsConsts<T> {
    sign: T,
    eps: T,
    ams: bool,
    cautious: bool,
    optimize_1d: bool,
    matrix: Branch<T>,
    vector: Branch<T>,
}

impl Mars {
    fn branch<T: Real>(&self, step: u64, vector: bool) -> Branch<T> {
        let ((b1, b2), wd) = if vector {
            (self.betas_1d, self.weight_decay_1d)
        } else {
            (self.betas, self.weight_decay)
        };
        // The reference keeps lr_1d as a factor of lr (so a schedule on lr
        // moves both).
        let lr = if vector && self.lr != 0.0 {
            self.lr * (self.lr_1d / self.lr)
        } else if vector {
            self.lr_1d
        } else {
            self.lr
        };
        let decay = if self.fixed_decay { 1.0 } else { lr };
        Branch {
            w1: Lerp::new(1.0 - b1),
            beta2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            bc2_sqrt: T::from_f64(bias_correction(b2, step).sqrt()),
            bc1: T::from_f64(bias_correction(b1, step)),
            correction: (!vector).then(|| T::from_f64(self.gamma * (b1 / (1.0 - b1)))),
            shrink: (wd != 0.0 && self.weight_decouple).then(|| T::from_f64(1.0 - wd * decay)),
            l2: (wd != 0.0 && !self.weight_decouple).then(|| T::from_f64(wd)),
            neg_lr: T::from_f64(-lr),
            lion: !vector && self.mars_type == MarsType::Lion,
        }
    }
}

impl Rule for Mars {
    type Consts<T: Real> = MarsConsts<T>;

    const PAPER: &'static str = "Yuan et al. 2024";
    const REFERENCE: &'static str = "pytorch-optimizer MARS";
    const USE_WHEN: &'static str =
        "large models with noisy gradients: a variance-reduced AdamW (or Lion) step for the matrices";
    const EXAMPLES: &'static [&'static str] = &[
        "mars(lr=0.01)",
        "mars(lr=0.01,mars_type=lion,cautious=true,optimize_1d=true,weight_decay=0.1)",
        "mars(lr=0.01,ams_bound=true,weight_decay=0.1,weight_decouple=false,fixed_decay=true)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        if self.ams_bound {
            &["exp_avg", "exp_avg_sq", "last_grad", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq", "last_grad"]
        }
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> MarsConsts<T> {
        MarsConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            eps: T::from_f64(self.eps),
            ams: self.ams_bound,
            cautious: self.cautious,
            optimize_1d: self.optimize_1d,
            matrix: self.branch(step, false),
            vector: self.branch(step, true),
        }
    }

    fn step_tensor<T: Real>(c: &MarsConsts<T>, t: TensorStep<'_, T>) {
        let branch = if c.optimize_1d || t.info.shape.len() >= 2 {
            &c.matrix
        } else {
            &c.vector
        };
        mars_step(c, branch, t);
    }
}

/// One element of the (corrected) gradient, before normalisation.
#[inline(always)]
fn corrected<T: Real>(b: &Branch<T>, g: T, last: T) -> T {
    match b.correction {
        Some(k) => (g - last) * k + g,
        None => g,
    }
}

crate::multiversion! {
    /// MARS's passes over one tensor, compiled per vector width: the
    /// correction's norm; the moments (and the cautious count); the step.
    fn mars_step<T: Real>(c: &MarsConsts<T>, b: &Branch<T>, t: TensorStep<'_, T>) {
        let numel = t.param.len();
        let n = t.n_buffers;
        let mut chunk = Chunk::whole(t.param, t.grad, t.buffers, n);
        // Pass 1: ‖c‖ (the vector branch is not normalised).
        let norm = if b.correction.is_some() {
            let nn = par_reduce(
                chunk.reborrow(),
                &|k: Chunk<'_, T>| {
                    let [_, _, last, ..] = k.bufs;
                    let mut acc = 0.0f64;
                    for (&g, &l) in k.g.iter().zip(last.iter()) {
                        let x = corrected(b, c.sign * g, l).to_f64();
                        acc += x * x;
                    }
                    acc
                },
                |x, y| x + y,
            );
            nn.sqrt()
        } else {
            0.0
        };
        let norm = (norm > 1.0).then(|| T::from_f64(norm));
        // Pass 2: the moments; g_prev; the cautious mask's count.
        let agree = par_reduce(
            chunk.reborrow(),
            &|k: Chunk<'_, T>| {
                let [m, v, last, rest @ ..] = k.bufs;
                let vmax = if c.ams { Some(&mut *rest[0]) } else { None };
                let mut agree = 0usize;
                for (i, (&g, &p)) in k.g.iter().zip(k.p.iter()).enumerate() {
                    let g = c.sign * g;
                    let mut x = corrected(b, g, last[i]);
                    if let Some(n) = norm {
                        x = x / n;
                    }
                    m[i] = ema(m[i], x, &b.w1);
                    if !b.lion {
                        v[i] = ema_sq(v[i], x, b.beta2, b.w2);
                    }
                    agree += usize::from(m[i] * g > T::zero());
                    last[i] = match b.l2 {
                        Some(wd) => g + wd * p,
                        None => g,
                    };
                }
                if let Some(vmax) = vmax {
                    for (vm, &vi) in vmax.iter_mut().zip(v.iter()) {
                        *vm = vm.maximum(vi);
                    }
                }
                agree
            },
            |x, y| x + y,
        );
        let scale = T::from_f64(numel as f64 / (agree as f64 + 1.0));
        // Pass 3: the step.
        par_reduce(
            chunk.reborrow(),
            &|k: Chunk<'_, T>| {
                let [m, v, _, rest @ ..] = k.bufs;
                let v: &[T] = if c.ams { &*rest[0] } else { &*v };
                for (i, (p, &g)) in k.p.iter_mut().zip(k.g.iter()).enumerate() {
                    let mut u = m[i];
                    if c.cautious {
                        u = if u * (c.sign * g) > T::zero() { u * scale } else { u * T::zero() };
                    }
                    u = if b.lion {
                        Lane::<T>::sign(u)
                    } else {
                        let den = ((v[i] + T::from_f64(1e-15)).sqrt() + c.eps) / b.bc2_sqrt * b.bc1;
                        u / den
                    };
                    if let Some(s) = b.shrink {
                        *p = *p * s;
                    }
                    *p = *p + b.neg_lr * u;
                }
            },
            |(), ()| (),
        );
    }
}
