//! Optimiser state cut into whole-tensor shards and put back together, so a
//! ZeRO-1 run saves one ordinary state that resumes on any number of ranks,
//! or in one process.
//!
//! Works on states of single rules (not partitions or wrappers, whose
//! manifests nest): the tensors of a shard are a contiguous run of the whole
//! list; groups keep their hyper-parameters and their scalar state, which
//! must be the same on every shard.

use downhill::state::{GroupRecord, SavedState, StateManifest};
use std::ops::Range;

/// Why a state cannot be sharded, or `None` when it can: a nested manifest
/// (a partition, e.g. `muon`, or a wrapper) or a buffer stored under a key
/// that is not `"{tensor}.{name}"`.
pub fn unshardable(state: &SavedState) -> Option<String> {
    let m = &state.manifest;
    if !m.parts.is_empty() {
        return Some(format!(
            "`{}` keeps its state in parts (a partition such as muon's)",
            m.optimizer
        ));
    }
    let n = m.tensors.len();
    state.buffers.iter().find_map(|(key, _)| {
        let tensor = key
            .split_once('.')
            .and_then(|(i, _)| i.parse::<usize>().ok());
        match tensor {
            Some(i) if i < n => None,
            _ => Some(format!(
                "`{}` stores a buffer `{key}` that belongs to no tensor",
                m.optimizer
            )),
        }
    })
}

fn tensor_of(key: &str) -> Option<(usize, &str)> {
    let (i, rest) = key.split_once('.')?;
    Some((i.parse().ok()?, rest))
}

/// The state of tensors `range` alone, renumbered from 0, as an optimiser
/// built over those tensors saves it.
pub fn split(full: &SavedState, range: Range<usize>) -> Result<SavedState, String> {
    if let Some(why) = unshardable(full) {
        return Err(why);
    }
    let m = &full.manifest;
    if range.end > m.tensors.len() || range.end > m.params.len() {
        return Err(format!(
            "the state holds {} tensors, the shard needs {}..{}",
            m.tensors.len(),
            range.start,
            range.end
        ));
    }
    let groups = m
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
        .collect();
    let manifest = StateManifest {
        params: m.params[range.clone()].to_vec(),
        groups,
        tensors: m.tensors[range.clone()].to_vec(),
        parts: Vec::new(),
        ..m.clone()
    };
    let buffers = full
        .buffers
        .iter()
        .filter_map(|(key, bytes)| {
            let (i, name) = tensor_of(key)?;
            range
                .contains(&i)
                .then(|| (format!("{}.{name}", i - range.start), bytes.clone()))
        })
        .collect();
    Ok(SavedState { manifest, buffers })
}

/// The whole state from the shards' states, shard `k` holding the tensors
/// `ranges[k]` (contiguous, in order, from 0).
pub fn merge(shards: &[SavedState], ranges: &[Range<usize>]) -> Result<SavedState, String> {
    let first = shards.first().ok_or("no shard states to merge")?;
    let mut manifest = StateManifest {
        params: Vec::new(),
        groups: first
            .manifest
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
        ..first.manifest.clone()
    };
    let mut buffers = Vec::new();
    for (k, (shard, range)) in shards.iter().zip(ranges).enumerate() {
        if let Some(why) = unshardable(shard) {
            return Err(format!("rank {k}: {why}"));
        }
        let m = &shard.manifest;
        if m.tensors.len() != range.len() || range.start != manifest.tensors.len() {
            return Err(format!(
                "rank {k}: its state holds {} tensors, its shard {}..{}",
                m.tensors.len(),
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
        manifest.tensors.extend(m.tensors.iter().cloned());
        for (key, bytes) in &shard.buffers {
            let (i, name) = tensor_of(key).ok_or_else(|| format!("rank {k}: buffer `{key}`"))?;
            buffers.push((format!("{}.{name}", i + range.start), bytes.clone()));
        }
    }
    Ok(SavedState { manifest, buffers })
}

/// A state as bytes, to send between ranks.
pub fn to_bytes(state: &SavedState) -> Result<Vec<u8>, String> {
    let json = state.manifest_json();
    let tensors = state.tensors_bytes().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(8 + json.len() + tensors.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&tensors);
    Ok(out)
}

/// The state [`to_bytes`] wrote.
pub fn from_bytes(bytes: &[u8]) -> Result<SavedState, String> {
    let short = || "a shard's optimizer state arrived truncated".to_string();
    let len = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?,
    ) as usize;
    let json = bytes.get(8..8 + len).ok_or_else(short)?;
    let json = std::str::from_utf8(json).map_err(|e| e.to_string())?;
    SavedState::from_parts(json, &bytes[8 + len..]).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use downhill::optim::{build, Optimizer, Param};

    fn stepped(spec: &str, params: &[Param], grads: &[f32]) -> Box<dyn Optimizer<f32>> {
        let mut opt = build::<f32>(&spec.parse().unwrap(), params).unwrap();
        let mut p: Vec<f32> = (0..grads.len()).map(|i| i as f32 * 0.01).collect();
        opt.step_flat(&mut p, grads).unwrap();
        opt
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
            let merged = merge(&[a.clone(), b.clone()], &[0..2, 2..4]).unwrap();
            assert_eq!(merged.manifest, whole.manifest, "{spec}");
            let mut mb = merged.buffers.clone();
            let mut wb = whole.buffers.clone();
            mb.sort();
            wb.sort();
            assert_eq!(mb, wb, "{spec}");
            assert_eq!(split(&whole, 0..2).unwrap().manifest, a.manifest, "{spec}");
            assert_eq!(split(&whole, 2..4).unwrap().manifest, b.manifest, "{spec}");
            let back = from_bytes(&to_bytes(&b).unwrap()).unwrap();
            assert_eq!(back.manifest, b.manifest);
        }
    }

    #[test]
    fn partitions_are_refused_with_a_reason() {
        let params = [
            Param::new(vec![4, 4], downhill::optim::Role::Hidden),
            Param::new(vec![4], downhill::optim::Role::Bias),
        ];
        let opt = stepped("muon", &params, &[0.1; 20]);
        let why = unshardable(&opt.save_state().unwrap()).unwrap();
        assert!(why.contains("partition"), "{why}");
    }
}
