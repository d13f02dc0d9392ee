//! Element by element: `Add`, `Sub`, `Mul`, `Div` (broadcasting) and the inference-time
//! identities `Identity` and `Dropout`.

use feedbacknet_core::BinaryOp;
use onnx_ir::Node;

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
