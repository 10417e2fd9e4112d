//! A model trained by `downhill train` in candle: its `model.safetensors`
//! read with each weight turned into candle's (and torch's) layout.
//!
//! downhill's engine stores a dense weight as (in, out) and a convolution
//! kernel as (kh, kw, in, out), and says so in the file's metadata;
//! `candle_nn::Linear` and `torch.nn.Linear` hold (out, in). Names are kept
//! (`fc1.weight`, `fc1.bias`, ...), so the tensors go straight into a
//! `VarBuilder::from_tensors` for layers named the same way.

use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// The layout `downhill train` records in its model files' metadata.
pub const DOWNHILL_LAYOUT: &str = "dense weights [in, out]; conv weights [kh, kw, in, out]";

fn msg(s: String) -> candle_core::Error {
    candle_core::Error::Msg(s)
}

/// Reads a `model.safetensors` written by `downhill train` (or its
/// `init.safetensors`) onto `device`, every dense weight transposed to
/// (out, in), ready for `VarBuilder::from_tensors`. A file without
/// downhill's layout in its metadata is refused (its layout is unknown),
/// and so, for now, is a convolutional model: its first dense layer reads
/// the feature map in downhill's (h, w, c) order, and reordering its rows
/// for candle's (c, h, w) needs the map's geometry.
pub fn load_downhill_model(
    path: impl AsRef<Path>,
    device: &Device,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| msg(format!("{}: {e}", path.display())))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| msg(format!("{}: {e}", path.display())))?;
    let info = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("downhill"))
        .ok_or_else(|| {
            msg(format!(
                "{}: no `downhill` metadata: not a model downhill train wrote",
                path.display()
            ))
        })?;
    let info: serde_json::Value = serde_json::from_str(info)
        .map_err(|e| msg(format!("{}: downhill metadata: {e}", path.display())))?;
    let layout = info.get("layout").and_then(|l| l.as_str()).unwrap_or("");
    if layout != DOWNHILL_LAYOUT {
        return Err(msg(format!(
            "{}: layout `{layout}`, expected `{DOWNHILL_LAYOUT}`",
            path.display()
        )));
    }
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| msg(format!("{}: {e}", path.display())))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(msg(format!(
                "{}: {name} is {:?}, expected F32",
                path.display(),
                view.dtype()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let t = Tensor::from_vec(values, view.shape(), &Device::Cpu)?;
        let t = match view.shape().len() {
            2 => t.t()?.contiguous()?,
            // A kernel alone would permute to (out, in, kh, kw), but the
            // dense layer after it reads downhill's NHWC feature map
            // flattened as (h, w, c), where candle's NCHW flattens as
            // (c, h, w): its rows would need the map's geometry to reorder.
            4 => {
                return Err(msg(format!(
                    "{}: {name} is a convolution kernel; convolutional models are not supported yet (downhill flattens feature maps as (h, w, c), candle as (c, h, w))",
                    path.display()
                )))
            }
            _ => t,
        };
        out.insert(name, t.to_device(device)?);
    }
    Ok(out)
}
