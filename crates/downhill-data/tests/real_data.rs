//! Real data: Fashion-MNIST where it is installed, and the embedded subset.

use downhill_data::builtin::{builtin_files, select_balanced};
use downhill_data::*;
use std::path::Path;
use std::time::Instant;

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

/// Whether `test` can run: skips visibly, or fails under `CI=true`, when the
/// data set is missing (policy: `downhill_testenv`).
fn installed(test: &str) -> bool {
    downhill_testenv::require_path(
        test,
        Path::new(FASHION).join("train-images-idx3-ubyte.gz"),
        "apt-get install dataset-fashion-mnist",
    )
}

#[test]
fn fashion_mnist_loads_completely() {
    if !installed("fashion_mnist_loads_completely") {
        return;
    }
    let start = Instant::now();
    let s = load(&format!("idx:{FASHION}"), &LoadOptions::default()).unwrap();
    println!(
        "loaded Fashion-MNIST (gz) in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    let test = s.test.unwrap();
    assert_eq!((s.train.len(), test.len()), (60_000, 10_000));
    assert_eq!((s.train.dim(), s.train.classes()), (784, 10));
    assert_eq!(s.train.label_counts(), [6000; 10]);
    assert_eq!(test.label_counts(), [1000; 10]);
    assert_eq!(s.train.class_names()[0], "T-shirt/top");
    assert_eq!(s.train.name(), "fashion-mnist");
    let Features::Dense(m) = s.train.features() else {
        panic!("dense expected")
    };
    assert!(m.values().iter().all(|&x| (0.0..=1.0).contains(&x)));
    assert!(m.values().contains(&1.0));
    // The first training image is an ankle boot (label 9) in every copy of the set.
    assert_eq!(s.train.labels()[0], 9);
}

#[test]
fn builtin_matches_the_originals() {
    if !installed("builtin_matches_the_originals") {
        return;
    }
    let files = builtin_files("fashion-mnist-small").unwrap();
    for (prefix, per_class, images, labels) in [
        ("train", 600, files.train_images, files.train_labels),
        ("t10k", 100, files.test_images, files.test_labels),
    ] {
        let read = |kind: &str| {
            let p = Path::new(FASHION).join(format!("{prefix}-{kind}.gz"));
            (std::fs::read(&p).unwrap(), p.display().to_string())
        };
        let (ib, io) = read("images-idx3-ubyte");
        let (lb, lo) = read("labels-idx1-ubyte");
        let orig_images = parse_idx_images(&ib, &io).unwrap();
        let orig_labels = parse_idx_labels(&lb, &lo).unwrap();
        let picked = select_balanced(&orig_labels, 10, per_class).unwrap();

        let emb_images = parse_idx_images(images, "embedded").unwrap();
        let emb_labels = parse_idx_labels(labels, "embedded").unwrap();
        assert_eq!((emb_images.rows, emb_images.cols), (28, 28));
        assert_eq!(emb_images.count, 10 * per_class);
        assert_eq!(emb_labels.len(), 10 * per_class);
        for (k, &i) in picked.iter().enumerate() {
            assert_eq!(
                emb_images.pixels[k * 784..(k + 1) * 784],
                orig_images.pixels[i * 784..(i + 1) * 784],
                "{prefix} embedded image {k} differs from original {i}"
            );
            assert_eq!(emb_labels[k], orig_labels[i], "{prefix} label {k}");
        }
    }
}

#[test]
fn builtin_is_balanced_and_scaled() {
    let s = load("builtin:fashion-mnist-small", &LoadOptions::default()).unwrap();
    let test = s.test.unwrap();
    assert_eq!((s.train.len(), test.len()), (6000, 1000));
    assert_eq!(s.train.label_counts(), [600; 10]);
    assert_eq!(test.label_counts(), [100; 10]);
    assert_eq!(
        s.train.image(),
        Some(ImageShape {
            channels: 1,
            height: 28,
            width: 28
        })
    );
    assert_eq!(s.train.class_names(), FASHION_MNIST_CLASSES);
    let limited = load(
        "builtin:fashion-mnist-small",
        &LoadOptions {
            limit_train: Some(100),
            limit_test: Some(10),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        (limited.train.len(), limited.test.unwrap().len()),
        (100, 10)
    );
    assert_eq!(limited.train.labels(), &s.train.labels()[..100]);
}
