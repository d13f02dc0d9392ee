//! Class model visualization (Simonyan et al. 2014) on a real net.

use std::path::PathBuf;

use burn::tensor::Device;
use feedbacknet_core::GatedNetwork;
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use feedbacknet_solver::{SolverError, VisualizeConfig, visualize_class, visualize_class_on};

fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn squeezenet() -> OnnxNetwork {
    let preset = ModelPreset::default_model();
    OnnxNetwork::load(shared().join("models").join(preset.file), &Device::flex())
        .unwrap()
        .with_input_spec(preset.input_spec())
}

const FLAMINGO: usize = 130;
const STRAWBERRY: usize = 949;

fn values(t: &burn::tensor::Tensor<4>) -> Vec<f32> {
    t.clone().into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn ascent_raises_the_class_logit_within_valid_pixels() {
    let net = squeezenet();
    let config = VisualizeConfig::default().with_steps(40);
    let vis = visualize_class_on(&net, STRAWBERRY, &config, &Device::flex()).unwrap();
    assert_eq!(vis.trace.len(), 40);
    assert_eq!(vis.trace[0], vis.logit_start);
    // Measured: 3.5 at the mean image, about 95 after 40 steps.
    assert!(vis.logit_start.abs() < 10.0, "start {}", vis.logit_start);
    assert!(
        vis.logit_end > vis.logit_start + 40.0,
        "logit {} -> {}",
        vis.logit_start,
        vis.logit_end
    );
    let spec = net.input_spec();
    let (plane, norm) = (spec.width * spec.height, spec.normalization);
    let pixels = values(&vis.image);
    assert_eq!(pixels.len(), 3 * plane);
    for (i, &v) in pixels.iter().enumerate() {
        let c = i / plane;
        let (lo, hi) = (
            -norm.mean[c] / norm.std[c],
            (1.0 - norm.mean[c]) / norm.std[c],
        );
        assert!(
            v.is_finite() && v >= lo - 1e-5 && v <= hi + 1e-5,
            "pixel {i} = {v}"
        );
    }
    // The image left the mean: some pixels moved by a visible amount.
    assert!(pixels.iter().any(|v| v.abs() > 0.5));
    let (w, h, rgb) = vis.to_rgb8().unwrap();
    assert_eq!((w, h), (spec.width, spec.height));
    assert_eq!(rgb.len(), w * h * 3);
    assert!(rgb.iter().any(|&p| p != rgb[0]), "a flat image");
}

#[test]
fn a_dead_class_needs_initial_noise() {
    let net = squeezenet();
    // SqueezeNet's final ReLU makes the flamingo logit exactly 0 (zero gradient) at the mean
    // image: the ascent cannot start.
    let config = VisualizeConfig::default().with_steps(3);
    let dead = visualize_class(&net, FLAMINGO, &config).unwrap();
    assert_eq!((dead.logit_start, dead.logit_end), (0.0, 0.0));
    // A little noise gets it going. Measured: 2.1 -> 150 in 30 steps.
    let config = VisualizeConfig::default()
        .with_steps(30)
        .with_init_noise(0.1);
    let vis = visualize_class(&net, FLAMINGO, &config).unwrap();
    assert!(vis.logit_end > vis.logit_start + 40.0, "{:?}", vis.trace);
}

#[test]
fn equal_seeds_give_equal_images() {
    let net = squeezenet();
    let config = VisualizeConfig::default().with_steps(6).with_blur(3, 0.5);
    let a = visualize_class(&net, STRAWBERRY, &config).unwrap();
    let b = visualize_class(&net, STRAWBERRY, &config).unwrap();
    let c = visualize_class(&net, STRAWBERRY, &config.clone().with_seed(1)).unwrap();
    assert_eq!(values(&a.image), values(&b.image));
    assert_eq!(a.trace, b.trace);
    assert_ne!(
        values(&a.image),
        values(&c.image),
        "the seed changes the jitter"
    );
}

/// Mean absolute difference between horizontally adjacent values.
fn roughness(pixels: &[f32], width: usize) -> f32 {
    let diffs: Vec<f32> = pixels
        .chunks_exact(width)
        .flat_map(|row| row.windows(2).map(|p| (p[1] - p[0]).abs()))
        .collect();
    diffs.iter().sum::<f32>() / diffs.len() as f32
}

#[test]
fn blurring_smooths_the_image() {
    let net = squeezenet();
    let sharp = VisualizeConfig::default().with_steps(5).with_blur(0, 0.0);
    let smooth = sharp.clone().with_blur(1, 1.0);
    let sharp = values(&visualize_class(&net, STRAWBERRY, &sharp).unwrap().image);
    let smooth = values(&visualize_class(&net, STRAWBERRY, &smooth).unwrap().image);
    let (rs, rb) = (roughness(&sharp, 224), roughness(&smooth, 224));
    assert!(rb < 0.7 * rs, "roughness {rs} without blur, {rb} with");
}

#[test]
fn invalid_settings_and_classes_are_typed_errors() {
    let net = squeezenet();
    let bad = [
        (VisualizeConfig::default().with_steps(0), "steps"),
        (
            VisualizeConfig::default().with_learning_rate(0.0),
            "learning_rate",
        ),
        (VisualizeConfig::default().with_l2(f32::NAN), "l2"),
        (VisualizeConfig::default().with_blur(10, -1.0), "blur_sigma"),
        (
            VisualizeConfig::default().with_init_noise(f32::INFINITY),
            "init_noise",
        ),
    ];
    for (config, setting) in bad {
        match visualize_class(&net, STRAWBERRY, &config) {
            Err(SolverError::InvalidConfig { name, .. }) => assert_eq!(name, setting),
            other => panic!("{config:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    assert!(matches!(
        visualize_class(&net, 1000, &VisualizeConfig::default()),
        Err(SolverError::ClassOutOfRange { class: 1000, .. })
    ));
}
