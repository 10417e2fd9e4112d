//! Checkpoint integrity: every way a checkpoint file can be damaged (cut
//! short, one bit flipped, deleted, a foreign format) is refused with a
//! one-line message that names the file, the previous good checkpoint is
//! used instead, and resuming from it still ends bit-identically.

use downhill::Rng;
use downhill_testenv::copy_dir;
use downhill_train::checkpoint::{self, CHECKPOINT_FORMAT};
use downhill_train::{Silent, TrainConfig, TrainError, Trainer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The files of a checkpoint, as `checkpoint::write` names them.
const FILES: [&str; 5] = [
    "MANIFEST.json",
    "model.safetensors",
    "optimizer.json",
    "optimizer.safetensors",
    "trainer.json",
];

/// Two Gaussian clouds in 5 dimensions as LIBSVM text; returns the data spec.
fn data_spec(dir: &Path) -> String {
    let mut rng = Rng::new(11);
    let mut text = String::new();
    for i in 0..200 {
        let y = i % 2;
        text += if y == 1 { "1" } else { "-1" };
        for j in 0..5 {
            let v = rng.normal() + if y == 1 { 0.5 } else { -0.5 };
            text += &format!(" {}:{v:.6}", j + 1);
        }
        text.push('\n');
    }
    let path = dir.join("train.svm");
    std::fs::write(&path, text).unwrap();
    format!("libsvm:{}", path.display())
}

fn cfg(dir: &Path) -> TrainConfig {
    TrainConfig {
        data: data_spec(dir),
        model: "mlp:4".into(),
        optimizer: "adam(lr=0.01)".into(),
        batch_size: 32,
        epochs: 3,
        seed: 5,
        checkpoint_every: Some(4),
        keep_checkpoints: 3,
        threads: Some(1),
        ..TrainConfig::default()
    }
}

/// Runs `cfg` to the end in `out` and returns the trainer.
fn run(cfg: TrainConfig, out: &Path) -> Trainer {
    let mut t = Trainer::new(cfg, Some(out.to_path_buf())).unwrap();
    t.run(&mut Silent).unwrap();
    t
}

/// Checkpoint folders, oldest first.
fn checkpoints(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(checkpoint::checkpoints_dir(out))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    /// The file cut to half its length.
    Truncate,
    /// One bit flipped in the middle.
    FlipBit,
    /// The file removed.
    Delete,
}

fn damage(path: &Path, how: Damage) {
    match how {
        Damage::Truncate => {
            let b = std::fs::read(path).unwrap();
            std::fs::write(path, &b[..b.len() / 2]).unwrap();
        }
        Damage::FlipBit => {
            let mut b = std::fs::read(path).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x08;
            std::fs::write(path, &b).unwrap();
        }
        Damage::Delete => std::fs::remove_file(path).unwrap(),
    }
}

/// What the warning for a damaged file must say besides its path.
fn reason(file: &str, how: Damage) -> &'static [&'static str] {
    match (file, how) {
        (_, Damage::Delete) => &["No such file"],
        // The manifest has no checksum of its own: damage shows as JSON that
        // does not parse, or (a flipped bit inside a value) as files that no
        // longer match it.
        ("MANIFEST.json", _) => &[
            "not a checkpoint manifest",
            "checksum",
            "bytes, the manifest says",
            "does not list",
            "format",
        ],
        (_, Damage::Truncate) => &["truncated"],
        (_, Damage::FlipBit) => &["checksum mismatch"],
    }
}

