//! A convolution step's op with the derived weights its fast paths read: the forward pass's
//! Winograd weight, prepared when the program is built (by `compile`, and again by `fold` when
//! it changes the padding), and the input gradient's weights ([`BackwardWeights`]), prepared
//! by the first reverse pass that needs them.
//!
//! Why the reverse pass's weights wait: they are a second copy of every stride-1 weight (and a
//! Winograd transform of the 3×3 ones), which a net that only classifies never reads. Made at
//! load they cost ResNet-50 65 MB and 0.08 s of a 0.29 s load (`scripts/load_speed.sh`).

use std::sync::{Arc, OnceLock};

use burn::tensor::{Tensor, ops::ConvOptions};

use crate::ops::Op;

/// The convolution `weight`/`bias`/`options` as an [`Op::Conv2d`], with its forward Winograd
/// weight derived (its backward weights come on first use).
pub(crate) fn conv_op(weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Op {
    let winograd = crate::kernels::winograd_weights(&weight, None, &options);
    Op::Conv2d {
        weight,
        bias,
        options,
        backward: BackwardWeights::default(),
        winograd,
    }
}

/// The weights a convolution's input gradient reads, made once, on first use (and shared by
/// the op's clones).
#[derive(Debug, Clone, Default)]
pub(crate) struct BackwardWeights(Arc<OnceLock<Backward>>);

/// The input gradient's weights of one convolution.
#[derive(Debug, Clone)]
pub(crate) struct Backward {
    /// The channel-swapped, tap-reversed weight (see [`backward_weight`]), where the input
    /// gradient is another stride-1 convolution.
    pub weight: Option<Tensor<4>>,
    /// That weight transformed for the Winograd kernel, for the 3×3 convolutions it takes.
    pub winograd: Option<Tensor<3>>,
}

impl BackwardWeights {
    /// The backward weights of the convolution of `weight` and `options`, made now if this is
    /// the first call.
    pub(crate) fn get(&self, weight: &Tensor<4>, options: &ConvOptions<2>) -> &Backward {
        self.0.get_or_init(|| {
            let weight = backward_weight(weight, options).map(|b| *b);
            let winograd = (weight.as_ref())
                .and_then(|b| crate::kernels::winograd_weights(b, None, options))
                .map(|w| w.forward);
            Backward { weight, winograd }
        })
    }
}

/// The channel-swapped, tap-reversed weight of a stride-1 convolution whose input gradient is
/// another stride-1 convolution (see `Op::Conv2d`).
pub(crate) fn backward_weight(
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
) -> Option<Box<Tensor<4>>> {
    let [_, _, kh, kw] = weight.dims();
    let [top, left] = crate::kernels::symmetric_stride_one(options)?;
    (top < kh && left < kw).then(|| {
        let swapped = weight.clone().swap_dims(0, 1).flip([2, 3]);
        Box::new(Tensor::from_data(swapped.into_data(), &weight.device()))
    })
}

#[cfg(all(test, feature = "flex"))] // the dense kernel runs on flex only
mod tests {
    use burn::tensor::{Device, Distribution, module::conv2d};
    use feedbacknet_core::DynTensor;

    use super::*;
    use crate::vjp::fast_vjp;

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
            let op = conv_op(weight.clone(), bias.clone(), options.clone());
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
}
