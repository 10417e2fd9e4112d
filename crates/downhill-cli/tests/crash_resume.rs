//! Kill `downhill train` with SIGKILL at random moments (during start-up,
//! mid-epoch, during checkpoint writes), resume it each time with `--resume`
//! until it finishes, and check that the result is bit-identical to a run that
//! was never interrupted, and that after every kill the newest checkpoint
//! verifies and loads.
//!
//! A kill before the first checkpoint exists leaves nothing to resume:
//! `--resume` then fails with one line saying there is no usable checkpoint,
//! and the run is started again from scratch in the same `--out` folder (it
//! may hold `checkpoints/` with only an interrupted write, which does not
//! count as a run to protect).
//!
//! Kill times come from a seeded generator (`CRASH_SEED`, default 1), so a
//! failure can be replayed; the times themselves still depend on the machine.

mod common;

use common::without_times;
use downhill::Rng;
use downhill_nn::{InputShape, ModelSpec, Network, TensorInfo};
use downhill_train::checkpoint;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MLP: &str = "mlp:16:dropout=0.2";

/// The Adam run: Fashion-MNIST (built in, 600 training and 100 test images),
/// an MLP with dropout (so the RNG state matters), 19 steps an epoch,
/// checkpoints every 3 steps and at every epoch's end.
fn adam_args(out: &Path) -> Vec<String> {
    train_args(
        out,
        &[
            "--model",
            MLP,
            "--optimizer",
            "adam(lr=0.01)",
            "--batch-size",
            "32",
            "--epochs",
            "5",
            "--checkpoint-every",
            "3",
        ],
    )
}

/// The L-BFGS run: logistic regression, full batch, one checkpoint an epoch.
/// It converges in epoch 3 (step 10), so epochs 3 to 8 all end at step 10 and
/// each rewrites that step's checkpoint: kills land in those rewrites too.
fn lbfgs_args(out: &Path) -> Vec<String> {
    train_args(
        out,
        &[
            "--model",
            "logreg",
            "--optimizer",
            "lbfgs(max_iter=4,tolerance_grad=0.02)",
            "--batch-size",
            "0",
            "--epochs",
            "8",
        ],
    )
}

/// The lazy run: sparse LIBSVM data (1500 training examples, 8 of 3000
/// features each), an MLP with input dropout, Adam with lazy row-sparse
/// updates of the first layer and gradient clipping, 3 epochs of 47 steps,
/// checkpoints every 3 steps.
fn lazy_args(out: &Path) -> Vec<String> {
    let data = sparse_data();
    train_args(
        out,
        &[
            "--data",
            &data,
            "--model",
            SPARSE_MLP,
            "--optimizer",
            "adam(lr=0.01)",
            "--sparse-updates",
            "lazy",
            "--clip-norm",
            "1",
            "--batch-size",
            "32",
            "--epochs",
            "3",
            "--checkpoint-every",
            "3",
        ],
    )
}

const SPARSE_MLP: &str = "mlp:16:input-dropout=0.2";
const SPARSE_DIM: usize = 3000;

/// The lazy run's data spec: files written once per test process under
/// Cargo's temporary folder (the same bytes every time).
fn sparse_data() -> String {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-resume-sparse");
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = Rng::new(3);
        let mut paths = Vec::new();
        for (name, n) in [("train.svm", 1500), ("test.svm", 300)] {
            let mut text = String::new();
            for _ in 0..n {
                let mut idx: Vec<u64> = (0..8).map(|_| 1 + rng.below(SPARSE_DIM as u64)).collect();
                idx.sort_unstable();
                idx.dedup();
                let even = idx.iter().filter(|&&j| j % 2 == 0).count();
                text += if 2 * even > idx.len() { "1" } else { "-1" };
                for j in idx {
                    text += &format!(" {j}:1");
                }
                text.push('\n');
            }
            // The highest feature present sets the dimension: make it SPARSE_DIM.
            text += &format!("1 {SPARSE_DIM}:1\n");
            let path = dir.join(name);
            let tmp = dir.join(format!("{name}.{}", std::process::id()));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            paths.push(path.display().to_string());
        }
        format!("libsvm:{}", paths.join(","))
    })
    .clone()
}

