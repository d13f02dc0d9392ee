//! Run-time shape arithmetic: `Shape`, `Reshape` to a computed shape, `Expand`,
//! `ConstantOfShape`, `Cast` and integer `Div`.
//!
//! Values are float tensors ([`DynTensor`] holds floats only): a shape is a rank-1 tensor of
//! its dimensions, exact below 2^24. These steps read no gradient-carrying value (their results
//! depend on shapes alone), so the reverse pass gives them none.

use feedbacknet_core::{BinaryOp, DynTensor, Result, dyn_map, dyn_with};

use super::{CastTo, Ints, run_reshape, shape_err};

/// The dimensions `start..end` of `x` (clamped to its rank), as a rank-1 tensor.
pub(super) fn shape_of(x: &DynTensor, start: usize, end: usize) -> Result<DynTensor> {
    let dims = x.dims();
    let end = end.min(dims.len());
    let Some(kept) = dims.get(start..end).filter(|kept| !kept.is_empty()) else {
        return Err(shape_err(&format!("dimensions {start}..{end}"), dims));
    };
    let values: Vec<f32> = kept.iter().map(|&d| d as f32).collect();
    let device = dyn_with!(x, t => t.device());
    DynTensor::from_vec(values, &[kept.len()], &device)
}

/// A reshape to the target shape held by the step's second input (read back to the host).
pub(super) fn reshape_to(inputs: &[DynTensor]) -> Result<DynTensor> {
    let [x, _] = inputs else {
        return Err(shape_err("two inputs", vec![inputs.len()]));
    };
    let target = Ints::Input(1).resolve(inputs)?;
    run_reshape(x.clone(), &target, false)
}

/// ONNX Expand: `x` broadcast with `shape` (NumPy rules: the larger of each pair of
/// dimensions where one is 1).
pub(super) fn expand(inputs: &[DynTensor], shape: &Ints) -> Result<DynTensor> {
    let x = inputs
        .first()
        .cloned()
        .ok_or_else(|| shape_err("an input", vec![]))?;
    let shape = shape.resolve(inputs)?;
    let dims = x.dims();
    let rank = dims.len().max(shape.len());
    let pad = |v: Vec<i64>| {
        let mut full = vec![1; rank - v.len()];
        full.extend(v);
        full
    };
    let ours = pad(dims.iter().map(|&d| d as i64).collect());
    let theirs = pad(shape.clone());
    let mut out = Vec::with_capacity(rank);
    for (&a, &b) in ours.iter().zip(&theirs) {
        if (a != b && a != 1 && b != 1) || b < 1 {
            return Err(shape_err(
                &format!("a shape broadcastable to {shape:?}"),
                dims,
            ));
        }
        out.push(a.max(b) as usize);
    }
    if out == dims {
        return Ok(x);
    }
    let device = dyn_with!(&x, t => t.device());
    let zeros = DynTensor::from_vec(vec![0.0; out.iter().product()], &out, &device)?;
    x.binary(zeros, BinaryOp::Add)
}

/// ONNX ConstantOfShape with the shape read from the step's input.
pub(super) fn constant_of_shape(inputs: &[DynTensor], value: f32) -> Result<DynTensor> {
    let first = inputs
        .first()
        .ok_or_else(|| shape_err("an input", vec![]))?;
    let shape = Ints::Input(0).resolve(inputs)?;
    let shape: Vec<usize> = if shape.is_empty() {
        vec![1]
    } else {
        shape
            .iter()
            .map(|&d| {
                usize::try_from(d)
                    .ok()
                    .filter(|&d| d > 0)
                    .ok_or_else(|| shape_err("dimensions ≥ 1", vec![]))
            })
            .collect::<Result<_>>()?
    };
    let device = dyn_with!(first, t => t.device());
    DynTensor::from_vec(vec![value; shape.iter().product()], &shape, &device)
}

/// ONNX Cast between float values: to a float type unchanged, to an integer type truncated
/// toward zero, to bool 1 where non-zero.
pub(super) fn cast(x: DynTensor, to: CastTo) -> DynTensor {
    match to {
        CastTo::Float => x,
        CastTo::Int => dyn_map!(x, t => t.trunc()),
        CastTo::Bool => dyn_map!(x, t => t.abs().sign()),
    }
}

/// Integer division (truncated toward zero) of two integer-valued tensors.
pub(super) fn int_div(a: DynTensor, b: DynTensor) -> Result<DynTensor> {
    let q = a.binary(b, BinaryOp::Div)?;
    Ok(dyn_map!(q, t => t.trunc()))
}
