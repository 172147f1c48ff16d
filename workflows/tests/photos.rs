//! Photo checks on real files made here: formats, sizes, bombs, EXIF orientation, duplicates.

use std::io::Cursor;

use aisha_workflows::photos::{PhotoProblem, PhotoRules, check_set, normalise};
use image::{DynamicImage, ImageEncoder, ImageFormat, RgbImage};

fn picture(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    }))
}

fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

fn rules() -> PhotoRules {
    PhotoRules::default()
}

#[test]
fn good_photos_become_jpegs_of_at_most_1536_px() {
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
        let n = normalise(&encoded(&picture(600, 800), format), &rules()).unwrap();
        assert_eq!((n.width, n.height), (600, 800), "{format:?}");
        assert_eq!(&n.jpeg[..3], &[0xFF, 0xD8, 0xFF]);
        let back = image::load_from_memory(&n.jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (600, 800));
    }
    let big = normalise(&encoded(&picture(2000, 3000), ImageFormat::Png), &rules()).unwrap();
    assert_eq!((big.width, big.height), (1024, 1536));
}

#[test]
fn exif_orientation_is_applied() {
    // EXIF (TIFF, big-endian) with one tag: Orientation = 6 (rotate 90° clockwise).
    let exif = vec![
        0x4D, 0x4D, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01, 0x01, 0x12, 0x00, 0x03, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let img = picture(800, 600);
    let mut jpeg = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90);
    enc.set_exif_metadata(exif).unwrap();
    enc.write_image(img.as_bytes(), 800, 600, image::ExtendedColorType::Rgb8)
        .unwrap();
    let n = normalise(&jpeg, &rules()).unwrap();
    assert_eq!((n.width, n.height), (600, 800), "turned upright");
}

#[test]
fn every_bad_photo_says_what_is_wrong() {
    let small = normalise(&encoded(&picture(400, 900), ImageFormat::Png), &rules()).unwrap_err();
    assert_eq!(
        small,
        PhotoProblem::TooSmall {
            width: 400,
            height: 900,
            min: 512
        }
    );
    assert!(small.to_string().contains("at least 512 px"));

    assert_eq!(
        normalise(b"hello, not a photo", &rules()).unwrap_err(),
        PhotoProblem::NotAnImage
    );
    let gif = normalise(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", &rules()).unwrap_err();
    assert_eq!(
        gif,
        PhotoProblem::UnsupportedFormat {
            format: "GIF".into()
        }
    );

    let mut huge = encoded(&picture(600, 600), ImageFormat::Png);
    huge.resize((20 << 20) + 1, 0);
    assert!(matches!(
        normalise(&huge, &rules()).unwrap_err(),
        PhotoProblem::TooLarge { .. }
    ));

    for format in [ImageFormat::Jpeg, ImageFormat::Png] {
        let mut cut = encoded(&picture(700, 700), format);
        cut.truncate(cut.len() / 3);
        let e = normalise(&cut, &rules()).unwrap_err();
        assert!(matches!(e, PhotoProblem::Corrupt { .. }), "{format:?}: {e}");
    }
}

#[test]
fn a_decompression_bomb_is_refused_before_decoding() {
    // A tiny PNG whose header claims 60000×60000 pixels.
    let mut png = encoded(&picture(1, 1), ImageFormat::Png);
    png[16..20].copy_from_slice(&60000u32.to_be_bytes());
    png[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let e = normalise(&png, &rules()).unwrap_err();
    assert_eq!(
        e,
        PhotoProblem::TooManyPixels {
            width: 60000,
            height: 60000
        }
    );
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_same_photo_twice_is_refused_by_number() {
    let a = encoded(&picture(600, 700), ImageFormat::Png);
    let b = encoded(&picture(700, 600), ImageFormat::Png);
    let results = check_set(&[a.clone(), b, a], &rules());
    assert!(results[0].is_ok() && results[1].is_ok());
    assert_eq!(
        results[2].clone().unwrap_err(),
        PhotoProblem::Duplicate { of: 1 }
    );
}
