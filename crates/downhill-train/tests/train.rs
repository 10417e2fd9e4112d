//! The training loop end to end on small generated data.

use downhill::Rng;
use downhill_testenv::copy_dir;
use downhill_train::checkpoint;
use downhill_train::{OnDivergence, Silent, SparseUpdates, TrainConfig, TrainError, Trainer};
use std::path::{Path, PathBuf};

/// Writes a LIBSVM file of `n` examples in `d` dimensions, two Gaussian
/// clouds whose means are `sep` apart along every axis, and returns its path.
fn libsvm(dir: &Path, name: &str, n: usize, d: usize, sep: f64, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let mut text = String::new();
    for i in 0..n {
        let y = (i % 2) as i32;
        text += if y == 1 { "1" } else { "-1" };
        for j in 0..d {
            let v = rng.normal() + if y == 1 { sep / 2.0 } else { -sep / 2.0 };
            text += &format!(" {}:{v:.6}", j + 1);
        }
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes a LIBSVM file of `n` examples over `d` features, each holding 4
/// of them (a sparse bag of words; the label follows the parity of the
/// features), and returns its path.
fn sparse_libsvm(dir: &Path, name: &str, n: usize, d: usize, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let mut text = String::new();
    for _ in 0..n {
        let mut idx: Vec<u64> = (0..4).map(|_| 1 + rng.below(d as u64)).collect();
        idx.sort_unstable();
        idx.dedup();
        let even = idx.iter().filter(|&&j| j % 2 == 0).count();
        text += if 2 * even >= idx.len() { "1" } else { "-1" };
        for j in idx {
            text += &format!(" {j}:1");
        }
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn sparse_data_spec(dir: &Path) -> String {
    let train = sparse_libsvm(dir, "sparse-train.svm", 400, 300, 1);
    let test = sparse_libsvm(dir, "sparse-test.svm", 100, 300, 2);
    format!("libsvm:{},{}", train.display(), test.display())
}

fn data_spec(dir: &Path, sep: f64) -> String {
    let train = libsvm(dir, "train.svm", 400, 5, sep, 1);
    let test = libsvm(dir, "test.svm", 100, 5, sep, 2);
    format!("libsvm:{},{}", train.display(), test.display())
}

fn cfg(data: String) -> TrainConfig {
    TrainConfig {
        data,
        model: "logreg".into(),
        optimizer: "adam(lr=0.05)".into(),
        batch_size: 16,
        epochs: 4,
        seed: 3,
        threads: Some(1),
        ..Default::default()
    }
}

#[test]
fn logistic_regression_separates_a_separable_set_completely() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(
        TrainConfig {
            epochs: 10,
            ..cfg(data_spec(dir.path(), 8.0))
        },
        None,
    )
    .unwrap();
    let s = t.run(&mut Silent).unwrap();
    let last = s.last.unwrap();
    assert_eq!(last.test_accuracy, Some(1.0), "{last:?}");
    assert_eq!(last.train_accuracy, 1.0, "{last:?}");
}

#[test]
fn every_mode_of_gradient_descent_learns() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_spec(dir.path(), 2.0);
    for (batch_size, optimizer, steps_per_epoch) in [
        (0, "sgd(lr=0.5)", 1),
        (1, "sgd(lr=0.01)", 400),
        (32, "sgd(lr=0.1,momentum=0.9)", 13),
    ] {
        let mut t = Trainer::new(
            TrainConfig {
                batch_size,
                optimizer: optimizer.into(),
                epochs: 3,
                ..cfg(data.clone())
            },
            None,
        )
        .unwrap();
        let s = t.run(&mut Silent).unwrap();
        assert_eq!(s.steps, 3 * steps_per_epoch, "batch size {batch_size}");
        let h = t.history();
        assert!(
            h[2].train_loss < h[0].train_loss || batch_size == 1,
            "batch size {batch_size}: {h:?}"
        );
        assert!(
            s.last.unwrap().test_accuracy.unwrap() > 0.8,
            "batch size {batch_size}"
        );
    }
    // L-BFGS on the full batch.
    let mut t = Trainer::new(
        TrainConfig {
            optimizer: "lbfgs(line_search_fn=strong_wolfe,max_iter=10)".into(),
            epochs: 2,
            l2: 1e-3,
            ..cfg(data)
        },
        None,
    )
    .unwrap();
    let s = t.run(&mut Silent).unwrap();
    assert!(s.last.unwrap().test_accuracy.unwrap() > 0.8);
}

fn final_params(out: &Path, t: &Trainer) -> Vec<u32> {
    let (_, c, _) = checkpoint::latest(out, t.network().tensors()).unwrap();
    c.params.iter().map(|x| x.to_bits()).collect()
}

fn comparable(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("samples_per_sec");
            v
        })
        .collect()
}

