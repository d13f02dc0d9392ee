//! What a network expects as input.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A preprocessing setting that cannot be used: a `--normalize` string, an input size.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum InputSettingError {
    /// A normalization that is neither a known name nor `mean=R,G,B,std=R,G,B`.
    #[error(
        "normalization `{0}`: expected imagenet, inception, caffe, raw or mean=R,G,B,std=R,G,B"
    )]
    UnknownNormalization(String),
    /// A mean or standard deviation that is not three finite numbers (std positive).
    #[error("normalization `{text}`: {reason}")]
    BadNormalization {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An input size that is neither `N` nor `HxW`.
    #[error("input size `{0}`: expected N or HxW (height x width), e.g. 224 or 224x224")]
    BadSize(String),
    /// An input size with a zero side.
    #[error("input size {height}x{width}: both sides must be positive")]
    ZeroSize {
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
    /// An input size with a side over [`InputSize::MAX_SIDE`].
    #[error(
        "input size {height}x{width}: a side over {max} pixels is refused (the first layers' \
         activations alone would take gigabytes; classifiers see a resized image)",
        max = InputSize::MAX_SIDE
    )]
    TooLarge {
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
}

/// Per-channel normalization of 8-bit RGB pixels: `(p / 255 - mean[c]) / std[c]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Channel means on the `[0, 1]` scale (R, G, B).
    pub mean: [f32; 3],
    /// Channel standard deviations on the `[0, 1]` scale (R, G, B).
    pub std: [f32; 3],
}

impl Normalization {
    /// The torchvision ImageNet statistics (mean 0.485/0.456/0.406, std 0.229/0.224/0.225).
    pub const IMAGENET: Self = Self {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// `p / 127.5 - 1`, the TensorFlow "inception" scaling to `[-1, 1]`.
    pub const SYMMETRIC: Self = Self {
        mean: [0.5; 3],
        std: [0.5; 3],
    };

    /// `p / 255`: the pixels on `[0, 1]`, nothing subtracted (`raw`).
    pub const RAW: Self = Self {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// `p - 255 * mean_imagenet`: 0..255 pixels minus the ImageNet means (123.68, 116.78,
    /// 103.94), not scaled (`caffe`). The channels stay in RGB order: [`Normalization`] cannot
    /// reorder channels, so a net trained on BGR input needs its first layer's channels
    /// swapped before export.
    pub const CAFFE: Self = Self {
        mean: [0.485, 0.456, 0.406],
        std: [1.0 / 255.0; 3],
    };

    /// The named normalizations, as `--normalize` and the `feedbacknet.normalize` metadata key
    /// accept them, with what each does.
    pub const NAMED: [(&'static str, Self, &'static str); 4] = [
        ("imagenet", Self::IMAGENET, "ImageNet mean/std"),
        ("inception", Self::SYMMETRIC, "[-1,1]"),
        ("caffe", Self::CAFFE, "0..255 minus ImageNet means, RGB"),
        ("raw", Self::RAW, "[0,1]"),
    ];

    /// Creates a normalization from means and standard deviations on the `[0, 1]` scale.
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        Self { mean, std }
    }

    /// The name of this normalization if it is one of [`Normalization::NAMED`].
    pub fn name(&self) -> Option<&'static str> {
        Self::NAMED
            .iter()
            .find(|(_, n, _)| n == self)
            .map(|(name, _, _)| *name)
    }

