//! A small decoder-only transformer: a character-level language model with
//! GPT-2's architecture and initialisation, and explicit backward passes.
//!
//! ```text
//! x₀ = tok_emb[ids] + pos_emb[0..t]
//! for each block:  m = x + Attn(LN₁(x))·W_proj + b_proj
//!                  x = m + GELU(LN₂(m)·W_fc + b_fc)·W_out + b_out
//! logits = LN_f(x)·W_head            (W_head = tok_embᵀ with tied=true)
//! loss   = mean over tokens of −log softmax(logits)[target]
//! ```
//!
//! An input row holds `context + 1` token ids: the model reads the first
//! `context` and predicts the last `context`, each token from those before
//! it. Every activation the backward pass needs is kept per block, so memory
//! is linear in the batch (the attention weights, `[heads, t, t]` per
//! sequence, included); evaluation runs in pieces of at most
//! [`EVAL_TOKENS`] tokens through one block's buffers.
//!
//! Tensors carry torch's names (`blocks.0.attn.qkv.weight`, …). Linear
//! weights are stored `[in, out]` like the rest of the engine; embeddings are
//! `[vocab, d]` and `[context, d]` as torch's `nn.Embedding` holds them.

mod kernels;
mod passes;

use crate::network::{Builder, TensorKind};
use crate::NnError;
use downhill::optim::{Param, Role};
use downhill::{Real, Rng};

/// Tokens evaluated at once: bounds the evaluation buffers whatever the
/// evaluation batch.
pub(crate) const EVAL_TOKENS: usize = 16_384;

/// GPT-2's initial standard deviation of weights and embeddings.
const INIT_STD: f64 = 0.02;

/// The model's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub layers: usize,
    pub d: usize,
    pub heads: usize,
    pub context: usize,
    pub vocab: usize,
    pub tied: bool,
}

/// How a tensor starts.
#[derive(Clone, Copy, Debug)]
enum Start {
    Normal(f64),
    One,
    Zero,
}

/// One linear layer or LayerNorm: its weight (or gain) and bias offsets.
#[derive(Clone, Copy, Debug)]
struct Pair {
    w: usize,
    b: usize,
}

/// One block's parameters.
#[derive(Clone, Copy, Debug)]
struct Block {
    ln1: Pair,
    qkv: Pair,
    proj: Pair,
    ln2: Pair,
    fc: Pair,
    out: Pair,
}

/// One block's kept activations (training) or work buffers (evaluation).
#[derive(Debug, Default)]
struct Acts<T> {
    h1: Vec<T>,
    mean1: Vec<T>,
    rstd1: Vec<T>,
    qkv: Vec<T>,
    probs: Vec<T>,
    att: Vec<T>,
    mid: Vec<T>,
    h2: Vec<T>,
    mean2: Vec<T>,
    rstd2: Vec<T>,
    fc: Vec<T>,
    gelu: Vec<T>,
}

/// The transformer: its layout in the network's flat buffer, and every
/// buffer a step needs (grown to the largest batch, then reused).
#[derive(Debug)]
pub(crate) struct Lm<T> {
    lay: Layout,
    acts: Vec<Acts<T>>,
    /// The residual stream entering each block, and after the last.
    resid: Vec<Vec<T>>,
    hf: Vec<T>,
    mean_f: Vec<T>,
    rstd_f: Vec<T>,
    logits: Vec<T>,
    dx: Vec<T>,
    dh: Vec<T>,
    datt: Vec<T>,
    dqkv: Vec<T>,
    dff: Vec<T>,
    dp: Vec<T>,
    ids: Vec<u32>,
    targets: Vec<u32>,
    parts: Vec<(f64, usize)>,
}

/// Grows `v` to at least `len` elements (never shrinks: buffers are reused).
fn grow<X: Clone + Default>(v: &mut Vec<X>, len: usize) {
    if v.len() < len {
        v.resize(len, X::default());
    }
}

/// Builds the tensor table in order, with each tensor's role and start.
struct Table<'a> {
    bld: &'a mut Builder,
    meta: Vec<(Role, bool, Start)>,
}

