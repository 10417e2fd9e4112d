//! Optimiser state cut into whole-tensor shards and put back together, so a
//! ZeRO-1 run saves one ordinary state that resumes on any number of ranks,
//! or in one process.
//!
//! The tensors of a shard are a contiguous run of the whole list. A single
//! rule's groups keep their hyper-parameters and their scalar state, which
//! must be the same on every shard. A partition (`muon` alone is one) is cut
//! part by part: a shard's optimiser has the parts that own some of its
//! tensors ([`shard_spec`]), each part's state is cut like a single rule's,
//! and merging puts the parts back in the whole partition's order.

use downhill::optim::registry::muon_alone;
use downhill::optim::{OptimizerSpec, Param, Role};
use downhill::state::{GroupRecord, PartRecord, SavedState, StateManifest};
use std::ops::Range;

/// Why the optimiser `spec` names cannot be sharded by whole tensors, or
/// `None`: a rule whose step sums over every tensor first (the registry's
/// `shares_groups`: Prodigy's step size), anywhere in the spec, and a
/// wrapper (lookahead) around a partition, which would route roles per
/// shard.
pub fn refusal(spec: &OptimizerSpec) -> Option<String> {
    if let Some(name) = sums_over_every_tensor(spec) {
        return Some(format!(
            "{name} sums over every tensor before it steps (its step size or scale needs the whole model)"
        ));
    }
    let inner = spec.inner.as_deref()?;
    (inner.name == "muon" || inner.name == "partition" || !inner.parts.is_empty()).then(|| {
        format!(
            "`{}` wraps a partition; shard the partition alone, or the wrapper around a single rule",
            spec.name
        )
    })
}

/// The first rule in `spec` (itself, what it wraps, its parts) whose step
/// sums over every tensor, by the registry's `shares_groups`.
fn sums_over_every_tensor(spec: &OptimizerSpec) -> Option<&str> {
    let own = downhill::optim::registry::entry(&spec.name)
        .ok()
        .filter(|e| e.shares_groups)
        .map(|e| e.name);
    own.or_else(|| spec.inner.as_deref().and_then(sums_over_every_tensor))
        .or_else(|| {
            spec.parts
                .iter()
                .find_map(|p| sums_over_every_tensor(&p.spec))
        })
}

/// The spec of the optimiser for the tensors `range` of `all`, and the
/// whole partition's parts in order (each by its roles, as its state
/// records them; empty for a single rule). `muon` alone is first spelt out
/// as the partition it means for the whole model, so every shard keeps the
/// same kind of state, whatever roles its tensors have.
pub fn shard_spec(
    spec: &OptimizerSpec,
    all: &[Param],
    range: Range<usize>,
) -> (OptimizerSpec, Vec<Vec<String>>) {
    let spec = if spec.name == "muon"
        && spec.parts.is_empty()
        && all.iter().any(|p| p.role != Role::Hidden)
    {
        muon_alone(spec)
    } else {
        spec.clone()
    };
    if spec.parts.is_empty() {
        return (spec, Vec::new());
    }
    // Ownership as a partition decides it: a later part naming a role wins,
    // `all` takes what no part names.
    let mut owner: Vec<Option<usize>> = vec![None; all.len()];
    for (k, part) in spec.parts.iter().enumerate() {
        for (o, p) in owner.iter_mut().zip(all) {
            if part.roles.contains(&p.role) {
                *o = Some(k);
            }
        }
    }
    if let Some(rest) = spec.parts.iter().position(|p| p.rest) {
        owner
            .iter_mut()
            .filter(|o| o.is_none())
            .for_each(|o| *o = Some(rest));
    }
    let order = spec
        .parts
        .iter()
        .map(|p| p.selector().split('+').map(str::to_string).collect())
        .collect();
    let kept = spec
        .parts
        .iter()
        .enumerate()
        .filter(|(k, _)| owner[range.clone()].contains(&Some(*k)))
        .map(|(_, p)| p.clone())
        .collect();
    (
        OptimizerSpec {
            parts: kept,
            ..spec
        },
        order,
    )
}

