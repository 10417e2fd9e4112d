//! Errors of the experiment runners.

/// Why an experiment could not run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A bad setting; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// Training failed for a reason other than divergence (which is a result).
    #[error(transparent)]
    Train(#[from] downhill_train::TrainError),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] downhill_data::DataError),
    /// A picture could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] downhill_plot::PlotError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Writes `value` as pretty JSON, atomically.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(
    path: &std::path::Path,
    value: &T,
) -> Result<(), LabError> {
    write_file(
        path,
        serde_json::to_string_pretty(value)
            .expect("serialises")
            .as_bytes(),
    )
}

pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), LabError> {
    downhill::state::write_atomic(path, bytes).map_err(|source| LabError::Io {
        path: path.to_path_buf(),
        source,
    })
}
