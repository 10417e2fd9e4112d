//! The one driver every rule runs in: parameter groups, per-tensor state
//! (buffers of any shape), validation before anything changes, non-finite
//! checks (through the [`Optimizer`] trait), lazy row-sparse steps and
//! save/restore. A [`Rule`] supplies only its arithmetic.

use super::device::{BufferInit, DeviceTensor, HostBuffer};
use super::passes::first_non_finite;
use super::{
    non_finite_outcome, Flat, NonFinite, Optimizer, Param, Rule, StepOutcome, TensorStep, Tensors,
    MAX_BUFFERS,
};
use crate::error::{Error, Result};
use crate::hyper::{HyperMap, HyperValue};
use crate::state::{BufferRecord, GroupRecord, SavedState, StateManifest, TensorRecord};
use crate::Real;

/// A parameter group: a rule (hyper-parameters) and the tensors it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct Group<R> {
    /// The group's hyper-parameters.
    pub rule: R,
    /// Indices of the parameter tensors in this group.
    pub params: Vec<usize>,
}

/// A state buffer: its name, shape and values.
#[derive(Clone, Debug, PartialEq)]
struct Buffer<T> {
    name: String,
    shape: Vec<usize>,
    data: Vec<T>,
}

/// Per-tensor state: a step counter, scalars and buffers. Buffers are
/// allocated on the tensor's first step (as torch does) and whenever a
/// hyper-parameter change needs a new one (e.g. turning on `amsgrad`).
#[derive(Clone, Debug, Default, PartialEq)]
struct TensorState<T> {
    step: u64,
    scalars: Vec<f64>,
    buffers: Vec<Buffer<T>>,
}

/// The largest step count a state may hold: beyond 2⁵³ the count is no
/// longer exact in the `f64` bias corrections, and near `u64::MAX` the
/// counter would overflow. No run gets there; a loaded state that claims it
/// is damaged.
pub const MAX_STEP: u64 = 1 << 53;

/// An optimiser that applies a [`Rule`] to groups of parameter tensors.
/// Construct it with [`Rule::build`], [`Driver::with_groups`] or by name
/// with [`super::build`].
#[derive(Clone, Debug)]
pub struct Driver<R: Rule, T: Real> {
    params: Vec<Param>,
    sizes: Vec<usize>,
    starts: Vec<usize>,
    groups: Vec<Group<R>>,
    group_of: Vec<Option<usize>>,
    states: Vec<TensorState<T>>,
    policy: NonFinite,
    /// A rule was handed out by [`Driver::rule_mut`] and may have changed:
    /// validate every group before the next step changes anything.
    unvalidated: bool,
    /// Temporary memory of tensor-level rules, kept between steps.
    scratch: Vec<T>,
    /// Each group's scalars ([`Rule::group_scalars`]).
    group_states: Vec<Vec<f64>>,
}

impl<R: Rule, T: Real> Driver<R, T> {
    /// One group holding every tensor.
    pub fn new(rule: R, params: Vec<Param>) -> Result<Self> {
        let all = (0..params.len()).collect();
        Self::with_groups(vec![Group { rule, params: all }], params)
    }

