//! Hand-written vector-Jacobian products of the operators that dominate a CNN's backward pass:
//! convolution, concatenation, residual additions, global pooling, folded batch norm, fully
//! connected layers and reshapes, and (in `structural`) the steps that move elements of
//! transformers and run-time shapes (max pooling routes by the indices of its recorded forward
//! pass, in `reverse.rs`).
//!
//! [`fast_vjp`] answers `None` for an operator or a configuration it does not cover (pooling
//! other than recorded max pooling, padding, broadcasting arithmetic, asymmetric convolution padding, …); the reverse
//! pass then differentiates that step alone by autodiff. Tests compare every covered case with
//! that fallback.

use burn::tensor::{
    Tensor,
    module::{conv_transpose2d, conv2d},
    ops::{ConvOptions, ConvTransposeOptions, PadMode},
};
use feedbacknet_core::{BinaryOp, DynTensor, Result, dyn_map};

use crate::ops::Op;

mod structural;

#[cfg(all(test, feature = "flex"))] // the dense kernel runs on flex only
mod conv_tests;

/// Gradients of one step's inputs (`None` where not needed), or `None` if the operator is not
/// covered here.
pub(crate) type Vjp = Option<Result<Vec<Option<DynTensor>>>>;

/// The vector-Jacobian product of `op` at `inputs` for the output gradient `dy`.
pub(crate) fn fast_vjp(op: &Op, inputs: &[DynTensor], dy: &DynTensor, needed: &[bool]) -> Vjp {
    let only_first = |grad: Result<DynTensor>| -> Result<Vec<Option<DynTensor>>> {
        let mut grads = vec![None; inputs.len()];
        if let Some(first) = grads.first_mut() {
            *first = Some(grad?);
        }
        Ok(grads)
    };
    let x_dims = inputs.first()?.dims();
    match op {
        Op::Conv2d {
            weight,
            backward,
            options,
            ..
        } => {
            let backward = backward.get(weight, options);
            Some(only_first(Ok(DynTensor::R4(conv_input_grad(
                &x_dims,
                weight,
                backward.weight.as_ref(),
                backward.winograd.as_ref(),
                options,
                dy,
            )?))))
        }
        Op::Binary(op @ (BinaryOp::Add | BinaryOp::Sub)) => {
            same_shape_sum(inputs, dy, needed, *op == BinaryOp::Sub)
        }
        Op::Concat { axis } => concat_grads(inputs, dy, *axis),
        Op::ChannelAffine { scale, .. } => {
            let mut shape = vec![1; x_dims.len()];
            *shape.get_mut(1)? = scale.dims()[0];
            let scale = DynTensor::R1(scale.clone()).reshape(&shape);
            Some(only_first(
                scale.and_then(|s| dy.clone().binary(s, BinaryOp::Mul)),
            ))
        }
        Op::Identity | Op::Flatten { .. } | Op::Reshape { .. } => {
            Some(only_first(dy.clone().reshape(&x_dims)))
        }
        Op::GlobalAveragePool => global_pool_grad(&x_dims, dy).map(|g| only_first(Ok(g))),
        Op::Pad {
            pads,
            mode: PadMode::Constant(_),
        } => Some(only_first(Ok(crop(dy, pads, &x_dims)))),
        Op::Linear { weight, .. } => Some(only_first(linear_grad(&x_dims, weight, dy))),
        _ => structural::structural_vjp(op, inputs, dy),
    }
}

/// Constant padding passes the gradient of the unpadded region through.
fn crop(dy: &DynTensor, pads: &[(usize, usize)], x_dims: &[usize]) -> DynTensor {
    let mut dx = dy.clone();
    for (axis, (&(before, _), &size)) in pads.iter().zip(x_dims).enumerate() {
        dx = dyn_map!(dx, t => t.narrow(axis, before, size));
    }
    dx
}

