//! The hard (binary-gate) solver on a real net and photo.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::GatedNetwork;
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use feedbacknet_solver::{HardConfig, hard_feedback, input_gradient};

fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn squeezenet_and_photo(batch: usize) -> (OnnxNetwork, Tensor<4>) {
    let device = Device::flex();
    let preset = ModelPreset::default_model();
    let net = OnnxNetwork::load(shared().join("models").join(preset.file), &device)
        .unwrap()
        .with_input_spec(preset.input_spec());
    let img = image::open(shared().join("data/demo/gradcam_both.png"))
        .unwrap()
        .to_rgb8();
    let planar = preset.normalization.planar_from_rgb(img.as_raw(), 224, 224);
    let planar: Vec<f32> = (0..batch).flat_map(|_| planar.iter().copied()).collect();
    let input = Tensor::from_data(TensorData::new(planar, [batch, 3, 224, 224]), &device);
    (net, input)
}

const BULL_MASTIFF: usize = 243;
const TIGER_CAT: usize = 282;

#[test]
fn explore() {
    let (net, input) = squeezenet_and_photo(2);
    let targets = [BULL_MASTIFF, TIGER_CAT];
    for (ratio, sweeps, patience) in [(1.0, 50, 2), (1.0, 50, 3), (0.0, 50, 2), (1.0, 5, 2), (0.0, 5, 2), (2.0, 50, 2), (0.5, 50, 2), (1.0, 5, 0)] {
        let t = Instant::now();
        let config = HardConfig::default().with_ratio(ratio).with_max_sweeps(sweeps).with_patience(patience);
        let s = hard_feedback(&net, &input, &targets, &config).unwrap();
        let dt = t.elapsed();
        let gated = input_gradient(&net, &input, &targets, Some(&s.gates)).unwrap();
        let mut closed = [0usize; 2];
        let mut total = 0;
        for (site, v) in s.gates.sites().iter().zip(s.gates.to_vecs().unwrap()) {
            let n = site.gate_count(s.gates.granularity());
            total += n;
            for b in 0..2 {
                closed[b] += v[b * n..(b + 1) * n].iter().filter(|&&g| g == 0.0).count();
            }
        }
        eprintln!(
            "ratio {ratio} max {sweeps} patience {patience}: {:?} iters {} conv {} gated {:?} closed {:?}/{total} {:.2?}",
            s.trace, s.iterations, s.converged, gated.scores, closed, dt
        );
    }
}
