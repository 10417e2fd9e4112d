//! SOAP and Shampoo beyond their fixtures: what has no fixture (SOAP's
//! `precondition_1d`, whose first eigenbasis is arbitrary), the failure
//! policy of their decompositions, and downhill's stored layouts.

use downhill::optim::{Driver, Optimizer, Param, Role, Rule, Shampoo, Soap};
use downhill::Rng;

fn draw(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

/// `precondition_1d`: a vector gets one d × d factor, the moving average of
/// g·gᵀ, and an orthonormal basis; without it, none, and SOAP is Adam with
/// its first step skipped and the decay after the update.
#[test]
fn soap_preconditions_vectors_only_when_asked() {
    let d = 6;
    let mut rng = Rng::new(5);
    let p0 = draw(&mut rng, d);
    let grads: Vec<Vec<f64>> = (0..12).map(|_| draw(&mut rng, d)).collect();
    let on = Soap {
        lr: 0.01,
        precondition_1d: true,
        precondition_frequency: 3,
        ..Soap::default()
    };
    let mut opt: Driver<Soap, f64> = on.clone().build(&[vec![d]]).unwrap();
    let mut p = p0.clone();
    let mut want = vec![0.0; d * d];
    let b = on.betas.1;
    for g in &grads {
        opt.step(&mut [&mut p], &[g]).unwrap();
        for i in 0..d {
            for j in 0..d {
                let x = &mut want[i * d + j];
                *x += (1.0 - b) * (g[i] * g[j] - *x);
            }
        }
    }
    let gg = opt.buffer(0, "GG").unwrap();
    for (x, y) in gg.iter().zip(&want) {
        assert!((x - y).abs() < 1e-12 * (1.0 + y.abs()), "GG {x} vs {y}");
    }
    let q = opt.buffer(0, "Q").unwrap();
    for i in 0..d {
        for j in 0..d {
            let dot: f64 = (0..d).map(|k| q[i * d + k] * q[j * d + k]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-12, "Q is not orthonormal: {dot}");
        }
    }

    // Off: Adam, in soap.py's order of operations.
    let off = Soap {
        lr: 0.01,
        weight_decay: 0.05,
        ..Soap::default()
    };
    let mut opt: Driver<Soap, f64> = off.clone().build(&[vec![d]]).unwrap();
    assert_eq!(off.buffer_shape("GG", &Param::of_shape(vec![d])), [0]);
    let mut p = p0.clone();
    let (mut m, mut v, mut q) = (vec![0.0; d], vec![0.0; d], p0.clone());
    let (b1, b2) = off.betas;
    for (t, g) in grads.iter().enumerate() {
        opt.step(&mut [&mut p], &[g]).unwrap();
        if t == 0 {
            continue;
        }
        let s = t as i32;
        let size = off.lr * (1.0 - b2.powi(s)).sqrt() / (1.0 - b1.powi(s));
        for i in 0..d {
            m[i] = m[i] * b1 + (1.0 - b1) * g[i];
            v[i] = v[i] * b2 + (1.0 - b2) * (g[i] * g[i]);
            q[i] += -size * (m[i] / (v[i].sqrt() + off.eps));
            q[i] += -off.lr * off.weight_decay * q[i];
        }
    }
    for (x, y) in p.iter().zip(&q) {
        assert!((x - y).abs() < 1e-14, "{x} vs {y}");
    }
}

/// A decomposition that fails (here: the factors turned NaN by a NaN
/// gradient the caller chose not to check) keeps the previous basis or
/// root, whole and finite, and is counted.
#[test]
fn a_failed_decomposition_keeps_the_last_basis_and_is_counted() {
    use downhill::optim::NonFinite;
    let shapes = [vec![4, 3]];
    let mut rng = Rng::new(8);
    let soap = Soap {
        lr: 0.01,
        precondition_frequency: 1,
        ..Soap::default()
    };
    let shampoo = Shampoo {
        lr: 0.01,
        epsilon: 1e-4,
        ..Shampoo::default()
    };
    let mut opts: Vec<(Box<dyn Optimizer<f64>>, &str)> = vec![
        (Box::new(soap.build::<f64>(&shapes).unwrap()), "Q"),
        (Box::new(shampoo.build::<f64>(&shapes).unwrap()), "roots"),
    ];
    for (opt, basis) in opts.iter_mut() {
        opt.set_non_finite(NonFinite::Unchecked);
        let mut p = draw(&mut rng, 12);
        for _ in 0..3 {
            opt.step(&mut [&mut p], &[&draw(&mut rng, 12)]).unwrap();
        }
        assert_eq!(opt.counters(), [("decomposition_failures", 0)]);
        let state = opt.save_state().unwrap();
        let before = state.buffer(&format!("0.{basis}")).unwrap().to_vec();
        let mut bad = draw(&mut rng, 12);
        bad[5] = f64::NAN;
        opt.step(&mut [&mut p], &[&bad]).unwrap();
        let failures = opt.counters()[0].1;
        assert!(failures >= 1, "{}: {failures} failures counted", opt.name());
        let after = opt.save_state().unwrap();
        assert_eq!(
            after.buffer(&format!("0.{basis}")).unwrap(),
            &before[..],
            "{}: the basis changed",
            opt.name()
        );
    }
}

type Boxed = Box<dyn Optimizer<f64>>;

/// downhill's engine stores a dense weight as (in, out), transposed from
/// torch's (out, in): marked as such, SOAP and Shampoo work in torch's
/// layout and give the same bits as on the torch-layout tensor, transposed.
/// (With merged dimensions or blocks the order of dimensions matters.)
#[test]
fn a_weight_stored_transposed_gets_torchs_result_transposed() {
    let (rows, cols) = (5, 3);
    let mut rng = Rng::new(9);
    let w0 = draw(&mut rng, rows * cols);
    let grads: Vec<Vec<f64>> = (0..8).map(|_| draw(&mut rng, rows * cols)).collect();
    let t = |x: &[f64]| -> Vec<f64> {
        (0..rows * cols)
            .map(|k| x[(k % rows) * cols + k / rows])
            .collect()
    };
    let torch = Param::new(vec![rows, cols], Role::Hidden);
    let stored = Param::new(vec![cols, rows], Role::Hidden).stored_transposed();
    let soap = Soap {
        lr: 0.01,
        precondition_frequency: 2,
        merge_dims: true,
        max_precond_dim: 4,
        ..Soap::default()
    };
    let shampoo = Shampoo {
        lr: 0.01,
        epsilon: 1e-4,
        max_preconditioner_dim: 4,
        precondition_frequency: 2,
        ..Shampoo::default()
    };
    let pairs: Vec<[Boxed; 2]> = vec![
        [
            Box::new(
                soap.clone()
                    .build::<f64>(std::slice::from_ref(&torch))
                    .unwrap(),
            ),
            Box::new(soap.build::<f64>(std::slice::from_ref(&stored)).unwrap()),
        ],
        [
            Box::new(
                shampoo
                    .clone()
                    .build::<f64>(std::slice::from_ref(&torch))
                    .unwrap(),
            ),
            Box::new(shampoo.build::<f64>(std::slice::from_ref(&stored)).unwrap()),
        ],
    ];
    for [mut a, mut b] in pairs {
        let (mut pa, mut pb) = (w0.clone(), t(&w0));
        for g in &grads {
            a.step(&mut [&mut pa], &[g]).unwrap();
            b.step(&mut [&mut pb], &[&t(g)]).unwrap();
        }
        assert_eq!(t(&pa), pb, "{}", a.name());
    }
}
