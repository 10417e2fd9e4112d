//! SOAP: Adam in the eigenbasis of Shampoo's Kronecker factors.

use super::kronecker::{self, mode_gram, project, to_torch, zip_torch, Dims, FAILURES, MAX_DIMS};
use super::mechanics::{bias_correction, ema, Lerp};
use super::passes::norm_squared;
use super::{Param, Rule, TensorStep};
use crate::hyper::check;
use crate::linalg::{eigh, eigh_work, gemm, qr, qr_work, Mat, Op, Par, SHAPES_CHECKED};
use crate::Real;

crate::hyper_struct! {
    /// SOAP (Vyas et al., "SOAP: Improving and Stabilizing Shampoo using
    /// Adam", 2024), as the authors' `soap.py`: Adam run in the eigenbasis
    /// of Shampoo's Kronecker factors, which is refreshed every few steps by
    /// one power iteration and a QR decomposition.
    ///
    /// For a tensor with (working) dimensions d₀ … d_{k−1}, each at most
    /// `max_precond_dim` (others get no factor), factors `Lₐ` and bases `Qₐ`:
    ///
    /// ```text
    /// step 1:  Lₐ ← (1 − β_s)·G₍ₐ₎G₍ₐ₎ᵀ;  Qₐ ← eigenvectors of Lₐ, by descending eigenvalue
    ///          (θ does not move)
    /// step t:  s = t − 1
    ///          G' ← G ×₀ Q₀ᵀ ×₁ Q₁ᵀ …                       (into the eigenbasis)
    ///          m ← β₁·m + (1 − β₁)·G';   v ← β₂·v + (1 − β₂)·G'²
    ///          D ← (m/(√v + ε)) ×₀ Q₀ ×₁ Q₁ …               (back; D/rms(D) if normalize_grads)
    ///          θ ← θ − γ·√(1 − β₂ˢ)/(1 − β₁ˢ)·D;   θ ← θ − γλ·θ
    ///          Lₐ ← lerp(Lₐ, G₍ₐ₎G₍ₐ₎ᵀ, 1 − β_s)
    ///          every `precondition_frequency` steps, per factor:
    ///            order Qₐ's columns by descending qᵢᵀLₐqᵢ (and v along axis a to match),
    ///            Qₐ ← QR(Lₐ·Qₐ);   m is carried into the new basis
    /// ```
    /// `β_s` is `shampoo_beta`, or β₂ when unset. m and v live in the
    /// eigenbasis. Vectors get no factor (plain Adam, with the first step
    /// skipped) unless `precondition_1d`. Dimensions follow torch's layout
    /// (out, in, kh, kw), whatever downhill's engine stores; `merge_dims`
    /// merges consecutive ones, left to right, while their product stays at
    /// most `max_precond_dim`.
    ///
    /// Differences from `soap.py`, each equal up to rounding: m makes the
    /// trip back through the original basis only when the basis changes
    /// (the reference makes it every step); a decomposition that fails
    /// (non-finite factors, or no convergence) keeps the previous basis and
    /// counts the failure (`decomposition_failures`), where the reference
    /// would raise. There is no `data_format`: kernels are always
    /// channels-first.
    pub struct Soap: "soap" {
        /// Step size γ.
        lr: f64 = 3e-3; check check::non_negative,
        /// Decay rates (β₁, β₂) of Adam's moments in the eigenbasis.
        betas: (f64, f64) = (0.95, 0.95); check check::betas,
        /// β_s, the factors' decay, in [0, 1); none: β₂ (soap.py's −1).
        shampoo_beta: Option<f64> = None; check unit_or_none,
        /// ε added to √v.
        eps: f64 = 1e-8; check check::positive,
        /// Decoupled weight decay λ, applied after the update (multiplied by γ).
        weight_decay: f64 = 0.01; check check::non_negative,
        /// Steps between refreshes of the eigenbasis.
        precondition_frequency: u64 = 10; check check::at_least_one,
        /// Dimensions larger than this get no factor.
        max_precond_dim: u64 = 10000; check check::at_least_one,
        /// Merge consecutive dimensions while their product is at most `max_precond_dim`.
        merge_dims: bool = false,
        /// Give vectors a factor too.
        precondition_1d: bool = false,
        /// Divide each tensor's direction by its root mean square.
        normalize_grads: bool = false,
        /// Bias-correct the moments (in the step size).
        correct_bias: bool = true,
        /// Spread a tensor's refreshes over the period: factor k of K
        /// refreshes k·F/K steps early, so no step runs every QR (not in
        /// soap.py: off by default).
        stagger: bool = false,
    }
}

