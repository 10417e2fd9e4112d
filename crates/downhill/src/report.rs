//! How a closure-based minimisation ([`crate::lbfgs`], [`crate::newton`]) ended.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a minimisation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Termination {
    /// The largest gradient component fell to `tolerance_grad`.
    GradientTolerance,
    /// The loss changed by less than `tolerance_change` in an iteration.
    ChangeTolerance,
    /// The step moved no coordinate by more than `tolerance_change`.
    StepTolerance,
    /// The slope along the search direction is within `tolerance_change` of
    /// zero (`|∇f·d| ≤ tolerance_change`): no further progress is measurable.
    SlopeTolerance,
    /// The search direction points uphill (`∇f·d > tolerance_change`).
    NotDescent,
    /// `max_iter` iterations were made.
    MaxIterations,
    /// `max_eval` evaluations were made.
    MaxEvaluations,
    /// The objective returned NaN or infinity at the accepted point.
    NonFinite,
}

impl Termination {
    /// Whether this counts as having converged (as opposed to running out of
    /// budget or failing).
    pub fn converged(self) -> bool {
        matches!(
            self,
            Termination::GradientTolerance
                | Termination::ChangeTolerance
                | Termination::StepTolerance
                | Termination::SlopeTolerance
        )
    }
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Termination::GradientTolerance => "gradient below tolerance",
            Termination::ChangeTolerance => "loss change below tolerance",
            Termination::StepTolerance => "step below tolerance",
            Termination::SlopeTolerance => "slope below tolerance",
            Termination::NotDescent => "no descent direction",
            Termination::MaxIterations => "iteration limit",
            Termination::MaxEvaluations => "evaluation limit",
            Termination::NonFinite => "non-finite objective",
        })
    }
}

/// The outcome of a minimisation call.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Loss at the final point.
    pub loss: f64,
    /// Iterations made in this call.
    pub iterations: usize,
    /// Objective evaluations made in this call.
    pub evaluations: usize,
    /// Why it stopped.
    pub reason: Termination,
}
