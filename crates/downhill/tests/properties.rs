//! Properties every optimiser and schedule must have, checked over all of them
//! (one table-driven battery, as optax does).

use downhill::hyper::HyperValue;
use downhill::optim::{
    build, describe, NonFinite, Optimizer, OptimizerSpec, StepOutcome, OPTIMIZERS, REGISTRY,
};
use downhill::schedule::{Schedule, Scheduler};
use downhill::state::SavedState;
use downhill::{Real, Rng};
use proptest::prelude::*;

/// Every registered optimiser with the settings its registry entry lists
/// (they exercise its state: momentum, amsgrad, centered, ...), at rates
/// suited to a unit-scale quadratic.
fn configured() -> Vec<OptimizerSpec> {
    REGISTRY
        .iter()
        .flat_map(|e| e.examples)
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

/// Whether the optimiser has a hyper-parameter called `name`.
fn has(spec: &OptimizerSpec, name: &str) -> bool {
    describe(&spec.name).unwrap().iter().any(|h| h.name == name)
}

/// The spec with weight decay off, where it has any (ASGD's `lambd` is a
/// decay term of its own).
fn without_decay(spec: &OptimizerSpec) -> OptimizerSpec {
    let mut spec = spec.clone();
    for decay in ["weight_decay", "lambd"] {
        if has(&spec, decay) {
            spec = spec.with(decay, HyperValue::Number(0.0));
        }
    }
    spec
}

fn random_vec<T: Real>(rng: &mut Rng, n: usize, scale: f64) -> Vec<T> {
    (0..n).map(|_| T::from_f64(scale * rng.normal())).collect()
}

fn random_tensors<T: Real>(rng: &mut Rng, shapes: &[Vec<usize>], scale: f64) -> Vec<Vec<T>> {
    shapes
        .iter()
        .map(|s| random_vec(rng, s.iter().product(), scale))
        .collect()
}

fn step<T: Real>(
    opt: &mut dyn Optimizer<T>,
    params: &mut [Vec<T>],
    grads: &[Vec<T>],
) -> StepOutcome {
    let mut ps: Vec<&mut [T]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
    let gs: Vec<&[T]> = grads.iter().map(|g| g.as_slice()).collect();
    opt.step(&mut ps, &gs).unwrap()
}

/// A matrix (a hidden layer, for rules that need one) and a vector.
fn matrix_and_vector() -> Vec<Vec<usize>> {
    vec![vec![4, 3], vec![3]]
}

#[test]
fn every_registered_optimizer_has_examples_that_build() {
    let names: Vec<String> = configured().iter().map(|s| s.name.clone()).collect();
    for name in OPTIMIZERS {
        assert!(names.iter().any(|n| n == name), "{name} is not exercised");
    }
    for e in REGISTRY {
        assert!(!e.use_when.is_empty(), "{}", e.name);
    }
}

#[test]
fn zero_gradient_without_weight_decay_leaves_parameters_unchanged() {
    for spec in configured() {
        let spec = without_decay(&spec);
        // Two hidden matrices: `muon` alone then trains both itself (with a
        // vector, AdamW would join in with its own default decay).
        let shapes = vec![vec![4, 3], vec![3, 5]];
        let mut rng = Rng::new(1);
        let mut params = random_tensors::<f64>(&mut rng, &shapes, 1.0);
        let before = params.clone();
        let mut opt = build::<f64>(&spec, &shapes).unwrap();
        let zeros: Vec<Vec<f64>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
        for _ in 0..5 {
            step(&mut *opt, &mut params, &zeros);
        }
        assert_eq!(params, before, "{spec}");
    }
}

#[test]
fn maximize_mirrors_the_minimising_path() {
    for spec in configured().into_iter().filter(|s| has(s, "maximize")) {
        let shapes = matrix_and_vector();
        let mut rng = Rng::new(2);
        let p0 = random_tensors::<f64>(&mut rng, &shapes, 1.0);
        let grads: Vec<Vec<Vec<f64>>> = (0..10)
            .map(|_| random_tensors(&mut rng, &shapes, 1.0))
            .collect();
        let mut a = p0.clone();
        let mut b = p0.clone();
        let mut min = build::<f64>(&spec, &shapes).unwrap();
        let mut max = build::<f64>(
            &spec.clone().with("maximize", HyperValue::Bool(true)),
            &shapes,
        )
        .unwrap();
        for g in &grads {
            step(&mut *min, &mut a, g);
            let neg: Vec<Vec<f64>> = g.iter().map(|t| t.iter().map(|x| -x).collect()).collect();
            step(&mut *max, &mut b, &neg);
        }
        assert_eq!(a, b, "{spec}");
    }
}

/// f(x) = ½ Σ λᵢ xᵢ² with λ from 0.5 to 2, over a 4×4 matrix.
fn quadratic_run<T: Real>(spec: &OptimizerSpec, steps: usize) -> (f64, f64) {
    let n = 16;
    let lambda: Vec<f64> = (0..n)
        .map(|i| 0.5 + 1.5 * i as f64 / (n - 1) as f64)
        .collect();
    let f = |x: &[T]| {
        0.5 * x
            .iter()
            .zip(&lambda)
            .map(|(&x, l)| l * x.to_f64() * x.to_f64())
            .sum::<f64>()
    };
    let mut rng = Rng::new(3);
    let mut x = vec![random_vec::<T>(&mut rng, n, 1.0)];
    let f0 = f(&x[0]);
    let mut opt = build::<T>(spec, &[vec![4usize, 4]]).unwrap();
    for _ in 0..steps {
        let g: Vec<T> = x[0]
            .iter()
            .zip(&lambda)
            .map(|(&x, &l)| T::from_f64(l) * x)
            .collect();
        step(&mut *opt, &mut x, &[g]);
    }
    (f0, f(&x[0]))
}

#[test]
fn every_optimizer_decreases_a_convex_quadratic() {
    for spec in configured() {
        let (f0, f) = quadratic_run::<f64>(&spec, 200);
        assert!(f < 0.05 * f0, "{spec}: f went from {f0} to {f}");
        let (f0, f) = quadratic_run::<f32>(&spec, 200);
        assert!(f < 0.05 * f0, "{spec} (f32): f went from {f0} to {f}");
    }
}

fn round_trip_determinism<T: Real>() {
    for spec in configured() {
        let mut rng = Rng::new(4);
        let shapes = vec![vec![5], vec![1], vec![3, 4], vec![2, 2, 2, 3]];
        let mut params = random_tensors::<T>(&mut rng, &shapes, 1.0);
        let grads: Vec<Vec<Vec<T>>> = (0..12)
            .map(|_| random_tensors(&mut rng, &shapes, 1.0))
            .collect();
        let mut opt = build::<T>(&spec, &shapes).unwrap();
        for g in &grads[..6] {
            step(&mut *opt, &mut params, g);
        }
        // Through the on-disk representation: JSON text and safetensors bytes.
        let saved = opt.save_state().unwrap();
        let restored =
            SavedState::from_parts(&saved.manifest_json(), &saved.tensors_bytes().unwrap())
                .unwrap();
        assert_eq!(restored, saved, "{spec}");
        let mut fresh = build::<T>(&OptimizerSpec::new(&spec.name), &shapes).unwrap();
        fresh.load_state(&restored).unwrap();
        for g in 0..opt.num_groups() {
            assert_eq!(fresh.hyper(g), opt.hyper(g), "{spec}");
        }
        let mut params2 = params.clone();
        for g in &grads[6..] {
            step(&mut *opt, &mut params, g);
            step(&mut *fresh, &mut params2, g);
        }
        let bits = |v: &Vec<Vec<T>>| -> Vec<u64> {
            v.iter().flatten().map(|&x| x.to_f64().to_bits()).collect()
        };
        assert_eq!(bits(&params), bits(&params2), "{spec}");
    }
}

#[test]
fn state_round_trip_is_bit_exact_f64() {
    round_trip_determinism::<f64>();
}

#[test]
fn state_round_trip_is_bit_exact_f32() {
    round_trip_determinism::<f32>();
}

#[test]
fn loading_mismatched_state_is_refused_and_changes_nothing() {
    let mut adam = build::<f32>(&"adam".parse().unwrap(), &[4]).unwrap();
    let mut p = vec![vec![1.0f32; 4]];
    step(&mut *adam, &mut p, &[vec![0.5; 4]]);
    let saved = adam.save_state().unwrap();
    let mut sgd = build::<f32>(&"sgd".parse().unwrap(), &[4]).unwrap();
    assert!(sgd
        .load_state(&saved)
        .unwrap_err()
        .to_string()
        .contains("saved by `adam`"));
    let mut other = build::<f32>(&"adam".parse().unwrap(), &[5]).unwrap();
    assert!(other
        .load_state(&saved)
        .unwrap_err()
        .to_string()
        .contains("shapes"));
    let mut reshaped = build::<f32>(&"adam".parse().unwrap(), &[vec![2usize, 2]]).unwrap();
    assert!(reshaped
        .load_state(&saved)
        .unwrap_err()
        .to_string()
        .contains("shapes [[4]], not [[2, 2]]"));
    let mut f64_adam = build::<f64>(&"adam".parse().unwrap(), &[4]).unwrap();
    assert!(f64_adam
        .load_state(&saved)
        .unwrap_err()
        .to_string()
        .contains("f32"));
    let mut broken = saved.clone();
    broken.buffers[0].1.pop();
    let mut target = build::<f32>(&"adam".parse().unwrap(), &[4]).unwrap();
    assert!(target.load_state(&broken).is_err());
    assert_eq!(target.steps(0), 0);
    assert!(SavedState::from_parts("{not json", &[]).is_err());
}

/// Values that no hyper-parameter of this kind accepts.
fn invalid_values(hyper: &str, default: &HyperValue) -> Vec<HyperValue> {
    match default {
        // An exponent like Adafactor's `beta2_decay` is ≤ 0: +1 is out of range for it.
        HyperValue::Number(_) if hyper == "beta2_decay" => vec![
            HyperValue::Number(1.0),
            HyperValue::Number(f64::NAN),
            HyperValue::Bool(true),
        ],
        HyperValue::Number(_) => vec![
            HyperValue::Number(-1.0),
            HyperValue::Number(f64::NAN),
            HyperValue::Bool(true),
        ],
        HyperValue::Bool(_) => vec![HyperValue::Number(0.5), HyperValue::Text("yes".into())],
        HyperValue::List(_) => vec![
            HyperValue::List(vec![f64::NAN, 0.5]),
            HyperValue::List(vec![-0.1, 0.9]),
            HyperValue::List(vec![0.9]),
            HyperValue::Number(0.9),
        ],
        HyperValue::OptList(_) => vec![
            HyperValue::OptList(vec![None, None]),
            HyperValue::OptList(vec![Some(-1.0), Some(0.1)]),
            HyperValue::List(vec![0.9]),
            HyperValue::Number(0.9),
        ],
        HyperValue::Text(_) => vec![HyperValue::Text("nonsense".into()), HyperValue::Number(1.0)],
        // An optional number (none by default): a bad number or a word.
        HyperValue::Null => vec![
            HyperValue::Number(-1.0),
            HyperValue::Number(f64::NAN),
            HyperValue::Text("nonsense".into()),
        ],
    }
}

#[test]
fn every_invalid_hyper_parameter_is_an_error_naming_it() {
    for name in OPTIMIZERS {
        for h in describe(name).unwrap() {
            for v in invalid_values(h.name, &h.default) {
                let spec = OptimizerSpec::new(name).with(h.name, v.clone());
                let err = match build::<f32>(&spec, &[vec![3usize, 3]]) {
                    Ok(_) => panic!("{name}: `{}` = {v} was accepted", h.name),
                    Err(e) => e.to_string(),
                };
                assert!(err.contains(&format!("`{}`", h.name)), "{name}: {err}");
                assert!(err.contains(name), "{name}: {err}");
            }
        }
    }
    let e = build::<f32>(&"sgd(nesterov=true)".parse().unwrap(), &[1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("nesterov") && e.contains("momentum"), "{e}");
    let e = build::<f32>(
        &"sgd(nesterov=true,momentum=0.9,dampening=0.5)"
            .parse()
            .unwrap(),
        &[1],
    )
    .unwrap_err();
    assert!(e.to_string().contains("dampening"), "{e}");
    // Changing a hyper-parameter to a bad value between steps fails and keeps the old one.
    let mut opt = build::<f32>(&"adam(lr=0.1)".parse().unwrap(), &[1]).unwrap();
    assert!(opt.set_lr(0, -1.0).is_err());
    assert_eq!(opt.lr(0), 0.1);
}

#[test]
fn non_finite_gradients_are_reported_or_skipped_without_changing_anything() {
    for spec in configured() {
        let shapes = vec![vec![2, 3], vec![4]];
        let mut rng = Rng::new(5);
        let mut params = random_tensors::<f32>(&mut rng, &shapes, 1.0);
        let good = random_tensors::<f32>(&mut rng, &shapes, 1.0);
        let mut bad = good.clone();
        bad[1][2] = f32::INFINITY;
        let mut opt = build::<f32>(&spec, &shapes).unwrap();
        step(&mut *opt, &mut params, &good);
        let (p_before, s_before) = (params.clone(), opt.save_state().unwrap());

        let mut ps: Vec<&mut [f32]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
        let gs: Vec<&[f32]> = bad.iter().map(|g| g.as_slice()).collect();
        let e = opt.step(&mut ps, &gs).unwrap_err().to_string();
        assert!(e.contains("parameter 1 at element 2"), "{spec}: {e}");
        assert_eq!(params, p_before, "{spec}");
        assert_eq!(opt.save_state().unwrap(), s_before, "{spec}");

        opt.set_non_finite(NonFinite::Skip);
        assert_eq!(
            step(&mut *opt, &mut params, &bad),
            StepOutcome::Skipped { param: 1, index: 2 }
        );
        bad[0][0] = f32::NAN;
        let mut flat_p: Vec<f32> = params.concat();
        let flat_g: Vec<f32> = bad.concat();
        assert_eq!(
            opt.step_flat(&mut flat_p, &flat_g).unwrap(),
            StepOutcome::Skipped { param: 0, index: 0 }
        );
        assert_eq!(params, p_before, "{spec}");
        assert_eq!(opt.save_state().unwrap(), s_before, "{spec}");
    }
}

/// Runs 3 steps of `spec` on `shapes` (large enough to be split across
/// threads) on a pool of `threads`, through `step` and through `step_flat`.
fn run_on_threads(
    spec: &OptimizerSpec,
    shapes: &[Vec<usize>],
    threads: usize,
) -> (Vec<f32>, Vec<f32>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut rng = Rng::new(6);
        let mut sliced = random_tensors::<f32>(&mut rng, shapes, 1.0);
        let mut flat = sliced.concat();
        let mut a = build::<f32>(spec, shapes).unwrap();
        let mut b = build::<f32>(spec, shapes).unwrap();
        for _ in 0..3 {
            let g = random_tensors::<f32>(&mut rng, shapes, 1.0);
            step(&mut *a, &mut sliced, &g);
            b.step_flat(&mut flat, &g.concat()).unwrap();
        }
        (sliced.concat(), flat)
    })
}

