//! The driver shared by every element-wise optimiser: parameter groups, state
//! buffers, the fused parallel pass, non-finite checks, sparse steps and
//! save/restore. A [`Rule`] supplies only its arithmetic.

use super::{NonFinite, Optimizer, Rule, StepOutcome, MAX_BUFFERS};
use crate::error::{Error, Result};
use crate::hyper::{HyperMap, HyperValue};
use crate::state::{GroupRecord, SavedState, StateManifest, TensorRecord, STATE_FORMAT};
use crate::Real;

/// A parameter group: a rule (hyper-parameters) and the tensors it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct Group<R> {
    /// The group's hyper-parameters.
    pub rule: R,
    /// Indices of the parameter tensors in this group.
    pub params: Vec<usize>,
}

/// Per-tensor state: a step counter, scalars and element-wise buffers. Buffers
/// are allocated on the tensor's first step (as torch does) and whenever a
/// hyper-parameter change needs a new one (e.g. turning on `amsgrad`).
#[derive(Clone, Debug, Default, PartialEq)]
struct TensorState<T> {
    step: u64,
    scalars: Vec<f64>,
    buffers: Vec<(String, Vec<T>)>,
}

/// An optimiser that applies an element-wise [`Rule`] to groups of parameter
/// tensors. Construct it with [`Rule::build`], [`Elementwise::with_groups`] or
/// by name with [`super::build`].
#[derive(Clone, Debug)]
pub struct Elementwise<R: Rule, T: Real> {
    sizes: Vec<usize>,
    total: usize,
    groups: Vec<Group<R>>,
    group_of: Vec<Option<usize>>,
    states: Vec<TensorState<T>>,
    policy: NonFinite,
    /// A rule was handed out by [`Elementwise::rule_mut`] and may have
    /// changed: validate every group before the next step changes anything.
    unvalidated: bool,
}

/// The largest step count a state may hold: beyond 2⁵³ the count is no
/// longer exact in the `f64` bias corrections, and near `u64::MAX` the
/// counter would overflow. No run gets there; a loaded state that claims it
/// is damaged.
pub const MAX_STEP: u64 = 1 << 53;

/// A step's constants and the tensor's state buffers in the rule's order
/// (the first `.2` of them are in use).
type Prepared<'a, R, T> = (<R as Rule>::Consts<T>, [&'a mut [T]; MAX_BUFFERS], usize);

/// Tensors shorter than this are updated on the calling thread; longer ones
/// are split in halves down to about this size and run on rayon's pool.
const PARALLEL_LEAF: usize = 1 << 15;

impl<R: Rule, T: Real> Elementwise<R, T> {
    /// One group holding every tensor.
    pub fn new(rule: R, sizes: &[usize]) -> Result<Self> {
        Self::with_groups(
            vec![Group {
                rule,
                params: (0..sizes.len()).collect(),
            }],
            sizes,
        )
    }

