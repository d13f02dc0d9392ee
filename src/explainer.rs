//! A [`FeedbackNet`] as the evaluator of `feedbacknet-eval` sees it: one method's maps as an
//! [`Explainer`] ([`MethodExplainer`]), and the stored maps a tuning run scores
//! ([`stored_maps`]). Both score the same maps: the saliency at the image's resolution,
//! blurred by [`smoothed_at_image`].
//!
//! ```no_run
//! use feedbacknet::{FeedbackNet, Method, MethodExplainer};
//! use feedbacknet_eval::{Dataset, Runner};
//!
//! let net = FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
//! let dataset = Dataset::open("../shared/data/imagenet-val".as_ref(), None)?;
//! let explainer = MethodExplainer { net: &net, method: Method::GradCam, blur: 10.0, refine: false };
//! let outcome = Runner::new("out/eval.jsonl").limit(20).run(&dataset, &explainer, |_| {})?;
//! println!("GT-known {:.3}", outcome.summary.gt_known_loc);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Instant;

use feedbacknet_eval::{
    ExplainError, Explainer, Explanation, Sample,
    stability::{NoiseSource, add_grey_noise},
    tune::{PerturbedMaps, StoredImage},
};
use feedbacknet_localize::{ColourImage, SaliencyMap, smoothed_in_image};
use image::DynamicImage;

use crate::{
    DecodeOptions, Error, FeedbackNet, Inferences, InputSpec, LoadedImage, Method, MethodSpec,
    Request, Result, colour_image, load_image_with,
};

/// A [`FeedbackNet`] with one method, as the evaluator sees it.
#[derive(Clone, Copy)]
pub struct MethodExplainer<'a> {
    /// The network.
    pub net: &'a FeedbackNet,
    /// The saliency method.
    pub method: Method,
    /// Blur of the maps, sigma in network-input pixels ([`smoothed_at_image`]).
    pub blur: f32,
    /// Whether the measure refines masks with the image's colours (the explanation then
    /// carries the image at the maps' size).
    pub refine: bool,
}

/// `map` (at the image's resolution) blurred with sigma `blur` network-input pixels, scaled by
/// the ratio of the map's to the input's resolution (the square root of the pixel counts'
/// ratio), and normalized: the localization crate's
/// [`smoothed_in_image`], the rule [`FeedbackNet::infer`] boxes with.
pub fn smoothed_at_image(map: &SaliencyMap, blur: f32, spec: &InputSpec) -> Result<SaliencyMap> {
    Ok(smoothed_in_image(map, (spec.width, spec.height), blur)?)
}

impl Explainer for MethodExplainer<'_> {
    fn explain(
        &self,
        image: &DynamicImage,
        true_class: usize,
        k: usize,
    ) -> std::result::Result<Explanation, ExplainError> {
        let asked = self.ask(image, true_class, k)?;
        let results = self.net.explain(image, &asked.request)?;
        Ok(self.explanation(image, &asked, &results)?)
    }

    /// The images explained in one [`FeedbackNet::explain_batch`] call (their samples share
    /// batches); each image's top-5 comes from its own forward pass. If the batch fails (one
    /// image's error fails the call), each image is explained alone, so that each gets its own
    /// result or error, as with a batch of one.
    fn explain_batch(
        &self,
        items: &[(&DynamicImage, usize)],
        k: usize,
    ) -> Vec<std::result::Result<Explanation, ExplainError>> {
        let one_by_one = || {
            items
                .iter()
                .map(|&(image, true_class)| self.explain(image, true_class, k))
                .collect()
        };
        let Ok(asked) = items
            .iter()
            .map(|&(image, true_class)| self.ask(image, true_class, k))
            .collect::<Result<Vec<_>>>()
        else {
            return one_by_one();
        };
        let Ok(results) = self.net.explain_batch(&requests(items, &asked)) else {
            return one_by_one();
        };
        items
            .iter()
            .zip(&asked)
            .zip(&results)
            .map(|((&(image, _), a), r)| Ok(self.explanation(image, a, r)?))
            .collect()
    }
}

