//! The data-set API (subsets, batches, splits, normalisation, statistics) and
//! the promise that no input makes a parser panic.

mod common;

use common::*;
use downhill::Rng;
use downhill_data::*;

fn names(k: usize) -> Vec<String> {
    (0..k).map(|i| i.to_string()).collect()
}

/// 4 examples of 3 features: row r is [r, 0, 10 + r]; labels 0, 1, 1, 2.
fn small_dense() -> Dataset {
    let v: Vec<f32> = (0..4)
        .flat_map(|r| [r as f32, 0.0, 10.0 + r as f32])
        .collect();
    Dataset::new(
        "d",
        Features::Dense(Dense::new(v, 3).unwrap()),
        vec![0, 1, 1, 2],
        names(3),
    )
    .unwrap()
}

/// The same values as [`small_dense`], stored sparse.
fn small_sparse() -> Dataset {
    let mut indptr = vec![0];
    let (mut idx, mut val) = (vec![], vec![]);
    for r in 0..4u32 {
        if r > 0 {
            idx.push(0);
            val.push(r as f32);
        }
        idx.push(2);
        val.push(10.0 + r as f32);
        indptr.push(idx.len());
    }
    let csr = Csr::new(indptr, idx, val, 3).unwrap();
    Dataset::new("s", Features::Sparse(csr), vec![0, 1, 1, 2], names(3)).unwrap()
}

#[test]
fn errors_can_cross_threads() {
    fn send_sync<T: Send + Sync + std::error::Error + 'static>() {}
    send_sync::<DataError>();
}

#[test]
fn constructors_check_invariants() {
    assert!(Dense::new(vec![1.0; 5], 2).is_err());
    assert!(
        Csr::new(vec![0, 2], vec![1, 1], vec![1.0, 1.0], 3).is_err(),
        "duplicate index"
    );
    assert!(
        Csr::new(vec![0, 2], vec![2, 1], vec![1.0, 1.0], 3).is_err(),
        "descending"
    );
    assert!(
        Csr::new(vec![0, 1], vec![3], vec![1.0], 3).is_err(),
        "index >= dim"
    );
    assert!(
        Csr::new(vec![0, 2, 1], vec![0, 1], vec![1.0, 1.0], 3).is_err(),
        "indptr decreases"
    );
    assert!(
        Csr::new(vec![1, 1], vec![0], vec![1.0], 3).is_err(),
        "indptr[0] != 0"
    );
    assert!(Csr::new(vec![0, 1], vec![0], vec![], 3).is_err(), "lengths");
    let d = Dense::new(vec![1.0; 4], 2).unwrap();
    let e = Dataset::new("x", Features::Dense(d.clone()), vec![0, 5], names(3)).unwrap_err();
    assert!(e.to_string().contains("label 5"), "{e}");
    assert!(Dataset::new("x", Features::Dense(d.clone()), vec![0], names(3)).is_err());
    let ok = Dataset::new("x", Features::Dense(d), vec![0, 1], names(2)).unwrap();
    assert!(ok.clone().with_feature_names(vec!["a".into()]).is_err());
    assert!(ok
        .with_image(ImageShape {
            channels: 1,
            height: 2,
            width: 2
        })
        .is_err());
}

#[test]
fn subset_take_and_label_counts() {
    for d in [small_dense(), small_sparse()] {
        assert_eq!(d.label_counts(), [1, 2, 1]);
        let s = d.subset(&[3, 0, 3]).unwrap();
        assert_eq!(s.labels(), [2, 0, 2]);
        let mut x = vec![0.0; 9];
        let mut y = vec![0; 3];
        s.gather_dense(&[0, 1, 2], &mut x, &mut y).unwrap();
        assert_eq!(x, [3.0, 0.0, 13.0, 0.0, 0.0, 10.0, 3.0, 0.0, 13.0]);
        assert!(d.subset(&[4]).is_err());
        let t = d.clone().take(2);
        assert_eq!((t.len(), t.labels()), (2, &[0, 1][..]));
        assert_eq!(d.clone().take(10).len(), 4);
        assert_eq!(d.take(0).len(), 0);
    }
}

