//! `parse_cifar_batch` on arbitrary bytes (raw or gzip): whole records,
//! labels below 10, one-line errors naming the input.
#![no_main]

use downhill_data::{CIFAR_IMAGE_BYTES, CIFAR_RECORD_BYTES};
use downhill_fuzz::{check_named_error, ORIGIN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match downhill_data::parse_cifar_batch(data, ORIGIN) {
        Ok(b) => {
            assert!(!b.labels.is_empty());
            assert_eq!(b.pixels.len(), b.labels.len() * CIFAR_IMAGE_BYTES);
            assert!(b.labels.iter().all(|&l| l < 10));
            if !data.starts_with(&[0x1f, 0x8b]) {
                assert_eq!(data.len(), b.labels.len() * CIFAR_RECORD_BYTES);
            }
        }
        Err(e) => check_named_error(&e),
    }
});
