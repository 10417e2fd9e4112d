//! IDX files (the MNIST format): a big-endian header, then unsigned bytes.
//!
//! Images: magic `00 00 08 03`, then count, rows and columns as `u32`, then
//! `count * rows * cols` pixels. Labels: magic `00 00 08 01`, then count, then
//! `count` labels. Either may be gzip-compressed (detected by its magic bytes).

use crate::source::{hex, Payload};
use crate::{DataError, IdxClasses, LoadOptions};
use std::path::{Path, PathBuf};

/// Images parsed from an IDX file: `count` images of `rows x cols` bytes each,
/// row-major, one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Pixel rows per image.
    pub rows: usize,
    /// Pixel columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixel values.
    pub pixels: Vec<u8>,
}

const IMAGES_MAGIC: [u8; 4] = [0, 0, 8, 3];
const LABELS_MAGIC: [u8; 4] = [0, 0, 8, 1];

/// The ten Fashion-MNIST class names, indexed by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Parses an IDX images file (magic `00 00 08 03`), raw or gzip-compressed.
/// `origin` names the data in errors (usually the file path). Never allocates
/// more than the data can actually hold, whatever the header claims.
pub fn parse_idx_images(bytes: &[u8], origin: &str) -> Result<IdxImages, DataError> {
    let mut p = Payload::new(bytes, origin);
    let dims = read_header(&mut p, origin, IMAGES_MAGIC, "images")?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    for (k, (&d, what)) in dims[1..].iter().zip(["rows", "columns"]).enumerate() {
        if d == 0 && count > 0 {
            return Err(DataError::BadHeader {
                origin: origin.to_string(),
                offset: 8 + 4 * k as u64,
                reason: format!("images of 0 {what}"),
            });
        }
    }
    let image = rows * cols; // both < 2^32, so this fits in u64
    let body = checked_body(origin, count, image, 16)?;
    let pixels = read_body(&mut p, origin, body, 16, image, count, "image")?;
    Ok(IdxImages {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels,
    })
}

/// Parses an IDX labels file (magic `00 00 08 01`), raw or gzip-compressed,
/// returning one byte per label. Range checks are the caller's (see
/// [`load`](crate::load)), since they depend on the number of classes.
pub fn parse_idx_labels(bytes: &[u8], origin: &str) -> Result<Vec<u8>, DataError> {
    let mut p = Payload::new(bytes, origin);
    let dims = read_header(&mut p, origin, LABELS_MAGIC, "labels")?;
    let count = dims[0];
    let body = checked_body(origin, count, 1, 8)?;
    read_body(&mut p, origin, body, 8, 1, count, "label")
}

fn describe_magic(m: [u8; 4]) -> String {
    if m[0] == 0 && m[1] == 0 {
        let ty = match m[2] {
            0x08 => "unsigned bytes",
            0x09 => "signed bytes",
            0x0b => "i16",
            0x0c => "i32",
            0x0d => "f32",
            0x0e => "f64",
            _ => "an unknown element type",
        };
        format!("{} (IDX of {ty}, {} dimensions)", hex(&m), m[3])
    } else if m[..2] == [0x1f, 0x8b] {
        format!("{} (gzip inside gzip?)", hex(&m))
    } else {
        format!("{} (not an IDX file)", hex(&m))
    }
}

/// Reads and checks the magic and the dimension sizes.
fn read_header(
    p: &mut Payload<'_>,
    origin: &str,
    magic: [u8; 4],
    what: &str,
) -> Result<Vec<u64>, DataError> {
    let ndim = magic[3] as usize;
    let header = 4 + 4 * ndim;
    let mut buf = [0u8; 16];
    let got = p.read_prefix(&mut buf[..header])?;
    if got >= 4 && buf[..4] != magic {
        return Err(DataError::BadMagic {
            origin: origin.to_string(),
            expected: format!(
                "{} (IDX {what}: unsigned bytes, {ndim} dimension{})",
                hex(&magic),
                if ndim == 1 { "" } else { "s" }
            ),
            found: describe_magic([buf[0], buf[1], buf[2], buf[3]]),
        });
    }
    if got < header {
        return Err(DataError::Truncated {
            origin: origin.to_string(),
            at: format!("in the {header}-byte header{}", gz_note(p)),
            expected: header as u64,
            found: got as u64,
        });
    }
    Ok((0..ndim)
        .map(|k| {
            u32::from_be_bytes([
                buf[4 + 4 * k],
                buf[5 + 4 * k],
                buf[6 + 4 * k],
                buf[7 + 4 * k],
            ]) as u64
        })
        .collect())
}

