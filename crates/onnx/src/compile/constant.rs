//! `Constant`: no step; its output names a constant slot.

use onnx_ir::Node;

use super::builder::Compiler;
use crate::error::{OnnxError, Result};

/// Binds the node's output name to a constant slot holding its value.
pub(super) fn constant(c: &mut Compiler, node: &Node) -> Result<()> {
    let name = node.name();
    let arg = node
        .inputs()
        .first()
        .ok_or_else(|| OnnxError::InvalidGraph(format!("constant `{name}` has no value")))?;
    let slot = c.input_slot(arg, name)?;
    let out = node
        .outputs()
        .first()
        .ok_or_else(|| OnnxError::InvalidGraph(format!("constant `{name}` has no output")))?;
    c.alias(&out.name, slot);
    Ok(())
}
