//! Network behaviour: shapes, determinism, validation, learning, precision, reuse.

use downhill::Rng;
use downhill_nn::{Input, InputShape, ModelSpec, Network, NnError, TensorKind};

fn spec(s: &str) -> ModelSpec {
    s.parse().unwrap()
}

fn image(c: usize, h: usize, w: usize) -> InputShape {
    InputShape::Image {
        channels: c,
        height: h,
        width: w,
    }
}

fn batch(rows: usize, dim: usize, seed: u64) -> (Vec<f64>, Vec<u32>) {
    let mut r = Rng::new(seed);
    let x = (0..rows * dim).map(|_| r.uniform()).collect();
    let y = (0..rows).map(|_| r.below(10) as u32).collect();
    (x, y)
}

#[test]
fn shapes_adapt_to_the_input() {
    let mnist = Network::<f32>::new(&spec("cnn:32,32,64:pool=2"), image(1, 28, 28), 10, 0).unwrap();
    let names: Vec<_> = mnist
        .tensors()
        .iter()
        .map(|t| (t.name.as_str(), t.shape.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("conv1.weight", vec![5, 5, 1, 32]),
            ("conv1.bias", vec![32]),
            ("conv2.weight", vec![5, 5, 32, 32]),
            ("conv2.bias", vec![32]),
            ("conv3.weight", vec![5, 5, 32, 64]),
            ("conv3.bias", vec![64]),
            // 28 → 14 → 7 → 3 after 2×2 pools.
            ("fc1.weight", vec![3 * 3 * 64, 1000]),
            ("fc1.bias", vec![1000]),
            ("fc2.weight", vec![1000, 10]),
            ("fc2.bias", vec![10]),
        ]
    );
    let cifar = Network::<f32>::new(&spec("cnn"), image(3, 32, 32), 10, 0).unwrap();
    // 32 → 15 → 7 → 3 after 3×3/2 pools.
    assert_eq!(cifar.tensors()[0].shape, vec![5, 5, 3, 64]);
    assert_eq!(cifar.tensors()[6].shape, vec![3 * 3 * 128, 1000]);
    let paper = Network::<f32>::new(&spec("cnn"), image(1, 28, 28), 10, 0).unwrap();
    // 28 → 13 → 6 → 2.
    assert_eq!(paper.tensors()[6].shape, vec![2 * 2 * 128, 1000]);
    // Offsets are consecutive and cover the buffer exactly.
    let mut end = 0;
    for t in cifar.tensors() {
        assert_eq!(t.offset, end);
        assert_eq!(t.len, t.shape.iter().product::<usize>());
        end += t.len;
    }
    assert_eq!(end, cifar.params().len());
    assert_eq!(cifar.grads().len(), end);
    let mlp = Network::<f32>::new(&spec("mlp:1000,1000"), image(1, 28, 28), 10, 0).unwrap();
    assert_eq!(mlp.params().len(), 785 * 1000 + 1001 * 1000 + 1001 * 10);
    let bin = Network::<f32>::new(&spec("logreg:binary"), InputShape::Flat(5), 2, 0).unwrap();
    assert_eq!((bin.outputs(), bin.params().len()), (1, 6));
}

#[test]
fn shape_errors() {
    let e = Network::<f32>::new(&spec("cnn"), InputShape::Flat(784), 10, 0).unwrap_err();
    assert!(
        matches!(e, NnError::Shape { .. }) && e.to_string().contains("image input"),
        "{e}"
    );
    let e = Network::<f32>::new(&spec("cnn"), image(1, 8, 8), 10, 0).unwrap_err();
    // 8 → 3 → 1: the third 3×3 pool has no room.
    assert!(e.to_string().contains("pool3 gets a 1×1 map"), "{e}");
    let e = Network::<f32>::new(&spec("logreg:binary"), InputShape::Flat(3), 3, 0).unwrap_err();
    assert!(e.to_string().contains("exactly 2 classes"), "{e}");
    assert!(Network::<f32>::new(&spec("logreg"), InputShape::Flat(3), 1, 0).is_err());
    assert!(Network::<f32>::new(&spec("logreg"), InputShape::Flat(0), 3, 0).is_err());
}