fn gz_note(p: &Payload<'_>) -> &'static str {
    if p.compressed() {
        " of the decompressed data"
    } else {
        ""
    }
}

fn checked_body(origin: &str, count: u64, item: u64, header: u64) -> Result<u64, DataError> {
    count
        .checked_mul(item)
        .filter(|b| {
            b.checked_add(header)
                .is_some_and(|t| t <= usize::MAX as u64)
        })
        .ok_or_else(|| DataError::BadHeader {
            origin: origin.to_string(),
            offset: 4,
            reason: format!("{count} items of {item} bytes do not fit in memory"),
        })
}

/// Reads exactly `body` bytes after the header, reporting which item the data
/// ran out in, or that more data follows.
fn read_body(
    p: &mut Payload<'_>,
    origin: &str,
    body: u64,
    header: u64,
    item: u64,
    count: u64,
    noun: &str,
) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    // One byte past the promise tells "exact" from "more follows" without
    // decompressing an unbounded tail.
    p.read_up_to(body + 1, &mut out)?;
    let got = out.len() as u64;
    if got < body {
        return Err(DataError::Truncated {
            origin: origin.to_string(),
            at: format!("in {noun} {} of {count}{}", got / item.max(1), gz_note(p)),
            expected: header + body,
            found: header + got,
        });
    }
    if got > body {
        return Err(DataError::TrailingData {
            origin: origin.to_string(),
            expected: header + body,
        });
    }
    debug_assert_eq!(p.produced(), header + body);
    Ok(out)
}

/// `x / 255` for every byte value, exactly as a division would round.
pub(crate) fn scale_table(scale01: bool) -> [f32; 256] {
    let mut t = [0f32; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = if scale01 { i as f32 / 255.0 } else { i as f32 };
    }
    t
}

/// Converts pixels to `f32` through `table`, in parallel chunks.
pub(crate) fn pixels_to_f32(pixels: &[u8], table: &[f32; 256]) -> Vec<f32> {
    let mut out = Vec::new();
    extend_f32(&mut out, pixels, table);
    out
}

/// Appends `pixels` converted through `table` to `out`.
pub(crate) fn extend_f32(out: &mut Vec<f32>, pixels: &[u8], table: &[f32; 256]) {
    use rayon::prelude::*;
    let start = out.len();
    out.resize(start + pixels.len(), 0.0);
    out[start..]
        .par_chunks_mut(1 << 16)
        .zip(pixels.par_chunks(1 << 16))
        .for_each(|(o, p)| {
            for (o, &b) in o.iter_mut().zip(p) {
                *o = table[b as usize];
            }
        });
}

/// Checks labels against `classes`, naming the file, record and byte offset of
/// the first bad one.
pub(crate) fn check_labels(
    labels: &[u8],
    classes: usize,
    origin: &str,
    header: u64,
    stride: u64,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => Err(DataError::LabelOutOfRange {
            origin: origin.to_string(),
            record: i,
            offset: header + stride * i as u64,
            label: labels[i] as u64,
            classes,
        }),
        None => Ok(()),
    }
}

/// The file names tried for one IDX file, e.g. `train-images-idx3-ubyte`.
fn candidates(prefix: &str, kind: &str) -> Vec<String> {
    let dashed = format!("{prefix}-{kind}");
    // The dotted spelling ("train-images.idx3-ubyte") has a dot before the IDX kind.
    let dotted = match kind.split_once('-') {
        Some((stem, rest)) => format!("{prefix}-{stem}.{rest}"),
        None => dashed.clone(),
    };
    vec![
        dashed.clone(),
        format!("{dashed}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ]
}

fn find(dir: &Path, names: &[String]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Images and labels of one split, read from files and checked against each other.
pub(crate) struct IdxSplit {
    pub(crate) images: IdxImages,
    pub(crate) labels: Vec<u8>,
    pub(crate) images_origin: String,
}

pub(crate) fn read_pair(
    images_bytes: &[u8],
    images_origin: String,
    labels_bytes: &[u8],
    labels_origin: String,
) -> Result<IdxSplit, DataError> {
    let (images, labels) = rayon::join(
        || parse_idx_images(images_bytes, &images_origin),
        || parse_idx_labels(labels_bytes, &labels_origin),
    );
    let (images, labels) = (images?, labels?);
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_origin,
            image_count: images.count,
            labels: labels_origin,
            label_count: labels.len(),
        });
    }
    check_labels(&labels, 10, &labels_origin, 8, 1)?;
    Ok(IdxSplit {
        images,
        labels,
        images_origin,
    })
}

