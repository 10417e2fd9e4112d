//! An element-wise rule's step as a program of whole-tensor operations: the
//! device form of [`super::Pointwise::update`].
//!
//! [`record`] runs a rule's one definition with [`Expr`] lanes, which write
//! each operation down instead of computing it. The result, a [`Program`],
//! is a few dozen operations on the parameter, the gradient and the state
//! buffers, with this step's constants (bias corrections, the scheduled
//! rate) baked in. [`Program::run`] replays it through a [`TensorOps`]
//! backend, so the state never leaves the device that holds the tensors:
//! `downhill-candle` implements the backend for candle's tensors on any
//! device.
//!
//! Constants are kept as the exact `f64` value of the rule's `T` constant,
//! and operations between two constants are computed in `T`, so a program
//! runs the same IEEE operations as the fused loop. A backend may still
//! round differently (a division by a constant done as a multiplication by
//! its reciprocal, a fused multiply-add on a GPU); the conformance fixtures
//! bound the difference (`tests/device_form.rs`).

use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Neg, Sub};

use super::lane::Lane;
use super::{Pointwise, MAX_BUFFERS};
use crate::Real;

/// A value in a recorded program: the index of the operation that makes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expr(u32);

/// One operation of a [`Program`]. Operands are earlier operations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// The parameter (0), the gradient (1) or state buffer `k` (`2 + k`).
    Input(usize),
    /// A constant, exactly the rule's `T` value.
    Const(f64),
    /// `a + b`.
    Add(Expr, Expr),
    /// `a − b`.
    Sub(Expr, Expr),
    /// `a · b`.
    Mul(Expr, Expr),
    /// `a / b`.
    Div(Expr, Expr),
    /// `−a`.
    Neg(Expr),
    /// `√a`.
    Sqrt(Expr),
    /// `|a|`.
    Abs(Expr),
    /// `torch.sign(a)`.
    Sign(Expr),
    /// `torch.maximum(a, b)` (NaN wins).
    Maximum(Expr, Expr),
    /// `Float::max(a, c)` with a constant (`c` where `a` is NaN).
    MaxConst(Expr, f64),
    /// `Float::min(a, c)` with a constant (`c` where `a` is NaN).
    MinConst(Expr, f64),
    /// `lo` below `lo`, `hi` above `hi`, else `a` (NaN stays).
    Clamp(Expr, f64, f64),
    /// By the sign of `x`: `pos`, `zero`, `neg`, or `nan` where `x` is NaN.
    BySign {
        /// What decides.
        x: Expr,
        /// Where `x > 0`.
        pos: Expr,
        /// Where `x == 0`.
        zero: Expr,
        /// Where `x < 0`.
        neg: Expr,
        /// Where `x` is NaN.
        nan: Expr,
    },
}

/// The tape [`Expr`] operations are written on while [`record`] runs.
struct Tape {
    ops: Vec<Op>,
    /// Whether `T` is `f32`: constant-with-constant operations round there.
    single: bool,
}

thread_local! {
    static TAPE: RefCell<Option<Tape>> = const { RefCell::new(None) };
}

fn push(op: Op) -> Expr {
    TAPE.with(|t| {
        let mut t = t.borrow_mut();
        let tape = t
            .as_mut()
            .expect("Expr arithmetic outside optim::program::record");
        // Fold operations on constants now, in T, as the fused loop would.
        let fold = |f: fn(f64, f64) -> f64, a: Expr, b: Expr| -> Option<f64> {
            match (tape.ops[a.0 as usize], tape.ops[b.0 as usize]) {
                (Op::Const(x), Op::Const(y)) if tape.single => {
                    Some(f((x as f32).into(), (y as f32).into()) as f32 as f64)
                }
                (Op::Const(x), Op::Const(y)) => Some(f(x, y)),
                _ => None,
            }
        };
        let folded = match op {
            Op::Add(a, b) => fold(|x, y| x + y, a, b),
            Op::Sub(a, b) => fold(|x, y| x - y, a, b),
            Op::Mul(a, b) => fold(|x, y| x * y, a, b),
            Op::Div(a, b) => fold(|x, y| x / y, a, b),
            _ => None,
        };
        // x·1, 1·x, x/1 and x − 0 are x, bit for bit: no operation.
        let is = |e: Expr, c: f64| matches!(tape.ops[e.0 as usize], Op::Const(x) if x.to_bits() == c.to_bits());
        let same = match op {
            Op::Mul(a, b) if is(b, 1.0) => Some(a),
            Op::Mul(a, b) if is(a, 1.0) => Some(b),
            Op::Div(a, b) | Op::Sub(a, b) if is(b, if matches!(op, Op::Div(..)) { 1.0 } else { 0.0 }) => {
                Some(a)
            }
            _ => None,
        };
        if folded.is_none() {
            if let Some(e) = same {
                return e;
            }
        }
        tape.ops.push(folded.map_or(op, Op::Const));
        Expr(tape.ops.len() as u32 - 1)
    })
}

