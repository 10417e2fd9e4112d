//! `downhill export`: a trained model in the layout and names `torch.nn` and
//! `candle_nn` use, so that torch's `load_state_dict` and candle's
//! `VarBuilder::from_mmaped_safetensors` take it as it is.
//!
//! | downhill tensor | exported as |
//! |---|---|
//! | `fcN.weight` `[in, out]` | `fcN.weight` `[out, in]` (`nn.Linear`) |
//! | `convN.weight` `[kh, kw, in, out]` | `convN.weight` `[out, in, kh, kw]` (`nn.Conv2d`) |
//! | `fcN.bias`, `convN.bias` | unchanged |
//! | the first `fc` after the convolutions | columns reordered from downhill's `(h, w, c)` flattening to torch's `(c, h, w)` |
//!
//! The layers keep downhill's names (`conv1`, `conv2`, …, `fc1`, `fc2`, …),
//! numbered in order, so a torch or candle model with the same layers under
//! those names loads the file directly.

use crate::checkpoint;
use crate::trainer::{build_network, TrainError};
use downhill::state::write_atomic;
use safetensors::tensor::{Dtype, TensorView};
use std::path::Path;

/// The `format` the export's metadata records.
pub const EXPORT_FORMAT: &str = "downhill-export/1";

/// Writes the newest valid checkpoint of the run in `run` to `out` as a
/// safetensors file in torch's layout (see the module docs), atomically.
/// The run's data set is read again to know the input's shape. Returns the
/// exported tensors' names and shapes.
pub fn export_torch(run: &Path, out: &Path) -> Result<Vec<(String, Vec<usize>)>, TrainError> {
    let (_, state, _) = checkpoint::latest_trainer_state(run)?;
    let cfg = state.config;
    let data = downhill_data::load(&cfg.data, &cfg.load_options()?)?;
    let mut net = build_network(&cfg, &data.train)?;
    let (_, ckpt, _) = checkpoint::latest(run, net.tensors())?;
    net.params_mut().copy_from_slice(&ckpt.params);
    let tensors = net.torch_layout();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| TrainError::Invalid(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let info = serde_json::json!({
        "format": EXPORT_FORMAT,
        "model": cfg.model,
        "layout": "torch: dense weights [out, in]; conv weights [out, in, kh, kw]",
    });
    let meta: std::collections::HashMap<String, String> =
        [("downhill".to_string(), info.to_string())]
            .into_iter()
            .collect();
    let file = safetensors::serialize(views, &Some(meta))
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", out.display())))?;
    write_atomic(out, &file).map_err(|e| TrainError::Invalid(format!("{}: {e}", out.display())))?;
    Ok(tensors.into_iter().map(|(n, s, _)| (n, s)).collect())
}