impl Table<'_> {
    fn add(
        &mut self,
        name: String,
        shape: Vec<usize>,
        role: Role,
        linear: bool,
        start: Start,
    ) -> usize {
        let kind = match start {
            Start::Normal(_) => TensorKind::Weight,
            Start::One | Start::Zero => TensorKind::Bias,
        };
        self.meta.push((role, linear, start));
        self.bld.tensor(name, shape, kind)
    }
    /// A linear layer `name.weight` `[n_in, n_out]` and `name.bias`.
    fn linear(&mut self, name: String, n_in: usize, n_out: usize, std: f64) -> Pair {
        Pair {
            w: self.add(
                format!("{name}.weight"),
                vec![n_in, n_out],
                Role::Hidden,
                true,
                Start::Normal(std),
            ),
            b: self.add(
                format!("{name}.bias"),
                vec![n_out],
                Role::Bias,
                false,
                Start::Zero,
            ),
        }
    }
    /// A LayerNorm's gain (starting at 1) and bias.
    fn norm(&mut self, name: String, d: usize) -> Pair {
        Pair {
            w: self.add(
                format!("{name}.weight"),
                vec![d],
                Role::Bias,
                false,
                Start::One,
            ),
            b: self.add(
                format!("{name}.bias"),
                vec![d],
                Role::Bias,
                false,
                Start::Zero,
            ),
        }
    }
}

/// Where the model's tensors lie and how each starts: what planning a
/// network decides, before it has an element type or buffers.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    g: Geometry,
    tok: usize,
    pos: usize,
    blocks: Vec<Block>,
    ln_f: Pair,
    head: Option<usize>,
    /// Per tensor, in order: its role, whether it is stored `[in, out]`, and
    /// how it starts.
    meta: Vec<(Role, bool, Start)>,
}

impl Layout {
    /// Adds the model's tensors to `bld` in order and returns where they lie.
    pub(crate) fn plan(g: Geometry, bld: &mut Builder) -> Self {
        let (d, v, c, l) = (g.d, g.vocab, g.context, g.layers);
        // GPT-2 scales the projections into the residual stream by
        // 1/√(2·layers): each block adds two of them.
        let resid_std = INIT_STD / ((2 * l) as f64).sqrt();
        let mut t = Table {
            bld,
            meta: Vec::new(),
        };
        let normal = Start::Normal(INIT_STD);
        let tok = t.add(
            "tok_emb.weight".into(),
            vec![v, d],
            Role::Input,
            false,
            normal,
        );
        let pos = t.add(
            "pos_emb.weight".into(),
            vec![c, d],
            Role::Input,
            false,
            normal,
        );
        let blocks = (0..l)
            .map(|i| Block {
                ln1: t.norm(format!("blocks.{i}.ln1"), d),
                qkv: t.linear(format!("blocks.{i}.attn.qkv"), d, 3 * d, INIT_STD),
                proj: t.linear(format!("blocks.{i}.attn.proj"), d, d, resid_std),
                ln2: t.norm(format!("blocks.{i}.ln2"), d),
                fc: t.linear(format!("blocks.{i}.mlp.fc"), d, 4 * d, INIT_STD),
                out: t.linear(format!("blocks.{i}.mlp.proj"), 4 * d, d, resid_std),
            })
            .collect();
        let ln_f = t.norm("ln_f".into(), d);
        let head =
            (!g.tied).then(|| t.add("head.weight".into(), vec![d, v], Role::Output, true, normal));
        Layout {
            g,
            tok,
            pos,
            blocks,
            ln_f,
            head,
            meta: t.meta,
        }
    }
}

