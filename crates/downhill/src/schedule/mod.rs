//! Learning-rate schedules.
//!
//! A [`Schedule`] says how the rate moves; a [`Scheduler`] applies one to an
//! optimiser, step by step (per epoch or per batch: the caller decides when
//! to call [`Scheduler::step`]), and saves and restores with it.
//!
//! ```
//! use downhill::optim::{build, OptimizerSpec};
//! use downhill::schedule::{Schedule, Scheduler};
//!
//! let mut opt = build::<f32>(&"sgd(lr=0.1)".parse()?, &[4])?;
//! // five steps of linear warm-up, then cosine annealing over 95
//! let schedule: Schedule =
//!     "sequentiallr(linearlr(start_factor=0.01,total_iters=5),cosineannealinglr(T_max=95),milestones=5)".parse()?;
//! let mut sched = Scheduler::new(schedule, &mut *opt)?;
//! assert!((opt.lr(0) - 0.001).abs() < 1e-12);
//! for _ in 0..5 {
//!     sched.step(&mut *opt, None)?;
//! }
//! assert!((opt.lr(0) - 0.1).abs() < 1e-12);
//! # Ok::<(), downhill::Error>(())
//! ```

mod closed_form;
mod plateau;

pub use closed_form::{
    Anneal, ClosedForm, ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR,
    CyclicMode, ExponentialLR, InverseSqrtLR, InverseTimeLR, LinearLR, MultiStepLR, OneCycleLR,
    PolynomialLR, ScaleMode, StepLR, SwaLR, Wsd, WsdDecay,
};
pub use plateau::{Mode, PlateauState, ReduceLROnPlateau, ThresholdMode};

use crate::error::{Error, Result};
use crate::hyper::{Hyper, HyperInfo, HyperMap, HyperValue};
use crate::optim::Optimizer;
use crate::Real;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Every schedule by name. Names are torch's `lr_scheduler` class names in
/// lower case, plus `constant` (no schedule), `inversetimelr` and
/// `inversesqrtlr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", content = "hyper", rename_all = "lowercase")]
pub enum Schedule {
    /// The optimiser's own learning rate, unchanged.
    Constant,
    /// See [`StepLR`].
    StepLR(StepLR),
    /// See [`MultiStepLR`].
    MultiStepLR(MultiStepLR),
    /// See [`ExponentialLR`].
    ExponentialLR(ExponentialLR),
    /// See [`CosineAnnealingLR`].
    CosineAnnealingLR(CosineAnnealingLR),
    /// See [`CosineAnnealingWarmRestarts`].
    CosineAnnealingWarmRestarts(CosineAnnealingWarmRestarts),
    /// See [`LinearLR`].
    LinearLR(LinearLR),
    /// See [`ConstantLR`].
    ConstantLR(ConstantLR),
    /// See [`PolynomialLR`].
    PolynomialLR(PolynomialLR),
    /// See [`OneCycleLR`].
    OneCycleLR(OneCycleLR),
    /// See [`CyclicLR`].
    CyclicLR(CyclicLR),
    /// See [`Wsd`].
    Wsd(Wsd),
    /// See [`SwaLR`].
    SwaLR(SwaLR),
    /// See [`InverseTimeLR`].
    InverseTimeLR(InverseTimeLR),
    /// See [`InverseSqrtLR`].
    InverseSqrtLR(InverseSqrtLR),
    /// `torch.optim.lr_scheduler.SequentialLR`: `schedules[i]` runs from
    /// `milestones[i-1]` (counting its own steps from 0 there) until
    /// `milestones[i]`, each from the group's initial rate.
    SequentialLR {
        /// The schedules in order (no plateau among them).
        schedules: Vec<Schedule>,
        /// Steps at which the next schedule takes over (one fewer than schedules).
        milestones: Vec<u64>,
    },
    /// See [`ReduceLROnPlateau`].
    ReduceLROnPlateau(ReduceLROnPlateau),
}

/// Schedule names accepted by [`Schedule::from_str`].
pub const SCHEDULES: &[&str] = &[
    "constant",
    "steplr",
    "multisteplr",
    "exponentiallr",
    "cosineannealinglr",
    "cosineannealingwarmrestarts",
    "linearlr",
    "constantlr",
    "polynomiallr",
    "onecyclelr",
    "cycliclr",
    "wsd",
    "swalr",
    "inversetimelr",
    "inversesqrtlr",
    "sequentiallr",
    "reducelronplateau",
];

