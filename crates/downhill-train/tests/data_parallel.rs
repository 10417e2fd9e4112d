//! The library helper [`DataParallel`] under `mpirun` (feature `mpi`): this
//! test binary starts itself on 3 ranks, and each rank checks the gradient
//! sum against the rank-order sum it computes on its own, and the sharded
//! (ZeRO-1) Adam step against an unsharded one, bit for bit, and that a
//! non-finite value in one rank's shard stops every rank or none.
#![cfg(feature = "mpi")]

use downhill::optim::{build, NonFinite, OptimizerSpec, Param, StepOutcome};
use downhill::Rng;
use downhill_train::distributed::{self, DataParallel, Layout};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "DOWNHILL_DATA_PARALLEL_RANK";

/// Every rank's gradient, which every rank can compute: rank `r`, step `s`.
fn grads_of(rank: usize, step: u64, n: usize) -> Vec<f32> {
    let mut rng = Rng::new(7).fork(step * 16 + rank as u64);
    (0..n).map(|_| rng.normal() as f32).collect()
}

#[test]
fn data_parallel_helper_on_three_ranks() {
    if std::env::var_os(CHILD).is_some() {
        return on_a_rank();
    }
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new("mpirun")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env(CHILD, "1")
        .args([
            "-n",
            "3",
            "--oversubscribe",
            "--mca",
            "btl_vader_single_copy_mechanism",
            "none",
        ])
        .arg(exe)
        .args([
            "--exact",
            "data_parallel_helper_on_three_ranks",
            "--test-threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun starts (apt-get install openmpi-bin)");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the 3-rank job did not end in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Each of the 3 ranks ran the test and passed it.
    assert_eq!(text.matches("1 passed").count(), 3, "{text}");
}

fn on_a_rank() {
    let session = distributed::init()
        .expect("MPI")
        .expect("started by mpirun");
    let world = session.world();
    let (rank, ranks) = (world.rank(), world.size());
    assert_eq!(ranks, 3);
    // A matrix, a bias, another matrix and a bias: 4 whole tensors, cut in 3.
    let params: Vec<Param> = [vec![40, 30], vec![30], vec![30, 20], vec![20]]
        .into_iter()
        .map(Param::from)
        .collect();
    let sizes: Vec<usize> = params.iter().map(Param::len).collect();
    let total: usize = sizes.iter().sum();
    // Unequal shares of a batch of 10: 3, 3 and 4 examples.
    let weights = [0.3f32, 0.3, 0.4];

    // The sum: what this rank gets equals the rank-order sum it computes
    // itself, bit for bit, with buckets smaller than a shard.
    let mut plain = DataParallel::new(world.duplicate(), &sizes, Layout::Even, 500).unwrap();
    let mut sum = vec![0.0f32; total];
    plain
        .all_reduce(&grads_of(rank, 0, total), &weights, &mut sum)
        .unwrap();
    let all: Vec<Vec<f32>> = (0..ranks).map(|r| grads_of(r, 0, total)).collect();
    for (i, &s) in sum.iter().enumerate() {
        let want = weights[0] * all[0][i] + weights[1] * all[1][i] + weights[2] * all[2][i];
        assert_eq!(s.to_bits(), want.to_bits(), "element {i}");
    }
    // Each rank received the other ranks' values of its shard, and the rest
    // of the sum: 2·(N−1)/N of the buffer when shards are equal (here they
    // differ by one element: 1850 = 616 + 617 + 617).
    let bytes = plain.stats().bytes_received;
    let shard = plain.shard_range().len();
    assert_eq!(bytes, (((ranks - 1) * shard + total - shard) * 4) as u64);

    // The sharded step: 5 Adam steps with state for this rank's tensors
    // only, against 5 unsharded steps on the summed gradient.
    let spec: OptimizerSpec = "adam(lr=0.01)".parse().unwrap();
    let mut dp = DataParallel::new(world, &sizes, Layout::WholeTensors, 700).unwrap();
    let mut sharded = build::<f32>(&spec, dp.shard_of(&params)).unwrap();
    let mut whole = build::<f32>(&spec, &params).unwrap();
    assert!(sharded.sizes().len() < whole.sizes().len());
    let init: Vec<f32> = (0..total).map(|i| (i as f32 * 0.37).sin()).collect();
    let (mut a, mut b) = (init.clone(), init);
    for step in 0..5 {
        let g = grads_of(rank, step + 1, total);
        dp.step_sharded(&mut *sharded, &mut a, &g, &weights)
            .unwrap();
        plain.all_reduce(&g, &weights, &mut sum).unwrap();
        whole.step_flat(&mut b, &sum).unwrap();
    }
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    let sums = dp.world().all_gather_u64(distributed::checksum(&a));
    assert!(
        sums.iter().all(|&s| s == sums[0]),
        "replicas differ: {sums:?}"
    );
    dp.world()
        .check_equal(distributed::checksum(&a), "parameters")
        .expect("equal replicas pass the check");
    // A replica that differs is named: here rank 1 alone changes one bit.
    if rank == 1 {
        a[0] = f32::from_bits(a[0].to_bits() ^ 1);
    }
    let err = dp
        .world()
        .check_equal(distributed::checksum(&a), "parameters")
        .expect_err("a flipped bit is caught");
    assert!(
        err.starts_with("rank 1's parameters differ from rank 0's"),
        "{err}"
    );

    // A NaN that only rank 2's shard of the sum holds: every rank returns
    // the same outcome, naming rank 2, and no rank steps. Before, rank 2
    // returned its error while the others waited in the all-gather.
    let theta: Vec<f32> = (0..total).map(|i| (i as f32 * 0.11).cos()).collect();
    let last = dp.shard_range_of(2);
    let bad_at = last.start + 3;
    let mut bad = grads_of(rank, 9, total);
    if rank == 0 {
        bad[bad_at] = f32::NAN;
    }
    let last_tensor = dp.shard_tensors_of(2).unwrap().start;
    for policy in [NonFinite::Error, NonFinite::Skip] {
        let mut opt = build::<f32>(&spec, dp.shard_of(&params)).unwrap();
        opt.set_non_finite(policy);
        let mut p = theta.clone();
        let state = opt.save_state().unwrap();
        let outcome = dp.step_sharded(&mut *opt, &mut p, &bad, &weights);
        match policy {
            NonFinite::Error => {
                let e = outcome.expect_err("a NaN is an error on every rank");
                assert!(
                    e.starts_with("rank 2: ") && e.contains("no rank stepped"),
                    "rank {rank}: {e}"
                );
            }
            _ => assert_eq!(
                outcome,
                Ok(StepOutcome::Skipped {
                    param: last_tensor,
                    index: 3
                }),
                "rank {rank}"
            ),
        }
        assert!(p == theta, "rank {rank}: parameters changed");
        assert!(
            opt.save_state().unwrap() == state,
            "rank {rank}: state changed"
        );
        // Every rank is still in step: the next, finite, step is taken
        // everywhere, and the replicas stay equal.
        let outcome = dp.step_sharded(&mut *opt, &mut p, &grads_of(rank, 10, total), &weights);
        assert_eq!(outcome, Ok(StepOutcome::Stepped), "rank {rank}");
        dp.world()
            .check_equal(distributed::checksum(&p), "parameters")
            .expect("the replicas stay equal");
    }
}
