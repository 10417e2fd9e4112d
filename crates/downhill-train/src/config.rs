//! A training run's settings: what `downhill train` takes as flags or as a
//! TOML file, with one definition of each name and default.

use downhill::optim::OptimizerSpec;
use downhill::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// When a learning-rate schedule advances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleUnit {
    /// After every epoch (torch's usual).
    #[default]
    Epoch,
    /// After every optimiser step.
    Step,
}

/// What to do when the loss or the gradient becomes NaN or infinite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDivergence {
    /// Stop with an error naming the step, the optimiser and the rate; the last
    /// good checkpoint stays.
    #[default]
    Stop,
    /// Go back to the last good state (the end of the previous epoch), halve
    /// the learning rate and continue; at most [`MAX_BACKOFFS`] times.
    Backoff,
}

/// How the first layer's weights are updated on sparse data (see
/// [`crate::sparse`] for what a lazy step means for each optimizer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SparseUpdates {
    /// Lazy when the data are sparse and the optimizer, model and penalties
    /// allow it; dense otherwise.
    #[default]
    Auto,
    /// Lazy row-sparse steps of `fc1.weight`: only the rows of features in
    /// the batch (and their optimizer state) move. An error when impossible.
    Lazy,
    /// Dense steps of every tensor.
    Dense,
}

impl std::str::FromStr for SparseUpdates {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "auto" => Ok(SparseUpdates::Auto),
            "lazy" => Ok(SparseUpdates::Lazy),
            "dense" => Ok(SparseUpdates::Dense),
            other => Err(ConfigError(format!(
                "--sparse-updates: `{other}` is invalid: expected auto, lazy or dense"
            ))),
        }
    }
}

/// The most halvings `OnDivergence::Backoff` makes before giving up.
pub const MAX_BACKOFFS: u32 = 4;

