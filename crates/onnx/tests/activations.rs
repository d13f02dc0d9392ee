//! The gated activations beyond ReLU on the modern fixture nets (`tests/fixtures/modern`):
//! SiLU (`Sigmoid` + `Mul`, EfficientNet), HardSwish (`HardSigmoid` + `Mul` at opset 13, a
//! `HardSwish` node at opset 17, MobileNet v3): logits against onnxruntime, the input gradient
//! against PyTorch, one gate site per activation, and the gates' backward and solver step; and
//! the exact GELU pattern fused on a small net built in code.

use burn::tensor::{Device, Tensor, TensorData, activation};
use feedbacknet_core::{
    ActivationKind, ActivationRule, BackwardTarget, DynTensor, GateGranularity, GateSet, GateState,
    GatedNetwork, KinkDerivative, MomentumStep, Seed, autodiff_gate_gradients, step_by_gradients,
};
use feedbacknet_onnx::OnnxNetwork;
use serde_json::Value;

mod common;

use common::{
    graph::{built_net, fixture_dir, float_attr, node, tensor},
    max_abs_diff, pearson, values,
};

const FILES: [&str; 3] = [
    "efficientnet_op13",
    "mobilenet_v3_op13",
    "mobilenet_v3_op17",
];

/// A fixture net, its JSON and its input.
struct Fixture {
    net: OnnxNetwork,
    json: Value,
    input: Tensor<4>,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

fn fixture(name: &str, device: &Device) -> Fixture {
    let dir = fixture_dir();
    let net = OnnxNetwork::load(dir.join(format!("{name}.onnx")), device)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("json");
    let json: Value = serde_json::from_str(&text).expect("valid json");
    let input = Tensor::from_data(
        TensorData::new(floats(&json["input"]), [1, 3, 32, 32]),
        device,
    );
    Fixture { net, json, input }
}

fn one_hot(class: usize, classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0; classes];
    v[class] = 1.0;
    Tensor::from_data(TensorData::new(v, [1, classes]), device)
}

fn count(json: &Value, op: &str) -> usize {
    json["op_types"][op].as_u64().unwrap_or(0) as usize
}

/// The input gradient of `logits[0, class]` under `rule`, with `gates`.
fn input_gradient(
    f: &Fixture,
    gates: Option<&GateSet>,
    class: usize,
    rule: ActivationRule,
) -> Vec<f32> {
    let seed = one_hot(class, f.net.num_outputs(), &f.input.device());
    let out = f
        .net
        .backward(f.input.clone(), gates, seed, rule, BackwardTarget::Input)
        .expect("backward");
    DynTensor::to_vec(&out.gradient).expect("gradient")
}

/// Logits within `1e-4·max(1, max|logit|)` of onnxruntime's; the true input gradient of the
/// argmax logit correlates with PyTorch's at `r ≥ 0.999`.
#[test]
fn logits_and_input_gradients_match_the_references() {
    let device = Device::flex();
    for name in FILES {
        let f = fixture(name, &device);
        let expected = floats(&f.json["logits"]);
        let logits = values(f.net.forward(f.input.clone(), None).expect("forward"));
        let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&logits, &expected);
        let class = f.json["class"].as_u64().expect("class") as usize;
        let ours = input_gradient(&f, None, class, ActivationRule::Gradient);
        let r = pearson(&ours, &floats(&f.json["input_gradient"]));
        println!("{name}: logits max |diff| {diff:e} (scale {scale}), gradient r {r:.6}");
        assert!(diff <= 1e-4 * scale, "{name}: logits differ by {diff}");
        assert!(r >= 0.999, "{name}: gradient correlation {r}");
    }
}

