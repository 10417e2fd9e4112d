//! The transformer's passes: buffer reservation, forward to the logits,
//! and backward to every parameter's gradient.

use super::kernels::{self, Attn};
use super::{grow, Lm, Pair};
use downhill::linalg::{gemm, Mat, Par, SHAPES_CHECKED};
use downhill::Real;

/// Two distinct elements of `v`, both mutable.
fn two<X>(v: &mut [X], i: usize, j: usize) -> (&mut X, &mut X) {
    debug_assert_ne!(i, j);
    if i < j {
        let (lo, hi) = v.split_at_mut(j);
        (&mut lo[i], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(i);
        (&mut hi[0], &mut lo[j])
    }
}

/// A weight of `len_w` values followed by its bias of `len_b`, both mutable.
fn pair_mut<T>(buf: &mut [T], p: Pair, len_w: usize, len_b: usize) -> (&mut [T], &mut [T]) {
    debug_assert_eq!(p.b, p.w + len_w);
    let (w, b) = buf[p.w..p.b + len_b].split_at_mut(len_w);
    (w, b)
}

impl<T: Real> Lm<T> {
    /// Sizes the buffers for `rows` sequences: every block's activations
    /// when `train`, one block's (reused by all) otherwise.
    fn reserve(&mut self, rows: usize, train: bool) {
        let g = self.lay.g;
        let (n, d) = (rows * g.context, g.d);
        let kept = if train { g.layers } else { 1 };
        for a in &mut self.acts[..kept] {
            for (buf, len) in [
                (&mut a.h1, n * d),
                (&mut a.mean1, n),
                (&mut a.rstd1, n),
                (&mut a.qkv, 3 * n * d),
                (&mut a.probs, rows * g.heads * g.context * g.context),
                (&mut a.att, n * d),
                (&mut a.mid, n * d),
                (&mut a.h2, n * d),
                (&mut a.mean2, n),
                (&mut a.rstd2, n),
                (&mut a.fc, 4 * n * d),
                (&mut a.gelu, 4 * n * d),
            ] {
                grow(buf, len);
            }
        }
        let resid = if train { g.layers + 1 } else { 2 };
        for r in &mut self.resid[..resid.min(g.layers + 1)] {
            grow(r, n * d);
        }
        for (buf, len) in [
            (&mut self.hf, n * d),
            (&mut self.mean_f, n),
            (&mut self.rstd_f, n),
            (&mut self.logits, n * g.vocab),
        ] {
            grow(buf, len);
        }
        if train {
            for (buf, len) in [
                (&mut self.dx, n * d),
                (&mut self.dh, n * d),
                (&mut self.datt, n * d),
                (&mut self.dqkv, 3 * n * d),
                (&mut self.dff, 4 * n * d),
                (&mut self.dp, rows * g.context * g.context),
            ] {
                grow(buf, len);
            }
        }
    }

    /// The residual slots (block input, block output) of block `l`, and the
    /// activation slot it uses: its own in training, ping-pong and one
    /// shared slot in evaluation.
    fn slots(l: usize, train: bool) -> (usize, usize, usize) {
        if train {
            (l, l + 1, l)
        } else {
            (l % 2, (l + 1) % 2, 0)
        }
    }

    /// The forward pass over the loaded batch, up to the logits.
    fn forward(&mut self, p: &[T], rows: usize, train: bool) {
        self.reserve(rows, train);
        let g = self.lay.g;
        let (t, d, v) = (g.context, g.d, g.vocab);
        let (n, nd) = (rows * t, rows * t * d);
        let attn = Attn {
            t,
            d,
            heads: g.heads,
        };
        kernels::embed(
            &self.ids[..n],
            &p[self.lay.tok..self.lay.tok + v * d],
            &p[self.lay.pos..self.lay.pos + t * d],
            &mut self.resid[0][..nd],
            t,
            d,
        );
        for (l, b) in self.lay.blocks.iter().enumerate() {
            let (i, o, s) = Self::slots(l, train);
            let a = &mut self.acts[s];
            let (x_in, x_out) = two(&mut self.resid, i, o);
            let x_in = &x_in[..nd];
            kernels::layer_norm(
                x_in,
                &p[b.ln1.w..b.ln1.w + d],
                &p[b.ln1.b..b.ln1.b + d],
                &mut a.h1[..nd],
                &mut a.mean1[..n],
                &mut a.rstd1[..n],
                d,
            );
            linear(&a.h1[..nd], p, b.qkv, d, 3 * d, &mut a.qkv[..3 * nd], false);
            kernels::attention(attn, &a.qkv[..3 * nd], &mut a.probs, &mut a.att[..nd]);
            a.mid[..nd].copy_from_slice(x_in);
            linear(&a.att[..nd], p, b.proj, d, d, &mut a.mid[..nd], true);
            kernels::layer_norm(
                &a.mid[..nd],
                &p[b.ln2.w..b.ln2.w + d],
                &p[b.ln2.b..b.ln2.b + d],
                &mut a.h2[..nd],
                &mut a.mean2[..n],
                &mut a.rstd2[..n],
                d,
            );
            linear(&a.h2[..nd], p, b.fc, d, 4 * d, &mut a.fc[..4 * nd], false);
            kernels::gelu(&a.fc[..4 * nd], &mut a.gelu[..4 * nd]);
            x_out[..nd].copy_from_slice(&a.mid[..nd]);
            linear(
                &a.gelu[..4 * nd],
                p,
                b.out,
                4 * d,
                d,
                &mut x_out[..nd],
                true,
            );
        }
        let last = Self::slots(g.layers - 1, train).1;
        kernels::layer_norm(
            &self.resid[last][..nd],
            &p[self.lay.ln_f.w..self.lay.ln_f.w + d],
            &p[self.lay.ln_f.b..self.lay.ln_f.b + d],
            &mut self.hf[..nd],
            &mut self.mean_f[..n],
            &mut self.rstd_f[..n],
            d,
        );
        let head = match self.lay.head {
            Some(h) => Mat::n(&p[h..h + d * v], v),
            None => Mat::t(&p[self.lay.tok..self.lay.tok + v * d], d),
        };
        gemm(
            n,
            v,
            d,
            Mat::n(&self.hf[..nd], d),
            head,
            &mut self.logits[..n * v],
            v,
            false,
            Par::Pool,
        )
        .expect(SHAPES_CHECKED);
    }

    /// Forward pass and loss over the loaded batch of `rows` sequences;
    /// with `train`, leaves the gradient of the mean loss in the logits.
    /// Returns the summed loss and the correct next-token predictions.
    pub(crate) fn forward_loss(&mut self, p: &[T], rows: usize, train: bool) -> (f64, usize) {
        self.forward(p, rows, train);
        let n = rows * self.lay.g.context;
        kernels::cross_entropy(
            &mut self.logits[..n * self.lay.g.vocab],
            &self.targets[..n],
            self.lay.g.vocab,
            train,
            &mut self.parts,
        )
    }

    /// The logits of the last forward pass, `[rows·context, vocab]`.
    pub(crate) fn logits(&self, rows: usize) -> &[T] {
        &self.logits[..rows * self.lay.g.context * self.lay.g.vocab]
    }

    /// The backward pass after [`forward_loss`](Self::forward_loss) with
    /// `train`: writes every parameter's gradient into `gr`.
    pub(crate) fn backward(&mut self, p: &[T], gr: &mut [T], rows: usize) {
        let g = self.lay.g;
        let (t, d, v) = (g.context, g.d, g.vocab);
        let (n, nd) = (rows * t, rows * t * d);
        let attn = Attn {
            t,
            d,
            heads: g.heads,
        };
        let dlogits = &self.logits[..n * v];
        let hf = &self.hf[..nd];
        let (tok, pos) = (self.lay.tok, self.lay.pos);
        match self.lay.head {
            Some(h) => {
                gemm(
                    d,
                    v,
                    n,
                    Mat::t(hf, d),
                    Mat::n(dlogits, v),
                    &mut gr[h..h + d * v],
                    v,
                    false,
                    Par::Pool,
                )
                .expect(SHAPES_CHECKED);
                gemm(
                    n,
                    d,
                    v,
                    Mat::n(dlogits, v),
                    Mat::t(&p[h..h + d * v], v),
                    &mut self.dh[..nd],
                    d,
                    false,
                    Par::Pool,
                )
                .expect(SHAPES_CHECKED);
                gr[tok..tok + v * d].fill(T::zero());
            }
            None => {
                // The tied head's share of the embedding's gradient; the
                // embedding's own is added at the end.
                gemm(
                    v,
                    d,
                    n,
                    Mat::t(dlogits, v),
                    Mat::n(hf, d),
                    &mut gr[tok..tok + v * d],
                    d,
                    false,
                    Par::Pool,
                )
                .expect(SHAPES_CHECKED);
                gemm(
                    n,
                    d,
                    v,
                    Mat::n(dlogits, v),
                    Mat::n(&p[tok..tok + v * d], d),
                    &mut self.dh[..nd],
                    d,
                    false,
                    Par::Pool,
                )
                .expect(SHAPES_CHECKED);
            }
        }
        gr[pos..pos + t * d].fill(T::zero());
        self.dx[..nd].fill(T::zero());
        let (dgain, dbias) = pair_mut(gr, self.lay.ln_f, d, d);
        kernels::layer_norm_backward(
            &self.dh[..nd],
            &self.resid[g.layers][..nd],
            &self.mean_f[..n],
            &self.rstd_f[..n],
            &p[self.lay.ln_f.w..self.lay.ln_f.w + d],
            &mut self.dx[..nd],
            dgain,
            dbias,
            d,
        );
        for (l, b) in self.lay.blocks.iter().enumerate().rev() {
            let a = &self.acts[l];
            let x_in = &self.resid[l][..nd];
            // The MLP: dx is the gradient of the block's output.
            linear_backward(
                &a.gelu[..4 * nd],
                &self.dx[..nd],
                p,
                gr,
                b.out,
                4 * d,
                d,
                &mut self.dff[..4 * nd],
            );
            kernels::gelu_backward(&a.fc[..4 * nd], &mut self.dff[..4 * nd]);
            linear_backward(
                &a.h2[..nd],
                &self.dff[..4 * nd],
                p,
                gr,
                b.fc,
                d,
                4 * d,
                &mut self.dh[..nd],
            );
            // The residual: LayerNorm's share adds onto dx in place, which
            // becomes the gradient of the residual between the two halves.
            let (dgain, dbias) = pair_mut(gr, b.ln2, d, d);
            kernels::layer_norm_backward(
                &self.dh[..nd],
                &a.mid[..nd],
                &a.mean2[..n],
                &a.rstd2[..n],
                &p[b.ln2.w..b.ln2.w + d],
                &mut self.dx[..nd],
                dgain,
                dbias,
                d,
            );
            // The attention: dx is now the gradient of the residual after it.
            linear_backward(
                &a.att[..nd],
                &self.dx[..nd],
                p,
                gr,
                b.proj,
                d,
                d,
                &mut self.datt[..nd],
            );
            kernels::attention_backward(
                attn,
                &a.qkv[..3 * nd],
                &a.probs,
                &self.datt[..nd],
                &mut self.dqkv[..3 * nd],
                &mut self.dp,
            );
            linear_backward(
                &a.h1[..nd],
                &self.dqkv[..3 * nd],
                p,
                gr,
                b.qkv,
                d,
                3 * d,
                &mut self.dh[..nd],
            );
            // And again: dx becomes the gradient of the block's input.
            let (dgain, dbias) = pair_mut(gr, b.ln1, d, d);
            kernels::layer_norm_backward(
                &self.dh[..nd],
                x_in,
                &a.mean1[..n],
                &a.rstd1[..n],
                &p[b.ln1.w..b.ln1.w + d],
                &mut self.dx[..nd],
                dgain,
                dbias,
                d,
            );
        }
        let (dtok, dpos) = gr[tok..pos + t * d].split_at_mut(pos - tok);
        kernels::embed_backward(&self.ids[..n], &self.dx[..nd], dtok, dpos, t, d);
    }
}

/// `y = x·W + b` (or `y += x·W + b` when `accumulate`) for the linear layer
/// `wb` of `n_in → n_out`, over `x.len() / n_in` rows.
fn linear<T: Real>(
    x: &[T],
    p: &[T],
    wb: Pair,
    n_in: usize,
    n_out: usize,
    y: &mut [T],
    accumulate: bool,
) {
    let n = x.len() / n_in;
    gemm(
        n,
        n_out,
        n_in,
        Mat::n(x, n_in),
        Mat::n(&p[wb.w..wb.w + n_in * n_out], n_out),
        y,
        n_out,
        accumulate,
        Par::Pool,
    )
    .expect(SHAPES_CHECKED);
    kernels::add_bias(y, &p[wb.b..wb.b + n_out]);
}

/// The linear layer's backward pass from the output gradient `dy`: writes
/// `dW = xᵀ·dy` and `db = Σ_rows dy` into `gr`, and `dx = dy·Wᵀ`.
#[allow(clippy::too_many_arguments)]
fn linear_backward<T: Real>(
    x: &[T],
    dy: &[T],
    p: &[T],
    gr: &mut [T],
    wb: Pair,
    n_in: usize,
    n_out: usize,
    dx: &mut [T],
) {
    let n = x.len() / n_in;
    let (dw, db) = pair_mut(gr, wb, n_in * n_out, n_out);
    gemm(
        n_in,
        n_out,
        n,
        Mat::t(x, n_in),
        Mat::n(dy, n_out),
        dw,
        n_out,
        false,
        Par::Pool,
    )
    .expect(SHAPES_CHECKED);
    kernels::column_sums(dy, db);
    gemm(
        n,
        n_in,
        n_out,
        Mat::n(dy, n_out),
        Mat::t(&p[wb.w..wb.w + n_in * n_out], n_out),
        dx,
        n_in,
        false,
        Par::Pool,
    )
    .expect(SHAPES_CHECKED);
}
