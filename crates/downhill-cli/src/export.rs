//! `downhill export`: a trained model for torch and candle.

use crate::UserError;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `downhill export`.
#[derive(Args, Debug)]
#[command(after_help = "\
Writes the newest valid checkpoint of a `downhill train` run as one
safetensors file in the layout and names torch.nn and candle_nn use: dense
weights [out, in], convolution kernels [out, in, kh, kw], biases as they are,
and the first dense layer after the convolutions reading the map flattened
as (c, h, w). Layers keep downhill's names (conv1, …, fc1, …). The run's data
set is read again to know the input's shape.

Examples:
  downhill export --run runs/mlp --out mlp.safetensors
  python3 -c \"import torch, safetensors.torch as st; model.load_state_dict(st.load_file('mlp.safetensors'))\"")]
pub struct ExportArgs {
    /// The run's output folder (what `downhill train --out` wrote)
    #[arg(long)]
    run: PathBuf,
    /// The file to write (must not exist)
    #[arg(long)]
    out: PathBuf,
}

/// Runs `downhill export`.
pub fn run(a: ExportArgs) -> Result<(), UserError> {
    if a.out.exists() {
        return Err(UserError(format!(
            "--out {}: the file exists; export does not overwrite",
            a.out.display()
        )));
    }
    let tensors = downhill_train::export::export_torch(&a.run, &a.out)?;
    println!(
        "{}: {} tensors in torch's layout",
        a.out.display(),
        tensors.len()
    );
    for (name, shape) in tensors {
        println!("  {name} {shape:?}");
    }
    Ok(())
}
