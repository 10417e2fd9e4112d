//! Online learning from a stream: LIBSVM examples read one at a time (e.g.
//! from standard input), each used for one update and never stored, as
//! stochastic gradient descent was first conceived.
//!
//! The loss on each example is measured before the update it causes
//! (progressive validation, Blum, Kalai & Langford, 1999), so the running mean
//! is an honest estimate of the error on unseen data.

use crate::checkpoint;
use crate::method::Method;
use crate::progress::Observer;
use crate::trainer::{append, TrainError};
use downhill::clip::{grad_norm, Norm};
use downhill::state::write_atomic;
use downhill::Rng;
use downhill_data::{LabelMap, LibsvmStream, SparseExample};
use downhill_nn::{Input, InputShape, ModelSpec, Network};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

/// Settings of an online run.
#[derive(Clone, Debug)]
pub struct OnlineConfig {
    /// Model spec (`logreg`, `mlp:64`, ...; not a CNN).
    pub model: String,
    /// Optimizer spec (not lbfgs).
    pub optimizer: String,
    /// Number of features: indices above it are errors.
    pub dim: usize,
    /// The label of each class as written in the stream (e.g. `-1`, `1`).
    pub labels: Vec<String>,
    /// Whether feature indices start at 0 (else 1, LIBSVM's convention).
    pub zero_based: bool,
    /// Examples per update (1: pure stochastic gradient descent).
    pub batch_size: usize,
    /// Seed of initialisation and dropout.
    pub seed: u64,
    /// L2 penalty on weights.
    pub l2: f64,
    /// Report every this many examples.
    pub log_every: usize,
    /// Folder for metrics.jsonl, summary.json and the final model.
    pub out: Option<PathBuf>,
}

/// One report line (`metrics.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnlineRecord {
    /// Examples seen so far.
    pub examples: u64,
    /// Updates made so far.
    pub step: u64,
    /// Mean progressive loss over the examples since the last line.
    pub progressive_loss: f64,
    /// Progressive accuracy over the same examples.
    pub progressive_accuracy: f64,
    /// Learning rate.
    pub lr: f64,
    /// Seconds since the start.
    pub seconds: f64,
}

