//! Picking and moving elements: `Transpose`, `Slice`, `Gather`, `Squeeze`, `Unsqueeze` and
//! `Split` (one `Slice` step per output).

use onnx_ir::{
    Node,
    node::{
        gather::GatherConfig,
        slice::{SliceConfig, SliceInput},
        split::{SplitConfig, SplitSizesInput},
        squeeze::{SqueezeConfig, SqueezeInput},
        transpose::TransposeConfig,
        unsqueeze::UnsqueezeConfig,
    },
};

use super::builder::{Compiler, constant_ints, unsupported};
use crate::{
    error::Result,
    ops::{Ints, Op},
};

/// A permutation of the axes.
pub(super) fn transpose(c: &mut Compiler, node: &Node, cfg: &TransposeConfig) -> Result<()> {
    let perm = cfg
        .perm
        .iter()
        .map(|&p| usize::try_from(p))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| unsupported(node.name(), "Transpose", "a negative axis in perm"))?;
    c.unary(node, Op::Transpose { perm })
}

/// A slice with constant axes and steps; starts and ends constant or computed at run time.
pub(super) fn slice(c: &mut Compiler, node: &Node, cfg: &SliceConfig) -> Result<()> {
    let mut inputs = vec![c.slot_of(node, 0)?];
    let mut bound = |c: &mut Compiler, input: &SliceInput| -> Result<Ints> {
        Ok(match input {
            SliceInput::Static(v) => Ints::Static(v.clone()),
            SliceInput::Runtime(r) => {
                inputs.push(c.slot_of(node, r.input_index)?);
                Ints::Input(inputs.len() - 1)
            }
        })
    };
    let starts = bound(c, &cfg.starts)?;
    let ends = bound(c, &cfg.ends)?;
    let fixed = |what: &str, input: &Option<SliceInput>| match input {
        None => Ok(None),
        Some(SliceInput::Static(v)) => Ok(Some(v.clone())),
        Some(SliceInput::Runtime(_)) => Err(unsupported(
            node.name(),
            "Slice",
            format!("{what} computed at run time"),
        )),
    };
    let axes = fixed("axes", &cfg.axes)?;
    let steps = fixed("steps", &cfg.steps)?;
    let op = Op::Slice {
        starts,
        ends,
        axes,
        steps,
    };
    c.step(node, op, inputs)
}

/// A gather with constant indices (a scalar or a vector) from a run-time or constant input.
pub(super) fn gather(c: &mut Compiler, node: &Node, cfg: &GatherConfig) -> Result<()> {
    let index = node.inputs().get(1);
    let indices = constant_ints(node, 1)?
        .ok_or_else(|| unsupported(node.name(), "Gather", "indices computed at run time"))?;
    let scalar = index.is_none_or(|a| a.ty.is_scalar());
    let rank = index.map_or(0, |a| a.ty.rank());
    if !scalar && rank > 1 {
        return Err(unsupported(
            node.name(),
            "Gather",
            format!("indices of rank {rank} (a scalar or a vector runs)"),
        ));
    }
    let op = Op::Gather {
        axis: cfg.axis as i64,
        indices,
        scalar,
    };
    let data = c.slot_of(node, 0)?;
    c.step(node, op, vec![data])
}

/// A removal of size-1 axes (constant axes, or every size-1 axis).
pub(super) fn squeeze(c: &mut Compiler, node: &Node, cfg: &SqueezeConfig) -> Result<()> {
    let axes = match &cfg.axes {
        None => None,
        Some(SqueezeInput::Static(v)) => Some(v.clone()),
        Some(SqueezeInput::Runtime(_)) => {
            return Err(unsupported(
                node.name(),
                "Squeeze",
                "axes computed at run time",
            ));
        }
    };
    let data = c.slot_of(node, 0)?;
    c.step(node, Op::Squeeze { axes }, vec![data])
}

/// An insertion of size-1 axes at constant positions.
pub(super) fn unsqueeze(c: &mut Compiler, node: &Node, cfg: &UnsqueezeConfig) -> Result<()> {
    let UnsqueezeConfig::Static(axes) = cfg else {
        return Err(unsupported(
            node.name(),
            "Unsqueeze",
            "axes computed at run time",
        ));
    };
    let scalar_input = node.inputs().first().is_some_and(|a| a.ty.is_scalar());
    let op = Op::Unsqueeze {
        axes: axes.clone(),
        scalar_input,
    };
    let data = c.slot_of(node, 0)?;
    c.step(node, op, vec![data])
}

/// A split into consecutive parts along one axis: a `Slice` step per output.
pub(super) fn split(c: &mut Compiler, node: &Node, cfg: &SplitConfig) -> Result<()> {
    let outputs = node.outputs().len();
    let sizes: Vec<usize> = match (&cfg.split_sizes, cfg.split_size) {
        (Some(SplitSizesInput::Static(sizes)), _) => sizes.clone(),
        (Some(SplitSizesInput::Runtime(_)), _) => {
            return Err(unsupported(
                node.name(),
                "Split",
                "sizes computed at run time",
            ));
        }
        (None, Some(size)) => {
            let dim = node
                .inputs()
                .first()
                .and_then(|a| a.ty.static_shape_known())
                .and_then(|s| s.get(cfg.axis).copied())
                .ok_or_else(|| {
                    unsupported(
                        node.name(),
                        "Split",
                        "equal parts of an axis of unknown size",
                    )
                })?;
            (0..outputs)
                .map(|i| size.min(dim.saturating_sub(i * size)))
                .collect()
        }
        (None, None) => {
            return Err(unsupported(node.name(), "Split", "no split sizes"));
        }
    };
    if sizes.len() != outputs {
        return Err(unsupported(
            node.name(),
            "Split",
            format!("{} sizes for {outputs} outputs", sizes.len()),
        ));
    }
    let data = c.slot_of(node, 0)?;
    let mut start = 0i64;
    for (i, &size) in sizes.iter().enumerate() {
        let end = start + size as i64;
        let op = Op::Slice {
            starts: Ints::Static(vec![start]),
            ends: Ints::Static(vec![end]),
            axes: Some(vec![cfg.axis as i64]),
            steps: None,
        };
        c.step_output(node, op, vec![data], i)?;
        start = end;
    }
    Ok(())
}
