//! The pipeline between an image and its [`Inference`]s: the image's views as one batch (one
//! sample per class and view), each method's maps on that batch (a gate solve, the gated
//! gradient or a Grad-CAM computed once and shared by every method that needs it), and the
//! boxes in image pixels ([`localize_in_image`]).

use std::{sync::Arc, time::Instant};

use burn::tensor::{Tensor, activation::softmax};
use feedbacknet_core::{ActivationRule, Device, GateSet, GatedNetwork};
use feedbacknet_localize::{
    ColourImage, Refinement, ResizeMode, SaliencyMap, fuse, localize_in_image,
};
use feedbacknet_solver::{
    CamLayer, ClassVisualization, GateSolution, HardConfig, SolverConfig, VisualizeConfig,
    gated_energy, grad_cam, hard_feedback, input_gradient_with, saliency_maps, soft_feedback,
    visualize_class_on,
};
use image::DynamicImage;

use crate::{
    CamThrough, ClassInfo, Error, FeedbackCamConfig, FeedbackMap, GateStats, Inference, Method,
    MethodSpec, Result, Timings,
    boxes::MethodBoxes,
    preprocess::{colour_image, prepare},
    views::{Crops, Views},
};

/// Every setting of the pipeline but the network (each documented on its
/// [`FeedbackNetBuilder`](crate::FeedbackNetBuilder) method).
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub solver: SolverConfig,
    pub hard: HardConfig,
    pub cam_layer: CamLayer,
    pub feedback_map: FeedbackMap,
    /// Each method's blur, threshold, refinement and (feedback-cam) fusion.
    pub boxes: MethodBoxes,
    pub resize: ResizeMode,
    pub crops: Crops,
    /// The most samples (classes × views) one batch holds; `None`: [`DEFAULT_MAX_BATCH`].
    pub max_batch: Option<usize>,
}

/// The samples one batch holds by default: a batch's memory grows with it (SqueezeNet's soft
/// feedback holds about 40 MiB per sample at 224x224), and a larger batch is no faster on a CPU.
pub const DEFAULT_MAX_BATCH: usize = 16;

impl Settings {
    /// The most samples one batch holds.
    pub fn max_batch(&self) -> usize {
        self.max_batch.unwrap_or(DEFAULT_MAX_BATCH).max(1)
    }
}

/// A network with the settings of its pipeline.
#[derive(Clone)]
pub(crate) struct Pipeline {
    network: Arc<dyn GatedNetwork>,
    device: Device,
    /// Index of class 0 among the logits.
    class_offset: usize,
    settings: Settings,
}

/// One method to run, with the settings of the feedback maps and the fusion.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    method: Method,
    feedback_cam: FeedbackCamConfig,
    feedback_map: FeedbackMap,
}

impl Pipeline {
    /// The pipeline of `network` on `device`.
    pub fn new(
        network: Arc<dyn GatedNetwork>,
        device: Device,
        class_offset: usize,
        settings: Settings,
    ) -> Self {
        Self {
            network,
            device,
            class_offset,
            settings,
        }
    }

    /// The gated network.
    pub fn network(&self) -> &Arc<dyn GatedNetwork> {
        &self.network
    }

