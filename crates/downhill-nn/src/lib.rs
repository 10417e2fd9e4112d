//! # downhill-nn
//!
//! A lean CPU neural-network engine: the model, its flat parameter and gradient
//! buffers, and explicit forward and backward passes for logistic regression,
//! multi-layer perceptrons and convolutional networks. Optimisers live in crate
//! `downhill`; training loops and data loading elsewhere.
//!
//! ```
//! use downhill::Rng;
//! use downhill_nn::{Input, InputShape, ModelSpec, Network};
//!
//! let spec: ModelSpec = "mlp:32:tanh".parse()?;
//! let mut net = Network::<f64>::new(&spec, InputShape::Flat(4), 3, 7)?;
//! let x = [0.5, -1.0, 2.0, 0.0, 1.0, 1.0, -0.5, 0.25];
//! let stats = net.loss_and_grad(Input::Dense { values: &x, rows: 2, dim: 4 }, &[0, 2], &mut Rng::new(1))?;
//! assert_eq!(stats.count, 2);
//! // Plain gradient descent, in place.
//! let (params, grads) = net.params_and_grads();
//! for (p, g) in params.iter_mut().zip(grads) {
//!     *p -= 0.1 * g;
//! }
//! # Ok::<(), downhill_nn::NnError>(())
//! ```
//!
//! ## Layout
//!
//! Every parameter lives in one `Vec<T>` ([`Network::params`]); the gradient in
//! another of the same length; [`Network::tensors`] lists the tensors in order
//! with PyTorch-like names (`conv1.weight`, `fc2.bias`, …), so an optimiser can
//! treat tensor *i* as the *i*-th consecutive range. Dense weights are stored
//! `[in, out]` row-major (row *r* holds input feature *r*'s outgoing weights: a
//! sparse batch touches only some rows, see [`Network::touched_rows`]).
//! Convolution weights are `[kh, kw, in, out]`. Inside the network images are
//! NHWC, so the fully-connected layer after the last pool reads its input in
//! (row, column, channel) order: `fc1.weight` row `(y·W + x)·C + c` belongs to
//! channel `c` at pixel (y, x). Network input images are CHW, as data files store
//! them.
//!
//! ## Objective
//!
//! [`Network::loss_and_grad`] fills the gradient of the **mean** loss over the
//! batch plus the L2 penalty λ/2·‖W‖², which covers weight tensors only (not
//! biases): the penalty adds λ·W to each weight's gradient and is reported in
//! [`BatchStats::penalty`]. Losses are listed in [`spec`].
//!
//! ## Allocation
//!
//! Activation and workspace buffers grow to the largest batch seen and are reused
//! afterwards, so a step allocates nothing in this crate. The matrix-product
//! backend (the `gemm` crate) allocates its packing buffers on each call (at most
//! two per call); `tests/alloc.rs` counts every allocation in the process to hold
//! both facts in place (exactly zero on a path without matrix products). Run steps
//! inside a rayon pool (`ThreadPool::install`): parallel calls made from outside
//! any pool go through rayon's shared injector queue, which allocates a small block
//! every few dozen calls.
//!
//! ## Performance design
//!
//! - Matrix products go through [`downhill::linalg`], which splits each product into one
//!   output block per thread, each computed by the single-threaded AVX-512 kernel
//!   (chosen at run time; AVX2 or scalar elsewhere). The `gemm_shapes` example
//!   measures the engine's shapes.
//! - Dense layers keep activations feature-major (`[features, batch]`): with a
//!   batch of 128 the products `Wᵀ·Xᵀ` and `W·dZᵀ` ran 20–40% faster than
//!   `X·W` and `dZ·Wᵀ` in `gemm_shapes`, and the bias becomes a per-row constant.
//!   The network input and convolution maps stay sample-major and are read
//!   through strides; the loss transposes the (small) output once.
//! - A convolution, its ReLU and the max-pool after it run as one fused step, a
//!   chunk of samples at a time per thread: the chunk's im2col matrix (≈1 MiB) and
//!   unpooled map stay in L2, the unpooled map is never stored, and the backward
//!   pass recomputes the patches rather than keeping them (a copy is cheaper than
//!   the memory traffic of storing them). Per-chunk weight gradients are summed in
//!   chunk order.
//! - Element-wise loops (im2col, col2im, bias + activation, pooling) are compiled
//!   for AVX-512 and AVX2 as well as baseline x86-64 and picked at run time.
//! - The softmax, loss and output gradient are one pass per row.
//!
//! ## Threads
//!
//! Work runs on the current rayon pool (`RAYON_NUM_THREADS` for the global one).
//! Matrix products cut their output into blocks by shape alone and share the
//! blocks among threads; element-wise passes, convolution chunks and pooling
//! split over samples. No reduction order and no block depends on the thread
//! count, so results are bit-identical for any number of threads (tests:
//! `gradients_are_deterministic_and_independent_of_thread_count` here, and a
//! trained MLP and CNN on 1, 2 and 3 threads in `downhill-train`).

#![warn(missing_docs)]

mod error;
mod layers;
mod network;
mod simd;
pub mod spec;
mod transformer;

pub use error::NnError;
pub use network::{
    BatchStats, Input, InputShape, Network, RowSparseGrads, TensorInfo, TensorKind, TorchTensor,
};
pub use spec::{Activation, Init, LossKind, ModelKind, ModelSpec, PoolSpec};
