//! `Conv` (2-D): a convolution with constant weights.

use burn::tensor::ops::ConvOptions;
use onnx_ir::{Node, node::conv2d::Conv2dConfig};

use super::{
    builder::{Compiler, unsupported},
    window::{check_positive, explicit_pads, padding_pairs},
};
use crate::{conv_weights::conv_op, error::Result};

/// A 2-D convolution, its fast-path weights prepared (see [`conv_op`]).
pub(super) fn conv2d(c: &mut Compiler, node: &Node, cfg: &Conv2dConfig) -> Result<()> {
    let name = node.name();
    let reason = "auto_pad SAME_* (export with explicit pads)";
    explicit_pads(name, "Conv", &cfg.auto_pad, reason)?;
    check_positive(name, "Conv", &[cfg.stride, cfg.dilation, cfg.kernel_size])?;
    if cfg.groups == 0 {
        return Err(unsupported(name, "Conv", "group = 0"));
    }
    let weight = c.required_weight::<4>(node, 1)?;
    let bias = c.weight::<1>(node, 2)?;
    let padding = padding_pairs(&cfg.padding);
    let options = ConvOptions::new_with_padding(cfg.stride, padding, cfg.dilation, cfg.groups);
    c.unary(node, conv_op(weight, bias, options))
}
