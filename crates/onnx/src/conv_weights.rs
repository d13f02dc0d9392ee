//! The derived weights a convolution's input gradient reads ([`BackwardWeights`]), prepared by
//! the first reverse pass that needs them (the forward pass's Winograd weight is prepared when
//! the program is built: `Op::conv2d`).
//!
//! Why the reverse pass's weights wait: they are a second copy of every stride-1 weight (and a
//! Winograd transform of the 3×3 ones), which a net that only classifies never reads. Made at
//! load they cost ResNet-50 65 MB and 0.08 s of a 0.29 s load (`scripts/load_speed.sh`).

use std::sync::{Arc, OnceLock};

use burn::tensor::{Tensor, ops::ConvOptions};

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
