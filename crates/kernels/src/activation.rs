//! The activations that may carry a gate, as the kernels take them.

/// An activation that may carry a gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, min, max)`; gated only when `min` is 0.
    Clip {
        /// The lower bound.
        min: f32,
        /// The upper bound.
        max: f32,
    },
}

impl Activation {
    /// The ONNX operator's name, for error messages.
    pub fn op_name(&self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::Clip { .. } => "Clip",
        }
    }
}

/// Which gradients the backward pass of a gated activation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// `∂/∂x` (not wanted below the lowest gate, where nothing reads it).
    pub input: bool,
    /// `∂/∂g` (what the soft solver collects; only with a gate).
    pub gate: bool,
}
