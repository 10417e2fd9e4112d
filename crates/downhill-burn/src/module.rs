//! Walking a burn module: its trainable parameters (path, shape, dtype,
//! device), their gradients, and putting updated values back.

use crate::host::{Direct, Prim};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, GradientCheckpointingStrategy, Tensor};
use std::collections::HashMap;

/// One trainable parameter as the module shows it.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub id: ParamId,
    /// Its path in the module, `.`-joined (`fc1.weight`).
    pub path: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    /// Its device without autodiff.
    pub device: Device,
}

/// The trainable float parameters of `module`, in its order. A parameter
/// that autodiff does not track (`set_require_grad(false)`) is frozen and
/// left out.
pub(crate) fn collect<M: Module>(module: &M) -> Vec<Found> {
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

struct Collect {
    path: Vec<String>,
    out: Vec<Found>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        if t.is_autodiff() && !t.is_require_grad() {
            return;
        }
        self.out.push(Found {
            id: param.id,
            path: self.path.join("."),
            shape: t.dims().to_vec(),
            dtype: t.dtype(),
            device: t.device().inner(),
        });
    }
}

/// Each parameter's gradient (and, when `with_params`, its value), flat and
/// without autodiff, by the optimiser's index; `None` where the gradients
/// hold none.
pub(crate) fn gather<M: Module>(
    module: &M,
    index: &HashMap<ParamId, usize>,
    grads: &mut GradientsParams,
    with_params: bool,
) -> (Vec<Option<Tensor<1>>>, Vec<Option<Tensor<1>>>) {
    let mut g = Gather {
        index,
        grads,
        with_params,
        grads_out: vec![None; index.len()],
        params_out: vec![None; if with_params { index.len() } else { 0 }],
    };
    module.visit(&mut g);
    (g.grads_out, g.params_out)
}

struct Gather<'a> {
    index: &'a HashMap<ParamId, usize>,
    grads: &'a mut GradientsParams,
    with_params: bool,
    grads_out: Vec<Option<Tensor<1>>>,
    params_out: Vec<Option<Tensor<1>>>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(&i) = self.index.get(&param.id) else {
            return;
        };
        let n = param.val().dims().iter().product::<usize>();
        self.grads_out[i] = self
            .grads
            .remove::<D>(param.id)
            .map(|g| g.inner().reshape([n]));
        if self.with_params {
            self.params_out[i] = Some(param.val().inner().reshape([n]));
        }
    }
}

/// The autodiff state a parameter carries, put back onto its new value
/// (burn's own optimisers do the same).
struct Context {
    autodiff: bool,
    require_grad: bool,
    distributed: bool,
    checkpointing: Option<GradientCheckpointingStrategy>,
}

impl Context {
    fn capture<const D: usize>(t: &Tensor<D>) -> Self {
        // Only an autodiff tensor can say the rest.
        let autodiff = t.is_autodiff();
        Context {
            autodiff,
            require_grad: autodiff && t.is_require_grad(),
            distributed: autodiff && t.is_distributed(),
            checkpointing: t.gradient_checkpointing_strategy(),
        }
    }

    fn restore<const D: usize>(self, t: Tensor<D>, id: ParamId) -> Tensor<D> {
        if !self.autodiff {
            return t;
        }
        let mut t = Tensor::from_inner(t);
        if let Some(s) = self.checkpointing {
            t = t.with_gradient_checkpointing_strategy(s);
        }
        if self.require_grad {
            t = t.require_grad();
        }
        if self.distributed {
            t = t.set_distributed(id);
        }
        t
    }
}

/// Gives each parameter in `new` its new flat value.
pub(crate) fn replace<M: Module>(
    module: M,
    index: &HashMap<ParamId, usize>,
    new: Vec<Option<Tensor<1>>>,
) -> M {
    module.map(&mut Replace { index, new })
}

struct Replace<'a> {
    index: &'a HashMap<ParamId, usize>,
    new: Vec<Option<Tensor<1>>>,
}

impl ModuleMapper for Replace<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let new = self.index.get(&id).and_then(|&i| self.new[i].take());
        let tensor = match new {
            Some(p) => {
                let ctx = Context::capture(&tensor);
                let dims = tensor.dims();
                drop(tensor);
                ctx.restore(p.reshape(dims), id)
            }
            None => tensor,
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Where a parameter's elements lie during an in-place step.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Slot {
    pub ptr: usize,
    pub len: usize,
}

/// Makes every indexed parameter's storage unique and contiguous (copying
/// only a shared or strided one) and records where it lies in `slots`.
/// The returned module owns that storage: the slots stay valid while it
/// lives and nothing else touches it.
pub(crate) fn reach<M: Module, T: Direct>(
    module: M,
    index: &HashMap<ParamId, usize>,
    slots: &mut [Slot],
) -> M {
    module.map(&mut Reach::<T> {
        index,
        slots,
        _t: std::marker::PhantomData,
    })
}

struct Reach<'a, T> {
    index: &'a HashMap<ParamId, usize>,
    slots: &'a mut [Slot],
    _t: std::marker::PhantomData<T>,
}

impl<T: Direct> ModuleMapper for Reach<'_, T> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = match self.index.get(&id) {
            Some(&i) => {
                let ctx = Context::capture(&tensor);
                let mut prim = Prim::take(tensor.inner());
                let s = T::slice_mut(&mut prim);
                self.slots[i] = Slot {
                    ptr: s.as_mut_ptr() as usize,
                    len: s.len(),
                };
                ctx.restore(prim.into_tensor(), id)
            }
            None => tensor,
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}
