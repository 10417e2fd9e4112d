//! `downhill compare` over seeds, with targets, in parallel, resumed after
//! SIGKILL, and suites: each checked against what single runs produce.

mod common;

use common::{assert_same_comparison, json, ok, refused, without_times};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DATA: &str = "builtin:fashion-mnist-small";
const OPTIMIZERS: &str = "sgd(lr=0.1),adam";

/// A small comparison (an MLP, 2 epochs on 2,000 images) into `out`.
fn compare_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "compare",
        "--data",
        DATA,
        "--model",
        "mlp:32",
        "--optimizers",
        OPTIMIZERS,
        "--epochs",
        "2",
        "--limit-train",
        "2000",
        "--quiet",
        "--out",
    ]
    .map(String::from)
    .to_vec();
    a.push(out.display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(args: &[String]) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a);
}

fn ranking(out: &Path) -> Vec<Value> {
    json(&out.join("summary.json"))["ranking"]
        .as_array()
        .unwrap()
        .clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn each_seed_is_the_single_run_with_that_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    run(&compare_args(&out, &["--seeds", "3"]));
    let ranking = ranking(&out);
    assert_eq!(ranking.len(), 2);
    for e in &ranking {
        let label = e["label"].as_str().unwrap();
        assert_eq!(e["seeds"], 3);
        let per_seed = floats(&e["test_accuracy_per_seed"]);
        for (k, seed) in ["0", "1", "2"].into_iter().enumerate() {
            let single = dir.path().join(format!("{label}-{seed}"));
            ok(&[
                "train",
                "--data",
                DATA,
                "--model",
                "mlp:32",
                "--optimizer",
                label,
                "--epochs",
                "2",
                "--limit-train",
                "2000",
                "--seed",
                seed,
                "--quiet",
                "--out",
                single.to_str().unwrap(),
            ]);
            let s = json(&single.join("summary.json"));
            assert_eq!(
                per_seed[k],
                s["last"]["test_accuracy"].as_f64().unwrap(),
                "{label}, seed {seed}"
            );
        }
        // Mean and the 95% t interval: t(0.975, 2) = 4.302652729749462
        // (scipy.stats.t.ppf(0.975, 2)).
        let mean = per_seed.iter().sum::<f64>() / 3.0;
        assert!((e["test_accuracy_mean"].as_f64().unwrap() - mean).abs() < 1e-15);
        let sd = (per_seed.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let half = 4.302652729749462 * sd / 3f64.sqrt();
        let ci = floats(&e["test_accuracy_ci95"]);
        assert!((ci[0] - (mean - half)).abs() < 1e-12, "{ci:?}");
        assert!((ci[1] - (mean + half)).abs() < 1e-12, "{ci:?}");
    }
    // Best first.
    let means: Vec<f64> = ranking
        .iter()
        .map(|e| e["test_accuracy_mean"].as_f64().unwrap())
        .collect();
    assert!(means[0] >= means[1]);
    // One verdict, against the best, in words.
    let s = json(&out.join("summary.json"));
    let v = &s["verdicts"][0];
    assert_eq!(v["against"], ranking[0]["label"]);
    assert!(
        ["better", "worse", "not distinguishable at these seeds"]
            .contains(&v["verdict"].as_str().unwrap()),
        "{v}"
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains(" ± "), "{md}");
    assert!(md.contains("## Verdicts"), "{md}");
}

#[test]
fn one_seed_has_no_interval_and_no_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    run(&compare_args(&out, &["--seed", "4"]));
    let s = json(&out.join("summary.json"));
    for e in s["ranking"].as_array().unwrap() {
        assert_eq!(e["seeds"], 1);
        assert!(e["test_accuracy_ci95"].is_null(), "{e}");
    }
    assert!(s["verdicts"].as_array().unwrap().is_empty());
    assert_eq!(s["seeds"], serde_json::json!([4]));
}

