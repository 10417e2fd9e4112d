//! The transformer's own kernels, each with its backward pass: LayerNorm, the
//! tanh-approximated GELU, causal multi-head attention, bias rows and column
//! sums, token and position embeddings, and the token-level cross-entropy.
//!
//! Activations are token-major, `[tokens, width]` row-major. Every parallel
//! pass splits rows (or sequences) into blocks fixed by the shape, and every
//! sum over rows runs in row order on one thread, so no bit depends on the
//! thread count.

use crate::layers::PAR_ELEMS;
use crate::simd::with_simd;
use downhill::linalg::{gemm, Mat, Par, SHAPES_CHECKED};
use downhill::Real;
use rayon::prelude::*;
use std::any::TypeId;

/// Lanes of the reductions below: one AVX-512 register of f32.
const LANES: usize = 16;

/// Reduces `term(a[i], b[i], c[i])` over three equally long slices with
/// `combine`, in [`LANES`] interleaved accumulators that start at `init`
/// and are combined in a fixed order at the end: a loop the compiler can
/// vectorise (a single running accumulator cannot be reordered), with bits
/// fixed by the length alone. The wrappers below pass a slice again where
/// they read fewer than three.
#[inline(always)]
fn lane_reduce<T: Real>(
    a: &[T],
    b: &[T],
    c: &[T],
    init: T,
    term: impl Fn(T, T, T) -> T,
    combine: impl Fn(T, T) -> T,
) -> T {
    let mut acc = [init; LANES];
    let (mut ca, mut cb, mut cc) = (
        a.chunks_exact(LANES),
        b.chunks_exact(LANES),
        c.chunks_exact(LANES),
    );
    for ((xa, xb), xc) in (&mut ca).zip(&mut cb).zip(&mut cc) {
        for (s, ((&x, &y), &z)) in acc.iter_mut().zip(xa.iter().zip(xb).zip(xc)) {
            *s = combine(*s, term(x, y, z));
        }
    }
    let rest = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .zip(cc.remainder());
    for (s, ((&x, &y), &z)) in acc.iter_mut().zip(rest) {
        *s = combine(*s, term(x, y, z));
    }
    acc.iter().fold(init, |s, &v| combine(s, v))
}

#[inline(always)]
fn add<T: Real>(s: T, v: T) -> T {
    s + v
}

/// `Σ xs`.
#[inline(always)]
fn lane_sum<T: Real>(xs: &[T]) -> T {
    lane_reduce(xs, xs, xs, T::zero(), |x, _, _| x, add)
}

/// `Σ xs ⊙ ys`.
#[inline(always)]
fn lane_dot<T: Real>(xs: &[T], ys: &[T]) -> T {
    lane_reduce(xs, ys, ys, T::zero(), |x, y, _| x * y, add)
}

/// `Σ (xs − mu)²`.
#[inline(always)]
fn lane_var<T: Real>(xs: &[T], mu: T) -> T {
    lane_reduce(xs, xs, xs, T::zero(), |x, _, _| (x - mu) * (x - mu), add)
}

/// `(Σ g, Σ g ⊙ (xs − mu))` with `g = dy ⊙ gamma`.
#[inline(always)]
fn lane_norm_sums<T: Real>(dy: &[T], gamma: &[T], xs: &[T], mu: T) -> (T, T) {
    (
        lane_reduce(dy, gamma, gamma, T::zero(), |d, g, _| d * g, add),
        lane_reduce(dy, gamma, xs, T::zero(), |d, g, x| d * g * (x - mu), add),
    )
}

/// `max xs` of a non-empty slice.
#[inline(always)]
fn lane_max<T: Real>(xs: &[T]) -> T {
    let max = |m: T, v: T| if v > m { v } else { m };
    lane_reduce(xs, xs, xs, xs[0], |x, _, _| x, max)
}

/// LayerNorm's ε, torch's default.
pub(super) const LN_EPS: f64 = 1e-5;

