//! # downhill
//!
//! Optimisers for training neural networks, verified against `torch.optim`.
//! (The library is being assembled; see the workspace README.)

#![warn(missing_docs)]

pub mod real;
pub mod rng;

pub use real::Real;
pub use rng::Rng;
