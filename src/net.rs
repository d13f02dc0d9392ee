//! [`FeedbackNet`]: load a classifier once, then explain images class by class.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use burn::tensor::{Tensor, activation::softmax};
use feedbacknet_core::{Device, GatedNetwork, InputSpec};
use feedbacknet_localize::{
    ColourImage, LocalizeConfig, RefineConfig, ResizeMode, SaliencyMap, localize, refined_boxes,
};
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use feedbacknet_solver::{
    CamLayer, ClassVisualization, GateSolution, HardConfig, SolverConfig, VisualizeConfig,
    visualize_class_on,
};
use image::DynamicImage;

use crate::{
    ClassInfo, ClassQuery, Error, FeedbackCamConfig, FeedbackMap, GateStats, Inference, Labels,
    Method, MethodSpec, Prediction, Result, Timings,
    device::default_device,
    preprocess::prepare,
    run::{BatchCache, Job, MethodOutput},
    views::{Crops, Views},
};

/// A gated classifier with everything needed to explain its decisions.
///
/// ```no_run
/// use feedbacknet::{FeedbackNet, load_image};
///
/// let net = FeedbackNet::builder()
///     .model_path("../shared/models/squeezenet1.1.onnx")
///     .build()?;
/// let image = load_image("../shared/data/demo/darknet_dog.jpg")?;
/// let result = net.infer(&image, "bicycle")?;
/// println!("{} {:?}", result.class.label, result.best_box());
/// # Ok::<(), feedbacknet::Error>(())
/// ```
///
/// A `FeedbackNet` is `Send + Sync`: threads may share one (behind an `Arc`) and call it at
/// once; each call gets the result it would get alone (`tests/concurrency.rs`).
pub struct FeedbackNet {
    pub(crate) network: Arc<dyn GatedNetwork>,
    labels: Labels,
    class_offset: usize,
    device: Device,
    method: Method,
    pub(crate) solver: SolverConfig,
    pub(crate) hard: HardConfig,
    pub(crate) cam_layer: CamLayer,
    feedback_cam: FeedbackCamConfig,
    feedback_map: FeedbackMap,
    localize: LocalizeConfig,
    refine: Option<RefineConfig>,
    resize: ResizeMode,
    crops: Crops,
}

// Sharing one net between threads is part of the API.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<FeedbackNet>();
};

impl std::fmt::Debug for FeedbackNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackNet")
            .field("input", self.network.input_spec())
            .field("classes", &self.labels.len())
            .field("class_offset", &self.class_offset)
            .field("method", &self.method)
            .field("solver", &self.solver)
            .field("localize", &self.localize)
            .field("hard", &self.hard)
            .field("cam_layer", &self.cam_layer)
            .field("feedback_cam", &self.feedback_cam)
            .field("feedback_map", &self.feedback_map)
            .field("resize", &self.resize)
            .field("crops", &self.crops)
            .finish()
    }
}

/// Builder of [`FeedbackNet`]; see each method for its default.
#[derive(Default)]
pub struct FeedbackNetBuilder {
    model_path: Option<PathBuf>,
    network: Option<Arc<dyn GatedNetwork>>,
    preset: Option<&'static ModelPreset>,
    input_spec: Option<InputSpec>,
    labels: Option<Labels>,
    labels_path: Option<PathBuf>,
    class_offset: Option<usize>,
    device: Option<Device>,
    method: Method,
    solver: SolverConfig,
    hard: HardConfig,
    cam_layer: CamLayer,
    feedback_cam: FeedbackCamConfig,
    feedback_map: FeedbackMap,
    localize: LocalizeConfig,
    refine: Option<RefineConfig>,
    resize: ResizeMode,
    crops: Crops,
}

