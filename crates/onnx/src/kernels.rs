//! Fast paths on the flex CPU backend for the steps that Burn runs as generic loops or as
//! several element-wise passes, and that every solver iteration repeats:
//!
//! - max pooling with its argmax indices (a tight loop over precomputed windows);
//! - the gated activation forward, `act(x)·g`, in one pass;
//! - the gated activation backward: `dx` under an [`ActivationRule`] and `∂/∂g`, in one pass;
//! - depthwise convolutions (`depthwise`);
//! - dense stride-1 convolutions as matrix products (`dense`), and the 3×3 ones by
//!   Winograd's F(2×2, 3×3) (`winograd`: 2.25 times fewer multiply-adds).
//!
//! The hot loops are compiled for AVX-512 and AVX2 besides the baseline, and the CPU picks
//! one at run time (`multiversion`).
//!
//! Each function takes and returns plain Burn tensors. On any other backend, on an autodiff
//! tensor or on a dtype other than `f32`, it runs the same computation with Burn's tensor ops;
//! tests compare the two paths.

use burn::tensor::{
    Int, Tensor,
    module::{max_pool2d, max_pool2d_with_indices},
    ops::{ConvOptions, MaxPoolOptions},
};
use feedbacknet_core::{
    ActivationRule, BinaryOp, CoreError, DynTensor, GateGranularity, MomentumStep, Result,
    SteppedGate,
};

use crate::ops::{Activation, apply_activation};

#[cfg(feature = "flex")]
mod dense;
#[cfg(feature = "flex")]
mod depthwise;
#[cfg(feature = "flex")]
mod pointwise;
#[cfg(feature = "flex")]
mod product;
#[cfg(feature = "flex")]
mod step;
#[cfg(feature = "flex")]
mod winograd;

/// Max pooling that also returns, per output, the flat index (`row · width + column`) of its
/// input maximum within the plane (Burn's convention).
pub(crate) fn max_pool_with_indices(
    x: Tensor<4>,
    options: &MaxPoolOptions<2>,
) -> (Tensor<4>, Tensor<4, Int>) {
    #[cfg(feature = "flex")]
    if let Some(result) = flex::max_pool_with_indices(&x, options) {
        return result;
    }
    max_pool2d_with_indices(x, options.clone())
}

/// Max pooling (the fast path of [`max_pool_with_indices`] without its indices on flex).
pub(crate) fn max_pool(x: Tensor<4>, options: &MaxPoolOptions<2>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some((y, _)) = flex::max_pool_with_indices(&x, options) {
        return y;
    }
    max_pool2d(x, options.clone())
}

/// The input gradient of a depthwise convolution (one filter per channel, dilation 1) as a
/// correlation on flex (`depthwise`); `None` elsewhere or for any other convolution (the
/// caller then uses Burn's transposed convolution).
pub(crate) fn depthwise_input_grad(
    dy: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
    input_hw: [usize; 2],
) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return depthwise::input_grad(dy, weight, options, input_hw);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (dy, weight, options, input_hw);
        None
    }
}

/// A depthwise convolution (one filter per channel, dilation 1) as a correlation on flex
/// ([`depthwise`]; strided ones over stride phases); `None` elsewhere or for any other
/// convolution (the caller then uses Burn's convolution).
pub(crate) fn depthwise_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return depthwise::conv(x, weight, bias, options);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (x, weight, bias, options);
        None
    }
}

/// A dense convolution with at most 32 input taps per output (an RGB stem: 3 channels of 3×3)
/// as correlations over stride phases on flex ([`depthwise::few_channel_conv`]); `None`
/// elsewhere or for any other convolution.
pub(crate) fn few_channel_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return depthwise::few_channel_conv(x, weight, bias, options);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (x, weight, bias, options);
        None
    }
}

/// The input gradient of a dense convolution with at most 32 input taps per output (an RGB stem)
/// by stride phase on flex ([`depthwise::few_channel_input_grad`]); `None` elsewhere or for any
/// other convolution.
pub(crate) fn few_channel_input_grad(
    dy: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
    input_hw: [usize; 2],
) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return depthwise::few_channel_input_grad(dy, weight, options, input_hw);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (dy, weight, options, input_hw);
        None
    }
}

/// A pointwise convolution (1×1 kernel, stride 1, no padding, one group) as one matrix product
/// per sample on flex ([`pointwise`]); `None` elsewhere or for any other convolution. Also the
/// input gradient of a pointwise convolution, given its channel-swapped weight and no bias.
pub(crate) fn pointwise_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return pointwise::is_pointwise(weight.dims(), options)
        .then(|| pointwise::conv(x, weight, bias))
        .flatten();
    #[cfg(not(feature = "flex"))]
    {
        let _ = (x, weight, bias, options);
        None
    }
}

/// The top and left padding of a stride-1, undilated, ungrouped convolution padded alike on
/// both sides of each axis (what the dense kernel takes, and what makes the input gradient
/// another such convolution); `None` for any other.
pub(crate) fn symmetric_stride_one(options: &ConvOptions<2>) -> Option<[usize; 2]> {
    let [(top, bottom), (left, right)] = options.padding;
    let fits = options.stride == [1, 1]
        && options.dilation == [1, 1]
        && options.groups == 1
        && top == bottom
        && left == right;
    fits.then_some([top, left])
}

/// A dense stride-1 convolution (one group, dilation 1, symmetric padding below the kernel
/// size, a kernel larger than 1×1) as a few matrix products on flex (`dense`); `None`
/// elsewhere or for any other convolution (the caller then uses Burn's).
pub(crate) fn dense_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let [_, _, kh, kw] = weight.dims();
    let pad = symmetric_stride_one(options)?;
    if kh == 1 && kw == 1 {
        return None;
    }
    #[cfg(feature = "flex")]
    return dense::conv(x, weight, bias, pad);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (x, bias, pad);
        None
    }
}

/// A 3×3 stride-1 convolution's weight, and the weight of its input gradient (the
/// channel-swapped, tap-reversed one), transformed for the Winograd kernel (`winograd`).
#[derive(Debug, Clone)]
pub(crate) struct WinogradWeights {
    /// The forward weight, `[16, O, C]`.
    pub forward: Tensor<3>,
    /// The input gradient's weight, `[16, C, O]`, where there is one.
    pub backward: Option<Tensor<3>>,
}

/// The transformed weights of a convolution that the Winograd kernel takes (3×3, stride 1,
/// symmetric padding of at most 2, at least 8 channels in and out) on flex; `None` for any
/// other.
pub(crate) fn winograd_weights(
    weight: &Tensor<4>,
    backward_weight: Option<&Tensor<4>>,
    options: &ConvOptions<2>,
) -> Option<Box<WinogradWeights>> {
    let pad = symmetric_stride_one(options)?;
    #[cfg(feature = "flex")]
    return winograd::takes(weight.dims(), pad).then(|| {
        let forward = winograd::transform_weight(weight)?;
        let backward = backward_weight.and_then(winograd::transform_weight);
        Some(Box::new(WinogradWeights { forward, backward }))
    })?;
    #[cfg(not(feature = "flex"))]
    {
        let _ = (weight, backward_weight, pad);
        None
    }
}

