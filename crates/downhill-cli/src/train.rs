//! `downhill train`.

use crate::UserError;
use clap::Args;
use downhill::hyper::HyperValue;
use downhill_train::online::{train_online, OnlineConfig};
use downhill_train::{Console, Observer, OnDivergence, ScheduleUnit, Silent, TrainConfig, Trainer};
use std::path::PathBuf;

/// Train a model on a data set with one optimiser.
///
/// Every setting can also come from a TOML file (`--config`), whose keys are
/// the flag names with underscores (`batch_size = 64`); flags override it.
/// Each epoch prints the training loss and accuracy, the test loss and
/// accuracy, the learning rate, the time and the throughput. With `--out`,
/// the run writes metrics.jsonl (one JSON object per epoch, or per
/// evaluation with --steps), steps.csv (the
/// loss of every step), summary.json, init.safetensors (the initial weights)
/// and checkpoints/ (resumable with --resume; the newest kept).
#[derive(Args, Debug, Default)]
#[command(
    allow_negative_numbers = true,
    after_help = "Examples:
  downhill train --data builtin:fashion-mnist-small --model logreg --optimizer adam --epochs 5
  downhill train --data idx:/usr/share/datasets/fashion-mnist --model mlp:1000,1000 \\
                 --optimizer sgd --lr 0.05 --momentum 0.9 --nesterov --out runs/mlp
  downhill train --resume runs/mlp --epochs 20
  downhill train --model mlp:256 --steps 2000 --eval-every 250 --out runs/steps
  downhill train --resume runs/steps --steps 4000
  downhill train --data builtin:shakespeare --model transformer:layers=4,d=128,heads=4,context=128 \\
                 --optimizer muon --batch-size 32 --steps 1000 --eval-every 100 --out runs/lm
  downhill train --config run.toml
  zcat stream.svm.gz | downhill train --data - --dim 47236 --labels=-1,1 --optimizer \"sgd(lr=0.5)\"