impl FeedbackNetBuilder {
    /// An ONNX classifier file. A known file name (see [`ModelPreset::all`]) selects its preset.
    pub fn model_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.model_path = Some(path.into());
        self
    }

    /// A network of your own (any [`GatedNetwork`]) instead of an ONNX file.
    pub fn network(mut self, network: Arc<dyn GatedNetwork>) -> Self {
        self.network = Some(network);
        self
    }

    /// Input size, normalization, class offset and labels of a known model (default: found
    /// from the file name).
    pub fn preset(mut self, preset: &'static ModelPreset) -> Self {
        self.preset = Some(preset);
        self
    }

    /// Overrides the input size and normalization (default: the preset's, else the size the
    /// file declares with ImageNet normalization).
    pub fn input_spec(mut self, spec: InputSpec) -> Self {
        self.input_spec = Some(spec);
        self
    }

    /// Class labels (default: the preset's label file next to the model, else numbered).
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = Some(labels);
        self
    }

    /// A label file, one class a line (`wnid name, synonyms` or `name`).
    pub fn labels_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.labels_path = Some(path.into());
        self
    }

    /// Index of class 0 among the logits (default: the preset's, else 1 when the model has one
    /// logit more than there are labels, as with a background logit, else 0).
    pub fn class_offset(mut self, offset: usize) -> Self {
        self.class_offset = Some(offset);
        self
    }

    /// The device, which picks the backend (default: [`default_device`], flex on CPU).
    pub fn device(mut self, device: Device) -> Self {
        self.device = Some(device);
        self
    }

    /// The saliency method (default: [`Method::Feedback`]).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Soft solver settings (default: [`SolverConfig::default`]).
    pub fn solver(mut self, solver: SolverConfig) -> Self {
        self.solver = solver;
        self
    }

    /// Hard solver settings, for [`Method::FeedbackHard`] (default: [`HardConfig::default`]).
    pub fn hard_solver(mut self, hard: HardConfig) -> Self {
        self.hard = hard;
        self
    }

    /// The feature map Grad-CAM reads (default: [`CamLayer::LastConv`]).
    pub fn cam_layer(mut self, layer: CamLayer) -> Self {
        self.cam_layer = layer;
        self
    }

    /// How [`Method::FeedbackCam`] fuses the feedback and Grad-CAM maps (default:
    /// [`FeedbackCamConfig::default`]).
    pub fn feedback_cam(mut self, config: FeedbackCamConfig) -> Self {
        self.feedback_cam = config;
        self
    }

    /// The map the feedback methods read off the converged gates (default:
    /// [`FeedbackMap::InputGradient`]).
    pub fn feedback_map(mut self, map: FeedbackMap) -> Self {
        self.feedback_map = map;
        self
    }

    /// The views a map is averaged over (default: [`Crops::Single`]; [`Crops::Ten`] for
    /// 10-crop averaging with any method).
    pub fn crops(mut self, crops: Crops) -> Self {
        self.crops = crops;
        self
    }

    /// Box extraction settings (default: [`LocalizeConfig::default`]: threshold 0.2 of the
    /// max after a Gaussian blur of sigma 10 input pixels).
    pub fn localize(mut self, localize: LocalizeConfig) -> Self {
        self.localize = localize;
        self
    }

    /// Colour-model refinement of the thresholded mask before boxing (default: `None`, the
    /// boxes of the thresholded map). With a [`RefineConfig`], the boxes of every
    /// [`Inference`] come from [`refine_mask`] of the smoothed map at image resolution,
    /// seeded at the localization threshold: the mask grows into the object's colours and
    /// shrinks out of the background's (+5 to +8 points of GT-known localization on
    /// SqueezeNet's dev images, `docs/results.md`).
    pub fn refine(mut self, refine: Option<RefineConfig>) -> Self {
        self.refine = refine;
        self
    }

    /// How images are fitted to the input (default: [`ResizeMode::Stretch`], the whole image
    /// resized without crop).
    pub fn resize(mut self, resize: ResizeMode) -> Self {
        self.resize = resize;
        self
    }

    /// Loads the model and checks the configuration.
    pub fn build(self) -> Result<FeedbackNet> {
        self.solver.validate()?;
        self.hard.validate()?;
        self.localize.validate()?;
        if let Some(refine) = &self.refine {
            refine.validate()?;
        }
        self.feedback_cam.fusion.validate()?;
        if let Crops::Ten { shorter_side: 0 } = self.crops {
            return Err(Error::Config(
                "10-crop needs a positive shorter side".into(),
            ));
        }
        let device = match self.device {
            Some(d) => d,
            None => default_device()?,
        };
        let preset = self
            .preset
            .or_else(|| self.model_path.as_deref().and_then(ModelPreset::for_path));
        let network: Arc<dyn GatedNetwork> = match (self.network, &self.model_path) {
            (Some(net), _) => net,
            (None, Some(path)) => {
                let mut net = OnnxNetwork::load(path, &device)?;
                if let Some(spec) = self
                    .input_spec
                    .clone()
                    .or_else(|| preset.map(|p| p.input_spec()))
                {
                    net = net.with_input_spec(spec);
                }
                Arc::new(net)
            }
            (None, None) => {
                return Err(Error::Config("give a model path or a network".into()));
            }
        };
        let labels_path = self.labels_path.or_else(|| {
            let dir = self.model_path.as_deref()?.parent()?;
            let file = dir.join(preset?.labels_file);
            file.exists().then_some(file)
        });
        let outputs = network.num_outputs();
        let labels = match (self.labels, labels_path) {
            (Some(labels), _) => labels,
            (None, Some(path)) => Labels::from_file(&path)?,
            (None, None) => Labels::numbered(outputs - self.class_offset.unwrap_or(0).min(outputs)),
        };
        let class_offset = self
            .class_offset
            .or(preset.map(|p| p.class_offset))
            .unwrap_or(usize::from(outputs == labels.len() + 1));
        if class_offset + labels.len() > outputs {
            return Err(Error::Config(format!(
                "{} labels from logit {class_offset} do not fit {outputs} outputs",
                labels.len()
            )));
        }
        Ok(FeedbackNet {
            network,
            labels,
            class_offset,
            device,
            method: self.method,
            solver: self.solver,
            hard: self.hard,
            cam_layer: self.cam_layer,
            feedback_cam: self.feedback_cam,
            feedback_map: self.feedback_map,
            localize: self.localize,
            refine: self.refine,
            resize: self.resize,
            crops: self.crops,
        })
    }
}