impl<T: Real> Lm<T> {
    /// The model laid out by `lay`, with empty buffers (they grow to the
    /// first batch).
    pub(crate) fn new(lay: Layout) -> Self {
        let l = lay.g.layers;
        Lm {
            lay,
            acts: (0..l).map(|_| Acts::default()).collect(),
            resid: (0..=l).map(|_| Vec::new()).collect(),
            hf: Vec::new(),
            mean_f: Vec::new(),
            rstd_f: Vec::new(),
            logits: Vec::new(),
            dx: Vec::new(),
            dh: Vec::new(),
            datt: Vec::new(),
            dqkv: Vec::new(),
            dff: Vec::new(),
            dp: Vec::new(),
            ids: Vec::new(),
            targets: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Tokens per sequence.
    pub(crate) fn context(&self) -> usize {
        self.lay.g.context
    }

    /// Vocabulary size (the network's classes).
    pub(crate) fn vocab(&self) -> usize {
        self.lay.g.vocab
    }

    /// GPT-2's initialisation from `seed`: weights and embeddings
    /// `N(0, 0.02²)`, the two residual projections of each block
    /// `N(0, (0.02/√(2·layers))²)`, LayerNorm gains 1, biases 0; tensors
    /// drawn in order.
    pub(crate) fn init(&self, params: &mut [T], tensors: &[crate::TensorInfo], seed: u64) {
        let mut rng = Rng::new(seed);
        for (t, &(_, _, start)) in tensors.iter().zip(&self.lay.meta) {
            let xs = &mut params[t.range()];
            match start {
                Start::Normal(std) => xs
                    .iter_mut()
                    .for_each(|x| *x = T::from_f64(std * rng.normal())),
                Start::One => xs.fill(T::one()),
                Start::Zero => xs.fill(T::zero()),
            }
        }
    }

    /// Every tensor as an optimiser sees it: embeddings are
    /// [`Role::Input`], the output projection [`Role::Output`], attention
    /// and MLP matrices [`Role::Hidden`], LayerNorm gains and all biases
    /// [`Role::Bias`]. Linear weights are stored transposed (`[in, out]`).
    pub(crate) fn optimizer_params(&self, tensors: &[crate::TensorInfo]) -> Vec<Param> {
        tensors
            .iter()
            .zip(&self.lay.meta)
            .map(|(t, &(role, linear, _))| {
                let p = Param::new(t.shape.clone(), role);
                if linear {
                    p.stored_transposed()
                } else {
                    p
                }
            })
            .collect()
    }

    /// The tensors in torch's layout: linear weights `[out, in]`, the rest
    /// as stored; with `tied=true`, `head.weight` is the token embedding
    /// again (torch's state dict lists a tied weight under both names).
    pub(crate) fn torch_layout(
        &self,
        params: &[T],
        tensors: &[crate::TensorInfo],
    ) -> Vec<crate::TorchTensor<T>> {
        let mut out: Vec<crate::TorchTensor<T>> = tensors
            .iter()
            .zip(&self.lay.meta)
            .map(|(t, &(_, linear, _))| {
                let p = &params[t.range()];
                if linear {
                    let (ni, no) = (t.shape[0], t.shape[1]);
                    let mut m = vec![T::zero(); ni * no];
                    crate::layers::transpose(p, ni, no, &mut m);
                    (t.name.clone(), vec![no, ni], m)
                } else {
                    (t.name.clone(), t.shape.clone(), p.to_vec())
                }
            })
            .collect();
        if self.lay.g.tied {
            let (v, d) = (self.lay.g.vocab, self.lay.g.d);
            out.push((
                "head.weight".into(),
                vec![v, d],
                params[self.lay.tok..self.lay.tok + v * d].to_vec(),
            ));
        }
        out
    }

    /// Reads a batch of `rows` windows of `context + 1` token ids into the
    /// inputs and targets, checking that every id is a whole number below
    /// the vocabulary size.
    pub(crate) fn load(&mut self, values: &[T], rows: usize) -> Result<(), NnError> {
        let t = self.lay.g.context;
        let n = rows * t;
        grow(&mut self.ids, n);
        grow(&mut self.targets, n);
        let vocab = self.lay.g.vocab;
        for (r, w) in values.chunks_exact(t + 1).take(rows).enumerate() {
            for (j, &x) in w.iter().enumerate() {
                let id = Real::to_f64(x);
                if !(id >= 0.0 && id < vocab as f64 && id.fract() == 0.0) {
                    return Err(NnError::Batch(format!(
                        "row {r}, position {j}: token id {id} is not a whole number below the vocabulary size {vocab}"
                    )));
                }
                let id = id as u32;
                if j < t {
                    self.ids[r * t + j] = id;
                }
                if j > 0 {
                    self.targets[r * t + j - 1] = id;
                }
            }
        }
        Ok(())
    }
}
