//! Backward passes checked against central finite differences in f64.
//!
//! Every check perturbs parameters one at a time and compares
//! `(J(θ + h) − J(θ − h)) / 2h` with the analytic gradient, where `J` is the
//! batch's mean loss plus the L2 penalty. Dropout masks are held fixed by giving
//! every evaluation a generator in the same state.

use downhill::Rng;
use downhill_nn::{Input, InputShape, ModelSpec, Network};

/// A deterministic batch of `rows` samples with values in [-1, 1).
fn dense_batch(rows: usize, dim: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng::new(seed);
    (0..rows * dim).map(|_| 2.0 * r.uniform() - 1.0).collect()
}

fn labels(rows: usize, classes: usize, seed: u64) -> Vec<u32> {
    let mut r = Rng::new(seed);
    (0..rows).map(|_| r.below(classes as u64) as u32).collect()
}

fn objective(net: &mut Network<f64>, x: Input<'_, f64>, y: &[u32], mask_seed: u64) -> f64 {
    net.loss_and_grad(x, y, &mut Rng::new(mask_seed))
        .unwrap()
        .mean_loss()
}

/// Checks every parameter (or an evenly spread sample of at most `max_checks`).
/// Returns the worst relative error seen.
fn check(
    spec: &str,
    shape: InputShape,
    classes: usize,
    x: Input<'_, f64>,
    y: &[u32],
    max_checks: usize,
) -> f64 {
    let spec: ModelSpec = spec.parse().unwrap();
    let mut net = Network::<f64>::new(&spec, shape, classes, 11).unwrap();
    // Non-zero biases, so a bug that ignores them cannot hide; none is exactly 0,
    // which would put windows lying wholly in padding on ReLU's kink.
    for t in net.tensors().to_vec() {
        if t.kind == downhill_nn::TensorKind::Bias {
            for (i, p) in net.params_mut()[t.range()].iter_mut().enumerate() {
                *p = 0.05 * ((i % 5) as f64 - 2.0) + 0.013;
            }
        }
    }
    let mask_seed = 99;
    objective(&mut net, x, y, mask_seed);
    let grad = net.grads().to_vec();
    let n = grad.len();
    let step = n.div_ceil(max_checks).max(1);
    // h = 1e-5 balances truncation (~h²) against roundoff (~ε·J/h ≈ 5e-11).
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    let mut nonzero = 0;
    for i in (0..n).step_by(step) {
        let p0 = net.params()[i];
        net.params_mut()[i] = p0 + h;
        let up = objective(&mut net, x, y, mask_seed);
        net.params_mut()[i] = p0 - h;
        let down = objective(&mut net, x, y, mask_seed);
        net.params_mut()[i] = p0;
        let numeric = (up - down) / (2.0 * h);
        // Relative 1e-6; the 1e-3 floor turns that into an absolute 1e-9 for tiny
        // gradients, where finite differences carry ~1e-10 of roundoff.
        let err = (numeric - grad[i]).abs() / (numeric.abs() + grad[i].abs() + 1e-3);
        assert!(
            err < 1e-6,
            "{spec}: parameter {i} ({}): analytic {} vs numeric {numeric} (relative error {err:e})",
            net.tensors()
                .iter()
                .find(|t| t.range().contains(&i))
                .unwrap()
                .name,
            grad[i]
        );
        if grad[i].abs() > 1e-4 {
            nonzero += 1;
        }
        worst = worst.max(err);
    }
    assert!(nonzero > 0, "{spec}: every checked gradient was zero");
    worst
}

fn check_dense(spec: &str, dim: usize, classes: usize, rows: usize) {
    let x = dense_batch(rows, dim, 1);
    let y = labels(rows, classes, 2);
    check(
        spec,
        InputShape::Flat(dim),
        classes,
        Input::Dense {
            values: &x,
            rows,
            dim,
        },
        &y,
        400,
    );
}

#[test]
fn logreg_softmax_cross_entropy() {
    check_dense("logreg", 7, 4, 5);
}

#[test]
fn logreg_binary_logistic() {
    check_dense("logreg:binary", 6, 2, 9);
}

#[test]
fn squared_error_multiclass_and_binary() {
    check_dense("mlp:5:loss=mse", 4, 3, 6);
    check_dense("logreg:binary:loss=mse", 4, 2, 6);
}

