//! The backward pass of max pooling, routed by the argmax indices of the recorded forward pass.
//!
//! A forward pass recorded for the reverse pass pools with Burn's `max_pool2d_with_indices`
//! (the same kernel and cost as the plain pooling) and keeps the indices; the backward pass is
//! then Burn's index-routing kernel, without re-running the pooling under autodiff. Each
//! window's gradient goes to its first maximum in scan order, as in PyTorch.
//!
//! (A host-side pooling loop for the CPU device was measured too: Burn's flex pooling costs
//! ~4 ms on SqueezeNet's first pooling, but the host copies cost as much as they saved.)

use burn::tensor::{Int, Tensor, module::max_pool2d_with_indices_backward, ops::MaxPoolOptions};

/// The gradient w.r.t. the input `x` for the output gradient `dy`, routed by `indices`.
/// `None` for asymmetric padding (Burn's kernel takes one padding per axis) or mismatched shapes.
pub(crate) fn max_pool2d_backward(
    x: Tensor<4>,
    dy: Tensor<4>,
    indices: Tensor<4, Int>,
    options: &MaxPoolOptions<2>,
) -> Option<Tensor<4>> {
    let [(top, bottom), (left, right)] = options.padding;
    if top != bottom || left != right || dy.dims() != indices.dims() {
        return None;
    }
    Some(max_pool2d_with_indices_backward(
        x,
        options.kernel_size,
        options.stride,
        [top, left],
        options.dilation,
        options.ceil_mode,
        dy,
        indices,
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, TensorData, module, module::max_pool2d_with_indices};

    use super::*;

    fn options(k: usize, s: usize, pad: (usize, usize), ceil: bool) -> MaxPoolOptions<2> {
        MaxPoolOptions::new([k, k])
            .with_stride([s, s])
            .with_padding_pairs([pad, pad])
            .with_ceil_mode(ceil)
    }

    fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        a.sub(b).abs().max().into_scalar()
    }

    #[test]
    fn forward_and_backward_match_burn_with_autodiff() {
        let device = Device::flex();
        for (size, k, s, pad, ceil) in [
            (13, 3, 2, (0, 0), true),
            (12, 3, 2, (0, 0), true),
            (12, 3, 2, (0, 0), false),
            (11, 3, 1, (1, 1), false),
            (10, 2, 2, (0, 0), false),
            (9, 3, 2, (1, 1), true),
        ] {
            let x =
                Tensor::<4>::random([2, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
            let opts = options(k, s, pad, ceil);
            let (ours, indices) = max_pool2d_with_indices(x.clone(), opts.clone());
            let leaf = x.clone().autodiff().detach().require_grad();
            let theirs = module::max_pool2d(leaf.clone(), opts.clone());
            let dy = Tensor::<4>::random(theirs.dims(), Distribution::Normal(0.0, 1.0), &device);
            let grads = theirs.clone().mul(dy.clone().autodiff()).sum().backward();
            let expected_dx = leaf.grad(&grads).expect("input gradient");
            let theirs = theirs.without_autodiff();
            assert_eq!(
                max_abs_diff(ours.clone(), theirs),
                0.0,
                "{size} {k} {s} {pad:?} {ceil}"
            );
            let dx = max_pool2d_backward(x, dy, indices, &opts).expect("symmetric padding");
            assert!(
                max_abs_diff(dx, expected_dx) < 1e-6,
                "{size} {k} {s} {pad:?} {ceil}"
            );
        }
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum_only() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32; 9], [1, 1, 3, 3]), &device);
        let opts = options(2, 1, (0, 0), false);
        let (y, indices) = max_pool2d_with_indices(x.clone(), opts.clone());
        let dx = max_pool2d_backward(x, y.ones_like(), indices, &opts).expect("symmetric");
        let values = dx.into_data().try_to_vec::<f32>().expect("f32");
        // Each of the four windows routes its gradient to its top-left element.
        assert_eq!(values, vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