#[test]
fn init_is_seeded_and_scaled() {
    let s = spec("mlp:200:tanh");
    let a = Network::<f64>::new(&s, InputShape::Flat(300), 10, 5).unwrap();
    let b = Network::<f64>::new(&s, InputShape::Flat(300), 10, 5).unwrap();
    let c = Network::<f64>::new(&s, InputShape::Flat(300), 10, 6).unwrap();
    assert_eq!(a.params(), b.params());
    assert_ne!(a.params(), c.params());
    for t in a.tensors() {
        let v = &a.params()[t.range()];
        match t.kind {
            TensorKind::Bias => assert!(v.iter().all(|&x| x == 0.0), "{}", t.name),
            TensorKind::Weight => {
                // Glorot uniform on tanh layers: limit √(6/(in+out)), variance limit²/3.
                let limit = (6.0 / (t.shape[0] + t.shape[1]) as f64).sqrt();
                assert!(v.iter().all(|x| x.abs() <= limit));
                let var = v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64;
                assert!(
                    (var / (limit * limit / 3.0) - 1.0).abs() < 0.05,
                    "{} {var}",
                    t.name
                );
            }
        }
    }
    // He uniform on ReLU layers: limit √(6/fan_in); Glorot on the output layer.
    let r = Network::<f64>::new(&spec("mlp:200"), InputShape::Flat(300), 10, 5).unwrap();
    let w1 = &r.params()[r.tensors()[0].range()];
    let he = (6.0f64 / 300.0).sqrt();
    assert!(w1.iter().all(|x| x.abs() <= he) && w1.iter().any(|x| x.abs() > 0.9 * he));
    let w2 = &r.params()[r.tensors()[2].range()];
    let gl = (6.0f64 / 210.0).sqrt();
    assert!(w2.iter().all(|x| x.abs() <= gl) && w2.iter().any(|x| x.abs() > 0.9 * gl));
}

#[test]
fn gradients_are_deterministic_and_independent_of_thread_count() {
    // Shapes whose products are cut into several blocks (a 256-wide layer
    // on a batch of 128 of 28×28 images: 25M multiply-adds), and a CNN
    // whose batch spans several convolution chunks.
    let cases = [
        ("mlp:256,64:dropout=0.2", image(1, 28, 28), 128),
        (
            "cnn:4,6:pool=3/2:fc=16:dropout=0.3:input-dropout=0.1",
            image(1, 14, 14),
            20,
        ),
        ("cnn:8,16:pool=2:fc=64", image(1, 28, 28), 128),
    ];
    for (s, shape, rows) in cases {
        let model = spec(s);
        let dim = shape.len();
        let (x, y) = batch(rows, dim, 3);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut net = Network::<f32>::new(&model, shape, 10, 9).unwrap();
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let st = net
                    .loss_and_grad(
                        Input::Dense {
                            values: &x32,
                            rows,
                            dim,
                        },
                        &y,
                        &mut Rng::new(4),
                    )
                    .unwrap();
                let bits: Vec<u32> = net.grads().iter().map(|g| g.to_bits()).collect();
                (st, bits)
            })
        };
        let (s1, g1) = run(1);
        for threads in [2, 3] {
            let (sn, gn) = run(threads);
            assert_eq!(s1, sn, "{s}: {threads} threads changed the loss");
            assert!(g1 == gn, "{s}: {threads} threads changed the gradient");
        }
        let (s3b, g3b) = run(3);
        assert_eq!(s1, s3b);
        assert!(g1 == g3b, "{s}: a rerun changed the gradient");
    }
}

#[test]
fn f32_agrees_with_f64() {
    for s in ["mlp:64,32:tanh", "cnn:4,8:pool=2:fc=32"] {
        let s = spec(s);
        let (x, y) = batch(16, 14 * 14, 1);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut a = Network::<f64>::new(&s, image(1, 14, 14), 10, 2).unwrap();
        let mut b = Network::<f32>::new(&s, image(1, 14, 14), 10, 2).unwrap();
        let la = a
            .loss_and_grad(
                Input::Dense {
                    values: &x,
                    rows: 16,
                    dim: 196,
                },
                &y,
                &mut Rng::new(0),
            )
            .unwrap();
        let lb = b
            .loss_and_grad(
                Input::Dense {
                    values: &x32,
                    rows: 16,
                    dim: 196,
                },
                &y,
                &mut Rng::new(0),
            )
            .unwrap();
        assert!(
            (la.loss_sum - lb.loss_sum).abs() < 1e-5 * la.loss_sum.abs(),
            "{s}: {la:?} {lb:?}"
        );
        let scale = a.grads().iter().fold(0.0f64, |m, g| m.max(g.abs()));
        for (i, (g64, g32)) in a.grads().iter().zip(b.grads()).enumerate() {
            assert!(
                (g64 - *g32 as f64).abs() < 1e-4 * scale,
                "{s}: grad {i}: {g64} vs {g32}"
            );
        }
    }
}

