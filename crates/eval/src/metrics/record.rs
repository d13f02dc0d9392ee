//! The per-image result, one line of the results file.

use feedbacknet_localize::BoundingBox;
use serde::{Deserialize, Serialize};

use crate::dataset::Sample;

/// IoU a box needs with a ground-truth box to count as a correct
/// localization (ILSVRC 2012 rule, also wsolevaluation's MaxBoxAcc).
pub const LOC_IOU_THRESHOLD: f32 = 0.5;

/// Everything measured on one image (one JSONL line of the results file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image's position in data set order.
    pub index: usize,
    /// The image's id ([`Sample::id`]).
    pub id: String,
    /// Ground-truth class.
    pub class: usize,
    /// Predicted classes, best first (up to 5; empty for a failed image).
    pub top5: Vec<usize>,
    /// Largest IoU of the true class's box (largest connected component of
    /// its map at the configured threshold) with any ground-truth box.
    pub gt_known_iou: f32,
    /// The true class's box, in pixels of the ground-truth image.
    pub gt_known_box: Option<BoundingBox>,
    /// IoU of the top-1 predicted class's box; equals `gt_known_iou` when the
    /// top-1 class is right, `None` when no map of that class was computed.
    pub top1_iou: Option<f32>,
    /// IoU of each guess's box (`top5_ious[j]` for `top5[j]`), `None` where
    /// the explainer gave no map for that guess. Informative only: the
    /// localization metrics use `gt_known_iou`, since the box of a right
    /// guess is the true class's box.
    pub top5_ious: Vec<Option<f32>>,
    /// For each threshold of the sweep, the largest IoU of any component
    /// box of the true class's map with any ground-truth box (MaxBoxAccV2).
    pub maxbox_ious: Vec<f32>,
    /// Whether the true class's map's peak hits a ground-truth box.
    pub pointing_hit: bool,
    /// Time spent explaining and measuring this image (not decoding), in ms.
    pub time_ms: f64,
    /// Why this image could not be evaluated (unreadable image, explainer
    /// error). A failed image counts as wrong for every metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was wrong with an image accepted anyway (a damaged file under
    /// [`crate::DamagedImages::Accept`]); absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ImageRecord {
    /// The record of an image that could not be evaluated: no prediction,
    /// every IoU 0, no pointing hit.
    pub fn failed(sample: &Sample, error: String, time_ms: f64) -> Self {
        Self {
            index: sample.index,
            id: sample.id.clone(),
            class: sample.class,
            top5: Vec::new(),
            gt_known_iou: 0.0,
            gt_known_box: None,
            top1_iou: None,
            top5_ious: Vec::new(),
            maxbox_ious: Vec::new(),
            pointing_hit: false,
            time_ms,
            error: Some(error),
            warnings: Vec::new(),
        }
    }

    /// Whether the image could not be evaluated.
    pub fn is_failed(&self) -> bool {
        self.error.is_some()
    }

    /// Whether the best guess is the true class (top-1 classification).
    pub fn top1_correct(&self) -> bool {
        self.top5.first() == Some(&self.class)
    }

    /// Whether one of the first five guesses is the true class.
    pub fn top5_correct(&self) -> bool {
        self.top5.iter().take(5).any(|&c| c == self.class)
    }

    /// GT-known localization: the true class's box has IoU >= 0.5.
    pub fn gt_known_correct(&self) -> bool {
        !self.is_failed() && self.gt_known_iou >= LOC_IOU_THRESHOLD
    }

    /// Top-1 localization (ILSVRC): right top-1 class and IoU >= 0.5.
    pub fn top1_loc_correct(&self) -> bool {
        self.top1_correct() && self.gt_known_correct()
    }

    /// Top-5 localization (ILSVRC 2012): some guess among the first five has
    /// the right class and a box with IoU >= 0.5. Since the box of the right
    /// class is the true class's box, this is `top5_correct && gt_known_correct`.
    pub fn top5_loc_correct(&self) -> bool {
        self.top5_correct() && self.gt_known_correct()
    }

    /// Whether two records report the same result for the same image,
    /// ignoring `time_ms`.
    pub fn same_result(&self, other: &ImageRecord) -> bool {
        let mut a = self.clone();
        a.time_ms = other.time_ms;
        a == *other
    }
}
