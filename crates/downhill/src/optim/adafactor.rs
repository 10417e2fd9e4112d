//! Adafactor: factored second moments, relative step sizes, update clipping.

use super::mechanics::{ema, Lerp};
use super::passes::{par_reduce, sum_squares, sum_squares_of, wide, Chunk, PARALLEL_LEAF};
use super::{Rule, TensorStep};
use crate::hyper::check;
use crate::Real;

crate::hyper_struct! {
    /// Adafactor (Shazeer & Stern, "Adafactor: Adaptive Learning Rates with
    /// Sublinear Memory Cost", ICML 2018), as `torch.optim.Adafactor`.
    ///
    /// A tensor with two or more dimensions keeps, for each matrix of its
    /// last two dimensions, a row vector `R` and a column vector `C` of mean
    /// squared gradients instead of a full second moment; vectors keep a full
    /// one, `V`. With `t` the step, `ρₜ = min(γ, 1/√t)` and `β̂₂ₜ = 1 − t^c`
    /// (`c` = `beta2_decay`):
    ///
    /// ```text
    /// α ← max(ε₂, RMS(θ)) · ρₜ                    (RMS before the decay)
    /// θ ← θ·(1 − γλ)
    /// R ← lerp(R, mean_j g²ᵢⱼ, t^c),  C ← lerp(C, mean_i g²ᵢⱼ, t^c)
    /// v̂ᵢⱼ ← Rᵢ·Cⱼ / max(mean(R), ε₁)              (vectors: V ← lerp(V, g², t^c), v̂ = V)
    /// U ← g / √max(v̂, ε₁²)
    /// θ ← θ − α / max(1, RMS(U)/d) · U
    /// ```
    /// ε₁ defaults to the element type's machine epsilon, as in torch.
    ///
    /// Memory: a matrix is read three times a step (its statistics, the
    /// update's norm, the step) and written once; the update clipping needs
    /// the norm of an update that depends on statistics of the whole
    /// gradient, so no pass can be merged without storing `U`, which would
    /// cost more than the extra read. Vectors take two passes.
    pub struct Adafactor: "adafactor" {
        /// Step size γ: the relative step is `min(γ, 1/√t)`.
        lr: f64 = 1e-2; check check::non_negative,
        /// Exponent `c` ≤ 0 of the second-moment decay `1 − t^c`.
        beta2_decay: f64 = -0.8; check non_positive,
        /// (ε₁, ε₂): the floor of the variance estimate (none: the element
        /// type's epsilon) and of the parameter RMS.
        eps: (Option<f64>, f64) = (None, 1e-3); check eps_pair,
        /// Update clipping threshold d ≥ 1.
        d: f64 = 1.0; check at_least_one,
        /// Decoupled weight decay λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

fn non_positive(x: &f64) -> std::result::Result<(), &'static str> {
    if x.is_finite() && *x <= 0.0 {
        Ok(())
    } else {
        Err("a finite number <= 0")
    }
}

fn at_least_one(x: &f64) -> std::result::Result<(), &'static str> {
    if x.is_finite() && *x >= 1.0 {
        Ok(())
    } else {
        Err("a finite number >= 1")
    }
}

fn eps_pair(e: &(Option<f64>, f64)) -> std::result::Result<(), &'static str> {
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    if e.0.is_none_or(ok) && ok(e.1) {
        Ok(())
    } else {
        Err("two finite numbers >= 0 (the first may be none)")
    }
}

/// Per-step constants of [`Adafactor`].
#[derive(Clone, Copy, Debug)]
pub struct AdafactorConsts<T> {
    sign: T,
    /// `t^c`, the weight of the new statistics.
    w: Lerp<T>,
    /// ε₁ and ε₁².
    eps1: T,
    eps1_sq: T,
    eps2: f64,
    rho: f64,
    d: f64,
    shrink: T,
    decay: bool,
}

