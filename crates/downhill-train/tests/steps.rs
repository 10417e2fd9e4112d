//! Training by steps (`TrainConfig::steps`, `eval_every`): the same batches
//! as training by epochs, a record every `eval_every` steps, resumption bit
//! for bit, and the settings it refuses.

use downhill::Rng;
use downhill_testenv::copy_dir;
use downhill_train::checkpoint;
use downhill_train::{EpochRecord, Silent, TrainConfig, Trainer};
use std::path::{Path, PathBuf};

/// An MLP with dropout on 300 examples of the embedded Fashion-MNIST, in
/// batches of 32: 10 batches an epoch (the last of 12 examples).
fn mlp() -> TrainConfig {
    TrainConfig {
        data: "builtin:fashion-mnist-small".into(),
        model: "mlp:16:dropout=0.2".into(),
        optimizer: "adam(lr=0.01)".into(),
        batch_size: 32,
        limit_train: Some(300),
        limit_test: Some(100),
        seed: 7,
        threads: Some(1),
        ..TrainConfig::default()
    }
}

fn bits(t: &Trainer) -> Vec<u32> {
    t.network().params().iter().map(|x| x.to_bits()).collect()
}

fn final_params(out: &Path, t: &Trainer) -> Vec<u32> {
    let (_, c, _) = checkpoint::latest(out, t.network().tensors()).unwrap();
    c.params.iter().map(|x| x.to_bits()).collect()
}

/// The records without the timings (and without `data_epochs`, which only
/// a run by steps writes).
fn comparable(records: &[EpochRecord]) -> Vec<serde_json::Value> {
    records
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in ["seconds", "samples_per_sec", "data_epochs"] {
                o.remove(k);
            }
            v
        })
        .collect()
}

fn metrics(out: &Path) -> Vec<EpochRecord> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn steps_of_whole_epochs_train_exactly_as_epochs() {
    // A per-epoch schedule and an EMA: the periods must stand for epochs.
    for (schedule, ema) in [
        (None, None),
        (Some("steplr(step_size=1,gamma=0.5)"), Some(0.9)),
    ] {
        let base = TrainConfig {
            schedule: schedule.map(String::from),
            ema,
            ..mlp()
        };
        let mut by_epochs = Trainer::new(
            TrainConfig {
                epochs: 3,
                ..base.clone()
            },
            None,
        )
        .unwrap();
        assert_eq!(by_epochs.batches_per_epoch(), 10);
        let a = by_epochs.run(&mut Silent).unwrap();
        let mut by_steps = Trainer::new(
            TrainConfig {
                steps: Some(30),
                eval_every: Some(10),
                ..base.clone()
            },
            None,
        )
        .unwrap();
        let b = by_steps.run(&mut Silent).unwrap();
        assert_eq!(bits(&by_epochs), bits(&by_steps), "{schedule:?}");
        assert_eq!(
            comparable(by_epochs.history()),
            comparable(by_steps.history()),
            "{schedule:?}"
        );
        assert_eq!((a.steps, b.steps), (30, 30));
        let data_epochs: Vec<Option<f64>> =
            by_steps.history().iter().map(|r| r.data_epochs).collect();
        assert_eq!(data_epochs, [Some(1.0), Some(2.0), Some(3.0)]);
        assert!(by_epochs.history().iter().all(|r| r.data_epochs.is_none()));
        if schedule.is_none() {
            // Without anything per period, where the evaluations fall does
            // not change the weights: periods of 7 cut the data epochs.
            let mut odd = Trainer::new(
                TrainConfig {
                    steps: Some(30),
                    eval_every: Some(7),
                    ..base.clone()
                },
                None,
            )
            .unwrap();
            odd.run(&mut Silent).unwrap();
            assert_eq!(bits(&odd), bits(&by_epochs));
            let steps: Vec<u64> = odd.history().iter().map(|r| r.step).collect();
            assert_eq!(steps, [7, 14, 21, 28, 30]);
        }
    }
}