fn constant<T: Real>(x: T) -> Expr {
    push(Op::Const(x.to_f64()))
}

macro_rules! binary {
    ($trait:ident, $method:ident, $op:ident) => {
        impl $trait for Expr {
            type Output = Expr;
            fn $method(self, rhs: Expr) -> Expr {
                push(Op::$op(self, rhs))
            }
        }

        impl<T: Real> $trait<T> for Expr {
            type Output = Expr;
            fn $method(self, rhs: T) -> Expr {
                push(Op::$op(self, constant(rhs)))
            }
        }
    };
}

binary!(Add, add, Add);
binary!(Sub, sub, Sub);
binary!(Mul, mul, Mul);
binary!(Div, div, Div);

impl Neg for Expr {
    type Output = Expr;
    fn neg(self) -> Expr {
        push(Op::Neg(self))
    }
}

impl<T: Real> Lane<T> for Expr {
    fn splat(x: T) -> Expr {
        constant(x)
    }
    fn divides(self, x: T) -> Expr {
        push(Op::Div(constant(x), self))
    }
    fn sqrt(self) -> Expr {
        push(Op::Sqrt(self))
    }
    fn abs(self) -> Expr {
        push(Op::Abs(self))
    }
    fn sign(self) -> Expr {
        push(Op::Sign(self))
    }
    fn maximum(self, other: Expr) -> Expr {
        push(Op::Maximum(self, other))
    }
    fn max(self, x: T) -> Expr {
        push(Op::MaxConst(self, x.to_f64()))
    }
    fn min(self, x: T) -> Expr {
        push(Op::MinConst(self, x.to_f64()))
    }
    fn clamp(self, lo: T, hi: T) -> Expr {
        push(Op::Clamp(self, lo.to_f64(), hi.to_f64()))
    }
    fn by_sign(self, pos: Expr, zero: Expr, neg: Expr, nan: Expr) -> Expr {
        push(Op::BySign {
            x: self,
            pos,
            zero,
            neg,
            nan,
        })
    }
}

/// One step of an element-wise rule on one tensor, as whole-tensor
/// operations: what [`record`] writes and [`Program::run`] replays.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    ops: Vec<Op>,
    param: Expr,
    buffers: Vec<Expr>,
}

/// Writes down one step of rule `R` with this step's constants, for a
/// tensor with `n_buffers` state buffers (as [`super::Rule::buffers`]
/// names them).
pub fn record<R: Pointwise, T: Real>(c: &R::Consts<T>, n_buffers: usize) -> Program {
    assert!(n_buffers <= MAX_BUFFERS, "at most MAX_BUFFERS buffers");
    TAPE.with(|t| {
        *t.borrow_mut() = Some(Tape {
            ops: Vec::new(),
            single: T::BYTES == 4,
        })
    });
    let mut p = push(Op::Input(0));
    let g = push(Op::Input(1));
    let mut b: Vec<Expr> = (0..n_buffers).map(|k| push(Op::Input(2 + k))).collect();
    R::update::<T, Expr>(c, &mut p, g, &mut b);
    let tape = TAPE
        .with(|t| t.borrow_mut().take())
        .expect("the tape set above");
    Program {
        ops: tape.ops,
        param: p,
        buffers: b,
    }
}