#[test]
fn flat_steps_equal_sliced_steps_and_the_thread_count_changes_no_bit() {
    // 360k elements in a square matrix (split across the pool in halves, or
    // in row blocks), and wide and tall matrices whose products (Muon's
    // Newton–Schulz) are cut into blocks of both kinds, with a vector; one,
    // two and three threads.
    for shapes in [
        vec![vec![600, 600], vec![600]],
        vec![vec![96, 1000], vec![1000, 96], vec![96]],
    ] {
        for spec in configured() {
            let (one, flat) = run_on_threads(&spec, &shapes, 1);
            assert_eq!(one, flat, "{spec}: flat and sliced steps differ");
            for threads in [2, 3] {
                let (many, _) = run_on_threads(&spec, &shapes, threads);
                let differ = one
                    .iter()
                    .zip(&many)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                assert_eq!(
                    differ, 0,
                    "{spec} on {shapes:?}: {threads} threads changed {differ} values"
                );
            }
        }
    }
}

#[test]
fn element_wise_rules_give_the_same_bits_however_a_tensor_is_cut() {
    for spec in configured() {
        if !downhill::optim::registry::entry(&spec.name)
            .unwrap()
            .elementwise
        {
            continue;
        }
        let mut rng = Rng::new(6);
        let n = 200_000;
        let mut whole = vec![random_vec::<f32>(&mut rng, n, 1.0)];
        let sizes: Vec<usize> = (0..50).map(|_| n / 50).collect();
        let mut pieces: Vec<Vec<f32>> = whole[0].chunks(n / 50).map(|c| c.to_vec()).collect();
        let mut a = build::<f32>(&spec, &[n]).unwrap();
        let mut b = build::<f32>(&spec, &sizes).unwrap();
        for _ in 0..3 {
            let g = random_vec::<f32>(&mut rng, n, 1.0);
            step(&mut *a, &mut whole, std::slice::from_ref(&g));
            let gp: Vec<Vec<f32>> = g.chunks(n / 50).map(|c| c.to_vec()).collect();
            step(&mut *b, &mut pieces, &gp);
        }
        assert_eq!(whole[0], pieces.concat(), "{spec}");
    }
}