fn unit_or_none(x: &Option<f64>) -> std::result::Result<(), &'static str> {
    match x {
        Some(x) if !(0.0..1.0).contains(x) => Err("a number in [0, 1), or none for β₂"),
        _ => Ok(()),
    }
}

/// A tensor's working dimensions and where each factor lives.
struct Layout {
    dims: Dims,
    /// Whether axis `a` has a factor.
    factor: [bool; MAX_DIMS],
    /// Where axis `a`'s factor starts in the `GG` and `Q` buffers (the
    /// last entry is their length).
    start: [usize; MAX_DIMS + 1],
}

impl Layout {
    fn of(param: &Param, merge: bool, max_dim: u64, precondition_1d: bool) -> Self {
        let torch = kronecker::torch_dims(param);
        let vector = torch.as_slice().len() == 1;
        let dims = if merge && !vector {
            merged(torch.as_slice(), max_dim)
        } else {
            torch
        };
        let mut factor = [false; MAX_DIMS];
        let mut start = [0; MAX_DIMS + 1];
        for (a, &d) in dims.as_slice().iter().enumerate() {
            factor[a] = d as u64 <= max_dim && (!vector || precondition_1d);
            start[a + 1] = start[a] + if factor[a] { d * d } else { 0 };
        }
        for s in dims.as_slice().len() + 1..=MAX_DIMS {
            start[s] = start[s - 1];
        }
        Layout {
            dims,
            factor,
            start,
        }
    }

    fn factors_len(&self) -> usize {
        self.start[MAX_DIMS]
    }

    /// Axis `a`'s matrix in a factor buffer, if it has one.
    fn matrix<'b, T>(&self, buf: &'b [T], a: usize) -> Option<&'b [T]> {
        self.factor[a].then(|| &buf[self.start[a]..self.start[a + 1]])
    }

    /// Every axis's matrix in a factor buffer.
    fn matrices<'b, T>(&self, buf: &'b [T]) -> [Option<&'b [T]>; MAX_DIMS] {
        let mut out = [None; MAX_DIMS];
        for (a, o) in out.iter_mut().enumerate().take(self.dims.as_slice().len()) {
            *o = self.matrix(buf, a);
        }
        out
    }

    fn largest(&self) -> usize {
        let d = self.dims.as_slice();
        (0..d.len())
            .filter(|&a| self.factor[a])
            .map(|a| d[a])
            .max()
            .unwrap_or(0)
    }
}

/// `soap.py`'s `merge_dims`: left to right, a dimension joins the current
/// group while the product stays at most `max`.
fn merged(shape: &[usize], max: u64) -> Dims {
    let mut out = Dims::empty();
    let mut curr: u64 = 1;
    for &sh in shape {
        let sh = sh as u64;
        if curr.saturating_mul(sh) > max {
            if curr > 1 {
                out.push(curr as usize);
                curr = sh;
            } else {
                out.push(sh as usize);
                curr = 1;
            }
        } else {
            curr *= sh;
        }
    }
    if curr > 1 || out.as_slice().is_empty() {
        out.push(curr as usize);
    }
    out
}

/// Per-step constants of [`Soap`].
#[derive(Clone, Copy, Debug)]
pub struct SoapConsts<T> {
    /// The driver's count: 1 on the call that only sets up the factors.
    step: u64,
    b1: T,
    w1: T,
    b2: T,
    w2: T,
    factor_w: Lerp<T>,
    eps: T,
    neg_step_size: T,
    neg_lr_wd: Option<T>,
    /// SOAP's own step count s = t − 1, the refresh period, and whether
    /// factors refresh staggered.
    s: u64,
    freq: u64,
    stagger: bool,
    normalize: bool,
    merge: bool,
    max_dim: u64,
    precondition_1d: bool,
}

impl Rule for Soap {
    type Consts<T: Real> = SoapConsts<T>;