fn with<H: Hyper>(hyper: &HyperMap) -> Result<H> {
    let mut h = H::default();
    h.apply(hyper)?;
    Ok(h)
}

impl Schedule {
    /// Builds a schedule from a torch name and keyword arguments, as the
    /// fixtures and spec strings give them.
    pub fn from_name(name: &str, hyper: &HyperMap) -> Result<Self> {
        let s = match name {
            "constant" | "none" => {
                if let Some(k) = hyper.keys().next() {
                    return Err(crate::hyper::unknown_name("constant", k, &[]));
                }
                Schedule::Constant
            }
            "steplr" => Schedule::StepLR(with(hyper)?),
            "multisteplr" => Schedule::MultiStepLR(with(hyper)?),
            "exponentiallr" => Schedule::ExponentialLR(with(hyper)?),
            "cosineannealinglr" => Schedule::CosineAnnealingLR(with(hyper)?),
            "cosineannealingwarmrestarts" => Schedule::CosineAnnealingWarmRestarts(with(hyper)?),
            "linearlr" => Schedule::LinearLR(with(hyper)?),
            "constantlr" => Schedule::ConstantLR(with(hyper)?),
            "polynomiallr" => Schedule::PolynomialLR(with(hyper)?),
            "onecyclelr" => Schedule::OneCycleLR(with(hyper)?),
            "cycliclr" => Schedule::CyclicLR(with(hyper)?),
            "wsd" => Schedule::Wsd(with(hyper)?),
            "swalr" => Schedule::SwaLR(with(hyper)?),
            "inversetimelr" => Schedule::InverseTimeLR(with(hyper)?),
            "inversesqrtlr" => Schedule::InverseSqrtLR(with(hyper)?),
            "reducelronplateau" => Schedule::ReduceLROnPlateau(with(hyper)?),
            "sequentiallr" => sequence_from_map(hyper)?,
            other => {
                return Err(Error::UnknownName {
                    kind: "schedule",
                    name: other.into(),
                    known: SCHEDULES.join(", "),
                })
            }
        };
        s.check()?;
        Ok(s)
    }

    fn closed_form(&self) -> Option<&dyn ClosedForm> {
        Some(match self {
            Schedule::StepLR(s) => s,
            Schedule::MultiStepLR(s) => s,
            Schedule::ExponentialLR(s) => s,
            Schedule::CosineAnnealingLR(s) => s,
            Schedule::CosineAnnealingWarmRestarts(s) => s,
            Schedule::LinearLR(s) => s,
            Schedule::ConstantLR(s) => s,
            Schedule::PolynomialLR(s) => s,
            Schedule::OneCycleLR(s) => s,
            Schedule::CyclicLR(s) => s,
            Schedule::Wsd(s) => s,
            Schedule::SwaLR(s) => s,
            Schedule::InverseTimeLR(s) => s,
            Schedule::InverseSqrtLR(s) => s,
            Schedule::Constant | Schedule::SequentialLR { .. } | Schedule::ReduceLROnPlateau(_) => {
                return None
            }
        })
    }