impl FeedbackNet {
    /// Starts a builder.
    pub fn builder() -> FeedbackNetBuilder {
        FeedbackNetBuilder::default()
    }

    /// Loads an ONNX file with every default (preset found from the file name).
    pub fn from_onnx(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().model_path(path.as_ref()).build()
    }

    /// Index of class 0 among the network's logits (1 for nets with a background logit).
    pub fn class_offset(&self) -> usize {
        self.class_offset
    }

    /// The labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The network's input specification.
    pub fn input_spec(&self) -> &InputSpec {
        self.network.input_spec()
    }

    /// The underlying gated network.
    pub fn network(&self) -> &Arc<dyn GatedNetwork> {
        &self.network
    }

    /// The saliency method used by [`FeedbackNet::infer`].
    pub fn method(&self) -> Method {
        self.method
    }

    /// A copy of this net using another method (shares the loaded network).
    pub fn with_method(&self, method: Method) -> Self {
        Self {
            network: self.network.clone(),
            labels: self.labels.clone(),
            device: self.device.clone(),
            solver: self.solver.clone(),
            hard: self.hard.clone(),
            cam_layer: self.cam_layer.clone(),
            feedback_map: self.feedback_map.clone(),
            localize: self.localize,
            method,
            ..*self
        }
    }

    /// A copy of this net with another mask refinement before boxing (see
    /// [`FeedbackNetBuilder::refine`]; shares the loaded network).
    pub fn with_refine(&self, refine: Option<RefineConfig>) -> Self {
        Self {
            refine,
            ..self.with_method(self.method)
        }
    }