    const PAPER: &'static str = "Vyas et al. 2024";
    const REFERENCE: &'static str = "the authors' soap.py";
    const USE_WHEN: &'static str =
        "hidden matrices when steps are expensive: Adam in a slowly refreshed Shampoo eigenbasis, fewer steps to a loss";
    const EXAMPLES: &'static [&'static str] = &[
        "soap(lr=0.05,precondition_frequency=2)",
        "soap(lr=0.05,merge_dims=true,max_precond_dim=40,normalize_grads=true,shampoo_beta=0.9,correct_bias=false)",
        "soap(lr=0.05,precondition_1d=true,weight_decay=0)",
    ];

    const COUNTER: Option<&'static str> = Some(FAILURES);

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq", "GG", "Q", FAILURES]
    }

    fn buffer_shape(&self, buffer: &str, param: &Param) -> Vec<usize> {
        match buffer {
            "GG" | "Q" => {
                let l = Layout::of(
                    param,
                    self.merge_dims,
                    self.max_precond_dim,
                    self.precondition_1d,
                );
                vec![l.factors_len()]
            }
            FAILURES => vec![1],
            _ => param.shape.to_vec(),
        }
    }

    fn accepts(&self, param: &Param) -> std::result::Result<(), String> {
        kronecker::accepts(param)
    }

    fn prepare<T: Real>(&self, step: u64, _: bool, _: &mut [f64], _: &[f64]) -> SoapConsts<T> {
        let (b1, b2) = self.betas;
        let s = step.saturating_sub(1);
        let step_size = if self.correct_bias && s > 0 {
            self.lr * bias_correction(b2, s).sqrt() / bias_correction(b1, s)
        } else {
            self.lr
        };
        let shampoo_beta = self.shampoo_beta.unwrap_or(b2);
        SoapConsts {
            step,
            b1: T::from_f64(b1),
            w1: T::from_f64(1.0 - b1),
            b2: T::from_f64(b2),
            w2: T::from_f64(1.0 - b2),
            factor_w: Lerp::new(1.0 - shampoo_beta),
            eps: T::from_f64(self.eps),
            neg_step_size: T::from_f64(-step_size),
            neg_lr_wd: (self.weight_decay > 0.0).then(|| T::from_f64(-self.lr * self.weight_decay)),
            s,
            freq: self.precondition_frequency,
            stagger: self.stagger,
            normalize: self.normalize_grads,
            merge: self.merge_dims,
            max_dim: self.max_precond_dim,
            precondition_1d: self.precondition_1d,
        }
    }

    fn step_tensor<T: Real>(c: &SoapConsts<T>, t: TensorStep<'_, T>) {
        let layout = Layout::of(t.info, c.merge, c.max_dim, c.precondition_1d);
        let n = t.param.len();
        let dm = layout.largest();
        let work = eigh_work::<T>(dm).max(qr_work::<T>(dm, dm));
        let need = 3 * n + 3 * dm * dm + 2 * dm + work;
        if t.scratch.len() < need {
            t.scratch.resize(need, T::zero());
        }
        let [m, v, gg, q, failures] = t.buffers;
        let (g, rest) = t.scratch.split_at_mut(n);
        let (x, rest) = rest.split_at_mut(n);
        let (y, rest) = rest.split_at_mut(n);
        let (mats, rest) = rest.split_at_mut(3 * dm * dm);
        let (est, rest) = rest.split_at_mut(dm);
        let (idx, work) = rest.split_at_mut(dm);
        let mut s = Scratch {
            x,
            y,
            mats,
            est,
            idx,
            work,
        };
        to_torch(t.info, t.grad, g, |v| v);
        let k = layout.dims.as_slice().len();
        let mut failed = 0usize;
        if c.step == 1 {
            update_factors(&layout, c, g, gg, s.mats);
            for a in 0..k {
                if layout.factor[a] && !first_basis(&layout, a, gg, q, &mut s) {
                    failed += 1;
                }
            }
            failures[0] = failures[0] + T::from_f64(failed as f64);
            return;
        }
        // The step, in the current eigenbasis: G' in one buffer, m/(√v + ε)
        // into the other, and back.
        let mats = layout.matrices(q);
        s.x.copy_from_slice(g);
        let (gp, ratio) = if project(&layout.dims, &mats[..k], Op::N, s.x, s.y) {
            (&mut *s.y, &mut *s.x)
        } else {
            (&mut *s.x, &mut *s.y)
        };
        for (((m, v), &gp), r) in m
            .iter_mut()
            .zip(v.iter_mut())
            .zip(gp.iter())
            .zip(ratio.iter_mut())
        {
            *m = *m * c.b1 + c.w1 * gp;
            *v = *v * c.b2 + c.w2 * (gp * gp);
            *r = *m / (v.sqrt() + c.eps);
        }
        let d: &[T] = if project(&layout.dims, &mats[..k], Op::T, ratio, gp) {
            gp
        } else {
            ratio
        };
        let rms = if c.normalize {
            Some(T::from_f64(
                1e-30 + (norm_squared(d) / n.max(1) as f64).sqrt(),
            ))
        } else {
            None
        };
        zip_torch(t.info, t.param, d, |p, d| {
            let d = rms.map_or(d, |r| d / r);
            *p = *p + c.neg_step_size * d;
        });
        if let Some(k) = c.neg_lr_wd {
            for p in t.param.iter_mut() {
                *p = *p + k * *p;
            }
        }
        // The factors see this step's gradient only now.
        if layout.factors_len() == 0 {
            return;
        }
        update_factors(&layout, c, g, gg, s.mats);
        // Which factors refresh now: the k-th of K, `k·F/K` steps early when
        // staggered.
        let count = (0..k).filter(|&a| layout.factor[a]).count();
        let mut due = [false; MAX_DIMS];
        for (j, a) in (0..k).filter(|&a| layout.factor[a]).enumerate() {
            let off = kronecker::stagger_offset(c.stagger, j, count, c.freq);
            due[a] = c.s > 0 && (c.s + off).is_multiple_of(c.freq);
        }
        if due.iter().any(|&d| d) {
            // m goes back to the original basis, the bases change, and m
            // comes into the new ones.
            if project(&layout.dims, &mats[..k], Op::T, m, s.y) {
                m.copy_from_slice(s.y);
            }
            for (a, _) in due.iter().enumerate().take(k).filter(|(_, &d)| d) {
                if !refresh_basis(&layout, a, gg, q, v, &mut s) {
                    failed += 1;
                }
            }
            let mats = layout.matrices(q);
            if project(&layout.dims, &mats[..k], Op::N, m, s.y) {
                m.copy_from_slice(s.y);
            }
        }
        failures[0] = failures[0] + T::from_f64(failed as f64);
    }
}

