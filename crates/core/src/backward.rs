//! Modified backward passes: the rule a gated activation applies to the gradient, and where a
//! pass stops (the input, or one gate site for Grad-CAM).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::DynTensor;

/// How a gated activation (ReLU, or Clip such as ReLU6) passes the gradient back.
///
/// With `x` the activation's input, `g` its gate and `dy` the gradient arriving at its gated
/// output, the gradient sent to `x` is:
///
/// | rule | gradient to `x` | source |
/// |---|---|---|
/// | [`Gradient`](ActivationRule::Gradient) | `g·dy·[x active]` | the true gradient (Simonyan et al., 2014) |
/// | [`Guided`](ActivationRule::Guided) | `max(g·dy, 0)·[x active]` | guided backprop (Springenberg et al., 2015) |
/// | [`Deconv`](ActivationRule::Deconv) | `max(g·dy, 0)` | DeconvNet (Zeiler & Fergus, 2014) |
///
/// `[x active]` is `x > 0` for ReLU and `min < x < max` for Clip. Every other operator passes
/// its true gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActivationRule {
    /// The true gradient.
    #[default]
    Gradient,
    /// Guided backprop: only positive gradients through active units.
    Guided,
    /// DeconvNet: only positive gradients, whatever the forward activation was.
    Deconv,
}

impl ActivationRule {
    /// Applies the rule to `dz = g·dy` (the gradient at the ungated activation output), given
    /// the activation's `active` mask as a 0/1 tensor broadcastable against `dz`.
    pub fn apply<const D: usize>(self, dz: Tensor<D>, active: Tensor<D>) -> Tensor<D> {
        match self {
            ActivationRule::Gradient => dz.mul(active),
            ActivationRule::Guided => dz.clamp_min(0.0).mul(active),
            ActivationRule::Deconv => dz.clamp_min(0.0),
        }
    }
}

/// Where a backward pass stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackwardTarget {
    /// The network input: the gradient is `[batch, C, H, W]`.
    Input,
    /// The gated output of gate site `i` (see [`GatedNetwork::gate_sites`](crate::GatedNetwork::gate_sites)):
    /// the gradient and the activation there, as Grad-CAM needs.
    Site(usize),
    /// The network's last convolutional feature map, as the network itself designates it
    /// (the map that global pooling or the classifier reads): Grad-CAM's usual layer.
    FeatureMap,
}

/// The result of [`GatedNetwork::backward`](crate::GatedNetwork::backward).
#[derive(Debug, Clone)]
pub struct BackwardOutput {
    /// `[batch, num_outputs]` logits of the forward pass.
    pub logits: Tensor<2>,
    /// The gradient of `Σ seed·logits` at the target (plain tensor).
    pub gradient: DynTensor,
    /// The activation at a [`BackwardTarget::Site`] or [`BackwardTarget::FeatureMap`] (plain
    /// tensor); `None` for the input.
    pub activation: Option<DynTensor>,
}
