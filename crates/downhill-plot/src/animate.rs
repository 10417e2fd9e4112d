//! An animated GIF of optimiser paths growing over a contour plot.

use crate::canvas::Raster;
use crate::color::Rgb;
use crate::contour::ContourPlot;
use crate::error::PlotError;
use crate::fsio;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Most frames [`animate_paths`] accepts; around 100 already gives a smooth
/// animation at a small file size.
pub const MAX_FRAMES: usize = 500;

/// Palette index kept for "unchanged since the previous frame".
const TRANSPARENT: u8 = 255;

/// Writes an animated GIF to `path` (as given, written atomically) in which
/// the paths of `plot` grow step by step, all in step with each other, over
/// the contour background. Frame 0 shows the starting points and the last
/// frame the complete paths; the animation loops, holding the last frame.
///
/// The background is drawn once; each frame stores only the pixels that
/// changed, in one shared 255-colour palette, which keeps files small.
pub fn animate_paths(
    plot: &ContourPlot,
    frames: usize,
    path: impl AsRef<Path>,
) -> Result<PathBuf, PlotError> {
    let path = path.as_ref();
    if frames == 0 || frames > MAX_FRAMES {
        return Err(PlotError::InvalidFrames {
            frames,
            max: MAX_FRAMES,
        });
    }
    let scene = plot.scene()?;
    let (w, h) = scene.size();
    let mut background = Raster::new(w, h)?;
    scene.draw_background(&mut background)?;
    let longest = scene.max_path_len().max(1);
    // Points shown in frame k: grows from 1 to all, evenly in steps.
    let upto = |k: usize| {
        if frames == 1 {
            longest
        } else {
            1 + ((k as f64 / (frames - 1) as f64) * (longest - 1) as f64).round() as usize
        }
    };
    let render = |k: usize| {
        let mut r = Raster::from_pixmap(background.pixmap.clone());
        scene.draw_paths(&mut r, upto(k));
        scene.draw_overlay(&mut r);
        r.rgb()
    };

    // The last frame holds every colour that appears: build the palette from it.
    let last = render(frames - 1);
    let palette_colors = build_palette(&last, &scene.key_colors());
    let mut palette: Vec<u8> = palette_colors
        .iter()
        .flat_map(|c| [c.0, c.1, c.2])
        .collect();
    palette.resize(256 * 3, 0);
    let mut cache: HashMap<[u8; 3], u8> = HashMap::new();
    let mut index_of = |p: &[u8]| -> u8 {
        *cache
            .entry([p[0], p[1], p[2]])
            .or_insert_with(|| nearest(&palette_colors, Rgb(p[0], p[1], p[2])))
    };

    let gif_err = |e: gif::EncodingError| PlotError::Encode {
        format: "GIF",
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w as u16, h as u16, &palette).map_err(gif_err)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
        // About four seconds in all, then a two-second pause on the result.
        let delay = (400 / frames).clamp(4, 20) as u16;
        let mut prev: Option<Vec<u8>> = None;
        for k in 0..frames {
            let rgb = if k == frames - 1 {
                last.clone()
            } else {
                render(k)
            };
            let mut frame = match &prev {
                None => gif::Frame {
                    width: w as u16,
                    height: h as u16,
                    buffer: Cow::Owned(rgb.chunks_exact(3).map(&mut index_of).collect()),
                    ..gif::Frame::default()
                },
                Some(before) => delta_frame(before, &rgb, w as usize, h as usize, &mut index_of),
            };
            frame.delay = if k == frames - 1 { 200 } else { delay };
            frame.dispose = gif::DisposalMethod::Keep;
            enc.write_frame(&frame).map_err(gif_err)?;
            prev = Some(rgb);
        }
    }
    fsio::write_atomic(path, &out)?;
    Ok(path.to_path_buf())
}

/// At most 255 colours for `rgb`: every colour when there are that few,
/// otherwise the `keys` exactly (paths, text, bands) and NeuQuant's choice
/// for the rest (anti-aliased edges).
fn build_palette(rgb: &[u8], keys: &[Rgb]) -> Vec<Rgb> {
    let mut seen: HashMap<[u8; 3], ()> = HashMap::new();
    for p in rgb.chunks_exact(3) {
        seen.insert([p[0], p[1], p[2]], ());
        if seen.len() > 255 {
            break;
        }
    }
    if seen.len() <= 255 {
        let mut all: Vec<Rgb> = seen.keys().map(|c| Rgb(c[0], c[1], c[2])).collect();
        all.sort_by_key(|c| (c.0, c.1, c.2));
        return all;
    }
    let keys = &keys[..keys.len().min(128)];
    let rgba: Vec<u8> = rgb
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let quant = color_quant::NeuQuant::new(10, 255 - keys.len(), &rgba);
    let mut out = keys.to_vec();
    out.extend(
        quant
            .color_map_rgb()
            .chunks_exact(3)
            .map(|c| Rgb(c[0], c[1], c[2])),
    );
    out
}

/// Index of the palette entry closest to `c` (squared RGB distance).
fn nearest(palette: &[Rgb], c: Rgb) -> u8 {
    let d = |p: &Rgb| {
        let (dr, dg, db) = (
            i32::from(p.0) - i32::from(c.0),
            i32::from(p.1) - i32::from(c.1),
            i32::from(p.2) - i32::from(c.2),
        );
        // Green weighs most in perceived brightness.
        2 * dr * dr + 4 * dg * dg + 3 * db * db
    };
    let mut best = 0;
    for (i, p) in palette.iter().enumerate() {
        if d(p) < d(&palette[best]) {
            best = i;
        }
    }
    best as u8
}

/// The smallest rectangle holding every pixel that changed between two RGB
/// frames, as palette indices, with unchanged pixels inside it transparent
/// (long runs compress well). A frame with no change is a single transparent
/// pixel, so the frame count stays as requested.
fn delta_frame(
    before: &[u8],
    after: &[u8],
    w: usize,
    h: usize,
    index_of: &mut impl FnMut(&[u8]) -> u8,
) -> gif::Frame<'static> {
    let px = |buf: &[u8], i: usize| [buf[3 * i], buf[3 * i + 1], buf[3 * i + 2]];
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0usize, 0usize);
    for y in 0..h {
        let row = y * w;
        for x in 0..w {
            if px(before, row + x) != px(after, row + x) {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    if x0 > x1 {
        return gif::Frame {
            width: 1,
            height: 1,
            transparent: Some(TRANSPARENT),
            buffer: Cow::Owned(vec![TRANSPARENT]),
            ..gif::Frame::default()
        };
    }
    let (fw, fh) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut buf = Vec::with_capacity(fw * fh);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let i = y * w + x;
            let p = px(after, i);
            buf.push(if px(before, i) == p {
                TRANSPARENT
            } else {
                index_of(&p)
            });
        }
    }
    gif::Frame {
        left: x0 as u16,
        top: y0 as u16,
        width: fw as u16,
        height: fh as u16,
        transparent: Some(TRANSPARENT),
        buffer: Cow::Owned(buf),
        ..gif::Frame::default()
    }
}
