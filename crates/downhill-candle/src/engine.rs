//! One step, generic over downhill's element type: check the gradients,
//! screen them for NaN and infinity, clip, update, advance the schedule.

use crate::cpu::{self, Direct, Half};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use downhill::adapter::{advance_schedule, clip_all, clip_host as clip, Config, ScheduleUnit};
use downhill::optim::device::DeviceState;
use downhill::optim::{first_non_finite_value, screen_gradients, Optimizer, StepOutcome, Tensors};
use downhill::schedule::Scheduler;
use downhill::Real;

/// How the vars' values reach downhill's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// f32 or f64 vars on the CPU: updated in place, nothing copied.
    InPlace,
    /// bf16 or f16 vars on the CPU: widened into f32 buffers, updated, and
    /// written back in place, rounded to nearest.
    Half(DType),
    /// Any other device (or forced): values move through candle tensor ops
    /// (`to_dtype`, `to_device`, `to_vec1`, `Var::set`) to the host and
    /// back. What an optimiser without a device form (tensor-level rules,
    /// Prodigy, lookahead) takes off the CPU.
    Tensor,
    /// f32 or f64 vars on any other device (or forced), with an optimiser
    /// that has a device form: the step runs as candle tensor ops where the
    /// vars are, and the state stays there ([`crate::device`]).
    Device,
}

/// The optimiser, its schedule and its buffers, in element type `T`.
pub struct Engine<T: Real> {
    pub opt: Box<dyn Optimizer<T>>,
    pub sched: Option<Scheduler>,
    /// The parameters and gradients, widened (half path) or copied (tensor
    /// path); empty on the in-place path.
    params: Vec<Vec<T>>,
    grads: Vec<Vec<T>>,
    /// Where each gradient's elements start, to clip each storage once.
    seen: Vec<usize>,
    /// Where the vars and gradients lie during an in-place step.
    slots: Vec<cpu::Slot>,
    /// The state buffers on the device path.
    pub(crate) device: DeviceState<Tensor>,
}

impl<T: Real> std::fmt::Debug for Engine<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("optimizer", &self.opt.name())
            .field(
                "schedule",
                &self.sched.as_ref().map(|s| s.schedule().name()),
            )
            .finish()
    }
}

/// The vars of a step, by index.
pub struct Vars<'a> {
    pub vars: &'a [Var],
    pub names: &'a [String],
}

/// A downhill error with the var it concerns named.
pub fn named(e: downhill::Error, names: &[String]) -> candle_core::Error {
    match e {
        downhill::Error::NonFiniteGradient {
            param,
            index,
            value,
        } => candle_core::Error::Msg(format!(
            "downhill: non-finite gradient in {} at element {index} (value {value}); the step was not taken",
            names.get(param).map_or("?", String::as_str)
        )),
        e => candle_core::Error::Msg(format!("downhill: {e}")),
    }
}

fn msg(s: String) -> candle_core::Error {
    candle_core::Error::Msg(s)
}

/// The scratch buffers as downhill's tensors.
struct Buffers<'a, T> {
    params: &'a mut [Vec<T>],
    grads: &'a [Vec<T>],
}

impl<T> Tensors<T> for Buffers<'_, T> {
    fn get(&mut self, i: usize) -> (&mut [T], &[T]) {
        (&mut self.params[i], &self.grads[i])
    }
}

impl<T: Direct> Engine<T> {
    /// An engine around `opt`, with `cfg`'s schedule started on it.
    pub fn new(mut opt: Box<dyn Optimizer<T>>, cfg: &Config) -> downhill::Result<Self> {
        let opt_len = opt.params().len();
        opt.set_non_finite(cfg.non_finite);
        let sched = match &cfg.schedule {
            Some(s) => Some(Scheduler::new(s.clone(), &mut *opt)?),
            None => None,
        };
        Ok(Engine {
            opt,
            sched,
            params: Vec::new(),
            grads: Vec::new(),
            seen: Vec::new(),
            slots: Vec::new(),
            device: DeviceState::new(opt_len),
        })
    }

