//! [`DataParallel`]: deterministic bucketed gradient reduction and the
//! ZeRO-1 sharded step, over flat `f32` buffers.

use super::comm::World;
use downhill::optim::{screen_flat, NonFinite, Optimizer, StepOutcome};
use mpi::datatype::{Partition, PartitionMut};
use mpi::traits::*;
use std::ops::Range;
use std::time::Instant;

/// Elements per bucket by default: 4 Mi `f32` values (16 MiB), so a model
/// of a few million parameters goes in one or two collectives per step.
pub const DEFAULT_BUCKET: usize = 4 << 20;

/// How the flat buffer is cut into the ranks' shards (the range of the sum
/// each rank computes, and under ZeRO-1 the parameters it updates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Equal element ranges, whatever the tensors: the balanced choice for a
    /// plain allreduce.
    Even,
    /// Contiguous runs of whole tensors, as equal in size as whole tensors
    /// allow: what a sharded optimiser step needs, so that tensor-level
    /// rules (Adafactor's factors, LAMB's norms, Muon's matrices) see whole
    /// tensors.
    WholeTensors,
}

/// Time and traffic of the collectives so far, on this rank.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CommStats {
    /// Seconds spent in reduce-scatters and all-gathers, sums included.
    pub seconds: f64,
    /// Bytes this rank received from other ranks: the payload a ring
    /// allreduce also moves, `2·(N−1)/N` of the buffer for even shards.
    pub bytes_received: u64,
    /// Collective calls made (one per bucket and phase).
    pub calls: u64,
}

/// Data-parallel gradient reduction over MPI for a training loop of one's
/// own: every rank computes the gradient of its share of the batch into one
/// flat buffer, and [`DataParallel::all_reduce`] makes every rank's buffer
/// the weighted sum `Σ_r w_r·g_r`.
///
/// The sum is deterministic: the buffer is cut into large buckets; in each
/// bucket every rank owns a range (its shard), receives the other ranks'
/// values of that range (`MPI_Alltoallv`, which moves data without adding),
/// and adds them **in rank order**, rank 0 first; an all-gather
/// (`MPI_Allgatherv`) then hands every rank the sums. Since each element is
/// added in the same order whatever the layout, buckets and algorithm, every
/// rank holds the same bits, a rerun gives the same bits, and the sharded
/// step ([`DataParallel::step_sharded`]) gives the same bits as the
/// unsharded one. Each rank receives `2·(N−1)/N` of the buffer per
/// reduction, as much as a ring allreduce.
///
/// ```no_run
/// use downhill::optim::{build, OptimizerSpec, Param};
/// use downhill_train::distributed::{self, DataParallel, Layout};
///
/// let session = distributed::init()?.expect("run under mpirun");
/// let world = session.world();
/// // Two tensors in one flat buffer: a 784×10 weight and its bias.
/// let sizes = [7840, 10];
/// let mut dp = DataParallel::new(world, &sizes, Layout::WholeTensors, distributed::DEFAULT_BUCKET)?;
/// // Each rank's optimiser holds state for its own tensors only (ZeRO-1).
/// let params: Vec<Param> = sizes.iter().map(|&n| Param::from(n)).collect();
/// let spec: OptimizerSpec = "adam(lr=0.001)".parse()?;
/// let mut opt = build::<f32>(&spec, dp.shard_of(&params))?;
/// let mut theta = vec![0.0f32; 7850];
/// let grads = vec![0.1f32; 7850]; // this rank's gradient of its share of the batch
/// // Equal shares: every rank's gradient weighs 1/N.
/// let w = vec![1.0 / dp.world().size() as f32; dp.world().size()];
/// dp.step_sharded(&mut *opt, &mut theta, &grads, &w)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DataParallel {
    world: World,
    total: usize,
    bucket: usize,
    /// Element bounds of the ranks' shards, `size + 1` of them.
    bounds: Vec<usize>,
    /// Tensor bounds of the shards (whole-tensor layout), `size + 1`.
    tensor_bounds: Option<Vec<usize>>,
    /// The other ranks' values of this rank's range of one bucket.
    recv: Vec<f32>,
    /// This rank's shard of the sum (whole shard, all buckets); also the
    /// all-gather's send buffer (MPI may not send from the buffer it
    /// receives into).
    reduced: Vec<f32>,
    /// Each rank's part of the current bucket: counts and offsets in it.
    counts: Vec<i32>,
    displs: Vec<i32>,
    /// Where the reduce-scatter receives each rank's copy of this rank's
    /// part: counts and offsets in `recv`. Kept here rather than allocated
    /// for every bucket of every step.
    recv_counts: Vec<i32>,
    recv_displs: Vec<i32>,
    stats: CommStats,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("world", &self.world)
            .field("total", &self.total)
            .field("bucket", &self.bucket)
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

