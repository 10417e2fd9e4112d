//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong. Each message names the setting, file or
/// optimiser at fault and what was expected, so it can be shown as is.
#[derive(Debug, thiserror::Error)]
pub enum LandscapeError {
    /// A setting with a bad value. `name` is the setting as the command line
    /// spells it (`--steps`), which is also the settings field's name.
    #[error("{name}: {message}")]
    Setting {
        /// The setting, e.g. `--optimizers`.
        name: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An optimiser refused a step (e.g. a non-finite gradient it cannot take).
    #[error("{label}: {source}")]
    Optimizer {
        /// The optimiser spec, as given.
        label: String,
        /// The library's error.
        source: downhill::Error,
    },
    /// A training run folder that cannot be used.
    #[error("{path}: {message}")]
    Run {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model could not be rebuilt or evaluated.
    #[error("model: {0}")]
    Model(String),
    /// Writing an output file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Drawing or writing a picture failed.
    #[error(transparent)]
    Plot(#[from] downhill_plot::PlotError),
}

impl LandscapeError {
    /// A [`LandscapeError::Setting`].
    pub(crate) fn setting(name: &'static str, message: impl Into<String>) -> Self {
        LandscapeError::Setting {
            name,
            message: message.into(),
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = LandscapeError> = std::result::Result<T, E>;
