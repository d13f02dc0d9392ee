//! The trait every gated network implements.

use std::sync::Arc;

use burn::tensor::Tensor;

use crate::{GateSet, GateSite, InputSpec, Result};

/// A classifier whose ReLU-type activations can be gated.
///
/// Implement it for any Burn model: list the activations you gate as [`GateSite`]s and
/// multiply each activation's output by `gates.gate(i)` in `forward`. Every solver and saliency
/// method of feedbacknet then works on your model.
///
/// Weights should be plain (non-autodiff) tensors: gradients then flow only to the gates and
/// the input, which is what every method here needs.
pub trait GatedNetwork: Send + Sync {
    /// The expected input (size and normalization).
    fn input_spec(&self) -> &InputSpec;

    /// Number of output logits.
    fn num_outputs(&self) -> usize;

    /// The gate sites, in forward order, for an input of `[height, width]` pixels.
    fn gate_sites(&self, input_hw: [usize; 2]) -> Result<Arc<[GateSite]>>;

    /// Runs the network on a `[batch, channels, height, width]` input. `None` means every gate
    /// open (the plain feed-forward net). Returns `[batch, num_outputs]` logits.
    fn forward(&self, input: Tensor<4>, gates: Option<&GateSet>) -> Result<Tensor<2>>;
}