/// One gate site per SiLU, HardSwish and ReLU: the `Sigmoid`s and `HardSigmoid`s not fused are
/// the squeeze-and-excitation scales, one per global average pooling but the head's.
#[test]
fn one_gate_site_per_activation() {
    let device = Device::flex();
    for name in FILES {
        let f = fixture(name, &device);
        let json = &f.json;
        let squeeze_excitation = count(json, "GlobalAveragePool") - 1;
        let silu = count(json, "Sigmoid") - squeeze_excitation.min(count(json, "Sigmoid"));
        let hard_swish = count(json, "HardSwish") + count(json, "HardSigmoid")
            - squeeze_excitation.min(count(json, "HardSigmoid"));
        let relu = count(json, "Relu");
        let sites = f.net.gate_sites([32, 32]).expect("sites");
        let kinds = |kind: ActivationKind| sites.iter().filter(|s| s.activation == kind).count();
        println!(
            "{name}: {} sites ({} SiLU, {} HardSwish, {} ReLU); activations {}",
            sites.len(),
            kinds(ActivationKind::Silu),
            kinds(ActivationKind::HardSwish),
            kinds(ActivationKind::Relu),
            json["activations"]
        );
        assert_eq!(kinds(ActivationKind::Silu), silu, "{name}: SiLU sites");
        assert_eq!(
            kinds(ActivationKind::HardSwish),
            hard_swish,
            "{name}: HardSwish"
        );
        assert_eq!(kinds(ActivationKind::Relu), relu, "{name}: ReLU sites");
        assert_eq!(sites.len(), silu + hard_swish + relu, "{name}: all sites");
        assert_eq!(f.net.gate_count(), sites.len(), "{name}: gate count");
    }
    // The README's table: EfficientNet 10 SiLU (3 SE Sigmoids); MobileNet v3 5 HardSwish, 5 ReLU.
    let efficientnet = fixture("efficientnet_op13", &device);
    assert_eq!(efficientnet.net.gate_count(), 10);
    let mobilenet = fixture("mobilenet_v3_op17", &device);
    assert_eq!(mobilenet.net.gate_count(), 10);
}

/// With every gate at 1 the backward pass equals the ungated one, under every rule and both
/// granularities; guided backprop and DeconvNet run and differ from the true gradient.
#[test]
fn open_gates_change_nothing() {
    let device = Device::flex();
    for name in FILES {
        let f = fixture(name, &device);
        let class = f.json["class"].as_u64().unwrap() as usize;
        let sites = f.net.gate_sites([32, 32]).unwrap();
        let plain = values(f.net.forward(f.input.clone(), None).unwrap());
        for rule in [
            ActivationRule::Gradient,
            ActivationRule::Guided,
            ActivationRule::Deconv,
        ] {
            let ungated = input_gradient(&f, None, class, rule);
            assert!(
                ungated.iter().any(|&v| v != 0.0),
                "{name} {rule:?}: zero map"
            );
            for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
                let ones = GateSet::ones(sites.clone(), 1, granularity, &device);
                let gated = input_gradient(&f, Some(&ones), class, rule);
                let diff = max_abs_diff(&gated, &ungated);
                assert!(diff <= 1e-6, "{name} {rule:?} {granularity:?}: {diff}");
                let logits = values(f.net.forward(f.input.clone(), Some(&ones)).unwrap());
                assert_eq!(max_abs_diff(&logits, &plain), 0.0, "{name}: gated logits");
            }
        }
    }
}

/// The gate gradients at SiLU and HardSwish sites equal autodiff's (with partly open gates),
/// are non-zero, and the soft solver's step (fused into the reverse pass) moves those gates as
/// the step after the gradients does.
#[test]
fn the_solver_moves_gates_at_smooth_sites() {
    let device = Device::flex();
    let step = MomentumStep {
        learning_rate: 0.1,
        momentum: 0.9,
        lambda: 0.01,
        kinks: KinkDerivative::Exact,
    };
    for name in FILES {
        let f = fixture(name, &device);
        let class = f.json["class"].as_u64().unwrap() as usize;
        let seed = move |logits: &Tensor<2>| Ok(one_hot(class, logits.dims()[1], &logits.device()));
        let sites = f.net.gate_sites([32, 32]).unwrap();
        let smooth: Vec<usize> = (0..sites.len())
            .filter(|&k| sites[k].activation != ActivationKind::Relu)
            .collect();
        assert!(!smooth.is_empty(), "{name}: smooth sites");
        for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
            let context = format!("{name} {granularity:?}");
            // Gates in [0.5, 1), fixed.
            let gates = GateSet::ones(sites.clone(), 1, granularity, &device).map(|g| {
                let n = g.dims()[1];
                let v: Vec<f32> = (0..n)
                    .map(|i| 0.5 + 0.5 * ((i * 37 % 101) as f32 / 101.0))
                    .collect();
                Tensor::from_data(TensorData::new(v, [1, n]), &device)
            });
            let ours = f
                .net
                .gate_gradients(f.input.clone(), &gates, &seed)
                .unwrap();
            let reference =
                autodiff_gate_gradients(&f.net, f.input.clone(), &gates, &seed).unwrap();
            for &k in &smooth {
                let (a, b) = (
                    values(ours.gradients[k].clone()),
                    values(reference.gradients[k].clone()),
                );
                let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "{context}: zero gate gradient at site {k}");
                let diff = max_abs_diff(&a, &b);
                assert!(
                    diff <= 1e-3 * scale,
                    "{context} site {k}: {diff} of {scale}"
                );
            }
            let fresh =
                || GateState::at_rest(GateSet::ones(sites.clone(), 1, granularity, &device));
            let moving = vec![true; sites.len()];
            let fused = f
                .net
                .step_gates(f.input.clone(), fresh(), &moving, &step, Seed::new(&seed))
                .unwrap();
            let after = step_by_gradients(
                &f.net,
                f.input.clone(),
                fresh(),
                &moving,
                &step,
                Seed::new(&seed),
            )
            .unwrap();
            assert!(fused.moved > 0.0, "{context}: moved");
            let (ga, gb) = (
                fused.state.gates.to_vecs().unwrap(),
                after.state.gates.to_vecs().unwrap(),
            );
            for &k in &smooth {
                assert!(
                    ga[k].iter().any(|&g| g != 1.0),
                    "{context}: the gates at site {k} ({:?}) did not move",
                    sites[k].activation
                );
                let diff = max_abs_diff(&ga[k], &gb[k]);
                assert!(
                    diff <= 1e-5,
                    "{context} site {k}: fused step differs by {diff}"
                );
            }
        }
    }
}