/// Two Gaussian-ish blobs per class in 2-D, linearly separable by construction.
fn blobs(n: usize, seed: u64) -> (Vec<f64>, Vec<u32>) {
    let mut r = Rng::new(seed);
    let centres = [(-2.0, -2.0), (2.0, -2.0), (0.0, 2.5)];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = i % 3;
        x.push(centres[c].0 + 0.5 * r.normal());
        x.push(centres[c].1 + 0.5 * r.normal());
        y.push(c as u32);
    }
    (x, y)
}

#[test]
fn tiny_networks_learn_a_separable_problem_with_gradient_descent() {
    let (x, y) = blobs(150, 1);
    for (s, lr) in [
        ("logreg", 0.5),
        ("mlp:16:tanh", 0.3),
        ("mlp:16,16:dropout=0.1", 0.1),
        ("mlp:8:loss=mse", 0.1),
    ] {
        let mut net = Network::<f64>::new(&spec(s), InputShape::Flat(2), 3, 3).unwrap();
        let input = Input::Dense {
            values: &x,
            rows: 150,
            dim: 2,
        };
        let before = net.evaluate(input, &y).unwrap();
        let mut rng = Rng::new(8);
        for _ in 0..300 {
            net.loss_and_grad(input, &y, &mut rng).unwrap();
            let (p, g) = net.params_and_grads();
            for (p, g) in p.iter_mut().zip(g) {
                *p -= lr * g;
            }
        }
        let after = net.evaluate(input, &y).unwrap();
        assert!(
            after.mean_loss() < 0.5 * before.mean_loss(),
            "{s}: {before:?} → {after:?}"
        );
        assert!(
            after.accuracy() >= 0.97,
            "{s}: accuracy {}",
            after.accuracy()
        );
    }
    // Binary logistic regression on two of the blobs.
    let (xb, yb): (Vec<f64>, Vec<u32>) = {
        let keep: Vec<usize> = (0..150).filter(|&i| y[i] < 2).collect();
        (
            keep.iter()
                .flat_map(|&i| [x[2 * i], x[2 * i + 1]])
                .collect(),
            keep.iter().map(|&i| y[i]).collect(),
        )
    };
    let mut net = Network::<f64>::new(&spec("logreg:binary"), InputShape::Flat(2), 2, 3).unwrap();
    let input = Input::Dense {
        values: &xb,
        rows: yb.len(),
        dim: 2,
    };
    for _ in 0..200 {
        net.loss_and_grad(input, &yb, &mut Rng::new(0)).unwrap();
        let (p, g) = net.params_and_grads();
        for (p, g) in p.iter_mut().zip(g) {
            *p -= 0.5 * g;
        }
    }
    assert!(net.evaluate(input, &yb).unwrap().accuracy() >= 0.98);
}

