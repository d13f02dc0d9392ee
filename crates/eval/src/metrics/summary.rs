//! Data-set-level metrics from per-image records.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::metrics::ImageRecord;

/// IoU thresholds δ of MaxBoxAccV2 (Choe et al., CVPR 2020).
pub const MAXBOX_IOU_THRESHOLDS: [f32; 3] = [0.3, 0.5, 0.7];

/// Number of equal-width bins of [`Summary::iou_histogram`] over `[0, 1]`.
pub const HISTOGRAM_BINS: usize = 10;

/// How many failed images [`Summary::failures`] lists (the first, in index order).
pub const FAILURES_LISTED: usize = 10;

/// An image that could not be evaluated, and why (from its [`ImageRecord`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedImage {
    /// The image's position in data set order.
    pub index: usize,
    /// The image's id ([`crate::Sample::id`]).
    pub id: String,
    /// The record's [`ImageRecord::error`].
    pub error: String,
}

/// MaxBoxAcc at one IoU threshold δ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxBoxAt {
    /// The IoU threshold δ.
    pub iou_threshold: f32,
    /// Largest, over the sweep's map thresholds, fraction of images with a
    /// box of IoU >= δ.
    pub accuracy: f64,
    /// The map threshold reaching `accuracy` (the first one on ties).
    pub best_threshold: f32,
}

/// Every metric over a set of [`ImageRecord`]s. Fractions are in `[0, 1]`
/// and are 0 for an empty set; failed images count as wrong everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of images (records).
    pub images: usize,
    /// Number of images that could not be evaluated.
    pub failed: usize,
    /// The first [`FAILURES_LISTED`] of those, in index order, with their errors (the full
    /// list is in the results file: the records with an `error`). Empty in summaries written
    /// before it existed.
    #[serde(default)]
    pub failures: Vec<FailedImage>,
    /// Top-1 classification accuracy.
    pub top1_cls: f64,
    /// Top-5 classification accuracy.
    pub top5_cls: f64,
    /// Top-1 localization accuracy (ILSVRC; Russakovsky et al., IJCV 2015):
    /// top-1 class right and IoU >= 0.5 with a ground-truth box.
    pub top1_loc: f64,
    /// Top-5 localization accuracy (ILSVRC 2012 rule): one of the five
    /// guesses has the right class and a box with IoU >= 0.5.
    pub top5_loc: f64,
    /// Top-5 localization error, the ILSVRC 2012 challenge metric: `1 - top5_loc`.
    pub top5_loc_error: f64,
    /// GT-known localization accuracy (Zhou et al., CAM, CVPR 2016;
    /// wsolevaluation): the true class's box has IoU >= 0.5.
    pub gt_known_loc: f64,
    /// MaxBoxAccV2 (Choe et al., "Evaluating Weakly Supervised Object
    /// Localization Methods Right", CVPR 2020; clovaai/wsolevaluation):
    /// the mean of [`Summary::maxbox`]'s accuracies.
    pub maxbox_acc_v2: f64,
    /// MaxBoxAcc at each δ of [`MAXBOX_IOU_THRESHOLDS`], boxes from all
    /// components (wsolevaluation's `multi_contour_eval`).
    pub maxbox: Vec<MaxBoxAt>,
    /// Mean GT-known IoU.
    pub mean_iou: f64,
    /// Pointing-game accuracy (Zhang et al., "Top-down Neural Attention by
    /// Excitation Backprop", ECCV 2016; 15-pixel tolerance by default).
    pub pointing_game: f64,
    /// Counts of GT-known IoU in [`HISTOGRAM_BINS`] bins `[0, 0.1)`, ...,
    /// `[0.9, 1.0]`.
    pub iou_histogram: Vec<usize>,
}

