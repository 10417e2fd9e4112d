//! # downhill-data
//!
//! Loads the classification data sets people have on disk into memory, with
//! errors that say which file, where, and what was expected.
//!
//! | spec | source |
//! |---|---|
//! | `idx:DIR` | MNIST / Fashion-MNIST IDX files, raw or `.gz` |
//! | `cifar10:DIR` | CIFAR-10 binary batches |
//! | `imdb:DIR` | aclImdb review folders, as a sparse bag of words |
//! | `libsvm:TRAIN[,TEST]` | LIBSVM / svmlight text |
//! | `text:FILE[,VALID_FILE]` | UTF-8 text as characters, in windows for a language model |
//! | `builtin:NAME` | a small real set compiled in ([`builtin_names`]) |
//!
//! ```
//! use downhill_data::{load, LoadOptions, ValidSplit};
//!
//! let opts = LoadOptions { valid: Some(ValidSplit::Fraction(0.1)), ..LoadOptions::default() };
//! let data = load("builtin:fashion-mnist-small", &opts)?;
//! assert_eq!((data.train.len(), data.valid.as_ref().map(|v| v.len())), (5400, Some(600)));
//! assert_eq!(data.train.dim(), 784);
//! assert_eq!(data.train.class_names()[9], "Ankle boot");
//!
//! // A mini-batch, gathered into buffers that are reused every step.
//! let rows = [0, 17, 4242];
//! let (mut x, mut y) = (vec![0.0; rows.len() * 784], vec![0; rows.len()]);
//! data.train.gather_dense(&rows, &mut x, &mut y)?;
//! assert!(x.iter().all(|&p| (0.0..=1.0).contains(&p)));
//! # Ok::<(), downhill_data::DataError>(())
//! ```
//!
//! ## Text for language models
//!
//! `text:` data (and the embedded `builtin:shakespeare`) is a stream of
//! characters cut into overlapping windows of [`LoadOptions::sequence`] token
//! ids (context + 1); it is the one kind of data that needs `sequence`, and
//! its splits answer [`Dataset::is_text`]. The vocabulary is the training
//! text's distinct characters in code-point order, and held-out text (the
//! validation file, or else the last 10% of the characters) goes to `test`.
//!
//! ```
//! use downhill_data::{load, LoadOptions};
//!
//! let opts = LoadOptions { sequence: Some(129), ..LoadOptions::default() };
//! let data = load("builtin:shakespeare", &opts)?;
//! let (train, test) = (&data.train, data.test.as_ref().unwrap());
//! assert!(train.is_text() && test.is_text());
//! assert_eq!((train.dim(), train.classes()), (129, 76));
//! assert_eq!(train.class_names()[0], "\n");
//! // Window i holds tokens [128 i, 128 i + 129) and is labelled with its last
//! // token, which is also the first of window i + 1.
//! let (mut x, mut y) = (vec![0.0; 2 * 129], vec![0; 2]);
//! train.gather_dense(&[0, 1], &mut x, &mut y)?;
//! assert_eq!((y[0] as f32, x[129]), (x[128], x[128]));
//! # Ok::<(), downhill_data::DataError>(())
//! ```
//!
//! The `parse_*` functions take bytes and an origin name, so tests and fuzzers
//! can call them without files. No input makes them panic, and no buffer is
//! sized from a header's claim before the data proves it.

#![warn(missing_docs)]

pub mod builtin;
mod cifar;
mod dataset;
mod error;
mod idx;
mod imdb;
mod libsvm;
mod source;
mod stats;
mod text;
mod transform;

