//! Checkpoints: everything needed to continue a run bit-identically, written
//! so that a crash at any moment leaves the previous checkpoint intact.
//!
//! # Layout (`downhill-checkpoint/1`)
//!
//! ```text
//! OUT/checkpoints/step-000000001234/
//!     model.safetensors       the parameters, one tensor per name and shape
//!                             (PyTorch can read it: safetensors.torch.load_file)
//!     optimizer.json          optimiser hyper-parameters and counters
//!     optimizer.safetensors   optimiser buffers (downhill-optimizer-state/1)
//!     trainer.json            position (epoch, batch, step), RNG state,
//!                             schedule state, epoch history, settings
//!     eval_model.safetensors  only for optimisers that evaluate elsewhere than
//!                             at the parameters (schedule-free's x, ASGD's
//!                             average): the model to evaluate and deploy;
//!                             model.safetensors is the training point the
//!                             run resumes from
//!     ema.safetensors         the exponential moving average of the weights
//!     swa.safetensors         the stochastic weight average (each only when
//!                             the run keeps it; their update counts are in
//!                             trainer.json)
//!     MANIFEST.json           format, and the length and SHA-256 of each file
//! ```
//!
//! A checkpoint is assembled in a temporary folder beside the others; each file
//! is flushed to disk, the manifest is written last, the folder is renamed into
//! place and the parent folder is synced. A folder without a valid manifest, or
//! whose files do not match it, is not a checkpoint: [`latest`] skips it (and
//! says so) and falls back to the previous one. The newest `keep` checkpoints
//! are kept.
//!
//! Writing step N first removes the checkpoints of later steps: they belong to
//! a history the run has left (it resumed from an older checkpoint because the
//! newer ones did not verify, or went back after a divergence), so a crash must
//! never resume from them, and they must not count towards `keep`. Writing a
//! step that already has a checkpoint puts the new folder in beside the old
//! one as `step-N.G` (a higher generation G, which sorts as newer), removes the
//! old one and then renames the new one to `step-N`; at every moment the
//! newest folder is a complete checkpoint.

use crate::config::TrainConfig;
use crate::metrics::{DataInfo, EpochRecord, EpochTotals};
use downhill::schedule::Scheduler;
use downhill::state::SavedState;
use downhill_nn::TensorInfo;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The format tag of `MANIFEST.json` and `trainer.json`.
pub const CHECKPOINT_FORMAT: &str = "downhill-checkpoint/1";
/// The optional file holding the evaluation point.
pub const EVAL_MODEL: &str = "eval_model.safetensors";

/// The weight averages a checkpoint may hold, and their files.
pub const AVERAGES: &[(&str, &str)] = &[("ema", "ema.safetensors"), ("swa", "swa.safetensors")];

fn average_file(name: &str) -> Option<&'static str> {
    AVERAGES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The format tag in `model.safetensors` metadata.
pub const MODEL_FORMAT: &str = "downhill-model/1";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file system error, with the path.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Contents that do not check out.
    #[error("{path}: {why}")]
    Corrupt {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// No usable checkpoint in a folder. One line, as the command line
    /// prints it: `details` lists what was skipped, separated by `; `.
    #[error("{path}: no usable checkpoint{details}")]
    NotFound {
        /// The run folder.
        path: PathBuf,
        /// What was found instead.
        details: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, why: impl Into<String>) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        // What a damaged file says (a field name, a format tag) may hold a
        // line break; the message stays one line.
        why: downhill::error::printable(&why.into()).into_owned(),
    }
}

/// The trainer's side of a checkpoint (`trainer.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The run's settings.
    pub config: TrainConfig,
    /// The data it was trained on.
    pub data: DataInfo,
    /// Epochs completed.
    pub epoch: usize,
    /// Batches completed within the current epoch.
    pub batch: usize,
    /// Steps taken.
    pub step: u64,
    /// The dropout RNG.
    pub rng: [u64; 4],
    /// The learning-rate schedule, if any.
    pub scheduler: Option<Scheduler>,
    /// Totals of the current, unfinished epoch.
    pub totals: EpochTotals,
    /// Records of the completed epochs.
    pub history: Vec<EpochRecord>,
    /// Training loss after each step of the current, unfinished epoch, as
    /// (step, loss); the earlier ones are in the run's `steps.csv`.
    pub step_losses: Vec<(u64, f64)>,
    /// Divergence back-offs so far.
    pub backoffs: u32,
    /// Wall-clock seconds so far.
    pub elapsed_seconds: f64,
    /// Updates folded into the weight averages (`--ema`, `--swa-start`),
    /// whose weights are `ema.safetensors` and `swa.safetensors`.
    #[serde(default)]
    pub average_updates: BTreeMap<String, u64>,
}

