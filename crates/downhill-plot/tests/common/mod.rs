//! Helpers shared by the integration tests: decoding and inspecting output.

#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;

/// A decoded 8-bit RGB(A) image.
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    /// RGB triples, row-major.
    pub rgb: Vec<u8>,
}

impl Decoded {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = 3 * (y as usize * self.width as usize + x as usize);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    pub fn distinct_colors(&self) -> usize {
        self.rgb
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect::<HashSet<_>>()
            .len()
    }

    /// Fraction of pixels in the rectangle that are not (near) white.
    pub fn ink_fraction(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> f64 {
        let mut ink = 0usize;
        let mut all = 0usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let p = self.pixel(x, y);
                all += 1;
                if p.iter().any(|&c| c < 235) {
                    ink += 1;
                }
            }
        }
        ink as f64 / all.max(1) as f64
    }
}

/// Decodes a PNG (8-bit RGB or RGBA), panicking with a clear message if it is not one.
pub fn decode_png(bytes: &[u8]) -> Decoded {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header decodes");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG data decodes");
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf[..info.buffer_size()].to_vec(),
        png::ColorType::Rgba => buf[..info.buffer_size()]
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    Decoded {
        width: info.width,
        height: info.height,
        rgb,
    }
}

/// Checks a rendered PNG: size, colour variety and ink in the middle.
pub fn assert_rich_png(bytes: &[u8], width: u32, height: u32) -> Decoded {
    let img = decode_png(bytes);
    assert_eq!((img.width, img.height), (width, height));
    let colours = img.distinct_colors();
    assert!(colours >= 20, "only {colours} distinct colours");
    let ink = img.ink_fraction(width / 4, height / 4, 3 * width / 4, 3 * height / 4);
    assert!(ink > 0.01, "plot area is blank ({ink})");
    img
}

/// Parses an SVG and returns the text of all its `<text>` and `<title>` elements.
pub fn svg_texts(bytes: &[u8]) -> Vec<String> {
    let s = std::str::from_utf8(bytes).expect("SVG is UTF-8");
    let doc = roxmltree::Document::parse(s).expect("SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    doc.descendants()
        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "text" | "title"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("downhill-plot-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// File names in a directory, sorted.
pub fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A small deterministic generator (SplitMix64) for randomised inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A value that is often awkward: NaN, ±inf, 0, negative, huge, tiny, or ordinary.
    pub fn awkward(&mut self) -> f64 {
        match self.below(12) {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => 0.0,
            4 => -self.unit() * 10.0,
            5 => f64::MAX * self.unit(),
            6 => f64::MIN_POSITIVE * self.unit(),
            7 => 1e300 * (self.unit() - 0.5),
            _ => self.unit() * 100.0,
        }
    }
}
