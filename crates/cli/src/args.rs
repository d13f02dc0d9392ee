//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use feedbacknet::{
    Backend, BoxPriority, CamLayer, ClassQuery, DamagedImages, DecodeOptions, FeedbackMap,
    InputSize, KinkDerivative, MapScale, Method, Normalization, Objective,
};
use feedbacknet_eval::tune::Refinement;

/// Feedback CNNs ("Look and Think Twice"): class-specific saliency maps and object boxes from
/// any ONNX image classifier.
#[derive(Debug, Parser)]
#[command(name = "feedbacknet", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain classes of one image: JSON results and PNG heat-map overlays with boxes.
    Infer(InferArgs),
    /// One panel PNG: the photo and, per class, the maps of several methods with their boxes.
    Compare(CompareArgs),
    /// Class model visualization: an input image optimized to maximize a class score.
    Visualize(VisualizeArgs),
    /// Localization metrics over a data set (resumable, sharded): JSONL per image, JSON
    /// summary, HTML report.
    Eval(EvalArgs),
    /// Combine the JSONL results of several shards (or runs) into one result.
    Merge(MergeArgs),
    /// Choose blur and threshold on one half of a data set, report the other half at them.
    Tune(TuneArgs),
    /// Grid pointing game: mosaics of n x n confidently classified images, each cell's class
    /// explained on the whole mosaic (class discrimination).
    Grid(GridArgs),
    /// List the model presets and whether their files are in the models folder.
    Models(ModelsArgs),
    /// Stability: how far maps and boxes move under input noise far below one grey level and
    /// under noise of a few grey levels (map correlation, box IoU), per method and objective.
    Stability(StabilityArgs),
}

/// Where the shared models live.
#[derive(Debug, Args)]
pub struct ModelsDir {
    /// Folder holding the ONNX models and label files.
    #[arg(long, env = "FEEDBACKNET_MODELS", default_value = "../shared/models")]
    pub models_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub models: ModelsDir,
}

/// The model and the backend.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// ONNX model file, or a preset name (see `feedbacknet models`); default: SqueezeNet 1.1
    /// from the models folder.
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub models: ModelsDir,
    /// Compute backend (must be compiled in).
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    #[command(flatten)]
    pub preprocess: PreprocessArgs,
    /// Where the net carries feedback gates: after every gated activation (ReLU, GELU, …), or
    /// also one gate per attention head of a transformer.
    #[arg(long, value_enum, default_value = "activations")]
    pub gate_sites: GateSitesArg,
}

/// Where the feedback gates sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateSitesArg {
    /// After every gated activation (the paper; in a transformer, the MLPs' GELUs).
    Activations,
    /// The activations' gates and one gate per attention head, on each head's output.
    AttentionHeads,
}

/// How images are fed to the model and its logits read. Each flag wins over the model file's
/// `feedbacknet.*` metadata, which wins over the preset of the file name, which wins over the
/// defaults (docs/models.md).
#[derive(Debug, Args)]
pub struct PreprocessArgs {
    /// Network input size: N (square) or HxW. Default: the model's metadata, its preset, the
    /// size the file declares.
    #[arg(long, value_name = "N|HxW")]
    pub input_size: Option<InputSize>,
    /// Pixel normalization: imagenet (torchvision mean/std), inception ([-1,1]), caffe (0..255
    /// minus the ImageNet means, RGB order), raw ([0,1]) or mean=R,G,B,std=R,G,B on the [0,1]
    /// scale. Default: the model's metadata, its preset, imagenet.
    #[arg(long, value_name = "NAME|mean=R,G,B,std=R,G,B")]
    pub normalize: Option<Normalization>,
    /// How the image is fitted to the input: stretch (whole image, aspect ignored) or crop
    /// (shorter side to 8/7 of the input, then a centre crop, as torchvision's eval
    /// transform). Default: the model's metadata, else stretch.
    #[arg(long, value_enum)]
    pub resize: Option<ResizeArg>,
    /// Index of class 0 among the logits (1: a background logit first). Default: the model's
    /// metadata, its preset, else 1 for 1001 outputs, else 0.
    #[arg(long, value_name = "K")]
    pub class_offset: Option<usize>,
    /// Label file, one class a line (`wnid name, synonyms` or `name`); one line more than the
    /// classes is read as a background line first. Default: the model's metadata, its preset's
    /// file, else numbered classes.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
}

