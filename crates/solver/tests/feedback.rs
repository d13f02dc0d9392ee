//! The soft solver and gradient saliency on a real net and photo.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::{GateGranularity, GateSet, GatedNetwork, KinkDerivative};
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use feedbacknet_solver::{
    CamLayer, Objective, Schedule, SolverConfig, gated_energy, input_gradient, saliency_maps,
    soft_feedback,
};

fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// SqueezeNet 1.1 and `gradcam_both.png` (224x224: a bulldog above, a tabby cat below).
fn squeezenet_and_photo() -> (OnnxNetwork, Tensor<4>) {
    let device = Device::flex();
    let preset = ModelPreset::default_model();
    let net = OnnxNetwork::load(shared().join("models").join(preset.file), &device)
        .unwrap()
        .with_input_spec(preset.input_spec());
    let img = image::open(shared().join("data/demo/gradcam_both.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(img.dimensions(), (224, 224));
    let planar = preset.normalization.planar_from_rgb(img.as_raw(), 224, 224);
    let input = Tensor::from_data(TensorData::new(planar, [1, 3, 224, 224]), &device);
    (net, input)
}

const BULL_MASTIFF: usize = 243;
const TIGER_CAT: usize = 282;

#[test]
fn feedback_raises_the_target_logit_and_keeps_gates_in_the_unit_interval() {
    let (net, input) = squeezenet_and_photo();
    // The paper's objective: maximize the logit itself.
    let config = SolverConfig::paper().with_iterations(10);
    assert_eq!(config.objective, Objective::Logit);
    let solution = soft_feedback(&net, &input, &[BULL_MASTIFF], &config).unwrap();
    assert_eq!(solution.trace.len(), solution.iterations);
    let gated = input_gradient(&net, &input, &[BULL_MASTIFF], Some(&solution.gates)).unwrap();
    let before = solution.trace[0][0];
    assert!(
        gated.scores[0] > before + 1.0,
        "logit {before} -> {} after feedback",
        gated.scores[0]
    );
    let mut closed = 0usize;
    let mut total = 0usize;
    for site in solution.gates.to_vecs().unwrap() {
        for g in site {
            assert!((0.0..=1.0).contains(&g), "gate {g} outside [0, 1]");
            closed += usize::from(g < 1.0);
            total += 1;
        }
    }
    assert!(
        closed > 0 && closed < total,
        "{closed} of {total} gates moved"
    );
    assert_eq!(
        net.gate_sites([224, 224]).unwrap().len(),
        solution.gates.len()
    );
}

#[test]
fn log_softmax_objective_raises_the_class_probability() {
    let (net, input) = squeezenet_and_photo();
    // The default objective.
    let config = SolverConfig::default().with_iterations(10);
    assert_eq!(config.objective, Objective::LogSoftmax);
    let plain = net.forward(input.clone(), None).unwrap();
    let solution = soft_feedback(&net, &input, &[BULL_MASTIFF], &config).unwrap();
    let gated = net.forward(input, Some(&solution.gates)).unwrap();
    let log_prob = |logits: Tensor<2>| {
        let v = burn::tensor::activation::log_softmax(logits, 1)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        v[BULL_MASTIFF]
    };
    let (before, after) = (log_prob(plain), log_prob(gated));
    assert!(after > before + 0.5, "log p: {before} -> {after}");
}

/// `target − strongest other logit` of one sample's logits.
fn margin(logits: Tensor<2>, target: usize) -> f32 {
    let z = logits.into_data().try_into_vec_as::<f32>().unwrap();
    let rival = z
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != target)
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    z[target] - rival
}

#[test]
fn contrastive_objectives_raise_the_lead_over_the_other_classes() {
    let (net, input) = squeezenet_and_photo();
    let plain = net.forward(input.clone(), None).unwrap();
    // The tiger cat is not the top class of this photo: its margin starts negative.
    let before = margin(plain, TIGER_CAT);
    for objective in [Objective::Margin, Objective::ContrastMean] {
        let config = SolverConfig::default()
            .with_objective(objective)
            .with_iterations(8);
        let solution = soft_feedback(&net, &input, &[TIGER_CAT], &config).unwrap();
        let after = margin(
            net.forward(input.clone(), Some(&solution.gates)).unwrap(),
            TIGER_CAT,
        );
        assert!(
            after > before + 1.0,
            "{objective}: margin {before} -> {after}"
        );
    }
}

/// Pearson correlation of two maps.
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    feedbacknet_eval::stability::correlation(a, b).unwrap_or(f64::NAN)
}

