//! [`ModelInfo`]: the preprocessing and class layout a [`FeedbackNet`](crate::FeedbackNet)
//! uses, and where each setting came from; [`Resize`]; the `feedbacknet.*` metadata keys.
//!
//! Each setting is taken from the first of: the builder (or command-line flag), the ONNX file's
//! metadata (`docs/models.md`), the preset of the file name, what the file declares, a default.

use std::{fmt, path::PathBuf, str::FromStr};

use feedbacknet_core::{InputSize, Normalization};
use feedbacknet_localize::ResizeMode;
use feedbacknet_onnx::GatePlacement;
use serde::Serialize;

use crate::{Error, Labels, Result};

/// The metadata key of the input size (`N` or `HxW`).
pub const META_INPUT_SIZE: &str = "feedbacknet.input_size";
/// The metadata key of the normalization (`imagenet`, `inception`, `caffe`, `raw` or
/// `mean=R,G,B,std=R,G,B`).
pub const META_NORMALIZE: &str = "feedbacknet.normalize";
/// The metadata key of the resize rule (`stretch` or `crop`).
pub const META_RESIZE: &str = "feedbacknet.resize";
/// The metadata key of the class offset (index of class 0 among the logits).
pub const META_CLASS_OFFSET: &str = "feedbacknet.class_offset";
/// The metadata key of the labels, inline: one a line, or a JSON list of strings.
pub const META_LABELS: &str = "feedbacknet.labels";

/// Where a setting of [`ModelInfo`] came from, highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingSource {
    /// Given to the builder (on the command line: a flag).
    Given,
    /// The ONNX file's `feedbacknet.*` metadata.
    Metadata,
    /// The preset of the file name ([`ModelPreset`](crate::ModelPreset)).
    Preset,
    /// What the model declares (its input shape).
    Model,
    /// Inferred from the model (1001 outputs: a background logit first).
    Inferred,
    /// The default.
    Default,
}

impl fmt::Display for SettingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SettingSource::Given => "given",
            SettingSource::Metadata => "from metadata",
            SettingSource::Preset => "from preset",
            SettingSource::Model => "from the model",
            SettingSource::Inferred => "inferred",
            SettingSource::Default => "default",
        })
    }
}

/// How an image is fitted to the network input, before the input size is known (what
/// `--resize` and the `feedbacknet.resize` key say). A [`ResizeMode`] converts into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Resize {
    /// The whole image resized to the input size, aspect ratio ignored (the default).
    #[default]
    Stretch,
    /// torchvision's evaluation transform: the shorter side resized to 8/7 of the input's
    /// shorter side (256 for 224), keeping the aspect ratio, then a centre crop of the input
    /// size.
    Crop,
    /// An exact [`ResizeMode`].
    Mode(ResizeMode),
}

impl From<ResizeMode> for Resize {
    fn from(mode: ResizeMode) -> Self {
        Resize::Mode(mode)
    }
}

impl Resize {
    /// The [`ResizeMode`] for an input of `size`.
    ///
    /// ```
    /// use feedbacknet::{InputSize, Resize, ResizeMode};
    /// let size = InputSize::square(224)?;
    /// assert_eq!(Resize::Crop.mode_for(size), ResizeMode::ResizeCrop { shorter_side: 256 });
    /// assert_eq!(Resize::Stretch.mode_for(size), ResizeMode::Stretch);
    /// # Ok::<(), feedbacknet::InputSettingError>(())
    /// ```
    pub fn mode_for(self, size: InputSize) -> ResizeMode {
        match self {
            Resize::Stretch => ResizeMode::Stretch,
            Resize::Crop => ResizeMode::ResizeCrop {
                shorter_side: (size.height.min(size.width) as u32 * 8).div_ceil(7),
            },
            Resize::Mode(mode) => mode,
        }
    }
}

impl FromStr for Resize {
    type Err = Error;

    /// `stretch` or `crop`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stretch" => Ok(Resize::Stretch),
            "crop" | "resize-crop" | "center-crop" | "centre-crop" => Ok(Resize::Crop),
            _ => Err(Error::Config(format!(
                "resize `{s}`: expected `stretch` or `crop`"
            ))),
        }
    }
}