#[test]
fn each_activation() {
    check_dense("mlp:6,5", 4, 3, 7);
    check_dense("mlp:6,5:tanh", 4, 3, 7);
    check_dense("mlp:6,5:sigmoid", 4, 3, 7);
}

#[test]
fn dropout_with_fixed_mask() {
    check_dense("mlp:8,6:tanh:dropout=0.3:input-dropout=0.2", 5, 3, 6);
}

#[test]
fn l2_penalty() {
    check_dense("mlp:4:tanh:l2=0.3", 3, 3, 4);
    check_dense("logreg:l2=0.05", 5, 3, 4);
}

/// A CSR batch whose `indptr` starts mid-array (a sub-slice of a larger set), with
/// a repeated index in one row and an empty row.
fn sparse_parts() -> (Vec<usize>, Vec<u32>, Vec<f64>) {
    let indptr = vec![2, 5, 5, 8, 10];
    let indices = vec![0, 0, 1, 4, 1, 7, 2, 3, 8, 5];
    let values = vec![9.0, 9.0, 0.5, -1.0, 0.25, 2.0, 1.5, -0.5, 0.75, -2.0];
    (indptr, indices, values)
}

#[test]
fn sparse_input_matches_dense_and_finite_differences() {
    let (indptr, indices, values) = sparse_parts();
    let dim = 9;
    let y = [1, 0, 2, 1];
    let sx = Input::Sparse {
        indptr: &indptr,
        indices: &indices,
        values: &values,
        dim,
    };
    check("mlp:5:tanh", InputShape::Flat(dim), 3, sx, &y, 400);
    check(
        "logreg:input-dropout=0.3",
        InputShape::Flat(dim),
        3,
        sx,
        &y,
        400,
    );
    // The same batch densified gives the same loss and gradient.
    let mut dense = vec![0.0; 4 * dim];
    for r in 0..4 {
        for k in indptr[r]..indptr[r + 1] {
            dense[r * dim + indices[k] as usize] += values[k];
        }
    }
    let spec: ModelSpec = "mlp:5:tanh".parse().unwrap();
    let mut a = Network::<f64>::new(&spec, InputShape::Flat(dim), 3, 3).unwrap();
    let mut b = Network::<f64>::new(&spec, InputShape::Flat(dim), 3, 3).unwrap();
    let la = a.loss_and_grad(sx, &y, &mut Rng::new(0)).unwrap();
    let lb = b
        .loss_and_grad(
            Input::Dense {
                values: &dense,
                rows: 4,
                dim,
            },
            &y,
            &mut Rng::new(0),
        )
        .unwrap();
    assert!((la.loss_sum - lb.loss_sum).abs() < 1e-12);
    for (g, h) in a.grads().iter().zip(b.grads()) {
        assert!((g - h).abs() < 1e-12);
    }
    // Only features present in the batch are touched (feature 0 appears only
    // before indptr[0] = 2, outside the batch), and all other rows of the
    // gradient are zero.
    let touched = a.touched_rows().unwrap().to_vec();
    assert_eq!(touched, vec![1, 2, 3, 4, 5, 7, 8]);
    let w = &a.tensors()[0];
    for r in 0..dim as u32 {
        let row = &a.grads()[w.offset + r as usize * 5..w.offset + (r as usize + 1) * 5];
        assert_eq!(
            row.iter().all(|&g| g == 0.0),
            !touched.contains(&r),
            "row {r}"
        );
    }
    // A layer wide enough to be split over several tasks agrees too.
    let wide: ModelSpec = "mlp:150".parse().unwrap();
    let mut a = Network::<f64>::new(&wide, InputShape::Flat(dim), 3, 3).unwrap();
    let mut b = Network::<f64>::new(&wide, InputShape::Flat(dim), 3, 3).unwrap();
    let dx = Input::Dense {
        values: &dense,
        rows: 4,
        dim,
    };
    assert_eq!(a.logits(sx).unwrap().len(), 12);
    let (za, zb) = (
        a.logits(sx).unwrap().to_vec(),
        b.logits(dx).unwrap().to_vec(),
    );
    for (p, q) in za.iter().zip(&zb) {
        assert!((p - q).abs() < 1e-12, "{p} vs {q}");
    }
    a.loss_and_grad(sx, &y, &mut Rng::new(0)).unwrap();
    b.loss_and_grad(dx, &y, &mut Rng::new(0)).unwrap();
    for (g, h) in a.grads().iter().zip(b.grads()) {
        assert!((g - h).abs() < 1e-12);
    }
}

