//! The trainer as one replica of a data-parallel job (feature `mpi`): its
//! share of every global batch, the deterministic gradient sum, the sharded
//! (ZeRO-1) step, the replica check at each epoch's end, and the sharded
//! state gathered for checkpoints. See [`crate::distributed`].

use super::{TrainError, Trainer};
use crate::config::SparseUpdates;
use crate::distributed::{checksum, shard_state, DataParallel, Fault, FaultKind, Layout, Parallel};
use crate::method::Method;
use crate::metrics::CommFigures;
use crate::progress::Observer;
use crate::sparse::UpdateChoice;
use downhill::clip::clip_grad_value;
use downhill::optim::{OptimizerSpec, Param};
use downhill::state::SavedState;
use downhill::Rng;
use downhill_nn::BatchStats;
use std::time::Instant;

/// A replica's share of the work and its buffers.
pub(crate) struct Replica {
    dp: DataParallel,
    shard: bool,
    /// Each rank's share of the current batch.
    weights: Vec<f32>,
    /// Where each tensor starts in the flat buffers, and the total.
    starts: Vec<usize>,
    /// Squared 2-norms of the tensors' gradients (reused).
    sq: Vec<f64>,
    /// The communication figures at the start of the epoch.
    epoch_start: crate::distributed::CommStats,
    /// Sharded partitions: the whole partition's parts, in order.
    parts: Vec<Vec<String>>,
    /// Whether rank 0 writes checkpoints (has an output folder): if not,
    /// no rank gathers the sharded state.
    root_writes: bool,
    /// A failure to inject (tests only).
    fault: Option<Fault>,
}

impl Replica {
    /// Tells every rank whether rank 0 writes checkpoints (a collective).
    pub(super) fn agree_on_writes(&mut self, root_writes: bool) {
        self.root_writes = self.dp.world().all_gather_u64(u64::from(root_writes))[0] == 1;
    }
}

/// The rank's method and replica: under `--shard-optimizer-state` the
/// optimiser is built over this rank's tensors alone, so its state is
/// allocated for them alone.
pub(super) fn method(
    spec: &OptimizerSpec,
    params: &[Param],
    par: Option<Parallel>,
) -> Result<(Method, Option<Box<Replica>>), TrainError> {
    let Some(par) = par else {
        return Ok((Method::new(spec, params)?, None));
    };
    let ranks = par.world.size();
    if matches!(spec.name.as_str(), "lbfgs" | "newton") {
        return Err(TrainError::Invalid(format!(
            "{} runs full-batch in one process; data-parallel runs ({ranks} ranks) need a step-wise optimizer",
            spec.name
        )));
    }
    let sizes: Vec<usize> = params.iter().map(Param::len).collect();
    let layout = if par.shard_optimizer_state {
        Layout::WholeTensors
    } else {
        Layout::Even
    };
    let dp = DataParallel::new(par.world, &sizes, layout, par.bucket)
        .map_err(|e| TrainError::Invalid(format!("--shard-optimizer-state: {e}")))?;
    let (rank_spec, parts) = match dp.shard_tensors() {
        Some(range) => shard_state::shard_spec(spec, params, range),
        None => (spec.clone(), Vec::new()),
    };
    if par.shard_optimizer_state {
        if let Some(why) = shard_state::refusal(spec) {
            return Err(TrainError::Invalid(format!(
                "--shard-optimizer-state: {why}; run it unsharded"
            )));
        }
        // The state's layout, seen on a miniature of this rank's tensors
        // (same roles and ranks, at most 2 along each axis), so the check
        // costs nothing whatever the model's size.
        let mini = miniature(dp.shard_of(params));
        if let Method::Step(opt) = Method::new(&rank_spec, &mini)? {
            if let Some(why) = shard_state::unshardable(&opt.save_state()?) {
                return Err(TrainError::Invalid(format!(
                    "--shard-optimizer-state: {why}; run it unsharded"
                )));
            }
        }
    }
    let method = Method::new(&rank_spec, dp.shard_of(params))?;
    let replica = Replica {
        weights: vec![0.0; ranks],
        starts: downhill::optim::starts(&sizes),
        sq: vec![0.0; sizes.len()],
        epoch_start: dp.stats(),
        shard: par.shard_optimizer_state,
        parts,
        root_writes: true,
        fault: par.fault,
        dp,
    };
    Ok((method, Some(Box::new(replica))))
}

