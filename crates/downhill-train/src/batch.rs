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
        for c in rows.chunks(chunk) {
            let st = self.run(net, data, c, Pass::Train, rng)?;
            let w = c.len() as f32 / rows.len() as f32;
            for (a, g) in acc.iter_mut().zip(net.grads()) {
                *a += w * g;
            }
            total.merge(st);
        }
        net.params_and_grads_mut().1.copy_from_slice(acc);
        Ok(total)
    }
}
