//! Pictures made at run time for tests, the demo and the benches: a gradient "photo" in any
//! format, a selfie-like face, and FAL's training zip of them. Deterministic per seed, so a
//! test that needs distinct photos passes distinct seeds.

use std::io::{Cursor, Write};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

/// A photo-like coloured gradient of `w`×`h`, different for each `seed`, encoded as `format`.
pub fn gradient(w: u32, h: u32, seed: u8, format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w) as u8 ^ seed,
            (y * 255 / h) as u8,
            seed.wrapping_mul(37),
        ])
    });
    encode(img, format)
}

/// [`gradient`] as a PNG.
pub fn photo(w: u32, h: u32, seed: u8) -> Vec<u8> {
    gradient(w, h, seed, ImageFormat::Png)
}

/// [`gradient`] as a JPEG (what Telegram sends for a photo).
pub fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    gradient(w, h, seed, ImageFormat::Jpeg)
}

/// A selfie-like PNG of 768×1024: a face on a coloured background, different for each `i`.
pub fn selfie(i: u8) -> Vec<u8> {
    let (w, h) = (768u32, 1024u32);
    let hue = i as f32 / 12.0;
    let bg = hsv(hue, 0.35, 0.9);
    let skin = hsv(0.07, 0.35 + (i % 3) as f32 * 0.05, 0.85);
    let (cx, cy) = (w as f32 / 2.0 + (i as f32 - 6.0) * 6.0, h as f32 * 0.45);
    let img = RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / 190.0, (y as f32 - cy) / 250.0);
        let face = dx * dx + dy * dy <= 1.0;
        let eye = |ex: f32| {
            let (a, b) = ((x as f32 - ex) / 22.0, (y as f32 - (cy - 50.0)) / 14.0);
            a * a + b * b <= 1.0
        };
        let mouth = (y as f32 - (cy + 120.0)).abs() < 6.0 && (x as f32 - cx).abs() < 60.0;
        if face && (eye(cx - 70.0) || eye(cx + 70.0) || mouth) {
            Rgb([40, 30, 30])
        } else if face {
            skin
        } else if y as f32 > h as f32 * 0.8 {
            hsv(hue + 0.5, 0.5, 0.5)
        } else {
            bg
        }
    });
    encode(img, ImageFormat::Png)
}

/// A training zip of `n` photos with caption files, as FAL's trainers take it.
pub fn training_zip(n: u8) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for i in 0..n {
            // Writing to a Vec cannot fail; the zip errors here are about I/O only.
            let _ = z.start_file(format!("{i:02}.png"), opts);
            let _ = z.write_all(&photo(640, 800, i));
            let _ = z.start_file(format!("{i:02}.txt"), opts);
            let _ = z.write_all(b"a photo of [trigger]");
        }
        let _ = z.finish();
    }
    buf.into_inner()
}

fn encode(img: RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    // Encoding an RGB buffer into memory in a format the `image` features enable cannot fail.
    let _ = DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), format);
    out
}

fn hsv(h: f32, s: f32, v: f32) -> Rgb<u8> {
    let h = (h.fract() + 1.0).fract() * 6.0;
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let to = |f: f32| ((f + m) * 255.0) as u8;
    Rgb([to(r), to(g), to(b)])
}
