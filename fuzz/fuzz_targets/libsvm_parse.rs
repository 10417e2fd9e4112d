//! LIBSVM text: `parse_libsvm` on the bytes, then the same bytes as a file
//! through `load("libsvm:FILE")` (label mapping, index base, dimension, CSR
//! assembly). No panic; one-line errors naming the file; a consistent result.
#![no_main]

use downhill_data::{load, Features, LoadOptions};
use downhill_fuzz::{check_error, check_named_error, ORIGIN};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// One temporary folder per process, reused by every run.
fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder"))
}

fuzz_target!(|data: &[u8]| {
    match downhill_data::parse_libsvm(data, ORIGIN, None) {
        Ok(f) => {
            assert_eq!(f.indptr.len(), f.labels.len() + 1);
            assert_eq!(f.lines.len(), f.labels.len());
            assert_eq!(f.indices.len(), f.values.len());
            assert_eq!(*f.indptr.last().unwrap(), f.indices.len());
            for w in f.indptr.windows(2) {
                let row = &f.indices[w[0]..w[1]];
                assert!(row.windows(2).all(|p| p[0] < p[1]));
            }
            assert!(f.values.iter().all(|v| v.is_finite() && *v != 0.0));
        }
        Err(e) => check_named_error(&e),
    }
    // The first byte picks a limit and a fixed dimension, so the option
    // paths are fuzzed too.
    let path = dir().path().join("train.svm");
    std::fs::write(&path, data).expect("write the input");
    let sel = data.first().copied().unwrap_or(0);
    let opts = LoadOptions {
        limit_train: (sel & 1 == 1).then_some(3),
        dim: (sel & 2 == 2).then_some((sel >> 2) as usize),
        ..LoadOptions::default()
    };
    match load(&format!("libsvm:{}", path.display()), &opts) {
        Ok(split) => {
            let train = &split.train;
            assert!(!train.is_empty());
            if let Features::Sparse(csr) = train.features() {
                assert_eq!(csr.dim(), train.dim());
            }
            assert!(train
                .labels()
                .iter()
                .all(|&l| (l as usize) < train.classes()));
        }
        Err(e) => check_error(&e),
    }
});
