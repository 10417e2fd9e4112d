//! Schedules whose learning rate is a function of the step count alone.
//!
//! Each is written in closed form `lr(base, t)`, with `t` the number of
//! scheduler steps taken (0 before the first), matching torch's chainable
//! recursions to rounding. Names, hyper-parameters and defaults are torch's;
//! `inversetimelr` and `inversesqrtlr` are additions.

use crate::hyper::check;
use std::f64::consts::PI;

/// A learning rate as a function of the step count.
pub trait ClosedForm {
    /// The learning rate after `t` scheduler steps, for a group whose initial
    /// learning rate is `base`.
    fn lr(&self, base: f64, t: u64) -> f64;
    /// The momentum (or β₁) after `t` steps, for schedules that cycle it.
    fn momentum(&self, _t: u64) -> Option<f64> {
        None
    }
    /// Checks between hyper-parameters beyond the range of each.
    fn check(&self) -> crate::Result<()> {
        Ok(())
    }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.StepLR`: `lr = base · γ^⌊t / step_size⌋`.
    pub struct StepLR: "steplr" {
        /// Steps between decays.
        step_size: u64 = 30; check check::at_least_one,
        /// Multiplicative decay γ.
        gamma: f64 = 0.1; check check::positive,
    }
}

impl ClosedForm for StepLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base * self.gamma.powf((t / self.step_size) as f64)
    }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.MultiStepLR`: `lr = base · γ^(milestones ≤ t)`.
    pub struct MultiStepLR: "multisteplr" {
        /// Steps at which the rate decays, increasing.
        milestones: Vec<u64> = Vec::new(); check check::increasing,
        /// Multiplicative decay γ.
        gamma: f64 = 0.1; check check::positive,
    }
}

impl ClosedForm for MultiStepLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        base * self.gamma.powf(passed as f64)
    }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.ExponentialLR`: `lr = base · γᵗ`.
    pub struct ExponentialLR: "exponentiallr" {
        /// Multiplicative decay γ per step.
        gamma: f64 = 0.1; check check::positive,
    }
}

impl ClosedForm for ExponentialLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base * self.gamma.powf(t as f64)
    }
}

/// Half a cosine from `high` (x = 0) to `low` (x = 1).
fn cosine(low: f64, high: f64, x: f64) -> f64 {
    low + (high - low) * (1.0 + (PI * x).cos()) / 2.0
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.CosineAnnealingLR` (Loshchilov & Hutter, 2017,
    /// without restarts): `lr = η_min + (base − η_min)(1 + cos(π t / T_max))/2`.
    /// Past `T_max` the cosine continues, rising again, as torch's does.
    #[allow(non_snake_case)]
    pub struct CosineAnnealingLR: "cosineannealinglr" {
        /// Steps of half a period.
        T_max: u64 = 100; check check::at_least_one,
        /// Minimum learning rate η_min.
        eta_min: f64 = 0.0; check check::non_negative,
    }
}

impl ClosedForm for CosineAnnealingLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        cosine(self.eta_min, base, t as f64 / self.T_max as f64)
    }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` (SGDR, Loshchilov
    /// & Hutter, 2017): cosine annealing restarted after `T_0` steps, each
    /// period `T_mult` times longer than the last.
    #[allow(non_snake_case)]
    pub struct CosineAnnealingWarmRestarts: "cosineannealingwarmrestarts" {
        /// Length of the first period.
        T_0: u64 = 10; check check::at_least_one,
        /// Growth factor of the period.
        T_mult: u64 = 1; check check::at_least_one,
        /// Minimum learning rate η_min.
        eta_min: f64 = 0.0; check check::non_negative,
    }
}

impl ClosedForm for CosineAnnealingWarmRestarts {
    fn lr(&self, base: f64, t: u64) -> f64 {
        // Walk the periods: exact in integers, unlike torch's logarithm.
        let (mut start, mut len) = (0u64, self.T_0);
        while t >= start + len {
            start += len;
            len = len.saturating_mul(self.T_mult);
        }
        cosine(self.eta_min, base, (t - start) as f64 / len as f64)
    }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.LinearLR`, the usual warm-up:
    /// `lr = base · (s + (e − s)·min(t, n)/n)` with start factor `s`, end
    /// factor `e`, `n = total_iters`.
    pub struct LinearLR: "linearlr" {
        /// Factor at step 0.
        start_factor: f64 = 1.0 / 3.0; check check::positive,
        /// Factor from step `total_iters` on.
        end_factor: f64 = 1.0; check check::non_negative,
        /// Steps of the ramp.
        total_iters: u64 = 5; check check::at_least_one,
    }
}

