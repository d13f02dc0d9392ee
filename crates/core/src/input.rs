//! What a network expects as input.

use serde::{Deserialize, Serialize};

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

    /// Creates a normalization from means and standard deviations on the `[0, 1]` scale.
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        Self { mean, std }
    }

    /// Converts interleaved 8-bit RGB pixels (`width * height * 3` bytes) into a normalized
    /// planar `[3, height, width]` buffer.
    pub fn planar_from_rgb(&self, rgb: &[u8], width: usize, height: usize) -> Vec<f32> {
        let plane = width * height;
        let mut out = vec![0.0f32; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).take(plane).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = (px[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
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
    fn planar_layout_and_values() {
        let rgb = [255u8, 0, 0, 0, 255, 127];
        let out = Normalization::SYMMETRIC.planar_from_rgb(&rgb, 2, 1);
        assert_eq!(out.len(), 6);
        assert!((out[0] - 1.0).abs() < 1e-6); // R of pixel 0
        assert!((out[1] + 1.0).abs() < 1e-6); // R of pixel 1
        assert!((out[2] + 1.0).abs() < 1e-6); // G of pixel 0
        assert!((out[5] - (127.0 / 127.5 - 1.0)).abs() < 1e-6); // B of pixel 1
    }
}
