//! The modern-architecture fixtures (`tests/fixtures/modern`, see its README): ShuffleNet v2,
//! ConvNeXt and ViT load, give onnxruntime's logits and PyTorch's input gradient; the
//! dynamic-batch ShuffleNet and ViT run a batch of two; the unsimplified ViTs load (their
//! constant index arithmetic folded first); a graph with several unsupported operators lists
//! them all.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{
    graph::{int_attr, node},
    max_abs_diff, pearson, values,
};
use feedbacknet_core::{
    ActivationRule, BackwardTarget, GateGranularity, GateSet, GatedNetwork,
    autodiff_gate_gradients, autodiff_input_gradient,
};
use feedbacknet_onnx::{OnnxError, OnnxNetwork};
use onnx_ir::{Message, ModelProto};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/modern/");

/// A fixture's ONNX bytes and its JSON reference.
fn fixture(name: &str) -> (Vec<u8>, Value) {
    let bytes = std::fs::read(format!("{FIXTURES}{name}.onnx")).expect("fixture model");
    let json = std::fs::read_to_string(format!("{FIXTURES}{name}.json")).expect("fixture json");
    (
        bytes,
        serde_json::from_str(&json).expect("fixture json parses"),
    )
}

fn floats(v: &Value, key: &str) -> Vec<f32> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is an array"))
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

fn input_of(v: &Value, device: &Device) -> Tensor<4> {
    let shape: Vec<usize> = v["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let shape: [usize; 4] = shape.try_into().expect("a 4-D input");
    Tensor::from_data(TensorData::new(floats(v, "input"), shape), device)
}

/// Loads `name`, checks its logits against onnxruntime's and its input gradient of the
/// reference class against PyTorch's; returns (logits max diff, gradient correlation).
fn check_fixture(name: &str) -> (f32, f64) {
    let device = Device::flex();
    let (bytes, reference) = fixture(name);
    let net =
        OnnxNetwork::from_bytes(&bytes, &device).unwrap_or_else(|e| panic!("{name} loads: {e}"));
    let x = input_of(&reference, &device);
    let expected = floats(&reference, "logits");
    let logits = values(net.forward(x.clone(), None).unwrap());
    let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&logits, &expected);
    assert!(
        logits.len() == expected.len() && diff <= 1e-4 * scale,
        "{name}: logits {logits:?} vs {expected:?} (max diff {diff})"
    );
    let class = reference["class"].as_u64().unwrap() as usize;
    let mut seed = vec![0.0; expected.len()];
    seed[class] = 1.0;
    let seed = Tensor::from_data(TensorData::new(seed, [1, expected.len()]), &device);
    let out = net
        .backward(
            x,
            None,
            seed,
            ActivationRule::Gradient,
            BackwardTarget::Input,
        )
        .unwrap_or_else(|e| panic!("{name} backward: {e}"));
    let gradient = values(out.gradient.into4("gradient").unwrap());
    let correlation = pearson(&gradient, &floats(&reference, "input_gradient"));
    assert!(
        correlation >= 0.999,
        "{name}: input gradient correlation {correlation}"
    );
    eprintln!("{name}: logits max diff {diff:e}, gradient correlation {correlation:.6}");
    (diff, correlation)
}

#[test]
fn shufflenet_v2_matches_onnxruntime_and_pytorch() {
    for name in [
        "shufflenet_v2_op13",
        "shufflenet_v2_op13_sim",
        "shufflenet_v2_op17_dynamic",
    ] {
        check_fixture(name);
    }
}

#[test]
fn convnext_matches_onnxruntime_and_pytorch() {
    for name in [
        "convnext_op13",
        "convnext_op13_sim",
        "convnext_op17",
        "convnext_op17_sim",
    ] {
        check_fixture(name);
    }
}

#[test]
fn simplified_vit_matches_onnxruntime_and_pytorch() {
    for name in ["vit_op14_sim", "vit_op17_sim"] {
        check_fixture(name);
    }
}

/// The dynamic-batch ShuffleNet computes its reshapes from run-time shapes: a batch of two
/// copies gives the reference logits twice.
#[test]
fn dynamic_shufflenet_runs_a_batch_of_two() {
    check_batch_of_two("shufflenet_v2_op17_dynamic");
}

/// Runs two copies of `name`'s reference input as one batch; both rows give its logits.
fn check_batch_of_two(name: &str) {
    let device = Device::flex();
    let (bytes, reference) = fixture(name);
    let net = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
    let x = input_of(&reference, &device);
    let batch = Tensor::cat(vec![x.clone(), x], 0);
    let logits = net.forward(batch, None).unwrap();
    assert_eq!(logits.dims(), [2, 10]);
    let expected = floats(&reference, "logits");
    let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for row in 0..2 {
        let got = values(logits.clone().narrow(0, row, 1));
        let diff = max_abs_diff(&got, &expected);
        assert!(
            diff <= 1e-4 * scale,
            "{name} row {row}: {got:?} vs {expected:?}"
        );
    }
}