    /// A copy of this net averaging its maps over other views (shares the loaded network).
    pub fn with_crops(&self, crops: Crops) -> Self {
        Self {
            crops,
            ..self.with_method(self.method)
        }
    }

    /// Resolves a class index or label to a class index.
    pub fn class_index(&self, class: impl Into<ClassQuery>) -> Result<usize> {
        self.labels.resolve(&class.into())
    }

    fn class_info(&self, index: usize) -> ClassInfo {
        let label = self.labels.get(index);
        ClassInfo {
            index,
            label: label.map(|l| l.name().to_string()).unwrap_or_default(),
            wnid: label.map(|l| l.wnid.clone()).unwrap_or_default(),
        }
    }

    /// The `k` most likely classes of a plain forward pass.
    pub fn predict(&self, image: &DynamicImage, k: usize) -> Result<Vec<Prediction>> {
        let prepared = prepare(image, self.network.input_spec(), self.resize, &self.device)?;
        let logits = feedbacknet_kernels::on_worker(|| self.network.forward(prepared.input, None))?;
        let classes = self.labels.len();
        let logits = logits.narrow(1, self.class_offset, classes);
        let probs = read_row(softmax(logits.clone(), 1))?;
        let logits = read_row(logits)?;
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        Ok(order
            .into_iter()
            .take(k)
            .map(|i| Prediction {
                class: self.class_info(i),
                logit: logits[i],
                probability: probs[i],
            })
            .collect())
    }

    /// Explains one class (an index or a label) on an image with the configured method.
    pub fn infer(&self, image: &DynamicImage, class: impl Into<ClassQuery>) -> Result<Inference> {
        self.infer_with(image, class, self.method)
    }

    /// Explains one class with the given method (any [`Method`], same result type).
    pub fn infer_with(
        &self,
        image: &DynamicImage,
        class: impl Into<ClassQuery>,
        method: Method,
    ) -> Result<Inference> {
        let index = self.class_index(class)?;
        let mut results = self.infer_classes_with(image, &[index], method)?;
        Ok(results.remove(0))
    }