/// A whole checkpoint in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Model parameters, flat, in tensor order.
    pub params: Vec<f32>,
    /// Optimiser state.
    pub optimizer: SavedState,
    /// Trainer state.
    pub trainer: TrainerState,
    /// Weight averages by name (`ema`, `swa`), when the run keeps them.
    pub averages: BTreeMap<String, Vec<f32>>,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    step: u64,
    files: BTreeMap<String, FileEntry>,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    bytes: u64,
    sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serialises parameters as named tensors (safetensors, f32).
pub fn model_bytes(params: &[f32], tensors: &[TensorInfo], model: &str) -> Result<Vec<u8>, String> {
    let raw: &[u8] = bytes_of(params);
    let views = tensors
        .iter()
        .map(|t| {
            let b = &raw[t.offset * 4..(t.offset + t.len) * 4];
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One metadata entry: safetensors keeps metadata in a HashMap, whose
    // order (and so the file's bytes) would otherwise change from run to run.
    let info = serde_json::json!({
        "format": MODEL_FORMAT,
        "model": model,
        "layout": "dense weights [in, out]; conv weights [kh, kw, in, out]",
    });
    let meta: std::collections::HashMap<String, String> =
        [("downhill".to_string(), info.to_string())]
            .into_iter()
            .collect();
    safetensors::serialize(views, &Some(meta)).map_err(|e| e.to_string())
}

/// The bytes of `xs` as safetensors stores F32 tensors: little-endian, which
/// is their layout in memory on the little-endian targets this crate builds
/// for (elsewhere it does not compile, rather than write byte-swapped files).
#[cfg(target_endian = "little")]
fn bytes_of(xs: &[f32]) -> &[u8] {
    // SAFETY: the pointer and length come from a live slice, so the pointer is
    // non-null and valid for reads of `size_of_val(xs)` bytes, a size no larger
    // than `isize::MAX`, inside one allocation. `u8` has alignment 1, so the
    // pointer is aligned for it. An `f32` has no padding and its four bytes are
    // always initialised, and every bit pattern is a valid `u8`. The result
    // borrows `xs` for the same lifetime, so the memory stays live and is not
    // mutated while the byte view exists.
    unsafe { std::slice::from_raw_parts(xs.as_ptr().cast::<u8>(), std::mem::size_of_val(xs)) }
}

#[cfg(not(target_endian = "little"))]
compile_error!("checkpoints view f32 parameters as safetensors' little-endian bytes in place");

/// Reads parameters written by [`model_bytes`], checking names and shapes
/// against `tensors`.
pub fn read_model(
    bytes: &[u8],
    tensors: &[TensorInfo],
    origin: &Path,
) -> Result<Vec<f32>, CheckpointError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(origin, e.to_string()))?;
    let total: usize = tensors.iter().map(|t| t.len).sum();
    let mut params = vec![0.0f32; total];
    for t in tensors {
        let v = st
            .tensor(&t.name)
            .map_err(|_| corrupt(origin, format!("tensor `{}` is missing", t.name)))?;
        if v.dtype() != Dtype::F32 || v.shape() != t.shape.as_slice() {
            return Err(corrupt(
                origin,
                format!(
                    "tensor `{}` is {:?} {:?}, expected F32 {:?}",
                    t.name,
                    v.dtype(),
                    v.shape(),
                    t.shape
                ),
            ));
        }
        for (p, b) in params[t.range()].iter_mut().zip(v.data().chunks_exact(4)) {
            *p = f32::from_le_bytes(b.try_into().expect("4 bytes"));
        }
    }
    if st.len() != tensors.len() {
        return Err(corrupt(
            origin,
            format!("{} tensors, expected {}", st.len(), tensors.len()),
        ));
    }
    Ok(params)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn sync_dir(path: &Path) {
    // Directory fsync makes a rename durable; where the platform refuses it
    // there is nothing better to do.
    if let Ok(d) = std::fs::File::open(path) {
        let _ = d.sync_all();
    }
}

/// The checkpoints folder of a run.
pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Writes a checkpoint of `step` under `out` and deletes all but the newest
/// `keep`. Returns its folder.
#[allow(clippy::too_many_arguments)]
pub fn write(
    out: &Path,
    params: &[f32],
    eval_params: Option<&[f32]>,
    averages: &[(&str, &[f32])],
    tensors: &[TensorInfo],
    optimizer: &SavedState,
    trainer: &TrainerState,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    let root = checkpoints_dir(out);
    std::fs::create_dir_all(&root).map_err(io(&root))?;
    let name = format!("step-{:012}", trainer.step);
    let fin = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        (
            "model.safetensors",
            model_bytes(params, tensors, &trainer.config.model).map_err(|e| corrupt(&tmp, e))?,
        ),
        ("optimizer.json", optimizer.manifest_json().into_bytes()),
        (
            "optimizer.safetensors",
            optimizer
                .tensors_bytes()
                .map_err(|e| corrupt(&tmp, e.to_string()))?,
        ),
        (
            "trainer.json",
            serde_json::to_vec_pretty(trainer).map_err(|e| corrupt(&tmp, e.to_string()))?,
        ),
    ];
    if let Some(eval) = eval_params {
        files.push((
            EVAL_MODEL,
            model_bytes(eval, tensors, &trainer.config.model).map_err(|e| corrupt(&tmp, e))?,
        ));
    }
    for &(name, weights) in averages {
        let file =
            average_file(name).ok_or_else(|| corrupt(&tmp, format!("no average `{name}`")))?;
        files.push((
            file,
            model_bytes(weights, tensors, &trainer.config.model).map_err(|e| corrupt(&tmp, e))?,
        ));
    }
    let mut manifest = Manifest {
        format: CHECKPOINT_FORMAT.into(),
        step: trainer.step,
        files: BTreeMap::new(),
    };
    for (file, bytes) in &files {
        write_synced(&tmp.join(file), bytes)?;
        manifest.files.insert(
            file.to_string(),
            FileEntry {
                bytes: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            },
        );
    }
    let mbytes = serde_json::to_vec_pretty(&manifest).map_err(|e| corrupt(&tmp, e.to_string()))?;
    write_synced(&tmp.join("MANIFEST.json"), &mbytes)?;
    sync_dir(&tmp);
    let step = trainer.step;
    let existing = list(&root)?;
    for (_, dir) in existing.iter().filter(|(n, _)| n.step > step) {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    let same: Vec<&(FolderName, PathBuf)> =
        existing.iter().filter(|(n, _)| n.step == step).collect();
    if same.is_empty() {
        std::fs::rename(&tmp, &fin).map_err(io(&fin))?;
    } else {
        let generation = same.iter().map(|(n, _)| n.generation).max().unwrap_or(0) + 1;
        let next = root.join(format!("{name}.{generation}"));
        std::fs::rename(&tmp, &next).map_err(io(&next))?;
        sync_dir(&root);
        for (_, dir) in &same {
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::rename(&next, &fin).map_err(io(&fin))?;
    }
    sync_dir(&root);
    prune(&root, keep)?;
    Ok(fin)
}

/// What a checkpoint folder's name says: `step-000000001234` is step 1234,
/// generation 0; `step-000000001234.2` is the same step rewritten (see
/// [`write`]), generation 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FolderName {
    step: u64,
    generation: u64,
}

impl FolderName {
    fn parse(name: &str) -> Option<FolderName> {
        let rest = name.strip_prefix("step-")?;
        let (digits, generation) = match rest.split_once('.') {
            Some((d, g)) => (d, g),
            None => (rest, "0"),
        };
        let number = |t: &str| {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        Some(FolderName {
            step: number(digits)?,
            generation: number(generation)?,
        })
    }
}

/// Whether `out` holds a checkpoint folder (`step-N`), whole or damaged;
/// leftovers of interrupted writes do not count. A folder that cannot be
/// read counts, so that nothing in it is overwritten.
pub fn has_checkpoint(out: &Path) -> bool {
    list(&checkpoints_dir(out)).map_or(true, |dirs| !dirs.is_empty())
}

/// Checkpoint folders, newest first: by step, then generation. Ordering by
/// the numbers rather than the names keeps steps past 10^12 (longer names)
/// in order.
fn list(root: &Path) -> Result<Vec<(FolderName, PathBuf)>, CheckpointError> {
    let mut dirs: Vec<(FolderName, PathBuf)> = match std::fs::read_dir(root) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = FolderName::parse(e.file_name().to_str()?)?;
                Some((name, e.path()))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(CheckpointError::Io {
                path: root.to_path_buf(),
                source: e,
            })
        }
    };
    dirs.sort();
    dirs.reverse();
    Ok(dirs)
}

