//! [`Network`]: layers over one flat parameter buffer, with forward and backward passes.

use crate::layers::{self, ConvGeom, Csr, PoolGeom};
use crate::spec::{Activation, Init, LossKind, ModelKind, ModelSpec};
use crate::NnError;
use downhill::linalg::{gemm, Mat, Par, SHAPES_CHECKED};
use downhill::optim::{Param, Role};
use downhill::{Real, Rng};

/// The shape of one input sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputShape {
    /// A feature vector of this length (dense or sparse).
    Flat(usize),
    /// An image stored channel-major (CHW): all of channel 0 row by row, then channel 1, …
    Image {
        /// Channels (1 for grey-scale, 3 for RGB).
        channels: usize,
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
    },
}

impl InputShape {
    /// Values per sample.
    pub fn len(&self) -> usize {
        match *self {
            InputShape::Flat(d) => d,
            InputShape::Image {
                channels,
                height,
                width,
            } => channels * height * width,
        }
    }
    /// Whether a sample has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch of samples, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a, T> {
    /// `rows` samples of `dim` values, row-major (`values.len() == rows · dim`).
    Dense {
        /// Sample-major values.
        values: &'a [T],
        /// Number of samples.
        rows: usize,
        /// Values per sample (must equal the network's input length).
        dim: usize,
    },
    /// Compressed sparse rows. There are `indptr.len() − 1` samples; sample `r`'s
    /// non-zeros are at positions `indptr[r]..indptr[r + 1]` of `indices` and
    /// `values`. `indptr` need not start at 0, so a contiguous batch can be passed
    /// as a sub-slice of a whole data set's `indptr` with the whole `indices` and
    /// `values`, without copying. Indices within a row may repeat (they add up).
    Sparse {
        /// Row boundaries, non-decreasing.
        indptr: &'a [usize],
        /// Feature index of each non-zero, `< dim`.
        indices: &'a [u32],
        /// Value of each non-zero.
        values: &'a [T],
        /// Number of features (must equal the network's input length).
        dim: usize,
    },
}

impl<T> Input<'_, T> {
    /// Number of samples in the batch.
    pub fn rows(&self) -> usize {
        match self {
            Input::Dense { rows, .. } => *rows,
            Input::Sparse { indptr, .. } => indptr.len().saturating_sub(1),
        }
    }
}

/// Whether a tensor is a weight (penalised by L2) or a bias (not penalised).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Multiplicative weights.
    Weight,
    /// Additive biases.
    Bias,
}

/// Where one named tensor lives in the flat parameter (and gradient) buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// PyTorch-like name, e.g. `fc1.weight`, `conv2.bias`.
    pub name: String,
    /// Logical shape, row-major. Dense weights are `[in, out]` (row `r` holds input
    /// feature `r`'s outgoing weights, so a sparse input gives a row-sparse
    /// gradient); convolution weights are `[kh, kw, in, out]`; biases `[out]`.
    pub shape: Vec<usize>,
    /// First element in [`Network::params`].
    pub offset: usize,
    /// Number of elements (the product of `shape`).
    pub len: usize,
    /// Weight or bias.
    pub kind: TensorKind,
}

impl TensorInfo {
    /// The element range of this tensor in the flat buffers.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// Totals over one batch. The mean objective is `loss_sum / count + penalty`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// Sum over samples of the per-sample loss (without the L2 penalty).
    pub loss_sum: f64,
    /// Samples whose prediction equals the label.
    pub correct: usize,
    /// Samples in the batch.
    pub count: usize,
    /// The L2 penalty λ/2·‖W‖² at the parameters used (0 without `l2`).
    pub penalty: f64,
}

impl BatchStats {
    /// Mean per-sample loss plus the penalty (NaN for an empty total).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.count as f64 + self.penalty
    }
    /// Fraction of samples predicted correctly.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count as f64
    }
    /// Adds another batch's totals (for an epoch); the penalty is kept from `other`,
    /// the latest, since it describes parameters rather than samples.
    pub fn merge(&mut self, other: BatchStats) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.count += other.count;
        self.penalty = other.penalty;
    }
}

/// A row-sparse gradient and the parameters, borrowed together from a
/// [`Network`] for a lazy optimiser step ([`Network::row_sparse_grads`]).
///
/// The first weight (`fc1.weight`, `[n_in, n_out]`, tensor 0) has a non-zero
/// gradient only in `rows`; it is lent read-only so that it stays that way
/// (the network relies on it to clear only those rows on the next sparse
/// batch). The other tensors' gradients follow in `rest`, in tensor order.
#[derive(Debug)]
pub struct RowSparseGrads<'a, T> {
    /// Every parameter, tensor after tensor (the first weight is the first
    /// `first.len()` elements).
    pub params: &'a mut [T],
    /// The first weight's gradient: zero outside `rows`.
    pub first: &'a [T],
    /// Rows of the first weight the last batch touched: sorted, distinct.
    pub rows: &'a [u32],
    /// Elements per row of the first weight (its layer's outputs).
    pub row_len: usize,
    /// The gradient of every tensor after the first weight, in order.
    pub rest: &'a mut [T],
}