/// `--resize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResizeArg {
    /// The whole image resized to the input, aspect ratio ignored.
    Stretch,
    /// Shorter side to 8/7 of the input's (256 for 224), then a centre crop.
    Crop,
}

/// Views averaged into one map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CropsArg {
    /// One view of the whole image.
    Single,
    /// 10-crop averaging (corners, centre and their mirrors).
    Ten,
}

/// Settings of every saliency method and of the boxes.
#[derive(Debug, Args)]
pub struct MethodArgs {
    /// Which of each method's dev-tuned box settings to start from: `accurate` (the best
    /// localization) or `stable` (the best localization among the settings that keep 95 % of
    /// the boxes under a one-grey-level change of the image, tuned for feedback, feedback-cam
    /// and gradcam; 0-5 points less). --blur, --threshold, --map-scale and the fusion flags
    /// replace parts of it.
    #[arg(long, value_name = "accurate|stable", default_value_t)]
    pub box_priority: BoxPriority,
    /// Box threshold as a fraction of the map's maximum (default: each method's own, tuned
    /// on the net's dev images; `feedbacknet models` lists them).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Gaussian blur (sigma, network-input pixels) before thresholding; 0 disables (default:
    /// each method's own, tuned on the net's dev images).
    #[arg(long)]
    pub blur: Option<f32>,
    /// What --threshold is a fraction of: `max` (the smoothed map's maximum) or `pP` (its
    /// P-th percentile, e.g. `p99`: the map is divided by it and clamped at 1, so one bright
    /// pixel does not set the threshold). Default: each method's own.
    #[arg(long, value_name = "max|pP")]
    pub map_scale: Option<MapScale>,
    /// The most samples (classes × views) explained in one batch: more classes (a large
    /// --top-k) run batch after batch, so memory stays bounded.
    #[arg(long, default_value_t = feedbacknet::DEFAULT_MAX_BATCH)]
    pub max_batch: usize,
    /// Soft feedback solver iterations.
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// What the soft feedback solver maximizes: `log-softmax` (default: maps stable under
    /// rounding, class-specific, boxes as good as the logit's with λ 0.001), `logit` (the
    /// paper's raw class logit, with the paper's λ 0.01 unless --lambda is given), or the
    /// contrastive `margin` (logit minus the strongest other) and `contrast-mean` (logit minus
    /// the mean of the others).
    #[arg(long)]
    pub objective: Option<Objective>,
    /// Soft feedback sparsity weight λ (default: 0.01 with `--objective logit`, as in the
    /// paper; 0.001 otherwise).
    #[arg(long)]
    pub lambda: Option<f32>,
    /// Soft feedback step size on the gates (default: the library's, 0.1).
    #[arg(long)]
    pub learning_rate: Option<f32>,
    /// Soft feedback momentum (default: the library's, 0.9; 0 is plain projected gradient
    /// ascent).
    #[arg(long)]
    pub momentum: Option<f32>,
    /// Soft feedback: the derivative of ReLU and ReLU6 that the gate gradients take at their
    /// kinks: `exact` (the 0/1 mask; the default with `--objective logit`, as in the paper) or
    /// a sharpness β for a smooth ramp (default: the library's, 10), which keeps the gates, and
    /// so the maps, from jumping when an input change far below one grey level moves a unit
    /// across its kink. The map itself is the exact gradient either way.
    #[arg(long, value_name = "exact|BETA")]
    pub kinks: Option<KinkDerivative>,
    /// Feedback gates: one per neuron or one per channel.
    #[arg(long, value_enum, default_value = "neuron")]
    pub gates: GatesArg,
    /// Soft feedback: which gates move when (top-first: the authors' multi-stage pruning).
    #[arg(long, value_enum, default_value = "all-at-once")]
    pub schedule: ScheduleArg,
    /// Soft feedback, top-first schedule: gate sites of the first stage, from the output.
    #[arg(long, default_value_t = 8)]
    pub top_sites: usize,
    /// Soft feedback, top-first schedule: iterations of the first stage.
    #[arg(long, default_value_t = 10)]
    pub top_iterations: usize,
    /// Hard feedback: a gate opens where its gradient is at least this multiple of its layer's
    /// mean positive gradient (0, the default: any positive gradient; larger values close more
    /// gates and shrink the map to specks).
    #[arg(long, default_value_t = 0.0)]
    pub hard_ratio: f32,
    /// Hard feedback: most sweeps.
    #[arg(long, default_value_t = 5)]
    pub sweeps: usize,
    /// Grad-CAM feature map: a gate site (activation node) name; default the last
    /// convolutional one.
    #[arg(long)]
    pub cam_layer: Option<String>,
    /// Views averaged into one map.
    #[arg(long, value_enum, default_value = "single")]
    pub crops: CropsArg,
    /// feedback-cam: how the feedback and Grad-CAM maps are combined per pixel.
    #[arg(long, value_enum, default_value = "geometric")]
    pub fusion: FusionArg,
    /// feedback-cam: weight of the Grad-CAM map in the fusion (0.5: equal weights; default:
    /// tuned on the net's dev images).
    #[arg(long)]
    pub cam_weight: Option<f32>,
    /// feedback-cam: Gaussian blur (sigma, network-input pixels) of the feedback map before
    /// the fusion (default: tuned on the net's dev images).
    #[arg(long)]
    pub feedback_blur: Option<f32>,
    /// feedback-cam: the network Grad-CAM reads.
    #[arg(long, value_enum, default_value = "plain")]
    pub cam_through: CamThroughArg,
    /// feedback and feedback-cam: the map read off the gates: `gradient` (the input gradient)
    /// or `energy@SITE`, the gated activation energy of a gate site (an index or a name).
    #[arg(long, default_value = "gradient")]
    pub feedback_map: FeedbackMapArg,
}

