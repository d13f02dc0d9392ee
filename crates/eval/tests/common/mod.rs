//! Helpers shared by the integration tests: the shared data folder, a
//! small slice of the dev set, a parser of the raw `boxes.csv` rows, and a
//! deterministic mock explainer.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use feedbacknet_eval::{Dataset, ExplainError, Explainer, Explanation};
use feedbacknet_localize::{BoundingBox, SaliencyMap};

/// The shared folder: `FEEDBACKNET_SHARED`, default `../shared` beside the repository.
pub fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// The 403-image development set folder.
pub fn dev_dir() -> PathBuf {
    shared().join("data/imagenet-val")
}

/// The wsolevaluation metadata folder.
pub fn metadata_dir() -> PathBuf {
    shared().join("data/imagenet-val-metadata")
}

/// The dev set loaded from its `boxes.csv`.
pub fn dev_set() -> Dataset {
    Dataset::open(&dev_dir(), None).expect("the shared dev set loads")
}

/// The first `n` images of the dev set.
pub fn first_dev_images(n: usize) -> Dataset {
    let mut ds = dev_set();
    ds.samples.truncate(n);
    ds
}

/// One raw row of `boxes.csv`, read independently of the library.
#[derive(Debug, Clone)]
pub struct CsvRow {
    pub image: String,
    pub class: usize,
    pub wnid: String,
    pub orig_size: (u32, u32),
    pub orig_box: [f32; 4],
}

/// All rows of the dev set's `boxes.csv`, in file order.
pub fn csv_rows() -> Vec<CsvRow> {
    let text = std::fs::read_to_string(dev_dir().join("boxes.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.trim().split(',').collect();
            let num = |i: usize| f[i].parse::<f32>().unwrap();
            CsvRow {
                image: f[0].to_string(),
                class: f[1].parse().unwrap(),
                wnid: f[2].to_string(),
                orig_size: (f[9].parse().unwrap(), f[10].parse().unwrap()),
                orig_box: [num(11), num(12), num(13), num(14)],
            }
        })
        .collect()
}

pub fn bb(x0: f32, y0: f32, x1: f32, y1: f32) -> BoundingBox {
    BoundingBox::new(x0, y0, x1, y1).unwrap()
}

/// A deterministic explainer that knows the ground truth of a data set.
///
/// What it returns depends on `class % 4`:
/// 0: right top-1, map bright inside the first GT box;
/// 1: right class at guess 3, map bright in a corner away from the box;
/// 2: true class not in the top 5, map bright inside the box;
/// 3: right top-1, a large blob in a corner plus a small blob inside the box.
/// Maps are at a quarter of the GT image size. Class 999 fails.
pub struct MockExplainer {
    truth: HashMap<usize, ((u32, u32), BoundingBox)>,
}

impl MockExplainer {
    pub fn new(dataset: &Dataset) -> Self {
        let mut truth = HashMap::new();
        for s in &dataset.samples {
            truth.entry(s.class).or_insert((s.size, s.boxes[0]));
        }
        Self { truth }
    }
}

fn others(class: usize) -> impl Iterator<Item = usize> {
    (1..).map(move |d| (class + d * 7) % 1000)
}

fn top5_for(class: usize) -> Vec<usize> {
    let mut wrong: Vec<usize> = others(class).take(5).collect();
    match class % 4 {
        0 | 3 => wrong[0] = class,
        1 => wrong[2] = class,
        _ => {}
    }
    wrong
}

/// A quarter-size map, 1 inside the given quarter-scale rectangles.
fn blobs(size: (u32, u32), rects: &[[f32; 4]]) -> SaliencyMap {
    let (w, h) = ((size.0 / 4).max(1) as usize, (size.1 / 4).max(1) as usize);
    SaliencyMap::from_fn(w, h, |x, y| {
        let (px, py) = (x as f32 * 4.0 + 2.0, y as f32 * 4.0 + 2.0);
        let inside = rects
            .iter()
            .any(|r| px >= r[0] && px < r[2] && py >= r[1] && py < r[3]);
        if inside { 1.0 } else { 0.0 }
    })
    .unwrap()
}

impl Explainer for MockExplainer {
    fn explain(
        &self,
        _image: &image::DynamicImage,
        true_class: usize,
        k: usize,
    ) -> Result<Explanation, ExplainError> {
        if true_class == 999 {
            return Err("mock failure for class 999".into());
        }
        let (size, b) = *self.truth.get(&true_class).ok_or("unknown class")?;
        let inside = [b.x0, b.y0, b.x1, b.y1];
        let corner = [0.0, 0.0, size.0 as f32 * 0.3, size.1 as f32 * 0.3];
        let small = [
            (b.x0 + b.x1) / 2.0 - 8.0,
            (b.y0 + b.y1) / 2.0 - 8.0,
            (b.x0 + b.x1) / 2.0 + 8.0,
            (b.y0 + b.y1) / 2.0 + 8.0,
        ];
        let map = match true_class % 4 {
            0 | 2 => blobs(size, &[inside]),
            1 => blobs(size, &[corner]),
            _ => blobs(
                size,
                &[[0.0, 0.0, size.0 as f32 * 0.25, size.1 as f32], small],
            ),
        };
        let top5 = top5_for(true_class);
        let top_maps = (0..k.min(5)).map(|_| blobs(size, &[corner])).collect();
        Ok(Explanation {
            top5,
            true_class_map: map,
            top_maps,
            image: None,
        })
    }
}
