//! The grid of box settings and its scoring on stored maps.

use std::borrow::Cow;

use feedbacknet_localize::{Binning, ColourModel, MapScale, RefineConfig, SaliencyMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result, invalid};
use crate::metrics::{LOC_IOU_THRESHOLD, MeasureConfig, measure_box_with_image};
use crate::stability::STABLE_BOX_IOU;
use crate::tune::candidates::Candidates;
use crate::tune::stored::MethodView;

/// A mask refinement before boxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refinement {
    /// The thresholded map as it is.
    None,
    /// A colour-model refinement of the mask ([`feedbacknet_localize::refine_mask`], default
    /// settings; the stored images must carry [`crate::tune::StoredImage::image`]).
    Colour,
    /// The same colour refinement with [`Binning::Trilinear`] colour histograms.
    ColourTrilinear,
    /// GrabCut ([`feedbacknet_localize::refine_mask`] with [`ColourModel::GrabCut`], default
    /// settings; the stored images must carry the image too).
    #[serde(rename = "grabcut")]
    GrabCut,
}

impl Refinement {
    /// The refinement of `config`'s colour model and binning (`None` for none); other
    /// settings of a [`RefineConfig`] have no refinement of their own here.
    ///
    /// ```
    /// use feedbacknet_eval::tune::Refinement;
    /// use feedbacknet_localize::{Binning, ColourModel, RefineConfig};
    /// let grabcut = RefineConfig::default().with_model(ColourModel::GrabCut);
    /// let trilinear = RefineConfig::default().with_binning(Binning::Trilinear);
    /// assert_eq!(Refinement::of(None), Refinement::None);
    /// assert_eq!(Refinement::of(Some(&RefineConfig::default())), Refinement::Colour);
    /// assert_eq!(Refinement::of(Some(&trilinear)), Refinement::ColourTrilinear);
    /// assert_eq!(Refinement::of(Some(&grabcut)), Refinement::GrabCut);
    /// ```
    pub fn of(config: Option<&RefineConfig>) -> Self {
        match config.map(|c| (c.model, c.binning)) {
            None => Refinement::None,
            Some((ColourModel::Histogram, Binning::Nearest)) => Refinement::Colour,
            Some((ColourModel::Histogram, Binning::Trilinear)) => Refinement::ColourTrilinear,
            Some((ColourModel::GrabCut, _)) => Refinement::GrabCut,
        }
    }

    /// The refinement's settings (`None` for no refinement).
    pub fn config(self) -> Option<RefineConfig> {
        let colour = RefineConfig::default();
        match self {
            Refinement::None => None,
            Refinement::Colour => Some(colour),
            Refinement::ColourTrilinear => Some(colour.with_binning(Binning::Trilinear)),
            Refinement::GrabCut => Some(colour.with_model(ColourModel::GrabCut)),
        }
    }
}

/// The box settings tried, and the given ones every image is also reported at.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Blurs tried, as the smoothing function reads them.
    pub blurs: Vec<f32>,
    /// Box thresholds tried (fractions of the smoothed map's scale).
    pub thresholds: Vec<f32>,
    /// Map scales tried: what a threshold is a fraction of (the smoothed map's maximum, or a
    /// percentile of its pixels).
    pub scales: Vec<MapScale>,
    /// Refinements tried.
    pub refinements: Vec<Refinement>,
    /// The given blur (reported on every image, with variant 0 and no refinement).
    pub given_blur: f32,
    /// The given box threshold.
    pub given_threshold: f32,
    /// The given scale.
    pub given_scale: MapScale,
    /// The given refinement.
    pub given_refine: Refinement,
    /// The least box stability a chosen point must have on the tuning half: the fraction of
    /// its images whose box stays (IoU >= [`STABLE_BOX_IOU`] with the box of the image's
    /// perturbed copy, [`crate::tune::PerturbedMaps`]; an image without a box in either
    /// counts as stable), the same IoU as `feedbacknet stability` counts. Among the points that have it the best
    /// GT-known one is chosen; if none has it, the most stable. `None`: no constraint.
    pub min_box_stability: Option<f64>,
}

