//! The hard (binary-gate) solver on a real net and photo.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::{GateGranularity, GateSet, GatedNetwork};
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use feedbacknet_solver::{HardConfig, SolverError, hard_feedback, input_gradient};

fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// SqueezeNet 1.1 and `gradcam_both.png` (a bulldog above, a tabby cat below) twice: one copy
/// per target class.
fn squeezenet_and_photo_pair() -> (OnnxNetwork, Tensor<4>) {
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
    let pair: Vec<f32> = planar.iter().chain(&planar).copied().collect();
    let input = Tensor::from_data(TensorData::new(pair, [2, 3, 224, 224]), &device);
    (net, input)
}

const BULL_MASTIFF: usize = 243;
const TIGER_CAT: usize = 282;
const TARGETS: [usize; 2] = [BULL_MASTIFF, TIGER_CAT];

/// Per sample: (closed gates, total gates). Panics on a gate that is not exactly 0 or 1.
fn count_closed(gates: &GateSet) -> Vec<(usize, usize)> {
    let mut counts = vec![(0, 0); gates.batch()];
    for (site, values) in gates.sites().iter().zip(gates.to_vecs().unwrap()) {
        let n = site.gate_count(gates.granularity());
        for (b, row) in values.chunks_exact(n).enumerate() {
            for &g in row {
                assert!(
                    g == 0.0 || g == 1.0,
                    "gate {g} at {} is not binary",
                    site.name
                );
                counts[b].0 += usize::from(g == 0.0);
            }
            counts[b].1 += n;
        }
    }
    counts
}

#[test]
fn binary_gates_raise_the_target_logits() {
    let (net, input) = squeezenet_and_photo_pair();
    let open = input_gradient(&net, &input, &TARGETS, None).unwrap().scores;
    let solution = hard_feedback(&net, &input, &TARGETS, &HardConfig::default()).unwrap();
    assert_eq!(solution.trace.len(), solution.iterations + 1);
    assert!(solution.iterations >= 1 && solution.iterations <= 5);
    for (b, (closed, total)) in count_closed(&solution.gates).into_iter().enumerate() {
        let fraction = closed as f64 / total as f64;
        assert!(
            fraction > 0.01 && closed < total,
            "sample {b}: {closed} of {total} gates closed"
        );
    }
    let gated = input_gradient(&net, &input, &TARGETS, Some(&solution.gates)).unwrap();
    for b in 0..2 {
        assert!((solution.trace[0][b] - open[b]).abs() < 1e-3 * open[b].abs().max(1.0));
        // Measured: bull mastiff 23.5 -> 750, tiger cat 21.9 -> 546.
        assert!(
            gated.scores[b] > open[b] + 100.0,
            "sample {b}: logit {} -> {}",
            open[b],
            gated.scores[b]
        );
        let best = solution.trace.iter().map(|t| t[b]).fold(f32::MIN, f32::max);
        assert!(
            (gated.scores[b] - best).abs() <= 1e-3 * best.abs(),
            "sample {b}: returned gates score {}, best in trace {best}",
            gated.scores[b]
        );
    }
}

#[test]
fn stops_once_nothing_improves_or_changes() {
    let (net, input) = squeezenet_and_photo_pair();
    // Patience (default 2) ends the sweeps once no sample's best logit improves (at ratio 1,
    // whose sweeps cycle; at ratio 0 the logit here keeps rising for more than 10 sweeps).
    let config = HardConfig::default().with_ratio(1.0).with_max_sweeps(50);
    let solution = hard_feedback(&net, &input, &TARGETS, &config).unwrap();
    assert!(solution.converged, "{:?}", solution.trace);
    assert!(solution.iterations < 50, "{} sweeps", solution.iterations);
    // Without patience, sweeps run until no gate changes (ratio 2 reaches a fixed point).
    let config = HardConfig::default()
        .with_ratio(2.0)
        .with_patience(0)
        .with_max_sweeps(50);
    let solution = hard_feedback(&net, &input, &TARGETS, &config).unwrap();
    assert!(solution.converged, "{:?}", solution.trace);
    assert!(solution.iterations < 50, "{} sweeps", solution.iterations);
    let n = solution.trace.len();
    assert_eq!(solution.trace[n - 1], solution.trace[n - 2]);
    let gated = net.forward(input.clone(), Some(&solution.gates)).unwrap();
    let plain = net.forward(input, None).unwrap();
    let (gated, plain) = (logits_of(gated), logits_of(plain));
    for (b, &t) in TARGETS.iter().enumerate() {
        let (after, before) = (gated[b * 1000 + t], plain[b * 1000 + t]);
        assert!(after > before, "sample {b}: {before} -> {after}");
    }
}

fn logits_of(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn ratio_zero_keeps_more_gates_open() {
    let (net, input) = squeezenet_and_photo_pair();
    let config = HardConfig::default().with_max_sweeps(3);
    let strict = hard_feedback(&net, &input, &TARGETS, &config.clone().with_ratio(1.0)).unwrap();
    let loose = hard_feedback(&net, &input, &TARGETS, &config.with_ratio(0.0)).unwrap();
    let (strict, loose) = (count_closed(&strict.gates), count_closed(&loose.gates));
    for b in 0..2 {
        let open_strict = strict[b].1 - strict[b].0;
        let open_loose = loose[b].1 - loose[b].0;
        // Measured: about 20,000 open with ratio 1, 470,000 with ratio 0 (of 2.59 million).
        assert!(
            open_loose > 2 * open_strict,
            "sample {b}: {open_loose} open with ratio 0, {open_strict} with ratio 1"
        );
    }
}

#[test]
fn per_channel_gates_are_binary_and_help() {
    let (net, input) = squeezenet_and_photo_pair();
    let config = HardConfig::default().with_granularity(GateGranularity::Channel);
    let solution = hard_feedback(&net, &input, &TARGETS, &config).unwrap();
    let sites = net.gate_sites([224, 224]).unwrap();
    for (site, gates) in sites.iter().zip(solution.gates.values()) {
        assert_eq!(gates.dims(), [2, site.channels()], "site {}", site.name);
    }
    let counts = count_closed(&solution.gates);
    assert!(
        counts
            .iter()
            .all(|&(closed, total)| closed > 0 && closed < total)
    );
    let gated = input_gradient(&net, &input, &TARGETS, Some(&solution.gates)).unwrap();
    for b in 0..2 {
        assert!(
            gated.scores[b] > solution.trace[0][b] + 1.0,
            "sample {b}: {} -> {}",
            solution.trace[0][b],
            gated.scores[b]
        );
    }
}

#[test]
fn invalid_settings_and_targets_are_typed_errors() {
    let (net, input) = squeezenet_and_photo_pair();
    let bad = [
        (HardConfig::default().with_max_sweeps(0), "max_sweeps"),
        (HardConfig::default().with_ratio(-0.5), "ratio"),
        (HardConfig::default().with_ratio(f32::NAN), "ratio"),
        (HardConfig::default().with_ratio(f32::INFINITY), "ratio"),
    ];
    for (config, setting) in bad {
        match hard_feedback(&net, &input, &TARGETS, &config) {
            Err(SolverError::InvalidConfig { name, .. }) => assert_eq!(name, setting),
            other => panic!("{config:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    let config = HardConfig::default();
    assert!(matches!(
        hard_feedback(&net, &input, &[BULL_MASTIFF], &config),
        Err(SolverError::BatchMismatch { .. })
    ));
    assert!(matches!(
        hard_feedback(&net, &input, &[BULL_MASTIFF, 1000], &config),
        Err(SolverError::ClassOutOfRange { class: 1000, .. })
    ));
}
