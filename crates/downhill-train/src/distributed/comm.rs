//! The MPI session and the world of ranks: start-up, the small
//! deterministic reductions the trainer needs (loss totals, checksums),
//! moving bytes to rank 0, and ending the job.

use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use std::sync::Arc;

/// Environment variables that MPI launchers set in every rank they start:
/// OpenMPI's `mpirun`, MPICH's Hydra (`PMI_*`), and PMIx-based launchers
/// such as `srun --mpi=pmix`.
const LAUNCHER_VARS: &[&str] = &["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"];

/// An initialised MPI library. MPI is finalised when the session and every
/// [`World`] taken from it have gone (each holds a share of it), so no MPI
/// call can follow `MPI_Finalize`.
pub struct Session {
    universe: Arc<Universe>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// Initialises MPI when this process was started by an MPI launcher
/// (`mpirun`, `mpiexec`, `srun`), and returns `None` otherwise, so a plain
/// `downhill train` needs no MPI runtime at all. MPI is asked for
/// `MPI_THREAD_SERIALIZED`: the trainer calls MPI from one thread at a time,
/// but not always the main one (steps run inside a thread pool).
///
/// From here on a panic on any thread of this rank ends the whole job
/// (`MPI_Abort`) after one line naming the rank, instead of unwinding into
/// `MPI_Finalize` while the other ranks wait in a collective.
pub fn init() -> Result<Option<Session>, String> {
    if !LAUNCHER_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        return Ok(None);
    }
    let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| "MPI was initialised twice in one process".to_string())?;
    if matches!(level, Threading::Single | Threading::Funneled) {
        return Err(format!(
            "the MPI library offers thread support {level:?}; downhill needs Serialized (rebuild MPI with thread support)"
        ));
    }
    let world = universe.world();
    abort_on_panic(world.rank(), world.size());
    Ok(Some(Session {
        universe: Arc::new(universe),
    }))
}

/// Makes a panic anywhere in this process print one line naming the rank,
/// then the usual panic message, and end every rank of the job.
fn abort_on_panic(rank: i32, size: i32) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: rank {rank} of {size} panicked{at}: {}; ending the job",
            downhill::error::printable(what)
        );
        default(info);
        // SAFETY: MPI is initialised (this hook is set after
        // `initialize_with_threading` succeeded) and, while the hook can
        // run, not finalised: finalisation waits for the session and every
        // world, which a panicking thread is still inside. MPI_Abort takes
        // the world communicator's handle by value and does not return.
        unsafe {
            mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 101);
        }
    }));
}

impl Session {
    /// Every rank of the job (`MPI_COMM_WORLD`, duplicated so that the
    /// trainer's messages never meet a user's).
    pub fn world(&self) -> World {
        World::new(self.universe.world().duplicate(), self.universe.clone())
    }
}

/// A communicator over the ranks of a data-parallel job, with the rank and
/// size at hand.
///
/// `Send`, so the trainer can drive it from a pool thread, but not `Sync`:
/// MPI runs at `MPI_THREAD_SERIALIZED`, and a shared `World` would let two
/// threads enter collectives at once from safe code.
pub struct World {
    /// Dropped before `universe` (fields drop in order): freeing the
    /// communicator is an MPI call.
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// This world's share of the MPI library: finalised after the last.
    universe: Arc<Universe>,
}

// SAFETY: MPI runs at `MPI_THREAD_SERIALIZED` (checked in `init`), so any
// thread may make MPI calls as long as no two make them at once. A `World`
// is not `Sync` and every call takes `&self` of the one handle, so its calls
// come from whichever single thread holds it; the handle itself is a plain
// value MPI does not tie to a thread.
unsafe impl Send for World {}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish()
    }
}

impl World {
    fn new(comm: SimpleCommunicator, universe: Arc<Universe>) -> Self {
        let rank = comm.rank() as usize;
        let size = comm.size() as usize;
        World {
            comm,
            rank,
            size,
            universe,
        }
    }

