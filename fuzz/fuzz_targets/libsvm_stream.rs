//! `LibsvmStream` over arbitrary bytes, as `downhill` reads a pipe: the first
//! part of the input names the known labels and the dimension, the second is
//! the stream. No panic; every example has sorted in-range indices and a
//! known class; every error is one line naming the stream.
#![no_main]

use downhill_data::{LabelMap, LibsvmStream, SparseExample};
use downhill_fuzz::{check_named_error, split_parts, ORIGIN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = split_parts(data);
    let (head, body) = match parts.as_slice() {
        [head, body, ..] => (*head, *body),
        [only] => (&b""[..], *only),
        [] => return,
    };
    // Head: one byte of dimension and base, then label names, space-separated.
    let (dim, zero_based) = match head.first() {
        Some(&b) => ((b >> 1) as usize, b & 1 == 1),
        None => (10, false),
    };
    let names: Vec<String> = String::from_utf8_lossy(head.get(1..).unwrap_or_default())
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let names = if names.is_empty() {
        vec!["-1".to_string(), "+1".to_string()]
    } else {
        names
    };
    let labels = match LabelMap::new(&names) {
        Ok(l) => l,
        Err(e) => return check_error_unnamed(&e),
    };
    let classes = labels.names().len();
    let mut stream = LibsvmStream::new(body, ORIGIN, dim, zero_based, labels);
    let mut ex = SparseExample::default();
    // Errors skip a line, so the loop ends after at most one call per line
    // plus one per I/O error; bound it anyway.
    for _ in 0..=body.len() + 1 {
        match stream.read_into(&mut ex) {
            Ok(true) => {
                assert!((ex.label as usize) < classes);
                assert_eq!(ex.indices.len(), ex.values.len());
                assert!(ex.indices.windows(2).all(|p| p[0] < p[1]));
                assert!(ex.indices.iter().all(|&j| (j as usize) < dim));
                assert_eq!(ex.line, stream.line());
            }
            Ok(false) => return,
            Err(e) => check_named_error(&e),
        }
    }
    panic!("the stream did not end after one read per line");
});

fn check_error_unnamed(e: &downhill_data::DataError) {
    downhill_fuzz::check_error(e);
}
