//! [`FeedbackNet`]: load a classifier once, then explain images class by class.

use std::sync::Arc;

use feedbacknet_core::{GatedNetwork, InputSpec, Tensor};
use feedbacknet_localize::RefineConfig;
use feedbacknet_solver::{ClassVisualization, VisualizeConfig};
use image::DynamicImage;

use crate::{
    BoxSettings, ClassInfo, ClassQuery, Error, Inference, Inferences, Labels, Method, MethodSpec,
    ModelInfo, Prediction, Request, Result, Targets,
    pipeline::{Job, Pipeline, Settings},
    views::Crops,
};

/// A gated classifier with everything needed to explain its decisions.
///
/// Three calls explain an image: [`FeedbackNet::infer`] (one class),
/// [`FeedbackNet::infer_top_k`] (the most likely classes) and [`FeedbackNet::explain`] (any
/// classes with any methods, one batch and shared solves).
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
    pipeline: Pipeline,
    labels: Labels,
    method: Method,
    info: Arc<ModelInfo>,
}

// Sharing one net between threads is part of the API.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<FeedbackNet>();
};

impl std::fmt::Debug for FeedbackNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackNet")
            .field("input", self.input_spec())
            .field("classes", &self.labels.len())
            .field("class_offset", &self.class_offset())
            .field("method", &self.method)
            .field("settings", self.pipeline.settings())
            .finish()
    }
}

impl FeedbackNet {
    /// A net of a pipeline, its labels and its default method (see the builder).
    pub(crate) fn new(
        pipeline: Pipeline,
        labels: Labels,
        method: Method,
        info: Arc<ModelInfo>,
    ) -> Self {
        Self {
            pipeline,
            labels,
            method,
            info,
        }
    }

    /// The input size, normalization, resize rule, class offset and labels in use, and where
    /// each came from (the builder, the file's metadata, the preset, the model, a default).
    /// Its `Display` is a one-line summary:
    ///
    /// ```no_run
    /// let net = feedbacknet::FeedbackNet::from_onnx("../shared/models/mobilenet_v1_0.25_128.onnx")?;
    /// assert_eq!(net.model_info().class_offset, 1);
    /// eprintln!("{}", net.model_info());
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    /// Index of class 0 among the network's logits (1 for nets with a background logit).
    pub fn class_offset(&self) -> usize {
        self.pipeline.class_offset()
    }

    /// The labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The network's input specification.
    pub fn input_spec(&self) -> &InputSpec {
        self.pipeline.network().input_spec()
    }

    /// The underlying gated network.
    pub fn network(&self) -> &Arc<dyn GatedNetwork> {
        self.pipeline.network()
    }

    /// `image` as the network sees it: resized (and cropped, per the net's resize mode) to the
    /// input and normalized, `[1, 3, H, W]` on the net's device. For work below the pipeline,
    /// such as perturbing the input and calling the solvers of `feedbacknet-solver` on
    /// [`FeedbackNet::network`].
    pub fn network_input(&self, image: &DynamicImage) -> Result<Tensor<4>> {
        self.pipeline.input(image)
    }

    /// The saliency method used by [`FeedbackNet::infer`], [`FeedbackNet::infer_top_k`] and
    /// requests without methods.
    pub fn method(&self) -> Method {
        self.method
    }

    /// A copy of this net using another method (shares the loaded network).
    pub fn with_method(&self, method: Method) -> Self {
        Self::new(
            self.pipeline.clone(),
            self.labels.clone(),
            method,
            self.info.clone(),
        )
    }

    /// A copy of this net with another mask refinement before boxing for every method (see
    /// `FeedbackNetBuilder::refine`; shares the loaded network).
    pub fn with_refine(&self, refine: Option<RefineConfig>) -> Self {
        let mut settings = self.pipeline.settings().clone();
        settings.boxes.update_all(|s| s.refine = refine);
        self.with_settings(settings)
    }

