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
//! * [`lbfgs`], [`newton`] and [`line_search`]: quasi-Newton and Newton methods;
//! * [`problems`]: test functions with gradients, Hessians and known minima.
//!
//! Everything is generic over `f32` and `f64` ([`Real`]) and works on plain
//! slices: no tensor library is needed.

#![warn(missing_docs)]

pub mod clip;
pub mod error;
pub mod hyper;
pub mod lbfgs;
pub mod line_search;
pub mod newton;
pub mod optim;
pub mod problems;
pub mod real;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod state;

pub use error::{Error, Result};
pub use real::Real;
pub use report::{Report, Termination};
pub use rng::Rng;
