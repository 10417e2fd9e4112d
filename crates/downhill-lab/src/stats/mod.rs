//! Exact statistics for ranking optimisers over seeds.
//!
//! Everything here is a pure function on `&[f64]` (or on a few numbers),
//! written from the formulas with no dependencies, so that a comparison over
//! seeds can say how sure it is: confidence intervals of a mean, the paired
//! Student t test, the Wilcoxon signed-rank test, Holm's correction for
//! comparing several optimisers at once, and how many seeds a comparison
//! needs. The results are checked against `scipy.stats` (see `stats/tests.rs`).
//!
//! No function panics. Where a quantity is undefined (too few values, a NaN
//! or infinite input, zero variance where the test divides by it, a
//! probability outside `[0, 1]`) the function returns `None`, except
//! [`holm`], which keeps its shape and fills it with NaN (documented there).
//!
//! The special functions underneath:
//!
//! * `ln Γ` by the Stirling series (Bernoulli terms up to `B₁₆`) after
//!   shifting the argument above 10 with `Γ(x+1) = xΓ(x)`, and `ln B(a, b)`
//!   with the large argument's `ln Γ` difference formed without
//!   cancellation;
//! * the regularised incomplete beta function `I_x(a, b)` by its continued
//!   fraction (DLMF 8.17.22) evaluated with the modified Lentz method, on the
//!   side of `x = (a+1)/(a+b+2)` where it converges;
//! * the regularised upper incomplete gamma function `Q(½, x)` (for `erfc`)
//!   by its power series or its Legendre continued fraction;
//! * quantiles by a bracketed Newton iteration on `ln(tail)` against
//!   `ln|t|`, falling back to bisection whenever a step leaves the bracket.
//!
//! All of them are accurate to about `1e-13` relative in the range used here.

mod special;
#[cfg(test)]
mod tests;

use special::*;
use std::f64::consts::PI;

/// Relative precision the iterations stop at.
pub(super) const EPS: f64 = f64::EPSILON;
/// Stand-in for zero in Lentz's method.
pub(super) const TINY: f64 = 1e-300;
/// Cap on the terms of a continued fraction or series.
pub(super) const MAX_TERMS: usize = 100_000;

// ---------------------------------------------------------------------------
// Descriptive statistics
// ---------------------------------------------------------------------------

/// Arithmetic mean, `x̄ = (1/n) Σ xᵢ`.
///
/// Computed in two passes (`x̄ + (1/n) Σ (xᵢ − x̄)`) to cancel the rounding
/// error of the first sum. `None` when `xs` is empty, holds a NaN or an
/// infinity, or the sum overflows.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    if !m.is_finite() {
        return None;
    }
    let m = m + xs.iter().map(|x| x - m).sum::<f64>() / n;
    m.is_finite().then_some(m)
}

/// Sample standard deviation with Bessel's correction,
/// `s = √( Σ (xᵢ − x̄)² / (n − 1) )`.
///
/// `None` for fewer than two values or any non-finite value (or overflow).
/// Equal values give `Some(0.0)`.
pub fn sample_std(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    let s = (ss / (xs.len() - 1) as f64).sqrt();
    s.is_finite().then_some(s)
}

/// Standard normal distribution function,
/// `Φ(z) = ½ erfc(−z/√2)`, with `erfc(u) = Q(½, u²)` (the regularised upper
/// incomplete gamma function) for `u ≥ 0` and `erfc(−u) = 2 − erfc(u)`.
///
/// `None` for a NaN `z`; `Φ(±∞)` is 1 or 0.
pub fn normal_cdf(z: f64) -> Option<f64> {
    if z.is_nan() {
        return None;
    }
    let tail = normal_tail(z.abs());
    Some(if z < 0.0 { tail } else { 1.0 - tail })
}

