//! Mechanisms shared by several optimisers, defined once: the direction of the
//! gradient (`maximize`), weight decay (L2 or decoupled), exponential moving
//! averages of the gradient and its square, and bias correction.
//!
//! Everything here is `#[inline(always)]` [`Lane`] code: the optimisers call
//! it inside their single fused loop over memory, where the compiler
//! vectorises it, or record it as whole-tensor operations for a device.

use super::lane::Lane;
use crate::Real;

/// How weight decay enters a step, precomputed once per step.
///
/// * L2 (`decoupled = false`): the gradient becomes `g + λ·θ`, as if `λ/2·‖θ‖²`
///   were part of the loss (Adam, SGD, Adagrad, ... in torch).
/// * Decoupled (`decoupled = true`, Loshchilov & Hutter 2019): the parameter is
///   shrunk, `θ ← θ·(1 − lr·λ)`, before the update; the moments never see `λ`.
///
/// `sign` carries `maximize`: the optimisers ascend by descending on `−g`.
#[derive(Clone, Copy, Debug)]
pub struct Decay<T> {
    sign: T,
    l2: T,
    shrink: T,
}

impl<T: Real> Decay<T> {
    /// Builds the per-step constants.
    pub fn new(weight_decay: f64, decoupled: bool, lr: f64, maximize: bool) -> Self {
        let sign = T::from_f64(if maximize { -1.0 } else { 1.0 });
        if decoupled {
            Decay {
                sign,
                l2: T::zero(),
                shrink: T::from_f64(1.0 - lr * weight_decay),
            }
        } else {
            Decay {
                sign,
                l2: T::from_f64(weight_decay),
                shrink: T::one(),
            }
        }
    }

    /// The effective gradient: `±g + λ_L2·θ`; `±g` without an L2 term, as
    /// torch skips it (no `+ θ·0`: a step's device form is shorter, and an
    /// infinite θ does not make a NaN).
    #[inline(always)]
    pub fn grad<V: Lane<T>>(&self, g: V, p: V) -> V {
        if self.l2 == T::zero() {
            g * self.sign
        } else {
            g * self.sign + p * self.l2
        }
    }

    /// The parameter after decoupled decay (unchanged under L2).
    #[inline(always)]
    pub fn param<V: Lane<T>>(&self, p: V) -> V {
        p * self.shrink
    }
}

/// The weight of a moving average, `m ← m + w·(g − m)`, evaluated as
/// torch's `lerp_(g, w)` does: for `|w| < 0.5` as written, otherwise as
/// `g − (g − m)·(1 − w)`, which is more accurate near `w = 1`. The two
/// round differently, so matching torch bit for bit needs the same switch
/// (it matters for β₁ ≤ 0.5, or RMSprop's α ≤ 0.5).
#[derive(Clone, Copy, Debug)]
pub struct Lerp<T> {
    w: T,
    one_minus_w: T,
    small: bool,
}

impl<T: Real> Lerp<T> {
    /// The weight `w = 1 − β` of the new value. `1 − w` is computed in `T`,
    /// as torch does in the tensor's type.
    pub fn new(w: f64) -> Self {
        let w = T::from_f64(w);
        Lerp {
            w,
            one_minus_w: T::one() - w,
            small: w.abs() < T::from_f64(0.5),
        }
    }
}

/// First-moment update `m ← β·m + (1 − β)·g`, written as torch's `lerp_`
/// (see [`Lerp`]). The branch is the same for every element, so the
/// compiler takes it out of the loop.
#[inline(always)]
pub fn ema<T: Real, V: Lane<T>>(m: V, g: V, w: &Lerp<T>) -> V {
    if w.small {
        m + (g - m) * w.w
    } else {
        g - (g - m) * w.one_minus_w
    }
}

/// Second-moment update `v ← β·v + (1 − β)·g²`, with `w = 1 − β`.
#[inline(always)]
pub fn ema_sq<T: Real, V: Lane<T>>(v: V, g: V, beta: T, w: T) -> V {
    v * beta + g * w * g
}

/// optax's moving average `(1 − β)·x + β·m`, in optax's order of operations.
#[inline(always)]
pub fn moment<T: Real, V: Lane<T>>(m: V, x: V, beta: T, w: T) -> V {
    x * w + m * beta
}

