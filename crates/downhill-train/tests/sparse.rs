//! Sparse data end to end: gradients of chunked sparse batches, and the
//! trainer's lazy row-sparse updates (`sparse_updates`).

use downhill::Rng;
use downhill_data::{load, LoadOptions};
use downhill_nn::{InputShape, ModelSpec, Network};
use downhill_train::batch::Batcher;
use std::path::{Path, PathBuf};

/// Writes a sparse LIBSVM file: `n` examples over `dim` features, each with
/// `k` distinct features drawn with frequencies skewed towards low indices,
/// labels from a planted linear rule. Returns its path.
fn sparse_libsvm(dir: &Path, name: &str, n: usize, dim: usize, k: usize, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let mut text = String::new();
    for _ in 0..n {
        let mut idx: Vec<usize> = (0..k)
            .map(|_| {
                let u = rng.uniform();
                ((dim as f64).powf(u) as usize).clamp(1, dim)
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let score: f64 = idx
            .iter()
            .map(|&j| if j % 2 == 0 { 1.0 } else { -1.0 })
            .sum();
        text += if score + 0.5 * rng.normal() > 0.0 {
            "1"
        } else {
            "-1"
        };
        for j in idx {
            text += &format!(" {j}:{:.3}", 0.5 + rng.uniform());
        }
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_chunked_sparse_batch_gradient_is_exact_every_time() {
    // The chunks' gradients are averaged and copied back into the network;
    // the next batch used to clear only the last chunk's rows, leaving the
    // other chunks' rows in its gradient.
    let dir = tempfile::tempdir().unwrap();
    let path = sparse_libsvm(dir.path(), "a.svm", 300, 200, 5, 1);
    let data = load(
        &format!("libsvm:{}", path.display()),
        &LoadOptions::default(),
    )
    .unwrap();
    let spec: ModelSpec = "mlp:4".parse().unwrap();
    let shape = InputShape::Flat(data.train.dim());
    let fresh = || Network::<f32>::new(&spec, shape, 2, 1).unwrap();
    let (mut net, mut batcher, mut acc) = (fresh(), Batcher::default(), Vec::new());
    let all: Vec<usize> = (0..300).collect();
    for rows in [&all[..], &all[100..], &all[..150], &all[..]] {
        batcher
            .gradient(&mut net, &data.train, rows, 40, &mut Rng::new(0), &mut acc)
            .unwrap();
        let mut twin = fresh();
        Batcher::default()
            .gradient(&mut twin, &data.train, rows, 40, &mut Rng::new(0), &mut acc)
            .unwrap();
        assert_eq!(net.grads(), twin.grads(), "{} rows", rows.len());
        // The union of the chunks' rows: every feature in the batch.
        let mut want: Vec<u32> = rows
            .iter()
            .flat_map(|&r| match data.train.features() {
                downhill_data::Features::Sparse(c) => c.row(r).unwrap().0.to_vec(),
                _ => unreachable!(),
            })
            .collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(net.touched_rows(), Some(&want[..]));
    }
}

use downhill_train::checkpoint;
use downhill_train::{epoch_order, Silent, SparseUpdates, TrainConfig, Trainer};

/// A sparse training set (and a test set) in `dir`: 200 + 60 examples over
/// 400 features, 6 per example.
fn sparse_spec(dir: &Path) -> String {
    let train = sparse_libsvm(dir, "train.svm", 200, 400, 6, 11);
    let test = sparse_libsvm(dir, "test.svm", 60, 400, 6, 12);
    format!("libsvm:{},{}", train.display(), test.display())
}

fn base(data: String) -> TrainConfig {
    TrainConfig {
        data,
        model: "logreg".into(),
        optimizer: "adam(lr=0.05)".into(),
        batch_size: 16,
        epochs: 3,
        seed: 5,
        threads: Some(1),
        ..Default::default()
    }
}

fn params_bits(t: &Trainer) -> Vec<u32> {
    t.network().params().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn auto_chooses_lazy_steps_only_where_they_are_possible() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = sparse_spec(dir.path());
    let cases: Vec<(TrainConfig, bool, &str)> = vec![
        (base(sparse.clone()), true, "auto: sparse data"),
        (
            TrainConfig {
                optimizer: "sgd(lr=0.1,momentum=0.9)".into(),
                model: "mlp:4".into(),
                ..base(sparse.clone())
            },
            true,
            "row-sparse sgd",
        ),
        (
            TrainConfig {
                optimizer: "adagrad".into(),
                ..base(sparse.clone())
            },
            true,
            "row-sparse adagrad",
        ),
        (
            TrainConfig {
                optimizer: "rmsprop".into(),
                ..base(sparse.clone())
            },
            false,
            "auto: rmsprop has no lazy step",
        ),
        (
            TrainConfig {
                l2: 1e-3,
                ..base(sparse.clone())
            },
            false,
            "L2",
        ),
        (
            TrainConfig {
                model: "logreg:l2=0.001".into(),
                ..base(sparse.clone())
            },
            false,
            "L2",
        ),
        (
            TrainConfig {
                optimizer: "adam(weight_decay=0.01)".into(),
                ..base(sparse.clone())
            },
            false,
            "weight_decay",
        ),
        (
            TrainConfig {
                optimizer: "lbfgs".into(),
                batch_size: 0,
                ..base(sparse.clone())
            },
            false,
            "full-batch",
        ),
        (
            TrainConfig {
                sparse_updates: SparseUpdates::Dense,
                ..base(sparse.clone())
            },
            false,
            "requested",
        ),
        (
            TrainConfig {
                limit_train: Some(200),
                limit_test: Some(50),
                ..base("builtin:fashion-mnist-small".into())
            },
            false,
            "auto: the data are dense",
        ),
    ];
    for (cfg, lazy, why) in cases {
        let label = format!(
            "{} / {} / {:?}",
            cfg.optimizer, cfg.model, cfg.sparse_updates
        );
        let mut t = Trainer::new(cfg, None).unwrap();
        assert_eq!(t.updates().lazy, lazy, "{label}: {}", t.updates());
        assert!(t.updates().why.contains(why), "{label}: {}", t.updates());
        if lazy {
            let s = t.run(&mut Silent).unwrap();
            assert_eq!(s.updates.as_ref(), Some(t.updates()));
        }
    }
}

#[test]
fn a_lazy_request_that_cannot_be_honoured_is_an_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = sparse_spec(dir.path());
    let lazy = |cfg: TrainConfig| TrainConfig {
        sparse_updates: SparseUpdates::Lazy,
        ..cfg
    };
    // Settings alone rule it out: refused before any data is read.
    let nowhere = "libsvm:/nowhere/train.svm".to_string();
    for (cfg, why) in [
        (
            TrainConfig {
                optimizer: "rmsprop".into(),
                ..base(nowhere.clone())
            },
            "rmsprop has no lazy step",
        ),
        (
            TrainConfig {
                optimizer: "lbfgs".into(),
                ..base(nowhere.clone())
            },
            "lbfgs takes full-batch steps",
        ),
        (
            TrainConfig {
                l2: 0.01,
                ..base(nowhere.clone())
            },
            "--l2",
        ),
        (
            TrainConfig {
                optimizer: "sgd(lr=0.1,weight_decay=0.001)".into(),
                ..base(nowhere.clone())
            },
            "weight_decay=0.001",
        ),
        (
            TrainConfig {
                model: "cnn".into(),
                ..base(nowhere.clone())
            },
            "convolution",
        ),
    ] {
        let e = Trainer::new(lazy(cfg), None).unwrap_err().to_string();
        assert!(
            e.starts_with("--sparse-updates lazy: ") && e.contains(why) && e.contains("dense"),
            "{e}"
        );
        assert!(!e.contains("nowhere"), "checked before loading: {e}");
    }
    // Dense data: known once loaded.
    let e = Trainer::new(
        lazy(TrainConfig {
            limit_train: Some(100),
            ..base("builtin:fashion-mnist-small".into())
        }),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("--sparse-updates lazy: the data are dense"),
        "{e}"
    );
    // And what works is accepted.
    let t = Trainer::new(lazy(base(sparse)), None).unwrap();
    assert!(t.updates().lazy);
}

#[test]
fn lazy_sgd_and_adagrad_steps_equal_dense_ones_bit_for_bit() {
    // A zero gradient row changes neither the parameters nor Adagrad's sum,
    // so skipping the untouched rows must give exactly the dense result;
    // any row gathered wrongly, stepped twice or left out shows here.
    let dir = tempfile::tempdir().unwrap();
    let sparse = sparse_spec(dir.path());
    for (model, optimizer, batch_size, clip_value) in [
        ("logreg", "sgd(lr=0.5)", 16, None),
        ("mlp:5:input-dropout=0.2", "sgd(lr=0.2)", 7, None),
        ("logreg", "adagrad(lr=0.3,lr_decay=0.01)", 16, None),
        (
            "mlp:5",
            "adagrad(lr=0.1,initial_accumulator_value=0.1)",
            1,
            None,
        ),
        // Clipping by value is element-wise: the same on the gathered rows.
        ("mlp:5", "sgd(lr=0.5)", 16, Some(0.002)),
        // Whole-set batches, gathered in chunks of 64.
        ("mlp:5", "adagrad(lr=0.1)", 0, None),
    ] {
        let run = |mode| {
            let mut t = Trainer::new(
                TrainConfig {
                    model: model.into(),
                    optimizer: optimizer.into(),
                    batch_size,
                    eval_batch: 64,
                    clip_value,
                    sparse_updates: mode,
                    ..base(sparse.clone())
                },
                None,
            )
            .unwrap();
            t.run(&mut Silent).unwrap();
            (params_bits(&t), t.updates().lazy)
        };
        let (lazy, was_lazy) = run(SparseUpdates::Lazy);
        let (dense, was_dense) = run(SparseUpdates::Dense);
        assert!(was_lazy && !was_dense);
        assert_eq!(lazy, dense, "{model} {optimizer} batch {batch_size}");
    }
}

/// Rows of `fc1.weight` (`[features, row_len]`) that differ between two
/// parameter vectors.
fn changed_rows(a: &[f32], b: &[f32], features: usize, row_len: usize) -> Vec<u32> {
    (0..features)
        .filter(|&r| {
            let s = r * row_len..(r + 1) * row_len;
            a[s.clone()]
                .iter()
                .zip(&b[s])
                .any(|(x, y)| x.to_bits() != y.to_bits())
        })
        .map(|r| r as u32)
        .collect()
}

#[test]
fn lazy_adam_moves_only_the_rows_and_moments_a_batch_touches_like_sparse_adam() {
    // A checkpoint after every step shows what each step changed: under lazy
    // Adam (torch's SparseAdam) exactly the rows of the batch's features, in
    // the parameters and in both moments, with one step count for the tensor.
    let dir = tempfile::tempdir().unwrap();
    let sparse = sparse_spec(dir.path());
    let data = downhill_data::load(&sparse, &LoadOptions::default()).unwrap();
    let downhill_data::Features::Sparse(csr) = data.train.features() else {
        unreachable!()
    };
    let (n, features, row_len) = (data.train.len(), data.train.dim(), 2);
    let (batch, steps_per_epoch) = (16, 200usize.div_ceil(16));
    for (mode, lazy) in [(SparseUpdates::Lazy, true), (SparseUpdates::Dense, false)] {
        let out = dir.path().join(format!("{mode:?}"));
        let cfg = TrainConfig {
            sparse_updates: mode,
            checkpoint_every: Some(1),
            keep_checkpoints: 1000,
            epochs: 2,
            ..base(sparse.clone())
        };
        let mut t = Trainer::new(cfg.clone(), Some(out.clone())).unwrap();
        t.run(&mut Silent).unwrap();
        let tensors = t.network().tensors().to_vec();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(checkpoint::checkpoints_dir(&out))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        assert_eq!(dirs.len(), 2 * steps_per_epoch);
        let init = std::fs::read(out.join("init.safetensors")).unwrap();
        let mut prev_params =
            checkpoint::read_model(&init, &tensors, &out.join("init.safetensors")).unwrap();
        let mut prev_moments: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut untouched_moved = 0;
        for (k, d) in dirs.iter().enumerate() {
            let c = checkpoint::read(d, &tensors).unwrap();
            assert_eq!(c.trainer.step, k as u64 + 1);
            let (epoch, b) = (k / steps_per_epoch, k % steps_per_epoch);
            let order = epoch_order(cfg.seed, epoch, n);
            let mut touched: Vec<u32> = order[b * batch..((b + 1) * batch).min(n)]
                .iter()
                .flat_map(|&r| csr.row(r).unwrap().0.to_vec())
                .collect();
            touched.sort_unstable();
            touched.dedup();
            let moved = changed_rows(&prev_params, &c.params, features, row_len);
            let m = c.optimizer.buffer("0.exp_avg").unwrap().to_vec();
            let v = c.optimizer.buffer("0.exp_avg_sq").unwrap().to_vec();
            // One step count for the whole tensor, advancing every step.
            assert_eq!(c.optimizer.manifest.tensors[0].step, k as u64 + 1);
            if lazy {
                assert_eq!(moved, touched, "step {}: moved rows", k + 1);
                if let Some((pm, pv)) = &prev_moments {
                    let as_f32 = |b: &[u8]| -> Vec<f32> {
                        b.chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                            .collect()
                    };
                    for (old, new) in [(pm, &m), (pv, &v)] {
                        let rows = changed_rows(&as_f32(old), &as_f32(new), features, row_len);
                        assert!(
                            rows.iter().all(|r| touched.binary_search(r).is_ok()),
                            "step {}: a moment of an untouched row moved",
                            k + 1
                        );
                    }
                }
            } else {
                untouched_moved += moved
                    .iter()
                    .filter(|r| touched.binary_search(r).is_err())
                    .count();
            }
            prev_params = c.params;
            prev_moments = Some((m, v));
        }
        if !lazy {
            // The contrast: dense Adam keeps moving rows no batch touches.
            assert!(untouched_moved > 1000, "{untouched_moved}");
        }
    }
}
