//! Saving and resuming: the optimiser state in downhill's format
//! (`optimizer.json` + `optimizer.safetensors`, see [`downhill::state`])
//! and, in `candle.json`, the vars it belongs to and the schedule.

use crate::optimizer::{with_engine, CandleOptimizer, Kind};
use downhill::schedule::Scheduler;
use downhill::state::{write_atomic, SavedState};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format tag of `candle.json`.
pub const CANDLE_FORMAT: &str = "downhill-candle/1";

/// One var as the checkpoint records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VarRecord {
    name: String,
    shape: Vec<usize>,
    dtype: String,
}

/// `candle.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandleRecord {
    format: String,
    /// Whether the names are a VarMap's.
    named: bool,
    vars: Vec<VarRecord>,
    schedule: Option<Scheduler>,
}

fn msg(s: String) -> candle_core::Error {
    candle_core::Error::Msg(s)
}

impl CandleOptimizer {
    fn records(&self) -> Vec<VarRecord> {
        self.vars
            .iter()
            .zip(&self.names)
            .map(|(v, n)| VarRecord {
                name: n.clone(),
                shape: v.dims().to_vec(),
                dtype: format!("{:?}", v.dtype()).to_lowercase(),
            })
            .collect()
    }

    /// Writes the optimiser's state (hyper-parameters, step counts, buffers)
    /// and its schedule into the folder `dir` (created if missing):
    /// `optimizer.json` and `optimizer.safetensors` in downhill's
    /// optimiser-state format, and `candle.json` with the vars' names,
    /// shapes and dtypes and the schedule. Each file is written atomically.
    /// The vars themselves are the model's to save (`VarMap::save`).
    pub fn save(&self, dir: impl AsRef<Path>) -> candle_core::Result<()> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| msg(format!("downhill: saving to {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let (state, schedule) = with_engine!(&self.kind, e => (e.host_state(), e.sched.clone()));
        let state = state?;
        let record = CandleRecord {
            format: CANDLE_FORMAT.into(),
            named: self.named,
            vars: self.records(),
            schedule,
        };
        let json = serde_json::to_string_pretty(&record)
            .map_err(|e| msg(format!("downhill: candle.json: {e}")))?;
        state.write(dir, "optimizer").map_err(io)?;
        write_atomic(&dir.join("candle.json"), json.as_bytes()).map_err(io)
    }

    /// Restores what [`CandleOptimizer::save`] wrote into an optimiser built
    /// with the same spec over the same vars (same shapes and dtypes, in the
    /// same order; with the same names when both came from a VarMap). The
    /// steps that follow are bit-identical to never having stopped. On an
    /// error nothing changes.
    pub fn load(&mut self, dir: impl AsRef<Path>) -> candle_core::Result<()> {
        let dir = dir.as_ref();
        let path = dir.join("candle.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| msg(format!("downhill: {}: {e}", path.display())))?;
        let record: CandleRecord = serde_json::from_str(&text)
            .map_err(|e| msg(format!("downhill: {}: {e}", path.display())))?;
        if record.format != CANDLE_FORMAT {
            return Err(msg(format!(
                "downhill: {}: format `{}`, expected `{CANDLE_FORMAT}`",
                path.display(),
                record.format
            )));
        }
        let mine = self.records();
        if record.vars.len() != mine.len() {
            return Err(msg(format!(
                "downhill: {} holds the state of {} vars, this optimiser has {}",
                dir.display(),
                record.vars.len(),
                mine.len()
            )));
        }
        for (saved, now) in record.vars.iter().zip(&mine) {
            let names_differ = record.named && self.named && saved.name != now.name;
            if names_differ || saved.shape != now.shape || saved.dtype != now.dtype {
                return Err(msg(format!(
                    "downhill: {} saved {} {:?} {} where this optimiser has {} {:?} {}",
                    dir.display(),
                    saved.name,
                    saved.shape,
                    saved.dtype,
                    now.name,
                    now.shape,
                    now.dtype
                )));
            }
        }
        let has_schedule = with_engine!(&self.kind, e => e.sched.is_some());
        if record.schedule.is_some() != has_schedule {
            return Err(msg(format!(
                "downhill: {} was saved {} a schedule, this optimiser runs {}",
                dir.display(),
                if record.schedule.is_some() {
                    "with"
                } else {
                    "without"
                },
                if has_schedule { "one" } else { "none" }
            )));
        }
        let state =
            SavedState::read(dir, "optimizer").map_err(|e| msg(format!("downhill: {e}")))?;
        let names = &self.names;
        let vars = crate::engine::Vars {
            vars: &self.vars,
            names,
        };
        let on_device = self.path == crate::engine::Path::Device;
        with_engine!(&mut self.kind, e => {
            e.opt.load_state(&state).map_err(|err| crate::engine::named(err, names))?;
            if on_device {
                e.buffers_to_device(&vars)?;
            }
            e.sched = record.schedule;
        });
        Ok(())
    }
}
