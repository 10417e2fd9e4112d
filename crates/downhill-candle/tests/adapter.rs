//! The adapter's behaviour around the update: roles from a VarMap, clipping,
//! the non-finite policy, schedules, learning rates, and the errors a user
//! can cause (each names the var at fault).

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer as _, VarBuilder, VarMap};
use downhill::optim::{build, NonFinite, Role, StepOutcome};
use downhill_candle::{CandleOptimizer, Config};

fn var(values: &[f32], shape: &[usize]) -> Var {
    Var::from_slice(values, shape, &Device::Cpu).unwrap()
}

fn grads(pairs: &[(&Var, &[f32])]) -> GradStore {
    let mut store = GradStore::default();
    for (v, g) in pairs {
        store.insert(v, Tensor::from_slice(g, v.shape(), &Device::Cpu).unwrap());
    }
    store
}

fn values(v: &Var) -> Vec<f32> {
    v.flatten_all().unwrap().to_vec1().unwrap()
}

/// The example's MLP, 784-512-256-10, built by candle-nn in a VarMap.
fn mlp_varmap() -> VarMap {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    candle_nn::linear(784, 512, vb.pp("fc1")).unwrap();
    candle_nn::linear(512, 256, vb.pp("fc2")).unwrap();
    candle_nn::linear(256, 10, vb.pp("fc3")).unwrap();
    varmap
}