impl ClosedForm for LinearLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let x = t.min(self.total_iters) as f64 / self.total_iters as f64;
        base * (self.start_factor + (self.end_factor - self.start_factor) * x)
    }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.ConstantLR`: `base · factor` for the first
    /// `total_iters` steps, `base` afterwards. (No schedule at all is `constant`.)
    pub struct ConstantLR: "constantlr" {
        /// Factor during the first steps.
        factor: f64 = 1.0 / 3.0; check check::positive,
        /// Steps at the reduced rate.
        total_iters: u64 = 5,
    }
}

impl ClosedForm for ConstantLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        if t < self.total_iters {
            base * self.factor
        } else {
            base
        }
    }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.PolynomialLR`:
    /// `lr = base · (1 − min(t, n)/n)^power`.
    pub struct PolynomialLR: "polynomiallr" {
        /// Steps until the rate reaches 0.
        total_iters: u64 = 5; check check::at_least_one,
        /// Exponent.
        power: f64 = 1.0; check check::non_negative,
    }
}

impl ClosedForm for PolynomialLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let x = t.min(self.total_iters) as f64 / self.total_iters as f64;
        base * (1.0 - x).powf(self.power)
    }
}

crate::hyper_enum! {
    /// How [`OneCycleLR`] interpolates within a phase.
    pub enum Anneal { /// Half a cosine.
    Cos = "cos", /// A straight line.
    Linear = "linear" }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.OneCycleLR` (Smith & Topin, 2019): from
    /// `max_lr/div_factor` up to `max_lr` over the first `pct_start` of the
    /// steps, then down to `max_lr/(div_factor·final_div_factor)`; momentum (or
    /// β₁) cycles the opposite way between `max_momentum` and `base_momentum`.
    /// It ignores the optimiser's own learning rate, as torch's does. Past
    /// `total_steps` the last value holds.
    pub struct OneCycleLR: "onecyclelr" {
        /// Peak learning rate.
        max_lr: f64 = 0.1; check check::positive,
        /// Steps in the cycle.
        total_steps: u64 = 100; check check::at_least_one,
        /// Fraction of the steps spent rising.
        pct_start: f64 = 0.3; check check::unit_exclusive,
        /// Interpolation within a phase.
        anneal_strategy: Anneal = Anneal::Cos,
        /// Cycle momentum / β₁ inversely to the learning rate.
        cycle_momentum: bool = true,
        /// Momentum at the peak learning rate.
        base_momentum: f64 = 0.85; check check::unit_open,
        /// Momentum at the ends of the cycle.
        max_momentum: f64 = 0.95; check check::unit_open,
        /// Initial rate is `max_lr / div_factor`.
        div_factor: f64 = 25.0; check check::positive,
        /// Final rate is the initial rate / `final_div_factor`.
        final_div_factor: f64 = 1e4; check check::positive,
        /// Use a third phase (down to the initial rate, then to the final one).
        three_phase: bool = false,
    }
}

impl OneCycleLR {
    /// Phases as (end step, start factor, end factor) where the factors select
    /// among (initial, max, min) values; shared by lr and momentum.
    fn phase(&self, t: u64) -> (usize, usize, f64) {
        let total = self.total_steps as f64;
        let t = t.min(self.total_steps - 1) as f64;
        let rise = self.pct_start * total - 1.0;
        // (end step, from, to) with 0 = initial, 1 = peak, 2 = final
        let phases: &[(f64, usize, usize)] = if self.three_phase {
            &[
                (rise, 0, 1),
                (2.0 * self.pct_start * total - 2.0, 1, 0),
                (total - 1.0, 0, 2),
            ]
        } else {
            &[(rise, 0, 1), (total - 1.0, 1, 2)]
        };
        let mut start = 0.0;
        for (i, &(end, from, to)) in phases.iter().enumerate() {
            if t <= end || i == phases.len() - 1 {
                let pct = if end > start {
                    (t - start) / (end - start)
                } else {
                    1.0
                };
                return (from, to, pct);
            }
            start = end;
        }
        unreachable!("the last phase always matches")
    }

    fn interpolate(&self, from: f64, to: f64, pct: f64) -> f64 {
        match self.anneal_strategy {
            Anneal::Cos => cosine(to, from, pct),
            Anneal::Linear => (to - from) * pct + from,
        }
    }
}

impl ClosedForm for OneCycleLR {
    fn lr(&self, _base: f64, t: u64) -> f64 {
        let initial = self.max_lr / self.div_factor;
        let values = [initial, self.max_lr, initial / self.final_div_factor];
        let (from, to, pct) = self.phase(t);
        self.interpolate(values[from], values[to], pct)
    }

    fn momentum(&self, t: u64) -> Option<f64> {
        if !self.cycle_momentum {
            return None;
        }
        // Momentum is high where the rate is low: initial and final share max_momentum.
        let values = [self.max_momentum, self.base_momentum, self.max_momentum];
        let (from, to, pct) = self.phase(t);
        Some(self.interpolate(values[from], values[to], pct))
    }

    fn check(&self) -> crate::Result<()> {
        if self.base_momentum > self.max_momentum {
            return Err(crate::hyper::invalid_value(
                "onecyclelr",
                "base_momentum",
                self.base_momentum,
                format!("at most max_momentum ({})", self.max_momentum),
            ));
        }
        Ok(())
    }
}

crate::hyper_struct! {
    /// Inverse-time decay (Keras' `InverseTimeDecay`; the "annealing" of classic
    /// SGD): `lr = base / (1 + decay_rate · t / decay_steps)`, with `t /
    /// decay_steps` rounded down when `staircase`.
    pub struct InverseTimeLR: "inversetimelr" {
        /// Decay rate k.
        decay_rate: f64 = 1.0; check check::non_negative,
        /// Steps per unit of decay.
        decay_steps: u64 = 1; check check::at_least_one,
        /// Decay in whole units only.
        staircase: bool = false,
    }
}