/// Gate gradients of the gated ShuffleNets (a batch of two, half-open gates) equal autodiff's:
/// the run-time shape steps between the gates, the gate-free prefix (whose steps include a
/// `Shape` in the dynamic file) and the hand-written reverse pass agree with the plain forward
/// pass differentiated as a whole.
#[test]
fn shufflenet_gate_gradients_equal_autodiff() {
    let device = Device::flex();
    for name in ["shufflenet_v2_op13_sim", "shufflenet_v2_op17_dynamic"] {
        let (bytes, reference) = fixture(name);
        let net = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
        let one = input_of(&reference, &device);
        let x = Tensor::cat(vec![one.clone(), one.clone().flip([3])], 0);
        let sites = net.gate_sites([32, 32]).unwrap();
        assert_eq!(sites.len(), 9, "{name}: one gate per Relu");
        // Grad-CAM's layer: the map that the final ReduceMean pools (not a `Shape` read).
        let layer = net.feature_map_node().unwrap_or_default().to_string();
        assert!(layer.starts_with("relu"), "{name}: feature map at {layer}");
        let mut one_hot = vec![0.0; 10];
        one_hot[3] = 1.0;
        let seed = Tensor::from_data(TensorData::new(one_hot, [1, 10]), &device);
        let cam = net
            .backward(
                one.clone(),
                None,
                seed,
                ActivationRule::Gradient,
                BackwardTarget::FeatureMap,
            )
            .unwrap();
        assert_eq!(cam.gradient.dims(), [1, 64, 8, 8], "{name}");
        let gates =
            GateSet::ones(sites, 2, GateGranularity::Neuron, &device).map(|g| g.mul_scalar(0.75));
        let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
            let [batch, n] = logits.dims();
            let mut v = vec![0.0; batch * n];
            v[3] = 1.0;
            v[n + 7] = 1.0;
            Ok(Tensor::from_data(
                TensorData::new(v, [batch, n]),
                &logits.device(),
            ))
        };
        for _ in 0..2 {
            // The second round reads the gate-free prefix from the cache.
            let ours = net.gate_gradients(x.clone(), &gates, &seed).unwrap();
            let expected = autodiff_gate_gradients(&net, x.clone(), &gates, &seed).unwrap();
            let logits = max_abs_diff(&values(ours.logits), &values(expected.logits));
            assert!(logits < 1e-5, "{name}: logits differ by {logits}");
            for (k, (a, b)) in ours
                .gradients
                .into_iter()
                .zip(expected.gradients)
                .enumerate()
            {
                let (a, b) = (values(a), values(b));
                let r = pearson(&a, &b);
                assert!(r > 0.9999, "{name} site {k}: correlation {r}");
            }
        }
    }
}

/// The hand-written reverse pass equals autodiff through the whole network on every fixture
/// (ViT's attention, layer norms and class-token pick included).
#[test]
fn reverse_pass_equals_whole_network_autodiff() {
    let device = Device::flex();
    for name in [
        "shufflenet_v2_op17_dynamic",
        "convnext_op13",
        "vit_op17_sim",
        "maxvit_op17",
        "swin_op17",
    ] {
        let (bytes, reference) = fixture(name);
        let net = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
        let x = input_of(&reference, &device);
        let mut seed = vec![0.0; 10];
        seed[2] = 1.0;
        let seed = Tensor::from_data(TensorData::new(seed, [1, 10]), &device);
        let expected = autodiff_input_gradient(&net, x.clone(), None, seed.clone()).unwrap();
        let ours = net
            .backward(
                x,
                None,
                seed,
                ActivationRule::Gradient,
                BackwardTarget::Input,
            )
            .unwrap();
        let (a, b) = (
            values(ours.gradient.into4("ours").unwrap()),
            values(expected.gradient.into4("autodiff").unwrap()),
        );
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&a, &b);
        assert!(diff <= 1e-4 * scale, "{name}: max diff {diff} of {scale}");
    }
}

/// The unsimplified ViTs bound their reshape targets' `Slice`s with integer arithmetic on
/// constants; folded before parsing, they load and match onnxruntime and PyTorch.
#[test]
fn unsimplified_vit_matches_onnxruntime_and_pytorch() {
    for name in ["vit_op14", "vit_op17", "vit_op17_dynamic"] {
        check_fixture(name);
    }
}