/// Standard normal quantile `Φ⁻¹(p)`: the `z` with `Φ(z) = p`, found by a
/// bracketed Newton iteration on [`normal_cdf`] (relative accuracy about
/// 1e-14 for `1e-300 < p < 1 − 1e-16`).
///
/// `Φ⁻¹(0) = −∞`, `Φ⁻¹(1) = +∞`; `None` for `p` outside `[0, 1]` or NaN.
pub fn normal_quantile(p: f64) -> Option<f64> {
    quantile_by_tail(p, |q| {
        // Rough start: linear near the centre, the Abramowitz–Stegun 26.2.22
        // rational approximation (error < 3e-3) in the tail.
        let guess = if q > 0.3 {
            (0.5 - q) * (2.0 * PI).sqrt()
        } else {
            let t = (-2.0 * q.ln()).sqrt();
            t - (2.30753 + 0.27061 * t) / (1.0 + 0.99229 * t + 0.04481 * t * t)
        };
        solve_tail(q, guess, normal_tail, normal_ln_pdf)
    })
}

/// Shared frame of the quantile functions: `p = 0`, `½`, `1` and the
/// symmetry `F⁻¹(p) = −F⁻¹(1 − p)`; `upper(q)` solves `P(X > u) = q` for
/// `0 < q < ½`.
fn quantile_by_tail(p: f64, upper: impl Fn(f64) -> f64) -> Option<f64> {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    if p == 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if p == 1.0 {
        return Some(f64::INFINITY);
    }
    if p == 0.5 {
        return Some(0.0);
    }
    Some(if p < 0.5 {
        -upper(p)
    } else {
        // 1 − p is exact for p in [½, 1] (Sterbenz).
        upper(1.0 - p)
    })
}

/// Valid degrees of freedom: positive, not NaN (`+∞` means the normal).
fn valid_df(df: f64) -> bool {
    !df.is_nan() && df > 0.0
}

/// Student t distribution function with `df` degrees of freedom:
/// `F(t) = ½ I_x(df/2, ½)` for `t ≤ 0` and `1 − ½ I_x(df/2, ½)` for
/// `t > 0`, where `x = df/(df + t²)` and `I` is the regularised incomplete
/// beta function (accuracy about 1e-14; the lower tail keeps full relative
/// precision).
///
/// `df` need not be an integer; `df = +∞` gives the normal distribution.
/// `None` for a NaN `t` or a `df` that is NaN or not positive.
pub fn student_t_cdf(t: f64, df: f64) -> Option<f64> {
    if t.is_nan() || !valid_df(df) {
        return None;
    }
    let tail = t_tail(t.abs(), df);
    Some(if t <= 0.0 { tail } else { 1.0 - tail })
}

/// Student t quantile `F⁻¹(p)` with `df` degrees of freedom: the `t` with
/// [`student_t_cdf`]`(t, df) = p`, found by a bracketed Newton iteration
/// (relative accuracy about 1e-13).
///
/// `F⁻¹(0) = −∞`, `F⁻¹(1) = +∞`; `None` for `p` outside `[0, 1]`, a NaN,
/// or a `df` that is not positive.
pub fn student_t_quantile(p: f64, df: f64) -> Option<f64> {
    if !valid_df(df) {
        return None;
    }
    quantile_by_tail(p, |q| {
        let z = normal_quantile(1.0 - q).unwrap_or(1.0);
        // Cornish–Fisher start; the bracket search repairs it for small df.
        let guess = if df.is_infinite() {
            z
        } else {
            z + (z * z * z + z) / (4.0 * df)
        };
        solve_tail(q, guess, |u| t_tail(u, df), |u| t_ln_pdf(u, df))
    })
}

// ---------------------------------------------------------------------------
// Intervals and tests
// ---------------------------------------------------------------------------

