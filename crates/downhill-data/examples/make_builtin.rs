//! Regenerates the embedded `builtin:fashion-mnist-small` files from the
//! Fashion-MNIST originals:
//!
//! ```text
//! cargo run -p downhill-data --example make_builtin -- [SOURCE_DIR] [OUT_DIR]
//! ```
//!
//! SOURCE_DIR defaults to `/usr/share/datasets/fashion-mnist`, OUT_DIR to this
//! crate's `data/fashion-mnist-small`. The selection rule lives in
//! `downhill_data::builtin::select_balanced` so the test that checks the
//! embedded files against the originals uses the very same rule.

use downhill_data::builtin::{select_balanced, write_idx_images, write_idx_labels};
use downhill_data::{parse_idx_images, parse_idx_labels, DataError};
use std::path::{Path, PathBuf};

fn main() {
    let mut args = std::env::args().skip(1);
    let src = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/usr/share/datasets/fashion-mnist".into()),
    );
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist-small"));
    if let Err(e) = run(&src, &out) {
        eprintln!("make_builtin: {e}");
        std::process::exit(1);
    }
}

fn run(src: &Path, out: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(out).map_err(|e| DataError::Io {
        path: out.into(),
        source: e,
    })?;
    for (prefix, per_class) in [("train", 600), ("t10k", 100)] {
        let read = |kind: &str| -> Result<(Vec<u8>, String), DataError> {
            let p = src.join(format!("{prefix}-{kind}.gz"));
            let bytes = std::fs::read(&p).map_err(|e| DataError::Io {
                path: p.clone(),
                source: e,
            })?;
            Ok((bytes, p.display().to_string()))
        };
        let (ib, io) = read("images-idx3-ubyte")?;
        let (lb, lo) = read("labels-idx1-ubyte")?;
        let images = parse_idx_images(&ib, &io)?;
        let labels = parse_idx_labels(&lb, &lo)?;
        let picked = select_balanced(&labels, 10, per_class)?;
        let dim = images.rows * images.cols;
        let mut pixels = Vec::with_capacity(picked.len() * dim);
        for &i in &picked {
            pixels.extend_from_slice(&images.pixels[i * dim..(i + 1) * dim]);
        }
        let sub_labels: Vec<u8> = picked.iter().map(|&i| labels[i]).collect();
        let write = |name: &str, bytes: Vec<u8>| -> Result<(), DataError> {
            let p = out.join(name);
            std::fs::write(&p, bytes).map_err(|e| DataError::Io {
                path: p.clone(),
                source: e,
            })?;
            println!("wrote {}", p.display());
            Ok(())
        };
        write(
            &format!("{prefix}-images-idx3-ubyte.gz"),
            write_idx_images(&pixels, images.rows, images.cols)?,
        )?;
        write(
            &format!("{prefix}-labels-idx1-ubyte.gz"),
            write_idx_labels(&sub_labels)?,
        )?;
    }
    Ok(())
}
