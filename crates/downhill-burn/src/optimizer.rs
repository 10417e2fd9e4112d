//! [`BurnOptimizer`]: a downhill optimiser over a burn module.

use crate::error::{named, Error};
use crate::host::{reachable, Direct, Prim};
use crate::module::{self, Slot};
use crate::ops::BurnOps;
use burn::module::{Module, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};
use downhill::adapter::{advance_schedule, clip_all, params_from_names, Config, ScheduleUnit};
use downhill::optim::device::DeviceState;
use downhill::optim::{
    build, first_non_finite_value, screen_gradients, NonFinite, Optimizer, StepOutcome, Tensors,
};
use downhill::schedule::Scheduler;
use std::collections::HashMap;

/// How a module's parameters reach downhill's arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// flex or ndarray, f32 or f64: updated in place on the parameters' own
    /// storage by the fused kernels.
    InPlace,
    /// Any other backend (or forced, [`BurnOptimizer::force_device_path`])
    /// with a rule that has a device form: burn tensor ops on the tensors'
    /// device, the state there too.
    Device,
    /// Any other backend with a rule that has no device form (tensor-level
    /// rules, Prodigy, lookahead): each step copies the parameters and
    /// gradients to the host, runs the fused kernels there (the state lives
    /// on the host) and copies the parameters back.
    Host,
}

/// The optimiser, its schedule and its buffers, in element type `T`.
pub(crate) struct Engine<T: Direct> {
    pub opt: Box<dyn Optimizer<T>>,
    pub sched: Option<Scheduler>,
    /// The state on the device path.
    pub device: DeviceState<Tensor<1>>,
    /// Where the parameters lie during an in-place step.
    slots: Vec<Slot>,
}

/// The engine in the element type of the parameters: f64 modules keep f64
/// state, f32 modules f32.
pub(crate) enum Kind {
    F32(Engine<f32>),
    F64(Engine<f64>),
}

/// Runs `$body` with `$e` bound to the engine, whatever its element type.
macro_rules! with_engine {
    ($kind:expr, $e:ident => $body:expr) => {
        match $kind {
            Kind::F32($e) => $body,
            Kind::F64($e) => $body,
        }
    };
}
pub(crate) use with_engine;

/// What the optimiser learnt from the module at its first step.
pub(crate) struct Built {
    pub index: HashMap<ParamId, usize>,
    pub names: Vec<String>,
    pub shapes: Vec<Vec<usize>>,
    pub dtype: DType,
    pub device: Device,
    pub path: Path,
    pub kind: Kind,
    /// Each parameter's shape and role, as the optimiser was built with.
    pub params: Vec<downhill::optim::Param>,
}

/// Any downhill optimiser, schedule and clipping over a burn module.
///
/// Built from a [`Config`]; it meets the module at its first
/// [`step`](BurnOptimizer::step), takes each trainable parameter's role
/// from its path and shape (biases and vectors `bias`, 4-D kernels `conv`,
/// the first dense matrix `input`, the last `output`, an `embed` matrix
/// `input`, the other matrices `hidden`), and from then on expects the same
/// parameters. See the crate documentation for an example and for where
/// the update runs.
pub struct BurnOptimizer {
    pub(crate) cfg: Config,
    force_device: bool,
    pub(crate) built: Option<Built>,
    /// A state read by [`BurnOptimizer::load`] before the first step.
    pub(crate) pending: Option<crate::checkpoint::Pending>,
    last: Option<StepOutcome>,
}

impl std::fmt::Debug for BurnOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnOptimizer")
            .field("config", &self.cfg.to_string())
            .field("path", &self.path())
            .finish()
    }
}

impl BurnOptimizer {
    /// An optimiser for `cfg`, checked as far as it can be without a
    /// module (names, hyper-parameters, schedule, clipping bounds).
    pub fn new(cfg: Config) -> Result<Self, Error> {
        cfg.validate()?;
        Ok(BurnOptimizer {
            cfg,
            force_device: false,
            built: None,
            pending: None,
            last: None,
        })
    }

    /// Runs the step as burn tensor ops ([`Path::Device`]) even on a CPU
    /// backend: how the device form is tested where there is no GPU. Call
    /// before the first step; a rule without a device form then refuses.
    pub fn force_device_path(mut self) -> Self {
        self.force_device = true;
        self
    }

