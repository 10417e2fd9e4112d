//! Stochastic gradient descent with momentum, dampening and Nesterov momentum.

use super::lane::Lane;
use super::mechanics::Decay;
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::{Real, Result};

crate::hyper_struct! {
    /// SGD (Robbins & Monro, 1951), with heavy-ball momentum (Polyak, 1964) and
    /// Nesterov momentum in the form of Sutskever et al. (2013), as `torch.optim.SGD`.
    ///
    /// With `g` the gradient (negated if `maximize`), `λ` the weight decay, `μ`
    /// the momentum, `τ` the dampening and `γ` the learning rate, each step is
    ///
    /// ```text
    /// g ← g + λ·θ
    /// if μ ≠ 0:  b ← g                    when b is new (first step, or momentum just turned on)
    ///            b ← μ·b + (1 − τ)·g      afterwards
    ///            g ← g + μ·b   (nesterov)   or   g ← b
    /// θ ← θ − γ·g
    /// ```
    ///
    /// Used with batch size 1 this is stochastic (online) gradient descent; with
    /// the whole data set per step, batch gradient descent.
    pub struct Sgd: "sgd" {
        /// Learning rate γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Momentum factor μ, in [0, 1). Stricter than torch (any μ ≥ 0): with μ ≥ 1 the buffer never forgets and grows without bound.
        momentum: f64 = 0.0; check check::unit_open,
        /// Dampening τ of the momentum, in [0, 1] (torch does not check it; τ > 1 would reverse the gradient).
        dampening: f64 = 0.0; check check::unit_closed,
        /// L2 penalty λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Use Nesterov momentum (needs `momentum > 0` and `dampening = 0`).
        nesterov: bool = false,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

/// Which loop a step runs.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Momentum,
    Nesterov,
}

/// Per-step constants of [`Sgd`].
#[derive(Clone, Copy, Debug)]
pub struct SgdConsts<T> {
    mode: Mode,
    neg_lr: T,
    decay: Decay<T>,
    momentum: T,
    keep: T,
    take: T,
}

impl Rule for Sgd {
    type Consts<T: Real> = SgdConsts<T>;

    const PAPER: &'static str = "Robbins & Monro 1951; Sutskever et al. 2013";
    const REFERENCE: &'static str = "torch.optim.SGD";
    const USE_WHEN: &'static str = "plain or momentum SGD: the baseline, and with Nesterov momentum and a tuned schedule often the best generaliser";
    const EXAMPLES: &'static [&'static str] = &[
        "sgd(lr=0.1)",
        "sgd(lr=0.05,momentum=0.9,dampening=0.1)",
        "sgd(lr=0.05,momentum=0.9,nesterov=true)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn check(&self) -> Result<()> {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(crate::hyper::invalid_value(
                "sgd",
                "nesterov",
                true,
                format!(
                    "nesterov only with momentum > 0 and dampening = 0 (momentum = {}, dampening = {})",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }

    fn prepare<T: Real>(&self, _: u64, fresh: bool, _: &mut [f64], _: &[f64]) -> SgdConsts<T> {
        // torch starts the buffer at the gradient, undamped (b ← 0·b + 1·g),
        // whenever the buffer is new: on the first step, and when momentum is
        // turned on mid-run.
        let (keep, take) = if fresh {
            (0.0, 1.0)
        } else {
            (self.momentum, 1.0 - self.dampening)
        };
        SgdConsts {
            mode: match (self.momentum != 0.0, self.nesterov) {
                (false, _) => Mode::Plain,
                (true, false) => Mode::Momentum,
                (true, true) => Mode::Nesterov,
            },
            neg_lr: T::from_f64(-self.lr),
            decay: Decay::new(self.weight_decay, false, self.lr, self.maximize),
            momentum: T::from_f64(self.momentum),
            keep: T::from_f64(keep),
            take: T::from_f64(take),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Sgd {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &SgdConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let d = c.decay.grad(g, *p);
        let step = match (c.mode, b) {
            (Mode::Plain, []) => d,
            (Mode::Momentum, [m]) => {
                *m = *m * c.keep + d * c.take;
                *m
            }
            (Mode::Nesterov, [m]) => {
                *m = *m * c.keep + d * c.take;
                d + *m * c.momentum
            }
            _ => unreachable!("buffers() and update() agree on the buffer count"),
        };
        *p = *p + step * c.neg_lr;
    }
}
