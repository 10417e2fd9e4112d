//! The special functions under the statistics: `ln Γ`, `ln B`, the
//! regularised incomplete beta and upper incomplete gamma functions, the
//! normal and Student-t tails and their inversion.

use super::{EPS, MAX_TERMS, TINY};
use std::f64::consts::{LN_2, PI};

// ---------------------------------------------------------------------------
// Special functions (private)
// ---------------------------------------------------------------------------

/// Stirling-series correction `ln Γ(x) − [(x − ½) ln x − x + ½ ln 2π]
/// = Σₖ B₂ₖ / (2k (2k − 1) x^(2k−1))`, k = 1..8, for x ≥ 10 (truncation
/// error below 1e-17 there).
pub(super) fn stirling_correction(x: f64) -> f64 {
    // B₂ₖ / (2k (2k − 1)) for k = 1..8.
    const C: [f64; 8] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
        -3617.0 / 122_400.0,
    ];
    let r = 1.0 / (x * x);
    let mut acc = 0.0;
    for c in C.iter().rev() {
        acc = acc * r + c;
    }
    acc / x
}

/// `½ ln 2π`.
pub(super) fn half_ln_two_pi() -> f64 {
    0.5 * (LN_2 + PI.ln())
}

/// `ln Γ(z)` for `z > 0` (absolute error about 1e-15); NaN otherwise.
pub(super) fn ln_gamma(z: f64) -> f64 {
    if z.is_nan() || z <= 0.0 {
        return f64::NAN;
    }
    if z.is_infinite() {
        return f64::INFINITY;
    }
    let mut x = z;
    let mut product = 1.0;
    while x < 10.0 {
        product *= x;
        x += 1.0;
    }
    (x - 0.5) * x.ln() - x + half_ln_two_pi() + stirling_correction(x) - product.ln()
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b)` for `a, b > 0`.
///
/// When the larger argument `q` is at least 10, `ln Γ(q) − ln Γ(p + q)` is
/// formed from the Stirling series as
/// `−(q − ½) ln(1 + p/q) − p ln(p + q) + p + c(q) − c(p + q)`, which avoids
/// the cancellation between two large logarithms.
pub(super) fn ln_beta(a: f64, b: f64) -> f64 {
    let (p, q) = if a < b { (a, b) } else { (b, a) };
    if q < 10.0 {
        return ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q);
    }
    let s = p + q;
    let diff = -(q - 0.5) * (p / q).ln_1p() - p * s.ln() + p + stirling_correction(q)
        - stirling_correction(s);
    ln_gamma(p) + diff
}

/// Evaluates `b₀ + a₁/(b₁ + a₂/(b₂ + …))` by the modified Lentz method;
/// `term(j)` gives `(aⱼ, bⱼ)` for j ≥ 1.
pub(super) fn lentz(b0: f64, term: impl Fn(usize) -> (f64, f64)) -> f64 {
    let mut f = if b0 == 0.0 { TINY } else { b0 };
    let mut c = f;
    let mut d = 0.0;
    for j in 1..=MAX_TERMS {
        let (a, b) = term(j);
        d = b + a * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + a / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() <= EPS {
            break;
        }
    }
    f
}

/// `x^a y^b / (a B(a, b)) · 1/(1 + d₁/(1 + d₂/(1 + …)))` with `y = 1 − x`:
/// the continued fraction for `I_x(a, b)` (DLMF 8.17.22), where
/// `d₂ₘ₊₁ = −(a+m)(a+b+m) x / ((a+2m)(a+2m+1))` and
/// `d₂ₘ = m(b−m) x / ((a+2m−1)(a+2m))`.
pub(super) fn beta_continued_fraction(a: f64, b: f64, x: f64, y: f64) -> f64 {
    let ln_x = if y < 0.5 { (-y).ln_1p() } else { x.ln() };
    let ln_y = if x < 0.5 { (-x).ln_1p() } else { y.ln() };
    let front = (a * ln_x + b * ln_y - ln_beta(a, b)).exp() / a;
    if front == 0.0 {
        return 0.0;
    }
    let g = if x <= 0.5 {
        lentz(1.0, |j| {
            let m = (j / 2) as f64;
            let d = if j % 2 == 1 {
                -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
            } else {
                m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
            };
            (d, 1.0)
        })
    } else {
        // For x near 1 (large a, as in the t distribution with many degrees
        // of freedom) every `1 + d₂ₘ + d₂ₘ₊₁` nearly cancels. Use the odd
        // contraction `1 + d₁ − d₁d₂/(1 + d₂ + d₃ − d₃d₄/(1 + d₄ + d₅ − …))`
        // with each `Eₘ = 1 + d₂ₘ + d₂ₘ₊₁` expanded in `y = 1 − x` and the
        // cancelling terms removed by hand: with `A = a + 2m`,
        // `Eₘ = (P + y M) / ((A−1)A(A+1))`, where
        // `P = A (A(1 + 2m − b) − (1 + 2m + 2m² − 2mb − b))` and
        // `M = (a+m)(a+b+m)(A−1) + m(m−b)(A+1)`.
        let d_odd = |m: f64| -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        let d_even = |m: f64| m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        let e0 = (1.0 - b + (a + b) * y) / (a + 1.0);
        lentz(e0, |j| {
            let m = j as f64;
            let big_a = a + 2.0 * m;
            let p = big_a
                * (big_a * (1.0 + 2.0 * m - b) - (1.0 + 2.0 * m + 2.0 * m * m - 2.0 * m * b - b));
            let mm = (a + m) * (a + b + m) * (big_a - 1.0) + m * (m - b) * (big_a + 1.0);
            let e = (p + y * mm) / ((big_a - 1.0) * big_a * (big_a + 1.0));
            (-d_odd(m - 1.0) * d_even(m), e)
        })
    };
    front / g
}

/// Regularised incomplete beta function `I_x(a, b)`, given both `x` and
/// `y = 1 − x` (so that whichever is small carries full relative precision).
pub(super) fn beta_regularized(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    if x < (a + 1.0) / (a + b + 2.0) {
        beta_continued_fraction(a, b, x, y)
    } else {
        1.0 - beta_continued_fraction(b, a, y, x)
    }
}

/// Regularised upper incomplete gamma function
/// `Q(a, x) = Γ(a, x)/Γ(a)` for `a > 0`, `x ≥ 0`: from the series
/// `P(a, x) = x^a e^(−x)/Γ(a+1) · Σₙ xⁿ/((a+1)…(a+n))` when `x < a + 1`,
/// else from the continued fraction
/// `Q = x^a e^(−x)/Γ(a) · 1/(x+1−a − 1(1−a)/(x+3−a − 2(2−a)/(x+5−a − …)))`.
pub(super) fn gamma_upper_regularized(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    let ln_front = a * x.ln() - x;
    if x < a + 1.0 {
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = a;
        for _ in 0..MAX_TERMS {
            k += 1.0;
            term *= x / k;
            sum += term;
            if term.abs() <= sum.abs() * EPS {
                break;
            }
        }
        1.0 - (ln_front - ln_gamma(a + 1.0)).exp() * sum
    } else {
        let g = lentz(x + 1.0 - a, |j| {
            let jf = j as f64;
            (-jf * (jf - a), x + 2.0 * jf + 1.0 - a)
        });
        (ln_front - ln_gamma(a)).exp() / g
    }
}

/// Upper tail of the standard normal, `P(Z > u) = ½ erfc(u/√2)
/// = ½ Q(½, u²/2)` for `u ≥ 0`.
pub(super) fn normal_tail(u: f64) -> f64 {
    0.5 * gamma_upper_regularized(0.5, 0.5 * u * u)
}

