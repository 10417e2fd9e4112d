//! Every loader on tiny generated files, good and broken: the result, the
//! exact error kind, and that the message names the file.

mod common;

use common::*;
use downhill_data::*;
use std::path::Path;
use tempfile::TempDir;

fn opts() -> LoadOptions {
    LoadOptions::default()
}

fn dense(d: &Dataset) -> &[f32] {
    match d.features() {
        Features::Dense(m) => m.values(),
        Features::Sparse(_) => panic!("expected dense features"),
    }
}

fn sparse(d: &Dataset) -> &Csr {
    match d.features() {
        Features::Sparse(m) => m,
        Features::Dense(_) => panic!("expected sparse features"),
    }
}

fn load_dir(prefix: &str, dir: &Path, o: &LoadOptions) -> Result<DataSplit, DataError> {
    load(&format!("{prefix}:{}", dir.display()), o)
}

/// Asserts the message mentions `needle` (usually a file name) and returns it.
fn message_has(e: &DataError, needles: &[&str]) -> String {
    let m = e.to_string();
    for n in needles {
        assert!(m.contains(n), "message {m:?} lacks {n:?}");
    }
    m
}

// ---------------------------------------------------------------- IDX

#[test]
fn idx_raw_loads_and_scales() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), false, false);
    let s = load_dir("idx", t.path(), &opts()).unwrap();
    assert_eq!(
        (s.train.len(), s.train.dim(), s.train.classes()),
        (5, 6, 10)
    );
    assert_eq!(
        s.train.image(),
        Some(ImageShape {
            channels: 1,
            height: 2,
            width: 3
        })
    );
    assert_eq!(s.train.labels(), [3, 0, 9, 3, 1]);
    assert_eq!(s.train.class_names()[3], "3");
    let x = dense(&s.train);
    assert_eq!(x[7], 7.0 / 255.0);
    let test = s.test.unwrap();
    assert_eq!(test.labels(), [7, 2]);
    assert_eq!(dense(&test)[0], 100.0 / 255.0);
    assert!(s.valid.is_none());

    let raw = load_dir(
        "idx",
        t.path(),
        &LoadOptions {
            normalise: Normalise::None,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(dense(&raw.train)[29], 29.0);
}

#[test]
fn idx_gz_and_dotted_names_give_the_same_data() {
    let raw = TempDir::new().unwrap();
    mnist_dir(raw.path(), false, false);
    let a = load_dir("idx", raw.path(), &opts()).unwrap();
    for (gzip, dotted) in [(true, false), (false, true), (true, true)] {
        let t = TempDir::new().unwrap();
        mnist_dir(t.path(), gzip, dotted);
        let b = load_dir("idx", t.path(), &opts()).unwrap();
        assert_eq!(
            a.train.features(),
            b.train.features(),
            "gz={gzip} dotted={dotted}"
        );
        assert_eq!(a.train.labels(), b.train.labels());
        let (ta, tb) = (a.test.as_ref().unwrap(), b.test.as_ref().unwrap());
        assert_eq!((ta.features(), ta.labels()), (tb.features(), tb.labels()));
    }
}

#[test]
fn idx_fashion_names_from_folder_or_option() {
    let t = TempDir::new().unwrap();
    let dir = t.path().join("My-Fashion-data");
    mnist_dir(&dir, true, false);
    let s = load_dir("idx", &dir, &opts()).unwrap();
    assert_eq!(s.train.class_names()[0], "T-shirt/top");
    assert_eq!(s.train.name(), "fashion-mnist");
    let s = load_dir(
        "idx",
        &dir,
        &LoadOptions {
            idx_classes: IdxClasses::Digits,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(s.train.class_names()[0], "0");

    let plain = TempDir::new().unwrap();
    mnist_dir(plain.path(), false, false);
    let s = load_dir(
        "idx",
        plain.path(),
        &LoadOptions {
            idx_classes: IdxClasses::Fashion,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(s.train.class_names()[9], "Ankle boot");
}

#[test]
fn idx_test_files_are_optional_but_come_in_pairs() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), false, false);
    std::fs::remove_file(t.path().join("t10k-images-idx3-ubyte")).unwrap();
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }), "{e:?}");
    message_has(&e, &["t10k images", "t10k-images-idx3-ubyte.gz"]);

    std::fs::remove_file(t.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let s = load_dir("idx", t.path(), &opts()).unwrap();
    assert!(s.test.is_none());
    assert_eq!(s.train.len(), 5);
}

