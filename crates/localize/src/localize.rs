//! From a saliency map to object boxes.

use serde::{Deserialize, Serialize};

use crate::{BoundingBox, Component, LocalizeConfig, Result, SaliencyMap, connected_components};

/// Result of [`localize`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Localization {
    /// Box of the largest component; `None` when the map has no positive value.
    pub best: Option<BoundingBox>,
    /// Boxes of all components with at least `min_area_fraction` of the map
    /// area, largest first. When `best` is `Some`, `boxes[0]` is that box,
    /// even if its component is below the minimum area.
    pub boxes: Vec<BoundingBox>,
    /// The blurred, normalised map that was thresholded (maximum 1, or all 0).
    pub smoothed: SaliencyMap,
}

/// Finds object boxes in a saliency map (coordinates of the map's pixels).
///
/// Steps: clamp negative values to 0, Gaussian blur with
/// `config.blur_sigma`, normalise (divide by the maximum, or by a percentile and clamp at 1:
/// `config.scale`), keep pixels `>= config.threshold`, label 8-connected components,
/// report their boxes.
///
/// Errors: [`crate::LocalizeError::InvalidParameter`] for an invalid config.
///
/// ```
/// use feedbacknet_localize::{localize, LocalizeConfig, SaliencyMap};
/// let map = SaliencyMap::from_fn(64, 64, |x, y| {
///     if (10..30).contains(&x) && (20..40).contains(&y) { 1.0 } else { 0.0 }
/// })?;
/// let loc = localize(&map, &LocalizeConfig::default().with_blur_sigma(0.0))?;
/// let best = loc.best.unwrap();
/// assert_eq!((best.x0, best.y0, best.x1, best.y1), (10.0, 20.0, 30.0, 40.0));
/// # Ok::<(), feedbacknet_localize::LocalizeError>(())
/// ```
pub fn localize(map: &SaliencyMap, config: &LocalizeConfig) -> Result<Localization> {
    config.validate()?;
    let smoothed = map
        .clamped_nonnegative()
        .gaussian_blur(config.blur_sigma)?
        .normalized_by(config.scale);
    let mask = smoothed.threshold(config.threshold)?;
    let components = connected_components(&mask);
    let best = components.first().map(|c| c.bbox);
    let boxes = component_boxes(
        &components,
        config.min_area_fraction,
        map.width(),
        map.height(),
    );
    Ok(Localization {
        best,
        boxes,
        smoothed,
    })
}

/// The boxes of the components (sorted largest first) with at least `min_area_fraction` of a
/// `width x height` map's area; the largest component's box is always kept, even when it is
/// below that area.
pub(crate) fn component_boxes(
    components: &[Component],
    min_area_fraction: f32,
    width: usize,
    height: usize,
) -> Vec<BoundingBox> {
    let min_area = f64::from(min_area_fraction) * (width as f64 * height as f64);
    let mut boxes: Vec<BoundingBox> = components
        .iter()
        .filter(|c| c.area as f64 >= min_area)
        .map(|c| c.bbox)
        .collect();
    // Components are sorted by area, so if the largest one was filtered out, every other one
    // was too.
    if let (Some(c), true) = (components.first(), boxes.is_empty()) {
        boxes.push(c.bbox);
    }
    boxes
}