With --data -, examples are read from standard input one at a time (LIBSVM
text), each used once for an update (batch size 1 unless --batch-size says
otherwise) and never stored: online learning. The loss on each example is
measured before its update (progressive validation)."
)]
pub struct TrainArgs {
    /// TOML file with settings (keys: data, model, optimizer, epochs, ...).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data: idx:DIR, cifar10:DIR, imdb:DIR, libsvm:TRAIN[,TEST], text:FILE[,VALID_FILE]
    /// (characters, for a transformer), builtin:NAME (fashion-mnist-small, shakespeare).
    /// [default: builtin:fashion-mnist-small]
    #[arg(long, value_name = "SPEC")]
    data: Option<String>,
    /// Model: logreg, logreg:binary, mlp:H1,H2[:tanh|sigmoid], cnn (c64-c64-c128-1000),
    /// cnn:C1,C2,C3, or on text transformer:layers=L,d=D,heads=H,context=C[,tied=true]
    /// (a GPT-2-style character language model; d a multiple of heads) [default: logreg]
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Optimizer: name or name(key=value,...), e.g. adam, sgd(lr=0.05,momentum=0.9),
    /// lbfgs(line_search_fn=strong_wolfe), newton (small logistic regressions).
    /// See `downhill optimizers`. [default: adam]
    #[arg(long, value_name = "SPEC")]
    optimizer: Option<String>,
    /// Learning rate (overrides the optimizer spec's).
    #[arg(long, value_name = "F")]
    lr: Option<String>,
    /// Momentum factor (sgd, rmsprop).
    #[arg(long, value_name = "F")]
    momentum: Option<String>,
    /// Dampening of momentum (sgd).
    #[arg(long, value_name = "F")]
    dampening: Option<String>,
    /// Nesterov momentum (sgd).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    nesterov: Option<String>,
    /// Weight decay (L2 or decoupled, per optimizer).
    #[arg(long, value_name = "F")]
    weight_decay: Option<String>,
    /// Decoupled weight decay (adam, nadam, radam).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    decoupled_weight_decay: Option<String>,
    /// Moment decay rates, e.g. 0.9,0.999 (adam family).
    #[arg(long, value_name = "B1,B2")]
    betas: Option<String>,
    /// Term added to denominators.
    #[arg(long, value_name = "F")]
    eps: Option<String>,
    /// AMSGrad variant (adam, adamw).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    amsgrad: Option<String>,
    /// Maximize the objective.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    maximize: Option<String>,
    /// Smoothing constant (rmsprop).
    #[arg(long, value_name = "F")]
    alpha: Option<String>,
    /// Centered variant (rmsprop).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    centered: Option<String>,
    /// Decay of running averages (adadelta).
    #[arg(long, value_name = "F")]
    rho: Option<String>,
    /// Learning-rate decay (adagrad).
    #[arg(long, value_name = "F")]
    lr_decay: Option<String>,
    /// Initial accumulator value (adagrad).
    #[arg(long, value_name = "F")]
    initial_accumulator_value: Option<String>,
    /// Momentum decay (nadam).
    #[arg(long, value_name = "F")]
    momentum_decay: Option<String>,
    /// Iterations per epoch (lbfgs).
    #[arg(long, value_name = "N")]
    max_iter: Option<String>,
    /// History size (lbfgs).
    #[arg(long, value_name = "N")]
    history_size: Option<String>,
    /// Line search: strong_wolfe or backtracking (lbfgs).
    #[arg(long, value_name = "NAME")]
    line_search_fn: Option<String>,
    /// Learning-rate schedule, e.g. cosineannealinglr(T_max=20), steplr(step_size=5,gamma=0.5),
    /// reducelronplateau(patience=2), inversesqrtlr. See `downhill schedules`.
    #[arg(long, value_name = "SPEC")]
    schedule: Option<String>,
    /// Advance the schedule every epoch or every step. [default: epoch]
    #[arg(long, value_name = "UNIT", value_parser = ["epoch", "step"])]
    schedule_unit: Option<String>,
    /// Examples per step; 0 = the whole training set (batch gradient descent),
    /// 1 = stochastic gradient descent. [default: 128]
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Micro-batches per optimiser step (gradient accumulation): a step on
    /// --batch-size × N examples with the memory of --batch-size. [default: 1]
    #[arg(long, value_name = "N")]
    accumulate: Option<usize>,
    /// Keep an exponential moving average of the weights with this decay
    /// (e.g. 0.999, torch's get_ema_multi_avg_fn), updated every step; it is
    /// evaluated (ema_test_* in metrics.jsonl) and saved in checkpoints.
    #[arg(long, value_name = "DECAY")]
    ema: Option<f64>,
    /// Stochastic weight averaging: average the weights at the end of every
    /// epoch from this one on (swa_test_* in metrics.jsonl); pair it with a
    /// `swalr(swa_lr=...)` schedule, e.g. in sequentiallr.
    #[arg(long, value_name = "EPOCH")]
    swa_start: Option<usize>,
    /// Passes over the training data. [default: 10]
    #[arg(long, value_name = "N")]
    pub(crate) epochs: Option<usize>,
    /// Train by optimizer steps instead of epochs: exactly N steps (one per
    /// batch, or one iteration of lbfgs or newton), the batches continuing
    /// from one shuffled pass over the data to the next; the order is the
    /// one --epochs uses, so N = E × (batches per epoch) with --eval-every
    /// (batches per epoch) trains exactly as --epochs E. Not with --epochs.
    #[arg(long, value_name = "N")]
    pub(crate) steps: Option<u64>,
    /// With --steps: evaluate, write a line of metrics.jsonl and a
    /// checkpoint every K steps, and after the last step. Such a period
    /// stands for an epoch: its number is the line's `epoch` (`step` is
    /// the global step, `data_epochs` the passes over the data so far),
    /// --schedule-unit epoch advances the schedule once a period, and
    /// --swa-start and --on-divergence backoff count periods.
    /// [default: ceil(N / 10), ten lines per run]
    #[arg(long, value_name = "K")]
    pub(crate) eval_every: Option<u64>,
    /// Seed for initialisation, shuffling, dropout and the validation split. [default: 0]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// L2 penalty λ/2·‖W‖² on weights, inside the loss. [default: 0]
    #[arg(long, value_name = "F")]
    l2: Option<f64>,
    /// Clip the gradient's global 2-norm to this.
    #[arg(long, value_name = "F")]
    clip_norm: Option<f64>,
    /// Clip every gradient element to ±this.
    #[arg(long, value_name = "F")]
    clip_value: Option<f64>,
    /// Hold out this fraction of the training data for validation.
    #[arg(long, value_name = "F")]
    valid_fraction: Option<f64>,
    /// Feature scaling: auto, none, scale01, standardise. [default: auto]
    #[arg(long, value_name = "MODE")]
    normalise: Option<String>,
    /// Use only the first N training examples.
    #[arg(long, value_name = "N")]
    limit_train: Option<usize>,
    /// Use only the first N test examples.
    #[arg(long, value_name = "N")]
    limit_test: Option<usize>,
    /// Vocabulary size for imdb: data. [default: 10000]
    #[arg(long, value_name = "N")]
    vocab_size: Option<usize>,
    /// Bag-of-words values for imdb: data: binary, counts, tfidf. [default: binary]
    #[arg(long, value_name = "MODE")]
    bag_of_words: Option<String>,
    /// Folder for metrics, summary and checkpoints (must not hold a run already).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Continue the run in DIR from its newest valid checkpoint (with its saved
    /// settings; only --epochs, or --steps for a run by steps, may change).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub(crate) resume: Option<PathBuf>,
    /// Also checkpoint every N steps (always at the end of each epoch).
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<u64>,
    /// Checkpoints to keep. [default: 3]
    #[arg(long, value_name = "N")]
    keep_checkpoints: Option<usize>,
    /// On a NaN or infinite loss: stop, or back off (restore the last epoch, halve the rate).
    /// [default: stop]
    #[arg(long, value_name = "WHAT", value_parser = ["stop", "backoff"])]
    on_divergence: Option<String>,
    /// How the first layer's weights move on sparse data (libsvm:, imdb:):
    /// auto, lazy or dense. [default: auto]
    ///
    /// lazy: each step updates only the rows of fc1.weight whose features
    /// occur in the batch, and only their optimizer state; it costs in
    /// proportion to the batch's features instead of the vocabulary. For sgd
    /// without momentum and for adagrad the result equals a dense step's. For
    /// adam it is torch's SparseAdam: untouched rows keep their moments and
    /// stand still (dense Adam keeps moving them), and the bias correction
    /// counts every step of the tensor. For sgd with momentum a row's velocity
    /// is applied only when the row is touched. Other tensors always take
    /// dense steps. Possible with sgd, adagrad and adam, without --l2 and
    /// without weight_decay, on a model whose first layer is dense.
    ///
    /// dense: every row every step. auto: lazy where possible on sparse data,
    /// dense otherwise; the run's header and summary.json say which and why.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "lazy", "dense"])]
    sparse_updates: Option<String>,
    /// Worker threads. [default: all cores]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// With --data - (a LIBSVM stream on standard input): the number of features.
    #[arg(long, value_name = "N")]
    dim: Option<usize>,
    /// With --data -: the class labels as written in the stream, e.g. -1,1 or 0,1,2.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    labels: Option<String>,
    /// With --data -: feature indices start at 0 (LIBSVM's start at 1).
    #[arg(long)]
    zero_based: bool,
    /// With --data -: report the progressive loss every N examples. [default: 1000]
    #[arg(long, value_name = "N")]
    log_every: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Under mpirun: each rank keeps the optimizer state of its own whole
    /// tensors only and updates only them; the parameters are gathered after
    /// every step (ZeRO stage 1). Same result as unsharded, 1/N of the state.
    #[cfg(feature = "mpi")]
    #[arg(long)]
    pub(crate) shard_optimizer_state: bool,
    /// For the tests only: make one rank fail on purpose
    /// (`panic:rank=R,step=S` or `nan:rank=R,step=S`).
    #[cfg(feature = "mpi")]
    #[arg(long, hide = true, value_name = "FAULT", value_parser = |s: &str| s.parse::<downhill_train::distributed::Fault>())]
    pub(crate) inject_fault: Option<downhill_train::distributed::Fault>,
}

