//! [`Rule`]: one element-wise downhill rule as burn's per-tensor
//! [`burn::optim::Optimizer`], for a `ModuleOptimizer` (and its groups).

use crate::error::{named, Error};
use crate::host::Direct;
use crate::ops::BurnOps;
use burn::optim::{LearningRate, RecordState, StateSink, StateSource};
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_pack::Scalar;
use downhill::optim::device::DeviceState;
use downhill::optim::{build, NonFinite, OptimizerSpec, Param, Role};

/// One element-wise downhill rule (any of them: `adam`, `nadam`, `radam`,
/// `lion`, `ademamix`, `schedulefree_adamw`, ...) as a
/// [`burn::optim::Optimizer`]: burn steps each tensor on its own, and the
/// rule runs as burn tensor ops on that tensor's device, its state there
/// too (the same programs as [`crate::BurnOptimizer`]'s device path, so the
/// same fixtures hold it; `tests/rule.rs`).
///
/// ```
/// use burn::optim::ModuleOptimizer;
/// let rule = downhill_burn::Rule::new("nadam(betas=(0.9,0.99))")?;
/// let optim: ModuleOptimizer = rule.into(); // optim.step(lr, module, grads)
/// # Ok::<(), downhill_burn::Error>(())
/// ```
///
/// burn's trait sees one tensor at a time and cannot fail, so what needs
/// the whole module is [`crate::BurnOptimizer`]'s: partitions by role,
/// Muon and the other tensor-level rules, Prodigy, lookahead, clipping by
/// global norm, the non-finite check (a `Rule` steps unchecked), and
/// downhill's schedules (burn passes its own learning rate each step,
/// which replaces the spec's `lr`). [`Rule::new`] refuses those by name.
#[derive(Clone, Debug)]
pub struct Rule {
    spec: OptimizerSpec,
}

/// A [`Rule`]'s state for one tensor: its step count, its per-tensor
/// scalars and its buffers (flat, on the tensor's device).
#[derive(Clone, Debug)]
pub struct RuleState<const D: usize> {
    step: u64,
    scalars: Vec<f64>,
    buffers: Vec<Tensor<1>>,
}

impl Rule {
    /// The rule `spec`, any element-wise rule `downhill optimizers` lists,
    /// with its hyper-parameters.
    pub fn new(spec: &str) -> Result<Self, Error> {
        let spec: OptimizerSpec = spec.parse()?;
        spec.validate()?;
        if !spec.parts.is_empty() || !spec.groups.is_empty() {
            return Err(Error::Module(format!(
                "{spec}: burn's per-tensor optimiser sees one tensor at a time; partitions and groups need the whole module (BurnOptimizer)"
            )));
        }
        let probe = build::<f32>(&spec, &[Param::new(vec![2, 2], Role::Hidden)])?;
        if !probe.device_form() {
            return Err(Error::Module(format!(
                "{spec} has no per-tensor device form (a tensor-level rule, Prodigy or lookahead); use BurnOptimizer"
            )));
        }
        Ok(Rule { spec })
    }