#[test]
fn resuming_is_bit_identical_at_epoch_ends_and_mid_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_spec(dir.path(), 1.0);
    let sparse = sparse_data_spec(dir.path());
    for (model, optimizer, schedule, updates, data) in [
        (
            "mlp:8",
            "adam(lr=0.01)",
            Some("cosineannealinglr(T_max=4)"),
            SparseUpdates::Dense,
            &data,
        ),
        (
            "mlp:8:tanh:dropout=0.2",
            "sgd(lr=0.05,momentum=0.9)",
            Some("reducelronplateau(patience=0)"),
            SparseUpdates::Dense,
            &data,
        ),
        (
            "logreg",
            "lbfgs(line_search_fn=strong_wolfe,max_iter=5)",
            None,
            SparseUpdates::Auto,
            &data,
        ),
        // Tensor-level rules, and a partition by role (Muon on the hidden
        // matrix, AdamW on the rest): one state, resumed as one.
        (
            "mlp:8,8",
            "partition(hidden=muon(lr=0.02),all=adamw(lr=0.01))",
            Some("cosineannealinglr(T_max=4)"),
            SparseUpdates::Dense,
            &data,
        ),
        (
            "mlp:8,8",
            "adafactor(lr=0.05,weight_decay=0.01)",
            None,
            SparseUpdates::Dense,
            &data,
        ),
        (
            "mlp:8",
            "lamb(lr=0.01)",
            Some("linearlr(start_factor=0.5,total_iters=3)"),
            SparseUpdates::Dense,
            &data,
        ),
        // Lazy row-sparse steps on sparse data: moments of untouched rows
        // stand still, and must resume exactly so.
        (
            "mlp:8:input-dropout=0.2",
            "adam(lr=0.01,amsgrad=true)",
            Some("cosineannealinglr(T_max=4)"),
            SparseUpdates::Lazy,
            &sparse,
        ),
        (
            "logreg",
            "sgd(lr=0.5,momentum=0.9)",
            Some("reducelronplateau(patience=0)"),
            SparseUpdates::Lazy,
            &sparse,
        ),
    ] {
        let base = TrainConfig {
            model: model.into(),
            optimizer: optimizer.into(),
            schedule: schedule.map(String::from),
            checkpoint_every: Some(7),
            keep_checkpoints: 100,
            sparse_updates: updates,
            clip_norm: (updates == SparseUpdates::Lazy).then_some(0.5),
            ..cfg(data.clone())
        };
        let label = format!("{model} {optimizer} {updates:?}");
        let model = &label;
        let whole = dir.path().join(format!(
            "whole-{}",
            model.replace([' ', '(', ')', ',', '='], "_")
        ));
        let mut a = Trainer::new(base.clone(), Some(whole.clone())).unwrap();
        a.run(&mut Silent).unwrap();

        // Interrupted after two epochs, then resumed.
        let parted = dir.path().join(format!(
            "parted-{}",
            whole.file_name().unwrap().to_string_lossy()
        ));
        let mut b = Trainer::new(
            TrainConfig {
                epochs: 2,
                ..base.clone()
            },
            Some(parted.clone()),
        )
        .unwrap();
        b.run(&mut Silent).unwrap();
        let (mut b, _) = Trainer::resume(parted.clone(), Some(4)).unwrap();
        assert_eq!(b.updates(), a.updates(), "{model}");
        assert_eq!(b.updates().lazy, updates == SparseUpdates::Lazy, "{model}");
        b.run(&mut Silent).unwrap();
        assert_eq!(
            final_params(&whole, &a),
            final_params(&parted, &b),
            "{model}"
        );
        assert_eq!(
            comparable(&whole.join("metrics.jsonl")),
            comparable(&parted.join("metrics.jsonl")),
            "{model}"
        );
        assert_eq!(
            std::fs::read(whole.join("steps.csv")).unwrap(),
            std::fs::read(parted.join("steps.csv")).unwrap()
        );

        // A crash mid-epoch: keep only checkpoints up to some step inside
        // epoch 3, then resume from there.
        let crashed = dir.path().join(format!(
            "crashed-{}",
            whole.file_name().unwrap().to_string_lossy()
        ));
        copy_dir(&whole, &crashed);
        let mut steps: Vec<PathBuf> = std::fs::read_dir(crashed.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        steps.sort();
        let keep = steps.len() * 2 / 3;
        for s in &steps[keep..] {
            std::fs::remove_dir_all(s).unwrap();
        }
        std::fs::remove_file(crashed.join("summary.json")).unwrap();
        let (mut c, _) = Trainer::resume(crashed.clone(), None).unwrap();
        c.run(&mut Silent).unwrap();
        assert_eq!(
            final_params(&whole, &a),
            final_params(&crashed, &c),
            "{model} (mid-epoch)"
        );
        assert_eq!(
            comparable(&whole.join("metrics.jsonl")),
            comparable(&crashed.join("metrics.jsonl")),
            "{model}"
        );
        assert_eq!(
            std::fs::read_to_string(whole.join("steps.csv")).unwrap(),
            std::fs::read_to_string(crashed.join("steps.csv")).unwrap(),
            "{model} (mid-epoch)"
        );
    }
}

