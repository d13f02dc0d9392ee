//! Running an [`Explainer`] over the mosaics of a [`GridManifest`].

use feedbacknet_localize::{ColourImage, SaliencyMap};
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

/// Reported to [`evaluate`]'s callback after each mosaic.
#[derive(Debug, Clone, Copy)]
pub struct MosaicDone<'a> {
    /// Mosaics done, this one included.
    pub done: usize,
    /// Mosaics in the manifest.
    pub total: usize,
    /// The mosaic's entry in the manifest.
    pub entry: &'a MosaicEntry,
    /// Its pixels (`None` when it could not be composed).
    pub image: Option<&'a RgbImage>,
    /// Each cell's class map at the mosaic's size (`None` for a failed cell).
    pub maps: &'a [Option<SaliencyMap>],
    /// Each cell's scores.
    pub scores: &'a [CellScore],
}

/// Explains every cell's class on its whole mosaic (one [`Explainer::explain_batch`] call per
/// mosaic, one item per cell, no top-k maps) and scores each map against its cell
/// ([`score_cell`]; the map is resized to the mosaic's size first). A mosaic that cannot be
/// composed or explained gives failed cells ([`CellScore::failed`]), not an error; `done` is
/// called after each mosaic with its maps (to draw them) and scores. Scores are in manifest
/// order.
///
/// Errors: an invalid `config`.
pub fn evaluate<E: Explainer + ?Sized>(
    manifest: &GridManifest,
    dataset: &Dataset,
    explainer: &E,
    config: &MeasureConfig,
    decode: &DecodeOptions,
    mut done: impl FnMut(MosaicDone<'_>),
) -> Result<Vec<CellScore>> {
    config.validate()?;
    let total = manifest.mosaics.len();
    let mut scores = Vec::with_capacity(total * manifest.layout.cells());
    for (i, entry) in manifest.mosaics.iter().enumerate() {
        let (image, maps, cells) = match compose_mosaic(manifest, entry, dataset, decode) {
            Ok(image) => {
                let image = DynamicImage::ImageRgb8(image);
                let (maps, cells) = explain_mosaic(manifest, entry, &image, explainer, config);
                (Some(image), maps, cells)
            }
            Err(e) => {
                let cells = failed_cells(entry, &e.to_string());
                (None, vec![None; cells.len()], cells)
            }
        };
        done(MosaicDone {
            done: i + 1,
            total,
            entry,
            image: image.as_ref().and_then(DynamicImage::as_rgb8),
            maps: &maps,
            scores: &cells,
        });
        scores.extend(cells);
    }
    Ok(scores)
}

/// Every cell of `entry` failed for `error`.
fn failed_cells(entry: &MosaicEntry, error: &str) -> Vec<CellScore> {
    (0..)
        .zip(&entry.cells)
        .map(|(i, cell)| CellScore::failed(entry.index, i, cell.class, error.to_string()))
        .collect()
}

/// The maps (at the mosaic's size) and scores of one composed mosaic's cells; an error for
/// one cell (the explainer's, or its scoring) fails that cell.
fn explain_mosaic<E: Explainer + ?Sized>(
    manifest: &GridManifest,
    entry: &MosaicEntry,
    image: &DynamicImage,
    explainer: &E,
    config: &MeasureConfig,
) -> (Vec<Option<SaliencyMap>>, Vec<CellScore>) {
    let items: Vec<(&DynamicImage, usize)> = entry.cells.iter().map(|c| (image, c.class)).collect();
    let (w, h) = manifest.layout.size();
    // The mosaic's pixels (composed at the layout's size), for a refinement of the masks; a
    // failure fails every cell, as a refinement without them would.
    let colour = config
        .refine
        .map(|_| {
            let rgb = image.to_rgb8();
            let (width, height) = (rgb.width() as usize, rgb.height() as usize);
            ColourImage::new(width, height, rgb.into_raw()).map_err(|e| e.to_string())
        })
        .transpose();
    let explanations = explainer.explain_batch(&items, 0);
    (0..)
        .zip(&entry.cells)
        .zip(explanations)
        .map(|((i, cell), explanation)| {
            let scored = explanation
                .map_err(|e| e.to_string())
                .and_then(|explanation| {
                    let map = explanation
                        .true_class_map
                        .resize_bilinear(w as usize, h as usize)
                        .map_err(|e| e.to_string())?;
                    let colour = colour.as_ref().map_err(Clone::clone)?.as_ref();
                    let score = score_cell(&map, colour, (entry.index, i), cell, config)
                        .map_err(|e| e.to_string())?;
                    Ok((map, score))
                });
            match scored {
                Ok((map, score)) => (Some(map), score),
                Err(e) => (None, CellScore::failed(entry.index, i, cell.class, e)),
            }
        })
        .unzip()
}