impl ClosedForm for InverseTimeLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let x = if self.staircase {
            (t / self.decay_steps) as f64
        } else {
            t as f64 / self.decay_steps as f64
        };
        base / (1.0 + self.decay_rate * x)
    }
}

crate::hyper_struct! {
    /// α/√t decay, as in the Adam paper's logistic-regression experiment:
    /// `lr = base / √(1 + t / decay_steps)` (the paper's `α/√t` with t counted
    /// from 1 when `decay_steps = 1`).
    pub struct InverseSqrtLR: "inversesqrtlr" {
        /// Steps per unit of t.
        decay_steps: u64 = 1; check check::at_least_one,
    }
}

impl ClosedForm for InverseSqrtLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base / (1.0 + t as f64 / self.decay_steps as f64).sqrt()
    }
}

crate::hyper_enum! {
    /// The amplitude of a [`CyclicLR`] cycle.
    pub enum CyclicMode { /// The same every cycle.
    Triangular = "triangular", /// Halved every cycle.
    Triangular2 = "triangular2", /// Scaled by `gamma` at every step.
    ExpRange = "exp_range" }
}

crate::hyper_enum! {
    /// What [`CyclicLR`]'s amplitude is a function of.
    pub enum ScaleMode { /// The cycle number.
    Cycle = "cycle", /// The step count.
    Iterations = "iterations" }
}

