//! `downhill train --steps N --eval-every K` and `downhill compare --steps`:
//! runs measured in optimizer steps, as a user would run them.

mod common;

use common::{json, ok, records, refused};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The newest checkpoint's weights.
fn newest_model(out: &Path) -> Vec<u8> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("MANIFEST.json").exists())
        .collect();
    dirs.sort();
    std::fs::read(dirs.last().unwrap().join("model.safetensors")).unwrap()
}

/// 300 training examples in batches of 32: 10 batches an epoch.
const SMALL: &[&str] = &[
    "--data",
    "builtin:fashion-mnist-small",
    "--model",
    "mlp:16",
    "--batch-size",
    "32",
    "--limit-train",
    "300",
    "--limit-test",
    "100",
    "--threads",
    "1",
    "-q",
];

fn train(out: &Path, rest: &[&str]) -> Output {
    let mut a = vec!["train", "--out", out.to_str().unwrap()];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(rest);
    ok(&a)
}

#[test]
fn train_by_steps_records_every_k_steps_and_matches_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let by_steps = tmp.path().join("steps");
    train(&by_steps, &["--steps", "25", "--eval-every", "10"]);
    let m = records(&by_steps);
    let got: Vec<(u64, u64, f64)> = m
        .iter()
        .map(|r| {
            (
                r["epoch"].as_u64().unwrap(),
                r["step"].as_u64().unwrap(),
                r["data_epochs"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(1, 10, 1.0), (2, 20, 2.0), (3, 25, 2.5)]);
    assert_eq!(json(&by_steps.join("summary.json"))["steps"], 25);

    // Raised on resume: 15 more steps, one more record at 30 and one at 40.
    ok(&[
        "train",
        "--resume",
        by_steps.to_str().unwrap(),
        "--steps",
        "40",
        "-q",
    ]);
    let steps: Vec<u64> = records(&by_steps)
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [10, 20, 25, 30, 40]);
    assert_eq!(json(&by_steps.join("summary.json"))["steps"], 40);

    // Two epochs, and 20 steps evaluated every 10: the same weights.
    let (epochs, steps) = (tmp.path().join("e"), tmp.path().join("s"));
    train(&epochs, &["--epochs", "2"]);
    train(&steps, &["--steps", "20", "--eval-every", "10"]);
    assert!(newest_model(&epochs) == newest_model(&steps));
    let loss =
        |o: &Path| -> Vec<Value> { records(o).iter().map(|r| r["test_loss"].clone()).collect() };
    assert_eq!(loss(&epochs), loss(&steps));

    // Ten records by default.
    let default = tmp.path().join("d");
    train(&default, &["--steps", "30"]);
    assert_eq!(records(&default).len(), 10);
    let config = std::fs::read_to_string(default.join("config.toml")).unwrap();
    assert!(config.contains("eval_every = 3"), "{config}");
}

#[test]
fn steps_flags_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let out = out.to_str().unwrap();
    let e = refused(&["train", "--steps", "10", "--epochs", "2", "--out", out]);
    assert!(e.contains("--steps") && e.contains("--epochs"), "{e}");
    let e = refused(&["train", "--eval-every", "5", "--out", out]);
    assert!(e.contains("--eval-every") && e.contains("--steps"), "{e}");
    let e = refused(&["train", "--steps", "0", "--out", out]);
    assert!(e.contains("--steps: 0 is invalid"), "{e}");
    let e = refused(&["train", "--steps", "10", "--eval-every", "0", "--out", out]);
    assert!(e.contains("--eval-every: 0 is invalid"), "{e}");
    // A config file by steps with --epochs on top.
    let toml = tmp.path().join("run.toml");
    std::fs::write(&toml, "steps = 10\n").unwrap();
    let e = refused(&["train", "--config", toml.to_str().unwrap(), "--epochs", "2"]);
    assert!(e.contains("--steps") && e.contains("--epochs"), "{e}");
    assert!(!Path::new(out).exists());

    // A run by steps resumes by steps, with its own evaluation period.
    let run = tmp.path().join("run");
    train(&run, &["--steps", "5", "--eval-every", "5"]);
    let dir = run.to_str().unwrap();
    let e = refused(&["train", "--resume", dir, "--epochs", "3"]);
    assert!(e.contains("--steps"), "{e}");
    let e = refused(&[
        "train",
        "--resume",
        dir,
        "--steps",
        "9",
        "--eval-every",
        "3",
    ]);
    assert!(e.contains("--eval-every"), "{e}");
    let e = refused(&["train", "--resume", dir, "--steps", "4"]);
    assert!(e.contains("--steps") && e.contains('5'), "{e}");
    // A run by epochs does not become one by steps.
    let epochs = tmp.path().join("epochs");
    train(&epochs, &["--epochs", "1"]);
    let e = refused(&[
        "train",
        "--resume",
        epochs.to_str().unwrap(),
        "--steps",
        "30",
    ]);
    assert!(e.contains("--epochs"), "{e}");

    let help = String::from_utf8_lossy(&ok(&["train", "--help"]).stdout).to_string();
    for word in [
        "--steps <N>",
        "--eval-every <K>",
        "ceil(N / 10)",
        "data_epochs",
    ] {
        assert!(help.contains(word), "train --help lacks {word}");
    }
    let help = String::from_utf8_lossy(&ok(&["compare", "--help"]).stdout).to_string();
    for word in ["--steps <N>", "--eval-every <K>", "--tune-steps <N>"] {
        assert!(help.contains(word), "compare --help lacks {word}");
    }
}

#[test]
fn compare_by_steps_draws_curves_against_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let mut a = vec![
        "compare",
        "--optimizers",
        "sgd(lr=0.1),adam",
        "--steps",
        "24",
        "--eval-every",
        "8",
        "--tune-lr",
        "--tune-grid",
        "0.001,0.01",
        "--tune-steps",
        "6",
        "--tune-limit",
        "200",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(SMALL);
    ok(&a);
    let s = json(&out.join("summary.json"));
    for r in s["runs"].as_array().unwrap() {
        assert_eq!(r["summary"]["steps"], 24);
        let steps: Vec<u64> = r["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [8, 16, 24]);
        assert_eq!(r["tuning"]["grid"].as_array().unwrap().len(), 2);
    }
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert!(
        svg.contains(">step<"),
        "loss.svg is not drawn against steps"
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("24 steps (evaluated every 8)"), "{md}");
    assert!(md.contains("steps to"), "{md}");

    let e = refused(&[
        "compare",
        "--optimizers",
        "adam",
        "--steps",
        "10",
        "--epochs",
        "2",
        "--out",
        tmp.path().join("y").to_str().unwrap(),
    ]);
    assert!(e.contains("--steps") && e.contains("--epochs"), "{e}");
    let e = refused(&[
        "compare",
        "--optimizers",
        "adam",
        "--steps",
        "10",
        "--tune-lr",
        "--tune-epochs",
        "1",
        "--out",
        tmp.path().join("z").to_str().unwrap(),
    ]);
    assert!(e.contains("--tune-steps"), "{e}");
}
