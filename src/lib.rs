//! # feedbacknet
//!
//! Feedback CNNs ("Look and Think Twice", Cao et al., ICCV 2015) for any ONNX image classifier:
//! given an image and a class, infer top-down which hidden ReLU neurons matter for that class
//! (feedback gates), read a class-specific saliency map off the gated network, and turn it into
//! object boxes: weakly supervised localization from a classifier trained on labels only.
//!
//! ```no_run
//! use feedbacknet::{FeedbackNet, load_image};
//!
//! let net = FeedbackNet::from_onnx("../shared/models/squeezenet1.1.onnx")?;
//! let image = load_image("../shared/data/demo/darknet_dog.jpg")?;
//! for result in net.infer_top_k(&image, 3)? {
//!     println!("{}: {:?}", result.class.label, result.best_box());
//! }
//! # Ok::<(), feedbacknet::Error>(())
//! ```
//!
//! Three calls explain an image: [`FeedbackNet::infer`] (one class), [`FeedbackNet::infer_top_k`]
//! (the most likely classes) and [`FeedbackNet::explain`] (any classes with any methods, as one
//! batch whose methods share their solve; see [`Request`]).
//!
//! The crate is a facade over small crates with one job each: `feedbacknet-core` (gate
//! traits), `feedbacknet-onnx` (run-time ONNX interpreter and presets), `feedbacknet-solver`
//! (gate solvers, input gradients) and `feedbacknet-localize` (maps to boxes). It re-exports
//! the types its API uses, and what a [`GatedNetwork`] of your own needs
//! (`examples/custom_network.rs`); the rest is in those crates.
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod boxes;
mod builder;
mod device;
mod error;
mod explainer;
mod inference;
mod labels;
mod memory;
mod method;
mod model_info;
mod net;
mod pipeline;
mod preprocess;
mod request;
mod views;

pub use boxes::{
    BoxPriority, BoxSettings, FEEDBACK_TUNE_COMMAND, ParseBoxPriorityError, STABLE_TUNE_COMMAND,
    TUNE_COMMAND,
};
pub use builder::{FeedbackNetBuilder, InputSizeArg};
pub use device::{Backend, default_device};
pub use error::{Error, Result};
pub use explainer::{
    JointExplainer, JointView, MethodExplainer, perturbed_maps, smoothed_at_image, stored_maps,
};
pub use inference::{ClassInfo, GateStats, Inference, Inferences, Prediction, Timings};
pub use labels::{ClassLabel, ClassQuery, Labels};
pub use memory::retain_freed_memory;
pub use method::{CamThrough, FeedbackCamConfig, FeedbackMap, Method, MethodSpec};
pub use model_info::{
    META_CLASS_OFFSET, META_INPUT_SIZE, META_LABELS, META_NORMALIZE, META_RESIZE, ModelInfo,
    Resize, SettingSource,
};
pub use net::FeedbackNet;
pub use pipeline::DEFAULT_MAX_BATCH;
pub use preprocess::{colour_image, load_image, load_image_with};
pub use request::{Request, Targets};
pub use views::Crops;

pub use feedbacknet_core::{
    ActivationKind, ActivationRule, BackwardOutput, BackwardTarget, CoreError, Device, DynTensor,
    GateGradients, GateGranularity, GateSet, GateSite, GateState, GatedNetwork, InputSettingError,
    InputSize, InputSpec, KinkDerivative, MomentumStep, Normalization, Seed, SteppedGates, Tensor,
    TensorData,
};
pub use feedbacknet_eval::{DamagedImages, DecodeOptions, LoadedImage};
pub use feedbacknet_localize::{
    Binning, BoundingBox, ColourImage, ColourModel, FusionConfig, FusionRule, ImageGeometry,
    Localization, LocalizeConfig, LocalizeError, MapScale, RefineConfig, Refinement, ResizeMode,
    SaliencyMap, localize_in_image,
};
pub use feedbacknet_onnx::{
    GatePlacement, MetadataError, ModelPreset, OnnxError, OnnxNetwork, read_metadata_props,
};
pub use feedbacknet_solver::{
    CamLayer, ClassVisualization, HardConfig, Objective, Schedule, SolverConfig, SolverError,
    VisualizeConfig,
};
pub use image::DynamicImage;
