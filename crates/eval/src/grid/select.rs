//! Choosing the images of the mosaics: seeded, confident, correct, distinct classes.

use image::DynamicImage;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Result, invalid};
use crate::explainer::ExplainError;
use crate::image_file::{DecodeOptions, decode_image_file};

/// A classifier's top-1 answer for one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The most likely class (the data set's class indices).
    pub class: usize,
    /// Its softmax probability, in `[0, 1]`.
    pub probability: f32,
}

/// The model side of the selection: the top-1 class of an image and its probability.
pub trait Classifier: Sync {
    /// Classifies `image` as the evaluator would feed it alone.
    fn classify(&self, image: &DynamicImage) -> std::result::Result<Classification, ExplainError>;
}

/// How mosaics are chosen, built in builder style.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `n` | 2 | mosaics of `n × n` cells (2 to 16) |
/// | `mosaics` | 20 | mosaics wanted (at least 1) |
/// | `seed` | 0 | seed of the order images are considered in |
/// | `confidence` | 0.5 | least top-1 probability of an accepted image, in `[0, 1]` |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectConfig {
    /// Cells per side.
    pub n: usize,
    /// Number of mosaics wanted.
    pub mosaics: usize,
    /// Seed of the order in which the data set's images are considered.
    pub seed: u64,
    /// Least probability of the (correct) top-1 class for an image to be used.
    pub confidence: f32,
}

impl Default for SelectConfig {
    fn default() -> Self {
        Self {
            n: 2,
            mosaics: 20,
            seed: 0,
            confidence: 0.5,
        }
    }
}

impl SelectConfig {
    /// Sets [`SelectConfig::n`].
    pub fn with_n(mut self, n: usize) -> Self {
        self.n = n;
        self
    }

    /// Sets [`SelectConfig::mosaics`].
    pub fn with_mosaics(mut self, mosaics: usize) -> Self {
        self.mosaics = mosaics;
        self
    }

    /// Sets [`SelectConfig::seed`].
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`SelectConfig::confidence`].
    pub fn with_confidence(mut self, confidence: f32) -> Self {
        self.confidence = confidence;
        self
    }

    /// Checks every field; [`crate::EvalError::InvalidParameter`] names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if !(2..=16).contains(&self.n) {
            return Err(invalid("n", self.n, "must lie in 2..=16"));
        }
        if self.mosaics == 0 {
            return Err(invalid("mosaics", self.mosaics, "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(invalid("confidence", self.confidence, "must lie in [0, 1]"));
        }
        Ok(())
    }

    /// Cells per mosaic, `n²`.
    pub fn cells(&self) -> usize {
        self.n * self.n
    }
}

/// One accepted image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    /// Its position in the data set's `samples`.
    pub position: usize,
    /// Its (correctly predicted) class.
    pub class: usize,
    /// The classifier's probability of that class.
    pub confidence: f32,
}

/// What [`select`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The complete mosaics (at most [`SelectConfig::mosaics`]), each `n²` picks of distinct
    /// classes in cell order; fewer when the data set ran out.
    pub mosaics: Vec<Vec<Pick>>,
    /// Images classified.
    pub examined: usize,
    /// Of those, images correct and confident enough.
    pub accepted: usize,
    /// Images that could not be decoded or classified (skipped).
    pub failed: usize,
}

/// Reported to the progress callback after each image classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectProgress {
    /// Images classified so far.
    pub examined: usize,
    /// Complete mosaics so far.
    pub complete: usize,
    /// Mosaics wanted.
    pub wanted: usize,
}