#[test]
fn each_damaged_file_is_named_and_the_previous_checkpoint_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let t = run(cfg(dir.path()), &whole);
    let tensors = t.network().tensors().to_vec();
    let final_model = |out: &Path| {
        std::fs::read(checkpoints(out).last().unwrap().join("model.safetensors")).unwrap()
    };
    let reference = final_model(&whole);

    // A run stopped after epoch 2: its newest checkpoint is damaged in each
    // way, one at a time, in a fresh copy.
    let stopped = dir.path().join("stopped");
    run(
        TrainConfig {
            epochs: 2,
            ..cfg(dir.path())
        },
        &stopped,
    );
    let steps = checkpoints(&stopped);
    assert_eq!(steps.len(), 3, "keep_checkpoints = 3: {steps:?}");
    let (newest, previous) = (&steps[2], &steps[1]);
    let mut case = 0;
    for file in FILES {
        for how in [Damage::Truncate, Damage::FlipBit, Damage::Delete] {
            case += 1;
            let out = dir.path().join(format!("case{case}"));
            copy_dir(&stopped, &out);
            let target = out.join(newest.strip_prefix(&stopped).unwrap());
            damage(&target.join(file), how);

            let (used, ckpt, warnings) = checkpoint::latest(&out, &tensors).unwrap();
            assert_eq!(used.file_name(), previous.file_name(), "{file} {how:?}");
            assert!(ckpt.trainer.step > 0);
            assert_eq!(warnings.len(), 1, "{file} {how:?}: {warnings:?}");
            let w = &warnings[0];
            assert!(!w.contains('\n'), "{w}");
            let named = w.contains(&target.join(file).display().to_string())
                || (file == "MANIFEST.json" && w.contains(&target.display().to_string()));
            assert!(
                named,
                "{file} {how:?}: the warning does not name the file: {w}"
            );
            assert!(
                reason(file, how).iter().any(|r| w.contains(r)),
                "{file} {how:?}: {w}"
            );

            // Resuming goes on from the previous checkpoint and ends exactly
            // where the uninterrupted run ended (checked for one file per
            // kind of damage, to keep the test short).
            if file == "optimizer.safetensors" {
                let (mut r, warnings) = Trainer::resume(out.clone(), Some(3)).unwrap();
                assert_eq!(warnings.len(), 1);
                r.run(&mut Silent).unwrap();
                assert_eq!(final_model(&out), reference, "{file} {how:?}");
            }
        }
    }
}

#[test]
fn when_every_checkpoint_is_damaged_the_error_is_one_line_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    run(cfg(dir.path()), &out);
    let steps = checkpoints(&out);
    let kinds = [Damage::Truncate, Damage::FlipBit, Damage::Delete];
    let files = ["model.safetensors", "optimizer.safetensors", "trainer.json"];
    for ((step, how), file) in steps.iter().zip(kinds).zip(files) {
        damage(&step.join(file), how);
    }
    let e = checkpoint::latest(&out, &[]).unwrap_err().to_string();
    assert!(!e.contains('\n'), "the message spans lines: {e:?}");
    assert!(e.contains("no usable checkpoint"), "{e}");
    for (step, file) in steps.iter().zip(files) {
        assert!(
            e.contains(&step.join(file).display().to_string()),
            "{e} does not name {}",
            step.join(file).display()
        );
    }
    // Resuming reports the same, and leaves every file as it was.
    let before: Vec<Vec<u8>> = steps
        .iter()
        .flat_map(|s| FILES.iter().map(move |f| s.join(f)))
        .filter(|p| p.exists())
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let e = Trainer::resume(out.clone(), None).unwrap_err();
    assert!(matches!(e, TrainError::Checkpoint(_)), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    let after: Vec<Vec<u8>> = steps
        .iter()
        .flat_map(|s| FILES.iter().map(move |f| s.join(f)))
        .filter(|p| p.exists())
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_checkpoint_of_another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let t = run(cfg(dir.path()), &out);
    let steps = checkpoints(&out);
    let newest = steps.last().unwrap();

    // The manifest's own format tag.
    let mpath = newest.join("MANIFEST.json");
    let original = std::fs::read_to_string(&mpath).unwrap();
    let future = original.replace(CHECKPOINT_FORMAT, "downhill-checkpoint/2");
    assert_ne!(future, original);
    std::fs::write(&mpath, &future).unwrap();
    let e = checkpoint::read(newest, t.network().tensors())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&mpath.display().to_string())
            && e.contains("downhill-checkpoint/2")
            && e.contains(CHECKPOINT_FORMAT),
        "{e}"
    );
    std::fs::write(&mpath, &original).unwrap();

    // trainer.json's format tag, with a manifest that vouches for the
    // changed file: the version check does not rely on the checksum.
    let tpath = newest.join("trainer.json");
    let trainer = std::fs::read_to_string(&tpath).unwrap();
    let changed = trainer.replace(CHECKPOINT_FORMAT, "downhill-checkpoint/0");
    std::fs::write(&tpath, &changed).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&original).unwrap();
    manifest["files"]["trainer.json"] = serde_json::json!({
        "bytes": changed.len(),
        "sha256": sha256_hex(changed.as_bytes()),
    });
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let e = checkpoint::read(newest, t.network().tensors())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&tpath.display().to_string()) && e.contains("downhill-checkpoint/0"),
        "{e}"
    );
    let (used, _, warnings) = checkpoint::latest(&out, t.network().tensors()).unwrap();
    assert_eq!(used, steps[steps.len() - 2]);
    assert_eq!(warnings.len(), 1);
}

