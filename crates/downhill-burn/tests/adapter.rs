//! The adapter in a training loop on flex: roles from the module's paths,
//! save and resume bit-identical, clipping, schedules, the non-finite
//! policies, and the errors that name what is wrong.

mod common;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{activation::tanh, DType, Device, Tensor, TensorData};
use downhill_burn::{BurnOptimizer, Config, Error, NonFinite, Path, StepOutcome};
use std::path::PathBuf;

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// A 3-layer tanh MLP 8-16-16-3 with seeded weights, in `dtype`.
fn mlp(dtype: DType) -> Mlp {
    let d = device();
    let mut rng = downhill::Rng::new(3);
    let mut layer = |i: usize, o: usize| {
        let mut l = LinearConfig::new(i, o).init(&d);
        let w: Vec<f64> = (0..i * o).map(|_| rng.normal() * 0.3).collect();
        let b: Vec<f64> = (0..o).map(|_| rng.normal() * 0.1).collect();
        l.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [i, o]), (&d, dtype)));
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [o]),
            (&d, dtype),
        )));
        l
    };
    Mlp {
        fc1: layer(8, 16),
        fc2: layer(16, 16),
        fc3: layer(16, 3),
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = tanh(self.fc1.forward(x));
        let h = tanh(self.fc2.forward(h));
        self.fc3.forward(h)
    }
}

/// Batch `t` of a fixed sequence.
fn batch(t: u64, dtype: DType) -> (Tensor<2>, Tensor<2>) {
    let d = device();
    let mut rng = downhill::Rng::new(7).fork(t);
    let mut v = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.normal()).collect() };
    let x = Tensor::from_data(TensorData::new(v(4 * 8), [4, 8]), (&d, dtype));
    let y = Tensor::from_data(TensorData::new(v(4 * 3), [4, 3]), (&d, dtype));
    (x, y)
}

fn grads(model: &Mlp, t: u64, dtype: DType) -> GradientsParams {
    let (x, y) = batch(t, dtype);
    let loss = (model.forward(x) - y).square().mean();
    GradientsParams::from_grads(loss.backward(), model)
}

fn train(
    mut model: Mlp,
    opt: &mut BurnOptimizer,
    steps: std::ops::Range<u64>,
    dtype: DType,
) -> Mlp {
    for t in steps {
        let g = grads(&model, t, dtype);
        model = opt.step(model, g).unwrap();
    }
    model
}