/// Why a state cannot be sharded, or `None` when it can: every buffer of
/// the rule's own must belong to a tensor (`"{tensor}.{name}"`), with one
/// tensor record per parameter, and every part must be shardable in turn.
pub fn unshardable(state: &SavedState) -> Option<String> {
    let m = &state.manifest;
    let n = m.tensors.len();
    if n != 0 && n != m.params.len() {
        return Some(format!(
            "`{}` keeps {n} tensor records for {} parameters",
            m.optimizer,
            m.params.len()
        ));
    }
    let own = state
        .buffers
        .iter()
        .filter(|(k, _)| !k.starts_with("parts."));
    for (key, _) in own {
        match tensor_of(key) {
            Some((i, _)) if i < n => {}
            _ => {
                return Some(format!(
                    "`{}` stores a buffer `{key}` that belongs to no tensor",
                    m.optimizer
                ))
            }
        }
    }
    m.parts.iter().enumerate().find_map(|(k, part)| {
        if part.state.optimizer == "partition" && m.optimizer != "partition" {
            return Some(format!(
                "`{}` wraps a partition; shard the partition alone, or the wrapper around a single rule",
                m.optimizer
            ));
        }
        unshardable(&part_state(state, k)).map(|why| format!("part {}: {why}", part.roles.join("+")))
    })
}

fn tensor_of(key: &str) -> Option<(usize, &str)> {
    let (i, rest) = key.split_once('.')?;
    Some((i.parse().ok()?, rest))
}

/// Part `k` of a state, its buffers without the `parts.{k}.` prefix.
fn part_state(state: &SavedState, k: usize) -> SavedState {
    let prefix = format!("parts.{k}.");
    SavedState {
        manifest: state.manifest.parts[k].state.clone(),
        buffers: state
            .buffers
            .iter()
            .filter_map(|(n, b)| n.strip_prefix(&prefix).map(|n| (n.to_string(), b.clone())))
            .collect(),
    }
}

/// The state of tensors `range` alone, renumbered from 0, as an optimiser
/// built over those tensors (with [`shard_spec`]) saves it.
pub fn split(full: &SavedState, range: Range<usize>) -> Result<SavedState, String> {
    if let Some(why) = unshardable(full) {
        return Err(why);
    }
    let m = &full.manifest;
    if range.end > m.params.len() {
        return Err(format!(
            "the state holds {} tensors, the shard needs {}..{}",
            m.params.len(),
            range.start,
            range.end
        ));
    }
    let own_tensors = !m.tensors.is_empty();
    let mut manifest = StateManifest {
        params: m.params[range.clone()].to_vec(),
        groups: m
            .groups
            .iter()
            .map(|g| GroupRecord {
                params: g
                    .params
                    .iter()
                    .filter(|p| range.contains(p))
                    .map(|p| p - range.start)
                    .collect(),
                hyper: g.hyper.clone(),
                scalars: g.scalars.clone(),
            })
            .collect(),
        tensors: if own_tensors {
            m.tensors[range.clone()].to_vec()
        } else {
            Vec::new()
        },
        parts: Vec::new(),
        ..m.clone()
    };
    let mut buffers: Vec<(String, Vec<u8>)> = full
        .buffers
        .iter()
        .filter(|(key, _)| !key.starts_with("parts."))
        .filter_map(|(key, bytes)| {
            let (i, name) = tensor_of(key)?;
            range
                .contains(&i)
                .then(|| (format!("{}.{name}", i - range.start), bytes.clone()))
        })
        .collect();
    for (k, part) in m.parts.iter().enumerate() {
        let pos: Vec<usize> = (0..part.params.len())
            .filter(|&j| range.contains(&part.params[j]))
            .collect();
        let (Some(&a), Some(&b)) = (pos.first(), pos.last()) else {
            continue;
        };
        let inner = split(&part_state(full, k), a..b + 1)?;
        let kk = manifest.parts.len();
        buffers.extend(
            inner
                .buffers
                .into_iter()
                .map(|(n, bytes)| (format!("parts.{kk}.{n}"), bytes)),
        );
        manifest.parts.push(PartRecord {
            roles: part.roles.clone(),
            params: pos.iter().map(|&j| part.params[j] - range.start).collect(),
            state: inner.manifest,
        });
    }
    Ok(SavedState { manifest, buffers })
}

