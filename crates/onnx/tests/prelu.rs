//! PReLU with a learnt slope per channel: on `tests/fixtures/modern/prelu_op13` (made by
//! `scripts/make_fixtures.py`) the logits against onnxruntime, the input gradient against
//! PyTorch, one gate site per PReLU of its kind, the gate gradients against autodiff and the
//! solver's fused step; on nets built in code, the three backward rules by hand, and a slope
//! along the last axis (channels-last).

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::{
    ActivationKind, ActivationRule, BackwardTarget, DynTensor, GateGranularity, GateSet, GateState,
    GatedNetwork, KinkDerivative, MomentumStep, Seed, autodiff_gate_gradients, step_by_gradients,
};
use feedbacknet_onnx::OnnxNetwork;
use serde_json::Value;

mod common;

use common::{
    graph::{built_net, fixture_dir, ints_attr, node, tensor},
    max_abs_diff, values,
};

const RULES: [ActivationRule; 3] = [
    ActivationRule::Gradient,
    ActivationRule::Guided,
    ActivationRule::Deconv,
];
/// The slopes of the nets built here: positive, negative, above 1.
const SLOPES: [f32; 3] = [0.5, -0.25, 2.0];

fn floats(v: &Value) -> Vec<f32> {
    let values = v.as_array().expect("an array");
    values.iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn one_hot(class: usize, classes: usize, value: f32, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0; classes];
    v[class] = value;
    Tensor::from_data(TensorData::new(v, [1, classes]), device)
}

/// The fixture net, its JSON and its input.
fn fixture(device: &Device) -> (OnnxNetwork, Value, Tensor<4>) {
    let dir = fixture_dir();
    let net = OnnxNetwork::load(dir.join("prelu_op13.onnx"), device).expect("loads");
    let text = std::fs::read_to_string(dir.join("prelu_op13.json")).expect("json");
    let json: Value = serde_json::from_str(&text).expect("valid json");
    let input = TensorData::new(floats(&json["input"]), [1, 3, 32, 32]);
    (net, json, Tensor::from_data(input, device))
}

/// The input gradient of `seed · logits` under `rule`, with `gates`.
fn input_gradient(
    net: &OnnxNetwork,
    input: &Tensor<4>,
    gates: Option<&GateSet>,
    seed: Tensor<2>,
    rule: ActivationRule,
) -> Vec<f32> {
    let out = net
        .backward(input.clone(), gates, seed, rule, BackwardTarget::Input)
        .expect("backward");
    DynTensor::to_vec(&out.gradient).expect("gradient")
}

/// Logits within 1e-5 of onnxruntime's, the true input gradient of the top logit within 1e-4
/// (relative) of PyTorch's; a gate site per PReLU: three with slopes per channel (`[16, 1, 1]`
/// twice, `[24]` on features), one with a single slope.
#[test]
fn logits_and_input_gradient_match_onnxruntime_and_pytorch() {
    let device = Device::flex();
    let (net, json, input) = fixture(&device);
    let kinds: Vec<ActivationKind> = (net.gate_sites([32, 32]).unwrap().iter())
        .map(|s| s.activation)
        .collect();
    let per_channel = |slopes| ActivationKind::PReluPerChannel { slopes };
    let single = ActivationKind::PRelu { slope: 0.25 };
    assert_eq!(
        kinds,
        [per_channel(16), per_channel(16), single, per_channel(24)]
    );
    let expected = floats(&json["logits"]);
    let logits = values(net.forward(input.clone(), None).unwrap());
    let diff = max_abs_diff(&logits, &expected);
    assert!(diff <= 1e-5, "logits differ from onnxruntime's by {diff}");
    let class = json["class"].as_u64().unwrap() as usize;
    let seed = one_hot(class, 10, 1.0, &device);
    let ours = input_gradient(&net, &input, None, seed, ActivationRule::Gradient);
    let theirs = floats(&json["input_gradient"]);
    let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&ours, &theirs);
    assert!(
        scale > 0.0 && diff <= 1e-4 * scale,
        "gradient: {diff} of {scale}"
    );
}

