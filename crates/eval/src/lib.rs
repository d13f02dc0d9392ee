//! Localization evaluation for feedbacknet, without any deep-learning
//! dependency.
//!
//! * [`Dataset`]: ILSVRC 2012 validation images with classes and boxes, from
//!   the project's `boxes.csv`, clovaai/wsolevaluation metadata or the
//!   ILSVRC XML annotations; [`Shard`] splits it for parallel runs.
//! * [`measure`] and [`Summary`]: top-1/top-5 classification, ILSVRC top-1
//!   localization and top-5 localization error, GT-known localization,
//!   MaxBoxAccV2, mean IoU and the pointing game.
//! * [`Runner`]: runs an [`Explainer`] over a data set, one JSON line per
//!   image ([`ResultsWriter`]), resumable after a crash ([`ResumePolicy`]);
//!   [`merge`] combines shard files.
//! * [`decode_image_file`]: one decoding policy ([`DecodeOptions`]: decoder limits, damaged
//!   files refused or accepted with a warning) for the evaluator and the facade.
//! * [`Report`] and [`summary_json`]: an HTML page and a JSON summary.
//! * [`grid`]: the grid pointing game (Rao et al., CVPR 2022): mosaics of confidently
//!   classified images, each cell's class explained on the whole mosaic.
//! * [`stability`]: how far maps and boxes move under tiny input perturbations.
//! * [`tune`]: box settings chosen on one half of a data set and reported on the other
//!   (two-fold cross-validation on stored maps).
//!
//! Nothing here panics on bad input or prints; errors are [`EvalError`]s.
//!
//! ```
//! use feedbacknet_eval::{measure, MeasureConfig};
//! use feedbacknet_localize::{BoundingBox, SaliencyMap};
//!
//! let map = SaliencyMap::from_fn(100, 100, |x, y| {
//!     if (20..60).contains(&x) && (30..70).contains(&y) { 1.0 } else { 0.0 }
//! })?;
//! let truth = [BoundingBox::new(20.0, 30.0, 60.0, 70.0)?];
//! let config = MeasureConfig::default().with_blur_sigma(0.0).with_threshold(0.5);
//! let scores = measure(&map, &truth, &config)?;
//! assert_eq!(scores.iou, 1.0);
//! assert!(scores.pointing_hit);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![forbid(unsafe_code)]

mod dataset;
mod decode;
mod error;
mod explainer;
pub mod grid;
mod image_file;
mod jsonl;
mod metrics;
mod report;
mod runner;
pub mod stability;
mod text;
pub mod tune;

pub use dataset::{Dataset, Layout, SYNSET_FILE_NAMES, Sample, Shard};
pub use error::{EvalError, Result};
pub use explainer::{ExplainError, Explainer, Explanation, score_explanation};
pub use image_file::{
    DamagedImages, DecodeOptions, ImageFileError, LoadedImage, decode_image_bytes,
    decode_image_file, jpeg_damage,
};
pub use jsonl::{ReadRecords, ResultsWriter, done_ids, merge, read_records};
pub use metrics::{
    FAILURES_LISTED, FailedImage, HISTOGRAM_BINS, ImageRecord, LOC_IOU_THRESHOLD,
    MAXBOX_IOU_THRESHOLDS, MapScores, MaxBoxAt, MeasureConfig, Summary, default_sweep, max_iou,
    measure, measure_box, measure_box_with_image, measure_with_image, peak, pointing_hit,
};
pub use report::{
    GalleryItem, GridReport, Report, SummaryFile, Timings, best_and_worst, config_table,
    encode_png, sha256_file, summary_json,
};
pub use runner::{Progress, ResumePolicy, RunOutcome, Runner};
