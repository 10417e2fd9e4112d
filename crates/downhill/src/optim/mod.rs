//! First-order optimisers with `torch.optim`'s names, hyper-parameters, defaults
//! and update rules.
//!
//! Each optimiser is one file holding its hyper-parameter struct (which is also
//! its update [`Rule`]) and one line in the [`registry`]; the shared machinery
//! lives once: [`mechanics`] (weight decay, moments, bias correction),
//! [`passes`] (the fused loop, the deterministic parallel reductions) and the
//! [`Driver`] (parameter groups, state, non-finite checks, sparse steps,
//! save/restore).
//!
//! There are two kinds of rule, and one driver runs both:
//!
//! * **element-wise** rules (SGD, Adam, ...) update each element from its own
//!   gradient and state: one fused, allocation-free pass over memory, split
//!   across threads, identical bits for any thread count;
//! * **tensor-level** rules see a whole tensor and its shape: they reduce
//!   first (norms, row and column statistics) and then update, and may run
//!   matrix products (Muon's Newton–Schulz). Their buffers may have any
//!   shape (Adafactor keeps a row and a column vector per matrix).
//!
//! Parameters carry shapes and roles ([`Param`]); a [`Partition`] gives
//! different rules to different roles, e.g. Muon on hidden matrices and
//! AdamW on the rest, and saves, loads and resumes as one state.
//!
//! ```
//! use downhill::optim::{Adam, Optimizer, Rule};
//!
//! // Two parameter tensors, e.g. a weight matrix and a bias.
//! let mut w = vec![1.0f32; 6];
//! let mut b = vec![0.5f32; 3];
//! let mut opt = Adam { lr: 0.1, ..Adam::default() }.build::<f32>(&[6, 3])?;
//! for _ in 0..100 {
//!     // gradient of ½‖w‖² + ½‖b‖²
//!     let (gw, gb) = (w.clone(), b.clone());
//!     opt.step(&mut [&mut w, &mut b], &[&gw, &gb])?;
//! }
//! assert!(w.iter().chain(&b).all(|x| x.abs() < 0.05));
//! # Ok::<(), downhill::Error>(())
//! ```
//!
//! Optimisers can also be built by name, as the CLI and the conformance tests do:
//!
//! ```
//! use downhill::optim::{build, OptimizerSpec};
//! let spec: OptimizerSpec = "sgd(lr=0.05,momentum=0.9,nesterov=true)".parse()?;
//! let mut opt = build::<f64>(&spec, &[10])?;
//! assert_eq!(opt.lr(0), 0.05);
//! # Ok::<(), downhill::Error>(())
//! ```
//!
//! Parameters may carry shapes and roles ([`Param`]); tensor-level rules
//! use the shapes, partitions the roles:
//!
//! ```
//! use downhill::optim::{build, Optimizer, Param, Role};
//!
//! let params = [
//!     Param::new(vec![64, 64], Role::Hidden),
//!     Param::new(vec![64], Role::Bias),
//! ];
//! let mut opt = build::<f32>(&"partition(hidden=muon(lr=0.02),all=adamw)".parse()?, &params)?;
//! let (mut w, mut b) = (vec![0.01f32; 64 * 64], vec![0.0f32; 64]);
//! let (gw, gb) = (vec![0.001f32; 64 * 64], vec![0.001f32; 64]);
//! opt.step(&mut [&mut w, &mut b], &[&gw, &gb])?;
//! assert_eq!(opt.assignment(0), Some(("muon", 0)));
//! assert_eq!(opt.assignment(1), Some(("adamw", 1)));
//! # Ok::<(), downhill::Error>(())
//! ```
//!
//! ## Where downhill differs from torch
//!
//! Updates follow torch's order of operations, with two exceptions to its
//! checks, both stricter, both stated in the hyper-parameter's doc (and so
//! in `downhill optimizers`):
//!
//! * momentum (SGD, RMSprop) and RMSprop's `alpha` must lie in `[0, 1)`;
//!   torch accepts any value `>= 0`, and a value `>= 1` never forgets (the
//!   buffer grows without bound, or the average never leaves 0);
//! * every `eps` must be `> 0`; torch accepts 0, which divides 0 by 0 in a
//!   coordinate whose gradients have all been 0 (common with sparse data).
//!
//! Results are not bit-identical to torch's: torch's vectorised CPU kernels
//! fuse some multiply-adds in the vector body of a tensor and not in its
//! tail, so its own bits depend on the CPU. `tests/conformance` measures
//! what holds: every f64 value within 1e-9 relative of torch's float64
//! result (the worst seen is 2.7e-13, most values are bit-identical), f32
//! runs within 1e-4.

