//! The two folds: tune on one half, report the other at the settings chosen there.

use feedbacknet_localize::{MapScale, SaliencyMap};
use serde::Serialize;

use crate::dataset::Sample;
use crate::error::{EvalError, invalid};
use crate::explainer::{Explanation, score_explanation};
use crate::metrics::{ImageRecord, Summary};
use crate::tune::candidates::Candidates;
use crate::tune::grid::{
    Grid, GridPoint, Refinement, best_point, measure_config, scaled_maps, score_grid, score_point,
    smoothed_maps,
};
use crate::tune::stored::{MethodView, StoredImage, views};

/// A half of a data set: the images of even or of odd [`Sample::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// Even indices.
    Even,
    /// Odd indices.
    Odd,
}

impl Half {
    /// Both halves, in the order they are tuned.
    pub const BOTH: [Half; 2] = [Half::Even, Half::Odd];

    /// `"even"` or `"odd"`, as the results name it.
    pub fn name(self) -> &'static str {
        match self {
            Half::Even => "even",
            Half::Odd => "odd",
        }
    }

    /// The other half.
    pub fn other(self) -> Half {
        match self {
            Half::Even => Half::Odd,
            Half::Odd => Half::Even,
        }
    }

    /// Whether `sample` belongs to this half.
    pub fn contains(self, sample: &Sample) -> bool {
        sample.index % 2 == self as usize
    }
}

/// One fold: settings chosen on `tuned_on`, metrics of `reported_on` at those settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fold<V> {
    /// The half the settings were chosen on (`"none (given settings)"` for the given ones).
    pub tuned_on: &'static str,
    /// The half reported (`"all"` for the given settings).
    pub reported_on: &'static str,
    /// The chosen map setting.
    #[serde(flatten)]
    pub variant: V,
    /// The chosen refinement.
    pub refine: Refinement,
    /// The chosen blur.
    pub blur: f32,
    /// The chosen scale.
    pub scale: MapScale,
    /// The chosen box threshold.
    pub threshold: f32,
    /// GT-known accuracy of the chosen point on `tuned_on` (NaN, written `null`, for none).
    pub tuned_gt_known_loc: f64,
    /// Every metric of `reported_on` at the chosen settings.
    pub reported: Summary,
    /// Box stability of the chosen point on `tuned_on` (see [`Grid::min_box_stability`]);
    /// `None` without perturbed maps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuned_box_stability: Option<f64>,
    /// Box stability of `reported_on` at the chosen settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_box_stability: Option<f64>,
}

/// The grid points of each half and both folds of the `m`-th method.
pub(crate) type Folds<V> = (Vec<(String, Vec<GridPoint<V>>)>, Vec<Fold<V>>);

/// Scores the grid on each half and reports the other half at its best point.
pub(crate) fn two_fold<V, E, S>(
    stored: &[StoredImage],
    m: usize,
    candidates: &Candidates<V>,
    grid: &Grid,
    smooth: &S,
) -> Result<Folds<V>, E>
where
    V: Clone,
    E: From<EvalError> + Send,
    S: Fn(&SaliencyMap, f32) -> Result<SaliencyMap, E> + Sync,
{
    let mut points_of = Vec::new();
    let mut folds = Vec::new();
    for half in Half::BOTH {
        let tuned = views(stored, m, |s| half.contains(s));
        let points = score_grid(&tuned, candidates, grid, smooth)?;
        let best = best_point(&points, grid.min_box_stability)
            .ok_or_else(|| invalid("grid", 0, "has no point"))?
            .clone();
        let reported = views(stored, m, |s| half.other().contains(s));
        folds.push(Fold {
            tuned_on: half.name(),
            reported_on: half.other().name(),
            reported: summarize(&reported, &best, smooth)?,
            reported_box_stability: box_stability(&reported, &best, smooth)?,
            variant: best.variant,
            refine: best.refine,
            blur: best.blur,
            scale: best.scale,
            threshold: best.threshold,
            tuned_gt_known_loc: best.gt_known_loc,
            tuned_box_stability: best.box_stability,
        });
        points_of.push((half.name().to_string(), points));
    }
    Ok((points_of, folds))
}

/// Every image at the given settings: variant 0, the given refinement, blur and threshold.
pub(crate) fn at_given<V, E, S>(
    stored: &[StoredImage],
    m: usize,
    candidates: &Candidates<V>,
    grid: &Grid,
    smooth: &S,
) -> Result<Fold<V>, E>
where
    V: Clone,
    E: From<EvalError> + Send,
    S: Fn(&SaliencyMap, f32) -> Result<SaliencyMap, E> + Sync,
{
    let variant = candidates
        .variants()
        .first()
        .ok_or_else(|| invalid("candidates", 0, "has no variant"))?;
    let given = GridPoint {
        variant: variant.clone(),
        candidate: 0,
        refine: grid.given_refine,
        blur: grid.given_blur,
        scale: grid.given_scale,
        threshold: grid.given_threshold,
        gt_known_loc: f64::NAN,
        box_stability: None,
    };
    let all = views(stored, m, |_| true);
    Ok(Fold {
        tuned_on: "none (given settings)",
        reported_on: "all",
        reported: summarize(&all, &given, smooth)?,
        reported_box_stability: box_stability(&all, &given, smooth)?,
        variant: given.variant,
        refine: given.refine,
        blur: given.blur,
        scale: given.scale,
        threshold: given.threshold,
        tuned_gt_known_loc: f64::NAN,
        tuned_box_stability: None,
    })
}

/// The box stability of `images` at one fixed setting (`None` without perturbed maps).
fn box_stability<V, E, S>(
    images: &[MethodView<'_>],
    at: &GridPoint<V>,
    smooth: &S,
) -> Result<Option<f64>, E>
where
    E: From<EvalError> + Send,
    S: Fn(&SaliencyMap, f32) -> Result<SaliencyMap, E> + Sync,
{
    if images.is_empty() || images.iter().any(|s| s.perturbed.is_none()) {
        return Ok(None);
    }
    let smoothed = smoothed_maps(images, at.candidate, at.blur, smooth)?;
    let scaled = scaled_maps(&smoothed, at.scale);
    Ok(score_point(images, &scaled, at.refine, at.threshold)?.1)
}

/// Every metric of `images` at one fixed setting (MaxBoxAccV2 sweeps the threshold itself).
fn summarize<V, E, S>(
    images: &[MethodView<'_>],
    at: &GridPoint<V>,
    smooth: &S,
) -> Result<Summary, E>
where
    E: From<EvalError> + Send,
    S: Fn(&SaliencyMap, f32) -> Result<SaliencyMap, E> + Sync,
{
    let config = measure_config(at.refine, at.threshold).with_scale(at.scale);
    let records: Vec<ImageRecord> = images
        .iter()
        .map(|s| {
            let explanation = Explanation {
                top5: s.top5.to_vec(),
                true_class_map: smooth(s.map(at.candidate)?, at.blur)?,
                top_maps: Vec::new(),
                image: s.image.cloned(),
            };
            Ok(score_explanation(s.sample, &explanation, &config)?)
        })
        .collect::<Result<_, E>>()?;
    Ok(Summary::from_records(&records, &config.sweep)?)
}