/// A [`FeedbackMap`] on the command line: `gradient` or `energy@SITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackMapArg(pub FeedbackMap);

impl std::str::FromStr for FeedbackMapArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let energy = |layer| Ok(Self(FeedbackMap::GatedEnergy(layer)));
        match (s, s.strip_prefix("energy@")) {
            ("gradient", _) => Ok(Self(FeedbackMap::InputGradient)),
            ("energy", _) => energy(CamLayer::LastConv),
            (_, Some(site)) if !site.is_empty() => energy(
                site.parse()
                    .map(CamLayer::Site)
                    .unwrap_or_else(|_| CamLayer::Named(site.to_string())),
            ),
            _ => Err(format!(
                "`{s}`: expected `gradient`, `energy` or `energy@SITE` (a gate site index or name)"
            )),
        }
    }
}

impl serde::Serialize for FeedbackMapArg {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for FeedbackMapArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            FeedbackMap::InputGradient => f.write_str("gradient"),
            FeedbackMap::GatedEnergy(CamLayer::LastConv) => f.write_str("energy"),
            FeedbackMap::GatedEnergy(CamLayer::Site(i)) => write!(f, "energy@{i}"),
            FeedbackMap::GatedEnergy(CamLayer::Named(n)) => write!(f, "energy@{n}"),
        }
    }
}

/// Gate granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GatesArg {
    /// One gate per neuron (the paper).
    Neuron,
    /// One gate per channel.
    Channel,
}

