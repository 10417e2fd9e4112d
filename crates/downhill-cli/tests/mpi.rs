//! `mpirun -n N downhill train ...` (feature `mpi`): data-parallel runs
//! against one process, reruns, sharded against unsharded, resumes from N
//! ranks to M, and failures of one rank. Each job runs under a timeout
//! (a mismatched collective would hang, not fail), over shared memory or
//! over TCP on loopback. Jobs run one at a time: the machine may have two
//! cores.
#![cfg(feature = "mpi")]

mod common;

use common::mpi::{downhill_on, mpirun, spawn, wait, Transport, BIN, DATA, JOBS};
use downhill_testenv::copy_dir;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs `downhill train ARGS` on `ranks` ranks (1: a plain process, no
/// mpirun) and checks that it succeeded.
fn train(ranks: usize, transport: Transport, args: &[&str]) -> Output {
    let _one = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = downhill_on(ranks, transport);
    c.arg("train").args(args).arg("--quiet");
    let what = format!("{ranks} ranks over {transport:?}: train {}", args.join(" "));
    let out = wait(spawn(c), Duration::from_secs(240), &what);
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn records(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn last(out: &Path, key: &str) -> f64 {
    records(out).last().expect("an epoch")[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {}", out.display()))
}

/// The newest checkpoint's weights and optimiser state, as bytes.
fn newest_state(out: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .expect("checkpoints/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("MANIFEST.json").exists())
        .collect();
    dirs.sort();
    let d = dirs.last().expect("a checkpoint");
    (
        std::fs::read(d.join("model.safetensors")).expect("model"),
        std::fs::read(d.join("optimizer.safetensors")).expect("optimizer"),
    )
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

fn dir(tmp: &tempfile::TempDir, name: &str) -> String {
    tmp.path().join(name).to_str().unwrap().to_string()
}

fn args<'a>(out: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--data", DATA, "--out", out];
    a.extend_from_slice(rest);
    a
}

/// Logistic regression is convex, so rounding does not grow: 2 ranks (each
/// summing its half of every batch, the halves added in rank order) end 2
/// epochs within 1e-4 of one process.
#[test]
fn logreg_on_two_ranks_matches_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let run = ["--model", "logreg", "--optimizer", "adam", "--epochs", "2"];
    let (one, two) = (dir(&tmp, "one"), dir(&tmp, "two"));
    train(1, Transport::Shm, &args(&one, &run));
    train(2, Transport::Shm, &args(&two, &run));
    let (a, b) = (
        last(Path::new(&one), "train_loss"),
        last(Path::new(&two), "train_loss"),
    );
    assert!(rel(b, a) < 1e-4, "train loss: 2 ranks {b}, 1 process {a}");
    let comm = &records(Path::new(&two))[0]["comm"];
    assert_eq!(comm["ranks"], 2);
    // Each rank receives half the gradient (the other's half of its shard)
    // and half the sums: 2·(N−1)/N of the 7850 parameters' bytes per step.
    let steps = records(Path::new(&two))[0]["step"].as_u64().unwrap();
    assert_eq!(comm["bytes_received"].as_u64().unwrap(), steps * 7850 * 4);
}

/// The MLP over TCP: 2 ranks end within 1e-2 of one process in train loss
/// and within 0.3 points in test accuracy.
#[test]
fn mlp_on_two_ranks_over_tcp_matches_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let run = ["--model", "mlp:128", "--optimizer", "adam", "--epochs", "2"];
    let (one, two) = (dir(&tmp, "one"), dir(&tmp, "two"));
    train(1, Transport::Shm, &args(&one, &run));
    train(2, Transport::Tcp, &args(&two, &run));
    let (one, two) = (Path::new(&one), Path::new(&two));
    let (a, b) = (last(one, "train_loss"), last(two, "train_loss"));
    assert!(rel(b, a) < 1e-2, "train loss: 2 ranks {b}, 1 process {a}");
    let (a, b) = (last(one, "test_accuracy"), last(two, "test_accuracy"));
    assert!(
        (a - b).abs() <= 0.003 + 1e-12,
        "test accuracy: 2 ranks {b}, 1 process {a}"
    );
}

/// The same job twice (3 ranks, dropout, so the per-rank masks count) gives
/// the same bits, over either transport: weights, optimiser state, losses.
#[test]
fn reruns_with_the_same_ranks_are_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let run = [
        "--model",
        "mlp:64,32:dropout=0.2",
        "--optimizer",
        "adamw",
        "--batch-size",
        "100",
        "--epochs",
        "2",
    ];
    let outs: Vec<String> = ["a", "b", "c"].iter().map(|n| dir(&tmp, n)).collect();
    train(3, Transport::Shm, &args(&outs[0], &run));
    train(3, Transport::Shm, &args(&outs[1], &run));
    train(3, Transport::Tcp, &args(&outs[2], &run));
    let first = newest_state(Path::new(&outs[0]));
    let losses = |o: &str| -> Vec<f64> {
        records(Path::new(o))
            .iter()
            .map(|r| r["train_loss"].as_f64().unwrap())
            .collect()
    };
    for o in &outs[1..] {
        assert!(
            newest_state(Path::new(o)) == first,
            "{o} differs from {}",
            outs[0]
        );
        assert_eq!(losses(o), losses(&outs[0]));
    }
}

/// ZeRO-1: each rank keeps the state of its own whole tensors. The sums are
/// added in the same order as unsharded, so weights and the (gathered)
/// optimiser state are bit-identical, for an element-wise rule (Adam) and
/// for tensor-level ones (Adafactor's row and column factors, LAMB's norms,
/// and `muon` alone: Muon's Newton–Schulz on whole hidden matrices, AdamW on
/// the rest, a partition whose parts the ranks split), and SOAP's and
/// Shampoo's factor matrices, eigenbases and inverse roots.
#[test]
fn sharded_optimizer_state_gives_the_unsharded_bits() {
    let tmp = tempfile::tempdir().unwrap();
    for (ranks, opt, transport) in [
        (3, "adam", Transport::Shm),
        (2, "adafactor", Transport::Tcp),
        (2, "lamb(lr=0.01)", Transport::Shm),
        (3, "muon", Transport::Shm),
        // Kronecker factors and eigenbases: each rank refreshes only the
        // tensors it owns, staggered or not.
        (
            2,
            "partition(hidden=soap(precondition_frequency=3,stagger=true),all=adamw)",
            Transport::Shm,
        ),
        (
            3,
            "shampoo(lr=0.01,precondition_frequency=2,start_preconditioning_step=3,grafting=adam)",
            Transport::Shm,
        ),
    ] {
        let run = [
            "--model",
            "mlp:64,32",
            "--optimizer",
            opt,
            "--epochs",
            "2",
            "--clip-norm",
            "1",
        ];
        let plain = dir(&tmp, &format!("{opt}-plain"));
        let sharded = dir(&tmp, &format!("{opt}-sharded"));
        train(ranks, transport, &args(&plain, &run));
        let mut s = args(&sharded, &run);
        s.push("--shard-optimizer-state");
        train(ranks, transport, &s);
        assert!(
            newest_state(Path::new(&plain)) == newest_state(Path::new(&sharded)),
            "{opt} on {ranks} ranks: sharded and unsharded checkpoints differ"
        );
        assert_eq!(records(Path::new(&sharded))[1]["comm"]["sharded"], true);
    }
}

/// A checkpoint of 2 sharded ranks resumes on 2 ranks bit-identically to a
/// run never stopped, and on 3 ranks or in one process within rounding.
#[test]
fn a_checkpoint_of_n_ranks_resumes_on_m() {
    let tmp = tempfile::tempdir().unwrap();
    let run = ["--model", "mlp:64,32", "--optimizer", "adam", "--epochs"];
    let whole = dir(&tmp, "whole");
    let mut a = args(&whole, &run);
    a.extend(["2", "--shard-optimizer-state"]);
    train(2, Transport::Shm, &a);
    let half = dir(&tmp, "half");
    let mut a = args(&half, &run);
    a.extend(["1", "--shard-optimizer-state"]);
    train(2, Transport::Shm, &a);
    let target = newest_state(Path::new(&whole));
    let target_loss = last(Path::new(&whole), "train_loss");
    for (ranks, shard) in [(2, true), (3, false), (1, false)] {
        let out = tmp.path().join(format!("resume-{ranks}"));
        copy_dir(Path::new(&half), &out);
        let mut a = vec!["--resume", out.to_str().unwrap(), "--epochs", "2"];
        if shard {
            a.push("--shard-optimizer-state");
        }
        train(ranks, Transport::Shm, &a);
        assert_eq!(records(&out).len(), 2, "{ranks} ranks");
        if ranks == 2 {
            assert!(
                newest_state(&out) == target,
                "2 → 2 ranks is not bit-identical"
            );
        } else {
            let l = last(&out, "train_loss");
            assert!(
                rel(l, target_loss) < 1e-4,
                "2 → {ranks}: {l} against {target_loss}"
            );
        }
    }
}

/// By steps on 2 ranks: `--steps 20 --eval-every 10` (10 batches an
/// epoch) gives the bits of `--epochs 2`, and a run of 10 steps resumed to
/// 20 (sharded) the same bits again.
#[test]
fn steps_on_two_ranks_train_as_epochs_and_resume_bit_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let small = [
        "--model",
        "mlp:16:dropout=0.2",
        "--batch-size",
        "32",
        "--limit-train",
        "300",
        "--limit-test",
        "100",
    ];
    let run = |name: &str, rest: &[&str]| -> PathBuf {
        let out = dir(&tmp, name);
        let mut a = args(&out, &small);
        a.extend_from_slice(rest);
        train(2, Transport::Shm, &a);
        PathBuf::from(out)
    };
    let epochs = run("epochs", &["--epochs", "2"]);
    let steps = run("steps", &["--steps", "20", "--eval-every", "10"]);
    assert!(newest_state(&epochs) == newest_state(&steps));
    let half = run(
        "half",
        &[
            "--steps",
            "10",
            "--eval-every",
            "10",
            "--shard-optimizer-state",
        ],
    );
    let resume = [
        "--resume",
        half.to_str().unwrap(),
        "--steps",
        "20",
        "--shard-optimizer-state",
    ];
    train(2, Transport::Shm, &resume);
    assert!(newest_state(&half) == newest_state(&steps));
    let at: Vec<u64> = records(&half)
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(at, [10, 20]);
}

/// Pids of the processes this test's job started as `rank`: their
/// environment holds the test's tag (passed with `mpirun -x`) and the rank.
fn rank_pids(tag: &str, rank: usize) -> Vec<u32> {
    let want_tag = format!("DOWNHILL_MPI_TEST_TAG={tag}");
    let want_rank = format!("OMPI_COMM_WORLD_RANK={rank}");
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
        if vars.contains(&want_tag.as_bytes()) && vars.contains(&want_rank.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// A rank killed mid-epoch ends the job in under 30 s, with the rank named;
/// the newest checkpoint stays whole and resumes in one process.
#[test]
fn a_killed_rank_ends_the_job_with_the_rank_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dir(&tmp, "run");
    let tag = format!("{}-{}", std::process::id(), line!());
    let _one = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = mpirun(2, Transport::Shm);
    c.env("DOWNHILL_MPI_TEST_TAG", &tag)
        .args(["-x", "DOWNHILL_MPI_TEST_TAG", BIN, "train", "--quiet"])
        .args(args(
            &out,
            &[
                "--model",
                "mlp:256,256",
                "--epochs",
                "1000",
                "--batch-size",
                "32",
            ],
        ));
    let child = spawn(c);
    // Wait for the first epoch's checkpoint, then kill rank 1 mid-epoch.
    let start = Instant::now();
    while !Path::new(&out).join("metrics.jsonl").exists() || records(Path::new(&out)).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no epoch ended in 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pids = rank_pids(&tag, 1);
    assert_eq!(pids.len(), 1, "rank 1's process: {pids:?}");
    let killed = Instant::now();
    // SAFETY: `kill` with a pid this test found and SIGKILL only sends a
    // signal; it touches no memory of this process.
    let rc = unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill rank 1");
    let done = wait(child, Duration::from_secs(60), "the job after a kill");
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the job took {took:?} to end"
    );
    assert!(!done.status.success());
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(err.contains("rank 1"), "stderr names no rank:\n{err}");
    drop(_one);
    // The newest checkpoint resumes (in one process, one more epoch).
    let epochs = records(Path::new(&out)).len();
    let more = (epochs + 1).to_string();
    let resumed = train(1, Transport::Shm, &["--resume", &out, "--epochs", &more]);
    assert!(resumed.status.success());
}

/// A rank that cannot read its data ends the job at once with its rank and
/// the cause; the other rank, already waiting in a collective, does not hang.
#[test]
fn a_rank_that_cannot_read_its_data_ends_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dir(&tmp, "run");
    let missing = tmp.path().join("missing.svm");
    let good = tmp.path().join("good.svm");
    std::fs::write(&good, "1 1:0.5 2:1\n0 1:1 3:0.25\n1 2:0.5\n0 3:1\n").unwrap();
    let _one = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    // MPMD: rank 0 gets the good file, rank 1 a path that does not exist.
    let mut c = mpirun(1, Transport::Shm);
    let data = |p: &Path| format!("libsvm:{}", p.display());
    c.args([
        BIN,
        "train",
        "--quiet",
        "--epochs",
        "50",
        "--out",
        &out,
        "--data",
        &data(&good),
    ])
    .args([
        ":",
        "-n",
        "1",
        BIN,
        "train",
        "--quiet",
        "--epochs",
        "50",
        "--data",
        &data(&missing),
    ]);
    let start = Instant::now();
    let done = wait(
        spawn(c),
        Duration::from_secs(60),
        "a job with a missing file",
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert!(!done.status.success());
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.contains("error: rank 1 of 2") && err.contains("missing.svm"),
        "stderr:\n{err}"
    );
}

