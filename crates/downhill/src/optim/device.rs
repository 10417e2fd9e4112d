//! Steps on the device that holds the tensors: an optimiser's counters and
//! hyper-parameters stay here, on the host, while its state buffers and
//! arithmetic live with the tensors, as [`super::program::Program`]s that a
//! [`TensorOps`] backend runs.
//!
//! [`DeviceState`] is the whole of it for an adapter: it keeps each tensor's
//! buffers as the backend's tensors, creates them on a tensor's first step,
//! and runs the programs [`super::Optimizer::device_step`] hands out.
//! Element-wise rules have a device form, alone or in a partition;
//! tensor-level rules (Muon, LAMB, SOAP, ...), Prodigy (which sums over every
//! tensor) and lookahead do not, and [`super::Optimizer::device_form`] says
//! so before anything runs.

use super::program::{Program, TensorOps};
use super::Optimizer;
use crate::Real;

/// What a state buffer starts as.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BufferInit {
    /// Every element this value ([`super::Rule::buffer_init`]).
    Fill(f64),
    /// A copy of the parameter ([`super::Rule::buffer_copies_param`]).
    Param,
}

/// One tensor's step in device form.
#[derive(Clone, Debug)]
pub struct DeviceTensor {
    /// The tensor's index among the optimiser's parameters.
    pub param: usize,
    /// The step's arithmetic.
    pub program: Program,
    /// The program's buffers, in its order: name and initial value.
    pub buffers: Vec<(&'static str, BufferInit)>,
}

/// A state buffer on the host, moving to or from a device.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBuffer<T> {
    /// Its name ([`super::Rule::buffers`]).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: Vec<T>,
}

/// The state buffers of every tensor, as a backend's tensors.
#[derive(Clone, Debug)]
pub struct DeviceState<X> {
    /// Per parameter: its buffers by name.
    buffers: Vec<Vec<(String, X)>>,
}

impl<X: Clone> DeviceState<X> {
    /// No buffers yet, for `n` parameters.
    pub fn new(n: usize) -> Self {
        DeviceState {
            buffers: vec![Vec::new(); n],
        }
    }

    /// Parameter `param`'s buffers, by name.
    pub fn buffers(&self, param: usize) -> &[(String, X)] {
        &self.buffers[param]
    }

    /// Replaces parameter `param`'s buffers (a restored state).
    pub fn set_buffers(&mut self, param: usize, buffers: Vec<(String, X)>) {
        self.buffers[param] = buffers;
    }

    /// One step on the device: the new value of every parameter the step
    /// changes, by index. The gradients have been screened and clipped; the
    /// caller assigns the new values. Buffers are replaced only once every
    /// program has run, so a backend error leaves them as they were (the
    /// counters have advanced: reload a saved state to go on).
    ///
    /// # Panics
    /// If `opt` has no device form (check [`Optimizer::device_form`]).
    pub fn step<T: Real, B: TensorOps<Tensor = X>>(
        &mut self,
        opt: &mut dyn Optimizer<T>,
        backend: &B,
        params: &[&X],
        grads: &[&X],
    ) -> Result<Vec<(usize, X)>, B::Error> {
        let steps = opt
            .device_step()
            .expect("device_step on an optimiser without a device form");
        let mut news = Vec::with_capacity(steps.len());
        let mut updates = Vec::with_capacity(steps.len());
        for t in &steps {
            let (p, g) = (params[t.param], grads[t.param]);
            // A buffer the tensor lacks starts here; it is kept with the
            // others once every program has run.
            let mut inputs = Vec::with_capacity(t.buffers.len());
            for &(name, init) in &t.buffers {
                inputs.push(
                    match self.buffers[t.param].iter().find(|(n, _)| n == name) {
                        Some((_, x)) => x.clone(),
                        None => match init {
                            BufferInit::Fill(v) => backend.full_like(p, v)?,
                            BufferInit::Param => p.clone(),
                        },
                    },
                );
            }
            let refs: Vec<&X> = inputs.iter().collect();
            let out = t.program.run(backend, p, g, &refs)?;
            if let Some(x) = out.param {
                news.push((t.param, x));
            }
            let after: Vec<(&'static str, X)> = t
                .buffers
                .iter()
                .zip(out.buffers)
                .zip(inputs)
                .map(|((&(name, _), new), old)| (name, new.unwrap_or(old)))
                .collect();
            updates.push((t.param, after));
        }
        for (param, after) in updates {
            let bufs = &mut self.buffers[param];
            for (name, x) in after {
                match bufs.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = x,
                    None => bufs.push((name.to_string(), x)),
                }
            }
        }
        Ok(news)
    }
}
