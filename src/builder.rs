//! [`FeedbackNetBuilder`]: how a [`FeedbackNet`] is configured and loaded.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use feedbacknet_core::{Device, GatedNetwork, InputSpec};
use feedbacknet_localize::{LocalizeConfig, RefineConfig, ResizeMode};
use feedbacknet_onnx::{ModelPreset, OnnxNetwork};
use feedbacknet_solver::{CamLayer, HardConfig, SolverConfig};

use crate::{
    Error, FeedbackCamConfig, FeedbackMap, FeedbackNet, Labels, Method, Result,
    device::default_device,
    pipeline::{Pipeline, Settings},
    views::Crops,
};

impl FeedbackNet {
    /// Starts a builder.
    ///
    /// ```no_run
    /// use feedbacknet::{FeedbackNet, LocalizeConfig, Method};
    /// let net = FeedbackNet::builder()
    ///     .model_path("../shared/models/squeezenet1.1.onnx")
    ///     .method(Method::FeedbackCam)
    ///     .localize(LocalizeConfig::default().with_threshold(0.3))
    ///     .build()?;
    /// # let _ = net;
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn builder() -> FeedbackNetBuilder {
        FeedbackNetBuilder::default()
    }

    /// Loads an ONNX file with every default (preset found from the file name).
    ///
    /// ```no_run
    /// let net = feedbacknet::FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
    /// # let _ = net;
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn from_onnx(path: impl AsRef<Path>) -> Result<FeedbackNet> {
        Self::builder().model_path(path.as_ref()).build()
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
    settings: Settings,
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
        self.settings.solver = solver;
        self
    }

    /// Hard solver settings, for [`Method::FeedbackHard`] (default: [`HardConfig::default`]).
    pub fn hard_solver(mut self, hard: HardConfig) -> Self {
        self.settings.hard = hard;
        self
    }

    /// The feature map Grad-CAM reads (default: [`CamLayer::LastConv`]).
    pub fn cam_layer(mut self, layer: CamLayer) -> Self {
        self.settings.cam_layer = layer;
        self
    }

    /// How [`Method::FeedbackCam`] fuses the feedback and Grad-CAM maps (default:
    /// [`FeedbackCamConfig::default`]).
    pub fn feedback_cam(mut self, config: FeedbackCamConfig) -> Self {
        self.settings.feedback_cam = config;
        self
    }

    /// The map the feedback methods read off the converged gates (default:
    /// [`FeedbackMap::InputGradient`]).
    pub fn feedback_map(mut self, map: FeedbackMap) -> Self {
        self.settings.feedback_map = map;
        self
    }

    /// The views a map is averaged over (default: [`Crops::Single`]; [`Crops::Ten`] for
    /// 10-crop averaging with any method).
    pub fn crops(mut self, crops: Crops) -> Self {
        self.settings.crops = crops;
        self
    }

    /// Box extraction settings (default: [`LocalizeConfig::default`]: threshold 0.2 of the
    /// max after a Gaussian blur of sigma 10 network-input pixels). The blur sigma is in
    /// network-input pixels: the map is blurred at image resolution with the sigma scaled to
    /// it ([`localize_in_image`](feedbacknet_localize::localize_in_image)).
    pub fn localize(mut self, localize: LocalizeConfig) -> Self {
        self.settings.localize = localize;
        self
    }

    /// Colour-model refinement of the thresholded mask before boxing (default: `None`, the
    /// boxes of the thresholded map). With a [`RefineConfig`], the boxes of every
    /// [`Inference`](crate::Inference) come from
    /// [`refine_mask`](feedbacknet_localize::refine_mask) of the smoothed map at image
    /// resolution, seeded at the localization threshold: the mask grows into the object's colours and
    /// shrinks out of the background's (+5 to +8 points of GT-known localization on
    /// SqueezeNet's dev images, `docs/results.md`).
    pub fn refine(mut self, refine: Option<RefineConfig>) -> Self {
        self.settings.refine = refine;
        self
    }

    /// How images are fitted to the input (default: [`ResizeMode::Stretch`], the whole image
    /// resized without crop).
    pub fn resize(mut self, resize: ResizeMode) -> Self {
        self.settings.resize = resize;
        self
    }

    /// Loads the model and checks the configuration.
    ///
    /// Errors: an invalid setting, no model path and no network, a model that cannot be
    /// loaded, labels that cannot be read or do not fit the model's outputs.
    pub fn build(self) -> Result<FeedbackNet> {
        validate(&self.settings)?;
        let device = match self.device.clone() {
            Some(d) => d,
            None => default_device()?,
        };
        let preset = self
            .preset
            .or_else(|| self.model_path.as_deref().and_then(ModelPreset::for_path));
        let network = self.load_network(preset, &device)?;
        let outputs = network.num_outputs();
        let labels = self.load_labels(preset, outputs)?;
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
        let pipeline = Pipeline::new(network, device, class_offset, self.settings);
        Ok(FeedbackNet::new(pipeline, labels, self.method))
    }

    /// The given network, else the ONNX file with the input spec given or of its preset.
    fn load_network(
        &self,
        preset: Option<&'static ModelPreset>,
        device: &Device,
    ) -> Result<Arc<dyn GatedNetwork>> {
        match (&self.network, &self.model_path) {
            (Some(net), _) => Ok(net.clone()),
            (None, Some(path)) => {
                let mut net = OnnxNetwork::load(path, device)?;
                if let Some(spec) = self
                    .input_spec
                    .clone()
                    .or_else(|| preset.map(|p| p.input_spec()))
                {
                    net = net.with_input_spec(spec);
                }
                Ok(Arc::new(net))
            }
            (None, None) => Err(Error::Config("give a model path or a network".into())),
        }
    }

    /// The given labels, else the label file given or the preset's next to the model, else
    /// numbered labels for the outputs after the class offset.
    fn load_labels(&self, preset: Option<&'static ModelPreset>, outputs: usize) -> Result<Labels> {
        let labels_path = self.labels_path.clone().or_else(|| {
            let dir = self.model_path.as_deref()?.parent()?;
            let file = dir.join(preset?.labels_file);
            file.exists().then_some(file)
        });
        Ok(match (&self.labels, labels_path) {
            (Some(labels), _) => labels.clone(),
            (None, Some(path)) => Labels::from_file(&path)?,
            (None, None) => Labels::numbered(outputs - self.class_offset.unwrap_or(0).min(outputs)),
        })
    }
}

/// Checks every setting.
fn validate(settings: &Settings) -> Result<()> {
    settings.solver.validate()?;
    settings.hard.validate()?;
    settings.localize.validate()?;
    if let Some(refine) = &settings.refine {
        refine.validate()?;
    }
    settings.feedback_cam.fusion.validate()?;
    if let Crops::Ten { shorter_side: 0 } = settings.crops {
        return Err(Error::Config(
            "10-crop needs a positive shorter side".into(),
        ));
    }
    Ok(())
}