    /// Every hyper-parameter's range (a schedule read back from a checkpoint
    /// is checked as one parsed from a spec), then the cross-checks.
    fn check(&self) -> Result<()> {
        match self {
            Schedule::Constant | Schedule::SequentialLR { .. } => {}
            Schedule::StepLR(s) => s.validate()?,
            Schedule::MultiStepLR(s) => s.validate()?,
            Schedule::ExponentialLR(s) => s.validate()?,
            Schedule::CosineAnnealingLR(s) => s.validate()?,
            Schedule::CosineAnnealingWarmRestarts(s) => s.validate()?,
            Schedule::LinearLR(s) => s.validate()?,
            Schedule::ConstantLR(s) => s.validate()?,
            Schedule::PolynomialLR(s) => s.validate()?,
            Schedule::OneCycleLR(s) => s.validate()?,
            Schedule::CyclicLR(s) => s.validate()?,
            Schedule::Wsd(s) => s.validate()?,
            Schedule::SwaLR(s) => s.validate()?,
            Schedule::InverseTimeLR(s) => s.validate()?,
            Schedule::InverseSqrtLR(s) => s.validate()?,
            Schedule::ReduceLROnPlateau(s) => s.validate()?,
        }
        if let Some(c) = self.closed_form() {
            return c.check();
        }
        if let Schedule::SequentialLR {
            schedules,
            milestones,
        } = self
        {
            let why = if schedules.is_empty() {
                Some("needs at least one schedule".to_string())
            } else if milestones.len() + 1 != schedules.len() {
                Some(format!(
                    "{} schedules need {} milestones, got {}",
                    schedules.len(),
                    schedules.len() - 1,
                    milestones.len()
                ))
            } else if milestones.windows(2).any(|w| w[0] >= w[1]) {
                Some("milestones must increase".to_string())
            } else if schedules
                .iter()
                .any(|s| matches!(s, Schedule::ReduceLROnPlateau(_)))
            {
                Some("reducelronplateau cannot be part of a sequence".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::Parse {
                    what: "schedule spec",
                    text: "sequentiallr".into(),
                    why,
                });
            }
            schedules.iter().try_for_each(Schedule::check)?;
        }
        Ok(())
    }

    /// The torch name.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::SequentialLR { .. } => "sequentiallr",
            Schedule::ReduceLROnPlateau(_) => ReduceLROnPlateau::OWNER,
            Schedule::StepLR(_) => StepLR::OWNER,
            Schedule::MultiStepLR(_) => MultiStepLR::OWNER,
            Schedule::ExponentialLR(_) => ExponentialLR::OWNER,
            Schedule::CosineAnnealingLR(_) => CosineAnnealingLR::OWNER,
            Schedule::CosineAnnealingWarmRestarts(_) => CosineAnnealingWarmRestarts::OWNER,
            Schedule::LinearLR(_) => LinearLR::OWNER,
            Schedule::ConstantLR(_) => ConstantLR::OWNER,
            Schedule::PolynomialLR(_) => PolynomialLR::OWNER,
            Schedule::OneCycleLR(_) => OneCycleLR::OWNER,
            Schedule::CyclicLR(_) => CyclicLR::OWNER,
            Schedule::Wsd(_) => Wsd::OWNER,
            Schedule::SwaLR(_) => SwaLR::OWNER,
            Schedule::InverseTimeLR(_) => InverseTimeLR::OWNER,
            Schedule::InverseSqrtLR(_) => InverseSqrtLR::OWNER,
        }
    }

    /// Whether [`Scheduler::step`] needs a metric.
    pub fn needs_metric(&self) -> bool {
        matches!(self, Schedule::ReduceLROnPlateau(_))
    }

    /// For a sequence, the schedule in force at step `t` and its own step
    /// count there; for any other schedule, itself and `t`.
    fn segment(&self, t: u64) -> (&Schedule, u64) {
        match self {
            Schedule::SequentialLR {
                schedules,
                milestones,
            } => {
                let i = milestones.iter().filter(|&&m| m <= t).count();
                let start = if i == 0 { 0 } else { milestones[i - 1] };
                schedules[i].segment(t - start)
            }
            other => (other, t),
        }
    }

    /// The learning rate after `t` steps for initial rate `base`. For
    /// reduce-on-plateau, which depends on metrics, this is `base`.
    pub fn lr(&self, base: f64, t: u64) -> f64 {
        let (s, t) = self.segment(t);
        s.closed_form().map_or(base, |c| c.lr(base, t))
    }

    /// The momentum after `t` steps, for schedules that cycle it.
    pub fn momentum(&self, t: u64) -> Option<f64> {
        let (s, t) = self.segment(t);
        s.closed_form().and_then(|c| c.momentum(t))
    }
}

