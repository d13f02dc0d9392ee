//! The interpreter against onnxruntime (fixture made by scripts/onnxruntime_reference.py).

mod common;

use burn::tensor::{Device, Tensor};
use feedbacknet_core::GatedNetwork;
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use serde_json::Value;

const TOLERANCE: f32 = 1e-3;

fn fixture() -> Value {
    let text = include_str!("../../../tests/fixtures/onnxruntime_reference.json");
    serde_json::from_str(text).expect("fixture is JSON")
}

fn logits_of(net: &OnnxNetwork, input: Tensor<4>) -> Vec<f32> {
    net.forward(input, None)
        .expect("forward")
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("readback")
}

#[test]
fn top5_logits_match_onnxruntime_on_every_shared_net() {
    let device = Device::flex();
    let cases = fixture()["cases"].as_array().expect("cases").clone();
    assert_eq!(cases.len(), 8, "4 nets x 2 images");
    let mut worst = 0.0f32;
    for case in cases {
        let file = case["model"].as_str().unwrap();
        let preset = ModelPreset::find(file).expect("preset for every shared net");
        let net = OnnxNetwork::load(common::model(file), &device)
            .expect("load")
            .with_input_spec(preset.input_spec());
        let size = case["input_size"].as_u64().unwrap() as usize;
        assert_eq!(size, preset.input_size);
        let (rgb, pixel_sum) =
            common::center_crop_rgb(case["image"].as_str().unwrap(), size as u32);
        assert_eq!(
            pixel_sum,
            case["crop_pixel_sum"].as_u64().unwrap(),
            "not the pixels the fixture was made from"
        );
        let logits = logits_of(
            &net,
            common::input(&rgb, size, &preset.normalization, &device),
        );
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let expected: Vec<usize> = case["top5_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            &order[..5],
            &expected[..],
            "{file} top-5 on {}",
            case["image"]
        );
        for (i, want) in expected.iter().zip(case["top5_logits"].as_array().unwrap()) {
            let want = want.as_f64().unwrap() as f32;
            worst = worst.max((logits[*i] - want).abs());
            assert!(
                (logits[*i] - want).abs() <= TOLERANCE,
                "{file}: logit {i} is {} (onnxruntime {want})",
                logits[*i]
            );
        }
    }
    eprintln!("largest top-5 logit difference from onnxruntime: {worst:.2e}");
}

#[test]
fn a_batch_of_four_equals_four_singles() {
    let device = Device::flex();
    let preset = ModelPreset::find("efficientnet_lite0").unwrap();
    // EfficientNet-Lite0 bakes batch 1 into a Reshape: the hardest case for batching.
    let net = OnnxNetwork::load(common::model(preset.file), &device)
        .unwrap()
        .with_input_spec(preset.input_spec());
    let images = [
        "data/demo/gradcam_both.png",
        "data/imagenet-val/images/ILSVRC2012_val_00000361.JPEG",
        "data/imagenet-val/images/ILSVRC2012_val_00000560.JPEG",
        "data/demo/darknet_dog.jpg",
    ];
    let singles: Vec<Tensor<4>> = images
        .iter()
        .map(|p| {
            let (rgb, _) = common::center_crop_rgb(p, 224);
            common::input(&rgb, 224, &preset.normalization, &device)
        })
        .collect();
    let batched = logits_of(&net, Tensor::cat(singles.clone(), 0));
    assert_eq!(batched.len(), 4 * net.num_outputs());
    for (i, single) in singles.into_iter().enumerate() {
        let alone = logits_of(&net, single);
        let row = &batched[i * alone.len()..(i + 1) * alone.len()];
        let worst = row
            .iter()
            .zip(&alone)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "image {i}: batched logits differ by {worst}");
    }
}
