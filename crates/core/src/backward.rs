//! Modified backward passes: the rule a gated activation applies to the gradient, and where a
//! pass stops (the input, or one gate site for Grad-CAM).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::DynTensor;

/// How a gated activation passes the gradient back.
///
/// With `x` the activation's input, `f'(x)` its local derivative, `g` its gate and `dy` the
/// gradient arriving at its gated output, the gradient sent to `x` is:
///
/// | rule | gradient to `x` | source |
/// |---|---|---|
/// | [`Gradient`](ActivationRule::Gradient) | `g·dy·f'(x)` | the true gradient (Simonyan et al., 2014) |
/// | [`Guided`](ActivationRule::Guided) | `max(g·dy, 0)·max(f'(x), 0)` | guided backprop (Springenberg et al., 2015) |
/// | [`Deconv`](ActivationRule::Deconv) | `max(g·dy, 0)` | DeconvNet (Zeiler & Fergus, 2014) |
///
/// For ReLU `f'(x)` is the mask `[x > 0]`, for Clip (ReLU6) `[min < x < max]`: the rules are
/// then exactly the original ones (guided: positive gradients through active units). For the
/// smooth activations `f'(x)` is the true local slope, and the rules generalise as follows:
///
/// | activation | `f'(x)` | guided / DeconvNet, against the ReLU meaning |
/// |---|---|---|
/// | ReLU, Clip(0, max) | `[x > 0]`, `[0 < x < max]` | the original rules |
/// | LeakyReLU(α), PReLU(α) | `1` (x > 0), `α` (x ≤ 0) | guided passes `α·max(g·dy, 0)` below 0 (α > 0): not ReLU's 0 |
/// | PReLU per channel (αc) | `1` (x > 0), `αc` of the element's channel (x ≤ 0) | guided, per channel: `αc·max(g·dy, 0)` below 0 where αc > 0, nothing where αc ≤ 0 (a slope that turns the gradient's sign is blocked); DeconvNet `max(g·dy, 0)` |
/// | ELU(α) | `1` (x > 0), `α·eˣ` | guided passes a shrinking positive slope below 0 |
/// | SiLU `x·σ(x)` | `σ(x)·(1 + x·(1 − σ(x)))` | negative for x < −1.28: guided drops it, Gradient keeps it |
/// | HardSwish | `0` (x ≤ −3), `(2x + 3)/6`, `1` (x ≥ 3) | negative on (−3, −1.5): guided drops it |
/// | GELU (erf and tanh forms) | `Φ(x) + x·φ(x)` | negative for x < −0.75: guided drops it |
/// | Mish | `tanh(sp) + x·σ(x)·(1 − tanh²(sp))`, `sp = softplus(x)` | negative for x < −1.19: guided drops it |
///
/// So guided backprop passes only positive gradients through positive local slopes (a unit
/// that would turn the gradient's sign is blocked, as an inactive ReLU is), scaled by the
/// slope; DeconvNet ignores the forward pass whatever the activation. Every other operator
/// (ungated activations such as Sigmoid or Tanh included) passes its true gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActivationRule {
    /// The true gradient.
    #[default]
    Gradient,
    /// Guided backprop: only positive gradients through positive local slopes.
    Guided,
    /// DeconvNet: only positive gradients, whatever the forward activation was.
    Deconv,
}

impl ActivationRule {
    /// Applies the rule to `dz = g·dy` (the gradient at the ungated activation output), given
    /// the activation's local derivative `f'(x)` broadcastable against `dz` (for ReLU and Clip
    /// the 0/1 active mask).
    pub fn apply<const D: usize>(self, dz: Tensor<D>, derivative: Tensor<D>) -> Tensor<D> {
        match self {
            ActivationRule::Gradient => dz.mul(derivative),
            ActivationRule::Guided => dz.clamp_min(0.0).mul(derivative.clamp_min(0.0)),
            ActivationRule::Deconv => dz.clamp_min(0.0),
        }
    }

    /// [`apply`](Self::apply) for one element.
    #[inline]
    pub fn at(self, dz: f32, derivative: f32) -> f32 {
        match self {
            ActivationRule::Gradient => dz * derivative,
            ActivationRule::Guided => dz.max(0.0) * derivative.max(0.0),
            ActivationRule::Deconv => dz.max(0.0),
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