pub mod device;
pub mod lane;
pub mod mechanics;
pub mod passes;
pub mod program;
pub mod registry;

mod adabelief;
mod adadelta;
mod adafactor;
mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod adan;
mod ademamix;
mod adopt;
mod asgd;
mod driver;
mod kronecker;
mod lamb;
mod lars;
mod lion;
mod lookahead;
mod mars;
mod muon;
mod nadam;
mod param;
mod partition;
mod prodigy;
mod radam;
mod rmsprop;
mod rprop;
mod schedulefree_adamw;
mod schedulefree_sgd;
mod sgd;
mod shampoo;
mod soap;
mod spec;

pub use adabelief::AdaBelief;
pub use adadelta::Adadelta;
pub use adafactor::Adafactor;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use adamw::AdamW;
pub use adan::Adan;
pub use ademamix::AdEMAMix;
pub use adopt::Adopt;
pub use asgd::Asgd;
pub use driver::{Driver, Group, MAX_STEP};
pub use lamb::Lamb;
pub use lars::Lars;
pub use lion::Lion;
pub use lookahead::{Lookahead, LookaheadConfig};
pub use mars::{Mars, MarsType};
pub use muon::{AdjustLr, Muon};
pub use nadam::NAdam;
pub use param::{to_params, Param, Role, ROLES};
pub use partition::{Part, Partition};
pub use prodigy::Prodigy;
pub use radam::RAdam;
pub use registry::{build, build_rule, describe, Entry, OPTIMIZERS, REGISTRY};
pub use rmsprop::RMSprop;
pub use rprop::Rprop;
pub use schedulefree_adamw::ScheduleFreeAdamW;
pub use schedulefree_sgd::ScheduleFreeSgd;
pub use sgd::Sgd;
pub use shampoo::{Grafting, Shampoo, WeightDecayType};
pub use soap::Soap;
pub(crate) use spec::{check_nesting, parse_call, split_top_level};
pub use spec::{GroupSpec, OptimizerSpec, PartSpec, MAX_NESTING};

use crate::error::Error;
use crate::hyper::{Hyper, HyperMap, HyperValue};
use crate::state::SavedState;
use crate::{Real, Result};

/// The most state buffers any rule keeps per parameter (SOAP and Shampoo:
/// 5; Adan: 4; RMSprop centered with momentum, or Adam with AMSGrad: 3).
pub const MAX_BUFFERS: usize = 5;

/// One tensor's step as a rule sees it: the parameter and its gradient
/// (row-major, `info.shape`), the state buffers in the order [`Rule::buffers`]
/// names them (the first `n_buffers` are in use; each has the shape
/// [`Rule::buffer_shape`] gave it), and a scratch vector the rule may grow
/// and reuse: it is kept between steps, so after the first step a rule
/// that needs temporary memory (Muon's Newton–Schulz matrices) allocates
/// nothing.
pub struct TensorStep<'a, T> {
    /// The parameter, updated in place.
    pub param: &'a mut [T],
    /// Its gradient.
    pub grad: &'a [T],
    /// Its shape, role and layout.
    pub info: &'a Param,
    /// The state buffers.
    pub buffers: [&'a mut [T]; MAX_BUFFERS],
    /// How many of `buffers` are in use.
    pub n_buffers: usize,
    /// Reusable temporary memory.
    pub scratch: &'a mut Vec<T>,
}

/// An update rule: the part that differs between SGD, Adam, Muon and the
/// rest. The rule's own struct holds its hyper-parameters.
///
/// A step of tensor `θ` with gradient `g` is computed by [`Rule::prepare`]
/// (once per tensor and step: the scalars, in `f64`) and [`Rule::step_tensor`]
/// (the work on the tensor). Element-wise rules implement [`Pointwise`] and
/// write `crate::pointwise_rule!();` in their `impl Rule`, which makes
/// `step_tensor` the fused pass and allows lazy row-sparse steps.
pub trait Rule: Hyper {
    /// Per-step constants, converted to the element type.
    type Consts<T: Real>: Copy + Send + Sync;