    fn step_in<T: Direct, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<RuleState<D>>,
    ) -> Result<(Tensor<D>, RuleState<D>), Error> {
        let dims = tensor.dims();
        let shape = dims.to_vec();
        let n = shape.iter().product::<usize>();
        let names = [format!("tensor {shape:?}")];
        let named = |e| named(e, &names);
        let mut opt = build::<T>(
            &self.spec,
            &[Param::new(shape.clone(), Role::from_shape(&shape))],
        )
        .map_err(named)?;
        opt.set_non_finite(NonFinite::Unchecked);
        opt.set_lr(0, lr).map_err(named)?;
        let mut device = DeviceState::new(1);
        if let Some(st) = state {
            opt.set_tensor_counters(0, st.step, &st.scalars)
                .map_err(named)?;
            let order = buffer_names(&*opt)?;
            if order.len() != st.buffers.len() {
                return Err(Error::Module(format!(
                    "{}: a state of {} buffers, the rule keeps {}",
                    names[0],
                    st.buffers.len(),
                    order.len()
                )));
            }
            device.set_buffers(0, order.into_iter().zip(st.buffers).collect());
        }
        opt.ready().map_err(named)?;
        let p = tensor.reshape([n]);
        let g = grad.reshape([n]);
        let news = device.step(&mut *opt, &BurnOps, &[&p], &[&g])?;
        let new = news.into_iter().next().map_or(p, |(_, x)| x);
        let (step, scalars) = opt
            .tensor_counters(0)
            .expect("a rule with a device form has counters");
        let mut buffers = Vec::new();
        for name in buffer_names(&*opt)? {
            let (_, t) = device
                .buffers(0)
                .iter()
                .find(|(k, _)| *k == name)
                .expect("the step kept every buffer");
            buffers.push(t.clone());
        }
        Ok((
            new.reshape(dims),
            RuleState {
                step,
                scalars,
                buffers,
            },
        ))
    }
}

/// The names of tensor 0's buffers, in the optimiser's order.
fn buffer_names<T: Direct>(opt: &dyn downhill::optim::Optimizer<T>) -> Result<Vec<String>, Error> {
    let state = opt.save_state()?;
    Ok(state.manifest.tensors[0]
        .buffers
        .iter()
        .map(|b| b.name.clone())
        .collect())
}

impl burn::optim::Optimizer for Rule {
    type State<const D: usize> = RuleState<D>;

    /// One step of the rule on `tensor`. Panics with the adapter's one-line
    /// message where downhill refuses (a dtype other than f32 and f64, a
    /// negative learning rate): burn's trait has no error to return.
    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<RuleState<D>>,
    ) -> (Tensor<D>, Option<RuleState<D>>) {
        let out = match tensor.dtype() {
            DType::F64 => self.step_in::<f64, D>(lr, tensor, grad, state),
            DType::F32 => self.step_in::<f32, D>(lr, tensor, grad, state),
            other => Err(Error::Module(format!(
                "{other:?} tensor: downhill_burn::Rule steps f32 and f64"
            ))),
        };
        match out {
            Ok((t, s)) => (t, Some(s)),
            Err(e) => panic!("{e}"),
        }
    }

    fn to_device<const D: usize>(state: RuleState<D>, device: &Device) -> RuleState<D> {
        RuleState {
            buffers: state
                .buffers
                .into_iter()
                .map(|t| t.to_device(device))
                .collect(),
            ..state
        }
    }
}

impl<const D: usize> RecordState for RuleState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "step", Scalar::from(self.step));
        out.push_scalar(prefix, "scalars", Scalar::from(self.scalars.len() as u64));
        for (i, s) in self.scalars.iter().enumerate() {
            out.push_scalar(prefix, &format!("scalar{i}"), Scalar::from(*s));
        }
        out.push_scalar(prefix, "buffers", Scalar::from(self.buffers.len() as u64));
        for (i, t) in self.buffers.iter().enumerate() {
            out.push_tensor(prefix, &format!("buffer{i}"), t.to_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let step = u64::try_from(src.take_scalar(prefix, "step")?).ok()?;
        let n = u64::try_from(src.take_scalar(prefix, "scalars")?).ok()?;
        let scalars = (0..n)
            .map(|i| f64::try_from(src.take_scalar(prefix, &format!("scalar{i}"))?).ok())
            .collect::<Option<Vec<f64>>>()?;
        let n = u64::try_from(src.take_scalar(prefix, "buffers")?).ok()?;
        let buffers = (0..n)
            .map(|i| {
                let data: TensorData = src.take_tensor(prefix, &format!("buffer{i}"))?;
                let len = data.num_elements();
                Some(Tensor::<1>::from_data(data, device).reshape([len]))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(RuleState {
            step,
            scalars,
            buffers,
        })
    }
}