fn read_split_files(dir: &Path, prefix: &str) -> Result<Option<IdxSplit>, DataError> {
    let img_names = candidates(prefix, "images-idx3-ubyte");
    let lbl_names = candidates(prefix, "labels-idx1-ubyte");
    let (img, lbl) = (find(dir, &img_names), find(dir, &lbl_names));
    let (img, lbl) = match (img, lbl, prefix) {
        (Some(i), Some(l), _) => (i, l),
        (None, None, "t10k") => return Ok(None),
        (None, _, _) => {
            return Err(DataError::MissingFile {
                dir: dir.to_path_buf(),
                what: format!("{prefix} images"),
                looked_for: img_names,
            })
        }
        (_, None, _) => {
            return Err(DataError::MissingFile {
                dir: dir.to_path_buf(),
                what: format!("{prefix} labels"),
                looked_for: lbl_names,
            })
        }
    };
    let (ib, lb) = rayon::join(
        || crate::source::read_file(&img),
        || crate::source::read_file(&lbl),
    );
    read_pair(
        &ib?,
        img.display().to_string(),
        &lb?,
        lbl.display().to_string(),
    )
    .map(Some)
}

/// Builds a data set from checked images and labels, keeping the first `limit`.
pub(crate) fn to_dataset(
    name: &str,
    split: IdxSplit,
    class_names: &[&str],
    scale01: bool,
    limit: Option<usize>,
) -> Result<crate::Dataset, DataError> {
    let n = limit.unwrap_or(usize::MAX).min(split.images.count);
    let dim = split.images.rows * split.images.cols;
    let values = pixels_to_f32(&split.images.pixels[..n * dim], &scale_table(scale01));
    let labels = split.labels[..n].iter().map(|&l| l as u32).collect();
    crate::Dataset::new(
        name,
        crate::Features::Dense(crate::Dense::new(values, dim)?),
        labels,
        class_names.iter().map(|s| s.to_string()).collect(),
    )?
    .with_image(crate::ImageShape {
        channels: 1,
        height: split.images.rows,
        width: split.images.cols,
    })
}

/// Checks that test images have the training images' size.
pub(crate) fn check_same_shape(train: &IdxSplit, test: &IdxSplit) -> Result<(), DataError> {
    let (a, b) = (&train.images, &test.images);
    if (a.rows, a.cols) != (b.rows, b.cols) {
        return Err(DataError::ShapeMismatch {
            origin: test.images_origin.clone(),
            what: "image size".into(),
            expected: format!("{}x{}", a.rows, a.cols),
            found: format!("{}x{}", b.rows, b.cols),
        });
    }
    Ok(())
}

/// Loads `idx:DIR`: the training pair (required) and the `t10k` pair (optional).
pub(crate) fn load_dir(
    dir: &Path,
    opts: &LoadOptions,
) -> Result<(crate::Dataset, Option<crate::Dataset>), DataError> {
    crate::check_folder(dir, "IDX files such as train-images-idx3-ubyte.gz")?;
    let (train, test) = rayon::join(
        || read_split_files(dir, "train"),
        || read_split_files(dir, "t10k"),
    );
    let train = train?.ok_or_else(|| DataError::MissingFile {
        dir: dir.to_path_buf(),
        what: "training images".into(),
        looked_for: candidates("train", "images-idx3-ubyte"),
    })?;
    let test = test?;
    if let Some(t) = &test {
        check_same_shape(&train, t)?;
    }
    let fashion = match opts.idx_classes {
        IdxClasses::Digits => false,
        IdxClasses::Fashion => true,
        IdxClasses::Auto => looks_like_fashion(dir),
    };
    let (name, classes): (String, Vec<&str>) = if fashion {
        ("fashion-mnist".into(), FASHION_MNIST_CLASSES.to_vec())
    } else {
        (
            folder_name(dir),
            vec!["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        )
    };
    let scale01 = opts.normalise.scales_pixels();
    let train = to_dataset(&name, train, &classes, scale01, opts.limit_train)?;
    let test = test
        .map(|t| to_dataset(&name, t, &classes, scale01, opts.limit_test))
        .transpose()?;
    Ok((train, test))
}

/// Whether the folder (as given or resolved) has "fashion" in its path.
fn looks_like_fashion(dir: &Path) -> bool {
    let has = |p: &Path| p.to_string_lossy().to_lowercase().contains("fashion");
    has(dir) || dir.canonicalize().is_ok_and(|c| has(&c))
}

pub(crate) fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "idx".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_names_cover_both_spellings() {
        assert_eq!(
            candidates("train", "images-idx3-ubyte"),
            [
                "train-images-idx3-ubyte",
                "train-images-idx3-ubyte.gz",
                "train-images.idx3-ubyte",
                "train-images.idx3-ubyte.gz"
            ]
        );
    }

    #[test]
    fn scale_table_matches_division() {
        let t = scale_table(true);
        for (i, &v) in t.iter().enumerate() {
            assert_eq!(v, i as f32 / 255.0);
        }
        assert_eq!(scale_table(false)[200], 200.0);
    }
}
