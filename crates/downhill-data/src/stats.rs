//! Summary statistics of a data set, for `downhill advise`: how sparse the
//! features are, how skewed their frequencies are (adaptive methods such as
//! Adagrad help most when rare features carry signal), and how balanced the
//! classes are.

use crate::{Dataset, Features};
use rayon::prelude::*;
use serde::Serialize;

/// What `downhill advise` needs to know about a data set. Computed by
/// [`stats`] in one pass over the stored values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataStats {
    /// Number of examples.
    pub examples: usize,
    /// Number of features per example.
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
    /// Number of non-zero feature values.
    pub nonzeros: u64,
    /// `nonzeros / (examples * features)`: the fraction of non-zero values
    /// (1 for a dense image set without zeros; about 0.01 for a bag of words).
    /// 0 when there are no values.
    pub density: f64,
    /// Mean number of non-zero values per example.
    pub nonzeros_per_example: f64,
    /// Document frequency of every feature: the number of examples in which it
    /// is non-zero.
    pub doc_freq: Vec<u64>,
    /// Features that are non-zero in at least one example.
    pub active_features: usize,
    /// Gini coefficient of the document frequencies over all features: 0 when
    /// every feature is equally frequent, near 1 when a few features hold
    /// almost all non-zeros.
    pub gini: f64,
    /// Share of all non-zeros held by the most frequent 1% of features (at
    /// least one feature): about 0.01 when frequencies are even.
    pub top1pct_share: f64,
    /// Examples per class, indexed by label.
    pub class_counts: Vec<usize>,
    /// Fraction of examples in the largest class.
    pub majority_fraction: f64,
    /// Fraction of examples in the smallest class.
    pub minority_fraction: f64,
    /// Entropy of the class distribution divided by `ln(classes)`: 1 for
    /// perfectly balanced classes, towards 0 as one class dominates (1 when
    /// there is a single class).
    pub class_balance: f64,
}

/// Document frequency of each feature, counted in parallel over row blocks.
fn doc_freq(data: &Dataset) -> Vec<u64> {
    let dim = data.dim();
    let add = |mut a: Vec<u64>, b: Vec<u64>| {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        a
    };
    match data.features() {
        Features::Dense(d) if dim > 0 => d
            .values()
            .par_chunks(dim * 256)
            .fold(
                || vec![0u64; dim],
                |mut df, block| {
                    for row in block.chunks_exact(dim) {
                        for (c, &x) in df.iter_mut().zip(row) {
                            *c += u64::from(x != 0.0);
                        }
                    }
                    df
                },
            )
            .reduce(|| vec![0u64; dim], add),
        Features::Dense(_) => Vec::new(),
        // Indices are unique within a row, so each entry is one document.
        Features::Sparse(s) => s
            .indices()
            .par_chunks(1 << 16)
            .fold(
                || vec![0u64; dim],
                |mut df, block| {
                    for &j in block {
                        df[j as usize] += 1;
                    }
                    df
                },
            )
            .reduce(|| vec![0u64; dim], add),
    }
}

/// Gini coefficient of non-negative values (0 for an empty or all-zero list).
fn gini(values: &[u64]) -> f64 {
    let total: f64 = values.iter().map(|&v| v as f64).sum();
    if values.is_empty() || total == 0.0 {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &v)| (2.0 * i as f64 - n + 1.0) * v as f64)
        .sum();
    weighted / (n * total)
}

/// Computes [`DataStats`] for `data`.
pub fn stats(data: &Dataset) -> DataStats {
    let df = doc_freq(data);
    let nonzeros: u64 = df.iter().sum();
    let (n, dim) = (data.len(), data.dim());
    let cells = n as f64 * dim as f64;
    let top = dim.div_ceil(100).max(1).min(dim);
    let mut sorted = df.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let top_nnz: u64 = sorted[..top].iter().sum();
    let counts = data.label_counts();
    let frac = |c: usize| if n == 0 { 0.0 } else { c as f64 / n as f64 };
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| -frac(c) * frac(c).ln())
        .sum();
    DataStats {
        examples: n,
        features: dim,
        classes: data.classes(),
        nonzeros,
        density: if cells > 0.0 {
            nonzeros as f64 / cells
        } else {
            0.0
        },
        nonzeros_per_example: if n > 0 {
            nonzeros as f64 / n as f64
        } else {
            0.0
        },
        active_features: df.iter().filter(|&&c| c > 0).count(),
        gini: gini(&df),
        top1pct_share: if nonzeros > 0 {
            top_nnz as f64 / nonzeros as f64
        } else {
            0.0
        },
        majority_fraction: frac(counts.iter().copied().max().unwrap_or(0)),
        minority_fraction: frac(counts.iter().copied().min().unwrap_or(0)),
        class_balance: if counts.len() > 1 {
            entropy / (counts.len() as f64).ln()
        } else {
            1.0
        },
        class_counts: counts,
        doc_freq: df,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Csr, Dense};

    #[test]
    fn gini_of_known_distributions() {
        assert_eq!(gini(&[5, 5, 5, 5]), 0.0);
        // One holder of everything among n: (n - 1) / n.
        assert!((gini(&[0, 0, 0, 10]) - 0.75).abs() < 1e-12);
        assert_eq!(gini(&[]), 0.0);
        assert_eq!(gini(&[0, 0]), 0.0);
    }

    #[test]
    fn stats_of_a_small_sparse_set() {
        // 3 examples, 200 features; feature 7 in all rows, 150 in one.
        let csr = Csr::new(vec![0, 2, 3, 4], vec![7, 150, 7, 7], vec![1.0; 4], 200).unwrap();
        let names = vec!["a".to_string(), "b".to_string()];
        let d = Dataset::new("s", Features::Sparse(csr), vec![0, 0, 1], names).unwrap();
        let s = stats(&d);
        assert_eq!(
            (s.examples, s.features, s.classes, s.nonzeros),
            (3, 200, 2, 4)
        );
        assert!((s.density - 4.0 / 600.0).abs() < 1e-12);
        assert_eq!(
            (s.doc_freq[7], s.doc_freq[150], s.active_features),
            (3, 1, 2)
        );
        // Top 1% of 200 features = 2 features, holding every non-zero.
        assert_eq!(s.top1pct_share, 1.0);
        assert!(s.gini > 0.99);
        assert_eq!(s.class_counts, [2, 1]);
        assert!((s.majority_fraction - 2.0 / 3.0).abs() < 1e-12);
        let h = -(2.0f64 / 3.0) * (2.0f64 / 3.0).ln() - (1.0f64 / 3.0) * (1.0f64 / 3.0).ln();
        assert!((s.class_balance - h / 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn dense_stats_count_zeros_as_absent() {
        let dense = Dense::new(vec![0.0, 1.0, 2.0, 0.0, 3.0, 4.0], 3).unwrap();
        let d = Dataset::new("d", Features::Dense(dense), vec![0, 0], vec!["x".into()]).unwrap();
        let s = stats(&d);
        assert_eq!(s.doc_freq, [0, 2, 2]);
        assert_eq!(s.active_features, 2);
        assert_eq!(s.nonzeros, 4);
        assert_eq!(s.class_balance, 1.0);
        assert_eq!(s.top1pct_share, 0.5);
    }
}
