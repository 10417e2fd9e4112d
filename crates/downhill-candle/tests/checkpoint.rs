//! Save and resume: a run that saves the optimiser (and the model) after 10
//! steps, is rebuilt from the files in fresh objects and runs 10 more, ends
//! with the same bits as a run that never stopped.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Optimizer as _, VarBuilder, VarMap};
use downhill_candle::{CandleOptimizer, Config};
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("downhill-candle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A 3-layer tanh MLP in `varmap`, in `dtype`.
fn mlp(varmap: &VarMap, dtype: DType) -> impl Module {
    let vb = VarBuilder::from_varmap(varmap, dtype, &Device::Cpu);
    candle_nn::seq()
        .add(candle_nn::linear(8, 16, vb.pp("fc1")).unwrap())
        .add(Tensor::tanh)
        .add(candle_nn::linear(16, 16, vb.pp("fc2")).unwrap())
        .add(Tensor::tanh)
        .add(candle_nn::linear(16, 3, vb.pp("fc3")).unwrap())
}

/// Batch `t` of a fixed sequence.
fn batch(t: u64, dtype: DType) -> (Tensor, Tensor) {
    let mut rng = downhill::Rng::new(7).fork(t);
    let mut v = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() as f32).collect() };
    let x = Tensor::from_vec(v(4 * 8), (4, 8), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(v(4 * 3), (4, 3), &Device::Cpu).unwrap();
    (x.to_dtype(dtype).unwrap(), y.to_dtype(dtype).unwrap())
}

fn train(
    model: &impl Module,
    opt: &mut CandleOptimizer,
    steps: std::ops::Range<u64>,
    dtype: DType,
) {
    for t in steps {
        let (x, y) = batch(t, dtype);
        let loss = model
            .forward(&x)
            .unwrap()
            .sub(&y)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap();
        opt.backward_step(&loss).unwrap();
    }
}

fn bits(varmap: &VarMap) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(n, v)| {
            let t = v.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
            let bytes = t
                .to_vec1::<f64>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            (n.clone(), bytes)
        })
        .collect();
    out.sort();
    out
}

fn resume_is_bit_identical(spec: &str, schedule: &str, dtype: DType) {
    let cfg = || -> Config { spec.parse::<Config>().unwrap().clip_norm(0.5) };
    let init = temp(&format!("init-{spec}-{dtype:?}"));
    std::fs::create_dir_all(&init).unwrap();
    // The run that never stops.
    let whole = VarMap::new();
    let model = mlp(&whole, dtype);
    whole.save(init.join("model.safetensors")).unwrap();
    let mut opt = CandleOptimizer::from_varmap(&whole, cfg())
        .unwrap()
        .with_schedule(schedule)
        .unwrap();
    train(&model, &mut opt, 0..20, dtype);

    // The run that stops after 10 steps ...
    let dir = temp(&format!("ckpt-{spec}-{dtype:?}"));
    {
        let mut first = VarMap::new();
        let model = mlp(&first, dtype);
        first.load(init.join("model.safetensors")).unwrap();
        let mut opt = CandleOptimizer::from_varmap(&first, cfg())
            .unwrap()
            .with_schedule(schedule)
            .unwrap();
        train(&model, &mut opt, 0..10, dtype);
        opt.save(&dir).unwrap();
        first.save(dir.join("model.safetensors")).unwrap();
    }
    // ... and resumes in new objects, from the files alone.
    let mut resumed = VarMap::new();
    let model = mlp(&resumed, dtype);
    resumed.load(dir.join("model.safetensors")).unwrap();
    let mut opt = CandleOptimizer::from_varmap(&resumed, cfg())
        .unwrap()
        .with_schedule(schedule)
        .unwrap();
    opt.load(&dir).unwrap();
    train(&model, &mut opt, 10..20, dtype);
    assert_eq!(bits(&resumed), bits(&whole), "{spec} {dtype:?}");
    for f in ["optimizer.json", "optimizer.safetensors", "candle.json"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&init);
}

#[test]
fn resuming_adamw_with_a_schedule_is_bit_identical() {
    resume_is_bit_identical("adamw(lr=0.01)", "cosineannealinglr(T_max=20)", DType::F32);
}

#[test]
fn resuming_a_muon_partition_is_bit_identical() {
    resume_is_bit_identical(
        "partition(hidden=muon(lr=0.02),all=adamw(lr=0.003))",
        "onecyclelr(max_lr=0.05,total_steps=40)",
        DType::F32,
    );
}

#[test]
fn resuming_f64_and_bf16_runs_is_bit_identical() {
    resume_is_bit_identical(
        "lookahead(adam(lr=0.01),k=3)",
        "steplr(step_size=4,gamma=0.5)",
        DType::F64,
    );
    resume_is_bit_identical("nadam(lr=0.01)", "linearlr(total_iters=8)", DType::BF16);
}

#[test]
fn a_checkpoint_of_other_vars_is_refused_and_changes_nothing() {
    let dir = temp("refused");
    let a = VarMap::new();
    mlp(&a, DType::F32);
    let opt = CandleOptimizer::from_varmap(&a, "adam".parse().unwrap()).unwrap();
    opt.save(&dir).unwrap();

    let b = VarMap::new();
    let vb = VarBuilder::from_varmap(&b, DType::F32, &Device::Cpu);
    candle_nn::linear(8, 5, vb.pp("fc1")).unwrap();
    let mut other = CandleOptimizer::from_varmap(&b, "adam".parse().unwrap()).unwrap();
    let e = other.load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("holds the state of 6 vars, this optimiser has 2"),
        "{e}"
    );

    let mut scheduled = CandleOptimizer::from_varmap(&a, "adam".parse().unwrap())
        .unwrap()
        .with_schedule("exponentiallr(gamma=0.9)")
        .unwrap();
    let e = scheduled.load(&dir).unwrap_err().to_string();
    assert!(
        e.contains("was saved without a schedule, this optimiser runs one"),
        "{e}"
    );

    let mut sgd = CandleOptimizer::from_varmap(&a, "sgd(lr=0.1)".parse().unwrap()).unwrap();
    let e = sgd.load(&dir).unwrap_err().to_string();
    assert!(e.contains("adam"), "{e}");
    assert_eq!(sgd.learning_rate(), 0.1);
    let _ = std::fs::remove_dir_all(&dir);
}