impl Rule for Adafactor {
    type Consts<T: Real> = AdafactorConsts<T>;

    const USE_WHEN: &'static str =
        "memory is tight (large matrices): second moments in O(rows + columns), and relative steps that need little tuning";
    const EXAMPLES: &'static [&'static str] = &[
        "adafactor(lr=0.05)",
        "adafactor(lr=0.05,weight_decay=0.01,d=1.5,eps=(1e-20,0.001))",
    ];

    fn buffers(&self, shape: &[usize]) -> &'static [&'static str] {
        if shape.len() >= 2 {
            &["row_var", "col_var"]
        } else {
            &["variance"]
        }
    }

    fn buffer_shape(&self, buffer: &str, shape: &[usize]) -> Vec<usize> {
        let n = shape.len();
        match buffer {
            // torch's shapes: (..., rows, 1) and (..., 1, columns).
            "row_var" => [&shape[..n - 1], &[1]].concat(),
            "col_var" => [&shape[..n - 2], &[1, shape[n - 1]]].concat(),
            _ => shape.to_vec(),
        }
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> AdafactorConsts<T> {
        let t = step as f64;
        let eps1 = self.eps.0.unwrap_or(T::epsilon().to_f64());
        let eps1_t = T::from_f64(eps1);
        AdafactorConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            w: Lerp::new(t.powf(self.beta2_decay)),
            eps1: eps1_t,
            eps1_sq: eps1_t * eps1_t,
            eps2: self.eps.1,
            rho: self.lr.min(1.0 / t.sqrt()),
            d: self.d,
            shrink: T::from_f64(1.0 - self.lr * self.weight_decay),
            decay: self.weight_decay != 0.0,
        }
    }

    fn step_tensor<T: Real>(c: &AdafactorConsts<T>, t: TensorStep<'_, T>) {
        if t.info.shape.len() >= 2 {
            factored(c, t);
        } else {
            unfactored(c, t);
        }
    }
}

impl<T: Real> AdafactorConsts<T> {
    /// The step size α from ‖θ‖, before the update's clipping.
    fn alpha(&self, param_norm_sq: f64, numel: usize) -> f64 {
        self.eps2.max(param_norm_sq.sqrt() / (numel as f64).sqrt()) * self.rho
    }

    /// `−α / max(1, RMS(U)/d)` as torch computes it.
    fn scale(&self, alpha: f64, update_norm_sq: f64, numel: usize) -> T {
        let denom = 1.0f64.max(update_norm_sq.sqrt() / ((numel as f64).sqrt() * self.d));
        T::from_f64(-alpha / denom)
    }

    /// θ ← θ·(1 − γλ) (when λ ≠ 0), then θ + k·u: torch's two roundings.
    #[inline(always)]
    fn step(&self, p: T, k: T, u: T) -> T {
        let p = if self.decay { p * self.shrink } else { p };
        p + k * u
    }
}

crate::multiversion! {
    /// A vector (or scalar): a full second moment, two passes. Compiled per vector width.
    fn unfactored<T: Real>(c: &AdafactorConsts<T>, t: TensorStep<'_, T>) {
        let numel = t.param.len();
        let mut chunk = Chunk::whole(t.param, t.grad, t.buffers, 1);
        let (pp, uu) = par_reduce(
            chunk.reborrow(),
            &|k: Chunk<'_, T>| {
                let [v, ..] = k.bufs;
                let g = k.g;
                let uu = sum_squares_of(g.len(), |i| {
                    let g = c.sign * g[i];
                    v[i] = ema(v[i], g * g, &c.w);
                    T::one() / v[i].max(c.eps1_sq).sqrt() * g
                });
                (sum_squares(k.p), uu)
            },
            |a, b| (a.0 + b.0, a.1 + b.1),
        );
        let k = c.scale(c.alpha(pp, numel), uu, numel);
        par_reduce(
            chunk.reborrow(),
            &|ch: Chunk<'_, T>| {
                let [v, ..] = ch.bufs;
                for ((p, &g), &v) in ch.p.iter_mut().zip(ch.g).zip(v.iter()) {
                    let u = T::one() / v.max(c.eps1_sq).sqrt() * (c.sign * g);
                    *p = c.step(*p, k, u);
                }
            },
            |(), ()| (),
        );
    }
}

