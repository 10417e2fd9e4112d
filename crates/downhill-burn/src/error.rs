//! [`Error`]: what a step, a save or a load can refuse.

use std::fmt;

/// Everything [`crate::BurnOptimizer`] can refuse, in one line that names
/// the parameter or the file.
#[derive(Debug)]
pub enum Error {
    /// downhill refused: a spec, a hyper-parameter, a schedule, a state.
    Downhill(downhill::Error),
    /// A gradient held a NaN or an infinity under `NonFinite::Error`; the
    /// step was not taken.
    NonFinite {
        /// The parameter's path in the module (`fc1.weight`).
        param: String,
        /// The first bad element's index, in row-major order.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// The module or its gradients are not what the optimiser expects (a
    /// parameter without a gradient, a changed shape, an unsupported
    /// dtype), or a backend refused an operation.
    Module(String),
    /// Reading or writing a state folder.
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Downhill(e) => write!(f, "downhill: {e}"),
            Error::NonFinite {
                param,
                index,
                value,
            } => write!(
                f,
                "downhill: non-finite gradient in {param} at element {index} (value {value}); the step was not taken"
            ),
            Error::Module(m) => write!(f, "downhill: {m}"),
            Error::Io { path, message } => write!(f, "downhill: {}: {message}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

impl From<downhill::Error> for Error {
    fn from(e: downhill::Error) -> Self {
        Error::Downhill(e)
    }
}

/// A downhill error with the parameter it concerns named by its path.
pub(crate) fn named(e: downhill::Error, names: &[String]) -> Error {
    match e {
        downhill::Error::NonFiniteGradient {
            param,
            index,
            value,
        } => Error::NonFinite {
            param: names.get(param).cloned().unwrap_or_else(|| "?".into()),
            index,
            value,
        },
        e => Error::Downhill(e),
    }
}
