//! What the Kronecker-factored preconditioners (SOAP, Shampoo) share: a
//! tensor's dimensions in torch's order, the copy between downhill's stored
//! layout and torch's, products along one dimension of a tensor (mode
//! products), the Gram matrix along one dimension, and the decomposition
//! failure count both keep.
//!
//! A tensor of dimensions `(d₀, …, d_{k−1})` is row-major. Along axis `a`
//! it is `pre` slabs (the product of the dimensions before `a`), each a
//! `d_a × post` matrix (`post`: the product of those after): a mode product
//! multiplies every slab by the same `d_a × d_a` matrix, and the Gram matrix
//! along `a` is the sum of every slab times its transpose. Both run on
//! [`crate::linalg::gemm`], so their bits depend on the shapes only.

use super::Param;
use crate::linalg::{gemm, Mat, Op, Par, SHAPES_CHECKED};
use crate::Real;

/// The most dimensions a Kronecker-factored rule accepts.
pub(crate) const MAX_DIMS: usize = 8;

/// A short list of dimensions, kept on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    d: [usize; MAX_DIMS],
    n: usize,
}

impl Dims {
    /// The dimensions in `dims` (at most [`MAX_DIMS`]).
    #[cfg(test)]
    pub fn new(dims: &[usize]) -> Self {
        let mut d = [0; MAX_DIMS];
        d[..dims.len()].copy_from_slice(dims);
        Dims { d, n: dims.len() }
    }

    /// No dimensions (a scalar).
    pub fn empty() -> Self {
        Dims {
            d: [0; MAX_DIMS],
            n: 0,
        }
    }

    /// Appends a dimension.
    pub fn push(&mut self, x: usize) {
        self.d[self.n] = x;
        self.n += 1;
    }

    /// The dimensions.
    pub fn as_slice(&self) -> &[usize] {
        &self.d[..self.n]
    }

    /// The product of the dimensions before axis `a`, and of those after.
    fn around(&self, a: usize) -> (usize, usize) {
        let d = self.as_slice();
        (d[..a].iter().product(), d[a + 1..].iter().product())
    }
}

/// Why a Kronecker-factored rule refuses a parameter, if it does.
pub(crate) fn accepts(param: &Param) -> Result<(), String> {
    if param.shape.len() > MAX_DIMS {
        return Err(format!(
            "preconditions tensors of at most {MAX_DIMS} dimensions"
        ));
    }
    Ok(())
}

/// For each of torch's axes, the stored axis that holds it. downhill's
/// engine stores dense weights as (in, out) and convolution kernels as
/// (kh, kw, in, out) ([`Param::transposed`]), torch as (out, in) and
/// (out, in, kh, kw): the order the references' blocking and merging of
/// dimensions follow.
pub(crate) fn torch_axes(param: &Param) -> Dims {
    let n = param.shape.len();
    let mut axes = Dims::empty();
    if param.transposed && n >= 2 {
        axes.push(n - 1);
        axes.push(n - 2);
        for a in 0..n - 2 {
            axes.push(a);
        }
    } else {
        for a in 0..n {
            axes.push(a);
        }
    }
    axes
}

/// The parameter's dimensions in torch's order.
pub(crate) fn torch_dims(param: &Param) -> Dims {
    let axes = torch_axes(param);
    let mut dims = Dims::empty();
    for &a in axes.as_slice() {
        dims.push(param.shape[a]);
    }
    dims
}

/// Calls `f(stored, torch)` for every element: its offset in the stored
/// layout and in torch's, in torch's order.
fn for_each_offset(param: &Param, mut f: impl FnMut(usize, usize)) {
    let n = param.shape.len();
    let axes = torch_axes(param);
    let dims = torch_dims(param);
    // The stored layout's stride of each torch axis.
    let mut stored_stride = [0usize; MAX_DIMS];
    let mut s = 1;
    for a in (0..n).rev() {
        stored_stride[a] = s;
        s *= param.shape[a];
    }
    let mut stride = [0usize; MAX_DIMS];
    for (k, &a) in axes.as_slice().iter().enumerate() {
        stride[k] = stored_stride[a];
    }
    let total = param.len();
    let mut index = [0usize; MAX_DIMS];
    let mut offset = 0;
    for t in 0..total {
        f(offset, t);
        // Advance the torch-order index, last axis fastest.
        for k in (0..n).rev() {
            index[k] += 1;
            offset += stride[k];
            if index[k] < dims.as_slice()[k] {
                break;
            }
            offset -= stride[k] * index[k];
            index[k] = 0;
        }
    }
}

