//! What can stop a run.

use crate::checkpoint::CheckpointError;
use crate::metrics::Divergence;
use std::path::{Path, PathBuf};

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A bad setting.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] downhill_data::DataError),
    /// The model could not be built or run.
    #[error(transparent)]
    Model(#[from] downhill_nn::NnError),
    /// The optimiser or schedule refused.
    #[error(transparent)]
    Optim(#[from] downhill::Error),
    /// A checkpoint problem.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing outputs failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The loss or gradient became non-finite.
    #[error("{0}; the last good checkpoint is kept")]
    Diverged(Divergence),
    /// Something about the request that cannot work (one line: what it
    /// quotes has its control characters escaped).
    #[error("{}", downhill::error::printable(.0))]
    Invalid(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
