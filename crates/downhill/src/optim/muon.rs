//! Muon: momentum, orthogonalised by a Newton–Schulz iteration.

use super::mechanics::{ema, Lerp};
use super::passes::{norm_squared, par_chunks, par_zip, wide};
use super::{Param, Rule, TensorStep};
use crate::hyper::check;
use crate::linalg::{gemm, Mat, Par, SHAPES_CHECKED};
use crate::Real;

crate::hyper_enum! {
    /// How Muon scales its rate to a matrix's shape (rows A, columns B).
    pub enum AdjustLr {
        /// `√max(1, A/B)` (Jordan et al.'s original).
        Original = "original",
        /// `0.2·√max(A, B)`, to match AdamW's update RMS (Liu et al. 2025), so
        /// AdamW's rate and weight decay carry over.
        MatchRmsAdamw = "match_rms_adamw",
        /// `√(A/B)`, unclamped (Bernstein's spectral condition).
        SpectralUnclamped = "spectral_unclamped",
    }
}

crate::hyper_struct! {
    /// Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in
    /// neural networks"; Liu et al. 2025, "Muon is Scalable for LLM
    /// Training"), as `torch.optim.Muon`, in the parameter's own precision
    /// (torch runs the iteration in bfloat16).
    ///
    /// For a matrix parameter θ (a convolution kernel is viewed as
    /// (out, in·kh·kw); a weight stored transposed, as downhill's engine
    /// stores them, is orthogonalised as stored, which gives the transpose
    /// of the same result) with gradient g:
    ///
    /// ```text
    /// B ← lerp(B, g, 1 − μ)                       (B ← μ·B + (1 − μ)·g)
    /// U ← lerp(g, B, μ) if nesterov, else B
    /// X ← U / max(‖U‖_F, ε)                       (transposed if it has more rows than columns)
    /// k times:  A ← X·Xᵀ;  X ← a·X + (b·A + c·A·A)·X
    /// θ ← θ·(1 − γλ)
    /// θ ← θ − γ·s(shape)·X                         (s: `adjust_lr_fn`)
    /// ```
    /// The quintic iteration keeps the singular vectors of `U` and pushes its
    /// singular values towards 1: with the default coefficients and 5 steps,
    /// every singular value of at least 0.0015·‖U‖_F ends in [0.68, 1.21]
    /// (smaller ones, noise directions, are raised less), so the step is
    /// about the nearest semi-orthogonal matrix to the momentum
    /// (`tests/muon.rs` checks this against an SVD). Muon is
    /// for hidden matrices: `muon` alone in a spec trains the hidden matrices
    /// and gives the rest to AdamW (see [`super::registry::muon_alone`]).
    pub struct Muon: "muon" {
        /// Step size γ.
        lr: f64 = 1e-3; check check::non_negative,
        /// Decoupled weight decay λ.
        weight_decay: f64 = 0.1; check check::non_negative,
        /// Momentum μ, in [0, 1) (torch accepts any μ ≥ 0).
        momentum: f64 = 0.95; check check::unit_open,
        /// Use Nesterov momentum.
        nesterov: bool = true,
        /// Coefficients (a, b, c) of the quintic Newton–Schulz step.
        ns_coefficients: (f64, f64, f64) = (3.4445, -4.7750, 2.0315); check finite3,
        /// ε: the smallest norm the update is divided by.
        eps: f64 = 1e-7; check check::positive,
        /// Newton–Schulz steps, below 100 as in torch.
        ns_steps: u64 = 5; check below_100,
        /// How the rate scales with the matrix's shape.
        adjust_lr_fn: AdjustLr = AdjustLr::Original,
    }
}

fn finite3(c: &(f64, f64, f64)) -> std::result::Result<(), &'static str> {
    if c.0.is_finite() && c.1.is_finite() && c.2.is_finite() {
        Ok(())
    } else {
        Err("three finite numbers")
    }
}

fn below_100(n: &u64) -> std::result::Result<(), &'static str> {
    if *n < 100 {
        Ok(())
    } else {
        Err("a whole number below 100")
    }
}

/// Per-step constants of [`Muon`].
#[derive(Clone, Copy, Debug)]
pub struct MuonConsts<T> {
    buffer: Lerp<T>,
    nesterov: Option<Lerp<T>>,
    a: T,
    b: T,
    c: T,
    eps: T,
    steps: u64,
    lr: f64,
    shrink: T,
    adjust: AdjustLr,
}

impl Rule for Muon {
    type Consts<T: Real> = MuonConsts<T>;

