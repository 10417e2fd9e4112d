//! Saved optimiser state: a versioned JSON manifest (parameter shapes and
//! roles, hyper-parameters, step counters, scalar state) plus the buffers as
//! a safetensors file.
//!
//! # Format `downhill-optimizer-state/2`
//!
//! `NAME.json`:
//! ```json
//! {
//!   "format": "downhill-optimizer-state/2",
//!   "optimizer": "adafactor",       // registry name, or "partition"
//!   "dtype": "f32",                 // element type of parameters and buffers
//!   "params": [{"shape": [784, 1000], "role": "input"}, {"shape": [1000], "role": "bias"}],
//!   "groups": [{"params": [0, 1], "hyper": {"lr": 0.01, ...}, "scalars": {...}}],
//!   "tensors": [
//!     {"step": 3, "scalars": {}, "buffers": [{"name": "row_var", "shape": [784]},
//!                                             {"name": "col_var", "shape": [1000]}]},
//!     {"step": 3, "scalars": {}, "buffers": [{"name": "variance", "shape": [1000]}]}
//!   ],
//!   "parts": []
//! }
//! ```
//! `NAME.safetensors`: one tensor per buffer, named `"{tensor}.{buffer}"`
//! (e.g. `"0.row_var"`), with the buffer's shape, dtype F32 or F64,
//! little-endian as safetensors prescribes.
//!
//! A [`crate::optim::Partition`] writes `"optimizer": "partition"`, no groups
//! or tensors of its own, and one entry per part in `parts`:
//! `{"roles": ["hidden"], "params": [1, 3], "state": {manifest of the part}}`,
//! where the part's tensors are numbered within the part and its buffers are
//! stored as `"parts.{k}.{tensor}.{buffer}"`.
//!
//! A group's `scalars` (absent when empty) hold state a rule keeps per group
//! rather than per tensor: schedule-free's step and weight sum, Prodigy's
//! distance estimate.
//!
//! Floats in the JSON are printed shortest-round-trip and parsed exactly, so
//! a save and a load reproduce every bit, and the next steps are
//! bit-identical to never having saved.
//!
//! # Format `downhill-optimizer-state/1` (read, not written)
//!
//! Version 1 knew only element-wise rules over flat tensors: `"sizes"`
//! instead of `"params"`, and `"buffers"` as a list of names, each buffer
//! the size of its tensor. It loads into an optimiser whose tensors have
//! those sizes (whatever their shapes now), and its next steps are the same
//! as before the upgrade.

use crate::error::{Error, Result};
use crate::hyper::HyperMap;
use crate::optim::{Param, Role};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The format tag written into every manifest.
pub const STATE_FORMAT: &str = "downhill-optimizer-state/2";

/// The previous format, still read.
pub const STATE_FORMAT_V1: &str = "downhill-optimizer-state/1";

/// One parameter group of a saved state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    /// Tensor indices.
    pub params: Vec<usize>,
    /// Every hyper-parameter of the group.
    pub hyper: HyperMap,
    /// The group's scalar state (schedule-free's weight sum, Prodigy's `d`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scalars: BTreeMap<String, f64>,
}

/// A buffer's name and shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferRecord {
    /// The rule's name for it.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// One tensor's counters and buffers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorRecord {
    /// Steps taken.
    pub step: u64,
    /// Scalar state by name.
    pub scalars: BTreeMap<String, f64>,
    /// The buffers stored for this tensor.
    pub buffers: Vec<BufferRecord>,
}

/// One part of a partition: the roles it takes, the tensors (outer indices)
/// that fell to it, and its own state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartRecord {
    /// Role names, as in the spec (`all` included).
    pub roles: Vec<String>,
    /// The partition's tensor indices that this part updates, in order.
    pub params: Vec<usize>,
    /// The part's own manifest.
    pub state: StateManifest,
}

/// The JSON half of a saved state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateManifest {
    /// Always [`STATE_FORMAT`] when written.
    pub format: String,
    /// Registry name of the optimiser, or `"partition"`.
    pub optimizer: String,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// Shape and role of each parameter tensor.
    pub params: Vec<Param>,
    /// Parameter groups.
    #[serde(default)]
    pub groups: Vec<GroupRecord>,
    /// Per-tensor records.
    #[serde(default)]
    pub tensors: Vec<TensorRecord>,
    /// A partition's parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartRecord>,
}

/// Version 1, as it was written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestV1 {
    format: String,
    optimizer: String,
    dtype: String,
    sizes: Vec<usize>,
    groups: Vec<GroupRecord>,
    tensors: Vec<TensorRecordV1>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorRecordV1 {
    step: u64,
    scalars: BTreeMap<String, f64>,
    buffers: Vec<String>,
}

impl StateManifest {
    /// A version-2 manifest of a driver's state.
    pub fn new(
        optimizer: &str,
        dtype: &str,
        params: &[Param],
        groups: Vec<GroupRecord>,
        tensors: Vec<TensorRecord>,
    ) -> Self {
        StateManifest {
            format: STATE_FORMAT.to_string(),
            optimizer: optimizer.to_string(),
            dtype: dtype.to_string(),
            params: params.to_vec(),
            groups,
            tensors,
            parts: Vec::new(),
        }
    }