#[test]
fn a_clear_difference_is_called_worse_and_the_seeds_it_needs_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let mut args = compare_args(&out, &["--seeds", "4"]);
    let at = args.iter().position(|a| a == OPTIMIZERS).unwrap();
    // Two rates of the same method: 1e-4 barely moves in two epochs.
    args[at] = "sgd(lr=0.1),sgd(lr=0.0001),sgd(lr=0.09)".into();
    run(&args);
    let s = json(&out.join("summary.json"));
    let verdict = |label: &str| {
        s["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["label"] == label)
            .unwrap()
            .clone()
    };
    let slow = verdict("sgd(lr=0.0001)");
    assert_eq!(slow["verdict"], "worse", "{slow}");
    assert!(slow["p_holm"].as_f64().unwrap() <= 0.05);
    // Holm over two tests: each adjusted p is at least the raw one.
    for v in s["verdicts"].as_array().unwrap() {
        if let (Some(p), Some(h)) = (v["p_value"].as_f64(), v["p_holm"].as_f64()) {
            assert!(h >= p, "{v}");
        }
    }
    assert_eq!(
        s["ranking"].as_array().unwrap().last().unwrap()["label"],
        "sgd(lr=0.0001)"
    );
}

#[test]
fn targets_time_every_run_and_an_unreached_target_is_infinite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    run(&compare_args(
        &out,
        &["--seeds", "2", "--target-accuracy", "0.6"],
    ));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["target"]["metric"], "accuracy");
    for e in s["ranking"].as_array().unwrap() {
        let steps = floats(&e["steps_to_target_per_seed"]);
        for (k, r) in s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["label"] == e["label"])
            .enumerate()
        {
            // The first evaluation at or above the target.
            let first = r["history"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["test_accuracy"].as_f64().unwrap() >= 0.6)
                .unwrap();
            assert_eq!(steps[k], first["step"].as_f64().unwrap());
        }
        assert_eq!(e["reached_target"], 2);
    }
    let never = dir.path().join("never");
    run(&compare_args(
        &never,
        &["--seeds", "2", "--target-loss", "0.001"],
    ));
    for e in ranking(&never) {
        assert_eq!(e["reached_target"], 0);
        assert!(e["steps_to_target_median"].is_null(), "{e}");
        assert!(e["seconds_to_target_per_seed"][0].is_null(), "{e}");
    }
    let md = std::fs::read_to_string(never.join("summary.md")).unwrap();
    assert!(md.contains("not reached (0/2)"), "{md}");
}

#[test]
fn runs_in_parallel_give_the_results_of_runs_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    run(&compare_args(&one, &["--seeds", "2", "--jobs", "1"]));
    run(&compare_args(&two, &["--seeds", "2", "--jobs", "3"]));
    assert_same_comparison(&one, &two);
}

/// Every output that does not read a clock: the summary without times, each
/// run's metrics and per-step losses, and the pictures, byte for byte.
fn assert_same_outputs(reference: &Path, out: &Path) {
    assert_same_comparison(reference, out);
    let summary = json(&reference.join("summary.json"));
    for r in summary["runs"].as_array().unwrap() {
        let rel = Path::new(r["dir"].as_str().unwrap())
            .strip_prefix(reference)
            .unwrap()
            .to_path_buf();
        assert_eq!(
            std::fs::read(reference.join(&rel).join("steps.csv")).unwrap(),
            std::fs::read(out.join(&rel).join("steps.csv")).unwrap(),
            "{} steps.csv",
            rel.display()
        );
        let metrics = |p: &Path| -> Vec<Value> {
            std::fs::read_to_string(p.join(&rel).join("metrics.jsonl"))
                .unwrap()
                .lines()
                .map(|l| without_times(serde_json::from_str(l).unwrap()))
                .collect()
        };
        assert_eq!(metrics(reference), metrics(out), "{}", rel.display());
    }
}

