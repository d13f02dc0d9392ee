//! Scores of one saliency map against the ground-truth boxes of its image.

use feedbacknet_localize::{
    BoundingBox, ColourImage, Localization, LocalizeConfig, MapScale, RefineConfig, SaliencyMap,
    localize,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::metrics::sweep::sweep_ious;

/// Parameters of [`measure`], built in builder style.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `threshold` | 0.2 | fraction of the smoothed map's maximum for the main box (GT-known, top-1, top-5) |
/// | `blur_sigma` | 10.0 | Gaussian blur in map pixels (the map is at ground-truth image size) |
/// | `sweep` | 0.00, 0.01, ..., 0.99 | thresholds of the MaxBoxAccV2 sweep (wsolevaluation's `cam_curve_interval` 0.01) |
/// | `pointing_tolerance_px` | 15.0 | pointing-game tolerance in ground-truth image pixels (Zhang et al. 2016) |
/// | `refine` | `None` | colour-model refinement of every thresholded mask ([`feedbacknet_localize::refine_mask`]; needs the image) |
/// | `scale` | `max` | what the main box's threshold is a fraction of: the smoothed map's maximum, or a percentile of its pixels (the sweep always takes fractions of the maximum) |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeasureConfig {
    /// Fraction of the maximum of the blurred, normalised map a pixel must
    /// reach to be on when building the main box; in `[0, 1]`.
    pub threshold: f32,
    /// Standard deviation of the Gaussian blur applied before thresholding,
    /// in map pixels; 0 disables it.
    pub blur_sigma: f32,
    /// Thresholds of the MaxBoxAccV2 sweep, each in `[0, 1]`.
    pub sweep: Vec<f32>,
    /// Pointing-game tolerance: the map's peak may lie this many pixels
    /// (Euclidean distance) outside a ground-truth box and still hit.
    pub pointing_tolerance_px: f32,
    /// Grow or shrink each thresholded mask with a colour model of the image before boxing
    /// ([`feedbacknet_localize::refine_mask`]), for the main box and every sweep threshold; `None`: plain masks.
    pub refine: Option<RefineConfig>,
    /// What the main box's threshold is a fraction of ([`LocalizeConfig::scale`]): the
    /// smoothed map's maximum (the default) or a percentile of it. The MaxBoxAccV2 sweep
    /// always thresholds fractions of the maximum (wsolevaluation's rule), so that it stays
    /// comparable across scales.
    pub scale: MapScale,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        let localize = LocalizeConfig::default();
        Self {
            threshold: localize.threshold,
            blur_sigma: localize.blur_sigma,
            sweep: default_sweep(),
            pointing_tolerance_px: 15.0,
            refine: None,
            scale: localize.scale,
        }
    }
}

/// The thresholds 0.00, 0.01, ..., 0.99 (wsolevaluation's default
/// `cam_curve_interval = 0.01`, i.e. `np.arange(0, 1, 0.01)`).
pub fn default_sweep() -> Vec<f32> {
    (0..100u8).map(|i| f32::from(i) / 100.0).collect()
}

impl MeasureConfig {
    /// Sets [`MeasureConfig::threshold`].
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets [`MeasureConfig::blur_sigma`].
    pub fn with_blur_sigma(mut self, sigma: f32) -> Self {
        self.blur_sigma = sigma;
        self
    }

    /// Sets [`MeasureConfig::sweep`].
    pub fn with_sweep(mut self, sweep: Vec<f32>) -> Self {
        self.sweep = sweep;
        self
    }

    /// Sets [`MeasureConfig::refine`].
    pub fn with_refine(mut self, refine: Option<RefineConfig>) -> Self {
        self.refine = refine;
        self
    }

    /// Sets [`MeasureConfig::scale`].
    pub fn with_scale(mut self, scale: MapScale) -> Self {
        self.scale = scale;
        self
    }

    /// Sets [`MeasureConfig::pointing_tolerance_px`].
    pub fn with_pointing_tolerance_px(mut self, pixels: f32) -> Self {
        self.pointing_tolerance_px = pixels;
        self
    }

