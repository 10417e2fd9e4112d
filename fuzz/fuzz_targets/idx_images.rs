//! `parse_idx_images` on arbitrary bytes (raw or gzip): no panic, no
//! allocation beyond what the data holds, one-line errors naming the input,
//! and a result whose pixel count matches its header.
#![no_main]

use downhill_fuzz::{check_named_error, ORIGIN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match downhill_data::parse_idx_images(data, ORIGIN) {
        Ok(im) => {
            assert_eq!(im.pixels.len(), im.count * im.rows * im.cols);
            // A raw file holds exactly its header and pixels.
            if !data.starts_with(&[0x1f, 0x8b]) {
                assert_eq!(data.len(), 16 + im.pixels.len());
            }
        }
        Err(e) => check_named_error(&e),
    }
});