    /// Several groups, each with its own hyper-parameters. A tensor may belong
    /// to at most one group; tensors in no group are left untouched by steps.
    pub fn with_groups(groups: Vec<Group<R>>, sizes: &[usize]) -> Result<Self> {
        let groups = groups
            .into_iter()
            .map(|g| {
                Ok(Group {
                    rule: g.rule.validated()?,
                    params: g.params,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let group_of = assign_groups(groups.iter().map(|g| g.params.as_slice()), sizes.len())?;
        Ok(Elementwise {
            sizes: sizes.to_vec(),
            total: sizes.iter().sum(),
            groups,
            group_of,
            states: vec![TensorState::default(); sizes.len()],
            policy: NonFinite::default(),
            unvalidated: false,
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

    /// Everything that can make a step fail before it changes anything:
    /// hyper-parameters changed through [`Elementwise::rule_mut`], and step
    /// counters at their limit. Checked for all tensors first, so a step is
    /// taken whole or not at all.
    fn ready(&mut self, tensors: impl Iterator<Item = usize>) -> Result<()> {
        if self.unvalidated {
            for g in &self.groups {
                g.rule.validate()?;
                g.rule.check()?;
            }
            self.unvalidated = false;
        }
        for i in tensors {
            if self.group_of[i].is_some() && self.states[i].step >= MAX_STEP {
                return Err(Error::State(format!(
                    "{}: tensor {i} has taken {} steps, the most a state may hold is 2^53",
                    R::OWNER,
                    self.states[i].step
                )));
            }
        }
        Ok(())
    }

    /// The state buffer `name` of tensor `param`, if it has been allocated.
    pub fn buffer(&self, param: usize, name: &str) -> Option<&[T]> {
        self.states
            .get(param)?
            .buffers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// First non-finite gradient element of any optimised tensor, per the policy.
    fn screen<'a>(&self, grads: impl Iterator<Item = &'a [T]>) -> Result<Option<StepOutcome>> {
        if self.policy == NonFinite::Unchecked {
            return Ok(None);
        }
        for (param, g) in grads.enumerate() {
            if self.group_of[param].is_none() {
                continue;
            }
            if let Some(index) = first_non_finite(g) {
                return self.non_finite(param, index, g[index]).map(Some);
            }
        }
        Ok(None)
    }

    fn non_finite(&self, param: usize, index: usize, value: T) -> Result<StepOutcome> {
        match self.policy {
            NonFinite::Skip => Ok(StepOutcome::Skipped { param, index }),
            _ => Err(Error::NonFiniteGradient {
                param,
                index,
                value: value.to_f64(),
            }),
        }
    }

    /// Advances tensor `i`'s counter, makes sure its state exists, and returns
    /// the step's constants with the state buffers in the rule's order.
    /// Infallible: [`Elementwise::ready`] has checked what could fail.
    fn begin(&mut self, i: usize) -> Option<Prepared<'_, R, T>> {
        let gi = self.group_of[i]?;
        let rule = &self.groups[gi].rule;
        let st = &mut self.states[i];
        let names = rule.buffers();
        let mut fresh = false;
        for name in names {
            if !st.buffers.iter().any(|(n, _)| n == name) {
                let init = T::from_f64(rule.buffer_init(name));
                st.buffers
                    .push((name.to_string(), vec![init; self.sizes[i]]));
                fresh = true;
            }
        }
        let scalars = rule.scalars();
        if st.scalars.len() != scalars.len() {
            st.scalars = scalars.iter().map(|(_, v)| *v).collect();
        }
        st.step += 1;
        let consts = rule.prepare::<T>(st.step, fresh || st.step == 1, &mut st.scalars);
        let mut bufs: [&mut [T]; MAX_BUFFERS] = Default::default();
        for (name, buf) in st.buffers.iter_mut() {
            if let Some(k) = names.iter().position(|n| n == name) {
                bufs[k] = buf.as_mut_slice();
            }
        }
        Some((consts, bufs, names.len()))
    }

    fn step_tensor(&mut self, i: usize, p: &mut [T], g: &[T]) {
        if let Some((consts, bufs, n)) = self.begin(i) {
            fused::<R, T>(&consts, p, g, bufs, n);
        }
    }

    fn shape_error(&self, what: &str, got: usize, expected: usize) -> Error {
        Error::Shape(format!(
            "{}: {what} has {got} elements, expected {expected}",
            R::OWNER
        ))
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

/// Whether a block holds a NaN or an infinity. `x − x` is 0 for finite `x`
/// and NaN otherwise; summing it in 16 lanes lets the compiler vectorise the
/// scan, so it runs at memory speed.
#[inline(always)]
fn block_has_non_finite<T: Real>(block: &[T]) -> bool {
    let mut acc = [T::zero(); 16];
    let mut lanes = block.chunks_exact(16);
    for c in &mut lanes {
        for k in 0..16 {
            let x = c[k];
            #[allow(clippy::eq_op)]
            let zero_if_finite = x - x;
            acc[k] = acc[k] + zero_if_finite;
        }
    }
    lanes.remainder().iter().any(|x| !x.is_finite()) || acc.iter().any(|a| *a != T::zero())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block_has_non_finite_avx512<T: Real>(block: &[T]) -> bool {
    block_has_non_finite(block)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_has_non_finite_avx2<T: Real>(block: &[T]) -> bool {
    block_has_non_finite(block)
}

/// [`block_has_non_finite`] compiled for the widest vector unit available.
fn scan<T: Real>(block: &[T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { block_has_non_finite_avx512(block) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { block_has_non_finite_avx2(block) };
        }
    }
    block_has_non_finite(block)
}

/// Index of the first NaN or infinity. Large gradients are scanned on all of
/// rayon's threads (the check must keep up with the parallel update); only
/// when something is found is the first position looked for, serially.
fn first_non_finite<T: Real>(g: &[T]) -> Option<usize> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 14;
    let found = if g.len() >= 2 * PARALLEL_LEAF && rayon::current_num_threads() > 1 {
        g.par_chunks(BLOCK).any(scan)
    } else {
        g.chunks(BLOCK).any(scan)
    };
    if found {
        g.iter().position(|x| !x.is_finite())
    } else {
        None
    }
}

/// Runs the rule over a tensor in one pass, splitting it across rayon's threads
/// when it is large. Splitting is by halves at 64-element boundaries, so every
/// leaf is a long contiguous run for the vectorised loop.
fn fused<R: Rule, T: Real>(
    c: &R::Consts<T>,
    p: &mut [T],
    g: &[T],
    bufs: [&mut [T]; MAX_BUFFERS],
    n: usize,
) {
    let mut bufs = bufs;
    if p.len() < 2 * PARALLEL_LEAF || rayon::current_num_threads() == 1 {
        leaf::<R, T>(c, p, g, &mut bufs[..n]);
        return;
    }
    let mid = (p.len() / 2) & !63;
    let (p1, p2) = p.split_at_mut(mid);
    let (g1, g2) = g.split_at(mid);
    let mut b1: [&mut [T]; MAX_BUFFERS] = Default::default();
    let mut b2: [&mut [T]; MAX_BUFFERS] = Default::default();
    for (k, b) in bufs.iter_mut().take(n).enumerate() {
        let (x, y) = std::mem::take(b).split_at_mut(mid);
        b1[k] = x;
        b2[k] = y;
    }
    rayon::join(
        || fused::<R, T>(c, p1, g1, b1, n),
        || fused::<R, T>(c, p2, g2, b2, n),
    );
}

/// Runs the rule's loop compiled for the widest vector unit this CPU has.
/// The arithmetic is the same IEEE operations in every version (no fused
/// multiply-add is introduced without fast-math), so results are bit-identical
/// across machines; only the speed differs.
#[inline]
fn leaf<R: Rule, T: Real>(c: &R::Consts<T>, p: &mut [T], g: &[T], b: &mut [&mut [T]]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { leaf_avx512::<R, T>(c, p, g, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { leaf_avx2::<R, T>(c, p, g, b) };
        }
    }
    R::update(c, p, g, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn leaf_avx2<R: Rule, T: Real>(c: &R::Consts<T>, p: &mut [T], g: &[T], b: &mut [&mut [T]]) {
    R::update(c, p, g, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn leaf_avx512<R: Rule, T: Real>(
    c: &R::Consts<T>,
    p: &mut [T],
    g: &[T],
    b: &mut [&mut [T]],
) {
    R::update(c, p, g, b)
}

impl<R: Rule, T: Real> Optimizer<T> for Elementwise<R, T> {
    fn name(&self) -> &'static str {
        R::OWNER
    }

    fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<StepOutcome> {
        let n = self.sizes.len();
        if params.len() != n || grads.len() != n {
            return Err(Error::Shape(format!(
                "{}: got {} parameter and {} gradient tensors, expected {n}",
                R::OWNER,
                params.len(),
                grads.len()
            )));
        }
        for i in 0..n {
            if params[i].len() != self.sizes[i] {
                return Err(self.shape_error(
                    &format!("parameter {i}"),
                    params[i].len(),
                    self.sizes[i],
                ));
            }
            if grads[i].len() != self.sizes[i] {
                return Err(self.shape_error(
                    &format!("gradient {i}"),
                    grads[i].len(),
                    self.sizes[i],
                ));
            }
        }
        if let Some(outcome) = self.screen(grads.iter().copied())? {
            return Ok(outcome);
        }
        self.ready(0..n)?;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            self.step_tensor(i, p, g);
        }
        Ok(StepOutcome::Stepped)
    }

    fn step_flat(&mut self, params: &mut [T], grads: &[T]) -> Result<StepOutcome> {
        if params.len() != self.total {
            return Err(self.shape_error("the flat parameter buffer", params.len(), self.total));
        }
        if grads.len() != self.total {
            return Err(self.shape_error("the flat gradient buffer", grads.len(), self.total));
        }
        let mut offset = 0;
        let tensors = self.sizes.iter().map(|&s| {
            let g = &grads[offset..offset + s];
            offset += s;
            g
        });
        if let Some(outcome) = self.screen(tensors)? {
            return Ok(outcome);
        }
        self.ready(0..self.sizes.len())?;
        let (mut rest_p, mut rest_g) = (params, grads);
        for i in 0..self.sizes.len() {
            let (p, tail_p) = rest_p.split_at_mut(self.sizes[i]);
            let (g, tail_g) = rest_g.split_at(self.sizes[i]);
            self.step_tensor(i, p, g);
            (rest_p, rest_g) = (tail_p, tail_g);
        }
        Ok(StepOutcome::Stepped)
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
        if p.len() != size {
            return Err(self.shape_error(&format!("parameter {param}"), p.len(), size));
        }
        if row_len == 0 || size % row_len != 0 {
            return Err(Error::Shape(format!(
                "{}: parameter {param} of {size} elements cannot be viewed as rows of {row_len}",
                R::OWNER
            )));
        }
        if values.len() != rows.len() * row_len {
            return Err(self.shape_error(
                "the sparse gradient",
                values.len(),
                rows.len() * row_len,
            ));
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
        if self.policy != NonFinite::Unchecked && self.group_of[param].is_some() {
            if let Some(j) = first_non_finite(values) {
                let index = rows[j / row_len] as usize * row_len + j % row_len;
                return self.non_finite(param, index, values[j]);
            }
        }
        self.ready(std::iter::once(param))?;
        if let Some((consts, mut bufs, n)) = self.begin(param) {
            for (&r, g) in rows.iter().zip(values.chunks_exact(row_len)) {
                let range = r as usize * row_len..(r as usize + 1) * row_len;
                let mut row_bufs: [&mut [T]; MAX_BUFFERS] = Default::default();
                for (k, b) in bufs.iter_mut().take(n).enumerate() {
                    row_bufs[k] = &mut b[range.clone()];
                }
                leaf::<R, T>(&consts, &mut p[range], g, &mut row_bufs[..n]);
            }
        }
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
        self.groups[group].rule = rule.validated()?;
        Ok(())
    }

    fn set_non_finite(&mut self, policy: NonFinite) {
        self.policy = policy;
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

    fn save_state(&self) -> Result<SavedState> {
        let mut buffers = Vec::new();
        let mut tensors = Vec::with_capacity(self.states.len());
        for (i, st) in self.states.iter().enumerate() {
            let scalar_names = self.group_of[i].map_or(&[][..], |g| self.groups[g].rule.scalars());
            let mut names = Vec::new();
            for (name, buf) in &st.buffers {
                let mut bytes = Vec::new();
                T::extend_le_bytes(buf, &mut bytes);
                buffers.push((format!("{i}.{name}"), bytes));
                names.push(name.clone());
            }
            tensors.push(TensorRecord {
                step: st.step,
                scalars: scalar_names
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .zip(st.scalars.iter().copied())
                    .collect(),
                buffers: names,
            });
        }
        Ok(SavedState {
            manifest: StateManifest {
                format: STATE_FORMAT.to_string(),
                optimizer: R::OWNER.to_string(),
                dtype: T::NAME.to_string(),
                sizes: self.sizes.clone(),
                groups: self
                    .groups
                    .iter()
                    .map(|g| GroupRecord {
                        params: g.params.clone(),
                        hyper: g.rule.to_map(),
                    })
                    .collect(),
                tensors,
            },
            buffers,
        })
    }

    fn load_state(&mut self, saved: &SavedState) -> Result<()> {
        let m = &saved.manifest;
        m.expect(R::OWNER, T::NAME, &self.sizes)?;
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
        let group_of = assign_groups(groups.iter().map(|g| g.params.as_slice()), self.sizes.len())?;
        if m.tensors.len() != self.sizes.len() {
            return Err(Error::State(format!(
                "{} tensor records for {} tensors",
                m.tensors.len(),
                self.sizes.len()
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
            for name in &rec.buffers {
                let bytes = saved.buffer(&format!("{i}.{name}"))?;
                if bytes.len() != self.sizes[i] * T::BYTES {
                    return Err(Error::State(format!(
                        "buffer {i}.{name} has {} bytes, expected {}",
                        bytes.len(),
                        self.sizes[i] * T::BYTES
                    )));
                }
                let mut buf = vec![T::zero(); self.sizes[i]];
                T::read_le_bytes(bytes, &mut buf);
                buffers.push((name.clone(), buf));
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
        self.unvalidated = false;
        Ok(())
    }
}
