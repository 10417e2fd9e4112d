//! What a framework adapter runs: the optimiser spec, and around it the
//! schedule, the clipping and the non-finite policy.

use crate::optim::{NonFinite, OptimizerSpec};
use crate::schedule::Schedule;
use std::fmt;
use std::str::FromStr;

/// When the schedule advances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScheduleUnit {
    /// After every optimiser step that changed the parameters (the default).
    #[default]
    Step,
    /// When the training loop calls the adapter's `epoch_end`.
    /// `reducelronplateau` always advances per epoch: it needs the metric
    /// `epoch_end` is given.
    Epoch,
}

/// Everything an adapter's optimiser (`downhill_candle::CandleOptimizer`,
/// `downhill_burn::BurnOptimizer`) is built from.
///
/// Parsed from any spec `downhill optimizers` lists, exactly as
/// `downhill train --optimizer` takes it: one optimiser with torch's
/// hyper-parameter names (`"adamw(lr=1e-3,weight_decay=0.01)"`), a partition
/// by role (`"partition(hidden=muon(lr=0.02),all=adamw(lr=1e-3))"`), `muon`
/// alone (Muon on the hidden matrices, AdamW on the rest) or a wrapper
/// (`"lookahead(adam,k=5,alpha=0.5)"`). The rest is set in code:
///
/// ```
/// use downhill::adapter::{Config, ScheduleUnit};
/// use downhill::optim::NonFinite;
///
/// let cfg: Config = "sgd(lr=0.1,momentum=0.9,nesterov=true)".parse()?;
/// let cfg = cfg
///     .with_schedule("onecyclelr(max_lr=0.1,total_steps=1000)")?
///     .clip_norm(1.0)
///     .non_finite(NonFinite::Skip);
/// assert_eq!(cfg.schedule_unit, ScheduleUnit::Step);
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The optimiser.
    pub optimizer: OptimizerSpec,
    /// The learning-rate schedule, if any.
    pub schedule: Option<Schedule>,
    /// When the schedule advances.
    pub schedule_unit: ScheduleUnit,
    /// Clip the gradients to this total L2 norm over every var before each
    /// step, as `torch.nn.utils.clip_grad_norm_` (applied first).
    pub clip_norm: Option<f64>,
    /// Clamp every gradient element to `[-v, v]` before each step, as
    /// `torch.nn.utils.clip_grad_value_` (applied after `clip_norm`).
    pub clip_value: Option<f64>,
    /// What a step does when a gradient holds a NaN or an infinity; checked
    /// on the gradients as the backward pass gave them, before clipping.
    /// The default, [`NonFinite::Error`], refuses the step and changes
    /// nothing.
    pub non_finite: NonFinite,
}

impl Config {
    /// The optimiser `spec` with no schedule, no clipping, and non-finite
    /// gradients refused.
    pub fn new(optimizer: OptimizerSpec) -> Self {
        Config {
            optimizer,
            schedule: None,
            schedule_unit: ScheduleUnit::Step,
            clip_norm: None,
            clip_value: None,
            non_finite: NonFinite::Error,
        }
    }

    /// Drives the learning rate by a schedule spec, as `downhill train
    /// --schedule` takes it (`"cosineannealinglr(T_max=100)"`).
    pub fn with_schedule(mut self, spec: &str) -> crate::Result<Self> {
        self.schedule = Some(spec.parse()?);
        Ok(self)
    }

    /// Advances the schedule per step or per epoch.
    pub fn schedule_unit(mut self, unit: ScheduleUnit) -> Self {
        self.schedule_unit = unit;
        self
    }

    /// Clips the gradients to a total L2 norm of `max_norm` (checked when the
    /// optimiser is built).
    pub fn clip_norm(mut self, max_norm: f64) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }

    /// Clamps the gradients to `[-value, value]` (checked when the optimiser
    /// is built).
    pub fn clip_value(mut self, value: f64) -> Self {
        self.clip_value = Some(value);
        self
    }

    /// Chooses what a step does on a non-finite gradient.
    pub fn non_finite(mut self, policy: NonFinite) -> Self {
        self.non_finite = policy;
        self
    }

    /// Checks the settings that can be checked without any vars: the spec's
    /// names and hyper-parameters, the schedule, the clipping bounds.
    pub fn validate(&self) -> crate::Result<()> {
        if self.optimizer.name == "lbfgs" || self.optimizer.name == "newton" {
            return Err(crate::Error::Unsupported(format!(
                "{} evaluates the objective several times per step, which a framework's optimiser step cannot; use downhill::lbfgs with a closure",
                self.optimizer.name
            )));
        }
        // Groups name tensors, which exist only once there are vars: the
        // optimiser is checked whole when it is built.
        if self.optimizer.groups.is_empty() {
            self.optimizer.validate()?;
        }
        if let Some(max) = self.clip_norm {
            crate::clip::check_clip_norm(max, crate::clip::Norm::P(2.0))?;
        }
        if let Some(v) = self.clip_value {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(crate::Error::InvalidHyper {
                    owner: "clip_grad_value".into(),
                    name: "clip_value".into(),
                    value: v.to_string(),
                    expected: "a finite number >= 0".into(),
                });
            }
        }
        Ok(())
    }
}

impl FromStr for Config {
    type Err = crate::Error;

    /// Parses an optimiser spec and checks it.
    fn from_str(s: &str) -> crate::Result<Self> {
        let cfg = Config::new(s.parse()?);
        cfg.validate()?;
        Ok(cfg)
    }
}

impl From<OptimizerSpec> for Config {
    fn from(spec: OptimizerSpec) -> Self {
        Config::new(spec)
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.optimizer)
    }
}