#[test]
fn only_the_newest_checkpoints_are_kept_and_interrupted_writes_are_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let c = TrainConfig {
        keep_checkpoints: 2,
        ..cfg(dir.path())
    };
    let t = run(c.clone(), &out);
    let steps = checkpoints(&out);
    let names: Vec<String> = steps
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // 200 examples in batches of 32: 7 steps an epoch, 21 in all; the last
    // two checkpoints are the mid-epoch one at step 20 and the final one.
    assert_eq!(names, ["step-000000000020", "step-000000000021"]);

    // What a crash in the middle of a write leaves: a temporary folder with
    // some files, and (had the rename happened without a manifest) a step
    // folder that does not verify. Neither is taken for a checkpoint.
    let root = checkpoint::checkpoints_dir(&out);
    let tmp = root.join(".tmp-step-000000000022-999999");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::write(tmp.join("model.safetensors"), b"partial").unwrap();
    let torn = root.join("step-000000000023");
    std::fs::create_dir(&torn).unwrap();
    std::fs::copy(
        steps[1].join("model.safetensors"),
        torn.join("model.safetensors"),
    )
    .unwrap();
    let (used, _, warnings) = checkpoint::latest(&out, t.network().tensors()).unwrap();
    assert_eq!(used, steps[1]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&torn.join("MANIFEST.json").display().to_string()),
        "{warnings:?}"
    );

    // The next write (here: continuing to epoch 4) clears the leftovers and
    // keeps two checkpoints.
    let (mut r, _) = Trainer::resume(out.clone(), Some(4)).unwrap();
    r.run(&mut Silent).unwrap();
    assert!(
        !tmp.exists(),
        "an interrupted write's folder is left behind"
    );
    let names: Vec<String> = checkpoints(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[1], "step-000000000028");
}

/// Writes checkpoint `c` again as if the run were at `step`.
fn write_at(
    out: &Path,
    t: &Trainer,
    c: &checkpoint::Checkpoint,
    step: u64,
    keep: usize,
) -> PathBuf {
    let mut state = c.trainer.clone();
    state.step = step;
    checkpoint::write(
        out,
        &c.params,
        None,
        &[],
        t.network().tensors(),
        &c.optimizer,
        &state,
        keep,
    )
    .unwrap()
}