    /// The path the steps take, once the first step has met the module.
    pub fn path(&self) -> Option<Path> {
        self.built.as_ref().map(|b| b.path)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The parameters' paths, in the optimiser's order, once built.
    pub fn param_names(&self) -> &[String] {
        self.built.as_ref().map_or(&[], |b| &b.names)
    }

    /// Which rule and group update each parameter, one line each, once
    /// built: `fc2.weight [512, 256] hidden: muon (lr 0.02)`.
    pub fn assignment(&self) -> Vec<String> {
        let Some(b) = &self.built else {
            return Vec::new();
        };
        with_engine!(&b.kind, e => downhill::optim::assignment_report(&*e.opt, &b.params, &b.names))
    }

    /// What the last step did (`None` before the first).
    pub fn last_outcome(&self) -> Option<StepOutcome> {
        self.last
    }

    /// The learning rate of the first group (the schedule's current value).
    pub fn learning_rate(&self) -> Option<f64> {
        let b = self.built.as_ref()?;
        Some(with_engine!(&b.kind, e => e.opt.lr(0)))
    }

    /// Sets every group's learning rate.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error> {
        let Some(b) = self.built.as_mut() else {
            return Err(Error::Module(
                "set_learning_rate before the first step: give the rate in the spec instead".into(),
            ));
        };
        with_engine!(&mut b.kind, e => {
            for g in 0..e.opt.num_groups() {
                e.opt.set_lr(g, lr)?;
            }
        });
        Ok(())
    }

    /// Call at the end of each epoch: advances a per-epoch schedule, and
    /// `reducelronplateau` with the epoch's `metric` (a validation loss).
    pub fn epoch_end(&mut self, metric: Option<f64>) -> Result<(), Error> {
        if !self.cfg.advances_at_epoch_end(metric)? {
            return Ok(());
        }
        let Some(b) = self.built.as_mut() else {
            return Ok(());
        };
        let names = &b.names;
        with_engine!(&mut b.kind, e => advance_schedule(&mut e.sched, &mut *e.opt, metric))
            .map_err(|err| named(err, names))
    }

    /// One step over `module`'s trainable parameters with `grads` (burn's
    /// own, from `GradientsParams::from_grads`): checks the gradients,
    /// screens them for NaN and infinity, clips, updates, and advances a
    /// per-step schedule. Returns the updated module.
    ///
    /// Under [`NonFinite::Skip`] (and the other non-refusing policies) a bad
    /// step returns the module unchanged; [`Self::last_outcome`] says what
    /// happened. An error (a parameter without a gradient, a non-finite
    /// gradient under the default [`NonFinite::Error`]) consumes the module,
    /// as burn's API is by value: keep a clone if a run must survive one.
    pub fn step<M: Module>(&mut self, module: M, mut grads: GradientsParams) -> Result<M, Error> {
        if self.built.is_none() {
            self.build(&module)?;
        }
        let b = self.built.as_mut().expect("built above");
        let staged = b.path != Path::InPlace;
        let (gs, ps) = module::gather(&module, &b.index, &mut grads, staged);
        let mut checked = Vec::with_capacity(gs.len());
        for (i, g) in gs.into_iter().enumerate() {
            let name = &b.names[i];
            let g = g.ok_or_else(|| {
                Error::Module(format!(
                    "{name} has no gradient in these GradientsParams (the loss does not depend on it, or the module is not the one the optimiser first stepped)"
                ))
            })?;
            let n: usize = b.shapes[i].iter().product();
            if g.dims()[0] != n || g.dtype() != b.dtype {
                return Err(Error::Module(format!(
                    "{name} is {:?} {:?}, but its gradient has {} elements of {:?}",
                    b.shapes[i],
                    b.dtype,
                    g.dims()[0],
                    g.dtype()
                )));
            }
            checked.push(g);
        }
        let cfg = &self.cfg;
        let (module, outcome) = with_engine!(&mut b.kind, e => match b.path {
            Path::InPlace => e.step_in_place(module, checked, &b.index, &b.names, cfg)?,
            Path::Device => e.step_device(module, ps, checked, &b.index, &b.names, cfg)?,
            Path::Host => e.step_host(module, ps, checked, &b.index, &b.names, cfg)?,
        });
        if outcome == StepOutcome::Stepped && cfg.schedule_unit == ScheduleUnit::Step {
            with_engine!(&mut b.kind, e => advance_schedule(&mut e.sched, &mut *e.opt, None))
                .map_err(|err| named(err, &b.names))?;
        }
        self.last = Some(outcome);
        Ok(module)
    }

