//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use feedbacknet::{Backend, ClassQuery, Method, Objective};

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
    /// List the model presets and whether their files are in the models folder.
    Models(ModelsArgs),
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

#[derive(Debug, Args)]
pub struct InferArgs {
    /// ONNX model file, or a preset name (see `feedbacknet models`); default: SqueezeNet 1.1
    /// from the models folder.
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub models: ModelsDir,
    /// The image (JPEG, PNG, BMP, GIF, TIFF, WebP).
    #[arg(long)]
    pub image: PathBuf,
    /// Class to explain: an index (0-999 for ImageNet) or a label such as "tiger cat".
    /// Repeat for several classes (solved in one batch).
    #[arg(long, conflicts_with = "top_k")]
    pub class: Vec<ClassQuery>,
    /// Explain the K most likely classes in one batched pass (default 1 without --class).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Saliency method.
    #[arg(long, default_value = "feedback")]
    pub method: Method,
    /// Box threshold as a fraction of the map's maximum.
    #[arg(long, default_value_t = 0.2)]
    pub threshold: f32,
    /// Gaussian blur (sigma, network-input pixels) before thresholding; 0 disables.
    #[arg(long, default_value_t = 10.0)]
    pub blur: f32,
    /// Feedback solver iterations.
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// What the feedback solver maximizes: the raw class logit (as in the paper; best boxes)
    /// or its log-softmax (maps that stay class-specific on photos with several objects).
    #[arg(long, default_value = "logit")]
    pub objective: Objective,
    /// Feedback sparsity weight λ.
    #[arg(long, default_value_t = 0.01)]
    pub lambda: f32,
    /// Compute backend (must be compiled in).
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    /// Output folder for `<stem>.json` and `<stem>_<class>.png`.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}
