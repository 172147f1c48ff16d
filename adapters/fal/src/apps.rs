//! Typed inputs and outputs of the FAL apps Aisha uses, field for field as FAL documents
//! them. Optional fields are left out of the JSON when unset so FAL applies its defaults.

use serde::{Deserialize, Serialize};

/// FAL's file object (outputs, LoRA weights, images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

/// `fal-ai/flux-lora-portrait-trainer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortraitTrainerInput {
    /// A zip of the training photos (optionally with same-name `.txt` captions).
    pub images_data_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_phrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiresolution_training: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_crop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_masks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_archive_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from_checkpoint: Option<String>,
}

/// `fal-ai/flux-lora-fast-training`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FastTrainingInput {
    pub images_data_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_word: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_masks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_style: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_input_format_already_preprocessed: Option<bool>,
}

/// What both trainers return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingOutput {
    pub diffusers_lora_file: File,
    pub config_file: File,
}

/// One LoRA applied to a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraWeight {
    pub path: String,
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

/// `image_size`: a named preset or explicit dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageSize {
    Preset(SizePreset),
    Custom { width: u32, height: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizePreset {
    SquareHd,
    Square,
    #[serde(rename = "portrait_4_3")]
    Portrait4x3,
    #[serde(rename = "portrait_16_9")]
    Portrait16x9,
    #[serde(rename = "landscape_4_3")]
    Landscape4x3,
    #[serde(rename = "landscape_16_9")]
    Landscape16x9,
}

impl ImageSize {
    /// Pixel dimensions FAL renders for this size.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            ImageSize::Custom { width, height } => (width, height),
            ImageSize::Preset(p) => match p {
                SizePreset::SquareHd => (1024, 1024),
                SizePreset::Square => (512, 512),
                SizePreset::Portrait4x3 => (768, 1024),
                SizePreset::Portrait16x9 => (576, 1024),
                SizePreset::Landscape4x3 => (1024, 768),
                SizePreset::Landscape16x9 => (1024, 576),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Jpeg,
    Png,
}

/// `fal-ai/flux-lora`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FluxLoraInput {
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loras: Vec<LoraWeight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<ImageSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_images: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_inference_steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance_scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_safety_checker: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
}

/// One generated image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub url: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FluxLoraOutput {
    pub images: Vec<Image>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub has_nsfw_concepts: Vec<bool>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<serde_json::Value>,
}

/// `fal-ai/esrgan`: an image enlarged `scale` times (FAL: 1 to 8, default 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsrganInput {
    pub image_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Tile size; 0 (FAL's default) means no tiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<u32>,
    /// Enhance faces with GFPGAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<bool>,
    /// E.g. `RealESRGAN_x4plus` (FAL's default), `RealESRGAN_x2plus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsrganOutput {
    pub image: Image,
}

/// Which FAL app each job goes to, and the defaults we send: configuration, not constants.
#[derive(Debug, Clone, PartialEq)]
pub struct FalApps {
    pub trainer: String,
    pub fast_trainer: String,
    pub generator: String,
    /// Takes [`EsrganInput`], answers [`EsrganOutput`].
    pub upscaler: String,
    pub learning_rate: f64,
    pub num_inference_steps: u32,
    pub guidance_scale: f64,
}

impl Default for FalApps {
    fn default() -> Self {
        FalApps {
            trainer: "fal-ai/flux-lora-portrait-trainer".into(),
            fast_trainer: "fal-ai/flux-lora-fast-training".into(),
            generator: "fal-ai/flux-lora".into(),
            upscaler: "fal-ai/esrgan".into(),
            learning_rate: 0.00009,
            num_inference_steps: 28,
            guidance_scale: 3.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_size_is_a_preset_or_dimensions() {
        let p: ImageSize = serde_json::from_str(r#""portrait_16_9""#).unwrap();
        assert_eq!(p.dimensions(), (576, 1024));
        let c: ImageSize = serde_json::from_str(r#"{"width":640,"height":480}"#).unwrap();
        assert_eq!(c.dimensions(), (640, 480));
        assert_eq!(
            serde_json::to_string(&ImageSize::Preset(SizePreset::Landscape4x3)).unwrap(),
            r#""landscape_4_3""#
        );
    }

    #[test]
    fn training_output_holds_file_objects() {
        let out: TrainingOutput = serde_json::from_str(
            r#"{"diffusers_lora_file":{"url":"https://x/l.safetensors","file_size":5},"config_file":{"url":"https://x/c.json"}}"#,
        )
        .unwrap();
        assert_eq!(out.diffusers_lora_file.file_size, Some(5));
    }

    #[test]
    fn an_upscale_is_an_image_url_and_a_scale_and_answers_one_image() {
        let input = EsrganInput {
            image_url: "https://x/p.jpg".into(),
            scale: Some(2.0),
            tile: None,
            face: None,
            model: None,
            output_format: Some(OutputFormat::Jpeg),
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            serde_json::json!({"image_url": "https://x/p.jpg", "scale": 2.0, "output_format": "jpeg"})
        );
        let out: EsrganOutput = serde_json::from_str(
            r#"{"image":{"url":"https://x/u.jpg","content_type":"image/jpeg","width":1536,"height":2048}}"#,
        )
        .unwrap();
        assert_eq!(
            (out.image.width, out.image.height),
            (Some(1536), Some(2048))
        );
    }

    #[test]
    fn unset_options_are_left_to_fal() {
        let input = FluxLoraInput {
            prompt: "p".into(),
            loras: vec![],
            image_size: None,
            num_images: Some(2),
            seed: None,
            num_inference_steps: None,
            guidance_scale: None,
            enable_safety_checker: None,
            output_format: None,
        };
        assert_eq!(
            serde_json::to_value(&input).unwrap(),
            serde_json::json!({"prompt": "p", "num_images": 2})
        );
    }
}