pub use builtin::builtin_names;
pub use cifar::{
    parse_cifar_batch, CifarBatch, CIFAR10_CLASSES, CIFAR_IMAGE_BYTES, CIFAR_RECORD_BYTES,
};
pub use dataset::{Csr, CsrBatch, DataSplit, Dataset, Dense, Features, ImageShape};
pub use error::DataError;
pub use idx::{parse_idx_images, parse_idx_labels, IdxImages, FASHION_MNIST_CLASSES};
pub use imdb::tokenize;
pub use libsvm::{parse_libsvm, IndexBase, LabelMap, LibsvmFile, LibsvmStream, SparseExample};
pub use stats::{stats, DataStats};
pub use text::{parse_text, text_vocabulary};

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How features are scaled after loading. Statistics always come from the
/// training split (after any validation carve-out) and are applied to every split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Normalise {
    /// [`Scale01`](Normalise::Scale01) for images, nothing for other data.
    #[default]
    Auto,
    /// Values as stored (pixels 0..=255).
    None,
    /// Images: pixel / 255, into `[0, 1]`. Other data: each feature divided
    /// by its largest absolute training value (keeps sparsity; non-negative
    /// features land in `[0, 1]`; a feature that is 0 throughout training
    /// becomes 0).
    Scale01,
    /// Each feature minus its training mean, divided by its training standard
    /// deviation (population); constant features become 0. Sparse data is
    /// divided by the standard deviation without centring, so zeros stay zero.
    Standardise,
}

impl Normalise {
    /// Whether image loaders should map pixels to `[0, 1]`.
    fn scales_pixels(self) -> bool {
        matches!(self, Normalise::Auto | Normalise::Scale01)
    }
}

/// How the training data is split for validation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValidSplit {
    /// This fraction of the training examples (rounded), strictly between 0 and 1.
    Fraction(f64),
    /// This many training examples.
    Count(usize),
}

/// The values of a bag of words (`imdb:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BagOfWords {
    /// 1 if the word occurs in the review.
    #[default]
    Binary,
    /// Number of occurrences.
    Counts,
    /// Occurrences times smoothed idf from the training reviews, each row
    /// scaled to unit L2 norm.
    TfIdf,
}

/// Class names for `idx:` data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdxClasses {
    /// Fashion-MNIST names when the folder's path contains "fashion"
    /// (any case), else digits.
    #[default]
    Auto,
    /// `"0"` to `"9"`.
    Digits,
    /// The Fashion-MNIST names ([`FASHION_MNIST_CLASSES`]).
    Fashion,
}

/// Options for [`load`]. The defaults suit most runs; build with
/// `LoadOptions { field: value, ..LoadOptions::default() }`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Feature scaling (default: pixels / 255 for images, nothing otherwise).
    pub normalise: Normalise,
    /// Carve a validation split from the training data (default: none).
    pub valid: Option<ValidSplit>,
    /// Seed of the validation carve (default 0).
    pub seed: u64,
    /// Keep only the first N training examples, before the carve (default: all).
    pub limit_train: Option<usize>,
    /// Keep only the first N test examples (default: all).
    pub limit_test: Option<usize>,
    /// `imdb:` vocabulary size K: the K most frequent training words (default 10,000).
    pub vocab_size: usize,
    /// `imdb:` feature values (default: binary).
    pub bag_of_words: BagOfWords,
    /// `imdb:` replace invalid UTF-8 with U+FFFD instead of failing (default: fail).
    pub lossy_utf8: bool,
    /// `idx:` class names (default: by folder name).
    pub idx_classes: IdxClasses,
    /// `libsvm:` index numbering (default: auto, like scikit-learn).
    pub libsvm_base: IndexBase,
    /// `libsvm:` fix the number of features instead of taking the largest
    /// index; a larger index is then an error (default: inferred).
    pub dim: Option<usize>,
    /// Tokens per window, context + 1, for text data (`text:`,
    /// `builtin:shakespeare`): required there and at least 2; ignored by
    /// other data (default: none).
    pub sequence: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            normalise: Normalise::Auto,
            valid: None,
            seed: 0,
            limit_train: None,
            limit_test: None,
            vocab_size: 10_000,
            bag_of_words: BagOfWords::Binary,
            lossy_utf8: false,
            idx_classes: IdxClasses::Auto,
            libsvm_base: IndexBase::Auto,
            dim: None,
            sequence: None,
        }
    }
}

