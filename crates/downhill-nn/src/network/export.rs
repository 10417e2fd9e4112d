//! The parameters in the layout `torch.nn` and `candle_nn` use, for models
//! that travel: `downhill export` writes them, and torch's
//! `load_state_dict` or candle's `VarBuilder` take them as they are.

use super::{Network, Op};
use downhill::Real;

/// One tensor in torch's layout: its name (`fc1.weight`, `conv2.bias`, as
/// downhill names it), its shape and its values, row-major.
pub type TorchTensor<T> = (String, Vec<usize>, Vec<T>);

impl<T: Real> Network<T> {
    /// Every parameter tensor, in the network's order, laid out as
    /// `torch.nn.Linear` and `Conv2d` hold them: dense weights `[out, in]`
    /// (downhill stores `[in, out]`), convolution kernels `[out, in, kh, kw]`
    /// (downhill: `[kh, kw, in, out]`), biases as they are. The first dense
    /// layer after the convolutions reads the last pooled map flattened as
    /// `(c, h, w)`, as `torch.flatten` of an NCHW tensor gives it, where
    /// downhill's engine flattens `(h, w, c)`; its columns are reordered to
    /// match, with the map's true height and width.
    ///
    /// A transformer's tensors keep their names (`blocks.0.attn.qkv.weight`,
    /// …), linear weights `[out, in]`; with `tied=true` the token embedding
    /// is listed again as `head.weight`, as a torch module's state dict lists
    /// a tied weight.
    pub fn torch_layout(&self) -> Vec<TorchTensor<T>> {
        if let Some(lm) = &self.lm {
            return lm.torch_layout(&self.params, &self.tensors);
        }
        let name_at = |offset: usize| {
            self.tensors
                .iter()
                .find(|t| t.offset == offset)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        };
        let p = &self.params;
        let mut out = Vec::with_capacity(self.tensors.len());
        // (c, h, w) of the map the next dense layer reads, after convolutions.
        let mut map: Option<(usize, usize, usize)> = None;
        for layer in &self.layers {
            match &layer.op {
                Op::ConvPool { g, pg, w, b, .. } => {
                    let (kh, kw, ci, co) = (g.kh, g.kw, g.c_in, g.c_out);
                    let mut k = vec![T::zero(); kh * kw * ci * co];
                    for y in 0..kh {
                        for x in 0..kw {
                            for i in 0..ci {
                                for o in 0..co {
                                    k[((o * ci + i) * kh + y) * kw + x] =
                                        p[w + ((y * kw + x) * ci + i) * co + o];
                                }
                            }
                        }
                    }
                    out.push((name_at(*w), vec![co, ci, kh, kw], k));
                    out.push((name_at(*b), vec![co], p[*b..b + co].to_vec()));
                    map = Some((pg.c, pg.oh, pg.ow));
                }
                Op::Dense {
                    n_in, n_out, w, b, ..
                } => {
                    let (ni, no) = (*n_in, *n_out);
                    let mut m = vec![T::zero(); ni * no];
                    // Column `torch_in` of the torch weight reads downhill's
                    // input row `row(torch_in)`.
                    let row = |t: usize| match map {
                        Some((c, h, w)) if c * h * w == ni => {
                            let (ch, rest) = (t / (h * w), t % (h * w));
                            rest * c + ch
                        }
                        _ => t,
                    };
                    for o in 0..no {
                        for t in 0..ni {
                            m[o * ni + t] = p[w + row(t) * no + o];
                        }
                    }
                    out.push((name_at(*w), vec![no, ni], m));
                    out.push((name_at(*b), vec![no], p[*b..b + no].to_vec()));
                    map = None;
                }
                Op::Dropout { .. } => {}
            }
        }
        out
    }
}