/// A long run must not carry its whole history in memory or in every
/// checkpoint: a checkpoint holds the step losses of its own epoch only, the
/// rest are in `steps.csv`.
#[test]
fn checkpoints_hold_one_epochs_step_losses_and_steps_csv_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let config = TrainConfig {
        checkpoint_every: Some(5),
        keep_checkpoints: 1000,
        ..cfg(data_spec(dir.path(), 1.0))
    };
    Trainer::new(config, Some(out.clone()))
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    // 400 examples in batches of 16: 25 steps an epoch, 100 in all.
    let rows = downhill_train::metrics::parse_steps_csv(
        &std::fs::read_to_string(out.join("steps.csv")).unwrap(),
    );
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>()
    );
    let mut checked = 0;
    for e in std::fs::read_dir(checkpoint::checkpoints_dir(&out)).unwrap() {
        let text = std::fs::read(e.unwrap().path().join("trainer.json")).unwrap();
        let s: checkpoint::TrainerState = serde_json::from_slice(&text).unwrap();
        let epoch_start = s.history.last().map_or(0, |r| r.step);
        let want: Vec<(u64, f64)> = rows
            .iter()
            .filter(|(step, _)| *step > epoch_start && *step <= s.step)
            .copied()
            .collect();
        assert_eq!(s.step_losses, want, "step {}", s.step);
        checked += 1;
    }
    assert!(checked >= 20, "{checked} checkpoints");

    // Without steps.csv a resume says what is lost, and carries on.
    std::fs::remove_file(out.join("steps.csv")).unwrap();
    let (_, warnings) = Trainer::resume(out.clone(), Some(5)).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("steps.csv") && w.contains("missing")),
        "{warnings:?}"
    );
}