/// Runs a job that must fail; returns its standard error.
fn failing(ranks: usize, args: &[&str]) -> String {
    let _one = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = downhill_on(ranks, Transport::Shm);
    c.arg("train").args(args).arg("--quiet");
    let out = wait(spawn(c), Duration::from_secs(60), &args.join(" "));
    assert!(!out.status.success(), "{} succeeded", args.join(" "));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What sharding cannot do is refused with the reason, not a hang: fewer
/// tensors than ranks, prodigy (its step size sums over every tensor),
/// lookahead around a partition, sharding without ranks, and the
/// one-process optimisers under mpirun.
#[test]
fn what_cannot_be_sharded_or_distributed_is_refused_with_a_reason() {
    let base = ["--data", DATA, "--epochs", "1", "--limit-train", "256"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        a
    };
    let cases: [(usize, Vec<&str>, &str); 6] = [
        (
            3,
            with(&["--model", "logreg", "--shard-optimizer-state"]),
            "needs a tensor for every rank: 2 tensors, 3 ranks",
        ),
        (
            2,
            with(&[
                "--model",
                "mlp:32",
                "--optimizer",
                "prodigy",
                "--shard-optimizer-state",
            ]),
            "prodigy sums over every tensor before it steps",
        ),
        (
            2,
            with(&[
                "--model",
                "mlp:32",
                "--optimizer",
                "partition(hidden=prodigy,all=adamw)",
                "--shard-optimizer-state",
            ]),
            "prodigy sums over every tensor before it steps",
        ),
        (
            2,
            with(&[
                "--model",
                "mlp:32",
                "--optimizer",
                "lookahead(muon)",
                "--shard-optimizer-state",
            ]),
            "wraps a partition",
        ),
        (
            1,
            with(&["--model", "logreg", "--shard-optimizer-state"]),
            "--shard-optimizer-state shards across the ranks of an MPI job",
        ),
        (
            2,
            with(&["--model", "logreg", "--optimizer", "lbfgs"]),
            "lbfgs runs full-batch in one process",
        ),
    ];
    for (ranks, args, want) in cases {
        let err = failing(ranks, &args);
        assert!(
            err.contains(want),
            "{ranks} ranks, {args:?}: no `{want}` in\n{err}"
        );
        if ranks > 1 {
            assert!(err.contains("error: rank 0 of"), "{err}");
        }
    }
}

/// Sharded, rank 0's optimiser holds its own tensors only; the run's header
/// still says which rule takes every tensor, as in one process.
#[test]
fn a_sharded_run_lists_every_tensors_rule() {
    let args = [
        "train",
        "--data",
        DATA,
        "--model",
        "mlp:64,32",
        "--optimizer",
        "muon",
        "--epochs",
        "1",
        "--limit-train",
        "256",
    ];
    let rules = |stderr: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(stderr)
            .lines()
            .filter(|l| {
                l.contains(": muon (lr") || l.contains(": adamw (lr") || l.contains("not trained")
            })
            .map(str::to_string)
            .collect()
    };
    let _one = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let mut alone = Command::new(BIN);
    alone.args(args);
    let alone = wait(spawn(alone), Duration::from_secs(60), "one process");
    let mut sharded = downhill_on(3, Transport::Shm);
    sharded.args(args).arg("--shard-optimizer-state");
    let sharded = wait(spawn(sharded), Duration::from_secs(60), "3 sharded ranks");
    assert!(alone.status.success() && sharded.status.success());
    let want = rules(&alone.stderr);
    assert_eq!(want.len(), 6, "{}", String::from_utf8_lossy(&alone.stderr));
    assert!(want.iter().any(|l| l.contains("hidden: muon")), "{want:?}");
    assert_eq!(rules(&sharded.stderr), want);
}