/// The contiguous cut of `sizes` into `n` runs of whole tensors whose sizes
/// come closest to equal: tensor bounds, `n + 1` of them. Greedy: run `r`
/// ends at the tensor boundary nearest to `(r + 1)·total/n`, never leaving a
/// later run without a tensor while tensors remain.
pub fn whole_tensor_bounds(sizes: &[usize], n: usize) -> Vec<usize> {
    let starts = downhill::optim::starts(sizes);
    let total = *starts.last().unwrap_or(&0);
    let mut bounds = vec![0usize];
    for r in 1..n {
        let target = (total as u128 * r as u128 / n as u128) as usize;
        let prev = *bounds.last().unwrap_or(&0);
        // Leave at least one tensor for each later run when possible.
        let max_b = sizes.len().saturating_sub(n - r).max(prev);
        let mut best = prev;
        for t in prev..=max_b {
            if starts[t].abs_diff(target) < starts[best].abs_diff(target) {
                best = t;
            }
        }
        if best == prev && prev < max_b {
            best = prev + 1;
        }
        bounds.push(best);
    }
    bounds.push(sizes.len());
    bounds
}

impl DataParallel {
    /// A reducer for flat buffers holding tensors of `sizes` (in order),
    /// cut into buckets of `bucket` elements. With [`Layout::WholeTensors`]
    /// every rank must own at least one tensor.
    pub fn new(
        world: World,
        sizes: &[usize],
        layout: Layout,
        bucket: usize,
    ) -> Result<Self, String> {
        let n = world.size();
        let starts = downhill::optim::starts(sizes);
        let total = *starts.last().unwrap_or(&0);
        let bucket = bucket.clamp(1, i32::MAX as usize / n.max(1));
        let (bounds, tensor_bounds): (Vec<usize>, Option<Vec<usize>>) = match layout {
            Layout::Even => (
                (0..=n)
                    .map(|r| (total as u128 * r as u128 / n as u128) as usize)
                    .collect(),
                None,
            ),
            Layout::WholeTensors => {
                if sizes.len() < n {
                    return Err(format!(
                        "sharding by whole tensors needs a tensor for every rank: {} tensors, {n} ranks",
                        sizes.len()
                    ));
                }
                let tb = whole_tensor_bounds(sizes, n);
                (tb.iter().map(|&t| starts[t]).collect(), Some(tb))
            }
        };
        let mine = bounds[world.rank() + 1] - bounds[world.rank()];
        Ok(DataParallel {
            world,
            total,
            bucket,
            bounds,
            tensor_bounds,
            recv: Vec::new(),
            reduced: vec![0.0; mine],
            counts: vec![0; n],
            displs: vec![0; n],
            recv_counts: vec![0; n],
            recv_displs: vec![0; n],
            stats: CommStats::default(),
        })
    }

    /// The ranks.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The element range of `rank`'s shard.
    pub fn shard_range_of(&self, rank: usize) -> Range<usize> {
        self.bounds[rank]..self.bounds[rank + 1]
    }