    /// `module` at the optimiser's evaluation point (schedule-free's `x`,
    /// the average of EMA/SWA), or `None` for a rule that evaluates where
    /// it trains (or before the first step). The module is not changed;
    /// the state is copied to the host for the computation.
    pub fn eval_module<M: Module>(&self, module: &M) -> Result<Option<M>, Error> {
        let Some(b) = &self.built else {
            return Ok(None);
        };
        let mut none = GradientsParams::new();
        let (_, ps) = module::gather(module, &b.index, &mut none, true);
        let out = with_engine!(&b.kind, e => e.eval_point(b, ps, &self.cfg)?);
        Ok(out.map(|new| module::replace(module.clone(), &b.index, new)))
    }

    /// Meets the module: parameters, roles, element type, path.
    fn build<M: Module>(&mut self, module: &M) -> Result<(), Error> {
        let found = module::collect(module);
        let Some(first) = found.first() else {
            return Err(Error::Module(
                "the module has no trainable float parameter".into(),
            ));
        };
        let (dtype, device) = (first.dtype, first.device.clone());
        for f in &found {
            if f.dtype != dtype || f.device != device {
                return Err(Error::Module(format!(
                    "{} is {:?} on {:?}, but {} is {:?} on {:?}: one optimiser steps parameters of one dtype on one device",
                    f.path, f.dtype, f.device, first.path, dtype, device
                )));
            }
        }
        let names: Vec<String> = found.iter().map(|f| f.path.clone()).collect();
        let shapes: Vec<Vec<usize>> = found.iter().map(|f| f.shape.clone()).collect();
        let pairs: Vec<(String, Vec<usize>)> =
            names.iter().cloned().zip(shapes.iter().cloned()).collect();
        let params = params_from_names(&pairs);
        let kind = match dtype {
            DType::F32 => Kind::F32(Engine::new(&self.cfg, &params, &names)?),
            DType::F64 => Kind::F64(Engine::new(&self.cfg, &params, &names)?),
            other => {
                return Err(Error::Module(format!(
                    "{} is {other:?}: downhill-burn steps f32 and f64 parameters",
                    first.path
                )))
            }
        };
        let device_form = with_engine!(&kind, e => e.opt.device_form());
        let path = if reachable(&device) && !self.force_device {
            Path::InPlace
        } else if device_form {
            Path::Device
        } else if self.force_device {
            return Err(Error::Module(format!(
                "{} has no device form (a tensor-level rule, Prodigy or lookahead); it runs in place on flex and ndarray, on the host elsewhere",
                self.cfg
            )));
        } else {
            Path::Host
        };
        let index: HashMap<ParamId, usize> =
            found.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        self.built = Some(Built {
            index,
            names,
            shapes,
            dtype,
            device,
            path,
            kind,
            params,
        });
        if let Some(p) = self.pending.take() {
            self.apply_loaded(p)?;
        }
        Ok(())
    }
}

/// The parameters' storage and the gradients as downhill's tensors, during
/// an in-place step.
struct Reached<'a, T> {
    slots: &'a [Slot],
    grads: &'a [&'a [T]],
}

impl<T> Tensors<T> for Reached<'_, T> {
    fn get(&mut self, i: usize) -> (&mut [T], &[T]) {
        let s = self.slots[i];
        // SAFETY: `s` was recorded by `module::reach` from a storage made
        // unique to the module the step holds and does not touch until the
        // step returns; distinct parameters have distinct storages (each was
        // made unique), and the `&mut self` receiver ends the last slice
        // before this one starts.
        let p = unsafe { std::slice::from_raw_parts_mut(s.ptr as *mut T, s.len) };
        (p, self.grads[i])
    }
}

impl<T: Direct> Engine<T> {
    fn new(
        cfg: &Config,
        params: &[downhill::optim::Param],
        names: &[String],
    ) -> Result<Self, Error> {
        let mut opt = build::<T>(&cfg.optimizer, params).map_err(|e| named(e, names))?;
        opt.set_non_finite(cfg.non_finite);
        let sched = match &cfg.schedule {
            Some(s) => Some(Scheduler::new(s.clone(), &mut *opt).map_err(|e| named(e, names))?),
            None => None,
        };
        let n = params.len();
        Ok(Engine {
            opt,
            sched,
            device: DeviceState::new(n),
            slots: vec![Slot::default(); n],
        })
    }