    /// Names of the state buffers the current hyper-parameters need for a
    /// parameter of this shape, in the order `step_tensor` receives them.
    fn buffers(&self, shape: &[usize]) -> &'static [&'static str];

    /// The shape of a state buffer for a parameter: the parameter's own
    /// unless the rule keeps something else (Adafactor's row and column
    /// statistics, a Kronecker factor's matrices).
    fn buffer_shape(&self, _buffer: &str, param: &Param) -> Vec<usize> {
        param.shape.to_vec()
    }

    /// Initial value of a state buffer.
    fn buffer_init(&self, _buffer: &str) -> f64 {
        0.0
    }

    /// Per-tensor scalar state and its initial value (e.g. NAdam's `mu_product`).
    fn scalars(&self) -> &'static [(&'static str, f64)] {
        &[]
    }

    /// Checks between hyper-parameters, beyond the range of each (e.g. Nesterov
    /// needs momentum). Ranges are checked by [`Hyper::validate`].
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Checks between groups, for rules whose groups share state (Prodigy's
    /// groups must agree on what shapes its one estimate `d`).
    fn check_groups(_groups: &[Group<Self>]) -> Result<()>
    where
        Self: Sized,
    {
        Ok(())
    }

    /// Whether this rule can update this parameter; if not, why, in a few
    /// words (Muon: "updates matrices (2-D or more)").
    fn accepts(&self, _param: &Param) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Fills a state buffer the first time it is created, when its start
    /// depends on the parameter (schedule-free's `z` starts as a copy of θ,
    /// Prodigy's `p0` is θ's first value); after [`Rule::buffer_init`].
    fn init_buffer<T: Real>(&self, buffer: &str, param: &[T], buf: &mut [T]) {
        if self.buffer_copies_param(buffer) {
            buf.copy_from_slice(param);
        }
    }

    /// Whether `buffer` starts as a copy of the parameter (schedule-free's
    /// `z`) rather than filled with [`Rule::buffer_init`].
    fn buffer_copies_param(&self, _buffer: &str) -> bool {
        false
    }

    /// The device form of one step ([`program`]), for rules that have one:
    /// element-wise rules, through `pointwise_rule!`.
    fn program<T: Real>(_c: &Self::Consts<T>, _n_buffers: usize) -> Option<program::Program> {
        None
    }

    /// Scalar state a parameter group keeps across steps (schedule-free's
    /// step and weight sum, Prodigy's distance estimate `d`), by name.
    fn group_scalars(&self) -> &'static [&'static str] {
        &[]
    }

    /// Their values when the group starts.
    fn group_init(&self) -> Vec<f64> {
        vec![0.0; self.group_scalars().len()]
    }

    /// Updates a group's scalars at the start of a step, before any of its
    /// tensors; what [`Rule::prepare`] then receives as `group`.
    fn begin_group(&self, _group: &mut [f64]) {}

    /// Rules whose step needs a sum over every tensor before any update
    /// (Prodigy's `d` from ⟨g, θ₀ − θ⟩ and ‖s‖₁) set this: the driver then
    /// runs [`Rule::gather`] over every tensor, [`Rule::settle`] once, and
    /// only then the updates.
    const GATHERS: bool = false;

    /// One tensor's part of the sums (may update its state buffers, not
    /// the parameter).
    fn gather<T: Real>(&self, _group: &[f64], _t: TensorStep<'_, T>) -> [f64; 2] {
        [0.0; 2]
    }

    /// Updates every group's scalars from the sums of [`Rule::gather`];
    /// `false` skips the update pass of this step (Prodigy, when nothing has
    /// moved yet).
    fn settle(_groups: &[Group<Self>], _states: &mut [Vec<f64>], _sums: [f64; 2]) -> bool
    where
        Self: Sized,
    {
        true
    }

    /// Updates a group's scalars at the end of a step.
    fn end_group(&self, _group: &mut [f64]) {}

    /// A state buffer of one element that counts events a user should see
    /// (SOAP's and Shampoo's failed decompositions), by name; the driver
    /// sums it over the tensors for [`Optimizer::counters`].
    const COUNTER: Option<&'static str> = None;

    /// Where the model is evaluated when that is not at the parameters
    /// (schedule-free's `x`, ASGD's average): writes it into `out` from the
    /// parameter, its buffers (in [`Rule::buffers`] order) and its group's
    /// scalars, and returns `true`; `false` (the default) means at θ.
    fn eval_point<T: Real>(
        &self,
        _group: &[f64],
        _p: &[T],
        _bufs: &[&[T]],
        _out: &mut [T],
    ) -> bool {
        false
    }

    /// The constants of step number `step` (1 on the first step); may advance
    /// the tensor's scalar state. `fresh` says the state buffers were created
    /// for this step (always on step 1; later when a hyper-parameter change
    /// needed a new buffer, e.g. momentum turned on mid-run, where torch
    /// starts the buffer from the gradient). `group` holds the group's
    /// scalars after [`Rule::begin_group`] (and [`Rule::settle`]).
    fn prepare<T: Real>(
        &self,
        step: u64,
        fresh: bool,
        scalars: &mut [f64],
        group: &[f64],
    ) -> Self::Consts<T>;

    /// Updates one tensor in place.
    fn step_tensor<T: Real>(c: &Self::Consts<T>, t: TensorStep<'_, T>);

    /// The paper, as "Authors year" (several joined by `;`).
    const PAPER: &'static str;

    /// The implementation downhill is verified against (its fixtures').
    const REFERENCE: &'static str;

    /// One line for `downhill optimizers`: when to reach for this rule.
    const USE_WHEN: &'static str;

    /// Specs that exercise the rule's state; the property battery and the
    /// step benchmark run each.
    const EXAMPLES: &'static [&'static str];

    /// Element-wise rules (set by [`pointwise_rule!`](crate::pointwise_rule))
    /// run as one fused pass and allow lazy row-sparse steps.
    const ELEMENTWISE: bool = false;

    /// A lazy row-sparse update of the listed rows only (see
    /// [`Optimizer::step_sparse`]); called only for [`Rule::ELEMENTWISE`] rules.
    fn apply_rows<T: Real>(
        _c: &Self::Consts<T>,
        _p: &mut [T],
        _rows: &[u32],
        _row_len: usize,
        _values: &[T],
        _bufs: [&mut [T]; MAX_BUFFERS],
        _n: usize,
    ) {
    }

    /// Validates ranges and cross-checks.
    fn validated(self) -> Result<Self> {
        self.validate()?;
        self.check()?;
        Ok(self)
    }

    /// An optimiser with this rule for the given parameters: sizes
    /// (`&[6, 3]`), shapes (`&[vec![3, 2], vec![3]]`) or [`Param`]s.
    fn build<T: Real>(self, params: &[impl Clone + Into<Param>]) -> Result<Driver<Self, T>>
    where
        Self: Sized,
    {
        Driver::new(self, to_params(params))
    }
}

