//! # downhill-train
//!
//! The training engine behind `downhill train` and `downhill compare`: it
//! loads data ([`downhill_data`]), builds a model ([`downhill_nn`]), and runs
//! an optimiser and schedule ([`downhill`]) over it, with
//!
//! * the three modes of gradient descent: batch (`batch_size = 0`: the whole
//!   training set per step), stochastic (`batch_size = 1`) and mini-batch;
//!   L-BFGS runs full-batch with a closure;
//! * per-epoch metrics in `metrics.jsonl`, per-step losses in `steps.csv`,
//!   `summary.json`;
//! * crash-safe checkpoints that resume bit-identically ([`checkpoint`]);
//! * divergence detection on the step it happens, with an optional back-off;
//! * lazy row-sparse updates of the first layer on sparse data
//!   ([`sparse`]: only the rows of features in the batch move);
//! * with the feature `mpi`, data-parallel training over MPI with a
//!   deterministic gradient sum and ZeRO-1 optimiser-state sharding
//!   (`distributed`, and `docs/book/src/distributed.md`).
//!
//! ```no_run
//! use downhill_train::{Console, TrainConfig, Trainer};
//!
//! let cfg = TrainConfig { model: "mlp:256".into(), optimizer: "adam(lr=0.001)".into(), epochs: 3, ..Default::default() };
//! let mut trainer = Trainer::new(cfg, Some("runs/mlp".into()))?;
//! let summary = trainer.run(&mut Console::new(""))?;
//! println!("{:?}", summary.best_test_accuracy);
//! # Ok::<(), downhill_train::TrainError>(())
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod checkpoint;
pub mod config;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod export;
pub mod method;
pub mod metrics;
pub mod newton;
pub mod online;
pub mod progress;
pub mod sparse;
pub mod trainer;

pub use config::{OnDivergence, ScheduleUnit, SparseUpdates, TrainConfig};
pub use metrics::{DataInfo, Divergence, EpochRecord, Summary};
pub use progress::{Console, Observer, RunInfo, Silent};
pub use trainer::{build_network, epoch_order, input_shape, TrainError, Trainer};
