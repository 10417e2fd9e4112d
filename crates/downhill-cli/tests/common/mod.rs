//! Running the `downhill` binary as a user would, shared by the CLI's test
//! files (each uses some of it).
#![allow(dead_code)]

#[cfg(feature = "mpi")]
pub mod mpi;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `downhill ARGS`.
pub fn downhill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs `downhill ARGS`, which must succeed.
pub fn ok(args: &[&str]) -> Output {
    let out = downhill(args);
    assert!(
        out.status.success(),
        "downhill {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The one-line error of a refused command (exit status 2).
pub fn refused(args: &[&str]) -> String {
    let out = downhill(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "downhill {args:?} was not refused"
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// A JSON-lines file, one value per line.
pub fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A run's metrics records.
pub fn records(out: &Path) -> Vec<Value> {
    lines(&out.join("metrics.jsonl"))
}

/// A JSON file.
pub fn json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A JSON value without the fields that measure time, which no two runs
/// share (`seconds`, rates, and every `*seconds*` field of a comparison).
pub fn without_times(mut v: Value) -> Value {
    match &mut v {
        Value::Object(m) => {
            m.retain(|k, _| {
                !(k.contains("seconds") || k == "samples_per_sec" || k == "tokens_per_sec")
            });
            for x in m.values_mut() {
                *x = without_times(x.take());
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without_times(x.take());
            }
        }
        _ => {}
    }
    v
}

/// A comparison's `summary.json` without clock readings, with its run
/// folders relative to `out`: what two runs of one comparison share.
pub fn comparable(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .replace(&out.display().to_string(), "OUT");
    without_times(serde_json::from_str(&text).unwrap())
}

/// Two comparisons agree: the summaries up to clock readings, and the
/// pictures (which read no clock) byte for byte.
pub fn assert_same_comparison(a: &Path, b: &Path) {
    assert_eq!(
        comparable(a),
        comparable(b),
        "{} against {}",
        a.display(),
        b.display()
    );
    for picture in [
        "loss.png",
        "loss_steps.png",
        "accuracy.png",
        "test_loss.png",
    ] {
        assert!(
            std::fs::read(a.join(picture)).unwrap() == std::fs::read(b.join(picture)).unwrap(),
            "{picture} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}
