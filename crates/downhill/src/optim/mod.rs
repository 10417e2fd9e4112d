//! First-order optimisers with `torch.optim`'s names, hyper-parameters, defaults
//! and update rules.
//!
//! Each optimiser is one file holding its hyper-parameter struct (which is also
//! its update [`Rule`]); the shared machinery lives once:
//! [`mechanics`] (weight decay, moments, bias correction) and [`Elementwise`]
//! (parameter groups, state, a fused parallel pass over memory, non-finite
//! checks, sparse steps, save/restore).
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

pub mod mechanics;

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod adamw;
mod elementwise;
mod nadam;
mod radam;
mod rmsprop;
mod sgd;
mod spec;

pub use adadelta::Adadelta;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use adamw::AdamW;
pub use elementwise::{Elementwise, Group, MAX_STEP};
pub use nadam::NAdam;
pub use radam::RAdam;
pub use rmsprop::RMSprop;
pub use sgd::Sgd;
pub use spec::{build, describe, GroupSpec, OptimizerSpec, OPTIMIZERS};
pub(crate) use spec::{parse_call, split_top_level};

use crate::hyper::{Hyper, HyperMap, HyperValue};
use crate::state::SavedState;
use crate::{Real, Result};

/// The most element-wise state buffers any rule keeps per parameter
/// (e.g. RMSprop centered with momentum, or Adam with AMSGrad: 3).
pub const MAX_BUFFERS: usize = 3;

/// An element-wise update rule: the part that differs between SGD, Adam and
/// the rest. The rule's own struct holds its hyper-parameters.
///
/// A step of tensor `θ` with gradient `g` is computed by [`Rule::prepare`]
/// (once per tensor and step: the scalars, in `f64`) and [`Rule::update`]
/// (the fused loop over a chunk of elements; called on disjoint chunks in
/// parallel and on single rows for sparse steps).
pub trait Rule: Hyper {
    /// Per-step constants, converted to the element type.
    type Consts<T: Real>: Copy + Send + Sync;

    /// Names of the state buffers (one element per parameter element) the
    /// current hyper-parameters need, in the order `update` receives them.
    fn buffers(&self) -> &'static [&'static str];

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

    /// The constants of step number `step` (1 on the first step); may advance
    /// the tensor's scalar state. `fresh` says the state buffers were created
    /// for this step (always on step 1; later when a hyper-parameter change
    /// needed a new buffer, e.g. momentum turned on mid-run, where torch
    /// starts the buffer from the gradient).
    fn prepare<T: Real>(&self, step: u64, fresh: bool, scalars: &mut [f64]) -> Self::Consts<T>;

    /// Updates a chunk of the parameter in place, given the gradient and the
    /// state buffers (as many as [`Rule::buffers`] names, same length as `p`).
    fn update<T: Real>(c: &Self::Consts<T>, p: &mut [T], g: &[T], buffers: &mut [&mut [T]]);

    /// Validates ranges and cross-checks.
    fn validated(self) -> Result<Self> {
        self.validate()?;
        self.check()?;
        Ok(self)
    }

    /// An optimiser with this rule for parameter tensors of the given sizes.
    fn build<T: Real>(self, sizes: &[usize]) -> Result<Elementwise<Self, T>>
    where
        Self: Sized,
    {
        Elementwise::new(self, sizes)
    }
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
    /// that already check, e.g. by computing the gradient norm for clipping.
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

/// A first-order optimiser over a fixed list of parameter tensors, usable
/// through a trait object (see [`build`]).
///
/// Parameter tensor `i` has the size given at construction; each belongs to at
/// most one parameter group, and each group has its own hyper-parameters.
///
/// Indices are checked as slices check them: a group index `>= num_groups()`
/// or a tensor index `>= sizes().len()` given to an accessor or setter
/// (`lr`, `set_lr`, `hyper`, `set_hyper`, `group_params`, `steps`) is a bug
/// in the caller and panics with a message naming the optimiser. Values are
/// input: an invalid hyper-parameter, tensor or state is an `Err`, and leaves
/// the optimiser as it was.
pub trait Optimizer<T: Real>: Send + std::fmt::Debug {
    /// torch's name of the optimiser (`"adam"`, `"adamw"`, ...).
    fn name(&self) -> &'static str;
    /// Sizes of the parameter tensors.
    fn sizes(&self) -> &[usize];
    /// One step over all parameter tensors.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<StepOutcome>;
    /// One step where the tensors lie one after another in a single buffer
    /// (tensor `i` is the `i`-th consecutive range of `sizes()`): no slices to
    /// gather, so a training loop allocates nothing.
    fn step_flat(&mut self, params: &mut [T], grads: &[T]) -> Result<StepOutcome>;
    /// A lazy row-sparse step of tensor `param`, viewed as rows of `row_len`
    /// elements: only the listed rows (and their state) change, as in torch's
    /// `SparseAdam`. `p` is that tensor, `rows` strictly increasing, and
    /// `values` holds the gradient rows in the order of `rows`.
    /// The tensor's step count advances by one.
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
    /// Chooses what happens on a non-finite gradient.
    fn set_non_finite(&mut self, policy: NonFinite);
    /// Steps taken by parameter tensor `param`.
    fn steps(&self, param: usize) -> u64;
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
    /// Restores a state saved by the same kind of optimiser over the same sizes.
    /// After a load the next steps are bit-identical to never having saved.
    fn load_state(&mut self, saved: &SavedState) -> Result<()>;
}
