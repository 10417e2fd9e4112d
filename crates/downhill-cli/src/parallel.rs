//! `mpirun -n N downhill train ...`: the run as one replica of a
//! data-parallel job (feature `mpi`; see docs/book/src/distributed.md).

use crate::train::TrainArgs;
use crate::UserError;
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