crate::hyper_struct! {
    /// `torch.optim.lr_scheduler.CyclicLR` (Smith, "Cyclical Learning Rates
    /// for Training Neural Networks", 2017): the rate climbs from `base_lr`
    /// to `max_lr` over `step_size_up` steps and falls back over
    /// `step_size_down`, the amplitude scaled by the mode's function; with
    /// `cycle_momentum`, momentum (or β₁) runs the other way between
    /// `max_momentum` and `base_momentum`. It ignores the optimiser's own
    /// rate, as torch's does. `scale_mode` (none: the mode's own, `cycle` for
    /// the triangular modes and `iterations` for `exp_range`) says whether
    /// the scale is a function of the cycle or of the step.
    pub struct CyclicLR: "cycliclr" {
        /// Lower bound of the rate.
        base_lr: f64 = 0.01; check check::non_negative,
        /// Upper bound of the rate.
        max_lr: f64 = 0.1; check check::non_negative,
        /// Steps of the rising half.
        step_size_up: u64 = 2000; check check::at_least_one,
        /// Steps of the falling half (none: `step_size_up`).
        step_size_down: Option<u64> = None,
        /// The amplitude's schedule.
        mode: CyclicMode = CyclicMode::Triangular,
        /// Decay of `exp_range`'s amplitude per step.
        gamma: f64 = 1.0; check check::positive,
        /// What the scale is a function of (none: the mode's default).
        scale_mode: Option<ScaleMode> = None,
        /// Cycle momentum / β₁ inversely to the rate.
        cycle_momentum: bool = true,
        /// Momentum at the peak rate.
        base_momentum: f64 = 0.8; check check::unit_closed,
        /// Momentum at the lowest rate.
        max_momentum: f64 = 0.9; check check::unit_closed,
    }
}

impl CyclicLR {
    /// `(scale factor within the cycle, amplitude scale)` at step `t`, as torch.
    fn position(&self, t: u64) -> (f64, f64) {
        let up = self.step_size_up as f64;
        let down = self.step_size_down.unwrap_or(self.step_size_up) as f64;
        let total = up + down;
        let ratio = up / total;
        let t = t as f64;
        let cycle = (1.0 + t / total).floor();
        let x = 1.0 + t / total - cycle;
        let factor = if x <= ratio {
            x / ratio
        } else {
            (x - 1.0) / (ratio - 1.0)
        };
        let mode_scale = match self.mode {
            CyclicMode::ExpRange => ScaleMode::Iterations,
            _ => ScaleMode::Cycle,
        };
        let arg = match self.scale_mode.unwrap_or(mode_scale) {
            ScaleMode::Cycle => cycle,
            ScaleMode::Iterations => t,
        };
        let scale = match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2.0f64.powf(arg - 1.0),
            CyclicMode::ExpRange => self.gamma.powf(arg),
        };
        (factor, scale)
    }
}

impl ClosedForm for CyclicLR {
    fn lr(&self, _base: f64, t: u64) -> f64 {
        let (factor, scale) = self.position(t);
        let height = (self.max_lr - self.base_lr) * factor;
        self.base_lr + height * scale
    }

    fn momentum(&self, t: u64) -> Option<f64> {
        if !self.cycle_momentum {
            return None;
        }
        let (factor, scale) = self.position(t);
        let height = (self.max_momentum - self.base_momentum) * factor;
        Some(self.max_momentum - height * scale)
    }

    fn check(&self) -> crate::Result<()> {
        if self.step_size_down == Some(0) {
            return Err(crate::hyper::invalid_value(
                "cycliclr",
                "step_size_down",
                0,
                "a whole number >= 1, or none",
            ));
        }
        Ok(())
    }
}