/// The element-wise half of an element-wise rule, written once over a
/// [`lane::Lane`]: one element inside the fused CPU loop (called on disjoint
/// chunks in parallel and on single rows for sparse steps), or whole tensors
/// recorded as a program for a device.
pub trait Pointwise: Rule {
    /// Updates one lane of the parameter, given the gradient and the state
    /// buffers (as many as [`Rule::buffers`] names).
    fn update<T: Real, V: lane::Lane<T>>(c: &Self::Consts<T>, p: &mut V, g: V, buffers: &mut [V]);
}

/// The [`Rule`] methods of an element-wise rule, written once: `step_tensor` is
/// the fused pass of [`Pointwise::update`], and lazy row-sparse steps work.
#[macro_export]
#[doc(hidden)]
macro_rules! pointwise_rule {
    () => {
        fn step_tensor<T: $crate::Real>(c: &Self::Consts<T>, t: $crate::optim::TensorStep<'_, T>) {
            $crate::optim::passes::pointwise::<Self, T>(c, t)
        }

        const ELEMENTWISE: bool = true;

        fn program<T: $crate::Real>(
            c: &Self::Consts<T>,
            n_buffers: usize,
        ) -> Option<$crate::optim::program::Program> {
            Some($crate::optim::program::record::<Self, T>(c, n_buffers))
        }

        fn apply_rows<T: $crate::Real>(
            c: &Self::Consts<T>,
            p: &mut [T],
            rows: &[u32],
            row_len: usize,
            values: &[T],
            bufs: [&mut [T]; $crate::optim::MAX_BUFFERS],
            n: usize,
        ) {
            $crate::optim::passes::pointwise_rows::<Self, T>(c, p, rows, row_len, values, bufs, n)
        }
    };
}

