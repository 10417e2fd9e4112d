//! The optimiser-state reader: `SavedState::from_parts(json, safetensors)`,
//! then `load_state` into an optimiser, as a resumed run does. The first byte
//! picks the optimiser (every one in `OPTIMIZERS`, built over
//! `state_params()` as `build` routes it, and L-BFGS) and the element type;
//! the rest is `optimizer.json` and `optimizer.safetensors` joined by the
//! separator.
//!
//! No panic, no unbounded allocation, one-line errors. A state that loads
//! must also work: the optimiser steps, and its state saves and loads back.
#![no_main]

use downhill::lbfgs::{Lbfgs, LbfgsConfig};
use downhill::optim::{build, Optimizer, OptimizerSpec, OPTIMIZERS};
use downhill::state::SavedState;
use downhill::Real;
use downhill_fuzz::{check_error, split_parts, state_params, STATE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let parts = split_parts(rest);
    let (json, tensors) = match parts.as_slice() {
        [j, t, ..] => (*j, *t),
        _ => return,
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };
    let saved = match SavedState::from_parts(json, tensors) {
        Ok(s) => s,
        Err(e) => return check_error(&e),
    };
    let which = (sel & 0x0f) as usize % (OPTIMIZERS.len() + 1);
    let f64s = sel & 0x10 != 0;
    match (OPTIMIZERS.get(which), f64s) {
        (Some(name), false) => named::<f32>(name, &saved),
        (Some(name), true) => named::<f64>(name, &saved),
        (None, false) => lbfgs::<f32>(&saved),
        (None, true) => lbfgs::<f64>(&saved),
    }
});

fn named<T: Real>(name: &str, saved: &SavedState) {
    let fresh = || build::<T>(&OptimizerSpec::new(name), &state_params()).expect("defaults build");
    let mut opt = fresh();
    if let Err(e) = opt.load_state(saved) {
        return check_error(&e);
    }
    for g in 0..opt.num_groups() {
        let lr = opt.lr(g);
        assert!(lr.is_finite(), "loaded a non-finite lr {lr}");
        let _ = opt.hyper(g);
    }
    let mut params: Vec<T> = (0..STATE_LEN)
        .map(|i| T::from_f64(0.25 * i as f64 - 0.5))
        .collect();
    let grads: Vec<T> = (0..STATE_LEN)
        .map(|i| T::from_f64(0.1 - 0.05 * i as f64))
        .collect();
    for _ in 0..2 {
        if let Err(e) = opt.step_flat(&mut params, &grads) {
            check_error(&e);
        }
    }
    round_trip(&*opt, &mut *fresh());
}

/// What a checkpoint does with a state after a resume: save it and load it
/// again. A loaded state that cannot be saved and read back would make the
/// next checkpoint unusable.
fn round_trip<T: Real>(opt: &dyn Optimizer<T>, into: &mut dyn Optimizer<T>) {
    let state = opt.save_state().expect("a loaded state saves");
    let bytes = state.tensors_bytes().expect("buffers serialise");
    let back = SavedState::from_parts(&state.manifest_json(), &bytes)
        .unwrap_or_else(|e| panic!("a saved state does not read back: {e}"));
    into.load_state(&back)
        .unwrap_or_else(|e| panic!("a saved state does not load back: {e}"));
}

fn lbfgs<T: Real>(saved: &SavedState) {
    const N: usize = 5;
    let mut l = Lbfgs::<T>::new(LbfgsConfig::default(), N).expect("defaults build");
    if let Err(e) = l.load_state(saved) {
        return check_error(&e);
    }
    // Iteration budgets come from the state; a large one is the user's
    // choice, not a bug, so only small ones are run to keep runs fast.
    let c = l.config();
    if c.max_iter <= 50 && c.max_eval.unwrap_or(0) <= 100 {
        let mut x: Vec<T> = (0..N).map(|i| T::from_f64(1.0 + i as f64)).collect();
        // A convex quadratic: ½ Σ (i+1) x_i².
        let res = l.step(&mut x, |x, g| {
            let mut f = 0.0;
            for (i, (xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
                let w = (i + 1) as f64;
                f += 0.5 * w * Real::to_f64(*xi) * Real::to_f64(*xi);
                *gi = T::from_f64(w * Real::to_f64(*xi));
            }
            f
        });
        if let Err(e) = res {
            check_error(&e);
        }
    }
    let state = l.save_state();
    let bytes = state.tensors_bytes().expect("buffers serialise");
    let back = SavedState::from_parts(&state.manifest_json(), &bytes)
        .unwrap_or_else(|e| panic!("a saved state does not read back: {e}"));
    Lbfgs::<T>::new(LbfgsConfig::default(), N)
        .expect("defaults build")
        .load_state(&back)
        .unwrap_or_else(|e| panic!("a saved state does not load back: {e}"));
}
