//! `Relu`, `Clip` and `Softmax`. `Relu` and `Clip(0, max)` (ReLU6) get a gate site each.

use onnx_ir::{
    Node,
    node::{
        clip::{ClipConfig, ClipInput},
        softmax::SoftmaxConfig,
    },
};

use super::builder::{Compiler, unsupported};
use crate::{
    error::Result,
    ops::{Activation, Op},
};

/// A gated ReLU.
pub(super) fn relu(c: &mut Compiler, node: &Node) -> Result<()> {
    c.gated(node, Activation::Relu)
}

/// A clamp with constant bounds, gated when its lower bound is 0.
pub(super) fn clip(c: &mut Compiler, node: &Node, cfg: &ClipConfig) -> Result<()> {
    let min = clip_bound(node.name(), &cfg.min, f64::NEG_INFINITY)? as f32;
    let max = clip_bound(node.name(), &cfg.max, f64::INFINITY)? as f32;
    let act = Activation::Clip { min, max };
    if min == 0.0 {
        c.gated(node, act)
    } else {
        c.unary(node, Op::Activation(act))
    }
}

/// A constant bound of `Clip` (`default` when absent).
fn clip_bound(node: &str, bound: &Option<ClipInput>, default: f64) -> Result<f64> {
    match bound {
        None => Ok(default),
        Some(ClipInput::Static(v)) => Ok(*v),
        Some(ClipInput::Runtime(_)) => {
            Err(unsupported(node, "Clip", "min/max computed at run time"))
        }
    }
}

/// A softmax, skipped when it makes the graph output: saliency needs the class scores
/// before it.
pub(super) fn softmax(c: &mut Compiler, node: &Node, cfg: &SoftmaxConfig) -> Result<()> {
    let op = if c.writes_graph_output(node) {
        Op::Identity
    } else {
        Op::Softmax { axis: cfg.axis }
    };
    c.unary(node, op)
}
