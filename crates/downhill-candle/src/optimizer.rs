//! [`CandleOptimizer`]: a downhill optimiser over candle vars.

use crate::engine::{named, Engine, Path, Vars};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use downhill::adapter::Config;
use downhill::adapter::{natural_cmp, params_from_names};
use downhill::optim::{build, Param, StepOutcome};
use downhill::schedule::{Schedule, Scheduler};

/// The engine in the element type the vars need: f64 vars keep f64 state,
/// every other float type f32.
#[derive(Debug)]
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

fn msg(s: String) -> candle_core::Error {
    candle_core::Error::Msg(s)
}

/// Any downhill optimiser, schedule and clipping as a
/// [`candle_nn::Optimizer`].
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use candle_nn::{Module, Optimizer as _, VarBuilder, VarMap};
///
/// let varmap = VarMap::new();
/// let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
/// let model = candle_nn::linear(3, 1, vb.pp("fc"))?;
/// // Start from zeros, not candle's unseeded random weights, so that the
/// // example gives the same loss on every run.
/// for var in varmap.all_vars() {
///     var.set(&var.zeros_like()?)?;
/// }
/// let cfg: downhill_candle::Config = "adamw(lr=0.1,weight_decay=0.01)".parse()?;
/// let mut opt = downhill_candle::CandleOptimizer::from_varmap(&varmap, cfg)?
///     .with_schedule("cosineannealinglr(T_max=100)")?;
/// let x = Tensor::new(&[[1f32, 2., 3.], [0., 1., -1.]], &Device::Cpu)?;
/// let y = Tensor::new(&[[1f32], [0.]], &Device::Cpu)?;
/// for _ in 0..100 {
///     let loss = model.forward(&x)?.sub(&y)?.sqr()?.mean_all()?;
///     opt.backward_step(&loss)?;
/// }
/// let loss = model.forward(&x)?.sub(&y)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
/// assert!(loss < 1e-2, "{loss}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CandleOptimizer {
    pub(crate) vars: Vec<Var>,
    pub(crate) names: Vec<String>,
    /// Whether the names are a VarMap's (and so can be checked on load).
    pub(crate) named: bool,
    pub(crate) params: Vec<Param>,
    pub(crate) cfg: Config,
    pub(crate) path: Path,
    pub(crate) kind: Kind,
    /// An invalid rate given to `set_learning_rate`, which cannot fail: the
    /// next step returns it.
    pending: Option<String>,
    last: Option<StepOutcome>,
}

impl CandleOptimizer {
    /// An optimiser over `vars`, each var's role taken from its shape alone
    /// (vectors are biases, 4-D tensors convolution kernels, other matrices
    /// hidden). Every var must be a float tensor (f32, f64, bf16 or f16) of
    /// one dtype, on one device.
    ///
    /// Checkpoints ([`CandleOptimizer::save`]) match tensors by position;
    /// `VarMap::all_vars` lists vars in a hash map's order, which changes
    /// from process to process, so to resume elsewhere build with
    /// [`CandleOptimizer::from_varmap`], which orders them by name.
    pub fn new(vars: Vec<Var>, cfg: Config) -> candle_core::Result<Self> {
        let names = vars
            .iter()
            .enumerate()
            .map(|(i, v)| format!("var {i} {:?}", v.dims()))
            .collect();
        let params = vars.iter().map(|v| Param::of_shape(v.dims())).collect();
        Self::build(vars, names, false, params, cfg)
    }