/// Every setting of a training run. Field names are the TOML keys; each is
/// also a `downhill train` flag (`batch_size` ↔ `--batch-size`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Data spec: `idx:DIR`, `cifar10:DIR`, `imdb:DIR`, `libsvm:TRAIN[,TEST]`,
    /// `text:FILE[,VALID_FILE]`, `builtin:NAME`.
    pub data: String,
    /// Model spec: `logreg`, `mlp:1000,1000`, `cnn`, `cnn:32,32,64`, ... (see downhill-nn).
    pub model: String,
    /// Optimizer spec: `adam`, `sgd(lr=0.05,momentum=0.9,nesterov=true)`, `lbfgs(...)`.
    pub optimizer: String,
    /// Learning-rate schedule spec, e.g. `cosineannealinglr(T_max=20)`; none by default.
    pub schedule: Option<String>,
    /// Whether the schedule advances per `epoch` or per `step`.
    pub schedule_unit: ScheduleUnit,
    /// Examples per step; 0 means the whole training set (batch gradient descent).
    pub batch_size: usize,
    /// Micro-batches per optimiser step (gradient accumulation): each step
    /// averages the gradients of `accumulate` batches of `batch_size`, so it
    /// equals one step on a batch `accumulate` times larger, with the memory
    /// of one micro-batch.
    pub accumulate: usize,
    /// Keep an exponential moving average of the weights with this decay
    /// (torch's `get_ema_multi_avg_fn`), updated after every step; the
    /// average is evaluated and saved beside the weights.
    pub ema: Option<f64>,
    /// Stochastic weight averaging: the mean of the weights at the end of
    /// every epoch from this one on (1 = the first), evaluated and saved
    /// beside the weights; pair it with a `swalr` schedule.
    pub swa_start: Option<usize>,
    /// Passes over the training data (ignored when `steps` is set).
    pub epochs: usize,
    /// Train by optimiser steps instead of epochs: exactly this many steps,
    /// the batches continuing across data epochs (step `s` takes batch
    /// `s mod B` of data epoch `s div B`, `B` batches per epoch, in the
    /// order epoch mode uses). With a full-batch method (lbfgs, newton) a
    /// step is one iteration. See [`TrainConfig::eval_period`].
    pub steps: Option<u64>,
    /// With `steps`: evaluate and write a line of `metrics.jsonl` every this
    /// many steps (and after the last). Default `ceil(steps / 10)`; a run
    /// records the value it used, so a resumed run keeps the same grid.
    pub eval_every: Option<u64>,
    /// Seed of initialisation, shuffling, dropout and the validation split.
    pub seed: u64,
    /// L2 penalty λ/2·‖W‖² on weights (not biases), inside the loss.
    pub l2: f64,
    /// Clip the gradient's global 2-norm to this (torch's clip_grad_norm_).
    pub clip_norm: Option<f64>,
    /// Clip each gradient element to ±this (torch's clip_grad_value_).
    pub clip_value: Option<f64>,
    /// Fraction of the training data held out for validation (0 < f < 1).
    pub valid_fraction: Option<f64>,
    /// Feature scaling: `auto` (images to `[0, 1]`), `none`, `scale01`, `standardise`.
    pub normalise: String,
    /// Use only the first N training examples.
    pub limit_train: Option<usize>,
    /// Use only the first N test examples.
    pub limit_test: Option<usize>,
    /// Bag-of-words vocabulary size for `imdb:` data.
    pub vocab_size: usize,
    /// Bag-of-words values for `imdb:` data: `binary`, `counts` or `tfidf`.
    pub bag_of_words: String,
    /// Write a checkpoint every N steps as well as at every epoch's end.
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept (older ones are deleted).
    pub keep_checkpoints: usize,
    /// Reaction to a NaN or infinite loss or gradient.
    pub on_divergence: OnDivergence,
    /// Updates of the first layer's weights on sparse data: `auto`, `lazy`
    /// (only the rows of features in the batch move) or `dense`.
    pub sparse_updates: SparseUpdates,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Examples per chunk when evaluating or computing a full-batch gradient.
    pub eval_batch: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: "builtin:fashion-mnist-small".into(),
            model: "logreg".into(),
            optimizer: "adam".into(),
            schedule: None,
            schedule_unit: ScheduleUnit::Epoch,
            batch_size: 128,
            accumulate: 1,
            ema: None,
            swa_start: None,
            epochs: 10,
            steps: None,
            eval_every: None,
            seed: 0,
            l2: 0.0,
            clip_norm: None,
            clip_value: None,
            valid_fraction: None,
            normalise: "auto".into(),
            limit_train: None,
            limit_test: None,
            vocab_size: 10_000,
            bag_of_words: "binary".into(),
            checkpoint_every: None,
            keep_checkpoints: 3,
            on_divergence: OnDivergence::Stop,
            sparse_updates: SparseUpdates::Auto,
            threads: None,
            eval_batch: 1000,
        }
    }
}

/// The most worker threads a run may ask for: more than any machine has
/// cores, and far fewer than would take minutes to start.
pub const MAX_THREADS: usize = 1024;

/// The error for a run given both a number of steps and of epochs.
pub const STEPS_AND_EPOCHS: &str =
    "--steps and --epochs: give one of them (--steps N counts optimizer steps, --epochs N passes over the data)";

/// A setting with a bad value; the message names the setting. It quotes the
/// value with control characters escaped (a TOML string may hold a line
/// break), so it is one line.
#[derive(Debug, thiserror::Error)]
#[error("{}", downhill::error::printable(.0))]
pub struct ConfigError(pub String);

