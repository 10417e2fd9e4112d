//! The passes over a batch: checking it, reserving the work buffers, forward,
//! loss, L2 penalty and backward, and the dropout and touched-row helpers.

use super::*;

impl<T: Real> Network<T> {
    /// Checks a batch against the network; returns the number of samples.
    pub(super) fn validate(
        &self,
        x: &Input<'_, T>,
        labels: Option<&[u32]>,
    ) -> Result<usize, NnError> {
        let want = self.input.len();
        let rows = match *x {
            Input::Dense { values, rows, dim } => {
                if dim != want {
                    return Err(NnError::Batch(format!(
                        "dim is {dim}, the network expects {want}"
                    )));
                }
                // Checked: a wrapped product could match a short slice and
                // size every buffer of the step from the wrong row count.
                if rows.checked_mul(dim) != Some(values.len()) {
                    return Err(NnError::Batch(format!(
                        "values has {} elements, expected rows·dim = {rows}·{dim}",
                        values.len(),
                    )));
                }
                rows
            }
            Input::Sparse {
                indptr,
                indices,
                values,
                dim,
            } => {
                if self.lm.is_some() {
                    return Err(NnError::Batch(format!(
                        "`{}` reads token ids, not sparse features",
                        self.spec
                    )));
                }
                if !matches!(self.layers[0].op, Op::Dense { .. }) {
                    return Err(NnError::Batch(format!(
                        "sparse input needs a first dense layer; `{}` starts with a convolution",
                        self.spec
                    )));
                }
                if dim != want {
                    return Err(NnError::Batch(format!(
                        "dim is {dim}, the network expects {want}"
                    )));
                }
                if indptr.is_empty() {
                    return Err(NnError::Batch(
                        "indptr is empty; it needs rows + 1 entries".into(),
                    ));
                }
                if indptr.windows(2).any(|w| w[1] < w[0]) {
                    return Err(NnError::Batch("indptr must be non-decreasing".into()));
                }
                let end = indptr[indptr.len() - 1];
                if end > indices.len() || end > values.len() {
                    return Err(NnError::Batch(format!(
                        "indptr ends at {end}, but indices has {} and values {} elements",
                        indices.len(),
                        values.len()
                    )));
                }
                if let Some(&j) = indices[indptr[0]..end].iter().find(|&&j| j as usize >= dim) {
                    return Err(NnError::Batch(format!(
                        "feature index {j} is out of range for dim {dim}"
                    )));
                }
                indptr.len() - 1
            }
        };
        if rows == 0 {
            return Err(NnError::Batch("the batch has no samples".into()));
        }
        if let Some(labels) = labels {
            if labels.len() != rows {
                return Err(NnError::Batch(format!(
                    "{} labels for {rows} samples",
                    labels.len()
                )));
            }
            if let Some(&l) = labels.iter().find(|&&l| l as usize >= self.classes) {
                return Err(NnError::Batch(format!(
                    "label {l} is out of range for {} classes",
                    self.classes
                )));
            }
        }
        Ok(rows)
    }

    /// Grows every buffer to hold `rows` samples (and `nnz` sparse input values).
    pub(super) fn reserve(&mut self, rows: usize, nnz: usize, input_dropout: bool) {
        if input_dropout {
            let need = match self.input {
                _ if nnz > 0 => nnz,
                s => rows * s.len(),
            };
            if self.in_buf.len() < need {
                self.in_buf.resize(need, T::zero());
            }
        }
        if rows <= self.cap && self.scratch.fits_pool() {
            return;
        }
        let rows = rows.max(self.cap);
        self.cap = rows;
        let (mut col, mut z, mut pad) = (0, 0, 0);
        for layer in self.layers.iter_mut() {
            layer.out.resize(rows * layer.out_len, T::zero());
            if let Op::ConvPool { g, chunk, .. } = &layer.op {
                layer.arg.resize(rows * layer.out_len, 0);
                col = col.max((*chunk).min(rows) * g.positions() * g.k());
                z = z.max((*chunk).min(rows) * g.positions() * g.c_out);
                pad = pad.max(g.padded_len());
            }
        }
        self.scratch.reserve(col, z, pad);
        self.zbuf.resize(rows * self.outputs, T::zero());
    }

