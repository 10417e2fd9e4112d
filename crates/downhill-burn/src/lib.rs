//! # downhill-burn
//!
//! Every downhill optimiser, schedule and clip for a [burn](https://burn.dev)
//! module, on every burn backend:
//!
//! ```
//! use burn::module::Module;
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::GradientsParams;
//! use burn::tensor::{Device, Tensor};
//!
//! let device = Device::flex().autodiff();
//! let mut model: Linear = LinearConfig::new(3, 1).init(&device);
//! let cfg: downhill_burn::Config = "adamw(lr=0.1,weight_decay=0.01)".parse()?; // any spec `downhill optimizers` lists
//! let mut optim = downhill_burn::BurnOptimizer::new(cfg)?;
//! let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], &device);
//! let y = Tensor::<2>::from_floats([[1.0], [0.0]], &device);
//! for _ in 0..100 {
//!     let loss = (model.forward(x.clone()) - y.clone()).square().mean();
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     model = optim.step(model, grads)?;
//! }
//! let loss: f32 = (model.forward(x) - y).square().mean().into_scalar::<f32>();
//! assert!(loss < 1e-2, "{loss}");
//! # Ok::<(), downhill_burn::Error>(())
//! ```
//!
//! * [`Config`] parses every spec `downhill train --optimizer` takes
//!   (partitions by role, `muon`, `lookahead(...)`) and adds a schedule (per
//!   step or per epoch), clipping by global norm and by value, and the
//!   non-finite policy. It is the candle adapter's `Config`, shared.
//! * [`BurnOptimizer::step`] updates a whole module: rules that sum over
//!   every tensor (Prodigy's `d`, clipping by global norm) see them all.
//!   Each parameter's role comes from its path and shape, as in
//!   `downhill_candle::CandleOptimizer::from_varmap`: Muon gets the hidden
//!   matrices, AdamW the rest.
//! * [`BurnOptimizer::save`] and [`BurnOptimizer::load`] use downhill's
//!   optimiser-state format; a resumed run is bit-identical on the CPU
//!   backends (`tests/adapter.rs`).
//! * [`Rule`] offers each element-wise rule as a [`burn::optim::Optimizer`],
//!   for a `ModuleOptimizer` group.
//!
//! ## Where the update runs
//!
//! * **flex and ndarray** (burn's CPU backends), f32 and f64: in place, on
//!   the parameters' own storage, with downhill's fused kernels
//!   ([`Path::InPlace`]). A parameter whose storage is shared (a clone of
//!   the module is alive) is copied once first, as burn's copy-on-write
//!   does.
//! * **Any other backend** (wgpu, CUDA, ROCm), with a rule that has a
//!   device form (every element-wise rule, alone or in a partition): the
//!   step runs as burn tensor ops on the tensors' device and the state stays
//!   there ([`Path::Device`]). With the non-finite check on (the default)
//!   or clipping by norm, one small vector comes back per step (a flag and
//!   a sum of squares per tensor); with `NonFinite::Unchecked` and no norm
//!   clipping, nothing does (`tests/wgpu.rs`).
//! * A rule without a device form there (Muon, LAMB, SOAP, Shampoo,
//!   Prodigy, lookahead): the parameters and gradients are copied to the
//!   host, stepped with the fused kernels, and copied back
//!   ([`Path::Host`]); the documentation of [`Path`] says so, and
//!   [`BurnOptimizer::path`] tells which path a module took.
//! * burn's `cpu` backend (cubecl-cpu) is left out: its build script
//!   downloads an LLVM bundle, which cannot build where this crate is built
//!   and tested.
//! * **No GPU was available where this crate was written**: the wgpu path
//!   has run on Mesa's software Vulkan driver (lavapipe). The `cuda` and
//!   `rocm` features have not been compiled: burn 0.22's CUDA and ROCm
//!   backends, like `cpu`, build `tracel-llvm-bundler`, which downloads an
//!   LLVM bundle at build time.

#![warn(missing_docs)]

mod checkpoint;
mod error;
mod host;
mod module;
mod ops;
mod optimizer;
mod rule;

pub use downhill::adapter::{Config, ScheduleUnit};
pub use error::Error;
pub use ops::BurnOps;
pub use optimizer::{host_reads, BurnOptimizer, Path};
pub use rule::{Rule, RuleState};

/// Re-exported: what a step did, and the non-finite policies.
pub use downhill::optim::{NonFinite, StepOutcome};
