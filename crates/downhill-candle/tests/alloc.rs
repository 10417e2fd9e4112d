//! After the first step (which creates the optimiser's state), a step over
//! f32 CPU vars allocates nothing of its own: the update runs in place on
//! the vars' storage. The one allocation left is candle's: candle-core
//! 0.11's in-place op entry (`Tensor::inplace_op1/2`) collects the var's
//! layout into a `Vec` for its overlap check (`Layout::has_internal_overlap`),
//! one allocation per call, so a step may allocate as many times as it
//! enters candle's in-place ops ([`candle_inplace_calls`]: once per var,
//! and once per gradient per clipping pass) and not once more. Counted with the workspace's counting allocator on the threads
//! of the pool the steps run in, as `crates/downhill/tests/alloc.rs` does
//! for the core (the test harness's own threads allocate when they please).

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer as _;
use downhill_candle::{candle_inplace_calls, CandleOptimizer, Config};
use downhill_testenv::{mark_thread, marked_allocations};

#[global_allocator]
static GLOBAL: downhill_testenv::Counting = downhill_testenv::Counting;

#[test]
fn steps_after_the_first_allocate_only_in_candles_inplace_entry() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| mark_thread())
        .build()
        .unwrap();
    // Every thread of the pool runs something once before counting starts:
    // a thread allocates a little the first time it parks or steals.
    for _ in 0..100 {
        pool.broadcast(|_| std::hint::black_box(0));
    }
    pool.install(|| {
        // A matrix large enough to be split across threads, and a vector.
        let shapes = [vec![600usize, 500], vec![1_000]];
        for spec in ["sgd", "sgd(momentum=0.9)", "adam", "adamw", "lion"] {
            for clip in [false, true] {
                let vars: Vec<Var> = shapes
                    .iter()
                    .map(|s| Var::ones(s.as_slice(), candle_core::DType::F32, &Device::Cpu).unwrap())
                    .collect();
                let mut grads = GradStore::default();
                for v in &vars {
                    let n = v.elem_count();
                    let g: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 1e-2).collect();
                    grads.insert(v, Tensor::from_vec(g, v.shape(), &Device::Cpu).unwrap());
                }
                let mut cfg: Config = spec.parse().unwrap();
                if clip {
                    // A norm above the gradients' (so they are not shrunk
                    // step after step) and a value that clamps.
                    cfg = cfg.clip_norm(1e6).clip_value(0.05);
                }
                let mut opt = CandleOptimizer::new(vars.clone(), cfg).unwrap();
                for _ in 0..3 {
                    opt.step(&grads).unwrap();
                }
                let before = marked_allocations();
                let calls = candle_inplace_calls();
                for _ in 0..50 {
                    opt.step(&grads).unwrap();
                }
                let allocations = marked_allocations() - before;
                let allowed = (candle_inplace_calls() - calls) as usize;
                assert!(
                    allocations <= allowed,
                    "{spec} (clip {clip}) allocated {allocations} times in 50 steps ({allowed} allowed for candle's in-place op entry)"
                );
                // One entry per var per step, one more per gradient for the
                // value clip (the norm is above the gradients': no scaling).
                let per_step = if clip { 4 } else { 2 };
                assert_eq!(allowed, 50 * per_step, "{spec} (clip {clip})");
                println!("{spec} (clip {clip}): {allocations} allocations in 50 steps, {allowed} entries into candle's in-place ops");
            }
        }
    });
}

/// An in-place op that does nothing.
struct Nothing;

impl candle_core::InplaceOp1 for Nothing {
    fn name(&self) -> &'static str {
        "nothing"
    }

    fn cpu_fwd(
        &self,
        _: &mut candle_core::CpuStorage,
        _: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        Ok(())
    }
}

/// The allowance above is candle's own: entering its in-place ops with an
/// op that does nothing costs one allocation per call.
#[test]
fn candles_inplace_entry_allocates_once_per_call() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .start_handler(|_| mark_thread())
        .build()
        .unwrap();
    pool.install(|| {
        let v = Var::ones((600, 500), candle_core::DType::F32, &Device::Cpu).unwrap();
        v.inplace_op1(&Nothing).unwrap();
        let before = marked_allocations();
        for _ in 0..10 {
            v.inplace_op1(&Nothing).unwrap();
        }
        assert_eq!(marked_allocations() - before, 10);
    });
}