#[test]
fn batch_validation_errors() {
    let mut net = Network::<f64>::new(&spec("mlp:4"), InputShape::Flat(3), 3, 0).unwrap();
    let mut rng = Rng::new(0);
    let x = [0.0; 6];
    let err = |r: Result<_, NnError>| match r {
        Err(NnError::Batch(m)) => m,
        other => panic!("expected a batch error, got {other:?}"),
    };
    let m = err(net.loss_and_grad(
        Input::Dense {
            values: &x,
            rows: 3,
            dim: 2,
        },
        &[0, 1, 2],
        &mut rng,
    ));
    assert!(m.contains("dim is 2"), "{m}");
    let m = err(net.loss_and_grad(
        Input::Dense {
            values: &x,
            rows: 3,
            dim: 3,
        },
        &[0, 1, 2],
        &mut rng,
    ));
    assert!(m.contains("values has 6"), "{m}");
    let m = err(net.loss_and_grad(
        Input::Dense {
            values: &x,
            rows: 2,
            dim: 3,
        },
        &[0],
        &mut rng,
    ));
    assert!(m.contains("1 labels for 2 samples"), "{m}");
    let m = err(net.loss_and_grad(
        Input::Dense {
            values: &x,
            rows: 2,
            dim: 3,
        },
        &[0, 3],
        &mut rng,
    ));
    assert!(m.contains("label 3"), "{m}");
    let m = err(net.evaluate(
        Input::Dense {
            values: &[],
            rows: 0,
            dim: 3,
        },
        &[],
    ));
    assert!(m.contains("no samples"), "{m}");
    let sp = |indptr: &'static [usize], indices: &'static [u32]| Input::Sparse {
        indptr,
        indices,
        values: &[1.0, 1.0, 1.0],
        dim: 3,
    };
    assert!(err(net.evaluate(sp(&[0, 2, 1], &[0, 1, 2]), &[0, 0])).contains("non-decreasing"));
    assert!(err(net.evaluate(sp(&[0, 4], &[0, 1, 2]), &[0])).contains("ends at 4"));
    assert!(err(net.evaluate(sp(&[0, 3], &[0, 3, 1]), &[0])).contains("feature index 3"));
    assert!(err(net.evaluate(sp(&[], &[]), &[])).contains("indptr is empty"));
    let mut cnn = Network::<f64>::new(&spec("cnn:2:fc=0:pool=2"), image(1, 4, 4), 3, 0).unwrap();
    let m = err(cnn.evaluate(
        Input::Sparse {
            indptr: &[0, 1],
            indices: &[0],
            values: &[1.0],
            dim: 16,
        },
        &[0],
    ));
    assert!(m.contains("convolution"), "{m}");
    assert!(net.set_l2(-1.0).is_err() && net.set_l2(f64::NAN).is_err() && net.set_l2(0.5).is_ok());
}

#[test]
fn buffers_are_reused_correctly_across_batch_sizes_and_kinds() {
    // Results for a batch never depend on what ran before it.
    let s = spec("cnn:3,4:pool=2:fc=8:dropout=0.2");
    let (x, y) = batch(9, 64, 2);
    let fresh = |rows: usize| {
        let mut n = Network::<f64>::new(&s, image(1, 8, 8), 10, 1).unwrap();
        let st = n
            .loss_and_grad(
                Input::Dense {
                    values: &x[..rows * 64],
                    rows,
                    dim: 64,
                },
                &y[..rows],
                &mut Rng::new(rows as u64),
            )
            .unwrap();
        (st, n.grads().to_vec())
    };
    let mut net = Network::<f64>::new(&s, image(1, 8, 8), 10, 1).unwrap();
    // Evaluation of a batch larger than any training batch comes first, so the
    // forward buffers outgrow the training ones.
    let (xl, yl) = batch(30, 64, 5);
    let big = Input::Dense {
        values: &xl,
        rows: 30,
        dim: 64,
    };
    let first = net.evaluate(big, &yl).unwrap();
    assert_eq!(first.count, 30);
    for rows in [9, 1, 4, 9, 2] {
        let st = net
            .loss_and_grad(
                Input::Dense {
                    values: &x[..rows * 64],
                    rows,
                    dim: 64,
                },
                &y[..rows],
                &mut Rng::new(rows as u64),
            )
            .unwrap();
        assert_eq!((st, net.grads().to_vec()), fresh(rows), "batch of {rows}");
        // Evaluation results agree with a fresh network holding the same parameters.
        let mut twin = Network::<f64>::new(&s, image(1, 8, 8), 10, 1).unwrap();
        twin.params_mut().copy_from_slice(net.params());
        assert_eq!(
            net.evaluate(big, &yl).unwrap(),
            twin.evaluate(big, &yl).unwrap()
        );
    }
    // Sparse, dense, sparse: the row-sparse gradient is exact each time.
    let sp = spec("mlp:3");
    let mut net = Network::<f64>::new(&sp, InputShape::Flat(6), 3, 1).unwrap();
    let mut twin = Network::<f64>::new(&sp, InputShape::Flat(6), 3, 1).unwrap();
    let a = Input::Sparse {
        indptr: &[0, 2, 3],
        indices: &[0, 5, 2],
        values: &[1.0, 2.0, -1.0],
        dim: 6,
    };
    let b = Input::Sparse {
        indptr: &[0, 1],
        indices: &[3],
        values: &[0.5],
        dim: 6,
    };
    let d = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    let dense = Input::Dense {
        values: &d,
        rows: 1,
        dim: 6,
    };
    net.loss_and_grad(a, &[0, 1], &mut Rng::new(0)).unwrap();
    assert_eq!(net.touched_rows(), Some(&[0, 2, 5][..]));
    net.loss_and_grad(dense, &[2], &mut Rng::new(0)).unwrap();
    assert_eq!(net.touched_rows(), None);
    for (input, labels) in [(b, &[1][..]), (a, &[0, 1][..]), (b, &[2][..])] {
        net.loss_and_grad(input, labels, &mut Rng::new(0)).unwrap();
        twin.loss_and_grad(input, labels, &mut Rng::new(0)).unwrap();
        assert_eq!(net.grads(), twin.grads());
    }
    assert_eq!(net.touched_rows(), Some(&[3][..]));
    // With an L2 penalty the gradient is dense, so no touched rows are claimed.
    net.set_l2(0.1).unwrap();
    net.loss_and_grad(b, &[0], &mut Rng::new(0)).unwrap();
    assert_eq!(net.touched_rows(), None);
}