#[test]
fn gather_dense_and_csr_batch_agree_for_both_storages() {
    let rows = [2, 0, 3];
    for d in [small_dense(), small_sparse()] {
        let mut x = vec![f32::NAN; 9];
        let mut y = vec![99; 3];
        d.gather_dense(&rows, &mut x, &mut y).unwrap();
        assert_eq!(x, [2.0, 0.0, 12.0, 0.0, 0.0, 10.0, 3.0, 0.0, 13.0]);
        assert_eq!(y, [1, 0, 2]);

        let mut b = CsrBatch::new();
        b.fill(&d, &rows).unwrap();
        assert_eq!(b.indptr(), [0, 2, 3, 5]);
        assert_eq!(b.indices(), [0, 2, 2, 0, 2]);
        assert_eq!(b.values(), [2.0, 12.0, 10.0, 3.0, 13.0]);
        assert_eq!(b.labels(), [1, 0, 2]);
        assert_eq!((b.len(), b.dim()), (3, 3));
        // Refilling reuses the buffers and forgets the old batch.
        b.fill(&d, &[1]).unwrap();
        assert_eq!(
            (b.indptr(), b.indices(), b.labels()),
            (&[0, 2][..], &[0, 2][..], &[1][..])
        );
        assert_eq!(b.row(0), Some((&[0u32, 2][..], &[1.0f32, 11.0][..])));
        assert!(b.row(1).is_none());

        // A batch no larger than before reuses the same buffers.
        b.fill(&d, &[3, 2, 1]).unwrap();
        let ptrs = (
            b.indptr().as_ptr(),
            b.indices().as_ptr(),
            b.values().as_ptr(),
        );
        b.fill(&d, &rows).unwrap();
        assert_eq!(
            ptrs,
            (
                b.indptr().as_ptr(),
                b.indices().as_ptr(),
                b.values().as_ptr()
            )
        );

        assert!(d.gather_dense(&rows, &mut x[..8], &mut y).is_err());
        assert!(d.gather_dense(&[4], &mut x[..3], &mut y[..1]).is_err());
        assert!(b.fill(&d, &[7]).is_err());
    }
}

#[test]
fn validation_split_is_seeded_disjoint_and_complete() {
    let o = |seed| LoadOptions {
        valid: Some(ValidSplit::Count(500)),
        seed,
        normalise: Normalise::None,
        ..LoadOptions::default()
    };
    let a = load("builtin:fashion-mnist-small", &o(1)).unwrap();
    let b = load("builtin:fashion-mnist-small", &o(1)).unwrap();
    let c = load("builtin:fashion-mnist-small", &o(2)).unwrap();
    let (va, vb, vc) = (a.valid.unwrap(), b.valid.unwrap(), c.valid.unwrap());
    assert_eq!((a.train.len(), va.len()), (5500, 500));
    assert_eq!(va, vb);
    assert_ne!(va.labels(), vc.labels());
    // Together the two splits hold every training image exactly once.
    let all = load(
        "builtin:fashion-mnist-small",
        &LoadOptions {
            normalise: Normalise::None,
            ..LoadOptions::default()
        },
    )
    .unwrap()
    .train;
    let rows = |d: &Dataset| -> Vec<Vec<u8>> {
        let Features::Dense(m) = d.features() else {
            unreachable!()
        };
        m.values()
            .chunks(784)
            .map(|r| r.iter().map(|&p| p as u8).collect())
            .collect()
    };
    let mut parts = rows(&a.train);
    parts.extend(rows(&va));
    let mut whole = rows(&all);
    parts.sort();
    whole.sort();
    assert_eq!(parts, whole);

    for bad in [
        ValidSplit::Fraction(0.0),
        ValidSplit::Fraction(1.0),
        ValidSplit::Count(6000),
    ] {
        let e = load(
            "builtin:fashion-mnist-small",
            &LoadOptions {
                valid: Some(bad),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, DataError::BadOption { .. }), "{e:?}");
    }
}

#[test]
fn standardise_uses_training_statistics_for_every_split() {
    let s = load(
        "builtin:fashion-mnist-small",
        &LoadOptions {
            normalise: Normalise::Standardise,
            valid: Some(ValidSplit::Fraction(0.2)),
            limit_train: Some(2000),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let Features::Dense(m) = s.train.features() else {
        unreachable!()
    };
    let (n, dim) = (m.rows(), m.dim());
    assert_eq!(n, 1600);
    let mut constant = 0;
    for j in 0..dim {
        let col: Vec<f64> = (0..n).map(|i| m.values()[i * dim + j] as f64).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-4, "feature {j} mean {mean}");
        if var == 0.0 {
            constant += 1;
            assert!(col.iter().all(|&x| x == 0.0));
        } else {
            assert!((var - 1.0).abs() < 1e-3, "feature {j} var {var}");
        }
    }
    assert!(constant < 10, "{constant} constant features");
    // The validation split is mapped with the training statistics: check
    // one feature against the raw pixels.
    let raw = load(
        "builtin:fashion-mnist-small",
        &LoadOptions {
            normalise: Normalise::None,
            valid: Some(ValidSplit::Fraction(0.2)),
            limit_train: Some(2000),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let column = |d: &Dataset, j: usize| -> Vec<f64> {
        let Features::Dense(m) = d.features() else {
            unreachable!()
        };
        m.values().chunks(dim).map(|r| r[j] as f64).collect()
    };
    let j = 400;
    let train_raw = column(&raw.train, j);
    let mean = train_raw.iter().sum::<f64>() / n as f64;
    let std = (train_raw.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let valid = s.valid.unwrap();
    let (got, want) = (column(&valid, j), column(raw.valid.as_ref().unwrap(), j));
    assert_eq!(got.len(), 400);
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - (w - mean) / std).abs() < 1e-4,
            "{g} vs {}",
            (w - mean) / std
        );
    }
    let valid_mean = got.iter().sum::<f64>() / got.len() as f64;
    assert!(
        valid_mean.abs() > 1e-9,
        "validation must not be centred on its own mean"
    );
}

#[test]
fn unknown_specs_and_builtins_list_the_alternatives() {
    let e = load("csv:data.csv", &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::UnknownSpec { .. }), "{e:?}");
    let m = e.to_string();
    for form in SPEC_FORMS {
        assert!(m.contains(form), "{m}");
    }
    let e = load("builtin:mnist", &LoadOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::UnknownBuiltin { .. }), "{e:?}");
    assert!(e.to_string().contains("fashion-mnist-small"), "{e}");
    assert_eq!(builtin_names(), ["fashion-mnist-small", "shakespeare"]);
}