    fn step_in_place<M: Module>(
        &mut self,
        module: M,
        grads: Vec<Tensor<1>>,
        index: &HashMap<ParamId, usize>,
        names: &[String],
        cfg: &Config,
    ) -> Result<(M, StepOutcome), Error> {
        let mut prims: Vec<Prim> = grads.into_iter().map(Prim::take).collect();
        {
            let gs: Vec<&[T]> = prims.iter_mut().map(T::slice).collect();
            let screened = screen_gradients(&*self.opt, |i| first_non_finite_value(gs[i]));
            if let Some(outcome) = screened.map_err(|e| named(e, names))? {
                return Ok((module, outcome));
            }
        }
        self.opt.ready().map_err(|e| named(e, names))?;
        if cfg.clip_norm.is_some() || cfg.clip_value.is_some() {
            // Clipping rewrites the gradients: each made unique first.
            let mut gs: Vec<&mut [T]> = prims.iter_mut().map(T::slice_mut).collect();
            clip_all::<T, _>(cfg, &mut gs);
        }
        let gs: Vec<&[T]> = prims.iter_mut().map(T::slice).collect();
        let module = module::reach::<M, T>(module, index, &mut self.slots);
        self.opt.apply_step(&mut Reached {
            slots: &self.slots,
            grads: &gs,
        });
        Ok((module, StepOutcome::Stepped))
    }

    /// Screens and clips flat gradients on their device: one read-back of
    /// a small vector (each gradient's non-finite flag and, when clipping
    /// by norm, its sum of squares), none when neither is asked for.
    fn screen_and_clip_on_device(
        &mut self,
        gs: &mut [Tensor<1>],
        names: &[String],
        cfg: &Config,
    ) -> Result<Option<StepOutcome>, Error> {
        let n = gs.len();
        let check = self.opt.non_finite() != NonFinite::Unchecked;
        let clip = cfg.clip_norm.is_some();
        let per = usize::from(check) + usize::from(clip);
        let mut sums = Vec::with_capacity(per * n);
        for g in gs.iter() {
            // g·0 is NaN exactly where g is not finite.
            if check {
                sums.push(g.clone().mul_scalar(0.0).sum());
            }
            if clip {
                sums.push(g.clone().square().sum());
            }
        }
        let sums: Vec<f64> = if sums.is_empty() {
            Vec::new()
        } else {
            let data = read_back(Tensor::cat(sums, 0)).convert::<f64>();
            data.try_to_vec::<f64>()
                .map_err(|e| Error::Module(format!("reading the gradients' sums: {e:?}")))?
        };
        let screened = screen_gradients(&*self.opt, |i| {
            if sums[per * i].is_finite() {
                return None;
            }
            // The error names the first bad element: find it on the host.
            let host = read_back(gs[i].clone())
                .convert::<f64>()
                .try_to_vec::<f64>()
                .ok()?;
            first_non_finite_value(&host)
        });
        if let Some(outcome) = screened.map_err(|e| named(e, names))? {
            return Ok(Some(outcome));
        }
        self.opt.ready().map_err(|e| named(e, names))?;
        if let Some(max) = cfg.clip_norm {
            let total = (0..n).map(|i| sums[per * i + per - 1]).sum::<f64>().sqrt();
            if let Some(coef) = downhill::clip::clip_coefficient(total, max) {
                for g in gs.iter_mut() {
                    *g = g.clone().mul_scalar(coef);
                }
            }
        }
        if let Some(v) = cfg.clip_value {
            for g in gs.iter_mut() {
                *g = g.clone().clamp(-v, v);
            }
        }
        Ok(None)
    }

    fn step_device<M: Module>(
        &mut self,
        module: M,
        params: Vec<Option<Tensor<1>>>,
        mut grads: Vec<Tensor<1>>,
        index: &HashMap<ParamId, usize>,
        names: &[String],
        cfg: &Config,
    ) -> Result<(M, StepOutcome), Error> {
        if let Some(outcome) = self.screen_and_clip_on_device(&mut grads, names, cfg)? {
            return Ok((module, outcome));
        }
        let ps: Vec<Tensor<1>> = params.into_iter().map(|p| p.expect("gathered")).collect();
        let prefs: Vec<&Tensor<1>> = ps.iter().collect();
        let grefs: Vec<&Tensor<1>> = grads.iter().collect();
        let news = self.device.step(&mut *self.opt, &BurnOps, &prefs, &grefs)?;
        let mut new = vec![None; names.len()];
        for (i, p) in news {
            new[i] = Some(p);
        }
        Ok((module::replace(module, index, new), StepOutcome::Stepped))
    }