#[test]
fn evaluation_has_no_dropout_and_logits_match() {
    let s = spec("mlp:32:dropout=0.5:input-dropout=0.5");
    let (x, y) = batch(8, 10, 4);
    let mut net = Network::<f64>::new(&s, InputShape::Flat(10), 10, 1).unwrap();
    let input = Input::Dense {
        values: &x,
        rows: 8,
        dim: 10,
    };
    let e1 = net.evaluate(input, &y).unwrap();
    let t1 = net.loss_and_grad(input, &y, &mut Rng::new(1)).unwrap();
    let t2 = net.loss_and_grad(input, &y, &mut Rng::new(2)).unwrap();
    let e2 = net.evaluate(input, &y).unwrap();
    assert_eq!(e1, e2);
    assert_ne!(
        t1.loss_sum, t2.loss_sum,
        "dropout masks should differ between seeds"
    );
    assert_ne!(t1.loss_sum, e1.loss_sum);
    let logits = net.logits(input).unwrap().to_vec();
    assert_eq!(logits.len(), 80);
    // Recompute the cross-entropy from the logits.
    let mut sum = 0.0;
    for (r, &label) in y.iter().enumerate() {
        let z = &logits[r * 10..(r + 1) * 10];
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        sum += m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - z[label as usize];
    }
    assert!((sum - e1.loss_sum).abs() < 1e-9);
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let mut net = Network::<f32>::new(&spec("logreg"), InputShape::Flat(1), 3, 0).unwrap();
    let w = net.tensors()[0].range();
    net.params_mut()[w].copy_from_slice(&[1e4, -1e4, 0.0]);
    let st = net
        .loss_and_grad(
            Input::Dense {
                values: &[1.0f32],
                rows: 1,
                dim: 1,
            },
            &[1],
            &mut Rng::new(0),
        )
        .unwrap();
    assert!((st.loss_sum - 2e4).abs() < 1.0, "{st:?}");
    assert!(net.grads().iter().all(|g| g.is_finite()));
    let mut bin = Network::<f32>::new(&spec("logreg:binary"), InputShape::Flat(1), 2, 0).unwrap();
    bin.params_mut()[0] = 1e4;
    let st = bin
        .loss_and_grad(
            Input::Dense {
                values: &[1.0f32],
                rows: 1,
                dim: 1,
            },
            &[0],
            &mut Rng::new(0),
        )
        .unwrap();
    assert!(
        (st.loss_sum - 1e4).abs() < 1.0 && bin.grads().iter().all(|g| g.is_finite()),
        "{st:?}"
    );
}

/// Two sparse batches over 6 features: rows {0, 2, 5}, then row {3}.
fn two_sparse_batches() -> [(Input<'static, f64>, &'static [u32]); 2] {
    [
        (
            Input::Sparse {
                indptr: &[0, 2, 3],
                indices: &[0, 5, 2],
                values: &[1.0, 2.0, -1.0],
                dim: 6,
            },
            &[0, 1],
        ),
        (
            Input::Sparse {
                indptr: &[0, 1],
                indices: &[3],
                values: &[0.5],
                dim: 6,
            },
            &[2],
        ),
    ]
}

