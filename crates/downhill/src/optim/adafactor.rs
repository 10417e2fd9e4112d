//! Adafactor: factored second moments, relative step sizes, update clipping.

use super::mechanics::{ema, Lerp};
use super::passes::{par_reduce, sum_squares, sum_squares_of, wide, Chunk, PARALLEL_LEAF};
use super::{Param, Rule, TensorStep};
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
    /// Memory: two passes a step, as for vectors: one reads θ and g for the
    /// statistics, ‖θ‖ and, where torch's ε₁² clamp cannot bite, ‖U‖ (an
    /// algebraic form of it, gathered while each row is in cache); one
    /// writes the step. A matrix where the clamp might bite takes torch's
    /// element-wise norm in a third pass.
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

    const PAPER: &'static str = "Shazeer & Stern 2018";
    const REFERENCE: &'static str = "torch.optim.Adafactor";
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

    fn buffer_shape(&self, buffer: &str, param: &Param) -> Vec<usize> {
        let shape = &param.shape;
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

/// Rows per leaf of the statistics pass: whole rows, at least
/// `PARALLEL_LEAF` elements, and at most `STAT_BLOCKS` leaves per matrix so
/// the per-leaf column sums stay small. Fixed by the shape alone.
fn stat_rows_per_block(m: usize, n: usize) -> usize {
    rows_per_block(n).max(m.div_ceil(STAT_BLOCKS))
}

/// The most leaves of the statistics pass over one matrix.
const STAT_BLOCKS: usize = 256;

/// What the statistics pass learns about a block of rows besides the
/// statistics it writes: ‖θ‖² of the rows, the least new `Rᵢ` of a row with a
/// nonzero gradient, and whether every new `Rᵢ` is finite.
#[derive(Clone, Copy)]
struct RowsSeen<T> {
    param_sq: f64,
    r_min: T,
    finite: bool,
}

impl<T: Real> RowsSeen<T> {
    fn join(a: Self, b: Self) -> Self {
        RowsSeen {
            param_sq: a.param_sq + b.param_sq,
            r_min: if b.r_min < a.r_min { b.r_min } else { a.r_min },
            finite: a.finite && b.finite,
        }
    }
}

crate::multiversion! {
    /// A matrix stack (…, m, n): factored statistics, two passes. Compiled per vector width.
    ///
    /// The update clipping needs ‖U‖² before any parameter moves, and `U`
    /// depends on statistics of the whole gradient. Where the ε₁² clamp
    /// cannot bite, `Uᵢⱼ² = g²ᵢⱼ · mean(R) / (Rᵢ·Cⱼ)`, so
    /// `‖U‖² = mean(R) · Σⱼ Sⱼ / Cⱼ` with `Sⱼ = Σᵢ g²ᵢⱼ / Rᵢ`; `Rᵢ` is known
    /// as soon as row `i` has been read (it is still in cache), so the first
    /// pass gathers `S` beside the statistics and no pass over the gradient
    /// is needed for the norm. The clamp cannot bite when the least `Rᵢ·Cⱼ /
    /// mean` over rows and columns with a nonzero gradient is at least ε₁²
    /// (rounding is monotone, so the least product bounds every one); where
    /// it might, or anything is not finite, that matrix takes torch's
    /// element-by-element norm in a pass of its own. The two sums differ in
    /// rounding, and in gradients whose squares underflow to zero (skipped
    /// here): the norm only matters once ‖U‖² exceeds the element count
    /// (clipping needs RMS(U) > d ≥ 1), far above anything those add.
    fn factored<T: Real>(c: &AdafactorConsts<T>, t: TensorStep<'_, T>) {
        let shape = &t.info.shape;
        let dims = shape.len();
        let (m, n) = (shape[dims - 2], shape[dims - 1]);
        let numel = t.param.len();
        if numel == 0 {
            return;
        }
        let batch = numel / (m * n);
        let srpb = stat_rows_per_block(m, n);
        let sblocks = m.div_ceil(srpb);
        // Scratch: per leaf, the column sums of g² and the sums S.
        t.scratch.clear();
        t.scratch.resize(sblocks * 2 * n, T::zero());
        let [row_var, col_var, ..] = t.buffers;
        let (param, grad) = (t.param, t.grad);
        let n_t = T::from_f64(n as f64);
        let m_t = T::from_f64(m as f64);

        // Pass 1 over every matrix: ‖θ‖², the new statistics, and ‖U‖².
        let mut pp = 0.0;
        let mut uu = 0.0;
        for b in 0..batch {
            let off = b * m * n;
            let (p, g) = (&param[off..off + m * n], &grad[off..off + m * n]);
            let rv = &mut row_var[b * m..(b + 1) * m];
            let seen = over_blocks(
                0,
                sblocks,
                rv,
                srpb,
                &mut t.scratch[..],
                2 * n,
                &|blk, rvb: &mut [T], part: &mut [T]| {
                    let rows = blk * srpb..((blk + 1) * srpb).min(m);
                    let (cols, s) = part.split_at_mut(n);
                    cols.fill(T::zero());
                    s.fill(T::zero());
                    let mut r_min = T::infinity();
                    let mut finite = true;
                    for (r, i) in rows.clone().enumerate() {
                        let gi = &g[i * n..(i + 1) * n];
                        let sum = squares_into(gi, cols);
                        let ri = ema(rvb[r], sum / n_t, &c.w);
                        rvb[r] = ri;
                        finite &= ri.is_finite();
                        if sum > T::zero() {
                            r_min = r_min.min(ri);
                            let inv = T::one() / ri;
                            for (sj, &x) in s.iter_mut().zip(gi) {
                                *sj = *sj + x * x * inv;
                            }
                        }
                    }
                    RowsSeen {
                        param_sq: sum_squares(&p[rows.start * n..rows.end * n]),
                        r_min,
                        finite,
                    }
                },
                &RowsSeen::join,
            );
            pp += seen.param_sq;
            // The leaves' sums, added in leaf order into the first.
            let (first, rest) = t.scratch.split_at_mut(2 * n);
            for part in rest.chunks_exact(2 * n) {
                for (a, &x) in first.iter_mut().zip(part) {
                    *a = *a + x;
                }
            }
            let (col_sq, s) = first.split_at(n);
            let cv = &mut col_var[b * n..(b + 1) * n];
            let mut c_min = T::infinity();
            let mut finite = seen.finite;
            let mut s_over_c = 0.0;
            for ((cj, &sum), &sj) in cv.iter_mut().zip(col_sq).zip(s) {
                *cj = ema(*cj, sum / m_t, &c.w);
                finite &= cj.is_finite() && sj.is_finite();
                if sum > T::zero() {
                    c_min = c_min.min(*cj);
                    s_over_c += sj.to_f64() / cj.to_f64();
                }
            }
            let rv = &row_var[b * m..(b + 1) * m];
            let mean = mean_floor(rv, c.eps1);
            let clamp_free = seen.r_min == T::infinity()
                || (seen.r_min * c_min) / mean >= c.eps1_sq;
            uu += if finite && clamp_free {
                mean.to_f64() * s_over_c
            } else {
                let cv = &col_var[b * n..(b + 1) * n];
                update_norm_sq(c, g, rv, cv, mean, n)
            };
        }
        let k = c.scale(c.alpha(pp, numel), uu, numel);

        // Pass 2: the step.
        let rpb = rows_per_block(n);
        let blocks = m.div_ceil(rpb);
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

/// `cols[j] += g[j]²` and `Σⱼ g[j]²`, in 16 lanes so the row's sum vectorises.
#[inline(always)]
fn squares_into<T: Real>(g: &[T], cols: &mut [T]) -> T {
    let mut acc = [T::zero(); 16];
    let mut blocks = g.chunks_exact(16).zip(cols.chunks_exact_mut(16));
    for (gb, cb) in &mut blocks {
        for k in 0..16 {
            let sq = gb[k] * gb[k];
            acc[k] = acc[k] + sq;
            cb[k] = cb[k] + sq;
        }
    }
    let tail = g.len() - g.len() % 16;
    let mut rest = T::zero();
    for (&x, cj) in g[tail..].iter().zip(&mut cols[tail..]) {
        let sq = x * x;
        rest = rest + sq;
        *cj = *cj + sq;
    }
    acc.iter().fold(rest, |a, &x| a + x)
}

crate::multiversion! {
    /// ‖U‖² of one matrix element by element, in torch's order: the pass
    /// taken when the ε₁² clamp might bite. Compiled per vector width.
    fn update_norm_sq<T: Real>(
        c: &AdafactorConsts<T>,
        g: &[T],
        rv: &[T],
        cv: &[T],
        mean: T,
        n: usize,
    ) -> f64 {
        let m = rv.len();
        let rpb = rows_per_block(n);
        over_blocks(
            0,
            m.div_ceil(rpb),
            &mut [],
            0,
            &mut [],
            0,
            &|blk, _: &mut [T], _: &mut [T]| {
                let rows = blk * rpb..((blk + 1) * rpb).min(m);
                rows.map(|i| {
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
        )
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
