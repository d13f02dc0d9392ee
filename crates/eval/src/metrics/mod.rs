//! Localization metrics: per-map scores, per-image records and the summary.
//!
//! * [`measure`] scores one saliency map against the ground-truth boxes.
//! * [`ImageRecord`] is the per-image result (one JSONL line).
//! * [`Summary`] holds every data-set metric: classification top-1/top-5,
//!   ILSVRC top-1 localization and top-5 localization error, GT-known
//!   localization, MaxBoxAccV2, mean IoU, the pointing game and an IoU
//!   histogram.
//!
//! IoU is computed on continuous boxes ([`feedbacknet_localize::BoundingBox::iou`]),
//! not with wsolevaluation's inclusive `+1` pixel areas.

mod measure;
mod record;
mod summary;
mod sweep;

pub use measure::{
    MapScores, MeasureConfig, default_sweep, max_iou, measure, measure_box, measure_box_with_image,
    measure_with_image, peak, pointing_hit,
};
pub use record::{ImageRecord, LOC_IOU_THRESHOLD};
pub use summary::{
    FAILURES_LISTED, FailedImage, HISTOGRAM_BINS, MAXBOX_IOU_THRESHOLDS, MaxBoxAt, Summary,
};