#[test]
fn parameter_groups_are_independent() {
    // Tensor 0 in a group with lr 0.1, tensor 1 with lr 0.01: each must follow
    // exactly the path of a single-group optimiser with its own settings.
    for spec in configured() {
        // Prodigy's groups share one estimate d by design (prodigyopt's too).
        if downhill::optim::registry::entry(&spec.name)
            .unwrap()
            .shares_groups
        {
            continue;
        }
        let mut grouped = spec.clone();
        grouped.groups = vec![
            downhill::optim::GroupSpec {
                params: vec![0],
                hyper: Default::default(),
            },
            downhill::optim::GroupSpec {
                params: vec![1],
                hyper: [("lr".to_string(), HyperValue::Number(0.01))]
                    .into_iter()
                    .collect(),
            },
        ];
        let shape = vec![vec![5usize, 5]];
        let mut rng = Rng::new(7);
        let mut both = random_tensors::<f64>(&mut rng, &[vec![5, 5], vec![5, 5]], 1.0);
        let mut first = vec![both[0].clone()];
        let mut second = vec![both[1].clone()];
        let mut g_opt = build::<f64>(&grouped, &[vec![5usize, 5], vec![5, 5]]).unwrap();
        let mut o1 = build::<f64>(&spec, &shape).unwrap();
        let mut o2 =
            build::<f64>(&spec.clone().with("lr", HyperValue::Number(0.01)), &shape).unwrap();
        for _ in 0..5 {
            let g = random_tensors::<f64>(&mut rng, &[vec![5, 5], vec![5, 5]], 1.0);
            step(&mut *g_opt, &mut both, &g);
            step(&mut *o1, &mut first, &g[..1]);
            step(&mut *o2, &mut second, &g[1..]);
        }
        assert_eq!(both[0], first[0], "{spec}");
        assert_eq!(both[1], second[0], "{spec}");
    }
}

