//! The optimiser of a run: an element-wise one stepped per mini-batch, or
//! L-BFGS driven by a full-batch closure.

use downhill::hyper::Hyper;
use downhill::lbfgs::{Lbfgs, LbfgsConfig};
use downhill::optim::{build, NonFinite, Optimizer, OptimizerSpec};

/// How parameters are updated.
#[derive(Debug)]
pub enum Method {
    /// One step per batch.
    Step(Box<dyn Optimizer<f32>>),
    /// One `Lbfgs::step` (up to `max_iter` iterations) per epoch, each on the
    /// full-batch loss.
    Lbfgs(Box<Lbfgs<f32>>),
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
    /// Builds the method for parameter tensors of the given sizes.
    pub fn new(spec: &OptimizerSpec, sizes: &[usize]) -> downhill::Result<Self> {
        if spec.name == "lbfgs" {
            let n = sizes.iter().sum();
            return Ok(Method::Lbfgs(Box::new(Lbfgs::new(lbfgs_config(spec)?, n)?)));
        }
        let mut opt = build::<f32>(spec, sizes)?;
        // The trainer checks the gradient norm itself on every step (for
        // divergence and clipping), so the optimiser need not scan it again.
        opt.set_non_finite(NonFinite::Unchecked);
        Ok(Method::Step(opt))
    }

    /// The element-wise optimiser, if this is one.
    pub fn optimizer(&mut self) -> Option<&mut dyn Optimizer<f32>> {
        match self {
            Method::Step(o) => Some(&mut **o),
            Method::Lbfgs(_) => None,
        }
    }

    /// Current learning rate (first group).
    pub fn lr(&self) -> f64 {
        match self {
            Method::Step(o) => o.lr(0),
            Method::Lbfgs(l) => l.config().lr,
        }
    }

    /// torch's name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Step(o) => o.name(),
            Method::Lbfgs(_) => "lbfgs",
        }
    }
}
