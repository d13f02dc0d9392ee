//! Vector-Jacobian products of the steps that move elements without computing: `Transpose`,
//! `Squeeze`/`Unsqueeze`/`Reshape` to a run-time shape, `Slice` and `Gather` of consecutive
//! entries, `ReduceMean`/`ReduceSum`, and the float `Cast`. Inputs that carry no gradient (slice
//! bounds, target shapes: see `Op::differentiable_input`) get `None`.
//!
//! A case not covered here (a strided slice, a gather of scattered indices, `ReduceMax`)
//! answers `None`, and the reverse pass differentiates the step by autodiff.

use burn::tensor::ops::PadMode;
use feedbacknet_core::{BinaryOp, CoreError, DynTensor, Result, dyn_map, dyn_with};

use super::Vjp;
use crate::ops::{
    CastTo, Op, ReduceKind, axis_size,
    indexing::{slice_indices, transpose},
    reduce_axes,
};

/// The hand-written product of a structural `op`, or `None` if it has none.
pub(super) fn structural_vjp(op: &Op, inputs: &[DynTensor], dy: &DynTensor) -> Vjp {
    let x_dims = inputs.first()?.dims();
    let grad = match op {
        Op::Cast(CastTo::Float) => Ok(dy.clone()),
        Op::Squeeze { .. } | Op::Unsqueeze { .. } | Op::ReshapeTo => dy.clone().reshape(&x_dims),
        Op::Transpose { perm } => {
            let perm: Vec<usize> = if perm.is_empty() {
                (0..x_dims.len()).rev().collect()
            } else {
                perm.clone()
            };
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                *inverse.get_mut(p)? = i;
            }
            transpose(dy.clone(), &inverse)
        }
        Op::Slice {
            starts,
            ends,
            axes,
            steps,
        } => {
            let starts = starts.resolve(inputs).ok()?;
            let ends = ends.resolve(inputs).ok()?;
            let count = starts.len();
            let axes = axes.clone().unwrap_or_else(|| (0..count as i64).collect());
            let steps = steps.clone().unwrap_or_else(|| vec![1; count]);
            if ends.len() != count || axes.len() != count || steps.len() != count {
                return None;
            }
            let mut spans = Vec::with_capacity(count);
            let ranges = starts.iter().zip(&ends).zip(&axes).zip(&steps);
            for (((&start, &end), &axis), &step) in ranges {
                let (axis, size) = axis_size(axis, &x_dims, "slice axis").ok()?;
                let picked = slice_indices(start, end, step, size)?;
                spans.push((axis, consecutive(&picked)?));
            }
            pad_back(dy, &x_dims, &spans)
        }
        Op::Gather {
            axis,
            indices,
            scalar,
        } => {
            let (axis, size) = axis_size(*axis, &x_dims, "gather axis").ok()?;
            let size = size as i64;
            let picked: Vec<usize> = indices
                .iter()
                .map(|&i| usize::try_from(if i < 0 { i + size } else { i }).ok())
                .collect::<Option<_>>()?;
            let span = consecutive(&picked)?;
            let dy = if *scalar {
                let kept: Vec<usize> = (x_dims.iter().enumerate())
                    .map(|(a, &d)| if a == axis { 1 } else { d })
                    .collect();
                dy.clone().reshape(&kept).ok()?
            } else {
                dy.clone()
            };
            pad_back(&dy, &x_dims, &[(axis, span)])
        }
        Op::Reduce {
            kind: kind @ (ReduceKind::Mean | ReduceKind::Sum),
            axes,
            ..
        } => spread(dy, &x_dims, axes, *kind == ReduceKind::Mean),
        _ => return None,
    };
    // The first input (present: its dimensions were read) gets the gradient, the others none.
    let others = std::iter::repeat_n(None, inputs.len().saturating_sub(1));
    let grads = std::iter::once(Some(grad.ok()?)).chain(others).collect();
    Some(Ok(grads))
}

/// `(first, length)` if `picked` is a run of consecutive ascending indices.
fn consecutive(picked: &[usize]) -> Option<(usize, usize)> {
    let first = *picked.first()?;
    picked
        .iter()
        .enumerate()
        .all(|(k, &i)| i == first + k)
        .then_some((first, picked.len()))
}

/// The gradient of a crop: `dy` padded with zeros back to `x_dims`, per cropped axis
/// `(axis, (first, length))`.
fn pad_back(
    dy: &DynTensor,
    x_dims: &[usize],
    spans: &[(usize, (usize, usize))],
) -> Result<DynTensor> {
    let mut pads = vec![(0, 0); x_dims.len()];
    for &(axis, (first, length)) in spans {
        let after = x_dims
            .get(axis)
            .and_then(|&size| size.checked_sub(first + length));
        let (Some(pad), Some(after)) = (pads.get_mut(axis), after) else {
            return Err(CoreError::Shape {
                context: "slice gradient".into(),
                expected: format!("entries {first}..{} on axis {axis}", first + length),
                got: x_dims.to_vec(),
            });
        };
        *pad = (first, after);
    }
    if pads.iter().all(|&p| p == (0, 0)) {
        return Ok(dy.clone());
    }
    Ok(dyn_map!(dy.clone(), t => t.pad(pads.clone(), PadMode::Constant(0.0))))
}

