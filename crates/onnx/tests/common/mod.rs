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

/// The largest difference, over every site, between the gates of one solver step fused into
/// the reverse pass (`step_gates`) and of the same step taken on the gate gradients
/// (`step_by_gradients`), from `gates` at rest, every site moving (lr 0.1, momentum 0.9,
/// λ 0.01). The sites' gate shapes must agree too.
pub fn fused_step_difference(
    net: &dyn feedbacknet_core::GatedNetwork,
    x: &Tensor<4>,
    gates: &feedbacknet_core::GateSet,
    seed: &dyn Fn(&Tensor<2>) -> feedbacknet_core::Result<Tensor<2>>,
) -> f32 {
    use feedbacknet_core::{GateState, KinkDerivative, MomentumStep, Seed, step_by_gradients};
    let step = MomentumStep {
        learning_rate: 0.1,
        momentum: 0.9,
        lambda: 0.01,
        kinks: KinkDerivative::Exact,
    };
    let moving = vec![true; gates.len()];
    let state = || GateState::at_rest(gates.clone());
    let fused = net
        .step_gates(x.clone(), state(), &moving, &step, Seed::new(seed))
        .expect("the fused step");
    let apart = step_by_gradients(net, x.clone(), state(), &moving, &step, Seed::new(seed))
        .expect("the step on the gradients");
    let pairs = fused
        .state
        .gates
        .values()
        .iter()
        .zip(apart.state.gates.values());
    pairs
        .map(|(a, b)| {
            assert_eq!(a.dims(), b.dims(), "a site's gate shape");
            let (a, b): (Vec<f32>, Vec<f32>) = (
                a.clone().into_data().try_into_vec_as().expect("f32"),
                b.clone().into_data().try_into_vec_as().expect("f32"),
            );
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

/// The values of a tensor, flat.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// The largest absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Pearson correlation of two equally long maps (NaN where undefined).
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    feedbacknet_eval::stability::correlation(a, b).unwrap_or(f64::NAN)
}