/// What a step does when a gradient holds a NaN or an infinity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinite {
    /// Check every gradient first; return [`crate::Error::NonFiniteGradient`]
    /// and change nothing (the default).
    #[default]
    Error,
    /// Check every gradient first; skip the whole step, change nothing, and
    /// report [`StepOutcome::Skipped`].
    Skip,
    /// Do not check (saves one read of the gradients per step). For callers
    /// that already check, e.g. by computing the gradient norm for clipping,
    /// as `downhill train` does.
    Unchecked,
}

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepOutcome {
    /// Parameters were updated.
    Stepped,
    /// Nothing changed because of a non-finite gradient ([`NonFinite::Skip`]).
    Skipped {
        /// Parameter tensor holding the first non-finite element.
        param: usize,
        /// Its index.
        index: usize,
    },
}

/// Random access to the tensors of one step: parameter `i` (mutable) and its
/// gradient, one at a time. How a step reaches tensors that may lie in
/// separate slices, in one flat buffer, or (inside a [`Partition`]) at other
/// indices of an outer step.
pub trait Tensors<T> {
    /// Parameter `i` and its gradient.
    fn get(&mut self, i: usize) -> (&mut [T], &[T]);
}

/// Tensors as separate slices.
pub struct Slices<'a, 'p, 'g, T> {
    /// Parameters.
    pub params: &'a mut [&'p mut [T]],
    /// Gradients.
    pub grads: &'a [&'g [T]],
}

impl<T> Tensors<T> for Slices<'_, '_, '_, T> {
    fn get(&mut self, i: usize) -> (&mut [T], &[T]) {
        (&mut *self.params[i], self.grads[i])
    }
}

/// Tensors lying one after another in one buffer.
pub struct Flat<'a, T> {
    /// All parameters.
    pub params: &'a mut [T],
    /// All gradients.
    pub grads: &'a [T],
    /// Where each tensor starts, and (last) the total: `starts[i]..starts[i + 1]`.
    pub starts: &'a [usize],
}

impl<T> Tensors<T> for Flat<'_, T> {
    fn get(&mut self, i: usize) -> (&mut [T], &[T]) {
        let range = self.starts[i]..self.starts[i + 1];
        (&mut self.params[range.clone()], &self.grads[range])
    }
}

/// `starts` for [`Flat`]: the running sums of `sizes`, with the total last.
pub fn starts(sizes: &[usize]) -> Vec<usize> {
    std::iter::once(0)
        .chain(sizes.iter().scan(0usize, |s, &n| {
            *s = s.saturating_add(n);
            Some(*s)
        }))
        .collect()
}

/// One line per parameter tensor saying which rule and learning rate update
/// it: `"{name} {shape:?} {role}: {rule} (lr {lr})"`, or `"…: not trained"`.
/// `params` gives the shapes and roles to print (a report may describe full
/// tensors while `opt` was built on stand-ins of the same layout).
pub fn assignment_report<T: Real>(
    opt: &dyn Optimizer<T>,
    params: &[Param],
    names: &[String],
) -> Vec<String> {
    params
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (p, name))| match opt.assignment(i) {
            Some((rule, group)) => {
                format!(
                    "{name} {:?} {}: {rule} (lr {})",
                    p.shape,
                    p.role,
                    opt.lr(group)
                )
            }
            None => format!("{name} {:?} {}: not trained", p.shape, p.role),
        })
        .collect()
}

