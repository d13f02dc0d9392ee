//! The hand-written reverse pass: the true-gradient rule equals autodiff on real nets, and the
//! guided backprop and DeconvNet rules equal hand-computed values on a tiny net.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{
    graph::{ints_attr, node, tensor},
    max_abs_diff, values,
};
use feedbacknet_core::{
    ActivationRule, BackwardTarget, GateGranularity, GateSet, GateState, GatedNetwork,
    KinkDerivative, MomentumStep, Seed, autodiff_gate_gradients, autodiff_input_gradient,
    step_by_gradients,
};
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use onnx_ir::{Message, ModelProto};

/// A shared net with its preset and the demo photo, centre-cropped to `size`, as its input.
fn net_and_photo(file: &str, size: usize, device: &Device) -> (OnnxNetwork, Tensor<4>) {
    let preset = ModelPreset::find(file).unwrap();
    let net = OnnxNetwork::load(common::model(file), device)
        .unwrap()
        .with_input_spec(preset.input_spec());
    let (rgb, _) = common::center_crop_rgb("data/demo/gradcam_both.png", size as u32);
    let x = common::input(&rgb, size, &preset.normalization, device);
    (net, x)
}

fn one_hot(class: usize, classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0; classes];
    v[class] = 1.0;
    Tensor::from_data(TensorData::new(v, [1, classes]), device)
}

/// Asserts that gradient `ours` equals `reference` up to float rounding: at most 1 % of the
/// values differ by more than 0.5 % of the reference's largest magnitude, and the relative L2
/// error stays below 1 %.
///
/// The fast kernels sum in other orders than Burn's (the depthwise and dense convolutions), and
/// the rounding, amplified over fifty layers, stays well below 0.5 %. Rarely a pre-activation
/// lies within rounding of zero, its ReLU opens on one side only, and the gradient of its whole
/// receptive field moves (one such unit on SqueezeNet with half-open gates: 0.4 % of the input
/// pixels differ by up to 0.6 %, L2 error 0.3 %). A wrong reverse pass differs everywhere.
fn assert_gradients_close(ours: &[f32], reference: &[f32], context: &str) {
    assert_eq!(ours.len(), reference.len(), "{context}: lengths");
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{context}: zero gradient");
    let pairs = || ours.iter().zip(reference);
    let off = pairs()
        .filter(|(a, b)| (*a - *b).abs() > 5e-3 * scale)
        .count();
    let squared = |v: f32| f64::from(v).powi(2);
    let error = pairs().map(|(a, b)| squared(a - b)).sum::<f64>();
    let norm = reference.iter().map(|&v| squared(v)).sum::<f64>();
    let relative = (error / norm).sqrt();
    assert!(
        off * 100 <= ours.len() && relative < 1e-2,
        "{context}: {off} of {} values off by more than 0.5 % of {scale}, relative L2 error {relative}",
        ours.len()
    );
}

/// The reverse pass with the true-gradient rule matches autodiff, with all gates open and
/// with partly open gates, on every shared net: `Relu`, max pooling and concatenation
/// (SqueezeNet), ReLU6, depthwise convolutions and residual additions (MobileNet v2, v1),
/// fully connected layers and reshapes (EfficientNet-Lite0).
#[test]
fn gradient_rule_equals_autodiff_on_real_nets() {
    let device = Device::flex();
    for (file, size, class) in [
        ("squeezenet1.1.onnx", 224, 243usize),
        ("mobilenet_v2_1.0_224.onnx", 224, 244),
        ("mobilenet_v1_0.25_128.onnx", 128, 244),
        ("efficientnet_lite0.onnx", 224, 243),
    ] {
        let (net, x) = net_and_photo(file, size, &device);
        let sites = net.gate_sites([size, size]).unwrap();
        // Partly open gates (fixed values in [0.5, 1)): with gates near 0 the gradient is a
        // near-cancelling sum whose rounding no two summation orders share.
        let half = GateSet::ones(sites, 1, GateGranularity::Neuron, &device)
            .map(|g| fixed_values(&g, 0.5, 1.0));
        for gates in [None, Some(&half)] {
            let seed = one_hot(class, net.num_outputs(), &device);
            let reference = autodiff_input_gradient(&net, x.clone(), gates, seed.clone()).unwrap();
            let ours = net
                .backward(
                    x.clone(),
                    gates,
                    seed,
                    ActivationRule::Gradient,
                    BackwardTarget::Input,
                )
                .unwrap();
            let (a, b) = (
                values(reference.gradient.into4("a").unwrap()),
                values(ours.gradient.into4("b").unwrap()),
            );
            assert_gradients_close(&b, &a, file);
        }
    }
}