#[test]
fn idx_missing_training_files_list_what_was_looked_for() {
    let t = TempDir::new().unwrap();
    write(&t.path().join("readme.txt"), b"nothing here");
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }), "{e:?}");
    message_has(
        &e,
        &[
            "train-images-idx3-ubyte",
            "train-images-idx3-ubyte.gz",
            "train-images.idx3-ubyte",
        ],
    );
}

#[test]
fn empty_or_absent_folders_are_errors_naming_the_folder() {
    let t = TempDir::new().unwrap();
    for prefix in ["idx", "cifar10", "imdb"] {
        let e = load_dir(prefix, t.path(), &opts()).unwrap_err();
        assert!(
            matches!(e, DataError::EmptyFolder { .. }),
            "{prefix}: {e:?}"
        );
        message_has(&e, &[&t.path().display().to_string()]);
    }
    let gone = t.path().join("does-not-exist");
    let e = load_dir("idx", &gone, &opts()).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e:?}");
    message_has(&e, &["does-not-exist"]);
}

#[test]
fn idx_truncated_file_says_where() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), false, false);
    let p = t.path().join("train-images-idx3-ubyte");
    // 16-byte header + 3 whole images + 2 pixels of the 4th.
    write(&p, &idx_images(5, 2, 3, &ramp(5, 6, 0))[..16 + 3 * 6 + 2]);
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    match &e {
        DataError::Truncated {
            expected, found, ..
        } => assert_eq!((*expected, *found), (46, 36)),
        _ => panic!("{e:?}"),
    }
    message_has(&e, &["train-images-idx3-ubyte", "image 3 of 5", "46", "36"]);

    // A header cut short.
    write(&p, &idx_images(5, 2, 3, &[])[..10]);
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 16,
                found: 10,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(&e, &["train-images-idx3-ubyte", "header"]);
}

#[test]
fn idx_truncated_gzip_content_and_broken_gzip_stream() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), true, false);
    let p = t.path().join("train-labels-idx1-ubyte.gz");
    // Valid gzip whose content is short: 3 of 5 labels.
    write(&p, &gz(&idx_labels(&[1, 2, 3, 4, 5])[..11]));
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 13,
                found: 11,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(
        &e,
        &["train-labels-idx1-ubyte.gz", "label 3 of 5", "decompressed"],
    );

    // A gzip stream cut in the middle.
    let whole = gz(&idx_images(5, 2, 3, &ramp(5, 6, 0)));
    let p = t.path().join("train-images-idx3-ubyte.gz");
    write(&p, &whole[..whole.len() - 12]);
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::Gzip { .. }), "{e:?}");
    message_has(&e, &["train-images-idx3-ubyte.gz"]);
}

#[test]
fn idx_wrong_magic_names_both_magics() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), false, false);
    // A labels file where the images should be.
    write(
        &t.path().join("train-images-idx3-ubyte"),
        &idx_labels(&[1, 2, 3, 4, 5]),
    );
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::BadMagic { .. }), "{e:?}");
    message_has(
        &e,
        &["train-images-idx3-ubyte", "00 00 08 03", "00 00 08 01"],
    );

    write(
        &t.path().join("train-images-idx3-ubyte"),
        b"PK\x03\x04 zip file",
    );
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::BadMagic { .. }), "{e:?}");
    message_has(&e, &["not an IDX file"]);
}

#[test]
fn idx_count_mismatch_names_both_files() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), false, false);
    write(
        &t.path().join("t10k-labels-idx1-ubyte"),
        &idx_labels(&[1, 2, 3]),
    );
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::CountMismatch {
                image_count: 2,
                label_count: 3,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(&e, &["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]);
}

#[test]
fn idx_label_out_of_range_gives_record_and_offset() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), false, false);
    write(
        &t.path().join("train-labels-idx1-ubyte"),
        &idx_labels(&[1, 2, 3, 10, 5]),
    );
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                record: 3,
                offset: 11,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(&e, &["train-labels-idx1-ubyte", "record 3", "0..=9"]);
}