#[test]
fn conv_stride_padding_non_square_kernel_overlapping_pool() {
    let shape = InputShape::Image {
        channels: 2,
        height: 9,
        width: 8,
    };
    let rows = 3;
    let x = dense_batch(rows, shape.len(), 5);
    let y = labels(rows, 3, 6);
    let xi = Input::Dense {
        values: &x,
        rows,
        dim: shape.len(),
    };
    // Second conv has stride 2, padding 1 and a 3×2 kernel, so col2im runs on it.
    check(
        "cnn:3,4:kernel=3x2:stride=2:pad=1:pool=3/2/1:fc=5:tanh",
        shape,
        3,
        xi,
        &y,
        600,
    );
    // 3×3 windows of stride 1 overlap heavily; multiple channels in and out.
    check("cnn:3,2:kernel=3:pool=3/1:fc=0", shape, 3, xi, &y, 600);
    // Padding wider than the kernel: whole windows fall in the zero border.
    check(
        "cnn:2,3:kernel=2:pad=3:stride=3:pool=2:fc=4",
        shape,
        3,
        xi,
        &y,
        600,
    );
    // The first layer reads CHW input through strides when it has several channels.
    let rgb = InputShape::Image {
        channels: 3,
        height: 7,
        width: 6,
    };
    let x3 = dense_batch(2, rgb.len(), 9);
    let x3i = Input::Dense {
        values: &x3,
        rows: 2,
        dim: rgb.len(),
    };
    check(
        "cnn:4,3:kernel=3x2:pool=2/1:fc=0",
        rgb,
        3,
        x3i,
        &y[..2],
        600,
    );
}

#[test]
fn whole_networks_of_each_kind() {
    let shape = InputShape::Image {
        channels: 1,
        height: 16,
        width: 16,
    };
    let rows = 4;
    let x = dense_batch(rows, shape.len(), 7);
    let y = labels(rows, 10, 8);
    let xi = Input::Dense {
        values: &x,
        rows,
        dim: shape.len(),
    };
    check("logreg", shape, 10, xi, &y, 300);
    check(
        "mlp:16,12:dropout=0.5:input-dropout=0.2",
        shape,
        10,
        xi,
        &y,
        300,
    );
    // The paper's structure (5×5 "same" convs, 3×3/2 pools) and the benchmark's (2×2 pools).
    check("cnn:4,4,6:fc=8:dropout=0.5", shape, 10, xi, &y, 500);
    check("cnn:3,4:pool=2:fc=10", shape, 10, xi, &y, 500);
}

/// Windows of `context + 1` token ids below `vocab`, and their last tokens
/// as labels.
fn token_batch(rows: usize, context: usize, vocab: usize, seed: u64) -> (Vec<f64>, Vec<u32>) {
    let mut r = Rng::new(seed);
    let x: Vec<f64> = (0..rows * (context + 1))
        .map(|_| r.below(vocab as u64) as f64)
        .collect();
    let y = x.chunks(context + 1).map(|w| w[context] as u32).collect();
    (x, y)
}

fn check_transformer(spec: &str, context: usize, vocab: usize, rows: usize) {
    let (x, y) = token_batch(rows, context, vocab, 5);
    let dim = context + 1;
    check(
        spec,
        InputShape::Flat(dim),
        vocab,
        Input::Dense {
            values: &x,
            rows,
            dim,
        },
        &y,
        usize::MAX,
    );
}

/// Every parameter of a two-block transformer: embeddings, LayerNorms,
/// attention (causal softmax, several heads), the GELU MLP and the head.
#[test]
fn transformer_every_parameter() {
    check_transformer("transformer:layers=2,d=8,heads=2,context=5", 5, 7, 3);
}

/// The tied head (the embedding's gradient from both ends), one head, and
/// the L2 penalty.
#[test]
fn transformer_tied_single_head_with_l2() {
    check_transformer(
        "transformer:layers=1,d=6,heads=1,context=4,tied=true:l2=0.1",
        4,
        5,
        2,
    );
}
