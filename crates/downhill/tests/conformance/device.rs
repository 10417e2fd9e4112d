//! The device form of every element-wise rule, on every optim fixture: each
//! step recorded as a program ([`downhill::optim::program`]) and replayed by
//! a host backend whose tensors are vectors. The backend runs the same IEEE
//! operation per element as the fused loop, so the two forms must agree bit
//! for bit: one definition, two ways to run it. A device backend (candle on
//! a GPU) may round differently; `downhill-candle`'s tests hold it to the
//! fixtures' tolerance.

use crate::fixture::{self, OptimFixture};
use crate::{files, to_t};
use downhill::optim::device::DeviceState;
use downhill::optim::lane::Lane;
use downhill::optim::program::{Op, TensorOps};
use downhill::optim::{build_rule, Optimizer};
use downhill::Real;
use std::marker::PhantomData;
use std::rc::Rc;

/// Vectors as device tensors.
struct VecOps<T>(PhantomData<T>);

type V<T> = Rc<Vec<T>>;

fn map<T: Real>(a: &[T], f: impl Fn(T) -> T) -> V<T> {
    Rc::new(a.iter().map(|&x| f(x)).collect())
}

fn zip<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> V<T> {
    assert_eq!(a.len(), b.len(), "tensors of one shape");
    Rc::new(a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect())
}

impl<T: Real> TensorOps for VecOps<T> {
    type Tensor = V<T>;
    type Error = String;

    fn full_like(&self, like: &V<T>, x: f64) -> Result<V<T>, String> {
        Ok(Rc::new(vec![T::from_f64(x); like.len()]))
    }

    fn binary(&self, op: Op, a: &V<T>, b: &V<T>) -> Result<V<T>, String> {
        Ok(match op {
            Op::Add(..) => zip(a, b, |x, y| x + y),
            Op::Sub(..) => zip(a, b, |x, y| x - y),
            Op::Mul(..) => zip(a, b, |x, y| x * y),
            Op::Div(..) => zip(a, b, |x, y| x / y),
            Op::Maximum(..) => zip(a, b, Lane::<T>::maximum),
            other => return Err(format!("{other:?} is not binary")),
        })
    }

    fn unary(&self, op: Op, a: &V<T>) -> Result<V<T>, String> {
        let c = T::from_f64;
        Ok(match op {
            Op::Neg(_) => map(a, |x| -x),
            Op::Sqrt(_) => map(a, Lane::<T>::sqrt),
            Op::Abs(_) => map(a, Lane::<T>::abs),
            Op::Sign(_) => map(a, Lane::<T>::sign),
            Op::MaxConst(_, k) => map(a, |x| Lane::<T>::max(x, c(k))),
            Op::MinConst(_, k) => map(a, |x| Lane::<T>::min(x, c(k))),
            Op::Clamp(_, lo, hi) => map(a, |x| Lane::<T>::clamp(x, c(lo), c(hi))),
            other => return Err(format!("{other:?} is not unary")),
        })
    }

    fn by_sign(
        &self,
        x: &V<T>,
        pos: &V<T>,
        zero: &V<T>,
        neg: &V<T>,
        nan: &V<T>,
    ) -> Result<V<T>, String> {
        Ok(Rc::new(
            (0..x.len())
                .map(|i| x[i].by_sign(pos[i], zero[i], neg[i], nan[i]))
                .collect(),
        ))
    }
}

/// Every parameter (and evaluation point) after every step, in one form.
type Trajectory<T> = Vec<Vec<Vec<T>>>;

