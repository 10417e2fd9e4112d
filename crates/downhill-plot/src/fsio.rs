//! Atomic file writing: a crash never leaves a half-written picture behind.

use crate::error::PlotError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` through a temporary file in the same directory
/// that is synced and then renamed over `path` (rename within a directory is
/// atomic on POSIX filesystems). On error the temporary file is removed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let wrap = |source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        wrap(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name; expected a path to a file",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(wrap(e));
    }
    Ok(())
}

/// `stem` with `.ext` appended (not replacing an existing extension, so that
/// `loss.train` becomes `loss.train.png`).
pub(crate) fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("downhill-plot-fsio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writes_replace_and_leave_no_temporaries() {
        let d = scratch("replace");
        let p = d.join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let p = std::env::temp_dir().join("downhill-plot-no-such-dir-xyz/a.png");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(
            e.to_string().contains("downhill-plot-no-such-dir-xyz"),
            "{e}"
        );
    }

    #[test]
    fn extension_is_appended() {
        assert_eq!(
            with_ext(Path::new("out/loss.train"), "png"),
            PathBuf::from("out/loss.train.png")
        );
    }
}