    /// The [`LocalizeConfig`] of the main box (no minimum component area).
    pub fn localize_config(&self) -> LocalizeConfig {
        LocalizeConfig::default()
            .with_threshold(self.threshold)
            .with_blur_sigma(self.blur_sigma)
            .with_min_area_fraction(0.0)
            .with_scale(self.scale)
    }

    /// Checks every parameter; [`crate::EvalError::InvalidParameter`] or
    /// [`crate::EvalError::Localize`] names the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.localize_config().validate()?;
        if let Some(t) = self.sweep.iter().find(|t| !(0.0..=1.0).contains(*t)) {
            return Err(invalid("sweep", t, "every threshold must lie in [0, 1]"));
        }
        let tolerance = self.pointing_tolerance_px;
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(invalid(
                "pointing_tolerance_px",
                tolerance,
                "must be finite and >= 0",
            ));
        }
        if let Some(refine) = &self.refine {
            refine.validate()?;
        }
        Ok(())
    }
}

/// What [`measure`] finds in one map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapScores {
    /// Box of the largest connected component at [`MeasureConfig::threshold`];
    /// `None` for a map without positive values.
    pub best_box: Option<BoundingBox>,
    /// Largest IoU of `best_box` with any ground-truth box (0 without a box).
    pub iou: f32,
    /// For each threshold of the sweep, the largest IoU of any component's
    /// box with any ground-truth box (wsolevaluation's MaxBoxAccV2 with
    /// `multi_contour_eval`: boxes from all contours).
    pub maxbox_ious: Vec<f32>,
    /// Whether the map's peak hits a ground-truth box (pointing game).
    pub pointing_hit: bool,
}

/// Scores `map` (already at the size of the image the boxes refer to)
/// against the ground-truth boxes `gt`.
///
/// The map is clamped at 0, blurred and normalised once ([`localize`]);
/// the main box is its largest component at `config.threshold` (a fraction of
/// `config.scale`), and the sweep thresholds the same smoothed map, normalised by
/// its maximum, at every `config.sweep` value
/// (incrementally: the components at each threshold are exactly
/// [`feedbacknet_localize::connected_components`] of
/// [`SaliencyMap::threshold`], found several times faster).
/// With no ground-truth box every IoU is 0 and the pointing game misses.
///
/// Errors: an invalid `config`; a `config.refine` without `image`
/// ([`measure_with_image`]).
pub fn measure(map: &SaliencyMap, gt: &[BoundingBox], config: &MeasureConfig) -> Result<MapScores> {
    measure_with_image(map, None, gt, config)
}

/// [`measure`] with the image (at the map's size) that [`MeasureConfig::refine`] reads; with
/// refinement every mask, the main one and each of the sweep, is refined before boxing.
pub fn measure_with_image(
    map: &SaliencyMap,
    image: Option<&ColourImage>,
    gt: &[BoundingBox],
    config: &MeasureConfig,
) -> Result<MapScores> {
    config.validate()?;
    let (by_max, scaled) = localized(map, config)?;
    let refinement = refinement(config, image)?;
    let best_box = main_box(
        scaled.as_ref().unwrap_or(&by_max),
        refinement,
        config.threshold,
    )?;
    let by_max = &by_max.smoothed;
    let maxbox_ious = match refinement {
        None => sweep_ious(by_max, gt, &config.sweep),
        Some((image, refine)) => config
            .sweep
            .iter()
            .map(|&t| Ok(max_iou(&refined_boxes(by_max, image, t, refine)?, gt)))
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(MapScores {
        best_box,
        iou: max_iou(best_box.iter(), gt),
        maxbox_ious,
        pointing_hit: pointing_hit(map, gt, config.pointing_tolerance_px),
    })
}

/// The image and settings of the refinement, if the config asks for one.
fn refinement<'a>(
    config: &'a MeasureConfig,
    image: Option<&'a ColourImage>,
) -> Result<Option<(&'a ColourImage, &'a RefineConfig)>> {
    match (&config.refine, image) {
        (None, _) => Ok(None),
        (Some(refine), Some(image)) => Ok(Some((image, refine))),
        (Some(_), None) => Err(invalid(
            "refine",
            "no image",
            "colour refinement needs the image of the map",
        )),
    }
}