/// Data-parallel runs take dense steps: a lazy step's rows differ by rank.
pub(super) fn dense_updates(
    updates: UpdateChoice,
    requested: SparseUpdates,
) -> Result<UpdateChoice, TrainError> {
    if !updates.lazy {
        return Ok(updates);
    }
    if requested == SparseUpdates::Lazy {
        return Err(TrainError::Invalid(
            "--sparse-updates lazy: data-parallel runs take dense steps; use --sparse-updates dense (or auto)".into(),
        ));
    }
    Ok(UpdateChoice {
        lazy: false,
        why: "auto: data-parallel runs take dense steps".into(),
    })
}

impl Replica {
    fn rank(&self) -> usize {
        self.dp.world().rank()
    }

    /// Whether this run shards the optimiser state.
    pub(super) fn shards(&self) -> bool {
        self.shard
    }

    /// The ranks.
    pub(super) fn world(&self) -> &crate::distributed::World {
        self.dp.world()
    }
}

/// The gradient's 2-norm: squared per tensor in `f64`, the tensors' squares
/// added in tensor order. Sharded, each rank squares its own tensors (`grads`
/// is its shard, starting at element `offset`) and the others' arrive through
/// a sum with zeros (exact), so the norm has the same bits with and without
/// sharding.
fn tensor_norm(
    dp: &DataParallel,
    starts: &[usize],
    sq: &mut [f64],
    shard: bool,
    grads: &[f32],
) -> f64 {
    sq.iter_mut().for_each(|s| *s = 0.0);
    let (tensors, offset) = match dp.shard_tensors().filter(|_| shard) {
        Some(t) => (t, dp.shard_range().start),
        None => (0..sq.len(), 0),
    };
    for t in tensors {
        let g = &grads[starts[t] - offset..starts[t + 1] - offset];
        sq[t] = g.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    }
    if shard {
        let all = dp.world().sum_f64(sq);
        sq.copy_from_slice(&all);
    }
    sq.iter().sum::<f64>().sqrt()
}

/// Scales `grads` as `torch.nn.utils.clip_grad_norm_` does for total norm
/// `norm`: by `min(1, max / (norm + 10⁻⁶))`.
fn clip_to_norm(grads: &mut [f32], norm: f64, max: f64) {
    let coef = max / (norm + 1e-6);
    if coef < 1.0 {
        let c = coef as f32;
        grads.iter_mut().for_each(|g| *g *= c);
    }
}

impl Trainer {
    /// One epoch's steps as a replica (see [`Trainer::train_steps`]).
    pub(super) fn train_steps_parallel(
        &mut self,
        obs: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        let mut rep = self
            .replica
            .take()
            .expect("a data-parallel run has a replica");
        let result = self.parallel_steps(&mut rep, obs);
        self.replica = Some(rep);
        result
    }