/// What [`MethodExplainer`] asks the net for one image.
struct Asked {
    /// The top-5 classes of a plain forward pass.
    top5: Vec<usize>,
    /// The true class first, then the top-k guesses that differ from it.
    classes: Vec<usize>,
    true_class: usize,
    k: usize,
    request: Request,
}

impl MethodExplainer<'_> {
    /// The image's top-5 and the request of its maps: the true class and the top-k guesses,
    /// one batch.
    fn ask(&self, image: &DynamicImage, true_class: usize, k: usize) -> Result<Asked> {
        self.ask_with(image, true_class, k, &[self.method])
    }

    /// [`Self::ask`] with the request's methods given.
    fn ask_with(
        &self,
        image: &DynamicImage,
        true_class: usize,
        k: usize,
        methods: &[Method],
    ) -> Result<Asked> {
        let top5: Vec<usize> = self
            .net
            .predict(image, 5)?
            .into_iter()
            .map(|p| p.class.index)
            .collect();
        let mut classes = vec![true_class];
        classes.extend(top5.iter().take(k).filter(|&&c| c != true_class));
        let request = Request::classes(classes.iter().copied()).methods(methods.iter().copied());
        Ok(Asked {
            top5,
            classes,
            true_class,
            k,
            request,
        })
    }

    /// The explanation of one image from the results of its request.
    fn explanation(
        &self,
        image: &DynamicImage,
        asked: &Asked,
        results: &Inferences,
    ) -> Result<Explanation> {
        self.explanation_of(image, asked, results.method(0))
    }

    /// The explanation of one image from its results of this method (one per asked class).
    fn explanation_of(
        &self,
        image: &DynamicImage,
        asked: &Asked,
        results: &[crate::Inference],
    ) -> Result<Explanation> {
        let spec = self.net.input_spec();
        let map_of = |class: usize| {
            let i = asked.classes.iter().position(|&c| c == class).unwrap_or(0);
            let result = results
                .get(i)
                .ok_or_else(|| Error::Internal(format!("no map for class {class}")))?;
            smoothed_at_image(&result.saliency, self.blur, spec)
        };
        let colour = match (self.refine, results.first()) {
            (true, Some(r)) => {
                let (w, h) = (r.saliency.width() as u32, r.saliency.height() as u32);
                Some(colour_image(image, w, h)?)
            }
            _ => None,
        };
        Ok(Explanation {
            top_maps: asked
                .top5
                .iter()
                .take(asked.k)
                .map(|&c| map_of(c))
                .collect::<Result<_>>()?,
            true_class_map: map_of(asked.true_class)?,
            top5: asked.top5.clone(),
            image: colour,
        })
    }
}

/// Several [`MethodExplainer`]s of one net that share their work: the first one asked for an
/// image explains it with every method in one [`FeedbackNet::explain_batch`] call (a soft
/// solve shared by `Feedback` and `FeedbackCam` is done once) and keeps the other methods'
/// explanations until they are asked for. For an evaluator that runs one method after the
/// other over the same images (the grid pointing game); each view ([`JointExplainer::view`])
/// returns what its own [`MethodExplainer`] would.
///
/// An image is recognised by its pixels, its true class and `k`; each kept explanation is
/// handed out once.
pub struct JointExplainer<'a> {
    explainers: Vec<MethodExplainer<'a>>,
    kept: std::sync::Mutex<std::collections::HashMap<(u64, usize, usize, usize), Explanation>>,
}

impl<'a> JointExplainer<'a> {
    /// The explainers of `methods` (each with its own blur and refinement), on one net.
    pub fn new(explainers: Vec<MethodExplainer<'a>>) -> Self {
        Self {
            explainers,
            kept: Default::default(),
        }
    }

    /// The explainer of the `index`-th method.
    pub fn view(&self, index: usize) -> JointView<'_, 'a> {
        JointView { joint: self, index }
    }

    /// The explanations kept for later views (for tests and memory checks).
    pub fn kept(&self) -> usize {
        self.kept.lock().map_or(0, |k| k.len())
    }

