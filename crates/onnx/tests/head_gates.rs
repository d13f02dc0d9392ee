//! One gate per attention head (`GatePlacement::AttentionHeads`) on the ViT fixtures: the sites
//! are there, open gates change nothing, a closed gate silences exactly its head (checked
//! against the ONNX graph with that head's output multiplied by 0), the gate gradients equal
//! autodiff's, and no backward rule is changed at a head gate.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{
    graph::{node, tensor},
    max_abs_diff, values,
};
use feedbacknet_core::{
    ActivationKind, ActivationRule, BackwardTarget, GateGranularity, GateSet, GatedNetwork,
    autodiff_gate_gradients,
};
use feedbacknet_onnx::{GatePlacement, OnnxNetwork};
use onnx_ir::{Message, ModelProto};
use serde_json::Value;

/// A fixture's ONNX bytes and its reference input (`[1, 3, 32, 32]`).
fn fixture(name: &str, device: &Device) -> (Vec<u8>, Tensor<4>) {
    let dir = common::graph::fixture_dir();
    let bytes = std::fs::read(dir.join(format!("{name}.onnx"))).expect("fixture model");
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("fixture json");
    let reference: Value = serde_json::from_str(&json).expect("fixture json parses");
    let input: Vec<f32> = (reference["input"].as_array().expect("an input").iter())
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect();
    let x = Tensor::from_data(TensorData::new(input, [1, 3, 32, 32]), device);
    (bytes, x)
}

fn with_heads(bytes: &[u8], device: &Device) -> OnnxNetwork {
    OnnxNetwork::from_bytes_with(bytes, device, GatePlacement::AttentionHeads).expect("loads")
}

/// Both ViT layers get a head site `[2 heads, 17 tokens, 24]` before their GELU, with two
/// gates per sample at either granularity; the default placement has the GELUs alone.
#[test]
fn each_attention_gets_one_gate_per_head() {
    let device = Device::flex();
    for name in ["vit_op17_sim", "vit_op17", "vit_op14"] {
        let (bytes, _) = fixture(name, &device);
        let plain = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
        assert_eq!(plain.gate_sites([32, 32]).unwrap().len(), 2, "{name}");
        let net = with_heads(&bytes, &device);
        let sites = net.gate_sites([32, 32]).unwrap();
        let kinds: Vec<ActivationKind> = sites.iter().map(|s| s.activation).collect();
        use ActivationKind::{AttentionHeads as Heads, Gelu};
        assert_eq!(kinds, [Heads, Gelu, Heads, Gelu], "{name}");
        for site in sites.iter().filter(|s| s.activation == Heads) {
            assert_eq!(site.shape, [2, 17, 24], "{name}");
            assert_eq!(site.gate_count(GateGranularity::Neuron), 2, "{name}");
            assert_eq!(site.gate_count(GateGranularity::Channel), 2, "{name}");
        }
    }
}

/// The ViT with the output of layer 0's first head multiplied by 0 in the graph itself
/// (PyTorch's export keeps the heads on the leading axis of `[heads, tokens, 24]` there).
fn first_head_silenced(bytes: &[u8]) -> Vec<u8> {
    let mut model = ModelProto::parse_from_bytes(bytes).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let product = "/encoder/layers/encoder_layer_0/self_attention/MatMul_2";
    let at = graph.node.iter().position(|n| n.name == product).unwrap();
    let out = graph.node[at].output[0].clone();
    graph
        .initializer
        .push(tensor("head_mask", vec![2, 1, 1], vec![0.0, 1.0]));
    let silenced = format!("{out}_silenced");
    for n in graph.node.iter_mut().skip(at + 1) {
        for input in n.input.iter_mut().filter(|i| **i == out) {
            input.clone_from(&silenced);
        }
    }
    let mask = node(
        "Mul",
        "silence_head",
        &[&out, "head_mask"],
        &silenced,
        vec![],
    );
    graph.node.insert(at + 1, mask);
    model.write_to_bytes().unwrap()
}