/// Arguments of a run writing to `out`: the built-in data (unless `extra`
/// names other data), then `extra`.
fn train_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let data: &[&str] = if extra.contains(&"--data") {
        &[]
    } else {
        &[
            "--data",
            "builtin:fashion-mnist-small",
            "--limit-train",
            "600",
            "--limit-test",
            "100",
        ]
    };
    let mut a: Vec<String> = ["train"]
        .into_iter()
        .chain(data.iter().copied())
        .chain([
            "--keep-checkpoints",
            "2",
            "--seed",
            "7",
            "--threads",
            "1",
            "--quiet",
        ])
        .map(String::from)
        .collect();
    a.extend(extra.iter().map(|x| x.to_string()));
    a.push("--out".into());
    a.push(out.display().to_string());
    a
}

fn resume_args(out: &Path) -> Vec<String> {
    vec![
        "train".into(),
        "--resume".into(),
        out.display().to_string(),
        "--quiet".into(),
    ]
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// The tensors of `model` on 28x28 images of 10 classes (or, for the lazy
/// run's model, on its sparse data), to read checkpoints as the trainer does.
fn tensors(model: &str) -> Vec<TensorInfo> {
    let spec: ModelSpec = model.parse().unwrap();
    let (shape, classes) = if model == SPARSE_MLP {
        (InputShape::Flat(SPARSE_DIM), 2)
    } else {
        (
            InputShape::Image {
                channels: 1,
                height: 28,
                width: 28,
            },
            10,
        )
    };
    Network::<f32>::new(&spec, shape, classes, 7)
        .unwrap()
        .tensors()
        .to_vec()
}

/// The newest checkpoint folder (by name, which orders by step here).
fn newest_checkpoint(out: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(checkpoint::checkpoints_dir(out))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("step-")
        })
        .collect();
    v.sort();
    v.pop().expect("a finished run has a checkpoint")
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| without_times(serde_json::from_str(l).unwrap()))
        .collect()
}

fn json_file(path: &Path) -> Value {
    without_times(serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
}

/// Everything that must be bit-identical (or identical up to times) between
/// an interrupted run and the reference.
fn compare_with_reference(reference: &Path, out: &Path) {
    let (a, b) = (newest_checkpoint(reference), newest_checkpoint(out));
    // `step-N.G` is step N too: a kill inside the rewrite of a step's
    // checkpoint (after the old folder went, before the rename) leaves the
    // whole new one under that name, and a resume that finds the run already
    // complete has nothing left to write.
    let step = |p: &Path| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        name.split('.').next().unwrap().to_string()
    };
    assert_eq!(step(&a), step(&b), "the final step differs");
    for f in [
        "model.safetensors",
        "optimizer.safetensors",
        "optimizer.json",
    ] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} of the final checkpoint differs from the uninterrupted run's"
        );
    }
    assert_eq!(
        json_file(&a.join("trainer.json")),
        json_file(&b.join("trainer.json")),
        "trainer.json differs beyond times"
    );
    assert_eq!(
        json_lines(&reference.join("metrics.jsonl")),
        json_lines(&out.join("metrics.jsonl")),
        "metrics.jsonl differs beyond times"
    );
    assert_eq!(
        std::fs::read_to_string(reference.join("steps.csv")).unwrap(),
        std::fs::read_to_string(out.join("steps.csv")).unwrap(),
        "steps.csv differs"
    );
    assert_eq!(
        json_file(&reference.join("summary.json")),
        json_file(&out.join("summary.json")),
        "summary.json differs beyond times"
    );
}

/// What the kills hit, for the report at the end and the coverage checks.
#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    /// Killed before the run's first checkpoint existed (restarted afresh).
    before_first_checkpoint: usize,
    /// Killed with a checkpoint write under way (a `.tmp-*` folder remained).
    during_checkpoint_write: usize,
    /// Killed while a step's checkpoint was being replaced (a `step-N.G`
    /// folder remained).
    during_rewrite: usize,
    /// Resumed from a checkpoint taken in the middle of an epoch.
    resumed_mid_epoch: usize,
    /// Resumed from a checkpoint at an epoch's end.
    resumed_at_epoch_end: usize,
    restarts: usize,
    completed_runs: usize,
}

