//! Pointwise convolutions (1×1 kernel, stride 1, no padding, one group) on flex buffers: one
//! matrix product per sample, `Y[n] = W · X[n] + b`, read straight from the input's buffer.
//!
//! flex runs these through its general convolution, which took 0.33 ms for SqueezeNet's
//! `16 → 64` expand layer at 55×55 (3.1 M multiply-adds, ~9 GMAC/s); the plain product is
//! bound by writing its result. The input gradient of a pointwise convolution is one too, with
//! the channel-swapped weight.

use std::mem::MaybeUninit;

use super::buffer::{buffer, each_plane, float, optional_buffer, written};
use burn::tensor::{Tensor, ops::ConvOptions};

use super::product::{Matrix, Output, product};

/// Whether `options` and a kernel of `w_dims` make a pointwise convolution.
pub(crate) fn is_pointwise(w_dims: [usize; 4], options: &ConvOptions<2>) -> bool {
    let [_, _, kh, kw] = w_dims;
    [kh, kw] == [1, 1]
        && options.stride == [1, 1]
        && options.padding == [(0, 0), (0, 0)]
        && options.groups == 1
}

/// `conv2d(x, weight, bias)` for a `[O, C, 1, 1]` weight, or `None` if a tensor is not a flex
/// tensor or the channels differ.
pub(crate) fn conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
) -> Option<Tensor<4>> {
    let [batch, channels, h, w] = x.dims();
    let [outputs, per_output, _, _] = weight.dims();
    if per_output != channels || [batch, channels, outputs, h * w].contains(&0) {
        return None;
    }
    let (px, pw) = (buffer(x)?, buffer(weight)?);
    let bias = optional_buffer(bias)?;
    let (x, weight) = (px.storage::<f32>(), pw.storage::<f32>());
    let plane = h * w;
    let shape = [outputs, plane, channels];
    let sample = |n: usize| Matrix::new(&x[n * channels * plane..][..channels * plane], plane);
    let weight = Matrix::new(weight, channels);
    let values = match bias.as_ref().map(|b| b.storage::<f32>()) {
        Some(bias) => {
            // SAFETY: each plane is filled with its channel's bias.
            let mut values = unsafe {
                written(batch * outputs * plane, |out| {
                    each_plane(out, plane, |i, dst: &mut [MaybeUninit<f32>]| {
                        dst.fill(MaybeUninit::new(bias[i % outputs]));
                    })
                })
            };
            for (n, out) in values.chunks_exact_mut(outputs * plane).enumerate() {
                product(Output::add_to(out, plane), weight, sample(n), shape);
            }
            values
        }
        // SAFETY: the product of each sample writes its `outputs × plane` result in full.
        None => unsafe {
            written(batch * outputs * plane, |out| {
                for (n, out) in out.chunks_exact_mut(outputs * plane).enumerate() {
                    product(Output::overwrite(out, plane), weight, sample(n), shape);
                }
            })
        },
    };
    Some(float(values, [batch, outputs, h, w]))
}

/// The input gradient of a pointwise convolution whose output gradient `dy` is nonzero in few
/// channels: only those channels of the channel-swapped weight `swapped` are multiplied in;
/// `None` when more than a quarter of the channels carry a gradient.
pub(crate) fn sparse_pointwise_input_grad(
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
