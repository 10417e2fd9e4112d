//! A comparison's runs as independent tasks: who runs them (several at a
//! time in one process, or spread over an MPI job's ranks), and how each one
//! starts, or continues from its checkpoint after a kill.

use super::{finish, slug, CompareResult, CompareSettings, RunResult};
use crate::error::{write_file, LabError};
use crate::tune::{tune_lr, TuneResult};
use downhill_data::DataSplit;
use downhill_train::{checkpoint, Observer, TrainConfig, TrainError, Trainer};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Who runs a comparison's tasks. A task's output is text (JSON), so that
/// processes can pass it to one another; each task is run by exactly one
/// process, and its bits do not depend on which.
pub trait Executor: Sync {
    /// Whether this process writes the comparison's own files (the
    /// settings, the summary, the pictures).
    fn writes(&self) -> bool;
    /// Waits until every process gets here (nothing to wait for in one).
    fn barrier(&self);
    /// Threads a run gets when the settings name none.
    fn threads_per_run(&self) -> usize;
    /// Runs `work(i)` for every `i` in `0..n` and returns every output in
    /// order, on every process. The first failing task (lowest `i`) ends
    /// the call with its error.
    fn run_all(
        &self,
        n: usize,
        work: &(dyn Fn(usize) -> Result<String, LabError> + Sync),
    ) -> Result<Vec<String>, LabError>;
}

/// Runs the tasks in this process, `jobs` at a time, each on its own
/// threads (the cores divided among the jobs).
#[derive(Clone, Copy, Debug)]
pub struct Local {
    /// Runs at a time (at least 1).
    pub jobs: usize,
}

impl Executor for Local {
    fn writes(&self) -> bool {
        true
    }

    fn barrier(&self) {}

    fn threads_per_run(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / self.jobs.max(1)).max(1)
    }

    fn run_all(
        &self,
        n: usize,
        work: &(dyn Fn(usize) -> Result<String, LabError> + Sync),
    ) -> Result<Vec<String>, LabError> {
        run_indices(&(0..n).collect::<Vec<_>>(), self.jobs, work)
    }
}

/// Runs `work` on each of `indices`, `jobs` at a time; returns the outputs
/// in the order of `indices`, or the error of the first failing one in that
/// order. After a failure no new task starts.
pub fn run_indices(
    indices: &[usize],
    jobs: usize,
    work: &(dyn Fn(usize) -> Result<String, LabError> + Sync),
) -> Result<Vec<String>, LabError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<String, LabError>>>> =
        indices.iter().map(|_| Mutex::new(None)).collect();
    let worker = || loop {
        if failed.load(Ordering::SeqCst) {
            break;
        }
        let k = next.fetch_add(1, Ordering::SeqCst);
        let Some(&i) = indices.get(k) else { break };
        let r = work(i);
        if r.is_err() {
            failed.store(true, Ordering::SeqCst);
        }
        *slots[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    };
    let jobs = jobs.clamp(1, indices.len().max(1));
    if jobs == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(worker);
            }
        });
    }
    // Tasks start in order, so the ones never started come after a failed
    // one: the first error in order is met before any of them.
    let mut out = Vec::with_capacity(indices.len());
    for (k, slot) in slots.into_iter().enumerate() {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(r) => out.push(r?),
            None => {
                return Err(LabError::Invalid(format!(
                    "task {} did not run",
                    indices[k]
                )))
            }
        }
    }
    Ok(out)
}

