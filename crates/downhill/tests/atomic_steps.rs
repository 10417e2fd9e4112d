//! A step, a load or a schedule step is taken whole or not at all: whatever
//! can fail is checked before anything changes. Also the places where
//! downhill follows torch in corner cases (momentum turned on mid-run, NaN in
//! running maxima).

use downhill::hyper::HyperValue;
use downhill::optim::{build, Adam, Driver, Group, NonFinite, Optimizer, Rule, Sgd, MAX_STEP};
use downhill::schedule::{Schedule, Scheduler};

fn step<T: downhill::Real>(
    opt: &mut dyn Optimizer<T>,
    params: &mut [Vec<T>],
    grads: &[Vec<T>],
) -> downhill::Result<downhill::optim::StepOutcome> {
    let mut ps: Vec<&mut [T]> = params.iter_mut().map(Vec::as_mut_slice).collect();
    let gs: Vec<&[T]> = grads.iter().map(Vec::as_slice).collect();
    opt.step(&mut ps, &gs)
}

#[test]
fn a_typed_change_is_validated_at_every_later_step() {
    let mut opt = Adam::default().build::<f64>(&[3, 2]).unwrap();
    let mut params = vec![vec![1.0; 3], vec![2.0; 2]];
    let grads = vec![vec![0.5; 3], vec![-0.5; 2]];
    for _ in 0..3 {
        step(&mut opt, &mut params, &grads).unwrap();
    }
    // Mid-run (step 3 already taken), an invalid β₁ through the typed handle.
    opt.rule_mut(0).betas = (1.0, 0.999);
    let before = params.clone();
    let e = step(&mut opt, &mut params, &grads).unwrap_err();
    assert!(e.to_string().contains("`betas` = (1, 0.999)"), "{e}");
    assert_eq!(params, before);
    assert_eq!(opt.steps(0), 3);
    // Still refused until corrected, then the run goes on.
    assert!(step(&mut opt, &mut params, &grads).is_err());
    opt.rule_mut(0).betas = (0.9, 0.999);
    step(&mut opt, &mut params, &grads).unwrap();
    assert_eq!(opt.steps(0), 4);
}

#[test]
fn an_invalid_later_group_leaves_earlier_tensors_untouched() {
    // Two groups; the second is made invalid. Tensor 0 (first group) must not
    // move: validation happens before the tensor loop.
    let groups = vec![
        Group {
            rule: Sgd {
                lr: 0.1,
                ..Sgd::default()
            },
            params: vec![0],
        },
        Group {
            rule: Sgd {
                lr: 0.1,
                ..Sgd::default()
            },
            params: vec![1],
        },
    ];
    let mut opt =
        Driver::<Sgd, f32>::with_groups(groups, downhill::optim::to_params(&[4usize, 4])).unwrap();
    opt.rule_mut(1).lr = -1.0;
    let mut params = vec![vec![1.0f32; 4], vec![1.0; 4]];
    let before = params.clone();
    let e = step(&mut opt, &mut params, &[vec![1.0; 4], vec![1.0; 4]]).unwrap_err();
    assert!(e.to_string().contains("`lr` = -1"), "{e}");
    assert_eq!(params, before);
    assert_eq!((opt.steps(0), opt.steps(1)), (0, 0));
    // The same through a flat buffer.
    let mut flat = vec![1.0f32; 8];
    assert!(opt.step_flat(&mut flat, &[1.0; 8]).is_err());
    assert_eq!(flat, vec![1.0; 8]);
}

#[test]
fn a_state_claiming_an_absurd_step_count_is_refused_on_load() {
    let mut opt = build::<f64>(&"adagrad".parse().unwrap(), &[2]).unwrap();
    let mut params = vec![vec![1.0, 2.0]];
    step(&mut *opt, &mut params, &[vec![0.1, 0.2]]).unwrap();
    let saved = opt.save_state().unwrap();
    for bad in [u64::MAX, u64::MAX - 1, MAX_STEP + 1] {
        let mut damaged = saved.clone();
        damaged.manifest.tensors[0].step = bad;
        let mut fresh = build::<f64>(&"adagrad".parse().unwrap(), &[2]).unwrap();
        let e = fresh.load_state(&damaged).unwrap_err();
        assert!(
            e.to_string().contains(&format!("claims {bad} steps")),
            "{e}"
        );
        assert_eq!(fresh.steps(0), 0, "a refused load changes nothing");
    }
    // At the limit itself the load is accepted, and the next step refused
    // (instead of overflowing or losing exactness in the bias corrections).
    let mut at_limit = saved.clone();
    at_limit.manifest.tensors[0].step = MAX_STEP;
    opt.load_state(&at_limit).unwrap();
    let before = params.clone();
    let e = step(&mut *opt, &mut params, &[vec![0.1, 0.2]]).unwrap_err();
    assert!(
        e.to_string().contains("the most a state may hold is 2^53"),
        "{e}"
    );
    assert_eq!(params, before);
}