    /// Several groups, each with its own hyper-parameters. A tensor may belong
    /// to at most one group; tensors in no group are left untouched by steps.
    pub fn with_groups(groups: Vec<Group<R>>, params: Vec<Param>) -> Result<Self> {
        let groups = groups
            .into_iter()
            .map(|g| {
                Ok(Group {
                    rule: g.rule.validated()?,
                    params: g.params,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let group_of = assign_groups(groups.iter().map(|g| g.params.as_slice()), params.len())?;
        check_shapes(&groups, &params)?;
        R::check_groups(&groups)?;
        let sizes: Vec<usize> = params.iter().map(Param::len).collect();
        Ok(Driver {
            group_states: groups.iter().map(|g| g.rule.group_init()).collect(),
            starts: super::starts(&sizes),
            sizes,
            states: vec![TensorState::default(); params.len()],
            params,
            groups,
            group_of,
            policy: NonFinite::default(),
            unvalidated: false,
            scratch: Vec::new(),
        })
    }

    /// The groups.
    pub fn groups(&self) -> &[Group<R>] {
        &self.groups
    }

    /// A group's rule, to change hyper-parameters in typed form. Every group
    /// is validated again at the start of the next step, before anything
    /// changes; an invalid change makes that step (and every later one) an
    /// error until it is corrected.
    ///
    /// # Panics
    /// If `group` is out of range, as every accessor by group index.
    pub fn rule_mut(&mut self, group: usize) -> &mut R {
        let group = self.checked_group(group);
        self.unvalidated = true;
        &mut self.groups[group].rule
    }

    /// The state buffer `name` of tensor `param`, if it has been allocated.
    pub fn buffer(&self, param: usize, name: &str) -> Option<&[T]> {
        self.states
            .get(param)?
            .buffers
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.data.as_slice())
    }

    /// `group`, or a panic that names the optimiser and the number of groups.
    fn checked_group(&self, group: usize) -> usize {
        assert!(
            group < self.groups.len(),
            "{}: no parameter group {group} (there are {})",
            R::OWNER,
            self.groups.len()
        );
        group
    }

    /// Checks the step counter of tensor `i`.
    fn check_counter(&self, i: usize) -> Result<()> {
        if self.group_of[i].is_some() && self.states[i].step >= MAX_STEP {
            return Err(Error::State(format!(
                "{}: tensor {i} has taken {} steps, the most a state may hold is 2^53",
                R::OWNER,
                self.states[i].step
            )));
        }
        Ok(())
    }

    /// Validates the groups if a rule was handed out since the last step.
    fn revalidate(&mut self) -> Result<()> {
        if self.unvalidated {
            for g in &self.groups {
                g.rule.validate()?;
                g.rule.check()?;
            }
            R::check_groups(&self.groups)?;
            self.unvalidated = false;
        }
        Ok(())
    }
}

/// Maps each tensor to its group, rejecting out-of-range and repeated indices.
fn assign_groups<'a>(
    groups: impl Iterator<Item = &'a [usize]>,
    n: usize,
) -> Result<Vec<Option<usize>>> {
    let mut group_of = vec![None; n];
    for (gi, params) in groups.enumerate() {
        for &p in params {
            match group_of.get_mut(p) {
                None => {
                    return Err(Error::Shape(format!(
                        "group {gi} names parameter {p}, but there are {n}"
                    )))
                }
                Some(Some(other)) => {
                    return Err(Error::Shape(format!(
                        "parameter {p} is in both group {other} and group {gi}"
                    )))
                }
                Some(slot) => *slot = Some(gi),
            }
        }
    }
    Ok(group_of)
}

/// Every tensor's shape must suit its group's rule.
fn check_shapes<R: Rule>(groups: &[Group<R>], params: &[Param]) -> Result<()> {
    for g in groups {
        for &i in &g.params {
            if let Err(why) = g.rule.accepts(&params[i]) {
                return Err(Error::Shape(format!(
                    "{}: parameter {i} has shape {:?} ({}), but {} {why}",
                    R::OWNER,
                    params[i].shape,
                    params[i].role,
                    R::OWNER
                )));
            }
        }
    }
    Ok(())
}

/// Advances tensor `i`'s counter, makes sure its state exists, and runs the
/// rule on it. Infallible: [`Optimizer::ready`] has checked what could fail.
/// A free function over the driver's parts, so the tensors can borrow from
/// the driver's own layout.
#[allow(clippy::too_many_arguments)]
fn run_tensor<R: Rule, T: Real>(
    rule: &R,
    group: &[f64],
    param: &Param,
    st: &mut TensorState<T>,
    scratch: &mut Vec<T>,
    p: &mut [T],
    g: &[T],
) {
    let fresh = ensure_state(rule, param, st, Some(p));
    st.step += 1;
    let consts = rule.prepare::<T>(st.step, fresh || st.step == 1, &mut st.scalars, group);
    let (bufs, n) = ordered_buffers(rule, &param.shape, st);
    R::step_tensor(
        &consts,
        TensorStep {
            param: p,
            grad: g,
            info: param,
            buffers: bufs,
            n_buffers: n,
            scratch,
        },
    );
}

/// Creates the buffers and scalars the rule needs that the state lacks;
/// returns whether a buffer was created. With `values` `None` the buffers
/// live on a device ([`Optimizer::device_step`]): only their names and
/// shapes are kept here.
fn ensure_state<R: Rule, T: Real>(
    rule: &R,
    param: &Param,
    st: &mut TensorState<T>,
    values: Option<&[T]>,
) -> bool {
    let mut fresh = false;
    for name in rule.buffers(&param.shape) {
        if !st.buffers.iter().any(|b| b.name == *name) {
            let shape = rule.buffer_shape(name, param);
            let data = match values {
                Some(values) => {
                    let len = shape.iter().product();
                    let mut data = vec![T::from_f64(rule.buffer_init(name)); len];
                    rule.init_buffer(name, values, &mut data);
                    data
                }
                None => Vec::new(),
            };
            st.buffers.push(Buffer {
                name: name.to_string(),
                shape,
                data,
            });
            fresh = true;
        }
    }
    let scalars = rule.scalars();
    if st.scalars.len() != scalars.len() {
        st.scalars = scalars.iter().map(|(_, v)| *v).collect();
    }
    fresh
}

/// The state's buffers in the rule's order.
fn ordered_buffers<'a, R: Rule, T>(
    rule: &R,
    shape: &[usize],
    st: &'a mut TensorState<T>,
) -> ([&'a mut [T]; MAX_BUFFERS], usize) {
    let names = rule.buffers(shape);
    let mut bufs: [&mut [T]; MAX_BUFFERS] = Default::default();
    for b in st.buffers.iter_mut() {
        if let Some(k) = names.iter().position(|n| *n == b.name) {
            bufs[k] = b.data.as_mut_slice();
        }
    }
    (bufs, names.len())
}

impl<R: Rule, T: Real> Driver<R, T> {
    fn apply_to(&mut self, tensors: &mut dyn Tensors<T>) {
        let Driver {
            params,
            groups,
            group_of,
            states,
            scratch,
            group_states,
            ..
        } = self;
        for (g, gs) in groups.iter().zip(group_states.iter_mut()) {
            g.rule.begin_group(gs);
        }
        if R::GATHERS {
            // The pass every update waits for (Prodigy's sums over all tensors).
            let mut sums = [0.0f64; 2];
            for (i, st) in states.iter_mut().enumerate() {
                if let Some(gi) = group_of[i] {
                    let (p, g) = tensors.get(i);
                    let rule = &groups[gi].rule;
                    ensure_state(rule, &params[i], st, Some(p));
                    let (bufs, n) = ordered_buffers(rule, &params[i].shape, st);
                    let part = rule.gather(
                        &group_states[gi],
                        TensorStep {
                            param: p,
                            grad: g,
                            info: &params[i],
                            buffers: bufs,
                            n_buffers: n,
                            scratch,
                        },
                    );
                    sums[0] += part[0];
                    sums[1] += part[1];
                }
            }
            if !R::settle(groups, group_states, sums) {
                return;
            }
        }
        for (i, st) in states.iter_mut().enumerate() {
            if let Some(gi) = group_of[i] {
                let (p, g) = tensors.get(i);
                run_tensor(
                    &groups[gi].rule,
                    &group_states[gi],
                    &params[i],
                    st,
                    scratch,
                    p,
                    g,
                );
            }
        }
        for (g, gs) in groups.iter().zip(group_states.iter_mut()) {
            g.rule.end_group(gs);
        }
    }
}

impl<R: Rule, T: Real> Optimizer<T> for Driver<R, T> {
    fn name(&self) -> &'static str {
        R::OWNER
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    fn trains(&self, param: usize) -> bool {
        self.group_of.get(param).is_some_and(Option::is_some)
    }

    fn assignment(&self, param: usize) -> Option<(&'static str, usize)> {
        self.group_of
            .get(param)
            .copied()
            .flatten()
            .map(|g| (R::OWNER, g))
    }

    fn non_finite(&self) -> NonFinite {
        self.policy
    }

    fn set_non_finite(&mut self, policy: NonFinite) {
        self.policy = policy;
    }

    fn ready(&mut self) -> Result<()> {
        self.revalidate()?;
        (0..self.params.len()).try_for_each(|i| self.check_counter(i))
    }

    fn apply_step(&mut self, tensors: &mut dyn Tensors<T>) {
        self.apply_to(tensors);
    }

    fn apply_flat(&mut self, params: &mut [T], grads: &[T]) {
        let starts = std::mem::take(&mut self.starts);
        self.apply_to(&mut Flat {
            params,
            grads,
            starts: &starts,
        });
        self.starts = starts;
    }

    fn step_sparse(
        &mut self,
        param: usize,
        p: &mut [T],
        rows: &[u32],
        row_len: usize,
        values: &[T],
    ) -> Result<StepOutcome> {
        let Some(&size) = self.sizes.get(param) else {
            return Err(Error::Shape(format!(
                "{}: no parameter {param} (there are {})",
                R::OWNER,
                self.sizes.len()
            )));
        };
        if !R::ELEMENTWISE {
            return Err(Error::Unsupported(format!(
                "{} needs the whole tensor at every step; lazy row-sparse steps are for element-wise rules",
                R::OWNER
            )));
        }
        if p.len() != size {
            return Err(Error::Shape(format!(
                "{}: parameter {param} has {} elements, expected {size}",
                R::OWNER,
                p.len()
            )));
        }
        if row_len == 0 || size % row_len != 0 {
            return Err(Error::Shape(format!(
                "{}: parameter {param} of {size} elements cannot be viewed as rows of {row_len}",
                R::OWNER
            )));
        }
        if values.len() != rows.len() * row_len {
            return Err(Error::Shape(format!(
                "{}: the sparse gradient has {} elements, expected {}",
                R::OWNER,
                values.len(),
                rows.len() * row_len
            )));
        }
        let n_rows = size / row_len;
        if let Some(w) = rows.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::Shape(format!(
                "{}: sparse rows must be strictly increasing, found {} then {}",
                R::OWNER,
                w[0],
                w[1]
            )));
        }
        if let Some(&last) = rows.last() {
            if last as usize >= n_rows {
                return Err(Error::Shape(format!(
                    "{}: sparse row {last} out of range (rows: {n_rows})",
                    R::OWNER
                )));
            }
        }
        let Some(gi) = self.group_of[param] else {
            return Ok(StepOutcome::Stepped);
        };
        if self.policy != NonFinite::Unchecked {
            if let Some(j) = first_non_finite(values) {
                let index = rows[j / row_len] as usize * row_len + j % row_len;
                return non_finite_outcome(self.policy, param, index, values[j].to_f64());
            }
        }
        self.revalidate()?;
        self.check_counter(param)?;
        if R::GATHERS || !self.group_states[gi].is_empty() {
            return Err(Error::Unsupported(format!(
                "{} keeps state across a whole group; lazy row-sparse steps would skip its other tensors",
                R::OWNER
            )));
        }
        let rule = &self.groups[gi].rule;
        let st = &mut self.states[param];
        let fresh = ensure_state(rule, &self.params[param], st, Some(p));
        st.step += 1;
        let consts = rule.prepare::<T>(st.step, fresh || st.step == 1, &mut st.scalars, &[]);
        let (bufs, n) = ordered_buffers(rule, &self.params[param].shape, st);
        R::apply_rows(&consts, p, rows, row_len, values, bufs, n);
        Ok(StepOutcome::Stepped)
    }