/// `src` (stored layout) into `dst` in torch's layout, each element mapped
/// by `f`.
pub(crate) fn to_torch<T: Real>(param: &Param, src: &[T], dst: &mut [T], f: impl Fn(T) -> T) {
    if !param.transposed || param.shape.len() < 2 {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f(s);
        }
        return;
    }
    for_each_offset(param, |stored, torch| dst[torch] = f(src[stored]));
}

/// Calls `f(stored element, torch element)` for every element: a parameter
/// in its stored layout updated from a tensor in torch's.
pub(crate) fn zip_torch<T: Real>(param: &Param, p: &mut [T], torch: &[T], f: impl Fn(&mut T, T)) {
    if !param.transposed || param.shape.len() < 2 {
        for (p, &d) in p.iter_mut().zip(torch) {
            f(p, d);
        }
        return;
    }
    for_each_offset(param, |stored, t| f(&mut p[stored], torch[t]));
}

/// `out = x ×ₐ op(M)`: `out[…, i, …] = Σⱼ op(M)[i, j]·x[…, j, …]` along axis
/// `a` of the tensor `dims`, with `M` a row-major `dₐ × dₐ` matrix.
pub(crate) fn mode_product<T: Real>(
    dims: &Dims,
    a: usize,
    x: &[T],
    m: &[T],
    op: Op,
    out: &mut [T],
) {
    let d = dims.as_slice()[a];
    let (pre, post) = dims.around(a);
    let m = Mat { data: m, ld: d, op };
    if post == 1 {
        // One product: out (pre × d) = x (pre × d) · op(M)ᵀ.
        let mt = Mat {
            op: match op {
                Op::N => Op::T,
                Op::T => Op::N,
            },
            ..m
        };
        gemm(pre, d, d, Mat::n(x, d), mt, out, d, false, Par::Pool).expect(SHAPES_CHECKED);
        return;
    }
    let slab = d * post;
    for (xs, os) in x
        .chunks_exact(slab)
        .zip(out.chunks_exact_mut(slab))
        .take(pre)
    {
        gemm(d, post, d, m, Mat::n(xs, post), os, post, false, Par::Pool).expect(SHAPES_CHECKED);
    }
}

/// `out = X₍ₐ₎·X₍ₐ₎ᵀ` (`dₐ × dₐ`, row-major): the Gram matrix of `x` along
/// axis `a`, the other axes contracted.
pub(crate) fn mode_gram<T: Real>(dims: &Dims, a: usize, x: &[T], out: &mut [T]) {
    let d = dims.as_slice()[a];
    let (pre, post) = dims.around(a);
    if post == 1 {
        gemm(
            d,
            d,
            pre,
            Mat::t(x, d),
            Mat::n(x, d),
            out,
            d,
            false,
            Par::Pool,
        )
        .expect(SHAPES_CHECKED);
        return;
    }
    let slab = d * post;
    for (k, xs) in x.chunks_exact(slab).take(pre).enumerate() {
        gemm(
            d,
            d,
            post,
            Mat::n(xs, post),
            Mat::t(xs, post),
            out,
            d,
            k > 0,
            Par::Pool,
        )
        .expect(SHAPES_CHECKED);
    }
}

/// Applies `x ×ₐ op(Mₐ)` along every axis `a` that has a matrix (`mats[a]`
/// of `dₐ²` elements, or `None`: the identity), ping-ponging between `x` and
/// `spare`; returns whether the result ended in `spare`.
pub(crate) fn project<T: Real>(
    dims: &Dims,
    mats: &[Option<&[T]>],
    op: Op,
    x: &mut [T],
    spare: &mut [T],
) -> bool {
    let mut in_spare = false;
    for (a, m) in mats.iter().enumerate() {
        if let Some(m) = m {
            if in_spare {
                mode_product(dims, a, spare, m, op, x);
            } else {
                mode_product(dims, a, x, m, op, spare);
            }
            in_spare = !in_spare;
        }
    }
    in_spare
}

