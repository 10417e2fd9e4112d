//! burn's tensors as a [`TensorOps`] backend: the device form of every
//! element-wise rule, on whatever device holds the tensors.

use burn::tensor::Tensor;
use downhill::optim::program::{Op, TensorOps};

/// burn's flat float tensors as a [`TensorOps`] backend, on any device.
///
/// Each operation is one burn tensor op, rounded as the element type
/// rounds: a division by a constant divides (it is not a product with the
/// reciprocal), so on the CPU backends the programs give the fused loop's
/// bits (`tests/conformance.rs`). `sign` and `maximum` keep NaN, as torch's
/// do.
#[derive(Clone, Copy, Debug, Default)]
pub struct BurnOps;

/// A NaN-propagating pick: where `mask`, `yes`, else `no`.
fn pick(mask: Tensor<1, burn::tensor::Bool>, yes: &Tensor<1>, no: &Tensor<1>) -> Tensor<1> {
    no.clone().mask_where(mask, yes.clone())
}

impl TensorOps for BurnOps {
    type Tensor = Tensor<1>;
    type Error = crate::Error;

    fn full_like(&self, like: &Tensor<1>, x: f64) -> Result<Tensor<1>, crate::Error> {
        Ok(like.full_like(x))
    }

    fn binary(&self, op: Op, a: &Tensor<1>, b: &Tensor<1>) -> Result<Tensor<1>, crate::Error> {
        let (a2, b2) = (a.clone(), b.clone());
        Ok(match op {
            Op::Add(..) => a2 + b2,
            Op::Sub(..) => a2 - b2,
            Op::Mul(..) => a2 * b2,
            Op::Div(..) => a2 / b2,
            // a where a > b or a is NaN, else b (torch.maximum).
            Op::Maximum(..) => {
                let larger = pick(a2.clone().greater(b2), a, b);
                pick(a2.is_nan(), a, &larger)
            }
            other => return Err(crate::Error::Module(format!("{other:?} is not binary"))),
        })
    }

    fn binary_const(
        &self,
        op: Op,
        a: &Tensor<1>,
        c: f64,
        const_first: bool,
    ) -> Result<Tensor<1>, crate::Error> {
        let a2 = a.clone();
        Ok(match (op, const_first) {
            (Op::Add(..), _) => a2.add_scalar(c),
            (Op::Mul(..), _) => a2.mul_scalar(c),
            (Op::Sub(..), false) => a2.sub_scalar(c),
            // c − a = (−a) + c exactly.
            (Op::Sub(..), true) => a2.neg().add_scalar(c),
            (Op::Div(..), false) => a2.div_scalar(c),
            _ => return self.binary_full(op, a, c, const_first),
        })
    }

    fn unary(&self, op: Op, a: &Tensor<1>) -> Result<Tensor<1>, crate::Error> {
        let a2 = a.clone();
        Ok(match op {
            Op::Neg(_) => a2.neg(),
            Op::Sqrt(_) => a2.sqrt(),
            Op::Abs(_) => a2.abs(),
            Op::Sign(_) => pick(a2.clone().is_nan(), a, &a2.sign()),
            // Float::max / min: the constant where `a` is NaN.
            Op::MaxConst(_, c) => {
                let c = a.full_like(c);
                pick(a2.greater_equal(c.clone()), a, &c)
            }
            Op::MinConst(_, c) => {
                let c = a.full_like(c);
                pick(a2.lower_equal(c.clone()), a, &c)
            }
            // lo below lo, hi above hi, else a (NaN stays).
            Op::Clamp(_, lo, hi) => {
                let (lo, hi) = (a.full_like(lo), a.full_like(hi));
                let upper = pick(a2.clone().greater(hi.clone()), &hi, a);
                pick(a2.lower(lo.clone()), &lo, &upper)
            }
            other => return Err(crate::Error::Module(format!("{other:?} is not unary"))),
        })
    }

    fn by_sign(
        &self,
        x: &Tensor<1>,
        pos: &Tensor<1>,
        zero: &Tensor<1>,
        neg: &Tensor<1>,
        nan: &Tensor<1>,
    ) -> Result<Tensor<1>, crate::Error> {
        let at_zero = pick(x.clone().equal_elem(0.0), zero, nan);
        let below = pick(x.clone().lower_elem(0.0), neg, &at_zero);
        Ok(pick(x.clone().greater_elem(0.0), pos, &below))
    }
}