    fn num_groups(&self) -> usize {
        self.groups.len()
    }

    fn group_params(&self, group: usize) -> &[usize] {
        &self.groups[self.checked_group(group)].params
    }

    fn lr(&self, group: usize) -> f64 {
        match self.groups[self.checked_group(group)].rule.get("lr") {
            Some(HyperValue::Number(lr)) => lr,
            _ => unreachable!("every rule has a numeric lr"),
        }
    }

    fn hyper(&self, group: usize) -> HyperMap {
        self.groups[self.checked_group(group)].rule.to_map()
    }

    fn set_hyper(&mut self, group: usize, name: &str, value: &HyperValue) -> Result<()> {
        let g = &self.groups[self.checked_group(group)];
        let mut rule = g.rule.clone();
        rule.set(name, value)?;
        let rule = rule.validated()?;
        for &i in &g.params {
            if let Err(why) = rule.accepts(&self.params[i]) {
                return Err(Error::Shape(format!(
                    "{}: with {name} = {value}, parameter {i} of shape {:?} no longer fits: {} {why}",
                    R::OWNER,
                    self.params[i].shape,
                    R::OWNER
                )));
            }
        }
        let mut candidate = self.groups.clone();
        candidate[group].rule = rule;
        R::check_groups(&candidate)?;
        self.groups = candidate;
        Ok(())
    }

