//! The upscaler app (`fal-ai/esrgan`'s schema): the image at `image_url` really enlarged
//! `scale` times with a Lanczos filter, encoded as JPEG or PNG, and FAL's 422s for bad input.

use std::io::Cursor;
use std::sync::Arc;

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits};
use serde_json::{Value, json};

use super::routes::{add_file, fetch, invalid, missing};
use super::{Shared, SimRequest, render};
use aisha_fal::apps::{EsrganInput, EsrganOutput, Image, OutputFormat};

/// FAL's bounds of `scale`.
const MIN_SCALE: f64 = 1.0;
const MAX_SCALE: f64 = 8.0;
/// The largest input and output side the simulator decodes or makes.
const MAX_SIDE: u32 = 16384;

/// Checks the input against the app's schema; the error is FAL's 422 body.
pub(crate) fn validate(input: &Value) -> Result<(), Value> {
    let url = input.get("image_url").and_then(Value::as_str);
    if url.is_none_or(str::is_empty) {
        return Err(missing("image_url"));
    }
    let i: EsrganInput =
        serde_json::from_value(input.clone()).map_err(|e| invalid(e.to_string()))?;
    match i.scale {
        Some(s) if s < MIN_SCALE => Err(out_of_range("greater than or equal to", "ge", MIN_SCALE)),
        Some(s) if s > MAX_SCALE => Err(out_of_range("less than or equal to", "le", MAX_SCALE)),
        _ => Ok(()),
    }
}

fn out_of_range(words: &str, op: &str, limit: f64) -> Value {
    json!({"detail": [{
        "loc": ["body", "scale"],
        "msg": format!("ensure this value is {words} {limit}"),
        "type": format!("value_error.number.not_{op}"),
        "ctx": {"limit_value": limit},
    }]})
}

/// Downloads the image, enlarges it and answers FAL's output.
pub(crate) async fn run(s: &Arc<Shared>, id: &str, job: &SimRequest) -> Result<Value, String> {
    let input: EsrganInput =
        serde_json::from_value(job.input.clone()).map_err(|e| e.to_string())?;
    let bytes = fetch(s, &input.image_url, "image_url").await?;
    let scale = input.scale.unwrap_or(2.0);
    // FAL's default output is PNG.
    let format = input.output_format.unwrap_or(OutputFormat::Png);
    let (bytes, ct, width, height) = tokio::task::spawn_blocking(move || {
        let img = enlarge(&decode(&bytes)?, scale)?;
        let (w, h) = (img.width(), img.height());
        render::encode(&img, format).map(|(b, ct)| (b, ct, w, h))
    })
    .await
    .map_err(|e| e.to_string())??;
    let name = match format {
        OutputFormat::Jpeg => "image.jpg",
        OutputFormat::Png => "image.png",
    };
    let f = add_file(s, id, name, ct, bytes);
    let out = EsrganOutput {
        image: Image {
            url: f["url"].as_str().unwrap_or_default().to_string(),
            width: Some(width),
            height: Some(height),
            content_type: Some(ct.to_string()),
            file_name: Some(name.to_string()),
            file_size: f["file_size"].as_u64(),
        },
    };
    serde_json::to_value(out).map_err(|e| e.to_string())
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("image_url: {e}"))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    reader.decode().map_err(|e| format!("image_url: {e}"))
}

/// `img` resized to `scale` times its width and height, with Lanczos (a = 3).
pub(crate) fn enlarge(img: &DynamicImage, scale: f64) -> Result<DynamicImage, String> {
    let side = |n: u32| (f64::from(n) * scale).round() as u64;
    let (w, h) = (side(img.width()), side(img.height()));
    if w > u64::from(MAX_SIDE) || h > u64::from(MAX_SIDE) {
        return Err(format!(
            "the upscaled image would be {w}×{h}, over {MAX_SIDE} px a side"
        ));
    }
    Ok(img.resize_exact(w as u32, h as u32, FilterType::Lanczos3))
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};

    use super::*;

    #[test]
    fn lanczos_enlarges_width_and_height_by_the_scale() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(96, 128, |x, y| {
            Rgb([(x * 2) as u8, (y * 2) as u8, 128])
        }));
        let twice = enlarge(&img, 2.0).unwrap();
        assert_eq!((twice.width(), twice.height()), (192, 256));
        let (jpeg, ct) = render::encode(&twice, OutputFormat::Jpeg).unwrap();
        assert_eq!(ct, "image/jpeg");
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (192, 256));
        let odd = enlarge(&img, 1.5).unwrap();
        assert_eq!((odd.width(), odd.height()), (144, 192));
        assert!(enlarge(&img, 200.0).is_err());
    }

    #[test]
    fn bad_input_gets_fals_422_body() {
        let missing = validate(&json!({"scale": 2})).unwrap_err();
        assert_eq!(missing["detail"][0]["loc"], json!(["body", "image_url"]));
        assert_eq!(missing["detail"][0]["type"], "value_error.missing");
        let big = validate(&json!({"image_url": "http://x/a.jpg", "scale": 9})).unwrap_err();
        assert_eq!(big["detail"][0]["loc"], json!(["body", "scale"]));
        assert_eq!(big["detail"][0]["type"], "value_error.number.not_le");
        let small = validate(&json!({"image_url": "http://x/a.jpg", "scale": 0.5})).unwrap_err();
        assert_eq!(small["detail"][0]["type"], "value_error.number.not_ge");
        assert!(validate(&json!({"image_url": "http://x/a.jpg", "scale": "big"})).is_err());
        assert!(validate(&json!({"image_url": "http://x/a.jpg", "scale": 2})).is_ok());
    }
}