/// Two-sided Student t confidence interval of the mean at `level`
/// (e.g. 0.95): `x̄ + F⁻¹((1 ∓ level)/2; n − 1) · s/√n`, the same as
/// `scipy.stats.t.interval(level, df=n-1, loc=mean, scale=sem)`.
///
/// `None` for fewer than two values, any non-finite value, or `level`
/// outside `(0, 1)`. Equal values give the degenerate interval `(x̄, x̄)`
/// (scipy returns NaN there, since it refuses a zero scale).
pub fn t_interval(xs: &[f64], level: f64) -> Option<(f64, f64)> {
    if level.is_nan() || level <= 0.0 || level >= 1.0 {
        return None;
    }
    let m = mean(xs)?;
    let s = sample_std(xs)?;
    let n = xs.len() as f64;
    let sem = s / n.sqrt();
    let df = n - 1.0;
    let lo = student_t_quantile((1.0 - level) / 2.0, df)?;
    let hi = student_t_quantile((1.0 + level) / 2.0, df)?;
    Some((m + sem * lo, m + sem * hi))
}

/// Two-sided 95% Student t confidence interval of the mean,
/// `x̄ ± t₀.₉₇₅,ₙ₋₁ · s/√n`; see [`t_interval`]. `None` for fewer than two
/// values or any non-finite value.
pub fn t_interval95(xs: &[f64]) -> Option<(f64, f64)> {
    t_interval(xs, 0.95)
}

/// Result of [`paired_t_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// `t = d̄ / (s_d/√n)` for the differences `dᵢ = aᵢ − bᵢ`.
    pub t: f64,
    /// Degrees of freedom, `n − 1`.
    pub df: f64,
    /// Two-sided p-value, `2 P(T_df > |t|)`.
    pub p_two_sided: f64,
    /// Mean difference `d̄ = (1/n) Σ (aᵢ − bᵢ)`; positive when `a` is larger.
    pub mean_diff: f64,
}

/// Paired Student t test of `mean(a − b) = 0`, as
/// `scipy.stats.ttest_rel(a, b)`: with `dᵢ = aᵢ − bᵢ`,
/// `t = d̄ / (s_d/√n)`, `df = n − 1`, `p = 2 P(T_df > |t|)`.
///
/// `None` when the slices differ in length, hold fewer than two pairs, hold
/// a non-finite value, or when every difference is the same (zero variance:
/// `t` is undefined, and scipy returns NaN).
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let m = mean(&d)?;
    let s = sample_std(&d)?;
    if s == 0.0 {
        return None;
    }
    let n = d.len() as f64;
    let t = m / (s / n.sqrt());
    let df = n - 1.0;
    let p = (2.0 * t_tail(t.abs(), df)).min(1.0);
    Some(TTest {
        t,
        df,
        p_two_sided: p,
        mean_diff: m,
    })
}

/// How [`wilcoxon_signed_rank`] got its p-value (the choice
/// `scipy.stats.wilcoxon` makes with `method="auto"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WilcoxonMethod {
    /// Exact null distribution of `W⁺` (at most 50 pairs, no zero
    /// differences, no ties among `|d|`).
    Exact,
    /// Exact distribution of `W⁺` over all `2ⁿ` sign flips of the
    /// differences, with tied (average) ranks kept (at most 13 pairs, with
    /// ties or zero differences; scipy's exhaustive permutation test).
    Permutation,
    /// Normal approximation with tie correction, no continuity correction
    /// (more than 50 pairs, or 14–50 pairs with ties or zeros).
    Normal,
}

/// Result of [`wilcoxon_signed_rank`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// `min(W⁺, W⁻)`, where `W⁺` (`W⁻`) is the sum of the ranks of `|dᵢ|`
    /// over the positive (negative) differences (ties get average ranks):
    /// what scipy reports for the two-sided test.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
    /// Number of non-zero differences, the ones ranked.
    pub n: usize,
    /// Which null distribution gave the p-value.
    pub method: WilcoxonMethod,
}

