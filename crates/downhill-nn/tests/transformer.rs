//! The transformer's contracts beyond its gradients (checked against finite
//! differences in `gradients.rs`): causality, evaluation in pieces, bits
//! independent of the thread count, GPT-2's initialisation, parameter roles,
//! torch's layout, and clear errors.

use downhill::optim::Role;
use downhill::Rng;
use downhill_nn::{Input, InputShape, ModelSpec, Network};

fn net(spec: &str, context: usize, vocab: usize, seed: u64) -> Network<f64> {
    let spec: ModelSpec = spec.parse().unwrap();
    Network::new(&spec, InputShape::Flat(context + 1), vocab, seed).unwrap()
}

fn windows(rows: usize, context: usize, vocab: usize, seed: u64) -> (Vec<f64>, Vec<u32>) {
    let mut r = Rng::new(seed);
    let x: Vec<f64> = (0..rows * (context + 1))
        .map(|_| r.below(vocab as u64) as f64)
        .collect();
    let y = x.chunks(context + 1).map(|w| w[context] as u32).collect();
    (x, y)
}

fn dense(x: &[f64], context: usize) -> Input<'_, f64> {
    Input::Dense {
        values: x,
        rows: x.len() / (context + 1),
        dim: context + 1,
    }
}

#[test]
fn a_token_sees_only_the_tokens_before_it() {
    let (c, v) = (6, 9);
    let mut m = net("transformer:layers=2,d=8,heads=2,context=6", c, v, 3);
    let (mut x, _) = windows(2, c, v, 1);
    let before = m.logits(dense(&x, c)).unwrap().to_vec();
    // Change input position 4 of the second window: the logits at
    // positions 0..4 of that window (and all of the first) must not move.
    x[(c + 1) + 4] = ((x[(c + 1) + 4] as usize + 1) % v) as f64;
    let after = m.logits(dense(&x, c)).unwrap().to_vec();
    for pos in 0..2 * c {
        let same = before[pos * v..(pos + 1) * v] == after[pos * v..(pos + 1) * v];
        let expected = pos < c + 4;
        assert_eq!(same, expected, "position {pos}");
    }
}

#[test]
fn evaluation_in_pieces_equals_the_training_forward_pass() {
    // 16,384 tokens per piece: 70 windows of 256 tokens span two pieces.
    let (c, v) = (256, 11);
    let mut m = net("transformer:layers=1,d=8,heads=2,context=256", c, v, 5);
    let (x, y) = windows(70, c, v, 2);
    let eval = m.evaluate(dense(&x, c), &y).unwrap();
    let train = m.loss_and_grad(dense(&x, c), &y, &mut Rng::new(0)).unwrap();
    assert_eq!(eval.count, 70 * c);
    assert_eq!(train.count, eval.count);
    assert_eq!(train.correct, eval.correct);
    let rel = (eval.loss_sum - train.loss_sum).abs() / train.loss_sum;
    assert!(
        rel < 1e-12,
        "evaluation {} vs training {}",
        eval.loss_sum,
        train.loss_sum
    );
    // The untrained model predicts close to uniformly: ln(vocab) nats.
    let mean = eval.mean_loss();
    assert!((mean - (v as f64).ln()).abs() < 0.1, "{mean}");
}

#[test]
fn the_thread_count_changes_no_bit() {
    // Big enough that every row-wise pass and product splits.
    let (c, v) = (64, 13);
    let spec = "transformer:layers=2,d=64,heads=4,context=64";
    let (x, y) = windows(24, c, v, 7);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut m = net(spec, c, v, 9);
            let st = m.loss_and_grad(dense(&x, c), &y, &mut Rng::new(0)).unwrap();
            (st.loss_sum, m.grads().to_vec())
        })
    };
    let (l1, g1) = run(1);
    for threads in [2, 3] {
        let (l, g) = run(threads);
        assert_eq!(l.to_bits(), l1.to_bits(), "{threads} threads");
        assert!(
            g.iter().zip(&g1).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads} threads"
        );
    }
}

#[test]
fn gpt2_initialisation_and_roles() {
    let m = net("transformer:layers=2,d=32,heads=4,context=16", 16, 40, 1);
    let params = m.params();
    let std = |name: &str| {
        let t = m.tensors().iter().find(|t| t.name == name).unwrap();
        let xs = &params[t.range()];
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64).sqrt()
    };
    for (name, want) in [
        ("tok_emb.weight", 0.02),
        ("blocks.0.attn.qkv.weight", 0.02),
        ("blocks.1.mlp.fc.weight", 0.02),
        ("head.weight", 0.02),
        ("blocks.0.attn.proj.weight", 0.01),
        ("blocks.1.mlp.proj.weight", 0.01),
    ] {
        let s = std(name);
        assert!(
            (s - want).abs() < 0.1 * want,
            "{name}: std {s}, want {want}"
        );
    }
    let value = |name: &str| {
        let t = m.tensors().iter().find(|t| t.name == name).unwrap();
        params[t.range()].to_vec()
    };
    assert!(value("blocks.0.ln1.weight").iter().all(|&g| g == 1.0));
    assert!(value("ln_f.bias").iter().all(|&b| b == 0.0));
    assert!(value("blocks.1.attn.qkv.bias").iter().all(|&b| b == 0.0));
    // Roles: Keller Jordan's routing puts Muon on the hidden matrices only.
    let roles: Vec<(String, Role)> = m
        .tensors()
        .iter()
        .zip(m.optimizer_params())
        .map(|(t, p)| (t.name.clone(), p.role))
        .collect();
    for (name, role) in &roles {
        let want = match name.as_str() {
            "tok_emb.weight" | "pos_emb.weight" => Role::Input,
            "head.weight" => Role::Output,
            n if n.ends_with(".bias") || n.contains("ln") => Role::Bias,
            _ => Role::Hidden,
        };
        assert_eq!(*role, want, "{name}");
    }
    assert_eq!(
        roles.iter().filter(|(_, r)| *r == Role::Hidden).count(),
        2 * 4
    );
    // The same seed gives the same weights.
    let again = net("transformer:layers=2,d=32,heads=4,context=16", 16, 40, 1);
    assert_eq!(again.params(), m.params());
}