/// A shared net's soft-feedback map of a dev image (resized to the net's input, class `class`)
/// under each solver setting: per setting, the map of the clean input and of the input with
/// ±1e-6 added.
fn maps_under_input_noise(
    model: &str,
    image: &str,
    class: usize,
    configs: &[SolverConfig],
) -> Vec<(Vec<f32>, Vec<f32>)> {
    let device = Device::flex();
    let preset = ModelPreset::find(model).unwrap();
    let spec = preset.input_spec();
    let (width, height) = (spec.width, spec.height);
    let net = OnnxNetwork::load(shared().join("models").join(preset.file), &device)
        .unwrap()
        .with_input_spec(spec);
    let photo = shared().join("data/imagenet-val/images").join(image);
    let rgb = image::open(photo)
        .unwrap()
        .resize_exact(
            width as u32,
            height as u32,
            image::imageops::FilterType::Triangle,
        )
        .to_rgb8();
    let clean = preset
        .normalization
        .planar_from_rgb(rgb.as_raw(), width, height);
    let noisy: Vec<f32> = clean
        .iter()
        .enumerate()
        .map(|(i, v)| v + if i % 3 == 0 { 1e-6 } else { -1e-6 })
        .collect();
    let target = [class + preset.class_offset];
    let map = |values: &[f32], config: &SolverConfig| {
        let data = TensorData::new(values.to_vec(), [1, 3, height, width]);
        let input = Tensor::<4>::from_data(data, &device);
        let solution = soft_feedback(&net, &input, &target, config).unwrap();
        let gated = input_gradient(&net, &input, &target, Some(&solution.gates)).unwrap();
        saliency_maps(&gated.gradient).unwrap()[0].data().to_vec()
    };
    let pair = |config| (map(&clean, config), map(&noisy, config));
    configs.iter().map(pair).collect()
}

#[test]
fn default_objective_gives_mobilenet_v2_maps_that_survive_rounding_sized_input_noise() {
    // MobileNet v2 is where the paper's logit objective is ill-conditioned: on this dev image
    // (a true class of 300), after 10 iterations, its map under 1e-6 input noise correlates
    // 0.45 with the clean one (0.61 after 30); the log-softmax's (λ 0.01) 1.000; the default's
    // (λ 0.001) at least 0.95. 10 iterations keep the test short.
    let config = SolverConfig::default().with_iterations(10);
    let image = "ILSVRC2012_val_00000361.JPEG";
    let maps = maps_under_input_noise("mobilenet_v2_1.0_224", image, 300, &[config]);
    let (clean, noisy) = &maps[0];
    let r = correlation(clean, noisy);
    assert!(r >= 0.95, "maps under 1e-6 input noise correlate {r}");
}

#[test]
fn smooth_kinks_give_mobilenet_v1_maps_that_survive_rounding_sized_input_noise() {
    // MobileNet v1 0.25 (ReLU6) on a dev image where a 1e-6 change of the input moves units
    // across their kinks: with the exact 0/1 derivative the gate gradients jump, the solve takes
    // another path and the two maps correlated 0.21 on this machine; with the default smooth
    // derivative (β 10) 0.999. Only the default is asserted: where the exact one lands depends
    // on the last bits of the kernels' rounding.
    let configs = [
        SolverConfig::default(),
        SolverConfig::default().with_kinks(KinkDerivative::Exact),
    ];
    let image = "ILSVRC2012_val_00015670.JPEG";
    let maps = maps_under_input_noise("mobilenet_v1_0.25_128", image, 152, &configs);
    let [r, exact] = [0, 1].map(|k| correlation(&maps[k].0, &maps[k].1));
    assert!(
        r >= 0.95,
        "maps under 1e-6 input noise correlate {r} (exact derivative: {exact})"
    );
}

#[test]
fn bad_targets_and_inputs_are_typed_errors() {
    let (net, input) = squeezenet_and_photo();
    let config = SolverConfig::default().with_iterations(1);
    let err = soft_feedback(&net, &input, &[1000], &config).unwrap_err();
    assert!(err.to_string().contains("1000"), "{err}");
    assert!(soft_feedback(&net, &input, &[1, 2], &config).is_err());
    let nan = Tensor::<4>::full([1, 3, 224, 224], f32::NAN, &input.device());
    assert!(matches!(
        input_gradient(&net, &nan, &[1], None),
        Err(feedbacknet_solver::SolverError::NonFiniteInput)
    ));
    let bad = SolverConfig::default().with_momentum(1.5);
    assert!(soft_feedback(&net, &input, &[1], &bad).is_err());
}

