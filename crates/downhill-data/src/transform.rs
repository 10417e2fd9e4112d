//! Carving a validation split and normalising features with statistics from
//! the training data only.

use crate::{DataError, Dataset, Features, LoadOptions, Normalise, ValidSplit};
use downhill::Rng;

/// Sub-stream of the seed used for the validation carve, so the split does not
/// share random numbers with a trainer seeded with the same value.
const CARVE_STREAM: u64 = 0x5EED_DA7A;

/// Rows of a training set that stay in training and rows that go to validation.
pub(crate) struct Carve {
    /// Rows kept for training, ascending.
    pub(crate) train: Vec<usize>,
    /// Rows for validation, ascending.
    pub(crate) valid: Vec<usize>,
}

/// How a training set of `n` examples is split, or `None` when no validation
/// split is asked for. The choice depends only on `n`, the split size and the seed.
pub(crate) fn carve(n: usize, opts: &LoadOptions) -> Result<Option<Carve>, DataError> {
    let k = match opts.valid {
        None => return Ok(None),
        Some(ValidSplit::Fraction(f)) => {
            if !(f > 0.0 && f < 1.0) {
                return Err(DataError::option(
                    "valid",
                    format!("fraction {f} must be strictly between 0 and 1"),
                ));
            }
            (f * n as f64).round() as usize
        }
        Some(ValidSplit::Count(c)) => c,
    };
    if k == 0 || k >= n {
        return Err(DataError::option(
            "valid",
            format!(
                "{k} validation examples out of {n} training examples leaves {}",
                if k == 0 {
                    "no validation data"
                } else {
                    "no training data"
                }
            ),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(opts.seed).fork(CARVE_STREAM).shuffle(&mut order);
    let mut valid = order[..k].to_vec();
    let mut train = order[k..].to_vec();
    // Keep the source order inside each split: deterministic and cache friendly.
    valid.sort_unstable();
    train.sort_unstable();
    Ok(Some(Carve { train, valid }))
}

/// Per-feature affine maps `x -> (x - shift) * scale`, fitted on training data.
struct Affine {
    shift: Vec<f64>,
    scale: Vec<f64>,
}

/// Mean and population standard deviation of every feature (f64 sums).
fn moments(data: &Dataset) -> (Vec<f64>, Vec<f64>) {
    let dim = data.dim();
    let n = data.len().max(1) as f64;
    let mut mean = vec![0f64; dim];
    let mut var = vec![0f64; dim];
    match data.features() {
        Features::Dense(d) => {
            for row in d.values().chunks_exact(dim.max(1)) {
                for (m, &x) in mean.iter_mut().zip(row) {
                    *m += x as f64;
                }
            }
            mean.iter_mut().for_each(|m| *m /= n);
            // Second pass about the mean: no cancellation for large offsets.
            for row in d.values().chunks_exact(dim.max(1)) {
                for ((v, &m), &x) in var.iter_mut().zip(&mean).zip(row) {
                    *v += (x as f64 - m).powi(2);
                }
            }
        }
        Features::Sparse(s) => {
            let mut nnz = vec![0usize; dim];
            for (&j, &x) in s.indices().iter().zip(s.values()) {
                mean[j as usize] += x as f64;
                nnz[j as usize] += 1;
            }
            mean.iter_mut().for_each(|m| *m /= n);
            for (&j, &x) in s.indices().iter().zip(s.values()) {
                var[j as usize] += (x as f64 - mean[j as usize]).powi(2);
            }
            // The implicit zeros each contribute mean^2.
            for ((v, &m), &c) in var.iter_mut().zip(&mean).zip(&nnz) {
                *v += (data.len() - c) as f64 * m * m;
            }
        }
    }
    let std = var.iter().map(|v| (v / n).sqrt()).collect();
    (mean, std)
}

/// Largest absolute value of every feature.
fn max_abs(data: &Dataset) -> Vec<f64> {
    let dim = data.dim();
    let mut m = vec![0f64; dim];
    match data.features() {
        Features::Dense(d) => {
            for row in d.values().chunks_exact(dim.max(1)) {
                for (m, &x) in m.iter_mut().zip(row) {
                    *m = m.max((x as f64).abs());
                }
            }
        }
        Features::Sparse(s) => {
            for (&j, &x) in s.indices().iter().zip(s.values()) {
                let e = &mut m[j as usize];
                *e = e.max((x as f64).abs());
            }
        }
    }
    m
}

fn apply(data: &mut Dataset, f: &Affine) {
    let dim = data.dim();
    match data.features_mut() {
        Features::Dense(d) => {
            for row in d.values_mut().chunks_exact_mut(dim.max(1)) {
                for ((x, &a), &s) in row.iter_mut().zip(&f.shift).zip(&f.scale) {
                    *x = ((*x as f64 - a) * s) as f32;
                }
            }
        }
        Features::Sparse(s) => {
            // Sparse data is only scaled (shift is 0), so zeros stay zeros.
            let indices = s.indices().to_vec();
            for (x, &j) in s.values_mut().iter_mut().zip(&indices) {
                *x = (*x as f64 * f.scale[j as usize]) as f32;
            }
            s.drop_zeros();
        }
    }
}

/// `1 / s`, or 0 for a constant feature (which then becomes 0 everywhere).
fn inverse(s: f64) -> f64 {
    if s > 0.0 {
        1.0 / s
    } else {
        0.0
    }
}

/// Applies `opts.normalise` to every split with statistics of `train`.
/// Image pixels were already scaled by the loaders; see [`Normalise`].
pub(crate) fn normalise(train: &mut Dataset, others: &mut [&mut Dataset], how: Normalise) {
    let affine = match how {
        Normalise::Auto | Normalise::None => return,
        Normalise::Scale01 if train.image().is_some() => return,
        Normalise::Scale01 => {
            let m = max_abs(train);
            Affine {
                shift: vec![0.0; m.len()],
                scale: m.into_iter().map(inverse).collect(),
            }
        }
        Normalise::Standardise => {
            let (mean, std) = moments(train);
            let sparse = train.features().is_sparse();
            Affine {
                shift: if sparse { vec![0.0; mean.len()] } else { mean },
                scale: std.into_iter().map(inverse).collect(),
            }
        }
    };
    apply(train, &affine);
    for d in others {
        apply(d, &affine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Csr, Dense};

    fn opts(valid: ValidSplit, seed: u64) -> LoadOptions {
        LoadOptions {
            valid: Some(valid),
            seed,
            ..LoadOptions::default()
        }
    }

    #[test]
    fn carve_is_a_seeded_partition() {
        let Carve { train: t, valid: v } = carve(100, &opts(ValidSplit::Fraction(0.2), 1))
            .unwrap()
            .unwrap();
        assert_eq!((t.len(), v.len()), (80, 20));
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(
            carve(100, &opts(ValidSplit::Fraction(0.2), 1))
                .unwrap()
                .unwrap()
                .valid,
            v
        );
        assert_ne!(
            carve(100, &opts(ValidSplit::Fraction(0.2), 2))
                .unwrap()
                .unwrap()
                .valid,
            v
        );
        assert_ne!(v, (0..20).collect::<Vec<_>>());
        assert!(carve(10, &opts(ValidSplit::Count(10), 1)).is_err());
        assert!(carve(10, &opts(ValidSplit::Fraction(1.0), 1)).is_err());
        assert!(carve(10, &opts(ValidSplit::Fraction(f64::NAN), 1)).is_err());
        assert!(carve(10, &opts(ValidSplit::Fraction(0.01), 1)).is_err());
    }

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| i.to_string()).collect()
    }

    #[test]
    fn standardise_dense_uses_training_statistics() {
        // Feature 0: 1, 3 (mean 2, std 1); feature 1 constant.
        let dense = |v: Vec<f32>| Features::Dense(Dense::new(v, 2).unwrap());
        let mut train =
            Dataset::new("t", dense(vec![1.0, 5.0, 3.0, 5.0]), vec![0, 1], names(2)).unwrap();
        let mut test = Dataset::new("t", dense(vec![4.0, 7.0]), vec![0], names(2)).unwrap();
        normalise(&mut train, &mut [&mut test], Normalise::Standardise);
        let vals = |d: &Dataset| match d.features() {
            Features::Dense(d) => d.values().to_vec(),
            _ => unreachable!(),
        };
        assert_eq!(vals(&train), [-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(vals(&test), [2.0, 0.0]);
    }

    #[test]
    fn sparse_scaling_keeps_zeros_and_drops_constant_features() {
        // Feature 0: 4, 0 -> mean 2, std 2; feature 1: 0, 0 in train.
        let csr = Csr::new(vec![0, 1, 1], vec![0], vec![4.0], 2).unwrap();
        let mut train = Dataset::new("t", Features::Sparse(csr), vec![0, 0], names(1)).unwrap();
        let test_csr = Csr::new(vec![0, 2], vec![0, 1], vec![3.0, 9.0], 2).unwrap();
        let mut test = Dataset::new("t", Features::Sparse(test_csr), vec![0], names(1)).unwrap();
        normalise(&mut train, &mut [&mut test], Normalise::Standardise);
        let Features::Sparse(s) = test.features() else {
            unreachable!()
        };
        assert_eq!((s.indices(), s.values()), (&[0u32][..], &[1.5f32][..]));
        let Features::Sparse(s) = train.features() else {
            unreachable!()
        };
        assert_eq!(s.values(), [2.0]);

        let csr = Csr::new(vec![0, 1, 2], vec![0, 0], vec![-4.0, 2.0], 1).unwrap();
        let mut t = Dataset::new("t", Features::Sparse(csr), vec![0, 0], names(1)).unwrap();
        normalise(&mut t, &mut [], Normalise::Scale01);
        let Features::Sparse(s) = t.features() else {
            unreachable!()
        };
        assert_eq!(s.values(), [-1.0, 0.5]);
    }
}
