//! The training loop.

use crate::batch::Batcher;
use crate::checkpoint::{self, TrainerState};
use crate::config::{OnDivergence, ScheduleUnit, TrainConfig, MAX_BACKOFFS};
use crate::method::Method;
use crate::metrics::{best_of, DataInfo, Divergence, EpochRecord, EpochTotals, Summary};
use crate::progress::Observer;
use crate::sparse::{LazyStep, UpdateChoice};
use downhill::average::{Averaging, WeightAverage};
use downhill::clip::{clip_grad_norm_flat, clip_grad_value, grad_norm, Norm};
use downhill::schedule::Scheduler;
use downhill::state::SavedState;
use downhill::Rng;
use downhill_data::{DataSplit, Dataset, Features};
use downhill_nn::Network;
use std::path::PathBuf;
use std::time::Instant;

mod build;
mod error;
mod evaluation;
mod full_batch;
#[cfg(feature = "mpi")]
mod parallel;
mod persist;
mod steps;

pub(crate) use build::append;
pub use build::{build_network, epoch_order, input_shape};
use build::{max_batch_features, refuse_existing_run, spec_has_dropout};
use error::io_err;
pub use error::TrainError;

/// How this process takes part in a data-parallel job: `None` alone.
#[cfg(feature = "mpi")]
type Par = Option<crate::distributed::Parallel>;
/// Without the `mpi` feature a trainer always runs alone.
#[cfg(not(feature = "mpi"))]
type Par = Alone;

/// A trainer that runs in this process alone.
#[cfg(not(feature = "mpi"))]
#[derive(Default)]
struct Alone;

/// Everything to restore after a divergence: the state at the end of the last
/// good epoch.
struct Snapshot {
    params: Vec<f32>,
    optimizer: SavedState,
    state: TrainerState,
    ema: Option<WeightAverage<f32>>,
    swa: Option<WeightAverage<f32>>,
}

/// Which weight average.
#[derive(Clone, Copy)]
enum Which {
    Ema,
    Swa,
}

/// A training run: data, model, optimiser, schedule and position.
pub struct Trainer {
    cfg: TrainConfig,
    data: DataSplit,
    info: DataInfo,
    net: Network<f32>,
    method: Method,
    sched: Option<Scheduler>,
    rng: Rng,
    epoch: usize,
    batch: usize,
    step: u64,
    totals: EpochTotals,
    history: Vec<EpochRecord>,
    /// Losses of the current epoch's steps, as (step, loss): `steps.csv`
    /// gets them at the epoch's end. Only one epoch's worth is held, so
    /// memory and checkpoints stay the same size however long the run.
    epoch_steps: Vec<(u64, f64)>,
    backoffs: u32,
    elapsed: f64,
    out: Option<PathBuf>,
    batcher: Batcher,
    acc: Vec<f32>,
    /// Shared so that an epoch can run in it while the trainer is borrowed.
    pool: std::sync::Arc<rayon::ThreadPool>,
    last_good: Option<Snapshot>,
    /// The optimiser's evaluation point, when it has one (reused buffer).
    eval_buf: Vec<f32>,
    /// Whether the last epoch's evaluation used `eval_buf`.
    at_eval_point: bool,
    /// The exponential moving average of the weights (`--ema`).
    ema: Option<WeightAverage<f32>>,
    /// The stochastic weight average (`--swa-start`).
    swa: Option<WeightAverage<f32>>,
    diverged: Option<Divergence>,
    /// Dense or lazy row-sparse steps, and why.
    updates: UpdateChoice,
    /// The lazy step's buffers, when steps are lazy.
    lazy: Option<LazyStep>,
    /// This process's part in a data-parallel job, if any.
    #[cfg(feature = "mpi")]
    replica: Option<Box<parallel::Replica>>,
    /// The shuffled order of the data epoch `order_epoch` (reused, so that
    /// a step that starts a data epoch allocates nothing).
    order: Vec<usize>,
    /// Which data epoch `order` holds, if any yet.
    order_epoch: Option<usize>,
    /// A run by steps whose full-batch method stopped short of its steps
    /// (converged): the run ends early.
    stalled: bool,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.cfg)
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .finish()
    }
}

