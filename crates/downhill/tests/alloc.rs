//! Steps allocate nothing after the first (which creates the state buffers
//! and any workspace): counted with a global allocator that counts every
//! allocation made on the threads of the pool the steps run in (the test
//! harness's own threads allocate at times of their choosing, so they are
//! not counted). The one exception is the matrix-product backend, which
//! packs its operands into buffers it allocates on each call (at most two):
//! Muon's, SOAP's and Shampoo's steps may allocate that much per product,
//! and nothing more, except on the steps where SOAP and Shampoo refresh
//! their preconditioners through `faer`, whose inner products pack their
//! operands too: those allocate the same at every refresh.

use downhill::clip::{clip_grad_norm_flat, Norm};
use downhill::linalg::backend_calls;
use downhill::optim::{build, registry, NonFinite, OptimizerSpec, OPTIMIZERS};
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
                let decomposes = registry::entry(name).unwrap().decomposes;
                // Refreshes every 5 steps (Shampoo's default is every step).
                let spec: OptimizerSpec = if decomposes {
                    format!("{name}(precondition_frequency=5)").parse().unwrap()
                } else {
                    OptimizerSpec::new(name)
                };
                let mut opt = build::<f32>(&spec, &shapes).unwrap();
                opt.set_non_finite(policy);
                // The first step creates the state; the next ones also warm up
                // the pool's threads (their work queues grow on first use).
                // (Shampoo's roots are the identity until its fifth step.)
                for _ in 0..6 {
                    clip_grad_norm_flat(&mut grads, 1e6, Norm::P(2.0), true).unwrap();
                    opt.step_flat(&mut params, &grads).unwrap();
                }
                // Per step: allocations, and products (each may allocate its
                // two packing buffers).
                let mut counts = Vec::with_capacity(50);
                for _ in 0..50 {
                    clip_grad_norm_flat(&mut grads, 1e6, Norm::P(2.0), true).unwrap();
                    let (before, products) = (marked_allocations(), backend_calls());
                    opt.step_flat(&mut params, &grads).unwrap();
                    counts.push((marked_allocations() - before, backend_calls() - products));
                }
                // A rule that decomposes (SOAP, Shampoo) refreshes on some
                // steps, which run faer, whose own products allocate their
                // packing buffers too: those steps must allocate the same at
                // every refresh (nothing grows); every other step is held to
                // the products' allowance like any rule.
                // The most common product count is a plain step's.
                let plain = counts
                    .iter()
                    .map(|c| c.1)
                    .max_by_key(|&p| counts.iter().filter(|c| c.1 == p).count())
                    .unwrap_or(0);
                let mut refreshes = Vec::new();
                for (i, &(allocations, products)) in counts.iter().enumerate() {
                    if decomposes && products > plain {
                        refreshes.push(allocations);
                        continue;
                    }
                    assert!(
                        allocations <= 2 * products,
                        "{name} ({policy:?}) step {i} allocated {allocations} times ({} allowed for its {products} products)",
                        2 * products
                    );
                }
                assert!(
                    refreshes.windows(2).all(|w| w[0] == w[1]),
                    "{name} ({policy:?}): refreshes allocated {refreshes:?} times"
                );
                let total: usize = counts.iter().map(|c| c.1).sum();
                if !["muon", "soap", "shampoo"].contains(name) {
                    assert_eq!(total, 0, "{name} runs no matrix products");
                }
            }
        }
    });
}