    /// Index of class 0 among the logits.
    pub fn class_offset(&self) -> usize {
        self.class_offset
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The same network with other settings.
    pub fn with_settings(&self, settings: Settings) -> Self {
        Self {
            settings,
            ..self.clone()
        }
    }

    /// `image` resized (and cropped) to the network input and normalized: `[1, 3, H, W]` on the
    /// pipeline's device.
    pub fn input(&self, image: &DynamicImage) -> Result<Tensor<4>> {
        let spec = self.network.input_spec();
        Ok(prepare(image, spec, self.settings.resize, &self.device)?.input)
    }

    /// The logits and softmax probabilities of the `classes` classes of a plain forward pass.
    pub fn scores(&self, image: &DynamicImage, classes: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let input = self.input(image)?;
        let logits = feedbacknet_kernels::on_worker(|| self.network.forward(input, None))?;
        let logits = logits.narrow(1, self.class_offset, classes);
        let probs = read_row(softmax(logits.clone(), 1))?;
        Ok((read_row(logits)?, probs))
    }

    /// Class model visualization of class `class` (an index among the labels).
    pub fn visualize(&self, class: usize, config: &VisualizeConfig) -> Result<ClassVisualization> {
        let network = self.network.as_ref();
        let logit = class + self.class_offset;
        let visualized = feedbacknet_kernels::on_worker(|| {
            visualize_class_on(network, logit, config, &self.device)
        });
        Ok(visualized?)
    }

    /// What a spec runs with these settings (its fusion settings checked).
    pub fn job(&self, spec: &MethodSpec) -> Result<Job> {
        let feedback_cam = spec
            .feedback_cam
            .unwrap_or(self.settings.boxes.get(Method::FeedbackCam).feedback_cam);
        feedback_cam.fusion.validate()?;
        Ok(Job {
            method: spec.method,
            feedback_cam,
            feedback_map: spec
                .feedback_map
                .clone()
                .unwrap_or_else(|| self.settings.feedback_map.clone()),
        })
    }

    /// Every (item, job, class) result: the outer vector follows `items`, the next `jobs`, the
    /// inner the item's classes. The samples of all items (each image's classes × views) go
    /// in batches of at most `max_batch` samples, filled across images; work that jobs share
    /// is done once per batch.
    pub fn explain_batch(
        &self,
        items: &[(&DynamicImage, &[ClassInfo])],
        jobs: &[Job],
    ) -> Result<Vec<Vec<Vec<Inference>>>> {
        if items.iter().all(|(_, classes)| classes.is_empty()) {
            return Ok(vec![vec![Vec::new(); jobs.len()]; items.len()]);
        }
        feedbacknet_kernels::on_worker(|| self.explain_here(items, jobs))
    }

    /// [`Self::explain_batch`] on the calling thread.
    fn explain_here(
        &self,
        items: &[(&DynamicImage, &[ClassInfo])],
        jobs: &[Job],
    ) -> Result<Vec<Vec<Vec<Inference>>>> {
        let prepared = items
            .iter()
            .map(|&(image, classes)| self.prepare(image, classes, jobs))
            .collect::<Result<Vec<_>>>()?;
        // One group per (image, class): that class's views, consecutive samples of a batch.
        let groups: Vec<Group<'_>> = prepared
            .iter()
            .enumerate()
            .flat_map(|(item, p)| p.classes.iter().map(move |class| Group { item, class }))
            .collect();
        let mut results: Vec<Vec<Vec<Inference>>> = prepared
            .iter()
            .map(|p| vec![Vec::with_capacity(p.classes.len()); jobs.len()])
            .collect();
        // Batches of at most `max_batch` samples: memory stays bounded for any number of
        // classes and images (top-k 1000 included).
        let limit = self.batch_limit(groups.iter().map(|g| group_samples(g, &prepared)).sum());
        for chunk in batches(&groups, &prepared, limit) {
            self.run_batch(chunk, &prepared, jobs, &mut results)?;
        }
        Ok(results)
    }

    /// The most samples per batch for `samples` to explain: the settings' `max_batch`, or
    /// fewer where the network takes fewer per call (asked only when there are several).
    fn batch_limit(&self, samples: usize) -> usize {
        let limit = self.settings.max_batch();
        if samples <= 1 {
            return limit;
        }
        (self.network.max_batch()).map_or(limit, |n| limit.min(n.max(1)))
    }

    /// One image's views (and colours, where a job's boxes are refined), timed.
    fn prepare<'a>(
        &self,
        image: &DynamicImage,
        classes: &'a [ClassInfo],
        jobs: &[Job],
    ) -> Result<Prepared<'a>> {
        let started = Instant::now();
        let spec = self.network.input_spec();
        let s = &self.settings;
        let views = Views::new(image, spec, s.resize, s.crops, &self.device)?;
        let refined = jobs
            .iter()
            .any(|job| s.boxes.get(job.method).refine.is_some());
        let colour = match refined {
            true => Some(colour_image(image, image.width(), image.height())?),
            false => None,
        };
        Ok(Prepared {
            views,
            colour,
            classes,
            preprocess_ms: ms(started),
        })
    }

    /// Runs every job on one batch of groups and appends each group's [`Inference`] to its
    /// item's results.
    fn run_batch(
        &self,
        chunk: &[Group<'_>],
        prepared: &[Prepared<'_>],
        jobs: &[Job],
        results: &mut [Vec<Vec<Inference>>],
    ) -> Result<()> {
        let missing = |item: usize| Error::Internal(format!("no prepared image {item}"));
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut targets = Vec::new();
        for group in chunk {
            let p = prepared
                .get(group.item)
                .ok_or_else(|| missing(group.item))?;
            inputs.push(p.views.input.clone());
            let logit = group.class.index + self.class_offset;
            targets.extend(std::iter::repeat_n(logit, p.views.len()));
        }
        let batch = Tensor::cat(inputs, 0);
        let mut cache = BatchCache::default();
        for (j, job) in jobs.iter().enumerate() {
            let mut timings = Timings::default();
            let out = self.run_job(job, &batch, &targets, &mut cache, &mut timings)?;
            let stats = out.solution.as_ref().map(gate_stats).transpose()?;
            let mut first = 0;
            for group in chunk {
                let p = prepared
                    .get(group.item)
                    .ok_or_else(|| missing(group.item))?;
                let samples = first..first + p.views.len();
                first = samples.end;
                let timings = Timings {
                    preprocess_ms: p.preprocess_ms,
                    ..timings.clone()
                };
                let found = Found {
                    out: &out,
                    stats: stats.as_deref(),
                    samples,
                    timings,
                };
                let inference = self.inference(job.method, group.class, p.imaged(), found)?;
                results
                    .get_mut(group.item)
                    .and_then(|per_job| per_job.get_mut(j))
                    .ok_or_else(|| missing(group.item))?
                    .push(inference);
            }
        }
        Ok(())
    }

    /// The [`Inference`] of one class from its samples of a method's batched output.
    fn inference(
        &self,
        method: Method,
        class: &ClassInfo,
        image: Imaged<'_>,
        found: Found<'_>,
    ) -> Result<Inference> {
        let Found {
            out,
            stats,
            samples,
            timings,
        } = found;
        let started = Instant::now();
        let missing = || Error::Internal(format!("no results for class {}", class.index));
        let maps = out.maps.get(samples.clone()).ok_or_else(missing)?;
        let (saliency, located) = self.locate(method, image, maps)?;
        let trace: Vec<f32> = out
            .solution
            .as_ref()
            .map(|s| {
                s.trace
                    .iter()
                    .map(|t| mean_of(t, samples.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let scores = out.scores.get(samples.clone()).ok_or_else(missing)?;
        let logit_after = mean(scores);
        Ok(Inference {
            class: class.clone(),
            method,
            logit_before: trace.first().copied().unwrap_or(logit_after),
            logit_after,
            trace,
            gates: stats.and_then(|s| s.get(samples.start).cloned()),
            boxes: located.boxes,
            saliency,
            smoothed: located.smoothed,
            timings: Timings {
                localize_ms: ms(started),
                ..timings
            },
        })
    }

    /// One class's view maps composed into the normalized saliency at image size, and its
    /// boxes in image pixels ([`localize_in_image`] at `method`'s box settings, the blur in
    /// network-input pixels).
    fn locate(
        &self,
        method: Method,
        image: Imaged<'_>,
        maps: &[SaliencyMap],
    ) -> Result<(SaliencyMap, feedbacknet_localize::Localization)> {
        let map = image.views.compose(maps)?;
        let saliency = image.views.geometry.map_to_image(&map.normalized())?;
        let spec = self.network.input_spec();
        let boxes = self.settings.boxes.get(method);
        let refinement = match (&boxes.refine, image.colour) {
            (Some(config), Some(image)) => Some(Refinement { image, config }),
            _ => None,
        };
        let located = localize_in_image(
            &saliency,
            (spec.width, spec.height),
            &boxes.localize,
            refinement,
        )?;
        Ok((saliency, located))
    }

    /// Runs one job on a batch. Work already in `cache` is reused; `timings` counts it as if
    /// this job had done it alone (a solve shared by two methods is in both their times).
    fn run_job(
        &self,
        job: &Job,
        batch: &Tensor<4>,
        targets: &[usize],
        cache: &mut BatchCache,
        timings: &mut Timings,
    ) -> Result<MethodOutput> {
        let net = self.network.as_ref();
        let s = &self.settings;
        let solved =
            match job.method {
                Method::Feedback | Method::FeedbackCam => Some(cache.soft.get_or_try(|| {
                    soft_feedback(net, batch, targets, &s.solver).map_err(Error::from)
                })?),
                Method::FeedbackHard => Some(cache.hard.get_or_try(|| {
                    hard_feedback(net, batch, targets, &s.hard).map_err(Error::from)
                })?),
                _ => None,
            };
        timings.solve_ms = solved.as_ref().map_or(0.0, |(_, ms)| *ms);
        let solution = solved.map(|(s, _)| s);
        let gates = solution.as_ref().map(|s| &s.gates);
        let ((maps, scores), saliency_ms) = match job.method {
            Method::GradCam => cache
                .cam_plain
                .get_or_try(|| self.cam_maps(batch, targets, None))?,
            Method::Feedback => {
                self.feedback_maps(&job.feedback_map, batch, targets, gates, cache)?
            }
            Method::FeedbackCam => self.feedback_cam_maps(job, batch, targets, gates, cache)?,
            method => {
                let started = Instant::now();
                let rule = match method {
                    Method::Guided => ActivationRule::Guided,
                    Method::Deconvnet => ActivationRule::Deconv,
                    _ => ActivationRule::Gradient,
                };
                (
                    self.gradient_maps(batch, targets, gates, rule)?,
                    ms(started),
                )
            }
        };
        timings.saliency_ms = saliency_ms;
        Ok(MethodOutput {
            maps,
            scores,
            solution,
        })
    }

    /// Input-gradient maps (`max_c |∂score/∂I_c|`) through `gates` under an activation rule.
    fn gradient_maps(
        &self,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
        rule: ActivationRule,
    ) -> Result<Maps> {
        let net = self.network.as_ref();
        let grad = input_gradient_with(net, batch, targets, gates, rule)?;
        Ok((saliency_maps(&grad.gradient)?, grad.scores))
    }

    /// The maps read off the soft-feedback `gates` (at the input's resolution), once per kind.
    fn feedback_maps(
        &self,
        kind: &FeedbackMap,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
        cache: &mut BatchCache,
    ) -> Result<(Maps, f64)> {
        let at = match cache.soft_maps.iter().position(|(k, _)| k == kind) {
            Some(at) => at,
            None => {
                cache.soft_maps.push((kind.clone(), Cached::default()));
                cache.soft_maps.len() - 1
            }
        };
        let Some((_, cached)) = cache.soft_maps.get_mut(at) else {
            return Err(Error::Internal("the soft-map cache lost an entry".into()));
        };
        cached.get_or_try(|| match kind {
            FeedbackMap::InputGradient => {
                self.gradient_maps(batch, targets, gates, ActivationRule::Gradient)
            }
            FeedbackMap::GatedEnergy(layer) => {
                let net = self.network.as_ref();
                let energy = gated_energy(net, batch, targets, gates, layer)?;
                let [_, _, height, width] = batch.dims();
                let maps = energy
                    .maps
                    .iter()
                    .map(|m| m.resize_bilinear(width, height))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok((maps, energy.scores))
            }
        })
    }

    /// Grad-CAM maps at the feature map's resolution, through `gates` if any.
    fn cam_maps(
        &self,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
    ) -> Result<Maps> {
        let layer = &self.settings.cam_layer;
        let cam = grad_cam(self.network.as_ref(), batch, targets, gates, layer)?;
        Ok((cam.maps, cam.scores))
    }

    /// [`Method::FeedbackCam`]'s maps (at the input's resolution) and gated target logits,
    /// with the time of the pieces and the fusion.
    fn feedback_cam_maps(
        &self,
        job: &Job,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
        cache: &mut BatchCache,
    ) -> Result<(Maps, f64)> {
        let ((fine, scores), fine_ms) =
            self.feedback_maps(&job.feedback_map, batch, targets, gates, cache)?;
        let ((cam, _), cam_ms) = match job.feedback_cam.cam_through {
            CamThrough::PlainNet => cache
                .cam_plain
                .get_or_try(|| self.cam_maps(batch, targets, None))?,
            CamThrough::FeedbackGates => cache
                .cam_soft_gates
                .get_or_try(|| self.cam_maps(batch, targets, gates))?,
        };
        let started = Instant::now();
        let maps = fine
            .iter()
            .zip(&cam)
            .map(|(f, c)| fuse(f, c, &job.feedback_cam.fusion))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(((maps, scores), fine_ms + cam_ms + ms(started)))
    }
}

/// What [`Pipeline::run_job`] produces for a batch.
struct MethodOutput {
    /// One map per sample at the input's resolution (Grad-CAM's at the feature map's).
    maps: Vec<SaliencyMap>,
    /// The target logits (through the gates when the method has them).
    scores: Vec<f32>,
    solution: Option<GateSolution>,
}

/// Maps with their target logits.
type Maps = (Vec<SaliencyMap>, Vec<f32>);

/// The work done so far on one batch, each piece with the time it took.
#[derive(Default)]
struct BatchCache {
    soft: Cached<GateSolution>,
    hard: Cached<GateSolution>,
    /// The maps read off the soft-feedback gates ([`Method::Feedback`]'s), per kind of map.
    soft_maps: Vec<(FeedbackMap, Cached<Maps>)>,
    cam_plain: Cached<Maps>,
    cam_soft_gates: Cached<Maps>,
}

/// A value computed at most once, with the time it took in ms.
struct Cached<T>(Option<(T, f64)>);

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: Clone> Cached<T> {
    fn get_or_try(&mut self, compute: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
        if let Some(hit) = &self.0 {
            return Ok(hit.clone());
        }
        let started = Instant::now();
        let hit = (compute()?, ms(started));
        self.0 = Some(hit.clone());
        Ok(hit)
    }
}

/// The views of one image and, for the colour refinement, its pixels.
#[derive(Clone, Copy)]
struct Imaged<'a> {
    views: &'a Views,
    colour: Option<&'a ColourImage>,
}

/// One image of a batch call, preprocessed, with the classes it asks for.
struct Prepared<'a> {
    views: Views,
    colour: Option<ColourImage>,
    classes: &'a [ClassInfo],
    preprocess_ms: f64,
}

impl Prepared<'_> {
    fn imaged(&self) -> Imaged<'_> {
        Imaged {
            views: &self.views,
            colour: self.colour.as_ref(),
        }
    }
}

/// One class of one image: its views are consecutive samples of a batch.
#[derive(Clone, Copy)]
struct Group<'a> {
    /// Index of the image among the call's items.
    item: usize,
    class: &'a ClassInfo,
}