#[test]
fn a_record_every_k_steps_and_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut t = Trainer::new(
        TrainConfig {
            steps: Some(25),
            eval_every: Some(10),
            ..mlp()
        },
        Some(out.clone()),
    )
    .unwrap();
    let summary = t.run(&mut Silent).unwrap();
    assert_eq!(summary.steps, 25);
    let m = metrics(&out);
    let got: Vec<(usize, u64, Option<f64>)> =
        m.iter().map(|r| (r.epoch, r.step, r.data_epochs)).collect();
    assert_eq!(
        got,
        [(1, 10, Some(1.0)), (2, 20, Some(2.0)), (3, 25, Some(2.5))]
    );
    assert!(m.iter().all(|r| r.test_loss.is_some()));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["steps"], 25);
    assert_eq!(s["epochs"], 3);
    let rows = downhill_train::metrics::parse_steps_csv(
        &std::fs::read_to_string(out.join("steps.csv")).unwrap(),
    );
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=25).collect::<Vec<_>>()
    );
    // The settings say steps, not epochs.
    let toml = std::fs::read_to_string(out.join("config.toml")).unwrap();
    let saved = TrainConfig::from_toml(&toml).unwrap();
    assert_eq!((saved.steps, saved.eval_every), (Some(25), Some(10)));
    assert!(!toml.contains("epochs"), "{toml}");

    // By default, ten records: every ceil(25 / 10) = 3 steps, and the last.
    let mut t = Trainer::new(
        TrainConfig {
            steps: Some(25),
            ..mlp()
        },
        None,
    )
    .unwrap();
    assert_eq!(t.config().eval_every, Some(3));
    t.run(&mut Silent).unwrap();
    let steps: Vec<u64> = t.history().iter().map(|r| r.step).collect();
    assert_eq!(steps, [3, 6, 9, 12, 15, 18, 21, 24, 25]);
}

#[test]
fn resuming_a_run_by_steps_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    // A schedule per period and one per step, dropout, checkpoints mid-period.
    let base = TrainConfig {
        steps: Some(37),
        eval_every: Some(10),
        checkpoint_every: Some(4),
        keep_checkpoints: 100,
        schedule: Some("steplr(step_size=1,gamma=0.7)".into()),
        ema: Some(0.9),
        ..mlp()
    };
    let whole = dir.path().join("whole");
    let mut a = Trainer::new(base.clone(), Some(whole.clone())).unwrap();
    a.run(&mut Silent).unwrap();
    assert_eq!(a.summary().steps, 37);
    let want_params = final_params(&whole, &a);
    assert_eq!(want_params, bits(&a));
    let want_metrics = comparable(&metrics(&whole));
    let want_steps = std::fs::read_to_string(whole.join("steps.csv")).unwrap();

    // Fewer steps first, then raised on resume.
    let parted = dir.path().join("parted");
    let mut b = Trainer::new(
        TrainConfig {
            steps: Some(20),
            ..base.clone()
        },
        Some(parted.clone()),
    )
    .unwrap();
    b.run(&mut Silent).unwrap();
    let (mut b, _) = Trainer::resume(parted.clone(), None).unwrap();
    b.set_steps(37).unwrap();
    let summary = b.run(&mut Silent).unwrap();
    assert_eq!(summary.steps, 37);
    assert_eq!(final_params(&parted, &b), want_params);
    assert_eq!(comparable(&metrics(&parted)), want_metrics);
    assert_eq!(
        std::fs::read_to_string(parted.join("steps.csv")).unwrap(),
        want_steps
    );

    // A crash mid-period: only the checkpoints up to step 24 (in the third
    // period) survive.
    let crashed = dir.path().join("crashed");
    copy_dir(&whole, &crashed);
    let mut kept = Vec::new();
    for e in std::fs::read_dir(checkpoint::checkpoints_dir(&crashed)).unwrap() {
        let path = e.unwrap().path();
        let state: checkpoint::TrainerState =
            serde_json::from_slice(&std::fs::read(path.join("trainer.json")).unwrap()).unwrap();
        if state.step > 24 {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            kept.push(state.step);
        }
    }
    assert!(kept.contains(&24), "{kept:?}");
    std::fs::remove_file(crashed.join("summary.json")).unwrap();
    let (mut c, _) = Trainer::resume(crashed.clone(), None).unwrap();
    assert_eq!(c.summary().steps, 24);
    c.run(&mut Silent).unwrap();
    assert_eq!(final_params(&crashed, &c), want_params);
    assert_eq!(comparable(&metrics(&crashed)), want_metrics);
    assert_eq!(
        std::fs::read_to_string(crashed.join("steps.csv")).unwrap(),
        want_steps
    );

    // A run by steps is not continued by epochs, nor lowered below its
    // steps; a run by epochs is not continued by steps.
    let e = Trainer::resume(whole.clone(), Some(5)).unwrap_err();
    assert!(e.to_string().contains("--steps"), "{e}");
    let (mut w, _) = Trainer::resume(whole.clone(), None).unwrap();
    assert!(w.set_steps(30).unwrap_err().to_string().contains("37"));
    let mut by_epochs = Trainer::new(TrainConfig { epochs: 1, ..mlp() }, None).unwrap();
    let e = by_epochs.set_steps(100).unwrap_err().to_string();
    assert!(e.contains("--steps") && e.contains("--epochs"), "{e}");
}

