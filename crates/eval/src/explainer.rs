//! The model side of an evaluation: what a saliency method must provide.

use feedbacknet_localize::{ColourImage, SaliencyMap};

use crate::dataset::Sample;
use crate::error::Result;
use crate::metrics::{ImageRecord, MeasureConfig, measure_box_with_image, measure_with_image};

/// Error type an [`Explainer`] may return; the runner records its message.
pub type ExplainError = Box<dyn std::error::Error + Send + Sync>;

/// A classifier with class-specific saliency maps (e.g. a feedback CNN).
pub trait Explainer: Sync {
    /// Classifies `image` and returns the saliency map of `true_class` plus
    /// the maps of (up to) the `k` best predicted classes.
    ///
    /// Maps may have any resolution; they are resized bilinearly to the
    /// size the ground-truth boxes refer to ([`Sample::size`]).
    fn explain(
        &self,
        image: &image::DynamicImage,
        true_class: usize,
        k: usize,
    ) -> std::result::Result<Explanation, ExplainError>;

    /// [`Explainer::explain`] for several images at once, each with its true class: one
    /// result per item, in order, each what `explain` would return for it. The runner calls
    /// this with [`Runner::batch`](crate::Runner::batch) images; an explainer that can share
    /// the work of several images (one batch through the network) implements it. The default
    /// explains the items one by one.
    fn explain_batch(
        &self,
        items: &[(&image::DynamicImage, usize)],
        k: usize,
    ) -> Vec<std::result::Result<Explanation, ExplainError>> {
        items
            .iter()
            .map(|&(image, true_class)| self.explain(image, true_class, k))
            .collect()
    }
}

/// What an [`Explainer`] returns for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Predicted classes, best first (at least 5 for the top-5 metrics;
    /// only the first 5 are used).
    pub top5: Vec<usize>,
    /// Saliency map of the ground-truth class.
    pub true_class_map: SaliencyMap,
    /// Maps of the first `top_maps.len()` predicted classes (`top_maps[j]`
    /// for `top5[j]`); may be shorter than `top5` or empty. They only feed
    /// the informative [`ImageRecord::top5_ious`]; where `top5[j]` is the true
    /// class, `true_class_map` is used instead.
    pub top_maps: Vec<SaliencyMap>,
    /// The image at [`Sample::size`], for [`MeasureConfig::refine`]; `None` without
    /// refinement.
    pub image: Option<ColourImage>,
}

/// Measures an explanation against the sample's ground truth and builds its
/// record (with `time_ms` 0: the caller times the work).
///
/// Errors: an invalid `config`, or a sample of zero size.
pub fn score_explanation(
    sample: &Sample,
    explanation: &Explanation,
    config: &MeasureConfig,
) -> Result<ImageRecord> {
    let true_map = at_sample_size(&explanation.true_class_map, sample)?;
    let image = explanation.image.as_ref();
    let scores = measure_with_image(&true_map, image, &sample.boxes, config)?;
    let top5: Vec<usize> = explanation.top5.iter().take(5).copied().collect();
    let top5_ious = top5
        .iter()
        .enumerate()
        .map(|(j, &class)| guess_iou(sample, explanation, config, j, class, scores.iou))
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageRecord {
        index: sample.index,
        id: sample.id.clone(),
        class: sample.class,
        top1_iou: top5_ious.first().copied().flatten(),
        top5,
        gt_known_iou: scores.iou,
        gt_known_box: scores.best_box,
        top5_ious,
        maxbox_ious: scores.maxbox_ious,
        pointing_hit: scores.pointing_hit,
        time_ms: 0.0,
        error: None,
        warnings: Vec::new(),
    })
}

/// IoU of guess `j`'s box: the GT-known IoU for the true class, measured on
/// `top_maps[j]` otherwise, `None` without a map.
fn guess_iou(
    sample: &Sample,
    explanation: &Explanation,
    config: &MeasureConfig,
    j: usize,
    class: usize,
    gt_known_iou: f32,
) -> Result<Option<f32>> {
    if class == sample.class {
        return Ok(Some(gt_known_iou));
    }
    let Some(map) = explanation.top_maps.get(j) else {
        return Ok(None);
    };
    let map = at_sample_size(map, sample)?;
    let image = explanation.image.as_ref();
    let (_, iou) = measure_box_with_image(&map, image, &sample.boxes, config)?;
    Ok(Some(iou))
}

/// The map resized to [`Sample::size`] (unchanged if already that size).
fn at_sample_size(map: &SaliencyMap, sample: &Sample) -> Result<SaliencyMap> {
    let (w, h) = sample.size;
    Ok(map.resize_bilinear(w as usize, h as usize)?)
}
