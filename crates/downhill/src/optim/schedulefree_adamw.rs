//! Schedule-free AdamW: no learning-rate schedule, an averaged iterate instead.

use super::lane::Lane;
use super::mechanics::{
    bias_correction, ema, schedule_free_begin, schedule_free_end, schedule_free_init, Lerp,
    SCHEDULE_FREE_SCALARS,
};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Schedule-Free AdamW (Defazio et al., "The Road Less Scheduled",
    /// NeurIPS 2024; the winner of AlgoPerf's self-tuning track), as the
    /// `schedulefree` package's `AdamWScheduleFree`. Three sequences: the
    /// gradient is taken at y (the parameters while training), z takes plain
    /// Adam-scaled steps, and the model is evaluated at x, an average of the
    /// z's, which the trainer uses for every evaluation and checkpoint
    /// (`Optimizer::eval_params`; x = lerp(y, z, 1 − 1/β₁)). With k the
    /// group's step, warm-up w, and cₖ₊₁ = weight/Σweight where
    /// weight = (k + 1)^r·max_lr^p:
    ///
    /// ```text
    /// v ← β₂·v + (1 − β₂)·g²
    /// ĝ ← g / (√(v/(1 − β₂ᵏ⁺¹)) + ε) + λ·y
    /// y ← lerp(y, z, cₖ₊₁);  y ← y + γₖ(β₁(1 − cₖ₊₁) − 1)·ĝ
    /// z ← z − γₖ·ĝ                           (γₖ = γ·min(1, (k + 1)/w))
    /// ```
    pub struct ScheduleFreeAdamW: "schedulefree_adamw" {
        /// Step size γ (the package's default).
        lr: f64 = 0.0025; check check::non_negative,
        /// (β₁, β₂): the interpolation between z and x, and the second moment's decay.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// ε added to the denominator, > 0.
        eps: f64 = 1e-8; check check::positive,
        /// Weight decay λ, applied at y.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Linear warm-up steps.
        warmup_steps: u64 = 0,
        /// Power r ≥ 0 of the step count in the averaging weights (the
        /// package takes any number; a negative one would weight early
        /// iterates most).
        r: f64 = 0.0; check check::non_negative,
        /// Power ≥ 0 of the largest rate in the averaging weights.
        weight_lr_power: f64 = 2.0; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Per-step constants of [`ScheduleFreeAdamW`].
#[derive(Clone, Copy, Debug)]
pub struct ScheduleFreeAdamWConsts<T> {
    sign: T,
    beta2: T,
    w2: T,
    bc2: T,
    eps: T,
    wd: T,
    decay: bool,
    to_z: Lerp<T>,
    y_step: T,
    neg_lr: T,
}

impl Rule for ScheduleFreeAdamW {
    type Consts<T: Real> = ScheduleFreeAdamWConsts<T>;

    const PAPER: &'static str = "Defazio et al. 2024";
    const REFERENCE: &'static str = "schedulefree";
    const USE_WHEN: &'static str =
        "you do not know how long you will train: no schedule to set, and the averaged x is ready to use at any step";
    const EXAMPLES: &'static [&'static str] = &[
        "schedulefree_adamw(lr=0.05)",
        "schedulefree_adamw(lr=0.05,warmup_steps=5,weight_decay=0.01,r=0.5)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["z", "exp_avg_sq"]
    }

    fn buffer_copies_param(&self, buffer: &str) -> bool {
        buffer == "z"
    }

    fn group_scalars(&self) -> &'static [&'static str] {
        SCHEDULE_FREE_SCALARS
    }

    fn group_init(&self) -> Vec<f64> {
        schedule_free_init()
    }

    fn begin_group(&self, g: &mut [f64]) {
        schedule_free_begin(g, self.lr, self.warmup_steps, self.r, self.weight_lr_power);
    }

    fn end_group(&self, g: &mut [f64]) {
        schedule_free_end(g);
    }

    fn eval_point<T: Real>(&self, _: &[f64], p: &[T], bufs: &[&[T]], out: &mut [T]) -> bool {
        let to_z = Lerp::new(1.0 - 1.0 / self.betas.0);
        for ((o, &y), &z) in out.iter_mut().zip(p).zip(bufs[0]) {
            *o = ema(y, z, &to_z);
        }
        true
    }

    fn prepare<T: Real>(
        &self,
        _: u64,
        _: bool,
        _: &mut [f64],
        g: &[f64],
    ) -> ScheduleFreeAdamWConsts<T> {
        let (k, ckp1, lr) = (g[0], g[3], g[4]);
        let (b1, b2) = self.betas;
        ScheduleFreeAdamWConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            beta2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            bc2: T::from_f64(bias_correction(b2, k as u64 + 1)),
            eps: T::from_f64(self.eps),
            wd: T::from_f64(self.weight_decay),
            decay: self.weight_decay != 0.0,
            to_z: Lerp::new(ckp1),
            y_step: T::from_f64(lr * (b1 * (1.0 - ckp1) - 1.0)),
            neg_lr: T::from_f64(-lr),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for ScheduleFreeAdamW {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &ScheduleFreeAdamWConsts<T>, y: &mut V, g: V, b: &mut [V]) {
        let [z, v] = b else {
            unreachable!("schedulefree_adamw has two buffers")
        };
        let g = g * c.sign;
        *v = *v * c.beta2 + g * c.w2 * g;
        let denom = (*v / c.bc2).sqrt() + c.eps;
        let mut gn = g / denom;
        if c.decay {
            gn = gn + *y * c.wd;
        }
        *y = ema(*y, *z, &c.to_z);
        *y = *y + gn * c.y_step;
        *z = *z + gn * c.neg_lr;
    }
}
