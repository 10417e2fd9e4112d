//! The optimiser of a run: an element-wise one stepped per mini-batch, or
//! L-BFGS driven by a full-batch closure.

use downhill::hyper::Hyper;
use downhill::lbfgs::{Lbfgs, LbfgsConfig};
use downhill::newton::Newton;
use downhill::optim::{build, NonFinite, Optimizer, OptimizerSpec, Param};
use downhill::state::{GroupRecord, SavedState, StateManifest, TensorRecord};

/// How parameters are updated.
#[derive(Debug)]
pub enum Method {
    /// One step per batch.
    Step(Box<dyn Optimizer<f32>>),
    /// One `Lbfgs::step` (up to `max_iter` iterations) per epoch, each on the
    /// full-batch loss.
    Lbfgs(Box<Lbfgs<f32>>),
    /// Newton's method (up to `max_iter` iterations per epoch) on the
    /// full-batch loss with the exact Hessian: logistic regression only.
    Newton {
        /// The settings.
        config: Newton,
        /// Iterations so far.
        iterations: u64,
    },
}

/// The Newton configuration a spec names.
pub fn newton_config(spec: &OptimizerSpec) -> downhill::Result<Newton> {
    let mut c = Newton::default();
    c.apply(&spec.hyper)?;
    if !spec.groups.is_empty() {
        return Err(downhill::Error::Unsupported(
            "newton has a single parameter group".into(),
        ));
    }
    Ok(c)
}

/// The L-BFGS configuration a spec names.
pub fn lbfgs_config(spec: &OptimizerSpec) -> downhill::Result<LbfgsConfig> {
    let mut c = LbfgsConfig::default();
    c.apply(&spec.hyper)?;
    if !spec.groups.is_empty() {
        return Err(downhill::Error::Unsupported(
            "lbfgs has a single parameter group".into(),
        ));
    }
    Ok(c)
}

impl Method {
    /// Builds the method for the given parameter tensors (shapes and roles,
    /// see [`downhill_nn::Network::optimizer_params`]).
    pub fn new(spec: &OptimizerSpec, params: &[Param]) -> downhill::Result<Self> {
        if spec.name == "lbfgs" {
            let n = params.iter().map(Param::len).sum();
            return Ok(Method::Lbfgs(Box::new(Lbfgs::new(lbfgs_config(spec)?, n)?)));
        }
        if spec.name == "newton" {
            return Ok(Method::Newton {
                config: newton_config(spec)?,
                iterations: 0,
            });
        }
        let mut opt = build::<f32>(spec, params)?;
        // The trainer checks the gradient norm itself on every step (for
        // divergence and clipping), so the optimiser need not scan it again.
        opt.set_non_finite(NonFinite::Unchecked);
        Ok(Method::Step(opt))
    }

    /// The element-wise optimiser, if this is one.
    pub fn optimizer(&mut self) -> Option<&mut dyn Optimizer<f32>> {
        match self {
            Method::Step(o) => Some(&mut **o),
            Method::Lbfgs(_) | Method::Newton { .. } => None,
        }
    }

    /// Current learning rate (first group); Newton's full step is 1.
    pub fn lr(&self) -> f64 {
        match self {
            Method::Step(o) => o.lr(0),
            Method::Lbfgs(l) => l.config().lr,
            Method::Newton { .. } => 1.0,
        }
    }

    /// torch's name (or `newton`).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Step(o) => o.name(),
            Method::Lbfgs(_) => "lbfgs",
            Method::Newton { .. } => "newton",
        }
    }

    /// The state, in the optimiser-state format (Newton keeps only its
    /// settings and iteration count).
    pub fn save_state(&self, total: usize) -> downhill::Result<SavedState> {
        Ok(match self {
            Method::Step(o) => o.save_state()?,
            Method::Lbfgs(l) => l.save_state(),
            Method::Newton { config, iterations } => SavedState {
                manifest: StateManifest::new(
                    "newton",
                    "f32",
                    &[Param::from(total)],
                    vec![GroupRecord {
                        params: vec![0],
                        hyper: config.to_map(),
                        scalars: Default::default(),
                    }],
                    vec![TensorRecord {
                        step: *iterations,
                        scalars: Default::default(),
                        buffers: Vec::new(),
                    }],
                ),
                buffers: Vec::new(),
            },
        })
    }

    /// Restores what [`Method::save_state`] saved.
    pub fn load_state(&mut self, saved: &SavedState, total: usize) -> downhill::Result<()> {
        match self {
            Method::Step(o) => o.load_state(saved),
            Method::Lbfgs(l) => l.load_state(saved),
            Method::Newton { config, iterations } => {
                let m = saved
                    .manifest
                    .expect("newton", "f32", &[Param::from(total)])?;
                let mut c = Newton::default();
                if let Some(g) = m.groups.first() {
                    c.apply(&g.hyper)?;
                }
                *config = c;
                *iterations = m.tensors.first().map_or(0, |t| t.step);
                Ok(())
            }
        }
    }
}