#[test]
fn sparse_steps_touch_only_listed_rows_and_match_dense_where_they_should() {
    // Adagrad and plain SGD: a sparse step equals a dense step whose gradient
    // is zero outside the rows (their state does not move on a zero gradient).
    for spec in ["adagrad(lr=0.3)", "sgd(lr=0.2)"] {
        let spec: OptimizerSpec = spec.parse().unwrap();
        let (rows, cols) = (6, 3);
        let mut rng = Rng::new(8);
        let mut dense = random_vec::<f64>(&mut rng, rows * cols, 1.0);
        let mut sparse = dense.clone();
        let mut d = build::<f64>(&spec, &[rows * cols]).unwrap();
        let mut s = build::<f64>(&spec, &[rows * cols]).unwrap();
        for k in 0..4u32 {
            let touched = [k % 3, 4, 5 - (k % 2)];
            let mut touched: Vec<u32> = touched.to_vec();
            touched.sort();
            touched.dedup();
            let values = random_vec::<f64>(&mut rng, touched.len() * cols, 1.0);
            let mut g = vec![0.0; rows * cols];
            for (i, &r) in touched.iter().enumerate() {
                g[r as usize * cols..][..cols].copy_from_slice(&values[i * cols..][..cols]);
            }
            d.step_flat(&mut dense, &g).unwrap();
            s.step_sparse(0, &mut sparse, &touched, cols, &values)
                .unwrap();
        }
        assert_eq!(dense, sparse, "{spec}");
    }
    // Adam: lazy, like torch's SparseAdam — untouched rows and their moments stay put.
    let mut adam = build::<f64>(&"adam(lr=0.1)".parse().unwrap(), &[8]).unwrap();
    let mut p = vec![1.0; 8];
    adam.step_sparse(0, &mut p, &[1, 3], 2, &[0.5, -0.5, 1.0, 2.0])
        .unwrap();
    assert_eq!(&p[..2], &[1.0, 1.0]);
    assert_eq!(&p[4..6], &[1.0, 1.0]);
    // First Adam step moves each touched coordinate by lr against the gradient's sign.
    for (x, want) in p[2..4].iter().chain(&p[6..8]).zip([0.9, 1.1, 0.9, 0.9]) {
        assert!((x - want).abs() < 1e-6, "{p:?}");
    }
    assert!(
        adam.step_sparse(0, &mut p, &[3, 1], 2, &[0.0; 4]).is_err(),
        "rows must increase"
    );
    assert!(
        adam.step_sparse(0, &mut p, &[4], 2, &[0.0; 2]).is_err(),
        "row out of range"
    );
    assert!(
        adam.step_sparse(0, &mut p, &[1], 3, &[0.0; 3]).is_err(),
        "8 is not a multiple of 3"
    );
}