/// Optimisers that evaluate the model somewhere other than at the
/// parameters (schedule-free's `x`, ASGD's average), alone and inside a
/// partition, sharded on 2 and 3 ranks. With `mlp:64,32`, the hidden matrix
/// lies on the last rank's shard only, so in the partitions only that rank
/// owns an evaluation point: every rank still takes part in the gather (it
/// used to be entered by the owners alone, and the job hung at the first
/// epoch's end), and the evaluation sees the same model as unsharded.
#[test]
fn sharded_evaluation_points_agree_with_unsharded_on_every_rank_count() {
    let tmp = tempfile::tempdir().unwrap();
    for opt in [
        "schedulefree_adamw",
        "asgd",
        "partition(hidden=schedulefree_adamw,all=adamw)",
        "partition(hidden=asgd(t0=2),all=adamw)",
    ] {
        for ranks in [2, 3] {
            let run = [
                "--model",
                "mlp:64,32",
                "--optimizer",
                opt,
                "--epochs",
                "2",
                "--limit-train",
                "1024",
            ];
            let plain = dir(&tmp, &format!("{opt}-{ranks}-plain"));
            let sharded = dir(&tmp, &format!("{opt}-{ranks}-sharded"));
            train(ranks, Transport::Shm, &args(&plain, &run));
            let mut s = args(&sharded, &run);
            s.push("--shard-optimizer-state");
            train(ranks, Transport::Shm, &s);
            let figures = |o: &str| -> Vec<(f64, f64)> {
                records(Path::new(o))
                    .iter()
                    .map(|r| {
                        (
                            r["test_loss"].as_f64().unwrap(),
                            r["test_accuracy"].as_f64().unwrap(),
                        )
                    })
                    .collect()
            };
            assert_eq!(
                figures(&sharded),
                figures(&plain),
                "{opt} on {ranks} ranks: sharded and unsharded evaluations differ"
            );
            assert!(
                newest_state(Path::new(&plain)) == newest_state(Path::new(&sharded)),
                "{opt} on {ranks} ranks: sharded and unsharded checkpoints differ"
            );
        }
    }
}

