//! Copies that reshape a map: planes padded by a constant, and a per-channel gradient spread
//! over its planes (the gradient of a global average pooling).
//!
//! Each answers `None` without a fast path; the caller then runs Burn's op (the reference:
//! `reference::pad_planes`, `reference::spread_channels`).

use burn::tensor::Tensor;

use crate::{backend::Fast, fast::FastPath};

/// The gradient of a global average pooling of an `[n, c, h, w]` input: each channel's
/// gradient `dy[n, c]` spread evenly over its `h · w` pixels, written out on flex (Burn's
/// `expand` leaves a broadcast view that every later step would copy the slow way); `None`
/// elsewhere.
pub fn spread_channels(dy: &Tensor<4>, dims: [usize; 4]) -> Option<Tensor<4>> {
    Fast::spread_channels(dy, dims)
}

/// `x` padded by `value` around each plane (`[(top, bottom), (left, right)]`), in one pass on
/// flex; `None` elsewhere.
pub fn pad_planes(x: &Tensor<4>, pads: [(usize, usize); 2], value: f32) -> Option<Tensor<4>> {
    Fast::pad_planes(x, pads, value)
}

#[cfg(all(test, feature = "flex"))] // without flex there is no fast path to compare
mod tests {
    use burn::tensor::{Device, Distribution};
    use feedbacknet_core::DynTensor;

    use super::*;
    use crate::{reference, testing::max_abs};

    #[test]
    fn plane_padding_equals_burn_padding() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 7, 5], Distribution::Normal(0.0, 1.0), &device);
        for (pads, value) in [([(0, 1), (0, 1)], 0.0), ([(2, 0), (1, 3)], 1.5)] {
            let ours = pad_planes(&x, pads, value).expect("flex");
            let theirs = reference::pad_planes(x.clone(), pads, value);
            let diff = max_abs(DynTensor::R4(ours), DynTensor::R4(theirs));
            assert_eq!(diff, 0.0, "{pads:?} {value}");
        }
    }

    #[test]
    fn spreading_channels_equals_burn_expand() {
        let device = Device::flex();
        let dy = Tensor::<4>::random([2, 5, 1, 1], Distribution::Normal(0.0, 1.0), &device);
        for dims in [[2, 5, 7, 3], [2, 5, 1, 1], [2, 5, 13, 13]] {
            let ours = spread_channels(&dy, dims).expect("flex");
            let theirs = reference::spread_channels(dy.clone(), dims);
            let diff = max_abs(DynTensor::R4(ours), DynTensor::R4(theirs));
            assert_eq!(diff, 0.0, "{dims:?}");
        }
        // A gradient that is not one value per channel is refused.
        let wide = Tensor::<4>::zeros([2, 5, 2, 1], &device);
        assert!(spread_channels(&wide, [2, 5, 4, 4]).is_none());
    }
}
