//! Prodigy: Adam whose step size estimates the distance to the solution.

use super::lane::Lane;
use super::passes::{par_reduce, pointwise, Chunk};
use super::{Group, Param, Pointwise, Rule, TensorStep};
use crate::hyper::check;
use crate::{Real, Result};

crate::hyper_struct! {
    /// Prodigy (Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive
    /// Parameter-Free Learner", ICML 2024), as `prodigyopt.Prodigy`: Adam
    /// whose rate is `γ·d`, with `d` a running lower bound on the distance
    /// from the start θ₀ to the solution, estimated from every tensor at
    /// once. One `d` is shared by every group (as in prodigyopt, where the
    /// groups must share their rate, or have 0); the trainer logs it in
    /// `metrics.jsonl` as `d`.
    ///
    /// With `t` the step, `η = d·γ·b` (b = √(1 − β₂ᵗ)/(1 − β₁ᵗ) with
    /// `use_bias_correction`, else 1) and β₃ (default √β₂):
    ///
    /// ```text
    /// g ← ±g + λ·θ                          (if not decoupled)
    /// r ← β₃·r + (d/d₀)·η·⟨g, θ₀ − θ⟩         (over every tensor)
    /// m ← β₁·m + d(1 − β₁)·g;   v ← β₂·v + d²(1 − β₂)·g²
    /// s ← β₃·s + (d/d₀)·η·g                  ((d/d₀)·d with safeguard_warmup)
    /// d ← min(d_max, d·growth), d_max ← max(d_max, d̂), d̂ = d_coef·r/‖s‖₁
    /// θ ← θ·(1 − λη) (decoupled);  θ ← θ − η·m/(√v + d·ε)
    /// ```
    /// Two passes over memory per step: the first updates m, v and s and sums
    /// ⟨g, θ₀ − θ⟩ and ‖s‖₁ over every tensor, the second steps. A step whose
    /// ‖s‖₁ is 0 updates only the moments, as prodigyopt does. `slice_p`
    /// keeps θ₀ and s for every p-th element only (an approximation).
    pub struct Prodigy: "prodigy" {
        /// Rate multiplier γ on the estimated step (1 is the paper's).
        lr: f64 = 1.0; check check::non_negative,
        /// Decay rates (β₁, β₂) of the moments.
        betas: (f64, f64) = (0.9, 0.999); check check::betas,
        /// Decay β₃ of the estimate's sums (none: √β₂).
        beta3: Option<f64> = None; check unit_or_none,
        /// ε added to the denominator (scaled by d), > 0.
        eps: f64 = 1e-8; check check::positive,
        /// Weight decay λ.
        weight_decay: f64 = 0.0; check check::non_negative,
        /// Decoupled weight decay (AdamW's); false adds λθ to the gradient.
        decouple: bool = true,
        /// Adam's bias correction in the rate.
        use_bias_correction: bool = false,
        /// Leave γ out of s, for warm-up schedules that start near 0.
        safeguard_warmup: bool = false,
        /// The starting estimate d₀ > 0.
        d0: f64 = 1e-6; check check::positive,
        /// Multiplier of the estimate d̂ (0.5 or 2 are the ways to tune Prodigy).
        d_coef: f64 = 1.0; check check::positive,
        /// The most d may grow per step (none or inf: no limit).
        growth_rate: Option<f64> = None; check growth,
        /// Keep θ₀ and s for every p-th element only.
        slice_p: u64 = 1; check check::at_least_one,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

fn unit_or_none(b: &Option<f64>) -> std::result::Result<(), &'static str> {
    match b {
        Some(b) if !(0.0..1.0).contains(b) => Err("a number in [0, 1), or none for √β₂"),
        _ => Ok(()),
    }
}

fn growth(g: &Option<f64>) -> std::result::Result<(), &'static str> {
    match g {
        Some(g) if g.is_nan() || *g < 1.0 => Err("a number >= 1 (inf or none: no limit)"),
        _ => Ok(()),
    }
}

/// The group scalars: the shared estimate, as prodigyopt keeps it in every group.
const D: usize = 0;
const D_MAX: usize = 1;
const D_NUMERATOR: usize = 2;
const K: usize = 3;
const DLR: usize = 4;
const D_HAT: usize = 5;
const D_DENOM: usize = 6;