/// Open gates change nothing under any rule or granularity; the three rules give three
/// different maps.
#[test]
fn open_gates_change_nothing_and_the_rules_differ() {
    let device = Device::flex();
    let (net, json, input) = fixture(&device);
    let class = json["class"].as_u64().unwrap() as usize;
    let sites = net.gate_sites([32, 32]).unwrap();
    let seed = || one_hot(class, 10, 1.0, &device);
    let maps: Vec<Vec<f32>> = RULES
        .iter()
        .map(|&rule| input_gradient(&net, &input, None, seed(), rule))
        .collect();
    for (rule, ungated) in RULES.iter().zip(&maps) {
        assert!(ungated.iter().any(|&v| v != 0.0), "{rule:?}: zero map");
        for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
            let ones = GateSet::ones(sites.clone(), 1, granularity, &device);
            let gated = input_gradient(&net, &input, Some(&ones), seed(), *rule);
            let diff = max_abs_diff(&gated, ungated);
            assert!(diff <= 1e-6, "{rule:?} {granularity:?}: {diff}");
        }
    }
    assert!(
        max_abs_diff(&maps[0], &maps[1]) > 0.0,
        "guided is the gradient"
    );
    assert!(
        max_abs_diff(&maps[1], &maps[2]) > 0.0,
        "DeconvNet is guided"
    );
}

/// The gate gradients at every site equal autodiff's (partly open gates), and the solver's
/// step fused into the reverse pass moves the gates as the step after the gradients does.
#[test]
fn the_gate_gradients_and_the_solver_step_are_right() {
    let device = Device::flex();
    let (net, json, input) = fixture(&device);
    let class = json["class"].as_u64().unwrap() as usize;
    let seed =
        move |logits: &Tensor<2>| Ok(one_hot(class, logits.dims()[1], 1.0, &logits.device()));
    let sites = net.gate_sites([32, 32]).unwrap();
    let step = MomentumStep {
        learning_rate: 0.1,
        momentum: 0.9,
        lambda: 0.01,
        kinks: KinkDerivative::Exact,
    };
    for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
        let gates = GateSet::ones(sites.clone(), 1, granularity, &device).map(|g| {
            let n = g.dims()[1];
            let v: Vec<f32> = (0..n)
                .map(|i| 0.5 + 0.5 * ((i * 37 % 101) as f32 / 101.0))
                .collect();
            Tensor::from_data(TensorData::new(v, [1, n]), &device)
        });
        let ours = net.gate_gradients(input.clone(), &gates, &seed).unwrap();
        let reference = autodiff_gate_gradients(&net, input.clone(), &gates, &seed).unwrap();
        for (k, (a, b)) in ours.gradients.iter().zip(&reference.gradients).enumerate() {
            let (a, b) = (values(a.clone()), values(b.clone()));
            let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(&a, &b);
            assert!(
                scale > 0.0,
                "{granularity:?}: zero gate gradient at site {k}"
            );
            assert!(
                diff <= 1e-4 * scale,
                "{granularity:?} site {k}: {diff} of {scale}"
            );
        }
        let fresh = || GateState::at_rest(GateSet::ones(sites.clone(), 1, granularity, &device));
        let moving = vec![true; sites.len()];
        let fused = net
            .step_gates(input.clone(), fresh(), &moving, &step, Seed::new(&seed))
            .unwrap();
        let after = step_by_gradients(
            &net,
            input.clone(),
            fresh(),
            &moving,
            &step,
            Seed::new(&seed),
        )
        .unwrap();
        let (ga, gb) = (
            fused.state.gates.to_vecs().unwrap(),
            after.state.gates.to_vecs().unwrap(),
        );
        for (k, (a, b)) in ga.iter().zip(&gb).enumerate() {
            assert!(
                a.iter().any(|&g| g != 1.0),
                "{granularity:?}: site {k} did not move"
            );
            let diff = max_abs_diff(a, b);
            assert!(
                diff <= 1e-5,
                "{granularity:?} site {k}: fused step differs by {diff}"
            );
        }
    }
}

