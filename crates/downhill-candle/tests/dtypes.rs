//! Dtypes and paths. bf16 and f16 vars keep f32 state and are written back
//! rounded to nearest: the same bits as downhill's own f32 optimiser run on
//! the widened values and rounded after each step. The tensor-op path (what
//! CUDA and Metal vars take), forced on the CPU, gives the same bits as the
//! in-place path for f32 and f64, and as the half path for bf16 and f16.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer as _;
use downhill::optim::build;
use downhill_candle::{CandleOptimizer, Config, Path};

const SHAPES: [&[usize]; 2] = [&[7, 5], &[5]];

/// Values for tensor `i` at step `t`, from a seeded generator.
fn values(seed: u64, i: usize, n: usize) -> Vec<f64> {
    let mut rng = downhill::Rng::new(seed).fork(i as u64);
    (0..n).map(|_| rng.normal()).collect()
}

fn vars(dtype: DType) -> Vec<Var> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.iter().product();
            let t = Tensor::from_vec(values(1, i, n), *s, &Device::Cpu).unwrap();
            Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
        })
        .collect()
}

fn grads_at(vars: &[Var], t: u64) -> GradStore {
    let mut g = GradStore::default();
    for (i, v) in vars.iter().enumerate() {
        let x =
            Tensor::from_vec(values(100 + t, i, v.elem_count()), v.shape(), &Device::Cpu).unwrap();
        g.insert(v, x.to_dtype(v.dtype()).unwrap());
    }
    g
}

/// Every var's bits, widened to f64 (exact from every float dtype).
fn bits(vars: &[Var]) -> Vec<u64> {
    vars.iter()
        .flat_map(|v| {
            let t = v.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
            t.to_vec1::<f64>().unwrap().into_iter().map(f64::to_bits)
        })
        .collect()
}

const SPEC: &str = "adamw(lr=0.05,weight_decay=0.1)";

fn run(dtype: DType, tensor_path: bool) -> (Vec<u64>, Path) {
    let vs = vars(dtype);
    let cfg: Config = SPEC.parse::<Config>().unwrap().clip_norm(3.0);
    let mut opt = CandleOptimizer::new(vs.clone(), cfg).unwrap();
    if tensor_path {
        opt = opt.force_tensor_path();
    }
    for t in 0..20 {
        opt.step(&grads_at(&vs, t)).unwrap();
    }
    (bits(&vs), opt.path())
}

#[test]
fn the_tensor_op_path_gives_the_same_bits_as_the_cpu_paths() {
    for dtype in [DType::F32, DType::F64, DType::BF16, DType::F16] {
        let (cpu, path) = run(dtype, false);
        let (tensor, forced) = run(dtype, true);
        let expected = match dtype {
            DType::F32 | DType::F64 => Path::InPlace,
            d => Path::Half(d),
        };
        assert_eq!((path, forced), (expected, Path::Tensor), "{dtype:?}");
        assert_eq!(cpu, tensor, "{dtype:?}");
        assert_ne!(cpu, bits(&vars(dtype)), "{dtype:?}: nothing moved");
    }
}

/// What "f32 state, written back rounded" means, on plain slices: widen,
/// step downhill's f32 optimiser, round to nearest.
fn reference(dtype: DType) -> Vec<u64> {
    let round = |x: f32| -> f32 {
        match dtype {
            DType::BF16 => half::bf16::from_f32(x).to_f32(),
            _ => half::f16::from_f32(x).to_f32(),
        }
    };
    let vs = vars(dtype);
    let mut params: Vec<Vec<f32>> = vs
        .iter()
        .map(|v| {
            v.flatten_all()
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .to_vec1()
                .unwrap()
        })
        .collect();
    let shapes: Vec<Vec<usize>> = SHAPES.iter().map(|s| s.to_vec()).collect();
    let mut opt = build::<f32>(&SPEC.parse().unwrap(), &shapes).unwrap();
    for t in 0..20 {
        let store = grads_at(&vs, t);
        let mut grads: Vec<Vec<f32>> = vs
            .iter()
            .map(|v| {
                let g = store.get(v).unwrap();
                g.flatten_all()
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
            .collect();
        {
            let mut gs: Vec<&mut [f32]> = grads.iter_mut().map(Vec::as_mut_slice).collect();
            downhill::clip::clip_grad_norm(&mut gs, 3.0, downhill::clip::Norm::P(2.0), false)
                .unwrap();
        }
        let mut ps: Vec<&mut [f32]> = params.iter_mut().map(Vec::as_mut_slice).collect();
        let gs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        opt.step(&mut ps, &gs).unwrap();
        for p in params.iter_mut() {
            for x in p.iter_mut() {
                *x = round(*x);
            }
        }
    }
    params
        .iter()
        .flat_map(|p| p.iter().map(|&x| f64::from(x).to_bits()))
        .collect()
}

#[test]
fn half_vars_keep_f32_state_and_are_written_back_rounded() {
    for dtype in [DType::BF16, DType::F16] {
        assert_eq!(run(dtype, false).0, reference(dtype), "{dtype:?}");
    }
}

#[test]
fn the_f32_in_place_step_is_the_core_step() {
    // The in-place f32 path against downhill's optimiser on plain slices.
    let vs = vars(DType::F32);
    let shapes: Vec<Vec<usize>> = SHAPES.iter().map(|s| s.to_vec()).collect();
    let mut opt = CandleOptimizer::new(vs.clone(), SPEC.parse().unwrap()).unwrap();
    let mut core = build::<f32>(&SPEC.parse().unwrap(), &shapes).unwrap();
    let mut params: Vec<Vec<f32>> = vs
        .iter()
        .map(|v| v.flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    for t in 0..20 {
        let store = grads_at(&vs, t);
        opt.step(&store).unwrap();
        let grads: Vec<Vec<f32>> = vs
            .iter()
            .map(|v| {
                store
                    .get(v)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
            .collect();
        let mut ps: Vec<&mut [f32]> = params.iter_mut().map(Vec::as_mut_slice).collect();
        let gs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        core.step(&mut ps, &gs).unwrap();
    }
    let want: Vec<u64> = params
        .iter()
        .flat_map(|p| p.iter().map(|&x| f64::from(x).to_bits()))
        .collect();
    assert_eq!(bits(&vs), want);
}
