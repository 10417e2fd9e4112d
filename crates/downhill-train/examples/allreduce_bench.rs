//! The gradient sum alone, under `mpirun` (feature `mpi`): milliseconds per
//! call and bytes received for [`DataParallel::all_reduce`] (rank-ordered,
//! deterministic) beside MPI's own `MPI_Allreduce` (whose summation order
//! depends on the algorithm), for the MLP's and the CNN's parameter counts
//! and a 10M-parameter buffer.
//!
//! ```text
//! cargo build --release -p downhill-train --features mpi --example allreduce_bench
//! mpirun -n 2 --mca btl_vader_single_copy_mechanism none target/release/examples/allreduce_bench
//! ```

use downhill_train::distributed::{self, DataParallel, Layout, DEFAULT_BUCKET};
use mpi::collective::SystemOperation;
use mpi::traits::*;
use std::time::Instant;

fn main() -> Result<(), String> {
    let session = distributed::init()?.ok_or("start it with mpirun -n N")?;
    let world = session.world();
    let raw = mpi::topology::SimpleCommunicator::world();
    let (rank, ranks) = (world.rank(), world.size());
    let reps = 20;
    // MLP 784-1000-1000-10, CNN cnn:32,32,64 on 28×28 (the counts the
    // trainer reports), 10M.
    for (name, n) in [
        ("mlp", 1_796_010usize),
        ("cnn", 344_738),
        ("10M", 10_000_000),
    ] {
        let mut dp = DataParallel::new(world.duplicate(), &[n], Layout::Even, DEFAULT_BUCKET)?;
        let grads: Vec<f32> = (0..n).map(|i| ((i + rank) as f32 * 1e-3).sin()).collect();
        let mut out = vec![0.0f32; n];
        let w = vec![1.0 / ranks as f32; ranks];
        dp.all_reduce(&grads, &w, &mut out)?; // warm-up
        world.barrier();
        let before = dp.stats();
        let t = Instant::now();
        for _ in 0..reps {
            dp.all_reduce(&grads, &w, &mut out)?;
        }
        let ours = t.elapsed().as_secs_f64() / reps as f64;
        let bytes = (dp.stats().bytes_received - before.bytes_received) / reps as u64;
        raw.all_reduce_into(&grads[..], &mut out[..], SystemOperation::sum());
        world.barrier();
        let t = Instant::now();
        for _ in 0..reps {
            raw.all_reduce_into(&grads[..], &mut out[..], SystemOperation::sum());
        }
        let theirs = t.elapsed().as_secs_f64() / reps as f64;
        if rank == 0 {
            let ring = 2.0 * (ranks - 1) as f64 / ranks as f64 * (n * 4) as f64;
            println!(
                "{name:>4} {n:>9} params, {ranks} ranks: rank-ordered {:7.2} ms ({:.2} GB/s received), MPI_Allreduce {:7.2} ms; received {bytes} B/call, ring bound {ring:.0} B",
                ours * 1e3,
                bytes as f64 / ours / 1e9,
                theirs * 1e3,
            );
        }
    }
    Ok(())
}
