//! The device path (candle tensor ops where the vars are, state there too:
//! what f32 and f64 vars on CUDA or Metal take), forced on the CPU, against
//! the in-place path: the same training within the f32 tolerance, the
//! non-finite policy, clipping, schedules, partitions and checkpoints.
//! The fixtures run through it in `tests/conformance.rs`.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Module, Optimizer as _, VarBuilder, VarMap};
use downhill::optim::{NonFinite, StepOutcome};
use downhill_candle::{CandleOptimizer, Config, Path};

fn values(v: &Var) -> Vec<f32> {
    v.flatten_all().unwrap().to_vec1().unwrap()
}

/// A 20-16-16-3 MLP in a VarMap, the same weights for every call.
fn mlp() -> (VarMap, impl Module) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let l1 = candle_nn::linear(20, 16, vb.pp("fc1")).unwrap();
    let l2 = candle_nn::linear(16, 16, vb.pp("fc2")).unwrap();
    let l3 = candle_nn::linear(16, 3, vb.pp("fc3")).unwrap();
    // Deterministic weights: VarMap's initialisers draw from a global RNG.
    for (k, (name, v)) in {
        let mut all: Vec<_> = varmap.data().lock().unwrap().clone().into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
    .into_iter()
    .enumerate()
    {
        let n = v.elem_count();
        let w: Vec<f32> = (0..n)
            .map(|i| (((i * 37 + k * 11) % 101) as f32 / 101.0 - 0.5) * 0.4)
            .collect();
        v.set(&Tensor::from_vec(w, v.shape(), &Device::Cpu).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let model = candle_nn::seq()
        .add(l1)
        .add(candle_nn::Activation::Relu)
        .add(l2)
        .add(candle_nn::Activation::Relu)
        .add(l3);
    (varmap, model)
}

fn batch() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..64 * 20)
        .map(|i| ((i * 7919 % 211) as f32 / 211.0) - 0.5)
        .collect();
    let y: Vec<u32> = (0..64).map(|i| (i * 5 % 3) as u32).collect();
    (
        Tensor::from_vec(x, (64, 20), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, 64, &Device::Cpu).unwrap(),
    )
}

