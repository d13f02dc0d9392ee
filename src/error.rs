use std::path::PathBuf;

use thiserror::Error;

/// Errors of the `feedbacknet` facade.
#[derive(Debug, Error)]
pub enum Error {
    /// An image file could not be read or decoded.
    #[error("cannot load image {path}: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A truncated or damaged image file, refused by the decoding policy (see
    /// [`crate::DamagedImages`]).
    #[error(
        "damaged image {path}: {reason}; refused (to use it anyway: DamagedImages::Accept, or \
         --accept-damaged-images on the command line)"
    )]
    DamagedImage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image over the decoding limits (see [`crate::DecodeOptions`]).
    #[error("image {path} exceeds the decoding limits: {reason}")]
    ImageTooLarge {
        /// The file.
        path: PathBuf,
        /// The size and the limit it exceeds.
        reason: String,
    },
    /// The image has no pixels.
    #[error("the image is empty ({width}x{height})")]
    EmptyImage {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A class index outside the model's classes.
    #[error("class {class} is out of range: the model has {classes} classes")]
    ClassOutOfRange {
        /// The requested class.
        class: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A top-k request for no class or for more classes than the net has.
    #[error("{}", top_k_text(*.k, *.classes))]
    TopK {
        /// The requested number of classes.
        k: usize,
        /// Number of classes of the net.
        classes: usize,
    },
    /// A class name that matches no label.
    #[error("unknown class label `{label}`{}", suggestions_text(.suggestions))]
    UnknownLabel {
        /// The requested label.
        label: String,
        /// Labels that contain the text, if any.
        suggestions: Vec<String>,
    },
    /// An item of [`FeedbackNet::explain_batch`](crate::FeedbackNet::explain_batch) that
    /// cannot be explained (an unknown class, one out of range, a bad top-k or fusion
    /// setting); the whole batch is refused before any solve.
    #[error("batch item {index}: {source}")]
    BatchItem {
        /// The item's position in the batch (0-based).
        index: usize,
        /// Why it cannot be explained.
        source: Box<Error>,
    },
    /// The label file could not be used.
    #[error("cannot read labels {path}: {reason}")]
    Labels {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Labels whose count fits neither the classes nor the classes and a background label.
    #[error(
        "{labels} labels ({origin}) do not fit the model's {classes} classes ({outputs} outputs \
         from offset {offset}); give {classes} labels, or {} with a background label first",
        classes + 1
    )]
    LabelCount {
        /// Where the labels came from (a file, `inline`, `given`).
        origin: String,
        /// Number of labels.
        labels: usize,
        /// Number of classes: outputs after the offset.
        classes: usize,
        /// Number of logits.
        outputs: usize,
        /// The class offset.
        offset: usize,
    },
    /// An input size or normalization that cannot be used.
    #[error(transparent)]
    InputSetting(#[from] feedbacknet_core::InputSettingError),
    /// A `feedbacknet.*` metadata value of the model file that cannot be used.
    #[error("the model's metadata `{key}`: {reason}")]
    Metadata {
        /// The key.
        key: String,
        /// Why its value cannot be used.
        reason: String,
    },
    /// The builder was not given enough to build a network.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Loading the ONNX model failed.
    #[error(transparent)]
    Model(#[from] feedbacknet_onnx::OnnxError),
    /// The network failed while running.
    #[error(transparent)]
    Network(#[from] feedbacknet_core::CoreError),
    /// A solver failed.
    #[error(transparent)]
    Solver(#[from] feedbacknet_solver::SolverError),
    /// Saliency post-processing failed.
    #[error(transparent)]
    Localize(#[from] feedbacknet_localize::LocalizeError),
    /// A step produced fewer results than it was asked for: a bug in feedbacknet (please
    /// report it with the command that caused it), returned instead of a panic.
    #[error("internal error: {0} (a bug in feedbacknet; please report it)")]
    Internal(String),
}

fn suggestions_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean: {}?)", suggestions.join(", "))
    }
}

/// Result alias of the facade.
pub type Result<T> = std::result::Result<T, Error>;

fn top_k_text(k: usize, classes: usize) -> String {
    if k == 0 {
        format!("top-k 0 asks for no class: k must lie in 1..={classes}")
    } else {
        format!("top-k {k} is more than the net's {classes} classes")
    }
}