/// Temporary memory of one step.
struct Scratch<'a, T> {
    x: &'a mut [T],
    y: &'a mut [T],
    /// Three matrices of the largest factor's size.
    mats: &'a mut [T],
    est: &'a mut [T],
    idx: &'a mut [T],
    work: &'a mut [T],
}

/// `Lₐ ← lerp(Lₐ, G₍ₐ₎G₍ₐ₎ᵀ, 1 − β_s)` for every factor, the product
/// made in `tmp`.
fn update_factors<T: Real>(
    layout: &Layout,
    c: &SoapConsts<T>,
    g: &[T],
    gg: &mut [T],
    tmp: &mut [T],
) {
    for a in 0..layout.dims.as_slice().len() {
        if !layout.factor[a] {
            continue;
        }
        let d = layout.dims.as_slice()[a];
        let o = &mut tmp[..d * d];
        mode_gram(&layout.dims, a, g, o);
        for (l, &o) in gg[layout.start[a]..layout.start[a + 1]]
            .iter_mut()
            .zip(o.iter())
        {
            *l = ema(*l, o, &c.factor_w);
        }
    }
}

/// The first basis of axis `a`: the eigenvectors of `Lₐ + 10⁻³⁰·I`, by
/// descending eigenvalue. On failure the basis is the identity.
fn first_basis<T: Real>(
    layout: &Layout,
    a: usize,
    gg: &[T],
    q: &mut [T],
    s: &mut Scratch<'_, T>,
) -> bool {
    let d = layout.dims.as_slice()[a];
    let (lm, rest) = s.mats.split_at_mut(d * d);
    lm.copy_from_slice(&gg[layout.start[a]..layout.start[a + 1]]);
    for i in 0..d {
        lm[i * d + i] = lm[i * d + i] + T::from_f64(1e-30);
    }
    let vecs = &mut rest[..d * d];
    let qa = &mut q[layout.start[a]..layout.start[a + 1]];
    let ok = eigh(d, lm, &mut s.est[..d], vecs, s.work).is_ok();
    for i in 0..d {
        for j in 0..d {
            // Row i of the basis: the eigenvector of the i-th largest value.
            qa[i * d + j] = if ok {
                vecs[(d - 1 - i) * d + j]
            } else if i == j {
                T::one()
            } else {
                T::zero()
            };
        }
    }
    ok
}

