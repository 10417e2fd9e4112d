//! # downhill-lab
//!
//! Experiments with downhill's optimisers, behind `downhill compare` and
//! `downhill advise`:
//!
//! * [`mod@compare`]: several optimisers on the same model, data, seed and
//!   initial weights, with curves (PNG and SVG), `summary.json`,
//!   `summary.md` and a self-contained `report.html`;
//! * [`tune`]: a learning-rate grid on a short budget, scored on held-out
//!   training data;
//! * [`presets`]: the experiments of section 6 of the Adam paper (Kingma &
//!   Ba, 2015) on whatever data the user points at;
//! * [`suite`]: workloads with step budgets and validation targets, scored
//!   by AlgoPerf's performance profiles under two tuning rulesets;
//! * [`advise`]: which optimiser family fits a data set and why, from numbers
//!   computed on it, and a race (successive halving) to settle it.

#![warn(missing_docs)]

pub mod advise;
pub mod compare;
mod error;
pub mod figures;
pub mod presets;
mod saved;
pub mod stats;
pub mod suite;
pub mod tune;

pub use compare::{compare, resume, CompareResult, CompareSettings, RunResult};
pub use error::LabError;
pub use tune::{TuneResult, TuneSettings};