impl Prodigy {
    fn beta3(&self) -> f64 {
        self.beta3.unwrap_or(self.betas.1.sqrt())
    }

    /// `η = d·γ·b` for the group's state (before this step's update of d).
    fn dlr(&self, g: &[f64]) -> f64 {
        let (b1, b2) = self.betas;
        let k = g[K];
        let bc = if self.use_bias_correction {
            (1.0 - b2.powf(k + 1.0)).sqrt() / (1.0 - b1.powf(k + 1.0))
        } else {
            1.0
        };
        g[D] * self.lr * bc
    }

    fn sign(&self) -> f64 {
        if self.maximize {
            -1.0
        } else {
            1.0
        }
    }

    /// The L2 term added to the gradient (0 when decoupled).
    fn l2(&self) -> f64 {
        if self.decouple {
            0.0
        } else {
            self.weight_decay
        }
    }
}

/// Per-step constants of [`Prodigy`]'s update pass.
#[derive(Clone, Copy, Debug)]
pub struct ProdigyConsts<T> {
    sign: T,
    l2: T,
    denom_eps: T,
    shrink: T,
    decoupled: bool,
    neg_dlr: T,
    neg_dlr_d: T,
    momentum: bool,
}

impl Rule for Prodigy {
    type Consts<T: Real> = ProdigyConsts<T>;