crate::hyper_enum! {
    /// The shape of [`Wsd`]'s decay phase.
    pub enum WsdDecay { /// A straight line: `1 − u`.
    Linear = "linear", /// Half a cosine: `(1 + cos πu)/2`.
    Cosine = "cosine", /// `1 − √u`.
    Sqrt = "sqrt" }
}

crate::hyper_struct! {
    /// Warmup-stable-decay (the "trapezoidal" schedule of recent language
    /// model training; Hu et al. 2024, "MiniCPM"): a linear warm-up, a
    /// constant plateau, then a decay, each a fixed number of steps. With
    /// base rate η, warm-up W, stable S and decay D steps, start factor s and
    /// end factor e, at step t:
    ///
    /// ```text
    /// t < W             η·(s + (1 − s)·t/W)
    /// W ≤ t < W+S       η
    /// W+S ≤ t < W+S+D   η·(e + (1 − e)·f(u)),  u = (t − W − S)/D
    /// t ≥ W+S+D         η·e
    /// ```
    /// with f the decay shape. No library has it as one piece; the fixtures
    /// follow this closed form, which equals torch's `SequentialLR` of
    /// `LinearLR`, `ConstantLR(factor=1)` and the decay to 1e-12.
    pub struct Wsd: "wsd" {
        /// Warm-up steps W.
        warmup_steps: u64 = 0,
        /// Plateau steps S.
        stable_steps: u64 = 0,
        /// Decay steps D.
        decay_steps: u64 = 1; check check::at_least_one,
        /// Start factor s of the warm-up.
        start_factor: f64 = 0.0; check check::unit_closed,
        /// End factor e of the decay.
        end_factor: f64 = 0.0; check check::non_negative,
        /// Shape of the decay.
        decay: WsdDecay = WsdDecay::Linear,
    }
}

impl ClosedForm for Wsd {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let (w, s, d) = (self.warmup_steps, self.stable_steps, self.decay_steps);
        let (sf, ef) = (self.start_factor, self.end_factor);
        if t < w {
            return base * (sf + (1.0 - sf) * t as f64 / w as f64);
        }
        if t < w + s {
            return base;
        }
        if t < w + s + d {
            let u = (t - w - s) as f64 / d as f64;
            let f = match self.decay {
                WsdDecay::Linear => 1.0 - u,
                WsdDecay::Cosine => (1.0 + (PI * u).cos()) / 2.0,
                WsdDecay::Sqrt => 1.0 - u.sqrt(),
            };
            return base * (ef + (1.0 - ef) * f);
        }
        base * ef
    }
}

crate::hyper_struct! {
    /// `torch.optim.swa_utils.SWALR`: anneals each group's rate to `swa_lr`
    /// over `anneal_epochs` steps (cosine or linear), then holds it; the
    /// schedule stochastic weight averaging runs under (see
    /// [`crate::average`]). In closed form, with α the annealing at
    /// `t / anneal_epochs` (capped at 1): `lr = swa_lr·α + base·(1 − α)`.
    pub struct SwaLR: "swalr" {
        /// The rate annealed to.
        swa_lr: f64 = 0.05; check check::non_negative,
        /// Steps the annealing takes (0: at once).
        anneal_epochs: u64 = 10,
        /// Cosine or linear annealing.
        anneal_strategy: Anneal = Anneal::Cos,
    }
}

impl ClosedForm for SwaLR {
    fn lr(&self, base: f64, t: u64) -> f64 {
        // torch counts from 1 when there is no annealing.
        let t = if self.anneal_epochs == 0 { t.max(1) } else { t };
        let x = (t as f64 / self.anneal_epochs.max(1) as f64).clamp(0.0, 1.0);
        let alpha = match self.anneal_strategy {
            Anneal::Cos => (1.0 - (PI * x).cos()) / 2.0,
            Anneal::Linear => x,
        };
        self.swa_lr * alpha + base * (1.0 - alpha)
    }
}