/// The schedule-free weight schedule (Defazio et al. 2024), shared by
/// [`super::ScheduleFreeAdamW`] and [`super::ScheduleFreeSgd`], as the
/// `schedulefree` package computes it at the start of a group's step. Group
/// scalars: `[k, lr_max, weight_sum, ckp1, lr]`; this updates `lr_max` and
/// `weight_sum` and sets this step's `ckp1` (the averaging weight) and `lr`
/// (after warm-up); [`schedule_free_end`] advances `k`.
pub fn schedule_free_begin(
    g: &mut [f64],
    lr: f64,
    warmup_steps: u64,
    r: f64,
    weight_lr_power: f64,
) {
    let k = g[0];
    let sched = if k < warmup_steps as f64 {
        (k + 1.0) / warmup_steps as f64
    } else {
        1.0
    };
    let lr = lr * sched;
    let lr_max = lr.max(g[1]);
    let weight = (k + 1.0).powf(r) * lr_max.powf(weight_lr_power);
    let weight_sum = g[2] + weight;
    g[1] = lr_max;
    g[2] = weight_sum;
    // Python's ZeroDivisionError on a zero sum gives 0 there.
    g[3] = if weight_sum == 0.0 {
        0.0
    } else {
        weight / weight_sum
    };
    g[4] = lr;
}

/// Advances the schedule-free step count `k` at the end of a group's step.
pub fn schedule_free_end(g: &mut [f64]) {
    g[0] += 1.0;
}

/// Names of the schedule-free group scalars.
pub const SCHEDULE_FREE_SCALARS: &[&str] = &["k", "lr_max", "weight_sum", "ckp1", "scheduled_lr"];

/// Their starting values (`lr_max` starts below any rate, as in the package).
pub fn schedule_free_init() -> Vec<f64> {
    vec![0.0, -1.0, 0.0, 0.0, 0.0]
}

/// Bias correction `1 − βᵗ` of an exponential moving average started at zero
/// (Kingma & Ba 2015, §3), computed in `f64` as Python's `beta ** step`.
#[inline]
pub fn bias_correction(beta: f64, step: u64) -> f64 {
    1.0 - beta.powf(step as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign<T: Real>(x: T) -> T {
        Lane::<T>::sign(x)
    }

    fn maximum<T: Real>(a: T, b: T) -> T {
        Lane::<T>::maximum(a, b)
    }

    /// torch's `lerp` switches formula at |w| = 0.5; the two forms round
    /// differently, and `ema` must follow the one torch takes.
    #[test]
    fn sign_of_zero_is_zero() {
        assert_eq!(sign(0.0f64), 0.0);
        assert_eq!(sign(-2.5f32), -1.0);
        assert_eq!(sign(1e-30f64), 1.0);
        assert!(sign(f64::NAN).is_nan());
    }

    #[test]
    fn maximum_spreads_nan_as_torch() {
        assert!(maximum(f64::NAN, 1.0).is_nan());
        assert!(maximum(1.0, f64::NAN).is_nan());
        assert_eq!(maximum(1.0f32, 2.0), 2.0);
        assert_eq!(maximum(3.0f32, 2.0), 3.0);
        assert_eq!(maximum(-0.0f64, 0.0).to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn ema_rounds_as_torch_lerp() {
        let mut differ = 0;
        for i in 0..1000 {
            let m = (i as f64 * 0.7371).sin();
            let g = (i as f64 * 1.3713).cos() * 3.0;
            for beta in [0.3, 0.5, 0.9, 0.999] {
                let w = 1.0 - beta;
                let lerp = Lerp::<f64>::new(w);
                let small = m + w * (g - m);
                let large = g - (g - m) * (1.0 - w);
                let torch = if w.abs() < 0.5 { small } else { large };
                assert_eq!(ema(m, g, &lerp).to_bits(), torch.to_bits(), "β = {beta}");
                differ += usize::from(small != large);
            }
        }
        // The switch is observable: otherwise this test could not fail.
        assert!(differ > 100, "{differ}");
        // In f32, 1 − w is computed in f32, as torch does for float32 tensors.
        let lerp = Lerp::<f32>::new(0.7);
        let (m, g) = (0.123_456_7f32, -2.345_678_9f32);
        let w = 0.7f64 as f32;
        assert_eq!(
            ema(m, g, &lerp).to_bits(),
            (g - (g - m) * (1.0 - w)).to_bits()
        );
    }
}