/// A 3×3 stride-1 convolution by Winograd's F(2×2, 3×3) on flex, given its transformed weight
/// ([`winograd_weights`]); `None` elsewhere or for any other convolution.
pub(crate) fn winograd_conv(
    x: &Tensor<4>,
    transformed: &Tensor<3>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let pad = symmetric_stride_one(options)?;
    #[cfg(feature = "flex")]
    return winograd::conv(x, transformed, bias, pad);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (x, transformed, bias, pad);
        None
    }
}

/// The gradient of a global average pooling of an `[n, c, h, w]` input: each channel's
/// gradient `dy[n, c]` spread evenly over its `h · w` pixels, written out on flex (Burn's
/// `expand` leaves a broadcast view that every later step would copy the slow way); `None`
/// elsewhere.
pub(crate) fn spread_channels(dy: &Tensor<4>, dims: [usize; 4]) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return flex::spread_channels(dy, dims);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (dy, dims);
        None
    }
}

/// The input gradient of a pointwise convolution whose output gradient `dy` is nonzero in few
/// channels (a class-score seed reaching a convolutional classifier such as SqueezeNet's
/// `conv10`): only those channels of the channel-swapped weight `swapped` (`[C, O, 1, 1]`)
/// are multiplied in, on flex. `None` elsewhere, or when more than a quarter of the channels
/// carry a gradient (the dense product is then the faster way).
pub(crate) fn sparse_pointwise_input_grad(
    dy: &Tensor<4>,
    swapped: &Tensor<4>,
) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return flex::sparse_pointwise_input_grad(dy, swapped);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (dy, swapped);
        None
    }
}

/// `x` padded by `value` around each plane (`[(top, bottom), (left, right)]`), in one pass on
/// flex; `None` elsewhere.
pub(crate) fn pad_planes(
    x: &Tensor<4>,
    pads: [(usize, usize); 2],
    value: f32,
) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    return flex::pad_planes(x, pads, value);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (x, pads, value);
        None
    }
}

/// `act(x)` (ungated), in one pass on flex.
pub(crate) fn activation(x: DynTensor, act: Activation) -> DynTensor {
    #[cfg(feature = "flex")]
    if let Some(y) = flex::activation(&x, act) {
        return y;
    }
    apply_activation(x, act)
}

/// `act(x) · gate`, the gate being `[batch, units]` with one value per activation
/// ([`GateGranularity::Neuron`]) or per channel ([`GateGranularity::Channel`]).
pub(crate) fn gated_activation(
    x: DynTensor,
    act: Activation,
    gate: &Tensor<2>,
    granularity: GateGranularity,
) -> Result<DynTensor> {
    #[cfg(feature = "flex")]
    if let Some(y) = flex::gated_activation(&x, act, gate, granularity) {
        return Ok(y);
    }
    let dims = x.dims();
    apply_activation(x, act).binary(broadcast_gate(gate, &dims, granularity)?, BinaryOp::Mul)
}

/// Which gradients the backward pass of a gated activation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// `∂/∂x` (not wanted below the lowest gate, where nothing reads it).
    pub input: bool,
    /// `∂/∂g` (what the soft solver collects; only with a gate).
    pub gate: bool,
}

/// The backward pass of `y = act(x) · g` for the output gradient `dy`: `dx` under `rule`
/// (with `g = 1` where `gate` is `None`) and `∂/∂g` shaped like the gate, each if `wanted`.
pub(crate) fn gated_activation_backward(
    x: &DynTensor,
    act: Activation,
    dy: &DynTensor,
    gate: Option<(&Tensor<2>, GateGranularity)>,
    rule: ActivationRule,
    wanted: Wanted,
) -> Result<(Option<DynTensor>, Option<Tensor<2>>)> {
    #[cfg(feature = "flex")]
    if let Some(result) = flex::gated_activation_backward(x, act, dy, gate, rule, wanted) {
        return Ok(result);
    }
    let dims = x.dims();
    let gate_grad = match (wanted.gate, gate) {
        (true, Some((g, granularity))) => {
            let per_unit = apply_activation(x.clone(), act).binary(dy.clone(), BinaryOp::Mul)?;
            Some(reduce_to_gate(per_unit, g, granularity)?)
        }
        _ => None,
    };
    if !wanted.input {
        return Ok((None, gate_grad));
    }
    let dz = match gate {
        Some((g, granularity)) => dy
            .clone()
            .binary(broadcast_gate(g, &dims, granularity)?, BinaryOp::Mul)?,
        None => dy.clone(),
    };
    let flat = x.clone().flatten_all();
    let active = match act {
        Activation::Relu => flat.greater_elem(0.0).float(),
        Activation::Clip { min, max } => flat
            .clone()
            .greater_elem(min)
            .float()
            .mul(flat.lower_elem(max).float()),
    };
    let dx = DynTensor::R1(rule.apply(dz.flatten_all(), active)).reshape(&dims)?;
    Ok((Some(dx), gate_grad))
}

/// The backward pass of `y = act(x) · g` under the true gradient, with the soft solver's
/// `step` applied to the gates `g` (velocity `v`) by their gradient: `dx` (if `want_input`)
/// and the stepped gates. On flex with one gate per activation, one fused pass ([`step`]);
/// elsewhere the gate gradient is computed first.
pub(crate) fn gated_backward_step(
    x: &DynTensor,
    act: Activation,
    dy: &DynTensor,
    (g, v): (Tensor<2>, Tensor<2>),
    granularity: GateGranularity,
    step: &MomentumStep,
    want_input: bool,
) -> Result<(Option<DynTensor>, SteppedGate)> {
    #[cfg(feature = "flex")]
    let (g, v) = match granularity {
        GateGranularity::Neuron => {
            match step::backward_step(x, act, dy, (g, v), step, want_input) {
                Ok(done) => return Ok(done),
                Err(unchanged) => unchanged,
            }
        }
        GateGranularity::Channel => (g, v),
    };
    let wanted = Wanted {
        input: want_input,
        gate: true,
    };
    let (dx, dg) = gated_activation_backward(
        x,
        act,
        dy,
        Some((&g, granularity)),
        ActivationRule::Gradient,
        wanted,
    )?;
    let dg = dg.ok_or_else(|| CoreError::Readback("no gate gradient".into()))?;
    Ok((dx, step.apply(g, v, &dg)?))
}

/// The `[batch, units]` gate reshaped to broadcast against an activation of shape `dims`.
fn broadcast_gate(
    gate: &Tensor<2>,
    dims: &[usize],
    granularity: GateGranularity,
) -> Result<DynTensor> {
    let mut shape = dims.to_vec();
    if granularity == GateGranularity::Channel {
        shape[2..].iter_mut().for_each(|d| *d = 1);
    }
    DynTensor::R2(gate.clone()).reshape(&shape)
}