impl Summary {
    /// Computes every metric. `sweep` is the thresholds the records'
    /// `maxbox_ious` were measured at. Records are taken in `index` order,
    /// so the same records in any order give a bit-identical summary; they
    /// should be unique per index (see [`crate::merge`]).
    ///
    /// Errors: [`EvalError::SweepMismatch`] for a successful record whose
    /// `maxbox_ious` does not have one value per sweep threshold.
    pub fn from_records(records: &[ImageRecord], sweep: &[f32]) -> Result<Self> {
        let mut sorted: Vec<&ImageRecord> = records.iter().collect();
        sorted.sort_by_key(|r| r.index);
        check_sweeps(&sorted, sweep.len())?;
        let n = sorted.len();
        let rate =
            |f: fn(&ImageRecord) -> bool| fraction(sorted.iter().filter(|r| f(r)).count(), n);
        let maxbox = maxbox_accuracies(&sorted, sweep);
        let top5_loc = rate(ImageRecord::top5_loc_correct);
        Ok(Self {
            images: n,
            failed: sorted.iter().filter(|r| r.is_failed()).count(),
            failures: first_failures(&sorted),
            top1_cls: rate(ImageRecord::top1_correct),
            top5_cls: rate(ImageRecord::top5_correct),
            top1_loc: rate(ImageRecord::top1_loc_correct),
            top5_loc,
            top5_loc_error: if n == 0 { 0.0 } else { 1.0 - top5_loc },
            gt_known_loc: rate(ImageRecord::gt_known_correct),
            maxbox_acc_v2: mean(maxbox.iter().map(|m| m.accuracy)),
            maxbox,
            mean_iou: mean(sorted.iter().map(|r| f64::from(r.gt_known_iou))),
            pointing_game: rate(|r| r.pointing_hit),
            iou_histogram: histogram(&sorted),
        })
    }
}

/// The first [`FAILURES_LISTED`] failed records of `records` (in index order).
fn first_failures(records: &[&ImageRecord]) -> Vec<FailedImage> {
    records
        .iter()
        .filter_map(|r| {
            Some(FailedImage {
                index: r.index,
                id: r.id.clone(),
                error: r.error.clone()?,
            })
        })
        .take(FAILURES_LISTED)
        .collect()
}

fn check_sweeps(records: &[&ImageRecord], expected: usize) -> Result<()> {
    let bad = records
        .iter()
        .find(|r| !r.is_failed() && r.maxbox_ious.len() != expected);
    match bad {
        Some(r) => Err(EvalError::SweepMismatch {
            index: r.index,
            expected,
            got: r.maxbox_ious.len(),
        }),
        None => Ok(()),
    }
}

fn fraction(count: usize, n: usize) -> f64 {
    if n == 0 { 0.0 } else { count as f64 / n as f64 }
}

/// Mean in iteration order; 0 for no values.
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// MaxBoxAcc at each δ: the best, over sweep thresholds, share of images
/// whose best box at that threshold reaches δ.
fn maxbox_accuracies(records: &[&ImageRecord], sweep: &[f32]) -> Vec<MaxBoxAt> {
    MAXBOX_IOU_THRESHOLDS
        .iter()
        .map(|&delta| {
            let hits: Vec<usize> = (0..sweep.len())
                .map(|t| {
                    records
                        .iter()
                        .filter(|r| r.maxbox_ious.get(t).is_some_and(|&v| v >= delta))
                        .count()
                })
                .collect();
            let (best, count) = first_max(&hits);
            MaxBoxAt {
                iou_threshold: delta,
                accuracy: fraction(count, records.len()),
                best_threshold: sweep.get(best).copied().unwrap_or(0.0),
            }
        })
        .collect()
}

/// Position and value of the first largest element (`(0, 0)` when empty).
fn first_max(values: &[usize]) -> (usize, usize) {
    values.iter().enumerate().fold(
        (0, 0),
        |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
    )
}

fn histogram(records: &[&ImageRecord]) -> Vec<usize> {
    let mut counts = vec![0; HISTOGRAM_BINS];
    for r in records {
        let bin = (r.gt_known_iou.clamp(0.0, 1.0) * HISTOGRAM_BINS as f32) as usize;
        if let Some(count) = counts.get_mut(bin.min(HISTOGRAM_BINS - 1)) {
            *count += 1;
        }
    }
    counts
}
