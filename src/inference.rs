//! The result of one inference: class, scores, saliency, boxes, solver trace and timings.

use feedbacknet_localize::{BoundingBox, SaliencyMap};
use serde::Serialize;

use crate::Method;

/// A class as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassInfo {
    /// Class index (label order; for 1001-logit nets the background logit is not a class).
    pub index: usize,
    /// Display name.
    pub label: String,
    /// WordNet id, empty when unknown.
    pub wnid: String,
}

/// A class score from a plain forward pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The class.
    pub class: ClassInfo,
    /// Its logit.
    pub logit: f32,
    /// Its softmax probability over the model's classes.
    pub probability: f32,
}

/// Wall-clock time of each stage, in milliseconds. For a batched call (`infer_top_k`,
/// `explain_batch`) the solver and saliency times are those of the whole batch; the
/// preprocessing time is the image's own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Resize, crop and normalization.
    pub preprocess_ms: f64,
    /// Gate inference (0 for the gradient method).
    pub solve_ms: f64,
    /// The saliency (input-gradient) pass.
    pub saliency_ms: f64,
    /// Blur, threshold, components and mapping to the image.
    pub localize_ms: f64,
}

/// Summary of the converged gates of one class.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GateStats {
    /// Number of gates.
    pub count: usize,
    /// Mean gate value.
    pub mean: f32,
    /// Fraction of gates at or above 0.5.
    pub open_fraction: f32,
    /// Solver iterations run.
    pub iterations: usize,
}

/// Everything [`FeedbackNet::infer`](crate::FeedbackNet::infer) found for one class.
#[derive(Debug, Clone, Serialize)]
pub struct Inference {
    /// The class explained.
    pub class: ClassInfo,
    /// The saliency method used.
    pub method: Method,
    /// Target logit of the plain feed-forward net (all gates open).
    pub logit_before: f32,
    /// Target logit of the gated net after the solver (equal to `logit_before` for methods
    /// that do not gate).
    pub logit_after: f32,
    /// Per solver iteration, the target logit before that iteration's update.
    pub trace: Vec<f32>,
    /// Gate summary (feedback methods only).
    pub gates: Option<GateStats>,
    /// Boxes in original image pixels, best (largest component) first
    /// ([`localize_in_image`](feedbacknet_localize::localize_in_image) of `saliency`).
    pub boxes: Vec<BoundingBox>,
    /// The raw saliency `max_c |∂score/∂I_c|`, normalized to max 1, at image size.
    #[serde(skip)]
    pub saliency: SaliencyMap,
    /// The blurred, normalized map that was thresholded, at image size.
    #[serde(skip)]
    pub smoothed: SaliencyMap,
    /// Stage timings.
    pub timings: Timings,
}

impl Inference {
    /// The best box (largest connected component), if the map is not empty.
    pub fn best_box(&self) -> Option<&BoundingBox> {
        self.boxes.first()
    }
}

/// The results of [`FeedbackNet::explain`](crate::FeedbackNet::explain): one [`Inference`] per
/// requested method and class, grouped by method (in the request's order), then by class (in
/// the target order).
///
/// Iterating goes method by method: all classes of the first method, then of the second.
#[derive(Debug, Clone, Default)]
pub struct Inferences {
    classes: Vec<usize>,
    per_method: Vec<Vec<Inference>>,
}

impl Inferences {
    /// Results of `classes`, `per_method[m][c]` for method `m` and class `classes[c]`.
    pub(crate) fn new(classes: Vec<usize>, per_method: Vec<Vec<Inference>>) -> Self {
        Self {
            classes,
            per_method,
        }
    }

    /// The class indices explained, in target order (for top-k: most likely first).
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// The results of the `m`-th requested method, one per class (empty past the last).
    pub fn method(&self, m: usize) -> &[Inference] {
        self.per_method.get(m).map_or(&[], Vec::as_slice)
    }

    /// The result of the `m`-th method for the `c`-th class.
    pub fn get(&self, m: usize, c: usize) -> Option<&Inference> {
        self.per_method.get(m)?.get(c)
    }

    /// Every result, method by method.
    pub fn iter(&self) -> impl Iterator<Item = &Inference> {
        self.per_method.iter().flatten()
    }

    /// The number of results (methods times classes).
    pub fn len(&self) -> usize {
        self.per_method.iter().map(Vec::len).sum()
    }

    /// Whether there is no result.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The results grouped by method: `[m][c]`.
    pub fn into_per_method(self) -> Vec<Vec<Inference>> {
        self.per_method
    }
}

impl IntoIterator for Inferences {
    type Item = Inference;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<Inference>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.per_method.into_iter().flatten()
    }
}
