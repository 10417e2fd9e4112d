//! `tokenize` on arbitrary text: no panic, and every token obeys the
//! documented rules (non-empty, no apostrophe at either end, only
//! alphanumeric characters and apostrophes, already lowercase).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Reviews that are not UTF-8 are either refused or decoded lossily
    // before tokenising; the lossy path is what reaches the tokenizer.
    let text = String::from_utf8_lossy(data);
    for w in downhill_data::tokenize(&text) {
        assert!(!w.is_empty());
        assert!(!w.starts_with('\'') && !w.ends_with('\''), "{w:?}");
        assert!(w.chars().all(|c| c.is_alphanumeric() || c == '\''), "{w:?}");
        assert_eq!(
            downhill_data::tokenize(&w),
            std::slice::from_ref(&w),
            "{w:?}"
        );
    }
});
