//! Sparse data end to end: gradients of chunked sparse batches, and the
//! trainer's lazy row-sparse updates (`sparse_updates`).

use downhill::Rng;
use downhill_data::{load, LoadOptions};
use downhill_nn::{InputShape, ModelSpec, Network};
use downhill_train::batch::Batcher;
use std::path::{Path, PathBuf};

/// Writes a sparse LIBSVM file: `n` examples over `dim` features, each with
/// `k` distinct features drawn with frequencies skewed towards low indices,
/// labels from a planted linear rule. Returns its path.
fn sparse_libsvm(dir: &Path, name: &str, n: usize, dim: usize, k: usize, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let mut text = String::new();
    for _ in 0..n {
        let mut idx: Vec<usize> = (0..k)
            .map(|_| {
                let u = rng.uniform();
                ((dim as f64).powf(u) as usize).clamp(1, dim)
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let score: f64 = idx
            .iter()
            .map(|&j| if j % 2 == 0 { 1.0 } else { -1.0 })
            .sum();
        text += if score + 0.5 * rng.normal() > 0.0 {
            "1"
        } else {
            "-1"
        };
        for j in idx {
            text += &format!(" {j}:{:.3}", 0.5 + rng.uniform());
        }
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_chunked_sparse_batch_gradient_is_exact_every_time() {
    // The chunks' gradients are averaged and copied back into the network;
    // the next batch used to clear only the last chunk's rows, leaving the
    // other chunks' rows in its gradient.
    let dir = tempfile::tempdir().unwrap();
    let path = sparse_libsvm(dir.path(), "a.svm", 300, 200, 5, 1);
    let data = load(
        &format!("libsvm:{}", path.display()),
        &LoadOptions::default(),
    )
    .unwrap();
    let spec: ModelSpec = "mlp:4".parse().unwrap();
    let shape = InputShape::Flat(data.train.dim());
    let fresh = || Network::<f32>::new(&spec, shape, 2, 1).unwrap();
    let (mut net, mut batcher, mut acc) = (fresh(), Batcher::default(), Vec::new());
    let all: Vec<usize> = (0..300).collect();
    for rows in [&all[..], &all[100..], &all[..150], &all[..]] {
        batcher
            .gradient(&mut net, &data.train, rows, 40, &mut Rng::new(0), &mut acc)
            .unwrap();
        let mut twin = fresh();
        Batcher::default()
            .gradient(&mut twin, &data.train, rows, 40, &mut Rng::new(0), &mut acc)
            .unwrap();
        assert_eq!(net.grads(), twin.grads(), "{} rows", rows.len());
        // The union of the chunks' rows: every feature in the batch.
        let mut want: Vec<u32> = rows
            .iter()
            .flat_map(|&r| match data.train.features() {
                downhill_data::Features::Sparse(c) => c.row(r).unwrap().0.to_vec(),
                _ => unreachable!(),
            })
            .collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(net.touched_rows(), Some(&want[..]));
    }
}