#[test]
fn a_corrupt_newest_checkpoint_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut t = Trainer::new(
        TrainConfig {
            epochs: 3,
            ..cfg(data_spec(dir.path(), 1.0))
        },
        Some(out.clone()),
    )
    .unwrap();
    t.run(&mut Silent).unwrap();
    let root = checkpoint::checkpoints_dir(&out);
    let mut steps: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    steps.sort();
    let newest = steps.last().unwrap();
    // Truncate the newest model file.
    let model = newest.join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let (dir_used, ckpt, warnings) = checkpoint::latest(&out, t.network().tensors()).unwrap();
    assert_eq!(&dir_used, &steps[steps.len() - 2]);
    assert_eq!(ckpt.trainer.epoch, 2);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("truncated"), "{warnings:?}");
    // A flipped byte is caught by the checksum.
    let opt = steps[steps.len() - 2].join("optimizer.safetensors");
    let mut bytes = std::fs::read(&opt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&opt, &bytes).unwrap();
    let (dir_used, _, warnings) = checkpoint::latest(&out, t.network().tensors()).unwrap();
    assert_eq!(&dir_used, &steps[steps.len() - 3]);
    assert!(warnings[1].contains("checksum"), "{warnings:?}");
}

#[test]
fn a_new_run_never_overwrites_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let c = TrainConfig {
        epochs: 1,
        ..cfg(data_spec(dir.path(), 1.0))
    };
    Trainer::new(c.clone(), Some(out.clone()))
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    let before = std::fs::read(out.join("metrics.jsonl")).unwrap();
    let e = Trainer::new(c, Some(out.clone())).unwrap_err().to_string();
    assert!(
        e.contains("already holds a run") && e.contains("--resume"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("metrics.jsonl")).unwrap(), before);
}

#[test]
fn divergence_stops_on_the_step_and_keeps_the_last_good_checkpoint() {
    for updates in [SparseUpdates::Dense, SparseUpdates::Lazy] {
        divergence_stops(updates);
    }
}