    const PAPER: &'static str = "Mishchenko & Defazio 2024";
    const REFERENCE: &'static str = "prodigyopt";
    const USE_WHEN: &'static str =
        "you would rather not tune the rate: Adam with a step size estimated on the fly, often near a tuned Adam";
    const EXAMPLES: &'static [&'static str] = &[
        "prodigy",
        "prodigy(d0=0.001,use_bias_correction=true,safeguard_warmup=true,weight_decay=0.01,growth_rate=1.05)",
        "prodigy(betas=0,0.99,decouple=false,weight_decay=0.01,d_coef=0.5)",
    ];
    const GATHERS: bool = true;

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        if self.betas.0 > 0.0 {
            &["exp_avg_sq", "s", "p0", "exp_avg"]
        } else {
            &["exp_avg_sq", "s", "p0"]
        }
    }

    fn buffer_shape(&self, buffer: &str, param: &Param) -> Vec<usize> {
        match buffer {
            "s" | "p0" => vec![param.len().div_ceil(self.slice_p as usize)],
            _ => param.shape.to_vec(),
        }
    }

    fn init_buffer<T: Real>(&self, buffer: &str, param: &[T], buf: &mut [T]) {
        if buffer == "p0" {
            for (b, &p) in buf
                .iter_mut()
                .zip(param.iter().step_by(self.slice_p as usize))
            {
                *b = p;
            }
        }
    }

    fn group_scalars(&self) -> &'static [&'static str] {
        &["d", "d_max", "d_numerator", "k", "dlr", "d_hat", "d_denom"]
    }

    fn group_init(&self) -> Vec<f64> {
        vec![self.d0, self.d0, 0.0, 0.0, 0.0, self.d0, 0.0]
    }

    fn check_groups(groups: &[Group<Self>]) -> Result<()> {
        let Some(first) = groups.first() else {
            return Ok(());
        };
        let lr = groups.iter().map(|g| g.rule.lr).fold(0.0, f64::max);
        for g in groups {
            let r = &g.rule;
            let same = r.betas == first.rule.betas
                && r.beta3 == first.rule.beta3
                && r.use_bias_correction == first.rule.use_bias_correction
                && r.d_coef == first.rule.d_coef
                && r.growth_rate == first.rule.growth_rate;
            if !same {
                return Err(crate::hyper::invalid_value(
                    "prodigy",
                    "betas",
                    format!("{:?}", r.betas),
                    "the same betas, beta3, use_bias_correction, d_coef and growth_rate in every group: they shape the one shared estimate d",
                ));
            }
            if r.lr != lr && r.lr != 0.0 {
                return Err(crate::hyper::invalid_value(
                    "prodigy",
                    "lr",
                    r.lr,
                    format!("{lr} or 0 (every group shares one estimate d, as in prodigyopt)"),
                ));
            }
        }
        Ok(())
    }

    fn gather<T: Real>(&self, g: &[f64], t: TensorStep<'_, T>) -> [f64; 2] {
        if self.lr <= 0.0 {
            return [0.0; 2];
        }
        let d = g[D];
        let dlr = self.dlr(g);
        let (b1, b2) = self.betas;
        let sign = T::from_f64(self.sign());
        let l2 = T::from_f64(self.l2());
        let (beta1, m_w) = (T::from_f64(b1), T::from_f64(d * (1.0 - b1)));
        let (beta2, v_w) = (T::from_f64(b2), T::from_f64(d * d * (1.0 - b2)));
        let beta3 = T::from_f64(self.beta3());
        let s_w = T::from_f64(if self.safeguard_warmup {
            (d / self.d0) * d
        } else {
            (d / self.d0) * dlr
        });
        let momentum = b1 > 0.0;
        let slice = self.slice_p as usize;
        let [v, s, p0, m, spare] = t.buffers;
        let grad = move |g: T, p: T| sign * g + l2 * p;
        let (dot, abs) = if slice == 1 {
            // Every element: one parallel pass, split by length only.
            let n = t.n_buffers;
            let k = GatherConsts {
                sign,
                l2,
                beta1,
                m_w,
                beta2,
                v_w,
                beta3,
                s_w,
                momentum,
            };
            gather_all(&k, Chunk::whole(t.param, t.grad, [v, s, p0, m, spare], n))
        } else {
            let (mut dot, mut abs) = (0.0f64, 0.0f64);
            for i in 0..t.param.len() {
                let g = grad(t.grad[i], t.param[i]);
                if momentum {
                    m[i] = m[i] * beta1 + m_w * g;
                }
                v[i] = v[i] * beta2 + v_w * g * g;
                if i % slice == 0 {
                    let j = i / slice;
                    dot += (g * (p0[j] - t.param[i])).to_f64();
                    s[j] = s[j] * beta3 + s_w * g;
                }
            }
            for &x in s.iter() {
                abs += x.abs().to_f64();
            }
            (dot, abs)
        };
        [(d / self.d0) * dlr * dot, abs]
    }

    fn settle(groups: &[Group<Self>], states: &mut [Vec<f64>], sums: [f64; 2]) -> bool {
        let (Some(first), Some(last)) = (groups.first(), groups.last()) else {
            return false;
        };
        let rule = &first.rule;
        let st = &states[0];
        let (mut d, mut d_max) = (st[D], st[D_MAX]);
        let numerator = st[D_NUMERATOR] * rule.beta3() + sums[0];
        let denom = sums[1];
        if denom == 0.0 {
            return false;
        }
        let dlr = rule.dlr(st);
        let lr = groups.iter().map(|g| g.rule.lr).fold(0.0, f64::max);
        let mut d_hat = d;
        if lr > 0.0 {
            d_hat = rule.d_coef * numerator / denom;
            // prodigyopt compares with the last group's d0 (its loop variable).
            if d == last.rule.d0 {
                d = d.max(d_hat);
            }
            d_max = d_max.max(d_hat);
            d = d_max.min(d * rule.growth_rate.unwrap_or(f64::INFINITY));
        }
        for s in states.iter_mut() {
            s[D] = d;
            s[D_MAX] = d_max;
            s[D_NUMERATOR] = numerator;
            s[D_HAT] = d_hat;
            s[D_DENOM] = denom;
            // The update pass uses η with the estimate from before this step.
            s[DLR] = dlr;
        }
        true
    }

    fn end_group(&self, g: &mut [f64]) {
        g[K] += 1.0;
    }

    fn prepare<T: Real>(&self, _: u64, _: bool, _: &mut [f64], g: &[f64]) -> ProdigyConsts<T> {
        let (d, dlr) = (g[D], g[DLR]);
        ProdigyConsts {
            sign: T::from_f64(self.sign()),
            l2: T::from_f64(self.l2()),
            denom_eps: T::from_f64(d * self.eps),
            shrink: T::from_f64(-self.weight_decay * dlr),
            decoupled: self.decouple && self.weight_decay != 0.0,
            neg_dlr: T::from_f64(-dlr),
            neg_dlr_d: T::from_f64(-dlr * d),
            momentum: self.betas.0 > 0.0,
        }
    }

    fn step_tensor<T: Real>(c: &ProdigyConsts<T>, t: TensorStep<'_, T>) {
        // The update reads only the element-wise moments: `s` and `p0` may be
        // subsampled (`slice_p`), and the gather pass has used them.
        let [v, _s, _p0, m, _] = t.buffers;
        pointwise::<Self, T>(
            c,
            TensorStep {
                buffers: [v, m, &mut [], &mut [], &mut []],
                n_buffers: if c.momentum { 2 } else { 1 },
                ..t
            },
        )
    }
}

