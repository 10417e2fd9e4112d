//! From settings to a network: the input shape, the size check, the
//! epoch order.

use super::TrainError;
use crate::checkpoint;
use crate::config::TrainConfig;
use downhill::Rng;
use downhill_data::{Dataset, Features};
use downhill_nn::{InputShape, ModelSpec, Network};
use std::path::Path;

/// The input shape a data set presents to a network.
pub fn input_shape(d: &Dataset) -> InputShape {
    match d.image() {
        Some(s) => InputShape::Image {
            channels: s.channels,
            height: s.height,
            width: s.width,
        },
        None => InputShape::Flat(d.dim()),
    }
}

/// The network a run's settings describe for its training data, initialised
/// from the run's seed (`l2`, when set, overrides the model spec's).
pub fn build_network(cfg: &TrainConfig, train: &Dataset) -> Result<Network<f32>, TrainError> {
    let mut spec: ModelSpec = cfg.model.parse()?;
    if cfg.l2 > 0.0 {
        spec.l2 = cfg.l2;
    }
    let shape = input_shape(train);
    let is_transformer = matches!(spec.kind, downhill_nn::ModelKind::Transformer { .. });
    if is_transformer && !train.is_text() {
        return Err(TrainError::Invalid(format!(
            "--model `{spec}` is a language model: it trains on text (--data text:FILE or builtin:shakespeare), not on {}",
            cfg.data
        )));
    }
    if !is_transformer && train.is_text() {
        return Err(TrainError::Invalid(format!(
            "--data {} is text, a stream of characters: train a language model on it, e.g. --model transformer:layers=4,d=128,heads=4,context=128",
            cfg.data
        )));
    }
    check_model_fits(&spec, shape, train.classes())?;
    Ok(Network::<f32>::new(
        &spec,
        shape,
        train.classes(),
        cfg.seed,
    )?)
}

/// Refuses, with a message, a model whose parameters (with their gradient and
/// two optimiser buffers) this machine cannot allocate: a LIBSVM file with a
/// feature index of 4·10⁹, or `mlp:100000000000`, must be an error, not an
/// aborted process.
fn check_model_fits(spec: &ModelSpec, input: InputShape, classes: usize) -> Result<(), TrainError> {
    let params =
        Some(Network::<f32>::parameter_count(spec, input, classes)?).filter(|&p| p < usize::MAX);
    let bytes = params.and_then(|p| p.checked_mul(16));
    if bytes.is_some_and(downhill::can_allocate) {
        return Ok(());
    }
    let size = bytes.map_or("beyond the address space".to_string(), |b| {
        format!(
            "{:.1} GiB with gradient and optimizer state",
            b as f64 / (1u64 << 30) as f64
        )
    });
    Err(TrainError::Invalid(format!(
        "--model: `{spec}` on {} input values needs {} parameters ({size}), more than this machine can allocate",
        input.len(),
        params.map_or("too many".to_string(), |p| p.to_string()),
    )))
}

/// The order of the training examples in epoch `epoch`: a permutation that
/// depends only on the seed and the epoch, so a run resumed mid-epoch visits
/// the rest of the epoch in the same order.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order = Vec::with_capacity(n);
    fill_epoch_order(seed, epoch, n, &mut order);
    order
}

/// [`epoch_order`] into `order`, reusing its room (no allocation when it
/// holds `n` already).
pub(crate) fn fill_epoch_order(seed: u64, epoch: usize, n: usize, order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..n);
    Rng::new(seed ^ 0x5348_5546_464c_4521)
        .fork(epoch as u64)
        .shuffle(order);
}

/// Refuses to start a new run in a folder that holds one (a finished run, or
/// a checkpoint to resume), so nothing of it is overwritten. A run killed
/// before its first checkpoint was whole has nothing to resume from: a new
/// run may start there.
pub(crate) fn refuse_existing_run(out: Option<&Path>) -> Result<(), TrainError> {
    if let Some(out) = out {
        if checkpoint::has_checkpoint(out) || out.join("summary.json").exists() {
            return Err(TrainError::Invalid(format!(
                "{} already holds a run; continue it with --resume {}, or choose another --out folder",
                out.display(),
                out.display()
            )));
        }
    }
    Ok(())
}

/// The most distinct features a training batch can hold: the batch size times
/// the most non-zeros of any example (a bound for the lazy step's buffer).
pub(crate) fn max_batch_features(cfg: &TrainConfig, train: &Dataset) -> usize {
    let Features::Sparse(csr) = train.features() else {
        return 0;
    };
    let widest = csr
        .indptr()
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0);
    let batch = match cfg.batch_size {
        0 => train.len(),
        b => b.saturating_mul(cfg.accumulate.max(1)).min(train.len()),
    };
    batch.saturating_mul(widest)
}

pub(crate) fn spec_has_dropout(spec: &ModelSpec) -> bool {
    spec.input_dropout > 0.0 || spec.dropout > 0.0
}

/// Appends `bytes` to `path` and flushes them to disk.
pub(crate) fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()
}