/// The hand-written `gate_gradients` (fused gated activations, fast max pooling, a reverse
/// pass that stops below the lowest gate) equals autodiff's at every gate site, for per-neuron
/// and per-channel gates with fixed values in [0.5, 1), two samples of different classes, on SqueezeNet,
/// MobileNet v2 and EfficientNet-Lite0.
#[test]
fn gate_gradients_equal_autodiff_on_real_nets() {
    let device = Device::flex();
    for file in [
        "squeezenet1.1.onnx",
        "mobilenet_v2_1.0_224.onnx",
        "efficientnet_lite0.onnx",
    ] {
        let (net, one) = net_and_photo(file, 224, &device);
        let x = Tensor::cat(vec![one.clone(), one.flip([3])], 0);
        let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
            let [batch, n] = logits.dims();
            let mut v = vec![0.0; batch * n];
            v[243] = 1.0;
            v[n + 281] = 1.0;
            Ok(Tensor::from_data(
                TensorData::new(v, [batch, n]),
                &logits.device(),
            ))
        };
        let sites = net.gate_sites([224, 224]).unwrap();
        for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
            let gates = GateSet::ones(sites.clone(), 2, granularity, &device)
                .map(|g| fixed_values(&g, 0.5, 1.0));
            let ours = net.gate_gradients(x.clone(), &gates, &seed).unwrap();
            let reference = autodiff_gate_gradients(&net, x.clone(), &gates, &seed).unwrap();
            let logits = max_abs_diff(&flat(ours.logits), &flat(reference.logits));
            assert!(logits < 1e-3, "{file}: logits differ by {logits}");
            assert_eq!(ours.gradients.len(), sites.len());
            for (k, (a, b)) in ours
                .gradients
                .into_iter()
                .zip(reference.gradients)
                .enumerate()
            {
                let context = format!("{file} {granularity:?} site {k}");
                assert_gradients_close(&flat(a), &flat(b), &context);
            }
        }
    }
}

/// The steps before the first gate run once per input: a second input gets its own values,
/// not the first input's (the cache compares the input itself), and inputs that take turns
/// (the evaluation's workers), more of them than the cache keeps, each get their own.
#[test]
fn the_gate_free_prefix_follows_the_input() {
    let device = Device::flex();
    let file = "squeezenet1.1.onnx";
    let (net, a) = net_and_photo(file, 224, &device);
    let b = a.clone().flip([2]);
    let sites = net.gate_sites([224, 224]).unwrap();
    let gates = GateSet::ones(sites, 1, GateGranularity::Neuron, &device);
    let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
        Ok(one_hot(243, logits.dims()[1], &logits.device()))
    };
    let first = net.gate_gradients(a.clone(), &gates, &seed).unwrap();
    let second = net.gate_gradients(b.clone(), &gates, &seed).unwrap();
    let again = net.gate_gradients(a.clone(), &gates, &seed).unwrap();
    let reference = autodiff_gate_gradients(&net, b.clone(), &gates, &seed).unwrap();
    let (l1, l2) = (flat(first.logits), flat(second.logits));
    assert!(
        max_abs_diff(&l1, &l2) > 1e-2,
        "the flipped image has other logits"
    );
    assert!(max_abs_diff(&l2, &flat(reference.logits)) < 1e-3);
    assert_eq!(
        l1,
        flat(again.logits),
        "the same input gives the same answer"
    );
    let turns = [
        a.clone(),
        b.clone(),
        a.clone().flip([3]),
        b.clone().flip([3]),
        a.clone().mul_scalar(0.5),
        b.mul_scalar(0.5),
    ];
    let logits = |x: &Tensor<4>| flat(net.gate_gradients(x.clone(), &gates, &seed).unwrap().logits);
    let first_round: Vec<Vec<f32>> = turns.iter().map(logits).collect();
    for (x, expected) in turns.iter().zip(&first_round).rev() {
        assert_eq!(
            &logits(x),
            expected,
            "an input taking turns gets its own prefix"
        );
    }
    for pair in first_round.windows(2) {
        assert!(max_abs_diff(&pair[0], &pair[1]) > 1e-2, "the inputs differ");
    }
}