#[test]
fn open_gates_change_nothing_and_a_closed_gate_silences_its_head() {
    let device = Device::flex();
    let (bytes, x) = fixture("vit_op17_sim", &device);
    let plain = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
    let net = with_heads(&bytes, &device);
    let sites = net.gate_sites([32, 32]).unwrap();
    let expected = values(plain.forward(x.clone(), None).unwrap());
    let open = GateSet::ones(sites.clone(), 1, GateGranularity::Neuron, &device);
    let logits = values(net.forward(x.clone(), Some(&open)).unwrap());
    assert!(max_abs_diff(&logits, &expected) < 1e-5, "{logits:?}");

    let mut gates: Vec<Tensor<2>> = open.values().to_vec();
    gates[0] = Tensor::from_data(TensorData::new(vec![0.0, 1.0], [1, 2]), &device);
    let closed = GateSet::from_values(sites, 1, GateGranularity::Neuron, gates).unwrap();
    let ours = values(net.forward(x.clone(), Some(&closed)).unwrap());
    let silenced = OnnxNetwork::from_bytes(&first_head_silenced(&bytes), &device).unwrap();
    let reference = values(silenced.forward(x, None).unwrap());
    let moved = max_abs_diff(&reference, &expected);
    assert!(moved > 1e-3, "silencing a head moves the logits ({moved})");
    let diff = max_abs_diff(&ours, &reference);
    assert!(diff < 1e-4, "{ours:?} vs {reference:?}");
}

/// Swin (heads of windows `[windows, heads, tokens, size]`, one attention fused by onnx-ir,
/// one a `MatMul` of softmax weights) and MaxViT (`Einsum` of softmax weights, `[grid, heads,
/// tokens, size]`) get one gate per head on every attention, on the heads' axis.
#[test]
fn windowed_attention_gets_its_heads_gated() {
    let device = Device::flex();
    for (name, attentions, shape) in [
        ("swin_op17_sim", 2, vec![4, 2, 16, 8]),
        ("swin_op17", 2, vec![4, 2, 16, 8]),
        ("maxvit_op17", 2, vec![16, 2, 4, 8]),
    ] {
        let (bytes, _) = fixture(name, &device);
        let plain = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
        let plain_sites = plain.gate_sites([32, 32]).unwrap().len();
        let sites = with_heads(&bytes, &device).gate_sites([32, 32]).unwrap();
        let heads: Vec<_> = (sites.iter())
            .filter(|s| s.activation == ActivationKind::AttentionHeads)
            .collect();
        assert_eq!(heads.len(), attentions, "{name}");
        assert_eq!(sites.len(), plain_sites + attentions, "{name}");
        for site in heads {
            assert_eq!(site.shape, shape, "{name} {}", site.name);
            assert_eq!(site.channel_axis, shape.len() - 3, "{name}");
            assert_eq!(site.gate_count(GateGranularity::Neuron), 2, "{name}");
        }
    }
}

/// Half-open gates: the hand-written reverse pass's gate gradients (head sites included)
/// equal autodiff's through the whole network, and the solver step fused into the reverse
/// pass equals the step taken on those gradients, at either granularity (ViT on a batch of
/// two; Swin and MaxViT, whose heads are not the first per-sample axis).
#[test]
fn head_gate_gradients_equal_autodiff() {
    let device = Device::flex();
    for name in ["vit_op17_dynamic", "swin_op17", "maxvit_op17"] {
        let (bytes, one) = fixture(name, &device);
        let net = with_heads(&bytes, &device);
        let x = match name {
            "vit_op17_dynamic" => Tensor::cat(vec![one.clone(), one.flip([3])], 0),
            _ => one,
        };
        check_gradients_and_step(&net, &x, name);
    }
}

