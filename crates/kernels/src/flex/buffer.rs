//! Direct access to the buffers of the flex CPU backend, and the parallel loops over them, for
//! the fast paths (fused element-wise passes that Burn would run as several ops).
//!
//! Every function answers `None` for a tensor that is not a plain `f32` flex tensor (another
//! backend, an autodiff tensor), so that the caller falls back to Burn's tensor ops.

use std::mem::MaybeUninit;

use burn::tensor::{Bytes, DType, Int, Shape, Tensor};
use burn_flex::{Flex, FlexTensor, Layout};
use rayon::prelude::*;

use feedbacknet_core::DynTensor;

/// Output slots that a kernel writes once each.
pub(crate) type Slots = [MaybeUninit<f32>];

/// Below this many elements a pass runs on one thread.
pub(crate) const PARALLEL_MIN: usize = 1 << 15;

/// The contiguous `f32` flex buffer behind `t`, if `t` is a plain flex tensor (a copy only if
/// its layout is not contiguous).
pub(crate) fn buffer<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let p = t.clone().try_into_primitive::<Flex>().ok()?;
    (p.dtype() == DType::F32).then(|| p.to_contiguous())
}

/// The contiguous `f32` flex buffer of `t` for the caller alone, to write in place: `t`'s own
/// buffer when nothing else shares it, else a copy. `Err(t)` if `t` is not a plain `f32` flex
/// tensor.
#[allow(clippy::result_large_err)] // hands the caller's own tensor back, once per call
pub(crate) fn owned_buffer<const D: usize>(t: Tensor<D>) -> Result<FlexTensor, Tensor<D>> {
    let Ok(p) = t.clone().try_into_primitive::<Flex>() else {
        return Err(t);
    };
    // `p` shares `t`'s buffer; without `t` it is the only holder unless another tensor is.
    drop(t);
    if p.dtype() != DType::F32 {
        return Err(tensor(p));
    }
    // Itself when contiguous over its whole buffer (then shared with `p` until `p` goes).
    let contiguous = p.to_contiguous();
    drop(p);
    if contiguous.is_unique() {
        return Ok(contiguous);
    }
    let values = contiguous.storage::<f32>().to_vec();
    let layout = contiguous.layout().clone();
    Ok(FlexTensor::new(
        Bytes::from_elems(values),
        layout,
        DType::F32,
    ))
}

/// [`owned_buffer`] of two tensors (gates and their velocity, updated in place together): both
/// back, unchanged, if either is not a plain `f32` flex tensor.
#[allow(clippy::result_large_err)] // hands the caller's own tensors back, once per call
pub(crate) fn owned_pair<const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
) -> Result<(FlexTensor, FlexTensor), (Tensor<D>, Tensor<D>)> {
    let pa = match owned_buffer(a) {
        Ok(p) => p,
        Err(a) => return Err((a, b)),
    };
    match owned_buffer(b) {
        Ok(pb) => Ok((pa, pb)),
        Err(b) => Err((tensor(pa), b)),
    }
}

/// The `f32` values of a flex tensor in row-major order, read in place where they lie
/// contiguously in its buffer (a channel range of a batch-1 map, as the gradient of a
/// concatenation hands out), else from a contiguous copy.
pub(crate) struct Values {
    tensor: FlexTensor,
    range: std::ops::Range<usize>,
}

impl Values {
    /// The values.
    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.tensor.storage::<f32>()[self.range.clone()]
    }
}

/// [`Values`] of `t`, if `t` is a plain `f32` flex tensor.
pub(crate) fn values<const D: usize>(t: &Tensor<D>) -> Option<Values> {
    let p = t.clone().try_into_primitive::<Flex>().ok()?;
    if p.dtype() != DType::F32 {
        return None;
    }
    let (start, end) = p.layout().contiguous_offsets().unwrap_or((usize::MAX, 0));
    let in_place = start <= end && end * size_of::<f32>() <= p.bytes().len();
    let (tensor, range) = if in_place {
        (p, start..end)
    } else {
        let p = p.to_contiguous();
        let n = p.layout().num_elements();
        (p, 0..n)
    };
    Some(Values { tensor, range })
}

/// [`values`] of a tensor of any rank.
pub(crate) fn dyn_values(t: &DynTensor) -> Option<Values> {
    match t {
        DynTensor::R1(t) => values(t),
        DynTensor::R2(t) => values(t),
        DynTensor::R3(t) => values(t),
        DynTensor::R4(t) => values(t),
        DynTensor::R5(t) => values(t),
        DynTensor::R6(t) => values(t),
    }
}

/// The tensor of a flex primitive.
pub(crate) fn tensor<const D: usize>(p: FlexTensor) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(p)
}

/// [`buffer`] of a tensor of any rank.
pub(crate) fn dyn_buffer(t: &DynTensor) -> Option<FlexTensor> {
    match t {
        DynTensor::R1(t) => buffer(t),
        DynTensor::R2(t) => buffer(t),
        DynTensor::R3(t) => buffer(t),
        DynTensor::R4(t) => buffer(t),
        DynTensor::R5(t) => buffer(t),
        DynTensor::R6(t) => buffer(t),
    }
}

/// A flex tensor of shape `shape` holding `data` (row-major).
pub(crate) fn float<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    let layout = Layout::contiguous(Shape::from(shape.to_vec()));
    Tensor::from_primitive::<Flex>(FlexTensor::new(Bytes::from_elems(data), layout, DType::F32))
}