/// After a kill: whatever is on disk, the newest checkpoint (if any) must
/// verify, with no damaged folder skipped on the way, and must not be older
/// than the one the attempt started from.
fn check_after_kill(
    out: &Path,
    tensors: &[TensorInfo],
    since: u64,
    tally: &mut Tally,
) -> Option<u64> {
    let root = checkpoint::checkpoints_dir(out);
    let names: Vec<String> = std::fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if names.iter().any(|n| n.starts_with(".tmp-")) {
        tally.during_checkpoint_write += 1;
    }
    if names
        .iter()
        .any(|n| n.starts_with("step-") && n.contains('.'))
    {
        tally.during_rewrite += 1;
    }
    match checkpoint::latest(out, tensors) {
        Ok((dir, ckpt, warnings)) => {
            assert!(
                warnings.is_empty(),
                "a kill left a damaged checkpoint folder: {warnings:?}"
            );
            assert!(
                ckpt.trainer.step >= since,
                "{}: step {} is older than step {since} the attempt resumed from",
                dir.display(),
                ckpt.trainer.step
            );
            if ckpt.trainer.batch > 0 {
                tally.resumed_mid_epoch += 1;
            } else {
                tally.resumed_at_epoch_end += 1;
            }
            Some(ckpt.trainer.step)
        }
        Err(e) => {
            // No checkpoint yet: there must be no step folder at all.
            let steps = std::fs::read_dir(&root)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().starts_with("step-"))
                        .count()
                })
                .unwrap_or(0);
            assert_eq!(steps, 0, "step folders exist but none loads: {e}");
            None
        }
    }
}

/// Kills and resumes runs of `args` until `min_kills` kills and two
/// completed runs (or the time budget); returns what the kills hit.
/// Kills and resumes whole runs until at least `min_kills` kills and every
/// kind of kill `wanted` asks for have happened (or `budget` is spent), and
/// at least two runs completed.
fn campaign(
    args_of: fn(&Path) -> Vec<String>,
    model: &str,
    min_kills: usize,
    wanted: fn(&Tally) -> bool,
    budget: Duration,
) -> Tally {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let tensors = tensors(model);

    // The uninterrupted reference, timed to spread the kills over a run.
    let reference = dir.path().join("reference");
    let started = Instant::now();
    let out = spawn(&args_of(&reference)).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_time = started.elapsed();

    let test_started = Instant::now();
    let mut tally = Tally::default();
    // Whole runs, each killed until it completes, until enough kills and at
    // least two completed runs, or the time budget is spent.
    while tally.completed_runs < 2
        || ((tally.kills < min_kills || !wanted(&tally)) && test_started.elapsed() < budget)
    {
        assert!(
            test_started.elapsed() < budget * 2,
            "runs do not complete: {tally:?}"
        );
        tally.restarts += 1;
        let out = dir.path().join(format!("run{}", tally.restarts));
        let mut args = args_of(&out);
        let mut resumed_from: u64 = 0;
        let mut kills_this_run = 0;
        loop {
            let mut child = spawn(&args);
            // A quarter of the kills come within the first 20 ms (start-up,
            // the first checkpoint); the others anywhere in a run's length
            // (a resumed process has less left to do and may finish first).
            // After 15 kills a run is let finish, so every run completes.
            let kill_after = if kills_this_run >= 15 {
                None
            } else if rng.uniform() < 0.25 {
                Some(Duration::from_secs_f64(0.020 * rng.uniform()))
            } else {
                Some(run_time.mul_f64(rng.uniform()))
            };
            let deadline = kill_after.map(|k| Instant::now() + k);
            let finished = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break None;
                }
                std::thread::sleep(Duration::from_micros(200));
            };
            if let Some(status) = finished {
                let mut stderr = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                assert!(status.success(), "{}: {stderr}", args.join(" "));
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            tally.kills += 1;
            kills_this_run += 1;
            match check_after_kill(&out, &tensors, resumed_from, &mut tally) {
                Some(step) => {
                    resumed_from = step;
                    args = resume_args(&out);
                }
                None => {
                    // Nothing to resume: say so clearly, then start afresh.
                    let r = Command::new(env!("CARGO_BIN_EXE_downhill"))
                        .args(resume_args(&out))
                        .output()
                        .unwrap();
                    let msg = String::from_utf8_lossy(&r.stderr);
                    assert_eq!(r.status.code(), Some(2), "{msg}");
                    assert!(
                        msg.trim().lines().count() == 1
                            && msg.contains("no usable checkpoint")
                            && msg.contains(&out.display().to_string()),
                        "{msg}"
                    );
                    tally.before_first_checkpoint += 1;
                    args = args_of(&out);
                    resumed_from = 0;
                }
            }
        }
        compare_with_reference(&reference, &out);
        tally.completed_runs += 1;
    }
    eprintln!(
        "{}: seed {seed}, uninterrupted run {run_time:?}: {tally:?}",
        args_of(Path::new("OUT")).join(" ")
    );
    tally
}

