//! The manifest of a grid run: every mosaic's cells, written out so a run can be repeated.

use std::path::Path;

use feedbacknet_localize::BoundingBox;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{EvalError, Result, invalid, io_error};
use crate::grid::mosaic::{CellRect, MosaicLayout};
use crate::grid::select::{SelectConfig, Selection};

/// One cell of a mosaic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridCell {
    /// The image's [`Sample::index`](crate::Sample::index).
    pub index: usize,
    /// The image's [`Sample::id`](crate::Sample::id).
    pub id: String,
    /// Its class (ground truth, predicted with `confidence`).
    pub class: usize,
    /// The classifier's probability of that class on the image alone.
    pub confidence: f32,
    /// Where the image lies in the mosaic.
    pub rect: CellRect,
    /// Its ground-truth boxes in mosaic pixels.
    pub boxes: Vec<BoundingBox>,
}

/// One mosaic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MosaicEntry {
    /// Position among the manifest's mosaics.
    pub index: usize,
    /// Its `n²` cells, row-major.
    pub cells: Vec<GridCell>,
}

/// Everything a grid run chose: the selection settings, the layout, how many images were
/// looked at, and each mosaic's cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridManifest {
    /// How images were chosen.
    pub select: SelectConfig,
    /// The mosaics' geometry.
    pub layout: MosaicLayout,
    /// Images in the data set.
    pub dataset_images: usize,
    /// Images classified before the mosaics were complete (or the data set ran out).
    pub examined: usize,
    /// Of those, images correct and confident enough.
    pub accepted: usize,
    /// Images that could not be decoded or classified.
    pub failed: usize,
    /// The mosaics.
    pub mosaics: Vec<MosaicEntry>,
}

impl GridManifest {
    /// The manifest of `selection`, made from `dataset` under `config`, laid out as `layout`
    /// (whose `n` must be `config.n`).
    pub fn new(
        selection: &Selection,
        dataset: &Dataset,
        config: &SelectConfig,
        layout: MosaicLayout,
    ) -> Result<Self> {
        if layout.n != config.n {
            return Err(invalid(
                "layout.n",
                layout.n,
                "must equal the selection's n",
            ));
        }
        let mosaics = (0..)
            .zip(&selection.mosaics)
            .map(|(index, picks)| {
                let cells = (0..)
                    .zip(picks)
                    .map(|(i, pick)| {
                        let sample = dataset.samples.get(pick.position).ok_or_else(|| {
                            invalid("position", pick.position, "not in the data set")
                        })?;
                        let rect = layout
                            .cell(i)
                            .ok_or_else(|| invalid("cell", i, "more picks than cells"))?;
                        let boxes = sample
                            .boxes
                            .iter()
                            .map(|b| layout.map_box(b, sample.size, &rect))
                            .collect::<Result<Vec<_>>>()?;
                        Ok(GridCell {
                            index: sample.index,
                            id: sample.id.clone(),
                            class: pick.class,
                            confidence: pick.confidence,
                            rect,
                            boxes,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(MosaicEntry { index, cells })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            select: config.clone(),
            layout,
            dataset_images: dataset.len(),
            examined: selection.examined,
            accepted: selection.accepted,
            failed: selection.failed,
            mosaics,
        })
    }

    /// Writes the manifest as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|source| EvalError::Json {
            what: "the grid manifest",
            source,
        })?;
        std::fs::write(path, text + "\n").map_err(io_error(path))
    }

    /// Reads a manifest written by [`GridManifest::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        serde_json::from_str(&text).map_err(|e| EvalError::Parse {
            path: path.to_path_buf(),
            line: e.line(),
            message: e.to_string(),
        })
    }

    /// Chance level of the peak and mass metrics: `1 / n²`.
    pub fn chance(&self) -> f64 {
        1.0 / self.layout.cells() as f64
    }
}
