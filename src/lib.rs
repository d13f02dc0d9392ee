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
//! The crate is a facade over small crates with one job each: `feedbacknet-core` (gate
//! traits), `feedbacknet-onnx` (run-time ONNX interpreter and presets), `feedbacknet-solver`
//! (gate solvers, input gradients) and `feedbacknet-localize` (maps to boxes).
#![warn(missing_docs)]

mod device;
mod error;
mod explainer;
mod inference;
mod labels;
mod memory;
mod method;
mod net;
mod preprocess;
mod run;
mod views;

pub use device::{Backend, default_device};
pub use error::{Error, Result};
pub use explainer::{MethodExplainer, colour_image, smoothed_at_image, stored_maps};
pub use inference::{ClassInfo, GateStats, Inference, Prediction, Timings};
pub use labels::{ClassLabel, ClassQuery, Labels};
pub use memory::retain_freed_memory;
pub use method::{CamThrough, FeedbackCamConfig, FeedbackMap, Method, MethodSpec};
pub use net::{FeedbackNet, FeedbackNetBuilder};
pub use preprocess::load_image;
pub use views::Crops;

pub use feedbacknet_core::{
    self as core, Device, GateGranularity, GatedNetwork, InputSpec, Normalization,
};
pub use feedbacknet_eval as eval;
pub use feedbacknet_localize::{
    self as localize, BoundingBox, FusionConfig, FusionRule, ImageGeometry, LocalizeConfig,
    RefineConfig, ResizeMode, SaliencyMap,
};
pub use feedbacknet_onnx::{self as onnx, ModelPreset, OnnxNetwork};
pub use feedbacknet_solver::{
    self as solver, CamLayer, ClassVisualization, HardConfig, Objective, Schedule, SolverConfig,
    VisualizeConfig,
};
pub use image::DynamicImage;
