//! # downhill-candle
//!
//! Every downhill optimiser, schedule and clip in a candle training loop:
//!
//! ```
//! # use candle_core::{DType, Device};
//! # use candle_nn::{VarBuilder, VarMap};
//! use candle_nn::Optimizer as _;
//! # let varmap = VarMap::new();
//! # let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! # let model = candle_nn::linear(4, 2, vb.pp("fc"))?;
//! # let loss = candle_nn::Module::forward(&model, &candle_core::Tensor::ones((3, 4), DType::F32, &Device::Cpu)?)?.sqr()?.sum_all()?;
//! let cfg: downhill_candle::Config = "adamw(lr=1e-3,weight_decay=0.01)".parse()?; // any spec `downhill optimizers` lists
//! let mut opt = downhill_candle::CandleOptimizer::new(varmap.all_vars(), cfg)?;     // impl candle_nn::Optimizer
//! opt.backward_step(&loss)?;                                                        // or opt.step(&grads)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`Config`] parses every spec `downhill train --optimizer` takes
//!   (partitions by role, `muon`, `lookahead(...)`), and adds a schedule,
//!   clipping by global norm and by value, and the non-finite policy.
//! * [`CandleOptimizer`] implements [`candle_nn::Optimizer`];
//!   [`CandleOptimizer::from_varmap`] takes each var's role from its name,
//!   so Muon gets the hidden matrices and AdamW the rest.
//! * [`CandleOptimizer::save`] and [`CandleOptimizer::load`] write and read
//!   downhill's optimiser-state format; a resumed run is bit-identical to
//!   one that never stopped (`tests/checkpoint.rs`).
//! * [`load_downhill_model`] reads a model `downhill train` wrote (MLP or
//!   CNN) into candle's layout, for candle-nn layers of the same names; they
//!   give downhill's test accuracy image for image (`tests/import.rs`).
//!
//! ## Where the update runs
//!
//! * f32 and f64 vars on the CPU: in place, on the var's own storage, inside
//!   candle's in-place custom ops ([`candle_core::InplaceOp2`]), with
//!   downhill's fused kernels: no copy, and after the first step no
//!   allocation but one that candle makes itself: candle-core 0.11's
//!   in-place op entry collects the var's dimensions into a small `Vec`
//!   (its overlap check), once per var per step (`tests/alloc.rs` counts
//!   exactly that many; see [`candle_inplace_calls`]).
//! * bf16 and f16 vars on the CPU: the state is f32; each step widens the
//!   vars and gradients into f32 buffers (allocated once), updates them, and
//!   writes the vars back in place, rounded to nearest (`tests/dtypes.rs`).
//! * Any other device (CUDA, Metal): each step copies the vars and gradients
//!   to the host through candle tensor ops (`to_dtype`, `to_device`,
//!   `to_vec1`), runs the same update there (the state lives on the host),
//!   and writes the vars back with `Var::set`. It is correct for every spec
//!   and costs two transfers of the parameters per step. **No GPU was
//!   available where this crate was written: this path has been run only
//!   on the CPU, forced with [`CandleOptimizer::force_tensor_path`], where
//!   it gives the same bits as the in-place path (`tests/dtypes.rs`). The
//!   crate's `cuda` and `metal` features turn on candle's backends; neither
//!   has been compiled here (no CUDA toolkit, no macOS).** The code that
//!   touches storage directly matches only CPU storage and sends anything
//!   else to this path.

#![warn(missing_docs)]

mod checkpoint;
mod cpu;
pub mod device;
mod engine;
mod import;
mod optimizer;

pub use cpu::candle_inplace_calls;
pub use downhill::adapter::{natural_cmp, params_from_names};
pub use downhill::adapter::{Config, ScheduleUnit};
pub use engine::Path;
pub use import::{load_downhill_model, DOWNHILL_LAYOUT};
pub use optimizer::CandleOptimizer;

/// Re-exported: what a step did, and the non-finite policies.
pub use downhill::optim::{NonFinite, StepOutcome};
