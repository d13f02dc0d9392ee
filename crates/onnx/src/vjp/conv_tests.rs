//! The convolution's fast paths (the dense and Winograd kernels, the input gradient's
//! backward weights of `conv_weights`) against Burn's convolution, forward and backward.

use burn::tensor::{Device, Distribution, Tensor, module::conv2d, ops::ConvOptions};
use feedbacknet_core::DynTensor;

use super::fast_vjp;
use crate::ops::Op;

fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}

#[test]
fn the_dense_and_winograd_kernels_equal_burn_forward_and_backward() {
    let device = Device::flex();
    let normal = Distribution::Normal(0.0, 1.0);
    for (batch, k, pad) in [(2, 3, 1), (1, 3, 0), (3, 5, 2), (2, 5, 1), (2, 1, 0)] {
        let case = format!("batch {batch} k {k} pad {pad}");
        let x = Tensor::<4>::random([batch, 8, 31, 29], normal, &device);
        let weight = Tensor::<4>::random([12, 8, k, k], normal, &device);
        let bias = Some(Tensor::<1>::random([12], normal, &device));
        let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
        let op = Op::conv2d(weight.clone(), bias.clone(), options.clone());
        let Op::Conv2d {
            winograd, backward, ..
        } = &op
        else {
            unreachable!("a convolution")
        };
        let backward = backward.get(&weight, &options);
        assert_eq!(
            (winograd.is_some(), backward.winograd.is_some()),
            (k == 3, k == 3),
            "{case}: the Winograd kernel takes exactly the 3×3 kernels, both ways"
        );
        assert_eq!(
            crate::kernels::dense_conv(&x, &weight, bias.as_ref(), &options).is_some(),
            k > 1,
            "{case}: the dense kernel takes exactly the larger kernels"
        );
        let ours = op.run(vec![DynTensor::R4(x.clone())]).expect("conv");
        let leaf = x.clone().autodiff().detach().require_grad();
        let theirs = conv2d(
            leaf.clone(),
            weight.autodiff(),
            bias.map(|b| b.autodiff()),
            options,
        );
        let ours = ours.into4("conv").expect("rank 4");
        let diff = max_diff(ours, theirs.clone().without_autodiff());
        assert!(diff < 1e-4, "{case}: forward differs by {diff}");
        let dy = Tensor::<4>::random(theirs.dims(), normal, &device);
        let grads = theirs.mul(dy.clone().autodiff()).sum().backward();
        let expected = leaf.grad(&grads).expect("input gradient");
        let inputs = [DynTensor::R4(x)];
        let dx = fast_vjp(&op, &inputs, &DynTensor::R4(dy), &[true])
            .expect("covered")
            .expect("no error")
            .remove(0)
            .expect("dx")
            .into4("dx")
            .expect("rank 4");
        let diff = max_diff(dx, expected);
        assert!(diff < 1e-4, "{case}: input gradient differs by {diff}");
    }
    // Strided, grouped or asymmetrically padded convolutions keep Burn's convolution.
    let weight = Tensor::<4>::zeros([4, 4, 3, 3], &device);
    let x = Tensor::<4>::zeros([1, 4, 40, 40], &device);
    let plain = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    assert!(crate::kernels::dense_conv(&x, &weight, None, &plain).is_some());
    let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let asymmetric = ConvOptions::new_with_padding([1, 1], [(0, 1), (1, 1)], [1, 1], 1);
    for options in [strided, asymmetric] {
        assert!(crate::kernels::dense_conv(&x, &weight, None, &options).is_none());
    }
    let grouped = Tensor::<4>::zeros([4, 2, 3, 3], &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
    assert!(crate::kernels::dense_conv(&x, &grouped, None, &options).is_none());
}