#[test]
fn writes_through_params_and_grads_mut_never_leak_into_the_next_sparse_gradient() {
    // The sparse backward pass clears only the rows the previous batch
    // touched; a caller that wrote elsewhere (an accumulated gradient copied
    // in) used to leave those values in the next gradient.
    let [a, b] = two_sparse_batches();
    let sp = spec("mlp:3");
    let mut net = Network::<f64>::new(&sp, InputShape::Flat(6), 3, 1).unwrap();
    let mut twin = Network::<f64>::new(&sp, InputShape::Flat(6), 3, 1).unwrap();
    net.loss_and_grad(a.0, a.1, &mut Rng::new(0)).unwrap();
    assert!(net.row_sparse_grads().is_some());
    net.params_and_grads_mut().1.fill(1.0);
    assert_eq!(net.touched_rows(), None);
    assert!(net.row_sparse_grads().is_none());
    net.loss_and_grad(b.0, b.1, &mut Rng::new(0)).unwrap();
    twin.loss_and_grad(b.0, b.1, &mut Rng::new(0)).unwrap();
    assert_eq!(net.grads(), twin.grads());
    assert_eq!(net.touched_rows(), Some(&[3][..]));
}

#[test]
fn set_grads_declares_a_row_sparse_gradient_and_refuses_a_false_claim() {
    let [_, b] = two_sparse_batches();
    let sp = spec("mlp:3");
    let mut net = Network::<f64>::new(&sp, InputShape::Flat(6), 3, 1).unwrap();
    let mut twin = Network::<f64>::new(&sp, InputShape::Flat(6), 3, 1).unwrap();
    let n = net.grads().len();
    // fc1.weight is [6, 3]: rows 1 and 4 non-zero; every later tensor too.
    let mut g = vec![0.0; n];
    g[3..6].fill(1.0);
    g[12] = 2.0;
    g[18..].fill(-0.5);
    net.set_grads(&g, Some(&[1, 4])).unwrap();
    assert_eq!(net.grads(), &g[..]);
    assert_eq!(net.touched_rows(), Some(&[1, 4][..]));
    {
        let parts = net.row_sparse_grads().unwrap();
        assert_eq!(
            (
                parts.rows,
                parts.row_len,
                parts.first.len(),
                parts.rest.len()
            ),
            (&[1, 4][..], 3, 18, n - 18)
        );
        assert_eq!(parts.first, &g[..18]);
        assert_eq!(parts.params.len(), n);
    }
    let before = net.grads().to_vec();
    for (rows, want) in [
        (&[4, 1][..], "strictly increasing"),
        (&[1, 4, 6][..], "out of range"),
        (&[1][..], "row 4 is non-zero"),
    ] {
        let tripled: Vec<f64> = g.iter().map(|v| 3.0 * v).collect();
        let e = net.set_grads(&tripled, Some(rows)).unwrap_err();
        assert!(e.to_string().contains(want), "{rows:?}: {e}");
        assert_eq!(net.grads(), &before[..], "an error changes nothing");
    }
    let e = net.set_grads(&g[1..], None).unwrap_err();
    assert!(e.to_string().contains("elements"), "{e}");
    // The next sparse batch clears the declared rows: its gradient is exact.
    net.loss_and_grad(b.0, b.1, &mut Rng::new(0)).unwrap();
    twin.loss_and_grad(b.0, b.1, &mut Rng::new(0)).unwrap();
    assert_eq!(net.grads(), twin.grads());
    // Without rows nothing is claimed.
    net.set_grads(&g, None).unwrap();
    assert_eq!(net.touched_rows(), None);
    assert!(net.row_sparse_grads().is_none());
    net.loss_and_grad(b.0, b.1, &mut Rng::new(0)).unwrap();
    assert_eq!(net.grads(), twin.grads());
    // A convolution first has no rows to declare.
    let mut cnn = Network::<f64>::new(&spec("cnn:2:pool=2:fc=0"), image(1, 4, 4), 3, 1).unwrap();
    let zeros = vec![0.0; cnn.grads().len()];
    let e = cnn.set_grads(&zeros, Some(&[0])).unwrap_err();
    assert!(e.to_string().contains("convolution"), "{e}");
    cnn.set_grads(&zeros, None).unwrap();
}