/// Parses `name(key=value,...)`, or `sequentiallr(A,B,...,milestones=M1,M2)`.
impl FromStr for Schedule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        crate::optim::check_nesting(text, "schedule spec")?;
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        if let Some(inner) = lower
            .strip_prefix("sequentiallr(")
            .and_then(|s| s.strip_suffix(')'))
        {
            let inner = &t[t.len() - inner.len() - 1..t.len() - 1];
            let mut schedules = Vec::new();
            let mut milestones = Vec::new();
            let mut in_milestones = false;
            for part in crate::optim::split_top_level(inner) {
                let part = part.trim();
                if let Some(m) = part.strip_prefix("milestones=") {
                    in_milestones = true;
                    milestones.extend(parse_milestone(m, text)?);
                } else if in_milestones && part.parse::<u64>().is_ok() {
                    milestones.extend(parse_milestone(part, text)?);
                } else {
                    in_milestones = false;
                    schedules.push(part.parse::<Schedule>()?);
                }
            }
            let s = Schedule::SequentialLR {
                schedules,
                milestones,
            };
            s.check()?;
            return Ok(s);
        }
        let (name, hyper) = crate::optim::parse_call(t, "schedule spec")?;
        Schedule::from_name(&name, &hyper)
    }
}

/// `sequentiallr` from a map, as fixtures and configs give it:
/// `schedulers` is the list of specs as one string (`"linearlr(...),cosineannealinglr(...)"`)
/// and `milestones` a list of whole numbers.
fn sequence_from_map(hyper: &HyperMap) -> Result<Schedule> {
    let bad = |why: String| Error::Parse {
        what: "schedule spec",
        text: "sequentiallr".into(),
        why,
    };
    if let Some(k) = hyper
        .keys()
        .find(|k| !["schedulers", "milestones"].contains(&k.as_str()))
    {
        return Err(crate::hyper::unknown_name(
            "sequentiallr",
            k,
            &["schedulers", "milestones"],
        ));
    }
    let schedules = match hyper.get("schedulers") {
        Some(HyperValue::Text(specs)) => crate::optim::split_top_level(specs)
            .into_iter()
            .map(str::parse)
            .collect::<Result<Vec<Schedule>>>()?,
        _ => {
            return Err(bad(
                "needs `schedulers`, the schedule specs as one string: \"linearlr(...),cosineannealinglr(...)\""
                    .into(),
            ))
        }
    };
    let milestones = match hyper.get("milestones") {
        None => Vec::new(),
        Some(v) => <Vec<u64> as crate::hyper::HyperField>::from_value(v)
            .map_err(|e| bad(format!("`milestones` must be {e}")))?,
    };
    Ok(Schedule::SequentialLR {
        schedules,
        milestones,
    })
}

fn parse_milestone(m: &str, text: &str) -> Result<Vec<u64>> {
    let m = m
        .trim()
        .trim_start_matches(['(', '['])
        .trim_end_matches([')', ']']);
    m.split(',')
        .map(|x| {
            x.trim().parse::<u64>().map_err(|_| Error::Parse {
                what: "schedule spec",
                text: text.to_string(),
                why: format!("milestone `{x}` is not a whole number"),
            })
        })
        .collect()
}

/// The hyper-parameters of schedule `name`, with defaults and docs.
pub fn describe(name: &str) -> Result<Vec<HyperInfo>> {
    Ok(match name {
        "steplr" => StepLR::describe(),
        "multisteplr" => MultiStepLR::describe(),
        "exponentiallr" => ExponentialLR::describe(),
        "cosineannealinglr" => CosineAnnealingLR::describe(),
        "cosineannealingwarmrestarts" => CosineAnnealingWarmRestarts::describe(),
        "linearlr" => LinearLR::describe(),
        "constantlr" => ConstantLR::describe(),
        "polynomiallr" => PolynomialLR::describe(),
        "onecyclelr" => OneCycleLR::describe(),
        "cycliclr" => CyclicLR::describe(),
        "wsd" => Wsd::describe(),
        "swalr" => SwaLR::describe(),
        "inversetimelr" => InverseTimeLR::describe(),
        "inversesqrtlr" => InverseSqrtLR::describe(),
        "reducelronplateau" => ReduceLROnPlateau::describe(),
        "constant" | "sequentiallr" => Vec::new(),
        other => {
            return Err(Error::UnknownName {
                kind: "schedule",
                name: other.into(),
                known: SCHEDULES.join(", "),
            })
        }
    })
}

/// Applies a [`Schedule`] to an optimiser's parameter groups.
///
/// Created against an optimiser, it records each group's initial rate (torch's
/// `initial_lr`) and sets the rate for step 0. Each [`Scheduler::step`]
/// advances the count and sets the new rates (and momentum, for one-cycle).
/// It serialises with serde (JSON) and is restored bit-exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SchedulerRecord")]
pub struct Scheduler {
    schedule: Schedule,
    base_lrs: Vec<f64>,
    current: Vec<f64>,
    steps: u64,
    plateau: PlateauState,
}

