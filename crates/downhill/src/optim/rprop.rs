//! Rprop: per-coordinate step sizes driven by the sign of the gradient.

use super::lane::Lane;
use super::{Pointwise, Rule};
use crate::hyper::check;
use crate::{Real, Result};

crate::hyper_struct! {
    /// Rprop (Riedmiller & Braun, "A Direct Adaptive Method for Faster
    /// Backpropagation Learning: The RPROP Algorithm", 1993), as
    /// `torch.optim.Rprop`: only the sign of the gradient is used; each
    /// coordinate's step grows while the sign holds and shrinks when it flips.
    ///
    /// ```text
    /// f ← η₊ if g·g_prev > 0,  η₋ if g·g_prev < 0,  1 otherwise
    /// Δ ← clamp(Δ·f, Δ_min, Δ_max)                    (Δ starts at γ)
    /// g ← 0 where f = η₋                              (no step right after a flip)
    /// θ ← θ − sign(g)·Δ
    /// g_prev ← g
    /// ```
    /// Meant for full-batch training: mini-batch noise flips signs at random.
    pub struct Rprop: "rprop" {
        /// Initial step size γ of every coordinate.
        lr: f64 = 1e-2; check check::non_negative,
        /// Multiplicative (decrease η₋, increase η₊), 0 < η₋ < 1 < η₊.
        etas: (f64, f64) = (0.5, 1.2); check etas,
        /// Bounds (Δ_min, Δ_max) of the step sizes.
        step_sizes: (f64, f64) = (1e-6, 50.0); check bounds,
        /// Maximise the objective instead of minimising it.
        maximize: bool = false,
    }
}

fn etas(e: &(f64, f64)) -> std::result::Result<(), &'static str> {
    if 0.0 < e.0 && e.0 < 1.0 && 1.0 < e.1 && e.1.is_finite() {
        Ok(())
    } else {
        Err("two numbers with 0 < decrease < 1 < increase")
    }
}

fn bounds(s: &(f64, f64)) -> std::result::Result<(), &'static str> {
    if s.0 >= 0.0 && s.0.is_finite() && s.1.is_finite() {
        Ok(())
    } else {
        Err("two finite numbers, the first >= 0")
    }
}

/// Per-step constants of [`Rprop`].
#[derive(Clone, Copy, Debug)]
pub struct RpropConsts<T> {
    sign: T,
    eta_minus: T,
    eta_plus: T,
    min: T,
    max: T,
}

impl Rule for Rprop {
    type Consts<T: Real> = RpropConsts<T>;

    const PAPER: &'static str = "Riedmiller & Braun 1993";
    const REFERENCE: &'static str = "torch.optim.Rprop";
    const USE_WHEN: &'static str =
        "full-batch training of small models: robust to badly scaled gradients, needs no rate tuning";
    const EXAMPLES: &'static [&'static str] = &[
        "rprop(lr=0.05)",
        "rprop(lr=0.05,etas=0.3,1.5,step_sizes=0.001,1)",
    ];

    fn buffers(&self, _shape: &[usize]) -> &'static [&'static str] {
        &["prev", "step_size"]
    }

    fn buffer_init(&self, buffer: &str) -> f64 {
        if buffer == "step_size" {
            self.lr
        } else {
            0.0
        }
    }

    fn check(&self) -> Result<()> {
        if self.step_sizes.0 > self.step_sizes.1 {
            return Err(crate::hyper::invalid_value(
                "rprop",
                "step_sizes",
                format!("({}, {})", self.step_sizes.0, self.step_sizes.1),
                "a minimum no larger than the maximum",
            ));
        }
        Ok(())
    }

    fn prepare<T: Real>(&self, _: u64, _: bool, _: &mut [f64], _: &[f64]) -> RpropConsts<T> {
        RpropConsts {
            sign: T::from_f64(if self.maximize { -1.0 } else { 1.0 }),
            eta_minus: T::from_f64(self.etas.0),
            eta_plus: T::from_f64(self.etas.1),
            min: T::from_f64(self.step_sizes.0),
            max: T::from_f64(self.step_sizes.1),
        }
    }

    crate::pointwise_rule!();
}

impl Pointwise for Rprop {
    #[inline(always)]
    fn update<T: Real, V: Lane<T>>(c: &RpropConsts<T>, p: &mut V, g: V, b: &mut [V]) {
        let [prev, step] = b else {
            unreachable!("rprop has two buffers")
        };
        let g = g * c.sign;
        let s = (g * *prev).sign();
        let one = V::splat(T::one());
        let f = s.by_sign(V::splat(c.eta_plus), one, V::splat(c.eta_minus), s);
        *step = (*step * f).clamp(c.min, c.max);
        // After a sign change the gradient is forgotten: no step, and no
        // comparison at the next one.
        let g = s.by_sign(g, g, V::splat(T::zero()), g);
        *p = *p + (-g.sign()) * *step;
        *prev = g;
    }
}