#[test]
fn stats_of_the_builtin_set() {
    let s = load("builtin:fashion-mnist-small", &LoadOptions::default()).unwrap();
    let st = stats(&s.train);
    assert_eq!((st.examples, st.features, st.classes), (6000, 784, 10));
    assert_eq!(st.class_counts, [600; 10]);
    assert!((st.class_balance - 1.0).abs() < 1e-12);
    assert_eq!(st.majority_fraction, 0.1);
    // Fashion-MNIST images are about half non-zero pixels.
    assert!(st.density > 0.3 && st.density < 0.7, "{}", st.density);
    assert_eq!(st.doc_freq.iter().sum::<u64>(), st.nonzeros);
    assert!(st.gini > 0.0 && st.gini < 0.5, "{}", st.gini);
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json["classes"], 10);
    assert_eq!(json["gini"].as_f64(), Some(st.gini));
}

// ------------------------------------------------------------ robustness

fn no_panic_on(bytes: &[u8]) {
    let _ = parse_idx_images(bytes, "fuzz");
    let _ = parse_idx_labels(bytes, "fuzz");
    let _ = parse_cifar_batch(bytes, "fuzz");
    let _ = parse_libsvm(bytes, "fuzz", None);
    let labels = LabelMap::new(&["0", "1"]).unwrap();
    for r in LibsvmStream::new(bytes, "fuzz", 8, false, labels) {
        let _ = r;
    }
}

#[test]
fn every_truncation_of_valid_files_is_an_error_not_a_panic() {
    let images = idx_images(3, 2, 2, &ramp(3, 4, 0));
    let labels = idx_labels(&[1, 2, 3]);
    for (whole, gzip) in [
        (images.clone(), false),
        (gz(&images), true),
        (labels.clone(), false),
        (gz(&labels), true),
    ] {
        assert!(parse_idx_images(&whole, "ok").is_ok() || parse_idx_labels(&whole, "ok").is_ok());
        for cut in 0..whole.len() {
            let part = &whole[..cut];
            assert!(
                parse_idx_images(part, "cut").is_err(),
                "cut {cut} gz {gzip}"
            );
            assert!(
                parse_idx_labels(part, "cut").is_err(),
                "cut {cut} gz {gzip}"
            );
            no_panic_on(part);
        }
    }
    let rec = cifar_record(4, 9);
    for cut in 0..rec.len() {
        assert!(parse_cifar_batch(&rec[..cut], "cut").is_err());
    }
    assert!(parse_cifar_batch(&rec, "whole").is_ok());
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut rng = Rng::new(42);
    let seeds: Vec<Vec<u8>> = vec![
        idx_images(2, 3, 3, &ramp(2, 9, 0)),
        gz(&idx_images(2, 3, 3, &ramp(2, 9, 0))),
        idx_labels(&[0, 1, 2]),
        cifar_record(1, 0),
        b"+1 1:0.5 3:1 # c\n-1 qid:2 2:1e3\n".to_vec(),
        gz(b"1 1:1\n0 2:2\n"),
    ];
    for _ in 0..3000 {
        let mut b = seeds[rng.below(seeds.len() as u64) as usize].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !b.is_empty() => {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] = rng.below(256) as u8;
                }
                1 => b.truncate(rng.below(b.len() as u64 + 1) as usize),
                2 => {
                    let i = rng.below(b.len() as u64 + 1) as usize;
                    b.insert(i, rng.below(256) as u8);
                }
                _ => {
                    // Header fields pushed to extremes.
                    if b.len() >= 8 {
                        let i = 4 + rng.below(b.len().min(16) as u64 - 4) as usize;
                        b[i] = 0xff;
                    }
                }
            }
        }
        no_panic_on(&b);
    }
    for len in 0..64 {
        let b: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        no_panic_on(&b);
    }
}
