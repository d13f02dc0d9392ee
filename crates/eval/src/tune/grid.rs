//! The grid of box settings and its scoring on stored maps.

use feedbacknet_localize::{ColourModel, RefineConfig, SaliencyMap};
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result, invalid};
use crate::metrics::{LOC_IOU_THRESHOLD, MeasureConfig, measure_box_with_image};
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
    /// GrabCut ([`feedbacknet_localize::refine_mask`] with [`ColourModel::GrabCut`], default
    /// settings; the stored images must carry the image too).
    #[serde(rename = "grabcut")]
    GrabCut,
}

impl Refinement {
    /// The refinement of `config`'s colour model (`None` for none); other settings of a
    /// [`RefineConfig`] than its model have no refinement of their own here.
    ///
    /// ```
    /// use feedbacknet_eval::tune::Refinement;
    /// use feedbacknet_localize::{ColourModel, RefineConfig};
    /// let grabcut = RefineConfig::default().with_model(ColourModel::GrabCut);
    /// assert_eq!(Refinement::of(None), Refinement::None);
    /// assert_eq!(Refinement::of(Some(&RefineConfig::default())), Refinement::Colour);
    /// assert_eq!(Refinement::of(Some(&grabcut)), Refinement::GrabCut);
    /// ```
    pub fn of(config: Option<&RefineConfig>) -> Self {
        match config.map(|c| c.model) {
            None => Refinement::None,
            Some(ColourModel::Histogram) => Refinement::Colour,
            Some(ColourModel::GrabCut) => Refinement::GrabCut,
        }
    }

    /// The refinement's settings (`None` for no refinement).
    pub fn config(self) -> Option<RefineConfig> {
        let colour = RefineConfig::default();
        match self {
            Refinement::None => None,
            Refinement::Colour => Some(colour),
            Refinement::GrabCut => Some(colour.with_model(ColourModel::GrabCut)),
        }
    }
}

/// The box settings tried, and the given ones every image is also reported at.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Blurs tried, as the smoothing function reads them.
    pub blurs: Vec<f32>,
    /// Box thresholds tried (fractions of the smoothed map's maximum).
    pub thresholds: Vec<f32>,
    /// Refinements tried.
    pub refinements: Vec<Refinement>,
    /// The given blur (reported on every image, with variant 0 and no refinement).
    pub given_blur: f32,
    /// The given box threshold.
    pub given_threshold: f32,
    /// The given refinement.
    pub given_refine: Refinement,
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
        empty("refinements", self.refinements.len())
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
    /// The box threshold.
    pub threshold: f32,
    /// Fraction of the images whose box has IoU >= 0.5 with a ground-truth box.
    pub gt_known_loc: f64,
}

/// The best grid point (the first one on ties: the grid's order decides); `None` for none.
pub fn best_point<V>(points: &[GridPoint<V>]) -> Option<&GridPoint<V>> {
    let mut best = points.first()?;
    for p in points {
        if p.gt_known_loc > best.gt_known_loc {
            best = p;
        }
    }
    Some(best)
}

/// The measuring settings of one grid point (the maps come smoothed).
pub(crate) fn measure_config(refine: Refinement, threshold: f32) -> MeasureConfig {
    MeasureConfig::default()
        .with_blur_sigma(0.0)
        .with_threshold(threshold)
        .with_refine(refine.config())
}

/// GT-known accuracy of every (variant, refinement, blur, threshold) point on `images`, in
/// that nesting order.
pub(crate) fn score_grid<V, E, S>(
    images: &[MethodView<'_>],
    candidates: &Candidates<V>,
    grid: &Grid,
    smooth: &S,
) -> std::result::Result<Vec<GridPoint<V>>, E>
where
    V: Clone,
    E: From<EvalError>,
    S: Fn(&SaliencyMap, f32) -> std::result::Result<SaliencyMap, E>,
{
    let mut points = Vec::new();
    for &candidate in candidates.searched() {
        let variant = candidates
            .variants()
            .get(candidate)
            .ok_or_else(|| invalid("candidate", candidate, "is not one of the variants"))?;
        for &blur in &grid.blurs {
            let smoothed: Vec<SaliencyMap> = images
                .iter()
                .map(|s| smooth(s.map(candidate)?, blur))
                .collect::<std::result::Result<_, E>>()?;
            for &refine in &grid.refinements {
                points.extend(
                    score_thresholds(images, &smoothed, refine, &grid.thresholds)?
                        .into_iter()
                        .map(|(threshold, gt_known_loc)| GridPoint {
                            variant: variant.clone(),
                            candidate,
                            refine,
                            blur,
                            threshold,
                            gt_known_loc,
                        }),
                );
            }
        }
    }
    Ok(points)
}

/// `(threshold, GT-known accuracy)` of the smoothed maps at each threshold.
fn score_thresholds(
    images: &[MethodView<'_>],
    smoothed: &[SaliencyMap],
    refine: Refinement,
    thresholds: &[f32],
) -> Result<Vec<(f32, f64)>> {
    let mut scores = Vec::with_capacity(thresholds.len());
    for &threshold in thresholds {
        let config = measure_config(refine, threshold);
        let mut hits = 0usize;
        for (s, map) in images.iter().zip(smoothed) {
            let (_, iou) = measure_box_with_image(map, s.image, &s.sample.boxes, &config)?;
            hits += usize::from(iou >= LOC_IOU_THRESHOLD);
        }
        scores.push((threshold, hits as f64 / images.len().max(1) as f64));
    }
    Ok(scores)
}