    /// `index`'s explanations of `items`: the kept ones, or one call with every method.
    fn explain_batch(
        &self,
        index: usize,
        items: &[(&DynamicImage, usize)],
        k: usize,
    ) -> Result<Vec<Explanation>> {
        let keys: Vec<_> = items
            .iter()
            .map(|&(image, class)| (pixels_hash(image), class, k))
            .collect();
        {
            let mut kept = self.kept.lock().map_err(|_| poisoned())?;
            let all_kept = keys
                .iter()
                .all(|&(h, c, k)| kept.contains_key(&(h, c, k, index)));
            if all_kept {
                return keys
                    .iter()
                    .map(|&(h, c, k)| (kept.remove(&(h, c, k, index))).ok_or_else(poisoned))
                    .collect();
            }
        }
        let first = self
            .explainers
            .first()
            .ok_or_else(|| Error::Internal("a joint explainer without methods".into()))?;
        let methods: Vec<Method> = self.explainers.iter().map(|e| e.method).collect();
        let asked = items
            .iter()
            .map(|&(image, class)| first.ask_with(image, class, k, &methods))
            .collect::<Result<Vec<_>>>()?;
        let results = first.net.explain_batch(&requests(items, &asked))?;
        let mut mine = Vec::with_capacity(items.len());
        let mut kept = self.kept.lock().map_err(|_| poisoned())?;
        for (((&(image, _), a), r), &(h, c, k)) in items.iter().zip(&asked).zip(&results).zip(&keys)
        {
            for (m, explainer) in self.explainers.iter().enumerate() {
                let explanation = explainer.explanation_of(image, a, r.method(m))?;
                if m == index {
                    mine.push(explanation);
                } else {
                    kept.insert((h, c, k, m), explanation);
                }
            }
        }
        Ok(mine)
    }
}

/// One method of a [`JointExplainer`], as the evaluator sees it.
pub struct JointView<'j, 'a> {
    joint: &'j JointExplainer<'a>,
    index: usize,
}

impl Explainer for JointView<'_, '_> {
    fn explain(
        &self,
        image: &DynamicImage,
        true_class: usize,
        k: usize,
    ) -> std::result::Result<Explanation, ExplainError> {
        let mut one = self
            .joint
            .explain_batch(self.index, &[(image, true_class)], k)?;
        one.pop()
            .ok_or_else(|| Error::Internal("no explanation came back".into()).into())
    }

    fn explain_batch(
        &self,
        items: &[(&DynamicImage, usize)],
        k: usize,
    ) -> Vec<std::result::Result<Explanation, ExplainError>> {
        match self.joint.explain_batch(self.index, items, k) {
            Ok(all) => all.into_iter().map(Ok).collect(),
            // As `MethodExplainer`: each item alone, for its own result or error.
            Err(_) => items
                .iter()
                .map(|&(image, class)| self.explain(image, class, k))
                .collect(),
        }
    }
}