/// A per-activation gradient summed to the gate's shape.
fn reduce_to_gate(
    per_unit: DynTensor,
    gate: &Tensor<2>,
    granularity: GateGranularity,
) -> Result<Tensor<2>> {
    let [batch, units] = gate.dims();
    let per_unit = per_unit.flatten_all();
    Ok(match granularity {
        GateGranularity::Neuron => per_unit.reshape([batch, units]),
        GateGranularity::Channel => {
            let per_channel = per_unit.dims()[0] / (batch * units).max(1);
            per_unit
                .reshape([batch * units, per_channel])
                .sum_dim(1)
                .reshape([batch, units])
        }
    })
}

#[cfg(feature = "flex")]
mod flex {
    //! The flex implementations: contiguous `f32` buffers, one rayon task per plane or chunk.

    use std::mem::MaybeUninit;

    use burn::tensor::{DType, Int, Tensor, ops::MaxPoolOptions};
    use feedbacknet_core::{
        ActivationRule, DynTensor, GateGranularity,
        flex::{
            buffer, chunked, chunked_pair, dyn_buffer, dyn_values, each_plane, float, float_like,
            int, per_plane, written,
        },
    };

    /// Output slots that a kernel writes once each.
    type Slots = [MaybeUninit<f32>];

    use crate::ops::Activation;

    /// Below this many input elements a pooling runs on one thread.
    const PARALLEL_MIN: usize = feedbacknet_core::flex::PARALLEL_MIN;

    /// Output length of one pooled axis (floor or ceil mode, as Burn and ONNX define it).
    fn pooled_len(input: usize, kernel: usize, pad: usize, stride: usize, ceil: bool) -> usize {
        let padded = input + 2 * pad;
        if padded < kernel {
            return usize::from(ceil);
        }
        let span = padded - kernel;
        if ceil {
            let out = span.div_ceil(stride) + 1;
            // The last window may not start in the trailing padding.
            if (out - 1) * stride >= input + pad {
                out - 1
            } else {
                out
            }
        } else {
            span / stride + 1
        }
    }

    /// The clipped input range `(start, end)` of one pooling window along one axis.
    type Window = (usize, usize);

    /// Per output position along one axis, the clipped input range `[start, end)` it pools.
    fn windows(input: usize, kernel: usize, pad: usize, stride: usize, ceil: bool) -> Vec<Window> {
        (0..pooled_len(input, kernel, pad, stride, ceil))
            .map(|o| {
                let begin = (o * stride) as isize - pad as isize;
                let end = (begin + kernel as isize).min(input as isize);
                let begin = begin.max(0);
                (begin as usize, (end.max(begin)) as usize)
            })
            .collect()
    }

    pub(super) fn max_pool_with_indices(
        x: &Tensor<4>,
        options: &MaxPoolOptions<2>,
    ) -> Option<(Tensor<4>, Tensor<4, Int>)> {
        let [batch, channels, height, width] = x.dims();
        let [kh, kw] = options.kernel_size;
        let [sh, sw] = options.stride;
        let [(ph, _), (pw, _)] = options.padding;
        // Every window then holds an input element (the plane kernel relies on it), and flat
        // indices within a plane fit the kernel's `i32`.
        if options.is_asymmetric()
            || options.dilation != [1, 1]
            || ph >= kh
            || pw >= kw
            || height.saturating_mul(width) > i32::MAX as usize
        {
            return None;
        }
        let p = buffer(x)?;
        let rows = windows(height, kh, ph, sh, options.ceil_mode);
        let cols = windows(width, kw, pw, sw, options.ceil_mode);
        let (out_h, out_w) = (rows.len(), cols.len());
        let plane_in = height * width;
        let plane_out = out_h * out_w;
        let planes = batch * channels;
        let n = planes * plane_out;
        let shape = [batch, channels, out_h, out_w];
        let (out, idx) = if plane_in == 0 {
            // Empty planes pool to nothing: zeros, as the windows see no input.
            (vec![0.0; n], vec![0; n])
        } else {
            let data: &[f32] = p.storage();
            let pool = |plane: usize, out: &mut Slots, idx: &mut [MaybeUninit<i32>]| {
                let x = &data[plane * plane_in..(plane + 1) * plane_in];
                pool_plane(x, width, &rows, Columns::new(kw, sw, pw, out_w), out, idx);
            };
            let parallel = planes * plane_in >= PARALLEL_MIN;
            let mut idx = Vec::new();
            // SAFETY: `per_plane` hands every plane of both outputs to `pool_plane`, which
            // writes each of its `out_h` rows of `out_w` values and indices.
            let out = unsafe {
                written(n, |out| {
                    idx = written(n, |idx| {
                        per_plane((out, plane_out), (idx, plane_out), parallel, pool);
                    });
                })
            };
            (out, idx)
        };
        // Indices in the device's integer type, as Burn's own pooling returns them (flex's
        // default is `i32`, which the kernel writes: no cast then).
        let mut indices = int(idx, shape);
        let int_dtype = Tensor::<1, Int>::empty([0], &x.device()).dtype();
        if int_dtype != DType::I32 {
            indices = indices.cast(int_dtype);
        }
        Some((float(out, shape), indices))
    }

    /// The column geometry of a pooling: kernel width, stride, left padding, output width.
    #[derive(Clone, Copy)]
    struct Columns {
        kernel: usize,
        stride: usize,
        pad: usize,
        out: usize,
    }

    impl Columns {
        fn new(kernel: usize, stride: usize, pad: usize, out: usize) -> Self {
            Self {
                kernel,
                stride,
                pad,
                out,
            }
        }

        /// Length of a stride phase of the padded columns: phase `p` holds padded columns
        /// `p, p + stride, …`, and output `o`'s tap `j` is element `o + j / stride` of phase
        /// `j % stride`.
        fn phase_len(self) -> usize {
            self.out + (self.kernel - 1) / self.stride
        }
    }