/// Rows of one matrix handled by one leaf: a whole number of rows, about
/// `PARALLEL_LEAF` elements, fixed by the shape alone so the sums are the
/// same for any number of threads.
fn rows_per_block(n: usize) -> usize {
    (PARALLEL_LEAF / n.max(1)).max(1)
}

/// Runs `leaf(block, a, b)` over the row blocks `first..first + count` of a
/// matrix, in parallel, where `a` and `b` are the block's pieces of two
/// slices cut `sa` and `sb` elements per block. The range is split in
/// halves always, so the combination order, and the rounding of any sum,
/// is the same for every number of threads.
#[allow(clippy::too_many_arguments)]
fn over_blocks<T: Send, A: Send>(
    first: usize,
    count: usize,
    a: &mut [T],
    sa: usize,
    b: &mut [T],
    sb: usize,
    leaf: &(impl Fn(usize, &mut [T], &mut [T]) -> A + Sync),
    combine: &(impl Fn(A, A) -> A + Sync),
) -> A {
    if count == 1 {
        return wide(|| leaf(first, a, b));
    }
    let half = count / 2;
    let (a1, a2) = a.split_at_mut((half * sa).min(a.len()));
    let (b1, b2) = b.split_at_mut((half * sb).min(b.len()));
    let (x, y) = rayon::join(
        || over_blocks(first, half, a1, sa, b1, sb, leaf, combine),
        || over_blocks(first + half, count - half, a2, sa, b2, sb, leaf, combine),
    );
    combine(x, y)
}

