//! Core abstractions of feedbacknet: a *gated network* is a CNN whose every ReLU (and
//! ReLU6/Clip) output is multiplied by a gate in `[0, 1]`.
//!
//! - [`GatedNetwork`]: the trait every network implements (the ONNX interpreter in
//!   `feedbacknet-onnx`, or a hand-written Burn model); it exposes its [`GateSite`]s and runs
//!   `forward(input, gates)`.
//! - [`GateSet`]: the gate values for a batch, per neuron or per channel.
//! - [`InputSpec`] and [`Normalization`]: what the network expects as input.
//! - [`ActivationRule`] and [`BackwardTarget`]: modified backward passes (guided backprop,
//!   DeconvNet) and where they stop (the input, or a gate site for Grad-CAM).
//! - [`MomentumStep`] and [`GatedNetwork::step_gates`]: the soft solver's update, fused into
//!   the reverse pass where the network has one (the fused kernels are in
//!   `feedbacknet-kernels`; this crate holds the rule and its plain tensor-op form).
//! - [`DynTensor`]: a Burn float tensor whose rank is known only at run time.
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

mod backward;
mod error;
mod gate;
mod input;
mod kink;
mod network;
mod seed;
mod step;
mod tensor;

pub use backward::{ActivationRule, BackwardOutput, BackwardTarget};
pub use error::{CoreError, Result};
pub use gate::{ActivationKind, GateGranularity, GateSet, GateSite};
pub use input::{InputSettingError, InputSize, InputSpec, Normalization};
pub use kink::{KinkDerivative, ParseKinkDerivativeError};
pub use network::{GateGradients, GatedNetwork, autodiff_gate_gradients, autodiff_input_gradient};
pub use seed::Seed;
pub use step::{
    GateState, MomentumStep, SteppedGate, SteppedGates, check_state, step_by_gradients,
};
pub use tensor::{BinaryOp, DynTensor};

/// Re-export of the Burn items that appear in this crate's API.
pub use burn::tensor::{Device, Tensor, TensorData};