    /// A second handle on the same ranks (a duplicated communicator), for a
    /// helper that must not share message order with its owner.
    pub fn duplicate(&self) -> World {
        World::new(self.comm.duplicate(), self.universe.clone())
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many ranks of the job share this machine (its shared-memory
    /// node), this one included: the default thread count of each is the
    /// machine's cores divided among them.
    pub fn local_size(&self) -> usize {
        self.comm.split_shared(self.rank as i32).size() as usize
    }

    /// Whether this is rank 0, the one that writes files and prints.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// The raw communicator, for [`crate::distributed::DataParallel`].
    pub(crate) fn comm(&self) -> &SimpleCommunicator {
        &self.comm
    }

    /// Waits until every rank gets here.
    pub fn barrier(&self) {
        self.comm.barrier();
    }

    /// Ends every rank of the job at once (`MPI_Abort`): the way out when
    /// one rank fails while the others may wait in a collective.
    pub fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }

    /// Every rank's `local` values, rank after rank (each rank must pass the
    /// same number).
    pub fn all_gather_f64(&self, local: &[f64]) -> Vec<f64> {
        let mut all = vec![0.0f64; local.len() * self.size];
        self.comm.all_gather_into(local, &mut all[..]);
        all
    }

    /// The element-wise sum of every rank's `local`, added in rank order
    /// (rank 0 first), so every rank gets the same bits on every run, unlike
    /// `MPI_Allreduce`, whose algorithms add in different orders.
    pub fn sum_f64(&self, local: &[f64]) -> Vec<f64> {
        let all = self.all_gather_f64(local);
        let mut sum = all[..local.len()].to_vec();
        for part in all.chunks(local.len().max(1)).skip(1) {
            for (s, x) in sum.iter_mut().zip(part) {
                *s += x;
            }
        }
        sum
    }

    /// Every rank's `value`, by rank.
    pub fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size];
        self.comm.all_gather_into(&value, &mut all[..]);
        all
    }

    /// Every rank's `bytes`, by rank; the lengths may differ. For the
    /// reasons on a failure path, so every rank can report the same one.
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let lens = self.all_gather_u64(bytes.len() as u64);
        let counts: Vec<i32> = lens.iter().map(|&l| l as i32).collect();
        let displs: Vec<i32> = counts
            .iter()
            .scan(0i32, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let mut all = vec![0u8; lens.iter().sum::<u64>() as usize];
        {
            let mut recv = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            self.comm.all_gather_varcount_into(bytes, &mut recv);
        }
        displs
            .iter()
            .zip(&counts)
            .map(|(&d, &c)| all[d as usize..(d + c) as usize].to_vec())
            .collect()
    }

    /// Checks that every rank holds the same `value` (a checksum of something
    /// that must be equal everywhere); the error names the first rank that
    /// differs from rank 0 and `what` it is.
    pub fn check_equal(&self, value: u64, what: &str) -> Result<(), String> {
        let all = self.all_gather_u64(value);
        match all.iter().position(|&v| v != all[0]) {
            None => Ok(()),
            Some(r) => Err(format!(
                "rank {r}'s {what} differ from rank 0's (checksum {:016x} against {:016x}); the replicas are no longer identical",
                all[r], all[0]
            )),
        }
    }

    /// Sends `parts` to rank 0, one message each, in order (from the
    /// caller's buffers, without copying them into one).
    pub fn send_to_root(&self, parts: &[&[u8]]) {
        let root = self.comm.process_at_rank(0);
        for p in parts {
            root.send(*p);
        }
    }

    /// Receives the next `count` messages from `rank`, in order.
    pub fn receive_from(&self, rank: usize, count: usize) -> Vec<Vec<u8>> {
        let from = self.comm.process_at_rank(rank as i32);
        (0..count).map(|_| from.receive_vec::<u8>().0).collect()
    }
}

/// A checksum of a float buffer's exact bits (FNV-1a over the bit patterns
/// in order): equal buffers give equal sums, and any flipped bit changes it
/// with overwhelming probability.
pub fn checksum(values: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        h ^= u64::from(v.to_bits());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