/// The dynamic-batch ViT computes its reshape targets from run-time shapes: a batch of two
/// copies gives the reference logits twice.
#[test]
fn dynamic_vit_runs_a_batch_of_two() {
    check_batch_of_two("vit_op17_dynamic");
}

/// A reshape target whose slice bound is computed from a run-time shape is beyond the parser:
/// the error says so and tells the user to simplify the model.
#[test]
fn a_reshape_the_parser_cannot_type_is_refused_with_advice() {
    let (bytes, _) = fixture("vit_op17");
    let mut model = ModelProto::parse_from_bytes(&bytes).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let input = graph.input[0].name.clone();
    let modulo = graph.node.iter().position(|n| n.op_type == "Mod").unwrap();
    // The input's largest value, as an integer: a number known only at run time.
    let mut reduce = node("ReduceMax", "runtime_max", &[&input], "runtime_max", vec![]);
    reduce.attribute.push(int_attr("keepdims", 0));
    let cast = node(
        "Cast",
        "runtime_value",
        &["runtime_max"],
        "runtime_value",
        vec![int_attr("to", 7)],
    );
    graph.node.insert(modulo, cast);
    graph.node.insert(modulo, reduce);
    graph.node[modulo + 2].input[0] = "runtime_value".into();
    let err =
        OnnxNetwork::from_bytes(&model.write_to_bytes().unwrap(), &Device::flex()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, OnnxError::Parse { .. }), "{message}");
    assert!(message.contains("onnxsim"), "{message}");
    assert!(message.contains("Reshape"), "{message}");
}

/// Two different unsupported operators (three nodes) are all listed in one error.
#[test]
fn every_unsupported_operator_is_listed() {
    let (bytes, _) = fixture("convnext_op17_sim");
    let mut model = ModelProto::parse_from_bytes(&bytes).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let mut erfs = graph.node.iter_mut().filter(|n| n.op_type == "Erf");
    erfs.next().unwrap().op_type = "Sin".into();
    erfs.next().unwrap().op_type = "Cos".into();
    erfs.next().unwrap().op_type = "Sin".into();
    let err =
        OnnxNetwork::from_bytes(&model.write_to_bytes().unwrap(), &Device::flex()).unwrap_err();
    let message = err.to_string();
    match &err {
        OnnxError::UnsupportedOperators { ops, configs } => {
            assert!(configs.is_empty(), "{message}");
            let names: Vec<&str> = ops.iter().map(|(op, _)| op.as_str()).collect();
            assert_eq!(names, ["Sin", "Cos"], "{message}");
            assert_eq!(ops[0].1.len(), 2, "{message}");
            assert_eq!(ops[1].1.len(), 1, "{message}");
        }
        other => panic!("expected UnsupportedOperators, got {other}"),
    }
    assert!(
        message.starts_with("unsupported ONNX operators: Sin (nodes "),
        "{message}"
    );
    assert!(message.contains("Cos (node "), "{message}");
}

/// An unsupported configuration of a supported operator is listed beside the unsupported
/// operators; the nodes that read a refused node's output add nothing of their own.
#[test]
fn refused_configurations_are_listed_with_the_operators() {
    let (bytes, _) = fixture("convnext_op17_sim");
    let mut model = ModelProto::parse_from_bytes(&bytes).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let norm = graph
        .node
        .iter_mut()
        .find(|n| n.op_type == "LayerNormalization")
        .unwrap();
    // The training-mode outputs (mean, inverse deviation) are not run.
    norm.output.push("ln_mean".into());
    let erf = graph.node.iter_mut().find(|n| n.op_type == "Erf").unwrap();
    erf.op_type = "Sin".into();
    let err =
        OnnxNetwork::from_bytes(&model.write_to_bytes().unwrap(), &Device::flex()).unwrap_err();
    let message = err.to_string();
    match &err {
        OnnxError::UnsupportedOperators { ops, configs } => {
            assert_eq!(ops.len(), 1, "{message}");
            assert_eq!(ops[0].0, "Sin", "{message}");
            assert_eq!(configs.len(), 1, "{message}");
            assert!(configs[0].contains("LayerNormalization"), "{message}");
        }
        other => panic!("expected UnsupportedOperators, got {other}"),
    }
    assert!(
        message.contains("unsupported configurations: "),
        "{message}"
    );
}

/// The simplified ViT bakes batch 1 into its reshapes: a batch of two is an error, not a panic.
#[test]
fn simplified_vit_refuses_another_batch_with_an_error() {
    let device = Device::flex();
    let (bytes, reference) = fixture("vit_op17_sim");
    let net = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
    let x = input_of(&reference, &device);
    let result = net.forward(Tensor::cat(vec![x.clone(), x], 0), None);
    assert!(result.is_err());
}

