//! Steps that move values rather than compute them: `Concat`, `Flatten`, `Reshape`, `Pad`.

use burn::tensor::ops::PadMode;
use onnx_ir::{
    Node,
    node::{
        concat::ConcatConfig,
        flatten::FlattenConfig,
        pad::{ConstantValueInput, PadConfig, PadInput, PadMode as OnnxPadMode},
        reshape::{ReshapeConfig, ReshapeInput},
    },
};

use super::builder::{Compiler, unsupported};
use crate::{error::Result, ops::Op};

/// The node's inputs joined along one axis.
pub(super) fn concat(c: &mut Compiler, node: &Node, cfg: &ConcatConfig) -> Result<()> {
    c.nary(node, Op::Concat { axis: cfg.axis })
}

/// The axes from `axis` on folded into one, the axes before it into another.
pub(super) fn flatten(c: &mut Compiler, node: &Node, cfg: &FlattenConfig) -> Result<()> {
    c.unary(node, Op::Flatten { axis: cfg.axis })
}

/// A reshape to a constant target shape.
pub(super) fn reshape(c: &mut Compiler, node: &Node, cfg: &ReshapeConfig) -> Result<()> {
    match &cfg.shape {
        ReshapeInput::Static(shape) => c.unary(
            node,
            Op::Reshape {
                shape: shape.clone(),
            },
        ),
        ReshapeInput::Runtime(_) => Err(unsupported(
            node.name(),
            "Reshape",
            "target shape computed at run time (simplify the model, e.g. with onnxsim)",
        )),
    }
}

/// Constant, reflect or edge padding with constant pads (`fold` may merge a zero pad into
/// the convolution that reads it).
pub(super) fn pad(c: &mut Compiler, node: &Node, cfg: &PadConfig) -> Result<()> {
    let name = node.name();
    let PadInput::Static(pads) = &cfg.pads else {
        return Err(unsupported(name, "Pad", "pads computed at run time"));
    };
    let mode = match (&cfg.mode, &cfg.constant_value) {
        (OnnxPadMode::Constant, ConstantValueInput::Static(v)) => PadMode::Constant(*v),
        (OnnxPadMode::Constant, ConstantValueInput::Runtime(_)) => {
            return Err(unsupported(name, "Pad", "pad value computed at run time"));
        }
        (OnnxPadMode::Reflect, _) => PadMode::Reflect,
        (OnnxPadMode::Edge, _) => PadMode::Edge,
    };
    let pads = pads.clone();
    c.unary(node, Op::Pad { pads, mode })
}