    /// An optimiser over every var of `varmap`, in the order of their names
    /// (numbers compared as numbers, so `layer2` before `layer10`), with
    /// each var's role taken from its name and shape: `…bias` and vectors
    /// are `bias`, 4-D kernels `conv`, the last matrix `output`, the first
    /// `input` (unless a convolution comes first; a matrix named `…embed…`
    /// is `input` too), every other matrix `hidden`. So `"muon"` puts the
    /// hidden matrices on Muon and the rest on AdamW, as `downhill train`
    /// does.
    pub fn from_varmap(varmap: &VarMap, cfg: Config) -> candle_core::Result<Self> {
        let mut named: Vec<(String, Var)> = {
            let data = varmap
                .data()
                .lock()
                .map_err(|_| msg("downhill: the VarMap's lock is poisoned".into()))?;
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        named.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        let shapes: Vec<(String, Vec<usize>)> = named
            .iter()
            .map(|(n, v)| (n.clone(), v.dims().to_vec()))
            .collect();
        let params = params_from_names(&shapes);
        let (names, vars) = named.into_iter().unzip();
        Self::build(vars, names, true, params, cfg)
    }

    fn build(
        vars: Vec<Var>,
        names: Vec<String>,
        named_vars: bool,
        params: Vec<Param>,
        cfg: Config,
    ) -> candle_core::Result<Self> {
        cfg.validate().map_err(|e| named(e, &names))?;
        for i in 0..vars.len() {
            if let Some(j) = (0..i).find(|&j| vars[j].id() == vars[i].id()) {
                return Err(msg(format!(
                    "downhill: {} and {} are the same var; give each var once",
                    names[j], names[i]
                )));
            }
        }
        let dtype = vars.first().map_or(DType::F32, |v| v.dtype());
        let device = vars.first().map(|v| v.device().clone());
        for (v, name) in vars.iter().zip(&names) {
            if !matches!(
                v.dtype(),
                DType::F32 | DType::F64 | DType::BF16 | DType::F16
            ) {
                return Err(msg(format!(
                    "downhill: {name} is {:?}; downhill trains f32, f64, bf16 and f16 vars",
                    v.dtype()
                )));
            }
            if v.dtype() != dtype {
                return Err(msg(format!(
                    "downhill: {name} is {:?} but {} is {dtype:?}; give one optimiser vars of one dtype",
                    v.dtype(),
                    names[0]
                )));
            }
            if !device.as_ref().is_some_and(|d| d.same_device(v.device())) {
                return Err(msg(format!(
                    "downhill: {name} is on {:?} but {} is on {:?}; give one optimiser vars on one device",
                    v.device().location(),
                    names[0],
                    device.as_ref().map(|d| d.location())
                )));
            }
            if !v.is_contiguous() {
                return Err(msg(format!("downhill: {name} is not contiguous")));
            }
        }
        let on_cpu = device.as_ref().is_none_or(|d| d.is_cpu());
        let kind = if dtype == DType::F64 {
            let opt = build::<f64>(&cfg.optimizer, &params).map_err(|e| named(e, &names))?;
            Kind::F64(Engine::new(opt, &cfg).map_err(|e| named(e, &names))?)
        } else {
            let opt = build::<f32>(&cfg.optimizer, &params).map_err(|e| named(e, &names))?;
            Kind::F32(Engine::new(opt, &cfg).map_err(|e| named(e, &names))?)
        };
        let device_form = with_engine!(&kind, e => e.opt.device_form());
        let path = match dtype {
            DType::F32 | DType::F64 if !on_cpu && device_form => Path::Device,
            _ if !on_cpu => Path::Tensor,
            DType::BF16 | DType::F16 => Path::Half(dtype),
            _ => Path::InPlace,
        };
        Ok(CandleOptimizer {
            vars,
            names,
            named: named_vars,
            params,
            cfg,
            path,
            kind,
            pending: None,
            last: None,
        })
    }

    /// Drives the learning rate by a schedule spec, as `downhill train
    /// --schedule` takes it (`"cosineannealinglr(T_max=100)"`), starting
    /// from the current rates. It advances after every step, or at
    /// [`CandleOptimizer::epoch_end`] (see [`Config::schedule_unit`];
    /// `reducelronplateau` always advances per epoch, on the metric).
    pub fn with_schedule(mut self, spec: &str) -> candle_core::Result<Self> {
        let schedule: Schedule = spec.parse().map_err(|e| named(e, &self.names))?;
        let names = &self.names;
        with_engine!(&mut self.kind, e => {
            e.sched = Some(Scheduler::new(schedule.clone(), &mut *e.opt).map_err(|err| named(err, names))?);
        });
        self.cfg.schedule = Some(schedule);
        Ok(self)
    }

    /// Sends every var to the host and back through candle tensor ops (the
    /// path an optimiser without a device form takes on CUDA or Metal) even
    /// on the CPU, to test that path where no GPU is. Call it before the
    /// first step.
    pub fn force_tensor_path(mut self) -> Self {
        self.path = Path::Tensor;
        self
    }

    /// Runs every step as candle tensor ops on the vars' device, with the
    /// state there ([`Path::Device`], the path f32 and f64 vars on CUDA or
    /// Metal take), even on the CPU, to test that path where no GPU is. An
    /// error for an optimiser without a device form (tensor-level rules,
    /// Prodigy, lookahead) and for bf16 or f16 vars. Call it before the
    /// first step.
    pub fn force_device_path(mut self) -> candle_core::Result<Self> {
        let form = with_engine!(&self.kind, e => e.opt.device_form());
        if !form {
            return Err(msg(format!(
                "downhill: `{}` has no device form: only element-wise rules (alone or in a partition) run as tensor ops on the device",
                self.cfg.optimizer
            )));
        }
        if let Some(v) = self
            .vars
            .iter()
            .find(|v| !matches!(v.dtype(), DType::F32 | DType::F64))
        {
            return Err(msg(format!(
                "downhill: the device path runs f32 and f64 vars, not {:?}",
                v.dtype()
            )));
        }
        self.path = Path::Device;
        Ok(self)
    }

    /// How the vars reach downhill's kernels: in place, through f32
    /// buffers (bf16, f16), or through tensor ops (other devices).
    pub fn path(&self) -> Path {
        self.path
    }

    /// One step with the gradients in `grads`: the non-finite check (on the
    /// gradients as given), clipping (which rewrites the gradients in
    /// `grads`, as torch's `clip_grad_norm_` does), the update, and the
    /// schedule's advance. Says whether the parameters changed
    /// ([`StepOutcome::Skipped`] under [`downhill::optim::NonFinite::Skip`]).
    /// On an error nothing changed.
    pub fn step_outcome(&mut self, grads: &GradStore) -> candle_core::Result<StepOutcome> {
        if let Some(e) = self.pending.take() {
            return Err(msg(e));
        }
        let v = Vars {
            vars: &self.vars,
            names: &self.names,
        };
        let (path, cfg) = (self.path, &self.cfg);
        let outcome = with_engine!(&mut self.kind, e => e.step(&v, grads, path, cfg))?;
        self.last = Some(outcome);
        Ok(outcome)
    }

    /// What the last step did.
    pub fn last_outcome(&self) -> Option<StepOutcome> {
        self.last
    }

    /// Ends an epoch: advances a schedule stepped per epoch, with the
    /// epoch's metric (the validation loss, say) that `reducelronplateau`
    /// needs and the others ignore.
    pub fn epoch_end(&mut self, metric: Option<f64>) -> candle_core::Result<()> {
        let names = &self.names;
        if self
            .cfg
            .advances_at_epoch_end(metric)
            .map_err(|e| named(e, names))?
        {
            with_engine!(&mut self.kind, e => e.advance(metric, names))?;
        }
        Ok(())
    }

    /// The vars, in the optimiser's order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The vars' names: the VarMap's, or `var {i} [shape]`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each var's shape and role.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Which rule and group update each var, one line each:
    /// `fc2.weight [256, 512] hidden: muon (lr 0.02)`.
    pub fn assignment(&self) -> Vec<String> {
        with_engine!(&self.kind, e => downhill::optim::assignment_report(&*e.opt, &self.params, &self.names))
    }

    /// Every parameter group's learning rate.
    pub fn learning_rates(&self) -> Vec<f64> {
        with_engine!(&self.kind, e => (0..e.opt.num_groups()).map(|g| e.opt.lr(g)).collect())
    }

    fn set_rate(&mut self, lr: f64) -> downhill::Result<()> {
        with_engine!(&mut self.kind, e => {
            if e.opt.num_groups() == 0 {
                return Ok(());
            }
            let current = e.opt.lr(0);
            let factor = lr / current;
            match &mut e.sched {
                Some(s) if current > 0.0 && factor.is_finite() => s.scale(&mut *e.opt, factor),
                _ => {
                    let rates: Vec<f64> = (0..e.opt.num_groups())
                        .map(|g| if g == 0 || current <= 0.0 || current.is_nan() { lr } else { e.opt.lr(g) * factor })
                        .collect();
                    // All groups or none.
                    downhill::optim::set_lrs(&mut *e.opt, &rates)
                }
            }
        })
    }
}

impl candle_nn::Optimizer for CandleOptimizer {
    type Config = Config;