/// Trains on every example of `reader` (named `origin` in errors) once.
pub fn train_online<R: BufRead>(
    cfg: &OnlineConfig,
    reader: R,
    origin: &str,
    obs: &mut dyn Observer,
) -> Result<Vec<OnlineRecord>, TrainError> {
    let invalid = |m: String| TrainError::Invalid(m);
    if cfg.dim == 0 {
        return Err(invalid(
            "--dim: 0 is invalid: a stream needs the number of features (--dim N)".into(),
        ));
    }
    if cfg.labels.len() < 2 {
        return Err(invalid(format!(
            "--labels: {:?} is invalid: expected at least two class labels, e.g. -1,1",
            cfg.labels
        )));
    }
    if cfg.batch_size == 0 || cfg.log_every == 0 {
        return Err(invalid(
            "--batch-size and the report interval must be at least 1 for a stream".into(),
        ));
    }
    let labels = LabelMap::new(&cfg.labels)?;
    let mut spec: ModelSpec = cfg.model.parse()?;
    spec.l2 = spec.l2.max(cfg.l2);
    let mut net =
        Network::<f32>::new(&spec, InputShape::Flat(cfg.dim), cfg.labels.len(), cfg.seed)?;
    let ospec = cfg
        .optimizer
        .parse()
        .map_err(|e: downhill::Error| invalid(format!("--optimizer: {e}")))?;
    let mut method = Method::new(&ospec, &net.optimizer_params())?;
    let Some(opt) = method.optimizer() else {
        return Err(invalid(
            "lbfgs needs the whole data set at once; a stream suits step-wise optimizers".into(),
        ));
    };
    if let Some(out) = &cfg.out {
        if out.join("summary.json").exists() || checkpoint::checkpoints_dir(out).exists() {
            return Err(invalid(format!(
                "{} already holds a run; choose another --out folder",
                out.display()
            )));
        }
        std::fs::create_dir_all(out).map_err(|source| TrainError::Io {
            path: out.clone(),
            source,
        })?;
    }
    let mut stream = LibsvmStream::new(reader, origin, cfg.dim, cfg.zero_based, labels);
    let mut rng = Rng::new(cfg.seed ^ 0x4452_4f50_4f55_5421);
    let mut ex = SparseExample::default();
    let (mut indptr, mut indices, mut values, mut ys) =
        (vec![0usize], Vec::new(), Vec::new(), Vec::new());
    let (mut seen, mut steps) = (0u64, 0u64);
    let (mut block_loss, mut block_correct, mut block_n) = (0.0f64, 0u64, 0u64);
    let mut records = Vec::new();
    let started = Instant::now();
    loop {
        let more = stream.read_into(&mut ex)?;
        if more {
            indices.extend_from_slice(&ex.indices);
            values.extend_from_slice(&ex.values);
            indptr.push(indices.len());
            ys.push(ex.label);
        }
        let full = ys.len() == cfg.batch_size || (!more && !ys.is_empty());
        if full {
            let input = Input::Sparse {
                indptr: &indptr,
                indices: &indices,
                values: &values,
                dim: cfg.dim,
            };
            let st = net.loss_and_grad(input, &ys, &mut rng)?;
            let loss = st.mean_loss();
            // Read-only gradient: the network then keeps clearing only the
            // rows the next sparse batch touched, not the whole first weight.
            let (params, grads) = net.params_and_grads();
            let norm = grad_norm(&[grads], Norm::P(2.0));
            if !loss.is_finite() || !norm.is_finite() {
                return Err(TrainError::Diverged(crate::Divergence {
                    epoch: 1,
                    step: steps + 1,
                    what: format!(
                        "the loss is {loss} and the gradient norm {norm} at line {}",
                        stream.line()
                    ),
                    optimizer: opt.name().into(),
                    lr: opt.lr(0),
                }));
            }
            opt.step_flat(params, grads)?;
            steps += 1;
            seen += ys.len() as u64;
            block_loss += st.loss_sum + st.penalty * st.count as f64;
            block_correct += st.correct as u64;
            block_n += st.count as u64;
            obs.step(0, steps as usize, loss);
            indptr.truncate(1);
            indices.clear();
            values.clear();
            ys.clear();
        }
        if block_n > 0 && (block_n >= cfg.log_every as u64 || !more) {
            let r = OnlineRecord {
                examples: seen,
                step: steps,
                progressive_loss: block_loss / block_n as f64,
                progressive_accuracy: block_correct as f64 / block_n as f64,
                lr: opt.lr(0),
                seconds: started.elapsed().as_secs_f64(),
            };
            obs.message(&format!(
                "{} examples  progressive loss {:.4}  accuracy {:.2}%  {:.1}s",
                r.examples,
                r.progressive_loss,
                100.0 * r.progressive_accuracy,
                r.seconds
            ));
            if let Some(out) = &cfg.out {
                let path = out.join("metrics.jsonl");
                let mut line = serde_json::to_string(&r).expect("serialises");
                line.push('\n');
                append(&path, line.as_bytes()).map_err(|source| TrainError::Io { path, source })?;
            }
            records.push(r);
            (block_loss, block_correct, block_n) = (0.0, 0, 0);
        }
        if !more {
            break;
        }
    }
    if seen == 0 {
        return Err(invalid(format!("{origin}: no examples in the stream")));
    }
    if let Some(out) = &cfg.out {
        let model = checkpoint::model_bytes(net.params(), net.tensors(), &cfg.model)
            .map_err(TrainError::Invalid)?;
        let path = out.join("model.safetensors");
        write_atomic(&path, &model).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        let summary = serde_json::json!({
            "examples": seen, "steps": steps, "model": cfg.model, "optimizer": cfg.optimizer,
            "seconds": started.elapsed().as_secs_f64(), "records": records.len(),
            "last": records.last(),
        });
        let path = out.join("summary.json");
        write_atomic(
            &path,
            serde_json::to_string_pretty(&summary)
                .expect("serialises")
                .as_bytes(),
        )
        .map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        opt.save_state()?
            .write(out, "optimizer")
            .map_err(|source| TrainError::Io {
                path: out.clone(),
                source,
            })?;
    }
    Ok(records)
}