impl TrainConfig {
    /// Reads a TOML file whose keys are the field names.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses TOML text whose keys are the field names. Errors give the line
    /// and column and fit on one line.
    /// A file may give `steps` or `epochs`, not both.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let c: Self = toml::from_str(text).map_err(|e| ConfigError(toml_message(text, &e)))?;
        if c.steps.is_some() {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| ConfigError(toml_message(text, &e)))?;
            if table.contains_key("epochs") {
                return Err(ConfigError(STEPS_AND_EPOCHS.into()));
            }
        }
        Ok(c)
    }

    /// The settings as TOML. Fails only for settings that
    /// [`TrainConfig::validate_settings`] refuses (an integer beyond TOML's
    /// 64 signed bits). A run by steps leaves out `epochs`, which it ignores.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let err = |e: &dyn std::fmt::Display| ConfigError(format!("config.toml: {e}"));
        if self.steps.is_none() {
            return toml::to_string_pretty(self).map_err(|e| err(&e));
        }
        let mut value = toml::Value::try_from(self).map_err(|e| err(&e))?;
        if let Some(table) = value.as_table_mut() {
            table.remove("epochs");
        }
        toml::to_string_pretty(&value).map_err(|e| err(&e))
    }

    /// Steps between evaluations of a run by steps: `eval_every`, by
    /// default `ceil(steps / 10)` (ten lines of `metrics.jsonl` per run);
    /// `None` for a run by epochs.
    pub fn eval_period(&self) -> Option<u64> {
        self.steps
            .map(|n| self.eval_every.unwrap_or(n.div_ceil(10)).max(1))
    }

    /// The optimiser spec, parsed.
    pub fn optimizer_spec(&self) -> Result<OptimizerSpec, ConfigError> {
        self.optimizer
            .parse()
            .map_err(|e: downhill::Error| ConfigError(format!("--optimizer: {e}")))
    }

    /// The schedule, parsed.
    pub fn schedule_spec(&self) -> Result<Option<Schedule>, ConfigError> {
        self.schedule
            .as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|e: downhill::Error| ConfigError(format!("--schedule: {e}")))
            })
            .transpose()
    }

    /// Checks every setting that can be checked without data, so a bad flag
    /// is reported before anything is loaded.
    pub fn validate(&self) -> Result<(), ConfigError> {
        downhill_data::Spec::parse(&self.data).map_err(|e| ConfigError(format!("--data: {e}")))?;
        self.validate_settings()
    }

    /// [`TrainConfig::validate`] except the data spec, which is only a label
    /// when the data are given in memory.
    pub fn validate_settings(&self) -> Result<(), ConfigError> {
        let bad = |name: &str, value: &dyn std::fmt::Display, expected: &str| {
            Err(ConfigError(format!(
                "--{}: {value} is invalid: expected {expected}",
                name.replace('_', "-")
            )))
        };
        let spec = self.optimizer_spec()?;
        let checked = match spec.name.as_str() {
            "lbfgs" => crate::method::lbfgs_config(&spec).map(drop),
            "newton" => crate::method::newton_config(&spec).map(drop),
            _ => spec.validate(),
        };
        checked.map_err(|e| ConfigError(format!("--optimizer: {e}")))?;
        self.schedule_spec()?;
        self.model
            .parse::<downhill_nn::ModelSpec>()
            .map_err(|e| ConfigError(format!("--model: {e}")))?;
        if self.epochs == 0 {
            return bad("epochs", &self.epochs, "at least 1");
        }
        if self.steps == Some(0) {
            return bad("steps", &0, "at least 1");
        }
        if self.eval_every == Some(0) {
            return bad("eval_every", &0, "at least 1");
        }
        if self.eval_every.is_some() && self.steps.is_none() {
            return Err(ConfigError(
                "--eval-every applies to a run by steps: give --steps N as well".into(),
            ));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad("l2", &self.l2, "a finite number >= 0");
        }
        for (name, v) in [
            ("clip_norm", self.clip_norm),
            ("clip_value", self.clip_value),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return bad(name, &v, "a finite number > 0");
                }
            }
        }
        if self.accumulate == 0 {
            return bad("accumulate", &0, "at least 1");
        }
        if self.accumulate > 1 && self.batch_size == 0 {
            return bad(
                "accumulate",
                &self.accumulate,
                "1 with --batch-size 0 (a whole-set gradient is already computed in chunks)",
            );
        }
        if let Some(d) = self.ema {
            if !(0.0..=1.0).contains(&d) {
                return bad("ema", &d, "a decay in [0, 1], e.g. 0.999");
            }
        }
        if self.swa_start == Some(0) {
            return bad("swa_start", &0, "an epoch >= 1");
        }
        if let Some(f) = self.valid_fraction {
            if !(f > 0.0 && f < 1.0) {
                return bad("valid_fraction", &f, "a number in (0, 1)");
            }
        }
        self.normalise()?;
        self.bag_of_words()?;
        if self.keep_checkpoints == 0 {
            return bad("keep_checkpoints", &0, "at least 1");
        }
        if self.checkpoint_every == Some(0) {
            return bad("checkpoint_every", &0, "at least 1");
        }
        if self.threads == Some(0) {
            return bad("threads", &0, "at least 1");
        }
        if let Some(t) = self.threads.filter(|&t| t > MAX_THREADS) {
            return bad("threads", &t, &format!("at most {MAX_THREADS}"));
        }
        // config.toml stores integers as TOML does, in 64 signed bits.
        let counts = [
            ("seed", Some(self.seed)),
            ("batch_size", Some(self.batch_size as u64)),
            ("accumulate", Some(self.accumulate as u64)),
            ("epochs", Some(self.epochs as u64)),
            ("steps", self.steps),
            ("eval_every", self.eval_every),
            ("swa_start", self.swa_start.map(|v| v as u64)),
            ("limit_train", self.limit_train.map(|v| v as u64)),
            ("limit_test", self.limit_test.map(|v| v as u64)),
            ("vocab_size", Some(self.vocab_size as u64)),
            ("checkpoint_every", self.checkpoint_every),
            ("keep_checkpoints", Some(self.keep_checkpoints as u64)),
            ("eval_batch", Some(self.eval_batch as u64)),
        ];
        for (name, v) in counts {
            if let Some(v) = v.filter(|&v| v > i64::MAX as u64) {
                return bad(
                    name,
                    &v,
                    &format!(
                        "at most {} (the largest integer config.toml can hold)",
                        i64::MAX
                    ),
                );
            }
        }
        if self.eval_batch == 0 {
            return bad("eval_batch", &0, "at least 1");
        }
        if self.vocab_size == 0 {
            return bad("vocab_size", &0, "at least 1");
        }
        if matches!(self.limit_train, Some(0)) {
            return bad("limit_train", &0, "at least 1");
        }
        if self.sparse_updates == SparseUpdates::Lazy {
            if let Some(why) = crate::sparse::lazy_obstacle(self, None)? {
                return Err(crate::sparse::refusal(&why));
            }
        }
        Ok(())
    }

    /// The normalisation setting, parsed.
    pub fn normalise(&self) -> Result<downhill_data::Normalise, ConfigError> {
        use downhill_data::Normalise;
        Ok(match self.normalise.as_str() {
            "auto" => Normalise::Auto,
            "none" => Normalise::None,
            "scale01" => Normalise::Scale01,
            "standardise" | "standardize" => Normalise::Standardise,
            other => {
                return Err(ConfigError(format!(
                    "--normalise: `{other}` is invalid: expected auto, none, scale01 or standardise"
                )))
            }
        })
    }

    /// The bag-of-words setting, parsed.
    pub fn bag_of_words(&self) -> Result<downhill_data::BagOfWords, ConfigError> {
        use downhill_data::BagOfWords;
        Ok(match self.bag_of_words.as_str() {
            "binary" => BagOfWords::Binary,
            "counts" => BagOfWords::Counts,
            "tfidf" | "tf-idf" => BagOfWords::TfIdf,
            other => {
                return Err(ConfigError(format!(
                    "--bag-of-words: `{other}` is invalid: expected binary, counts or tfidf"
                )))
            }
        })
    }

    /// Data loading options derived from these settings.
    pub fn load_options(&self) -> Result<downhill_data::LoadOptions, ConfigError> {
        Ok(downhill_data::LoadOptions {
            normalise: self.normalise()?,
            valid: self.valid_fraction.map(downhill_data::ValidSplit::Fraction),
            seed: self.seed,
            limit_train: self.limit_train,
            limit_test: self.limit_test,
            vocab_size: self.vocab_size,
            bag_of_words: self.bag_of_words()?,
            sequence: self.sequence(),
            ..downhill_data::LoadOptions::default()
        })
    }

    /// Tokens per window of text data: the model's context + 1 when the
    /// model is a transformer (text data needs one; other data ignores it).
    pub fn sequence(&self) -> Option<usize> {
        match self.model.parse::<downhill_nn::ModelSpec>().ok()?.kind {
            downhill_nn::ModelKind::Transformer { context, .. } => Some(context + 1),
            _ => None,
        }
    }
}