/// What a kill left: runs finished (a `summary.json`) and runs stopped
/// part-way with a checkpoint to continue from.
fn kill_state(out: &Path) -> (usize, usize) {
    let (mut finished, mut partway) = (0, 0);
    let mut stack = vec![out.join("runs")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.join("config.toml").exists() {
                if p.join("summary.json").exists() {
                    finished += 1;
                } else if p.join("checkpoints").exists() {
                    partway += 1;
                }
            } else if p.is_dir() {
                stack.push(p);
            }
        }
    }
    (finished, partway)
}

#[test]
fn a_comparison_killed_at_random_moments_resumes_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--seeds", "2", "--jobs", "2", "--limit-train", "6000"];
    let reference = dir.path().join("reference");
    let started = Instant::now();
    let with = |out: &Path| {
        let mut a = compare_args(out, &extra);
        // The base's --limit-train gives way to the extra one.
        let at = a.iter().position(|x| x == "2000").unwrap();
        a.drain(at - 1..=at);
        a
    };
    run(&with(&reference));
    let length = started.elapsed();
    // Kill points spread over the run: a fixed sequence, so a failure
    // reproduces (as far as the machine's speed allows).
    let mut rng = downhill::Rng::new(7);
    let (mut kills, mut with_finished, mut with_partway) = (0, 0, 0);
    for attempt in 0..12 {
        if attempt >= 3 && with_finished > 0 && with_partway > 0 {
            break;
        }
        let out = dir.path().join(format!("killed{attempt}"));
        let mut args = with(&out);
        let mut kills_here = 0;
        loop {
            let mut child = Command::new(env!("CARGO_BIN_EXE_downhill"))
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = (kills_here < 6).then(|| Instant::now() + length.mul_f64(rng.uniform()));
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break Some(s);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            match status {
                Some(s) => {
                    assert!(
                        s.success(),
                        "attempt {attempt} failed after {kills_here} kills"
                    );
                    break;
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    kills_here += 1;
                    kills += 1;
                    let (finished, partway) = kill_state(&out);
                    with_finished += usize::from(finished > 0);
                    with_partway += usize::from(partway > 0);
                    // Killed before it wrote its settings: start it again.
                    args = if out.join("comparison.json").exists() {
                        vec![
                            "compare".into(),
                            "--resume".into(),
                            out.display().to_string(),
                            "--quiet".into(),
                        ]
                    } else {
                        let _ = std::fs::remove_dir_all(&out);
                        with(&out)
                    };
                }
            }
        }
        assert_same_outputs(&reference, &out);
    }
    // Both kinds of kill happened: some runs finished and kept, some
    // continued from a checkpoint part-way.
    assert!(
        with_finished > 0 && with_partway > 0,
        "{kills} kills: {with_finished} after a run had finished, {with_partway} part-way through one"
    );
}

#[test]
fn bad_settings_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = out.to_str().unwrap();
    for (extra, expect) in [
        (vec!["--seeds", "0"], "--seeds: 0 seeds"),
        (vec!["--seeds", "two"], "--seeds: `two`"),
        (vec!["--seeds", "1,1"], "seed 1 is listed twice"),
        (vec!["--target-accuracy", "1.5"], "--target-accuracy: 1.5"),
        (vec!["--target-loss", "-1"], "--target-loss: -1"),
        (vec!["--test", "z"], "--test: `z`"),
        (vec!["--jobs", "0"], "--jobs: 0"),
    ] {
        let mut args = vec!["compare", "--data", DATA, "--model", "logreg", "--out", o];
        args.extend(extra);
        let err = refused(&args);
        assert!(err.contains(expect), "{err}");
        assert!(!out.exists(), "{err}: left {}", out.display());
    }
    let err = refused(&["compare", "--resume", o]);
    assert!(err.contains("comparison.json"), "{err}");
    let err = refused(&["compare", "--suite", "huge", "--out", o]);
    assert!(err.contains("unknown suite `huge`"), "{err}");
    let err = refused(&[
        "compare",
        "--suite",
        "small",
        "--ruleset",
        "lax",
        "--out",
        o,
    ]);
    assert!(err.contains("--ruleset: `lax`"), "{err}");
    let err = refused(&["compare", "--suite", "small", "--trials", "3", "--out", o]);
    assert!(err.contains("--ruleset external"), "{err}");
    // A finished comparison is not resumed, nor overwritten.
    let done = dir.path().join("done");
    run(&compare_args(&done, &[]));
    let d = done.to_str().unwrap();
    assert!(refused(&["compare", "--resume", d]).contains("already complete"));
    let mut again = compare_args(&done, &[]);
    again.retain(|a| a != "--quiet");
    let a: Vec<&str> = again.iter().map(String::as_str).collect();
    assert!(refused(&a).contains("already holds a comparison"));
}

