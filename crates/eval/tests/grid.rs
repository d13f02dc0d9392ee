//! The grid pointing game on the dev set: a deterministic selection and manifest, the
//! mosaic geometry on real images, and the scores of synthetic maps.

mod common;

use std::collections::HashMap;

use feedbacknet_eval::grid::{
    CellRect, Classification, Classifier, GridManifest, GridSummary, MosaicLayout, SelectConfig,
    compose_mosaic, evaluate, mass_share, peak_in, select,
};
use feedbacknet_eval::{
    DecodeOptions, ExplainError, Explainer, Explanation, MeasureConfig, decode_image_file,
};
use feedbacknet_localize::SaliencyMap;
use image::DynamicImage;

use common::first_dev_images;

/// A classifier that recognizes the dev images by their pixels and answers from their ground
/// truth: wrong for every fifth class, and with a probability spread over `[0, 1)`.
struct KnownImages {
    answers: HashMap<Vec<u8>, Classification>,
}

impl KnownImages {
    fn new(dataset: &feedbacknet_eval::Dataset) -> Self {
        let answers = dataset
            .samples
            .iter()
            .map(|s| {
                let image = decode_image_file(&s.path, &DecodeOptions::default()).unwrap();
                let class = if s.class % 5 == 0 {
                    s.class + 1
                } else {
                    s.class
                };
                let probability = (s.class * 37 % 100) as f32 / 100.0;
                (
                    image.image.to_rgb8().into_raw(),
                    Classification { class, probability },
                )
            })
            .collect();
        Self { answers }
    }
}

impl Classifier for KnownImages {
    fn classify(&self, image: &DynamicImage) -> Result<Classification, ExplainError> {
        let key = image.to_rgb8().into_raw();
        self.answers
            .get(&key)
            .copied()
            .ok_or_else(|| "unknown image".into())
    }
}

/// Every class map is uniform: the peak is the first pixel (in cell 0).
struct Uniform;

impl Explainer for Uniform {
    fn explain(
        &self,
        image: &DynamicImage,
        _true_class: usize,
        _k: usize,
    ) -> Result<Explanation, ExplainError> {
        let (w, h) = (image.width() as usize / 2, image.height() as usize / 2);
        Ok(Explanation {
            top5: Vec::new(),
            true_class_map: SaliencyMap::from_fn(w, h, |_, _| 1.0)?,
            top_maps: Vec::new(),
            image: None,
        })
    }
}

fn manifest(dataset: &feedbacknet_eval::Dataset, seed: u64, n: usize) -> GridManifest {
    let classifier = KnownImages::new(dataset);
    let config = SelectConfig::default()
        .with_n(n)
        .with_mosaics(3)
        .with_seed(seed)
        .with_confidence(0.3);
    let decode = DecodeOptions::default();
    let selection = select(dataset, &classifier, &config, &decode, |_| {}).unwrap();
    let layout = MosaicLayout::new(n, 40, 30).unwrap();
    GridManifest::new(&selection, dataset, &config, layout).unwrap()
}