    /// The box settings `method` uses: the blur, threshold, refinement and (feedback-cam)
    /// fusion given to the builder, else those tuned on the net's dev set
    /// ([`BoxSettings::tuned`]).
    ///
    /// ```no_run
    /// use feedbacknet::{FeedbackNet, Method};
    /// let net = FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// let cam = net.box_settings(Method::GradCam);
    /// println!("Grad-CAM: blur {}, threshold {}", cam.localize.blur_sigma, cam.localize.threshold);
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn box_settings(&self, method: Method) -> BoxSettings {
        self.pipeline.settings().boxes.get(method)
    }

    /// A copy of this net with other box settings for `method` (shares the loaded network).
    ///
    /// Errors: settings out of range ([`BoxSettings::validate`]).
    pub fn with_box_settings(&self, method: Method, boxes: BoxSettings) -> Result<Self> {
        boxes.validate()?;
        let mut settings = self.pipeline.settings().clone();
        settings.boxes.set(method, boxes);
        Ok(self.with_settings(settings))
    }

    /// A copy of this net averaging its maps over other views (shares the loaded network).
    pub fn with_crops(&self, crops: Crops) -> Self {
        self.with_settings(Settings {
            crops,
            ..self.pipeline.settings().clone()
        })
    }

    fn with_settings(&self, settings: Settings) -> Self {
        let pipeline = self.pipeline.with_settings(settings);
        Self::new(
            pipeline,
            self.labels.clone(),
            self.method,
            self.info.clone(),
        )
    }

    /// Resolves a class index or label to a class index.
    pub fn class_index(&self, class: impl Into<ClassQuery>) -> Result<usize> {
        self.labels.resolve(&class.into())
    }

