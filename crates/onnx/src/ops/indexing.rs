//! Moving and picking elements: `Transpose`, `Slice`, `Gather`, `Squeeze`, `Unsqueeze`.
//!
//! A rank-0 ONNX value (a scalar) is stored as a `[1]` tensor: `Gather` with a scalar index on
//! a vector, `Squeeze` or a reduction down to no axis write one, and `Unsqueeze` reads its
//! input as rank 0 when the graph says it is.

use burn::tensor::{Int, Tensor, TensorData};
use feedbacknet_core::{DynTensor, Result, dyn_map, dyn_with};

use super::{Ints, axis_index, axis_size, shape_err};

/// The axes of `x` reordered: output axis `i` is input axis `perm[i]` (reversed if `perm` is
/// empty, as ONNX's default).
pub(crate) fn transpose(x: DynTensor, perm: &[usize]) -> Result<DynTensor> {
    let rank = x.rank();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..rank).rev().collect()
    } else {
        perm.to_vec()
    };
    let mut seen = vec![false; rank];
    let valid = perm.len() == rank
        && perm
            .iter()
            .all(|&p| seen.get_mut(p).is_some_and(|s| !std::mem::replace(s, true)));
    let dims = x.dims();
    let err = || shape_err(&format!("a permutation {perm:?} of the axes"), dims.clone());
    if !valid {
        return Err(err());
    }
    Ok(dyn_map!(x, t => t.permute(fixed(&perm).ok_or_else(err)?)))
}

/// `values` as an array of its length `D` (`None` for another length).
fn fixed<const D: usize>(values: &[usize]) -> Option<[usize; D]> {
    values.try_into().ok()
}

