//! `BatchNormalization` (folded into a per-channel affine map) and `LRN`.

use onnx_ir::{
    Node,
    node::{batch_norm::BatchNormConfig, lrn::LrnConfig},
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