impl Grid {
    /// Checks that every dimension has at least one value.
    pub fn validate(&self) -> Result<()> {
        let empty = |name, len: usize| match len {
            0 => Err(invalid(name, len, "needs at least one value")),
            _ => Ok(()),
        };
        empty("blurs", self.blurs.len())?;
        empty("thresholds", self.thresholds.len())?;
        empty("scales", self.scales.len())?;
        empty("refinements", self.refinements.len())?;
        (self.scales.iter().chain([&self.given_scale])).try_for_each(MapScale::validate)?;
        Ok(())
    }
}

/// GT-known accuracy of one grid point on one half.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridPoint<V> {
    /// The map setting.
    #[serde(flatten)]
    pub variant: V,
    /// Index of the variant in [`Candidates::variants`].
    #[serde(skip)]
    pub candidate: usize,
    /// The refinement before boxing.
    pub refine: Refinement,
    /// The blur.
    pub blur: f32,
    /// What the threshold is a fraction of.
    pub scale: MapScale,
    /// The box threshold.
    pub threshold: f32,
    /// Fraction of the images whose box has IoU >= 0.5 with a ground-truth box.
    pub gt_known_loc: f64,
    /// Fraction of the images whose box stays under the perturbation (see
    /// [`Grid::min_box_stability`]); `None` without perturbed maps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub box_stability: Option<f64>,
}

/// The best grid point: the best GT-known, the more stable one on ties (where the points carry
/// a box stability), then the first one (the grid's order decides); `None` for none. With
/// `min_box_stability`, only the points at least that stable compete; if none is, the most
/// stable point is chosen (the better GT-known one on ties).
pub fn best_point<V>(
    points: &[GridPoint<V>],
    min_box_stability: Option<f64>,
) -> Option<&GridPoint<V>> {
    let stability = |p: &GridPoint<V>| p.box_stability.unwrap_or(f64::NEG_INFINITY);
    let qualifies = |p: &GridPoint<V>| min_box_stability.is_none_or(|min| stability(p) >= min);
    let any_qualifies = points.iter().any(qualifies);
    let key = |p: &GridPoint<V>| match any_qualifies {
        true => (
            f64::from(u8::from(qualifies(p))),
            p.gt_known_loc,
            stability(p),
        ),
        false => (stability(p), p.gt_known_loc, 0.0),
    };
    let mut best = points.first()?;
    for p in points {
        if key(p) > key(best) {
            best = p;
        }
    }
    Some(best)
}

/// The measuring settings of one grid point (the maps come smoothed and normalized).
pub(crate) fn measure_config(refine: Refinement, threshold: f32) -> MeasureConfig {
    MeasureConfig::default()
        .with_blur_sigma(0.0)
        .with_threshold(threshold)
        .with_refine(refine.config())
}