/// `dx` of a 2-D convolution: a stride-1 convolution of `dy` with the swapped, reversed weight
/// (`backward_weight`) where there is one and a fast kernel takes it, a transposed convolution
/// otherwise.
fn conv_input_grad(
    x_dims: &[usize],
    weight: &Tensor<4>,
    backward_weight: Option<&Tensor<4>>,
    winograd: Option<&Tensor<3>>,
    options: &ConvOptions<2>,
    dy: &DynTensor,
) -> Option<Tensor<4>> {
    let DynTensor::R4(dy) = dy else { return None };
    let &[_, _, height, width] = x_dims else {
        return None;
    };
    if let Some(wt) = backward_weight {
        let [_, _, kh, kw] = wt.dims();
        if [kh, kw] == [1, 1] {
            if let Some(dx) = crate::kernels::sparse_pointwise_input_grad(dy, wt) {
                return Some(dx);
            }
            let pointwise = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            if let Some(dx) = crate::kernels::pointwise_conv(dy, wt, None, &pointwise) {
                return Some(dx);
            }
            return Some(conv2d(dy.clone(), wt.clone(), None, pointwise));
        }
        let [(top, _), (left, _)] = options.padding;
        let full = ConvOptions::new([1, 1], [kh - 1 - top, kw - 1 - left], [1, 1], 1);
        let winograd = winograd.and_then(|u| crate::kernels::winograd_conv(dy, u, None, &full));
        if let Some(dx) = winograd {
            return Some(dx);
        }
        if let Some(dx) = crate::kernels::dense_conv(dy, wt, None, &full) {
            return Some(dx);
        }
    }
    if let Some(dx) = crate::kernels::depthwise_input_grad(dy, weight, options, [height, width]) {
        return Some(dx);
    }
    let [(top, bottom), (left, right)] = options.padding;
    if top != bottom || left != right {
        // Burn's transposed convolution pads symmetrically. An RGB stem with its padding folded
        // in (MobileNet's) goes by stride phase instead; at SqueezeNet's stem (64 channels) the
        // phases took 1.8 ms where the transposed convolution takes ~0.5 ms.
        return crate::kernels::few_channel_input_grad(dy, weight, options, [height, width]);
    }
    let [_, _, kh, kw] = weight.dims();
    let [_, _, oh, ow] = dy.dims();
    let ([sh, sw], [dh, dw]) = (options.stride, options.dilation);
    let padding_out = |size: usize, out: usize, k: usize, (s, d): (usize, usize), pad: usize| {
        let reach = ((out.checked_sub(1)?) * s + d * k.checked_sub(1)? + 1).checked_sub(2 * pad)?;
        let extra = size.checked_sub(reach)?;
        (extra < s.max(d)).then_some(extra)
    };
    let padding_out = [
        padding_out(height, oh, kh, (sh, dh), top)?,
        padding_out(width, ow, kw, (sw, dw), left)?,
    ];
    let transpose = ConvTransposeOptions::new(
        options.stride,
        [top, left],
        padding_out,
        options.dilation,
        options.groups,
    );
    Some(conv_transpose2d(
        dy.clone(),
        weight.clone(),
        None,
        transpose,
    ))
}

/// `a ± b` with both operands of the output's shape: the gradient passes through (negated for
/// the subtrahend). Broadcasting operands are left to the fallback.
fn same_shape_sum(
    inputs: &[DynTensor],
    dy: &DynTensor,
    needed: &[bool],
    negate_second: bool,
) -> Vjp {
    let dims = dy.dims();
    if inputs.len() != 2 || inputs.iter().any(|x| x.dims() != dims) {
        return None;
    }
    let grads = needed
        .iter()
        .enumerate()
        .map(|(i, &need)| {
            need.then(|| {
                if i == 1 && negate_second {
                    dyn_map!(dy.clone(), t => t.neg())
                } else {
                    dy.clone()
                }
            })
        })
        .collect();
    Some(Ok(grads))
}

/// Each input of a concatenation gets its slice of the output gradient (`None`, autodiff's
/// turn, if an input has no such axis).
fn concat_grads(inputs: &[DynTensor], dy: &DynTensor, axis: usize) -> Vjp {
    let mut start = 0;
    let grads = inputs
        .iter()
        .map(|x| {
            let length = *x.dims().get(axis)?;
            let slice = dyn_map!(dy.clone(), t => t.narrow(axis, start, length));
            start += length;
            Some(Some(slice))
        })
        .collect::<Option<_>>()?;
    Some(Ok(grads))
}

/// Global average pooling spreads each channel's gradient evenly over its pixels.
fn global_pool_grad(x_dims: &[usize], dy: &DynTensor) -> Option<DynTensor> {
    let (DynTensor::R4(dy), &[n, c, h, w]) = (dy, x_dims) else {
        return None;
    };
    if let Some(spread) = crate::kernels::spread_channels(dy, [n, c, h, w]) {
        return Some(DynTensor::R4(spread));
    }
    let spread = dy.clone().div_scalar((h * w) as f32);
    Some(DynTensor::R4(spread.expand([n, c, h, w])))
}

/// `dx = dy · Wᵀ` for `y = x · W + b`.
fn linear_grad(x_dims: &[usize], weight: &Tensor<2>, dy: &DynTensor) -> Result<DynTensor> {
    let [_, n] = weight.dims();
    let rows = dy.numel() / n.max(1);
    let dy = dy.clone().reshape(&[rows, n])?.into2("Gemm gradient")?;
    DynTensor::R2(dy.matmul(weight.clone().transpose())).reshape(x_dims)
}
