//! What every framework adapter (downhill-candle, downhill-burn) shares: the
//! [`Config`] it is built from, the roles it reads off parameter names, and
//! the gradient clipping it runs on host slices.

mod config;
mod roles;

pub use config::{Config, ScheduleUnit};
pub use roles::{natural_cmp, params_from_names};

use crate::clip::{clip_coefficient, clip_grad_value, norm_of_parts, norm_part, scale_grad, Norm};
use crate::optim::Optimizer;
use crate::schedule::{Schedule, Scheduler};
use crate::Real;

impl Config {
    /// Whether the schedule advances at an epoch's end: a per-epoch one
    /// does, and `reducelronplateau` always, on the epoch's `metric`, which
    /// it cannot do without (an error says so).
    pub fn advances_at_epoch_end(&self, metric: Option<f64>) -> crate::Result<bool> {
        let plateau = matches!(self.schedule, Some(Schedule::ReduceLROnPlateau(_)));
        if plateau && metric.is_none() {
            return Err(crate::Error::Unsupported(
                "reducelronplateau needs the epoch's metric: epoch_end(Some(loss))".into(),
            ));
        }
        Ok(self.schedule.is_some() && (plateau || self.schedule_unit == ScheduleUnit::Epoch))
    }
}

/// Advances `sched` (if any) over `opt`, with `metric` at an epoch's end or
/// `None` after a step; `reducelronplateau` waits for a metric.
pub fn advance_schedule<T: Real>(
    sched: &mut Option<Scheduler>,
    opt: &mut dyn Optimizer<T>,
    metric: Option<f64>,
) -> crate::Result<()> {
    match sched {
        Some(s) if metric.is_some() || !matches!(s.schedule(), Schedule::ReduceLROnPlateau(_)) => {
            s.step(opt, metric)
        }
        _ => Ok(()),
    }
}

/// Clips `n` gradients on the host as `downhill train` does: by total L2
/// norm (`cfg.clip_norm`, first), then by value (`cfg.clip_value`). `read`
/// and `write` reach gradient `i`'s elements; the norm's parts are summed one
/// tensor at a time in order, as [`crate::clip::grad_norm`] sums them.
pub fn clip_host<T: Real, E>(
    cfg: &Config,
    n: usize,
    mut read: impl FnMut(usize, &mut dyn FnMut(&[T])) -> Result<(), E>,
    mut write: impl FnMut(usize, &mut dyn FnMut(&mut [T])) -> Result<(), E>,
) -> Result<(), E> {
    if let Some(max) = cfg.clip_norm {
        let norm = Norm::P(2.0);
        let mut parts = 0.0;
        let mut part = |g: &[T]| parts += norm_part(g, norm);
        for i in 0..n {
            read(i, &mut part)?;
        }
        let total = norm_of_parts(std::iter::once(parts), norm);
        if let Some(coef) = clip_coefficient(total, max) {
            for i in 0..n {
                write(i, &mut |g| scale_grad(g, coef))?;
            }
        }
    }
    if let Some(value) = cfg.clip_value {
        for i in 0..n {
            write(i, &mut |g| {
                clip_grad_value(&mut [g], value)
                    .expect("clip_value is checked when the optimiser is built")
            })?;
        }
    }
    Ok(())
}

/// [`clip_host`] over gradients the caller holds all at once, as slices or
/// vectors.
pub fn clip_all<T: Real, G: AsRef<[T]> + AsMut<[T]>>(cfg: &Config, grads: &mut [G]) {
    let n = grads.len();
    let cell = std::cell::RefCell::new(grads);
    let done = clip_host::<T, std::convert::Infallible>(
        cfg,
        n,
        |i, f| {
            f(cell.borrow()[i].as_ref());
            Ok(())
        },
        |i, f| {
            f(cell.borrow_mut()[i].as_mut());
            Ok(())
        },
    );
    match done {
        Ok(()) => {}
        Err(never) => match never {},
    }
}