    fn step_host<M: Module>(
        &mut self,
        module: M,
        params: Vec<Option<Tensor<1>>>,
        grads: Vec<Tensor<1>>,
        index: &HashMap<ParamId, usize>,
        names: &[String],
        cfg: &Config,
    ) -> Result<(M, StepOutcome), Error> {
        let mut gs = Vec::with_capacity(grads.len());
        for g in grads {
            gs.push(to_host::<T>(g)?);
        }
        let screened = screen_gradients(&*self.opt, |i| first_non_finite_value(&gs[i]));
        if let Some(outcome) = screened.map_err(|e| named(e, names))? {
            return Ok((module, outcome));
        }
        self.opt.ready().map_err(|e| named(e, names))?;
        clip_all::<T, _>(cfg, &mut gs);
        let mut ps = Vec::with_capacity(params.len());
        let mut devices = Vec::with_capacity(params.len());
        for p in params {
            let p = p.expect("gathered");
            devices.push(p.device());
            ps.push(to_host::<T>(p)?);
        }
        let mut pr: Vec<&mut [T]> = ps.iter_mut().map(Vec::as_mut_slice).collect();
        let gr: Vec<&[T]> = gs.iter().map(Vec::as_slice).collect();
        self.opt.apply_step(&mut downhill::optim::Slices {
            params: &mut pr,
            grads: &gr,
        });
        let new = ps
            .into_iter()
            .zip(&devices)
            .map(|(p, d)| Some(from_host(p, d)))
            .collect();
        Ok((module::replace(module, index, new), StepOutcome::Stepped))
    }
}

impl<T: Direct> Engine<T> {
    /// The evaluation point of the flat parameters `ps`, on their device.
    fn eval_point(
        &self,
        b: &Built,
        ps: Vec<Option<Tensor<1>>>,
        cfg: &Config,
    ) -> Result<Option<Vec<Option<Tensor<1>>>>, Error> {
        let mut host = Vec::with_capacity(ps.len());
        for (i, p) in ps.into_iter().enumerate() {
            let p =
                p.ok_or_else(|| Error::Module(format!("{} is not in this module", b.names[i])))?;
            host.push(to_host::<T>(p)?);
        }
        let mut out: Vec<Vec<T>> = host.iter().map(|p| vec![T::zero(); p.len()]).collect();
        let pr: Vec<&[T]> = host.iter().map(Vec::as_slice).collect();
        let mut or: Vec<&mut [T]> = out.iter_mut().map(Vec::as_mut_slice).collect();
        let has = if b.path == Path::Device {
            // The buffers live on the device: a host optimiser computes it.
            let state = crate::checkpoint::host_state(self)?;
            let mut opt = build::<T>(&cfg.optimizer, &b.params).map_err(|e| named(e, &b.names))?;
            opt.load_state(&state).map_err(|e| named(e, &b.names))?;
            opt.eval_params(&pr, &mut or)
        } else {
            self.opt.eval_params(&pr, &mut or)
        }
        .map_err(|e| named(e, &b.names))?;
        if !has {
            return Ok(None);
        }
        Ok(Some(
            out.into_iter()
                .map(|o| Some(from_host(o, &b.device)))
                .collect(),
        ))
    }
}

thread_local! {
    static HOST_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many times this thread's adapter steps, saves and evaluations have
/// read a tensor back from its device to the host. Every read the adapter
/// makes goes through one function that counts it: on the device path a
/// step reads one small vector when it checks for non-finite gradients or
/// clips by norm, and nothing otherwise (`tests/wgpu.rs`).
pub fn host_reads() -> usize {
    HOST_READS.with(std::cell::Cell::get)
}

/// Reads `t` back to the host: the adapter's only way to.
pub(crate) fn read_back(t: Tensor<1>) -> TensorData {
    HOST_READS.with(|c| c.set(c.get() + 1));
    t.into_data()
}

/// A flat tensor's values on the host, as `T`.
pub(crate) fn to_host<T: Direct>(t: Tensor<1>) -> Result<Vec<T>, Error> {
    read_back(t)
        .convert_dtype(T::DTYPE)
        .try_to_vec::<T>()
        .map_err(|e| Error::Module(format!("reading a tensor back: {e:?}")))
}

/// Host values as a flat tensor on `device`, in `T`.
pub(crate) fn from_host<T: Direct>(data: Vec<T>, device: &Device) -> Tensor<1> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), (device, T::DTYPE))
}