    /// Explains the `k` most likely classes, solved together in one batched pass.
    pub fn infer_top_k(&self, image: &DynamicImage, k: usize) -> Result<Vec<Inference>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let top: Vec<usize> = self
            .predict(image, k)?
            .into_iter()
            .map(|p| p.class.index)
            .collect();
        self.infer_classes(image, &top)
    }

    /// Explains several classes of one image in one batched pass (one sample per class).
    pub fn infer_classes(&self, image: &DynamicImage, classes: &[usize]) -> Result<Vec<Inference>> {
        self.infer_classes_with(image, classes, self.method)
    }

    /// Explains several classes of one image with the given method, in one batched pass (one
    /// sample per class and view).
    pub fn infer_classes_with(
        &self,
        image: &DynamicImage,
        classes: &[usize],
        method: Method,
    ) -> Result<Vec<Inference>> {
        let mut per_method = self.explain(image, classes, &[self.job(method.into())?])?;
        Ok(per_method.pop().unwrap_or_default())
    }

    /// Explains one class with several methods, one [`Inference`] per method in the given
    /// order. Work that methods share is done once: `Feedback` and `FeedbackCam` read the
    /// same soft-feedback gates and the same gated gradient, `FeedbackCam` and `GradCam` the
    /// same Grad-CAM, so asking for all three costs one solve. Each result's timings count
    /// the shared work as if that method had run alone. A [`MethodSpec`] can give
    /// `FeedbackCam` its own fusion settings: several fusions of one solve are how
    /// `feedbacknet tune --cam-weights .. --feedback-blurs ..` chooses the fusion.
    ///
    /// ```no_run
    /// use feedbacknet::{FeedbackCamConfig, FeedbackNet, Method, MethodSpec};
    /// let net = FeedbackNet::builder().build()?;
    /// let image = image::open("cat.jpg")?;
    /// let blurred_less = MethodSpec::new(Method::FeedbackCam)
    ///     .with_feedback_cam(FeedbackCamConfig::default().with_feedback_blur(5.0));
    /// let specs = [Method::Feedback.into(), Method::FeedbackCam.into(), blurred_less];
    /// for result in net.infer_methods(&image, 281, specs)? {
    ///     println!("{}: {} boxes", result.method, result.boxes.len());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn infer_methods<S: Into<MethodSpec>>(
        &self,
        image: &DynamicImage,
        class: impl Into<ClassQuery>,
        methods: impl IntoIterator<Item = S>,
    ) -> Result<Vec<Inference>> {
        let jobs = methods
            .into_iter()
            .map(|spec| self.job(spec.into()))
            .collect::<Result<Vec<Job>>>()?;
        self.explain_one(image, class, &jobs)
    }

    /// What a spec runs on this net (its fusion settings checked).
    fn job(&self, spec: MethodSpec) -> Result<Job> {
        let feedback_cam = spec.feedback_cam.unwrap_or(self.feedback_cam);
        feedback_cam.fusion.validate()?;
        Ok(Job {
            method: spec.method,
            feedback_cam,
            feedback_map: spec
                .feedback_map
                .unwrap_or_else(|| self.feedback_map.clone()),
        })
    }

    /// One class, several jobs: one [`Inference`] per job.
    fn explain_one(
        &self,
        image: &DynamicImage,
        class: impl Into<ClassQuery>,
        jobs: &[Job],
    ) -> Result<Vec<Inference>> {
        let index = self.class_index(class)?;
        Ok(self
            .explain(image, &[index], jobs)?
            .into_iter()
            .map(|mut per_class| per_class.remove(0))
            .collect())
    }

    /// Every (job, class) result: the outer vector follows `jobs`, the inner `classes`.
    fn explain(
        &self,
        image: &DynamicImage,
        classes: &[usize],
        jobs: &[Job],
    ) -> Result<Vec<Vec<Inference>>> {
        feedbacknet_kernels::on_worker(|| self.explain_here(image, classes, jobs))
    }

    /// [`Self::explain`] on the calling thread.
    fn explain_here(
        &self,
        image: &DynamicImage,
        classes: &[usize],
        jobs: &[Job],
    ) -> Result<Vec<Vec<Inference>>> {
        for &c in classes {
            if c >= self.labels.len() {
                return Err(Error::ClassOutOfRange {
                    class: c,
                    classes: self.labels.len(),
                });
            }
        }
        if classes.is_empty() {
            return Ok(vec![Vec::new(); jobs.len()]);
        }
        let started = Instant::now();
        let spec = self.network.input_spec();
        let views = Views::new(image, spec, self.resize, self.crops, &self.device)?;
        let colour = match self.refine {
            Some(_) => Some(colour_image(image)?),
            None => None,
        };
        let preprocess_ms = ms(started);
        let v = views.len();
        let batch = Tensor::cat(vec![views.input.clone(); classes.len()], 0);
        let targets: Vec<usize> = classes
            .iter()
            .flat_map(|c| std::iter::repeat_n(c + self.class_offset, v))
            .collect();
        let mut cache = BatchCache::default();
        jobs.iter()
            .map(|job| {
                let mut timings = Timings {
                    preprocess_ms,
                    ..Timings::default()
                };
                let out = self.run_job(job, &batch, &targets, &mut cache, &mut timings)?;
                let image = Imaged {
                    views: &views,
                    colour: colour.as_ref(),
                };
                self.inferences(job.method, classes, image, &out, &timings)
            })
            .collect()
    }

    /// One [`Inference`] per class from a method's batched output (`views.len()` samples per
    /// class).
    fn inferences(
        &self,
        method: Method,
        classes: &[usize],
        image: Imaged<'_>,
        out: &MethodOutput,
        timings: &Timings,
    ) -> Result<Vec<Inference>> {
        let views = image.views;
        let v = views.len();
        let stats = out.solution.as_ref().map(gate_stats).transpose()?;
        classes
            .iter()
            .enumerate()
            .map(|(i, &class)| {
                let started = Instant::now();
                let samples = i * v..(i + 1) * v;
                let map = views.compose(&out.maps[samples.clone()])?;
                let located = localize(&map, &self.localize)?;
                let geometry = &views.geometry;
                let smoothed = geometry.map_to_image(&located.smoothed)?;
                let boxes = match (&self.refine, image.colour) {
                    (Some(refine), Some(colour)) => refined_boxes(
                        &smoothed,
                        colour,
                        self.localize.threshold,
                        refine,
                        self.localize.min_area_fraction,
                    )?,
                    _ => located
                        .boxes
                        .iter()
                        .filter_map(|b| geometry.box_to_image(b))
                        .collect(),
                };
                let trace: Vec<f32> = out
                    .solution
                    .as_ref()
                    .map(|s| s.trace.iter().map(|t| mean(&t[samples.clone()])).collect())
                    .unwrap_or_default();
                let logit_after = mean(&out.scores[samples.clone()]);
                Ok(Inference {
                    class: self.class_info(class),
                    method,
                    logit_before: trace.first().copied().unwrap_or(logit_after),
                    logit_after,
                    trace,
                    gates: stats.as_ref().map(|s| s[i * v].clone()),
                    boxes,
                    saliency: geometry.map_to_image(&map.normalized())?,
                    smoothed,
                    timings: Timings {
                        localize_ms: ms(started),
                        ..timings.clone()
                    },
                })
            })
            .collect()
    }

    /// The saliency map of one class with the given method, at image size, normalized to
    /// maximum 1 (no blur, no boxes).
    pub fn saliency(
        &self,
        image: &DynamicImage,
        class: impl Into<ClassQuery>,
        method: Method,
    ) -> Result<SaliencyMap> {
        Ok(self.infer_with(image, class, method)?.saliency)
    }

    /// Class model visualization (Simonyan et al., 2014): an input image optimized from the
    /// mean image to maximize the class logit (see [`VisualizeConfig`] for the regularization).
    pub fn visualize(
        &self,
        class: impl Into<ClassQuery>,
        config: &VisualizeConfig,
    ) -> Result<ClassVisualization> {
        let index = self.class_index(class)?;
        let network = self.network.as_ref();
        let logit = index + self.class_offset;
        let visualized = feedbacknet_kernels::on_worker(|| {
            visualize_class_on(network, logit, config, &self.device)
        });
        Ok(visualized?)
    }
}

fn mean(values: &[f32]) -> f32 {
    values.iter().sum::<f32>() / values.len().max(1) as f32
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn read_row(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| feedbacknet_core::CoreError::Readback(format!("{e:?}")).into())
}

/// Per-sample gate statistics.
fn gate_stats(solution: &GateSolution) -> Result<Vec<GateStats>> {
    let batch = solution.gates.batch();
    let mut stats = vec![GateStats::default(); batch];
    for site in solution.gates.to_vecs()? {
        let per_sample = site.len() / batch.max(1);
        for (b, chunk) in site.chunks(per_sample.max(1)).enumerate().take(batch) {
            let s = &mut stats[b];
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

/// The views of one image and, for the colour refinement, its pixels.
#[derive(Clone, Copy)]
struct Imaged<'a> {
    views: &'a Views,
    colour: Option<&'a ColourImage>,
}

/// The image's RGB pixels at full resolution (what the refinement reads).
fn colour_image(image: &DynamicImage) -> Result<ColourImage> {
    let rgb = image.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(ColourImage::new(w as usize, h as usize, rgb.into_raw())?)
}
