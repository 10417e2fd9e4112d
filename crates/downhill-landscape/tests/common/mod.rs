//! Checks of the pictures and files the landscape writes.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

/// A decoded 8-bit RGB picture.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// Pixels per colour.
    pub colours: HashMap<[u8; 3], usize>,
}

impl Picture {
    /// Pixels of exactly this colour.
    pub fn count(&self, rgb: (u8, u8, u8)) -> usize {
        self.colours
            .get(&[rgb.0, rgb.1, rgb.2])
            .copied()
            .unwrap_or(0)
    }
}

/// Decodes `path` as a PNG and checks its size and that it is not trivial:
/// at least `min_colours` distinct colours, and no colour (the background)
/// covering more than `max_share` of the pixels.
pub fn check_png(
    path: &Path,
    width: u32,
    height: u32,
    min_colours: usize,
    max_share: f64,
) -> Picture {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("PNG data decodes");
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{}: colour type {other:?}", path.display()),
    };
    let mut colours = HashMap::new();
    for px in buf[..info.buffer_size()].chunks_exact(step) {
        *colours.entry([px[0], px[1], px[2]]).or_insert(0usize) += 1;
    }
    let pic = Picture {
        width: info.width,
        height: info.height,
        colours,
    };
    assert_eq!(
        (pic.width, pic.height),
        (width, height),
        "{}",
        path.display()
    );
    assert!(
        pic.colours.len() >= min_colours,
        "{}: only {} colours",
        path.display(),
        pic.colours.len()
    );
    let total = (width * height) as f64;
    let most = pic.colours.values().max().copied().unwrap_or(0);
    assert!(
        (most as f64) < max_share * total,
        "{}: one colour covers {most} of {total} pixels",
        path.display()
    );
    pic
}

/// Reads `path` as an SVG document holding each of `texts`.
pub fn check_svg(path: &Path, texts: &[&str]) -> String {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.contains("<svg"), "{}: no <svg> element", path.display());
    assert!(
        svg.trim_end().ends_with("</svg>"),
        "{}: not closed",
        path.display()
    );
    for t in texts {
        let escaped = t
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            svg.contains(t) || svg.contains(&escaped),
            "{}: `{t}` is missing",
            path.display()
        );
    }
    svg
}

/// The number of frames of a GIF, checking its size.
pub fn gif_frames(path: &Path, width: u16, height: u16) -> usize {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(file).expect("a GIF");
    assert_eq!((decoder.width(), decoder.height()), (width, height));
    let mut frames = 0;
    while decoder
        .read_next_frame()
        .expect("a frame decodes")
        .is_some()
    {
        frames += 1;
    }
    frames
}