/// Rows per parallel task in a row-wise pass over rows of `width` values.
fn rows_per_task(width: usize) -> usize {
    (PAR_ELEMS / width.max(1)).max(1)
}

/// `y = (x − mean)/√(var + ε) ⊙ gamma + beta` per row of `d` values (population
/// variance, as torch's `LayerNorm`); keeps each row's mean and 1/√(var + ε).
pub(super) fn layer_norm<T: Real>(
    x: &[T],
    gamma: &[T],
    beta: &[T],
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
    d: usize,
) {
    let rows = rows_per_task(d);
    let (inv_d, eps) = (T::from_f64(1.0 / d as f64), T::from_f64(LN_EPS));
    y.par_chunks_mut(rows * d)
        .zip(x.par_chunks(rows * d))
        .zip(mean.par_chunks_mut(rows).zip(rstd.par_chunks_mut(rows)))
        .for_each(|((yb, xb), (mb, rb))| {
            with_simd(
                #[inline(always)]
                || {
                    let it = yb.chunks_exact_mut(d).zip(xb.chunks_exact(d));
                    for ((yr, xr), (m, r)) in it.zip(mb.iter_mut().zip(rb.iter_mut())) {
                        let mu = lane_sum(xr) * inv_d;
                        let var = lane_var(xr, mu) * inv_d;
                        let rs = T::one() / (var + eps).sqrt();
                        for ((o, &v), (&g, &b)) in yr.iter_mut().zip(xr).zip(gamma.iter().zip(beta))
                        {
                            *o = (v - mu) * rs * g + b;
                        }
                        (*m, *r) = (mu, rs);
                    }
                },
            )
        });
}

/// LayerNorm's backward pass: adds the input gradient to `dx` (the residual
/// stream's gradient already there) and writes the gain and bias gradients.
///
/// With `x̂ = (x − mean)·rstd` and `g = dy ⊙ gamma`:
/// `dx += rstd·(g − mean(g) − x̂·mean(g ⊙ x̂))`, `dgamma = Σ dy ⊙ x̂`, `dbeta = Σ dy`.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_norm_backward<T: Real>(
    dy: &[T],
    x: &[T],
    mean: &[T],
    rstd: &[T],
    gamma: &[T],
    dx: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    d: usize,
) {
    let rows = rows_per_task(d);
    let inv_d = T::from_f64(1.0 / d as f64);
    dx.par_chunks_mut(rows * d)
        .zip(dy.par_chunks(rows * d).zip(x.par_chunks(rows * d)))
        .zip(mean.par_chunks(rows).zip(rstd.par_chunks(rows)))
        .for_each(|((dxb, (dyb, xb)), (mb, rb))| {
            with_simd(
                #[inline(always)]
                || {
                    let it = dxb
                        .chunks_exact_mut(d)
                        .zip(dyb.chunks_exact(d).zip(xb.chunks_exact(d)));
                    for ((dxr, (dyr, xr)), (&mu, &rs)) in it.zip(mb.iter().zip(rb)) {
                        let (sg, sgx) = lane_norm_sums(dyr, gamma, xr, mu);
                        let (mg, mgx) = (sg * inv_d, sgx * rs * inv_d);
                        for ((o, (&g, &v)), &gm) in
                            dxr.iter_mut().zip(dyr.iter().zip(xr)).zip(gamma)
                        {
                            let xh = (v - mu) * rs;
                            *o = *o + rs * (g * gm - mg - xh * mgx);
                        }
                    }
                },
            )
        });
    dgamma.fill(T::zero());
    dbeta.fill(T::zero());
    with_simd(
        #[inline(always)]
        || {
            let it = dy.chunks_exact(d).zip(x.chunks_exact(d));
            for ((dyr, xr), (&mu, &rs)) in it.zip(mean.iter().zip(rstd)) {
                for ((dg, db), (&g, &v)) in dgamma
                    .iter_mut()
                    .zip(dbeta.iter_mut())
                    .zip(dyr.iter().zip(xr))
                {
                    *dg = *dg + g * (v - mu) * rs;
                    *db = *db + g;
                }
            }
        },
    );
}

