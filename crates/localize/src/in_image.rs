//! From a saliency map at image resolution to boxes in image pixels, the blur given in
//! network-input pixels: the one rule the `feedbacknet` facade, `feedbacknet eval` and
//! `feedbacknet tune` share, so that library and evaluator cannot drift apart.

use crate::{
    ColourImage, Localization, LocalizeConfig, RefineConfig, Result, SaliencyMap,
    connected_components,
    localize::{component_boxes, localize},
    refine_mask,
};

/// The colour-model refinement of [`localize_in_image`]: the image's pixels (at the map's
/// size) and the settings of [`refine_mask`].
#[derive(Debug, Clone, Copy)]
pub struct Refinement<'a> {
    /// The image, at the map's size.
    pub image: &'a ColourImage,
    /// The refinement settings.
    pub config: &'a RefineConfig,
}

/// The blur sigma in map pixels of `sigma` network-input pixels: scaled by the ratio of the
/// map's to the input's resolution (the square root of the ratio of their pixel counts).
pub fn sigma_in_map(sigma: f32, map: &SaliencyMap, input_size: (usize, usize)) -> f32 {
    let input_pixels = (input_size.0 * input_size.1).max(1) as f64;
    let scale = ((map.width() * map.height()) as f64 / input_pixels).sqrt() as f32;
    sigma * scale
}

/// The map that [`localize_in_image`] thresholds: `map` (at the image's resolution) blurred
/// with sigma `blur_sigma` network-input pixels ([`sigma_in_map`]) and normalised to maximum 1
/// (with a [`crate::MapScale`] other than the maximum, [`localize_in_image`] then divides
/// it by that scale). The evaluator scores this map, so it is the same function, not a copy of
/// its rule.
///
/// Errors: [`crate::LocalizeError::InvalidParameter`] for an invalid sigma.
pub fn smoothed_in_image(
    map: &SaliencyMap,
    input_size: (usize, usize),
    blur_sigma: f32,
) -> Result<SaliencyMap> {
    let sigma = sigma_in_map(blur_sigma, map, input_size);
    Ok(map.gaussian_blur(sigma)?.normalized())
}

/// Finds object boxes in `map`, a saliency map at the original image's resolution, in image
/// pixels.
///
/// Steps: Gaussian blur with `config.blur_sigma` **network-input** pixels (`input_size` is
/// the network input's width and height), scaled to the map's resolution by
/// [`sigma_in_map`]; normalise to maximum 1 (negative values clamped to 0), or by
/// `config.scale`; keep pixels `>=
/// config.threshold`; with a [`Refinement`], grow or shrink that mask with the image's colours
/// ([`refine_mask`] seeded at the threshold); label 8-connected components; report their
/// boxes as [`localize`](crate::localize) does (at least `config.min_area_fraction` of the
/// map's area, the largest always first). [`Localization::smoothed`] is the blurred,
/// normalised map that was thresholded.
///
/// Errors: [`crate::LocalizeError::InvalidParameter`] for an invalid config or refinement, a
/// [`crate::LocalizeError::ShapeMismatch`] when the refinement's image is not the map's size.
///
/// ```
/// use feedbacknet_localize::{localize_in_image, LocalizeConfig, SaliencyMap};
/// // A 448x448 map (twice a 224x224 input): sigma 10 input pixels blurs by 20 map pixels.
/// let map = SaliencyMap::from_fn(448, 448, |x, y| {
///     if (100..300).contains(&x) && (50..250).contains(&y) { 1.0 } else { 0.0 }
/// })?;
/// let loc = localize_in_image(&map, (224, 224), &LocalizeConfig::default(), None)?;
/// let best = loc.best.expect("the map is not all zero");
/// assert!(best.x0 < 100.0 && best.x1 > 300.0);
/// # Ok::<(), feedbacknet_localize::LocalizeError>(())
/// ```
pub fn localize_in_image(
    map: &SaliencyMap,
    input_size: (usize, usize),
    config: &LocalizeConfig,
    refinement: Option<Refinement<'_>>,
) -> Result<Localization> {
    config.validate()?;
    let smoothed =
        smoothed_in_image(map, input_size, config.blur_sigma)?.normalized_by(config.scale);
    let unblurred = config.with_blur_sigma(0.0);
    let Some(refinement) = refinement else {
        return localize(&smoothed, &unblurred);
    };
    let mask = refine_mask(
        &smoothed,
        refinement.image,
        config.threshold,
        refinement.config,
    )?;
    let components = connected_components(&mask);
    let boxes = component_boxes(
        &components,
        config.min_area_fraction,
        mask.width(),
        mask.height(),
    );
    Ok(Localization {
        best: components.first().map(|c| c.bbox),
        boxes,
        smoothed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(size: usize, from: usize, to: usize) -> SaliencyMap {
        SaliencyMap::from_fn(size, size, |x, y| {
            if (from..to).contains(&x) && (from..to).contains(&y) {
                1.0
            } else {
                0.0
            }
        })
        .unwrap()
    }

    #[test]
    fn sigma_scales_with_the_resolution() {
        let map = square(448, 0, 1);
        assert_eq!(sigma_in_map(10.0, &map, (224, 224)), 20.0);
        assert_eq!(sigma_in_map(10.0, &square(224, 0, 1), (224, 224)), 10.0);
    }

    #[test]
    fn at_input_size_it_is_localize() {
        let map = square(224, 60, 150);
        let config = LocalizeConfig::default();
        let here = localize_in_image(&map, (224, 224), &config, None).unwrap();
        assert_eq!(here, crate::localize(&map, &config).unwrap());
    }

    #[test]
    fn smoothed_is_the_scaled_blur_normalized() {
        let map = square(300, 100, 200);
        let config = LocalizeConfig::default().with_threshold(0.3);
        let loc = localize_in_image(&map, (150, 150), &config, None).unwrap();
        let expected = map.gaussian_blur(20.0).unwrap().normalized();
        assert_eq!(loc.smoothed, expected);
        let again = crate::localize(&expected, &config.with_blur_sigma(0.0)).unwrap();
        assert_eq!(loc.best, again.best);
    }

    #[test]
    fn refinement_checks_its_image() {
        let map = square(64, 10, 40);
        let image = ColourImage::from_fn(32, 32, |_, _| [0, 0, 0]).unwrap();
        let config = RefineConfig::default();
        let refinement = Refinement {
            image: &image,
            config: &config,
        };
        let located =
            localize_in_image(&map, (64, 64), &LocalizeConfig::default(), Some(refinement));
        assert!(located.is_err());
    }
}