impl TrainArgs {
    /// The hyper-parameter flags that were given, by torch name.
    fn hyper_flags(&self) -> Vec<(&'static str, &str)> {
        let flags: [(&'static str, &Option<String>); 20] = [
            ("lr", &self.lr),
            ("momentum", &self.momentum),
            ("dampening", &self.dampening),
            ("nesterov", &self.nesterov),
            ("weight_decay", &self.weight_decay),
            ("decoupled_weight_decay", &self.decoupled_weight_decay),
            ("betas", &self.betas),
            ("eps", &self.eps),
            ("amsgrad", &self.amsgrad),
            ("maximize", &self.maximize),
            ("alpha", &self.alpha),
            ("centered", &self.centered),
            ("rho", &self.rho),
            ("lr_decay", &self.lr_decay),
            ("initial_accumulator_value", &self.initial_accumulator_value),
            ("momentum_decay", &self.momentum_decay),
            ("max_iter", &self.max_iter),
            ("history_size", &self.history_size),
            ("line_search_fn", &self.line_search_fn),
            ("maximize", &None),
        ];
        flags
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect()
    }

    /// Whether the data come from standard input (`--data -`).
    pub(crate) fn is_stream(&self) -> bool {
        self.data.as_deref() == Some("-")
    }

    /// With `--resume DIR`, refuses the flags that a resume takes from the
    /// run's saved settings.
    pub(crate) fn check_resume_flags(&self, dir: &std::path::Path) -> Result<(), UserError> {
        if self.config.is_some()
            || self.data.is_some()
            || self.model.is_some()
            || self.optimizer.is_some()
            || self.sparse_updates.is_some()
            || !self.hyper_flags().is_empty()
        {
            return Err(UserError(format!(
                "--resume continues {} with its saved settings; only --epochs (or --steps) may be given",
                dir.display()
            )));
        }
        if self.eval_every.is_some() {
            return Err(UserError(format!(
                "--eval-every: --resume continues {} with its saved evaluation period; only --steps may be raised",
                dir.display()
            )));
        }
        self.check_steps_and_epochs()
    }

    /// Refuses `--steps` with `--epochs`: a run is measured in one or the other.
    fn check_steps_and_epochs(&self) -> Result<(), UserError> {
        if self.steps.is_some() && self.epochs.is_some() {
            return Err(UserError(downhill_train::config::STEPS_AND_EPOCHS.into()));
        }
        Ok(())
    }

    /// The settings: the config file (if any), then the flags over it, checked.
    pub fn config(&self) -> Result<TrainConfig, UserError> {
        let c = self.config_unchecked()?;
        c.validate()?;
        Ok(c)
    }

    /// The settings without the checks that need a data spec.
    fn config_unchecked(&self) -> Result<TrainConfig, UserError> {
        self.check_steps_and_epochs()?;
        let mut c = match &self.config {
            Some(path) => TrainConfig::from_toml_file(path)?,
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { c.$field = v.clone(); } )* };
        }
        macro_rules! set_opt {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { c.$field = Some(v.clone()); } )* };
        }
        set!(
            data,
            model,
            optimizer,
            batch_size,
            accumulate,
            epochs,
            seed,
            l2,
            normalise,
            vocab_size,
            bag_of_words,
            keep_checkpoints
        );
        set_opt!(
            ema,
            swa_start,
            schedule,
            clip_norm,
            clip_value,
            valid_fraction,
            limit_train,
            limit_test,
            checkpoint_every,
            threads,
            steps,
            eval_every
        );
        if self.epochs.is_some() && c.steps.is_some() {
            // --epochs over a config file that trains by steps.
            return Err(UserError(downhill_train::config::STEPS_AND_EPOCHS.into()));
        }
        if let Some(u) = &self.schedule_unit {
            c.schedule_unit = if u == "step" {
                ScheduleUnit::Step
            } else {
                ScheduleUnit::Epoch
            };
        }
        if let Some(u) = &self.sparse_updates {
            c.sparse_updates = u.parse()?;
        }
        if let Some(d) = &self.on_divergence {
            c.on_divergence = if d == "backoff" {
                OnDivergence::Backoff
            } else {
                OnDivergence::Stop
            };
        }
        let flags = self.hyper_flags();
        if !flags.is_empty() {
            let mut spec = c.optimizer_spec()?;
            for (k, v) in flags {
                spec.hyper.insert(k.to_string(), HyperValue::parse(v));
            }
            c.optimizer = spec.to_string();
        }
        Ok(c)
    }
}