    /// Max pooling of one plane `x` (rows of `width`) over the row windows `rows` and the
    /// column geometry `cols`: the maxima into `out`, their flat indices into `idx`. The index is
    /// that of the first maximum in row-major scan order, or of the last NaN of a window that
    /// holds one (as Burn and PyTorch pool). Every window must hold an input element.
    ///
    /// Per output row, one pass down the window's rows keeps each column's maximum and the flat
    /// index of its first occurrence (its last NaN). Those columns, padded with `−∞` and split
    /// by stride phase, are then combined tap by tap over contiguous runs: the larger value
    /// wins, a tie goes to the smaller index (the first in row-major order), and among NaNs to
    /// the larger. Both passes vectorize.
    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn pool_plane(
        x: &[f32],
        width: usize,
        rows: &[Window],
        cols: Columns,
        out: &mut Slots,
        idx: &mut [MaybeUninit<i32>],
    ) {
        let padded = (cols.phase_len() * cols.stride).max(cols.pad + width);
        let mut column_max = vec![f32::NEG_INFINITY; padded];
        let mut column_at = vec![i32::MAX; padded];
        let phase_len = cols.phase_len();
        let mut phase_max = vec![f32::NEG_INFINITY; phase_len * cols.stride];
        let mut phase_at = vec![i32::MAX; phase_len * cols.stride];
        let (mut best, mut first) = (vec![0.0f32; cols.out], vec![0i32; cols.out]);
        for (oh, &(r0, r1)) in rows.iter().enumerate() {
            let real = cols.pad..cols.pad + width;
            column_maxima(
                x,
                width,
                (r0, r1),
                &mut column_max[real.clone()],
                &mut column_at[real],
            );
            if cols.stride == 2 {
                split_pairs(
                    &column_max[..2 * phase_len],
                    phase_max.split_at_mut(phase_len),
                );
                split_pairs(
                    &column_at[..2 * phase_len],
                    phase_at.split_at_mut(phase_len),
                );
            }
            for p in (0..cols.stride).filter(|_| cols.stride != 2) {
                let phase = p * phase_len..(p + 1) * phase_len;
                let targets = phase_max[phase.clone()]
                    .iter_mut()
                    .zip(phase_at[phase].iter_mut());
                // `padded ≥ phase_len · stride`: every source column exists.
                for (i, (m, at)) in targets.enumerate() {
                    let c = p + i * cols.stride;
                    (*m, *at) = (column_max[c], column_at[c]);
                }
            }
            best.copy_from_slice(&phase_max[..cols.out]);
            first.copy_from_slice(&phase_at[..cols.out]);
            for j in 1..cols.kernel {
                let start = (j % cols.stride) * phase_len + j / cols.stride;
                let taps = phase_max[start..start + cols.out]
                    .iter()
                    .zip(&phase_at[start..start + cols.out]);
                for ((b, f), (&m, &a)) in best.iter_mut().zip(first.iter_mut()).zip(taps) {
                    // Branch-free (`&`, `|`), so that the loop vectorizes.
                    let (m_nan, b_nan) = (m.is_nan(), b.is_nan());
                    let larger = (m > *b) | ((m == *b) & (a < *f));
                    let take = (m_nan & (!b_nan | (a > *f))) | (!m_nan & !b_nan & larger);
                    *b = if take { m } else { *b };
                    *f = if take { a } else { *f };
                }
            }
            let row = oh * cols.out..(oh + 1) * cols.out;
            for (o, &b) in out[row.clone()].iter_mut().zip(&best) {
                o.write(b);
            }
            for (i, &f) in idx[row].iter_mut().zip(&first) {
                i.write(f);
            }
        }
    }