/// Positions `0..len` in the order of seed `seed`: a Fisher-Yates shuffle driven by
/// SplitMix64 (the same on every platform and version).
pub fn seeded_order(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = seed;
    for i in (1..len).rev() {
        let j = (split_mix64(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The next value of SplitMix64 (Steele et al., 2014).
fn split_mix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Classifies the data set's images in [`seeded_order`] and fills mosaics until
/// [`SelectConfig::mosaics`] are complete: an image whose top-1 class is its ground-truth
/// class with a probability of at least [`SelectConfig::confidence`] goes into the first
/// unfinished mosaic that has no image of its class (a new one if none), each image used
/// once. Images that fail to decode or classify are skipped. Deterministic: the same data,
/// classifier answers and config give the same selection.
///
/// Errors: an invalid `config`.
pub fn select<C: Classifier + ?Sized>(
    dataset: &Dataset,
    classifier: &C,
    config: &SelectConfig,
    decode: &DecodeOptions,
    mut progress: impl FnMut(SelectProgress),
) -> Result<Selection> {
    config.validate()?;
    let mut filling = Filling::new(config);
    let (mut examined, mut accepted, mut failed) = (0, 0, 0);
    for position in seeded_order(dataset.len(), config.seed) {
        if filling.complete() >= config.mosaics {
            break;
        }
        let Some(sample) = dataset.samples.get(position) else {
            continue;
        };
        examined += 1;
        let answer = decode_image_file(&sample.path, decode)
            .map_err(ExplainError::from)
            .and_then(|loaded| classifier.classify(&loaded.image));
        match answer {
            Err(_) => failed += 1,
            Ok(c) if c.class == sample.class && c.probability >= config.confidence => {
                accepted += 1;
                filling.add(Pick {
                    position,
                    class: c.class,
                    confidence: c.probability,
                });
            }
            Ok(_) => {}
        }
        progress(SelectProgress {
            examined,
            complete: filling.complete(),
            wanted: config.mosaics,
        });
    }
    Ok(Selection {
        mosaics: filling.finish(config.mosaics),
        examined,
        accepted,
        failed,
    })
}

/// Mosaics being filled, in the order they were opened.
struct Filling {
    cells: usize,
    open: Vec<Vec<Pick>>,
}

impl Filling {
    fn new(config: &SelectConfig) -> Self {
        Self {
            cells: config.cells(),
            open: Vec::new(),
        }
    }

    /// Puts `pick` into the first unfinished mosaic without its class, or a new one.
    fn add(&mut self, pick: Pick) {
        let cells = self.cells;
        let slot = self
            .open
            .iter_mut()
            .find(|m| m.len() < cells && m.iter().all(|p| p.class != pick.class));
        match slot {
            Some(mosaic) => mosaic.push(pick),
            None => self.open.push(vec![pick]),
        }
    }

    fn complete(&self) -> usize {
        self.open.iter().filter(|m| m.len() == self.cells).count()
    }

    /// The first `wanted` complete mosaics, in the order they were opened.
    fn finish(self, wanted: usize) -> Vec<Vec<Pick>> {
        let cells = self.cells;
        self.open
            .into_iter()
            .filter(|m| m.len() == cells)
            .take(wanted)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_order_is_a_permutation_that_depends_on_the_seed() {
        let a = seeded_order(100, 7);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, seeded_order(100, 7));
        assert_ne!(a, seeded_order(100, 8));
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        assert!(seeded_order(0, 1).is_empty());
    }

    #[test]
    fn filling_keeps_classes_distinct_within_a_mosaic() {
        let config = SelectConfig::default().with_n(2);
        let mut filling = Filling::new(&config);
        for (position, class) in [1, 1, 2, 3, 1, 4, 5, 6, 7].into_iter().enumerate() {
            filling.add(Pick {
                position,
                class,
                confidence: 1.0,
            });
        }
        let done = filling.finish(5);
        assert_eq!(done.len(), 2);
        for mosaic in &done {
            let mut classes: Vec<usize> = mosaic.iter().map(|p| p.class).collect();
            classes.sort_unstable();
            classes.dedup();
            assert_eq!(classes.len(), 4);
        }
        let first: Vec<usize> = done[0].iter().map(|p| p.position).collect();
        assert_eq!(first, vec![0, 2, 3, 5]);
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert!(SelectConfig::default().with_n(1).validate().is_err());
        assert!(SelectConfig::default().with_mosaics(0).validate().is_err());
        assert!(
            SelectConfig::default()
                .with_confidence(1.5)
                .validate()
                .is_err()
        );
        assert!(SelectConfig::default().validate().is_ok());
    }
}