/// `gate_gradients` (the soft solver's inner step) agrees with finite differences of the gated
/// forward pass: moving one site's gates by `ε·d` changes the target logits by `ε·<grad, d>`,
/// for two samples with different classes, on SqueezeNet and MobileNet v2 (ReLU6, batch norm,
/// residual additions).
#[test]
fn gate_gradients_agree_with_finite_differences() {
    let device = Device::flex();
    for (file, classes) in [
        ("squeezenet1.1.onnx", [243usize, 281]),
        ("mobilenet_v2_1.0_224.onnx", [244, 282]),
    ] {
        let (net, one) = net_and_photo(file, 224, &device);
        let x = Tensor::cat(vec![one.clone(), one.flip([3])], 0);
        let sites = net.gate_sites([224, 224]).unwrap();
        let onehot = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
            let [batch, n] = logits.dims();
            let mut v = vec![0.0; batch * n];
            for (b, &c) in classes.iter().enumerate() {
                v[b * n + c] = 1.0;
            }
            Ok(Tensor::from_data(
                TensorData::new(v, [batch, n]),
                &logits.device(),
            ))
        };
        let gates = GateSet::ones(sites.clone(), 2, GateGranularity::Channel, &device)
            .map(|g| fixed_values(&g, 0.5, 1.0));
        let grads = net.gate_gradients(x.clone(), &gates, &onehot).unwrap();
        assert_eq!(grads.gradients.len(), sites.len());
        let target = |logits: Tensor<2>| -> Vec<f32> {
            let l = flat(logits);
            let n = l.len() / 2;
            vec![l[classes[0]], l[n + classes[1]]]
        };
        let base = target(grads.logits.clone());
        let site = sites.len() / 2;
        let direction = fixed_values(&grads.gradients[site], -1.0, 1.0);
        let eps = 1e-3;
        let mut moved = gates.clone().into_values();
        moved[site] = moved[site].clone().add(direction.clone().mul_scalar(eps));
        let moved =
            GateSet::from_values(sites.clone(), 2, GateGranularity::Channel, moved).unwrap();
        let after = target(net.forward(x.clone(), Some(&moved)).unwrap());
        let predicted = flat(grads.gradients[site].clone().mul(direction).sum_dim(1));
        for b in 0..2 {
            let measured = (after[b] - base[b]) / eps;
            assert!(
                predicted[b].abs() > 1e-2,
                "{file}: degenerate direction {predicted:?}"
            );
            assert!(
                (measured - predicted[b]).abs() <= 0.05 * predicted[b].abs() + 1e-2,
                "{file} sample {b}: finite difference {measured}, gradient {}",
                predicted[b]
            );
        }
    }
}

/// Deterministic pseudo-random values in `[low, high)` shaped like `like` (a fixed LCG, so
/// that the test is reproducible).
fn fixed_values(like: &Tensor<2>, low: f32, high: f32) -> Tensor<2> {
    let dims = like.dims();
    let mut state = 0x2545_f491_u32;
    let values = (0..dims[0] * dims[1])
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            low + (high - low) * (state >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(values, dims), &like.device())
}

