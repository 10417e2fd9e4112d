//! The CPU path: downhill's fused step runs on the vars' own storage, under
//! candle's storage locks, through candle's in-place custom ops.
//!
//! A downhill step needs every parameter at once (a partition, Prodigy and
//! the non-finite check look across tensors), but candle hands out a var's
//! storage mutably only inside an in-place op's callback, one var at a
//! time. So the step nests: var 0's op locks var 0 (and reads its gradient)
//! and, inside its callback, runs var 1's op, and so on; inside the last
//! callback every var is locked, and `Held` gives the optimiser random
//! access to all of them, through the addresses each frame recorded.
//! Nothing is copied and nothing is allocated (the list of addresses is
//! kept from step to step); the nesting is one stack frame per var.

use candle_core::backend::BackendStorage;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Storage, Tensor, Var};
use downhill::optim::{Optimizer, Tensors};
use half::{bf16, f16};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Calls into candle's in-place op entry (`Tensor::inplace_op1/2`) so far.
static INPLACE_CALLS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has called candle's in-place op entry
/// (`Tensor::inplace_op1` and `inplace_op2`): once per var per step on the
/// in-place path, plus once per gradient for each clipping pass, plus once
/// per var on the half path's write-back.
///
/// For allocation counts: candle-core 0.11's entry checks the destination's
/// layout for overlapping elements (`Layout::has_internal_overlap`), which
/// collects the layout's dimensions into a `Vec`, one small allocation per
/// call that no caller can avoid. Everything else in a step allocates
/// nothing after the first (`tests/alloc.rs` counts both).
pub fn candle_inplace_calls() -> u64 {
    INPLACE_CALLS.load(Ordering::Relaxed)
}

fn count_call() {
    INPLACE_CALLS.fetch_add(1, Ordering::Relaxed);
}

/// An element type candle stores on the CPU that downhill's kernels update
/// directly (f32 and f64).
pub trait Direct: downhill::Real + candle_core::WithDType {
    /// The storage's elements, if it holds this type.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
}

impl Direct for f32 {
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [f32]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
}

impl Direct for f64 {
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [f64]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
}

/// The elements a contiguous layout covers.
fn region(l: &Layout, what: &str) -> candle_core::Result<std::ops::Range<usize>> {
    l.contiguous_offsets()
        .map(|(a, b)| a..b)
        .ok_or_else(|| candle_core::Error::Msg(format!("{what} is not contiguous")))
}

/// A tensor's elements as a slice of `T` (read-locked for the duration of `f`).
pub fn read<T: candle_core::WithDType, R>(
    t: &Tensor,
    what: &str,
    f: impl FnOnce(&[T]) -> R,
) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(candle_core::Error::Msg(format!("{what} is not on the CPU")));
    };
    let all = T::cpu_storage_as_slice(cpu)?;
    Ok(f(&all[region(layout, what)?]))
}

/// A change to a tensor's elements.
type Change<'f, T> = &'f mut dyn FnMut(&mut [T]);

/// Runs `f` on a CPU tensor's elements, mutably, through an in-place op.
struct Mutate<'f, T> {
    what: &'f str,
    f: RefCell<Change<'f, T>>,
}

impl<T: Direct> InplaceOp1 for Mutate<'_, T> {
    fn name(&self) -> &'static str {
        "downhill-mutate"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let range = region(l, self.what)?;
        let dtype = s.dtype();
        let data = T::slice_mut(s).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "{} holds {dtype:?}, expected {:?}",
                self.what,
                T::DTYPE
            ))
        })?;
        (self.f.borrow_mut())(&mut data[range]);
        Ok(())
    }
}

/// Changes a CPU tensor's elements in place (gradient clipping).
pub fn mutate<T: Direct>(
    t: &Tensor,
    what: &str,
    mut f: impl FnMut(&mut [T]),
) -> candle_core::Result<()> {
    count_call();
    t.inplace_op1(&Mutate {
        what,
        f: RefCell::new(&mut f),
    })
}