/// The box of the largest component at `threshold`: of the plain mask `loc` found, or of its
/// refinement.
fn main_box(
    loc: &Localization,
    refinement: Option<(&ColourImage, &RefineConfig)>,
    threshold: f32,
) -> Result<Option<BoundingBox>> {
    Ok(match refinement {
        None => loc.best,
        Some((image, refine)) => refined_boxes(&loc.smoothed, image, threshold, refine)?
            .first()
            .copied(),
    })
}

/// Component boxes of the refined mask at `threshold`, largest first.
fn refined_boxes(
    smoothed: &SaliencyMap,
    image: &ColourImage,
    threshold: f32,
    refine: &RefineConfig,
) -> Result<Vec<BoundingBox>> {
    Ok(feedbacknet_localize::refined_boxes(
        smoothed, image, threshold, refine, 0.0,
    )?)
}

/// Only the main box of [`measure`] and its IoU (no sweep, no pointing game).
pub fn measure_box(
    map: &SaliencyMap,
    gt: &[BoundingBox],
    config: &MeasureConfig,
) -> Result<(Option<BoundingBox>, f32)> {
    measure_box_with_image(map, None, gt, config)
}

/// [`measure_box`] with the image [`MeasureConfig::refine`] reads.
pub fn measure_box_with_image(
    map: &SaliencyMap,
    image: Option<&ColourImage>,
    gt: &[BoundingBox],
    config: &MeasureConfig,
) -> Result<(Option<BoundingBox>, f32)> {
    config.validate()?;
    let (by_max, scaled) = localized(map, config)?;
    let loc = scaled.as_ref().unwrap_or(&by_max);
    let best = main_box(loc, refinement(config, image)?, config.threshold)?;
    Ok((best, max_iou(best.iter(), gt)))
}

/// `map` blurred and normalised by its maximum (what the sweep thresholds) and, for another
/// [`MeasureConfig::scale`], that map normalised by the scale (the main box's): one blur, then
/// the scale, as `feedbacknet_localize::localize_in_image` does.
fn localized(
    map: &SaliencyMap,
    config: &MeasureConfig,
) -> Result<(Localization, Option<Localization>)> {
    let by_max = localize(map, &config.localize_config().with_scale(MapScale::Maximum))?;
    let scaled = match config.scale {
        MapScale::Maximum => None,
        _ => Some(localize(
            &by_max.smoothed,
            &config.localize_config().with_blur_sigma(0.0),
        )?),
    };
    Ok((by_max, scaled))
}

/// Largest IoU between any of `boxes` and any of `gt`; 0 if either is empty.
pub fn max_iou<'a>(boxes: impl IntoIterator<Item = &'a BoundingBox>, gt: &[BoundingBox]) -> f32 {
    boxes
        .into_iter()
        .flat_map(|b| gt.iter().map(move |g| b.iou(g)))
        .fold(0.0, f32::max)
}

/// Pointing game (Zhang et al., "Top-down Neural Attention by Excitation
/// Backprop", ECCV 2016): a hit when the map's maximum (first in raster
/// order; its pixel centre `(x + 0.5, y + 0.5)`) lies within
/// `tolerance_px` (Euclidean) of any ground-truth box. A map without a
/// positive value misses.
pub fn pointing_hit(map: &SaliencyMap, gt: &[BoundingBox], tolerance_px: f32) -> bool {
    let Some((x, y)) = peak(map) else {
        return false;
    };
    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
    gt.iter()
        .any(|b| distance_to_box(px, py, b) <= tolerance_px)
}

/// Position of the map's largest value (first in raster order), or `None`
/// when no value is positive.
pub fn peak(map: &SaliencyMap) -> Option<(usize, usize)> {
    let (mut best, mut at) = (0.0f32, None);
    for (i, &v) in map.data().iter().enumerate() {
        if v > best {
            (best, at) = (v, Some(i));
        }
    }
    at.map(|i| (i % map.width(), i / map.width()))
}

/// Euclidean distance from a point to a box (0 inside or on it).
fn distance_to_box(x: f32, y: f32, b: &BoundingBox) -> f32 {
    let dx = (b.x0 - x).max(x - b.x1).max(0.0);
    let dy = (b.y0 - y).max(y - b.y1).max(0.0);
    dx.hypot(dy)
}