/// Trains `steps` steps; the final weights, by var name.
fn train(cfg: Config, device_path: bool, steps: usize) -> Vec<(String, Vec<f32>)> {
    let (varmap, model) = mlp();
    let mut opt = CandleOptimizer::from_varmap(&varmap, cfg).unwrap();
    if device_path {
        opt = opt.force_device_path().unwrap();
        assert_eq!(opt.path(), Path::Device);
    } else {
        assert_eq!(opt.path(), Path::InPlace);
    }
    let (x, y) = batch();
    for _ in 0..steps {
        let loss = candle_nn::loss::cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let mut out: Vec<(String, Vec<f32>)> = opt
        .names()
        .iter()
        .zip(opt.vars())
        .map(|(n, v)| (n.clone(), values(v)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_close(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        for (i, (&x, &y)) in x.iter().zip(y).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 + 1e-4 * y.abs(),
                "{name}[{i}]: device path {x}, in place {y}"
            );
        }
    }
}

#[test]
fn training_on_the_device_path_gives_the_in_place_results() {
    for spec in [
        "adamw(lr=0.01,weight_decay=0.01)",
        "partition(hidden=lion(lr=0.001),all=nadam(lr=0.01))",
        "rprop(lr=0.01)",
        "schedulefree_adamw(lr=0.01,warmup_steps=3)",
    ] {
        let cfg = || -> Config {
            let c: Config = spec.parse().unwrap();
            c.clip_norm(0.5)
                .clip_value(0.2)
                .with_schedule("cosineannealinglr(T_max=30)")
                .unwrap()
        };
        let device = train(cfg(), true, 30);
        let in_place = train(cfg(), false, 30);
        assert_ne!(
            device,
            train(cfg(), true, 29),
            "{spec}: the last step changed nothing"
        );
        assert_close(&device, &in_place);
    }
}

#[test]
fn a_device_path_checkpoint_resumes_bit_identically() {
    let dir = std::env::temp_dir().join(format!("downhill-candle-{}-device", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = "partition(hidden=adan(lr=0.01),all=adamw(lr=0.01))";
    let (varmap, model) = mlp();
    let (x, y) = batch();
    let mut opt = CandleOptimizer::from_varmap(&varmap, spec.parse().unwrap())
        .unwrap()
        .force_device_path()
        .unwrap();
    let step = |opt: &mut CandleOptimizer| {
        let loss = candle_nn::loss::cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
        opt.backward_step(&loss).unwrap();
    };
    for _ in 0..3 {
        step(&mut opt);
    }
    opt.save(&dir).unwrap();
    let weights: Vec<Tensor> = opt
        .vars()
        .iter()
        .map(|v| v.as_tensor().copy().unwrap())
        .collect();
    for _ in 0..2 {
        step(&mut opt);
    }
    let straight: Vec<Vec<f32>> = opt.vars().iter().map(values).collect();

    // Back to the weights of step 3, a fresh optimiser, the saved state.
    for (v, w) in opt.vars().iter().zip(&weights) {
        v.set(w).unwrap();
    }
    let mut resumed = CandleOptimizer::from_varmap(&varmap, spec.parse().unwrap())
        .unwrap()
        .force_device_path()
        .unwrap();
    resumed.load(&dir).unwrap();
    for _ in 0..2 {
        step(&mut resumed);
    }
    let again: Vec<Vec<f32>> = resumed.vars().iter().map(values).collect();
    assert_eq!(straight, again);

    // And the state is downhill's format: the in-place path resumes it
    // within the f32 tolerance.
    for (v, w) in opt.vars().iter().zip(&weights) {
        v.set(w).unwrap();
    }
    let mut in_place = CandleOptimizer::from_varmap(&varmap, spec.parse().unwrap()).unwrap();
    in_place.load(&dir).unwrap();
    for _ in 0..2 {
        step(&mut in_place);
    }
    for (a, b) in in_place.vars().iter().map(values).zip(&again) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6 + 1e-4 * y.abs(), "{x} vs {y}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_gradients_on_the_device_path_follow_the_policy() {
    let a = Var::from_slice(&[1.0f32, 2.0], 2, &Device::Cpu).unwrap();
    let b = Var::from_slice(&[3.0f32, 4.0, 5.0], 3, &Device::Cpu).unwrap();
    let store = |gb: &[f32]| {
        let mut s = GradStore::default();
        s.insert(
            &a,
            Tensor::from_slice(&[0.1f32, 0.2], 2, &Device::Cpu).unwrap(),
        );
        s.insert(&b, Tensor::from_slice(gb, 3, &Device::Cpu).unwrap());
        s
    };
    let cfg: Config = "adam(lr=0.1)".parse().unwrap();
    let mut opt = CandleOptimizer::new(vec![a.clone(), b.clone()], cfg.clone())
        .unwrap()
        .force_device_path()
        .unwrap();
    let e = opt
        .step(&store(&[0.0, f32::NAN, 1.0]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("non-finite gradient in var 1 [3] at element 1"),
        "{e}"
    );
    assert_eq!(
        (values(&a), values(&b)),
        (vec![1.0, 2.0], vec![3.0, 4.0, 5.0])
    );

    let mut skip =
        CandleOptimizer::new(vec![a.clone(), b.clone()], cfg.non_finite(NonFinite::Skip))
            .unwrap()
            .force_device_path()
            .unwrap();
    assert_eq!(
        skip.step_outcome(&store(&[0.0, 1.0, f32::INFINITY]))
            .unwrap(),
        StepOutcome::Skipped { param: 1, index: 2 }
    );
    assert_eq!(values(&a), vec![1.0, 2.0]);
    skip.step(&store(&[0.0, 0.5, 1.0])).unwrap();
    // Adam's first step moves every coordinate with a non-zero gradient by lr.
    assert_eq!(values(&a), vec![0.9, 1.9]);
}

#[test]
fn rules_without_a_device_form_say_so() {
    for spec in [
        "muon",
        "lamb",
        "prodigy",
        "soap",
        "lookahead(adam,k=5,alpha=0.5)",
    ] {
        let (varmap, _) = mlp();
        let e = CandleOptimizer::from_varmap(&varmap, spec.parse().unwrap())
            .unwrap()
            .force_device_path()
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no device form"), "{spec}: {e}");
    }
    let h = Var::from_tensor(&Tensor::zeros(3, DType::BF16, &Device::Cpu).unwrap()).unwrap();
    let e = CandleOptimizer::new(vec![h], "adam".parse().unwrap())
        .unwrap()
        .force_device_path()
        .unwrap_err()
        .to_string();
    assert!(e.contains("f32 and f64 vars, not BF16"), "{e}");
}