fn flat(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// A 3 -> 2 -> 2 channel net of 1x1 convolutions with a ReLU between, global average pooling
/// and flatten, on a 2x2 input: every rule can be computed by hand.
fn tiny_net(device: &Device) -> OnnxNetwork {
    let base =
        ModelProto::parse_from_bytes(&std::fs::read(common::model("squeezenet1.1.onnx")).unwrap())
            .unwrap();
    let mut model = base.clone();
    let graph = model.graph.as_mut().unwrap();
    let mut input = graph.input[0].clone();
    let dims = &mut input
        .type_
        .mut_or_insert_default()
        .mut_tensor_type()
        .shape
        .mut_or_insert_default()
        .dim;
    dims[2].set_dim_value(2);
    dims[3].set_dim_value(2);
    let mut output = graph.output[0].clone();
    let dims = &mut output
        .type_
        .mut_or_insert_default()
        .mut_tensor_type()
        .shape
        .mut_or_insert_default()
        .dim;
    dims[1].set_dim_value(2);
    let x_name = input.name.clone();
    let y_name = output.name.clone();
    graph.initializer = vec![
        tensor("w1", vec![2, 3, 1, 1], vec![1.0, -1.0, 0.5, -0.5, 1.0, 1.0]),
        tensor("b1", vec![2], vec![0.0, 0.1]),
        tensor("w2", vec![2, 2, 1, 1], vec![2.0, -3.0, 1.0, 1.0]),
        tensor("b2", vec![2], vec![0.0, 0.0]),
    ];
    graph.node = vec![
        node(
            "Conv",
            "c1",
            &[&x_name, "w1", "b1"],
            "h",
            vec![ints_attr("kernel_shape", &[1, 1])],
        ),
        node("Relu", "r1", &["h"], "r", vec![]),
        node(
            "Conv",
            "c2",
            &["r", "w2", "b2"],
            "z",
            vec![ints_attr("kernel_shape", &[1, 1])],
        ),
        node("GlobalAveragePool", "gap", &["z"], "p", vec![]),
        node("Flatten", "flat", &["p"], &y_name, vec![]),
    ];
    graph.input = vec![input];
    graph.output = vec![output];
    graph.value_info.clear();
    OnnxNetwork::from_bytes(&model.write_to_bytes().unwrap(), device).unwrap()
}

/// `x[c][p]` for the 4 pixels of a 2x2 image, channel-major.
const X: [[f32; 4]; 3] = [
    [1.0, 0.0, -1.0, 2.0],
    [0.0, 1.0, 1.0, -1.0],
    [1.0, 1.0, 0.0, 0.0],
];
const W1: [[f32; 3]; 2] = [[1.0, -1.0, 0.5], [-0.5, 1.0, 1.0]];
const B1: [f32; 2] = [0.0, 0.1];
const W2: [[f32; 2]; 2] = [[2.0, -3.0], [1.0, 1.0]];

/// The input gradient of class `c` under `rule`, computed by hand: `dscore/dr_k = W2[c][k]/4`
/// at every pixel, then the rule at the ReLU, then `W1ᵀ`.
fn by_hand(c: usize, rule: ActivationRule) -> Vec<f32> {
    let mut grad = vec![0.0; 12];
    for p in 0..4 {
        for k in 0..2 {
            let h: f32 = (0..3).map(|i| W1[k][i] * X[i][p]).sum::<f32>() + B1[k];
            let dr = W2[c][k] / 4.0;
            let dh = match rule {
                ActivationRule::Gradient => {
                    if h > 0.0 {
                        dr
                    } else {
                        0.0
                    }
                }
                ActivationRule::Guided => {
                    if h > 0.0 {
                        dr.max(0.0)
                    } else {
                        0.0
                    }
                }
                ActivationRule::Deconv => dr.max(0.0),
            };
            for i in 0..3 {
                grad[i * 4 + p] += W1[k][i] * dh;
            }
        }
    }
    grad
}

#[test]
fn guided_and_deconv_rules_equal_hand_computed_values() {
    let device = Device::flex();
    let net = tiny_net(&device);
    assert_eq!(net.num_outputs(), 2);
    let x: Vec<f32> = X.iter().flatten().copied().collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [1, 3, 2, 2]), &device);
    for rule in [
        ActivationRule::Gradient,
        ActivationRule::Guided,
        ActivationRule::Deconv,
    ] {
        for class in 0..2 {
            let out = net
                .backward(
                    x.clone(),
                    None,
                    one_hot(class, 2, &device),
                    rule,
                    BackwardTarget::Input,
                )
                .unwrap();
            let got = values(out.gradient.into4("gradient").unwrap());
            let want = by_hand(class, rule);
            assert!(
                max_abs_diff(&got, &want) < 1e-6,
                "{rule:?} class {class}: {got:?} vs {want:?}"
            );
        }
    }
    // Class 0 sends a negative gradient (W2[0][1] = -3) into channel 1, which is active at
    // pixels 0 to 2: guided backprop drops it there, the true gradient keeps it.
    assert_ne!(
        by_hand(0, ActivationRule::Guided),
        by_hand(0, ActivationRule::Gradient)
    );
    // DeconvNet ignores the forward mask: channel 0 is inactive at pixel 2 (h = -2) yet
    // passes its positive gradient there.
    assert_ne!(
        by_hand(0, ActivationRule::Deconv),
        by_hand(0, ActivationRule::Guided)
    );
}

