//! Lookahead against its definition.

use downhill::optim::{build, Optimizer, OptimizerSpec, Param, Role};
use downhill::state::SavedState;
use downhill::Rng;

fn random(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn step(opt: &mut dyn Optimizer<f64>, p: &mut [Vec<f64>], g: &[Vec<f64>]) {
    let mut ps: Vec<&mut [f64]> = p.iter_mut().map(Vec::as_mut_slice).collect();
    let gs: Vec<&[f64]> = g.iter().map(Vec::as_slice).collect();
    opt.step(&mut ps, &gs).unwrap();
}

fn params() -> Vec<Param> {
    vec![
        Param::new(vec![4, 4], Role::Hidden),
        Param::new(vec![4], Role::Bias),
    ]
}

#[test]
fn with_k_1_and_alpha_1_it_is_the_inner_optimizer() {
    for inner in [
        "sgd(lr=0.1,momentum=0.9)",
        "adam(lr=0.01)",
        "partition(hidden=muon(lr=0.02),all=adamw)",
    ] {
        let spec: OptimizerSpec = format!("lookahead({inner},k=1,alpha=1)").parse().unwrap();
        let mut a = build::<f64>(&spec, &params()).unwrap();
        let mut b = build::<f64>(&inner.parse().unwrap(), &params()).unwrap();
        let mut rng = Rng::new(1);
        let mut pa = vec![random(&mut rng, 16), random(&mut rng, 4)];
        let mut pb = pa.clone();
        for _ in 0..7 {
            let g = vec![random(&mut rng, 16), random(&mut rng, 4)];
            step(&mut *a, &mut pa, &g);
            step(&mut *b, &mut pb, &g);
        }
        assert_eq!(pa, pb, "{inner}");
    }
}

#[test]
fn the_slow_weights_move_alpha_of_the_way_every_k_steps() {
    let (k, alpha) = (3, 0.4);
    let spec: OptimizerSpec = format!("lookahead(sgd(lr=0.1,momentum=0.5),k={k},alpha={alpha})")
        .parse()
        .unwrap();
    let mut la = build::<f64>(&spec, &[6]).unwrap();
    let mut fast = build::<f64>(&"sgd(lr=0.1,momentum=0.5)".parse().unwrap(), &[6]).unwrap();
    let mut rng = Rng::new(2);
    let mut p = vec![random(&mut rng, 6)];
    let mut q = p.clone();
    let mut slow = p[0].clone();
    for t in 1..=10 {
        let g = vec![random(&mut rng, 6)];
        step(&mut *la, &mut p, &g);
        step(&mut *fast, &mut q, &g);
        if t % k == 0 {
            for (s, x) in slow.iter_mut().zip(q[0].iter_mut()) {
                *s += alpha * (*x - *s);
                *x = *s;
            }
        }
        assert_eq!(p, q, "step {t}");
    }
}

#[test]
fn a_saved_lookahead_resumes_bit_identically_mid_cycle() {
    let spec: OptimizerSpec = "lookahead(adam(lr=0.05),k=4,alpha=0.5)".parse().unwrap();
    let mut a = build::<f64>(&spec, &params()).unwrap();
    let mut rng = Rng::new(3);
    let mut p = vec![random(&mut rng, 16), random(&mut rng, 4)];
    let grads: Vec<Vec<Vec<f64>>> = (0..11)
        .map(|_| vec![random(&mut rng, 16), random(&mut rng, 4)])
        .collect();
    for g in &grads[..6] {
        step(&mut *a, &mut p, g);
    }
    let saved = a.save_state().unwrap();
    let restored =
        SavedState::from_parts(&saved.manifest_json(), &saved.tensors_bytes().unwrap()).unwrap();
    let mut b = build::<f64>(&"lookahead(adam,k=2)".parse().unwrap(), &params()).unwrap();
    b.load_state(&restored).unwrap();
    let mut q = p.clone();
    for g in &grads[6..] {
        step(&mut *a, &mut p, g);
        step(&mut *b, &mut q, g);
    }
    assert_eq!(p, q);
}

#[test]
fn lookahead_specs_parse_print_and_refuse_what_they_should() {
    let s: OptimizerSpec = "lookahead(adam(lr=0.001),k=5,alpha=0.5)".parse().unwrap();
    assert_eq!(s.to_string(), "lookahead(adam(lr=0.001),alpha=0.5,k=5)");
    assert_eq!(s.to_string().parse::<OptimizerSpec>().unwrap(), s);
    // Settings meant for the inner optimiser reach it (learning-rate tuning
    // sets `lr` on whatever spec it is given).
    let tuned = s
        .clone()
        .with("lr", downhill::hyper::HyperValue::Number(0.01));
    assert_eq!(tuned.to_string(), "lookahead(adam(lr=0.01),alpha=0.5,k=5)");
    for (bad, why) in [
        ("lookahead(k=5)", "comes first"),
        ("lookahead(adam,lr=0.1)", "not a lookahead setting"),
        ("lookahead(adam,k=0)", "`k` = 0"),
        ("lookahead(adam,alpha=1.5)", "`alpha` = 1.5"),
    ] {
        let e = bad
            .parse::<OptimizerSpec>()
            .and_then(|s| build::<f64>(&s, &[3]).map(drop))
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}
