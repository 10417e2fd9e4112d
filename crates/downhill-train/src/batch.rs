//! Mini-batches gathered into buffers that are reused every step, and the
//! gradient of a batch of any size (large ones in chunks).

use downhill::Rng;
use downhill_data::{CsrBatch, Dataset, Features};
use downhill_nn::{BatchStats, Input, Network, NnError};

/// Reusable buffers for one batch.
#[derive(Debug, Default)]
pub struct Batcher {
    x: Vec<f32>,
    y: Vec<u32>,
    csr: CsrBatch,
    /// A chunked sparse batch's touched first-weight rows, and scratch to merge them.
    rows: Vec<u32>,
    merged: Vec<u32>,
}

/// Which pass to run over a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Forward and backward, dropout on.
    Train,
    /// Forward only, dropout off.
    Evaluate,
}

impl Batcher {
    /// Gathers the examples `rows` of `data` into the reused buffers and
    /// returns them as a network input with their labels.
    fn gather(
        &mut self,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<(Input<'_, f32>, &[u32]), NnError> {
        let gather_err =
            |e: downhill_data::DataError| NnError::Batch(format!("gathering a batch: {e}"));
        match data.features() {
            Features::Dense(_) => {
                let dim = data.dim();
                self.x.resize(rows.len() * dim, 0.0);
                self.y.resize(rows.len(), 0);
                data.gather_dense(rows, &mut self.x, &mut self.y)
                    .map_err(gather_err)?;
                Ok((
                    Input::Dense {
                        values: &self.x,
                        rows: rows.len(),
                        dim,
                    },
                    &self.y,
                ))
            }
            Features::Sparse(_) => {
                self.csr.fill(data, rows).map_err(gather_err)?;
                let input = Input::Sparse {
                    indptr: self.csr.indptr(),
                    indices: self.csr.indices(),
                    values: self.csr.values(),
                    dim: self.csr.dim(),
                };
                Ok((input, self.csr.labels()))
            }
        }
    }

    /// Runs `pass` over the examples `rows` of `data`.
    pub fn run(
        &mut self,
        net: &mut Network<f32>,
        data: &Dataset,
        rows: &[usize],
        pass: Pass,
        rng: &mut Rng,
    ) -> Result<BatchStats, NnError> {
        let (input, labels) = self.gather(data, rows)?;
        match pass {
            Pass::Train => net.loss_and_grad(input, labels, rng),
            Pass::Evaluate => net.evaluate(input, labels),
        }
    }

    /// The output-layer values of the examples `rows` (evaluation mode),
    /// `[rows, outputs]` row-major.
    pub fn logits<'n>(
        &mut self,
        net: &'n mut Network<f32>,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<&'n [f32], NnError> {
        let (input, _) = self.gather(data, rows)?;
        net.logits(input)
    }

    /// Loss and accuracy of `data` in evaluation mode, in chunks of `chunk`.
    pub fn evaluate(
        &mut self,
        net: &mut Network<f32>,
        data: &Dataset,
        chunk: usize,
    ) -> Result<BatchStats, NnError> {
        let mut total = BatchStats::default();
        let rows: Vec<usize> = (0..data.len()).collect();
        let mut unused = Rng::new(0);
        for c in rows.chunks(chunk.max(1)) {
            total.merge(self.run(net, data, c, Pass::Evaluate, &mut unused)?);
        }
        Ok(total)
    }

    /// Fills the network's gradient with that of the mean loss over `rows`
    /// and returns the batch totals. Batches larger than `chunk` are split and
    /// the chunk gradients averaged with weights by size (in `acc`), so batch
    /// gradient descent over a whole data set needs only a chunk's activations.
    /// A row-sparse gradient stays row-sparse: the network's
    /// [`Network::touched_rows`] are then the union of the chunks'.
    pub fn gradient(
        &mut self,
        net: &mut Network<f32>,
        data: &Dataset,
        rows: &[usize],
        chunk: usize,
        rng: &mut Rng,
        acc: &mut Vec<f32>,
    ) -> Result<BatchStats, NnError> {
        if rows.len() <= chunk {
            return self.run(net, data, rows, Pass::Train, rng);
        }
        acc.clear();
        acc.resize(net.params().len(), 0.0);
        let mut total = BatchStats::default();
        let mut row_sparse = true;
        self.rows.clear();
        for c in rows.chunks(chunk) {
            let st = self.run(net, data, c, Pass::Train, rng)?;
            let w = c.len() as f32 / rows.len() as f32;
            for (a, g) in acc.iter_mut().zip(net.grads()) {
                *a += w * g;
            }
            match net.touched_rows() {
                Some(t) if row_sparse => merge_sorted(&mut self.rows, t, &mut self.merged),
                _ => row_sparse = false,
            }
            total.merge(st);
        }
        net.set_grads(acc, row_sparse.then_some(&self.rows[..]))?;
        Ok(total)
    }
}

/// `into ← into ∪ more`, both sorted without duplicates (via `scratch`).
fn merge_sorted(into: &mut Vec<u32>, more: &[u32], scratch: &mut Vec<u32>) {
    scratch.clear();
    let (mut i, mut j) = (0, 0);
    while i < into.len() && j < more.len() {
        let (a, b) = (into[i], more[j]);
        scratch.push(a.min(b));
        i += usize::from(a <= b);
        j += usize::from(b <= a);
    }
    scratch.extend_from_slice(&into[i..]);
    scratch.extend_from_slice(&more[j..]);
    std::mem::swap(into, scratch);
}

#[cfg(test)]
mod tests {
    use super::merge_sorted;

    #[test]
    fn merging_sorted_rows_keeps_them_sorted_and_distinct() {
        let (mut a, mut s) = (vec![1, 4, 9], Vec::new());
        merge_sorted(&mut a, &[0, 4, 5, 12], &mut s);
        assert_eq!(a, [0, 1, 4, 5, 9, 12]);
        merge_sorted(&mut a, &[], &mut s);
        assert_eq!(a, [0, 1, 4, 5, 9, 12]);
        let mut e = Vec::new();
        merge_sorted(&mut e, &[3, 7], &mut s);
        assert_eq!(e, [3, 7]);
    }
}
