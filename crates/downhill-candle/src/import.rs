//! A model trained by `downhill train` in candle: its `model.safetensors`
//! read with each weight turned into candle's (and torch's) layout.
//!
//! downhill's engine stores a dense weight as (in, out) and a convolution
//! kernel as (kh, kw, in, out), and says so in the file's metadata;
//! `candle_nn::Linear` and `torch.nn.Linear` hold (out, in), `Conv2d`
//! (out, in, kh, kw). Names are kept (`conv1.weight`, `fc1.bias`, ...), so
//! the tensors go straight into a `VarBuilder::from_tensors` for layers
//! named the same way.

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
/// `init.safetensors`) onto `device` in candle's layout, ready for
/// `VarBuilder::from_tensors`: dense weights (out, in), convolution kernels
/// (out, in, kh, kw), and the first dense layer after the convolutions
/// reordered to read candle's NCHW feature map flattened as (c, h, w)
/// instead of downhill's (h, w, c) (the map must be square, as every image
/// data set downhill reads gives; its side is told from the layer's size).
/// A file without downhill's layout in its metadata is refused.
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
    let mut views = st.tensors();
    views.sort_by(|a, b| crate::natural_cmp(&a.0, &b.0));
    // The channels of the last convolution, whose feature map the first
    // dense layer reads.
    let channels = views
        .iter()
        .rfind(|(_, v)| v.shape().len() == 4)
        .map(|(_, v)| v.shape()[3]);
    let first_dense = views
        .iter()
        .find(|(_, v)| v.shape().len() == 2)
        .map(|(n, _)| n.clone());
    let mut out = HashMap::new();
    for (name, view) in views {
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
        let t = match (view.shape().len(), channels) {
            // The first dense layer after convolutions reads downhill's
            // (h, w, c) feature map; candle flattens NCHW as (c, h, w).
            (2, Some(c)) if first_dense.as_deref() == Some(name.as_str()) => {
                let (n_in, n_out) = (view.shape()[0], view.shape()[1]);
                let side = square_side(n_in, c).ok_or_else(|| {
                    msg(format!(
                        "{}: {name} reads {n_in} values from {c} channels, not a square feature map; its (h, w) cannot be told from the file",
                        path.display()
                    ))
                })?;
                t.reshape((side, side, c, n_out))?
                    .permute((3, 2, 0, 1))?
                    .reshape((n_out, n_in))?
            }
            (2, _) => t.t()?.contiguous()?,
            (4, _) => t.permute((3, 2, 0, 1))?.contiguous()?,
            _ => t,
        };
        out.insert(name, t.to_device(device)?);
    }
    Ok(out)
}

/// The side of a square map of `c` channels holding `n` values.
fn square_side(n: usize, c: usize) -> Option<usize> {
    if c == 0 || !n.is_multiple_of(c) {
        return None;
    }
    let area = n / c;
    let side = (area as f64).sqrt().round() as usize;
    (side * side == area).then_some(side)
}