fn prune(root: &Path, keep: usize) -> Result<(), CheckpointError> {
    for (_, old) in list(root)?.into_iter().skip(keep) {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    // Leftovers of writes interrupted by a crash.
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.filter_map(|e| e.ok()) {
            let n = e.file_name();
            if n.to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// The most `MANIFEST.json` may hold; a real one is under a kilobyte.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Reads `MANIFEST.json`, refusing one too large to be a manifest before
/// reading it (a file put in its place must not exhaust memory).
fn read_manifest_bytes(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(corrupt(
            path,
            format!("larger than {MAX_MANIFEST_BYTES} bytes: not a checkpoint manifest"),
        ));
    }
    Ok(bytes)
}

/// Reads a file the manifest lists with a length of `expected` bytes. The
/// length on disk is compared first, so a file cut short, or replaced by
/// something far larger, is refused without reading (or allocating) it.
fn read_listed(path: &Path, expected: u64) -> Result<Vec<u8>, CheckpointError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let len = f.metadata().map_err(io(path))?.len();
    let mismatch = |len: u64| {
        let why = if len < expected {
            "truncated?"
        } else {
            "more than was written"
        };
        corrupt(
            path,
            format!("{len} bytes, the manifest says {expected} ({why})"),
        )
    };
    if len != expected {
        return Err(mismatch(len));
    }
    let mut bytes = Vec::new();
    f.take(expected + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    // The file may change between the length check and the read.
    if bytes.len() as u64 != expected {
        return Err(mismatch(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads and verifies one checkpoint folder.
pub fn read(dir: &Path, tensors: &[TensorInfo]) -> Result<Checkpoint, CheckpointError> {
    let mpath = dir.join("MANIFEST.json");
    let mtext = read_manifest_bytes(&mpath)?;
    let manifest: Manifest = serde_json::from_slice(&mtext)
        .map_err(|e| corrupt(&mpath, format!("not a checkpoint manifest: {e}")))?;
    if manifest.format != CHECKPOINT_FORMAT {
        return Err(corrupt(
            &mpath,
            format!(
                "format `{}`, expected `{CHECKPOINT_FORMAT}`",
                manifest.format
            ),
        ));
    }
    let mut contents = BTreeMap::new();
    for name in [
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "trainer.json",
    ] {
        let path = dir.join(name);
        let entry = manifest
            .files
            .get(name)
            .ok_or_else(|| corrupt(&mpath, format!("does not list {name}")))?;
        let bytes = read_listed(&path, entry.bytes)?;
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(corrupt(&path, "checksum mismatch: the file is corrupted"));
        }
        contents.insert(name, bytes);
    }
    // The evaluation model is not needed to resume, but a listed file that
    // does not match is damage all the same.
    if let Some(entry) = manifest.files.get(EVAL_MODEL) {
        let path = dir.join(EVAL_MODEL);
        let bytes = read_listed(&path, entry.bytes)?;
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(corrupt(&path, "checksum mismatch: the file is corrupted"));
        }
    }
    let tpath = dir.join("trainer.json");
    let trainer =
        trainer_state_from_json(&contents["trainer.json"]).map_err(|e| corrupt(&tpath, e))?;
    if trainer.format != CHECKPOINT_FORMAT {
        return Err(corrupt(
            &tpath,
            format!(
                "format `{}`, expected `{CHECKPOINT_FORMAT}`",
                trainer.format
            ),
        ));
    }
    let ojson = std::str::from_utf8(&contents["optimizer.json"])
        .map_err(|_| corrupt(dir, "optimizer.json is not UTF-8"))?;
    let optimizer = SavedState::from_parts(ojson, &contents["optimizer.safetensors"])
        .map_err(|e| corrupt(dir, e.to_string()))?;
    let params = if tensors.is_empty() {
        Vec::new()
    } else {
        read_model(
            &contents["model.safetensors"],
            tensors,
            &dir.join("model.safetensors"),
        )?
    };
    let mut averages = BTreeMap::new();
    for &(name, file) in AVERAGES {
        if let Some(entry) = manifest.files.get(file) {
            let path = dir.join(file);
            let bytes = read_listed(&path, entry.bytes)?;
            if sha256_hex(&bytes) != entry.sha256 {
                return Err(corrupt(&path, "checksum mismatch: the file is corrupted"));
            }
            if !tensors.is_empty() {
                averages.insert(name.to_string(), read_model(&bytes, tensors, &path)?);
            }
        }
    }
    Ok(Checkpoint {
        params,
        optimizer,
        trainer,
        averages,
    })
}

/// Parses `trainer.json`. A run saved before `sparse_updates` existed took
/// dense steps: its config says `dense`, not today's default `auto`, so that
/// it resumes as it ran.
fn trainer_state_from_json(bytes: &[u8]) -> Result<TrainerState, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let legacy = value
        .get("config")
        .and_then(|c| c.as_object())
        .is_some_and(|c| !c.contains_key("sparse_updates"));
    let mut state: TrainerState = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if legacy {
        state.config.sparse_updates = crate::config::SparseUpdates::Dense;
    }
    Ok(state)
}

/// Reads only `trainer.json` of the newest valid checkpoint (to learn a run's
/// settings before building its model).
pub fn latest_trainer_state(
    out: &Path,
) -> Result<(PathBuf, TrainerState, Vec<String>), CheckpointError> {
    let (dir, ckpt, warnings) = latest(out, &[])?;
    Ok((dir, ckpt.trainer, warnings))
}

/// The newest checkpoint under `out` that verifies, with a warning for each
/// newer one that did not.
pub fn latest(
    out: &Path,
    tensors: &[TensorInfo],
) -> Result<(PathBuf, Checkpoint, Vec<String>), CheckpointError> {
    let root = checkpoints_dir(out);
    let mut warnings = Vec::new();
    for (_, dir) in list(&root)? {
        match read(&dir, tensors) {
            Ok(c) => return Ok((dir, c, warnings)),
            Err(e) => warnings.push(format!("skipping unusable checkpoint: {e}")),
        }
    }
    // One line: the command line prints this error as its only line of output.
    let details = if warnings.is_empty() {
        format!(" (no {}/step-* folders)", root.display())
    } else {
        format!(": {}", warnings.join("; "))
    };
    Err(CheckpointError::NotFound {
        path: out.to_path_buf(),
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_from_before_sparse_updates_resumes_dense() {
        let state = TrainerState {
            format: CHECKPOINT_FORMAT.into(),
            config: crate::TrainConfig::default(),
            data: crate::DataInfo {
                spec: "libsvm:x".into(),
                train: 1,
                valid: 0,
                test: 0,
                dim: 1,
                classes: 2,
                sparse: true,
            },
            epoch: 0,
            batch: 0,
            step: 0,
            rng: downhill::Rng::new(0).state(),
            scheduler: None,
            totals: Default::default(),
            history: Vec::new(),
            step_losses: Vec::new(),
            backoffs: 0,
            elapsed_seconds: 0.0,
            average_updates: Default::default(),
        };
        let mut json = serde_json::to_value(&state).unwrap();
        let now = trainer_state_from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(now.config.sparse_updates, crate::SparseUpdates::Auto);
        json["config"]
            .as_object_mut()
            .unwrap()
            .remove("sparse_updates");
        let old = trainer_state_from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(old.config.sparse_updates, crate::SparseUpdates::Dense);
    }

    #[test]
    fn a_manifest_with_a_line_break_in_a_field_name_is_refused_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("MANIFEST.json"),
            r#"{"format": "downhill-checkpoint/1", "fi\nles": {}}"#,
        )
        .unwrap();
        let e = read(dir.path(), &[]).unwrap_err().to_string();
        assert!(e.contains("MANIFEST.json") && !e.contains('\n'), "{e:?}");
        std::fs::write(
            dir.path().join("MANIFEST.json"),
            r#"{"format": "downhill-\ncheckpoint/9", "step": 1, "files": {}}"#,
        )
        .unwrap();
        let e = read(dir.path(), &[]).unwrap_err().to_string();
        assert!(e.contains("format") && !e.contains('\n'), "{e:?}");
    }
}