/// A first-order optimiser over a fixed list of parameter tensors, usable
/// through a trait object (see [`build`]).
///
/// Parameter tensor `i` has the shape and role given at construction; each
/// belongs to at most one parameter group, and each group has its own
/// hyper-parameters.
///
/// Indices are checked as slices check them: a group index `>= num_groups()`
/// or a tensor index `>= sizes().len()` given to an accessor or setter
/// (`lr`, `set_lr`, `hyper`, `set_hyper`, `group_params`, `steps`) is a bug
/// in the caller and panics with a message naming the optimiser. Values are
/// input: an invalid hyper-parameter, tensor or state is an `Err`, and leaves
/// the optimiser as it was.
pub trait Optimizer<T: Real>: Send + std::fmt::Debug {
    /// The optimiser's name (`"adam"`, `"muon"`, `"partition"`, ...).
    fn name(&self) -> &'static str;
    /// Shapes and roles of the parameter tensors.
    fn params(&self) -> &[Param];
    /// Elements per parameter tensor.
    fn sizes(&self) -> &[usize];
    /// Whether a step may change tensor `param` (it is in some group).
    fn trains(&self, param: usize) -> bool;
    /// The rule and the group that update tensor `param`, for reports ("which
    /// parameters got which rule"); `None` when no group holds it.
    fn assignment(&self, param: usize) -> Option<(&'static str, usize)>;
    /// What happens on a non-finite gradient.
    fn non_finite(&self) -> NonFinite;
    /// Chooses what happens on a non-finite gradient.
    fn set_non_finite(&mut self, policy: NonFinite);

    /// Checks everything that could make the next step fail (hyper-parameters
    /// changed since the last one, step counters at their limit), changing
    /// nothing. [`Optimizer::step`] calls it before it changes anything.
    fn ready(&mut self) -> Result<()>;
    /// The update itself, after the gradients were screened and
    /// [`Optimizer::ready`] passed: infallible, so a step is whole or nothing.
    fn apply_step(&mut self, tensors: &mut dyn Tensors<T>);
    /// [`Optimizer::apply_step`] over one flat buffer (the optimiser knows
    /// where its tensors start, see [`Flat`]).
    fn apply_flat(&mut self, params: &mut [T], grads: &[T]);

    /// One step over all parameter tensors.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<StepOutcome> {
        let sizes = self.sizes();
        let n = sizes.len();
        if params.len() != n || grads.len() != n {
            return Err(Error::Shape(format!(
                "{}: got {} parameter and {} gradient tensors, expected {n}",
                self.name(),
                params.len(),
                grads.len()
            )));
        }
        for (i, &size) in sizes.iter().enumerate() {
            for (what, len) in [("parameter", params[i].len()), ("gradient", grads[i].len())] {
                if len != size {
                    return Err(Error::Shape(format!(
                        "{}: {what} {i} has {len} elements, expected {size}",
                        self.name()
                    )));
                }
            }
        }
        if let Some(outcome) = screen(self, |i| grads[i])? {
            return Ok(outcome);
        }
        self.ready()?;
        self.apply_step(&mut Slices { params, grads });
        Ok(StepOutcome::Stepped)
    }

    /// One step where the tensors lie one after another in a single buffer
    /// (tensor `i` is the `i`-th consecutive range of `sizes()`): no slices to
    /// gather, so a training loop allocates nothing.
    fn step_flat(&mut self, params: &mut [T], grads: &[T]) -> Result<StepOutcome> {
        let total: usize = self.sizes().iter().sum();
        for (what, len) in [("parameter", params.len()), ("gradient", grads.len())] {
            if len != total {
                return Err(Error::Shape(format!(
                    "{}: the flat {what} buffer has {len} elements, expected {total}",
                    self.name()
                )));
            }
        }
        if let Some(outcome) = screen_flat(self, grads)? {
            return Ok(outcome);
        }
        self.ready()?;
        self.apply_flat(params, grads);
        Ok(StepOutcome::Stepped)
    }

