//! Masks and index arithmetic: `Einsum` (two operands), `Equal`, `Not`, `Where`, `Mod`,
//! `Range` and `ScatterND`. Booleans are floats 0 and 1 (see `ops/logic.rs`).

use onnx_ir::{
    Node,
    node::{
        einsum::EinsumConfig,
        modulo::ModConfig,
        range::{RangeConfig, RangeInput},
        scatter_nd::{ScatterNDConfig, ScatterNDReduction},
    },
};

use super::builder::{Compiler, unsupported};
use crate::{
    error::Result,
    ops::{Ints, Op, einsum},
};

/// A two-operand Einstein summation (see `ops/einsum.rs` for the forms that run).
pub(super) fn einsum(c: &mut Compiler, node: &Node, cfg: &EinsumConfig) -> Result<()> {
    let plan = einsum::plan(&cfg.equation)
        .map_err(|why| unsupported(node.name(), "Einsum", format!("`{}`: {why}", cfg.equation)))?;
    let ranks: Vec<usize> = node.inputs().iter().map(|a| a.ty.rank()).collect();
    if ranks != [plan.perm_a.len(), plan.perm_b.len()] {
        return Err(unsupported(
            node.name(),
            "Einsum",
            format!("`{}` over operands of ranks {ranks:?}", cfg.equation),
        ));
    }
    c.nary(node, Op::Einsum(plan))
}

/// A broadcasting equality test (1 or 0).
pub(super) fn equal(c: &mut Compiler, node: &Node) -> Result<()> {
    c.nary(node, Op::Equal)
}

/// A logical negation of a 0/1 input.
pub(super) fn not(c: &mut Compiler, node: &Node) -> Result<()> {
    c.unary(node, Op::Not)
}

/// A pick between two inputs by a condition.
pub(super) fn where_(c: &mut Compiler, node: &Node) -> Result<()> {
    c.nary(node, Op::Where)
}

/// A remainder (integer or `fmod`).
pub(super) fn modulo(c: &mut Compiler, node: &Node, cfg: &ModConfig) -> Result<()> {
    c.nary(node, Op::Mod { fmod: cfg.fmod })
}

/// An integer range: a constant if all three bounds are, a step reading the others otherwise.
pub(super) fn range(c: &mut Compiler, node: &Node, cfg: &RangeConfig) -> Result<()> {
    let mut inputs = Vec::new();
    let mut bound = |c: &mut Compiler, b: &RangeInput| -> Result<Ints> {
        Ok(match b {
            RangeInput::Static(v) => Ints::Static(vec![*v]),
            RangeInput::StaticFloat(v) if v.fract() == 0.0 => Ints::Static(vec![*v as i64]),
            RangeInput::StaticFloat(v) => {
                return Err(unsupported(
                    node.name(),
                    "Range",
                    format!("a fractional bound {v} (integer ranges run)"),
                ));
            }
            RangeInput::Runtime(r) => {
                inputs.push(c.slot_of(node, r.input_index)?);
                Ints::Input(inputs.len() - 1)
            }
        })
    };
    let bounds = [
        bound(c, &cfg.start)?,
        bound(c, &cfg.limit)?,
        bound(c, &cfg.delta)?,
    ];
    let float_out = node
        .outputs()
        .first()
        .is_some_and(|o| o.ty.elem_type().is_float());
    if float_out && !inputs.is_empty() {
        return Err(unsupported(
            node.name(),
            "Range",
            "a float range computed at run time (integer ranges run)",
        ));
    }
    let op = Op::Range(Box::new(bounds));
    if inputs.is_empty() {
        let device = c.device().clone();
        let zero = feedbacknet_core::DynTensor::from_vec(vec![0.0], &[1], &device)?;
        let value = op.run(vec![zero])?;
        return c.define_constant(node, value);
    }
    c.step(node, op, inputs)
}

/// A scatter of slices (no reduction); indices constant or computed at run time.
pub(super) fn scatter_nd(c: &mut Compiler, node: &Node, cfg: &ScatterNDConfig) -> Result<()> {
    if cfg.reduction != ScatterNDReduction::None {
        return Err(unsupported(
            node.name(),
            "ScatterND",
            format!("reduction {:?} (none runs)", cfg.reduction),
        ));
    }
    c.nary(node, Op::ScatterNd)
}