/// Online learning from standard input (`--data -`).
fn run_stream(args: &TrainArgs, obs: &mut dyn Observer) -> Result<(), UserError> {
    let c = args.config_unchecked()?;
    if c.sparse_updates == downhill_train::SparseUpdates::Lazy {
        return Err(UserError(
            "--sparse-updates lazy applies to data sets loaded whole; a stream (--data -) takes dense steps".into(),
        ));
    }
    let dim = args
        .dim
        .ok_or_else(|| UserError("--data - needs --dim N (the number of features)".into()))?;
    let labels: Vec<String> = args
        .labels
        .as_deref()
        .ok_or_else(|| {
            UserError("--data - needs --labels, the class labels as written in the stream (e.g. --labels=-1,1)".into())
        })?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let cfg = OnlineConfig {
        model: c.model,
        optimizer: c.optimizer,
        dim,
        labels,
        zero_based: args.zero_based,
        batch_size: args.batch_size.unwrap_or(1),
        seed: c.seed,
        l2: c.l2,
        log_every: args.log_every.unwrap_or(1000),
        out: args.out.clone(),
    };
    let stdin = std::io::stdin();
    train_online(&cfg, stdin.lock(), "<stdin>", obs)?;
    Ok(())
}

pub fn run(args: TrainArgs) -> Result<(), UserError> {
    #[cfg(feature = "mpi")]
    {
        if let Some(session) = downhill_train::distributed::init().map_err(UserError)? {
            if session.world().size() > 1 {
                return crate::parallel::run(args, session);
            }
        }
        if args.shard_optimizer_state {
            return Err(UserError(
                "--shard-optimizer-state shards across the ranks of an MPI job: start it with mpirun -n N (N >= 2)".into(),
            ));
        }
    }
    let mut console = Console::new("");
    let mut silent = Silent;
    let obs: &mut dyn Observer = if args.quiet {
        &mut silent
    } else {
        &mut console
    };
    if args.is_stream() {
        return run_stream(&args, obs);
    }
    let stream_flags = [
        ("--dim", args.dim.is_some()),
        ("--labels", args.labels.is_some()),
        ("--zero-based", args.zero_based),
        ("--log-every", args.log_every.is_some()),
    ];
    if let Some((flag, _)) = stream_flags.iter().find(|(_, given)| *given) {
        return Err(UserError(format!(
            "{flag} applies to a stream on standard input (--data -)"
        )));
    }
    let mut trainer = match &args.resume {
        Some(dir) => {
            args.check_resume_flags(dir)?;
            let (mut t, warnings) = Trainer::resume(dir.clone(), args.epochs)?;
            for w in warnings {
                obs.message(&w);
            }
            if let Some(n) = args.steps {
                t.set_steps(n)?;
            }
            t
        }
        None => Trainer::new(args.config()?, args.out.clone())?,
    };
    trainer.run(obs)?;
    Ok(())
}