    /// Grows the buffers only training needs (gradients, dropout masks) to `rows`
    /// samples, so that evaluating a large batch does not allocate them.
    pub(super) fn reserve_training(&mut self, rows: usize) {
        if rows <= self.train_cap {
            return;
        }
        self.train_cap = rows;
        let mut gmax = 0;
        let (mut dw_part, mut db_part) = (0, 0);
        for layer in self.layers.iter_mut() {
            let aux = layer.aux_len();
            layer.aux.resize(rows * aux, T::zero());
            gmax = gmax.max(layer.out_len);
            if let Op::ConvPool { g, chunk, .. } = &layer.op {
                let chunks = rows.div_ceil(*chunk);
                dw_part = dw_part.max(chunks * g.k() * g.c_out);
                db_part = db_part.max(chunks * g.c_out);
            }
        }
        for g in &mut self.gbuf {
            g.resize(rows * gmax, T::zero());
        }
        self.dw_part.resize(dw_part, T::zero());
        self.db_part.resize(db_part, T::zero());
        self.dzbuf.resize(rows * self.outputs, T::zero());
    }

    /// Runs every layer forward; dropout (input and hidden) only when `rng` is given.
    pub(super) fn forward(&mut self, x: &Input<'_, T>, rows: usize, mut rng: Option<&mut Rng>) {
        let nnz = match *x {
            Input::Sparse { indptr, .. } => indptr[rows] - indptr[0],
            Input::Dense { .. } => 0,
        };
        let in_p = self.spec.input_dropout;
        let in_drop = rng.is_some() && in_p > 0.0;
        self.reserve(rows, nnz, in_drop);
        // Input dropout writes a scaled copy; the original batch stays untouched.
        if in_drop {
            let rng = rng.as_deref_mut().expect("in_drop implies rng");
            let src = match *x {
                Input::Dense { values, .. } => values,
                Input::Sparse { indptr, values, .. } => &values[indptr[0]..indptr[rows]],
            };
            dropout_into(in_p, src, &mut self.in_buf[..src.len()], None, rng);
        }
        let input = input_src(x, rows, &self.in_buf, in_drop);
        let params = &self.params[..];
        for i in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(i);
            let layer = &mut rest[0];
            let src = match before.last() {
                None => input,
                Some(prev) => Src::Dense(&prev.out[..rows * prev.out_len]),
            };
            let out = &mut layer.out[..rows * layer.out_len];
            match (&layer.op, src) {
                (
                    &Op::Dense {
                        n_in,
                        n_out,
                        act,
                        w,
                        b,
                        fm_in,
                    },
                    src,
                ) => {
                    let wt = &params[w..w + n_in * n_out];
                    let wt_t = Mat::t(wt, n_out);
                    match src {
                        Src::Dense(xv) => {
                            let xt = if fm_in {
                                Mat::n(xv, rows)
                            } else {
                                Mat::t(xv, n_in)
                            };
                            gemm(n_out, rows, n_in, wt_t, xt, out, rows, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        }
                        Src::Sparse(csr) => layers::sparse_matmul_fm(csr, wt, n_out, rows, out),
                    }
                    layers::bias_act_fm(out, &params[b..b + n_out], rows, act);
                }
                (
                    Op::ConvPool {
                        g,
                        pg,
                        act,
                        w,
                        b,
                        chunk,
                    },
                    Src::Dense(xv),
                ) => {
                    let wt = &params[*w..*w + g.k() * g.c_out];
                    let bias = &params[*b..*b + g.c_out];
                    let arg = &mut layer.arg[..rows * layer.out_len];
                    let sc = &self.scratch;
                    layers::conv_pool_forward(
                        g, pg, *chunk, xv, rows, wt, bias, *act, sc, out, arg,
                    );
                }
                (&Op::Dropout { p }, Src::Dense(xv)) => match rng.as_deref_mut() {
                    Some(rng) => dropout_into(p, xv, out, Some(&mut layer.aux[..xv.len()]), rng),
                    None => out.copy_from_slice(xv),
                },
                (_, Src::Sparse(_)) => {
                    unreachable!("validate() admits sparse input only into a dense layer")
                }
            }
        }
    }

