//! A training step allocates nothing in this crate once its buffers have grown.
//!
//! A counting global allocator records every allocation in the process (all
//! threads). Steps run inside a rayon pool, as a trainer would: calling parallel
//! code from outside a pool makes rayon queue the job on a shared injector, which
//! allocates a block every few dozen calls.

use downhill::linalg::backend_calls;
use downhill::Rng;
use downhill_nn::{Input, InputShape, ModelSpec, Network};
use downhill_testenv::allocations;

#[global_allocator]
static GLOBAL: downhill_testenv::Counting = downhill_testenv::Counting;

/// Runs `warm` steps, then `steps` more; returns (allocations, backend calls)
/// during the measured steps. Batch sizes cycle 64, 17, 1 so that smaller batches
/// after a larger one are covered.
fn measure(spec: &str, shape: InputShape, sparse: bool, steps: usize) -> (usize, usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // Worker threads finish starting up (allocating their queues) asynchronously;
    // make sure that has happened before counting.
    pool.broadcast(|_| ());
    pool.install(|| {
        let s: ModelSpec = spec.parse().unwrap();
        let mut net = Network::<f32>::new(&s, shape, 10, 1).unwrap();
        let dim = shape.len();
        let mut r = Rng::new(3);
        // A transformer reads token ids (below the 10 classes, its vocabulary).
        let tokens = spec.starts_with("transformer");
        let x: Vec<f32> = (0..64 * dim)
            .map(|_| {
                if tokens {
                    r.below(10) as f32
                } else {
                    r.uniform_f32()
                }
            })
            .collect();
        let y: Vec<u32> = (0..64).map(|_| r.below(10) as u32).collect();
        let indptr: Vec<usize> = (0..=64).map(|i| i * 5).collect();
        let indices: Vec<u32> = (0..320).map(|_| r.below(dim as u64) as u32).collect();
        let values: Vec<f32> = (0..320).map(|_| r.uniform_f32()).collect();
        let mut rng = Rng::new(4);
        let mut step = |i: usize, net: &mut Network<f32>| {
            let rows = [64, 17, 1][i % 3];
            let input = if sparse {
                Input::Sparse {
                    indptr: &indptr[..=rows],
                    indices: &indices,
                    values: &values,
                    dim,
                }
            } else {
                Input::Dense {
                    values: &x[..rows * dim],
                    rows,
                    dim,
                }
            };
            net.loss_and_grad(input, &y[..rows], &mut rng).unwrap();
            net.evaluate(input, &y[..rows]).unwrap();
            net.logits(input).unwrap();
        };
        for i in 0..3 {
            step(i, &mut net);
        }
        let (a0, c0) = (allocations(), backend_calls());
        for i in 0..steps {
            step(i, &mut net);
        }
        (allocations() - a0, backend_calls() - c0)
    })
}

/// One test function, because the harness runs tests on parallel threads and a
/// starting test allocates (its name, output capture) while another measures.
#[test]
fn steps_allocate_nothing_outside_the_matrix_product_backend() {
    // Sparse input into a single layer never calls the matrix-product backend.
    let (allocs, calls) = measure(
        "logreg:input-dropout=0.5:l2=0.01",
        InputShape::Flat(300),
        true,
        30,
    );
    assert_eq!(calls, 0);
    assert_eq!(
        allocs, 0,
        "allocations in 30 sparse logistic-regression steps"
    );

    let img = InputShape::Image {
        channels: 1,
        height: 12,
        width: 12,
    };
    for (spec, shape) in [
        ("logreg", InputShape::Flat(50)),
        (
            "mlp:40,30:dropout=0.5:input-dropout=0.2",
            InputShape::Flat(50),
        ),
        ("cnn:4,8:pool=2:fc=16:dropout=0.5", img),
        ("cnn:3,3,3:kernel=3:pool=3/2/1:fc=0", img),
        (
            "transformer:layers=2,d=16,heads=2,context=8:l2=0.01",
            InputShape::Flat(9),
        ),
        (
            "transformer:layers=1,d=8,heads=1,context=5,tied=true",
            InputShape::Flat(6),
        ),
    ] {
        let (allocs, calls) = measure(spec, shape, false, 12);
        assert!(calls > 0);
        // The gemm crate allocates at most two packing buffers per call; nothing else may.
        assert!(
            allocs <= 2 * calls,
            "{spec}: {allocs} allocations for {calls} backend calls"
        );
    }
}
