//! Builders for tiny data files, written independently of the crate's own
//! writers so a bug in one is not mirrored in the other.

#![allow(dead_code)]

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::Path;

pub fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for x in [count, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}

pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// Pixels `0, 1, 2, ...` (mod 256) for `n` images of `dim` pixels.
pub fn ramp(n: usize, dim: usize, offset: usize) -> Vec<u8> {
    (0..n * dim).map(|i| ((i + offset) % 256) as u8).collect()
}

/// An MNIST-layout folder: 5 training images of 2x3, 2 test images.
pub fn mnist_dir(dir: &Path, gzip: bool, dotted: bool) {
    let name = |kind: &str| {
        let n = if dotted {
            kind.replacen("-idx", ".idx", 1)
        } else {
            kind.to_string()
        };
        if gzip {
            format!("{n}.gz")
        } else {
            n
        }
    };
    let enc = |b: Vec<u8>| if gzip { gz(&b) } else { b };
    write(
        &dir.join(name("train-images-idx3-ubyte")),
        &enc(idx_images(5, 2, 3, &ramp(5, 6, 0))),
    );
    write(
        &dir.join(name("train-labels-idx1-ubyte")),
        &enc(idx_labels(&[3, 0, 9, 3, 1])),
    );
    write(
        &dir.join(name("t10k-images-idx3-ubyte")),
        &enc(idx_images(2, 2, 3, &ramp(2, 6, 100))),
    );
    write(
        &dir.join(name("t10k-labels-idx1-ubyte")),
        &enc(idx_labels(&[7, 2])),
    );
}

/// A CIFAR-10 record with label `label` and pixels `seed, seed+1, ...`.
pub fn cifar_record(label: u8, seed: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend((0..3072).map(|i| (i as u8).wrapping_add(seed)));
    r
}