/// A group's share of a method's batched output.
struct Found<'a> {
    out: &'a MethodOutput,
    /// Per-sample gate statistics of the batch (methods with gates).
    stats: Option<&'a [GateStats]>,
    /// The group's samples in the batch.
    samples: std::ops::Range<usize>,
    /// The batch's solve and saliency times, the image's preprocessing time.
    timings: Timings,
}

/// The samples of `group` in a batch: its image's views.
fn group_samples(group: &Group<'_>, prepared: &[Prepared<'_>]) -> usize {
    prepared.get(group.item).map_or(1, |p| p.views.len().max(1))
}

/// `groups` cut, in order, into batches of at most `max_batch` samples (a group with more
/// views than that is a batch alone).
fn batches<'g, 'a>(
    groups: &'g [Group<'a>],
    prepared: &[Prepared<'_>],
    max_batch: usize,
) -> Vec<&'g [Group<'a>]> {
    let mut cut = Vec::new();
    let (mut start, mut samples) = (0, 0);
    for (i, group) in groups.iter().enumerate() {
        let v = group_samples(group, prepared);
        if samples > 0 && samples + v > max_batch {
            cut.extend(groups.get(start..i));
            (start, samples) = (i, 0);
        }
        samples += v;
    }
    cut.extend(groups.get(start..));
    cut.retain(|c| !c.is_empty());
    cut
}

/// Per-sample gate statistics.
fn gate_stats(solution: &GateSolution) -> Result<Vec<GateStats>> {
    let batch = solution.gates.batch();
    let mut stats = vec![GateStats::default(); batch];
    for site in solution.gates.to_vecs()? {
        let per_sample = site.len() / batch.max(1);
        for (s, chunk) in stats.iter_mut().zip(site.chunks(per_sample.max(1))) {
            s.count += chunk.len();
            s.mean += chunk.iter().sum::<f32>();
            s.open_fraction += chunk.iter().filter(|&&g| g >= 0.5).count() as f32;
        }
    }
    for s in &mut stats {
        let n = s.count.max(1) as f32;
        s.mean /= n;
        s.open_fraction /= n;
        s.iterations = solution.iterations;
    }
    Ok(stats)
}

fn mean(values: &[f32]) -> f32 {
    values.iter().sum::<f32>() / values.len().max(1) as f32
}

/// Mean of `values[range]` (0 when the range is out of bounds).
fn mean_of(values: &[f32], range: std::ops::Range<usize>) -> f32 {
    values.get(range).map_or(0.0, mean)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn read_row(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| feedbacknet_core::CoreError::Readback(format!("{e:?}")).into())
}