    fn group_state(&self, group: usize) -> Vec<(&'static str, f64)> {
        let g = self.checked_group(group);
        self.groups[g]
            .rule
            .group_scalars()
            .iter()
            .copied()
            .zip(self.group_states[g].iter().copied())
            .collect()
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let Some(name) = R::COUNTER else {
            return Vec::new();
        };
        let total: f64 = self
            .states
            .iter()
            .flat_map(|st| st.buffers.iter().filter(|b| b.name == name))
            .filter_map(|b| b.data.first())
            .map(|&x| Real::to_f64(x))
            .sum();
        vec![(name, total as u64)]
    }

    fn steps(&self, param: usize) -> u64 {
        assert!(
            param < self.states.len(),
            "{}: no parameter tensor {param} (there are {})",
            R::OWNER,
            self.states.len()
        );
        self.states[param].step
    }

    fn eval_params(&self, params: &[&[T]], out: &mut [&mut [T]]) -> Result<bool> {
        let n = self.sizes.len();
        if params.len() != n || out.len() != n {
            return Err(Error::Shape(format!(
                "{}: got {} parameter and {} output tensors, expected {n}",
                R::OWNER,
                params.len(),
                out.len()
            )));
        }
        for (i, &size) in self.sizes.iter().enumerate() {
            if params[i].len() != size || out[i].len() != size {
                return Err(Error::Shape(format!(
                    "{}: tensor {i} has {} elements (output {}), expected {size}",
                    R::OWNER,
                    params[i].len(),
                    out[i].len()
                )));
            }
        }
        let mut differs = false;
        for i in 0..n {
            let st = &self.states[i];
            let written = match self.group_of[i] {
                Some(gi) if st.step > 0 => {
                    let rule = &self.groups[gi].rule;
                    let names = rule.buffers(&self.params[i].shape);
                    let mut bufs: [&[T]; MAX_BUFFERS] = Default::default();
                    for b in &st.buffers {
                        if let Some(k) = names.iter().position(|n| *n == b.name) {
                            bufs[k] = &b.data;
                        }
                    }
                    rule.eval_point(
                        &self.group_states[gi],
                        params[i],
                        &bufs[..names.len()],
                        out[i],
                    )
                }
                _ => false,
            };
            if written {
                differs = true;
            } else {
                out[i].copy_from_slice(params[i]);
            }
        }
        Ok(differs)
    }

