//! `load("imdb:DIR")` on a review folder built from the input: the parts
//! become `train/neg`, `train/pos`, `test/neg`, `test/pos` reviews in turn
//! (so some folders may be empty), and the first byte picks the options
//! (lossy UTF-8, bag-of-words mode, vocabulary size, a validation split).
//! No panic; one-line errors; a data set whose rows fit its vocabulary.
#![no_main]

use downhill_data::{load, BagOfWords, Features, LoadOptions, ValidSplit};
use downhill_fuzz::{check_error, split_parts};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn root() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder"))
}

const FOLDERS: [&str; 4] = ["train/neg", "train/pos", "test/neg", "test/pos"];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let dir = root().path().join("aclImdb");
    let _ = std::fs::remove_dir_all(&dir);
    // Bit 6 leaves the test folders out altogether.
    let folders = if sel & 0x40 != 0 {
        &FOLDERS[..2]
    } else {
        &FOLDERS[..]
    };
    for f in folders {
        std::fs::create_dir_all(dir.join(f)).expect("create a review folder");
    }
    for (i, part) in split_parts(rest).iter().enumerate().take(32) {
        let f = folders[i % folders.len()];
        std::fs::write(dir.join(f).join(format!("{i}_7.txt")), part).expect("write a review");
    }
    let opts = LoadOptions {
        lossy_utf8: sel & 1 != 0,
        bag_of_words: match (sel >> 1) & 3 {
            0 => BagOfWords::Binary,
            1 => BagOfWords::Counts,
            _ => BagOfWords::TfIdf,
        },
        vocab_size: 1 + ((sel >> 3) & 7) as usize * 3,
        valid: (sel & 0x80 != 0).then_some(ValidSplit::Fraction(0.5)),
        ..LoadOptions::default()
    };
    match load(&format!("imdb:{}", root().path().display()), &opts) {
        Ok(split) => {
            let train = &split.train;
            assert!(train.dim() <= opts.vocab_size);
            assert_eq!(train.feature_names().len(), train.dim());
            for d in std::iter::once(train)
                .chain(&split.valid)
                .chain(&split.test)
            {
                let Features::Sparse(csr) = d.features() else {
                    panic!("imdb data is sparse");
                };
                assert!(csr.indices().iter().all(|&j| (j as usize) < train.dim()));
                assert!(csr.values().iter().all(|v| v.is_finite()));
                assert!(d.labels().iter().all(|&l| l < 2));
            }
        }
        Err(e) => check_error(&e),
    }
});