#[test]
fn no_row_sparse_gradient_with_an_l2_penalty_or_after_a_dense_batch() {
    let [a, _] = two_sparse_batches();
    let mut net = Network::<f64>::new(&spec("logreg:l2=0.1"), InputShape::Flat(6), 3, 1).unwrap();
    net.loss_and_grad(a.0, a.1, &mut Rng::new(0)).unwrap();
    assert!(net.row_sparse_grads().is_none());
    let mut net = Network::<f64>::new(&spec("logreg"), InputShape::Flat(6), 3, 1).unwrap();
    net.loss_and_grad(a.0, a.1, &mut Rng::new(0)).unwrap();
    assert_eq!(net.row_sparse_grads().unwrap().rows, &[0, 2, 5]);
    let d = [0.1; 6];
    let dense = Input::Dense {
        values: &d,
        rows: 1,
        dim: 6,
    };
    net.loss_and_grad(dense, &[1], &mut Rng::new(0)).unwrap();
    assert!(net.row_sparse_grads().is_none());
}

#[test]
fn touched_rows_are_sorted_and_distinct_for_few_and_for_many_features() {
    // Few features in a wide vocabulary are sorted; many are read off a
    // bitmap in order. Either way the bitmap must be left clear.
    let dim = 10_000;
    let sp = spec("logreg");
    let mut net = Network::<f64>::new(&sp, InputShape::Flat(dim), 2, 1).unwrap();
    let mut r = Rng::new(5);
    for count in [5, 3000, 1, 40_000, 7] {
        let indices: Vec<u32> = (0..count).map(|_| r.below(dim as u64) as u32).collect();
        let values = vec![1.0; count];
        let input = Input::Sparse {
            indptr: &[0, count / 2, count],
            indices: &indices,
            values: &values,
            dim,
        };
        net.loss_and_grad(input, &[0, 1], &mut Rng::new(0)).unwrap();
        let mut want = indices.clone();
        want.sort_unstable();
        want.dedup();
        assert_eq!(net.touched_rows(), Some(&want[..]), "{count} features");
        let mut twin = Network::<f64>::new(&sp, InputShape::Flat(dim), 2, 1).unwrap();
        twin.params_mut().copy_from_slice(net.params());
        twin.loss_and_grad(input, &[0, 1], &mut Rng::new(0))
            .unwrap();
        assert_eq!(net.grads(), twin.grads(), "{count} features");
    }
}

/// The engine's loops give the same bits at every vector level
/// (`downhill::simd`): a forward and backward pass of an MLP and a CNN,
/// with each activation, capped at the baseline, at AVX2 and at AVX-512
/// where the CPU has them.
#[test]
fn every_simd_level_gives_the_same_gradient() {
    use downhill::simd::{self, Level};
    let cases = [
        ("mlp:64,32:tanh:dropout=0.2", image(1, 14, 14)),
        ("mlp:48:sigmoid", image(1, 14, 14)),
        ("cnn:4,6:pool=3/2:fc=16:input-dropout=0.1", image(1, 14, 14)),
        ("cnn:5,7:pool=2:fc=16", image(3, 13, 11)),
    ];
    let run = |s: &str, shape: &InputShape| {
        let (x, y) = batch(37, shape.len(), 5);
        let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut net = Network::<f32>::new(&spec(s), *shape, 10, 2).unwrap();
        let input = Input::Dense {
            values: &x,
            rows: 37,
            dim: shape.len(),
        };
        let st = net.loss_and_grad(input, &y, &mut Rng::new(1)).unwrap();
        let bits: Vec<u32> = net.grads().iter().map(|g| g.to_bits()).collect();
        (st.loss_sum.to_bits(), bits)
    };
    simd::set_cap(Level::Baseline);
    let base: Vec<_> = cases.iter().map(|(s, sh)| run(s, sh)).collect();
    for level in [Level::Avx2, Level::Avx512] {
        simd::set_cap(level);
        for ((s, sh), want) in cases.iter().zip(&base) {
            assert!(run(s, sh) == *want, "{s}: {} changed bits", level.name());
        }
    }
    simd::set_cap(Level::Avx512);
}
