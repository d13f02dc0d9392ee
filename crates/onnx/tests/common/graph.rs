//! ONNX graphs built in code for the activation tests: protobuf helpers and a small net on a
//! fixture's input declaration.

use std::path::PathBuf;

use burn::tensor::Device;
use feedbacknet_onnx::OnnxNetwork;
use onnx_ir::{AttributeProto, AttributeType, Message, ModelProto, NodeProto, TensorProto};

/// `tests/fixtures/modern` of the repository.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/modern"
    ))
}

/// A net built in code on the EfficientNet fixture's input declaration (opset 18): a 1x1
/// identity convolution `h`, then `nodes`, global average pooling and flatten to 3 logits.
pub fn built_net(
    nodes: Vec<NodeProto>,
    mut initializers: Vec<TensorProto>,
    last: &str,
    device: &Device,
) -> feedbacknet_onnx::Result<OnnxNetwork> {
    let base = std::fs::read(fixture_dir().join("efficientnet_op13.onnx")).unwrap();
    let mut model = ModelProto::parse_from_bytes(&base).unwrap();
    for opset in model.opset_import.iter_mut() {
        if opset.domain.is_empty() {
            opset.version = 18;
        }
    }
    let graph = model.graph.as_mut().unwrap();
    let input = graph.input[0].clone();
    let mut output = graph.output[0].clone();
    output
        .type_
        .mut_or_insert_default()
        .mut_tensor_type()
        .shape
        .mut_or_insert_default()
        .dim[1]
        .set_dim_value(3);
    let (x, y) = (input.name.clone(), output.name.clone());
    let identity = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    initializers.push(tensor("w", vec![3, 3, 1, 1], identity));
    graph.initializer = initializers;
    let mut all = vec![node("Conv", "conv", &[&x, "w"], "h", vec![])];
    all.extend(nodes);
    all.push(node("GlobalAveragePool", "gap", &[last], "p", vec![]));
    all.push(node("Flatten", "flat", &["p"], &y, vec![]));
    graph.node = all;
    graph.input = vec![input];
    graph.output = vec![output];
    graph.value_info.clear();
    OnnxNetwork::from_bytes(&model.write_to_bytes().unwrap(), device)
}

/// A float initializer.
pub fn tensor(name: &str, dims: Vec<i64>, data: Vec<f32>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims;
    t.data_type = 1;
    t.float_data = data;
    t
}

/// A node of one output.
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n.attribute = attrs;
    n
}

/// A float attribute.
pub fn float_attr(name: &str, value: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::FLOAT.into();
    a.f = value;
    a
}

/// An integer-list attribute.
pub fn ints_attr(name: &str, values: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    a
}

/// An integer attribute.
pub fn int_attr(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}