/// A refresh of axis `a`: its basis vectors (rows of `Qₐ`) ordered by their
/// Rayleigh quotients under `Lₐ`, descending, then one power iteration and
/// a QR. `v` is permuted along the axis to follow. On failure nothing
/// changes.
fn refresh_basis<T: Real>(
    layout: &Layout,
    a: usize,
    gg: &[T],
    q: &mut [T],
    v: &mut [T],
    s: &mut Scratch<'_, T>,
) -> bool {
    let d = layout.dims.as_slice()[a];
    let lm = &gg[layout.start[a]..layout.start[a + 1]];
    let qa = &mut q[layout.start[a]..layout.start[a + 1]];
    let (ql, rest) = s.mats.split_at_mut(d * d);
    let (sorted, rest) = rest.split_at_mut(d * d);
    let power = &mut rest[..d * d];
    // Rayleigh quotients qᵢᵀ·L·qᵢ: ql = Q_rows·L.
    gemm(
        d,
        d,
        d,
        Mat::n(qa, d),
        Mat::n(lm, d),
        ql,
        d,
        false,
        Par::Pool,
    )
    .expect(SHAPES_CHECKED);
    for i in 0..d {
        let r: f64 = (0..d)
            .map(|j| ql[i * d + j].to_f64() * qa[i * d + j].to_f64())
            .sum();
        s.est[i] = T::from_f64(r);
        s.idx[i] = T::from_f64(i as f64);
    }
    let est = &s.est[..d];
    s.idx[..d].sort_unstable_by(|x, y| {
        let (x, y) = (Real::to_f64(*x) as usize, Real::to_f64(*y) as usize);
        est[y]
            .partial_cmp(&est[x])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for (i, &k) in s.idx[..d].iter().enumerate() {
        let k = k.to_f64() as usize;
        sorted[i * d..(i + 1) * d].copy_from_slice(&qa[k * d..(k + 1) * d]);
    }
    // L·Q, column-major: rows of Qᵀ·L (L is symmetric).
    gemm(
        d,
        d,
        d,
        Mat::n(sorted, d),
        Mat::n(lm, d),
        power,
        d,
        false,
        Par::Pool,
    )
    .expect(SHAPES_CHECKED);
    if qr(d, d, power, s.work).is_err() {
        return false;
    }
    qa.copy_from_slice(power);
    permute_axis(&layout.dims, a, &s.idx[..d], v, s.y);
    true
}

/// `v[…, i, …] ← v[…, idx[i], …]` along axis `a`, through `tmp`.
fn permute_axis<T: Real>(dims: &Dims, a: usize, idx: &[T], v: &mut [T], tmp: &mut [T]) {
    let d = dims.as_slice()[a];
    let post: usize = dims.as_slice()[a + 1..].iter().product();
    let slab = d * post;
    tmp[..v.len()].copy_from_slice(v);
    for (vs, ts) in v.chunks_exact_mut(slab).zip(tmp.chunks_exact(slab)) {
        for (i, &k) in idx.iter().enumerate() {
            let k = k.to_f64() as usize;
            vs[i * post..(i + 1) * post].copy_from_slice(&ts[k * post..(k + 1) * post]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merged;

    #[test]
    fn dimensions_merge_as_soap_py_merges_them() {
        assert_eq!(merged(&[5, 5], 10000).as_slice(), [25]);
        assert_eq!(merged(&[3, 2, 6], 6).as_slice(), [6, 6]);
        assert_eq!(merged(&[20, 3], 10).as_slice(), [20, 3]);
        assert_eq!(merged(&[4, 1, 3], 100).as_slice(), [12]);
        assert_eq!(merged(&[], 100).as_slice(), [1]);
    }
}