/// A [`Scheduler`] as it is read back, checked before it becomes one: a
/// damaged or hostile checkpoint must not smuggle in a schedule that a spec
/// would have refused (a StepLR `step_size` of 0 divides by zero) or a
/// counter at the edge of overflow.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulerRecord {
    schedule: Schedule,
    base_lrs: Vec<f64>,
    current: Vec<f64>,
    steps: u64,
    plateau: PlateauState,
}

impl TryFrom<SchedulerRecord> for Scheduler {
    type Error = String;

    fn try_from(r: SchedulerRecord) -> std::result::Result<Self, String> {
        use crate::optim::MAX_STEP;
        r.schedule.check().map_err(|e| e.to_string())?;
        if r.base_lrs.len() != r.current.len() {
            return Err(format!(
                "{} initial and {} current learning rates",
                r.base_lrs.len(),
                r.current.len()
            ));
        }
        if let Some(lr) = r
            .base_lrs
            .iter()
            .chain(&r.current)
            .find(|lr| !(lr.is_finite() && **lr >= 0.0))
        {
            return Err(format!(
                "a learning rate of {lr}, expected a finite number >= 0"
            ));
        }
        let p = &r.plateau;
        for (what, n) in [
            ("steps", r.steps),
            ("num_bad_epochs", p.num_bad_epochs),
            ("cooldown_counter", p.cooldown_counter),
        ] {
            if n > MAX_STEP {
                return Err(format!("{what} = {n}, the most a state may hold is 2^53"));
            }
        }
        if p.best.is_some_and(|b| !b.is_finite()) {
            return Err("a non-finite best metric".into());
        }
        Ok(Scheduler {
            schedule: r.schedule,
            base_lrs: r.base_lrs,
            current: r.current,
            steps: r.steps,
            plateau: r.plateau,
        })
    }
}

