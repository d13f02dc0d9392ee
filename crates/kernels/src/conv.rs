//! Convolutions and their input gradients: depthwise ones and RGB stems as correlations over
//! stride phases, pointwise ones as one matrix product per sample, dense stride-1 ones as a few
//! matrix products, the 3×3 ones by Winograd's F(2×2, 3×3).
//!
//! Each kernel answers `None` where it does not apply (another backend, an autodiff tensor, a
//! convolution of another kind, or a build without `flex`); the caller then runs Burn's
//! convolution, which is their reference.

use burn::tensor::{Tensor, ops::ConvOptions};

use crate::{backend::Fast, fast::FastPath};

/// The input gradient of a depthwise convolution (one filter per channel, dilation 1) as a
/// correlation on flex; `None` elsewhere or for any other convolution (the caller then uses
/// Burn's transposed convolution).
pub fn depthwise_input_grad(
    dy: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
    input_hw: [usize; 2],
) -> Option<Tensor<4>> {
    Fast::depthwise_input_grad(dy, weight, options, input_hw)
}

/// A depthwise convolution (one filter per channel, dilation 1) as a correlation on flex
/// (strided ones over stride phases); `None` elsewhere or for any other convolution (the caller
/// then uses Burn's convolution).
pub fn depthwise_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    Fast::depthwise_conv(x, weight, bias, options)
}

/// A dense convolution with at most 32 input taps per output (an RGB stem: 3 channels of 3×3)
/// as correlations over stride phases on flex; `None` elsewhere or for any other convolution.
pub fn few_channel_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    Fast::few_channel_conv(x, weight, bias, options)
}

/// The input gradient of a dense convolution with at most 32 input taps per output (an RGB
/// stem) by stride phase on flex; `None` elsewhere or for any other convolution.
pub fn few_channel_input_grad(
    dy: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
    input_hw: [usize; 2],
) -> Option<Tensor<4>> {
    Fast::few_channel_input_grad(dy, weight, options, input_hw)
}

/// A pointwise convolution (1×1 kernel, stride 1, no padding, one group) as one matrix product
/// per sample on flex; `None` elsewhere or for any other convolution. Also the input gradient
/// of a pointwise convolution, given its channel-swapped weight and no bias.
pub fn pointwise_conv(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    Fast::pointwise_conv(x, weight, bias, options)
}

/// The top and left padding of a stride-1, undilated, ungrouped convolution padded alike on
/// both sides of each axis (what the dense kernel takes, and what makes the input gradient
/// another such convolution); `None` for any other.
pub fn symmetric_stride_one(options: &ConvOptions<2>) -> Option<[usize; 2]> {
    let [(top, bottom), (left, right)] = options.padding;
    let fits = options.stride == [1, 1]
        && options.dilation == [1, 1]
        && options.groups == 1
        && top == bottom
        && left == right;
    fits.then_some([top, left])
}

/// A dense stride-1 convolution (one group, dilation 1, symmetric padding below the kernel
/// size, a kernel larger than 1×1) as a few matrix products on flex; `None` elsewhere or for
/// any other convolution (the caller then uses Burn's).
pub fn dense_conv(
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
    Fast::dense_conv(x, weight, bias, pad)
}

/// A 3×3 stride-1 convolution's weight, and the weight of its input gradient (the
/// channel-swapped, tap-reversed one), transformed for the Winograd kernel.
#[derive(Debug, Clone)]
pub struct WinogradWeights {
    /// The forward weight, `[16, O, C]`.
    pub forward: Tensor<3>,
    /// The input gradient's weight, `[16, C, O]`, where there is one.
    pub backward: Option<Tensor<3>>,
}

/// The transformed weights of a convolution that the Winograd kernel takes (3×3, stride 1,
/// symmetric padding of at most 2, at least 8 channels in and out) on flex; `None` for any
/// other.
pub fn winograd_weights(
    weight: &Tensor<4>,
    backward_weight: Option<&Tensor<4>>,
    options: &ConvOptions<2>,
) -> Option<Box<WinogradWeights>> {
    let pad = symmetric_stride_one(options)?;
    Fast::winograd_weights(weight, backward_weight, pad)
}

/// A 3×3 stride-1 convolution by Winograd's F(2×2, 3×3) on flex, given its transformed weight
/// ([`winograd_weights`]); `None` elsewhere or for any other convolution.
pub fn winograd_conv(
    x: &Tensor<4>,
    transformed: &Tensor<3>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let pad = symmetric_stride_one(options)?;
    Fast::winograd_conv(x, transformed, bias, pad)
}

/// The input gradient of a pointwise convolution whose output gradient `dy` is nonzero in few
/// channels (a class-score seed reaching a convolutional classifier such as SqueezeNet's
/// `conv10`): only those channels of the channel-swapped weight `swapped` (`[C, O, 1, 1]`)
/// are multiplied in, on flex. `None` elsewhere, or when more than a quarter of the channels
/// carry a gradient (the dense product is then the faster way).
pub fn sparse_pointwise_input_grad(dy: &Tensor<4>, swapped: &Tensor<4>) -> Option<Tensor<4>> {
    Fast::sparse_pointwise_input_grad(dy, swapped)
}

#[cfg(all(test, feature = "flex"))] // without flex there is no fast path to compare
mod tests {
    use burn::tensor::{Device, Distribution, module};
    use feedbacknet_core::DynTensor;

    use super::*;
    use crate::testing::max_abs;

    #[test]
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
}