/// Log of the standard normal density, `ln φ(u) = −u²/2 − ½ ln 2π`.
pub(super) fn normal_ln_pdf(u: f64) -> f64 {
    -0.5 * u * u - half_ln_two_pi()
}

/// Upper tail of Student's t with `df` degrees of freedom for `u ≥ 0`:
/// `P(T > u) = ½ I_x(df/2, ½)` with `x = df/(df + u²)`.
pub(super) fn t_tail(u: f64, df: f64) -> f64 {
    if df.is_infinite() {
        return normal_tail(u);
    }
    if u == 0.0 {
        return 0.5;
    }
    if u.is_infinite() {
        return 0.0;
    }
    // x = df/(df + u²) and y = u²/(df + u²), without overflowing u².
    let (x, y) = if u <= df.sqrt() {
        let s = u * u / df;
        (1.0 / (1.0 + s), s / (1.0 + s))
    } else {
        let r = df / u / u;
        if r < 1e-20 {
            // Far tail: x ≈ r may underflow, and the continued fraction is
            // 1 + O(x); so ½ I_x(a, ½) = ½ x^a / (a B(a, ½)) with ln x taken
            // from logarithms.
            let a = 0.5 * df;
            let ln_x = df.ln() - 2.0 * u.ln();
            return 0.5 * (a * ln_x - ln_beta(a, 0.5) - a.ln()).exp();
        }
        (r / (1.0 + r), 1.0 / (1.0 + r))
    };
    0.5 * beta_regularized(0.5 * df, 0.5, x, y)
}