/// `downhill compare --suite small EXTRA --out OUT`, and its `suite.json`.
fn suite(out: &Path, extra: &[&str]) -> Value {
    let o = out.to_str().unwrap();
    let mut args = vec!["compare", "--suite", "small", "--quiet", "--out", o];
    args.extend(extra);
    ok(&args);
    json(&out.join("suite.json"))
}

#[test]
fn the_small_suite_scores_optimizers_under_both_rulesets() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("self");
    let s = suite(
        &own,
        &[
            "--optimizers",
            "adamw(lr=0.001,weight_decay=0.01),sgd(lr=0.05,momentum=0.9,nesterov=true)",
            "--jobs",
            "2",
        ],
    );
    assert_eq!(s["ruleset"], "self_tuning");
    let workloads = s["workloads"].as_array().unwrap().len();
    assert_eq!(workloads, 4);
    let standings = s["standings"].as_array().unwrap();
    assert_eq!(standings.len(), 2);
    for w in 0..workloads {
        // Per workload the best reached ratio is 1 (when anyone reached it).
        let ratios: Vec<f64> = standings
            .iter()
            .filter_map(|st| st["ratios"][w].as_f64())
            .collect();
        if !ratios.is_empty() {
            assert_eq!(ratios.iter().copied().fold(f64::INFINITY, f64::min), 1.0);
        }
    }
    for st in standings {
        // The score is the profile's area, recomputed from the ratios.
        let area: f64 = st["ratios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().map_or(0.0, |r| ((4.0 - r) / 3.0).max(0.0)))
            .sum::<f64>()
            / workloads as f64;
        assert!((st["score"].as_f64().unwrap() - area).abs() < 1e-12, "{st}");
    }
    assert!(standings[0]["score"].as_f64() >= standings[1]["score"].as_f64());
    assert!(std::fs::read(own.join("profile.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    for w in ["logreg", "mlp", "cnn", "transformer"] {
        let summary = json(&own.join(w).join("summary.json"));
        assert!(!summary["target"].is_null(), "{w}");
        assert_eq!(summary["target_given"], true);
    }

    let external = dir.path().join("external");
    let s = suite(
        &external,
        &[
            "--ruleset",
            "external",
            "--trials",
            "2",
            "--optimizers",
            "adamw(lr=0.001,weight_decay=0.01)",
        ],
    );
    assert_eq!(s["ruleset"], "external");
    assert_eq!(s["trials"], 2);
    let st = &s["standings"][0];
    // Two trials: the rate ×0.1 and ×10; the chosen one per workload is
    // one of them, and the fastest of the two.
    for (w, chosen) in st["chosen"].as_array().unwrap().iter().enumerate() {
        let c = chosen.as_str().unwrap();
        assert!(c.contains("lr=0.0001") || c.contains("lr=0.01"), "{c}");
        let name = s["workloads"][w].as_str().unwrap();
        let ranking = ranking(&external.join(name));
        let time = |label: &str| {
            ranking.iter().find(|e| e["label"] == label).unwrap()["seconds_to_target_median"]
                .as_f64()
                .unwrap_or(f64::INFINITY)
        };
        let other = ranking
            .iter()
            .map(|e| e["label"].as_str().unwrap())
            .find(|l| *l != c)
            .unwrap();
        assert!(time(c) <= time(other), "{name}: {c} against {other}");
    }
}