    fn device_form(&self) -> bool {
        R::ELEMENTWISE && !R::GATHERS
    }

    fn device_step(&mut self) -> Option<Vec<DeviceTensor>> {
        if !self.device_form() {
            return None;
        }
        let Driver {
            params,
            groups,
            group_of,
            states,
            group_states,
            ..
        } = self;
        for (g, gs) in groups.iter().zip(group_states.iter_mut()) {
            g.rule.begin_group(gs);
        }
        let mut out = Vec::new();
        for (i, st) in states.iter_mut().enumerate() {
            let Some(gi) = group_of[i] else { continue };
            let rule = &groups[gi].rule;
            let names = rule.buffers(&params[i].shape);
            let fresh = ensure_state::<R, T>(rule, &params[i], st, None);
            st.step += 1;
            let consts = rule.prepare::<T>(
                st.step,
                fresh || st.step == 1,
                &mut st.scalars,
                &group_states[gi],
            );
            let program = R::program::<T>(&consts, names.len())
                .expect("element-wise rules record their programs");
            let buffers = names
                .iter()
                .map(|&name| {
                    let init = if rule.buffer_copies_param(name) {
                        BufferInit::Param
                    } else {
                        BufferInit::Fill(rule.buffer_init(name))
                    };
                    (name, init)
                })
                .collect();
            out.push(DeviceTensor {
                param: i,
                program,
                buffers,
            });
        }
        for (g, gs) in groups.iter().zip(group_states.iter_mut()) {
            g.rule.end_group(gs);
        }
        Some(out)
    }

