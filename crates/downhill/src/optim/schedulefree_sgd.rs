//! Schedule-free SGD: momentum by averaging, no learning-rate schedule.

use super::lane::Lane;
use super::mechanics::{
    ema, schedule_free_begin, schedule_free_end, schedule_free_init, Lerp, SCHEDULE_FREE_SCALARS,
};
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Schedule-Free SGD (Defazio et al., "The Road Less Scheduled",
    /// NeurIPS 2024), as the `schedulefree` package's `SGDScheduleFree`: the
    /// same three sequences as [`super::ScheduleFreeAdamW`] with plain
    /// gradient steps; the model is evaluated at x = lerp(y, z, 1 − 1/μ).
    ///
    /// ```text
    /// g ← ±g + λ·y
    /// y ← lerp(y, z, cₖ₊₁);  y ← y + γₖ(μ(1 − cₖ₊₁) − 1)·g
    /// z ← z − γₖ·g
    /// ```
    pub struct ScheduleFreeSgd: "schedulefree_sgd" {
        /// Step size γ (the package's default).
        lr: f64 = 1.0; check check::non_negative,
        /// Interpolation μ between z and x ("momentum"), in (0, 1).
        momentum: f64 = 0.9; check check::unit_exclusive,
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

/// Per-step constants of [`ScheduleFreeSgd`].
#[derive(Clone, Copy, Debug)]
pub struct ScheduleFreeSgdConsts<T> {
    sign: T,
    wd: T,
    decay: bool,
    to_z: Lerp<T>,
    y_step: T,
    neg_lr: T,
}

impl Rule for ScheduleFreeSgd {
    type Consts<T: Real> = ScheduleFreeSgdConsts<T>;

    const PAPER: &'static str = "Defazio et al. 2024";
    const REFERENCE: &'static str = "schedulefree";
    const USE_WHEN: &'static str =
        "SGD with momentum without choosing a schedule or a stopping time; evaluate at the averaged x";
    const EXAMPLES: &'static [&'static str] = &[
        "schedulefree_sgd(lr=0.1)",
        "schedulefree_sgd(lr=0.1,momentum=0.5,warmup_steps=3,weight_decay=0.01)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["z"]
    }

    fn buffer_copies_param(&self, _buffer: &str) -> bool {
        true
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
        let to_z = Lerp::new(1.0 - 1.0 / self.momentum);
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
    ) -> ScheduleFreeSgdConsts<T> {
        let (ckp1, lr) = (g[3], g[4]);
        ScheduleFreeSgdConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            wd: T::from_f64(self.weight_decay),
            decay: self.weight_decay != 0.0,
            to_z: Lerp::new(ckp1),
            y_step: T::from_f64(lr * (self.momentum * (1.0 - ckp1) - 1.0)),
            neg_lr: T::from_f64(-lr),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for ScheduleFreeSgd {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &ScheduleFreeSgdConsts<T>, y: &mut V, g: V, b: &mut [V]) {
        let [z] = b else {
            unreachable!("schedulefree_sgd has one buffer")
        };
        let mut g = g * c.sign;
        if c.decay {
            g = g + *y * c.wd;
        }
        *y = ema(*y, *z, &c.to_z);
        *y = *y + g * c.y_step;
        *z = *z + g * c.neg_lr;
    }
}
