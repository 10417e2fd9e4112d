//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while drawing or writing a picture or a report.
///
/// Bad input is reported here and never panics; each message says what was
/// wrong and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Writing an output file failed (missing directory, permissions, full disk…).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file that was being written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading an input file (an image for a report) failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `save` was called with an empty list of formats.
    #[error("no output format requested; expected at least one of png, svg")]
    NoFormats,
    /// The picture size is outside what can be laid out or encoded.
    #[error("picture size {width}x{height} is not usable; expected width and height between {min} and {max} pixels")]
    InvalidSize {
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
        /// Smallest accepted side.
        min: u32,
        /// Largest accepted side.
        max: u32,
    },
    /// An explicit axis or grid range is not a finite, increasing interval.
    #[error("invalid {what} ({lo}, {hi}): {expected}")]
    InvalidRange {
        /// Which range (e.g. "x range", "y range of the grid").
        what: &'static str,
        /// Lower end as given.
        lo: f64,
        /// Upper end as given.
        hi: f64,
        /// What a valid range looks like.
        expected: &'static str,
    },
    /// A value grid whose shape does not match its data.
    #[error("invalid grid: {0}")]
    InvalidGrid(String),
    /// Contour levels that cannot be used.
    #[error("invalid contour levels: {0}")]
    InvalidLevels(String),
    /// A grid with no finite value at all: there is nothing to colour.
    #[error("the grid has no finite values; expected at least one finite value to draw")]
    NoFiniteValues,
    /// The number of animation frames is out of range.
    #[error("cannot animate with {frames} frames; expected between 1 and {max}")]
    InvalidFrames {
        /// Requested number of frames.
        frames: usize,
        /// Largest accepted number of frames.
        max: usize,
    },
    /// An image given to a report is neither PNG nor SVG.
    #[error("{path} is not a PNG or SVG image; expected a .png or .svg file")]
    UnsupportedImage {
        /// The offending file.
        path: PathBuf,
    },
    /// An encoder (PNG, GIF) refused the data.
    #[error("cannot encode {format}: {detail}")]
    Encode {
        /// The format being produced.
        format: &'static str,
        /// The encoder's message.
        detail: String,
    },
}