/// A tensor of the rank and shape of `like` holding `data`.
pub(crate) fn float_like(like: &DynTensor, data: Vec<f32>) -> DynTensor {
    feedbacknet_core::dyn_map!(like.clone(), t => float(data, t.dims()))
}

/// A flex `i32` tensor (flex's default integer type) of shape `shape` holding `data`.
pub(crate) fn int<const D: usize>(data: Vec<i32>, shape: [usize; D]) -> Tensor<D, Int> {
    let layout = Layout::contiguous(Shape::from(shape.to_vec()));
    Tensor::from_primitive::<Flex>(FlexTensor::new(Bytes::from_elems(data), layout, DType::I32))
}

/// `n` values written by `fill`, without zeroing the buffer first: zeroing is one more pass
/// over memory, which the memory-bound element-wise kernels pay for in full (it was ~8 % of a
/// soft-feedback iteration on SqueezeNet).
///
/// # Safety
///
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn written<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut values = Vec::with_capacity(n);
    fill(&mut values.spare_capacity_mut()[..n]);
    // SAFETY: the caller's `fill` has initialised all `n` elements.
    unsafe { values.set_len(n) };
    values
}

/// Runs `f(start, chunk)` over `out` in chunks of whole blocks of `block` elements, in parallel
/// when `out` is large.
pub(crate) fn chunked<T: Send>(out: &mut [T], block: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let threads = rayon::current_num_threads().max(1);
    if out.len() < PARALLEL_MIN || threads == 1 {
        f(0, out);
        return;
    }
    let blocks = out.len().div_ceil(block.max(1));
    let chunk = blocks.div_ceil(threads * 2).max(1) * block.max(1);
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, part)| f(c * chunk, part));
}

/// Runs `f(plane index, plane)` over `out` cut in planes of `plane_len` elements, in parallel
/// when `out` is large ([`chunked`] in whole planes).
pub(crate) fn each_plane<T: Send>(
    out: &mut [T],
    plane_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    chunked(out, plane_len, |start, part| {
        for (i, plane) in part.chunks_mut(plane_len).enumerate() {
            f(start / plane_len + i, plane);
        }
    });
}

/// The buffers of an optional tensor (a bias): `Some(None)` without one, `None` if it is given
/// but is not a plain `f32` flex tensor.
pub(crate) fn optional_buffer<const D: usize>(t: Option<&Tensor<D>>) -> Option<Option<FlexTensor>> {
    match t {
        Some(t) => buffer(t).map(Some),
        None => Some(None),
    }
}

/// [`chunked`] over two outputs of the same length, cut alike; `f` returns a value per chunk
/// and the values are folded with `fold`.
pub(crate) fn chunked_pair<A: Send, B: Send, R: Clone + Send + Sync>(
    a: &mut [A],
    b: &mut [B],
    f: impl Fn(usize, &mut [A], &mut [B]) -> R + Sync,
    fold: impl Fn(R, R) -> R + Sync + Send,
    zero: R,
) -> R {
    let threads = rayon::current_num_threads().max(1);
    if a.len() < PARALLEL_MIN || threads == 1 {
        return fold(zero, f(0, a, b));
    }
    let chunk = a.len().div_ceil(threads * 2).max(1);
    a.par_chunks_mut(chunk)
        .zip(b.par_chunks_mut(chunk))
        .enumerate()
        .map(|(c, (a, b))| f(c * chunk, a, b))
        .reduce(|| zero.clone(), &fold)
}

/// Runs `f(plane, a_plane, b_plane)` for each plane of two outputs (`a` in planes of `a_len`
/// elements, `b` of `b_len`), in parallel when `parallel` is set.
pub(crate) fn per_plane<A: Send, B: Send>(
    (a, a_len): (&mut [A], usize),
    (b, b_len): (&mut [B], usize),
    parallel: bool,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    if a_len == 0 || b_len == 0 {
        return;
    }
    if parallel && rayon::current_num_threads() > 1 {
        a.par_chunks_mut(a_len)
            .zip(b.par_chunks_mut(b_len))
            .enumerate()
            .for_each(|(p, (a, b))| f(p, a, b));
    } else {
        for (p, (a, b)) in a.chunks_mut(a_len).zip(b.chunks_mut(b_len)).enumerate() {
            f(p, a, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    fn row_major(t: &Tensor<4>) -> Vec<f32> {
        t.clone().into_data().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn values_read_views_in_row_major_order() {
        let device = Device::flex();
        let data: Vec<f32> = (0..2 * 4 * 3 * 5).map(|i| i as f32).collect();
        let t = Tensor::<1>::from_floats(data.as_slice(), &device).reshape([2, 4, 3, 5]);
        let one = t.clone().narrow(0, 1, 1);
        // A channel range of one sample (contiguous, at an offset), a channel range of both
        // samples (strided), a transposed view and the whole tensor.
        for view in [
            one.clone().narrow(1, 1, 2),
            t.clone().narrow(1, 2, 2),
            t.clone().swap_dims(2, 3),
            t.clone(),
        ] {
            let read = values(&view).expect("a flex tensor");
            assert_eq!(
                read.as_slice(),
                row_major(&view).as_slice(),
                "{:?}",
                view.dims()
            );
        }
    }
}
