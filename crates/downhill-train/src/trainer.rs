//! The training loop.

use crate::batch::Batcher;
use crate::checkpoint::{self, CheckpointError, TrainerState, CHECKPOINT_FORMAT};
use crate::config::{OnDivergence, ScheduleUnit, TrainConfig, MAX_BACKOFFS};
use crate::method::Method;
use crate::metrics::{
    best_of, parse_steps_csv, steps_csv_rows, AverageFigures, DataInfo, Divergence, EpochRecord,
    EpochTotals, Summary, STEPS_CSV_HEADER,
};
use crate::progress::{Observer, RunInfo};
use crate::sparse::{LazyStep, UpdateChoice};
use downhill::average::{Averaging, WeightAverage};
use downhill::clip::{clip_grad_norm_flat, clip_grad_value, grad_norm, Norm};
use downhill::schedule::Scheduler;
use downhill::state::{write_atomic, SavedState};
use downhill::Rng;
use downhill_data::{DataSplit, Dataset, Features};
use downhill_nn::{InputShape, ModelSpec, Network};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A bad setting.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] downhill_data::DataError),
    /// The model could not be built or run.
    #[error(transparent)]
    Model(#[from] downhill_nn::NnError),
    /// The optimiser or schedule refused.
    #[error(transparent)]
    Optim(#[from] downhill::Error),
    /// A checkpoint problem.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Writing outputs failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The loss or gradient became non-finite.
    #[error("{0}; the last good checkpoint is kept")]
    Diverged(Divergence),
    /// Something about the request that cannot work (one line: what it
    /// quotes has its control characters escaped).
    #[error("{}", downhill::error::printable(.0))]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

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

/// The input shape a data set presents to a network.
pub fn input_shape(d: &Dataset) -> InputShape {
    match d.image() {
        Some(s) => InputShape::Image {
            channels: s.channels,
            height: s.height,
            width: s.width,
        },
        None => InputShape::Flat(d.dim()),
    }
}

/// The network a run's settings describe for its training data, initialised
/// from the run's seed (`l2`, when set, overrides the model spec's).
pub fn build_network(cfg: &TrainConfig, train: &Dataset) -> Result<Network<f32>, TrainError> {
    let mut spec: ModelSpec = cfg.model.parse()?;
    if cfg.l2 > 0.0 {
        spec.l2 = cfg.l2;
    }
    let shape = input_shape(train);
    check_model_fits(&spec, shape, train.classes())?;
    Ok(Network::<f32>::new(
        &spec,
        shape,
        train.classes(),
        cfg.seed,
    )?)
}

/// Refuses, with a message, a model whose parameters (with their gradient and
/// two optimiser buffers) this machine cannot allocate: a LIBSVM file with a
/// feature index of 4·10⁹, or `mlp:100000000000`, must be an error, not an
/// aborted process.
fn check_model_fits(spec: &ModelSpec, input: InputShape, classes: usize) -> Result<(), TrainError> {
    let params =
        Some(Network::<f32>::parameter_count(spec, input, classes)?).filter(|&p| p < usize::MAX);
    let bytes = params.and_then(|p| p.checked_mul(16));
    if bytes.is_some_and(downhill::can_allocate) {
        return Ok(());
    }
    let size = bytes.map_or("beyond the address space".to_string(), |b| {
        format!(
            "{:.1} GiB with gradient and optimizer state",
            b as f64 / (1u64 << 30) as f64
        )
    });
    Err(TrainError::Invalid(format!(
        "--model: `{spec}` on {} input values needs {} parameters ({size}), more than this machine can allocate",
        input.len(),
        params.map_or("too many".to_string(), |p| p.to_string()),
    )))
}

/// The order of the training examples in epoch `epoch`: a permutation that
/// depends only on the seed and the epoch, so a run resumed mid-epoch visits
/// the rest of the epoch in the same order.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed ^ 0x5348_5546_464c_4521)
        .fork(epoch as u64)
        .shuffle(&mut order);
    order
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

    /// Like [`Trainer::new`] with data already in memory (so that several
    /// optimisers can be compared on the same data without loading it again).
    pub fn with_data(
        cfg: TrainConfig,
        data: DataSplit,
        out: Option<PathBuf>,
    ) -> Result<Self, TrainError> {
        cfg.validate_settings()?;
        refuse_existing_run(out.as_deref())?;
        let t = Self::build(cfg, data, out)?;
        if let Some(out) = &t.out {
            std::fs::create_dir_all(out).map_err(io_err(out))?;
            t.write_file("config.toml", t.cfg.to_toml().as_bytes())?;
            let init = checkpoint::model_bytes(t.net.params(), t.net.tensors(), &t.cfg.model)
                .map_err(TrainError::Invalid)?;
            t.write_file("init.safetensors", &init)?;
            // Empty, not absent: a run killed before its first checkpoint
            // may have left these behind.
            t.write_file("metrics.jsonl", b"")?;
            t.write_file("steps.csv", b"")?;
        }
        Ok(t)
    }

    fn build(cfg: TrainConfig, data: DataSplit, out: Option<PathBuf>) -> Result<Self, TrainError> {
        let threads = cfg
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
        let mut method = Method::new(&ospec, &net.optimizer_params())?;
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
        let lazy = updates
            .lazy
            .then(|| LazyStep::new(&net, max_batch_features(&cfg, &data.train)));
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
        })
    }

    /// Continues the run in `out` from its newest valid checkpoint, with its
    /// saved settings; `epochs` may raise the number of epochs. The result is
    /// bit-identical to a run that was never interrupted. Messages about
    /// skipped (corrupt) checkpoints are returned for the user.
    pub fn resume(out: PathBuf, epochs: Option<usize>) -> Result<(Self, Vec<String>), TrainError> {
        let (_, state, _) = checkpoint::latest_trainer_state(&out)?;
        let mut cfg = state.config.clone();
        if let Some(e) = epochs {
            cfg.epochs = e;
        }
        cfg.validate()?;
        let data = downhill_data::load(&cfg.data, &cfg.load_options()?)?;
        let mut t = Self::build(cfg, data, Some(out.clone()))?;
        let (dir, ckpt, warnings) = checkpoint::latest(&out, t.net.tensors())?;
        if ckpt.trainer.data != t.info {
            return Err(TrainError::Invalid(format!(
                "{}: the data differs from the run's (saved {:?}, now {:?})",
                dir.display(),
                ckpt.trainer.data,
                t.info
            )));
        }
        t.restore(&ckpt.params, &ckpt.optimizer, &ckpt.trainer)?;
        t.restore_averages(&ckpt.averages, &ckpt.trainer)?;
        let mut warnings = warnings;
        warnings.extend(t.rewrite_metrics()?);
        Ok((t, warnings))
    }

    /// The weight averages of a checkpoint, for the averages this run keeps.
    fn restore_averages(
        &mut self,
        saved: &std::collections::BTreeMap<String, Vec<f32>>,
        s: &TrainerState,
    ) -> Result<(), TrainError> {
        for (name, avg) in [("ema", &mut self.ema), ("swa", &mut self.swa)] {
            let Some(avg) = avg else { continue };
            let count = s.average_updates.get(name).copied().unwrap_or(0);
            *avg = match saved.get(name) {
                Some(w) => WeightAverage::restore(avg.kind(), w.clone(), count)?,
                None if count == 0 => WeightAverage::new(avg.kind(), avg.weights().len())?,
                None => {
                    return Err(TrainError::Invalid(format!(
                        "checkpoint: {count} {name} updates but no {name}.safetensors"
                    )))
                }
            };
        }
        Ok(())
    }

    fn restore(
        &mut self,
        params: &[f32],
        optimizer: &SavedState,
        s: &TrainerState,
    ) -> Result<(), TrainError> {
        self.net.params_mut().copy_from_slice(params);
        let total = self.net.params().len();
        self.method.load_state(optimizer, total)?;
        self.sched = s.scheduler.clone();
        self.rng = Rng::from_state(s.rng)
            .ok_or_else(|| TrainError::Invalid("checkpoint: invalid RNG state".into()))?;
        self.epoch = s.epoch;
        self.batch = s.batch;
        self.step = s.step;
        self.totals = s.totals.clone();
        self.history = s.history.clone();
        // (Checkpoints of older builds hold every step; the file has those
        // up to the last epoch's end.)
        let done = s.history.last().map_or(0, |r| r.step);
        self.epoch_steps = s
            .step_losses
            .iter()
            .filter(|(step, _)| *step > done)
            .copied()
            .collect();
        self.backoffs = s.backoffs;
        self.elapsed = s.elapsed_seconds;
        Ok(())
    }

    fn state(&self) -> TrainerState {
        TrainerState {
            format: CHECKPOINT_FORMAT.into(),
            config: self.cfg.clone(),
            data: self.info.clone(),
            epoch: self.epoch,
            batch: self.batch,
            step: self.step,
            rng: self.rng.state(),
            scheduler: self.sched.clone(),
            totals: self.totals.clone(),
            history: self.history.clone(),
            step_losses: self.epoch_steps.clone(),
            backoffs: self.backoffs,
            elapsed_seconds: self.elapsed,
            average_updates: [("ema", &self.ema), ("swa", &self.swa)]
                .into_iter()
                .filter_map(|(n, a)| a.as_ref().map(|a| (n.to_string(), a.count())))
                .collect(),
        }
    }

    fn optimizer_state(&self) -> Result<SavedState, TrainError> {
        Ok(self.method.save_state(self.net.params().len())?)
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
    pub fn assignment(&mut self) -> Vec<String> {
        let params = self.net.optimizer_params();
        let names: Vec<String> = self.net.tensors().iter().map(|t| t.name.clone()).collect();
        let Some(opt) = self.method.optimizer() else {
            return Vec::new();
        };
        if opt.name() != "partition" {
            return Vec::new();
        }
        params
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(i, (p, name))| match opt.assignment(i) {
                Some((rule, group)) => format!(
                    "{name} {:?} {}: {rule} (lr {})",
                    p.shape,
                    p.role,
                    opt.lr(group)
                ),
                None => format!("{name} {:?} {}: not trained", p.shape, p.role),
            })
            .collect()
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

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        if let Some(out) = &self.out {
            let path = out.join(name);
            write_atomic(&path, bytes).map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Makes `metrics.jsonl` and `steps.csv` say what the restored state
    /// says: the completed epochs, and the steps up to the last one's end
    /// (the files may hold rows of an epoch that a kill or a back-off undid).
    /// Returns a warning when `steps.csv` lacks steps it should have.
    fn rewrite_metrics(&mut self) -> Result<Option<String>, TrainError> {
        let Some(out) = &self.out else {
            return Ok(None);
        };
        let mut text = String::new();
        for r in &self.history {
            text += &serde_json::to_string(r).expect("records serialise");
            text.push('\n');
        }
        self.write_file("metrics.jsonl", text.as_bytes())?;
        let path = out.join("steps.csv");
        let done = self.history.last().map_or(0, |r| r.step);
        let rows = match std::fs::read_to_string(&path) {
            Ok(s) => parse_steps_csv(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let kept: Vec<(u64, f64)> = rows.into_iter().filter(|(s, _)| *s <= done).collect();
        let warning = (done > 0 && kept.last().map(|r| r.0) != Some(done)).then(|| {
            format!(
                "{}: the losses of the steps up to {done} are missing or incomplete; the file continues from here",
                path.display()
            )
        });
        let csv = String::from(STEPS_CSV_HEADER) + &steps_csv_rows(&kept);
        self.write_file("steps.csv", csv.as_bytes())?;
        Ok(warning)
    }

    /// Appends the current epoch's step losses to `steps.csv`.
    fn flush_epoch_steps(&mut self) -> Result<(), TrainError> {
        if let Some(out) = &self.out {
            let csv = out.join("steps.csv");
            let fresh = std::fs::metadata(&csv).map_or(true, |m| m.len() == 0);
            let header = if fresh { STEPS_CSV_HEADER } else { "" };
            let text = String::from(header) + &steps_csv_rows(&self.epoch_steps);
            append(&csv, text.as_bytes()).map_err(io_err(&csv))?;
        }
        self.epoch_steps.clear();
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), TrainError> {
        if let Some(out) = &self.out {
            let averages: Vec<(&str, &[f32])> = [("ema", &self.ema), ("swa", &self.swa)]
                .into_iter()
                .filter_map(|(n, a)| a.as_ref().map(|a| (n, a.weights())))
                .collect();
            checkpoint::write(
                out,
                self.net.params(),
                self.at_eval_point.then_some(self.eval_buf.as_slice()),
                &averages,
                self.net.tensors(),
                &self.optimizer_state()?,
                &self.state(),
                self.cfg.keep_checkpoints,
            )?;
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<(), TrainError> {
        if self.cfg.on_divergence == OnDivergence::Backoff {
            self.last_good = Some(Snapshot {
                params: self.net.params().to_vec(),
                optimizer: self.optimizer_state()?,
                state: self.state(),
                ema: self.ema.clone(),
                swa: self.swa.clone(),
            });
        }
        Ok(())
    }

    /// Runs until `epochs` epochs are complete, reporting to `obs`; writes
    /// `metrics.jsonl`, `steps.csv`, checkpoints and `summary.json` when the
    /// run has an output folder.
    pub fn run(&mut self, obs: &mut dyn Observer) -> Result<Summary, TrainError> {
        obs.start(&RunInfo {
            optimizer: self.cfg.optimizer.clone(),
            model: self.cfg.model.clone(),
            parameters: self.net.params().len(),
            data: self.info.clone(),
            epochs: self.cfg.epochs,
            batches: self.batches_per_epoch(),
            start_epoch: self.epoch,
            updates: self.updates.clone(),
            assignment: self.assignment(),
        });
        self.snapshot()?;
        while self.epoch < self.cfg.epochs {
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
                            obs.message(&format!(
                                "{d}; restoring the end of epoch {} and halving the learning rate",
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
        let record = EpochRecord {
            epoch: self.epoch + 1,
            step: self.step,
            train_loss: self.totals.loss(),
            train_accuracy: self.totals.accuracy(),
            valid_loss,
            valid_accuracy,
            test_loss,
            test_accuracy,
            lr: self.method.lr(),
            seconds: train_seconds + eval_seconds,
            samples_per_sec: self.totals.count as f64 / train_seconds.max(1e-9),
            grad_norm: self.totals.grad_norm_sum / self.totals.steps.max(1) as f64,
            d: self.adapted_d(),
            ema: ema_figures,
            swa: swa_figures,
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
        obs.epoch(&record, self.cfg.epochs);
        Ok(())
    }

    fn train_steps(&mut self, obs: &mut dyn Observer) -> Result<(), TrainError> {
        let n = self.info.train;
        let bs = self.step_rows();
        let batches = n.div_ceil(bs);
        let order = epoch_order(self.cfg.seed, self.epoch, n);
        let chunk = if self.cfg.batch_size == 0 {
            self.cfg.eval_batch
        } else if self.cfg.accumulate > 1 {
            // Gradient accumulation: the step's gradient is the average over
            // micro-batches of --batch-size, each in memory on its own.
            self.batch_size()
        } else {
            bs.max(self.cfg.eval_batch)
        };
        for b in self.batch..batches {
            let t0 = Instant::now();
            let rows = &order[b * bs..((b + 1) * bs).min(n)];
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
            if let (Some(s), ScheduleUnit::Step) = (&mut self.sched, self.cfg.schedule_unit) {
                s.step(&mut **opt, Some(loss))?;
            }
            if let Some(ema) = &mut self.ema {
                ema.update(self.net.params())?;
            }
            self.step += 1;
            self.batch = b + 1;
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
                if self.step.is_multiple_of(k) && self.batch < batches {
                    self.checkpoint()?;
                }
            }
        }
        Ok(())
    }

    fn train_lbfgs(&mut self, obs: &mut dyn Observer) -> Result<(), TrainError> {
        let t0 = Instant::now();
        let n = self.info.train;
        let rows: Vec<usize> = (0..n).collect();
        let chunk = self.cfg.eval_batch;
        let Method::Lbfgs(lbfgs) = &mut self.method else {
            unreachable!("train_lbfgs runs lbfgs")
        };
        let (net, batcher, data, rng, acc) = (
            &mut self.net,
            &mut self.batcher,
            &self.data.train,
            &mut self.rng,
            &mut self.acc,
        );
        let mut x = net.params().to_vec();
        let mut failure = None;
        let report = lbfgs.step(&mut x, |xt, g| {
            net.params_mut().copy_from_slice(xt);
            match batcher.gradient(net, data, &rows, chunk, rng, acc) {
                Ok(st) => {
                    g.copy_from_slice(net.grads());
                    st.mean_loss()
                }
                Err(e) => {
                    failure = Some(e);
                    f64::NAN
                }
            }
        });
        let report = self.full_batch_outcome(report, failure)?;
        self.net.params_mut().copy_from_slice(&x);
        self.finish_full_batch(t0, &report, obs)
    }

    /// Newton's method on the full-batch loss with the exact Hessian.
    fn train_newton(&mut self, obs: &mut dyn Observer) -> Result<(), TrainError> {
        let t0 = Instant::now();
        let rows: Vec<usize> = (0..self.info.train).collect();
        let chunk = self.cfg.eval_batch;
        let Method::Newton { config, iterations } = &mut self.method else {
            unreachable!("train_newton runs newton")
        };
        let (net, batcher, data, rng, acc) = (
            &mut self.net,
            &mut self.batcher,
            &self.data.train,
            &mut self.rng,
            &mut self.acc,
        );
        let mut x: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
        // Both closures need the network; the cell lends it to one at a time.
        let shared = std::cell::RefCell::new((net, batcher, rng, acc));
        let failure = std::cell::RefCell::new(None);
        let set = |net: &mut Network<f32>, x: &[f64]| {
            for (p, &v) in net.params_mut().iter_mut().zip(x) {
                *p = v as f32;
            }
        };
        let report = config.minimize_with(
            &mut x,
            |x, g| {
                let (net, batcher, rng, acc) = &mut *shared.borrow_mut();
                set(net, x);
                match batcher.gradient(net, data, &rows, chunk, rng, acc) {
                    Ok(st) => {
                        for (g, &v) in g.iter_mut().zip(net.grads()) {
                            *g = v as f64;
                        }
                        st.mean_loss()
                    }
                    Err(e) => {
                        *failure.borrow_mut() = Some(e);
                        f64::NAN
                    }
                }
            },
            |x, h| {
                let (net, batcher, _, _) = &mut *shared.borrow_mut();
                set(net, x);
                match crate::newton::logreg_hessian(net, data, chunk, batcher, h) {
                    Ok(()) => crate::newton::fix_softmax_null_space(
                        h,
                        data.dim(),
                        net.outputs(),
                        net.l2(),
                    ),
                    Err(e) => {
                        *failure.borrow_mut() = Some(e);
                        h.fill(f64::NAN);
                    }
                }
            },
        );
        let failure = failure.into_inner();
        if let (Ok(r), None) = (&report, &failure) {
            *iterations += r.iterations as u64;
        }
        let report = self.full_batch_outcome(report, failure)?;
        for (p, &v) in self.net.params_mut().iter_mut().zip(&x) {
            *p = v as f32;
        }
        self.finish_full_batch(t0, &report, obs)
    }

    /// The report of a full-batch method, or why it failed: an error while
    /// computing the loss, or a non-finite objective (a divergence).
    fn full_batch_outcome(
        &self,
        report: downhill::Result<downhill::Report>,
        failure: Option<downhill_nn::NnError>,
    ) -> Result<downhill::Report, TrainError> {
        if let Some(e) = failure {
            return Err(e.into());
        }
        match report {
            Ok(r) => Ok(r),
            Err(downhill::Error::Objective(what)) => Err(self.diverge(what)),
            Err(e) => Err(e.into()),
        }
    }

    /// Records an epoch of a full-batch method: the loss at the accepted
    /// point (recomputed, so the record matches the parameters), its
    /// iterations as steps, and what the method reported.
    fn finish_full_batch(
        &mut self,
        t0: Instant,
        report: &downhill::Report,
        obs: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        if report.reason == downhill::Termination::NonFinite {
            return Err(self.diverge(format!("the full-batch loss is {}", report.loss)));
        }
        let rows: Vec<usize> = (0..self.info.train).collect();
        let st = self.batcher.gradient(
            &mut self.net,
            &self.data.train,
            &rows,
            self.cfg.eval_batch,
            &mut self.rng,
            &mut self.acc,
        )?;
        let norm = grad_norm(&[self.net.grads()], Norm::P(2.0));
        // An epoch that took no step (converged already) adds no step loss:
        // `steps.csv` has one row per step number.
        if report.iterations > 0 {
            self.step += report.iterations as u64;
            self.epoch_steps.push((self.step, st.mean_loss()));
        }
        let t = &mut self.totals;
        t.loss_sum = st.loss_sum;
        t.penalty_sum = st.penalty * st.count as f64;
        t.correct = st.correct as u64;
        t.count = st.count as u64;
        t.grad_norm_sum = norm;
        t.steps = 1;
        t.train_seconds = t0.elapsed().as_secs_f64();
        obs.message(&format!(
            "{}: {} iterations, {} evaluations, {}",
            self.method.name(),
            report.iterations,
            report.evaluations,
            report.reason
        ));
        Ok(())
    }

    /// Held-out figures of a weight average (EMA or SWA), evaluated by
    /// swapping it in and the weights back; `None` without the average or
    /// before its first update.
    fn evaluate_average(&mut self, which: Which) -> Result<Option<AverageFigures>, TrainError> {
        let avg = match which {
            Which::Ema => &mut self.ema,
            Which::Swa => &mut self.swa,
        };
        let Some(avg) = avg.as_mut().filter(|a| a.count() > 0) else {
            return Ok(None);
        };
        self.net.swap_params(avg.weights_mut())?;
        let chunk = self.cfg.eval_batch;
        let (net, batcher) = (&mut self.net, &mut self.batcher);
        let mut eval = |d: &Option<Dataset>| -> Result<(Option<f64>, Option<f64>), TrainError> {
            match d {
                Some(d) if !d.is_empty() => {
                    let st = batcher.evaluate(net, d, chunk)?;
                    Ok((Some(st.mean_loss()), Some(st.accuracy())))
                }
                _ => Ok((None, None)),
            }
        };
        let figures = eval(&self.data.valid).and_then(|v| Ok((v, eval(&self.data.test)?)));
        self.net.swap_params(avg.weights_mut())?;
        let ((valid_loss, valid_accuracy), (test_loss, test_accuracy)) = figures?;
        Ok(Some(AverageFigures {
            updates: avg.count(),
            valid_loss,
            valid_accuracy,
            test_loss,
            test_accuracy,
        }))
    }

    /// Prodigy's estimate `d` (of the first group that has one), which users
    /// watch: the rate it adapted to is `d·lr`.
    fn adapted_d(&mut self) -> Option<f64> {
        let opt = self.method.optimizer()?;
        (0..opt.num_groups()).find_map(|g| {
            opt.group_state(g)
                .into_iter()
                .find(|(name, _)| *name == "d")
                .map(|(_, d)| d)
        })
    }

    /// Fills `eval_buf` with the optimiser's evaluation point when it has
    /// one other than the parameters; returns whether it did.
    fn eval_point(&mut self) -> Result<bool, TrainError> {
        let Method::Step(opt) = &self.method else {
            return Ok(false);
        };
        let params = self.net.params();
        self.eval_buf.resize(params.len(), 0.0);
        let mut ps: Vec<&[f32]> = Vec::with_capacity(self.net.tensors().len());
        let mut outs: Vec<&mut [f32]> = Vec::with_capacity(ps.capacity());
        let mut rest = self.eval_buf.as_mut_slice();
        for t in self.net.tensors() {
            ps.push(&params[t.range()]);
            let (head, tail) = rest.split_at_mut(t.len);
            outs.push(head);
            rest = tail;
        }
        Ok(opt.eval_params(&ps, &mut outs)?)
    }

    /// Evaluation-mode loss and accuracy of the current model on a data set.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<downhill_nn::BatchStats, TrainError> {
        let chunk = self.cfg.eval_batch;
        let (net, batcher) = (&mut self.net, &mut self.batcher);
        Ok(self.pool.install(|| batcher.evaluate(net, data, chunk))?)
    }
}

/// Refuses to start a new run in a folder that holds one (a finished run, or
/// a checkpoint to resume), so nothing of it is overwritten. A run killed
/// before its first checkpoint was whole has nothing to resume from: a new
/// run may start there.
fn refuse_existing_run(out: Option<&Path>) -> Result<(), TrainError> {
    if let Some(out) = out {
        if checkpoint::has_checkpoint(out) || out.join("summary.json").exists() {
            return Err(TrainError::Invalid(format!(
                "{} already holds a run; continue it with --resume {}, or choose another --out folder",
                out.display(),
                out.display()
            )));
        }
    }
    Ok(())
}

/// The most distinct features a training batch can hold: the batch size times
/// the most non-zeros of any example (a bound for the lazy step's buffer).
fn max_batch_features(cfg: &TrainConfig, train: &Dataset) -> usize {
    let Features::Sparse(csr) = train.features() else {
        return 0;
    };
    let widest = csr
        .indptr()
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0);
    let batch = match cfg.batch_size {
        0 => train.len(),
        b => b.saturating_mul(cfg.accumulate.max(1)).min(train.len()),
    };
    batch.saturating_mul(widest)
}

fn spec_has_dropout(spec: &ModelSpec) -> bool {
    spec.input_dropout > 0.0 || spec.dropout > 0.0
}

/// Appends `bytes` to `path` and flushes them to disk.
pub(crate) fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()
}
