//! Helpers shared by this crate's integration tests (real models and images from ../shared).
#![allow(dead_code)] // each test binary uses a different subset

pub mod graph;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::Normalization;

/// `../shared` beside the repository, or `FEEDBACKNET_SHARED`.
pub fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

pub fn model(file: &str) -> PathBuf {
    shared().join("models").join(file)
}

/// Decodes an image and centre-crops `size`x`size` pixels without resampling; also returns
/// the sum of the crop's bytes.
pub fn center_crop_rgb(path: &str, size: u32) -> (Vec<u8>, u64) {
    let img = image::open(shared().join(path))
        .expect("shared image")
        .to_rgb8();
    let (left, top) = ((img.width() - size) / 2, (img.height() - size) / 2);
    let crop = image::imageops::crop_imm(&img, left, top, size, size).to_image();
    let pixel_sum = crop.as_raw().iter().map(|&v| v as u64).sum();
    (crop.into_raw(), pixel_sum)
}

/// A `[1, 3, size, size]` normalized input.
pub fn input(rgb: &[u8], size: usize, norm: &Normalization, device: &Device) -> Tensor<4> {
    let planar = norm.planar_from_rgb(rgb, size, size);
    Tensor::from_data(TensorData::new(planar, [1, 3, size, size]), device)
}