/// √(2/π), GELU's tanh approximation constant.
const GELU_K: f64 = 0.797_884_560_802_865_4;
/// The cubic term's coefficient in GELU's tanh approximation.
const GELU_C: f64 = 0.044_715;

/// `y = ½·x·(1 + tanh(z))` with `z = √(2/π)·(x + 0.044715·x³)`: GPT-2's
/// GELU, torch's `GELU(approximate="tanh")`, computed as `x·σ(2z)` (the same
/// function: `½(1 + tanh z) = σ(2z)`), so that it needs one exponential.
pub(super) fn gelu<T: Real>(x: &[T], y: &mut [T]) {
    if let (Some(x), Some(y)) = (as_f32(x), as_f32_mut(y)) {
        return gelu_with(x, y, exp_f32);
    }
    gelu_with(x, y, T::exp);
}

/// `dy ← dy ⊙ gelu'(x)` in place: `gelu' = σ(2z) + 2x·σ(2z)(1 − σ(2z))·z'`.
pub(super) fn gelu_backward<T: Real>(x: &[T], dy: &mut [T]) {
    if let (Some(x), Some(dy)) = (as_f32(x), as_f32_mut(dy)) {
        return gelu_backward_with(x, dy, exp_f32);
    }
    gelu_backward_with(x, dy, T::exp);
}

/// `σ(2z)` for GELU's `z(x)`, with the exponential `exp`.
#[inline(always)]
fn gelu_sigmoid<T: Real>(v: T, exp: impl Fn(T) -> T) -> T {
    let (k2, c) = (T::from_f64(2.0 * GELU_K), T::from_f64(GELU_C));
    T::one() / (T::one() + exp(-k2 * (v + c * v * v * v)))
}

fn gelu_with<T: Real, E: Fn(T) -> T + Copy + Sync>(x: &[T], y: &mut [T], exp: E) {
    y.par_chunks_mut(PAR_ELEMS)
        .zip(x.par_chunks(PAR_ELEMS))
        .for_each(|(yb, xb)| {
            with_simd(
                #[inline(always)]
                || {
                    for (o, &v) in yb.iter_mut().zip(xb) {
                        *o = v * gelu_sigmoid(v, exp);
                    }
                },
            )
        });
}

fn gelu_backward_with<T: Real, E: Fn(T) -> T + Copy + Sync>(x: &[T], dy: &mut [T], exp: E) {
    let (k2, c3) = (T::from_f64(2.0 * GELU_K), T::from_f64(3.0 * GELU_C));
    dy.par_chunks_mut(PAR_ELEMS)
        .zip(x.par_chunks(PAR_ELEMS))
        .for_each(|(db, xb)| {
            with_simd(
                #[inline(always)]
                || {
                    for (g, &v) in db.iter_mut().zip(xb) {
                        let s = gelu_sigmoid(v, exp);
                        let dz2 = k2 * (T::one() + c3 * v * v);
                        *g = *g * (s + v * s * (T::one() - s) * dz2);
                    }
                },
            )
        });
}

/// `xs` as `f32`s when `T` is `f32`.
fn as_f32<T: Real>(xs: &[T]) -> Option<&[f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: `T` is `f32` (the same type id), so the slice is one of
        // `f32`s: same pointer, length and lifetime.
        unsafe { std::slice::from_raw_parts(xs.as_ptr().cast::<f32>(), xs.len()) }
    })
}

/// `xs` as mutable `f32`s when `T` is `f32`.
fn as_f32_mut<T: Real>(xs: &mut [T]) -> Option<&mut [f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: `T` is `f32` (the same type id), so the slice is one of
        // `f32`s; the exclusive borrow moves into the result.
        unsafe { std::slice::from_raw_parts_mut(xs.as_mut_ptr().cast::<f32>(), xs.len()) }
    })
}