/// GT-known accuracy of every (variant, blur, scale, refinement, threshold) point on
/// `images`, in that nesting order.
pub(crate) fn score_grid<V, E, S>(
    images: &[MethodView<'_>],
    candidates: &Candidates<V>,
    grid: &Grid,
    smooth: &S,
) -> std::result::Result<Vec<GridPoint<V>>, E>
where
    V: Clone,
    E: From<EvalError> + Send,
    S: Fn(&SaliencyMap, f32) -> std::result::Result<SaliencyMap, E> + Sync,
{
    let mut points = Vec::new();
    for &candidate in candidates.searched() {
        let variant = candidates
            .variants()
            .get(candidate)
            .ok_or_else(|| invalid("candidate", candidate, "is not one of the variants"))?;
        for &blur in &grid.blurs {
            let smoothed = smoothed_maps(images, candidate, blur, smooth)?;
            for &scale in &grid.scales {
                let scaled = scaled_maps(&smoothed, scale);
                for &refine in &grid.refinements {
                    for &threshold in &grid.thresholds {
                        let (gt_known_loc, box_stability) =
                            score_point(images, &scaled, refine, threshold)?;
                        points.push(GridPoint {
                            variant: variant.clone(),
                            candidate,
                            refine,
                            blur,
                            scale,
                            threshold,
                            gt_known_loc,
                            box_stability,
                        });
                    }
                }
            }
        }
    }
    Ok(points)
}

/// Each image's map of `candidate` smoothed at `blur`, and its perturbed copy's when every
/// image has one.
pub(crate) type Smoothed = (Vec<SaliencyMap>, Option<Vec<SaliencyMap>>);

pub(crate) fn smoothed_maps<E, S>(
    images: &[MethodView<'_>],
    candidate: usize,
    blur: f32,
    smooth: &S,
) -> std::result::Result<Smoothed, E>
where
    E: From<EvalError> + Send,
    S: Fn(&SaliencyMap, f32) -> std::result::Result<SaliencyMap, E> + Sync,
{
    let maps = (images.par_iter())
        .map(|s| smooth(s.map(candidate)?, blur))
        .collect::<std::result::Result<_, E>>()?;
    let perturbed = (images.iter())
        .map(|s| s.perturbed_map(candidate))
        .collect::<Option<Vec<_>>>()
        .map(|maps| {
            (maps.into_par_iter())
                .map(|map| smooth(map?, blur))
                .collect::<std::result::Result<Vec<_>, E>>()
        })
        .transpose()?;
    Ok((maps, perturbed))
}

/// The smoothed maps (normalized to maximum 1) normalized by `scale` instead: the same
/// maps for [`MapScale::Maximum`], which they already are.
pub(crate) fn scaled_maps(smoothed: &Smoothed, scale: MapScale) -> Cow<'_, Smoothed> {
    if scale == MapScale::Maximum {
        return Cow::Borrowed(smoothed);
    }
    let all = |maps: &[SaliencyMap]| -> Vec<SaliencyMap> {
        maps.par_iter().map(|m| m.normalized_by(scale)).collect()
    };
    let (maps, perturbed) = smoothed;
    Cow::Owned((all(maps), perturbed.as_deref().map(all)))
}

/// GT-known accuracy of the smoothed maps at one refinement and threshold, and the fraction
/// of the images whose box stays under the perturbation (when there are perturbed maps).
///
/// The images are scored in parallel on rayon's pool: a colour refinement per image and point
/// made this loop the longest part of a tune (one core busy for most of an hour with the
/// fusion in the grid), and the counts do not depend on the order.
pub(crate) fn score_point(
    images: &[MethodView<'_>],
    (maps, perturbed): &Smoothed,
    refine: Refinement,
    threshold: f32,
) -> Result<(f64, Option<f64>)> {
    let config = measure_config(refine, threshold);
    let one = |(i, (s, map)): (usize, (&MethodView<'_>, &SaliencyMap))| -> Result<_> {
        let (found, iou) = measure_box_with_image(map, s.image, &s.sample.boxes, &config)?;
        let hit = iou >= LOC_IOU_THRESHOLD;
        let Some(other) = perturbed.as_ref().and_then(|p| p.get(i)) else {
            return Ok((hit, false));
        };
        let image = s.perturbed.and_then(|(_, image)| image);
        let (moved, _) = measure_box_with_image(other, image, &s.sample.boxes, &config)?;
        let stable = match (found, moved) {
            (Some(a), Some(b)) => f64::from(a.iou(&b)) >= STABLE_BOX_IOU,
            (a, b) => a.is_none() && b.is_none(),
        };
        Ok((hit, stable))
    };
    let scored = (images.par_iter().zip(maps).enumerate())
        .map(one)
        .collect::<Result<Vec<_>>>()?;
    let hits = scored.iter().filter(|(hit, _)| *hit).count();
    let stable = scored.iter().filter(|(_, stable)| *stable).count();
    let count = images.len().max(1) as f64;
    let stability = perturbed.is_some().then(|| stable as f64 / count);
    Ok((hits as f64 / count, stability))
}