    const PAPER: &'static str = "Jordan et al. 2024";
    const REFERENCE: &'static str = "torch.optim.Muon";
    const USE_WHEN: &'static str =
        "hidden weight matrices of MLPs, CNNs and transformers: orthogonalised momentum, often fewer steps than AdamW";
    const EXAMPLES: &'static [&'static str] = &[
        "muon(lr=0.02)",
        "muon(lr=0.05,nesterov=false,weight_decay=0,adjust_lr_fn=match_rms_adamw,ns_steps=3)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["momentum_buffer"]
    }

    fn accepts(&self, param: &Param) -> std::result::Result<(), String> {
        if param.as_matrix().is_some() {
            Ok(())
        } else {
            Err("updates matrices (2-D or more; a convolution kernel is viewed as out × in·kh·kw): give vectors and biases to another rule, e.g. partition(hidden=muon,all=adamw)".into())
        }
    }

    fn prepare<T: Real>(&self, _: u64, _: bool, _: &mut [f64], _: &[f64]) -> MuonConsts<T> {
        let (a, b, c) = self.ns_coefficients;
        MuonConsts {
            buffer: Lerp::new(1.0 - self.momentum),
            nesterov: self.nesterov.then(|| Lerp::new(self.momentum)),
            a: T::from_f64(a),
            b: T::from_f64(b),
            c: T::from_f64(c),
            eps: T::from_f64(self.eps),
            steps: self.ns_steps,
            lr: self.lr,
            shrink: T::from_f64(1.0 - self.lr * self.weight_decay),
            adjust: self.adjust_lr_fn,
        }
    }

    fn step_tensor<T: Real>(c: &MuonConsts<T>, t: TensorStep<'_, T>) {
        // `accepts` admitted only matrices.
        let (Some((rows, cols)), Some((fan_out, fan_in))) = (t.info.as_matrix(), t.info.fans())
        else {
            return;
        };
        if rows == 0 || cols == 0 {
            return;
        }
        let [buf, ..] = t.buffers;
        // The iteration runs on the matrix as stored: for a wide one (rows ≤
        // columns) A = X·Xᵀ and X ← a·X + P·X; for a tall one, which torch
        // transposes first, the same on Xᵀ: A = Xᵀ·X and X ← a·X + X·P (P is
        // symmetric). No transposed copy is made.
        let tall = rows > cols;
        let r = rows.min(cols);
        let n = rows * cols;
        // Every buffer below is written in full before it is read, so the
        // scratch only grows (on the first step) and is never cleared.
        let need = 2 * n + 2 * r * r;
        if t.scratch.len() < need {
            t.scratch.resize(need, T::zero());
        }
        let (x, rest) = t.scratch.split_at_mut(n);
        let (y, rest) = rest.split_at_mut(n);
        let (gram, rest) = rest.split_at_mut(r * r);
        let poly = &mut rest[..r * r];

        // Momentum, and the update written into X.
        let grad = t.grad;
        {
            use rayon::prelude::*;
            const CHUNK: usize = super::passes::PARALLEL_LEAF;
            x.par_chunks_mut(CHUNK)
                .zip(buf.par_chunks_mut(CHUNK))
                .zip(grad.par_chunks(CHUNK))
                .for_each(|((xs, bs), gs)| {
                    wide(|| {
                        for ((xv, b), &g) in xs.iter_mut().zip(bs.iter_mut()).zip(gs) {
                            *b = ema(*b, g, &c.buffer);
                            *xv = match &c.nesterov {
                                Some(w) => ema(g, *b, w),
                                None => *b,
                            };
                        }
                    })
                });
        }
        let norm = T::from_f64(norm_squared(x).sqrt()).max(c.eps);
        par_chunks(x, |_, xs| {
            for v in xs {
                *v = *v / norm;
            }
        });
        let x = newton_schulz(c, x, y, gram, poly, rows, cols, tall);

        // torch's A and B: fan-out and fan-in, whatever the storage order.
        let (a, b) = (fan_out as f64, fan_in as f64);
        let ratio = match c.adjust {
            AdjustLr::Original => (a / b).max(1.0).sqrt(),
            AdjustLr::MatchRmsAdamw => 0.2 * a.max(b).sqrt(),
            AdjustLr::SpectralUnclamped => (a / b).sqrt(),
        };
        let neg = T::from_f64(-(c.lr * ratio));
        let x = &*x;
        par_chunks(t.param, |start, ps| {
            for (p, &o) in ps.iter_mut().zip(&x[start..]) {
                *p = *p * c.shrink;
                *p = *p + neg * o;
            }
        });
    }
}

/// `k` quintic Newton–Schulz steps on the rows×cols matrix in `x`, using `y`
/// (the same size) and `gram`, `poly` (r×r, r the smaller side) as
/// workspace; returns the buffer that holds the result.
#[allow(clippy::too_many_arguments)]
fn newton_schulz<'a, T: Real>(
    c: &MuonConsts<T>,
    mut x: &'a mut [T],
    mut y: &'a mut [T],
    gram: &mut [T],
    poly: &mut [T],
    rows: usize,
    cols: usize,
    tall: bool,
) -> &'a mut [T] {
    let r = rows.min(cols);
    for _ in 0..c.steps {
        if tall {
            // A = Xᵀ·X
            product(r, r, rows, Mat::t(x, cols), Mat::n(x, cols), gram, r);
        } else {
            // A = X·Xᵀ
            product(r, r, cols, Mat::n(x, cols), Mat::t(x, cols), gram, r);
        }
        // P = b·A + c·A·A
        product(r, r, r, Mat::n(gram, r), Mat::n(gram, r), poly, r);
        par_zip(poly, gram, |p, &a| *p = c.b * a + c.c * *p);
        if tall {
            // X' = a·X + X·P
            product(rows, cols, r, Mat::n(x, cols), Mat::n(poly, r), y, cols);
        } else {
            // X' = a·X + P·X
            product(rows, cols, r, Mat::n(poly, r), Mat::n(x, cols), y, cols);
        }
        par_zip(y, x, |yv, &xv| *yv = c.a * xv + *yv);
        std::mem::swap(&mut x, &mut y);
    }
    x
}

/// `C = A·B` on every thread of the pool. The workspace is sized from the
/// shapes here, so the checks of [`gemm`] cannot fail.
fn product<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    gemm(m, n, k, a, b, c, ldc, false, Par::Pool).expect(SHAPES_CHECKED);
}