fn divergence_stops(updates: SparseUpdates) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let data = data_spec(dir.path(), 1.0);
    // A rate so large that the loss overflows within the second epoch.
    let c = TrainConfig {
        optimizer: "sgd(lr=1e30)".into(),
        model: "mlp:8".into(),
        epochs: 5,
        sparse_updates: updates,
        ..cfg(data)
    };
    let e = Trainer::new(c.clone(), Some(out.clone()))
        .unwrap()
        .run(&mut Silent)
        .unwrap_err();
    let TrainError::Diverged(d) = &e else {
        panic!("{e}")
    };
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("step {}", d.step)) && msg.contains("sgd") && msg.contains("1e30"),
        "{msg}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["diverged"]["step"], d.step);
    if let Ok((_, ckpt, _)) = checkpoint::latest_trainer_state(&out) {
        assert!(ckpt.step < d.step);
        assert!(ckpt.history.iter().all(|r| r.train_loss.is_finite()));
    }

    // With back-off the same run halves the rate until it trains.
    let c = TrainConfig {
        optimizer: "sgd(lr=40)".into(),
        on_divergence: OnDivergence::Backoff,
        epochs: 3,
        ..c
    };
    let mut t = Trainer::new(c, None).unwrap();
    match t.run(&mut Silent) {
        Ok(s) => assert!(s.backoffs >= 1, "{s:?}"),
        Err(TrainError::Diverged(_)) => {
            assert_eq!(t.summary().backoffs, downhill_train::config::MAX_BACKOFFS)
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn newton_uses_the_exact_logistic_hessian_and_converges_in_few_iterations() {
    use downhill_train::batch::{Batcher, Pass};
    let dir = tempfile::tempdir().unwrap();
    // Three classes, three features: the Hessian against central differences
    // of the gradient, for the multinomial and the binary model.
    let mut text = String::new();
    let mut rng = Rng::new(9);
    for i in 0..90 {
        let y = i % 3;
        let f: Vec<String> = (0..3)
            .map(|j| {
                format!(
                    "{}:{:.4}",
                    j + 1,
                    rng.normal() + if j == y { 1.0 } else { 0.0 }
                )
            })
            .collect();
        text += &format!("{y} {}\n", f.join(" "));
    }
    std::fs::write(dir.path().join("three.svm"), &text).unwrap();
    let spec = format!("libsvm:{}", dir.path().join("three.svm").display());
    let data = downhill_data::load(&spec, &downhill_data::LoadOptions::default()).unwrap();
    for model in ["logreg:l2=0.01", "logreg:binary"] {
        let data = if model.contains("binary") {
            let rows: Vec<usize> = (0..data.train.len())
                .filter(|&r| data.train.labels()[r] < 2)
                .collect();
            data.train.subset(&rows).unwrap()
        } else {
            data.train.clone()
        };
        let spec: downhill_nn::ModelSpec = model.parse().unwrap();
        let classes = if model.contains("binary") { 2 } else { 3 };
        let mut net =
            downhill_nn::Network::<f32>::new(&spec, downhill_nn::InputShape::Flat(3), classes, 1)
                .unwrap();
        let mut b = Batcher::default();
        let n = net.params().len();
        let mut h = vec![0.0; n * n];
        downhill_train::newton::logreg_hessian(&mut net, &data, 50, &mut b, &mut h).unwrap();
        let rows: Vec<usize> = (0..data.len()).collect();
        let mut grad_at = |net: &mut downhill_nn::Network<f32>| {
            b.run(net, &data, &rows, Pass::Train, &mut Rng::new(0))
                .unwrap();
            net.grads().iter().map(|&g| g as f64).collect::<Vec<f64>>()
        };
        let scale = h.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let eps = 1e-2f32;
        for i in 0..n {
            let p0 = net.params()[i];
            net.params_mut()[i] = p0 + eps;
            let gp = grad_at(&mut net);
            net.params_mut()[i] = p0 - eps;
            let gm = grad_at(&mut net);
            net.params_mut()[i] = p0;
            for j in 0..n {
                let fd = (gp[j] - gm[j]) / (2.0 * eps as f64);
                assert!(
                    (fd - h[j * n + i]).abs() < 2e-3 * scale.max(1e-3),
                    "{model} H[{j},{i}]: {} vs differences {fd}",
                    h[j * n + i]
                );
            }
        }
    }
    // Newton's method in the trainer: the gradient vanishes within a few iterations.
    let mut t = Trainer::new(
        TrainConfig {
            optimizer: "newton(max_iter=20)".into(),
            model: "logreg:l2=0.01".into(),
            epochs: 1,
            ..cfg(spec.clone())
        },
        None,
    )
    .unwrap();
    t.run(&mut Silent).unwrap();
    let r = &t.history()[0];
    assert!(r.step <= 12, "{r:?}");
    assert!(r.grad_norm < 1e-3, "{r:?}");
    // Refused where the Hessian is not computed.
    let e = Trainer::new(
        TrainConfig {
            optimizer: "newton".into(),
            model: "mlp:4".into(),
            ..cfg(spec)
        },
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("use lbfgs"), "{e}");
}

/// Schedule-free and ASGD are evaluated at their averaged point: the trainer
/// swaps it in for the held-out metrics and the checkpoint's evaluation
/// model, and the training point comes back with every bit as it was, so a
/// run that evaluates ends where a run with nothing to evaluate ends.
#[test]
fn evaluation_at_the_averaged_point_leaves_the_training_point_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let train = libsvm(dir.path(), "train.svm", 400, 5, 1.0, 1);
    let test = libsvm(dir.path(), "test.svm", 100, 5, 1.0, 2);
    for optimizer in ["schedulefree_adamw(lr=0.02)", "asgd(lr=0.05,t0=10)"] {
        let run = |data: String, out: Option<PathBuf>| {
            let mut t = Trainer::new(
                TrainConfig {
                    optimizer: optimizer.into(),
                    model: "mlp:4".into(),
                    ..cfg(data)
                },
                out,
            )
            .unwrap();
            t.run(&mut Silent).unwrap();
            t
        };
        let out = dir
            .path()
            .join(optimizer.replace(['(', ')', '=', ',', '.'], "_"));
        let evaluated = run(
            format!("libsvm:{},{}", train.display(), test.display()),
            Some(out.clone()),
        );
        let unevaluated = run(format!("libsvm:{}", train.display()), None);
        assert_eq!(
            evaluated.network().params(),
            unevaluated.network().params(),
            "{optimizer}: evaluating changed the training point"
        );
        // The held-out loss is the evaluation point's, not the training point's.
        let at_y = {
            let mut t = run(
                format!("libsvm:{},{}", train.display(), test.display()),
                None,
            );
            let data = t.data().test.clone().unwrap();
            t.evaluate(&data).unwrap().mean_loss()
        };
        let reported = evaluated.history().last().unwrap().test_loss.unwrap();
        assert_ne!(
            reported, at_y,
            "{optimizer}: reported the training point's loss"
        );
        // The checkpoint holds both: the training point to resume from and
        // the evaluation model.
        let newest = std::fs::read_dir(checkpoint::checkpoints_dir(&out))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap();
        assert!(newest.join(checkpoint::EVAL_MODEL).exists(), "{optimizer}");
    }
}

/// Prodigy's adapted step is what its users watch: every epoch's record
/// (and so metrics.jsonl) carries its estimate d; other optimisers' do not.
#[test]
fn prodigy_logs_its_estimate_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prodigy");
    let mut t = Trainer::new(
        TrainConfig {
            optimizer: "prodigy".into(),
            ..cfg(data_spec(dir.path(), 1.0))
        },
        Some(out.clone()),
    )
    .unwrap();
    t.run(&mut Silent).unwrap();
    let ds: Vec<f64> = t.history().iter().map(|r| r.d.unwrap()).collect();
    // d starts at d0 = 1e-6 and grows as the run moves away from its start.
    assert!(ds.iter().all(|&d| d > 1e-6), "{ds:?}");
    assert!(ds.windows(2).all(|w| w[1] >= w[0]), "{ds:?}");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"d\":").count(), ds.len(), "{metrics}");
    let mut adam = Trainer::new(cfg(data_spec(dir.path(), 1.0)), None).unwrap();
    adam.run(&mut Silent).unwrap();
    assert!(adam.history().iter().all(|r| r.d.is_none()));
}

