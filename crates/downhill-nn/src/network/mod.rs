//! [`Network`]: layers over one flat parameter buffer, with forward and backward passes.

use crate::layers::{self, ConvGeom, Csr, PoolGeom};
use crate::spec::{Activation, Init, LossKind, ModelSpec};
use crate::transformer::{Lm, EVAL_TOKENS};
use crate::NnError;
use downhill::linalg::{gemm, Mat, Par, SHAPES_CHECKED};
use downhill::optim::{Param, Role};
use downhill::{Real, Rng};

mod export;
pub use export::TorchTensor;
mod passes;
mod plan;
pub(crate) use plan::Builder;

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
    /// The transformer and its buffers, for a `transformer:` spec (then
    /// `layers` is empty).
    lm: Option<Box<Lm<T>>>,
}

/// `x` as `f64` (named to avoid `num_traits`' fallible `to_f64`).
#[inline]
fn f<T: Real>(x: T) -> f64 {
    Real::to_f64(x)
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
            lm: bld.lm.map(|lay| Box::new(Lm::new(lay))),
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

    /// Re-initialises every parameter from `seed` exactly as [`Network::new`] does.
    pub fn init(&mut self, seed: u64) {
        if let Some(lm) = &self.lm {
            lm.init(&mut self.params, &self.tensors, seed);
            return;
        }
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
        if let Some(lm) = &self.lm {
            return lm.optimizer_params(&self.tensors);
        }
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
        if let Some(lm) = self.lm.as_deref_mut() {
            let Input::Dense { values, .. } = x else {
                unreachable!("validate admits dense batches only for a transformer")
            };
            lm.load(values, rows)?;
            let (loss_sum, correct) = lm.forward_loss(&self.params, rows, true);
            lm.backward(&self.params, &mut self.grads, rows);
            let count = rows * lm.context();
            self.add_l2_grad();
            return Ok(BatchStats {
                loss_sum,
                correct,
                count,
                penalty: self.penalty(),
            });
        }
        self.reserve_training(rows);
        self.forward(&x, rows, Some(rng));
        let stats = self.loss(labels, rows, true);
        self.backward(&x, rows);
        Ok(stats)
    }

    /// Loss and accuracy in evaluation mode (no dropout, no gradient).
    pub fn evaluate(&mut self, x: Input<'_, T>, labels: &[u32]) -> Result<BatchStats, NnError> {
        let rows = self.validate(&x, Some(labels))?;
        if self.lm.is_some() {
            let mut stats = BatchStats::default();
            self.lm_pieces(&x, rows, |lm, piece| {
                let (loss_sum, correct) = lm.forward_loss(piece.params, piece.rows, false);
                stats.merge(BatchStats {
                    loss_sum,
                    correct,
                    count: piece.rows * lm.context(),
                    penalty: 0.0,
                });
            })?;
            stats.penalty = self.penalty();
            return Ok(stats);
        }
        self.forward(&x, rows, None);
        Ok(self.loss(labels, rows, false))
    }

    /// Output-layer values (logits) in evaluation mode, `[rows, outputs]` row-major.
    ///
    /// For a transformer: every token's logits, `[rows·context, vocab]`, the
    /// prediction of each window's tokens 1..=context.
    pub fn logits(&mut self, x: Input<'_, T>) -> Result<&[T], NnError> {
        let rows = self.validate(&x, None)?;
        if let Some(lm) = &self.lm {
            let per_row = lm.context() * lm.vocab();
            if self.zbuf.len() < rows * per_row {
                self.zbuf.resize(rows * per_row, T::zero());
            }
            let mut out = std::mem::take(&mut self.zbuf);
            let mut at = 0;
            let done = self.lm_pieces(&x, rows, |lm, piece| {
                lm.forward_loss(piece.params, piece.rows, false);
                let z = lm.logits(piece.rows);
                out[at..at + z.len()].copy_from_slice(z);
                at += z.len();
            });
            self.zbuf = out;
            done?;
            return Ok(&self.zbuf[..rows * per_row]);
        }
        self.forward(&x, rows, None);
        Ok(self.last_out(rows))
    }

    /// Runs `f` over the batch `x` of `rows` windows in pieces of at most
    /// [`EVAL_TOKENS`] tokens, each loaded into the transformer.
    fn lm_pieces(
        &mut self,
        x: &Input<'_, T>,
        rows: usize,
        mut f: impl FnMut(&mut Lm<T>, Piece<'_, T>),
    ) -> Result<(), NnError> {
        let Input::Dense { values, dim, .. } = *x else {
            unreachable!("validate admits dense batches only for a transformer")
        };
        let lm = self.lm.as_deref_mut().expect("called for a transformer");
        let per = (EVAL_TOKENS / lm.context()).max(1);
        for start in (0..rows).step_by(per) {
            let r = per.min(rows - start);
            lm.load(&values[start * dim..(start + r) * dim], r)?;
            f(
                lm,
                Piece {
                    params: &self.params,
                    rows: r,
                },
            );
        }
        Ok(())
    }

    /// Adds the L2 penalty's gradient λ·W to every weight's gradient.
    fn add_l2_grad(&mut self) {
        let l2 = T::from_f64(self.spec.l2);
        if self.spec.l2 == 0.0 {
            return;
        }
        for t in self.tensors.iter().filter(|t| t.kind == TensorKind::Weight) {
            for (g, &w) in self.grads[t.range()]
                .iter_mut()
                .zip(&self.params[t.range()])
            {
                *g = *g + l2 * w;
            }
        }
    }
}

/// A piece of an evaluation batch: the parameters and its rows.
struct Piece<'a, T> {
    params: &'a [T],
    rows: usize,
}
