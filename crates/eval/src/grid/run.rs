//! Running an [`Explainer`] over the mosaics of a [`GridManifest`].

use image::{DynamicImage, RgbImage};

use crate::dataset::{Dataset, Sample};
use crate::error::{EvalError, Result};
use crate::explainer::Explainer;
use crate::grid::manifest::{GridManifest, MosaicEntry};
use crate::grid::score::{CellScore, score_cell};
use crate::image_file::{DecodeOptions, decode_image_file};
use crate::metrics::MeasureConfig;

/// The pixels of `entry`: its cells' images decoded and laid out as the manifest says.
///
/// Errors: a cell whose image is not `dataset`'s image of that index
/// ([`EvalError::ManifestMismatch`]), or an image that cannot be decoded
/// ([`EvalError::Image`]).
pub fn compose_mosaic(
    manifest: &GridManifest,
    entry: &MosaicEntry,
    dataset: &Dataset,
    decode: &DecodeOptions,
) -> Result<RgbImage> {
    let images = entry
        .cells
        .iter()
        .map(|cell| {
            let sample = sample_of(dataset, cell.index, &cell.id)?;
            Ok(decode_image_file(&sample.path, decode)?.image)
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&DynamicImage> = images.iter().collect();
    Ok(manifest.layout.compose(&refs))
}

/// The data set's image of `index`, checked to be `id`.
fn sample_of<'a>(dataset: &'a Dataset, index: usize, id: &str) -> Result<&'a Sample> {
    let found = dataset.samples.iter().find(|s| s.index == index);
    match found {
        Some(sample) if sample.id == id => Ok(sample),
        _ => Err(EvalError::ManifestMismatch {
            index,
            expected: id.to_string(),
            found: found.map(|s| s.id.clone()),
        }),
    }
}

/// Explains every cell's class on its whole mosaic (one [`Explainer::explain_batch`] call per
/// mosaic, one item per cell, no top-k maps) and scores each map against its cell
/// ([`score_cell`]; the map is resized to the mosaic's size first). A mosaic that cannot be
/// composed or explained gives failed cells ([`CellScore::failed`]), not an error;
/// `progress(done, total)` is called after each mosaic. Scores are in manifest order.
///
/// Errors: an invalid `config`.
pub fn evaluate<E: Explainer + ?Sized>(
    manifest: &GridManifest,
    dataset: &Dataset,
    explainer: &E,
    config: &MeasureConfig,
    decode: &DecodeOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<CellScore>> {
    config.validate()?;
    let total = manifest.mosaics.len();
    let mut scores = Vec::with_capacity(total * manifest.layout.cells());
    for (done, entry) in manifest.mosaics.iter().enumerate() {
        let scored = compose_mosaic(manifest, entry, dataset, decode)
            .and_then(|mosaic| score_mosaic(manifest, entry, mosaic, explainer, config));
        match scored {
            Ok(cells) => scores.extend(cells),
            Err(e) => scores.extend(entry.cells.iter().enumerate().map(|(i, cell)| {
                CellScore::failed(entry.index, i, cell.class, e.to_string())
            })),
        }
        progress(done + 1, total);
    }
    Ok(scores)
}

/// The scores of one composed mosaic's cells; an explainer error for one cell fails that cell.
fn score_mosaic<E: Explainer + ?Sized>(
    manifest: &GridManifest,
    entry: &MosaicEntry,
    mosaic: RgbImage,
    explainer: &E,
    config: &MeasureConfig,
) -> Result<Vec<CellScore>> {
    let image = DynamicImage::ImageRgb8(mosaic);
    let items: Vec<(&DynamicImage, usize)> = entry.cells.iter().map(|c| (&image, c.class)).collect();
    let (w, h) = manifest.layout.size();
    let explanations = explainer.explain_batch(&items, 0);
    entry
        .cells
        .iter()
        .zip(explanations)
        .enumerate()
        .map(|(i, (cell, explanation))| {
            let failed = |e: String| CellScore::failed(entry.index, i, cell.class, e);
            let explanation = match explanation {
                Ok(explanation) => explanation,
                Err(e) => return Ok(failed(e.to_string())),
            };
            let map = explanation
                .true_class_map
                .resize_bilinear(w as usize, h as usize)?;
            score_cell(&map, entry.index, i, cell, config)
        })
        .collect()
}
