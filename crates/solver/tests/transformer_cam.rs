//! Grad-CAM on a vision transformer: token maps on the patch grid, against PyTorch.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::GatedNetwork;
use feedbacknet_onnx::OnnxNetwork;
use feedbacknet_solver::{CamLayer, SolverConfig, grad_cam, input_gradient, soft_feedback};
use serde_json::Value;

fn fixture(stem: &str) -> (PathBuf, Value) {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/modern"
    ));
    let json = std::fs::read_to_string(dir.join(format!("{stem}.json"))).expect("fixture json");
    (
        dir.join(format!("{stem}.onnx")),
        serde_json::from_str(&json).expect("json"),
    )
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect()
}

/// Pearson correlation of two equally long maps (NaN where undefined).
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    feedbacknet_eval::stability::correlation(a, b).unwrap_or(f64::NAN)
}

#[test]
fn vit_grad_cam_reads_the_last_block_input_on_the_patch_grid_as_pytorch_does() {
    let device = Device::flex();
    for stem in ["vit_op14_sim", "vit_op17_sim"] {
        let (path, json) = fixture(stem);
        let net = OnnxNetwork::load(&path, &device).expect("the ViT loads");
        let input = Tensor::<4>::from_data(
            TensorData::new(floats(&json["input"]), [1, 3, 32, 32]),
            &device,
        );
        let class = json["class"].as_u64().expect("class") as usize;
        let cams = grad_cam(&net, &input, &[class], None, &CamLayer::LastConv).expect("Grad-CAM");
        let map = &cams.maps[0];
        assert_eq!(
            (map.width(), map.height()),
            (4, 4),
            "{stem}: the 4x4 patch grid"
        );
        let expected = floats(&json["grad_cam_last_block"]);
        let r = correlation(map.data(), &expected);
        assert!(
            r >= 0.999,
            "{stem}: r = {r} against PyTorch's token Grad-CAM"
        );
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = map
            .data()
            .iter()
            .zip(&expected)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff <= 1e-3 * scale.max(1e-6), "{stem}: max diff {diff}");
    }
}
#[test]
fn vit_token_gate_sites_are_cam_layers() {
    let device = Device::flex();
    let (path, json) = fixture("vit_op17_sim");
    let net = OnnxNetwork::load(&path, &device).expect("the ViT loads");
    let sites = net.gate_sites([32, 32]).expect("sites");
    let last = sites
        .iter()
        .rposition(|s| s.shape.len() == 2 && s.shape[0] == 17)
        .expect("a gated token activation (the MLP's GELU)");
    let input = Tensor::<4>::from_data(
        TensorData::new(floats(&json["input"]), [1, 3, 32, 32]),
        &device,
    );
    let class = json["class"].as_u64().expect("class") as usize;
    let by_index = grad_cam(&net, &input, &[class], None, &CamLayer::Site(last)).expect("cam");
    let by_name = CamLayer::Named(sites[last].name.clone());
    let named = grad_cam(&net, &input, &[class], None, &by_name).expect("cam by name");
    let map = &by_index.maps[0];
    assert_eq!((map.width(), map.height()), (4, 4));
    assert!(map.data().iter().all(|v| v.is_finite()));
    assert_eq!(map.data(), named.maps[0].data());
}

#[test]
fn soft_feedback_on_transformer_and_convnext_gelu_gates_raises_the_target_logit() {
    let device = Device::flex();
    for stem in ["vit_op17_sim", "convnext_op17"] {
        let (path, json) = fixture(stem);
        let net = OnnxNetwork::load(&path, &device).expect("the net loads");
        let input = Tensor::<4>::from_data(
            TensorData::new(floats(&json["input"]), [1, 3, 32, 32]),
            &device,
        );
        let class = json["class"].as_u64().expect("class") as usize;
        // The paper's logit objective: the logit itself rises.
        let config = SolverConfig::paper().with_iterations(10);
        let solution = soft_feedback(&net, &input, &[class], &config).expect("soft feedback");
        let gated = input_gradient(&net, &input, &[class], Some(&solution.gates)).expect("map");
        let before = solution.trace[0][0];
        assert!(
            gated.scores[0] > before,
            "{stem}: logit {before} -> {} after feedback",
            gated.scores[0]
        );
        let gates: Vec<f32> = solution.gates.to_vecs().expect("gates").concat();
        assert!(gates.iter().all(|g| (0.0..=1.0).contains(g)));
        assert!(gates.iter().any(|&g| g < 1.0), "{stem}: some gates moved");
    }
}
