//! The exact Hessian of logistic regression, for Newton's method on small
//! problems.
//!
//! For softmax regression with classes `k, m`, inputs extended by a 1 for the
//! bias (`x̃`), and probabilities `p`, the Hessian of the mean cross-entropy is
//! `H[(j,k),(l,m)] = mean over examples of x̃ⱼ x̃ₗ (pₖ δₖₘ − pₖ pₘ)`, plus λ on
//! the diagonal of the weights for the L2 penalty; for the binary (sigmoid)
//! model, `H[j,l] = mean of x̃ⱼ x̃ₗ p(1 − p)`. Parameters are ordered as
//! downhill-nn stores them: the weight `[in, out]` row by row, then the bias.

use crate::batch::Batcher;
use downhill_data::{Dataset, Features};
use downhill_nn::{LossKind, ModelKind, Network, NnError};

/// The most parameters Newton's method accepts: its Hessian has the square of
/// this many entries, and each iteration factorises it.
pub const MAX_NEWTON_PARAMETERS: usize = 2000;

/// Checks that `net` is a logistic regression small enough for Newton.
pub fn check_newton(net: &Network<f32>) -> Result<(), String> {
    let spec = net.spec();
    if !matches!(spec.kind, ModelKind::Logreg)
        || !matches!(spec.loss, LossKind::CrossEntropy | LossKind::Logistic)
    {
        return Err(format!(
            "newton needs the exact Hessian, which downhill computes for logistic regression with its cross-entropy loss, not for `{spec}`; use lbfgs"
        ));
    }
    let n = net.params().len();
    if n > MAX_NEWTON_PARAMETERS {
        return Err(format!(
            "newton needs an {n}×{n} Hessian here, more than the {MAX_NEWTON_PARAMETERS}×{MAX_NEWTON_PARAMETERS} it allows; use lbfgs"
        ));
    }
    Ok(())
}

/// Writes the Hessian of the mean loss (plus the L2 term) at the network's
/// current parameters into `h` (row-major, `n × n`), reading `data` in chunks.
pub fn logreg_hessian(
    net: &mut Network<f32>,
    data: &Dataset,
    chunk: usize,
    batcher: &mut Batcher,
    h: &mut [f64],
) -> Result<(), NnError> {
    let n = net.params().len();
    let k = net.outputs();
    let d = data.dim();
    h.fill(0.0);
    let total = data.len() as f64;
    let rows: Vec<usize> = (0..data.len()).collect();
    let mut xt = vec![0.0f64; d + 1];
    let mut p = vec![0.0f64; k];
    for c in rows.chunks(chunk.max(1)) {
        let logits = batcher.logits(net, data, c)?;
        for (r, &row) in c.iter().enumerate() {
            xt.fill(0.0);
            match data.features() {
                Features::Dense(m) => {
                    for (x, &v) in xt.iter_mut().zip(m.row(row).unwrap_or(&[])) {
                        *x = v as f64;
                    }
                }
                Features::Sparse(m) => {
                    if let Some((idx, vals)) = m.row(row) {
                        for (&j, &v) in idx.iter().zip(vals) {
                            xt[j as usize] += v as f64;
                        }
                    }
                }
            }
            xt[d] = 1.0;
            let z = &logits[r * k..(r + 1) * k];
            // Curvature of the loss in the logits: a k×k matrix c[a][b].
            if k == 1 {
                let s = 1.0 / (1.0 + (-(z[0] as f64)).exp());
                p[0] = s * (1.0 - s);
            } else {
                let max = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let sum: f64 = z.iter().map(|&v| (v as f64 - max).exp()).sum();
                for (p, &v) in p.iter_mut().zip(z) {
                    *p = (v as f64 - max).exp() / sum;
                }
            }
            for (j, &xj) in xt.iter().enumerate() {
                if xj == 0.0 {
                    continue;
                }
                for (l, &xl) in xt.iter().enumerate() {
                    if xl == 0.0 {
                        continue;
                    }
                    let w = xj * xl / total;
                    for a in 0..k {
                        let ia = j * k + a;
                        for b in 0..k {
                            let c = if k == 1 {
                                p[0]
                            } else {
                                p[a] * ((a == b) as u8 as f64 - p[b])
                            };
                            h[ia * n + l * k + b] += w * c;
                        }
                    }
                }
            }
        }
    }
    let l2 = net.l2();
    for i in 0..d * k {
        h[i * n + i] += l2;
    }
    Ok(())
}

/// Makes a softmax regression's Hessian positive definite without changing
/// the Newton step. The loss does not change when the same amount is added to
/// every class's bias (and, without an L2 penalty, to every class's weight for
/// one feature): the Hessian is singular along those directions, and a tiny
/// rounding error of the gradient along them would send the solve off to huge
/// steps. Those directions get the Hessian's mean diagonal as curvature;
/// since the gradient is orthogonal to them (up to rounding), every other
/// component of the step is unchanged.
pub fn fix_softmax_null_space(h: &mut [f64], dim: usize, classes: usize, l2: f64) {
    if classes < 2 {
        return;
    }
    let n = (dim + 1) * classes;
    let c = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
    let add = c.max(f64::MIN_POSITIVE) / classes as f64;
    let rows = if l2 > 0.0 { dim..dim + 1 } else { 0..dim + 1 };
    for j in rows {
        for a in 0..classes {
            for b in 0..classes {
                h[(j * classes + a) * n + j * classes + b] += add;
            }
        }
    }
}