    /// The even elements of `pairs` into `even`, the odd ones into `odd` (a stride-2 pooling's
    /// two phases; this form of the loop vectorizes, a runtime stride does not).
    #[inline(always)]
    fn split_pairs<T: Copy>(pairs: &[T], (even, odd): (&mut [T], &mut [T])) {
        let (pairs, _) = pairs.as_chunks::<2>();
        for ((e, o), &[a, b]) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
            (*e, *o) = (a, b);
        }
    }

    /// Per column of `x` (rows of `width`), the maximum over rows `r0..r1` into `max` and the
    /// flat index of its first occurrence (of the last NaN, if any) into `at`.
    ///
    /// Blocks of columns are reduced in local arrays and stored once: the compiler would turn
    /// an in-place `if take { v } else { *m }` into masked stores, which are slow on AMD cores.
    #[inline(always)]
    fn column_maxima(x: &[f32], width: usize, (r0, r1): Window, max: &mut [f32], at: &mut [i32]) {
        const L: usize = 8;
        let c0 = max.len() / L * L; // the first column of the tail
        let (max_blocks, max_tail) = max.as_chunks_mut::<L>();
        let (at_blocks, at_tail) = at.as_chunks_mut::<L>();
        let blocks = max_blocks.iter_mut().zip(at_blocks.iter_mut());
        for (b, (max, at)) in blocks.enumerate() {
            let c0 = b * L;
            let mut m: [f32; L] = std::array::from_fn(|i| x[r0 * width + c0 + i]);
            let mut a: [i32; L] = std::array::from_fn(|i| (r0 * width + c0 + i) as i32);
            for r in r0 + 1..r1 {
                let row = &x[r * width + c0..][..L];
                for i in 0..L {
                    let v = row[i];
                    let take = (v > m[i]) | v.is_nan();
                    m[i] = if take { v } else { m[i] };
                    a[i] = if take {
                        (r * width + c0 + i) as i32
                    } else {
                        a[i]
                    };
                }
            }
            (*max, *at) = (m, a);
        }
        for (i, (max, at)) in max_tail.iter_mut().zip(at_tail).enumerate() {
            let c = c0 + i;
            let (mut m, mut a) = (x[r0 * width + c], (r0 * width + c) as i32);
            for r in r0 + 1..r1 {
                let v = x[r * width + c];
                if (v > m) | v.is_nan() {
                    (m, a) = (v, (r * width + c) as i32);
                }
            }
            (*max, *at) = (m, a);
        }
    }

    /// Consecutive activations that share one gate value.
    fn per_gate(dims: &[usize], granularity: GateGranularity) -> usize {
        match granularity {
            GateGranularity::Neuron => 1,
            GateGranularity::Channel => dims[2..].iter().product::<usize>().max(1),
        }
    }

    pub(super) fn gated_activation(
        x: &DynTensor,
        act: Activation,
        gate: &Tensor<2>,
        granularity: GateGranularity,
    ) -> Option<DynTensor> {
        let dims = x.dims();
        let px = dyn_buffer(x)?;
        let pg = buffer(gate)?;
        let n = px.layout().num_elements();
        let (xs, gs): (&[f32], &[f32]) = (px.storage(), pg.storage());
        let share = per_gate(&dims, granularity);
        if gs.len() * share != n {
            return None;
        }
        // SAFETY: `gate_forward` writes every element (`gs` covers all `n` activations).
        let out = unsafe {
            written(n, |out| match act {
                Activation::Relu => gate_forward(out, xs, gs, share, |v| v.max(0.0)),
                Activation::Clip { min, max } => {
                    gate_forward(out, xs, gs, share, move |v| v.clamp(min, max))
                }
            })
        };
        Some(float_like(x, out))
    }

    pub(super) fn sparse_pointwise_input_grad(
        dy: &Tensor<4>,
        swapped: &Tensor<4>,
    ) -> Option<Tensor<4>> {
        let [n, o, h, w] = dy.dims();
        let [c, wo, kh, kw] = swapped.dims();
        let plane = h * w;
        if wo != o || [kh, kw] != [1, 1] || plane == 0 {
            return None;
        }
        let pdy = buffer(dy)?;
        let dys: &[f32] = pdy.storage();
        let planes = |k: usize| (0..n).map(move |b| &dys[(b * o + k) * plane..][..plane]);
        let live: Vec<usize> = (0..o)
            .filter(|&k| planes(k).any(|p| p.iter().any(|&v| v != 0.0)))
            .collect();
        if live.len() * 4 > o {
            return None;
        }
        let pw = buffer(swapped)?;
        let ws: &[f32] = pw.storage();
        let mut dx = vec![0.0f32; n * c * plane];
        each_plane(&mut dx, plane, |i, out| {
            let (b, ch) = (i / c, i % c);
            for &k in &live {
                let weight = ws[ch * o + k];
                let source = &dys[(b * o + k) * plane..][..plane];
                for (d, &g) in out.iter_mut().zip(source) {
                    *d += weight * g;
                }
            }
        });
        Some(float(dx, [n, c, h, w]))
    }

    pub(super) fn pad_planes(
        x: &Tensor<4>,
        [(top, bottom), (left, right)]: [(usize, usize); 2],
        value: f32,
    ) -> Option<Tensor<4>> {
        let [n, c, h, w] = x.dims();
        let (hp, wp) = (h + top + bottom, w + left + right);
        let plane = hp * wp;
        if plane == 0 || h * w == 0 {
            return None;
        }
        let px = buffer(x)?;
        let xs: &[f32] = px.storage();
        let fill = |p: usize, out: &mut Slots| {
            let source = &xs[p * h * w..(p + 1) * h * w];
            for (r, row) in out.chunks_exact_mut(wp).enumerate() {
                match r.checked_sub(top).filter(|&r| r < h) {
                    Some(r) => {
                        let (before, rest) = row.split_at_mut(left);
                        let (inside, after) = rest.split_at_mut(w);
                        for o in before.iter_mut().chain(after) {
                            o.write(value);
                        }
                        for (o, &v) in inside.iter_mut().zip(&source[r * w..(r + 1) * w]) {
                            o.write(v);
                        }
                    }
                    None => row.iter_mut().for_each(|o| {
                        o.write(value);
                    }),
                }
            }
        };
        // SAFETY: every row of every padded plane is written: padding, then the input row.
        let out = unsafe { written(n * c * plane, |out| each_plane(out, plane, fill)) };
        Some(float(out, [n, c, hp, wp]))
    }

    pub(super) fn spread_channels(dy: &Tensor<4>, dims: [usize; 4]) -> Option<Tensor<4>> {
        let [n, c, h, w] = dims;
        if dy.dims() != [n, c, 1, 1] {
            return None;
        }
        let p = buffer(dy)?;
        let values: &[f32] = p.storage();
        let pixels = h * w;
        if pixels == 0 {
            return None;
        }
        // SAFETY: the `n · c` planes of `pixels` values each take one value of `dy` apiece.
        let out = unsafe {
            written(n * c * pixels, |out| {
                each_plane(out, pixels, |i, plane| {
                    plane.iter_mut().for_each(|o| {
                        o.write(values[i] / pixels as f32);
                    });
                })
            })
        };
        Some(float(out, dims))
    }

    pub(super) fn activation(x: &DynTensor, act: Activation) -> Option<DynTensor> {
        let px = dyn_buffer(x)?;
        let xs: &[f32] = px.storage();
        // SAFETY: `map_into` writes every element.
        let out = unsafe {
            written(xs.len(), |out| match act {
                Activation::Relu => map_into(out, xs, |v| v.max(0.0)),
                Activation::Clip { min, max } => map_into(out, xs, move |v| v.clamp(min, max)),
            })
        };
        Some(float_like(x, out))
    }

    /// `out = f(xs)`, element-wise.
    fn map_into(out: &mut Slots, xs: &[f32], f: impl Fn(f32) -> f32 + Sync) {
        chunked(out, 1, |start, out| {
            map_chunk(out, &xs[start..start + out.len()], &f)
        });
    }

    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn map_chunk<F: Fn(f32) -> f32>(out: &mut Slots, xs: &[f32], f: &F) {
        for (o, &x) in out.iter_mut().zip(xs) {
            o.write(f(x));
        }
    }

    /// `out = f(x) · g`, each gate value covering `share` consecutive activations.
    fn gate_forward(
        out: &mut Slots,
        xs: &[f32],
        gs: &[f32],
        share: usize,
        f: impl Fn(f32) -> f32 + Sync,
    ) {
        chunked(out, share, |start, out| {
            let xs = &xs[start..start + out.len()];
            let gs = &gs[start / share..(start + out.len()).div_ceil(share)];
            gate_chunk(out, xs, gs, share, &f);
        });
    }

    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn gate_chunk<F: Fn(f32) -> f32>(out: &mut Slots, xs: &[f32], gs: &[f32], share: usize, f: &F) {
        if share == 1 {
            for ((o, &x), &g) in out.iter_mut().zip(xs).zip(gs) {
                o.write(f(x) * g);
            }
        } else {
            for ((o, x), &g) in out.chunks_mut(share).zip(xs.chunks(share)).zip(gs) {
                for (o, &x) in o.iter_mut().zip(x) {
                    o.write(f(x) * g);
                }
            }
        }
    }

    pub(super) fn gated_activation_backward(
        x: &DynTensor,
        act: Activation,
        dy: &DynTensor,
        gate: Option<(&Tensor<2>, GateGranularity)>,
        rule: ActivationRule,
        wanted: super::Wanted,
    ) -> Option<(Option<DynTensor>, Option<Tensor<2>>)> {
        let dims = x.dims();
        if dy.dims() != dims {
            return None;
        }
        let px = dyn_buffer(x)?;
        let pdy = dyn_values(dy)?;
        let n = px.layout().num_elements();
        let pg = match gate {
            Some((g, _)) => Some(buffer(g)?),
            None => None,
        };
        // Ungated: one gate of 1 per plane (not one per activation).
        let (share, gate_dims) = match gate {
            Some((g, granularity)) => (per_gate(&dims, granularity), g.dims()),
            None => (per_gate(&dims, GateGranularity::Channel), [1, n]),
        };
        let ones = if pg.is_none() {
            vec![1.0f32; n / share]
        } else {
            Vec::new()
        };
        let gs: &[f32] = pg.as_ref().map_or(&ones[..], |p| p.storage());
        let (xs, dys): (&[f32], &[f32]) = (px.storage(), pdy.as_slice());
        if gs.len() * share != n || dys.len() != n {
            return None;
        }
        let dx_len = if wanted.input { n } else { 0 };
        let dg_len = if wanted.gate && gate.is_some() {
            gs.len()
        } else {
            0
        };
        let io = Backward { xs, dys, gs, share };
        macro_rules! run {
            ($dx:expr, $dg:expr, $rule:expr) => {
                match act {
                    Activation::Relu => io.run($dx, $dg, |v| v.max(0.0), |v| v > 0.0, $rule),
                    Activation::Clip { min, max } => io.run(
                        $dx,
                        $dg,
                        move |v| v.clamp(min, max),
                        move |v| v > min && v < max,
                        $rule,
                    ),
                }
            };
        }
        let mut dg = Vec::new();
        // SAFETY: `Backward::run` writes every element of a non-empty `dx` and `dg` (`gs`
        // covers all `n` activations, `dg` has one value per gate).
        let dx = unsafe {
            written(dx_len, |dx| {
                dg = written(dg_len, |dg| match rule {
                    ActivationRule::Gradient => {
                        run!(dx, dg, |dz: f32, on: bool| if on { dz } else { 0.0 })
                    }
                    ActivationRule::Guided => {
                        run!(dx, dg, |dz: f32, on: bool| if on {
                            dz.max(0.0)
                        } else {
                            0.0
                        })
                    }
                    ActivationRule::Deconv => run!(dx, dg, |dz: f32, _: bool| dz.max(0.0)),
                });
            })
        };
        let gate_grad = (!dg.is_empty()).then(|| float(dg, gate_dims));
        let dx = wanted.input.then(|| float_like(x, dx));
        Some((dx, gate_grad))
    }

    /// The inputs of one gated activation backward pass.
    struct Backward<'a> {
        xs: &'a [f32],
        dys: &'a [f32],
        gs: &'a [f32],
        share: usize,
    }

    impl Backward<'_> {
        /// `dx = rule(dy·g, active(x))` and `dg = Σ dy·f(x)` per gate, each unless empty; every
        /// element of a non-empty output is written.
        fn run(
            &self,
            dx: &mut Slots,
            dg: &mut Slots,
            f: impl Fn(f32) -> f32 + Sync,
            active: impl Fn(f32) -> bool + Sync,
            rule: impl Fn(f32, bool) -> f32 + Sync,
        ) {
            let share = self.share;
            if share == 1 && !dg.is_empty() && !dx.is_empty() {
                // One gate per activation: both outputs in one pass.
                chunked_pair(
                    dx,
                    dg,
                    |start, dx, dg| {
                        let end = start + dx.len();
                        let (xs, dys, gs) = self.range(start..end);
                        pair_chunk(dx, dg, xs, dys, gs, &f, &active, &rule);
                    },
                    |(), ()| (),
                    (),
                );
                return;
            }
            if !dx.is_empty() {
                chunked(dx, share, |start, dx| {
                    let (xs, dys, gs) = self.range(start..start + dx.len());
                    dx_chunk(dx, xs, dys, gs, share, &active, &rule);
                });
            }
            if dg.is_empty() {
                return;
            }
            chunked(dg, 1, |start, dg| {
                let (xs, dys, _) = self.range(start * share..(start + dg.len()) * share);
                gate_grad_chunk(dg, xs, dys, share, &f);
            });
        }

        /// The activations, output gradients and gates of the activations `range`.
        fn range(&self, range: std::ops::Range<usize>) -> (&[f32], &[f32], &[f32]) {
            let gates = range.start / self.share..range.end.div_ceil(self.share);
            (&self.xs[range.clone()], &self.dys[range], &self.gs[gates])
        }
    }

    /// `dx = rule(dy·g, active(x))` and `dg = dy·f(x)`, one gate per activation.
    #[allow(clippy::too_many_arguments)]
    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn pair_chunk<F, A, R>(
        dx: &mut Slots,
        dg: &mut Slots,
        xs: &[f32],
        dys: &[f32],
        gs: &[f32],
        f: &F,
        active: &A,
        rule: &R,
    ) where
        F: Fn(f32) -> f32,
        A: Fn(f32) -> bool,
        R: Fn(f32, bool) -> f32,
    {
        let inputs = xs.iter().zip(dys);
        let outputs = dx.iter_mut().zip(dg.iter_mut());
        for (((d, o), (&x, &dy)), &g) in outputs.zip(inputs).zip(gs) {
            d.write(rule(dy * g, active(x)));
            o.write(dy * f(x));
        }
    }

    /// `dx = rule(dy·g, active(x))`, each gate covering `share` activations.
    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn dx_chunk<A, R>(
        dx: &mut Slots,
        xs: &[f32],
        dys: &[f32],
        gs: &[f32],
        share: usize,
        active: &A,
        rule: &R,
    ) where
        A: Fn(f32) -> bool,
        R: Fn(f32, bool) -> f32,
    {
        if share == 1 {
            for (((d, &x), &dy), &g) in dx.iter_mut().zip(xs).zip(dys).zip(gs) {
                d.write(rule(dy * g, active(x)));
            }
            return;
        }
        let blocks = dx
            .chunks_mut(share)
            .zip(xs.chunks(share))
            .zip(dys.chunks(share));
        for (((dx, xs), dys), &g) in blocks.zip(gs) {
            for ((d, &x), &dy) in dx.iter_mut().zip(xs).zip(dys) {
                d.write(rule(dy * g, active(x)));
            }
        }
    }

    /// `dg = Σ dy·f(x)` over the `share` activations of each gate.
    #[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
    fn gate_grad_chunk<F: Fn(f32) -> f32>(
        dg: &mut Slots,
        xs: &[f32],
        dys: &[f32],
        share: usize,
        f: &F,
    ) {
        if share == 1 {
            for ((o, &x), &dy) in dg.iter_mut().zip(xs).zip(dys) {
                o.write(dy * f(x));
            }
            return;
        }
        for ((o, xs), dys) in dg.iter_mut().zip(xs.chunks(share)).zip(dys.chunks(share)) {
            o.write(xs.iter().zip(dys).map(|(&x, &dy)| dy * f(x)).sum());
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, module};

    use super::*;

    const BOTH: Wanted = Wanted {
        input: true,
        gate: true,
    };

    fn options(k: usize, s: usize, pad: usize, ceil: bool) -> MaxPoolOptions<2> {
        MaxPoolOptions::new([k, k])
            .with_stride([s, s])
            .with_padding([pad, pad])
            .with_ceil_mode(ceil)
    }

    fn max_abs(a: DynTensor, b: DynTensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        a.binary(b, BinaryOp::Sub)
            .expect("same shape")
            .flatten_all()
            .abs()
            .max()
            .into_scalar()
    }

    #[test]
    #[cfg(feature = "flex")] // without flex there is no fast path to compare
    fn depthwise_convolution_matches_burn_forward_and_backward() {
        let device = Device::flex();
        for (size, k, s, pad, bias) in [
            (28, 3, 2, (0, 0), true),
            (28, 5, 2, (1, 2), true),
            (27, 5, 1, (2, 2), true),
            (28, 3, 1, (1, 1), true),
            (17, 3, 1, (1, 1), true),
            (17, 3, 2, (1, 1), false),
            (16, 3, 2, (0, 1), true),
            (15, 5, 2, (2, 2), false),
            (9, 3, 1, (0, 0), true),
            (31, 3, 3, (1, 0), true),
            (20, 4, 2, (1, 2), false),
            (19, 3, 2, (0, 1), true),
            (56, 3, 2, (0, 1), true),
        ] {
            let c = 6;
            let x =
                Tensor::<4>::random([2, c, size, size], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<4>::random([c, 1, k, k], Distribution::Normal(0.0, 1.0), &device);
            let b = bias.then(|| Tensor::<1>::random([c], Distribution::Normal(0.0, 1.0), &device));
            let opts = ConvOptions::new_with_padding([s, s], [pad, pad], [1, 1], c);
            let case = format!("{size} {k} {s} {pad:?} {bias}");
            // Small strided outputs are Burn's own.
            let out = (size + pad.0 + pad.1 - k) / s + 1;
            let ours = depthwise_conv(&x, &w, b.as_ref(), &opts);
            assert_eq!(ours.is_some(), s == 1 || out * out >= 100, "{case}");
            let ours = ours
                .unwrap_or_else(|| module::conv2d(x.clone(), w.clone(), b.clone(), opts.clone()));
            let leaf = x.clone().autodiff().detach().require_grad();
            let theirs = module::conv2d(
                leaf.clone(),
                w.clone().autodiff(),
                b.clone().map(|b| b.autodiff()),
                opts.clone(),
            );
            assert_eq!(ours.dims(), theirs.dims(), "{case}");
            let dy = Tensor::<4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &device);
            let grads = theirs.clone().mul(dy.clone().autodiff()).sum().backward();
            let expected_dx = leaf.grad(&grads).expect("input gradient");
            let forward = max_abs(
                DynTensor::R4(ours),
                DynTensor::R4(theirs.without_autodiff()),
            );
            assert!(forward < 1e-4, "{case}: forward differs by {forward}");
            let dx = depthwise_input_grad(&dy, &w, &opts, [size, size]).expect("a depthwise conv");
            let backward = max_abs(DynTensor::R4(dx), DynTensor::R4(expected_dx));
            assert!(backward < 1e-4, "{case}: backward differs by {backward}");
        }
        // Not depthwise: a grouped convolution with two channels per group.
        let w = Tensor::<4>::zeros([6, 2, 3, 3], &device);
        let x = Tensor::<4>::zeros([1, 6, 8, 8], &device);
        let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 3);
        assert!(depthwise_conv(&x, &w, None, &opts).is_none());
    }

    #[test]
    #[cfg(feature = "flex")] // the fast path under test exists only with it
    fn a_sparse_pointwise_gradient_equals_the_dense_product() {
        let device = Device::flex();
        let normal = Distribution::Normal(0.0, 1.0);
        let weight = Tensor::<4>::random([40, 12, 1, 1], normal, &device);
        let swapped = weight.clone().swap_dims(0, 1);
        let swapped = Tensor::<4>::from_data(swapped.into_data(), &device);
        // Two samples, a gradient in channels 3 (first sample) and 17 (second) only.
        let mut live = vec![0.0f32; 2 * 40];
        live[3] = 1.0;
        live[40 + 17] = 1.0;
        let mask =
            Tensor::<4>::from_data(burn::tensor::TensorData::new(live, [2, 40, 1, 1]), &device);
        let dy = Tensor::<4>::random([2, 40, 5, 6], normal, &device).mul(mask);
        let pointwise = burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let dense = module::conv2d(dy.clone(), swapped.clone(), None, pointwise);
        let sparse = sparse_pointwise_input_grad(&dy, &swapped).expect("2 of 40 channels");
        assert_eq!(sparse.dims(), [2, 12, 5, 6]);
        let diff = max_abs(DynTensor::R4(sparse), DynTensor::R4(dense));
        assert!(diff < 1e-5, "differs by {diff}");
        // A gradient in every channel takes the dense product.
        let full = Tensor::<4>::random([2, 40, 5, 6], normal, &device);
        assert!(sparse_pointwise_input_grad(&full, &swapped).is_none());
    }

    #[test]
    #[cfg(feature = "flex")] // the fast path under test exists only with it
    fn plane_padding_equals_burn_padding() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 7, 5], Distribution::Normal(0.0, 1.0), &device);
        for (pads, value) in [([(0, 1), (0, 1)], 0.0), ([(2, 0), (1, 3)], 1.5)] {
            let ours = pad_planes(&x, pads, value).expect("flex");
            let theirs = x.clone().pad(
                vec![(0, 0), (0, 0), pads[0], pads[1]],
                burn::tensor::ops::PadMode::Constant(value),
            );
            let diff = max_abs(DynTensor::R4(ours), DynTensor::R4(theirs));
            assert_eq!(diff, 0.0, "{pads:?} {value}");
        }
    }

    #[test]
    #[cfg(feature = "flex")] // without flex there is no fast path to compare
    fn a_few_channel_convolution_equals_burn() {
        let device = Device::flex();
        let normal = Distribution::Normal(0.0, 1.0);
        for (c, k, stride, pad) in [
            (3, 3, 2, (0, 1)),
            (3, 3, 2, (0, 0)),
            (3, 3, 1, (1, 1)),
            (1, 5, 2, (2, 2)),
            (2, 4, 3, (1, 0)),
        ] {
            let case = format!("{c} channels, k {k}, stride {stride}, pad {pad:?}");
            let x = Tensor::<4>::random([2, c, 23, 21], normal, &device);
            let w = Tensor::<4>::random([5, c, k, k], normal, &device);
            let b = Tensor::<1>::random([5], normal, &device);
            let opts = ConvOptions::new_with_padding([stride, stride], [pad, pad], [1, 1], 1);
            let ours = few_channel_conv(&x, &w, Some(&b), &opts).expect("few taps");
            let leaf = x.clone().autodiff().detach().require_grad();
            let theirs = module::conv2d(leaf.clone(), w.clone().autodiff(), None, opts.clone());
            let theirs = theirs.add(b.clone().autodiff().reshape([1, 5, 1, 1]));
            let diff = max_abs(
                DynTensor::R4(ours.clone()),
                DynTensor::R4(theirs.clone().without_autodiff()),
            );
            assert!(diff < 1e-4, "{case}: differs by {diff}");
            // The input gradient, by stride phase.
            let dy = Tensor::<4>::random(ours.dims(), normal, &device);
            let grads = theirs.mul(dy.clone().autodiff()).sum().backward();
            let expected = leaf.grad(&grads).expect("input gradient");
            let dx = few_channel_input_grad(&dy, &w, &opts, [23, 21]).expect("few taps");
            let diff = max_abs(DynTensor::R4(dx), DynTensor::R4(expected));
            assert!(diff < 1e-4, "{case}: the input gradient differs by {diff}");
        }
        // An input size that does not give this output is refused.
        let dy = Tensor::<4>::zeros([1, 2, 5, 5], &device);
        let w = Tensor::<4>::zeros([2, 3, 3, 3], &device);
        let opts = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        assert!(few_channel_input_grad(&dy, &w, &opts, [9, 9]).is_some());
        assert!(few_channel_input_grad(&dy, &w, &opts, [13, 13]).is_none());
        // 4 channels of 3×3 are 36 taps: Burn's convolution.
        let x = Tensor::<4>::zeros([1, 4, 9, 9], &device);
        let w = Tensor::<4>::zeros([2, 4, 3, 3], &device);
        let opts = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        assert!(few_channel_conv(&x, &w, None, &opts).is_none());
    }

    #[test]
    fn max_pool_matches_burn_values_and_indices() {
        let device = Device::flex();
        for (size, k, s, pad, ceil) in [
            (111, 3, 2, 0, true),
            (55, 3, 2, 0, false),
            (12, 3, 2, 0, true),
            (11, 3, 1, 1, false),
            (10, 2, 2, 0, false),
            (9, 3, 2, 1, true),
            (7, 3, 3, 1, true),
        ] {
            let x =
                Tensor::<4>::random([2, 40, size, size], Distribution::Normal(0.0, 1.0), &device);
            let opts = options(k, s, pad, ceil);
            let (ours, our_idx) = max_pool_with_indices(x.clone(), &opts);
            let (theirs, their_idx) = module::max_pool2d_with_indices(x, opts);
            let case = format!("{size} {k} {s} {pad} {ceil}");
            assert_eq!(ours.dims(), theirs.dims(), "{case}");
            assert_eq!(
                max_abs(DynTensor::R4(ours), DynTensor::R4(theirs)),
                0.0,
                "{case}"
            );
            let same: bool = our_idx.equal(their_idx).all().into_scalar();
            assert!(same, "{case}: argmax indices differ");
        }
    }

    #[test]
    fn max_pool_breaks_ties_and_nans_as_burn_does() {
        let device = Device::flex();
        // Rectified, coarsely rounded values: many windows hold equal maxima (and all-zero
        // windows), as after a ReLU; a few NaNs must win their windows.
        let x = Tensor::<4>::random([1, 16, 23, 23], Distribution::Normal(0.0, 1.0), &device);
        let x = burn::tensor::activation::relu(x.mul_scalar(1.5).round());
        let nan_at = Tensor::<4>::random([1, 16, 23, 23], Distribution::Default, &device)
            .greater_elem(0.995);
        let x = x.mask_fill(nan_at, f32::NAN);
        for (k, s, pad, ceil) in [(3, 2, 0, true), (3, 1, 1, false), (2, 2, 0, false)] {
            let opts = options(k, s, pad, ceil);
            let (ours, our_idx) = max_pool_with_indices(x.clone(), &opts);
            let (theirs, their_idx) = module::max_pool2d_with_indices(x.clone(), opts);
            let case = format!("{k} {s} {pad} {ceil}");
            let ours = ours.into_data().try_to_vec::<f32>().expect("f32");
            let theirs = theirs.into_data().try_to_vec::<f32>().expect("f32");
            let same_values = ours
                .iter()
                .zip(&theirs)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same_values, "{case}: pooled values differ");
            assert!(ours.iter().any(|v| v.is_nan()), "{case}: no NaN window");
            let same: bool = our_idx.equal(their_idx).all().into_scalar();
            assert!(same, "{case}: argmax indices differ");
        }
    }

    #[test]
    fn gated_activation_matches_the_generic_path_forward_and_backward() {
        let device = Device::flex();
        let dims = [2, 24, 30, 30];
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let dy = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let acts = [Activation::Relu, Activation::Clip { min: 0.0, max: 0.5 }];
        for act in acts {
            let plain = activation(DynTensor::R4(x.clone()), act);
            let generic = apply_activation(DynTensor::R4(x.clone().autodiff()), act);
            let generic = DynTensor::R4(generic.into4("act").expect("4-d").without_autodiff());
            assert_eq!(max_abs(plain, generic), 0.0, "{act:?} ungated");
            for rule in [
                ActivationRule::Gradient,
                ActivationRule::Guided,
                ActivationRule::Deconv,
            ] {
                let backward = |x: &Tensor<4>, dy: &Tensor<4>| {
                    let (dx, dg) = gated_activation_backward(
                        &DynTensor::R4(x.clone()),
                        act,
                        &DynTensor::R4(dy.clone()),
                        None,
                        rule,
                        BOTH,
                    )
                    .expect("ungated backward");
                    assert!(dg.is_none(), "no gate, no gate gradient");
                    dx.expect("dx").into4("dx").expect("4-d").without_autodiff()
                };
                let fast = backward(&x, &dy);
                let generic = backward(&x.clone().autodiff(), &dy.clone().autodiff());
                let diff = max_abs(DynTensor::R4(fast), DynTensor::R4(generic));
                assert_eq!(diff, 0.0, "{act:?} {rule:?} ungated backward");
            }
            for granularity in [GateGranularity::Neuron, GateGranularity::Channel] {
                let units = match granularity {
                    GateGranularity::Neuron => 24 * 30 * 30,
                    GateGranularity::Channel => 24,
                };
                let gate =
                    Tensor::<2>::random([2, units], Distribution::Uniform(0.0, 1.0), &device);
                let fast = gated_activation(DynTensor::R4(x.clone()), act, &gate, granularity)
                    .expect("fast");
                let generic = apply_activation(DynTensor::R4(x.clone()), act)
                    .binary(
                        broadcast_gate(&gate, &dims, granularity).expect("gate"),
                        BinaryOp::Mul,
                    )
                    .expect("generic");
                assert!(
                    max_abs(fast, generic) < 1e-6,
                    "{act:?} {granularity:?} forward"
                );
                for rule in [
                    ActivationRule::Gradient,
                    ActivationRule::Guided,
                    ActivationRule::Deconv,
                ] {
                    let (dx, dg) = gated_activation_backward(
                        &DynTensor::R4(x.clone()),
                        act,
                        &DynTensor::R4(dy.clone()),
                        Some((&gate, granularity)),
                        rule,
                        BOTH,
                    )
                    .expect("fast backward");
                    let (no_dx, only_dg) = gated_activation_backward(
                        &DynTensor::R4(x.clone()),
                        act,
                        &DynTensor::R4(dy.clone()),
                        Some((&gate, granularity)),
                        rule,
                        Wanted {
                            input: false,
                            gate: true,
                        },
                    )
                    .expect("gate gradient alone");
                    assert!(no_dx.is_none(), "dx was not wanted");
                    // The generic path, on an autodiff tensor (no flex primitive behind it).
                    let leaf = x.clone().autodiff().detach();
                    let (gdx, gdg) = gated_activation_backward(
                        &DynTensor::R4(leaf),
                        act,
                        &DynTensor::R4(dy.clone().autodiff()),
                        Some((&gate.clone().autodiff(), granularity)),
                        rule,
                        BOTH,
                    )
                    .expect("generic backward");
                    let gdx = gdx
                        .expect("dx")
                        .into4("dx")
                        .expect("4-d")
                        .without_autodiff();
                    let gdg = gdg.expect("gate gradient").without_autodiff();
                    let case = format!("{act:?} {granularity:?} {rule:?}");
                    assert!(
                        max_abs(dx.expect("dx"), DynTensor::R4(gdx)) < 1e-6,
                        "{case} dx"
                    );
                    let dg = dg.expect("gate gradient");
                    let only_dg = only_dg.expect("gate gradient alone");
                    assert_eq!(
                        max_abs(DynTensor::R2(dg.clone()), DynTensor::R2(only_dg)),
                        0.0,
                        "{case} dg alone"
                    );
                    assert!(
                        max_abs(DynTensor::R2(dg), DynTensor::R2(gdg)) < 1e-3,
                        "{case} dg"
                    );
                }
            }
        }
    }
}