    /// A lazy row-sparse step of tensor `param`, viewed as rows of `row_len`
    /// elements: only the listed rows (and their state) change, as in torch's
    /// `SparseAdam`. `p` is that tensor, `rows` strictly increasing, and
    /// `values` holds the gradient rows in the order of `rows`.
    /// The tensor's step count advances by one. Element-wise rules only.
    fn step_sparse(
        &mut self,
        param: usize,
        p: &mut [T],
        rows: &[u32],
        row_len: usize,
        values: &[T],
    ) -> Result<StepOutcome>;
    /// Number of parameter groups.
    fn num_groups(&self) -> usize;
    /// Parameter tensors of a group.
    fn group_params(&self, group: usize) -> &[usize];
    /// A group's learning rate.
    fn lr(&self, group: usize) -> f64;
    /// Sets a group's learning rate (validated; unchanged on error).
    fn set_lr(&mut self, group: usize, lr: f64) -> Result<()> {
        self.set_hyper(group, "lr", &HyperValue::Number(lr))
    }
    /// A group's hyper-parameters by name.
    fn hyper(&self, group: usize) -> HyperMap;
    /// Sets one hyper-parameter of a group (validated; unchanged on error).
    fn set_hyper(&mut self, group: usize, name: &str, value: &HyperValue) -> Result<()>;
    /// Steps taken by parameter tensor `param`.
    fn steps(&self, param: usize) -> u64;
    /// A group's scalar state by name, for rules that keep one (Prodigy's
    /// estimate `d`, schedule-free's step and weight sum); empty otherwise.
    fn group_state(&self, group: usize) -> Vec<(&'static str, f64)> {
        let _ = group;
        Vec::new()
    }
    /// Events a user should see, counted since the optimiser was built (or
    /// restored from a saved state, which keeps them): by name, summed over
    /// the tensors and the parts. SOAP and Shampoo count their failed
    /// decompositions here (`decomposition_failures`); most rules count
    /// nothing.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// The point to evaluate the model at, for optimisers whose evaluation
    /// point differs from the training point (schedule-free's `x`, ASGD's
    /// average): writes it into `out` and returns `true`, leaving the
    /// parameters and the state untouched. The others return `false` and
    /// leave `out` alone: evaluate at the parameters themselves.
    fn eval_params(&self, params: &[&[T]], out: &mut [&mut [T]]) -> Result<bool> {
        let _ = (params, out);
        Ok(false)
    }
    /// The whole state (hyper-parameters, counters and buffers); see [`crate::state`].
    fn save_state(&self) -> Result<SavedState>;
    /// Restores a state saved by the same kind of optimiser over the same shapes.
    /// After a load the next steps are bit-identical to never having saved.
    fn load_state(&mut self, saved: &SavedState) -> Result<()>;
    /// Whether every step has a device form ([`Optimizer::device_step`]):
    /// element-wise rules, alone or in a partition.
    fn device_form(&self) -> bool {
        false
    }
    /// The device form of the next step ([`device`]): advances the counters
    /// and scalars of every tensor the step trains, as a step does, and
    /// returns each one's [`program::Program`]; the caller runs them on its
    /// tensors and keeps their buffers. `None` (and nothing changed) where
    /// [`Optimizer::device_form`] is false. Call [`Optimizer::ready`] first.
    fn device_step(&mut self) -> Option<Vec<device::DeviceTensor>> {
        None
    }
    /// Moves tensor `param`'s state buffers out (after a
    /// [`Optimizer::load_state`], to put them on a device); the optimiser
    /// then keeps only their names and shapes.
    fn take_buffers(&mut self, param: usize) -> Vec<device::HostBuffer<T>> {
        let _ = param;
        Vec::new()
    }
    /// Puts tensor `param`'s buffers back from a device (before a
    /// [`Optimizer::save_state`]).
    fn put_buffers(&mut self, param: usize, buffers: Vec<device::HostBuffer<T>>) {
        let _ = (param, buffers);
    }
    /// Tensor `param`'s counters on the device form: its step count, its
    /// per-tensor scalars and then its group's scalars (schedule-free's
    /// weight sum), for an adapter that keeps a lone tensor's state beside
    /// its device buffers (burn's per-tensor optimiser trait, where each
    /// tensor is its own group). `None` where [`Optimizer::device_form`] is
    /// false.
    fn tensor_counters(&self, param: usize) -> Option<(u64, Vec<f64>)> {
        let _ = param;
        None
    }
    /// Restores what [`Optimizer::tensor_counters`] gave, on a freshly built
    /// optimiser whose buffers for `param` live on a device: the next
    /// [`Optimizer::device_step`] continues from them.
    fn set_tensor_counters(&mut self, param: usize, step: u64, scalars: &[f64]) -> Result<()> {
        let _ = (param, step, scalars);
        Err(crate::Error::Unsupported(format!(
            "{} has no device form",
            self.name()
        )))
    }
}