#[test]
fn learning_rate_changes_between_steps_take_effect() {
    let mut opt = build::<f64>(&"sgd(lr=0.1)".parse().unwrap(), &[1]).unwrap();
    let mut p = vec![vec![1.0]];
    step(&mut *opt, &mut p, &[vec![1.0]]);
    assert_eq!(p[0][0], 0.9);
    opt.set_lr(0, 0.5).unwrap();
    step(&mut *opt, &mut p, &[vec![1.0]]);
    assert_eq!(p[0][0], 0.4);
    opt.set_hyper(0, "momentum", &HyperValue::Number(0.5))
        .unwrap();
    step(&mut *opt, &mut p, &[vec![1.0]]);
    assert!(p[0][0] < 0.4);
}

fn schedules() -> Vec<Schedule> {
    [
        "constant",
        "steplr(step_size=3,gamma=0.5)",
        "multisteplr(milestones=2,5,9,gamma=0.3)",
        "exponentiallr(gamma=0.95)",
        "cosineannealinglr(T_max=10,eta_min=0.001)",
        "cosineannealingwarmrestarts(T_0=3,T_mult=2,eta_min=0.0001)",
        "linearlr(start_factor=0.1,total_iters=4)",
        "constantlr(factor=0.5,total_iters=3)",
        "polynomiallr(total_iters=10,power=2)",
        "onecyclelr(max_lr=0.5,total_steps=20)",
        "onecyclelr(max_lr=0.5,total_steps=20,three_phase=true,anneal_strategy=linear)",
        "cycliclr(base_lr=0.01,max_lr=0.1,step_size_up=4,mode=triangular2)",
        "cycliclr(base_lr=0.01,max_lr=0.1,step_size_up=3,step_size_down=5,mode=exp_range,gamma=0.9)",
        "wsd(warmup_steps=3,stable_steps=4,decay_steps=6,decay=cosine,start_factor=0.1)",
        "inversetimelr(decay_rate=0.5)",
        "inversesqrtlr",
        "sequentiallr(linearlr(start_factor=0.1,total_iters=3),cosineannealinglr(T_max=10),milestones=3)",
        "reducelronplateau(patience=1,factor=0.5)",
    ]
    .iter()
    .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Finite inputs give finite outputs, for every optimiser.
    #[test]
    fn finite_inputs_give_finite_outputs(seed in 0u64..1000, scale in prop::sample::select(vec![1e-6, 1e-2, 1.0, 1e3])) {
        for spec in configured() {
            let mut rng = Rng::new(seed);
            let mut p = vec![random_vec::<f32>(&mut rng, 12, scale)];
            let mut opt = build::<f32>(&spec, &[vec![3usize, 4]]).unwrap();
            for _ in 0..5 {
                let g = vec![random_vec::<f32>(&mut rng, 12, scale)];
                step(&mut *opt, &mut p, &g);
            }
            prop_assert!(p[0].iter().all(|x| x.is_finite()), "{}: {:?}", spec, p);
        }
    }

    /// A schedule never produces a negative or non-finite learning rate.
    #[test]
    fn schedules_give_finite_non_negative_rates(base in 1e-6f64..10.0, metrics in prop::collection::vec(0.0f64..5.0, 40)) {
        for schedule in schedules() {
            let mut opt = build::<f32>(&OptimizerSpec::new("sgd").with("lr", HyperValue::Number(base)).with("momentum", HyperValue::Number(0.5)), &[1]).unwrap();
            let mut sched = Scheduler::new(schedule.clone(), &mut *opt).unwrap();
            for &m in &metrics {
                sched.step(&mut *opt, Some(m)).unwrap();
                let lr = opt.lr(0);
                prop_assert!(lr.is_finite() && lr >= 0.0, "{:?}: lr {}", schedule, lr);
            }
        }
    }
}