fn run<T: Real>(
    f: &OptimFixture,
    shapes: &[Vec<usize>],
    device: bool,
) -> Result<Trajectory<T>, String> {
    let mut opt = build_rule::<T>(&f.spec(), shapes).map_err(|e| e.to_string())?;
    let mut params: Vec<V<T>> = to_t::<T>(&f.params0).into_iter().map(Rc::new).collect();
    let mut state = DeviceState::new(params.len());
    let backend = VecOps::<T>(PhantomData);
    let mut out = Vec::new();
    for (t, g) in f.grads.iter().enumerate() {
        let g: Vec<V<T>> = to_t::<T>(g).into_iter().map(Rc::new).collect();
        opt.ready().map_err(|e| format!("step {t}: {e}"))?;
        if device {
            let ps: Vec<&V<T>> = params.iter().collect();
            let gs: Vec<&V<T>> = g.iter().collect();
            for (i, p) in state.step(&mut *opt, &backend, &ps, &gs)? {
                params[i] = p;
            }
        } else {
            let mut ps: Vec<Vec<T>> = params.iter().map(|p| p.to_vec()).collect();
            let mut pm: Vec<&mut [T]> = ps.iter_mut().map(Vec::as_mut_slice).collect();
            let gs: Vec<&[T]> = g.iter().map(|g| g.as_slice()).collect();
            opt.step(&mut pm, &gs)
                .map_err(|e| format!("step {t}: {e}"))?;
            params = ps.into_iter().map(Rc::new).collect();
        }
        let mut record: Vec<Vec<T>> = params.iter().map(|p| p.to_vec()).collect();
        if f.eval_params.is_some() {
            record.extend(eval_point(&mut *opt, &state, &params, device)?);
        }
        out.push(record);
    }
    Ok(out)
}

/// The evaluation point. In device form the buffers go back to the
/// optimiser for it, and out again: what an adapter does to evaluate.
fn eval_point<T: Real>(
    opt: &mut dyn Optimizer<T>,
    state: &DeviceState<V<T>>,
    params: &[V<T>],
    device: bool,
) -> Result<Vec<Vec<T>>, String> {
    if device {
        for i in 0..params.len() {
            let mut held = opt.take_buffers(i);
            for b in &mut held {
                let (_, x) = state
                    .buffers(i)
                    .iter()
                    .find(|(n, _)| *n == b.name)
                    .ok_or_else(|| format!("no buffer {} on the device", b.name))?;
                b.data = x.to_vec();
            }
            opt.put_buffers(i, held);
        }
    }
    let ps: Vec<&[T]> = params.iter().map(|p| p.as_slice()).collect();
    let mut out: Vec<Vec<T>> = params.iter().map(|p| vec![T::zero(); p.len()]).collect();
    let mut os: Vec<&mut [T]> = out.iter_mut().map(Vec::as_mut_slice).collect();
    let differs = opt.eval_params(&ps, &mut os).map_err(|e| e.to_string())?;
    if device {
        for i in 0..params.len() {
            opt.take_buffers(i);
        }
    }
    if !differs {
        return Err(format!("{} has no evaluation point", opt.name()));
    }
    Ok(out)
}

fn same_bits<T: Real>(a: &Trajectory<T>, b: &Trajectory<T>) -> Result<(), String> {
    for (t, (x, y)) in a.iter().zip(b).enumerate() {
        for (i, (x, y)) in x.iter().zip(y).enumerate() {
            for (j, (x, y)) in x.iter().zip(y).enumerate() {
                let (x, y) = (Real::to_f64(*x), Real::to_f64(*y));
                if x.to_bits() != y.to_bits() {
                    return Err(format!(
                        "step {t}, tensor {i}[{j}]: fused {x:e}, device form {y:e}"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn the_device_form_gives_the_fused_loops_bits() {
    let (mut checked, mut expected) = (0, 0);
    let mut failures = Vec::new();
    for path in files("optim").expect("the optim fixtures") {
        let f: OptimFixture = fixture::read(&path).expect("a valid fixture");
        let shapes = f.validate().expect("a valid fixture");
        // Every element-wise rule that does not sum over tensors has one.
        expected += usize::from(
            downhill::optim::registry::entry(&f.optimizer)
                .is_ok_and(|e| e.elementwise && !e.shares_groups),
        );
        let has_form = build_rule::<f64>(&f.spec(), &shapes).is_ok_and(|o| o.device_form());
        if !has_form {
            continue;
        }
        let both = |device| -> Result<(), String> {
            same_bits(
                &run::<f64>(&f, &shapes, false)?,
                &run::<f64>(&f, &shapes, device)?,
            )?;
            same_bits(
                &run::<f32>(&f, &shapes, false)?,
                &run::<f32>(&f, &shapes, device)?,
            )
        };
        if let Err(e) = both(true) {
            failures.push(format!("{}: {e}", path.display()));
        }
        checked += 1;
    }
    println!("device form: {checked} optim fixtures");
    assert_eq!(
        checked, expected,
        "fixtures of rules with a device form that had none"
    );
    assert!(checked > 0, "no fixture ran in device form");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