#[test]
fn a_gate_site_target_returns_its_activation_and_gradient() {
    let device = Device::flex();
    let net = tiny_net(&device);
    let x: Vec<f32> = X.iter().flatten().copied().collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [1, 3, 2, 2]), &device);
    let out = net
        .backward(
            x,
            None,
            one_hot(0, 2, &device),
            ActivationRule::Gradient,
            BackwardTarget::Site(0),
        )
        .unwrap();
    let grad = values(out.gradient.into4("g").unwrap());
    assert_eq!(grad, vec![0.5, 0.5, 0.5, 0.5, -0.75, -0.75, -0.75, -0.75]);
    let act = values(out.activation.unwrap().into4("a").unwrap());
    let expect: Vec<f32> = (0..2)
        .flat_map(|k| {
            (0..4).map(move |p| ((0..3).map(|i| W1[k][i] * X[i][p]).sum::<f32>() + B1[k]).max(0.0))
        })
        .collect();
    assert!(max_abs_diff(&act, &expect) < 1e-6, "{act:?} vs {expect:?}");
    assert!(
        net.backward(
            Tensor::zeros([1, 3, 2, 2], &device),
            None,
            one_hot(0, 2, &device),
            ActivationRule::Gradient,
            BackwardTarget::Site(7),
        )
        .is_err()
    );
}

/// The soft solver's default step (the authors' public code).
fn paper_step() -> MomentumStep {
    MomentumStep {
        learning_rate: 0.1,
        momentum: 0.9,
        lambda: 0.01,
        kinks: KinkDerivative::Exact,
    }
}

/// The seed of a class's logit: its one-hot row.
fn class_seed(class: usize) -> impl Fn(&Tensor<2>) -> feedbacknet_core::Result<Tensor<2>> {
    move |logits| Ok(one_hot(class, logits.dims()[1], &logits.device()))
}

/// The step fused into the reverse pass (`step_gates`) equals the step taken after the gate
/// gradients (`step_by_gradients`), iteration after iteration: per neuron and per channel, with
/// some sites held still, on SqueezeNet and MobileNet v2 (ReLU6).
#[test]
fn the_step_fused_into_the_reverse_pass_equals_the_step_after_it() {
    let device = Device::flex();
    let step = paper_step();
    for (file, class) in [
        ("squeezenet1.1.onnx", 243),
        ("mobilenet_v2_1.0_224.onnx", 244),
    ] {
        let (net, x) = net_and_photo(file, 224, &device);
        let sites = net.gate_sites([224, 224]).unwrap();
        let seed = class_seed(class);
        for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
            let fresh =
                || GateState::at_rest(GateSet::ones(sites.clone(), 1, granularity, &device));
            let (mut fused, mut reference) = (fresh(), fresh());
            let site_count = sites.len();
            for iteration in 0..3 {
                let context = format!("{file} {granularity:?} iteration {iteration}");
                // The first iteration holds the lower half still.
                let moving: Vec<bool> = (0..site_count)
                    .map(|k| iteration > 0 || 2 * k >= site_count)
                    .collect();
                let a = net
                    .step_gates(x.clone(), fused, &moving, &step, Seed::new(&seed))
                    .unwrap();
                let b =
                    step_by_gradients(&net, x.clone(), reference, &moving, &step, Seed::new(&seed))
                        .unwrap();
                assert_eq!(
                    flat(a.logits),
                    flat(b.logits),
                    "{context}: the same forward pass"
                );
                assert!(b.moved > 0.0, "{context}: the gates moved");
                assert!(
                    (a.moved - b.moved).abs() <= 1e-5 * b.moved.max(1.0),
                    "{context}: moved"
                );
                let pairs = a.state.gates.values().iter().zip(b.state.gates.values());
                let velocities = a.state.velocity.iter().zip(&b.state.velocity);
                for (k, ((ga, gb), (va, vb))) in pairs.zip(velocities).enumerate() {
                    let (ga, gb) = (flat(ga.clone()), flat(gb.clone()));
                    assert!(
                        max_abs_diff(&ga, &gb) <= 1e-5,
                        "{context}: gates of site {k}"
                    );
                    if !moving[k] {
                        assert!(
                            ga.iter().all(|&g| g == 1.0),
                            "{context}: site {k} held still"
                        );
                    }
                    let scale = flat(vb.clone()).iter().fold(1.0f32, |m, v| m.max(v.abs()));
                    let dv = max_abs_diff(&flat(va.clone()), &flat(vb.clone()));
                    assert!(
                        dv <= 1e-4 * scale,
                        "{context}: velocity of site {k} off by {dv}"
                    );
                }
                (fused, reference) = (a.state, b.state);
            }
        }
    }
}

