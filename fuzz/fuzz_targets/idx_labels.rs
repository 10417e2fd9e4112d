//! `parse_idx_labels` on arbitrary bytes (raw or gzip): no panic, bounded
//! allocation, one-line errors naming the input.
#![no_main]

use downhill_fuzz::{check_named_error, ORIGIN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match downhill_data::parse_idx_labels(data, ORIGIN) {
        Ok(labels) => {
            if !data.starts_with(&[0x1f, 0x8b]) {
                assert_eq!(data.len(), 8 + labels.len());
                assert_eq!(&data[8..], labels.as_slice());
            }
        }
        Err(e) => check_named_error(&e),
    }
});
