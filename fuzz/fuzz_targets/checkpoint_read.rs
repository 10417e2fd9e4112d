//! The checkpoint reader: `checkpoint::read` on a folder whose files come
//! from the input, then what `downhill train --resume` does with what it
//! read (RNG, settings, optimiser state, schedule).
//!
//! Input: one flag byte, then `MANIFEST.json`, `model.safetensors`,
//! `optimizer.json`, `optimizer.safetensors` and `trainer.json` joined by the
//! separator. With flag bit 0 set the harness writes a manifest with the
//! right lengths and SHA-256 sums instead of the first part, so the fuzzer
//! reaches the parsers behind the checksums (a mutated file would otherwise
//! almost always stop at the checksum).
//!
//! No panic, one-line errors naming the folder or file, and a checkpoint that
//! reads back resumes without panicking.
#![no_main]

use downhill::lbfgs::Lbfgs;
use downhill::optim::{build, Param};
use downhill_fuzz::{check_error, split_parts};
use downhill_nn::{InputShape, ModelSpec, Network, TensorInfo};
use downhill_train::checkpoint;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The files of a checkpoint, in the input's order after the manifest.
const FILES: [&str; 4] = [
    "model.safetensors",
    "optimizer.json",
    "optimizer.safetensors",
    "trainer.json",
];

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder"))
}

/// The model the seeds were written for (`make_seeds`): logistic regression
/// over 4 features and 3 classes.
fn network() -> &'static Network<f32> {
    static N: OnceLock<Network<f32>> = OnceLock::new();
    N.get_or_init(|| {
        let spec: ModelSpec = "logreg".parse().expect("logreg parses");
        Network::<f32>::new(&spec, InputShape::Flat(4), 3, 0).expect("logreg builds")
    })
}

fn tensors() -> &'static [TensorInfo] {
    network().tensors()
}

/// The model's tensors with shapes and roles, as the trainer gives them to
/// its optimiser (a state saved for other shapes does not load).
fn optimizer_params() -> &'static [Param] {
    static P: OnceLock<Vec<Param>> = OnceLock::new();
    P.get_or_init(|| network().optimizer_params())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let parts = split_parts(rest);
    let ckpt = dir().path().join("checkpoints").join("step-000000000007");
    let _ = std::fs::remove_dir_all(dir().path().join("checkpoints"));
    std::fs::create_dir_all(&ckpt).expect("create the checkpoint folder");
    // A missing part is a missing file.
    for (name, part) in FILES.iter().zip(parts.iter().skip(1)) {
        std::fs::write(ckpt.join(name), part).expect("write a checkpoint file");
    }
    let manifest = if flags & 1 == 1 {
        let files: serde_json::Map<String, serde_json::Value> = FILES
            .iter()
            .zip(parts.iter().skip(1))
            .map(|(name, part)| {
                let entry = serde_json::json!({"bytes": part.len(), "sha256": sha256_hex(part)});
                (name.to_string(), entry)
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "format": checkpoint::CHECKPOINT_FORMAT,
            "step": 7,
            "files": files,
        }))
        .expect("a manifest serialises")
    } else {
        parts[0].to_vec()
    };
    std::fs::write(ckpt.join("MANIFEST.json"), manifest).expect("write the manifest");

    let read = checkpoint::read(&ckpt, tensors());
    // `latest` reads the same folder and must agree (and report on one line).
    match checkpoint::latest(dir().path(), tensors()) {
        Ok((_, c, warnings)) => {
            assert!(warnings.is_empty());
            assert_eq!(Some(&c), read.as_ref().ok());
        }
        Err(e) => {
            check_error(&e);
            assert!(read.is_err());
        }
    }
    let c = match read {
        Ok(c) => c,
        Err(e) => {
            check_error(&e);
            let msg = e.to_string();
            assert!(msg.contains("step-000000000007"), "{msg}");
            return;
        }
    };
    let n: usize = tensors().iter().map(|t| t.len).sum();
    assert_eq!(c.params.len(), n);
    resume_like(&c);
});

/// What `Trainer::resume` does with a checkpoint before the first step.
fn resume_like(c: &checkpoint::Checkpoint) {
    let _ = downhill::Rng::from_state(c.trainer.rng);
    let cfg = &c.trainer.config;
    if let Err(e) = cfg.validate() {
        return check_error(&e);
    }
    let spec = cfg.optimizer_spec().expect("validated");
    let total: usize = tensors().iter().map(|t| t.len).sum();
    // As `downhill_train::method::Method::new` builds the optimiser (spelled
    // out here so the harness does not depend on that enum's variants).
    if spec.name == "lbfgs" {
        let config = downhill_train::method::lbfgs_config(&spec).expect("validated");
        let mut l = match Lbfgs::<f32>::new(config, total) {
            Ok(l) => l,
            Err(e) => return check_error(&e),
        };
        if let Err(e) = l.load_state(&c.optimizer) {
            check_error(&e);
        }
        return;
    }
    let mut opt = match build::<f32>(&spec, optimizer_params()) {
        Ok(o) => o,
        Err(e) => return check_error(&e),
    };
    if let Err(e) = opt.load_state(&c.optimizer) {
        return check_error(&e);
    }
    // The trainer reads the first group's rate for every epoch record.
    let _ = opt.lr(0);
    if let Some(s) = &c.trainer.scheduler {
        let mut s = s.clone();
        for _ in 0..3 {
            if let Err(e) = s.step(&mut *opt, Some(1.0)) {
                return check_error(&e);
            }
        }
    }
}
