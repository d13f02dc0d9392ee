//! Element by element: `Add`, `Sub`, `Mul`, `Div` (broadcasting; `Div` of integers
//! truncates) and the inference-time identities `Identity` and `Dropout`.

use feedbacknet_core::BinaryOp;
use onnx_ir::{ArgType, Node};

use super::builder::Compiler;
use crate::{error::Result, ops::Op};

/// A broadcasting binary operation over the node's two inputs.
pub(super) fn binary(c: &mut Compiler, node: &Node, op: BinaryOp) -> Result<()> {
    c.nary(node, Op::Binary(op))
}

/// A step that passes its input on (`Identity`, and `Dropout` at inference).
pub(super) fn identity(c: &mut Compiler, node: &Node) -> Result<()> {
    c.unary(node, Op::Identity)
}

/// A division: of floats, or of integers (shape arithmetic), truncated toward zero.
pub(super) fn divide(c: &mut Compiler, node: &Node) -> Result<()> {
    let integer = node.outputs().first().is_some_and(|o| match &o.ty {
        ArgType::Shape(_) => true,
        ty => ty.elem_type().is_int(),
    });
    if integer {
        c.nary(node, Op::IntDiv)
    } else {
        binary(c, node, BinaryOp::Div)
    }
}