/// A seed that reads the target logit alone (`Seed::reading_only`) steps the gates exactly as
/// the same seed reading every logit, iteration after iteration, and keeps the target logit;
/// on SqueezeNet, whose classifier is a convolution, the other logits are not computed (they
/// read 0), and so on MobileNet v2 (a 1×1 convolution after the pooling); on EfficientNet-Lite0
/// (a fully connected classifier) every logit is kept.
#[test]
fn a_seed_reading_the_target_alone_steps_the_same_gates() {
    let device = Device::flex();
    let step = paper_step();
    for (file, class, head_skipped) in [
        ("squeezenet1.1.onnx", 243, true),
        ("mobilenet_v2_1.0_224.onnx", 244, true),
        ("efficientnet_lite0.onnx", 243, false),
    ] {
        let (net, x) = net_and_photo(file, 224, &device);
        let sites = net.gate_sites([224, 224]).unwrap();
        let seed = class_seed(class);
        let neuron = GateGranularity::Neuron;
        let fresh = || GateState::at_rest(GateSet::ones(sites.clone(), 1, neuron, &device));
        let moving = vec![true; sites.len()];
        // Repeats are allowed (a batch may explain one class twice).
        let targets = [class, class];
        let (mut narrow, mut full) = (fresh(), fresh());
        for iteration in 0..3 {
            let context = format!("{file} iteration {iteration}");
            let reading_target = Seed::new(&seed).reading_only(&targets);
            let a = net
                .step_gates(x.clone(), narrow, &moving, &step, reading_target)
                .unwrap();
            let b = net
                .step_gates(x.clone(), full, &moving, &step, Seed::new(&seed))
                .unwrap();
            let (la, lb) = (flat(a.logits), flat(b.logits));
            // Up to float rounding: a product of one row may round otherwise than the split
            // product of all rows.
            let close = |p: f32, q: f32| (p - q).abs() <= 1e-5 * q.abs().max(1.0);
            assert!(close(la[class], lb[class]), "{context}: the target logit");
            assert!(lb[class] != 0.0, "{context}: a real target logit");
            let others_zero = la.iter().enumerate().all(|(j, &l)| j == class || l == 0.0);
            assert_eq!(others_zero, head_skipped, "{context}: the other logits");
            if !head_skipped {
                assert!(max_abs_diff(&la, &lb) <= 1e-4, "{context}: every logit");
            }
            assert!(b.moved > 0.0 && close(a.moved, b.moved), "{context}: moved");
            let pairs = a.state.gates.values().iter().zip(b.state.gates.values());
            for (k, (ga, gb)) in pairs.enumerate() {
                let (ga, gb) = (flat(ga.clone()), flat(gb.clone()));
                assert!(max_abs_diff(&ga, &gb) <= 1e-5, "{context}: site {k}");
            }
            (narrow, full) = (a.state, b.state);
        }
    }
}

/// The solver's kink derivative reaches the reverse pass and acts where it should: with a
/// smooth derivative at the ReLUs, the top site's gates (whose gradient no ReLU lies above)
/// take the exact step, and the sites below it another one.
#[test]
fn smooth_kinks_change_the_gate_steps_below_the_top_site_only() {
    let device = Device::flex();
    let (net, x) = net_and_photo("squeezenet1.1.onnx", 224, &device);
    let sites = net.gate_sites([224, 224]).unwrap();
    let seed = class_seed(243);
    let moving = vec![true; sites.len()];
    let gates = |kinks| {
        let state = GateState::at_rest(GateSet::ones(
            sites.clone(),
            1,
            GateGranularity::Neuron,
            &device,
        ));
        let step = MomentumStep {
            kinks,
            ..paper_step()
        };
        let stepped = net
            .step_gates(x.clone(), state, &moving, &step, Seed::new(&seed))
            .unwrap();
        let values = stepped.state.gates.values().iter();
        values.map(|g| flat(g.clone())).collect::<Vec<_>>()
    };
    let exact = gates(KinkDerivative::Exact);
    let smooth = gates(KinkDerivative::Smooth { beta: 1.0 });
    let top = sites.len() - 1;
    assert_eq!(
        max_abs_diff(&exact[top], &smooth[top]),
        0.0,
        "the top site's gate gradient crosses no kink"
    );
    let below = (0..top)
        .map(|k| max_abs_diff(&exact[k], &smooth[k]))
        .fold(0.0, f32::max);
    assert!(below > 1e-3, "the sites below moved alike ({below})");
}