#[test]
fn checkpoints_of_later_steps_are_removed_when_an_earlier_step_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let t = run(cfg(dir.path()), &out);
    let tensors = t.network().tensors();
    let (_, c, _) = checkpoint::latest(&out, tensors).unwrap();
    let root = checkpoint::checkpoints_dir(&out);
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    // A damaged newest checkpoint (step 30) made a resume fall back; the
    // resumed run then writes step 25 with keep = 1. The new checkpoint must
    // survive (it used to be pruned in favour of the damaged step 30, which
    // left no usable checkpoint at all).
    write_at(&out, &t, &c, 30, 1);
    damage(
        &root.join("step-000000000030/trainer.json"),
        Damage::FlipBit,
    );
    let written = write_at(&out, &t, &c, 25, 1);
    assert_eq!(names(), ["step-000000000025"]);
    let (used, _, warnings) = checkpoint::latest(&out, tensors).unwrap();
    assert_eq!((used, warnings.len()), (written, 0));

    // A valid later checkpoint from a history the run has left (it went back
    // after a divergence) is removed too, so a crash cannot resume from it.
    write_at(&out, &t, &c, 40, 3);
    write_at(&out, &t, &c, 35, 3);
    assert_eq!(names(), ["step-000000000025", "step-000000000035"]);
    let (used, ckpt, _) = checkpoint::latest(&out, tensors).unwrap();
    assert_eq!(
        (used.file_name().unwrap().to_str(), ckpt.trainer.step),
        (Some("step-000000000035"), 35)
    );
}

#[test]
fn rewriting_a_step_replaces_it_and_a_crash_in_between_leaves_a_whole_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let t = run(cfg(dir.path()), &out);
    let tensors = t.network().tensors();
    let (_, mut c, _) = checkpoint::latest(&out, tensors).unwrap();
    let root = checkpoint::checkpoints_dir(&out);

    // The same step written twice (L-BFGS epochs that take no iteration, a
    // back-off): the second write wins and keeps the plain name.
    write_at(&out, &t, &c, 50, 3);
    c.trainer.backoffs = 1;
    let again = write_at(&out, &t, &c, 50, 3);
    assert_eq!(again, root.join("step-000000000050"));
    assert!(!root.join("step-000000000050.1").exists());
    let (used, ckpt, _) = checkpoint::latest(&out, tensors).unwrap();
    assert_eq!((used, ckpt.trainer.backoffs), (again.clone(), 1));

    // What a crash during a rewrite leaves: the new generation beside the old
    // folder (or the old folder half deleted). The new one is taken.
    copy_dir(&again, &root.join("step-000000000050.1"));
    c.trainer.backoffs = 2;
    let next = root.join("step-000000000050.1");
    let state = checkpoint::read(&next, tensors).unwrap();
    assert_eq!(state.trainer.backoffs, 1);
    std::fs::remove_file(again.join("model.safetensors")).unwrap();
    let (used, _, warnings) = checkpoint::latest(&out, tensors).unwrap();
    assert_eq!((used, warnings.len()), (next, 0));
    // The next write of that step tidies up: one folder, the plain name.
    let last = write_at(&out, &t, &c, 50, 3);
    assert_eq!(last, again);
    assert!(!root.join("step-000000000050.1").exists());
    assert!(!root.join("step-000000000050.2").exists());
    assert_eq!(
        checkpoint::read(&last, tensors).unwrap().trainer.backoffs,
        2
    );
}

#[test]
fn a_huge_file_in_a_checkpoint_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let t = run(cfg(dir.path()), &out);
    let steps = checkpoints(&out);
    let newest = steps.last().unwrap();
    // Sparse files of a terabyte: no disk space, but reading one whole
    // would need a terabyte of memory (it used to abort the process).
    let tb = 1u64 << 40;
    let model = newest.join("model.safetensors");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&model)
        .unwrap()
        .set_len(tb)
        .unwrap();
    let e = checkpoint::read(newest, t.network().tensors())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&model.display().to_string())
            && e.contains(&format!("{tb} bytes, the manifest says"))
            && e.contains("more than was written"),
        "{e}"
    );
    let manifest = steps[steps.len() - 2].join("MANIFEST.json");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&manifest)
        .unwrap()
        .set_len(tb)
        .unwrap();
    let e = checkpoint::read(&steps[steps.len() - 2], t.network().tensors())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&manifest.display().to_string()) && e.contains("not a checkpoint manifest"),
        "{e}"
    );
    let (used, _, warnings) = checkpoint::latest(&out, t.network().tensors()).unwrap();
    assert_eq!((used, warnings.len()), (steps[steps.len() - 3].clone(), 2));
}