    /// The gradient of var `i`, checked against the var.
    pub(crate) fn grad<'g>(
        v: &Vars<'_>,
        grads: &'g GradStore,
        i: usize,
    ) -> candle_core::Result<&'g Tensor> {
        let (var, name) = (&v.vars[i], &v.names[i]);
        let g = grads.get(var).ok_or_else(|| {
            msg(format!(
                "downhill: {name} has no gradient in this GradStore (the loss does not depend on it; build the optimiser without it)"
            ))
        })?;
        if g.shape() != var.shape()
            || g.dtype() != var.dtype()
            || !g.device().same_device(var.device())
        {
            return Err(msg(format!(
                "downhill: {name} is {:?} {:?} on {:?}, but its gradient is {:?} {:?} on {:?}",
                var.dims(),
                var.dtype(),
                var.device().location(),
                g.dims(),
                g.dtype(),
                g.device().location()
            )));
        }
        Ok(g)
    }

    /// One step over the vars with the gradients in `grads`.
    pub fn step(
        &mut self,
        v: &Vars<'_>,
        grads: &GradStore,
        path: Path,
        cfg: &Config,
    ) -> candle_core::Result<StepOutcome> {
        for i in 0..v.vars.len() {
            Self::grad(v, grads, i)?;
        }
        let outcome = match path {
            Path::InPlace => self.step_in_place(v, grads, cfg)?,
            Path::Half(dtype) => self.step_staged(v, grads, cfg, Some(dtype))?,
            Path::Tensor => self.step_staged(v, grads, cfg, None)?,
            Path::Device => self.step_device(v, grads, cfg)?,
        };
        if outcome == StepOutcome::Stepped && cfg.schedule_unit == ScheduleUnit::Step {
            self.advance(None, v.names)?;
        }
        Ok(outcome)
    }

    /// Advances the schedule (per step, or at an epoch's end with its metric).
    pub fn advance(&mut self, metric: Option<f64>, names: &[String]) -> candle_core::Result<()> {
        advance_schedule(&mut self.sched, &mut *self.opt, metric).map_err(|e| named(e, names))
    }

    fn step_in_place(
        &mut self,
        v: &Vars<'_>,
        grads: &GradStore,
        cfg: &Config,
    ) -> candle_core::Result<StepOutcome> {
        let mut failure = None;
        let screened = screen_gradients(&*self.opt, |i| {
            let read = Self::grad(v, grads, i)
                .and_then(|g| cpu::read::<T, _>(g, &v.names[i], first_non_finite_value));
            read.unwrap_or_else(|e| {
                failure.get_or_insert(e);
                None
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(outcome) = screened.map_err(|e| named(e, v.names))? {
            return Ok(outcome);
        }
        // Everything that can refuse the step is checked before clipping
        // rewrites the gradients, and clipping runs inside the step, once
        // its thread (for many vars) has started.
        self.opt.ready().map_err(|e| named(e, v.names))?;
        let seen = &mut self.seen;
        let clip_grads = || -> candle_core::Result<()> {
            if cfg.clip_norm.is_none() && cfg.clip_value.is_none() {
                return Ok(());
            }
            // A gradient storage shared by two vars is clipped once.
            seen.clear();
            let mut shared = shared_storages::<T>(seen, v, grads)?;
            clip(
                cfg,
                v.vars.len(),
                |i, f| cpu::read::<T, _>(Self::grad(v, grads, i)?, &v.names[i], f),
                |i, f| {
                    if shared(i) {
                        return Ok(());
                    }
                    cpu::mutate::<T>(Self::grad(v, grads, i)?, &v.names[i], f)
                },
            )
        };
        cpu::apply_in_place(
            &mut *self.opt,
            v.vars,
            v.names,
            grads,
            &mut self.slots,
            clip_grads,
        )?;
        Ok(StepOutcome::Stepped)
    }

    /// The half and tensor paths: the values in buffers of `T`.
    fn step_staged(
        &mut self,
        v: &Vars<'_>,
        grads: &GradStore,
        cfg: &Config,
        half: Option<DType>,
    ) -> candle_core::Result<StepOutcome> {
        let n = v.vars.len();
        if self.params.len() != n {
            let sizes = self.opt.sizes();
            self.params = sizes.iter().map(|&s| vec![T::zero(); s]).collect();
            self.grads = sizes.iter().map(|&s| vec![T::zero(); s]).collect();
        }
        for i in 0..n {
            let (var, name, g) = (&v.vars[i], &v.names[i], Self::grad(v, grads, i)?);
            match half {
                Some(DType::BF16) => {
                    read_half::<T, half::bf16>(var, name, &mut self.params[i])?;
                    read_half::<T, half::bf16>(g, name, &mut self.grads[i])?;
                }
                Some(DType::F16) => {
                    read_half::<T, half::f16>(var, name, &mut self.params[i])?;
                    read_half::<T, half::f16>(g, name, &mut self.grads[i])?;
                }
                Some(other) => {
                    return Err(msg(format!("downhill: {name}: no half path for {other:?}")))
                }
                None => {
                    to_host(var, &mut self.params[i])?;
                    to_host(g, &mut self.grads[i])?;
                }
            }
        }
        let screened = screen_gradients(&*self.opt, |i| first_non_finite_value(&self.grads[i]));
        if let Some(outcome) = screened.map_err(|e| named(e, v.names))? {
            return Ok(outcome);
        }
        self.opt.ready().map_err(|e| named(e, v.names))?;
        clip_all::<T, _>(cfg, &mut self.grads);
        self.opt.apply_step(&mut Buffers {
            params: &mut self.params,
            grads: &self.grads,
        });
        for i in 0..n {
            let (var, name) = (&v.vars[i], &v.names[i]);
            match half {
                Some(DType::BF16) => cpu::write_half::<half::bf16, T>(var, name, &self.params[i])?,
                Some(DType::F16) => cpu::write_half::<half::f16, T>(var, name, &self.params[i])?,
                _ => {
                    let t = Tensor::from_slice(&self.params[i], var.shape(), &Device::Cpu)?
                        .to_device(var.device())?
                        .to_dtype(var.dtype())?;
                    var.set(&t)?;
                }
            }
        }
        Ok(StepOutcome::Stepped)
    }
}

/// For clipping on the in-place path: records where each gradient's
/// elements start (in `seen`, reused across steps) and says of each whether
/// an earlier var's gradient is the same storage.
fn shared_storages<'a, T: Direct>(
    seen: &'a mut Vec<usize>,
    v: &Vars<'_>,
    grads: &GradStore,
) -> candle_core::Result<impl FnMut(usize) -> bool + 'a> {
    for (var, name) in v.vars.iter().zip(v.names) {
        let g = grads.get(var).expect("checked by the caller");
        seen.push(cpu::read::<T, _>(g, name, |s| s.as_ptr() as usize)?);
    }
    let seen: &'a [usize] = seen;
    Ok(move |i: usize| seen[..i].contains(&seen[i]))
}

fn read_half<T: Real, H: Half>(t: &Tensor, name: &str, out: &mut [T]) -> candle_core::Result<()> {
    cpu::read::<H, _>(t, name, |data| {
        for (o, &x) in out.iter_mut().zip(data) {
            *o = T::from_f64(f64::from(x.widen()));
        }
    })
}

/// Copies a tensor of any device and dtype into `out` as `T`, through
/// candle's tensor ops.
fn to_host<T: Direct>(t: &Tensor, out: &mut Vec<T>) -> candle_core::Result<()> {
    *out = t
        .to_dtype(T::DTYPE)?
        .flatten_all()?
        .to_device(&Device::Cpu)?
        .to_vec1::<T>()?;
    Ok(())
}

/// [`Optimizer::eval_params`] over candle vars (copied to the host).
pub fn eval_params<T: Direct>(
    opt: &dyn Optimizer<T>,
    vars: &[Var],
    names: &[String],
) -> candle_core::Result<Option<Vec<Tensor>>> {
    let mut params = vec![Vec::new(); vars.len()];
    for (p, v) in params.iter_mut().zip(vars) {
        to_host(v, p)?;
    }
    let mut out: Vec<Vec<T>> = params.iter().map(|p| vec![T::zero(); p.len()]).collect();
    let ps: Vec<&[T]> = params.iter().map(Vec::as_slice).collect();
    let mut os: Vec<&mut [T]> = out.iter_mut().map(Vec::as_mut_slice).collect();
    if !opt.eval_params(&ps, &mut os).map_err(|e| named(e, names))? {
        return Ok(None);
    }
    out.iter()
        .zip(vars)
        .map(|(o, v)| {
            Tensor::from_slice(o, v.shape(), &Device::Cpu)?
                .to_device(v.device())?
                .to_dtype(v.dtype())
        })
        .map(|t| t.map(Some))
        .collect::<candle_core::Result<Vec<_>>>()
        .map(|ts| Some(ts.into_iter().flatten().collect()))
}