/// `eˣ` in f32 with plain arithmetic, so that loops over it vectorise (libm's
/// `expf` is a call per element). `x = n·ln 2 + r` with `|r| ≤ ½ln 2`
/// (ln 2 split in two so that `n·ln2_hi` is exact), `eʳ` by its Taylor
/// series to degree 7 (truncation below 6e-9 relative), and `2ⁿ` put
/// straight into the exponent bits. Inputs are clamped to `[−87, 88]`, where
/// `eˣ` is a normal f32; the GELU and its tests never need more.
#[inline(always)]
pub(super) fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// Adds `bias` to every row of `y` (rows of `bias.len()` values).
pub(super) fn add_bias<T: Real>(y: &mut [T], bias: &[T]) {
    let m = bias.len();
    y.par_chunks_mut(rows_per_task(m) * m).for_each(|yb| {
        with_simd(
            #[inline(always)]
            || {
                for row in yb.chunks_exact_mut(m) {
                    for (o, &b) in row.iter_mut().zip(bias) {
                        *o = *o + b;
                    }
                }
            },
        )
    });
}

/// `out = Σ_rows dy`: a bias's gradient, summed in row order.
pub(super) fn column_sums<T: Real>(dy: &[T], out: &mut [T]) {
    out.fill(T::zero());
    let m = out.len();
    with_simd(
        #[inline(always)]
        || {
            for row in dy.chunks_exact(m) {
                for (o, &g) in out.iter_mut().zip(row) {
                    *o = *o + g;
                }
            }
        },
    );
}

/// The attention's shape: `t` tokens per sequence, width `d`, `heads` heads.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attn {
    pub t: usize,
    pub d: usize,
    pub heads: usize,
}

impl Attn {
    fn hd(&self) -> usize {
        self.d / self.heads
    }
    fn scale<T: Real>(&self) -> T {
        T::from_f64(1.0 / (self.hd() as f64).sqrt())
    }
}