#[test]
fn killed_at_random_moments_and_resumed_the_run_ends_bit_identically() {
    // Kills land where they land: the campaign goes on (within its budget)
    // until every kind below has happened, so that a loaded machine does
    // not leave one out by chance.
    let every_kind = |t: &Tally| {
        t.during_checkpoint_write > 0
            && t.before_first_checkpoint > 0
            && t.resumed_mid_epoch > 0
            && t.resumed_at_epoch_end > 0
    };
    let tally = campaign(adam_args, MLP, 60, every_kind, Duration::from_secs(90));
    assert!(tally.kills >= 20, "{tally:?}");
    assert!(
        tally.during_checkpoint_write > 0,
        "no kill landed in a checkpoint write: {tally:?}"
    );
    assert!(
        tally.before_first_checkpoint > 0,
        "no kill landed before the first checkpoint: {tally:?}"
    );
    assert!(
        tally.resumed_mid_epoch > 0,
        "no kill was resumed mid-epoch: {tally:?}"
    );
    assert!(
        tally.resumed_at_epoch_end > 0,
        "no kill was resumed from an epoch's end: {tally:?}"
    );
}

#[test]
fn killed_lazy_sparse_runs_resume_bit_identically() {
    let tally = campaign(
        lazy_args,
        SPARSE_MLP,
        30,
        |t| t.resumed_mid_epoch > 0,
        Duration::from_secs(20),
    );
    assert!(tally.kills >= 10, "{tally:?}");
    assert!(
        tally.resumed_mid_epoch > 0 && tally.completed_runs >= 2,
        "{tally:?}"
    );
}

#[test]
fn killed_lbfgs_runs_that_rewrite_a_step_resume_bit_identically() {
    let tally = campaign(
        lbfgs_args,
        "logreg",
        30,
        |t| t.resumed_at_epoch_end > 0,
        Duration::from_secs(20),
    );
    assert!(tally.kills >= 10, "{tally:?}");
    assert!(
        tally.resumed_at_epoch_end > 0 && tally.completed_runs >= 2,
        "{tally:?}"
    );
}

/// Resuming from a checkpoint taken mid-epoch must leave `steps.csv` as an
/// uninterrupted run writes it. Deterministic: the newer checkpoints of a
/// finished run are removed, so the resume starts mid-epoch.
#[test]
fn steps_csv_survives_a_mid_epoch_resume() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    assert!(spawn(&adam_args(&reference)).wait().unwrap().success());
    let out = dir.path().join("run");
    let mut args = adam_args(&out);
    let at = args.iter().position(|a| a == "--keep-checkpoints").unwrap();
    args[at + 1] = "100".into();
    assert!(spawn(&args).wait().unwrap().success());
    // Epochs end at steps 19, 38, 57, 76 and 95; the checkpoint at step 78
    // is 2 steps into epoch 5. Everything newer goes.
    let root = checkpoint::checkpoints_dir(&out);
    for e in std::fs::read_dir(&root).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().as_ref() > "step-000000000078" {
            std::fs::remove_dir_all(path).unwrap();
        }
    }
    let (_, ckpt, _) = checkpoint::latest(&out, &tensors(MLP)).unwrap();
    assert_eq!((ckpt.trainer.step, ckpt.trainer.batch), (78, 2));
    let r = spawn(&resume_args(&out)).wait_with_output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        std::fs::read_to_string(reference.join("steps.csv")).unwrap(),
        std::fs::read_to_string(out.join("steps.csv")).unwrap(),
        "steps.csv differs"
    );
}
