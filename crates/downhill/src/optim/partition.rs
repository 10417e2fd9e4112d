//! Different rules for different parameters, chosen by role, as one
//! optimiser with one state (optax's `partition`, Keras' Muon routing).

use super::device::{DeviceTensor, HostBuffer};
use super::{Flat, NonFinite, Optimizer, OptimizerSpec, Param, Role, StepOutcome, Tensors};
use crate::error::{Error, Result};
use crate::hyper::{HyperMap, HyperValue};
use crate::state::{PartRecord, SavedState, StateManifest, STATE_FORMAT};
use crate::Real;

/// One part: the roles it takes, the tensors that fell to it (indices of
/// the partition) and the optimiser that updates them (its own indices are
/// positions in `members`).
#[derive(Debug)]
pub struct Part<T: Real> {
    /// The selector as written (`hidden`, `input+output`, `all`).
    pub selector: String,
    /// The spec of the part's optimiser.
    pub spec: OptimizerSpec,
    /// The partition's tensors this part updates, in order.
    pub members: Vec<usize>,
    opt: Box<dyn Optimizer<T>>,
}

/// An optimiser made of parts, each a whole optimiser over the tensors whose
/// role it takes. A step screens every gradient and validates every part
/// before any part changes anything; the state saves and loads as one.
#[derive(Debug)]
pub struct Partition<T: Real> {
    params: Vec<Param>,
    sizes: Vec<usize>,
    starts: Vec<usize>,
    parts: Vec<Part<T>>,
    /// For each tensor: its part and its index there.
    owner: Vec<(usize, usize)>,
    /// Global group `g` is group `g - group_base[k]` of part `k`.
    group_base: Vec<usize>,
    /// Each global group's tensors, as partition indices.
    group_params: Vec<Vec<usize>>,
    policy: NonFinite,
}

/// A part's view of the partition's tensors.
struct Remap<'a, 'b, T> {
    inner: &'a mut dyn Tensors<T>,
    members: &'b [usize],
}

impl<T> Tensors<T> for Remap<'_, '_, T> {
    fn get(&mut self, i: usize) -> (&mut [T], &[T]) {
        self.inner.get(self.members[i])
    }
}

impl<T: Real> Partition<T> {
    /// Builds each part of `spec` over the tensors whose role it takes.
    /// Every tensor must fall to exactly one part, and every part must get
    /// at least one tensor.
    pub fn build(spec: &OptimizerSpec, params: Vec<Param>) -> Result<Self> {
        let bad = |why: String| Error::Unsupported(format!("{spec}: {why}"));
        if spec.parts.is_empty() {
            return Err(bad("a partition needs at least one part".into()));
        }
        if !spec.hyper.is_empty() || !spec.groups.is_empty() {
            return Err(bad(
                "a partition has no hyper-parameters or groups of its own; set them in its parts"
                    .into(),
            ));
        }
        let mut owner: Vec<Option<usize>> = vec![None; params.len()];
        for (k, part) in spec.parts.iter().enumerate() {
            for (i, p) in params.iter().enumerate() {
                if part.roles.contains(&p.role) {
                    owner[i] = Some(k);
                }
            }
        }
        if let Some(rest) = spec.parts.iter().position(|p| p.rest) {
            for o in owner.iter_mut().filter(|o| o.is_none()) {
                *o = Some(rest);
            }
        }
        let orphans: Vec<String> = owner
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_none())
            .map(|(i, _)| format!("{i} ({}, {:?})", params[i].role, params[i].shape))
            .collect();
        if !orphans.is_empty() {
            return Err(bad(format!(
                "no part takes parameters {}; add their roles to a part, or a part `all=...`",
                orphans.join(", ")
            )));
        }
        let mut parts = Vec::with_capacity(spec.parts.len());
        for (k, part) in spec.parts.iter().enumerate() {
            let members: Vec<usize> = (0..params.len()).filter(|&i| owner[i] == Some(k)).collect();
            if members.is_empty() {
                let what = if part.rest {
                    "no parameter is left for `all`".to_string()
                } else {
                    format!(
                        "no parameter has role {} (this model's roles: {})",
                        part.selector(),
                        roles_present(&params)
                    )
                };
                return Err(bad(format!("{what}, so {} would train nothing", part.spec)));
            }
            if !part.spec.groups.is_empty() {
                return Err(bad("a part cannot have parameter groups".into()));
            }
            let local: Vec<Param> = members.iter().map(|&i| params[i].clone()).collect();
            let mut opt = super::registry::build_rule::<T>(&part.spec, &local)?;
            // The partition screens every gradient itself, once.
            opt.set_non_finite(NonFinite::Unchecked);
            parts.push(Part {
                selector: part.selector(),
                spec: part.spec.clone(),
                members,
                opt,
            });
        }
        let mut owner_local = vec![(0, 0); params.len()];
        let (mut group_base, mut group_params) = (Vec::new(), Vec::new());
        for (k, part) in parts.iter().enumerate() {
            for (local, &i) in part.members.iter().enumerate() {
                owner_local[i] = (k, local);
            }
            group_base.push(group_params.len());
            for g in 0..part.opt.num_groups() {
                group_params.push(
                    part.opt
                        .group_params(g)
                        .iter()
                        .map(|&l| part.members[l])
                        .collect(),
                );
            }
        }
        let sizes: Vec<usize> = params.iter().map(Param::len).collect();
        Ok(Partition {
            starts: super::starts(&sizes),
            sizes,
            params,
            parts,
            owner: owner_local,
            group_base,
            group_params,
            policy: NonFinite::default(),
        })
    }

    /// The parts.
    pub fn parts(&self) -> &[Part<T>] {
        &self.parts
    }

    /// Part and local group of global group `group` (panics when out of range).
    fn locate(&self, group: usize) -> (usize, usize) {
        assert!(
            group < self.group_params.len(),
            "partition: no parameter group {group} (there are {})",
            self.group_params.len()
        );
        let k = self
            .group_base
            .iter()
            .rposition(|&b| b <= group)
            .unwrap_or(0);
        (k, group - self.group_base[k])
    }
}

