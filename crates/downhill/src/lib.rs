//! # downhill
//!
//! Optimisers for training neural networks, verified against `torch.optim`:
//!
//! * [`optim`]: SGD (momentum, Nesterov), Adagrad, Adadelta, RMSprop, Adam
//!   (AMSGrad), AdamW, Adamax, NAdam, RAdam — parameter groups, hyper-parameters
//!   settable between steps, fused allocation-free steps, row-sparse lazy
//!   steps, non-finite gradient checks, bit-exact state save/restore;
//! * [`schedule`]: learning-rate schedules, torch's and more;
//! * [`clip`]: gradient clipping by global norm and by value;
//! * [`average`]: weight averaging (EMA and SWA, as torch's `swa_utils`);
//! * [`lbfgs`], [`newton`] and [`line_search`]: quasi-Newton and Newton methods;
//! * [`linalg`]: matrix products (the core's, for Muon, and the training engine's);
//! * [`simd`]: which vector instructions the loops use (the same bits at every level);
//! * [`problems`]: test functions with gradients, Hessians and known minima.
//!
//! Everything is generic over `f32` and `f64` ([`Real`]) and works on plain
//! slices: no tensor library is needed.
//!
//! ```
//! use downhill::optim::{Adam, Optimizer, Rule};
//! use downhill::schedule::{Schedule, Scheduler};
//!
//! let mut w = vec![1.0f32; 6];
//! let mut b = vec![0.5f32; 3];
//! let mut opt = Adam { lr: 0.1, ..Adam::default() }.build::<f32>(&[6, 3])?;
//! let mut sched = Scheduler::new("cosineannealinglr(T_max=100)".parse::<Schedule>()?, &mut opt)?;
//! for _ in 0..100 {
//!     let (gw, gb) = (w.clone(), b.clone()); // gradient of ½‖w‖² + ½‖b‖²
//!     opt.step(&mut [&mut w, &mut b], &[&gw, &gb])?;
//!     sched.step(&mut opt, None)?;
//! }
//! assert!(w.iter().chain(&b).all(|x| x.abs() < 0.1));
//! # Ok::<(), downhill::Error>(())
//! ```

#![warn(missing_docs)]

pub mod adapter;
pub mod average;
pub mod clip;
pub mod error;
pub mod hyper;
pub mod lbfgs;
pub mod linalg;
pub mod line_search;
pub mod newton;
pub mod optim;
pub mod problems;
pub mod real;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod simd;
pub mod state;

pub use error::{Error, Result};
pub use real::Real;
pub use report::{Report, Termination};
pub use rng::Rng;

/// Whether this process could allocate `bytes` now: reserves them and lets
/// them go (untouched pages cost nothing). For refusing, with a message, a
/// size that would otherwise abort the process when allocated later.
pub fn can_allocate(bytes: usize) -> bool {
    Vec::<u8>::new().try_reserve_exact(bytes).is_ok()
}