/// What a [`Program`] needs of a tensor library: element-wise operations on
/// tensors of one shape, and constants.
pub trait TensorOps {
    /// A tensor on the backend's device.
    type Tensor: Clone;
    /// The backend's error.
    type Error;
    /// A tensor like `like` (shape, type, device) filled with `x`.
    fn full_like(&self, like: &Self::Tensor, x: f64) -> Result<Self::Tensor, Self::Error>;
    /// An element-wise operation of two tensors: [`Op::Add`], [`Op::Sub`],
    /// [`Op::Mul`], [`Op::Div`] or [`Op::Maximum`] (operands ignored).
    fn binary(
        &self,
        op: Op,
        a: &Self::Tensor,
        b: &Self::Tensor,
    ) -> Result<Self::Tensor, Self::Error>;
    /// `a op c` for a constant `c` ([`Op::Add`], [`Op::Sub`], [`Op::Mul`],
    /// [`Op::Div`]); `c op a` when `const_first`. The default makes a full
    /// tensor of `c`; a backend may do better.
    fn binary_const(
        &self,
        op: Op,
        a: &Self::Tensor,
        c: f64,
        const_first: bool,
    ) -> Result<Self::Tensor, Self::Error> {
        self.binary_full(op, a, c, const_first)
    }
    /// `a op c` (`c op a` when `const_first`) through a full tensor of `c`:
    /// [`TensorOps::binary_const`]'s default, and a backend's fallback.
    fn binary_full(
        &self,
        op: Op,
        a: &Self::Tensor,
        c: f64,
        const_first: bool,
    ) -> Result<Self::Tensor, Self::Error> {
        let c = self.full_like(a, c)?;
        if const_first {
            self.binary(op, &c, a)
        } else {
            self.binary(op, a, &c)
        }
    }
    /// `(a op c) shift d` for constants `c` and `d`: [`Op::Mul`] or
    /// [`Op::Div`], then [`Op::Add`] or [`Op::Sub`]; two operations a
    /// backend may fuse into one pass (candle's `affine`). The default runs
    /// them one after the other, as written.
    fn scale_shift(
        &self,
        a: &Self::Tensor,
        op: Op,
        c: f64,
        shift: Op,
        d: f64,
    ) -> Result<Self::Tensor, Self::Error> {
        let scaled = self.binary_const(op, a, c, false)?;
        self.binary_const(shift, &scaled, d, false)
    }
    /// A one-operand operation: [`Op::Neg`], [`Op::Sqrt`], [`Op::Abs`],
    /// [`Op::Sign`], [`Op::MaxConst`], [`Op::MinConst`] or [`Op::Clamp`]
    /// (with their constants; the operand is `a`).
    fn unary(&self, op: Op, a: &Self::Tensor) -> Result<Self::Tensor, Self::Error>;
    /// [`Op::BySign`]: picks by the sign of `x`.
    fn by_sign(
        &self,
        x: &Self::Tensor,
        pos: &Self::Tensor,
        zero: &Self::Tensor,
        neg: &Self::Tensor,
        nan: &Self::Tensor,
    ) -> Result<Self::Tensor, Self::Error>;
}

/// A value while a program runs.
#[derive(Clone)]
enum Value<X> {
    Const(f64),
    Tensor(X),
}

/// What one step changed: the new parameter and buffers; `None` where the
/// step left one as it was (nothing to write back).
#[derive(Clone, Debug)]
pub struct Outcome<X> {
    /// The parameter after the step.
    pub param: Option<X>,
    /// Each buffer after the step.
    pub buffers: Vec<Option<X>>,
}

impl Program {
    /// How many state buffers the program reads and writes.
    pub fn n_buffers(&self) -> usize {
        self.buffers.len()
    }