    fn new(vars: Vec<Var>, config: Config) -> candle_core::Result<Self> {
        CandleOptimizer::new(vars, config)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_outcome(grads).map(drop)
    }

    /// The first parameter group's rate.
    fn learning_rate(&self) -> f64 {
        self.learning_rates().first().copied().unwrap_or(0.0)
    }

    /// Sets the first group's rate to `lr` and scales the others by the
    /// same factor (a partition keeps its ratios); with a schedule, scales
    /// the schedule's initial and current rates. An invalid rate (negative,
    /// NaN) cannot be refused here: the next step returns the error, and the
    /// rates stay as they were.
    fn set_learning_rate(&mut self, lr: f64) {
        if let Err(e) = self.set_rate(lr) {
            self.pending = Some(format!("downhill: set_learning_rate({lr}): {e}"));
        }
    }
}

impl CandleOptimizer {
    /// [`candle_nn::Optimizer::backward_step`], saying what the step did.
    pub fn backward_step_outcome(&mut self, loss: &Tensor) -> candle_core::Result<StepOutcome> {
        let grads = loss.backward()?;
        self.step_outcome(&grads)
    }
}

impl CandleOptimizer {
    /// The point to evaluate the model at, for optimisers whose evaluation
    /// point is not the training point (schedule-free's `x`, ASGD's
    /// average): new tensors, one per var, with the vars' shapes, dtypes and
    /// device; `None` for the others (evaluate at the vars themselves).
    /// Copies every var once; meant for evaluation, not for every step.
    pub fn eval_params(&self) -> candle_core::Result<Option<Vec<Tensor>>> {
        if self.path == Path::Device {
            return with_engine!(&self.kind, e => e.eval_params_device(&self.cfg, &self.params, &self.vars, &self.names));
        }
        with_engine!(&self.kind, e => crate::engine::eval_params(&*e.opt, &self.vars, &self.names))
    }
}