/// Causal multi-head self-attention, a sequence per task.
///
/// `qkv` is `[tokens, 3d]` (queries, keys, values side by side, head `h`'s
/// columns `h·hd..(h+1)·hd` of each); `probs` gets each sequence's and head's
/// `[t, t]` attention weights `P = softmax(Q·Kᵀ/√hd)` with future positions
/// 0 (kept for the backward pass: memory linear in the batch); `out` gets
/// `P·V`, heads side by side, `[tokens, d]`.
pub(super) fn attention<T: Real>(a: Attn, qkv: &[T], probs: &mut [T], out: &mut [T]) {
    let (t, d, hd) = (a.t, a.d, a.hd());
    let scale = a.scale::<T>();
    out.par_chunks_mut(t * d)
        .zip(probs.par_chunks_mut(a.heads * t * t))
        .zip(qkv.par_chunks(t * 3 * d))
        .for_each(|((o, p), x)| {
            for h in 0..a.heads {
                let p = &mut p[h * t * t..(h + 1) * t * t];
                let (q, k, v) = (&x[h * hd..], &x[d + h * hd..], &x[2 * d + h * hd..]);
                gemm(
                    t,
                    t,
                    hd,
                    Mat::n(q, 3 * d),
                    Mat::t(k, 3 * d),
                    p,
                    t,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
                match as_f32_mut(p) {
                    Some(p) => with_simd(
                        #[inline(always)]
                        || causal_softmax(p, t, Real::to_f64(scale) as f32, exp_f32),
                    ),
                    None => with_simd(
                        #[inline(always)]
                        || causal_softmax(p, t, scale, T::exp),
                    ),
                }
                gemm(
                    t,
                    hd,
                    t,
                    Mat::n(p, t),
                    Mat::n(v, 3 * d),
                    &mut o[h * hd..],
                    d,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
            }
        });
}

/// Row `i` of the `t × t` scores `s` becomes `softmax(scale·s[i, 0..=i])`,
/// with 0 after the diagonal. The largest score is subtracted first, so no
/// exponential overflows.
#[inline(always)]
fn causal_softmax<T: Real>(s: &mut [T], t: usize, scale: T, exp: impl Fn(T) -> T) {
    for (i, row) in s.chunks_exact_mut(t).enumerate() {
        let (live, future) = row.split_at_mut(i + 1);
        // The scale is positive: the largest scaled score is the scaled largest.
        let max = lane_max(live) * scale;
        for v in live.iter_mut() {
            *v = exp(*v * scale - max);
        }
        let inv = T::one() / lane_sum(live);
        for v in live.iter_mut() {
            *v = *v * inv;
        }
        future.fill(T::zero());
    }
}

/// The attention's backward pass: `dqkv` gets the gradient of the queries,
/// keys and values from `dout` (`[tokens, d]`), using the kept `probs`.
/// `dp` is a `[sequences, t, t]` work buffer.
///
/// Per sequence and head, with `S = Q·Kᵀ/√hd`, `P = softmax(S)`, `O = P·V`:
/// `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`,
/// `dQ = dS·K/√hd`, `dK = dSᵀ·Q/√hd`.
pub(super) fn attention_backward<T: Real>(
    a: Attn,
    qkv: &[T],
    probs: &[T],
    dout: &[T],
    dqkv: &mut [T],
    dp: &mut [T],
) {
    let (t, d, hd) = (a.t, a.d, a.hd());
    let scale = a.scale::<T>();
    dqkv.par_chunks_mut(t * 3 * d)
        .zip(dp.par_chunks_mut(t * t))
        .zip(probs.par_chunks(a.heads * t * t))
        .zip(qkv.par_chunks(t * 3 * d).zip(dout.par_chunks(t * d)))
        .for_each(|(((dx, dp), p), (x, dout))| {
            for h in 0..a.heads {
                let p = &p[h * t * t..(h + 1) * t * t];
                let (q, k, v) = (&x[h * hd..], &x[d + h * hd..], &x[2 * d + h * hd..]);
                let dout = &dout[h * hd..];
                gemm(
                    t,
                    hd,
                    t,
                    Mat::t(p, t),
                    Mat::n(dout, d),
                    &mut dx[2 * d + h * hd..],
                    3 * d,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
                gemm(
                    t,
                    t,
                    hd,
                    Mat::n(dout, d),
                    Mat::t(v, 3 * d),
                    dp,
                    t,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
                with_simd(
                    #[inline(always)]
                    || {
                        for (i, (dr, pr)) in
                            dp.chunks_exact_mut(t).zip(p.chunks_exact(t)).enumerate()
                        {
                            let live = i + 1;
                            let dot = lane_dot(&dr[..live], &pr[..live]);
                            for (g, &pv) in dr[..live].iter_mut().zip(&pr[..live]) {
                                *g = pv * (*g - dot) * scale;
                            }
                            dr[live..].fill(T::zero());
                        }
                    },
                );
                gemm(
                    t,
                    hd,
                    t,
                    Mat::n(dp, t),
                    Mat::n(k, 3 * d),
                    &mut dx[h * hd..],
                    3 * d,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
                gemm(
                    t,
                    hd,
                    t,
                    Mat::t(dp, t),
                    Mat::n(q, 3 * d),
                    &mut dx[d + h * hd..],
                    3 * d,
                    false,
                    Par::Seq,
                )
                .expect(SHAPES_CHECKED);
            }
        });
}

/// `x[r] = tok[ids[r]] + pos[r mod t]` for every token row `r` of width `d`.
pub(super) fn embed<T: Real>(ids: &[u32], tok: &[T], pos: &[T], x: &mut [T], t: usize, d: usize) {
    x.par_chunks_mut(t * d)
        .zip(ids.par_chunks(t))
        .for_each(|(xs, ids)| {
            for ((row, &id), p) in xs.chunks_exact_mut(d).zip(ids).zip(pos.chunks_exact(d)) {
                let e = &tok[id as usize * d..(id as usize + 1) * d];
                for ((o, &a), &b) in row.iter_mut().zip(e).zip(p) {
                    *o = a + b;
                }
            }
        });
}

/// The embeddings' backward pass, in token order: `dtok[ids[r]] += dx[r]`,
/// `dpos[r mod t] += dx[r]` (both accumulate onto what is there).
pub(super) fn embed_backward<T: Real>(
    ids: &[u32],
    dx: &[T],
    dtok: &mut [T],
    dpos: &mut [T],
    t: usize,
    d: usize,
) {
    with_simd(
        #[inline(always)]
        || {
            for (r, (row, &id)) in dx.chunks_exact(d).zip(ids).enumerate() {
                let e = &mut dtok[id as usize * d..(id as usize + 1) * d];
                for (o, &g) in e.iter_mut().zip(row) {
                    *o = *o + g;
                }
                let p = &mut dpos[(r % t) * d..(r % t + 1) * d];
                for (o, &g) in p.iter_mut().zip(row) {
                    *o = *o + g;
                }
            }
        },
    );
}

/// Softmax cross-entropy of every token's logits (`[tokens, v]`) against its
/// target. Returns the loss summed over tokens and how many arg-maxes hit the
/// target. With `grad`, replaces the logits by the gradient of the mean loss,
/// `(softmax − onehot)/tokens`. `parts` holds one (loss, hits) per block of
/// rows, summed in block order.
pub(super) fn cross_entropy<T: Real>(
    logits: &mut [T],
    targets: &[u32],
    v: usize,
    grad: bool,
    parts: &mut Vec<(f64, usize)>,
) -> (f64, usize) {
    let n = targets.len();
    let rows = rows_per_task(v);
    parts.resize(n.div_ceil(rows), (0.0, 0));
    let scale = T::from_f64(1.0 / n as f64);
    logits[..n * v]
        .par_chunks_mut(rows * v)
        .zip(targets.par_chunks(rows))
        .zip(parts.par_iter_mut())
        .for_each(|((zb, tb), part)| {
            let (mut loss, mut hits) = (0.0, 0);
            for (z, &y) in zb.chunks_exact_mut(v).zip(tb) {
                let y = y as usize;
                let (mut best, mut arg) = (z[0], 0);
                for (j, &val) in z.iter().enumerate() {
                    if val > best {
                        (best, arg) = (val, j);
                    }
                }
                let sum: T = z.iter().map(|&val| (val - best).exp()).sum();
                loss += Real::to_f64(sum.ln()) - Real::to_f64(z[y] - best);
                hits += usize::from(arg == y);
                if grad {
                    let inv = scale / sum;
                    for o in z.iter_mut() {
                        *o = (*o - best).exp() * inv;
                    }
                    z[y] = z[y] - scale;
                }
            }
            *part = (loss, hits);
        });
    parts
        .iter()
        .fold((0.0, 0), |(l, h), &(pl, ph)| (l + pl, h + ph))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_two_ulps_of_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max((got - want).abs() / want);
            x += 0.001_37;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
    }

    #[test]
    fn f32_gelu_matches_the_f64_formula() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.003).collect();
        let mut y = vec![0.0f32; xs.len()];
        gelu(&xs, &mut y);
        let mut dy = vec![1.0f32; xs.len()];
        gelu_backward(&xs, &mut dy);
        for ((&x, &g), &dg) in xs.iter().zip(&y).zip(&dy) {
            let x = x as f64;
            let t = (GELU_K * (x + GELU_C * x * x * x)).tanh();
            let want = 0.5 * x * (1.0 + t);
            let dt = (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x);
            let dwant = 0.5 * (1.0 + t) + 0.5 * x * dt;
            assert!(
                (g as f64 - want).abs() < 1e-6 * (1.0 + want.abs()),
                "gelu({x})"
            );
            assert!(
                (dg as f64 - dwant).abs() < 1e-6 * (1.0 + dwant.abs()),
                "gelu'({x})"
            );
        }
    }
}