/// A parsed data spec, e.g. from `downhill train --data SPEC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `idx:DIR`.
    Idx(PathBuf),
    /// `cifar10:DIR`.
    Cifar10(PathBuf),
    /// `imdb:DIR`.
    Imdb(PathBuf),
    /// `libsvm:TRAIN[,TEST]`.
    Libsvm {
        /// Training file.
        train: PathBuf,
        /// Test file.
        test: Option<PathBuf>,
    },
    /// `text:FILE[,VALID_FILE]`.
    Text {
        /// Training text.
        train: PathBuf,
        /// Held-out text; without it the last 10% of `train` is held out.
        valid: Option<PathBuf>,
    },
    /// `builtin:NAME`.
    Builtin(String),
}

/// The accepted spec forms, for help texts and error messages.
pub const SPEC_FORMS: [&str; 6] = [
    "idx:DIR",
    "cifar10:DIR",
    "imdb:DIR",
    "libsvm:TRAIN[,TEST]",
    "text:FILE[,VALID_FILE]",
    "builtin:NAME",
];

impl Spec {
    /// Parses `PREFIX:ARGUMENT`. Paths may not contain commas in `libsvm:`
    /// and `text:`.
    pub fn parse(spec: &str) -> Result<Spec, DataError> {
        let unknown = || DataError::UnknownSpec {
            spec: spec.to_string(),
            valid: SPEC_FORMS.iter().map(|s| s.to_string()).collect(),
        };
        let (prefix, arg) = spec.split_once(':').ok_or_else(unknown)?;
        let bad = |reason: &str| DataError::BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if arg.is_empty() {
            return Err(bad(match prefix {
                "builtin" => "expected builtin:NAME",
                "libsvm" => "expected libsvm:TRAIN[,TEST]",
                "text" => "expected text:FILE[,VALID_FILE]",
                _ => "expected a folder after the colon",
            }));
        }
        Ok(match prefix {
            "idx" => Spec::Idx(arg.into()),
            "cifar10" => Spec::Cifar10(arg.into()),
            "imdb" => Spec::Imdb(arg.into()),
            "builtin" => Spec::Builtin(arg.to_string()),
            "libsvm" | "text" => {
                let mut parts = arg.split(',');
                let train = parts.next().unwrap_or_default();
                let second = parts.next();
                if parts.next().is_some() {
                    return Err(bad(if prefix == "text" {
                        "expected at most two files, FILE,VALID_FILE"
                    } else {
                        "expected at most two files, TRAIN,TEST"
                    }));
                }
                if train.is_empty() || second == Some("") {
                    return Err(bad("empty file name"));
                }
                let (train, second) = (train.into(), second.map(PathBuf::from));
                if prefix == "text" {
                    Spec::Text {
                        train,
                        valid: second,
                    }
                } else {
                    Spec::Libsvm {
                        train,
                        test: second,
                    }
                }
            }
            _ => return Err(unknown()),
        })
    }

    /// Whether the spec names character-level text (`text:`, or an embedded
    /// text such as `builtin:shakespeare`), which loads only with
    /// [`LoadOptions::sequence`] and gives data whose
    /// [`Dataset::is_text`] holds. Lets a caller check a model against the
    /// data before loading it.
    pub fn is_text(&self) -> bool {
        match self {
            Spec::Text { .. } => true,
            Spec::Builtin(name) => builtin::builtin_text(name).is_some(),
            _ => false,
        }
    }
}

impl FromStr for Spec {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Spec, DataError> {
        Spec::parse(s)
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Idx(p) => write!(f, "idx:{}", p.display()),
            Spec::Cifar10(p) => write!(f, "cifar10:{}", p.display()),
            Spec::Imdb(p) => write!(f, "imdb:{}", p.display()),
            Spec::Libsvm { train, test: None } => write!(f, "libsvm:{}", train.display()),
            Spec::Libsvm {
                train,
                test: Some(t),
            } => write!(f, "libsvm:{},{}", train.display(), t.display()),
            Spec::Text { train, valid: None } => write!(f, "text:{}", train.display()),
            Spec::Text {
                train,
                valid: Some(v),
            } => write!(f, "text:{},{}", train.display(), v.display()),
            Spec::Builtin(n) => write!(f, "builtin:{n}"),
        }
    }
}

/// Loads the data set named by `spec` (see the [crate docs](crate)).
pub fn load(spec: &str, opts: &LoadOptions) -> Result<DataSplit, DataError> {
    load_spec(&Spec::parse(spec)?, opts)
}