impl Trainer {
    /// Loads the data, builds the model from the seed and prepares the
    /// optimiser. With `out`, the run's files go there; the folder must not
    /// already hold a run (resume one with [`Trainer::resume`]).
    pub fn new(cfg: TrainConfig, out: Option<PathBuf>) -> Result<Self, TrainError> {
        cfg.validate()?;
        refuse_existing_run(out.as_deref())?;
        let data = downhill_data::load(&cfg.data, &cfg.load_options()?)?;
        Self::with_data(cfg, data, out)
    }

    /// Like [`Trainer::new`], as one replica of a data-parallel job (see
    /// [`crate::distributed`]): every rank calls it with the same settings;
    /// rank 0 alone writes to `out`.
    #[cfg(feature = "mpi")]
    pub fn new_parallel(
        cfg: TrainConfig,
        out: Option<PathBuf>,
        par: crate::distributed::Parallel,
    ) -> Result<Self, TrainError> {
        cfg.validate()?;
        let out = out.filter(|_| par.world.is_root());
        refuse_existing_run(out.as_deref())?;
        let data = downhill_data::load(&cfg.data, &cfg.load_options()?)?;
        cfg.validate_settings()?;
        let t = Self::build(cfg, data, out, Some(par))?;
        t.start_files()?;
        Ok(t)
    }

    /// Like [`Trainer::new`] with data already in memory (so that several
    /// optimisers can be compared on the same data without loading it again).
    pub fn with_data(
        cfg: TrainConfig,
        data: DataSplit,
        out: Option<PathBuf>,
    ) -> Result<Self, TrainError> {
        cfg.validate_settings()?;
        refuse_existing_run(out.as_deref())?;
        let t = Self::build(cfg, data, out, Par::default())?;
        t.start_files()?;
        Ok(t)
    }

    /// A new run's first files: its settings, its initial weights, and empty
    /// metrics.
    fn start_files(&self) -> Result<(), TrainError> {
        let t = self;
        if let Some(out) = &t.out {
            // Everything that can be refused is made before the folder,
            // so a refusal leaves no empty output behind.
            let config = t.cfg.to_toml()?;
            let init = checkpoint::model_bytes(t.net.params(), t.net.tensors(), &t.cfg.model)
                .map_err(TrainError::Invalid)?;
            std::fs::create_dir_all(out).map_err(io_err(out))?;
            t.write_file("config.toml", config.as_bytes())?;
            t.write_file("init.safetensors", &init)?;
            // Empty, not absent: a run killed before its first checkpoint
            // may have left these behind.
            t.write_file("metrics.jsonl", b"")?;
            t.write_file("steps.csv", b"")?;
        }
        Ok(())
    }