/// Every parameter's bytes, in order.
fn bits(model: &Mlp) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for l in [&model.fc1, &model.fc2, &model.fc3] {
        out.push(l.weight.val().into_data().into_bytes().to_vec());
        out.push(
            l.bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .into_bytes()
                .to_vec(),
        );
    }
    out
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("downhill-burn-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn roles_come_from_the_paths_and_muon_routes_as_its_recipe() {
    let cfg: Config = "muon".parse().unwrap();
    let mut opt = BurnOptimizer::new(cfg).unwrap();
    let model = train(mlp(DType::F32), &mut opt, 0..1, DType::F32);
    let lines = opt.assignment();
    assert_eq!(
        opt.param_names(),
        [
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
    let line = |name: &str| lines.iter().find(|l| l.starts_with(name)).unwrap().clone();
    assert!(line("fc1.weight").contains("input: adamw"), "{lines:?}");
    assert!(line("fc2.weight").contains("hidden: muon"), "{lines:?}");
    assert!(line("fc3.weight").contains("output: adamw"), "{lines:?}");
    assert!(line("fc2.bias").contains("bias: adamw"), "{lines:?}");
    // Muon (no device form) still runs in place on flex.
    assert_eq!(opt.path(), Some(Path::InPlace));
    drop(model);
}

/// Save after 10 steps, rebuild everything from the files, run 10 more:
/// the same bits as a run that never stopped, on the in-place path and on
/// the device path (forced), with a schedule.
#[test]
fn a_resumed_run_is_bit_identical() {
    for (dtype, forced) in [(DType::F32, false), (DType::F64, false), (DType::F32, true)] {
        let cfg = || {
            "adamw(lr=0.01,weight_decay=0.1)"
                .parse::<Config>()
                .unwrap()
                .with_schedule("cosineannealinglr(T_max=20)")
                .unwrap()
        };
        let new = || {
            let o = BurnOptimizer::new(cfg()).unwrap();
            if forced {
                o.force_device_path()
            } else {
                o
            }
        };
        let mut straight = new();
        let whole = train(mlp(dtype), &mut straight, 0..20, dtype);

        let dir = temp(&format!("resume-{dtype:?}-{forced}"));
        let mut first = new();
        let half = train(mlp(dtype), &mut first, 0..10, dtype);
        first.save(&dir).unwrap();
        let saved_model = bits(&half);
        // A fresh optimiser loads before its first step; the state waits
        // for the module.
        let mut second = new();
        second.load(&dir).unwrap();
        let rest = train(half, &mut second, 10..20, dtype);
        assert_eq!(bits(&rest), bits(&whole), "{dtype:?} forced={forced}");
        assert_ne!(bits(&rest), saved_model);
        assert_eq!(second.learning_rate(), straight.learning_rate());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The forced device path trains as the in-place path does, within f32
/// rounding, with clipping by norm and by value.
#[test]
fn the_device_path_matches_the_in_place_path() {
    let cfg = || {
        "adam(lr=0.01)"
            .parse::<Config>()
            .unwrap()
            .clip_norm(0.5)
            .clip_value(0.05)
    };
    let mut a = BurnOptimizer::new(cfg()).unwrap();
    let mut b = BurnOptimizer::new(cfg()).unwrap().force_device_path();
    let ma = train(mlp(DType::F32), &mut a, 0..30, DType::F32);
    let mb = train(mlp(DType::F32), &mut b, 0..30, DType::F32);
    assert_eq!(
        (a.path(), b.path()),
        (Some(Path::InPlace), Some(Path::Device))
    );
    for (x, y) in values(&ma).iter().zip(values(&mb)) {
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() <= 1e-5 + 1e-4 * p.abs(), "{p} vs {q}");
        }
    }
}

/// Every parameter's values, in order, as f64.
fn values(model: &Mlp) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for l in [&model.fc1, &model.fc2, &model.fc3] {
        out.push(common::flat(l.weight.val()));
        out.push(common::flat(l.bias.as_ref().unwrap().val()));
    }
    out
}

fn nan_grads(model: &Mlp) -> GradientsParams {
    let mut g = grads(model, 0, DType::F32);
    let w = model.fc2.weight.val();
    let mut bad = vec![0f32; 16 * 16];
    bad[5] = f32::NAN;
    g.register(
        model.fc2.weight.id,
        Tensor::<2>::from_data(TensorData::new(bad, [16, 16]), &w.device().inner()),
    );
    g
}

#[test]
fn a_non_finite_gradient_is_refused_by_name_or_skipped() {
    for forced in [false, true] {
        let mk = |policy| {
            let o =
                BurnOptimizer::new(Config::new("sgd(lr=0.1)".parse().unwrap()).non_finite(policy))
                    .unwrap();
            if forced {
                o.force_device_path()
            } else {
                o
            }
        };
        let model = mlp(DType::F32);
        let mut opt = mk(NonFinite::Error);
        let g = nan_grads(&model);
        let e = opt.step(model, g).unwrap_err();
        assert!(
            matches!(&e, Error::NonFinite { param, index: 5, .. } if param == "fc2.weight"),
            "{e}"
        );
        assert!(e.to_string().contains("fc2.weight"), "{e}");

        let model = mlp(DType::F32);
        let before = bits(&model);
        let mut opt = mk(NonFinite::Skip);
        let g = nan_grads(&model);
        let model = opt.step(model, g).unwrap();
        assert_eq!(
            opt.last_outcome(),
            Some(StepOutcome::Skipped { param: 2, index: 5 })
        );
        assert_eq!(bits(&model), before, "a skipped step changes nothing");
    }
}

#[test]
fn bad_input_gets_one_line_that_names_it() {
    let e = "adamw(lr=-1)".parse::<Config>().unwrap_err();
    assert!(e.to_string().contains("lr"), "{e}");
    let e = "nosuchopt".parse::<Config>().unwrap_err();
    assert!(e.to_string().contains("nosuchopt"), "{e}");

    // A parameter without a gradient.
    let model = mlp(DType::F32);
    let mut g = grads(&model, 0, DType::F32);
    g.remove::<2>(model.fc3.weight.id);
    let mut opt = BurnOptimizer::new("adam".parse().unwrap()).unwrap();
    let e = opt.step(model, g).unwrap_err().to_string();
    assert!(e.contains("fc3.weight") && e.contains("no gradient"), "{e}");

    // A rule without a device form, forced onto the device path.
    let model = mlp(DType::F32);
    let g = grads(&model, 0, DType::F32);
    let mut opt = BurnOptimizer::new("lamb".parse().unwrap())
        .unwrap()
        .force_device_path();
    let e = opt.step(model, g).unwrap_err().to_string();
    assert!(e.contains("no device form"), "{e}");

    // A state folder that is not one.
    let mut opt = BurnOptimizer::new("adam".parse().unwrap()).unwrap();
    let dir = temp("missing");
    let e = opt.load(&dir).unwrap_err().to_string();
    assert!(e.contains("burn.json"), "{e}");

    // A state of another module.
    let mut small = BurnOptimizer::new("adam".parse().unwrap()).unwrap();
    let model = train(mlp(DType::F32), &mut small, 0..1, DType::F32);
    let dir = temp("other");
    small.save(&dir).unwrap();
    let mut opt = BurnOptimizer::new("adam".parse().unwrap()).unwrap();
    opt.load(&dir).unwrap();
    let other: Linear = LinearConfig::new(8, 3).init(&device());
    let (x, y) = batch(0, DType::F32);
    let loss = (other.forward(x) - y).square().mean();
    let g = GradientsParams::from_grads(loss.backward(), &other);
    let e = opt.step(other, g).unwrap_err().to_string();
    assert!(e.contains("holds the state of 6 parameters"), "{e}");
    drop(model);
    let _ = std::fs::remove_dir_all(&dir);

    // Lbfgs needs a closure.
    let e = "lbfgs".parse::<Config>().unwrap_err().to_string();
    assert!(e.contains("lbfgs"), "{e}");
}

/// A parameter frozen with `set_require_grad(false)` is left out.
#[test]
fn frozen_parameters_are_left_out() {
    let mut model = mlp(DType::F32);
    model.fc1 = model.fc1.no_grad();
    let mut opt = BurnOptimizer::new("sgd(lr=0.1)".parse().unwrap()).unwrap();
    let before = model.fc1.weight.val().into_data();
    let model = train(model, &mut opt, 0..3, DType::F32);
    assert_eq!(
        opt.param_names(),
        ["fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    );
    assert_eq!(model.fc1.weight.val().into_data(), before);
}
