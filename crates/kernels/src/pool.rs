//! Max pooling with its argmax indices (a tight loop over precomputed windows on flex).

use burn::tensor::{Int, Tensor, ops::MaxPoolOptions};

use crate::{backend::Fast, fast::FastPath, reference};

/// Max pooling that also returns, per output, the flat index (`row · width + column`) of its
/// input maximum within the plane (Burn's convention).
pub fn max_pool_with_indices(
    x: Tensor<4>,
    options: &MaxPoolOptions<2>,
) -> (Tensor<4>, Tensor<4, Int>) {
    Fast::max_pool_with_indices(&x, options)
        .unwrap_or_else(|| reference::max_pool_with_indices(x, options))
}

/// Max pooling (the fast path of [`max_pool_with_indices`] without its indices).
pub fn max_pool(x: Tensor<4>, options: &MaxPoolOptions<2>) -> Tensor<4> {
    match Fast::max_pool_with_indices(&x, options) {
        Some((y, _)) => y,
        None => reference::max_pool(x, options),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::testing::max_abs;
    use feedbacknet_core::DynTensor;

    fn options(k: usize, s: usize, pad: usize, ceil: bool) -> MaxPoolOptions<2> {
        MaxPoolOptions::new([k, k])
            .with_stride([s, s])
            .with_padding([pad, pad])
            .with_ceil_mode(ceil)
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
            let (theirs, their_idx) = reference::max_pool_with_indices(x, &opts);
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
            let (theirs, their_idx) = reference::max_pool_with_indices(x.clone(), &opts);
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
}
