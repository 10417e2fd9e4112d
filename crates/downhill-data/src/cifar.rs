//! CIFAR-10 binary batches: records of 1 label byte followed by 3072 pixel
//! bytes (red, green, blue planes of 32x32, channels first).

use crate::idx::{check_labels, extend_f32, scale_table};
use crate::source::{decode, read_file};
use crate::{DataError, Dataset, Dense, Features, ImageShape, LoadOptions};
use std::path::{Path, PathBuf};

/// Pixel bytes per CIFAR-10 image (3 x 32 x 32).
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes per record: the label, then the image.
pub const CIFAR_RECORD_BYTES: usize = 1 + CIFAR_IMAGE_BYTES;

/// The standard CIFAR-10 class names, indexed by label.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Records parsed from one CIFAR-10 batch file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarBatch {
    /// One label (0..=9) per record.
    pub labels: Vec<u8>,
    /// [`CIFAR_IMAGE_BYTES`] pixel bytes per record, channels first.
    pub pixels: Vec<u8>,
}

/// Parses a CIFAR-10 batch (raw, or gzip-compressed), checking that it is a
/// whole number of records (at least one) and that every label is below 10.
pub fn parse_cifar_batch(bytes: &[u8], origin: &str) -> Result<CifarBatch, DataError> {
    let data = decode(bytes, origin)?;
    if data.is_empty() {
        return Err(DataError::NoExamples {
            origin: origin.to_string(),
            reason: format!(
                "empty file; expected records of {CIFAR_RECORD_BYTES} bytes (1 label + 3x32x32 pixels)"
            ),
        });
    }
    let records = data.len() / CIFAR_RECORD_BYTES;
    if data.len() % CIFAR_RECORD_BYTES != 0 {
        return Err(DataError::Truncated {
            origin: origin.to_string(),
            at: format!(
                "in record {records} (records are {CIFAR_RECORD_BYTES} bytes: 1 label + 3x32x32 pixels)"
            ),
            expected: ((records + 1) * CIFAR_RECORD_BYTES) as u64,
            found: data.len() as u64,
        });
    }
    let mut labels = Vec::with_capacity(records);
    let mut pixels = Vec::with_capacity(records * CIFAR_IMAGE_BYTES);
    for rec in data.chunks_exact(CIFAR_RECORD_BYTES) {
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    check_labels(&labels, 10, origin, 0, CIFAR_RECORD_BYTES as u64)?;
    Ok(CifarBatch { labels, pixels })
}

/// Reads and parses batch files in parallel, in the given order.
fn read_batches(paths: &[PathBuf]) -> Result<Vec<CifarBatch>, DataError> {
    use rayon::prelude::*;
    paths
        .par_iter()
        .map(|p| parse_cifar_batch(&read_file(p)?, &p.display().to_string()))
        .collect()
}

/// Class names from `batches.meta.txt`: the first ten non-empty lines.
fn class_names(dir: &Path) -> Result<Vec<String>, DataError> {
    let path = dir.join("batches.meta.txt");
    if !path.is_file() {
        return Ok(CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let bytes = read_file(&path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::NonUtf8 {
        path: path.clone(),
        offset: e.valid_up_to(),
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != 10 {
        return Err(DataError::BadHeader {
            origin: path.display().to_string(),
            offset: 0,
            reason: format!(
                "expected 10 class names, one per line, found {}",
                names.len()
            ),
        });
    }
    Ok(names)
}

/// Builds one data set from the first `limit` records of `batches`, converting
/// straight into the final buffer (no concatenated copy of the bytes).
fn to_dataset(
    batches: Vec<CifarBatch>,
    names: &[String],
    scale01: bool,
    limit: Option<usize>,
) -> Result<Dataset, DataError> {
    let total: usize = batches.iter().map(|b| b.labels.len()).sum();
    let n = limit.unwrap_or(usize::MAX).min(total);
    let table = scale_table(scale01);
    let mut values = Vec::with_capacity(n * CIFAR_IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for b in batches {
        let k = (n - labels.len()).min(b.labels.len());
        extend_f32(&mut values, &b.pixels[..k * CIFAR_IMAGE_BYTES], &table);
        labels.extend(b.labels[..k].iter().map(|&l| l as u32));
    }
    Dataset::new(
        "cifar10",
        Features::Dense(Dense::new(values, CIFAR_IMAGE_BYTES)?),
        labels,
        names.to_vec(),
    )?
    .with_image(ImageShape {
        channels: 3,
        height: 32,
        width: 32,
    })
}

/// Loads `cifar10:DIR`. `DIR` may also be the folder that holds
/// `cifar-10-batches-bin` (as the archive unpacks).
pub(crate) fn load_dir(
    dir: &Path,
    opts: &LoadOptions,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let nested = dir.join("cifar-10-batches-bin");
    let dir = if !dir.join("data_batch_1.bin").is_file() && nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    crate::check_folder(&dir, "CIFAR-10 batches data_batch_1.bin ... test_batch.bin")?;
    let train_names: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    let train_paths: Vec<PathBuf> = train_names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    if train_paths.is_empty() {
        return Err(DataError::MissingFile {
            dir: dir.clone(),
            what: "training batches".into(),
            looked_for: train_names,
        });
    }
    let test_path = dir.join("test_batch.bin");
    let names = class_names(&dir)?;
    let scale01 = opts.normalise.scales_pixels();
    let (train, test) = rayon::join(
        || read_batches(&train_paths),
        || {
            test_path
                .is_file()
                .then(|| read_batches(std::slice::from_ref(&test_path)))
                .transpose()
        },
    );
    let train = to_dataset(train?, &names, scale01, opts.limit_train)?;
    let test = test?
        .map(|t| to_dataset(t, &names, scale01, opts.limit_test))
        .transpose()?;
    Ok((train, test))
}
