//! Training photos: checked and normalised before anything is paid for. A photo must be a
//! JPEG, PNG or WEBP of at most 20 MB with a short side of at least 512 px; its header is read
//! before its pixels so a decompression bomb is refused unread; EXIF orientation is applied;
//! the same photo twice is refused; what passes is re-encoded as a JPEG of at most 1536 px.
//! Every refusal says which photo and why: as data, which the bot words for the user, and
//! as an English diagnostic (`Display`).

use std::collections::HashMap;
use std::fmt;
use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRules {
    pub max_bytes: usize,
    pub min_side: u32,
    /// The longest side of the normalised JPEG.
    pub max_side: u32,
    /// Pixels a photo may declare; beyond this it is refused before decoding.
    pub max_pixels: u64,
}

impl Default for PhotoRules {
    fn default() -> Self {
        PhotoRules {
            max_bytes: 20 << 20,
            min_side: 512,
            max_side: 1536,
            max_pixels: 50_000_000,
        }
    }
}

/// Why a photo was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum PhotoProblem {
    TooLarge {
        bytes: usize,
        max: usize,
    },
    NotAnImage,
    UnsupportedFormat {
        format: String,
    },
    TooSmall {
        width: u32,
        height: u32,
        min: u32,
    },
    TooManyPixels {
        width: u32,
        height: u32,
    },
    Corrupt {
        detail: String,
    },
    /// The same file as photo number `of` (1-based).
    Duplicate {
        of: usize,
    },
}

/// A refused photo of a set: its number (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub photo: usize,
    pub problem: PhotoProblem,
}

impl fmt::Display for PhotoProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhotoProblem::TooLarge { bytes, max } => write!(
                f,
                "the file is {:.1} MB, at most {} MB is accepted",
                *bytes as f64 / 1048576.0,
                max >> 20
            ),
            PhotoProblem::NotAnImage => f.write_str("this is not an image"),
            PhotoProblem::UnsupportedFormat { format } => {
                write!(f, "{format} is not accepted: send JPEG, PNG or WEBP")
            }
            PhotoProblem::TooSmall { width, height, min } => write!(
                f,
                "{width}×{height} px is too small: the short side must be at least {min} px"
            ),
            PhotoProblem::TooManyPixels { width, height } => {
                write!(f, "{width}×{height} px is more than we accept")
            }
            PhotoProblem::Corrupt { detail } => write!(f, "the image is damaged ({detail})"),
            PhotoProblem::Duplicate { of } => write!(f, "the same photo as photo {of}"),
        }
    }
}

/// A photo that passed: a JPEG ready for training.
#[derive(Clone, PartialEq, Eq)]
pub struct Normalised {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Hex SHA-256 of the file as received.
    pub sha256: String,
}

impl fmt::Debug for Normalised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Normalised({}×{}, {} bytes)",
            self.width,
            self.height,
            self.jpeg.len()
        )
    }
}

/// Checks and normalises one photo.
pub fn normalise(bytes: &[u8], rules: &PhotoRules) -> Result<Normalised, PhotoProblem> {
    if bytes.len() > rules.max_bytes {
        return Err(PhotoProblem::TooLarge {
            bytes: bytes.len(),
            max: rules.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| PhotoProblem::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(PhotoProblem::UnsupportedFormat {
            format: format!("{format:?}").to_uppercase(),
        });
    }
    // The JPEG decoder pads a cut-short file with grey instead of failing.
    if format == ImageFormat::Jpeg && !ends_with_eoi(bytes) {
        return Err(PhotoProblem::Corrupt {
            detail: "the JPEG is cut short".into(),
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(rules.max_pixels * 4 + (64 << 20));
    reader.limits(limits);
    let corrupt = |e: image::ImageError| PhotoProblem::Corrupt {
        detail: e.to_string(),
    };
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if width as u64 * height as u64 > rules.max_pixels {
        return Err(PhotoProblem::TooManyPixels { width, height });
    }
    if width.min(height) < rules.min_side {
        return Err(PhotoProblem::TooSmall {
            width,
            height,
            min: rules.min_side,
        });
    }
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    if img.width().max(img.height()) > rules.max_side {
        img = img.resize(rules.max_side, rules.max_side, FilterType::Lanczos3);
    }
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92);
    img.to_rgb8().write_with_encoder(encoder).map_err(corrupt)?;
    Ok(Normalised {
        jpeg,
        width: img.width(),
        height: img.height(),
        sha256: hex::encode(Sha256::digest(bytes)),
    })
}

/// A JPEG's end-of-image marker, allowing for a little trailing padding.
fn ends_with_eoi(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Checks a set of photos: each on its own, and no file twice. The answer is in order, one
/// per photo.
pub fn check_set(photos: &[Vec<u8>], rules: &PhotoRules) -> Vec<Result<Normalised, PhotoProblem>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    photos
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let hash = hex::encode(Sha256::digest(bytes));
            if let Some(first) = seen.get(&hash) {
                return Err(PhotoProblem::Duplicate { of: first + 1 });
            }
            seen.insert(hash, i);
            normalise(bytes, rules)
        })
        .collect()
}