/// Wilcoxon signed-rank test of the differences `dᵢ = aᵢ − bᵢ`, matching
/// `scipy.stats.wilcoxon(a, b)` with its defaults (checked against scipy 1.17.1:
/// `zero_method="wilcox"`, `correction=False`, `method="auto"`).
///
/// Zero differences are dropped; the `n` others are ranked by `|dᵢ|`
/// (average ranks for ties), `W⁺` is the rank sum of the positive ones and
/// `W⁻ = n(n+1)/2 − W⁺`. With `N` pairs in all (zeros included, as scipy
/// counts them):
///
/// * `N ≤ 50`, no zeros, no ties ([`WilcoxonMethod::Exact`]):
///   `p = min(1, 2 min(P(W⁺ ≤ w), P(W⁺ ≥ w)))` under the exact null
///   distribution (each rank positive with probability ½, independently);
/// * `N ≤ 13` with zeros or ties ([`WilcoxonMethod::Permutation`]): the same
///   formula over all `2^N` sign flips of the differences, keeping their
///   (average) ranks — scipy's exhaustive `permutation_test`;
/// * otherwise ([`WilcoxonMethod::Normal`]):
///   `z = (W⁺ − n(n+1)/4) / σ`,
///   `σ² = n(n+1)(2n+1)/24 − Σ (tⱼ³ − tⱼ)/48` over tie groups of size `tⱼ`,
///   `p = 2 (1 − Φ(|z|))`.
///
/// `None` when the slices differ in length or are empty, hold a non-finite
/// value, or every difference is zero (nothing to rank; scipy returns
/// `p = 1` for up to 13 pairs and NaN beyond).
pub fn wilcoxon_signed_rank(a: &[f64], b: &[f64]) -> Option<Wilcoxon> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let total = d.len();
    let mut nonzero: Vec<f64> = d.into_iter().filter(|&x| x != 0.0).collect();
    let n = nonzero.len();
    if n == 0 {
        return None;
    }
    let has_zeros = n < total;
    nonzero.sort_by(|x, y| x.abs().total_cmp(&y.abs()));

    // Doubled average ranks (integers): a tie group at sorted positions
    // i..=j (1-based) has average rank (i + j)/2.
    let mut doubled_ranks = Vec::with_capacity(n);
    let mut tie_sum = 0.0; // Σ (t³ − t)
    let mut has_ties = false;
    let mut w_plus2: u64 = 0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && nonzero[j + 1].abs() == nonzero[i].abs() {
            j += 1;
        }
        let size = (j - i + 1) as f64;
        if j > i {
            has_ties = true;
            tie_sum += size * size * size - size;
        }
        let r2 = (i + 1 + j + 1) as u64;
        for x in &nonzero[i..=j] {
            doubled_ranks.push(r2);
            if *x > 0.0 {
                w_plus2 += r2;
            }
        }
        i = j + 1;
    }
    let nf = n as f64;
    let w_plus = w_plus2 as f64 / 2.0;
    let w_minus = nf * (nf + 1.0) / 2.0 - w_plus;
    let statistic = w_plus.min(w_minus);

    let method = if total > 50 {
        WilcoxonMethod::Normal
    } else if !has_ties && !has_zeros {
        WilcoxonMethod::Exact
    } else if total <= 13 {
        WilcoxonMethod::Permutation
    } else {
        WilcoxonMethod::Normal
    };

    let p = match method {
        WilcoxonMethod::Exact | WilcoxonMethod::Permutation => {
            // counts[s] = number of sign patterns whose doubled W⁺ is s.
            // Zero differences only multiply every count by the same power
            // of two, which cancels.
            let max: usize = doubled_ranks.iter().sum::<u64>() as usize;
            let mut counts = vec![0u64; max + 1];
            counts[0] = 1;
            let mut reach = 0usize;
            for &r in &doubled_ranks {
                let r = r as usize;
                for s in (0..=reach).rev() {
                    counts[s + r] += counts[s];
                }
                reach += r;
            }
            let w = w_plus2 as usize;
            let below: u64 = counts[..=w].iter().sum();
            let above: u64 = counts[w..].iter().sum();
            let all = (n as f64).exp2();
            (2.0 * below.min(above) as f64 / all).min(1.0)
        }
        WilcoxonMethod::Normal => {
            let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_sum / 48.0;
            let z = (w_plus - nf * (nf + 1.0) / 4.0) / var.sqrt();
            2.0 * normal_tail(z.abs())
        }
    };
    Some(Wilcoxon {
        statistic,
        p_two_sided: p,
        n,
        method,
    })
}