/// A mask refinement before boxing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefineArg {
    /// The thresholded map as it is.
    None,
    /// A colour-model refinement of the mask (`refine_mask`, default settings: two colour
    /// histograms).
    Colour,
    /// The same colour refinement with trilinear colour histograms (`Binning::Trilinear`):
    /// a colour is shared among the eight surrounding cells, so a change of one grey level
    /// changes its likelihood only a little.
    ColourTrilinear,
    /// GrabCut: Gaussian-mixture colour models and a minimum cut of the pixel graph
    /// (`refine_mask` with `ColourModel::GrabCut`).
    #[value(name = "grabcut")]
    #[serde(rename = "grabcut")]
    GrabCut,
}

impl RefineArg {
    /// The refinement's settings (`None` for no refinement): those of the evaluator's
    /// [`Refinement`] of the same name.
    pub fn config(self) -> Option<feedbacknet::RefineConfig> {
        Refinement::from(self).config()
    }
}

impl From<RefineArg> for Refinement {
    fn from(arg: RefineArg) -> Self {
        match arg {
            RefineArg::None => Refinement::None,
            RefineArg::Colour => Refinement::Colour,
            RefineArg::ColourTrilinear => Refinement::ColourTrilinear,
            RefineArg::GrabCut => Refinement::GrabCut,
        }
    }
}

/// The soft solver's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    /// Every gate from the first iteration.
    AllAtOnce,
    /// The top gate sites first (`--top-sites`, `--top-iterations`), then all.
    TopFirst,
}

/// The fusion rule of feedback-cam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FusionArg {
    /// Weighted geometric mean: a pixel needs both maps.
    Geometric,
    /// Weighted arithmetic mean.
    Arithmetic,
}

/// The network Grad-CAM reads in feedback-cam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CamThroughArg {
    /// The plain feed-forward network.
    Plain,
    /// The network gated by the feedback gates.
    Gates,
}

#[derive(Debug, Args)]
pub struct InferArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The image (JPEG, PNG, BMP, GIF, TIFF, WebP).
    #[arg(long)]
    pub image: PathBuf,
    #[command(flatten)]
    pub decode: ImageArgs,
    /// Class to explain: an index (0-999 for ImageNet) or a label such as "tiger cat".
    /// Repeat for several classes (solved in one batch).
    #[arg(long, conflicts_with = "top_k", value_parser = parse_class)]
    pub class: Vec<ClassQuery>,
    /// Explain the K most likely classes in one batched pass (default 1 without --class).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Saliency method: feedback-cam (the default: the soft-feedback map fused with Grad-CAM,
    /// the best feedback boxes on the dev images of every shared net), feedback (the paper's
    /// map), feedback-hard, gradient, deconvnet, guided, gradcam.
    #[arg(long, default_value = "feedback-cam")]
    pub method: Method,
    #[command(flatten)]
    pub settings: MethodArgs,
    /// Mask refinement before boxing: `none` (the thresholded map), `colour` (grown or shrunk
    /// with two colour histograms of the image), `colour-trilinear` (the same with trilinear
    /// histograms) or `grabcut` (GrabCut on the image's colours).
    /// Default: each method's own, tuned on the net's dev images.
    #[arg(long, value_enum)]
    pub refine: Option<RefineArg>,
    /// Output folder for `<stem>.json` and `<stem>_<class>.png`.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The image.
    #[arg(long)]
    pub image: PathBuf,
    #[command(flatten)]
    pub decode: ImageArgs,
    /// A class to show (index or label); repeat for each object of the photo.
    #[arg(long, required = true, value_parser = parse_class)]
    pub class: Vec<ClassQuery>,
    /// The methods compared, one column each.
    #[arg(long, value_delimiter = ',', default_value = "gradient,feedback")]
    pub methods: Vec<Method>,
    #[command(flatten)]
    pub settings: MethodArgs,
    /// Mask refinement before boxing, for every method: `none`, `colour`, `colour-trilinear`
    /// or `grabcut` (default: each method's own, tuned on the net's dev images).
    #[arg(long, value_enum)]
    pub refine: Option<RefineArg>,
    /// The panel PNG (a JSON with the numbers is written beside it).
    #[arg(long, default_value = "out/compare.png")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VisualizeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The class (index or label).
    #[arg(long, value_parser = parse_class)]
    pub class: ClassQuery,
    /// Gradient ascent steps.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Gradient ascent learning rate.
    #[arg(long, default_value_t = 1.0)]
    pub learning_rate: f32,
    /// Weight of the L2 penalty on the image (Simonyan et al.'s regularization).
    #[arg(long, default_value_t = 1e-4)]
    pub l2: f32,
    /// Largest random shift in pixels applied before each step (0 disables jitter).
    #[arg(long, default_value_t = 4)]
    pub jitter: usize,
    /// Blur the image every N steps (0 disables the blur).
    #[arg(long, default_value_t = 10)]
    pub blur_every: usize,
    /// Standard deviation in pixels of that blur.
    #[arg(long, default_value_t = 0.5)]
    pub blur_sigma: f32,
    /// Amplitude of uniform noise added to the mean image at the start. 0 starts from the
    /// exact mean image as in the paper, but a class whose logit is exactly 0 there (a net
    /// ending in a ReLU, such as SqueezeNet) then has no gradient and cannot rise.
    #[arg(long, default_value_t = 0.1)]
    pub init_noise: f32,
    /// Random seed of the jitter and of the initial noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The PNG written.
    #[arg(long, default_value = "out/class.png")]
    pub out: PathBuf,
}