/// Loads a parsed [`Spec`]: reads the source's training and test data, keeps
/// the first `limit_*` examples, carves the validation split, then normalises.
pub fn load_spec(spec: &Spec, opts: &LoadOptions) -> Result<DataSplit, DataError> {
    if let Some(ValidSplit::Fraction(f)) = opts.valid {
        if !(f > 0.0 && f < 1.0) {
            return Err(DataError::option(
                "valid",
                format!("fraction {f} must be strictly between 0 and 1"),
            ));
        }
    }
    let (train, test) = match spec {
        Spec::Idx(dir) => idx::load_dir(dir, opts)?,
        Spec::Cifar10(dir) => cifar::load_dir(dir, opts)?,
        Spec::Imdb(dir) => imdb::load_dir(dir, opts)?,
        Spec::Libsvm { train, test } => libsvm::load_files(train, test.as_deref(), opts)?,
        Spec::Text { train, valid } => {
            text::load_files(&spec.to_string(), train, valid.as_deref(), opts)?
        }
        Spec::Builtin(name) => builtin::load(name, opts)?,
    };
    if train.is_empty() {
        return Err(DataError::NoExamples {
            origin: spec.to_string(),
            reason: match opts.limit_train {
                Some(0) => "limit_train is 0".into(),
                _ => "the training data is empty".into(),
            },
        });
    }
    let (mut train, mut valid) = match transform::carve(train.len(), opts)? {
        Some(c) => (
            train.subset_checked(&c.train),
            Some(train.subset_checked(&c.valid)),
        ),
        None => (train, None),
    };
    let mut test = test;
    let mut others: Vec<&mut Dataset> = valid.iter_mut().chain(test.iter_mut()).collect();
    transform::normalise(&mut train, &mut others, opts.normalise);
    Ok(DataSplit { train, valid, test })
}

/// Checks that `dir` is a readable folder with at least one entry.
fn check_folder(dir: &Path, expected: &str) -> Result<(), DataError> {
    let mut entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    if entries.next().is_none() {
        return Err(DataError::EmptyFolder {
            path: dir.to_path_buf(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for s in [
            "idx:/d",
            "cifar10:c",
            "imdb:a b",
            "libsvm:a.txt",
            "libsvm:a.txt,b.txt",
            "text:a.txt",
            "text:a.txt,b.txt",
            "builtin:fashion-mnist-small",
            "builtin:shakespeare",
        ] {
            assert_eq!(Spec::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            Spec::parse("text:a.txt,b.txt").unwrap(),
            Spec::Text {
                train: "a.txt".into(),
                valid: Some("b.txt".into())
            }
        );
        assert_eq!(
            Spec::parse("text:a.txt").unwrap(),
            Spec::Text {
                train: "a.txt".into(),
                valid: None
            }
        );
        for s in ["text:a", "builtin:shakespeare"] {
            assert!(Spec::parse(s).unwrap().is_text(), "{s}");
        }
        for s in [
            "libsvm:a",
            "builtin:fashion-mnist-small",
            "builtin:nope",
            "idx:d",
        ] {
            assert!(!Spec::parse(s).unwrap().is_text(), "{s}");
        }
        for s in ["text:", "text:a,b,c", "text:a,", "text:,b"] {
            assert!(
                matches!(Spec::parse(s), Err(DataError::BadSpec { .. })),
                "{s}"
            );
        }
        let e = Spec::parse("mnist:/x").unwrap_err().to_string();
        assert!(e.contains("idx:DIR") && e.contains("builtin:NAME"), "{e}");
        assert!(matches!(
            Spec::parse("/x"),
            Err(DataError::UnknownSpec { .. })
        ));
        assert!(matches!(
            Spec::parse("idx:"),
            Err(DataError::BadSpec { .. })
        ));
        assert!(matches!(
            Spec::parse("libsvm:a,b,c"),
            Err(DataError::BadSpec { .. })
        ));
        assert!(matches!(
            Spec::parse("libsvm:a,"),
            Err(DataError::BadSpec { .. })
        ));
    }
}
