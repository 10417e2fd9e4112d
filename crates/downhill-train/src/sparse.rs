//! Lazy row-sparse updates on sparse data (`--sparse-updates`,
//! [`TrainConfig::sparse_updates`]).
//!
//! With sparse input (`libsvm:`, `imdb:`) a batch touches only the rows of the
//! first weight `fc1.weight` (`[features, outputs]`, one row per input
//! feature) whose features occur in it; every other row's gradient is exactly
//! zero. A *dense* step still visits every row and all of its optimizer state.
//! A *lazy* step visits only the touched rows
//! ([`Optimizer::step_sparse`]), so
//! its cost follows the batch's distinct features instead of the vocabulary.
//! Every later tensor (biases, hidden layers) takes a dense step either way.
//!
//! ## What a lazy step means
//!
//! The step count `t` is per tensor and advances on every step, touched or
//! not, as in a dense run (and as torch's `SparseAdam` keeps it).
//!
//! * `sgd` without momentum, and `adagrad` (without weight decay): the same
//!   result as a dense step. A zero gradient row changes neither the
//!   parameters nor Adagrad's sum, and `lr_decay` follows `t`.
//! * `sgd` with momentum (or Nesterov): **not** the same as dense. A row's
//!   momentum buffer is updated and applied only on the steps that touch it;
//!   between them the row stands still, where dense SGD keeps moving it with
//!   its decaying velocity. A row first touched after step 1 starts from a
//!   zero buffer, so with dampening τ its first update is scaled by (1 − τ)
//!   where dense SGD's first step is not.
//! * `adam`: torch's `SparseAdam`, **not** the same as dense Adam. Only the
//!   touched rows' moments `m` and `v` (and AMSGrad's running maximum, which
//!   `SparseAdam` lacks) move; the bias corrections use the tensor's `t`, not
//!   how often the row was touched. An untouched row keeps its moments and
//!   does not move, where dense Adam moves every row every step with its
//!   decaying `m`.
//!
//! ## When it is not possible
//!
//! A lazy request is then an error naming the flag; `auto` chooses dense and
//! says why in the run's header:
//!
//! * dense data (no rows to skip);
//! * an optimizer other than `sgd`, `adagrad` and `adam` (and `lbfgs` and
//!   `newton`, which take full-batch steps);
//! * a model whose first layer is not dense (a convolution);
//! * an L2 penalty in the loss (`--l2`, or `l2=` in the model): it adds λ·W
//!   to every row's gradient, so no row is zero;
//! * `weight_decay` > 0: it decays every row on every step. torch's
//!   `SparseAdam` has no weight decay and torch's `Adagrad` refuses it with
//!   sparse gradients; a lazy decay of the touched rows only would be a
//!   different regulariser, so it is refused rather than redefined.
//!
//! ## What stays exact
//!
//! * Clipping by global norm (`--clip-norm`): the norm is taken over the
//!   touched rows and every later tensor, which is the whole gradient's norm
//!   (the other rows are zero), and the same values are scaled.
//! * Clipping by value (`--clip-value`): element-wise, the same.
//! * Non-finite gradients: that norm covers every element that can be
//!   non-zero and is computed before any parameter changes, so a NaN or an
//!   infinity stops (or backs off) the run with nothing changed.
//! * Input dropout: a dropped feature still counts as touched (its row's
//!   gradient is zero that step), so under `adam` its moments decay, as
//!   `SparseAdam` does for an explicit zero in a sparse gradient. A feature
//!   stored with the value 0 is touched likewise.
//! * Batches larger than `eval_batch` run in chunks; the touched rows are the
//!   union of the chunks'.
//! * Checkpoints hold the same optimizer state as a dense run's (full-size
//!   buffers), and a resumed lazy run is bit-identical to an uninterrupted one.
//!
//! [`TrainConfig::sparse_updates`]: crate::TrainConfig::sparse_updates

use crate::config::{ConfigError, SparseUpdates, TrainConfig};
use downhill::clip::{clip_grad_norm, clip_grad_value, grad_norm, Norm};
use downhill::hyper::HyperValue;
use downhill::optim::Optimizer;
use downhill_nn::{ModelKind, Network};
use serde::{Deserialize, Serialize};

/// The optimizers with a lazy row-sparse step in the trainer.
pub const LAZY_OPTIMIZERS: &[&str] = &["sgd", "adagrad", "adam"];

/// How a run updates the first layer's weights, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateChoice {
    /// Lazy row-sparse steps of `fc1.weight` (else dense steps of everything).
    pub lazy: bool,
    /// Why, in a few words (e.g. `auto: sparse data with adam`).
    pub why: String,
}