/// Log of the Student t density,
/// `ln f(u) = −((df+1)/2) ln(1 + u²/df) − ½ ln df − ln B(df/2, ½)`.
pub(super) fn t_ln_pdf(u: f64, df: f64) -> f64 {
    if df.is_infinite() {
        return normal_ln_pdf(u);
    }
    let u = u.abs();
    let ln_1p_ratio = if u <= df.sqrt() {
        (u * u / df).ln_1p()
    } else {
        2.0 * u.ln() - df.ln() + (df / u / u).ln_1p()
    };
    -0.5 * (df + 1.0) * ln_1p_ratio - 0.5 * df.ln() - ln_beta(0.5 * df, 0.5)
}

/// The `u > 0` with `tail(u) = q`, for a decreasing `tail` with
/// `tail(0) = ½` and log-density `ln_pdf = ln(−tail')`, `0 < q < ½`.
///
/// Brackets the root, then takes Newton steps on `ln tail(u) − ln q`
/// against `ln u` (exact in one step for a power-law tail), bisecting
/// whenever a step would leave the bracket.
pub(super) fn solve_tail(
    q: f64,
    guess: f64,
    tail: impl Fn(f64) -> f64,
    ln_pdf: impl Fn(f64) -> f64,
) -> f64 {
    // Geometric mean without overflow.
    let geo = |lo: f64, hi: f64| lo.sqrt() * hi.sqrt();
    let mut lo = 0.0_f64; // tail(lo) > q
    let mut hi = if guess.is_finite() && guess > 0.0 {
        guess
    } else {
        1.0
    }; // tail(hi) <= q, once bracketed
    let mut expansions = 0;
    while tail(hi) > q && expansions < 4096 {
        lo = hi;
        hi *= 2.0;
        expansions += 1;
        if hi.is_infinite() {
            return f64::INFINITY;
        }
    }
    if lo == 0.0 {
        // Tighten from below so that the bracket is finite in ln u.
        let mut shrinks = 0;
        while shrinks < 4096 {
            let cand = 0.5 * hi;
            if cand == 0.0 || tail(cand) > q {
                lo = cand;
                break;
            }
            hi = cand;
            shrinks += 1;
        }
    }
    let ln_q = q.ln();
    let mut u = if lo > 0.0 { geo(lo, hi) } else { 0.5 * hi };
    for _ in 0..500 {
        let t = tail(u);
        if t == q {
            return u;
        }
        if t > q {
            lo = u;
        } else {
            hi = u;
        }
        let mut next = f64::NAN;
        if t > 0.0 {
            // h(v) = ln tail(e^v) − ln q; h'(v) = −u f(u) / tail(u).
            let h = t.ln() - ln_q;
            let dh = -(u.ln() + ln_pdf(u) - t.ln()).exp();
            if dh < 0.0 {
                next = u * (-h / dh).exp();
            }
        }
        if !(next > lo && next < hi) {
            next = if lo > 0.0 { geo(lo, hi) } else { 0.5 * hi };
        }
        if (next - u).abs() <= 2.0 * EPS * u || hi - lo <= 2.0 * EPS * hi {
            return next;
        }
        u = next;
    }
    u
}

// ---------------------------------------------------------------------------
// Distributions
// ---------------------------------------------------------------------------