fn check_gradients_and_step(net: &OnnxNetwork, x: &Tensor<4>, name: &str) {
    let device = x.device();
    let batch = x.dims()[0];
    for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
        let sites = net.gate_sites([32, 32]).unwrap();
        let gates = GateSet::ones(sites, batch, granularity, &device).map(|g| g.mul_scalar(0.6));
        let seed = |logits: &Tensor<2>| -> feedbacknet_core::Result<Tensor<2>> {
            let [batch, n] = logits.dims();
            let mut v = vec![0.0; batch * n];
            v[2] = 1.0;
            if batch > 1 {
                v[n + 5] = 1.0;
            }
            Ok(Tensor::from_data(
                TensorData::new(v, [batch, n]),
                &logits.device(),
            ))
        };
        let ours = net.gate_gradients(x.clone(), &gates, &seed).unwrap();
        let expected = autodiff_gate_gradients(net, x.clone(), &gates, &seed).unwrap();
        for (k, (a, b)) in ours
            .gradients
            .into_iter()
            .zip(expected.gradients)
            .enumerate()
        {
            assert_eq!(a.dims(), b.dims(), "site {k}");
            let (a, b) = (values(a), values(b));
            let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(&a, &b);
            assert!(
                diff <= 1e-4 * scale,
                "{name} {granularity:?} site {k}: {diff} of {scale}"
            );
        }
        let d = common::fused_step_difference(net, x, &gates, &seed);
        assert!(
            d < 1e-5,
            "{name} {granularity:?}: the fused step differs by {d}"
        );
    }
}

/// Guided backprop and DeconvNet modify activations: the head gates (open) leave both maps
/// exactly as the default placement gives them.
#[test]
fn head_gates_leave_the_backward_rules_alone() {
    let device = Device::flex();
    let (bytes, x) = fixture("vit_op17_sim", &device);
    let plain = OnnxNetwork::from_bytes(&bytes, &device).unwrap();
    let net = with_heads(&bytes, &device);
    let seed = Tensor::from_data(
        TensorData::new(
            vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1, 10],
        ),
        &device,
    );
    for rule in [ActivationRule::Guided, ActivationRule::Deconv] {
        let map = |n: &OnnxNetwork| {
            let out = n.backward(x.clone(), None, seed.clone(), rule, BackwardTarget::Input);
            values(out.unwrap().gradient.into4("map").unwrap())
        };
        let (a, b) = (map(&net), map(&plain));
        let scale = b.iter().fold(1e-9f32, |m, v| m.max(v.abs()));
        assert!(max_abs_diff(&a, &b) <= 1e-5 * scale, "{rule:?}");
    }
}

/// On Swin, whose heads are the second axis of `[windows, heads, tokens, size]`, a closed gate
/// zeroes its head in every window and leaves the other head as the open gate has it.
#[test]
fn a_closed_swin_gate_zeroes_its_head_in_every_window() {
    let device = Device::flex();
    let (bytes, x) = fixture("swin_op17", &device);
    let net = with_heads(&bytes, &device);
    let sites = net.gate_sites([32, 32]).unwrap();
    let k = (sites.iter())
        .position(|s| s.activation == ActivationKind::AttentionHeads)
        .unwrap();
    let open = GateSet::ones(sites.clone(), 1, GateGranularity::Neuron, &device);
    let mut gates = open.values().to_vec();
    gates[k] = Tensor::from_data(TensorData::new(vec![0.0, 1.0], [1, 2]), &device);
    let closed = GateSet::from_values(sites, 1, GateGranularity::Neuron, gates).unwrap();
    let seed = Tensor::from_data(TensorData::new(vec![1.0; 10], [1, 10]), &device);
    let at_site = |gates: &GateSet| {
        let out = net.backward(
            x.clone(),
            Some(gates),
            seed.clone(),
            ActivationRule::Gradient,
            BackwardTarget::Site(k),
        );
        let activation = out.unwrap().activation.expect("the site's activation");
        assert_eq!(activation.dims(), [4, 2, 16, 8]);
        activation.into4("heads").unwrap()
    };
    let (open, closed) = (at_site(&open), at_site(&closed));
    let head = |t: &Tensor<4>, h: usize| values(t.clone().narrow(1, h, 1));
    assert!(head(&closed, 0).iter().all(|&v| v == 0.0));
    assert!(head(&open, 0).iter().any(|&v| v != 0.0));
    assert_eq!(head(&closed, 1), head(&open, 1));
}
