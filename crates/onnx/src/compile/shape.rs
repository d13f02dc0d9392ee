//! Steps that move values rather than compute them: `Concat`, `Flatten`, `Reshape`, `Pad`,
//! and the run-time shape arithmetic: `Shape`, `Cast`, `Expand`, `ConstantOfShape`.

use burn::tensor::ops::PadMode;
use feedbacknet_core::DynTensor;
use onnx_ir::{
    Node,
    node::{
        cast::CastConfig,
        concat::ConcatConfig,
        constant_of_shape::{ConstantOfShapeConfig, ConstantOfShapeShape},
        expand::ExpandConfig,
        flatten::FlattenConfig,
        pad::{ConstantValueInput, PadConfig, PadInput, PadMode as OnnxPadMode},
        reshape::{ReshapeConfig, ReshapeInput},
        shape::ShapeConfig,
    },
};

use super::builder::{Compiler, unsupported};
use crate::{
    error::Result,
    ops::{CastTo, Ints, Op},
};

/// The node's inputs joined along one axis.
pub(super) fn concat(c: &mut Compiler, node: &Node, cfg: &ConcatConfig) -> Result<()> {
    c.nary(node, Op::Concat { axis: cfg.axis })
}

/// The axes from `axis` on folded into one, the axes before it into another.
pub(super) fn flatten(c: &mut Compiler, node: &Node, cfg: &FlattenConfig) -> Result<()> {
    c.unary(node, Op::Flatten { axis: cfg.axis })
}

/// A reshape to a constant target shape, or to one computed at run time (read back to the
/// host when the step runs).
pub(super) fn reshape(c: &mut Compiler, node: &Node, cfg: &ReshapeConfig) -> Result<()> {
    match &cfg.shape {
        ReshapeInput::Static(shape) => c.unary(
            node,
            Op::Reshape {
                shape: shape.clone(),
            },
        ),
        ReshapeInput::Runtime(r) => {
            let data = c.slot_of(node, 0)?;
            let target = c.slot_of(node, r.input_index)?;
            c.step(node, Op::ReshapeTo, vec![data, target])
        }
    }
}

/// Constant, reflect or edge padding with constant pads (`fold` may merge a zero pad into
/// the convolution that reads it).
pub(super) fn pad(c: &mut Compiler, node: &Node, cfg: &PadConfig) -> Result<()> {
    let name = node.name();
    let mode = match (&cfg.mode, &cfg.constant_value) {
        (OnnxPadMode::Constant, ConstantValueInput::Static(v)) => PadMode::Constant(*v),
        (OnnxPadMode::Constant, ConstantValueInput::Runtime(_)) => {
            return Err(unsupported(name, "Pad", "pad value computed at run time"));
        }
        (OnnxPadMode::Reflect, _) => PadMode::Reflect,
        (OnnxPadMode::Edge, _) => PadMode::Edge,
    };
    match &cfg.pads {
        PadInput::Static(pads) => {
            let pads = pads.clone();
            c.unary(node, Op::Pad { pads, mode })
        }
        PadInput::Runtime { input, axes: None } => {
            let inputs = vec![c.slot_of(node, 0)?, c.slot_of(node, input.input_index)?];
            c.step(node, Op::PadTo(mode), inputs)
        }
        PadInput::Runtime { axes: Some(_), .. } => Err(unsupported(
            name,
            "Pad",
            "axes with pads computed at run time",
        )),
    }
}

/// The input's dimensions `start..end`, as a rank-1 tensor.
pub(super) fn shape_of(c: &mut Compiler, node: &Node, cfg: &ShapeConfig) -> Result<()> {
    let op = Op::Shape {
        start: cfg.start,
        end: cfg.end,
    };
    c.unary(node, op)
}

/// A type conversion of float values: identity to a float type, truncation to an integer
/// type, 0/1 to bool.
pub(super) fn cast(c: &mut Compiler, node: &Node, cfg: &CastConfig) -> Result<()> {
    let to = if cfg.to.is_float() {
        CastTo::Float
    } else if cfg.to.is_int() || cfg.to.is_uint() {
        CastTo::Int
    } else if matches!(cfg.to, burn::tensor::DType::Bool(_)) {
        CastTo::Bool
    } else {
        return Err(unsupported(
            node.name(),
            "Cast",
            format!("conversion to {:?}", cfg.to),
        ));
    };
    c.unary(node, Op::Cast(to))
}

/// A broadcast to a constant or run-time shape.
pub(super) fn expand(c: &mut Compiler, node: &Node, cfg: &ExpandConfig) -> Result<()> {
    let data = c.slot_of(node, 0)?;
    match cfg {
        ExpandConfig::Static(shape) => {
            c.step(node, Op::Expand(Ints::Static(shape.clone())), vec![data])
        }
        ExpandConfig::Runtime(r) => {
            let shape = c.slot_of(node, r.input_index)?;
            c.step(node, Op::Expand(Ints::Input(1)), vec![data, shape])
        }
    }
}

/// A tensor filled with one value: a constant when the shape is, a step otherwise.
pub(super) fn constant_of_shape(
    c: &mut Compiler,
    node: &Node,
    cfg: &ConstantOfShapeConfig,
) -> Result<()> {
    let value = match &cfg.value {
        None => 0.0,
        Some(data) => data
            .clone()
            .try_into_vec_as::<f32>()
            .ok()
            .and_then(|v| v.first().copied())
            .ok_or_else(|| unsupported(node.name(), "ConstantOfShape", "an unreadable value"))?,
    };
    match &cfg.shape {
        ConstantOfShapeShape::Static(shape) => {
            let dims = shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| unsupported(node.name(), "ConstantOfShape", "a negative dimension"))?;
            let dims = if dims.is_empty() { vec![1] } else { dims };
            let count = dims.iter().product();
            let tensor = DynTensor::from_vec(vec![value; count], &dims, c.device())?;
            c.define_constant(node, tensor)
        }
        ConstantOfShapeShape::Runtime(r) => {
            let shape = c.slot_of(node, r.input_index)?;
            c.step(node, Op::ConstantOfShape { value }, vec![shape])
        }
    }
}
