//! The grid pointing game (Rao et al., "Towards Better Understanding Attribution Methods",
//! CVPR 2022; the evaluation of Böhle et al.'s B-cos networks): how class-discriminative a
//! saliency method is.
//!
//! 1. [`select`]: images of a [`Dataset`](crate::Dataset) are taken in a seeded order and
//!    classified alone ([`Classifier`]); those classified correctly with a probability of at
//!    least [`SelectConfig::confidence`] fill mosaics of `n × n` images of distinct classes.
//! 2. [`MosaicLayout`]: each image is stretched into one cell of the mosaic (row-major), its
//!    ground-truth boxes mapped into mosaic pixels; [`GridManifest`] records every choice
//!    (seed, threshold, cells, boxes) so that a run can be repeated and checked.
//! 3. [`evaluate`]: for each mosaic, the map of every cell's class is computed on the whole
//!    mosaic ([`Explainer::explain_batch`](crate::Explainer::explain_batch), one item per
//!    cell) and scored against that cell ([`score_cell`]): the share of the map's positive mass
//!    inside it (chance `1 / n²`), whether the map's peak lies in it, and GT-known
//!    localization of the cell's own ground-truth boxes.
//! 4. [`GridSummary`]: the means over all cells of one method.
//!
//! Same data, classifier, seed and settings give the same manifest.

mod manifest;
mod mosaic;
mod run;
mod score;
mod select;

pub use manifest::{GridCell, GridManifest, MosaicEntry};
pub use mosaic::{CellRect, MosaicLayout};
pub use run::{MosaicDone, compose_mosaic, evaluate};
pub use score::{CellScore, GridSummary, mass_share, peak_in, score_cell};
pub use select::{
    Classification, Classifier, Pick, SelectConfig, SelectProgress, Selection, seeded_order, select,
};