    /// The output layer's values for the last forward pass, sample-major.
    pub(super) fn last_out(&mut self, rows: usize) -> &[T] {
        let last = self
            .layers
            .last()
            .expect("a network has at least one layer");
        let k = self.outputs;
        layers::transpose(&last.out[..rows * k], k, rows, &mut self.zbuf[..rows * k]);
        &self.zbuf[..rows * k]
    }

    /// Loss and accuracy of the current outputs; with `grad`, also writes the
    /// gradient of the mean loss with respect to the outputs into `gbuf[0]`.
    pub(super) fn loss(&mut self, labels: &[u32], rows: usize, grad: bool) -> BatchStats {
        let kind = self.spec.loss;
        let k = self.outputs;
        let last = self
            .layers
            .last()
            .expect("a network has at least one layer");
        // The output layer is feature-major; the loss works a sample at a time.
        layers::transpose(&last.out[..rows * k], k, rows, &mut self.zbuf[..rows * k]);
        let z = &self.zbuf[..rows * k];
        let scale = T::from_f64(1.0 / rows as f64);
        let mut dz = if grad {
            Some(&mut self.dzbuf[..rows * k])
        } else {
            None
        };
        let mut stats = BatchStats {
            count: rows,
            ..BatchStats::default()
        };
        for (r, &label) in labels.iter().enumerate() {
            let zr = &z[r * k..(r + 1) * k];
            let dr = dz.as_deref_mut().map(|d| &mut d[r * k..(r + 1) * k]);
            let y = label as usize;
            let (loss, correct) = match kind {
                LossKind::CrossEntropy => {
                    let (mut best, mut arg) = (zr[0], 0);
                    for (j, &v) in zr.iter().enumerate() {
                        if v > best {
                            (best, arg) = (v, j);
                        }
                    }
                    let sum: T = zr.iter().map(|&v| (v - best).exp()).sum();
                    let loss = f(sum.ln()) - f(zr[y] - best);
                    if let Some(dr) = dr {
                        let inv = scale / sum;
                        for (j, (d, &v)) in dr.iter_mut().zip(zr).enumerate() {
                            *d = (v - best).exp() * inv;
                            if j == y {
                                *d = *d - scale;
                            }
                        }
                    }
                    (loss, arg == y)
                }
                LossKind::Logistic => {
                    let v = f(zr[0]);
                    let t = y as f64;
                    // softplus(v) − t·v, written so exp never overflows.
                    let loss = v.max(0.0) - t * v + (-v.abs()).exp().ln_1p();
                    if let Some(dr) = dr {
                        let s = T::one() / (T::one() + (-zr[0]).exp());
                        dr[0] = (s - T::from_f64(t)) * scale;
                    }
                    (loss, (v > 0.0) == (y == 1))
                }
                LossKind::SquaredError => {
                    let mut loss = 0.0;
                    let target = |j: usize| {
                        if k == 1 {
                            y as f64
                        } else {
                            (j == y) as u8 as f64
                        }
                    };
                    for (j, &v) in zr.iter().enumerate() {
                        let e = f(v) - target(j);
                        loss += 0.5 * e * e;
                    }
                    if let Some(dr) = dr {
                        for (j, (d, &v)) in dr.iter_mut().zip(zr).enumerate() {
                            *d = (v - T::from_f64(target(j))) * scale;
                        }
                    }
                    let pred = if k == 1 {
                        (f(zr[0]) > 0.5) as usize
                    } else {
                        let mut arg = 0;
                        for (j, &v) in zr.iter().enumerate() {
                            if v > zr[arg] {
                                arg = j;
                            }
                        }
                        arg
                    };
                    (loss, pred == y)
                }
            };
            stats.loss_sum += loss;
            stats.correct += correct as usize;
        }
        if grad {
            layers::transpose(
                &self.dzbuf[..rows * k],
                rows,
                k,
                &mut self.gbuf[0][..rows * k],
            );
        }
        stats.penalty = self.penalty();
        stats
    }

    /// λ/2·‖W‖² over weight tensors.
    pub(super) fn penalty(&self) -> f64 {
        if self.spec.l2 == 0.0 {
            return 0.0;
        }
        let sq: f64 = self
            .tensors
            .iter()
            .filter(|t| t.kind == TensorKind::Weight)
            .map(|t| {
                self.params[t.range()]
                    .iter()
                    .map(|&w| f(w) * f(w))
                    .sum::<f64>()
            })
            .sum();
        0.5 * self.spec.l2 * sq
    }