    fn tensor_counters(&self, param: usize) -> Option<(u64, Vec<f64>)> {
        let st = self.states.get(param)?;
        let group = self.group_of[param].map_or(&[][..], |g| &self.group_states[g][..]);
        self.device_form()
            .then(|| (st.step, st.scalars.iter().chain(group).copied().collect()))
    }

    fn set_tensor_counters(&mut self, param: usize, step: u64, scalars: &[f64]) -> Result<()> {
        let Some(gi) = self.group_of.get(param).copied().flatten() else {
            return Err(Error::State(format!("tensor {param} is not trained")));
        };
        if !self.device_form() || step > MAX_STEP {
            return Err(Error::State(format!(
                "tensor {param}: cannot restore {step} steps on {}",
                R::OWNER
            )));
        }
        let rule = &self.groups[gi].rule;
        let st = &mut self.states[param];
        // The buffers' records (their data stays on the device), so that
        // the next step does not take them for new.
        ensure_state::<R, T>(rule, &self.params[param], st, None);
        let group = &mut self.group_states[gi];
        let (own, shared) = (st.scalars.len(), group.len());
        if scalars.len() != own + shared {
            return Err(Error::State(format!(
                "tensor {param}: {} scalars, {} expects {}",
                scalars.len(),
                R::OWNER,
                own + shared
            )));
        }
        st.step = step;
        st.scalars.copy_from_slice(&scalars[..own]);
        group.copy_from_slice(&scalars[own..]);
        Ok(())
    }

    fn take_buffers(&mut self, param: usize) -> Vec<HostBuffer<T>> {
        self.states[param]
            .buffers
            .iter_mut()
            .map(|b| HostBuffer {
                name: b.name.clone(),
                shape: b.shape.clone(),
                data: std::mem::take(&mut b.data),
            })
            .collect()
    }

    fn put_buffers(&mut self, param: usize, buffers: Vec<HostBuffer<T>>) {
        let st = &mut self.states[param];
        st.buffers = buffers
            .into_iter()
            .map(|b| Buffer {
                name: b.name,
                shape: b.shape,
                data: b.data,
            })
            .collect();
    }

    fn save_state(&self) -> Result<SavedState> {
        let mut buffers = Vec::new();
        let mut tensors = Vec::with_capacity(self.states.len());
        for (i, st) in self.states.iter().enumerate() {
            let scalar_names = self.group_of[i].map_or(&[][..], |g| self.groups[g].rule.scalars());
            let mut records = Vec::new();
            for b in &st.buffers {
                let mut bytes = Vec::new();
                T::extend_le_bytes(&b.data, &mut bytes);
                buffers.push((format!("{i}.{}", b.name), bytes));
                records.push(BufferRecord {
                    name: b.name.clone(),
                    shape: b.shape.clone(),
                });
            }
            tensors.push(TensorRecord {
                step: st.step,
                scalars: scalar_names
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .zip(st.scalars.iter().copied())
                    .collect(),
                buffers: records,
            });
        }
        Ok(SavedState {
            manifest: StateManifest::new(
                R::OWNER,
                T::NAME,
                &self.params,
                self.groups
                    .iter()
                    .zip(&self.group_states)
                    .map(|(g, gs)| GroupRecord {
                        params: g.params.clone(),
                        hyper: g.rule.to_map(),
                        scalars: g
                            .rule
                            .group_scalars()
                            .iter()
                            .map(|n| n.to_string())
                            .zip(gs.iter().copied())
                            .collect(),
                    })
                    .collect(),
                tensors,
            ),
            buffers,
        })
    }