    /// Parses either version; version 1 is read into version 2's form with
    /// flat shapes, to be fitted to the real ones by [`StateManifest::expect`].
    pub fn from_json(json: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| Error::State(format!("manifest: {e}")))?;
        let is_v1 = value.get("format").and_then(|f| f.as_str()) == Some(STATE_FORMAT_V1);
        if !is_v1 {
            return serde_json::from_value(value)
                .map_err(|e| Error::State(format!("manifest: {e}")));
        }
        let v1: ManifestV1 =
            serde_json::from_value(value).map_err(|e| Error::State(format!("manifest: {e}")))?;
        Ok(StateManifest {
            format: v1.format,
            optimizer: v1.optimizer,
            dtype: v1.dtype,
            params: v1
                .sizes
                .iter()
                .map(|&n| Param::new(vec![n], Role::Bias))
                .collect(),
            groups: v1.groups,
            tensors: v1
                .tensors
                .into_iter()
                .zip(&v1.sizes)
                .map(|(t, &n)| TensorRecord {
                    step: t.step,
                    scalars: t.scalars,
                    buffers: t
                        .buffers
                        .into_iter()
                        .map(|name| BufferRecord {
                            name,
                            shape: vec![n],
                        })
                        .collect(),
                })
                .collect(),
            parts: Vec::new(),
        })
    }

    /// Checks that this state belongs to the given kind of optimiser over
    /// the given parameters, and returns it in version 2's form for them (a
    /// version-1 state takes the parameters' shapes, its sizes permitting).
    pub fn expect(&self, optimizer: &str, dtype: &str, params: &[Param]) -> Result<Cow<'_, Self>> {
        if self.format != STATE_FORMAT && self.format != STATE_FORMAT_V1 {
            return Err(Error::State(format!(
                "format `{}`, expected `{STATE_FORMAT}` (or `{STATE_FORMAT_V1}`)",
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
        let shapes = |ps: &[Param]| ps.iter().map(|p| p.shape.clone()).collect::<Vec<_>>();
        if self.format == STATE_FORMAT {
            if shapes(&self.params) != shapes(params) {
                return Err(Error::State(format!(
                    "saved for tensor shapes {:?}, not {:?}",
                    shapes(&self.params),
                    shapes(params)
                )));
            }
            return Ok(Cow::Borrowed(self));
        }
        let sizes = |ps: &[Param]| ps.iter().map(Param::len).collect::<Vec<_>>();
        if sizes(&self.params) != sizes(params) {
            return Err(Error::State(format!(
                "saved for tensor sizes {:?}, not {:?}",
                sizes(&self.params),
                sizes(params)
            )));
        }
        let mut up = self.clone();
        up.format = STATE_FORMAT.to_string();
        up.params = params.to_vec();
        for (t, p) in up.tensors.iter_mut().zip(params) {
            for b in &mut t.buffers {
                b.shape = p.shape.clone();
            }
        }
        Ok(Cow::Owned(up))
    }

    /// Every buffer this manifest (and its parts) names, with its key in the
    /// safetensors file and its shape.
    pub fn buffer_keys(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        self.collect_keys("", &mut out);
        out
    }

    /// The key of tensor `param`'s buffer `name` in the safetensors file,
    /// through the parts of a partition; `None` if the manifest has none.
    pub fn buffer_key(&self, param: usize, name: &str) -> Option<String> {
        if self.parts.is_empty() {
            let t = self.tensors.get(param)?;
            return t
                .buffers
                .iter()
                .any(|b| b.name == name)
                .then(|| format!("{param}.{name}"));
        }
        self.parts.iter().enumerate().find_map(|(k, part)| {
            let l = part.params.iter().position(|&p| p == param)?;
            let key = part.state.buffer_key(l, name)?;
            Some(format!("parts.{k}.{key}"))
        })
    }

    fn collect_keys(&self, prefix: &str, out: &mut Vec<(String, Vec<usize>)>) {
        for (i, t) in self.tensors.iter().enumerate() {
            for b in &t.buffers {
                out.push((format!("{prefix}{i}.{}", b.name), b.shape.clone()));
            }
        }
        for (k, part) in self.parts.iter().enumerate() {
            part.state.collect_keys(&format!("{prefix}parts.{k}."), out);
        }
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
    /// Sets the bytes of tensor `param`'s buffer `name` (a buffer that lived
    /// on a device; see [`crate::optim::device`]).
    pub fn set_buffer(&mut self, param: usize, name: &str, bytes: Vec<u8>) -> Result<()> {
        let key = self
            .manifest
            .buffer_key(param, name)
            .ok_or_else(|| Error::State(format!("tensor {param} has no buffer `{name}`")))?;
        match self.buffers.iter_mut().find(|(k, _)| *k == key) {
            Some((_, b)) => *b = bytes,
            None => self.buffers.push((key, bytes)),
        }
        Ok(())
    }

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

    /// The buffers as a safetensors file, each with its shape.
    pub fn tensors_bytes(&self) -> Result<Vec<u8>> {
        let (dtype, width) = self.dtype()?;
        let shapes = self.manifest.buffer_keys();
        let views = self
            .buffers
            .iter()
            .map(|(name, bytes)| {
                let shape = shapes
                    .iter()
                    .find(|(k, _)| k == name)
                    .map_or_else(|| vec![bytes.len() / width], |(_, s)| s.clone());
                let view = TensorView::new(dtype, shape, bytes)
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
        let manifest = StateManifest::from_json(manifest_json)?;
        let st =
            SafeTensors::deserialize(tensors).map_err(|e| Error::State(format!("buffers: {e}")))?;
        let mut out = SavedState {
            manifest,
            buffers: Vec::new(),
        };
        let (dtype, _) = out.dtype()?;
        for (key, _) in out.manifest.buffer_keys() {
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
