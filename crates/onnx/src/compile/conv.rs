//! `Conv` (2-D): a convolution with constant weights.

use burn::tensor::ops::ConvOptions;
use onnx_ir::{Node, node::conv2d::Conv2dConfig};

use super::{
    builder::{Compiler, unsupported},
    window::{check_positive, explicit_pads, padding_pairs},
};
use crate::{error::Result, ops::Op};

/// A 2-D convolution, its fast-path weights prepared (see [`Op::conv2d`]).
pub(super) fn conv2d(c: &mut Compiler, node: &Node, cfg: &Conv2dConfig) -> Result<()> {
    let name = node.name();
    let reason = "auto_pad SAME_* (export with explicit pads)";
    explicit_pads(name, "Conv", &cfg.auto_pad, reason)?;
    check_positive(name, "Conv", &[cfg.stride, cfg.dilation, cfg.kernel_size])?;
    if cfg.groups == 0 {
        return Err(unsupported(name, "Conv", "group = 0"));
    }
    let weight = c.required_weight::<4>(node, 1)?;
    if weight.dims().contains(&0) {
        let reason = format!("a weight of shape {:?} (an empty axis)", weight.dims());
        return Err(unsupported(name, "Conv", reason));
    }
    let bias = c.weight::<1>(node, 2)?;
    let padding = padding_pairs(&cfg.padding);
    let options = ConvOptions::new_with_padding(cfg.stride, padding, cfg.dilation, cfg.groups);
    c.unary(node, Op::conv2d(weight, bias, options))
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use onnx_ir::{Message, ModelProto};

    use crate::{OnnxError, OnnxNetwork};

    #[test]
    fn a_convolution_weight_with_an_empty_axis_is_refused() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/models/squeezenet1.1.onnx"
        );
        let mut model =
            ModelProto::parse_from_bytes(&std::fs::read(path).expect("the shared SqueezeNet"))
                .expect("a model");
        let graph = model.graph.as_mut().expect("a graph");
        let stem = graph.node.first().expect("a node").input[1].clone();
        let weight = (graph.initializer.iter_mut())
            .find(|t| t.name == stem)
            .expect("the stem's weight");
        // 64 × 3 × 0 × 3: no values at all.
        weight.dims = vec![64, 3, 0, 3];
        weight.raw_data = Default::default();
        weight.float_data.clear();
        let bytes = model.write_to_bytes().expect("written");
        let err = OnnxNetwork::from_bytes(&bytes, &Device::flex()).expect_err("refused");
        assert!(
            matches!(&err, OnnxError::UnsupportedConfig { reason, .. } if reason.contains("empty axis")),
            "{err}"
        );
    }
}