#[test]
fn idx_test_images_of_another_size_are_rejected() {
    let t = TempDir::new().unwrap();
    mnist_dir(t.path(), false, false);
    write(
        &t.path().join("t10k-images-idx3-ubyte"),
        &idx_images(2, 3, 3, &ramp(2, 9, 0)),
    );
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::ShapeMismatch { .. }), "{e:?}");
    message_has(&e, &["t10k-images-idx3-ubyte", "3x3", "2x3"]);
}

#[test]
fn idx_trailing_data_and_impossible_headers() {
    let mut bytes = idx_images(1, 2, 2, &[1, 2, 3, 4]);
    bytes.push(0);
    let e = parse_idx_images(&bytes, "extra.idx").unwrap_err();
    assert!(
        matches!(e, DataError::TrailingData { expected: 20, .. }),
        "{e:?}"
    );
    message_has(&e, &["extra.idx"]);
    let e = parse_idx_images(&gz(&bytes), "extra.idx.gz").unwrap_err();
    assert!(matches!(e, DataError::TrailingData { .. }), "{e:?}");

    // Claims 4 billion images of 28x28 in a 20-byte file: must fail fast
    // without reserving the claimed 3 TB.
    let e = parse_idx_images(&idx_images(u32::MAX, 28, 28, &[0; 4]), "claim").unwrap_err();
    assert!(matches!(e, DataError::Truncated { found: 20, .. }), "{e:?}");
    let e = parse_idx_images(&gz(&idx_images(u32::MAX, 28, 28, &[0; 4])), "claim").unwrap_err();
    assert!(matches!(e, DataError::Truncated { found: 20, .. }), "{e:?}");
    let e = parse_idx_images(&idx_images(1, 0, 28, &[]), "zero").unwrap_err();
    assert!(matches!(e, DataError::BadHeader { offset: 8, .. }), "{e:?}");
    // Zero images is a valid (empty) file.
    let empty = parse_idx_images(&idx_images(0, 28, 28, &[]), "none").unwrap();
    assert_eq!(empty.count, 0);
}

#[test]
fn idx_empty_training_set_is_an_error() {
    let t = TempDir::new().unwrap();
    write(
        &t.path().join("train-images-idx3-ubyte"),
        &idx_images(0, 2, 2, &[]),
    );
    write(&t.path().join("train-labels-idx1-ubyte"), &idx_labels(&[]));
    let e = load_dir("idx", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::NoExamples { .. }), "{e:?}");
}

// ---------------------------------------------------------------- CIFAR-10

fn cifar_dir(dir: &Path) {
    let mut b1 = cifar_record(3, 0);
    b1.extend(cifar_record(9, 1));
    write(&dir.join("data_batch_1.bin"), &b1);
    let mut b3 = cifar_record(0, 2);
    b3.extend(cifar_record(5, 3));
    write(&dir.join("data_batch_3.bin"), &b3);
    write(&dir.join("test_batch.bin"), &cifar_record(7, 4));
}

#[test]
fn cifar_uses_the_batches_present_in_order() {
    let t = TempDir::new().unwrap();
    cifar_dir(t.path());
    let s = load_dir("cifar10", t.path(), &opts()).unwrap();
    assert_eq!(s.train.labels(), [3, 9, 0, 5]);
    assert_eq!(s.train.dim(), 3072);
    assert_eq!(
        s.train.image(),
        Some(ImageShape {
            channels: 3,
            height: 32,
            width: 32
        })
    );
    assert_eq!(s.train.class_names()[0], "airplane");
    // Record 2 (batch 3, first) starts with pixel value 2; the green plane of
    // record 0 starts at 1024 (mod 256 = 0).
    let x = dense(&s.train);
    assert_eq!(x[2 * 3072], 2.0 / 255.0);
    assert_eq!(x[1024], 0.0);
    assert_eq!(x[1025], 1.0 / 255.0);
    assert_eq!(s.test.unwrap().labels(), [7]);
}