impl MethodArgs {
    /// The default settings, as if no flag were given.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            settings: MethodArgs,
        }
        Defaults::parse_from(["feedbacknet"]).settings
    }
}

/// `BLUR:THRESHOLD`, e.g. `24:0.45`.
fn parse_box_setting(s: &str) -> Result<(f32, f32), String> {
    let parse = |v: &str| v.trim().parse::<f32>().map_err(|e| format!("`{s}`: {e}"));
    match s.split_once(':') {
        Some((blur, threshold)) => Ok((parse(blur)?, parse(threshold)?)),
        None => Err(format!("`{s}`: expected BLUR:THRESHOLD, e.g. 24:0.45")),
    }
}

/// A class on the command line: digits give an index, anything else a label.
fn parse_class(s: &str) -> Result<ClassQuery, std::convert::Infallible> {
    s.parse()
}

/// How image files are decoded: the decoder limits and what to do with a damaged file.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Decode a truncated or damaged image file anyway instead of refusing it (a cut JPEG's
    /// missing part comes out grey); a warning goes to stderr and into the JSON results.
    #[arg(long)]
    pub accept_damaged_images: bool,
    /// Refuse images wider than this many pixels (read from the header, before decoding);
    /// 0: no limit.
    #[arg(long, value_name = "PIXELS", default_value_t = DecodeOptions::DEFAULT_MAX_SIDE)]
    pub max_image_width: u32,
    /// Refuse images taller than this many pixels (read from the header, before decoding);
    /// 0: no limit.
    #[arg(long, value_name = "PIXELS", default_value_t = DecodeOptions::DEFAULT_MAX_SIDE)]
    pub max_image_height: u32,
    /// Refuse images whose decoding needs more than this many bytes (the decoded image counts:
    /// width x height x bytes per pixel); 0: no limit. Default: 512 MiB, the image crate's.
    #[arg(long, value_name = "BYTES", default_value_t = DecodeOptions::DEFAULT_MAX_BYTES)]
    pub max_image_bytes: u64,
}

impl ImageArgs {
    /// The decoding policy the flags ask for.
    pub fn options(&self) -> DecodeOptions {
        let mut options = DecodeOptions::default().no_limits();
        if self.max_image_width > 0 {
            options = options.max_width(self.max_image_width);
        }
        if self.max_image_height > 0 {
            options = options.max_height(self.max_image_height);
        }
        if self.max_image_bytes > 0 {
            options = options.max_bytes(self.max_image_bytes);
        }
        options.damaged(if self.accept_damaged_images {
            DamagedImages::Accept
        } else {
            DamagedImages::Refuse
        })
    }
}