impl UpdateChoice {
    /// `lazy` or `dense`.
    pub fn mode(&self) -> &'static str {
        if self.lazy {
            "lazy"
        } else {
            "dense"
        }
    }
}

impl std::fmt::Display for UpdateChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.mode(), self.why)
    }
}

/// Why a lazy step is impossible for these settings, if it is. `sparse_data`
/// is `None` when the data are not loaded yet (only the settings are checked).
pub fn lazy_obstacle(
    cfg: &TrainConfig,
    sparse_data: Option<bool>,
) -> Result<Option<String>, ConfigError> {
    let spec = cfg.optimizer_spec()?;
    let model: downhill_nn::ModelSpec = cfg
        .model
        .parse()
        .map_err(|e| ConfigError(format!("--model: {e}")))?;
    let name = spec.name.as_str();
    let why = if matches!(name, "lbfgs" | "newton") {
        Some(format!("{name} takes full-batch steps"))
    } else if !LAZY_OPTIMIZERS.contains(&name) {
        Some(format!(
            "{name} has no lazy step (sgd, adagrad and adam have)"
        ))
    } else if matches!(model.kind, ModelKind::Cnn { .. }) {
        Some("the model's first layer is a convolution, not dense".into())
    } else if cfg.l2 > 0.0 || model.l2 > 0.0 {
        Some("an L2 penalty (--l2) puts λ·W in every row's gradient".into())
    } else if let Some(wd) = weight_decay(&spec).filter(|&wd| wd > 0.0) {
        Some(format!(
            "weight_decay={wd} decays every row on every step (torch's SparseAdam has none)"
        ))
    } else if sparse_data == Some(false) {
        Some("the data are dense".into())
    } else {
        None
    };
    Ok(why)
}

/// The optimizer's `weight_decay` (of every group), when set.
fn weight_decay(spec: &downhill::optim::OptimizerSpec) -> Option<f64> {
    let of = |m: &downhill::hyper::HyperMap| match m.get("weight_decay") {
        Some(HyperValue::Number(x)) => Some(*x),
        _ => None,
    };
    spec.groups
        .iter()
        .filter_map(|g| of(&g.hyper))
        .chain(of(&spec.hyper))
        .reduce(f64::max)
}

/// The update mode of a run with these settings on data that are (or are
/// not) sparse. A lazy request that cannot be honoured is an error naming
/// `--sparse-updates`.
pub fn choose(cfg: &TrainConfig, sparse_data: bool) -> Result<UpdateChoice, ConfigError> {
    let obstacle = lazy_obstacle(cfg, Some(sparse_data))?;
    let name = cfg.optimizer_spec()?.name;
    Ok(match (cfg.sparse_updates, obstacle) {
        (SparseUpdates::Dense, _) => UpdateChoice {
            lazy: false,
            why: "requested".into(),
        },
        (SparseUpdates::Lazy, Some(why)) => return Err(refusal(&why)),
        (SparseUpdates::Lazy, None) => UpdateChoice {
            lazy: true,
            why: format!("requested: row-sparse {name} steps of fc1.weight"),
        },
        (SparseUpdates::Auto, Some(why)) => UpdateChoice {
            lazy: false,
            why: format!("auto: {why}"),
        },
        (SparseUpdates::Auto, None) => UpdateChoice {
            lazy: true,
            why: format!("auto: sparse data, row-sparse {name} steps of fc1.weight"),
        },
    })
}

/// The error for a lazy request that cannot be honoured.
pub(crate) fn refusal(why: &str) -> ConfigError {
    ConfigError(format!(
        "--sparse-updates lazy: {why}; use --sparse-updates dense (or auto)"
    ))
}

/// The lazy step's reusable buffer: the touched rows' gradient, gathered.
#[derive(Debug)]
pub(crate) struct LazyStep {
    /// Sizes of the parameter tensors (tensor 0 is `fc1.weight`).
    sizes: Vec<usize>,
    /// Gradient rows of the touched features, in row order.
    values: Vec<f32>,
}

impl LazyStep {
    /// Buffers for a network, sized for batches with at most `max_rows`
    /// distinct features, so steps never grow them.
    pub(crate) fn new(net: &Network<f32>, max_rows: usize) -> Self {
        let first = &net.tensors()[0];
        let (n_in, row_len) = (first.shape[0], first.shape[1]);
        LazyStep {
            sizes: net.tensors().iter().map(|t| t.len).collect(),
            values: Vec::with_capacity(max_rows.min(n_in) * row_len),
        }
    }

