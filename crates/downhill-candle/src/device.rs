//! The device path: a step as candle tensor ops on the vars' own device
//! (CUDA, Metal, or the CPU when forced), with the state there too.
//!
//! Each element-wise rule's one definition is recorded as a program
//! ([`downhill::optim::program`]) and run here through [`CandleOps`]. The
//! gradients are screened and clipped with tensor ops; what comes back to
//! the host per step is one small vector (each gradient's non-finite flag
//! and, when clipping by norm, its sum of squares), never a tensor. Saving
//! and evaluation points copy the state to the host, once per call.

use crate::cpu::Direct;
use crate::engine::{named, Engine, Vars};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use downhill::adapter::Config;
use downhill::clip::clip_coefficient;
use downhill::optim::program::{Op, TensorOps};
use downhill::optim::{build, Param};
use downhill::optim::{screen_gradients, NonFinite, StepOutcome};
use downhill::state::SavedState;

/// candle's tensors as a [`TensorOps`] backend, on any device.
///
/// Operations with a constant use `affine`, as `candle_nn`'s optimisers do:
/// a division by a constant becomes a multiplication by its reciprocal, and
/// a product's zero loses its sign, so results may differ from the fused
/// CPU loop in the last bit (the fixtures bound it: `tests/device_path.rs`).
/// `sign` and `maximum` get torch's NaN semantics (candle's own give 0 and
/// drop the NaN).
#[derive(Clone, Copy, Debug, Default)]
pub struct CandleOps;

impl TensorOps for CandleOps {
    type Tensor = Tensor;
    type Error = candle_core::Error;

    fn full_like(&self, like: &Tensor, x: f64) -> candle_core::Result<Tensor> {
        match like.dtype() {
            DType::F64 => Tensor::full(x, like.shape(), like.device()),
            DType::F32 => Tensor::full(x as f32, like.shape(), like.device()),
            other => Err(candle_core::Error::Msg(format!(
                "downhill: the device path runs f32 and f64 tensors, not {other:?}"
            ))),
        }
    }

    fn binary(&self, op: Op, a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        match op {
            Op::Add(..) => a.add(b),
            Op::Sub(..) => a.sub(b),
            Op::Mul(..) => a.mul(b),
            Op::Div(..) => a.div(b),
            // a where a > b or a is NaN, else b (torch.maximum).
            Op::Maximum(..) => {
                let larger = a.gt(b)?.where_cond(a, b)?;
                a.ne(a)?.where_cond(a, &larger)
            }
            other => Err(candle_core::Error::Msg(format!(
                "downhill: {other:?} is not binary"
            ))),
        }
    }

    fn binary_const(
        &self,
        op: Op,
        a: &Tensor,
        c: f64,
        const_first: bool,
    ) -> candle_core::Result<Tensor> {
        match (op, const_first) {
            (Op::Add(..), _) => a.affine(1.0, c),
            (Op::Sub(..), false) => a.affine(1.0, -c),
            (Op::Sub(..), true) => a.affine(-1.0, c),
            (Op::Mul(..), _) => a.affine(c, 0.0),
            (Op::Div(..), false) => a.affine(1.0 / c, 0.0),
            (Op::Div(..), true) => a.recip()?.affine(c, 0.0),
            _ => self.binary_full(op, a, c, const_first),
        }
    }

    fn scale_shift(
        &self,
        a: &Tensor,
        op: Op,
        c: f64,
        shift: Op,
        d: f64,
    ) -> candle_core::Result<Tensor> {
        let mul = if matches!(op, Op::Div(..)) {
            1.0 / c
        } else {
            c
        };
        let add = if matches!(shift, Op::Sub(..)) { -d } else { d };
        a.affine(mul, add)
    }

    fn unary(&self, op: Op, a: &Tensor) -> candle_core::Result<Tensor> {
        let nan = |a: &Tensor| a.ne(a);
        match op {
            Op::Neg(_) => a.neg(),
            Op::Sqrt(_) => a.sqrt(),
            Op::Abs(_) => a.abs(),
            Op::Sign(_) => nan(a)?.where_cond(a, &a.sign()?),
            // Float::max / min: the constant where `a` is NaN.
            Op::MaxConst(_, c) => {
                let c = self.full_like(a, c)?;
                a.ge(&c)?.where_cond(a, &c)
            }
            Op::MinConst(_, c) => {
                let c = self.full_like(a, c)?;
                a.le(&c)?.where_cond(a, &c)
            }
            Op::Clamp(_, lo, hi) => {
                let (lo, hi) = (self.full_like(a, lo)?, self.full_like(a, hi)?);
                let upper = a.gt(&hi)?.where_cond(&hi, a)?;
                a.lt(&lo)?.where_cond(&lo, &upper)
            }
            other => Err(candle_core::Error::Msg(format!(
                "downhill: {other:?} is not unary"
            ))),
        }
    }

    fn by_sign(
        &self,
        x: &Tensor,
        pos: &Tensor,
        zero: &Tensor,
        neg: &Tensor,
        nan: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let z = x.zeros_like()?;
        let at_zero = x.eq(&z)?.where_cond(zero, nan)?;
        let below = x.lt(&z)?.where_cond(neg, &at_zero)?;
        x.gt(&z)?.where_cond(pos, &below)
    }
}

