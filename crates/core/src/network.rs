//! The trait every gated network implements.

use std::sync::Arc;

use burn::tensor::Tensor;

use crate::{
    ActivationRule, BackwardOutput, BackwardTarget, CoreError, DynTensor, GateSet, GateSite,
    InputSpec, Result,
};

/// A classifier whose ReLU-type activations can be gated.
///
/// Implement it for any Burn model: list the activations you gate as [`GateSite`]s and
/// multiply each activation's output by `gates.gate(i)` in `forward`. Every solver and saliency
/// method of feedbacknet then works on your model; the modified backward rules (guided
/// backprop, DeconvNet) and Grad-CAM need [`GatedNetwork::backward`] too, whose default only
/// covers the true gradient to the input.
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

    /// Runs forward, then back-propagates `seed` (`[batch, num_outputs]`, the gradient of the
    /// score w.r.t. the logits: a one-hot row selects a class) down to `target`, applying
    /// `rule` at every gated activation. Gates act as constants.
    ///
    /// The default implementation uses autodiff and supports only
    /// [`ActivationRule::Gradient`] with [`BackwardTarget::Input`]; other requests return
    /// [`CoreError::Unsupported`].
    fn backward(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        seed: Tensor<2>,
        rule: ActivationRule,
        target: BackwardTarget,
    ) -> Result<BackwardOutput> {
        if rule != ActivationRule::Gradient || target != BackwardTarget::Input {
            return Err(CoreError::Unsupported(format!(
                "this network implements only the true input gradient, not {rule:?} to {target:?}"
            )));
        }
        autodiff_input_gradient(self, input, gates, seed)
    }
}

/// The true input gradient of `Σ seed·logits` by autodiff (gates and weights constant).
pub fn autodiff_input_gradient<N: GatedNetwork + ?Sized>(
    net: &N,
    input: Tensor<4>,
    gates: Option<&GateSet>,
    seed: Tensor<2>,
) -> Result<BackwardOutput> {
    let x = input.autodiff().detach().require_grad();
    let gates = gates.map(|g| g.clone().constant());
    let logits = net.forward(x.clone(), gates.as_ref())?;
    let grads = logits
        .clone()
        .mul(seed.autodiff().detach())
        .sum()
        .backward();
    let gradient = x
        .grad(&grads)
        .ok_or_else(|| CoreError::Readback("the input received no gradient".into()))?;
    Ok(BackwardOutput {
        logits: logits.without_autodiff(),
        gradient: DynTensor::R4(gradient),
        activation: None,
    })
}