/// Half-precision storage: read as f32, written back rounded to nearest.
pub trait Half: candle_core::WithDType {
    /// The storage's elements, if it holds this type.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
    /// Widens to f32 (exact).
    fn widen(self) -> f32;
    /// Rounds an f32 to nearest.
    fn narrow(x: f32) -> Self;
}

impl Half for bf16 {
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [bf16]> {
        match s {
            CpuStorage::BF16(v) => Some(v),
            _ => None,
        }
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
    fn narrow(x: f32) -> Self {
        bf16::from_f32(x)
    }
}

impl Half for f16 {
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [f16]> {
        match s {
            CpuStorage::F16(v) => Some(v),
            _ => None,
        }
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
    fn narrow(x: f32) -> Self {
        f16::from_f32(x)
    }
}

/// Writes f32 values into a half-precision CPU var, rounded, in place.
struct WriteBack<'a, H, T> {
    what: &'a str,
    values: &'a [T],
    _h: std::marker::PhantomData<H>,
}

impl<H: Half, T: downhill::Real> InplaceOp1 for WriteBack<'_, H, T> {
    fn name(&self) -> &'static str {
        "downhill-write-back"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let range = region(l, self.what)?;
        let data = H::slice_mut(s)
            .ok_or_else(|| candle_core::Error::Msg(format!("{} changed dtype", self.what)))?;
        for (d, &v) in data[range].iter_mut().zip(self.values) {
            // T is f32 here (half vars keep f32 state): the cast is exact.
            *d = H::narrow(v.to_f64() as f32);
        }
        Ok(())
    }
}

/// Writes `values` into the half-precision CPU var `var`, rounded to nearest.
pub fn write_half<H: Half, T: downhill::Real>(
    var: &Var,
    what: &str,
    values: &[T],
) -> candle_core::Result<()> {
    count_call();
    var.inplace_op1(&WriteBack::<H, T> {
        what,
        values,
        _h: std::marker::PhantomData,
    })
}

/// Where var `i`'s elements and its gradient's lie while the nesting holds
/// their locks: addresses (kept as integers, so the engine that reuses the
/// list stays `Send`) and the length of both.
#[derive(Clone, Copy, Debug, Default)]
pub struct Slot {
    param: usize,
    grad: usize,
    len: usize,
}

/// Every var and gradient of a step, while the nesting holds their locks.
struct Held<'a, T> {
    slots: &'a [Slot],
    _elements: std::marker::PhantomData<&'a mut [T]>,
}

impl<T> Tensors<T> for Held<'_, T> {
    fn get(&mut self, i: usize) -> (&mut [T], &[T]) {
        let s = self.slots[i];
        // SAFETY: `Held` exists only inside the innermost callback of the
        // nesting ([`Lock::cpu_fwd`]), while every enclosing frame still
        // holds var `j`'s storage write lock and its gradient's read lock
        // for every `j`; each slot was recorded from those guarded slices
        // (`s.len` elements of `T`, checked equal for both), and the
        // slices they came from are not touched again until the callbacks
        // return, after `Held` is gone. No two vars share a storage (a
        // second write lock on one would block, never alias), no gradient
        // shares one with a var being written (the read and write lock
        // would exclude each other), and the `&mut` returned here borrows
        // `self`, so at most one of them is alive at a time.
        unsafe {
            (
                std::slice::from_raw_parts_mut(s.param as *mut T, s.len),
                std::slice::from_raw_parts(s.grad as *const T, s.len),
            )
        }
    }
}

/// The in-place op that locks var `index` (and reads its gradient), then
/// either nests the next var's op or, at the last var, runs the update.
struct Lock<'s, 'o, T> {
    index: usize,
    vars: &'s [Var],
    names: &'s [String],
    grads: &'s GradStore,
    slots: &'s RefCell<Vec<Slot>>,
    opt: &'s RefCell<&'o mut dyn Optimizer<T>>,
}

