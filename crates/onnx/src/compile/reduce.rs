//! Reductions: `ReduceMean`, `ReduceSum`, `ReduceMax`, `ReduceL2` over constant axes.

use onnx_ir::{
    Node,
    node::reduce::{ReduceAxes, ReduceConfig},
};

use super::builder::{Compiler, unsupported};
use crate::{
    error::Result,
    ops::{Op, ReduceKind},
};

/// A reduction over constant axes (all axes when none are given).
pub(super) fn reduce(
    c: &mut Compiler,
    node: &Node,
    cfg: &ReduceConfig,
    kind: ReduceKind,
) -> Result<()> {
    let op_name = node.node_type().to_string();
    let axes: Vec<i64> = match &cfg.axes {
        ReduceAxes::Static(axes) => axes.iter().map(|&a| a as i64).collect(),
        ReduceAxes::Runtime(_) => {
            return Err(unsupported(
                node.name(),
                &op_name,
                "axes computed at run time",
            ));
        }
    };
    if axes.is_empty() && cfg.noop_with_empty_axes {
        return c.unary(node, Op::Identity);
    }
    let op = Op::Reduce {
        kind,
        axes,
        keepdims: cfg.keepdims,
    };
    c.unary(node, op)
}