/// A 1x1 identity convolution, GELU as torch exports it (exact: both orders of the products;
/// tanh form: the cube by `Mul`s and by `Pow`), global average pooling and flatten, on the
/// EfficientNet fixture's input declaration: one gated GELU site, and the logits are the
/// channel means of `gelu(x)`.
#[test]
fn the_exported_gelu_is_fused_and_gated() {
    let device = Device::flex();
    let f = fixture("efficientnet_op13", &device);
    // (tanh form, cube by Pow, 0.5 first)
    let variants = [
        (false, false, false),
        (false, false, true),
        (true, false, false),
        (true, true, true),
    ];
    for (tanh, pow, half_first) in variants {
        let case = format!("tanh {tanh}, pow {pow}, half first {half_first}");
        let node = |op: &str, name: &str, inputs: &[&str], output: &str| {
            node(op, name, inputs, output, vec![])
        };
        let initializers = vec![
            tensor("sqrt2", vec![], vec![std::f32::consts::SQRT_2]),
            tensor("one", vec![], vec![1.0]),
            tensor("half", vec![], vec![0.5]),
            tensor("three", vec![], vec![3.0]),
            tensor("kappa", vec![], vec![0.044_715]),
            tensor("beta", vec![], vec![0.797_884_6]),
        ];
        let mut nodes = Vec::new();
        if tanh {
            if pow {
                nodes.push(node("Pow", "cube", &["h", "three"], "h3"));
            } else {
                nodes.push(node("Mul", "square", &["h", "h"], "h2"));
                nodes.push(node("Mul", "cube", &["h", "h2"], "h3"));
            }
            nodes.extend([
                node("Mul", "kappa_h3", &["kappa", "h3"], "k"),
                node("Add", "inner", &["h", "k"], "s"),
                node("Mul", "beta_s", &["beta", "s"], "b"),
                node("Tanh", "tanh", &["b"], "e"),
            ]);
        } else {
            nodes.extend([
                node("Div", "div", &["h", "sqrt2"], "d"),
                node("Erf", "erf", &["d"], "e"),
            ]);
        }
        nodes.push(node("Add", "add", &["one", "e"], "a"));
        if half_first {
            nodes.push(node("Mul", "half_x", &["half", "h"], "hx"));
            nodes.push(node("Mul", "gelu", &["a", "hx"], "g"));
        } else {
            nodes.push(node("Mul", "xa", &["h", "a"], "m"));
            nodes.push(node("Mul", "gelu", &["m", "half"], "g"));
        }
        let net =
            built_net(nodes, initializers, "g", &device).unwrap_or_else(|e| panic!("{case}: {e}"));
        let sites = net.gate_sites([32, 32]).unwrap();
        assert_eq!(sites.len(), 1, "{case}: one gate site");
        let (kind, named, gelu): (_, _, fn(Tensor<4>) -> Tensor<4>) = if tanh {
            (
                ActivationKind::GeluTanh,
                "tanh",
                activation::gelu_approximate,
            )
        } else {
            (ActivationKind::Gelu, "erf", activation::gelu)
        };
        assert_eq!(sites[0].activation, kind, "{case}");
        // onnx-ir names nodes by type and index: the site is named after the Erf or Tanh node.
        assert!(
            sites[0].name.starts_with(named),
            "{case}: {}",
            sites[0].name
        );
        let logits = values(net.forward(f.input.clone(), None).unwrap());
        let expected = values(
            gelu(f.input.clone())
                .mean_dim(3)
                .mean_dim(2)
                .reshape([1, 3]),
        );
        let diff = max_abs_diff(&logits, &expected);
        assert!(diff < 1e-5, "{case}: logits differ by {diff}");
    }
}

