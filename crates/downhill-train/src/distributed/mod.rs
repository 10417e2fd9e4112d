//! Data-parallel training over MPI (feature `mpi`), with optional ZeRO-1
//! sharding of the optimiser state.
//!
//! `mpirun -n N downhill train ...` starts N replicas of one run. Every rank
//! loads the data, builds the same model from the seed and shuffles with the
//! same seed; each step, rank `r` computes the gradient of its contiguous
//! share of the global batch (`--batch-size` stays global), and
//! [`DataParallel`] sums the ranks' gradients, weighted by their shares, in
//! a fixed order: rank 0 first. Every rank then takes the same optimiser
//! step and holds bit-identical parameters, which the trainer checks at the
//! end of every epoch with a checksum compared across ranks.
//!
//! With `--shard-optimizer-state` (ZeRO stage 1, Rajbhandari et al. 2020)
//! each rank keeps the optimiser state of a contiguous run of **whole
//! tensors** only, updates those tensors, and the parameters are all-gathered
//! after the step. Whole tensors keep tensor-level rules exact (Adafactor's
//! row and column factors, LAMB's and LARS's per-tensor norms, Muon's whole
//! matrices); a partition (`muon` alone is one) gives each rank the parts
//! that own its tensors. Prodigy, whose step size comes from sums over every
//! tensor, and wrappers whose state is not laid out per tensor, are refused
//! with a message. The sum is added in the same order as without sharding,
//! so the two give the same bits. Checkpoints gather the shards into one ordinary state
//! ([`shard_state`]), which resumes on any number of ranks.
//!
//! Rank 0 alone writes files and prints; the others stay silent. A rank that
//! fails prints the reason with its rank and ends the job (`MPI_Abort`).
//!
//! See `docs/book/src/distributed.md` for launching under `mpirun`, Slurm and a
//! hostfile, and for measured scaling.

mod comm;
mod parallel;
pub mod shard_state;

pub use comm::{checksum, init, Session, World};
pub use parallel::{whole_tensor_bounds, CommStats, DataParallel, Layout, DEFAULT_BUCKET};

/// How a [`crate::Trainer`] runs as one replica of a data-parallel job.
#[derive(Debug)]
pub struct Parallel {
    /// The ranks of the job.
    pub world: World,
    /// ZeRO-1: each rank keeps the optimiser state of its own whole tensors
    /// and updates only them.
    pub shard_optimizer_state: bool,
    /// Elements per reduction bucket ([`DEFAULT_BUCKET`]).
    pub bucket: usize,
    /// A failure to inject, for the tests that show a failing rank ends
    /// the job (`None` in real runs).
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

/// A failure injected on purpose (`downhill train --inject-fault`, a
/// hidden flag of the `mpi` build): at step `step` (the first is 1), rank
/// `rank` panics, or puts a NaN in its own share of the gradient, before
/// the gradients are summed. For tests only.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// On which rank.
    pub rank: usize,
    /// At which step.
    pub step: u64,
}

/// What an injected [`Fault`] does.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The rank panics.
    Panic,
    /// The rank's gradient holds a NaN.
    Nan,
}

impl std::str::FromStr for Fault {
    type Err = String;

    /// `panic:rank=R,step=S` or `nan:rank=R,step=S`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not panic:rank=R,step=S or nan:rank=R,step=S");
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let kind = match kind {
            "panic" => FaultKind::Panic,
            "nan" => FaultKind::Nan,
            _ => return Err(bad()),
        };
        let (mut rank, mut step) = (None, None);
        for kv in rest.split(',') {
            match kv.split_once('=') {
                Some(("rank", v)) => rank = v.parse().ok(),
                Some(("step", v)) => step = v.parse().ok(),
                _ => return Err(bad()),
            }
        }
        match (rank, step) {
            (Some(rank), Some(step)) if step > 0 => Ok(Fault { kind, rank, step }),
            _ => Err(bad()),
        }
    }
}
