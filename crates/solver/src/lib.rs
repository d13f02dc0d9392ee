//! Solvers that infer the feedback gates of a [`GatedNetwork`](feedbacknet_core::GatedNetwork)
//! for target classes, and the input-gradient saliency read off the gated network.
//!
//! - [`soft_feedback`]: the continuous relaxation of Cao et al. (ICCV 2015): gates start at 1
//!   and follow projected SGD with momentum on `score − λ·Σ|g|`, clamped to `[0, 1]`.
//! - [`hard_feedback`] ([`HardConfig`]): the binary version, coordinate ascent on 0/1 gates
//!   ("selective pruning"): each sweep keeps the gates whose gradient (the neuron's
//!   contribution to the score) is positive and large enough, until nothing changes; returns
//!   the best gate set seen, never worse than the feed-forward net.
//! - [`input_gradient`] and [`saliency_maps`]: `M_ij = max_c |∂score/∂I_cij|` through the
//!   network with given gates (all open = the plain gradient of Simonyan et al.).
//! - [`visualize_class`] ([`VisualizeConfig`], [`ClassVisualization`]): class model
//!   visualization of Simonyan et al. (2014, §2), the image that maximizes a class logit, by
//!   gradient ascent on the input with L2 decay, jitter, blur and clamping to valid pixels.
//! - [`input_gradient_with`]: the same with guided backprop or DeconvNet rules.
//! - [`grad_cam`]: Grad-CAM on the last convolutional feature map (or any gate site).
//! - [`gated_energy`]: the gated activations of one gate site summed over channels.
//!
//! Gradients flow only to gates and input; the weights are constants.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
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

mod config;
mod energy;
mod error;
mod gradcam;
mod gradient;
mod hard;
mod score;
mod soft;
mod visualize;

pub use config::{HardConfig, Objective, Schedule, SolverConfig};
pub use energy::gated_energy;
pub use error::{Result, SolverError};
pub use feedbacknet_core::KinkDerivative;
pub use gradcam::{CamLayer, CamMaps, grad_cam};
pub use gradient::{InputGradient, input_gradient, input_gradient_with, saliency_maps};
pub use hard::hard_feedback;
pub use soft::{GateSolution, soft_feedback};
pub use visualize::{ClassVisualization, VisualizeConfig, visualize_class, visualize_class_on};
