//! The simulator's outputs: real files. A trained "LoRA" is a valid safetensors file that
//! remembers its training photos; a portrait is a crop of one of those photos, restyled per
//! prompt and sized as requested, encoded as JPEG or PNG.

use std::io::{Cursor, Read};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits, Rgb, RgbImage};

use aisha_fal::apps::OutputFormat;

/// At most this many photos are kept per LoRA, each at most this large once decoded.
const MAX_PHOTOS: usize = 20;
const MAX_SIDE: u32 = 8192;
const MAX_ZIP_ENTRY: u64 = 50 << 20;

/// The images inside a training zip (captions and other files are skipped).
pub(crate) fn training_photos(zip: &[u8]) -> Result<Vec<DynamicImage>, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip))
        .map_err(|e| format!("images_data_url is not a zip: {e}"))?;
    let mut photos = Vec::new();
    for i in 0..archive.len() {
        if photos.len() == MAX_PHOTOS {
            break;
        }
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("unreadable zip entry: {e}"))?;
        let name = entry.name().to_ascii_lowercase();
        if !(name.ends_with(".jpg")
            || name.ends_with(".jpeg")
            || name.ends_with(".png")
            || name.ends_with(".webp"))
        {
            continue;
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_ZIP_ENTRY)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("unreadable zip entry {name}: {e}"))?;
        photos.push(decode(&bytes).map_err(|e| format!("{name}: {e}"))?);
    }
    if photos.is_empty() {
        return Err("the zip holds no JPEG, PNG or WEBP images".into());
    }
    Ok(photos)
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    // Small copies are all a portrait needs.
    Ok(img.resize(1024, 1024, FilterType::Triangle))
}

/// A safetensors file: 8-byte little-endian header length, JSON header, tensor data.
pub(crate) fn lora_file(trigger: &str, photos: usize, steps: u64) -> Vec<u8> {
    let data: Vec<u8> = (0..16u32)
        .flat_map(|i| (i as f32 / 16.0).to_le_bytes())
        .collect();
    let header = serde_json::json!({
        "__metadata__": {
            "format": "pt",
            "trained_by": "aisha sim-fal",
            "trigger": trigger,
            "photos": photos.to_string(),
            "steps": steps.to_string(),
        },
        "lora_unet_down.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, data.len()]},
    })
    .to_string();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// One portrait of `width`×`height`.
pub(crate) fn portrait(
    photos: Option<&[DynamicImage]>,
    width: u32,
    height: u32,
    seed: u64,
    index: u32,
    prompt: &str,
) -> DynamicImage {
    let style = hash(prompt) ^ seed;
    match photos.filter(|p| !p.is_empty()) {
        Some(p) => {
            let photo = &p[((seed + index as u64) % p.len() as u64) as usize];
            let img = photo.resize_to_fill(width, height, FilterType::Triangle);
            img.huerotate((style % 360) as i32)
                .adjust_contrast(((style >> 9) % 30) as f32)
                .brighten(((style >> 17) % 20) as i32 - 5)
        }
        None => {
            let (a, b) = ((style % 256) as u8, ((style >> 8) % 256) as u8);
            DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
                let t = (x * 255 / width.max(1)) as u8;
                let u = (y * 255 / height.max(1)) as u8;
                Rgb([
                    t ^ a,
                    u ^ b,
                    t.wrapping_add(u).wrapping_add(index as u8 * 40),
                ])
            }))
        }
    }
}

pub(crate) fn encode(
    img: &DynamicImage,
    format: OutputFormat,
) -> Result<(Vec<u8>, &'static str), String> {
    let mut out = Vec::new();
    match format {
        OutputFormat::Jpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88);
            img.to_rgb8()
                .write_with_encoder(enc)
                .map_err(|e| e.to_string())?;
            Ok((out, "image/jpeg"))
        }
        OutputFormat::Png => {
            let enc = image::codecs::png::PngEncoder::new(&mut out);
            img.to_rgb8()
                .write_with_encoder(enc)
                .map_err(|e| e.to_string())?;
            Ok((out, "image/png"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lora_is_a_valid_safetensors_file() {
        let f = lora_file("ohwx person", 12, 1000);
        let n = u64::from_le_bytes(f[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&f[8..8 + n]).unwrap();
        assert_eq!(header["__metadata__"]["photos"], "12");
        assert_eq!(f.len(), 8 + n + 64);
    }

    #[test]
    fn portraits_have_the_requested_size_and_decode() {
        let photo = DynamicImage::ImageRgb8(RgbImage::from_pixel(800, 600, Rgb([200, 100, 50])));
        let img = portrait(Some(&[photo]), 576, 1024, 7, 0, "oil painting");
        let (bytes, ct) = encode(&img, OutputFormat::Jpeg).unwrap();
        assert_eq!(ct, "image/jpeg");
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), (576, 1024));
        let (png, _) = encode(&portrait(None, 64, 32, 1, 1, "x"), OutputFormat::Png).unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 64);
    }
}