/// A TOML error as one line with its position. toml's own `message()` has no
/// position and can span lines ("invalid string\nexpected `\"`, `'`"), while
/// its `Display` draws a multi-line excerpt; the command line prints one line.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    match e.span().and_then(|span| text.get(..span.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_unknown_keys() {
        let c = TrainConfig {
            optimizer: "sgd(lr=0.1,momentum=0.9)".into(),
            clip_norm: Some(1.0),
            ..Default::default()
        };
        assert_eq!(TrainConfig::from_toml(&c.to_toml().unwrap()).unwrap(), c);
        let e = TrainConfig::from_toml("epochz = 3").unwrap_err();
        assert!(e.0.contains("epochz"), "{e}");
        let c = TrainConfig::from_toml("model = \"mlp:100\"\nepochs = 2\nschedule_unit = \"step\"")
            .unwrap();
        assert_eq!(
            (c.model.as_str(), c.epochs, c.schedule_unit),
            ("mlp:100", 2, ScheduleUnit::Step)
        );
    }

    #[test]
    fn validation_names_the_setting() {
        let cases = [
            (
                TrainConfig {
                    optimizer: "adam(lr=-1)".into(),
                    ..Default::default()
                },
                "--optimizer",
            ),
            (
                TrainConfig {
                    optimizer: "adamm".into(),
                    ..Default::default()
                },
                "unknown optimizer",
            ),
            (
                TrainConfig {
                    schedule: Some("steplr(step_size=0)".into()),
                    ..Default::default()
                },
                "--schedule",
            ),
            (
                TrainConfig {
                    model: "mlp:abc".into(),
                    ..Default::default()
                },
                "--model",
            ),
            (
                TrainConfig {
                    data: "nope:x".into(),
                    ..Default::default()
                },
                "--data",
            ),
            (
                TrainConfig {
                    epochs: 0,
                    ..Default::default()
                },
                "--epochs",
            ),
            (
                TrainConfig {
                    l2: -1.0,
                    ..Default::default()
                },
                "--l2",
            ),
            (
                TrainConfig {
                    clip_norm: Some(0.0),
                    ..Default::default()
                },
                "--clip-norm",
            ),
            (
                TrainConfig {
                    valid_fraction: Some(1.0),
                    ..Default::default()
                },
                "--valid-fraction",
            ),
            (
                TrainConfig {
                    normalise: "zscore".into(),
                    ..Default::default()
                },
                "--normalise",
            ),
            (
                TrainConfig {
                    optimizer: "lbfgs(history_size=0)".into(),
                    ..Default::default()
                },
                "history_size",
            ),
        ];
        for (c, want) in cases {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e} should mention {want}");
        }
        TrainConfig::default().validate().unwrap();
        TrainConfig {
            optimizer: "lbfgs(line_search_fn=strong_wolfe)".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
    }
}