/// Runs `downhill train ARGS` on `ranks` ranks, expecting it to fail;
/// returns its standard error and how long it took.
fn failing_timed(ranks: usize, args: &[&str]) -> (String, Duration) {
    let _one = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = downhill_on(ranks, Transport::Shm);
    c.arg("train").args(args).arg("--quiet");
    let start = Instant::now();
    let out = wait(spawn(c), Duration::from_secs(60), &args.join(" "));
    let took = start.elapsed();
    assert!(!out.status.success(), "{} succeeded", args.join(" "));
    (String::from_utf8_lossy(&out.stderr).into_owned(), took)
}

/// A rank that panics mid-epoch ends the job within seconds, naming
/// itself; before, the panic unwound into `MPI_Finalize` while rank 0
/// waited in a collective forever.
#[test]
fn a_panicking_rank_ends_the_job_with_the_rank_named() {
    let tmp = tempfile::tempdir().unwrap();
    for (ranks, shard) in [(2, false), (3, true)] {
        let out = dir(&tmp, &format!("panic-{ranks}"));
        let mut a = args(
            &out,
            &[
                "--model",
                "mlp:64,32",
                "--epochs",
                "3",
                "--inject-fault",
                "panic:rank=1,step=3",
            ],
        );
        if shard {
            a.push("--shard-optimizer-state");
        }
        let (err, took) = failing_timed(ranks, &a);
        assert!(took < Duration::from_secs(20), "took {took:?}:\n{err}");
        assert!(
            err.contains(&format!("error: rank 1 of {ranks} panicked"))
                && err.contains("a fault injected at step 3"),
            "stderr:\n{err}"
        );
    }
}

/// A NaN in one rank's share of the gradient: every rank sees the summed
/// gradient's norm is not finite and stops at the same step, sharded or
/// not; the job ends with the reason instead of hanging, and the last
/// checkpoint holds no NaN.
#[test]
fn a_nan_on_one_rank_stops_every_rank_at_the_same_step() {
    let tmp = tempfile::tempdir().unwrap();
    for (ranks, shard) in [(2, true), (3, true), (2, false)] {
        let out = dir(&tmp, &format!("nan-{ranks}-{shard}"));
        let mut a = args(
            &out,
            &[
                "--model",
                "mlp:64,32",
                "--epochs",
                "3",
                "--inject-fault",
                "nan:rank=1,step=60",
            ],
        );
        if shard {
            a.push("--shard-optimizer-state");
        }
        let (err, took) = failing_timed(ranks, &a);
        assert!(took < Duration::from_secs(30), "took {took:?}:\n{err}");
        assert!(
            err.contains("diverged at step 60") && err.contains("gradient norm is NaN"),
            "stderr:\n{err}"
        );
    }
}
