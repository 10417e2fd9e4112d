//! The folder of a comparison or a suite: claimed at the start with the
//! settings written first, reopened by `--resume` from those settings.

use crate::compare::Executor;
use crate::error::{write_json, LabError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// What a folder can hold, and the files that say so.
pub(crate) struct Kind {
    /// "comparison" or "suite", for messages.
    pub name: &'static str,
    /// Written first: the settings `--resume` reads back.
    pub settings: &'static str,
    /// Written last: the folder is complete.
    pub done: &'static str,
}

/// Refuses a folder that already holds one (started or complete), then
/// writes the settings into it. Every process looks before any writes, and
/// the writer has written before any goes on.
pub(crate) fn claim<T: Serialize>(
    out: &Path,
    kind: &Kind,
    settings: &T,
    exec: &dyn Executor,
) -> Result<(), LabError> {
    if out.join(kind.settings).exists() || out.join(kind.done).exists() {
        return Err(LabError::Invalid(format!(
            "{} already holds a {}; continue it with --resume {}, or choose another --out folder",
            out.display(),
            kind.name,
            out.display()
        )));
    }
    exec.barrier();
    if exec.writes() {
        std::fs::create_dir_all(out).map_err(|source| LabError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        write_json(&out.join(kind.settings), settings)?;
    }
    exec.barrier();
    Ok(())
}

/// The settings of the stopped comparison or suite in `out`; refuses a
/// folder that holds none, or one already complete.
pub(crate) fn reopen<T: DeserializeOwned>(out: &Path, kind: &Kind) -> Result<T, LabError> {
    let path = out.join(kind.settings);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        LabError::Invalid(format!(
            "{}: cannot read it ({e}); --resume takes the --out folder of a {}",
            path.display(),
            kind.name
        ))
    })?;
    let settings = serde_json::from_str(&text).map_err(|e| {
        LabError::Invalid(format!(
            "{}: not a {}'s settings ({e})",
            path.display(),
            kind.name
        ))
    })?;
    if out.join(kind.done).exists() {
        return Err(LabError::Invalid(format!(
            "{}: the {} is already complete ({} is there)",
            out.display(),
            kind.name,
            kind.done
        )));
    }
    Ok(settings)
}