#[test]
fn momentum_turned_on_mid_run_starts_its_buffer_at_the_gradient() {
    // torch: `buf = torch.clone(grad)` whenever the buffer is missing,
    // whatever the dampening; afterwards `buf = μ·buf + (1 − τ)·g`.
    let mut opt = Sgd {
        lr: 0.1,
        ..Sgd::default()
    }
    .build::<f64>(&[2])
    .unwrap();
    let mut p = vec![vec![1.0, -1.0]];
    for _ in 0..3 {
        step(&mut opt, &mut p, &[vec![0.5, 0.25]]).unwrap();
    }
    opt.set_hyper(0, "momentum", &HyperValue::Number(0.9))
        .unwrap();
    opt.set_hyper(0, "dampening", &HyperValue::Number(0.5))
        .unwrap();
    let before = p[0].clone();
    step(&mut opt, &mut p, &[vec![2.0, -4.0]]).unwrap();
    assert_eq!(opt.buffer(0, "momentum_buffer").unwrap(), &[2.0, -4.0]);
    assert_eq!(p[0], vec![before[0] - 0.1 * 2.0, before[1] - 0.1 * -4.0]);
    step(&mut opt, &mut p, &[vec![1.0, 1.0]]).unwrap();
    assert_eq!(
        opt.buffer(0, "momentum_buffer").unwrap(),
        &[0.9 * 2.0 + 0.5 * 1.0, 0.9 * -4.0 + 0.5 * 1.0]
    );
}

#[test]
fn running_maxima_keep_a_nan_as_torch_maximum_does() {
    // Only reachable with the check off; then a NaN must not vanish.
    for spec in ["adam(amsgrad=true)", "adamax"] {
        let mut opt = build::<f32>(&spec.parse().unwrap(), &[2]).unwrap();
        opt.set_non_finite(NonFinite::Unchecked);
        let mut p = vec![vec![1.0f32, 1.0]];
        step(&mut *opt, &mut p, &[vec![f32::NAN, 1.0]]).unwrap();
        step(&mut *opt, &mut p, &[vec![1.0, 1.0]]).unwrap();
        assert!(p[0][0].is_nan(), "{spec}: {:?}", p[0]);
        assert!(p[0][1].is_finite(), "{spec}");
    }
}

#[test]
fn a_rejected_schedule_step_leaves_the_scheduler_as_it_was() {
    let mut opt = build::<f64>(&"sgd(lr=0.1)".parse().unwrap(), &[1]).unwrap();
    let plateau: Schedule = "reducelronplateau(patience=0)".parse().unwrap();
    let mut sched = Scheduler::new(plateau, &mut *opt).unwrap();
    sched.step(&mut *opt, Some(1.0)).unwrap();
    let saved = sched.clone();
    assert!(sched.step(&mut *opt, None).is_err());
    assert!(sched.step(&mut *opt, Some(f64::NAN)).is_err());
    assert_eq!(sched, saved);
    assert_eq!(sched.steps(), 1);
    // A momentum-cycling schedule on an optimiser without momentum fails at
    // the start and changes no rate.
    let mut ada = build::<f64>(&"adagrad(lr=0.3)".parse().unwrap(), &[1]).unwrap();
    let cycle: Schedule = "onecyclelr(max_lr=1,total_steps=10)".parse().unwrap();
    assert!(Scheduler::new(cycle, &mut *ada).is_err());
    assert_eq!(ada.lr(0), 0.3);
}

#[test]
#[should_panic(expected = "sgd: no parameter group 5 (there are 1)")]
fn a_group_index_out_of_range_panics_like_a_slice_index() {
    let opt = build::<f64>(&"sgd".parse().unwrap(), &[1]).unwrap();
    let _ = opt.lr(5);
}

#[test]
#[should_panic(expected = "sgd: no parameter group 2 (there are 1)")]
fn setters_check_the_group_index_the_same_way() {
    let mut opt = build::<f64>(&"sgd".parse().unwrap(), &[1]).unwrap();
    let _ = opt.set_lr(2, 0.1);
}

