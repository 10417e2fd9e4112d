//! Saving and resuming: the optimiser state in downhill's format
//! (`optimizer.json` + `optimizer.safetensors`, see [`downhill::state`])
//! and, in `burn.json`, the parameters it belongs to and the schedule.

use crate::error::{named, Error};
use crate::host::Direct;
use crate::optimizer::{from_host, to_host, with_engine, BurnOptimizer, Engine, Kind, Path};
use downhill::schedule::Scheduler;
use downhill::state::{write_atomic, SavedState};
use serde::{Deserialize, Serialize};
use std::path::{Path as FsPath, PathBuf};

/// The format tag of `burn.json`.
pub const BURN_FORMAT: &str = "downhill-burn/1";

/// One parameter as the checkpoint records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamRecord {
    path: String,
    shape: Vec<usize>,
    dtype: String,
}

/// `burn.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BurnRecord {
    format: String,
    params: Vec<ParamRecord>,
    schedule: Option<Scheduler>,
}

/// A state read before the optimiser met its module.
pub(crate) struct Pending {
    dir: PathBuf,
    record: BurnRecord,
    state: SavedState,
}

fn io(path: &FsPath) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The whole state of `e`, with the device path's buffers copied in.
pub(crate) fn host_state<T: Direct>(e: &Engine<T>) -> Result<SavedState, Error> {
    let mut state = e.opt.save_state()?;
    for i in 0..e.opt.params().len() {
        for (name, x) in e.device.buffers(i) {
            let data = to_host::<T>(x.clone())?;
            let mut bytes = Vec::with_capacity(data.len() * T::BYTES);
            T::extend_le_bytes(&data, &mut bytes);
            state.set_buffer(i, name, bytes)?;
        }
    }
    Ok(state)
}

impl<T: Direct> Engine<T> {
    /// Moves a loaded state's buffers onto `device`.
    fn buffers_to_device(&mut self, device: &burn::tensor::Device) {
        for i in 0..self.opt.params().len() {
            let mut on_device = Vec::new();
            for b in self.opt.take_buffers(i) {
                if b.data.is_empty() && b.shape.iter().product::<usize>() > 0 {
                    continue;
                }
                on_device.push((b.name, from_host(b.data, device)));
            }
            self.device.set_buffers(i, on_device);
        }
    }
}

impl BurnOptimizer {
    fn records(&self) -> Vec<ParamRecord> {
        let Some(b) = &self.built else {
            return Vec::new();
        };
        b.names
            .iter()
            .zip(&b.shapes)
            .map(|(n, s)| ParamRecord {
                path: n.clone(),
                shape: s.clone(),
                dtype: format!("{:?}", b.dtype).to_lowercase(),
            })
            .collect()
    }

    /// Writes the optimiser's state (hyper-parameters, step counts, buffers)
    /// and its schedule into the folder `dir` (created if missing):
    /// `optimizer.json` and `optimizer.safetensors` in downhill's
    /// optimiser-state format, and `burn.json` with the parameters' paths,
    /// shapes and dtypes and the schedule. Each file is written atomically.
    /// The module is the caller's to save (burn's own records).
    pub fn save(&self, dir: impl AsRef<FsPath>) -> Result<(), Error> {
        let dir = dir.as_ref();
        let Some(b) = &self.built else {
            return Err(Error::Module(format!(
                "nothing to save to {}: the optimiser has not stepped yet",
                dir.display()
            )));
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (state, schedule) = with_engine!(&b.kind, e => (host_state(e)?, e.sched.clone()));
        let record = BurnRecord {
            format: BURN_FORMAT.into(),
            params: self.records(),
            schedule,
        };
        let json = serde_json::to_string_pretty(&record).map_err(|e| Error::Io {
            path: dir.join("burn.json"),
            message: e.to_string(),
        })?;
        state.write(dir, "optimizer").map_err(io(dir))?;
        let path = dir.join("burn.json");
        write_atomic(&path, json.as_bytes()).map_err(io(&path))
    }

    /// Restores what [`BurnOptimizer::save`] wrote, into an optimiser of the
    /// same spec over the same parameters (same paths, shapes and dtypes, in
    /// the same order). The files are read and checked now; before the
    /// first step the state is kept and applied when the optimiser meets
    /// the module. The steps that follow are bit-identical to never having
    /// stopped on the CPU backends. On an error nothing changes.
    pub fn load(&mut self, dir: impl AsRef<FsPath>) -> Result<(), Error> {
        let dir = dir.as_ref();
        let path = dir.join("burn.json");
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let record: BurnRecord = serde_json::from_str(&text).map_err(|e| Error::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if record.format != BURN_FORMAT {
            return Err(Error::Io {
                path,
                message: format!("format `{}`, expected `{BURN_FORMAT}`", record.format),
            });
        }
        if record.schedule.is_some() != self.cfg.schedule.is_some() {
            return Err(Error::Io {
                path,
                message: format!(
                    "saved {} a schedule, this optimiser runs {}",
                    if record.schedule.is_some() {
                        "with"
                    } else {
                        "without"
                    },
                    if self.cfg.schedule.is_some() {
                        "one"
                    } else {
                        "none"
                    }
                ),
            });
        }
        let state = SavedState::read(dir, "optimizer")?;
        let pending = Pending {
            dir: dir.to_path_buf(),
            record,
            state,
        };
        if self.built.is_some() {
            self.apply_loaded(pending)
        } else {
            self.pending = Some(pending);
            Ok(())
        }
    }

    /// Checks a read state against the module's parameters and applies it.
    pub(crate) fn apply_loaded(&mut self, p: Pending) -> Result<(), Error> {
        let mine = self.records();
        let b = self.built.as_mut().expect("called once built");
        if p.record.params.len() != mine.len() {
            return Err(Error::Io {
                path: p.dir,
                message: format!(
                    "holds the state of {} parameters, this module has {}",
                    p.record.params.len(),
                    mine.len()
                ),
            });
        }
        for (saved, now) in p.record.params.iter().zip(&mine) {
            if saved != now {
                return Err(Error::Io {
                    path: p.dir,
                    message: format!(
                        "saved {} {:?} {} where this module has {} {:?} {}",
                        saved.path, saved.shape, saved.dtype, now.path, now.shape, now.dtype
                    ),
                });
            }
        }
        let names = &b.names;
        let on_device = b.path == Path::Device;
        let device = b.device.clone();
        with_engine!(&mut b.kind, e => {
            e.opt.load_state(&p.state).map_err(|err| named(err, names))?;
            if on_device {
                e.buffers_to_device(&device);
            }
            e.sched = p.record.schedule;
        });
        Ok(())
    }
}