/// The whole state from the shards' states, shard `k` holding the tensors
/// `ranges[k]` (contiguous, in order, from 0). `parts` is the whole
/// partition's parts in order ([`shard_spec`]); empty for a single rule, or
/// a wrapper, whose part every shard has. The shards' buffers are moved into
/// the result, not copied, so rank 0 holds the whole state about once while
/// it writes a checkpoint.
pub fn merge(
    mut shards: Vec<SavedState>,
    ranges: &[Range<usize>],
    parts: &[Vec<String>],
) -> Result<SavedState, String> {
    let first = shards
        .first()
        .ok_or("no shard states to merge")?
        .manifest
        .clone();
    if shards.len() != ranges.len() {
        return Err(format!(
            "{} shard states for {} shards",
            shards.len(),
            ranges.len()
        ));
    }
    let own_tensors = !first.tensors.is_empty();
    let mut manifest = StateManifest {
        params: Vec::new(),
        groups: first
            .groups
            .iter()
            .map(|g| GroupRecord {
                params: Vec::new(),
                hyper: g.hyper.clone(),
                scalars: g.scalars.clone(),
            })
            .collect(),
        tensors: Vec::new(),
        parts: Vec::new(),
        ..first.clone()
    };
    let mut buffers = Vec::new();
    for (k, (shard, range)) in shards.iter_mut().zip(ranges).enumerate() {
        if let Some(why) = unshardable(shard) {
            return Err(format!("rank {k}: {why}"));
        }
        let m = &shard.manifest;
        if m.params.len() != range.len() || range.start != manifest.params.len() {
            return Err(format!(
                "rank {k}: its state holds {} tensors, its shard {}..{}",
                m.params.len(),
                range.start,
                range.end
            ));
        }
        if m.optimizer != manifest.optimizer || m.groups.len() != manifest.groups.len() {
            return Err(format!(
                "rank {k}: its optimizer state ({}, {} groups) differs from rank 0's ({}, {} groups)",
                m.optimizer,
                m.groups.len(),
                manifest.optimizer,
                manifest.groups.len()
            ));
        }
        for (g, (mine, all)) in m.groups.iter().zip(&mut manifest.groups).enumerate() {
            if mine.hyper != all.hyper || mine.scalars != all.scalars {
                return Err(format!(
                    "rank {k}: group {g}'s hyper-parameters or scalar state differ from rank 0's"
                ));
            }
            all.params
                .extend(mine.params.iter().map(|p| p + range.start));
        }
        manifest.params.extend(m.params.iter().cloned());
        if own_tensors {
            manifest.tensors.extend(m.tensors.iter().cloned());
        }
        let (of_parts, own): (Vec<_>, Vec<_>) = std::mem::take(&mut shard.buffers)
            .into_iter()
            .partition(|(key, _)| key.starts_with("parts."));
        shard.buffers = of_parts;
        for (key, bytes) in own {
            let (i, name) = tensor_of(&key).ok_or_else(|| format!("rank {k}: buffer `{key}`"))?;
            buffers.push((format!("{}.{name}", i + range.start), bytes));
        }
    }
    let own_order: Vec<Vec<String>>;
    let order = if parts.is_empty() {
        own_order = first.parts.iter().map(|p| p.roles.clone()).collect();
        &own_order[..]
    } else {
        parts
    };
    for roles in order {
        // This part's state on each shard that has it, and where its tensors
        // fall within the part.
        let (mut states, mut inner_ranges, mut params) = (Vec::new(), Vec::new(), Vec::new());
        for (shard, range) in shards.iter_mut().zip(ranges) {
            let Some(k) = shard.manifest.parts.iter().position(|p| &p.roles == roles) else {
                continue;
            };
            let rec = &shard.manifest.parts[k];
            let at = params.len();
            params.extend(rec.params.iter().map(|p| p + range.start));
            inner_ranges.push(at..params.len());
            states.push(take_part(shard, k));
        }
        if states.is_empty() {
            return Err(format!("no rank holds part {}", roles.join("+")));
        }
        let inner = merge(states, &inner_ranges, &[])?;
        let kk = manifest.parts.len();
        buffers.extend(
            inner
                .buffers
                .into_iter()
                .map(|(n, bytes)| (format!("parts.{kk}.{n}"), bytes)),
        );
        manifest.parts.push(PartRecord {
            roles: roles.clone(),
            params,
            state: inner.manifest,
        });
    }
    Ok(SavedState { manifest, buffers })
}

/// Part `k` of a state, its buffers moved out of `state` (not copied).
fn take_part(state: &mut SavedState, k: usize) -> SavedState {
    let prefix = format!("parts.{k}.");
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut state.buffers)
        .into_iter()
        .partition(|(n, _)| n.starts_with(&prefix));
    state.buffers = rest;
    SavedState {
        manifest: state.manifest.parts[k].state.clone(),
        buffers: mine
            .into_iter()
            .map(|(n, b)| (n[prefix.len()..].to_string(), b))
            .collect(),
    }
}

/// What travels ahead of a state's buffers between ranks: its manifest and
/// its buffers' names, in the order the buffers follow.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    manifest: StateManifest,
    names: Vec<String>,
}