impl Pointwise for Prodigy {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &ProdigyConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        // The moments (v, and m with momentum) were updated by the gather
        // pass; this reads them.
        let denom = b[0].sqrt() + c.denom_eps;
        let grad = g * c.sign + *p * c.l2;
        if c.decoupled {
            *p = *p + *p * c.shrink;
        }
        *p = if c.momentum {
            *p + (b[1] / denom) * c.neg_dlr
        } else {
            *p + (grad / denom) * c.neg_dlr_d
        };
    }
}

/// The constants of Prodigy's gathering pass.
#[derive(Clone, Copy)]
struct GatherConsts<T> {
    sign: T,
    l2: T,
    beta1: T,
    m_w: T,
    beta2: T,
    v_w: T,
    beta3: T,
    s_w: T,
    momentum: bool,
}

impl<T: Real> GatherConsts<T> {
    /// Updates the moments and `s` at one element; returns its terms of
    /// `Σ g·(θ₀ − θ)` and `‖s‖₁`.
    #[inline(always)]
    fn element(&self, g: T, p: T, p0: T, m: &mut T, v: &mut T, s: &mut T) -> (T, T) {
        let g = self.sign * g + self.l2 * p;
        if self.momentum {
            *m = *m * self.beta1 + self.m_w * g;
        }
        *v = *v * self.beta2 + self.v_w * g * g;
        *s = *s * self.beta3 + self.s_w * g;
        (g * (p0 - p), s.abs())
    }
}

crate::multiversion! {
    /// Prodigy's gathering pass over every element of a tensor (`slice_p`
    /// = 1): the moments and `s` updated, `Σ g·(θ₀ − θ)` and `‖s‖₁` summed
    /// in 16 lanes per leaf (the lanes in `f64`), compiled per vector width
    /// so that it vectorises. Without momentum the `exp_avg` slot holds no
    /// buffer and `s` stands in for it, untouched.
    fn gather_all<T: Real>(k: &GatherConsts<T>, chunk: Chunk<'_, T>) -> (f64, f64) {
        par_reduce(
            chunk,
            &|c: Chunk<'_, T>| {
                let k = *k;
                let [v, s, p0, m, _] = c.bufs;
                let len = c.p.len();
                let (p, g, v, s, p0) = (&*c.p, &c.g[..len], &mut v[..len], &mut s[..len], &p0[..len]);
                let mut spare = [T::zero(); 16];
                let (mut dot, mut abs) = ([T::zero(); 16], [T::zero(); 16]);
                let full = len / 16 * 16;
                let mut m_blocks = m.chunks_exact_mut(16);
                let blocks = p
                    .chunks_exact(16)
                    .zip(g.chunks_exact(16))
                    .zip(v.chunks_exact_mut(16).zip(s.chunks_exact_mut(16)))
                    .zip(p0.chunks_exact(16));
                for (((p, g), (v, s)), p0) in blocks {
                    let m: &mut [T] = if k.momentum {
                        m_blocks.next().expect("exp_avg has the parameter's length")
                    } else {
                        &mut spare
                    };
                    for i in 0..16 {
                        let (d, a) = k.element(g[i], p[i], p0[i], &mut m[i], &mut v[i], &mut s[i]);
                        dot[i] = dot[i] + d;
                        abs[i] = abs[i] + a;
                    }
                }
                let (mut dot_tail, mut abs_tail) = (0.0f64, 0.0f64);
                for i in full..len {
                    let mi = if k.momentum { &mut m[i] } else { &mut spare[0] };
                    let (d, a) = k.element(g[i], p[i], p0[i], mi, &mut v[i], &mut s[i]);
                    dot_tail += d.to_f64();
                    abs_tail += a.to_f64();
                }
                let lanes = |x: [T; 16]| x.iter().map(|&a| a.to_f64()).sum::<f64>();
                (lanes(dot) + dot_tail, lanes(abs) + abs_tail)
            },
            |a, b| (a.0 + b.0, a.1 + b.1),
        )
    }
}
