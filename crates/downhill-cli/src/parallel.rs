//! `mpirun -n N downhill train ...`: the run as one replica of a
//! data-parallel job (feature `mpi`; see docs/book/src/distributed.md).

use crate::train::TrainArgs;
use crate::UserError;
use downhill_lab::compare::Executor;
use downhill_train::distributed::{Parallel, Session, DEFAULT_BUCKET};
use downhill_train::{Console, Observer, Silent, TrainError, Trainer};
use std::time::Duration;

/// How long a rank other than 0 waits before it ends the job over its own
/// error, so that an error every rank meets is reported once, by rank 0.
const GRACE: Duration = Duration::from_millis(1500);

/// Trains as one of the job's ranks. Rank 0 prints and writes files; a rank
/// that fails prints why, naming itself, and ends the whole job at once
/// (`MPI_Abort`) instead of leaving the others waiting in a collective.
pub fn run(args: TrainArgs, session: Session) -> Result<(), UserError> {
    let world = session.world();
    let (rank, size) = (world.rank(), world.size());
    let par = Parallel {
        world: session.world(),
        shard_optimizer_state: args.shard_optimizer_state,
        bucket: DEFAULT_BUCKET,
        fault: args.inject_fault,
    };
    let mut console = Console::new("");
    let mut silent = Silent;
    let obs: &mut dyn Observer = if args.quiet || rank != 0 {
        &mut silent
    } else {
        &mut console
    };
    let result = train(&args, par, obs);
    match result {
        Ok(()) => {
            world.barrier();
            Ok(())
        }
        // Every rank sees the same loss and gradient, so every rank stops at
        // the same step: end together, after rank 0 has written the summary.
        Err(Failure::Train(TrainError::Diverged(d))) => {
            world.barrier();
            if rank == 0 {
                Err(UserError(TrainError::Diverged(d).to_string()))
            } else {
                // Rank 0 says why: a rank that exits first makes mpirun
                // end the job, rank 0 included, maybe before it has
                // printed (a failure seen 1 run in 3).
                std::thread::sleep(GRACE);
                drop(world);
                drop(session);
                std::process::exit(2)
            }
        }
        Err(e) => {
            if rank != 0 {
                std::thread::sleep(GRACE);
            }
            let msg = match e {
                Failure::Train(e) => e.to_string(),
                Failure::User(UserError(m)) => m,
            };
            eprintln!(
                "error: rank {rank} of {size}: {}",
                downhill::error::printable(msg.trim_end())
            );
            world.abort(2)
        }
    }
}

enum Failure {
    Train(TrainError),
    User(UserError),
}

impl From<TrainError> for Failure {
    fn from(e: TrainError) -> Self {
        Failure::Train(e)
    }
}

impl From<UserError> for Failure {
    fn from(e: UserError) -> Self {
        Failure::User(e)
    }
}

fn train(args: &TrainArgs, par: Parallel, obs: &mut dyn Observer) -> Result<(), Failure> {
    if args.is_stream() {
        return Err(UserError(
            "--data - (a stream on standard input) trains in one process, not under mpirun".into(),
        )
        .into());
    }
    let mut trainer = match &args.resume {
        Some(dir) => {
            args.check_resume_flags(dir)?;
            let (mut t, warnings) = Trainer::resume_parallel(dir.clone(), args.epochs, par)?;
            for w in warnings {
                obs.message(&w);
            }
            if let Some(n) = args.steps {
                t.set_steps(n)?;
            }
            t
        }
        None => Trainer::new_parallel(args.config()?, args.out.clone(), par)?,
    };
    trainer.run(obs)?;
    Ok(())
}

/// `mpirun -n N downhill compare ...`: the comparison's runs spread over
/// the ranks (task-parallel). Run `i` goes to rank `i mod N`; each run stays
/// on one rank, so its bits equal a one-process run's. Rank 0 gathers the
/// results and writes the summary, pictures and report. A rank whose run
/// fails prints why, naming itself, and ends the whole job.
pub fn compare(args: crate::compare::CompareArgs, session: Session) -> Result<(), UserError> {
    let world = session.world();
    let (rank, size) = (world.rank(), world.size());
    let ranks = Ranks {
        world: std::sync::Mutex::new(world),
        rank,
        size,
        jobs: args.jobs,
    };
    match crate::compare::run_with(args, &ranks) {
        Ok(()) => {
            ranks.barrier();
            Ok(())
        }
        Err(UserError(msg)) => {
            // An error every rank meets (a bad setting) is said once, by
            // rank 0; the others wait for its abort.
            if rank != 0 {
                std::thread::sleep(GRACE);
            }
            eprintln!(
                "error: rank {rank} of {size}: {}",
                downhill::error::printable(msg.trim_end())
            );
            lock(&ranks.world).abort(2)
        }
    }
}

fn lock(
    w: &std::sync::Mutex<downhill_train::distributed::World>,
) -> std::sync::MutexGuard<'_, downhill_train::distributed::World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// The ranks of an MPI job as a comparison's executor.
struct Ranks {
    /// MPI is called from the main thread only (the runs' threads never
    /// touch it); the lock makes the world shareable with them.
    world: std::sync::Mutex<downhill_train::distributed::World>,
    rank: usize,
    size: usize,
    jobs: usize,
}

impl downhill_lab::compare::Executor for Ranks {
    fn writes(&self) -> bool {
        self.rank == 0
    }

    fn barrier(&self) {
        lock(&self.world).barrier();
    }

    fn threads_per_run(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let local = lock(&self.world).local_size().max(1);
        (cores / (local * self.jobs.max(1))).max(1)
    }

    fn run_all(
        &self,
        n: usize,
        work: &(dyn Fn(usize) -> Result<String, downhill_lab::LabError> + Sync),
    ) -> Result<Vec<String>, downhill_lab::LabError> {
        let mine: Vec<usize> = (0..n).filter(|i| i % self.size == self.rank).collect();
        let done: Vec<(usize, String)> =
            match downhill_lab::compare::run_indices(&mine, self.jobs, work) {
                Ok(texts) => mine.into_iter().zip(texts).collect(),
                Err(e) => {
                    eprintln!(
                        "error: rank {} of {}: {}",
                        self.rank,
                        self.size,
                        downhill::error::printable(e.to_string().trim_end())
                    );
                    lock(&self.world).abort(2)
                }
            };
        let payload = serde_json::to_vec(&done).expect("results serialise");
        let gathered = lock(&self.world).all_gather_bytes(&payload);
        let mut all: Vec<Option<String>> = vec![None; n];
        for bytes in gathered {
            let part: Vec<(usize, String)> = serde_json::from_slice(&bytes).map_err(|e| {
                downhill_lab::LabError::Invalid(format!("a rank's results do not parse: {e}"))
            })?;
            for (i, text) in part {
                all[i] = Some(text);
            }
        }
        all.into_iter()
            .enumerate()
            .map(|(i, t)| {
                t.ok_or_else(|| {
                    downhill_lab::LabError::Invalid(format!("no rank returned task {i}"))
                })
            })
            .collect()
    }
}