#[test]
fn scheduler_state_round_trips_through_json() {
    for schedule in schedules() {
        let mut opt = build::<f64>(&"sgd(lr=0.1,momentum=0.9)".parse().unwrap(), &[1]).unwrap();
        let mut a = Scheduler::new(schedule.clone(), &mut *opt).unwrap();
        let metrics = [3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0];
        for &m in &metrics[..4] {
            a.step(&mut *opt, Some(m)).unwrap();
        }
        let json = serde_json::to_string(&a).unwrap();
        let mut b: Scheduler = serde_json::from_str(&json).unwrap();
        assert_eq!(a, b);
        let mut opt2 = build::<f64>(&"sgd(lr=0.1,momentum=0.9)".parse().unwrap(), &[1]).unwrap();
        opt2.load_state(&opt.save_state().unwrap()).unwrap();
        for &m in &metrics[4..] {
            a.step(&mut *opt, Some(m)).unwrap();
            b.step(&mut *opt2, Some(m)).unwrap();
            assert_eq!(opt.lr(0).to_bits(), opt2.lr(0).to_bits(), "{schedule:?}");
        }
    }
}

#[test]
fn bad_schedules_are_errors() {
    for bad in [
        "steplr(step_size=0)",
        "cosineannealinglr(T_max=0)",
        "multisteplr(milestones=5,3)",
        "onecyclelr(pct_start=1.5)",
        "reducelronplateau(factor=1.0)",
        "reducelronplateau(mode=sideways)",
        "linearlr(foo=1)",
        "sequentiallr(steplr,steplr)",
        "sequentiallr(steplr,reducelronplateau,milestones=3)",
        "nonsense",
    ] {
        assert!(bad.parse::<Schedule>().is_err(), "{bad} was accepted");
    }
    let mut opt = build::<f32>(&"adagrad".parse().unwrap(), &[1]).unwrap();
    let e = Scheduler::new("onecyclelr".parse().unwrap(), &mut *opt).unwrap_err();
    assert!(e.to_string().contains("cycle_momentum"), "{e}");
    let mut opt = build::<f32>(&"sgd".parse().unwrap(), &[1]).unwrap();
    let mut s = Scheduler::new("reducelronplateau".parse().unwrap(), &mut *opt).unwrap();
    assert!(s.step(&mut *opt, None).is_err());
    assert!(s.step(&mut *opt, Some(f64::NAN)).is_err());
}

