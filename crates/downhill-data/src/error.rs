//! The one error type of this crate.
//!
//! Every variant names where the problem is (a file path or the `origin` string
//! a caller passed to a parse-from-bytes function), the position (byte offset,
//! record number or line number) and what was expected against what was found,
//! so that a one-line message is enough to fix the data.

use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong while loading or assembling data.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// Reading a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The data starts with the gzip magic bytes but does not decompress.
    #[error("{origin}: bad gzip data after {offset} decompressed bytes: {source}")]
    Gzip {
        /// The file (or caller-given origin).
        origin: String,
        /// Decompressed bytes produced before the failure.
        offset: u64,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },

    /// The file does not start with the magic number of the expected format.
    #[error("{origin}: wrong magic number at byte 0: expected {expected}, found {found}")]
    BadMagic {
        /// The file.
        origin: String,
        /// The expected magic, in hex, with what it means.
        expected: String,
        /// The bytes found, in hex.
        found: String,
    },

    /// A header field holds an impossible value.
    #[error("{origin}: bad header at byte {offset}: {reason}")]
    BadHeader {
        /// The file.
        origin: String,
        /// Byte offset of the field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// The file ends before the data its header (or record size) promises.
    #[error("{origin}: truncated {at}: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file.
        origin: String,
        /// Where the data ran out, e.g. `"in image 5 of 10"`.
        at: String,
        /// Bytes the file should hold.
        expected: u64,
        /// Bytes it holds.
        found: u64,
    },

    /// The file holds more data than its header promises.
    #[error("{origin}: the header promises {expected} bytes, but more data follows them")]
    TrailingData {
        /// The file.
        origin: String,
        /// Bytes the header promises (header included).
        expected: u64,
    },

    /// An images file and its labels file disagree on the number of examples.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The images file.
        images: String,
        /// Number of images.
        image_count: usize,
        /// The labels file.
        labels: String,
        /// Number of labels.
        label_count: usize,
    },

    /// A split's examples have a different shape from the training set's.
    #[error("{origin}: {what} is {found}, but the training data's is {expected}")]
    ShapeMismatch {
        /// The file.
        origin: String,
        /// What differs, e.g. `"image size"`.
        what: String,
        /// The training set's value.
        expected: String,
        /// This file's value.
        found: String,
    },

    /// A label is not a valid class number.
    #[error("{origin}: record {record} (byte {offset}): label {label} is out of range, expected 0..={}", classes.saturating_sub(1))]
    LabelOutOfRange {
        /// The file.
        origin: String,
        /// Zero-based record (example) number.
        record: usize,
        /// Byte offset of the label.
        offset: u64,
        /// The label found.
        label: u64,
        /// Number of classes.
        classes: usize,
    },

    /// A LIBSVM line holds a token that does not parse.
    #[error("{origin}:{line}:{column}: bad token {token:?}: {reason}")]
    BadToken {
        /// The file.
        origin: String,
        /// One-based line number.
        line: usize,
        /// One-based byte column of the token.
        column: usize,
        /// The token (lossily decoded, shortened if long).
        token: String,
        /// Why it is wrong.
        reason: String,
    },

    /// Feature indices on a LIBSVM line are not strictly ascending.
    #[error("{origin}:{line}: feature index {found} follows {previous}: indices must be strictly ascending, without duplicates")]
    IndexOrder {
        /// The file.
        origin: String,
        /// One-based line number.
        line: usize,
        /// The preceding index.
        previous: u64,
        /// The offending index.
        found: u64,
    },

    /// A feature index is outside the dimension the caller fixed.
    #[error("{origin}:{line}: feature index {index} is outside the dimension: expected {range}")]
    IndexOutOfRange {
        /// The file.
        origin: String,
        /// One-based line number.
        line: usize,
        /// The index as written in the file.
        index: u64,
        /// The valid range as written in the file, e.g. `"1..=123"`.
        range: String,
    },

    /// A test (or streamed) example has a label the training data does not have.
    #[error("{origin}:{line}: label {label:?} does not occur in the training data (known labels: {known})")]
    UnknownLabel {
        /// The file.
        origin: String,
        /// One-based line number.
        line: usize,
        /// The label as written.
        label: String,
        /// The known labels, comma-separated.
        known: String,
    },

    /// A folder that should hold data holds nothing usable.
    #[error("{}: no data: expected {expected}", path.display())]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
        /// What was looked for.
        expected: String,
    },

    /// A required file or folder does not exist.
    #[error("{}: missing {what}; looked for {}", dir.display(), looked_for.join(", "))]
    MissingFile {
        /// The folder searched.
        dir: PathBuf,
        /// What is missing, e.g. `"training images"`.
        what: String,
        /// Every name that was tried.
        looked_for: Vec<String>,
    },

    /// A text file is not valid UTF-8.
    #[error("{}: not valid UTF-8 at byte {offset} (set LoadOptions::lossy_utf8 to replace bad bytes)", path.display())]
    NonUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },

    /// Text data was asked for without a window length
    /// ([`LoadOptions::sequence`](crate::LoadOptions::sequence)): it only makes
    /// sense for a sequence model.
    #[error("{origin} is a character stream: it needs a sequence model, e.g. --model transformer:layers=4,d=128,heads=4,context=128")]
    NeedsSequence {
        /// The data spec, e.g. `"text:a.txt"`.
        origin: String,
    },

    /// A text (or part of one) is shorter than one window.
    #[error("{origin}: {part} holds {chars} characters, fewer than one window of sequence = {sequence} (context + 1)")]
    TextTooShort {
        /// The file or data set.
        origin: String,
        /// Which part, e.g. `"the text"` or `"the held-out last 10%"`.
        part: String,
        /// Characters it holds.
        chars: usize,
        /// Tokens per window.
        sequence: usize,
    },

    /// A held-out text has a character the training text does not have.
    #[error("{origin}:{line}:{column}: character {ch:?} does not occur in the training text (its vocabulary has {vocab} characters)")]
    UnknownChar {
        /// The file or data set.
        origin: String,
        /// One-based line number.
        line: usize,
        /// One-based column, in characters.
        column: usize,
        /// The character.
        ch: char,
        /// Size of the training vocabulary.
        vocab: usize,
    },

    /// A data spec has a prefix this crate does not know.
    #[error("unknown data spec {spec:?}: expected one of {}", valid.join(", "))]
    UnknownSpec {
        /// The spec as given.
        spec: String,
        /// The valid forms.
        valid: Vec<String>,
    },

    /// A data spec has a known prefix but an unusable argument.
    #[error("bad data spec {spec:?}: {reason}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },

    /// `builtin:NAME` names no embedded data set.
    #[error("unknown builtin data set {name:?}: available: {}", available.join(", "))]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
        /// The embedded sets.
        available: Vec<String>,
    },

    /// A [`LoadOptions`](crate::LoadOptions) field or an argument holds an unusable value.
    #[error("bad option {option}: {reason}")]
    BadOption {
        /// The option or argument.
        option: String,
        /// What is wrong.
        reason: String,
    },

    /// Data that should hold examples holds none.
    #[error("{origin}: no examples ({reason})")]
    NoExamples {
        /// The file or data set.
        origin: String,
        /// Why there are none or why that is a problem.
        reason: String,
    },

    /// Parts handed to a constructor such as [`Csr::new`](crate::Csr::new) do not fit together.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The structure being built.
        what: String,
        /// Which invariant is broken.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &str, reason: impl Into<String>) -> Self {
        DataError::Invalid {
            what: what.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn option(option: &str, reason: impl Into<String>) -> Self {
        DataError::BadOption {
            option: option.to_string(),
            reason: reason.into(),
        }
    }
}
