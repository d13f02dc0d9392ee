//! Element-wise functions, powers, reductions and layer normalization.

use feedbacknet_core::{BinaryOp, DynTensor, Result, dyn_map};

use super::{ReduceKind, UnaryOp, axis_index, reduce_axes, shape_err};

/// `op` applied to every element.
pub(super) fn unary(x: DynTensor, op: UnaryOp) -> DynTensor {
    match op {
        UnaryOp::Erf => dyn_map!(x, t => t.erf()),
        UnaryOp::Sqrt => dyn_map!(x, t => t.sqrt()),
        UnaryOp::Reciprocal => dyn_map!(x, t => t.recip()),
        UnaryOp::Exp => dyn_map!(x, t => t.exp()),
        UnaryOp::Neg => dyn_map!(x, t => t.neg()),
        UnaryOp::Abs => dyn_map!(x, t => t.abs()),
    }
}

/// `x` to the constant power `p` (a square as one product).
pub(super) fn pow_scalar(x: DynTensor, p: f32) -> DynTensor {
    if p == 2.0 {
        dyn_map!(x, t => t.clone().mul(t))
    } else if p == 1.0 {
        x
    } else {
        dyn_map!(x, t => t.powf_scalar(p))
    }
}

/// `x` to the power `p`, element by element with broadcasting (`p` a run-time tensor).
pub(super) fn pow(x: DynTensor, p: DynTensor) -> Result<DynTensor> {
    // Both to the broadcast shape first: `powf` wants equal shapes.
    let zero_x = dyn_map!(x.clone(), t => t.zeros_like());
    let zero_p = dyn_map!(p.clone(), t => t.zeros_like());
    let x = x.binary(zero_p, BinaryOp::Add)?;
    let p = p.binary(zero_x, BinaryOp::Add)?;
    match (x, p) {
        (DynTensor::R1(a), DynTensor::R1(b)) => Ok(DynTensor::R1(a.powf(b))),
        (DynTensor::R2(a), DynTensor::R2(b)) => Ok(DynTensor::R2(a.powf(b))),
        (DynTensor::R3(a), DynTensor::R3(b)) => Ok(DynTensor::R3(a.powf(b))),
        (DynTensor::R4(a), DynTensor::R4(b)) => Ok(DynTensor::R4(a.powf(b))),
        (DynTensor::R5(a), DynTensor::R5(b)) => Ok(DynTensor::R5(a.powf(b))),
        (DynTensor::R6(a), DynTensor::R6(b)) => Ok(DynTensor::R6(a.powf(b))),
        (a, _) => Err(shape_err("a broadcastable exponent", a.dims())),
    }
}

/// The mean, sum, maximum or L2 norm over `axes` (all axes when empty), kept as size-1 axes with
/// `keepdims`, removed otherwise (a rank-0 result is stored as `[1]`).
pub(super) fn reduce(
    x: DynTensor,
    kind: ReduceKind,
    axes: &[i64],
    keepdims: bool,
) -> Result<DynTensor> {
    let dims = x.dims();
    let rank = dims.len();
    let axes = reduce_axes(axes, rank)?;
    let mut y = match kind {
        ReduceKind::L2 => dyn_map!(x, t => t.clone().mul(t)),
        _ => x,
    };
    for &axis in &axes {
        y = match kind {
            ReduceKind::Mean => dyn_map!(y, t => t.mean_dim(axis)),
            ReduceKind::Sum | ReduceKind::L2 => dyn_map!(y, t => t.sum_dim(axis)),
            ReduceKind::Max => dyn_map!(y, t => t.max_dim(axis)),
        };
    }
    if kind == ReduceKind::L2 {
        y = dyn_map!(y, t => t.sqrt());
    }
    if keepdims {
        return Ok(y);
    }
    let kept: Vec<usize> = dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect();
    y.reshape(if kept.is_empty() { &[1] } else { &kept })
}

/// ONNX LayerNormalization: `(x − mean) / √(var + ε) · scale + bias` over the axes from `axis`
/// on (the biased variance, as ONNX and PyTorch define it).
pub(super) fn layer_norm(
    x: DynTensor,
    axis: i64,
    epsilon: f32,
    scale: Option<&DynTensor>,
    bias: Option<&DynTensor>,
) -> Result<DynTensor> {
    let dims = x.dims();
    let first = axis_index(axis, dims.len(), "LayerNormalization axis")?;
    let mean_over = |t: DynTensor| -> DynTensor {
        (first..dims.len()).fold(t, |t, a| dyn_map!(t, u => u.mean_dim(a)))
    };
    let mean = mean_over(x.clone());
    let centered = x.binary(mean, BinaryOp::Sub)?;
    let variance = mean_over(dyn_map!(centered.clone(), t => t.clone().mul(t)));
    let deviation = dyn_map!(variance, t => t.add_scalar(epsilon).sqrt());
    let mut y = centered.binary(deviation, BinaryOp::Div)?;
    if let Some(scale) = scale {
        y = y.binary(scale.clone(), BinaryOp::Mul)?;
    }
    if let Some(bias) = bias {
        y = y.binary(bias.clone(), BinaryOp::Add)?;
    }
    Ok(y)
}