/// `where(x > 0, x, a·x)` and its local derivative for channel `c` of `SLOPES`.
fn prelu(c: usize, x: f32) -> (f32, f32) {
    if x > 0.0 {
        (x, 1.0)
    } else {
        (SLOPES[c] * x, SLOPES[c])
    }
}

/// Checks a built net `conv (identity) -> PReLU -> mean per channel` on the fixture's input:
/// the logits are each channel's mean PReLU; the input gradient of `±logit c` is, on channel
/// `c`, `±f'(x)/HW` (gradient), `max(±1, 0)·max(f'(x), 0)/HW` (guided: nothing through the
/// negative slope) and `max(±1, 0)/HW` (DeconvNet), 0 on the other channels.
fn check_by_hand(net: &OnnxNetwork, input: &Tensor<4>, case: &str) {
    let device = input.device();
    let xs = values(input.clone());
    let plane = 32 * 32;
    let expected: Vec<f32> = (0..3)
        .map(|c| {
            xs[c * plane..][..plane]
                .iter()
                .map(|&x| prelu(c, x).0)
                .sum::<f32>()
                / plane as f32
        })
        .collect();
    let logits = values(net.forward(input.clone(), None).unwrap());
    let diff = max_abs_diff(&logits, &expected);
    assert!(diff < 1e-5, "{case}: logits differ by {diff}");
    for (c, sign) in (0..3).flat_map(|c| [(c, 1.0f32), (c, -1.0)]) {
        for rule in RULES {
            let seed = one_hot(c, 3, sign, &device);
            let ours = input_gradient(net, input, None, seed, rule);
            let expected: Vec<f32> = (0..xs.len())
                .map(|i| match i / plane == c {
                    true => rule.at(sign, prelu(c, xs[i]).1) / plane as f32,
                    false => 0.0,
                })
                .collect();
            let diff = max_abs_diff(&ours, &expected);
            assert!(
                diff < 1e-8,
                "{case}: class {c}, sign {sign}, {rule:?}: {diff}"
            );
        }
    }
}

/// A slope `[3, 1, 1]` on the `[N, C, H, W]` map: every rule by hand.
#[test]
fn the_rules_follow_each_channels_slope() {
    let device = Device::flex();
    let (_, _, input) = fixture(&device);
    let nodes = vec![node("PRelu", "prelu", &["h", "slope"], "r", vec![])];
    let slope = tensor("slope", vec![3, 1, 1], SLOPES.to_vec());
    let net = built_net(nodes, vec![slope], "r", &device).expect("loads");
    check_by_hand(&net, &input, "NCHW");
}

/// A slope `[3]` along the last axis of a channels-last `[N, H, W, C]` map (between two
/// transposes): a gate site `[H, W, C]` of 3 slopes, and the same numbers as on `[N, C, H, W]`.
#[test]
fn a_slope_along_the_last_axis_runs_channels_last() {
    let device = Device::flex();
    let (_, _, input) = fixture(&device);
    let nodes = vec![
        node(
            "Transpose",
            "nhwc",
            &["h"],
            "t",
            vec![ints_attr("perm", &[0, 2, 3, 1])],
        ),
        node("PRelu", "prelu", &["t", "slope"], "r", vec![]),
        node(
            "Transpose",
            "nchw",
            &["r"],
            "b",
            vec![ints_attr("perm", &[0, 3, 1, 2])],
        ),
    ];
    let slope = tensor("slope", vec![3], SLOPES.to_vec());
    let net = built_net(nodes, vec![slope], "b", &device).expect("loads");
    let sites = net.gate_sites([32, 32]).unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].shape, [32, 32, 3]);
    assert_eq!(
        sites[0].activation,
        ActivationKind::PReluPerChannel { slopes: 3 }
    );
    check_by_hand(&net, &input, "NHWC");
}