/// Each item's image with its request.
fn requests<'i>(
    items: &[(&'i DynamicImage, usize)],
    asked: &'i [Asked],
) -> Vec<(&'i DynamicImage, &'i Request)> {
    items
        .iter()
        .zip(asked)
        .map(|(&(image, _), a)| (image, &a.request))
        .collect()
}

/// A hash of an image's size and pixels.
fn pixels_hash(image: &DynamicImage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (image.width(), image.height()).hash(&mut hasher);
    image.as_bytes().hash(&mut hasher);
    hasher.finish()
}

fn poisoned() -> Error {
    Error::Internal("a joint explainer's store was lost".into())
}

/// The stored maps of one image for `feedbacknet_eval::tune`: the top-5 predictions and, per
/// group of `methods` (one group per tuned method, one spec per candidate setting), the
/// unblurred map of the true class resized to [`Sample::size`]. All specs run in one
/// [`FeedbackNet::explain`] call (shared solves once). A group's time is the prediction's
/// plus its first spec's stages; `colour` adds the image at the maps' size. The image file is
/// decoded under `options` (a damaged file accepted there leaves its warnings in
/// [`StoredImage::warnings`]).
pub fn stored_maps(
    net: &FeedbackNet,
    sample: &Sample,
    methods: &[Vec<MethodSpec>],
    colour: bool,
    options: &DecodeOptions,
) -> Result<StoredImage> {
    let LoadedImage { image, warnings } = load_image_with(&sample.path, options)?;
    let started = Instant::now();
    let top5 = net
        .predict(&image, 5)?
        .into_iter()
        .map(|p| p.class.index)
        .collect();
    let predict_ms = started.elapsed().as_secs_f64() * 1e3;
    let found = true_class_maps(net, &image, sample, methods, colour)?;
    Ok(StoredImage {
        sample: sample.clone(),
        top5,
        maps: found.maps,
        times_ms: found.times_ms.into_iter().map(|t| predict_ms + t).collect(),
        image: found.image,
        warnings,
        perturbed: None,
    })
}

/// The maps of [`stored_maps`] for a copy of the image with uniform integer noise in
/// `[-levels, levels]` on every 8-bit channel (`feedbacknet_eval::stability`'s grey-level
/// perturbation, seeded per image from `seed` as `feedbacknet stability` seeds it): what
/// `feedbacknet_eval::tune` scores box stability on.
pub fn perturbed_maps(
    net: &FeedbackNet,
    sample: &Sample,
    methods: &[Vec<MethodSpec>],
    colour: bool,
    options: &DecodeOptions,
    (levels, seed): (u8, u64),
) -> Result<PerturbedMaps> {
    let LoadedImage { image, .. } = load_image_with(&sample.path, options)?;
    let mut rgb = image.to_rgb8();
    add_grey_noise(
        &mut rgb,
        levels,
        &mut NoiseSource::for_image(seed, sample.index),
    );
    let noisy = DynamicImage::ImageRgb8(rgb);
    let found = true_class_maps(net, &noisy, sample, methods, colour)?;
    Ok(PerturbedMaps {
        maps: found.maps,
        image: found.image,
    })
}

/// What [`true_class_maps`] finds for one image.
struct TrueClassMaps {
    /// Per group of methods, the true class's map of each spec at [`Sample::size`].
    maps: Vec<Vec<SaliencyMap>>,
    /// Per group, its first spec's stages in ms.
    times_ms: Vec<f64>,
    /// The image at the maps' size, when asked for.
    image: Option<ColourImage>,
}

/// Per group of `methods`, the true class's map of each spec at [`Sample::size`], the group's
/// time (its first spec's stages) and, with `colour`, the image at that size.
fn true_class_maps(
    net: &FeedbackNet,
    image: &DynamicImage,
    sample: &Sample,
    methods: &[Vec<MethodSpec>],
    colour: bool,
) -> Result<TrueClassMaps> {
    let (w, h) = sample.size;
    let colour = colour.then(|| colour_image(image, w, h)).transpose()?;
    let request = Request::class(sample.class).methods(methods.iter().flatten().cloned());
    let results = net.explain(image, &request)?;
    let mut results = results.iter();
    let (mut maps, mut times_ms) = (Vec::new(), Vec::new());
    for group in methods {
        let mut per_candidate = Vec::with_capacity(group.len());
        for result in results.by_ref().take(group.len()) {
            if per_candidate.is_empty() {
                let t = &result.timings;
                times_ms.push(t.preprocess_ms + t.solve_ms + t.saliency_ms + t.localize_ms);
            }
            per_candidate.push(result.saliency.resize_bilinear(w as usize, h as usize)?);
        }
        maps.push(per_candidate);
    }
    Ok(TrueClassMaps {
        maps,
        times_ms,
        image: colour,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(width: usize, height: usize) -> InputSpec {
        InputSpec::rgb(width, height, crate::Normalization::SYMMETRIC)
    }

    #[test]
    fn the_blur_scales_with_the_maps_resolution() {
        let map = SaliencyMap::from_fn(448, 448, |x, y| {
            if (200..248).contains(&x) && (200..248).contains(&y) {
                2.0
            } else {
                0.0
            }
        })
        .unwrap();
        // A 448x448 map of a 224x224 input: 4 input pixels are 8 map pixels.
        let smoothed = smoothed_at_image(&map, 4.0, &spec(224, 224)).unwrap();
        let expected = map.gaussian_blur(8.0).unwrap().normalized();
        assert_eq!(smoothed, expected);
        assert_eq!(smoothed.max(), 1.0);
        let unblurred = smoothed_at_image(&map, 0.0, &spec(224, 224)).unwrap();
        assert_eq!(unblurred, map.normalized());
    }
}
