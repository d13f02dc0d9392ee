//! The activations and `Softmax`. Every activation whose output is a "unit" of the net gets a
//! gate site: `Relu`, `Clip(0, max)` (ReLU6), `Gelu` (both forms), `HardSwish`, `LeakyRelu`,
//! `Elu`, `Mish`, `PRelu` (a constant slope: one for all channels, or one per channel),
//! `Swish` (alpha 1, i.e. SiLU), and the
//! SiLU, HardSwish and GELU that `fuse` finds in their exported patterns. `Sigmoid`,
//! `HardSigmoid`, `Tanh`, `Softplus` and `Clip` with another lower bound run ungated: nets use
//! them inside blocks (squeeze-and-excitation scales, attention), not as their units.

use onnx_ir::{
    Node,
    node::{
        clip::{ClipConfig, ClipInput},
        elu::EluConfig,
        gelu::{GeluApproximate, GeluConfig},
        hard_sigmoid::HardSigmoidConfig,
        leaky_relu::LeakyReluConfig,
        softmax::SoftmaxConfig,
        swish::SwishConfig,
    },
};

use super::builder::{Compiler, unsupported};
use crate::{
    error::Result,
    ops::{Activation, Op, PReluSlopes},
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

/// A gated GELU, exact (`Erf`) or tanh-approximated.
pub(super) fn gelu(c: &mut Compiler, node: &Node, cfg: &GeluConfig) -> Result<()> {
    let act = match cfg.approximate {
        GeluApproximate::Exact => Activation::GeluErf,
        GeluApproximate::Tanh => Activation::GeluTanh,
    };
    c.gated(node, act)
}

/// A gated `x·σ(alpha·x)`: SiLU when `alpha` is 1 (the only form run).
pub(super) fn swish(c: &mut Compiler, node: &Node, cfg: &SwishConfig) -> Result<()> {
    if cfg.alpha != 1.0 {
        return Err(unsupported(
            node.name(),
            "Swish",
            format!("alpha {} (only 1, SiLU, is run)", cfg.alpha),
        ));
    }
    c.gated(node, Activation::Silu)
}

/// A gated LeakyReLU.
pub(super) fn leaky_relu(c: &mut Compiler, node: &Node, cfg: &LeakyReluConfig) -> Result<()> {
    let alpha = cfg.alpha as f32;
    c.gated(node, Activation::LeakyRelu { alpha })
}

/// A gated ELU.
pub(super) fn elu(c: &mut Compiler, node: &Node, cfg: &EluConfig) -> Result<()> {
    let alpha = cfg.alpha as f32;
    c.gated(node, Activation::Elu { alpha })
}

/// A gated PReLU of a constant slope: the scalar activation where every value is equal (a
/// single value, or one per channel all alike: the flex fast paths), [`PReluSlopes`] where the
/// slope differs per channel (ONNX broadcasting, checked against the activation when it runs).
/// A slope computed at run time is refused.
pub(super) fn prelu(c: &mut Compiler, node: &Node) -> Result<()> {
    let refuse = |reason: &str| unsupported(node.name(), "PRelu", reason);
    let slope = c
        .constant(node, 1)?
        .ok_or_else(|| refuse("the slope is missing"))?;
    let values = slope.to_vec()?;
    let first = *values.first().ok_or_else(|| refuse("the slope is empty"))?;
    if values.iter().all(|&s| s == first) {
        c.gated(node, Activation::PRelu { slope: first })
    } else {
        c.gated_op(node, Op::PRelu(PReluSlopes::new(slope)))
    }
}

/// An ungated `HardSigmoid` (a squeeze-and-excitation scale; with `Mul(x, ·)` on its own input
/// it is a HardSwish, which `fuse` gates).
pub(super) fn hard_sigmoid(c: &mut Compiler, node: &Node, cfg: &HardSigmoidConfig) -> Result<()> {
    let (alpha, beta) = (cfg.alpha as f32, cfg.beta as f32);
    c.unary(
        node,
        Op::Activation(Activation::HardSigmoid { alpha, beta }),
    )
}

/// A gated HardSwish.
pub(super) fn hard_swish(c: &mut Compiler, node: &Node) -> Result<()> {
    c.gated(node, Activation::HardSwish)
}

/// A gated Mish.
pub(super) fn mish(c: &mut Compiler, node: &Node) -> Result<()> {
    c.gated(node, Activation::Mish)
}

/// An activation without a gate (`Sigmoid`, `Tanh`, `Softplus`).
pub(super) fn ungated(c: &mut Compiler, node: &Node, act: Activation) -> Result<()> {
    c.unary(node, Op::Activation(act))
}
