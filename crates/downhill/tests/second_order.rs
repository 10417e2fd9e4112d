//! L-BFGS and Newton on the test problems.

use downhill::hyper::{Hyper, HyperValue};
use downhill::lbfgs::{Lbfgs, LbfgsConfig, LineSearchFn};
use downhill::newton::Newton;
use downhill::problems::{by_name, Problem, Quadratic, Rosenbrock, Saddle, PROBLEMS};
use downhill::Termination;

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn lbfgs(max_iter: usize, search: Option<LineSearchFn>) -> LbfgsConfig {
    LbfgsConfig {
        max_iter,
        max_eval: Some(10 * max_iter),
        tolerance_grad: 1e-10,
        tolerance_change: 1e-14,
        line_search_fn: search,
        ..Default::default()
    }
}

#[test]
fn newton_solves_a_quadratic_in_one_step() {
    let q = Quadratic::new(5, 1e4);
    let mut x = q.start();
    let r = Newton::default().minimize(&q, &mut x).unwrap();
    assert!(x.iter().all(|v| v.abs() < 1e-12), "{x:?}");
    assert!(r.iterations <= 2, "{r:?}");
}

#[test]
fn newton_converges_quadratically_on_rosenbrock_and_logistic() {
    for p in [
        by_name("rosenbrock", 2).unwrap(),
        by_name("rosenbrock", 3).unwrap(),
        by_name("logistic", 4).unwrap(),
    ] {
        let mut x = p.start();
        let r = Newton::default().minimize(&*p, &mut x).unwrap();
        // Newton stops when the decrement ∇fᵀH⁻¹∇f ≈ 2(f − f*) reaches
        // tolerance_change (1e-14): f is then within ~1e-14 of the minimum.
        let best = &p.stationary_points()[0];
        assert!(
            p.value(&x) - best.value < 1e-13,
            "{}: {x:?} {r:?}",
            p.name()
        );
        assert!(dist(&x, &best.x) < 1e-5, "{}: {x:?} {r:?}", p.name());
        assert!(r.iterations < 40, "{}: {r:?}", p.name());
        assert!(r.reason.converged(), "{}: {r:?}", p.name());
    }
}

#[test]
fn newton_does_not_stop_at_a_saddle() {
    // The Hessian is indefinite everywhere; the modified step still descends,
    // so the iterate leaves the ridge and f decreases without bound.
    let mut x = Saddle.start();
    let f0 = Saddle.value(&x);
    let r = Newton {
        max_iter: 20,
        ..Default::default()
    }
    .minimize(&Saddle, &mut x)
    .unwrap();
    assert!(Saddle.value(&x) < f0 - 1.0, "{x:?} {r:?}");
}

#[test]
fn lbfgs_finds_the_minimum_of_every_bounded_problem_from_its_start() {
    for name in PROBLEMS {
        let p = by_name(name, 2).unwrap();
        let Some(fmin) = p.min_value() else { continue };
        let mut x = p.start();
        let mut opt = Lbfgs::<f64>::new(lbfgs(500, Some(LineSearchFn::StrongWolfe)), 2).unwrap();
        let r = opt.step(&mut x, |x, g| p.gradient(x, g)).unwrap();
        let f = p.value(&x);
        if p.convex() || *name == "rosenbrock" || *name == "beale" {
            assert!(f - fmin < 1e-9, "{name}: f = {f}, {r:?}");
        } else {
            // Himmelblau, Rastrigin: a local minimum. Locate the one L-BFGS
            // stopped beside with Newton's method and check it is there.
            assert!(r.reason.converged(), "{name}: {r:?}");
            let mut local = x.clone();
            Newton::default().minimize(&*p, &mut local).unwrap();
            let mut h = [0.0; 4];
            p.hessian(&local, &mut h);
            assert!(
                h[0] > 0.0 && h[0] * h[3] - h[1] * h[2] > 0.0,
                "{name}: not a minimum at {local:?}"
            );
            assert!(
                dist(&x, &local) < 1e-7,
                "{name}: {x:?} vs local minimum {local:?}"
            );
        }
    }
}

#[test]
fn lbfgs_state_persists_across_calls_like_torch() {
    // Twenty calls of one iteration each follow the same path as one call of twenty.
    let p = Rosenbrock::new(4);
    let mut x1 = p.start();
    let mut one = Lbfgs::<f64>::new(lbfgs(20, Some(LineSearchFn::StrongWolfe)), 4).unwrap();
    one.step(&mut x1, |x, g| p.gradient(x, g)).unwrap();
    let mut x2 = p.start();
    let mut many = Lbfgs::<f64>::new(lbfgs(1, Some(LineSearchFn::StrongWolfe)), 4).unwrap();
    for _ in 0..20 {
        many.step(&mut x2, |x, g| p.gradient(x, g)).unwrap();
    }
    assert_eq!(many.total_iterations(), 20);
    assert!(dist(&x1, &x2) < 1e-12, "{x1:?} vs {x2:?}");
}