    fn load_state(&mut self, saved: &SavedState) -> Result<()> {
        let m = saved.manifest.expect(R::OWNER, T::NAME, &self.params)?;
        let groups = m
            .groups
            .iter()
            .map(|g| {
                let mut rule = R::default();
                rule.apply(&g.hyper)?;
                Ok(Group {
                    rule: rule.validated()?,
                    params: g.params.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let group_of = assign_groups(
            groups.iter().map(|g| g.params.as_slice()),
            self.params.len(),
        )?;
        check_shapes(&groups, &self.params)?;
        R::check_groups(&groups)?;
        let group_states = groups
            .iter()
            .zip(&m.groups)
            .enumerate()
            .map(|(gi, (g, rec))| {
                let init = g.rule.group_init();
                g.rule
                    .group_scalars()
                    .iter()
                    .zip(init)
                    .map(|(name, init)| match rec.scalars.get(*name) {
                        // Absent before the group's first step (and in format 1).
                        None => Ok(init),
                        Some(v) if v.is_finite() => Ok(*v),
                        Some(v) => Err(Error::State(format!(
                            "group {gi}: scalar `{name}` = {v}, expected a finite number"
                        ))),
                    })
                    .collect::<Result<Vec<f64>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        if m.tensors.len() != self.params.len() {
            return Err(Error::State(format!(
                "{} tensor records for {} tensors",
                m.tensors.len(),
                self.params.len()
            )));
        }
        let mut states = Vec::with_capacity(m.tensors.len());
        for (i, rec) in m.tensors.iter().enumerate() {
            if rec.step > MAX_STEP {
                return Err(Error::State(format!(
                    "tensor {i} claims {} steps; the most a state may hold is 2^53 = {MAX_STEP}",
                    rec.step
                )));
            }
            let mut buffers = Vec::with_capacity(rec.buffers.len());
            for b in &rec.buffers {
                let key = format!("{i}.{}", b.name);
                // The shape must be the one this rule gives such a tensor,
                // so a damaged or foreign state cannot misdirect `apply`.
                if let Some(gi) = group_of[i] {
                    let want = groups[gi].rule.buffer_shape(&b.name, &self.params[i]);
                    if b.shape != want {
                        return Err(Error::State(format!(
                            "buffer {key} has shape {:?}, expected {want:?}",
                            b.shape
                        )));
                    }
                }
                let len = b
                    .shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .filter(|&n| n.checked_mul(T::BYTES).is_some())
                    .ok_or_else(|| {
                        Error::State(format!(
                            "buffer {key} has an impossible shape {:?}",
                            b.shape
                        ))
                    })?;
                let bytes = saved.buffer(&key)?;
                if bytes.len() != len * T::BYTES {
                    return Err(Error::State(format!(
                        "buffer {key} has {} bytes, expected {}",
                        bytes.len(),
                        len * T::BYTES
                    )));
                }
                let mut data = vec![T::zero(); len];
                T::read_le_bytes(bytes, &mut data);
                buffers.push(Buffer {
                    name: b.name.clone(),
                    shape: b.shape.clone(),
                    data,
                });
            }
            let expected = group_of[i].map_or(&[][..], |g| groups[g].rule.scalars());
            let scalars = expected
                .iter()
                .map(|(n, _)| {
                    rec.scalars
                        .get(*n)
                        .copied()
                        .ok_or_else(|| Error::State(format!("tensor {i} lacks scalar state `{n}`")))
                })
                .collect::<Result<Vec<f64>>>();
            // A tensor that never stepped has no scalars yet.
            let scalars = if rec.step == 0 { Vec::new() } else { scalars? };
            states.push(TensorState {
                step: rec.step,
                scalars,
                buffers,
            });
        }
        self.groups = groups;
        self.group_of = group_of;
        self.states = states;
        self.group_states = group_states;
        self.unvalidated = false;
        Ok(())
    }
}