/// LeakyReLU, ELU, Mish and PReLU (one slope) each get a gate site of their kind, and the
/// logits are Burn's; ungated Sigmoid, Tanh and Softplus run without one; a PReLU slope per
/// channel loads as one (`tests/prelu.rs` checks its passes), a slope computed at run time is
/// refused with a typed error.
#[test]
fn the_other_activations_load_gated_or_not() {
    let device = Device::flex();
    let f = fixture("efficientnet_op13", &device);
    let nodes = vec![
        node(
            "LeakyRelu",
            "leaky",
            &["h"],
            "l",
            vec![float_attr("alpha", 0.1)],
        ),
        node("Elu", "elu", &["l"], "e", vec![float_attr("alpha", 0.7)]),
        node("Mish", "mish", &["e"], "m", vec![]),
        node("PRelu", "prelu", &["m", "slope"], "r", vec![]),
        node("Sigmoid", "sigmoid", &["r"], "s", vec![]),
        node("Tanh", "tanh", &["s"], "t", vec![]),
        node("Softplus", "softplus", &["t"], "o", vec![]),
    ];
    let slope = tensor("slope", vec![1], vec![0.25]);
    let net = built_net(nodes.clone(), vec![slope], "o", &device).expect("loads");
    let sites = net.gate_sites([32, 32]).unwrap();
    let kinds: Vec<ActivationKind> = sites.iter().map(|s| s.activation).collect();
    assert_eq!(
        kinds,
        [
            ActivationKind::LeakyRelu { alpha: 0.1 },
            ActivationKind::Elu { alpha: 0.7 },
            ActivationKind::Mish,
            ActivationKind::PRelu { slope: 0.25 },
        ]
    );
    let x = f.input.clone();
    let y = activation::leaky_relu(x, 0.1);
    let y = activation::elu(y, 0.7);
    let y = activation::mish(y);
    let y = activation::leaky_relu(y, 0.25);
    let y = activation::softplus(activation::sigmoid(y).tanh(), 1.0);
    let expected = values(y.mean_dim(3).mean_dim(2).reshape([1, 3]));
    let logits = values(net.forward(f.input.clone(), None).unwrap());
    let diff = max_abs_diff(&logits, &expected);
    assert!(diff < 1e-5, "logits differ by {diff}");
    // Every rule runs through the new gates.
    for rule in [ActivationRule::Guided, ActivationRule::Deconv] {
        let seed = one_hot(0, 3, &device);
        let out = net
            .backward(f.input.clone(), None, seed, rule, BackwardTarget::Input)
            .expect("backward");
        assert!(
            DynTensor::to_vec(&out.gradient)
                .unwrap()
                .iter()
                .any(|&v| v != 0.0)
        );
    }
    let per_channel = tensor("slope", vec![3, 1, 1], vec![0.1, 0.2, 0.3]);
    let net = built_net(nodes.clone(), vec![per_channel], "o", &device).expect("per channel");
    let sites = net.gate_sites([32, 32]).unwrap();
    assert_eq!(
        sites[3].activation,
        ActivationKind::PReluPerChannel { slopes: 3 }
    );
    // The slope computed at run time (from the activation itself) stays refused.
    let mut computed = nodes;
    computed.insert(3, node("Sigmoid", "slope_of_m", &["m"], "slope", vec![]));
    let err = built_net(computed, vec![], "o", &device).expect_err("refused");
    assert!(
        matches!(err, feedbacknet_onnx::OnnxError::UnsupportedConfig { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("computed at run time"), "{err}");
}