/// How far ahead of the common schedule factor `k` of a tensor's `count`
/// refreshes: with `stagger`, `k·F/count` steps (F the refresh period), so
/// the decompositions of one refresh spread over the period instead of
/// landing on one step; without, 0 (the references' schedule).
pub(crate) fn stagger_offset(stagger: bool, k: usize, count: usize, freq: u64) -> u64 {
    if stagger && count > 0 {
        k as u64 * freq / count as u64
    } else {
        0
    }
}

/// The name of the buffer that counts a tensor's failed decompositions
/// (one element; [`super::Rule::COUNTER`]).
pub(crate) const FAILURES: &str = "decomposition_failures";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Role;

    fn naive_mode(dims: &[usize], a: usize, x: &[f64], m: &[f64]) -> Vec<f64> {
        let d = dims[a];
        let post: usize = dims[a + 1..].iter().product();
        let mut out = vec![0.0; x.len()];
        for (o, v) in out.iter_mut().enumerate() {
            let i = (o / post) % d;
            let base = o - i * post;
            *v = (0..d).map(|j| m[i * d + j] * x[base + j * post]).sum();
        }
        out
    }

    #[test]
    fn mode_products_and_grams_match_their_definitions() {
        for dims in [vec![3], vec![4, 5], vec![2, 3, 4], vec![3, 1, 2, 5]] {
            let n: usize = dims.iter().product();
            let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            let dd = Dims::new(&dims);
            for a in 0..dims.len() {
                let d = dims[a];
                let m: Vec<f64> = (0..d * d).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
                let mt: Vec<f64> = (0..d * d).map(|i| m[(i % d) * d + i / d]).collect();
                let mut out = vec![0.0; n];
                mode_product(&dd, a, &x, &m, Op::N, &mut out);
                assert_eq!(out, naive_mode(&dims, a, &x, &m), "{dims:?} axis {a}");
                mode_product(&dd, a, &x, &m, Op::T, &mut out);
                assert_eq!(out, naive_mode(&dims, a, &x, &mt), "{dims:?} axis {a} T");
                let mut g = vec![0.0; d * d];
                mode_gram(&dd, a, &x, &mut g);
                let post: usize = dims[a + 1..].iter().product();
                for i in 0..d {
                    for j in 0..d {
                        let want: f64 = (0..n)
                            .filter(|o| (o / post) % d == i)
                            .map(|o| x[o] * x[o - i * post + j * post])
                            .sum();
                        assert_eq!(g[i * d + j], want, "{dims:?} gram {a}");
                    }
                }
            }
        }
    }

    #[test]
    fn stored_layouts_map_to_torchs() {
        // A dense weight stored (in, out) = (3, 2): torch's (out, in).
        let p = Param::new(vec![3, 2], Role::Hidden).stored_transposed();
        assert_eq!(torch_dims(&p).as_slice(), [2, 3]);
        let stored: Vec<f64> = (0..6).map(f64::from).collect();
        let mut t = vec![0.0; 6];
        to_torch(&p, &stored, &mut t, |x| x);
        // torch[o][i] = stored[i][o]
        assert_eq!(t, [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        // A kernel stored (kh, kw, in, out) = (2, 1, 3, 2): torch (2, 3, 2, 1).
        let p = Param::new(vec![2, 1, 3, 2], Role::Conv).stored_transposed();
        assert_eq!(torch_dims(&p).as_slice(), [2, 3, 2, 1]);
        let stored: Vec<f64> = (0..12).map(f64::from).collect();
        let mut t = vec![0.0; 12];
        to_torch(&p, &stored, &mut t, |x| x);
        for o in 0..2 {
            for i in 0..3 {
                for h in 0..2 {
                    let torch = ((o * 3 + i) * 2 + h) as usize;
                    let stored_at = ((h * 3 + i) * 2 + o) as usize;
                    assert_eq!(t[torch], stored[stored_at]);
                }
            }
        }
        let mut back = vec![0.0; 12];
        zip_torch(&p, &mut back, &t, |s, x| *s = x);
        assert_eq!(back, stored);
    }
}
