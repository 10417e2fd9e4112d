//! Errors returned by the engine: bad specs, mismatched shapes, bad batches.

use thiserror::Error;

/// Everything that can go wrong when building or running a network on bad input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum NnError {
    /// A model spec string could not be parsed; `token` is the offending piece.
    #[error("model spec: bad token `{}`: expected {expected}", downhill::error::printable(.token))]
    Spec {
        /// The token that was not understood.
        token: String,
        /// What would have been accepted there.
        expected: String,
    },
    /// The model cannot be built for this input shape or class count.
    #[error("model `{model}` does not fit the data: {reason}")]
    Shape {
        /// The model spec, in canonical form.
        model: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A batch does not match the network or is internally inconsistent.
    #[error("bad batch: {0}")]
    Batch(String),
}
