//! Steps allocate nothing after the first (which creates the state buffers
//! and any workspace): counted with a global allocator that counts every
//! allocation made on the threads of the pool the steps run in (the test
//! harness's own threads allocate at times of their choosing, so they are
//! not counted). The one exception is the matrix-product backend, which
//! packs its operands into buffers it allocates on each call (at most two):
//! Muon's steps may allocate that much per product, and nothing more.

use downhill::clip::{clip_grad_norm_flat, Norm};
use downhill::linalg::backend_calls;
use downhill::optim::{build, NonFinite, OptimizerSpec, OPTIMIZERS};
use downhill_testenv::{mark_thread, marked_allocations};

#[global_allocator]
static GLOBAL: downhill_testenv::Counting = downhill_testenv::Counting;

#[test]
fn steps_after_the_first_allocate_nothing() {
    // Inside a pool, as a training loop runs: rayon's calls from outside any
    // pool go through a shared queue that allocates now and then.
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
        let n: usize = 301_000;
        let mut params = vec![0.5f32; n];
        let mut grads: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 1e-2).collect();
        for name in OPTIMIZERS {
            for policy in [NonFinite::Error, NonFinite::Unchecked] {
                let spec = OptimizerSpec::new(name);
                let mut opt = build::<f32>(&spec, &shapes).unwrap();
                opt.set_non_finite(policy);
                // The first step creates the state; the next ones also warm up
                // the pool's threads (their work queues grow on first use).
                for _ in 0..3 {
                    clip_grad_norm_flat(&mut grads, 1e6, Norm::P(2.0), true).unwrap();
                    opt.step_flat(&mut params, &grads).unwrap();
                }
                let before = marked_allocations();
                let products = backend_calls();
                for _ in 0..50 {
                    clip_grad_norm_flat(&mut grads, 1e6, Norm::P(2.0), true).unwrap();
                    opt.step_flat(&mut params, &grads).unwrap();
                }
                let allocations = marked_allocations() - before;
                let allowed = 2 * (backend_calls() - products);
                assert!(
                    allocations <= allowed,
                    "{name} ({policy:?}) allocated {allocations} times in 50 steps ({allowed} allowed for its matrix products)"
                );
                if name != &"muon" {
                    assert_eq!(allowed, 0, "{name} runs no matrix products");
                }
            }
        }
    });
}