crate::multiversion! {
    /// A matrix stack (…, m, n): factored statistics, three passes. Compiled per vector width.
    fn factored<T: Real>(c: &AdafactorConsts<T>, t: TensorStep<'_, T>) {
        let shape = &t.info.shape;
        let dims = shape.len();
        let (m, n) = (shape[dims - 2], shape[dims - 1]);
        let numel = t.param.len();
        if numel == 0 {
            return;
        }
        let batch = numel / (m * n);
        let rpb = rows_per_block(n);
        let blocks = m.div_ceil(rpb);
        // Scratch: row means (m), column partial sums (blocks × n).
        t.scratch.clear();
        t.scratch.resize(m + blocks * n, T::zero());
        let [row_var, col_var, ..] = t.buffers;
        let (param, grad) = (t.param, t.grad);

        // Pass 1 over every matrix: ‖θ‖², and the gradient's row and column
        // mean squares into the statistics.
        let mut pp = 0.0;
        for b in 0..batch {
            let off = b * m * n;
            let (p, g) = (&param[off..off + m * n], &grad[off..off + m * n]);
            let (row_sq, partial) = t.scratch.split_at_mut(m);
            pp += over_blocks(
                0,
                blocks,
                row_sq,
                rpb,
                partial,
                n,
                &|blk, row_sq: &mut [T], cols: &mut [T]| {
                    let rows = blk * rpb..((blk + 1) * rpb).min(m);
                    cols.fill(T::zero());
                    for (r, i) in rows.clone().enumerate() {
                        let mut acc = T::zero();
                        for (cj, &x) in cols.iter_mut().zip(&g[i * n..(i + 1) * n]) {
                            let x = c.sign * x;
                            let sq = x * x;
                            acc = acc + sq;
                            *cj = *cj + sq;
                        }
                        row_sq[r] = acc;
                    }
                    sum_squares(&p[rows.start * n..rows.end * n])
                },
                &|a, b| a + b,
            );
            let (row_sq, partial) = t.scratch.split_at(m);
            for (r, &s) in row_var[b * m..(b + 1) * m].iter_mut().zip(row_sq) {
                *r = ema(*r, s / T::from_f64(n as f64), &c.w);
            }
            for (j, cj) in col_var[b * n..(b + 1) * n].iter_mut().enumerate() {
                let sum = (0..blocks).fold(T::zero(), |a, blk| a + partial[blk * n + j]);
                *cj = ema(*cj, sum / T::from_f64(m as f64), &c.w);
            }
        }
        let alpha = c.alpha(pp, numel);

        // Pass 2: ‖U‖².
        let mut uu = 0.0;
        for b in 0..batch {
            let g = &grad[b * m * n..(b + 1) * m * n];
            let (rv, cv) = (&row_var[b * m..(b + 1) * m], &col_var[b * n..(b + 1) * n]);
            let mean = mean_floor(rv, c.eps1);
            uu += over_blocks(
                0,
                blocks,
                &mut [],
                0,
                &mut [],
                0,
                &|blk, _: &mut [T], _: &mut [T]| {
                    let rows = blk * rpb..((blk + 1) * rpb).min(m);
                    rows.map(|i| {
                        // Zipped slices, so the row's loop vectorises.
                        let (gi, ri) = (&g[i * n..(i + 1) * n], rv[i]);
                        let mut acc = [T::zero(); 16];
                        let mut blocks = gi.chunks_exact(16).zip(cv.chunks_exact(16));
                        for (gb, cb) in &mut blocks {
                            for k in 0..16 {
                                let u = c.update(ri, cb[k], mean, gb[k]);
                                acc[k] = acc[k] + u * u;
                            }
                        }
                        let tail = n - n % 16;
                        let rest: f64 = gi[tail..]
                            .iter()
                            .zip(&cv[tail..])
                            .map(|(&gv, &cj)| {
                                let u = c.update(ri, cj, mean, gv).to_f64();
                                u * u
                            })
                            .sum();
                        acc.iter().map(|&a| a.to_f64()).sum::<f64>() + rest
                    })
                    .sum::<f64>()
                },
                &|a, b| a + b,
            );
        }
        let k = c.scale(alpha, uu, numel);

        // Pass 3: the step.
        for b in 0..batch {
            let off = b * m * n;
            let g = &grad[off..off + m * n];
            let (rv, cv) = (&row_var[b * m..(b + 1) * m], &col_var[b * n..(b + 1) * n]);
            let mean = mean_floor(rv, c.eps1);
            over_blocks(
                0,
                blocks,
                &mut param[off..off + m * n],
                rpb * n,
                &mut [],
                0,
                &|blk, pb: &mut [T], _: &mut [T]| {
                    for (r, prow) in pb.chunks_exact_mut(n).enumerate() {
                        let i = blk * rpb + r;
                        let (gi, ri) = (&g[i * n..(i + 1) * n], rv[i]);
                        for ((pj, &gv), &cj) in prow.iter_mut().zip(gi).zip(cv) {
                            *pj = c.step(*pj, k, c.update(ri, cj, mean, gv));
                        }
                    }
                },
                &|(), ()| (),
            );
        }
    }
}

impl<T: Real> AdafactorConsts<T> {
    /// `Uᵢⱼ = g / √max(Rᵢ·Cⱼ/mean, ε₁²)`, in torch's order of operations.
    #[inline(always)]
    fn update(&self, r: T, c: T, mean: T, g: T) -> T {
        let v = (r * c) / mean;
        T::one() / v.max(self.eps1_sq).sqrt() * (self.sign * g)
    }
}

/// `max(mean(R), ε₁)`.
fn mean_floor<T: Real>(rv: &[T], eps1: T) -> T {
    let sum = rv.iter().fold(T::zero(), |a, &x| a + x);
    (sum / T::from_f64(rv.len() as f64)).max(eps1)
}