impl Scheduler {
    /// Starts `schedule` on `opt`: records the groups' rates and sets step 0's.
    pub fn new<T: Real>(schedule: Schedule, opt: &mut dyn Optimizer<T>) -> Result<Self> {
        schedule.check()?;
        let base_lrs: Vec<f64> = (0..opt.num_groups()).map(|g| opt.lr(g)).collect();
        let mut s = Scheduler {
            schedule,
            current: base_lrs.clone(),
            base_lrs,
            steps: 0,
            plateau: PlateauState::default(),
        };
        s.check_applicable(opt, 0)?;
        s.apply(opt)?;
        Ok(s)
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The current learning rate of each group.
    pub fn lrs(&self) -> &[f64] {
        &self.current
    }

    /// The counters of reduce-on-plateau.
    pub fn plateau(&self) -> &PlateauState {
        &self.plateau
    }

    /// Multiplies every group's initial and current rate by `factor` (e.g. ½
    /// to back off after a divergence) and applies the result.
    pub fn scale<T: Real>(&mut self, opt: &mut dyn Optimizer<T>, factor: f64) -> Result<()> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(crate::hyper::invalid_value(
                "scheduler",
                "factor",
                factor,
                "a finite number > 0",
            ));
        }
        // Everything is checked before anything changes: new rates that
        // are not finite are refused here, and any other refusal by the
        // optimiser leaves every group's rate as it was.
        let base: Vec<f64> = self.base_lrs.iter().map(|lr| lr * factor).collect();
        let current: Vec<f64> = match self.schedule {
            Schedule::ReduceLROnPlateau(_) => self.current.iter().map(|lr| lr * factor).collect(),
            _ => base
                .iter()
                .map(|&b| self.schedule.lr(b, self.steps))
                .collect(),
        };
        if let Some(g) = base.iter().chain(&current).position(|lr| !lr.is_finite()) {
            let g = g % self.base_lrs.len().max(1);
            return Err(crate::hyper::invalid_value(
                "scheduler",
                "factor",
                factor,
                format!(
                    "one that keeps group {g}'s rate finite (it is {})",
                    self.current[g]
                ),
            ));
        }
        crate::optim::set_lrs(opt, &current)?;
        self.base_lrs = base;
        self.current = current;
        Ok(())
    }

    /// Advances one step. `metric` (e.g. the validation loss) is required by
    /// reduce-on-plateau and ignored by the others. A non-finite metric is an
    /// error rather than a silent "no improvement".
    pub fn step<T: Real>(&mut self, opt: &mut dyn Optimizer<T>, metric: Option<f64>) -> Result<()> {
        if opt.num_groups() != self.base_lrs.len() {
            return Err(Error::Shape(format!(
                "the scheduler was started on {} parameter groups, the optimizer has {}",
                self.base_lrs.len(),
                opt.num_groups()
            )));
        }
        // Everything that can fail is checked before the count advances, so a
        // rejected step leaves the scheduler as it was.
        let metric = match &self.schedule {
            Schedule::ReduceLROnPlateau(_) => {
                let m = metric.ok_or_else(|| {
                    Error::Unsupported(
                        "reducelronplateau needs a metric at every step (e.g. the loss)".into(),
                    )
                })?;
                if !m.is_finite() {
                    return Err(crate::hyper::invalid_value(
                        "reducelronplateau",
                        "metric",
                        m,
                        "a finite number",
                    ));
                }
                Some(m)
            }
            _ => None,
        };
        if self.steps >= crate::optim::MAX_STEP {
            return Err(Error::State(format!(
                "the scheduler has taken {} steps, the most it may hold is 2^53",
                self.steps
            )));
        }
        self.check_applicable(opt, self.steps + 1)?;
        self.steps += 1;
        if let (Schedule::ReduceLROnPlateau(p), Some(m)) = (&self.schedule, metric) {
            if p.observe(&mut self.plateau, m) {
                for lr in &mut self.current {
                    if let Some(new) = p.reduce(*lr) {
                        *lr = new;
                    }
                }
            }
        }
        self.apply(opt)
    }

    /// Whether the rates and momentum of step `t` can be set on `opt`: a
    /// rate must be a finite number ≥ 0, and a schedule that cycles momentum
    /// needs an optimiser that has it.
    fn check_applicable<T: Real>(&self, opt: &dyn Optimizer<T>, t: u64) -> Result<()> {
        if !matches!(self.schedule, Schedule::ReduceLROnPlateau(_)) {
            for &base in &self.base_lrs {
                let lr = self.schedule.lr(base, t);
                if !(lr.is_finite() && lr >= 0.0) {
                    return Err(crate::hyper::invalid_value(
                        self.schedule.name(),
                        "lr",
                        lr,
                        "a finite number >= 0 (the schedule's rate at this step)",
                    ));
                }
            }
        }
        if self.schedule.momentum(t).is_some() {
            for g in 0..opt.num_groups() {
                let hyper = opt.hyper(g);
                if !hyper.contains_key("betas") && !hyper.contains_key("momentum") {
                    return Err(Error::Unsupported(format!(
                        "{} cycles momentum, but {} has neither `momentum` nor `betas` (set cycle_momentum=false)",
                        self.schedule.name(),
                        opt.name()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Sets the current rates (computed here for closed-form schedules).
    fn apply<T: Real>(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        if !matches!(self.schedule, Schedule::ReduceLROnPlateau(_)) {
            for (cur, &base) in self.current.iter_mut().zip(&self.base_lrs) {
                *cur = self.schedule.lr(base, self.steps);
            }
        }
        let momentum = self.schedule.momentum(self.steps);
        for (g, &lr) in self.current.iter().enumerate() {
            opt.set_lr(g, lr)?;
            if let Some(m) = momentum {
                set_momentum(opt, g, m)?;
            }
        }
        Ok(())
    }
}

/// Sets momentum, or β₁ for the Adam family, as torch's one-cycle does.
fn set_momentum<T: Real>(opt: &mut dyn Optimizer<T>, group: usize, m: f64) -> Result<()> {
    let hyper = opt.hyper(group);
    if let Some(HyperValue::List(b)) = hyper.get("betas") {
        opt.set_hyper(group, "betas", &HyperValue::List(vec![m, b[1]]))
    } else if hyper.contains_key("momentum") {
        opt.set_hyper(group, "momentum", &HyperValue::Number(m))
    } else {
        Err(Error::Unsupported(format!(
            "onecyclelr cycles momentum, but {} has neither `momentum` nor `betas` (set cycle_momentum=false)",
            opt.name()
        )))
    }
}
