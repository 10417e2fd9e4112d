//! Watching a run: an [`Observer`] receives every step and epoch. [`Console`]
//! draws a progress bar on a terminal and prints plain lines otherwise.

use crate::metrics::{DataInfo, EpochRecord, Summary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// What a run is about to do.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// Optimiser spec.
    pub optimizer: String,
    /// Model spec.
    pub model: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// The data.
    pub data: DataInfo,
    /// Epochs to reach; in a run by steps, evaluation periods.
    pub epochs: usize,
    /// Steps per epoch.
    pub batches: usize,
    /// Epochs already done (when resuming); in a run by steps, evaluation
    /// periods.
    pub start_epoch: usize,
    /// A run by steps: the steps to take (`None` for a run by epochs).
    pub steps: Option<u64>,
    /// A run by steps: the steps between evaluations.
    pub eval_every: Option<u64>,
    /// Steps taken up to the end of the last epoch (or evaluation period)
    /// done, when resuming; 0 otherwise.
    pub start_step: u64,
    /// Dense or lazy row-sparse steps, and why.
    pub updates: crate::sparse::UpdateChoice,
    /// For an optimiser composed by role (a partition, or `muon` alone):
    /// one line per parameter saying which rule updates it.
    pub assignment: Vec<String>,
}

/// Receives a run's progress. Every method has a do-nothing default.
pub trait Observer: Send {
    /// Before the first step.
    fn start(&mut self, _run: &RunInfo) {}
    /// After each step, with the batch's mean loss: `epoch` epochs (or, in
    /// a run by steps, evaluation periods) are done, and `batch` steps of the
    /// current one.
    fn step(&mut self, _epoch: usize, _batch: usize, _loss: f64) {}
    /// After each epoch (or evaluation period), with the number the run
    /// goes to.
    fn epoch(&mut self, _record: &EpochRecord, _epochs: usize) {}
    /// Something the user should know (a back-off, a skipped checkpoint).
    fn message(&mut self, _text: &str) {}
    /// After the last epoch.
    fn finish(&mut self, _summary: &Summary) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {}

/// Progress on standard error: a bar with loss, throughput and ETA when it is
/// a terminal, one line per epoch otherwise.
#[derive(Debug)]
pub struct Console {
    bar: Option<ProgressBar>,
    terminal: bool,
    prefix: String,
    batches: usize,
    epochs: usize,
    epoch_start: Instant,
    samples_per_batch: usize,
    /// A run by steps: the steps to take.
    steps: Option<u64>,
    /// A run by steps: the global step at the start of the current period.
    period_start: u64,
}

impl Console {
    /// A console observer; `prefix` labels lines (e.g. the optimiser when
    /// several run one after another).
    pub fn new(prefix: &str) -> Self {
        Console {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("[{prefix}] ")
            },
            batches: 0,
            epochs: 0,
            epoch_start: Instant::now(),
            samples_per_batch: 1,
            steps: None,
            period_start: 0,
        }
    }
}

/// Formats a rate like `12.3k/s`.
pub fn human_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k/s", x / 1e3)
    } else {
        format!("{x:.0}/s")
    }
}

/// One line describing an epoch.
pub fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    record_line(format!("epoch {}/{epochs}", r.epoch), r)
}

/// One line describing an evaluation period of a run by `steps` steps:
/// `step 300/1000 (2.50 epochs)  train loss ...`.
pub fn step_line(r: &EpochRecord, steps: u64) -> String {
    let epochs = r
        .data_epochs
        .map_or(String::new(), |e| format!(" ({e:.2} epochs)"));
    record_line(format!("step {}/{steps}{epochs}", r.step), r)
}

fn record_line(head: String, r: &EpochRecord) -> String {
    let mut s = format!(
        "{head}  train loss {:.4}  acc {:.2}%",
        r.train_loss,
        100.0 * r.train_accuracy
    );
    if let (Some(l), Some(a)) = (r.valid_loss, r.valid_accuracy) {
        s += &format!("  valid loss {l:.4}  acc {:.2}%", 100.0 * a);
    }
    if let (Some(l), Some(a)) = (r.test_loss, r.test_accuracy) {
        s += &format!("  test loss {l:.4}  acc {:.2}%", 100.0 * a);
    }
    s += &format!(
        "  lr {:.3e}  {:.1}s  {}",
        r.lr,
        r.seconds,
        human_rate(r.samples_per_sec).replace("/s", " samples/s")
    );
    s
}

impl Observer for Console {
    fn start(&mut self, run: &RunInfo) {
        self.batches = run.batches;
        self.epochs = run.epochs;
        self.samples_per_batch = (run.data.train / run.batches.max(1)).max(1);
        self.steps = run.steps;
        self.period_start = run.start_step;
        let budget = match (run.steps, run.eval_every) {
            (Some(n), Some(k)) => {
                format!("{n} steps ({} per epoch), evaluated every {k}", run.batches)
            }
            _ => format!("{} epochs of {} steps", run.epochs, run.batches),
        };
        eprintln!(
            "{}{} on {} ({} train, {} test, {} features, {} classes): {} with {} parameters, {budget}",
            self.prefix,
            run.optimizer,
            run.data.spec,
            run.data.train,
            run.data.test,
            run.data.dim,
            run.data.classes,
            run.model,
            run.parameters,
        );
        if run.data.sparse || run.updates.lazy {
            eprintln!("{}sparse updates: {}", self.prefix, run.updates);
        }
        for line in &run.assignment {
            eprintln!("{}  {line}", self.prefix);
        }
        if run.steps.is_some() && run.start_step > 0 {
            eprintln!("{}resuming after step {}", self.prefix, run.start_step);
        } else if run.start_epoch > 0 {
            eprintln!("{}resuming after epoch {}", self.prefix, run.start_epoch);
        }
    }

    fn step(&mut self, epoch: usize, batch: usize, loss: f64) {
        if !self.terminal {
            return;
        }
        // By steps: one bar over the run's steps, at the global step.
        let (len, pos) = match self.steps {
            Some(n) => (n, self.period_start + batch as u64),
            None => (self.batches as u64, batch as u64),
        };
        let bar = self.bar.get_or_insert_with(|| {
            self.epoch_start = Instant::now();
            let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{prefix}{bar:30} {pos}/{len} {msg} ETA {eta}")
                    .expect("a valid template"),
            );
            b.set_prefix(match self.steps {
                Some(_) => format!("{}step ", self.prefix),
                None => format!("{}epoch {}/{} ", self.prefix, epoch + 1, self.epochs),
            });
            b
        });
        bar.set_position(pos);
        if batch.is_multiple_of(8) || batch == self.batches {
            let rate = batch as f64 * self.samples_per_batch as f64
                / self.epoch_start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("loss {loss:.4} {}", human_rate(rate)));
        }
    }

    fn epoch(&mut self, record: &EpochRecord, epochs: usize) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let line = match self.steps {
            Some(n) => step_line(record, n),
            None => epoch_line(record, epochs),
        };
        self.period_start = record.step;
        eprintln!("{}{line}", self.prefix);
    }

    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(b) => b.println(format!("{}{text}", self.prefix)),
            None => eprintln!("{}{text}", self.prefix),
        }
    }

    fn finish(&mut self, summary: &Summary) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some((acc, epoch)) = summary.best_test_accuracy {
            let when = match self.steps {
                Some(_) => format!("evaluation {epoch}"),
                None => format!("epoch {epoch}"),
            };
            eprintln!(
                "{}best test accuracy {:.2}% ({when}); {:.1}s in all",
                self.prefix,
                100.0 * acc,
                summary.seconds
            );
        }
    }
}
