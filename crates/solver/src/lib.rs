//! Solvers that infer the feedback gates of a [`GatedNetwork`](feedbacknet_core::GatedNetwork)
//! for target classes, and the input-gradient saliency read off the gated network.
//!
//! - [`soft_feedback`]: the continuous relaxation of Cao et al. (ICCV 2015): gates start at 1
//!   and follow projected SGD with momentum on `score − λ·Σ|g|`, clamped to `[0, 1]`.
//! - [`input_gradient`] and [`saliency_maps`]: `M_ij = max_c |∂score/∂I_cij|` through the
//!   network with given gates (all open = the plain gradient of Simonyan et al.).
//!
//! Gradients flow only to gates and input; the weights are constants.
#![warn(missing_docs)]

mod config;
mod error;
mod gradient;
mod score;
mod soft;

pub use config::{Objective, SolverConfig};
pub use error::{Result, SolverError};
pub use gradient::{InputGradient, input_gradient, saliency_maps};
pub use soft::{GateSolution, soft_feedback};