/// Holm–Bonferroni adjusted p-values, in the order given.
///
/// With the `m` p-values sorted ascending, `p₍₁₎ ≤ … ≤ p₍ₘ₎`, the adjusted
/// value of `p₍ᵢ₎` is `max_{j ≤ i} min(1, (m − j + 1) p₍ⱼ₎)` (step-down,
/// monotone, capped at 1); reject at family-wise level α where the adjusted
/// value is at most α. Equal p-values get equal adjusted values.
///
/// An empty input gives an empty output. If any p-value is NaN or outside
/// `[0, 1]` the family is meaningless and every output is NaN.
pub fn holm(pvalues: &[f64]) -> Vec<f64> {
    let m = pvalues.len();
    if pvalues
        .iter()
        .any(|p| p.is_nan() || !(0.0..=1.0).contains(p))
    {
        return vec![f64::NAN; m];
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| pvalues[i].total_cmp(&pvalues[j]));
    let mut out = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &idx) in order.iter().enumerate() {
        let adjusted = ((m - rank) as f64 * pvalues[idx]).min(1.0);
        running = running.max(adjusted);
        out[idx] = running;
    }
    out
}

/// Seeds (pairs) needed for a two-sided paired t test at level `alpha` to
/// detect a true mean difference `mean_diff` with probability `power`, when
/// the differences have standard deviation `sd_diff`.
///
/// Uses the standard iterative t approximation: with `δ = |mean_diff| /
/// sd_diff`, the answer is the smallest `n ≥ 2` with
/// `n ≥ ((t_{1−α/2, n−1} + t_{power, n−1}) / δ)²`, which is the fixed point
/// of refining the normal start `n₀ = ⌈((z_{1−α/2} + z_{power}) / δ)²⌉`
/// with t quantiles (the right side decreases in `n`, so the smallest such
/// `n` is well defined and found by a doubling-then-bisection search).
///
/// `None` when `mean_diff` is 0 or not finite, `sd_diff` is not a positive
/// finite number, `alpha` is outside `(0, 1)`, `power` is outside
/// `[½, 1)`, or more than 2⁵³ seeds would be needed.
pub fn seeds_needed(mean_diff: f64, sd_diff: f64, alpha: f64, power: f64) -> Option<usize> {
    if !mean_diff.is_finite() || mean_diff == 0.0 {
        return None;
    }
    if !sd_diff.is_finite() || sd_diff <= 0.0 {
        return None;
    }
    if alpha.is_nan() || alpha <= 0.0 || alpha >= 1.0 {
        return None;
    }
    if power.is_nan() || !(0.5..1.0).contains(&power) {
        return None;
    }
    let delta = mean_diff.abs() / sd_diff;
    if delta == 0.0 {
        return None;
    }
    let p_alpha = 1.0 - alpha / 2.0;
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2⁵³
    let normal = {
        let z = normal_quantile(p_alpha)? + normal_quantile(power)?;
        (z / delta).powi(2)
    };
    if !normal.is_finite() || normal > LIMIT {
        return None;
    }
    // Whether n seeds suffice.
    let enough = |n: usize| -> Option<bool> {
        let df = (n - 1) as f64;
        let t = student_t_quantile(p_alpha, df)? + student_t_quantile(power, df)?;
        Some(n as f64 >= (t / delta).powi(2))
    };
    // t quantiles exceed z quantiles, so the normal start is a lower bound.
    let mut lo = (normal.ceil() as usize).max(2);
    if enough(lo)? {
        // Only possible at the floor of 2 (or a rounding tie).
        while lo > 2 && enough(lo - 1)? {
            lo -= 1;
        }
        return Some(lo);
    }
    // lo is not enough: double until enough.
    let mut hi = lo.saturating_mul(2);
    while !enough(hi)? {
        lo = hi;
        hi = hi.saturating_mul(2);
        if hi as f64 > 2.0 * LIMIT {
            return None;
        }
    }
    // Invariant: lo not enough, hi enough.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if enough(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}