#[test]
fn selection_is_deterministic_confident_correct_and_distinct() {
    let dataset = first_dev_images(60);
    let a = manifest(&dataset, 11, 2);
    assert_eq!(a, manifest(&dataset, 11, 2), "same seed, same manifest");
    assert_ne!(a.mosaics, manifest(&dataset, 12, 2).mosaics);
    assert_eq!(a.mosaics.len(), 3);
    assert!(a.accepted < a.examined, "some images are refused");
    for mosaic in &a.mosaics {
        let mut classes: Vec<usize> = mosaic.cells.iter().map(|c| c.class).collect();
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes.len(), 4, "distinct classes in a mosaic");
        for cell in &mosaic.cells {
            let sample = &dataset.samples[cell.index];
            assert_eq!(sample.id, cell.id);
            assert_eq!(sample.class, cell.class, "correct");
            assert_ne!(sample.class % 5, 0, "the wrong answers are refused");
            assert!(cell.confidence >= 0.3);
            assert_eq!(cell.boxes.len(), sample.boxes.len());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    a.write(&path).unwrap();
    assert_eq!(GridManifest::read(&path).unwrap(), a);
}

#[test]
fn boxes_are_mapped_into_their_cells_of_the_composed_mosaic() {
    let dataset = first_dev_images(60);
    let manifest = manifest(&dataset, 3, 3);
    let entry = &manifest.mosaics[0];
    let mosaic = compose_mosaic(&manifest, entry, &dataset, &DecodeOptions::default()).unwrap();
    assert_eq!(mosaic.dimensions(), (120, 90));
    for (i, cell) in entry.cells.iter().enumerate() {
        assert_eq!(cell.rect, manifest.layout.cell(i).unwrap());
        let sample = &dataset.samples[cell.index];
        let (sx, sy) = (40.0 / sample.size.0 as f32, 30.0 / sample.size.1 as f32);
        for (b, g) in cell.boxes.iter().zip(&sample.boxes) {
            assert!((b.x0 - (cell.rect.x as f32 + g.x0 * sx)).abs() < 1e-3);
            assert!((b.y1 - (cell.rect.y as f32 + g.y1 * sy)).abs() < 1e-3);
            assert!(b.x0 >= cell.rect.x as f32 && b.x1 <= (cell.rect.x + 40) as f32 + 1e-3);
            assert!(b.y0 >= cell.rect.y as f32 && b.y1 <= (cell.rect.y + 30) as f32 + 1e-3);
        }
        // The cell holds its image: the mosaic's pixel is the resized image's.
        let image = decode_image_file(&sample.path, &DecodeOptions::default()).unwrap();
        let alone = image
            .image
            .resize_exact(40, 30, image::imageops::FilterType::Triangle);
        let at = mosaic.get_pixel(cell.rect.x + 20, cell.rect.y + 15).0;
        assert_eq!(at, alone.to_rgb8().get_pixel(20, 15).0);
    }
    let mut other = first_dev_images(60);
    other.samples.swap(entry.cells[0].index, 59);
    other.samples[59].index = 59;
    assert!(compose_mosaic(&manifest, entry, &other, &DecodeOptions::default()).is_err());
}

#[test]
fn synthetic_maps_score_as_expected() {
    let rect = CellRect {
        x: 10,
        y: 0,
        width: 10,
        height: 10,
    };
    let inside = SaliencyMap::from_fn(20, 20, |x, y| {
        if x >= 12 && y < 8 {
            1.0 + x as f32
        } else {
            -3.0
        }
    })
    .unwrap();
    assert_eq!(mass_share(&inside, &rect), 1.0);
    assert!(peak_in(&inside, &rect));
    let uniform = SaliencyMap::from_fn(20, 20, |_, _| 0.5).unwrap();
    assert!((mass_share(&uniform, &rect) - 0.25).abs() < 1e-6);
    let zero = SaliencyMap::zeros(20, 20).unwrap();
    assert_eq!(mass_share(&zero, &rect), 0.0);
    assert!(!peak_in(&zero, &rect));
}

#[test]
fn a_uniform_map_scores_chance() {
    let dataset = first_dev_images(60);
    let manifest = manifest(&dataset, 5, 2);
    let config = MeasureConfig::default().with_blur_sigma(0.0);
    let mut calls = 0;
    let scores = evaluate(
        &manifest,
        &dataset,
        &Uniform,
        &config,
        &DecodeOptions::default(),
        |done| {
            calls += 1;
            assert_eq!((done.done, done.total), (calls, 3));
            assert_eq!(done.image.unwrap().dimensions(), (80, 60));
            assert!(done.maps.iter().all(|m| m.as_ref().unwrap().width() == 80));
            assert_eq!(done.scores.len(), 4);
        },
    )
    .unwrap();
    let summary = GridSummary::from_scores(2, &scores);
    assert_eq!((summary.mosaics, summary.cells, summary.failed), (3, 12, 0));
    assert_eq!(summary.chance, 0.25);
    assert!((summary.mass_share - 0.25).abs() < 1e-6);
    assert!(
        (summary.peak_in_cell - 0.25).abs() < 1e-9,
        "only cell 0 holds the peak"
    );
    assert!(summary.mean_iou < 0.5, "the whole mosaic is no cell's box");
}