/// An evaluation data set.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data set: a `boxes.csv` file or a folder holding one, a wsolevaluation metadata
    /// folder (`image_ids.txt`, ...; needs --images) or a folder of ILSVRC XML annotations.
    #[arg(
        long,
        env = "FEEDBACKNET_DATA",
        default_value = "../shared/data/imagenet-val"
    )]
    pub data: PathBuf,
    /// Folder the image paths of the data set are relative to (default: the data folder).
    #[arg(long)]
    pub images: Option<PathBuf>,
    #[command(flatten)]
    pub decode: ImageArgs,
}

impl DataArgs {
    /// Opens the data set.
    pub fn open(&self) -> crate::error::Result<(PathBuf, feedbacknet_eval::Dataset)> {
        let data = crate::paths::resolve_shared(&self.data, "data/imagenet-val");
        let dataset = feedbacknet_eval::Dataset::open(&data, self.images.as_deref())?;
        Ok((data, dataset))
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The saliency method (feedback-cam, feedback, feedback-hard, gradient, deconvnet,
    /// guided, gradcam).
    #[arg(long, default_value = "feedback-cam")]
    pub method: Method,
    #[command(flatten)]
    pub settings: MethodArgs,
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// Maps for the K most likely classes (their IoUs are recorded; the metrics need only the
    /// true class's map), solved in one batch with it.
    #[arg(long, default_value_t = 1)]
    pub top_k: usize,
    /// Evaluate only shard I of N (`I/N`, 1-based): images I, I+N, I+2N, ... `auto` reads
    /// it from the scheduler: FEEDBACKNET_SHARD_INDEX (1-based) / FEEDBACKNET_SHARD_COUNT,
    /// a Slurm job array (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1 of
    /// SLURM_ARRAY_TASK_COUNT), or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX + 1 of
    /// FEEDBACKNET_SHARD_COUNT), in that order.
    #[arg(long)]
    pub shard: Option<String>,
    /// Keep the records already in the results file and evaluate only the missing images.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Discard a results file that already holds records (default: refuse to touch it).
    #[arg(long)]
    pub overwrite: bool,
    /// Stop after this many new images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Image decoding threads (they run while the net computes).
    #[arg(long, default_value_t = 1)]
    pub decode_threads: usize,
    /// Images explained at the same time, one thread each (a crash loses at most this many);
    /// 0: one per CPU core (2 workers on 2 cores evaluate 1.9x faster than 1).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Images each worker explains in one call (at least 1), their samples (each image's true
    /// and top-k classes) solved in shared batches of at most --max-batch samples: raise
    /// --max-batch with it (2 × N holds N images of two classes). Records are still written
    /// per image; a crash loses at most workers × batch images. 1 is the fastest on a CPU
    /// (docs/performance.md); a GPU wants more.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Per-image results, one JSON line each, appended as images finish.
    #[arg(long, default_value = "out/eval.jsonl")]
    pub results: PathBuf,
    /// The JSON summary (metrics, configuration, model hash, timings).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A self-contained HTML report (metrics, IoU histogram, best and worst images).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Images in each of the report's best and worst galleries (they are explained again).
    #[arg(long, default_value_t = 6)]
    pub gallery: usize,
}

/// How each map is scored (the box threshold and blur are --threshold and --blur).
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Step of the MaxBoxAccV2 threshold sweep (wsolevaluation's 0.01); 0 skips MaxBoxAccV2.
    #[arg(long, default_value_t = 0.01)]
    pub sweep: f32,
    /// Pointing game: pixels the map's peak may lie outside a ground-truth box.
    #[arg(long, default_value_t = 15.0)]
    pub pointing_tolerance: f32,
    /// Mask refinement before boxing, for the main box and every sweep threshold: `none`,
    /// `colour` (two colour histograms of the image), `colour-trilinear` (the same with
    /// trilinear histograms) or `grabcut` (Gaussian-mixture colour
    /// models and a minimum cut). Default: the method's own, tuned on the net's dev images.
    #[arg(long, value_enum)]
    pub refine: Option<RefineArg>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The JSONL results files of the shards.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The merged JSONL (records in data set order).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The step of the MaxBoxAccV2 sweep the shards were run with.
    #[arg(long, default_value_t = 0.01)]
    pub sweep: f32,
    /// The JSON summary of the merged result.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The model file the shards used (its hash goes into the JSON summary).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The saliency methods, comma-separated: all are tuned on one pass over the images
    /// (methods that share gates share one solve); with several, `--json` holds a list.
    #[arg(long = "method", value_delimiter = ',', default_value = "feedback-cam")]
    pub methods: Vec<Method>,
    #[command(flatten)]
    pub settings: MethodArgs,
    /// Blurs tried (sigma, network-input pixels).
    #[arg(long, value_delimiter = ',', default_value = "0,4,8,12,16,24")]
    pub blurs: Vec<f32>,
    /// Box thresholds tried (fractions of the map's scale, --map-scales).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5,0.6"
    )]
    pub thresholds: Vec<f32>,
    /// What the thresholds are fractions of, tried: `max` (the smoothed map's maximum) and
    /// `pP` (its P-th percentile, e.g. `p99`); comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "max",
        value_name = "max|pP"
    )]
    pub map_scales: Vec<MapScale>,
    /// Mask refinements tried before boxing: `none` (the thresholded map), `colour` (grown
    /// or shrunk with two colour histograms of the image), `colour-trilinear` (the same with
    /// trilinear histograms) and `grabcut` (Gaussian-mixture colour models and a minimum
    /// cut); comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "none")]
    pub refine: Vec<RefineArg>,
    /// feedback and feedback-cam: the maps read off the gates tried (`gradient`,
    /// `energy@SITE`, comma-separated; one solve per image serves them all); default:
    /// `--feedback-map` only.
    #[arg(long, value_delimiter = ',')]
    pub feedback_maps: Vec<FeedbackMapArg>,
    /// feedback-cam: Grad-CAM weights in the fusion tried together with the blurs and
    /// thresholds (one solve per image serves them all); default: `--cam-weight` only.
    #[arg(long, value_delimiter = ',')]
    pub cam_weights: Vec<f32>,
    /// feedback-cam: blurs of the feedback map before the fusion tried (sigma, network-input
    /// pixels); default: `--feedback-blur` only.
    #[arg(long, value_delimiter = ',')]
    pub feedback_blurs: Vec<f32>,
    /// Box stability floor: choose only settings under which at least this fraction of the
    /// tuning half's images keep their box (IoU >= 0.9) when the image gets uniform noise of
    /// --grey levels (each image is explained twice); if none does, the most stable. Every
    /// grid point and fold then reports its box stability.
    #[arg(long, value_name = "FRACTION")]
    pub stable_boxes: Option<f64>,
    /// The noise of --stable-boxes: uniform integer noise of this many grey levels on every
    /// 8-bit channel (seeded per image as `feedbacknet stability --seed` seeds it).
    #[arg(long, default_value_t = 1, requires = "stable_boxes")]
    pub grey: u8,
    /// Seed of the --stable-boxes noise.
    #[arg(long, default_value_t = 1, requires = "stable_boxes")]
    pub seed: u64,
    /// Use only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// The grid, the chosen settings and the held-out metrics as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GridArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The saliency methods, comma-separated; each is scored on the same mosaics.
    #[arg(long = "method", value_delimiter = ',', default_value = "gradient")]
    pub methods: Vec<Method>,
    #[command(flatten)]
    pub settings: MethodArgs,
    /// Mask refinement of each cell's box with the mosaic's colours: `none`, `colour`,
    /// `colour-trilinear` or `grabcut` (default: each method's own, tuned on the net's dev images).
    #[arg(long, value_enum)]
    pub refine: Option<RefineArg>,
    /// Cells per side of a mosaic (n x n images of distinct classes); a manifest read with
    /// --from-manifest brings its own.
    #[arg(long, default_value_t = 2)]
    pub n: usize,
    /// Mosaics to build.
    #[arg(long, default_value_t = 20)]
    pub mosaics: usize,
    /// Seed of the order in which the data set's images are considered.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Least softmax probability of the (correct) top-1 class of an image alone for it to
    /// enter a mosaic.
    #[arg(long, default_value_t = 0.5)]
    pub confidence: f32,
    /// How the mosaic reaches the net: `cells` (each cell at the net's input size, the mosaic
    /// at n times it, as Rao et al.; costs about n² times a single image per class) or `input`
    /// (the whole mosaic shrunk to the net's input size: each image at 1/n scale).
    #[arg(long, value_enum, default_value = "cells")]
    pub scale: GridScaleArg,
    /// Read the mosaics from this manifest instead of selecting them (the data set must be the
    /// one it was made from).
    #[arg(long, value_name = "FILE", conflicts_with = "manifest")]
    pub from_manifest: Option<PathBuf>,
    /// Write the manifest (settings, and every mosaic's images, classes, cells and boxes).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// The JSON summary (per method: the summary and every cell's scores; the configuration).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A self-contained HTML report (a table of the methods and the first --gallery mosaics
    /// with each cell's class map).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Mosaics drawn in the report, each with every cell's class map for every method.
    #[arg(long, default_value_t = 1)]
    pub gallery: usize,
}

