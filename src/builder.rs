//! [`FeedbackNetBuilder`]: how a [`FeedbackNet`] is configured and loaded.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use feedbacknet_core::{
    Device, GatedNetwork, InputSettingError, InputSize, InputSpec, Normalization,
};
use feedbacknet_localize::{LocalizeConfig, RefineConfig, ResizeMode};
use feedbacknet_onnx::{GatePlacement, ModelPreset, OnnxNetwork};
use feedbacknet_solver::{CamLayer, HardConfig, SolverConfig};

use crate::{
    BoxPriority, BoxSettings, Error, FeedbackCamConfig, FeedbackMap, FeedbackNet, Labels, Method,
    ModelInfo, Resize, Result, SettingSource,
    boxes::{MethodBoxes, tuned_on},
    device::default_device,
    model_info::{
        META_CLASS_OFFSET, META_INPUT_SIZE, META_NORMALIZE, META_RESIZE, Metadata, fit_labels,
        inferred_offset,
    },
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
///
/// The preprocessing and class layout (input size, normalization, resize rule, class offset,
/// labels) are each taken from the first of: this builder, the ONNX file's `feedbacknet.*`
/// metadata (`docs/models.md`), the preset of the file name ([`ModelPreset`]), what the file
/// declares, a default; [`FeedbackNet::model_info`] says which.
///
/// ```no_run
/// use feedbacknet::{FeedbackNet, Normalization, Resize};
/// // A TensorFlow-style export under a name no preset knows: 1001 outputs, inputs in [-1, 1].
/// let net = FeedbackNet::builder()
///     .model_path("my_mobilenet.onnx")
///     .input_size(128)
///     .normalization("inception".parse::<Normalization>()?)
///     .resize(Resize::Crop)
///     .labels_file("../shared/models/imagenet_labels_1001.txt")
///     .build()?;
/// assert_eq!(net.model_info().class_offset, 1); // inferred from the 1001 outputs
/// # Ok::<(), feedbacknet::Error>(())
/// ```
#[derive(Default)]
pub struct FeedbackNetBuilder {
    model_path: Option<PathBuf>,
    network: Option<Arc<dyn GatedNetwork>>,
    preset: Option<&'static ModelPreset>,
    input_size: Option<std::result::Result<InputSize, InputSettingError>>,
    normalization: Option<Normalization>,
    resize: Option<Resize>,
    labels: Option<Labels>,
    labels_path: Option<PathBuf>,
    class_offset: Option<usize>,
    gate_placement: Option<GatePlacement>,
    device: Option<Device>,
    method: Method,
    settings: Settings,
    boxes: BoxOverrides,
}

/// The box settings given to the builder, which replace the tuned ones
/// ([`BoxSettings::tuned_for`] at `priority`): for every method (`localize`, `refine`,
/// `feedback_cam`), then for one method (`box_settings`).
#[derive(Debug, Clone, Default)]
struct BoxOverrides {
    priority: BoxPriority,
    localize: Option<LocalizeConfig>,
    /// `Some(None)`: no refinement for any method.
    refine: Option<Option<RefineConfig>>,
    feedback_cam: Option<FeedbackCamConfig>,
    per_method: Vec<(Method, BoxSettings)>,
}

impl BoxOverrides {
    /// The tuned settings of the net of preset `net` with these overrides.
    fn resolve(&self, net: Option<&str>) -> MethodBoxes {
        let mut boxes = MethodBoxes::tuned(net, self.priority);
        boxes.update_all(|s| {
            if let Some(localize) = self.localize {
                s.localize = localize;
            }
            if let Some(refine) = self.refine {
                s.refine = refine;
            }
            if let Some(feedback_cam) = self.feedback_cam {
                s.feedback_cam = feedback_cam;
            }
        });
        for &(method, settings) in &self.per_method {
            boxes.set(method, settings);
        }
        boxes
    }
}

impl FeedbackNetBuilder {
    /// An ONNX classifier file. A known file name (see [`ModelPreset::all`]) selects its preset.
    pub fn model_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.model_path = Some(path.into());
        self
    }

    /// Where the ONNX file's net carries feedback gates (default:
    /// [`GatePlacement::Activations`], after every gated activation;
    /// [`GatePlacement::AttentionHeads`] adds one gate per attention head of a transformer).
    /// For ONNX files (an error with a network of your own, which places its own gates).
    ///
    /// ```
    /// use feedbacknet::{FeedbackNet, GatePlacement};
    /// let builder = FeedbackNet::builder().gate_placement(GatePlacement::AttentionHeads);
    /// # let _ = builder;
    /// ```
    pub fn gate_placement(mut self, placement: GatePlacement) -> Self {
        self.gate_placement = Some(placement);
        self
    }

    /// A network of your own (any [`GatedNetwork`]) instead of an ONNX file. Its input size
    /// and normalization are its own [`GatedNetwork::input_spec`]: [`Self::input_size`] and
    /// [`Self::normalization`] are for ONNX files (an error with a network).
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

    /// Overrides the input size and normalization (see [`Self::input_size`] and
    /// [`Self::normalization`]).
    pub fn input_spec(mut self, spec: InputSpec) -> Self {
        self.input_size = Some(InputSize::new(spec.height, spec.width));
        self.normalization = Some(spec.normalization);
        self
    }

    /// The input size: a side (`128`, square) or an [`InputSize`] (height and width).
    /// Default: the file's `feedbacknet.input_size` metadata, else the preset's, else the size
    /// the file declares (224 where it declares none). A side of 0 is an error at
    /// [`Self::build`].
    ///
    /// ```no_run
    /// # use feedbacknet::{FeedbackNet, InputSize};
    /// let square = FeedbackNet::builder().input_size(160);
    /// let wide = FeedbackNet::builder().input_size(InputSize::new(128, 192)?);
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn input_size(mut self, size: impl Into<InputSizeArg>) -> Self {
        self.input_size = Some(size.into().0);
        self
    }

    /// The pixel normalization (see [`Normalization`]'s `FromStr` for `imagenet`,
    /// `inception`, `caffe`, `raw`, `mean=R,G,B,std=R,G,B`). Default: the file's
    /// `feedbacknet.normalize` metadata, else the preset's, else [`Normalization::IMAGENET`].
    pub fn normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = Some(normalization);
        self
    }

    /// How images are fitted to the input: [`Resize::Stretch`], [`Resize::Crop`] (torchvision's
    /// resize-then-centre-crop) or an exact [`ResizeMode`]. Default: the file's
    /// `feedbacknet.resize` metadata, else [`Resize::Stretch`] (the whole image resized
    /// without crop, for the presets too).
    pub fn resize(mut self, resize: impl Into<Resize>) -> Self {
        self.resize = Some(resize.into());
        self
    }

    /// Class labels, one per class: a [`Labels`] or a `Vec<String>` of names (default: the
    /// label file given, else the file's `feedbacknet.labels` metadata, else the preset's label
    /// file next to the model, else numbered). A list with one more label than the classes is
    /// read as a background label first and that label is skipped; any other count is
    /// [`Error::LabelCount`].
    ///
    /// ```no_run
    /// let net = feedbacknet::FeedbackNet::builder()
    ///     .model_path("two_classes.onnx")
    ///     .labels(vec!["cat".to_string(), "dog".to_string()])
    ///     .build()?;
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn labels(mut self, labels: impl Into<Labels>) -> Self {
        self.labels = Some(labels.into());
        self
    }

    /// A label file, one class a line (`wnid name, synonyms` or `name`); see [`Self::labels`]
    /// for the count it must have.
    pub fn labels_file(self, path: impl Into<PathBuf>) -> Self {
        self.labels_path(path)
    }

    /// Same as [`Self::labels_file`].
    pub fn labels_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.labels_path = Some(path.into());
        self
    }

    /// Index of class 0 among the logits. Default: the file's `feedbacknet.class_offset`
    /// metadata, else the preset's, else 1 when the model has 1001 outputs or one more than
    /// there are labels (a background logit first, as TensorFlow exports have), else 0.
    pub fn class_offset(mut self, offset: usize) -> Self {
        self.class_offset = Some(offset);
        self
    }

    /// The device, which picks the backend (default: [`default_device`], flex on CPU).
    pub fn device(mut self, device: Device) -> Self {
        self.device = Some(device);
        self
    }

    /// The saliency method (default: [`Method::FeedbackCam`], the soft-feedback map fused with
    /// Grad-CAM; [`Method::Feedback`] is the paper's map).
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

    /// How [`Method::FeedbackCam`] fuses the feedback and Grad-CAM maps (default: the fusion
    /// tuned for the net, [`BoxSettings::tuned`]).
    pub fn feedback_cam(mut self, config: FeedbackCamConfig) -> Self {
        self.boxes.feedback_cam = Some(config);
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

    /// The most samples (classes × views) explained in one batch (default:
    /// [`DEFAULT_MAX_BATCH`](crate::DEFAULT_MAX_BATCH), 16): more classes than that, such as
    /// top-k 1000, run batch after batch, so memory stays bounded whatever is asked; peak
    /// memory grows with this number (`scripts/topk_memory.sh` measures it). A batch of ten
    /// crops holds at least one class. 0 is refused by [`build`](Self::build).
    ///
    /// ```
    /// let builder = feedbacknet::FeedbackNet::builder().max_batch(4);
    /// # let _ = builder;
    /// ```
    pub fn max_batch(mut self, samples: usize) -> Self {
        self.settings.max_batch = Some(samples);
        self
    }

    /// Box extraction settings of every method: the blur and the threshold (default: each
    /// method's own, tuned on the dev set of the net, [`BoxSettings::tuned`]). The blur sigma
    /// is in network-input pixels: the map is blurred at image resolution with the sigma scaled
    /// to it ([`localize_in_image`](feedbacknet_localize::localize_in_image)).
    pub fn localize(mut self, localize: LocalizeConfig) -> Self {
        self.boxes.localize = Some(localize);
        self
    }

    /// Colour-model refinement of the thresholded mask before boxing, for every method
    /// (default: each method's tuned choice, [`BoxSettings::tuned`]; `None`: the boxes of the
    /// thresholded map). With a [`RefineConfig`], the boxes of every
    /// [`Inference`](crate::Inference) come from
    /// [`refine_mask`](feedbacknet_localize::refine_mask) of the smoothed map at image
    /// resolution, seeded at the localization threshold: the mask grows into the object's
    /// colours and shrinks out of the background's (`docs/results.md`).
    pub fn refine(mut self, refine: Option<RefineConfig>) -> Self {
        self.boxes.refine = Some(refine);
        self
    }

    /// Which of each method's tuned box settings it starts from (default:
    /// [`BoxPriority::Accurate`], the most accurate on the net's dev images;
    /// [`BoxPriority::Stable`], the most accurate whose boxes stay put under a one-grey-level
    /// change of the image). The other box settings given to the builder replace parts of it.
    ///
    /// ```no_run
    /// use feedbacknet::{BoxPriority, BoxSettings, FeedbackNet, Method};
    /// let net = FeedbackNet::builder()
    ///     .model_path("../shared/models/squeezenet1.1.onnx")
    ///     .box_priority(BoxPriority::Stable)
    ///     .build()?;
    /// let stable = BoxSettings::tuned_for(Some("squeezenet1.1"), Method::FeedbackCam, BoxPriority::Stable);
    /// assert_eq!(net.box_settings(Method::FeedbackCam), stable);
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn box_priority(mut self, priority: BoxPriority) -> Self {
        self.boxes.priority = priority;
        self
    }

    /// Every box setting of one method (blur, threshold, refinement, fusion); replaces what
    /// [`Self::localize`], [`Self::refine`] and [`Self::feedback_cam`] set for that method.
    ///
    /// ```no_run
    /// use feedbacknet::{BoxSettings, FeedbackNet, Method};
    /// let mut cam = BoxSettings::tuned(Some("squeezenet1.1"), Method::GradCam);
    /// cam.localize = cam.localize.with_threshold(0.3);
    /// let net = FeedbackNet::builder()
    ///     .model_path("../shared/models/squeezenet1.1.onnx")
    ///     .box_settings(Method::GradCam, cam)
    ///     .build()?;
    /// assert_eq!(net.box_settings(Method::GradCam).localize.threshold, 0.3);
    /// # Ok::<(), feedbacknet::Error>(())
    /// ```
    pub fn box_settings(mut self, method: Method, settings: BoxSettings) -> Self {
        self.boxes.per_method.push((method, settings));
        self
    }

    /// Loads the model and checks the configuration.
    ///
    /// Errors: an invalid setting, no model path and no network, a model that cannot be
    /// loaded, labels that cannot be read or do not fit the model's outputs.
    pub fn build(mut self) -> Result<FeedbackNet> {
        validate(&self.settings)?;
        self.boxes.resolve(None).validate()?;
        let device = match self.device.clone() {
            Some(d) => d,
            None => default_device()?,
        };
        let preset = self
            .preset
            .or_else(|| self.model_path.as_deref().and_then(ModelPreset::for_path));
        let (network, mut info, metadata) = self.load_network(preset, &device)?;
        let metadata = Metadata(&metadata);
        let outputs = network.num_outputs();
        let (labels, labels_path) = self.find_labels(preset, &metadata, &mut info)?;
        // The class offset: given, metadata, preset, inferred.
        let given = self.class_offset.map(|k| (k, SettingSource::Given));
        let from_meta = || -> Result<_> {
            let k = metadata.get::<usize>(META_CLASS_OFFSET)?;
            Ok(k.map(|k| (k, SettingSource::Metadata)))
        };
        let (class_offset, from) = match given.map(Ok).or_else(|| from_meta().transpose()) {
            Some(found) => found?,
            None => match preset {
                Some(p) => (p.class_offset, SettingSource::Preset),
                None => {
                    let (k, reason) = inferred_offset(outputs, labels.as_ref().map(Labels::len));
                    info.class_offset_reason = reason;
                    let from = if k == 0 {
                        SettingSource::Default
                    } else {
                        SettingSource::Inferred
                    };
                    (k, from)
                }
            },
        };
        if class_offset >= outputs {
            return Err(Error::Config(format!(
                "class offset {class_offset} leaves no class among {outputs} outputs"
            )));
        }
        let classes = outputs - class_offset;
        let labels = match labels {
            Some(labels) => {
                let (labels, skipped) =
                    fit_labels(labels, classes, &info.labels, outputs, class_offset)?;
                info.labels_background_skipped = skipped;
                labels
            }
            None => {
                info.labels = format!("numbered (class 0..{})", classes - 1);
                Labels::numbered(classes)
            }
        };
        info.labels_path = labels_path;
        info.outputs = outputs;
        info.classes = classes;
        info.class_offset = class_offset;
        info.class_offset_from = from;
        self.settings.resize = info.resize;
        self.settings.boxes = self.boxes.resolve(info.preset);
        info.boxes_tuned_on = tuned_on(info.preset);
        info.box_priority = self.boxes.priority;
        let pipeline = Pipeline::new(network, device, class_offset, self.settings);
        Ok(FeedbackNet::new(
            pipeline,
            labels,
            self.method,
            Arc::new(info),
        ))
    }

    /// The given network, else the ONNX file with its input size and normalization resolved;
    /// with the [`ModelInfo`] of the input and the file's metadata.
    fn load_network(
        &self,
        preset: Option<&'static ModelPreset>,
        device: &Device,
    ) -> Result<Loaded> {
        let (network, metadata): (Arc<dyn GatedNetwork>, _) =
            match (&self.network, &self.model_path) {
                (Some(net), _) => {
                    if self.input_size.is_some() || self.normalization.is_some() {
                        return Err(Error::Config(
                            "a network of your own has its own input size and normalization \
                             (GatedNetwork::input_spec); they are for ONNX files"
                                .into(),
                        ));
                    }
                    if self.gate_placement.is_some() {
                        return Err(Error::Config(
                            "a network of your own places its own gates \
                             (GatedNetwork::gate_sites); a gate placement is for ONNX files"
                                .into(),
                        ));
                    }
                    (net.clone(), Vec::new())
                }
                (None, Some(path)) => {
                    let placement = self.gate_placement.unwrap_or_default();
                    let net = OnnxNetwork::load_with(path, device, placement)?;
                    let metadata = net.metadata().to_vec();
                    let meta = Metadata(&metadata);
                    let (size, size_from) = if let Some(size) = &self.input_size {
                        (size.clone()?, SettingSource::Given)
                    } else if let Some(size) = meta.get::<InputSize>(META_INPUT_SIZE)? {
                        (size, SettingSource::Metadata)
                    } else if let Some(p) = preset {
                        (InputSize::square(p.input_size)?, SettingSource::Preset)
                    } else {
                        (net.input_spec().size(), SettingSource::Model)
                    };
                    let (norm, norm_from) = if let Some(n) = self.normalization {
                        (n, SettingSource::Given)
                    } else if let Some(n) = meta.get::<Normalization>(META_NORMALIZE)? {
                        (n, SettingSource::Metadata)
                    } else if let Some(p) = preset {
                        (p.normalization, SettingSource::Preset)
                    } else {
                        (Normalization::IMAGENET, SettingSource::Default)
                    };
                    let spec = InputSpec::rgb(size.width, size.height, norm);
                    let net = net.with_input_spec(spec);
                    let mut info = ModelInfo::blank(path, preset);
                    info.gate_placement = Some(placement);
                    (info.input_size, info.input_size_from) = (size, size_from);
                    (info.normalization, info.normalization_from) = (norm, norm_from);
                    info.normalize = norm.to_string();
                    return self.with_resize(Arc::new(net), info, metadata);
                }
                (None, None) => return Err(Error::Config("give a model path or a network".into())),
            };
        let spec = network.input_spec().clone();
        let mut info = ModelInfo::blank(Path::new("<network>"), preset);
        (info.input_size, info.input_size_from) = (spec.size(), SettingSource::Model);
        (info.normalization, info.normalization_from) = (spec.normalization, SettingSource::Model);
        info.normalize = spec.normalization.to_string();
        self.with_resize(network, info, metadata)
    }

    /// The resize rule (given, metadata, default) into `info`.
    fn with_resize(
        &self,
        network: Arc<dyn GatedNetwork>,
        mut info: ModelInfo,
        metadata: Vec<(String, String)>,
    ) -> Result<Loaded> {
        let (resize, from) = match self.resize {
            Some(r) => (r, SettingSource::Given),
            None => match Metadata(&metadata).get::<Resize>(META_RESIZE)? {
                Some(r) => (r, SettingSource::Metadata),
                None => (Resize::Stretch, SettingSource::Default),
            },
        };
        info.resize = resize.mode_for(info.input_size);
        info.resize_from = from;
        Ok((network, info, metadata))
    }

    /// The labels given, else the label file given, else the metadata's, else the preset's
    /// file next to the model; `None` for numbered labels. Records their origin in `info`.
    fn find_labels(
        &self,
        preset: Option<&'static ModelPreset>,
        metadata: &Metadata<'_>,
        info: &mut ModelInfo,
    ) -> Result<(Option<Labels>, Option<PathBuf>)> {
        let file_name = |path: &Path| {
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string())
        };
        if let Some(labels) = &self.labels {
            (info.labels, info.labels_from) = ("given".into(), SettingSource::Given);
            return Ok((Some(labels.clone()), None));
        }
        if let Some(path) = &self.labels_path {
            (info.labels, info.labels_from) = (file_name(path), SettingSource::Given);
            return Ok((Some(Labels::from_file(path)?), Some(path.clone())));
        }
        if let Some(labels) = metadata.labels()? {
            (info.labels, info.labels_from) = ("inline".into(), SettingSource::Metadata);
            return Ok((Some(labels), None));
        }
        let preset_file = preset.and_then(|p| {
            let file = self.model_path.as_deref()?.parent()?.join(p.labels_file);
            file.exists().then_some(file)
        });
        if let Some(path) = preset_file {
            (info.labels, info.labels_from) = (file_name(&path), SettingSource::Preset);
            return Ok((Some(Labels::from_file(&path)?), Some(path)));
        }
        info.labels_from = SettingSource::Default;
        Ok((None, None))
    }
}