/// `Scheduler::scale` checks every group before it changes any: with rates
/// 1e-3 and 1e300, a factor of 1e10 is refused and leaves both rates, and
/// the scheduler's own, as they were (it used to set the first group to
/// 1e7 first, and every later step then failed).
#[test]
fn a_refused_scale_changes_no_group() {
    use downhill::optim::Sgd;
    use downhill::optim::{Driver, Group};
    for schedule in ["steplr(step_size=5)", "reducelronplateau(patience=1)"] {
        let groups = vec![
            Group {
                rule: Sgd {
                    lr: 1e-3,
                    ..Sgd::default()
                },
                params: vec![0],
            },
            Group {
                rule: Sgd {
                    lr: 1e300,
                    ..Sgd::default()
                },
                params: vec![1],
            },
        ];
        let mut opt =
            Driver::<Sgd, f64>::with_groups(groups, vec![[2].into(), [2].into()]).unwrap();
        let mut sched = Scheduler::new(schedule.parse::<Schedule>().unwrap(), &mut opt).unwrap();
        let e = sched.scale(&mut opt, 1e10).unwrap_err().to_string();
        assert!(e.contains("group 1"), "{schedule}: {e}");
        assert_eq!([opt.lr(0), opt.lr(1)], [1e-3, 1e300], "{schedule}");
        assert_eq!(sched.lrs(), [1e-3, 1e300], "{schedule}");
        // Nothing is left half-done: steps and a valid scale still work.
        let (mut a, mut b) = (vec![1.0; 2], vec![1.0; 2]);
        opt.step(&mut [&mut a, &mut b], &[&[0.5; 2], &[0.0; 2]])
            .unwrap();
        sched.step(&mut opt, Some(1.0)).unwrap();
        sched.scale(&mut opt, 0.5).unwrap();
        assert_eq!(opt.lr(0), 5e-4, "{schedule}");
    }
}