/// Tunes, trains every (optimiser, seed) task and, on the writing process,
/// ranks and writes the outputs.
pub(super) fn run_comparison(
    settings: &CompareSettings,
    observer: &(dyn Fn(&str) -> Box<dyn Observer> + Sync),
    exec: &dyn Executor,
) -> Result<Option<CompareResult>, LabError> {
    let base = TrainConfig {
        threads: settings.base.threads.or(Some(exec.threads_per_run())),
        ..settings.base.clone()
    };
    let data = downhill_data::load(
        &base.data,
        &base
            .load_options()
            .map_err(|e| LabError::Invalid(e.to_string()))?,
    )?;
    let seeds = settings.seed_list();
    let specs: Vec<(String, Option<TuneResult>)> = match &settings.tune {
        None => settings
            .optimizers
            .iter()
            .map(|l| (l.clone(), None))
            .collect(),
        Some(t) => {
            let tuning = TrainConfig {
                seed: seeds[0],
                ..base.clone()
            };
            let work = |i: usize| -> Result<String, LabError> {
                let label = &settings.optimizers[i];
                let path = settings
                    .out
                    .join("tuning")
                    .join(format!("{}.json", slug(i, label)));
                // A kill leaves finished tunings behind: keep them.
                if let Ok(text) = std::fs::read_to_string(&path) {
                    return Ok(text);
                }
                let mut obs = observer(&format!("tune {label}"));
                let r = tune_lr(&tuning, label, &data, t, &mut *obs)?;
                let text = serde_json::to_string(&r).expect("tuning serialises");
                std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(
                    |source| LabError::Io {
                        path: path.clone(),
                        source,
                    },
                )?;
                write_file(&path, text.as_bytes())?;
                Ok(text)
            };
            exec.run_all(settings.optimizers.len(), &work)?
                .into_iter()
                .map(|text| {
                    let r: TuneResult = parse(&text)?;
                    Ok((r.best_spec.clone(), Some(r)))
                })
                .collect::<Result<_, LabError>>()?
        }
    };
    let work = |i: usize| -> Result<String, LabError> {
        let (o, seed) = (i / seeds.len(), seeds[i % seeds.len()]);
        let label = &settings.optimizers[o];
        let (spec, tuning) = &specs[o];
        let shown = if seeds.len() > 1 {
            format!("{label} [seed {seed}]")
        } else {
            label.clone()
        };
        let cfg = TrainConfig {
            optimizer: spec.clone(),
            seed,
            ..base.clone()
        };
        let dir = settings.run_dir(o, seed);
        let mut obs = observer(&shown);
        let run = train_or_resume(cfg, &data, &dir, &mut *obs)?;
        let r = RunResult {
            label: label.clone(),
            spec: spec.clone(),
            seed,
            dir,
            seconds_per_epoch: run.summary.seconds / run.summary.epochs.max(1) as f64,
            history: run.history,
            steps: run.steps,
            summary: run.summary,
            tuning: tuning.clone(),
            reached: None,
        };
        Ok(serde_json::to_string(&r).expect("a run serialises"))
    };
    let outputs = exec.run_all(settings.optimizers.len() * seeds.len(), &work)?;
    if !exec.writes() {
        return Ok(None);
    }
    let runs = outputs
        .iter()
        .map(|text| parse::<RunResult>(text))
        .collect::<Result<Vec<_>, _>>()?;
    finish(settings, runs, data.train.is_text()).map(Some)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, LabError> {
    serde_json::from_str(text)
        .map_err(|e| LabError::Invalid(format!("a task's result does not parse: {e}")))
}

/// What one finished run left.
struct Finished {
    history: Vec<downhill_train::EpochRecord>,
    steps: Vec<(u64, f64)>,
    summary: downhill_train::Summary,
}

/// Trains one run in `dir`, or continues it from its latest checkpoint
/// (a finished run continues to its end at once). A folder without a
/// checkpoint holds nothing worth keeping (a run killed in its first
/// epoch) and starts again. A divergence is a result, not an error.
fn train_or_resume(
    cfg: TrainConfig,
    data: &DataSplit,
    dir: &Path,
    obs: &mut dyn Observer,
) -> Result<Finished, LabError> {
    let mut t = if checkpoint::has_checkpoint(dir) {
        let (t, warnings) = Trainer::resume(dir.to_path_buf(), None)?;
        for w in warnings {
            obs.message(&w);
        }
        t
    } else {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| LabError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Trainer::with_data(cfg, data.clone(), Some(dir.to_path_buf()))?
    };
    let summary = match t.run(obs) {
        Ok(s) => s,
        Err(TrainError::Diverged(d)) => {
            obs.message(&format!("{d}"));
            t.summary()
        }
        Err(e) => return Err(e.into()),
    };
    let path = dir.join("steps.csv");
    let text = std::fs::read_to_string(&path).map_err(|source| LabError::Io { path, source })?;
    Ok(Finished {
        history: t.history().to_vec(),
        steps: downhill_train::metrics::parse_steps_csv(&text),
        summary,
    })
}
