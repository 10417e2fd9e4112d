//! [`downhill_burn::Rule`] as burn's own per-tensor optimiser, in a
//! `ModuleOptimizer`: every fixture of an element-wise rule over one group
//! passes in f64 on flex (1e-9 relative), the learning rate coming from
//! burn's step as burn's optimisers take it; and its state survives burn's
//! optimiser record (`to_record`, `load_record`) bit for bit.

mod common;

use burn::optim::ModuleOptimizer;
use burn::tensor::{DType, Device};
use common::fixtures::fixture::{self, OptimFixture, Tally};
use downhill::optim::{build, Param, Role};
use downhill_burn::Rule;

/// The fixture's spec and its learning rate (given, or the rule's default).
fn spec_and_lr(f: &OptimFixture) -> (String, f64) {
    let spec = f.spec();
    let lr = build::<f64>(&spec, &[Param::new(vec![1], Role::Bias)])
        .expect("a fixture's spec builds")
        .lr(0);
    (spec.to_string(), lr)
}

fn run(f: &OptimFixture, shapes: &[Vec<usize>]) -> Result<f64, String> {
    let device = Device::flex().autodiff();
    let (spec, lr) = spec_and_lr(f);
    let rule = Rule::new(&spec).map_err(|e| e.to_string())?;
    let mut optim: ModuleOptimizer = rule.into();
    let mut module = common::Params::new(&f.params0, shapes, DType::F64, &device);
    let mut tally = Tally::default();
    for (t, grads) in f.grads.iter().enumerate() {
        let g = module.grads(grads, DType::F64);
        module = optim.step(lr, module, g);
        tally.compare("param", t, &module.values(), &f.params[t], 1e-9, 1e-12);
    }
    tally.finish().map(|(worst, ..)| worst)
}

#[test]
fn every_single_group_element_wise_fixture_passes_as_a_burn_optimizer() {
    let files = common::fixtures::optim_files();
    let (mut ran, mut failures) = (0, Vec::new());
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let f: OptimFixture = fixture::read(path).unwrap();
        let shapes = f.validate().unwrap();
        let entry = downhill::optim::registry::entry(&f.optimizer).unwrap();
        if !entry.elementwise || entry.shares_groups || f.groups.is_some() {
            continue;
        }
        match run(&f, &shapes) {
            Ok(worst) => {
                ran += 1;
                println!("ok      {name}: worst relative error {worst:.1e}");
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 30, "only {ran} fixtures ran");
}

#[test]
fn the_rule_refuses_what_needs_the_whole_module() {
    for spec in ["muon", "lamb", "prodigy", "partition(hidden=adam,all=sgd)"] {
        let e = Rule::new(spec).unwrap_err().to_string();
        assert!(e.contains("BurnOptimizer"), "{spec}: {e}");
    }
}

/// burn's optimiser record carries the rule's state: a run that saves it
/// after 5 steps and loads it into a fresh `ModuleOptimizer` ends as one
/// that never stopped.
#[test]
fn the_state_survives_burns_record() {
    let device = Device::flex().autodiff();
    let shapes = vec![vec![3, 4], vec![4]];
    let values = vec![(0..12).map(|i| i as f64 * 0.1).collect(), vec![0.5; 4]];
    let grads = |t: usize| -> Vec<Vec<f64>> {
        vec![
            (0..12).map(|i| ((i + t) as f64).sin()).collect(),
            (0..4).map(|i| ((i * t) as f64).cos()).collect(),
        ]
    };
    let rule = || Rule::new("adamw(weight_decay=0.1,amsgrad=true)").unwrap();
    let mut a: ModuleOptimizer = rule().into();
    let mut ma = common::Params::new(&values, &shapes, DType::F32, &device);
    for t in 0..10 {
        let g = ma.grads(&grads(t), DType::F32);
        ma = a.step(1e-2, ma, g);
    }
    let mut b: ModuleOptimizer = rule().into();
    let mut mb = common::Params::new(&values, &shapes, DType::F32, &device);
    for t in 0..5 {
        let g = mb.grads(&grads(t), DType::F32);
        mb = b.step(1e-2, mb, g);
    }
    let bytes = b.into_bytes().unwrap();
    let mut c: ModuleOptimizer = ModuleOptimizer::from(rule()).from_bytes(bytes).unwrap();
    for t in 5..10 {
        let g = mb.grads(&grads(t), DType::F32);
        mb = c.step(1e-2, mb, g);
    }
    assert_eq!(ma.values(), mb.values());
}