#[test]
fn a_scheduler_read_back_is_checked_like_a_parsed_one() {
    let mut opt = build::<f64>(&"sgd(lr=0.1)".parse().unwrap(), &[1]).unwrap();
    let s = Scheduler::new("steplr(step_size=3)".parse().unwrap(), &mut *opt).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Scheduler>(&json).unwrap(), s);
    // Found by the checkpoint_read fuzz target: a step_size of 0 divided by
    // zero at the next step, and counters near u64::MAX overflowed.
    for (from, to, why) in [
        ("\"step_size\":3", "\"step_size\":0", "`step_size` = 0"),
        (
            "\"steps\":0",
            "\"steps\":18446744073709551615",
            "steps = 18446744073709551615",
        ),
        (
            "\"num_bad_epochs\":0",
            "\"num_bad_epochs\":18446744073709551615",
            "num_bad_epochs",
        ),
        (
            "\"current\":[0.1]",
            "\"current\":[-1.0]",
            "a learning rate of -1",
        ),
        (
            "\"current\":[0.1]",
            "\"current\":[]",
            "1 initial and 0 current",
        ),
    ] {
        assert!(json.contains(from), "{json}");
        let bad = json.replace(from, to);
        let e = serde_json::from_str::<Scheduler>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{to}: {e}");
    }
}

#[test]
fn an_lbfgs_state_with_absurd_counters_is_refused() {
    use downhill::lbfgs::{Lbfgs, LbfgsConfig};
    let mut opt = Lbfgs::<f64>::new(LbfgsConfig::default(), 2).unwrap();
    let mut x = vec![1.0, 2.0];
    opt.step(&mut x, |x, g| {
        g.copy_from_slice(x);
        0.5 * (x[0] * x[0] + x[1] * x[1])
    })
    .unwrap();
    let saved = opt.save_state();
    for step in [u64::MAX, MAX_STEP + 1] {
        let mut bad = saved.clone();
        bad.manifest.tensors[0].step = step;
        let mut fresh = Lbfgs::<f64>::new(LbfgsConfig::default(), 2).unwrap();
        let e = fresh.load_state(&bad).unwrap_err().to_string();
        assert!(e.contains("the most a state may hold is 2^53"), "{e}");
    }
    let mut bad = saved.clone();
    bad.manifest.tensors[0]
        .scalars
        .insert("func_evals".into(), 1e300);
    assert!(Lbfgs::<f64>::new(LbfgsConfig::default(), 2)
        .unwrap()
        .load_state(&bad)
        .is_err());
}

/// Found by the `optimizer_state` fuzz target (its `lbfgs-*-step-2pow53`
/// regression seeds): a state with 2^53 iterations, the most `load_state`
/// accepts, stepped on to 2^53 + 4 and saved a state that no longer loaded.
/// A call that could carry either counter past 2^53 is refused before
/// anything changes; a call that ends within it saves a state that loads.
#[test]
fn an_lbfgs_call_that_could_pass_the_counter_limit_is_refused_whole() {
    use downhill::lbfgs::{Lbfgs, LbfgsConfig, LineSearchFn};
    let quadratic = |x: &[f64], g: &mut [f64]| {
        g.copy_from_slice(x);
        0.5 * (x[0] * x[0] + x[1] * x[1])
    };
    for search in [
        None,
        Some(LineSearchFn::StrongWolfe),
        Some(LineSearchFn::Backtracking),
    ] {
        let config = LbfgsConfig {
            line_search_fn: search,
            ..LbfgsConfig::default()
        };
        let mut opt = Lbfgs::<f64>::new(config.clone(), 2).unwrap();
        let mut x = vec![1.0, 2.0];
        opt.step(&mut x, quadratic).unwrap();
        let saved = opt.save_state();
        let with = |step: u64, evals: f64| {
            let mut s = saved.clone();
            s.manifest.tensors[0].step = step;
            s.manifest.tensors[0]
                .scalars
                .insert("func_evals".into(), evals);
            let mut l = Lbfgs::<f64>::new(config.clone(), 2).unwrap();
            l.load_state(&s).unwrap();
            l
        };
        for (step, evals) in [
            (MAX_STEP, 10.0),
            (MAX_STEP - 1, 10.0),
            (5, MAX_STEP as f64 - 1.0),
        ] {
            let mut l = with(step, evals);
            let mut x = vec![3.0, -4.0];
            let e = l.step(&mut x, quadratic).unwrap_err().to_string();
            assert!(
                e.contains("2^53") && e.contains("max_iter"),
                "{search:?}: {e}"
            );
            assert_eq!(x, [3.0, -4.0]);
            assert_eq!(
                (l.total_iterations(), l.total_evaluations()),
                (step, evals as u64)
            );
        }
        // Room for a whole call: it runs, and what it saves loads back.
        let room = config.max_iter as u64 * 50;
        let mut l = with(MAX_STEP - room, MAX_STEP as f64 - room as f64);
        let mut x = vec![3.0, -4.0];
        l.step(&mut x, quadratic).unwrap();
        Lbfgs::<f64>::new(config.clone(), 2)
            .unwrap()
            .load_state(&l.save_state())
            .unwrap();
    }
}
