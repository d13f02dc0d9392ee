//! `BatchNormalization` (folded into a per-channel affine map), `LRN` and
//! `LayerNormalization`.

use onnx_ir::{
    Node,
    node::{batch_norm::BatchNormConfig, layer_norm::LayerNormConfig, lrn::LrnConfig},
};

use super::builder::{Compiler, unsupported};
use crate::{error::Result, ops::Op};

/// Inference-mode batch normalization as `x · scale + shift` per channel.
pub(super) fn batch_norm(c: &mut Compiler, node: &Node, cfg: &BatchNormConfig) -> Result<()> {
    let BatchNormConfig::Static(cfg) = cfg else {
        return Err(unsupported(
            node.name(),
            "BatchNormalization",
            "statistics computed at run time",
        ));
    };
    let gamma = c.required_weight::<1>(node, 1)?;
    let beta = c.required_weight::<1>(node, 2)?;
    let mean = c.required_weight::<1>(node, 3)?;
    let var = c.required_weight::<1>(node, 4)?;
    let scale = gamma.div(var.add_scalar(cfg.epsilon).sqrt());
    let shift = beta.sub(mean.mul(scale.clone()));
    c.unary(node, Op::ChannelAffine { scale, shift })
}

/// Local response normalization across channels.
pub(super) fn lrn(c: &mut Compiler, node: &Node, cfg: &LrnConfig) -> Result<()> {
    if cfg.size < 1 {
        return Err(unsupported(node.name(), "LRN", "size < 1"));
    }
    let op = Op::Lrn {
        size: cfg.size as usize,
        alpha: cfg.alpha,
        beta: cfg.beta,
        bias: cfg.bias,
    };
    c.unary(node, op)
}

/// Layer normalization over the axes from `axis` on, with constant scale and bias.
pub(super) fn layer_norm(c: &mut Compiler, node: &Node, cfg: &LayerNormConfig) -> Result<()> {
    if node.outputs().iter().skip(1).any(|o| !o.name.is_empty()) {
        return Err(unsupported(
            node.name(),
            "LayerNormalization",
            "the mean and inverse deviation outputs (training mode)",
        ));
    }
    let op = Op::LayerNorm {
        axis: cfg.axis,
        epsilon: cfg.epsilon as f32,
        scale: c.constant(node, 1)?,
        bias: c.constant(node, 2)?,
    };
    c.unary(node, op)
}
