//! Shared pieces of the fuzz targets and the seed generator: how one fuzz
//! input is cut into several files, and the checks every target applies to
//! an error it gets back.
//!
//! Inputs that stand for several files (a checkpoint folder, an optimiser
//! state's two halves, a review folder) are the files' bytes joined by
//! [`SEPARATOR`]. A separator, rather than length prefixes, keeps the parts
//! meaningful while libFuzzer mutates bytes: a flipped length byte would
//! shift every later part, a flipped separator byte only merges two parts.

use downhill::optim::{Param, Role};
use std::fmt::Display;

/// The parameter tensors the `optimizer_state` target and its seeds give
/// every optimiser: a hidden 3x2 matrix stored fan-in first (as the trainer's
/// network stores weights) and a bias of 2. A matrix and a vector, so
/// `muon` is routed (Muon on the matrix, AdamW on the bias, a partition's
/// state), Adafactor factors the matrix, and groups and per-tensor records
/// are exercised.
pub fn state_params() -> Vec<Param> {
    vec![
        Param::new([3, 2], Role::Hidden).stored_transposed(),
        Param::new([2], Role::Bias),
    ]
}

/// The number of elements of [`state_params`].
pub const STATE_LEN: usize = 8;

/// What separates the parts of a multi-file input.
pub const SEPARATOR: &[u8] = b"\n\x00--8<--\x00\n";

/// Splits `data` at every [`SEPARATOR`].
pub fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, SEPARATOR) {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

/// Joins parts with [`SEPARATOR`] (the inverse of [`split_parts`]).
pub fn join_parts(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEPARATOR);
        }
        out.extend_from_slice(p);
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Checks the promise every error of the library makes to the command line:
/// a message that is not empty and fits on one line (the CLI prints it as the
/// one line of its error output). Panics, so libFuzzer records the input.
pub fn check_error(e: &impl Display) {
    let msg = e.to_string();
    assert!(!msg.trim().is_empty(), "empty error message");
    assert!(
        !msg.trim_end().contains('\n'),
        "error message spans several lines: {msg:?}"
    );
}

/// The origin name the byte parsers are given, so messages can be checked
/// for naming the input.
pub const ORIGIN: &str = "fuzz-input";

/// Checks that an error from a byte parser names the input it came from.
pub fn check_named_error(e: &impl Display) {
    check_error(e);
    let msg = e.to_string();
    assert!(
        msg.contains(ORIGIN),
        "error does not name the input: {msg:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_len_is_the_params_length() {
        assert_eq!(
            state_params().iter().map(Param::len).sum::<usize>(),
            STATE_LEN
        );
    }

    #[test]
    fn parts_round_trip() {
        let parts: [&[u8]; 3] = [b"a", b"", b"bc"];
        assert_eq!(split_parts(&join_parts(&parts)), parts);
        assert_eq!(split_parts(b"plain"), [b"plain"]);
    }
}