/// The non-finite check of a step, per the optimiser's policy, over the
/// tensors it trains: `Some(Skipped)` to skip, an error, or `None` to go on.
fn screen<'g, T: Real, O: Optimizer<T> + ?Sized>(
    opt: &O,
    grad: impl Fn(usize) -> &'g [T],
) -> Result<Option<StepOutcome>> {
    screen_gradients(opt, |i| first_non_finite_value(grad(i)))
}

/// The non-finite check of a step over one flat gradient buffer (tensor
/// `i` is the `i`-th consecutive range of `opt.sizes()`), per the
/// optimiser's policy: `Some(Skipped)` to skip, an error, or `None` to go
/// on. One pass, whatever the number of tensors.
pub fn screen_flat<T: Real, O: Optimizer<T> + ?Sized>(
    opt: &O,
    grads: &[T],
) -> Result<Option<StepOutcome>> {
    let sizes = opt.sizes();
    // The tensors are asked for in increasing order: walk a running offset.
    let (mut next, mut start) = (0usize, 0usize);
    screen_gradients(opt, |i| {
        while next < i {
            start += sizes[next];
            next += 1;
        }
        first_non_finite_value(&grads[start..start + sizes[i]])
    })
}

/// The counters of several optimisers (a partition's parts), summed by
/// name, in the order the names first appear.
pub(crate) fn merge_counters(
    all: impl Iterator<Item = Vec<(&'static str, u64)>>,
) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for (name, n) in all.flatten() {
        match out.iter_mut().find(|(k, _)| *k == name) {
            Some((_, total)) => *total += n,
            None => out.push((name, n)),
        }
    }
    out
}

/// Sets every group's learning rate, all or nothing: `rates[g]` for group
/// `g`. Each rate is validated as [`Optimizer::set_lr`] validates it; if one
/// is refused, the groups already set get their old rates back (they were
/// valid a moment ago) and the error is returned, so the optimiser is as it
/// was.
pub fn set_lrs<T: Real>(opt: &mut dyn Optimizer<T>, rates: &[f64]) -> Result<()> {
    if rates.len() != opt.num_groups() {
        return Err(Error::Shape(format!(
            "{}: {} learning rates for {} parameter groups",
            opt.name(),
            rates.len(),
            opt.num_groups()
        )));
    }
    let old: Vec<f64> = (0..rates.len()).map(|g| opt.lr(g)).collect();
    for (g, &lr) in rates.iter().enumerate() {
        if let Err(e) = opt.set_lr(g, lr) {
            for (h, &back) in old[..g].iter().enumerate() {
                // The rate this group had before: valid then, valid now.
                let _ = opt.set_lr(h, back);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The first NaN or infinity of `g`: its index and value.
pub fn first_non_finite_value<T: Real>(g: &[T]) -> Option<(usize, f64)> {
    passes::first_non_finite(g).map(|index| (index, g[index].to_f64()))
}

/// The non-finite check of a step, for callers that reach the gradients one
/// at a time (an adapter that holds each tensor's lock only while it reads
/// it): `first_bad(i)` gives the first non-finite element of gradient `i`
/// (see [`first_non_finite_value`]) and is asked only for the tensors the
/// optimiser trains, in order, and not at all under
/// [`NonFinite::Unchecked`]. Returns what [`Optimizer::step`] would do per
/// the optimiser's policy: `Some(Skipped)` to skip, an error, or `None` to
/// go on.
pub fn screen_gradients<T: Real, O: Optimizer<T> + ?Sized>(
    opt: &O,
    mut first_bad: impl FnMut(usize) -> Option<(usize, f64)>,
) -> Result<Option<StepOutcome>> {
    let policy = opt.non_finite();
    if policy == NonFinite::Unchecked {
        return Ok(None);
    }
    for param in 0..opt.sizes().len() {
        if !opt.trains(param) {
            continue;
        }
        if let Some((index, value)) = first_bad(param) {
            return non_finite_outcome(policy, param, index, value).map(Some);
        }
    }
    Ok(None)
}

/// The error for a non-finite value found in a sparse gradient, per policy.
pub(crate) fn non_finite_outcome(
    policy: NonFinite,
    param: usize,
    index: usize,
    value: f64,
) -> Result<StepOutcome> {
    match policy {
        NonFinite::Skip => Ok(StepOutcome::Skipped { param, index }),
        _ => Err(Error::NonFiniteGradient {
            param,
            index,
            value,
        }),
    }
}
