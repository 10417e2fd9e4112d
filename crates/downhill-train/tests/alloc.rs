//! A training step allocates nothing once its buffers have grown, with lazy
//! row-sparse updates as with dense ones, by epochs and by steps.
//!
//! A counting global allocator records every allocation in the process (all
//! threads). An observer reads the count after every step; within an epoch
//! after the first, consecutive steps must not differ. (An epoch's start and
//! end allocate: the shuffled order, the evaluation, the records.) Every
//! example has the same number of features, so no batch after the first
//! needs more room than the first did.

use downhill::Rng;
use downhill_data::{Csr, DataSplit, Dataset, Features};
use downhill_testenv::allocations;
use downhill_train::{EpochRecord, Observer, SparseUpdates, TrainConfig, Trainer};

#[global_allocator]
static GLOBAL: downhill_testenv::Counting = downhill_testenv::Counting;

/// Records the allocation count after each step, without allocating.
struct Counter {
    /// (epoch, count) after every step; room reserved up front.
    after_step: Vec<(usize, usize)>,
}

impl Observer for Counter {
    fn step(&mut self, epoch: usize, _batch: usize, _loss: f64) {
        if self.after_step.len() < self.after_step.capacity() {
            self.after_step.push((epoch, allocations()));
        }
    }
    fn epoch(&mut self, _record: &EpochRecord, _epochs: usize) {}
}

/// `n` examples over `dim` features, each with exactly `k` distinct ones.
fn data(n: usize, dim: usize, k: usize) -> DataSplit {
    let mut rng = Rng::new(9);
    let (mut indptr, mut indices, mut values, mut labels) =
        (vec![0], Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let mut row: Vec<u32> = Vec::new();
        while row.len() < k {
            let j = rng.below(dim as u64) as u32;
            if !row.contains(&j) {
                row.push(j);
            }
        }
        row.sort_unstable();
        labels.push(row.iter().filter(|&&j| j % 2 == 0).count() as u32 % 3);
        indices.extend_from_slice(&row);
        values.extend((0..k).map(|_| rng.uniform_f32()));
        indptr.push(indices.len());
    }
    let csr = Csr::new(indptr, indices, values, dim).unwrap();
    let names = (0..3).map(|c| c.to_string()).collect();
    DataSplit {
        train: Dataset::new("sparse", Features::Sparse(csr), labels, names).unwrap(),
        valid: None,
        test: None,
    }
}

/// Allocations per step after the first epoch, for each step. The trainer
/// is returned, not dropped: its worker threads would exit in the
/// background, allocating while the next run counts.
fn allocations_per_step(cfg: TrainConfig, data: DataSplit) -> (Vec<usize>, Trainer) {
    let mut t = Trainer::with_data(cfg, data, None).unwrap();
    let mut c = Counter {
        after_step: Vec::with_capacity(10_000),
    };
    t.run(&mut c).unwrap();
    let per_step = c
        .after_step
        .windows(2)
        .filter(|w| w[0].0 > 0 && w[0].0 == w[1].0)
        .map(|w| w[1].1 - w[0].1)
        .collect();
    (per_step, t)
}

/// One test function, because the harness runs tests on parallel threads and
/// a starting test allocates (its name, output capture) while another counts.
#[test]
fn training_steps_on_sparse_data_allocate_nothing_after_the_first_epoch() {
    let mut finished = Vec::new();
    for (model, optimizer, updates, clip) in [
        ("logreg", "adam(lr=0.01)", SparseUpdates::Lazy, None),
        (
            "logreg:input-dropout=0.3",
            "sgd(lr=0.1,momentum=0.9)",
            SparseUpdates::Lazy,
            Some(0.5),
        ),
        ("logreg", "adagrad(lr=0.1)", SparseUpdates::Lazy, None),
        ("logreg", "adam(lr=0.01)", SparseUpdates::Dense, None),
        ("logreg", "adam(lr=0.01)", SparseUpdates::Dense, Some(0.5)),
    ] {
        let cfg = TrainConfig {
            data: "sparse".into(),
            model: model.into(),
            optimizer: optimizer.into(),
            sparse_updates: updates,
            clip_norm: clip,
            clip_value: clip,
            batch_size: 32,
            epochs: 3,
            threads: Some(2),
            ..TrainConfig::default()
        };
        let (per_step, t) = allocations_per_step(cfg, data(1000, 5000, 12));
        assert_eq!(t.updates().lazy, updates == SparseUpdates::Lazy);
        finished.push(t);
        assert!(
            per_step.len() > 50,
            "{model} {optimizer}: {} steps",
            per_step.len()
        );
        assert!(
            per_step.iter().all(|&a| a == 0),
            "{model} {optimizer} {updates:?}: allocations per step {per_step:?}"
        );
    }
    // By steps, a data epoch starts inside an evaluation period (32 batches
    // an epoch, a period of 50 steps): its shuffled order is made in the
    // buffer of the previous one.
    for updates in [SparseUpdates::Lazy, SparseUpdates::Dense] {
        let cfg = TrainConfig {
            data: "sparse".into(),
            optimizer: "adam(lr=0.01)".into(),
            sparse_updates: updates,
            batch_size: 32,
            steps: Some(150),
            eval_every: Some(50),
            threads: Some(2),
            ..TrainConfig::default()
        };
        let (per_step, t) = allocations_per_step(cfg, data(1000, 5000, 12));
        assert_eq!(t.batches_per_epoch(), 32);
        finished.push(t);
        assert_eq!(per_step.len(), 2 * 49, "{updates:?}");
        assert!(
            per_step.iter().all(|&a| a == 0),
            "by steps, {updates:?}: allocations per step {per_step:?}"
        );
    }
}
