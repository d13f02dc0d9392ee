//! Masks and index arithmetic: `Equal`, `Not`, `Where`, `Mod`, `Range` and `ScatterND`.
//!
//! Booleans are floats 0 and 1 in a [`DynTensor`] (as `Cast` to bool makes them): `Equal` and
//! `Not` write 0/1, `Where` reads any non-zero condition as true. These values feed masks and
//! indices, so the reverse pass gives no gradient to a condition, an index or a `Range`.

use burn::tensor::Tensor;
use feedbacknet_core::{BinaryOp, DynTensor, Result, dyn_map, dyn_with};

use super::{Ints, shape_err};

/// The tensors brought to their common broadcast shape (each plus zeros of the others' shapes,
/// which keeps infinities).
fn broadcast(ts: Vec<DynTensor>) -> Result<Vec<DynTensor>> {
    let zeros: Vec<DynTensor> = ts
        .iter()
        .map(|t| dyn_map!(t.clone(), u => u.zeros_like()))
        .collect();
    ts.into_iter()
        .enumerate()
        .map(|(i, t)| {
            zeros
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .try_fold(t, |acc, (_, z)| acc.binary(z.clone(), BinaryOp::Add))
        })
        .collect()
}

/// [`broadcast`] of a fixed number of tensors.
fn broadcast_n<const N: usize>(ts: [DynTensor; N]) -> Result<[DynTensor; N]> {
    broadcast(ts.into())?
        .try_into()
        .map_err(|v: Vec<DynTensor>| shape_err(&format!("{N} operands"), vec![v.len()]))
}

/// 1 where `a == b` (broadcasting), 0 elsewhere.
pub(super) fn equal(a: DynTensor, b: DynTensor) -> Result<DynTensor> {
    let [a, b] = broadcast_n([a, b])?;
    macro_rules! eq {
        ($($r:ident),*) => {
            match (a, b) {
                $((DynTensor::$r(x), DynTensor::$r(y)) => Ok(DynTensor::$r(x.equal(y).float())),)*
                (x, _) => Err(shape_err("broadcastable operands", x.dims())),
            }
        };
    }
    eq!(R1, R2, R3, R4, R5, R6)
}

/// 1 where `x` is 0, 0 elsewhere.
pub(super) fn not(x: DynTensor) -> DynTensor {
    dyn_map!(x, t => t.equal_elem(0.0).float())
}

/// `x` where `condition` is non-zero, `y` elsewhere (broadcasting all three).
pub(super) fn where_(condition: DynTensor, x: DynTensor, y: DynTensor) -> Result<DynTensor> {
    let [c, x, y] = broadcast_n([condition, x, y])?;
    macro_rules! pick {
        ($($r:ident),*) => {
            match (c, x, y) {
                $((DynTensor::$r(c), DynTensor::$r(x), DynTensor::$r(y)) => {
                    Ok(DynTensor::$r(y.mask_where(c.not_equal_elem(0.0), x)))
                })*
                (c, _, _) => Err(shape_err("broadcastable operands", c.dims())),
            }
        };
    }
    pick!(R1, R2, R3, R4, R5, R6)
}

/// The remainder of `a / b`: with the divisor's sign (`fmod` false, integers), or with the
/// dividend's (`fmod` true, C's `fmod`).
pub(super) fn modulo(a: DynTensor, b: DynTensor, fmod: bool) -> Result<DynTensor> {
    let q = a.clone().binary(b.clone(), BinaryOp::Div)?;
    let q = if fmod {
        dyn_map!(q, t => t.trunc())
    } else {
        dyn_map!(q, t => t.floor())
    };
    a.binary(q.binary(b, BinaryOp::Mul)?, BinaryOp::Sub)
}