    fn parallel_steps(
        &mut self,
        rep: &mut Replica,
        obs: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        let n = self.info.train;
        let bs = self.step_rows();
        let batches = n.div_ceil(bs);
        let chunk = self.gradient_chunk();
        let ranks = rep.dp.world().size();
        let rank = rep.rank();
        // The same global-step rule as in one process (see
        // `Trainer::next_batch`), so a run by steps works here too.
        while let Some((e, b)) = self.next_batch(batches) {
            self.load_order(e);
            let t0 = Instant::now();
            let rows = &self.order[b * bs..((b + 1) * bs).min(n)];
            // Rank r takes the r-th of N contiguous, near-equal parts.
            let m = rows.len();
            let cut = |r: usize| r * m / ranks;
            for (r, w) in rep.weights.iter_mut().enumerate() {
                *w = (cut(r + 1) - cut(r)) as f32 / m as f32;
            }
            let local = &rows[cut(rank)..cut(rank + 1)];
            // Dropout masks: one draw of the shared stream per step, forked
            // per rank, so replicas stay in step and draw different masks.
            let mut local_rng = Rng::new(self.rng.next_u64()).fork(rank as u64);
            let st = if local.is_empty() {
                BatchStats::default()
            } else {
                self.batcher.gradient(
                    &mut self.net,
                    &self.data.train,
                    local,
                    chunk,
                    &mut local_rng,
                    &mut self.acc,
                )?
            };
            let fault = rep
                .fault
                .filter(|f| f.rank == rank && f.step == self.step + 1);
            if fault.is_some_and(|f| f.kind == FaultKind::Panic) {
                panic!("a fault injected at step {}", self.step + 1);
            }
            let st = global_stats(rep, &st);
            let loss = st.mean_loss();
            // The gradient is summed in the network's own buffer (dense from
            // here on: the next batch clears it whole). A rank with no
            // examples in this batch adds zeros.
            let (_, grads) = self.net.params_and_grads_mut();
            if local.is_empty() {
                grads.fill(0.0);
            }
            if fault.is_some_and(|f| f.kind == FaultKind::Nan) {
                grads[0] = f32::NAN;
            }
            // The whole gradient is summed, and known finite, before any
            // parameter changes.
            let norm = if rep.shard {
                rep.dp
                    .reduce_scatter(grads, &rep.weights)
                    .map_err(TrainError::Invalid)?;
                tensor_norm(
                    &rep.dp,
                    &rep.starts,
                    &mut rep.sq,
                    true,
                    rep.dp.reduced_ref(),
                )
            } else {
                rep.dp
                    .all_reduce_in_place(grads, &rep.weights)
                    .map_err(TrainError::Invalid)?;
                tensor_norm(&rep.dp, &rep.starts, &mut rep.sq, false, grads)
            };
            if !loss.is_finite() {
                return Err(self.diverge(format!("the training loss is {loss}")));
            }
            if !norm.is_finite() {
                return Err(self.diverge(format!("the gradient norm is {norm}")));
            }
            let Method::Step(opt) = &mut self.method else {
                unreachable!("data-parallel runs are step-wise")
            };
            let (params, full) = self.net.params_and_grads_mut();
            let grads: &mut [f32] = if rep.shard { rep.dp.reduced() } else { full };
            if let Some(max) = self.cfg.clip_norm {
                clip_to_norm(grads, norm, max);
            }
            if let Some(v) = self.cfg.clip_value {
                clip_grad_value(&mut [&mut *grads], v)?;
            }
            if rep.shard {
                // Each rank sees its shard only: the ranks agree before
                // any of them steps.
                rep.dp
                    .step_reduced(&mut **opt, params)
                    .map_err(TrainError::Invalid)?;
            } else {
                opt.step_flat(params, grads)?;
            }
            self.after_step(batches, loss, &st, norm, t0, obs)?;
        }
        Ok(())
    }

    /// At an epoch's end: every rank must hold the same parameters; a
    /// checksum of their bits is compared across ranks. Returns the epoch's
    /// communication figures.
    pub(super) fn check_replicas(&mut self) -> Result<Option<CommFigures>, TrainError> {
        let Some(rep) = &mut self.replica else {
            return Ok(None);
        };
        let sum = checksum(self.net.params());
        rep.dp
            .world()
            .check_equal(sum, &format!("parameters after epoch {}", self.epoch + 1))
            .map_err(TrainError::Invalid)?;
        let now = rep.dp.stats();
        let figures = CommFigures {
            ranks: rep.dp.world().size(),
            sharded: rep.shard,
            seconds: now.seconds - rep.epoch_start.seconds,
            bytes_received: now.bytes_received - rep.epoch_start.bytes_received,
            calls: now.calls - rep.epoch_start.calls,
        };
        rep.epoch_start = now;
        Ok(Some(figures))
    }

    /// The whole optimiser state for a checkpoint: under sharding, every
    /// rank sends its shard's state to rank 0, which merges them (`None` on
    /// the other ranks); unsharded, this rank's own. Every rank must call it
    /// at the same point.
    pub(super) fn gathered_optimizer_state(&self) -> Result<Option<SavedState>, TrainError> {
        let Some(rep) = self.replica.as_ref().filter(|r| r.shard) else {
            return match self.out {
                Some(_) => Ok(Some(self.optimizer_state()?)),
                None => Ok(None),
            };
        };
        if !rep.root_writes {
            return Ok(None);
        }
        let world = rep.dp.world();
        let own = self.optimizer_state()?;
        if !world.is_root() {
            let (header, buffers) = shard_state::to_messages(&own);
            world.send_to_root(&[&header]);
            world.send_to_root(&buffers);
            return Ok(None);
        }
        let mut states = vec![own];
        // One rank after another: rank 0 holds each buffer once.
        for r in 1..world.size() {
            let header = world.receive_from(r, 1).remove(0);
            let bad = |e: String| TrainError::Invalid(format!("rank {r}: {e}"));
            let n = shard_state::buffers_after(&header).map_err(bad)?;
            let state =
                shard_state::from_messages(&header, world.receive_from(r, n)).map_err(bad)?;
            states.push(state);
        }
        let ranges: Vec<_> = (0..states.len())
            .map(|r| {
                rep.dp
                    .shard_tensors_of(r)
                    .expect("sharded runs cut whole tensors")
            })
            .collect();
        Ok(Some(
            shard_state::merge(states, &ranges, &rep.parts).map_err(TrainError::Invalid)?,
        ))
    }