/// Checks that `rows` is strictly increasing, within the `[n_in, row_len]`
/// gradient `g`, and names every row of `g` that is not all zero.
fn check_row_sparse<T: Real>(g: &[T], row_len: usize, rows: &[u32]) -> Result<(), NnError> {
    let n_rows = g.len() / row_len.max(1);
    if let Some(w) = rows.windows(2).find(|w| w[0] >= w[1]) {
        return Err(NnError::Batch(format!(
            "gradient rows must be strictly increasing, found {} then {}",
            w[0], w[1]
        )));
    }
    if let Some(&r) = rows.last().filter(|&&r| r as usize >= n_rows) {
        return Err(NnError::Batch(format!(
            "gradient row {r} is out of range for {n_rows} rows"
        )));
    }
    let mut listed = rows.iter().peekable();
    for (r, row) in g.chunks_exact(row_len.max(1)).enumerate() {
        if listed.peek().is_some_and(|&&l| l as usize == r) {
            listed.next();
        } else if row.iter().any(|&v| v != T::zero()) {
            return Err(NnError::Batch(format!(
                "gradient row {r} is non-zero but not among the listed rows"
            )));
        }
    }
    Ok(())
}

/// What a layer computes; parameter positions are offsets into the flat buffer.
#[derive(Clone, Debug)]
enum Op {
    /// `y = act(x·W + b)`, W `[n_in, n_out]`. The output is feature-major
    /// (`[n_out, rows]`): measured faster for the products with a batch of 128
    /// than sample-major. The input is feature-major when `fm_in` (after another
    /// dense or dropout layer), else sample-major (network input, conv maps).
    Dense {
        n_in: usize,
        n_out: usize,
        act: Activation,
        w: usize,
        b: usize,
        fm_in: bool,
    },
    /// `y = pool(act(im2col(x)·W + b))`, NHWC, computed `chunk` samples at a time;
    /// the unpooled map exists only per chunk, in cache.
    ConvPool {
        g: ConvGeom,
        pg: PoolGeom,
        act: Activation,
        w: usize,
        b: usize,
        chunk: usize,
    },
    /// Inverted dropout: kept values are scaled by 1/(1−p) so evaluation is the identity.
    Dropout { p: f64 },
}

/// One layer: its operation and its buffers (sized for `cap` samples; `aux` for
/// `train_cap`).
#[derive(Debug)]
struct Layer<T> {
    op: Op,
    /// Output values per sample.
    out_len: usize,
    /// Output activations, `[cap, out_len]`.
    out: Vec<T>,
    /// Dropout: the scaled mask.
    aux: Vec<T>,
    /// Max-pool: winning pixel per output.
    arg: Vec<u32>,
}

impl<T: Real> Layer<T> {
    fn new(op: Op, out_len: usize) -> Self {
        Layer {
            op,
            out_len,
            out: Vec::new(),
            aux: Vec::new(),
            arg: Vec::new(),
        }
    }
    fn aux_len(&self) -> usize {
        match &self.op {
            Op::Dropout { .. } => self.out_len,
            _ => 0,
        }
    }
}

