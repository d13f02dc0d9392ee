//! [`FeedbackNet`]: load a classifier once, then explain images class by class.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use burn::tensor::{Tensor, activation::softmax};
use feedbacknet_core::{Device, GatedNetwork, InputSpec};
use feedbacknet_localize::{LocalizeConfig, ResizeMode, SaliencyMap, localize};
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use feedbacknet_solver::{
    GateSolution, SolverConfig, input_gradient, saliency_maps, soft_feedback,
};
use image::DynamicImage;

use crate::{
    ClassInfo, ClassQuery, Error, GateStats, Inference, Labels, Method, Prediction, Result,
    Timings, device::default_device, preprocess::prepare,
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
pub struct FeedbackNet {
    network: Arc<dyn GatedNetwork>,
    labels: Labels,
    class_offset: usize,
    device: Device,
    method: Method,
    solver: SolverConfig,
    localize: LocalizeConfig,
    resize: ResizeMode,
}

impl std::fmt::Debug for FeedbackNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackNet")
            .field("input", self.network.input_spec())
            .field("classes", &self.labels.len())
            .field("class_offset", &self.class_offset)
            .field("method", &self.method)
            .field("solver", &self.solver)
            .field("localize", &self.localize)
            .field("resize", &self.resize)
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
    localize: LocalizeConfig,
    resize: ResizeMode,
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

    /// Solver settings (default: [`SolverConfig::default`]).
    pub fn solver(mut self, solver: SolverConfig) -> Self {
        self.solver = solver;
        self
    }

    /// Box extraction settings (default: [`LocalizeConfig::default`]: threshold 0.2 of the
    /// max after a Gaussian blur of sigma 10 input pixels).
    pub fn localize(mut self, localize: LocalizeConfig) -> Self {
        self.localize = localize;
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
        self.localize.validate()?;
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
            localize: self.localize,
            resize: self.resize,
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
            localize: self.localize,
            method,
            ..*self
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
        let logits = self.network.forward(prepared.input, None)?;
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
        let index = self.class_index(class)?;
        let mut results = self.infer_classes(image, &[index])?;
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
        for &c in classes {
            if c >= self.labels.len() {
                return Err(Error::ClassOutOfRange {
                    class: c,
                    classes: self.labels.len(),
                });
            }
        }
        if classes.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let prepared = prepare(image, self.network.input_spec(), self.resize, &self.device)?;
        let mut timings = Timings {
            preprocess_ms: ms(started),
            ..Timings::default()
        };
        let batch = prepared.input.repeat_dim(0, classes.len());
        let targets: Vec<usize> = classes.iter().map(|c| c + self.class_offset).collect();
        let net = self.network.as_ref();
        let started = Instant::now();
        let solution = match self.method {
            Method::Feedback => Some(soft_feedback(net, &batch, &targets, &self.solver)?),
            Method::Gradient => None,
        };
        timings.solve_ms = ms(started);
        let started = Instant::now();
        let gates = solution.as_ref().map(|s| &s.gates);
        let grad = input_gradient(net, &batch, &targets, gates)?;
        let maps = saliency_maps(&grad.gradient)?;
        timings.saliency_ms = ms(started);
        let stats = solution.as_ref().map(gate_stats).transpose()?;
        maps.into_iter()
            .enumerate()
            .map(|(i, map)| {
                let started = Instant::now();
                let located = localize(&map, &self.localize)?;
                let geometry = &prepared.geometry;
                let boxes = located
                    .boxes
                    .iter()
                    .filter_map(|b| geometry.box_to_image(b))
                    .collect();
                let saliency = geometry.map_to_image(&map.normalized())?;
                let smoothed = geometry.map_to_image(&located.smoothed)?;
                let trace: Vec<f32> = solution
                    .as_ref()
                    .map(|s| s.trace.iter().map(|t| t[i]).collect())
                    .unwrap_or_default();
                let logit_before = trace.first().copied().unwrap_or(grad.scores[i]);
                Ok(Inference {
                    class: self.class_info(classes[i]),
                    method: self.method,
                    logit_before,
                    logit_after: grad.scores[i],
                    trace,
                    gates: stats.as_ref().map(|s| s[i].clone()),
                    boxes,
                    saliency,
                    smoothed,
                    timings: Timings {
                        localize_ms: ms(started),
                        ..timings.clone()
                    },
                })
            })
            .collect()
    }

    /// The raw saliency maps at network-input resolution (no blur, no boxes), one per class.
    pub fn saliency(&self, image: &DynamicImage, classes: &[usize]) -> Result<Vec<SaliencyMap>> {
        Ok(self
            .infer_classes(image, classes)?
            .into_iter()
            .map(|r| r.saliency)
            .collect())
    }
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