    /// A short description: `inception ([-1,1])`, or `mean=…,std=…` for an unnamed one.
    pub fn describe(&self) -> String {
        match Self::NAMED.iter().find(|(_, n, _)| n == self) {
            Some((name, _, what)) => format!("{name} ({what})"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for Normalization {
    /// The name (`imagenet`), else `mean=R,G,B,std=R,G,B`; [`FromStr`] reads either back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            return f.write_str(name);
        }
        let [m0, m1, m2] = self.mean;
        let [s0, s1, s2] = self.std;
        write!(f, "mean={m0},{m1},{m2},std={s0},{s1},{s2}")
    }
}

impl FromStr for Normalization {
    type Err = InputSettingError;

    /// `imagenet`, `inception` (also `symmetric`, `tf`), `caffe`, `raw`, or
    /// `mean=R,G,B,std=R,G,B` on the `[0, 1]` scale (a single number stands for all three
    /// channels: `mean=0.5,std=0.5`).
    ///
    /// ```
    /// use feedbacknet_core::Normalization;
    /// assert_eq!("inception".parse::<Normalization>()?, Normalization::SYMMETRIC);
    /// let n: Normalization = "mean=0.5,0.5,0.5,std=0.25,0.25,0.25".parse()?;
    /// assert_eq!(n, Normalization::new([0.5; 3], [0.25; 3]));
    /// assert!("bgr".parse::<Normalization>().is_err());
    /// # Ok::<(), feedbacknet_core::InputSettingError>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "imagenet" | "torchvision" => return Ok(Self::IMAGENET),
            "inception" | "symmetric" | "tf" | "tensorflow" => return Ok(Self::SYMMETRIC),
            "caffe" => return Ok(Self::CAFFE),
            "raw" | "unit" => return Ok(Self::RAW),
            _ => {}
        }
        let Some(rest) = lower.strip_prefix("mean=") else {
            return Err(InputSettingError::UnknownNormalization(text.to_string()));
        };
        let bad = |reason: &str| InputSettingError::BadNormalization {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (mean, std) = rest
            .split_once("std=")
            .ok_or_else(|| bad("no `std=` after the means"))?;
        let mean = channels(mean.trim_end_matches([',', ' ', ';'])).map_err(|r| bad(&r))?;
        let std = channels(std).map_err(|r| bad(&r))?;
        if std.iter().any(|&s| s <= 0.0) {
            return Err(bad("every std must be positive"));
        }
        Ok(Self { mean, std })
    }
}

/// One number for all three channels, or three.
fn channels(text: &str) -> Result<[f32; 3], String> {
    let values = text
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{}` is not a finite number", v.trim()))
        })
        .collect::<Result<Vec<f32>, String>>()?;
    match values[..] {
        [v] => Ok([v; 3]),
        [r, g, b] => Ok([r, g, b]),
        _ => Err(format!(
            "{} values where 1 or 3 were expected",
            values.len()
        )),
    }
}

/// A network input size in pixels; `--input-size` and the `feedbacknet.input_size` metadata key
/// read `N` (square) or `HxW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSize {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl InputSize {
    /// The largest side accepted: 4096 pixels. A VGG-16's first activation at 4096 x 4096 is
    /// already 4 GiB; a larger input would exhaust memory (an abort, not an error) before any
    /// result.
    pub const MAX_SIDE: usize = 4096;

    /// A size of `height` x `width`; an error if a side is 0 or over [`Self::MAX_SIDE`].
    pub fn new(height: usize, width: usize) -> Result<Self, InputSettingError> {
        if height == 0 || width == 0 {
            return Err(InputSettingError::ZeroSize { height, width });
        }
        if height > Self::MAX_SIDE || width > Self::MAX_SIDE {
            return Err(InputSettingError::TooLarge { height, width });
        }
        Ok(Self { height, width })
    }

    /// A square size; an error if it is 0.
    pub fn square(side: usize) -> Result<Self, InputSettingError> {
        Self::new(side, side)
    }
}

impl fmt::Display for InputSize {
    /// `HxW`, e.g. `224x224`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

impl FromStr for InputSize {
    type Err = InputSettingError;

    /// `N` (N x N) or `HxW` (also `H,W`).
    ///
    /// ```
    /// use feedbacknet_core::InputSize;
    /// assert_eq!("128".parse::<InputSize>()?, InputSize::square(128)?);
    /// assert_eq!("96x128".parse::<InputSize>()?, InputSize::new(96, 128)?);
    /// assert!("0".parse::<InputSize>().is_err());
    /// assert!("100000".parse::<InputSize>().is_err());
    /// # Ok::<(), feedbacknet_core::InputSettingError>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let bad = || InputSettingError::BadSize(text.to_string());
        let number = |v: &str| v.trim().parse::<usize>().map_err(|_| bad());
        match text.split_once(['x', 'X', ',', '*']) {
            Some((h, w)) => Self::new(number(h)?, number(w)?),
            None => Self::square(number(text)?),
        }
    }
}

impl Normalization {
    /// Converts interleaved 8-bit RGB pixels (`width * height * 3` bytes) into a normalized
    /// planar `[3, height, width]` buffer.
    pub fn planar_from_rgb(&self, rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
        let plane = width * height;
        let mut out = Vec::with_capacity(3 * plane);
        for (c, (mean, std)) in self.mean.iter().zip(&self.std).enumerate() {
            let start = out.len();
            let channel = rgb.chunks_exact(3).take(plane).filter_map(|px| px.get(c));
            out.extend(channel.map(|&v| (f32::from(v) / 255.0 - mean) / std));
            // A short buffer leaves the rest of the plane at zero.
            out.resize(start + plane, 0.0);
        }
        out
    }
}

/// The input a network expects: `[batch, channels, height, width]`, normalized RGB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Number of input channels (3 for RGB).
    pub channels: usize,
    /// Input height in pixels.
    pub height: usize,
    /// Input width in pixels.
    pub width: usize,
    /// Pixel normalization.
    pub normalization: Normalization,
}

impl InputSpec {
    /// The input size.
    pub fn size(&self) -> InputSize {
        InputSize {
            height: self.height,
            width: self.width,
        }
    }

    /// An RGB input of the given size.
    pub fn rgb(width: usize, height: usize, normalization: Normalization) -> Self {
        Self {
            channels: 3,
            height,
            width,
            normalization,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_over_the_largest_side_are_refused() {
        let max = InputSize::MAX_SIDE;
        assert!(InputSize::new(max, max).is_ok());
        let err = InputSize::new(max + 1, 8).unwrap_err();
        assert_eq!(
            err,
            InputSettingError::TooLarge {
                height: max + 1,
                width: 8
            }
        );
        assert!(matches!(
            "100000".parse::<InputSize>(),
            Err(InputSettingError::TooLarge { .. })
        ));
    }

    #[test]
    fn planar_layout_and_values() {
        let rgb = [255u8, 0, 0, 0, 255, 127];
        let out = Normalization::SYMMETRIC.planar_from_rgb(&rgb, 2, 1);
        assert_eq!(out.len(), 6);
        assert!((out[0] - 1.0).abs() < 1e-6); // R of pixel 0
        assert!((out[1] + 1.0).abs() < 1e-6); // R of pixel 1
        assert!((out[2] + 1.0).abs() < 1e-6); // G of pixel 0
        assert!((out[5] - (127.0 / 127.5 - 1.0)).abs() < 1e-6); // B of pixel 1
    }

    #[test]
    fn every_normalization_form_parses() {
        let parse = |s: &str| s.parse::<Normalization>();
        assert_eq!(parse("imagenet"), Ok(Normalization::IMAGENET));
        assert_eq!(parse(" Inception "), Ok(Normalization::SYMMETRIC));
        assert_eq!(parse("caffe"), Ok(Normalization::CAFFE));
        assert_eq!(parse("raw"), Ok(Normalization::RAW));
        assert_eq!(
            parse("mean=0.1,0.2,0.3,std=0.4,0.5,0.6"),
            Ok(Normalization::new([0.1, 0.2, 0.3], [0.4, 0.5, 0.6]))
        );
        assert_eq!(
            parse("mean=0.5,std=0.5"),
            Ok(Normalization::SYMMETRIC),
            "one value for all channels"
        );
        // Each named one and a custom one read back from their display.
        for n in Normalization::NAMED
            .iter()
            .map(|(_, n, _)| *n)
            .chain([Normalization::new([127.0 / 255.0; 3], [128.0 / 255.0; 3])])
        {
            assert_eq!(parse(&n.to_string()), Ok(n));
        }
        // What each name does to 0..255 pixels.
        let px = |n: Normalization, p: u8| n.planar_from_rgb(&[p, p, p], 1, 1)[0];
        assert!((px(Normalization::SYMMETRIC, 0) + 1.0).abs() < 1e-6);
        assert!((px(Normalization::RAW, 255) - 1.0).abs() < 1e-6);
        assert!((px(Normalization::CAFFE, 255) - (255.0 - 123.675)).abs() < 1e-3);
    }

    #[test]
    fn bad_normalizations_are_typed_errors() {
        let parse = |s: &str| s.parse::<Normalization>();
        assert_eq!(
            parse("bgr"),
            Err(InputSettingError::UnknownNormalization("bgr".into()))
        );
        for bad in [
            "mean=0.5,0.5,0.5",
            "mean=0.5,0.5,std=0.5",
            "mean=a,std=1",
            "mean=0,std=0",
            "mean=0,std=-1",
            "mean=nan,std=1",
            "mean=0,std=1,2,3,4",
        ] {
            assert!(
                matches!(parse(bad), Err(InputSettingError::BadNormalization { .. })),
                "{bad}: {:?}",
                parse(bad)
            );
        }
        assert!(parse("bgr").unwrap_err().to_string().contains("inception"));
    }

    #[test]
    fn input_sizes_parse_as_n_or_h_by_w() {
        let parse = |s: &str| s.parse::<InputSize>();
        assert_eq!(parse("128"), Ok(InputSize::new(128, 128).unwrap()));
        assert_eq!(parse("96x128"), Ok(InputSize::new(96, 128).unwrap()));
        assert_eq!(parse("96X128").map(|s| s.to_string()), Ok("96x128".into()));
        assert_eq!(
            parse("0"),
            Err(InputSettingError::ZeroSize {
                height: 0,
                width: 0
            })
        );
        assert!(matches!(
            parse("224x0"),
            Err(InputSettingError::ZeroSize { .. })
        ));
        for bad in ["", "big", "-3", "224x", "2.5", "1x2x3"] {
            assert_eq!(
                parse(bad),
                Err(InputSettingError::BadSize(bad.into())),
                "{bad}"
            );
        }
    }
}