/// `start, start + delta, …` below `limit` (above it for a negative `delta`), integers.
pub(super) fn range(inputs: &[DynTensor], bounds: &[Ints; 3]) -> Result<DynTensor> {
    // Wide enough that no bounds overflow the arithmetic below.
    let read = |b: &Ints| -> Result<i128> {
        b.resolve(inputs)?
            .first()
            .map(|&v| i128::from(v))
            .ok_or_else(|| shape_err("a scalar Range bound", vec![0]))
    };
    let (start, limit, delta) = (read(&bounds[0])?, read(&bounds[1])?, read(&bounds[2])?);
    if delta == 0 {
        return Err(shape_err("a non-zero Range delta", vec![]));
    }
    let span = limit - start;
    let count = if (span > 0) == (delta > 0) && span != 0 {
        (span + delta - delta.signum()) / delta
    } else {
        0
    };
    let Some(len) = usize::try_from(count).ok().filter(|&len| len > 0) else {
        return Err(shape_err("a non-empty Range", vec![0]));
    };
    let values: Vec<f32> = (0..count).map(|i| (start + i * delta) as f32).collect();
    let device = inputs
        .first()
        .map(|t| dyn_with!(t, u => u.device()))
        .ok_or_else(|| shape_err("a Range with a bound computed at run time", vec![]))?;
    DynTensor::from_vec(values, &[len], &device)
}

/// ONNX ScatterND without reduction: `data` with the slices at `indices` (last axis: a prefix
/// of `data`'s axes, negative wrapped) replaced by `updates`. A repeated index keeps the last
/// update. The result is a differentiable pick between `data` and `updates`.
pub(super) fn scatter_nd(
    data: DynTensor,
    indices: &DynTensor,
    updates: DynTensor,
) -> Result<DynTensor> {
    let dims = data.dims();
    let index_dims = indices.dims();
    let (&k, tuple_dims) = index_dims
        .split_last()
        .ok_or_else(|| shape_err("indices of rank ≥ 1", index_dims.clone()))?;
    let Some((indexed, slice_dims)) = dims.split_at_checked(k).filter(|_| k != 0) else {
        return Err(shape_err(
            &format!("index tuples of 1..={} axes", dims.len()),
            index_dims,
        ));
    };
    let slice: usize = slice_dims.iter().product();
    let tuples: usize = tuple_dims.iter().product();
    let expected = [tuple_dims, slice_dims].concat();
    if updates.numel() != tuples * slice {
        return Err(shape_err(
            &format!("updates of shape {expected:?}"),
            updates.dims(),
        ));
    }
    let idx = indices.to_vec()?;
    let n = data.numel();
    let mut mask = vec![0.0f32; n];
    let mut source = vec![0.0f32; n];
    // `k` is not 0 (checked above), so the chunks are well defined.
    for (u, tuple) in idx.chunks_exact(k).enumerate() {
        let mut offset = 0usize;
        for (&value, &d) in tuple.iter().zip(indexed) {
            let raw = value.round() as i64;
            let i = if raw < 0 { raw + d as i64 } else { raw };
            if i < 0 || i >= d as i64 {
                return Err(shape_err(
                    &format!("ScatterND indices within {dims:?}"),
                    vec![raw as usize],
                ));
            }
            offset = offset * d + i as usize;
        }
        // In range: every index was checked against its axis, so `offset` is below the
        // product of `indexed` and the run ends by `n`; the error is a guard.
        let run = offset * slice..(offset + 1) * slice;
        let (Some(marks), Some(sources)) = (mask.get_mut(run.clone()), source.get_mut(run)) else {
            return Err(shape_err(
                &format!("ScatterND offsets within {dims:?}"),
                vec![offset],
            ));
        };
        marks.fill(1.0);
        for (s, value) in sources.iter_mut().enumerate() {
            *value = (u * slice + s) as f32;
        }
    }
    let device = dyn_with!(&data, t => t.device());
    let mask = Tensor::<1>::from_floats(mask.as_slice(), &device).equal_elem(1.0);
    let source = Tensor::<1>::from_floats(source.as_slice(), &device).int();
    let DynTensor::R1(flat) = data.reshape(&[n])? else {
        return Err(shape_err("a flat data tensor", vec![n]));
    };
    let DynTensor::R1(new) = updates.reshape(&[tuples * slice])? else {
        return Err(shape_err("flat updates", vec![tuples * slice]));
    };
    let picked = new.select(0, source);
    DynTensor::R1(flat.mask_where(mask, picked)).reshape(&dims)
}