/// A loaded network, the [`ModelInfo`] of its input and its file's metadata.
type Loaded = (Arc<dyn GatedNetwork>, ModelInfo, Vec<(String, String)>);

/// A side (square) or an [`InputSize`], for [`FeedbackNetBuilder::input_size`].
#[derive(Debug, Clone, PartialEq)]
pub struct InputSizeArg(std::result::Result<InputSize, InputSettingError>);

impl From<usize> for InputSizeArg {
    fn from(side: usize) -> Self {
        Self(InputSize::square(side))
    }
}

impl From<InputSize> for InputSizeArg {
    /// Checked again: the fields of an [`InputSize`] are public.
    fn from(size: InputSize) -> Self {
        Self(InputSize::new(size.height, size.width))
    }
}

impl ModelInfo {
    /// The info of a model at `path` before its settings are resolved.
    fn blank(path: &Path, preset: Option<&'static ModelPreset>) -> Self {
        ModelInfo {
            model: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            preset: preset.map(|p| p.name),
            input_size: InputSize {
                height: 0,
                width: 0,
            },
            input_size_from: SettingSource::Default,
            normalization: Normalization::IMAGENET,
            normalize: String::new(),
            normalization_from: SettingSource::Default,
            resize: ResizeMode::Stretch,
            resize_from: SettingSource::Default,
            outputs: 0,
            classes: 0,
            class_offset: 0,
            class_offset_from: SettingSource::Default,
            class_offset_reason: None,
            labels: String::new(),
            labels_path: None,
            labels_from: SettingSource::Default,
            labels_background_skipped: false,
            boxes_tuned_on: "",
            box_priority: BoxPriority::default(),
            gate_placement: None,
        }
    }
}

/// Checks every setting.
fn validate(settings: &Settings) -> Result<()> {
    settings.solver.validate()?;
    settings.hard.validate()?;
    settings.boxes.validate()?;
    if settings.max_batch == Some(0) {
        return Err(Error::Config(
            "max_batch must hold at least one sample".into(),
        ));
    }
    if let Crops::Ten { shorter_side: 0 } = settings.crops {
        return Err(Error::Config(
            "10-crop needs a positive shorter side".into(),
        ));
    }
    Ok(())
}