/// What a [`FeedbackNet`](crate::FeedbackNet) feeds its network and how it reads the logits,
/// each with where it came from ([`FeedbackNet::model_info`](crate::FeedbackNet::model_info)).
/// Its `Display` is the one-line summary the command line prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The model's file name (`<network>` for a network given to the builder).
    pub model: String,
    /// The preset applied, if any.
    pub preset: Option<&'static str>,
    /// Input size.
    pub input_size: InputSize,
    /// Where the input size came from.
    pub input_size_from: SettingSource,
    /// Pixel normalization.
    pub normalization: Normalization,
    /// Its name (`inception`) or `mean=…,std=…`.
    pub normalize: String,
    /// Where the normalization came from.
    pub normalization_from: SettingSource,
    /// How images are fitted to the input.
    pub resize: ResizeMode,
    /// Where the resize rule came from.
    pub resize_from: SettingSource,
    /// Number of logits.
    pub outputs: usize,
    /// Number of classes (the logits from the offset on).
    pub classes: usize,
    /// Index of class 0 among the logits (1: a background logit first).
    pub class_offset: usize,
    /// Where the class offset came from.
    pub class_offset_from: SettingSource,
    /// Why an inferred offset was chosen (`1001 outputs`).
    pub class_offset_reason: Option<String>,
    /// Where the labels are: a file name, `inline`, `given` or `numbered`.
    pub labels: String,
    /// The label file, if the labels came from one.
    pub labels_path: Option<PathBuf>,
    /// Where the labels came from.
    pub labels_from: SettingSource,
    /// Whether the labels had one line more than the classes, a background line first, which
    /// was skipped.
    pub labels_background_skipped: bool,
    /// The net whose dev-tuned box settings each method uses where none are given
    /// ([`BoxSettings::tuned`](crate::BoxSettings::tuned)): the preset's own, else SqueezeNet
    /// 1.1's.
    pub boxes_tuned_on: &'static str,
    /// Which of the tuned box settings each method starts from
    /// ([`FeedbackNetBuilder::box_priority`](crate::FeedbackNetBuilder::box_priority)).
    pub box_priority: crate::BoxPriority,
    /// Where the ONNX file's net carries gates (`None` for a network of your own).
    pub gate_placement: Option<GatePlacement>,
}

impl fmt::Display for ModelInfo {
    /// `model mobilenet_v1_0.25_128.onnx: input 128x128 (from preset), normalize inception
    /// ([-1,1]) (from preset), resize stretch (default), outputs 1001 (background first: offset
    /// 1, from preset), labels imagenet_labels_1000.txt (from preset)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resize = match self.resize {
            ResizeMode::Stretch => "stretch".to_string(),
            ResizeMode::ResizeCrop { shorter_side } => {
                format!("crop (shorter side {shorter_side})")
            }
        };
        let background = if self.class_offset == 1 {
            "background first: "
        } else {
            ""
        };
        let offset_from = match (&self.class_offset_reason, self.class_offset_from) {
            (Some(reason), SettingSource::Inferred) => format!("inferred from {reason}"),
            (_, from) => from.to_string(),
        };
        let skipped = if self.labels_background_skipped {
            ", background line skipped"
        } else {
            ""
        };
        let heads = match self.gate_placement {
            Some(GatePlacement::AttentionHeads) => ", gates also on attention heads",
            _ => "",
        };
        write!(
            f,
            "model {}: input {} ({}), normalize {} ({}), resize {resize} ({}), outputs {} \
             ({background}offset {}, {offset_from}), classes {}, labels {} ({}{skipped}), \
             box settings tuned on {} ({}){heads}",
            self.model,
            self.input_size,
            self.input_size_from,
            self.normalization.describe(),
            self.normalization_from,
            self.resize_from,
            self.outputs,
            self.class_offset,
            self.classes,
            self.labels,
            self.labels_from,
            self.boxes_tuned_on,
            self.box_priority,
        )
    }
}

/// The `feedbacknet.*` metadata of a model file, read when a setting needs it.
pub(crate) struct Metadata<'a>(pub &'a [(String, String)]);