/// MaxViT's relative attention runs as `Einsum` (`B G H I D, B G H J D -> B G H I J` and
/// back), simplified or not.
#[test]
fn maxvit_matches_onnxruntime_and_pytorch() {
    for name in ["maxvit_op17", "maxvit_op17_sim"] {
        check_fixture(name);
    }
}

/// Swin's shifted windows: the simplified file folds the attention mask into constants; the
/// unsimplified one builds it from shapes (`Range`, `Mod`, `Equal`, `Where`, `Not`,
/// `ScatterND`).
#[test]
fn swin_matches_onnxruntime_and_pytorch() {
    for name in ["swin_op17_sim", "swin_op17"] {
        check_fixture(name);
    }
}

/// Per-channel gates on token sequences (ViT's MLPs, `[tokens, features]` per sample) and on
/// channels-last maps (ConvNeXt's MLPs, `[H, W, 4C]`) have one gate per feature: a forward pass
/// with them equals one with the same value on every neuron of that feature, and the reverse
/// pass's gate gradients and solver step equal autodiff's and "gradients, then step".
#[test]
fn per_channel_gates_on_channels_last_activations_gate_each_feature() {
    let device = Device::flex();
    for name in ["vit_op17_sim", "convnext_op17_sim"] {
        let (bytes, reference) = fixture(name);
        let net = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
        let x = input_of(&reference, &device);
        let sites = net.gate_sites([32, 32]).unwrap();
        let last: Vec<_> = sites.iter().filter(|s| s.channel_axis > 0).collect();
        assert!(!last.is_empty(), "{name}: channels-last sites");
        for site in &last {
            assert_eq!(
                site.channel_axis,
                site.shape.len() - 1,
                "{name} {}",
                site.name
            );
            let count = site.gate_count(GateGranularity::Channel);
            assert_eq!(count, site.channels(), "{name} {}", site.name);
            assert_eq!(
                Some(&count),
                site.shape.last(),
                "{name} {}: one gate per feature",
                site.name
            );
        }
        // Per-channel gates 0.5 + 0.5·sin(k·c), and the same values spread over every neuron.
        let channel: Vec<Tensor<2>> = sites
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let c = s.gate_count(GateGranularity::Channel);
                let v: Vec<f32> = (0..c)
                    .map(|i| 0.5 + 0.5 * ((k + 1) as f32 * i as f32).sin())
                    .collect();
                Tensor::from_data(TensorData::new(v, [1, c]), &device)
            })
            .collect();
        let neuron: Vec<Tensor<2>> = sites
            .iter()
            .zip(&channel)
            .map(|(s, g)| {
                let per_channel = values(g.clone());
                let inner: usize = s.shape[s.channel_axis + 1..].iter().product();
                let v: Vec<f32> = (0..s.gate_count(GateGranularity::Neuron))
                    .map(|i| per_channel[(i / inner) % s.channels()])
                    .collect();
                Tensor::from_data(TensorData::new(v.clone(), [1, v.len()]), &device)
            })
            .collect();
        let by_channel =
            GateSet::from_values(sites.clone(), 1, GateGranularity::Channel, channel).unwrap();
        let by_neuron =
            GateSet::from_values(sites.clone(), 1, GateGranularity::Neuron, neuron).unwrap();
        let a = values(net.forward(x.clone(), Some(&by_channel)).unwrap());
        let b = values(net.forward(x.clone(), Some(&by_neuron)).unwrap());
        let plain = values(net.forward(x.clone(), None).unwrap());
        assert!(
            max_abs_diff(&a, &b) < 1e-5,
            "{name}: {}",
            max_abs_diff(&a, &b)
        );
        assert!(
            max_abs_diff(&a, &plain) > 1e-3,
            "{name}: the gates change the logits"
        );
        let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
            let [batch, n] = logits.dims();
            let mut v = vec![0.0; batch * n];
            v[3] = 1.0;
            Ok(Tensor::from_data(
                TensorData::new(v, [batch, n]),
                &logits.device(),
            ))
        };
        let ours = net.gate_gradients(x.clone(), &by_channel, &seed).unwrap();
        let expected = autodiff_gate_gradients(&net, x.clone(), &by_channel, &seed).unwrap();
        for (k, (a, b)) in ours
            .gradients
            .into_iter()
            .zip(expected.gradients)
            .enumerate()
        {
            assert_eq!(a.dims(), b.dims(), "{name} site {k}");
            let (a, b) = (values(a), values(b));
            let r = pearson(&a, &b);
            assert!(r > 0.9999, "{name} site {k}: correlation {r}");
        }
        let d = common::fused_step_difference(&net, &x, &by_channel, &seed);
        assert!(d < 1e-5, "{name}: the fused step differs by {d}");
    }
}