    fn build(
        mut cfg: TrainConfig,
        data: DataSplit,
        out: Option<PathBuf>,
        par: Par,
    ) -> Result<Self, TrainError> {
        // A run by steps records the evaluation period it uses, so that a
        // resumed run keeps the same grid even with --steps raised.
        cfg.eval_every = cfg.eval_period();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Replicas on one machine share its cores.
        #[cfg(feature = "mpi")]
        let cores = par
            .as_ref()
            .map_or(cores, |p| (cores / p.world.local_size()).max(1));
        let threads = cfg.threads.unwrap_or(cores);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| TrainError::Invalid(format!("cannot start {threads} threads: {e}")))?;
        // Wait until every worker has started (and made its start-up
        // allocations), so that none lands in a step.
        pool.broadcast(|_| ());
        if data.train.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{}: the training split is empty",
                cfg.data
            )));
        }
        let info = DataInfo {
            spec: cfg.data.clone(),
            train: data.train.len(),
            valid: data.valid.as_ref().map_or(0, |d| d.len()),
            test: data.test.as_ref().map_or(0, |d| d.len()),
            dim: data.train.dim(),
            classes: data.train.classes(),
            sparse: matches!(data.train.features(), Features::Sparse(_)),
        };
        let net = build_network(&cfg, &data.train)?;
        let spec = net.spec().clone();
        let ospec = cfg.optimizer_spec()?;
        #[cfg(feature = "mpi")]
        let (mut method, replica) = parallel::method(&ospec, &net.optimizer_params(), par)?;
        #[cfg(not(feature = "mpi"))]
        let mut method = {
            let Alone = par;
            Method::new(&ospec, &net.optimizer_params())?
        };
        let sched =
            match (cfg.schedule_spec()?, method.optimizer()) {
                (None, _) => None,
                (Some(s), Some(opt)) => Some(Scheduler::new(s, opt)?),
                (Some(_), None) => return Err(TrainError::Invalid(
                    "--schedule applies to step-wise optimizers; lbfgs sets its own step lengths"
                        .into(),
                )),
            };
        if matches!(method, Method::Lbfgs(_) | Method::Newton { .. }) && spec_has_dropout(&spec) {
            return Err(TrainError::Invalid(format!(
                "{} needs a deterministic objective for its line search: use a model without dropout",
                method.name()
            )));
        }
        if matches!(method, Method::Newton { .. }) {
            crate::newton::check_newton(&net).map_err(TrainError::Invalid)?;
        }
        let n_params = net.params().len();
        let ema = cfg
            .ema
            .map(|decay| WeightAverage::new(Averaging::Ema { decay }, n_params))
            .transpose()?;
        let swa = cfg
            .swa_start
            .map(|_| WeightAverage::new(Averaging::Swa, n_params))
            .transpose()?;
        if (ema.is_some() || swa.is_some()) && !matches!(method, Method::Step(_)) {
            return Err(TrainError::Invalid(format!(
                "--ema and --swa-start average the weights of step-wise optimizers, not {}",
                method.name()
            )));
        }
        let updates = crate::sparse::choose(&cfg, info.sparse)?;
        #[cfg(feature = "mpi")]
        let updates = match replica {
            Some(_) => parallel::dense_updates(updates, cfg.sparse_updates)?,
            None => updates,
        };
        let lazy = updates
            .lazy
            .then(|| LazyStep::new(&net, max_batch_features(&cfg, &data.train)));
        #[cfg(feature = "mpi")]
        let mut replica = replica;
        #[cfg(feature = "mpi")]
        if let Some(rep) = &mut replica {
            rep.agree_on_writes(out.is_some());
        }
        Ok(Trainer {
            rng: Rng::new(cfg.seed ^ 0x4452_4f50_4f55_5421),
            cfg,
            data,
            info,
            net,
            method,
            sched,
            epoch: 0,
            batch: 0,
            step: 0,
            totals: EpochTotals::default(),
            history: Vec::new(),
            epoch_steps: Vec::new(),
            backoffs: 0,
            elapsed: 0.0,
            out,
            batcher: Batcher::default(),
            acc: Vec::new(),
            pool: std::sync::Arc::new(pool),
            last_good: None,
            eval_buf: Vec::new(),
            at_eval_point: false,
            ema,
            swa,
            diverged: None,
            updates,
            lazy,
            #[cfg(feature = "mpi")]
            replica,
            order: Vec::new(),
            order_epoch: None,
            stalled: false,
        })
    }

    /// Raises (or lowers) the number of epochs [`Trainer::run`] goes to, so a
    /// run can continue in stages (as a race's survivors do).
    pub fn set_epochs(&mut self, epochs: usize) {
        self.cfg.epochs = epochs;
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Which rule updates which parameter, one line each, when the optimiser
    /// gives different parameters different rules (a partition, or `muon`
    /// alone): `fc2.weight [1000, 1000] hidden: muon (lr 0.02)`. Empty
    /// otherwise, where every parameter has the one rule the spec names.
    ///
    /// With the optimiser state sharded (feature `mpi`), a rank's optimiser
    /// holds its own tensors only; the list then comes from a stand-in over
    /// miniatures of every tensor, and shows the spec's rates.
    pub fn assignment(&mut self) -> Vec<String> {
        let params = self.net.optimizer_params();
        let names: Vec<String> = self.net.tensors().iter().map(|t| t.name.clone()).collect();
        #[cfg(feature = "mpi")]
        let mut stand_in = self.sharded_stand_in(&params);
        #[cfg(feature = "mpi")]
        let opt = match &mut stand_in {
            Some(o) => Some(&mut **o),
            None => self.method.optimizer(),
        };
        #[cfg(not(feature = "mpi"))]
        let opt = self.method.optimizer();
        let Some(opt) = opt else {
            return Vec::new();
        };
        if opt.name() != "partition" {
            return Vec::new();
        }
        downhill::optim::assignment_report(opt, &params, &names)
    }

    /// The model.
    pub fn network(&self) -> &Network<f32> {
        &self.net
    }

    /// Whether steps are dense or lazy row-sparse, and why
    /// ([`TrainConfig::sparse_updates`]).
    pub fn updates(&self) -> &UpdateChoice {
        &self.updates
    }

    /// The data.
    pub fn data(&self) -> &DataSplit {
        &self.data
    }

    /// Facts about the data.
    pub fn data_info(&self) -> &DataInfo {
        &self.info
    }

    /// Epoch records so far.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// Steps per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        match self.method {
            Method::Lbfgs(_) | Method::Newton { .. } => 1,
            Method::Step(_) => self.info.train.div_ceil(self.step_rows()),
        }
    }

    fn batch_size(&self) -> usize {
        if self.cfg.batch_size == 0 {
            self.info.train
        } else {
            self.cfg.batch_size.min(self.info.train)
        }
    }

    /// Examples per optimiser step: a batch, or `accumulate` of them.
    fn step_rows(&self) -> usize {
        self.batch_size()
            .saturating_mul(self.cfg.accumulate.max(1))
            .min(self.info.train)
    }

    /// Runs until `epochs` epochs are complete (or, with `steps`, until
    /// that many steps are taken), reporting to `obs`; writes
    /// `metrics.jsonl`, `steps.csv`, checkpoints and `summary.json` when the
    /// run has an output folder.
    pub fn run(&mut self, obs: &mut dyn Observer) -> Result<Summary, TrainError> {
        let info = self.run_info();
        obs.start(&info);
        self.snapshot()?;
        while !self.finished() {
            // (Not a placeholder pool swapped in: building one per epoch
            // started a thread whose start-up allocations landed mid-epoch.)
            let pool = std::sync::Arc::clone(&self.pool);
            let result = pool.install(|| self.run_epoch(obs));
            match result {
                Ok(()) => {}
                Err(TrainError::Diverged(d)) => {
                    let can_back_off = self.cfg.on_divergence == OnDivergence::Backoff
                        && self.backoffs < MAX_BACKOFFS;
                    match (can_back_off, self.last_good.take()) {
                        (true, Some(snap)) => {
                            let unit = match self.cfg.steps {
                                Some(_) => "evaluation period",
                                None => "epoch",
                            };
                            obs.message(&format!(
                                "{d}; restoring the end of {unit} {} and halving the learning rate",
                                snap.state.epoch
                            ));
                            self.restore(&snap.params, &snap.optimizer, &snap.state)?;
                            self.ema = snap.ema.clone();
                            self.swa = snap.swa.clone();
                            self.backoffs = snap.state.backoffs + 1;
                            self.halve_lr()?;
                            if let Some(w) = self.rewrite_metrics()? {
                                obs.message(&w);
                            }
                            self.last_good = Some(snap);
                            self.snapshot()?;
                        }
                        _ => {
                            // The steps before the divergence, for the record
                            // (a resume drops them with the epoch).
                            self.flush_epoch_steps()?;
                            self.diverged = Some(d.clone());
                            let summary = self.summary();
                            self.write_summary(&summary)?;
                            return Err(TrainError::Diverged(d));
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let summary = self.summary();
        self.write_summary(&summary)?;
        obs.finish(&summary);
        Ok(summary)
    }

    fn halve_lr(&mut self) -> Result<(), TrainError> {
        match (&mut self.method, &mut self.sched) {
            (Method::Step(o), Some(s)) => s.scale(&mut **o, 0.5)?,
            (Method::Step(o), None) => {
                for g in 0..o.num_groups() {
                    let lr = o.lr(g);
                    o.set_lr(g, lr * 0.5)?;
                }
            }
            (Method::Lbfgs(l), _) => {
                let mut state = l.save_state();
                let lr = l.config().lr * 0.5;
                state.manifest.groups[0]
                    .hyper
                    .insert("lr".into(), downhill::hyper::HyperValue::Number(lr));
                l.load_state(&state)?;
            }
            // Newton's step length comes from its line search; there is no
            // rate to halve, so a back-off only restores the last good state.
            (Method::Newton { .. }, _) => {}
        }
        Ok(())
    }

    /// The summary of the run so far.
    pub fn summary(&self) -> Summary {
        let (best_train_loss, best_test_accuracy) = best_of(&self.history);
        Summary {
            optimizer: self.cfg.optimizer.clone(),
            model: self.cfg.model.clone(),
            parameters: self.net.params().len(),
            data: self.info.clone(),
            epochs: self.history.len(),
            steps: self.step,
            seconds: self.elapsed,
            last: self.history.last().cloned(),
            best_train_loss,
            best_test_accuracy,
            backoffs: self.backoffs,
            diverged: self.diverged.clone(),
            updates: Some(self.updates.clone()),
        }
    }

    fn write_summary(&self, s: &Summary) -> Result<(), TrainError> {
        self.write_file(
            "summary.json",
            serde_json::to_string_pretty(s)
                .expect("summary serialises")
                .as_bytes(),
        )
    }

    /// A divergence at the next step.
    fn diverge(&self, what: String) -> TrainError {
        self.diverge_at(self.step + 1, what)
    }

    /// A divergence found at `step` of the current epoch.
    fn diverge_at(&self, step: u64, what: String) -> TrainError {
        TrainError::Diverged(Divergence {
            epoch: self.epoch + 1,
            step,
            what,
            optimizer: self.method.name().into(),
            lr: self.method.lr(),
        })
    }

    fn run_epoch(&mut self, obs: &mut dyn Observer) -> Result<(), TrainError> {
        let started = Instant::now();
        match self.method {
            Method::Step(_) => self.train_steps(obs)?,
            Method::Lbfgs(_) => self.train_lbfgs(obs)?,
            Method::Newton { .. } => self.train_newton(obs)?,
        }
        // A step can leave finite loss behind it and non-finite weights (the
        // next loss would show it): catch it now, before this epoch's end is
        // saved as a good state to return to.
        if let Some(i) = self.net.params().iter().position(|p| !p.is_finite()) {
            return Err(self.diverge_at(
                self.step,
                format!("parameter {i} is {}", self.net.params()[i]),
            ));
        }
        #[cfg(feature = "mpi")]
        let comm = self.check_replicas()?;
        #[cfg(not(feature = "mpi"))]
        let comm = None;
        let decomposition_failures = self.decomposition_failures();
        let train_seconds = self.totals.train_seconds;
        let eval_started = Instant::now();
        // Optimisers that evaluate elsewhere than at θ (schedule-free's x,
        // ASGD's average): swap that point in, and the training point back
        // afterwards, untouched.
        self.at_eval_point = self.eval_point()?;
        if self.at_eval_point {
            self.net.swap_params(&mut self.eval_buf)?;
        }
        let chunk = self.cfg.eval_batch;
        let mut eval = |d: &Option<Dataset>| -> Result<(Option<f64>, Option<f64>), TrainError> {
            match d {
                Some(d) if !d.is_empty() => {
                    let st = self.batcher.evaluate(&mut self.net, d, chunk)?;
                    Ok((Some(st.mean_loss()), Some(st.accuracy())))
                }
                _ => Ok((None, None)),
            }
        };
        let held_out = eval(&self.data.valid).and_then(|v| Ok((v, eval(&self.data.test)?)));
        if self.at_eval_point {
            self.net.swap_params(&mut self.eval_buf)?;
        }
        let ((valid_loss, valid_accuracy), (test_loss, test_accuracy)) = held_out?;
        if let (Some(swa), Some(start)) = (&mut self.swa, self.cfg.swa_start) {
            if self.epoch + 1 >= start {
                swa.update(self.net.params())?;
            }
        }
        let ema_figures = self.evaluate_average(Which::Ema)?;
        let swa_figures = self.evaluate_average(Which::Swa)?;
        // The epoch's last step may have broken the weights with the training
        // loss measured before it still finite: held-out losses show it.
        for (split, loss) in [("validation", valid_loss), ("test", test_loss)] {
            if let Some(l) = loss.filter(|l| !l.is_finite()) {
                return Err(self.diverge_at(
                    self.step,
                    format!("the {split} loss after the epoch is {l}"),
                ));
            }
        }
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        // A language model's losses in bits per character, too.
        let text = self.data.train.is_text();
        let bits = |nats: f64| text.then(|| nats / std::f64::consts::LN_2);
        let record = EpochRecord {
            epoch: self.epoch + 1,
            step: self.step,
            data_epochs: self.data_epochs(),
            train_loss: self.totals.loss(),
            train_accuracy: self.totals.accuracy(),
            valid_loss,
            valid_accuracy,
            test_loss,
            test_accuracy,
            train_bits_per_char: bits(self.totals.loss()),
            valid_bits_per_char: valid_loss.and_then(bits),
            test_bits_per_char: test_loss.and_then(bits),
            lr: self.method.lr(),
            seconds: train_seconds + eval_seconds,
            samples_per_sec: self.totals.count as f64 / train_seconds.max(1e-9),
            grad_norm: self.totals.grad_norm_sum / self.totals.steps.max(1) as f64,
            d: self.adapted_d(),
            ema: ema_figures,
            swa: swa_figures,
            comm,
            decomposition_failures,
        };
        self.elapsed += started.elapsed().as_secs_f64();
        self.epoch += 1;
        self.batch = 0;
        self.totals = EpochTotals::default();
        if let (Some(s), Method::Step(o)) = (&mut self.sched, &mut self.method) {
            if self.cfg.schedule_unit == ScheduleUnit::Epoch {
                let metric = record.valid_loss.unwrap_or(record.train_loss);
                s.step(&mut **o, Some(metric))?;
            }
        }
        if let Some(out) = &self.out {
            let path = out.join("metrics.jsonl");
            let mut line = serde_json::to_string(&record).expect("records serialise");
            line.push('\n');
            append(&path, line.as_bytes()).map_err(io_err(&path))?;
        }
        self.flush_epoch_steps()?;
        self.history.push(record.clone());
        self.checkpoint()?;
        self.snapshot()?;
        obs.epoch(&record, self.total_periods());
        Ok(())
    }

    /// What follows every optimiser step, in one process and data-parallel
    /// alike: the per-step schedule, the weight average, the counters and
    /// the epoch's totals, the observer, and a checkpoint when one is due.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn after_step(
        &mut self,
        batches: usize,
        loss: f64,
        st: &downhill_nn::BatchStats,
        norm: f64,
        t0: Instant,
        obs: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        if let (Some(s), ScheduleUnit::Step, Method::Step(opt)) =
            (&mut self.sched, self.cfg.schedule_unit, &mut self.method)
        {
            s.step(&mut **opt, Some(loss))?;
        }
        if let Some(ema) = &mut self.ema {
            ema.update(self.net.params())?;
        }
        self.step += 1;
        self.batch += 1;
        self.epoch_steps.push((self.step, loss));
        let t = &mut self.totals;
        t.loss_sum += st.loss_sum;
        t.penalty_sum += st.penalty * st.count as f64;
        t.correct += st.correct as u64;
        t.count += st.count as u64;
        t.grad_norm_sum += norm;
        t.steps += 1;
        t.train_seconds += t0.elapsed().as_secs_f64();
        obs.step(self.epoch, self.batch, loss);
        if let Some(k) = self.cfg.checkpoint_every {
            if self.step.is_multiple_of(k) && !self.period_done(batches) {
                self.checkpoint()?;
            }
        }
        Ok(())
    }

    /// Rows per forward/backward chunk of a step's gradient: the whole
    /// step (at least an evaluation batch) unless full-batch descent or
    /// gradient accumulation splits it (accumulation averages micro-batches
    /// of --batch-size, each in memory on its own).
    fn gradient_chunk(&self) -> usize {
        if self.cfg.batch_size == 0 {
            self.cfg.eval_batch
        } else if self.cfg.accumulate > 1 {
            self.batch_size()
        } else {
            self.step_rows().max(self.cfg.eval_batch)
        }
    }

    fn train_steps(&mut self, obs: &mut dyn Observer) -> Result<(), TrainError> {
        #[cfg(feature = "mpi")]
        if self.replica.is_some() {
            return self.train_steps_parallel(obs);
        }
        let n = self.info.train;
        let bs = self.step_rows();
        let batches = n.div_ceil(bs);
        let chunk = self.gradient_chunk();
        while let Some((e, b)) = self.next_batch(batches) {
            self.load_order(e);
            let t0 = Instant::now();
            let rows = &self.order[b * bs..((b + 1) * bs).min(n)];
            let st = self.batcher.gradient(
                &mut self.net,
                &self.data.train,
                rows,
                chunk,
                &mut self.rng,
                &mut self.acc,
            )?;
            let loss = st.mean_loss();
            if !loss.is_finite() {
                return Err(self.diverge(format!("the training loss is {loss}")));
            }
            // The whole gradient is known finite before any parameter changes.
            let norm = match &mut self.lazy {
                Some(lazy) => lazy.gather(&mut self.net).ok_or_else(|| {
                    TrainError::Invalid(
                        "--sparse-updates lazy: this batch's gradient is not row-sparse".into(),
                    )
                })?,
                None => grad_norm(&[self.net.grads()], Norm::P(2.0)),
            };
            if !norm.is_finite() {
                return Err(self.diverge(format!("the gradient norm is {norm}")));
            }
            let Method::Step(opt) = &mut self.method else {
                unreachable!("train_steps runs step-wise methods")
            };
            if let Some(lazy) = &mut self.lazy {
                lazy.step(
                    &mut self.net,
                    &mut **opt,
                    self.cfg.clip_norm,
                    self.cfg.clip_value,
                )?;
            } else if self.cfg.clip_norm.is_some() || self.cfg.clip_value.is_some() {
                let (params, grads) = self.net.params_and_grads_mut();
                if let Some(max) = self.cfg.clip_norm {
                    clip_grad_norm_flat(grads, max, Norm::P(2.0), false)?;
                }
                if let Some(v) = self.cfg.clip_value {
                    clip_grad_value(&mut [&mut *grads], v)?;
                }
                opt.step_flat(params, grads)?;
            } else {
                // Read-only: on sparse data the network then clears only the
                // rows the next batch touches, not the whole first weight.
                let (params, grads) = self.net.params_and_grads();
                opt.step_flat(params, grads)?;
            }
            self.after_step(batches, loss, &st, norm, t0, obs)?;
        }
        Ok(())
    }
}