/// `--scale` of `grid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GridScaleArg {
    /// Each cell at the net's input size; the net runs on the mosaic at n times that size.
    Cells,
    /// The mosaic shrunk to the net's input size.
    Input,
}

#[derive(Debug, Args)]
pub struct StabilityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The saliency methods, comma-separated (input noise: feedback, gradient and gradcam).
    #[arg(
        long = "method",
        value_delimiter = ',',
        default_value = "feedback,gradient,gradcam"
    )]
    pub methods: Vec<Method>,
    #[command(flatten)]
    pub settings: MethodArgs,
    /// Soft feedback objectives measured, comma-separated (default: `--objective` alone).
    #[arg(long, value_delimiter = ',')]
    pub objectives: Vec<Objective>,
    /// Number of images, spread evenly over the data set.
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Amplitudes of uniform noise on the normalized network input, comma-separated (the flag
    /// with no value: none).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1e-6")]
    pub input_noise: Vec<f32>,
    /// Amplitudes of uniform integer noise on the 8-bit image, in grey levels, comma-separated
    /// (the flag with no value: none).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1")]
    pub grey: Vec<u8>,
    /// Box settings whose boxes are compared under grey-level noise, `BLUR:THRESHOLD`
    /// (network-input pixels : fraction of the method's map scale; no refinement),
    /// comma-separated; default: the boxes the pipeline draws at each method's own settings
    /// (tuned on the net's dev images, or the box flags), refinement included.
    #[arg(long, value_delimiter = ',', value_parser = parse_box_setting)]
    pub boxes: Vec<(f32, f32)>,
    /// Mask refinement of the boxes the pipeline draws (without --boxes): `none`, `colour`,
    /// `colour-trilinear` or `grabcut` (default: each method's own, tuned on the net's dev
    /// images).
    #[arg(long, value_enum)]
    pub refine: Option<RefineArg>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Another compute backend (compiled in): each image is also explained there, unperturbed,
    /// and its map and boxes are compared with `--backend`'s (a GPU against the CPU).
    #[arg(long)]
    pub against: Option<Backend>,
    /// Class separation: a photo with two objects (with --pair-class twice); per method and
    /// objective, the correlation of the two classes' maps is reported (lower: more
    /// class-specific).
    #[arg(long, requires = "pair_class")]
    pub pair_image: Option<PathBuf>,
    /// Class separation: the two classes (names or indices) of --pair-image.
    #[arg(long, value_parser = parse_class, num_args = 1)]
    pub pair_class: Vec<ClassQuery>,
    /// The table and every record as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}