#[test]
fn per_channel_gates_have_one_value_per_channel() {
    let (net, input) = squeezenet_and_photo();
    // The paper's logit objective: the logit itself rises.
    let config = SolverConfig::paper()
        .with_granularity(GateGranularity::Channel)
        .with_iterations(5);
    let solution = soft_feedback(&net, &input, &[BULL_MASTIFF], &config).unwrap();
    let sites = net.gate_sites([224, 224]).unwrap();
    for (site, gates) in sites.iter().zip(solution.gates.values()) {
        assert_eq!(gates.dims(), [1, site.channels()], "site {}", site.name);
    }
    let gated = input_gradient(&net, &input, &[BULL_MASTIFF], Some(&solution.gates)).unwrap();
    assert!(gated.scores[0] > solution.trace[0][0]);
}

#[test]
fn top_first_schedule_holds_the_lower_gates_open_during_its_first_stage() {
    let (net, input) = squeezenet_and_photo();
    let sites = net.gate_sites([224, 224]).unwrap().len();
    let top = 4;
    let stage = |iterations| {
        let config = SolverConfig::paper()
            .with_iterations(iterations)
            .with_schedule(Schedule::TopFirst {
                sites: top,
                iterations: 3,
            });
        soft_feedback(&net, &input, &[BULL_MASTIFF], &config).unwrap()
    };
    let moved = |site: &[f32]| site.iter().any(|&g| g < 1.0);
    // After the first stage only the top gate sites have moved.
    let first = stage(3);
    assert_eq!(first.iterations, 3);
    let first_gates = first.gates.to_vecs().unwrap();
    for (i, site) in first_gates.iter().enumerate() {
        if i + top < sites {
            assert!(!moved(site), "lower site {i} moved in the first stage");
        }
    }
    assert!(first_gates[sites - 1..].iter().any(|s| moved(s)));
    // Then every site.
    let all = stage(8);
    let lower_moved = all.gates.to_vecs().unwrap()[..sites - top]
        .iter()
        .filter(|s| moved(s))
        .count();
    assert!(lower_moved > 0, "no lower site moved in the second stage");
    assert!(
        all.trace.last().unwrap()[0] > first.trace.last().unwrap()[0],
        "the second stage raises the logit further"
    );
    let bad = SolverConfig::default().with_schedule(Schedule::TopFirst {
        sites: 0,
        iterations: 3,
    });
    assert!(soft_feedback(&net, &input, &[BULL_MASTIFF], &bad).is_err());
}

#[test]
fn gated_energy_reads_the_gated_activations_of_a_middle_site() {
    let (net, input) = squeezenet_and_photo();
    let sites = net.gate_sites([224, 224]).unwrap();
    let middle = CamLayer::Site(sites.len() / 2);
    let k = sites.len() / 2;
    let plain = gated_energy(&net, &input, &[BULL_MASTIFF], None, &middle).unwrap();
    let (h, w) = (sites[k].shape[1], sites[k].shape[2]);
    assert_eq!((plain.maps[0].width(), plain.maps[0].height()), (w, h));
    assert!(plain.maps[0].max() > 0.0 && plain.maps[0].data().iter().all(|&v| v >= 0.0));
    // Without gates the energy does not depend on the class.
    let other = gated_energy(&net, &input, &[TIGER_CAT], None, &middle).unwrap();
    assert_eq!(plain.maps[0].data(), other.maps[0].data());
    // Closing every gate of the site empties its energy: the map is read after the gates.
    let ones = GateSet::ones(sites.clone(), 1, GateGranularity::Neuron, &input.device());
    let mut values = ones.values().to_vec();
    values[k] = values[k].zeros_like();
    let closed = GateSet::from_values(sites.clone(), 1, GateGranularity::Neuron, values).unwrap();
    let shut = gated_energy(&net, &input, &[BULL_MASTIFF], Some(&closed), &middle).unwrap();
    assert_eq!(shut.maps[0].max(), 0.0);
    // Feedback gates of two classes give two different energies.
    let config = SolverConfig::default().with_iterations(5);
    let energy_of = |class| {
        let solution = soft_feedback(&net, &input, &[class], &config).unwrap();
        gated_energy(&net, &input, &[class], Some(&solution.gates), &middle).unwrap()
    };
    let (dog, cat) = (energy_of(BULL_MASTIFF), energy_of(TIGER_CAT));
    assert_ne!(dog.maps[0].data(), cat.maps[0].data());
    assert!(gated_energy(&net, &input, &[BULL_MASTIFF], None, &CamLayer::Site(999)).is_err());
}
