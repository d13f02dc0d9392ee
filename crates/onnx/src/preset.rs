//! Presets for well-known ImageNet classifiers: input size, preprocessing and class layout.

use feedbacknet_core::{InputSpec, Normalization};
use serde::Serialize;

/// What feedbacknet needs to know about a published ONNX classifier beyond the file itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPreset {
    /// Short name used on the command line (`squeezenet1.1`).
    pub name: &'static str,
    /// Human-readable description.
    pub description: &'static str,
    /// File name inside the models folder.
    pub file: &'static str,
    /// Input width and height in pixels.
    pub input_size: usize,
    /// Pixel normalization.
    pub normalization: Normalization,
    /// Index of ImageNet class 0 in the logits (1 for nets with a background logit first).
    pub class_offset: usize,
    /// Label file inside the models folder (line `i` = class `i`, `wnid name, synonyms`).
    pub labels_file: &'static str,
}

const PRESETS: [ModelPreset; 4] = [
    ModelPreset {
        name: "squeezenet1.1",
        description: "SqueezeNet 1.1, ImageNet-1k, 224x224, 26 ReLU",
        file: "squeezenet1.1.onnx",
        input_size: 224,
        normalization: Normalization::IMAGENET,
        class_offset: 0,
        labels_file: "imagenet_labels_1000.txt",
    },
    ModelPreset {
        name: "mobilenet_v1_0.25_128",
        description: "MobileNet v1 0.25, 128x128, 1001 logits (background first), ReLU6",
        file: "mobilenet_v1_0.25_128.onnx",
        input_size: 128,
        normalization: Normalization::SYMMETRIC,
        class_offset: 1,
        labels_file: "imagenet_labels_1000.txt",
    },
    ModelPreset {
        name: "mobilenet_v2_1.0_224",
        description: "MobileNet v2 1.0, 224x224, 1001 logits (background first), ReLU6",
        file: "mobilenet_v2_1.0_224.onnx",
        input_size: 224,
        normalization: Normalization::SYMMETRIC,
        class_offset: 1,
        labels_file: "imagenet_labels_1000.txt",
    },
    ModelPreset {
        name: "efficientnet_lite0",
        description: "EfficientNet-Lite0, 224x224, ReLU6",
        file: "efficientnet_lite0.onnx",
        input_size: 224,
        normalization: Normalization {
            mean: [127.0 / 255.0; 3],
            std: [128.0 / 255.0; 3],
        },
        class_offset: 0,
        labels_file: "imagenet_labels_1000.txt",
    },
];

impl ModelPreset {
    /// Every known preset.
    pub fn all() -> &'static [ModelPreset] {
        &PRESETS
    }

    /// The preset of this name or file name (`squeezenet1.1` or `squeezenet1.1.onnx`).
    pub fn find(name: &str) -> Option<&'static ModelPreset> {
        PRESETS.iter().find(|p| p.name == name || p.file == name)
    }

    /// The preset whose file name matches the last component of `path`.
    pub fn for_path(path: &std::path::Path) -> Option<&'static ModelPreset> {
        let file = path.file_name()?.to_str()?;
        PRESETS.iter().find(|p| p.file == file)
    }

    /// The default model: SqueezeNet 1.1.
    pub fn default_model() -> &'static ModelPreset {
        &PRESETS[0]
    }

    /// The input specification of this preset.
    pub fn input_spec(&self) -> InputSpec {
        InputSpec::rgb(self.input_size, self.input_size, self.normalization)
    }
}
