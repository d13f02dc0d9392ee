//! ONNX `Attention` with a boolean mask (`tests/fixtures/modern/attention_bool_mask_op23`, built
//! with `onnx.helper` by `scripts/make_fixtures.py`): one query of its 16 has no key at all.
//! The logits against onnxruntime's, and the input gradient, finite, against central
//! differences.

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::{ActivationRule, BackwardTarget, DynTensor, GatedNetwork};
use feedbacknet_onnx::OnnxNetwork;
use serde_json::Value;

mod common;

use common::graph::fixture_dir;

const SHAPE: [usize; 4] = [1, 3, 4, 4];

fn floats(v: &Value) -> Vec<f32> {
    let values = v.as_array().expect("an array");
    values.iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn logits(net: &OnnxNetwork, input: &[f32], device: &Device) -> Vec<f32> {
    let x = Tensor::<4>::from_data(TensorData::new(input.to_vec(), SHAPE), device);
    let y = net.forward(x, None).expect("forward");
    y.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn a_boolean_mask_matches_onnxruntime_and_its_gradient_is_finite() {
    let device = Device::flex();
    let dir = fixture_dir();
    let net = OnnxNetwork::load(dir.join("attention_bool_mask_op23.onnx"), &device).expect("loads");
    let text = std::fs::read_to_string(dir.join("attention_bool_mask_op23.json")).expect("json");
    let json: Value = serde_json::from_str(&text).expect("valid json");
    let (input, expected) = (floats(&json["input"]), floats(&json["logits"]));
    let ours = logits(&net, &input, &device);
    let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = (ours.iter().zip(&expected)).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-5 * scale,
        "logits differ from onnxruntime's by {diff}"
    );
    // d logit 0 / d input, by the reverse pass and by central differences.
    let x = Tensor::<4>::from_data(TensorData::new(input.clone(), SHAPE), &device);
    let mut seed = vec![0.0; expected.len()];
    seed[0] = 1.0;
    let seed = Tensor::from_data(TensorData::new(seed, [1, expected.len()]), &device);
    let out = net
        .backward(
            x,
            None,
            seed,
            ActivationRule::Gradient,
            BackwardTarget::Input,
        )
        .expect("backward");
    let gradient = DynTensor::to_vec(&out.gradient).expect("gradient");
    assert!(gradient.iter().all(|g| g.is_finite()), "{gradient:?}");
    let h = 1e-2;
    let numeric: Vec<f32> = (0..input.len())
        .map(|i| {
            let moved = |by: f32| {
                let mut x = input.clone();
                x[i] += by;
                logits(&net, &x, &device)[0]
            };
            (moved(h) - moved(-h)) / (2.0 * h)
        })
        .collect();
    let scale = numeric.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = (gradient.iter().zip(&numeric)).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        scale > 0.0 && diff <= 1e-2 * scale,
        "gradient: {diff} of {scale}"
    );
}