/// The gradient of a sum (or mean) over `axes`: `dy` spread over them (divided by their size).
fn spread(dy: &DynTensor, x_dims: &[usize], axes: &[i64], mean: bool) -> Result<DynTensor> {
    let rank = x_dims.len();
    let axes = reduce_axes(axes, rank)?;
    let kept: Vec<usize> = (x_dims.iter().enumerate())
        .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
        .collect();
    let mut dy = dy.clone().reshape(&kept)?;
    if mean {
        // Each reduced axis once (a repeated axis reduces a size-1 axis the second time).
        let count: usize = (x_dims.iter().enumerate())
            .filter(|(a, _)| axes.contains(a))
            .map(|(_, &d)| d)
            .product();
        dy = dyn_map!(dy, t => t.div_scalar(count as f32));
    }
    let device = dyn_with!(&dy, t => t.device());
    let zeros = DynTensor::from_vec(vec![0.0; x_dims.iter().product()], x_dims, &device)?;
    zeros.binary(dy, BinaryOp::Add)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;
    use crate::{ops::Ints, reverse::autodiff_vjp};

    /// A tensor of `dims` with distinct values.
    fn ramp(dims: &[usize], offset: f32) -> DynTensor {
        let n: usize = dims.iter().product();
        let values = (0..n).map(|i| offset + (i as f32 * 0.37).sin()).collect();
        DynTensor::from_vec(values, dims, &Device::flex()).unwrap()
    }

    /// The hand-written product of `op` at `inputs` equals autodiff's, for the first input.
    fn assert_matches_autodiff(op: Op, inputs: Vec<DynTensor>) {
        let y = op.run(inputs.clone()).unwrap();
        let dy = ramp(&y.dims(), 0.5);
        let ours = structural_vjp(&op, &inputs, &dy)
            .unwrap_or_else(|| panic!("{op:?} has a rule"))
            .unwrap();
        let mut needed = vec![false; inputs.len()];
        needed[0] = true;
        let reference = autodiff_vjp(&op, inputs, dy, &needed).unwrap();
        let (a, b) = (ours[0].as_ref().unwrap(), reference[0].as_ref().unwrap());
        assert_eq!(a.dims(), b.dims(), "{op:?}");
        let (a, b) = (a.to_vec().unwrap(), b.to_vec().unwrap());
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-6, "{op:?}: {a:?} vs {b:?}");
        assert!(ours[1..].iter().all(Option::is_none), "{op:?}");
    }

    #[test]
    fn transpose_rule_equals_autodiff() {
        let op = Op::Transpose {
            perm: vec![2, 0, 3, 1],
        };
        assert_matches_autodiff(op, vec![ramp(&[2, 3, 4, 5], 0.0)]);
    }

    #[test]
    fn reshaping_rules_equal_autodiff() {
        let x = ramp(&[2, 1, 3], 0.0);
        assert_matches_autodiff(
            Op::Squeeze {
                axes: Some(vec![1]),
            },
            vec![x.clone()],
        );
        let op = Op::Unsqueeze {
            axes: vec![0, -1],
            scalar_input: false,
        };
        assert_matches_autodiff(op, vec![x.clone()]);
        let target = DynTensor::from_vec(vec![3.0, -1.0], &[2], &Device::flex()).unwrap();
        assert_matches_autodiff(Op::ReshapeTo, vec![x, target]);
    }

    #[test]
    fn slice_rule_equals_autodiff() {
        let x = ramp(&[2, 6, 5], 0.0);
        let op = Op::Slice {
            starts: Ints::Static(vec![1, -4]),
            ends: Ints::Static(vec![i64::MAX, -1]),
            axes: Some(vec![1, 2]),
            steps: None,
        };
        assert_matches_autodiff(op, vec![x.clone()]);
        // Run-time ends, read from a second input that gets no gradient.
        let ends = DynTensor::from_vec(vec![3.0], &[1], &Device::flex()).unwrap();
        let op = Op::Slice {
            starts: Ints::Static(vec![0]),
            ends: Ints::Input(1),
            axes: Some(vec![1]),
            steps: Some(vec![1]),
        };
        assert_matches_autodiff(op, vec![x, ends]);
    }

    #[test]
    fn gather_rule_equals_autodiff() {
        let x = ramp(&[2, 5, 3], 0.0);
        let scalar = Op::Gather {
            axis: 1,
            indices: vec![-5],
            scalar: true,
        };
        assert_matches_autodiff(scalar, vec![x.clone()]);
        let run = Op::Gather {
            axis: 1,
            indices: vec![2, 3],
            scalar: false,
        };
        assert_matches_autodiff(run, vec![x]);
    }

    #[test]
    fn reduction_rules_equal_autodiff() {
        let x = ramp(&[2, 3, 4], 0.0);
        for (kind, axes, keepdims) in [
            (ReduceKind::Mean, vec![-1], true),
            (ReduceKind::Mean, vec![0, 2], false),
            (ReduceKind::Sum, vec![], false),
            (ReduceKind::Sum, vec![1], true),
        ] {
            let op = Op::Reduce {
                kind,
                axes,
                keepdims,
            };
            assert_matches_autodiff(op, vec![x.clone()]);
        }
    }
}
