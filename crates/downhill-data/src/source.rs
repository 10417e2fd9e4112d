//! Reading bytes from disk or memory, raw or gzip-compressed, without trusting
//! size claims: a header's promise only ever caps how much is read, and buffers
//! grow with the data actually present.

use crate::DataError;
use flate2::read::MultiGzDecoder;
use std::io::{self, Read};
use std::path::Path;

/// The two bytes every gzip member starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Ahead of decompressing, reserve at most this many times the compressed
/// size (and never more than a header claims): enough for image and text data
/// in one allocation, while a small "gzip bomb" cannot make us reserve much
/// before it has actually produced the bytes.
const RESERVE_RATIO: usize = 8;

/// Whether `bytes` start with the gzip magic.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// A reader over raw bytes or over the decompressed content of gzip bytes,
/// which counts what it has produced so errors can give positions.
pub(crate) struct Payload<'a> {
    inner: Inner<'a>,
    origin: &'a str,
    produced: u64,
    /// How much may be reserved ahead of reading.
    bound: usize,
}

enum Inner<'a> {
    Raw(&'a [u8]),
    Gz(Box<MultiGzDecoder<&'a [u8]>>),
}

impl<'a> Payload<'a> {
    /// Decompresses transparently when `bytes` start with the gzip magic.
    pub(crate) fn new(bytes: &'a [u8], origin: &'a str) -> Payload<'a> {
        if is_gzip(bytes) {
            Payload {
                inner: Inner::Gz(Box::new(MultiGzDecoder::new(bytes))),
                origin,
                produced: 0,
                bound: bytes.len().saturating_mul(RESERVE_RATIO),
            }
        } else {
            Payload {
                inner: Inner::Raw(bytes),
                origin,
                produced: 0,
                bound: bytes.len(),
            }
        }
    }

    /// Whether the data is gzip-compressed.
    pub(crate) fn compressed(&self) -> bool {
        matches!(self.inner, Inner::Gz(_))
    }

    /// Bytes produced so far (decompressed bytes for gzip).
    pub(crate) fn produced(&self) -> u64 {
        self.produced
    }

    /// Appends up to `limit` bytes to `out`, stopping early only at the end of
    /// the data. Reserves at most what the data can actually hold.
    pub(crate) fn read_up_to(&mut self, limit: u64, out: &mut Vec<u8>) -> Result<(), DataError> {
        let reserve = (limit.min(usize::MAX as u64) as usize)
            .min(self.bound.saturating_sub(self.produced as usize));
        out.reserve(reserve);
        let before = out.len();
        let result = match &mut self.inner {
            Inner::Raw(r) => r.take(limit).read_to_end(out),
            Inner::Gz(g) => read_to_end_counting(g.as_mut().take(limit), out),
        };
        self.produced += (out.len() - before) as u64;
        result.map(|_| ()).map_err(|source| DataError::Gzip {
            origin: self.origin.to_string(),
            offset: self.produced,
            source,
        })
    }

    /// Fills `buf` as far as the data allows and returns how many bytes were read.
    pub(crate) fn read_prefix(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut v = Vec::with_capacity(buf.len());
        self.read_up_to(buf.len() as u64, &mut v)?;
        buf[..v.len()].copy_from_slice(&v);
        Ok(v.len())
    }

    /// Reads everything that is left.
    pub(crate) fn read_rest(&mut self) -> Result<Vec<u8>, DataError> {
        let mut v = Vec::new();
        self.read_up_to(u64::MAX, &mut v)?;
        Ok(v)
    }
}

/// `read_to_end` that keeps what was read before an error, so positions in
/// error messages are right.
fn read_to_end_counting(mut r: impl Read, out: &mut Vec<u8>) -> io::Result<usize> {
    let start = out.len();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(out.len() - start),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Decompresses gzip bytes, or borrows raw bytes as they are.
pub(crate) fn decode<'a>(
    bytes: &'a [u8],
    origin: &str,
) -> Result<std::borrow::Cow<'a, [u8]>, DataError> {
    if is_gzip(bytes) {
        Ok(std::borrow::Cow::Owned(
            Payload::new(bytes, origin).read_rest()?,
        ))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Bytes as space-separated hex, for magic-number messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