/// ONNX Slice: per listed axis, `start..end` by `step` (negative indices count from the end,
/// out-of-range ones are clamped; a negative step walks backwards).
pub(super) fn slice(
    inputs: &[DynTensor],
    starts: &Ints,
    ends: &Ints,
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<DynTensor> {
    let x = inputs
        .first()
        .cloned()
        .ok_or_else(|| shape_err("an input", vec![]))?;
    let starts = starts.resolve(inputs)?;
    let ends = ends.resolve(inputs)?;
    let dims = x.dims();
    let count = starts.len();
    let axes: Vec<i64> = axes.map_or_else(|| (0..count as i64).collect(), <[i64]>::to_vec);
    let steps: Vec<i64> = steps.map_or_else(|| vec![1; count], <[i64]>::to_vec);
    if ends.len() != count || axes.len() != count || steps.len() != count {
        return Err(shape_err(
            &format!("as many starts ({count}), ends, axes and steps"),
            vec![ends.len(), axes.len(), steps.len()],
        ));
    }
    let mut y = x;
    let ranges = starts.iter().zip(&ends).zip(&axes).zip(&steps);
    for (((&start, &end), &axis), &step) in ranges {
        let (axis, size) = axis_size(axis, &dims, "slice axis")?;
        if dims.len() == 1 && step != 0 && slice_indices(start, end, step, size).is_none() {
            // An empty piece of a shape (`shape[2:]` of a 2-D value), for a `Concat`.
            let device = dyn_with!(&y, t => t.device());
            return DynTensor::from_vec(Vec::new(), &[0], &device);
        }
        let picked = slice_indices(start, end, step, size)
            .ok_or_else(|| shape_err("a non-empty slice with a non-zero step", dims.clone()))?;
        y = pick(y, axis, &picked)?;
    }
    Ok(y)
}

/// The indices that ONNX Slice picks from an axis of `size`, or `None` if none (or `step` 0).
pub(crate) fn slice_indices(start: i64, end: i64, step: i64, size: usize) -> Option<Vec<usize>> {
    let size = size as i64;
    let wrap = |v: i64| if v < 0 { v.saturating_add(size) } else { v };
    let (start, end) = (wrap(start), wrap(end));
    let picked: Vec<usize> = match step {
        0 => return None,
        s if s > 0 => {
            let (start, end) = (start.clamp(0, size), end.clamp(0, size));
            (start..end)
                .step_by(s as usize)
                .map(|i| i as usize)
                .collect()
        }
        s => {
            let (start, end) = (start.clamp(-1, size - 1), end.clamp(-1, size - 1));
            let mut picked = Vec::new();
            let mut i = start;
            while i > end {
                picked.push(i as usize);
                i += s;
            }
            picked
        }
    };
    (!picked.is_empty()).then_some(picked)
}

/// The entries `indices` (in range) of `axis`: one narrow for a run of consecutive indices, a
/// select otherwise; an error when `indices` is empty.
pub(crate) fn pick(x: DynTensor, axis: usize, indices: &[usize]) -> Result<DynTensor> {
    let Some(&first) = indices.first() else {
        return Err(shape_err("at least one index", x.dims()));
    };
    let consecutive = indices.iter().enumerate().all(|(k, &i)| i == first + k);
    if consecutive {
        return Ok(dyn_map!(x, t => t.narrow(axis, first, indices.len())));
    }
    let device = dyn_with!(&x, t => t.device());
    let values: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    let index = Tensor::<1, Int>::from_data(TensorData::new(values, [indices.len()]), &device);
    Ok(dyn_map!(x, t => t.select(axis, index.clone())))
}

/// ONNX Gather with constant `indices` along `axis`; a scalar index removes the axis.
pub(super) fn gather(x: DynTensor, axis: i64, indices: &[i64], scalar: bool) -> Result<DynTensor> {
    let dims = x.dims();
    let (axis, size) = axis_size(axis, &dims, "gather axis")?;
    let size = size as i64;
    let picked = indices
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + size } else { i };
            (0..size).contains(&j).then_some(j as usize).ok_or_else(|| {
                shape_err(&format!("index {i} in range on axis {axis}"), dims.clone())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if picked.is_empty() {
        return Err(shape_err("at least one index", dims));
    }
    let y = pick(x, axis, &picked)?;
    if !scalar {
        return Ok(y);
    }
    let out: Vec<usize> = dims
        .iter()
        .enumerate()
        .filter(|&(a, _)| a != axis)
        .map(|(_, &d)| d)
        .collect();
    y.reshape(if out.is_empty() { &[1] } else { &out })
}

/// ONNX Squeeze: removes the listed size-1 axes (every size-1 axis without a list).
pub(super) fn squeeze(x: DynTensor, axes: Option<&[i64]>) -> Result<DynTensor> {
    let dims = x.dims();
    let removed: Vec<usize> = match axes {
        None => (dims.iter().enumerate())
            .filter(|&(_, &d)| d == 1)
            .map(|(a, _)| a)
            .collect(),
        Some(axes) => axes
            .iter()
            .map(|&a| axis_index(a, dims.len(), "squeeze axis"))
            .collect::<Result<_>>()?,
    };
    if removed.iter().any(|&a| dims.get(a) != Some(&1)) {
        return Err(shape_err(
            &format!("size 1 on the squeezed axes {removed:?}"),
            dims,
        ));
    }
    let kept: Vec<usize> = (dims.iter().enumerate())
        .filter(|(a, _)| !removed.contains(a))
        .map(|(_, &d)| d)
        .collect();
    x.reshape(if kept.is_empty() { &[1] } else { &kept })
}

/// ONNX Unsqueeze: inserts size-1 axes at `axes` (of the output); `scalar_input` reads the
/// stored `[1]` as rank 0.
pub(super) fn unsqueeze(x: DynTensor, axes: &[i64], scalar_input: bool) -> Result<DynTensor> {
    let dims = if scalar_input { Vec::new() } else { x.dims() };
    let rank = dims.len() + axes.len();
    let mut inserted = axes
        .iter()
        .map(|&a| axis_index(a, rank, "unsqueeze axis"))
        .collect::<Result<Vec<_>>>()?;
    inserted.sort_unstable();
    if !inserted.is_sorted_by(|a, b| a < b) {
        return Err(shape_err(&format!("distinct axes {axes:?}"), dims));
    }
    let mut rest = dims.iter();
    let out: Vec<usize> = (0..rank)
        .map(|a| {
            if inserted.contains(&a) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect();
    x.reshape(&out)
}