#[test]
fn settings_by_steps_are_checked() {
    let bad = |c: TrainConfig| c.validate().unwrap_err().to_string();
    let e = bad(TrainConfig {
        eval_every: Some(5),
        ..TrainConfig::default()
    });
    assert!(e.contains("--eval-every") && e.contains("--steps"), "{e}");
    let e = bad(TrainConfig {
        steps: Some(0),
        ..TrainConfig::default()
    });
    assert!(e.contains("--steps: 0 is invalid"), "{e}");
    let e = bad(TrainConfig {
        steps: Some(10),
        eval_every: Some(0),
        ..TrainConfig::default()
    });
    assert!(e.contains("--eval-every: 0 is invalid"), "{e}");
    let e = bad(TrainConfig {
        steps: Some(u64::MAX),
        ..TrainConfig::default()
    });
    assert!(e.contains("--steps"), "{e}");
    // A file gives steps or epochs, not both.
    let e = TrainConfig::from_toml("steps = 100\nepochs = 3\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("--steps") && e.contains("--epochs"), "{e}");
    let c = TrainConfig::from_toml("steps = 100\neval_every = 7\n").unwrap();
    assert_eq!(
        (c.steps, c.eval_every, c.eval_period()),
        (Some(100), Some(7), Some(7))
    );
    assert_eq!(TrainConfig::default().eval_period(), None);
    let c = TrainConfig {
        steps: Some(95),
        ..TrainConfig::default()
    };
    assert_eq!(c.eval_period(), Some(10));
    assert_eq!(TrainConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
}

/// Two Gaussian clouds in 5 dimensions as LIBSVM files: a small logistic
/// regression for the full-batch methods.
fn clouds(dir: &Path) -> String {
    let mut paths: Vec<PathBuf> = Vec::new();
    for (name, n, seed) in [("train.svm", 200, 1), ("test.svm", 50, 2)] {
        let mut rng = Rng::new(seed);
        let mut text = String::new();
        for i in 0..n {
            let y = i % 2;
            text += if y == 1 { "1" } else { "-1" };
            for j in 0..5 {
                let v = rng.normal() + if y == 1 { 0.5 } else { -0.5 };
                text += &format!(" {}:{v:.6}", j + 1);
            }
            text.push('\n');
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    format!("libsvm:{},{}", paths[0].display(), paths[1].display())
}

#[test]
fn full_batch_methods_take_one_iteration_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = clouds(dir.path());
    // L-BFGS with a fixed step makes every iteration it is asked for.
    let out = dir.path().join("lbfgs");
    let mut t = Trainer::new(
        TrainConfig {
            data: data.clone(),
            model: "logreg".into(),
            optimizer: "lbfgs(lr=0.1,max_iter=2)".into(),
            steps: Some(7),
            eval_every: Some(3),
            threads: Some(1),
            ..TrainConfig::default()
        },
        Some(out.clone()),
    )
    .unwrap();
    let s = t.run(&mut Silent).unwrap();
    let steps: Vec<u64> = t.history().iter().map(|r| r.step).collect();
    assert_eq!(steps, [3, 6, 7]);
    assert_eq!(s.steps, 7);
    // Its state keeps the run's own max_iter (a period only borrows it).
    let (_, c, _) = checkpoint::latest(&out, t.network().tensors()).unwrap();
    assert_eq!(
        c.optimizer.manifest.groups[0].hyper.get("max_iter"),
        Some(&downhill::hyper::HyperValue::Number(2.0))
    );
    // Newton converges in a few iterations: the run ends there.
    let mut t = Trainer::new(
        TrainConfig {
            data,
            model: "logreg".into(),
            optimizer: "newton".into(),
            l2: 0.01,
            steps: Some(1000),
            eval_every: Some(100),
            threads: Some(1),
            ..TrainConfig::default()
        },
        None,
    )
    .unwrap();
    let s = t.run(&mut Silent).unwrap();
    assert!(s.steps > 0 && s.steps < 100, "{}", s.steps);
    assert_eq!(t.history().len(), 1);
    assert_eq!(t.history()[0].step, s.steps);
}