    /// This rank's shard: the elements whose sum it computes, and under
    /// ZeRO-1 the parameters it updates.
    pub fn shard_range(&self) -> Range<usize> {
        self.shard_range_of(self.world.rank())
    }

    /// The tensors of this rank's shard (whole-tensor layout only).
    pub fn shard_tensors(&self) -> Option<Range<usize>> {
        let r = self.world.rank();
        self.tensor_bounds.as_ref().map(|b| b[r]..b[r + 1])
    }

    /// The tensors of `rank`'s shard (whole-tensor layout only).
    pub fn shard_tensors_of(&self, rank: usize) -> Option<Range<usize>> {
        self.tensor_bounds.as_ref().map(|b| b[rank]..b[rank + 1])
    }

    /// The per-tensor items (sizes, [`downhill::optim::Param`]s) of this
    /// rank's tensors: what to build its shard's optimiser over. The whole
    /// list under [`Layout::Even`].
    pub fn shard_of<'a, X>(&self, per_tensor: &'a [X]) -> &'a [X] {
        match self.shard_tensors() {
            Some(r) => &per_tensor[r],
            None => per_tensor,
        }
    }

    /// Time and traffic so far.
    pub fn stats(&self) -> CommStats {
        self.stats
    }

    /// Elements in the buffers this reducer was made for.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the buffers are empty.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn check_len(&self, what: &str, len: usize) -> Result<(), String> {
        if len != self.total {
            return Err(format!(
                "data-parallel: the {what} buffer has {len} elements, expected {}",
                self.total
            ));
        }
        Ok(())
    }

    /// This rank's shard of `Σ_r weights[r]·grads_r`, the sum taken in rank
    /// order. Every rank calls it with its own `grads` and the same
    /// `weights` (one per rank, e.g. each rank's share of the batch).
    pub fn reduce_scatter(&mut self, grads: &[f32], weights: &[f32]) -> Result<&mut [f32], String> {
        self.check_len("gradient", grads.len())?;
        let n = self.world.size();
        if weights.len() != n {
            return Err(format!(
                "data-parallel: {} weights for {n} ranks",
                weights.len()
            ));
        }
        let t0 = Instant::now();
        let mine = self.shard_range();
        let mut start = 0;
        while start < self.total {
            let end = (start + self.bucket).min(self.total);
            let c_me = self.split_bucket(start, end);
            self.recv.resize(c_me * n, 0.0);
            for r in 0..n {
                self.recv_counts[r] = c_me as i32;
                self.recv_displs[r] = (r * c_me) as i32;
            }
            {
                let send = Partition::new(&grads[start..end], &self.counts[..], &self.displs[..]);
                let mut recv = PartitionMut::new(
                    &mut self.recv[..],
                    &self.recv_counts[..],
                    &self.recv_displs[..],
                );
                self.world.comm().all_to_all_varcount_into(&send, &mut recv);
            }
            self.stats.calls += 1;
            self.stats.bytes_received += ((n - 1) * c_me * 4) as u64;
            if c_me > 0 {
                let at = start.max(mine.start) - mine.start;
                let out = &mut self.reduced[at..at + c_me];
                let w0 = weights[0];
                for (o, x) in out.iter_mut().zip(&self.recv[..c_me]) {
                    *o = w0 * x;
                }
                for (r, &w) in weights.iter().enumerate().skip(1) {
                    for (o, x) in out.iter_mut().zip(&self.recv[r * c_me..(r + 1) * c_me]) {
                        *o += w * x;
                    }
                }
            }
            start = end;
        }
        self.stats.seconds += t0.elapsed().as_secs_f64();
        Ok(&mut self.reduced)
    }

    /// Fills all of `buf` from the ranks' shards: each rank's own range of
    /// `buf` is sent to all the others (bucket by bucket). It is copied
    /// through the buffer of [`DataParallel::reduced`], which it overwrites.
    pub fn all_gather(&mut self, buf: &mut [f32]) -> Result<(), String> {
        self.check_len("gathered", buf.len())?;
        let mine = self.shard_range();
        self.reduced.copy_from_slice(&buf[mine]);
        self.gather_reduced(buf);
        Ok(())
    }

    /// Sets `counts` and `displs` to what each rank owns of the bucket
    /// `start..end`, as a partition of it, and returns this rank's count.
    fn split_bucket(&mut self, start: usize, end: usize) -> usize {
        for r in 0..self.world.size() {
            let s = self.bounds[r].clamp(start, end);
            let e = self.bounds[r + 1].clamp(start, end);
            self.counts[r] = (e - s) as i32;
            self.displs[r] = (s - start) as i32;
        }
        self.counts[self.world.rank()] as usize
    }

    /// The all-gather of [`DataParallel::all_gather`], sending `self.reduced`.
    fn gather_reduced(&mut self, buf: &mut [f32]) {
        let t0 = Instant::now();
        let mine = self.shard_range();
        let mut start = 0;
        while start < self.total {
            let end = (start + self.bucket).min(self.total);
            let c_me = self.split_bucket(start, end);
            let at = start.max(mine.start).min(mine.end) - mine.start;
            {
                let send = &self.reduced[at..at + c_me];
                let mut recv =
                    PartitionMut::new(&mut buf[start..end], &self.counts[..], &self.displs[..]);
                self.world.comm().all_gather_varcount_into(send, &mut recv);
            }
            self.stats.calls += 1;
            self.stats.bytes_received += ((end - start - c_me) * 4) as u64;
            start = end;
        }
        self.stats.seconds += t0.elapsed().as_secs_f64();
    }

    /// Every rank's `out` becomes `Σ_r weights[r]·grads_r`, bit-identical on
    /// every rank (see the type's doc). `out` may not be `grads`.
    pub fn all_reduce(
        &mut self,
        grads: &[f32],
        weights: &[f32],
        out: &mut [f32],
    ) -> Result<(), String> {
        self.check_len("output", out.len())?;
        self.reduce_scatter(grads, weights)?;
        self.gather_reduced(out);
        Ok(())
    }

    /// [`DataParallel::all_reduce`] into the gradient buffer itself: every
    /// rank's `grads` becomes the sum. Saves the second buffer.
    pub fn all_reduce_in_place(
        &mut self,
        grads: &mut [f32],
        weights: &[f32],
    ) -> Result<(), String> {
        self.reduce_scatter(grads, weights)?;
        self.gather_reduced(grads);
        Ok(())
    }

    /// One ZeRO-1 step: reduce-scatter the gradients, step this rank's
    /// tensors with `opt` (built over [`DataParallel::shard_of`] the
    /// parameters, so it holds state for them alone), and all-gather the
    /// parameters, so every rank again holds all of them. Needs
    /// [`Layout::WholeTensors`]. Every rank steps or none does (see
    /// [`DataParallel::step_reduced`]).
    pub fn step_sharded(
        &mut self,
        opt: &mut dyn Optimizer<f32>,
        params: &mut [f32],
        grads: &[f32],
        weights: &[f32],
    ) -> Result<StepOutcome, String> {
        if self.tensor_bounds.is_none() {
            return Err("a sharded step needs the whole-tensor layout".into());
        }
        self.check_len("parameter", params.len())?;
        self.reduce_scatter(grads, weights)?;
        self.step_reduced(opt, params)
    }

    /// The second half of [`DataParallel::step_sharded`], for a caller that
    /// works on the reduced gradient in between (clipping it): steps this
    /// rank's tensors from [`DataParallel::reduced`] and all-gathers the
    /// parameters.
    ///
    /// Every rank steps or none does. A rank sees only its own shard of the
    /// gradient, so each first checks it (non-finite values, per `opt`'s
    /// [`downhill::optim::NonFinite`] policy, then [`Optimizer::ready`]) and
    /// the verdicts are gathered before anything changes. If any rank
    /// refuses, every rank returns the same outcome naming that rank: the
    /// same error, or the same [`StepOutcome::Skipped`] (the tensor index is
    /// the whole model's), and no parameter or state has changed anywhere.
    pub fn step_reduced(
        &mut self,
        opt: &mut dyn Optimizer<f32>,
        params: &mut [f32],
    ) -> Result<StepOutcome, String> {
        let Some(tensors) = self.shard_tensors() else {
            return Err("a sharded step needs the whole-tensor layout".into());
        };
        self.check_len("parameter", params.len())?;
        // This rank's verdict: [kind, tensor, index, value], kind 0 to go
        // on, 1 for a non-finite gradient, 2 for any other refusal.
        let mut why = String::new();
        let verdict: [f64; 4] = match screen_flat(&*opt, &self.reduced) {
            Ok(Some(StepOutcome::Skipped { param, index })) => {
                [1.0, (tensors.start + param) as f64, index as f64, f64::NAN]
            }
            Err(downhill::Error::NonFiniteGradient {
                param,
                index,
                value,
            }) => [1.0, (tensors.start + param) as f64, index as f64, value],
            Err(e) => {
                why = e.to_string();
                [2.0, 0.0, 0.0, 0.0]
            }
            Ok(_) => match opt.ready() {
                Ok(()) => [0.0; 4],
                Err(e) => {
                    why = e.to_string();
                    [2.0, 0.0, 0.0, 0.0]
                }
            },
        };
        let all = self.world.all_gather_f64(&verdict);
        let first = |kind: f64| all.chunks(4).position(|v| v[0] == kind);
        if let Some(r) = first(2.0) {
            let reasons = self.world.all_gather_bytes(why.as_bytes());
            return Err(format!(
                "rank {r}: {}; no rank stepped",
                String::from_utf8_lossy(&reasons[r])
            ));
        }
        if let Some(r) = first(1.0) {
            let v = &all[4 * r..4 * r + 4];
            let (param, index) = (v[1] as usize, v[2] as usize);
            return match opt.non_finite() {
                NonFinite::Skip => Ok(StepOutcome::Skipped { param, index }),
                _ => Err(format!(
                    "rank {r}: {}; no rank stepped",
                    downhill::Error::NonFiniteGradient {
                        param,
                        index,
                        value: v[3],
                    }
                )),
            };
        }
        let range = self.shard_range();
        opt.apply_flat(&mut params[range], &self.reduced);
        self.all_gather(params)?;
        Ok(StepOutcome::Stepped)
    }

    /// This rank's shard of the sum from the last reduce-scatter (until an
    /// all-gather overwrites it).
    pub fn reduced(&mut self) -> &mut [f32] {
        &mut self.reduced
    }

    /// [`DataParallel::reduced`], read-only.
    pub fn reduced_ref(&self) -> &[f32] {
        &self.reduced
    }
}

#[cfg(test)]
mod tests {
    use super::whole_tensor_bounds;

    #[test]
    fn whole_tensor_cuts_are_contiguous_and_leave_no_rank_empty() {
        // The MLP 784-1000-1000-10.
        let mlp = [784_000, 1000, 1_000_000, 1000, 10_000, 10];
        assert_eq!(whole_tensor_bounds(&mlp, 1), [0, 6]);
        assert_eq!(whole_tensor_bounds(&mlp, 2), [0, 2, 6]);
        let b3 = whole_tensor_bounds(&mlp, 3);
        assert_eq!(b3.len(), 4);
        assert!(b3.windows(2).all(|w| w[0] < w[1]), "{b3:?}");
        // As many ranks as tensors: one each.
        assert_eq!(whole_tensor_bounds(&[5, 1, 1], 3), [0, 1, 2, 3]);
        // One huge tensor first: the later ranks still get one each.
        assert_eq!(whole_tensor_bounds(&[100, 1, 1, 1], 3), [0, 1, 2, 4]);
    }
}