impl<T: Direct> InplaceOp2 for Lock<'_, '_, T> {
    fn name(&self) -> &'static str {
        "downhill-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let name = &self.names[self.index];
        let range = region(l1, name)?;
        let grad_range = region(l2, name)?;
        let param = &mut T::slice_mut(s1).ok_or_else(|| {
            candle_core::Error::Msg(format!("{name}: the var changed dtype during the step"))
        })?[range];
        let grad = &T::cpu_storage_as_slice(s2)?[grad_range];
        if param.len() != grad.len() {
            return Err(candle_core::Error::Msg(format!(
                "{name}: {} elements, its gradient {}",
                param.len(),
                grad.len()
            )));
        }
        self.slots.borrow_mut().push(Slot {
            param: param.as_mut_ptr() as usize,
            grad: grad.as_ptr() as usize,
            len: param.len(),
        });
        let next = self.index + 1;
        if next == self.vars.len() {
            let slots = self.slots.borrow();
            self.opt.borrow_mut().apply_step(&mut Held {
                slots: &slots[..],
                _elements: std::marker::PhantomData,
            });
            return Ok(());
        }
        let lock = Lock {
            index: next,
            vars: self.vars,
            names: self.names,
            grads: self.grads,
            slots: self.slots,
            opt: self.opt,
        };
        let grad = self
            .grads
            .get(&self.vars[next])
            .ok_or_else(|| candle_core::Error::Msg(format!("{}: no gradient", self.names[next])))?;
        count_call();
        self.vars[next].inplace_op2(grad, &lock)
    }
}

/// Runs `prepare` (the gradients' clipping), then `opt`'s update (already
/// screened and [`Optimizer::ready`]) on the vars' own storage. Every var
/// must be a contiguous CPU tensor of type `T` with its gradient in `grads`
/// (the caller checked).
///
/// The nesting takes one stack frame per var (well under 2 KiB); up to
/// [`NEST_ON_CALLER`] vars it runs on the caller's stack (a test thread's
/// 2 MiB holds 1,000 vars), beyond that on a helper thread with a stack
/// sized for the vars, which costs that thread's creation on every step.
/// `prepare` runs only once that thread has started, so a step that cannot
/// start leaves the user's gradients as they were.
pub fn apply_in_place<T: Direct>(
    opt: &mut dyn Optimizer<T>,
    vars: &[Var],
    names: &[String],
    grads: &GradStore,
    slots: &mut Vec<Slot>,
    prepare: impl FnOnce() -> candle_core::Result<()> + Send,
) -> candle_core::Result<()> {
    slots.clear();
    if vars.len() <= NEST_ON_CALLER {
        prepare()?;
        return nest(opt, vars, names, grads, slots);
    }
    let stack = (1 << 20) + vars.len() * (8 << 10);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("downhill-candle-step".into())
            .stack_size(stack)
            .spawn_scoped(scope, || {
                prepare()?;
                nest(opt, vars, names, grads, slots)
            })
            .map_err(|e| {
                candle_core::Error::Msg(format!("downhill: cannot start the step's thread: {e}"))
            })?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The most vars whose step nests on the caller's stack (see
/// [`apply_in_place`]).
pub const NEST_ON_CALLER: usize = 256;

fn nest<T: Direct>(
    opt: &mut dyn Optimizer<T>,
    vars: &[Var],
    names: &[String],
    grads: &GradStore,
    slots: &mut Vec<Slot>,
) -> candle_core::Result<()> {
    let Some(first) = vars.first() else {
        return Ok(());
    };
    let grad = grads
        .get(first)
        .ok_or_else(|| candle_core::Error::Msg(format!("{}: no gradient", names[0])))?;
    let opt = RefCell::new(opt);
    // Moved in and out, so the list keeps its capacity from step to step.
    let cell = RefCell::new(std::mem::take(slots));
    let lock = Lock {
        index: 0,
        vars,
        names,
        grads,
        slots: &cell,
        opt: &opt,
    };
    count_call();
    let result = first.inplace_op2(grad, &lock);
    *slots = cell.into_inner();
    result
}