/// A state as messages: a header, then each buffer as it lies in memory
/// (nothing is copied into one blob).
pub fn to_messages(state: &SavedState) -> (Vec<u8>, Vec<&[u8]>) {
    let header = Header {
        manifest: state.manifest.clone(),
        names: state.buffers.iter().map(|(n, _)| n.clone()).collect(),
    };
    let json = serde_json::to_vec(&header).expect("a manifest always serialises");
    (
        json,
        state.buffers.iter().map(|(_, b)| b.as_slice()).collect(),
    )
}

/// How many buffer messages follow a header.
pub fn buffers_after(header: &[u8]) -> Result<usize, String> {
    let h: Header =
        serde_json::from_slice(header).map_err(|e| format!("a shard's state header: {e}"))?;
    Ok(h.names.len())
}

/// The state [`to_messages`] sent.
pub fn from_messages(header: &[u8], buffers: Vec<Vec<u8>>) -> Result<SavedState, String> {
    let h: Header =
        serde_json::from_slice(header).map_err(|e| format!("a shard's state header: {e}"))?;
    if h.names.len() != buffers.len() {
        return Err(format!(
            "a shard's state names {} buffers, {} arrived",
            h.names.len(),
            buffers.len()
        ));
    }
    Ok(SavedState {
        manifest: h.manifest,
        buffers: h.names.into_iter().zip(buffers).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use downhill::optim::{build, Optimizer, Param};

    /// Refused by the registry's `shares_groups`, wherever the rule sits in
    /// the spec, not by its name: the next rule that sums over every tensor
    /// is refused too.
    #[test]
    fn rules_that_sum_over_every_tensor_are_refused_wherever_they_sit() {
        for spec in [
            "prodigy",
            "prodigy(lr=0.5)",
            "partition(hidden=prodigy,all=adamw)",
            "partition(hidden=muon,all=prodigy)",
            "lookahead(prodigy,k=5)",
        ] {
            let why = refusal(&spec.parse().unwrap()).unwrap_or_else(|| panic!("{spec}"));
            assert!(
                why.starts_with("prodigy sums over every tensor"),
                "{spec}: {why}"
            );
        }
        for spec in [
            "adam",
            "muon",
            "partition(hidden=muon,all=adamw)",
            "lookahead(adamw)",
        ] {
            assert_eq!(refusal(&spec.parse().unwrap()), None, "{spec}");
        }
        let gathering: Vec<&str> = downhill::optim::REGISTRY
            .iter()
            .filter(|e| e.shares_groups)
            .map(|e| e.name)
            .collect();
        for name in gathering {
            assert!(refusal(&name.parse().unwrap()).is_some(), "{name}");
        }
    }

    /// An optimiser after one step from parameters `(offset + i)·0.01`.
    fn stepped_from(
        spec: &str,
        params: &[Param],
        grads: &[f32],
        offset: usize,
    ) -> Box<dyn Optimizer<f32>> {
        let mut opt = build::<f32>(&spec.parse().unwrap(), params).unwrap();
        let mut p: Vec<f32> = (0..grads.len())
            .map(|i| (offset + i) as f32 * 0.01)
            .collect();
        opt.step_flat(&mut p, grads).unwrap();
        opt
    }

    fn stepped(spec: &str, params: &[Param], grads: &[f32]) -> Box<dyn Optimizer<f32>> {
        stepped_from(spec, params, grads, 0)
    }

    /// Two shard optimisers stepped on their tensors save states that merge
    /// into exactly what one optimiser over all tensors saves, and the whole
    /// state splits back into the shards' states.
    #[test]
    fn shard_states_merge_into_the_whole_and_split_back() {
        let params = [
            Param::from(vec![3, 4]),
            Param::from(vec![4]),
            Param::from(vec![4, 2]),
            Param::from(vec![2]),
        ];
        let sizes: Vec<usize> = params.iter().map(Param::len).collect();
        let grads: Vec<f32> = (0..sizes.iter().sum::<usize>())
            .map(|i| (i as f32).sin())
            .collect();
        for spec in ["adam(lr=0.01)", "adafactor", "lamb", "sgd(momentum=0.9)"] {
            let whole = stepped(spec, &params, &grads).save_state().unwrap();
            let a = stepped(spec, &params[..2], &grads[..16])
                .save_state()
                .unwrap();
            let b = stepped(spec, &params[2..], &grads[16..])
                .save_state()
                .unwrap();
            let merged = merge(vec![a.clone(), b.clone()], &[0..2, 2..4], &[]).unwrap();
            assert_eq!(merged.manifest, whole.manifest, "{spec}");
            let mut mb = merged.buffers.clone();
            let mut wb = whole.buffers.clone();
            mb.sort();
            wb.sort();
            assert_eq!(mb, wb, "{spec}");
            assert_eq!(split(&whole, 0..2).unwrap().manifest, a.manifest, "{spec}");
            assert_eq!(split(&whole, 2..4).unwrap().manifest, b.manifest, "{spec}");
            let (header, msgs) = to_messages(&b);
            assert_eq!(buffers_after(&header).unwrap(), msgs.len());
            let back = from_messages(&header, msgs.iter().map(|m| m.to_vec()).collect()).unwrap();
            assert_eq!(back, b);
        }
    }

    /// `muon` alone over an MLP's tensors cut in two: the shards' partitions
    /// have the parts that own their tensors; their states merge into the
    /// whole partition's, and split back.
    #[test]
    fn partition_shard_states_merge_into_the_whole() {
        use downhill::optim::Role;
        let params = [
            Param::new(vec![6, 4], Role::Input),
            Param::new(vec![4], Role::Bias),
            Param::new(vec![4, 4], Role::Hidden),
            Param::new(vec![4], Role::Bias),
            Param::new(vec![4, 3], Role::Output),
            Param::new(vec![3], Role::Bias),
        ];
        let sizes: Vec<usize> = params.iter().map(Param::len).collect();
        let starts = downhill::optim::starts(&sizes);
        let grads: Vec<f32> = (0..starts[6]).map(|i| (i as f32 * 0.7).cos()).collect();
        let spec: OptimizerSpec = "muon(lr=0.02)".parse().unwrap();
        let whole = stepped_spec(&spec, &params, &grads).save_state().unwrap();
        for cut in [1, 2, 3, 5] {
            let (sa, order) = shard_spec(&spec, &params, 0..cut);
            let (sb, _) = shard_spec(&spec, &params, cut..6);
            let a = stepped_spec(&sa, &params[..cut], &grads[..starts[cut]])
                .save_state()
                .unwrap();
            let b = stepped_spec(&sb, &params[cut..], &grads[starts[cut]..])
                .save_state()
                .unwrap();
            assert!(unshardable(&a).is_none());
            let merged = merge(vec![a.clone(), b.clone()], &[0..cut, cut..6], &order).unwrap();
            assert_eq!(merged.manifest, whole.manifest, "cut at {cut}");
            let (mut mb, mut wb) = (merged.buffers.clone(), whole.buffers.clone());
            mb.sort();
            wb.sort();
            assert_eq!(mb, wb, "cut at {cut}");
            assert_eq!(
                split(&whole, 0..cut).unwrap().manifest,
                a.manifest,
                "cut at {cut}"
            );
            assert_eq!(
                split(&whole, cut..6).unwrap().manifest,
                b.manifest,
                "cut at {cut}"
            );
        }
    }

    fn stepped_spec(
        spec: &OptimizerSpec,
        params: &[Param],
        grads: &[f32],
    ) -> Box<dyn Optimizer<f32>> {
        let mut opt = build::<f32>(spec, params).unwrap();
        let mut p: Vec<f32> = (0..grads.len()).map(|i| i as f32 * 0.01).collect();
        opt.step_flat(&mut p, grads).unwrap();
        opt
    }

    /// Lookahead keeps slow weights per tensor and its inner rule's state as
    /// a part: both are cut and put back.
    #[test]
    fn a_wrapper_around_a_rule_merges_and_splits() {
        let params = [Param::from(4), Param::from(2), Param::from(3)];
        let grads = [0.1f32, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8, -0.9];
        let spec = "lookahead(adam(lr=0.1),k=2)";
        let whole = stepped(spec, &params, &grads).save_state().unwrap();
        let a = stepped_from(spec, &params[..1], &grads[..4], 0)
            .save_state()
            .unwrap();
        let b = stepped_from(spec, &params[1..], &grads[4..], 4)
            .save_state()
            .unwrap();
        let merged = merge(vec![a.clone(), b.clone()], &[0..1, 1..3], &[]).unwrap();
        assert_eq!(merged.manifest, whole.manifest);
        let (mut mb, mut wb) = (merged.buffers.clone(), whole.buffers.clone());
        mb.sort();
        wb.sort();
        assert_eq!(mb, wb);
        assert_eq!(split(&whole, 1..3).unwrap().manifest, b.manifest);
    }

    #[test]
    fn a_wrapper_around_a_partition_is_refused() {
        use downhill::optim::Role;
        let params = [
            Param::new(vec![4, 4], Role::Hidden),
            Param::new(vec![4], Role::Bias),
        ];
        let opt = stepped("lookahead(muon)", &params, &[0.1; 20]);
        let why = unshardable(&opt.save_state().unwrap()).expect("refused");
        assert!(why.contains("wraps a partition"), "{why}");
    }
}