    /// The operations, in the order they run.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Runs the step on a backend's tensors: the parameter, the gradient and
    /// the buffers, all of one shape. Only the operations the outputs need
    /// run.
    pub fn run<B: TensorOps>(
        &self,
        backend: &B,
        param: &B::Tensor,
        grad: &B::Tensor,
        buffers: &[&B::Tensor],
    ) -> Result<Outcome<B::Tensor>, B::Error> {
        assert_eq!(buffers.len(), self.buffers.len(), "one tensor per buffer");
        let needed = self.needed();
        let fused = self.scale_shifts(&needed);
        let mut values: Vec<Option<Value<B::Tensor>>> = vec![None; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            if !needed[i] || fused[i] == Fused::Into {
                continue;
            }
            if let Fused::Of {
                x,
                op: scale,
                c,
                shift,
                d,
            } = fused[i]
            {
                let Some(Value::Tensor(x)) = values[x.0 as usize].clone() else {
                    unreachable!("scale_shifts fuses tensors only")
                };
                values[i] = Some(Value::Tensor(backend.scale_shift(&x, scale, c, shift, d)?));
                continue;
            }
            let v = |e: &Expr| values[e.0 as usize].clone().expect("operands run first");
            let tensor = |e: &Expr| -> Result<B::Tensor, B::Error> {
                match v(e) {
                    Value::Tensor(t) => Ok(t),
                    Value::Const(c) => backend.full_like(param, c),
                }
            };
            let value = match *op {
                Op::Input(0) => Value::Tensor(param.clone()),
                Op::Input(1) => Value::Tensor(grad.clone()),
                Op::Input(k) => Value::Tensor(buffers[k - 2].clone()),
                Op::Const(c) => Value::Const(c),
                Op::Add(a, b)
                | Op::Sub(a, b)
                | Op::Mul(a, b)
                | Op::Div(a, b)
                | Op::Maximum(a, b) => match (v(&a), v(&b)) {
                    (Value::Tensor(x), Value::Tensor(y)) => {
                        Value::Tensor(backend.binary(*op, &x, &y)?)
                    }
                    (Value::Tensor(x), Value::Const(c)) if !matches!(op, Op::Maximum(..)) => {
                        Value::Tensor(backend.binary_const(*op, &x, c, false)?)
                    }
                    (Value::Const(c), Value::Tensor(y)) if !matches!(op, Op::Maximum(..)) => {
                        Value::Tensor(backend.binary_const(*op, &y, c, true)?)
                    }
                    _ => Value::Tensor(backend.binary(*op, &tensor(&a)?, &tensor(&b)?)?),
                },
                Op::Neg(a)
                | Op::Sqrt(a)
                | Op::Abs(a)
                | Op::Sign(a)
                | Op::MaxConst(a, _)
                | Op::MinConst(a, _)
                | Op::Clamp(a, ..) => Value::Tensor(backend.unary(*op, &tensor(&a)?)?),
                Op::BySign {
                    x,
                    pos,
                    zero,
                    neg,
                    nan,
                } => Value::Tensor(backend.by_sign(
                    &tensor(&x)?,
                    &tensor(&pos)?,
                    &tensor(&zero)?,
                    &tensor(&neg)?,
                    &tensor(&nan)?,
                )?),
            };
            values[i] = Some(value);
        }
        let output = |e: Expr, input: usize| -> Result<Option<B::Tensor>, B::Error> {
            if self.ops[e.0 as usize] == Op::Input(input) {
                return Ok(None);
            }
            match values[e.0 as usize].clone().expect("outputs run") {
                Value::Tensor(t) => Ok(Some(t)),
                Value::Const(c) => backend.full_like(param, c).map(Some),
            }
        };
        Ok(Outcome {
            param: output(self.param, 0)?,
            buffers: self
                .buffers
                .iter()
                .enumerate()
                .map(|(k, &e)| output(e, 2 + k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Which operations fuse: `(x·c or x/c) ± d` where the product is used
    /// only there and `x` is a tensor.
    fn scale_shifts(&self, needed: &[bool]) -> Vec<Fused> {
        let mut uses = vec![0usize; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            if needed[i] {
                for e in operands(op) {
                    uses[e.0 as usize] += 1;
                }
            }
        }
        for e in std::iter::once(&self.param).chain(&self.buffers) {
            uses[e.0 as usize] += 1;
        }
        let constant = |e: Expr| match self.ops[e.0 as usize] {
            Op::Const(c) => Some(c),
            _ => None,
        };
        let mut fused = vec![Fused::No; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let (Op::Add(a, b) | Op::Sub(a, b)) = *op else {
                continue;
            };
            let Some(d) = constant(b) else { continue };
            let (Op::Mul(x, k) | Op::Div(x, k)) = self.ops[a.0 as usize] else {
                continue;
            };
            let Some(c) = constant(k) else { continue };
            if !needed[i]
                || uses[a.0 as usize] != 1
                || constant(x).is_some()
                || fused[x.0 as usize] == Fused::Into
            {
                continue;
            }
            fused[a.0 as usize] = Fused::Into;
            fused[i] = Fused::Of {
                x,
                op: self.ops[a.0 as usize],
                c,
                shift: *op,
                d,
            };
        }
        fused
    }

    /// Which operations the outputs depend on.
    fn needed(&self) -> Vec<bool> {
        let mut needed = vec![false; self.ops.len()];
        needed[self.param.0 as usize] = true;
        for b in &self.buffers {
            needed[b.0 as usize] = true;
        }
        for i in (0..self.ops.len()).rev() {
            if !needed[i] {
                continue;
            }
            for e in operands(&self.ops[i]) {
                needed[e.0 as usize] = true;
            }
        }
        needed
    }
}

/// An operation's operands.
fn operands(op: &Op) -> Vec<Expr> {
    match *op {
        Op::Input(_) | Op::Const(_) => Vec::new(),
        Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) | Op::Maximum(a, b) => {
            vec![a, b]
        }
        Op::Neg(a)
        | Op::Sqrt(a)
        | Op::Abs(a)
        | Op::Sign(a)
        | Op::MaxConst(a, _)
        | Op::MinConst(a, _)
        | Op::Clamp(a, ..) => {
            vec![a]
        }
        Op::BySign {
            x,
            pos,
            zero,
            neg,
            nan,
        } => vec![x, pos, zero, neg, nan],
    }
}

/// How an operation runs when a program runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fused {
    /// On its own.
    No,
    /// Inside the operation that uses it.
    Into,
    /// As `(x op c) shift d`, with the product it uses.
    Of {
        x: Expr,
        op: Op,
        c: f64,
        shift: Op,
        d: f64,
    },
}