    /// Backward pass from the loss gradient in `gbuf[0]`.
    pub(super) fn backward(&mut self, x: &Input<'_, T>, rows: usize) {
        let l2 = self.spec.l2;
        let in_dropped = self.spec.input_dropout > 0.0;
        let input = input_src(x, rows, &self.in_buf, in_dropped);
        self.touched_valid = false;
        let [g0, g1] = &mut self.gbuf;
        let (mut cur, mut nxt) = (g0, g1);
        let params = &self.params[..];
        let grads = &mut self.grads[..];
        for i in (0..self.layers.len()).rev() {
            let layer = &self.layers[i];
            let src = match i {
                0 => input,
                _ => {
                    let prev = &self.layers[i - 1];
                    Src::Dense(&prev.out[..rows * prev.out_len])
                }
            };
            let dout = &mut cur[..rows * layer.out_len];
            let y = &layer.out[..rows * layer.out_len];
            match (&layer.op, src) {
                (
                    &Op::Dense {
                        n_in,
                        n_out,
                        act,
                        w,
                        b,
                        fm_in,
                    },
                    src,
                ) => {
                    layers::act_backward_bias_fm(act, y, dout, &mut grads[b..b + n_out], rows);
                    // dZ is feature-major: [n_out, rows].
                    let dz = &*dout;
                    let dz_t = Mat::t(dz, rows);
                    let dw = &mut grads[w..w + n_in * n_out];
                    match src {
                        Src::Dense(xv) => {
                            // dW = Xᵀ·dZ, with X read in whichever layout it has.
                            let xt = if fm_in {
                                Mat::n(xv, rows)
                            } else {
                                Mat::t(xv, n_in)
                            };
                            gemm(n_in, n_out, rows, xt, dz_t, dw, n_out, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        }
                        Src::Sparse(csr) => {
                            if l2 > 0.0 || !self.first_grad_clean {
                                dw.fill(T::zero());
                            } else {
                                for &j in &self.touched {
                                    let j = j as usize;
                                    dw[j * n_out..(j + 1) * n_out].fill(T::zero());
                                }
                            }
                            mark_touched(csr, n_in, &mut self.row_bits, &mut self.touched);
                            self.touched_valid = l2 == 0.0;
                            // The sparse update walks samples: it wants dZ sample-major.
                            // (The first layer has no input gradient, so `nxt` is free.)
                            let dz_rows = &mut nxt[..rows * n_out];
                            layers::transpose(dz, n_out, rows, dz_rows);
                            layers::sparse_weight_grad(csr, dz_rows, n_out, dw);
                        }
                    }
                    if i > 0 {
                        let wt = &params[w..w + n_in * n_out];
                        let din = &mut nxt[..rows * n_in];
                        if fm_in {
                            // dXᵀ = W·dZᵀ, feature-major like the input.
                            let (a, b) = (Mat::n(wt, n_out), Mat::n(dz, rows));
                            gemm(n_in, rows, n_out, a, b, din, rows, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        } else {
                            // dX = dZ·Wᵀ, sample-major for the convolution below.
                            let a = Mat::t(wt, n_out);
                            gemm(rows, n_in, n_out, dz_t, a, din, n_in, false, Par::Pool)
                                .expect(SHAPES_CHECKED);
                        }
                    }
                }
                (
                    Op::ConvPool {
                        g,
                        pg,
                        act,
                        w,
                        b,
                        chunk,
                    },
                    Src::Dense(xv),
                ) => {
                    let wl = g.k() * g.c_out;
                    let (gw, gb) = grads[*w..*b + g.c_out].split_at_mut(wl);
                    layers::conv_pool_backward(
                        g,
                        pg,
                        *chunk,
                        *act,
                        xv,
                        y,
                        &layer.arg[..rows * layer.out_len],
                        dout,
                        rows,
                        &params[*w..*w + wl],
                        &self.scratch,
                        &mut self.dw_part,
                        &mut self.db_part,
                        (i > 0).then_some(&mut nxt[..]),
                        gw,
                        gb,
                    );
                }
                (Op::Dropout { .. }, Src::Dense(_)) => {
                    if i > 0 {
                        let mask = &layer.aux[..dout.len()];
                        for ((d, &g), &m) in nxt[..dout.len()].iter_mut().zip(dout.iter()).zip(mask)
                        {
                            *d = g * m;
                        }
                    }
                }
                (_, Src::Sparse(_)) => {
                    unreachable!("validate() admits sparse input only into a dense layer")
                }
            }
            std::mem::swap(&mut cur, &mut nxt);
        }
        if matches!(*x, Input::Dense { .. }) {
            // A dense batch writes every row of the first weight gradient.
            self.first_grad_clean = false;
        } else {
            self.first_grad_clean = l2 == 0.0;
        }
        if l2 > 0.0 {
            let l2 = T::from_f64(l2);
            for t in self.tensors.iter().filter(|t| t.kind == TensorKind::Weight) {
                for (g, &p) in self.grads[t.range()]
                    .iter_mut()
                    .zip(&self.params[t.range()])
                {
                    *g = *g + l2 * p;
                }
            }
        }
    }
}

/// Inverted dropout of `src` into `dst`: each value is zeroed with probability `p`
/// and otherwise scaled by 1/(1−p); the scale factors go to `mask` when given.
fn dropout_into<T: Real>(
    p: f64,
    src: &[T],
    dst: &mut [T],
    mut mask: Option<&mut [T]>,
    rng: &mut Rng,
) {
    let keep = T::from_f64(1.0 / (1.0 - p));
    let pf = p as f32;
    for (i, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
        let m = if rng.uniform_f32() < pf {
            T::zero()
        } else {
            keep
        };
        *d = s * m;
        if let Some(mask) = mask.as_deref_mut() {
            mask[i] = m;
        }
    }
}

/// Records the distinct features of a sparse batch into `touched`, sorted.
/// `bits` holds one bit per feature and is all clear on entry and on return.
/// The features come out in order either by sorting them or by reading the
/// set bits in order, whichever costs less: a large batch over a modest
/// vocabulary reads `dim / 64` words instead of sorting thousands of indices.
fn mark_touched<T>(csr: Csr<'_, T>, dim: usize, bits: &mut Vec<u64>, touched: &mut Vec<u32>) {
    let words = dim.div_ceil(64);
    if bits.len() < words {
        bits.resize(words, 0);
        // Room for every feature up front, so later batches never grow it.
        touched.reserve(dim);
    }
    touched.clear();
    let rows = csr.indptr.len() - 1;
    for &j in &csr.indices[csr.indptr[0]..csr.indptr[rows]] {
        let (w, b) = (j as usize / 64, 1u64 << (j % 64));
        if bits[w] & b == 0 {
            bits[w] |= b;
            touched.push(j);
        }
    }
    // Sorting n indices costs about n·log₂(n) steps; scanning, one per word.
    let n = touched.len();
    if n * (usize::BITS - n.leading_zeros()) as usize <= words {
        touched.sort_unstable();
        for &j in touched.iter() {
            bits[j as usize / 64] = 0;
        }
    } else {
        touched.clear();
        for (w, word) in bits[..words].iter_mut().enumerate() {
            let mut x = std::mem::take(word);
            while x != 0 {
                touched.push((w * 64) as u32 + x.trailing_zeros());
                x &= x - 1;
            }
        }
    }
}

/// What the first layer reads: the batch as given, or, after input dropout
/// (`dropped`), its dropped copy in `in_buf`, dense values or the batch's
/// non-zeros.
fn input_src<'a, T>(x: &Input<'a, T>, rows: usize, in_buf: &'a [T], dropped: bool) -> Src<'a, T> {
    match *x {
        Input::Dense { values, .. } => Src::Dense(if dropped {
            &in_buf[..values.len()]
        } else {
            values
        }),
        Input::Sparse {
            indptr,
            indices,
            values,
            ..
        } => {
            let live = &values[indptr[0]..indptr[rows]];
            Src::Sparse(Csr {
                indptr,
                indices,
                values: if dropped { &in_buf[..live.len()] } else { live },
                voff: indptr[0],
            })
        }
    }
}