    /// Gathers the touched rows of the last gradient and returns the 2-norm
    /// of the whole gradient (NaN or infinite when any element is); `None`
    /// when the gradient is not row-sparse.
    pub(crate) fn gather(&mut self, net: &mut Network<f32>) -> Option<f64> {
        let g = net.row_sparse_grads()?;
        self.values.clear();
        for &r in g.rows {
            let start = r as usize * g.row_len;
            self.values
                .extend_from_slice(&g.first[start..start + g.row_len]);
        }
        Some(grad_norm(&[&self.values, g.rest], Norm::P(2.0)))
    }

    /// Clips the gathered gradient with the rest (as dense clipping would
    /// the whole), then steps: `fc1.weight` lazily over the touched rows,
    /// every later tensor densely.
    pub(crate) fn step(
        &mut self,
        net: &mut Network<f32>,
        opt: &mut dyn Optimizer<f32>,
        clip_norm: Option<f64>,
        clip_value: Option<f64>,
    ) -> Result<(), downhill::Error> {
        let Some(g) = net.row_sparse_grads() else {
            return Err(downhill::Error::Shape(
                "lazy step: the gradient is no longer row-sparse".into(),
            ));
        };
        if let Some(max) = clip_norm {
            clip_grad_norm(
                &mut [&mut self.values, &mut *g.rest],
                max,
                Norm::P(2.0),
                false,
            )?;
        }
        if let Some(v) = clip_value {
            clip_grad_value(&mut [&mut self.values, &mut *g.rest], v)?;
        }
        let (first, mut params) = g.params.split_at_mut(self.sizes[0]);
        opt.step_sparse(0, first, g.rows, g.row_len, &self.values)?;
        let mut grads = &*g.rest;
        for (i, &size) in self.sizes.iter().enumerate().skip(1) {
            let (p, p_tail) = params.split_at_mut(size);
            let (gi, g_tail) = grads.split_at(size);
            // A dense step of one tensor: all of it as a single row.
            opt.step_sparse(i, p, &[0], size, gi)?;
            (params, grads) = (p_tail, g_tail);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use downhill_nn::{InputShape, ModelSpec};

    /// An MLP on 6 features with a row-sparse gradient: rows 1 and 4 of
    /// `fc1.weight` (`[6, 3]`) and every later tensor non-zero.
    fn net_with_gradient(poison: Option<usize>) -> Network<f32> {
        let spec: ModelSpec = "mlp:3".parse().unwrap();
        let mut net = Network::<f32>::new(&spec, InputShape::Flat(6), 2, 1).unwrap();
        let mut g: Vec<f32> = (0..net.grads().len()).map(|i| 0.1 * i as f32).collect();
        for r in [0, 2, 3, 5] {
            g[r * 3..(r + 1) * 3].fill(0.0);
        }
        if let Some(i) = poison {
            g[i] = f32::NAN;
        }
        net.set_grads(&g, Some(&[1, 4])).unwrap();
        net
    }

    #[test]
    fn the_gathered_norm_is_the_whole_gradients_and_sees_every_non_finite_value() {
        let mut net = net_with_gradient(None);
        let mut lazy = LazyStep::new(&net, 2);
        let norm = lazy.gather(&mut net).unwrap();
        let dense = grad_norm(&[net.grads()], Norm::P(2.0));
        // The same up to the order of the f32 partial sums.
        assert!((norm - dense).abs() <= 1e-6 * dense, "{norm} vs {dense}");
        // A NaN in a touched row of fc1.weight, or in a later tensor.
        for i in [4, 13, 18, 25] {
            let mut net = net_with_gradient(Some(i));
            assert!(lazy.gather(&mut net).unwrap().is_nan(), "element {i}");
        }
    }

    #[test]
    fn clipping_a_lazy_step_scales_what_dense_clipping_would() {
        use downhill::optim::{build, NonFinite};
        let spec = "sgd(lr=1)".parse().unwrap();
        let mut net = net_with_gradient(None);
        let sizes: Vec<usize> = net.tensors().iter().map(|t| t.len).collect();
        let (start, grads) = (net.params().to_vec(), net.grads().to_vec());
        let mut opt = build::<f32>(&spec, &sizes).unwrap();
        opt.set_non_finite(NonFinite::Unchecked);
        let mut lazy = LazyStep::new(&net, 2);
        let norm = lazy.gather(&mut net).unwrap();
        lazy.step(&mut net, &mut *opt, Some(0.5), None).unwrap();
        // SGD with lr 1 moves θ by exactly the clipped gradient.
        let scale = 0.5 / (norm + 1e-6);
        assert!(scale < 0.1, "the clip binds");
        for (i, ((p, s), g)) in net.params().iter().zip(&start).zip(&grads).enumerate() {
            let want = s - (scale * *g as f64) as f32;
            assert!((p - want).abs() <= 1e-6, "element {i}: {p} vs {want}");
        }
    }
}
