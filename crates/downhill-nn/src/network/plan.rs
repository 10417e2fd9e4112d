//! The build plan: the layers and the tensor table a model spec describes,
//! checked against the input and classes before anything of the model's size
//! is allocated.

use super::{InputShape, Network, Op, TensorInfo, TensorKind};
use crate::layers::{self, ConvGeom, PoolGeom};
use crate::spec::{Activation, LossKind, ModelKind, ModelSpec};
use crate::transformer::{Geometry, Layout};
use crate::NnError;
use downhill::Real;

/// Collects layers and the tensor table while a network is being built.
#[derive(Default)]
pub(crate) struct Builder {
    pub(super) ops: Vec<(Op, usize)>,
    pub(super) tensors: Vec<TensorInfo>,
    pub(super) n_params: usize,
    dense_count: usize,
    /// The transformer, for a `transformer:` spec (then `ops` is empty).
    pub(super) lm: Option<Layout>,
}

impl Builder {
    /// Appends a tensor to the table; returns its offset.
    /// Sizes saturate at `usize::MAX` rather than wrap: a model too large
    /// for the address space is then refused, not built wrong.
    pub(crate) fn tensor(&mut self, name: String, shape: Vec<usize>, kind: TensorKind) -> usize {
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX);
        let offset = self.n_params;
        self.tensors.push(TensorInfo {
            name,
            shape,
            offset,
            len,
            kind,
        });
        self.n_params = self.n_params.saturating_add(len);
        offset
    }
    /// Appends a dense layer `fcN`.
    fn dense(&mut self, n_in: usize, n_out: usize, act: Activation) {
        self.dense_count += 1;
        let n = self.dense_count;
        let w = self.tensor(
            format!("fc{n}.weight"),
            vec![n_in, n_out],
            TensorKind::Weight,
        );
        let b = self.tensor(format!("fc{n}.bias"), vec![n_out], TensorKind::Bias);
        let fm_in = matches!(
            self.ops.last(),
            Some((Op::Dense { .. } | Op::Dropout { .. }, _))
        );
        self.ops.push((
            Op::Dense {
                n_in,
                n_out,
                act,
                w,
                b,
                fm_in,
            },
            n_out,
        ));
    }
    /// Appends a dropout layer when `p > 0`.
    fn dropout(&mut self, p: f64, n: usize) {
        if p > 0.0 {
            self.ops.push((Op::Dropout { p }, n));
        }
    }
}

pub(super) fn shape_err(spec: &ModelSpec, reason: String) -> NnError {
    NnError::Shape {
        model: spec.to_string(),
        reason,
    }
}

impl<T: Real> Network<T> {
    /// The layers and tensor table of the network, checked against the
    /// input and classes; nothing of the model's size is allocated.
    pub(super) fn plan(
        spec: &ModelSpec,
        input: InputShape,
        classes: usize,
    ) -> Result<Builder, NnError> {
        if input.is_empty() {
            return Err(shape_err(spec, "the input has no values".into()));
        }
        if classes < 2 {
            return Err(shape_err(
                spec,
                format!("need at least 2 classes, got {classes}"),
            ));
        }
        if spec.binary && classes != 2 {
            return Err(shape_err(
                spec,
                format!("`binary` needs exactly 2 classes, got {classes}"),
            ));
        }
        let outputs = if spec.binary { 1 } else { classes };
        let mut bld = Builder::default();
        match &spec.kind {
            &ModelKind::Transformer {
                layers,
                d,
                heads,
                context,
                tied,
            } => {
                if input != InputShape::Flat(context + 1) {
                    return Err(shape_err(
                        spec,
                        format!(
                            "a transformer with context={context} reads windows of {} token ids, got samples of {} values",
                            context + 1,
                            input.len()
                        ),
                    ));
                }
                if spec.binary || spec.loss != LossKind::CrossEntropy {
                    return Err(shape_err(
                        spec,
                        "a transformer predicts tokens with softmax cross-entropy".into(),
                    ));
                }
                let g = Geometry {
                    layers,
                    d,
                    heads,
                    context,
                    vocab: classes,
                    tied,
                };
                bld.lm = Some(Layout::plan(g, &mut bld));
            }
            ModelKind::Logreg => bld.dense(input.len(), outputs, Activation::Identity),
            ModelKind::Mlp { hidden } => {
                let mut prev = input.len();
                for &h in hidden {
                    bld.dense(prev, h, spec.activation);
                    bld.dropout(spec.dropout, h);
                    prev = h;
                }
                bld.dense(prev, outputs, Activation::Identity);
            }
            ModelKind::Cnn {
                channels,
                kernel,
                stride,
                padding,
                pool,
                fc,
            } => {
                let InputShape::Image {
                    channels: c0,
                    height,
                    width,
                } = input
                else {
                    return Err(shape_err(
                        spec,
                        format!(
                            "a cnn needs image input (channels×height×width), got flat vectors of {}",
                            input.len()
                        ),
                    ));
                };
                let (mut c, mut h, mut w) = (c0, height, width);
                let (kh, kw) = *kernel;
                let (ph, pw) = padding.unwrap_or((kh / 2, kw / 2));
                for (i, &c_out) in channels.iter().enumerate() {
                    if h + 2 * ph < kh || w + 2 * pw < kw {
                        return Err(shape_err(
                            spec,
                            format!(
                                "conv{} gets a {h}×{w} map, smaller than its {kh}×{kw} kernel",
                                i + 1
                            ),
                        ));
                    }
                    let g = ConvGeom {
                        c_in: c,
                        h,
                        w,
                        c_out,
                        kh,
                        kw,
                        sh: *stride,
                        sw: *stride,
                        ph,
                        pw,
                        oh: (h + 2 * ph - kh) / stride + 1,
                        ow: (w + 2 * pw - kw) / stride + 1,
                        // One channel: CHW and HWC are the same bytes.
                        in_chw: i == 0 && c > 1,
                    };
                    let wt = bld.tensor(
                        format!("conv{}.weight", i + 1),
                        vec![kh, kw, c, c_out],
                        TensorKind::Weight,
                    );
                    let bt =
                        bld.tensor(format!("conv{}.bias", i + 1), vec![c_out], TensorKind::Bias);
                    (c, h, w) = (c_out, g.oh, g.ow);
                    if h + 2 * pool.padding < pool.window || w + 2 * pool.padding < pool.window {
                        return Err(shape_err(
                            spec,
                            format!(
                                "pool{} gets a {h}×{w} map, smaller than its {1}×{1} window",
                                i + 1,
                                pool.window
                            ),
                        ));
                    }
                    let pg = PoolGeom {
                        c,
                        h,
                        w,
                        win: pool.window,
                        stride: pool.stride,
                        pad: pool.padding,
                        oh: (h + 2 * pool.padding - pool.window) / pool.stride + 1,
                        ow: (w + 2 * pool.padding - pool.window) / pool.stride + 1,
                    };
                    bld.ops.push((
                        Op::ConvPool {
                            g,
                            pg,
                            act: Activation::Relu,
                            w: wt,
                            b: bt,
                            chunk: layers::conv_chunk::<T>(&g),
                        },
                        pg.out_len(),
                    ));
                    (h, w) = (pg.oh, pg.ow);
                }
                // Flatten is free: the NHWC map is already one row per sample.
                let mut prev = c * h * w;
                if *fc > 0 {
                    bld.dense(prev, *fc, spec.activation);
                    bld.dropout(spec.dropout, *fc);
                    prev = *fc;
                }
                bld.dense(prev, outputs, Activation::Identity);
            }
        }
        Ok(bld)
    }
}