impl Metadata<'_> {
    /// The last value of `key`.
    fn raw(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed, `None` without it; an error naming the key if it does not
    /// parse.
    pub fn get<T: FromStr>(&self, key: &str) -> Result<Option<T>>
    where
        T::Err: fmt::Display,
    {
        self.raw(key)
            .map(|v| {
                v.parse().map_err(|e: T::Err| Error::Metadata {
                    key: key.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The inline labels: one a line, or a JSON list of strings.
    pub fn labels(&self) -> Result<Option<Labels>> {
        let Some(text) = self.raw(META_LABELS) else {
            return Ok(None);
        };
        let bad = |reason: String| Error::Metadata {
            key: META_LABELS.to_string(),
            reason,
        };
        let labels = if text.trim_start().starts_with('[') {
            let names: Vec<String> =
                serde_json::from_str(text).map_err(|e| bad(format!("not a JSON list: {e}")))?;
            Labels::from(names)
        } else {
            Labels::parse(text)
        };
        if labels.is_empty() {
            return Err(bad("no labels".into()));
        }
        Ok(Some(labels))
    }
}

/// The labels fitted to `classes` classes: as many labels, or one more with a background label
/// first (skipped; the `bool` says so). `origin` names them in the error.
pub(crate) fn fit_labels(
    labels: Labels,
    classes: usize,
    origin: &str,
    outputs: usize,
    offset: usize,
) -> Result<(Labels, bool)> {
    match labels.len() {
        n if n == classes => Ok((labels, false)),
        n if n == classes + 1 => Ok((labels.without_first(), true)),
        n => Err(Error::LabelCount {
            origin: origin.to_string(),
            labels: n,
            classes,
            outputs,
            offset,
        }),
    }
}

/// The class offset when none is given: 1 for 1001 outputs (a background logit first, as the
/// TensorFlow exports have) or for labels one fewer than the outputs, else 0.
pub(crate) fn inferred_offset(outputs: usize, labels: Option<usize>) -> (usize, Option<String>) {
    if outputs == 1001 {
        (1, Some("1001 outputs".into()))
    } else if labels.is_some_and(|n| n + 1 == outputs) {
        (
            1,
            Some(format!("{outputs} outputs and {} labels", outputs - 1)),
        )
    } else {
        (0, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize, background: bool) -> Labels {
        let mut text = String::new();
        if background {
            text.push_str("background\n");
        }
        for i in 0..n {
            text.push_str(&format!("name {i}\n"));
        }
        Labels::parse(&text)
    }

    #[test]
    fn label_files_fit_the_classes_or_have_a_background_line_first() {
        let (labels, skipped) = fit_labels(lines(1000, false), 1000, "a", 1001, 1).unwrap();
        assert_eq!((labels.len(), skipped), (1000, false));
        let (labels, skipped) = fit_labels(lines(1000, true), 1000, "a", 1001, 1).unwrap();
        assert_eq!((labels.len(), skipped), (1000, true));
        assert_eq!(labels.get(0).unwrap().name(), "name 0");
        // 1001 labels for 1001 classes (offset 0 given): all kept.
        let (labels, skipped) = fit_labels(lines(1000, true), 1001, "a", 1001, 0).unwrap();
        assert_eq!((labels.len(), skipped), (1001, false));
        match fit_labels(lines(998, false), 1000, "few.txt", 1000, 0) {
            Err(e @ Error::LabelCount { .. }) => {
                let text = e.to_string();
                assert!(text.contains("998") && text.contains("1000"), "{text}");
                assert!(text.contains("few.txt"), "{text}");
            }
            other => panic!("expected a count mismatch, got {other:?}"),
        }
        assert!(fit_labels(lines(1002, false), 1000, "a", 1000, 0).is_err());
    }

    #[test]
    fn the_offset_is_inferred_from_1001_outputs_or_the_labels() {
        assert_eq!(inferred_offset(1001, None).0, 1);
        assert_eq!(inferred_offset(1001, Some(1001)).0, 1);
        assert_eq!(inferred_offset(1000, None), (0, None));
        assert_eq!(inferred_offset(11, Some(10)).0, 1);
        assert_eq!(inferred_offset(10, Some(10)).0, 0);
    }

    #[test]
    fn metadata_values_parse_or_name_their_key() {
        let props: Vec<(String, String)> = [
            (META_INPUT_SIZE, "96x128"),
            (META_NORMALIZE, "inception"),
            (META_RESIZE, "crop"),
            (META_CLASS_OFFSET, "1"),
            (META_LABELS, "[\"background\", \"tench\", \"goldfish\"]"),
            ("other", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let meta = Metadata(&props);
        assert_eq!(
            meta.get::<InputSize>(META_INPUT_SIZE).unwrap(),
            Some(InputSize::new(96, 128).unwrap())
        );
        assert_eq!(
            meta.get::<Normalization>(META_NORMALIZE).unwrap(),
            Some(Normalization::SYMMETRIC)
        );
        assert_eq!(meta.get::<Resize>(META_RESIZE).unwrap(), Some(Resize::Crop));
        assert_eq!(meta.get::<usize>(META_CLASS_OFFSET).unwrap(), Some(1));
        let labels = meta.labels().unwrap().unwrap();
        assert_eq!(labels.len(), 3);
        assert_eq!(labels.get(2).unwrap().name(), "goldfish");
        assert_eq!(meta.get::<usize>("missing").unwrap(), None);

        let lines = vec![(META_LABELS.to_string(), "tench\n\ngoldfish\n".to_string())];
        assert_eq!(Metadata(&lines).labels().unwrap().unwrap().len(), 2);
        let bad = vec![
            (META_NORMALIZE.to_string(), "bgr".to_string()),
            (META_LABELS.to_string(), "[\"unclosed\"".to_string()),
        ];
        let meta = Metadata(&bad);
        let e = meta.get::<Normalization>(META_NORMALIZE).unwrap_err();
        assert!(e.to_string().contains(META_NORMALIZE), "{e}");
        assert!(matches!(meta.labels(), Err(Error::Metadata { .. })));
    }

    #[test]
    fn resize_rules_parse_and_size_the_crop() {
        assert_eq!("stretch".parse::<Resize>().unwrap(), Resize::Stretch);
        assert_eq!("crop".parse::<Resize>().unwrap(), Resize::Crop);
        assert!("zoom".parse::<Resize>().is_err());
        let size = InputSize::square(128).unwrap();
        assert_eq!(
            Resize::Crop.mode_for(size),
            ResizeMode::ResizeCrop { shorter_side: 147 }
        );
    }
}