#[test]
fn torch_layout_names_and_shapes() {
    let m = net("transformer:layers=1,d=8,heads=2,context=4", 4, 6, 1);
    let torch = m.torch_layout();
    let names: Vec<&str> = torch.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "tok_emb.weight",
            "pos_emb.weight",
            "blocks.0.ln1.weight",
            "blocks.0.ln1.bias",
            "blocks.0.attn.qkv.weight",
            "blocks.0.attn.qkv.bias",
            "blocks.0.attn.proj.weight",
            "blocks.0.attn.proj.bias",
            "blocks.0.ln2.weight",
            "blocks.0.ln2.bias",
            "blocks.0.mlp.fc.weight",
            "blocks.0.mlp.fc.bias",
            "blocks.0.mlp.proj.weight",
            "blocks.0.mlp.proj.bias",
            "ln_f.weight",
            "ln_f.bias",
            "head.weight",
        ]
    );
    let shape = |n: &str| torch.iter().find(|t| t.0 == n).unwrap().1.clone();
    assert_eq!(shape("tok_emb.weight"), [6, 8]);
    assert_eq!(shape("blocks.0.attn.qkv.weight"), [24, 8]);
    assert_eq!(shape("blocks.0.mlp.proj.weight"), [8, 32]);
    assert_eq!(shape("head.weight"), [6, 8]);
    // torch's [out, in] is the transpose of the stored [in, out].
    let stored = m
        .tensors()
        .iter()
        .find(|t| t.name == "blocks.0.mlp.fc.weight")
        .unwrap();
    let w = &m.params()[stored.range()];
    let t = &torch
        .iter()
        .find(|t| t.0 == "blocks.0.mlp.fc.weight")
        .unwrap()
        .2;
    for i in 0..8 {
        for o in 0..32 {
            assert_eq!(t[o * 8 + i], w[i * 32 + o]);
        }
    }
    // Tied: the embedding again under the head's name.
    let tied = net(
        "transformer:layers=1,d=8,heads=2,context=4,tied=true",
        4,
        6,
        1,
    );
    let torch = tied.torch_layout();
    let get = |n: &str| torch.iter().find(|t| t.0 == n).unwrap().2.clone();
    assert_eq!(get("head.weight"), get("tok_emb.weight"));
    assert_eq!(tied.params().len() + 6 * 8, m.params().len());
}

#[test]
fn specs_parse_print_and_refuse_with_one_line() {
    let s: ModelSpec = "transformer:layers=4,d=128,heads=4,context=128"
        .parse()
        .unwrap();
    assert_eq!(
        s.to_string(),
        "transformer:layers=4,d=128,heads=4,context=128"
    );
    let s: ModelSpec = "transformer:context=8,heads=2,d=8,layers=1,tied=true:l2=0.01"
        .parse()
        .unwrap();
    assert_eq!(
        s.to_string(),
        "transformer:layers=1,d=8,heads=2,context=8,tied=true:l2=0.01"
    );
    for (bad, says) in [
        ("transformer", "layers=L,d=D,heads=H,context=C"),
        (
            "transformer:layers=2,d=10,heads=4,context=8",
            "multiple of heads",
        ),
        ("transformer:layers=2,d=8,heads=2", "`context=` as well"),
        (
            "transformer:layers=2,d=8,heads=2,context=8,depth=3",
            "a transformer key",
        ),
        (
            "transformer:layers=0,d=8,heads=2,context=8",
            "positive integer",
        ),
        (
            "transformer:layers=2,d=8,heads=2,context=8,layers=3",
            "at most once",
        ),
        (
            "transformer:layers=2,d=8,heads=2,context=8:dropout=0.1",
            "no option but l2=",
        ),
        (
            "transformer:layers=2,d=8,heads=2,context=8,tied=yes",
            "tied=true or tied=false",
        ),
    ] {
        let e = bad.parse::<ModelSpec>().unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
        assert!(!e.contains('\n'), "{bad}: {e}");
    }
    // Windows of the wrong length, and token ids that are not ids.
    let spec: ModelSpec = "transformer:layers=1,d=8,heads=2,context=8"
        .parse()
        .unwrap();
    let e = Network::<f64>::new(&spec, InputShape::Flat(784), 10, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("windows of 9 token ids"), "{e}");
    let mut m = net("transformer:layers=1,d=8,heads=2,context=3", 3, 5, 1);
    for bad in [5.0, -1.0, 1.5, f64::NAN] {
        let x = [0.0, 1.0, bad, 2.0];
        let e = m.evaluate(dense(&x, 3), &[2]).unwrap_err().to_string();
        assert!(
            e.contains("position 2") && e.contains("vocabulary size 5"),
            "{e}"
        );
    }
    let e = m
        .evaluate(
            Input::Sparse {
                indptr: &[0, 1],
                indices: &[0],
                values: &[1.0],
                dim: 4,
            },
            &[0],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("token ids"), "{e}");
}