    /// Checks a top-k request against the net's classes: `k` itself for `1 <= k <= classes`,
    /// else [`Error::TopK`] (before any work: explaining more classes than the net has would
    /// batch them all).
    ///
    /// ```no_run
    /// # let net = feedbacknet::FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// assert_eq!(net.check_top_k(5)?, 5);
    /// assert!(matches!(
    ///     net.check_top_k(2000),
    ///     Err(feedbacknet::Error::TopK { k: 2000, classes: 1000 })
    /// ));
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn check_top_k(&self, k: usize) -> Result<usize> {
        let classes = self.labels.len();
        if k == 0 || k > classes {
            return Err(Error::TopK { k, classes });
        }
        Ok(k)
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
    ///
    /// ```no_run
    /// # let net = feedbacknet::FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// let image = feedbacknet::load_image("../shared/data/demo/darknet_dog.jpg")?;
    /// for p in net.predict(&image, 5)? {
    ///     println!("{:5.1} % {}", 100.0 * p.probability, p.class.label);
    /// }
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn predict(&self, image: &DynamicImage, k: usize) -> Result<Vec<Prediction>> {
        let (logits, probs) = self.pipeline.scores(image, self.labels.len())?;
        let mut order: Vec<(usize, f32, f32)> = (0..)
            .zip(logits.iter().zip(&probs))
            .map(|(i, (&logit, &probability))| (i, logit, probability))
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(order
            .into_iter()
            .take(k)
            .map(|(i, logit, probability)| Prediction {
                class: self.class_info(i),
                logit,
                probability,
            })
            .collect())
    }

    /// Explains one class (an index or a label) on an image with the net's method.
    ///
    /// ```no_run
    /// # let net = feedbacknet::FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// let image = feedbacknet::load_image("../shared/data/demo/darknet_dog.jpg")?;
    /// let dog = net.infer(&image, "bull mastiff")?;
    /// println!("{:?} in {:.0} ms", dog.best_box(), dog.timings.solve_ms);
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn infer(&self, image: &DynamicImage, class: impl Into<ClassQuery>) -> Result<Inference> {
        let results = self.explain(image, &Request::class(class))?;
        let one = results.into_iter().next();
        one.ok_or_else(|| Error::Config("one class and one method gave no result".into()))
    }

    /// Explains the `k` most likely classes with the net's method, solved together in one
    /// batched pass; most likely first.
    ///
    /// ```no_run
    /// # let net = feedbacknet::FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// let image = feedbacknet::load_image("../shared/data/demo/darknet_dog.jpg")?;
    /// for result in net.infer_top_k(&image, 3)? {
    ///     println!("{}: {:?}", result.class.label, result.best_box());
    /// }
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn infer_top_k(&self, image: &DynamicImage, k: usize) -> Result<Vec<Inference>> {
        Ok(self
            .explain(image, &Request::top_k(k))?
            .into_iter()
            .collect())
    }

    /// Explains the request's classes with its methods: one [`Inference`] per method and
    /// class. The classes are one batch (one sample per class and view); work that methods
    /// share is done once (`Feedback` and `FeedbackCam` read one soft-feedback solve and one
    /// gated gradient, `FeedbackCam` and `GradCam` one Grad-CAM), and each result's timings
    /// count the shared work as if that method had run alone. A [`MethodSpec`] can give
    /// `FeedbackCam` its own fusion settings: several fusions of one solve are how
    /// `feedbacknet tune --cam-weights .. --feedback-blurs ..` chooses the fusion.
    ///
    /// Errors: an unknown class or one out of range, a top-k of 0 or above the class count
    /// ([`Error::TopK`]), invalid fusion settings, and those of
    /// the network and the solvers.
    ///
    /// ```no_run
    /// use feedbacknet::{FeedbackCamConfig, FeedbackNet, Method, MethodSpec, Request};
    /// let net = FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// let image = feedbacknet::load_image("../shared/data/demo/ramprs_cat_dog.jpg")?;
    /// let blurred_less = MethodSpec::new(Method::FeedbackCam)
    ///     .with_feedback_cam(FeedbackCamConfig::default().with_feedback_blur(5.0));
    /// let request = Request::classes(["tiger cat", "bull mastiff"])
    ///     .methods([Method::Feedback.into(), Method::FeedbackCam.into(), blurred_less]);
    /// let results = net.explain(&image, &request)?; // one solve serves all three methods
    /// for result in results.method(1) {
    ///     println!("{} {}: {:?}", result.method, result.class.label, result.best_box());
    /// }
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn explain(&self, image: &DynamicImage, request: &Request) -> Result<Inferences> {
        let item = self.resolve(image, request)?;
        let mut results = self.run_resolved(vec![item])?;
        results
            .pop()
            .ok_or_else(|| Error::Internal("a batch of one image gave no result".into()))
    }

    /// Explains several images, each with its own request: what one [`FeedbackNet::explain`]
    /// per item would return (the same maps, boxes and scores up to float rounding), in the
    /// items' order, with the samples of all images (each image's classes × views) solved
    /// together in shared batches of at most `max_batch` samples
    /// ([`FeedbackNetBuilder::max_batch`](crate::FeedbackNetBuilder::max_batch)). Images may
    /// differ in size: each is fitted to the network input on its own. Items asking for the
    /// same methods share batches (items with other methods run in batches of their own).
    ///
    /// Every item is checked before any solve (its classes, its top-k and its fusion settings;
    /// a top-k item runs its forward pass then): a bad item fails the whole call with
    /// [`Error::BatchItem`], which names the item and holds its error. An error of the network
    /// or a solver during the shared batches fails the whole call too. Timings: an item's
    /// solve and saliency times are those of the batch it was in; its preprocessing time is
    /// its own. With the solver's early stopping (`SolverConfig::tolerance`), a batch stops
    /// when all its samples have converged, as a batch of classes does.
    ///
    /// ```no_run
    /// use feedbacknet::{FeedbackNet, Method, Request};
    /// let net = FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// let cat_dog = feedbacknet::load_image("../shared/data/demo/ramprs_cat_dog.jpg")?;
    /// let dog = feedbacknet::load_image("../shared/data/demo/darknet_dog.jpg")?;
    /// let both = Request::classes(["tiger cat", "bull mastiff"]).method(Method::GradCam);
    /// let bike = Request::class("mountain bike").method(Method::GradCam);
    /// let results = net.explain_batch(&[(&cat_dog, &both), (&dog, &bike)])?;
    /// assert_eq!(results.len(), 2);
    /// assert_eq!(results[0].len(), 2); // two classes, one method
    /// println!("{:?}", results[1].method(0)[0].best_box());
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn explain_batch(&self, items: &[(&DynamicImage, &Request)]) -> Result<Vec<Inferences>> {
        let resolved = (0..)
            .zip(items)
            .map(|(index, &(image, request))| {
                self.resolve(image, request)
                    .map_err(|source| Error::BatchItem {
                        index,
                        source: Box::new(source),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        self.run_resolved(resolved)
    }

    /// A request checked against the net: its class indices, its methods as jobs.
    fn resolve<'a>(&self, image: &'a DynamicImage, request: &Request) -> Result<Resolved<'a>> {
        let classes = self.target_classes(image, &request.targets)?;
        let specs = request
            .methods
            .clone()
            .unwrap_or_else(|| vec![MethodSpec::from(self.method)]);
        let jobs = specs
            .iter()
            .map(|spec| self.pipeline.job(spec))
            .collect::<Result<Vec<_>>>()?;
        let infos = classes.iter().map(|&c| self.class_info(c)).collect();
        Ok(Resolved {
            image,
            classes,
            infos,
            specs,
            jobs,
        })
    }

    /// Runs checked items; those with the same methods share batches.
    fn run_resolved(&self, items: Vec<Resolved<'_>>) -> Result<Vec<Inferences>> {
        let mut results: Vec<Option<Inferences>> = vec![None; items.len()];
        let mut left: Vec<usize> = (0..items.len()).collect();
        while let Some(&first) = left.first() {
            let specs = &items.get(first).ok_or_else(lost)?.specs;
            let (same, other): (Vec<usize>, Vec<usize>) = left
                .iter()
                .partition(|&&i| items.get(i).is_some_and(|item| &item.specs == specs));
            left = other;
            let group = same
                .iter()
                .map(|&i| items.get(i).ok_or_else(lost))
                .collect::<Result<Vec<_>>>()?;
            let jobs = &group.first().ok_or_else(lost)?.jobs;
            let inputs: Vec<(&DynamicImage, &[ClassInfo])> = group
                .iter()
                .map(|item| (item.image, item.infos.as_slice()))
                .collect();
            let per_item = self.pipeline.explain_batch(&inputs, jobs)?;
            for ((&i, item), per_method) in same.iter().zip(&group).zip(per_item) {
                let slot = results.get_mut(i).ok_or_else(lost)?;
                *slot = Some(Inferences::new(item.classes.clone(), per_method));
            }
        }
        results.into_iter().map(|r| r.ok_or_else(lost)).collect()
    }

    /// The class indices of `targets` (a forward pass for top-k).
    fn target_classes(&self, image: &DynamicImage, targets: &Targets) -> Result<Vec<usize>> {
        match targets {
            Targets::Classes(queries) => queries.iter().map(|q| self.labels.resolve(q)).collect(),
            Targets::TopK(k) => Ok(self
                .predict(image, self.check_top_k(*k)?)?
                .into_iter()
                .map(|p| p.class.index)
                .collect()),
        }
    }

    /// Class model visualization (Simonyan et al., 2014): an input image optimized from the
    /// mean image to maximize the class logit (see [`VisualizeConfig`] for the regularization).
    ///
    /// ```no_run
    /// # let net = feedbacknet::FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// let goose = net.visualize("goose", &feedbacknet::VisualizeConfig::default())?;
    /// # let _ = goose;
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn visualize(
        &self,
        class: impl Into<ClassQuery>,
        config: &VisualizeConfig,
    ) -> Result<ClassVisualization> {
        self.pipeline.visualize(self.class_index(class)?, config)
    }
}

/// An item of [`FeedbackNet::explain_batch`] checked against the net.
struct Resolved<'a> {
    image: &'a DynamicImage,
    classes: Vec<usize>,
    infos: Vec<ClassInfo>,
    specs: Vec<MethodSpec>,
    jobs: Vec<Job>,
}

fn lost() -> Error {
    Error::Internal("a batch lost one of its items".into())
}