/// The input of a layer: the batch itself, a dropped-out copy of it, or the
/// previous layer's output.
#[derive(Clone, Copy)]
enum Src<'a, T> {
    Dense(&'a [T]),
    Sparse(Csr<'a, T>),
}

/// A feed-forward network with its parameters, gradients and every work buffer.
///
/// All parameters live in one flat buffer ([`params`](Self::params)), described
/// by [`tensors`](Self::tensors) in order; gradients mirror it. Buffers grow to
/// the largest batch seen and are then reused: a step allocates nothing in this
/// crate (the matrix-product backend allocates its small packing buffers per call;
/// see the crate docs).
#[derive(Debug)]
pub struct Network<T: Real> {
    spec: ModelSpec,
    input: InputShape,
    classes: usize,
    outputs: usize,
    layers: Vec<Layer<T>>,
    params: Vec<T>,
    grads: Vec<T>,
    tensors: Vec<TensorInfo>,
    /// Batch size the forward buffers are sized for.
    cap: usize,
    /// Batch size the training-only buffers are sized for.
    train_cap: usize,
    /// Input after input dropout (dense values or the batch's non-zeros).
    in_buf: Vec<T>,
    /// Ping-pong gradients with respect to activations.
    gbuf: [Vec<T>; 2],
    /// Per-thread im2col buffers.
    scratch: layers::ConvScratch<T>,
    /// Per-chunk convolution weight and bias gradients, summed in chunk order.
    dw_part: Vec<T>,
    db_part: Vec<T>,
    /// Outputs and their gradient, sample-major, for the loss and `logits`.
    zbuf: Vec<T>,
    dzbuf: Vec<T>,
    /// Rows of the first weight touched by the last sparse batch, sorted.
    touched: Vec<u32>,
    /// Whether `touched` describes the last gradient (sparse batch, no L2).
    touched_valid: bool,
    /// Whether the first weight's gradient is zero outside `touched` rows.
    first_grad_clean: bool,
    /// One bit per feature, set while a batch's features are collected
    /// (all clear between batches).
    row_bits: Vec<u64>,
}

/// Collects layers and the tensor table while a network is being built.
#[derive(Default)]
struct Builder {
    ops: Vec<(Op, usize)>,
    tensors: Vec<TensorInfo>,
    n_params: usize,
    dense_count: usize,
}

impl Builder {
    /// Appends a tensor to the table; returns its offset.
    /// Sizes saturate at `usize::MAX` rather than wrap: a model too large
    /// for the address space is then refused, not built wrong.
    fn tensor(&mut self, name: String, shape: Vec<usize>, kind: TensorKind) -> usize {
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

/// `x` as `f64` (named to avoid `num_traits`' fallible `to_f64`).
#[inline]
fn f<T: Real>(x: T) -> f64 {
    Real::to_f64(x)
}

fn shape_err(spec: &ModelSpec, reason: String) -> NnError {
    NnError::Shape {
        model: spec.to_string(),
        reason,
    }
}

impl<T: Real> Network<T> {
    /// Builds the network described by `spec` for samples of shape `input` and
    /// `classes` classes, initialised from `seed` (see [`Init`]; biases start at
    /// zero). The same spec, shape and seed always give the same parameters.
    pub fn new(
        spec: &ModelSpec,
        input: InputShape,
        classes: usize,
        seed: u64,
    ) -> Result<Self, NnError> {
        let bld = Self::plan(spec, input, classes)?;
        let mut net = Network {
            spec: spec.clone(),
            input,
            classes,
            outputs: if spec.binary { 1 } else { classes },
            layers: bld
                .ops
                .into_iter()
                .map(|(op, n)| Layer::new(op, n))
                .collect(),
            params: vec![T::zero(); bld.n_params],
            grads: vec![T::zero(); bld.n_params],
            tensors: bld.tensors,
            cap: 0,
            train_cap: 0,
            in_buf: Vec::new(),
            gbuf: [Vec::new(), Vec::new()],
            scratch: layers::ConvScratch::default(),
            dw_part: Vec::new(),
            db_part: Vec::new(),
            zbuf: Vec::new(),
            dzbuf: Vec::new(),
            touched: Vec::new(),
            touched_valid: false,
            first_grad_clean: true,
            row_bits: Vec::new(),
        };
        net.init(seed);
        Ok(net)
    }

    /// How many parameters [`Network::new`] would allocate for this spec,
    /// input and class count (`usize::MAX` when beyond the address space),
    /// without allocating them, so a caller can refuse a model that does not
    /// fit in memory. Errors as `new` does for a model that does not fit the
    /// data.
    pub fn parameter_count(
        spec: &ModelSpec,
        input: InputShape,
        classes: usize,
    ) -> Result<usize, NnError> {
        Ok(Self::plan(spec, input, classes)?.n_params)
    }

    /// The layers and tensor table of the network, checked against the
    /// input and classes; nothing of the model's size is allocated.
    fn plan(spec: &ModelSpec, input: InputShape, classes: usize) -> Result<Builder, NnError> {
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

    /// Re-initialises every parameter from `seed` exactly as [`Network::new`] does.
    pub fn init(&mut self, seed: u64) {
        let mut rng = Rng::new(seed);
        self.params.fill(T::zero());
        for layer in &self.layers {
            let (w, len, fan_in, fan_out, act) = match &layer.op {
                Op::Dense {
                    n_in,
                    n_out,
                    act,
                    w,
                    ..
                } => (*w, n_in * n_out, *n_in, *n_out, *act),
                Op::ConvPool { g, act, w, .. } => {
                    (*w, g.k() * g.c_out, g.k(), g.kh * g.kw * g.c_out, *act)
                }
                _ => continue,
            };
            let scheme = self.spec.init.unwrap_or(if act == Activation::Relu {
                Init::He
            } else {
                Init::Glorot
            });
            let limit = match scheme {
                Init::He => (6.0 / fan_in as f64).sqrt(),
                Init::Glorot => (6.0 / (fan_in + fan_out) as f64).sqrt(),
            };
            for p in &mut self.params[w..w + len] {
                *p = T::from_f64((2.0 * rng.uniform() - 1.0) * limit);
            }
        }
    }

    /// The spec this network was built from.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    /// The per-sample input shape.
    pub fn input_shape(&self) -> InputShape {
        self.input
    }
    /// Number of classes labels range over.
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// Output units per sample (`classes`, or 1 for `binary` models).
    pub fn outputs(&self) -> usize {
        self.outputs
    }
    /// All parameters, tensor after tensor as listed by [`tensors`](Self::tensors).
    pub fn params(&self) -> &[T] {
        &self.params
    }
    /// Mutable parameters, for the optimiser's in-place step.
    pub fn params_mut(&mut self) -> &mut [T] {
        &mut self.params
    }
    /// Exchanges the parameters with `other` (the same length), without
    /// copying: how a trainer evaluates the model at another point (a
    /// schedule-free average) and then puts the training point back with
    /// every bit as it was.
    pub fn swap_params(&mut self, other: &mut Vec<T>) -> Result<(), NnError> {
        if other.len() != self.params.len() {
            return Err(NnError::Batch(format!(
                "swap_params: {} values for {} parameters",
                other.len(),
                self.params.len()
            )));
        }
        std::mem::swap(&mut self.params, other);
        Ok(())
    }
    /// Gradient of the last [`loss_and_grad`](Self::loss_and_grad), same layout as `params`.
    pub fn grads(&self) -> &[T] {
        &self.grads
    }
    /// Parameters (read) and gradients (read) together, for an optimiser that
    /// wants both while holding the network mutably.
    pub fn params_and_grads(&mut self) -> (&mut [T], &[T]) {
        (&mut self.params, &self.grads)
    }

    /// Mutable parameters and mutable gradient together, for clipping the
    /// gradient in place before a step.
    ///
    /// The caller may write anywhere in the gradient, so afterwards
    /// [`touched_rows`](Self::touched_rows) is `None` and the next sparse batch
    /// clears the whole first-weight gradient instead of only the rows it last
    /// touched (one pass over that tensor). To replace the gradient and keep it
    /// row-sparse, use [`set_grads`](Self::set_grads); to clip or step a
    /// row-sparse gradient, [`row_sparse_grads`](Self::row_sparse_grads).
    pub fn params_and_grads_mut(&mut self) -> (&mut [T], &mut [T]) {
        self.first_grad_clean = false;
        self.touched_valid = false;
        (&mut self.params, &mut self.grads)
    }

    /// Replaces the gradient, e.g. with one averaged over the chunks of a
    /// batch too large to run at once. `rows` declares the gradient row-sparse:
    /// the rows of the first weight (`fc1.weight`, one row per input feature)
    /// that may be non-zero, strictly increasing; every other row of that
    /// tensor must be exactly zero, and [`touched_rows`](Self::touched_rows)
    /// then returns `rows`. `None` declares nothing.
    ///
    /// Errors (and changes nothing) when `grads` has the wrong length, when
    /// `rows` is given for a network whose first layer is not dense, is not
    /// strictly increasing, is out of range, or leaves out a non-zero row.
    pub fn set_grads(&mut self, grads: &[T], rows: Option<&[u32]>) -> Result<(), NnError> {
        if grads.len() != self.grads.len() {
            return Err(NnError::Batch(format!(
                "the gradient has {} elements, the network {}",
                grads.len(),
                self.grads.len()
            )));
        }
        if let Some(rows) = rows {
            let Some((n_in, n_out)) = self.first_dense() else {
                return Err(NnError::Batch(format!(
                    "row-sparse gradient rows need a first dense layer; `{}` starts with a convolution",
                    self.spec
                )));
            };
            check_row_sparse(&grads[..n_in * n_out], n_out, rows)?;
        }
        self.grads.copy_from_slice(grads);
        match rows {
            Some(rows) => {
                self.touched.clear();
                self.touched.extend_from_slice(rows);
                self.first_grad_clean = true;
                self.touched_valid = true;
            }
            None => {
                self.first_grad_clean = false;
                self.touched_valid = false;
            }
        }
        Ok(())
    }

    /// The gradient split for a lazy row-sparse optimiser step, when it is
    /// row-sparse (after a sparse batch without an L2 penalty, or
    /// [`set_grads`](Self::set_grads) with rows; `None` otherwise): the first
    /// weight's gradient read-only with its touched rows, so it stays zero
    /// outside them, and every later tensor's gradient mutable (for clipping),
    /// with the parameters mutable.
    pub fn row_sparse_grads(&mut self) -> Option<RowSparseGrads<'_, T>> {
        if !self.touched_valid {
            return None;
        }
        let (n_in, n_out) = self.first_dense()?;
        let (first, rest) = self.grads.split_at_mut(n_in * n_out);
        Some(RowSparseGrads {
            params: &mut self.params,
            first,
            rows: &self.touched,
            row_len: n_out,
            rest,
        })
    }

    /// `(n_in, n_out)` of the first layer when it is dense (its weight is then
    /// tensor 0, at offset 0).
    fn first_dense(&self) -> Option<(usize, usize)> {
        match self.layers.first()?.op {
            Op::Dense { n_in, n_out, w, .. } => {
                debug_assert_eq!(w, 0);
                Some((n_in, n_out))
            }
            _ => None,
        }
    }
    /// The layout of the flat buffers, in order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Every tensor as an optimiser sees it: its shape, its role and its
    /// layout. Biases are [`Role::Bias`], convolution kernels
    /// [`Role::Conv`]; of the dense weights the first is [`Role::Input`]
    /// (unless a convolution reads the input), the last [`Role::Output`] and
    /// the others [`Role::Hidden`]; a single dense weight (logistic
    /// regression) is the output layer. Weights are marked
    /// [`Param::transposed`]: this engine stores them fan-in first.
    pub fn optimizer_params(&self) -> Vec<Param> {
        let dense: Vec<usize> = (0..self.tensors.len())
            .filter(|&i| {
                self.tensors[i].kind == TensorKind::Weight && self.tensors[i].shape.len() == 2
            })
            .collect();
        let has_conv = self
            .tensors
            .iter()
            .any(|t| t.kind == TensorKind::Weight && t.shape.len() == 4);
        self.tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let role = match t.kind {
                    TensorKind::Bias => Role::Bias,
                    TensorKind::Weight if t.shape.len() == 4 => Role::Conv,
                    TensorKind::Weight if dense.last() == Some(&i) => Role::Output,
                    TensorKind::Weight if dense.first() == Some(&i) && !has_conv => Role::Input,
                    TensorKind::Weight => Role::Hidden,
                };
                let p = Param::new(t.shape.clone(), role);
                if t.kind == TensorKind::Weight {
                    p.stored_transposed()
                } else {
                    p
                }
            })
            .collect()
    }
    /// The L2 penalty strength λ.
    pub fn l2(&self) -> f64 {
        self.spec.l2
    }
    /// Changes the L2 penalty strength λ (≥ 0, finite).
    pub fn set_l2(&mut self, l2: f64) -> Result<(), NnError> {
        if !(l2 >= 0.0 && l2.is_finite()) {
            return Err(NnError::Spec {
                token: format!("l2={l2}"),
                expected: "a finite λ >= 0".into(),
            });
        }
        self.spec.l2 = l2;
        Ok(())
    }

    /// For a sparse batch: the rows of the first weight tensor (features) that the
    /// last [`loss_and_grad`](Self::loss_and_grad) touched, sorted, without
    /// duplicates. Every other row of that tensor's gradient is exactly zero, so an
    /// optimiser may update those rows lazily. `None` after a dense batch, and when
    /// an L2 penalty is set (its gradient λW is dense), and after
    /// [`params_and_grads_mut`](Self::params_and_grads_mut); the rows given to
    /// [`set_grads`](Self::set_grads) after that. A feature whose value is zero
    /// (stored as such, or dropped by input dropout) still counts as touched:
    /// its row's gradient is then zero.
    pub fn touched_rows(&self) -> Option<&[u32]> {
        self.touched_valid.then_some(&self.touched[..])
    }

    /// Checks a batch against the network; returns the number of samples.
    fn validate(&self, x: &Input<'_, T>, labels: Option<&[u32]>) -> Result<usize, NnError> {
        let want = self.input.len();
        let rows = match *x {
            Input::Dense { values, rows, dim } => {
                if dim != want {
                    return Err(NnError::Batch(format!(
                        "dim is {dim}, the network expects {want}"
                    )));
                }
                // Checked: a wrapped product could match a short slice and
                // size every buffer of the step from the wrong row count.
                if rows.checked_mul(dim) != Some(values.len()) {
                    return Err(NnError::Batch(format!(
                        "values has {} elements, expected rows·dim = {rows}·{dim}",
                        values.len(),
                    )));
                }
                rows
            }
            Input::Sparse {
                indptr,
                indices,
                values,
                dim,
            } => {
                if !matches!(self.layers[0].op, Op::Dense { .. }) {
                    return Err(NnError::Batch(format!(
                        "sparse input needs a first dense layer; `{}` starts with a convolution",
                        self.spec
                    )));
                }
                if dim != want {
                    return Err(NnError::Batch(format!(
                        "dim is {dim}, the network expects {want}"
                    )));
                }
                if indptr.is_empty() {
                    return Err(NnError::Batch(
                        "indptr is empty; it needs rows + 1 entries".into(),
                    ));
                }
                if indptr.windows(2).any(|w| w[1] < w[0]) {
                    return Err(NnError::Batch("indptr must be non-decreasing".into()));
                }
                let end = indptr[indptr.len() - 1];
                if end > indices.len() || end > values.len() {
                    return Err(NnError::Batch(format!(
                        "indptr ends at {end}, but indices has {} and values {} elements",
                        indices.len(),
                        values.len()
                    )));
                }
                if let Some(&j) = indices[indptr[0]..end].iter().find(|&&j| j as usize >= dim) {
                    return Err(NnError::Batch(format!(
                        "feature index {j} is out of range for dim {dim}"
                    )));
                }
                indptr.len() - 1
            }
        };
        if rows == 0 {
            return Err(NnError::Batch("the batch has no samples".into()));
        }
        if let Some(labels) = labels {
            if labels.len() != rows {
                return Err(NnError::Batch(format!(
                    "{} labels for {rows} samples",
                    labels.len()
                )));
            }
            if let Some(&l) = labels.iter().find(|&&l| l as usize >= self.classes) {
                return Err(NnError::Batch(format!(
                    "label {l} is out of range for {} classes",
                    self.classes
                )));
            }
        }
        Ok(rows)
    }

    /// Grows every buffer to hold `rows` samples (and `nnz` sparse input values).
    fn reserve(&mut self, rows: usize, nnz: usize, input_dropout: bool) {
        if input_dropout {
            let need = match self.input {
                _ if nnz > 0 => nnz,
                s => rows * s.len(),
            };
            if self.in_buf.len() < need {
                self.in_buf.resize(need, T::zero());
            }
        }
        if rows <= self.cap && self.scratch.fits_pool() {
            return;
        }
        let rows = rows.max(self.cap);
        self.cap = rows;
        let (mut col, mut z) = (0, 0);
        for layer in self.layers.iter_mut() {
            layer.out.resize(rows * layer.out_len, T::zero());
            if let Op::ConvPool { g, chunk, .. } = &layer.op {
                layer.arg.resize(rows * layer.out_len, 0);
                col = col.max((*chunk).min(rows) * g.positions() * g.k());
                z = z.max((*chunk).min(rows) * g.positions() * g.c_out);
            }
        }
        self.scratch.reserve(col, z);
        self.zbuf.resize(rows * self.outputs, T::zero());
    }

    /// Grows the buffers only training needs (gradients, dropout masks) to `rows`
    /// samples, so that evaluating a large batch does not allocate them.
    fn reserve_training(&mut self, rows: usize) {
        if rows <= self.train_cap {
            return;
        }
        self.train_cap = rows;
        let mut gmax = 0;
        let (mut dw_part, mut db_part) = (0, 0);
        for layer in self.layers.iter_mut() {
            let aux = layer.aux_len();
            layer.aux.resize(rows * aux, T::zero());
            gmax = gmax.max(layer.out_len);
            if let Op::ConvPool { g, chunk, .. } = &layer.op {
                let chunks = rows.div_ceil(*chunk);
                dw_part = dw_part.max(chunks * g.k() * g.c_out);
                db_part = db_part.max(chunks * g.c_out);
            }
        }
        for g in &mut self.gbuf {
            g.resize(rows * gmax, T::zero());
        }
        self.dw_part.resize(dw_part, T::zero());
        self.db_part.resize(db_part, T::zero());
        self.dzbuf.resize(rows * self.outputs, T::zero());
    }

    /// Runs every layer forward; dropout (input and hidden) only when `rng` is given.
    fn forward(&mut self, x: &Input<'_, T>, rows: usize, mut rng: Option<&mut Rng>) {
        let nnz = match *x {
            Input::Sparse { indptr, .. } => indptr[rows] - indptr[0],
            Input::Dense { .. } => 0,
        };
        let in_p = self.spec.input_dropout;
        let in_drop = rng.is_some() && in_p > 0.0;
        self.reserve(rows, nnz, in_drop);
        // Input dropout writes a scaled copy; the original batch stays untouched.
        if in_drop {
            let rng = rng.as_deref_mut().expect("in_drop implies rng");
            let src = match *x {
                Input::Dense { values, .. } => values,
                Input::Sparse { indptr, values, .. } => &values[indptr[0]..indptr[rows]],
            };
            dropout_into(in_p, src, &mut self.in_buf[..src.len()], None, rng);
        }
        let input: Src<'_, T> = match *x {
            Input::Dense { values, .. } => Src::Dense(if in_drop {
                &self.in_buf[..values.len()]
            } else {
                values
            }),
            Input::Sparse {
                indptr,
                indices,
                values,
                ..
            } => Src::Sparse(Csr {
                indptr,
                indices,
                values: if in_drop {
                    &self.in_buf[..nnz]
                } else {
                    &values[indptr[0]..indptr[rows]]
                },
                voff: indptr[0],
            }),
        };
        let params = &self.params[..];
        for i in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(i);
            let layer = &mut rest[0];
            let src = match before.last() {
                None => input,
                Some(prev) => Src::Dense(&prev.out[..rows * prev.out_len]),
            };
            let out = &mut layer.out[..rows * layer.out_len];
            match (&layer.op, src) {
                (
                    &Op::Dense {
                        n_in,
                        n_out,
                        act,
                        w,
                        b,
                        fm_in,
                    },
                    src,
                ) => {
                    let wt = &params[w..w + n_in * n_out];
                    let wt_t = Mat::t(wt, n_out);
                    match src {
                        Src::Dense(xv) => {
                            let xt = if fm_in {
                                Mat::n(xv, rows)
                            } else {
                                Mat::t(xv, n_in)
                            };
                            gemm(n_out, rows, n_in, wt_t, xt, out, rows, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        }
                        Src::Sparse(csr) => layers::sparse_matmul_fm(csr, wt, n_out, rows, out),
                    }
                    layers::bias_act_fm(out, &params[b..b + n_out], rows, act);
                }
                (
                    Op::ConvPool {
                        g,
                        pg,
                        act,
                        w,
                        b,
                        chunk,
                    },
                    Src::Dense(xv),
                ) => {
                    let wt = &params[*w..*w + g.k() * g.c_out];
                    let bias = &params[*b..*b + g.c_out];
                    let arg = &mut layer.arg[..rows * layer.out_len];
                    let sc = &self.scratch;
                    layers::conv_pool_forward(
                        g, pg, *chunk, xv, rows, wt, bias, *act, sc, out, arg,
                    );
                }
                (&Op::Dropout { p }, Src::Dense(xv)) => match rng.as_deref_mut() {
                    Some(rng) => dropout_into(p, xv, out, Some(&mut layer.aux[..xv.len()]), rng),
                    None => out.copy_from_slice(xv),
                },
                (_, Src::Sparse(_)) => {
                    unreachable!("validate() admits sparse input only into a dense layer")
                }
            }
        }
    }

    /// The output layer's values for the last forward pass, sample-major.
    fn last_out(&mut self, rows: usize) -> &[T] {
        let last = self
            .layers
            .last()
            .expect("a network has at least one layer");
        let k = self.outputs;
        layers::transpose(&last.out[..rows * k], k, rows, &mut self.zbuf[..rows * k]);
        &self.zbuf[..rows * k]
    }

    /// Loss and accuracy of the current outputs; with `grad`, also writes the
    /// gradient of the mean loss with respect to the outputs into `gbuf[0]`.
    fn loss(&mut self, labels: &[u32], rows: usize, grad: bool) -> BatchStats {
        let kind = self.spec.loss;
        let k = self.outputs;
        let last = self
            .layers
            .last()
            .expect("a network has at least one layer");
        // The output layer is feature-major; the loss works a sample at a time.
        layers::transpose(&last.out[..rows * k], k, rows, &mut self.zbuf[..rows * k]);
        let z = &self.zbuf[..rows * k];
        let scale = T::from_f64(1.0 / rows as f64);
        let mut dz = if grad {
            Some(&mut self.dzbuf[..rows * k])
        } else {
            None
        };
        let mut stats = BatchStats {
            count: rows,
            ..BatchStats::default()
        };
        for (r, &label) in labels.iter().enumerate() {
            let zr = &z[r * k..(r + 1) * k];
            let dr = dz.as_deref_mut().map(|d| &mut d[r * k..(r + 1) * k]);
            let y = label as usize;
            let (loss, correct) = match kind {
                LossKind::CrossEntropy => {
                    let (mut best, mut arg) = (zr[0], 0);
                    for (j, &v) in zr.iter().enumerate() {
                        if v > best {
                            (best, arg) = (v, j);
                        }
                    }
                    let sum: T = zr.iter().map(|&v| (v - best).exp()).sum();
                    let loss = f(sum.ln()) - f(zr[y] - best);
                    if let Some(dr) = dr {
                        let inv = scale / sum;
                        for (j, (d, &v)) in dr.iter_mut().zip(zr).enumerate() {
                            *d = (v - best).exp() * inv;
                            if j == y {
                                *d = *d - scale;
                            }
                        }
                    }
                    (loss, arg == y)
                }
                LossKind::Logistic => {
                    let v = f(zr[0]);
                    let t = y as f64;
                    // softplus(v) − t·v, written so exp never overflows.
                    let loss = v.max(0.0) - t * v + (-v.abs()).exp().ln_1p();
                    if let Some(dr) = dr {
                        let s = T::one() / (T::one() + (-zr[0]).exp());
                        dr[0] = (s - T::from_f64(t)) * scale;
                    }
                    (loss, (v > 0.0) == (y == 1))
                }
                LossKind::SquaredError => {
                    let mut loss = 0.0;
                    let target = |j: usize| {
                        if k == 1 {
                            y as f64
                        } else {
                            (j == y) as u8 as f64
                        }
                    };
                    for (j, &v) in zr.iter().enumerate() {
                        let e = f(v) - target(j);
                        loss += 0.5 * e * e;
                    }
                    if let Some(dr) = dr {
                        for (j, (d, &v)) in dr.iter_mut().zip(zr).enumerate() {
                            *d = (v - T::from_f64(target(j))) * scale;
                        }
                    }
                    let pred = if k == 1 {
                        (f(zr[0]) > 0.5) as usize
                    } else {
                        let mut arg = 0;
                        for (j, &v) in zr.iter().enumerate() {
                            if v > zr[arg] {
                                arg = j;
                            }
                        }
                        arg
                    };
                    (loss, pred == y)
                }
            };
            stats.loss_sum += loss;
            stats.correct += correct as usize;
        }
        if grad {
            layers::transpose(
                &self.dzbuf[..rows * k],
                rows,
                k,
                &mut self.gbuf[0][..rows * k],
            );
        }
        stats.penalty = self.penalty();
        stats
    }

    /// λ/2·‖W‖² over weight tensors.
    fn penalty(&self) -> f64 {
        if self.spec.l2 == 0.0 {
            return 0.0;
        }
        let sq: f64 = self
            .tensors
            .iter()
            .filter(|t| t.kind == TensorKind::Weight)
            .map(|t| {
                self.params[t.range()]
                    .iter()
                    .map(|&w| f(w) * f(w))
                    .sum::<f64>()
            })
            .sum();
        0.5 * self.spec.l2 * sq
    }

    /// Forward and backward over a batch in training mode (dropout active, masks
    /// drawn from `rng`). Fills [`grads`](Self::grads) with the gradient of the mean
    /// loss over the batch plus the L2 penalty, and returns the batch's totals.
    pub fn loss_and_grad(
        &mut self,
        x: Input<'_, T>,
        labels: &[u32],
        rng: &mut Rng,
    ) -> Result<BatchStats, NnError> {
        let rows = self.validate(&x, Some(labels))?;
        self.reserve_training(rows);
        self.forward(&x, rows, Some(rng));
        let stats = self.loss(labels, rows, true);
        self.backward(&x, rows);
        Ok(stats)
    }

    /// Loss and accuracy in evaluation mode (no dropout, no gradient).
    pub fn evaluate(&mut self, x: Input<'_, T>, labels: &[u32]) -> Result<BatchStats, NnError> {
        let rows = self.validate(&x, Some(labels))?;
        self.forward(&x, rows, None);
        Ok(self.loss(labels, rows, false))
    }

    /// Output-layer values (logits) in evaluation mode, `[rows, outputs]` row-major.
    pub fn logits(&mut self, x: Input<'_, T>) -> Result<&[T], NnError> {
        let rows = self.validate(&x, None)?;
        self.forward(&x, rows, None);
        Ok(self.last_out(rows))
    }

    /// Backward pass from the loss gradient in `gbuf[0]`.
    fn backward(&mut self, x: &Input<'_, T>, rows: usize) {
        let l2 = self.spec.l2;
        let in_dropped = self.spec.input_dropout > 0.0;
        let nnz = match *x {
            Input::Sparse { indptr, .. } => indptr[rows] - indptr[0],
            Input::Dense { .. } => 0,
        };
        let input: Src<'_, T> = match *x {
            Input::Dense { values, .. } => Src::Dense(if in_dropped {
                &self.in_buf[..values.len()]
            } else {
                values
            }),
            Input::Sparse {
                indptr,
                indices,
                values,
                ..
            } => Src::Sparse(Csr {
                indptr,
                indices,
                values: if in_dropped {
                    &self.in_buf[..nnz]
                } else {
                    &values[indptr[0]..indptr[rows]]
                },
                voff: indptr[0],
            }),
        };
        self.touched_valid = false;
        let [g0, g1] = &mut self.gbuf;
        let (mut cur, mut nxt) = (g0, g1);
        let params = &self.params[..];
        let grads = &mut self.grads[..];
        for i in (0..self.layers.len()).rev() {
            let layer = &self.layers[i];
            let src = match i {
                0 => input,
                _ => {
                    let prev = &self.layers[i - 1];
                    Src::Dense(&prev.out[..rows * prev.out_len])
                }
            };
            let dout = &mut cur[..rows * layer.out_len];
            let y = &layer.out[..rows * layer.out_len];
            match (&layer.op, src) {
                (
                    &Op::Dense {
                        n_in,
                        n_out,
                        act,
                        w,
                        b,
                        fm_in,
                    },
                    src,
                ) => {
                    layers::act_backward_bias_fm(act, y, dout, &mut grads[b..b + n_out], rows);
                    // dZ is feature-major: [n_out, rows].
                    let dz = &*dout;
                    let dz_t = Mat::t(dz, rows);
                    let dw = &mut grads[w..w + n_in * n_out];
                    match src {
                        Src::Dense(xv) => {
                            // dW = Xᵀ·dZ, with X read in whichever layout it has.
                            let xt = if fm_in {
                                Mat::n(xv, rows)
                            } else {
                                Mat::t(xv, n_in)
                            };
                            gemm(n_in, n_out, rows, xt, dz_t, dw, n_out, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        }
                        Src::Sparse(csr) => {
                            if l2 > 0.0 || !self.first_grad_clean {
                                dw.fill(T::zero());
                            } else {
                                for &j in &self.touched {
                                    let j = j as usize;
                                    dw[j * n_out..(j + 1) * n_out].fill(T::zero());
                                }
                            }
                            mark_touched(csr, n_in, &mut self.row_bits, &mut self.touched);
                            self.touched_valid = l2 == 0.0;
                            // The sparse update walks samples: it wants dZ sample-major.
                            // (The first layer has no input gradient, so `nxt` is free.)
                            let dz_rows = &mut nxt[..rows * n_out];
                            layers::transpose(dz, n_out, rows, dz_rows);
                            layers::sparse_weight_grad(csr, dz_rows, n_out, dw);
                        }
                    }
                    if i > 0 {
                        let wt = &params[w..w + n_in * n_out];
                        let din = &mut nxt[..rows * n_in];
                        if fm_in {
                            // dXᵀ = W·dZᵀ, feature-major like the input.
                            let (a, b) = (Mat::n(wt, n_out), Mat::n(dz, rows));
                            gemm(n_in, rows, n_out, a, b, din, rows, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        } else {
                            // dX = dZ·Wᵀ, sample-major for the convolution below.
                            let a = Mat::t(wt, n_out);
                            gemm(rows, n_in, n_out, dz_t, a, din, n_in, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        }
                    }
                }
                (
                    Op::ConvPool {
                        g,
                        pg,
                        act,
                        w,
                        b,
                        chunk,
                    },
                    Src::Dense(xv),
                ) => {
                    let wl = g.k() * g.c_out;
                    let (gw, gb) = grads[*w..*b + g.c_out].split_at_mut(wl);
                    layers::conv_pool_backward(
                        g,
                        pg,
                        *chunk,
                        *act,
                        xv,
                        y,
                        &layer.arg[..rows * layer.out_len],
                        dout,
                        rows,
                        &params[*w..*w + wl],
                        &self.scratch,
                        &mut self.dw_part,
                        &mut self.db_part,
                        (i > 0).then_some(&mut nxt[..]),
                        gw,
                        gb,
                    );
                }
                (Op::Dropout { .. }, Src::Dense(_)) => {
                    if i > 0 {
                        let mask = &layer.aux[..dout.len()];
                        for ((d, &g), &m) in nxt[..dout.len()].iter_mut().zip(dout.iter()).zip(mask)
                        {
                            *d = g * m;
                        }
                    }
                }
                (_, Src::Sparse(_)) => {
                    unreachable!("validate() admits sparse input only into a dense layer")
                }
            }
            std::mem::swap(&mut cur, &mut nxt);
        }
        if matches!(*x, Input::Dense { .. }) {
            // A dense batch writes every row of the first weight gradient.
            self.first_grad_clean = false;
        } else {
            self.first_grad_clean = l2 == 0.0;
        }
        if l2 > 0.0 {
            let l2 = T::from_f64(l2);
            for t in self.tensors.iter().filter(|t| t.kind == TensorKind::Weight) {
                for (g, &p) in self.grads[t.range()]
                    .iter_mut()
                    .zip(&self.params[t.range()])
                {
                    *g = *g + l2 * p;
                }
            }
        }
    }
}

/// Inverted dropout of `src` into `dst`: each value is zeroed with probability `p`
/// and otherwise scaled by 1/(1−p); the scale factors go to `mask` when given.
fn dropout_into<T: Real>(
    p: f64,
    src: &[T],
    dst: &mut [T],
    mut mask: Option<&mut [T]>,
    rng: &mut Rng,
) {
    let keep = T::from_f64(1.0 / (1.0 - p));
    let pf = p as f32;
    for (i, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
        let m = if rng.uniform_f32() < pf {
            T::zero()
        } else {
            keep
        };
        *d = s * m;
        if let Some(mask) = mask.as_deref_mut() {
            mask[i] = m;
        }
    }
}

/// Records the distinct features of a sparse batch into `touched`, sorted.
/// `bits` holds one bit per feature and is all clear on entry and on return.
/// The features come out in order either by sorting them or by reading the
/// set bits in order, whichever costs less: a large batch over a modest
/// vocabulary reads `dim / 64` words instead of sorting thousands of indices.
fn mark_touched<T>(csr: Csr<'_, T>, dim: usize, bits: &mut Vec<u64>, touched: &mut Vec<u32>) {
    let words = dim.div_ceil(64);
    if bits.len() < words {
        bits.resize(words, 0);
        // Room for every feature up front, so later batches never grow it.
        touched.reserve(dim);
    }
    touched.clear();
    let rows = csr.indptr.len() - 1;
    for &j in &csr.indices[csr.indptr[0]..csr.indptr[rows]] {
        let (w, b) = (j as usize / 64, 1u64 << (j % 64));
        if bits[w] & b == 0 {
            bits[w] |= b;
            touched.push(j);
        }
    }
    // Sorting n indices costs about n·log₂(n) steps; scanning, one per word.
    let n = touched.len();
    if n * (usize::BITS - n.leading_zeros()) as usize <= words {
        touched.sort_unstable();
        for &j in touched.iter() {
            bits[j as usize / 64] = 0;
        }
    } else {
        touched.clear();
        for (w, word) in bits[..words].iter_mut().enumerate() {
            let mut x = std::mem::take(word);
            while x != 0 {
                touched.push((w * 64) as u32 + x.trailing_zeros());
                x &= x - 1;
            }
        }
    }
}
