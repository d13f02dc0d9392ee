//! The maps a tuning run scores: computed once per image, kept unblurred.

use feedbacknet_localize::{ColourImage, SaliencyMap};

use crate::dataset::Sample;
use crate::error::{Result, invalid};

/// One image's stored maps and predictions, for every method tuned on one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredImage {
    /// The image and its ground truth.
    pub sample: Sample,
    /// Predicted classes, best first.
    pub top5: Vec<usize>,
    /// Per method, one unblurred map of the true class at [`Sample::size`] per candidate
    /// setting (in the order of [`crate::tune::Candidates::variants`]).
    pub maps: Vec<Vec<SaliencyMap>>,
    /// Per method, the time of the prediction and the map in ms.
    pub times_ms: Vec<f64>,
    /// The image at the maps' size, when a refinement reads it.
    pub image: Option<ColourImage>,
    /// What was wrong with the image file if it was accepted damaged (see
    /// [`crate::DamagedImages::Accept`]); empty for a sound file.
    pub warnings: Vec<String>,
    /// The maps of the image under a small perturbation (grey-level noise), when box
    /// stability is scored (see [`crate::tune::Grid::min_box_stability`]).
    pub perturbed: Option<PerturbedMaps>,
}

/// The maps of a perturbed copy of an image, laid out as [`StoredImage::maps`].
#[derive(Debug, Clone, PartialEq)]
pub struct PerturbedMaps {
    /// Per method, per candidate, the unblurred map of the true class at [`Sample::size`].
    pub maps: Vec<Vec<SaliencyMap>>,
    /// The perturbed image at the maps' size, when a refinement reads it.
    pub image: Option<ColourImage>,
}

/// One image as one method sees it: a map per candidate.
pub(crate) struct MethodView<'a> {
    pub sample: &'a Sample,
    pub top5: &'a [usize],
    pub maps: &'a [SaliencyMap],
    pub image: Option<&'a ColourImage>,
    /// The perturbed copy's maps and image.
    pub perturbed: Option<(&'a [SaliencyMap], Option<&'a ColourImage>)>,
}

/// The `m`-th method's view of the images `keep` accepts.
pub(crate) fn views(
    stored: &[StoredImage],
    m: usize,
    keep: impl Fn(&Sample) -> bool,
) -> Vec<MethodView<'_>> {
    stored
        .iter()
        .filter(|s| keep(&s.sample))
        .map(|s| MethodView {
            sample: &s.sample,
            top5: &s.top5,
            maps: s.maps.get(m).map_or(&[], Vec::as_slice),
            image: s.image.as_ref(),
            perturbed: s.perturbed.as_ref().map(|p| {
                let maps = p.maps.get(m).map_or(&[][..], Vec::as_slice);
                (maps, p.image.as_ref())
            }),
        })
        .collect()
}

impl MethodView<'_> {
    /// The stored map of variant `candidate`.
    pub(crate) fn map(&self, candidate: usize) -> Result<&SaliencyMap> {
        self.maps
            .get(candidate)
            .ok_or_else(|| self.missing(candidate))
    }

    /// The perturbed copy's map of variant `candidate`, if the image has a perturbed copy.
    pub(crate) fn perturbed_map(&self, candidate: usize) -> Option<Result<&SaliencyMap>> {
        let (maps, _) = self.perturbed?;
        Some(maps.get(candidate).ok_or_else(|| self.missing(candidate)))
    }

    fn missing(&self, candidate: usize) -> crate::error::EvalError {
        invalid(
            "candidate",
            candidate,
            format!("{} has no stored map for it", self.sample.id),
        )
    }
}

/// Checks that every image holds `candidates` maps and a time for method `m`.
pub(crate) fn check_stored(stored: &[StoredImage], m: usize, candidates: usize) -> Result<()> {
    match stored
        .iter()
        .find(|s| s.maps.get(m).map(Vec::len) != Some(candidates) || s.times_ms.len() <= m)
    {
        Some(s) => Err(invalid(
            "stored maps",
            &s.sample.id,
            format!("need {candidates} maps and a time for method {m}"),
        )),
        None => Ok(()),
    }
}