impl<T: Direct> Engine<T> {
    /// One step on the vars' device.
    pub(crate) fn step_device(
        &mut self,
        v: &Vars<'_>,
        grads: &GradStore,
        cfg: &Config,
    ) -> candle_core::Result<StepOutcome> {
        let n = v.vars.len();
        let mut gs = Vec::with_capacity(n);
        for i in 0..n {
            gs.push(Self::grad(v, grads, i)?.detach());
        }
        // One read-back for every gradient's verdict (and norm): g·0 is NaN
        // exactly where g is not finite.
        let check = self.opt.non_finite() != NonFinite::Unchecked;
        let clip = cfg.clip_norm.is_some();
        let per = usize::from(check) + usize::from(clip);
        let mut sums = Vec::with_capacity(per * n);
        for g in &gs {
            if check {
                sums.push(g.affine(0.0, 0.0)?.sum_all()?.to_dtype(DType::F64)?);
            }
            if clip {
                sums.push(g.sqr()?.sum_all()?.to_dtype(DType::F64)?);
            }
        }
        let sums = if sums.is_empty() {
            Vec::new()
        } else {
            Tensor::stack(&sums, 0)?.to_vec1::<f64>()?
        };
        let screened = screen_gradients(&*self.opt, |i| {
            if sums[per * i].is_finite() {
                return None;
            }
            // The error names the first bad element: find it on the host.
            let host = gs[i]
                .flatten_all()
                .ok()?
                .to_dtype(DType::F64)
                .ok()?
                .to_vec1::<f64>()
                .ok()?;
            host.iter()
                .position(|x| !x.is_finite())
                .map(|k| (k, host[k]))
        });
        if let Some(outcome) = screened.map_err(|e| named(e, v.names))? {
            return Ok(outcome);
        }
        self.opt.ready().map_err(|e| named(e, v.names))?;
        if let Some(max) = cfg.clip_norm {
            let total = (0..n).map(|i| sums[per * i + per - 1]).sum::<f64>().sqrt();
            if let Some(coef) = clip_coefficient(total, max) {
                for g in &mut gs {
                    *g = g.affine(coef, 0.0)?;
                }
            }
        }
        if let Some(value) = cfg.clip_value {
            for g in &mut gs {
                *g = g.clamp(-value, value)?;
            }
        }
        // Detached: no op of a step may join the autograd graph, or each
        // step's state would keep the last one's alive.
        let params: Vec<Tensor> = v.vars.iter().map(|x| x.as_tensor().detach()).collect();
        let ps: Vec<&Tensor> = params.iter().collect();
        let grefs: Vec<&Tensor> = gs.iter().collect();
        let news = self.device.step(&mut *self.opt, &CandleOps, &ps, &grefs)?;
        for (i, p) in news {
            v.vars[i].set(&p)?;
        }
        Ok(StepOutcome::Stepped)
    }

    /// The whole state with the device's buffers copied in: what
    /// [`crate::CandleOptimizer::save`] writes.
    pub(crate) fn host_state(&self) -> candle_core::Result<SavedState> {
        let mut state = self
            .opt
            .save_state()
            .map_err(|e| candle_core::Error::Msg(format!("downhill: {e}")))?;
        for i in 0..self.opt.params().len() {
            for (name, x) in self.device.buffers(i) {
                let data = x.to_dtype(T::DTYPE)?.flatten_all()?.to_vec1::<T>()?;
                let mut bytes = Vec::with_capacity(data.len() * T::BYTES);
                T::extend_le_bytes(&data, &mut bytes);
                state
                    .set_buffer(i, name, bytes)
                    .map_err(|e| candle_core::Error::Msg(format!("downhill: {e}")))?;
            }
        }
        Ok(state)
    }

    /// The evaluation point on the device path: the state copied to a host
    /// optimiser, which computes it ([`crate::CandleOptimizer::eval_params`]).
    pub(crate) fn eval_params_device(
        &self,
        cfg: &Config,
        params: &[Param],
        vars: &[Var],
        names: &[String],
    ) -> candle_core::Result<Option<Vec<Tensor>>> {
        let state = self.host_state()?;
        let mut host = build::<T>(&cfg.optimizer, params).map_err(|e| named(e, names))?;
        host.load_state(&state).map_err(|e| named(e, names))?;
        crate::engine::eval_params(&*host, vars, names)
    }

    /// Moves a loaded state's buffers onto the vars' device.
    pub(crate) fn buffers_to_device(&mut self, v: &Vars<'_>) -> candle_core::Result<()> {
        for (i, var) in v.vars.iter().enumerate() {
            let mut on_device = Vec::new();
            for b in self.opt.take_buffers(i) {
                if b.data.is_empty() && b.shape.iter().product::<usize>() > 0 {
                    continue;
                }
                let t = Tensor::from_slice(&b.data, b.shape.as_slice(), &candle_core::Device::Cpu)?
                    .to_device(var.device())?
                    .to_dtype(var.dtype())?;
                on_device.push((b.name, t));
            }
            self.device.set_buffers(i, on_device);
        }
        Ok(())
    }
}