fn roles_present(params: &[Param]) -> String {
    let mut roles: Vec<Role> = params.iter().map(|p| p.role).collect();
    roles.sort();
    roles.dedup();
    roles
        .iter()
        .map(|r| r.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl<T: Real> Optimizer<T> for Partition<T> {
    fn name(&self) -> &'static str {
        "partition"
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    fn trains(&self, param: usize) -> bool {
        self.owner
            .get(param)
            .is_some_and(|&(k, l)| self.parts[k].opt.trains(l))
    }

    fn assignment(&self, param: usize) -> Option<(&'static str, usize)> {
        let &(k, l) = self.owner.get(param)?;
        let (name, g) = self.parts[k].opt.assignment(l)?;
        Some((name, self.group_base[k] + g))
    }

    fn non_finite(&self) -> NonFinite {
        self.policy
    }

    fn set_non_finite(&mut self, policy: NonFinite) {
        self.policy = policy;
    }

    fn ready(&mut self) -> Result<()> {
        self.parts.iter_mut().try_for_each(|p| p.opt.ready())
    }

    fn apply_step(&mut self, tensors: &mut dyn Tensors<T>) {
        for part in &mut self.parts {
            part.opt.apply_step(&mut Remap {
                inner: tensors,
                members: &part.members,
            });
        }
    }

    fn apply_flat(&mut self, params: &mut [T], grads: &[T]) {
        let Partition { parts, starts, .. } = self;
        let mut flat = Flat {
            params,
            grads,
            starts,
        };
        for part in parts.iter_mut() {
            part.opt.apply_step(&mut Remap {
                inner: &mut flat,
                members: &part.members,
            });
        }
    }

    fn step_sparse(
        &mut self,
        param: usize,
        p: &mut [T],
        rows: &[u32],
        row_len: usize,
        values: &[T],
    ) -> Result<StepOutcome> {
        let Some(&(k, l)) = self.owner.get(param) else {
            return Err(Error::Shape(format!(
                "partition: no parameter {param} (there are {})",
                self.owner.len()
            )));
        };
        if self.policy != NonFinite::Unchecked {
            if let Some(j) = super::passes::first_non_finite(values) {
                let index = rows
                    .get(j / row_len.max(1))
                    .map_or(j, |&r| r as usize * row_len + j % row_len);
                return super::non_finite_outcome(self.policy, param, index, values[j].to_f64());
            }
        }
        self.parts[k].opt.step_sparse(l, p, rows, row_len, values)
    }

    fn num_groups(&self) -> usize {
        self.group_params.len()
    }

    fn group_params(&self, group: usize) -> &[usize] {
        self.locate(group);
        &self.group_params[group]
    }

    fn lr(&self, group: usize) -> f64 {
        let (k, g) = self.locate(group);
        self.parts[k].opt.lr(g)
    }

    fn hyper(&self, group: usize) -> HyperMap {
        let (k, g) = self.locate(group);
        self.parts[k].opt.hyper(g)
    }

    fn set_hyper(&mut self, group: usize, name: &str, value: &HyperValue) -> Result<()> {
        let (k, g) = self.locate(group);
        self.parts[k].opt.set_hyper(g, name, value)
    }

    fn group_state(&self, group: usize) -> Vec<(&'static str, f64)> {
        let (k, g) = self.locate(group);
        self.parts[k].opt.group_state(g)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        super::merge_counters(self.parts.iter().map(|p| p.opt.counters()))
    }

    fn steps(&self, param: usize) -> u64 {
        assert!(
            param < self.owner.len(),
            "partition: no parameter tensor {param} (there are {})",
            self.owner.len()
        );
        let (k, l) = self.owner[param];
        self.parts[k].opt.steps(l)
    }

    fn eval_params(&self, params: &[&[T]], out: &mut [&mut [T]]) -> Result<bool> {
        let mut any = false;
        for part in &self.parts {
            let ps: Vec<&[T]> = part.members.iter().map(|&i| params[i]).collect();
            let mut scratch: Vec<Vec<T>> = ps.iter().map(|p| p.to_vec()).collect();
            let mut os: Vec<&mut [T]> = scratch.iter_mut().map(Vec::as_mut_slice).collect();
            if part.opt.eval_params(&ps, &mut os)? {
                any = true;
            }
            for (&i, o) in part.members.iter().zip(&scratch) {
                out[i].copy_from_slice(o);
            }
        }
        Ok(any)
    }

    fn device_form(&self) -> bool {
        self.parts.iter().all(|p| p.opt.device_form())
    }

    fn device_step(&mut self) -> Option<Vec<DeviceTensor>> {
        if !self.device_form() {
            return None;
        }
        let mut out = Vec::new();
        for part in &mut self.parts {
            let steps = part.opt.device_step()?;
            out.extend(steps.into_iter().map(|mut t| {
                t.param = part.members[t.param];
                t
            }));
        }
        Some(out)
    }

    fn take_buffers(&mut self, param: usize) -> Vec<HostBuffer<T>> {
        let (k, l) = self.owner[param];
        self.parts[k].opt.take_buffers(l)
    }

    fn put_buffers(&mut self, param: usize, buffers: Vec<HostBuffer<T>>) {
        let (k, l) = self.owner[param];
        self.parts[k].opt.put_buffers(l, buffers)
    }

    fn save_state(&self) -> Result<SavedState> {
        let mut buffers = Vec::new();
        let mut parts = Vec::with_capacity(self.parts.len());
        for (k, part) in self.parts.iter().enumerate() {
            let saved = part.opt.save_state()?;
            buffers.extend(
                saved
                    .buffers
                    .into_iter()
                    .map(|(name, bytes)| (format!("parts.{k}.{name}"), bytes)),
            );
            parts.push(PartRecord {
                roles: part.selector.split('+').map(str::to_string).collect(),
                params: part.members.clone(),
                state: saved.manifest,
            });
        }
        let mut manifest =
            StateManifest::new("partition", T::NAME, &self.params, Vec::new(), Vec::new());
        manifest.parts = parts;
        Ok(SavedState { manifest, buffers })
    }

    fn load_state(&mut self, saved: &SavedState) -> Result<()> {
        let m = &saved.manifest;
        if m.format != STATE_FORMAT {
            return Err(Error::State(format!(
                "format `{}`, expected `{STATE_FORMAT}`",
                m.format
            )));
        }
        m.expect("partition", T::NAME, &self.params)?;
        if m.parts.len() != self.parts.len() {
            return Err(Error::State(format!(
                "saved with {} parts, this partition has {}",
                m.parts.len(),
                self.parts.len()
            )));
        }
        for (k, (rec, part)) in m.parts.iter().zip(&self.parts).enumerate() {
            let roles: Vec<&str> = part.selector.split('+').collect();
            if rec.roles != roles || rec.params != part.members {
                return Err(Error::State(format!(
                    "part {k} was saved for roles {} over parameters {:?}, this one is {} over {:?}",
                    rec.roles.join("+"),
                    rec.params,
                    part.selector,
                    part.members
                )));
            }
        }
        // All or nothing: keep each part's state, and put it back if a later
        // part refuses its own.
        let before = self
            .parts
            .iter()
            .map(|p| p.opt.save_state())
            .collect::<Result<Vec<_>>>()?;
        for k in 0..self.parts.len() {
            let prefix = format!("parts.{k}.");
            let part_state = SavedState {
                manifest: m.parts[k].state.clone(),
                buffers: saved
                    .buffers
                    .iter()
                    .filter_map(|(name, bytes)| {
                        name.strip_prefix(&prefix)
                            .map(|n| (n.to_string(), bytes.clone()))
                    })
                    .collect(),
            };
            if let Err(e) = self.parts[k].opt.load_state(&part_state) {
                for (p, b) in self.parts.iter_mut().zip(&before).take(k) {
                    p.opt
                        .load_state(b)
                        .expect("a part reloads the state it saved itself");
                }
                return Err(Error::State(format!(
                    "part {k} ({}): {e}",
                    self.parts[k].selector
                )));
            }
        }
        Ok(())
    }
}
