//! Muon's Newton–Schulz iteration against an SVD-based orthogonalisation:
//! on random matrices its output has the input's singular vectors and
//! singular values in the band the rule's documentation states.

use downhill::optim::{Muon, Optimizer, Rule};
use downhill::Rng;

/// Singular values and vectors of an m×n matrix (row-major) by one-sided
/// Jacobi rotations on the columns: returns (U·Σ as columns, σ, V).
fn svd(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut w = a.to_vec(); // m×n, columns rotated in place
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..60 {
        let mut off = 0.0f64;
        for p in 0..n {
            for q in p + 1..n {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for i in 0..m {
                    let (x, y) = (w[i * n + p], w[i * n + q]);
                    alpha += x * x;
                    beta += y * y;
                    gamma += x * y;
                }
                if gamma == 0.0 {
                    continue;
                }
                off = off.max(gamma.abs() / (alpha * beta).sqrt());
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for i in 0..m {
                    let (x, y) = (w[i * n + p], w[i * n + q]);
                    w[i * n + p] = c * x - s * y;
                    w[i * n + q] = s * x + c * y;
                }
                for i in 0..n {
                    let (x, y) = (v[i * n + p], v[i * n + q]);
                    v[i * n + p] = c * x - s * y;
                    v[i * n + q] = s * x + c * y;
                }
            }
        }
        if off < 1e-15 {
            break;
        }
    }
    let sigma: Vec<f64> = (0..n)
        .map(|j| {
            (0..m)
                .map(|i| w[i * n + j] * w[i * n + j])
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    (w, sigma, v)
}

/// Muon's orthogonalised update of `g` (m×n, m ≤ n): one step from zero
/// with γ = 1 and no decay, so θ = −NS(g/‖g‖).
fn newton_schulz(g: &[f64], m: usize, n: usize) -> Vec<f64> {
    let rule = Muon {
        lr: 1.0,
        weight_decay: 0.0,
        ..Muon::default()
    };
    let mut opt = rule.build::<f64>(&[vec![m, n]]).unwrap();
    let mut p = vec![0.0; m * n];
    opt.step(&mut [&mut p], &[g]).unwrap();
    p.iter().map(|x| -x).collect()
}

#[test]
fn newton_schulz_orthogonalises_with_singular_values_in_the_documented_band() {
    let mut rng = Rng::new(11);
    for (m, n) in [(3, 3), (5, 9), (16, 16), (7, 40), (30, 31), (1, 12)] {
        for _ in 0..5 {
            let g: Vec<f64> = (0..m * n).map(|_| rng.normal()).collect();
            let o = newton_schulz(&g, m, n);
            // SVD of the transposes (n×m, n ≥ m columns... work on gᵀ so the
            // Jacobi runs over the m short columns): gᵀ = W·Vᵀ, W = U·Σ.
            let gt: Vec<f64> = (0..n * m).map(|k| g[(k % m) * n + k / m]).collect();
            let (w, sigma, v) = svd(&gt, n, m);
            // The SVD orthogonalisation: Q = V·Uᵀ in g's orientation, i.e. for
            // each singular triple, u_j = W[:, j]/σ_j (length n), v_j = V[:, j]
            // (length m); Q = Σ_j v_j u_jᵀ (m×n). NS(g) should be
            // Σ_j s_j v_j u_jᵀ with s_j in [0.68, 1.21].
            for j in 0..m {
                let u: Vec<f64> = (0..n).map(|i| w[i * m + j] / sigma[j]).collect();
                let vj: Vec<f64> = (0..m).map(|i| v[i * m + j]).collect();
                // s_j = v_jᵀ·O·u_j, and O·u_j must be s_j·v_j (same vectors).
                let ou: Vec<f64> = (0..m)
                    .map(|r| (0..n).map(|c| o[r * n + c] * u[c]).sum())
                    .collect();
                let s: f64 = ou.iter().zip(&vj).map(|(a, b)| a * b).sum();
                // The band of the rule's documentation: singular values of at
                // least 0.0015·‖g‖_F end in [0.68, 1.21]; smaller ones (noise
                // directions) are raised less, never above the band.
                let frob = sigma.iter().map(|x| x * x).sum::<f64>().sqrt();
                let band = if sigma[j] >= 0.0015 * frob { 0.68 } else { 0.0 };
                assert!(
                    (band..=1.21).contains(&s),
                    "{m}×{n}: singular value {s} outside [{band}, 1.21] (input σ/‖g‖ {})",
                    sigma[j] / frob
                );
                let residual: f64 = ou
                    .iter()
                    .zip(&vj)
                    .map(|(a, b)| (a - s * b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(residual < 1e-9, "{m}×{n}: O·u is not along v ({residual})");
            }
        }
    }
}

#[test]
fn a_zero_gradient_and_a_tall_matrix_are_handled() {
    // Zero: the norm is clamped at ε, the update is zero, θ does not move.
    let mut opt = Muon {
        weight_decay: 0.0,
        ..Muon::default()
    }
    .build::<f32>(&[vec![4, 6]])
    .unwrap();
    let mut p = vec![0.25f32; 24];
    opt.step(&mut [&mut p], &[&[0.0; 24]]).unwrap();
    assert!(p.iter().all(|&x| x == 0.25));
    // Tall (more rows than columns): orthogonalised through the transpose;
    // the result still has orthonormal-ish columns, so ‖O‖_F² ≈ columns.
    let mut rng = Rng::new(3);
    let g: Vec<f64> = (0..40 * 6).map(|_| rng.normal()).collect();
    let mut opt = Muon {
        lr: 1.0,
        weight_decay: 0.0,
        adjust_lr_fn: downhill::optim::AdjustLr::SpectralUnclamped,
        ..Muon::default()
    }
    .build::<f64>(&[vec![40, 6]])
    .unwrap();
    let mut p = vec![0.0; 240];
    opt.step(&mut [&mut p], &[&g]).unwrap();
    // spectral_unclamped scales by √(40/6).
    let frob2: f64 = p.iter().map(|x| x * x).sum::<f64>() / (40.0 / 6.0);
    assert!(
        (6.0 * 0.68 * 0.68..=6.0 * 1.21 * 1.21).contains(&frob2),
        "{frob2}"
    );
}
