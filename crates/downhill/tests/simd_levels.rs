//! Every vector level gives the same bits (`downhill::simd`): each
//! registered optimiser, with the settings its registry entry lists, takes
//! the same steps capped at the baseline, at AVX2 and at AVX-512 (where the
//! CPU has them), and the results are compared bit for bit. Its own test
//! binary, because the cap is process-wide.

use downhill::optim::{build, OptimizerSpec, REGISTRY};
use downhill::simd::{self, Level};
use downhill::Rng;

/// Tensors with vector bodies and odd tails, one long enough to be split
/// across threads, and a matrix for the tensor-level rules.
fn shapes() -> Vec<Vec<usize>> {
    vec![vec![70_001], vec![37, 29], vec![3], vec![64, 48]]
}

/// The same without the long vector for the rules that decompose (SOAP,
/// Shampoo): Shampoo would give it 69 factors of 1024 × 1024, and their
/// decompositions, not the element-wise loops this test is about, would
/// take the time.
fn small_shapes() -> Vec<Vec<usize>> {
    vec![vec![37, 29], vec![3], vec![64, 48]]
}

fn run(spec: &OptimizerSpec) -> Vec<u32> {
    let decomposes = downhill::optim::registry::entry(&spec.name).is_ok_and(|e| e.decomposes);
    let shapes = if decomposes { small_shapes() } else { shapes() };
    let mut rng = Rng::new(11);
    let mut draw = |shapes: &[Vec<usize>]| -> Vec<f32> {
        let n: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
        (0..n).map(|_| rng.normal() as f32).collect()
    };
    let mut params = draw(&shapes);
    let mut opt = build::<f32>(spec, &shapes).unwrap_or_else(|e| panic!("{spec}: {e}"));
    for _ in 0..4 {
        let g = draw(&shapes);
        opt.step_flat(&mut params, &g).unwrap();
    }
    params.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_level_gives_the_same_bits() {
    let specs: Vec<OptimizerSpec> = REGISTRY
        .iter()
        .flat_map(|e| e.examples)
        .map(|s| s.parse().unwrap())
        .collect();
    simd::set_cap(Level::Baseline);
    assert_eq!(simd::active(), Level::Baseline);
    let baseline: Vec<Vec<u32>> = specs.iter().map(run).collect();
    let mut checked = 0;
    for level in [Level::Avx2, Level::Avx512] {
        simd::set_cap(level);
        if simd::active() < level {
            eprintln!("this CPU has no {}: not compared", level.name());
            continue;
        }
        for (spec, want) in specs.iter().zip(&baseline) {
            let got = run(spec);
            let differ = got.iter().zip(want).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ,
                0,
                "{spec}: {} changed {differ} values",
                level.name()
            );
        }
        checked += 1;
    }
    // Every x86-64 machine this runs on has AVX2 at least.
    #[cfg(target_arch = "x86_64")]
    assert!(checked >= 1, "no level above the baseline to compare");
}