/// `--accumulate N` with batches of B takes the steps a batch of B·N takes,
/// and each equals it to rounding.
#[test]
fn accumulated_micro_batches_equal_one_large_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_spec(dir.path(), 1.0);
    let run = |batch_size: usize, accumulate: usize| {
        let mut t = Trainer::new(
            TrainConfig {
                model: "mlp:8".into(),
                optimizer: "adam(lr=0.01)".into(),
                batch_size,
                accumulate,
                ..cfg(data.clone())
            },
            None,
        )
        .unwrap();
        t.run(&mut Silent).unwrap();
        t
    };
    let large = run(40, 1);
    let micro = run(8, 5);
    assert_eq!(large.batches_per_epoch(), 10);
    assert_eq!(micro.batches_per_epoch(), 10);
    assert_eq!(
        large.history().last().unwrap().step,
        micro.history().last().unwrap().step
    );
    for (a, b) in large
        .network()
        .params()
        .iter()
        .zip(micro.network().params())
    {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
    // And it is not a no-op: without accumulation, batches of 8 go elsewhere.
    let small = run(8, 1);
    assert_eq!(small.batches_per_epoch(), 50);
    assert_ne!(small.network().params(), micro.network().params());
}

/// The averages the trainer keeps are the averages of the weights it saved:
/// a checkpoint after every step holds the weights, and the EMA and SWA in
/// the last checkpoint equal a plain recomputation from them. Both are
/// evaluated every epoch, and a resume continues them bit-identically.
#[test]
fn ema_and_swa_average_the_saved_weights_and_resume_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("avg");
    let base = TrainConfig {
        model: "mlp:4".into(),
        optimizer: "sgd(lr=0.1,momentum=0.9)".into(),
        batch_size: 100,
        epochs: 4,
        ema: Some(0.8),
        swa_start: Some(2),
        checkpoint_every: Some(1),
        keep_checkpoints: 1000,
        ..cfg(data_spec(dir.path(), 1.0))
    };
    let mut t = Trainer::new(base.clone(), Some(out.clone())).unwrap();
    t.run(&mut Silent).unwrap();
    // Every step's weights, from the checkpoints (4 steps an epoch).
    let root = checkpoint::checkpoints_dir(&out);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("step-")
        })
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 16);
    let tensors = t.network().tensors().to_vec();
    let saved: Vec<checkpoint::Checkpoint> = dirs
        .iter()
        .map(|d| checkpoint::read(d, &tensors).unwrap())
        .collect();
    let mut ema: Vec<f64> = saved[0].params.iter().map(|&x| x as f64).collect();
    for c in &saved[1..] {
        for (e, &p) in ema.iter_mut().zip(&c.params) {
            *e = 0.8 * *e + 0.2 * p as f64;
        }
    }
    // SWA: the mean of the weights at the ends of epochs 2, 3 and 4.
    let ends = [&saved[7], &saved[11], &saved[15]];
    let swa: Vec<f64> = (0..ema.len())
        .map(|i| ends.iter().map(|c| c.params[i] as f64).sum::<f64>() / 3.0)
        .collect();
    let last = &saved[15];
    for (name, want) in [("ema", &ema), ("swa", &swa)] {
        let got = &last.averages[name];
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{name}: {g} vs {w}"
            );
        }
    }
    let h = t.history();
    assert!(h
        .iter()
        .all(|r| r.ema.as_ref().unwrap().test_accuracy.is_some()));
    assert!(h[0].swa.is_none() && h[1..].iter().all(|r| r.swa.is_some()));
    assert_eq!(h[3].swa.as_ref().unwrap().updates, 3);
    // Resumed from the middle of epoch 3, the averages end where they did.
    let resumed_dir = dir.path().join("resumed");
    std::fs::create_dir_all(checkpoint::checkpoints_dir(&resumed_dir)).unwrap();
    let mid = &dirs[9];
    copy_dir(
        mid,
        &checkpoint::checkpoints_dir(&resumed_dir).join(mid.file_name().unwrap()),
    );
    for f in ["metrics.jsonl", "steps.csv"] {
        std::fs::copy(out.join(f), resumed_dir.join(f)).unwrap();
    }
    let (mut r, _) = Trainer::resume(resumed_dir.clone(), None).unwrap();
    r.run(&mut Silent).unwrap();
    let again = checkpoint::read(
        &std::fs::read_dir(checkpoint::checkpoints_dir(&resumed_dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap(),
        &tensors,
    )
    .unwrap();
    assert_eq!(again.averages, last.averages);
    assert_eq!(again.params, last.params);
}

/// The thread count changes no bit of a trained model: `mlp:64`,
/// `mlp:1000,1000` and a CNN, a few steps on the embedded Fashion-MNIST
/// subset with 1, 2 and 3 threads, the parameters compared byte for byte.
/// The shapes are the engine's real ones (batches of 128 images of 28×28),
/// so every product is large enough to be cut into blocks.
#[test]
fn the_thread_count_changes_no_bit_of_a_trained_model() {
    for (model, rows) in [
        ("mlp:64", 512),
        ("mlp:1000,1000", 256),
        ("cnn:8,16:pool=2:fc=64", 256),
    ] {
        let train = |threads: usize| -> Vec<u32> {
            let mut t = Trainer::new(
                TrainConfig {
                    data: "builtin:fashion-mnist-small".into(),
                    model: model.into(),
                    optimizer: "adam".into(),
                    batch_size: 128,
                    epochs: 1,
                    seed: 1,
                    limit_train: Some(rows),
                    limit_test: Some(100),
                    threads: Some(threads),
                    ..Default::default()
                },
                None,
            )
            .unwrap();
            t.run(&mut Silent).unwrap();
            t.network().params().iter().map(|x| x.to_bits()).collect()
        };
        let one = train(1);
        for threads in [2, 3] {
            assert!(
                train(threads) == one,
                "{model}: {threads} threads trained other bits than one"
            );
        }
    }
}