#[test]
fn lbfgs_without_line_search_and_with_backtracking() {
    let q = Quadratic::new(10, 100.0);
    for search in [None, Some(LineSearchFn::Backtracking)] {
        let mut x = q.start();
        let mut cfg = lbfgs(200, search);
        cfg.lr = if search.is_none() { 0.5 } else { 1.0 };
        let mut opt = Lbfgs::<f64>::new(cfg, 10).unwrap();
        let r = opt.step(&mut x, |x, g| q.gradient(x, g)).unwrap();
        assert!(q.value(&x) < 1e-12, "{search:?}: {r:?}");
    }
}

#[test]
fn lbfgs_in_f32() {
    let q = Quadratic::new(6, 10.0);
    let mut x: Vec<f32> = q.start().iter().map(|&v| v as f32).collect();
    let mut cfg = lbfgs(100, Some(LineSearchFn::StrongWolfe));
    cfg.tolerance_grad = 1e-5;
    let mut opt = Lbfgs::<f32>::new(cfg, 6).unwrap();
    let r = opt
        .step(&mut x, |x, g| {
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut gd = vec![0.0; 6];
            let f = q.gradient(&xd, &mut gd);
            for (g, v) in g.iter_mut().zip(gd) {
                *g = v as f32;
            }
            f
        })
        .unwrap();
    assert!(r.loss < 1e-8, "{r:?}");
}

#[test]
fn lbfgs_reports_bad_objectives_and_config() {
    let mut opt = Lbfgs::<f64>::new(LbfgsConfig::default(), 2).unwrap();
    let mut x = vec![1.0, 1.0];
    assert!(opt.step(&mut x, |_, _| f64::NAN).is_err());
    assert!(opt.step(&mut [0.0; 3], |_, _| 0.0).is_err());
    let mut cfg = LbfgsConfig::default();
    assert!(cfg
        .set("line_search_fn", &HyperValue::Text("wolfe".into()))
        .is_err());
    cfg.set("line_search_fn", &HyperValue::Text("strong_wolfe".into()))
        .unwrap();
    assert!(cfg.set("history_size", &HyperValue::Number(1.5)).is_err());
    cfg.set("history_size", &HyperValue::Number(0.0)).unwrap();
    assert!(Lbfgs::<f64>::new(cfg, 2).is_err());
    // A start that is already optimal stops at once.
    let q = Quadratic::new(2, 1.0);
    let mut x = vec![0.0, 0.0];
    let r = Lbfgs::<f64>::new(LbfgsConfig::default(), 2)
        .unwrap()
        .step(&mut x, |x, g| q.gradient(x, g))
        .unwrap();
    assert_eq!(
        (r.reason, r.evaluations),
        (Termination::GradientTolerance, 1)
    );
}

#[test]
fn lbfgs_state_round_trip_continues_bit_identically() {
    use downhill::state::SavedState;
    let p = Rosenbrock::new(5);
    let mut cfg = lbfgs(3, Some(LineSearchFn::StrongWolfe));
    cfg.history_size = 4;
    let mut a = Lbfgs::<f64>::new(cfg.clone(), 5).unwrap();
    let mut xa = p.start();
    for _ in 0..4 {
        a.step(&mut xa, |x, g| p.gradient(x, g)).unwrap();
    }
    let saved = a.save_state();
    let restored =
        SavedState::from_parts(&saved.manifest_json(), &saved.tensors_bytes().unwrap()).unwrap();
    let mut b = Lbfgs::<f64>::new(LbfgsConfig::default(), 5).unwrap();
    b.load_state(&restored).unwrap();
    let mut xb = xa.clone();
    for _ in 0..4 {
        a.step(&mut xa, |x, g| p.gradient(x, g)).unwrap();
        b.step(&mut xb, |x, g| p.gradient(x, g)).unwrap();
    }
    assert_eq!(xa, xb);
    assert_eq!(a.total_evaluations(), b.total_evaluations());
    let mut wrong = Lbfgs::<f64>::new(LbfgsConfig::default(), 4).unwrap();
    assert!(wrong.load_state(&restored).is_err());
}
