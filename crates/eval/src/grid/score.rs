//! The grid pointing game's scores: per cell, and their summary per method.

use feedbacknet_localize::{ColourImage, SaliencyMap};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::grid::manifest::GridCell;
use crate::grid::mosaic::CellRect;
use crate::metrics::{LOC_IOU_THRESHOLD, MeasureConfig, measure_box_with_image, peak};

/// The scores of one cell's class map on its mosaic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellScore {
    /// The mosaic's index in the manifest.
    pub mosaic: usize,
    /// The cell (row-major).
    pub cell: usize,
    /// The cell's class.
    pub class: usize,
    /// Share of the map's positive mass inside the cell ([`mass_share`]).
    pub mass_share: f32,
    /// Whether the map's peak lies in the cell ([`peak_in`]).
    pub peak_in_cell: bool,
    /// IoU of the map's box (the evaluator's rule on the whole mosaic) with the cell's
    /// ground-truth boxes.
    pub iou: f32,
    /// Why the cell could not be scored (then every metric counts it as a miss).
    pub error: Option<String>,
}

impl CellScore {
    /// A failed cell: zero scores and the reason.
    pub fn failed(mosaic: usize, cell: usize, class: usize, error: String) -> Self {
        Self {
            mosaic,
            cell,
            class,
            mass_share: 0.0,
            peak_in_cell: false,
            iou: 0.0,
            error: Some(error),
        }
    }
}

/// Share of the map's positive mass inside `rect`: `Σ_rect max(v, 0) / Σ max(v, 0)`; 0 for a
/// map without positive values. A uniform map gives the cell's share of the pixels.
pub fn mass_share(map: &SaliencyMap, rect: &CellRect) -> f32 {
    let width = map.width();
    let (inside, total) = map
        .data()
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v > 0.0)
        .fold((0.0f64, 0.0f64), |(inside, total), (i, &v)| {
            let v = f64::from(v);
            let hit = rect.contains(i % width, i / width);
            (inside + if hit { v } else { 0.0 }, total + v)
        });
    if total > 0.0 {
        (inside / total) as f32
    } else {
        0.0
    }
}

/// Whether the map's peak ([`peak`]: its largest value, first in raster order) lies in
/// `rect`; a map without positive values misses.
pub fn peak_in(map: &SaliencyMap, rect: &CellRect) -> bool {
    peak(map).is_some_and(|(x, y)| rect.contains(x, y))
}

/// Scores the map of `cell`'s class on its mosaic (`map` at the mosaic's size). GT-known
/// localization: the box of the map over the whole mosaic, by the evaluator's rule
/// ([`measure_box_with_image`]: blur, threshold, the refinement of `config` with the mosaic's
/// pixels `image`, largest component), against the cell's own ground-truth boxes; a box that
/// spills onto other cells loses IoU.
pub fn score_cell(
    map: &SaliencyMap,
    image: Option<&ColourImage>,
    (mosaic, cell_index): (usize, usize),
    cell: &GridCell,
    config: &MeasureConfig,
) -> Result<CellScore> {
    let (_, iou) = measure_box_with_image(map, image, &cell.boxes, config)?;
    Ok(CellScore {
        mosaic,
        cell: cell_index,
        class: cell.class,
        mass_share: mass_share(map, &cell.rect),
        peak_in_cell: peak_in(map, &cell.rect),
        iou,
        error: None,
    })
}

/// The grid pointing game of one method over all cells. Fractions are in `[0, 1]` and 0 for
/// no cells; failed cells count as misses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSummary {
    /// Cells per side.
    pub n: usize,
    /// Mosaics scored.
    pub mosaics: usize,
    /// Cells scored (`mosaics · n²`).
    pub cells: usize,
    /// Cells that failed.
    pub failed: usize,
    /// Chance level of `mass_share` and `peak_in_cell`: `1 / n²`.
    pub chance: f64,
    /// Mean share of the positive mass in the right cell.
    pub mass_share: f64,
    /// Share of cells whose map peaks in the right cell.
    pub peak_in_cell: f64,
    /// Share of cells whose box has IoU >= 0.5 with the cell's ground truth.
    pub gt_known_loc: f64,
    /// Mean IoU of those boxes.
    pub mean_iou: f64,
}

impl GridSummary {
    /// The summary of `scores` for `n × n` mosaics.
    pub fn from_scores(n: usize, scores: &[CellScore]) -> Self {
        let cells = scores.len();
        let mean = |f: &dyn Fn(&CellScore) -> f64| {
            if cells == 0 {
                0.0
            } else {
                scores.iter().map(f).sum::<f64>() / cells as f64
            }
        };
        let mut mosaics: Vec<usize> = scores.iter().map(|s| s.mosaic).collect();
        mosaics.sort_unstable();
        mosaics.dedup();
        Self {
            n,
            mosaics: mosaics.len(),
            cells,
            failed: scores.iter().filter(|s| s.error.is_some()).count(),
            chance: 1.0 / (n * n).max(1) as f64,
            mass_share: mean(&|s| f64::from(s.mass_share)),
            peak_in_cell: mean(&|s| f64::from(u8::from(s.peak_in_cell))),
            gt_known_loc: mean(&|s| f64::from(u8::from(s.iou >= LOC_IOU_THRESHOLD))),
            mean_iou: mean(&|s| f64::from(s.iou)),
        }
    }
}