#[test]
fn cifar_meta_names_nested_folder_and_optional_test() {
    let t = TempDir::new().unwrap();
    let inner = t.path().join("cifar-10-batches-bin");
    cifar_dir(&inner);
    std::fs::remove_file(inner.join("test_batch.bin")).unwrap();
    let names: String = (0..10).map(|i| format!("class{i}\n")).collect();
    write(
        &inner.join("batches.meta.txt"),
        format!("{names}\n\n").as_bytes(),
    );
    let s = load_dir("cifar10", t.path(), &opts()).unwrap();
    assert_eq!(s.train.class_names()[9], "class9");
    assert!(s.test.is_none());

    write(&inner.join("batches.meta.txt"), b"a\nb\n");
    let e = load_dir("cifar10", t.path(), &opts()).unwrap_err();
    message_has(&e, &["batches.meta.txt", "10 class names", "found 2"]);
}

#[test]
fn cifar_missing_batches_list_what_was_looked_for() {
    let t = TempDir::new().unwrap();
    write(&t.path().join("test_batch.bin"), &cifar_record(1, 0));
    let e = load_dir("cifar10", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }), "{e:?}");
    message_has(&e, &["data_batch_1.bin", "data_batch_5.bin"]);
}

#[test]
fn cifar_truncated_bad_label_and_empty_batches() {
    let t = TempDir::new().unwrap();
    cifar_dir(t.path());
    let mut b = cifar_record(1, 0);
    b.extend(&cifar_record(2, 0)[..100]);
    write(&t.path().join("data_batch_3.bin"), &b);
    let e = load_dir("cifar10", t.path(), &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 6146,
                found: 3173,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(&e, &["data_batch_3.bin", "record 1"]);

    let mut b = cifar_record(1, 0);
    b.extend(cifar_record(10, 0));
    write(&t.path().join("data_batch_3.bin"), &b);
    let e = load_dir("cifar10", t.path(), &opts()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                record: 1,
                offset: 3073,
                label: 10,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(&e, &["data_batch_3.bin"]);

    write(&t.path().join("data_batch_3.bin"), b"");
    let e = load_dir("cifar10", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::NoExamples { .. }), "{e:?}");
    message_has(&e, &["data_batch_3.bin"]);
}

// ---------------------------------------------------------------- IMDB

fn imdb_dir(dir: &Path) {
    write(
        &dir.join("train/pos/0_9.txt"),
        b"A great, GREAT film.<br /><br />Loved it!",
    );
    write(&dir.join("train/pos/10_8.txt"), b"great acting; it's great");
    write(&dir.join("train/pos/2_7.txt"), b"loved the film");
    write(
        &dir.join("train/neg/0_2.txt"),
        b"A bad film. Bad bad acting.",
    );
    write(&dir.join("train/neg/1_1.txt"), b"boring film, it's bad");
    write(&dir.join("train/pos/notes.md"), b"not a review");
    write(&dir.join("train/unsup/0_0.txt"), b"zebra zebra zebra zebra");
    write(&dir.join("test/pos/0_10.txt"), b"great great film zebra");
    write(&dir.join("test/neg/0_1.txt"), b"bad");
}

#[test]
fn imdb_bag_of_words_binary() {
    let t = TempDir::new().unwrap();
    imdb_dir(t.path());
    let s = load_dir("imdb", t.path(), &opts()).unwrap();
    // Interleaved: neg 0_2, pos 0_9, neg 1_1, pos 2_7, pos 10_8.
    assert_eq!(s.train.labels(), [0, 1, 0, 1, 1]);
    assert_eq!(s.train.class_names(), ["neg", "pos"]);
    // Counts: film 4, great 4, bad 4, it's 2, acting 2, loved 2, a 2, ...
    let words = s.train.feature_names();
    assert_eq!(
        &words[..7],
        ["bad", "film", "great", "a", "acting", "it's", "loved"]
    );
    assert!(!words
        .iter()
        .any(|w| w == "zebra" || w == "br" || w == "not"));
    let m = sparse(&s.train);
    // First review "A bad film. Bad bad acting.": a, bad, film, acting.
    let (idx, val) = m.row(0).unwrap();
    assert_eq!(idx, [0, 1, 3, 4]);
    assert_eq!(val, [1.0; 4]);
    let test = s.test.unwrap();
    let (idx, _) = sparse(&test).row(1).unwrap();
    assert_eq!(idx, [1, 2], "great, film; zebra is out of vocabulary");
}

#[test]
fn imdb_counts_tfidf_and_vocab_size() {
    let t = TempDir::new().unwrap();
    imdb_dir(t.path());
    let o = LoadOptions {
        vocab_size: 3,
        bag_of_words: BagOfWords::Counts,
        ..opts()
    };
    let s = load_dir("imdb", t.path(), &o).unwrap();
    assert_eq!(s.train.dim(), 3);
    let (idx, val) = sparse(&s.train).row(0).unwrap();
    assert_eq!((idx, val), (&[0u32, 1][..], &[3.0f32, 1.0][..]));

    let o = LoadOptions {
        bag_of_words: BagOfWords::TfIdf,
        ..opts()
    };
    let s = load_dir("imdb", t.path(), &o).unwrap();
    let m = sparse(&s.train);
    for r in 0..m.rows() {
        let (_, v) = m.row(r).unwrap();
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {r} norm {norm}");
    }
    // Row 0 by feature: bad (3 times, in 2 of 5 reviews), film (in 4), a (2),
    // acting (2); idf = ln((1 + 5) / (1 + df)) + 1.
    let (_, v) = m.row(0).unwrap();
    let idf = |df: f64| ((6.0 / (1.0 + df)).ln() + 1.0) as f32;
    let raw = [3.0 * idf(2.0), idf(4.0), idf(2.0), idf(2.0)];
    let n: f32 = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    for (a, b) in v.iter().zip(raw) {
        assert!((a - b / n).abs() < 1e-6, "{v:?}");
    }
}

#[test]
fn imdb_non_utf8_names_the_file_unless_lossy() {
    let t = TempDir::new().unwrap();
    imdb_dir(t.path());
    write(&t.path().join("train/neg/5_3.txt"), b"bad \xff\xfe film");
    let e = load_dir("imdb", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::NonUtf8 { offset: 4, .. }), "{e:?}");
    message_has(&e, &["5_3.txt", "byte 4"]);
    let s = load_dir(
        "imdb",
        t.path(),
        &LoadOptions {
            lossy_utf8: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(s.train.len(), 6);
}

#[test]
fn imdb_missing_or_empty_class_folders() {
    let t = TempDir::new().unwrap();
    imdb_dir(t.path());
    std::fs::remove_dir_all(t.path().join("test/neg")).unwrap();
    let e = load_dir("imdb", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }), "{e:?}");
    message_has(&e, &["test/neg/"]);

    std::fs::remove_dir_all(t.path().join("test")).unwrap();
    let s = load_dir("imdb", t.path(), &opts()).unwrap();
    assert!(s.test.is_none());

    for f in std::fs::read_dir(t.path().join("train/pos")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let e = load_dir("imdb", t.path(), &opts()).unwrap_err();
    assert!(matches!(e, DataError::EmptyFolder { .. }), "{e:?}");
    message_has(&e, &["train/pos"]);
}

#[test]
fn imdb_limit_keeps_classes_interleaved_and_vocab_ignores_validation() {
    let t = TempDir::new().unwrap();
    imdb_dir(t.path());
    let s = load_dir(
        "imdb",
        t.path(),
        &LoadOptions {
            limit_train: Some(2),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(s.train.labels(), [0, 1]);

    // With 4 of 5 reviews for validation, the vocabulary comes from the one
    // left in training.
    let s = load_dir(
        "imdb",
        t.path(),
        &LoadOptions {
            valid: Some(ValidSplit::Count(4)),
            ..opts()
        },
    )
    .unwrap();
    let (train, valid) = (s.train, s.valid.unwrap());
    assert_eq!((train.len(), valid.len()), (1, 4));
    let m = sparse(&train);
    let (idx, _) = m.row(0).unwrap();
    assert_eq!(
        idx.len(),
        train.dim(),
        "every vocabulary word is in the one training review"
    );
}

// ---------------------------------------------------------------- LIBSVM

#[test]
fn libsvm_train_and_test_one_based() {
    let t = TempDir::new().unwrap();
    let (tr, te) = (t.path().join("a.train"), t.path().join("a.test"));
    write(&tr, b"+1 1:0.5 3:1\n-1 2:2 # comment\n\n+1 qid:7 1:1\n");
    write(&te, b"-1 5:1\n+1 1:1\n");
    let s = load(
        &format!("libsvm:{},{}", tr.display(), te.display()),
        &opts(),
    )
    .unwrap();
    assert_eq!(s.train.class_names(), ["-1", "+1"]);
    assert_eq!(s.train.labels(), [1, 0, 1]);
    assert_eq!(s.train.dim(), 5, "max index over train and test");
    let m = sparse(&s.train);
    assert_eq!(m.row(0).unwrap(), (&[0u32, 2][..], &[0.5f32, 1.0][..]));
    assert_eq!(m.row(1).unwrap().0, [1]);
    let test = s.test.unwrap();
    assert_eq!(test.labels(), [0, 1]);
    assert_eq!(sparse(&test).row(0).unwrap().0, [4]);
    assert_eq!(s.train.name(), "a.train");
}

#[test]
fn libsvm_zero_based_auto_and_forced() {
    let t = TempDir::new().unwrap();
    let p = t.path().join("z.txt");
    write(&p, b"3 0:1 4:2\n7 1:1\n");
    let spec = format!("libsvm:{}", p.display());
    let s = load(&spec, &opts()).unwrap();
    assert_eq!(s.train.dim(), 5);
    assert_eq!(sparse(&s.train).row(0).unwrap().0, [0, 4]);
    assert_eq!(s.train.class_names(), ["3", "7"]);

    let e = load(
        &spec,
        &LoadOptions {
            libsvm_base: IndexBase::One,
            ..opts()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            DataError::IndexOutOfRange {
                line: 1,
                index: 0,
                ..
            }
        ),
        "{e:?}"
    );
    // As a 1-based file its largest index, 4, is the dimension.
    message_has(&e, &["z.txt:1", "1..=4"]);

    let e = load(
        &spec,
        &LoadOptions {
            dim: Some(3),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            DataError::IndexOutOfRange {
                line: 1,
                index: 4,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(&e, &["z.txt:1", "0..=2"]);

    let s = load(
        &spec,
        &LoadOptions {
            dim: Some(100),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(s.train.dim(), 100);
}

#[test]
fn libsvm_bad_token_gives_line_column_and_token() {
    let t = TempDir::new().unwrap();
    let p = t.path().join("bad.svm");
    for (text, token, line) in [
        (&b"1 1:1\n1 2:x\n"[..], "2:x", 2),
        (b"1 1:1\n\nabc 1:1\n", "abc", 3),
        (b"1 1:1 7\n", "7", 1),
        (b"1 -3:1\n", "-3:1", 1),
        (b"0.5 1:1\n", "0.5", 1),
        (b"1 1:inf\n", "1:inf", 1),
        (b"1 99999999999:1\n", "99999999999:1", 1),
        (b"1,2 1:1\n", "1,2", 1),
    ] {
        write(&p, text);
        let e = load(&format!("libsvm:{}", p.display()), &opts()).unwrap_err();
        match &e {
            DataError::BadToken {
                line: l, token: tk, ..
            } => assert_eq!((*l, tk.as_str()), (line, token), "{e}"),
            _ => panic!("{e:?}"),
        }
        message_has(&e, &[&format!("bad.svm:{line}:"), token]);
    }
    let e = parse_libsvm(b"1 1:1\n1 2:1 5:x", "in-memory", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "in-memory:2:7: bad token \"5:x\": expected a number after ':'"
    );
}

#[test]
fn libsvm_indices_must_ascend() {
    for text in [&b"1 1:1\n1 3:1 2:1\n"[..], b"1 1:1\n1 3:1 3:2\n"] {
        let e = parse_libsvm(text, "order.svm", None).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::IndexOrder {
                    line: 2,
                    previous: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        message_has(&e, &["order.svm:2"]);
    }
}

#[test]
fn libsvm_unseen_test_label_names_file_and_line() {
    let t = TempDir::new().unwrap();
    let (tr, te) = (t.path().join("tr.svm"), t.path().join("te.svm"));
    write(&tr, b"1 1:1\n2 2:1\n");
    write(&te, b"1 1:1\n2 1:1\n+3 2:1\n");
    let e = load(
        &format!("libsvm:{},{}", tr.display(), te.display()),
        &opts(),
    )
    .unwrap_err();
    assert!(
        matches!(e, DataError::UnknownLabel { line: 3, .. }),
        "{e:?}"
    );
    message_has(&e, &["te.svm:3", "\"+3\"", "1, 2"]);
}

#[test]
fn libsvm_empty_gz_and_missing_files() {
    let t = TempDir::new().unwrap();
    let p = t.path().join("empty.svm");
    write(&p, b"# nothing\n\n");
    let e = load(&format!("libsvm:{}", p.display()), &opts()).unwrap_err();
    assert!(matches!(e, DataError::NoExamples { .. }), "{e:?}");
    message_has(&e, &["empty.svm"]);

    let g = t.path().join("data.svm.gz");
    write(&g, &gz(b"1 2:3\n0 1:1\n"));
    let s = load(&format!("libsvm:{}", g.display()), &opts()).unwrap();
    assert_eq!((s.train.len(), s.train.dim()), (2, 2));
    assert_eq!(s.train.name(), "data.svm");

    let e = load(
        &format!("libsvm:{}", t.path().join("nope.svm").display()),
        &opts(),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e:?}");
    message_has(&e, &["nope.svm"]);
}

#[test]
fn libsvm_stream_reads_one_example_at_a_time() {
    let labels = LabelMap::new(&["-1", "+1"]).unwrap();
    let input = "+1 1:0.5 4:1\n\n-1 2:1\n2 1:1\n-1 9:1\n-1 x\n+1 3:2 # end\n";
    let mut s = LibsvmStream::new(std::io::Cursor::new(input), "<stdin>", 4, false, labels);
    let first = s.next().unwrap().unwrap();
    assert_eq!((first.label, first.line), (1, 1));
    assert_eq!(
        (first.indices.as_slice(), first.values.as_slice()),
        (&[0u32, 3][..], &[0.5f32, 1.0][..])
    );
    let second = s.next().unwrap().unwrap();
    assert_eq!(
        (second.label, second.line, second.indices.as_slice()),
        (0, 3, &[1u32][..])
    );
    let e = s.next().unwrap().unwrap_err();
    assert!(
        matches!(e, DataError::UnknownLabel { line: 4, .. }),
        "{e:?}"
    );
    message_has(&e, &["<stdin>:4", "-1, +1"]);
    let e = s.next().unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            DataError::IndexOutOfRange {
                line: 5,
                index: 9,
                ..
            }
        ),
        "{e:?}"
    );
    message_has(&e, &["<stdin>:5", "1..=4"]);
    let e = s.next().unwrap().unwrap_err();
    assert!(matches!(e, DataError::BadToken { line: 6, .. }), "{e:?}");
    // Reading goes on after a bad line, reusing buffers.
    let mut ex = SparseExample::default();
    assert!(s.read_into(&mut ex).unwrap());
    assert_eq!(
        (ex.label, ex.line, ex.indices.as_slice()),
        (1, 7, &[2u32][..])
    );
    assert!(s.next().is_none());
    assert_eq!(s.line(), 7);
}

#[test]
fn libsvm_stream_uses_the_training_label_order() {
    let t = TempDir::new().unwrap();
    let p = t.path().join("tr.svm");
    write(&p, b"10 1:1\n-2 1:1\n3 2:1\n");
    let s = load(&format!("libsvm:{}", p.display()), &opts()).unwrap();
    assert_eq!(s.train.class_names(), ["-2", "3", "10"]);
    let map = LabelMap::new(s.train.class_names()).unwrap();
    let stream = LibsvmStream::new(
        "3 1:1\n10.0 2:1\n".as_bytes(),
        "s",
        s.train.dim(),
        false,
        map,
    );
    let got: Vec<u32> = stream.map(|e| e.unwrap().label).collect();
    assert_eq!(got, [1, 2]);
    assert!(LabelMap::new(&["1", "+1"]).is_err());
    assert!(LabelMap::new(&["one"]).is_err());
}