    /// Sharded runs: the whole run's optimiser over miniatures of `params`
    /// (at most 2 along each axis), to say which rule takes which tensor.
    pub(super) fn sharded_stand_in(
        &self,
        params: &[Param],
    ) -> Option<Box<dyn downhill::optim::Optimizer<f32>>> {
        self.replica.as_ref().filter(|r| r.shard)?;
        let spec = self.cfg.optimizer_spec().ok()?;
        downhill::optim::build::<f32>(&spec, &miniature(params)).ok()
    }

    /// This rank's part of a whole saved state (all of it unless sharded).
    pub(super) fn local_optimizer_state(
        &self,
        full: &SavedState,
    ) -> Result<SavedState, TrainError> {
        match self
            .replica
            .as_ref()
            .and_then(|r| r.dp.shard_tensors().filter(|_| r.shard))
        {
            Some(range) => shard_state::split(full, range).map_err(|e| {
                TrainError::Invalid(format!("checkpoint: cannot shard the optimizer state: {e}"))
            }),
            None => Ok(full.clone()),
        }
    }

    /// The optimiser's evaluation point under sharding: each rank computes
    /// its tensors' part, the parts are all-gathered. `None` when unsharded.
    pub(super) fn sharded_eval_point(&mut self) -> Option<Result<bool, TrainError>> {
        let rep = self.replica.as_mut().filter(|r| r.shard)?;
        let Method::Step(opt) = &self.method else {
            return Some(Ok(false));
        };
        Some((|| {
            let tensors = rep
                .dp
                .shard_tensors()
                .expect("sharded runs cut whole tensors");
            let params = self.net.params();
            self.eval_buf.resize(params.len(), 0.0);
            let infos = &self.net.tensors()[tensors];
            let mut ps: Vec<&[f32]> = Vec::with_capacity(infos.len());
            let mut outs: Vec<&mut [f32]> = Vec::with_capacity(infos.len());
            let start = infos.first().map_or(0, |t| t.offset);
            let mut rest = &mut self.eval_buf[start..];
            for t in infos {
                ps.push(&params[t.range()]);
                let (head, tail) = rest.split_at_mut(t.len);
                outs.push(head);
                rest = tail;
            }
            // Every rank takes part in the collectives, whatever it owns:
            // whether any rank has an evaluation point is agreed first, and
            // a rank whose tensors have none sends its parameters.
            let has = opt.eval_params(&ps, &mut outs)?;
            if !has {
                for (o, p) in outs.iter_mut().zip(&ps) {
                    o.copy_from_slice(p);
                }
            }
            let any = rep.dp.world().all_gather_u64(u64::from(has)).contains(&1);
            if any {
                rep.dp
                    .all_gather(&mut self.eval_buf)
                    .map_err(TrainError::Invalid)?;
            }
            Ok(any)
        })())
    }
}

/// The batch totals over all ranks, added in rank order; the L2 penalty
/// (the same on every rank) from the first rank that had examples.
fn global_stats(rep: &Replica, st: &BatchStats) -> BatchStats {
    let all = rep.dp.world().all_gather_f64(&[
        st.loss_sum,
        st.correct as f64,
        st.count as f64,
        st.penalty,
    ]);
    let mut out = BatchStats::default();
    let mut have_penalty = false;
    for part in all.chunks(4) {
        out.loss_sum += part[0];
        out.correct += part[1] as usize;
        out.count += part[2] as usize;
        if part[2] > 0.0 && !have_penalty {
            out.penalty = part[3];
            have_penalty = true;
        }
    }
    out
}

/// The same tensors at most 2 long along each axis, with their roles: an
/// optimiser's state layout depends only on those, so checks on it cost
/// nothing whatever the model's size.
fn miniature(params: &[Param]) -> Vec<Param> {
    params
        .iter()
        .map(|p| {
            Param::new(
                p.shape.iter().map(|&d| d.min(2)).collect::<Vec<_>>(),
                p.role,
            )
        })
        .collect()
}
