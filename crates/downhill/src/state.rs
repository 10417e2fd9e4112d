//! Saved optimiser state: a versioned JSON manifest (hyper-parameters, step
//! counters, scalar state) plus the element-wise buffers as a safetensors file.
//!
//! # Format `downhill-optimizer-state/1`
//!
//! `NAME.json`:
//! ```json
//! {
//!   "format": "downhill-optimizer-state/1",
//!   "optimizer": "adam",            // torch name
//!   "dtype": "f32",                 // element type of parameters and buffers
//!   "sizes": [7840, 10],            // elements per parameter tensor
//!   "groups": [{"params": [0, 1], "hyper": {"lr": 0.001, "betas": [0.9, 0.999], ...}}],
//!   "tensors": [{"step": 3, "scalars": {}, "buffers": ["exp_avg", "exp_avg_sq"]}, ...]
//! }
//! ```
//! `NAME.safetensors`: one 1-D tensor per buffer, named `"{tensor}.{buffer}"`
//! (e.g. `"0.exp_avg"`), dtype F32 or F64, little-endian as safetensors
//! prescribes. Floats in the JSON are printed shortest-round-trip and parsed
//! exactly, so a save and a load reproduce every bit, and the next steps are
//! bit-identical to never having saved.

use crate::error::{Error, Result};
use crate::hyper::HyperMap;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The format tag written into every manifest.
pub const STATE_FORMAT: &str = "downhill-optimizer-state/1";

/// One parameter group of a saved state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Tensor indices.
    pub params: Vec<usize>,
    /// Every hyper-parameter of the group.
    pub hyper: HyperMap,
}

/// One tensor's counters and the names of its buffers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorRecord {
    /// Steps taken.
    pub step: u64,
    /// Scalar state by name.
    pub scalars: BTreeMap<String, f64>,
    /// Names of the buffers stored for this tensor.
    pub buffers: Vec<String>,
}

/// The JSON half of a saved state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateManifest {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// torch name of the optimiser.
    pub optimizer: String,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// Elements per parameter tensor.
    pub sizes: Vec<usize>,
    /// Parameter groups.
    pub groups: Vec<GroupRecord>,
    /// Per-tensor records.
    pub tensors: Vec<TensorRecord>,
}

impl StateManifest {
    /// Checks that this state belongs to the given kind of optimiser.
    pub fn expect(&self, optimizer: &str, dtype: &str, sizes: &[usize]) -> Result<()> {
        if self.format != STATE_FORMAT {
            return Err(Error::State(format!(
                "format `{}`, expected `{STATE_FORMAT}`",
                self.format
            )));
        }
        if self.optimizer != optimizer {
            return Err(Error::State(format!(
                "saved by `{}`, cannot load into `{optimizer}`",
                self.optimizer
            )));
        }
        if self.dtype != dtype {
            return Err(Error::State(format!(
                "saved as {}, cannot load into {dtype}",
                self.dtype
            )));
        }
        if self.sizes != sizes {
            return Err(Error::State(format!(
                "saved for tensor sizes {:?}, not {:?}",
                self.sizes, sizes
            )));
        }
        Ok(())
    }
}

/// A whole optimiser state in memory: the manifest and the raw little-endian
/// bytes of each buffer, by name.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedState {
    /// Hyper-parameters and counters.
    pub manifest: StateManifest,
    /// `(name, bytes)` per buffer, element type per `manifest.dtype`.
    pub buffers: Vec<(String, Vec<u8>)>,
}

impl SavedState {
    /// The bytes of buffer `name`.
    pub fn buffer(&self, name: &str) -> Result<&[u8]> {
        self.buffers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| Error::State(format!("buffer `{name}` is missing")))
    }

    /// The manifest as pretty JSON.
    pub fn manifest_json(&self) -> String {
        serde_json::to_string_pretty(&self.manifest).expect("a manifest always serialises")
    }

    fn dtype(&self) -> Result<(Dtype, usize)> {
        match self.manifest.dtype.as_str() {
            "f32" => Ok((Dtype::F32, 4)),
            "f64" => Ok((Dtype::F64, 8)),
            other => Err(Error::State(format!(
                "dtype `{other}`, expected f32 or f64"
            ))),
        }
    }

    /// The buffers as a safetensors file.
    pub fn tensors_bytes(&self) -> Result<Vec<u8>> {
        let (dtype, width) = self.dtype()?;
        let views = self
            .buffers
            .iter()
            .map(|(name, bytes)| {
                let view = TensorView::new(dtype, vec![bytes.len() / width], bytes)
                    .map_err(|e| Error::State(format!("buffer {name}: {e}")))?;
                Ok((name.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, &None)
            .map_err(|e| Error::State(format!("serialising buffers: {e}")))
    }

    /// Rebuilds a state from its two halves, checking that every buffer the
    /// manifest names is present with the manifest's element type.
    pub fn from_parts(manifest_json: &str, tensors: &[u8]) -> Result<Self> {
        let manifest: StateManifest = serde_json::from_str(manifest_json)
            .map_err(|e| Error::State(format!("manifest: {e}")))?;
        let st =
            SafeTensors::deserialize(tensors).map_err(|e| Error::State(format!("buffers: {e}")))?;
        let mut out = SavedState {
            manifest,
            buffers: Vec::new(),
        };
        let (dtype, _) = out.dtype()?;
        for (i, rec) in out.manifest.tensors.iter().enumerate() {
            for name in &rec.buffers {
                let key = format!("{i}.{name}");
                let view = st
                    .tensor(&key)
                    .map_err(|_| Error::State(format!("buffer `{key}` is missing")))?;
                if view.dtype() != dtype {
                    return Err(Error::State(format!(
                        "buffer `{key}` is {:?}, expected {dtype:?}",
                        view.dtype()
                    )));
                }
                out.buffers.push((key, view.data().to_vec()));
            }
        }
        Ok(out)
    }

    /// Writes `DIR/STEM.json` and `DIR/STEM.safetensors`, each atomically
    /// (temporary file, fsync, rename), so a crash leaves either the old or the
    /// new file, never a torn one.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<(PathBuf, PathBuf)> {
        let tensors = self.tensors_bytes().map_err(std::io::Error::other)?;
        let t = dir.join(format!("{stem}.safetensors"));
        let j = dir.join(format!("{stem}.json"));
        write_atomic(&t, &tensors)?;
        write_atomic(&j, self.manifest_json().as_bytes())?;
        Ok((j, t))
    }

    /// Reads what [`SavedState::write`] wrote.
    pub fn read(dir: &Path, stem: &str) -> Result<Self> {
        let j = dir.join(format!("{stem}.json"));
        let t = dir.join(format!("{stem}.safetensors"));
        let json = std::fs::read_to_string(&j)
            .map_err(|e| Error::State(format!("{}: {e}", j.display())))?;
        let bytes = std::fs::read(&t).map_err(|e| Error::State(format!("{}: {e}", t.display())))?;
        Self::from_parts(&json, &bytes)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder,
/// flushed to disk, then renamed over `path`, then the folder is synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `optimizer_state` fuzz target: JSON may escape a line
    /// break into a field name, and serde quotes the name in its error.
    #[test]
    fn a_damaged_manifest_is_refused_on_one_line() {
        for manifest in [
            r#"{"t\nsors": 1}"#,
            r#"{"format": "downhill-optimizer-state/1", "tolerance_ch\nge": 2}"#,
        ] {
            let e = SavedState::from_parts(manifest, b"")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("optimizer state: manifest: unknown field") && !e.contains('\n'),
                "{e:?}"
            );
            assert!(e.contains("\\n"), "{e}");
        }
    }
}
