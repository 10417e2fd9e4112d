//! `mpirun -n N downhill compare ...` (feature `mpi`): the runs spread over
//! the ranks give what one process gives, and a rank whose run fails ends
//! the job, naming itself.
#![cfg(feature = "mpi")]

mod common;

use common::mpi::{downhill_on, spawn, wait, Transport, DATA, JOBS};
use common::{assert_same_comparison, json};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// `downhill compare ARGS --out OUT` on `ranks` ranks (1: a plain process).
fn compare(ranks: usize, out: &Path, extra: &[&str]) -> Output {
    let _one = JOBS.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = downhill_on(ranks, Transport::Shm);
    c.args([
        "compare",
        "--data",
        DATA,
        "--model",
        "mlp:32",
        "--optimizers",
        "sgd(lr=0.1),adam,adagrad(lr=0.05)",
        "--epochs",
        "2",
        "--limit-train",
        "2000",
        "--quiet",
        "--out",
    ])
    .arg(out)
    .args(extra);
    wait(
        spawn(c),
        Duration::from_secs(240),
        &format!("{ranks} ranks"),
    )
}

#[test]
fn a_comparison_spread_over_ranks_equals_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    let o = compare(1, &one, &["--seeds", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for ranks in [2, 3] {
        let out = tmp.path().join(format!("ranks{ranks}"));
        let o = compare(ranks, &out, &["--seeds", "2"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_same_comparison(&one, &out);
        // Every run's folder was written by the rank that ran it.
        for r in json(&out.join("summary.json"))["runs"].as_array().unwrap() {
            assert!(Path::new(r["dir"].as_str().unwrap())
                .join("summary.json")
                .exists());
        }
    }
}

#[test]
fn a_rank_whose_run_fails_ends_the_job_naming_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("broken");
    // The second optimizer's run (task 1, rank 1 of 2) finds a file where
    // its folder goes.
    std::fs::create_dir_all(out.join("runs")).unwrap();
    std::fs::write(out.join("runs").join("2-adam"), b"in the way").unwrap();
    let o = compare(2, &out, &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: rank 1 of 2") && err.contains("2-adam"),
        "stderr:\n{err}"
    );
    assert!(!out.join("summary.json").exists());
}