#[test]
fn muon_gets_the_hidden_matrices_as_in_downhill_train() {
    let opt = CandleOptimizer::from_varmap(&mlp_varmap(), "muon".parse().unwrap()).unwrap();
    let lines = opt.assignment();
    assert_eq!(
        lines,
        [
            "fc1.bias [512] bias: adamw (lr 0.001)",
            "fc1.weight [512, 784] input: adamw (lr 0.001)",
            "fc2.bias [256] bias: adamw (lr 0.001)",
            "fc2.weight [256, 512] hidden: muon (lr 0.001)",
            "fc3.bias [10] bias: adamw (lr 0.001)",
            "fc3.weight [10, 256] output: adamw (lr 0.001)",
        ]
    );
    // downhill's own engine, on the same model: the same role for each
    // layer's weight and bias (its dense weights are stored (in, out)).
    let spec: downhill_nn::ModelSpec = "mlp:512,256".parse().unwrap();
    let net =
        downhill_nn::Network::<f32>::new(&spec, downhill_nn::InputShape::Flat(784), 10, 1).unwrap();
    let mut theirs: Vec<(Vec<usize>, Role)> = net
        .optimizer_params()
        .into_iter()
        .map(|p| {
            let mut shape = p.shape.clone();
            shape.reverse();
            (shape, p.role)
        })
        .collect();
    let mut ours: Vec<(Vec<usize>, Role)> = opt
        .params()
        .iter()
        .map(|p| (p.shape.clone(), p.role))
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn a_step_is_the_core_optimisers_step_with_its_clipping() {
    // Clipping by norm then by value, then SGD with momentum: the same bits
    // as downhill's own clip functions and driver on plain slices.
    let (w0, b0) = (
        vec![0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75],
        vec![0.1f32, -0.2],
    );
    let (gw, gb) = (vec![3.0f32, -4.0, 0.5, 2.0, -1.0, 6.0], vec![-2.5f32, 0.75]);
    let (w, b) = (var(&w0, &[2, 3]), var(&b0, &[2]));
    let spec = "sgd(lr=0.1,momentum=0.9,nesterov=true)";
    let cfg: Config = spec.parse().unwrap();
    let mut opt = CandleOptimizer::new(
        vec![w.clone(), b.clone()],
        cfg.clip_norm(2.0).clip_value(0.3),
    )
    .unwrap();
    let mut core = build::<f32>(&spec.parse().unwrap(), &[vec![2, 3], vec![2]]).unwrap();
    let (mut cw, mut cb) = (w0.clone(), b0.clone());
    for _ in 0..3 {
        opt.step(&grads(&[(&w, &gw), (&b, &gb)])).unwrap();
        let (mut gw, mut gb) = (gw.clone(), gb.clone());
        downhill::clip::clip_grad_norm(
            &mut [&mut gw, &mut gb],
            2.0,
            downhill::clip::Norm::P(2.0),
            false,
        )
        .unwrap();
        downhill::clip::clip_grad_value(&mut [&mut gw, &mut gb], 0.3).unwrap();
        core.step(&mut [&mut cw, &mut cb], &[&gw, &gb]).unwrap();
    }
    assert_eq!(values(&w), cw);
    assert_eq!(values(&b), cb);
}

#[test]
fn a_non_finite_gradient_is_refused_or_skipped_and_changes_nothing() {
    let (a, b) = (var(&[1.0, 2.0], &[2]), var(&[3.0, 4.0, 5.0], &[3]));
    let bad = grads(&[(&a, &[0.1, 0.2]), (&b, &[0.0, f32::NAN, 1.0])]);
    let good = grads(&[(&a, &[0.1, 0.2]), (&b, &[0.0, 0.5, 1.0])]);
    let cfg: Config = "adam(lr=0.1)".parse().unwrap();
    let mut opt = CandleOptimizer::new(vec![a.clone(), b.clone()], cfg.clone()).unwrap();
    let e = opt.step(&bad).unwrap_err().to_string();
    assert!(
        e.contains("non-finite gradient in var 1 [3] at element 1"),
        "{e}"
    );
    assert_eq!(
        (values(&a), values(&b)),
        (vec![1.0, 2.0], vec![3.0, 4.0, 5.0])
    );

    // Skip: nothing changes, the outcome says where; the next good step is
    // the first step (Adam's step count did not advance).
    let mut skip = CandleOptimizer::new(
        vec![a.clone(), b.clone()],
        cfg.clone().non_finite(NonFinite::Skip),
    )
    .unwrap();
    assert_eq!(
        skip.step_outcome(&bad).unwrap(),
        StepOutcome::Skipped { param: 1, index: 1 }
    );
    assert_eq!(
        (values(&a), values(&b)),
        (vec![1.0, 2.0], vec![3.0, 4.0, 5.0])
    );
    skip.step(&good).unwrap();
    // Adam's first step moves every coordinate with a non-zero gradient by lr.
    assert_eq!(values(&a), vec![0.9, 1.9]);

    // With clipping, the check still sees the gradient as given.
    let (c,) = (var(&[1.0, 2.0], &[2]),);
    let mut clip = CandleOptimizer::new(vec![c.clone()], cfg.clip_norm(1.0)).unwrap();
    let e = clip
        .step(&grads(&[(&c, &[f32::INFINITY, 1.0])]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("non-finite gradient in var 0 [2] at element 0 (value inf)"),
        "{e}"
    );
}

#[test]
fn schedules_drive_the_rate_per_step_or_per_epoch() {
    let a = var(&[1.0, 2.0], &[2]);
    let g = grads(&[(&a, &[0.1, 0.2])]);
    let cfg: Config = "sgd(lr=1.0)".parse().unwrap();
    let mut opt = CandleOptimizer::new(vec![a.clone()], cfg.clone())
        .unwrap()
        .with_schedule("steplr(step_size=2,gamma=0.5)")
        .unwrap();
    let mut lrs = Vec::new();
    for _ in 0..5 {
        lrs.push(opt.learning_rate());
        opt.step(&g).unwrap();
    }
    assert_eq!(lrs, [1.0, 1.0, 0.5, 0.5, 0.25]);

    let per_epoch = cfg.with_schedule("exponentiallr(gamma=0.5)").unwrap();
    let mut opt = CandleOptimizer::new(
        vec![a.clone()],
        per_epoch.schedule_unit(downhill_candle::ScheduleUnit::Epoch),
    )
    .unwrap();
    opt.step(&g).unwrap();
    opt.step(&g).unwrap();
    assert_eq!(opt.learning_rate(), 1.0);
    opt.epoch_end(None).unwrap();
    assert_eq!(opt.learning_rate(), 0.5);

    // Plateau: the metric comes at the epoch's end.
    let mut opt = CandleOptimizer::new(vec![a.clone()], "sgd(lr=1.0)".parse().unwrap())
        .unwrap()
        .with_schedule("reducelronplateau(patience=0,factor=0.1)")
        .unwrap();
    opt.step(&g).unwrap();
    assert!(opt
        .epoch_end(None)
        .unwrap_err()
        .to_string()
        .contains("needs the epoch's metric"));
    opt.epoch_end(Some(1.0)).unwrap();
    opt.epoch_end(Some(2.0)).unwrap();
    assert!((opt.learning_rate() - 0.1).abs() < 1e-15);
}

#[test]
fn set_learning_rate_keeps_a_partitions_ratios() {
    let mut opt = CandleOptimizer::from_varmap(
        &mlp_varmap(),
        "partition(hidden=muon(lr=0.02),all=adamw(lr=0.001))"
            .parse()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(opt.learning_rates(), [0.02, 0.001]);
    opt.set_learning_rate(0.01);
    assert_eq!(opt.learning_rate(), 0.01);
    assert!((opt.learning_rates()[1] - 0.0005).abs() < 1e-15);
    // A rate that cannot be set is reported by the next step.
    opt.set_learning_rate(-1.0);
    assert_eq!(opt.learning_rate(), 0.01);
    let e = opt.step(&GradStore::default()).unwrap_err().to_string();
    assert!(e.contains("set_learning_rate(-1)"), "{e}");
}

/// A rate one group cannot take leaves every group's rate as it was, with
/// and without a schedule: the first group is not set before the second
/// is refused.
#[test]
fn a_refused_learning_rate_changes_no_group() {
    for schedule in [None, Some("steplr(step_size=10)")] {
        let mut opt = CandleOptimizer::from_varmap(
            &mlp_varmap(),
            "partition(hidden=sgd(lr=0.001),all=sgd(lr=1e300))"
                .parse()
                .unwrap(),
        )
        .unwrap();
        if let Some(s) = schedule {
            opt = opt.with_schedule(s).unwrap();
        }
        // ×1e10: the first group's 1e7 is fine, the second's 1e310 is not.
        opt.set_learning_rate(1e7);
        assert_eq!(opt.learning_rates(), [0.001, 1e300], "{schedule:?}");
        let e = opt.step(&GradStore::default()).unwrap_err().to_string();
        assert!(
            e.contains("set_learning_rate(10000000)"),
            "{schedule:?}: {e}"
        );
        opt.set_learning_rate(0.01);
        assert_eq!(opt.learning_rate(), 0.01, "{schedule:?}");
    }
}

#[test]
fn user_errors_name_the_var() {
    let (a, b) = (var(&[1.0, 2.0], &[2]), var(&[3.0], &[1]));
    let cfg = || "adam".parse::<Config>().unwrap();
    let mut opt = CandleOptimizer::new(vec![a.clone(), b.clone()], cfg()).unwrap();
    let e = opt
        .step(&grads(&[(&a, &[0.1, 0.2])]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("var 1 [1] has no gradient"), "{e}");

    let varmap = mlp_varmap();
    let mut opt = CandleOptimizer::from_varmap(&varmap, cfg()).unwrap();
    let e = opt.step(&GradStore::default()).unwrap_err().to_string();
    assert!(e.contains("fc1.bias has no gradient"), "{e}");

    let e = CandleOptimizer::new(vec![a.clone(), a.clone()], cfg())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("var 0 [2] and var 1 [2] are the same var"),
        "{e}"
    );

    let d = Var::from_slice(&[1.0f64], &[1], &Device::Cpu).unwrap();
    let e = CandleOptimizer::new(vec![a.clone(), d], cfg())
        .unwrap_err()
        .to_string();
    assert!(e.contains("var 1 [1] is F64 but var 0 [2] is F32"), "{e}");

    let e = "lbfgs".parse::<Config>().unwrap_err().to_string();
    assert!(
        e.contains("lbfgs evaluates the objective several times"),
        "{e}"
    );
    let e = "adam(lr=-1)".parse::<Config>().unwrap_err().to_string();
    assert!(e.contains("`lr` = -1 is invalid"), "{e}");
    let e = cfg().clip_norm(-1.0);
    let e = CandleOptimizer::new(vec![a.clone()], e)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_norm"), "{e}");

    // A gradient of the wrong shape.
    let mut opt = CandleOptimizer::new(vec![a.clone()], cfg()).unwrap();
    let mut store = GradStore::default();
    store.insert(&a, Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    let e = opt.step(&store).unwrap_err().to_string();
    assert!(e.contains("var 0 [2] is [2] F32"), "{e}");
}

#[test]
fn every_listed_spec_parses_and_builds_over_a_varmap() {
    // Every optimiser's example specs (what `downhill optimizers` shows),
    // plus a partition and lookahead, build over candle vars and step.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let l1 = candle_nn::linear(6, 5, vb.pp("fc1")).unwrap();
    let l2 = candle_nn::linear(5, 4, vb.pp("fc2")).unwrap();
    let l3 = candle_nn::linear(4, 2, vb.pp("fc3")).unwrap();
    let x = Tensor::ones((3, 6), DType::F32, &Device::Cpu).unwrap();
    let mut specs: Vec<String> = downhill::optim::REGISTRY
        .iter()
        .flat_map(|e| e.examples.iter().map(|s| s.to_string()))
        .collect();
    specs.extend([
        "muon".into(),
        "partition(hidden=muon(lr=0.02),all=adamw)".into(),
        "lookahead(adam,k=5,alpha=0.5)".into(),
    ]);
    for spec in &specs {
        let mut opt = CandleOptimizer::from_varmap(&varmap, spec.parse().unwrap())
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        // Some step must move something, compared step by step: two sign
        // steps of Lion can cancel exactly (as they once did here), and
        // ADOPT's first step only starts its second moment.
        let mut before: Vec<f32> = opt.vars().iter().flat_map(values).collect();
        let mut moved = false;
        for _ in 0..2 {
            use candle_core::Module;
            let h = l1.forward(&x).unwrap().tanh().unwrap();
            let h = l2.forward(&h).unwrap().tanh().unwrap();
            let loss = l3.forward(&h).unwrap().sqr().unwrap().sum_all().unwrap();
            opt.backward_step(&loss)
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
            let after: Vec<f32> = opt.vars().iter().flat_map(values).collect();
            moved |= before != after;
            assert!(after.iter().all(|x| x.is_finite()), "{spec}");
            before = after;
        }
        assert!(moved, "{spec} changed nothing in two steps");
    }
    assert!(specs.len() > 21, "{} specs", specs.len());
}

#[test]
fn thousands_of_vars_step_on_a_test_threads_stack() {
    // The in-place step nests one frame per var (see src/cpu.rs): up to 256
    // on the caller's stack, more on a helper thread with a stack to fit.
    // 1,000 and 20,000 vars, on the 2 MiB stack of a test thread.
    for n in [1000, 20_000] {
        let vars: Vec<Var> = (0..n).map(|i| var(&[i as f32, 1.0], &[2])).collect();
        let mut store = GradStore::default();
        for v in &vars {
            store.insert(
                v,
                Tensor::from_slice(&[0.5f32, -0.5], 2, &Device::Cpu).unwrap(),
            );
        }
        let mut opt = CandleOptimizer::new(vars.clone(), "sgd(lr=0.1)".parse().unwrap()).unwrap();
        opt.step(&store).unwrap();
        assert_eq!(values(&vars[n - 1]), vec![n as f32 - 1.05, 1.05]);
        assert_eq!(values(&vars[0]), vec![-0.05, 1.05]);
    }
}

#[test]
fn an_optimiser_over_no_vars_steps_and_does_nothing() {
    let mut opt = CandleOptimizer::empty("adamw".parse().unwrap()).unwrap();
    opt.step(&GradStore::default()).unwrap();
    assert!(opt.vars().is_empty());
}
