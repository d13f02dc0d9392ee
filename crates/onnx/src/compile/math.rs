//! Element-wise functions: `Erf`, `Sqrt`, `Reciprocal`, `Exp`, `Neg`, `Abs` and `Pow`.

use onnx_ir::Node;

use super::builder::Compiler;
use crate::{
    error::Result,
    ops::{Op, UnaryOp},
};

/// An element-wise function of the node's input.
pub(super) fn unary(c: &mut Compiler, node: &Node, op: UnaryOp) -> Result<()> {
    c.unary(node, Op::Unary(op))
}

/// A power: a constant exponent (one value for all elements) as a scalar power, any other
/// exponent element by element with broadcasting.
pub(super) fn pow(c: &mut Compiler, node: &Node) -> Result<()> {
    if let Some(values) = c.constant_floats(node, 1)?
        && let Some(&p) = values.first()
        && values.iter().all(|&v| v == p)
    {
        return c.unary(node, Op::PowScalar(p));
    }
    c.nary(node, Op::Pow)
}
